// MappingHolds' keep policy with /proc replaced by a function of the test:
// one process's /proc read can be made slow, and the RELEASE of another
// process's file must not wait for it (it once did: the read happened under
// the state lock every RELEASE takes).

import DeviceInterface
import Glibc
import Synchronization
import Testing

@testable import FUSEFrontEnd

/// A registered device file that records its release.
private final class FakeFile: DeviceFile {
    let released = Mutex(false)
    func ioctl(command: UInt32, argument: UInt64, memory: CallerMemory) -> IoctlOutcome {
        .complete(errno: EINVAL, writes: [])
    }
    func poll(events: Int16, waker: PollWaker?) -> Int16 { 0 }
    func mmapCheck(offset: UInt64, length: UInt64) -> Int32 { 0 }
    func release() { released.withLock { $0 = true } }
    var isReleased: Bool { released.withLock { $0 } }
}

private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Waits up to `seconds` for `condition`.
private func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = now() + seconds
    while !condition() {
        if now() > end { return false }
        usleep(1000)
    }
    return true
}

/// A second live process to pin: /bin/sleep, killed at the end.
private func spawnSleeper() throws -> pid_t {
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("sleep"), strdup("60"), nil]
    defer { argv.forEach { free($0) } }
    let rc = posix_spawn(&pid, "/bin/sleep", nil, nil, argv, nil)
    try #require(rc == 0, "posix_spawn /bin/sleep: \(rc)")
    return pid
}

@Suite struct MappingHoldsTests {
    // The region as /proc/PID/maps shows it: device 00:1a, inode 12345.
    static let mapped = Array("7f0000000000-7f0000400000 rw-s 00000000 00:1a 12345 /run/netmapd/region-1\n".utf8)

    @Test func aReleaseDoesNotWaitForAnotherProcesssProcRead() throws {
        let sleeper = try spawnSleeper()
        defer {
            kill(sleeper, SIGKILL)
            waitpid(sleeper, nil, 0)
        }
        let me = getpid()
        let entered = Mutex(false)
        let gate = Mutex(false)
        let holds = try MappingHolds(files: OpenFileTable(), debug: { _ in }, readMaps: { pid in
            guard pid == me else { return [] }  // the other process maps nothing
            entered.withLock { $0 = true }
            _ = eventually(3) { gate.withLock { $0 } }  // a slow /proc
            return Self.mapped
        })
        holds.addTarget(dev: 0x1a, inode: 12345)
        let mine = try #require(holds.openers.opener(ofThread: me))
        let theirs = try #require(holds.openers.opener(ofThread: sleeper))

        let slow = FakeFile()
        let slowRelease = try JoinableThread.spawn { holds.release(OpenFile(file: slow, opener: mine)) }
        #expect(eventually(5) { entered.withLock { $0 } })

        let other = FakeFile()
        let t0 = now()
        holds.release(OpenFile(file: other, opener: theirs))
        let waited = now() - t0
        #expect(other.isReleased, "the other process maps nothing: released at once")
        #expect(waited < 1, "the release waited \(waited) s for another process's /proc read")
        #expect(!gate.withLock { $0 })

        gate.withLock { $0 = true }
        slowRelease.join()
        #expect(!slow.isReleased, "still mapped by its opener: kept")
        holds.stop()
        #expect(slow.isReleased, "released at stop")
    }

    @Test func aKeptFileGoesOnceItsOpenerUnmaps() throws {
        let me = getpid()
        let maps = Mutex(Self.mapped)
        let holds = try MappingHolds(files: OpenFileTable(), debug: { _ in }, readMaps: { pid in
            pid == me ? maps.withLock { $0 } : nil
        })
        holds.addTarget(dev: 0x1a, inode: 12345)
        try holds.start().get()
        defer { holds.stop() }
        let mine = try #require(holds.openers.opener(ofThread: me))
        let file = FakeFile()
        holds.release(OpenFile(file: file, opener: mine))
        #expect(!file.isReleased, "mapped: kept")
        maps.withLock { $0 = [] }  // munmap
        #expect(eventually(5) { file.isReleased }, "the reaper releases it after the munmap")
    }
}
