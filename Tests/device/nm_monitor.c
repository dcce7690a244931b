/*
 * nm_monitor.c: monitors through the real device (spec §13, issue #16).
 *
 *   nm_monitor [-d DEVICE] copy   FRAMES   copy monitors: /t on the sending
 *                                          end, two /r on the receiving end
 *   nm_monitor [-d DEVICE] zcopy  FRAMES   a /z monitor on the sending end
 *   nm_monitor [-d DEVICE] churn  FRAMES   monitors of every kind come, go
 *                                          and are SIGKILLed mid-transfer
 *   nm_monitor [-d DEVICE] errors          netmap's errnos and rules
 *   nm_monitor [-d DEVICE] copy FRAMES vale   the copy case on two ports of a
 *                                          VALE switch (valePID:s sends,
 *                                          valePID:r receives) instead of a
 *                                          pipe
 *
 * copy / zcopy: a receiver process (slave end x}1), a sender (master x{1)
 * and monitor processes, each with its own descriptor. Frame i has the
 * length and bytes of nm_pipe_traffic's frames. Every monitor checks that
 * it sees every frame, byte-exact and in order, with NS_TXMON exactly on
 * the frames it saw on a TX ring; the receiver checks the same. A monitor
 * ring that fills drops for the monitor (netmap's rule, tested by the Core
 * suite), so the sender stays at most WINDOW frames ahead of the slowest
 * monitor: the test then demands that nothing is lost. The pool is checked
 * whole at the end (free buffers, rings, ifs, sessions, ports).
 *
 * churn: the same transfer without pacing, while monitors of random kinds
 * (/r, /t, /rt, /z) attach, read for a while and leave by close or SIGKILL.
 * The receiver must get every frame; each monitor must see frames in order
 * (it may drop when behind) and byte-exact; the pool is whole afterwards.
 */
#include "nm_common.h"

#include <sched.h>
#include <stdatomic.h>

#define WINDOW 256
#define MAXMON 4

struct shared {
	_Atomic uint64_t seen[MAXMON];   /* frames each monitor has checked */
	_Atomic int ready;               /* processes registered */
	_Atomic int stop;                /* churn: monitors leave */
	_Atomic uint64_t churn_frames;   /* churn: frames monitors saw */
};
static struct shared *sh;
static uint64_t frames;
static const uint64_t seed = 77;
static char pname[48];
/* The sending and receiving ends: pname + these (a pipe's, or VALE ports'). */
static const char *SEND = "{1", *RECV = "}1";
static int nmons;   /* strict monitors the ends wait for before they close */

static int ring_wait(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r <= 0 ? r : p.revents;
}

static int open_port(struct nmt_port *p, const char *suffix, uint64_t flags)
{
	char name[64];
	snprintf(name, sizeof name, "%s%s", pname, suffix);
	return nmt_port_open(p, name, flags, 0);
}

/* ---- the pipe's two ends ---- */

static uint64_t slowest(int monitors);

static void receiver(void)
{
	struct nmt_port p;
	int e = open_port(&p, RECV, 0);
	if (e)
		nmt_die("receiver: REGISTER: %s", nmt_errname(e));
	atomic_fetch_add(&sh->ready, 1);
	struct netmap_ring *rx = p.rx;
	uint64_t seq = 0;
	while (seq < frames) {
		int r = ring_wait(p.fd, POLLIN, NMT_MS(10000));
		if (r <= 0 || (r & POLLERR))
			nmt_die("receiver: poll %d after %llu frames", r, (unsigned long long)seq);
		for (uint32_t i = rx->head; i != rx->tail; i = nmd_next(rx, i), seq++) {
			struct netmap_slot *s = &rx->slot[i];
			uint16_t len = nmt_frame_len(seed, seq);
			if (s->len != len || nmt_frame_check(nmd_buf(rx, s->buf_idx), seq, len))
				nmt_die("receiver: frame %llu wrong (len %u want %u)", (unsigned long long)seq, s->len, len);
		}
		rx->head = rx->cur = rx->tail;
	}
	nmt_ioctl(p.fd, NIOCRXSYNC, NULL);
	/* Stay in netmap mode until the monitors have everything (a monitor of
	 * a port that left netmap mode is cut off, as in netmap). */
	double until = nmd_now() + NMT_SEC(20);
	while (nmons && slowest(nmons) < frames && nmd_now() < until)
		usleep(1000);
	nmt_port_close(&p);
	exit(0);
}

static uint64_t slowest(int monitors)
{
	uint64_t m = UINT64_MAX;
	for (int i = 0; i < monitors; i++) {
		uint64_t v = atomic_load(&sh->seen[i]);
		if (v < m)
			m = v;
	}
	return m;
}

/* Sends every frame; paced by the monitors if `monitors` > 0. Waits for
 * the receiver to release everything (the last reclaim feeds a /z monitor). */
static void sender(int monitors, int others)
{
	struct nmt_port p;
	int e = open_port(&p, SEND, 0);
	if (e)
		nmt_die("sender: REGISTER: %s", nmt_errname(e));
	atomic_fetch_add(&sh->ready, 1);
	double end = nmd_now() + NMT_SEC(20);
	while (atomic_load(&sh->ready) < 2 + others)
		if (nmd_now() > end)
			nmt_die("sender: the monitors did not register");
		else
			usleep(1000);
	struct netmap_ring *tx = p.tx;
	uint64_t seq = 0, rng = 5;
	while (seq < frames) {
		if (monitors) {
			double until = nmd_now() + NMT_SEC(10);
			while (seq - slowest(monitors) > WINDOW) {
				if (nmt_ioctl(p.fd, NIOCTXSYNC, NULL))
					nmt_die("sender: NIOCTXSYNC: %s", strerror(errno));
				if (nmd_now() > until)
					nmt_die("sender: monitors stuck at %llu of %llu", (unsigned long long)slowest(monitors),
					    (unsigned long long)seq);
				usleep(50);
			}
		}
		if (tx->cur == tx->tail) {
			int r = ring_wait(p.fd, POLLOUT, NMT_MS(10000));
			if (r <= 0 || (r & POLLERR))
				nmt_die("sender: poll %d at frame %llu", r, (unsigned long long)seq);
			continue;
		}
		uint32_t want = 1 + (uint32_t)(nmt_splitmix(&rng) % 256), i = tx->head;
		for (uint32_t k = 0; k < want && i != tx->tail && seq < frames; k++, seq++, i = nmd_next(tx, i)) {
			struct netmap_slot *s = &tx->slot[i];
			s->len = nmt_frame_len(seed, seq);
			s->flags = 0;
			nmt_frame_fill(nmd_buf(tx, s->buf_idx), seq, s->len);
		}
		tx->head = tx->cur = i;
		if (nmt_ioctl(p.fd, NIOCTXSYNC, NULL))
			nmt_die("sender: NIOCTXSYNC: %s", strerror(errno));
	}
	double until = nmd_now() + NMT_SEC(10);
	while (nmd_next(tx, tx->tail) != tx->head) {
		if (nmt_ioctl(p.fd, NIOCTXSYNC, NULL))
			nmt_die("sender: NIOCTXSYNC: %s", strerror(errno));
		if (nmd_now() > until)
			nmt_die("sender: the receiver did not release the last slots");
		usleep(100);
	}
	/* Keep the port open until the monitors have everything (a monitor of a
	 * port that left netmap mode is cut off, as in netmap). */
	until = nmd_now() + NMT_SEC(20);
	while (monitors && slowest(monitors) < frames) {
		if (nmd_now() > until)
			nmt_die("sender: monitors ended at %llu of %llu", (unsigned long long)slowest(monitors),
			    (unsigned long long)frames);
		usleep(1000);
	}
	nmt_port_close(&p);
	exit(0);
}

/* ---- monitors ---- */

/* A monitor of the end `suffix` with `flags`. strict: every frame must come
 * (slot `id` of the shared counters); else frames in order, gaps allowed,
 * until sh->stop. txmon: 1 all NS_TXMON, 0 none, -1 either. */
static void monitor(int id, const char *suffix, uint64_t flags, int txmon, int strict)
{
	struct nmt_port p;
	int e = open_port(&p, suffix, flags);
	if (e == EINVAL && !strict)
		exit(3);   /* churn: the end left netmap mode as the transfer ended */
	if (e)
		nmt_die("monitor %s%s flags %#llx: REGISTER: %s", pname, suffix, (unsigned long long)flags, nmt_errname(e));
	atomic_fetch_add(&sh->ready, 1);
	struct netmap_ring *rx = p.rx;
	uint64_t seq = 0, got = 0;
	int64_t last = -1;
	while (strict ? seq < frames : !atomic_load(&sh->stop)) {
		int r = ring_wait(p.fd, POLLIN, strict ? NMT_MS(10000) : 50);
		if (r < 0 || (strict && (r == 0 || (r & POLLERR))))
			nmt_die("monitor %d: poll %d (%s) after %llu frames", id, r, r & POLLERR ? "POLLERR" : "timeout",
			    (unsigned long long)seq);
		if (r & POLLERR)
			break;   /* churn: the pipe's end left netmap mode */
		for (uint32_t i = rx->head; i != rx->tail; i = nmd_next(rx, i)) {
			struct netmap_slot *s = &rx->slot[i];
			const char *b = nmd_buf(rx, s->buf_idx);
			uint64_t n;
			memcpy(&n, b, 8);
			if (!strict)
				seq = n;
			uint16_t len = nmt_frame_len(seed, seq);
			if (seq >= frames || s->len != len || nmt_frame_check(b, seq, len))
				nmt_die("monitor %d (%s): frame %llu wrong (len %u want %u, it says %llu)", id, suffix,
				    (unsigned long long)seq, s->len, len, (unsigned long long)n);
			if (!strict && (int64_t)seq <= last)
				nmt_die("monitor %d (%s): frame %llu after %lld: out of order", id, suffix,
				    (unsigned long long)seq, (long long)last);
			int tm = !!(s->flags & NS_TXMON);
			if (txmon >= 0 && tm != txmon)
				nmt_die("monitor %d: frame %llu NS_TXMON %d, want %d", id, (unsigned long long)seq, tm, txmon);
			last = (int64_t)seq;
			seq++;
			got++;
		}
		rx->head = rx->cur = rx->tail;
		if (strict)
			atomic_store(&sh->seen[id], seq);
	}
	nmt_ioctl(p.fd, NIOCRXSYNC, NULL);
	atomic_fetch_add(&sh->churn_frames, got);
	nmt_port_close(&p);
	exit(0);
}

/* ---- running it ---- */

static pid_t spawn_mon(int id, const char *suffix, uint64_t flags, int txmon, int strict)
{
	pid_t pid = fork();
	if (pid == 0)
		monitor(id, suffix, flags, txmon, strict);
	return pid;
}

static int reap(pid_t pid, const char *what)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return CHECK(0, "%s: waitpid: %s", what, strerror(errno));
	return CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s exits 0 (status %#x)", what, st);
}

static void transfer(int kind)
{
	struct netmapd_pool_stats st0, st;
	CHECK(nmt_poolstat(-1, &st0) == 0, "pool statistics");
	memset(sh, 0, sizeof(*sh));
	nmons = kind == 1 ? 3 : 1;
	pid_t rx = fork();
	if (rx == 0)
		receiver();
	pid_t mons[MAXMON];
	int nmon = 0;
	pid_t tx = fork();
	if (tx == 0)
		sender(nmons, nmons);
	/* Monitors need both ends in netmap mode. */
	double end = nmd_now() + NMT_SEC(20);
	while (atomic_load(&sh->ready) < 2 && nmd_now() < end)
		usleep(1000);
	if (kind == 1) {
		mons[nmon++] = spawn_mon(0, SEND, NR_MONITOR_TX, 1, 1);
		mons[nmon++] = spawn_mon(1, RECV, NR_MONITOR_RX, 0, 1);
		mons[nmon++] = spawn_mon(2, RECV, NR_MONITOR_RX, 0, 1);
	} else {
		mons[nmon++] = spawn_mon(0, "{1", NR_ZCOPY_MON, 1, 1);
	}
	double t0 = nmd_now();
	reap(rx, "receiver");
	reap(tx, "sender");
	for (int i = 0; i < nmon; i++)
		reap(mons[i], kind == 1 ? (i == 0 ? "/t monitor of the sending end" : "/r monitor of the receiving end")
		                        : "/z monitor of the sending end");
	for (int i = 0; i < nmon; i++)
		CHECK_EQ(atomic_load(&sh->seen[i]), frames, "frames the monitor saw, byte-exact and in order");
	double dt = nmd_now() - t0;
	nmt_info("%s: %llu frames through the ports and %d monitor(s) in %.2f s", kind == 1 ? "copy" : "zcopy",
	    (unsigned long long)frames, nmon, dt);
	int whole = nmt_wait_stat(&st0, &st, 5);
	CHECK(whole, "the pool is whole afterwards (free buffers %u want %u, sessions %u)", st.free_buffers,
	    st0.free_buffers, st.sessions);
}

static void churn(void)
{
	struct netmapd_pool_stats st0, st;
	CHECK(nmt_poolstat(-1, &st0) == 0, "pool statistics");
	memset(sh, 0, sizeof(*sh));
	nmons = 0;
	pid_t rx = fork();
	if (rx == 0)
		receiver();
	pid_t tx = fork();
	if (tx == 0)
		sender(0, 0);
	double end = nmd_now() + NMT_SEC(20);
	while (atomic_load(&sh->ready) < 2 && nmd_now() < end)
		usleep(1000);
	static const struct { const char *suffix; uint64_t flags; int txmon; } kinds[] = {
		{ "}1", NR_MONITOR_RX, 0 }, { "{1", NR_MONITOR_TX, 1 }, { "{1", NR_MONITOR_TX | NR_MONITOR_RX, 1 },
		{ "{1", NR_ZCOPY_MON, 1 }, { "}1", NR_ZCOPY_MON, 0 },
	};
	uint64_t rng = 9;
	int spawned = 0, killed = 0, closed = 0, bad = 0, late = 0;
	int rx_done = 0, tx_done = 0;
	while (!(rx_done && tx_done)) {
		int k = (int)(nmt_splitmix(&rng) % 5), kill_it = (int)(nmt_splitmix(&rng) % 2);
		atomic_store(&sh->stop, 0);
		pid_t m = spawn_mon(0, kinds[k].suffix, kinds[k].flags, kinds[k].txmon, 0);
		spawned++;
		usleep(20000 + (useconds_t)(nmt_splitmix(&rng) % 30000));
		int st;
		if (kill_it) {
			kill(m, SIGKILL);
			waitpid(m, &st, 0);
			killed++;
		} else {
			atomic_store(&sh->stop, 1);
			waitpid(m, &st, 0);
			if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
				late++;
			else if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
				bad++;
			closed++;
		}
		if (!rx_done && waitpid(rx, &st, WNOHANG) == rx) {
			rx_done = 1;
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "receiver got every frame byte-exact and in order while monitors came and went");
		}
		if (!tx_done && waitpid(tx, &st, WNOHANG) == tx) {
			tx_done = 1;
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender sent everything");
		}
		if (nmd_now() > end + NMT_SEC(300)) {
			kill(rx, SIGKILL);
			kill(tx, SIGKILL);
			CHECK(0, "transfer finished in time");
			break;
		}
	}
	CHECK(bad == 0, "every monitor that closed saw its frames in order and byte-exact (%d of %d bad)", bad, closed);
	CHECK(late <= 1, "only a monitor that came as the transfer ended found its end gone (EINVAL): %d", late);
	CHECK(spawned >= 6 && killed > 0 && closed > 0, "monitors came and went mid-transfer (%d: %d closed, %d SIGKILLed)",
	    spawned, closed, killed);
	CHECK(atomic_load(&sh->churn_frames) > 0, "the monitors saw frames (%llu)",
	    (unsigned long long)atomic_load(&sh->churn_frames));
	int whole = nmt_wait_stat(&st0, &st, 5);
	CHECK(whole, "the pool is whole afterwards (free buffers %u want %u, sessions %u)", st.free_buffers,
	    st0.free_buffers, st.sessions);
}

static void errors(void)
{
	struct nmt_port a, b, m;
	struct nmreq_register r;
	int fd = nmt_open();
	/* Not in netmap mode: neither end exists / only the other end is registered. */
	CHECK_ERRNO(nmd_register(fd, "mq{1", NR_REG_ALL_NIC, 0, NR_MONITOR_TX, 0, &r), EINVAL,
	    "monitor of a pipe nobody registered");
	CHECK(open_port(&a, "{1", 0) == 0, "register %s{1", pname);
	char slave[64];
	snprintf(slave, sizeof slave, "%s}1", pname);
	CHECK_ERRNO(nmd_register(fd, slave, NR_REG_ALL_NIC, 0, NR_MONITOR_RX, 0, &r), EINVAL,
	    "monitor of the pipe end nobody registered");
	CHECK_ERRNO(nmd_register(fd, "nmdnosuchif0", NR_REG_ALL_NIC, 0, NR_MONITOR_RX, 0, &r), ENXIO,
	    "monitor of an interface that does not exist");
	char master[64];
	snprintf(master, sizeof master, "%s{1", pname);
	CHECK_ERRNO(nmd_register(fd, master, NR_REG_ONE_NIC, 1, NR_MONITOR_RX, 0, &r), EINVAL,
	    "monitor of ring 1 of a one-ring pipe");
	CHECK_ERRNO(nmd_register(fd, master, NR_REG_SW, 0, NR_MONITOR_RX, 0, &r), EINVAL,
	    "monitor of the host rings of a pipe");
	CHECK_ERRNO(nmd_register(fd, master, 42, 0, NR_MONITOR_TX, 0, &r), EINVAL, "monitor with an unknown mode");
	CHECK(open_port(&b, "}1", 0) == 0, "register %s}1", pname);

	/* A good monitor: geometry, name, flags echoed. */
	CHECK(nmt_port_open(&m, master, NR_ZCOPY_MON, 0) == 0, "register a /z monitor of %s", master);
	CHECK_EQ(m.reg.nr_flags, NR_ZCOPY_MON | NR_MONITOR_TX | NR_MONITOR_RX, "a /z monitor's flags come back with /rt");
	CHECK(m.reg.nr_tx_rings == 1 && m.reg.nr_rx_rings == 1 && m.reg.nr_rx_slots == a.reg.nr_tx_slots,
	    "monitor geometry: 1 TX ring, max(parent TX, RX) RX rings, the parent's slots (%u/%u, %u)", m.reg.nr_tx_rings,
	    m.reg.nr_rx_rings, m.reg.nr_rx_slots);
	char want[80];
	snprintf(want, sizeof want, "%s/zrt#0", master);
	want[15] = 0;
	CHECK(strncmp(m.nifp->ni_name, want, 15) == 0, "ni_name %.15s (want %s)", m.nifp->ni_name, want);
	/* A monitor cannot transmit: poll with a pending TX slot gives POLLERR; the ioctl ignores it. */
	m.tx->head = m.tx->cur = nmd_next(m.tx, m.tx->head);
	CHECK(ring_wait(m.fd, POLLOUT, 0) & POLLERR, "poll pushing a monitor's TX ring: POLLERR");
	CHECK_ERRNO(nmt_ioctl(m.fd, NIOCTXSYNC, NULL), 0, "NIOCTXSYNC on a monitor");
	nmt_port_close(&m);

	/* Legacy NIOCREGIF: the monitor flags ride in nr_flags' upper bits. */
	int lfd = nmt_open();
	struct nmreq q;
	memset(&q, 0, sizeof q);
	if (strlen(master) >= sizeof q.nr_name)
		nmt_die("pipe name %s too long", master);
	memcpy(q.nr_name, master, strlen(master) + 1);
	q.nr_version = NETMAP_API;
	q.nr_flags = NR_REG_ALL_NIC | NR_MONITOR_RX;
	CHECK_ERRNO(nmt_ioctl(lfd, NIOCREGIF, &q), 0, "NIOCREGIF with NR_MONITOR_RX");
	CHECK(q.nr_tx_rings == 1 && q.nr_rx_rings == 1, "legacy monitor geometry 1/1 (%u/%u)", q.nr_tx_rings, q.nr_rx_rings);
	struct nmreq q2 = q;
	q2.nr_flags = NR_REG_ONE_NIC | NR_MONITOR_RX;
	q2.nr_ringid = 3;
	int lfd2 = nmt_open();
	CHECK_ERRNO(nmt_ioctl(lfd2, NIOCREGIF, &q2), EINVAL, "NIOCREGIF monitor of ring 3 of a one-ring pipe");
	close(lfd2);

	/* The monitored end leaves netmap mode: the monitor is cut off (POLLERR),
	 * and a new monitor of it is refused. */
	void *lmem = nmt_mmap(lfd, q.nr_memsize);
	nmt_port_close(&a);
	double end = nmd_now() + NMT_SEC(2);
	int r2 = 0;
	while (!((r2 = ring_wait(lfd, POLLIN, 100)) & POLLERR) && nmd_now() < end)
		;
	CHECK(r2 & POLLERR, "monitor of an end that left netmap mode: POLLERR (revents %#x)", r2);
	CHECK_ERRNO(nmd_register(fd, master, NR_REG_ALL_NIC, 0, NR_MONITOR_TX, 0, &r), EINVAL,
	    "monitor of an end that left netmap mode");
	munmap(lmem, q.nr_memsize);
	close(lfd);
	nmt_port_close(&b);
	close(fd);
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_monitor");
	if (argc < 2) {
		fprintf(stderr, "usage: nm_monitor [-d DEVICE] copy|zcopy|churn FRAMES | errors\n");
		return 2;
	}
	frames = argc > 2 ? strtoull(argv[2], NULL, 0) : 100000;
	snprintf(pname, sizeof pname, "mon%d", (int)getpid());
	if (argc > 3 && strcmp(argv[3], "vale") == 0) {
		if (strcmp(argv[1], "copy") != 0)
			nmt_die("vale: only the copy case (a VALE receiver that falls behind drops)");
		snprintf(pname, sizeof pname, "vale%d", (int)getpid() % 100000);
		SEND = ":s";
		RECV = ":r";
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		nmt_die("mmap: %s", strerror(errno));
	if (strcmp(argv[1], "copy") == 0)
		transfer(1);
	else if (strcmp(argv[1], "zcopy") == 0)
		transfer(2);
	else if (strcmp(argv[1], "churn") == 0)
		churn();
	else if (strcmp(argv[1], "errors") == 0)
		errors();
	else
		nmt_die("unknown test %s", argv[1]);
	return nmt_summary();
}
