// MonitorPort: a monitor of another port (§13; `/r`, `/t`, `/rt`, `/z`).
// Monitors work for every port kind because they hook the sync path that
// every port goes through (Session.txsync / Session.rxsync), never a backend:
//
//   parent TX ring, before the backend's txsync:
//     copy monitors get a copy of each slot the program handed over
//     [cursor … rhead), once: a slot the port leaves for a later sync (a
//     full pipe) is not copied again. Before, not after: once the port has
//     the slots, a pipe's receiver may already be giving them back with
//     other buffers, on another thread.
//   parent TX ring, after the backend's txsync:
//     the zero-copy monitor gets, by buffer swap, each slot the backend gave
//     back [old hwtail+1 … hwtail+1).
//   parent RX ring, before the backend's rxsync:
//     the zero-copy monitor gets, by buffer swap, the slots the program
//     released [hwcur … rhead);
//   parent RX ring, after the backend's rxsync:
//     copy monitors get a copy of each new slot [old hwtail … hwtail).
//
// A monitor has one TX ring (its txsync fails with EIO) and max(parent TX,
// parent RX) RX rings; its RX ring i receives what passes on the parent's
// ring i of the directions it watches. A second zero-copy monitor of a ring
// watches the previous one (a chain, as netmap builds it): a monitor RX ring
// hands the slots its program releases to the next zero-copy monitor, which
// is the same hook (Session.rxsync runs for the monitor's rings too).
//
// Locking: the hook lists of a ring (Kring.copyMonitors, Kring.zeroCopyNext)
// change under the registry lock *and* that ring's sync lock, and are read by
// the syncs under the sync lock. Producers into a monitor ring (the parent's
// TX ring i and RX ring i sync on different threads) serialise on the
// monitor ring's producer lock; the monitor's own rxsync only publishes its
// hwcur, so a monitored sync never waits for the monitor's program.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One RX ring of a monitor, as the monitored rings see it.
public final class MonitorRing: @unchecked Sendable {
    unowned let kring: Kring
    /// The monitor port's name (for status).
    public let monitorName: String
    let zeroCopy: Bool
    private let producer = Lock()
    /// The monitor ring's hwtail as producers publish it.
    let published = Atomic<UInt32>(0)
    /// The monitor ring's hwcur as its rxsync publishes it.
    let released = Atomic<UInt32>(0)
    /// The monitored port left netmap mode: the monitor's syncs fail (EIO).
    let orphaned = Atomic<Bool>(false)

    init(kring: Kring, monitorName: String, zeroCopy: Bool) {
        self.kring = kring
        self.monitorName = monitorName
        self.zeroCopy = zeroCopy
    }

    func reset() {
        published.store(kring.hwtail, ordering: .relaxed)
        released.store(kring.hwcur, ordering: .relaxed)
        orphaned.store(false, ordering: .relaxed)
    }

    /// Moves the slots [first … end) of `src` into this monitor's ring: by
    /// copy for a copy monitor, by buffer swap for a zero-copy one. A full
    /// monitor ring keeps the newest frames, as netmap does; the others are
    /// dropped for the monitor only and counted on its ring. `txmon`: the
    /// slots come from a TX ring (NS_TXMON); nil keeps the source's flag (a
    /// monitor ring passing slots down a zero-copy chain).
    func deliver(from src: Kring, first: UInt32, end: UInt32, txmon: Bool?) {
        let sn = src.numSlots
        guard first < sn, end < sn else { return }
        var count = RingIndex.distance(first, end, sn)
        guard count > 0 else { return }
        let delivered: Bool = producer.withLock {
            let mk = kring
            guard mk.hasMemory, !orphaned.load(ordering: .relaxed) else { return false }
            let n = mk.numSlots
            var i = published.load(ordering: .relaxed)
            let busy = RingIndex.distance(released.load(ordering: .acquiring), i, n)
            let free = n - 1 - min(busy, n - 1)
            var beg = first
            var dropped: UInt64 = 0
            if free < count {
                dropped += UInt64(count - free)
                beg = RingIndex.add(beg, count - free, sn)
                count = free
            }
            guard count > 0 else {
                mk.countDrops(dropped)
                return false
            }
            let region = mk.region, size = region.bufferSize
            let sr = src.ring, mr = mk.ring
            for _ in 0 ..< count {
                let s = sr.slot(beg), ms = mr.slot(i)
                let sflags = s.flags
                let flags: UInt16 = switch txmon {
                case .some(true): sflags | SlotFlag.txMon
                case .some(false): sflags & ~SlotFlag.txMon
                case .none: sflags
                }
                let mb = ms.bufIdx
                if zeroCopy {
                    let sb = s.bufIdx
                    // Only real buffers change hands, so that the pool stays whole
                    // whatever a program wrote into its slots.
                    if region.isValidBuffer(sb) && region.isValidBuffer(mb) {
                        let slen = s.len
                        ms.bufIdx = sb
                        s.bufIdx = mb
                        s.len = ms.len
                        ms.len = slen
                        s.flags = sflags | SlotFlag.bufChanged
                    } else {
                        ms.len = 0
                        dropped += 1
                    }
                } else if region.isValidBuffer(mb) {
                    // A TX slot goes out as buffer 0 / cut to the buffer size
                    // when it names no buffer / is too long (§4.6): copy that.
                    let sb = s.bufIdx
                    let len = min(Int(s.len), size)
                    region.buffer(mb).copyMemory(from: region.buffer(Int(sb) < region.bufferCount ? sb : 0), byteCount: len)
                    ms.len = UInt16(len)
                } else {
                    ms.len = 0
                    dropped += 1
                }
                ms.flags = flags & ~SlotFlag.bufChanged | (zeroCopy ? SlotFlag.bufChanged : 0)
                beg = RingIndex.next(beg, sn)
                i = RingIndex.next(i, n)
            }
            if dropped > 0 { mk.countDrops(dropped) }
            published.store(i, ordering: .releasing)
            return true
        }
        if delivered { kring.wakeup() }
    }
}

// MARK: the hooks, called by Session's sync paths under the ring's sync lock

extension Kring {
    /// Before the backend txsync: the slots handed over since the last time
    /// go to the copy monitors. The cursor is brought back to hwcur when it
    /// is not in [hwcur … rhead] (a fresh ring, a ring re-initialised).
    @inline(__always)
    func monitorsBeforeTxsync() {
        guard hwcur < numSlots, rhead < numSlots else { return }
        if !RingIndex.within(monitorTxCursor, hwcur, rhead) { monitorTxCursor = hwcur }
        guard monitorTxCursor != rhead else { return }
        for m in copyMonitors { m.deliver(from: self, first: monitorTxCursor, end: rhead, txmon: true) }
        monitorTxCursor = rhead
    }

    /// After a successful backend txsync that moved hwtail from `reclaimedFrom`.
    @inline(__always)
    func monitorsAfterTxsync(reclaimedFrom: UInt32) {
        if let z = zeroCopyNext {
            z.deliver(from: self, first: RingIndex.next(reclaimedFrom, numSlots),
                      end: RingIndex.next(hwtail, numSlots), txmon: true)
        }
    }

    /// Before the backend rxsync takes back the released slots [hwcur … rhead).
    @inline(__always)
    func monitorsBeforeRxsync() {
        guard let z = zeroCopyNext, hwcur < numSlots, rhead < numSlots, hwtail < numSlots else { return }
        let count = min(RingIndex.distance(hwcur, rhead, numSlots), RingIndex.distance(hwcur, hwtail, numSlots))
        // A monitor's own ring passes on what its program released, flags and all.
        z.deliver(from: self, first: hwcur, end: RingIndex.add(hwcur, count, numSlots),
                  txmon: backendState is MonitorRing ? nil : false)
    }

    /// After a successful backend rxsync that moved hwtail from `receivedFrom`.
    @inline(__always)
    func monitorsAfterRxsync(receivedFrom: UInt32) {
        for m in copyMonitors { m.deliver(from: self, first: receivedFrom, end: hwtail, txmon: false) }
    }

    /// The monitors hooked on this ring, for status (registry lock).
    public var monitorNames: [String] {
        var names = copyMonitors.map(\.monitorName)
        var z = zeroCopyNext
        while let m = z {
            names.append(m.monitorName)
            z = m.kring.zeroCopyNext
        }
        return names
    }
}

// MARK: the port

public final class MonitorPort: Port, @unchecked Sendable {
    public let name: String
    public let kind = PortKind.monitor
    public let geometry: PortGeometry
    public var backendName: String { zeroCopy ? "zero-copy monitor" : "copy monitor" }
    /// The monitored port.
    public let parent: PortAdapter
    let watchTX: Bool, watchRX: Bool, zeroCopy: Bool

    /// The largest monitor ring (netmap's NM_MONITOR_MAXSLOTS).
    public static let maxSlots = 4096

    /// What each of our bound RX rings is hooked on (registry lock).
    private var hooks: [(ring: MonitorRing, parents: [Kring])] = []

    init(parent: PortAdapter, flags: UInt64, hints: PortHints, serial: Int) {
        self.parent = parent
        zeroCopy = flags & RegisterFlag.zcopyMon != 0
        watchTX = zeroCopy || flags & RegisterFlag.monitorTX != 0
        watchRX = zeroCopy || flags & RegisterFlag.monitorRX != 0
        name = "\(parent.name)/\(zeroCopy ? "z" : "")\(watchRX ? "r" : "")\(watchTX ? "t" : "")#\(serial)"
        let pg = parent.geometry
        // Slots: the request's, else the parent's; at most 4096 (§13).
        func slots(_ asked: Int, _ parents: Int) -> Int { asked < 1 ? parents : min(asked, Self.maxSlots) }
        let host = pg.hasHostRings ? 1 : 0
        geometry = PortGeometry(txRings: 1, rxRings: max(pg.txRings, pg.rxRings),
                                txSlots: slots(hints.txSlots, pg.txSlots), rxSlots: slots(hints.rxSlots, pg.rxSlots),
                                hostTxRings: host, hostRxRings: host)
    }

    /// The parent's ring that monitor RX ring `k` watches in direction `d`:
    /// NIC ring i for our ring i, host ring j for our host ring j.
    private func parentRing(for k: Kring, _ d: RingDirection) -> Kring? {
        let rings = parent.krings(d)
        let nic = d == .tx ? parent.geometry.txRings : parent.geometry.rxRings
        let i = k.isHost ? nic + (k.index - geometry.rxRings) : k.index
        guard k.isHost ? i < rings.count : i < nic else { return nil }
        return rings[i]
    }

    public func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError) {
        for k in rings where k.direction == .rx {
            if on {
                let m = MonitorRing(kring: k, monitorName: name, zeroCopy: zeroCopy)
                m.reset()
                k.backendState = m
                var parents = [Kring]()
                if watchTX, let p = parentRing(for: k, .tx) { parents.append(p) }
                if watchRX, let p = parentRing(for: k, .rx) { parents.append(p) }
                for p in parents { attach(m, to: p) }
                hooks.append((m, parents))
            } else if let i = hooks.firstIndex(where: { $0.ring.kring === k }) {
                let h = hooks.remove(at: i)
                detach(h.ring, from: h.parents)
            }
        }
    }

    /// The monitored port left netmap mode: netmap forgets the monitor,
    /// whose syncs fail from then on (registry lock).
    func orphan() {
        for h in hooks {
            detach(h.ring, from: h.parents)
            h.ring.orphaned.store(true, ordering: .releasing)
            h.ring.kring.wakeup()
        }
    }

    private func attach(_ m: MonitorRing, to p: Kring) {
        if !zeroCopy {
            p.syncLock.withLock {
                // A first copy monitor starts with what is handed over from now on.
                if p.copyMonitors.isEmpty { p.monitorTxCursor = p.hwcur }
                p.copyMonitors.append(m)
            }
            return
        }
        // A second zero-copy monitor watches the last one of the chain.
        var t = p
        while let n = t.zeroCopyNext { t = n.kring }
        if t === m.kring { return }   // reached through the other direction already
        t.syncLock.withLock { t.zeroCopyNext = m }
    }

    private func detach(_ m: MonitorRing, from parents: [Kring]) {
        for p in parents {
            if !zeroCopy {
                p.syncLock.withLock { p.copyMonitors.removeAll { $0 === m } }
                continue
            }
            var t = p
            while let n = t.zeroCopyNext {
                if n === m {
                    let next = m.kring.zeroCopyNext
                    t.syncLock.withLock { t.zeroCopyNext = next }
                    break
                }
                t = n.kring
            }
        }
        if zeroCopy { m.kring.syncLock.withLock { m.kring.zeroCopyNext = nil } }
    }

    // MARK: sync

    /// Monitors cannot inject packets (§13).
    public func txsync(_ kring: Kring, flags: SyncFlags) -> Int32 { NetmapError.EIO.errno }

    public func rxsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        guard let m = k.backendState as? MonitorRing else { return NetmapError.EIO.errno }
        if m.orphaned.load(ordering: .acquiring) { return NetmapError.EIO.errno }
        let n = k.numSlots
        let count = min(RingIndex.distance(k.hwcur, k.rhead, n), RingIndex.distance(k.hwcur, k.hwtail, n))
        k.hwcur = RingIndex.add(k.hwcur, count, n)
        m.released.store(k.hwcur, ordering: .releasing)
        k.hwtail = m.published.load(ordering: .acquiring)
        return 0
    }
}
