// XDPPort: a Linux interface as a netmap port through AF_XDP — the native
// backend. netmap's hardware rings are the interface's queues, one to one:
// TX ring i and RX ring i share the AF_XDP socket of queue i (XDPQueue), and
// netmap:IF-N binds queue N. The port reports the interface's real queue
// counts (ethtool channels, else the kernel's queue counts).
//
// How data passes:
//   TX kring i -> XDPQueue i: descriptors point at the netmap buffers (the
//     region's buffer area is the UMEM); reclaim on completion.
//   RX kring i <- XDPQueue i: frames land in the netmap buffers (copy bind
//     mode) or are copied from the queue's own chunks (zero-copy bind mode).
//   The XDP program (XDPProgram.swift, attached while any ring of the port is
//   in netmap mode) redirects each queue whose RX ring is in netmap mode to
//   its socket and passes everything else (XDP_PASS): queues nobody bound
//   keep feeding the host stack, as netmap's rings not in netmap mode do
//   (§7); traffic on bound queues no longer reaches the stack (stealing).
//   Wake-ups: EventLoop (one-shot EPOLLIN per socket) -> RX kring wakeup;
//   CompletionWatcher (a timer while transmissions are in flight) -> TX.
//   Host rings, link state, vanishing, the interface's namespace: shared
//   with the generic backend (InterfacePort).
//
// Measured on these machines (2 vCPU VM, kernel 6.18, veth, native XDP,
// copy bind mode; Tests/net/xdp-bench.sh, release build, 1M frames):
//   RX, landing vs copying out of socket-owned chunks (--xdp-rx-copy):
//   time in rxsync per slot filled, in netmapd: 42-109 ns vs 164-396 ns
//   (60 B .. 1514 B frames); the daemon's whole CPU time per frame, FUSE
//   round trips included: 920-1210 ns vs 1090-1530 ns. Raw AF_XDP with no
//   daemon (Tests/net/xsk_bench.c): 13-61 ns vs 84-1600 ns per frame — the
//   copy reads cold data and dirties a second buffer; a consumer that then
//   reads every cache line of a 1514-byte frame pays ~220 ns in both
//   designs. Landing is kept for copy bind mode, where the kernel writes
//   only frame bytes (canaries before and after every buffer stayed
//   intact); zero-copy sockets bounce (see XDPQueue).
//   TX, a netmap client through netmapd against raw AF_XDP copy-mode TX
//   from the same kind of buffers: 585 vs 656 kpps at 60 B, 334 vs 310 kpps
//   at 60-1514 B, 204 vs 216 kpps at 1514 B — the kernel's per-frame skb
//   work dominates; netmapd itself spends 1.6-1.9 µs per frame.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import CXDPSys
import NetmapCore
import Synchronization

final class XDPPort: InterfacePort, @unchecked Sendable {
    private let backend: XDPBackend
    private let region: MemoryRegion
    /// Under `lock`, as is everything below.
    private var queues: [XDPQueue?]
    private var program: XDPProgram?
    /// NIC rings in netmap mode.
    private var active = Set<ObjectIdentifier>()

    override var backendName: String { "af_xdp" }

    init(facts: InterfaceFacts, geometry: PortGeometry, domain: InterfaceDomain, backend: XDPBackend, region: MemoryRegion) {
        self.region = region
        self.backend = backend
        queues = Array(repeating: nil, count: max(geometry.txRings, geometry.rxRings))
        super.init(facts: facts, geometry: geometry, domain: domain)
    }

    override func enterLocked(_ nic: [Kring]) throws(NetmapError) {
        if active.isEmpty && !nic.isEmpty {
            program = try backend.attachProgram(ifindex: ifindex, name: label, queues: queues.count)
        }
        var opened = [Kring]()
        do throws(NetmapError) {
            for k in nic {
                try open(k)
                opened.append(k)
            }
        } catch {
            leaveLocked(opened)
            if active.isEmpty { dropProgram() }
            throw error
        }
    }

    private func queue(_ i: Int) -> XDPQueue {
        if let q = queues[i] { return q }
        let q = XDPQueue(queue: i, region: region, loop: backend.loop,
                         watcher: backend.watcher, log: log)
        queues[i] = q
        return q
    }

    private func open(_ k: Kring) throws(NetmapError) {
        let q = queue(k.index)
        k.backendState = q
        let cfg = backend.config
        let setup = XDPQueueSetup(ifname: name, slots: max(geometry.txSlots, geometry.rxSlots),
                                  rxReserve: cfg.rxReserve, bind: cfg.bind, forceBounce: cfg.rxPath == .bounce,
                                  hasRX: k.index < geometry.rxRings, hasTX: k.index < geometry.txRings)
        let wasOpen = q.isOpen
        do throws(NetmapError) {
            try q.enable(k.direction, kring: k, setup: setup)
        } catch {
            log.info("\(k.name): AF_XDP socket on queue \(k.index): \(error)")
            throw error
        }
        if !wasOpen {
            log.debug("\(label) queue \(k.index): AF_XDP socket, \(q.zeroCopy ? "zero-copy" : "copy") mode, RX \(q.path.rawValue)\(q.scatterGather ? ", multi-buffer" : "")")
        }
        if k.direction == .rx {
            let rc = program?.point(queue: k.index, at: q.socketFd) ?? -EIO
            if rc != 0 {
                q.disable(.rx)
                log.info("\(k.name): cannot redirect queue \(k.index) to its socket: errno \(-rc)")
                throw NetmapError(-rc)
            }
        }
        active.insert(ObjectIdentifier(k))
    }

    override func leaveLocked(_ nic: [Kring]) {
        for k in nic where active.contains(ObjectIdentifier(k)) {
            active.remove(ObjectIdentifier(k))
            guard let q = k.backendState as? XDPQueue else { continue }
            if k.direction == .rx {
                // Frames go back to the host stack before the socket goes.
                _ = program?.unpoint(queue: k.index)
                let dropped = q.rxDropped
                let st = q.kernelStats()
                if q.rxFrames > 0 {
                    log.debug("\(k.name): \(q.rxFrames) slots filled (\(q.path.rawValue)), \(q.rxNanos / q.rxFrames) ns per slot in rxsync")
                }
                q.disable(.rx)
                if dropped > 0 { log.info("\(k.name): \(dropped) frames dropped (not where they were put)") }
                if let st, st.rx_dropped + st.rx_ring_full + st.fill_empty + st.rx_invalid > 0 {
                    log.info("\(k.name): frames dropped by the kernel: \(max(st.rx_dropped, st.fill_empty)) (no free buffer: \(st.fill_empty)), \(st.rx_ring_full) more with the RX ring full")
                }
            } else {
                let dropped = q.txDropped
                q.disable(.tx)
                if dropped > 0 { log.info("\(k.name): \(dropped) frames not sent (invalid, over the MTU or too many fragments)") }
            }
        }
        if active.isEmpty { dropProgram() }
    }

    private func dropProgram() {
        program?.detach()
        program = nil
    }

    override func nicTxsync(_ k: Kring) -> Int32 {
        guard let q = k.backendState.map({ unsafeDowncast($0, to: XDPQueue.self) }) else { return NetmapError.EIO.errno }
        return q.txsync(k, maxFrame: maxTxFrame)
    }

    override func nicRxsync(_ k: Kring) -> Int32 {
        guard let q = k.backendState.map({ unsafeDowncast($0, to: XDPQueue.self) }) else { return NetmapError.EIO.errno }
        return q.rxsync(k)
    }

    override func destroyLocked() { dropProgram() }

    /// The kernel took the program with the interface.
    override func vanishedLocked() { program?.forget() }

    /// Daemon exit: the program goes now (the sockets go with the process).
    func detachForExit() {
        try? domain.ns.perform { lock.withLock { dropProgram() } }
    }
}
