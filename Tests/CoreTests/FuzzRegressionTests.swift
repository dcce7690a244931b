import Glibc
import CNetmapABI
import DeviceInterface
import NetmapCore
import Testing

/// Bugs the fuzzers (Fuzz/) found, kept as tests.
@Suite struct FuzzRegressionTests {
    /// Fuzz/Targets/Name: pipe endpoint names are ambiguous. "p{x}y" is the
    /// master of pipe ("p", "x}y") and also the slave of pipe ("p{x", "y").
    /// The registry filed endpoints by name, so creating the second pipe (a
    /// PORT_INFO_GET is enough) replaced and then destroyed the first one's
    /// registered master entry; the orphaned slave outlived both files, and
    /// registering it again unwrapped a ring that had no memory (a crash).
    @Test func pipesWithCollidingEndpointNamesStayApart() throws {
        let t = try TestEngine()
        let a = t.client()
        #expect(a.register("p{x}y", slots: 8).0 == 0)   // pipe ("p", "x}y"), master
        // Pipe ("p{x", "y"): created and dropped by the query; its slave is "p{x}y" too.
        let q = t.client()
        let body = q.memory.allocate(32)
        let h = q.place(TestClient.header("p{x{y", type: NETMAP_REQ_PORT_INFO_GET, body: body))
        #expect(q.file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(h)) == 0)
        // "p}x}y" is the slave of pipe ("p}x", "y") (the last '}'), a pipe
        // of its own, as in netmap; pipe ("p", "x}y")'s slave is spelled the
        // same way but cannot be opened by name.
        let b = t.client()
        #expect(b.register("p}x}y").0 == 0)
        let r = a.txRing(0)
        a.slot(r, 0).pointee.len = 60
        r.pointee.head = 1
        r.pointee.cur = 1
        #expect(a.txsync() == 0 && b.rxsync() == 0)
        #expect(b.rxRing(0).pointee.tail == 0)   // not connected to a
        a.close()
        #expect(b.txsync() == 0 && b.rxsync() == 0)
        b.close()
        q.close()
        #expect(t.engine.stats().ports == 0)
        let c = t.client()
        #expect(c.register("p}x}y").0 == 0)
        c.close()
        let s = t.engine.stats()
        #expect(s.sessions == 0 && s.ports == 0 && s.freeBuffers == s.totalBuffers && s.freeRings == s.totalRings)
    }

    /// Also from the name target: a null port's key "null:NAME" and a pipe
    /// whose parent is "null:..." no longer share a registry entry.
    @Test func nullPortAndPipeOfTheSameSpellingStayApart() throws {
        let t = try TestEngine()
        let n = t.client(), p = t.client()
        #expect(n.register("x{1", mode: NR_REG_NULL, txRings: 1, rxRings: 1, slots: 8, memId: 1).0 == 0)
        #expect(p.register("null:x{1", slots: 8).0 == 0)
        #expect(t.engine.registry.portNames.sorted() == ["null:x{1", "null:x{1", "null:x}1"])
        n.close()
        p.close()
        #expect(t.engine.stats().ports == 0)
    }

    /// Fuzz/Targets/Ctrl: an option whose 24-byte header ends exactly at the
    /// top of the address space: computing its body's address overflowed
    /// (a trap, the daemon gone) instead of failing with EFAULT.
    @Test func optionAtTheTopOfTheAddressSpaceIsEFAULT() throws {
        let t = try TestEngine()
        let file = t.engine.open(client: ClientIdentity(pid: 1))
        let hdr: UInt64 = 0x7000_0000_0000, body: UInt64 = 0x7000_0000_1000, opt = UInt64.max - 23
        var h = [UInt8](repeating: 0, count: 88)
        func put(_ b: inout [UInt8], _ off: Int, _ v: UInt64, _ n: Int) {
            for i in 0 ..< n { b[off + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        put(&h, 0, 14, 2)
        put(&h, 2, UInt64(NETMAP_REQ_REGISTER), 2)
        for (i, c) in "eth0".utf8.enumerated() { h[8 + i] = c }
        put(&h, 72, opt, 8)
        put(&h, 80, body, 8)
        var o = [UInt8](repeating: 0, count: 24)
        put(&o, 8, UInt64(NETMAP_REQ_OPT_SYNC_KLOOP_MODE), 4)   // a type with an 8-byte body
        var m = CallerMemory()
        m.add(CallerRange(address: hdr, length: 88), bytes: h)
        m.add(CallerRange(address: body, length: 56), bytes: [UInt8](repeating: 0, count: 56))
        m.add(CallerRange(address: opt, length: 24), bytes: o)
        guard case .complete(let e, _) = file.ioctl(command: NIOCCTRL, argument: hdr, memory: m) else {
            Issue.record("asked for more memory")
            return
        }
        #expect(e == EFAULT)
        file.release()
    }

    /// Fuzz/Targets/Ctrl, with the option walk in netmap's order (sizes
    /// after types): a SYNC_KLOOP_EVENTFDS option with nro_size >= 2^63 made
    /// its body size overflow Int (a trap) before the size check that now
    /// answers EMSGSIZE.
    @Test func hugeEventfdsOptionIsEMSGSIZE() throws {
        let t = try TestEngine()
        let c = t.client()
        let o = c.memory.allocate(24).bindMemory(to: nmreq_option.self, capacity: 1)
        o.pointee.nro_reqtype = UInt32(NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS)
        o.pointee.nro_size = 1 << 63
        let body = c.place(nmreq_port_info_get())
        let h = c.place(TestClient.header("", type: NETMAP_REQ_PORT_INFO_GET, body: UnsafeMutableRawPointer(body),
                                          options: UnsafeMutableRawPointer(o)))
        #expect(c.file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(h)) == EMSGSIZE)
        #expect(o.pointee.nro_status == 0)
    }
}
