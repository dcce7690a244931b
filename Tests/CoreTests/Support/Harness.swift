// Test harness: an engine on a small memfd region, a fake NIC backend, and a
// client that finds its rings and buffers from offsets the way a netmap
// program does (nr_offset -> netmap_if -> ring_ofs -> netmap_ring -> buf_ofs).

#if canImport(Glibc)
import Glibc
#endif
import CNetmapABI
import DeviceInterface
import InProcessFrontEnd
import NetmapCore
import Synchronization

/// A small region so tests are quick: 64 if objects, 64 ring objects of
/// 36864 B (2288 slots), 16384 buffers of 2048 B.
let smallGeometry = try! PoolGeometry(.init(ifSize: 1024, ifCount: 64, ringSize: 36864, ringCount: 64,
                                             bufSize: 2048, bufCount: 16384))

final class LogCollector: @unchecked Sendable {
    private let lines = Lock.Protected<[String]>([])
    var log: CoreLog { CoreLog { [self] _, s in lines.withLock { $0.append(s) } } }
    var all: [String] { lines.withLock { $0 } }
}

struct TestEngine {
    let engine: NetmapEngine
    let device: InProcessDevice
    let nics: FakeNICBackend
    let logs = LogCollector()

    init(geometry: PoolGeometry = smallGeometry, nics: [FakeNIC] = []) throws {
        let region = try MemoryRegion(geometry: geometry, backing: .memfd(name: "netmapd-test"))
        self.nics = FakeNICBackend(nics)
        engine = NetmapEngine(region: region, provider: StandardPortProvider(interfaces: self.nics), log: logs.log)
        device = InProcessDevice(device: engine)
    }

    var region: MemoryRegion { engine.region }

    func client(style: InProcessDevice.ArgumentStyle = .fetchEverything) -> TestClient {
        TestClient(device: device, region: region, style: style)
    }
}

// MARK: fake NIC

/// A NIC for tests: TX frames are recorded, RX frames are injected. Reclaims
/// TX at once, like a very fast wire.
final class FakeNIC: @unchecked Sendable {
    let name: String
    let geometry: PortGeometry
    var mtu: Int
    // pthread-based (NetmapCore's Lock.Protected), not Synchronization.Mutex,
    // which ThreadSanitizer cannot see (scripts/test-tsan.sh).
    let sent = Lock.Protected<[[UInt8]]>([])
    let pending = Lock.Protected<[Int: [[UInt8]]]>([:])   // RX ring -> frames
    let modeChanges = Lock.Protected<[(Bool, [String])]>([])

    init(name: String, txRings: Int = 1, rxRings: Int = 1, slots: Int = 1024, hostRings: Int = 1, mtu: Int = 1500) {
        self.name = name
        geometry = PortGeometry(txRings: txRings, rxRings: rxRings, txSlots: slots, rxSlots: slots,
                                hostTxRings: hostRings, hostRxRings: hostRings)
        self.mtu = mtu
    }

    func inject(_ frame: [UInt8], ring: Int = 0) {
        pending.withLock { $0[ring, default: []].append(frame) }
    }
}

final class FakeNICPort: Port, @unchecked Sendable {
    let nic: FakeNIC
    var name: String { nic.name }
    let kind = PortKind.interface
    var geometry: PortGeometry { nic.geometry }

    init(_ nic: FakeNIC) { self.nic = nic }

    func checkFirstRegistration(bindsRX: Bool, bufferSize: Int) throws(NetmapError) {
        if bindsRX && nic.mtu > bufferSize { throw .EINVAL }   // §3.4 step 9: the MTU alone
    }

    func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError) {
        nic.modeChanges.withLock { $0.append((on, rings.map(\.name))) }
    }

    func txsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        var i = k.hwcur
        while i != k.rhead {
            do {
                let (b, l) = k.txSlot(i)
                let p = k.region.buffer(b)
                nic.sent.withLock { $0.append(Array(UnsafeRawBufferPointer(start: p, count: l))) }
            }
            k.ring.slot(i).flags &= ~(SlotFlag.bufChanged | SlotFlag.report)
            i = RingIndex.next(i, k.numSlots)
        }
        k.hwcur = k.rhead
        k.hwtail = RingIndex.prev(k.hwcur, k.numSlots)
        return 0
    }

    func rxsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        k.hwcur = k.rhead
        let n = k.numSlots
        let frames = nic.pending.withLock { p -> [[UInt8]] in
            let room = Int(RingIndex.distance(k.hwtail, RingIndex.prev(k.hwcur, n), n))
            let all = p[k.index] ?? []
            let take = Array(all.prefix(room))
            p[k.index] = Array(all.dropFirst(take.count))
            return take
        }
        for f in frames {
            let s = k.ring.slot(k.hwtail)
            if k.region.isValidBuffer(s.bufIdx) {
                let len = min(f.count, k.region.bufferSize)
                f.withUnsafeBytes { k.region.buffer(s.bufIdx).copyMemory(from: $0.baseAddress!, byteCount: len) }
                s.len = UInt16(len)
            }
            s.flags = 0
            k.hwtail = RingIndex.next(k.hwtail, n)
        }
        return 0
    }
}

final class FakeNICBackend: InterfaceBackend, @unchecked Sendable {
    let nics: [String: FakeNIC]
    init(_ list: [FakeNIC]) { nics = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) }) }
    func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        guard let n = nics[name] else { throw .ENXIO }
        return FakeNICPort(n)
    }
    func exists(_ name: String, in ns: NetNamespace) -> Bool { nics[name] != nil }
}

// MARK: client

/// A netmap program's view: C request structs in its own memory, the region
/// mapped at its own address, everything else found from offsets.
final class TestClient {
    let file: InProcessFile
    let memory = CallerAddressSpace()
    let region: MemoryRegion
    var base: UnsafeMutableRawPointer?
    var offset: UInt64 = 0
    var memsize: UInt64 = 0

    init(device: InProcessDevice, region: MemoryRegion, style: InProcessDevice.ArgumentStyle) {
        self.region = region
        file = device.open(memory: memory, style: style)
    }

    deinit {
        if let base { munmap(base, Int(memsize)) }
    }

    /// Caller memory holding a copy of `value`.
    func place<T>(_ value: T) -> UnsafeMutablePointer<T> {
        let p = memory.allocate(MemoryLayout<T>.size).bindMemory(to: T.self, capacity: 1)
        p.pointee = value
        return p
    }

    static func header(_ name: String, type: Int32, body: UnsafeMutableRawPointer?, options: UnsafeMutableRawPointer? = nil,
                       version: UInt16 = 14) -> nmreq_header {
        var h = nmreq_header()
        h.nr_version = version
        h.nr_reqtype = UInt16(type)
        setName(&h.nr_name, name)
        h.nr_body = body.map { UInt64(UInt(bitPattern: $0)) } ?? 0
        h.nr_options = options.map { UInt64(UInt(bitPattern: $0)) } ?? 0
        return h
    }

    /// NIOCCTRL REGISTER; returns the errno and the body as written back.
    @discardableResult
    func register(_ name: String, mode: Int32 = NR_REG_ALL_NIC, ringid: UInt16 = 0, flags: UInt64 = 0,
                  extraBufs: UInt32 = 0, txRings: UInt16 = 0, rxRings: UInt16 = 0, slots: UInt32 = 0,
                  memId: UInt16 = 0, map: Bool = true) -> (Int32, nmreq_register) {
        var r = nmreq_register()
        r.nr_mode = UInt32(mode)
        r.nr_ringid = ringid
        r.nr_flags = flags
        r.nr_extra_bufs = extraBufs
        r.nr_tx_rings = txRings
        r.nr_rx_rings = rxRings
        r.nr_tx_slots = slots
        r.nr_rx_slots = slots
        r.nr_mem_id = memId
        let body = place(r)
        let hdr = place(Self.header(name, type: NETMAP_REQ_REGISTER, body: UnsafeMutableRawPointer(body)))
        let e = file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(hdr))
        if e == 0 {
            offset = body.pointee.nr_offset
            memsize = body.pointee.nr_memsize
            if map { mapRegion() }
        }
        return (e, body.pointee)
    }

    /// Legacy NIOCREGIF; returns errno and the nmreq as written back.
    @discardableResult
    func registerLegacy(_ name: String, flags: UInt32 = UInt32(NR_REG_ALL_NIC), ringid: UInt16 = 0,
                        version: UInt32 = 14, extraBufs: UInt32 = 0, cmd: UInt16 = 0) -> (Int32, nmreq) {
        var r = nmreq()
        setName(&r.nr_name, name)
        r.nr_version = version
        r.nr_flags = flags
        r.nr_ringid = ringid
        r.nr_arg3 = extraBufs
        r.nr_cmd = cmd
        let p = place(r)
        let e = file.ioctl(NIOCREGIF, UnsafeMutableRawPointer(p))
        if e == 0 {
            offset = UInt64(p.pointee.nr_offset)
            memsize = UInt64(p.pointee.nr_memsize)
            mapRegion()
        }
        return (e, p.pointee)
    }

    /// What the shim/FUSE passthrough gives a client: the region file mapped.
    func mapRegion() {
        guard base == nil else { return }
        precondition(file.mmapCheck(length: memsize) == 0)
        let fd = Glibc.open(region.path, O_RDWR)
        precondition(fd >= 0, "open \(region.path)")
        let p = mmap(nil, Int(memsize), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        Glibc.close(fd)
        precondition(p != MAP_FAILED)
        base = p
    }

    var nifp: UnsafeMutablePointer<netmap_if> {
        (base! + Int(offset)).assumingMemoryBound(to: netmap_if.self)
    }

    func ringOfs(_ i: Int) -> Int64 {
        UnsafeRawPointer(nifp).load(fromByteOffset: 56 + 8 * i, as: Int64.self)
    }

    func txRing(_ i: Int) -> UnsafeMutablePointer<netmap_ring> {
        (UnsafeMutableRawPointer(nifp) + Int(ringOfs(i))).assumingMemoryBound(to: netmap_ring.self)
    }

    func rxRing(_ i: Int) -> UnsafeMutablePointer<netmap_ring> {
        let n = nifp.pointee
        return (UnsafeMutableRawPointer(nifp) + Int(ringOfs(i + Int(n.ni_tx_rings + n.ni_host_tx_rings))))
            .assumingMemoryBound(to: netmap_ring.self)
    }

    func slot(_ ring: UnsafeMutablePointer<netmap_ring>, _ i: UInt32) -> UnsafeMutablePointer<netmap_slot> {
        (UnsafeMutableRawPointer(ring) + 256 + 16 * Int(i)).assumingMemoryBound(to: netmap_slot.self)
    }

    func buf(_ ring: UnsafeMutablePointer<netmap_ring>, _ idx: UInt32) -> UnsafeMutableRawPointer {
        let ofs = Int(ring.pointee.buf_ofs)
        let size = Int(ring.pointee.nr_buf_size)
        return UnsafeMutableRawPointer(ring) + (ofs + Int(idx) * size)
    }

    /// Options laid out in this client's memory, linked in order, each with
    /// status 12345 (so a test sees which ones the daemon wrote back).
    func optionChain(_ specs: [(type: UInt32, size: UInt64)]) -> [UnsafeMutablePointer<nmreq_option>] {
        let opts = specs.map { s -> UnsafeMutablePointer<nmreq_option> in
            let p = memory.allocate(128).bindMemory(to: nmreq_option.self, capacity: 1)
            p.pointee.nro_reqtype = s.type
            p.pointee.nro_size = s.size
            p.pointee.nro_status = 12345
            return p
        }
        for (a, b) in zip(opts, opts.dropFirst()) { a.pointee.nro_next = UInt64(UInt(bitPattern: b)) }
        return opts
    }

    func txsync() -> Int32 { file.ioctl(NIOCTXSYNC, nil) }
    func rxsync() -> Int32 { file.ioctl(NIOCRXSYNC, nil) }
    func poll(_ events: Int16, timeoutMs: Int = 0) -> Int16 { file.poll(events, timeoutMs: timeoutMs) }
    func close() { file.close() }
}

func setName<T>(_ field: inout T, _ s: String) {
    withUnsafeMutableBytes(of: &field) { raw in
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        for (i, c) in s.utf8.prefix(raw.count - 1).enumerated() { raw[i] = c }
    }
}

func nameString<T>(_ field: T) -> String {
    withUnsafeBytes(of: field) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}

func space(_ r: UnsafeMutablePointer<netmap_ring>) -> UInt32 {
    let n = r.pointee.num_slots
    return r.pointee.tail >= r.pointee.head ? r.pointee.tail - r.pointee.head : r.pointee.tail + n - r.pointee.head
}

func next(_ r: UnsafeMutablePointer<netmap_ring>, _ i: UInt32) -> UInt32 { i + 1 == r.pointee.num_slots ? 0 : i + 1 }

/// A deterministic generator so failures reproduce.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
