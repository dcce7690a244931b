// Port: what a backend implements (AF_XDP, AF_PACKET, pipes, null). Core owns
// the rings (PortAdapter, Kring) and the netmap rules; a backend only moves
// packets between its rings and the world:
//   txsync: send slots [hwcur … rhead), advance hwcur; reclaim, advance hwtail.
//   rxsync: take back released slots [hwcur … rhead) (hwcur = rhead); fill
//           [hwtail … prev(hwcur)) with new packets, advance hwtail.
// Both run under the kring's sync lock, after the prologue, and return 0 or
// an errno. The backend calls kring.wakeup() when a ring may have become ready.

public enum PortKind: Sendable, Equatable {
    /// A Linux network interface (native or generic backend).
    case interface
    /// One endpoint of a netmap pipe.
    case pipe
    /// A null port (§13).
    case null
    /// A monitor of another port (§13).
    case monitor
    /// A port of a VALE switch (§11).
    case vale
}

/// Ring counts and sizes of a port, as REGISTER and PORT_INFO_GET report them.
public struct PortGeometry: Equatable, Sendable {
    public var txRings: Int
    public var rxRings: Int
    public var txSlots: Int
    public var rxSlots: Int
    /// Host rings (0 for pipes and null ports).
    public var hostTxRings: Int
    public var hostRxRings: Int

    public init(txRings: Int, rxRings: Int, txSlots: Int, rxSlots: Int, hostTxRings: Int = 0, hostRxRings: Int = 0) {
        self.txRings = txRings
        self.rxRings = rxRings
        self.txSlots = txSlots
        self.rxSlots = rxSlots
        self.hostTxRings = hostTxRings
        self.hostRxRings = hostRxRings
    }

    public var hasHostRings: Bool { hostTxRings > 0 || hostRxRings > 0 }
}

public struct SyncFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// NIOCTXSYNC: reclaim completed transmissions now.
    public static let forceReclaim = SyncFlags(rawValue: 1)
    /// NIOCRXSYNC: look for received packets now.
    public static let forceRead = SyncFlags(rawValue: 2)
}

/// Who creates and frees the rings' memory.
public enum RingMemoryPolicy: Sendable {
    /// Core: a ring gets its object and fresh buffers when the first file
    /// binds it and loses them when the last one goes (NICs, §7).
    case perBinding
    /// The port: its rings have memory for the port's whole life (pipes,
    /// whose two endpoints share buffers).
    case ownedByPort
}

public protocol Port: AnyObject, Sendable {
    /// The port's name as netmap_if.ni_name shows it (e.g. "eth0", "x{1").
    var name: String { get }
    var kind: PortKind { get }
    var geometry: PortGeometry { get }
    var ringMemoryPolicy: RingMemoryPolicy { get }

    /// Checks before the first registration of the port (e.g. MTU against
    /// the buffer size when RX rings are bound, §3.4 step 9).
    func checkFirstRegistration(bindsRX: Bool, bufferSize: Int) throws(NetmapError)

    /// `rings` enter (on) or leave (off) netmap mode. Called under the
    /// registry lock, with ring memory present.
    func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError)

    func txsync(_ kring: Kring, flags: SyncFlags) -> Int32
    func rxsync(_ kring: Kring, flags: SyncFlags) -> Int32

    /// The adapter is going away: release everything (ring memory the port
    /// owns, sockets, programs). Called once, under the registry lock.
    func destroy(adapter: PortAdapter)

    /// What moves the packets, for status: "pipe", "null", "af_packet", "af_xdp".
    var backendName: String { get }

    /// The network namespace of the interface behind the port (nil for
    /// ports that are not interfaces).
    var netNamespace: NetNamespace? { get }

    /// The virtio-net header its frames carry (PORT_HDR_SET; VALE ports only).
    var virtioHeaderLength: Int { get }
}

extension Port {
    public var ringMemoryPolicy: RingMemoryPolicy { .perBinding }
    public func checkFirstRegistration(bindsRX: Bool, bufferSize: Int) throws(NetmapError) {}
    public func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError) {}
    public func destroy(adapter: PortAdapter) {}
    public var netNamespace: NetNamespace? { nil }
    public var virtioHeaderLength: Int { 0 }
    public var backendName: String {
        switch kind {
        case .pipe: "pipe"
        case .null: "null"
        case .vale: "vale"
        case .interface: "interface"
        case .monitor: "monitor"
        }
    }
}
