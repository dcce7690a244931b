import DeviceInterface
import Synchronization
import Testing

@Suite struct ThreadTests {
    @Test func spawnRunsTheBodyAndJoinWaitsForIt() throws {
        let ran = Mutex(false)
        let t = try JoinableThread.spawn { ran.withLock { $0 = true } }
        t.join()
        #expect(ran.withLock { $0 })
    }

    // The daemon once ignored pthread_create failing and joined a zero
    // handle later. A thread that cannot start is an error to the caller,
    // and its body never runs.
    @Test func aThreadThatCannotStartIsAnErrorAndItsBodyNeverRuns() {
        let ran = Mutex(false)
        // A 256 TiB stack: more than a process's address space.
        #expect(throws: ThreadStartError.self) {
            try JoinableThread.spawn(stackSize: 1 << 48) { ran.withLock { $0 = true } }
        }
        #expect(!ran.withLock { $0 })
    }
}
