// The configuration file: /etc/netmapd.conf (or --config PATH).
//
//     # comment
//     frontend = auto
//     mode = 0660
//     group = netmap
//     verbose = yes
//
// Each key is one of netmapd's long options without the leading "--";
// switches (--verbose, ...) take yes/no (true/false, on/off, 1/0). A value
// may be put in double quotes (to keep a '#' or surrounding blanks). '#'
// starts a comment at the beginning of a line or after a blank. A key may
// appear once.
//
// The file becomes command-line arguments placed before the real ones, so
// the real ones win (for an option given twice the last one counts), and
// every value goes through exactly the checks a flag does. Each line is
// checked on its own first, so that an error names the file and the line.
// A file that cannot be read or has a bad line stops the daemon with exit
// status 78 (EX_CONFIG), which the systemd unit does not restart on.
//
// Without --config, /etc/netmapd.conf is read if it exists; --config
// /dev/null reads nothing.

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

enum ConfigFile {
    static let defaultPath = "/etc/netmapd.conf"
    static let exitStatus: Int32 = 78   // EX_CONFIG
    /// Keys the file may not set.
    static let reserved: Set<String> = ["config", "help", "version", "experimental-dump-help",
                                        "generate-completion-script"]

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The file to read for these command-line arguments: --config's value,
    /// else the default path if it exists, else nil.
    static func path(for argv: [String]) -> String? {
        var i = 0
        var chosen: String? = nil
        while i < argv.count {
            let a = argv[i]
            if a == "--" { break }
            if a == "--config", i + 1 < argv.count {
                chosen = argv[i + 1]
                i += 2
                continue
            }
            if a.hasPrefix("--config=") { chosen = String(a.dropFirst("--config=".count)) }
            i += 1
        }
        if let chosen { return chosen }
        return access(defaultPath, F_OK) == 0 ? defaultPath : nil
    }

    /// The arguments the file at `path` stands for.
    static func load(_ path: String) throws -> [String] {
        let text = try read(path)
        return try arguments(from: text, file: path) { key, value in try Netmapd.argumentsFor(key: key, value: value) }
    }

    /// Turns the text of a configuration file into arguments; `convert`
    /// checks one key and value and gives its arguments, or throws a
    /// message (which gets the file and line in front).
    static func arguments(from text: String, file: String,
                          convert: (String, String) throws -> [String]) throws -> [String] {
        var args: [String] = []
        var seen: [String: Int] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = n + 1
            func fail(_ why: String) -> Failure { Failure(description: "\(file):\(lineNo): \(why)") }
            var line = Substring(raw)
            if line.last == "\r" { line.removeLast() }
            let body = stripComment(line).trimmingBlanks
            if body.isEmpty { continue }
            guard let eq = body.firstIndex(of: "=") else {
                throw fail("expected 'key = value', got '\(clip(body))'")
            }
            let key = body[..<eq].trimmingBlanks
            var value = body[body.index(after: eq)...].trimmingBlanks
            guard !key.isEmpty else { throw fail("missing key before '='") }
            guard key.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }),
                  key.first != "-" else {
                throw fail("bad key '\(clip(key))': keys are netmapd's long options without the leading '--' (lower case, e.g. pool-buffers)")
            }
            guard !reserved.contains(key) else { throw fail("'\(key)' cannot be set in a configuration file") }
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { throw fail("unterminated quote in the value of '\(key)'") }
                value = String(value.dropFirst().dropLast())
                guard !value.contains("\"") else { throw fail("a quoted value cannot contain '\"'") }
            } else if value.isEmpty {
                throw fail("no value for '\(key)'")
            }
            if let first = seen[key] { throw fail("'\(key)' is set twice (first on line \(first))") }
            seen[key] = lineNo
            do {
                args += try convert(key, value)
            } catch let e as Failure {
                throw fail(e.description)
            }
        }
        return args
    }

    /// The line without its comment: '#' at the start or after a blank,
    /// outside double quotes.
    private static func stripComment(_ line: Substring) -> Substring {
        var inQuotes = false
        var previous: Character = " "
        for i in line.indices {
            let c = line[i]
            if c == "\"" { inQuotes.toggle() }
            if c == "#" && !inQuotes && (previous == " " || previous == "\t") { return line[..<i] }
            previous = c
        }
        return line
    }

    private static func clip(_ s: String) -> String { s.count > 60 ? String(s.prefix(60)) + "…" : s }

    private static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(description: "cannot read configuration file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw Failure(description: "cannot read configuration file \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            data += chunk[0 ..< n]
            guard data.count <= 1 << 20 else { throw Failure(description: "\(path): larger than 1 MiB; not a configuration file?") }
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw Failure(description: "\(path): not UTF-8 text")
        }
        return text
    }
}

extension Substring {
    fileprivate var trimmingBlanks: String {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

extension String {
    fileprivate var trimmingBlanks: String { Substring(self).trimmingBlanks }
}

extension Netmapd {
    /// Entry point: the configuration file's arguments, then the command
    /// line's, through ArgumentParser as usual.
    static func main() {
        let argv = Array(CommandLine.arguments.dropFirst())
        var fromFile: [String] = []
        let wantsHelp = argv.contains { $0 == "-h" || $0 == "--help" || $0 == "--experimental-dump-help" }
        if !wantsHelp, let path = path(forConfig: argv) {
            do {
                fromFile = try ConfigFile.load(path)
            } catch {
                let line = "netmapd: \(error)\n"
                _ = line.withCString { write(2, $0, strlen($0)) }
                Glibc.exit(ConfigFile.exitStatus)
            }
        }
        main(fromFile + argv)
    }

    private static func path(forConfig argv: [String]) -> String? { ConfigFile.path(for: argv) }

    /// The arguments for one configuration key, checked by ArgumentParser
    /// with everything else at its default.
    static func argumentsFor(key: String, value: String) throws -> [String] {
        let isSwitch = (try? parse(["--\(key)"])) != nil
        if isSwitch {
            switch value.lowercased() {
            case "yes", "true", "on", "1": return ["--\(key)"]
            case "no", "false", "off", "0": return []
            default: throw ConfigFile.Failure(description: "'\(key)' is a switch: give yes or no, not '\(value)'")
            }
        }
        do {
            _ = try parse(["--\(key)=\(value)"])
        } catch {
            let message = Self.message(for: error)
            if message.hasPrefix("Unknown option") {
                throw ConfigFile.Failure(description: "unknown key '\(key)' (keys are netmapd's long options without the leading '--'; see netmapd --help)")
            }
            throw ConfigFile.Failure(description: "bad value for '\(key)': \(message)")
        }
        return ["--\(key)=\(value)"]
    }
}
