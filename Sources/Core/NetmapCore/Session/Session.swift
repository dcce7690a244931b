// Session: one open file description of /dev/netmap (netmap's netmap_priv_d).
// It holds at most one registration: the port, the TX and RX ring intervals
// it bound, its netmap_if in the region and its poll settings. The front end
// calls ioctl/poll/release; ioctl bytes are decoded in Requests and come back
// here as register/txsync/rxsync. See §2, §5.9, §6, §7.

#if canImport(Glibc)
import Glibc
#endif
import DeviceInterface
import Synchronization

/// A registration request, whichever API carried it (§3.2, §3.4).
public struct RegisterRequest: Sendable, Equatable {
    public var name: String
    public var mode: UInt32
    public var ringid: UInt16
    public var flags: UInt64
    public var hints: PortHints
    public var hostTxRings: Int = 0
    public var hostRxRings: Int = 0
    public var memId: UInt16 = 0
    public var extraBuffers: UInt32 = 0
    /// The thread that asked: its network namespace is where an interface
    /// name is looked up (0: the file's opener).
    public var caller: Int32 = 0

    public init(name: String, mode: UInt32 = RegisterMode.allNIC, ringid: UInt16 = 0, flags: UInt64 = 0,
                hints: PortHints = PortHints(), memId: UInt16 = 0, extraBuffers: UInt32 = 0) {
        self.name = name
        self.mode = mode
        self.ringid = ringid
        self.flags = flags
        self.hints = hints
        self.memId = memId
        self.extraBuffers = extraBuffers
    }
}

/// What a successful registration reports back.
public struct RegisterReply: Sendable, Equatable {
    public var offset: UInt64
    public var memsize: UInt64
    public var geometry: PortGeometry
    public var memId: UInt16
    public var extraBuffers: UInt32
    /// nr_flags as echoed back (a zero-copy monitor adds both directions).
    public var flags: UInt64 = 0
}

/// One file's binding to a port.
final class Binding: @unchecked Sendable {
    let adapter: PortAdapter
    let tx: [Kring]
    let rx: [Kring]
    let flags: UInt64
    /// Push pending TX packets on every poll (unless NR_NO_TX_POLL).
    let txPoll: Bool
    /// Region offset of this file's netmap_if.
    let ifOffset: Int
    let exclusive: Bool

    init(adapter: PortAdapter, tx: [Kring], rx: [Kring], flags: UInt64, ifOffset: Int) {
        self.adapter = adapter
        self.tx = tx
        self.rx = rx
        self.flags = flags
        txPoll = flags & RegisterFlag.noTxPoll == 0
        self.ifOffset = ifOffset
        exclusive = flags & RegisterFlag.exclusive != 0
    }
}

public final class Session: DeviceFile, RingWaiter, @unchecked Sendable {
    public let client: ClientIdentity
    let engine: NetmapEngine
    var registry: Registry { engine.registry }
    var region: MemoryRegion { engine.region }

    private let lock = Lock()
    private var binding: Binding?
    private var released = false
    /// Wakers of pollers that may sleep on this file (several threads or
    /// forked processes may poll one file). Same-key wakers share an entry
    /// (the newest is kept) that counts the polls holding it; keyless ones
    /// are capped so an abandoned poller cannot grow the list.
    private struct Armed {
        var waker: PollWaker
        /// Polls that armed this entry and have not given it back: those
        /// that found nothing ready may be asleep.
        var holds: Int
        /// Identifies this entry, so that a poll gives its hold back to the
        /// entry it armed, not to a later one of the same key.
        let ticket: UInt64
    }
    private struct ArmedList {
        var entries: [Armed] = []
        var nextTicket: UInt64 = 0
    }
    private let armedWakers = Lock.Protected(ArmedList())
    static let maxArmedWakers = 64
    /// Whether a client asked where the region is (the shim does, before mmap).
    public let askedForRegion = Atomic<Bool>(false)

    init(engine: NetmapEngine, client: ClientIdentity) {
        self.engine = engine
        self.client = client
    }

    var currentBinding: Binding? { lock.withLock { binding } }
    public var isRegistered: Bool { currentBinding != nil }
    /// The registered port's name, for logs and status.
    public var portName: String? { currentBinding?.adapter.name }

    // MARK: DeviceFile

    public func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory) -> IoctlOutcome {
        Requests.handle(command: command, argument: argument, memory: memory, session: self, caller: client.pid)
    }

    public func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory, caller: Int32) -> IoctlOutcome {
        Requests.handle(command: command, argument: argument, memory: memory, session: self,
                        caller: caller > 0 ? caller : client.pid)
    }

    public func mmapCheck(offset: UInt64, length: UInt64) -> Int32 {
        guard isRegistered else { return NetmapError.EINVAL.errno }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= UInt64(region.size) else { return NetmapError.EINVAL.errno }
        return 0
    }

    public func release() {
        let b: Binding? = lock.withLock {
            guard !released else { return nil }
            released = true
            let b = binding
            binding = nil
            return b
        }
        armedWakers.withLock { $0.entries.removeAll() }
        engine.sessionReleased(self)
        guard let b else { return }
        registry.lock.withLock { unregisterLocked(b) }
        engine.log.debug("pid \(client.pid): released \(b.adapter.name)")
    }

    // MARK: registration (§3.4 order of operations)

    public func register(_ req: RegisterRequest) throws(NetmapError) -> RegisterReply {
        try lock.withLock { () throws(NetmapError) -> RegisterReply in
            guard binding == nil, !released else { throw .EBUSY }
            let (b, reply) = try registry.lock.withLock { () throws(NetmapError) in try registerLocked(req) }
            binding = b
            return reply
        }
    }

    /// Undoes a registration that succeeded (a leftover option, §3.4 step 19).
    func undoRegistration() {
        let b: Binding? = lock.withLock {
            let b = binding
            binding = nil
            return b
        }
        if let b { registry.lock.withLock { unregisterLocked(b) } }
    }

    /// §3.4's order: the file's own binding (EBUSY, checked by the caller),
    /// the deprecated pipe modes, the memory id, the port (a missing one is
    /// ENXIO whatever the mode), and only then the mode and ring id.
    private func registerLocked(_ req: RegisterRequest) throws(NetmapError) -> (Binding, RegisterReply) {
        guard req.mode != RegisterMode.pipeMaster, req.mode != RegisterMode.pipeSlave else { throw .EINVAL }
        guard registry.memIds.exists(req.memId) else { throw .EINVAL }
        if req.mode == RegisterMode.null && req.memId == 0 { throw .EINVAL }
        if req.mode != RegisterMode.null && req.flags & RegisterFlag.monitorAny != 0 {
            return try registerMonitorLocked(req)
        }
        var hints = req.hints
        hints.memId = req.memId
        let adapter = try registry.resolve(name: req.name, mode: req.mode, hints: hints,
                                          caller: req.caller > 0 ? req.caller : client.pid)
        do throws(NetmapError) {
            // §3.4 step 5: a NIC attached to a VALE switch belongs to it.
            if adapter.ownedBySwitch { throw NetmapError.EBUSY }
            // §3.4 step 6: a port with a virtio-net header wants NR_ACCEPT_VNET_HDR.
            if adapter.port.virtioHeaderLength != 0 && req.flags & RegisterFlag.acceptVnetHdr == 0 { throw NetmapError.EIO }
            return try bindLocked(adapter, req)
        } catch {
            registry.dropIfUnused(adapter)
            throw error
        }
    }

    /// §8.1 step 2, §13: a monitor of the port the same request names
    /// without the monitor flags. That port must be in netmap mode (EINVAL)
    /// and the mode and ring id must be good for it (EINVAL); a zero-copy
    /// monitor watches both directions and says so in the flags it echoes.
    private func registerMonitorLocked(_ req: RegisterRequest) throws(NetmapError) -> (Binding, RegisterReply) {
        var req = req
        if req.flags & RegisterFlag.zcopyMon != 0 { req.flags |= RegisterFlag.monitorTX | RegisterFlag.monitorRX }
        let parent = try registry.resolve(name: req.name, mode: req.mode, hints: req.hints,
                                          caller: req.caller > 0 ? req.caller : client.pid)
        let monitor: PortAdapter
        do throws(NetmapError) {
            guard parent.sessions > 0 else {
                engine.log.info("pid \(client.pid): monitor of \(parent.name): the port is not in netmap mode")
                throw .EINVAL
            }
            _ = try Self.intervals(mode: req.mode, ringid: req.ringid, flags: req.flags & ~RegisterFlag.monitorAny,
                                   geometry: parent.geometry, kind: parent.port.kind)
            monitor = registry.makeMonitor(of: parent, flags: req.flags, hints: req.hints)
        } catch {
            registry.dropIfUnused(parent)
            throw error
        }
        do {
            var (b, reply) = try bindLocked(monitor, req)
            reply.flags = req.flags
            return (b, reply)
        } catch {
            registry.dropIfUnused(monitor)
            throw error
        }
    }

    /// §7: the TX and RX kring intervals a mode selects. `ringid` is
    /// compared whole: NIOCCTRL passes it raw, the legacy API masks it first.
    static func intervals(mode: UInt32, ringid: UInt16, flags: UInt64, geometry g: PortGeometry,
                          kind: PortKind) throws(NetmapError) -> (tx: Range<Int>, rx: Range<Int>) {
        let nt = g.txRings, nr = g.rxRings, ht = g.hostTxRings, hr = g.hostRxRings
        let i = Int(ringid)
        var tx: Range<Int>, rx: Range<Int>
        if kind == .pipe && mode != RegisterMode.allNIC && mode != RegisterMode.oneNIC { throw .EINVAL }
        switch mode {
        case RegisterMode.allNIC:
            (tx, rx) = (0 ..< nt, 0 ..< nr)
        case RegisterMode.sw:
            guard g.hasHostRings else { throw .EINVAL }
            (tx, rx) = (nt ..< nt + ht, nr ..< nr + hr)
        case RegisterMode.nicSW:
            guard g.hasHostRings else { throw .EINVAL }
            (tx, rx) = (0 ..< nt + ht, 0 ..< nr + hr)
        case RegisterMode.oneNIC:
            guard i < max(nt, nr) else { throw .EINVAL }
            tx = i < nt ? i ..< i + 1 : 0 ..< min(1, nt)
            rx = i < nr ? i ..< i + 1 : 0 ..< min(1, nr)
        case RegisterMode.oneSW:
            guard g.hasHostRings, i < max(ht, hr) else { throw .EINVAL }
            let it = i < ht ? i : 0, ir = i < hr ? i : 0
            tx = ht > 0 ? nt + it ..< nt + it + 1 : nt ..< nt
            rx = hr > 0 ? nr + ir ..< nr + ir + 1 : nr ..< nr
        case RegisterMode.null:
            guard kind == .null else { throw .EINVAL }
            (tx, rx) = (0 ..< nt, 0 ..< nr)
        default:
            throw .EINVAL
        }
        if flags & RegisterFlag.txRingsOnly != 0 { rx = 0 ..< 0 }
        if flags & RegisterFlag.rxRingsOnly != 0 { tx = 0 ..< 0 }
        return (tx, rx)
    }

    private func bindLocked(_ adapter: PortAdapter, _ req: RegisterRequest) throws(NetmapError) -> (Binding, RegisterReply) {
        let g = adapter.geometry
        let (txr, rxr) = try Self.intervals(mode: req.mode, ringid: req.ringid, flags: req.flags,
                                            geometry: g, kind: adapter.port.kind)
        let tx = Array(adapter.txKrings[txr]), rx = Array(adapter.rxKrings[rxr])
        let all = rx + tx
        if adapter.sessions == 0 {
            try adapter.port.checkFirstRegistration(bindsRX: !rx.isEmpty, bufferSize: region.bufferSize)
        }
        let exclusive = req.flags & RegisterFlag.exclusive != 0
        for k in all where k.exclusiveOwner != nil || (exclusive && k.users > 0) { throw .EBUSY }

        // Ring memory for rings nobody had bound (RX first, as netmap does).
        let fresh = all.filter { $0.users == 0 }
        var created = [Kring]()
        if adapter.port.ringMemoryPolicy == .perBinding {
            for k in fresh where !k.hasMemory {
                do { try adapter.createRingMemory(k) } catch {
                    for c in created { adapter.destroyRingMemory(c) }
                    throw error
                }
                created.append(k)
            }
        }
        func undoMemory() { for c in created { adapter.destroyRingMemory(c) } }

        // This file's netmap_if (§4.3).
        let hostTx = max(1, g.hostTxRings), hostRx = max(1, g.hostRxRings)
        let nTx = g.txRings + hostTx, nRx = g.rxRings + hostRx
        let ifBytes = Layout.ifRingOfs + 8 * (nTx + nRx)
        guard ifBytes <= region.geometry.ifPool.objectSize, let ifOff = region.allocateIfObject() else {
            undoMemory()
            throw .ENOMEM
        }
        for k in fresh {
            k.stopped.store(false, ordering: .relaxed)
            k.linkDown.store(false, ordering: .relaxed)
        }
        do { if !fresh.isEmpty { try adapter.port.setNetmapMode(true, rings: fresh) } } catch {
            region.freeIfObject(at: ifOff)
            undoMemory()
            throw error
        }
        for k in all {
            k.users += 1
            if exclusive { k.exclusiveOwner = ObjectIdentifier(self) }
            k.addWaiter(self)
        }
        adapter.sessions += 1
        registry.sessionRegistered()

        let nifp = region.base + ifOff
        nifp.initializeMemory(as: UInt8.self, repeating: 0, count: ifBytes)
        let nameBytes = Array(adapter.name.utf8.prefix(15))
        for (j, c) in nameBytes.enumerated() { nifp.storeBytes(of: c, toByteOffset: Layout.ifName + j, as: UInt8.self) }
        nifp.storeBytes(of: UInt32(g.txRings), toByteOffset: Layout.ifTxRings, as: UInt32.self)
        nifp.storeBytes(of: UInt32(g.rxRings), toByteOffset: Layout.ifRxRings, as: UInt32.self)
        nifp.storeBytes(of: UInt32(hostTx), toByteOffset: Layout.ifHostTxRings, as: UInt32.self)
        nifp.storeBytes(of: UInt32(hostRx), toByteOffset: Layout.ifHostRxRings, as: UInt32.self)
        for k in tx { nifp.storeBytes(of: Int64(k.ringOffset! - ifOff), toByteOffset: Layout.ifRingOfs + 8 * k.index, as: Int64.self) }
        for k in rx { nifp.storeBytes(of: Int64(k.ringOffset! - ifOff), toByteOffset: Layout.ifRingOfs + 8 * (nTx + k.index), as: Int64.self) }

        // Extra buffers, chained through their first 4 bytes, newest first (§4.7).
        let extras = region.allocateBuffers(upTo: Int(req.extraBuffers))
        var head: UInt32 = 0
        for b in extras {
            region.buffer(b).storeBytes(of: head, as: UInt32.self)
            head = b
        }
        nifp.storeBytes(of: head, toByteOffset: Layout.ifBufsHead, as: UInt32.self)

        let b = Binding(adapter: adapter, tx: tx, rx: rx, flags: req.flags, ifOffset: ifOff)
        engine.log.debug("pid \(client.pid): registered \(adapter.name) mode \(req.mode) ring \(req.ringid): TX \(txr) RX \(rxr), \(extras.count) extra buffers")
        let reply = RegisterReply(offset: UInt64(ifOff), memsize: UInt64(region.size), geometry: g,
                                  memId: adapter.memId, extraBuffers: UInt32(extras.count), flags: req.flags)
        return (b, reply)
    }

    private func unregisterLocked(_ b: Binding) {
        let a = b.adapter
        let nifp = region.base + b.ifOffset
        // Extra buffers: walk the list as the client left it (§4.7), zeroing
        // each link. Like netmap, stop at the first index that is no buffer
        // or is free already (which also ends a cycle: every step frees
        // one); and stop at one a ring slot holds, which netmap would free:
        // handed out again, it would be written under that ring's feet.
        var idx = nifp.load(fromByteOffset: Layout.ifBufsHead, as: UInt32.self)
        if region.isValidBuffer(idx) {
            let held = registry.buffersHeldByRings()
            while region.isValidBuffer(idx) && !held.contains(idx) && !region.isFreeBuffer(idx) {
                let p = region.buffer(idx)
                let next = p.load(as: UInt32.self)
                p.storeBytes(of: 0, as: UInt32.self)
                region.freeBuffers(CollectionOfOne(idx))
                idx = next
            }
            if region.isValidBuffer(idx) && !region.isFreeBuffer(idx) {
                engine.log.info("pid \(client.pid): \(a.name): the extra-buffer list runs into buffer \(idx), which a ring holds: the rest stays allocated until the last client goes")
            }
        }
        nifp.storeBytes(of: 0, toByteOffset: Layout.ifBufsHead, as: UInt32.self)
        region.freeIfObject(at: b.ifOffset)

        var last = [Kring]()
        for k in b.rx + b.tx {
            k.removeWaiter(self)
            k.users -= 1
            if k.exclusiveOwner == ObjectIdentifier(self) { k.exclusiveOwner = nil }
            if k.users == 0 { last.append(k) }
        }
        if !last.isEmpty { try? a.port.setNetmapMode(false, rings: last) }
        if a.port.ringMemoryPolicy == .perBinding {
            for k in last {
                // Wait out a sync still running on the ring before its memory goes.
                k.syncLock.withLock { a.destroyRingMemory(k) }
            }
        }
        a.sessions -= 1
        if a.sessions == 0 { registry.leftNetmapMode(a) }
        registry.dropIfUnused(a)
        registry.sessionReleased()
    }

    // MARK: sync ioctls (§5.9)

    /// NIOCTXSYNC / NIOCRXSYNC. Returns 0, ENXIO (unbound) or EIO (a ring's
    /// interface is gone). A ring whose link is down is waited for.
    /// `only`: a subset of the bound rings to sync instead of all of them
    /// (a VALE switch port that shares this registration with another: each
    /// must sync only its own rings, or it would take frames the other's
    /// wake-up never hears of).
    public func sync(_ d: RingDirection, only: [Kring]? = nil) -> Int32 {
        guard let b = currentBinding else { return NetmapError.ENXIO.errno }
        var result: Int32 = 0
        let port = b.adapter.port
        var mayWait = true   // one wait per call: the rings share the link
        for k in only ?? (d == .tx ? b.tx : b.rx) {
            if k.stopped.load(ordering: .acquiring) {
                result = NetmapError.EIO.errno
                continue
            }
            if k.linkDown.load(ordering: .acquiring) {
                guard mayWait else { continue }
                switch k.waitForLink() {
                case .up: break
                case .down:
                    mayWait = false
                    continue
                case .gone:
                    result = NetmapError.EIO.errno
                    continue
                }
            }
            // An explicit sync waits for the ring rather than skipping it:
            // the ring may be held by something that is not a sync (a
            // release reading which buffers the rings hold), and skipping
            // would lose this sync's work for good (no later event redoes
            // it, unlike a poll, which is woken again).
            k.syncWaiting {
                guard k.hasMemory else { return }
                if d == .tx {
                    if !k.txPrologue() {
                        k.reinit()
                    } else if Self.txsync(k, port, .forceReclaim) {
                        k.finalize()
                    }
                } else {
                    if !k.rxPrologue() { k.reinit() }
                    if Self.rxsync(k, port, .forceRead) { k.finalize() }
                    k.stampTime()
                }
            }
        }
        return result
    }

    /// The backend's txsync, counting what it took; true on success.
    @inline(__always)
    static func txsync(_ k: Kring, _ port: Port, _ flags: SyncFlags) -> Bool {
        let before = k.hwcur, tailBefore = k.hwtail
        // Monitor hooks (every port kind passes here): what the program hands
        // over to copy monitors, what comes back to a zero-copy one.
        if !k.copyMonitors.isEmpty { k.monitorsBeforeTxsync() }
        guard port.txsync(k, flags: flags) == 0 else { return false }
        k.countSlots(from: before, to: k.hwcur, repaired: port.kind == .interface)
        if k.zeroCopyNext != nil { k.monitorsAfterTxsync(reclaimedFrom: tailBefore) }
        return true
    }

    /// The backend's rxsync, counting what it delivered; true on success.
    @inline(__always)
    static func rxsync(_ k: Kring, _ port: Port, _ flags: SyncFlags) -> Bool {
        let before = k.hwtail
        // Monitor hooks (every port kind passes here): released slots to a
        // zero-copy monitor before the backend takes them back, new ones to
        // copy monitors after.
        if k.zeroCopyNext != nil { k.monitorsBeforeRxsync() }
        guard port.rxsync(k, flags: flags) == 0 else { return false }
        k.countSlots(from: before, to: k.hwtail)
        if !k.copyMonitors.isEmpty { k.monitorsAfterRxsync(receivedFrom: before) }
        return true
    }

    // MARK: poll (§6)

    public func poll(events: Int16, waker: PollWaker?) -> Int16 {
        guard let b = currentBinding else { return Int16(POLLERR) }
        // Armed before looking, so that a sync of the peer between the look
        // and the sleep still finds the waker.
        let ticket = waker.map { arm($0) }
        let port = b.adapter.port
        var revents: Int16 = 0
        var wantTX = events & Int16(POLLOUT | POLLWRNORM)
        var wantRX = events & Int16(POLLIN | POLLRDNORM)

        if b.txPoll || wantTX != 0 {
            var retry = true
            while true {
                for k in b.tx {
                    // Nothing pending: skip. hwcur and the ring's memory belong to
                    // the sync lock, so look under it (a busy ring falls through
                    // to the trySync below, which skips it).
                    if wantTX == 0, k.trySync({ !k.hasMemory || k.ring.loadHead() == k.hwcur }) ?? false { continue }
                    if k.stopped.load(ordering: .acquiring) {
                        revents |= Int16(POLLERR)
                        continue
                    }
                    // Link down: not ready, no error; the link coming back wakes us.
                    if k.linkDown.load(ordering: .acquiring) { continue }
                    let found: Bool = k.trySync {
                        guard k.hasMemory else { return false }
                        if !k.txPrologue() {
                            k.reinit()
                            revents |= Int16(POLLERR)
                        } else if !Self.txsync(k, port, []) {
                            revents |= Int16(POLLERR)
                        } else {
                            k.finalize()
                        }
                        return k.rcur != k.rtail
                    } ?? false
                    if found {
                        revents |= wantTX
                        wantTX = 0
                    }
                }
                if wantTX != 0 && retry {
                    retry = false
                    continue
                }
                break
            }
        }

        if wantRX != 0 {
            var retry = true
            while true {
                for k in b.rx {
                    if k.stopped.load(ordering: .acquiring) {
                        revents |= Int16(POLLERR)
                        continue
                    }
                    if k.linkDown.load(ordering: .acquiring) { continue }
                    let found: Bool = k.trySync {
                        guard k.hasMemory else { return false }
                        if !k.rxPrologue() {
                            k.reinit()
                            revents |= Int16(POLLERR)
                        }
                        if !Self.rxsync(k, port, []) {
                            revents |= Int16(POLLERR)
                        } else {
                            k.finalize()
                        }
                        k.stampTime()
                        return k.rcur != k.rtail
                    } ?? false
                    if found {
                        revents |= wantRX
                        wantRX = 0
                        retry = false
                    }
                }
                if wantRX != 0 && retry {
                    retry = false
                    continue
                }
                break
            }
        }
        if revents != 0, let ticket { disarm(ticket) }
        return revents
    }

    /// Returns the ticket of the entry this poll holds.
    private func arm(_ w: PollWaker) -> UInt64 {
        armedWakers.withLock { list in
            if let key = w.coalescingKey,
               let i = list.entries.firstIndex(where: { $0.waker.coalescingKey == key }) {
                list.entries[i].waker = w
                list.entries[i].holds += 1
                return list.entries[i].ticket
            }
            if list.entries.count >= Self.maxArmedWakers { list.entries.removeFirst() }
            list.nextTicket &+= 1
            list.entries.append(Armed(waker: w, holds: 1, ticket: list.nextTicket))
            return list.nextTicket
        }
    }

    /// This poll found something ready and will not sleep: it gives its
    /// hold back. The entry stays while other polls that found nothing
    /// (and may sleep) hold it; once none does it goes, so that the next
    /// sync sends no notification that nobody waits for (a write to the
    /// device per sync otherwise). An entry already woken and removed is
    /// left alone.
    private func disarm(_ ticket: UInt64) {
        armedWakers.withLock { list in
            guard let i = list.entries.firstIndex(where: { $0.ticket == ticket }) else { return }
            list.entries[i].holds -= 1
            if list.entries[i].holds <= 0 { list.entries.remove(at: i) }
        }
    }

    public func ringMayBeReady() {
        let wakers = armedWakers.withLock { list -> [Armed] in
            var taken: [Armed] = []
            swap(&taken, &list.entries)
            return taken
        }
        for a in wakers { a.waker.wake() }
    }

    // MARK: status

    /// Offset of this file's netmap_if (nil if unbound).
    public var ifOffset: Int? { currentBinding?.ifOffset }

    /// The rings this file bound, as (TX ring ids, RX ring ids); nil if unbound.
    public var boundRings: (port: String, tx: [Int], rx: [Int])? {
        guard let b = currentBinding else { return nil }
        return (b.adapter.name, b.tx.map(\.index), b.rx.map(\.index))
    }
}
