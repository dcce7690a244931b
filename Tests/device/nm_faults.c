/*
 * nm_faults.c: misbehaving and unlucky clients (issue #8, "Robustness",
 * items 3 and 4): the daemon stays up, other clients keep their traffic
 * byte-exact, and the pool (NETMAPD_IOC_POOLSTAT) comes back to where it
 * was.
 *
 *   nm_faults [-d DEVICE] [-n FRAMES] [SECTION...]
 *       sections (default: closed_writer mapped_close fork_concurrent):
 *   closed_writer    a child registers a pipe end (whose peer the parent
 *                    holds) and a null port, maps them, closes both
 *                    descriptors without munmap and then keeps writing its
 *                    mapped rings for 1.5 s: head/cur/tail, slots with wild
 *                    buf_idx/len/flags, random bytes over ring headers, the
 *                    netmap_if and its old buffers. Meanwhile the parent moves
 *                    frames through an unrelated pipe pair (every byte
 *                    checked), syncs and polls the abandoned end's peer, and
 *                    churns fresh registrations (which may get the scribbled
 *                    rings). After the child exits: rings, interface objects,
 *                    sessions and ports exactly back at their start (keeper
 *                    held), no buffer freed twice, the same pipe carries fresh
 *                    traffic, and with every client gone the whole pool is
 *                    free. The close must not release the child's
 *                    registrations while its mapping lives (netmap: mmap
 *                    holds the file; FUSE file: the front end keeps them
 *                    while the opener maps the region; CUSE + shim: the
 *                    shim's dup per mapping), so its rings are never
 *                    recycled to others while it writes them. Buffers are
 *                    freed as the slots name them at release (as netmap
 *                    does), so scribbled slots leak theirs until the last
 *                    client goes: a shortfall beyond the child's own rings
 *                    (4096) fails (rings recycled to other clients were
 *                    written by the closed one).
 *   mapped_close     netmap's lifetime rule (the registration lives until
 *                    munmap or exit, not close): a port closed with the
 *                    region mapped keeps its registration (its pipe end stays
 *                    taken) until munmap; with one mapping shared by two ports
 *                    (split in two by mprotect), the port without a mapping
 *                    of its own is released at its close, the mapped one at
 *                    munmap; a port a thread registered and mapped, closed by
 *                    the main thread, lives until munmap; a child that closes
 *                    and exits with the region mapped is released at its
 *                    exit; pool back at its start.
 *   fork_concurrent  one registered descriptor (a pipe master end), shared
 *                    by fork: the parent transmits on it (poll POLLOUT) while
 *                    the child receives on it (poll POLLIN + NIOCRXSYNC) at
 *                    the same time, a peer process on the slave end checks and
 *                    answers; then the parent transmits while the child
 *                    hammers NIOCTXSYNC / poll on the same descriptor. Every
 *                    frame is counted once and intact on each side, nothing
 *                    hangs (poll timeouts), pool back at its start after both
 *                    halves exit. FRAMES (-n, default 100000) per direction.
 *
 *   nm_faults [-d DEVICE] poolstat   prints one line
 *       POOL free_buffers=.. total_buffers=.. free_rings=.. total_rings=..
 *            free_ifs=.. total_ifs=.. sessions=.. ports=..
 *   nm_faults [-d DEVICE] fresh      the pool must be pristine (every buffer,
 *       ring and interface object free, no sessions, no ports: a daemon just
 *       started), a fresh pipe pair must register, map and carry 2000 frames
 *       byte-exact, and the pool must be pristine again after the close.
 *       Used after a restart and by other users (permissions tests).
 *   nm_faults [-d DEVICE] hold       for the daemon-SIGKILL tests: registers
 *       two pipe pairs, fills the second one, starts one thread blocked in
 *       poll(POLLIN) on the idle first slave and one in poll(POLLOUT) on the
 *       full second master,
 *       prints "held" and waits for a line on stdin (the daemon is SIGKILLed
 *       meanwhile). Then: both sleeping polls must have ended within 10 s
 *       (revents printed), NIOCTXSYNC/NIOCRXSYNC/NIOCCTRL must fail (the errno
 *       is printed as "INFO ... errno NAME" and must be ENOTCONN, ENODEV, EIO
 *       or ENXIO), a new poll must return at once, the mapping must still be
 *       readable, opening the device again must fail or give a descriptor
 *       that cannot register, munmap and close must return.
 *
 * Every check prints a PASS/FAIL line; the last line is the summary; exit
 * status 0 only if nothing failed.
 */
#include "nm_common.h"

#include <pthread.h>

static char base[24];
static uint64_t frames_per_dir = 100000;

static const char *pname(char *buf, const char *suffix)
{
	sprintf(buf, "%s%s", base, suffix);
	return buf;
}

#define STAT_FMT "free buffers %u (want %u), rings %u (%u), ifs %u (%u), sessions %u (%u), ports %u (%u)"
#define STAT_ARGS(g, w) (g).free_buffers, (w).free_buffers, (g).free_rings, (w).free_rings, (g).free_ifs, \
	(w).free_ifs, (g).sessions, (w).sessions, (g).ports, (w).ports

/* A null port (NR_REG_NULL, allocator 1); returns the errno. */
static int register_null(int fd, const char *name, struct nmreq_register *out)
{
	struct nmreq_header h;
	memset(out, 0, sizeof *out);
	out->nr_mode = NR_REG_NULL;
	out->nr_mem_id = 1;
	out->nr_tx_rings = 1;
	out->nr_rx_rings = 1;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, name, out);
	return nmt_ioctl(fd, NIOCCTRL, &h);
}

static void put_frames(struct netmap_ring *tx, uint64_t seed, uint64_t *seq, uint64_t limit, uint32_t batch)
{
	uint32_t i = tx->head, room = nmd_space(tx);
	for (uint32_t k = 0; k < room && k < batch && *seq < limit; k++, (*seq)++) {
		struct netmap_slot *s = &tx->slot[i];
		s->len = nmt_frame_len(seed, *seq);
		s->flags = 0;
		nmt_frame_fill(nmd_buf(tx, s->buf_idx), *seq, s->len);
		i = nmd_next(tx, i);
	}
	nmd_store_release_u32(&tx->cur, i);
	nmd_store_release_u32(&tx->head, i);
}

/* Takes every frame the RX ring holds; -1 on a bad one. */
static int take_frames(struct netmap_ring *rx, uint64_t seed, uint64_t *seq)
{
	int n = 0;
	uint32_t tail = nmd_load_acquire_u32(&rx->tail);
	while (rx->head != tail) {
		struct netmap_slot *s = &rx->slot[rx->head];
		uint16_t len = nmt_frame_len(seed, *seq);
		if (s->len != len || nmt_frame_check(nmd_buf(rx, s->buf_idx), *seq, len)) {
			printf("FAIL %s: frame %llu corrupt (len %u, want %u)\n", nmt_prog, (unsigned long long)*seq,
			    s->len, len);
			return -1;
		}
		(*seq)++;
		n++;
		rx->head = rx->cur = nmd_next(rx, rx->head);
	}
	return n;
}

/* =========================================================================
 * closed_writer
 * ========================================================================= */

static volatile uint32_t *shared;   /* [0] child phase, [1] scribble rounds, [2] stop */

static uint64_t rnd_state = 0x1234567;
static uint32_t rnd32(void)
{
	return (uint32_t)nmt_splitmix(&rnd_state);
}

static void scribble_ring(struct netmap_ring *r, uint32_t nslots, uint32_t buf_total, int round)
{
	static const uint32_t wild[] = { 0, 1, 2, 0xffffffffu, 0x7fffffffu, 0xfffffff0u };
	r->head = rnd32() % (nslots * 2 + 3);
	r->cur = rnd32() % (nslots * 2 + 3);
	r->tail = rnd32();
	r->flags = rnd32();
	for (uint32_t i = 0; i < nslots; i++) {
		struct netmap_slot *s = &r->slot[i];
		uint32_t x = rnd32();
		s->buf_idx = x & 1 ? wild[x % 6] : (x >> 1) % (buf_total + 16);
		s->len = (uint16_t)rnd32();
		s->flags = (uint16_t)rnd32();
		s->ptr = ((uint64_t)rnd32() << 32) | rnd32();
	}
	if (round % 7 == 0) {
		/* the daemon's own fields too: buf_ofs, num_slots, nr_buf_size, ringid, dir */
		uint8_t *p = (uint8_t *)r;
		for (size_t i = 0; i < 24; i++)
			p[i] = (uint8_t)rnd32();
	}
}

static int child_scribbler(const char *pipe_end, const char *null_name, uint32_t buf_total, int ready_fd)
{
	int pfd = nmt_open(), nfd = nmt_open();
	struct nmreq_register preg, nreg;
	int e = nmd_register(pfd, pipe_end, NR_REG_ALL_NIC, 0, 0, 16, &preg);
	if (e) {
		printf("FAIL nm_faults: scribbler: REGISTER %s: %s\n", pipe_end, nmt_errname(e));
		return 1;
	}
	e = register_null(nfd, null_name, &nreg);
	if (e) {
		printf("FAIL nm_faults: scribbler: REGISTER null port %s: %s\n", null_name, nmt_errname(e));
		return 1;
	}
	void *pm = nmt_mmap(pfd, preg.nr_memsize), *nm = nmt_mmap(nfd, nreg.nr_memsize);
	struct netmap_if *ifs[2] = { nmd_if(pm, preg.nr_offset), nmd_if(nm, nreg.nr_offset) };
	struct netmap_ring *rings[16];
	uint32_t nslots[16], nrings = 0;
	uint32_t bufs[64], nbufs = 0;
	for (int k = 0; k < 2; k++) {
		struct netmap_if *ni = ifs[k];
		for (uint32_t i = 0; i < ni->ni_tx_rings && nrings < 16; i++, nrings++)
			rings[nrings] = nmd_txring(ni, i);
		for (uint32_t i = 0; i < ni->ni_rx_rings && nrings < 16; i++, nrings++)
			rings[nrings] = nmd_rxring(ni, i);
	}
	for (uint32_t r = 0; r < nrings; r++) {
		nslots[r] = rings[r]->num_slots;
		for (uint32_t i = 0; i < 8 && nbufs < 64; i++)
			bufs[nbufs++] = rings[r]->slot[i].buf_idx;
	}
	/* some honest traffic first: 10 frames to the peer the parent holds */
	struct netmap_ring *tx = nmd_txring(ifs[0], 0);
	uint64_t seq = 0;
	put_frames(tx, 41, &seq, 10, 10);
	ioctl(pfd, NIOCTXSYNC, NULL);
	ioctl(nfd, NIOCTXSYNC, NULL);
	char *bufbase = (char *)tx + tx->buf_ofs;
	uint32_t bufsize = tx->nr_buf_size;

	close(pfd);
	close(nfd);
	shared[0] = 1;
	if (write(ready_fd, "c", 1) != 1)
		return 1;

	double end = nmd_now() + 1.5;
	int round = 0;
	while (nmd_now() < end && !shared[2]) {
		for (uint32_t r = 0; r < nrings; r++)
			scribble_ring(rings[r], nslots[r], buf_total, round);
		for (int k = 0; k < 2; k++) {
			uint32_t *w = (uint32_t *)&ifs[k]->ni_bufs_head;
			w[0] = rnd32();              /* ni_bufs_head */
			w[3] = rnd32();              /* ni_spare1 */
		}
		/* arbitrary bytes into the buffers the rings held before the close */
		for (uint32_t b = 0; b < nbufs; b++) {
			if (bufs[b] < 2 || bufs[b] >= buf_total)
				continue;
			uint64_t *p = (uint64_t *)(bufbase + (size_t)bufs[b] * bufsize);
			for (uint32_t i = 0; i < bufsize / 8; i += 16)
				p[i] = nmt_splitmix(&rnd_state);
		}
		round++;
		shared[1] = round;
		usleep(200);
	}
	return 0;
}

static void closed_writer(void)
{
	char kn[48], an[48], bn[48], pm[48], ps[48], nn[48], cn[48], cnn[48];
	int kfd = nmt_open();
	if (!CHECK_ERRNO(nmd_register(kfd, pname(kn, "cwk{1"), NR_REG_ALL_NIC, 0, 0, 0, NULL), 0,
		"closed_writer: keeper registration"))
		return;
	struct nmreq_pools_info pi;
	nmt_pools_info(kfd, kn, &pi);
	struct netmapd_pool_stats st0, st, during;
	nmt_poolstat(kfd, &st0);

	/* the unrelated pair and the abandoned end's peer exist before the child closes */
	struct nmt_port a, b, peer;
	if (nmt_port_open(&a, pname(an, "cwa{1"), 0, 0) || nmt_port_open(&b, pname(bn, "cwa}1"), 0, 0) ||
	    nmt_port_open(&peer, pname(ps, "cwp}1"), 0, 0)) {
		CHECK(0, "closed_writer: REGISTER the parent's ports");
		close(kfd);
		return;
	}
	pname(pm, "cwp{1");
	pname(nn, "cwnull");
	pname(cn, "cwc{1");
	pname(cnn, "cwcnull");
	struct netmapd_pool_stats before_child;
	nmt_poolstat(-1, &before_child);

	int rp[2];
	if (pipe(rp))
		nmt_die("pipe: %s", strerror(errno));
	shared[0] = shared[1] = shared[2] = 0;
	pid_t c = fork();
	if (c == 0) {
		close(rp[0]);
		close(kfd);
		_exit(child_scribbler(pm, nn, pi.nr_buf_pool_objtotal, rp[1]));
	}
	close(rp[1]);
	char ch;
	struct pollfd pr = { .fd = rp[0], .events = POLLIN };
	int up = poll(&pr, 1, NMT_MS(10000)) == 1 && read(rp[0], &ch, 1) == 1;
	close(rp[0]);
	if (!CHECK(up, "closed_writer: the child registered a pipe end and a null port, mapped and closed them")) {
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
	}
	usleep(100000);   /* let the releases reach the daemon */
	nmt_poolstat(-1, &during);
	CHECK(!up || during.sessions == before_child.sessions + 2, "closed_writer: after the child's close with its "
	    "mappings kept, its two registrations live on: sessions %u (before the child %u, with its two %u)",
	    during.sessions, before_child.sessions, before_child.sessions + 2);

	/* while the child scribbles: traffic a -> b, the peer's syncs, churn */
	uint64_t sent = 0, got = 0;
	int bad = 0, stalls = 0, churn = 0, churn_err = 0, peer_err = 0, last_peer_err = 0, last_churn_err = 0;
	double t0 = nmd_now();
	while (up) {
		int live = waitpid(c, NULL, WNOHANG) == 0;
		put_frames(a.tx, 17, &sent, UINT64_MAX, 256);
		int e = nmt_ioctl(a.fd, NIOCTXSYNC, NULL);
		if (e)
			bad = 1;
		struct pollfd pf = { .fd = b.fd, .events = POLLIN };
		if (poll(&pf, 1, NMT_MS(3000)) != 1 || !(pf.revents & POLLIN)) {
			stalls++;
			if (stalls > 3)
				break;
		}
		int n = take_frames(b.rx, 17, &got);
		if (n < 0) {
			bad = 1;
			break;
		}
		nmt_ioctl(b.fd, NIOCRXSYNC, NULL);
		/* the abandoned end's peer: syncs and polls, never touching its buffers */
		int pe = nmt_ioctl(peer.fd, NIOCTXSYNC, NULL);
		if (!pe)
			pe = nmt_ioctl(peer.fd, NIOCRXSYNC, NULL);
		if (pe) {
			peer_err++;
			last_peer_err = pe;
		}
		struct pollfd pp = { .fd = peer.fd, .events = POLLIN | POLLOUT };
		poll(&pp, 1, 0);
		peer.rx->head = peer.rx->cur = peer.rx->tail;   /* hand back whatever came */
		/* churn: fresh registrations that may be given the scribbled rings */
		int cfd = nmt_open(), nfd = nmt_open();
		struct nmreq_register nreg;
		int ce = nmd_register(cfd, cn, NR_REG_ALL_NIC, 0, 0, 0, NULL);
		if (!ce)
			ce = nmt_ioctl(cfd, NIOCTXSYNC, NULL);
		if (!ce)
			ce = nmt_ioctl(cfd, NIOCRXSYNC, NULL);
		if (!ce)
			ce = register_null(nfd, cnn, &nreg);
		if (!ce)
			ce = nmt_ioctl(nfd, NIOCTXSYNC, NULL);
		if (ce) {
			churn_err++;
			last_churn_err = ce;
		}
		struct pollfd cp = { .fd = cfd, .events = POLLIN | POLLOUT };
		poll(&cp, 1, 0);
		close(cfd);
		close(nfd);
		churn++;
		if (!live && nmd_now() - t0 > 0.2)
			break;
		if (nmd_now() - t0 > NMT_SEC(30))
			break;
	}
	int cst = 0;
	double tw = nmd_now();
	while (waitpid(c, &cst, WNOHANG) == 0) {
		if (nmd_now() - tw > NMT_SEC(10)) {
			kill(c, SIGKILL);
			waitpid(c, &cst, 0);
			break;
		}
		usleep(10000);
	}
	CHECK(WIFEXITED(cst) && WEXITSTATUS(cst) == 0, "closed_writer: the child scribbled its mapped rings for 1.5 s "
	    "after close (%u rounds) and exited 0 (status %#x)", shared[1], cst);
	CHECK(up && shared[1] > 20, "closed_writer: ... at least 20 scribble rounds (%u)", shared[1]);
	/* drain what is left */
	nmt_ioctl(a.fd, NIOCTXSYNC, NULL);
	for (int i = 0; i < 50 && got < sent && !bad; i++) {
		nmt_ioctl(b.fd, NIOCRXSYNC, NULL);
		if (take_frames(b.rx, 17, &got) < 0)
			bad = 1;
		nmt_ioctl(b.fd, NIOCRXSYNC, NULL);
		nmt_ioctl(a.fd, NIOCTXSYNC, NULL);
		if (got < sent)
			usleep(2000);
	}
	CHECK(!bad && got == sent && sent > 1000, "closed_writer: meanwhile an unrelated pipe carried %llu frames, "
	    "%llu arrived byte-exact (%d stalls)", (unsigned long long)sent, (unsigned long long)got, stalls);
	CHECK(churn_err == 0, "closed_writer: %d fresh registrations (pipe end + null port) with sync and poll during "
	    "the scribbling: %d failed (last %s)", churn, churn_err, nmt_errname(last_churn_err));
	CHECK(peer_err == 0, "closed_writer: the abandoned end's peer: %d NIOC*SYNC rounds, %d failed (last %s)", churn,
	    peer_err, nmt_errname(last_peer_err));
	CHECK_ERRNO(nmt_poolstat(-1, &st), 0, "closed_writer: the daemon still answers");

	nmt_port_close(&peer);
	nmt_port_close(&a);
	nmt_port_close(&b);
	/* What the daemon tracks itself comes back exactly. Buffers are freed as
	 * the slots name them at release (netmap does the same): slots scribbled
	 * before a release leak their buffers until the last client goes. */
	nmt_wait_stat(&st0, &st, 2.0);
	CHECK(st.free_rings == st0.free_rings && st.free_ifs == st0.free_ifs && st.sessions == st0.sessions &&
	    st.ports == st0.ports, "closed_writer: rings, interface objects, sessions and ports back at their start "
	    "after the child and the parent's ports (keeper held): " STAT_FMT, STAT_ARGS(st, st0));
	CHECK(st.free_buffers <= st0.free_buffers, "closed_writer: no buffer freed twice (free %u, at the start %u)",
	    st.free_buffers, st0.free_buffers);
	int32_t leaked = (int32_t)(st0.free_buffers - st.free_buffers);
	/* The child's own rings hold at most 2 x 1024 + the null port's slots
	 * (+16 extra buffers): a bigger shortfall means rings the daemon gave to
	 * other clients were written by the closed child. */
	CHECK(leaked <= 4096, "closed_writer: buffers not back while the keeper is held: %d (at most the child's own "
	    "rings' 4096; more: rings recycled to other clients were scribbled by the closed one)", leaked);
	int back = 1;
	/* the same pipe (both ends fresh) carries traffic again */
	struct nmt_port m, s;
	int e1 = nmt_port_open(&m, pm, 0, 0), e2 = e1 ? -1 : nmt_port_open(&s, ps, 0, 0);
	if (CHECK(e1 == 0 && e2 == 0, "closed_writer: the scribbled pipe registers again (%s, %s)", nmt_errname(e1),
		nmt_errname(e2 < 0 ? 0 : e2))) {
		uint64_t fs = 0, fg = 0;
		int fb = 0;
		for (int i = 0; i < 20 && fg < 1000 && !fb; i++) {
			put_frames(m.tx, 23, &fs, 1000, 200);
			nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
			struct pollfd pf = { .fd = s.fd, .events = POLLIN };
			poll(&pf, 1, NMT_MS(2000));
			if (take_frames(s.rx, 23, &fg) < 0)
				fb = 1;
			nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
		}
		CHECK(!fb && fg == 1000, "closed_writer: and carries 1000 frames byte-exact (%llu)", (unsigned long long)fg);
		nmt_port_close(&s);
		nmt_port_close(&m);
	}
	(void)back;
	nmt_wait_stat(&st0, &st, 2.0);
	CHECK(st.free_buffers == st0.free_buffers - (uint32_t)leaked && st.free_rings == st0.free_rings &&
	    st.sessions == st0.sessions, "closed_writer: the fresh traffic left the pool as it found it: free buffers "
	    "%u (want %u), rings %u (%u), sessions %u (%u)", st.free_buffers, st0.free_buffers - (uint32_t)leaked,
	    st.free_rings, st0.free_rings, st.sessions, st0.sessions);
	close(kfd);
	/* the last client gone, the daemon reclaims what was leaked (the
	 * keeper's release reaches the daemon asynchronously) */
	nmt_wait_sessions(0, 2.0);
	nmt_poolstat(-1, &st);
	if (st.sessions == 0) {
		double end = nmd_now() + NMT_SEC(5);
		while (nmt_poolstat(-1, &st) == 0 && st.free_buffers != st.total_buffers && nmd_now() < end)
			usleep(2000);
		CHECK(st.free_buffers == st.total_buffers && st.free_rings == st.total_rings && st.free_ifs == st.total_ifs,
		    "closed_writer: with every client gone the whole pool is free again: buffers %u/%u, rings %u/%u, "
		    "ifs %u/%u", st.free_buffers, st.total_buffers, st.free_rings, st.total_rings, st.free_ifs,
		    st.total_ifs);
	} else {
		nmt_info("other clients are registered (%u sessions): the whole-pool check is skipped", st.sessions);
	}
}

/* =========================================================================
 * mapped_close: the registration lives until munmap or exit
 * ========================================================================= */

/* True if `name` cannot be bound again right now (its end is still held). */
static int end_busy(const char *name)
{
	int fd = nmt_open();
	int e = nmd_register(fd, name, NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL);
	close(fd);
	return e == EBUSY;
}

/* Waits until `name` can be bound again; seconds waited, or -1. */
static double wait_free(const char *name, double seconds)
{
	double t0 = nmd_now(), end = t0 + NMT_SEC(seconds);
	for (;;) {
		int fd = nmt_open();
		int e = nmd_register(fd, name, NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL);
		close(fd);
		if (e == 0)
			return nmd_now() - t0;
		if (nmd_now() > end)
			return -1;
		usleep(5000);
	}
}

struct mapped_job {
	const char *name;
	struct nmt_port port;
};

static void *mapped_thread(void *arg)
{
	struct mapped_job *j = arg;
	if (nmt_port_open(&j->port, j->name, NR_EXCLUSIVE, 0))
		j->port.fd = -1;
	return NULL;
}

static void mapped_close(void)
{
	char a[48], b[48], c[48], d[48], e[48];
	struct netmapd_pool_stats st0, st;
	nmt_poolstat(-1, &st0);

	/* close, then munmap: kept until the munmap */
	struct nmt_port p;
	if (!CHECK_ERRNO(nmt_port_open(&p, pname(a, "mc{1"), NR_EXCLUSIVE, 0), 0, "mapped_close: register and map"))
		return;
	close(p.fd);
	usleep(300000);
	nmt_poolstat(-1, &st);
	CHECK(st.sessions == st0.sessions + 1 && end_busy(a), "mapped_close: closed with the region mapped: still "
	    "registered 0.3 s later (sessions %u, want %u) and its end still taken (EBUSY)", st.sessions,
	    st0.sessions + 1);
	munmap(p.mem, p.memsize);
	double w = wait_free(a, 2.0);
	CHECK(w >= 0 && nmt_wait_sessions(st0.sessions, 1.0), "mapped_close: released after the munmap (its end free "
	    "again after %.3f s)", w);

	/* one mapping shared by two ports (libnetmap maps an allocator once):
	 * the port without a mapping of its own goes at its close */
	struct nmt_port q;
	int fb = nmt_open();
	if (!CHECK_ERRNO(nmt_port_open(&q, pname(b, "mc{2"), 0, 0), 0, "mapped_close: a mapped port") ||
	    !CHECK_ERRNO(nmd_register(fb, pname(c, "mc{3"), NR_REG_ALL_NIC, 0, NR_EXCLUSIVE, 0, NULL), 0,
		"mapped_close: a second port using the same mapping"))
		return;
	/* split the mapping in two areas (mprotect): still one mapping */
	CHECK(mprotect(q.mem, 4096, PROT_READ) == 0, "mapped_close: mprotect splits the mapping");
	close(fb);
	w = wait_free(c, 2.0);
	CHECK(w >= 0 && w < 0.5, "mapped_close: the port without a mapping of its own is released at its close "
	    "(%.3f s) while the other keeps the mapping", w);
	close(q.fd);
	usleep(300000);
	nmt_poolstat(-1, &st);
	CHECK(st.sessions == st0.sessions + 1, "mapped_close: then the mapped port's close keeps it (sessions %u, "
	    "want %u)", st.sessions, st0.sessions + 1);
	munmap(q.mem, q.memsize);
	CHECK(nmt_wait_sessions(st0.sessions, 2.0), "mapped_close: until its munmap");

	/* a thread registers and maps, the main thread closes: the process counts */
	struct mapped_job job = { .name = pname(d, "mc{4") };
	pthread_t th;
	pthread_create(&th, NULL, mapped_thread, &job);
	pthread_join(th, NULL);
	struct nmt_port t = job.port;
	if (!CHECK(t.fd >= 0, "mapped_close: a thread (gone since) registered and mapped"))
		return;
	close(t.fd);
	usleep(300000);
	CHECK(end_busy(d), "mapped_close: closed by the main thread, mapped: kept");
	munmap(t.mem, t.memsize);
	w = wait_free(d, 2.0);
	CHECK(w >= 0, "mapped_close: released after the munmap (%.3f s)", w);

	/* exit with the region mapped and the descriptor closed: released at exit */
	pname(e, "mc{5");
	pid_t ch = fork();
	if (ch == 0) {
		struct nmt_port x;
		if (nmt_port_open(&x, e, NR_EXCLUSIVE, 0))
			_exit(1);
		close(x.fd);
		usleep(300000);
		_exit(end_busy(e) ? 0 : 2);
	}
	int cst = 0;
	waitpid(ch, &cst, 0);
	double t0 = nmd_now();
	w = wait_free(e, 2.0);
	CHECK(WIFEXITED(cst) && WEXITSTATUS(cst) == 0 && w >= 0, "mapped_close: a child that closed and exited "
	    "mapped was kept while alive (status %#x) and released at its exit (%.3f s after)", cst,
	    w >= 0 ? nmd_now() - t0 : -1.0);

	int same = nmt_wait_stat(&st0, &st, 2.0);
	CHECK(same, "mapped_close: pool back at its start: " STAT_FMT, STAT_ARGS(st, st0));
}

/* =========================================================================
 * fork_concurrent
 * ========================================================================= */

/* The slave end in its own process: receives `rx_n` frames (seed 31), sends
 * `tx_n` frames (seed 32), one poll loop; prints its counts. */
static int peer_process(const char *name, uint64_t rx_n, uint64_t tx_n, int ready_fd)
{
	struct nmt_port s;
	int e = nmt_port_open(&s, name, 0, 0);
	if (e) {
		printf("FAIL nm_faults: peer: REGISTER %s: %s\n", name, nmt_errname(e));
		return 1;
	}
	if (write(ready_fd, "p", 1) != 1)
		return 1;
	close(ready_fd);
	uint64_t got = 0, sent = 0;
	while (got < rx_n || sent < tx_n) {
		struct pollfd pf = { .fd = s.fd, .events = (got < rx_n ? POLLIN : 0) | (sent < tx_n ? POLLOUT : 0) };
		int r = poll(&pf, 1, NMT_MS(10000));
		if (r != 1 || (pf.revents & POLLERR)) {
			printf("FAIL nm_faults: peer: poll %d revents %#x after %llu received, %llu sent\n", r, pf.revents,
			    (unsigned long long)got, (unsigned long long)sent);
			return 1;
		}
		if (take_frames(s.rx, 31, &got) < 0)
			return 1;
		if (sent < tx_n)
			put_frames(s.tx, 32, &sent, tx_n, 256);
	}
	/* flush the last frames and wait until the master took them */
	for (int i = 0; i < 2000 && nmd_space(s.tx) != s.tx->num_slots - 1; i++) {
		ioctl(s.fd, NIOCTXSYNC, NULL);
		usleep(1000);
	}
	printf("INFO nm_faults: peer: %llu frames received intact, %llu sent\n", (unsigned long long)got,
	    (unsigned long long)sent);
	if (got != rx_n || nmd_space(s.tx) != s.tx->num_slots - 1) {
		printf("FAIL nm_faults: peer: received %llu of %llu, TX space %u\n", (unsigned long long)got,
		    (unsigned long long)rx_n, nmd_space(s.tx));
		return 1;
	}
	/* nothing more may arrive */
	usleep(50000);
	ioctl(s.fd, NIOCRXSYNC, NULL);
	if (s.rx->head != s.rx->tail) {
		printf("FAIL nm_faults: peer: %u frames beyond the %llu expected\n", nmd_space(s.rx),
		    (unsigned long long)rx_n);
		return 1;
	}
	nmt_port_close(&s);
	return 0;
}

static pid_t start_peer(const char *name, uint64_t rx_n, uint64_t tx_n)
{
	int rp[2];
	if (pipe(rp))
		nmt_die("pipe: %s", strerror(errno));
	pid_t p = fork();
	if (p == 0) {
		close(rp[0]);
		_exit(peer_process(name, rx_n, tx_n, rp[1]));
	}
	close(rp[1]);
	char c;
	struct pollfd pr = { .fd = rp[0], .events = POLLIN };
	int ok = poll(&pr, 1, NMT_MS(10000)) == 1 && read(rp[0], &c, 1) == 1;
	close(rp[0]);
	if (!ok) {
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		return -1;
	}
	return p;
}

static int wait_exit(pid_t p, double seconds, int *status)
{
	double end = nmd_now() + NMT_SEC(seconds);
	while (waitpid(p, status, WNOHANG) == 0) {
		if (nmd_now() > end) {
			kill(p, SIGKILL);
			waitpid(p, status, 0);
			return 0;
		}
		usleep(2000);
	}
	return 1;
}

static void fork_concurrent(void)
{
	char kn[48], mn[48], sn[48];
	int kfd = nmt_open();
	if (!CHECK_ERRNO(nmd_register(kfd, pname(kn, "fck{1"), NR_REG_ALL_NIC, 0, 0, 0, NULL), 0,
		"fork_concurrent: keeper registration"))
		return;
	struct netmapd_pool_stats st0, st;
	nmt_poolstat(kfd, &st0);
	uint64_t n = frames_per_dir;

	struct nmt_port m;
	if (!CHECK_ERRNO(nmt_port_open(&m, pname(mn, "fc{1"), 0, 0), 0, "fork_concurrent: REGISTER the master end")) {
		close(kfd);
		return;
	}
	pname(sn, "fc}1");

	/* phase 1: parent TX, child RX on the same descriptor, at the same time */
	pid_t peer = start_peer(sn, n, n);
	if (!CHECK(peer > 0, "fork_concurrent: peer process registered the slave end")) {
		nmt_port_close(&m);
		close(kfd);
		return;
	}
	double t0 = nmd_now();
	pid_t c = fork();
	if (c == 0) {
		close(kfd);
		uint64_t got = 0;
		while (got < n) {
			struct pollfd pf = { .fd = m.fd, .events = POLLIN };
			int r = poll(&pf, 1, NMT_MS(10000));
			if (r != 1 || (pf.revents & POLLERR)) {
				printf("FAIL nm_faults: child RX: poll %d revents %#x after %llu frames\n", r, pf.revents,
				    (unsigned long long)got);
				_exit(1);
			}
			if (take_frames(m.rx, 32, &got) < 0)
				_exit(1);
			if ((got & 3) == 0 && nmt_ioctl(m.fd, NIOCRXSYNC, NULL))
				_exit(2);
		}
		ioctl(m.fd, NIOCRXSYNC, NULL);
		printf("INFO nm_faults: child: %llu frames received intact on the shared descriptor\n",
		    (unsigned long long)got);
		_exit(0);
	}
	uint64_t sent = 0;
	int perr = 0;
	while (sent < n) {
		struct pollfd pf = { .fd = m.fd, .events = POLLOUT };
		int r = poll(&pf, 1, NMT_MS(10000));
		if (r != 1 || (pf.revents & POLLERR)) {
			printf("FAIL nm_faults: parent TX: poll %d revents %#x after %llu frames\n", r, pf.revents,
			    (unsigned long long)sent);
			perr = 1;
			break;
		}
		put_frames(m.tx, 31, &sent, n, 256);
		if ((sent & 7) == 0 && nmt_ioctl(m.fd, NIOCTXSYNC, NULL))
			perr = 1;
	}
	for (int i = 0; i < 2000 && nmd_space(m.tx) != m.tx->num_slots - 1; i++) {
		ioctl(m.fd, NIOCTXSYNC, NULL);
		usleep(1000);
	}
	int cst = 0, pst = 0;
	int cdone = wait_exit(c, 30, &cst), pdone = wait_exit(peer, 30, &pst);
	CHECK(!perr && sent == n, "fork_concurrent: parent sent %llu frames on the shared descriptor (poll POLLOUT)",
	    (unsigned long long)sent);
	CHECK(cdone && WIFEXITED(cst) && WEXITSTATUS(cst) == 0,
	    "fork_concurrent: child received %llu frames intact on the same descriptor at the same time (poll POLLIN "
	    "+ NIOCRXSYNC; status %#x%s)", (unsigned long long)n, cst, cdone ? "" : ", hung: killed");
	CHECK(pdone && WIFEXITED(pst) && WEXITSTATUS(pst) == 0,
	    "fork_concurrent: peer received exactly the parent's %llu frames intact and sent %llu (status %#x%s) "
	    "(%.1f s)", (unsigned long long)n, (unsigned long long)n, pst, pdone ? "" : ", hung: killed",
	    nmd_now() - t0);

	/* phase 2: parent TX with NIOCTXSYNC while the child hammers NIOCTXSYNC / poll on it */
	peer = start_peer(sn, n, 0);
	if (!CHECK(peer > 0, "fork_concurrent: peer process registered the slave end again")) {
		nmt_port_close(&m);
		close(kfd);
		return;
	}
	shared[2] = 0;
	shared[1] = 0;
	t0 = nmd_now();
	c = fork();
	if (c == 0) {
		close(kfd);
		uint32_t calls = 0, errs = 0;
		while (!shared[2]) {
			if (nmt_ioctl(m.fd, NIOCTXSYNC, NULL))
				errs++;
			struct pollfd pf = { .fd = m.fd, .events = POLLOUT };
			if (poll(&pf, 1, 0) < 0 || (pf.revents & POLLERR))
				errs++;
			calls++;
		}
		shared[1] = calls;
		_exit(errs ? 1 : 0);
	}
	sent = 0;
	perr = 0;
	double end = nmd_now() + NMT_SEC(60);
	while (sent < n && nmd_now() < end) {
		put_frames(m.tx, 31, &sent, n, 64);
		if (nmt_ioctl(m.fd, NIOCTXSYNC, NULL))
			perr = 1;
		if (nmd_space(m.tx) == 0)
			usleep(100);
	}
	for (int i = 0; i < 2000 && nmd_space(m.tx) != m.tx->num_slots - 1; i++) {
		ioctl(m.fd, NIOCTXSYNC, NULL);
		usleep(1000);
	}
	pdone = wait_exit(peer, 30, &pst);
	shared[2] = 1;
	cdone = wait_exit(c, 10, &cst);
	CHECK(cdone && WIFEXITED(cst) && WEXITSTATUS(cst) == 0,
	    "fork_concurrent: child made %u NIOCTXSYNC + poll calls on the descriptor meanwhile, all returned 0 "
	    "(status %#x%s)", shared[1], cst, cdone ? "" : ", hung: killed");
	CHECK(!perr && sent == n && pdone && WIFEXITED(pst) && WEXITSTATUS(pst) == 0,
	    "fork_concurrent: with both halves in NIOCTXSYNC, the peer got each of the %llu frames once and intact "
	    "(status %#x, %.1f s)", (unsigned long long)sent, pst, nmd_now() - t0);
	CHECK(nmd_space(m.tx) == m.tx->num_slots - 1, "fork_concurrent: the TX ring was fully reclaimed (space %u)",
	    nmd_space(m.tx));
	nmt_ioctl(m.fd, NIOCRXSYNC, NULL);
	CHECK(m.rx->head == m.rx->tail, "fork_concurrent: nothing unexpected on the master's RX ring (%u)",
	    nmd_space(m.rx));

	nmt_poolstat(-1, &st);
	CHECK(st.sessions == st0.sessions + 1, "fork_concurrent: both children gone, the parent's registration is "
	    "still one session (sessions %u, want %u)", st.sessions, st0.sessions + 1);
	nmt_port_close(&m);
	int back = nmt_wait_stat(&st0, &st, 5.0);
	CHECK(back, "fork_concurrent: pool back at its start after both halves closed: " STAT_FMT, STAT_ARGS(st, st0));
	close(kfd);
}

/* =========================================================================
 * poolstat, fresh, hold
 * ========================================================================= */

static void print_pool(const struct netmapd_pool_stats *s)
{
	printf("POOL free_buffers=%u total_buffers=%u free_rings=%u total_rings=%u free_ifs=%u total_ifs=%u "
	    "sessions=%u ports=%u\n", s->free_buffers, s->total_buffers, s->free_rings, s->total_rings, s->free_ifs,
	    s->total_ifs, s->sessions, s->ports);
}

static int pristine(const struct netmapd_pool_stats *s)
{
	return s->total_buffers > 0 && s->free_buffers == s->total_buffers && s->free_rings == s->total_rings &&
	    s->free_ifs == s->total_ifs && s->sessions == 0 && s->ports == 0;
}

static void fresh(void)
{
	struct netmapd_pool_stats st;
	int fd = open(nmt_device_path(), O_RDWR);
	if (!CHECK(fd >= 0, "fresh: open %s (%s)", nmt_device_path(), fd < 0 ? strerror(errno) : "ok"))
		return;
	CHECK_ERRNO(nmt_poolstat(fd, &st), 0, "fresh: POOLSTAT");
	close(fd);
	print_pool(&st);
	CHECK(pristine(&st), "fresh: the pool is at its start (every buffer, ring and interface object free, no "
	    "sessions, no ports)");
	char mn[48], sn[48];
	struct nmt_port m, s;
	int e1 = nmt_port_open(&m, pname(mn, "fr{1"), 0, 0), e2 = e1 ? -1 : nmt_port_open(&s, pname(sn, "fr}1"), 0, 0);
	if (!CHECK(e1 == 0 && e2 == 0, "fresh: REGISTER and mmap both ends of a pipe (%s, %s)", nmt_errname(e1),
		nmt_errname(e2 < 0 ? 0 : e2)))
		return;
	uint64_t sent = 0, got = 0;
	int bad = 0;
	for (int i = 0; i < 100 && got < 2000 && !bad; i++) {
		put_frames(m.tx, 9, &sent, 2000, 256);
		nmt_ioctl(m.fd, NIOCTXSYNC, NULL);
		struct pollfd pf = { .fd = s.fd, .events = POLLIN };
		if (poll(&pf, 1, NMT_MS(3000)) != 1)
			break;
		if (take_frames(s.rx, 9, &got) < 0)
			bad = 1;
		nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	}
	CHECK(!bad && got == 2000, "fresh: 2000 frames byte-exact through the pipe (%llu)", (unsigned long long)got);
	nmt_port_close(&s);
	nmt_port_close(&m);
	double end = nmd_now() + NMT_SEC(5);
	while (nmt_poolstat(-1, &st) == 0 && !pristine(&st) && nmd_now() < end)
		usleep(2000);
	CHECK(pristine(&st), "fresh: the pool is at its start again after the close: free buffers %u/%u, rings %u/%u, "
	    "ifs %u/%u, sessions %u, ports %u", st.free_buffers, st.total_buffers, st.free_rings, st.total_rings,
	    st.free_ifs, st.total_ifs, st.sessions, st.ports);
}

struct poller {
	int fd;
	short events;
	volatile int done;
	int ret, err;
	short revents;
	double took;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pollfd pf = { .fd = p->fd, .events = p->events };
	double t0 = nmd_now();
	p->ret = poll(&pf, 1, 60000);
	p->err = p->ret < 0 ? errno : 0;
	p->revents = pf.revents;
	p->took = nmd_now() - t0;
	p->done = 1;
	return NULL;
}

static int acceptable_dead(int e)
{
	return e == ENOTCONN || e == ENODEV || e == EIO || e == ENXIO;
}

static void hold(void)
{
	char mn[48], sn[48], fm[48], fs[48];
	struct nmt_port m, s, m2, s2;
	/* pair 1: nothing is sent, the slave's poll(POLLIN) sleeps; pair 2: the
	 * master's TX ring and the slave's RX ring are full and nobody drains
	 * them, the master's poll(POLLOUT) sleeps */
	int e = nmt_port_open(&m, pname(mn, "hd{1"), 0, 0);
	if (!e)
		e = nmt_port_open(&s, pname(sn, "hd}1"), 0, 0);
	if (!e)
		e = nmt_port_open(&m2, pname(fm, "hf{1"), 0, 0);
	if (!e)
		e = nmt_port_open(&s2, pname(fs, "hf}1"), 0, 0);
	if (!CHECK_ERRNO(e, 0, "hold: REGISTER both ends of two pipes"))
		return;
	uint64_t sent = 0;
	for (int i = 0; i < 8 && nmd_space(m2.tx) > 0; i++) {
		put_frames(m2.tx, 5, &sent, UINT64_MAX, 4096);
		nmt_ioctl(m2.fd, NIOCTXSYNC, NULL);
	}
	CHECK(nmd_space(m2.tx) == 0, "hold: second pipe full (%llu frames sent, TX space %u)", (unsigned long long)sent,
	    nmd_space(m2.tx));
	struct poller pin = { .fd = s.fd, .events = POLLIN }, pout = { .fd = m2.fd, .events = POLLOUT };
	uint32_t tx_tail = m.tx->tail;
	pthread_t t1, t2;
	pthread_create(&t1, NULL, poller_main, &pin);
	pthread_create(&t2, NULL, poller_main, &pout);
	usleep(NMT_MS(300));
	CHECK(!pin.done && !pout.done, "hold: one thread sleeps in poll(POLLIN) on an idle slave, one in poll(POLLOUT) "
	    "on a full master (returned: %d, %d)", pin.done, pout.done);
	printf("held\n");
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		nmt_info("stdin closed");
	double t0 = nmd_now();
	while ((!pin.done || !pout.done) && nmd_now() - t0 < NMT_SEC(10))
		usleep(5000);
	CHECK(pin.done, "hold: the sleeping poll(POLLIN) ended after the daemon died (ret %d, revents %#x, errno %s, "
	    "%.2f s after the go)", pin.ret, pin.revents, nmt_errname(pin.err), nmd_now() - t0);
	CHECK(pout.done, "hold: the poll(POLLOUT) ended too (ret %d, revents %#x, errno %s)", pout.ret, pout.revents,
	    nmt_errname(pout.err));
	int te = nmt_ioctl(m.fd, NIOCTXSYNC, NULL), re = nmt_ioctl(s.fd, NIOCRXSYNC, NULL);
	struct nmreq_pools_info pi;
	int ce = nmt_pools_info(m.fd, mn, &pi);
	struct netmapd_pool_stats st;
	int pe = nmt_ioctl(m.fd, NETMAPD_IOC_POOLSTAT, &st);
	nmt_info("after the daemon died: NIOCTXSYNC errno %s, NIOCRXSYNC errno %s, NIOCCTRL errno %s, POOLSTAT errno %s",
	    nmt_errname(te), nmt_errname(re), nmt_errname(ce), nmt_errname(pe));
	CHECK(acceptable_dead(te) && acceptable_dead(re) && acceptable_dead(ce) && acceptable_dead(pe),
	    "hold: ioctls on the dead daemon's descriptors fail: NIOCTXSYNC %s, NIOCRXSYNC %s, NIOCCTRL %s, POOLSTAT %s",
	    nmt_errname(te), nmt_errname(re), nmt_errname(ce), nmt_errname(pe));
	struct pollfd pf = { .fd = s.fd, .events = POLLIN };
	double tp = nmd_now();
	int pr = poll(&pf, 1, 5000);
	CHECK(pr != 0 && nmd_now() - tp < 2.0, "hold: a new poll returns at once (ret %d, revents %#x, %.3f s)", pr,
	    pf.revents, nmd_now() - tp);
	CHECK(m.tx->tail == tx_tail && m.tx->num_slots > 0, "hold: the mapping is still readable (TX tail %u)",
	    m.tx->tail);
	int fd = open(nmt_device_path(), O_RDWR);
	int oe = fd < 0 ? errno : 0, re2 = -1;
	if (fd >= 0) {
		re2 = nmd_register(fd, pname(mn, "hd2{1"), NR_REG_ALL_NIC, 0, 0, 0, NULL);
		close(fd);
	}
	nmt_info("opening %s again: %s%s%s", nmt_device_path(), fd < 0 ? "errno " : "ok", fd < 0 ? nmt_errname(oe) : "",
	    fd >= 0 ? (re2 ? ", REGISTER fails" : ", REGISTER works") : "");
	CHECK(fd < 0 || re2 != 0, "hold: the device cannot be used until the daemon is back (open %s, REGISTER %s)",
	    nmt_errname(oe), re2 < 0 ? "-" : nmt_errname(re2));
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	int u = munmap(m.mem, m.memsize) | munmap(s.mem, s.memsize) | munmap(m2.mem, m2.memsize) |
	    munmap(s2.mem, s2.memsize);
	int c1 = close(m.fd), c2 = close(s.fd), c3 = close(m2.fd), c4 = close(s2.fd);
	CHECK(u == 0, "hold: munmap returns 0");
	nmt_info("close returns %d, %d, %d, %d", c1, c2, c3, c4);
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_faults");
	snprintf(base, sizeof base, "flt%d", (int)(getpid() % 100000));
	signal(SIGPIPE, SIG_IGN);
	int j = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			frames_per_dir = strtoull(argv[++i], NULL, 0);
			continue;
		}
		argv[j++] = argv[i];
	}
	argc = j;
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		nmt_die("mmap: %s", strerror(errno));
	if (argc == 2 && strcmp(argv[1], "poolstat") == 0) {
		struct netmapd_pool_stats st;
		int e = nmt_poolstat(-1, &st);
		if (e)
			nmt_die("POOLSTAT: %s", nmt_errname(e));
		print_pool(&st);
		return 0;
	}
	int any = 0;
	for (int i = 1; i < argc; i++) {
		any = 1;
		if (!strcmp(argv[i], "closed_writer"))
			closed_writer();
		else if (!strcmp(argv[i], "fork_concurrent"))
			fork_concurrent();
		else if (!strcmp(argv[i], "mapped_close"))
			mapped_close();
		else if (!strcmp(argv[i], "fresh"))
			fresh();
		else if (!strcmp(argv[i], "hold"))
			hold();
		else
			nmt_die("unknown section %s", argv[i]);
	}
	if (!any) {
		closed_writer();
		mapped_close();
		fork_concurrent();
	}
	return nmt_summary();
}
