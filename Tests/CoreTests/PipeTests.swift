import Glibc
import CNetmapABI
import NetmapCore
import Testing

/// §12: pipes carry frames byte-exact, in order, with back-pressure and
/// buffer swapping, driven by sync ioctls or by poll.
@Suite struct PipeTests {
    /// Frame `seq` of length `len`: every byte derived from both, so a
    /// receiver checks content, order and length at once.
    static func fill(_ p: UnsafeMutableRawPointer, seq: UInt64, len: Int) {
        var x = seq &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(len)
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in 0 ..< len {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            b[i] = UInt8(truncatingIfNeeded: x >> 56)
        }
    }

    static func check(_ p: UnsafeMutableRawPointer, seq: UInt64, len: Int) -> Bool {
        var x = seq &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(len)
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in 0 ..< len {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            if b[i] != UInt8(truncatingIfNeeded: x >> 56) { return false }
        }
        return true
    }

    static func length(_ seq: UInt64) -> Int {
        var g = SplitMix(state: seq)
        return 60 + Int(g.next() % 1455)
    }

    /// Sends up to `batch` frames; returns how many.
    static func sendBatch(_ c: TestClient, seq: inout UInt64, total: UInt64, batch: Int) -> Int {
        let r = c.txRing(0)
        var h = r.pointee.head
        var n = 0
        while n < batch, seq < total, h != r.pointee.tail {
            let s = c.slot(r, h)
            let len = length(seq)
            fill(c.buf(r, s.pointee.buf_idx), seq: seq, len: len)
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

    /// Receives everything readable; returns false on a bad frame.
    static func receive(_ c: TestClient, seq: inout UInt64) -> Bool {
        let r = c.rxRing(0)
        var h = r.pointee.head
        while h != r.pointee.tail {
            let s = c.slot(r, h)
            let len = length(seq)
            guard Int(s.pointee.len) == len, check(c.buf(r, s.pointee.buf_idx), seq: seq, len: len) else { return false }
            seq += 1
            h = next(r, h)
        }
        r.pointee.head = h
        r.pointee.cur = h
        return true
    }

    @Test(arguments: [1, 7, 64, 511, 512])
    func syncDrivenTransferIsByteExactAndInOrder(batch: Int) throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("pipe{\(batch)").0 == 0 && s.register("pipe}\(batch)").0 == 0)
        let total: UInt64 = batch == 512 ? 100_000 : 20_000
        var sent: UInt64 = 0, got: UInt64 = 0
        var g = SplitMix(state: UInt64(batch))
        while got < total {
            let b = 1 + Int(g.next() % UInt64(batch))
            _ = Self.sendBatch(m, seq: &sent, total: total, batch: b)
            #expect(m.txsync() == 0)
            #expect(s.rxsync() == 0)
            let ok = Self.receive(s, seq: &got)
            #expect(ok, "frame \(got) corrupt")
            if !ok { return }
            #expect(s.rxsync() == 0)   // give the slots back
        }
        #expect(sent == total && got == total)
    }

    @Test func pollDrivenTransferAcrossThreads() async throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("pp{1").0 == 0 && s.register("pp}1").0 == 0)
        let total: UInt64 = 100_000
        final class Box: @unchecked Sendable { var ok = true; var got: UInt64 = 0; var timeouts = 0 }
        let box = Box()
        let receiver = Thread {
            var got: UInt64 = 0
            while got < total {
                let ev = s.poll(Int16(POLLIN), timeoutMs: 5000)
                if ev & Int16(POLLIN) == 0 {
                    box.timeouts += 1
                    break
                }
                if !Self.receive(s, seq: &got) {
                    box.ok = false
                    break
                }
            }
            box.got = got
        }
        var sent: UInt64 = 0
        var g = SplitMix(state: 99)
        var senderTimeouts = 0
        while sent < total {
            let ev = m.poll(Int16(POLLOUT), timeoutMs: 5000)
            if ev & Int16(POLLOUT) == 0 {
                senderTimeouts += 1
                break
            }
            _ = Self.sendBatch(m, seq: &sent, total: total, batch: 1 + Int(g.next() % 512))
        }
        // Flush: poll with no events still transmits (§6).
        _ = m.poll(0)
        receiver.join()
        #expect(senderTimeouts == 0 && box.timeouts == 0)
        #expect(box.ok && box.got == total)
    }

    @Test func sleepingReceiverIsWokenBySendersSync() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("w{1").0 == 0 && s.register("w}1").0 == 0)
        #expect(s.poll(Int16(POLLIN)) == 0)
        let waker = Thread {
            usleep(200_000)
            var seq: UInt64 = 0
            _ = Self.sendBatch(m, seq: &seq, total: 1, batch: 1)
            _ = m.txsync()
        }
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        let ev = s.poll(Int16(POLLIN), timeoutMs: 5000)
        clock_gettime(CLOCK_MONOTONIC, &t1)
        waker.join()
        #expect(ev == Int16(POLLIN))
        #expect(t1.tv_sec - t0.tv_sec < 5)
    }

    @Test func backPressureUntilTheReceiverReleases() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("bp{1", slots: 8).0 == 0 && s.register("bp}1").0 == 0)
        let r = m.txRing(0)
        #expect(space(r) == 7)
        var seq: UInt64 = 0
        #expect(Self.sendBatch(m, seq: &seq, total: 100, batch: 100) == 7)
        #expect(m.txsync() == 0)
        #expect(space(r) == 0)
        #expect(m.poll(Int16(POLLOUT)) == 0)
        #expect(s.rxsync() == 0)
        #expect(space(s.rxRing(0)) == 7)
        var got: UInt64 = 0
        #expect(Self.receive(s, seq: &got))
        #expect(m.txsync() == 0 && space(r) == 0)   // not released yet
        #expect(s.rxsync() == 0)
        #expect(m.txsync() == 0 && space(r) == 7)
    }

    @Test func incompleteFragmentChainsAreHeldBack() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("f{1").0 == 0 && s.register("f}1").0 == 0)
        let r = m.txRing(0)
        for i in UInt32(0) ..< 3 {
            m.slot(r, i).pointee.len = 100
            m.slot(r, i).pointee.flags = i < 2 ? UInt16(NS_MOREFRAG) : 0
        }
        m.slot(r, 3).pointee.flags = UInt16(NS_MOREFRAG)
        r.pointee.head = 4
        r.pointee.cur = 4
        #expect(m.txsync() == 0 && s.rxsync() == 0)
        #expect(s.rxRing(0).pointee.tail == 3)   // the 4th slot's frame is not complete
        m.slot(r, 4).pointee.flags = 0
        r.pointee.head = 5
        r.pointee.cur = 5
        #expect(m.txsync() == 0 && s.rxsync() == 0)
        #expect(s.rxRing(0).pointee.tail == 5)
    }

    @Test func receiverBufferSwapsReachTheSenderFlagged() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("sw{1").0 == 0)
        #expect(s.register("sw}1", extraBufs: 2).0 == 0)
        var seq: UInt64 = 0
        #expect(Self.sendBatch(m, seq: &seq, total: 1, batch: 1) == 1)
        #expect(m.txsync() == 0 && s.rxsync() == 0)
        let q = s.rxRing(0)
        let extra = s.nifp.pointee.ni_bufs_head
        let received = s.slot(q, 0).pointee.buf_idx
        // Keep the received buffer, give the ring an extra one instead.
        let next = s.buf(q, extra).load(as: UInt32.self)
        s.buf(q, received).storeBytes(of: next, as: UInt32.self)
        s.nifp.pointee.ni_bufs_head = received
        s.slot(q, 0).pointee.buf_idx = extra
        s.slot(q, 0).pointee.flags = UInt16(NS_BUF_CHANGED)
        q.pointee.head = 1
        q.pointee.cur = 1
        #expect(s.rxsync() == 0)
        #expect(s.slot(q, 0).pointee.flags & UInt16(NS_BUF_CHANGED) == 0)
        #expect(m.txsync() == 0)
        let r = m.txRing(0)
        #expect(m.slot(r, 0).pointee.buf_idx == extra)
        #expect(m.slot(r, 0).pointee.flags & UInt16(NS_BUF_CHANGED) != 0)
        // Everything is owned exactly once, so closing loses nothing.
        let keeper = t.client()
        #expect(keeper.register("k{1").0 == 0)
        let before = t.region.freeBufferCount
        m.close()
        s.close()
        #expect(t.region.freeBufferCount == before + 2 * 1024 + 2)   // two links of 1024, two extras
    }

    @Test func pollWithNoEventsStillTransmits() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("z{1").0 == 0 && s.register("z}1").0 == 0)
        var seq: UInt64 = 0
        _ = Self.sendBatch(m, seq: &seq, total: 5, batch: 5)
        #expect(m.poll(0) == 0)
        #expect(s.rxsync() == 0 && s.rxRing(0).pointee.tail == 5)
        // …unless the file asked for NR_NO_TX_POLL.
        let a = t.client(), b = t.client()
        #expect(a.register("y{1", flags: UInt64(NR_NO_TX_POLL)).0 == 0 && b.register("y}1").0 == 0)
        seq = 0
        _ = Self.sendBatch(a, seq: &seq, total: 5, batch: 5)
        #expect(a.poll(0) == 0)
        #expect(b.rxsync() == 0 && b.rxRing(0).pointee.tail == 0)
    }

    @Test func reopenedEndpointResumesWhileThePeerLives() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("ro{1").0 == 0 && s.register("ro}1").0 == 0)
        var seq: UInt64 = 0
        _ = Self.sendBatch(m, seq: &seq, total: 3, batch: 3)
        #expect(m.txsync() == 0)
        s.close()
        let s2 = t.client()
        #expect(s2.register("ro}1").0 == 0)
        #expect(s2.rxsync() == 0 && s2.rxRing(0).pointee.tail == 3)
        var got: UInt64 = 0
        #expect(Self.receive(s2, seq: &got) && got == 3)
    }

    @Test func multiRingPipesCrossConnect() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("mr{1", txRings: 3, rxRings: 2).0 == 0)
        let (e, body) = s.register("mr}1")
        #expect(e == 0 && body.nr_tx_rings == 2 && body.nr_rx_rings == 3)
        // Master TX ring 2 feeds slave RX ring 2.
        let r = m.txRing(2)
        m.slot(r, 0).pointee.len = 77
        r.pointee.head = 1
        r.pointee.cur = 1
        #expect(m.txsync() == 0 && s.rxsync() == 0)
        #expect(s.rxRing(2).pointee.tail == 1 && s.rxRing(0).pointee.tail == 0)
        #expect(s.slot(s.rxRing(2), 0).pointee.len == 77)
        // More than 256 rings are clamped to 256 (which this small region
        // cannot give memory to: REGISTER is where memory is checked).
        #expect(t.client().register("big{1", txRings: 257).0 == ENOMEM)
        #expect(t.client().register("mr{1", mode: NR_REG_NIC_SW).0 == EINVAL)
    }
}

/// A joinable thread for tests that need real blocking.
final class Thread: @unchecked Sendable {
    private var tid = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        let me = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&tid, nil, { p in
            let t = Unmanaged<Thread>.fromOpaque(p!).takeRetainedValue()
            t.body()
            return nil
        }, me)
    }

    func join() { pthread_join(tid, nil) }
}

@Suite struct PollWakeupTests {
    /// Two threads poll one file: the one that finds POLLOUT ready at once
    /// must not take the sleeping POLLIN poller's wake-up with it.
    @Test func everySleeperOfAFileIsWoken() throws {
        let t = try TestEngine()
        let m = t.client(), s = t.client()
        #expect(m.register("tp{1").0 == 0 && s.register("tp}1").0 == 0)
        final class Box: @unchecked Sendable { var ev: Int16 = 0 }
        let box = Box()
        let sleeper = Thread { box.ev = s.poll(Int16(POLLIN), timeoutMs: 3000) }
        usleep(50_000)
        #expect(s.poll(Int16(POLLOUT), timeoutMs: 1000) == Int16(POLLOUT))
        usleep(50_000)
        var seq: UInt64 = 0
        _ = PipeTests.sendBatch(m, seq: &seq, total: 1, batch: 1)
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        #expect(m.txsync() == 0)
        sleeper.join()
        clock_gettime(CLOCK_MONOTONIC, &t1)
        #expect(box.ev == Int16(POLLIN))
        #expect(t1.tv_sec - t0.tv_sec < 2)
    }
}
