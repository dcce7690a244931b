// CUSEProbe: the CUSE front end serving a small fake netmap device, for the
// device tests in the VM (Tests/vm/cuse-smoke.sh, client Tests/device/cuse_smoke.c).
// The fake answers just enough of netmap to exercise every path of the front
// end: one-round, two-round and multi-round ioctls (legacy NIOCREGIF, NIOCCTRL
// with a body and an option chain), error answers that still write back,
// answers that write without having read (NETMAPD_IOC_REGION), poll with a
// delayed wake-up, release, and the region file the shim maps.
//
//   CUSEProbe [--name netmap] [--region /tmp/cuse-probe-region] [--size BYTES] [--mode 0666]
//
// Runs until SIGTERM or SIGINT, then prints its counters and exits 0.

import CNetmapABI
import CUSEFrontEnd
import DeviceInterface
import Glibc
import Synchronization

/// Probe-only ioctl: _IOR('n', 1, struct { u32 live, released, regionAsks, syncs; })
let PROBE_STATS: UInt32 = 0x8010_6e01
/// Offset of the fake netmap_if in the region, reported as nr_offset.
let fakeIfOffset: UInt64 = 0x1000
let pollWakeDelayMicros: UInt32 = 300_000

func log(_ s: String) {
    let line = "probe: \(s)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

struct Counters {
    var live: UInt32 = 0
    var released: UInt32 = 0
    var regionAsks: UInt32 = 0
    var syncs: UInt32 = 0
}

final class FakeDevice: NetmapDevice {
    let regionPath: String
    let regionSize: UInt64
    let counters = Mutex(Counters())

    init(regionPath: String, regionSize: UInt64) {
        self.regionPath = regionPath
        self.regionSize = regionSize
    }

    func open(client: ClientIdentity) -> DeviceFile {
        counters.withLock { $0.live += 1 }
        log("open by pid \(client.pid) uid \(client.uid)")
        return FakeFile(device: self)
    }
}

final class FakeFile: DeviceFile {
    struct State {
        var registered = false
        var readable = false
        var waker: PollWaker?
        var wakeScheduled = false
    }

    let device: FakeDevice
    let state = Mutex(State())

    init(device: FakeDevice) { self.device = device }

    func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory) -> IoctlOutcome {
        switch command {
        case NIOCTXSYNC, NIOCRXSYNC:
            device.counters.withLock { $0.syncs += 1 }
            return state.withLock { s in
                guard s.registered else { return .complete(errno: EINVAL, writes: []) }
                if command == NIOCRXSYNC { s.readable = false }
                return .complete(errno: 0, writes: [])
            }
        case NIOCREGIF:
            return legacyRegister(argument, memory)
        case NIOCCTRL:
            return control(argument, memory)
        case NETMAPD_IOC_REGION:
            guard state.withLock({ $0.registered }) else { return .complete(errno: EINVAL, writes: []) }
            device.counters.withLock { $0.regionAsks += 1 }
            var info = netmapd_region_info()
            info.size = device.regionSize
            info.mem_id = 1
            withUnsafeMutableBytes(of: &info.path) { p in
                let utf8 = Array(device.regionPath.utf8.prefix(p.count - 1))
                p.copyBytes(from: utf8)
            }
            // Written without having been read: the front end must make room.
            return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: bytes(of: info))])
        case PROBE_STATS:
            let c = device.counters.withLock { $0 }
            var out = [UInt8]()
            for v in [c.live, c.released, c.regionAsks, c.syncs] { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
            return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: out)])
        default:
            return .complete(errno: EOPNOTSUPP, writes: [])
        }
    }

    /// NIOCREGIF: one 60-byte nmreq in and out; written back even on error.
    private func legacyRegister(_ arg: UInt64, _ memory: CallerMemory) -> IoctlOutcome {
        let range = CallerRange(address: arg, length: MemoryLayout<nmreq>.size)
        guard case let .bytes(b) = memory.lookup(range) else { return .needMemory(read: [range], write: [range]) }
        var req: nmreq = load(b)
        withUnsafeMutableBytes(of: &req.nr_name) { $0[$0.count - 1] = 0 }
        guard req.nr_version >= 14 else {
            return .complete(errno: EINVAL, writes: [CallerWrite(address: arg, bytes: bytes(of: req))])
        }
        state.withLock { $0.registered = true }
        req.nr_offset = UInt32(fakeIfOffset)
        req.nr_memsize = UInt32(truncatingIfNeeded: device.regionSize)
        req.nr_tx_slots = 512
        req.nr_rx_slots = 512
        req.nr_tx_rings = 1
        req.nr_rx_rings = 1
        req.nr_arg2 = 1
        return .complete(errno: 0, writes: [CallerWrite(address: arg, bytes: bytes(of: req))])
    }

    /// NIOCCTRL: header, then body and option chain, one retry per level.
    private func control(_ arg: UInt64, _ memory: CallerMemory) -> IoctlOutcome {
        let hdrRange = CallerRange(address: arg, length: MemoryLayout<nmreq_header>.size)
        guard case let .bytes(hb) = memory.lookup(hdrRange) else {
            return .needMemory(read: [hdrRange], write: [hdrRange])
        }
        let hdr: nmreq_header = load(hb)
        let hdrBack = CallerWrite(address: arg, bytes: hb)
        let bodySize: Int
        switch Int32(hdr.nr_reqtype) {
        case NETMAP_REQ_REGISTER: bodySize = MemoryLayout<nmreq_register>.size
        case NETMAP_REQ_PORT_INFO_GET: bodySize = MemoryLayout<nmreq_port_info_get>.size
        default: return .complete(errno: EINVAL, writes: [hdrBack])
        }
        guard hdr.nr_body != 0 else { return .complete(errno: EINVAL, writes: [hdrBack]) }
        let bodyRange = CallerRange(address: hdr.nr_body, length: bodySize)
        var read = [hdrRange, bodyRange]
        var options: [(CallerRange, nmreq_option)] = []
        var next = hdr.nr_options
        while next != 0 {
            guard options.count < 8 else { return .complete(errno: EMSGSIZE, writes: [hdrBack]) }
            let r = CallerRange(address: next, length: MemoryLayout<nmreq_option>.size)
            read.append(r)
            guard case let .bytes(ob) = memory.lookup(r) else { break }
            let opt: nmreq_option = load(ob)
            options.append((r, opt))
            next = opt.nro_next
        }
        guard case let .bytes(bb) = memory.lookup(bodyRange), options.count == read.count - 2 else {
            return .needMemory(read: read, write: read)
        }
        var writes = [hdrBack]
        for (r, var opt) in options {
            opt.nro_status = UInt32(EOPNOTSUPP)
            writes.append(CallerWrite(address: r.address, bytes: bytes(of: opt)))
        }
        if Int32(hdr.nr_reqtype) == NETMAP_REQ_PORT_INFO_GET {
            var body: nmreq_port_info_get = load(bb)
            body.nr_memsize = device.regionSize
            body.nr_tx_slots = 512
            body.nr_rx_slots = 512
            body.nr_tx_rings = 1
            body.nr_rx_rings = 1
            body.nr_mem_id = 1
            writes.append(CallerWrite(address: bodyRange.address, bytes: bytes(of: body)))
            return .complete(errno: 0, writes: writes)
        }
        // REGISTER: this fake consumes no option, so any option fails it (as netmap's leftover rule).
        guard options.isEmpty else { return .complete(errno: EOPNOTSUPP, writes: writes) }
        var body: nmreq_register = load(bb)
        state.withLock { $0.registered = true }
        body.nr_offset = fakeIfOffset
        body.nr_memsize = device.regionSize
        body.nr_tx_slots = 512
        body.nr_rx_slots = 512
        body.nr_tx_rings = 1
        body.nr_rx_rings = 1
        body.nr_host_tx_rings = 1
        body.nr_host_rx_rings = 1
        body.nr_mem_id = 1
        writes.append(CallerWrite(address: bodyRange.address, bytes: bytes(of: body)))
        return .complete(errno: 0, writes: writes)
    }

    /// Not readable until 300 ms after the first poll that found it not
    /// readable; then the armed waker fires. NIOCRXSYNC makes it unreadable.
    func poll(events: Int16, waker: PollWaker?) -> Int16 {
        let ready: Bool = state.withLock { s in
            if s.readable { return true }
            if let waker { s.waker = waker }
            if !s.wakeScheduled {
                s.wakeScheduled = true
                let me = self
                _ = startDetached {
                    usleep(pollWakeDelayMicros)
                    let w = me.state.withLock { s -> PollWaker? in
                        s.readable = true
                        s.wakeScheduled = false
                        defer { s.waker = nil }
                        return s.waker
                    }
                    w?.wake()
                }
            }
            return false
        }
        return ready ? events & Int16(POLLIN | POLLRDNORM) : 0
    }

    func mmapCheck(offset: UInt64, length: UInt64) -> Int32 {
        guard state.withLock({ $0.registered }) else { return EINVAL }
        return offset <= device.regionSize && length <= device.regionSize - offset ? 0 : EINVAL
    }

    func release() {
        state.withLock { $0.waker = nil }
        device.counters.withLock { c in
            c.live -= 1
            c.released += 1
        }
        log("release")
    }
}

func load<T>(_ b: [UInt8]) -> T {
    precondition(b.count == MemoryLayout<T>.size)
    return b.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
}

func bytes<T>(of value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

final class Body: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

func startDetached(_ body: @escaping @Sendable () -> Void) -> Bool {
    let box = Unmanaged.passRetained(Body(body)).toOpaque()
    var t = pthread_t()
    guard pthread_create(&t, nil, { raw in
        Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, box) == 0 else {
        Unmanaged<Body>.fromOpaque(box).release()
        return false
    }
    pthread_detach(t)
    return true
}

// MARK: - main

var name = "netmap"
var regionPath = "/tmp/cuse-probe-region"
var regionSize: UInt64 = 1 << 20
var mode: UInt32 = 0o666
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    guard let v = args.popFirst() else { log("missing value for \(a)"); exit(2) }
    switch a {
    case "--name": name = v
    case "--region": regionPath = v
    case "--size": regionSize = UInt64(v) ?? regionSize
    case "--mode": mode = UInt32(v, radix: 8) ?? mode
    default: log("unknown option \(a)"); exit(2)
    }
}

// The region file: a pattern the client checks byte for byte.
let rfd = open(regionPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
guard rfd >= 0, ftruncate(rfd, off_t(regionSize)) == 0 else {
    log("cannot create \(regionPath): \(String(cString: strerror(errno)))")
    exit(1)
}
var pattern = [UInt8](repeating: 0, count: Int(regionSize))
for i in 0 ..< pattern.count { pattern[i] = UInt8(truncatingIfNeeded: (i &* 131) ^ (i >> 12)) }
let magic = Array("NETMAPD-PROBE-REGION".utf8)
pattern.replaceSubrange(0 ..< magic.count, with: magic)
guard pattern.withUnsafeBytes({ pwrite(rfd, $0.baseAddress, $0.count, 0) }) == pattern.count else {
    log("cannot fill \(regionPath)")
    exit(1)
}
close(rfd)

// Signals end the run from a thread of their own.
var sigs = sigset_t()
sigemptyset(&sigs)
sigaddset(&sigs, SIGTERM)
sigaddset(&sigs, SIGINT)
pthread_sigmask(SIG_BLOCK, &sigs, nil)

let fake = FakeDevice(regionPath: regionPath, regionSize: regionSize)
let cuse: CUSEDevice
do {
    cuse = try CUSEDevice(device: fake, name: name, mode: mode, uid: 0, gid: 0, log: { log($0) })
} catch {
    log("\(error)")
    exit(1)
}
let stopSignals = sigs
_ = startDetached {
    var set = stopSignals
    var sig: Int32 = 0
    sigwait(&set, &sig)
    log("signal \(sig): stopping")
    cuse.stop()
}
let readyLine = "ready: /dev/\(name) mode \(String(mode, radix: 8))"
do {
    try cuse.run(ready: { log(readyLine) })
} catch {
    log("\(error)")
    exit(1)
}
let c = fake.counters.withLock { $0 }
log("stopped: live \(c.live) released \(c.released) regionAsks \(c.regionAsks) syncs \(c.syncs)")
exit(0)
