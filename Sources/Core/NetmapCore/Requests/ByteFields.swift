/// Little-endian field access on a request's bytes (x86_64 is the only ABI).
/// Out-of-range reads give 0 and writes are dropped, so a short buffer can
/// never make the decoder touch memory it does not own.
struct ByteFields {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    func u<T: FixedWidthInteger & UnsignedInteger>(_ off: Int, _: T.Type) -> T {
        let n = MemoryLayout<T>.size
        guard off >= 0, off + n <= bytes.count else { return 0 }
        var v: T = 0
        for i in 0 ..< n { v |= T(bytes[off + i]) << T(8 * i) }
        return v
    }

    func u8(_ o: Int) -> UInt8 { u(o, UInt8.self) }
    func u16(_ o: Int) -> UInt16 { u(o, UInt16.self) }
    func u32(_ o: Int) -> UInt32 { u(o, UInt32.self) }
    func u64(_ o: Int) -> UInt64 { u(o, UInt64.self) }

    mutating func set<T: FixedWidthInteger & UnsignedInteger>(_ off: Int, _ v: T) {
        let n = MemoryLayout<T>.size
        guard off >= 0, off + n <= bytes.count else { return }
        for i in 0 ..< n { bytes[off + i] = UInt8(truncatingIfNeeded: v >> T(8 * i)) }
    }

    /// A NUL-terminated string field of `size` bytes (the last byte is forced
    /// to NUL first, as the kernel does).
    mutating func terminatedString(_ off: Int, size: Int) -> String {
        guard off >= 0, off + size <= bytes.count else { return "" }
        bytes[off + size - 1] = 0
        let field = bytes[off ..< off + size]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[off ..< end], as: UTF8.self)
    }

    mutating func setString(_ off: Int, size: Int, _ s: String) {
        guard off >= 0, off + size <= bytes.count else { return }
        let u = Array(s.utf8.prefix(size - 1))
        for i in 0 ..< size { bytes[off + i] = i < u.count ? u[i] : 0 }
    }
}
