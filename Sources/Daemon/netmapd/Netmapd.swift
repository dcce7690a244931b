// netmapd: /dev/netmap on a stock Linux kernel.
//
// Start-up: parse flags -> create the shared region (a tmpfs file under
// --run-dir, mode and group of the device) -> NetmapEngine with the port
// provider -> front end (CUSE where /dev/cuse exists, else the FUSE file) ->
// "ready" on stderr and READY=1 to systemd. Then the main thread sleeps in
// sigwait until SIGINT/SIGTERM, and shutdown runs in reverse: the front end
// goes (device removed, mount undone, clients get errors), then the region
// file is removed.

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CUSEFrontEnd
import DeviceInterface
import FUSEFrontEnd
import Logging
import NetmapCore
import NetmapPorts

enum FrontEndChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, cuse, fuse
}

enum BackendChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, xdp, packet
}

extension XDPBindMode: ExpressibleByArgument {}
extension XDPAttachMode: ExpressibleByArgument {}

@main
struct Netmapd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netmapd",
        abstract: "Serve /dev/netmap to unmodified netmap programs, without the netmap kernel module.",
        discussion: """
            Runs in the foreground and logs to stderr. Stops cleanly on SIGINT or SIGTERM.
            CUSE clients map the region through the preload shim (LD_PRELOAD=libnetmapd-shim.so);
            FUSE-file clients need nothing.
            """)

    @Option(help: "Device mechanism: auto (CUSE where /dev/cuse exists, else or when CUSE cannot start a FUSE file, which needs Linux 6.9+ with FUSE passthrough), cuse, fuse.")
    var frontend: FrontEndChoice = .auto

    @Option(help: "Path of the device.")
    var device: String = "/dev/netmap"

    @Option(help: "Permission bits of the device and the region file, in octal.")
    var mode: String = "0600"

    @Option(help: "Group owning the device and the region file.")
    var group: String?

    @Option(help: "Packet buffers in the shared pool (2048 bytes each).")
    var poolBuffers: Int = 163_840

    @Option(help: "Ring objects in the shared pool (2288 slots each at most).")
    var poolRings: Int = 200

    @Option(help: "Backend for network interfaces: auto (AF_XDP where the driver runs XDP natively, else AF_PACKET), xdp (AF_XDP), packet (AF_PACKET).")
    var backend: BackendChoice = .auto

    @Option(name: .customLong("packet-interface"),
            help: "Serve this interface through AF_PACKET whatever --backend says (repeatable, or a comma-separated list).")
    var packetInterfaces: [String] = []

    @Option(help: "Native backend: slots per ring.")
    var xdpSlots: Int = 1024

    @Option(help: "Native backend: buffers each RX queue lends the kernel beyond its ring's own, for a client slow to sync.")
    var xdpRxFrames: Int = 4096

    @Option(help: "Native backend: socket bind mode: auto (zero-copy where the driver has it, else copy), copy, zerocopy.")
    var xdpBind: XDPBindMode = .auto

    @Option(help: "Native backend with --backend xdp: where the XDP program runs: auto (native, else generic), native, generic.")
    var xdpMode: XDPAttachMode = .auto

    @Flag(help: "Native backend: let received frames land in pool buffers that are swapped into the RX slots (NS_BUF_CHANGED), instead of copying them into the buffers the slots hold (netmap's behaviour, the default; make bench's xdp-rxpath group measured no difference in rate).")
    var xdpRxSwap = false

    @Flag(help: ArgumentHelp("Native backend: copy received frames into the slots' own buffers (the default; kept for compatibility).", visibility: .hidden))
    var xdpRxCopy = false

    @Option(help: "Generic backend: slots per ring.")
    var packetSlots: Int = 1024

    @Option(help: "Generic backend: NIC ring pairs per interface; 0 (default): one ring per interface queue, as netmap's emulated adapter (RX rings share traffic by queue); N: N pairs sharing traffic by flow hash.")
    var packetRings: Int = 0

    @Flag(help: "Generic backend: transmit around the qdisc (PACKET_QDISC_BYPASS).")
    var packetQdiscBypass = false

    @Option(help: "Generic backend: frames each RX socket's kernel ring holds for a client slow to sync (0: max(8192, 8 x slots)).")
    var packetRxFrames: Int = 0

    @Option(help: "Directory for the region file (must be on tmpfs).")
    var runDir: String = "/run/netmapd"

    @Option(help: "Threads serving device requests.")
    var threads: Int = 2

    @Flag(name: .shortAndLong, help: "Log every registration and release.")
    var verbose = false

    @OptionGroup var service: ServiceOptions   // Service.swift: --config, --control-*

    func validate() throws {
        guard UInt32(mode, radix: 8) != nil else { throw ValidationError("--mode must be octal, e.g. 0660") }
        guard poolBuffers >= 4, poolBuffers <= 1_000_000 else { throw ValidationError("--pool-buffers must be 4...1000000") }
        guard poolRings >= 2, poolRings <= 1024 else { throw ValidationError("--pool-rings must be 2...1024") }
        guard threads >= 1, threads <= 64 else { throw ValidationError("--threads must be 1...64") }
        guard device.hasPrefix("/") else { throw ValidationError("--device must be an absolute path") }
        guard packetSlots >= 64, packetSlots <= 2288 else { throw ValidationError("--packet-slots must be 64...2288") }
        guard packetRings >= 0, packetRings <= 64 else { throw ValidationError("--packet-rings must be 0...64") }
        guard packetRxFrames >= 0, packetRxFrames <= 1 << 20 else { throw ValidationError("--packet-rx-frames must be 0...1048576") }
        guard xdpSlots >= 64, xdpSlots <= 2288 else { throw ValidationError("--xdp-slots must be 64...2288") }
        guard xdpRxFrames >= 0, xdpRxFrames <= 1 << 18 else { throw ValidationError("--xdp-rx-frames must be 0...262144") }
    }

    func run() throws {
        let logger = Logger(label: "netmapd") { StderrLogHandler(label: $0, level: verbose ? .debug : .info) }
        do {
            try serve(logger)
        } catch let e as DaemonError {
            logger.error("\(e.message)")
            throw ExitCode(1)
        }
    }

    struct DaemonError: Error {
        let message: String
    }

    func serve(_ logger: Logger) throws {
        let modeBits = UInt32(mode, radix: 8)! & 0o777
        var gid: gid_t = 0
        if let group {
            guard let gr = getgrnam(group) else { throw DaemonError(message: "group '\(group)' does not exist: create it or drop --group") }
            gid = gr.pointee.gr_gid
        }

        // Signals are taken by sigwait on this thread only.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)

        // The region.
        mkdir(runDir, 0o755)
        try lockRunDirectory()   // Service.swift: one daemon per run directory
        let geometry: PoolGeometry
        do {
            var req = PoolGeometry.Request.netmapDefault
            req.bufCount = poolBuffers
            req.ringCount = poolRings
            geometry = try PoolGeometry(req)
        } catch {
            throw DaemonError(message: "pool geometry refused (\(error)): check --pool-buffers and --pool-rings")
        }
        // The region should live on tmpfs (/run is, on a normal system):
        // AF_XDP refuses a UMEM on a disk-backed mapping.
        if !MemoryRegion.isMemoryBacked(runDir) {
            logger.notice("\(runDir) is not on tmpfs: AF_XDP cannot use the region there (interfaces go through AF_PACKET); choose a tmpfs --run-dir such as /dev/shm/netmapd")
        }
        let regionPath = "\(runDir)/region-1"
        let region: MemoryRegion
        do {
            region = try MemoryRegion(geometry: geometry, backing: .file(path: regionPath, mode: mode_t(modeBits)))
        } catch {
            throw DaemonError(message: "cannot create the region file \(regionPath) (\(error)): is \(runDir) writable and on tmpfs?")
        }
        if gid != 0 { fchown(region.fd, 0, gid) }
        logger.info("region \(regionPath): \(geometry.totalSize >> 20) MiB, \(geometry.bufferCount) buffers of \(geometry.bufferSize) bytes, \(geometry.ringPool.objectCount) rings of up to \(geometry.maxSlotsPerRing) slots")

        // Interfaces: the native backend (AF_XDP) for 'xdp' and, where the
        // driver runs XDP natively, for 'auto'; the generic one (AF_PACKET)
        // for 'packet', for the rest under 'auto', and for --packet-interface.
        let forcedPacket = Set(packetInterfaces.flatMap { $0.split(separator: ",").map { String($0) } })
        // Names are looked up in the caller's network namespace; each
        // namespace's interfaces are watched while ports there exist.
        let namespaces: ProcNamespaces
        let domains: InterfaceDomains
        do {
            namespaces = try ProcNamespaces(log: logger.coreLog)
            domains = try InterfaceDomains(journal: "\(runDir)/namespaces", log: logger.coreLog)
        } catch {
            throw DaemonError(message: "cannot watch network namespaces and interfaces (\(error)): netmapd needs /proc, netlink and CAP_SYS_ADMIN")
        }
        // What a killed daemon left attached: in its own namespace and in
        // those its journal lists (not elsewhere: another netmapd may be
        // serving them).
        let served = domains.journaledNamespaces()
        let toClean = namespaces.all().filter { $0.isDaemons || served.contains($0.id) }
        let cleaned = domains.removeLeftovers(in: toClean,
                                              removers: [PacketBackend.removeLeftover, XDPBackend.removeLeftover,
                                                         InterfaceDomains.removeHostLeftover])
        domains.resetJournal()
        if !served.isEmpty {
            logger.info("an earlier netmapd served \(served.count) other network namespace(s); \(toClean.count - 1) still exist, \(cleaned.count) leftover(s) removed there and here")
        }
        var xdpBackend: XDPBackend?
        if backend == .xdp || backend == .auto {
            var xc = XDPBackendConfig()
            xc.slots = xdpSlots
            xc.rxReserve = xdpRxFrames
            xc.bind = xdpBind
            xc.attach = backend == .auto ? .native : xdpMode
            xc.rxPath = xdpRxSwap && !xdpRxCopy ? .land : .bounce
            do {
                xdpBackend = try XDPBackend(config: xc, domains: domains, log: logger.coreLog)
            } catch {
                if backend == .xdp { throw DaemonError(message: "native (AF_XDP) backend failed to start: \(error)") }
                logger.notice("AF_XDP is not available (\(error)): every interface goes through AF_PACKET")
            }
        }
        var packetBackend: PacketBackend?
        if backend == .packet || backend == .auto || !forcedPacket.isEmpty {
            var cfg = PacketBackendConfig()
            cfg.slots = packetSlots
            cfg.rings = packetRings
            cfg.qdiscBypass = packetQdiscBypass
            cfg.kernelRxFrames = packetRxFrames
            do {
                packetBackend = try PacketBackend(config: cfg, domains: domains, log: logger.coreLog)
            } catch {
                throw DaemonError(message: "generic (AF_PACKET) backend failed to start: \(error)")
            }
            logger.info("AF_PACKET (generic backend): \(packetRings == 0 ? "a ring per interface queue" : "\(packetRings) ring pair(s)"), \(packetSlots) slots each")
        }
        if xdpBackend != nil {
            logger.info("AF_XDP (native backend)\(backend == .auto ? " where the driver runs XDP natively" : ""): a ring pair per queue, \(xdpSlots) slots, \(xdpRxFrames) spare RX buffers per queue")
        }
        let interfaces: InterfaceBackend? = backend == .packet ? packetBackend
            : SelectingBackend(xdp: xdpBackend, packet: packetBackend, packetInterfaces: forcedPacket,
                               fallBack: backend == .auto, log: logger.coreLog)
        let provider = StandardPortProvider(interfaces: interfaces, namespaces: namespaces)
        let engine = NetmapEngine(region: region, provider: provider, log: logger.coreLog)
        let registry = engine.registry
        // Weak: the backends are reached from the registry (provider), and
        // a strong capture would keep the whole engine alive past exit.
        domains.onInterfaceVanished { [weak registry] in registry?.interfaceVanished(port: $0) }
        let log: @Sendable (String) -> Void = { logger.info("\($0)") }

        // auto: CUSE where /dev/cuse exists, else (or when CUSE cannot
        // start) a FUSE file, which needs FUSE passthrough (Linux 6.9+).
        var useCUSE: Bool
        switch frontend {
        case .cuse: useCUSE = true
        case .fuse: useCUSE = false
        case .auto: useCUSE = access("/dev/cuse", F_OK) == 0
        }
        var cuseProblem = useCUSE ? "" : "no /dev/cuse (load the cuse module: modprobe cuse)"

        var stopFrontEnd: () -> Void = {}
        var cuseThread: JoinableThread?
        if useCUSE {
            do {
                guard device.hasPrefix("/dev/"), !device.dropFirst(5).contains("/") else {
                    throw DaemonError(message: "CUSE devices live directly under /dev: \(device) is not possible (use --frontend fuse)")
                }
                let cuse: CUSEDevice
                do {
                    cuse = try CUSEDevice(device: engine, name: String(device.dropFirst(5)), mode: modeBits,
                                          uid: 0, gid: gid, workers: threads, log: log)
                } catch {
                    throw DaemonError(message: "CUSE front end failed: \(error)")
                }
                let box = RunBox(cuse: cuse, logger: logger)
                do {
                    cuseThread = try JoinableThread.spawn { box.run() }
                } catch {
                    throw DaemonError(message: "CUSE front end failed: \(error)")
                }
                box.waitReady()
                if let err = box.failure {
                    cuseThread?.join()
                    cuseThread = nil
                    throw DaemonError(message: "CUSE front end failed: \(err)")
                }
                stopFrontEnd = { cuse.stop() }
                logger.info("\(device) is ready (CUSE): clients map the region through LD_PRELOAD=libnetmapd-shim.so")
            } catch let e as DaemonError where frontend == .auto {
                cuseProblem = e.message
                logger.warning("\(e.message); trying a FUSE file at \(device) instead")
                useCUSE = false
            }
        }
        if !useCUSE {
            let fuse: FUSEFileDevice
            do {
                fuse = try FUSEFileDevice(device: engine, path: device, mode: modeBits, uid: 0, gid: gid,
                                          threads: threads, log: log, debugLog: { logger.debug("\($0)") })
                try fuse.start()
            } catch {
                if frontend == .auto {
                    throw DaemonError(message: "no front end works on this kernel: CUSE: \(cuseProblem); FUSE file: \(error)"
                                      + ". netmapd needs the cuse module (CONFIG_CUSE) or Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH")
                }
                throw DaemonError(message: "FUSE-file front end failed: \(error)")
            }
            stopFrontEnd = { fuse.stop() }
            logger.info("\(device) is ready (FUSE file with passthrough mmap)")
        }
        let control = startControlServer(engine: engine, frontEnd: useCUSE ? "cuse" : "fuse", logger: logger)
        SystemdNotify.send("READY=1\nSTATUS=serving \(device)")

        var sig: Int32 = 0
        repeat {
            sigwait(&set, &sig)
            if sig == SIGHUP { logger.info("SIGHUP: nothing to reload") }
        } while sig == SIGHUP
        logger.info("signal \(sig): shutting down")
        SystemdNotify.send("STOPPING=1")
        control?.stop()
        stopFrontEnd()
        cuseThread?.join()
        engine.valeDetachAll()   // NICs attached to VALE switches leave netmap mode
        packetBackend?.shutdown()
        xdpBackend?.shutdown()
        domains.shutdown()
        // The region file goes now, whoever still holds the mapping: clients
        // have lost the device, and a restart creates a new file anyway.
        unlink(region.path)
        logger.info("stopped")
    }
}

/// Runs CUSEDevice.run on its own thread and reports readiness or failure.
final class RunBox: @unchecked Sendable {
    let cuse: CUSEDevice
    let logger: Logger
    private let done = Semaphore()
    private(set) var failure: Error?

    init(cuse: CUSEDevice, logger: Logger) {
        self.cuse = cuse
        self.logger = logger
    }

    private var wasReady = false

    func run() {
        do {
            try cuse.run(ready: { [self] in
                wasReady = true
                done.signal()
            })
        } catch {
            failure = error
        }
        // Also when run() ends before the device was ready (stopped early,
        // the kernel dropped the connection): nobody must wait forever, and
        // a daemon without its device shuts down instead of idling. A start
        // that failed is the waiting thread's to handle (--frontend auto
        // tries a FUSE file then).
        done.signal()
        if wasReady || failure == nil { kill(getpid(), SIGTERM) }
    }

    func waitReady() { done.wait() }
}

final class Semaphore: @unchecked Sendable {
    private var s = sem_t()
    init() { sem_init(&s, 0, 0) }
    func signal() { sem_post(&s) }
    func wait() { while sem_wait(&s) != 0 && errno == EINTR {} }
}
