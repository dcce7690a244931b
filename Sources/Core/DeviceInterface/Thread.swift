// The one way the daemon starts a thread: pthread_create with its result
// checked. A failed start (EAGAIN: out of threads or memory) is an error the
// caller sees, never a zero handle that is joined later. Lives here because
// every layer that starts threads (Core's users, the ports, the front ends,
// the daemon) depends on this module.

#if canImport(Glibc)
import Glibc
#endif

/// pthread_create failed; `errno` is its result (EAGAIN, EINVAL, EPERM).
public struct ThreadStartError: Error, Equatable, Sendable, CustomStringConvertible {
    public var errno: Int32

    public init(errno: Int32) { self.errno = errno }

    public var description: String { "pthread_create: \(String(cString: strerror(errno)))" }
}

/// A running thread started by `spawn`, to be joined or detached once.
public struct JoinableThread: Sendable {
    public let handle: pthread_t

    /// Starts `body` on a new joinable thread. `stackSize` (bytes) replaces
    /// the default stack when given. Throws, with `body` never run, when the
    /// thread cannot be created.
    public static func spawn(stackSize: Int? = nil,
                             _ body: @escaping @Sendable () -> Void) throws(ThreadStartError) -> JoinableThread {
        var attr = pthread_attr_t()
        var rc = pthread_attr_init(&attr)
        guard rc == 0 else { throw ThreadStartError(errno: rc) }
        defer { pthread_attr_destroy(&attr) }
        if let stackSize {
            rc = pthread_attr_setstacksize(&attr, stackSize)
            guard rc == 0 else { throw ThreadStartError(errno: rc) }
        }
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        var handle = pthread_t()
        rc = pthread_create(&handle, &attr, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw ThreadStartError(errno: rc)
        }
        return JoinableThread(handle: handle)
    }

    /// Waits for the thread to end.
    public func join() { pthread_join(handle, nil) }

    /// Lets the thread end on its own; it must not be joined afterwards.
    public func detach() { pthread_detach(handle) }
}

private final class Body {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
