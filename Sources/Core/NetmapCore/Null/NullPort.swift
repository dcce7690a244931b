// NullPort (§13): rings and nothing behind them. Used to reserve rings in an
// allocator; syncs move nothing.


public final class NullPort: Port, @unchecked Sendable {
    public let name: String
    public let kind = PortKind.null
    public let geometry: PortGeometry

    public init(name: String, geometry: PortGeometry) {
        self.name = name
        self.geometry = geometry
    }

    public func txsync(_ kring: Kring, flags: SyncFlags) -> Int32 { 0 }
    public func rxsync(_ kring: Kring, flags: SyncFlags) -> Int32 { 0 }
}
