// netmapctl: the running netmapd's status, through its control socket
// (default /run/netmapd/control; root only unless netmapd's control-mode /
// control-group say otherwise).
//
//   netmapctl status [--json] [--socket PATH]
//   netmapctl version [--socket PATH]

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FoundationEssentials
import NetmapControl
import NetmapCore

@main
struct NetmapCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netmapctl",
        abstract: "Show what a running netmapd serves: front end, ports, rings and their counters, clients.",
        discussion: """
            Talks to netmapd over its control socket (\(ControlProtocol.defaultSocketPath) unless \
            --socket or NETMAPCTL_SOCKET says otherwise). The socket is root-only by default; \
            netmapd's control-mode and control-group settings open it to a group.
            """,
        version: ControlProtocol.softwareVersion,
        subcommands: [Status.self, Version.self],
        defaultSubcommand: Status.self)
}

struct Connection: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's control socket (default: $NETMAPCTL_SOCKET, else \(ControlProtocol.defaultSocketPath)).",
                               valueName: "path"))
    var socket: String?

    @Option(help: "Seconds to wait for the daemon's answer.")
    var timeout: Int = 5

    var path: String {
        if let socket { return socket }
        if let e = getenv("NETMAPCTL_SOCKET"), e.pointee != 0 { return String(cString: e) }
        return ControlProtocol.defaultSocketPath
    }

    func validate() throws {
        guard timeout >= 1, timeout <= 600 else { throw ValidationError("--timeout must be 1...600 seconds") }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Front end, device, ports with their rings and packet/byte/drop counters, clients and the pool.")

    @OptionGroup var connection: Connection

    @Flag(help: "Print the daemon's reply as it came: one line of JSON (counters as exact integers).")
    var json = false

    func run() throws {
        let line = try ask(connection, "status")
        if json {
            print(line)
            return
        }
        let status = try decode(ControlStatus.self, line)
        print(StatusReport(status).text, terminator: "")
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "netmapctl's and the running daemon's versions.")

    @OptionGroup var connection: Connection

    func run() throws {
        print("netmapctl \(ControlProtocol.softwareVersion) (control protocol \(ControlProtocol.version))")
        let v = try decode(ControlVersion.self, try ask(connection, "version"))
        print("netmapd \(v.version) (pid \(v.pid), control protocol \(v.protocolVersion))")
    }
}

// MARK: - talking to the daemon

struct CtlError: Error, CustomStringConvertible {
    let description: String
}

func fail(_ message: String) -> Never {
    var stderrLine = "netmapctl: \(message)\n"
    stderrLine.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}

/// Sends one request line and returns the reply line (without newline).
func ask(_ c: Connection, _ request: String) throws -> String {
    let path = c.path
    guard path.utf8.count < 108 else { fail("socket path \(path) is too long") }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { fail("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var tv = timeval(tv_sec: c.timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if r != 0 {
        let e = errno
        switch e {
        case ENOENT: fail("no control socket at \(path): is netmapd running? (or started with another --control-socket / --run-dir)")
        case EACCES, EPERM: fail("permission denied on \(path): the control socket is root-only unless netmapd's control-mode/control-group allow you")
        case ECONNREFUSED: fail("nobody answers at \(path): netmapd is not running (the socket was left behind)")
        default: fail("connect \(path): \(String(cString: strerror(e)))")
        }
    }
    var out = Array("\(request)\n".utf8)
    var off = 0
    while off < out.count {
        let n = out.withUnsafeMutableBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { fail("sending to \(path): \(String(cString: strerror(errno)))") }
        off += n
    }
    var reply: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 && errno == EINTR { continue }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { fail("no answer from \(path) within \(c.timeout) s") }
        guard n >= 0 else { fail("reading from \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        if let nl = chunk[0 ..< n].firstIndex(of: UInt8(ascii: "\n")) {
            reply += chunk[0 ..< nl]
            break
        }
        reply += chunk[0 ..< n]
        guard reply.count < 64 << 20 else { fail("reply from \(path) is too large") }
    }
    guard !reply.isEmpty else { fail("\(path) closed the connection without an answer") }
    return String(decoding: reply, as: UTF8.self)
}

func decode<T: Decodable>(_ type: T.Type, _ line: String) throws -> T {
    let data = Data(line.utf8)
    if let e = try? JSONDecoder().decode(ControlErrorReply.self, from: data) { fail("netmapd: \(e.error)") }
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch {
        fail("cannot read the daemon's reply (\(error)); netmapctl and netmapd versions differ?")
    }
}
