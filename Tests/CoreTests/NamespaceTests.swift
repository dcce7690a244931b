// Interface names resolve in the caller's network namespace (issue #20): the
// same name in two namespaces is two ports, a name from another namespace
// does not exist for the caller, and pipes stay named by name alone.

import DeviceInterface
import NetmapCore
import Testing

/// Callers 100.. are in namespace 1, 200.. in namespace 2, others unknown.
private final class FakeNamespaces: CallerNamespaces, @unchecked Sendable {
    let one = NetNamespace(id: 1, fd: -1, isDaemons: false)
    let two = NetNamespace(id: 2, fd: -1, isDaemons: false)
    func namespace(ofThread tid: Int32) throws(NetmapError) -> NetNamespace {
        switch tid {
        case 100 ..< 200: one
        case 200 ..< 300: two
        default: throw .ENXIO
        }
    }
}

/// eth0 in both namespaces, a0 only in namespace 1, b0 only in 2.
private final class NamespacedNICs: InterfaceBackend, @unchecked Sendable {
    let names: [UInt64: Set<String>] = [1: ["eth0", "a0"], 2: ["eth0", "b0"]]
    let made = Lock.Protected<[(String, UInt64)]>([])
    func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        guard exists(name, in: ns) else { throw .ENXIO }
        made.withLock { $0.append((name, ns.id)) }
        return FakeNICPort(FakeNIC(name: name))
    }
    func exists(_ name: String, in ns: NetNamespace) -> Bool { names[ns.id]?.contains(name) ?? false }
}

@Suite struct NamespaceTests {
    private let nics = NamespacedNICs()
    private let engine: NetmapEngine

    init() throws {
        let region = try MemoryRegion(geometry: smallGeometry, backing: .memfd(name: "netmapd-ns-test"))
        engine = NetmapEngine(region: region,
                              provider: StandardPortProvider(interfaces: nics, namespaces: FakeNamespaces()))
    }

    private func register(_ name: String, caller: Int32, flags: UInt64 = 0) throws(NetmapError) -> Session {
        let s = engine.openSession(client: ClientIdentity(pid: caller))
        var r = RegisterRequest(name: name, flags: flags)
        r.caller = caller
        _ = try s.register(r)
        return s
    }

    @Test func sameNameInTwoNamespacesIsTwoPorts() throws {
        let a = try register("eth0", caller: 100, flags: RegisterFlag.exclusive)
        let b = try register("eth0", caller: 200, flags: RegisterFlag.exclusive)   // not EBUSY: another port
        #expect(engine.registry.counts.ports == 2)
        #expect(nics.made.withLock { $0.map(\.1).sorted() } == [1, 2])
        a.release()
        b.release()
        #expect(engine.registry.counts.ports == 0)
    }

    @Test func nameOfAnotherNamespaceIsENXIO() throws {
        #expect(throws: NetmapError.ENXIO) { _ = try register("b0", caller: 100) }
        #expect(throws: NetmapError.ENXIO) { _ = try register("a0", caller: 200) }
        let s = engine.openSession(client: ClientIdentity(pid: 100))
        #expect(throws: NetmapError.ENXIO) { _ = try s.portInfo(name: "b0", memId: 0, hints: PortHints(), caller: 100) }
        #expect(throws: NetmapError.ENXIO) { _ = try s.portHdrGet(name: "b0", caller: 100) }
        #expect(try s.portInfo(name: "a0", memId: 0, hints: PortHints(), caller: 100).geometry?.txRings == 1)
        #expect(engine.registry.counts.ports == 0)
    }

    @Test func callerWhoseNamespaceIsUnknownFindsNoInterface() throws {
        #expect(throws: NetmapError.ENXIO) { _ = try register("eth0", caller: 7) }
    }

    @Test func theCallingThreadDecidesNotTheOpener() throws {
        // A file opened by a thread of namespace 1, registered by one of 2.
        let s = engine.openSession(client: ClientIdentity(pid: 100))
        var r = RegisterRequest(name: "b0")
        r.caller = 200
        _ = try s.register(r)
        #expect(s.portName == "b0")
        s.release()
    }

    @Test func pipesAreNamedWithoutNamespace() throws {
        let m = try register("x{1", caller: 100)
        let sl = try register("x}1", caller: 200)
        #expect(engine.registry.counts.ports == 2)   // one pipe: its two ends
        m.release()
        sl.release()
    }
}
