// The thread behind MappingHolds: sleeps in poll on a wake-up pipe and on
// the pidfds of the processes with kept files, and asks for a recheck every
// `MappingHolds.recheckMilliseconds` while anything is kept, and at once
// when one of those processes exits. It holds no state of its own but the
// pipe and the thread.

import DeviceInterface
#if canImport(Glibc)
import Glibc
#endif

final class MappingReaper: Sendable {
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let thread = Locked<JoinableThread?>(nil)

    init() throws {
        switch Sys.wakePipe() {
        case .success(let (r, w)):
            wakeRead = r
            wakeWrite = w
        case .failure(let e):
            throw FUSEFileError("pipe for the mapping reaper", errno: e.rawValue)
        }
    }

    deinit {
        Sys.close(wakeRead)
        Sys.close(wakeWrite)
    }

    /// Starts the thread. `watch` gives the pidfds to sleep on (nil: stop),
    /// `recheck` is called after each wait that had any.
    func start(watch: @escaping @Sendable () -> [Int32]?, recheck: @escaping @Sendable () -> Void)
        -> Result<Void, Errno> {
        do {
            let t = try JoinableThread.spawn { [self] in run(watch: watch, recheck: recheck) }
            thread.withLock { $0 = t }
            return .success(())
        } catch {
            return .failure(Errno(rawValue: error.errno))
        }
    }

    /// Wakes the thread: the list of pidfds has changed, or it is to stop.
    func wake() {
        var b: UInt8 = 1
        _ = Glibc.write(wakeWrite, &b, 1)  // EAGAIN: a wake-up is pending anyway
    }

    /// Ends the thread; `watch` must return nil from now on.
    func stop() {
        wake()
        thread.withLock { t in
            defer { t = nil }
            return t
        }?.join()
    }

    private func run(watch: @Sendable () -> [Int32]?, recheck: @Sendable () -> Void) {
        Sys.blockAllSignals()
        while let pidfds = watch() {
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            fds += pidfds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = Glibc.poll(&fds, nfds_t(fds.count), pidfds.isEmpty ? -1 : MappingHolds.recheckMilliseconds)
            var sink = [UInt8](repeating: 0, count: 64)
            while sink.withUnsafeMutableBytes({ Glibc.read(wakeRead, $0.baseAddress!, 64) }) > 0 {}
            if pidfds.isEmpty { continue }  // a wake-up: look at the new list
            recheck()
        }
    }
}
