// InProcessDevice: a front end with no kernel, for tests. It drives a
// NetmapDevice exactly as the CUSE and FUSE front ends do (open, ioctl with
// the stepwise caller-memory protocol, poll with a one-shot waker, release),
// against a CallerAddressSpace that stands in for the client's memory.

#if canImport(Glibc)
import Glibc
#endif
import DeviceInterface

/// The client's address space as a front end sees it: only registered
/// allocations can be read or written; anything else is a fault (EFAULT).
public final class CallerAddressSpace: @unchecked Sendable {
    private var allocations: [(base: UInt64, size: Int)] = []
    private let lock = PThreadLock()
    public private(set) var reads = 0

    public init() {}

    /// Zeroed caller memory of `size` bytes (freed with the address space).
    public func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(size, 1))
        lock.withLock { allocations.append((UInt64(UInt(bitPattern: p)), max(size, 1))) }
        return p
    }

    deinit {
        for a in allocations { UnsafeMutableRawPointer(bitPattern: UInt(a.base))!.deallocate() }
    }

    private func contains(_ r: CallerRange) -> Bool {
        lock.withLock {
            allocations.contains { a in
                r.address >= a.base && r.address - a.base <= UInt64(a.size)
                    && UInt64(a.size) - (r.address - a.base) >= UInt64(r.length)
            }
        }
    }

    public func read(_ r: CallerRange) -> [UInt8]? {
        guard contains(r) else { return nil }
        lock.withLock { reads += 1 }
        let p = UnsafeRawPointer(bitPattern: UInt(r.address))!
        return Array(UnsafeRawBufferPointer(start: p, count: r.length))
    }

    @discardableResult
    public func write(_ w: CallerWrite) -> Bool {
        guard contains(CallerRange(address: w.address, length: w.bytes.count)) else { return false }
        let p = UnsafeMutableRawPointer(bitPattern: UInt(w.address))!
        w.bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: w.bytes.count) }
        return true
    }
}

public final class InProcessDevice: @unchecked Sendable {
    public let device: NetmapDevice

    /// How the ioctl argument arrives, as in the two kernel front ends.
    public enum ArgumentStyle: Sendable {
        /// CUSE unrestricted ioctl: nothing comes with the first call.
        case fetchEverything
        /// FUSE restricted ioctl: the kernel copies _IOC_SIZE(cmd) bytes in.
        case argumentPrefetched
    }

    public init(device: NetmapDevice) { self.device = device }

    public func open(pid: Int32 = getpid(), memory: CallerAddressSpace, style: ArgumentStyle = .fetchEverything) -> InProcessFile {
        InProcessFile(file: device.open(client: ClientIdentity(pid: pid)), memory: memory, style: style)
    }
}

public final class InProcessFile: @unchecked Sendable {
    public let file: DeviceFile
    public let memory: CallerAddressSpace
    public let style: InProcessDevice.ArgumentStyle
    /// Round trips the last ioctl took (1 = answered at once).
    public private(set) var lastRoundTrips = 0
    private var closed = false

    init(file: DeviceFile, memory: CallerAddressSpace, style: InProcessDevice.ArgumentStyle) {
        self.file = file
        self.memory = memory
        self.style = style
    }

    /// One ioctl; returns 0 or the errno, having made the writes the device asked for.
    @discardableResult
    public func ioctl(_ command: UInt32, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        let arg = argument.map { UInt64(UInt(bitPattern: $0)) } ?? 0
        var fetched = CallerMemory()
        let size = Int((command >> 16) & 0x3fff)
        if style == .argumentPrefetched, size > 0, arg != 0 {
            let r = CallerRange(address: arg, length: size)
            fetched.add(r, bytes: memory.read(r))
        }
        lastRoundTrips = 0
        while true {
            lastRoundTrips += 1
            switch file.ioctl(command: command, argument: arg, memory: fetched) {
            case .needMemory(let read, _):
                var progress = false
                for r in read where fetched.ranges[r] == nil {
                    fetched.add(r, bytes: memory.read(r))
                    progress = true
                }
                precondition(progress, "device asked again for memory it already has")
            case .complete(let errno, let writes):
                for w in writes { memory.write(w) }
                return errno
            }
        }
    }

    /// poll(2) with a timeout in ms (-1 forever): re-evaluates after each
    /// wake-up, as the kernel does.
    public func poll(_ events: Int16, timeoutMs: Int) -> Int16 {
        let deadline = timeoutMs < 0 ? UInt64.max : monotonicNs() + UInt64(timeoutMs) * 1_000_000
        while true {
            let waker = ConditionWaker()
            let revents = file.poll(events: events, waker: timeoutMs == 0 ? nil : waker)
            if revents != 0 || timeoutMs == 0 { return revents }
            if !waker.wait(until: deadline) { return 0 }
        }
    }

    public func mmapCheck(length: UInt64) -> Int32 { file.mmapCheck(offset: 0, length: length) }

    /// close(2) of the last reference.
    public func close() {
        guard !closed else { return }
        closed = true
        file.release()
    }
}

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A PollWaker that a sleeping test thread waits on.
public final class ConditionWaker: PollWaker, @unchecked Sendable {
    private var fired = false
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(m, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(c, &attr)
    }

    deinit {
        pthread_cond_destroy(c)
        pthread_mutex_destroy(m)
        m.deallocate()
        c.deallocate()
    }

    public func wake() {
        pthread_mutex_lock(m)
        fired = true
        pthread_cond_broadcast(c)
        pthread_mutex_unlock(m)
    }

    /// True if woken before the deadline (monotonic ns).
    public func wait(until deadline: UInt64) -> Bool {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        while !fired {
            if deadline == .max {
                pthread_cond_wait(c, m)
            } else {
                var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                if pthread_cond_timedwait(c, m, &ts) == ETIMEDOUT { return fired }
            }
        }
        return true
    }
}

final class PThreadLock: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(m, nil) }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return body()
    }
}
