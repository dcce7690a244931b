// PortAdapter: Core's side of one port (netmap's netmap_adapter): the krings
// of every direction, created with the adapter, and the ring memory they get
// when bound. NIC TX rings come first, host TX rings after them; the same for
// RX (§4.3).

public final class PortAdapter: @unchecked Sendable {
    public let port: Port
    public let region: MemoryRegion
    public let txKrings: [Kring]
    public let rxKrings: [Kring]
    /// Files currently registered to this port (registry lock).
    public internal(set) var sessions = 0
    /// Set while the registry knows the adapter; cleared when destroyed.
    public internal(set) var alive = true
    /// The allocator id netmap would report for the port (§4.1): 1, a VALE
    /// port's own, or the one a null port was given. The bytes are always
    /// in `region`.
    public internal(set) var memId: UInt16
    /// Attached to a VALE switch (VALE_ATTACH): the switch's registration is
    /// the only one allowed (registry lock).
    public internal(set) var ownedBySwitch = false
    /// The key the registry files this adapter under (pipes: Registry.pipeKey).
    var registryName: String
    /// Monitors made of this port so far (their names count up, §13).
    var monitorSerial = 0

    public init(port: Port, region: MemoryRegion, registryName: String? = nil) {
        self.port = port
        self.region = region
        self.registryName = registryName ?? port.name
        memId = region.memId
        let g = port.geometry
        var tx = [Kring]()
        for i in 0 ..< g.txRings + g.hostTxRings {
            tx.append(Kring(direction: .tx, index: i, isHost: i >= g.txRings,
                            numSlots: g.txSlots, region: region, portName: port.name))
        }
        var rx = [Kring]()
        for i in 0 ..< g.rxRings + g.hostRxRings {
            rx.append(Kring(direction: .rx, index: i, isHost: i >= g.rxRings,
                            numSlots: g.rxSlots, region: region, portName: port.name))
        }
        txKrings = tx
        rxKrings = rx
    }

    public var name: String { port.name }
    public var geometry: PortGeometry { port.geometry }

    public func krings(_ d: RingDirection) -> [Kring] { d == .tx ? txKrings : rxKrings }

    /// Gives `kring` a ring object and fresh buffers (§4.4). ENOMEM if the
    /// ring does not fit a ring object or a pool is exhausted.
    public func createRingMemory(_ kring: Kring) throws(NetmapError) {
        guard !kring.hasMemory else { return }
        guard Int(kring.numSlots) <= region.geometry.maxSlotsPerRing else { throw .ENOMEM }
        guard let off = region.allocateRingObject() else { throw .ENOMEM }
        guard let bufs = region.allocateBuffers(Int(kring.numSlots)) else {
            region.freeRingObject(at: off)
            throw .ENOMEM
        }
        kring.attachMemory(at: off, buffers: bufs)
    }

    /// Frees the ring object and whatever buffers its slots hold now.
    public func destroyRingMemory(_ kring: Kring) {
        guard let (off, bufs) = kring.detachMemory() else { return }
        region.freeBuffers(bufs)
        region.freeRingObject(at: off)
    }
}
