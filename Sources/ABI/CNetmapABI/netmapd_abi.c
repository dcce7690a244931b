/*
 * Compile-time proof that netmapd_abi.h matches the ABI reference (§1.2, §1.3):
 * every ioctl number equals its _IOC arithmetic and every size and offset
 * equals the table. A mismatch stops the build.
 */
#include <sys/ioctl.h>
#include "netmapd_abi.h"

#define SIZE(t, n)      _Static_assert(sizeof(struct t) == (n), "sizeof " #t)
#define OFF(t, f, n)    _Static_assert(offsetof(struct t, f) == (n), #t "." #f)

_Static_assert(NIOCGINFO == _IOWR('i', 145, struct nmreq), "NIOCGINFO");
_Static_assert(NIOCREGIF == _IOWR('i', 146, struct nmreq), "NIOCREGIF");
_Static_assert(NIOCTXSYNC == _IO('i', 148), "NIOCTXSYNC");
_Static_assert(NIOCRXSYNC == _IO('i', 149), "NIOCRXSYNC");
_Static_assert(NIOCCONFIG == _IOWR('i', 150, struct nm_ifreq), "NIOCCONFIG");
_Static_assert(NIOCCTRL == _IOWR('i', 151, struct nmreq_header), "NIOCCTRL");

SIZE(netmap_slot, 16);
OFF(netmap_slot, buf_idx, 0); OFF(netmap_slot, len, 4); OFF(netmap_slot, flags, 6); OFF(netmap_slot, ptr, 8);

SIZE(netmap_ring, 256);
_Static_assert(_Alignof(struct netmap_ring) == 128, "netmap_ring align");
OFF(netmap_ring, buf_ofs, 0); OFF(netmap_ring, num_slots, 8); OFF(netmap_ring, nr_buf_size, 12);
OFF(netmap_ring, ringid, 16); OFF(netmap_ring, dir, 18); OFF(netmap_ring, head, 20);
OFF(netmap_ring, cur, 24); OFF(netmap_ring, tail, 28); OFF(netmap_ring, flags, 32);
OFF(netmap_ring, ts, 40); OFF(netmap_ring, offset_mask, 56); OFF(netmap_ring, buf_align, 64);
OFF(netmap_ring, sem, 128); OFF(netmap_ring, slot, 256);

SIZE(netmap_if, 56);
OFF(netmap_if, ni_name, 0); OFF(netmap_if, ni_version, 16); OFF(netmap_if, ni_flags, 20);
OFF(netmap_if, ni_tx_rings, 24); OFF(netmap_if, ni_rx_rings, 28); OFF(netmap_if, ni_bufs_head, 32);
OFF(netmap_if, ni_host_tx_rings, 36); OFF(netmap_if, ni_host_rx_rings, 40);
OFF(netmap_if, ni_spare1, 44); OFF(netmap_if, ring_ofs, 56);

SIZE(nmreq, 60);
OFF(nmreq, nr_name, 0); OFF(nmreq, nr_version, 16); OFF(nmreq, nr_offset, 20);
OFF(nmreq, nr_memsize, 24); OFF(nmreq, nr_tx_slots, 28); OFF(nmreq, nr_rx_slots, 32);
OFF(nmreq, nr_tx_rings, 36); OFF(nmreq, nr_rx_rings, 38); OFF(nmreq, nr_ringid, 40);
OFF(nmreq, nr_cmd, 42); OFF(nmreq, nr_arg1, 44); OFF(nmreq, nr_arg2, 46);
OFF(nmreq, nr_arg3, 48); OFF(nmreq, nr_flags, 52); OFF(nmreq, spare2, 56);

SIZE(nm_ifreq, 272); OFF(nm_ifreq, data, 16);

SIZE(nmreq_header, 88);
OFF(nmreq_header, nr_version, 0); OFF(nmreq_header, nr_reqtype, 2); OFF(nmreq_header, nr_reserved, 4);
OFF(nmreq_header, nr_name, 8); OFF(nmreq_header, nr_options, 72); OFF(nmreq_header, nr_body, 80);

SIZE(nmreq_option, 24);
OFF(nmreq_option, nro_next, 0); OFF(nmreq_option, nro_reqtype, 8);
OFF(nmreq_option, nro_status, 12); OFF(nmreq_option, nro_size, 16);

SIZE(nmreq_register, 56);
OFF(nmreq_register, nr_offset, 0); OFF(nmreq_register, nr_memsize, 8);
OFF(nmreq_register, nr_tx_slots, 16); OFF(nmreq_register, nr_rx_slots, 20);
OFF(nmreq_register, nr_tx_rings, 24); OFF(nmreq_register, nr_rx_rings, 26);
OFF(nmreq_register, nr_host_tx_rings, 28); OFF(nmreq_register, nr_host_rx_rings, 30);
OFF(nmreq_register, nr_mem_id, 32); OFF(nmreq_register, nr_ringid, 34);
OFF(nmreq_register, nr_mode, 36); OFF(nmreq_register, nr_extra_bufs, 40);
OFF(nmreq_register, nr_flags, 48);

SIZE(nmreq_port_info_get, 32);
OFF(nmreq_port_info_get, nr_memsize, 0); OFF(nmreq_port_info_get, nr_tx_slots, 8);
OFF(nmreq_port_info_get, nr_rx_slots, 12); OFF(nmreq_port_info_get, nr_tx_rings, 16);
OFF(nmreq_port_info_get, nr_rx_rings, 18); OFF(nmreq_port_info_get, nr_host_tx_rings, 20);
OFF(nmreq_port_info_get, nr_host_rx_rings, 22); OFF(nmreq_port_info_get, nr_mem_id, 24);
OFF(nmreq_port_info_get, pad, 26);

SIZE(nmreq_vale_attach, 64); OFF(nmreq_vale_attach, port_index, 56); OFF(nmreq_vale_attach, pad1, 60);
SIZE(nmreq_vale_detach, 8);
SIZE(nmreq_vale_list, 8); OFF(nmreq_vale_list, nr_port_idx, 4);
SIZE(nmreq_port_hdr, 8);
SIZE(nmreq_vale_newif, 16); OFF(nmreq_vale_newif, nr_tx_rings, 8); OFF(nmreq_vale_newif, nr_mem_id, 12);
SIZE(nmreq_vale_polling, 16); OFF(nmreq_vale_polling, nr_num_polling_cpus, 8);

SIZE(nmreq_pools_info, 64);
OFF(nmreq_pools_info, nr_memsize, 0); OFF(nmreq_pools_info, nr_mem_id, 8);
OFF(nmreq_pools_info, nr_if_pool_offset, 16); OFF(nmreq_pools_info, nr_if_pool_objtotal, 24);
OFF(nmreq_pools_info, nr_if_pool_objsize, 28); OFF(nmreq_pools_info, nr_ring_pool_offset, 32);
OFF(nmreq_pools_info, nr_ring_pool_objtotal, 40); OFF(nmreq_pools_info, nr_ring_pool_objsize, 44);
OFF(nmreq_pools_info, nr_buf_pool_offset, 48); OFF(nmreq_pools_info, nr_buf_pool_objtotal, 56);
OFF(nmreq_pools_info, nr_buf_pool_objsize, 60);

SIZE(nmreq_sync_kloop_start, 8);
SIZE(nm_csb_atok, 64); OFF(nm_csb_atok, sync_flags, 12);
SIZE(nm_csb_ktoa, 64); OFF(nm_csb_ktoa, kern_need_kick, 8);

SIZE(nmreq_opt_extmem, 96); OFF(nmreq_opt_extmem, nro_usrptr, 24); OFF(nmreq_opt_extmem, nro_info, 32);
SIZE(nmreq_opt_csb, 40); OFF(nmreq_opt_csb, csb_atok, 24); OFF(nmreq_opt_csb, csb_ktoa, 32);
SIZE(nmreq_opt_offsets, 56);
OFF(nmreq_opt_offsets, nro_max_offset, 24); OFF(nmreq_opt_offsets, nro_initial_offset, 32);
OFF(nmreq_opt_offsets, nro_offset_bits, 40); OFF(nmreq_opt_offsets, nro_tx_align, 44);
OFF(nmreq_opt_offsets, nro_min_gap, 48);
SIZE(nmreq_opt_sync_kloop_mode, 32); OFF(nmreq_opt_sync_kloop_mode, mode, 24);
SIZE(nmreq_opt_sync_kloop_eventfds, 24);

SIZE(netmapd_region_info, 256); OFF(netmapd_region_info, path, 16);
_Static_assert(NETMAPD_IOC_REGION == _IOR('i', 200, struct netmapd_region_info), "NETMAPD_IOC_REGION");

SIZE(netmapd_pool_stats, 32);
_Static_assert(NETMAPD_IOC_POOLSTAT == _IOR('i', 201, struct netmapd_pool_stats), "NETMAPD_IOC_POOLSTAT");

/* A symbol so the module is not an empty translation unit. */
const unsigned netmapd_abi_version = NETMAP_API;
