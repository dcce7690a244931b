// NetmapCore: what netmap means, with no I/O of its own.
//
// How a request travels:
//   front end -> NetmapEngine.open -> Session (one per open file)
//   Session.ioctl -> Requests (legacy nmreq / NIOCCTRL decoded in steps,
//       caller memory fetched by the front end) -> Session.register /
//       Session.sync / info queries
//   Session.register -> Registry.resolve (PortName, PortProvider) ->
//       PortAdapter + Kring ring memory in MemoryRegion -> Port.setNetmapMode
//   Session.sync / Session.poll -> Kring prologue -> Port.txsync/rxsync ->
//       Kring.finalize; backends wake pollers through Kring.wakeup
// Locks: Registry.lock (registration, release, port life) > Session.lock
// (its binding) ; Kring.syncLock (one sync per ring, others skip) ;
// MemoryRegion's pool lock innermost.

import DeviceInterface

public final class NetmapEngine: NetmapDevice, @unchecked Sendable {
    public let region: MemoryRegion
    public let registry: Registry
    public let log: CoreLog

    public init(region: MemoryRegion, provider: PortProvider, log: CoreLog = .silent) {
        self.region = region
        self.log = log
        registry = Registry(region: region, provider: provider, log: log)
    }

    public func open(client: ClientIdentity) -> DeviceFile { openSession(client: client) }

    public func openSession(client: ClientIdentity) -> Session {
        let s = Session(engine: self, client: client)
        openFiles.withLock { $0[ObjectIdentifier(s)] = WeakSession(session: s) }
        return s
    }

    func sessionReleased(_ s: Session) {
        _ = openFiles.withLock { $0.removeValue(forKey: ObjectIdentifier(s)) }
    }

    private struct WeakSession {
        weak var session: Session?
    }
    private let openFiles = Lock.Protected<[ObjectIdentifier: WeakSession]>([:])

    /// Open files, oldest first not guaranteed (for status).
    public var sessions: [Session] { openFiles.withLock { $0.values.compactMap(\.session) } }

    public struct Stats: Sendable, Equatable, Codable {
        public var freeBuffers, totalBuffers, freeRings, totalRings, freeIfs, totalIfs, sessions, ports: Int
    }

    /// The pool and registry as they are now.
    public func stats() -> Stats {
        let g = region.geometry
        let (sessions, ports) = registry.counts
        return Stats(freeBuffers: region.freeBufferCount, totalBuffers: region.usableBufferCount,
                     freeRings: region.freeRingCount, totalRings: g.ringPool.objectCount,
                     freeIfs: region.freeIfCount, totalIfs: g.ifPool.objectCount, sessions: sessions, ports: ports)
    }

    public var regionPath: String { region.path }
    public var regionSize: UInt64 { UInt64(region.size) }
}
