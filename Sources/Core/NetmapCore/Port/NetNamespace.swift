// NetNamespace: where an interface name is looked up. netmap resolves a
// name in the network namespace of the process that asks, so the same name
// in two namespaces is two ports, and a name that exists only in another
// namespace does not exist for the caller (docs/architecture.md, "A name
// means the caller's interface"). Core only keys ports by it; the Ports
// layer opens it (/proc/TID/ns/net), enters it to create sockets and
// netlink handles, and learns its id from the nsfs inode.

#if canImport(Glibc)
import Glibc
#endif

public final class NetNamespace: Hashable, @unchecked Sendable, CustomStringConvertible {
    /// The namespace's nsfs inode number: equal ids, same namespace.
    public let id: UInt64
    /// A descriptor of the namespace (keeps it alive and lets a thread
    /// enter it); -1 for the daemon's own namespace in tests.
    public let fd: Int32
    /// The namespace the daemon itself runs in.
    public let isDaemons: Bool

    /// Takes ownership of `fd` (closed when the last reference goes).
    public init(id: UInt64, fd: Int32, isDaemons: Bool) {
        self.id = id
        self.fd = fd
        self.isDaemons = isDaemons
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// The daemon's own namespace where nothing better is known (the
    /// in-process front end, tests): id 0, no descriptor.
    public static let daemons = NetNamespace(id: 0, fd: -1, isDaemons: true)

    public static func == (a: NetNamespace, b: NetNamespace) -> Bool { a.id == b.id }
    public func hash(into h: inout Hasher) { h.combine(id) }
    public var description: String { isDaemons ? "the daemon's namespace" : "netns \(id)" }
}
