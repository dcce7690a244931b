/*
 * nm_classic.c: the classic (legacy struct nmreq) flow, as nm_open() era
 * programs do it: NIOCGINFO, NIOCREGIF (nr_version 14), mmap nr_memsize
 * bytes, then NIOCTXSYNC / NIOCRXSYNC. Checks what comes back (spec §3.2,
 * §4.3-§4.5, §5, §12) and moves frames both ways through a pipe.
 *
 *   nm_classic [-d DEVICE] [FRAMES]      (FRAMES per direction, default 3000)
 */
#include "nm_common.h"

static void legacy_init(struct nmreq *r, const char *name, uint32_t flags, uint16_t ringid)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->nr_name, sizeof(r->nr_name), "%s", name);
	r->nr_version = NETMAP_API;
	r->nr_flags = flags;
	r->nr_ringid = ringid;
}

/* One legacy-registered, mapped descriptor. */
struct lport {
	int fd;
	struct nmreq req;
	void *mem;
	struct netmap_if *nifp;
};

static int lport_open(struct lport *p, const char *name, uint32_t flags, uint16_t ringid, uint16_t rings)
{
	p->fd = nmt_open();
	legacy_init(&p->req, name, flags, ringid);
	p->req.nr_tx_rings = p->req.nr_rx_rings = rings;
	int e = nmt_ioctl(p->fd, NIOCREGIF, &p->req);
	if (e) {
		close(p->fd);
		p->fd = -1;
		return e;
	}
	p->mem = nmt_mmap(p->fd, p->req.nr_memsize);
	p->nifp = nmd_if(p->mem, p->req.nr_offset);
	return 0;
}

static void lport_close(struct lport *p)
{
	munmap(p->mem, p->req.nr_memsize);
	close(p->fd);
}

static uint64_t region_off(struct lport *p, const void *addr)
{
	return (uint64_t)((const char *)addr - (const char *)p->mem);
}

/* Ring header checks of a freshly bound ring (§4.4). */
static void check_fresh_ring(struct lport *p, struct netmap_ring *r, int tx, uint32_t slots,
    uint16_t ringid, const struct nmreq_pools_info *pi, const char *who)
{
	char what[160];
	snprintf(what, sizeof what, "%s %s ring: num_slots", who, tx ? "TX" : "RX");
	CHECK_EQ(r->num_slots, slots, what);
	snprintf(what, sizeof what, "%s %s ring: nr_buf_size", who, tx ? "TX" : "RX");
	CHECK_EQ(r->nr_buf_size, 2048, what);
	snprintf(what, sizeof what, "%s %s ring: ringid", who, tx ? "TX" : "RX");
	CHECK_EQ(r->ringid, ringid, what);
	snprintf(what, sizeof what, "%s %s ring: dir (1 = TX, 0 = RX, §4.4)", who, tx ? "TX" : "RX");
	CHECK_EQ(r->dir, tx ? 1 : 0, what);
	CHECK(r->head == 0 && r->cur == 0 && r->tail == (tx ? slots - 1 : 0),
	    "%s %s ring: head/cur/tail %u/%u/%u (want 0/0/%u)", who, tx ? "TX" : "RX", r->head,
	    r->cur, r->tail, tx ? slots - 1 : 0);
	uint64_t roff = region_off(p, r);
	CHECK(roff >= pi->nr_ring_pool_offset &&
	    roff < pi->nr_ring_pool_offset + (uint64_t)pi->nr_ring_pool_objtotal * pi->nr_ring_pool_objsize &&
	    (roff - pi->nr_ring_pool_offset) % pi->nr_ring_pool_objsize == 0,
	    "%s %s ring at region offset %#llx is a ring-pool object", who, tx ? "TX" : "RX",
	    (unsigned long long)roff);
	CHECK((int64_t)roff + r->buf_ofs == (int64_t)pi->nr_buf_pool_offset,
	    "%s %s ring: ring offset %#llx + buf_ofs %#llx = buffer pool offset %#llx", who,
	    tx ? "TX" : "RX", (unsigned long long)roff, (unsigned long long)r->buf_ofs,
	    (unsigned long long)pi->nr_buf_pool_offset);
	CHECK(nmd_buf(r, 5) == (char *)p->mem + pi->nr_buf_pool_offset + 5 * 2048,
	    "%s %s ring: buffer 5 address from buf_ofs matches the pool", who, tx ? "TX" : "RX");
	int bad = 0;
	for (uint32_t i = 0; i < r->num_slots; i++) {
		struct netmap_slot *s = &r->slot[i];
		if (s->buf_idx < 2 || s->buf_idx >= pi->nr_buf_pool_objtotal || s->len != 2048 || s->flags)
			bad++;
	}
	CHECK(bad == 0, "%s %s ring: every slot has a valid buffer, len 2048, flags 0 (%d bad)", who,
	    tx ? "TX" : "RX", bad);
}

static int send_frames(struct lport *m, struct lport *s, uint64_t seed, uint64_t first, uint64_t count,
    const char *dir)
{
	struct netmap_ring *tx = nmd_txring(m->nifp, 0);
	struct netmap_ring *rx = nmd_rxring(s->nifp, 0);
	uint64_t sent = first, got = first, end = first + count, s_rng = seed;
	int errors = 0, zerocopy_bad = 0;
	while (got < end) {
		/* fill a batch */
		uint32_t want = 1 + nmt_splitmix(&s_rng) % 300;
		uint32_t space = nmd_space(tx);
		uint32_t i = tx->head;
		for (uint32_t k = 0; k < want && k < space && sent < end; k++, sent++) {
			struct netmap_slot *sl = &tx->slot[i];
			sl->len = nmt_frame_len(seed, sent);
			nmt_frame_fill(nmd_buf(tx, sl->buf_idx), sent, sl->len);
			sl->flags = 0;
			i = nmd_next(tx, i);
		}
		tx->head = tx->cur = i;
		if (nmt_ioctl(m->fd, NIOCTXSYNC, NULL) != 0) {
			CHECK(0, "%s: NIOCTXSYNC failed: %s", dir, strerror(errno));
			return 1;
		}
		if (nmt_ioctl(s->fd, NIOCRXSYNC, NULL) != 0) {
			CHECK(0, "%s: NIOCRXSYNC failed: %s", dir, strerror(errno));
			return 1;
		}
		uint32_t avail = nmd_space(rx);
		if (got + avail > sent) {
			CHECK(0, "%s: receiver sees %u frames, only %llu in flight", dir, avail,
			    (unsigned long long)(sent - got));
			return 1;
		}
		if (avail == 0 && sent > got) {
			CHECK(0, "%s: %llu frames sent and synced, receiver sees none", dir,
			    (unsigned long long)(sent - got));
			return 1;
		}
		uint32_t j = rx->head;
		for (uint32_t k = 0; k < avail; k++, got++) {
			struct netmap_slot *sl = &rx->slot[j];
			uint16_t len = nmt_frame_len(seed, got);
			if (sl->buf_idx != tx->slot[j].buf_idx)
				zerocopy_bad++;
			if (sl->len != len) {
				if (errors++ < 5)
					CHECK(0, "%s: frame %llu: len %u, want %u", dir, (unsigned long long)got,
					    sl->len, len);
			} else {
				size_t bad = nmt_frame_check(nmd_buf(rx, sl->buf_idx), got, len);
				if (bad && errors++ < 5)
					CHECK(0, "%s: frame %llu: byte %zu differs", dir, (unsigned long long)got,
					    bad - 1);
			}
			j = nmd_next(rx, j);
		}
		rx->head = rx->cur = j;
		nmt_ioctl(s->fd, NIOCRXSYNC, NULL);   /* give the slots back */
		nmt_ioctl(m->fd, NIOCTXSYNC, NULL);   /* reclaim them */
	}
	CHECK(errors == 0, "%s: %llu frames, every byte as sent, in order", dir,
	    (unsigned long long)count);
	CHECK(zerocopy_bad == 0, "%s: RX slot k carries the buffer of TX slot k (§12), %d differ", dir,
	    zerocopy_bad);
	CHECK(nmd_space(tx) == tx->num_slots - 1,
	    "%s: after the receiver released all, TX has n-1 free slots (tail %u head %u)", dir, tx->tail,
	    tx->head);
	CHECK(rx->ts.tv_sec != 0, "%s: RX ring timestamp set by NIOCRXSYNC (§5.8)", dir);
	return errors;
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_classic");
	uint64_t frames = argc > 1 ? strtoull(argv[1], NULL, 0) : 3000;
	char pname[32];
	snprintf(pname, sizeof pname, "cls%d", (int)(getpid() % 100000));
	char master[40], slave[40];
	snprintf(master, sizeof master, "%s{7", pname);
	snprintf(slave, sizeof slave, "%s}7", pname);

	struct netmapd_pool_stats st0, st1;
	CHECK_ERRNO(nmt_poolstat(-1, &st0), 0, "NETMAPD_IOC_POOLSTAT on an unbound descriptor");

	/* --- NIOCGINFO --- */
	int gfd = nmt_open();
	struct nmreq gi;
	legacy_init(&gi, "", 0, 0);
	int e = nmt_ioctl(gfd, NIOCGINFO, &gi);
	CHECK_ERRNO(e, 0, "NIOCGINFO with an empty name");
	CHECK(gi.nr_memsize != 0, "NIOCGINFO: nr_memsize %u", gi.nr_memsize);
	CHECK_EQ(gi.nr_arg2, 1, "NIOCGINFO: nr_arg2 (mem id)");

	legacy_init(&gi, master, 0, 0);
	gi.nr_offset = 0xdeadbeef;
	e = nmt_ioctl(gfd, NIOCGINFO, &gi);
	CHECK_ERRNO(e, 0, "NIOCGINFO on a pipe name");
	CHECK(gi.nr_tx_rings == 1 && gi.nr_rx_rings == 1, "NIOCGINFO pipe: rings %u/%u (want 1/1)",
	    gi.nr_tx_rings, gi.nr_rx_rings);
	CHECK(gi.nr_tx_slots > 0 && gi.nr_tx_slots == gi.nr_rx_slots && gi.nr_tx_slots <= 4096,
	    "NIOCGINFO pipe: slots %u/%u", gi.nr_tx_slots, gi.nr_rx_slots);
	CHECK_EQ(gi.nr_offset, 0xdeadbeef, "NIOCGINFO leaves nr_offset untouched");

	/* the full geometry, for cross-checks (API 14) */
	struct nmreq_pools_info pi;
	e = nmt_pools_info(gfd, master, &pi);
	CHECK_ERRNO(e, 0, "POOLS_INFO_GET (for cross-checks)");
	CHECK_EQ(gi.nr_memsize, (uint32_t)pi.nr_memsize, "NIOCGINFO nr_memsize = low 32 bits of the region size");
	close(gfd);

	/* --- NIOCREGIF: master and slave by NR_REG_PIPE_* + pipe id --- */
	struct lport m, s;
	e = lport_open(&m, pname, NR_REG_PIPE_MASTER, 7, 0);
	if (!CHECK_ERRNO(e, 0, "NIOCREGIF NR_REG_PIPE_MASTER id 7"))
		return nmt_summary();
	e = lport_open(&s, pname, NR_REG_PIPE_SLAVE, 7, 0);
	if (!CHECK_ERRNO(e, 0, "NIOCREGIF NR_REG_PIPE_SLAVE id 7"))
		return nmt_summary();

	CHECK_EQ(m.req.nr_memsize, (uint32_t)pi.nr_memsize, "master nr_memsize (low 32 bits)");
	CHECK(m.req.nr_offset < m.req.nr_memsize && s.req.nr_offset < s.req.nr_memsize,
	    "nr_offset inside the region (master %#x, slave %#x)", m.req.nr_offset, s.req.nr_offset);
	CHECK(m.req.nr_offset != s.req.nr_offset, "each descriptor gets its own netmap_if");
	CHECK(m.req.nr_offset >= pi.nr_if_pool_offset &&
	    (m.req.nr_offset - pi.nr_if_pool_offset) % pi.nr_if_pool_objsize == 0 &&
	    m.req.nr_offset < pi.nr_if_pool_offset + (uint64_t)pi.nr_if_pool_objtotal * pi.nr_if_pool_objsize,
	    "master netmap_if is an if-pool object");
	CHECK(m.req.nr_tx_rings == 1 && m.req.nr_rx_rings == 1, "master rings %u/%u (want 1/1)",
	    m.req.nr_tx_rings, m.req.nr_rx_rings);
	CHECK(s.req.nr_tx_rings == 1 && s.req.nr_rx_rings == 1, "slave rings %u/%u (want 1/1)",
	    s.req.nr_tx_rings, s.req.nr_rx_rings);
	CHECK(m.req.nr_tx_slots == gi.nr_tx_slots && m.req.nr_rx_slots == gi.nr_rx_slots,
	    "master slots %u/%u as NIOCGINFO said", m.req.nr_tx_slots, m.req.nr_rx_slots);
	CHECK_EQ(m.req.nr_arg2, 1, "master nr_arg2 (mem id)");
	CHECK(m.req.nr_ringid == 7 && m.req.nr_flags == NR_REG_PIPE_MASTER && m.req.nr_version == NETMAP_API &&
	    strcmp(m.req.nr_name, pname) == 0,
	    "nr_ringid/nr_flags/nr_version/nr_name keep the caller's values");

	struct netmap_if *mi = m.nifp, *si = s.nifp;
	CHECK(strcmp(mi->ni_name, master) == 0 && strcmp(si->ni_name, slave) == 0,
	    "ni_name '%s' / '%s' (want '%s' / '%s')", mi->ni_name, si->ni_name, master, slave);
	CHECK(mi->ni_tx_rings == 1 && mi->ni_rx_rings == 1, "master ni_tx/rx_rings %u/%u", mi->ni_tx_rings,
	    mi->ni_rx_rings);
	CHECK(mi->ni_host_tx_rings == 1 && mi->ni_host_rx_rings == 1,
	    "ni_host_tx/rx_rings reported as 1 on a pipe (§4.3): %u/%u", mi->ni_host_tx_rings,
	    mi->ni_host_rx_rings);
	CHECK(mi->ni_bufs_head == 0, "ni_bufs_head 0 without extra buffers");
	CHECK(mi->ring_ofs[0] != 0 && mi->ring_ofs[1] == 0 && mi->ring_ofs[2] != 0 && mi->ring_ofs[3] == 0,
	    "master ring_ofs {TX0, hostTX, RX0, hostRX} = {%zd, %zd, %zd, %zd}: host entries 0",
	    mi->ring_ofs[0], mi->ring_ofs[1], mi->ring_ofs[2], mi->ring_ofs[3]);
	CHECK(mi->ring_ofs[0] > 0 && mi->ring_ofs[2] > 0, "ring offsets are positive (ring pool after if pool)");
	nmt_info("ni_flags %#x (netmapd keeps every port in the global region)", mi->ni_flags);

	struct netmap_ring *mtx = nmd_txring(mi, 0), *mrx = nmd_rxring(mi, 0);
	struct netmap_ring *stx = nmd_txring(si, 0), *srx = nmd_rxring(si, 0);
	check_fresh_ring(&m, mtx, 1, m.req.nr_tx_slots, 0, &pi, "master");
	check_fresh_ring(&m, mrx, 0, m.req.nr_rx_slots, 0, &pi, "master");
	check_fresh_ring(&s, stx, 1, s.req.nr_tx_slots, 0, &pi, "slave");
	check_fresh_ring(&s, srx, 0, s.req.nr_rx_slots, 0, &pi, "slave");
	CHECK((char *)mtx != (char *)srx && (char *)mrx != (char *)stx, "the two ends have their own rings");
	int same = 1, distinct = 1;
	for (uint32_t i = 0; i < mtx->num_slots; i++) {
		if (mtx->slot[i].buf_idx != srx->slot[i].buf_idx)
			same = 0;
		for (uint32_t j = 0; j < stx->num_slots && i < 64; j++)
			if (mtx->slot[i].buf_idx == stx->slot[j].buf_idx)
				distinct = 0;
	}
	CHECK(same, "slave RX slot k starts with the buffer of master TX slot k (§12)");
	CHECK(distinct, "the two directions use different buffers");

	/* --- a multi-ring pipe by name, ONE_NIC ring 1: ring_ofs zeros for unbound rings --- */
	char mr[40];
	snprintf(mr, sizeof mr, "%sm{5", pname);
	struct lport o;
	e = lport_open(&o, mr, NR_REG_ONE_NIC, 1, 2);
	if (CHECK_ERRNO(e, 0, "NIOCREGIF name with '{', NR_REG_ONE_NIC ring 1 of 2")) {
		struct netmap_if *oi = o.nifp;
		CHECK(o.req.nr_tx_rings == 2 && o.req.nr_rx_rings == 2, "ONE_NIC: rings %u/%u (want 2/2)",
		    o.req.nr_tx_rings, o.req.nr_rx_rings);
		CHECK(oi->ni_tx_rings == 2 && oi->ni_rx_rings == 2, "ONE_NIC: ni rings %u/%u", oi->ni_tx_rings,
		    oi->ni_rx_rings);
		CHECK(oi->ring_ofs[0] == 0 && oi->ring_ofs[1] != 0 && oi->ring_ofs[2] == 0 &&
		    oi->ring_ofs[3] == 0 && oi->ring_ofs[4] != 0 && oi->ring_ofs[5] == 0,
		    "ONE_NIC ring 1: ring_ofs {%zd %zd %zd | %zd %zd %zd}: only TX1 and RX1 non-zero",
		    oi->ring_ofs[0], oi->ring_ofs[1], oi->ring_ofs[2], oi->ring_ofs[3], oi->ring_ofs[4],
		    oi->ring_ofs[5]);
		if (oi->ring_ofs[1] && oi->ring_ofs[4]) {
			struct netmap_ring *t1 = nmd_txring(oi, 1), *r1 = nmd_rxring(oi, 1);
			check_fresh_ring(&o, t1, 1, o.req.nr_tx_slots, 1, &pi, "ONE_NIC");
			check_fresh_ring(&o, r1, 0, o.req.nr_rx_slots, 1, &pi, "ONE_NIC");
		}
		lport_close(&o);
	}

	/* --- mode 0 with NETMAP_HW_RING | 1: ONE_NIC ring 1; nr_arg3 extra buffers --- */
	snprintf(mr, sizeof mr, "%sh{6", pname);
	e = lport_open(&o, mr, 0, NETMAP_HW_RING | 1, 2);
	if (CHECK_ERRNO(e, 0, "NIOCREGIF mode 0 with nr_ringid NETMAP_HW_RING | 1")) {
		struct netmap_if *oi = o.nifp;
		CHECK(oi->ring_ofs[0] == 0 && oi->ring_ofs[1] != 0 && oi->ring_ofs[3] == 0 && oi->ring_ofs[4] != 0,
		    "NETMAP_HW_RING | 1 binds ring 1 only (ring_ofs %zd %zd | %zd %zd)", oi->ring_ofs[0], oi->ring_ofs[1],
		    oi->ring_ofs[3], oi->ring_ofs[4]);
		lport_close(&o);
	}
	o.fd = nmt_open();
	legacy_init(&o.req, pname, NR_REG_PIPE_MASTER, 8);
	o.req.nr_arg3 = 5;
	e = nmt_ioctl(o.fd, NIOCREGIF, &o.req);
	if (CHECK_ERRNO(e, 0, "NIOCREGIF pipe with nr_arg3 = 5 extra buffers")) {
		CHECK_EQ(o.req.nr_arg3, 5, "nr_arg3 granted");
		o.mem = nmt_mmap(o.fd, o.req.nr_memsize);
		o.nifp = nmd_if(o.mem, o.req.nr_offset);
		struct netmap_ring *t = nmd_txring(o.nifp, 0);
		int cnt = 0;
		for (uint32_t b = o.nifp->ni_bufs_head; b >= 2 && b < pi.nr_buf_pool_objtotal && cnt < 10;
		     b = *(uint32_t *)nmd_buf(t, b))
			cnt++;
		CHECK(cnt == 5, "ni_bufs_head chains the 5 extra buffers (%d)", cnt);
		lport_close(&o);
	} else {
		close(o.fd);
	}
	e = lport_open(&o, mr, 0, NETMAP_SW_RING, 0);
	CHECK_ERRNO(e, EINVAL, "NIOCREGIF mode 0 with NETMAP_SW_RING on a pipe (host rings: none)");
	if (e == 0)
		lport_close(&o);

	/* --- NETMAP_NO_TX_POLL in nr_ringid: poll(POLLIN) does not push TX --- */
	{
		struct lport a, b;
		char an[40], bn[40];
		snprintf(an, sizeof an, "%sn{1", pname);
		snprintf(bn, sizeof bn, "%sn}1", pname);
		int ea = lport_open(&a, an, 0, NETMAP_NO_TX_POLL, 0);
		int eb = ea ? -1 : lport_open(&b, bn, 0, 0, 0);
		if (ea == 0 && eb != 0)
			lport_close(&a);
		if (CHECK(ea == 0 && eb == 0, "NIOCREGIF with NETMAP_NO_TX_POLL in nr_ringid")) {
			struct netmap_ring *t = nmd_txring(a.nifp, 0), *r = nmd_rxring(b.nifp, 0);
			t->slot[0].len = 60;
			t->head = t->cur = 1;
			struct pollfd p = { .fd = a.fd, .events = POLLIN };
			poll(&p, 1, 0);
			nmt_ioctl(b.fd, NIOCRXSYNC, NULL);
			uint32_t got1 = nmd_space(r);
			p.events = POLLOUT;
			poll(&p, 1, 0);
			nmt_ioctl(b.fd, NIOCRXSYNC, NULL);
			CHECK(got1 == 0 && nmd_space(r) == 1,
			    "NETMAP_NO_TX_POLL: poll(POLLIN) sent nothing (%u), poll(POLLOUT) sent the frame (%u)", got1,
			    nmd_space(r));
			lport_close(&b);
			lport_close(&a);
		}
	}

	/* --- a pipe registered by '{'/'}' names with mode 0 (NR_REG_DEFAULT -> ALL_NIC) --- */
	char bm[40], bs[40];
	snprintf(bm, sizeof bm, "%sb{3", pname);
	snprintf(bs, sizeof bs, "%sb}3", pname);
	struct lport bm_p, bs_p;
	int e1 = lport_open(&bm_p, bm, 0, 0, 0);
	int e2 = e1 ? -1 : lport_open(&bs_p, bs, 0, 0, 0);
	if (CHECK(e1 == 0 && e2 == 0, "NIOCREGIF '%s' and '%s' with mode 0 (%s, %s)", bm, bs, nmt_errname(e1),
	        nmt_errname(e2 < 0 ? 0 : e2))) {
		CHECK(strcmp(bm_p.nifp->ni_name, bm) == 0, "ni_name '%s'", bm_p.nifp->ni_name);
		send_frames(&bm_p, &bs_p, 99, 0, 50, "braces pipe master->slave");
		lport_close(&bs_p);
		lport_close(&bm_p);
	}

	/* --- traffic both ways with sync ioctls --- */
	send_frames(&m, &s, 12345, 0, frames, "master->slave");
	send_frames(&s, &m, 777, 0, frames / 3 + 1, "slave->master");

	lport_close(&s);
	lport_close(&m);
	int back = nmt_wait_pool(&st0, &st1, 3.0);
	CHECK(back,
	    "pool back to its start after close: free buffers %u/%u rings %u/%u ifs %u/%u", st1.free_buffers,
	    st0.free_buffers, st1.free_rings, st0.free_rings, st1.free_ifs, st0.free_ifs);
	return nmt_summary();
}
