// InterfacePort: what every port on a Linux interface shares, whichever
// backend moves its packets (PacketPort: AF_PACKET; XDPPort: AF_XDP): the
// interface it was made for (name, ifindex, namespace), its MTU, link state
// (down: syncs wait) and vanishing (EIO, POLLERR), the rings it has seen in netmap mode, the checks of the
// first registration, and the host rings (HostPath). A backend subclasses it and
// supplies only its socket work:
//   enterLocked / leaveLocked   NIC rings entering or leaving netmap mode
//                               (under `lock`, inside the interface's
//                               namespace, so sockets are made there)
//   nicTxsync / nicRxsync       the syncs of NIC rings
//   destroyLocked, vanishedLocked, didVanish   backend extras

#if canImport(Glibc)
import Glibc
#endif
import NetmapCore
import Synchronization

/// Ethernet header and one VLAN tag: a TX frame may exceed the MTU by these.
let ethHeaderLen = 14
let vlanTagLen = 4

class InterfacePort: Port, @unchecked Sendable {
    let name: String
    let kind = PortKind.interface
    let geometry: PortGeometry
    let ifindex: Int32
    let domain: InterfaceDomain
    /// Current MTU (link events update it): TX frames above MTU + header +
    /// one VLAN tag are dropped before the kernel would refuse them.
    let mtu: Atomic<Int>

    /// Guards the port's rings and backend state (registration, release,
    /// link events); syncs take only their kring's lock.
    let lock = Lock()
    /// Every kring the port has seen in netmap mode (to stop them).
    private var known: [ObjectIdentifier: Kring] = [:]
    /// Link state as the link monitor last reported it.
    private var linkUp: Bool
    private(set) var vanished = false

    var backendName: String { "interface" }
    var netNamespace: NetNamespace? { domain.ns }
    var log: CoreLog { domain.log }
    /// The interface's name for logs (with its namespace if not the daemon's).
    var label: String { domain.label(name) }

    init(facts: InterfaceFacts, geometry: PortGeometry, domain: InterfaceDomain) {
        name = facts.name
        ifindex = facts.ifindex
        self.geometry = geometry
        self.domain = domain
        mtu = Atomic(facts.mtu)
        linkUp = facts.isUp
    }

    var maxTxFrame: Int { mtu.load(ordering: .relaxed) + ethHeaderLen + vlanTagLen }

    // MARK: Port

    /// §3.4 step 9, for a port's first registration: the interface must
    /// still be the one the port was made for (ENXIO), and with RX rings an
    /// MTU above the buffer size is refused (EINVAL: a frame would not fit
    /// the buffers it may be split into).
    func checkFirstRegistration(bindsRX: Bool, bufferSize: Int) throws(NetmapError) {
        guard let f = domain.route.facts(index: ifindex), f.name == name else { throw .ENXIO }
        if bindsRX && f.mtu > bufferSize {
            log.info("\(label): MTU \(f.mtu) is larger than the \(bufferSize)-byte netmap buffers: EINVAL")
            throw .EINVAL
        }
        mtu.store(f.mtu, ordering: .relaxed)
    }

    final func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError) {
        try domain.ns.perform { () throws(NetmapError) in
            try lock.withLock { () throws(NetmapError) in
                let nic = rings.filter { !$0.isHost }
                let host = rings.filter { $0.isHost }
                guard on else {
                    leaveLocked(nic)
                    leaveHostLocked(nic: nic, host: host)
                    return
                }
                guard !vanished else { throw .ENXIO }
                for k in rings { known[ObjectIdentifier(k)] = k }
                try enterLocked(nic)
                do throws(NetmapError) {
                    try enterHostLocked(nic: nic, host: host)
                } catch {
                    leaveLocked(nic)
                    throw error
                }
                if !linkUp {
                    for k in rings { k.linkDown.store(true, ordering: .releasing) }
                }
            }
        }
    }

    final func txsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        guard k.isHost else { return nicTxsync(k) }
        guard let h = hostPath else { return k.discardingTxsync() }
        return h.txsync(k, maxFrame: maxTxFrame)
    }

    final func rxsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        if k.ring.flags & RingFlag.forward != 0, let h = hostPath { forwardReleased(k, h) }
        guard k.isHost else { return nicRxsync(k) }
        guard let h = hostPath else { return k.releasingRxsync() }
        return h.rxsync(k)
    }

    final func destroy(adapter: PortAdapter) {
        let all = (adapter.txKrings + adapter.rxKrings).filter { !$0.isHost }
        let host = (adapter.txKrings + adapter.rxKrings).filter { $0.isHost }
        do {
            try domain.ns.perform { lock.withLock { leaveLocked(all); leaveHostLocked(nic: all, host: host); destroyLocked() } }
        } catch {
            // The namespace could not be entered: sockets close all the
            // same; attachments the kernel removes with the namespace.
            log.warning("\(label): cannot enter its namespace to clean up (\(error)); releasing without it")
            lock.withLock { leaveLocked(all); leaveHostLocked(nic: all, host: host); destroyLocked() }
        }
        domain.remove(self)
    }

    // MARK: host rings (HostPath.swift)

    /// The host path while any host ring is in netmap mode. Read by syncs
    /// without the port lock: set before the rings enter netmap mode and
    /// cleared only after they left it.
    private let hostPathStore = Lock.Protected<HostPath?>(nil)
    var hostPath: HostPath? { hostPathStore.withLock { $0 } }
    private var hostBound = Set<ObjectIdentifier>()
    private var hostRxBound = 0
    private var nicTxBound = Set<Int>()

    private func enterHostLocked(nic: [Kring], host: [Kring]) throws(NetmapError) {
        for k in nic where k.direction == .tx { nicTxBound.insert(k.index) }
        if !host.isEmpty {
            var h = hostPath
            if h == nil {
                h = try HostPath(ifindex: ifindex, mtu: mtu.load(ordering: .relaxed), label: label,
                                 route: domain.route, log: log, loop: domain.loop)
                hostPathStore.withLock { $0 = h }
            }
            for k in host {
                hostBound.insert(ObjectIdentifier(k))
                if k.direction == .rx {
                    hostRxBound += 1
                    h!.rxKring = k
                }
            }
        }
        try updateCaptureLocked()
    }

    private func leaveHostLocked(nic: [Kring], host: [Kring]) {
        for k in nic where k.direction == .tx { nicTxBound.remove(k.index) }
        for k in host where hostBound.remove(ObjectIdentifier(k)) != nil {
            if k.direction == .rx { hostRxBound -= 1 }
        }
        if hostBound.isEmpty, let h = hostPath {
            hostPathStore.withLock { $0 = nil }
            h.close()
            log.debug("\(label): host rings released; the host stack talks to the wire again")
            return
        }
        try? updateCaptureLocked()
    }

    /// Daemon exit: the host path goes now (inside the namespace), whoever
    /// still holds the rings.
    func closeHostPath() {
        lock.withLock {
            guard let h = hostPath else { return }
            hostPathStore.withLock { $0 = nil }
            h.close()
        }
    }

    /// The stack's transmissions are captured while a host RX ring and a
    /// NIC TX ring are in netmap mode (§7: binding only `^` does not).
    private func updateCaptureLocked() throws(NetmapError) {
        guard let h = hostPath else { return }
        try h.setCapture(hostRxBound > 0 && !nicTxBound.isEmpty)
    }

    /// Transparent mode (§5.8): released RX slots marked NS_FORWARD go to
    /// the other side — NIC RX to the host stack, host RX to the wire.
    private func forwardReleased(_ k: Kring, _ h: HostPath) {
        let n = k.numSlots
        let r = k.ring
        let region = k.region
        let end = RingIndex.add(k.hwcur, min(RingIndex.distance(k.hwcur, k.rhead, n),
                                             RingIndex.distance(k.hwcur, k.hwtail, n)), n)
        var i = k.hwcur
        while i != end {
            let s = r.slot(i)
            if s.flags & SlotFlag.forward != 0 {
                s.flags &= ~SlotFlag.forward
                let b = s.bufIdx, len = Int(s.len)
                if region.isValidBuffer(b), len <= region.bufferSize {
                    let ok = k.isHost ? h.forwardToWire(region.buffer(b), len, ns: domain.ns)
                                      : h.inject(region.buffer(b), len)
                    if !ok { k.countDrops(1) }
                }
            }
            i = RingIndex.next(i, n)
        }
    }

    // MARK: backend hooks (overridden)

    func enterLocked(_ nic: [Kring]) throws(NetmapError) {}
    func leaveLocked(_ nic: [Kring]) {}
    func nicTxsync(_ k: Kring) -> Int32 { NetmapError.EIO.errno }
    func nicRxsync(_ k: Kring) -> Int32 { NetmapError.EIO.errno }
    /// The port goes away (after leaveLocked of every ring).
    func destroyLocked() {}
    /// The interface is gone (under `lock`).
    func vanishedLocked() {}
    /// The interface is gone (event thread, inside the namespace, no lock).
    func didVanish() {}

    // MARK: link events (event thread)

    /// The link went down or came up: rings in netmap mode are locked
    /// (syncs wait, poll finds nothing ready) until it is up again, as
    /// netmap does; only a deleted interface gives EIO / POLLERR.
    final func linkChanged(isUp: Bool, mtu newMTU: Int?) {
        if let m = newMTU { mtu.store(m, ordering: .relaxed) }
        let rings: [Kring] = lock.withLock {
            guard !vanished, isUp != linkUp else { return [] }
            linkUp = isUp
            return Array(known.values)
        }
        guard !rings.isEmpty else { return }
        log.info("\(label): link \(isUp ? "up: rings running again" : "down: syncs wait until it is up")")
        for k in rings { k.setLinkDown(!isUp) }
    }

    /// The interface is gone: every ring stays stopped for the port's life.
    /// Returns false if it was known already.
    final func markVanished() -> Bool {
        let rings: [Kring]? = lock.withLock {
            guard !vanished else { return nil }
            vanished = true
            vanishedLocked()
            return Array(known.values)
        }
        guard let rings else { return false }
        Self.setStopped(rings, true)
        try? domain.ns.perform { didVanish() }
        return true
    }

    /// Stops (or restarts) `rings` and wakes their pollers, who then see
    /// EIO / POLLERR (or carry on).
    static func setStopped(_ rings: [Kring], _ stopped: Bool) {
        for k in rings {
            k.stopped.store(stopped, ordering: .releasing)
            k.wakeup()
        }
    }
}
