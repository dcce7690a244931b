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
// registered, until it does not any more; a reaper thread re-checks
// (MappingReaper.swift).
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
//
// This file is the keep policy. /proc is read outside the state lock (a
// RELEASE never waits on another process's /proc read): release() and
// recheck() read first, then decide under the lock, and a recheck leaves a
// process alone when its kept files changed in between (the release that
// changed them woke the reaper for another round). The /proc parsers are in
// ProcFiles.swift, the openers in Openers.swift.

import DeviceInterface
#if canImport(Glibc)
import Glibc
#endif

/// Files whose descriptor is closed while their opener still maps the region.
final class MappingHolds: Sendable {
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
        var targets: [MapTarget] = []
    }

    let openers = Openers()
    private let files: OpenFileTable
    private let debug: @Sendable (String) -> Void
    /// /proc/PID/maps of a process, nil when it cannot be read.
    private let readMaps: @Sendable (Int32) -> [UInt8]?
    private let state = Locked(State())
    private let reaper: MappingReaper

    init(files: OpenFileTable, debug: @escaping @Sendable (String) -> Void,
         readMaps: @escaping @Sendable (Int32) -> [UInt8]? = { Sys.readWholeFile("/proc/\($0)/maps") }) throws {
        self.files = files
        self.debug = debug
        self.readMaps = readMaps
        reaper = try MappingReaper()
    }

    // MARK: - lifecycle

    /// Adds a file whose mappings count as mappings of the region (the
    /// region file itself; the mounted FUSE file once it can be stat'ed).
    func addTarget(dev: UInt64, inode: UInt64) {
        let (major, minor) = Sys.deviceNumbers(dev)
        let t = MapTarget(major: major, minor: minor, inode: inode)
        state.withLock { s in if !s.targets.contains(t) { s.targets.append(t) } }
    }

    /// Starts the reaper thread (it sleeps in poll while nothing is kept).
    func start() -> Result<Void, Errno> {
        reaper.start(watch: { [self] in watchedPidfds() }, recheck: { [self] in recheck() })
    }

    /// Releases every kept file and ends the reaper. Files released later
    /// (a RELEASE after stop) go at once.
    func stop() {
        let kept = state.withLock { s -> [Kept] in
            s.stopped = true
            defer { s.kept = [] }
            return s.kept
        }
        reaper.stop()
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
        let (allowed, mappings) = allowance(opener, targets: state.withLock { $0.targets })
        let kept: Int? = state.withLock { s in
            if s.stopped { return nil }
            let already = s.kept.reduce(0) { $0 + ($1.opener.tgid == opener.tgid ? 1 : 0) }
            guard allowed > already else { return nil }
            s.kept.append(Kept(file: entry.file, opener: opener, since: Sys.monotonicSeconds()))
            return already + 1
        }
        guard let kept else {
            entry.file.release()
            return
        }
        debug("fuse: pid \(opener.tgid) closed a registered descriptor with the region still mapped"
              + " (\(mappings) mapping(s)): release deferred until munmap or exit"
              + " (\(kept) kept for this process)")
        reaper.wake()
    }

    // MARK: - checks

    /// How many closed files process `opener` may have kept: its mappings
    /// of the region less its other registered files still open (0 once it
    /// has exited or its maps cannot be read), and the mapping count. Reads
    /// /proc and the open-file table: never called under the state lock.
    private func allowance(_ opener: Opener, targets: [MapTarget]) -> (allowed: Int, mappings: Int) {
        if opener.exited { return (0, 0) }
        guard let maps = readMaps(opener.tgid) else { return (0, 0) }
        // Alive after the read: the maps were this process's, not a
        // successor's under the same pid.
        if opener.exited { return (0, 0) }
        let mappings = ProcMaps.countMappings(maps, of: targets)
        if mappings == 0 { return (0, 0) }
        let open = files.files(where: { o in o === opener || (o.tgid == opener.tgid && !o.exited) })
        let registered = open.reduce(0) { $0 + ($1.mmapCheck(offset: 0, length: 1) == 0 ? 1 : 0) }
        return (max(0, mappings - registered), mappings)
    }

    /// The pidfds the reaper sleeps on (one per process with kept files),
    /// nil once stopped.
    private func watchedPidfds() -> [Int32]? {
        state.withLock { s in
            if s.stopped { return nil }
            var seen = Set<Int32>()
            return s.kept.compactMap { seen.insert($0.opener.pidfd).inserted ? $0.opener.pidfd : nil }
        }
    }

    /// Releases kept files whose opener exited or no longer maps the region.
    /// The reaper calls it; /proc is read between two short holds of the lock.
    func recheck() {
        // Which processes to look at, and what each had kept.
        let snapshot = state.withLock { s -> (processes: [Opener], kept: [Int32: [ObjectIdentifier]], targets: [MapTarget]) in
            var processes: [Opener] = []
            var kept: [Int32: [ObjectIdentifier]] = [:]
            if s.stopped { return ([], [:], []) }
            for k in s.kept {
                if kept[k.opener.tgid] == nil { processes.append(k.opener) }
                kept[k.opener.tgid, default: []].append(Self.key(k.file))
            }
            return (processes, kept, s.targets)
        }
        if snapshot.processes.isEmpty { return }
        var allowances: [Int32: (allowed: Int, mappings: Int)] = [:]
        for opener in snapshot.processes where !opener.exited {
            allowances[opener.tgid] = allowance(opener, targets: snapshot.targets)
        }
        let done = state.withLock { s -> [(Kept, String)] in
            if s.stopped { return [] }
            var out: [(Kept, String)] = []
            var remaining: [Kept] = []
            var handled = Set<Int32>()
            for k in s.kept where !handled.contains(k.opener.tgid) {
                let tgid = k.opener.tgid
                handled.insert(tgid)
                let group = s.kept.filter { $0.opener.tgid == tgid }  // oldest first
                var live: [Kept] = []
                for g in group {
                    if g.opener.exited { out.append((g, "the process exited")) } else { live.append(g) }
                }
                // A file kept since the read was decided on a newer one: next round.
                guard !live.isEmpty, let (allowed, mappings) = allowances[tgid],
                      live.map({ Self.key($0.file) }).allSatisfy((snapshot.kept[tgid] ?? []).contains)
                else {
                    remaining += live
                    continue
                }
                let excess = max(0, live.count - allowed)
                for g in live.prefix(excess) {
                    out.append((g, mappings == 0 ? "the region is no longer mapped" : "one of its mappings is gone"))
                }
                remaining += live.dropFirst(excess)
            }
            // Keep the order of keeping (oldest first) across processes.
            let stay = Set(remaining.map { Self.key($0.file) })
            s.kept = s.kept.filter { stay.contains(Self.key($0.file)) }
            return out
        }
        let now = Sys.monotonicSeconds()
        for (k, why) in done {
            k.file.release()
            debug("fuse: pid \(k.opener.tgid): kept registration released after \(Self.seconds(now - k.since)): \(why)")
        }
    }

    private static func key(_ file: any DeviceFile) -> ObjectIdentifier { ObjectIdentifier(file) }

    private static func seconds(_ s: Double) -> String {
        let ms = Int((s * 1000).rounded())
        return "\(ms / 1000).\(String(ms % 1000 + 1000).dropFirst()) s"
    }
}
