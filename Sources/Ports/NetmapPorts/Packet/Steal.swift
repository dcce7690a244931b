// Faithful stealing (architecture.md): while an interface's RX rings are in
// netmap mode, its received frames must not reach the host stack. AF_PACKET
// taps run before tc ingress, so a clsact ingress filter whose program
// returns TC_ACT_SHOT hides the frames from the stack while the port's
// sockets still get them. The program is named "netmapd_steal" and sits at
// a fixed handle and priority, which is how a daemon that starts after a
// killed one finds what its predecessor left behind.
//
// What we attach goes away when the port's last RX ring leaves netmap mode,
// when the daemon exits, and at the next start. A clsact qdisc goes with it
// if we created it (or, at start-up, if nothing else hangs on it any more:
// an empty clsact is taken to be ours).

#if canImport(Glibc)
import Glibc
#endif
import CPacketSys
import NetmapCore

final class Stealer: @unchecked Sendable {
    private let route: NetlinkRoute
    private let log: CoreLog
    private let lock = Lock()
    private var progFd: Int32 = -1
    /// Interfaces we attached to, whether we made their clsact qdisc, and
    /// how many ports asked (a renamed interface can have two).
    private var attached: [Int32: (name: String, createdQdisc: Bool, users: Int)] = [:]

    static let clsactIngress: UInt32 = 0xFFFF_FFF2   // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
    static let clsactEgress: UInt32 = 0xFFFF_FFF3

    init(route: NetlinkRoute, log: CoreLog) {
        self.route = route
        self.log = log
    }

    /// Drops every frame arriving on `ifindex` before the host stack sees it.
    func attach(ifindex: Int32, name: String) throws(NetmapError) {
        try lock.withLock { () throws(NetmapError) in
            if attached[ifindex] != nil {
                attached[ifindex]!.users += 1
                return
            }
            if progFd < 0 {
                let fd = nmd_steal_load()
                guard fd >= 0 else { throw NetmapError(-fd) }
                progFd = fd
            }
            var created: Int32 = 0
            let rc = nmd_steal_attach(ifindex, progFd, &created)
            guard rc == 0 else { throw NetmapError(-rc) }
            attached[ifindex] = (name, created != 0, 1)
            log.debug("\(name): host stack no longer receives (tc ingress \(Self.programName))")
        }
    }

    /// Undoes `attach`; `all` when the interface is gone.
    func detach(ifindex: Int32, all: Bool = false) {
        lock.withLock {
            guard var a = attached[ifindex] else { return }
            a.users -= 1
            if a.users > 0 && !all {
                attached[ifindex] = a
                return
            }
            attached.removeValue(forKey: ifindex)
            remove(ifindex: ifindex, name: a.name, createdQdisc: a.createdQdisc)
        }
    }

    /// Removes everything still attached (daemon exit).
    func detachAll() {
        lock.withLock {
            for (ifindex, a) in attached { remove(ifindex: ifindex, name: a.name, createdQdisc: a.createdQdisc) }
            attached.removeAll()
        }
    }

    /// Start-up: removes the filter a previous daemon left on `f` (in the
    /// namespace `route` belongs to, which the caller is in). Returns
    /// whether there was one.
    static func removeLeftover(route: NetlinkRoute, facts f: InterfaceFacts) -> Bool {
        guard nmd_steal_present(f.ifindex) == 1 else { return false }
        remove(ifindex: f.ifindex, name: f.name, createdQdisc: true, route: route, log: nil)
        return true
    }

    private func remove(ifindex: Int32, name: String, createdQdisc: Bool) {
        Self.remove(ifindex: ifindex, name: name, createdQdisc: createdQdisc, route: route, log: log)
    }

    private static func remove(ifindex: Int32, name: String, createdQdisc: Bool, route: NetlinkRoute, log: CoreLog?) {
        let rc = nmd_steal_detach(ifindex)
        if rc != 0 && rc != -ENOENT && rc != -ENODEV && rc != -EINVAL {
            log?.warning("\(name): cannot remove the tc ingress filter: errno \(-rc)")
        }
        tidy(route: route, ifindex: ifindex, parent: clsactIngress, prio: UInt16(NMD_STEAL_PRIORITY))
        guard createdQdisc else { return }
        removeClsactIfEmpty(route: route, ifindex: ifindex)
    }

    /// Removing a filter by handle leaves its (now empty) priority group
    /// listed; this removes the group too unless another filter shares it.
    static func tidy(route: NetlinkRoute, ifindex: Int32, parent: UInt32, prio: UInt16) {
        guard let list = route.classifiers(ifindex: ifindex, parent: parent) else { return }
        let group = list.filter { $0.prio == prio }
        if !group.isEmpty && group.allSatisfy({ $0.handle == 0 }) {
            route.deleteClassifierGroup(ifindex: ifindex, parent: parent, prio: prio,
                                        proto: 0x0003)   // ETH_P_ALL, as libbpf attached it
        }
    }

    /// Only an empty clsact goes: someone may have added filters since.
    static func removeClsactIfEmpty(route: NetlinkRoute, ifindex: Int32) {
        let ingress = route.classifiers(ifindex: ifindex, parent: Self.clsactIngress)
        let egress = route.classifiers(ifindex: ifindex, parent: Self.clsactEgress)
        if let i = ingress, let e = egress, (i + e).allSatisfy({ $0.handle == 0 }) {
            _ = nmd_clsact_remove(ifindex)
        }
    }

    static let programName = NMD_STEAL_PROG_NAME
}
