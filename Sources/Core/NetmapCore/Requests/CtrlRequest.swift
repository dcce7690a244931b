// NIOCCTRL (§3.3): an 88-byte header pointing to a body and to a chain of
// options, each in the caller's memory. Decoded step by step from what the
// front end has fetched; executed once everything is there.

import CNetmapABI
import DeviceInterface

struct Ctrl {
    let argument: UInt64
    let memory: CallerMemory
    let session: Session
    /// The thread that asked (its namespace resolves interface names).
    let caller: Int32

    // nmreq_header offsets.
    enum H {
        static let version = 0, reqtype = 2, reserved = 4, name = 8, options = 72, body = 80
    }

    /// One option of the chain as walked.
    struct Option {
        var address: UInt64
        var header: ByteFields
        var body: ByteFields
        var type: UInt32 { header.u32(8) }
        var status: UInt32 {
            get { header.u32(12) }
            set { header.set(12, newValue) }
        }
    }

    /// The kernel's copy of a request (§3.3 step 6): the two user pointers,
    /// the body, a table of one pointer per option type, then per option the
    /// user's next pointer, the header and (known types) the body, in a
    /// buffer of 4096 bytes plus the pointers.
    struct OptionWalk {
        static let pointer = 8
        static let types = Int(NETMAP_REQ_OPT_MAX)
        static let bufferSize = (2 + types) * pointer + Int(NETMAP_REQ_MAXSIZE) + types * pointer
        static let perOption = pointer + Requests.optionHeaderSize
        let initialUse: Int
        init(bodySize: Int) { initialUse = 2 * Self.pointer + bodySize + Self.types * Self.pointer }
    }

    enum Failure: Error {
        case need(CallerRange)
        case fault
        case fail(NetmapError, writeOptions: Bool)
    }

    static func bodySize(_ type: UInt16) -> Int {
        switch Int32(type) {
        case NETMAP_REQ_REGISTER: return 56
        case NETMAP_REQ_PORT_INFO_GET: return 32
        case NETMAP_REQ_VALE_ATTACH: return 64
        case NETMAP_REQ_VALE_DETACH, NETMAP_REQ_VALE_LIST, NETMAP_REQ_PORT_HDR_SET, NETMAP_REQ_PORT_HDR_GET,
             NETMAP_REQ_SYNC_KLOOP_START: return 8
        case NETMAP_REQ_VALE_NEWIF, NETMAP_REQ_VALE_POLLING_ENABLE, NETMAP_REQ_VALE_POLLING_DISABLE: return 16
        case NETMAP_REQ_POOLS_INFO_GET: return 64
        default: return 0   // DELIF, KLOOP_STOP, CSB_ENABLE, and unknown types
        }
    }

    /// Bytes after the 24-byte option header that the kernel reads (§3.3 step 5).
    static func optionBodySize(type: UInt32, size: UInt64) -> Int {
        switch Int32(truncatingIfNeeded: type) {
        case NETMAP_REQ_OPT_EXTMEM: return 72
        case NETMAP_REQ_OPT_CSB: return 16
        case NETMAP_REQ_OPT_SYNC_KLOOP_MODE: return 8
        case NETMAP_REQ_OPT_OFFSETS: return 32
        case NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS: return size >= 24 ? Int(clamping: size - 24) : 0
        default: return 0
        }
    }

    private var ranges: [CallerRange] = []

    init(argument: UInt64, memory: CallerMemory, session: Session, caller: Int32) {
        self.argument = argument
        self.memory = memory
        self.session = session
        self.caller = caller
    }

    private mutating func fetch(_ r: CallerRange) throws(Failure) -> [UInt8] {
        if r.length == 0 { return [] }
        ranges.append(r)
        switch memory.lookup(r) {
        case .bytes(let b): return b
        case .unreadable: throw .fault
        case .missing: throw .need(r)
        }
    }

    /// While asking for a missing range, also ask for the one whose address
    /// is already known after it (the first option after the body, the next
    /// option after an option's body): one round trip fewer per step. It is
    /// only asked for, never evaluated, so errors keep the kernel's order.
    private mutating func fetch(_ r: CallerRange, lookahead: CallerRange?) throws(Failure) -> [UInt8] {
        do { return try fetch(r) } catch {
            if case .need = error, let la = lookahead, la.length > 0, la.address != 0 {
                if case .missing = memory.lookup(la) { ranges.append(la) }
            }
            throw error
        }
    }

    mutating func run() -> IoctlOutcome {
        guard argument != 0 else { return .complete(errno: NetmapError.EINVAL.errno, writes: []) }
        let hdrRange = CallerRange(address: argument, length: Requests.headerSize)
        var header: ByteFields
        do throws(Failure) { header = ByteFields(try fetch(hdrRange)) } catch {
            if case .need = error { return .needMemory(read: ranges, write: ranges) }
            return .complete(errno: NetmapError.EFAULT.errno, writes: [])
        }
        let name = header.terminatedString(H.name, size: 64)
        let headerWrite = CallerWrite(address: argument, bytes: header.bytes)

        var body = ByteFields([])
        var options = [Option]()
        let bodyAddress = header.u64(H.body)
        let reqtype = header.u16(H.reqtype)
        do throws(Failure) {
            let version = header.u16(H.version)
            guard version >= UInt16(NETMAP_MIN_API), version <= UInt16(NETMAP_MAX_API) else {
                throw Failure.fail(.EINVAL, writeOptions: false)
            }
            guard header.u32(H.reserved) == 0 else { throw Failure.fail(.EINVAL, writeOptions: false) }
            let rqsz = Self.bodySize(reqtype)
            guard (rqsz == 0) == (bodyAddress == 0) else { throw Failure.fail(.EINVAL, writeOptions: false) }
            let firstOption = header.u64(H.options)
            body = ByteFields(try fetch(CallerRange(address: bodyAddress, length: rqsz),
                                        lookahead: CallerRange(address: firstOption, length: Requests.optionHeaderSize)))
            options = try walkOptions(first: header.u64(H.options), bodySize: rqsz, into: &options)
        } catch {
            switch error {
            case .need:
                return .needMemory(read: ranges, write: ranges)
            case .fault:
                // The options copied before the fault go back as they stand.
                let writes = options.map { CallerWrite(address: $0.address, bytes: $0.header.bytes) }
                return .complete(errno: NetmapError.EFAULT.errno, writes: [headerWrite] + writes)
            case .fail(let e, let writeOptions):
                var writes = [headerWrite]
                if writeOptions { writes += options.map { CallerWrite(address: $0.address, bytes: $0.header.bytes) } }
                return .complete(errno: e.errno, writes: writes)
            }
        }

        let errno: Int32
        var outHeader = header
        do {
            try execute(reqtype: reqtype, name: name, header: &outHeader, body: &body, options: &options)
            errno = 0
        } catch {
            errno = error.errno
        }
        var writes = [CallerWrite(address: argument, bytes: outHeader.bytes)]
        if errno == 0 && !body.bytes.isEmpty { writes.append(CallerWrite(address: bodyAddress, bytes: body.bytes)) }
        for o in options {
            writes.append(CallerWrite(address: o.address, bytes: o.header.bytes))
            if errno == 0 && o.status == 0 && !o.body.bytes.isEmpty {
                writes.append(CallerWrite(address: o.address + UInt64(Requests.optionHeaderSize), bytes: o.body.bytes))
            }
        }
        return .complete(errno: errno, writes: writes)
    }

    /// §3.3 option list processing, in netmap's order. Each option is
    /// copied with status 0; type 0 and a duplicate of a known type are
    /// EINVAL; an unknown type (>= NETMAP_REQ_OPT_MAX) is kept without a
    /// body and without size checks; a known type's sizes are checked last
    /// (EMSGSIZE). A failure ends the walk and the options copied so far go
    /// back as they stand. The kernel copies into a buffer of fixed size:
    /// running out of it (a long or cyclic chain of unknown options) is
    /// EMSGSIZE with no option written back. After a clean walk every
    /// option reads EOPNOTSUPP until a consumer says otherwise.
    private mutating func walkOptions(first: UInt64, bodySize: Int,
                                      into options: inout [Option]) throws(Failure) -> [Option] {
        let walk = OptionWalk(bodySize: bodySize)
        var used = walk.initialUse
        var total = bodySize
        var seen = [UInt32: Int]()
        var next = first
        let invalid = UInt32(NetmapError.EINVAL.errno)
        while next != 0 {
            guard used + OptionWalk.perOption <= OptionWalk.bufferSize else {
                // Possibly a cycle: nothing goes back.
                options.removeAll()
                throw .fail(.EMSGSIZE, writeOptions: false)
            }
            let hdr = ByteFields(try fetch(CallerRange(address: next, length: Requests.optionHeaderSize)))
            used += OptionWalk.perOption
            total += Requests.optionHeaderSize
            var opt = Option(address: next, header: hdr, body: ByteFields([]))
            opt.status = 0
            let type = opt.type, size = hdr.u64(16)
            next = hdr.u64(0)
            if type == 0 {
                opt.status = invalid
                options.append(opt)
                throw .fail(.EINVAL, writeOptions: true)
            }
            guard type < UInt32(NETMAP_REQ_OPT_MAX) else {
                options.append(opt)
                continue
            }
            if let earlier = seen[type] {
                options[earlier].status = invalid
                opt.status = invalid
                options.append(opt)
                throw .fail(.EINVAL, writeOptions: true)
            }
            seen[type] = options.count
            options.append(opt)
            let bodyLen = Self.optionBodySize(type: type, size: size)
            let limit = Int(NETMAP_REQ_MAXSIZE)
            guard bodyLen <= limit, size <= UInt64(limit), total + bodyLen <= limit else {
                throw .fail(.EMSGSIZE, writeOptions: true)
            }
            total += bodyLen
            // A body past the top of the address space cannot be read (EFAULT,
            // as copy_from_user answers), and must not trap the daemon.
            let (bodyAddress, wraps) = options[options.count - 1].address
                .addingReportingOverflow(UInt64(Requests.optionHeaderSize))
            if wraps && bodyLen > 0 { throw .fault }
            options[options.count - 1].body = ByteFields(
                try fetch(CallerRange(address: bodyAddress, length: bodyLen),
                          lookahead: CallerRange(address: next, length: Requests.optionHeaderSize)))
            used += bodyLen
        }
        let notSupported = UInt32(NetmapError.EOPNOTSUPP.errno)
        for i in options.indices { options[i].status = notSupported }
        return options
    }

    // MARK: execution

    private func execute(reqtype: UInt16, name: String, header: inout ByteFields, body: inout ByteFields,
                         options: inout [Option]) throws(NetmapError) {
        switch Int32(reqtype) {
        case NETMAP_REQ_REGISTER:
            try register(name: name, body: &body, options: options)
        case NETMAP_REQ_PORT_INFO_GET:
            // nmreq_port_info_get: memsize 0, tx/rx slots 8/12, tx/rx rings
            // 16/18, host tx/rx rings 20/22, mem_id 24.
            let hints = PortHints(txRings: Int(body.u16(16)), rxRings: Int(body.u16(18)),
                                  txSlots: Int(body.u32(8)), rxSlots: Int(body.u32(12)),
                                  hostTxRings: Int(body.u16(20)), hostRxRings: Int(body.u16(22)))
            let info = try session.portInfo(name: name, memId: body.u16(24), hints: hints, caller: caller)
            body.set(0, info.memsize)
            if let g = info.geometry {   // an empty name: the memory fields only
                body.set(8, UInt32(g.txSlots))
                body.set(12, UInt32(g.rxSlots))
                body.set(16, UInt16(g.txRings))
                body.set(18, UInt16(g.rxRings))
                body.set(20, UInt16(g.hostTxRings))
                body.set(22, UInt16(g.hostRxRings))
            }
            body.set(24, info.memId)
        case NETMAP_REQ_POOLS_INFO_GET:
            body = ByteFields(try session.poolsInfo(name: name, memId: body.u16(8), caller: caller))
        case NETMAP_REQ_PORT_HDR_SET:
            try session.portHdrSet(name: name, length: body.u32(0))
        case NETMAP_REQ_PORT_HDR_GET:
            body.set(0, try session.portHdrGet(name: name, caller: caller))
        case NETMAP_REQ_CSB_ENABLE:
            guard let i = options.firstIndex(where: { $0.type == UInt32(NETMAP_REQ_OPT_CSB) }) else { throw .EINVAL }
            if session.isRegistered {
                // Deliberate: CSB mode (for VM acceleration) is not provided.
                throw .EOPNOTSUPP
            }
            options[i].status = 0   // on an unbound file: a successful no-op
        case NETMAP_REQ_SYNC_KLOOP_START:
            guard body.u32(0) <= 1_000_000 else { throw .EINVAL }
            guard session.isRegistered else { throw .ENXIO }
            throw .EINVAL   // the loop needs CSB mode, which is never active
        case NETMAP_REQ_SYNC_KLOOP_STOP:
            guard session.isRegistered else { throw .ENXIO }
        case NETMAP_REQ_VALE_LIST:
            // nmreq_vale_list: bridge index u16 @0, port index u32 @4; an
            // enumeration writes the port's name into the header.
            let r = try session.valeList(name: name, bridge: Int(body.u16(0)), port: Int(body.u32(4)))
            body.set(0, UInt16(r.bridge))
            body.set(4, UInt32(r.port))
            if let n = r.name { header.setString(H.name, size: 64, n) }
        case NETMAP_REQ_VALE_ATTACH:
            // nmreq_vale_attach: the register body (mem_id 32, ringid 34,
            // mode 36), then port_index u32 @56.
            body.set(56, try session.valeAttach(name: name, mode: body.u32(36), ringid: body.u16(34),
                                                memId: body.u16(32), caller: caller))
        case NETMAP_REQ_VALE_DETACH:
            body.set(0, try session.valeDetach(name: name))
        case NETMAP_REQ_VALE_NEWIF:
            try session.valeNewIf(name: name, caller: caller)
        case NETMAP_REQ_VALE_DELIF:
            try session.valeDelIf(name: name, caller: caller)
        case NETMAP_REQ_VALE_POLLING_ENABLE, NETMAP_REQ_VALE_POLLING_DISABLE:
            try session.valePolling(name: name)
        default:
            // Unknown types.
            throw .EINVAL
        }
    }

    private func register(name: String, body: inout ByteFields, options: [Option]) throws(NetmapError) {
        // nmreq_register: offset 0, memsize 8, tx/rx slots 16/20, tx/rx rings
        // 24/26, host tx/rx 28/30, mem_id 32, ringid 34, mode 36,
        // extra_bufs 40, flags 48. The mode is checked by the registration,
        // in netmap's order (§3.4); nr_ringid is taken whole (only the
        // legacy API masks it).
        var req = RegisterRequest(
            name: name, mode: body.u32(36), ringid: body.u16(34), flags: body.u64(48),
            hints: PortHints(txRings: Int(body.u16(24)), rxRings: Int(body.u16(26)),
                             txSlots: Int(body.u32(16)), rxSlots: Int(body.u32(20)),
                             hostTxRings: Int(body.u16(28)), hostRxRings: Int(body.u16(30))),
            memId: body.u16(32), extraBuffers: body.u32(40))
        req.hostTxRings = Int(body.u16(28))
        req.hostRxRings = Int(body.u16(30))
        req.caller = caller
        let reply = try session.register(req)
        // No option is consumed by a registration here (EXTMEM, CSB and
        // OFFSETS are not provided): any option undoes it (§3.4 step 19).
        if !options.isEmpty {
            session.undoRegistration()
            throw .EOPNOTSUPP
        }
        body.set(0, reply.offset)
        body.set(8, reply.memsize)
        body.set(16, UInt32(reply.geometry.txSlots))
        body.set(20, UInt32(reply.geometry.rxSlots))
        body.set(24, UInt16(reply.geometry.txRings))
        body.set(26, UInt16(reply.geometry.rxRings))
        body.set(28, UInt16(reply.geometry.hostTxRings))
        body.set(30, UInt16(reply.geometry.hostRxRings))
        body.set(32, reply.memId)
        body.set(40, reply.extraBuffers)
        body.set(48, reply.flags)
    }
}
