// Fuzz target (b): NIOCCTRL (header -> body -> option chain) and netmapd's
// own pointer-free ioctls, decoded step by step against a fake caller
// address space laid out by the input.
//
// Input:
//   flags     bit 0 FUSE-like (header prefetched) instead of CUSE-like
//             bit 1 the file is registered first (bit 5: to VALE port vale0:f,
//                   else bit 6: to a pipe, else to fz0)
//             bit 2 the same request runs a second time (after its write-back)
//             bit 3 chunks end exactly at 2^64 (address arithmetic at the top)
//             bit 4 chunks are adjacent (reads may span them, lookups may hit
//                   inside an earlier fetched range)
//             bit 7 then txsync, rxsync and poll
//   command   0-11 NIOCCTRL, 12 NETMAPD_IOC_REGION, 13 NETMAPD_IOC_POOLSTAT,
//             14 NIOCCONFIG, 15 a raw 32-bit command from the input
//   argument  a pointer selector (below); 0 means chunk 0
//   chunks    count (1 + n % 8), then per chunk: flags (bit 0 unreadable),
//             size selector, and up to 128 content bytes (rest zero)
//   fixups    count (n % 32), then per fixup: chunk, byte offset, pointer
//             selector, offset: stores a 64-bit pointer into a chunk (the
//             header's nr_body/nr_options, an option's nro_next, ...)
// Pointer selector s: s % 8 == 0 NULL; 1-4 chunk (s >> 3) % count + offset;
// 5 a hole between chunks (unreadable); 6 a raw 64-bit value from the input;
// 7 the fixup's own chunk + offset (self loops).
// Checks: see runIoctl (protocol, termination, writes only where read),
// FuzzWorld (pools, registry, exact accounting after release) and
// OptionWalkModel (§3.3's option walk, modelled apart from the engine: the
// errno of a failed walk and every status it writes back or must not).

#if canImport(Glibc)
import Glibc
#endif
import CNetmapABI
import DeviceInterface
import NetmapCore

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInit(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    writeSeedsIfAsked(ctrlSeeds)
    _ = FuzzWorld.shared
    return 0
}

let sizeTable: [Int] = [88, 56, 24, 32, 40, 48, 64, 96, 120, 4096, 4200, 8, 1, 16, 80, 0]

func chunkSize(_ s: UInt8) -> Int { s < 128 ? sizeTable[Int(s) % 16] : Int(s - 128) * 33 }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCtrl(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let world = FuzzWorld.shared
    var input = FuzzInput(data, size)
    let flags = input.u8()
    let cmdSel = input.u8()
    let argSel = input.u8()
    let argOff = input.u8()
    let command: UInt32
    switch cmdSel % 16 {
    case 0 ..< 12: command = NIOCCTRL
    case 12: command = NETMAPD_IOC_REGION
    case 13: command = NETMAPD_IOC_POOLSTAT
    case 14: command = NIOCCONFIG
    default: command = input.u32()
    }
    let style: ArgumentStyle = flags & 1 == 0 ? .fetchEverything : .argumentPrefetched

    // Chunks and where they live.
    struct Spec { var bytes: [UInt8]; var readable: Bool }
    var specs = [Spec]()
    let count = 1 + Int(input.u8() % 8)
    for _ in 0 ..< count {
        let cf = input.u8()
        let sz = chunkSize(input.u8())
        var b = input.bytes(min(sz, 128))
        if sz > b.count { b += [UInt8](repeating: 0, count: sz - b.count) } else { b = Array(b.prefix(sz)) }
        specs.append(Spec(bytes: b, readable: cf & 1 == 0))
    }
    var addresses = [UInt64]()
    let total = specs.reduce(0) { $0 + $1.bytes.count }
    if flags & 0x08 != 0 {
        var a = UInt64.max &- UInt64(total) &+ 1   // the last chunk ends at 2^64
        for s in specs { addresses.append(a); a = a &+ UInt64(s.bytes.count) }
    } else if flags & 0x10 != 0 {
        var a: UInt64 = 0x7f00_0000_0000
        for s in specs { addresses.append(a); a += UInt64(s.bytes.count) }
    } else {
        for i in 0 ..< count { addresses.append(0x7f00_0000_0000 + UInt64(i) * 0x10000) }
    }
    let hole: UInt64 = 0x7e00_0000_0000

    func pointer(_ sel: UInt8, _ off: UInt8, own: Int, _ input: inout FuzzInput) -> UInt64 {
        switch sel % 8 {
        case 0: return 0
        case 1 ... 4: return addresses[Int(sel >> 3) % count] &+ UInt64(off)
        case 5: return hole &+ UInt64(off)
        case 6: return input.u64()
        default: return addresses[own] &+ UInt64(off)
        }
    }

    let fixups = Int(input.u8() % 32)
    for _ in 0 ..< fixups {
        let c = Int(input.u8()) % count
        let off = Int(input.u8())
        let sel = input.u8(), toff = input.u8()
        let p = pointer(sel, toff, own: c, &input)
        for i in 0 ..< 8 where off + i < specs[c].bytes.count {
            specs[c].bytes[off + i] = UInt8(truncatingIfNeeded: p >> (8 * i))
        }
    }
    var space = FakeAddressSpace()
    for (i, s) in specs.enumerated() { space.add(address: addresses[i], bytes: s.bytes, readable: s.readable) }
    let argument = argSel == 0 ? addresses[0] : pointer(argSel, argOff, own: 0, &input)

    let file = world.engine.open(client: ClientIdentity(pid: 4243))
    if flags & 0x02 != 0 {
        let (e, _) = flags & 0x20 != 0
            ? ctrlRegister(file, name: "vale0:f", rings: (2, 1), slots: (64, 32))
            : flags & 0x40 != 0
            ? ctrlRegister(file, name: "c{1", rings: (2, 1), slots: (64, 32))
            : ctrlRegister(file, name: "fz0", extraBufs: 3)
        check(e == 0, "set-up registration failed: \(e)")
    }
    let runs = flags & 0x04 != 0 ? 2 : 1
    for _ in 0 ..< runs {
        let before = space
        let model = command == NIOCCTRL ? OptionWalkModel.predict(argument: argument, space: space) : .none
        let e = runIoctl(file, command: command, argument: argument, space: &space, style: style)
        model.check(errno: e, argument: argument, before: before, after: space)
        world.checkStats()
        if e == 0 && command == NIOCCTRL, let h = space.bytes(at: argument, 88) {
            var hb = Bytes(88)
            hb.b = h
            if hb.u16(2) == UInt16(NETMAP_REQ_REGISTER), let body = space.bytes(at: hb.u64(80), 56) {
                var bb = Bytes(56)
                bb.b = body
                check(bb.u64(8) == UInt64(world.region.size), "nr_memsize \(bb.u64(8))")
                checkNetmapIf(offset: bb.u64(0), world: world)
            }
        }
    }
    if flags & 0x80 != 0 {
        _ = file.ioctl(command: NIOCTXSYNC, argument: 0, memory: CallerMemory())
        _ = file.ioctl(command: NIOCRXSYNC, argument: 0, memory: CallerMemory())
        _ = file.poll(events: Int16(POLLIN | POLLOUT), waker: nil)
        world.checkStats()
    }
    file.release()
    world.checkQuiescent(exactAccounting: true)
    return 0
}

// MARK: seeds

struct CtrlSeed {
    var flags: UInt8 = 0
    var cmdSel: UInt8 = 0
    var argSel: UInt8 = 0
    var chunks: [(readable: Bool, size: UInt8, content: [UInt8])] = []
    var fixups: [(chunk: UInt8, off: UInt8, sel: UInt8, toff: UInt8)] = []

    /// Chunk selector byte for chunk `i`.
    static func to(_ i: Int) -> UInt8 { UInt8(1 | (i << 3)) }

    var bytes: [UInt8] {
        var w = SeedWriter()
        w.u8(flags); w.u8(cmdSel); w.u8(argSel); w.u8(0)
        w.u8(UInt8(chunks.count - 1))
        for c in chunks {
            w.u8(c.readable ? 0 : 1)
            w.u8(c.size)
            let n = min(chunkSize(c.size), 128)
            w.raw(Array((c.content + [UInt8](repeating: 0, count: n)).prefix(n)))
        }
        w.u8(UInt8(fixups.count))
        for f in fixups { w.u8(f.chunk); w.u8(f.off); w.u8(f.sel); w.u8(f.toff) }
        return w.bytes
    }
}

func header(_ name: String, _ type: Int32, version: UInt16 = 14) -> [UInt8] {
    var h = Bytes(88)
    h.set(0, version)
    h.set(2, UInt16(type))
    h.name(8, 64, name)
    return h.b
}

func registerBody(mode: Int32 = NR_REG_ALL_NIC, ringid: UInt16 = 0, flags: UInt64 = 0, extra: UInt32 = 0,
                  rings: UInt16 = 0, slots: UInt32 = 0, memId: UInt16 = 0) -> [UInt8] {
    var b = Bytes(56)
    b.set(16, slots); b.set(20, slots); b.set(24, rings); b.set(26, rings)
    b.set(32, memId); b.set(34, ringid); b.set(36, UInt32(mode)); b.set(40, extra); b.set(48, flags)
    return b.b
}

func option(type: UInt32, size: UInt64 = 0, body: [UInt8] = []) -> [UInt8] {
    var o = Bytes(24)
    o.set(8, type)
    o.set(16, size)
    return o.b + body
}

/// Size selector bytes (see sizeTable).
enum Sz {
    static let header: UInt8 = 0, reg: UInt8 = 1, opt: UInt8 = 2, b32: UInt8 = 3, b64: UInt8 = 6, b96: UInt8 = 7
    static let b120: UInt8 = 8, b4096: UInt8 = 9, b8: UInt8 = 11, b16: UInt8 = 13
}

func ctrlSeeds() -> [(String, [UInt8])] {
    var seeds = [(String, [UInt8])]()
    // header -> body (fixup: header+80 := chunk 1), options from chunk 2 on.
    func request(_ name: String, _ type: Int32, body: [UInt8]?, bodySize: UInt8, options: [([UInt8], UInt8)] = [],
                 flags: UInt8 = 0, cycleTo: Int? = nil) -> [UInt8] {
        var s = CtrlSeed(flags: flags)
        s.chunks.append((true, Sz.header, header(name, type)))
        if let body {
            s.chunks.append((true, bodySize, body))
            s.fixups.append((0, 80, CtrlSeed.to(1), 0))
        }
        let first = s.chunks.count
        for (i, (o, sz)) in options.enumerated() {
            s.chunks.append((true, sz, o))
            s.fixups.append(i == 0 ? (0, 72, CtrlSeed.to(first), 0) : (UInt8(first + i - 1), 0, CtrlSeed.to(first + i), 0))
        }
        if let c = cycleTo, !options.isEmpty {
            s.fixups.append((UInt8(first + options.count - 1), 0, CtrlSeed.to(first + c), 0))
        }
        return s.bytes
    }
    let reg = Int32(NETMAP_REQ_REGISTER)
    seeds.append(("register-fz0", request("fz0", reg, body: registerBody(extra: 4), bodySize: Sz.reg, flags: 0x80)))
    seeds.append(("register-fz0-fuse", request("fz0", reg, body: registerBody(), bodySize: Sz.reg, flags: 0x81)))
    seeds.append(("register-nicsw", request("fz0", reg, body: registerBody(mode: NR_REG_NIC_SW), bodySize: Sz.reg, flags: 0x80)))
    seeds.append(("register-pipe", request("q{2", reg, body: registerBody(rings: 2, slots: 128), bodySize: Sz.reg, flags: 0x80)))
    seeds.append(("register-null", request("nn", reg, body: registerBody(mode: NR_REG_NULL, rings: 2, slots: 8, memId: 1),
                                           bodySize: Sz.reg, flags: 0x80)))
    seeds.append(("register-busy", request("fz0", reg, body: registerBody(), bodySize: Sz.reg, flags: 0x02)))
    seeds.append(("register-twice", request("eth0", reg, body: registerBody(), bodySize: Sz.reg, flags: 0x04)))
    seeds.append(("register-adjacent", request("fz0", reg, body: registerBody(), bodySize: Sz.reg, flags: 0x10)))
    seeds.append(("register-top", request("fz0", reg, body: registerBody(), bodySize: Sz.reg, flags: 0x08)))
    seeds.append(("port-info", request("fz0", Int32(NETMAP_REQ_PORT_INFO_GET), body: [UInt8](repeating: 0, count: 32), bodySize: Sz.b32)))
    seeds.append(("port-info-pipe", request("r}9", Int32(NETMAP_REQ_PORT_INFO_GET), body: [UInt8](repeating: 0, count: 32), bodySize: Sz.b32)))
    seeds.append(("pools-info", request("fz0", Int32(NETMAP_REQ_POOLS_INFO_GET), body: [UInt8](repeating: 0, count: 64), bodySize: Sz.b64)))
    seeds.append(("hdr-get", request("fz0", Int32(NETMAP_REQ_PORT_HDR_GET), body: [UInt8](repeating: 0, count: 8), bodySize: Sz.b8)))
    seeds.append(("hdr-set", request("fz0", Int32(NETMAP_REQ_PORT_HDR_SET), body: [12, 0, 0, 0, 0, 0, 0, 0], bodySize: Sz.b8)))
    seeds.append(("kloop-start", request("fz0", Int32(NETMAP_REQ_SYNC_KLOOP_START), body: [UInt8](repeating: 0, count: 8),
                                         bodySize: Sz.b8, flags: 0x02)))
    seeds.append(("kloop-stop", request("fz0", Int32(NETMAP_REQ_SYNC_KLOOP_STOP), body: nil, bodySize: 0, flags: 0x02)))
    seeds.append(("csb-enable", request("", Int32(NETMAP_REQ_CSB_ENABLE), body: nil, bodySize: 0,
                                        options: [(option(type: UInt32(NETMAP_REQ_OPT_CSB), body: [UInt8](repeating: 0, count: 16)), Sz.b64)])))
    seeds.append(("vale-attach", request("vale0:x", Int32(NETMAP_REQ_VALE_ATTACH), body: [UInt8](repeating: 0, count: 64), bodySize: Sz.b64)))
    seeds.append(("vale-attach-nic", request("vale0:fz0", Int32(NETMAP_REQ_VALE_ATTACH), body: [UInt8](repeating: 0, count: 64),
                                             bodySize: Sz.b64, flags: 0x22)))
    seeds.append(("register-vale", request("vale0:g", reg, body: registerBody(rings: 2, slots: 64), bodySize: Sz.reg, flags: 0xa2)))
    seeds.append(("vale-list-all", request("", Int32(NETMAP_REQ_VALE_LIST), body: [UInt8](repeating: 0, count: 8), bodySize: Sz.b8,
                                           flags: 0x22)))
    seeds.append(("vale-list-name", request("vale0:f", Int32(NETMAP_REQ_VALE_LIST), body: [UInt8](repeating: 0, count: 8),
                                            bodySize: Sz.b8, flags: 0x22)))
    seeds.append(("vale-detach", request("vale0:f", Int32(NETMAP_REQ_VALE_DETACH), body: [UInt8](repeating: 0, count: 8),
                                         bodySize: Sz.b8, flags: 0x22)))
    seeds.append(("vale-hdr-set", request("vale0:f", Int32(NETMAP_REQ_PORT_HDR_SET), body: [10, 0, 0, 0, 0, 0, 0, 0],
                                          bodySize: Sz.b8, flags: 0x26)))
    seeds.append(("vale-port-info", request("vale0:f", Int32(NETMAP_REQ_PORT_INFO_GET), body: [UInt8](repeating: 0, count: 32),
                                            bodySize: Sz.b32, flags: 0x22)))
    seeds.append(("vale-pools-info", request("vale0:f", Int32(NETMAP_REQ_POOLS_INFO_GET), body: [UInt8](repeating: 0, count: 64),
                                             bodySize: Sz.b64, flags: 0x22)))
    seeds.append(("vale-newif", request("v0", Int32(NETMAP_REQ_VALE_NEWIF), body: [UInt8](repeating: 0, count: 16), bodySize: Sz.b16)))
    seeds.append(("vale-delif", request("fz0", Int32(NETMAP_REQ_VALE_DELIF), body: nil, bodySize: 0)))
    seeds.append(("vale-polling", request("vale0:f", Int32(NETMAP_REQ_VALE_POLLING_ENABLE), body: [UInt8](repeating: 0, count: 16),
                                          bodySize: Sz.b16, flags: 0x22)))
    let opts: [([UInt8], UInt8)] = [
        (option(type: UInt32(NETMAP_REQ_OPT_OFFSETS), body: [UInt8](repeating: 0, count: 32)), Sz.b64),
        (option(type: UInt32(NETMAP_REQ_OPT_EXTMEM), body: [UInt8](repeating: 0, count: 72)), Sz.b96),
        (option(type: 100), Sz.opt),
        (option(type: UInt32(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS), size: 24 + 16, body: [UInt8](repeating: 0, count: 16)), Sz.b64),
    ]
    seeds.append(("register-options", request("fz0", reg, body: registerBody(), bodySize: Sz.reg, options: opts, flags: 0x01)))
    seeds.append(("option-cycle-unknown", request("fz0", reg, body: registerBody(), bodySize: Sz.reg,
                                                  options: [(option(type: 100), Sz.opt), (option(type: 101), Sz.opt)], cycleTo: 0)))
    seeds.append(("option-cycle-known", request("fz0", reg, body: registerBody(), bodySize: Sz.reg,
                                                options: [(option(type: 4, body: [0, 0, 0, 0, 0, 0, 0, 0]), Sz.b32)], cycleTo: 0)))
    seeds.append(("option-type0", request("fz0", reg, body: registerBody(), bodySize: Sz.reg, options: [(option(type: 0), Sz.opt)])))
    seeds.append(("option-huge", request("fz0", reg, body: registerBody(), bodySize: Sz.reg,
                                         options: [(option(type: 2, size: 1 << 40), Sz.opt)])))
    seeds.append(("option-eventfds-max", request("fz0", reg, body: registerBody(), bodySize: Sz.reg,
                                                 options: [(option(type: 2, size: 4096), Sz.b4096)])))
    seeds.append(("option-at-top", request("fz0", reg, body: registerBody(), bodySize: Sz.reg,
                                           options: [(option(type: 100), Sz.opt)], flags: 0x08)))
    seeds.append(("known-option-at-top", request("fz0", reg, body: registerBody(), bodySize: Sz.reg,
                                                 options: [(option(type: 4), Sz.opt)], flags: 0x08)))
    // An option whose next pointer is unreadable, and a body that is.
    var s = CtrlSeed()
    s.chunks = [(true, Sz.header, header("fz0", reg)), (false, Sz.reg, registerBody())]
    s.fixups = [(0, 80, CtrlSeed.to(1), 0)]
    seeds.append(("body-unreadable", s.bytes))
    s = CtrlSeed()
    s.chunks = [(true, Sz.header, header("fz0", reg)), (true, Sz.reg, registerBody()), (true, Sz.opt, option(type: 100))]
    s.fixups = [(0, 80, CtrlSeed.to(1), 0), (0, 72, CtrlSeed.to(2), 0), (2, 0, 5, 0)]
    seeds.append(("option-next-hole", s.bytes))
    // netmapd's own ioctls, unbound and bound.
    for (n, sel, f) in [("region", UInt8(12), UInt8(0x02)), ("region-unbound", 12, 0), ("poolstat", 13, 0x02)] {
        var r = CtrlSeed(flags: f, cmdSel: sel)
        r.chunks = [(true, 145, [])]   // 17 * 33 = 561 bytes
        seeds.append((n, r.bytes))
    }
    return seeds
}
