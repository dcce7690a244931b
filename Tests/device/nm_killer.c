/*
 * nm_killer.c: clients killed with SIGKILL mid-traffic must not hurt the
 * daemon or leak its pools (spec §2 release on last reference, §4.7).
 *
 *   nm_killer [-d DEVICE] [RUNS] [EXTRA_BUFS]     (defaults 100 and 64)
 *
 * Each run forks a sender (pipe master end) and a receiver (slave end), each
 * registered with EXTRA_BUFS extra buffers, some of which each side swaps
 * into its rings before traffic starts (so the daemon has to find buffers
 * both in ring slots and in the ni_bufs_head list). Frames flow with poll()
 * wake-ups; after a random 5-40 ms the parent SIGKILLs the sender, the
 * receiver or both (in turn). A survivor is told to stop and must exit
 * cleanly with every frame it saw intact. Then:
 *   - the pool statistics (free buffers, rings, interface objects, sessions,
 *     ports) must return to their values from before the run (polled for a
 *     while: release after a kill is asynchronous);
 *   - a fresh registration of the same pipe must carry traffic, and leave
 *     the pool as it found it.
 * Then half as many runs kill a client that loops open / REGISTER (a refused
 * option chain, then with extra buffers) / mmap / a few frames / munmap /
 * close, at a random moment, with the same checks after each.
 * A keeper registration is held throughout so that the pool is never reset
 * by the last client leaving: the counts show exact accounting.
 */
#include "nm_common.h"

static uint64_t SEED = 99;

/* Progress of the children, in memory shared with the parent: a kill must
 * land while frames are flowing. */
static volatile uint64_t *progress;   /* [0] sent, [1] received */

static int ctl_stop(int fd)
{
	char c;
	return read(fd, &c, 1) != 0;   /* anything, or EOF */
}

/* Swap `count` extra buffers into the given ring slots (the user owns them),
 * keeping every buffer owned exactly once: the slot's old buffer takes the
 * extra buffer's place at the head of the list. */
static void swap_extras(struct netmap_if *nifp, struct netmap_ring *r, uint32_t first, uint32_t count)
{
	uint32_t i = first;
	for (uint32_t k = 0; k < count && nifp->ni_bufs_head; k++) {
		uint32_t x = nifp->ni_bufs_head;
		uint32_t next = *(uint32_t *)nmd_buf(r, x);
		uint32_t y = r->slot[i].buf_idx;
		*(uint32_t *)nmd_buf(r, y) = next;
		r->slot[i].buf_idx = x;
		r->slot[i].flags |= NS_BUF_CHANGED;
		nifp->ni_bufs_head = y;
		i = nmd_next(r, i);
	}
}

static int child_sender(const char *name, uint32_t extra, int ready, int ctl)
{
	struct nmt_port p;
	int e = nmt_port_open(&p, name, 0, extra);
	if (e) {
		printf("FAIL nm_killer: sender REGISTER %s: %s\n", name, nmt_errname(e));
		return 1;
	}
	struct netmap_ring *tx = p.tx;
	swap_extras(p.nifp, tx, tx->head, 4);
	if (write(ready, "S", 1) != 1)
		return 1;
	uint64_t seq = 0;
	struct pollfd pf[2] = { { .fd = p.fd, .events = POLLOUT }, { .fd = ctl, .events = POLLIN } };
	for (;;) {
		int r = poll(pf, 2, NMT_MS(10000));
		if (r <= 0 || (pf[0].revents & POLLERR)) {
			printf("FAIL nm_killer: sender: poll %d revents %#x\n", r, pf[0].revents);
			return 1;
		}
		if (pf[1].revents && ctl_stop(ctl))
			break;
		if (!(pf[0].revents & POLLOUT))
			continue;
		uint32_t room = nmd_space(tx), i = tx->head;
		for (uint32_t k = 0; k < room && k < 256; k++, seq++) {
			struct netmap_slot *s = &tx->slot[i];
			s->len = nmt_frame_len(SEED, seq);
			s->flags = 0;
			nmt_frame_fill(nmd_buf(tx, s->buf_idx), seq, s->len);
			i = nmd_next(tx, i);
		}
		tx->head = tx->cur = i;
		progress[0] = seq;
	}
	nmt_port_close(&p);
	return 0;
}

static int child_receiver(const char *name, uint32_t extra, int ready, int ctl)
{
	struct nmt_port p;
	int e = nmt_port_open(&p, name, 0, extra);
	if (e) {
		printf("FAIL nm_killer: receiver REGISTER %s: %s\n", name, nmt_errname(e));
		return 1;
	}
	struct netmap_ring *rx = p.rx;
	if (write(ready, "R", 1) != 1)
		return 1;
	uint64_t seq = 0;
	int swapped = 0;
	struct pollfd pf[2] = { { .fd = p.fd, .events = POLLIN }, { .fd = ctl, .events = POLLIN } };
	for (;;) {
		int r = poll(pf, 2, NMT_MS(10000));
		if (r <= 0 || (pf[0].revents & POLLERR)) {
			printf("FAIL nm_killer: receiver: poll %d revents %#x\n", r, pf[0].revents);
			return 1;
		}
		if (pf[1].revents && ctl_stop(ctl))
			break;
		uint32_t n = nmd_space(rx), i = rx->head;
		for (uint32_t k = 0; k < n; k++, seq++) {
			struct netmap_slot *s = &rx->slot[i];
			uint16_t len = nmt_frame_len(SEED, seq);
			if (s->len != len || nmt_frame_check(nmd_buf(rx, s->buf_idx), seq, len)) {
				printf("FAIL nm_killer: receiver: frame %llu corrupt (len %u want %u)\n",
				    (unsigned long long)seq, s->len, len);
				return 1;
			}
			i = nmd_next(rx, i);
		}
		if (!swapped && n >= 4) {
			/* keep 4 received buffers, give extra buffers back instead */
			swap_extras(p.nifp, rx, rx->head, 4);
			swapped = 1;
		}
		rx->head = rx->cur = i;
		progress[1] = seq;
	}
	nmt_port_close(&p);
	return 0;
}

/* Registration churn: open, register both ends (one with extra buffers and
 * a refused option chain first), map, move a few frames, unmap, close;
 * again and again until killed. */
static int child_churn(const char *mname, const char *sname)
{
	for (uint64_t round = 0;; round++) {
		int mfd = nmt_open(), sfd = nmt_open();
		struct nmreq_option unknown;
		memset(&unknown, 0, sizeof unknown);
		unknown.nro_reqtype = 77;
		unknown.nro_size = sizeof unknown;
		struct nmreq_register reg, sreg;
		memset(&reg, 0, sizeof reg);
		reg.nr_mode = NR_REG_ALL_NIC;
		reg.nr_extra_bufs = 16;
		struct nmreq_header h;
		nmd_req_header(&h, NETMAP_REQ_REGISTER, mname, &reg);
		h.nr_options = (uintptr_t)&unknown;
		if (nmt_ioctl(mfd, NIOCCTRL, &h) != EOPNOTSUPP)
			return 1;
		h.nr_options = 0;
		if (nmt_ioctl(mfd, NIOCCTRL, &h) || nmd_register(sfd, sname, NR_REG_ALL_NIC, 0, 0, 0, &sreg)) {
			printf("FAIL nm_killer: churn: REGISTER failed in round %llu\n", (unsigned long long)round);
			return 1;
		}
		void *mm = nmt_mmap(mfd, reg.nr_memsize), *sm = nmt_mmap(sfd, sreg.nr_memsize);
		struct netmap_if *mi = nmd_if(mm, reg.nr_offset), *si = nmd_if(sm, sreg.nr_offset);
		struct netmap_ring *tx = nmd_txring(mi, 0), *rx = nmd_rxring(si, 0);
		swap_extras(mi, tx, tx->head, 2);
		for (int i = 0; i < 8; i++) {
			tx->slot[tx->head].len = 60;
			tx->head = tx->cur = nmd_next(tx, tx->head);
		}
		ioctl(mfd, NIOCTXSYNC, NULL);
		ioctl(sfd, NIOCRXSYNC, NULL);
		rx->head = rx->cur = rx->tail;
		ioctl(sfd, NIOCRXSYNC, NULL);
		munmap(sm, sreg.nr_memsize);
		munmap(mm, reg.nr_memsize);
		close(sfd);
		close(mfd);
		progress[1] = round + 1;
	}
}

/* A fresh master/slave pair on `base`: 300 frames with sync ioctls. */
static int fresh_traffic(const char *base, char *why, size_t whylen)
{
	char mn[64], sn[64];
	snprintf(mn, sizeof mn, "%s{1", base);
	snprintf(sn, sizeof sn, "%s}1", base);
	struct nmt_port m, s;
	int e = nmt_port_open(&m, mn, 0, 8);
	if (e) {
		snprintf(why, whylen, "REGISTER %s: %s", mn, nmt_errname(e));
		return 0;
	}
	e = nmt_port_open(&s, sn, 0, 8);
	if (e) {
		snprintf(why, whylen, "REGISTER %s: %s", sn, nmt_errname(e));
		nmt_port_close(&m);
		return 0;
	}
	uint64_t sent = 0, got = 0;
	int ok = 1;
	while (got < 300 && ok) {
		uint32_t i = m.tx->head;
		for (uint32_t k = 0, room = nmd_space(m.tx); k < room && k < 100 && sent < 300; k++, sent++) {
			struct netmap_slot *sl = &m.tx->slot[i];
			sl->len = nmt_frame_len(7, sent);
			nmt_frame_fill(nmd_buf(m.tx, sl->buf_idx), sent, sl->len);
			i = nmd_next(m.tx, i);
		}
		m.tx->head = m.tx->cur = i;
		struct pollfd pf = { .fd = s.fd, .events = POLLIN };
		ioctl(m.fd, NIOCTXSYNC, NULL);
		if (poll(&pf, 1, NMT_MS(3000)) != 1 || !(pf.revents & POLLIN)) {
			snprintf(why, whylen, "no frames after %llu (revents %#x)", (unsigned long long)got, pf.revents);
			ok = 0;
			break;
		}
		while (s.rx->head != s.rx->tail) {
			struct netmap_slot *sl = &s.rx->slot[s.rx->head];
			uint16_t len = nmt_frame_len(7, got);
			if (sl->len != len || nmt_frame_check(nmd_buf(s.rx, sl->buf_idx), got, len)) {
				snprintf(why, whylen, "frame %llu corrupt", (unsigned long long)got);
				ok = 0;
				break;
			}
			got++;
			s.rx->head = s.rx->cur = nmd_next(s.rx, s.rx->head);
		}
		ioctl(s.fd, NIOCRXSYNC, NULL);
	}
	nmt_port_close(&s);
	nmt_port_close(&m);
	return ok;
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_killer");
	int runs = argc > 1 ? atoi(argv[1]) : 100;
	uint32_t extra = argc > 2 ? (uint32_t)atoi(argv[2]) : 64;
	char base[32], kname[48], mname[48], sname[48];
	snprintf(base, sizeof base, "kil%d", (int)(getpid() % 100000));
	snprintf(kname, sizeof kname, "%sk{1", base);
	snprintf(mname, sizeof mname, "%s{1", base);
	snprintf(sname, sizeof sname, "%s}1", base);
	signal(SIGPIPE, SIG_IGN);
	progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (progress == MAP_FAILED)
		nmt_die("mmap: %s", strerror(errno));
	uint64_t min_recv = UINT64_MAX, total_recv = 0;

	struct netmapd_pool_stats st0, base_st, st;
	nmt_poolstat(-1, &st0);
	int kfd = nmt_open();
	int e = nmd_register(kfd, kname, NR_REG_ALL_NIC, 0, 0, 0, NULL);
	if (!CHECK_ERRNO(e, 0, "keeper registration"))
		return nmt_summary();
	nmt_poolstat(kfd, &base_st);

	static const char *victims[] = { "sender", "receiver", "both" };
	int failures = 0, survivor_ok = 0, kills = 0;
	double t_start = nmd_now(), worst_release = 0;
	uint64_t rng = 12345;
	for (int run = 0; run < runs; run++) {
		int v = run % 3;
		int ready[2], sctl[2], rctl[2];
		if (pipe(ready) || pipe(sctl) || pipe(rctl))
			nmt_die("pipe: %s", strerror(errno));
		progress[0] = progress[1] = 0;
		pid_t rp = fork();
		if (rp == 0) {
			close(kfd);
			close(ready[0]);
			close(rctl[1]);
			close(sctl[0]);
			close(sctl[1]);
			_exit(child_receiver(sname, extra, ready[1], rctl[0]));
		}
		pid_t sp = fork();
		if (sp == 0) {
			close(kfd);
			close(ready[0]);
			close(sctl[1]);
			close(rctl[0]);
			close(rctl[1]);
			_exit(child_sender(mname, extra, ready[1], sctl[0]));
		}
		close(ready[1]);
		close(sctl[0]);
		close(rctl[0]);
		char why[200] = "";
		int ok = 1, got = 0;
		char c;
		struct pollfd pr = { .fd = ready[0], .events = POLLIN };
		while (got < 2 && poll(&pr, 1, NMT_MS(5000)) == 1 && read(ready[0], &c, 1) == 1)
			got++;
		close(ready[0]);
		if (got < 2) {
			snprintf(why, sizeof why, "children not ready (%d of 2)", got);
			ok = 0;
		}
		usleep(5000 + nmt_splitmix(&rng) % 35000);
		/* The kill must come mid-traffic: a slow (sanitized, emulated)
		 * daemon may not have moved the first frame yet, so wait for it. */
		for (double end = nmd_now() + NMT_SEC(3.0); ok && progress[1] == 0 && nmd_now() < end;)
			usleep(1000);
		uint64_t recv_at_kill = progress[1];
		if (ok && recv_at_kill == 0) {
			snprintf(why, sizeof why, "no traffic before the kill (sent %llu, received 0)",
			    (unsigned long long)progress[0]);
			ok = 0;
		}
		if (recv_at_kill < min_recv)
			min_recv = recv_at_kill;
		total_recv += recv_at_kill;

		/* kill the victim(s), stop the survivor */
		int st_r = 0, st_s = 0;
		if (v == 0 || v == 2)
			kill(sp, SIGKILL);
		if (v == 1 || v == 2)
			kill(rp, SIGKILL);
		if (v == 0) {
			waitpid(sp, &st_s, 0);
			(void)!write(rctl[1], "q", 1);   /* a survivor already gone shows below */
		} else if (v == 1) {
			waitpid(rp, &st_r, 0);
			(void)!write(sctl[1], "q", 1);
		}
		close(sctl[1]);
		close(rctl[1]);
		double t_kill = nmd_now();
		int rdone = 0, sdone = 0;
		while (!(rdone && sdone) && nmd_now() - t_kill < NMT_SEC(10.0)) {
			if (!rdone && (v == 1 || waitpid(rp, &st_r, WNOHANG) == rp))
				rdone = 1;
			if (!sdone && (v == 0 || waitpid(sp, &st_s, WNOHANG) == sp))
				sdone = 1;
			if (!(rdone && sdone))
				usleep(1000);
		}
		if (!(rdone && sdone)) {
			kill(rp, SIGKILL);
			kill(sp, SIGKILL);
			waitpid(rp, &st_r, 0);
			waitpid(sp, &st_s, 0);
			if (ok)
				snprintf(why, sizeof why, "survivor did not stop within 10 s");
			ok = 0;
		}
		/* victims must have died by the signal, survivors exited 0 */
		int s_killed = WIFSIGNALED(st_s) && WTERMSIG(st_s) == SIGKILL;
		int r_killed = WIFSIGNALED(st_r) && WTERMSIG(st_r) == SIGKILL;
		int s_clean = WIFEXITED(st_s) && WEXITSTATUS(st_s) == 0;
		int r_clean = WIFEXITED(st_r) && WEXITSTATUS(st_r) == 0;
		if (ok && ((v != 1 && !s_killed) || (v != 0 && !r_killed))) {
			snprintf(why, sizeof why, "victim ended before the kill (sender status %#x, receiver %#x)", st_s, st_r);
			ok = 0;
		}
		if (ok && ((v == 1 && !s_clean) || (v == 0 && !r_clean))) {
			snprintf(why, sizeof why, "survivor failed (sender status %#x, receiver %#x)", st_s, st_r);
			ok = 0;
		}
		if (ok)
			survivor_ok += v != 2;
		kills++;

		/* pools back where they were */
		double t0 = nmd_now();
		if (!nmt_wait_stat(&base_st, &st, 5.0)) {
			if (ok)
				snprintf(why, sizeof why,
				    "pool not back after 5 s: free buffers %u (want %u) rings %u (%u) ifs %u (%u) sessions %u (%u) ports %u (%u)",
				    st.free_buffers, base_st.free_buffers, st.free_rings, base_st.free_rings, st.free_ifs,
				    base_st.free_ifs, st.sessions, base_st.sessions, st.ports, base_st.ports);
			ok = 0;
		}
		if (nmd_now() - t0 > worst_release)
			worst_release = nmd_now() - t0;

		/* the daemon still serves the same pipe, and leaves the pool as it found it */
		if (ok && !fresh_traffic(base, why, sizeof why))
			ok = 0;
		if (ok && !nmt_wait_stat(&base_st, &st, 5.0)) {
			snprintf(why, sizeof why, "pool not back after the fresh traffic: free buffers %u (want %u)",
			    st.free_buffers, base_st.free_buffers);
			ok = 0;
		}
		if (!ok) {
			failures++;
			printf("FAIL nm_killer: run %d (killed %s): %s\n", run + 1, victims[v], why);
			fflush(stdout);
			/* get back to a known state for the next run */
			nmt_wait_stat(&base_st, &st, 2.0);
			nmt_poolstat(-1, &base_st);
		} else if ((run + 1) % 25 == 0) {
			nmt_info("%d runs done, %.1f s", run + 1, nmd_now() - t_start);
		}
	}
	CHECK(failures == 0,
	    "%d SIGKILLs mid-traffic (sender, receiver, both in turn; %u extra buffers each; %llu..%llu frames "
	    "received before each kill, %llu in all): %d failed runs, %d survivors stopped cleanly, pool back to its "
	    "start after each (slowest %.3f s), fresh traffic after each (%.1f s)",
	    kills, extra, (unsigned long long)min_recv, (unsigned long long)(kills ? total_recv / kills : 0),
	    (unsigned long long)total_recv, failures, survivor_ok, worst_release, nmd_now() - t_start);
	/* churn: kill clients in the middle of register/map/unmap/close */
	int churn_fail = 0, churn_runs = runs / 2;
	uint64_t churn_rounds = 0;
	double t_churn = nmd_now();
	for (int run = 0; run < churn_runs; run++) {
		progress[1] = 0;
		pid_t c = fork();
		if (c == 0) {
			close(kfd);
			_exit(child_churn(mname, sname));
		}
		usleep(1000 + nmt_splitmix(&rng) % 20000);
		kill(c, SIGKILL);
		int cst;
		waitpid(c, &cst, 0);
		churn_rounds += progress[1];
		char why[200] = "";
		if (!(WIFSIGNALED(cst) && WTERMSIG(cst) == SIGKILL))
			snprintf(why, sizeof why, "churn child ended by itself (status %#x)", cst);
		else if (!nmt_wait_stat(&base_st, &st, 5.0))
			snprintf(why, sizeof why,
			    "pool not back after 5 s: free buffers %u (want %u) rings %u (%u) ifs %u (%u) sessions %u (%u) ports %u (%u)",
			    st.free_buffers, base_st.free_buffers, st.free_rings, base_st.free_rings, st.free_ifs,
			    base_st.free_ifs, st.sessions, base_st.sessions, st.ports, base_st.ports);
		else if (!fresh_traffic(base, why, sizeof why))
			;
		else if (!nmt_wait_stat(&base_st, &st, 5.0))
			snprintf(why, sizeof why, "pool not back after the fresh traffic");
		if (why[0]) {
			churn_fail++;
			printf("FAIL nm_killer: churn run %d: %s\n", run + 1, why);
			nmt_wait_stat(&base_st, &st, 2.0);
			nmt_poolstat(-1, &base_st);
		}
	}
	CHECK(churn_fail == 0,
	    "%d SIGKILLs during register/mmap/close churn (%llu full rounds completed in all): %d failed runs, pool back "
	    "and fresh traffic after each (%.1f s)",
	    churn_runs, (unsigned long long)churn_rounds, churn_fail, nmd_now() - t_churn);

	close(kfd);
	int back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back, "after the keeper: free buffers %u (want %u), rings %u (%u), ifs %u (%u)", st.free_buffers,
	    st0.free_buffers, st.free_rings, st0.free_rings, st.free_ifs, st0.free_ifs);
	return nmt_summary();
}
