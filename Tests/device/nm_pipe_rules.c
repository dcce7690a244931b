/*
 * nm_pipe_rules.c: the finer rules of pipes, descriptors and poll that
 * netmap programs rely on (spec §2, §4.3, §6, §7, §12):
 *   - multi-ring pipes: master TX ring i <-> slave RX ring i and back, the
 *     slave mirroring the master's geometry; one poll over all rings wakes
 *     for traffic on any of them;
 *   - NR_TX_RINGS_ONLY / NR_RX_RINGS_ONLY bind one direction (ring_ofs zeros
 *     for the other) and two such descriptors share an end;
 *   - a registered descriptor shared by dup() and fork() is one context; the
 *     registration lasts until its last reference goes;
 *   - a buffer the receiver swaps into a released RX slot reaches the
 *     sender's TX slot flagged NS_BUF_CHANGED;
 *   - reopening an end whose peer is still open resumes the ring state;
 *   - NR_NO_TX_POLL: poll(POLLIN) does not push TX; poll(POLLOUT) does;
 *   - cur is the wake-up threshold: with cur == tail, poll waits although
 *     the ring holds frames (RX) or room (TX), and the peer wakes it;
 *   - two threads polling one descriptor are both woken;
 *   - NIOCCTRL from a second thread (caller memory read from that thread).
 *
 *   nm_pipe_rules [-d DEVICE] [SECTION...]     (default: every section;
 *       sections: multi_ring one_direction shared_descriptor
 *       receiver_swap_and_resume no_tx_poll cur_thresholds two_pollers
 *       thread_ioctl)
 */
#include "nm_common.h"

#include <pthread.h>

static char base[24];

static const char *pname(char *buf, const char *suffix)
{
	sprintf(buf, "%s%s", base, suffix);
	return buf;
}

struct port {
	int fd;
	void *mem;
	struct nmreq_register reg;
	struct netmap_if *nifp;
};

static int port_open(struct port *p, const char *name, uint32_t mode, uint16_t ringid, uint64_t flags,
    uint16_t txr, uint16_t rxr, uint32_t extra)
{
	memset(p, 0, sizeof *p);
	p->fd = nmt_open();
	struct nmreq_header h;
	p->reg.nr_mode = mode;
	p->reg.nr_ringid = ringid;
	p->reg.nr_flags = flags;
	p->reg.nr_tx_rings = txr;
	p->reg.nr_rx_rings = rxr;
	p->reg.nr_extra_bufs = extra;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, name, &p->reg);
	int e = nmt_ioctl(p->fd, NIOCCTRL, &h);
	if (e) {
		close(p->fd);
		return e;
	}
	p->mem = nmt_mmap(p->fd, p->reg.nr_memsize);
	p->nifp = nmd_if(p->mem, p->reg.nr_offset);
	return 0;
}

static void port_close(struct port *p)
{
	munmap(p->mem, p->reg.nr_memsize);
	close(p->fd);
}

static void put_frame(struct netmap_ring *tx, uint64_t seq)
{
	struct netmap_slot *s = &tx->slot[tx->head];
	s->len = nmt_frame_len(3, seq);
	s->flags = 0;
	nmt_frame_fill(nmd_buf(tx, s->buf_idx), seq, s->len);
	tx->head = tx->cur = nmd_next(tx, tx->head);
}

static int take_frame(struct netmap_ring *rx, uint64_t seq)
{
	if (rx->head == rx->tail)
		return 0;
	struct netmap_slot *s = &rx->slot[rx->head];
	int ok = s->len == nmt_frame_len(3, seq) && nmt_frame_check(nmd_buf(rx, s->buf_idx), seq, s->len) == 0;
	rx->head = rx->cur = nmd_next(rx, rx->head);
	return ok;
}

static void multi_ring(void)
{
	char mn[48], sn[48];
	struct port m, s;
	int e = port_open(&m, pname(mn, "mr{1"), NR_REG_ALL_NIC, 0, 0, 4, 2, 0);
	if (!CHECK_ERRNO(e, 0, "REGISTER master with hints 4 TX / 2 RX rings"))
		return;
	e = port_open(&s, pname(sn, "mr}1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0);
	if (!CHECK_ERRNO(e, 0, "REGISTER slave (no hints)")) {
		port_close(&m);
		return;
	}
	CHECK(m.reg.nr_tx_rings == 4 && m.reg.nr_rx_rings == 2, "master rings %u/%u (want 4/2)", m.reg.nr_tx_rings,
	    m.reg.nr_rx_rings);
	CHECK(s.reg.nr_tx_rings == 2 && s.reg.nr_rx_rings == 4, "slave mirrors them: %u/%u (want 2/4)", s.reg.nr_tx_rings,
	    s.reg.nr_rx_rings);
	int allbound = 1;
	for (int i = 0; i < 4 + 1 + 2 + 1; i++) {
		int host = i == 4 || i == 7;
		if ((m.nifp->ring_ofs[i] != 0) == host)
			allbound = 0;
	}
	CHECK(allbound, "master ring_ofs: 4 TX, host 0, 2 RX, host 0");

	/* a poller on the slave (all 4 RX rings) is woken by traffic on ring 3 */
	pid_t child = fork();
	if (child == 0) {
		usleep(200000);
		struct netmap_ring *t3 = nmd_txring(m.nifp, 3);
		put_frame(t3, 33);
		_exit(nmt_ioctl(m.fd, NIOCTXSYNC, NULL) ? 1 : 0);
	}
	struct pollfd p = { .fd = s.fd, .events = POLLIN };
	double t0 = nmd_now();
	int r = poll(&p, 1, NMT_MS(5000));
	double dt = nmd_now() - t0;
	int cst;
	waitpid(child, &cst, 0);
	CHECK(r == 1 && (p.revents & POLLIN) && dt > 0.1 && dt < NMT_SEC(2.0),
	    "poll over all slave RX rings sleeps, then wakes for a frame on ring 3 (%d, revents %#x, %.3f s)", r,
	    p.revents, dt);
	int where = -1;
	for (int i = 0; i < 4; i++)
		if (nmd_rxring(s.nifp, i)->tail != nmd_rxring(s.nifp, i)->head)
			where = i;
	CHECK(where == 3, "master TX ring 3 -> slave RX ring 3 (frame found on %d)", where);
	if (where == 3)
		CHECK(take_frame(nmd_rxring(s.nifp, 3), 33), "frame intact");
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);

	/* slave TX ring 1 -> master RX ring 1 */
	put_frame(nmd_txring(s.nifp, 1), 44);
	nmt_ioctl(s.fd, NIOCTXSYNC, NULL);
	nmt_ioctl(m.fd, NIOCRXSYNC, NULL);
	struct netmap_ring *r0 = nmd_rxring(m.nifp, 0), *r1 = nmd_rxring(m.nifp, 1);
	CHECK(r0->head == r0->tail && nmd_space(r1) == 1 && take_frame(r1, 44),
	    "slave TX ring 1 -> master RX ring 1 only, intact");
	nmt_ioctl(m.fd, NIOCRXSYNC, NULL);

	port_close(&s);
	port_close(&m);
}

static void one_direction(void)
{
	char mn[48];
	struct port t, r, x;
	int e = port_open(&t, pname(mn, "od{1"), NR_REG_ALL_NIC, 0, NR_TX_RINGS_ONLY, 0, 0, 0);
	if (!CHECK_ERRNO(e, 0, "REGISTER with NR_TX_RINGS_ONLY"))
		return;
	CHECK(t.nifp->ring_ofs[0] != 0 && t.nifp->ring_ofs[2] == 0,
	    "TX only: TX ring offset set, RX ring offset 0 (%zd, %zd)", t.nifp->ring_ofs[0], t.nifp->ring_ofs[2]);
	e = port_open(&r, mn, NR_REG_ALL_NIC, 0, NR_RX_RINGS_ONLY | NR_EXCLUSIVE, 0, 0, 0);
	CHECK_ERRNO(e, 0, "a second descriptor with NR_RX_RINGS_ONLY | NR_EXCLUSIVE on the same end (other rings)");
	if (e == 0) {
		CHECK(r.nifp->ring_ofs[0] == 0 && r.nifp->ring_ofs[2] != 0,
		    "RX only: TX ring offset 0, RX ring offset set (%zd, %zd)", r.nifp->ring_ofs[0], r.nifp->ring_ofs[2]);
		CHECK((char *)t.nifp + t.nifp->ring_ofs[0] != (char *)r.nifp + r.nifp->ring_ofs[2],
		    "the two descriptors see different rings");
		int e2 = port_open(&x, mn, NR_REG_ALL_NIC, 0, 0, 0, 0, 0);
		CHECK_ERRNO(e2, EBUSY, "ALL_NIC on that end while its RX ring is held exclusively");
		if (e2 == 0)
			port_close(&x);
		port_close(&r);
	}
	port_close(&t);
}

static void shared_descriptor(void)
{
	char mn[48], sn[48];
	struct port m, s;
	if (port_open(&m, pname(mn, "sh{1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0) ||
	    port_open(&s, pname(sn, "sh}1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0)) {
		CHECK(0, "shared descriptor: REGISTER failed");
		return;
	}
	struct netmap_ring *tx = nmd_txring(m.nifp, 0), *rx = nmd_rxring(s.nifp, 0);
	struct netmapd_pool_stats st0, st;
	nmt_poolstat(-1, &st0);
	/* a forked child sends through the inherited descriptor and mapping */
	pid_t c = fork();
	if (c == 0) {
		for (int i = 0; i < 5; i++)
			put_frame(tx, 100 + i);
		_exit(nmt_ioctl(m.fd, NIOCTXSYNC, NULL) ? 1 : 0);
	}
	int cst;
	waitpid(c, &cst, 0);
	CHECK(WIFEXITED(cst) && WEXITSTATUS(cst) == 0, "forked child: NIOCTXSYNC on the inherited descriptor works");
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	int ok = nmd_space(rx) == 5;
	for (int i = 0; i < 5 && ok; i++)
		ok = take_frame(rx, 100 + i);
	CHECK(ok, "the child's 5 frames arrive");
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	usleep(50000);
	nmt_poolstat(-1, &st);
	CHECK(st.sessions == st0.sessions, "the child's exit released nothing (sessions %u, want %u)", st.sessions,
	    st0.sessions);
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "the parent's descriptor is still bound");

	/* dup, then close the original: still one bound context */
	int d = dup(m.fd);
	close(m.fd);
	usleep(50000);
	CHECK_ERRNO(nmt_ioctl(d, NIOCTXSYNC, NULL), 0, "dup'd descriptor still bound after closing the original");
	put_frame(tx, 200);
	nmt_ioctl(d, NIOCTXSYNC, NULL);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(take_frame(rx, 200), "frame sent through the dup'd descriptor arrives");
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	munmap(m.mem, m.reg.nr_memsize);
	close(d);
	CHECK(nmt_wait_sessions(st0.sessions - 1, 3.0), "closing the last reference releases the registration");
	port_close(&s);
}

static void receiver_swap_and_resume(void)
{
	char mn[48], sn[48];
	struct port m, s;
	if (port_open(&m, pname(mn, "rs{1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0) ||
	    port_open(&s, pname(sn, "rs}1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 2)) {
		CHECK(0, "receiver swap: REGISTER failed");
		return;
	}
	struct netmap_ring *tx = nmd_txring(m.nifp, 0), *rx = nmd_rxring(s.nifp, 0);
	for (int i = 0; i < 10; i++)
		put_frame(tx, i);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(nmd_space(rx) == 10, "10 frames in the slave's RX ring");
	/* keep the buffer of slot 0, give an extra buffer back in its place */
	uint32_t x = s.nifp->ni_bufs_head, y = rx->slot[0].buf_idx;
	s.nifp->ni_bufs_head = *(uint32_t *)nmd_buf(rx, x);
	rx->slot[0].buf_idx = x;
	rx->slot[0].flags |= NS_BUF_CHANGED;
	*(uint32_t *)nmd_buf(rx, y) = s.nifp->ni_bufs_head;
	s.nifp->ni_bufs_head = y;
	rx->head = rx->cur = 4;   /* release slots 0..3 */
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	CHECK(tx->slot[0].buf_idx == x && (tx->slot[0].flags & NS_BUF_CHANGED),
	    "sender's TX slot 0 now holds the receiver's buffer %u (got %u) flagged NS_BUF_CHANGED (flags %#x)", x,
	    tx->slot[0].buf_idx, tx->slot[0].flags);
	CHECK(tx->tail == 3, "sender reclaimed up to the released slots (tail %u, want 3)", tx->tail);

	/* the slave goes away with 6 frames unread; a new slave resumes there */
	munmap(s.mem, s.reg.nr_memsize);
	struct netmapd_pool_stats st;
	nmt_poolstat(-1, &st);
	close(s.fd);
	nmt_wait_sessions(st.sessions - 1, 3.0);
	struct port s2;
	int e = port_open(&s2, sn, NR_REG_ALL_NIC, 0, 0, 0, 0, 0);
	if (CHECK_ERRNO(e, 0, "REGISTER the slave end again while the master is open")) {
		rx = nmd_rxring(s2.nifp, 0);
		nmt_ioctl(s2.fd, NIOCRXSYNC, NULL);
		uint32_t n = nmd_space(rx), h0 = rx->head;
		int ok = n == 6 && h0 == 4;
		for (int i = 4; i < 10 && ok; i++)
			ok = take_frame(rx, i);
		CHECK(ok, "the reopened end resumes: frames 4..9 waiting at head 4 (%u waiting, head %u)", n, h0);
		nmt_ioctl(s2.fd, NIOCRXSYNC, NULL);
		nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
		CHECK(nmd_space(tx) == tx->num_slots - 1, "sender fully reclaimed");
		port_close(&s2);
	}
	port_close(&m);
}

static void no_tx_poll(void)
{
	char mn[48], sn[48];
	struct port m, s;
	if (port_open(&m, pname(mn, "np{1"), NR_REG_ALL_NIC, 0, NR_NO_TX_POLL, 0, 0, 0) ||
	    port_open(&s, pname(sn, "np}1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0)) {
		CHECK(0, "NR_NO_TX_POLL: REGISTER failed");
		return;
	}
	struct netmap_ring *tx = nmd_txring(m.nifp, 0), *rx = nmd_rxring(s.nifp, 0);
	put_frame(tx, 1);
	struct pollfd p = { .fd = m.fd, .events = POLLIN };
	poll(&p, 1, 0);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(nmd_space(rx) == 0, "NR_NO_TX_POLL: poll(POLLIN) does not push the pending frame (%u arrived)",
	    nmd_space(rx));
	p.events = POLLOUT;
	poll(&p, 1, 0);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	uint32_t arrived = nmd_space(rx);
	CHECK(arrived == 1 && take_frame(rx, 1), "poll(POLLOUT) pushes it (%u arrived)", arrived);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	port_close(&s);
	port_close(&m);
}

/* cur as the wake-up threshold (§5.1, §6): readiness is cur != tail */
static void cur_thresholds(void)
{
	char mn[48], sn[48];
	struct port m, s;
	if (port_open(&m, pname(mn, "ct{1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0) ||
	    port_open(&s, pname(sn, "ct}1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0)) {
		CHECK(0, "cur thresholds: REGISTER failed");
		return;
	}
	struct netmap_ring *tx = nmd_txring(m.nifp, 0), *rx = nmd_rxring(s.nifp, 0);
	/* TX: only [hwcur .. head) is sent, whatever cur says */
	for (int i = 0; i < 5; i++)
		put_frame(tx, i);
	tx->head = 3;
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(nmd_space(rx) == 3, "TX head 3, cur 5: 3 frames sent (%u)", nmd_space(rx));
	tx->head = 5;
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);

	/* RX: cur pushed to tail, head kept: poll waits for more without releasing */
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(nmd_space(rx) == 5, "5 frames waiting");
	rx->cur = rx->tail;
	struct pollfd p = { .fd = s.fd, .events = POLLIN };
	double t0 = nmd_now();
	int r = poll(&p, 1, 300);
	CHECK(r == 0 && nmd_now() - t0 > 0.25, "RX cur == tail: poll(POLLIN) waits although 5 frames are held (r %d)", r);
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	CHECK(tx->tail == tx->num_slots - 1, "held frames not released to the sender (TX tail %u)", tx->tail);
	pid_t c = fork();
	if (c == 0) {
		usleep(150000);
		put_frame(tx, 5);
		_exit(nmt_ioctl(m.fd, NIOCTXSYNC, NULL) ? 1 : 0);
	}
	t0 = nmd_now();
	r = poll(&p, 1, NMT_MS(3000));
	double dt = nmd_now() - t0;
	waitpid(c, NULL, 0);
	CHECK(r == 1 && (p.revents & POLLIN) && dt > 0.1 && dt < NMT_SEC(2.0) && nmd_space(rx) == 6,
	    "a 6th frame wakes it (r %d, %.3f s, %u waiting)", r, dt, nmd_space(rx));
	int ok = 1;
	for (int i = 0; i < 6; i++)
		ok &= take_frame(rx, i);
	CHECK(ok, "all 6 intact, in order");
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);

	/* TX: cur pushed to tail: poll(POLLOUT) waits for reclaim */
	nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
	put_frame(tx, 6);
	tx->cur = tx->tail;
	p.fd = m.fd;
	p.events = POLLOUT;
	r = poll(&p, 1, 300);
	CHECK(r == 0, "TX cur == tail: poll(POLLOUT) waits although the ring has room (r %d, revents %#x)", r, p.revents);
	nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	CHECK(take_frame(rx, 6), "the frame behind it was sent anyway (poll pushes head)");
	c = fork();
	if (c == 0) {
		usleep(150000);
		_exit(nmt_ioctl(s.fd, NIOCRXSYNC, NULL) ? 1 : 0);   /* release it */
	}
	t0 = nmd_now();
	r = poll(&p, 1, NMT_MS(3000));
	dt = nmd_now() - t0;
	waitpid(c, NULL, 0);
	CHECK(r == 1 && (p.revents & POLLOUT) && dt > 0.1 && dt < NMT_SEC(2.0),
	    "the receiver releasing it wakes the sender (r %d, revents %#x, %.3f s)", r, p.revents, dt);
	tx->cur = tx->head;
	port_close(&s);
	port_close(&m);
}

/* Two threads poll one registered descriptor: one waits for POLLIN, the
 * other polls POLLOUT (ready at once). Every sleeper must be woken, as all
 * sleepers on a netmap wait queue are (§6). */
static struct {
	int fd;
	int r;
	short revents;
	double dt;
} pa;

static void *poll_in_thread(void *arg)
{
	(void)arg;
	struct pollfd p = { .fd = pa.fd, .events = POLLIN };
	double t0 = nmd_now();
	pa.r = poll(&p, 1, NMT_MS(3000));
	pa.dt = nmd_now() - t0;
	pa.revents = p.revents;
	return NULL;
}

static void two_pollers(void)
{
	char mn[48], sn[48];
	struct port m, s;
	if (port_open(&m, pname(mn, "tp{1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0) ||
	    port_open(&s, pname(sn, "tp}1"), NR_REG_ALL_NIC, 0, 0, 0, 0, 0)) {
		CHECK(0, "two pollers: REGISTER failed");
		return;
	}
	pa.fd = m.fd;
	pthread_t t;
	pthread_create(&t, NULL, poll_in_thread, NULL);
	usleep(100000);
	struct pollfd p = { .fd = m.fd, .events = POLLOUT };
	int r = poll(&p, 1, 1000);
	usleep(100000);
	put_frame(nmd_txring(s.nifp, 0), 9);
	nmt_ioctl(s.fd, NIOCTXSYNC, NULL);   /* at 0.2 s */
	pthread_join(t, NULL);
	CHECK(r == 1 && pa.r == 1 && (pa.revents & POLLIN) && pa.dt < NMT_SEC(1.0),
	    "two threads poll one descriptor (POLLIN sleeper, POLLOUT ready at once): the sleeper wakes for a frame "
	    "sent at 0.2 s (woke after %.3f s, r %d, revents %#x)", pa.dt, pa.r, pa.revents);
	port_close(&s);
	port_close(&m);
}

/* NIOCCTRL from a second thread: its header, body and options live on that
 * thread's stack (the daemon must read the caller's memory, whichever
 * thread calls). */
static void *register_thread(void *arg)
{
	int *res = arg;
	char n[48];
	int fd = nmt_open();
	struct nmreq_option unknown;
	memset(&unknown, 0, sizeof unknown);
	unknown.nro_reqtype = 77;
	unknown.nro_size = sizeof unknown;
	struct nmreq_register reg;
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;
	struct nmreq_header h;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, pname(n, "th{1"), &reg);
	h.nr_options = (uintptr_t)&unknown;
	res[0] = nmt_ioctl(fd, NIOCCTRL, &h);
	res[1] = unknown.nro_status;
	h.nr_options = 0;
	res[2] = nmt_ioctl(fd, NIOCCTRL, &h);
	res[3] = reg.nr_memsize != 0 && reg.nr_tx_rings == 1;
	close(fd);
	return NULL;
}

static void thread_ioctl(void)
{
	int res[4] = { -1, -1, -1, -1 };
	pthread_t t;
	pthread_create(&t, NULL, register_thread, res);
	pthread_join(t, NULL);
	CHECK(res[0] == EOPNOTSUPP && res[1] == EOPNOTSUPP && res[2] == 0 && res[3],
	    "NIOCCTRL from a second thread: option status read/written in its memory (%s, status %d), then REGISTER %s "
	    "with the body filled",
	    nmt_errname(res[0]), res[1], nmt_errname(res[2]));
}

static const struct {
	const char *name;
	void (*run)(void);
} sections[] = {
	{ "multi_ring", multi_ring },
	{ "one_direction", one_direction },
	{ "shared_descriptor", shared_descriptor },
	{ "receiver_swap_and_resume", receiver_swap_and_resume },
	{ "no_tx_poll", no_tx_poll },
	{ "cur_thresholds", cur_thresholds },
	{ "two_pollers", two_pollers },
	{ "thread_ioctl", thread_ioctl },
};

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_pipe_rules");
	snprintf(base, sizeof base, "pr%d", (int)(getpid() % 100000));
	struct netmapd_pool_stats st0, st;
	nmt_poolstat(-1, &st0);
	int n = (int)(sizeof sections / sizeof sections[0]);
	for (int i = 0; i < n; i++) {
		int want = argc == 1;
		for (int a = 1; a < argc; a++)
			want |= strcmp(argv[a], sections[i].name) == 0;
		if (want)
			sections[i].run();
	}
	for (int a = 1; a < argc; a++) {
		int known = 0;
		for (int i = 0; i < n; i++)
			known |= strcmp(argv[a], sections[i].name) == 0;
		if (!known)
			nmt_die("unknown section '%s'", argv[a]);
	}
	int back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back && st.sessions == st0.sessions && st.ports == st0.ports,
	    "pool back to its start: free buffers %u (want %u), rings %u (%u), ifs %u (%u), sessions %u, ports %u",
	    st.free_buffers, st0.free_buffers, st.free_rings, st0.free_rings, st.free_ifs, st0.free_ifs, st.sessions,
	    st.ports);
	return nmt_summary();
}
