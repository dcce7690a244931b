// HostPath: the host rings of an interface port, for both backends — the
// path between a netmap program and the host stack of the interface's
// namespace (netmap's `eth0^`, NR_REG_SW / NIC_SW / ONE_SW).
//
// A user-space daemon has no netif_rx and no hook in a driver's transmit
// routine, so the two directions go through a TAP the daemon owns (named
// `nmh<ifindex>`, made inside the interface's namespace, non-persistent: it
// goes with the descriptor, so with the daemon) and three tc BPF filters
// (programs in nmd_packet.c, named so a later daemon finds them):
//
//   host TX ring -> write() to the TAP -> TAP ingress `netmapd_hosttx`:
//     mark NMD_MARK_HOST_TX, bpf_redirect(ifindex, BPF_F_INGRESS) -> the
//     frame enters the interface's receive path: the stack (ip, arp,
//     sockets, tcpdump) sees it arrive on the interface. The interface's
//     ingress filters (`netmapd_steal` while NIC RX rings are in netmap
//     mode, `netmapd_hostin` always while host rings are bound) let marked
//     frames pass and clear the mark; the daemon's AF_PACKET receive
//     sockets drop marked frames (a socket filter), so they never come
//     back on a NIC RX ring.
//   host stack transmits on the interface -> interface egress
//     `netmapd_hostrx`: bpf_redirect(tap) -> the TAP "transmits" it ->
//     read() from the TAP into the host RX ring. The frame does not reach
//     the wire. The daemon's own AF_PACKET transmissions carry
//     NMD_MARK_DAEMON_TX (SO_MARK) and pass; AF_XDP transmissions bypass tc.
//     As netmap does, the stack's transmissions are captured only while a
//     NIC TX ring of the port is in netmap mode too (binding only `^`
//     leaves the stack talking to the wire).
//
// Several host ring pairs (nr_host_tx_rings / nr_host_rx_rings): the TAP
// is multi-queue, one queue per pair; the TAP spreads the stack's frames
// over its queues by flow, so host RX ring i gets whole flows, as netmap
// spreads them by the stack's queue choice. Any host TX ring feeds the stack.
//
// The TAP has no address, no IPv6 and no ARP, so the stack sends nothing
// of its own on it; it does not segment (no TUNSETOFFLOAD), so GSO frames
// the stack sends are cut into MTU-sized frames before they reach the ring.
//
// Measured (kernel 6.18, veth into a peer namespace, the Tests/net
// host-ring cases): ping, ARP and a 100 MB TCP transfer through a program
// bridging NIC and host rings complete byte-exact on both backends.
//
// Leftovers: the TAP goes with the daemon; the filters on the interface
// are removed when the last host ring leaves netmap mode, at daemon exit,
// and at the next start (HostPath.removeLeftover). Between a killed daemon
// and its restart the egress filter redirects to a TAP that no longer
// exists: the stack's frames on that interface are dropped until then.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore
import Synchronization

final class HostPath: @unchecked Sendable {
    let tapName: String
    private let ifindex: Int32
    private let label: String
    private let log: CoreLog
    private let loop: EventLoop
    private let lock = Lock()
    /// One descriptor per TAP queue (= host ring pair).
    private var fds: [Int32]
    private let tapIndex: Int32
    private var wakers: [QueueWaker] = []
    private var injectProg: Int32 = -1
    private var passProg: Int32 = -1
    private var captureProg: Int32 = -1
    private var createdIngress = false
    private var createdEgress = false
    private let route: NetlinkRoute
    /// A socket for frames a host RX ring forwards to the NIC (NS_FORWARD).
    private var forwardFd: Int32 = -1
    /// Scratch for the part of a frame beyond a buffer (to see it is too long).
    private let spill = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
    private(set) var injected: UInt64 = 0
    /// Host TX frames not given to the stack (bad slot, runt, over the MTU,
    /// refused), logged at close.
    private var txDropped: UInt64 = 0
    private(set) var captured: UInt64 = 0

    /// Makes the TAP and the injection path. Call inside the interface's
    /// namespace.
    init(ifindex: Int32, mtu: Int, queues: Int, label: String, route: NetlinkRoute, log: CoreLog,
         loop: EventLoop) throws(NetmapError) {
        self.ifindex = ifindex
        self.route = route
        self.label = label
        self.log = log
        self.loop = loop
        tapName = "nmh\(ifindex)"
        var tapIdx: Int32 = 0
        let n = max(1, queues)
        var opened = [Int32](repeating: -1, count: n)
        let rc = nmd_host_tap_open(tapName, Int32(max(mtu, 68)), Int32(n), &opened, &tapIdx)
        guard rc >= 0 else {
            log.error("\(label): cannot create the host-ring TAP \(tapName) (/dev/net/tun: errno \(-rc)); host rings need the tun driver")
            spill.deallocate()
            throw NetmapError(-rc)
        }
        fds = opened
        tapIndex = tapIdx
        do throws(NetmapError) {
            injectProg = try Self.check(nmd_host_load_inject(ifindex), "load \(NMD_HOSTTX_PROG_NAME)", label, log)
            passProg = try Self.check(nmd_host_load_pass(), "load \(NMD_HOSTIN_PROG_NAME)", label, log)
            var created: Int32 = 0
            _ = try Self.check(nmd_host_attach(tapIndex, 0, injectProg, &created), "attach tc ingress on \(tapName)", label, log)
            _ = try Self.check(nmd_host_attach(ifindex, 0, passProg, &created), "attach tc ingress", label, log)
            createdIngress = created != 0
            for fd in fds {
                let w = QueueWaker(fd: fd, loop: loop)
                w.armed.store(true, ordering: .releasing)
                w.eventId = try loop.add(fd: fd, events: NMD_EPOLLIN | NMD_EPOLLONESHOT, handler: w)
                wakers.append(w)
            }
        } catch {
            closeLocked()
            throw error
        }
        log.debug("\(label): host rings through TAP \(tapName)")
    }

    deinit { spill.deallocate() }

    private static func check(_ rc: Int32, _ what: String, _ label: String, _ log: CoreLog) throws(NetmapError) -> Int32 {
        guard rc < 0 else { return rc }
        log.error("\(label): host rings: cannot \(what): errno \(-rc) (needs CAP_NET_ADMIN, CAP_BPF and the clsact qdisc / cls_bpf)")
        throw NetmapError(-rc)
    }

    /// Captures the stack's transmissions on the interface (on) or lets
    /// them reach the wire again (off). Call inside the namespace.
    func setCapture(_ on: Bool) throws(NetmapError) {
        try lock.withLock { () throws(NetmapError) in
            guard !fds.isEmpty else { return }
            if on {
                guard captureProg < 0 else { return }
                let p = try Self.check(nmd_host_load_capture(tapIndex), "load \(NMD_HOSTRX_PROG_NAME)", label, log)
                var created: Int32 = 0
                let rc = nmd_host_attach(ifindex, 1, p, &created)
                guard rc == 0 else {
                    Glibc.close(p)
                    _ = try Self.check(rc, "attach tc egress", label, log)
                    return
                }
                captureProg = p
                if created != 0 { createdEgress = true }
                log.debug("\(label): host stack transmissions go to the host RX ring (tc egress \(NMD_HOSTRX_PROG_NAME))")
            } else if captureProg >= 0 {
                _ = nmd_host_detach(ifindex, 1)
                Glibc.close(captureProg)
                captureProg = -1
                Stealer.tidy(route: route, ifindex: ifindex, parent: Stealer.clsactEgress, prio: UInt16(NMD_HOST_PRIORITY))
            }
        }
    }

    /// Removes everything (call inside the namespace).
    func close() {
        lock.withLock { closeLocked() }
    }

    private func closeLocked() {
        if txDropped > 0 {
            log.info("\(label): host TX ring: \(txDropped) frames dropped (bad buffer, runt, over the MTU or refused by the stack)")
            txDropped = 0
        }
        if captureProg >= 0 {
            _ = nmd_host_detach(ifindex, 1)
            Glibc.close(captureProg)
            captureProg = -1
        }
        if passProg >= 0 {
            _ = nmd_host_detach(ifindex, 0)
            Glibc.close(passProg)
            passProg = -1
        }
        Stealer.tidy(route: route, ifindex: ifindex, parent: Stealer.clsactIngress, prio: UInt16(NMD_HOST_PRIORITY))
        Stealer.tidy(route: route, ifindex: ifindex, parent: Stealer.clsactEgress, prio: UInt16(NMD_HOST_PRIORITY))
        if createdIngress || createdEgress { Stealer.removeClsactIfEmpty(route: route, ifindex: ifindex) }
        if injectProg >= 0 {
            Glibc.close(injectProg)
            injectProg = -1
        }
        for w in wakers { loop.remove(fd: w.fd, id: w.eventId) }
        wakers.removeAll()
        for fd in fds { Glibc.close(fd) }   // the TAP (and its ingress filter) goes with the last
        fds.removeAll()
        if forwardFd >= 0 {
            Glibc.close(forwardFd)
            forwardFd = -1
        }
    }

    /// Host RX ring `queue` is `k` (woken when its TAP queue has frames).
    func setRxKring(_ k: Kring, queue: Int) {
        lock.withLock {
            if queue >= 0 && queue < wakers.count { wakers[queue].kring = k }
        }
    }

    /// Wakes one host RX ring when its TAP queue becomes readable.
    final class QueueWaker: EventHandler, @unchecked Sendable {
        let fd: Int32
        let loop: EventLoop
        var eventId: UInt64 = 0
        let armed = Atomic<Bool>(false)
        weak var kring: Kring?
        init(fd: Int32, loop: EventLoop) {
            self.fd = fd
            self.loop = loop
        }
        func handleEvents(_ events: UInt32) {
            armed.store(false, ordering: .releasing)
            kring?.wakeup()
        }
        func rearm() {
            guard !armed.load(ordering: .acquiring) else { return }
            armed.store(true, ordering: .releasing)
            loop.rearm(fd: fd, id: eventId, events: NMD_EPOLLIN | NMD_EPOLLONESHOT)
        }
    }

    // MARK: host TX ring: frames to the host stack

    /// §5.5 on the host TX ring: every whole frame in [hwcur … rhead) goes
    /// to the stack at once (a copy, so the slots are free again at once).
    /// A frame with a buffer index outside the pool, shorter than an
    /// Ethernet header or longer than the MTU allows is dropped and counted,
    /// never handed to the stack.
    func txsync(_ k: Kring, queue: Int, maxFrame: Int) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        guard !fds.isEmpty else { return NetmapError.EIO.errno }
        let fd = fds[max(0, queue) % fds.count]
        let n = k.numSlots
        let r = k.ring
        let region = k.region
        let clear = ~(SlotFlag.bufChanged | SlotFlag.report)
        var iov = [iovec]()
        iov.reserveCapacity(8)
        var i = k.hwcur
        var done = i
        var frameLen = 0
        var bad = false
        var dropped: UInt64 = 0
        while i != k.rhead {
            let s = r.slot(i)
            let b = s.bufIdx, len = Int(s.len)
            let more = s.flags & SlotFlag.moreFrag != 0
            if !region.isValidBuffer(b) || len > region.bufferSize || iov.count >= 64 {
                bad = true
            } else {
                iov.append(iovec(iov_base: region.buffer(b), iov_len: len))
                frameLen += len
            }
            s.flags &= clear
            i = RingIndex.next(i, n)
            if more { continue }
            if bad || frameLen < ethHeaderLen || frameLen > maxFrame {
                dropped += 1
            } else {
                let w = writev(fd, iov, Int32(iov.count))
                if w < 0 {
                    // The TAP queue is full (EAGAIN) or the stack refused
                    // it: dropped, as netmap drops what the stack refuses.
                    dropped += 1
                } else {
                    injected &+= 1
                }
            }
            iov.removeAll(keepingCapacity: true)
            frameLen = 0
            bad = false
            done = i
        }
        if dropped > 0 {
            k.countDrops(dropped)
            txDropped &+= dropped
        }
        // An unfinished NS_MOREFRAG chain at rhead waits for its end.
        k.hwcur = done
        k.hwtail = RingIndex.prev(k.hwcur, n)
        return 0
    }

    /// One frame to the stack (NS_FORWARD from a NIC RX ring); false if
    /// dropped.
    func inject(_ p: UnsafeRawPointer, _ len: Int) -> Bool {
        lock.withLock {
            guard let fd = fds.first, len >= ethHeaderLen else { return false }
            guard write(fd, p, len) == len else { return false }
            injected &+= 1
            return true
        }
    }

    // MARK: host RX ring: what the host stack sent

    /// §5.6 on the host RX ring: take back [hwcur … rhead), then read the
    /// frames the stack sent into [hwtail … prev(hwcur)).
    func rxsync(_ k: Kring, queue: Int) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        guard queue >= 0, queue < fds.count else { return NetmapError.EIO.errno }
        let fd = fds[queue]
        let n = k.numSlots
        k.takeBackReleased()
        let region = k.region
        let bufSize = region.bufferSize
        let r = k.ring
        var tail = k.hwtail
        let stop = RingIndex.prev(k.hwcur, n)
        var drained = false
        var result: Int32 = 0
        var dropped: UInt64 = 0
        while tail != stop {
            let s = r.slot(tail)
            let b = s.bufIdx
            guard region.isValidBuffer(b) else {
                // A free slot with a buffer outside the pool: nothing is
                // read into it; the sync fails as on NIC rings.
                result = NetmapError.EINVAL.errno
                break
            }
            var v = (iovec(iov_base: region.buffer(b), iov_len: bufSize),
                     iovec(iov_base: spill, iov_len: 65536))
            let got = withUnsafeMutablePointer(to: &v) {
                $0.withMemoryRebound(to: iovec.self, capacity: 2) { readv(fd, $0, 2) }
            }
            if got < 0 {
                drained = true   // EAGAIN: nothing more (any other error: wait for the next event)
                break
            }
            if got > bufSize || got < ethHeaderLen {
                dropped += 1
                continue
            }
            s.len = UInt16(got)
            s.flags = 0
            captured &+= 1
            tail = RingIndex.next(tail, n)
        }
        if dropped > 0 { k.countDrops(dropped) }
        k.hwtail = tail
        // A full ring re-arms on the sync that drains the TAP.
        if drained { wakers[queue].rearm() }
        return result
    }

    /// Sends one frame to the wire (NS_FORWARD from the host RX ring),
    /// marked so the capture filter lets it pass. Call with the frame's
    /// bytes; false if dropped.
    func forwardToWire(_ p: UnsafeRawPointer, _ len: Int, ns: NetNamespace) -> Bool {
        lock.withLock {
            guard !fds.isEmpty, len >= ethHeaderLen else { return false }
            if forwardFd < 0 {
                let s: Int32? = try? ns.perform { () throws(NetmapError) -> Int32 in
                    let s = nmd_packet_open(0)
                    guard s >= 0 else { throw NetmapError(-s) }
                    guard nmd_packet_bind(s, ifindex, 0) == 0 else {
                        Glibc.close(s)
                        throw .EIO
                    }
                    return s
                }
                guard let s else { return false }
                forwardFd = s
            }
            return send(forwardFd, p, len, 0) == len
        }
    }

    // MARK: leftovers

    /// Start-up: removes the host filters a previous daemon left on `f`
    /// (the TAP went with it). Returns what was removed.
    static func removeLeftover(route: NetlinkRoute, facts f: InterfaceFacts) -> String? {
        var what = [String]()
        let prio = UInt16(NMD_HOST_PRIORITY)
        if nmd_host_present(f.ifindex, 1) == 1, nmd_host_detach(f.ifindex, 1) == 0 {
            Stealer.tidy(route: route, ifindex: f.ifindex, parent: Stealer.clsactEgress, prio: prio)
            what.append("a tc egress filter (\(NMD_HOSTRX_PROG_NAME))")
        }
        if nmd_host_present(f.ifindex, 0) == 1, nmd_host_detach(f.ifindex, 0) == 0 {
            Stealer.tidy(route: route, ifindex: f.ifindex, parent: Stealer.clsactIngress, prio: prio)
            what.append("a tc ingress filter (\(NMD_HOSTIN_PROG_NAME))")
        }
        if !what.isEmpty { Stealer.removeClsactIfEmpty(route: route, ifindex: f.ifindex) }
        return what.isEmpty ? nil : what.joined(separator: " and ")
    }
}
