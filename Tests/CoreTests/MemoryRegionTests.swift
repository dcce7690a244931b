import Glibc
import CNetmapABI
import NetmapCore
import Testing

@Suite struct MemoryRegionTests {
    @Test func defaultGeometryMatchesNetmapGlobalAllocator() throws {
        let g = try PoolGeometry(.netmapDefault)
        #expect(g.ifPool.offset == 0 && g.ifPool.objectSize == 1024 && g.ifPool.objectCount == 100)
        #expect(g.ifPool.objectsPerCluster == 4)
        #expect(g.ringPool.offset == 0x19000 && g.ringPool.objectSize == 36864 && g.ringPool.objectCount == 200)
        #expect(g.bufPool.offset == 0x721000 && g.bufPool.objectSize == 2048 && g.bufPool.objectCount == 163_840)
        #expect(g.totalSize == 343_019_520)
        #expect(g.maxSlotsPerRing == 2288)
    }

    @Test func geometryRoundsAsNetmapDoes() throws {
        // A VALE-sized private allocator from §4.2's example.
        let g = try PoolGeometry(.init(ifSize: 1024, ifCount: 12, ringSize: 20480, ringCount: 20, bufSize: 2048, bufCount: 20482))
        #expect(g.ringPool.offset == 0x3000)
        #expect(g.bufPool.offset == 0x67000)
        #expect(g.totalSize == 42_369_024)
        // 33024-byte rings pack 16 to a 528384-byte cluster.
        let h = try PoolGeometry(.init(ifSize: 1024, ifCount: 2, ringSize: 33024, ringCount: 10, bufSize: 2048, bufCount: 53250))
        #expect(h.ringPool.objectsPerCluster == 16 && h.ringPool.objectCount == 16)
        #expect(throws: NetmapError.EINVAL) { try PoolGeometry(.init(ifSize: 8, ifCount: 2, ringSize: 256, ringCount: 2, bufSize: 64, bufCount: 4)) }
    }

    @Test func regionCostsNothingUntilTouchedAndBuffersZeroAndOneAreReserved() throws {
        let r = try MemoryRegion(geometry: try PoolGeometry(.netmapDefault), backing: .memfd(name: "t"))
        #expect(r.size == 343_019_520)
        #expect(r.freeBufferCount == 163_840 - 2)
        #expect(!r.isValidBuffer(0) && !r.isValidBuffer(1) && r.isValidBuffer(2) && !r.isValidBuffer(163_840))
        let b = r.allocateBuffers(3)!
        #expect(b == [2, 3, 4])
        #expect(r.freeBuffers([0, 1, 2, 2, 999_999]) == 1)   // reserved, double and foreign frees refused
        #expect(r.freeBufferCount == 163_840 - 2 - 2)
        // An invalid index never yields an address outside the pool.
        #expect(r.buffer(UInt32.max) == r.buffer(0))
    }

    @Test func poolExhaustionIsAllOrNothing() throws {
        let r = try MemoryRegion(geometry: smallGeometry, backing: .memfd(name: "t"))
        let free = r.freeBufferCount
        #expect(r.allocateBuffers(free + 1) == nil)
        #expect(r.freeBufferCount == free)
        #expect(r.allocateBuffers(upTo: free + 10).count == free)
        #expect(r.freeBufferCount == 0)
    }

    // A region file that cannot be made whole is not left behind: the
    // daemon's run directory would keep a stale region-1 (and a restart
    // would find it). Each step after the file exists fails in turn.

    @Test func aRegionFileThatCannotBeMappedIsRemoved() {
        // 1 PiB: tmpfs takes the size (the file is sparse); no address space
        // holds the mapping, so mmap fails.
        var huge = smallGeometry
        huge.totalSize = 1 << 50
        let path = "/dev/shm/netmapd-test-region-\(getpid())-mmap"
        #expect(throws: NetmapError.self) { try MemoryRegion(geometry: huge, backing: .file(path: path, mode: 0o600)) }
        #expect(access(path, F_OK) != 0, "\(path) left behind")
    }

    /// Makes a region file at a fresh /dev/shm path with `calls`: what it
    /// threw, and whether the file is still there.
    private func regionFile(_ tag: String, mode: mode_t, calls: MemoryRegion.FileCalls) -> (thrown: NetmapError?, left: Bool) {
        let path = "/dev/shm/netmapd-test-region-\(getpid())-\(tag)"
        var thrown: NetmapError? = nil
        do {
            _ = try MemoryRegion(geometry: smallGeometry, backing: .file(path: path, mode: mode), calls: calls)
        } catch {
            thrown = error
        }
        defer { unlink(path) }
        return (thrown, access(path, F_OK) == 0)
    }

    /// ftruncate failing (EFBIG: no room), fchmod failing (EPERM: the file
    /// system refuses the mode; it used to be ignored, leaving the umask's).
    @Test(arguments: ["ftruncate", "fchmod"])
    func aRegionFileWhoseSizeOrModeCannotBeSetIsRefusedAndRemoved(step: String) {
        var calls = MemoryRegion.FileCalls()
        let want: NetmapError
        if step == "ftruncate" {
            calls.ftruncate = { _, _ in errno = EFBIG; return -1 }
            want = NetmapError(EFBIG)
        } else {
            calls.fchmod = { _, _ in errno = EPERM; return -1 }
            want = .EPERM
        }
        let (thrown, left) = regionFile(step, mode: 0o660, calls: calls)
        #expect(thrown == want)
        #expect(!left, "region file left behind")
    }

    @Test func aRegionFileGetsTheModeAskedForWhateverTheUmask() throws {
        let path = "/dev/shm/netmapd-test-region-\(getpid())-mode"
        let r = try MemoryRegion(geometry: smallGeometry, backing: .file(path: path, mode: 0o640))
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o7777 == 0o640)
        _ = r
    }
}
