// ValePort: one port of a VALE switch (§11.2). A txsync forwards the
// sender's whole pending TX, [hwcur … head), in one pass under the bridge's
// lock: frames (NS_MOREFRAG chains) are classified by the learning bridge
// (learn the unicast source MAC, unicast to the learnt port, flood group and
// unknown destinations, never back to the sender) and copied into the
// receivers' RX rings; a receiver without room drops what does not fit (its
// RX ring counts the drops) and nobody else is held back. The TX ring is
// then reclaimed whole. Receivers are woken after the bridge lock is let go.
//
// Each RX ring has a queue: senders fill it from `tail` under the queue's
// lock, the receiver's rxsync publishes what it released (`released`) and
// takes `tail` as its hwtail under the same lock. The queue is open only
// while the ring has memory (setNetmapMode), so no sender ever writes a
// ring that is being freed.

/// Where senders put frames for one RX ring, and what its receiver released.
final class ValeRxQueue: @unchecked Sendable {
    let lock = Lock()
    var open = false
    /// Next slot a sender fills (the receiver's hwtail once it syncs).
    var tail: UInt32 = 0
    /// The receiver's hwcur: slots before it are free again.
    var released: UInt32 = 0
}

/// The RX rings a TX ring's pass must wake, kept with the TX ring (its
/// sync lock) so that the wake-ups happen after the bridge lock is let go.
final class ValeWakeList: @unchecked Sendable {
    var rings: [Kring] = []
    init() { rings.reserveCapacity(8) }
}

public final class ValePort: Port, @unchecked Sendable {
    static let maxRings = 16, maxSlots = 4096
    static let broadcast = -1, drop = -2

    public let name: String
    public let kind = PortKind.vale
    public let geometry: PortGeometry
    public var backendName: String { "vale" }
    unowned let switches: ValeSwitches
    let bridge: ValeBridge
    /// Port number in the bridge (set when it joins).
    var number = 0
    /// The allocator id netmap would give it (§4.1), and whether it made it.
    let memId: UInt16
    let ownsMemId: Bool
    weak var adapter: PortAdapter?
    var rxKrings: [Kring] = []
    let rxQueues: [ValeRxQueue]
    /// virtio-net header length (PORT_HDR_SET); read by forwarders under the bridge lock.
    var hdrLen = 0
    /// The last source MAC this port taught the bridge (bridge lock); ~0: none.
    var lastSourceMAC: UInt64 = ~0

    /// A frame of the pass: slots [first, first+slots) of the TX ring; the
    /// Ethernet header starts at `payloadOffset` of slot `payloadSlot`.
    struct Frame {
        var first: UInt32
        var slots: Int
        var payloadSlot: UInt32
        var payloadOffset: Int
        var dst: Int
    }

    init(name: String, geometry: PortGeometry, switches: ValeSwitches, bridge: ValeBridge, memId: UInt16,
         ownsMemId: Bool) {
        self.name = name
        self.geometry = geometry
        self.switches = switches
        self.bridge = bridge
        self.memId = memId
        self.ownsMemId = ownsMemId
        rxQueues = (0 ..< geometry.rxRings).map { _ in ValeRxQueue() }
    }

    public var virtioHeaderLength: Int { bridge.lock.withLock { hdrLen } }

    public func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError) {
        for k in rings where k.direction == .rx && k.index < rxQueues.count {
            let q = rxQueues[k.index]
            q.lock.withLock {
                q.open = on
                q.tail = 0
                q.released = 0
            }
        }
    }

    public func destroy(adapter: PortAdapter) { switches.remove(self) }

    // MARK: rxsync

    public func rxsync(_ r: Kring, flags: SyncFlags) -> Int32 {
        let n = r.numSlots
        let count = min(RingIndex.distance(r.hwcur, r.rhead, n), RingIndex.distance(r.hwcur, r.hwtail, n))
        if count > 0 {
            let ring = r.ring
            var k = r.hwcur
            for _ in 0 ..< count {
                ring.slot(k).flags &= ~SlotFlag.bufChanged
                k = RingIndex.next(k, n)
            }
            r.hwcur = k
        }
        let q = rxQueues[r.index]
        q.lock.withLock {
            q.released = r.hwcur
            r.hwtail = q.tail
        }
        return 0
    }

    // MARK: txsync: the forwarding pass

    public func txsync(_ t: Kring, flags: SyncFlags) -> Int32 {
        let n = t.numSlots
        let head = t.rhead
        if t.hwcur != head {
            let br = bridge
            let wake: ValeWakeList
            if let w = t.backendState as? ValeWakeList { wake = w } else {
                wake = ValeWakeList()
                t.backendState = wake
            }
            br.lock.withLock {
                forward(t, upTo: head, br)
                swap(&wake.rings, &br.wake)
            }
            for k in wake.rings { k.wakeup() }
            wake.rings.removeAll(keepingCapacity: true)
        }
        t.hwcur = head
        t.hwtail = RingIndex.prev(head, n)
        return 0
    }

    /// Groups [hwcur … head) into frames, classifies and delivers them (bridge lock held).
    private func forward(_ t: Kring, upTo head: UInt32, _ br: ValeBridge) {
        let n = t.numSlots
        let ring = t.ring
        let region = t.region
        let bufSize = region.bufferSize
        br.frames.removeAll(keepingCapacity: true)
        var k = t.hwcur
        var start = k, count = 0
        var indirect = false
        var refused: UInt64 = 0
        func close(_ next: UInt32) {
            if indirect {
                refused += 1
            } else {
                br.frames.append(Frame(first: start, slots: count, payloadSlot: start, payloadOffset: 0, dst: Self.drop))
            }
            start = next
            count = 0
            indirect = false
        }
        while k != head {
            let s = ring.slot(k)
            let f = s.flags
            s.flags = f & ~SlotFlag.bufChanged
            if f & SlotFlag.indirect != 0 { indirect = true }
            count += 1
            let next = RingIndex.next(k, n)
            if f & SlotFlag.moreFrag == 0 { close(next) }
            k = next
        }
        if count > 0 { close(k) }   // a trailing chain ends at the last slot
        if refused > 0 { t.countDrops(refused) }

        // Classify (learning bridge).
        let me = number
        var anyBroadcast = false
        for i in br.frames.indices {
            let fr = br.frames[i]
            let s0 = ring.slot(fr.first)
            let len0 = Self.fragmentLength(s0.len, bufSize)
            var pslot = fr.first, poff = hdrLen, plen = len0 - hdrLen
            if hdrLen > 0 && len0 == hdrLen && fr.slots > 1 {
                pslot = RingIndex.next(fr.first, n)
                poff = 0
                plen = Self.fragmentLength(ring.slot(pslot).len, bufSize)
            } else if len0 <= hdrLen && hdrLen > 0 {
                continue   // the header is not in the first fragment nor before the second
            }
            guard plen >= 14 else { continue }
            let b = region.buffer(Self.sourceBuffer(ring.slot(pslot).bufIdx, region)) + poff
            let dstMAC = Self.mac(b), srcMAC = Self.mac(b + 6)
            if b.load(fromByteOffset: 6, as: UInt8.self) & 1 == 0 && srcMAC != lastSourceMAC {
                br.macTable[srcMAC] = me
                lastSourceMAC = srcMAC
            }
            var dst = Self.broadcast
            if b.load(as: UInt8.self) & 1 == 0, let p = br.macTable[dstMAC] { dst = p }
            if dst == me || (dst >= 0 && br.ports[dst] == nil) { continue }
            if dst == Self.broadcast { anyBroadcast = true }
            br.frames[i].payloadSlot = pslot
            br.frames[i].payloadOffset = poff
            br.frames[i].dst = dst
        }

        // Deliver, destination by destination, frames in their order.
        for j in br.activePorts where j != me {
            guard let p = br.ports[j], !p.rxQueues.isEmpty else { continue }
            let uring = t.index % p.rxQueues.count
            var unicast = false
            for fr in br.frames where fr.dst == j {
                unicast = true
                break
            }
            if unicast { deliver(t, to: p, ring: uring, unicastTo: j, broadcast: anyBroadcast && uring == 0, br) }
            if anyBroadcast && !(unicast && uring == 0) {
                deliver(t, to: p, ring: 0, unicastTo: nil, broadcast: true, br)
            }
        }
    }

    /// Copies the frames for `p` (unicast to `unicastTo`, and broadcast ones
    /// if asked) into its RX ring `r`; what does not fit is dropped there.
    private func deliver(_ t: Kring, to p: ValePort, ring r: Int, unicastTo: Int?, broadcast: Bool, _ br: ValeBridge) {
        let q = p.rxQueues[r]
        let dk = p.rxKrings[r]
        let src = t.ring, n = t.numSlots
        let region = t.region
        let bufSize = region.bufferSize
        let sameHeader = p.hdrLen == hdrLen
        var drops: UInt64 = 0
        var delivered = false
        q.lock.withLock {
            guard q.open else { return }   // nobody has this RX ring bound (§11.2 step 5)
            let dn = dk.numSlots
            let dst = dk.ring
            var tail = q.tail
            var free = RingIndex.distance(tail, RingIndex.prev(q.released, dn), dn)
            var full = false
            for fr in br.frames where (unicastTo != nil && fr.dst == unicastTo!) || (broadcast && fr.dst == Self.broadcast) {
                // Fragments out: all of them, or (headers differ) those from
                // the payload's slot on, the first behind the new header.
                let skip = sameHeader ? 0 : Int(RingIndex.distance(fr.first, fr.payloadSlot, n))
                let need = fr.slots - skip
                if full || UInt32(need) > free {
                    full = true   // as netmap: once a frame does not fit, the rest of the pass is dropped
                    drops += 1
                    continue
                }
                // Every destination buffer must be one (a receiver may have swapped junk in).
                var d = tail, ok = true
                for _ in 0 ..< need {
                    if !region.isValidBuffer(dst.slot(d).bufIdx) { ok = false }
                    d = RingIndex.next(d, dn)
                }
                if !sameHeader {
                    let l = Self.fragmentLength(src.slot(fr.payloadSlot).len, bufSize) - fr.payloadOffset
                    if p.hdrLen + l > bufSize { ok = false }
                }
                guard ok else {
                    drops += 1
                    continue
                }
                var s = sameHeader ? fr.first : fr.payloadSlot
                let rfrags = UInt16(truncatingIfNeeded: min(need, 255)) << 8
                for f in 0 ..< need {
                    let ss = src.slot(s), ds = dst.slot(tail)
                    let from = region.buffer(Self.sourceBuffer(ss.bufIdx, region))
                    let to = region.buffer(ds.bufIdx)
                    // Each length is read once: the client may rewrite its slots meanwhile.
                    var len = Self.fragmentLength(ss.len, bufSize)
                    if f == 0 && !sameHeader {
                        to.initializeMemory(as: UInt8.self, repeating: 0, count: p.hdrLen)
                        let body = min(max(len - fr.payloadOffset, 0), bufSize - p.hdrLen)
                        (to + p.hdrLen).copyMemory(from: from + fr.payloadOffset, byteCount: body)
                        len = p.hdrLen + body
                    } else {
                        to.copyMemory(from: from, byteCount: len)
                    }
                    ds.len = UInt16(len)
                    ds.flags = rfrags | (f + 1 < need ? SlotFlag.moreFrag : 0)
                    s = RingIndex.next(s, n)
                    tail = RingIndex.next(tail, dn)
                }
                free -= UInt32(need)
                delivered = true
            }
            q.tail = tail
        }
        if drops > 0 { dk.countDrops(drops) }
        if delivered { br.wake.append(dk) }
    }

    // MARK: helpers

    /// A fragment longer than the buffer counts as empty (§11.2 step 1).
    @inline(__always) static func fragmentLength(_ len: UInt16, _ bufSize: Int) -> Int {
        Int(len) > bufSize ? 0 : Int(len)
    }

    /// A source index beyond the pool reads buffer 0, as netmap's lookup does.
    @inline(__always) static func sourceBuffer(_ idx: UInt32, _ region: MemoryRegion) -> UInt32 {
        Int(idx) < region.bufferCount ? idx : 0
    }

    @inline(__always) static func mac(_ p: UnsafeMutableRawPointer) -> UInt64 {
        var v: UInt64 = 0
        for i in 0 ..< 6 { v = v << 8 | UInt64(p.load(fromByteOffset: i, as: UInt8.self)) }
        return v
    }
}
