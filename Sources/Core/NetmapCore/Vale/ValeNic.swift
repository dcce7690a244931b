// ValeNic: a network interface attached to a VALE switch (VALE_ATTACH,
// §11.3). The daemon registers the NIC's rings itself, through a Session of
// its own (NR_REG_ALL_NIC), so the interface backend (AF_XDP, AF_PACKET)
// needs nothing new: the NIC is simply a registered port whose "program" is
// the switch. While attached the NIC belongs to the switch: any other
// registration of it is EBUSY.
//
// Frames the NIC receives enter the switch as if the NIC's switch port had
// sent them: the backend's wake-up of an RX ring (its event thread, as
// netmap's receive interrupt) runs the pump, which syncs the RX rings and
// forwards what arrived. Frames the switch sends to the NIC are copied into
// its TX ring (same ring index rule) and pushed with the NIC's txsync,
// reclaiming first when the ring is short of room.

import Synchronization

final class ValeNic: ValeMember, RingWaiter, @unchecked Sendable {
    let name: String
    let bridge: ValeBridge
    var number = 0
    var hdrLen: Int { 0 }
    var lastSourceMAC: UInt64 = ~0
    let memId: UInt16
    var ownsMemId: Bool { false }
    var kindName: String { kindLabel }
    let session: Session
    let adapter: PortAdapter
    let tx: [Kring]
    let rx: [Kring]
    var deliveryRings: Int { tx.count }

    private let pending = Atomic<Bool>(false)
    private let pumpLock = Lock()
    let detached = Atomic<Bool>(false)
    private var wake: [Kring] = []

    /// The port `valeX:IF^` of the NIC's host rings (NR_REG_NIC_SW), which
    /// shares this one's registration; nil for that port itself.
    var hostPort: ValeNic?
    var kindLabel = "nic"

    /// The switch port for `b`'s NIC rings (host: false) or host rings.
    init(name: String, bridge: ValeBridge, session: Session, binding b: Binding, host: Bool = false) {
        self.name = name
        self.bridge = bridge
        self.session = session
        adapter = b.adapter
        memId = b.adapter.memId
        tx = b.tx.filter { $0.isHost == host }
        rx = b.rx.filter { $0.isHost == host }
        if host { kindLabel = "host" }
    }

    /// Starts taking the NIC's frames (after joining the bridge).
    func start() {
        for k in rx { k.addWaiter(self) }
        ringMayBeReady()
    }

    /// Stops the pump (the caller then releases the session).
    func stop() {
        detached.store(true, ordering: .releasing)
        for k in rx { k.removeWaiter(self) }
        pumpLock.withLock {}   // a pass in progress ends first
    }

    // MARK: NIC -> switch

    func ringMayBeReady() {
        pending.store(true, ordering: .releasing)
        while true {
            let ran: Void? = pumpLock.withLockIfAvailable {
                while pending.exchange(false, ordering: .acquiringAndReleasing) {
                    if detached.load(ordering: .acquiring) { return }
                    var rounds = 0
                    while pumpOnce() && rounds < 1000 { rounds += 1 }
                }
            }
            // Busy: the pass holding the lock sees `pending` when it is done.
            if ran == nil || !pending.load(ordering: .acquiring) { return }
        }
    }

    /// One round: sync the RX rings (which releases what the last round
    /// forwarded) and forward what is new. True if anything was.
    private func pumpOnce() -> Bool {
        // Only this port's rings: the NIC port and its host port `IF^` share
        // one registration, and a sync of the other's rings would take
        // frames (from the interface or the TAP) whose wake-up then finds
        // nothing new, leaving them in a ring nobody forwards until the
        // next frame comes.
        _ = session.sync(.rx, only: rx)   // EIO (interface gone): the rings are skipped below
        guard !detached.load(ordering: .acquiring) else { return false }
        var any = false
        for (i, k) in rx.enumerated() {
            k.syncWaiting {
                guard k.hasMemory else { return }
                let ring = k.ring
                let head = ring.loadHead(), tail = ring.loadTail()
                guard head != tail, head < k.numSlots, tail < k.numSlots else { return }
                let src = ValeSource(ring: ring, n: k.numSlots, index: i, region: k.region)
                let br = bridge
                let refused = br.lock.withLock { () -> UInt64 in
                    let r = ValeForwarder.forward(src, from: head, to: tail, sender: self, br)
                    swap(&wake, &br.wake)
                    return r
                }
                if refused > 0 { k.countDrops(refused) }
                ring.storeHead(tail)
                ring.storeCur(tail)
                any = true
            }
            for w in wake { w.wakeup() }
            wake.removeAll(keepingCapacity: true)
        }
        return any
    }

    // MARK: switch -> NIC

    func deliver(_ src: ValeSource, ring r: Int, unicastTo: Int?, broadcast: Bool, _ br: ValeBridge) {
        let k = tx[r]
        let port = adapter.port
        var drops: UInt64 = 0
        k.syncWaiting {
            guard k.hasMemory, !k.stopped.load(ordering: .acquiring) else { return }
            let ring = k.ring
            var head = ring.loadHead()
            guard head < k.numSlots else { return }
            // netmap tries to reclaim TX room before dropping toward a NIC.
            if RingIndex.distance(head, ring.loadTail(), k.numSlots) < UInt32(br.frames.count) { push(k, port) }
            head = ring.loadHead()
            let tail = ring.loadTail()
            guard head < k.numSlots, tail < k.numSlots else { return }
            let (next, d, delivered) = ValeForwarder.copy(src, into: ring, n: k.numSlots, at: head,
                                                          free: RingIndex.distance(head, tail, k.numSlots), hdrLen: 0,
                                                          senderHdrLen: br.senderHdrLen, unicastTo: unicastTo,
                                                          broadcast: broadcast, br)
            drops = d
            guard delivered else { return }
            ring.storeCur(next)
            ring.storeHead(next)
            push(k, port)
        }
        if drops > 0 { k.countDrops(drops) }
    }

    /// The NIC's txsync on `k`, as NIOCTXSYNC runs it (sync lock held).
    private func push(_ k: Kring, _ port: Port) {
        if !k.txPrologue() {
            k.reinit()
        } else if Session.txsync(k, port, .forceReclaim) {
            k.finalize()
        }
    }
}
