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

public final class ValePort: Port, ValeMember, @unchecked Sendable {
    static let maxRings = 16, maxSlots = 4096

    public let name: String
    public let kind = PortKind.vale
    public let geometry: PortGeometry
    public var backendName: String { "vale" }
    unowned let switches: ValeSwitches
    let bridge: ValeBridge
    /// Port number in the bridge (set when it joins).
    var number = 0
    var kindName: String { "ephemeral" }
    var deliveryRings: Int { rxQueues.count }
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
        let src = ValeSource(ring: t.ring, n: t.numSlots, index: t.index, region: t.region)
        let refused = ValeForwarder.forward(src, from: t.hwcur, to: head, sender: self, br)
        if refused > 0 { t.countDrops(refused) }
    }

    /// Copies the frames for this port (unicast to `unicastTo`, and broadcast
    /// ones if asked) into its RX ring `r`; what does not fit is dropped there.
    func deliver(_ src: ValeSource, ring r: Int, unicastTo: Int?, broadcast: Bool, _ br: ValeBridge) {
        let q = rxQueues[r]
        let dk = rxKrings[r]
        var drops: UInt64 = 0
        var delivered = false
        q.lock.withLock {
            guard q.open else { return }   // nobody has this RX ring bound (§11.2 step 5)
            let dn = dk.numSlots
            let free = RingIndex.distance(q.tail, RingIndex.prev(q.released, dn), dn)
            let (tail, d, any) = ValeForwarder.copy(src, into: dk.ring, n: dn, at: q.tail, free: free, hdrLen: hdrLen,
                                                    senderHdrLen: br.senderHdrLen, unicastTo: unicastTo,
                                                    broadcast: broadcast, br)
            q.tail = tail
            drops = d
            delivered = any
        }
        if drops > 0 { dk.countDrops(drops) }
        if delivered { br.wake.append(dk) }
    }
}
