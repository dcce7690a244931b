// Network namespaces as the interface backends use them. netmap looks an
// interface name up in the namespace of the process that asks; so does
// netmapd: a front end reports the calling thread, ProcNamespaces opens
// /proc/TID/ns/net for it, and everything made for an interface (sockets,
// netlink handles, XDP and tc attachments) is made by a thread that enters
// the interface's namespace for the moment (`perform`): a socket belongs to
// the namespace it was created in, whichever thread later uses it.

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore

/// The daemon's resolver: a calling thread's namespace from /proc.
public final class ProcNamespaces: CallerNamespaces, @unchecked Sendable {
    /// The namespace the daemon runs in (its interfaces keep their plain
    /// names as port keys).
    public let daemons: NetNamespace
    private let log: CoreLog

    public init(log: CoreLog = .silent) throws(NetmapError) {
        self.log = log
        let fd = nmd_netns_open(0)
        guard fd >= 0 else { throw NetmapError(-fd) }
        var id: UInt64 = 0
        let rc = nmd_netns_id(fd, &id)
        guard rc == 0 else {
            close(fd)
            throw NetmapError(-rc)
        }
        daemons = NetNamespace(id: id, fd: fd, isDaemons: true)
    }

    /// ENXIO when the thread's namespace cannot be opened (it exited, or
    /// /proc refuses): the name is then looked up nowhere.
    public func namespace(ofThread tid: Int32) throws(NetmapError) -> NetNamespace {
        guard tid > 0 else { throw .ENXIO }
        let fd = nmd_netns_open(tid)
        guard fd >= 0 else {
            log.info("thread \(tid): cannot open its network namespace (errno \(-fd)); its interface names resolve to nothing")
            throw .ENXIO
        }
        return Self.wrap(fd: fd, daemons: daemons)
    }

    /// Every network namespace some process is in or that is mounted under
    /// /run/netns, each once (for removing what a killed daemon left).
    public func all() -> [NetNamespace] {
        var seen: Set<UInt64> = [daemons.id]
        var out = [daemons]
        func consider(_ path: String) {
            let fd = nmd_netns_open_path(path)
            guard fd >= 0 else { return }
            var id: UInt64 = 0
            guard nmd_netns_id(fd, &id) == 0, seen.insert(id).inserted else {
                close(fd)
                return
            }
            out.append(NetNamespace(id: id, fd: fd, isDaemons: false))
        }
        for dir in ["/run/netns", "/var/run/netns"] {
            for n in Self.entries(of: dir) { consider("\(dir)/\(n)") }
        }
        for n in Self.entries(of: "/proc") where n.allSatisfy(\.isNumber) { consider("/proc/\(n)/ns/net") }
        return out
    }

    static func wrap(fd: Int32, daemons: NetNamespace) -> NetNamespace {
        var id: UInt64 = 0
        if nmd_netns_id(fd, &id) == 0, id == daemons.id {
            close(fd)
            return daemons
        }
        return NetNamespace(id: id, fd: fd, isDaemons: false)
    }

    private static func entries(of dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out = [String]()
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }
}

extension NetNamespace {
    /// Runs `body` on the calling thread inside this namespace and returns
    /// the thread to the namespace it was in. Sockets and netlink handles
    /// made in `body` belong to this namespace for their whole life.
    func perform<T>(_ body: () throws(NetmapError) -> T) throws(NetmapError) -> T {
        guard fd >= 0 else { return try body() }
        let back = nmd_netns_open(0)
        guard back >= 0 else { throw NetmapError(-back) }
        defer { close(back) }
        let rc = nmd_netns_enter(fd)
        guard rc == 0 else { throw NetmapError(-rc) }
        defer {
            // Returning to a namespace this thread was just in cannot fail
            // short of the kernel taking CAP_SYS_ADMIN away mid-call; a
            // thread left in a client's namespace would make the next
            // client's sockets there, so that is not survivable.
            let r = nmd_netns_enter(back)
            if r != 0 { fatalError("cannot return to the daemon's network namespace: errno \(-r)") }
        }
        return try body()
    }
}
