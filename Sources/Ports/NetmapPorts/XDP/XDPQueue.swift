// XDPQueue: one queue of an interface served by an XDPPort — one AF_XDP
// socket, shared by the netmap TX ring and RX ring of the same index. Each
// socket registers its own UMEM over the region's whole buffer area, so a
// netmap buffer index is a UMEM address (index × buffer size) for every
// socket, and closing one socket never disturbs another.
//
// TX (both bind modes): slots [hwcur … rhead) become TX descriptors that
// point at the netmap buffers themselves — no copy in the daemon. A slot is
// reclaimed when its completion comes back; completions arrive in the order
// the descriptors were posted, so counting them is enough. Slots that fail
// validation are never posted (the kernel would skip an invalid descriptor
// without completing it) and are reclaimed in order with the rest.
//
// RX, "landing" (--xdp-rx-swap, copy bind mode only — every driver without
// AF_XDP zero-copy, veth included): the UMEM uses unaligned chunks of buffer size + 256, and
// the fill ring gets the address 256 bytes before each netmap buffer the
// queue owns, so the kernel's XDP_PACKET_HEADROOM ends exactly at the buffer
// start and a frame lands where the netmap slot points. rxsync writes len
// and buf_idx; nothing is copied. The queue owns the buffers of the kernel-
// owned slots plus `rxReserve` spare ones; a frame may come back in any of
// them (after a drop the kernel reuses a buffer out of order), so a slot
// gets whichever buffer the frame is in (NS_BUF_CHANGED when that differs
// from what the slot showed), and a released slot gives its buffer back.
// The 256 bytes before a buffer are the tail of the previous buffer: in
// copy mode the kernel copies only the frame (and XDP metadata, which our
// program never creates) — checked with canaries by Tests/net/xsk_bench.c.
//
// RX, "bounce" (the default since issue #14 item 13, so that an RX slot's
// buffer changes only when the program swaps it, as on netmap's NIC rings;
// make bench's xdp-rxpath group measured the same rate as landing; and
// always in zero-copy bind mode): a NIC DMAs to the chunk address it is
// given, and a chunk that starts 256 bytes into the page before a buffer
// crosses a page boundary, which the kernel refuses in zero-copy mode unless
// the two pages happen to be contiguous for DMA. So zero-copy sockets use
// aligned buffer-sized chunks the queue owns (frames start 256 bytes in,
// up to buffer size - 256 long) and rxsync copies each frame into the slot's
// own buffer. In copy bind mode the same chunks and copy are used (the net
// suites run this way); zero-copy bind itself is never exercised on these
// machines (veth refuses it).
//
// Which buffers the queue owns is private state (a bitmap over the pool), so
// a client scribbling on slots it does not own cannot make the kernel write
// anywhere but into validated buffers of the region. When the RX ring leaves
// netmap mode the socket is closed (the only way to take buffers back from
// the fill ring) and the owned buffers are put back into the kernel-owned
// slots before Core frees the ring, so the pool's accounting stays exact.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import CXDPSys
import NetmapCore
import Synchronization

/// How received frames reach the netmap buffers.
public enum XDPReceivePath: String, Sendable {
    /// Frames land in the netmap buffers (copy bind mode).
    case land
    /// Frames land in the queue's own chunks and are copied (zero-copy bind mode).
    case bounce
}

/// What the port tells a queue when it opens its socket.
struct XDPQueueSetup {
    var ifname: String
    var slots: Int
    var rxReserve: Int
    var bind: XDPBindMode
    var forceBounce: Bool
    /// The queue exists in that direction (index < queue count).
    var hasRX: Bool
    var hasTX: Bool
}

/// Most descriptors one frame may use (the kernel's copy-mode limit is
/// MAX_SKB_FRAGS + 1 = 18; netmap allows 64 slots).
let xdpMaxFragments = 16
/// The kernel's XDP_PACKET_HEADROOM: where a received frame starts in its chunk.
let xdpHeadroom = 256

final class XDPQueue: EventHandler, @unchecked Sendable {
    let queue: Int
    let region: MemoryRegion
    private let loop: EventLoop
    private let watcher: CompletionWatcher
    private let log: CoreLog
    /// The rings bound in each direction. The event thread reads them for
    /// wake-ups (handleEvents, CompletionWatcher) without txLock/rxLock,
    /// while enable/disable store them under those locks; a weak reference
    /// is not safe to load while another thread stores it, so the two live
    /// behind a lock of their own (a leaf: nothing else is taken under it).
    private let bound = Lock.Protected(BoundRings())
    private struct BoundRings {
        weak var tx: Kring?
        weak var rx: Kring?
    }
    var txKring: Kring? { bound.withLock { $0.tx } }
    var rxKring: Kring? { bound.withLock { $0.rx } }

    // Lock order: txLock, then rxLock. Syncs take one; opening, closing and
    // direction changes take both.
    private let txLock = Lock()
    private let rxLock = Lock()

    private var setup: XDPQueueSetup?
    private var xsk: OpaquePointer?
    private var fd: Int32 = -1
    private var eventId: UInt64 = 0
    private let armed = Atomic<Bool>(false)
    private(set) var path = XDPReceivePath.land
    private(set) var zeroCopy = false
    private(set) var scatterGather = false
    /// The directions in netmap mode.
    private(set) var rxOn = false
    private(set) var txOn = false

    private var umemArea: UnsafeMutableRawPointer { region.base + region.bufferPoolOffset }
    private var umemSize: UInt64 { UInt64(region.bufferCount * region.bufferSize) }
    private let bufSize: Int
    private let bufShift: Int

    // RX: buffers (land) or chunks (bounce) the queue owns, as a bitmap over
    // the pool, and those not in the kernel yet.
    private let ownedBits: UnsafeMutablePointer<UInt64>
    private let ownedWords: Int
    private var ownedCount = 0
    private var stash: UnsafeMutablePointer<UInt32>
    private var stashCount = 0
    private var stashCapacity: Int
    /// Frames received but not deliverable (bad offset, no valid slot buffer).
    private(set) var rxDropped = 0
    /// The RX reserve (land) or the chunks (bounce) are allocated.
    private var holdsReserve = false
    /// Frames delivered and time spent in rxsync since RX entered netmap
    /// mode (for the release log line: the cost of the receive path).
    private(set) var rxFrames: UInt64 = 0
    private(set) var rxNanos: UInt64 = 0
    /// The socket's kernel counters when RX last entered netmap mode: the
    /// socket outlives an RX binding while TX is on, and its counters run
    /// on, so the release report takes the difference.
    private var rxStatsBase = nmd_xsk_stats()
    /// Received descriptors of the sync in progress.
    private var descs: UnsafeMutablePointer<nmd_xsk_desc>
    private var descCapacity = 0

    // TX: which slots of the TX ring were posted and await completion.
    private var posted: UnsafeMutablePointer<Bool>
    private var postedCapacity: Int
    private var credit: UInt32 = 0
    private(set) var inFlight = 0
    private var lastProgress: UInt64 = 0
    /// The kernel kept our TX descriptors without transmitting them for a
    /// second (said once per stall).
    private var heldReported = false
    private var lastCompletion: UInt64 = 0
    private var invalidSeen: UInt64 = 0
    /// Completions still due for transmissions abandoned when TX last left
    /// (not to be counted for the slots of the next TX period).
    private var orphans: UInt32 = 0
    /// Frames not sent: invalid slots, runts, over the MTU, too many fragments.
    private(set) var txDropped = 0
    /// The fragments of the frame being posted, as validated.
    private let fragBuf = UnsafeMutablePointer<UInt32>.allocate(capacity: xdpMaxFragments)
    private let fragLen = UnsafeMutablePointer<UInt32>.allocate(capacity: xdpMaxFragments)

    init(queue: Int, region: MemoryRegion, loop: EventLoop, watcher: CompletionWatcher, log: CoreLog) {
        self.queue = queue
        self.region = region
        self.loop = loop
        self.watcher = watcher
        self.log = log
        bufSize = region.bufferSize
        assert(bufSize == XDPBackend.bufferSize, "XDPBackend.regionProblem lets only 2048-byte buffers through")
        bufShift = bufSize.trailingZeroBitCount
        ownedWords = (region.bufferCount + 63) / 64
        ownedBits = .allocate(capacity: ownedWords)
        ownedBits.initialize(repeating: 0, count: ownedWords)
        stashCapacity = 1024
        stash = .allocate(capacity: stashCapacity)
        descs = .allocate(capacity: 1)
        postedCapacity = 1
        posted = .allocate(capacity: 1)
        posted.initialize(to: false)
    }

    deinit {
        ownedBits.deallocate()
        stash.deallocate()
        posted.deallocate()
        fragBuf.deallocate()
        fragLen.deallocate()
        descs.deallocate()
    }

    var isOpen: Bool { xsk != nil }
    var socketFd: Int32 { fd }

    // MARK: life cycle (port lock held)

    /// The direction `d` enters netmap mode with `kring`; opens the socket
    /// if it is the first. ENOMEM if the pool cannot spare the RX buffers.
    func enable(_ d: RingDirection, kring: Kring, setup s: XDPQueueSetup) throws(NetmapError) {
        try txLock.withLock { () throws(NetmapError) in
            try rxLock.withLock { () throws(NetmapError) in
                if xsk == nil {
                    setup = s
                    try openSocket()
                }
                if d == .tx {
                    bound.withLock { $0.tx = kring }
                    resetTX(slots: Int(kring.numSlots))
                    if let x = xsk { absorbOrphans(nmd_xsk_tx_completed(x)) }
                    txOn = true
                } else {
                    bound.withLock { $0.rx = kring }
                    rxDropped = 0
                    rxFrames = 0
                    rxNanos = 0
                    rxStatsBase = nmd_xsk_stats()
                    if let x = xsk { _ = nmd_xsk_stats(x, &rxStatsBase) }
                    do throws(NetmapError) { try startRX(kring) } catch {
                        if !txOn { closeSocket(); releaseOwned() }
                        throw error
                    }
                    rxOn = true
                    arm()
                }
            }
        }
    }

    /// The direction `d` leaves netmap mode (its ring memory still exists).
    /// The socket stays while the other direction is on (a socket cannot
    /// be reopened at once: the kernel frees a queue's binding after an RCU
    /// grace period, and registering the UMEM again costs ~50 ms); RX then
    /// parks its buffers in the socket.
    func disable(_ d: RingDirection) {
        txLock.withLock {
            rxLock.withLock {
                guard xsk != nil else { return }
                if d == .tx {
                    guard txOn else { return }
                    let abandoned = drainTX(milliseconds: 50)
                    orphans &+= UInt32(abandoned)
                    if abandoned > 0 {
                        log.info("\(setup?.ifname ?? "?") queue \(queue): \(abandoned) transmissions still in flight when TX left")
                    }
                    txOn = false
                    bound.withLock { $0.tx = nil }
                    if !rxOn {
                        closeSocket()
                        releaseOwned()
                    }
                } else {
                    guard rxOn else { return }
                    rxOn = false
                    if txOn {
                        if let k = rxKring { parkRX(k) }
                    } else {
                        closeSocket()
                        if let k = rxKring { giveBackRX(k) }
                        releaseOwned()
                    }
                    bound.withLock { $0.rx = nil }
                }
            }
        }
    }

    /// The port goes: both directions leave.
    func shutdown() {
        disable(.rx)
        disable(.tx)
    }

    private func openSocket() throws(NetmapError) {
        guard let s = setup else { throw .EINVAL }
        let fillSlots = s.hasRX ? Self.pow2(s.slots + s.rxReserve) : 64
        let rxSize = s.hasRX ? UInt32(fillSlots) : 0
        let txSize = s.hasTX ? UInt32(Self.pow2(s.slots)) : 0
        func attempt(_ bind: nmd_xsk_bind, landing: Bool) -> (OpaquePointer?, Int32) {
            var err: Int32 = 0
            let x: OpaquePointer? = s.ifname.withCString { name in
                var p = nmd_xsk_params()
                p.ifname = name
                p.queue = UInt32(queue)
                p.area = umemArea
                p.area_size = umemSize
                p.chunk_size = UInt32(landing ? bufSize + xdpHeadroom : bufSize)
                p.unaligned = landing ? 1 : 0
                p.fill_size = UInt32(fillSlots)
                p.comp_size = s.hasTX ? txSize : 64
                p.rx_size = rxSize
                p.tx_size = txSize
                p.bind = Int32(bind.rawValue)
                p.scatter_gather = 1
                return nmd_xsk_open(&p, &err)
            }
            return (x, err)
        }
        var x: OpaquePointer?
        var err: Int32 = -EOPNOTSUPP
        // A socket on this queue that was closed a moment ago still holds
        // it (EBUSY) until an RCU grace period has passed.
        for _ in 0 ..< 50 {
            // Zero-copy first where allowed (its RX path bounces), then copy
            // mode, where frames land in the netmap buffers unless told otherwise.
            if s.bind != .copy {
                (x, err) = attempt(NMD_XSK_BIND_ZEROCOPY, landing: false)
                if x != nil { path = .bounce }
            }
            if x == nil && s.bind != .zeroCopy && err != -EBUSY {
                (x, err) = attempt(NMD_XSK_BIND_COPY, landing: !s.forceBounce)
                if x != nil { path = s.forceBounce ? .bounce : .land }
            }
            if x != nil || err != -EBUSY { break }
            usleep(10_000)
        }
        guard let x else { throw NetmapError(-err) }
        xsk = x
        fd = nmd_xsk_fd(x)
        zeroCopy = nmd_xsk_zerocopy(x) != 0
        scatterGather = nmd_xsk_scatter_gather(x) != 0
        armed.store(false, ordering: .relaxed)
        do throws(NetmapError) {
            eventId = try loop.add(fd: fd, events: NMD_EPOLLONESHOT, handler: self)
        } catch {
            nmd_xsk_close(x)
            xsk = nil
            fd = -1
            throw error
        }
        invalidSeen = 0
        var st = nmd_xsk_stats()
        if nmd_xsk_stats(x, &st) == 0 { invalidSeen = st.tx_invalid }
    }

    private func closeSocket() {
        guard let x = xsk else { return }
        watcher.forget(self)
        loop.remove(fd: fd, id: eventId)
        nmd_xsk_close(x)
        xsk = nil
        fd = -1
        // Whatever was in the kernel is ours again, not yet re-posted.
        refillStashFromOwned()
        inFlight = 0
        credit = 0
        orphans = 0
        for i in 0 ..< postedCapacity { posted[i] = false }
    }

    // MARK: RX buffers

    @inline(__always) private func isOwned(_ b: UInt32) -> Bool {
        ownedBits[Int(b) >> 6] & (1 << UInt64(b & 63)) != 0
    }
    @inline(__always) private func setOwned(_ b: UInt32) {
        ownedBits[Int(b) >> 6] |= 1 << UInt64(b & 63)
        ownedCount += 1
    }
    @inline(__always) private func clearOwned(_ b: UInt32) {
        ownedBits[Int(b) >> 6] &= ~(1 << UInt64(b & 63))
        ownedCount -= 1
    }

    private func ensureStash(_ n: Int) {
        guard n > stashCapacity else { return }
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        p.update(from: stash, count: stashCount)
        stash.deallocate()
        stash = p
        stashCapacity = n
    }

    /// Takes buffer `b` into the queue (not yet posted). False if it is not a
    /// pool buffer or the queue has it already (a client naming one buffer
    /// in two slots).
    @inline(__always) private func adopt(_ b: UInt32) -> Bool {
        guard region.isValidBuffer(b), !isOwned(b) else { return false }
        setOwned(b)
        stash[stashCount] = b
        stashCount += 1
        return true
    }

    /// After a close the kernel holds nothing: the stash is every owned buffer.
    private func refillStashFromOwned() {
        ensureStash(ownedCount)
        stashCount = 0
        for w in 0 ..< ownedWords where ownedBits[w] != 0 {
            var bits = ownedBits[w]
            while bits != 0 {
                let j = bits.trailingZeroBitCount
                stash[stashCount] = UInt32(w * 64 + j)
                stashCount += 1
                bits &= bits - 1
            }
        }
    }

    /// Moves stashed buffers into the fill ring while it has room: the
    /// address 256 bytes before the buffer (land) or the chunk itself (bounce).
    private func postStash() {
        guard let x = xsk, stashCount > 0 else { return }
        let back = UInt64(path == .land ? xdpHeadroom : 0)
        let posted = nmd_xsk_fill_many(x, stash, UInt32(stashCount), UInt32(bufShift), back)
        stashCount -= Int(posted)
        _ = nmd_xsk_fill_commit(x)
    }

    /// RX enters netmap mode: take the buffers of the kernel-owned slots
    /// (land) or allocate the chunks (bounce), plus the reserve, and post them.
    private func startRX(_ k: Kring) throws(NetmapError) {
        guard let s = setup, s.hasRX, let x = xsk else { throw .EINVAL }
        if descCapacity < Int(k.numSlots) {
            descs.deallocate()
            descs = .allocate(capacity: Int(k.numSlots))
            descCapacity = Int(k.numSlots)
        }
        if !holdsReserve {
            let want = path == .land ? s.rxReserve : s.rxReserve + s.slots
            guard let extra = region.allocateBuffers(want) else {
                log.info("\(s.ifname) queue \(queue): the pool cannot spare \(want) buffers for the RX queue: ENOMEM")
                throw .ENOMEM
            }
            ensureStash(ownedCount + want + Int(k.numSlots) + 1)
            for b in extra { _ = adopt(b) }
            holdsReserve = true
        } else {
            // Parked: frames that came in before the redirect stopped are
            // stale; their buffers are ours again.
            while true {
                let n = nmd_xsk_rx_take(x, UInt32(descCapacity), descs)
                if n == 0 { break }
                for j in 0 ..< Int(n) {
                    let b = path == .land ? ownedBuffer(descs[j])
                        : UInt32(truncatingIfNeeded: descs[j].addr >> UInt64(bufShift))
                    if b != 0 && isOwned(b) {
                        ensureStash(stashCount + 1)
                        stash[stashCount] = b
                        stashCount += 1
                    }
                }
                nmd_xsk_rx_release(x, n)
            }
        }
        if path == .land { adoptNewBuffers(k) }
        postStash()
    }

    /// RX leaves, TX stays (the socket too): land gives the ring's
    /// kernel-owned slots buffers for Core to free with the ring — stashed
    /// ones, or fresh ones from the pool while ours sit in the fill ring.
    private func parkRX(_ k: Kring) {
        guard path == .land, k.hasMemory else { return }
        let n = k.numSlots
        let r = k.ring
        let count = Int(k.hwtail == k.hwcur ? n : RingIndex.distance(k.hwtail, k.hwcur, n))
        let fromStash = min(count, stashCount)
        let fresh = region.allocateBuffers(upTo: count - fromStash)
        var i = k.hwtail
        for j in 0 ..< count {
            let s = r.slot(i)
            if j < fromStash {
                stashCount -= 1
                let b = stash[stashCount]
                clearOwned(b)
                s.bufIdx = b
            } else {
                let f = j - fromStash
                s.bufIdx = f < fresh.count ? fresh[f] : 0
            }
            s.len = UInt16(truncatingIfNeeded: bufSize)
            i = RingIndex.next(i, n)
        }
    }

    /// Socket closed for good: every buffer the queue still owns goes back
    /// to the pool.
    private func releaseOwned() {
        refillStashFromOwned()
        region.freeBuffers(UnsafeBufferPointer(start: stash, count: stashCount))
        stashCount = 0
        ownedBits.update(repeating: 0, count: ownedWords)
        ownedCount = 0
        holdsReserve = false
    }

    /// Land: the buffers shown by the ring's kernel-owned slots [hwtail …
    /// hwcur) become the queue's (a fresh ring: all of them).
    private func adoptNewBuffers(_ k: Kring) {
        let n = k.numSlots
        let r = k.ring
        let count = k.hwtail == k.hwcur ? n : RingIndex.distance(k.hwtail, k.hwcur, n)
        ensureStash(ownedCount + Int(count) + 1)
        var i = k.hwtail
        for _ in 0 ..< count {
            _ = adopt(r.slot(i).bufIdx)
            i = RingIndex.next(i, n)
        }
    }

    /// RX leaves (socket closed): land puts owned buffers into the
    /// kernel-owned slots, where Core will free them with the ring.
    private func giveBackRX(_ k: Kring) {
        refillStashFromOwned()
        if path == .land && k.hasMemory {
            let n = k.numSlots
            let r = k.ring
            let count = k.hwtail == k.hwcur ? n : RingIndex.distance(k.hwtail, k.hwcur, n)
            var i = k.hwtail
            for _ in 0 ..< count {
                let s = r.slot(i)
                if stashCount > 0 {
                    stashCount -= 1
                    let b = stash[stashCount]
                    clearOwned(b)
                    s.bufIdx = b
                } else {
                    s.bufIdx = 0   // the client lost buffers: nothing to free here
                }
                s.len = UInt16(truncatingIfNeeded: bufSize)
                i = RingIndex.next(i, n)
            }
        }
        // What is left (the reserve, bounce chunks) goes with releaseOwned.
    }

    // MARK: RX

    func handleEvents(_ events: UInt32) {
        armed.store(false, ordering: .releasing)
        rxKring?.wakeup()
    }

    private func arm() {
        guard xsk != nil, rxOn, !armed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.rearm(fd: fd, id: eventId, events: NMD_EPOLLIN | NMD_EPOLLONESHOT)
    }

    /// §5.6: take back [hwcur … rhead), then deliver received frames into
    /// [hwtail … prev(hwcur)).
    func rxsync(_ k: Kring) -> Int32 {
        rxLock.lock()
        defer { rxLock.unlock() }
        guard rxOn, let xp = xsk else { return NetmapError.EIO.errno }
        let x = xp
        let t0 = Self.nowNanos()
        defer { rxNanos &+= Self.nowNanos() &- t0 }
        let n = k.numSlots
        let r = k.ring
        let released = min(RingIndex.distance(k.hwcur, k.rhead, n), RingIndex.distance(k.hwcur, k.hwtail, n))
        var i = k.hwcur
        if path == .land {
            ensureStash(stashCount + Int(released))
            for _ in 0 ..< released {
                let s = r.slot(i)
                _ = adopt(s.bufIdx)
                s.flags &= ~SlotFlag.bufChanged
                i = RingIndex.next(i, n)
            }
            postStash()
        } else {
            for _ in 0 ..< released {
                r.slot(i).flags &= ~SlotFlag.bufChanged
                i = RingIndex.next(i, n)
            }
        }
        k.hwcur = i

        let room = min(RingIndex.distance(k.hwtail, RingIndex.prev(k.hwcur, n), n), UInt32(descCapacity))
        let taken = room > 0 ? nmd_xsk_rx_take(x, room, descs) : 0
        var tail = k.hwtail
        var used: UInt32 = 0
        var d = 0
        let count = Int(taken)
        while d < count {
            // One frame: descriptors d ... e-1 (all but the last say "continued").
            var e = d
            while e < count && descs[e].options & NMD_XSK_CONTD != 0 { e += 1 }
            // A frame cut by the room we have waits for the next sync.
            guard e < count else { break }
            e += 1
            tail = path == .land ? land(d, e, r, tail, n, k) : bounce(x, d, e, r, tail, n, k)
            used = UInt32(e)
            d = e
        }
        nmd_xsk_rx_release(x, used)
        rxFrames &+= UInt64(RingIndex.distance(k.hwtail, tail, n))
        k.hwtail = tail
        if path == .land {
            postStash()
        } else {
            _ = nmd_xsk_fill_commit(x)
        }
        if nmd_xsk_rx_ready(x) == 0 { arm() }
        return 0
    }

    /// The buffer a land-mode descriptor came back in (base address 256
    /// bytes before a buffer start), or 0 if it names none of ours.
    @inline(__always) private func ownedBuffer(_ desc: nmd_xsk_desc) -> UInt32 {
        let start = (desc.addr & 0x0000_FFFF_FFFF_FFFF) &+ UInt64(xdpHeadroom)
        guard start & UInt64(bufSize - 1) == 0 else { return 0 }
        let b = UInt32(truncatingIfNeeded: start >> UInt64(bufShift))
        return region.isValidBuffer(b) && isOwned(b) ? b : 0
    }

    /// Land: the frame is in our buffers already; the slots get those
    /// buffers and their lengths.
    private func land(_ d: Int, _ e: Int, _ r: RingView, _ tail: UInt32, _ n: UInt32, _ k: Kring) -> UInt32 {
        var ok = true
        for j in d ..< e {
            let desc = descs[j]
            // The data must start at the buffer start: offset 256 into the chunk.
            if ownedBuffer(desc) == 0 || desc.addr >> 48 != UInt64(xdpHeadroom) || desc.len == 0
                || Int(desc.len) > bufSize {
                ok = false
                break
            }
        }
        guard ok else {
            // Not where we put it (a foreign program moved the data) or not
            // ours at all: drop the frame, keep the buffers that are ours.
            ensureStash(stashCount + (e - d))
            for j in d ..< e {
                let b = ownedBuffer(descs[j])
                if b != 0 {
                    stash[stashCount] = b
                    stashCount += 1
                }
            }
            rxDropped += 1
            k.countDrops(1)
            return tail
        }
        var t = tail
        for j in d ..< e {
            let desc = descs[j]
            let b = ownedBuffer(desc)
            clearOwned(b)
            let s = r.slot(t)
            let changed = s.bufIdx != b
            s.bufIdx = b
            s.len = UInt16(truncatingIfNeeded: desc.len)
            s.flags = (j + 1 < e ? SlotFlag.moreFrag : 0) | (changed ? SlotFlag.bufChanged : 0)
            t = RingIndex.next(t, n)
        }
        return t
    }

    /// Bounce: copy the frame from our chunks into the slots' buffers.
    private func bounce(_ x: OpaquePointer, _ d: Int, _ e: Int, _ r: RingView, _ tail: UInt32, _ n: UInt32,
                        _ k: Kring) -> UInt32 {
        var t = tail
        var ok = true
        for j in d ..< e {
            let desc = descs[j]
            let data = desc.addr
            let chunk = UInt32(truncatingIfNeeded: data >> UInt64(bufShift))
            let len = Int(desc.len)
            let s = r.slot(t)
            let b = s.bufIdx
            let mine = region.isValidBuffer(chunk) && isOwned(chunk)
            if ok && mine && region.isValidBuffer(b) && len <= bufSize
                && Int(data & UInt64(bufSize - 1)) + len <= bufSize {
                region.buffer(b).copyMemory(from: umemArea + Int(data), byteCount: len)
                s.len = UInt16(truncatingIfNeeded: len)
                s.flags = j + 1 < e ? SlotFlag.moreFrag : 0
                t = RingIndex.next(t, n)
            } else {
                ok = false
            }
            if mine { nmd_xsk_fill_put(x, UInt64(chunk) << UInt64(bufShift)) }
        }
        if !ok {
            rxDropped += 1
            k.countDrops(1)
            return tail
        }
        return t
    }

    // MARK: TX

    private func resetTX(slots: Int) {
        if postedCapacity < slots {
            posted.deallocate()
            posted = .allocate(capacity: slots)
            postedCapacity = slots
        }
        posted.initialize(repeating: false, count: postedCapacity)
        credit = 0
        inFlight = 0
        txDropped = 0
        lastProgress = Self.nowNanos()
        lastCompletion = lastProgress
    }

    /// §5.5: post [hwcur … rhead) as descriptors pointing at the netmap
    /// buffers, kick the kernel if it wants it, reclaim what completed.
    func txsync(_ k: Kring, maxFrame: Int) -> Int32 {
        txLock.lock()
        defer { txLock.unlock() }
        guard txOn, let xp = xsk else { return NetmapError.EIO.errno }
        let x = xp
        let n = k.numSlots
        let r = k.ring
        reclaim(k, x)
        let clear = ~(SlotFlag.bufChanged | SlotFlag.report)
        let maxFrags = scatterGather ? xdpMaxFragments : 1
        var room = Int(nmd_xsk_tx_room(x))
        var i = k.hwcur
        var queuedAny = false
        while i != k.rhead {
            // The frame starting at i: slots i ... j-1.
            var j = i
            var frags = 0
            var total = 0
            var bad = false
            var complete = false
            while j != k.rhead {
                let s = r.slot(j)
                let more = s.flags & SlotFlag.moreFrag != 0
                // Buffer and length are read once: what was checked is what is posted.
                let (b, len) = k.txSlot(j)   // a bad index or length repaired as netmap does
                if len > 0, frags < xdpMaxFragments {
                    fragBuf[frags] = b
                    fragLen[frags] = UInt32(len)
                    total += len
                } else {
                    bad = true
                }
                frags += 1
                j = RingIndex.next(j, n)
                if !more {
                    complete = true
                    break
                }
            }
            // An unfinished NS_MOREFRAG chain waits for its end.
            guard complete else { break }
            if frags > maxFrags || total < ethHeaderLen || total > maxFrame { bad = true }
            if !bad && frags > room { break }
            var t = i
            for f in 0 ..< frags {
                if !bad {
                    nmd_xsk_tx_put(x, UInt64(fragBuf[f]) << UInt64(bufShift), fragLen[f], f + 1 < frags ? NMD_XSK_CONTD : 0)
                    inFlight += 1
                    room -= 1
                }
                posted[Int(t)] = !bad
                r.slot(t).flags &= clear
                t = RingIndex.next(t, n)
            }
            if bad { txDropped += 1 } else { queuedAny = true }
            i = j
        }
        k.hwcur = i
        // Kick also when nothing new went in but descriptors still wait in
        // the socket's TX ring: in copy mode the kernel transmits only
        // inside sendto(), so a full TX ring that is never kicked would
        // never drain (and no completion would ever make room).
        if queuedAny || nmd_xsk_tx_queued(x) > 0 {
            let rc = nmd_xsk_tx_commit(x)
            if rc < 0 && rc != -ENETDOWN && rc != -ENXIO && rc != -ENODEV {
                log.debug("\(k.name): AF_XDP transmit kick: errno \(-rc)")
            }
        }
        reclaim(k, x)
        if inFlight > 0 { watcher.watch(self) }
        reportHeld(k, x)
        return 0
    }

    /// Kernels before 6.6 or so (Debian's 6.1) keep copy-mode TX
    /// descriptors in the socket's ring, uncompleted, while the device
    /// cannot transmit (a veth whose peer is down: no carrier), where newer
    /// ones and AF_PACKET drop the frames. The slots complete once the link
    /// has a carrier again; meanwhile say why they do not.
    private func reportHeld(_ k: Kring, _ x: OpaquePointer) {
        if inFlight == 0 {
            heldReported = false
        } else if !heldReported && Self.nowNanos() &- lastCompletion > 1_000_000_000 {
            heldReported = true
            log.info("\(k.name): the kernel holds \(inFlight) AF_XDP transmissions without completing them "
                     + "(\(nmd_xsk_tx_queued(x)) not taken yet; no carrier on the link?); their slots complete when it transmits again")
        }
    }

    /// Advances hwtail over every slot whose completion came back (and over
    /// slots never posted), in order.
    private func reclaim(_ k: Kring, _ x: OpaquePointer) {
        let done = absorbOrphans(nmd_xsk_tx_completed(x))
        if done > 0 {
            credit &+= done
            lastProgress = Self.nowNanos()
            lastCompletion = lastProgress
        } else if inFlight > 0 && nmd_xsk_tx_queued(x) == 0 && Self.nowNanos() &- lastProgress > 5_000_000 {
            // Nothing completed for 5 ms with nothing left in the TX ring:
            // descriptors the kernel found invalid are skipped without a
            // completion; count those as done so the ring cannot wedge.
            var st = nmd_xsk_stats()
            if nmd_xsk_stats(x, &st) == 0 && st.tx_invalid > invalidSeen {
                credit &+= UInt32(truncatingIfNeeded: st.tx_invalid - invalidSeen)
                invalidSeen = st.tx_invalid
            }
            lastProgress = Self.nowNanos()
        }
        let n = k.numSlots
        var t = RingIndex.next(k.hwtail, n)
        var tail = k.hwtail
        while t != k.hwcur {
            if posted[Int(t)] {
                if credit == 0 { break }
                credit -= 1
                posted[Int(t)] = false
                inFlight -= 1
            }
            tail = t
            t = RingIndex.next(t, n)
        }
        k.hwtail = tail
        if inFlight == 0 { credit = 0 }
    }

    /// Of `done` completions, those that belong to an earlier TX period
    /// are dropped; returns the rest.
    @discardableResult
    private func absorbOrphans(_ done: UInt32) -> UInt32 {
        let o = min(done, orphans)
        orphans -= o
        return done - o
    }

    /// Waits up to `milliseconds` for the transmissions in flight (socket
    /// leaving); what is still in flight then is abandoned.
    /// Returns how many are abandoned; the TX state is reset either way.
    private func drainTX(milliseconds: Int) -> Int {
        var outstanding = max(0, inFlight - Int(credit))
        if let x = xsk {
            for _ in 0 ..< milliseconds * 10 where outstanding > 0 {
                _ = nmd_xsk_tx_kick(x)
                outstanding -= min(outstanding, Int(absorbOrphans(nmd_xsk_tx_completed(x))))
                if outstanding > 0 { usleep(100) }
            }
        }
        inFlight = 0
        credit = 0
        for i in 0 ..< postedCapacity { posted[i] = false }
        return outstanding
    }

    /// For the completion watcher (event thread): something for the TX
    /// ring to reclaim or to push. Reads only.
    func txNeedsAttention() -> (ready: Bool, idle: Bool) {
        txLock.lock()
        defer { txLock.unlock() }
        guard let xp = xsk, txOn else { return (true, true) }
        let x = xp
        if inFlight == 0 { return (true, true) }
        return (nmd_xsk_comp_ready(x) > 0, false)
    }

    // MARK: helpers

    static func pow2(_ v: Int) -> Int {
        var p = 1
        while p < v { p <<= 1 }
        return p
    }

    static func nowNanos() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// Kernel counters of the socket since RX last entered netmap mode
    /// (TX's since the socket opened), for the release log line.
    func kernelStats() -> nmd_xsk_stats? {
        txLock.withLock {
            rxLock.withLock {
                guard let xp = xsk else { return nil }
                var st = nmd_xsk_stats()
                guard nmd_xsk_stats(xp, &st) == 0 else { return nil }
                let b = rxStatsBase
                st.rx_dropped &-= min(b.rx_dropped, st.rx_dropped)
                st.rx_invalid &-= min(b.rx_invalid, st.rx_invalid)
                st.rx_ring_full &-= min(b.rx_ring_full, st.rx_ring_full)
                st.fill_empty &-= min(b.fill_empty, st.fill_empty)
                return st
            }
        }
    }
}
