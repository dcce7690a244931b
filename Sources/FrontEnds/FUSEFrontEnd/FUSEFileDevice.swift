// FUSEFileDevice: /dev/netmap as a FUSE file, for kernels without CUSE.
//
// What it owns and how a request travels:
//
//   start()  creates the file at `path` if missing, opens /dev/fuse, mounts
//            a FUSE file system whose root is that single regular file onto
//            `path`, answers FUSE_INIT (asking for passthrough), registers
//            the region file (`device.regionPath`) as the connection's one
//            passthrough backing file, and starts the worker threads.
//   client   open()  -> OPEN    -> device.open(client:), fh -> DeviceFile in
//                                  OpenFileTable; the reply names the backing
//                                  file, so mmap() maps the region directly.
//            ioctl() -> IOCTL   -> DeviceFile.ioctl, fetching caller memory
//                                  with process_vm_readv (Worker.swift).
//            poll()  -> POLL    -> DeviceFile.poll with a waker that writes
//                                  FUSE_NOTIFY_POLL (Connection.swift).
//            close() -> RELEASE -> DeviceFile.release, once; deferred while
//                                  the opening process still maps the
//                                  region (MappingHolds.swift).
//   stop()   aborts the connection (fusectl), unmounts, joins the workers,
//            releases files still open or kept, removes the file if it made it.
//
// Deliberate differences from netmap's character device, forced by FUSE:
// * mmap is served by the kernel from the backing file: it cannot be refused
//   before registration or beyond the region (`DeviceFile.mmapCheck` is not
//   consulted); a mapping beyond the region file's size faults (SIGBUS).
// * a mapping holds the backing file, not the FUSE file, so RELEASE comes at
//   close() even with the region still mapped. The front end keeps the
//   registration then, as netmap does until munmap, but can only tell which
//   process maps the region, not through which descriptor: it keeps a closed
//   registered file while its opener has more mappings than other
//   registered descriptors (MappingHolds.swift); a mapping inherited by
//   fork() or made by a process the descriptor was passed to does not count.
// * a NULL or unreadable argument to an _IOW/_IOWR ioctl fails in the kernel
//   with EFAULT before the daemon sees it (netmap: EINVAL for NULL).
// * read/write answer EINVAL, as netmap's device (no read/write methods) does.

import CFUSEKernel
import DeviceInterface
#if canImport(Glibc)
import Glibc
#endif

public final class FUSEFileDevice: @unchecked Sendable {
    private let device: any NetmapDevice
    private let path: String
    private let mode: UInt32
    private let uid: UInt32
    private let gid: UInt32
    private let threadCount: Int
    private let log: @Sendable (String) -> Void
    private let debugLog: @Sendable (String) -> Void

    private struct Running {
        var connection: FUSEConnection
        var files: OpenFileTable
        var holds: MappingHolds
        var workers: [JoinableThread]
        var exited: Exits
        var createdFile: Bool
        var connectionNumber: UInt64?
    }

    /// Counts workers that returned from their loop, so stop() can wait
    /// with a bound instead of hanging in pthread_join.
    final class Exits: Sendable {
        let count = Locked(0)
    }

    private let running = Locked<Running?>(nil)

    /// - Parameters:
    ///   - path: where the file appears, e.g. /dev/netmap.
    ///   - mode: permission bits reported for the file (the kernel checks
    ///     them: the mount uses default_permissions and allow_other).
    ///   - threads: worker threads reading /dev/fuse.
    ///   - log: what an operator should see (start, stop, failures).
    ///   - debugLog: details (registrations kept after close while mapped,
    ///     and their release); discarded when nil.
    public init(device: NetmapDevice, path: String, mode: UInt32, uid: UInt32, gid: UInt32,
                threads: Int = 2, log: @escaping @Sendable (String) -> Void,
                debugLog: (@Sendable (String) -> Void)? = nil) throws {
        guard path.hasPrefix("/") else { throw FUSEFileError("FUSE file path must be absolute: \(path)") }
        guard threads >= 1 else { throw FUSEFileError("FUSE front end needs at least one thread") }
        self.device = device
        self.path = path
        self.mode = mode & 0o7777
        self.uid = uid
        self.gid = gid
        self.threadCount = threads
        self.log = log
        self.debugLog = debugLog ?? { _ in }
    }

    deinit {
        stop()
    }

    // MARK: - start

    public func start() throws {
        try running.withLock { state in
            guard state == nil else { throw FUSEFileError("FUSE file \(path) already started") }
            state = try mountAndServe()
        }
    }

    private func mountAndServe() throws -> Running {
        let createdFile = try prepareMountPoint()
        var cleanup: [() -> Void] = []
        if createdFile { cleanup.append { [path] in _ = Sys.unlink(path) } }
        func fail(_ error: FUSEFileError) -> FUSEFileError {
            for step in cleanup.reversed() { step() }
            return error
        }

        let fuse: Int32
        switch Sys.open("/dev/fuse", O_RDWR) {
        case .success(let fd): fuse = fd
        case .failure(let e): throw fail(FUSEFileError("open /dev/fuse", errno: e.rawValue))
        }
        cleanup.append { Sys.close(fuse) }

        let rootMode = UInt32(S_IFREG) | mode
        let options = "fd=\(fuse),rootmode=\(String(rootMode, radix: 8)),user_id=\(getuid()),group_id=\(getgid())"
            + ",allow_other,default_permissions"
        if case .failure(let e) = Sys.mount(source: "netmapd", target: path, type: "fuse.netmapd",
                                            flags: Sys.MS_NOSUID | Sys.MS_NODEV | Sys.MS_NOEXEC, data: options) {
            throw fail(FUSEFileError("mount FUSE file on \(path)", errno: e.rawValue))
        }
        cleanup.append { [path] in _ = Sys.umount(path, flags: Sys.MNT_DETACH) }

        do {
            try answerInit(fuse)
        } catch let error as FUSEFileError {
            throw fail(error)
        }

        // Passthrough backing files can be registered only after the INIT
        // reply, and only one per inode: register the region once, here.
        let files = OpenFileTable()
        let holds: MappingHolds
        do {
            holds = try MappingHolds(files: files, debug: debugLog)
        } catch let error as FUSEFileError {
            throw fail(error)
        }
        let backingID: Int32
        switch Sys.open(device.regionPath, O_RDWR) {
        case .failure(let e):
            throw fail(FUSEFileError("open region file \(device.regionPath)", errno: e.rawValue))
        case .success(let region):
            defer { Sys.close(region) }  // the kernel holds its own reference
            if case .success(let st) = Sys.fileStatus(fd: region) {
                holds.addTarget(dev: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            }
            switch Sys.backingOpen(device: fuse, file: region) {
            case .success(let id): backingID = id
            case .failure(let e):
                throw fail(FUSEFileError("FUSE passthrough backing file \(device.regionPath)"
                                         + " (needs CAP_SYS_ADMIN)", errno: e.rawValue))
            }
        }

        let connection = FUSEConnection(fd: fuse, backingID: backingID)
        if case .failure(let e) = holds.start() {
            throw fail(FUSEFileError("start the mapping reaper thread", errno: e.rawValue))
        }
        cleanup.append { holds.stop() }
        let now = Sys.now()
        let attributes = FileAttributes(mode: UInt32(S_IFREG) | mode, uid: uid, gid: gid,
                                        seconds: UInt64(now.tv_sec), nanoseconds: UInt32(now.tv_nsec))
        let exits = Exits()
        var workers: [JoinableThread] = []
        let fence = ReleaseFence(workers: threadCount)
        for index in 0 ..< threadCount {
            let worker = Worker(connection: connection, files: files, holds: holds, fence: fence,
                                slot: fence.slots[index], device: device,
                                attributes: attributes, log: log)
            do {
                workers.append(try JoinableThread.spawn {
                    worker.run()
                    exits.count.withLock { $0 += 1 }
                })
            } catch {
                // Unmounting ends the workers already started.
                let failure = fail(FUSEFileError("start FUSE worker thread", errno: error.errno))
                for thread in workers { thread.join() }
                throw failure
            }
        }

        // The connection's name under fusectl, for abort at stop (a stat
        // now is served by the workers just started).
        var connectionNumber: UInt64? = nil
        if case .success(let st) = Sys.fileStatus(path) {
            connectionNumber = Sys.kernelDeviceNumber(UInt64(st.st_dev))
            // /proc/PID/maps shows a passthrough mapping as this file.
            holds.addTarget(dev: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        }
        log("fuse: \(path) mounted (\(threadCount) threads, passthrough backing \(backingID)"
            + " -> \(device.regionPath), \(device.regionSize) bytes)")
        return Running(connection: connection, files: files, holds: holds, workers: workers, exited: exits,
                       createdFile: createdFile, connectionNumber: connectionNumber)
    }

    /// Makes sure a file exists at `path` to mount on; true if it is ours
    /// to remove at stop. A FUSE mount left by a daemon that died is
    /// detached; a live one (another daemon) is an error.
    private func prepareMountPoint() throws -> Bool {
        // Forced sync: a dead connection's cached attributes would pass stat().
        switch Sys.syncedStatus(path) {
        case .success(let st):
            if st.mode & UInt32(S_IFMT) == UInt32(S_IFDIR) {
                throw FUSEFileError("\(path) is a directory, cannot mount the netmap file on it")
            }
            if Sys.fileSystemType(path) == FK_FUSE_SUPER_MAGIC {
                throw FUSEFileError("\(path) is already a FUSE mount (another netmapd running?)")
            }
            // An empty regular file is what start() creates; one found here
            // was left by a daemon that died. Adopt it so stop() removes it
            // (a stale file at /dev/netmap would hide a later CUSE device).
            if st.mode & UInt32(S_IFMT) == UInt32(S_IFREG) && st.size == 0 {
                log("fuse: reusing leftover empty file \(path)")
                return true
            }
            return false
        case .failure(let e) where e.rawValue == ENOTCONN:
            log("fuse: detaching stale FUSE mount at \(path)")
            if case .failure(let e) = Sys.umount(path, flags: Sys.MNT_DETACH) {
                throw FUSEFileError("detach stale mount at \(path)", errno: e.rawValue)
            }
            return try prepareMountPoint()
        case .failure(let e) where e.rawValue == ENOENT:
            switch Sys.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600) {
            case .success(let fd):
                Sys.close(fd)
                return true
            case .failure(let e):
                throw FUSEFileError("create \(path)", errno: e.rawValue)
            }
        case .failure(let e):
            throw FUSEFileError("stat \(path)", errno: e.rawValue)
        }
    }

    /// Reads FUSE_INIT and answers it. Passthrough needs protocol 7.40+, the
    /// extended flags (FUSE_INIT_EXT, without which flags2 is ignored) and a
    /// backing stack depth of 1.
    private func answerInit(_ fuse: Int32) throws {
        let capacity = Worker.requestCapacity
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        let n: Int
        switch Sys.read(fuse, buffer, capacity) {
        case .success(let count): n = count
        case .failure(let e): throw FUSEFileError("read FUSE_INIT", errno: e.rawValue)
        }
        let headerSize = MemoryLayout<fk_in_header>.size
        guard n >= headerSize + 16 else { throw FUSEFileError("short FUSE_INIT") }
        let header = buffer.load(as: fk_in_header.self)
        guard header.opcode == UInt32(FK_INIT) else {
            throw FUSEFileError("expected FUSE_INIT, got opcode \(header.opcode)")
        }
        var input = fk_init_in()
        withUnsafeMutableBytes(of: &input) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: buffer + headerSize,
                                                        count: min(dst.count, n - headerSize)))
        }

        func reply(error: Int32, body: fk_init_out?) throws {
            let outHeader = MemoryLayout<fk_out_header>.size
            let total = outHeader + (body == nil ? 0 : MemoryLayout<fk_init_out>.size)
            buffer.storeBytes(of: fk_out_header(len: UInt32(total), error: error, unique: header.unique),
                              as: fk_out_header.self)
            if let body { (buffer + outHeader).storeBytes(of: body, as: fk_init_out.self) }
            if case .failure(let e) = Sys.write(fuse, buffer, total) {
                throw FUSEFileError("reply FUSE_INIT", errno: e.rawValue)
            }
        }

        let passthroughOffered = input.flags & FK_INIT_EXT != 0 && input.flags2 & FK_PASSTHROUGH_FLAGS2 != 0
        guard input.major == UInt32(FK_KERNEL_VERSION), input.minor >= UInt32(FK_PASSTHROUGH_MIN_MINOR),
              passthroughOffered
        else {
            try? reply(error: -EPROTO, body: nil)
            throw FUSEFileError("kernel FUSE \(input.major).\(input.minor) offers no passthrough"
                                + " (needs 7.40+, Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH)")
        }

        var out = fk_init_out()
        out.major = UInt32(FK_KERNEL_VERSION)
        out.minor = min(input.minor, UInt32(FK_KERNEL_MINOR_VERSION))
        out.max_readahead = input.max_readahead
        out.flags = FK_INIT_EXT | (input.flags & FK_MAX_PAGES)
        out.flags2 = FK_PASSTHROUGH_FLAGS2
        out.max_background = 16
        out.congestion_threshold = 12
        out.max_write = 4096  // writes are refused anyway; keeps reads small
        out.time_gran = 1
        out.max_pages = 32
        out.max_stack_depth = 1
        try reply(error: 0, body: out)
    }

    // MARK: - stop

    /// Unmounts and stops serving. Clients still holding the file get ENOTCONN
    /// (or ENODEV) from then on; nothing waits on the daemon any more.
    public func stop() {
        guard let state = running.withLock({ s -> Running? in
            defer { s = nil }
            return s
        }) else { return }

        // Abort first: it fails every pending and future request of the
        // connection and wakes the workers (read gets ENODEV) even while
        // clients keep the file open, which a lazy unmount alone would not.
        let aborted = state.connectionNumber.map(abortConnection) ?? false
        if case .failure(let e) = Sys.umount(path, flags: Sys.MNT_DETACH), e.rawValue != EINVAL {
            log("fuse: unmount \(path): \(FUSEFileError("umount2", errno: e.rawValue))")
        }

        // Without an abort the workers end only once the last client closes.
        let deadline = aborted ? 5000 : 2000
        var waited = 0
        while state.exited.count.withLock({ $0 }) < state.workers.count && waited < deadline {
            usleep(2000)
            waited += 2
        }
        if state.exited.count.withLock({ $0 }) == state.workers.count {
            for thread in state.workers { thread.join() }
            state.connection.close()
        } else {
            log("fuse: workers still blocked on /dev/fuse (connection not aborted); leaving them")
            for thread in state.workers { thread.detach() }
        }

        for file in state.files.removeAll() { file.release() }
        state.holds.stop()
        if state.createdFile, case .failure(let e) = Sys.unlink(path), e.rawValue != ENOENT {
            log("fuse: remove \(path): \(FUSEFileError("unlink", errno: e.rawValue))")
        }
        log("fuse: \(path) stopped")
    }

    /// Writes to the connection's fusectl `abort` file, mounting fusectl at
    /// a temporary directory when /sys/fs/fuse/connections is not mounted.
    private func abortConnection(_ number: UInt64) -> Bool {
        if case .success = Sys.writeFile("/sys/fs/fuse/connections/\(number)/abort", "1") { return true }
        guard case .success(let dir) = Sys.makeTemporaryDirectory("/tmp/netmapd-fusectl.XXXXXX") else {
            log("fuse: no directory to mount fusectl on; cannot abort the connection")
            return false
        }
        defer { Sys.rmdir(dir) }
        if case .failure(let e) = Sys.mount(source: "fusectl", target: dir, type: "fusectl", flags: 0, data: nil) {
            log("fuse: mount fusectl: \(FUSEFileError("mount", errno: e.rawValue))")
            return false
        }
        defer { _ = Sys.umount(dir, flags: Sys.MNT_DETACH) }
        if case .failure(let e) = Sys.writeFile("\(dir)/\(number)/abort", "1") {
            log("fuse: abort connection \(number): \(FUSEFileError("write", errno: e.rawValue))")
            return false
        }
        return true
    }
}
