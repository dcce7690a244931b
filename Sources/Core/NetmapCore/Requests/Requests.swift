// Requests: ioctl bytes in, netmap operations out (§3). Both control APIs,
// legacy `struct nmreq` (NIOCGINFO, NIOCREGIF) and API 14 NIOCCTRL (header ->
// body -> option chain), are decoded here into the same operations on
// Session, and their results encoded back the way netmap writes them.
//
// Core never reads caller memory: each call looks at what the front end has
// fetched (CallerMemory) and, while something is missing, answers
// `.needMemory` with every range needed so far. Only the call that finds all
// of it executes the request, so a request has effects exactly once.

import CNetmapABI
import DeviceInterface

enum Requests {
    static let legacySize = 60
    static let headerSize = 88
    static let optionHeaderSize = 24
    static let regionInfoSize = 256

    static func handle(command: UInt32, argument: UInt64, memory: CallerMemory, session: Session,
                       caller: Int32) -> IoctlOutcome {
        switch command {
        case NIOCTXSYNC:
            return .complete(errno: session.sync(.tx), writes: [])
        case NIOCRXSYNC:
            return .complete(errno: session.sync(.rx), writes: [])
        case NIOCGINFO, NIOCREGIF:
            return legacy(command: command, argument: argument, memory: memory, session: session, caller: caller)
        case NIOCCTRL:
            var ctrl = Ctrl(argument: argument, memory: memory, session: session, caller: caller)
            return ctrl.run()
        case NIOCCONFIG:
            // Only a VALE bridge's config hook answers this; none exists (§3.2).
            return .complete(errno: NetmapError.EINVAL.errno, writes: [])
        case NETMAPD_IOC_REGION:
            return regionInfo(argument: argument, memory: memory, session: session)
        case NETMAPD_IOC_POOLSTAT:
            return poolStats(argument: argument, memory: memory, session: session)
        default:
            return .complete(errno: NetmapError.EOPNOTSUPP.errno, writes: [])
        }
    }

    /// Fetches the fixed-size argument, or says what to fetch.
    enum Fetched {
        case success([UInt8])
        case failure(IoctlOutcome)
    }

    static func argument(_ r: CallerRange, _ memory: CallerMemory) -> Fetched {
        switch memory.lookup(r) {
        case .bytes(let b): return .success(b)
        case .unreadable: return .failure(.complete(errno: NetmapError.EFAULT.errno, writes: []))
        case .missing: return .failure(.needMemory(read: [r], write: [r]))
        }
    }

    // MARK: netmapd's region ioctl

    static func regionInfo(argument: UInt64, memory: CallerMemory, session: Session) -> IoctlOutcome {
        guard argument != 0 else { return .complete(errno: NetmapError.EINVAL.errno, writes: []) }
        let r = CallerRange(address: argument, length: regionInfoSize)
        if case .failure(let o) = Self.argument(r, memory) { return o }
        guard session.isRegistered else { return .complete(errno: NetmapError.EINVAL.errno, writes: []) }
        session.askedForRegion.store(true, ordering: .relaxed)
        var f = ByteFields(count: regionInfoSize)
        f.set(0, UInt64(session.region.size))
        f.set(8, session.region.memId)
        f.setString(16, size: 240, session.region.path)
        return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: f.bytes)])
    }

    static func poolStats(argument: UInt64, memory: CallerMemory, session: Session) -> IoctlOutcome {
        guard argument != 0 else { return .complete(errno: NetmapError.EINVAL.errno, writes: []) }
        let r = CallerRange(address: argument, length: 32)
        if case .failure(let o) = Self.argument(r, memory) { return o }
        let s = session.engine.stats()
        var f = ByteFields(count: 32)
        for (i, v) in [s.freeBuffers, s.totalBuffers, s.freeRings, s.totalRings, s.freeIfs, s.totalIfs,
                       s.sessions, s.ports].enumerated() {
            f.set(4 * i, UInt32(v))
        }
        return .complete(errno: 0, writes: [CallerWrite(address: argument, bytes: f.bytes)])
    }

    // MARK: legacy struct nmreq (§3.2)

    static func legacy(command: UInt32, argument: UInt64, memory: CallerMemory, session: Session,
                       caller: Int32) -> IoctlOutcome {
        guard argument != 0 else { return .complete(errno: NetmapError.EINVAL.errno, writes: []) }
        let r = CallerRange(address: argument, length: legacySize)
        let bytes: [UInt8]
        switch Self.argument(r, memory) {
        case .success(let b): bytes = b
        case .failure(let o): return o
        }
        var f = ByteFields(bytes)
        let errno: Int32
        do {
            try legacyExecute(command: command, &f, session: session, caller: caller)
            errno = 0
        } catch {
            errno = error.errno
        }
        // The whole struct goes back, even on error (§3.1).
        return .complete(errno: errno, writes: [CallerWrite(address: argument, bytes: f.bytes)])
    }

    // nmreq field offsets (§1.3).
    enum N {
        static let name = 0, version = 16, offset = 20, memsize = 24, txSlots = 28, rxSlots = 32
        static let txRings = 36, rxRings = 38, ringid = 40, cmd = 42, arg1 = 44, arg2 = 46, arg3 = 48, flags = 52
    }

    static func legacyExecute(command: UInt32, _ f: inout ByteFields, session: Session,
                              caller: Int32) throws(NetmapError) {
        var name = f.terminatedString(N.name, size: 16)
        guard f.u32(N.version) >= 14 else { throw .EINVAL }
        let cmd = f.u16(N.cmd)
        if command == NIOCGINFO {
            if cmd == UInt16(NETMAP_BDG_LIST) {
                // Legacy VALE_LIST: bridge index in nr_arg1, port in nr_arg2.
                let r = try session.valeList(name: name, bridge: Int(f.u16(N.arg1)), port: Int(f.u16(N.arg2)))
                f.set(N.arg1, UInt16(r.bridge))
                f.set(N.arg2, UInt16(truncatingIfNeeded: r.port))
                if let n = r.name { f.setString(N.name, size: 16, n) }
                return
            }
            let hints = PortHints(txRings: Int(f.u16(N.txRings)), rxRings: Int(f.u16(N.rxRings)),
                                  txSlots: Int(f.u32(N.txSlots)), rxSlots: Int(f.u32(N.rxSlots)))
            let info = try session.portInfo(name: name, memId: f.u16(N.arg2), hints: hints, caller: caller)
            f.set(N.memsize, UInt32(truncatingIfNeeded: info.memsize))
            if let g = info.geometry {   // an empty name: the memory fields only
                f.set(N.txSlots, UInt32(g.txSlots))
                f.set(N.rxSlots, UInt32(g.rxSlots))
                f.set(N.txRings, UInt16(g.txRings))
                f.set(N.rxRings, UInt16(g.rxRings))
            }
            f.set(N.arg2, info.memId)
            return
        }
        switch Int32(cmd) {
        case 0:
            break
        case NETMAP_BDG_VNET_HDR:
            try session.portHdrSet(name: name, length: UInt32(f.u16(N.arg1)))
            return
        case NETMAP_VNET_HDR_GET:
            f.set(N.arg1, UInt16(truncatingIfNeeded: try session.portHdrGet(name: name, caller: caller)))
            return
        case NETMAP_PT_HOST_CREATE, NETMAP_PT_HOST_DELETE:
            throw .ENOMEM   // what the kernel's translation layer answers
        default:
            // VALE attach/detach/newif/delif/polling (no VALE here), REGOPS, unknown.
            throw .EINVAL
        }
        // Register (§3.2 mode conversion).
        let ringid = f.u16(N.ringid)
        let legacyFlags = f.u32(N.flags)
        var mode = legacyFlags & UInt32(NR_REG_MASK)
        var ring = ringid & UInt16(NETMAP_RING_MASK)
        switch mode {
        case RegisterMode.default:
            if ringid & UInt16(NETMAP_SW_RING) != 0 {
                mode = RegisterMode.sw
            } else if ringid & UInt16(NETMAP_HW_RING) != 0 {
                mode = RegisterMode.oneNIC
            } else {
                mode = RegisterMode.allNIC
            }
        case RegisterMode.pipeMaster, RegisterMode.pipeSlave:
            name += (mode == RegisterMode.pipeMaster ? "{" : "}") + String(ring)
            guard name.utf8.count <= 63 else { throw .ENOMEM }
            mode = RegisterMode.allNIC
            ring = 0
        default:
            break
        }
        var flags = UInt64(legacyFlags & ~UInt32(NR_REG_MASK))
        if ringid & UInt16(NETMAP_NO_TX_POLL) != 0 { flags |= RegisterFlag.noTxPoll }
        if ringid & UInt16(NETMAP_DO_RX_POLL) != 0 { flags |= RegisterFlag.doRxPoll }
        var req = RegisterRequest(name: name, mode: mode, ringid: ring, flags: flags,
                                  hints: PortHints(txRings: Int(f.u16(N.txRings)), rxRings: Int(f.u16(N.rxRings)),
                                                   txSlots: Int(f.u32(N.txSlots)), rxSlots: Int(f.u32(N.rxSlots))),
                                  memId: f.u16(N.arg2), extraBuffers: f.u32(N.arg3))
        if mode == RegisterMode.null { req.memId = f.u16(N.arg2) }
        req.caller = caller
        let reply = try session.register(req)
        f.set(N.offset, UInt32(truncatingIfNeeded: reply.offset))
        f.set(N.memsize, UInt32(truncatingIfNeeded: reply.memsize))
        f.set(N.txSlots, UInt32(reply.geometry.txSlots))
        f.set(N.rxSlots, UInt32(reply.geometry.rxSlots))
        f.set(N.txRings, UInt16(reply.geometry.txRings))
        f.set(N.rxRings, UInt16(reply.geometry.rxRings))
        f.set(N.arg2, reply.memId)
        f.set(N.arg3, reply.extraBuffers)
    }
}
