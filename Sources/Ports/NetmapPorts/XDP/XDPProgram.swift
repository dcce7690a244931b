// The XDP program of one port: an XSKMAP with an entry per queue whose RX
// ring is in netmap mode, and a five-instruction program (nmd_xdp.c) that
// redirects a frame to the entry of its RX queue and passes it to the host
// stack when there is none. Attached while any ring of the port is in netmap
// mode, natively where the driver runs XDP, in the stack's generic hook when
// allowed and the driver cannot; detached only if it is still ours (an
// atomic replace-if-unchanged), so nobody else's program is ever removed.
//
// The program is named "netmapd_xsk": after a killed daemon, the next one
// detaches every program of that name it finds (XDPBackend.removeLeftovers).
// The killed daemon's sockets are gone by then, and with them their map
// entries, so until that restart the orphaned program passes everything.

#if canImport(Glibc)
import Glibc
#endif
import CXDPSys
import NetmapCore

/// Where the program runs.
public enum XDPAttachMode: String, Sendable, CaseIterable {
    /// Native where the driver has it, else the generic (skb) hook.
    case auto
    /// In the driver only.
    case native
    /// In the stack's generic hook (slower; works on any interface).
    case generic
}

final class XDPProgram: @unchecked Sendable {
    /// NMD_XDP_PROG_NAME: how leftovers are recognised.
    static let programName = "netmapd_xsk"
    let ifindex: Int32
    let name: String
    private let mapFd: Int32
    private let progFd: Int32
    let native: Bool
    let multiBuffer: Bool
    private let log: CoreLog
    private var attached = true

    private init(ifindex: Int32, name: String, mapFd: Int32, progFd: Int32, native: Bool, multiBuffer: Bool, log: CoreLog) {
        self.log = log
        self.ifindex = ifindex
        self.name = name
        self.mapFd = mapFd
        self.progFd = progFd
        self.native = native
        self.multiBuffer = multiBuffer
    }

    deinit {
        close(progFd)
        close(mapFd)
    }

    /// Loads and attaches the program with an empty map of `queues` entries.
    /// EBUSY if the interface runs another program.
    static func attach(ifindex: Int32, name: String, queues: Int, mode: XDPAttachMode,
                       log: CoreLog) throws(NetmapError) -> XDPProgram {
        let map = nmd_xsk_map_create(UInt32(max(1, queues)))
        guard map >= 0 else {
            log.warning("\(name): cannot create the xsks map: errno \(-map)")
            throw NetmapError(-map)
        }
        var frags: Int32 = 0
        let prog = nmd_xdp_prog_load(map, &frags)
        guard prog >= 0 else {
            close(map)
            log.warning("\(name): the kernel refused the XDP program: errno \(-prog)")
            throw NetmapError(-prog)
        }
        var rc: Int32 = -EOPNOTSUPP
        var native = false
        if mode != .generic {
            rc = nmd_xdp_attach(ifindex, prog, Int32(NMD_XDP_NATIVE.rawValue))
            native = rc == 0
        }
        if rc != 0 && rc != -EBUSY && rc != -EEXIST && mode != .native {
            rc = nmd_xdp_attach(ifindex, prog, Int32(NMD_XDP_GENERIC.rawValue))
        }
        guard rc == 0 else {
            close(prog)
            close(map)
            if rc == -EBUSY || rc == -EEXIST {
                log.info("\(name): another XDP program is attached; not replacing it: EBUSY")
                throw .EBUSY
            }
            log.info("\(name): cannot attach the XDP program (\(mode == .native ? "native" : "native or generic")): errno \(-rc)")
            throw NetmapError(-rc)
        }
        log.debug("\(name): XDP program \(Self.programName) attached (\(native ? "native" : "generic")\(frags != 0 ? ", multi-buffer" : ""))")
        return XDPProgram(ifindex: ifindex, name: name, mapFd: map, progFd: prog, native: native,
                          multiBuffer: frags != 0, log: log)
    }

    /// Frames of RX queue `queue` go to socket `fd` from now on.
    func point(queue: Int, at fd: Int32) -> Int32 {
        nmd_xsk_map_set(mapFd, UInt32(queue), fd)
    }

    /// Frames of RX queue `queue` go to the host stack again.
    func unpoint(queue: Int) -> Int32 {
        nmd_xsk_map_clear(mapFd, UInt32(queue))
    }

    /// Detaches the program if it is still the one attached.
    func detach() {
        guard attached else { return }
        attached = false
        let mode = Int32(native ? NMD_XDP_NATIVE.rawValue : NMD_XDP_GENERIC.rawValue)
        let rc = nmd_xdp_detach(ifindex, progFd, mode)
        if rc != 0 && rc != -ENODEV && rc != -EEXIST && rc != -ENOENT {
            log.warning("\(name): cannot detach the XDP program: errno \(-rc)")
        }
    }

    /// The interface is gone, and the program with it.
    func forget() { attached = false }
}
