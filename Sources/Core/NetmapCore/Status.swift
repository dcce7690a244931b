// A snapshot of the engine for status tools: ports with their rings and
// counters, open files with what they bound, the pool.

public struct EngineStatus: Codable, Sendable, Equatable {
    public struct Ring: Codable, Sendable, Equatable {
        public var direction: String   // "tx" or "rx"
        public var index: Int
        public var host: Bool
        public var slots: Int
        public var users: Int
        public var packets: UInt64
        public var bytes: UInt64
        public var drops: UInt64
        /// TX slots sent repaired (a buffer index beyond the pool, a length
        /// beyond the buffer), as netmap sends them.
        public var badSlots: UInt64
        /// Names of the monitors watching this ring (absent when none).
        public var monitors: [String]?
    }

    public struct PortStatus: Codable, Sendable, Equatable {
        public var name: String
        /// The interface's network namespace ("netns INODE") when it is not
        /// the daemon's; absent otherwise.
        public var namespace: String?
        public var backend: String
        public var txRings: Int
        public var rxRings: Int
        public var hostTxRings: Int
        public var hostRxRings: Int
        public var files: Int
        public var rings: [Ring]
    }

    public struct Client: Codable, Sendable, Equatable {
        public var pid: Int32
        public var port: String?
        public var txRings: [Int]
        public var rxRings: [Int]
    }

    /// A VALE switch (§11) and its ports (their counters are under `ports`).
    public struct Switch: Codable, Sendable, Equatable {
        public var name: String
        /// The bridge slot (VALE_LIST's nr_bridge_idx).
        public var index: Int
        public var ports: [SwitchPort]
        /// MAC addresses the learning table holds.
        public var learnt: Int
    }

    public struct SwitchPort: Codable, Sendable, Equatable {
        public var name: String
        /// The port number (VALE_LIST's nr_port_idx).
        public var index: Int
        public var memId: UInt16
        public var virtioHeader: Int
        public var kind: String
        /// The entry of `ports` with its rings: the port itself, or the
        /// interface an attached NIC's port stands for.
        public var port: String
    }

    public var ports: [PortStatus]
    public var clients: [Client]
    public var pool: NetmapEngine.Stats
    /// Absent when talking to a daemon without VALE.
    public var switches: [Switch]?
}


extension NetmapEngine {
    public func status() -> EngineStatus {
        // users and sessions belong to the registry lock: read them under it.
        let switches = registry.lock.withLock { registry.vale.snapshot() }
        let ports = registry.lock.withLock { registry.adaptersLocked.map { a -> EngineStatus.PortStatus in
            let g = a.geometry
            let rings = (a.txKrings + a.rxKrings).map { k in
                EngineStatus.Ring(direction: k.direction == .tx ? "tx" : "rx", index: k.index, host: k.isHost,
                                  slots: Int(k.numSlots), users: k.users,
                                  packets: k.packets.load(ordering: .relaxed), bytes: k.bytes.load(ordering: .relaxed),
                                  drops: k.drops.load(ordering: .relaxed),
                                  badSlots: k.badSlots.load(ordering: .relaxed),
                                  monitors: k.monitorNames.isEmpty ? nil : k.monitorNames)
            }
            let ns = a.port.netNamespace.flatMap { $0.isDaemons ? nil : $0.description }
            return EngineStatus.PortStatus(name: a.name, namespace: ns, backend: a.port.backendName, txRings: g.txRings,
                                           rxRings: g.rxRings, hostTxRings: g.hostTxRings,
                                           hostRxRings: g.hostRxRings, files: a.sessions, rings: rings)
        } }
        let clients = sessions.map { s -> EngineStatus.Client in
            let b = s.boundRings
            return EngineStatus.Client(pid: s.client.pid, port: b?.port, txRings: b?.tx ?? [], rxRings: b?.rx ?? [])
        }.sorted { ($0.pid, $0.port ?? "") < ($1.pid, $1.port ?? "") }
        return EngineStatus(ports: ports.sorted { ($0.name, $0.namespace ?? "") < ($1.name, $1.namespace ?? "") }, clients: clients, pool: stats(),
                            switches: switches)
    }
}
