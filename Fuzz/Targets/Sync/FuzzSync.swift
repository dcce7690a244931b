// Fuzz target (d): the sync path against arbitrary ring memory.
//
// Up to four files are registered: a pipe's master (F0) and slave (F1), a
// null port (F2) and the fake NIC fz0 (F3). The input then writes head, cur,
// tail, slots (buf_idx, len, flags), the netmap_if's extra-buffer list and
// arbitrary bytes anywhere in the region, and calls txsync, rxsync and poll,
// releases and re-registers files, injects NIC frames and stops the NIC,
// in any order. Every step is followed by the invariants of FuzzWorld
// (pools, ring/if object accounting, kring indices in range) plus, after a
// sync ioctl, every synced ring's head/cur/tail in range.
//
// With the "benign" setup bit the client follows the protocol (fills and
// consumes only the slots it owns, swaps buffers only with its own extra
// buffers) and much more is checked: pipe frames arrive complete, in order,
// once; every buffer is accounted for at every step (free + held by rings +
// extra buffers == all); a poller that found nothing and was not woken does
// not find something on re-evaluation (no lost wake-up); and when the files
// are closed the pools are exactly full again without a reclaim.
//
// Input: 6 setup bytes, then operations (one byte: file = low 2 bits,
// kind = the rest), each with its own argument bytes.
//   setup[0] bit 0 pipe, 1 null port, 2 NIC (none: a pipe), 3 benign,
//            4 NIC as NR_REG_NIC_SW (else ALL_NIC), 5 pipe master through
//            legacy NIOCREGIF, 6 null port TX rings only, 7 master NO_TX_POLL
//   setup[1] pipe TX rings - 1 (mod 4); bit 7: F0/F1 are VALE ports vale9:a
//            and vale9:b instead (never benign), setup[2] pipe RX rings - 1 (mod 4)
//   setup[3] pipe slots (index into pipeSlots), setup[4] extra buffers (mod 16)
//   setup[5] null port rings and slots

#if canImport(Glibc)
import Glibc
#endif
import CNetmapABI
import DeviceInterface
import NetmapCore
import Synchronization

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInit(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    writeSeedsIfAsked(syncSeeds)
    _ = FuzzWorld.shared
    return 0
}

let pipeSlots: [UInt32] = [2, 3, 4, 5, 8, 16, 31, 64]
let nullSlots: [UInt32] = [1, 2, 3, 8]

final class CountingWaker: PollWaker, @unchecked Sendable {
    var fired = 0
    func wake() { fired += 1 }
}

/// A ring as the client found it at registration (never re-read from the
/// netmap_if, which the input may overwrite).
struct ClientRing {
    var tx: Bool
    var index: Int
    var offset: Int
    var n: UInt32
}

final class Client {
    let slot: Int
    let name: String
    let mode: UInt32
    let flags: UInt64
    let legacy: Bool
    var file: DeviceFile?
    var ifOffset = 0
    var rings: [ClientRing] = []
    var extras: [UInt32] = []
    var extraCount = 0
    /// Benign mode: a poll that found nothing and has not been woken.
    var sleeping: (waker: CountingWaker, events: Int16)?

    init(slot: Int, name: String, mode: UInt32, flags: UInt64 = 0, legacy: Bool = false) {
        self.slot = slot
        self.name = name
        self.mode = mode
        self.flags = flags
        self.legacy = legacy
    }
}

struct SyncFuzzer {
    let world = FuzzWorld.shared
    var input: FuzzInput
    let benign: Bool
    var clients: [Client?] = [nil, nil, nil, nil]
    let pipeRings: (UInt16, UInt16)
    let pipeSlotCount: UInt32
    let extraBufs: UInt32
    let nullRings: (UInt16, UInt16), nullSlotCount: UInt32
    /// Benign pipe traffic: next sequence number sent / expected per link.
    var sent: [Int: UInt64] = [:]
    var received: [Int: UInt64] = [:]
    var region: MemoryRegion { world.region }
    let trace = getenv("NETMAPD_FUZZ_LOG") != nil

    init(_ input: FuzzInput) {
        self.input = input
        let s0 = self.input.u8()
        let r0 = self.input.u8()
        // setup[1] bit 7: files 0 and 1 are two ports of a VALE switch
        // instead of the pipe; lossy by design, so never benign.
        let vale = r0 & 0x80 != 0
        benign = s0 & 0x08 != 0 && !vale
        let rings = (UInt16(1 + r0 % 4), UInt16(1 + self.input.u8() % 4))
        let ps = self.input.u8()
        // 0: the default slot count (netmap: 1024; 64 in this world), one
        // ring each way.
        pipeSlotCount = ps >= 248 ? 0 : pipeSlots[Int(ps % 8)]
        pipeRings = pipeSlotCount == 0 ? (1, 1) : rings
        extraBufs = UInt32(self.input.u8() % 16)
        let ns = self.input.u8()
        nullRings = (UInt16(1 + ns % 3), UInt16(1 + (ns >> 2) % 3))
        nullSlotCount = nullSlots[Int(ns >> 4) % 4]
        var any = false
        if s0 & 0x01 != 0 || s0 & 0x07 == 0 {
            clients[0] = Client(slot: 0, name: vale ? "vale9:a" : "sp{7", mode: UInt32(NR_REG_ALL_NIC),
                                flags: s0 & 0x80 != 0 ? RegisterFlag.noTxPoll : 0, legacy: s0 & 0x20 != 0 && !vale)
            clients[1] = Client(slot: 1, name: vale ? "vale9:b" : "sp}7", mode: UInt32(NR_REG_ALL_NIC))
            any = true
        }
        if s0 & 0x02 != 0 {
            clients[2] = Client(slot: 2, name: "sn", mode: UInt32(NR_REG_NULL),
                                flags: s0 & 0x40 != 0 ? RegisterFlag.txRingsOnly : 0)
            any = true
        }
        if s0 & 0x04 != 0 {
            clients[3] = Client(slot: 3, name: "fz0", mode: UInt32(s0 & 0x10 != 0 ? NR_REG_NIC_SW : NR_REG_ALL_NIC))
            any = true
        }
        precondition(any)
    }

    // MARK: registration

    mutating func register(_ c: Client) -> Bool {
        let file = world.engine.open(client: ClientIdentity(pid: Int32(5000 + c.slot)))
        let e: Int32, offset: UInt64, extras: UInt32
        if c.legacy {
            // Legacy pipe master: name "sp", NR_REG_PIPE_MASTER, ring id 7.
            var b = Bytes(60)
            b.name(0, 16, "sp")
            b.set(16, UInt32(14))
            b.set(28, pipeSlotCount); b.set(32, pipeSlotCount)
            b.set(36, pipeRings.0); b.set(38, pipeRings.1)
            b.set(40, UInt16(7) | (c.flags & RegisterFlag.noTxPoll != 0 ? UInt16(NETMAP_NO_TX_POLL) : 0))
            b.set(48, extraBufs)
            b.set(52, UInt32(NR_REG_PIPE_MASTER))
            let (le, back, _) = simpleIoctl(file, command: NIOCREGIF, header: b.b)
            var r = Bytes(60)
            r.b = back
            (e, offset, extras) = (le, UInt64(r.u32(20)), r.u32(48))
        } else {
            var rings: (UInt16, UInt16) = (0, 0), slots: (UInt32, UInt32) = (0, 0), memId: UInt16 = 0
            switch c.slot {
            case 0, 1: (rings, slots) = (c.slot == 0 ? pipeRings : (pipeRings.1, pipeRings.0), (pipeSlotCount, pipeSlotCount))
            case 2: (rings, slots, memId) = (nullRings, (nullSlotCount, nullSlotCount), 1)
            default: break
            }
            let (ce, body) = ctrlRegister(file, name: c.name, mode: c.mode, flags: c.flags, extraBufs: extraBufs,
                                          rings: rings, slots: slots, memId: memId)
            (e, offset, extras) = (ce, body.u64(0), body.u32(40))
        }
        guard e == 0 else {
            file.release()
            return false
        }
        checkNetmapIf(offset: offset, world: world, ringHeaders: benign)
        c.file = file
        c.ifOffset = Int(offset)
        c.extraCount = Int(extras)
        c.sleeping = nil
        // The rings, from the fresh netmap_if, sized by the krings behind them.
        let nifp = region.base + c.ifOffset
        let ntx = Int(nifp.load(fromByteOffset: 24, as: UInt32.self)) + Int(nifp.load(fromByteOffset: 36, as: UInt32.self))
        let nrx = Int(nifp.load(fromByteOffset: 28, as: UInt32.self)) + Int(nifp.load(fromByteOffset: 40, as: UInt32.self))
        let krings = world.engine.registry.allAdapters.flatMap { $0.txKrings + $0.rxKrings }
        c.rings = []
        for i in 0 ..< ntx + nrx {
            let ofs = nifp.load(fromByteOffset: 56 + 8 * i, as: Int64.self)
            guard ofs != 0 else { continue }
            let at = c.ifOffset + Int(ofs)
            guard let k = krings.first(where: { $0.ringOffset == at }) else { fail("ring_ofs[\(i)] names no kring") }
            check((k.direction == .tx) == (i < ntx), "ring_ofs[\(i)] names \(k.name)")
            c.rings.append(ClientRing(tx: i < ntx, index: i < ntx ? i : i - ntx, offset: at, n: k.numSlots))
        }
        // The extra buffers, from the list the netmap_if heads (§4.7).
        c.extras = []
        var idx = nifp.load(fromByteOffset: 32, as: UInt32.self)
        while idx != 0 && c.extras.count < c.extraCount {
            check(region.isValidBuffer(idx) && !c.extras.contains(idx), "extra buffer list: \(idx)")
            c.extras.append(idx)
            idx = region.buffer(idx).load(as: UInt32.self)
        }
        check(c.extras.count == c.extraCount, "\(c.extras.count) extra buffers listed, \(c.extraCount) reported")
        return true
    }

    mutating func release(_ c: Client) {
        guard let file = c.file else { return }
        if benign {
            // Hand the extra buffers back the way netmap expects: listed from ni_bufs_head.
            let nifp = region.base + c.ifOffset
            var next: UInt32 = 0
            for b in c.extras.reversed() {
                region.buffer(b).storeBytes(of: next, as: UInt32.self)
                next = b
            }
            nifp.storeBytes(of: next, toByteOffset: 32, as: UInt32.self)
        }
        file.release()
        c.file = nil
        c.sleeping = nil
        if c.slot < 2, clients[0]?.file == nil, clients[1]?.file == nil {
            // Both ends closed: the pipe is gone, a new one starts afresh.
            sent = [:]
            received = [:]
        }
    }

    // MARK: helpers

    func ringPointer(_ r: ClientRing) -> UnsafeMutableRawPointer { region.base + r.offset }

    mutating func pickRing(_ c: Client) -> ClientRing? {
        let b = input.u8()
        return c.rings.isEmpty ? nil : c.rings[Int(b) % c.rings.count]
    }

    /// An index: near the current value, anywhere in range, just out of
    /// range, or any 32-bit value.
    mutating func index(current: UInt32, n: UInt32) -> UInt32 {
        let b = input.u8()
        switch b >> 6 {
        case 0: return UInt32((UInt64(current) + UInt64(b & 63)) % UInt64(n))
        case 1: return UInt32(b & 63) % n
        case 2: return n + UInt32(b & 3)
        default: return input.u32()
        }
    }

    mutating func bufferIndex(_ c: Client, _ r: ClientRing) -> UInt32 {
        let b = input.u8()
        switch b % 8 {
        case 0: return UInt32(b >> 3) & 1   // the reserved buffers 0 and 1
        case 1: return UInt32(region.bufferCount) + UInt32(b >> 3) % 2
        case 2: return UInt32(region.bufferCount - 1)
        case 3: return input.u32()
        case 4:   // another slot of the same ring (a duplicate)
            return RingView(ringPointer(r)).slot(UInt32(input.u8()) % r.n).bufIdx
        case 5:   // a slot of another ring of any file
            let all = clients.compactMap { $0 }.flatMap(\.rings)
            guard !all.isEmpty else { return 2 }
            let o = all[Int(input.u8()) % all.count]
            return RingView(ringPointer(o)).slot(UInt32(input.u8()) % o.n).bufIdx
        case 6: return c.extras.isEmpty ? 2 : c.extras[Int(input.u8()) % c.extras.count]
        default: return 2 + UInt32(input.u16()) % UInt32(region.bufferCount - 2)
        }
    }

    // MARK: benign traffic

    /// Link id of TX ring `i` of file slot `s` (pipe master 0 / slave 1).
    func link(sender s: Int, ring i: Int) -> Int { s * 1000 + i }

    mutating func benignFill(_ c: Client, _ r: ClientRing) {
        let k0 = input.u8(), opts = input.u8()
        let ring = RingView(ringPointer(r))
        let head = ring.loadHead(), tail = ring.loadTail()
        guard head < r.n, tail < r.n else {
            if benign { fail("benign TX ring \(r) shows head \(head) tail \(tail)") }
            return
        }
        let space = RingIndex.distance(head, tail, r.n)
        let k = min(UInt32(k0), space)
        var h = head
        let l = link(sender: c.slot, ring: r.index)
        for _ in 0 ..< k {
            let s = ring.slot(h)
            if opts & 1 != 0, let e = c.extras.popLast() {
                c.extras.insert(s.bufIdx, at: 0)
                s.bufIdx = e
                s.flags = SlotFlag.bufChanged
            } else {
                s.flags = 0
            }
            let seq = sent[l, default: 0]
            sent[l] = seq + 1
            if region.isValidBuffer(s.bufIdx) {
                region.buffer(s.bufIdx).storeBytes(of: UInt64(l) << 40 | seq, as: UInt64.self)
            } else if benign {
                fail("benign TX slot \(h) of \(r) holds buffer \(s.bufIdx)")
            }
            s.len = UInt16(8 + Int(seq % 57))
            h = RingIndex.next(h, r.n)
        }
        ring.storeHead(h)
        // cur: with head, or pushed to tail to wait for more room.
        ring.storeCur(opts & 2 != 0 ? tail : h)
    }

    mutating func benignConsume(_ c: Client, _ r: ClientRing) {
        let k0 = input.u8(), opts = input.u8()
        let ring = RingView(ringPointer(r))
        let head = ring.loadHead(), tail = ring.loadTail()
        guard head < r.n, tail < r.n else {
            if benign { fail("benign RX ring \(r) shows head \(head) tail \(tail)") }
            return
        }
        let avail = RingIndex.distance(head, tail, r.n)
        if benign && c.slot == 2 { check(avail == 0, "a null port RX ring received \(avail) slots") }
        let k = min(UInt32(k0), avail)
        var h = head
        for _ in 0 ..< k {
            let s = ring.slot(h)
            if benign { check(region.isValidBuffer(s.bufIdx), "benign RX slot \(h) of \(r) holds buffer \(s.bufIdx)") }
            let p = region.buffer(s.bufIdx)
            let v = p.load(as: UInt64.self)
            if !benign {
                // Hostile: nothing to check in what arrived.
            } else if c.slot < 2 {
                let l = link(sender: 1 - c.slot, ring: r.index)
                let seq = received[l, default: 0]
                received[l] = seq + 1
                check(v == UInt64(l) << 40 | seq, "pipe link \(l): expected frame \(seq), got \(String(v, radix: 16)) in slot \(h)")
                check(Int(s.len) == 8 + Int(seq % 57), "pipe link \(l) frame \(seq): len \(s.len)")
                check(s.flags & SlotFlag.moreFrag == 0, "pipe frame \(seq) flagged MOREFRAG")
            } else if c.slot == 3 {
                check(s.len >= 60 && Int(s.len) == 60 + Int(v % 1400), "NIC frame \(v): len \(s.len)")
                check(p.load(fromByteOffset: Int(s.len) - 1, as: UInt8.self) == 0xee, "NIC frame \(v) damaged")
            }
            if opts & 1 != 0, let e = c.extras.popLast() {
                c.extras.insert(s.bufIdx, at: 0)
                s.bufIdx = e
                s.flags = SlotFlag.bufChanged
            }
            h = RingIndex.next(h, r.n)
        }
        ring.storeHead(h)
        ring.storeCur(opts & 2 != 0 ? tail : h)
    }

    // MARK: checks

    func checkRingsAfterSync(_ c: Client, tx: Bool) {
        for r in c.rings where r.tx == tx {
            if c.slot == 3, world.engine.registry.allAdapters.contains(where: { a in
                a.name == "fz0" && (a.txKrings + a.rxKrings).contains { $0.ringOffset == r.offset && $0.stopped.load(ordering: .relaxed) }
            }) { continue }
            let ring = RingView(ringPointer(r))
            let h = ring.loadHead(), cu = ring.loadCur(), t = ring.loadTail()
            check(h < r.n && cu < r.n && t < r.n, "after sync \(c.name) \(r): head \(h) cur \(cu) tail \(t)")
        }
    }

    /// Benign: every buffer is free, in a ring, or some client's extra.
    func checkBufferConservation() {
        var held = 0
        for a in world.engine.registry.allAdapters {
            switch a.port.kind {
            case .pipe: held += a.txKrings.reduce(0) { $0 + Int($1.numSlots) }   // one TX side per link
            default: held += (a.txKrings + a.rxKrings).filter(\.hasMemory).reduce(0) { $0 + Int($1.numSlots) }
            }
        }
        for c in clients.compactMap({ $0 }) where c.file != nil { held += c.extras.count }
        let s = world.engine.stats()
        check(s.freeBuffers + held == s.totalBuffers, "buffers: \(s.freeBuffers) free + \(held) held != \(s.totalBuffers)")
    }

    /// Benign: a sleeping poller that was not woken must find nothing.
    func checkNoLostWakeup(actor: Int) {
        for c in clients.compactMap({ $0 }) where c.slot != actor {
            guard let (w, events) = c.sleeping, let f = c.file else { continue }
            if w.fired > 0 {
                c.sleeping = nil
                continue
            }
            let revents = f.poll(events: events, waker: nil)
            check(revents == 0, "lost wake-up: \(c.name) slept in poll(\(events)) and was not woken, but \(revents) is ready")
        }
    }

    // MARK: the run

    mutating func run() {
        for c in clients.compactMap({ $0 }) {
            check(register(c), "set-up registration of \(c.name) failed")
            world.checkStats()
        }
        if benign { checkBufferConservation() }
        var ops = 0
        while !input.isEmpty && ops < 400 {
            ops += 1
            let op = input.u8()
            let present = clients.compactMap { $0 }
            let c = present[Int(op & 3) % present.count]
            let kind = Int(op >> 2)
            let k = benign ? [0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 17][kind % 11] : kind % 18
            step(c, kind: k)
            if trace {
                let rings = c.rings.map { r -> String in
                    let v = RingView(ringPointer(r))
                    return "\(r.tx ? "T" : "R")\(r.index) h\(v.loadHead()) c\(v.loadCur()) t\(v.loadTail())"
                }
                eprint("op \(ops): \(c.name) kind \(k) -> \(c.file == nil ? "closed" : rings.joined(separator: " ")) sent \(sent) received \(received)")
            }
            world.checkStats()
            if benign {
                checkBufferConservation()
                checkNoLostWakeup(actor: k == 14 || k == 15 ? -1 : c.slot)
            }
        }
        for c in clients.compactMap({ $0 }) { release(c) }
        world.checkQuiescent(exactAccounting: benign)
    }

    mutating func step(_ c: Client, kind: Int) {
        if kind != 14 && kind != 15 { c.sleeping = nil }   // the client is awake and acting
        if c.file == nil && kind != 13 && kind != 14 && kind != 15 { return }
        let f = c.file
        switch kind {
        case 0:
            _ = f!.ioctl(command: NIOCTXSYNC, argument: 0, memory: CallerMemory())
            checkRingsAfterSync(c, tx: true)
        case 1:
            _ = f!.ioctl(command: NIOCRXSYNC, argument: 0, memory: CallerMemory())
            checkRingsAfterSync(c, tx: false)
        case 2, 3:
            let e = input.u8()
            var events: Int16 = 0
            if e & 1 != 0 { events |= Int16(POLLIN) }
            if e & 2 != 0 { events |= Int16(POLLOUT) }
            if e & 4 != 0 { events |= Int16(POLLRDNORM) }
            if e & 8 != 0 { events |= Int16(POLLWRNORM) }
            if kind == 2 {
                let w = CountingWaker()
                let revents = f!.poll(events: events, waker: w)
                if revents == 0 && benign && events != 0 { c.sleeping = (w, events) }
            } else {
                _ = f!.poll(events: events, waker: nil)
            }
        case 4, 5, 6, 7:
            guard let r = pickRing(c) else { return }
            let ring = RingView(ringPointer(r))
            let current = kind == 6 ? ring.loadTail() : kind == 5 ? ring.loadCur() : ring.loadHead()
            let v = index(current: current, n: r.n)
            switch kind {
            case 4: ring.storeHead(v)
            case 5: ring.storeCur(v)
            case 6: ring.storeTail(v)
            default:
                ring.storeHead(v)
                ring.storeCur(v)
            }
        case 8:
            guard let r = pickRing(c) else { return }
            let s = RingView(ringPointer(r)).slot(UInt32(input.u16()) % r.n)
            let what = input.u8()
            if what & 1 != 0 { s.bufIdx = bufferIndex(c, r) }
            if what & 2 != 0 {
                let l = input.u8()
                s.len = l == 0 ? 0 : l == 1 ? UInt16(region.bufferSize) : l == 2 ? UInt16(region.bufferSize + 1)
                    : l == 3 ? 0xffff : input.u16()
            }
            if what & 4 != 0 { s.flags = input.u16() }
            if what & 8 != 0 { s.ptr = input.u64() }
        case 9:
            scribble(c)
        case 10:
            let txr = c.rings.filter(\.tx), pick = Int(input.u8())
            if !txr.isEmpty { benignFill(c, txr[pick % txr.count]) }
        case 11:
            let rxr = c.rings.filter { !$0.tx }, pick = Int(input.u8())
            if !rxr.isEmpty { benignConsume(c, rxr[pick % rxr.count]) }
        case 12:
            release(c)
        case 13:
            if c.file == nil {
                let ok = register(c)
                check(ok || !benign, "re-registration of \(c.name) failed")
            }
        case 14:
            // The wire: frames arrive on a NIC RX ring; the backend wakes pollers.
            let r = Int(input.u8()) % 3, count = Int(input.u8() % 80)
            let nic = world.nics.nics["fz0"]!
            nic.pending[r, default: 0] += count
            if let a = world.engine.registry.allAdapters.first(where: { $0.name == "fz0" }), r < a.rxKrings.count {
                a.rxKrings[r].wakeup()
            }
        case 15:
            if input.u8() & 7 == 0 { world.engine.registry.interfaceVanished("fz0") }
        case 16:
            // The extra-buffer list as a hostile client leaves it.
            let nifp = region.base + c.ifOffset
            let sel = input.u8()
            if sel & 1 != 0 {
                nifp.storeBytes(of: sel & 2 != 0 ? input.u32() : UInt32(2 + Int(input.u16()) % (region.bufferCount - 2)),
                                toByteOffset: 32, as: UInt32.self)
            }
            if sel & 4 != 0 {
                let b = 2 + UInt32(input.u16()) % UInt32(region.bufferCount - 2)
                let link = sel & 8 != 0 ? b : sel & 16 != 0 ? input.u32() : 2 + UInt32(input.u16()) % UInt32(region.bufferCount - 2)
                region.buffer(b).storeBytes(of: link, as: UInt32.self)   // a cycle when link == b
            }
        case 17:
            // A buffer swap outside any fill or consume (benign: own RX slot
            // in [head, tail) with an own extra buffer).
            guard let r = pickRing(c), let e = c.extras.last else { return }
            let ring = RingView(ringPointer(r))
            let head = ring.loadHead(), tail = ring.loadTail()
            guard head < r.n, tail < r.n, head != tail else { return }
            let i = RingIndex.add(head, UInt32(input.u8()) % RingIndex.distance(head, tail, r.n), r.n)
            let s = ring.slot(i)
            if r.tx || !benign {
                // Owned TX slots hold no frame yet; a swap there is benign too.
                c.extras.removeLast()
                c.extras.insert(s.bufIdx, at: 0)
                s.bufIdx = e
                s.flags |= SlotFlag.bufChanged
            } else {
                // A benign receiver swaps only after reading: copy the frame along.
                region.buffer(e).copyMemory(from: region.buffer(s.bufIdx), byteCount: Int(s.len))
                c.extras.removeLast()
                c.extras.insert(s.bufIdx, at: 0)
                s.bufIdx = e
                s.flags |= SlotFlag.bufChanged
            }
        default:
            break
        }
    }

    mutating func scribble(_ c: Client) {
        let target = input.u8()
        let count = 1 + Int(input.u8() % 8)
        let bytes = input.bytes(count)
        var at: Int
        switch target % 6 {
        case 0, 1, 5:
            guard let r = pickRing(c) else { return }
            let span = target % 6 == 0 ? 256 : target % 6 == 1 ? 16 * Int(r.n) : region.geometry.ringPool.objectSize
            at = r.offset + (target % 6 == 1 ? 256 : 0) + Int(input.u16()) % span
        case 2:
            at = c.ifOffset + Int(input.u16()) % region.geometry.ifPool.objectSize
        case 3:
            at = region.bufferPoolOffset + Int(input.u32()) % (region.bufferCount * region.bufferSize)
        default:
            at = Int(input.u32()) % region.size
        }
        at = min(at, region.size - count)
        for (i, b) in bytes.enumerated() { (region.base + at + i).storeBytes(of: b, as: UInt8.self) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSync(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var f = SyncFuzzer(FuzzInput(data, size))
    f.run()
    return 0
}

// MARK: seeds

func syncSeeds() -> [(String, [UInt8])] {
    // Op byte: file in the low 2 bits, kind above.
    func op(_ file: Int, _ kind: Int, _ args: [UInt8] = []) -> [UInt8] { [UInt8(kind << 2 | file)] + args }
    // Benign kinds are indices into [0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 17].
    func bop(_ file: Int, _ kind: Int, _ args: [UInt8] = []) -> [UInt8] {
        let table = [0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 17]
        return op(file, table.firstIndex(of: kind)!, args)
    }
    var seeds = [(String, [UInt8])]()
    // Benign pipe traffic: fill, sync, receive, release, with polls between.
    var b: [UInt8] = [0x09, 1, 0, 5, 4, 0]
    for i in 0 ..< 6 {
        b += bop(0, 10, [0, UInt8(3 + i), UInt8(i & 1)]) + bop(0, 0)
        b += bop(1, 2, [1]) + bop(1, 11, [0, 9, UInt8(i & 1)]) + bop(1, 1)
        b += bop(1, 10, [0, 2, 0]) + bop(1, 2, [3]) + bop(0, 2, [1]) + bop(0, 11, [0, 5, 1]) + bop(0, 1)
    }
    seeds.append(("benign-pipe", b))
    // Benign: a receiver sleeps, the sender sends; a sender blocks on a full ring.
    b = [0x09, 0, 0, 2, 2, 0] + bop(1, 2, [1]) + bop(0, 10, [0, 1, 0]) + bop(0, 0)
        + bop(0, 10, [0, 200, 0]) + bop(0, 2, [2]) + bop(1, 1) + bop(1, 11, [0, 200, 0]) + bop(1, 1) + bop(0, 2, [2])
    seeds.append(("benign-wakeups", b))
    // Benign everything: pipe, null, NIC with host rings, swaps, releases.
    b = [0x1f, 3, 1, 6, 8, 0x25]
    for i in 0 ..< 4 {
        b += bop(3, 14, [UInt8(i % 3), 20]) + bop(3, 2, [1]) + bop(3, 11, [0, 30, 1]) + bop(3, 10, [0, 10, 1]) + bop(3, 0)
        b += bop(2, 10, [0, 4, 0]) + bop(2, 0) + bop(2, 2, [3]) + bop(2, 11, [0, 4, 0])
        b += bop(0, 10, [0, 7, 1]) + bop(0, 0) + bop(1, 17, [UInt8(i), 3]) + bop(1, 1) + bop(1, 11, [0, 7, 1]) + bop(1, 1)
        b += bop(i % 2, 12) + bop(i % 2, 13)
    }
    b += bop(3, 15, [0]) + bop(3, 0) + bop(3, 2, [3])
    seeds.append(("benign-all", b))
    // Hostile: bad indices, bad slots, scribbles, extra-buffer list cycles.
    var h: [UInt8] = [0x07, 1, 1, 3, 6, 0x11]
    h += op(0, 10, [0, 5, 0]) + op(0, 4, [0x80]) + op(0, 0) + op(0, 7, [0xc0, 0xff, 0xff, 0xff, 0xff]) + op(0, 0)
    h += op(0, 6, [0x05]) + op(0, 0) + op(1, 5, [0x41]) + op(1, 1) + op(1, 2, [3])
    h += op(0, 8, [0, 0, 1, 0, 0x0f, 3, 0xff, 0xff, 0x20, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]) + op(0, 0) + op(1, 1)
    h += op(1, 8, [1, 0, 0, 0, 0x01, 1]) + op(1, 8, [2, 0, 0, 0, 0x01, 2]) + op(1, 1)
    h += op(2, 4, [0x82]) + op(2, 3, [3]) + op(3, 5, [0x83]) + op(3, 2, [1])
    h += op(0, 9, [0, 4, 0xde, 0xad, 0xbe, 0xef, 20, 0]) + op(0, 9, [1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0])
    h += op(2, 9, [2, 4, 0xff, 0xff, 0xff, 0xff, 32, 0])
    h += op(0, 16, [0x0d, 7, 0]) + op(1, 16, [0x01, 100, 0, 0x04, 100, 0, 101, 0]) + op(0, 12) + op(0, 13)
    h += op(3, 14, [1, 50]) + op(3, 1) + op(3, 15, [0]) + op(3, 0) + op(3, 1) + op(3, 2, [3]) + op(3, 12) + op(3, 13) + op(3, 1)
    seeds.append(("hostile-mix", h))
    // Hostile: the pipe's TX ring with a user-chosen tail, then a sync (§5.4).
    h = [0x01, 0, 0, 4, 0, 0] + op(0, 6, [0x43]) + op(0, 4, [0x80]) + op(0, 0) + op(0, 7, [0x42]) + op(0, 0)
        + op(1, 1) + op(1, 11, [0, 200, 0]) + op(1, 1) + op(0, 0)
    seeds.append(("hostile-tail", h))
    // Hostile: legacy pipe master, RX ring out of range everywhere, poll.
    h = [0xa1, 2, 2, 7, 15, 0] + op(1, 4, [0xff, 0xff, 0xff, 0xff, 0x7f]) + op(1, 2, [1]) + op(1, 1)
        + op(0, 6, [0x82]) + op(0, 2, [3]) + op(0, 3, [0]) + op(1, 12) + op(0, 12) + op(1, 13) + op(0, 13)
    seeds.append(("hostile-legacy", h))
    return seeds
}
