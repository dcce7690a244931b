// The daemon's PortProvider: pipes and null ports here, Linux interfaces
// through whichever InterfaceBackend the daemon was started with, each
// looked up in the caller's network namespace.


/// Opens Linux interfaces as ports (AF_XDP, AF_PACKET; tests' fakes).
public protocol InterfaceBackend: AnyObject, Sendable {
    func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port
    func exists(_ name: String, in ns: NetNamespace) -> Bool
}

/// Tells which network namespace a calling thread is in.
public protocol CallerNamespaces: AnyObject, Sendable {
    func namespace(ofThread tid: Int32) throws(NetmapError) -> NetNamespace
}

public final class StandardPortProvider: PortProvider, @unchecked Sendable {
    public let interfaces: InterfaceBackend?
    /// nil: every caller is taken to share the daemon's namespace (tests and
    /// the fuzzers, whose callers are not real threads).
    public let namespaces: CallerNamespaces?

    public init(interfaces: InterfaceBackend? = nil, namespaces: CallerNamespaces? = nil) {
        self.interfaces = interfaces
        self.namespaces = namespaces
    }

    public func namespace(ofCaller tid: Int32) throws(NetmapError) -> NetNamespace {
        guard let namespaces else { return .daemons }
        return try namespaces.namespace(ofThread: tid)
    }

    public func interfacePort(named name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        guard let interfaces else { throw .ENXIO }
        return try interfaces.port(for: name, in: ns, region: region)
    }

    public func interfaceExists(named name: String, in ns: NetNamespace) -> Bool {
        interfaces?.exists(name, in: ns) ?? false
    }

    public func makePipePair(master: String, slave: String, geometry: PortGeometry,
                             region: MemoryRegion) throws(NetmapError) -> (master: PortAdapter, slave: PortAdapter) {
        try PipePort.makePair(master: master, slave: slave, geometry: geometry, region: region)
    }

    public func makeNullPort(name: String, geometry: PortGeometry) -> Port {
        NullPort(name: name, geometry: geometry)
    }
}
