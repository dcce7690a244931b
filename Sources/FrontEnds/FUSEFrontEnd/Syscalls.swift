// The system calls of the FUSE-file front end, each wrapped once: errno is
// captured right after the call, EINTR retried here, failures returned as
// `Errno` values or thrown as `FUSEFileError`.

import CFUSEKernel
#if canImport(Glibc)
import Glibc
#endif

/// A failure of the FUSE-file front end: what it was doing and the errno.
public struct FUSEFileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32 = 0) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        errno == 0 ? operation : "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// An errno value, as returned by the non-throwing wrappers on the request path.
struct Errno: Error, Equatable {
    var rawValue: Int32
}

/// A value only reachable under its own pthread mutex. The front end's
/// shared tables use this, not Synchronization.Mutex: on Linux that one
/// locks through futexes inside the uninstrumented Swift runtime, so
/// ThreadSanitizer cannot see it and reports every access it protects as
/// a race (`make test-daemon-sanitized`). Core's Lock.Protected is the same
/// thing on the other side of DeviceInterface.
final class Locked<Value>: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body(&value)
    }
}

enum Sys {
    // Mount flags and umount2 flags (<sys/mount.h>), spelled out because
    // glibc declares them as an anonymous enum.
    static let MS_NOSUID: UInt = 2
    static let MS_NODEV: UInt = 4
    static let MS_NOEXEC: UInt = 8
    static let MNT_DETACH: Int32 = 2

    /// open(2).
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Result<Int32, Errno> {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return .success(fd) }
            let e = Glibc.errno
            if e != EINTR { return .failure(Errno(rawValue: e)) }
        }
    }

    /// close(2); errors other than EBADF are not actionable after the fact.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// read(2) of one request from /dev/fuse (EINTR retried).
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Errno> {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return .success(n) }
            let e = Glibc.errno
            if e != EINTR { return .failure(Errno(rawValue: e)) }
        }
    }

    /// write(2) of one whole reply or notification (the device takes a
    /// message in one write or not at all).
    static func write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Result<Int, Errno> {
        while true {
            let n = Glibc.write(fd, buffer, count)
            if n >= 0 { return .success(n) }
            let e = Glibc.errno
            if e != EINTR { return .failure(Errno(rawValue: e)) }
        }
    }

    /// mount(2).
    static func mount(source: String, target: String, type: String, flags: UInt, data: String?) -> Result<Void, Errno> {
        let rc: Int32
        if let data {
            rc = data.withCString { Glibc.mount(source, target, type, flags, UnsafeRawPointer($0)) }
        } else {
            rc = Glibc.mount(source, target, type, flags, UnsafeRawPointer(bitPattern: 0))
        }
        return rc == 0 ? .success(()) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// umount2(2).
    static func umount(_ target: String, flags: Int32) -> Result<Void, Errno> {
        Glibc.umount2(target, flags) == 0 ? .success(()) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// stat(2).
    static func fileStatus(_ path: String) -> Result<stat, Errno> {
        var st = stat()
        return stat(path, &st) == 0 ? .success(st) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// statx(2) with AT_STATX_FORCE_SYNC: (st_mode, size) as the file
    /// system says now, not as cached.
    static func syncedStatus(_ path: String) -> Result<(mode: UInt32, size: UInt64), Errno> {
        var mode: UInt32 = 0
        var size: UInt64 = 0
        return fk_stat_sync(path, &mode, &size) == 0
            ? .success((mode, size)) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// statfs(2) f_type of the file system holding `path`, nil on error.
    static func fileSystemType(_ path: String) -> Int? {
        let type = fk_fs_type(path)
        return type < 0 ? nil : type
    }

    /// unlink(2).
    static func unlink(_ path: String) -> Result<Void, Errno> {
        Glibc.unlink(path) == 0 ? .success(()) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// Writes `text` to an existing file (sysfs/fusectl control files).
    static func writeFile(_ path: String, _ text: String) -> Result<Void, Errno> {
        switch open(path, O_WRONLY) {
        case .failure(let e): return .failure(e)
        case .success(let fd):
            defer { close(fd) }
            var bytes = Array(text.utf8)
            let r = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress!, $0.count) }
            switch r {
            case .success: return .success(())
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// mkdtemp(3) with `template` ending in XXXXXX.
    static func makeTemporaryDirectory(_ template: String) -> Result<String, Errno> {
        var chars = Array(template.utf8CString)
        let ok = chars.withUnsafeMutableBufferPointer { Glibc.mkdtemp($0.baseAddress!) != nil }
        return ok ? .success(String(decoding: chars.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// rmdir(2).
    static func rmdir(_ path: String) {
        _ = Glibc.rmdir(path)
    }

    /// FUSE_DEV_IOC_BACKING_OPEN: a passthrough backing id for `fd`.
    static func backingOpen(device: Int32, file: Int32) -> Result<Int32, Errno> {
        let id = fk_backing_open(device, file)
        return id > 0 ? .success(id) : .failure(Errno(rawValue: id < 0 ? Glibc.errno : EIO))
    }

    /// process_vm_readv(2) of one range of thread/process `pid`; true only
    /// if the whole range was read.
    static func readCaller(pid: Int32, into local: UnsafeMutableRawPointer, from remote: UInt64, length: Int) -> Bool {
        fk_read_caller(pid, local, remote, length) == length
    }

    /// process_vm_writev(2) of one range of thread/process `pid`; true only
    /// if the whole range was written.
    static func writeCaller(pid: Int32, from local: UnsafeRawPointer, to remote: UInt64, length: Int) -> Bool {
        fk_write_caller(pid, local, remote, length) == length
    }

    /// Blocks every asynchronous signal in the calling thread (worker
    /// threads leave signals to the daemon's own handling).
    static func blockAllSignals() {
        var set = sigset_t()
        sigfillset(&set)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The kernel's dev_t encoding (MKDEV: major << 20 | minor) of a
    /// userspace st_dev, which names the connection under fusectl.
    static func kernelDeviceNumber(_ dev: UInt64) -> UInt64 {
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000)
        let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
        return (major << 20) | minor
    }

    /// pidfd_open(2) of thread-group leader `pid`.
    static func pidfdOpen(_ pid: Int32) -> Result<Int32, Errno> {
        let fd = fk_pidfd_open(pid)
        return fd >= 0 ? .success(fd) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// True once the process behind `pidfd` has exited (the descriptor
    /// polls readable); a zombie counts as exited.
    static func processExited(_ pidfd: Int32) -> Bool {
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        while true {
            let n = Glibc.poll(&p, 1, 0)
            if n >= 0 { return n > 0 }
            if Glibc.errno != EINTR { return true }
        }
    }

    /// The whole contents of a (/proc) file, read in `chunk`-sized reads;
    /// nil if it cannot be opened or read.
    static func readWholeFile(_ path: String, chunk: Int = 65536) -> [UInt8]? {
        guard case .success(let fd) = open(path, O_RDONLY) else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let r = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, chunk) }
            switch r {
            case .success(0): return bytes
            case .success(let n): bytes.append(contentsOf: buffer[0 ..< n])
            case .failure: return nil
            }
        }
    }

    /// (major, minor) of a userspace dev_t (glibc's gnu_dev_major/minor).
    static func deviceNumbers(_ dev: UInt64) -> (major: UInt32, minor: UInt32) {
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000)
        let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }

    /// fstat(2).
    static func fileStatus(fd: Int32) -> Result<stat, Errno> {
        var st = stat()
        return fstat(fd, &st) == 0 ? .success(st) : .failure(Errno(rawValue: Glibc.errno))
    }

    /// A non-blocking, close-on-exec pipe: (read end, write end).
    static func wakePipe() -> Result<(Int32, Int32), Errno> {
        var fds: [Int32] = [-1, -1]
        guard Glibc.pipe(&fds) == 0 else { return .failure(Errno(rawValue: Glibc.errno)) }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return .success((fds[0], fds[1]))
    }

    /// CLOCK_MONOTONIC now, in seconds.
    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// CLOCK_REALTIME now.
    static func now() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }
}
