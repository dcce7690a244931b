// The daemon's PortProvider: pipes and null ports here, Linux interfaces
// through whichever InterfaceBackend the daemon was started with.

import NetmapCore

/// Opens Linux interfaces as ports (AF_XDP, AF_PACKET; tests' fakes).
public protocol InterfaceBackend: AnyObject, Sendable {
    func port(for name: String, region: MemoryRegion) throws(NetmapError) -> Port
    func exists(_ name: String) -> Bool
}

public final class StandardPortProvider: PortProvider, @unchecked Sendable {
    public let interfaces: InterfaceBackend?

    public init(interfaces: InterfaceBackend? = nil) {
        self.interfaces = interfaces
    }

    public func interfacePort(named name: String, region: MemoryRegion) throws(NetmapError) -> Port {
        guard let interfaces else { throw .ENXIO }
        return try interfaces.port(for: name, region: region)
    }

    public func interfaceExists(named name: String) -> Bool { interfaces?.exists(name) ?? false }

    public func makePipePair(master: String, slave: String, geometry: PortGeometry,
                             region: MemoryRegion) throws(NetmapError) -> (master: PortAdapter, slave: PortAdapter) {
        try PipePort.makePair(master: master, slave: slave, geometry: geometry, region: region)
    }

    public func makeNullPort(name: String, geometry: PortGeometry) -> Port {
        NullPort(name: name, geometry: geometry)
    }
}
