// The CUSE ioctl retry translation, without a kernel: each test plays the
// kernel's side of the rounds (in_buf = the bytes of the requested input
// ranges, in order; out room = the sum of the output ranges).

import DeviceInterface
import Glibc
import Testing

@testable import CUSEFrontEnd

/// A fake caller address space: address -> byte.
struct Caller {
    var bytes: [UInt64: UInt8] = [:]

    mutating func put(_ address: UInt64, _ data: [UInt8]) {
        for (i, b) in data.enumerated() { bytes[address + UInt64(i)] = b }
    }

    func get(_ r: CallerRange) -> [UInt8] {
        (0 ..< r.length).map { bytes[r.address + UInt64($0)] ?? 0xEE }
    }

    /// What the kernel does with a final reply: copy `data` into the out ranges in order.
    mutating func copyOut(_ data: [UInt8], into ranges: [CallerRange]) {
        var i = 0
        for r in ranges {
            for k in 0 ..< r.length where i < data.count {
                bytes[r.address + UInt64(k)] = data[i]
                i += 1
            }
        }
    }
}

/// Runs the whole retry conversation the way the kernel would; returns the
/// ioctl(2) result (0 or -errno), the number of rounds and of device calls.
func converse(_ caller: inout Caller, command: UInt32 = 0xc058_6997, argument: UInt64,
              device: (CallerMemory) -> IoctlOutcome) -> (result: Int32, rounds: Int, calls: Int) {
    var pending: PendingIoctl?
    var read: [CallerRange] = [], write: [CallerRange] = []
    var calls = 0
    for round in 1 ... 20 {
        let input = read.flatMap { caller.get($0) }
        let room = write.reduce(0) { $0 + $1.length }
        let (reply, next, _) = input.withUnsafeBytes { buf in
            IoctlRetry.step(pending: pending, command: command, argument: argument, input: buf,
                            outputRoom: room) { m in calls += 1; return device(m) }
        }
        pending = next
        switch reply {
        case let .retry(r, w):
            read = r
            write = w
        case let .data(result, bytes):
            caller.copyOut(bytes, into: write)
            return (result, round, calls)
        case let .error(e):
            return (-e, round, calls)
        }
    }
    Issue.record("no end after 20 rounds")
    return (0, 20, calls)
}

@Test func syncIoctlCompletesInOneRoundWithoutData() {
    var caller = Caller()
    let r = converse(&caller, command: 0x6994, argument: 0) { _ in .complete(errno: 0, writes: []) }
    #expect(r.result == 0 && r.rounds == 1 && r.calls == 1)
    let e = converse(&caller, command: 0x6994, argument: 0) { _ in .complete(errno: ENXIO, writes: []) }
    #expect(e.result == -ENXIO)
}

@Test func readModifyWriteTakesOneRetry() {
    var caller = Caller()
    let arg: UInt64 = 0x1000
    caller.put(arg, Array(0 ..< 60))
    let range = CallerRange(address: arg, length: 60)
    let r = converse(&caller, argument: arg) { m in
        guard case let .bytes(b) = m.lookup(range) else { return .needMemory(read: [range], write: [range]) }
        #expect(b == Array(0 ..< 60))
        // Only 4 bytes change; the rest must come back as they were.
        return .complete(errno: 0, writes: [CallerWrite(address: arg + 20, bytes: [9, 9, 9, 9])])
    }
    #expect(r.result == 0 && r.rounds == 2 && r.calls == 2)
    var expected = Array<UInt8>(0 ..< 60)
    expected.replaceSubrange(20 ..< 24, with: [9, 9, 9, 9])
    #expect(caller.get(range) == expected)
}

@Test func errorAnswerStillWritesBack() {
    var caller = Caller()
    let range = CallerRange(address: 0x2000, length: 8)
    caller.put(0x2000, [1, 2, 3, 4, 5, 6, 7, 8])
    let r = converse(&caller, argument: 0x2000) { m in
        guard case .bytes = m.lookup(range) else { return .needMemory(read: [range], write: [range]) }
        return .complete(errno: EINVAL, writes: [CallerWrite(address: 0x2007, bytes: [0])])
    }
    #expect(r.result == -EINVAL)
    #expect(caller.get(range) == [1, 2, 3, 4, 5, 6, 7, 0])
}

@Test func headerBodyAndOptionChainTakeOneRoundPerLevel() {
    var caller = Caller()
    let hdr = CallerRange(address: 0x1000, length: 88)
    let body = CallerRange(address: 0x3000, length: 56)
    let opt = CallerRange(address: 0x5000, length: 24)
    caller.put(0x1000, [UInt8](repeating: 1, count: 88))
    caller.put(0x3000, [UInt8](repeating: 2, count: 56))
    caller.put(0x5000, [UInt8](repeating: 3, count: 24))
    let r = converse(&caller, argument: 0x1000) { m in
        guard case .bytes = m.lookup(hdr) else { return .needMemory(read: [hdr], write: [hdr]) }
        guard case .bytes = m.lookup(body) else { return .needMemory(read: [hdr, body], write: [hdr, body]) }
        guard case .bytes = m.lookup(opt) else {
            return .needMemory(read: [hdr, body, opt], write: [hdr, body, opt])
        }
        return .complete(errno: 0, writes: [CallerWrite(address: 0x3000, bytes: [7, 7]),
                                            CallerWrite(address: 0x500c, bytes: [95, 0, 0, 0])])
    }
    #expect(r.result == 0 && r.rounds == 4 && r.calls == 4)
    #expect(caller.get(CallerRange(address: 0x3000, length: 3)) == [7, 7, 2])
    #expect(caller.get(CallerRange(address: 0x500b, length: 6)) == [3, 95, 0, 0, 0, 3])
    #expect(caller.get(hdr) == [UInt8](repeating: 1, count: 88))
}

@Test func writesWithoutDeclaredRoomAreDeliveredWithoutCallingAgain() {
    var caller = Caller()
    let r = converse(&caller, command: 0x8100_69c8, argument: 0x4000) { _ in
        .complete(errno: 0, writes: [CallerWrite(address: 0x4000, bytes: [1, 2, 3])])
    }
    #expect(r.result == 0 && r.rounds == 2 && r.calls == 1)
    #expect(caller.get(CallerRange(address: 0x4000, length: 3)) == [1, 2, 3])
}

@Test func retryRoundNobodyAskedForFailsWithEIO() {
    let (reply, next, complaint) = [UInt8](repeating: 0, count: 8).withUnsafeBytes { buf in
        IoctlRetry.step(pending: nil, command: 1, argument: 2, input: buf, outputRoom: 0) { _ in
            Issue.record("device must not be called")
            return .complete(errno: 0, writes: [])
        }
    }
    #expect(reply == .error(EIO) && next == nil && complaint != nil)
}

@Test func askingAgainForTheSameMemoryEndsWithEIOInsteadOfLooping() {
    var caller = Caller()
    let range = CallerRange(address: 0x1000, length: 4)
    let r = converse(&caller, argument: 0x1000) { _ in .needMemory(read: [range], write: [range]) }
    #expect(r.result == -EIO && r.rounds == 2)
    let w = converse(&caller, argument: 0x1000) { _ in .needMemory(read: [], write: [range]) }
    #expect(w.result == -EIO && w.rounds == 2)
}

@Test func assembleOutputPatchesAcrossRangesAndTrimsTheTail() {
    var memory = CallerMemory()
    let a = CallerRange(address: 100, length: 4)
    let b = CallerRange(address: 104, length: 4)
    memory.add(a, bytes: [1, 1, 1, 1])
    // b was never fetched: bytes after the last write stay untouched (trimmed).
    let out = IoctlRetry.assembleOutput(declared: [a, b], memory: memory,
                                        writes: [CallerWrite(address: 102, bytes: [5, 5, 5])])
    #expect(out?.bytes == [1, 1, 5, 5, 5])
    #expect(out?.guessedBytes == 0)
    let outside = IoctlRetry.assembleOutput(declared: [a], memory: memory,
                                            writes: [CallerWrite(address: 103, bytes: [5, 5])])
    #expect(outside == nil)
}

@Test func assembleOutputPatchesEveryOverlappingRange() {
    var memory = CallerMemory()
    let whole = CallerRange(address: 0, length: 8)
    let inner = CallerRange(address: 4, length: 4)
    memory.add(whole, bytes: [0, 0, 0, 0, 0, 0, 0, 0])
    let out = IoctlRetry.assembleOutput(declared: [whole, inner], memory: memory,
                                        writes: [CallerWrite(address: 5, bytes: [9])])
    var caller = Caller()
    caller.copyOut(out!.bytes, into: [whole, inner])
    #expect(caller.get(whole) == [0, 0, 0, 0, 0, 9, 0, 0])
}
