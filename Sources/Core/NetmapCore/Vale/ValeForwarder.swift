// ValeForwarder: the learning bridge's pass over one source ring (§11.2),
// shared by every kind of switch port: an ephemeral port's TX ring (its
// txsync) and an attached NIC's RX ring (frames the NIC received enter the
// switch as if the NIC's port had sent them). Runs under the bridge's lock,
// using the bridge's scratch, so that nothing is allocated per sync.

/// A port of a switch, as the forwarder sees it.
protocol ValeMember: AnyObject {
    var name: String { get }
    var bridge: ValeBridge { get }
    var number: Int { get set }
    /// virtio-net header length (bridge lock).
    var hdrLen: Int { get }
    /// The last source MAC this port taught the bridge (bridge lock); ~0: none.
    var lastSourceMAC: UInt64 { get set }
    var memId: UInt16 { get }
    var ownsMemId: Bool { get }
    /// "ephemeral" or "nic", for status.
    var kindName: String { get }
    /// How many rings frames can be delivered to (0: none).
    var deliveryRings: Int { get }
    /// Copies the frames of the pass meant for this port into its ring `r`
    /// (bridge lock held); appends rings to wake to `br.wake`.
    func deliver(_ src: ValeSource, ring r: Int, unicastTo: Int?, broadcast: Bool, _ br: ValeBridge)
}

/// The ring a pass reads frames from.
struct ValeSource {
    let ring: RingView
    let n: UInt32
    /// Its ring index: unicast goes to the same index at the destination.
    let index: Int
    let region: MemoryRegion
}

/// A frame of the pass: slots [first, first+slots) of the source ring; the
/// Ethernet header starts at `payloadOffset` of slot `payloadSlot`.
struct ValeFrame {
    var first: UInt32
    var slots: Int
    var payloadSlot: UInt32
    var payloadOffset: Int
    var dst: Int
}

enum ValeForwarder {
    static let broadcast = -1, drop = -2

    /// Groups [from … to) of `src` into frames, classifies them and hands
    /// each destination its frames. Returns the frames refused at the source
    /// (NS_INDIRECT). Bridge lock held.
    static func forward(_ src: ValeSource, from: UInt32, to: UInt32, sender: ValeMember, _ br: ValeBridge) -> UInt64 {
        let n = src.n
        let ring = src.ring
        let region = src.region
        let bufSize = region.bufferSize
        br.frames.removeAll(keepingCapacity: true)
        var k = from
        var start = k, count = 0
        var indirect = false
        var refused: UInt64 = 0
        func close(_ next: UInt32) {
            if indirect {
                refused += 1
            } else {
                br.frames.append(ValeFrame(first: start, slots: count, payloadSlot: start, payloadOffset: 0, dst: drop))
            }
            start = next
            count = 0
            indirect = false
        }
        while k != to {
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

        // Classify (learning bridge).
        let me = sender.number
        let hdrLen = sender.hdrLen
        br.senderHdrLen = hdrLen
        var anyBroadcast = false
        for i in br.frames.indices {
            let fr = br.frames[i]
            let len0 = fragmentLength(ring.slot(fr.first).len, bufSize)
            var pslot = fr.first, poff = hdrLen, plen = len0 - hdrLen
            if hdrLen > 0 && len0 == hdrLen && fr.slots > 1 {
                pslot = RingIndex.next(fr.first, n)
                poff = 0
                plen = fragmentLength(ring.slot(pslot).len, bufSize)
            } else if len0 <= hdrLen && hdrLen > 0 {
                continue   // the header is not in the first fragment nor before the second
            }
            guard plen >= 14 else { continue }
            let b = region.buffer(sourceBuffer(ring.slot(pslot).bufIdx, region)) + poff
            let dstMAC = mac(b), srcMAC = mac(b + 6)
            if b.load(fromByteOffset: 6, as: UInt8.self) & 1 == 0 && srcMAC != sender.lastSourceMAC {
                br.macTable[srcMAC] = me
                sender.lastSourceMAC = srcMAC
            }
            var dst = broadcast
            if b.load(as: UInt8.self) & 1 == 0, let p = br.macTable[dstMAC] { dst = p }
            if dst == me || (dst >= 0 && br.ports[dst] == nil) { continue }
            if dst == broadcast { anyBroadcast = true }
            br.frames[i].payloadSlot = pslot
            br.frames[i].payloadOffset = poff
            br.frames[i].dst = dst
        }

        // Deliver, destination by destination, frames in their order.
        for j in br.activePorts where j != me {
            guard let p = br.ports[j], p.deliveryRings > 0 else { continue }
            let uring = src.index % p.deliveryRings
            var unicast = false
            for fr in br.frames where fr.dst == j {
                unicast = true
                break
            }
            if unicast { p.deliver(src, ring: uring, unicastTo: j, broadcast: anyBroadcast && uring == 0, br) }
            if anyBroadcast && !(unicast && uring == 0) {
                p.deliver(src, ring: 0, unicastTo: nil, broadcast: true, br)
            }
        }
        return refused
    }

    /// Copies the pass's frames for one destination ring into `dst` from slot
    /// `at`, using at most `free` slots; as netmap, once a frame does not fit
    /// the rest are dropped. Returns the next free slot, the drops and
    /// whether anything was delivered. Bridge lock held.
    static func copy(_ src: ValeSource, into dst: RingView, n dn: UInt32, at: UInt32, free: UInt32, hdrLen: Int,
                     senderHdrLen: Int, unicastTo: Int?, broadcast wantBroadcast: Bool,
                     _ br: ValeBridge) -> (tail: UInt32, drops: UInt64, delivered: Bool) {
        let region = src.region, n = src.n, sring = src.ring
        let bufSize = region.bufferSize
        let sameHeader = hdrLen == senderHdrLen
        var tail = at, free = free
        var drops: UInt64 = 0
        var delivered = false, full = false
        for fr in br.frames {
            guard (unicastTo != nil && fr.dst == unicastTo!) || (wantBroadcast && fr.dst == broadcast) else { continue }
            // Fragments out: all of them, or (headers differ) those from the
            // payload's slot on, the first behind the new header.
            let skip = sameHeader ? 0 : Int(RingIndex.distance(fr.first, fr.payloadSlot, n))
            let need = fr.slots - skip
            if full || UInt32(need) > free {
                full = true
                drops += 1
                continue
            }
            // Every destination buffer must be one (a receiver may have swapped junk in).
            var d = tail, ok = true
            for _ in 0 ..< need {
                if !region.isValidBuffer(dst.slot(d).bufIdx) { ok = false }
                d = RingIndex.next(d, dn)
            }
            guard ok else {
                drops += 1
                continue
            }
            var s = sameHeader ? fr.first : fr.payloadSlot
            let rfrags = UInt16(truncatingIfNeeded: min(need, 255)) << 8
            for f in 0 ..< need {
                let ss = sring.slot(s), ds = dst.slot(tail)
                let from = region.buffer(sourceBuffer(ss.bufIdx, region))
                let to = region.buffer(ds.bufIdx)
                // Each length is read once: the client may rewrite its slots meanwhile.
                var len = fragmentLength(ss.len, bufSize)
                if f == 0 && !sameHeader {
                    to.initializeMemory(as: UInt8.self, repeating: 0, count: hdrLen)
                    let body = min(max(len - fr.payloadOffset, 0), bufSize - hdrLen)
                    (to + hdrLen).copyMemory(from: from + fr.payloadOffset, byteCount: body)
                    len = hdrLen + body
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
        return (tail, drops, delivered)
    }

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
