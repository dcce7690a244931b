// One worker thread: reads a request from /dev/fuse, turns it into a call on
// the device or on one of its files, writes the reply. Every worker blocks in
// read(2) on the same descriptor; the kernel hands each request to one of
// them. Each worker owns its request and reply buffers, so the sync path
// (IOCTL NIOCTXSYNC/NIOCRXSYNC, POLL) allocates nothing of its own.

import CFUSEKernel
import DeviceInterface
#if canImport(Glibc)
import Glibc
#endif

/// What GETATTR reports about the single file, fixed at start.
struct FileAttributes: Sendable {
    var mode: UInt32  // S_IFREG | permission bits
    var uid: UInt32
    var gid: UInt32
    var seconds: UInt64
    var nanoseconds: UInt32
    /// Attributes never change while mounted; let the kernel cache them.
    var validSeconds: UInt64 = 60
}

final class Worker: @unchecked Sendable {
    /// Largest request: IOCTL with a 16383-byte argument (_IOC_SIZE is 14
    /// bits) plus headers; at least FUSE_MIN_READ_BUFFER and max_write + 80.
    static let requestCapacity = 72 * 1024
    /// Largest reply: out header + fuse_ioctl_out + 16383 bytes.
    static let replyCapacity = 20 * 1024
    static let inHeaderSize = MemoryLayout<fk_in_header>.size
    static let outHeaderSize = MemoryLayout<fk_out_header>.size
    /// Bound on needMemory rounds for one ioctl (each fetches at least one
    /// new range; NIOCCTRL option chains are bounded by 4096 bytes).
    static let maxMemoryRounds = 512
    /// Bound on one range fetched from the caller.
    static let maxFetchLength = 1 << 20

    private let connection: FUSEConnection
    private let files: OpenFileTable
    private let holds: MappingHolds
    private let fence: ReleaseFence
    private let slot: ReleaseFence.Slot
    private let device: any NetmapDevice
    private let attributes: FileAttributes
    private let log: @Sendable (String) -> Void
    private let request: UnsafeMutableRawPointer
    private let reply: UnsafeMutableRawPointer

    init(connection: FUSEConnection, files: OpenFileTable, holds: MappingHolds, fence: ReleaseFence,
         slot: ReleaseFence.Slot, device: any NetmapDevice, attributes: FileAttributes,
         log: @escaping @Sendable (String) -> Void) {
        self.connection = connection
        self.files = files
        self.holds = holds
        self.fence = fence
        self.slot = slot
        self.device = device
        self.attributes = attributes
        self.log = log
        request = .allocate(byteCount: Self.requestCapacity, alignment: 16)
        reply = .allocate(byteCount: Self.replyCapacity, alignment: 16)
    }

    deinit {
        request.deallocate()
        reply.deallocate()
    }

    /// The request loop; returns when the connection is unmounted or aborted.
    func run() {
        Sys.blockAllSignals()
        slot.started()
        defer { slot.read(unique: 0, isRelease: false) }
        while true {
            slot.reading()
            switch Sys.read(connection.fd, request, Self.requestCapacity) {
            case .success(let n):
                if n >= Self.inHeaderSize {
                    let header = request.load(as: fk_in_header.self)
                    slot.read(unique: header.unique, isRelease: Int32(bitPattern: header.opcode) == FK_RELEASE)
                }
                handle(length: n)
            case .failure(let e):
                switch e.rawValue {
                case ENOENT, EAGAIN:
                    continue  // the request went away before we read it
                case ENODEV:
                    return  // unmounted or aborted: stop() is under way
                default:
                    log("fuse: read /dev/fuse: \(FUSEFileError("read", errno: e.rawValue))")
                    return
                }
            }
        }
    }

    // MARK: - dispatch

    private func handle(length n: Int) {
        guard n >= Self.inHeaderSize else { return }
        let header = request.load(as: fk_in_header.self)
        let payload = UnsafeRawPointer(request + Self.inHeaderSize)
        let payloadLength = min(Int(header.len), n) - Self.inHeaderSize
        let unique = header.unique

        switch Int32(bitPattern: header.opcode) {
        case FK_IOCTL:
            guard payloadLength >= MemoryLayout<fk_ioctl_in>.size else { return replyError(unique, EIO) }
            ioctl(header, payload, payloadLength)
        case FK_POLL:
            guard payloadLength >= MemoryLayout<fk_poll_in>.size else { return replyError(unique, EIO) }
            poll(unique, payload.loadUnaligned(as: fk_poll_in.self))
        case FK_GETATTR:
            getattr(unique, node: header.nodeid)
        case FK_SETATTR:
            guard payloadLength >= MemoryLayout<fk_setattr_in>.size else { return replyError(unique, EIO) }
            setattr(unique, node: header.nodeid, payload.loadUnaligned(as: fk_setattr_in.self))
        case FK_OPEN:
            open(header)
        case FK_RELEASE:
            guard payloadLength >= MemoryLayout<fk_release_in>.size else { return replyError(unique, EIO) }
            release(unique, payload.loadUnaligned(as: fk_release_in.self))
        case FK_FLUSH:
            replyError(unique, 0)  // nothing buffered; FOPEN_NOFLUSH usually spares this
        case FK_READ, FK_WRITE:
            // netmap's device has no read/write: the VFS answers EINVAL.
            // FOPEN_DIRECT_IO routes them here instead of to the backing file.
            replyError(unique, EINVAL)
        case FK_FSYNC:
            replyError(unique, EINVAL)  // as for a device without fsync
        case FK_STATFS:
            statfs(unique)
        case FK_LOOKUP:
            replyError(unique, ENOENT)  // the root is a file: nothing to look up
        case FK_OPENDIR:
            replyError(unique, ENOTDIR)
        case FK_DESTROY:
            replyError(unique, 0)
        case FK_INIT:
            replyError(unique, EPROTO)  // handled once in start()
        case FK_FORGET, FK_BATCH_FORGET,
             FK_INTERRUPT, FK_NOTIFY_REPLY:
            return  // no reply; requests here finish quickly, so INTERRUPT is moot
        default:
            // STATX (the kernel falls back to GETATTR), ACCESS, xattrs,
            // LSEEK, FALLOCATE, ...: the kernel remembers ENOSYS and stops asking.
            replyError(unique, ENOSYS)
        }
    }

    // MARK: - replies

    /// Writes out header + `bodyLength` bytes already placed after it.
    @discardableResult
    private func send(_ unique: UInt64, error: Int32, bodyLength: Int) -> Bool {
        let total = Self.outHeaderSize + bodyLength
        reply.storeBytes(of: fk_out_header(len: UInt32(total), error: error, unique: unique), as: fk_out_header.self)
        switch Sys.write(connection.fd, reply, total) {
        case .success:
            return true
        case .failure(let e):
            // ENOENT: the caller was interrupted and the request is gone.
            // ENODEV: the connection was aborted.
            if e.rawValue != ENOENT && e.rawValue != ENODEV {
                log("fuse: reply to request \(unique): \(FUSEFileError("write", errno: e.rawValue))")
            }
            return false
        }
    }

    private func replyError(_ unique: UInt64, _ errno: Int32) {
        send(unique, error: -errno, bodyLength: 0)
    }

    private func body<T>(_ value: T) -> Int {
        (reply + Self.outHeaderSize).storeBytes(of: value, as: T.self)
        return MemoryLayout<T>.size
    }

    // MARK: - file system requests

    private func fileAttributes() -> fk_attr {
        var a = fk_attr()
        a.ino = UInt64(FK_ROOT_ID)
        a.size = device.regionSize
        a.blocks = (a.size + 511) / 512
        a.atime = attributes.seconds
        a.mtime = attributes.seconds
        a.ctime = attributes.seconds
        a.atimensec = attributes.nanoseconds
        a.mtimensec = attributes.nanoseconds
        a.ctimensec = attributes.nanoseconds
        a.mode = attributes.mode
        a.nlink = 1
        a.uid = attributes.uid
        a.gid = attributes.gid
        a.blksize = 4096
        return a
    }

    private func getattr(_ unique: UInt64, node: UInt64) {
        guard node == UInt64(FK_ROOT_ID) else { return replyError(unique, ENOENT) }
        var out = fk_attr_out()
        out.attr_valid = attributes.validSeconds
        out.attr = fileAttributes()
        send(unique, error: 0, bodyLength: body(out))
    }

    /// Size and times are ignored (as a device node ignores O_TRUNC);
    /// ownership and mode are the daemon's to set.
    private func setattr(_ unique: UInt64, node: UInt64, _ input: fk_setattr_in) {
        guard node == UInt64(FK_ROOT_ID) else { return replyError(unique, ENOENT) }
        if input.valid & (FK_FATTR_MODE | FK_FATTR_UID | FK_FATTR_GID) != 0 {
            return replyError(unique, EPERM)
        }
        getattr(unique, node: node)
    }

    private func statfs(_ unique: UInt64) {
        var st = fk_kstatfs()
        st.bsize = 4096
        st.frsize = 4096
        st.namelen = 255
        st.files = 1
        send(unique, error: 0, bodyLength: body(st))
    }

    // MARK: - open / release

    private func open(_ header: fk_in_header) {
        guard header.nodeid == UInt64(FK_ROOT_ID) else { return replyError(header.unique, ENOENT) }
        fence.waitForEarlier(than: header.unique, own: slot)  // a close() before this open() is complete
        let client = ClientIdentity(pid: Int32(bitPattern: header.pid), uid: header.uid, gid: header.gid)
        // Pinned now, while the calling thread waits for this reply (see
        // MappingHolds): RELEASE carries no pid, and by then it may be reused.
        let opener = holds.openers.opener(ofThread: client.pid)
        let file = device.open(client: client)
        let fh = files.insert(file, opener: opener)
        // PASSTHROUGH: mmap of this file maps the region file itself, so
        // clients need no shim. DIRECT_IO keeps read/write coming here (they
        // would otherwise go to the backing file); mmap still goes through.
        // NOFLUSH spares a FLUSH round trip on every close.
        let out = fk_open_out(fh: fh,
                              open_flags: FK_FOPEN_PASSTHROUGH | FK_FOPEN_DIRECT_IO | FK_FOPEN_NOFLUSH,
                              backing_id: connection.backingID)
        if !send(header.unique, error: 0, bodyLength: body(out)) {
            // The open was interrupted or aborted: no RELEASE will come.
            files.remove(fh)?.file.release()
        }
    }

    /// RELEASE comes once per open file description when its last reference
    /// goes (pid 0, background). With passthrough, a mapping holds the
    /// backing file, not this one, so RELEASE can come while the region is
    /// still mapped. netmap keeps the binding until munmap then, and so does
    /// this front end: MappingHolds keeps the file registered while the
    /// process that opened it still maps the region, and releases it once
    /// that process unmaps it or exits (or at stop).
    private func release(_ unique: UInt64, _ input: fk_release_in) {
        if let entry = files.remove(input.fh) { holds.release(entry) }
        slot.released()
        replyError(unique, 0)
    }

    // MARK: - poll

    private func poll(_ unique: UInt64, _ input: fk_poll_in) {
        guard let file = files.lookup(input.fh) else { return replyError(unique, EBADF) }
        let waker: FUSEPollWaker? = input.flags & FK_POLL_SCHEDULE_NOTIFY != 0 ? pollWaker(input.kh) : nil
        let revents = file.poll(events: Int16(truncatingIfNeeded: input.events), waker: waker)
        let out = fk_poll_out(revents: UInt32(UInt16(bitPattern: revents)), padding: 0)
        send(unique, error: 0, bodyLength: body(out))
    }

    /// Wakers are immutable (connection, kernel poll handle): each worker
    /// keeps the ones it made, so a poll allocates nothing. Bounded: a
    /// handle per open file that polls; the cache starts over when full.
    private var wakers: [UInt64: FUSEPollWaker] = [:]

    private func pollWaker(_ kh: UInt64) -> FUSEPollWaker {
        if let w = wakers[kh] { return w }
        if wakers.count >= 256 { wakers.removeAll() }
        let w = FUSEPollWaker(connection: connection, kh: kh)
        wakers[kh] = w
        return w
    }

    // MARK: - ioctl

    /// A restricted ioctl: the kernel copied in `in_size` bytes from `arg`
    /// (the _IOC_WRITE direction) and will copy the reply's data, up to
    /// `out_size` bytes, back to `arg` (the _IOC_READ direction) — also when
    /// the result is an error, since the result travels in fuse_ioctl_out,
    /// not in the out header. That is how netmap's write-back on error (the
    /// whole nmreq / nmreq_header) happens: the reply carries the patched
    /// argument with `result = -errno`. Memory beyond the argument (NIOCCTRL
    /// bodies, options) is read and written on the calling thread with
    /// process_vm_readv/writev; its writes land before the reply, so the
    /// caller sees them when ioctl returns.
    private func ioctl(_ header: fk_in_header, _ payload: UnsafeRawPointer, _ payloadLength: Int) {
        let unique = header.unique
        let input = payload.loadUnaligned(as: fk_ioctl_in.self)
        // An ioctl with an argument (registration, info, control; not the
        // syncs) sees every release read before it done (ReleaseFence).
        if (input.cmd >> 16) & 0x3fff != 0 { fence.waitForEarlier(than: unique, own: slot) }
        guard let file = files.lookup(input.fh) else { return replyError(unique, EBADF) }
        let inSize = Int(input.in_size)
        let outSize = Int(input.out_size)
        let inOffset = MemoryLayout<fk_ioctl_in>.size
        guard inSize <= payloadLength - inOffset,
              Self.outHeaderSize + MemoryLayout<fk_ioctl_out>.size + outSize <= Self.replyCapacity
        else { return replyError(unique, EIO) }

        let pid = Int32(bitPattern: header.pid)
        let argument = input.arg
        var memory = CallerMemory()
        var argumentBytes: [UInt8]? = nil
        if inSize > 0 {
            let bytes = Array(UnsafeRawBufferPointer(start: payload + inOffset, count: inSize))
            memory.add(CallerRange(address: argument, length: inSize), bytes: bytes)
            argumentBytes = bytes
        }

        var (status, writes) = resolve(file, command: input.cmd, argument: argument, memory: &memory, pid: pid)

        // The reply's data is the argument as the kernel will store it back:
        // the bytes it gave us, patched by the writes that fall inside.
        let data = reply + Self.outHeaderSize + MemoryLayout<fk_ioctl_out>.size
        var dataLength = 0
        if outSize > 0 {
            if let argumentBytes, argumentBytes.count == outSize {
                argumentBytes.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: outSize) }
                dataLength = outSize
            } else if case .bytes(let base) = memory.lookup(CallerRange(address: argument, length: outSize)) {
                base.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: outSize) }
                dataLength = outSize
            }
            // else (_IOR without the argument fetched): all writes go by
            // process_vm_writev and the kernel copies nothing back.
        }
        for write in writes where !write.bytes.isEmpty {
            if !store(write, argument: argument, data: data, dataLength: dataLength, pid: pid), status == 0 {
                status = EFAULT  // as netmap's copyout failing
            }
        }
        writes.removeAll()

        let out = fk_ioctl_out(result: -status, flags: 0, in_iovs: 0, out_iovs: 0)
        (reply + Self.outHeaderSize).storeBytes(of: out, as: fk_ioctl_out.self)
        send(unique, error: 0, bodyLength: MemoryLayout<fk_ioctl_out>.size + dataLength)
    }

    /// Calls the file until it completes, fetching what it asks for.
    private func resolve(_ file: any DeviceFile, command: UInt32, argument: UInt64,
                         memory: inout CallerMemory, pid: Int32) -> (Int32, [CallerWrite]) {
        var rounds = 0
        while true {
            switch file.ioctl(command: command, argument: argument, memory: memory, caller: pid) {
            case .complete(let errno, let writes):
                return (errno, writes)
            case .needMemory(let reads, _):
                rounds += 1
                var fetched = false
                for range in reads {
                    guard case .missing = memory.lookup(range) else { continue }
                    memory.add(range, bytes: fetch(range, pid: pid))
                    fetched = true
                }
                if !fetched || rounds > Self.maxMemoryRounds {
                    log("fuse: ioctl 0x\(String(command, radix: 16)): core asked for memory it already has")
                    return (EIO, [])
                }
            }
        }
    }

    /// Reads one range of the caller's memory; nil if any of it is unreadable.
    private func fetch(_ range: CallerRange, pid: Int32) -> [UInt8]? {
        if range.length == 0 { return [] }
        guard range.length > 0, range.length <= Self.maxFetchLength else { return nil }
        var ok = false
        let bytes = [UInt8](unsafeUninitializedCapacity: range.length) { buf, count in
            ok = Sys.readCaller(pid: pid, into: buf.baseAddress!, from: range.address, length: range.length)
            if !ok { buf.initialize(repeating: 0) }
            count = range.length
        }
        return ok ? bytes : nil
    }

    /// Puts one write into the reply's argument copy where it overlaps
    /// `[argument, argument + dataLength)`, and the rest into the caller's
    /// memory directly. False if a direct write failed.
    private func store(_ write: CallerWrite, argument: UInt64, data: UnsafeMutableRawPointer,
                       dataLength: Int, pid: Int32) -> Bool {
        let start = write.address
        let (end, overflow) = start.addingReportingOverflow(UInt64(write.bytes.count))
        guard !overflow else { return false }
        return write.bytes.withUnsafeBytes { bytes -> Bool in
            let base = bytes.baseAddress!
            let argumentEnd = argument &+ UInt64(dataLength)
            let lo = max(start, argument)
            let hi = min(end, argumentEnd)
            guard dataLength > 0, lo < hi else {
                return Sys.writeCaller(pid: pid, from: base, to: start, length: bytes.count)
            }
            (data + Int(lo - argument)).copyMemory(from: base + Int(lo - start), byteCount: Int(hi - lo))
            var ok = true
            if start < lo {
                ok = Sys.writeCaller(pid: pid, from: base, to: start, length: Int(lo - start)) && ok
            }
            if hi < end {
                ok = Sys.writeCaller(pid: pid, from: base + Int(hi - start), to: hi, length: Int(end - hi)) && ok
            }
            return ok
        }
    }
}
