import Glibc
import CNetmapABI
import NetmapCore
import Synchronization
import Testing

/// §13: copy and zero-copy monitors, on pipes, NICs and null ports, through
/// the registration and sync paths a program uses.
@Suite struct MonitorTests {
    static let monRX = UInt64(NR_MONITOR_RX), monTX = UInt64(NR_MONITOR_TX), zcopy = UInt64(NR_ZCOPY_MON)

    /// Reads every frame the monitor's RX ring 0 holds, checks it against
    /// the pipe's frame sequence and its NS_TXMON flag, and releases it.
    static func drainMonitor(_ c: TestClient, seq: inout UInt64, tx: Bool, sync: Bool = true) -> Bool {
        if sync { _ = c.rxsync() }
        let r = c.rxRing(0)
        var h = r.pointee.head
        while h != r.pointee.tail {
            let s = c.slot(r, h)
            let len = PipeTests.length(seq)
            guard Int(s.pointee.len) == len, PipeTests.check(c.buf(r, s.pointee.buf_idx), seq: seq, len: len),
                  (s.pointee.flags & UInt16(NS_TXMON) != 0) == tx else { return false }
            seq += 1
            h = next(r, h)
        }
        r.pointee.head = h
        r.pointee.cur = h
        return true
    }

    @Test(arguments: [1, 64, 512])
    func copyMonitorsOnBothEndsOfAPipeSeeEveryFrameInOrder(batch: Int) throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client(), monT = t.client(), monR = t.client(), monR2 = t.client()
        #expect(m.register("mp{1").0 == 0 && s.register("mp}1").0 == 0)
        let (e1, b1) = monT.register("mp{1", flags: Self.monTX)
        let (e2, b2) = monR.register("mp}1", flags: Self.monRX)
        let (e3, _) = monR2.register("mp}1", flags: Self.monRX)
        #expect(e1 == 0 && e2 == 0 && e3 == 0)
        #expect(b1.nr_tx_rings == 1 && b1.nr_rx_rings == 1 && b1.nr_rx_slots == 1024 && b2.nr_flags == Self.monRX)
        #expect(monT.ifName == "mp{1/t#0" && monR.ifName == "mp}1/r#0" && monR2.ifName == "mp}1/r#1")
        let total: UInt64 = 20_000
        var sent: UInt64 = 0, got: UInt64 = 0, seenT: UInt64 = 0, seenR: UInt64 = 0, seenR2: UInt64 = 0
        var g = SplitMix(state: UInt64(batch))
        while got < total {
            _ = PipeTests.sendBatch(m, seq: &sent, total: total, batch: 1 + Int(g.next() % UInt64(batch)))
            #expect(m.txsync() == 0)
            #expect(s.rxsync() == 0)
            guard PipeTests.receive(s, seq: &got) else { Issue.record("pipe frame \(got) corrupt"); return }
            #expect(s.rxsync() == 0)
            let ok = Self.drainMonitor(monT, seq: &seenT, tx: true) && Self.drainMonitor(monR, seq: &seenR, tx: false)
                && Self.drainMonitor(monR2, seq: &seenR2, tx: false)
            guard ok else { Issue.record("monitor frame corrupt at \(seenT)/\(seenR)/\(seenR2)"); return }
        }
        #expect(sent == total && seenT == total && seenR == total && seenR2 == total)
        let rings = t.engine.status().ports.flatMap { p in p.rings.map { (p.name, $0) } }
        #expect(rings.contains { $0.0 == "mp{1" && $0.1.direction == "tx" && $0.1.monitors == ["mp{1/t#0"] })
        #expect(rings.contains { $0.0 == "mp}1" && $0.1.direction == "rx" && $0.1.monitors == ["mp}1/r#0", "mp}1/r#1"] })
    }

    @Test func aFullMonitorRingDropsForTheMonitorOnly() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client(), mon = t.client()
        #expect(m.register("fp{1").0 == 0 && s.register("fp}1").0 == 0)
        #expect(mon.register("fp}1", flags: Self.monRX, slots: 64).1.nr_rx_slots == 64)
        var sent: UInt64 = 0, got: UInt64 = 0
        for _ in 0 ..< 10 {
            _ = PipeTests.sendBatch(m, seq: &sent, total: 1000, batch: 100)
            #expect(m.txsync() == 0 && s.rxsync() == 0)
            #expect(PipeTests.receive(s, seq: &got))
            #expect(s.rxsync() == 0)
        }
        #expect(got == 1000)
        // The monitor kept 63 frames (one slot stays empty), the newest of the first batch.
        #expect(mon.rxsync() == 0)
        let r = mon.rxRing(0)
        #expect(space(r) == 63)
        var seq: UInt64 = 100 - 63
        #expect(Self.drainMonitor(mon, seq: &seq, tx: false, sync: false))
        let drops = t.engine.status().ports.first { $0.name.hasPrefix("fp}1/r#") }?.rings.first { $0.direction == "rx" }?.drops
        #expect(drops == 1000 - 63)
    }

    @Test func zeroCopyMonitorGetsEveryTransmittedFrameAndThePoolStaysWhole() throws {
        let t = try TestEngine()
        let free0 = t.engine.stats().freeBuffers
        do {
            let m = t.client(), s = t.client(), z = t.client()
            #expect(m.register("zp{1").0 == 0 && s.register("zp}1").0 == 0)
            let (e, b) = z.register("zp{1", flags: Self.zcopy)
            #expect(e == 0 && b.nr_flags == Self.zcopy | Self.monTX | Self.monRX && z.ifName == "zp{1/zrt#0")
            let total: UInt64 = 20_000
            var sent: UInt64 = 0, got: UInt64 = 0, seen: UInt64 = 0
            var g = SplitMix(state: 5)
            while seen < total {
                _ = PipeTests.sendBatch(m, seq: &sent, total: total, batch: 1 + Int(g.next() % 300))
                #expect(m.txsync() == 0)
                #expect(s.rxsync() == 0)
                guard PipeTests.receive(s, seq: &got) else { Issue.record("pipe frame \(got) corrupt"); return }
                #expect(s.rxsync() == 0)
                #expect(m.txsync() == 0)   // takes back what the receiver released: to the monitor
                guard Self.drainMonitor(z, seq: &seen, tx: true) else { Issue.record("monitor frame \(seen) corrupt"); return }
                _ = z.rxsync()
            }
            #expect(got == total && seen == total)
            for c in [z, m, s] { c.close() }
        }
        #expect(t.engine.stats().freeBuffers == free0)
    }

    @Test func chainedZeroCopyMonitorsPassFramesOn() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client(), z1 = t.client(), z2 = t.client()
        #expect(m.register("cz{1").0 == 0 && s.register("cz}1").0 == 0)
        #expect(z1.register("cz{1", flags: Self.zcopy).0 == 0 && z2.register("cz{1", flags: Self.zcopy).0 == 0)
        var sent: UInt64 = 0, got: UInt64 = 0, seen1: UInt64 = 0, seen2: UInt64 = 0
        _ = PipeTests.sendBatch(m, seq: &sent, total: 100, batch: 100)
        #expect(m.txsync() == 0 && s.rxsync() == 0 && PipeTests.receive(s, seq: &got) && s.rxsync() == 0 && m.txsync() == 0)
        #expect(Self.drainMonitor(z1, seq: &seen1, tx: true))
        #expect(z1.rxsync() == 0)   // released: on to the second monitor
        #expect(Self.drainMonitor(z2, seq: &seen2, tx: true))
        #expect(got == 100 && seen1 == 100 && seen2 == 100)
        let ring = t.engine.status().ports.first { $0.name == "cz{1" }?.rings.first { $0.direction == "tx" }
        #expect(ring?.monitors == ["cz{1/zrt#0", "cz{1/zrt#1"])
    }

    @Test func monitorsOfANICSeeWhatItSendsAndReceives() throws {
        let nic = FakeNIC(name: "eth9")
        let t = try TestEngine(nics: [nic])
        let p = t.client(), mon = t.client()
        #expect(p.register("eth9").0 == 0)
        #expect(mon.register("eth9", flags: Self.monTX | Self.monRX).0 == 0 && mon.ifName == "eth9/rt#0")
        let frame = (0 ..< 60).map { UInt8($0) }
        nic.inject(frame)
        #expect(p.rxsync() == 0)
        let tr = p.txRing(0)
        let slot = p.slot(tr, tr.pointee.head)
        p.buf(tr, slot.pointee.buf_idx).copyMemory(from: [UInt8](repeating: 7, count: 80), byteCount: 80)
        slot.pointee.len = 80
        tr.pointee.head = next(tr, tr.pointee.head)
        tr.pointee.cur = tr.pointee.head
        #expect(p.txsync() == 0)
        #expect(mon.rxsync() == 0)
        let r = mon.rxRing(0)
        #expect(space(r) == 2)
        let a = mon.slot(r, r.pointee.head), b = mon.slot(r, next(r, r.pointee.head))
        #expect(a.pointee.len == 60 && a.pointee.flags & UInt16(NS_TXMON) == 0)
        #expect(memcmp(mon.buf(r, a.pointee.buf_idx), frame, 60) == 0)
        #expect(b.pointee.len == 80 && b.pointee.flags & UInt16(NS_TXMON) != 0)
    }

    @Test func aMonitorOfTheHostRingsSeesTheHostTXRing() throws {
        let nic = FakeNIC(name: "eth7")
        let t = try TestEngine(nics: [nic])
        let p = t.client(), mon = t.client()
        #expect(p.register("eth7", mode: NR_REG_NIC_SW).0 == 0)
        let (e, b) = mon.register("eth7", mode: NR_REG_SW, flags: Self.monTX)
        #expect(e == 0 && b.nr_rx_rings == 1)
        let hr = p.txRing(1)   // the host TX ring comes after the one NIC TX ring
        let slot = p.slot(hr, hr.pointee.head)
        p.buf(hr, slot.pointee.buf_idx).copyMemory(from: [UInt8](repeating: 9, count: 70), byteCount: 70)
        slot.pointee.len = 70
        hr.pointee.head = next(hr, hr.pointee.head)
        hr.pointee.cur = hr.pointee.head
        #expect(p.txsync() == 0)
        #expect(mon.rxsync() == 0)
        let r = mon.rxRing(1)      // the monitor's host RX ring
        #expect(space(r) == 1)
        let ms = mon.slot(r, r.pointee.head)
        #expect(ms.pointee.len == 70 && ms.pointee.flags & UInt16(NS_TXMON) != 0)
        #expect(mon.buf(r, ms.pointee.buf_idx).load(fromByteOffset: 69, as: UInt8.self) == 9)
    }

    @Test func monitorErrnos() throws {
        let nic = FakeNIC(name: "eth8", txRings: 2, rxRings: 2)
        let t = try TestEngine(nics: [nic])
        // Not in netmap mode: a NIC nobody registered, a pipe end nobody holds.
        #expect(t.client().register("eth8", flags: Self.monRX).0 == EINVAL)
        let m = t.client()
        #expect(m.register("ep{1").0 == 0)
        #expect(t.client().register("ep}1", flags: Self.monTX).0 == EINVAL)
        #expect(t.client().register("nosuch", flags: Self.monTX).0 == ENXIO)
        // Bad ring ids and modes, checked against the monitored port.
        let p = t.client()
        #expect(p.register("eth8").0 == 0)
        #expect(t.client().register("eth8", mode: NR_REG_ONE_NIC, ringid: 2, flags: Self.monRX).0 == EINVAL)
        #expect(t.client().register("ep{1", mode: NR_REG_ONE_NIC, ringid: 1, flags: Self.monRX).0 == EINVAL)
        #expect(t.client().register("ep{1", mode: NR_REG_SW, flags: Self.monRX).0 == EINVAL)
        #expect(t.client().register("eth8", mode: 99, flags: Self.monRX).0 == EINVAL)
        // Slots: up to 4096 asked for, but a ring must fit the region's ring
        // objects (2288 slots here): ENOMEM, a documented difference.
        #expect(t.client().register("eth8", flags: Self.monRX, slots: 5000).0 == ENOMEM)
        let big = t.client()
        #expect(big.register("eth8", flags: Self.monRX, slots: 2000).1.nr_rx_slots == 2000)
        big.close()
        // One ring of a two-ring NIC: the monitor has 2 RX rings, binds ring 1.
        let one = t.client()
        let (e, b) = one.register("eth8", mode: NR_REG_ONE_NIC, ringid: 1, flags: Self.monRX)
        #expect(e == 0 && b.nr_rx_rings == 2 && b.nr_tx_rings == 1)
        // Legacy NIOCREGIF carries the monitor flags in nr_flags' upper bits.
        let legacy = t.client()
        #expect(legacy.registerLegacy("eth8", flags: UInt32(NR_REG_ALL_NIC) | UInt32(NR_MONITOR_TX)).0 == 0)
        #expect(legacy.ifName == "eth8/t#3")
        // A monitor cannot transmit: txsync fails (poll reports POLLERR), the ioctl returns 0.
        let tr = legacy.txRing(0)
        tr.pointee.head = next(tr, tr.pointee.head)
        tr.pointee.cur = tr.pointee.head
        #expect(legacy.poll(Int16(POLLOUT)) & Int16(POLLERR) != 0)
        #expect(legacy.txsync() == 0)
        // The monitored port leaves netmap mode: the monitor is orphaned.
        p.close()
        #expect(one.poll(Int16(POLLIN)) & Int16(POLLERR) != 0)
        #expect(t.client().register("eth8", flags: Self.monRX).0 == EINVAL)
    }

    @Test func monitorsComeAndGoWithoutTouchingTheMonitoredRing() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("ag{1").0 == 0 && s.register("ag}1").0 == 0)
        var sent: UInt64 = 0, got: UInt64 = 0
        for round in 0 ..< 20 {
            let mon = t.client()
            #expect(mon.register(round % 2 == 0 ? "ag{1" : "ag}1", flags: round % 2 == 0 ? Self.monTX : Self.monRX).0 == 0)
            _ = PipeTests.sendBatch(m, seq: &sent, total: 100_000, batch: 200)
            #expect(m.txsync() == 0 && s.rxsync() == 0)
            #expect(PipeTests.receive(s, seq: &got))
            #expect(s.rxsync() == 0)
            mon.close()
        }
        #expect(got == sent && sent == 4000)
    }
}

extension MonitorTests {
    /// Threads (ThreadSanitizer's test: scripts/test-tsan.sh --filter MonitorTests):
    /// a sender and a receiver polling a pipe, a /t copy monitor and a /z
    /// monitor reading on their own threads, and monitors coming and going
    /// on another. The pipe carries everything; the monitors see frames in
    /// order and byte-exact (they may drop when behind); the pool is whole.
    @Test func monitorsOnOtherThreadsWhileThePipeRuns() throws {
        let t = try TestEngine()
        let free0 = t.engine.stats().freeBuffers
        let total: UInt64 = 30_000
        final class Box: @unchecked Sendable {
            var ok = true, got: UInt64 = 0, seen = [UInt64](repeating: 0, count: 2), churned = 0
            let why = Lock.Protected<[String]>([])
        }
        let box = Box()
        let done = Atomic<Bool>(false)
        do {
            let m = t.client(), s = t.client(), monT = t.client(), monZ = t.client()
            #expect(m.register("tp{1").0 == 0 && s.register("tp}1").0 == 0)
            #expect(monT.register("tp{1", flags: Self.monTX).0 == 0 && monZ.register("tp}1", flags: Self.zcopy).0 == 0)
            let receiver = Thread {
                var got: UInt64 = 0
                while got < total {
                    guard s.poll(Int16(POLLIN), timeoutMs: 10_000) & Int16(POLLIN) != 0, PipeTests.receive(s, seq: &got) else {
                        box.ok = false
                        box.why.withLock { $0.append("receiver at \(got)") }
                        break
                    }
                }
                _ = s.rxsync()
                box.got = got
            }
            func watcher(_ c: TestClient, _ i: Int) -> Thread {
                Thread {
                    // Frames in order (gaps allowed: a monitor behind drops), byte-exact.
                    var expected: UInt64 = 0, n: UInt64 = 0
                    while !done.load(ordering: .acquiring) {
                        _ = c.poll(Int16(POLLIN), timeoutMs: 20)
                        let r = c.rxRing(0)
                        var h = r.pointee.head
                        while h != r.pointee.tail {
                            let sl = c.slot(r, h)
                            let len = Int(sl.pointee.len), b = c.buf(r, sl.pointee.buf_idx)
                            guard let q = (expected ..< total).first(where: {   // a monitor behind skips any number
                                PipeTests.length($0) == len && PipeTests.check(b, seq: $0, len: len)
                            }) else {
                                box.ok = false
                                box.why.withLock { $0.append("monitor \(i) at \(expected): len \(len) flags \(sl.pointee.flags)") }
                                return
                            }
                            expected = q + 1
                            n += 1
                            h = next(r, h)
                        }
                        r.pointee.head = h
                        r.pointee.cur = h
                    }
                    box.seen[i] = n
                }
            }
            let wt = watcher(monT, 0), wz = watcher(monZ, 1)
            let churn = Thread {
                var k = 0
                while !done.load(ordering: .acquiring) {
                    let c = t.client()
                    let flags = [Self.monTX, Self.monRX, Self.zcopy, Self.monTX | Self.monRX][k % 4]
                    if c.register(k % 2 == 0 ? "tp{1" : "tp}1", flags: flags).0 == 0 {
                        _ = c.poll(Int16(POLLIN), timeoutMs: 1)
                        box.churned += 1
                    }
                    c.close()
                    k += 1
                }
            }
            var sent: UInt64 = 0
            var g = SplitMix(state: 3)
            while sent < total {
                guard m.poll(Int16(POLLOUT), timeoutMs: 10_000) & Int16(POLLOUT) != 0 else {
                    box.ok = false
                    box.why.withLock { $0.append("sender at \(sent)") }
                    break
                }
                _ = PipeTests.sendBatch(m, seq: &sent, total: total, batch: 1 + Int(g.next() % 512))
            }
            _ = m.poll(0)
            receiver.join()
            done.store(true, ordering: .releasing)
            for th in [wt, wz, churn] { th.join() }
            for c in [monT, monZ, m, s] { c.close() }
        }
        #expect(box.ok && box.got == total, "\(box.why.withLock { $0 })")
        #expect(box.seen[0] > 0 && box.seen[1] > 0 && box.churned > 0)
        #expect(t.engine.stats().freeBuffers == free0)
    }
}

extension TestClient {
    /// ni_name of this client's netmap_if.
    var ifName: String {
        guard let base else { return "" }
        let p = (base + Int(offset)).assumingMemoryBound(to: netmap_if.self)
        return nameString(p.pointee.ni_name)
    }
}
