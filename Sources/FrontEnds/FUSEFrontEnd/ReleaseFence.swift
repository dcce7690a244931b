// close() then open()/register, in that order, as netmap's clients see it.
//
// netmap releases a descriptor inside close(): once close() returns, the
// port, its exclusive ownership and its geometry are gone, and the next
// registration creates the port afresh (with the ring counts it asks for;
// an exclusive registration succeeds). CUSE sends RELEASE synchronously
// too. A FUSE file does not: the kernel queues RELEASE as a background
// request and close() returns at once. The request is queued before close()
// returns, so it is read from /dev/fuse before anything the client does
// next; but several workers read the device, and the one that took the
// RELEASE can still be releasing (or not even have looked at what it read)
// when another has already read the client's next OPEN or registration.
// Measured without this fence: 170 of 300 close/exclusive-reopen rounds
// got EBUSY (Tests/device/nm_fidelity.c, close_reopen).
//
// The fence restores the order. Each worker publishes, in its own slot,
// what it is doing: "reading" (set before read(2)), the `unique` of a
// RELEASE it is handling (set as soon as read(2) returns, before anything
// that could block), or "busy" with something else. The kernel hands out
// `unique` in queue order. OPEN, and every ioctl that carries an argument
// (registration, info, control requests), first waits until no other
// worker is handling a RELEASE with a smaller `unique`, and until every
// worker marked "reading" is really asleep in read(2) (its state in
// /proc/self/task/TID/stat is S): a "reading" worker that is running may
// have just returned with a RELEASE it has not published yet. Argumentless
// ioctls (the syncs) never wait: a sync cannot observe a release, and a
// release that removes a port's TAP or filters must not stall other
// clients' syncs. The wait is bounded (`limitSeconds`), so the fence can
// delay a request but never block it; on the request path it costs two
// atomic stores per request.

import CFUSEKernel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class ReleaseFence: Sendable {
    /// Longest wait for earlier releases, seconds.
    static let limitSeconds = 2.0

    /// One worker's slot.
    final class Slot: Sendable {
        /// `busy`, `reading`, or `releaseBit | unique`.
        fileprivate let state = Atomic<UInt64>(ReleaseFence.busy)
        /// The worker's thread id (0 until it runs).
        fileprivate let tid = Atomic<Int32>(0)

        /// The worker is about to block in read(2) on /dev/fuse.
        @inline(__always) func reading() { state.store(ReleaseFence.reading, ordering: .releasing) }

        /// read(2) returned request `unique` with `opcode`: published at
        /// once, before the request is looked at further.
        @inline(__always) func read(unique: UInt64, isRelease: Bool) {
            state.store(isRelease ? ReleaseFence.releaseBit | unique : ReleaseFence.busy, ordering: .releasing)
        }

        /// The RELEASE is done.
        @inline(__always) func released() { state.store(ReleaseFence.busy, ordering: .releasing) }

        /// Called once by the worker's thread when it starts.
        func started() { tid.store(fk_gettid(), ordering: .releasing) }
    }

    fileprivate static let busy: UInt64 = 0
    fileprivate static let reading: UInt64 = 1
    fileprivate static let releaseBit: UInt64 = 1 << 63

    let slots: [Slot]

    init(workers: Int) {
        slots = (0 ..< workers).map { _ in Slot() }
    }

    /// Waits until the releases read before request `unique` are done (at
    /// most `limitSeconds`); `own` is the caller's slot.
    func waitForEarlier(than unique: UInt64, own: Slot) {
        let deadline = Sys.monotonicSeconds() + Self.limitSeconds
        while pending(before: unique, own: own) && Sys.monotonicSeconds() < deadline {
            usleep(50)
        }
    }

    private func pending(before unique: UInt64, own: Slot) -> Bool {
        for slot in slots where slot !== own {
            let s = slot.state.load(ordering: .acquiring)
            if s & Self.releaseBit != 0 {
                if s & ~Self.releaseBit < unique { return true }
            } else if s == Self.reading {
                let tid = slot.tid.load(ordering: .acquiring)
                if tid != 0 && !Self.asleep(tid) { return true }
            }
        }
        return false
    }

    /// True if thread `tid` of this process is sleeping (state S); a thread
    /// that is gone holds nothing either.
    private static func asleep(_ tid: Int32) -> Bool {
        guard let stat = Sys.readWholeFile("/proc/self/task/\(tid)/stat", chunk: 512),
              let state = ProcStat.state(stat) else { return true }
        return state == UInt8(ascii: "S")
    }
}
