// XDPBackend: the native backend as the daemon sees it — opens a Linux
// interface of the caller's network namespace as an XDPPort, runs the event
// thread of its sockets and the completion timer, says whether an interface
// can take it (for --backend auto), and removes what it attached at exit
// and, after a crash, at the next start. Link events and the namespaces are
// InterfaceDomains', shared with the generic backend.
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
    /// .bounce (the default): received frames are copied into the buffers
    /// the RX slots hold, so a slot's buf_idx changes only when the program
    /// swaps it, as on netmap's NIC rings. .land (--xdp-rx-swap, copy bind
    /// mode only): frames land in pool buffers swapped into the slots.
    /// make bench's xdp-rxpath group: the same rate either way (0.656 vs
    /// 0.642 Mpps at 60 bytes, 3 rounds).
    public var rxPath = XDPReceivePath.bounce

    public init() {}
}

public final class XDPBackend: InterfaceBackend, @unchecked Sendable {
    public let config: XDPBackendConfig
    let log: CoreLog
    let domains: InterfaceDomains
    /// The sockets' event thread (and the completion timer).
    let loop: EventLoop
    let watcher: CompletionWatcher

    /// EAFNOSUPPORT when the kernel has no AF_XDP sockets.
    public init(config: XDPBackendConfig = XDPBackendConfig(), domains: InterfaceDomains,
                log: CoreLog = .silent) throws(NetmapError) {
        let probe = socket(44 /* AF_XDP */, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw NetmapError(errno) }
        close(probe)
        self.config = config
        self.log = log
        self.domains = domains
        loop = try EventLoop()
        watcher = try CompletionWatcher(loop: loop)
        try loop.start()
    }

    // MARK: InterfaceBackend

    public func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        let d = try domains.acquire(ns)
        do throws(NetmapError) {
            guard let f = d.route.facts(named: name) else { throw .ENXIO }
            if let why = Self.regionProblem(region) {
                log.info("\(d.label(name)): AF_XDP cannot use the region: \(why)")
                throw .EOPNOTSUPP
            }
            let (rx, tx) = try ns.perform { f.queueCounts() }
            let g = PortGeometry(txRings: tx, rxRings: rx, txSlots: config.slots, rxSlots: config.slots,
                                 hostTxRings: 1, hostRxRings: 1)
            let p = XDPPort(facts: f, geometry: g, domain: d, backend: self, region: region)
            d.add(p)
            log.debug("\(d.label(name)): ifindex \(f.ifindex), MTU \(f.mtu), MAC \(f.macString), \(tx)/\(rx) TX/RX queues, \(f.isUp ? "up" : "down"); AF_XDP, rings of \(config.slots) slots")
            return p
        } catch {
            domains.release(d)
            throw error
        }
    }

    public func exists(_ name: String, in ns: NetNamespace) -> Bool {
        (try? domains.withDomain(ns) { $0.route.facts(named: name) != nil }) ?? false
    }

    func attachProgram(ifindex: Int32, name: String, queues: Int) throws(NetmapError) -> XDPProgram {
        try XDPProgram.attach(ifindex: ifindex, name: name, queues: queues, mode: config.attach, log: log)
    }

    // MARK: selection (--backend auto)

    /// nil if `name` (in `ns`) can be served natively; else why not, for the
    /// log. Native XDP with redirect in the driver, no foreign program
    /// attached, a region the kernel takes as a UMEM.
    public func unsuitability(of name: String, in ns: NetNamespace, region: MemoryRegion) -> String? {
        if let why = Self.regionProblem(region) { return why }
        let answer: String?? = try? domains.withDomain(ns) { d throws(NetmapError) -> String? in
            guard let f = d.route.facts(named: name) else { return nil }   // ENXIO follows anyway
            return try ns.perform { () -> String? in
                var features: UInt64 = 0
                let rc = nmd_xdp_features(f.ifindex, &features)
                if rc == 0 {
                    let need = UInt64(NMD_XDP_ACT_BASIC | NMD_XDP_ACT_REDIRECT)
                    if features & need != need {
                        return "its driver has no native XDP redirect (xdp-features 0x\(String(features, radix: 16)))"
                    }
                }
                // rc < 0: a kernel without the netdev family (before 6.3);
                // the attach at registration will tell.
                for mode in [NMD_XDP_NATIVE, NMD_XDP_GENERIC] {
                    let id = nmd_xdp_attached_id(f.ifindex, Int32(mode.rawValue))
                    if id != 0 && nmd_xdp_ours_attached(f.ifindex) & Int32(mode.rawValue) == 0 {
                        return "another XDP program (id \(id)) is attached"
                    }
                }
                return nil
            }
        }
        return answer ?? nil
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

    /// The program a killed daemon left on an interface (recognised by its
    /// name): removed, and said what, for InterfaceDomains.removeLeftovers.
    /// The killed daemon's sockets are gone, and with them its map entries.
    public static func removeLeftover(route: NetlinkRoute, facts f: InterfaceFacts) -> String? {
        guard nmd_xdp_ours_attached(f.ifindex) != 0, nmd_xdp_remove_ours(f.ifindex) != 0 else { return nil }
        return "an XDP program (\(XDPProgram.programName))"
    }

    /// Daemon exit: detaches every port's program and stops the event
    /// thread. Sockets close with the process.
    public func shutdown() {
        for case let p as XDPPort in domains.allPorts { p.detachForExit() }
        loop.stop()
    }
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
