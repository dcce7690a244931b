// swift-tools-version:6.0
// netmapd: /dev/netmap for stock Linux. Targets follow the layers of
// docs/architecture.md: ABI (C) -> Core -> Ports -> FrontEnds -> Daemon.
import PackageDescription

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
        .target(name: "CNetmapABI", path: "Sources/ABI"),

        // Core: what netmap means, no I/O.
        .target(name: "DeviceInterface", path: "Sources/Core/DeviceInterface"),
        .target(name: "CNetmapSys", path: "Sources/Core/CSys"),
        .target(
            name: "NetmapCore",
            dependencies: ["CNetmapABI", "CNetmapSys", "DeviceInterface"],
            path: "Sources/Core/NetmapCore"
        ),

        // Ports: backends that need no network (pipes, null).
        .target(name: "NetmapPorts", dependencies: ["NetmapCore", "CNetmapABI", "CNetlink", "CPacketSys", "DeviceInterface"], path: "Sources/Ports",
                exclude: ["CNetlink", "CPacketSys"]),

        // Front ends.
        .target(
            name: "InProcessFrontEnd",
            dependencies: ["DeviceInterface"],
            path: "Sources/FrontEnds/InProcess"
        ),

        // --- FUSE front end (helper) ---
        .target(name: "CFUSEKernel", path: "Sources/FrontEnds/CFUSEKernel"),
        .target(
            name: "FUSEFrontEnd",
            dependencies: ["DeviceInterface", "CFUSEKernel"],
            path: "Sources/FrontEnds/FUSEFile"
        ),
        .executableTarget(
            name: "FUSEProbe",
            dependencies: ["FUSEFrontEnd", "DeviceInterface"],
            path: "Tests/FUSEProbe"
        ),
        .testTarget(
            name: "FUSEFrontEndTests",
            dependencies: ["FUSEFrontEnd", "DeviceInterface"],
            path: "Tests/FUSEFrontEndTests"
        ),
        // --- end FUSE front end (helper) ---

        // The daemon.
        .executableTarget(
            name: "netmapd",
            dependencies: [
                "NetmapCore", "NetmapPorts", "DeviceInterface", "FUSEFrontEnd", "CUSEFrontEnd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Daemon"
        ),

        .testTarget(
            name: "NetmapCoreTests",
            dependencies: ["NetmapCore", "NetmapPorts", "InProcessFrontEnd", "CNetmapABI", "DeviceInterface"],
            path: "Tests/CoreTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)

// --- CUSE front end (helper) ---
// libfuse3's CUSE API (Debian libfuse3-dev), the CUSE front end, and a probe
// daemon with a fake device that the VM smoke test (Tests/vm/cuse-smoke.sh)
// drives through the real kernel.
package.targets += [
    .systemLibrary(
        name: "CFuse3",
        path: "Sources/FrontEnds/CFuse3",
        providers: [.apt(["libfuse3-dev"])]
    ),
    .target(
        name: "CUSEFrontEnd",
        dependencies: ["CFuse3", "CNetmapABI", "DeviceInterface"],
        path: "Sources/FrontEnds/CUSE"
    ),
    .executableTarget(
        name: "CUSEProbe",
        dependencies: ["CUSEFrontEnd", "CNetmapABI", "DeviceInterface"],
        path: "Tests/CUSEProbe"
    ),
    .testTarget(
        name: "CUSEFrontEndTests",
        dependencies: ["CUSEFrontEnd", "DeviceInterface"],
        path: "Tests/CUSEFrontEndTests"
    ),
]
// --- end CUSE front end (helper) ---

// --- generic backend (helper) ---
// Linux interfaces through AF_PACKET (Sources/Ports/Packet): interface facts
// and link events through libnl-3, the tc ingress "steal" program through
// libbpf. Debian: libnl-3-dev libnl-route-3-dev libbpf-dev.
package.targets += [
    .systemLibrary(
        name: "CNetlink",
        path: "Sources/Ports/CNetlink",
        pkgConfig: "libnl-route-3.0",
        providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]
    ),
    .target(
        name: "CPacketSys",
        path: "Sources/Ports/CPacketSys",
        linkerSettings: [.linkedLibrary("bpf")]
    ),
]
// --- end generic backend (helper) ---

// --- service (helper) ---
// netmapctl (Sources/Control/netmapctl) reads the running daemon's status
// over its control socket; the protocol and a Foundation-free JSON encoder
// (Sources/Control/Protocol) are shared with the daemon, which serves them
// (Sources/Daemon/ControlServer.swift).
package.targets += [
    .target(name: "NetmapControl", dependencies: ["NetmapCore"], path: "Sources/Control/Protocol"),
    .executableTarget(
        name: "netmapctl",
        dependencies: [
            "NetmapControl", "NetmapCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        path: "Sources/Control/netmapctl"
    ),
]
for target in package.targets where target.name == "netmapd" {
    target.dependencies.append("NetmapControl")
}
// --- end service (helper) ---

// --- native backend (helper) ---
// Linux interfaces through AF_XDP (Sources/Ports/XDP): sockets and rings on
// libxdp's xsk API, the redirect program and its xsks map through libbpf.
// Debian: libxdp-dev libbpf-dev.
package.targets += [
    .target(
        name: "CXDPSys",
        path: "Sources/Ports/CXDPSys",
        linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]
    ),
]
for target in package.targets where target.name == "NetmapPorts" {
    target.dependencies.append("CXDPSys")
    target.exclude.append("CXDPSys")
}
// --- end native backend (helper) ---
