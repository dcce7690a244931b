// SelectingBackend: --backend auto (and per-interface overrides). Each
// interface gets the native backend (AF_XDP) where its driver runs XDP
// natively and the region can be a UMEM, else the generic backend
// (AF_PACKET), with a log line saying why. Interfaces named in
// `packetInterfaces` (--packet-interface) always get the generic backend.
// The choice is made when the port is created, i.e. when the first client
// names the interface, and holds for the port's life.

import NetmapCore

public final class SelectingBackend: InterfaceBackend, @unchecked Sendable {
    public let xdp: XDPBackend?
    public let packet: PacketBackend?
    public let packetInterfaces: Set<String>
    /// true: fall back to AF_PACKET where AF_XDP does not fit (auto);
    /// false: AF_XDP or nothing, except for packetInterfaces (--backend xdp).
    public let fallBack: Bool
    private let log: CoreLog
    /// The last reason logged per interface, so a reason is said once.
    private let said = Lock.Protected<[String: String]>([:])

    public init(xdp: XDPBackend?, packet: PacketBackend?, packetInterfaces: Set<String>, fallBack: Bool, log: CoreLog) {
        self.xdp = xdp
        self.packet = packet
        self.packetInterfaces = packetInterfaces
        self.fallBack = fallBack
        self.log = log
    }

    public func port(for name: String, in ns: NetNamespace, region: MemoryRegion) throws(NetmapError) -> Port {
        let label = ns.isDaemons ? name : "\(name) (\(ns))"
        if packetInterfaces.contains(name), let packet {
            say(label, "AF_PACKET (generic backend): listed with --packet-interface")
            return try packet.port(for: name, in: ns, region: region)
        }
        guard let xdp else {
            guard let packet else { throw .ENXIO }
            return try packet.port(for: name, in: ns, region: region)
        }
        if fallBack, let packet {
            if let why = xdp.unsuitability(of: name, in: ns, region: region) {
                say(label, "AF_PACKET (generic backend): AF_XDP does not fit: \(why)")
                return try packet.port(for: name, in: ns, region: region)
            }
            say(label, "AF_XDP (native backend)")
        }
        return try xdp.port(for: name, in: ns, region: region)
    }

    public func exists(_ name: String, in ns: NetNamespace) -> Bool {
        xdp?.exists(name, in: ns) ?? packet?.exists(name, in: ns) ?? false
    }

    private func say(_ label: String, _ what: String) {
        let new = said.withLock { s -> Bool in
            guard s[label] != what else { return false }
            if s.count > 4096 { s.removeAll() }   // many short-lived namespaces
            s[label] = what
            return true
        }
        if new { log.info("\(label): \(what)") }
    }
}
