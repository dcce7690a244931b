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
//   Host rings: one pair, shared with the native backend (InterfacePort,
//     HostPath.swift): a TAP and tc filters connect them to the stack. TX
//     sockets carry SO_MARK NMD_MARK_DAEMON_TX so the host-RX capture lets
//     the port's own frames reach the wire; RX sockets filter out frames
//     the host TX ring injected (they pass the taps before tc ingress).
//   Link down: rings in netmap mode stop (EIO, POLLERR) until it is up
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

final class PacketPort: InterfacePort, @unchecked Sendable {
    private let backend: PacketBackend
    /// NIC rings with an open socket (under `lock`).
    private var openRX = Set<Int>()
    private var openTX = Set<Int>()
    private var fanoutGroup: Int32 = -1
    private var stealing = false

    override var backendName: String { "af_packet" }

    init(facts: InterfaceFacts, geometry: PortGeometry, domain: InterfaceDomain, backend: PacketBackend) {
        self.backend = backend
        super.init(facts: facts, geometry: geometry, domain: domain)
    }

    override func enterLocked(_ nic: [Kring]) throws(NetmapError) {
        var opened = [Kring]()
        do throws(NetmapError) {
            for k in nic {
                try open(k)
                opened.append(k)
            }
        } catch {
            leaveLocked(opened)
            throw error
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
                try domain.stealer.attach(ifindex: ifindex, name: name)
                stealing = true
            } catch {
                // Frames still reach the host stack: worth saying, not worth
                // refusing the port for.
                log.warning("\(label): cannot keep received frames from the host stack (tc ingress BPF: \(error)); the stack sees them too")
            }
        }
    }

    override func leaveLocked(_ nic: [Kring]) {
        for k in nic {
            if k.direction == .tx, let s = k.backendState as? PacketTXRing {
                let dropped = s.close()
                openTX.remove(k.index)
                if dropped > 0 { log.info("\(k.name): \(dropped) frames not sent (invalid, over the MTU or refused)") }
            } else if k.direction == .rx, let s = k.backendState as? PacketRXRing {
                let (kernel, dropped) = s.close()
                openRX.remove(k.index)
                if kernel + Int64(dropped) > 0 {
                    log.info("\(k.name): \(kernel) frames dropped by the kernel (ring full), \(dropped) too long or short")
                }
            }
        }
        if openRX.isEmpty {
            fanoutGroup = -1
            if stealing {
                domain.stealer.detach(ifindex: ifindex)
                stealing = false
            }
        }
    }

    override func nicTxsync(_ k: Kring) -> Int32 {
        guard let s = k.backendState.map({ unsafeDowncast($0, to: PacketTXRing.self) }) else { return NetmapError.EIO.errno }
        return s.txsync(k, maxFrame: maxTxFrame)
    }

    override func nicRxsync(_ k: Kring) -> Int32 {
        guard let s = k.backendState.map({ unsafeDowncast($0, to: PacketRXRing.self) }) else { return NetmapError.EIO.errno }
        return s.rxsync(k)
    }

    override func didVanish() {
        domain.stealer.detach(ifindex: ifindex, all: true)
    }
}
