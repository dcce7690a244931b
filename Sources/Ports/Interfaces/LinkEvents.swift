// What both interface backends (AF_PACKET, AF_XDP) do alike: the checks of a
// port's first registration, and the link monitor's events: a port whose
// link went down locks its rings (syncs wait, poll finds nothing ready) until
// it comes up again; a port whose interface was deleted stops them for good
// (EIO, POLLERR); a rename is noted and the port keeps its name.

import NetmapCore

/// A port on a Linux interface, as the link-event dispatch sees it.
protocol InterfacePort: AnyObject {
    var ifindex: Int32 { get }
    var name: String { get }
    /// Link up/down or a new MTU (event thread).
    func linkChanged(isUp: Bool, mtu: Int?)
}

enum LinkEvents {
    /// §3.4 step 9, for a port's first registration: the interface must
    /// still be the one the port was made for (ENXIO), and with RX rings an
    /// MTU above the buffer size is refused (EINVAL: a frame would not fit
    /// the buffers it may be split into). Returns the interface's MTU now.
    static func checkFirstRegistration(route: NetlinkRoute, ifindex: Int32, name: String, log: CoreLog,
                                       bindsRX: Bool, bufferSize: Int) throws(NetmapError) -> Int {
        guard let f = route.facts(index: ifindex), f.name == name else { throw .ENXIO }
        if bindsRX && f.mtu > bufferSize {
            log.info("\(name): MTU \(f.mtu) is larger than the \(bufferSize)-byte netmap buffers: EINVAL")
            throw .EINVAL
        }
        return f.mtu
    }

    /// Applies `events` to the ports they concern. `vanish` gets each port
    /// whose interface is gone (also when notifications were lost and the
    /// interface is no longer there).
    static func dispatch<P: InterfacePort>(_ events: [LinkEvent], to live: [P], route: NetlinkRoute,
                                           log: CoreLog, vanish: (P) -> Void) {
        for e in events {
            switch e {
            case .removed(let ifindex):
                for p in live where p.ifindex == ifindex { vanish(p) }
            case .changed(let ifindex, let name, let mtu, let isUp):
                for p in live where p.ifindex == ifindex {
                    if let name, name != p.name {
                        log.notice("\(p.name): interface renamed to \(name); the port keeps its old name")
                    }
                    p.linkChanged(isUp: isUp, mtu: mtu)
                }
            case .overrun:
                // Lost notifications: look at every port's interface again.
                for p in live {
                    if let f = route.facts(index: p.ifindex) {
                        p.linkChanged(isUp: f.isUp, mtu: f.mtu)
                    } else {
                        vanish(p)
                    }
                }
            }
        }
    }

    /// Stops (or restarts) `rings` and wakes their pollers, who then see
    /// EIO / POLLERR (or carry on).
    static func setStopped(_ rings: [Kring], _ stopped: Bool) {
        for k in rings {
            k.stopped.store(stopped, ordering: .releasing)
            k.wakeup()
        }
    }

    /// The link of `rings` went down (or came up): syncs wait for it, poll
    /// finds them not ready, and their pollers are woken when it is back.
    static func setLinkDown(_ rings: [Kring], _ down: Bool) {
        for k in rings { k.setLinkDown(down) }
    }
}
