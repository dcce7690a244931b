import Glibc
import CNetmapABI
import NetmapCore
import Testing

@Suite struct RegistrationTests {
    /// §4.10: a 1-queue NIC of 1024 slots on the default global allocator,
    /// first and only file, ALL_NIC, laid out as the real kernel lays it out.
    @Test func workedExampleLayout() throws {
        let t = try TestEngine(geometry: try PoolGeometry(.netmapDefault), nics: [FakeNIC(name: "eth0")])
        let c = t.client()
        let (e, body) = c.register("eth0")
        #expect(e == 0)
        #expect(body.nr_offset == 0 && body.nr_memsize == 343_019_520 && body.nr_mem_id == 1)
        #expect(body.nr_tx_rings == 1 && body.nr_rx_rings == 1 && body.nr_tx_slots == 1024 && body.nr_rx_slots == 1024)
        #expect(body.nr_host_tx_rings == 1 && body.nr_host_rx_rings == 1)
        #expect(c.ringOfs(0) == 0x22000 && c.ringOfs(1) == 0 && c.ringOfs(2) == 0x19000 && c.ringOfs(3) == 0)
        let tx = c.txRing(0), rx = c.rxRing(0)
        #expect(rx.pointee.buf_ofs == 0x708000 && tx.pointee.buf_ofs == 0x6ff000)
        #expect(c.slot(rx, 0).pointee.buf_idx == 2 && c.slot(rx, 1023).pointee.buf_idx == 1025)
        #expect(c.slot(tx, 0).pointee.buf_idx == 1026 && c.slot(tx, 1023).pointee.buf_idx == 2049)
        #expect(c.slot(tx, 5).pointee.len == 2048 && c.slot(tx, 5).pointee.flags == 0)
        #expect((tx.pointee.head, tx.pointee.cur, tx.pointee.tail) == (0, 0, 1023))
        #expect((rx.pointee.head, rx.pointee.cur, rx.pointee.tail) == (0, 0, 0))
        #expect(tx.pointee.dir == 1 && rx.pointee.dir == 0 && tx.pointee.ringid == 0)
        #expect(tx.pointee.num_slots == 1024 && tx.pointee.nr_buf_size == 2048)
        let n = c.nifp.pointee
        #expect(nameString(n.ni_name) == "eth0" && n.ni_tx_rings == 1 && n.ni_rx_rings == 1)
        #expect(n.ni_host_tx_rings == 1 && n.ni_host_rx_rings == 1 && n.ni_flags == 0 && n.ni_bufs_head == 0)
    }

    /// Offsets are valid in any mapping: a second file on another port reaches
    /// its rings through the first file's mapping, and nothing overlaps.
    @Test func objectsAreReachableFromOffsetsAndNeverOverlap() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "a", txRings: 2, rxRings: 2), FakeNIC(name: "b")])
        let c1 = t.client(), c2 = t.client()
        #expect(c1.register("a").0 == 0)
        #expect(c2.register("b", map: false).0 == 0)
        c2.base = c1.base   // libnetmap reuses the mapping of the same mem_id
        var spans = [(Int, Int, String)]()
        let base = c1.base!
        for (c, nt, nr) in [(c1, 2, 2), (c2, 1, 1)] {
            spans.append((Int(c.offset), 1024, "if"))
            for i in 0 ..< nt {
                let r = c.txRing(i)
                spans.append((UnsafeMutableRawPointer(r) - base, 256 + 16 * Int(r.pointee.num_slots), "tx"))
            }
            for i in 0 ..< nr {
                let r = c.rxRing(i)
                spans.append((UnsafeMutableRawPointer(r) - base, 256 + 16 * Int(r.pointee.num_slots), "rx"))
            }
        }
        spans.sort { $0.0 < $1.0 }
        for (a, b) in zip(spans, spans.dropFirst()) { #expect(a.0 + a.1 <= b.0, "\(a) overlaps \(b)") }
        // Every buffer a slot names is distinct and inside the buffer pool.
        var seen = Set<UInt32>()
        for (c, nt, nr) in [(c1, 2, 2), (c2, 1, 1)] {
            for r in (0 ..< nt).map(c.txRing) + (0 ..< nr).map(c.rxRing) {
                for i in 0 ..< r.pointee.num_slots {
                    let b = c.slot(r, i).pointee.buf_idx
                    #expect(seen.insert(b).inserted)
                    let addr = c.buf(r, b)
                    #expect(addr - base == t.region.geometry.bufPool.offset + Int(b) * 2048)
                    #expect(addr - base + 2048 <= t.region.size)
                }
            }
        }
    }

    @Test func bindingModesSelectRingsAndZeroTheRest() throws {
        let nic = FakeNIC(name: "q4", txRings: 4, rxRings: 4, slots: 256)
        let t = try TestEngine(nics: [nic])
        // T = 4 NIC + 1 host TX entries, then 5 RX entries.
        func bound(_ c: TestClient) -> [Bool] { (0 ..< 10).map { c.ringOfs($0) != 0 } }
        let cases: [(Int32, UInt16, UInt64, [Bool])] = [
            (NR_REG_ALL_NIC, 0, 0, [true, true, true, true, false, true, true, true, true, false]),
            (NR_REG_SW, 0, 0, [false, false, false, false, true, false, false, false, false, true]),
            (NR_REG_NIC_SW, 0, 0, [true, true, true, true, true, true, true, true, true, true]),
            (NR_REG_ONE_NIC, 2, 0, [false, false, true, false, false, false, false, true, false, false]),
            (NR_REG_ONE_SW, 0, 0, [false, false, false, false, true, false, false, false, false, true]),
            (NR_REG_ALL_NIC, 0, UInt64(NR_TX_RINGS_ONLY), [true, true, true, true, false, false, false, false, false, false]),
            (NR_REG_ONE_NIC, 1, UInt64(NR_RX_RINGS_ONLY), [false, false, false, false, false, false, true, false, false, false]),
        ]
        for (mode, ring, flags, want) in cases {
            let c = t.client()
            #expect(c.register("q4", mode: mode, ringid: ring, flags: flags).0 == 0, "mode \(mode)")
            #expect(bound(c) == want, "mode \(mode) ring \(ring) flags \(flags)")
            c.close()
        }
    }

    @Test func bindingErrors() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "e0", txRings: 2, rxRings: 1), FakeNIC(name: "nohost", hostRings: 0)])
        let c = t.client()
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 2).0 == EINVAL)   // >= max(2, 1)
        #expect(c.register("e0", mode: NR_REG_ONE_SW, ringid: 1).0 == EINVAL)    // >= max(1, 1)
        #expect(c.register("nohost", mode: NR_REG_SW).0 == EINVAL)
        #expect(c.register("nohost", mode: NR_REG_NIC_SW).0 == EINVAL)
        for m in [NR_REG_DEFAULT, NR_REG_PIPE_MASTER, NR_REG_PIPE_SLAVE, 9, 100] {
            #expect(c.register("e0", mode: m).0 == EINVAL, "mode \(m)")
        }
        #expect(c.register("e0", mode: NR_REG_NULL).0 == EINVAL)   // null needs a mem id
        #expect(c.register("nosuch").0 == ENXIO)
        #expect(c.register("vale0").0 == ENOMEM)   // a VALE name without ':' (ValeTests has the rest)
        #expect(c.register("e0", memId: 7).0 == EINVAL)
        #expect(c.register("e0", flags: UInt64(NR_MONITOR_RX)).0 == EINVAL)   // a monitor of a port not in netmap mode (§13)
        // ONE_NIC beyond the RX count binds RX ring 0 (§7).
        #expect(c.register("e0", mode: NR_REG_ONE_NIC, ringid: 1).0 == 0)
        #expect(c.ringOfs(1) != 0 && c.ringOfs(0) == 0 && c.ringOfs(3) != 0)
        // One registration per file.
        #expect(c.register("e0").0 == EBUSY)
        #expect(c.registerLegacy("e0").0 == EBUSY)
        #expect(t.engine.registry.portNames == ["e0"])
    }

    @Test func mtuLargerThanBufferIsRefusedOnlyWhenBindingRX() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "jumbo", mtu: 9000)])
        let c = t.client()
        #expect(c.register("jumbo").0 == EINVAL)
        #expect(c.register("jumbo", flags: UInt64(NR_TX_RINGS_ONLY)).0 == 0)
    }

    @Test func exclusiveUse() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "x", txRings: 2, rxRings: 2)])
        let a = t.client(), b = t.client(), c = t.client()
        #expect(a.register("x", mode: NR_REG_ONE_NIC, ringid: 0, flags: UInt64(NR_EXCLUSIVE)).0 == 0)
        #expect(b.register("x").0 == EBUSY)                                   // touches ring 0
        #expect(b.register("x", mode: NR_REG_ONE_NIC, ringid: 1).0 == 0)       // ring 1 is free
        #expect(c.register("x", mode: NR_REG_ONE_NIC, ringid: 1, flags: UInt64(NR_EXCLUSIVE)).0 == EBUSY)
        a.close()
        #expect(c.register("x", mode: NR_REG_ONE_NIC, ringid: 0).0 == 0)
    }

    @Test func sharedRingsKeepStateUntilLastUserThenStartFresh() throws {
        let nic = FakeNIC(name: "s")
        let t = try TestEngine(nics: [nic])
        let a = t.client(), b = t.client()
        #expect(a.register("s").0 == 0 && b.register("s").0 == 0)
        let r = a.txRing(0)
        #expect(a.offset != b.offset && a.ringOfs(0) + Int64(a.offset) == b.ringOfs(0) + Int64(b.offset))
        r.pointee.head = 3
        r.pointee.cur = 3
        #expect(a.txsync() == 0)
        #expect(nic.sent.withLock { $0.count } == 3)
        #expect(b.txRing(0).pointee.tail == 2)
        a.close()
        #expect(nic.modeChanges.withLock { $0.count } == 1)   // still in netmap mode for b
        b.close()
        #expect(nic.modeChanges.withLock { $0.last!.0 } == false)
        #expect(t.engine.registry.portNames.isEmpty)
        let c = t.client()
        #expect(c.register("s").0 == 0)
        #expect((c.txRing(0).pointee.head, c.txRing(0).pointee.tail) == (0, 1023))
    }

    @Test func legacyRegistrationConvertsModes() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "l", txRings: 2, rxRings: 2)])
        // Old API versions are refused; the struct still comes back.
        let c0 = t.client()
        let (e0, r0) = c0.registerLegacy("l", version: 11)
        #expect(e0 == EINVAL && nameString(r0.nr_name) == "l" && r0.nr_version == 11)
        // Higher versions are accepted (no upper bound on the legacy path).
        let c1 = t.client()
        let (e1, r1) = c1.registerLegacy("l", flags: 0, ringid: UInt16(NETMAP_HW_RING) | 1, version: 16, extraBufs: 4)
        #expect(e1 == 0 && r1.nr_version == 16 && r1.nr_arg3 == 4 && r1.nr_arg2 == 1)
        #expect(r1.nr_tx_rings == 2 && r1.nr_rx_slots == 1024 && UInt64(r1.nr_memsize) == UInt64(t.region.size) & 0xffff_ffff)
        #expect(c1.ringOfs(1) != 0 && c1.ringOfs(0) == 0)                     // ONE_NIC ring 1
        let c2 = t.client()
        #expect(c2.registerLegacy("l", flags: 0, ringid: UInt16(NETMAP_SW_RING)).0 == 0)
        #expect(c2.ringOfs(2) != 0 && c2.ringOfs(0) == 0)                     // host ring
        let c3 = t.client()
        #expect(c3.registerLegacy("l", flags: UInt32(NR_REG_PIPE_MASTER), ringid: 7).0 == 0)
        #expect(nameString(c3.nifp.pointee.ni_name) == "l{7")
        let c4 = t.client()
        #expect(c4.registerLegacy("l", flags: UInt32(NR_REG_PIPE_SLAVE), ringid: 7).0 == 0)
        #expect(nameString(c4.nifp.pointee.ni_name) == "l}7")
        // Unknown commands, and the pass-through host commands.
        #expect(t.client().registerLegacy("l", cmd: UInt16(NETMAP_BDG_REGOPS)).0 == EINVAL)
        #expect(t.client().registerLegacy("l", cmd: UInt16(NETMAP_BDG_ATTACH)).0 == EINVAL)
        #expect(t.client().registerLegacy("l", cmd: UInt16(NETMAP_PT_HOST_CREATE)).0 == ENOMEM)
        // A pipe name that no longer fits in 64 bytes.
        let long = String(repeating: "p", count: 15)
        #expect(t.client().registerLegacy(long, flags: UInt32(NR_REG_PIPE_MASTER), ringid: 4095).0 == 0)
    }

    @Test func extraBuffersAreChainedNewestFirstAndReturnedOnRelease() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "x")])
        let keeper = t.client()   // keeps the region busy, so no idle reset hides a leak
        #expect(keeper.register("x").0 == 0)
        let start = t.region.freeBufferCount
        let c = t.client()
        let (e, body) = c.register("x", flags: UInt64(NR_TX_RINGS_ONLY), extraBufs: 5)
        #expect(e == 0 && body.nr_extra_bufs == 5)
        var chain = [UInt32]()
        var i = c.nifp.pointee.ni_bufs_head
        while i != 0 {
            chain.append(i)
            i = c.buf(c.txRing(0), i).load(as: UInt32.self)
        }
        #expect(chain.count == 5 && chain == chain.sorted(by: >))
        #expect(t.region.freeBufferCount == start - 5)
        c.close()
        #expect(t.region.freeBufferCount == start)
        // A request larger than the pool gets what there is.
        let big = t.client()
        let (e2, b2) = big.register("x", flags: UInt64(NR_TX_RINGS_ONLY), extraBufs: 100_000)
        #expect(e2 == 0 && Int(b2.nr_extra_bufs) == start)
        big.close()
        #expect(t.region.freeBufferCount == start)
    }

    @Test func thousandRegisterReleaseCyclesLoseNothing() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "x", txRings: 2, rxRings: 2)])
        let keeper = t.client()
        #expect(keeper.register("x", mode: NR_REG_ONE_NIC, ringid: 1).0 == 0)
        let bufs = t.region.freeBufferCount, rings = t.region.freeRingCount, ifs = t.region.freeIfCount
        for i in 0 ..< 1000 {
            let c = t.client()
            let name = i % 3 == 0 ? "x" : "x{\(i % 5)"
            let (e, _) = c.register(name, mode: NR_REG_ALL_NIC, extraBufs: UInt32(i % 7), map: false)
            #expect(e == 0)
            c.close()
        }
        #expect(t.region.freeBufferCount == bufs)
        #expect(t.region.freeRingCount == rings)
        #expect(t.region.freeIfCount == ifs)
        #expect(t.engine.registry.portNames == ["x"])
    }

    @Test func mmapOnlyAfterRegistrationAndWithinTheRegion() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "x")])
        let c = t.client()
        #expect(c.file.mmapCheck(length: 4096) == EINVAL)
        #expect(c.register("x", map: false).0 == 0)
        #expect(c.file.mmapCheck(length: UInt64(t.region.size)) == 0)
        #expect(c.file.file.mmapCheck(offset: 4096, length: UInt64(t.region.size)) == EINVAL)
        #expect(c.file.file.mmapCheck(offset: UInt64.max, length: 2) == EINVAL)
    }
}

@Suite struct StatusTests {
    /// Counters equal what the test sent and received, per ring.
    @Test func countersAreExact() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "c0")])
        let m = t.client(), s = t.client(), n = t.client()
        #expect(m.register("st{1").0 == 0 && s.register("st}1").0 == 0 && n.register("c0").0 == 0)
        var seq: UInt64 = 0, got: UInt64 = 0
        var bytes: UInt64 = 0
        for _ in 0 ..< 30 {
            let before = seq
            _ = PipeTests.sendBatch(m, seq: &seq, total: 1000, batch: 50)
            for q in before ..< seq { bytes += UInt64(PipeTests.length(q)) }
            #expect(m.txsync() == 0 && s.rxsync() == 0)
            #expect(PipeTests.receive(s, seq: &got))
            #expect(s.rxsync() == 0)
        }
        let st = t.engine.status()
        let master = st.ports.first { $0.name == "st{1" }!
        let slave = st.ports.first { $0.name == "st}1" }!
        #expect(master.backend == "pipe" && master.files == 1)
        #expect(master.rings.first { $0.direction == "tx" }!.packets == 1000)
        #expect(master.rings.first { $0.direction == "tx" }!.bytes == bytes)
        #expect(slave.rings.first { $0.direction == "rx" }!.packets == 1000)
        #expect(slave.rings.first { $0.direction == "rx" }!.bytes == bytes)
        #expect(slave.rings.first { $0.direction == "tx" }!.packets == 0)
        #expect(st.clients.count == 3 && st.clients.allSatisfy { $0.pid == getpid() })
        #expect(st.clients.contains { $0.port == "c0" && $0.txRings == [0] && $0.rxRings == [0] })
        #expect(st.pool.sessions == 3)
        n.close()
        #expect(t.engine.status().clients.count == 2)
    }
}
