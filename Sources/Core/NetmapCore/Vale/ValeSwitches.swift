// ValeSwitches: netmap's VALE software switches (§11), kept by the Registry.
// A switch ("bridge") exists while it has ports; an ephemeral port `valeX:Y`
// is made by its first REGISTER and goes with its last file. Membership
// (bridge table, port numbers) changes only under the registry lock, and
// also under the bridge's own lock, which forwarding holds (ValePort).
//
// Numbering as netmap's: 8 bridge slots, the first free one taken; port
// numbers 0…253 from a permutation whose first `active` entries are in use;
// a port leaving swaps the last active entry into its place, so the next
// port reuses the number freed last. VALE_LIST walks slots and numbers.

/// The bridge and port parts of a VALE name (§8.1), or nil if malformed:
/// the bridge name is made of [A-Za-z0-9_] and ends with a ':' among the
/// first 16 characters; ':' and the port part are at most 16 characters.
enum ValeName {
    static let maxNameLength = 16

    static func split(_ name: String) -> (bridge: String, port: String)? {
        let b = Array(name.utf8)
        var colon = -1
        for i in 0 ..< min(b.count, maxNameLength) {
            if b[i] == UInt8(ascii: ":") {
                colon = i
                break
            }
            guard isIDChar(b[i]) else { return nil }
        }
        guard colon >= 0, b.count - colon <= maxNameLength else { return nil }
        return (String(decoding: b[..<colon], as: UTF8.self), String(decoding: b[(colon + 1)...], as: UTF8.self))
    }

    static func isIDChar(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
    }

    /// VALE_LIST and friends want the full "vale" prefix; port lookup only "val" (§8.1).
    static func hasValePrefix(_ name: String) -> Bool { name.utf8.starts(with: "vale".utf8) }
}

/// One switch. `lock` guards the port table for forwarders and the learning
/// table; membership changes hold the registry lock as well.
final class ValeBridge: @unchecked Sendable {
    static let maxPorts = 254
    let name: String
    let slot: Int
    let lock = Lock()
    var ports = [ValeMember?](repeating: nil, count: ValeBridge.maxPorts)
    var portIndex = Array(0 ..< ValeBridge.maxPorts)
    var active = 0
    /// Learnt source MACs (48 bits) -> port number; no ageing (§11.2).
    var macTable: [UInt64: Int] = [:]
    /// Per-pass scratch of the forwarder holding `lock` (no allocation per sync).
    var frames: [ValeFrame] = []
    var senderHdrLen = 0
    var wake: [Kring] = []

    init(name: String, slot: Int) {
        self.name = name
        self.slot = slot
        frames.reserveCapacity(1024)
    }

    /// The ports in use, in active-list order.
    var activePorts: ArraySlice<Int> { portIndex[0 ..< active] }
}

public final class ValeSwitches: @unchecked Sendable {
    public static let maxBridges = 8
    var bridges = [ValeBridge?](repeating: nil, count: ValeSwitches.maxBridges)
    /// Attached NICs by port name (registry lock).
    var nics: [String: ValeNic] = [:]
    unowned let registry: Registry

    init(registry: Registry) { self.registry = registry }

    /// Why a VALE name is being resolved: only REGISTER creates a port
    /// (§8.1); PORT_INFO_GET and POOLS_INFO_GET resolve "with creation",
    /// which for a VALE name means a bad name reads ENOMEM, a missing port EINVAL.
    enum Purpose { case register, info, lookup }

    static func key(_ name: String) -> String { "\u{0}vale \(name)" }

    func bridge(named n: String) -> ValeBridge? { bridges.first { $0?.name == n } ?? nil }

    /// The port of any kind (ephemeral, attached NIC) with that full name.
    func member(named name: String) -> ValeMember? {
        guard let (b, _) = ValeName.split(name), let br = bridge(named: b) else { return nil }
        for i in br.activePorts where br.ports[i]?.name == name { return br.ports[i] }
        return nil
    }

    func port(named name: String) -> ValePort? { member(named: name) as? ValePort }

    /// The adapter of VALE port `name`, made if `purpose` allows (caller
    /// holds the registry lock). Errors in netmap's order (§8.1, §10).
    func resolve(name: String, hints: PortHints, caller: Int32, purpose: Purpose) throws(NetmapError) -> PortAdapter {
        let create = purpose != .lookup
        guard let (bname, pname) = ValeName.split(name) else { throw create ? .ENOMEM : .ENXIO }
        let br = bridge(named: bname)
        if let m = member(named: name) {
            // An attached NIC belongs to the switch (§3.4 step 5).
            guard let p = m as? ValePort, let a = p.adapter else { throw .EBUSY }
            return a
        }
        guard create else { throw .ENXIO }
        if br == nil && !bridges.contains(where: { $0 == nil }) { throw .ENOMEM }
        if let br, br.active + 2 >= ValeBridge.maxPorts { throw .ENOMEM }
        // The port part names an interface: only attach/detach/polling take it.
        if let ns = try? registry.provider.namespace(ofCaller: caller),
           registry.provider.interfaceExists(named: pname, in: ns) {
            throw .EINVAL
        }
        guard purpose == .register else { throw .EINVAL }
        return try makeEphemeral(name: name, bridgeName: bname, existing: br, hints: hints)
    }

    /// §11.1: rings 1…16 (default 1), slots 1…4096 (default 1024, the
    /// registry's default), no host
    /// rings; its own memory id unless the request names one.
    private func makeEphemeral(name: String, bridgeName: String, existing: ValeBridge?,
                               hints: PortHints) throws(NetmapError) -> PortAdapter {
        func rings(_ r: Int) -> Int { r == 0 ? 1 : min(max(r, 1), ValePort.maxRings) }
        func slots(_ s: Int) -> Int { s == 0 ? registry.defaultSlots : min(max(s, 1), ValePort.maxSlots) }
        let g = PortGeometry(txRings: rings(hints.txRings), rxRings: rings(hints.rxRings),
                             txSlots: slots(hints.txSlots), rxSlots: slots(hints.rxSlots))
        var memId = hints.memId
        var ownsMemId = false
        if memId == 0 {
            guard let id = registry.memIds.assign() else { throw .ENOMEM }
            memId = id
            ownsMemId = true
        }
        let br = existing ?? newBridge(bridgeName)
        let p = ValePort(name: name, geometry: g, switches: self, bridge: br, memId: memId, ownsMemId: ownsMemId)
        let a = PortAdapter(port: p, region: registry.region, registryName: Self.key(name))
        a.memId = memId
        p.adapter = a
        p.rxKrings = a.rxKrings
        join(p)
        registry.log.debug("VALE \(name): port \(p.number) of \(bridgeName) (slot \(br.slot)), memory id \(memId), \(g.txRings)+\(g.rxRings) rings of \(g.txSlots)/\(g.rxSlots) slots")
        return a
    }

    /// A new bridge in the first free slot (the caller checked there is one).
    func newBridge(_ name: String) -> ValeBridge {
        let slot = bridges.firstIndex { $0 == nil }!
        let br = ValeBridge(name: name, slot: slot)
        bridges[slot] = br
        return br
    }

    /// `m` takes the next free port number of its bridge (registry lock held).
    func join(_ m: ValeMember) {
        let br = m.bridge
        br.lock.withLock {
            m.number = br.portIndex[br.active]
            br.active += 1
            br.ports[m.number] = m
        }
    }

    /// The port leaves its bridge; an empty bridge goes (registry lock held).
    func remove(_ p: ValeMember) {
        let br = p.bridge
        br.lock.withLock {
            guard let pos = br.activePorts.firstIndex(of: p.number) else { return }
            br.active -= 1
            br.portIndex.swapAt(pos, br.active)
            br.ports[p.number] = nil
        }
        if p.ownsMemId { registry.memIds.release(p.memId) }
        if br.active == 0 { bridges[br.slot] = nil }
        registry.log.debug("VALE \(p.name): port \(p.number) of \(br.name) removed")
    }

    // MARK: NIOCCTRL VALE_LIST (§3.4)

    /// A named list: the bridge slot and the port's number (255 if the
    /// bridge has no such port). ENOENT for a missing or malformed bridge.
    func list(name: String) throws(NetmapError) -> (bridge: Int, port: Int) {
        guard ValeName.hasValePrefix(name) else { throw .EINVAL }
        guard let (bname, _) = ValeName.split(name), let br = bridge(named: bname) else { throw .ENOENT }
        for i in br.activePorts where br.ports[i]?.name == name { return (br.slot, i) }
        return (br.slot, 255)
    }

    /// Enumeration: the first port at or after (bridge, port), with its name.
    func list(from bridgeIdx: Int, port portIdx: Int) throws(NetmapError) -> (bridge: Int, port: Int, name: String) {
        var j = portIdx
        var i = bridgeIdx
        while i < Self.maxBridges {
            if let br = bridges[i] {
                while j < ValeBridge.maxPorts {
                    if let p = br.ports[j] { return (i, j, p.name) }
                    j += 1
                }
            }
            j = 0
            i += 1
        }
        throw .ENOENT
    }

    /// Every switch and its ports, for status (registry lock held).
    func snapshot() -> [EngineStatus.Switch] {
        bridges.compactMap { $0 }.map { br in
            EngineStatus.Switch(name: br.name, index: br.slot, ports: br.activePorts.sorted().compactMap { i in
                guard let p = br.ports[i] else { return nil }
                return EngineStatus.SwitchPort(name: p.name, index: i, memId: p.memId, virtioHeader: p.hdrLen,
                                               kind: p.kindName, port: (p as? ValeNic)?.adapter.name ?? p.name)
            }, learnt: br.lock.withLock { br.macTable.count })
        }
    }
}
