import CNetmapABI

/// Field offsets of the shared structures (§1.3), from the C header so the
/// compiler, not a hand-typed table, fixes them.
enum Layout {
    static let ringHeader = 256
    static let slotSize = 16
    static let ringBufOfs = 0
    static let ringNumSlots = 8
    static let ringBufSize = 12
    static let ringId = 16
    static let ringDir = 18
    static let ringHead = 20
    static let ringCur = 24
    static let ringTail = 28
    static let ringFlags = 32
    static let ringTs = 40
    static let ringOffsetMask = 56
    static let ringBufAlign = 64

    static let ifName = 0
    static let ifVersion = 16
    static let ifFlags = 20
    static let ifTxRings = 24
    static let ifRxRings = 28
    static let ifBufsHead = 32
    static let ifHostTxRings = 36
    static let ifHostRxRings = 40
    static let ifRingOfs = 56
}

/// A netmap_ring in the shared region, as the daemon touches it. Everything
/// read from here is client-writable: callers validate before use.
public struct RingView: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer

    @inline(__always) public init(_ p: UnsafeMutableRawPointer) { pointer = p }

    /// head and cur are read once per sync with acquire ordering: the slots
    /// the user filled before advancing head are visible after this load.
    @inline(__always) public func loadHead() -> UInt32 { nmd_load_acquire_u32(pointer + Layout.ringHead) }
    @inline(__always) public func loadCur() -> UInt32 { nmd_load_acquire_u32(pointer + Layout.ringCur) }
    @inline(__always) public func loadTail() -> UInt32 { nmd_load_acquire_u32(pointer + Layout.ringTail) }
    /// tail is published with release ordering: slot contents first.
    @inline(__always) public func storeTail(_ v: UInt32) { nmd_store_release_u32(pointer + Layout.ringTail, v) }
    @inline(__always) public func storeHead(_ v: UInt32) { nmd_store_release_u32(pointer + Layout.ringHead, v) }
    @inline(__always) public func storeCur(_ v: UInt32) { nmd_store_release_u32(pointer + Layout.ringCur, v) }
    @inline(__always) public var flags: UInt32 { pointer.loadUnaligned(fromByteOffset: Layout.ringFlags, as: UInt32.self) }

    public func storeTimestamp(sec: Int64, usec: Int64) {
        pointer.storeBytes(of: sec, toByteOffset: Layout.ringTs, as: Int64.self)
        pointer.storeBytes(of: usec, toByteOffset: Layout.ringTs + 8, as: Int64.self)
    }

    @inline(__always) public func slot(_ i: UInt32) -> SlotView {
        SlotView(pointer + Layout.ringHeader + Int(i) * Layout.slotSize)
    }
}

/// One netmap_slot in shared memory.
public struct SlotView: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer

    @inline(__always) public init(_ p: UnsafeMutableRawPointer) { pointer = p }

    @inline(__always) public var bufIdx: UInt32 {
        get { pointer.load(as: UInt32.self) }
        nonmutating set { pointer.storeBytes(of: newValue, as: UInt32.self) }
    }
    @inline(__always) public var len: UInt16 {
        get { pointer.load(fromByteOffset: 4, as: UInt16.self) }
        nonmutating set { pointer.storeBytes(of: newValue, toByteOffset: 4, as: UInt16.self) }
    }
    @inline(__always) public var flags: UInt16 {
        get { pointer.load(fromByteOffset: 6, as: UInt16.self) }
        nonmutating set { pointer.storeBytes(of: newValue, toByteOffset: 6, as: UInt16.self) }
    }
    @inline(__always) public var ptr: UInt64 {
        get { pointer.load(fromByteOffset: 8, as: UInt64.self) }
        nonmutating set { pointer.storeBytes(of: newValue, toByteOffset: 8, as: UInt64.self) }
    }

    /// The whole 16-byte descriptor, for pipes that move slots between rings.
    @inline(__always) public func copy(from other: SlotView) {
        pointer.copyMemory(from: other.pointer, byteCount: Layout.slotSize)
    }
}

/// Slot flag values (§1.4).
public enum SlotFlag {
    public static let bufChanged = UInt16(NS_BUF_CHANGED)
    public static let report = UInt16(NS_REPORT)
    public static let forward = UInt16(NS_FORWARD)
    public static let indirect = UInt16(NS_INDIRECT)
    public static let moreFrag = UInt16(NS_MOREFRAG)
}

/// Ring flag values (netmap_ring.flags, §1.4).
public enum RingFlag {
    public static let timestamp = UInt32(NR_TIMESTAMP)
    public static let forward = UInt32(NR_FORWARD)
}

/// Ring index arithmetic, written once: indices live in 0 ..< n and only move
/// forward, wrapping at n.
public enum RingIndex {
    @inline(__always) public static func next(_ i: UInt32, _ n: UInt32) -> UInt32 { i + 1 == n ? 0 : i + 1 }
    @inline(__always) public static func prev(_ i: UInt32, _ n: UInt32) -> UInt32 { i == 0 ? n - 1 : i - 1 }
    @inline(__always) public static func add(_ i: UInt32, _ k: UInt32, _ n: UInt32) -> UInt32 {
        let s = UInt64(i) + UInt64(k)
        return UInt32(s >= UInt64(n) ? s - UInt64(n) : s)
    }
    /// Steps from `a` forward to `b` (0 when equal).
    @inline(__always) public static func distance(_ a: UInt32, _ b: UInt32, _ n: UInt32) -> UInt32 {
        b >= a ? b - a : b + n - a
    }
    /// `x` in the circular interval [a … b], both included (all < n).
    @inline(__always) public static func within(_ x: UInt32, _ a: UInt32, _ b: UInt32) -> Bool {
        a <= b ? (a <= x && x <= b) : (x >= a || x <= b)
    }
}
