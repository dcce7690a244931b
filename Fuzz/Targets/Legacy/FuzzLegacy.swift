// Fuzz target (a): legacy `struct nmreq` through NIOCGINFO / NIOCREGIF.
//
// Input: up to 6 requests, each a control byte and a 60-byte nmreq (zero
// padded):
//   bit 0     command: 0 NIOCGINFO, 1 NIOCREGIF
//   bit 1     argument style: 0 CUSE-like fetch-everything, 1 FUSE-like prefetched
//   bits 2-3  argument: 0 a readable nmreq, 1 NULL, 2 unreadable, 3 only 59 bytes mapped
//   bit 4     file 0 or file 1 (two open files, e.g. both ends of a pipe)
//   bit 5     then txsync, rxsync and poll on that file
//   bit 6     then release the file (a later request opens a new one)
// Checks: the stepwise protocol is obeyed, the nmreq goes back only where it
// was read, a successful NIOCREGIF reports a netmap_if whose offsets all land
// on ring objects of the region, pools and registry stay consistent after
// each step, and after the input nothing is left and the accounting is exact.

#if canImport(Glibc)
import Glibc
#endif
import CNetmapABI
import DeviceInterface
import NetmapCore

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInit(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    writeSeedsIfAsked(legacySeeds)
    _ = FuzzWorld.shared
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLegacy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let world = FuzzWorld.shared
    var input = FuzzInput(data, size)
    var files: [DeviceFile?] = [nil, nil]
    var requests = 0
    while !input.isEmpty && requests < 6 {
        requests += 1
        let ctl = input.u8()
        let req = input.bytes(60)
        let command = ctl & 1 == 0 ? NIOCGINFO : NIOCREGIF
        let style: ArgumentStyle = ctl & 2 == 0 ? .fetchEverything : .argumentPrefetched
        let slot = Int(ctl >> 4) & 1
        let file = files[slot] ?? world.engine.open(client: ClientIdentity(pid: 4242))
        files[slot] = file

        var space = FakeAddressSpace()
        let addr: UInt64 = 0x7ffd_0000_0100
        var argument = addr
        switch (ctl >> 2) & 3 {
        case 0: space.add(address: addr, bytes: req)
        case 1: argument = 0
        case 2: space.add(address: addr, bytes: req, readable: false)
        default: space.add(address: addr, bytes: Array(req.prefix(59)))
        }
        let e = runIoctl(file, command: command, argument: argument, space: &space, style: style)
        world.checkStats()
        if e == 0 {
            check((ctl >> 2) & 3 == 0, "nmreq request succeeded without a readable argument")
            var back = Bytes(60)
            back.b = space.bytes(at: addr, 60)!
            // NIOCGINFO, and NIOCREGIF with nr_cmd 0 (a registration), report the region.
            if command == NIOCGINFO || back.u16(42) == 0 {
                check(back.u32(24) == UInt32(truncatingIfNeeded: world.region.size), "nr_memsize \(back.u32(24))")
            }
            if command == NIOCREGIF && back.u16(42) == 0 {
                checkNetmapIf(offset: UInt64(back.u32(20)), world: world)
            }
        }
        if ctl & 0x20 != 0 {
            _ = file.ioctl(command: NIOCTXSYNC, argument: 0, memory: CallerMemory())
            _ = file.ioctl(command: NIOCRXSYNC, argument: 0, memory: CallerMemory())
            _ = file.poll(events: Int16(POLLIN | POLLOUT), waker: nil)
            world.checkStats()
        }
        if ctl & 0x40 != 0 {
            file.release()
            files[slot] = nil
            world.checkStats()
        }
    }
    for f in files { f?.release() }
    world.checkQuiescent(exactAccounting: true)
    return 0
}

func nmreq(_ name: String, version: UInt32 = 14, flags: UInt32 = UInt32(NR_REG_ALL_NIC), ringid: UInt16 = 0,
           cmd: UInt16 = 0, arg1: UInt16 = 0, arg2: UInt16 = 0, arg3: UInt32 = 0,
           rings: UInt16 = 0, slots: UInt32 = 0) -> [UInt8] {
    var b = Bytes(60)
    b.name(0, 16, name)
    b.set(16, version)
    b.set(28, slots)
    b.set(32, slots)
    b.set(36, rings)
    b.set(38, rings)
    b.set(40, ringid)
    b.set(42, cmd)
    b.set(44, arg1)
    b.set(46, arg2)
    b.set(48, arg3)
    b.set(52, flags)
    return b.b
}

func legacySeeds() -> [(String, [UInt8])] {
    func one(_ ctl: UInt8, _ r: [UInt8]) -> [UInt8] { [ctl] + r }
    let regif: UInt8 = 1, ginfo: UInt8 = 0, pre: UInt8 = 2, file1: UInt8 = 0x10, sync: UInt8 = 0x20, rel: UInt8 = 0x40
    return [
        ("ginfo-fz0", one(ginfo, nmreq("fz0"))),
        ("ginfo-empty", one(ginfo | pre, nmreq(""))),
        ("ginfo-pipe", one(ginfo, nmreq("p{3", rings: 2, slots: 64))),
        ("regif-fz0", one(regif | sync, nmreq("fz0"))),
        ("regif-eth0-prefetched", one(regif | pre | sync, nmreq("eth0", arg3: 8))),
        ("regif-fz0-sw", one(regif | sync, nmreq("fz0", flags: 0, ringid: UInt16(NETMAP_SW_RING)))),
        ("regif-fz0-one", one(regif | sync, nmreq("fz0", flags: 0, ringid: UInt16(NETMAP_HW_RING) | 1))),
        ("regif-fz1", one(regif, nmreq("fz1"))),
        ("regif-pipe-pair",
         one(regif | sync, nmreq("lp", flags: UInt32(NR_REG_PIPE_MASTER), ringid: 7, rings: 2, slots: 32))
            + one(regif | file1 | sync, nmreq("lp", flags: UInt32(NR_REG_PIPE_SLAVE), ringid: 7))
            + one(regif | sync | rel, nmreq("lp", flags: UInt32(NR_REG_PIPE_MASTER), ringid: 7))),
        ("regif-null", one(regif | sync, nmreq("n0", flags: UInt32(NR_REG_NULL), arg2: 1, rings: 3, slots: 16))),
        ("regif-extra", one(regif | rel, nmreq("fz0", arg3: 100)) + one(regif, nmreq("fz0", arg3: 20000))),
        ("regif-twice", one(regif, nmreq("fz0")) + one(regif, nmreq("eth0"))),
        ("vnet-hdr-set", one(regif, nmreq("fz0", cmd: UInt16(NETMAP_BDG_VNET_HDR), arg1: 12))),
        ("vnet-hdr-get", one(regif, nmreq("fz0", cmd: UInt16(NETMAP_VNET_HDR_GET)))),
        ("bdg-list", one(ginfo, nmreq("vale0:1", cmd: UInt16(NETMAP_BDG_LIST)))),
        ("pt-host", one(regif, nmreq("fz0", cmd: UInt16(NETMAP_PT_HOST_CREATE)))),
        ("old-version", one(regif, nmreq("fz0", version: 11))),
        ("unreadable", one(regif | 8, nmreq("fz0"))),
        ("short", one(regif | 12, nmreq("fz0"))),
        ("null-arg", one(regif | 4, nmreq("fz0"))),
        ("vale", one(regif, nmreq("vale0:p"))),
        ("long-pipe-name", one(regif, nmreq("abcdefghijklmno", flags: UInt32(NR_REG_PIPE_MASTER), ringid: 4095))),
    ]
}
