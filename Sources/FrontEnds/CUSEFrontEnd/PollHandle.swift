// Poll wake-ups over CUSE: a poll request that asks to be notified carries a
// fuse_pollhandle; the device keeps it in a `CUSEPollWaker` and the first
// wake() turns it into fuse_lowlevel_notify_poll. Every handle is destroyed
// exactly once: by wake(), or when the waker is dropped unused.

import CFuse3
import DeviceInterface
import Glibc
import Synchronization

/// Whether the fuse session may still be written to. Wakers run on any
/// thread, at any time (even after the file was released); the session's
/// descriptor is closed at teardown, so a notification takes the read side
/// and teardown the write side.
final class SessionLiveness: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    private var alive = false

    init() { pthread_rwlock_init(lock, nil) }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func open() {
        pthread_rwlock_wrlock(lock)
        alive = true
        pthread_rwlock_unlock(lock)
    }

    /// After this returns no `whileAlive` body runs or will run.
    func close() {
        pthread_rwlock_wrlock(lock)
        alive = false
        pthread_rwlock_unlock(lock)
    }

    func whileAlive(_ body: () -> Void) {
        pthread_rwlock_rdlock(lock)
        if alive { body() }
        pthread_rwlock_unlock(lock)
    }
}

/// One fuse_pollhandle, fired at most once.
final class CUSEPollWaker: PollWaker {
    /// The fuse_pollhandle's address; 0 once fired or destroyed.
    private let handle: Atomic<UInt>
    private let session: SessionLiveness

    /// The open file it belongs to: the kernel wakes every poller of a file
    /// from one notification, so only the newest handle per file is kept.
    let coalescingKey: UInt64?

    init(handle: OpaquePointer, session: SessionLiveness, file: UInt64) {
        self.handle = Atomic(UInt(bitPattern: UnsafeRawPointer(handle)))
        self.session = session
        coalescingKey = file
    }

    func wake() {
        let raw = handle.exchange(0, ordering: .acquiringAndReleasing)
        guard raw != 0, let ph = OpaquePointer(bitPattern: raw) else { return }
        session.whileAlive { _ = fuse_lowlevel_notify_poll(ph) }
        fuse_pollhandle_destroy(ph)
    }

    deinit {
        let raw = handle.exchange(0, ordering: .acquiringAndReleasing)
        if raw != 0, let ph = OpaquePointer(bitPattern: raw) { fuse_pollhandle_destroy(ph) }
    }
}
