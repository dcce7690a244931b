// Who opened a file: the process (thread group) behind the thread id of an
// OPEN, pinned by a pidfd so that neither its exit nor a recycled pid can be
// mistaken for it later (MappingHolds asks whether it still maps the region).

#if canImport(Glibc)
import Glibc
#endif

/// The process (thread group) that opened a file, pinned by a pidfd.
final class Opener: Sendable {
    let tgid: Int32
    let pidfd: Int32

    init(tgid: Int32, pidfd: Int32) {
        self.tgid = tgid
        self.pidfd = pidfd
    }

    deinit {
        Sys.close(pidfd)
    }

    /// True once the whole process has exited (zombies included).
    var exited: Bool { Sys.processExited(pidfd) }
}

/// One `Opener` per live process, looked up by the thread id of an OPEN.
final class Openers: Sendable {
    private struct Weak {
        weak var opener: Opener?
    }

    private let cache = Locked<[Int32: Weak]>([:])

    /// The process of thread `tid`, or nil if it cannot be pinned (tid 0:
    /// the caller is outside the daemon's pid namespace; or it vanished).
    /// Called while the thread is blocked in the OPEN being answered, so the
    /// tid and its thread group cannot have been recycled.
    func opener(ofThread tid: Int32) -> Opener? {
        guard tid > 0 else { return nil }
        // A live process whose tgid equals a live thread's id is that
        // thread's own process (the thread is its leader).
        if let known = live(tid) { return known }
        let tgid: Int32
        let pidfd: Int32
        switch Sys.pidfdOpen(tid) {
        case .success(let fd):
            tgid = tid
            pidfd = fd
        case .failure:
            // EINVAL: not a thread-group leader; find its leader.
            guard let status = Sys.readWholeFile("/proc/\(tid)/status", chunk: 4096),
                  let group = ProcStatus.threadGroup(status) else { return nil }
            if let known = live(group) { return known }
            guard case .success(let fd) = Sys.pidfdOpen(group) else { return nil }
            tgid = group
            pidfd = fd
        }
        let made = Opener(tgid: tgid, pidfd: pidfd)
        return cache.withLock { c in
            if let other = c[tgid]?.opener, !other.exited { return other }  // a concurrent OPEN won
            c[tgid] = Weak(opener: made)
            if c.count > 256 { c = c.filter { $0.value.opener != nil } }
            return made
        }
    }

    private func live(_ tgid: Int32) -> Opener? {
        cache.withLock { c in
            guard let o = c[tgid]?.opener, !o.exited else { return nil }
            return o
        }
    }
}
