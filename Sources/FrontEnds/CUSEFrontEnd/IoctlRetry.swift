// IoctlRetry: the stepwise `DeviceFile.ioctl` protocol carried over CUSE's
// unrestricted-ioctl retry, as pure logic (no libfuse), so it can be tested
// without a kernel.
//
// How CUSE carries an ioctl: the kernel first sends the command and the
// caller's argument address with no data (in 0 bytes, out room 0). The server
// may answer "retry with these input ranges and these output ranges"; the
// kernel copies the input ranges in, concatenated in order, and asks again
// with room for the output ranges. The final answer carries a result and
// bytes that the kernel copies, in order, into the declared output ranges.
// Nothing links one round to the next but the calling thread (fuse_ctx.pid
// is the caller's thread id: one thread is in one ioctl at a time), the
// command and the argument; `PendingIoctl` is what we remember in between.

import DeviceInterface
#if canImport(Glibc)
import Glibc
#endif

/// The most iovecs the kernel accepts in one retry (FUSE_IOCTL_MAX_IOV).
let fuseIoctlMaxIov = 256

/// What we asked for in the last retry of one thread's ioctl.
struct PendingIoctl: Equatable, Sendable {
    var command: UInt32
    var argument: UInt64
    /// The input ranges of the retry; the next call's input is their bytes, in order.
    var read: [CallerRange]
    /// The output ranges of the retry; the final reply fills them, in order.
    var write: [CallerRange]
    /// An outcome already computed (effects done) whose writes did not fit the
    /// output ranges declared before: the retry only made room for them.
    var completed: Completed?

    struct Completed: Equatable, Sendable {
        var errno: Int32
        var writes: [CallerWrite]
    }

    var readTotal: Int { read.reduce(0) { $0 + $1.length } }
    var writeTotal: Int { write.reduce(0) { $0 + $1.length } }
}

/// The reply to send for one CUSE ioctl request.
enum CUSEIoctlReply: Equatable, Sendable {
    /// fuse_reply_ioctl_retry(in: read, out: write)
    case retry(read: [CallerRange], write: [CallerRange])
    /// fuse_reply_ioctl(result, data): `result` is 0 or a negated errno (the
    /// kernel copies `data` out, then returns `result` from ioctl(2)).
    case data(result: Int32, bytes: [UInt8])
    /// fuse_reply_err(errno)
    case error(Int32)
}

enum IoctlRetry {
    /// One round. `pending` is what this thread's previous round left (if
    /// any); `input` is the request's in_buf, `outputRoom` its out_bufsz.
    /// `call` runs the DeviceFile ioctl; it is called at most once, and not
    /// at all when a completed outcome is only being delivered.
    /// Returns the reply, what to remember for the next round, and a
    /// complaint worth logging (a protocol or contract violation).
    static func step(
        pending: PendingIoctl?,
        command: UInt32,
        argument: UInt64,
        input: UnsafeRawBufferPointer,
        outputRoom: Int,
        call: (CallerMemory) -> IoctlOutcome
    ) -> (reply: CUSEIoctlReply, next: PendingIoctl?, complaint: String?) {
        var memory = CallerMemory()
        var declaredWrite: [CallerRange] = []
        if input.count != 0 || outputRoom != 0 {
            guard let p = pending, p.command == command, p.argument == argument,
                  p.readTotal == input.count, p.writeTotal == outputRoom
            else {
                return (.error(EIO), nil,
                        "ioctl 0x\(hex(command)) retry round with \(input.count) in / \(outputRoom) out bytes matches no retry we asked for")
            }
            var offset = 0
            for range in p.read {
                memory.add(range, bytes: Array(input[offset ..< offset + range.length]))
                offset += range.length
            }
            declaredWrite = p.write
            if let done = p.completed {
                return finish(done.errno, done.writes, declared: declaredWrite, memory: memory,
                              command: command, argument: argument)
            }
        }

        switch call(memory) {
        case let .needMemory(read, write):
            let read = read.filter { $0.length > 0 }
            let write = write.filter { $0.length > 0 }
            if read.contains(where: { $0.length < 0 }) || write.contains(where: { $0.length < 0 }) {
                return (.error(EIO), nil, "ioctl 0x\(hex(command)): device asked for a negative length")
            }
            if read.isEmpty && write.isEmpty {
                // A retry with nothing in it would come back as a first call.
                return (.error(EIO), nil, "ioctl 0x\(hex(command)): device asked for memory but named no range")
            }
            let nothingNew = read.allSatisfy { memory.lookup($0) != .missing }
                && write.allSatisfy { declaredWrite.contains($0) }
            if nothingNew {
                // The next round would bring the same memory, hence the same answer.
                return (.error(EIO), nil, "ioctl 0x\(hex(command)): device asked again for memory it already has")
            }
            if read.count + write.count > fuseIoctlMaxIov {
                return (.error(ENOMEM), nil,
                        "ioctl 0x\(hex(command)): \(read.count + write.count) ranges exceed the kernel's \(fuseIoctlMaxIov)")
            }
            let next = PendingIoctl(command: command, argument: argument, read: read, write: write, completed: nil)
            return (.retry(read: read, write: write), next, nil)
        case let .complete(errno, writes):
            return finish(errno, writes, declared: declaredWrite, memory: memory,
                          command: command, argument: argument)
        }
    }

    /// The reply for a completed outcome, given the output ranges the kernel
    /// has room for. Writes that do not fit get one more retry that declares
    /// exactly them (the outcome is remembered, never recomputed).
    private static func finish(
        _ errno: Int32, _ writes: [CallerWrite], declared: [CallerRange], memory: CallerMemory,
        command: UInt32, argument: UInt64
    ) -> (reply: CUSEIoctlReply, next: PendingIoctl?, complaint: String?) {
        let writes = writes.filter { !$0.bytes.isEmpty }
        if writes.isEmpty {
            return (errno == 0 ? .data(result: 0, bytes: []) : .error(errno), nil, nil)
        }
        let result: Int32 = errno == 0 ? 0 : -errno
        if let out = assembleOutput(declared: declared, memory: memory, writes: writes) {
            let complaint = out.guessedBytes == 0 ? nil
                : "ioctl 0x\(hex(command)): \(out.guessedBytes) output bytes were neither fetched nor written; zeroed"
            return (.data(result: result, bytes: out.bytes), nil, complaint)
        }
        let ranges = writes.map { CallerRange(address: $0.address, length: $0.bytes.count) }
        if ranges.count > fuseIoctlMaxIov {
            return (.error(ENOMEM), nil, "ioctl 0x\(hex(command)): \(ranges.count) writes exceed the kernel's \(fuseIoctlMaxIov) ranges")
        }
        let next = PendingIoctl(command: command, argument: argument, read: [], write: ranges,
                                completed: .init(errno: errno, writes: writes))
        return (.retry(read: [], write: ranges), next, nil)
    }

    /// The bytes that fill `declared` (in order) so that exactly `writes`
    /// change the caller's memory: each range starts from the bytes fetched
    /// for it and gets the writes patched in. The result stops after the
    /// last written byte, so trailing bytes nobody fetched stay untouched.
    /// `nil` when some written byte lies outside every declared range.
    static func assembleOutput(
        declared: [CallerRange], memory: CallerMemory, writes: [CallerWrite]
    ) -> (bytes: [UInt8], guessedBytes: Int)? {
        let total = declared.reduce(0) { $0 + $1.length }
        var bytes = [UInt8](repeating: 0, count: total)
        var known = [Bool](repeating: false, count: total)
        var starts: [Int] = []
        var offset = 0
        for range in declared {
            starts.append(offset)
            if case let .bytes(fetched) = memory.lookup(range) {
                bytes.replaceSubrange(offset ..< offset + range.length, with: fetched)
                for i in offset ..< offset + range.length { known[i] = true }
            }
            offset += range.length
        }
        var end = 0
        for write in writes {
            var covered = [Bool](repeating: false, count: write.bytes.count)
            let wStart = write.address
            let wEnd = write.address &+ UInt64(write.bytes.count)
            // Patch every declared range the write touches: the kernel copies
            // the ranges in order, so an overlapping later range would
            // otherwise put the old bytes back.
            for (i, range) in declared.enumerated() {
                let rStart = range.address
                let rEnd = range.address &+ UInt64(range.length)
                let lo = max(wStart, rStart), hi = min(wEnd, rEnd)
                guard lo < hi else { continue }
                let n = Int(hi - lo)
                let src = Int(lo - wStart)
                let dst = starts[i] + Int(lo - rStart)
                for k in 0 ..< n {
                    bytes[dst + k] = write.bytes[src + k]
                    known[dst + k] = true
                    covered[src + k] = true
                }
                end = max(end, dst + n)
            }
            if covered.contains(false) { return nil }
        }
        let guessed = known[0 ..< end].reduce(0) { $0 + ($1 ? 0 : 1) }
        return (Array(bytes[0 ..< end]), guessed)
    }
}

func hex(_ v: UInt32) -> String { String(v, radix: 16) }
