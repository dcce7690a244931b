// PacketBackend: the generic backend as the daemon sees it — opens every
// Linux interface of its network namespace as a PacketPort, runs the event
// thread (socket readiness and link changes), and owns what it attaches to
// interfaces (the steal filters) so it can remove it at exit and, after a
// crash, at the next start.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore

public struct PacketBackendConfig: Sendable {
    /// Slots per NIC ring (netmap's generic_ringsize default).
    public var slots = 1024
    /// NIC ring pairs; more than one RX ring shares the traffic by flow
    /// hash (PACKET_FANOUT), TX rings are independent sockets.
    public var rings = 1
    /// PACKET_QDISC_BYPASS on the TX sockets.
    public var qdiscBypass = false
    /// Frames in each RX socket's kernel ring (0: max(8192, 8 × slots)):
    /// the only queue between the wire and a client slow to sync.
    public var kernelRxFrames = 0
    /// Send buffer of each TX socket, bytes.
    public var socketBuffer = 16 << 20
    /// Keep received frames from the host stack while RX rings are in
    /// netmap mode (tc ingress BPF drop).
    public var steal = true

    public init() {}
}

public final class PacketBackend: InterfaceBackend, @unchecked Sendable {
    public let config: PacketBackendConfig
    let log: CoreLog
    let route: NetlinkRoute
    let loop: EventLoop
    let stealer: Stealer
    private let monitor: LinkMonitor
    private var monitorHandler: LinkHandler?
    private let ports = Lock.Protected<[ObjectIdentifier: WeakPort]>([:])
    private let vanishedHook = Lock.Protected<(@Sendable (String) -> Void)?>(nil)

    private struct WeakPort {
        weak var port: PacketPort?
    }

    public init(config: PacketBackendConfig = PacketBackendConfig(), log: CoreLog = .silent) throws(NetmapError) {
        self.config = config
        self.log = log
        route = try NetlinkRoute()
        monitor = try LinkMonitor()
        loop = try EventLoop()
        stealer = Stealer(route: route, log: log)
        let h = LinkHandler(backend: self)
        monitorHandler = h
        _ = try loop.add(fd: monitor.fd, events: NMD_EPOLLIN, handler: h)
        loop.start()
    }

    /// Called (on the event thread) with the name of a served interface that
    /// was deleted; the daemon points it at Registry.interfaceVanished.
    public func onInterfaceVanished(_ hook: @escaping @Sendable (String) -> Void) {
        vanishedHook.withLock { $0 = hook }
    }

    // MARK: InterfaceBackend

    public func port(for name: String, region: MemoryRegion) throws(NetmapError) -> Port {
        guard let f = route.facts(named: name) else { throw .ENXIO }
        let g = PortGeometry(txRings: config.rings, rxRings: config.rings,
                             txSlots: config.slots, rxSlots: config.slots,
                             hostTxRings: 1, hostRxRings: 1)
        let p = PacketPort(facts: f, geometry: g, backend: self)
        ports.withLock { $0[ObjectIdentifier(p)] = WeakPort(port: p) }
        log.debug("\(name): ifindex \(f.ifindex), MTU \(f.mtu), MAC \(f.macString), \(f.txQueues)/\(f.rxQueues) TX/RX queues, \(f.isUp ? "up" : "down"); \(config.rings) ring pair(s) of \(config.slots) slots")
        return p
    }

    public func exists(_ name: String) -> Bool { route.facts(named: name) != nil }

    func forget(_ p: PacketPort) {
        _ = ports.withLock { $0.removeValue(forKey: ObjectIdentifier(p)) }
    }

    // MARK: life cycle

    /// Removes what a previous (killed) daemon left attached to the
    /// interfaces of this namespace. Call before serving.
    @discardableResult
    public func removeLeftovers() -> [String] {
        let cleaned = stealer.removeLeftovers()
        for n in cleaned { log.notice("\(n): removed a tc ingress filter left by an earlier netmapd") }
        return cleaned
    }

    /// Daemon exit: detaches every filter and stops the event thread. Ports
    /// still registered keep their sockets until released.
    public func shutdown() {
        stealer.detachAll()
        loop.stop()
    }

    // MARK: link events

    fileprivate func handleLinkEvents() {
        let events = monitor.drain()
        guard !events.isEmpty else { return }
        let live = ports.withLock { $0.values.compactMap(\.port) }
        LinkEvents.dispatch(events, to: live, route: route, log: log) { vanish($0) }
    }

    private func vanish(_ p: PacketPort) {
        guard p.markVanished() else { return }
        log.notice("\(p.name): interface deleted; its rings are stopped (EIO / POLLERR) until released")
        stealer.detach(ifindex: p.ifindex, all: true)
        let hook = vanishedHook.withLock { $0 }
        hook?(p.name)
    }
}

private final class LinkHandler: EventHandler, @unchecked Sendable {
    weak var backend: PacketBackend?
    init(backend: PacketBackend) { self.backend = backend }
    func handleEvents(_ events: UInt32) { backend?.handleLinkEvents() }
}
