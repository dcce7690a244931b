// Fuzz target (c): port names. PortName.parse on arbitrary names and modes,
// then the same name through the requests that resolve names: REGISTER (and
// the pipe peer's REGISTER), PORT_INFO_GET, POOLS_INFO_GET, PORT_HDR_GET,
// the VALE requests (LIST, ATTACH, DETACH, NEWIF, DELIF, POLLING, HDR_SET)
// and legacy NIOCGINFO, with syncs on whatever got registered.
//
// Input:
//   mode     n % 10: nr_mode 0-8, 9 = a raw 32-bit value from the input
//   flags    bit 0 NR_TX_RINGS_ONLY, 1 NR_RX_RINGS_ONLY, 2 NR_EXCLUSIVE,
//            3 NR_NO_TX_POLL, 4 NR_MONITOR_TX, 5 also register the pipe
//            peer on a second file, 6 also legacy NIOCGINFO, 7 flags are a
//            raw 64-bit value from the input
//   ringid   16 bits
//   hints    tx rings, rx rings (8 bits each), slots selector, mem_id selector
//   name     the rest, up to 64 bytes (nr_name; the decoder forces the NUL)
// Checks: parse's result re-assembles into the name it came from and obeys
// §8.1 (pipe = last '{' else last '}', both sides non-empty; "val" prefix;
// null only for NR_REG_NULL); the requests keep the protocol, pools and
// registry consistent, and a successful REGISTER's netmap_if is sound.

#if canImport(Glibc)
import Glibc
#endif
import CNetmapABI
import DeviceInterface
import NetmapCore

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInit(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    writeSeedsIfAsked(nameSeeds)
    _ = FuzzWorld.shared
    return 0
}

let slotHints: [UInt32] = [0, 1, 2, 3, 8, 64, 1000, 1024, 2288, 2289, 4096, 4097, 65535, 1 << 20, 0xffff_ffff, 16]

/// The name as the NIOCCTRL decoder reads nr_name.
func decodedName(_ raw: [UInt8]) -> String {
    var f = Array(raw.prefix(64))
    f += [UInt8](repeating: 0, count: 64 - f.count)
    f[63] = 0
    return String(decoding: f.prefix { $0 != 0 }, as: UTF8.self)
}

func checkParse(_ name: String, mode: UInt32) {
    let bytes = Array(name.utf8)
    let result: PortName
    do {
        result = try PortName.parse(name, mode: mode)
    } catch {
        check(error == .EINVAL, "parse threw \(error)")
        check(mode != RegisterMode.null, "null names never fail")
        let b = bytes.lastIndex(of: UInt8(ascii: "{")) ?? bytes.lastIndex(of: UInt8(ascii: "}"))
        check(b != nil && (b == 0 || b == bytes.count - 1), "parse failed on '\(name)'")
        return
    }
    switch result {
    case .null(let n):
        check(mode == RegisterMode.null && n == name, "null(\(n)) from '\(name)' mode \(mode)")
    case .pipe(let parent, let id, let master):
        check(mode != RegisterMode.null, "pipe in null mode")
        check(!parent.isEmpty && !id.isEmpty, "pipe with an empty side from '\(name)'")
        check(parent + (master ? "{" : "}") + id == name, "pipe(\(parent), \(id), \(master)) is not '\(name)'")
        check(!id.utf8.contains(UInt8(ascii: "{")), "pipe id with '{' from '\(name)'")
        if !master { check(!name.utf8.contains(UInt8(ascii: "{")), "slave chosen though '{' present in '\(name)'") }
        let (m, s) = PortName.pipeNames(parent: parent, id: id)
        check(m == parent + "{" + id && s == parent + "}" + id, "pipeNames(\(parent), \(id))")
    case .vale(let n):
        check(n == name && bytes.starts(with: Array("val".utf8)), "vale(\(n)) from '\(name)'")
        check(!bytes.contains(UInt8(ascii: "{")) && !bytes.contains(UInt8(ascii: "}")), "vale with braces '\(name)'")
    case .interface(let n):
        check(n == name && !bytes.starts(with: Array("val".utf8)), "interface(\(n)) from '\(name)'")
        check(!bytes.contains(UInt8(ascii: "{")) && !bytes.contains(UInt8(ascii: "}")), "interface with braces '\(name)'")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzName(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let world = FuzzWorld.shared
    var input = FuzzInput(data, size)
    let modeSel = input.u8()
    let mode = modeSel % 10 == 9 ? input.u32() : UInt32(modeSel % 10)
    let fsel = input.u8()
    var flags: UInt64 = 0
    if fsel & 0x80 != 0 {
        flags = input.u64()
    } else {
        if fsel & 0x01 != 0 { flags |= RegisterFlag.txRingsOnly }
        if fsel & 0x02 != 0 { flags |= RegisterFlag.rxRingsOnly }
        if fsel & 0x04 != 0 { flags |= RegisterFlag.exclusive }
        if fsel & 0x08 != 0 { flags |= RegisterFlag.noTxPoll }
        if fsel & 0x10 != 0 { flags |= RegisterFlag.monitorTX }
    }
    let ringid = input.u16()
    let txr = UInt16(input.u8()), rxr = UInt16(input.u8())
    let slots = slotHints[Int(input.u8() % 16)]
    let memSel = input.u8()
    let memId: UInt16 = memSel < 200 ? (memSel & 1 == 0 ? 0 : 1) : UInt16(memSel)
    let raw = input.bytes(min(input.remaining, 64))
    let name = decodedName(raw)

    checkParse(name, mode: mode)

    let files = (0 ..< 3).map { _ in world.engine.open(client: ClientIdentity(pid: 4244)) }
    // PORT_HDR_GET first: existence without creation.
    var h = Bytes(88)
    h.b = header(name, Int32(NETMAP_REQ_PORT_HDR_GET))
    _ = simpleIoctl(files[2], command: NIOCCTRL, header: h.b, body: [UInt8](repeating: 0, count: 8))
    world.checkStats()

    let (e, body) = ctrlRegister(files[0], name: name, mode: mode, ringid: ringid, flags: flags,
                                 extraBufs: UInt32(txr % 4), rings: (txr, rxr), slots: (slots, slots), memId: memId)
    world.checkStats()
    if e == 0 {
        checkNetmapIf(offset: body.u64(0), world: world)
        check(world.engine.stats().sessions >= 1, "registered but no session counted")
    }
    if fsel & 0x20 != 0, case .pipe(let parent, let id, let master)? = try? PortName.parse(name, mode: mode) {
        let peer = parent + (master ? "}" : "{") + id
        let (pe, pbody) = ctrlRegister(files[1], name: peer, slots: (slots, 0))
        if pe == 0 { checkNetmapIf(offset: pbody.u64(0), world: world) }
        world.checkStats()
    }
    // The VALE control requests on the name (any name: each has its errors).
    for (type, size) in [(NETMAP_REQ_VALE_LIST, 8), (NETMAP_REQ_VALE_DETACH, 8), (NETMAP_REQ_VALE_NEWIF, 16),
                         (NETMAP_REQ_VALE_DELIF, 0), (NETMAP_REQ_VALE_POLLING_DISABLE, 16), (NETMAP_REQ_PORT_HDR_SET, 8),
                         (NETMAP_REQ_VALE_ATTACH, 64)] {
        var b = Bytes(size)
        if type == NETMAP_REQ_PORT_HDR_SET { b.set(0, UInt32([0, 10, 12, 7][Int(txr % 4)])) }
        if type == NETMAP_REQ_VALE_ATTACH { b.set(36, mode); b.set(34, ringid); b.set(32, memId) }
        _ = simpleIoctl(files[2], command: NIOCCTRL, header: header(name, Int32(type)), body: size > 0 ? b.b : nil)
        world.checkStats()
    }
    // Info requests on an unbound file.
    var info = Bytes(32)
    info.set(8, slots); info.set(12, slots); info.set(16, txr); info.set(18, rxr); info.set(24, memId)
    _ = simpleIoctl(files[2], command: NIOCCTRL, header: header(name, Int32(NETMAP_REQ_PORT_INFO_GET)), body: info.b)
    world.checkStats()
    _ = simpleIoctl(files[2], command: NIOCCTRL, header: header(name, Int32(NETMAP_REQ_POOLS_INFO_GET)),
                    body: [UInt8](repeating: 0, count: 64))
    world.checkStats()
    if fsel & 0x40 != 0 {
        var n = Bytes(60)
        for i in 0 ..< min(16, raw.count) { n.b[i] = raw[i] }
        n.set(16, UInt32(14))
        n.set(36, txr); n.set(38, rxr); n.set(28, slots); n.set(32, slots)
        _ = simpleIoctl(files[2], command: NIOCGINFO, header: n.b)
        world.checkStats()
    }
    for f in files.prefix(2) {
        _ = f.ioctl(command: NIOCTXSYNC, argument: 0, memory: CallerMemory())
        _ = f.ioctl(command: NIOCRXSYNC, argument: 0, memory: CallerMemory())
        _ = f.poll(events: Int16(POLLIN | POLLOUT), waker: nil)
    }
    world.checkStats()
    for f in files { f.release() }
    world.checkQuiescent(exactAccounting: true)
    return 0
}

func header(_ name: String, _ type: Int32) -> [UInt8] {
    var h = Bytes(88)
    h.set(0, UInt16(14))
    h.set(2, UInt16(type))
    h.name(8, 64, name)
    return h.b
}

func nameSeeds() -> [(String, [UInt8])] {
    func seed(_ name: String, mode: UInt8 = 1, flags: UInt8 = 0x60, ringid: UInt16 = 0, tx: UInt8 = 0, rx: UInt8 = 0,
              slots: UInt8 = 0, mem: UInt8 = 0) -> [UInt8] {
        var w = SeedWriter()
        w.u8(mode); w.u8(flags); w.u16(ringid); w.u8(tx); w.u8(rx); w.u8(slots); w.u8(mem)
        w.raw(Array(name.utf8))
        return w.bytes
    }
    return [
        ("fz0", seed("fz0")),
        ("fz0-one", seed("fz0", mode: 4, ringid: 1)),
        ("fz0-sw", seed("fz0", mode: 2)),
        ("fz0-onesw", seed("fz0", mode: 8)),
        ("fz0-nicsw-excl", seed("fz0", mode: 3, flags: 0x64)),
        ("fz1-rx", seed("fz1")),
        ("fz1-tx-only", seed("fz1", flags: 0x61)),
        ("eth0", seed("eth0")),
        ("pipe-master", seed("x{1", tx: 2, rx: 3, slots: 5)),
        ("pipe-slave", seed("x}1", slots: 4)),
        ("pipe-nested", seed("a}b{c", tx: 1, rx: 1, slots: 3)),
        ("pipe-on-nic", seed("fz0{0", slots: 15)),
        ("pipe-on-vale", seed("vale1:p{0")),
        ("pipe-empty-id", seed("x{")),
        ("pipe-empty-parent", seed("}1")),
        ("pipe-one-nic", seed("x{2", mode: 4, ringid: 1, tx: 2, rx: 2, slots: 5)),
        ("null", seed("nul", mode: 7, tx: 4, rx: 2, slots: 4, mem: 1)),
        ("null-no-mem", seed("nul", mode: 7)),
        ("vale", seed("vale0:a")),
        ("vale-hints", seed("vale0:a", flags: 0x64, tx: 3, rx: 2, slots: 4)),
        ("vale-one-nic", seed("vale0:a", mode: 4, ringid: 1, tx: 2, rx: 2, slots: 3)),
        ("vale-mem", seed("vale0:a", mem: 202)),
        ("vale-no-colon", seed("vale0")),
        ("vale-bad-bridge", seed("vale-0:a")),
        ("vale-long-port", seed("vale0:0123456789abcdef")),
        ("vale-nic", seed("vale0:fz0")),
        ("vale-empty-port", seed("vale_:")),
        ("valx", seed("valx")),
        ("unknown", seed("enp0s31f6")),
        ("utf8", seed("é{ü")),
        ("empty", seed("")),
        ("long", seed(String(repeating: "n", count: 70))),
        ("mode-raw", seed("fz0", mode: 9)),
        // The input that found the pipe-name collision (FuzzRegressionTests):
        // register the peer of "\xa6}b{c{c"'s parse, then PORT_INFO_GET it.
        ("pipe-name-collision", [0x00, 0x2e, 0x00, 0x01, 0x01, 0xd2, 0x03, 0x00, 0xa6] + Array("}b{c{c".utf8)),
    ]
}
