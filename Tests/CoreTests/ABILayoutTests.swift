import Glibc
import CNetmapABI
import Testing

/// Every struct of §1.3 has exactly the size and offsets netmap programs use.
/// (The C compiler checks the same table in netmapd_abi.c; this checks what
/// Swift sees through the module.)
@Suite struct ABILayoutTests {
    @Test func slotLayout() {
        #expect(MemoryLayout<netmap_slot>.size == 16)
        #expect(MemoryLayout<netmap_slot>.offset(of: \netmap_slot.len) == 4)
        #expect(MemoryLayout<netmap_slot>.offset(of: \netmap_slot.flags) == 6)
        #expect(MemoryLayout<netmap_slot>.offset(of: \netmap_slot.ptr) == 8)
    }

    @Test func ringLayout() {
        #expect(MemoryLayout<netmap_ring>.size == 256)
        // (Its 128-byte alignment is checked by the C compiler: Swift imports
        // the struct without the over-aligned attribute.)
        let o: [(PartialKeyPath<netmap_ring>, Int)] = [
            (\netmap_ring.buf_ofs, 0), (\netmap_ring.num_slots, 8), (\netmap_ring.nr_buf_size, 12),
            (\netmap_ring.ringid, 16), (\netmap_ring.dir, 18), (\netmap_ring.head, 20), (\netmap_ring.cur, 24),
            (\netmap_ring.tail, 28), (\netmap_ring.flags, 32), (\netmap_ring.ts, 40), (\netmap_ring.offset_mask, 56),
            (\netmap_ring.buf_align, 64), (\netmap_ring.sem, 128),
        ]
        for (kp, off) in o { #expect(MemoryLayout<netmap_ring>.offset(of: kp) == off, "\(kp)") }
    }

    @Test func interfaceLayout() {
        #expect(MemoryLayout<netmap_if>.size == 56)
        let o: [(PartialKeyPath<netmap_if>, Int)] = [
            (\netmap_if.ni_version, 16), (\netmap_if.ni_flags, 20), (\netmap_if.ni_tx_rings, 24),
            (\netmap_if.ni_rx_rings, 28), (\netmap_if.ni_bufs_head, 32), (\netmap_if.ni_host_tx_rings, 36),
            (\netmap_if.ni_host_rx_rings, 40), (\netmap_if.ni_spare1, 44),
        ]
        for (kp, off) in o { #expect(MemoryLayout<netmap_if>.offset(of: kp) == off, "\(kp)") }
    }

    @Test func legacyRequestLayout() {
        #expect(MemoryLayout<nmreq>.size == 60)
        let o: [(PartialKeyPath<nmreq>, Int)] = [
            (\nmreq.nr_version, 16), (\nmreq.nr_offset, 20), (\nmreq.nr_memsize, 24), (\nmreq.nr_tx_slots, 28),
            (\nmreq.nr_rx_slots, 32), (\nmreq.nr_tx_rings, 36), (\nmreq.nr_rx_rings, 38), (\nmreq.nr_ringid, 40),
            (\nmreq.nr_cmd, 42), (\nmreq.nr_arg1, 44), (\nmreq.nr_arg2, 46), (\nmreq.nr_arg3, 48),
            (\nmreq.nr_flags, 52), (\nmreq.spare2, 56),
        ]
        for (kp, off) in o { #expect(MemoryLayout<nmreq>.offset(of: kp) == off, "\(kp)") }
        #expect(MemoryLayout<nm_ifreq>.size == 272)
    }

    @Test func controlRequestLayouts() {
        #expect(MemoryLayout<nmreq_header>.size == 88)
        #expect(MemoryLayout<nmreq_header>.offset(of: \nmreq_header.nr_reserved) == 4)
        #expect(MemoryLayout<nmreq_header>.offset(of: \nmreq_header.nr_name) == 8)
        #expect(MemoryLayout<nmreq_header>.offset(of: \nmreq_header.nr_options) == 72)
        #expect(MemoryLayout<nmreq_header>.offset(of: \nmreq_header.nr_body) == 80)
        #expect(MemoryLayout<nmreq_option>.size == 24)
        #expect(MemoryLayout<nmreq_option>.offset(of: \nmreq_option.nro_status) == 12)
        #expect(MemoryLayout<nmreq_option>.offset(of: \nmreq_option.nro_size) == 16)

        #expect(MemoryLayout<nmreq_register>.size == 56)
        let r: [(PartialKeyPath<nmreq_register>, Int)] = [
            (\nmreq_register.nr_memsize, 8), (\nmreq_register.nr_tx_slots, 16), (\nmreq_register.nr_rx_slots, 20),
            (\nmreq_register.nr_tx_rings, 24), (\nmreq_register.nr_rx_rings, 26), (\nmreq_register.nr_host_tx_rings, 28),
            (\nmreq_register.nr_host_rx_rings, 30), (\nmreq_register.nr_mem_id, 32), (\nmreq_register.nr_ringid, 34),
            (\nmreq_register.nr_mode, 36), (\nmreq_register.nr_extra_bufs, 40), (\nmreq_register.nr_flags, 48),
        ]
        for (kp, off) in r { #expect(MemoryLayout<nmreq_register>.offset(of: kp) == off, "\(kp)") }

        #expect(MemoryLayout<nmreq_port_info_get>.size == 32)
        #expect(MemoryLayout<nmreq_port_info_get>.offset(of: \nmreq_port_info_get.nr_tx_rings) == 16)
        #expect(MemoryLayout<nmreq_port_info_get>.offset(of: \nmreq_port_info_get.nr_host_rx_rings) == 22)
        #expect(MemoryLayout<nmreq_port_info_get>.offset(of: \nmreq_port_info_get.nr_mem_id) == 24)
        #expect(MemoryLayout<nmreq_vale_attach>.size == 64)
        #expect(MemoryLayout<nmreq_vale_attach>.offset(of: \nmreq_vale_attach.port_index) == 56)
        #expect(MemoryLayout<nmreq_vale_detach>.size == 8)
        #expect(MemoryLayout<nmreq_vale_list>.size == 8)
        #expect(MemoryLayout<nmreq_vale_list>.offset(of: \nmreq_vale_list.nr_port_idx) == 4)
        #expect(MemoryLayout<nmreq_port_hdr>.size == 8)
        #expect(MemoryLayout<nmreq_vale_newif>.size == 16)
        #expect(MemoryLayout<nmreq_vale_newif>.offset(of: \nmreq_vale_newif.nr_mem_id) == 12)
        #expect(MemoryLayout<nmreq_vale_polling>.size == 16)
        #expect(MemoryLayout<nmreq_sync_kloop_start>.size == 8)
        #expect(MemoryLayout<nm_csb_atok>.size == 64)
        #expect(MemoryLayout<nm_csb_ktoa>.size == 64)

        #expect(MemoryLayout<nmreq_pools_info>.size == 64)
        let p: [(PartialKeyPath<nmreq_pools_info>, Int)] = [
            (\nmreq_pools_info.nr_mem_id, 8), (\nmreq_pools_info.nr_if_pool_offset, 16),
            (\nmreq_pools_info.nr_if_pool_objtotal, 24), (\nmreq_pools_info.nr_if_pool_objsize, 28),
            (\nmreq_pools_info.nr_ring_pool_offset, 32), (\nmreq_pools_info.nr_ring_pool_objtotal, 40),
            (\nmreq_pools_info.nr_ring_pool_objsize, 44), (\nmreq_pools_info.nr_buf_pool_offset, 48),
            (\nmreq_pools_info.nr_buf_pool_objtotal, 56), (\nmreq_pools_info.nr_buf_pool_objsize, 60),
        ]
        for (kp, off) in p { #expect(MemoryLayout<nmreq_pools_info>.offset(of: kp) == off, "\(kp)") }

        #expect(MemoryLayout<nmreq_opt_extmem>.size == 96)
        #expect(MemoryLayout<nmreq_opt_extmem>.offset(of: \nmreq_opt_extmem.nro_info) == 32)
        #expect(MemoryLayout<nmreq_opt_csb>.size == 40)
        #expect(MemoryLayout<nmreq_opt_offsets>.size == 56)
        #expect(MemoryLayout<nmreq_opt_offsets>.offset(of: \nmreq_opt_offsets.nro_offset_bits) == 40)
        #expect(MemoryLayout<nmreq_opt_offsets>.offset(of: \nmreq_opt_offsets.nro_min_gap) == 48)
        #expect(MemoryLayout<nmreq_opt_sync_kloop_mode>.size == 32)
    }

    @Test func ioctlNumbersAndConstants() {
        #expect(NIOCGINFO == 0xc03c_6991)
        #expect(NIOCREGIF == 0xc03c_6992)
        #expect(NIOCTXSYNC == 0x6994)
        #expect(NIOCRXSYNC == 0x6995)
        #expect(NIOCCONFIG == 0xc110_6996)
        #expect(NIOCCTRL == 0xc058_6997)
        #expect(NETMAP_API == 14 && NETMAP_MIN_API == 14 && NETMAP_MAX_API == 15)
        #expect(NR_REG_ONE_SW == 8 && NR_REG_NULL == 7 && NR_REG_PIPE_SLAVE == 6)
        #expect(NR_EXCLUSIVE == 0x800 && NR_NO_TX_POLL == 0x20000 && NR_ACCEPT_VNET_HDR == 0x8000)
        #expect(NS_BUF_CHANGED == 1 && NS_REPORT == 2 && NS_MOREFRAG == 0x20 && NS_TXMON == 0x40)
        #expect(NETMAP_REQ_CSB_ENABLE == 15 && NETMAP_REQ_OPT_OFFSETS == 5 && NETMAP_REQ_OPT_MAX == 6)
        #expect(NETMAP_SW_RING == 0x2000 && NETMAP_HW_RING == 0x4000 && NETMAP_DO_RX_POLL == 0x8000)
    }
}
