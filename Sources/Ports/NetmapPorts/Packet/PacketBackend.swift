// PacketBackend: the generic backend as the daemon sees it — opens a Linux
// interface of the caller's network namespace as a PacketPort and runs the
// event thread of its sockets. What it attaches to interfaces (the steal
// filters) is kept per namespace by InterfaceDomains, which removes it at
// exit and, after a crash, at the next start.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore

public struct PacketBackendConfig: Sendable {
    /// Slots per NIC ring (netmap's generic_ringsize default).
    public var slots = 1024
    /// NIC ring pairs. 0 (the default): as netmap's emulated adapter, one
    /// TX ring per TX queue and one RX ring per RX queue of the interface,
    /// RX rings sharing the traffic by the queue it came on
    /// (PACKET_FANOUT_QM). N > 0: N pairs, RX shared by flow hash. TX rings
    /// are independent sockets.
    public var rings = 0
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
    let domains: InterfaceDomains
    /// The sockets' event thread.
    let loop: EventLoop

    public init(config: PacketBackendConfig = PacketBackendConfig(), domains: InterfaceDomains,
                log: CoreLog = .silent) throws(NetmapError) {
        self.config = config
        self.log = log
        self.domains = domains
        loop = try EventLoop()
        try loop.start()
    }

    // MARK: InterfaceBackend

    public func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        let d = try domains.acquire(ns)
        guard let f = d.route.facts(named: name) else {
            domains.release(d)
            throw .ENXIO
        }
        var (rx, tx) = (config.rings, config.rings)
        if config.rings == 0 {
            do throws(NetmapError) {
                (rx, tx) = try ns.perform { f.queueCounts() }
            } catch {
                domains.release(d)
                throw error
            }
        }
        let g = PortGeometry(txRings: tx, rxRings: rx,
                             txSlots: config.slots, rxSlots: config.slots,
                             hostTxRings: 1, hostRxRings: 1)
        let p = PacketPort(facts: f, geometry: g, domain: d, backend: self)
        d.add(p)
        log.debug("\(d.label(name)): ifindex \(f.ifindex), MTU \(f.mtu), MAC \(f.macString), \(f.txQueues)/\(f.rxQueues) TX/RX queues, \(f.isUp ? "up" : "down"); \(tx)/\(rx) TX/RX rings of \(config.slots) slots")
        return p
    }

    public func exists(_ name: String, in ns: NetNamespace) -> Bool {
        (try? domains.withDomain(ns) { $0.route.facts(named: name) != nil }) ?? false
    }

    // MARK: life cycle

    /// The steal filter a killed daemon left on an interface: removed, and
    /// said what, for InterfaceDomains.removeLeftovers.
    public static func removeLeftover(route: NetlinkRoute, facts f: InterfaceFacts) -> String? {
        Stealer.removeLeftover(route: route, facts: f) ? "a tc ingress filter (\(Stealer.programName))" : nil
    }

    /// Daemon exit: stops the event thread. Ports still registered keep
    /// their sockets until released.
    public func shutdown() {
        loop.stop()
    }
}
