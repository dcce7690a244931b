// PacketPort: a Linux interface as a netmap port through AF_PACKET — the
// generic backend, netmap's "generic (emulated) adapter" (§13) in user space.
//
// How data passes:
//   TX kring i -> PacketTXRing: slots [hwcur … rhead) become one sendmmsg
//     batch whose iovecs point into the netmap buffers (the kernel's copy
//     is the only one); reclaim is immediate.
//   RX kring i <- PacketRXRing: a TPACKET_V2 ring mapped from an ETH_P_ALL
//     socket (PACKET_IGNORE_OUTGOING: the host's and the app's own
//     transmissions never show up); rxsync copies frames into the free slots.
//     Several RX rings share the traffic through PACKET_FANOUT (flow hash).
//   Wake-ups: EventLoop (one-shot epoll per socket) -> kring.wakeup().
//   Stealing: while an RX ring is in netmap mode a tc ingress BPF drop keeps
//     the frames from the host stack (Steal.swift).
//   Host rings: one pair is reported, as the generic adapter has, so `^` and
//     `*` bind; but they are inert: the host TX ring is reclaimed without
//     sending anything, the host RX ring never fills. Faithful host rings
//     need a way to inject into and capture from the host stack per
//     interface (a marked frame redirected to ingress by tc BPF, an egress
//     capture program); not done yet.
//   Link down: rings in netmap mode are locked (syncs wait) until it is up
//   again; interface deleted: stopped for good (Registry.interfaceVanished).
//
// Choices, measured with Tests/net/pkt-bench.sh (2 vCPU VM, kernel 6.18,
// veth between two namespaces, sender and receiver on one core each):
//
//   RX ring, TPACKET_V2. Draining while the peer sends 60-byte frames as fast
//   as it can (~360 kpps), woken at most every 50 µs as this daemon is (one
//   one-shot epoll event per sync): V2 0.26 µs CPU per frame, V3 0.10,
//   recvmmsg 0.93. Woken per frame, V2 and recvmmsg cost ~2 µs per frame and
//   slow the sender to ~150-190 kpps, hence one-shot epoll. Wake-up latency,
//   one frame every 200 µs: V2 19 µs median (48 µs p99), recvmmsg 21-25 µs,
//   V3 880-907 µs with a 1 ms block timeout and 7.9 ms with the kernel's
//   default: V3 hands frames over per block. V2 wins: near-V3 cost per frame
//   when batched, and no block timeout in the latency.
//   TX, sendmmsg with iovecs into the netmap buffers (one kernel copy, none
//   here; reclaim at once, no completion tracking; NS_MOREFRAG chains are one
//   message). Into a veth: 60 B 420 kpps / 2.4 µs per frame, 1514 B 398 kpps;
//   PACKET_TX_RING (a copy into the ring, one send() per batch) 448 kpps at
//   60 B but 346 at 1514 B. Equal latency: both send synchronously.
//   Qdisc kept: bypass measured 415 vs 420 kpps at 60 B, 433 vs 398 at 1514 B
//   (0-9 %), but it skips tc egress and the taps (tcpdump would not see the
//   app's frames) and netmap's generic adapter also goes through the qdisc.
//   --packet-qdisc-bypass turns it on.
// End to end (release build, netmap program -> veth -> netmap program, two
// daemons, four processes on two cores): 1,000,000 frames of 60-1514 bytes
// in 6.3-6.9 s, 145-160 kpps, ~1 Gbit/s, none lost.
//
// Frames the kernel ring cannot hold are dropped (and logged at release),
// as netmap's generic adapter drops when its queue is full.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore
import Synchronization

public final class PacketPort: Port, InterfacePort, @unchecked Sendable {
    public let name: String
    public let kind = PortKind.interface
    public let geometry: PortGeometry
    public let ifindex: Int32
    private let backend: PacketBackend
    /// Current MTU (link events update it): TX frames above MTU + header +
    /// one VLAN tag are dropped before the kernel would refuse them.
    let mtu: Atomic<Int>

    private let lock = Lock()
    /// NIC rings with an open socket.
    private var openRX = Set<Int>()
    private var openTX = Set<Int>()
    private var fanoutGroup: Int32 = -1
    private var stealing = false
    /// Every kring the port has seen in netmap mode (for stopping them).
    private var known: [ObjectIdentifier: Kring] = [:]
    /// Link state as the link monitor last reported it.
    private var linkUp: Bool
    private(set) var vanished = false

    init(facts: InterfaceFacts, geometry: PortGeometry, backend: PacketBackend) {
        name = facts.name
        ifindex = facts.ifindex
        self.geometry = geometry
        self.backend = backend
        mtu = Atomic(facts.mtu)
        linkUp = facts.isUp
    }

    var maxTxFrame: Int { mtu.load(ordering: .relaxed) + ethHeaderLen + vlanTagLen }

    // MARK: Port

    /// §3.4 step 9 (LinkEvents.checkFirstRegistration).
    public func checkFirstRegistration(bindsRX: Bool, bufferSize: Int) throws(NetmapError) {
        let m = try LinkEvents.checkFirstRegistration(route: backend.route, ifindex: ifindex, name: name,
                                                      log: backend.log, bindsRX: bindsRX, bufferSize: bufferSize)
        mtu.store(m, ordering: .relaxed)
    }

    public func setNetmapMode(_ on: Bool, rings: [Kring]) throws(NetmapError) {
        try lock.withLock { () throws(NetmapError) in
            if on { try enter(rings) } else { leave(rings) }
        }
    }

    private func enter(_ rings: [Kring]) throws(NetmapError) {
        guard !vanished else { throw .ENXIO }
        var opened = [Kring]()
        do throws(NetmapError) {
            for k in rings {
                known[ObjectIdentifier(k)] = k
                if k.isHost { continue }
                try open(k)
                opened.append(k)
            }
        } catch {
            leave(opened)
            throw error
        }
        if !linkUp {
            for k in rings { k.linkDown.store(true, ordering: .releasing) }
        }
    }

    private func open(_ k: Kring) throws(NetmapError) {
        let cfg = backend.config
        if k.direction == .tx {
            let s = k.backendState.map { unsafeDowncast($0, to: PacketTXRing.self) } ?? {
                let s = PacketTXRing(kring: k, loop: backend.loop)
                k.backendState = s
                return s
            }()
            try s.open(ifindex: ifindex, qdiscBypass: cfg.qdiscBypass, sndbuf: cfg.socketBuffer)
            openTX.insert(k.index)
            return
        }
        let s = k.backendState.map { unsafeDowncast($0, to: PacketRXRing.self) } ?? {
            let s = PacketRXRing(kring: k, loop: backend.loop)
            k.backendState = s
            return s
        }()
        let fanout: Int32? = geometry.rxRings > 1 ? (openRX.isEmpty ? -1 : fanoutGroup) : nil
        let frames = cfg.kernelRxFrames > 0 ? cfg.kernelRxFrames : max(8192, 8 * Int(k.numSlots))
        let maxFrame = max(mtu.load(ordering: .relaxed), 1500) + ethHeaderLen
        if let g = try s.open(ifindex: ifindex, frames: frames, maxFrame: maxFrame, fanout: fanout) { fanoutGroup = g }
        openRX.insert(k.index)
        if !stealing && cfg.steal {
            do throws(NetmapError) {
                try backend.stealer.attach(ifindex: ifindex, name: name)
                stealing = true
            } catch {
                // Frames still reach the host stack: worth saying, not worth
                // refusing the port for.
                backend.log.warning("\(name): cannot keep received frames from the host stack (tc ingress BPF: \(error)); the stack sees them too")
            }
        }
    }

    private func leave(_ rings: [Kring]) {
        for k in rings where !k.isHost {
            if k.direction == .tx, let s = k.backendState as? PacketTXRing {
                let dropped = s.close()
                openTX.remove(k.index)
                if dropped > 0 { backend.log.info("\(k.name): \(dropped) frames not sent (invalid, over the MTU or refused)") }
            } else if k.direction == .rx, let s = k.backendState as? PacketRXRing {
                let (kernel, dropped) = s.close()
                openRX.remove(k.index)
                if kernel + Int64(dropped) > 0 {
                    backend.log.info("\(k.name): \(kernel) frames dropped by the kernel (ring full), \(dropped) too long or short")
                }
            }
        }
        if openRX.isEmpty {
            fanoutGroup = -1
            if stealing {
                backend.stealer.detach(ifindex: ifindex)
                stealing = false
            }
        }
    }

    public func txsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        if k.isHost { return k.discardingTxsync() }   // inert host TX ring
        guard let s = k.backendState.map({ unsafeDowncast($0, to: PacketTXRing.self) }) else { return NetmapError.EIO.errno }
        return s.txsync(k, maxFrame: maxTxFrame)
    }

    public func rxsync(_ k: Kring, flags: SyncFlags) -> Int32 {
        if k.isHost { return k.releasingRxsync() }   // inert host RX ring
        guard let s = k.backendState.map({ unsafeDowncast($0, to: PacketRXRing.self) }) else { return NetmapError.EIO.errno }
        return s.rxsync(k)
    }

    public func destroy(adapter: PortAdapter) {
        lock.withLock { leave(adapter.txKrings + adapter.rxKrings) }
        backend.forget(self)
    }

    // MARK: link events (event thread)

    /// The link went down or came up: rings in netmap mode are locked
    /// (syncs wait, poll finds nothing) until it is up again, as netmap does.
    func linkChanged(isUp: Bool, mtu newMTU: Int?) {
        if let m = newMTU { mtu.store(m, ordering: .relaxed) }
        let rings: [Kring] = lock.withLock {
            guard !vanished, isUp != linkUp else { return [] }
            linkUp = isUp
            return Array(known.values)
        }
        guard !rings.isEmpty else { return }
        backend.log.info("\(name): link \(isUp ? "up: rings running again" : "down: rings stopped")")
        LinkEvents.setLinkDown(rings, !isUp)
    }

    /// The interface is gone: every ring stays stopped for the port's life.
    /// Returns false if it was known already.
    func markVanished() -> Bool {
        let rings: [Kring]? = lock.withLock {
            guard !vanished else { return nil }
            vanished = true
            return Array(known.values)
        }
        guard let rings else { return false }
        LinkEvents.setStopped(rings, true)
        return true
    }
}
