/*
 * nm_errors.c: wrong requests get netmap's answers (spec §3, §5.3-§5.4,
 * §6, §10, §12), and hostile shared memory never hurts the daemon:
 *   - NIOCCTRL header checks (versions, nr_reserved, request types, bodies,
 *     NULL and unmapped pointers, unknown ioctls, unbound descriptors);
 *   - legacy checks (nr_version, write-back on error, nr_cmd);
 *   - names, modes and rings (pipes, unknown interfaces, ONE_NIC range,
 *     mem ids, null ports), NR_EXCLUSIVE, option chains;
 *   - PORT_HDR_*, SYNC_KLOOP_*, CSB_ENABLE;
 *   - corrupted rings: bad head/cur/tail on TX and RX -> the sync ioctl
 *     returns 0 and the ring is left or reset as §5.4 says, poll -> POLLERR;
 *     NS_MOREFRAG framing; poll with no events pushes TX;
 *   - hostile slots (buffers 0, 1, huge, len 65535) through a pipe and the
 *     re-initialisation that repairs them;
 *   - pools running dry: ENOMEM for rings, interface objects, buffers, an
 *     oversized ring; extra buffers granted as far as they go.
 *
 *   nm_errors [-d DEVICE]
 *
 * A keeper registration is held throughout so that the pool is never reset
 * behind our back: at the end the pool counts must be exactly where they
 * started.
 */
#include "nm_common.h"

static char base[24];

static const char *pname(char *buf, const char *suffix)
{
	sprintf(buf, "%s%s", base, suffix);
	return buf;
}

static int ctrl_hdr(int fd, struct nmreq_header *h)
{
	return nmt_ioctl(fd, NIOCCTRL, h);
}

/* A REGISTER on a fresh descriptor; returns the errno, closes the fd. */
static int register_once(const char *name, uint32_t mode, uint16_t ringid, uint64_t flags)
{
	int fd = nmt_open();
	int e = nmd_register(fd, name, mode, ringid, flags, 0, NULL);
	close(fd);
	return e;
}

static int unbound(int fd)
{
	return nmt_ioctl(fd, NIOCTXSYNC, NULL) == ENXIO;
}

static short poll_once(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, 0);
	return r < 0 ? -1 : p.revents;
}

/* ---- §3.3 header checks ---- */
static void header_errors(void)
{
	int fd = nmt_open();
	struct nmreq_header h;
	struct nmreq_register reg;
	struct nmreq_port_info_get info;
	char n[48];

	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "v{1"), &reg);
	h.nr_version = 13;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL nr_version 13");
	CHECK(h.nr_body == (uintptr_t)&reg && h.nr_version == 13, "header written back with the caller's pointers");
	h.nr_version = 16;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL nr_version 16");
	CHECK(unbound(fd), "descriptor unbound after the refused versions");
	memset(&info, 0, sizeof info);
	nmd_req_header(&h, NETMAP_REQ_PORT_INFO_GET, "", &info);
	h.nr_version = 15;
	CHECK_ERRNO(ctrl_hdr(fd, &h), 0, "NIOCCTRL nr_version 15 (NETMAP_MAX_API) accepted");

	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "v{1"), &reg);
	h.nr_reserved = 1;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL nr_reserved != 0");
	nmd_req_header(&h, 0, "", NULL);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL nr_reqtype 0");
	nmd_req_header(&h, 99, "", NULL);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL unknown nr_reqtype 99");
	nmd_req_header(&h, 99, "", &info);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL unknown nr_reqtype 99 with a body");
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "v{1"), NULL);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL REGISTER without a body");
	nmd_req_header(&h, NETMAP_REQ_PORT_INFO_GET, "", NULL);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL PORT_INFO_GET without a body");
	nmd_req_header(&h, NETMAP_REQ_SYNC_KLOOP_STOP, "", &info);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "NIOCCTRL SYNC_KLOOP_STOP with a body (it takes none)");
	CHECK(unbound(fd), "descriptor still unbound");

	memset(&info, 0, sizeof info);
	info.nr_mem_id = 9;
	nmd_req_header(&h, NETMAP_REQ_PORT_INFO_GET, "", &info);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "PORT_INFO_GET of an unknown allocator (nr_mem_id 9)");
	struct nmreq_pools_info pinfo;
	CHECK_ERRNO(nmt_pools_info(fd, "nmdnosuch0", &pinfo), ENXIO, "POOLS_INFO_GET on an unknown interface");

	/* a 64-byte name without NUL: the kernel forces nr_name[63] = 0 */
	nmd_req_header(&h, NETMAP_REQ_REGISTER, "", &reg);
	memset(h.nr_name, 'q', sizeof h.nr_name);
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENXIO, "REGISTER of a 64-byte unterminated name (63 'q's: no such interface)");
	CHECK(h.nr_name[63] == 0 && h.nr_name[62] == 'q', "header written back with nr_name[63] forced to NUL");

	/* a failed request writes nothing into the body (§3.3 copy-out) */
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_SW;
	reg.nr_offset = 0x1111;
	reg.nr_memsize = 0x2222;
	reg.nr_tx_rings = 77;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "b{1"), &reg);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "REGISTER of a pipe with NR_REG_SW");
	CHECK(reg.nr_offset == 0x1111 && reg.nr_memsize == 0x2222 && reg.nr_tx_rings == 77,
	    "body left untouched by the failed request");
	nmd_req_header(&h, NETMAP_REQ_PORT_INFO_GET, "", (void *)0x10);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EFAULT, "body pointer to unmapped memory");

	/* NULL argument: EINVAL in netmap; the FUSE front end's kernel answers
	 * EFAULT before the daemon sees it (a documented difference). */
	int e = nmt_ioctl(fd, NIOCCTRL, NULL);
	CHECK(e == EINVAL || e == EFAULT, "NIOCCTRL with a NULL argument -> %s (EINVAL; EFAULT through FUSE)",
	    nmt_errname(e));
	e = nmt_ioctl(fd, NIOCREGIF, NULL);
	CHECK(e == EINVAL || e == EFAULT, "NIOCREGIF with a NULL argument -> %s (EINVAL; EFAULT through FUSE)",
	    nmt_errname(e));

	CHECK_ERRNO(nmt_ioctl(fd, _IO('i', 152), NULL), EOPNOTSUPP, "unknown ioctl _IO('i', 152)");
	int x = 0;
	CHECK_ERRNO(nmt_ioctl(fd, _IOWR('i', 160, int), &x), EOPNOTSUPP, "unknown ioctl _IOWR('i', 160, int)");
	CHECK_ERRNO(nmt_ioctl(fd, _IOR('z', 7, int), &x), EOPNOTSUPP, "unknown ioctl _IOR('z', 7, int)");
	struct nm_ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.nifr_name, "vale0");
	CHECK_ERRNO(nmt_ioctl(fd, NIOCCONFIG, &ifr), EINVAL, "NIOCCONFIG (no bridge config hook, §3.2)");
	CHECK_ERRNO(nmt_ioctl(fd, NIOCTXSYNC, NULL), ENXIO, "NIOCTXSYNC on an unbound descriptor");
	CHECK_ERRNO(nmt_ioctl(fd, NIOCRXSYNC, NULL), ENXIO, "NIOCRXSYNC on an unbound descriptor");
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	double t0 = nmd_now();
	int r = poll(&p, 1, NMT_MS(3000));
	CHECK(r == 1 && (p.revents & POLLERR) && nmd_now() - t0 < NMT_SEC(1.0),
	    "poll on an unbound descriptor -> POLLERR at once (r %d, revents %#x, %.3f s)", r, p.revents,
	    nmd_now() - t0);
	close(fd);
}

/* ---- §3.2 legacy ---- */
static void legacy_errors(void)
{
	int fd = nmt_open();
	struct nmreq r;
	memset(&r, 0, sizeof r);
	memcpy(r.nr_name, "ABCDEFGHIJKLMNOP", 16);   /* no NUL: the kernel forces one */
	r.nr_version = 11;
	r.nr_flags = NR_REG_PIPE_MASTER;
	r.nr_ringid = 1;
	r.nr_arg3 = 0x55;
	r.nr_offset = 0x1234;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCREGIF, &r), EINVAL, "NIOCREGIF nr_version 11");
	CHECK(r.nr_name[15] == 0 && memcmp(r.nr_name, "ABCDEFGHIJKLMNO", 15) == 0,
	    "legacy struct written back on error: nr_name[15] forced to NUL (got %#x)", (unsigned char)r.nr_name[15]);
	CHECK(r.nr_version == 11 && r.nr_arg3 == 0x55 && r.nr_offset == 0x1234 && r.nr_ringid == 1,
	    "legacy error leaves the other fields as the caller wrote them");
	memset(&r, 0, sizeof r);
	r.nr_version = 13;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCGINFO, &r), EINVAL, "NIOCGINFO nr_version 13");
	memset(&r, 0, sizeof r);
	r.nr_version = 16;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCGINFO, &r), 0, "NIOCGINFO nr_version 16 (no upper bound on the legacy path)");
	CHECK_EQ(r.nr_version, 16, "legacy nr_version not rewritten");
	memset(&r, 0, sizeof r);
	r.nr_version = 14;
	strcpy(r.nr_name, "lg");
	r.nr_cmd = NETMAP_BDG_REGOPS;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCREGIF, &r), EINVAL, "NIOCREGIF unknown nr_cmd (BDG_REGOPS)");
	r.nr_cmd = NETMAP_PT_HOST_CREATE;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCREGIF, &r), ENOMEM, "NIOCREGIF nr_cmd PT_HOST_CREATE (translation quirk)");
	CHECK(unbound(fd), "descriptor still unbound");

	/* a legacy register, then a second one on the same descriptor */
	memset(&r, 0, sizeof r);
	r.nr_version = 14;
	memcpy(r.nr_name, base, strnlen(base, 15));
	r.nr_flags = NR_REG_PIPE_MASTER;
	r.nr_ringid = 9;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCREGIF, &r), 0, "NIOCREGIF pipe master");
	r.nr_flags = NR_REG_PIPE_SLAVE;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCREGIF, &r), EBUSY, "second NIOCREGIF on a bound descriptor");
	char n[48];
	CHECK_ERRNO(nmd_register(fd, pname(n, "z{1"), NR_REG_ALL_NIC, 0, 0, 0, NULL), EBUSY,
	    "NIOCCTRL REGISTER on a bound descriptor");
	close(fd);
}

/* ---- names, modes, rings (§7, §8, §10, §12) ---- */
static void register_errors(void)
{
	char n[48];
	CHECK_ERRNO(register_once("x{", NR_REG_ALL_NIC, 0, 0), EINVAL, "pipe 'x{' (empty id)");
	CHECK_ERRNO(register_once("x}", NR_REG_ALL_NIC, 0, 0), EINVAL, "pipe 'x}' (empty id)");
	CHECK_ERRNO(register_once("{5", NR_REG_ALL_NIC, 0, 0), EINVAL, "pipe '{5' (bracket first)");
	CHECK_ERRNO(register_once(pname(n, "{1"), NR_REG_SW, 0, 0), EINVAL, "pipe with mode NR_REG_SW");
	CHECK_ERRNO(register_once(pname(n, "{1"), NR_REG_NIC_SW, 0, 0), EINVAL, "pipe with mode NR_REG_NIC_SW");
	CHECK_ERRNO(register_once(pname(n, "{1"), NR_REG_ONE_SW, 0, 0), EINVAL, "pipe with mode NR_REG_ONE_SW");
	CHECK_ERRNO(register_once(pname(n, "{1"), NR_REG_DEFAULT, 0, 0), EINVAL, "NIOCCTRL mode 0 (legacy only)");
	CHECK_ERRNO(register_once(base, NR_REG_PIPE_MASTER, 1, 0), EINVAL, "NIOCCTRL mode NR_REG_PIPE_MASTER (legacy only)");
	CHECK_ERRNO(register_once(base, NR_REG_PIPE_SLAVE, 1, 0), EINVAL, "NIOCCTRL mode NR_REG_PIPE_SLAVE (legacy only)");
	CHECK_ERRNO(register_once(pname(n, "{1"), 42, 0, 0), EINVAL, "unknown mode 42");
	CHECK_ERRNO(register_once("nmdnosuch0", NR_REG_ALL_NIC, 0, 0), ENXIO, "unknown interface 'nmdnosuch0'");
	int fd = nmt_open();
	struct nmreq_header h;
	struct nmreq_port_info_get info;
	memset(&info, 0, sizeof info);
	nmd_req_header(&h, NETMAP_REQ_PORT_INFO_GET, "nmdnosuch0", &info);
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENXIO, "PORT_INFO_GET on an unknown interface");
	close(fd);
	CHECK_ERRNO(register_once(pname(n, "{1"), NR_REG_ONE_NIC, 1, 0), EINVAL,
	    "ONE_NIC ring 1 on a one-ring pipe (out of range)");
	CHECK_ERRNO(register_once(pname(n, "{1"), NR_REG_ONE_NIC, 0, 0), 0, "ONE_NIC ring 0 on the same pipe");

	struct nmreq_register reg;
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;
	reg.nr_mem_id = 7;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "m{1"), &reg);
	fd = nmt_open();
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "REGISTER with an unknown nr_mem_id 7");
	CHECK(unbound(fd), "descriptor still unbound");
	close(fd);
	CHECK_ERRNO(register_once(pname(n, "null"), NR_REG_NULL, 0, 0), EINVAL, "null port without nr_mem_id");
	fd = nmt_open();
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_NULL;
	reg.nr_mem_id = 1;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "null"), &reg);
	CHECK_ERRNO(ctrl_hdr(fd, &h), 0, "null port with nr_mem_id 1");
	CHECK_ERRNO(nmt_ioctl(fd, NIOCTXSYNC, NULL), 0, "null port: NIOCTXSYNC does nothing, returns 0");
	close(fd);
}

/* ---- NR_EXCLUSIVE (§7) ---- */
static void exclusive_errors(void)
{
	char n[48], s[48];
	pname(n, "ex{1");
	pname(s, "ex}1");
	int a = nmt_open(), b = nmt_open(), c = nmt_open();
	CHECK_ERRNO(nmd_register(a, n, NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL), 0, "REGISTER master NR_EXCLUSIVE");
	CHECK_ERRNO(nmd_register(b, n, NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL), EBUSY,
	    "second REGISTER of that end with NR_EXCLUSIVE");
	CHECK_ERRNO(nmd_register(b, n, NR_REG_ALL_NIC, 0, 0, 0, NULL), EBUSY,
	    "second REGISTER of that end without NR_EXCLUSIVE");
	CHECK(unbound(b), "refused descriptor stays unbound");
	CHECK_ERRNO(nmd_register(c, s, NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL), 0,
	    "the other end is not affected (its own rings)");
	struct netmapd_pool_stats st;
	nmt_poolstat(-1, &st);
	close(a);
	nmt_wait_sessions(st.sessions - 1, 3.0);   /* release is asynchronous */
	CHECK_ERRNO(nmd_register(b, n, NR_REG_ALL_NIC, 0, 0, 0, NULL), 0, "after the exclusive owner closed: shared REGISTER");
	int d = nmt_open();
	CHECK_ERRNO(nmd_register(d, n, NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL), EBUSY,
	    "NR_EXCLUSIVE on an end already in shared use");
	close(d);
	close(b);
	close(c);
}

/* ---- option chains (§3.3) ---- */
static void option_errors(void)
{
	char n[48];
	int fd = nmt_open();
	struct nmreq_header h;
	struct nmreq_register reg;
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;

	struct nmreq_option o0;
	memset(&o0, 0, sizeof o0);
	o0.nro_size = sizeof o0;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "o{1"), &reg);
	h.nr_options = (uintptr_t)&o0;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "option of type 0");
	CHECK_EQ(o0.nro_status, EINVAL, "type-0 option nro_status");

	struct nmreq_opt_offsets a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.nro_opt.nro_reqtype = b.nro_opt.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
	a.nro_opt.nro_size = b.nro_opt.nro_size = sizeof a;
	a.nro_opt.nro_next = (uintptr_t)&b;
	h.nr_options = (uintptr_t)&a;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "the same option type twice");
	CHECK(a.nro_opt.nro_status == EINVAL && b.nro_opt.nro_status == EINVAL,
	    "both duplicates get nro_status EINVAL (%u, %u)", a.nro_opt.nro_status, b.nro_opt.nro_status);

	/* sizes are checked for known types (an unknown one is only left
	 * EOPNOTSUPP: nm_fidelity checks that) */
	struct nmreq_option big;
	memset(&big, 0, sizeof big);
	big.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
	big.nro_size = 5000;
	h.nr_options = (uintptr_t)&big;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EMSGSIZE, "OFFSETS option with nro_size 5000 (> 4096)");

	struct nmreq_option loop;
	memset(&loop, 0, sizeof loop);
	loop.nro_reqtype = 77;
	loop.nro_size = sizeof loop;
	loop.nro_next = (uintptr_t)&loop;
	h.nr_options = (uintptr_t)&loop;
	double t0 = nmd_now();
	CHECK_ERRNO(ctrl_hdr(fd, &h), EMSGSIZE, "cyclic list of unknown options");
	CHECK(nmd_now() - t0 < NMT_SEC(5.0), "cyclic list answered in %.3f s", nmd_now() - t0);

	struct nmreq_opt_offsets self;
	memset(&self, 0, sizeof self);
	self.nro_opt.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
	self.nro_opt.nro_size = sizeof self;
	self.nro_opt.nro_next = (uintptr_t)&self;
	h.nr_options = (uintptr_t)&self;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "cyclic list of a known option (a duplicate)");

	struct nmreq_option bad;
	memset(&bad, 0, sizeof bad);
	bad.nro_reqtype = 77;
	bad.nro_size = sizeof bad;
	bad.nro_next = 0x10;   /* unmapped */
	h.nr_options = (uintptr_t)&bad;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EFAULT, "option chain pointing to unmapped memory");
	CHECK(unbound(fd), "descriptor still unbound after the option errors");

	/* options on a non-REGISTER request are ignored (§3.3 "Leftover options") */
	struct nmreq_option un;
	memset(&un, 0, sizeof un);
	un.nro_reqtype = 77;
	un.nro_size = sizeof un;
	struct nmreq_port_info_get info;
	memset(&info, 0, sizeof info);
	nmd_req_header(&h, NETMAP_REQ_PORT_INFO_GET, "", &info);
	h.nr_options = (uintptr_t)&un;
	CHECK_ERRNO(ctrl_hdr(fd, &h), 0, "unknown option on PORT_INFO_GET is ignored");
	CHECK_EQ(un.nro_status, EOPNOTSUPP, "its nro_status");
	close(fd);
}

/* ---- corrupted rings (§5.3, §5.4, §6) ---- */
static void fill(struct netmap_ring *tx, uint64_t first, uint32_t count)
{
	uint32_t i = tx->head;
	for (uint32_t k = 0; k < count; k++) {
		struct netmap_slot *s = &tx->slot[i];
		s->len = nmt_frame_len(5, first + k);
		s->flags = 0;
		nmt_frame_fill(nmd_buf(tx, s->buf_idx), first + k, s->len);
		i = nmd_next(tx, i);
	}
	tx->head = tx->cur = i;
}

/* Receives everything pending on the port's RX ring, checking each frame
 * (seed 5, numbered from *next); releases them; returns how many (-1 on a
 * bad frame). */
static int drain(struct nmt_port *p, uint64_t *next)
{
	if (nmt_ioctl(p->fd, NIOCRXSYNC, NULL))
		return -1;
	struct netmap_ring *rx = p->rx;
	int n = 0;
	while (rx->head != rx->tail) {
		struct netmap_slot *s = &rx->slot[rx->head];
		uint16_t len = nmt_frame_len(5, *next);
		if (s->len != len || nmt_frame_check(nmd_buf(rx, s->buf_idx), *next, len))
			return -1;
		(*next)++;
		n++;
		rx->head = rx->cur = nmd_next(rx, rx->head);
	}
	nmt_ioctl(p->fd, NIOCRXSYNC, NULL);
	return n;
}

static void corrupted_rings(void)
{
	char mn[48], sn[48];
	struct nmt_port m, s;
	if (nmt_port_open(&m, pname(mn, "cr{1"), 0, 0) || nmt_port_open(&s, pname(sn, "cr}1"), 0, 0)) {
		CHECK(0, "corrupted rings: could not register the pipe");
		return;
	}
	struct netmap_ring *tx = m.tx, *rx = s.rx;
	uint32_t n = tx->num_slots;
	fill(tx, 0, 10);
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "send 10 frames");
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(rx->tail == 10 && tx->tail == n - 1, "receiver sees 10 (tail %u), sender tail %u (nothing released)",
	    rx->tail, tx->tail);

	/* TX head moved back behind the last sync: outside [rhead .. rtail] */
	tx->head = tx->cur = 5;
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "NIOCTXSYNC with TX head beyond tail (5, valid 10..1023) returns 0");
	CHECK(tx->head == 5 && tx->cur == 5 && tx->tail == n - 1,
	    "in-range but inconsistent indices are left as written (head %u cur %u tail %u, want 5 5 %u)", tx->head,
	    tx->cur, tx->tail, n - 1);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(rx->tail == 10, "the bad sync was skipped: receiver still has 10 (tail %u)", rx->tail);
	tx->head = tx->cur = 3;   /* behind the (re-initialised) head of 5 */
	short re = poll_once(m.fd, POLLOUT);
	CHECK(re > 0 && (re & POLLERR), "poll with a bad TX head -> POLLERR (revents %#x)", re);
	tx->head = tx->cur = 10;
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "head restored to 10");
	re = poll_once(m.fd, POLLOUT);
	CHECK(re == POLLOUT, "poll after the repair: POLLOUT, no POLLERR (revents %#x)", re);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(rx->tail == 10, "nothing was sent twice (receiver tail %u)", rx->tail);

	/* out-of-range head: indices reset to the daemon's (§5.4 step 3) */
	tx->head = n + 5;
	tx->cur = n + 5;
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "NIOCTXSYNC with head > n-1 returns 0");
	CHECK(tx->head == 10 && tx->cur == 10 && tx->tail == n - 1,
	    "out-of-range head: head/cur/tail reset to hwcur/hwcur/hwtail (%u %u %u, want 10 10 %u)", tx->head,
	    tx->cur, tx->tail, n - 1);

	/* a tail changed by the user while head/cur are fine: silently restored (§5.3) */
	tx->tail = 7;
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "NIOCTXSYNC with a user-modified tail");
	CHECK(tx->tail == n - 1, "tail restored (%u, want %u)", tx->tail, n - 1);

	/* RX head beyond tail */
	rx->head = rx->cur = 12;
	CHECK_ERRNO(nmt_ioctl(s.fd, NIOCRXSYNC, NULL), 0, "NIOCRXSYNC with RX head beyond tail returns 0");
	rx->head = rx->cur = 12;
	re = poll_once(s.fd, POLLIN);
	CHECK(re > 0 && (re & POLLERR), "poll with a bad RX head -> POLLERR (revents %#x)", re);
	rx->head = rx->cur = 10;
	CHECK_ERRNO(nmt_ioctl(s.fd, NIOCRXSYNC, NULL), 0, "RX head put back at the tail");

	/* the ring still carries traffic, in order */
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	fill(tx, 10, 5);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	uint64_t next = 10;
	int got = drain(&s, &next);
	CHECK(got == 5, "after the repairs 5 more frames arrive intact and in order (%d)", got);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	CHECK(nmd_space(tx) == n - 1, "sender fully reclaimed (space %u)", nmd_space(tx));

	/* poll with events == 0 still pushes pending TX (§6) */
	fill(tx, 15, 1);
	struct pollfd p = { .fd = m.fd, .events = 0 };
	poll(&p, 1, 0);
	got = drain(&s, &next);
	CHECK(got == 1, "poll with events == 0 pushed the pending frame (%d received)", got);
	re = poll_once(s.fd, POLLIN);
	CHECK(re == 0, "poll(POLLIN) on an empty RX ring with timeout 0 -> nothing (revents %#x)", re);

	/* frames end at a slot without NS_MOREFRAG (§12) */
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	uint32_t h0 = tx->head;
	fill(tx, 16, 3);
	for (uint32_t i = h0, k = 0; k < 3; k++, i = nmd_next(tx, i))
		tx->slot[i].flags = NS_MOREFRAG;
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(nmd_space(rx) == 0, "an incomplete frame (3 slots, all NS_MOREFRAG) is not delivered (%u visible)",
	    nmd_space(rx));
	fill(tx, 19, 1);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(nmd_space(rx) == 4 && (rx->slot[rx->head].flags & NS_MOREFRAG) &&
	    !(rx->slot[(rx->head + 3) % n].flags & NS_MOREFRAG),
	    "its last slot completes it: 4 slots delivered, NS_MOREFRAG kept on the first 3 (%u)", nmd_space(rx));
	next = 16;
	got = drain(&s, &next);
	CHECK(got == 4, "fragments carry the bytes sent (%d)", got);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);

	nmt_port_close(&s);
	nmt_port_close(&m);
}

/* ---- hostile slots (§4.6, §5.4, §12) ---- */
static void hostile_slots(uint32_t buf_total)
{
	char mn[48], sn[48];
	struct nmt_port m, s;
	if (nmt_port_open(&m, pname(mn, "hs{1"), 0, 0) || nmt_port_open(&s, pname(sn, "hs}1"), 0, 0)) {
		CHECK(0, "hostile slots: could not register the pipe");
		return;
	}
	struct netmap_ring *tx = m.tx, *rx = s.rx;
	uint32_t n = tx->num_slots;
	uint32_t orig[16];
	for (int i = 0; i < 16; i++)
		orig[i] = tx->slot[i].buf_idx;
	const uint32_t bad_idx[6] = { 0, 1, 0xfffffff0u, buf_total + 5, orig[4], orig[5] };
	const uint16_t bad_len[6] = { 60, 60, 60, 100, 65535, 2048 };
	for (int i = 0; i < 6; i++) {
		tx->slot[i].buf_idx = bad_idx[i];
		tx->slot[i].len = bad_len[i];
		tx->slot[i].flags = NS_BUF_CHANGED;
	}
	nmt_frame_fill(nmd_buf(tx, orig[5]), 777, 2048);
	tx->head = tx->cur = 6;
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0,
	    "NIOCTXSYNC with slots naming buffers 0, 1, 0xfffffff0, total+5 and len 65535");
	struct netmapd_pool_stats st;
	CHECK_ERRNO(nmt_poolstat(-1, &st), 0, "daemon alive and answering");
	CHECK_ERRNO(nmt_ioctl(s.fd, NIOCRXSYNC, NULL), 0, "peer NIOCRXSYNC");
	CHECK(nmd_space(rx) == 6, "peer sees 6 slots (%u)", nmd_space(rx));
	int verbatim = 1;
	for (int i = 0; i < 6; i++) {
		if (rx->slot[i].buf_idx != bad_idx[i] || rx->slot[i].len != bad_len[i])
			verbatim = 0;
		nmt_info("peer RX slot %d: buf_idx %u len %u flags %#x", i, rx->slot[i].buf_idx, rx->slot[i].len,
		    rx->slot[i].flags);
	}
	CHECK(verbatim, "peer sees the slot descriptors as sent (a pipe copies descriptors, §12)");
	CHECK(nmt_frame_check(nmd_buf(rx, rx->slot[5].buf_idx), 777, 2048) == 0, "the one valid frame is intact");

	/* force a re-initialisation of the peer's RX ring: bad slots repaired (§5.4 step 2) */
	rx->head = rx->cur = 8;   /* beyond tail 6 */
	CHECK_ERRNO(nmt_ioctl(s.fd, NIOCRXSYNC, NULL), 0, "peer NIOCRXSYNC with head beyond tail");
	int repaired = rx->slot[0].buf_idx == 0 && rx->slot[0].len == 0 && rx->slot[1].buf_idx == 0 &&
	    rx->slot[1].len == 0 && rx->slot[2].buf_idx == 0 && rx->slot[2].len == 0 && rx->slot[3].buf_idx == 0 &&
	    rx->slot[3].len == 0 && rx->slot[4].buf_idx == orig[4] && rx->slot[4].len == 0 &&
	    rx->slot[5].buf_idx == orig[5] && rx->slot[5].len == 2048;
	CHECK(repaired, "re-init: slots with buffers <2 or >= total become buf 0 len 0, len 65535 becomes 0, the valid slot stays");
	for (int i = 0; i < 6; i++)
		if (!repaired)
			nmt_info("after re-init: peer RX slot %d: buf_idx %u len %u", i, rx->slot[i].buf_idx, rx->slot[i].len);
	rx->head = rx->cur = 6;
	CHECK_ERRNO(nmt_ioctl(s.fd, NIOCRXSYNC, NULL), 0, "peer releases the 6 slots");
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "sender reclaims them");
	CHECK(nmd_space(tx) == n - 1, "sender fully reclaimed (space %u)", nmd_space(tx));

	/* a TX ring with hostile slots and a bad head: re-init repairs them too */
	for (int i = 6; i < 10; i++) {
		tx->slot[i].buf_idx = i & 1 ? 0xffffffffu : 1;
		tx->slot[i].len = 60;
	}
	tx->slot[10].len = 4000;
	tx->head = tx->cur = n + 1;
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "NIOCTXSYNC with hostile TX slots and head > n-1");
	int txrep = tx->slot[6].buf_idx == 0 && tx->slot[6].len == 0 && tx->slot[7].buf_idx == 0 && tx->slot[7].len == 0 &&
	    tx->slot[10].buf_idx == orig[10] && tx->slot[10].len == 0 && tx->head == 6 && tx->cur == 6;
	CHECK(txrep, "TX re-init: bad slots become buf 0 len 0, oversized len 0, head/cur back at hwcur (head %u)",
	    tx->head);

	/* put the real buffers back (a client must own each buffer once) and check the ring works */
	for (int i = 0; i < 16; i++) {
		tx->slot[i].buf_idx = orig[i];
		tx->slot[i].flags = NS_BUF_CHANGED;
	}
	/* send more than a ring's worth, so that the repaired slots are used again */
	uint64_t sent = 0, next = 0;
	int bad = 0;
	while (sent < n + 10) {
		uint32_t room = nmd_space(tx), i = tx->head, k;
		for (k = 0; k < room && k < 200; k++, sent++) {
			struct netmap_slot *sl = &tx->slot[i];
			sl->len = nmt_frame_len(5, sent);
			nmt_frame_fill(nmd_buf(tx, sl->buf_idx), sent, sl->len);
			i = nmd_next(tx, i);
		}
		tx->head = tx->cur = i;
		nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
		int g = drain(&s, &next);
		if (g < 0)
			bad = 1;
		nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	}
	CHECK(!bad && next == sent, "after the hostile round the pipe carries %llu frames intact (%llu received)",
	    (unsigned long long)sent, (unsigned long long)next);
	nmt_port_close(&s);
	nmt_port_close(&m);
}

/* ---- port headers, kloop and CSB requests (§3.4; VALE ports: nm_vale) ---- */
static void other_requests(void)
{
	char n[48];
	int fd = nmt_open(), k = nmt_open();
	struct nmreq_header h;
	struct nmreq_port_hdr ph;
	memset(&ph, 0, sizeof ph);
	nmd_req_header(&h, NETMAP_REQ_PORT_HDR_GET, pname(n, "ph{1"), &ph);
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENODEV, "PORT_HDR_GET on a pipe that does not exist");
	nmd_req_header(&h, NETMAP_REQ_PORT_HDR_GET, "nmdnosuch0", &ph);
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENXIO, "PORT_HDR_GET on an unknown interface");
	CHECK_ERRNO(nmd_register(k, n, NR_REG_ALL_NIC, 0, 0, 0, NULL), 0, "REGISTER that pipe");
	ph.nr_hdr_len = 77;
	nmd_req_header(&h, NETMAP_REQ_PORT_HDR_GET, n, &ph);
	int e = ctrl_hdr(fd, &h);
	CHECK(e == 0 && ph.nr_hdr_len == 0, "PORT_HDR_GET on the existing pipe: %s, length %u (want 0)", nmt_errname(e),
	    ph.nr_hdr_len);
	ph.nr_hdr_len = 10;
	nmd_req_header(&h, NETMAP_REQ_PORT_HDR_SET, n, &ph);
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENXIO, "PORT_HDR_SET on a pipe (not a VALE port)");
	ph.nr_hdr_len = 11;
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "PORT_HDR_SET with length 11");

	struct nmreq_sync_kloop_start ks = { 2000000, 0 };
	nmd_req_header(&h, NETMAP_REQ_SYNC_KLOOP_START, "", &ks);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "SYNC_KLOOP_START with sleep_us 2000000");
	ks.sleep_us = 100;
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENXIO, "SYNC_KLOOP_START on an unbound descriptor");
	CHECK_ERRNO(ctrl_hdr(k, &h), EINVAL, "SYNC_KLOOP_START on a bound descriptor without CSB mode");
	nmd_req_header(&h, NETMAP_REQ_SYNC_KLOOP_STOP, "", NULL);
	CHECK_ERRNO(ctrl_hdr(fd, &h), ENXIO, "SYNC_KLOOP_STOP on an unbound descriptor");
	nmd_req_header(&h, NETMAP_REQ_CSB_ENABLE, "", NULL);
	CHECK_ERRNO(ctrl_hdr(fd, &h), EINVAL, "CSB_ENABLE without a CSB option");
	struct nmreq_opt_csb csb;
	memset(&csb, 0, sizeof csb);
	csb.nro_opt.nro_reqtype = NETMAP_REQ_OPT_CSB;
	csb.nro_opt.nro_size = sizeof csb;
	h.nr_options = (uintptr_t)&csb;
	CHECK_ERRNO(ctrl_hdr(fd, &h), 0, "CSB_ENABLE on an unbound descriptor: a no-op");
	CHECK_EQ(csb.nro_opt.nro_status, 0, "its CSB option status");
	close(k);
	close(fd);
}

/* ---- pools running dry (§4.7, §10: ENOMEM, fewer extra buffers) ---- */
static void exhaustion(uint32_t pi_ring_objsize, const struct netmapd_pool_stats *start)
{
	char n[48];
	int fd;
	struct netmapd_pool_stats st0, st;
	/* What the sections before closed is released asynchronously (a slow,
	 * e.g. sanitized, daemon may still be at it): count from the pool as
	 * it was with only the keeper registered. */
	nmt_wait_pool(start, &st0, 10.0);

	/* ring objects: each new pipe takes 4 */
	static int fds[1100];
	int k = 0, e = 0;
	while (k < 1000) {
		fds[k] = nmt_open();
		sprintf(n, "%sx%d{1", base, k);
		e = nmd_register(fds[k], n, NR_REG_ALL_NIC, 0, 0, 0, NULL);
		if (e) {
			close(fds[k]);
			break;
		}
		k++;
	}
	nmt_poolstat(-1, &st);
	CHECK(e == ENOMEM && k == (int)st0.free_rings / 4,
	    "pipes until the ring pool is dry: %d made (want %u), then %s (want ENOMEM)", k, st0.free_rings / 4,
	    nmt_errname(e));
	CHECK(st.free_rings == st0.free_rings % 4 && st.ports == st0.ports + 2 * k,
	    "the refused pipe left nothing behind: free rings %u (want %u), ports %u (want %u)", st.free_rings,
	    st0.free_rings % 4, st.ports, st0.ports + 2 * k);
	for (int i = 0; i < k; i++)
		close(fds[i]);
	int back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back, "all back after closing them (free rings %u, want %u)", st.free_rings, st0.free_rings);

	/* interface objects: one per registered descriptor */
	k = 0;
	pname(n, "xi{1");
	while (k < 1000) {
		fds[k] = nmt_open();
		e = nmd_register(fds[k], n, NR_REG_ALL_NIC, 0, 0, 0, NULL);
		if (e) {
			close(fds[k]);
			break;
		}
		k++;
	}
	CHECK(e == ENOMEM && k == (int)st0.free_ifs, "descriptors on one pipe end until the if pool is dry: %d (want %u), then %s (want ENOMEM)",
	    k, st0.free_ifs, nmt_errname(e));
	for (int i = 0; i < k; i++)
		close(fds[i]);
	back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back, "all back after closing them (free ifs %u, want %u)", st.free_ifs, st0.free_ifs);

	/* a ring larger than a ring object (§4.2, §14.11) */
	uint32_t max_slots = (pi_ring_objsize - 256) / 16;
	fd = nmt_open();
	struct nmreq_register big;
	memset(&big, 0, sizeof big);
	big.nr_mode = NR_REG_ALL_NIC;
	big.nr_tx_slots = big.nr_rx_slots = max_slots;
	struct nmreq_header h;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "xs{1"), &big);
	e = nmt_ioctl(fd, NIOCCTRL, &h);
	CHECK(e == 0 && big.nr_tx_slots == max_slots, "pipe with %u-slot rings (the most a ring object holds): %s, %u slots",
	    max_slots, nmt_errname(e), big.nr_tx_slots);
	close(fd);
	fd = nmt_open();
	memset(&big, 0, sizeof big);
	big.nr_mode = NR_REG_ALL_NIC;
	big.nr_tx_slots = big.nr_rx_slots = max_slots + 1;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "xt{1"), &big);
	CHECK_ERRNO(nmt_ioctl(fd, NIOCCTRL, &h), ENOMEM, "pipe with one slot more than a ring object holds");
	close(fd);
	back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back, "all back (free rings %u, want %u)", st.free_rings, st0.free_rings);

	/* buffers: ask for more extra buffers than exist */
	fd = nmt_open();
	struct nmreq_register reg;
	e = nmd_register(fd, pname(n, "xb{1"), NR_REG_ALL_NIC, 0, 0, 1000000, &reg);
	uint32_t want = st0.free_buffers - 2 * 1024;
	CHECK(e == 0 && reg.nr_extra_bufs == want, "REGISTER asking 1000000 extra buffers: %s, granted %u (want all %u left)",
	    nmt_errname(e), reg.nr_extra_bufs, want);
	nmt_poolstat(-1, &st);
	CHECK_EQ(st.free_buffers, 0, "free buffers after that");
	CHECK_ERRNO(register_once(pname(n, "xc{1"), NR_REG_ALL_NIC, 0, 0), ENOMEM, "a new pipe with no buffers left");
	close(fd);
	back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back, "all back after closing (free buffers %u, want %u)", st.free_buffers, st0.free_buffers);
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_errors");
	snprintf(base, sizeof base, "er%d", (int)(getpid() % 100000));

	int kfd = nmt_open();
	char kn[48];
	CHECK_ERRNO(nmd_register(kfd, pname(kn, "keep{1"), NR_REG_ALL_NIC, 0, 0, 0, NULL), 0, "keeper registration");
	struct netmapd_pool_stats st0, st;
	nmt_poolstat(kfd, &st0);
	struct nmreq_pools_info pi;
	nmt_pools_info(kfd, kn, &pi);

	header_errors();
	legacy_errors();
	register_errors();
	exclusive_errors();
	option_errors();
	other_requests();
	corrupted_rings();
	hostile_slots(pi.nr_buf_pool_objtotal);
	exhaustion(pi.nr_ring_pool_objsize, &st0);

	/* the daemon still serves, and every buffer came back */
	char a[48], b[48];
	struct nmt_port m, s;
	int e1 = nmt_port_open(&m, pname(a, "fin{1"), 0, 0), e2 = e1 ? -1 : nmt_port_open(&s, pname(b, "fin}1"), 0, 0);
	if (CHECK(e1 == 0 && e2 == 0, "fresh registration after all of the above")) {
		fill(m.tx, 0, 100);
		nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
		uint64_t next = 0;
		CHECK(drain(&s, &next) == 100, "and 100 frames through it");
		nmt_port_close(&s);
		nmt_port_close(&m);
	}
	int back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back && st.sessions == st0.sessions && st.ports == st0.ports,
	    "pool exactly as at the start (keeper held): free buffers %u (want %u), rings %u (%u), ifs %u (%u), sessions %u (%u), ports %u (%u)",
	    st.free_buffers, st0.free_buffers, st.free_rings, st0.free_rings, st.free_ifs, st0.free_ifs, st.sessions,
	    st0.sessions, st.ports, st0.ports);
	close(kfd);
	return nmt_summary();
}
