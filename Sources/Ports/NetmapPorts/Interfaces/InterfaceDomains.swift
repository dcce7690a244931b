// The interfaces of each network namespace, as both backends (AF_PACKET,
// AF_XDP) see them: one InterfaceDomain per namespace that has ports, with a
// route socket for interface facts, a link monitor whose events stop and
// restart the ports' rings, the ports open there, and the tc steal filters
// attached there. Both backends share one InterfaceDomains, so a namespace
// has one route socket and one monitor whichever backend serves its ports.
//
// Link events: a port whose link went down locks its rings (syncs wait,
// poll finds nothing ready) until it comes up again; a port whose interface
// was deleted (or moved to another namespace) stops them for good (EIO,
// POLLERR); a rename is noted and the port keeps its name.
//
// A domain other than the daemon's own lives while ports or lookups use it:
// the namespace is held open only as long as netmapd serves something in it.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore

public final class InterfaceDomains: @unchecked Sendable {
    let log: CoreLog
    /// The link monitors' event thread (also the host paths' TAPs).
    let loop: EventLoop
    private let lock = Lock()
    private var domains: [UInt64: (domain: InterfaceDomain, users: Int, monitorId: UInt64)] = [:]
    private let vanishedHook = Lock.Protected<(@Sendable (Port) -> Void)?>(nil)
    /// A file listing (one id a line) the namespaces other than the
    /// daemon's that this daemon served, so that the next one cleans them
    /// after a crash, and only them (another netmapd may serve the rest).
    private let journalPath: String?
    private var journaled: Set<UInt64> = []

    public init(journal: String? = nil, log: CoreLog = .silent) throws(NetmapError) {
        self.log = log
        journalPath = journal
        loop = try EventLoop()
        try loop.start()
    }

    /// The namespace ids an earlier daemon's journal lists (read at start).
    public func journaledNamespaces() -> Set<UInt64> {
        guard let path = journalPath, let f = fopen(path, "r") else { return [] }
        defer { fclose(f) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0 ..< n]
        }
        return Set(String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { UInt64($0) })
    }

    /// Starts the journal afresh (after the leftovers were removed).
    public func resetJournal() {
        guard let path = journalPath else { return }
        lock.withLock {
            journaled.removeAll()
            unlink(path)
        }
    }

    /// Notes `ns` in the journal before anything is attached in it (lock held).
    private func journal(_ ns: NetNamespace) {
        guard let path = journalPath, !ns.isDaemons, journaled.insert(ns.id).inserted else { return }
        guard let f = fopen(path, "a") else {
            log.warning("cannot write \(path): a crash now would leave attachments in \(ns) that the next start does not remove")
            return
        }
        fputs("\(ns.id)\n", f)
        fflush(f)
        fsync(fileno(f))
        fclose(f)
    }

    /// Called (on the event thread) with each port whose interface was
    /// deleted; the daemon points it at Registry.interfaceVanished(port:).
    public func onInterfaceVanished(_ hook: @escaping @Sendable (Port) -> Void) {
        vanishedHook.withLock { $0 = hook }
    }

    /// The domain of `ns`, made inside it on first use. Pair with release().
    func acquire(_ ns: NetNamespace) throws(NetmapError) -> InterfaceDomain {
        try lock.withLock { () throws(NetmapError) -> InterfaceDomain in
            if let e = domains[ns.id] {
                domains[ns.id]!.users = e.users + 1
                return e.domain
            }
            journal(ns)
            let d = try ns.perform { () throws(NetmapError) in try InterfaceDomain(ns: ns, owner: self) }
            let id = try loop.add(fd: d.monitor.fd, events: NMD_EPOLLIN, handler: d)
            domains[ns.id] = (d, 1, id)
            if !ns.isDaemons { log.debug("\(ns): serving its interfaces") }
            return d
        }
    }

    /// Gives back what acquire() gave; a namespace other than the daemon's
    /// is let go with its last user.
    func release(_ d: InterfaceDomain) {
        lock.withLock {
            guard let e = domains[d.ns.id], e.domain === d else { return }
            guard e.users <= 1, !d.ns.isDaemons else {
                domains[d.ns.id]!.users = max(e.users - 1, 1)
                return
            }
            loop.remove(fd: d.monitor.fd, id: e.monitorId)
            domains.removeValue(forKey: d.ns.id)
            try? d.ns.perform { d.stealer.detachAll() }
            log.debug("\(d.ns): no port left there")
        }
    }

    /// `body` with the domain of `ns` (a lookup that keeps nothing).
    func withDomain<T>(_ ns: NetNamespace, _ body: (InterfaceDomain) throws(NetmapError) -> T) throws(NetmapError) -> T {
        let d = try acquire(ns)
        defer { release(d) }
        return try body(d)
    }

    /// Every port open now, in every namespace.
    var allPorts: [InterfacePort] {
        lock.withLock { domains.values.flatMap { $0.domain.livePorts } }
    }

    /// Removes what an earlier, killed netmapd left attached to the
    /// interfaces of `namespaces` (tc steal filters, XDP programs). Call
    /// before serving. Returns "interface (namespace)" for each cleaned.
    public func removeLeftovers(in namespaces: [NetNamespace],
                                removers: [(NetlinkRoute, InterfaceFacts) -> String?]) -> [String] {
        var cleaned = [String]()
        for ns in namespaces {
            let found: [String]? = try? ns.perform { () throws(NetmapError) -> [String] in
                let route = try NetlinkRoute()
                var out = [String]()
                for f in route.allInterfaces() {
                    for remove in removers {
                        if let what = remove(route, f) {
                            log.notice("\(f.name)\(ns.isDaemons ? "" : " (\(ns))"): removed \(what) left by an earlier netmapd")
                            out.append(f.name)
                        }
                    }
                }
                return out
            }
            cleaned += found ?? []
        }
        return cleaned
    }

    /// Daemon exit: every domain's steal filters go, the event thread stops,
    /// and the journal with them (nothing is left to clean).
    public func shutdown() {
        let all = lock.withLock { domains.values.map(\.domain) }
        for d in all {
            try? d.ns.perform {
                for p in d.livePorts { p.closeHostPath() }
                d.stealer.detachAll()
            }
        }
        loop.stop()
        resetJournal()
    }

    /// The host-ring filters a killed daemon left on an interface (its TAP
    /// went with it): removed, and said what, for removeLeftovers.
    public static func removeHostLeftover(route: NetlinkRoute, facts f: InterfaceFacts) -> String? {
        HostPath.removeLeftover(route: route, facts: f)
    }

    fileprivate func vanished(_ p: InterfacePort) {
        let hook = vanishedHook.withLock { $0 }
        hook?(p)
    }
}

/// One namespace's interfaces (see InterfaceDomains).
final class InterfaceDomain: EventHandler, @unchecked Sendable {
    let ns: NetNamespace
    /// Facts about this namespace's interfaces (the socket was made in it).
    let route: NetlinkRoute
    let monitor: LinkMonitor
    /// The AF_PACKET backend's ingress filters on this namespace's interfaces.
    let stealer: Stealer
    private unowned let owner: InterfaceDomains
    private let ports = Lock.Protected<[ObjectIdentifier: WeakPort]>([:])

    private struct WeakPort {
        weak var port: InterfacePort?
    }

    /// Call inside `ns`.
    fileprivate init(ns: NetNamespace, owner: InterfaceDomains) throws(NetmapError) {
        self.ns = ns
        self.owner = owner
        route = try NetlinkRoute()
        monitor = try LinkMonitor()
        stealer = Stealer(route: route, log: owner.log)
    }

    var log: CoreLog { owner.log }
    var loop: EventLoop { owner.loop }

    func add(_ p: InterfacePort) {
        ports.withLock { $0[ObjectIdentifier(p)] = WeakPort(port: p) }
    }

    /// The port is destroyed: forget it and give back its use of the domain.
    func remove(_ p: InterfacePort) {
        _ = ports.withLock { $0.removeValue(forKey: ObjectIdentifier(p)) }
        owner.release(self)
    }

    var livePorts: [InterfacePort] { ports.withLock { $0.values.compactMap(\.port) } }

    /// A name for logs: the interface, and its namespace unless the daemon's.
    func label(_ name: String) -> String { ns.isDaemons ? name : "\(name) (\(ns))" }

    // MARK: link events (event thread)

    func handleEvents(_ events: UInt32) {
        let events = monitor.drain()
        guard !events.isEmpty else { return }
        let live = livePorts
        for e in events {
            switch e {
            case .removed(let ifindex):
                for p in live where p.ifindex == ifindex { vanish(p) }
            case .changed(let ifindex, let name, let mtu, let isUp):
                for p in live where p.ifindex == ifindex {
                    if let name, name != p.name {
                        log.notice("\(label(p.name)): interface renamed to \(name); the port keeps its old name")
                    }
                    p.linkChanged(isUp: isUp, mtu: mtu)
                }
            case .overrun:
                // Lost notifications: look at every port's interface again.
                for p in live {
                    if let f = route.facts(index: p.ifindex) {
                        p.linkChanged(isUp: f.isUp, mtu: f.mtu)
                    } else {
                        vanish(p)
                    }
                }
            }
        }
    }

    private func vanish(_ p: InterfacePort) {
        guard p.markVanished() else { return }
        log.notice("\(label(p.name)): interface deleted; its rings are stopped (EIO / POLLERR) until released")
        owner.vanished(p)
    }
}
