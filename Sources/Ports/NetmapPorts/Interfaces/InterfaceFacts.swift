// Interface facts through libnl-3 (rtnetlink): what a port needs to know
// about the Linux interface behind it (ifindex, MTU, MAC, queue counts, link
// state), the tc classifiers on it, and a subscription to link changes.
// Everything here answers for the network namespace the daemon runs in.
//
// libnl sockets are not thread-safe: each `NetlinkRoute` serialises its
// queries with a lock; the `LinkMonitor` is only read by the event thread.

#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import CXDPSys
import NetmapCore

/// One interface, as rtnetlink describes it now.
public struct InterfaceFacts: Sendable, Equatable {
    public var name: String
    public var ifindex: Int32
    public var mtu: Int
    public var mac: [UInt8]
    public var txQueues: Int
    public var rxQueues: Int
    /// IFF_UP: administratively up.
    public var isUp: Bool
    /// Carrier present (IFF_LOWER_UP / IFLA_CARRIER).
    public var hasCarrier: Bool

    public var macString: String {
        mac.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

/// Linux's limit on interface names (IFNAMSIZ - 1).
let interfaceNameMax = 15

/// A libnl route socket for queries (links, classifiers).
public final class NetlinkRoute: @unchecked Sendable {
    private let sock: OpaquePointer
    private let lock = Lock()

    public init() throws(NetmapError) {
        guard let s = nl_socket_alloc() else { throw .ENOMEM }
        let r = nl_connect(s, NETLINK_ROUTE)
        guard r == 0 else {
            nl_socket_free(s)
            throw NetmapError(EPROTONOSUPPORT)
        }
        sock = s
    }

    deinit {
        nl_close(sock)
        nl_socket_free(sock)
    }

    /// The interface called `name`, or nil if there is none.
    public func facts(named name: String) -> InterfaceFacts? {
        guard !name.isEmpty, name.utf8.count <= interfaceNameMax else { return nil }
        return lock.withLock { () -> InterfaceFacts? in
            var link: OpaquePointer?
            guard rtnl_link_get_kernel(sock, 0, name, &link) == 0, let link else { return nil }
            defer { rtnl_link_put(link) }
            return Self.facts(of: link)
        }
    }

    /// The interface with index `ifindex`, or nil if there is none.
    public func facts(index ifindex: Int32) -> InterfaceFacts? {
        lock.withLock { () -> InterfaceFacts? in
            var link: OpaquePointer?
            guard rtnl_link_get_kernel(sock, ifindex, nil, &link) == 0, let link else { return nil }
            defer { rtnl_link_put(link) }
            return Self.facts(of: link)
        }
    }

    /// Every interface of the namespace.
    public func allInterfaces() -> [InterfaceFacts] {
        lock.withLock { () -> [InterfaceFacts] in
            var cache: OpaquePointer?
            guard rtnl_link_alloc_cache(sock, AF_UNSPEC, &cache) == 0, let cache else { return [] }
            defer { nl_cache_free(cache) }
            var out = [InterfaceFacts]()
            var obj = nl_cache_get_first(cache)
            while let o = obj {
                out.append(Self.facts(of: OpaquePointer(UnsafeMutableRawPointer(o))))
                obj = nl_cache_get_next(o)
            }
            return out
        }
    }

    /// One tc classifier entry. The kernel also lists a priority group
    /// whose filters are all gone (handle 0).
    public struct Classifier: Sendable, Equatable {
        public var prio: UInt16
        public var handle: UInt32
        public var kind: String
    }

    /// The tc filters under `parent` (a clsact ingress/egress handle) on
    /// `ifindex`; nil if the kernel would not say.
    public func classifiers(ifindex: Int32, parent: UInt32) -> [Classifier]? {
        lock.withLock { () -> [Classifier]? in
            var cache: OpaquePointer?
            guard rtnl_cls_alloc_cache(sock, ifindex, parent, &cache) == 0, let cache else { return nil }
            defer { nl_cache_free(cache) }
            var out = [Classifier]()
            var obj = nl_cache_get_first(cache)
            while let o = obj {
                let cls = OpaquePointer(UnsafeMutableRawPointer(o))
                out.append(Classifier(prio: rtnl_cls_get_prio(cls), handle: rtnl_tc_get_handle(cls),
                                      kind: rtnl_tc_get_kind(cls).map { String(cString: $0) } ?? ""))
                obj = nl_cache_get_next(o)
            }
            return out
        }
    }

    /// Deletes the whole filter group at `prio` under `parent` (what stays
    /// behind, empty, when its last filter was removed by handle).
    @discardableResult
    public func deleteClassifierGroup(ifindex: Int32, parent: UInt32, prio: UInt16, proto: UInt16) -> Int32 {
        precondition(prio != 0, "priority 0 would flush every filter")
        return lock.withLock { () -> Int32 in
            guard let cls = rtnl_cls_alloc() else { return -Int32(ENOMEM) }
            defer { rtnl_cls_put(cls) }
            rtnl_tc_set_ifindex(cls, ifindex)
            rtnl_tc_set_parent(cls, parent)
            rtnl_cls_set_prio(cls, prio)
            rtnl_cls_set_protocol(cls, proto)
            return rtnl_cls_delete(sock, cls, 0)
        }
    }

    private static func facts(of link: OpaquePointer) -> InterfaceFacts {
        let name = rtnl_link_get_name(link).map { String(cString: $0) } ?? ""
        var mac = [UInt8]()
        if let a = rtnl_link_get_addr(link), let bytes = nl_addr_get_binary_addr(a) {
            let n = Int(nl_addr_get_len(a))
            mac = Array(UnsafeRawBufferPointer(start: bytes, count: n))
        }
        let flags = rtnl_link_get_flags(link)
        return InterfaceFacts(
            name: name,
            ifindex: rtnl_link_get_ifindex(link),
            mtu: Int(rtnl_link_get_mtu(link)),
            mac: mac,
            txQueues: max(1, Int(rtnl_link_get_num_tx_queues(link))),
            rxQueues: max(1, Int(rtnl_link_get_num_rx_queues(link))),
            isUp: flags & UInt32(IFF_UP.rawValue) != 0,
            hasCarrier: rtnl_link_get_carrier(link) != 0 || flags & UInt32(IFF_LOWER_UP.rawValue) != 0)
    }
}

/// Link changes as rtnetlink announces them (RTNLGRP_LINK).
public enum LinkEvent: Sendable, Equatable {
    /// RTM_NEWLINK: an interface appeared or changed (flags, MTU, name).
    case changed(ifindex: Int32, name: String?, mtu: Int?, isUp: Bool)
    /// RTM_DELLINK: the interface is gone.
    case removed(ifindex: Int32)
    /// The kernel dropped notifications (socket overrun): re-read the state.
    case overrun
}

/// A non-blocking libnl socket subscribed to link notifications. The event
/// thread polls `fd` and calls `drain`.
public final class LinkMonitor: @unchecked Sendable {
    private let sock: OpaquePointer
    public let fd: Int32
    private var pending = [LinkEvent]()

    public init() throws(NetmapError) {
        guard let s = nl_socket_alloc() else { throw .ENOMEM }
        nl_socket_disable_seq_check(s)
        guard nl_connect(s, NETLINK_ROUTE) == 0,
            nl_socket_add_membership(s, Int32(RTNLGRP_LINK.rawValue)) == 0,
            nl_socket_set_nonblocking(s) == 0
        else {
            nl_socket_free(s)
            throw NetmapError(EPROTONOSUPPORT)
        }
        _ = nl_socket_set_buffer_size(s, 4 << 20, 0)
        sock = s
        fd = nl_socket_get_fd(s)
        let me = Unmanaged.passUnretained(self).toOpaque()
        nl_socket_modify_cb(s, NL_CB_VALID, NL_CB_CUSTOM, { msg, arg in
            guard let msg, let arg else { return Int32(NL_OK.rawValue) }
            Unmanaged<LinkMonitor>.fromOpaque(arg).takeUnretainedValue().parse(msg)
            return Int32(NL_OK.rawValue)
        }, me)
    }

    deinit {
        nl_close(sock)
        nl_socket_free(sock)
    }

    /// Reads every notification queued on the socket.
    public func drain() -> [LinkEvent] {
        pending.removeAll(keepingCapacity: true)
        while true {
            let r = nl_recvmsgs_default(sock)
            if r >= 0 { continue }
            if -r == NLE_NOMEM || -r == NLE_MSG_OVERFLOW || -r == NLE_DUMP_INTR { pending.append(.overrun) }
            if -r == NLE_AGAIN || -r == NLE_INTR { break }
            // Anything else (an overrun shows up as ENOBUFS -> NLE_NOMEM):
            // report once and stop reading this round.
            if pending.last != .overrun { pending.append(.overrun) }
            break
        }
        return pending
    }

    private func parse(_ msg: OpaquePointer) {
        guard let h = nlmsg_hdr(msg) else { return }
        let type = Int32(h.pointee.nlmsg_type)
        guard type == RTM_NEWLINK || type == RTM_DELLINK,
            Int(h.pointee.nlmsg_len) >= MemoryLayout<nlmsghdr>.size + MemoryLayout<ifinfomsg>.size,
            let body = nlmsg_data(h)
        else { return }
        let ifi = body.load(as: ifinfomsg.self)
        if type == RTM_DELLINK {
            pending.append(.removed(ifindex: ifi.ifi_index))
            return
        }
        let hdrlen = Int32(MemoryLayout<ifinfomsg>.size)
        var name: String?
        if let a = nlmsg_find_attr(h, hdrlen, Int32(IFLA_IFNAME)), let s = nla_get_string(a) {
            name = String(cString: s)
        }
        var mtu: Int?
        if let a = nlmsg_find_attr(h, hdrlen, Int32(IFLA_MTU)) { mtu = Int(nla_get_u32(a)) }
        pending.append(.changed(ifindex: ifi.ifi_index, name: name, mtu: mtu,
                                isUp: ifi.ifi_flags & UInt32(IFF_UP.rawValue) != 0))
    }
}

extension InterfaceFacts {
    /// 1024-byte netmap_if objects list at most 121 rings, host rings included.
    static let maxRings = 48

    /// Ring counts that follow the interface's real queues, as netmap's
    /// adapters do (ethtool channels; else the kernel's queue counts), at
    /// most what a netmap_if can list. Call in the interface's namespace.
    func queueCounts() -> (rx: Int, tx: Int) {
        var rx: UInt32 = 0, tx: UInt32 = 0
        var r = rxQueues, t = txQueues
        if nmd_ethtool_queues(name, &rx, &tx) == 0 {
            r = Int(rx)
            t = Int(tx)
        }
        return (min(max(1, r), Self.maxRings), min(max(1, t), Self.maxRings))
    }
}
