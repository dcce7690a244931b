#if canImport(Glibc)
import Glibc
#endif

/// A plain mutex for control-path state (registry, session binding), where
/// holding it across calls into ports is the point, and the kring's sync
/// trylock. Core uses pthread mutexes (this and Lock.Protected) rather than
/// Synchronization.Mutex: on Linux that one is built from futexes inside the
/// uninstrumented Swift runtime, so ThreadSanitizer cannot see it and reports
/// every access it protects as a race (scripts/test-tsan.sh).
public final class Lock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(m) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(m) }

    @inline(__always)
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }

    /// Runs `body` holding the lock if nobody holds it now; nil otherwise.
    @inline(__always)
    public func withLockIfAvailable<T>(_ body: () -> T) -> T? {
        guard pthread_mutex_trylock(m) == 0 else { return nil }
        defer { pthread_mutex_unlock(m) }
        return body()
    }
}

extension Lock {
    /// A value only reachable under its own lock.
    public final class Protected<Value>: @unchecked Sendable {
        private let lock = Lock()
        private var value: Value

        public init(_ value: Value) { self.value = value }

        public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
            lock.lock()
            defer { lock.unlock() }
            return try body(&value)
        }
    }
}
