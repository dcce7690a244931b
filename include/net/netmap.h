/*
 * net/netmap.h: the netmap userspace ABI as netmapd serves it (API 14).
 *
 * Part of netmapd, which provides /dev/netmap on stock Linux without the
 * netmap kernel module. Written by the netmapd project from its own ABI
 * notes (docs/netmap-abi.md in the netmapd sources); the identifiers are
 * netmap's because programs use them, the text is netmapd's. Programs that
 * include <net/netmap.h> or <net/netmap_user.h> build against this header
 * alone and run against netmapd (or the netmap kernel module: the layouts,
 * numbers and ioctls are the same).
 *
 * x86_64 and other LP64 Linux: the shared structures hold struct timeval
 * and ssize_t, so 32-bit programs cannot share them.
 */
#ifndef _NET_NETMAP_H_
#define _NET_NETMAP_H_

#include <stdint.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/types.h>

/* ---- API versions (§1.1) ---- */
#define NETMAP_API      14
#define NETMAP_MIN_API  14
#define NETMAP_MAX_API  15

/* ---- sizes (§1.4) ---- */
#define NM_CACHE_ALIGN        128
#define NETMAP_REQ_MAXSIZE    4096
#define NETMAP_REQ_IFNAMSIZ   64
#define NM_IFNAMSIZ           16
#define NM_IFRDATA_LEN        256
#define NETMAP_MAX_FRAGS      64
#define NM_BDG_NAME           "vale"

/* ---- shared memory: slots, rings, interfaces (§1.3) ---- */

struct netmap_slot {
	uint32_t buf_idx;   /* buffer index in the region's buffer pool */
	uint16_t len;       /* bytes of data in the buffer */
	uint16_t flags;     /* NS_* */
	uint64_t ptr;       /* offset bits or a user address (NS_INDIRECT) */
};

/* Slot flags. */
#define NS_BUF_CHANGED  0x0001
#define NS_REPORT       0x0002
#define NS_FORWARD      0x0004
#define NS_NO_LEARN     0x0008
#define NS_INDIRECT     0x0010
#define NS_MOREFRAG     0x0020
#define NS_TXMON        0x0040
#define NS_PORT_SHIFT   8
#define NS_PORT_MASK    (0xff << NS_PORT_SHIFT)
#define NS_RFRAGS(slot) (((slot)->flags >> 8) & 0xff)

struct netmap_ring {
	/* written by netmapd only */
	const int64_t  buf_ofs;      /* buffer pool start, relative to this ring */
	const uint32_t num_slots;
	const uint32_t nr_buf_size;
	const uint16_t ringid;
	const uint16_t dir;          /* 1 = TX, 0 = RX (what the kernel stores) */

	/* head and cur belong to the user; tail to netmapd */
	uint32_t head;
	uint32_t cur;
	uint32_t tail;

	uint32_t flags;              /* NR_TIMESTAMP, NR_FORWARD; user-owned */
	uint32_t pad_36;

	struct timeval ts;           /* time of the last RX sync */

	const uint64_t offset_mask;
	const uint64_t buf_align;

	uint8_t pad_72[56];

	/* opaque; starts at byte 128 of the ring */
	uint8_t sem[128] __attribute__((__aligned__(NM_CACHE_ALIGN)));

	struct netmap_slot slot[];   /* num_slots entries */
};

/* Ring flags. */
#define NR_TIMESTAMP  0x0002
#define NR_FORWARD    0x0004

struct netmap_if {
	const char     ni_name[NM_IFNAMSIZ];
	const uint32_t ni_version;
	const uint32_t ni_flags;         /* NI_PRIV_MEM */
	const uint32_t ni_tx_rings;      /* NIC TX rings */
	const uint32_t ni_rx_rings;      /* NIC RX rings */
	uint32_t       ni_bufs_head;     /* first extra buffer; user-writable */
	const uint32_t ni_host_tx_rings;
	const uint32_t ni_host_rx_rings;
	uint32_t       ni_spare1[3];
	const ssize_t  ring_ofs[];       /* ring offsets relative to this struct */
};

#define NI_PRIV_MEM  0x1

/* ---- legacy request (§3.2) ---- */

struct nmreq {
	char     nr_name[NM_IFNAMSIZ];
	uint32_t nr_version;
	uint32_t nr_offset;
	uint32_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_ringid;
	uint16_t nr_cmd;
	uint16_t nr_arg1;
	uint16_t nr_arg2;
	uint32_t nr_arg3;
	uint32_t nr_flags;
	uint32_t spare2[1];
};

/* Legacy nr_ringid bits. */
#define NETMAP_RING_MASK   0x0fff
#define NETMAP_NO_TX_POLL  0x1000
#define NETMAP_SW_RING     0x2000
#define NETMAP_HW_RING     0x4000
#define NETMAP_DO_RX_POLL  0x8000
#define NR_REG_MASK        0xf

/* Legacy nr_cmd values. */
#define NETMAP_BDG_ATTACH       1
#define NETMAP_BDG_DETACH       2
#define NETMAP_BDG_REGOPS       3
#define NETMAP_BDG_LIST         4
#define NETMAP_BDG_VNET_HDR     5
#define NETMAP_BDG_NEWIF        6
#define NETMAP_BDG_DELIF        7
#define NETMAP_PT_HOST_CREATE   8
#define NETMAP_PT_HOST_DELETE   9
#define NETMAP_BDG_POLLING_ON   10
#define NETMAP_BDG_POLLING_OFF  11
#define NETMAP_VNET_HDR_GET     12
#define NETMAP_BDG_HOST         1

struct nm_ifreq {
	char    nifr_name[NM_IFNAMSIZ];
	uint8_t data[NM_IFRDATA_LEN];
};

/* ---- API 14 control requests (§3.3, §3.4) ---- */

struct nmreq_header {
	uint16_t nr_version;
	uint16_t nr_reqtype;
	uint32_t nr_reserved;
	char     nr_name[NETMAP_REQ_IFNAMSIZ];
	uint64_t nr_options;   /* user pointer to the first nmreq_option */
	uint64_t nr_body;      /* user pointer to the request body */
};

/* nr_reqtype */
#define NETMAP_REQ_REGISTER               1
#define NETMAP_REQ_PORT_INFO_GET          2
#define NETMAP_REQ_VALE_ATTACH            3
#define NETMAP_REQ_VALE_DETACH            4
#define NETMAP_REQ_VALE_LIST              5
#define NETMAP_REQ_PORT_HDR_SET           6
#define NETMAP_REQ_PORT_HDR_GET           7
#define NETMAP_REQ_VALE_NEWIF             8
#define NETMAP_REQ_VALE_DELIF             9
#define NETMAP_REQ_VALE_POLLING_ENABLE    10
#define NETMAP_REQ_VALE_POLLING_DISABLE   11
#define NETMAP_REQ_POOLS_INFO_GET         12
#define NETMAP_REQ_SYNC_KLOOP_START       13
#define NETMAP_REQ_SYNC_KLOOP_STOP        14
#define NETMAP_REQ_CSB_ENABLE             15

struct nmreq_option {
	uint64_t nro_next;     /* user pointer to the next option, 0 ends */
	uint32_t nro_reqtype;
	uint32_t nro_status;   /* 0 or an errno, written by netmapd */
	uint64_t nro_size;
};

/* nro_reqtype */
#define NETMAP_REQ_OPT_EXTMEM              1
#define NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS 2
#define NETMAP_REQ_OPT_CSB                 3
#define NETMAP_REQ_OPT_SYNC_KLOOP_MODE     4
#define NETMAP_REQ_OPT_OFFSETS             5
#define NETMAP_REQ_OPT_MAX                 6

struct nmreq_register {
	uint64_t nr_offset;
	uint64_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_host_tx_rings;
	uint16_t nr_host_rx_rings;
	uint16_t nr_mem_id;
	uint16_t nr_ringid;
	uint32_t nr_mode;
	uint32_t nr_extra_bufs;
	uint32_t pad_44;
	uint64_t nr_flags;
};

/* nr_mode */
#define NR_REG_DEFAULT      0
#define NR_REG_ALL_NIC      1
#define NR_REG_SW           2
#define NR_REG_NIC_SW       3
#define NR_REG_ONE_NIC      4
#define NR_REG_PIPE_MASTER  5
#define NR_REG_PIPE_SLAVE   6
#define NR_REG_NULL         7
#define NR_REG_ONE_SW       8

/* nr_flags */
#define NR_MONITOR_TX       0x100
#define NR_MONITOR_RX       0x200
#define NR_ZCOPY_MON        0x400
#define NR_EXCLUSIVE        0x800
#define NR_RX_RINGS_ONLY    0x2000
#define NR_TX_RINGS_ONLY    0x4000
#define NR_ACCEPT_VNET_HDR  0x8000
#define NR_DO_RX_POLL       0x10000
#define NR_NO_TX_POLL       0x20000

struct nmreq_port_info_get {
	uint64_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_host_tx_rings;
	uint16_t nr_host_rx_rings;
	uint16_t nr_mem_id;
	uint16_t pad[3];
};

struct nmreq_vale_attach {
	struct nmreq_register reg;
	uint32_t port_index;
	uint32_t pad1;
};

struct nmreq_vale_detach {
	uint32_t port_index;
	uint32_t pad1;
};

struct nmreq_vale_list {
	uint16_t nr_bridge_idx;
	uint16_t pad1;
	uint32_t nr_port_idx;
};

struct nmreq_port_hdr {
	uint32_t nr_hdr_len;
	uint32_t pad1;
};

struct nmreq_vale_newif {
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_mem_id;
	uint16_t pad1;
};

struct nmreq_vale_polling {
	uint32_t nr_mode;
	uint32_t nr_first_cpu_id;
	uint32_t nr_num_polling_cpus;
	uint32_t pad1;
};

#define NETMAP_POLLING_MODE_SINGLE_CPU 1
#define NETMAP_POLLING_MODE_MULTI_CPU  2

struct nmreq_pools_info {
	uint64_t nr_memsize;
	uint16_t nr_mem_id;
	uint16_t pad1[3];
	uint64_t nr_if_pool_offset;
	uint32_t nr_if_pool_objtotal;
	uint32_t nr_if_pool_objsize;
	uint64_t nr_ring_pool_offset;
	uint32_t nr_ring_pool_objtotal;
	uint32_t nr_ring_pool_objsize;
	uint64_t nr_buf_pool_offset;
	uint32_t nr_buf_pool_objtotal;
	uint32_t nr_buf_pool_objsize;
};

struct nmreq_sync_kloop_start {
	uint32_t sleep_us;
	uint32_t pad1;
};

struct nm_csb_atok {
	uint32_t head;
	uint32_t cur;
	uint32_t appl_need_kick;
	uint32_t sync_flags;
	uint32_t pad[12];
};

struct nm_csb_ktoa {
	uint32_t hwcur;
	uint32_t hwtail;
	uint32_t kern_need_kick;
	uint32_t pad[13];
};

/* ---- options (§1.3, §3.5) ---- */

struct nmreq_opt_extmem {
	struct nmreq_option nro_opt;
	uint64_t nro_usrptr;
	struct nmreq_pools_info nro_info;
};

struct nmreq_opt_csb {
	struct nmreq_option nro_opt;
	uint64_t csb_atok;
	uint64_t csb_ktoa;
};

struct nmreq_opt_offsets {
	struct nmreq_option nro_opt;
	uint64_t nro_max_offset;
	uint64_t nro_initial_offset;
	uint32_t nro_offset_bits;
	uint32_t nro_tx_align;
	uint64_t nro_min_gap;
};

struct nmreq_opt_sync_kloop_mode {
	struct nmreq_option nro_opt;
	uint32_t mode;
	uint32_t pad_28;
};

#define NM_OPT_SYNC_KLOOP_DIRECT_TX 1
#define NM_OPT_SYNC_KLOOP_DIRECT_RX 2

struct nmreq_opt_sync_kloop_eventfds {
	struct nmreq_option nro_opt;
	struct {
		int32_t ioeventfd;
		int32_t irqfd;
	} eventfds[];
};

/* ---- internal limits worth matching (§1.4) ---- */
#define NM_BDG_MAXPORTS   254
#define NM_BRIDGES        8
#define NM_BDG_MAXRINGS   16
#define NM_BDG_MAXSLOTS   4096
#define NM_MAXPIPES       64
#define NM_PIPE_MAXRINGS  256
#define NM_PIPE_MAXSLOTS  4096

/* ---- ioctl requests (§1.2): type 'i', the standard Linux encoding ---- */
#define NIOCGINFO   _IOWR('i', 145, struct nmreq)
#define NIOCREGIF   _IOWR('i', 146, struct nmreq)
#define NIOCTXSYNC  _IO('i', 148)
#define NIOCRXSYNC  _IO('i', 149)
#define NIOCCONFIG  _IOWR('i', 150, struct nm_ifreq)
#define NIOCCTRL    _IOWR('i', 151, struct nmreq_header)

#endif /* _NET_NETMAP_H_ */
