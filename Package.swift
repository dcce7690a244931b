// swift-tools-version:6.0
// netmapd: /dev/netmap for stock Linux. One target per folder, named after
// it, in the layers of docs/architecture.md:
//   ABI (C) -> Core -> Ports -> FrontEnds -> Daemon, and Control beside them.
// Core (with pipes and null ports) needs no C library but its own shims, so
// the Core tests and the fuzzers (Fuzz/build.sh) build without libnl, libbpf,
// libxdp or libfuse3. Debian packages: scripts/install-deps.sh.
import PackageDescription

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")

let package = Package(
    name: "netmapd",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NetmapCore", targets: ["NetmapCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // ABI: the project's netmap-compatible C header, shared with the C
        // test programs and the mmap shim.
        .target(name: "CNetmapABI", path: "Sources/ABI/CNetmapABI"),

        // Core: what netmap means, no I/O; pipes and null ports live here.
        .target(name: "DeviceInterface", path: "Sources/Core/DeviceInterface"),
        .target(name: "CNetmapSys", path: "Sources/Core/CNetmapSys"),
        .target(name: "NetmapCore", dependencies: ["CNetmapABI", "CNetmapSys", "DeviceInterface"],
                path: "Sources/Core/NetmapCore"),

        // Ports: Linux interfaces through AF_PACKET (libnl-3 for facts and
        // link events, libbpf for the tc steal program) and AF_XDP (libxdp).
        .systemLibrary(name: "CNetlink", path: "Sources/Ports/CNetlink", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        .target(name: "CPacketSys", path: "Sources/Ports/CPacketSys", linkerSettings: [.linkedLibrary("bpf")]),
        .target(name: "CXDPSys", path: "Sources/Ports/CXDPSys",
                linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]),
        .target(name: "NetmapPorts",
                dependencies: ["NetmapCore", "CNetmapABI", "CNetlink", "CPacketSys", "CXDPSys", "DeviceInterface"],
                path: "Sources/Ports/NetmapPorts"),

        // Front ends: in-process (tests), the FUSE file, CUSE (libfuse3).
        .target(name: "InProcessFrontEnd", dependencies: ["DeviceInterface"],
                path: "Sources/FrontEnds/InProcessFrontEnd"),
        .target(name: "CFUSEKernel", path: "Sources/FrontEnds/CFUSEKernel"),
        .target(name: "FUSEFrontEnd", dependencies: ["DeviceInterface", "CFUSEKernel"],
                path: "Sources/FrontEnds/FUSEFrontEnd"),
        .systemLibrary(name: "CFuse3", path: "Sources/FrontEnds/CFuse3", providers: [.apt(["libfuse3-dev"])]),
        .target(name: "CUSEFrontEnd", dependencies: ["CFuse3", "CNetmapABI", "DeviceInterface"],
                path: "Sources/FrontEnds/CUSEFrontEnd"),

        // Control: the status protocol (a Foundation-free JSON encoder)
        // shared by the daemon's control socket and netmapctl.
        .target(name: "NetmapControl", dependencies: ["NetmapCore"], path: "Sources/Control/NetmapControl"),
        .executableTarget(name: "netmapctl", dependencies: ["NetmapControl", "NetmapCore", argumentParser],
                          path: "Sources/Control/netmapctl"),

        // The daemon.
        .executableTarget(
            name: "netmapd",
            dependencies: ["NetmapCore", "NetmapPorts", "DeviceInterface", "FUSEFrontEnd", "CUSEFrontEnd",
                           "NetmapControl", argumentParser, logging],
            path: "Sources/Daemon/netmapd"),

        // Tests (Swift) and the probe daemons of the front-end smoke tests
        // (Tests/device/fuse-smoke.sh, Tests/vm/cuse-smoke.sh).
        .testTarget(name: "NetmapCoreTests", dependencies: ["NetmapCore", "InProcessFrontEnd", "CNetmapABI", "DeviceInterface"],
                    path: "Tests/CoreTests"),
        .testTarget(name: "FUSEFrontEndTests", dependencies: ["FUSEFrontEnd", "DeviceInterface"],
                    path: "Tests/FUSEFrontEndTests"),
        .testTarget(name: "CUSEFrontEndTests", dependencies: ["CUSEFrontEnd", "DeviceInterface"],
                    path: "Tests/CUSEFrontEndTests"),
        .executableTarget(name: "FUSEProbe", dependencies: ["FUSEFrontEnd", "DeviceInterface"], path: "Tests/FUSEProbe"),
        .executableTarget(name: "CUSEProbe", dependencies: ["CUSEFrontEnd", "CNetmapABI", "DeviceInterface"],
                          path: "Tests/CUSEProbe"),
    ],
    swiftLanguageModes: [.v6]
)
