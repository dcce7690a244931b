// XDPBackend: the native backend as the daemon sees it — opens Linux
// interfaces as XDPPorts, runs the event thread (socket readiness, link
// changes, the completion timer), says whether an interface can take it
// (for --backend auto), and owns what it attaches to interfaces so that it
// can remove it at exit and, after a crash, at the next start.
//
// Memory: every socket registers the region's whole buffer area as its
// UMEM, and the kernel pins it, so the first port in netmap mode makes the
// whole pool resident (327 MiB with netmap's default geometry; netmap
// allocates its pool up front too). The region must be on tmpfs (a memfd or
// a file under /run or /dev/shm): the kernel refuses a UMEM on a disk-backed
// mapping.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import CXDPSys
import NetmapCore
import Synchronization

/// How sockets bind.
public enum XDPBindMode: String, Sendable, CaseIterable {
    /// Zero-copy where the driver has it, else copy mode.
    case auto
    case copy
    case zeroCopy = "zerocopy"
}

public struct XDPBackendConfig: Sendable {
    /// Slots per netmap ring.
    public var slots = 1024
    /// Buffers beyond its ring's own that each RX queue gives the kernel:
    /// how many frames can wait in the kernel for a client slow to sync
    /// (taken from the shared pool while the RX ring is in netmap mode).
    public var rxReserve = 4096
    public var bind = XDPBindMode.auto
    public var attach = XDPAttachMode.auto
    /// .bounce forces the copying RX path in copy bind mode too (measurement).
    public var rxPath = XDPReceivePath.land

    public init() {}
}

public final class XDPBackend: InterfaceBackend, @unchecked Sendable {
    public let config: XDPBackendConfig
    let log: CoreLog
    let route: NetlinkRoute
    let loop: EventLoop
    let watcher: CompletionWatcher
    private let monitor: LinkMonitor
    private var monitorHandler: XDPLinkHandler?
    private let ports = Lock.Protected<[ObjectIdentifier: WeakXDPPort]>([:])
    private let vanishedHook = Lock.Protected<(@Sendable (String) -> Void)?>(nil)

    private struct WeakXDPPort {
        weak var port: XDPPort?
    }

    /// EAFNOSUPPORT when the kernel has no AF_XDP sockets.
    public init(config: XDPBackendConfig = XDPBackendConfig(), log: CoreLog = .silent) throws(NetmapError) {
        let probe = socket(44 /* AF_XDP */, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw NetmapError(errno) }
        close(probe)
        self.config = config
        self.log = log
        route = try NetlinkRoute()
        monitor = try LinkMonitor()
        loop = try EventLoop()
        watcher = try CompletionWatcher(loop: loop)
        let h = XDPLinkHandler(backend: self)
        monitorHandler = h
        _ = try loop.add(fd: monitor.fd, events: NMD_EPOLLIN, handler: h)
        loop.start()
    }

    public func onInterfaceVanished(_ hook: @escaping @Sendable (String) -> Void) {
        vanishedHook.withLock { $0 = hook }
    }

    // MARK: InterfaceBackend

    public func port(for name: String, region: MemoryRegion) throws(NetmapError) -> Port {
        guard let f = route.facts(named: name) else { throw .ENXIO }
        if let why = Self.regionProblem(region) {
            log.info("\(name): AF_XDP cannot use the region: \(why)")
            throw .EOPNOTSUPP
        }
        let (rx, tx) = queueCounts(f)
        let g = PortGeometry(txRings: tx, rxRings: rx, txSlots: config.slots, rxSlots: config.slots,
                             hostTxRings: 1, hostRxRings: 1)
        let p = XDPPort(facts: f, geometry: g, backend: self, region: region)
        ports.withLock { $0[ObjectIdentifier(p)] = WeakXDPPort(port: p) }
        log.debug("\(name): ifindex \(f.ifindex), MTU \(f.mtu), MAC \(f.macString), \(tx)/\(rx) TX/RX queues, \(f.isUp ? "up" : "down"); AF_XDP, rings of \(config.slots) slots")
        return p
    }

    public func exists(_ name: String) -> Bool { route.facts(named: name) != nil }

    func forget(_ p: XDPPort) {
        _ = ports.withLock { $0.removeValue(forKey: ObjectIdentifier(p)) }
    }

    /// Ring pairs: the interface's real queues (ethtool channels; else the
    /// kernel's queue counts), at most what a netmap_if can list.
    func queueCounts(_ f: InterfaceFacts) -> (rx: Int, tx: Int) {
        var rx: UInt32 = 0, tx: UInt32 = 0
        var r = f.rxQueues, t = f.txQueues
        if nmd_ethtool_queues(f.name, &rx, &tx) == 0 {
            r = Int(rx)
            t = Int(tx)
        }
        return (min(max(1, r), Self.maxRings), min(max(1, t), Self.maxRings))
    }

    /// 1024-byte netmap_if objects list at most 121 rings, host rings included.
    static let maxRings = 48

    func attachProgram(ifindex: Int32, name: String, queues: Int) throws(NetmapError) -> XDPProgram {
        try XDPProgram.attach(ifindex: ifindex, name: name, queues: queues, mode: config.attach, log: log)
    }

    // MARK: selection (--backend auto)

    /// nil if `name` can be served natively; else why not, for the log.
    /// Native XDP with redirect in the driver, no foreign program attached,
    /// a region the kernel takes as a UMEM.
    public func unsuitability(of name: String, region: MemoryRegion) -> String? {
        if let why = Self.regionProblem(region) { return why }
        guard let f = route.facts(named: name) else { return nil }   // ENXIO follows anyway
        var features: UInt64 = 0
        let rc = nmd_xdp_features(f.ifindex, &features)
        if rc == 0 {
            let need = UInt64(NMD_XDP_ACT_BASIC | NMD_XDP_ACT_REDIRECT)
            if features & need != need {
                return "its driver has no native XDP redirect (xdp-features 0x\(String(features, radix: 16)))"
            }
        }
        // rc < 0: a kernel without the netdev family (before 6.3); the
        // attach at registration will tell.
        for mode in [NMD_XDP_NATIVE, NMD_XDP_GENERIC] {
            let id = nmd_xdp_attached_id(f.ifindex, Int32(mode.rawValue))
            if id != 0 && nmd_xdp_ours_attached(f.ifindex) & Int32(mode.rawValue) == 0 {
                return "another XDP program (id \(id)) is attached"
            }
        }
        return nil
    }

    /// The buffer size the sockets are built for: landing needs a chunk of
    /// buffer + 256 bytes within a page, the kernel a chunk of 2048 or more.
    static let bufferSize = 2048

    /// Why the kernel would refuse the region as a UMEM, or nil.
    static func regionProblem(_ region: MemoryRegion) -> String? {
        if region.bufferSize != bufferSize {
            return "AF_XDP is built for \(bufferSize)-byte buffers, the pool has \(region.bufferSize)"
        }
        if nmd_fd_on_shmem(region.fd) == 0 {
            return "the region file \(region.path) is not on tmpfs (AF_XDP pins its pages; use a --run-dir on tmpfs)"
        }
        return nil
    }

    // MARK: life cycle

    /// Removes the programs a previous (killed) daemon left attached to the
    /// interfaces of this namespace, whatever backend this one will use.
    /// Call before serving.
    @discardableResult
    public static func removeLeftovers(log: CoreLog) -> [String] {
        guard let route = try? NetlinkRoute() else { return [] }
        var cleaned = [String]()
        for f in route.allInterfaces() where nmd_xdp_ours_attached(f.ifindex) != 0 {
            let modes = nmd_xdp_remove_ours(f.ifindex)
            if modes != 0 {
                cleaned.append(f.name)
                log.notice("\(f.name): removed an XDP program (\(XDPProgram.programName)) left by an earlier netmapd")
            }
        }
        return cleaned
    }

    /// Daemon exit: detaches every port's program and stops the event
    /// thread. Sockets close with the process.
    public func shutdown() {
        let live = ports.withLock { $0.values.compactMap(\.port) }
        for p in live { p.detachForExit() }
        loop.stop()
    }

    // MARK: link events

    fileprivate func handleLinkEvents() {
        let events = monitor.drain()
        guard !events.isEmpty else { return }
        let live = ports.withLock { $0.values.compactMap(\.port) }
        LinkEvents.dispatch(events, to: live, route: route, log: log) { vanish($0) }
    }

    private func vanish(_ p: XDPPort) {
        guard p.markVanished() else { return }
        log.notice("\(p.name): interface deleted; its rings are stopped (EIO / POLLERR) until released")
        let hook = vanishedHook.withLock { $0 }
        hook?(p.name)
    }
}

private final class XDPLinkHandler: EventHandler, @unchecked Sendable {
    weak var backend: XDPBackend?
    init(backend: XDPBackend) { self.backend = backend }
    func handleEvents(_ events: UInt32) { backend?.handleLinkEvents() }
}

/// Wakes TX rings whose transmissions complete after their sync returned.
/// AF_XDP signals no event for completions, so while a queue has frames in
/// flight a timer looks at its completion ring: every 100 µs, backing off to
/// 5 ms while nothing completes. (In copy mode most completions are written
/// during the transmit system call itself, and nothing is left to watch.)
final class CompletionWatcher: EventHandler, @unchecked Sendable {
    private let loop: EventLoop
    private let fd: Int32
    /// Watched queues with the generation of their last watch() (a queue
    /// watched again while the timer looked at it stays watched).
    private let state = Lock.Protected<(queues: [ObjectIdentifier: (XDPQueue, UInt64)], generation: UInt64, armed: Bool,
                               interval: UInt64)>(([:], 0, false, 100))
    static let fastest: UInt64 = 100
    static let slowest: UInt64 = 5000

    init(loop: EventLoop) throws(NetmapError) {
        let t = nmd_timerfd()
        guard t >= 0 else { throw NetmapError(-t) }
        fd = t
        self.loop = loop
        _ = try loop.add(fd: t, events: NMD_EPOLLIN, handler: self)
    }

    func watch(_ q: XDPQueue) {
        let arm: UInt64? = state.withLock { s in
            s.generation += 1
            s.queues[ObjectIdentifier(q)] = (q, s.generation)
            guard !s.armed else { return nil }
            s.armed = true
            s.interval = Self.fastest
            return s.interval
        }
        if let us = arm { _ = nmd_timerfd_arm(fd, us) }
    }

    func forget(_ q: XDPQueue) {
        _ = state.withLock { $0.queues.removeValue(forKey: ObjectIdentifier(q)) }
    }

    func handleEvents(_ events: UInt32) {
        _ = nmd_timerfd_drain(fd)
        let queues = state.withLock { Array($0.queues.values) }
        var done = [(ObjectIdentifier, UInt64)]()
        var progress = false
        for (q, gen) in queues {
            let (ready, idle) = q.txNeedsAttention()
            if ready {
                progress = progress || !idle
                done.append((ObjectIdentifier(q), gen))
                if !idle { q.txKring?.wakeup() }
            }
        }
        let next: UInt64? = state.withLock { s in
            for (id, gen) in done where s.queues[id]?.1 == gen { s.queues.removeValue(forKey: id) }
            guard !s.queues.isEmpty else {
                s.armed = false
                return nil
            }
            s.interval = progress ? Self.fastest : min(s.interval * 2, Self.slowest)
            return s.interval
        }
        if let us = next { _ = nmd_timerfd_arm(fd, us) }
    }
}
