// The VALE control requests of NIOCCTRL (§3.4): VALE_LIST, VALE_ATTACH and
// VALE_DETACH of network interfaces (ValeNic, with their host rings as a
// second port), and the checks of NEWIF / DELIF / POLLING in netmap's order.
// Persistent (TAP) ports and polling threads are not provided: a request
// that passes every check netmap makes gets EOPNOTSUPP (README).

import DeviceInterface

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

    /// VALE_ATTACH of `valeX:IF` (§3.4): the NIC's rings join the switch as
    /// port `valeX:IF`, and with NR_REG_NIC_SW its host rings as a second
    /// port `valeX:IF^`. Returns the NIC port's number.
    public func valeAttach(name: String, mode: UInt32, ringid: UInt16, memId: UInt16,
                           caller: Int32) throws(NetmapError) -> UInt32 {
        _ = try valeParts(name)
        let (bname, ifname) = try registry.lock.withLock { () throws(NetmapError) -> (String, String) in
            guard registry.memIds.exists(memId) else { throw .EINVAL }
            if registry.vale.member(named: name) != nil { throw .EBUSY }
            guard let (bname, ifname) = ValeName.split(name) else { throw .ENOMEM }
            try checkRoom(bname)
            let ns = try registry.provider.namespace(ofCaller: caller)
            guard registry.provider.interfaceExists(named: ifname, in: ns) else { throw .EINVAL }
            guard ringid == 0, mode == RegisterMode.allNIC || mode == RegisterMode.nicSW else { throw .EINVAL }
            // Already in netmap mode for some file (or attached elsewhere).
            if let a = registry.existingAdapter(key: Registry.interfaceKey(ifname, in: ns)), a.sessions > 0 || a.ownedBySwitch {
                throw .EBUSY
            }
            if mode == RegisterMode.nicSW && registry.vale.member(named: name + "^") != nil { throw .EBUSY }
            return (bname, ifname)
        }
        // The switch's own registration of the NIC, as a program would make it.
        let s = engine.openSession(client: ClientIdentity(pid: caller))
        var req = RegisterRequest(name: ifname, mode: mode)
        req.caller = caller
        do throws(NetmapError) {
            _ = try s.register(req)
        } catch {
            s.release()
            throw error == .ENXIO ? .EINVAL : error
        }
        let nic: ValeNic
        do throws(NetmapError) {
            nic = try registry.lock.withLock { () throws(NetmapError) -> ValeNic in
                // Someone may have come in between: the NIC must be ours alone.
                guard let b = s.currentBinding, b.adapter.sessions == 1, !b.adapter.ownedBySwitch,
                      registry.vale.member(named: name) == nil, registry.vale.member(named: name + "^") == nil
                else { throw .EBUSY }
                try checkRoom(bname)
                let vs = registry.vale
                let br = vs.bridge(named: bname) ?? vs.newBridge(bname)
                let nic = ValeNic(name: name, bridge: br, session: s, binding: b)
                b.adapter.ownedBySwitch = true
                vs.join(nic)
                if mode == RegisterMode.nicSW {
                    // The host stack is a second port, valeX:IF^ (§11.3).
                    let host = ValeNic(name: name + "^", bridge: br, session: s, binding: b, host: true)
                    vs.join(host)
                    nic.hostPort = host
                }
                vs.nics[name] = nic
                return nic
            }
        } catch {
            s.release()
            throw error
        }
        nic.start()
        nic.hostPort?.start()
        engine.log.info("pid \(client.pid): \(ifname) attached to \(bname) as port \(nic.number) (\(name))"
            + (nic.hostPort.map { ", its host rings as port \($0.number) (\($0.name))" } ?? ""))
        return UInt32(nic.number)
    }

    /// Room for a new port on bridge `bname` (registry lock held): ENOMEM if
    /// the bridge is full or there is no free bridge slot for it.
    private func checkRoom(_ bname: String) throws(NetmapError) {
        let vs = registry.vale
        if vs.bridge(named: bname) == nil && !vs.bridges.contains(where: { $0 == nil }) { throw .ENOMEM }
        if let br = vs.bridge(named: bname), br.active + 2 >= ValeBridge.maxPorts { throw .ENOMEM }
    }

    /// VALE_DETACH: an attached NIC leaves its switch (and netmap mode);
    /// an ephemeral port was never attached (EINVAL); anything else ENXIO.
    public func valeDetach(name: String) throws(NetmapError) -> UInt32 {
        _ = try valeParts(name)
        let nic = try registry.lock.withLock { () throws(NetmapError) -> ValeNic in
            guard let m = registry.vale.member(named: name) else { throw .ENXIO }
            guard let nic = m as? ValeNic, registry.vale.nics[name] === nic else { throw .EINVAL }
            registry.vale.remove(nic)
            if let h = nic.hostPort { registry.vale.remove(h) }
            registry.vale.nics.removeValue(forKey: name)
            nic.adapter.ownedBySwitch = false
            return nic
        }
        nic.stop()
        nic.hostPort?.stop()
        nic.session.release()
        engine.log.info("pid \(client.pid): \(name) detached")
        return UInt32(nic.number)
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

    /// VALE_POLLING_ENABLE/DISABLE: polling threads are not provided (an
    /// attached NIC is driven by its backend's wake-ups): EOPNOTSUPP for any
    /// existing port.
    public func valePolling(name: String) throws(NetmapError) {
        _ = try valeParts(name)
        try registry.lock.withLock { () throws(NetmapError) in
            guard registry.vale.member(named: name) != nil else { throw .ENXIO }
            throw .EOPNOTSUPP
        }
    }
}

extension NetmapEngine {
    /// Detaches every NIC attached to a switch (daemon shutdown, and the
    /// fuzzers' end of input): each leaves netmap mode as with VALE_DETACH.
    public func valeDetachAll() {
        let nics = registry.lock.withLock { () -> [ValeNic] in
            let all = Array(registry.vale.nics.values)
            for nic in all {
                registry.vale.remove(nic)
                if let h = nic.hostPort { registry.vale.remove(h) }
                nic.adapter.ownedBySwitch = false
            }
            registry.vale.nics.removeAll()
            return all
        }
        for nic in nics {
            nic.stop()
            nic.hostPort?.stop()
            nic.session.release()
            log.info("\(nic.name) detached")
        }
    }
}
