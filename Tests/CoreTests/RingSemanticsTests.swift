import Glibc
import CNetmapABI
import NetmapCore
import Testing

/// §5.3-§5.8 through the real request path: prologue checks, what a
/// violation does on the sync ioctls and on poll, slot repair, finalisation.
@Suite struct RingSemanticsTests {
    let t: TestEngine
    let tx: TestClient   // pipe master: its TX ring is only reclaimed when the slave consumes
    let rx: TestClient

    init() throws {
        t = try TestEngine()
        tx = t.client()
        rx = t.client()
        #expect(tx.register("p{0", slots: 64).0 == 0)
        #expect(rx.register("p}0").0 == 0)
    }

    func send(_ n: UInt32) {
        let r = tx.txRing(0)
        var h = r.pointee.head
        for _ in 0 ..< n {
            tx.slot(r, h).pointee.len = 60
            h = next(r, h)
        }
        r.pointee.head = h
        r.pointee.cur = h
    }

    @Test func txsyncRejectsHeadBehindItsLastPosition() {
        send(3)
        #expect(tx.txsync() == 0)
        let r = tx.txRing(0)
        #expect((r.pointee.head, r.pointee.tail) == (3, 63))
        r.pointee.head = 1            // moved backwards: outside [rhead=3 … rtail=63]
        r.pointee.cur = 1
        #expect(tx.txsync() == 0)     // a violation is never an error on the ioctl
        // Indices in range but inconsistent are left as the user wrote them.
        #expect((r.pointee.head, r.pointee.cur, r.pointee.tail) == (1, 1, 63))
        #expect(rx.rxsync() == 0)
        #expect(rx.rxRing(0).pointee.tail == 3)   // nothing more was sent
    }

    @Test func outOfRangeIndicesAreResetToTheKernelState() {
        send(5)
        #expect(tx.txsync() == 0)
        let r = tx.txRing(0)
        r.pointee.head = 64           // == num_slots
        r.pointee.tail = 7
        #expect(tx.txsync() == 0)
        #expect((r.pointee.head, r.pointee.cur, r.pointee.tail) == (5, 5, 63))
        // And the ring works again afterwards.
        send(2)
        #expect(tx.txsync() == 0 && rx.rxsync() == 0)
        #expect(rx.rxRing(0).pointee.tail == 7)
    }

    @Test func curOutsideHeadToTailIsAViolation() {
        let r = tx.txRing(0)
        send(4)
        r.pointee.cur = 2             // behind head
        #expect(tx.txsync() == 0)
        #expect(rx.rxsync() == 0 && rx.rxRing(0).pointee.tail == 0)   // not sent
    }

    @Test func userWrittenTailIsRestoredOnAValidSync() {
        let r = tx.txRing(0)
        r.pointee.tail = 10
        send(1)
        #expect(tx.txsync() == 0)
        #expect(r.pointee.tail == 63)
        #expect(rx.rxsync() == 0 && rx.rxRing(0).pointee.tail == 1)
    }

    @Test func pollReportsPOLLERROnAViolation() {
        let r = tx.txRing(0)
        send(2)
        r.pointee.cur = 63
        r.pointee.head = 70
        #expect(tx.poll(Int16(POLLOUT)) & Int16(POLLERR) != 0)
        #expect((r.pointee.head, r.pointee.cur) == (0, 0))   // reset (70 > 63)
        // RX: a violation still runs rxsync, and POLLERR comes with POLLIN.
        send(3)
        #expect(tx.txsync() == 0)
        let q = rx.rxRing(0)
        q.pointee.head = 9            // beyond hwtail (0)
        let ev = rx.poll(Int16(POLLIN))
        #expect(ev & Int16(POLLERR) != 0)
        #expect(q.pointee.tail == 3)  // the packets were still imported
    }

    @Test func rxsyncStillImportsAfterAViolation() {
        send(6)
        #expect(tx.txsync() == 0)
        let q = rx.rxRing(0)
        q.pointee.cur = 30            // beyond hwtail
        #expect(rx.rxsync() == 0)
        #expect(q.pointee.tail == 6)
    }

    @Test func reinitRepairsHostileSlots() {
        let r = tx.txRing(0)
        let bad: [(UInt32, UInt16)] = [(0, 60), (1, 60), (UInt32(t.region.bufferCount), 60), (UInt32.max, 1), (5, 65535)]
        for (i, (b, l)) in bad.enumerated() {
            tx.slot(r, UInt32(i)).pointee.buf_idx = b
            tx.slot(r, UInt32(i)).pointee.len = l
        }
        let good = tx.slot(r, 9).pointee
        r.pointee.head = 99           // forces a re-initialisation
        #expect(tx.txsync() == 0)
        for i in 0 ..< 4 { #expect(tx.slot(r, UInt32(i)).pointee.buf_idx == 0 && tx.slot(r, UInt32(i)).pointee.len == 0) }
        #expect(tx.slot(r, 4).pointee.buf_idx == 5 && tx.slot(r, 4).pointee.len == 0)
        #expect(tx.slot(r, 9).pointee.buf_idx == good.buf_idx && tx.slot(r, 9).pointee.len == good.len)
    }

    @Test func hostileSlotsThroughAPipeNeverEscapeThePool() throws {
        let keeper = t.client()
        #expect(keeper.register("keep{1").0 == 0)
        let start = t.region.freeBufferCount
        let a = t.client(), b = t.client()
        #expect(a.register("h{1").0 == 0 && b.register("h}1").0 == 0)
        let r = a.txRing(0)
        let bad: [UInt32] = [0, 1, UInt32(t.region.bufferCount) + 5, UInt32.max]
        for (i, v) in bad.enumerated() {
            a.slot(r, UInt32(i)).pointee.buf_idx = v
            a.slot(r, UInt32(i)).pointee.len = 65535
        }
        r.pointee.head = 4
        r.pointee.cur = 4
        #expect(a.txsync() == 0)
        #expect(b.rxsync() == 0)
        let q = b.rxRing(0)
        #expect(q.pointee.tail == 4)
        // The receiver sees exactly what the sender wrote (pipes move descriptors).
        for (i, v) in bad.enumerated() { #expect(b.slot(q, UInt32(i)).pointee.buf_idx == v) }
        q.pointee.head = 4
        q.pointee.cur = 4
        #expect(b.rxsync() == 0)
        a.close()
        b.close()
        // The four real buffers those slots held are lost to their owner, as
        // in netmap; everything else comes back, and the idle reset reclaims
        // the rest once the region is unused.
        #expect(t.region.freeBufferCount == start - 4)
        keeper.close()
        tx.close()
        rx.close()
        #expect(t.region.freeBufferCount == t.region.usableBufferCount)
    }

    @Test func rxRingsCarryTheSyncTime() {
        var before = timeval()
        gettimeofday(&before, nil)
        #expect(rx.rxsync() == 0)
        let ts = rx.rxRing(0).pointee.ts
        #expect(ts.tv_sec >= before.tv_sec && ts.tv_sec <= before.tv_sec + 5)
        #expect(tx.txRing(0).pointee.ts.tv_sec == 0)
    }

    @Test func syncOnAStoppedRingIsEIO() throws {
        let nic = FakeNIC(name: "gone")
        let t2 = try TestEngine(nics: [nic])
        let c = t2.client(), other = t2.client()
        #expect(c.register("gone").0 == 0)
        #expect(other.register("x{1").0 == 0)
        t2.engine.registry.interfaceVanished("gone")
        #expect(c.txsync() == EIO && c.rxsync() == EIO)
        #expect(c.poll(Int16(POLLIN | POLLOUT)) & Int16(POLLERR) != 0)
        #expect(other.txsync() == 0)   // other ports are untouched
    }
}
