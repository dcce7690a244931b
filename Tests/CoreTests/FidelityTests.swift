import Glibc
import CNetmapABI
import NetmapCore
import Testing

/// Issue #14: answers that an unmodified netmap program could tell apart
/// from netmap's, each checked against the ABI notes' section.
@Suite struct FidelityTests {
    let t: TestEngine
    init() throws { t = try TestEngine(nics: [FakeNIC(name: "e0", txRings: 2, rxRings: 2)]) }

    func ctrl(_ c: TestClient, _ name: String, _ type: Int32, _ body: UnsafeMutableRawPointer?,
              options: UnsafeMutableRawPointer? = nil) -> Int32 {
        let h = c.place(TestClient.header(name, type: type, body: body, options: options))
        return c.file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(h))
    }

    func raw<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(p) }

    // MARK: 1. option walk (§3.3)

    @Test func optionTypeIsCheckedBeforeItsSize() {
        let c = t.client()
        let info = c.place(nmreq_port_info_get())
        // An unknown type skips the size checks: PORT_INFO_GET ignores it...
        let big = c.optionChain([(99, 8192)])
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(big[0])) == 0)
        #expect(big[0].pointee.nro_status == UInt32(EOPNOTSUPP))
        // ...and REGISTER fails on it, with nothing left registered.
        let reg = c.place(nmreq_register())
        reg.pointee.nr_mode = UInt32(NR_REG_ALL_NIC)
        #expect(ctrl(c, "e0", NETMAP_REQ_REGISTER, raw(reg), options: raw(big[0])) == EOPNOTSUPP)
        #expect(c.txsync() == ENXIO)
        // A known type with the same size is EMSGSIZE, its header written
        // back with the status it was copied with (0).
        let known = c.optionChain([(UInt32(NETMAP_REQ_OPT_OFFSETS), 8192)])
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(known[0])) == EMSGSIZE)
        #expect(known[0].pointee.nro_status == 0)
        // A duplicate is found before the size of the second copy is looked at.
        let dup = c.optionChain([(UInt32(NETMAP_REQ_OPT_CSB), 40), (UInt32(NETMAP_REQ_OPT_CSB), 8192)])
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(dup[0])) == EINVAL)
        #expect(dup[0].pointee.nro_status == UInt32(EINVAL) && dup[1].pointee.nro_status == UInt32(EINVAL))
    }

    @Test func aFailedWalkWritesBackTheOptionsAsTheyStand() {
        let c = t.client()
        let info = c.place(nmreq_port_info_get())
        // [valid, unknown, type 0, never reached]: 0, 0, EINVAL, untouched.
        let o = c.optionChain([(UInt32(NETMAP_REQ_OPT_CSB), 40), (77, 24), (0, 24), (UInt32(NETMAP_REQ_OPT_EXTMEM), 96)])
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(o[0])) == EINVAL)
        #expect(o.map(\.pointee.nro_status) == [0, 0, UInt32(EINVAL), 12345])
        // A fault in the middle: what was copied goes back with status 0.
        let f = c.optionChain([(77, 24), (78, 24)])
        f[1].pointee.nro_next = 0x10
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(f[0])) == EFAULT)
        #expect(f[0].pointee.nro_status == 0 && f[1].pointee.nro_status == 0)
        #expect(f[0].pointee.nro_next == UInt64(UInt(bitPattern: f[1])))   // the user's pointer
        // A clean walk: every option reads EOPNOTSUPP.
        let ok = c.optionChain([(UInt32(NETMAP_REQ_OPT_CSB), 40), (77, 24)])
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(ok[0])) == 0)
        #expect(ok.map(\.pointee.nro_status) == [UInt32(EOPNOTSUPP), UInt32(EOPNOTSUPP)])
    }

    /// The kernel's copy buffer: 4096 bytes plus 8 pointers plus a table of
    /// 6; 96 bytes go to PORT_INFO_GET's pointers, body and table, 32 to each
    /// option. 128 options fit, the 129th is EMSGSIZE with nothing written.
    @Test func theCopyBufferEndsLongAndCyclicChains() {
        let c = t.client()
        let info = c.place(nmreq_port_info_get())
        let fits = c.optionChain(Array(repeating: (UInt32(77), UInt64(24)), count: 128))
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(fits[0])) == 0)
        #expect(fits.allSatisfy { $0.pointee.nro_status == UInt32(EOPNOTSUPP) })
        let over = c.optionChain(Array(repeating: (UInt32(77), UInt64(24)), count: 129))
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(over[0])) == EMSGSIZE)
        #expect(over.allSatisfy { $0.pointee.nro_status == 12345 })
        let cycle = c.optionChain([(77, 24), (78, 24)])
        cycle[1].pointee.nro_next = UInt64(UInt(bitPattern: cycle[0]))
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(cycle[0])) == EMSGSIZE)
        #expect(cycle[0].pointee.nro_status == 12345)
        // A known option's body counts against 4096 bytes together with the
        // request body and every option header, unknown ones too:
        // 32 + 101 x 24 + 1700 > 4096.
        let kl = c.optionChain(Array(repeating: (UInt32(77), UInt64(24)), count: 100)
                       + [(UInt32(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS), 24 + 1700)])
        #expect(ctrl(c, "e0", NETMAP_REQ_PORT_INFO_GET, raw(info), options: raw(kl[0])) == EMSGSIZE)
        #expect(kl[100].pointee.nro_status == 0 && kl[0].pointee.nro_status == 0)
    }

    // MARK: 2. null ports (§13)

    @Test func everyNullRegistrationGetsItsOwnPort() {
        let a = t.client(), b = t.client()
        let (ea, ra) = a.register("n", mode: NR_REG_NULL, flags: UInt64(NR_EXCLUSIVE), txRings: 2, slots: 64, memId: 1)
        #expect(ea == 0 && ra.nr_tx_rings == 2 && ra.nr_rx_rings == 0 && ra.nr_tx_slots == 64)
        let (eb, rb) = b.register("n", mode: NR_REG_NULL, flags: UInt64(NR_EXCLUSIVE), rxRings: 3, slots: 32, memId: 1)
        #expect(eb == 0 && rb.nr_tx_rings == 0 && rb.nr_rx_rings == 3 && rb.nr_rx_slots == 32)
        #expect(t.engine.stats().ports == 2)
        // b has no TX ring: ring_ofs[0] is the (absent) host TX ring, RX 0 follows.
        #expect(a.ringOfs(0) != 0 && a.ringOfs(1) != 0 && b.ringOfs(0) == 0 && b.ringOfs(1) != 0)
        a.close()
        b.close()
        #expect(t.engine.stats().ports == 0)
    }

    // MARK: 3, 4. pipes (§12)

    func registerPipe(_ c: TestClient, _ name: String, tx: UInt16, rx: UInt16, txSlots: UInt32 = 0,
                      rxSlots: UInt32 = 0) -> (Int32, nmreq_register) {
        var r = nmreq_register()
        r.nr_mode = UInt32(NR_REG_ALL_NIC)
        (r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots) = (tx, rx, txSlots, rxSlots)
        let body = c.place(r)
        return (ctrl(c, name, NETMAP_REQ_REGISTER, raw(body)), body.pointee)
    }

    @Test func theRequestAlwaysBuildsTheMaster() {
        let s = t.client(), m = t.client()
        let (es, rs) = registerPipe(s, "p}1", tx: 3, rx: 1, txSlots: 64, rxSlots: 128)
        #expect(es == 0 && rs.nr_tx_rings == 1 && rs.nr_rx_rings == 3 && rs.nr_tx_slots == 128 && rs.nr_rx_slots == 64)
        let (em, rm) = registerPipe(m, "p{1", tx: 7, rx: 7)
        #expect(em == 0 && rm.nr_tx_rings == 3 && rm.nr_rx_rings == 1 && rm.nr_tx_slots == 64 && rm.nr_rx_slots == 128)
    }

    @Test func pipeCountsAreClampedAndMemoryIsLeftToRegister() {
        let c = t.client()
        let pi = c.place(nmreq_port_info_get())
        (pi.pointee.nr_tx_rings, pi.pointee.nr_rx_rings) = (300, 0)
        (pi.pointee.nr_tx_slots, pi.pointee.nr_rx_slots) = (5000, 7)
        // 4096-slot rings do not fit this region's ring objects: only
        // REGISTER finds that out.
        #expect(ctrl(c, "q}2", NETMAP_REQ_PORT_INFO_GET, raw(pi)) == 0)
        #expect(pi.pointee.nr_tx_rings == 1 && pi.pointee.nr_rx_rings == 256)
        #expect(pi.pointee.nr_tx_slots == 7 && pi.pointee.nr_rx_slots == 4096)
        #expect(t.engine.stats().ports == 0 && t.engine.stats().freeRings == t.engine.stats().totalRings)
        #expect(registerPipe(c, "q{2", tx: 300, rx: 1, txSlots: 5000, rxSlots: 5000).0 == ENOMEM)
        let (e, r) = registerPipe(c, "q{3", tx: 2, rx: 1, txSlots: 9000, rxSlots: 0)
        #expect(e == ENOMEM && r.nr_tx_slots == 9000)   // failed: the body is not written back
        let (e2, r2) = registerPipe(c, "q{4", tx: 2, rx: 1, txSlots: 100, rxSlots: 0)
        #expect(e2 == 0 && r2.nr_tx_slots == 100 && r2.nr_rx_slots == 1024)
    }

    // MARK: 5. empty-name PORT_INFO_GET / NIOCGINFO (§3.2, §3.4)

    @Test func emptyNameInfoWritesOnlyTheMemoryFields() {
        let c = t.client()
        let pi = c.place(nmreq_port_info_get())
        (pi.pointee.nr_tx_rings, pi.pointee.nr_rx_rings, pi.pointee.nr_tx_slots, pi.pointee.nr_rx_slots) = (5, 6, 7, 8)
        (pi.pointee.nr_host_tx_rings, pi.pointee.nr_host_rx_rings) = (9, 10)
        #expect(ctrl(c, "", NETMAP_REQ_PORT_INFO_GET, raw(pi)) == 0)
        let p = pi.pointee
        #expect(p.nr_memsize == UInt64(t.region.size) && p.nr_mem_id == 1)
        #expect((p.nr_tx_rings, p.nr_rx_rings, p.nr_tx_slots, p.nr_rx_slots) == (5, 6, 7, 8))
        #expect((p.nr_host_tx_rings, p.nr_host_rx_rings) == (9, 10))
        var r = nmreq()
        r.nr_version = 14
        (r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots) = (3, 4, 33, 44)
        let lp = c.place(r)
        #expect(c.file.ioctl(NIOCGINFO, raw(lp)) == 0)
        #expect(lp.pointee.nr_memsize == UInt32(truncatingIfNeeded: t.region.size) && lp.pointee.nr_arg2 == 1)
        #expect((lp.pointee.nr_tx_rings, lp.pointee.nr_rx_rings, lp.pointee.nr_tx_slots, lp.pointee.nr_rx_slots) == (3, 4, 33, 44))
    }

    // MARK: 6. POOLS_INFO_GET's mem id (§3.4)

    @Test func poolsInfoChecksTheMemIdFirst() {
        let c = t.client()
        let pools = c.place(nmreq_pools_info())
        pools.pointee.nr_mem_id = 5
        #expect(ctrl(c, "e0", NETMAP_REQ_POOLS_INFO_GET, raw(pools)) == EINVAL)
        #expect(ctrl(c, "", NETMAP_REQ_POOLS_INFO_GET, raw(pools)) == EINVAL)
        pools.pointee.nr_mem_id = 1
        #expect(ctrl(c, "e0", NETMAP_REQ_POOLS_INFO_GET, raw(pools)) == 0)
        #expect(ctrl(c, "", NETMAP_REQ_POOLS_INFO_GET, raw(pools)) == ENXIO)
    }

    // MARK: 7. nr_ringid taken whole (§3.4, §7)

    @Test func ctrlRingIdIsNotMasked() {
        let c = t.client()
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 0x1000).0 == EINVAL)
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 0x1001).0 == EINVAL)
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 1).0 == 0)
        // The legacy API masks (0x1000 is NETMAP_NO_TX_POLL there).
        let l = t.client()
        #expect(l.registerLegacy("e0", flags: UInt32(NR_REG_ONE_NIC), ringid: 0x1001).0 == 0)
        #expect(l.ringOfs(1) != 0 && l.ringOfs(0) == 0)
    }

    // MARK: 8. check order at registration (§3.4)

    @Test func registrationChecksRunInNetmapsOrder() {
        let c = t.client()
        for m in [NR_REG_DEFAULT, 42, NR_REG_SW + 100] {
            #expect(c.register("nosuch0", mode: m).0 == ENXIO, "mode \(m)")
        }
        #expect(c.register("nosuch0", mode: NR_REG_PIPE_MASTER).0 == EINVAL)
        #expect(c.register("e0", mode: NR_REG_DEFAULT).0 == EINVAL)
        #expect(c.register("e0").0 == 0)
        for m in [NR_REG_DEFAULT, NR_REG_PIPE_MASTER, NR_REG_PIPE_SLAVE, 42] {
            #expect(c.register("e0", mode: m).0 == EBUSY, "mode \(m)")
        }
    }

    // MARK: 9. link down (§5.9, §6)

    @Test func aDownLinkIsWaitedForNotAnError() throws {
        let c = t.client()
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 0).0 == 0)
        let a = try #require(t.engine.registry.adapter(named: "e0"))
        let tx = a.txKrings[0], rx = a.rxKrings[0]
        tx.setLinkDown(true)
        rx.setLinkDown(true)
        // Down for longer than a sync waits: 0, nothing done, no POLLERR.
        let ring = c.txRing(0)
        c.slot(ring, 0).pointee.len = 60
        ring.pointee.head = 1
        ring.pointee.cur = 1
        let t0 = Self.now()
        #expect(c.txsync() == 0 && c.rxsync() == 0)
        #expect(Self.now() - t0 >= 0.09)
        #expect(t.nics.nics["e0"]!.sent.withLock { $0.count } == 0)
        #expect(c.poll(Int16(POLLIN | POLLOUT)) == 0)
        // Back up while a sync waits: the sync goes on and sends.
        let up = Thread { usleep(30_000); tx.setLinkDown(false); rx.setLinkDown(false) }
        #expect(c.txsync() == 0)
        up.join()
        #expect(t.nics.nics["e0"]!.sent.withLock { $0.count } == 1)
        #expect(c.poll(Int16(POLLOUT)) == Int16(POLLOUT))
        // Gone while down: EIO.
        tx.setLinkDown(true)
        t.engine.registry.interfaceVanished("e0")
        #expect(c.txsync() == EIO)
        #expect(c.poll(Int16(POLLOUT)) & Int16(POLLERR) != 0)
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    // MARK: 11. bad TX slots (§4.6, §5.5)

    @Test func badTxSlotsGoOutRepairedAndCounted() throws {
        let c = t.client()
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 0, flags: UInt64(NR_TX_RINGS_ONLY)).0 == 0)
        let ring = c.txRing(0)
        let zero = c.buf(ring, 0)
        for i in 0 ..< 60 { zero.storeBytes(of: UInt8(0xb0), toByteOffset: i, as: UInt8.self) }
        let good = c.slot(ring, 1).pointee.buf_idx
        for i in 0 ..< 2048 { c.buf(ring, good).storeBytes(of: UInt8(i & 0xff), toByteOffset: i, as: UInt8.self) }
        c.slot(ring, 0).pointee.buf_idx = 0xffff_fff0
        c.slot(ring, 0).pointee.len = 60
        c.slot(ring, 1).pointee.len = 3000
        c.slot(ring, 2).pointee.len = 100   // a good one
        ring.pointee.head = 3
        ring.pointee.cur = 3
        #expect(c.txsync() == 0)
        let sent = t.nics.nics["e0"]!.sent.withLock { $0 }
        #expect(sent.count == 3)
        #expect(sent[0] == [UInt8](repeating: 0xb0, count: 60))
        #expect(sent[1].count == 2048 && sent[1][2047] == 0xff)
        let k = try #require(t.engine.registry.adapter(named: "e0")).txKrings[0]
        #expect(k.badSlots.load(ordering: .relaxed) == 2)
        #expect(k.bytes.load(ordering: .relaxed) == 60 + 2048 + 100)
        let st = t.engine.status().ports.first { $0.name == "e0" }!.rings.first { $0.direction == "tx" && $0.index == 0 }!
        #expect(st.badSlots == 2)
    }

    // MARK: 12. a corrupted extra-buffer list at release (§4.7)

    @Test func releaseStopsAtARingsBufferOrAFreeOne() {
        let keeper = t.client()
        #expect(keeper.register("k{1").0 == 0)
        let held = keeper.slot(keeper.txRing(0), 0).pointee.buf_idx
        keeper.buf(keeper.txRing(0), held).storeBytes(of: UInt32(0), as: UInt32.self)
        let free0 = t.region.freeBufferCount

        // e2 -> e1 -> a buffer the keeper's ring holds: e1 and e2 go back, it stays.
        let c = t.client()
        #expect(c.register("x{1", extraBufs: 2).0 == 0)
        let ring = c.txRing(0)
        let e2 = c.nifp.pointee.ni_bufs_head
        let e1 = c.buf(ring, e2).load(as: UInt32.self)
        c.buf(ring, e1).storeBytes(of: held, as: UInt32.self)
        c.close()
        #expect(t.region.freeBufferCount == free0)
        #expect(!t.region.isFreeBuffer(held))

        // e2 -> e1 -> a free buffer whose stale link names the keeper's
        // buffer: the walk stops at the free one.
        let d = t.client()
        #expect(d.register("y{1", extraBufs: 2).0 == 0)
        let dring = d.txRing(0)
        let f2 = d.nifp.pointee.ni_bufs_head
        let f1 = d.buf(dring, f2).load(as: UInt32.self)
        var stale: UInt32 = 2
        while !t.region.isFreeBuffer(stale) { stale += 1 }
        d.buf(dring, stale).storeBytes(of: held, as: UInt32.self)
        d.buf(dring, f1).storeBytes(of: stale, as: UInt32.self)
        d.close()
        #expect(t.region.freeBufferCount == free0)
        #expect(!t.region.isFreeBuffer(held))
        keeper.close()
        #expect(t.engine.stats().freeBuffers == t.engine.stats().totalBuffers)
    }

    /// A pipe's two rings name the same buffers; the side that does not
    /// hold slot k has a stale descriptor there, which must not keep a
    /// buffer the other side swapped out into its extra list (§12, §4.7).
    @Test func aPipesStaleDescriptorDoesNotKeepAnExtraBuffer() {
        let m = t.client(), s = t.client()
        #expect(m.register("sw{1").0 == 0)
        let free0 = t.region.freeBufferCount
        #expect(s.register("sw}1", extraBufs: 1).0 == 0)
        let tx = m.txRing(0), rx = s.rxRing(0)
        m.slot(tx, 0).pointee.len = 60
        tx.pointee.head = 1
        tx.pointee.cur = 1
        #expect(m.txsync() == 0 && s.rxsync() == 0 && rx.pointee.tail == 1)
        // The receiver keeps the frame's buffer and puts its extra one in the slot.
        let b = s.slot(rx, 0).pointee.buf_idx, e = s.nifp.pointee.ni_bufs_head
        s.slot(rx, 0).pointee.buf_idx = e
        s.slot(rx, 0).pointee.flags = UInt16(NS_BUF_CHANGED)
        s.buf(rx, b).storeBytes(of: UInt32(0), as: UInt32.self)
        s.nifp.pointee.ni_bufs_head = b
        #expect(m.slot(tx, 0).pointee.buf_idx == b)   // the sender's stale copy
        s.close()
        #expect(t.region.freeBufferCount == free0 && t.region.isFreeBuffer(b))
        m.close()
        #expect(t.engine.stats().freeBuffers == t.engine.stats().totalBuffers)
    }
}
