// The control socket: a Unix stream socket (default /run/netmapd/control)
// that netmapctl asks for the daemon's status. The protocol is in
// Sources/Control/NetmapControl/ControlProtocol.swift: one request per line, one
// JSON line back.
//
// The daemon must never be held up or brought down by a client of this
// socket: one thread accepts, each connection gets its own short-lived
// thread (at most ControlProtocol.maxConnections at once, more are told
// "busy"), a request line is bounded (maxRequestBytes) and must arrive
// within idleTimeoutSeconds, replies are sent with a send timeout and
// MSG_NOSIGNAL. Nothing here touches the data path: a status request takes
// the engine's snapshot, which reads counters without stopping traffic.
//
// At start a socket file left by a daemon that was killed (nobody answers a
// connect) is replaced; anything else at the path is an error. At stop the
// socket file is removed, if it is still ours.

#if canImport(Glibc)
import Glibc
#endif
import DeviceInterface
import NetmapControl
import NetmapCore

struct ControlServerError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, errno e: Int32? = nil) {
        if let e { description = "\(what): \(String(cString: strerror(e)))" } else { description = what }
    }
}

final class ControlServer: Sendable {
    typealias Handler = @Sendable (String) -> String

    let path: String
    private let listenFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let inode: (dev: UInt64, ino: UInt64)
    private let handler: Handler
    private let log: @Sendable (String) -> Void
    private struct State {
        var stopped = false
        var acceptThread: JoinableThread?
        var connections: Set<Int32> = []
    }
    private let state = Lock.Protected(State())

    /// Creates the socket (replacing a stale one), gives it `mode` and
    /// group `gid` (nil: leave root's), and starts accepting.
    static func start(path: String, mode: UInt32, gid: gid_t?, handler: @escaping Handler,
                      log: @escaping @Sendable (String) -> Void) throws -> ControlServer {
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw ControlServerError("control socket path \(path) is too long for a Unix socket")
        }
        try removeStale(path, log: log)

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlServerError("control socket", errno: errno) }
        var addr = unixAddress(path)
        // The file must never exist with wider permissions than asked, even
        // for an instant: bind under a umask that leaves only the owner.
        let oldMask = umask(0o177)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let bindErrno = errno
        umask(oldMask)
        guard bound == 0 else {
            close(fd)
            throw ControlServerError("bind control socket \(path)", errno: bindErrno)
        }
        func fail(_ what: String) -> ControlServerError {
            let e = errno
            close(fd)
            unlink(path)
            return ControlServerError("\(what) \(path)", errno: e)
        }
        if let gid, chown(path, 0, gid) != 0 { throw fail("chown control socket") }
        if chmod(path, mode_t(mode & 0o777)) != 0 { throw fail("chmod control socket") }
        var st = stat()
        guard lstat(path, &st) == 0 else { throw fail("stat control socket") }
        guard listen(fd, 16) == 0 else { throw fail("listen on control socket") }

        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw fail("wake-up pipe for control socket") }
        for p in pipeFDs {
            _ = fcntl(p, F_SETFD, FD_CLOEXEC)
            _ = fcntl(p, F_SETFL, O_NONBLOCK)
        }

        let server = ControlServer(path: path, listenFD: fd, wakeRead: pipeFDs[0], wakeWrite: pipeFDs[1],
                                   inode: (UInt64(st.st_dev), UInt64(st.st_ino)), handler: handler, log: log)
        let thread: JoinableThread
        do {
            thread = try JoinableThread.spawn { server.acceptLoop() }
        } catch {
            throw ControlServerError("pthread_create", errno: error.errno)
        }
        server.state.withLock { $0.acceptThread = thread }
        return server
    }

    private init(path: String, listenFD: Int32, wakeRead: Int32, wakeWrite: Int32,
                 inode: (dev: UInt64, ino: UInt64), handler: @escaping Handler,
                 log: @escaping @Sendable (String) -> Void) {
        self.path = path
        self.listenFD = listenFD
        self.wakeRead = wakeRead
        self.wakeWrite = wakeWrite
        self.inode = inode
        self.handler = handler
        self.log = log
    }

    /// Stops accepting, ends the connections being served, closes the
    /// socket and removes its file. Safe to call more than once.
    func stop() {
        let thread: JoinableThread? = state.withLock { s in
            if s.stopped { return nil }
            s.stopped = true
            // Wakes every connection thread out of poll/recv/send.
            for c in s.connections { shutdown(c, Int32(SHUT_RDWR)) }
            return s.acceptThread
        }
        guard let thread else { return }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
        thread.join()
        // Connection threads hold no lock the daemon needs; give them a
        // moment to leave so nothing answers after the daemon said stopped.
        for _ in 0 ..< 200 where !state.withLock({ $0.connections.isEmpty }) { usleep(5000) }
        close(listenFD)
        close(wakeRead)
        close(wakeWrite)
        var st = stat()
        if lstat(path, &st) == 0, UInt64(st.st_dev) == inode.dev, UInt64(st.st_ino) == inode.ino {
            unlink(path)
        }
    }

    // MARK: - accepting

    private func acceptLoop() {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let r = poll(&fds, 2, -1)
            if r < 0 {
                if errno == EINTR { continue }
                log("control: poll: \(String(cString: strerror(errno))); control socket no longer served")
                return
            }
            if fds[1].revents != 0 || state.withLock({ $0.stopped }) { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                switch errno {
                case EINTR, EAGAIN, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: back off rather than spin.
                    usleep(100_000)
                    continue
                default:
                    log("control: accept: \(String(cString: strerror(errno)))")
                    usleep(100_000)
                    continue
                }
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            admit(c)
        }
    }

    private func admit(_ c: Int32) {
        setTimeouts(c)
        let admitted = state.withLock { s -> Bool in
            guard !s.stopped, s.connections.count < ControlProtocol.maxConnections else { return false }
            s.connections.insert(c)
            return true
        }
        guard admitted else {
            sendLine(c, (try? JSONLine.encode(ControlErrorReply("busy: too many control connections"))) ?? "{}")
            close(c)
            return
        }
        do {
            try JoinableThread.spawn { [self] in serve(c) }.detach()
        } catch {
            state.withLock { s in
                s.connections.remove(c)
                close(c)
            }
        }
    }

    // MARK: - one connection

    private func serve(_ c: Int32) {
        defer {
            state.withLock { s in
                s.connections.remove(c)
                close(c)   // under the lock: stop() never shuts down a reused number
            }
        }
        let limit = ControlProtocol.maxRequestBytes
        var buffer = [UInt8](repeating: 0, count: limit)
        var have = 0
        var lineStart = monotonicMilliseconds()
        while true {
            // A complete line already buffered?
            if let nl = buffer[0 ..< have].firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[0 ..< nl], as: UTF8.self)
                let rest = have - (nl + 1)   // what follows the line moves to the front
                if rest > 0 { buffer.withUnsafeMutableBytes { p in _ = memmove(p.baseAddress!, p.baseAddress! + nl + 1, rest) } }
                have = rest
                let reply = handler(line)
                guard sendLine(c, reply) else { return }
                lineStart = monotonicMilliseconds()
                continue
            }
            if have == limit {
                sendLine(c, (try? JSONLine.encode(ControlErrorReply(
                    "request too long (a request is one line of at most \(limit) bytes)"))) ?? "{}")
                return
            }
            let left = ControlProtocol.idleTimeoutSeconds * 1000 - (monotonicMilliseconds() - lineStart)
            guard left > 0 else { return }
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { return }   // timeout or error
            let n = buffer.withUnsafeMutableBytes { recv(c, $0.baseAddress! + have, limit - have, Int32(MSG_DONTWAIT)) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else {
                // EOF: a last request without a newline still gets its answer.
                if n == 0 && have > 0 {
                    sendLine(c, handler(String(decoding: buffer[0 ..< have], as: UTF8.self)))
                }
                return
            }
            have += n
        }
    }

    /// Writes `line` and a newline; false if the peer is gone or too slow.
    @discardableResult
    private func sendLine(_ c: Int32, _ line: String) -> Bool {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(c, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }   // error, or SO_SNDTIMEO expired
            off += n
        }
        return true
    }

    private func setTimeouts(_ c: Int32) {
        var tv = timeval(tv_sec: ControlProtocol.idleTimeoutSeconds, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    // MARK: - helpers

    /// Removes a socket file nobody answers on (its daemon was killed).
    private static func removeStale(_ path: String, log: @Sendable (String) -> Void) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw ControlServerError("stat \(path)", errno: errno)
        }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlServerError("\(path) exists and is not a socket; not replacing it")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlServerError("socket", errno: errno) }
        defer { close(fd) }
        var addr = unixAddress(path)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r == 0 {
            throw ControlServerError("another daemon answers on \(path); not replacing its control socket")
        }
        log("control: removing stale control socket \(path) (left by a daemon that did not stop cleanly)")
        guard unlink(path) == 0 || errno == ENOENT else { throw ControlServerError("remove \(path)", errno: errno) }
    }

    private static func unixAddress(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() where i < p.count - 1 { p[i] = b }
        }
        return addr
    }
}

func monotonicMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
