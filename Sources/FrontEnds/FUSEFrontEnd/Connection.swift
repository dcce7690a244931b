// The shared state of one mounted FUSE connection: the /dev/fuse descriptor
// (read by every worker, written by workers' replies and by poll wakers from
// any thread), the passthrough backing id, and the table of open files.

import CFUSEKernel
import DeviceInterface
#if canImport(Glibc)
import Glibc
#endif

/// The /dev/fuse descriptor of a mounted connection. Replies are written by
/// the worker that read the request; notifications (poll wake-ups) may come
/// from any thread at any time, even after stop, so they go through a
/// read-write lock that `close()` takes exclusively: a waker never writes to
/// a descriptor number that has been closed and perhaps reused.
final class FUSEConnection: @unchecked Sendable {
    let fd: Int32
    let backingID: Int32
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var closed = false  // guarded by `lock`

    init(fd: Int32, backingID: Int32) {
        self.fd = fd
        self.backingID = backingID
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// FUSE_NOTIFY_POLL for kernel poll handle `kh`: the kernel wakes every
    /// poller waiting on that file, which then polls again.
    func notifyPoll(kh: UInt64) {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if closed { return }
        let size = MemoryLayout<fk_out_header>.size + MemoryLayout<fk_notify_poll_wakeup_out>.size
        withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { buf in
            let p = buf.baseAddress!
            p.storeBytes(of: fk_out_header(len: UInt32(size), error: FK_NOTIFY_POLL, unique: 0), as: fk_out_header.self)
            p.storeBytes(of: fk_notify_poll_wakeup_out(kh: kh), toByteOffset: MemoryLayout<fk_out_header>.size,
                         as: fk_notify_poll_wakeup_out.self)
            // ENOENT/ENODEV (file gone, connection aborted) need no action.
            _ = Sys.write(fd, p, size)
        }
    }

    /// Closes the descriptor once no notification is being written.
    func close() {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if closed { return }
        closed = true
        Sys.close(fd)
    }
}

/// A poll wake-up handle: `wake()` becomes FUSE_NOTIFY_POLL for the kernel
/// poll handle of the FUSE_POLL request that armed it.
final class FUSEPollWaker: PollWaker {
    let connection: FUSEConnection
    let kh: UInt64

    init(connection: FUSEConnection, kh: UInt64) {
        self.connection = connection
        self.kh = kh
    }

    func wake() {
        connection.notifyPoll(kh: kh)
    }

    /// One kernel poll handle per file: one notification wakes all its pollers.
    var coalescingKey: UInt64? { kh }
}

/// One open file: the device file and the process that opened it (nil when
/// unknown: pid 0 in the header, or the opener vanished during OPEN).
struct OpenFile: Sendable {
    var file: any DeviceFile
    var opener: Opener?
}

/// Open files by the file handle (fh) returned in the OPEN reply. Removal is
/// the only way to reach `release()` (directly, or after a stay in
/// `MappingHolds`), so each file is released exactly once whether RELEASE or
/// stop() gets there first.
final class OpenFileTable: Sendable {
    private struct State {
        var nextHandle: UInt64 = 1
        var files: [UInt64: OpenFile] = [:]
    }

    private let state = Locked(State())

    func insert(_ file: any DeviceFile, opener: Opener?) -> UInt64 {
        state.withLock { s in
            let fh = s.nextHandle
            s.nextHandle &+= 1
            s.files[fh] = OpenFile(file: file, opener: opener)
            return fh
        }
    }

    func lookup(_ fh: UInt64) -> (any DeviceFile)? {
        state.withLock { $0.files[fh]?.file }
    }

    func remove(_ fh: UInt64) -> OpenFile? {
        state.withLock { $0.files.removeValue(forKey: fh) }
    }

    /// The files still open whose opener satisfies `match`.
    func files(where match: (Opener) -> Bool) -> [any DeviceFile] {
        state.withLock { s in
            s.files.values.compactMap { entry in entry.opener.map(match) == true ? entry.file : nil }
        }
    }

    func removeAll() -> [any DeviceFile] {
        state.withLock { s in
            let all = s.files.values.map(\.file)
            s.files.removeAll()
            return all
        }
    }
}
