// MemoryRegion: one netmap allocator (mem_id) as one file-backed shared
// mapping. The daemon maps the file once; front ends let clients map the
// same file (FUSE passthrough, or the CUSE shim), so every registration in the
// region sees byte-identical memory at identical offsets (§4.1, §14.2).
//
// Allocation state lives here, in private memory, never in the region: a
// client can scribble over the whole mapping and the pools stay consistent.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CNetmapSys

public final class MemoryRegion: @unchecked Sendable {
    public enum Backing: Sendable, Equatable {
        /// An anonymous memfd (tests; clients map it via /proc/PID/fd).
        case memfd(name: String)
        /// A file created at this path, on tmpfs (the daemon: /run/netmapd).
        /// AF_XDP refuses a UMEM on a disk-backed mapping.
        case file(path: String, mode: mode_t)
    }

    public let memId: UInt16
    public let geometry: PoolGeometry
    public let base: UnsafeMutableRawPointer
    public var size: Int { geometry.totalSize }
    /// The descriptor of the backing file (kept open for the region's life).
    public let fd: Int32
    /// A path a client can open to map the region.
    public let path: String
    private let ownsPath: Bool

    struct Pools {
        var ifs: ObjectBitmap
        var rings: ObjectBitmap
        var bufs: ObjectBitmap
    }
    private let pools: Lock.Protected<Pools>

    /// The calls that can fail once the backing file exists, gathered so
    /// that a test can make each one fail; `.system` everywhere else.
    package struct FileCalls: Sendable {
        package var fchmod: @Sendable (Int32, mode_t) -> Int32 = { Glibc.fchmod($0, $1) }
        package var ftruncate: @Sendable (Int32, off_t) -> Int32 = { Glibc.ftruncate($0, $1) }
        package init() {}
        package static let system = FileCalls()
    }

    public convenience init(memId: UInt16 = 1, geometry: PoolGeometry, backing: Backing) throws(NetmapError) {
        try self.init(memId: memId, geometry: geometry, backing: backing, calls: .system)
    }

    /// Creates the backing, sizes and maps it. On any failure nothing is
    /// left: the descriptor is closed and a created file removed.
    package init(memId: UInt16 = 1, geometry: PoolGeometry, backing: Backing, calls: FileCalls) throws(NetmapError) {
        self.memId = memId
        self.geometry = geometry
        var fd: Int32
        switch backing {
        case .memfd(let name):
            fd = nmd_memfd_create(name, NMD_MFD_CLOEXEC)
            guard fd >= 0 else { throw NetmapError(errno) }
            path = "/proc/\(getpid())/fd/\(fd)"
            ownsPath = false
        case .file(let p, _):
            unlink(p)
            fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw NetmapError(errno) }
            path = p
            ownsPath = true
        }
        /// Undoes what was made so far; the error to throw.
        func undo(_ e: Int32) -> NetmapError {
            close(fd)
            if case .file(let p, _) = backing { unlink(p) }
            return NetmapError(e)
        }
        // The mode exactly as asked, whatever the umask; created 0600 so
        // that nobody else can open it before this.
        if case .file(_, let mode) = backing, calls.fchmod(fd, mode) != 0 { throw undo(errno) }
        guard calls.ftruncate(fd, off_t(geometry.totalSize)) == 0 else { throw undo(errno) }
        guard let p = mmap(nil, geometry.totalSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
            p != MAP_FAILED
        else { throw undo(errno) }
        self.fd = fd
        base = p
        pools = Lock.Protected(Pools(
            ifs: ObjectBitmap(count: geometry.ifPool.objectCount),
            rings: ObjectBitmap(count: geometry.ringPool.objectCount),
            // Buffers 0 and 1 exist but are never handed out (§4.6).
            bufs: ObjectBitmap(count: geometry.bufPool.objectCount, reserved: 2)))
    }

    /// Whether files under `path` live in memory (tmpfs/hugetlbfs): a region
    /// must, since AF_XDP refuses a disk-backed UMEM.
    public static func isMemoryBacked(_ path: String) -> Bool { nmd_path_on_shmem(path) == 1 }

    deinit {
        munmap(base, geometry.totalSize)
        close(fd)
        if ownsPath { unlink(path) }
    }

    // MARK: buffers

    public var bufferSize: Int { geometry.bufPool.objectSize }
    public var bufferCount: Int { geometry.bufPool.objectCount }
    public var bufferPoolOffset: Int { geometry.bufPool.offset }

    /// True for an index a slot may hold: 2 ..< objtotal.
    @inline(__always)
    public func isValidBuffer(_ index: UInt32) -> Bool {
        index >= 2 && Int(index) < geometry.bufPool.objectCount
    }

    /// Start of buffer `index`. The caller has validated the index; an
    /// invalid one maps to buffer 0, as netmap does, so no address outside
    /// the pool can come out of here.
    @inline(__always)
    public func buffer(_ index: UInt32) -> UnsafeMutableRawPointer {
        let i = Int(index) < geometry.bufPool.objectCount ? Int(index) : 0
        return base + geometry.bufPool.offset + i * geometry.bufPool.objectSize
    }

    /// `count` fresh buffers, or nil (and nothing taken) if the pool has fewer.
    public func allocateBuffers(_ count: Int) -> [UInt32]? {
        pools.withLock { p in
            guard p.bufs.freeCount >= count else { return nil }
            var out = [UInt32]()
            out.reserveCapacity(count)
            for _ in 0 ..< count { out.append(UInt32(p.bufs.allocate()!)) }
            return out
        }
    }

    /// Up to `count` buffers: as many as the pool has.
    public func allocateBuffers(upTo count: Int) -> [UInt32] {
        pools.withLock { p in
            var out = [UInt32]()
            out.reserveCapacity(min(count, p.bufs.freeCount))
            while out.count < count, let i = p.bufs.allocate() { out.append(UInt32(i)) }
            return out
        }
    }

    /// Returns buffers to the pool; reserved, out-of-range and already-free
    /// indices are ignored. Returns how many were actually freed.
    @discardableResult
    public func freeBuffers<S: Sequence>(_ indices: S) -> Int where S.Element == UInt32 {
        pools.withLock { p in
            var n = 0
            for i in indices where i >= 2 && p.bufs.free(Int(i)) { n += 1 }
            return n
        }
    }

    /// Whether buffer `index` is in the pool's free list now.
    public func isFreeBuffer(_ index: UInt32) -> Bool {
        pools.withLock { $0.bufs.isFree(Int(index)) }
    }

    public var freeBufferCount: Int { pools.withLock { $0.bufs.freeCount } }
    public var freeRingCount: Int { pools.withLock { $0.rings.freeCount } }
    public var freeIfCount: Int { pools.withLock { $0.ifs.freeCount } }
    /// Buffers a client can ever get: all but the two reserved ones.
    public var usableBufferCount: Int { geometry.bufPool.objectCount - 2 }

    // MARK: ring and interface objects

    /// Region offset of a free ring object, or nil.
    public func allocateRingObject() -> Int? {
        pools.withLock { p in p.rings.allocate() }.map { geometry.ringPool.offset + $0 * geometry.ringPool.objectSize }
    }

    public func freeRingObject(at offset: Int) {
        let i = (offset - geometry.ringPool.offset) / geometry.ringPool.objectSize
        _ = pools.withLock { $0.rings.free(i) }
    }

    /// Region offset of a free netmap_if object, or nil.
    public func allocateIfObject() -> Int? {
        pools.withLock { p in p.ifs.allocate() }.map { geometry.ifPool.offset + $0 * geometry.ifPool.objectSize }
    }

    public func freeIfObject(at offset: Int) {
        let i = (offset - geometry.ifPool.offset) / geometry.ifPool.objectSize
        _ = pools.withLock { $0.ifs.free(i) }
    }

    /// When the region's last user has gone, everything is free again, as in
    /// netmap (§4.1): whatever a crashed or hostile client leaked comes back.
    /// Returns what was still allocated (0s when the accounting was exact).
    @discardableResult
    public func resetPools() -> (ifs: Int, rings: Int, buffers: Int) {
        pools.withLock { p in
            let leaked = (p.ifs.count - p.ifs.freeCount, p.rings.count - p.rings.freeCount,
                          p.bufs.count - 2 - p.bufs.freeCount)
            p = Pools(
                ifs: ObjectBitmap(count: geometry.ifPool.objectCount),
                rings: ObjectBitmap(count: geometry.ringPool.objectCount),
                bufs: ObjectBitmap(count: geometry.bufPool.objectCount, reserved: 2))
            return leaked
        }
    }
}

/// A set of buffer indices of one region, one bit each.
struct BufferSet {
    private var words: [UInt64]
    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
    mutating func insert(_ i: UInt32) {
        let w = Int(i >> 6)
        if w < words.count { words[w] |= 1 << UInt64(i & 63) }
    }
    func contains(_ i: UInt32) -> Bool {
        let w = Int(i >> 6)
        return w < words.count && words[w] & (1 << UInt64(i & 63)) != 0
    }
}
