// Registrations kept alive while their descriptor is closed but the client
// still maps the region: netmap's lifetime rule, rebuilt in the front end.
//
// In netmap a mapping holds a reference to the file, so close() with the
// region still mapped keeps the binding (rings, exclusive ownership, extra
// buffers) until munmap or exit. With FUSE passthrough the mapping holds the
// backing (region) file, not the FUSE file, so the kernel sends RELEASE at the
// last close() even while the region is mapped. Releasing then would hand the
// client's ring objects to new registrations while the closed client can
// still write them (and the release after that frees buffers by whatever the
// scribbled slots name). So on RELEASE the front end asks whether the process
// that opened the file still maps the region, and if so keeps the file here,
// registered, until it does not any more; a reaper thread re-checks.
//
// What "the process that opened it" is: the OPEN header names the calling
// thread (its tid). At OPEN, while that thread is blocked in open(2) waiting
// for the reply, the front end resolves it to its thread group and takes a
// pidfd on it (one per live process, shared by its files), so neither an
// exit nor a recycled pid can be mistaken for the opener later.
//
// What "still maps" is: the kernel tells the daemon nothing about mmap
// (passthrough serves it without a request), and every mapping of every
// descriptor shows the same file in /proc/PID/maps (the FUSE file's device
// and inode on kernels that show the user path of a backing file, the region
// file's on others: both are matched). Which descriptor a mapping came from
// is not visible, so the rule counts: a registered file released while its
// opener is alive is kept if the opener has more mappings of the region than
// other registered files of its own, open or already kept. The usual cases
// come out as in netmap:
//   * close() then munmap() (or the other way round), one port: kept until
//     the munmap, released at once after it;
//   * several ports sharing one mapping (libnetmap maps an allocator once per
//     process): the ports closed before the last one are released at once,
//     as netmap releases descriptors that were never mapped;
//   * descriptors registered and closed without a mapping of their own while
//     other ports keep theirs (registration churn): released at once;
//   * process exit: the mappings go before the files, so nothing is kept.
// When fewer mappings remain than files are kept, the longest-kept files go
// first. The opener's mappings are what count: a child that inherited the
// mapping by fork(), or a process that received the descriptor over a UNIX
// socket and mapped it, does not keep the registration (the opener's exit or
// munmap ends it).
//
// Everything a netmap client sees of a kept file is what it would see in
// netmap: the registration stays (netmapctl status lists it), its rings stay
// its own, and it is released once the mapping goes.

import CFUSEKernel
import DeviceInterface
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
            guard let group = Self.threadGroup(of: tid) else { return nil }
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

    /// "Tgid:" of /proc/TID/status.
    static func threadGroup(of tid: Int32) -> Int32? {
        guard let bytes = Sys.readWholeFile("/proc/\(tid)/status", chunk: 4096) else { return nil }
        let key = Array("\nTgid:".utf8)
        guard bytes.count > key.count else { return nil }
        var i = 0
        while i + key.count <= bytes.count {
            if bytes[i] == key[0] && Array(bytes[i ..< i + key.count]) == key {
                var j = i + key.count
                while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09) { j += 1 }
                var value: Int32 = 0
                var digits = 0
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39, digits < 10 {
                    value = value * 10 + Int32(bytes[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 && value > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}

/// Files whose descriptor is closed while their opener still maps the region.
final class MappingHolds: @unchecked Sendable {
    /// A file /proc/PID/maps may show for a mapping of the region.
    struct Target: Equatable, Sendable {
        var major: UInt32
        var minor: UInt32
        var inode: UInt64
    }

    /// How often kept files are re-checked for munmap (an exit is seen at
    /// once through the pidfd).
    static let recheckMilliseconds: Int32 = 150

    private struct Kept {
        var file: any DeviceFile
        var opener: Opener
        var since: Double
    }

    private struct State {
        var kept: [Kept] = []
        var stopped = false
        var thread: pthread_t? = nil
        var targets: [Target] = []
    }

    let openers = Openers()
    private let files: OpenFileTable
    private let debug: @Sendable (String) -> Void
    private let state = Locked(State())
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init(files: OpenFileTable, debug: @escaping @Sendable (String) -> Void) throws {
        self.files = files
        self.debug = debug
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

    // MARK: - lifecycle

    /// Adds a file whose mappings count as mappings of the region (the
    /// region file itself; the mounted FUSE file once it can be stat'ed).
    func addTarget(dev: UInt64, inode: UInt64) {
        let (major, minor) = Sys.deviceNumbers(dev)
        let t = Target(major: major, minor: minor, inode: inode)
        state.withLock { s in if !s.targets.contains(t) { s.targets.append(t) } }
    }

    /// Starts the reaper thread (it sleeps in poll while nothing is kept).
    func start() -> Result<Void, Errno> {
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let holds = Unmanaged<MappingHolds>.fromOpaque(raw!).takeRetainedValue()
            holds.reap()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            return .failure(Errno(rawValue: rc))
        }
        state.withLock { $0.thread = thread }
        return .success(())
    }

    /// Releases every kept file and ends the reaper. Files released later
    /// (a RELEASE after stop) go at once.
    func stop() {
        let (kept, thread) = state.withLock { s -> ([Kept], pthread_t?) in
            s.stopped = true
            defer {
                s.kept = []
                s.thread = nil
            }
            return (s.kept, s.thread)
        }
        wake()
        if let thread { pthread_join(thread, nil) }
        let now = Sys.monotonicSeconds()
        for k in kept {
            k.file.release()
            debug("fuse: pid \(k.opener.tgid): kept registration released at stop after \(Self.seconds(now - k.since))")
        }
    }

    // MARK: - RELEASE

    /// RELEASE of `entry` (already out of the open-file table): releases the
    /// file now, or keeps it while its opener maps the region.
    func release(_ entry: OpenFile) {
        guard let opener = entry.opener, entry.file.mmapCheck(offset: 0, length: 1) == 0 else {
            entry.file.release()  // not registered, or nobody to watch
            return
        }
        let kept: (count: Int, mappings: Int)? = state.withLock { s in
            if s.stopped { return nil }
            let already = s.kept.reduce(0) { $0 + ($1.opener.tgid == opener.tgid ? 1 : 0) }
            let (allowed, mappings) = allowance(opener, s.targets)
            guard allowed > already else { return nil }
            s.kept.append(Kept(file: entry.file, opener: opener, since: Sys.monotonicSeconds()))
            return (already + 1, mappings)
        }
        guard let kept else {
            entry.file.release()
            return
        }
        debug("fuse: pid \(opener.tgid) closed a registered descriptor with the region still mapped"
              + " (\(kept.mappings) mapping(s)): release deferred until munmap or exit"
              + " (\(kept.count) kept for this process)")
        wake()
    }

    // MARK: - checks

    /// How many closed files process `opener` may have kept: its mappings
    /// of the region less its other registered files still open (0 once it
    /// has exited or its maps cannot be read), and the mapping count.
    private func allowance(_ opener: Opener, _ targets: [Target]) -> (allowed: Int, mappings: Int) {
        if opener.exited { return (0, 0) }
        guard let maps = Sys.readWholeFile("/proc/\(opener.tgid)/maps") else { return (0, 0) }
        // Alive after the read: the maps were this process's, not a
        // successor's under the same pid.
        if opener.exited { return (0, 0) }
        let mappings = Self.countMappings(maps, targets: targets)
        if mappings == 0 { return (0, 0) }
        let open = files.files(where: { o in o === opener || (o.tgid == opener.tgid && !o.exited) })
        let registered = open.reduce(0) { $0 + ($1.mmapCheck(offset: 0, length: 1) == 0 ? 1 : 0) }
        return (max(0, mappings - registered), mappings)
    }

    /// Mappings of the region in a /proc/PID/maps text: lines naming a
    /// target, where a line that continues the previous one (adjacent
    /// addresses and file offsets: a mapping split by mprotect) is the same
    /// mapping. Line format: "start-end perms offset major:minor inode path".
    static func countMappings(_ maps: [UInt8], targets: [Target]) -> Int {
        var count = 0
        var previous: (end: UInt64, offsetEnd: UInt64, target: Int)? = nil
        var i = 0
        let n = maps.count
        func hex(_ stop: UInt8) -> UInt64? {
            var v: UInt64 = 0
            var digits = 0
            while i < n, maps[i] != stop {
                let c = maps[i]
                let d: UInt64
                switch c {
                case 0x30 ... 0x39: d = UInt64(c - 0x30)
                case 0x61 ... 0x66: d = UInt64(c - 0x61 + 10)
                case 0x41 ... 0x46: d = UInt64(c - 0x41 + 10)
                default: return nil
                }
                v = v &<< 4 | d
                digits += 1
                i += 1
            }
            guard i < n, digits > 0 else { return nil }
            i += 1  // the separator
            return v
        }
        func decimal() -> UInt64? {
            var v: UInt64 = 0
            var digits = 0
            while i < n, maps[i] >= 0x30, maps[i] <= 0x39 {
                v = v &* 10 &+ UInt64(maps[i] - 0x30)
                digits += 1
                i += 1
            }
            return digits > 0 ? v : nil
        }
        while i < n {
            let lineStart = i
            var matched: (start: UInt64, end: UInt64, offset: UInt64, target: Int)? = nil
            if let start = hex(0x2d), let end = hex(0x20) {
                while i < n, maps[i] != 0x20, maps[i] != 0x0a { i += 1 }  // perms
                if i < n, maps[i] == 0x20 { i += 1 }
                if let offset = hex(0x20), let major = hex(0x3a), let minor = hex(0x20), let inode = decimal(),
                   let t = targets.firstIndex(of: Target(major: UInt32(truncatingIfNeeded: major),
                                                         minor: UInt32(truncatingIfNeeded: minor), inode: inode)) {
                    matched = (start, end, offset, t)
                }
            }
            if let m = matched {
                let continues = previous.map { $0.end == m.start && $0.offsetEnd == m.offset && $0.target == m.target }
                    ?? false
                if !continues { count += 1 }
                previous = (m.end, m.offset &+ (m.end &- m.start), m.target)
            } else {
                previous = nil
            }
            // next line
            if i == lineStart { i += 1 }
            while i < n, maps[i] != 0x0a { i += 1 }
            i += 1
        }
        return count
    }

    // MARK: - reaper

    private func wake() {
        var b: UInt8 = 1
        _ = Glibc.write(wakeWrite, &b, 1)  // EAGAIN: a wake-up is pending anyway
    }

    /// The reaper thread: sleeps until something is kept, then re-checks
    /// every `recheckMilliseconds` and at once when a kept file's opener exits.
    private func reap() {
        Sys.blockAllSignals()
        while true {
            let (stopped, pidfds) = state.withLock { s -> (Bool, [Int32]) in
                var seen = Set<Int32>()
                return (s.stopped, s.kept.compactMap { seen.insert($0.opener.pidfd).inserted ? $0.opener.pidfd : nil })
            }
            if stopped { return }
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            fds += pidfds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = Glibc.poll(&fds, nfds_t(fds.count), pidfds.isEmpty ? -1 : Self.recheckMilliseconds)
            var sink = [UInt8](repeating: 0, count: 64)
            while sink.withUnsafeMutableBytes({ Glibc.read(wakeRead, $0.baseAddress!, 64) }) > 0 {}
            if pidfds.isEmpty { continue }  // a wake-up: look at the new list
            recheck()
        }
    }

    /// Releases kept files whose opener exited or no longer maps the region.
    private func recheck() {
        let done = state.withLock { s -> [(Kept, String)] in
            if s.stopped { return [] }
            var out: [(Kept, String)] = []
            var remaining: [Kept] = []
            var handled = Set<Int32>()
            for k in s.kept where !handled.contains(k.opener.tgid) {
                handled.insert(k.opener.tgid)
                let group = s.kept.filter { $0.opener.tgid == k.opener.tgid }  // oldest first
                var live: [Kept] = []
                for g in group {
                    if g.opener.exited { out.append((g, "the process exited")) } else { live.append(g) }
                }
                guard !live.isEmpty else { continue }
                let (allowed, mappings) = allowance(live[0].opener, s.targets)
                let excess = max(0, live.count - allowed)
                for g in live.prefix(excess) {
                    out.append((g, mappings == 0 ? "the region is no longer mapped" : "one of its mappings is gone"))
                }
                remaining += live.dropFirst(excess)
            }
            // Keep the order of keeping (oldest first) across processes.
            s.kept = s.kept.filter { k in remaining.contains { $0.file === k.file } }
            return out
        }
        let now = Sys.monotonicSeconds()
        for (k, why) in done {
            k.file.release()
            debug("fuse: pid \(k.opener.tgid): kept registration released after \(Self.seconds(now - k.since)): \(why)")
        }
    }

    private static func seconds(_ s: Double) -> String {
        let ms = Int((s * 1000).rounded())
        return "\(ms / 1000).\(String(ms % 1000 + 1000).dropFirst()) s"
    }
}
