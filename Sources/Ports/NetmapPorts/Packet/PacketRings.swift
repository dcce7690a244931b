// The per-ring state of a PacketPort: one AF_PACKET socket per NIC ring in
// netmap mode. An RX ring reads a TPACKET_V2 ring mapped from its socket and
// copies frames into netmap buffers; a TX ring hands netmap buffers to
// sendmmsg. Each object is created once per kring (kring.backendState, set
// the first time the ring enters netmap mode and never replaced), and its
// socket comes and goes with netmap mode. `lock` keeps a sync and the
// socket's closing apart; the kring's own sync lock already keeps syncs apart.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore
import Synchronization

/// Most slots one frame may span (NETMAP_MAX_FRAGS).
let maxFragments = 64

// MARK: RX

final class PacketRXRing: EventHandler, @unchecked Sendable {
    weak var kring: Kring?
    private let loop: EventLoop
    private let lock = Lock()
    private var fd: Int32 = -1
    /// The mapped kernel ring (heap-allocated so C reads it without copies).
    private let ring: UnsafeMutablePointer<nmd_rx_ring>
    /// Next frame of the kernel ring to look at.
    private var next: UInt32 = 0
    private var eventId: UInt64 = 0
    /// The one-shot epoll registration is armed (no event since the last re-arm).
    private let armed = Atomic<Bool>(false)
    /// A frame with its VLAN tag put back, before it is split into slots.
    private var scratch: UnsafeMutableRawPointer
    private var scratchSize: Int
    /// Frames we could not deliver (truncated by the kernel ring, runts).
    private(set) var dropped = 0

    init(kring: Kring, loop: EventLoop) {
        self.kring = kring
        self.loop = loop
        scratchSize = 0
        scratch = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16)
        ring = .allocate(capacity: 1)
        ring.initialize(to: nmd_rx_ring())
    }

    deinit {
        scratch.deallocate()
        ring.deallocate()
    }

    /// Opens the socket: TPACKET_V2 ring of `frames` frames of up to
    /// `maxFrame` bytes, bound to `ifindex`, joined to fanout `group` if
    /// given (nil: no fanout; -1: make a new group and return its id), by
    /// queue (PACKET_FANOUT_QM) or by flow hash.
    func open(ifindex: Int32, frames: Int, maxFrame: Int, fanout: Int32?, byQueue: Bool) throws(NetmapError) -> Int32? {
        try lock.withLock { () throws(NetmapError) -> Int32? in
            guard fd < 0 else { return fanout }
            let s = nmd_packet_open(1)
            guard s >= 0 else { throw NetmapError(-s) }
            var r = nmd_rx_ring()
            var rc = nmd_rx_ring_setup(s, UInt32(maxFrame + vlanTagLen), UInt32(frames), &r)
            if rc == 0 { rc = nmd_packet_bind(s, ifindex, 1) }
            var group = fanout
            if rc == 0, let g = fanout {
                rc = nmd_packet_join_fanout(s, g, byQueue ? 1 : 0)
                if rc >= 0 {
                    group = rc
                    rc = 0
                }
            }
            if rc != 0 {
                nmd_rx_ring_unmap(&r)
                Glibc.close(s)
                throw NetmapError(-rc)
            }
            if scratchSize < maxFrame + vlanTagLen {
                scratch.deallocate()
                scratchSize = maxFrame + vlanTagLen
                scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 16)
            }
            ring.pointee = r
            next = 0
            dropped = 0
            fd = s
            armed.store(true, ordering: .releasing)
            do throws(NetmapError) {
                eventId = try loop.add(fd: s, events: NMD_EPOLLIN | NMD_EPOLLONESHOT, handler: self)
            } catch {
                nmd_rx_ring_unmap(ring)
                Glibc.close(s)
                fd = -1
                throw error
            }
            return group
        }
    }

    /// Closes the socket; returns what the kernel dropped for it.
    @discardableResult
    func close() -> (kernelDrops: Int64, dropped: Int) {
        lock.withLock {
            guard fd >= 0 else { return (0, 0) }
            loop.remove(fd: fd, id: eventId)
            let drops = nmd_packet_drops(fd)
            nmd_rx_ring_unmap(ring)
            Glibc.close(fd)
            fd = -1
            return (max(0, drops), dropped)
        }
    }

    func handleEvents(_ events: UInt32) {
        armed.store(false, ordering: .releasing)
        if events & NMD_EPOLLERR != 0 {
            // Clear the socket error (ENETDOWN while the link is down) so the
            // next re-arm does not fire on it again.
            lock.withLock {
                guard fd >= 0 else { return }
                var e: Int32 = 0
                var l = socklen_t(4)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l)
            }
        }
        kring?.wakeup()
    }

    /// §5.6: take back [hwcur … rhead), then copy waiting frames into
    /// [hwtail … prev(hwcur)). A frame longer than a buffer spans several
    /// slots, NS_MOREFRAG on all but the last.
    func rxsync(_ k: Kring) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return NetmapError.EIO.errno }
        let n = k.numSlots
        k.takeBackReleased()

        let region = k.region
        let bufSize = region.bufferSize
        let r = k.ring
        var tail = k.hwtail
        var room = Int(RingIndex.distance(tail, RingIndex.prev(k.hwcur, n), n))
        var frame = next
        let frames = ring.pointee.frame_count
        var drained = false
        var result: Int32 = 0
        while true {
            guard nmd_rx_ring_ready(ring, frame) != 0 else {
                drained = true
                break
            }
            let h = nmd_rx_ring_frame(ring, frame)!
            let snap = Int(h.pointee.tp_snaplen), wire = Int(h.pointee.tp_len)
            let status = h.pointee.tp_status
            let tagged = status & NMD_TP_STATUS_VLAN_VALID != 0
            let total = snap + (tagged ? vlanTagLen : 0)
            if snap < wire || snap < ethHeaderLen || total > scratchSize {
                // Cut short by the kernel ring (larger than the MTU allowed
                // for) or a runt: netmap would not deliver it either.
                dropped += 1
                nmd_rx_ring_release(ring, frame)
                frame = frame + 1 == frames ? 0 : frame + 1
                continue
            }
            let frags = (total + bufSize - 1) / bufSize
            if frags > room { break }
            var src = UnsafeRawPointer(h) + Int(h.pointee.tp_mac)
            if tagged {
                // The kernel took the tag out (VLAN acceleration); the netmap
                // ring shows the frame as it was on the wire.
                let tpid: UInt16 = status & NMD_TP_STATUS_VLAN_TPID_VALID != 0 ? h.pointee.tp_vlan_tpid : 0x8100
                scratch.copyMemory(from: src, byteCount: 12)
                scratch.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
                scratch.storeBytes(of: h.pointee.tp_vlan_tci.bigEndian, toByteOffset: 14, as: UInt16.self)
                (scratch + 16).copyMemory(from: src + 12, byteCount: snap - 12)
                src = UnsafeRawPointer(scratch)
            }
            let start = tail
            var off = 0
            var bad = false
            for f in 0 ..< frags {
                let s = r.slot(tail)
                let b = s.bufIdx
                guard region.isValidBuffer(b) else {
                    bad = true
                    break
                }
                let chunk = min(bufSize, total - off)
                region.buffer(b).copyMemory(from: src + off, byteCount: chunk)
                s.len = UInt16(chunk)
                s.flags = f == frags - 1 ? 0 : SlotFlag.moreFrag
                off += chunk
                tail = RingIndex.next(tail, n)
            }
            if bad {
                // The client put a buffer index outside the pool into a free
                // slot: the frame stays in the kernel ring, the sync fails.
                tail = start
                result = NetmapError.EINVAL.errno
                break
            }
            room -= frags
            nmd_rx_ring_release(ring, frame)
            frame = frame + 1 == frames ? 0 : frame + 1
        }
        next = frame
        k.hwtail = tail
        if drained && !armed.load(ordering: .acquiring) {
            armed.store(true, ordering: .releasing)
            loop.rearm(fd: fd, id: eventId, events: NMD_EPOLLIN | NMD_EPOLLONESHOT)
        }
        return result
    }
}

// MARK: TX

final class PacketTXRing: EventHandler, @unchecked Sendable {
    weak var kring: Kring?
    private let loop: EventLoop
    private let lock = Lock()
    private var fd: Int32 = -1
    private var eventId: UInt64 = 0
    private let batch: OpaquePointer
    /// First slot of each message of the batch being sent.
    private let msgStart: UnsafeMutablePointer<UInt32>
    /// Waiting for EPOLLOUT after the socket refused a frame.
    private let blocked = Atomic<Bool>(false)
    /// Slots not sent: invalid buffer or length, runts, over the MTU, or
    /// refused by the kernel for a reason other than lack of room.
    private(set) var dropped = 0

    init(kring: Kring, loop: EventLoop) {
        self.kring = kring
        self.loop = loop
        let n = Int(kring.numSlots)
        batch = nmd_tx_batch_new(UInt32(n), UInt32(n))!
        msgStart = .allocate(capacity: n + 1)
    }

    deinit {
        nmd_tx_batch_free(batch)
        msgStart.deallocate()
    }

    func open(ifindex: Int32, qdiscBypass: Bool, sndbuf: Int) throws(NetmapError) {
        try lock.withLock { () throws(NetmapError) in
            guard fd < 0 else { return }
            let s = nmd_packet_open(0)
            guard s >= 0 else { throw NetmapError(-s) }
            var rc = nmd_packet_bind(s, ifindex, 0)
            if rc == 0, qdiscBypass { rc = nmd_packet_set_qdisc_bypass(s, 1) }
            if rc == 0 { _ = nmd_packet_set_buffers(s, Int32(sndbuf), 0) }
            if rc != 0 {
                Glibc.close(s)
                throw NetmapError(-rc)
            }
            do throws(NetmapError) {
                // Registered but silent until a send finds no room.
                eventId = try loop.add(fd: s, events: NMD_EPOLLONESHOT, handler: self)
            } catch {
                Glibc.close(s)
                throw error
            }
            fd = s
            dropped = 0
            blocked.store(false, ordering: .relaxed)
        }
    }

    @discardableResult
    func close() -> Int {
        lock.withLock {
            guard fd >= 0 else { return 0 }
            loop.remove(fd: fd, id: eventId)
            Glibc.close(fd)
            fd = -1
            return dropped
        }
    }

    func handleEvents(_ events: UInt32) {
        blocked.store(false, ordering: .releasing)
        if events & NMD_EPOLLERR != 0 {
            lock.withLock {
                guard fd >= 0 else { return }
                var e: Int32 = 0
                var l = socklen_t(4)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l)
            }
        }
        kring?.wakeup()
    }

    /// §5.5: send [hwcur … rhead) with as few sendmmsg calls as the kernel
    /// takes, then reclaim: the kernel has copied whatever it accepted, so
    /// every sent slot is free again at once (hwtail = prev(hwcur)).
    func txsync(_ k: Kring, maxFrame: Int) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { return NetmapError.EIO.errno }
        let n = k.numSlots
        let r = k.ring
        let region = k.region
        let clear = ~(SlotFlag.bufChanged | SlotFlag.report)
        nmd_tx_batch_reset(batch)
        var msgs = 0
        var i = k.hwcur
        /// Where the scan stopped: the end of the last whole frame seen.
        var scanned = i
        var frameLen = 0
        var frameStart = i
        var frameBad = false
        var frags = 0
        while i != k.rhead {
            let s = r.slot(i)
            let more = s.flags & SlotFlag.moreFrag != 0
            if frags == 0 {
                frameStart = i
                frameLen = 0
                frameBad = false
            }
            frags += 1
            if !frameBad, frags <= maxFragments {
                let (b, len) = k.txSlot(i)   // a bad index or length repaired as netmap does
                frameLen += len
                if nmd_tx_batch_add(batch, region.buffer(b), UInt32(len)) < 0 { frameBad = true }
            } else {
                frameBad = true
            }
            s.flags &= clear
            i = RingIndex.next(i, n)
            if more { continue }
            // A whole frame: keep it or drop it before any system call.
            if frameBad || frameLen < ethHeaderLen || frameLen > maxFrame {
                nmd_tx_batch_drop_partial(batch)
                dropped += 1
            } else {
                nmd_tx_batch_end(batch)
                msgStart[msgs] = frameStart
                msgs += 1
            }
            frags = 0
            scanned = i
        }
        // An unfinished NS_MOREFRAG chain at rhead waits for its end.
        if frags > 0 { nmd_tx_batch_drop_partial(batch) }
        msgStart[msgs] = scanned

        var sent = 0
        while sent < msgs {
            let rc = nmd_tx_batch_send(fd, batch, UInt32(sent))
            if rc > 0 {
                sent += Int(rc)
                continue
            }
            let e = -rc
            if e == EAGAIN || e == ENOBUFS || e == EINTR {
                // No room in the socket or the device queue: the rest goes on
                // a later sync; wake the ring when the socket can take more.
                if !blocked.exchange(true, ordering: .acquiringAndReleasing) {
                    loop.rearm(fd: fd, id: eventId, events: NMD_EPOLLOUT | NMD_EPOLLONESHOT)
                }
                break
            }
            if e == ENETDOWN || e == ENXIO || e == ENODEV {
                // The link went down or away: what is queued is lost, as on
                // a NIC; the link monitor stops the ring.
                dropped += msgs - sent
                sent = msgs
                break
            }
            // This one frame was refused (EMSGSIZE, EINVAL ...): skip it.
            dropped += 1
            sent += 1
        }
        k.hwcur = msgStart[sent]
        k.hwtail = RingIndex.prev(k.hwcur, n)
        return 0
    }
}
