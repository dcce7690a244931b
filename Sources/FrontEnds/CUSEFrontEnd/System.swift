// The few system facts the CUSE front end needs besides libfuse: a
// caller's thread group, a device number from sysfs. (Threads:
// DeviceInterface's JoinableThread.)

import Glibc

/// Reads a small text file whole (sysfs, procfs); nil on any error.
func readSmallFile(_ path: String, limit: Int = 4096) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: limit)
    var used = 0
    while used < limit {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + used, limit - used) }
        if n < 0 { if errno == EINTR { continue }; return nil }
        if n == 0 { break }
        used += n
    }
    return String(decoding: bytes[0 ..< used], as: UTF8.self)
}

/// The thread group (process) id of thread `tid` (fuse_ctx.pid is a thread
/// id); `tid` itself when /proc does not say.
func threadGroup(of tid: Int32) -> Int32 {
    guard tid > 0, let status = readSmallFile("/proc/\(tid)/status") else { return tid }
    for line in status.split(separator: "\n") where line.hasPrefix("Tgid:") {
        if let v = Int32(line.dropFirst(5).trimmingPrefix(while: { $0 == " " || $0 == "\t" })) { return v }
    }
    return tid
}

/// A "MAJOR:MINOR" sysfs `dev` attribute as a dev_t.
func readSysDev(_ path: String) -> dev_t? {
    guard let text = readSmallFile(path) else { return nil }
    let parts = text.split(whereSeparator: { $0 == ":" || $0 == "\n" })
    guard parts.count >= 2, let major = UInt64(parts[0]), let minor = UInt64(parts[1]) else { return nil }
    // glibc's makedev
    let dev = ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8)
        | ((minor & 0xffffff00) << 12) | (minor & 0xff)
    return dev_t(dev)
}

/// A pthread mutex (no spinning: waiters sleep in the kernel at once).
final class BlockingLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
