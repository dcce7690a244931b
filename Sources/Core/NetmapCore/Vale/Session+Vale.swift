// The VALE control requests of NIOCCTRL (§3.4): VALE_LIST, and the checks of
// VALE_ATTACH / DETACH / NEWIF / DELIF / POLLING in netmap's order. NICs in
// a switch and persistent (TAP) ports are not provided: a request that
// passes every check netmap makes and would then attach a NIC or create an
// interface gets EOPNOTSUPP (README, "differences").

extension Session {
    /// VALE_LIST (§3.4). A name: its bridge slot and port number (255 when
    /// the bridge has no such port). No name: the first port at or after
    /// (bridge, port), with its name. ENOENT when there is none.
    public func valeList(name: String, bridge: Int, port: Int) throws(NetmapError) -> (bridge: Int, port: Int, name: String?) {
        try registry.lock.withLock { () throws(NetmapError) -> (bridge: Int, port: Int, name: String?) in
            if !name.isEmpty {
                let (b, p) = try registry.vale.list(name: name)
                return (b, p, nil)
            }
            let (b, p, n) = try registry.vale.list(from: bridge, port: port)
            return (b, p, n)
        }
    }

    private func valeParts(_ name: String) throws(NetmapError) -> String {
        guard case .vale? = try? PortName.parse(name, mode: RegisterMode.allNIC) else { throw .EINVAL }
        return name
    }

    /// VALE_ATTACH of `valeX:IF`: returns the port number, or the errno
    /// netmap gives; a NIC that could be attached gets EOPNOTSUPP.
    public func valeAttach(name: String, mode: UInt32, ringid: UInt16, memId: UInt16,
                           caller: Int32) throws(NetmapError) -> UInt32 {
        _ = try valeParts(name)
        return try registry.lock.withLock { () throws(NetmapError) -> UInt32 in
            guard registry.memIds.exists(memId) else { throw .EINVAL }
            if registry.vale.port(named: name) != nil { throw .EBUSY }
            guard let (bname, ifname) = ValeName.split(name) else { throw .ENOMEM }
            let vs = registry.vale
            if vs.bridge(named: bname) == nil && !vs.bridges.contains(where: { $0 == nil }) { throw .ENOMEM }
            if let br = vs.bridge(named: bname), br.active + 2 >= ValeBridge.maxPorts { throw .ENOMEM }
            let ns = try registry.provider.namespace(ofCaller: caller)
            guard registry.provider.interfaceExists(named: ifname, in: ns) else { throw .EINVAL }
            guard ringid == 0, mode == RegisterMode.allNIC || mode == RegisterMode.nicSW else { throw .EINVAL }
            engine.log.info("pid \(client.pid): VALE_ATTACH \(name): attaching a network interface to a VALE switch is not supported")
            throw .EOPNOTSUPP
        }
    }

    /// VALE_DETACH: nothing netmapd makes can be attached, so an existing
    /// (ephemeral) port is "not attached" (EINVAL) and anything else ENXIO.
    public func valeDetach(name: String) throws(NetmapError) -> UInt32 {
        _ = try valeParts(name)
        try registry.lock.withLock { () throws(NetmapError) in
            guard registry.vale.port(named: name) != nil else { throw .ENXIO }
        }
        throw .EINVAL
    }

    /// VALE_NEWIF: the checks, then EOPNOTSUPP (no persistent ports).
    public func valeNewIf(name: String, caller: Int32) throws(NetmapError) {
        guard !ValeName.hasValePrefix(name), name.utf8.count < ValeName.maxNameLength else { throw .EINVAL }
        let ns = try registry.provider.namespace(ofCaller: caller)
        if registry.provider.interfaceExists(named: name, in: ns) { throw .EEXIST }
        engine.log.info("pid \(client.pid): VALE_NEWIF \(name): persistent VALE ports are not supported")
        throw .EOPNOTSUPP
    }

    /// VALE_DELIF: no interface is a persistent VALE port here.
    public func valeDelIf(name: String, caller: Int32) throws(NetmapError) {
        let ns = try registry.provider.namespace(ofCaller: caller)
        guard registry.provider.interfaceExists(named: name, in: ns) else { throw .ENXIO }
        throw .EINVAL
    }

    /// VALE_POLLING_ENABLE/DISABLE: only for attached NICs, which netmapd has none of.
    public func valePolling(name: String) throws(NetmapError) {
        _ = try valeParts(name)
        try registry.lock.withLock { () throws(NetmapError) in
            guard registry.vale.port(named: name) != nil else { throw .ENXIO }
            throw .EOPNOTSUPP
        }
    }
}
