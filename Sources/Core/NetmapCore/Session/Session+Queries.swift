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
        try registry.lock.withLock { () throws(NetmapError) -> PortInfo in
            guard registry.memIds.exists(memId) else { throw .EINVAL }
            if name.isEmpty {
                // Every allocator id describes the one region (§4.1 mapping).
                return PortInfo(memsize: UInt64(region.size), memId: memId == 0 ? region.memId : memId, geometry: nil)
            }
            var h = hints
            h.memId = memId
            let (g, id) = try registry.describe(name: name, hints: h, caller: caller)
            return PortInfo(memsize: UInt64(region.size), memId: id, geometry: g)
        }
    }

    /// POOLS_INFO_GET: the region's geometry as a 64-byte nmreq_pools_info.
    /// A non-zero `memId` must name an allocator (it selects the memory the
    /// port lookup uses, so it is checked first); the name is required.
    public func poolsInfo(name: String, memId: UInt16, caller: Int32) throws(NetmapError) -> [UInt8] {
        let id = try registry.lock.withLock { () throws(NetmapError) -> UInt16 in
            guard registry.memIds.exists(memId) else { throw .EINVAL }
            guard !name.isEmpty else { throw .ENXIO }
            var h = PortHints()
            h.memId = memId
            return try registry.describe(name: name, hints: h, caller: caller).memId
        }
        let g = region.geometry
        var f = ByteFields(count: 64)
        f.set(0, UInt64(g.totalSize))
        f.set(8, id)
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

    /// PORT_HDR_GET: the virtio-net header length of an existing port (0
    /// except for VALE ports given one).
    public func portHdrGet(name: String, caller: Int32) throws(NetmapError) -> UInt32 {
        try registry.lock.withLock { () throws(NetmapError) -> UInt32 in
            if let e = registry.existenceError(name: name, caller: caller) { throw e }
            if case .vale(let n)? = try? PortName.parse(name, mode: RegisterMode.allNIC),
               let p = registry.vale.port(named: n) {
                return UInt32(p.virtioHeaderLength)
            }
            return 0
        }
    }

    /// PORT_HDR_SET: only an existing VALE port takes a header (0, 10 or 12).
    public func portHdrSet(name: String, length: UInt32) throws(NetmapError) {
        guard [0, 10, 12].contains(length) else { throw .EINVAL }
        try registry.lock.withLock { () throws(NetmapError) in
            guard case .vale(let n)? = try? PortName.parse(name, mode: RegisterMode.allNIC),
                  let p = registry.vale.port(named: n) else { throw .ENXIO }
            p.bridge.lock.withLock { p.hdrLen = Int(length) }
        }
    }
}
