/// How the daemon reads a port name that reached it in nr_name (§8.1). The
/// `netmap:` prefix and suffixes like `-N`, `^`, `/x` never get here: the
/// client library turns them into nr_mode, nr_ringid and nr_flags.
public enum PortName: Equatable, Sendable {
    /// `null:NAME` when nr_mode is NR_REG_NULL.
    case null(String)
    /// `PARENT{ID` (master) or `PARENT}ID` (slave).
    case pipe(parent: String, id: String, master: Bool)
    /// `valeX:Y` (anything starting with "val", as the kernel compares it).
    case vale(String)
    /// A Linux network interface.
    case interface(String)

    public static func parse(_ name: String, mode: UInt32) throws(NetmapError) -> PortName {
        if mode == RegisterMode.null { return .null(name) }
        let bytes = Array(name.utf8)
        let bracket: Int? = bytes.lastIndex(of: UInt8(ascii: "{")) ?? bytes.lastIndex(of: UInt8(ascii: "}"))
        if let b = bracket {
            guard b > 0, b + 1 < bytes.count else { throw .EINVAL }
            return .pipe(parent: String(decoding: bytes[..<b], as: UTF8.self),
                         id: String(decoding: bytes[(b + 1)...], as: UTF8.self),
                         master: bytes[b] == UInt8(ascii: "{"))
        }
        if bytes.starts(with: Array("val".utf8)) { return .vale(name) }
        return .interface(name)
    }

    /// The pipe's two endpoint names, master first.
    public static func pipeNames(parent: String, id: String) -> (master: String, slave: String) {
        ("\(parent){\(id)", "\(parent)}\(id)")
    }
}

/// nr_mode values (§1.4).
public enum RegisterMode {
    public static let `default`: UInt32 = 0
    public static let allNIC: UInt32 = 1
    public static let sw: UInt32 = 2
    public static let nicSW: UInt32 = 3
    public static let oneNIC: UInt32 = 4
    public static let pipeMaster: UInt32 = 5
    public static let pipeSlave: UInt32 = 6
    public static let null: UInt32 = 7
    public static let oneSW: UInt32 = 8
}

/// nr_flags bits (§1.4).
public enum RegisterFlag {
    public static let monitorTX: UInt64 = 0x100
    public static let monitorRX: UInt64 = 0x200
    public static let zcopyMon: UInt64 = 0x400
    /// Any of the three monitor flags.
    public static let monitorAny: UInt64 = monitorTX | monitorRX | zcopyMon
    public static let exclusive: UInt64 = 0x800
    public static let rxRingsOnly: UInt64 = 0x2000
    public static let txRingsOnly: UInt64 = 0x4000
    public static let acceptVnetHdr: UInt64 = 0x8000
    public static let doRxPoll: UInt64 = 0x10000
    public static let noTxPoll: UInt64 = 0x20000
}
