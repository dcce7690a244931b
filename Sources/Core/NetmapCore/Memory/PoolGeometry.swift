/// The layout of one allocator's region (§4.2): three pools back to back,
/// netmap_if objects, then netmap_ring objects, then packet buffers. Every
/// offset a client uses (nr_offset, ring_ofs, buf_ofs) is derived from this,
/// so the arithmetic follows netmap's rules exactly.
public struct PoolGeometry: Equatable, Sendable {
    public struct Pool: Equatable, Sendable {
        /// Byte offset of the pool from the region start.
        public var offset: Int
        /// Object size, a multiple of 64.
        public var objectSize: Int
        /// Number of objects, a whole number of clusters.
        public var objectCount: Int
        public var objectsPerCluster: Int

        public var byteSize: Int { objectSize * objectCount }
    }

    public static let pageSize = 4096
    static let maxClusterSize = 4 << 20

    public var ifPool: Pool
    public var ringPool: Pool
    public var bufPool: Pool
    /// Total size, a whole number of pages: what nr_memsize reports.
    public var totalSize: Int

    /// Requested counts and sizes; rounded as netmap rounds them.
    public struct Request: Equatable, Sendable {
        public var ifSize: Int
        public var ifCount: Int
        public var ringSize: Int
        public var ringCount: Int
        public var bufSize: Int
        public var bufCount: Int

        public init(ifSize: Int, ifCount: Int, ringSize: Int, ringCount: Int, bufSize: Int, bufCount: Int) {
            self.ifSize = ifSize
            self.ifCount = ifCount
            self.ringSize = ringSize
            self.ringCount = ringCount
            self.bufSize = bufSize
            self.bufCount = bufCount
        }

        /// netmap's global allocator defaults: 100 x 1024 B interfaces,
        /// 200 x 36864 B rings (2288 slots each at most), 163840 x 2048 B
        /// buffers; 327 MiB of address space, nothing used until touched.
        public static let netmapDefault = Request(
            ifSize: 1024, ifCount: 100, ringSize: 36864, ringCount: 200, bufSize: 2048, bufCount: 163_840)

        /// Global limits (§4.2 rule 7).
        func validate() throws(NetmapError) {
            guard (56...4096).contains(ifSize), (2...10000).contains(ifCount),
                (256...(128 << 10)).contains(ringSize), (2...1024).contains(ringCount),
                (64...(64 << 10)).contains(bufSize), (4...1_000_000).contains(bufCount)
            else { throw .EINVAL }
        }
    }

    public init(_ request: Request) throws(NetmapError) {
        try request.validate()
        let ifPool = try Self.pool(at: 0, size: request.ifSize, count: request.ifCount)
        let ringPool = try Self.pool(at: ifPool.offset + ifPool.byteSize, size: request.ringSize, count: request.ringCount)
        let bufPool = try Self.pool(at: ringPool.offset + ringPool.byteSize, size: request.bufSize, count: request.bufCount)
        self.ifPool = ifPool
        self.ringPool = ringPool
        self.bufPool = bufPool
        let end = bufPool.offset + bufPool.byteSize
        totalSize = (end + Self.pageSize - 1) / Self.pageSize * Self.pageSize
    }

    static func pool(at offset: Int, size: Int, count: Int) throws(NetmapError) -> Pool {
        let objectSize = (size + 63) / 64 * 64
        var perCluster = 1
        while (perCluster * objectSize) % pageSize != 0 {
            perCluster += 1
            if perCluster * objectSize > maxClusterSize { throw .EINVAL }
        }
        let clusters = (count + perCluster - 1) / perCluster
        return Pool(offset: offset, objectSize: objectSize, objectCount: clusters * perCluster, objectsPerCluster: perCluster)
    }

    /// Most slots a ring object can hold: (objsize - 256) / 16.
    public var maxSlotsPerRing: Int { (ringPool.objectSize - 256) / 16 }
    public var bufferSize: Int { bufPool.objectSize }
    public var bufferCount: Int { bufPool.objectCount }
}
