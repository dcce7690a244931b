// FUSEProbe: runs the FUSE-file front end against a fake netmap device, for
// Tests/device/fuse_smoke.c (driven by Tests/device/fuse-smoke.sh).
//
//   FUSEProbe [path] [threads]      default /tmp/netmapd-fuse-test/netmap, 2
//
// Prints "READY <path> <region size>" once mounted, serves until SIGTERM or
// SIGINT, then stops the front end and checks that every opened file was
// released exactly once and that the file it created is gone. Exit 0 if so.
//
// The fake device's region is a tmpfs file filled with byte(i) = i*7+3. Its
// files answer these ioctls (the client checks the results):
//   NIOCTXSYNC/NIOCRXSYNC  0
//   NIOCGINFO  (60 bytes)  every byte + 1
//   NIOCREGIF  (60 bytes)  EINVAL, with nr_version written back as 0xdeadbeef
//   NIOCCTRL   (88 bytes)  .needMemory for the 56-byte body at nr_body; then
//                          body ^ 0x5a (a process_vm_writev write) and
//                          nr_name "fake-done"; unreadable body: EFAULT with
//                          nr_name "efault-wb" written back
//   _IO('N', 0x42)         region[4096] must be 0xa5 (written through the
//                          client's mapping); stores region[8192] = 0x5a
//   _IOR('N', 0x43, 16)    counters: opens, releases, double releases, wakes
//   _IO('N', 0x44)         this file's poll never becomes ready
//   anything else          EOPNOTSUPP
// poll: not ready until 300 ms after the first poll that brought a waker,
// when a helper thread marks the file ready and fires the waker.

import DeviceInterface
import FUSEFrontEnd
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

let NIOCGINFO: UInt32 = 0xc03c6991
let NIOCREGIF: UInt32 = 0xc03c6992
let NIOCTXSYNC: UInt32 = 0x6994
let NIOCRXSYNC: UInt32 = 0x6995
let NIOCCTRL: UInt32 = 0xc0586997
let PROBE_CHECK_REGION: UInt32 = 0x4e42
let PROBE_COUNTERS: UInt32 = 0x8010_4e43
let PROBE_NEVER_READY: UInt32 = 0x4e44
let bodySize = 56

func say(_ text: String) {
    print(text)
    fflush(nil)
}

/// Runs `body` on a new detached thread.
func detached(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body))
    pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box.toOpaque())
    pthread_detach(thread)
}

struct Counters {
    var opens: UInt32 = 0
    var releases: UInt32 = 0
    var doubleReleases: UInt32 = 0
    var wakes: UInt32 = 0
}

final class FakeDevice: NetmapDevice, @unchecked Sendable {
    let regionPath: String
    let regionSize: UInt64
    let region: UnsafeMutableRawPointer
    let counters = Mutex(Counters())

    init(path: String, size: UInt64) {
        regionPath = path
        regionSize = size
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "create region file \(path)")
        precondition(ftruncate(fd, off_t(size)) == 0)
        let p = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        precondition(p != MAP_FAILED)
        close(fd)
        region = p!
        let bytes = region.assumingMemoryBound(to: UInt8.self)
        for i in 0 ..< Int(size) { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
    }

    func open(client: ClientIdentity) -> DeviceFile {
        counters.withLock { $0.opens += 1 }
        return FakeFile(device: self)
    }
}

final class FakeFile: DeviceFile, @unchecked Sendable {
    let device: FakeDevice
    let released = Atomic(false)
    let pollState = Mutex((armed: false, ready: false, never: false))

    init(device: FakeDevice) {
        self.device = device
    }

    func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory) -> IoctlOutcome {
        switch command {
        case NIOCTXSYNC, NIOCRXSYNC:
            return .complete(errno: 0, writes: [])
        case NIOCGINFO:
            let range = CallerRange(address: argument, length: 60)
            guard case .bytes(let bytes) = memory.lookup(range) else { return .complete(errno: EFAULT, writes: []) }
            return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: bytes.map { $0 &+ 1 })])
        case NIOCREGIF:
            let range = CallerRange(address: argument, length: 60)
            guard case .bytes(var bytes) = memory.lookup(range) else { return .complete(errno: EFAULT, writes: []) }
            withUnsafeBytes(of: UInt32(0xdead_beef).littleEndian) { bytes.replaceSubrange(16 ..< 20, with: $0) }
            return .complete(errno: EINVAL, writes: [CallerWrite(address: argument, bytes: bytes)])
        case NIOCCTRL:
            return control(argument: argument, memory: memory)
        case PROBE_CHECK_REGION:
            let bytes = device.region.assumingMemoryBound(to: UInt8.self)
            guard bytes[4096] == 0xa5 else { return .complete(errno: EIO, writes: []) }
            bytes[8192] = 0x5a
            return .complete(errno: 0, writes: [])
        case PROBE_NEVER_READY:
            pollState.withLock { $0.never = true }
            return .complete(errno: 0, writes: [])
        case PROBE_COUNTERS:
            let c = device.counters.withLock { $0 }
            var out: [UInt8] = []
            for v in [c.opens, c.releases, c.doubleReleases, c.wakes] {
                withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
            }
            return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: out)])
        default:
            return .complete(errno: EOPNOTSUPP, writes: [])
        }
    }

    /// NIOCCTRL in two steps, like Core: the header, then the body it points to.
    private func control(argument: UInt64, memory: CallerMemory) -> IoctlOutcome {
        let headerRange = CallerRange(address: argument, length: 88)
        guard case .bytes(var header) = memory.lookup(headerRange) else {
            return .needMemory(read: [headerRange], write: [headerRange])
        }
        let body = header[80 ..< 88].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        let bodyRange = CallerRange(address: body, length: bodySize)
        func named(_ name: String) -> [UInt8] {
            var h = header
            let n = Array(name.utf8)
            h.replaceSubrange(8 ..< 72, with: n + [UInt8](repeating: 0, count: 64 - n.count))
            return h
        }
        switch memory.lookup(bodyRange) {
        case .missing:
            return .needMemory(read: [headerRange, bodyRange], write: [headerRange, bodyRange])
        case .unreadable:
            header = named("efault-wb")
            return .complete(errno: EFAULT, writes: [CallerWrite(address: argument, bytes: header)])
        case .bytes(let b):
            return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: named("fake-done")),
                                                CallerWrite(address: body, bytes: b.map { $0 ^ 0x5a })])
        }
    }

    func poll(events: Int16, waker: PollWaker?) -> Int16 {
        let start: Bool = pollState.withLock { s in
            if s.ready || waker == nil || s.armed || s.never { return false }
            s.armed = true
            return true
        }
        if start, let waker {
            detached { [self] in
                usleep(300_000)
                pollState.withLock { $0.ready = true }
                device.counters.withLock { $0.wakes += 1 }
                waker.wake()
            }
        }
        let ready = pollState.withLock { $0.ready }
        return ready ? events & Int16(POLLIN | POLLOUT) : 0
    }

    func mmapCheck(offset: UInt64, length: UInt64) -> Int32 {
        0
    }

    func release() {
        if released.exchange(true, ordering: .relaxed) {
            device.counters.withLock { $0.doubleReleases += 1 }
        } else {
            device.counters.withLock { $0.releases += 1 }
        }
    }
}

// MARK: - main

let arguments = CommandLine.arguments
let path = arguments.count > 1 ? arguments[1] : "/tmp/netmapd-fuse-test/netmap"
let threads = arguments.count > 2 ? Int(arguments[2]) ?? 2 : 2
let regionSize: UInt64 = 4 << 20

// Signals are taken by sigwait below, never delivered asynchronously.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGTERM)
sigaddset(&signals, SIGINT)
pthread_sigmask(SIG_BLOCK, &signals, nil)

let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
if !directory.isEmpty { mkdir(directory, 0o755) }
let existedBefore = access(path, F_OK) == 0

let regionPath = "/dev/shm/netmapd-fuse-test-region.\(getpid())"
let device = FakeDevice(path: regionPath, size: regionSize)
let frontEnd: FUSEFileDevice
do {
    frontEnd = try FUSEFileDevice(device: device, path: path, mode: 0o666, uid: 0, gid: 0, threads: threads,
                                  log: { say("log: \($0)") }, debugLog: { say("debug: \($0)") })
    try frontEnd.start()
} catch {
    say("probe: start failed: \(error)")
    unlink(regionPath)
    exit(1)
}
say("READY \(path) \(regionSize)")

var signal: Int32 = 0
sigwait(&signals, &signal)
frontEnd.stop()

var failures = 0
let c = device.counters.withLock { $0 }
say("probe: opens=\(c.opens) releases=\(c.releases) double_releases=\(c.doubleReleases) wakes=\(c.wakes)")
if c.doubleReleases != 0 { say("probe: FAIL: a file was released twice"); failures += 1 }
if c.releases != c.opens { say("probe: FAIL: \(c.opens - c.releases) files never released"); failures += 1 }
if !existedBefore && access(path, F_OK) == 0 { say("probe: FAIL: \(path) left behind"); failures += 1 }
unlink(regionPath)
say(failures == 0 ? "probe: ok" : "probe: \(failures) failures")
exit(failures == 0 ? 0 : 1)
