// netmapd as a system service: the options for the configuration file and
// the control socket, the run directory's lock, and starting the control
// server. Netmapd.swift calls in at three places: after creating the run
// directory (lockRunDirectory), just before READY=1 (startControlServer) and
// at the start of shutdown (ControlServer.stop).

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import NetmapControl
import NetmapCore

struct ServiceOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Configuration file of 'key = value' lines (long option names); command-line flags override it. Default: \(ConfigFile.defaultPath) when it exists.",
        valueName: "path"))
    var config: String?

    @Option(help: ArgumentHelp(
        "Control socket for netmapctl (default: <run-dir>/control; 'none': no control socket).",
        valueName: "path"))
    var controlSocket: String?

    @Option(help: "Permission bits of the control socket, in octal (who may read the daemon's status).")
    var controlMode: String = "0600"

    @Option(help: "Group owning the control socket.")
    var controlGroup: String?

    func validate() throws {
        guard let m = UInt32(controlMode, radix: 8), m <= 0o777 else {
            throw ValidationError("--control-mode must be octal permission bits, e.g. 0660")
        }
        if let s = controlSocket, s != "none" {
            guard s.hasPrefix("/") else { throw ValidationError("--control-socket must be an absolute path or 'none'") }
            guard s.utf8.count < 108 else { throw ValidationError("--control-socket path is too long for a Unix socket (107 bytes at most)") }
        }
        if let g = controlGroup, getgrnam(g) == nil {
            throw ValidationError("--control-group: group '\(g)' does not exist")
        }
    }
}

/// The run directory's lock file: <run-dir>/netmapd.pid, holding the pid
/// under an flock. A second daemon on the same run directory would replace
/// the first one's region file and control socket; it stops here instead.
/// A lock file left by a killed daemon is not locked and is simply reused.
/// The file is removed when the process exits.
nonisolated(unsafe) private var lockFilePath: [CChar]? = nil

extension Netmapd {
    var controlSocketPath: String? {
        switch service.controlSocket {
        case "none": nil
        case let p?: p
        case nil: "\(runDir)/\(ControlProtocol.socketName)"
        }
    }

    func lockRunDirectory() throws {
        let path = "\(runDir)/netmapd.pid"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DaemonError(message: "cannot create \(path) (\(String(cString: strerror(errno)))): is \(runDir) writable?")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buf = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buf, 31)
            let pid = n > 0 ? String(decoding: buf[0 ..< n], as: UTF8.self).trimmingWhitespace : "?"
            close(fd)
            throw DaemonError(message: "another netmapd (pid \(pid)) is running with run directory \(runDir); stop it first")
        }
        // Held until the process ends: the descriptor is never closed.
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        lockFilePath = path.utf8CString.map { $0 }
        atexit {
            if let p = lockFilePath { p.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
        }
    }

    /// Starts the control socket serving `engine`'s status. A failure is
    /// logged, not fatal: the device keeps working without netmapctl.
    func startControlServer(engine: NetmapEngine, frontEnd: String, logger: Logger) -> ControlServer? {
        guard let path = controlSocketPath else {
            logger.info("no control socket (--control-socket none)")
            return nil
        }
        var gid: gid_t? = nil
        if let g = service.controlGroup, let gr = getgrnam(g) { gid = gr.pointee.gr_gid }
        let started = Int64(time(nil))
        let startedMono = monotonicMilliseconds()
        let info = DaemonInfo(pid: getpid(), version: ControlProtocol.softwareVersion, frontend: frontEnd,
                              device: device, deviceMode: mode, deviceGroup: group, backend: backend.rawValue,
                              runDir: runDir, regionPath: engine.regionPath, regionBytes: engine.regionSize,
                              startedAt: started, uptimeSeconds: 0)
        let handler: ControlServer.Handler = { line in
            let request = line.trimmingWhitespace
            do {
                switch request {
                case "status":
                    var d = info
                    d.uptimeSeconds = Int64((monotonicMilliseconds() - startedMono) / 1000)
                    return try JSONLine.encode(ControlStatus(daemon: d, engine: engine.status()))
                case "version":
                    return try JSONLine.encode(ControlVersion(pid: info.pid))
                default:
                    let shown = request.count > 40 ? String(request.prefix(40)) + "…" : request
                    return try JSONLine.encode(ControlErrorReply("unknown request '\(shown)' (known: status, version)"))
                }
            } catch {
                return "{\"error\":\"internal: cannot encode the reply\"}"
            }
        }
        do {
            let server = try ControlServer.start(path: path, mode: UInt32(service.controlMode, radix: 8)!, gid: gid,
                                                 handler: handler, log: { logger.notice("\($0)") })
            logger.info("control socket \(path) (mode \(service.controlMode)\(service.controlGroup.map { ", group \($0)" } ?? ""))")
            return server
        } catch {
            logger.error("control socket not available: \(error); netmapctl cannot reach this daemon")
            return nil
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        let ws: Set<Character> = [" ", "\t", "\r", "\n", "\r\n"]
        var s = Substring(self)
        while let f = s.first, ws.contains(f) { s.removeFirst() }
        while let l = s.last, ws.contains(l) { s.removeLast() }
        return String(s)
    }
}
