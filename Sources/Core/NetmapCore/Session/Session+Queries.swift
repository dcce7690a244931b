// Requests that ask about ports and memory without registering (§3.4).

extension Session {
    public struct PortInfo: Sendable, Equatable {
        public var memsize: UInt64
        public var memId: UInt16
        /// The port's rings and slots; nil for an empty name, whose answer
        /// leaves the caller's ring and slot fields as they were.
        public var geometry: PortGeometry?
    }

    /// PORT_INFO_GET: an empty name describes allocator `memId` (0 means 1);
    /// otherwise the port is resolved as REGISTER with ALL_NIC would (a
    /// missing pipe is described, not kept).
    public func portInfo(name: String, memId: UInt16, hints: PortHints, caller: Int32) throws(NetmapError) -> PortInfo {
        guard memId == 0 || memId == region.memId else { throw .EINVAL }
        if name.isEmpty {
            return PortInfo(memsize: UInt64(region.size), memId: region.memId, geometry: nil)
        }
        let g = try registry.lock.withLock { () throws(NetmapError) -> PortGeometry in
            try registry.describe(name: name, hints: hints, caller: caller)
        }
        return PortInfo(memsize: UInt64(region.size), memId: region.memId, geometry: g)
    }

    /// POOLS_INFO_GET: the region's geometry as a 64-byte nmreq_pools_info.
    /// A non-zero `memId` must name an allocator (it selects the memory the
    /// port lookup uses, so it is checked first); the name is required.
    public func poolsInfo(name: String, memId: UInt16, caller: Int32) throws(NetmapError) -> [UInt8] {
        guard memId == 0 || memId == region.memId else { throw .EINVAL }
        guard !name.isEmpty else { throw .ENXIO }
        try registry.lock.withLock { () throws(NetmapError) in
            _ = try registry.describe(name: name, hints: PortHints(), caller: caller)
        }
        let g = region.geometry
        var f = ByteFields(count: 64)
        f.set(0, UInt64(g.totalSize))
        f.set(8, region.memId)
        f.set(16, UInt64(g.ifPool.offset))
        f.set(24, UInt32(g.ifPool.objectCount))
        f.set(28, UInt32(g.ifPool.objectSize))
        f.set(32, UInt64(g.ringPool.offset))
        f.set(40, UInt32(g.ringPool.objectCount))
        f.set(44, UInt32(g.ringPool.objectSize))
        f.set(48, UInt64(g.bufPool.offset))
        f.set(56, UInt32(g.bufPool.objectCount))
        f.set(60, UInt32(g.bufPool.objectSize))
        return f.bytes
    }

    /// PORT_HDR_GET: the virtio-net header length of an existing port; 0 for
    /// every port netmapd has (only VALE ports carry one).
    public func portHdrGet(name: String, caller: Int32) throws(NetmapError) -> UInt32 {
        if let e = registry.lock.withLock({ registry.existenceError(name: name, caller: caller) }) { throw e }
        return 0
    }

    /// PORT_HDR_SET: only VALE ports take a header; there are none here.
    public func portHdrSet(name: String, length: UInt32) throws(NetmapError) {
        guard [0, 10, 12].contains(length) else { throw .EINVAL }
        throw .ENXIO
    }
}
