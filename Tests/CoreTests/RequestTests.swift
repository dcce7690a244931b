import Glibc
import CNetmapABI
import DeviceInterface
import InProcessFrontEnd
import NetmapCore
import Testing

/// §3: both control APIs, every decoding rule and error of §10 that applies.
@Suite struct RequestTests {
    let t: TestEngine
    init() throws { t = try TestEngine(nics: [FakeNIC(name: "eth0", txRings: 2, rxRings: 2)]) }

    func ctrl(_ c: TestClient, _ h: nmreq_header) -> (Int32, nmreq_header) {
        let p = c.place(h)
        let e = c.file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(p))
        return (e, p.pointee)
    }

    @Test func headerChecks() {
        let c = t.client()
        let body = c.place(nmreq_register())
        for v: UInt16 in [13, 16, 0] {
            #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_REGISTER, body: UnsafeMutableRawPointer(body), version: v)).0 == EINVAL)
        }
        var h = TestClient.header("eth0", type: NETMAP_REQ_PORT_INFO_GET, body: c.memory.allocate(32))
        h.nr_reserved = 1
        #expect(ctrl(c, h).0 == EINVAL)
        // Body present for a type without one, or missing for one that needs it.
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_PORT_INFO_GET, body: nil)).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_CSB_ENABLE, body: c.memory.allocate(8))).0 == EINVAL)
        // Unknown request types, with or without a body.
        #expect(ctrl(c, TestClient.header("eth0", type: 16, body: nil)).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("eth0", type: 0, body: c.memory.allocate(8))).0 == EINVAL)
        // VALE requests reach their handlers (ValeTests checks each errno).
        #expect(ctrl(c, TestClient.header("vale0:x", type: NETMAP_REQ_VALE_ATTACH, body: c.memory.allocate(64))).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("vale0:x", type: NETMAP_REQ_VALE_LIST, body: c.memory.allocate(64))).0 == ENOENT)
        #expect(ctrl(c, TestClient.header("vale0:x", type: NETMAP_REQ_VALE_NEWIF, body: c.memory.allocate(64))).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("vale0:x", type: NETMAP_REQ_VALE_POLLING_ENABLE, body: c.memory.allocate(64))).0 == ENXIO)
        #expect(ctrl(c, TestClient.header("vale0:x", type: NETMAP_REQ_VALE_DELIF, body: nil)).0 == ENXIO)
    }

    @Test func badPointersFaultAndNullArgumentIsInvalid() {
        let c = t.client()
        #expect(c.file.ioctl(NIOCCTRL, nil) == EINVAL)
        #expect(c.file.ioctl(NIOCREGIF, nil) == EINVAL)
        #expect(c.file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(bitPattern: 0x10)) == EFAULT)
        let bogus = UnsafeMutableRawPointer(bitPattern: 0xdead_0000)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_REGISTER, body: bogus)).0 == EFAULT)
        let body = c.place(nmreq_register())
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_REGISTER, body: UnsafeMutableRawPointer(body), options: bogus)).0 == EFAULT)
        #expect(!c.file.file.mmapCheck(offset: 0, length: 1).isZero == true)   // nothing registered
    }

    @Test func unknownIoctlIsNotSupported() {
        let c = t.client()
        #expect(c.file.ioctl(0x6998, nil) == EOPNOTSUPP)
        #expect(c.file.ioctl(0xc004_6901, c.memory.allocate(4)) == EOPNOTSUPP)
        #expect(c.file.ioctl(NIOCCONFIG, c.memory.allocate(272)) == EINVAL)
    }

    @Test func syncOnUnboundFileIsENXIOAndPollIsPOLLERR() {
        let c = t.client()
        #expect(c.txsync() == ENXIO && c.rxsync() == ENXIO)
        #expect(c.poll(Int16(POLLIN)) == Int16(POLLERR))
    }

    @Test func registerWithOptionsFollowsTheChain() {
        let c = t.client()
        let body = c.place(nmreq_register())
        body.pointee.nr_mode = UInt32(NR_REG_ALL_NIC)
        let opts = c.optionChain([(UInt32(NETMAP_REQ_OPT_OFFSETS), 56), (77, 24)])
        let before = t.region.freeBufferCount
        let (e, _) = ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_REGISTER, body: UnsafeMutableRawPointer(body),
                                                options: UnsafeMutableRawPointer(opts[0])))
        // No option is provided, so the registration is undone.
        #expect(e == EOPNOTSUPP)
        #expect(opts[0].pointee.nro_status == UInt32(EOPNOTSUPP) && opts[1].pointee.nro_status == UInt32(EOPNOTSUPP))
        #expect(opts[0].pointee.nro_next == UInt64(UInt(bitPattern: opts[1])))   // user pointers restored
        // CUSE fetches step by step: header; body + option 1; option 1's
        // body + option 2; then all is there.
        #expect(c.file.lastRoundTrips == 4)
        #expect(t.region.freeBufferCount == before)
        #expect(c.txsync() == ENXIO)
        #expect(c.register("eth0").0 == 0)   // the file is still free to register
    }

    @Test func optionErrors() {
        let c = t.client()
        let body = c.place(nmreq_port_info_get())
        func run(_ o: [UnsafeMutablePointer<nmreq_option>]) -> Int32 {
            ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(body),
                                      options: UnsafeMutableRawPointer(o[0]))).0
        }
        // Each option is copied with status 0; the walk stops at the bad one.
        let zero = c.optionChain([(UInt32(NETMAP_REQ_OPT_CSB), 40), (0, 24)])
        #expect(run(zero) == EINVAL)
        #expect(zero[1].pointee.nro_status == UInt32(EINVAL) && zero[0].pointee.nro_status == 0)

        let dup = c.optionChain([(UInt32(NETMAP_REQ_OPT_CSB), 40), (99, 24), (UInt32(NETMAP_REQ_OPT_CSB), 40)])
        #expect(run(dup) == EINVAL)
        #expect(dup[0].pointee.nro_status == UInt32(EINVAL) && dup[2].pointee.nro_status == UInt32(EINVAL))

        let cyclicKnown = c.optionChain([(UInt32(NETMAP_REQ_OPT_OFFSETS), 56)])
        cyclicKnown[0].pointee.nro_next = UInt64(UInt(bitPattern: cyclicKnown[0]))
        #expect(run(cyclicKnown) == EINVAL)

        let cyclicUnknown = c.optionChain([(42, 24), (43, 24)])
        cyclicUnknown[1].pointee.nro_next = UInt64(UInt(bitPattern: cyclicUnknown[0]))
        #expect(run(cyclicUnknown) == EMSGSIZE)

        // Sizes are checked for known types only (an unknown one is just left
        // EOPNOTSUPP, which PORT_INFO_GET ignores).
        #expect(run(c.optionChain([(42, 4097)])) == 0)
        #expect(run(c.optionChain([(UInt32(NETMAP_REQ_OPT_OFFSETS), 4097)])) == EMSGSIZE)
        #expect(run(c.optionChain([(UInt32(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS), 4090)])) == EMSGSIZE)

        // Other requests ignore options they do not use.
        let ignored = c.optionChain([(UInt32(NETMAP_REQ_OPT_EXTMEM), 96)])
        #expect(run(ignored) == 0)
        #expect(ignored[0].pointee.nro_status == UInt32(EOPNOTSUPP))
    }

    @Test func portInfoAndPoolsInfo() {
        let c = t.client()
        let pi = c.place(nmreq_port_info_get())
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(pi))).0 == 0)
        #expect(pi.pointee.nr_tx_rings == 2 && pi.pointee.nr_rx_slots == 1024 && pi.pointee.nr_host_tx_rings == 1)
        #expect(pi.pointee.nr_mem_id == 1 && pi.pointee.nr_memsize == UInt64(t.region.size))
        #expect(t.engine.registry.portNames.isEmpty)   // looked up, not kept

        // Empty name: the allocator only.
        let empty = c.place(nmreq_port_info_get())
        #expect(ctrl(c, TestClient.header("", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(empty))).0 == 0)
        #expect(empty.pointee.nr_memsize == UInt64(t.region.size) && empty.pointee.nr_mem_id == 1)
        let badId = c.place(nmreq_port_info_get())
        badId.pointee.nr_mem_id = 3
        #expect(ctrl(c, TestClient.header("", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(badId))).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("nope", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(pi))).0 == ENXIO)

        // A pipe is created for the question, with the hints, and dropped after.
        let pp = c.place(nmreq_port_info_get())
        pp.pointee.nr_tx_rings = 3
        pp.pointee.nr_rx_slots = 64
        #expect(ctrl(c, TestClient.header("nic{1", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(pp))).0 == 0)
        #expect(pp.pointee.nr_tx_rings == 3 && pp.pointee.nr_rx_rings == 1 && pp.pointee.nr_rx_slots == 64)
        #expect(pp.pointee.nr_tx_slots == 1024 && pp.pointee.nr_host_tx_rings == 0)
        #expect(t.engine.registry.portNames.isEmpty)

        let pools = c.place(nmreq_pools_info())
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_POOLS_INFO_GET, body: UnsafeMutableRawPointer(pools))).0 == 0)
        let g = t.region.geometry
        #expect(pools.pointee.nr_memsize == UInt64(g.totalSize) && pools.pointee.nr_mem_id == 1)
        #expect(pools.pointee.nr_if_pool_offset == 0 && pools.pointee.nr_if_pool_objsize == 1024)
        #expect(pools.pointee.nr_ring_pool_offset == UInt64(g.ringPool.offset) && pools.pointee.nr_ring_pool_objtotal == 64)
        #expect(pools.pointee.nr_buf_pool_offset == UInt64(g.bufPool.offset) && pools.pointee.nr_buf_pool_objtotal == 16384)
        #expect(pools.pointee.nr_buf_pool_objsize == 2048)
        #expect(ctrl(c, TestClient.header("", type: NETMAP_REQ_POOLS_INFO_GET, body: UnsafeMutableRawPointer(pools))).0 == ENXIO)
    }

    @Test func legacyInfo() {
        let c = t.client()
        var r = nmreq()
        setName(&r.nr_name, "eth0")
        r.nr_version = 14
        r.nr_offset = 77
        let p = c.place(r)
        #expect(c.file.ioctl(NIOCGINFO, UnsafeMutableRawPointer(p)) == 0)
        #expect(p.pointee.nr_tx_rings == 2 && p.pointee.nr_rx_slots == 1024 && p.pointee.nr_arg2 == 1)
        #expect(p.pointee.nr_memsize == UInt32(t.region.size) && p.pointee.nr_offset == 77)
        p.pointee.nr_cmd = UInt16(NETMAP_BDG_LIST)
        #expect(c.file.ioctl(NIOCGINFO, UnsafeMutableRawPointer(p)) == EINVAL)
        // The name is NUL-terminated by force and written back even on error.
        var long = nmreq()
        withUnsafeMutableBytes(of: &long.nr_name) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "z")) }
        long.nr_version = 14
        let lp = c.place(long)
        #expect(c.file.ioctl(NIOCGINFO, UnsafeMutableRawPointer(lp)) == ENXIO)
        #expect(nameString(lp.pointee.nr_name) == String(repeating: "z", count: 15))
    }

    @Test func headerNameIsTerminatedAndWrittenBackOnError() {
        let c = t.client()
        var h = TestClient.header("", type: NETMAP_REQ_PORT_INFO_GET, body: c.memory.allocate(32))
        withUnsafeMutableBytes(of: &h.nr_name) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "q")) }
        let (e, back) = ctrl(c, h)
        #expect(e == ENXIO)
        #expect(nameString(back.nr_name).count == 63)
    }

    @Test func portHeaderRequests() {
        let c = t.client()
        let hdr = c.place(nmreq_port_hdr(nr_hdr_len: 99, pad1: 0))
        let raw = UnsafeMutableRawPointer(hdr)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_PORT_HDR_GET, body: raw)).0 == 0)
        #expect(hdr.pointee.nr_hdr_len == 0)
        #expect(ctrl(c, TestClient.header("eth0{3", type: NETMAP_REQ_PORT_HDR_GET, body: raw)).0 == ENODEV)
        #expect(ctrl(c, TestClient.header("vale1:p", type: NETMAP_REQ_PORT_HDR_GET, body: raw)).0 == ENXIO)
        #expect(ctrl(c, TestClient.header("nosuch", type: NETMAP_REQ_PORT_HDR_GET, body: raw)).0 == ENXIO)
        hdr.pointee.nr_hdr_len = 11
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_PORT_HDR_SET, body: raw)).0 == EINVAL)
        hdr.pointee.nr_hdr_len = 12
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_PORT_HDR_SET, body: raw)).0 == ENXIO)
        // Existing pipes answer 0.
        let p = t.client()
        #expect(p.register("eth0{3").0 == 0)
        hdr.pointee.nr_hdr_len = 5
        #expect(ctrl(c, TestClient.header("eth0{3", type: NETMAP_REQ_PORT_HDR_GET, body: raw)).0 == 0)
        #expect(hdr.pointee.nr_hdr_len == 0)
    }

    @Test func csbAndKloopAreAnsweredAsAbsent() {
        let c = t.client()
        let csb = c.optionChain([(UInt32(NETMAP_REQ_OPT_CSB), 40)])
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_CSB_ENABLE, body: nil)).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_CSB_ENABLE, body: nil, options: UnsafeMutableRawPointer(csb[0]))).0 == 0)
        #expect(csb[0].pointee.nro_status == 0)
        let kl = c.place(nmreq_sync_kloop_start(sleep_us: 100, pad1: 0))
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_SYNC_KLOOP_START, body: UnsafeMutableRawPointer(kl))).0 == ENXIO)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_SYNC_KLOOP_STOP, body: nil)).0 == ENXIO)
        #expect(c.register("eth0").0 == 0)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_CSB_ENABLE, body: nil, options: UnsafeMutableRawPointer(csb[0]))).0 == EOPNOTSUPP)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_SYNC_KLOOP_START, body: UnsafeMutableRawPointer(kl))).0 == EINVAL)
        kl.pointee.sleep_us = 1_000_001
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_SYNC_KLOOP_START, body: UnsafeMutableRawPointer(kl))).0 == EINVAL)
        #expect(ctrl(c, TestClient.header("eth0", type: NETMAP_REQ_SYNC_KLOOP_STOP, body: nil)).0 == 0)
    }

    @Test func bothArgumentStylesGiveTheSameAnswer() {
        for style in [InProcessDevice.ArgumentStyle.fetchEverything, .argumentPrefetched] {
            let c = t.client(style: style)
            let (e, body) = c.register("eth0", mode: NR_REG_ONE_NIC, ringid: 1)
            #expect(e == 0 && body.nr_tx_rings == 2)
            #expect(c.file.lastRoundTrips == (style == .fetchEverything ? 3 : 2))
        }
    }

    @Test func regionIoctlTellsTheShimWhatToMap() {
        let c = t.client()
        let info = c.memory.allocate(256).bindMemory(to: netmapd_region_info.self, capacity: 1)
        #expect(c.file.ioctl(NETMAPD_IOC_REGION, UnsafeMutableRawPointer(info)) == EINVAL)
        #expect(c.register("eth0", map: false).0 == 0)
        #expect(c.file.ioctl(NETMAPD_IOC_REGION, UnsafeMutableRawPointer(info)) == 0)
        #expect(info.pointee.size == UInt64(t.region.size) && info.pointee.mem_id == 1)
        #expect(nameString(info.pointee.path) == t.region.path)
    }
}

extension Int32 {
    var isZero: Bool { self == 0 }
}

@Suite struct PoolStatTests {
    @Test func poolStatsAnswerOnAnyDescriptor() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "e")])
        let c = t.client()
        let st = c.memory.allocate(32).bindMemory(to: netmapd_pool_stats.self, capacity: 1)
        #expect(c.file.ioctl(NETMAPD_IOC_POOLSTAT, UnsafeMutableRawPointer(st)) == 0)
        #expect(st.pointee.free_buffers == 16382 && st.pointee.total_buffers == 16382 && st.pointee.sessions == 0)
        #expect(c.register("e").0 == 0)
        #expect(c.file.ioctl(NETMAPD_IOC_POOLSTAT, UnsafeMutableRawPointer(st)) == 0)
        #expect(st.pointee.free_buffers == 16382 - 2048 && st.pointee.free_rings == 62 && st.pointee.sessions == 1)
        #expect(st.pointee.ports == 1 && st.pointee.free_ifs == 63 && st.pointee.total_ifs == 64)
    }
}
