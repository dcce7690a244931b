// CUSEDevice: /dev/netmap as a CUSE character device (libfuse3's CUSE
// low-level API, kernel module `cuse`).
//
// What travels where:
//   open(2)     -> open     -> NetmapDevice.open, the DeviceFile kept in a table,
//                              its id in fuse_file_info.fh
//   ioctl(2)    -> ioctl    -> DeviceFile.ioctl, round by round through the
//                              unrestricted-ioctl retry (IoctlRetry.swift)
//   poll(2)     -> poll     -> DeviceFile.poll with a CUSEPollWaker holding the
//                              fuse_pollhandle (PollHandle.swift)
//   last close  -> release  -> DeviceFile.release
//   mmap(2)     -> nothing: CUSE has no mmap (ENODEV); the LD_PRELOAD shim
//                  (Sources/Shim) asks NETMAPD_IOC_REGION and maps the region
//                  file itself. A registered client that syncs without ever
//                  having asked gets a hint in the log.
// Requests are read by `workers` threads taking turns: the one whose turn it
// is polls the /dev/cuse channel (non-blocking) and a stop pipe, so stop()
// ends the loop from any thread; the others are processing or queued.

import CFuse3
import CNetmapABI
import DeviceInterface
import Glibc
import Synchronization

public struct CUSEError: Error, CustomStringConvertible {
    public let message: String
    public let errno: Int32

    public var description: String {
        errno == 0 ? message : "\(message): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

public final class CUSEDevice: @unchecked Sendable {
    public let name: String
    let device: NetmapDevice
    let mode: UInt32
    let uid: UInt32
    let gid: UInt32
    let workers: Int
    let log: @Sendable (String) -> Void

    /// The /dev/cuse channel, opened by init; owned by the fuse session once run() made one.
    private let channel: Int32
    /// A pipe whose read end becomes readable (and stays so) once stop() was called.
    private let stopRead: Int32
    private let stopWrite: Int32
    private let phase = Mutex(Phase.created)
    private let files = Mutex(FileTable())
    private let clients = Mutex(ClientBook())
    let liveness = SessionLiveness()
    private let readyHook = Mutex<(@Sendable () -> Void)?>(nil)
    /// Held by the one worker that is waiting for the next request. A plain
    /// pthread mutex: the others sleep on it rather than spin (Mutex spins
    /// first, which costs dearly while the holder sits in poll).
    private let readerTurn = BlockingLock()

    private enum Phase { case created, running, finished }

    /// Opens /dev/cuse (so a machine without CUSE fails here, early) but does
    /// not create the device yet: run() does.
    /// - Parameters:
    ///   - name: the device name under /dev ("netmap").
    ///   - mode, uid, gid: applied to /dev/NAME once the kernel created it.
    ///   - workers: threads reading requests.
    public init(device: NetmapDevice, name: String = "netmap", mode: UInt32 = 0o600,
                uid: UInt32 = 0, gid: UInt32 = 0, workers: Int = 4,
                log: @escaping @Sendable (String) -> Void) throws {
        guard !name.isEmpty, !name.contains("="), !name.hasPrefix("/"), name.utf8.count < 200 else {
            throw CUSEError(message: "bad CUSE device name '\(name)'", errno: EINVAL)
        }
        self.device = device
        self.name = name
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.workers = max(1, workers)
        self.log = log
        let fd = Glibc.open("/dev/cuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            let hint = (e == ENOENT || e == ENODEV) ? " (is the cuse module loaded? try 'modprobe cuse')" : ""
            throw CUSEError(message: "cannot open /dev/cuse\(hint)", errno: e)
        }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw CUSEError(message: "pipe", errno: e)
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        channel = fd
        stopRead = ends[0]
        stopWrite = ends[1]
    }

    deinit {
        if phase.withLock({ $0 }) == .created { Glibc.close(channel) }
        Glibc.close(stopRead)
        Glibc.close(stopWrite)
    }

    /// Creates /dev/NAME and serves it until stop() is called or the kernel
    /// drops the connection; then releases every open file and removes the
    /// device. `ready` runs once the device exists (and has its mode).
    public func run(ready: (@Sendable () -> Void)? = nil) throws {
        try phase.withLock { p in
            guard p == .created else { throw CUSEError(message: "CUSEDevice.run called twice", errno: EBUSY) }
            p = .running
        }
        defer { phase.withLock { $0 = .finished } }
        readyHook.withLock { $0 = ready }

        let argv0 = strdup("netmapd-cuse")
        let devinfo = strdup("DEVNAME=\(name)")
        defer { free(argv0); free(devinfo) }
        var argv: [UnsafeMutablePointer<CChar>?] = [argv0, nil]
        var info: [UnsafePointer<CChar>?] = [UnsafePointer(devinfo)]
        var ops = cuse_lowlevel_ops()
        ops.init_done = { userdata in
            Unmanaged<CUSEDevice>.fromOpaque(userdata!).takeUnretainedValue().initDone()
        }
        ops.open = { req, fi in CUSEDevice.of(req).open(req!, fi!) }
        ops.release = { req, fi in CUSEDevice.of(req).release(req!, fi!) }
        ops.ioctl = { req, cmd, arg, fi, flags, inBuf, inSize, outSize in
            CUSEDevice.of(req).ioctl(req!, UInt32(bitPattern: cmd), UInt64(UInt(bitPattern: arg)), fi!,
                                     flags, UnsafeRawBufferPointer(start: inBuf, count: inSize), outSize)
        }
        ops.poll = { req, fi, ph in CUSEDevice.of(req).poll(req!, fi!, ph) }

        let session: OpaquePointer? = argv.withUnsafeMutableBufferPointer { argvBuf in
            info.withUnsafeMutableBufferPointer { infoBuf in
                var args = fuse_args(argc: 1, argv: argvBuf.baseAddress, allocated: 0)
                var ci = cuse_info()
                ci.dev_info_argc = 1
                ci.dev_info_argv = infoBuf.baseAddress
                ci.flags = 1 // CUSE_UNRESTRICTED_IOCTL: pointer-bearing ioctls through the retry
                return cuse_lowlevel_new(&args, &ci, &ops, Unmanaged.passUnretained(self).toOpaque())
            }
        }
        guard let session else {
            Glibc.close(channel)
            throw CUSEError(message: "cuse_lowlevel_new failed", errno: 0)
        }
        // "/dev/fd/N": libfuse takes the already open channel; fuse_session_destroy closes it.
        guard fuse_session_mount(session, "/dev/fd/\(channel)") == 0 else {
            Glibc.close(channel)
            fuse_session_destroy(session)
            throw CUSEError(message: "fuse_session_mount(/dev/fd/\(channel)) failed", errno: 0)
        }
        let flags = fcntl(channel, F_GETFL)
        _ = fcntl(channel, F_SETFL, flags | O_NONBLOCK)
        liveness.open()

        let shared = SessionPointer(session)
        var threads: [JoinableThread] = []
        for _ in 0 ..< workers {
            do {
                threads.append(try JoinableThread.spawn { [self] in self.serve(shared.pointer) })
            } catch {
                log("cuse: worker thread: \(error)")
            }
        }
        if threads.isEmpty { log("cuse: could not start any worker thread") }
        for t in threads { t.join() }

        // Teardown: no notification may touch the session from here on.
        liveness.close()
        let open = files.withLock { table -> [OpenFile] in
            table.closed = true
            defer { table.byID.removeAll() }
            return Array(table.byID.values)
        }
        for f in open { f.file.release() }
        fuse_session_destroy(session) // closes the channel: the kernel removes /dev/NAME
        log("cuse: /dev/\(name) removed (\(open.count) open file(s) released)")
    }

    /// Ends run() from any thread, before or during run(). Async-signal-safe
    /// (one write(2)).
    public func stop() {
        var one: UInt8 = 1
        _ = write(stopWrite, &one, 1)
    }

    // MARK: - session loop

    private enum Received { case request, stop }

    /// One worker. Workers take turns at reading (`readerTurn`): the one
    /// holding it waits for a request or for stop, reads the request into
    /// its own buffer, gives the turn on, then processes the request. So a
    /// request wakes one thread, not all of them.
    private func serve(_ session: OpaquePointer) {
        var buf = fuse_buf()
        defer { free(buf.mem) }
        while true {
            let next: Received = readerTurn.withLock { receive(session, &buf) }
            guard next == .request else { return }
            fuse_session_process_buf(session, &buf)
        }
    }

    private func receive(_ session: OpaquePointer, _ buf: inout fuse_buf) -> Received {
        while true {
            var fds = [pollfd(fd: channel, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0)]
            let n = Glibc.poll(&fds, 2, -1)
            if n < 0 {
                if errno == EINTR { continue }
                log("cuse: poll: \(String(cString: strerror(errno)))")
                stop()
                return .stop
            }
            if fds[1].revents != 0 { return .stop }
            if fds[0].revents & Int16(POLLIN) == 0 {
                if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                    log("cuse: the kernel closed the connection")
                    stop()
                    return .stop
                }
                continue
            }
            let got = fuse_session_receive_buf(session, &buf)
            if got == -EAGAIN || got == -EINTR { continue }  // an interrupted request vanished
            if got <= 0 {
                if got == -ENODEV || got == 0 || fuse_session_exited(session) != 0 {
                    log("cuse: connection ended")
                    stop()
                    return .stop
                }
                log("cuse: reading a request: \(String(cString: strerror(-got)))")
                continue
            }
            return .request
        }
    }

    // MARK: - requests

    static func of(_ req: fuse_req_t?) -> CUSEDevice {
        Unmanaged<CUSEDevice>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    }

    private func initDone() {
        applyOwnership()
        log("cuse: /dev/\(name) is ready")
        if let hook = readyHook.withLock({ $0 }) { hook() }
    }

    private func open(_ req: fuse_req_t, _ fi: UnsafeMutablePointer<fuse_file_info>) {
        let ctx = fuse_req_ctx(req)!.pointee
        let tgid = threadGroup(of: ctx.pid)
        let file = device.open(client: ClientIdentity(pid: tgid, uid: ctx.uid, gid: ctx.gid))
        let entry = OpenFile(file: file, openerTgid: tgid)
        let id = files.withLock { table -> UInt64? in
            guard !table.closed else { return nil }
            table.lastID &+= 1
            table.byID[table.lastID] = entry
            return table.lastID
        }
        guard let id else {
            file.release()
            _ = fuse_reply_err(req, ENODEV)
            return
        }
        fi.pointee.fh = id
        fi.pointee.nonseekable = 1
        if fuse_reply_open(req, fi) == -ENOENT {
            // The open was interrupted: no release will follow.
            if let e = files.withLock({ $0.byID.removeValue(forKey: id) }) { e.file.release() }
        }
    }

    private func release(_ req: fuse_req_t, _ fi: UnsafeMutablePointer<fuse_file_info>) {
        if let entry = files.withLock({ $0.byID.removeValue(forKey: fi.pointee.fh) }) {
            maybeHintMissingShim(entry, callerTid: fuse_req_ctx(req)!.pointee.pid, atRelease: true)
            entry.file.release()
        }
        _ = fuse_reply_err(req, 0)
    }

    private func lookup(_ fi: UnsafeMutablePointer<fuse_file_info>) -> OpenFile? {
        files.withLock { $0.byID[fi.pointee.fh] }
    }

    private func ioctl(_ req: fuse_req_t, _ command: UInt32, _ argument: UInt64,
                       _ fi: UnsafeMutablePointer<fuse_file_info>, _ flags: UInt32,
                       _ input: UnsafeRawBufferPointer, _ outputRoom: Int) {
        guard let entry = lookup(fi) else { _ = fuse_reply_err(req, EBADF); return }
        if flags & fuseIoctlCompat != 0 {
            // 32-bit callers: the shared structures hold ssize_t and timeval.
            _ = fuse_reply_err(req, EOPNOTSUPP)
            return
        }
        let tid = fuse_req_ctx(req)!.pointee.pid
        let first = input.count == 0 && outputRoom == 0
        let pending = first ? nil : entry.pending.withLock { $0.removeValue(forKey: tid) }
        let (reply, next, complaint) = IoctlRetry.step(
            pending: pending, command: command, argument: argument, input: input, outputRoom: outputRoom
        ) { memory in entry.file.ioctl(command: command, argument: argument, memory: memory, caller: tid) }
        if let next { entry.pending.withLock { $0[tid] = next } }
        send(reply, to: req)
        if let complaint { log("cuse: \(complaint)") }

        switch command {
        case NIOCTXSYNC, NIOCRXSYNC:
            maybeHintMissingShim(entry, callerTid: tid, atRelease: false)
        case NETMAPD_IOC_REGION:
            if case .data(result: 0, _) = reply { noteRegionAsked(entry, callerTid: tid) }
        default:
            break
        }
    }

    private func send(_ reply: CUSEIoctlReply, to req: fuse_req_t) {
        switch reply {
        case let .retry(read, write):
            var iovs = (read + write).map {
                iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt($0.address)), iov_len: $0.length)
            }
            iovs.withUnsafeMutableBufferPointer { b in
                _ = fuse_reply_ioctl_retry(req, b.baseAddress, read.count,
                                           b.baseAddress.map { $0 + read.count }, write.count)
            }
        case let .data(result, bytes):
            bytes.withUnsafeBytes { b in _ = fuse_reply_ioctl(req, result, b.baseAddress, b.count) }
        case let .error(e):
            _ = fuse_reply_err(req, e)
        }
    }

    private func poll(_ req: fuse_req_t, _ fi: UnsafeMutablePointer<fuse_file_info>, _ ph: OpaquePointer?) {
        guard let entry = lookup(fi) else {
            if let ph { fuse_pollhandle_destroy(ph) }
            _ = fuse_reply_err(req, EBADF)
            return
        }
        let events = Int16(truncatingIfNeeded: fi.pointee.poll_events)
        let waker = ph.map { CUSEPollWaker(handle: $0, session: liveness, file: fi.pointee.fh) }
        let revents = entry.file.poll(events: events, waker: waker)
        _ = fuse_reply_poll(req, UInt32(UInt16(bitPattern: revents)))
        maybeHintMissingShim(entry, callerTid: fuse_req_ctx(req)!.pointee.pid, atRelease: false)
    }

    // MARK: - the missing-shim hint

    private func noteRegionAsked(_ entry: OpenFile, callerTid: Int32) {
        entry.regionAsked.store(true, ordering: .releasing)
        let tgid = threadGroup(of: callerTid)
        clients.withLock { $0.noteAsked(tgid) }
    }

    /// Once per open file, at its first sync/poll after registration (or at
    /// release): if nobody ever asked where the region is, neither through
    /// this file nor from the process that opened it nor from the caller,
    /// the client most likely runs without the shim (its mmap got ENODEV).
    private func maybeHintMissingShim(_ entry: OpenFile, callerTid: Int32, atRelease: Bool) {
        guard !entry.hintSettled.load(ordering: .acquiring) else { return }
        if entry.regionAsked.load(ordering: .acquiring) {
            entry.hintSettled.store(true, ordering: .releasing)
            return
        }
        guard entry.file.mmapCheck(offset: 0, length: 1) == 0 else { return } // not registered (yet)
        guard entry.hintSettled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let caller = threadGroup(of: callerTid)
        let first = clients.withLock { book -> Bool in
            if book.asked.contains(entry.openerTgid) || book.asked.contains(caller) { return false }
            return book.noteHinted(entry.openerTgid)
        }
        guard first else { return }
        let what = atRelease ? "registered on /dev/\(name) and closed it" : "registered on /dev/\(name) and syncs"
        log("cuse: hint: process \(entry.openerTgid) \(what) without ever asking where the shared memory is "
            + "(NETMAPD_IOC_REGION). CUSE has no mmap: a netmap client's mmap fails with ENODEV unless it "
            + "runs with LD_PRELOAD=libnetmapd-shim.so")
    }

    // MARK: - device node

    /// Gives /dev/NAME the configured mode and owner, once it is the node of
    /// our CUSE device (devtmpfs creates it 0600 root:root).
    private func applyOwnership() {
        let path = "/dev/\(name)"
        guard let wanted = readSysDev("/sys/class/cuse/\(name)/dev") else {
            log("cuse: cannot read /sys/class/cuse/\(name)/dev; leaving \(path) as the kernel made it")
            return
        }
        for _ in 0 ..< 100 {
            var st = stat()
            if stat(path, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFCHR, st.st_rdev == wanted else {
                    log("cuse: \(path) is not our device node; leaving it alone")
                    return
                }
                if chmod(path, mode_t(mode & 0o7777)) != 0 || chown(path, uid, gid) != 0 {
                    log("cuse: setting mode/owner of \(path): \(String(cString: strerror(errno)))")
                }
                return
            }
            usleep(20_000)
        }
        log("cuse: \(path) did not appear (no devtmpfs or udev?)")
    }
}

// FUSE_IOCTL_COMPAT: the ioctl came through the 32-bit compat entry point.
let fuseIoctlCompat: UInt32 = 1 << 0

/// One open file description of the device.
final class OpenFile: Sendable {
    let file: DeviceFile
    let openerTgid: Int32
    /// Each calling thread's ioctl in progress (between retry rounds).
    let pending = Mutex<[Int32: PendingIoctl]>([:])
    /// NETMAPD_IOC_REGION succeeded on this file (the shim is at work).
    let regionAsked = Atomic<Bool>(false)
    /// The missing-shim check has been made for this file.
    let hintSettled = Atomic<Bool>(false)

    init(file: DeviceFile, openerTgid: Int32) {
        self.file = file
        self.openerTgid = openerTgid
    }
}

struct FileTable {
    var byID: [UInt64: OpenFile] = [:]
    var lastID: UInt64 = 0
    var closed = false
}

/// Processes (thread group ids) that asked for the region, and those already
/// given the hint. Bounded: ids are reused, so forgetting old ones only costs
/// a repeated or a missed hint.
struct ClientBook {
    var asked: Set<Int32> = []
    var hinted: Set<Int32> = []
    static let limit = 4096

    mutating func noteAsked(_ tgid: Int32) {
        if asked.count >= Self.limit { asked.removeAll() }
        asked.insert(tgid)
    }

    mutating func noteHinted(_ tgid: Int32) -> Bool {
        if hinted.count >= Self.limit { hinted.removeAll() }
        return hinted.insert(tgid).inserted
    }
}

/// The fuse session pointer, handed to worker threads.
struct SessionPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ p: OpaquePointer) { pointer = p }
}
