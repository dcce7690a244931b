// PipePort: one endpoint of a netmap pipe (§12), a zero-copy, back-pressured
// FIFO between two files in the same region. Master TX ring i feeds slave RX
// ring i and slave TX ring i feeds master RX ring i. The two rings of such a
// link have the same size and slot k of one corresponds to slot k of the
// other: txsync copies slot descriptors (buffer index, length, flags) into
// the peer RX ring, rxsync copies released descriptors back, so buffers
// travel by index and no byte is copied.
//
// Each side publishes one index to the other through the link, with
// release/acquire ordering after the slot copies; neither touches the other's
// kring state, so the two sides never need a common lock.

import Synchronization

/// The state two linked rings share.
final class PipeLink: @unchecked Sendable {
    unowned let tx: Kring
    unowned let rx: Kring
    /// RX hwtail as the sender publishes it: the end of the last complete frame.
    let deliveredTail: Atomic<UInt32>
    /// TX hwtail as the receiver publishes it: prev(RX hwcur).
    let reclaimedTail: Atomic<UInt32>
    var freed = false

    init(tx: Kring, rx: Kring) {
        self.tx = tx
        self.rx = rx
        deliveredTail = Atomic(0)
        reclaimedTail = Atomic(tx.numSlots - 1)
    }
}

public final class PipePort: Port, @unchecked Sendable {
    public let name: String
    public let kind = PortKind.pipe
    public let geometry: PortGeometry
    public var ringMemoryPolicy: RingMemoryPolicy { .ownedByPort }

    init(name: String, geometry: PortGeometry) {
        self.name = name
        self.geometry = geometry
    }

    /// Both endpoints, linked, with ring memory (§12 "Creation").
    static func makePair(master mName: String, slave sName: String, geometry g: PortGeometry,
                         region: MemoryRegion) throws(NetmapError) -> (PortAdapter, PortAdapter) {
        let sg = PortGeometry(txRings: g.rxRings, rxRings: g.txRings, txSlots: g.rxSlots, rxSlots: g.txSlots)
        guard max(g.txSlots, g.rxSlots) <= region.geometry.maxSlotsPerRing else { throw .ENOMEM }
        let m = PortAdapter(port: PipePort(name: mName, geometry: g), region: region)
        let s = PortAdapter(port: PipePort(name: sName, geometry: sg), region: region)
        var links = [PipeLink]()
        do {
            for (txs, rxs) in [(m.txKrings, s.rxKrings), (s.txKrings, m.rxKrings)] {
                for (t, r) in zip(txs, rxs) {
                    let link = try makeLink(tx: t, rx: r, region: region)
                    links.append(link)
                }
            }
        } catch {
            for l in links { freeLink(l, region: region) }
            throw error
        }
        return (m, s)
    }

    private static func makeLink(tx: Kring, rx: Kring, region: MemoryRegion) throws(NetmapError) -> PipeLink {
        let n = Int(tx.numSlots)
        guard let txOff = region.allocateRingObject() else { throw .ENOMEM }
        guard let rxOff = region.allocateRingObject() else {
            region.freeRingObject(at: txOff)
            throw .ENOMEM
        }
        guard let bufs = region.allocateBuffers(n) else {
            region.freeRingObject(at: txOff)
            region.freeRingObject(at: rxOff)
            throw .ENOMEM
        }
        tx.attachMemory(at: txOff, buffers: bufs)
        // The peer ring starts as a copy of the slot array (§12).
        rx.attachMemory(at: rxOff, buffers: bufs)
        let link = PipeLink(tx: tx, rx: rx)
        tx.backendState = link
        rx.backendState = link
        return link
    }

    /// Frees a link's two ring objects and the buffers it owns: for slot k,
    /// the receiver's descriptor while the packet is with the receiver
    /// (k in [RX hwcur … delivered tail)), the sender's otherwise.
    private static func freeLink(_ l: PipeLink, region: MemoryRegion) {
        guard !l.freed else { return }
        l.freed = true
        let n = l.tx.numSlots
        let rxStart = l.rx.hwcur, rxEnd = l.deliveredTail.load(ordering: .acquiring)
        let withReceiver = RingIndex.distance(rxStart, rxEnd, n)
        var owned = [UInt32]()
        if l.tx.hasMemory && l.rx.hasMemory {
            for k in 0 ..< n {
                let atRx = RingIndex.distance(rxStart, k, n) < withReceiver
                owned.append(atRx ? l.rx.ring.slot(k).bufIdx : l.tx.ring.slot(k).bufIdx)
            }
        }
        if let (off, _) = l.tx.detachMemory() { region.freeRingObject(at: off) }
        if let (off, _) = l.rx.detachMemory() { region.freeRingObject(at: off) }
        region.freeBuffers(owned)
        l.tx.backendState = nil
        l.rx.backendState = nil
    }

    public func destroy(adapter: PortAdapter) {
        // Each link has exactly one TX side; freeing from there covers all.
        for t in adapter.txKrings {
            if let l = t.backendState as? PipeLink { Self.freeLink(l, region: adapter.region) }
        }
    }

    // MARK: sync

    public func txsync(_ t: Kring, flags: SyncFlags) -> Int32 {
        guard let l = t.backendState.map({ unsafeDowncast($0, to: PipeLink.self) }) else { return NetmapError.EIO.errno }
        let n = t.numSlots
        let reclaim = l.reclaimedTail.load(ordering: .acquiring)
        // New packets are [hwcur … rhead); the receiver has room for
        // [hwcur … reclaim) (a sane ring never asks for more).
        let count = min(RingIndex.distance(t.hwcur, t.rhead, n), RingIndex.distance(t.hwcur, reclaim, n))
        if count > 0 {
            let txr = t.ring, rxr = l.rx.ring
            var k = t.hwcur
            var lastComplete: UInt32? = nil
            for _ in 0 ..< count {
                let ts = txr.slot(k)
                rxr.slot(k).copy(from: ts)
                ts.flags &= ~SlotFlag.bufChanged
                let next = RingIndex.next(k, n)
                if ts.flags & SlotFlag.moreFrag == 0 { lastComplete = next }
                k = next
            }
            t.hwcur = k
            if let end = lastComplete {
                l.deliveredTail.store(end, ordering: .releasing)
                l.rx.wakeup()
            }
        }
        t.hwtail = l.reclaimedTail.load(ordering: .acquiring)
        return 0
    }

    public func rxsync(_ r: Kring, flags: SyncFlags) -> Int32 {
        guard let l = r.backendState.map({ unsafeDowncast($0, to: PipeLink.self) }) else { return NetmapError.EIO.errno }
        let n = r.numSlots
        // Released slots go back to the sender, descriptors and all, so a
        // buffer the receiver swapped in reaches the sender flagged
        // NS_BUF_CHANGED. Never more than the receiver holds.
        let count = min(RingIndex.distance(r.hwcur, r.rhead, n), RingIndex.distance(r.hwcur, r.hwtail, n))
        if count > 0 {
            let rxr = r.ring, txr = l.tx.ring
            var k = r.hwcur
            for _ in 0 ..< count {
                let rs = rxr.slot(k)
                txr.slot(k).copy(from: rs)
                rs.flags &= ~SlotFlag.bufChanged
                k = RingIndex.next(k, n)
            }
            r.hwcur = k
            l.reclaimedTail.store(RingIndex.prev(k, n), ordering: .releasing)
            l.tx.wakeup()
        }
        r.hwtail = l.deliveredTail.load(ordering: .acquiring)
        return 0
    }
}
