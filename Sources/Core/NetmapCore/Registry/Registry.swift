// Registry: which ports exist and who holds them (netmap's NMG_LOCK domain).
// Resolves a request's name to a PortAdapter, creating interface adapters,
// pipe pairs and null ports on demand (§8.1), and destroys them when their
// last file goes. Every registration and release runs under `lock`.

/// Creates ports. The daemon's provider knows the backends (AF_XDP,
/// AF_PACKET); tests plug in their own.
public protocol PortProvider: AnyObject, Sendable {
    /// The network namespace of the calling thread `tid` (as the front end
    /// saw it), where the caller's interface names are looked up. ENXIO when
    /// it cannot be known: a name is never looked up anywhere else.
    func namespace(ofCaller tid: Int32) throws(NetmapError) -> NetNamespace
    /// A port for the Linux interface `name` of `ns`; ENXIO if there is none.
    func interfacePort(named name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port
    /// Whether `name` is an interface of `ns` the provider can open.
    func interfaceExists(named name: String, in ns: NetNamespace) -> Bool
    /// A pipe's two endpoints as adapters whose rings are already linked and
    /// have memory (§12). `geometry` is the master's.
    func makePipePair(master: String, slave: String, geometry: PortGeometry,
                      region: MemoryRegion) throws(NetmapError) -> (master: PortAdapter, slave: PortAdapter)
    /// A null port (§13) with the given rings.
    func makeNullPort(name: String, geometry: PortGeometry) -> Port
}

/// Creation hints a request carries (ring and slot counts honoured for
/// pipes and null ports; host ring counts for interface ports).
public struct PortHints: Sendable, Equatable {
    public var txRings = 0, rxRings = 0, txSlots = 0, rxSlots = 0
    public var hostTxRings = 0, hostRxRings = 0
    /// The request's nr_mem_id (already known to exist): a new VALE port
    /// or a null port uses it instead of its default.
    public var memId: UInt16 = 0
    public init(txRings: Int = 0, rxRings: Int = 0, txSlots: Int = 0, rxSlots: Int = 0,
                hostTxRings: Int = 0, hostRxRings: Int = 0) {
        self.txRings = txRings
        self.rxRings = rxRings
        self.txSlots = txSlots
        self.rxSlots = rxSlots
        self.hostTxRings = hostTxRings
        self.hostRxRings = hostRxRings
    }
}

/// A port whose host ring counts the request that creates it may choose
/// (`nr_host_tx_rings` / `nr_host_rx_rings`, 0 = keep the default). Called
/// once, before the port's adapter exists.
public protocol HostRingsRequestable: AnyObject {
    func requestHostRings(tx: Int, rx: Int)
}

public final class Registry: @unchecked Sendable {
    public let region: MemoryRegion
    public let provider: PortProvider
    public let log: CoreLog
    let lock = Lock()

    private var adapters: [String: PortAdapter] = [:]
    private var pipePeer: [String: String] = [:]
    private var pipesPerParent: [String: Int] = [:]
    private var pipeParentOf: [String: String] = [:]
    /// Allocator ids in use (§4.1; VALE ports have their own).
    var memIds: MemoryIds
    /// The VALE switches (§11).
    private(set) lazy var vale = ValeSwitches(registry: self)
    /// Registered files across all ports; at zero the pools are reset.
    private(set) var activeSessions = 0

    /// Default slot count of a pipe whose parent is not an interface.
    public static let defaultPipeSlots = 1024
    /// netmap's bounds on a pipe's rings and slots (§12).
    public static let maxPipeRings = 256, maxPipeSlots = 4096
    /// Null ports made so far (each gets its own key).
    private var nullPorts: UInt64 = 0
    /// Monitor ports made so far (each gets its own key).
    private var monitorPorts: UInt64 = 0
    /// The slot count pipes and null ports get when the request names none
    /// (netmap's 1024; the fuzz targets lower it, so that each input costs
    /// less without leaving any path out). Set before the first request.
    public var defaultSlots = Registry.defaultPipeSlots

    public init(region: MemoryRegion, provider: PortProvider, log: CoreLog = .silent) {
        self.region = region
        self.provider = provider
        self.log = log
        memIds = MemoryIds(global: region.memId)
    }

    /// Names of the ports that exist now (for status and tests).
    public var portNames: [String] { lock.withLock { adapters.values.map(\.name).sorted() } }

    /// Registered files and existing ports.
    public var counts: (sessions: Int, ports: Int) { lock.withLock { (activeSessions, adapters.count) } }

    /// Every port that exists now.
    public var allAdapters: [PortAdapter] { lock.withLock { adaptersLocked } }
    var adaptersLocked: [PortAdapter] { Array(adapters.values) }

    public func adapter(named name: String) -> PortAdapter? { lock.withLock { adapters[name] } }

    /// The adapter filed under `key`, if any (caller holds `lock`).
    func existingAdapter(key: String) -> PortAdapter? { adapters[key] }

    /// The key a pipe endpoint is filed under. Endpoint names are ambiguous:
    /// "a}b}c" is the slave of pipe ("a}b", "c") and also of pipe ("a", "b}c"),
    /// whose master is "a{b}c"; and "null:x{1" is a pipe endpoint as well as
    /// the key of null port "x{1". So pipes are filed by parent and id,
    /// spelled in a way no name that reaches the registry can spell.
    static func pipeKey(parent: String, id: String, master: Bool) -> String {
        "\u{0}pipe \(parent.utf8.count) \(parent)\(master ? "{" : "}")\(id)"
    }

    /// The key an interface port is filed under: its name in the daemon's
    /// own namespace, else name and namespace (the same name in two
    /// namespaces is two ports), spelled so that no request name can.
    static func interfaceKey(_ name: String, in ns: NetNamespace) -> String {
        ns.isDaemons ? name : "\u{0}netns \(ns.id) \(name)"
    }

    // MARK: resolution (caller holds `lock`)

    /// The adapter for `name`, created if needed (REGISTER, PORT_INFO_GET and
    /// POOLS_INFO_GET resolve "with creation", §3.4). Call `dropIfUnused`
    /// afterwards if no file ends up holding it.
    /// Interface names are looked up in the network namespace of `caller`
    /// (the thread that made the request), never in the daemon's own.
    func resolve(name: String, mode: UInt32, hints: PortHints, caller: Int32,
                 vale purpose: ValeSwitches.Purpose = .register) throws(NetmapError) -> PortAdapter {
        switch try PortName.parse(name, mode: mode) {
        case .null(let n):
            // Every null registration gets a port of its own, with exactly
            // the rings it asked for (§13): nothing is shared by name.
            nullPorts &+= 1
            let key = "\u{0}null \(nullPorts)"
            let g = PortGeometry(txRings: hints.txRings, rxRings: hints.rxRings,
                                 txSlots: hints.txSlots > 0 ? hints.txSlots : defaultSlots,
                                 rxSlots: hints.rxSlots > 0 ? hints.rxSlots : defaultSlots)
            let a = PortAdapter(port: provider.makeNullPort(name: "null:\(n)", geometry: g), region: region,
                                registryName: key)
            if hints.memId != 0 { a.memId = hints.memId }
            adapters[key] = a
            return a
        case .pipe(let parent, let id, let master):
            guard mode == RegisterMode.allNIC || mode == RegisterMode.oneNIC else { throw .EINVAL }
            let (mName, sName) = PortName.pipeNames(parent: parent, id: id)
            let mKey = Self.pipeKey(parent: parent, id: id, master: true)
            let sKey = Self.pipeKey(parent: parent, id: id, master: false)
            if let a = adapters[master ? mKey : sKey] { return a }
            try checkNewPipe(name: name, parent: parent)
            let g = pipeGeometry(parent: parent, hints: hints)
            let (m, s) = try provider.makePipePair(master: mName, slave: sName, geometry: g, region: region)
            m.registryName = mKey
            s.registryName = sKey
            adapters[mKey] = m
            adapters[sKey] = s
            pipePeer[mKey] = sKey
            pipePeer[sKey] = mKey
            pipeParentOf[mKey] = parent
            pipesPerParent[parent, default: 0] += 1
            log.debug("pipe \(mName) / \(sName) created: \(g.txRings)+\(g.rxRings) rings of \(g.txSlots)/\(g.rxSlots) slots")
            return master ? m : s
        case .vale(let n):
            let key = ValeSwitches.key(n)
            if let a = adapters[key] { return a }
            let a = try vale.resolve(name: n, hints: hints, caller: caller, purpose: purpose)
            adapters[key] = a
            return a
        case .interface(let n):
            let ns = try provider.namespace(ofCaller: caller)
            let key = Self.interfaceKey(n, in: ns)
            if let a = adapters[key] { return a }
            let port = try provider.interfacePort(named: n, in: ns, region: region)
            if hints.hostTxRings > 0 || hints.hostRxRings > 0, let p = port as? HostRingsRequestable {
                p.requestHostRings(tx: hints.hostTxRings, rx: hints.hostRxRings)
            }
            let a = PortAdapter(port: port, region: region, registryName: key)
            adapters[key] = a
            return a
        }
    }

    /// A new monitor of `parent` (§13); every monitor registration makes
    /// its own, named after the parent and a counter.
    func makeMonitor(of parent: PortAdapter, flags: UInt64, hints: PortHints) -> PortAdapter {
        let port = MonitorPort(parent: parent, flags: flags, hints: hints, serial: parent.monitorSerial)
        parent.monitorSerial += 1
        monitorPorts &+= 1
        let key = "\u{0}monitor \(monitorPorts)"
        let a = PortAdapter(port: port, region: region, registryName: key)
        adapters[key] = a
        return a
    }

    /// The last file of `a` went: its monitors are forgotten (their syncs
    /// fail with EIO from now on), as netmap does when a port leaves
    /// netmap mode.
    func leftNetmapMode(_ a: PortAdapter) {
        for m in adapters.values {
            if let mp = m.port as? MonitorPort, mp.parent === a { mp.orphan() }
        }
    }

    /// Whether a pipe of `parent` may be created (§12).
    private func checkNewPipe(name: String, parent: String) throws(NetmapError) {
        // The parent only lends its allocator, and every port here shares
        // region 1; so a missing parent needs nothing created (§12, §14.15).
        if case .vale = try PortName.parse(parent, mode: RegisterMode.allNIC) {
            log.info("\(name): pipes on VALE ports are not supported")
            throw .ENXIO
        }
        guard pipesPerParent[parent, default: 0] < 64 else { throw .EINVAL }
    }

    /// A new pipe's master geometry (§12): always the request's counts,
    /// whichever end is opened first (the slave gets them swapped). Ring
    /// counts are clamped to 1…256, slot counts to 1…4096 (0: the parent's),
    /// as netmap bounds them; memory is only looked at by REGISTER.
    private func pipeGeometry(parent: String, hints: PortHints) -> PortGeometry {
        var parentSlots = (tx: defaultSlots, rx: defaultSlots)
        if let p = adapters[parent] ?? adapters.values.first(where: { $0.name == parent }) {
            parentSlots = (p.geometry.txSlots, p.geometry.rxSlots)
        }
        func rings(_ r: Int) -> Int { min(max(r, 1), Self.maxPipeRings) }
        func slots(_ s: Int, _ parent: Int) -> Int {
            s == 0 ? min(max(parent, 1), Self.maxPipeSlots) : min(s, Self.maxPipeSlots)
        }
        return PortGeometry(txRings: rings(hints.txRings), rxRings: rings(hints.rxRings),
                            txSlots: slots(hints.txSlots, parentSlots.tx), rxSlots: slots(hints.rxSlots, parentSlots.rx))
    }

    /// PORT_INFO_GET and POOLS_INFO_GET (§3.4): the geometry of the port
    /// `name`, resolved as REGISTER with ALL_NIC would. netmap creates a
    /// missing pipe for the question and destroys it again; here it is only
    /// computed, so no memory is taken or checked (REGISTER does that).
    func describe(name: String, hints: PortHints, caller: Int32) throws(NetmapError) -> (PortGeometry, memId: UInt16) {
        if case .pipe(let parent, let id, let master) = try PortName.parse(name, mode: RegisterMode.allNIC) {
            if let a = adapters[Self.pipeKey(parent: parent, id: id, master: master)] { return (a.geometry, a.memId) }
            try checkNewPipe(name: name, parent: parent)
            let g = pipeGeometry(parent: parent, hints: hints)
            return (master ? g : PortGeometry(txRings: g.rxRings, rxRings: g.txRings, txSlots: g.rxSlots, rxSlots: g.txSlots),
                    region.memId)
        }
        let a = try resolve(name: name, mode: RegisterMode.allNIC, hints: hints, caller: caller, vale: .info)
        defer { dropIfUnused(a) }
        return (a.geometry, a.memId)
    }

    /// Whether a port of that name exists now, without creating it
    /// (PORT_HDR_GET): nil if it does, else the errno netmap gives.
    func existenceError(name: String, caller: Int32) -> NetmapError? {
        guard let parsed = try? PortName.parse(name, mode: RegisterMode.allNIC) else { return .EINVAL }
        switch parsed {
        case .pipe(let parent, let id, let master):
            return adapters[Self.pipeKey(parent: parent, id: id, master: master)] != nil ? nil : .ENODEV
        case .vale(let n): return adapters[ValeSwitches.key(n)] != nil ? nil : .ENXIO
        case .interface(let n):
            guard let ns = try? provider.namespace(ofCaller: caller) else { return .ENXIO }
            if adapters[Self.interfaceKey(n, in: ns)] != nil { return nil }
            return provider.interfaceExists(named: n, in: ns) ? nil : .ENXIO
        case .null: return adapters[name] != nil ? nil : .ENXIO
        }
    }

    /// Destroys `a` (and its pipe peer) if no file holds it any more.
    func dropIfUnused(_ a: PortAdapter) {
        guard a.alive, a.sessions == 0 else { return }
        if let peerName = pipePeer[a.registryName] {
            guard let peer = adapters[peerName], peer.sessions == 0 else { return }
            for x in [a, peer] {
                x.port.destroy(adapter: x)
                x.alive = false
                adapters.removeValue(forKey: x.registryName)
                pipePeer.removeValue(forKey: x.registryName)
                if let parent = pipeParentOf.removeValue(forKey: x.registryName) {
                    pipesPerParent[parent, default: 1] -= 1
                    if pipesPerParent[parent] == 0 { pipesPerParent.removeValue(forKey: parent) }
                }
            }
            return
        }
        a.port.destroy(adapter: a)
        for k in a.txKrings + a.rxKrings where k.hasMemory { a.destroyRingMemory(k) }
        a.alive = false
        adapters.removeValue(forKey: a.registryName)
    }

    /// Every buffer a ring owns now (caller holds `lock`), for the release
    /// of a client's extra buffers (§4.7). A ring owns what its slots name;
    /// a pipe link's two rings name the same buffers, and slot k belongs to
    /// the receiver while it holds the packet ([RX hwcur … RX hwtail), §12),
    /// to the sender otherwise: the other side's descriptor is stale there,
    /// and the buffer it names may well be a client's extra buffer now.
    /// Each ring is read under its sync lock; a sync that found it busy
    /// skipped it, so its pollers are woken afterwards to look again.
    func buffersHeldByRings() -> BufferSet {
        var set = BufferSet(count: region.bufferCount)
        var looked = [Kring]()
        defer { for k in looked { k.wakeup() } }
        for a in adapters.values {
            looked += a.txKrings + a.rxKrings
            if let peerKey = pipePeer[a.registryName] {
                guard let peer = adapters[peerKey] else { continue }
                // Each link once: from its TX side (A's TX ring i feeds the peer's RX ring i).
                for (t, r) in zip(a.txKrings, peer.rxKrings) {
                    t.syncLock.withLock {
                        r.syncLock.withLock {
                            guard t.hasMemory, r.hasMemory else { return }
                            let n = t.numSlots, held = RingIndex.distance(r.hwcur, r.hwtail, n)
                            for k in 0 ..< n {
                                let atReceiver = RingIndex.distance(r.hwcur, k, n) < held
                                set.insert(atReceiver ? r.ring.slot(k).bufIdx : t.ring.slot(k).bufIdx)
                            }
                        }
                    }
                }
                continue
            }
            for k in a.txKrings + a.rxKrings {
                k.syncLock.withLock {
                    guard k.hasMemory else { return }
                    let r = k.ring
                    for i in 0 ..< k.numSlots { set.insert(r.slot(i).bufIdx) }
                }
            }
        }
        return set
    }

    func sessionRegistered() { activeSessions += 1 }

    func sessionReleased() {
        activeSessions -= 1
        if activeSessions == 0 {
            let leaked = region.resetPools()
            if leaked.ifs + leaked.rings + leaked.buffers > 0 {
                log.notice("last client gone: reclaimed \(leaked.buffers) buffers, \(leaked.rings) rings, \(leaked.ifs) interface objects left allocated by clients")
            }
        }
    }

    /// Marks every ring of interface `name` stopped (it went away): syncs on
    /// them report EIO, poll reports POLLERR, other ports are untouched.
    public func interfaceVanished(_ name: String) {
        lock.withLock {
            guard let a = adapters[name] else { return }
            Self.stop(a)
        }
    }

    /// The same for the adapter of `port`, whatever namespace it is in.
    public func interfaceVanished(port: Port) {
        lock.withLock {
            for a in adapters.values where a.port === port { Self.stop(a) }
        }
    }

    private static func stop(_ a: PortAdapter) {
        for k in a.txKrings + a.rxKrings {
            k.stopped.store(true, ordering: .releasing)
            k.wakeup()
        }
    }
}
