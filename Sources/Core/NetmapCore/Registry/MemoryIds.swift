// The allocator ids netmap would show (§4.1). Every port's bytes live in
// the one region, but netmap gives each VALE port an allocator of its own,
// and programs compare nr_mem_id to choose between swapping buffers and
// copying; so the ids are handed out as netmap does: the global allocator
// is 1, a new one takes "last assigned + 1", skipping ids in use and 0,
// and when the last assigned goes, the one before it becomes the last.
// Every id describes the same region (POOLS_INFO_GET answers alike).

struct MemoryIds {
    let global: UInt16
    private(set) var inUse: Set<UInt16>
    private var last: UInt16

    init(global: UInt16) {
        self.global = global
        inUse = [global]
        last = global
    }

    /// 0 means "the port's default" and is always accepted.
    func exists(_ id: UInt16) -> Bool { id == 0 || inUse.contains(id) }

    /// A new id, or nil when all 65535 are in use (ENOMEM).
    mutating func assign() -> UInt16? {
        guard inUse.count < Int(UInt16.max) else { return nil }
        var id = last
        repeat { id &+= 1 } while id == 0 || inUse.contains(id)
        inUse.insert(id)
        last = id
        return id
    }

    mutating func release(_ id: UInt16) {
        guard id != global, inUse.remove(id) != nil, id == last else { return }
        // The previous id in circular order becomes the last assigned.
        let below = inUse.filter { $0 < id }
        last = below.max() ?? inUse.max() ?? global
    }
}
