// EventLoop: an event thread. Each interface backend has one whose epoll set
// holds the sockets of its rings in netmap mode (readiness becomes kring
// wake-ups: RX frames arrived, a blocked TX socket has room again, AF_XDP
// completions); InterfaceDomains has one for the link monitors.
//
// Sockets are registered EPOLLONESHOT: one wake-up, then silence until the
// ring's next sync re-arms it. A busy receiver therefore costs one epoll
// event per sync, not one per frame (see PacketPort, "Choices").

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import DeviceInterface
import NetmapCore
import Synchronization

/// Something the event thread reports readiness to.
protocol EventHandler: AnyObject, Sendable {
    /// Called on the event thread with the epoll event bits.
    func handleEvents(_ events: UInt32)
}

final class EventLoop: @unchecked Sendable {
    private let epfd: Int32
    private let stopFd: Int32
    private let handlers = Lock.Protected<(next: UInt64, table: [UInt64: EventHandler])>((1, [:]))
    private var thread: JoinableThread?
    private let stopping = Atomic<Bool>(false)

    init() throws(NetmapError) {
        let e = nmd_epoll_create()
        guard e >= 0 else { throw NetmapError(-e) }
        let s = nmd_eventfd()
        guard s >= 0 else {
            close(e)
            throw NetmapError(-s)
        }
        epfd = e
        stopFd = s
        _ = nmd_epoll_add(epfd, stopFd, NMD_EPOLLIN, 0)
    }

    /// Watches `fd` for `events` (EPOLLONESHOT is the caller's choice) and
    /// returns the registration's id.
    func add(fd: Int32, events: UInt32, handler: EventHandler) throws(NetmapError) -> UInt64 {
        let id = handlers.withLock { h -> UInt64 in
            let id = h.next
            h.next += 1
            h.table[id] = handler
            return id
        }
        let rc = nmd_epoll_add(epfd, fd, events, id)
        if rc != 0 {
            _ = handlers.withLock { $0.table.removeValue(forKey: id) }
            throw NetmapError(-rc)
        }
        return id
    }

    /// Re-arms a one-shot registration. If `fd` is ready already the event
    /// fires at once, so nothing that happened before this call is lost.
    func rearm(fd: Int32, id: UInt64, events: UInt32) {
        _ = nmd_epoll_mod(epfd, fd, events, id)
    }

    /// Stops watching `fd`; an event already taken off the set may still be
    /// delivered to the handler once.
    func remove(fd: Int32, id: UInt64) {
        _ = nmd_epoll_del(epfd, fd)
        _ = handlers.withLock { $0.table.removeValue(forKey: id) }
    }

    /// Starts the thread; the errno of pthread_create if it cannot.
    func start() throws(NetmapError) {
        do {
            thread = try JoinableThread.spawn { [self] in run() }
        } catch {
            throw NetmapError(error.errno)
        }
    }

    /// Ends the thread and waits for it. The epoll descriptor stays open (a
    /// late epoll_ctl from a port released after shutdown then hits our own
    /// set, never a reused descriptor number).
    func stop() {
        guard let t = thread, !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = nmd_eventfd_signal(stopFd)
        t.join()
        thread = nil
        // No handler runs any more; most hold the loop (queues, the
        // completion watcher), so dropping them breaks those cycles (after
        // the lock: a handler's deinit may call remove).
        let dropped = handlers.withLock { h in
            defer { h.table = [:] }
            return h.table
        }
        _ = dropped
    }

    private func run() {
        let max = 64
        let ids = UnsafeMutablePointer<UInt64>.allocate(capacity: max)
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: max)
        defer {
            ids.deallocate()
            events.deallocate()
        }
        while !stopping.load(ordering: .acquiring) {
            let n = nmd_epoll_wait(epfd, ids, events, Int32(max), -1)
            if n < 0 {
                if -n == EINTR { continue }
                break
            }
            for i in 0 ..< Int(n) where ids[i] != 0 {
                let h = handlers.withLock { $0.table[ids[i]] }
                h?.handleEvents(events[i])
            }
        }
    }
}
