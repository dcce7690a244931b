// DeviceInterface: the boundary between the front ends (CUSE, FUSE file,
// in-process) and Core. A front end turns kernel requests into calls on a
// `DeviceFile` (one per open file description) and back; it never interprets
// netmap. Core never touches the caller's memory: an ioctl whose argument
// points further (NIOCCTRL's body and option chain, the CUSE legacy argument)
// is answered with `.needMemory`, the front end fetches those ranges its own
// way (CUSE ioctl retry, process_vm_readv) and calls again with everything
// fetched so far. Only the call that returns `.complete` has effects.

/// A range of the calling process's address space.
public struct CallerRange: Hashable, Sendable, CustomStringConvertible {
    public var address: UInt64
    public var length: Int

    public init(address: UInt64, length: Int) {
        self.address = address
        self.length = length
    }

    public var description: String { "0x\(String(address, radix: 16))+\(length)" }
}

/// Bytes to store into the caller's memory when an ioctl completes.
public struct CallerWrite: Equatable, Sendable {
    public var address: UInt64
    public var bytes: [UInt8]

    public init(address: UInt64, bytes: [UInt8]) {
        self.address = address
        self.bytes = bytes
    }
}

/// What a front end has fetched of the caller's memory for one ioctl so far.
public struct CallerMemory: Sendable {
    /// Fetched ranges and their bytes; `nil` marks a range the front end
    /// could not read (the request then fails with EFAULT).
    public private(set) var ranges: [CallerRange: [UInt8]?] = [:]

    public init() {}

    public mutating func add(_ range: CallerRange, bytes: [UInt8]?) {
        precondition(bytes == nil || bytes!.count == range.length, "fetched bytes must fill the range")
        ranges[range] = bytes
    }

    public enum Lookup: Equatable, Sendable {
        case bytes([UInt8])
        case unreadable
        case missing
    }

    /// The bytes of `range`, looked up by exact range first, then inside any
    /// fetched range that contains it.
    public func lookup(_ range: CallerRange) -> Lookup {
        if let hit = ranges[range] { return hit.map(Lookup.bytes) ?? .unreadable }
        for (have, bytes) in ranges where have.address <= range.address {
            let start = range.address &- have.address
            guard start <= UInt64(have.length), UInt64(have.length) - start >= UInt64(range.length) else { continue }
            guard let bytes else { return .unreadable }
            let s = Int(start)
            return .bytes(Array(bytes[s ..< s + range.length]))
        }
        return .missing
    }
}

/// The answer to one ioctl call.
public enum IoctlOutcome: Equatable, Sendable {
    /// Fetch `read` (all of it, including ranges fetched before) and call
    /// again. `write` lists every range the final answer may write: CUSE must
    /// declare them in its retry; FUSE may ignore it.
    case needMemory(read: [CallerRange], write: [CallerRange])
    /// Done. `errno` is 0 on success. Store `writes` into the caller's memory
    /// (they are made even on failure where netmap writes back).
    case complete(errno: Int32, writes: [CallerWrite])
}

/// Who opened the device, for logs and status. (FUSE reports the opening
/// thread's id as `pid`.)
public struct ClientIdentity: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32 = 0, gid: UInt32 = 0) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}

/// A one-shot wake-up for a poll that found nothing ready. The front end
/// turns `wake()` into its kernel notification (FUSE_NOTIFY_POLL,
/// fuse_lowlevel_notify_poll, a condition variable in tests). It may be called
/// from any thread, more than once, and after the file is released.
public protocol PollWaker: AnyObject, Sendable {
    func wake()
    /// Wakers with the same key wake the same sleepers (FUSE and CUSE wake
    /// every poller of a file through one notification), so a device keeps
    /// only the newest of them. nil: each waker is a sleeper of its own.
    var coalescingKey: UInt64? { get }
}

extension PollWaker {
    public var coalescingKey: UInt64? { nil }
}

extension DeviceFile {
    public func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory, caller: Int32) -> IoctlOutcome {
        ioctl(command: command, argument: argument, memory: memory)
    }
}

/// The netmap device as front ends see it.
public protocol NetmapDevice: AnyObject, Sendable {
    /// A new, unbound open file description. Never fails.
    func open(client: ClientIdentity) -> DeviceFile
    /// The file whose bytes clients map (the shared memory region of
    /// allocator 1), and its size.
    var regionPath: String { get }
    var regionSize: UInt64 { get }
}

/// One open file description of /dev/netmap. Thread-safe: threads and forked
/// processes sharing the descriptor may call concurrently.
public protocol DeviceFile: AnyObject, Sendable {
    /// One ioctl. `argument` is the caller's third ioctl argument (an address).
    func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory) -> IoctlOutcome
    /// The same, made by thread `caller` (its id as the front end's kernel
    /// reports it): names of interfaces are looked up in that thread's
    /// network namespace, as netmap looks them up in the caller's.
    func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory, caller: Int32) -> IoctlOutcome
    /// poll/select/epoll evaluation: runs the syncs netmap runs and returns
    /// revents. When `waker` is given it is armed before the syncs, and fired
    /// once when a ring of this file may have become ready. Several threads
    /// may sleep in poll on one file: each armed waker fires.
    func poll(events: Int16, waker: PollWaker?) -> Int16
    /// 0 if `[offset, offset+length)` may be mapped now, else the errno
    /// (EINVAL before registration or beyond the region).
    func mmapCheck(offset: UInt64, length: UInt64) -> Int32
    /// The last reference went away: undo the registration, free everything.
    /// (The FUSE-file front end holds it back while the opening process
    /// still maps the region, as netmap's mapping holds its file.)
    func release()
}
