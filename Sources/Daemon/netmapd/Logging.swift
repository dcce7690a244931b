// Daemon logging: one line per event on stderr, "netmapd[PID]: LEVEL: text".
// Under systemd (JOURNAL_STREAM set) each line starts with the syslog
// priority "<N>" so the journal files it at the right level.

#if canImport(Glibc)
import Glibc
#endif
import Logging
import NetmapCore

struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    /// Under systemd, JOURNAL_STREAM names the journal's stream as
    /// "DEV:INODE"; it counts only if stderr still is that stream (not a
    /// file a child inherited the variable into).
    static let journal: Bool = {
        guard let v = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: v).split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }()
    static let pid = getpid()

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let (prio, word): (Int, String) = switch event.level {
        case .trace, .debug: (7, "debug")
        case .info: (6, "info")
        case .notice: (5, "notice")
        case .warning: (4, "warning")
        case .error: (3, "error")
        case .critical: (2, "critical")
        }
        let prefix = Self.journal ? "<\(prio)>" : "netmapd[\(Self.pid)]: "
        let line = "\(prefix)\(word): \(event.message)\n"
        // One write(2) per line, so lines from different threads never interleave.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

extension Logger {
    /// Core's log sink, backed by this logger.
    var coreLog: CoreLog {
        let logger = self
        return CoreLog { level, s in
            switch level {
            case .debug: logger.debug("\(s)")
            case .info: logger.info("\(s)")
            case .notice: logger.notice("\(s)")
            case .warning: logger.warning("\(s)")
            case .error: logger.error("\(s)")
            }
        }
    }
}
