// Shared by every fuzz target: an input reader, one engine per process on a
// small memfd region fenced by PROT_NONE guard pages, a fake NIC backend, a
// fake caller address space and a front end that drives the stepwise ioctl
// protocol exactly as InProcessDevice/CUSE/FUSE do, and the invariants
// checked after each input.
//
// A failed invariant calls abort(): libFuzzer reports it as a crash and keeps
// the input. The engine is reused across inputs, so each input must leave it
// exactly as it found it (no sessions, no ports, full pools); that is checked
// too, which keeps every input reproducible on its own.

#if canImport(Glibc)
import Glibc
#endif
import CNetmapABI
import DeviceInterface
import NetmapCore
import Synchronization

// MARK: input

struct FuzzInput {
    let data: UnsafeBufferPointer<UInt8>
    var pos = 0

    init(_ p: UnsafePointer<UInt8>?, _ n: Int) { data = UnsafeBufferPointer(start: p, count: p == nil ? 0 : n) }

    var isEmpty: Bool { pos >= data.count }
    var remaining: Int { max(0, data.count - pos) }

    /// Past the end every read gives zeros.
    mutating func u8() -> UInt8 {
        guard pos < data.count else { return 0 }
        defer { pos += 1 }
        return data[pos]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    /// `n` bytes, zero-padded past the end.
    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        let k = min(n, remaining)
        for i in 0 ..< k { out[i] = data[pos + i] }
        pos += k
        return out
    }
}

/// Builds inputs for the seed corpora (the inverse of FuzzInput).
struct SeedWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0 ..< 2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u32(_ v: UInt32) { for i in 0 ..< 4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0 ..< 8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func raw(_ b: [UInt8]) { bytes += b }
}

/// Little-endian struct building for seeds and requests.
struct Bytes {
    var b: [UInt8]
    init(_ n: Int) { b = [UInt8](repeating: 0, count: n) }
    mutating func set<T: FixedWidthInteger>(_ off: Int, _ v: T) {
        for i in 0 ..< MemoryLayout<T>.size where off + i < b.count {
            b[off + i] = UInt8(truncatingIfNeeded: v >> (8 * i))
        }
    }
    mutating func name(_ off: Int, _ size: Int, _ s: String) {
        let u = Array(s.utf8.prefix(size - 1))
        for i in 0 ..< size { b[off + i] = i < u.count ? u[i] : 0 }
    }
    func u16(_ off: Int) -> UInt16 { UInt16(b[off]) | UInt16(b[off + 1]) << 8 }
    func u32(_ off: Int) -> UInt32 { UInt32(u16(off)) | UInt32(u16(off + 2)) << 16 }
    func u64(_ off: Int) -> UInt64 { UInt64(u32(off)) | UInt64(u32(off + 4)) << 32 }
}

// MARK: invariants

/// A line on stderr (fd 2; Swift 6 forbids touching the C `stderr` global).
func eprint(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

@inline(never)
func fail(_ message: String) -> Never {
    eprint("netmapd fuzz: INVARIANT FAILED: \(message)")
    abort()
}

@inline(__always)
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

// MARK: the engine

/// Notices of pools reclaimed at the last release: client-free targets must
/// never see one (the accounting is exact when nobody scribbles the region).
let reclaimNotices = Atomic<Int>(0)

final class FuzzWorld: @unchecked Sendable {
    static let shared = FuzzWorld()

    let engine: NetmapEngine
    let nics: FuzzNICBackend
    var region: MemoryRegion { engine.region }
    let initial: NetmapEngine.Stats
    nonisolated(unsafe) static var misplaced: [MemoryRegion] = []

    /// The region is fenced by PROT_NONE pages right before and after it: an
    /// access just outside faults instead of landing in a neighbouring
    /// mapping. (ASan does not watch a MAP_SHARED file mapping; the guards do.)
    private init() {
        // A small region, so that exhausting a pool is cheap: 32 if objects,
        // 64 ring objects of 2288 slots at most, 4096 buffers of 2048 B
        // (enough for one pipe of netmap's default 2 links of 1024 slots).
        let g = try! PoolGeometry(.init(ifSize: 1024, ifCount: 32, ringSize: 36864, ringCount: 64,
                                        bufSize: 2048, bufCount: 4096))
        // Mappings are placed top-down, at the top of the highest gap that
        // fits: reserve room for guard + region + guard, free it, put the
        // upper guard at its top, and the region lands right below it.
        let guardBytes = 16 * 4096
        var region: MemoryRegion! = nil
        var fenced = false
        for _ in 0 ..< 8 where !fenced {
            let span = g.totalSize + 2 * guardBytes
            guard let hole = mmap(nil, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), hole != MAP_FAILED else { break }
            munmap(hole, span)
            let upperAt = hole + span - guardBytes
            let upper = mmap(upperAt, guardBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
            let r = try! MemoryRegion(geometry: g, backing: .memfd(name: "netmapd-fuzz"))
            if let misplaced = region { Self.misplaced.append(misplaced) }   // stays mapped: the next try goes elsewhere
            region = r
            guard upper == upperAt, r.base + r.size == upperAt else { continue }
            let lowerAt = r.base - guardBytes
            let lower = mmap(lowerAt, guardBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
            fenced = lower == lowerAt
        }
        if !fenced { eprint("netmapd fuzz: note: could not fence the region with guard pages") }
        nics = FuzzNICBackend()
        let log = CoreLog { level, s in
            if level == .notice && s.contains("reclaimed") { reclaimNotices.add(1, ordering: .relaxed) }
            if getenv("NETMAPD_FUZZ_LOG") != nil { eprint("core: \(s)") }
        }
        engine = NetmapEngine(region: region, provider: StandardPortProvider(interfaces: nics), log: log)
        // Pipes and null ports of 64 slots unless the input asks for more
        // (up to 4096): each input costs a sixteenth of the ring work, and
        // the pools still run dry (the ring pool after 16 pipes).
        engine.registry.defaultSlots = 64
        initial = engine.stats()
    }

    /// What must hold after every step.
    func checkStats() {
        let s = engine.stats()
        check(s.freeBuffers >= 0 && s.freeBuffers <= s.totalBuffers, "buffer pool \(s)")
        check(s.freeRings >= 0 && s.freeRings <= s.totalRings, "ring pool \(s)")
        check(s.freeIfs >= 0 && s.freeIfs <= s.totalIfs, "if pool \(s)")
        check(s.sessions >= 0, "sessions \(s)")
        if s.sessions == 0 { check(s.ports == 0, "ports alive with no registered file: \(s) \(engine.registry.portNames)") }
        // Ring and if objects are never client-controlled: their accounting
        // is exact whatever the clients wrote. One ring object per kring
        // with memory, one if object per registered file.
        let adapters = engine.registry.allAdapters
        let ringsWithMemory = adapters.reduce(0) { $0 + ($1.txKrings + $1.rxKrings).filter(\.hasMemory).count }
        check(s.totalRings - s.freeRings == ringsWithMemory,
              "\(s.totalRings - s.freeRings) ring objects allocated, \(ringsWithMemory) krings have memory")
        check(s.totalIfs - s.freeIfs == s.sessions, "\(s.totalIfs - s.freeIfs) if objects for \(s.sessions) registered files")
        for a in adapters {
            check(a.alive, "dead adapter \(a.name) still filed")
            for k in a.txKrings + a.rxKrings where k.hasMemory {
                let n = k.numSlots
                check(k.hwcur < n && k.hwtail < n && k.rhead < n && k.rcur < n && k.rtail < n,
                      "\(k.name): hwcur \(k.hwcur) hwtail \(k.hwtail) rhead \(k.rhead) rcur \(k.rcur) rtail \(k.rtail) of \(n)")
                let off = k.ringOffset!, g = region.geometry
                check(off >= g.ringPool.offset && off + 256 + 16 * Int(n) <= g.ringPool.offset + g.ringPool.byteSize,
                      "\(k.name) at \(off) outside the ring pool")
            }
        }
    }

    /// What must hold after every input, once every file is released.
    func checkQuiescent(exactAccounting: Bool) {
        // NICs attached to a VALE switch stay attached after their files go
        // (as in netmap): detach them as the daemon does when it stops.
        engine.valeDetachAll()
        let s = engine.stats()
        check(s.sessions == 0 && s.ports == 0, "left behind: \(s) ports \(engine.registry.portNames)")
        check(s == initial, "pools not restored: \(s) vs \(initial)")
        if exactAccounting {
            check(reclaimNotices.load(ordering: .relaxed) == 0,
                  "buffers/rings/ifs were still allocated when the last file went (accounting leak)")
        }
        reclaimNotices.store(0, ordering: .relaxed)
        nics.reset()
    }
}

// MARK: a fake NIC backend

/// Interfaces the fuzzers can name: "fz0" (2+2 rings of 64 slots and host
/// rings), "fz1" (1+1 rings of 128, MTU too big for the buffers, so binding
/// its RX rings fails), "eth0" (1+1 rings of 1024).
final class FuzzNIC: @unchecked Sendable {
    let name: String
    let geometry: PortGeometry
    let mtu: Int
    /// Frames waiting per RX ring: (count, length of each).
    var pending: [Int: Int] = [:]
    var frameSeq: UInt64 = 0
    var sentFrames = 0

    init(name: String, rings: Int, slots: Int, host: Int, mtu: Int) {
        self.name = name
        geometry = PortGeometry(txRings: rings, rxRings: rings, txSlots: slots, rxSlots: slots,
                                hostTxRings: host, hostRxRings: host)
        self.mtu = mtu
    }
}

final class FuzzNICPort: Port, @unchecked Sendable {
    let nic: FuzzNIC
    var name: String { nic.name }
    let kind = PortKind.interface
    var geometry: PortGeometry { nic.geometry }

    init(_ nic: FuzzNIC) { self.nic = nic }

    func checkFirstRegistration(bindsRX: Bool, bufferSize: Int) throws(NetmapError) {
        if bindsRX && nic.mtu + 14 > bufferSize { throw .EINVAL }
    }

    func txsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        var i = k.hwcur
        let n = k.numSlots
        check(k.rhead < n && k.hwcur < n, "NIC txsync with rhead \(k.rhead) hwcur \(k.hwcur) of \(n)")
        while i != k.rhead {
            do {
                let (b, l) = k.txSlot(i)
                // Touch the frame as a real backend would (ASan/guards see it).
                let p = k.region.buffer(b)
                if l > 0 { _ = p.load(fromByteOffset: l - 1, as: UInt8.self) }
                nic.sentFrames += 1
            }
            k.ring.slot(i).flags &= ~(SlotFlag.bufChanged | SlotFlag.report)
            i = RingIndex.next(i, n)
        }
        k.hwcur = k.rhead
        k.hwtail = RingIndex.prev(k.hwcur, n)
        return 0
    }

    func rxsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        let n = k.numSlots
        check(k.rhead < n, "NIC rxsync with rhead \(k.rhead) of \(n)")
        // Released slots: validated like a backend must (the prologue only
        // checked the indices).
        var i = k.hwcur
        while i != k.rhead {
            let s = k.ring.slot(i)
            s.flags &= ~SlotFlag.bufChanged
            i = RingIndex.next(i, n)
        }
        k.hwcur = k.rhead
        var room = Int(RingIndex.distance(k.hwtail, RingIndex.prev(k.hwcur, n), n))
        var waiting = nic.pending[k.index] ?? 0
        while room > 0 && waiting > 0 {
            let s = k.ring.slot(k.hwtail)
            let len = 60 + Int(nic.frameSeq % 1400)
            if k.region.isValidBuffer(s.bufIdx) {
                let p = k.region.buffer(s.bufIdx)
                p.storeBytes(of: nic.frameSeq, as: UInt64.self)
                p.storeBytes(of: UInt8(0xee), toByteOffset: len - 1, as: UInt8.self)
                s.len = UInt16(len)
            }
            s.flags = 0
            nic.frameSeq &+= 1
            k.hwtail = RingIndex.next(k.hwtail, n)
            room -= 1
            waiting -= 1
        }
        nic.pending[k.index] = waiting
        return 0
    }
}

final class FuzzNICBackend: InterfaceBackend, @unchecked Sendable {
    let nics: [String: FuzzNIC] = [
        "fz0": FuzzNIC(name: "fz0", rings: 2, slots: 64, host: 1, mtu: 1500),
        "fz1": FuzzNIC(name: "fz1", rings: 1, slots: 128, host: 1, mtu: 9000),
        "eth0": FuzzNIC(name: "eth0", rings: 1, slots: 1024, host: 1, mtu: 1500),
    ]

    func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        guard let n = nics[name] else { throw .ENXIO }
        return FuzzNICPort(n)
    }

    func exists(_ name: String, in ns: NetNamespace) -> Bool { nics[name] != nil }

    func reset() {
        for n in nics.values {
            n.pending = [:]
            n.frameSeq = 0
            n.sentFrames = 0
        }
    }
}

// MARK: caller memory

/// The calling process's memory as a front end sees it: chunks at chosen
/// addresses, some of which refuse to be read (process_vm_readv failing,
/// CUSE's retry faulting). A read may span adjacent chunks if all are
/// readable, as a read across two mappings does.
struct FakeAddressSpace {
    struct Chunk {
        var address: UInt64
        var bytes: [UInt8]
        var readable: Bool
        var last: UInt64 { address + UInt64(bytes.count - 1) }
    }

    private(set) var chunks: [Chunk] = []
    var reads = 0

    /// Adds a chunk; chunks never overlap (a new one that would is dropped,
    /// as is an empty one) and never wrap past 2^64.
    @discardableResult
    mutating func add(address: UInt64, bytes: [UInt8], readable: Bool = true) -> Bool {
        guard !bytes.isEmpty else { return false }
        let (last, o) = address.addingReportingOverflow(UInt64(bytes.count - 1))
        guard !o else { return false }
        for d in chunks where address <= d.last && d.address <= last { return false }
        chunks.append(Chunk(address: address, bytes: bytes, readable: readable))
        chunks.sort { $0.address < $1.address }
        return true
    }

    private func chunkIndex(containing a: UInt64) -> Int? {
        for (i, c) in chunks.enumerated() where a >= c.address && a - c.address < UInt64(c.bytes.count) { return i }
        return nil
    }

    mutating func read(_ r: CallerRange) -> [UInt8]? {
        guard r.length >= 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(r.length)
        var a = r.address
        while out.count < r.length {
            guard let i = chunkIndex(containing: a), chunks[i].readable else { return nil }
            let c = chunks[i]
            let start = Int(a - c.address)
            let take = min(c.bytes.count - start, r.length - out.count)
            out += c.bytes[start ..< start + take]
            let (na, o) = a.addingReportingOverflow(UInt64(take))
            if o && out.count < r.length { return nil }
            a = na
        }
        reads += 1
        return out
    }

    /// Stores `w`; false if some byte has no chunk (the request wrote to
    /// memory it never read: checked by the caller).
    @discardableResult
    mutating func write(_ w: CallerWrite) -> Bool {
        var a = w.address
        var done = 0
        while done < w.bytes.count {
            guard let i = chunkIndex(containing: a) else { return false }
            let start = Int(a - chunks[i].address)
            let take = min(chunks[i].bytes.count - start, w.bytes.count - done)
            for k in 0 ..< take { chunks[i].bytes[start + k] = w.bytes[done + k] }
            done += take
            a = a &+ UInt64(take)
        }
        return true
    }

    func bytes(at address: UInt64, _ n: Int) -> [UInt8]? {
        var copy = self
        return copy.read(CallerRange(address: address, length: n))
    }
}

enum ArgumentStyle {
    /// CUSE unrestricted ioctl: nothing arrives with the first call.
    case fetchEverything
    /// FUSE restricted ioctl: _IOC_SIZE(cmd) bytes at the argument arrive first.
    case argumentPrefetched
}

/// One ioctl through the stepwise protocol, with the checks a front end
/// relies on: every round trip asks for something new (else the front end
/// would loop), ranges are well-formed, the request ends, and every byte it
/// writes back lies in memory the request read.
func runIoctl(_ file: DeviceFile, command: UInt32, argument: UInt64, space: inout FakeAddressSpace,
              style: ArgumentStyle) -> Int32 {
    var fetched = CallerMemory()
    let size = Int((command >> 16) & 0x3fff)
    if style == .argumentPrefetched, size > 0, argument != 0 {
        let r = CallerRange(address: argument, length: size)
        fetched.add(r, bytes: space.read(r))
    }
    var trips = 0
    while true {
        trips += 1
        check(trips <= 4096, "ioctl 0x\(String(command, radix: 16)) still asking for memory after \(trips) round trips")
        switch file.ioctl(command: command, argument: argument, memory: fetched) {
        case .needMemory(let read, let write):
            check(!read.isEmpty || !write.isEmpty, "needMemory with nothing to fetch")
            var progress = false
            for r in read {
                check(r.length >= 0 && r.length <= 1 << 20, "bad read range \(r)")
                if fetched.ranges[r] == nil {
                    fetched.add(r, bytes: space.read(r))
                    progress = true
                }
            }
            for r in write { check(r.length >= 0 && r.length <= 1 << 20, "bad write range \(r)") }
            check(progress, "device asked again for memory it already has: \(read)")
        case .complete(let errno, let writes):
            check(errno >= 0 && errno < 4096, "errno \(errno)")
            for w in writes {
                let r = CallerRange(address: w.address, length: w.bytes.count)
                if case .bytes = fetched.lookup(r) {} else {
                    fail("ioctl 0x\(String(command, radix: 16)) wrote \(r), which it never read")
                }
                check(space.write(w), "write to unmapped \(r)")
            }
            return errno
        }
    }
}

/// A request placed in its own address space (for well-formed set-up steps).
func simpleIoctl(_ file: DeviceFile, command: UInt32, header: [UInt8], body: [UInt8]? = nil,
                 style: ArgumentStyle = .fetchEverything) -> (Int32, [UInt8], [UInt8]?) {
    var space = FakeAddressSpace()
    let hAddr: UInt64 = 0x7000_0000_1000, bAddr: UInt64 = 0x7000_0000_2000
    var h = Bytes(header.count)
    h.b = header
    if let body {
        if command == NIOCCTRL { h.set(80, bAddr) }
        space.add(address: bAddr, bytes: body)
    }
    space.add(address: hAddr, bytes: h.b)
    let e = runIoctl(file, command: command, argument: hAddr, space: &space, style: style)
    return (e, space.bytes(at: hAddr, header.count)!, body.map { space.bytes(at: bAddr, $0.count)! })
}

/// NIOCCTRL REGISTER with the usual fields; returns errno and the body.
func ctrlRegister(_ file: DeviceFile, name: String, mode: UInt32 = UInt32(NR_REG_ALL_NIC), ringid: UInt16 = 0,
                  flags: UInt64 = 0, extraBufs: UInt32 = 0, rings: (UInt16, UInt16) = (0, 0),
                  slots: (UInt32, UInt32) = (0, 0), memId: UInt16 = 0) -> (Int32, Bytes) {
    var h = Bytes(88)
    h.set(0, UInt16(14))
    h.set(2, UInt16(NETMAP_REQ_REGISTER))
    h.name(8, 64, name)
    var b = Bytes(56)
    b.set(16, slots.0)
    b.set(20, slots.1)
    b.set(24, rings.0)
    b.set(26, rings.1)
    b.set(32, memId)
    b.set(34, ringid)
    b.set(36, mode)
    b.set(40, extraBufs)
    b.set(48, flags)
    let (e, _, body) = simpleIoctl(file, command: NIOCCTRL, header: h.b, body: b.b)
    var out = Bytes(56)
    out.b = body!
    return (e, out)
}

/// A successful registration's netmap_if must describe the port with
/// offsets that land on ring objects inside the region. `ringHeaders`: also
/// check the rings' num_slots and buf_ofs (not when a client may have
/// overwritten them: a pipe's rings keep what a previous client wrote).
func checkNetmapIf(offset: UInt64, world: FuzzWorld, ringHeaders: Bool = true) {
    let r = world.region, g = r.geometry
    check(offset >= UInt64(g.ifPool.offset) && offset < UInt64(g.ifPool.offset + g.ifPool.byteSize)
          && (Int(offset) - g.ifPool.offset) % g.ifPool.objectSize == 0, "nr_offset \(offset) is no if object")
    let nifp = r.base + Int(offset)
    let nt = Int(nifp.load(fromByteOffset: 24, as: UInt32.self)) + Int(nifp.load(fromByteOffset: 36, as: UInt32.self))
    let nr = Int(nifp.load(fromByteOffset: 28, as: UInt32.self)) + Int(nifp.load(fromByteOffset: 40, as: UInt32.self))
    check(56 + 8 * (nt + nr) <= g.ifPool.objectSize, "netmap_if of \(nt)+\(nr) rings overflows its object")
    for i in 0 ..< nt + nr {
        let ofs = nifp.load(fromByteOffset: 56 + 8 * i, as: Int64.self)
        if ofs == 0 { continue }
        let ring = Int(offset) + Int(ofs)
        check(ring >= g.ringPool.offset && ring < g.ringPool.offset + g.ringPool.byteSize
              && (ring - g.ringPool.offset) % g.ringPool.objectSize == 0, "ring_ofs[\(i)] \(ofs) is no ring object")
        guard ringHeaders else { continue }
        let p = r.base + ring
        let n = p.load(fromByteOffset: 8, as: UInt32.self)
        check(256 + 16 * Int(n) <= g.ringPool.objectSize, "ring of \(n) slots overflows its object")
        let bufOfs = p.load(fromByteOffset: 0, as: Int64.self)
        check(ring + Int(bufOfs) == g.bufPool.offset, "buf_ofs \(bufOfs) of ring at \(ring)")
    }
}

/// Seeds: if NETMAPD_FUZZ_SEEDS names a directory, the target writes its
/// seed inputs there and exits (called from LLVMFuzzerInitialize).
func writeSeedsIfAsked(_ seeds: () -> [(String, [UInt8])]) {
    guard let dir = getenv("NETMAPD_FUZZ_SEEDS").map({ String(cString: $0) }) else { return }
    mkdir(dir, 0o755)
    for (name, bytes) in seeds() {
        let path = "\(dir)/\(name)"
        guard let f = fopen(path, "wb") else { fail("cannot write \(path)") }
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }
    exit(0)
}

// MARK: the option walk, modelled independently (§3.3)

/// What netmap answers to a NIOCCTRL request up to and including its option
/// walk, worked out from the caller's memory as it was before the request,
/// without the engine's decoder: the rules are written here a second time,
/// straight from §3.3, so that the two can be held against each other.
enum OptionWalkModel {
    /// No prediction (the header itself could not be read).
    case none
    /// The walk failed with `errno`. `written`: the option headers netmap
    /// writes back and the status each has (in order; later writes win).
    /// `untouched`: options it visited and must not write.
    case failed(errno: Int32, written: [(address: UInt64, status: UInt32)], untouched: [UInt64])
    /// The walk succeeded; the request then ran. Every option in the list
    /// is written back (EOPNOTSUPP unless a consumer took it).
    case clean(options: [(address: UInt64, type: UInt32)], reqtype: UInt16)

    static let maxSize = 4096, optMax: UInt32 = 6, pointer = 8, optHeader = 24
    /// The kernel copies header pointers, body, a table of option pointers
    /// and every option (with its user next pointer) into one buffer.
    static let bufferSize = (2 + Int(optMax)) * pointer + maxSize + Int(optMax) * pointer

    static func bodySize(_ reqtype: UInt16) -> Int {
        switch reqtype {
        case 1: 56
        case 2: 32
        case 3: 64
        case 4, 5, 6, 7, 13: 8
        case 8, 10, 11: 16
        case 12: 64
        default: 0
        }
    }

    static func optionBodySize(_ type: UInt32, _ size: UInt64) -> Int {
        switch type {
        case 1: 72
        case 2: size >= 24 ? Int(clamping: size - 24) : 0
        case 3: 16
        case 4: 8
        case 5: 32
        default: 0
        }
    }

    static func predict(argument: UInt64, space: FakeAddressSpace) -> OptionWalkModel {
        guard argument != 0, let h = space.bytes(at: argument, 88) else { return .none }
        var hb = Bytes(88)
        hb.b = h
        let version = hb.u16(0), reqtype = hb.u16(2)
        guard version >= 14, version <= 15, hb.u32(4) == 0 else { return .failed(errno: EINVAL, written: [], untouched: []) }
        let rqsz = bodySize(reqtype), body = hb.u64(80)
        guard (rqsz == 0) == (body == 0) else { return .failed(errno: EINVAL, written: [], untouched: []) }
        if rqsz > 0 && space.bytes(at: body, rqsz) == nil { return .failed(errno: EFAULT, written: [], untouched: []) }
        var used = 2 * pointer + rqsz + Int(optMax) * pointer
        var total = rqsz
        var list = [(address: UInt64, type: UInt32, status: UInt32)]()
        var indexOfType = [UInt32: Int]()
        var next = hb.u64(72)
        func written() -> [(address: UInt64, status: UInt32)] { list.map { ($0.address, $0.status) } }
        while next != 0 {
            if used + pointer + optHeader > bufferSize {
                return .failed(errno: EMSGSIZE, written: [], untouched: list.map(\.address))
            }
            guard let o = space.bytes(at: next, optHeader) else { return .failed(errno: EFAULT, written: written(), untouched: []) }
            var ob = Bytes(24)
            ob.b = o
            let type = ob.u32(8), size = ob.u64(16)
            used += pointer + optHeader
            total += optHeader
            list.append((next, type, 0))
            let here = next
            next = ob.u64(0)
            if type == 0 {
                list[list.count - 1].status = UInt32(EINVAL)
                return .failed(errno: EINVAL, written: written(), untouched: [])
            }
            if type >= optMax { continue }
            if let i = indexOfType[type] {
                list[i].status = UInt32(EINVAL)
                list[list.count - 1].status = UInt32(EINVAL)
                return .failed(errno: EINVAL, written: written(), untouched: [])
            }
            indexOfType[type] = list.count - 1
            let len = optionBodySize(type, size)
            if len > maxSize || size > UInt64(maxSize) || total + len > maxSize {
                return .failed(errno: EMSGSIZE, written: written(), untouched: [])
            }
            total += len
            if len > 0 {
                let (at, wraps) = here.addingReportingOverflow(UInt64(optHeader))
                if wraps || space.bytes(at: at, len) == nil { return .failed(errno: EFAULT, written: written(), untouched: []) }
            }
            used += len
        }
        return .clean(options: list.map { ($0.address, $0.type) }, reqtype: reqtype)
    }

    /// Holds a request's answer and the caller's memory after it against
    /// the prediction. Status words that overlap the written-back header or
    /// another option's header are not looked at (the order of those writes
    /// is the front end's business).
    func check(errno e: Int32, argument: UInt64, before: FakeAddressSpace, after: FakeAddressSpace) {
        func overlaps(_ a: UInt64, _ n: Int, _ b: UInt64, _ m: Int) -> Bool {
            a <= b &+ UInt64(m - 1) && b <= a &+ UInt64(n - 1)
        }
        func statusWord(_ addr: UInt64, others: [UInt64]) -> (UInt64, Bool) {
            let at = addr &+ 12
            let clear = !overlaps(at, 4, argument, 88) && !others.contains { $0 != addr && overlaps(at, 4, $0, 24) }
            return (at, clear)
        }
        func u32(_ s: FakeAddressSpace, _ a: UInt64) -> UInt32? {
            s.bytes(at: a, 4).map { UInt32($0[0]) | UInt32($0[1]) << 8 | UInt32($0[2]) << 16 | UInt32($0[3]) << 24 }
        }
        switch self {
        case .none:
            return
        case .failed(let want, let written, let untouched):
            OptionWalkModel.require(e == want, "option walk: errno \(e), netmap answers \(want)")
            let addrs = written.map(\.address) + untouched
            var last = [UInt64: UInt32]()
            for w in written { last[w.address] = w.status }
            for (a, st) in last {
                let (at, clear) = statusWord(a, others: addrs)
                guard clear else { continue }
                OptionWalkModel.require(u32(after, at) == st,
                                        "option walk (\(want)): option at 0x\(String(a, radix: 16)) has status \(u32(after, at).map(String.init) ?? "?"), netmap writes \(st)")
            }
            for a in untouched where last[a] == nil {
                let (at, clear) = statusWord(a, others: addrs)
                guard clear else { continue }
                OptionWalkModel.require(u32(after, at) == u32(before, at),
                                        "option walk (\(want)): option at 0x\(String(a, radix: 16)) written, netmap writes no option back")
            }
        case .clean(let options, let reqtype):
            OptionWalkModel.require(e != EMSGSIZE && e != EFAULT, "clean option walk, yet errno \(e)")
            if reqtype == UInt16(NETMAP_REQ_REGISTER) && !options.isEmpty {
                OptionWalkModel.require(e != 0, "REGISTER succeeded with \(options.count) option(s), none of which netmapd consumes")
            }
            let addrs = options.map(\.address)
            for o in options {
                let (at, clear) = statusWord(o.address, others: addrs)
                guard clear else { continue }
                let consumed = reqtype == UInt16(NETMAP_REQ_CSB_ENABLE) && e == 0 && o.type == UInt32(NETMAP_REQ_OPT_CSB)
                let want = consumed ? 0 : UInt32(EOPNOTSUPP)
                OptionWalkModel.require(u32(after, at) == want,
                                        "clean option walk: option at 0x\(String(o.address, radix: 16)) (type \(o.type)) has status \(u32(after, at).map(String.init) ?? "?"), want \(want)")
            }
        }
    }

    static func require(_ ok: Bool, _ message: @autoclosure () -> String) {
        if !ok { fail(message()) }
    }
}
