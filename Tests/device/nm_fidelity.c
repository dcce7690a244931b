/*
 * nm_fidelity.c: answers an unmodified netmap program can tell apart from
 * netmap's (issue #14), through the device. Each check names the section of
 * the ABI notes (netmap-abi.md) it follows.
 *
 *   nm_fidelity [-d DEVICE] [options] [null_ports] [pipe_geometry] [pipe_clamps]
 *               [empty_name_info] [pools_mem_id] [ringid_raw] [check_order]
 *               [close_reopen] [extra_list]
 *
 * With no test named, all run. A keeper registration is held throughout so
 * that the pool is never reset behind our back: the extra-buffer checks
 * count free buffers exactly, and at the end the pool must be where it
 * started.
 */
#include "nm_common.h"

#include <sys/stat.h>

static char base[24];

static const char *pname(char *buf, const char *suffix)
{
	sprintf(buf, "%s%s", base, suffix);
	return buf;
}

static int ctrl(int fd, uint16_t type, const char *name, void *body, void *options)
{
	struct nmreq_header h;
	nmd_req_header(&h, type, name, body);
	h.nr_options = (uintptr_t)options;
	return nmt_ioctl(fd, NIOCCTRL, &h);
}

static int unbound(int fd)
{
	return nmt_ioctl(fd, NIOCTXSYNC, NULL) == ENXIO;
}

#define SENTINEL 12345u

/* `n` options (type, size) in one array, linked in order, status SENTINEL. */
static struct nmreq_option *chain(struct nmreq_option *o, int n, uint32_t type, uint64_t size)
{
	for (int i = 0; i < n; i++) {
		memset(&o[i], 0, sizeof o[i]);
		o[i].nro_reqtype = type;
		o[i].nro_size = size;
		o[i].nro_status = SENTINEL;
		o[i].nro_next = i + 1 < n ? (uintptr_t)&o[i + 1] : 0;
	}
	return o;
}

/* ---- item 1: the option walk (§3.3) ---- */
static void options(void)
{
	int fd = nmt_open();
	char n[48];
	struct nmreq_port_info_get info;
	struct nmreq_register reg;
	static struct nmreq_option o[140];
	memset(&info, 0, sizeof info);
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;
	/* Through CUSE the kernel fetches caller memory for the daemon: it
	 * fails the whole ioctl when a range cannot be read (before the daemon
	 * answers), and carries at most 256 ranges (reads and write-backs) per
	 * ioctl, about 2 per option: ENOMEM for a chain past ~126 options. */
	struct stat sb;
	int cuse = stat(nmt_device_path(), &sb) == 0 && S_ISCHR(sb.st_mode);

	/* an unknown type is kept without size checks (§3.3 step 3, 6) */
	chain(o, 1, 99, 8192);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), 0,
	    "§3.3: PORT_INFO_GET with an unknown option {type 99, size 8192}: no size check, ignored");
	CHECK_EQ(o[0].nro_status, EOPNOTSUPP, "§3.3: its nro_status");
	chain(o, 1, 99, 8192);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_REGISTER, pname(n, "o{1"), &reg, o), EOPNOTSUPP,
	    "§3.3/§3.4 step 19: REGISTER with {type 99, size 8192}: leftover unknown option");
	CHECK(unbound(fd), "§3.4 step 19: the registration was undone");
	/* a known type's size is checked after its type */
	chain(o, 1, NETMAP_REQ_OPT_OFFSETS, 8192);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), EMSGSIZE,
	    "§3.3 step 6: PORT_INFO_GET with {OFFSETS, size 8192}");
	CHECK_EQ(o[0].nro_status, 0, "§3.3: that option written back with the status it was copied with");
	/* [valid, type 0, not reached] */
	chain(o, 3, NETMAP_REQ_OPT_CSB, sizeof(struct nmreq_opt_csb));
	o[1].nro_reqtype = 0;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), EINVAL, "§3.3 step 2: chain [CSB, type 0, CSB]");
	CHECK(o[0].nro_status == 0 && o[1].nro_status == EINVAL && o[2].nro_status == SENTINEL,
	    "§3.3: statuses as they stand: %u, %u, %u (want 0, EINVAL, untouched %u)", o[0].nro_status,
	    o[1].nro_status, o[2].nro_status, SENTINEL);
	/* a duplicate is found before the size of the second copy */
	chain(o, 2, NETMAP_REQ_OPT_CSB, sizeof(struct nmreq_opt_csb));
	o[1].nro_size = 8192;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), EINVAL,
	    "§3.3 step 4: a duplicate CSB option with size 8192 is a duplicate first");
	CHECK(o[0].nro_status == EINVAL && o[1].nro_status == EINVAL, "§3.3: both copies EINVAL (%u, %u)",
	    o[0].nro_status, o[1].nro_status);
	/* the copy buffer: 96 bytes for PORT_INFO_GET's pointers, body and
	 * table, 32 per option, 4208 in all: 128 options fit, 129 do not */
	if (cuse) {
		chain(o, 120, 77, 24);
		CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), 0,
		    "§3.3 step 6: PORT_INFO_GET with 120 unknown options (CUSE: the 128/129 boundary is past its 256 ranges)");
		CHECK(o[0].nro_status == EOPNOTSUPP && o[119].nro_status == EOPNOTSUPP,
		    "§3.3 step 7: all EOPNOTSUPP (%u, %u)", o[0].nro_status, o[119].nro_status);
	} else {
		chain(o, 128, 77, 24);
		CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), 0,
		    "§3.3 step 6: PORT_INFO_GET with 128 unknown options fits the kernel's copy buffer");
		CHECK(o[0].nro_status == EOPNOTSUPP && o[127].nro_status == EOPNOTSUPP,
		    "§3.3 step 7: all EOPNOTSUPP (%u, %u)", o[0].nro_status, o[127].nro_status);
		chain(o, 129, 77, 24);
		CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), EMSGSIZE,
		    "§3.3 step 6: 129 unknown options overflow it");
		CHECK(o[0].nro_status == SENTINEL && o[128].nro_status == SENTINEL,
		    "§3.3: then no option is written back (%u, %u)", o[0].nro_status, o[128].nro_status);
	}
	chain(o, 2, 77, 24);
	o[1].nro_next = (uintptr_t)&o[0];
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), EMSGSIZE, "§3.3 step 6: a cycle of unknown options");
	CHECK_EQ(o[0].nro_status, SENTINEL, "§3.3: the cycle's options are not written back");
	/* a fault mid-chain: the options copied so far go back, status 0
	 * (not through CUSE, see above) */
	chain(o, 2, 77, 24);
	o[1].nro_next = 0x10;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, o), EFAULT, "§3.3/§10: option chain into unmapped memory");
	if (!cuse)
		CHECK(o[0].nro_status == 0 && o[1].nro_status == 0 && o[0].nro_next == (uintptr_t)&o[1],
		    "§3.3: the copied options written back with status 0 and the caller's pointers (%u, %u)",
		    o[0].nro_status, o[1].nro_status);
	close(fd);
}

/* ---- item 2: null ports (§13) ---- */
static void null_ports(void)
{
	char n[48];
	int a = nmt_open(), b = nmt_open();
	struct nmreq_register ra, rb;
	memset(&ra, 0, sizeof ra);
	ra.nr_mode = NR_REG_NULL;
	ra.nr_mem_id = 1;
	ra.nr_flags = NR_EXCLUSIVE;
	ra.nr_tx_rings = 2;
	ra.nr_tx_slots = ra.nr_rx_slots = 64;
	rb = ra;
	rb.nr_tx_rings = 0;
	rb.nr_rx_rings = 3;
	rb.nr_tx_slots = rb.nr_rx_slots = 32;
	pname(n, "null");
	CHECK_ERRNO(ctrl(a, NETMAP_REQ_REGISTER, n, &ra, NULL), 0, "§13: null port, NR_EXCLUSIVE, 2 TX rings / 0 RX");
	CHECK(ra.nr_tx_rings == 2 && ra.nr_rx_rings == 0 && ra.nr_tx_slots == 64,
	    "§13: the geometry asked for, 0 rings stay 0 (rings %u/%u, slots %u)", ra.nr_tx_rings, ra.nr_rx_rings,
	    ra.nr_tx_slots);
	CHECK_ERRNO(ctrl(b, NETMAP_REQ_REGISTER, n, &rb, NULL), 0,
	    "§13: a second null port of the same name, NR_EXCLUSIVE too: a port of its own");
	CHECK(rb.nr_tx_rings == 0 && rb.nr_rx_rings == 3 && rb.nr_rx_slots == 32,
	    "§13: with its own geometry (rings %u/%u, slots %u)", rb.nr_tx_rings, rb.nr_rx_rings, rb.nr_rx_slots);
	close(a);
	close(b);
}

/* ---- item 3: pipe geometry (§12) ---- */
static void pipe_geometry(void)
{
	char n[48];
	int s = nmt_open(), m = nmt_open();
	struct nmreq_register r;
	memset(&r, 0, sizeof r);
	r.nr_mode = NR_REG_ALL_NIC;
	r.nr_tx_rings = 3;
	r.nr_rx_rings = 1;
	r.nr_tx_slots = 64;
	r.nr_rx_slots = 128;
	CHECK_ERRNO(ctrl(s, NETMAP_REQ_REGISTER, pname(n, "g}1"), &r, NULL), 0,
	    "§12: slave opened first, asking TX 3 / RX 1 rings of 64 / 128 slots");
	CHECK(r.nr_tx_rings == 1 && r.nr_rx_rings == 3 && r.nr_tx_slots == 128 && r.nr_rx_slots == 64,
	    "§12: the request built the master, the slave got it swapped: TX %u / RX %u rings, %u / %u slots "
	    "(want 1 / 3, 128 / 64)", r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots);
	memset(&r, 0, sizeof r);
	r.nr_mode = NR_REG_ALL_NIC;
	CHECK_ERRNO(ctrl(m, NETMAP_REQ_REGISTER, pname(n, "g{1"), &r, NULL), 0, "§12: then the master");
	CHECK(r.nr_tx_rings == 3 && r.nr_rx_rings == 1 && r.nr_tx_slots == 64 && r.nr_rx_slots == 128,
	    "§12: the master has the first request's geometry: TX %u / RX %u rings, %u / %u slots (want 3 / 1, 64 / 128)",
	    r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots);
	close(s);
	close(m);
}

/* ---- close() is complete when it returns (§3.4, release) ----
 * netmap releases a descriptor inside close(): the next registration, right
 * after it, creates the port afresh, with the geometry it asks for, and an
 * exclusive registration of the same port succeeds. (The FUSE file's
 * RELEASE is asynchronous; the daemon's release fence orders it before the
 * client's next open and registration.) */
static void close_reopen(void)
{
	char n[48];
	int wrong = 0, busy = 0, first_bad = -1;
	unsigned got = 0;
	for (int i = 0; i < 300; i++) {
		int fd = nmt_open();
		struct nmreq_register r;
		memset(&r, 0, sizeof r);
		r.nr_mode = NR_REG_ALL_NIC;
		r.nr_flags = NR_EXCLUSIVE;
		r.nr_tx_rings = r.nr_rx_rings = 1 + i % 3;
		int e = ctrl(fd, NETMAP_REQ_REGISTER, pname(n, "cr{1"), &r, NULL);
		if (e == EBUSY)
			busy++;
		else if (e != 0 || r.nr_tx_rings != 1u + i % 3) {
			wrong++;
			if (first_bad < 0) {
				first_bad = i;
				got = e ? 1000u + (unsigned)e : r.nr_tx_rings;
			}
		}
		close(fd);
	}
	CHECK(busy == 0 && wrong == 0,
	    "§3.4: 300 x (open, exclusive register with 1/2/3 rings, close): each finds the previous one released "
	    "(EBUSY %d, other geometry or error %d; first at %d: %u)", busy, wrong, first_bad, got);
}

/* ---- item 4: clamps, not errors (§12) ---- */
static void pipe_clamps(void)
{
	char n[48];
	int fd = nmt_open();
	struct nmreq_pools_info pi;
	struct netmapd_pool_stats st;
	nmt_pools_info(fd, pname(n, "keep{1"), &pi);
	struct nmreq_port_info_get info;
	memset(&info, 0, sizeof info);
	info.nr_tx_rings = 300;
	info.nr_rx_rings = 0;
	info.nr_tx_slots = 5000;
	info.nr_rx_slots = 7;
	nmt_poolstat(fd, &st);
	uint32_t rings0 = st.free_rings;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, pname(n, "c}1"), &info, NULL), 0,
	    "§12: PORT_INFO_GET of a new pipe's slave asking 300 rings of 5000 slots (not an error)");
	CHECK(info.nr_tx_rings == 1 && info.nr_rx_rings == 256 && info.nr_tx_slots == 7 && info.nr_rx_slots == 4096,
	    "§12: clamped and written back: TX %u / RX %u rings, %u / %u slots (want 1 / 256, 7 / 4096)",
	    info.nr_tx_rings, info.nr_rx_rings, info.nr_tx_slots, info.nr_rx_slots);
	nmt_poolstat(fd, &st);
	CHECK(st.free_rings == rings0, "§3.4: no memory taken for the question (free rings %u, before %u)", st.free_rings,
	    rings0);
	/* REGISTER with the same request: memory decides (§3.4 step 12) */
	struct nmreq_register r;
	memset(&r, 0, sizeof r);
	r.nr_mode = NR_REG_ALL_NIC;
	r.nr_tx_rings = 300;
	r.nr_rx_rings = 1;
	r.nr_tx_slots = r.nr_rx_slots = 8;
	int fits = 2 * (256 + 1) <= (int)st.free_rings;
	int e = ctrl(fd, NETMAP_REQ_REGISTER, pname(n, "c{2"), &r, NULL);
	if (fits)
		CHECK(e == 0 && r.nr_tx_rings == 256, "§12: REGISTER asking 300 rings: %s, %u rings (want 0, 256)",
		    nmt_errname(e), r.nr_tx_rings);
	else
		CHECK_ERRNO(e, ENOMEM, "§12/§3.4 step 12: REGISTER asking 300 rings, clamped to 256: more ring objects than free");
	close(fd);
	fd = nmt_open();
	uint32_t max_slots = (pi.nr_ring_pool_objsize - 256) / 16;
	memset(&r, 0, sizeof r);
	r.nr_mode = NR_REG_ALL_NIC;
	r.nr_tx_slots = r.nr_rx_slots = 9000;
	e = ctrl(fd, NETMAP_REQ_REGISTER, pname(n, "c{3"), &r, NULL);
	if (max_slots >= 4096)
		CHECK(e == 0 && r.nr_tx_slots == 4096, "§12: REGISTER asking 9000 slots: %s, %u slots (want 0, 4096)",
		    nmt_errname(e), r.nr_tx_slots);
	else
		CHECK_ERRNO(e, ENOMEM, "§12/§4.2: REGISTER asking 9000 slots, clamped to 4096: larger than a ring object");
	close(fd);
}

/* ---- item 5: empty-name PORT_INFO_GET and NIOCGINFO (§3.2, §3.4) ---- */
static void empty_name_info(void)
{
	int fd = nmt_open();
	struct nmreq_port_info_get info;
	memset(&info, 0, sizeof info);
	info.nr_tx_rings = 5;
	info.nr_rx_rings = 6;
	info.nr_tx_slots = 7;
	info.nr_rx_slots = 8;
	info.nr_host_tx_rings = 9;
	info.nr_host_rx_rings = 10;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, NULL), 0, "§3.4: PORT_INFO_GET with an empty name");
	CHECK(info.nr_memsize != 0 && info.nr_mem_id == 1, "§3.4: memory fields written (memsize %llu, mem id %u)",
	    (unsigned long long)info.nr_memsize, info.nr_mem_id);
	CHECK(info.nr_tx_rings == 5 && info.nr_rx_rings == 6 && info.nr_tx_slots == 7 && info.nr_rx_slots == 8 &&
	    info.nr_host_tx_rings == 9 && info.nr_host_rx_rings == 10,
	    "§3.4: ring and slot fields as the caller left them (%u %u %u %u %u %u, want 5 6 7 8 9 10)", info.nr_tx_rings,
	    info.nr_rx_rings, info.nr_tx_slots, info.nr_rx_slots, info.nr_host_tx_rings, info.nr_host_rx_rings);
	struct nmreq r;
	memset(&r, 0, sizeof r);
	r.nr_version = 14;
	r.nr_tx_rings = 3;
	r.nr_rx_rings = 4;
	r.nr_tx_slots = 33;
	r.nr_rx_slots = 44;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCGINFO, &r), 0, "§3.2: NIOCGINFO with an empty name");
	CHECK(r.nr_memsize != 0 && r.nr_arg2 == 1, "§3.2: nr_memsize %u, nr_arg2 %u", r.nr_memsize, r.nr_arg2);
	CHECK(r.nr_tx_rings == 3 && r.nr_rx_rings == 4 && r.nr_tx_slots == 33 && r.nr_rx_slots == 44,
	    "§3.2: ring and slot fields as the caller left them (%u %u %u %u, want 3 4 33 44)", r.nr_tx_rings,
	    r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots);
	close(fd);
}

/* ---- item 6: POOLS_INFO_GET's nr_mem_id (§3.4) ---- */
static void pools_mem_id(void)
{
	char n[48];
	int fd = nmt_open();
	struct nmreq_pools_info pi;
	memset(&pi, 0, sizeof pi);
	pi.nr_mem_id = 5;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, pname(n, "keep{1"), &pi, NULL), EINVAL,
	    "§3.4: POOLS_INFO_GET with nr_mem_id 5 (no such allocator)");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, "", &pi, NULL), EINVAL,
	    "§3.4: ... checked before the (empty) name");
	pi.nr_mem_id = 1;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, n, &pi, NULL), 0, "§3.4: POOLS_INFO_GET with nr_mem_id 1");
	close(fd);
}

/* ---- item 7: nr_ringid compared whole (§3.4, §7) ---- */
static void ringid_raw(void)
{
	char n[48];
	pname(n, "ri{1");
	int fd = nmt_open();
	CHECK_ERRNO(nmd_register(fd, n, NR_REG_ONE_NIC, 0x1000, 0, 0, NULL), EINVAL,
	    "§7: NIOCCTRL ONE_NIC nr_ringid 0x1000 on a one-ring pipe (not masked to ring 0)");
	CHECK_ERRNO(nmd_register(fd, n, NR_REG_ONE_NIC, 0x1001, 0, 0, NULL), EINVAL, "§7: nr_ringid 0x1001");
	CHECK(unbound(fd), "descriptor still unbound");
	CHECK_ERRNO(nmd_register(fd, n, NR_REG_ONE_NIC, 0, 0, 0, NULL), 0, "§7: nr_ringid 0");
	close(fd);
	/* the legacy API masks: 0x1000 is NETMAP_NO_TX_POLL there (§3.2) */
	fd = nmt_open();
	struct nmreq r;
	memset(&r, 0, sizeof r);
	r.nr_version = 14;
	memcpy(r.nr_name, n, strnlen(n, sizeof r.nr_name - 1));
	r.nr_flags = NR_REG_ONE_NIC;
	r.nr_ringid = NETMAP_NO_TX_POLL | 0;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCREGIF, &r), 0, "§3.2: legacy NIOCREGIF ONE_NIC nr_ringid 0x1000 (masked)");
	close(fd);
}

/* ---- item 8: check order at registration (§3.4) ---- */
static void check_order(void)
{
	char n[48];
	int fd = nmt_open();
	CHECK_ERRNO(nmd_register(fd, "nmdnosuch0", NR_REG_DEFAULT, 0, 0, 0, NULL), ENXIO,
	    "§3.4: missing interface with mode 0: ENXIO before the mode's EINVAL");
	CHECK_ERRNO(nmd_register(fd, "nmdnosuch0", 42, 0, 0, 0, NULL), ENXIO,
	    "§3.4: missing interface with mode 42: ENXIO");
	CHECK_ERRNO(nmd_register(fd, pname(n, "co{1"), NR_REG_DEFAULT, 0, 0, 0, NULL), EINVAL,
	    "§7: an existing port with mode 0: EINVAL");
	CHECK_ERRNO(nmd_register(fd, n, NR_REG_ALL_NIC, 0, 0, 0, NULL), 0, "register the descriptor");
	CHECK_ERRNO(nmd_register(fd, n, NR_REG_DEFAULT, 0, 0, 0, NULL), EBUSY,
	    "§3.4 step 1: registered descriptor, mode 0: EBUSY before any mode check");
	CHECK_ERRNO(nmd_register(fd, n, NR_REG_PIPE_MASTER, 1, 0, 0, NULL), EBUSY,
	    "§3.4 step 1: registered descriptor, mode NR_REG_PIPE_MASTER: EBUSY");
	CHECK_ERRNO(nmd_register(fd, "nmdnosuch0", 42, 0, 0, 0, NULL), EBUSY,
	    "§3.4 step 1: registered descriptor, another port and mode 42: EBUSY");
	close(fd);
}

/* ---- item 12: a corrupted extra-buffer list at release (§4.7) ---- */
static int wait_free(uint32_t want, struct netmapd_pool_stats *st)
{
	double end = nmd_now() + NMT_SEC(3.0);
	for (;;) {
		if (nmt_poolstat(-1, st) == 0 && st->free_buffers == want)
			return 1;
		if (nmd_now() > end)
			return 0;
		usleep(2000);
	}
}

static void extra_list(struct nmt_port *keeper, const struct netmapd_pool_stats *start)
{
	char n[48];
	struct netmapd_pool_stats st0, st;
	/* releases of the earlier tests reach the daemon asynchronously */
	nmt_wait_stat(start, &st0, 3.0);
	/* a buffer the keeper's TX ring holds, its link word 0 */
	uint32_t held = keeper->tx->slot[0].buf_idx;
	*(uint32_t *)nmd_buf(keeper->tx, held) = 0;

	/* e2 -> e1 -> the keeper's buffer */
	struct nmt_port c;
	if (nmt_port_open(&c, pname(n, "xl{1"), 0, 2) || c.reg.nr_extra_bufs != 2) {
		CHECK(0, "extra_list: could not register with 2 extra buffers");
		return;
	}
	uint32_t e2 = c.nifp->ni_bufs_head, e1 = *(uint32_t *)nmd_buf(c.tx, e2);
	*(uint32_t *)nmd_buf(c.tx, e1) = held;
	uint32_t sessions = st0.sessions;
	nmt_port_close(&c);
	nmt_wait_sessions(sessions, 3.0);
	int ok = wait_free(st0.free_buffers, &st);
	usleep(20000);
	nmt_poolstat(-1, &st);
	CHECK(ok && st.free_buffers == st0.free_buffers,
	    "§4.7: list e2 -> e1 -> a buffer another ring holds: e1, e2 and the rings come back, that buffer does not "
	    "(free %u, want %u)", st.free_buffers, st0.free_buffers);

	/* e2 -> e1 -> a free buffer whose stale link names the keeper's buffer */
	struct nmt_port d, e;
	if (nmt_port_open(&d, pname(n, "xm{1"), 0, 2) || d.reg.nr_extra_bufs != 2) {
		CHECK(0, "extra_list: could not register with 2 extra buffers");
		return;
	}
	if (nmt_port_open(&e, pname(n, "xn{1"), 0, 1) || e.reg.nr_extra_bufs != 1) {
		CHECK(0, "extra_list: could not register with 1 extra buffer");
		nmt_port_close(&d);
		return;
	}
	uint32_t stale = e.nifp->ni_bufs_head;
	nmt_port_close(&e);   /* its extra buffer is free again */
	nmt_wait_sessions(sessions + 1, 3.0);
	uint32_t f2 = d.nifp->ni_bufs_head, f1 = *(uint32_t *)nmd_buf(d.tx, f2);
	*(uint32_t *)nmd_buf(d.tx, stale) = held;
	*(uint32_t *)nmd_buf(d.tx, f1) = stale;
	nmt_port_close(&d);
	nmt_wait_sessions(sessions, 3.0);
	ok = wait_free(st0.free_buffers, &st);
	usleep(20000);
	nmt_poolstat(-1, &st);
	CHECK(ok && st.free_buffers == st0.free_buffers,
	    "§4.7: list f2 -> f1 -> a free buffer linking on to a ring's buffer: the walk stops at the free one "
	    "(free %u, want %u)", st.free_buffers, st0.free_buffers);
	/* the keeper's buffer is still its own: a new client's buffers never include it */
	struct nmt_port g;
	if (nmt_port_open(&g, pname(n, "xo{1"), 0, 64) == 0) {
		int clash = 0;
		for (uint32_t i = g.nifp->ni_bufs_head, k = 0; i != 0 && k < 64; i = *(uint32_t *)nmd_buf(g.tx, i), k++)
			clash |= i == held;
		for (uint32_t i = 0; i < g.tx->num_slots; i++)
			clash |= g.tx->slot[i].buf_idx == held || g.rx->slot[i].buf_idx == held;
		CHECK(!clash, "§4.7: buffer %u (the keeper's) is not handed to a new client", held);
		nmt_port_close(&g);
	}
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_fidelity");
	snprintf(base, sizeof base, "fi%d", (int)(getpid() % 100000));
	char kn[48];
	struct nmt_port keeper;
	if (nmt_port_open(&keeper, pname(kn, "keep{1"), 0, 0))
		nmt_die("keeper registration failed");
	struct netmapd_pool_stats st0, st;
	nmt_poolstat(keeper.fd, &st0);

	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "options", options }, { "null_ports", null_ports }, { "pipe_geometry", pipe_geometry },
		{ "pipe_clamps", pipe_clamps }, { "empty_name_info", empty_name_info }, { "pools_mem_id", pools_mem_id },
		{ "ringid_raw", ringid_raw }, { "check_order", check_order }, { "close_reopen", close_reopen },
	};
	int all = argc == 1;
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int want = all;
		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], tests[i].name);
		if (want) {
			/* releases of the previous test reach the daemon asynchronously */
			nmt_wait_stat(&st0, &st, 3.0);
			tests[i].fn();
		}
	}
	int want = all;
	for (int a = 1; a < argc; a++)
		want |= !strcmp(argv[a], "extra_list");
	if (want)
		extra_list(&keeper, &st0);

	int back = nmt_wait_stat(&st0, &st, 3.0);
	CHECK(back, "pool exactly as at the start (keeper held): free buffers %u (want %u), rings %u (%u), ifs %u (%u), "
	    "sessions %u (%u), ports %u (%u)", st.free_buffers, st0.free_buffers, st.free_rings, st0.free_rings,
	    st.free_ifs, st0.free_ifs, st.sessions, st0.sessions, st.ports, st0.ports);
	nmt_port_close(&keeper);
	return nmt_summary();
}
