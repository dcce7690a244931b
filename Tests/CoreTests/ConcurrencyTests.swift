import Glibc
import CNetmapABI
import DeviceInterface
import NetmapCore
import Synchronization
import Testing

/// Threads against one engine, for ThreadSanitizer (scripts/test-tsan.sh)
/// as much as for the results: concurrent syncs on different rings, pollers
/// sleeping while other threads send, a file released while its peer keeps
/// syncing, registrations churning the shared pools during traffic.
/// Frame counts are modest so the suite stays quick under TSan.
@Suite(.serialized) struct ConcurrencyTests {
    /// Frame `seq` of link `link`, sent through TX ring `ring` of `c`.
    static func send(_ c: TestClient, ring: Int, link: UInt64, seq: inout UInt64, total: UInt64, batch: Int) -> Int {
        let r = c.txRing(ring)
        var h = r.pointee.head
        var n = 0
        while n < batch, seq < total, h != r.pointee.tail {
            let s = c.slot(r, h)
            let id = link << 32 | seq
            let len = PipeTests.length(id)
            PipeTests.fill(c.buf(r, s.pointee.buf_idx), seq: id, len: len)
            s.pointee.len = UInt16(len)
            s.pointee.flags = 0
            seq += 1
            n += 1
            h = next(r, h)
        }
        r.pointee.head = h
        r.pointee.cur = h
        return n
    }

    /// Receives what RX ring `ring` of `c` holds; false on a wrong frame.
    static func receive(_ c: TestClient, ring: Int, link: UInt64, seq: inout UInt64) -> Bool {
        let r = c.rxRing(ring)
        var h = r.pointee.head
        while h != r.pointee.tail {
            let s = c.slot(r, h)
            let id = link << 32 | seq
            let len = PipeTests.length(id)
            guard Int(s.pointee.len) == len, PipeTests.check(c.buf(r, s.pointee.buf_idx), seq: id, len: len) else {
                return false
            }
            seq += 1
            h = next(r, h)
        }
        r.pointee.head = h
        r.pointee.cur = h
        return true
    }

    final class Results: @unchecked Sendable {
        private let m = Lock.Protected<[String]>([])
        func fail(_ s: String) { m.withLock { $0.append(s) } }
        var failures: [String] { m.withLock { $0 } }
    }

    /// A sender loop on one TX ring: fill, then txsync, or poll for room.
    static func sender(_ c: TestClient, ring: Int, link: UInt64, total: UInt64, usePoll: Bool,
                       results: Results) -> Thread {
        Thread {
            var seq: UInt64 = 0
            var g = SplitMix(state: link &+ 7)
            while seq < total {
                _ = send(c, ring: ring, link: link, seq: &seq, total: total, batch: 1 + Int(g.next() % 40))
                if usePoll {
                    if c.poll(Int16(POLLOUT), timeoutMs: 10_000) & Int16(POLLOUT) == 0 {
                        results.fail("link \(link): sender timed out in poll at frame \(seq)")
                        return
                    }
                } else {
                    guard c.txsync() == 0 else { results.fail("link \(link): txsync failed"); return }
                    if space(c.txRing(ring)) == 0 { usleep(50) }
                }
            }
            // Push the rest and wait until the receiver has taken and
            // released everything (tail one behind head).
            if !drain(c, ring: ring) { results.fail("link \(link): sender's ring never drained") }
        }
    }

    /// Syncs TX ring `ring` of `c` until everything sent was reclaimed, or 20 s.
    static func drain(_ c: TestClient, ring: Int) -> Bool {
        let r = c.txRing(ring)
        for _ in 0 ..< 20_000 {
            if r.pointee.tail == RingIndex.prev(r.pointee.head, r.pointee.num_slots) { return true }
            _ = c.txsync()
            usleep(1000)
        }
        return false
    }

    /// A receiver loop on one RX ring, sleeping in poll between batches.
    static func receiver(_ c: TestClient, ring: Int, link: UInt64, total: UInt64, results: Results) -> Thread {
        Thread {
            var seq: UInt64 = 0
            while seq < total {
                if c.poll(Int16(POLLIN), timeoutMs: 10_000) & Int16(POLLIN) == 0 {
                    results.fail("link \(link): receiver timed out at frame \(seq)")
                    return
                }
                if !receive(c, ring: ring, link: link, seq: &seq) {
                    results.fail("link \(link): frame \(seq) wrong")
                    return
                }
            }
            _ = c.rxsync()   // give the last slots back
        }
    }

    /// Every ring of a multi-ring pipe carries its own stream, each end of
    /// each ring driven by its own thread through its own file (NR_REG_ONE_NIC):
    /// syncs on different rings run truly concurrently, the two ends of a
    /// link meet only through the pipe's published indices.
    @Test func concurrentSyncsOnDifferentRings() throws {
        let t = try TestEngine()
        let rings = 3, total: UInt64 = 1500
        let owner = t.client()
        #expect(owner.register("cr{1", txRings: UInt16(rings), rxRings: UInt16(rings), slots: 64).0 == 0)
        let results = Results()
        var threads = [Thread]()
        var clients = [TestClient]()
        for i in 0 ..< rings {
            // Master TX i -> slave RX i, and slave TX i -> master RX i.
            let mtx = t.client(), srx = t.client(), stx = t.client(), mrx = t.client()
            #expect(mtx.register("cr{1", mode: NR_REG_ONE_NIC, ringid: UInt16(i), flags: UInt64(NR_TX_RINGS_ONLY)).0 == 0)
            #expect(srx.register("cr}1", mode: NR_REG_ONE_NIC, ringid: UInt16(i), flags: UInt64(NR_RX_RINGS_ONLY)).0 == 0)
            #expect(stx.register("cr}1", mode: NR_REG_ONE_NIC, ringid: UInt16(i), flags: UInt64(NR_TX_RINGS_ONLY)).0 == 0)
            #expect(mrx.register("cr{1", mode: NR_REG_ONE_NIC, ringid: UInt16(i), flags: UInt64(NR_RX_RINGS_ONLY)).0 == 0)
            clients += [mtx, srx, stx, mrx]
            threads.append(Self.receiver(srx, ring: i, link: UInt64(2 * i), total: total, results: results))
            threads.append(Self.receiver(mrx, ring: i, link: UInt64(2 * i + 1), total: total, results: results))
            threads.append(Self.sender(mtx, ring: i, link: UInt64(2 * i), total: total, usePoll: i % 2 == 0, results: results))
            threads.append(Self.sender(stx, ring: i, link: UInt64(2 * i + 1), total: total, usePoll: i % 2 == 1, results: results))
        }
        for th in threads { th.join() }
        #expect(results.failures.isEmpty, "\(results.failures)")
        for c in clients + [owner] { c.close() }
        let s = t.engine.stats()
        #expect(s.sessions == 0 && s.ports == 0 && s.freeBuffers == s.totalBuffers)
    }

    /// A receiver sleeps in poll while the sender's thread transmits with
    /// txsync and a second thread of the sender pushes the same TX ring with
    /// poll at the same time (the ring's sync lock serialises them; a busy
    /// ring is skipped, §5.9): every frame arrives, and every frame pushed by
    /// either thread wakes the receiver.
    @Test func pollerSleepsWhileOtherThreadsSend() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("ps{1", slots: 32).0 == 0 && s.register("ps}1").0 == 0)
        let total: UInt64 = 3000
        let results = Results()
        let done = Atomic<Bool>(false)
        let rx = Self.receiver(s, ring: 0, link: 9, total: total, results: results)
        let pusher = Thread {
            var i = 0
            while !done.load(ordering: .acquiring) {
                _ = m.file.poll(i % 2 == 0 ? 0 : Int16(POLLOUT), timeoutMs: 0)
                usleep(150)
                i += 1
            }
        }
        var seq: UInt64 = 0
        var g = SplitMix(state: 5)
        while seq < total && results.failures.isEmpty {
            _ = Self.send(m, ring: 0, link: 9, seq: &seq, total: total, batch: 1 + Int(g.next() % 16))
            #expect(m.txsync() == 0)
            if g.next() % 4 == 0 || space(m.txRing(0)) == 0 { usleep(UInt32(50 + g.next() % 300)) }
        }
        #expect(Self.drain(m, ring: 0))
        rx.join()
        done.store(true, ordering: .releasing)
        pusher.join()
        #expect(results.failures.isEmpty, "\(results.failures)")
    }

    /// One end of a pipe is closed, reopened and closed again while the other
    /// end keeps sending and polling from its own thread; then the sender
    /// closes while a receiver is asleep in poll. Nothing may crash, hang,
    /// leak or be counted twice.
    @Test func releaseRacesWithThePeersTraffic() throws {
        let t = try TestEngine()
        let m = t.client()
        #expect(m.register("rr{1", slots: 16).0 == 0)
        let stop = Atomic<Bool>(false)
        let sender = Thread {
            var seq: UInt64 = 0
            while !stop.load(ordering: .acquiring) {
                _ = Self.send(m, ring: 0, link: 1, seq: &seq, total: .max, batch: 8)
                _ = m.txsync()
                _ = m.poll(Int16(POLLOUT), timeoutMs: 1)
                _ = m.rxsync()
            }
        }
        for round in 0 ..< 40 {
            let s = t.client()
            #expect(s.register("rr}1").0 == 0)
            // Consume a little (frames of earlier rounds are skipped by
            // releasing whatever is there: the sequence is not checked here).
            for _ in 0 ..< round % 4 {
                _ = s.poll(Int16(POLLIN), timeoutMs: 5)
                let r = s.rxRing(0)
                r.pointee.head = r.pointee.tail
                r.pointee.cur = r.pointee.tail
                _ = s.rxsync()
            }
            s.close()
        }
        stop.store(true, ordering: .releasing)
        sender.join()

        // The sender goes away while the receiver sleeps: the receiver's
        // poll just times out (nothing arrives), and is not left dangling.
        let s = t.client()
        #expect(s.register("rr}1").0 == 0)
        let r = s.rxRing(0)
        repeat {   // release what earlier rounds left, until nothing is left
            r.pointee.head = r.pointee.tail
            r.pointee.cur = r.pointee.tail
            _ = s.rxsync()
        } while r.pointee.head != r.pointee.tail
        final class Box: @unchecked Sendable { var ev: Int16 = -1 }
        let box = Box()
        let sleeper = Thread { box.ev = s.poll(Int16(POLLIN), timeoutMs: 300) }
        usleep(50_000)
        m.close()
        sleeper.join()
        #expect(box.ev == 0)
        s.close()
        let st = t.engine.stats()
        #expect(st.sessions == 0 && st.ports == 0 && st.freeBuffers == st.totalBuffers && st.freeRings == st.totalRings)
    }

    /// A file is closed while another thread is inside txsync/rxsync/poll on
    /// that same file (a front end may run them on different workers): the
    /// ring memory goes only after the running sync is done.
    @Test func releaseRacesWithTheFilesOwnSyncs() throws {
        let nic = FakeNIC(name: "rn0", txRings: 2, rxRings: 2, slots: 64)
        let t = try TestEngine(nics: [nic])
        for round in 0 ..< 30 {
            let c = t.client()
            #expect(c.register("rn0").0 == 0)
            for i in 0 ..< 4 { nic.inject([UInt8](repeating: UInt8(i), count: 100), ring: i % 2) }
            let started = Atomic<Int>(0)
            let syncers = (0 ..< 2).map { k in
                Thread {
                    started.add(1, ordering: .releasing)
                    for _ in 0 ..< 200 {
                        switch k {
                        case 0:
                            _ = c.file.file.ioctl(command: NIOCTXSYNC, argument: 0, memory: .init())
                            _ = c.file.file.ioctl(command: NIOCRXSYNC, argument: 0, memory: .init())
                        default:
                            _ = c.file.file.poll(events: Int16(POLLIN | POLLOUT), waker: nil)
                        }
                    }
                }
            }
            while started.load(ordering: .acquiring) < 2 {}
            usleep(UInt32(round % 5) * 100)
            c.close()
            for s in syncers { s.join() }
        }
        let st = t.engine.stats()
        #expect(st.sessions == 0 && st.ports == 0 && st.freeBuffers == st.totalBuffers && st.freeRings == st.totalRings)
    }

    /// Registrations and releases on other ports from several threads (the
    /// shared pools, the registry) while a pipe carries traffic, and the
    /// status snapshot taken meanwhile, as the control socket does.
    @Test func registrationChurnDuringTraffic() throws {
        let t = try TestEngine(nics: [FakeNIC(name: "ch0", txRings: 2, rxRings: 2, slots: 128)])
        let m = t.client(), s = t.client()
        #expect(m.register("ct{1", slots: 64).0 == 0 && s.register("ct}1").0 == 0)
        let total: UInt64 = 2000
        let results = Results()
        let rx = Self.receiver(s, ring: 0, link: 3, total: total, results: results)
        let tx = Self.sender(m, ring: 0, link: 3, total: total, usePoll: true, results: results)
        let stop = Atomic<Bool>(false)
        let churners = (0 ..< 3).map { k in
            Thread {
                var i = 0
                while !stop.load(ordering: .acquiring) {
                    let c = t.client()
                    let name = k == 0 ? "ch0" : k == 1 ? "chp\(i % 3){\(i % 2)" : "chn\(i % 2)"
                    let mode = k == 2 ? NR_REG_NULL : NR_REG_ALL_NIC
                    let (e, _) = c.register(name, mode: mode, extraBufs: UInt32(i % 5), txRings: 2, rxRings: 1,
                                            slots: 32, memId: k == 2 ? 1 : 0, map: false)
                    if e != 0 && e != EBUSY { results.fail("churn \(name): errno \(e)") }
                    if e == 0 {
                        _ = c.txsync()
                        _ = c.file.file.poll(events: Int16(POLLIN), waker: nil)
                    }
                    c.close()
                    i += 1
                }
            }
        }
        let observer = Thread {
            while !stop.load(ordering: .acquiring) {
                let st = t.engine.status()
                if st.pool.freeBuffers > st.pool.totalBuffers { results.fail("status: \(st.pool)") }
                usleep(500)
            }
        }
        rx.join()
        tx.join()
        stop.store(true, ordering: .releasing)
        for c in churners { c.join() }
        observer.join()
        #expect(results.failures.isEmpty, "\(results.failures)")
        m.close()
        s.close()
        let st = t.engine.stats()
        #expect(st.sessions == 0 && st.ports == 0 && st.freeBuffers == st.totalBuffers)
    }
}
