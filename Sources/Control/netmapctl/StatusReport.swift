// The readable form of a status reply: a few lines about the daemon, then
// tables of ports, rings (with their counters) and clients.

import NetmapControl
import NetmapCore

struct StatusReport {
    let text: String

    init(_ s: ControlStatus) {
        let d = s.daemon
        let e = s.engine
        var out = ""
        out += "netmapd \(d.version), pid \(d.pid), up \(Self.duration(d.uptimeSeconds))\n"
        out += "front end   \(d.frontend), device \(d.device) (mode \(d.deviceMode)\(d.deviceGroup.map { ", group \($0)" } ?? ""))\n"
        out += "backend     \(d.backend)\n"
        out += "region      \(d.regionPath), \(Self.size(d.regionBytes))\n"
        let p = e.pool
        out += "pool        buffers \(p.totalBuffers) (\(p.freeBuffers) free), rings \(p.totalRings) (\(p.freeRings) free), "
            + "interfaces \(p.totalIfs) (\(p.freeIfs) free)\n"
        out += "registered  \(p.sessions) file(s) on \(p.ports) port(s)\n"

        out += "\nports:\n"
        if e.ports.isEmpty {
            out += "  (none)\n"
        } else {
            var t = Table(["PORT", "BACKEND", "TX RINGS", "RX RINGS", "HOST TX", "HOST RX", "FILES"],
                          right: [false, false, true, true, true, true, true])
            for port in e.ports {
                t.add([Self.portLabel(port), port.backend, "\(port.txRings)", "\(port.rxRings)", "\(port.hostTxRings)",
                       "\(port.hostRxRings)", "\(port.files)"])
            }
            out += t.render(indent: 2)
        }

        if let switches = e.switches {
            out += "\nVALE switches:\n"
            if switches.isEmpty {
                out += "  (none)\n"
            } else {
                var t = Table(["SWITCH", "PORT", "#", "KIND", "MEM ID", "VNET HDR", "TX PACKETS", "RX PACKETS", "RX DROPS"],
                              right: [false, false, true, false, true, true, true, true, true])
                for sw in switches {
                    for sp in sw.ports {
                        // The port's counters: its rings, summed per direction.
                        let rings = e.ports.first { $0.name == sp.port }?.rings ?? []
                        let tx = rings.filter { $0.direction == "tx" }.reduce(UInt64(0)) { $0 + $1.packets }
                        let rx = rings.filter { $0.direction == "rx" }.reduce(UInt64(0)) { $0 + $1.packets }
                        let drops = rings.filter { $0.direction == "rx" }.reduce(UInt64(0)) { $0 + $1.drops }
                        t.add(["\(sw.name) (\(sw.index))", sp.name, "\(sp.index)", sp.kind, "\(sp.memId)",
                               "\(sp.virtioHeader)", "\(tx)", "\(rx)", "\(drops)"])
                    }
                    if sw.ports.isEmpty { t.add(["\(sw.name) (\(sw.index))", "-", "", "", "", "", "", "", ""]) }
                }
                out += t.render(indent: 2)
                for sw in switches { out += "  \(sw.name): \(sw.learnt) learnt MAC address(es)\n" }
            }
        }

        let rings = e.ports.flatMap { port in port.rings.map { (Self.portLabel(port), $0) } }
        out += "\nrings:\n"
        if rings.isEmpty {
            out += "  (none)\n"
        } else {
            // The MONITORS column (issue #16) only when some ring has a monitor.
            let monitored = rings.contains { !($0.1.monitors ?? []).isEmpty }
            var t = Table(["PORT", "RING", "SLOTS", "USERS", "PACKETS", "BYTES", "DROPS", "BAD SLOTS"] + (monitored ? ["MONITORS"] : []),
                          right: [false, false, true, true, true, true, true, true] + (monitored ? [false] : []))
            for (name, r) in rings {
                t.add([name, "\(r.direction) \(r.index)\(r.host ? " host" : "")", "\(r.slots)", "\(r.users)",
                       "\(r.packets)", "\(r.bytes)", "\(r.drops)", "\(r.badSlots)"]
                      + (monitored ? [(r.monitors ?? []).joined(separator: " ")] : []))
            }
            out += t.render(indent: 2)
        }

        out += "\nclients:\n"
        if e.clients.isEmpty {
            out += "  (none)\n"
        } else {
            var t = Table(["PID", "PORT", "TX RINGS", "RX RINGS"], right: [true, false, false, false])
            for c in e.clients {
                t.add(["\(c.pid)", c.port ?? "(not registered)", Self.ranges(c.txRings), Self.ranges(c.rxRings)])
            }
            out += t.render(indent: 2)
        }
        text = out
    }

    /// "0-3,5" for [0,1,2,3,5]; "-" for none.
    static func ranges(_ ids: [Int]) -> String {
        let sorted = Array(Set(ids)).sorted()
        guard var start = sorted.first else { return "-" }
        var parts: [String] = []
        var prev = start
        for i in sorted.dropFirst() {
            if i == prev + 1 { prev = i; continue }
            parts.append(start == prev ? "\(start)" : "\(start)-\(prev)")
            start = i
            prev = i
        }
        parts.append(start == prev ? "\(start)" : "\(start)-\(prev)")
        return parts.joined(separator: ",")
    }

    static func duration(_ s: Int64) -> String {
        let d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60
        if d > 0 { return "\(d)d \(h)h \(m)m" }
        if h > 0 { return "\(h)h \(m)m \(sec)s" }
        if m > 0 { return "\(m)m \(sec)s" }
        return "\(sec)s"
    }

    /// A port's name, with its network namespace when not the daemon's.
    static func portLabel(_ p: EngineStatus.PortStatus) -> String {
        p.namespace.map { "\(p.name) [\($0)]" } ?? p.name
    }

    static func size(_ b: UInt64) -> String {
        if b >= 1 << 30 { return "\(b >> 30) GiB (\(b) bytes)" }
        if b >= 1 << 20 { return "\(b >> 20) MiB (\(b) bytes)" }
        return "\(b) bytes"
    }
}

/// Columns padded to their widest cell.
struct Table {
    let header: [String]
    let right: [Bool]
    var rows: [[String]] = []

    init(_ header: [String], right: [Bool]) {
        self.header = header
        self.right = right
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render(indent: Int) -> String {
        var width = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { width[i] = max(width[i], c.count) } }
        var out = ""
        for r in [header] + rows {
            var line = String(repeating: " ", count: indent)
            for (i, c) in r.enumerated() {
                let pad = String(repeating: " ", count: width[i] - c.count)
                let cell = right[i] ? pad + c : c + pad
                line += i == 0 ? cell : "  " + cell
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}
