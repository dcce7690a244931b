// The control socket's protocol, shared by netmapd (server) and netmapctl
// (client).
//
// A Unix stream socket (default /run/netmapd/control, mode 0600 root:root).
// The client writes one request per line; the daemon answers each with one
// line of JSON:
//
//     status   -> ControlStatus (the daemon's facts and NetmapEngine.status())
//     version  -> ControlVersion
//     anything else, or a line longer than maxRequestBytes -> ControlErrorReply
//
// A request line is at most maxRequestBytes bytes; a connection that stays
// idle for idleTimeoutSeconds, or sends an over-long line, is closed.

import NetmapCore

public enum ControlProtocol {
    /// Bumped when a reply changes incompatibly.
    public static let version = 1
    /// netmapd's release, as reported by "version".
    public static let softwareVersion = "0.1.0"
    public static let defaultRunDir = "/run/netmapd"
    public static let socketName = "control"
    public static var defaultSocketPath: String { "\(defaultRunDir)/\(socketName)" }
    /// Longest accepted request line, newline included.
    public static let maxRequestBytes = 1024
    /// A connection with no complete request for this long is closed.
    public static let idleTimeoutSeconds = 5
    /// Connections served at once; more are answered "busy" and closed.
    public static let maxConnections = 8
}

/// What the daemon is and how it was started.
public struct DaemonInfo: Codable, Sendable, Equatable {
    public var pid: Int32
    public var version: String
    /// "cuse" or "fuse".
    public var frontend: String
    public var device: String
    /// Octal, as configured (e.g. "0660").
    public var deviceMode: String
    public var deviceGroup: String?
    /// --backend as configured (auto, xdp, packet).
    public var backend: String
    public var runDir: String
    public var regionPath: String
    public var regionBytes: UInt64
    /// Unix time (seconds) the daemon became ready, and seconds since.
    public var startedAt: Int64
    public var uptimeSeconds: Int64

    public init(pid: Int32, version: String, frontend: String, device: String, deviceMode: String,
                deviceGroup: String?, backend: String, runDir: String, regionPath: String,
                regionBytes: UInt64, startedAt: Int64, uptimeSeconds: Int64) {
        self.pid = pid
        self.version = version
        self.frontend = frontend
        self.device = device
        self.deviceMode = deviceMode
        self.deviceGroup = deviceGroup
        self.backend = backend
        self.runDir = runDir
        self.regionPath = regionPath
        self.regionBytes = regionBytes
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
    }
}

/// The reply to "status".
public struct ControlStatus: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var daemon: DaemonInfo
    public var engine: EngineStatus

    public init(daemon: DaemonInfo, engine: EngineStatus) {
        protocolVersion = ControlProtocol.version
        self.daemon = daemon
        self.engine = engine
    }
}

/// The reply to "version".
public struct ControlVersion: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var version: String
    public var pid: Int32

    public init(pid: Int32) {
        protocolVersion = ControlProtocol.version
        version = ControlProtocol.softwareVersion
        self.pid = pid
    }
}

/// The reply to a request the daemon cannot answer.
public struct ControlErrorReply: Codable, Sendable, Equatable {
    public var error: String
    public init(_ error: String) { self.error = error }
}
