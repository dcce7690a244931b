// Kring: the daemon's private state of one ring ("kernel ring", §5.2), kept
// apart from the user-visible netmap_ring it describes. Every sync goes
// prologue (validate head/cur against this state) -> backend work ->
// finalize (publish tail), exactly as §5.3-§5.7 say; the functions here are
// the one place those rules are written.
//
// Locking: `syncLock` serialises syncs on the ring; a sync that finds it busy
// skips the ring (netmap's nm_kr_tryget). hwcur/hwtail/rhead/rcur/rtail are
// only touched under it. `users`/`exclusiveOwner` belong to the registry lock.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

public enum RingDirection: Sendable, Equatable {
    case tx, rx
}

/// Something that sleeps in poll on a ring and wants to hear when it may be ready.
public protocol RingWaiter: AnyObject, Sendable {
    func ringMayBeReady()
}

public final class Kring: @unchecked Sendable {
    public let direction: RingDirection
    /// ringid: index within its direction, host rings after the NIC rings.
    public let index: Int
    public let isHost: Bool
    public let numSlots: UInt32
    public let region: MemoryRegion
    public let name: String

    /// Region offset of this ring's netmap_ring object, while it has memory.
    public internal(set) var ringOffset: Int?
    public var ring: RingView { RingView(region.base + ringOffset!) }
    public var hasMemory: Bool { ringOffset != nil }

    // Kernel-side indices (§5.2). Under syncLock.
    public var hwcur: UInt32 = 0
    public var hwtail: UInt32 = 0
    public var rhead: UInt32 = 0
    public var rcur: UInt32 = 0
    public var rtail: UInt32 = 0

    // Registry-owned.
    public internal(set) var users = 0
    var exclusiveOwner: ObjectIdentifier?

    let syncLock = Lock()
    /// Set when the interface behind the ring went away: syncs skip the
    /// ring and report EIO, poll POLLERR (§5.9).
    public let stopped = Atomic<Bool>(false)
    /// Set while the interface's link is down: netmap only locks such a
    /// ring, so syncs wait for the link (waitForLink) and poll finds the
    /// ring not ready; nothing fails (§5.9, §6).
    public let linkDown = Atomic<Bool>(false)

    /// What passed through the ring since it was created: frames and bytes
    /// the backend took from a TX ring or put into an RX ring (counted by
    /// Core from the slots, so every backend counts the same way), and frames
    /// the backend had to drop (it says so through countDrops).
    public let packets = Atomic<UInt64>(0)
    public let bytes = Atomic<UInt64>(0)
    public let drops = Atomic<UInt64>(0)
    /// TX slots an interface sent repaired, as netmap does (§4.6): a buffer
    /// index beyond the pool as buffer 0, a length beyond the buffer cut
    /// to the buffer size (txSlot).
    public let badSlots = Atomic<UInt64>(0)

    /// Backend-private per-ring state (a socket, a pipe peer, ...).
    public var backendState: AnyObject?

    /// Monitors hooked on this ring (MonitorPort.swift): copy monitors, and
    /// the first zero-copy monitor of its chain. Changed under the registry
    /// lock and syncLock, read by syncs under syncLock.
    var copyMonitors: [MonitorRing] = []
    var zeroCopyNext: MonitorRing?
    /// TX: the first slot copy monitors have not been given yet (slots
    /// before it were copied when the program handed them over).
    var monitorTxCursor: UInt32 = 0

    /// Sessions bound to this ring. An array (a handful at most) that a
    /// wake-up reads by reference: no allocation per sync.
    private let waiters = Lock.Protected<[Weak]>([])
    private struct Weak {
        weak var waiter: RingWaiter?
    }

    public init(direction: RingDirection, index: Int, isHost: Bool, numSlots: Int, region: MemoryRegion, portName: String) {
        self.direction = direction
        self.index = index
        self.isHost = isHost
        self.numSlots = UInt32(numSlots)
        self.region = region
        name = "\(portName) \(direction == .tx ? "TX" : "RX")\(index)\(isHost ? " (host)" : "")"
        resetIndices()
    }

    /// Initial state of a freshly bound ring: TX 0,0,n-1; RX all 0.
    func resetIndices() {
        hwcur = 0
        rhead = 0
        rcur = 0
        hwtail = direction == .tx ? numSlots - 1 : 0
        rtail = hwtail
        monitorTxCursor = 0
    }

    // MARK: memory

    /// Puts the ring into the ring object at `offset`, writes the header the
    /// way a fresh netmap ring looks (§4.4) and fills slot i with buffer
    /// `buffers[i]` (len = buffer size). `buffers` may come from a peer ring.
    public func attachMemory(at offset: Int, buffers: [UInt32], lengths: UInt16? = nil) {
        precondition(buffers.count == Int(numSlots))
        ringOffset = offset
        resetIndices()
        let p = region.base + offset
        p.initializeMemory(as: UInt8.self, repeating: 0, count: Layout.ringHeader)
        p.storeBytes(of: Int64(region.bufferPoolOffset - offset), toByteOffset: Layout.ringBufOfs, as: Int64.self)
        p.storeBytes(of: numSlots, toByteOffset: Layout.ringNumSlots, as: UInt32.self)
        p.storeBytes(of: UInt32(region.bufferSize), toByteOffset: Layout.ringBufSize, as: UInt32.self)
        p.storeBytes(of: UInt16(index), toByteOffset: Layout.ringId, as: UInt16.self)
        // The kernel stores its internal direction code: 1 for TX, 0 for RX (§4.4).
        p.storeBytes(of: UInt16(direction == .tx ? 1 : 0), toByteOffset: Layout.ringDir, as: UInt16.self)
        let r = ring
        r.storeHead(rhead)
        r.storeCur(rcur)
        r.storeTail(rtail)
        let len = lengths ?? UInt16(truncatingIfNeeded: region.bufferSize)
        for i in 0 ..< numSlots {
            let s = r.slot(i)
            s.bufIdx = buffers[Int(i)]
            s.len = len
            s.flags = 0
            s.ptr = 0
        }
    }

    /// Forgets the ring object; returns its offset and the buffer indices its
    /// slots hold now (for the caller to free).
    public func detachMemory() -> (offset: Int, buffers: [UInt32])? {
        guard let off = ringOffset else { return nil }
        let r = ring
        var bufs = [UInt32]()
        bufs.reserveCapacity(Int(numSlots))
        for i in 0 ..< numSlots { bufs.append(r.slot(i).bufIdx) }
        ringOffset = nil
        return (off, bufs)
    }

    // MARK: the sync contract

    /// Runs `body` holding the sync lock, or returns nil at once if another
    /// thread is syncing this ring (netmap skips busy rings silently).
    @inline(__always)
    public func trySync<T>(_ body: () -> T) -> T? {
        syncLock.withLockIfAvailable { body() }
    }

    /// Runs `body` holding the sync lock, waiting for whoever holds it
    /// (NIOCTXSYNC/NIOCRXSYNC: their work must not be dropped).
    @inline(__always)
    public func syncWaiting(_ body: () -> Void) {
        syncLock.withLock { body() }
    }

    /// TX prologue (§5.3): head in [rhead … rtail], cur in [head … rtail].
    /// On success records rhead/rcur and restores a tail the user changed.
    public func txPrologue() -> Bool {
        let r = ring
        let head = r.loadHead(), cur = r.loadCur()
        let n = numSlots
        guard hwcur < n, rhead < n, rtail < n, hwtail < n, head < n, cur < n,
            RingIndex.within(head, rhead, rtail), RingIndex.within(cur, head, rtail)
        else { return false }
        if r.loadTail() != rtail { r.storeTail(rtail) }
        rhead = head
        rcur = cur
        return true
    }

    /// RX prologue (§5.3): head in [hwcur … hwtail], cur in [head … hwtail].
    /// rhead/rcur are recorded before the check, as the kernel does.
    public func rxPrologue() -> Bool {
        let r = ring
        let head = r.loadHead(), cur = r.loadCur()
        rhead = head
        rcur = cur
        let n = numSlots
        guard hwcur < n, hwtail < n, head < n, cur < n,
            RingIndex.within(head, hwcur, hwtail), RingIndex.within(cur, head, hwtail)
        else { return false }
        if r.loadTail() != rtail { r.storeTail(rtail) }
        return true
    }

    /// Re-initialisation after a failed prologue (§5.4): take the user's
    /// indices, repair every slot that names a reserved or foreign buffer or
    /// an impossible length, and reset the indices only if one is out of range.
    public func reinit() {
        let r = ring
        let head = r.loadHead(), cur = r.loadCur(), tail = r.loadTail()
        rhead = head
        rcur = cur
        rtail = tail
        let bufSize = region.bufferSize
        for i in 0 ..< numSlots {
            let s = r.slot(i)
            if !region.isValidBuffer(s.bufIdx) {
                s.bufIdx = 0
                s.len = 0
            } else if Int(s.len) > bufSize {
                s.len = 0
            }
        }
        let lim = numSlots - 1
        if head > lim || cur > lim || tail > lim {
            rhead = hwcur
            rcur = hwcur
            rtail = hwtail
            r.storeHead(hwcur)
            r.storeCur(hwcur)
            r.storeTail(hwtail)
        }
    }

    /// After a successful backend sync: publish tail = rtail = hwtail (§5.7).
    @inline(__always)
    public func finalize() {
        rtail = hwtail
        ring.storeTail(hwtail)
    }

    /// RX rings carry the time of their last sync (§5.8).
    public func stampTime() {
        var tv = timeval()
        gettimeofday(&tv, nil)
        ring.storeTimestamp(sec: Int64(tv.tv_sec), usec: Int64(tv.tv_usec))
    }

    // MARK: rings with nothing behind them

    /// txsync of a ring that goes nowhere (an inert host ring): everything
    /// handed over is consumed and reclaimed at once.
    public func discardingTxsync() -> Int32 {
        var i = hwcur
        while i != rhead {
            ring.slot(i).flags &= ~(SlotFlag.bufChanged | SlotFlag.report)
            i = RingIndex.next(i, numSlots)
        }
        hwcur = rhead
        hwtail = RingIndex.prev(hwcur, numSlots)
        return 0
    }

    /// rxsync of a ring nothing arrives on: only released slots go back.
    public func releasingRxsync() -> Int32 {
        takeBackReleased()
        return 0
    }

    /// The first step of an rxsync (§5.6): the slots the program released,
    /// [hwcur … rhead) (never beyond hwtail), are the backend's again;
    /// hwcur moves to their end. Returns how many.
    @discardableResult
    public func takeBackReleased() -> UInt32 {
        let released = min(RingIndex.distance(hwcur, rhead, numSlots), RingIndex.distance(hwcur, hwtail, numSlots))
        hwcur = RingIndex.add(hwcur, released, numSlots)
        return released
    }

    // MARK: counters

    /// Counts the slots [from … to): one frame per slot that does not
    /// continue in the next (NS_MOREFRAG), and every slot's length (as
    /// sent: cut to the buffer size). `repaired`: the slots went out
    /// through txSlot, so those it had to repair are counted as bad.
    func countSlots(from: UInt32, to: UInt32, repaired: Bool = false) {
        guard from != to, from < numSlots, to < numSlots else { return }
        let r = ring
        let size = region.bufferSize, count = region.bufferCount
        var i = from, frames: UInt64 = 0, total: UInt64 = 0, bad: UInt64 = 0
        while i != to {
            let s = r.slot(i)
            let len = Int(s.len)
            total &+= UInt64(min(len, size))
            if repaired && (len > size || Int(s.bufIdx) >= count) { bad &+= 1 }
            if s.flags & SlotFlag.moreFrag == 0 { frames &+= 1 }
            i = RingIndex.next(i, numSlots)
        }
        packets.add(frames, ordering: .relaxed)
        bytes.add(total, ordering: .relaxed)
        if bad > 0 { badSlots.add(bad, ordering: .relaxed) }
    }

    /// A backend dropped `n` frames on this ring (no room, too large, ...).
    public func countDrops(_ n: UInt64) {
        drops.add(n, ordering: .relaxed)
    }

    // MARK: wake-ups

    public func addWaiter(_ w: RingWaiter) {
        waiters.withLock { list in
            list.removeAll { $0.waiter == nil || $0.waiter === w }
            list.append(Weak(waiter: w))
        }
    }

    public func removeWaiter(_ w: RingWaiter) {
        waiters.withLock { list in list.removeAll { $0.waiter == nil || $0.waiter === w } }
    }

    /// Something happened on this ring (packets arrived, space freed, the
    /// peer synced): every poller of a file bound to it re-evaluates.
    public func wakeup() {
        let ws = waiters.withLock { $0 }
        for w in ws { w.waiter?.ringMayBeReady() }
    }

    // MARK: slot checks for backends

    /// TX slot `i` as netmap sends it (§4.6, §5.5): a buffer index beyond
    /// the pool means buffer 0 and a length beyond the buffer is cut to the
    /// buffer size; the frame still goes out, whatever it holds. Read once,
    /// so what is returned is what the backend sends. (Session counts the
    /// repaired slots after the sync, in countSlots.)
    @inline(__always)
    public func txSlot(_ i: UInt32) -> (buf: UInt32, len: Int) {
        let s = ring.slot(i)
        let b = s.bufIdx, l = Int(s.len)
        return (Int(b) < region.bufferCount ? b : 0, min(l, region.bufferSize))
    }

    // MARK: link state

    /// The link went down (true) or came back: pollers re-evaluate.
    public func setLinkDown(_ down: Bool) {
        linkDown.store(down, ordering: .releasing)
        wakeup()
    }

    /// How a sync waits for a link that is down: in steps of `linkWaitStep`
    /// microseconds, at most `linkWaitSteps` of them (see waitForLink).
    static let linkWaitStep: UInt32 = 2000
    static let linkWaitSteps = 50

    public enum LinkWait: Sendable, Equatable {
        case up, down, gone
    }

    /// §5.9: a sync on a ring whose link is down sleeps in short steps
    /// until the link is up again (.up), or the interface is gone (.gone).
    /// Unlike netmap it gives up after about 100 ms (.down: the caller skips
    /// the ring and succeeds), so that no daemon thread is held and a client
    /// that is killed meanwhile is never stuck in its ioctl.
    public func waitForLink() -> LinkWait {
        var steps = 0
        while linkDown.load(ordering: .acquiring) {
            if stopped.load(ordering: .acquiring) { return .gone }
            if steps >= Self.linkWaitSteps { return .down }
            usleep(Self.linkWaitStep)
            steps += 1
        }
        return stopped.load(ordering: .acquiring) ? .gone : .up
    }
}
