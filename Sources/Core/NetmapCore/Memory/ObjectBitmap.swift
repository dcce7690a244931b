/// Free/used bits for one pool's objects, lowest free index first (the order
/// netmap allocates in, which keeps side-by-side comparison easy).
/// Not thread-safe: MemoryRegion holds its lock around every call.
struct ObjectBitmap {
    private var words: [UInt64]   // bit set = free
    private var lowestCandidate = 0
    let count: Int
    private(set) var freeCount: Int

    init(count: Int, reserved: Int = 0) {
        self.count = count
        words = [UInt64](repeating: ~0, count: (count + 63) / 64)
        freeCount = count
        let tail = count % 64
        if tail != 0 { words[words.count - 1] = (UInt64(1) << UInt64(tail)) - 1 }
        for i in 0 ..< reserved { _ = take(i) }
    }

    func isFree(_ i: Int) -> Bool {
        i >= 0 && i < count && words[i >> 6] & (UInt64(1) << UInt64(i & 63)) != 0
    }

    /// Marks `i` used; false if it already was (or is out of range).
    mutating func take(_ i: Int) -> Bool {
        guard isFree(i) else { return false }
        words[i >> 6] &= ~(UInt64(1) << UInt64(i & 63))
        freeCount -= 1
        return true
    }

    mutating func allocate() -> Int? {
        var w = lowestCandidate >> 6
        while w < words.count {
            let word = words[w]
            if word != 0 {
                let i = w << 6 | word.trailingZeroBitCount
                words[w] = word & (word - 1)
                freeCount -= 1
                lowestCandidate = i + 1
                return i
            }
            w += 1
        }
        lowestCandidate = count
        return nil
    }

    /// Marks `i` free; false if it already was free (a double free is
    /// refused, so a client that lists a buffer twice cannot inflate the pool).
    mutating func free(_ i: Int) -> Bool {
        guard i >= 0, i < count, !isFree(i) else { return false }
        words[i >> 6] |= UInt64(1) << UInt64(i & 63)
        freeCount += 1
        if i < lowestCandidate { lowestCandidate = i }
        return true
    }
}
