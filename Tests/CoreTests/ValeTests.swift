import Glibc
import CNetmapABI
import DeviceInterface
import NetmapCore
import Testing

/// §11: VALE switches: ephemeral ports, the learning bridge, memory ids,
/// the control requests and their errors.
@Suite struct ValeTests {
    let t: TestEngine
    init() throws { t = try TestEngine(nics: [FakeNIC(name: "eth0"), FakeNIC(name: "eth1", txRings: 2, rxRings: 2, slots: 64)]) }

    static func mac(_ last: UInt8) -> [UInt8] { [0x02, 0, 0, 0, 0, last] }
    static let bcast: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]

    /// A frame from `src` to `dst` whose payload says `tag`.
    static func frame(_ dst: [UInt8], _ src: [UInt8], tag: UInt8, len: Int = 60) -> [UInt8] {
        var f = dst + src + [0x88, 0xb5]
        while f.count < len { f.append(tag &+ UInt8(truncatingIfNeeded: f.count)) }
        return f
    }

    /// Puts frames in TX ring 0 (each split into `frags` slots) and syncs.
    @discardableResult
    static func send(_ c: TestClient, _ frames: [[UInt8]], frags: Int = 1, ring: Int = 0) -> Int32 {
        let r = c.txRing(ring)
        var h = r.pointee.head
        for f in frames {
            let per = (f.count + frags - 1) / frags
            var off = 0
            for i in 0 ..< frags {
                let s = c.slot(r, h)
                let part = Array(f[off ..< min(f.count, off + per)])
                part.withUnsafeBytes { c.buf(r, s.pointee.buf_idx).copyMemory(from: $0.baseAddress!, byteCount: part.count) }
                s.pointee.len = UInt16(part.count)
                s.pointee.flags = i + 1 < frags ? UInt16(NS_MOREFRAG) : 0
                off += part.count
                h = next(r, h)
            }
        }
        r.pointee.head = h
        r.pointee.cur = h
        return c.txsync()
    }

    /// Everything readable on RX ring 0, as frames (fragments joined), released.
    static func receive(_ c: TestClient, ring: Int = 0) -> [[UInt8]] {
        #expect(c.rxsync() == 0)
        let r = c.rxRing(ring)
        var out = [[UInt8]]()
        var cur = [UInt8]()
        var h = r.pointee.head
        while h != r.pointee.tail {
            let s = c.slot(r, h)
            cur += Array(UnsafeRawBufferPointer(start: c.buf(r, s.pointee.buf_idx), count: Int(s.pointee.len)))
            if s.pointee.flags & UInt16(NS_MOREFRAG) == 0 {
                out.append(cur)
                cur = []
            }
            h = next(r, h)
        }
        r.pointee.head = h
        r.pointee.cur = h
        #expect(c.rxsync() == 0)
        return out
    }

    func ctrl(_ c: TestClient, _ name: String, _ type: Int32, _ body: UnsafeMutableRawPointer?) -> (Int32, nmreq_header) {
        let p = c.place(TestClient.header(name, type: type, body: body))
        let e = c.file.ioctl(NIOCCTRL, UnsafeMutableRawPointer(p))
        return (e, p.pointee)
    }

    @Test func ephemeralPortsComeAndGoWithTheirFilesAndHaveTheirOwnMemoryIds() {
        let a = t.client(), b = t.client()
        let (ea, ra) = a.register("vale0:a")
        #expect(ea == 0)
        #expect(ra.nr_tx_rings == 1 && ra.nr_rx_rings == 1 && ra.nr_tx_slots == 1024 && ra.nr_rx_slots == 1024)
        #expect(ra.nr_host_tx_rings == 0 && ra.nr_host_rx_rings == 0)
        #expect(ra.nr_mem_id == 2)
        #expect(nameString(a.nifp.pointee.ni_name) == "vale0:a")
        let (eb, rb) = b.register("vale0:b", txRings: 20, rxRings: 3, slots: 200)
        #expect(eb == 0)
        #expect(rb.nr_tx_rings == 16 && rb.nr_rx_rings == 3 && rb.nr_tx_slots == 200 && rb.nr_mem_id == 3)
        // A second file on an existing port shares it (and its id).
        let a2 = t.client()
        #expect(a2.register("vale0:a", slots: 64).1.nr_mem_id == 2)
        #expect(a2.register("vale0:a").0 == EBUSY)
        let st = t.engine.status()
        #expect(st.switches?.count == 1)
        #expect(st.switches?.first?.ports.map(\.name) == ["vale0:a", "vale0:b"])
        #expect(st.switches?.first?.ports.map(\.index) == [0, 1])
        a.close(); a2.close(); b.close()
        #expect(t.engine.status().switches == [])
        #expect(t.engine.stats().ports == 0)
        // The ids are free again: the next port gets 2 again, as in netmap.
        let c = t.client()
        #expect(c.register("vale1:z").1.nr_mem_id == 2)
        c.close()
    }

    @Test func exclusiveAndRingSelection() {
        let a = t.client(), b = t.client()
        #expect(a.register("vale0:a", flags: UInt64(NR_EXCLUSIVE), txRings: 2, rxRings: 2).0 == 0)
        #expect(b.register("vale0:a").0 == EBUSY)
        a.close()
        #expect(b.register("vale0:a", mode: NR_REG_ONE_NIC, ringid: 1, txRings: 2, rxRings: 2).0 == 0)
        #expect(b.ringOfs(0) == 0 && b.ringOfs(1) != 0)
        let c = t.client()
        #expect(c.register("vale0:c", mode: NR_REG_SW).0 == EINVAL)   // no host rings
        #expect(c.register("vale0:c", mode: NR_REG_NIC_SW).0 == EINVAL)
        #expect(c.register("vale0:c", mode: NR_REG_ONE_NIC, ringid: 1).0 == EINVAL)
        #expect(c.register("vale0:c", memId: 9).0 == EINVAL)          // no such allocator
        #expect(c.register("vale0:c", memId: 2).1.nr_mem_id == 2)      // a's allocator, still alive through b
    }

    @Test func namesFollowNetmapsRules() {
        let c = t.client()
        #expect(c.register("vale0").0 == ENOMEM)                       // no ':'
        #expect(c.register("vale-0:a").0 == ENOMEM)                    // bad bridge character
        #expect(c.register("vale0123456789abc:a").0 == ENOMEM)         // ':' beyond 16 characters
        #expect(c.register("vale0:0123456789abcdef").0 == ENOMEM)      // ':' + port > 16
        #expect(c.register("vale0:eth0").0 == EINVAL)                  // an interface: attach only
        #expect(c.register("vale0:0123456789abcde").0 == 0)            // exactly 16 with the ':'
        c.close()
        // Eight bridges, then no room for a ninth.
        var held = [TestClient]()
        for i in 0 ..< 8 {
            let x = t.client()
            #expect(x.register("vale\(i):p", slots: 8).0 == 0)
            held.append(x)
        }
        #expect(t.client().register("valeX:p").0 == ENOMEM)
        #expect(t.client().register("vale3:q", slots: 8).0 == 0)         // an existing bridge takes more
    }

    @Test func portInfoPoolsInfoAndHeaders() {
        let a = t.client()
        #expect(a.register("vale0:a", txRings: 2, slots: 256).0 == 0)
        var pi = nmreq_port_info_get()
        let pip = a.place(pi)
        #expect(ctrl(a, "vale0:a", NETMAP_REQ_PORT_INFO_GET, UnsafeMutableRawPointer(pip)).0 == 0)
        #expect(pip.pointee.nr_mem_id == 2 && pip.pointee.nr_tx_rings == 2 && pip.pointee.nr_tx_slots == 256)
        // A missing VALE port is not made for the question.
        #expect(ctrl(a, "vale0:zz", NETMAP_REQ_PORT_INFO_GET, UnsafeMutableRawPointer(a.place(pi))).0 == EINVAL)
        #expect(ctrl(a, "vale0", NETMAP_REQ_PORT_INFO_GET, UnsafeMutableRawPointer(a.place(pi))).0 == ENOMEM)
        // An empty name with the VALE id: that allocator.
        pi.nr_mem_id = 2
        let byId = a.place(pi)
        #expect(ctrl(a, "", NETMAP_REQ_PORT_INFO_GET, UnsafeMutableRawPointer(byId)).0 == 0)
        #expect(byId.pointee.nr_mem_id == 2 && byId.pointee.nr_memsize == UInt64(t.region.size))
        pi.nr_mem_id = 3
        #expect(ctrl(a, "", NETMAP_REQ_PORT_INFO_GET, UnsafeMutableRawPointer(a.place(pi))).0 == EINVAL)
        let pools = a.place(nmreq_pools_info())
        #expect(ctrl(a, "vale0:a", NETMAP_REQ_POOLS_INFO_GET, UnsafeMutableRawPointer(pools)).0 == 0)
        #expect(pools.pointee.nr_mem_id == 2 && pools.pointee.nr_buf_pool_objsize == 2048)

        var hdr = nmreq_port_hdr()
        hdr.nr_hdr_len = 7
        #expect(ctrl(a, "vale0:a", NETMAP_REQ_PORT_HDR_SET, UnsafeMutableRawPointer(a.place(hdr))).0 == EINVAL)
        hdr.nr_hdr_len = 12
        #expect(ctrl(a, "vale0:nope", NETMAP_REQ_PORT_HDR_SET, UnsafeMutableRawPointer(a.place(hdr))).0 == ENXIO)
        #expect(ctrl(a, "eth0", NETMAP_REQ_PORT_HDR_SET, UnsafeMutableRawPointer(a.place(hdr))).0 == ENXIO)
        #expect(ctrl(a, "vale0:a", NETMAP_REQ_PORT_HDR_SET, UnsafeMutableRawPointer(a.place(hdr))).0 == 0)
        let got = a.place(nmreq_port_hdr())
        #expect(ctrl(a, "vale0:a", NETMAP_REQ_PORT_HDR_GET, UnsafeMutableRawPointer(got)).0 == 0)
        #expect(got.pointee.nr_hdr_len == 12)
        #expect(ctrl(a, "vale0:b", NETMAP_REQ_PORT_HDR_GET, UnsafeMutableRawPointer(got)).0 == ENXIO)
        // A port with a header wants NR_ACCEPT_VNET_HDR.
        #expect(t.client().register("vale0:a").0 == EIO)
        #expect(t.client().register("vale0:a", flags: UInt64(NR_ACCEPT_VNET_HDR)).0 == 0)
    }

    @Test func learningUnicastBroadcastAndNoHairpin() {
        let a = t.client(), b = t.client(), c = t.client()
        for (x, n) in [(a, "a"), (b, "b"), (c, "c")] { #expect(x.register("vale0:\(n)").0 == 0) }
        let A = Self.mac(1), B = Self.mac(2), C = Self.mac(3)
        // Unknown destination: flooded to all but the sender.
        #expect(Self.send(a, [Self.frame(B, A, tag: 1)]) == 0)
        #expect(Self.receive(b) == [Self.frame(B, A, tag: 1)])
        #expect(Self.receive(c) == [Self.frame(B, A, tag: 1)])
        #expect(Self.receive(a).isEmpty)
        // Everyone has spoken once: unicast reaches only its destination.
        Self.send(b, [Self.frame(A, B, tag: 2)])
        Self.send(c, [Self.frame(A, C, tag: 3)])
        #expect(Self.receive(a) == [Self.frame(A, B, tag: 2), Self.frame(A, C, tag: 3)])
        #expect(Self.receive(b).isEmpty && Self.receive(c).isEmpty)
        Self.send(a, [Self.frame(C, A, tag: 4), Self.frame(B, A, tag: 5)])
        #expect(Self.receive(c) == [Self.frame(C, A, tag: 4)])
        #expect(Self.receive(b) == [Self.frame(B, A, tag: 5)])
        // Broadcast and multicast reach all others.
        Self.send(b, [Self.frame(Self.bcast, B, tag: 6), Self.frame([0x01, 0, 0x5e, 0, 0, 1], B, tag: 7)])
        #expect(Self.receive(a).count == 2 && Self.receive(c).count == 2 && Self.receive(b).isEmpty)
        // To oneself: dropped. Shorter than an Ethernet header: dropped.
        Self.send(a, [Self.frame(A, A, tag: 8), [1, 2, 3]])
        #expect(Self.receive(b).isEmpty && Self.receive(c).isEmpty && Self.receive(a).isEmpty)
        // Counters: what each TX ring took, what each RX ring delivered.
        let ports = t.engine.status().ports
        let ra = ports.first { $0.name == "vale0:a" }!.rings
        #expect(ra.first { $0.direction == "tx" }!.packets == 5)
        #expect(ra.first { $0.direction == "rx" }!.packets == 4)
        // The TX ring is reclaimed whole.
        let r = a.txRing(0)
        #expect(r.pointee.tail == (r.pointee.head + r.pointee.num_slots - 1) % r.pointee.num_slots)
    }

    @Test func aFullReceiverDropsOnlyForItselfAndCounts() {
        let a = t.client(), b = t.client(), c = t.client()
        #expect(a.register("vale0:a", slots: 64).0 == 0)
        #expect(b.register("vale0:b", slots: 8).0 == 0)
        #expect(c.register("vale0:c", slots: 64).0 == 0)
        let frames = (0 ..< 20).map { Self.frame(Self.bcast, Self.mac(1), tag: UInt8($0)) }
        #expect(Self.send(a, frames) == 0)
        #expect(Self.receive(c) == frames)
        #expect(Self.receive(b) == Array(frames.prefix(7)))   // 8 slots: 7 usable
        let rb = t.engine.status().ports.first { $0.name == "vale0:b" }!.rings.first { $0.direction == "rx" }!
        #expect(rb.drops == 13)
        // Room again after the release.
        Self.send(a, [frames[0]])
        #expect(Self.receive(b) == [frames[0]])
    }

    @Test func fragmentChainsStayTogetherAndMultiRingPortsUseTheSameRing() {
        let a = t.client(), b = t.client()
        #expect(a.register("vale0:a", txRings: 2, rxRings: 2).0 == 0)
        #expect(b.register("vale0:b", txRings: 2, rxRings: 2).0 == 0)
        let f = Self.frame(Self.bcast, Self.mac(1), tag: 9, len: 3000)
        #expect(Self.send(a, [f], frags: 3) == 0)
        let rr = b.rxRing(0)
        #expect(b.rxsync() == 0)
        #expect((rr.pointee.tail + rr.pointee.num_slots - rr.pointee.head) % rr.pointee.num_slots == 3)
        #expect(b.slot(rr, rr.pointee.head).pointee.flags & UInt16(NS_MOREFRAG) != 0)
        #expect(Self.receive(b) == [f])
        // Unicast from TX ring 1 lands on RX ring 1 (broadcast always on 0).
        Self.send(b, [Self.frame(Self.mac(1), Self.mac(2), tag: 1)])   // teaches mac 2
        _ = Self.receive(a)
        Self.send(a, [Self.frame(Self.mac(2), Self.mac(1), tag: 2)], ring: 1)
        #expect(Self.receive(b, ring: 1) == [Self.frame(Self.mac(2), Self.mac(1), tag: 2)])
    }

    @Test func headersAreConvertedBetweenPortsOfDifferentLengths() {
        let a = t.client(), b = t.client()
        #expect(a.register("vale0:a").0 == 0)
        var hdr = nmreq_port_hdr()
        hdr.nr_hdr_len = 10
        #expect(ctrl(a, "vale0:a", NETMAP_REQ_PORT_HDR_SET, UnsafeMutableRawPointer(a.place(hdr))).0 == 0)
        #expect(b.register("vale0:b").0 == 0)
        let f = Self.frame(Self.bcast, Self.mac(1), tag: 3)
        // a's frames carry 10 header bytes; b gets the bare frame, and back.
        Self.send(a, [[UInt8](repeating: 0xee, count: 10) + f])
        #expect(Self.receive(b) == [f])
        Self.send(b, [f])
        #expect(Self.receive(a) == [[UInt8](repeating: 0, count: 10) + f])
    }

    @Test func valeListEnumeratesAsNetmapDoes() {
        var held = [TestClient]()
        for n in ["vale0:a", "vale0:b", "vale1:x"] {
            let c = t.client()
            #expect(c.register(n, slots: 8).0 == 0)
            held.append(c)
        }
        let c = t.client()
        var found = [String]()
        var l = nmreq_vale_list()
        while true {
            let p = c.place(l)
            let (e, h) = ctrl(c, "", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(p))
            if e != 0 {
                #expect(e == ENOENT)
                break
            }
            found.append("\(p.pointee.nr_bridge_idx)/\(p.pointee.nr_port_idx) \(nameString(h.nr_name))")
            l = p.pointee
            l.nr_port_idx += 1
        }
        #expect(found == ["0/0 vale0:a", "0/1 vale0:b", "1/0 vale1:x"])
        let named = c.place(nmreq_vale_list())
        #expect(ctrl(c, "vale0:b", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == 0)
        #expect(named.pointee.nr_bridge_idx == 0 && named.pointee.nr_port_idx == 1)
        #expect(ctrl(c, "vale1:nope", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == 0)
        #expect(named.pointee.nr_bridge_idx == 1 && named.pointee.nr_port_idx == 255)
        #expect(ctrl(c, "vale7:a", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == ENOENT)
        #expect(ctrl(c, "eth0", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == EINVAL)
        // A port leaving gives its number to the next one.
        held[0].close()
        let d = t.client()
        #expect(d.register("vale0:d", slots: 8).0 == 0)
        #expect(ctrl(c, "vale0:d", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == 0)
        #expect(named.pointee.nr_port_idx == 0)
    }

    @Test func switchManagementErrors() {
        let a = t.client()
        #expect(a.register("vale0:a").0 == 0)
        let c = t.client()
        func attach(_ n: String, mode: UInt32 = UInt32(NR_REG_ALL_NIC), ringid: UInt16 = 0, memId: UInt16 = 0) -> Int32 {
            var b = nmreq_vale_attach()
            b.reg.nr_mode = mode
            b.reg.nr_ringid = ringid
            b.reg.nr_mem_id = memId
            return ctrl(c, n, NETMAP_REQ_VALE_ATTACH, UnsafeMutableRawPointer(c.place(b))).0
        }
        #expect(attach("eth0") == EINVAL)                  // no VALE prefix
        #expect(attach("vale0:a") == EBUSY)                // already a port
        #expect(attach("vale0:nosuch") == EINVAL)          // not an interface
        #expect(attach("vale0") == ENOMEM)                 // bad bridge name
        #expect(attach("vale0:eth0", memId: 40) == EINVAL)
        #expect(attach("vale0:eth0", ringid: 1) == EINVAL)
        #expect(attach("vale0:eth0", mode: UInt32(NR_REG_ONE_NIC)) == EINVAL)
        #expect(attach("vale0:eth0", mode: UInt32(NR_REG_NIC_SW)) == 0)   // with its host rings
        #expect(attach("vale0:eth0") == EBUSY)
        let det = c.place(nmreq_vale_detach())
        #expect(ctrl(c, "eth0", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == EINVAL)
        #expect(ctrl(c, "vale0:nosuch", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == ENXIO)
        #expect(ctrl(c, "vale0:a", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == EINVAL)   // not attached
        let nif = c.place(nmreq_vale_newif())
        #expect(ctrl(c, "vale0", NETMAP_REQ_VALE_NEWIF, UnsafeMutableRawPointer(nif)).0 == EINVAL)
        #expect(ctrl(c, "0123456789abcdef", NETMAP_REQ_VALE_NEWIF, UnsafeMutableRawPointer(nif)).0 == EINVAL)
        #expect(ctrl(c, "eth0", NETMAP_REQ_VALE_NEWIF, UnsafeMutableRawPointer(nif)).0 == EEXIST)
        #expect(ctrl(c, "v0", NETMAP_REQ_VALE_NEWIF, UnsafeMutableRawPointer(nif)).0 == EOPNOTSUPP)
        #expect(ctrl(c, "v0", NETMAP_REQ_VALE_DELIF, nil).0 == ENXIO)
        #expect(ctrl(c, "eth0", NETMAP_REQ_VALE_DELIF, nil).0 == EINVAL)
        let pol = c.place(nmreq_vale_polling())
        #expect(ctrl(c, "eth0", NETMAP_REQ_VALE_POLLING_ENABLE, UnsafeMutableRawPointer(pol)).0 == EINVAL)
        #expect(ctrl(c, "vale0:zz", NETMAP_REQ_VALE_POLLING_ENABLE, UnsafeMutableRawPointer(pol)).0 == ENXIO)
        #expect(ctrl(c, "vale0:a", NETMAP_REQ_VALE_POLLING_DISABLE, UnsafeMutableRawPointer(pol)).0 == EOPNOTSUPP)
    }

    @Test func anAttachedNICBridgesItsTrafficAndBelongsToTheSwitch() {
        let c = t.client()
        func attach(_ n: String) -> (Int32, UInt32) {
            var b = nmreq_vale_attach()
            b.reg.nr_mode = UInt32(NR_REG_ALL_NIC)
            let p = c.place(b)
            return (ctrl(c, n, NETMAP_REQ_VALE_ATTACH, UnsafeMutableRawPointer(p)).0, p.pointee.port_index)
        }
        let a = t.client()
        #expect(a.register("vale0:a").0 == 0)
        #expect(attach("vale0:eth1") == (0, 1))
        #expect(attach("vale0:eth1").0 == EBUSY)               // already a port
        #expect(attach("vale1:eth1").0 == EBUSY)               // the NIC is taken
        #expect(t.client().register("eth1").0 == EBUSY)        // owned by the switch
        #expect(t.client().register("vale0:eth1").0 == EBUSY)
        let named = c.place(nmreq_vale_list())
        #expect(ctrl(c, "vale0:eth1", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == 0)
        #expect(named.pointee.nr_port_idx == 1)
        #expect(t.engine.status().switches?.first?.ports.map(\.kind) == ["ephemeral", "nic"])

        // Port -> NIC: flooded (unknown), then unicast once the NIC's station spoke.
        let nic = t.nics.nics["eth1"]!
        let X = Self.mac(0x42)
        Self.send(a, [Self.frame(X, Self.mac(1), tag: 1)])
        #expect(nic.sent.withLock { $0 } == [Self.frame(X, Self.mac(1), tag: 1)])
        // NIC -> port: the NIC's RX wake-up pumps its frames into the switch.
        nic.inject(Self.frame(Self.mac(1), X, tag: 2), ring: 1)
        let nicAdapter = t.engine.registry.allAdapters.first { $0.name == "eth1" }!
        nicAdapter.rxKrings[1].wakeup()
        #expect(Self.receive(a) == [Self.frame(Self.mac(1), X, tag: 2)])
        // Learnt: unicast to X from TX ring 0 goes to NIC TX ring 0 alone.
        Self.send(a, [Self.frame(X, Self.mac(1), tag: 3)])
        #expect(nic.sent.withLock { $0 }.last == Self.frame(X, Self.mac(1), tag: 3))
        let st = t.engine.status().ports.first { $0.name == "eth1" }!
        #expect(st.rings.filter { $0.direction == "tx" }.reduce(0) { $0 + $1.packets } == 2)
        #expect(st.rings.filter { $0.direction == "rx" }.reduce(0) { $0 + $1.packets } == 1)

        // Detach: the NIC is free again, the port number is reported.
        let det = c.place(nmreq_vale_detach())
        #expect(ctrl(c, "vale0:eth1", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == 0)
        #expect(det.pointee.port_index == 1)
        #expect(ctrl(c, "vale0:eth1", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == ENXIO)
        let e = t.client()
        #expect(e.register("eth1").0 == 0)
        #expect(attach("vale0:eth1").0 == EBUSY)               // in netmap mode for a program
        e.close()
        a.close()
        #expect(t.engine.stats().ports == 0)
    }

    @Test func anAttachedNICsHostRingsAreASecondPort() {
        let c = t.client()
        var b = nmreq_vale_attach()
        b.reg.nr_mode = UInt32(NR_REG_NIC_SW)
        let p = c.place(b)
        #expect(ctrl(c, "vale1:eth0", NETMAP_REQ_VALE_ATTACH, UnsafeMutableRawPointer(p)).0 == 0)
        #expect(p.pointee.port_index == 0)
        let named = c.place(nmreq_vale_list())
        #expect(ctrl(c, "vale1:eth0^", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == 0)
        #expect(named.pointee.nr_port_idx == 1)
        #expect(t.client().register("vale1:eth0^").0 == EBUSY)
        #expect(t.engine.status().switches?.first?.ports.map(\.kind) == ["nic", "host"])
        let a = t.client()
        #expect(a.register("vale1:a").0 == 0)
        // A broadcast reaches the NIC's TX ring and its host TX ring.
        let nic = t.nics.nics["eth0"]!
        Self.send(a, [Self.frame(Self.bcast, Self.mac(1), tag: 5)])
        #expect(nic.sent.withLock { $0 }.count == 2)
        // What the host stack sends (host RX ring) enters the switch from port eth0^.
        nic.inject(Self.frame(Self.mac(1), Self.mac(0x77), tag: 6), ring: 1)
        t.engine.registry.allAdapters.first { $0.name == "eth0" }!.rxKrings[1].wakeup()
        #expect(Self.receive(a) == [Self.frame(Self.mac(1), Self.mac(0x77), tag: 6)])
        // Learnt behind eth0^: unicast to it goes to the host TX ring only.
        Self.send(a, [Self.frame(Self.mac(0x77), Self.mac(1), tag: 7)])
        #expect(nic.sent.withLock { $0 }.count == 3)
        let st = t.engine.status().ports.first { $0.name == "eth0" }!
        #expect(st.rings.first { $0.direction == "tx" && $0.host }!.packets == 2)
        // Detaching the NIC takes its host port along.
        let det = c.place(nmreq_vale_detach())
        #expect(ctrl(c, "vale1:eth0^", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == EINVAL)
        #expect(ctrl(c, "vale1:eth0", NETMAP_REQ_VALE_DETACH, UnsafeMutableRawPointer(det)).0 == 0)
        #expect(ctrl(c, "vale1:eth0^", NETMAP_REQ_VALE_LIST, UnsafeMutableRawPointer(named)).0 == 0)
        #expect(named.pointee.nr_port_idx == 255)
        a.close()
        #expect(t.engine.stats().ports == 0)
    }
}
