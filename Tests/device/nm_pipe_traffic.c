/*
 * nm_pipe_traffic.c: two processes exchange N frames through a netmap pipe,
 * byte-exact and in order (spec §5, §6, §12).
 *
 *   nm_pipe_traffic [-d DEVICE] [-n FRAMES] [-m poll|select|epoll|ioctl]
 *                   [-b BATCH] [-s SEED] [-t TIMEOUT_S] [-p PIPE_NAME]
 *                   [-T DEADLINE_S] [-S SLOTS]
 *
 * The receiver forks first, opens the device and registers the slave end
 * (NAME}1); the sender then registers the master end (NAME{1). Frame i has
 * a length in 60..1514 from a PRNG seeded with SEED and bytes derived from
 * (i, length), so the receiver checks every byte and the order. The sender
 * fills batches of random size 1..512 (or BATCH), as pkt-gen does: wait for
 * POLLOUT (which also pushes what is pending), fill, advance head; at the end
 * it waits until every slot has been reclaimed, i.e. consumed by the peer.
 *
 * Wait modes: poll/select/epoll block (the TX push and RX sync happen inside
 * the wait, §6); ioctl spins on NIOCTXSYNC/NIOCRXSYNC. A wait that lasts
 * TIMEOUT_S (default 5) seconds is a failure.
 *
 * Wake-up probes: the sender pauses 300 ms before its first frame and again
 * half-way, after pushing what it has. In the blocking modes the receiver
 * must sleep through each pause and be woken by the peer's frames (a wait
 * of >= 150 ms that ends with POLLIN, well before the timeout), at least
 * twice. The pauses are left out of the rate.
 *
 * SLOTS asks for rings of that many slots (both ends ask the same).
 *
 * Exit 0 only if all frames arrived intact and in order and both sides
 * finished.
 */
#include "nm_common.h"

#include <getopt.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>

enum mode { M_POLL, M_SELECT, M_EPOLL, M_IOCTL };
static const char *mode_names[] = { "poll", "select", "epoll", "ioctl" };

static struct {
	uint64_t frames;
	enum mode mode;
	uint32_t batch;   /* 0: random 1..512 */
	uint64_t seed;
	int timeout_ms;
	char name[48];
	int deadline_s;
	uint32_t slots;   /* 0: the daemon's default */
} cfg = { 1000000, M_POLL, 0, 1, 5000, "", 0, 0 };

#define PAUSE_US 300000

/* ---- waiting ---- */

struct waiter {
	int fd;
	int epfd;
	short events;
};

static void waiter_init(struct waiter *w, int fd, short events)
{
	w->fd = fd;
	w->events = events;
	w->epfd = -1;
	if (cfg.mode == M_EPOLL) {
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0)
			nmt_die("epoll_create1: %s", strerror(errno));
		struct epoll_event ev = { .events = (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0),
			.data.fd = fd };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			nmt_die("epoll_ctl ADD: %s", strerror(errno));
	}
}

/* Blocks (poll/select/epoll) until the device reports w->events; returns
 * revents, 0 on timeout, -1 on a system call error. ioctl mode is handled
 * by the callers. */
static int wait_dev(struct waiter *w, int timeout_ms)
{
	switch (cfg.mode) {
	case M_POLL: {
		struct pollfd p = { .fd = w->fd, .events = w->events };
		int r;
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		return r < 0 ? -1 : r == 0 ? 0 : p.revents;
	}
	case M_SELECT: {
		fd_set rd, wr, ex;
		FD_ZERO(&rd);
		FD_ZERO(&wr);
		FD_ZERO(&ex);
		if (w->events & POLLIN)
			FD_SET(w->fd, &rd);
		if (w->events & POLLOUT)
			FD_SET(w->fd, &wr);
		FD_SET(w->fd, &ex);
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		int r;
		do
			r = select(w->fd + 1, &rd, &wr, &ex, &tv);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return r < 0 ? -1 : 0;
		return (FD_ISSET(w->fd, &rd) ? POLLIN : 0) | (FD_ISSET(w->fd, &wr) ? POLLOUT : 0) |
		    (FD_ISSET(w->fd, &ex) ? POLLPRI : 0);
	}
	case M_EPOLL: {
		struct epoll_event ev;
		int r;
		do
			r = epoll_wait(w->epfd, &ev, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return r < 0 ? -1 : 0;
		return (ev.events & EPOLLIN ? POLLIN : 0) | (ev.events & EPOLLOUT ? POLLOUT : 0) |
		    (ev.events & EPOLLERR ? POLLERR : 0);
	}
	default:
		return -1;
	}
}

/* Reports a failure of one side and exits. */
__attribute__((format(printf, 2, 3), noreturn))
static void side_fail(const char *side, const char *fmt, ...)
{
	va_list ap;
	printf("FAIL %s: %s (%s): ", nmt_prog, side, mode_names[cfg.mode]);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	_exit(1);
}

static uint32_t next_batch(uint64_t *rng)
{
	return cfg.batch ? cfg.batch : 1 + (uint32_t)(nmt_splitmix(rng) % 512);
}

/* Registers one end (with the slot-count hint, if any) and maps it. */
static int port_open(struct nmt_port *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->fd = nmt_open();
	struct nmreq_header h;
	p->reg.nr_mode = NR_REG_ALL_NIC;
	p->reg.nr_tx_slots = p->reg.nr_rx_slots = cfg.slots;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, name, &p->reg);
	int e = nmt_ioctl(p->fd, NIOCCTRL, &h);
	if (e)
		return e;
	if (cfg.slots && (p->reg.nr_tx_slots != cfg.slots || p->reg.nr_rx_slots != cfg.slots))
		return EPROTO;
	p->memsize = p->reg.nr_memsize;
	p->mem = nmt_mmap(p->fd, p->memsize);
	p->nifp = nmd_if(p->mem, p->reg.nr_offset);
	p->tx = nmd_txring(p->nifp, 0);
	p->rx = nmd_rxring(p->nifp, 0);
	return 0;
}

/* ---- sender: master end ---- */

/* Hands pending TX slots to the daemon without waiting: a zero-timeout
 * poll (which pushes, §6) in poll mode, NIOCTXSYNC otherwise. */
static void push(struct waiter *w)
{
	if (cfg.mode != M_POLL) {
		if (nmt_ioctl(w->fd, NIOCTXSYNC, NULL))
			side_fail("sender", "NIOCTXSYNC: %s", strerror(errno));
	} else {
		int r = wait_dev(w, 0);
		if (r < 0 || (r & POLLERR))
			side_fail("sender", "poll while pushing: %s", r < 0 ? strerror(errno) : "POLLERR");
	}
}

/* Waits for TX room: until cur != tail after a sync. */
static void wait_room(struct waiter *w, struct netmap_ring *tx, uint64_t seq)
{
	if (cfg.mode == M_IOCTL) {
		double end = nmd_now() + cfg.timeout_ms / 1000.0;
		for (;;) {
			if (nmt_ioctl(w->fd, NIOCTXSYNC, NULL))
				side_fail("sender", "NIOCTXSYNC: %s", strerror(errno));
			if (tx->cur != tx->tail)
				return;
			if (nmd_now() > end)
				side_fail("sender", "no TX room for %d ms at frame %llu", cfg.timeout_ms,
				    (unsigned long long)seq);
			sched_yield();
		}
	}
	int r = wait_dev(w, cfg.timeout_ms);
	if (r < 0)
		side_fail("sender", "wait: %s", strerror(errno));
	if (r == 0)
		side_fail("sender", "no TX room for %d ms at frame %llu (tail %u head %u)", cfg.timeout_ms,
		    (unsigned long long)seq, tx->tail, tx->head);
	if (r & POLLERR)
		side_fail("sender", "POLLERR at frame %llu", (unsigned long long)seq);
}

static int sender(void)
{
	struct nmt_port p;
	char name[64];
	snprintf(name, sizeof name, "%s{1", cfg.name);
	int e = port_open(&p, name);
	if (e)
		side_fail("sender", "REGISTER %s: %s", name, nmt_errname(e));
	struct netmap_ring *tx = p.tx;
	struct waiter w;
	waiter_init(&w, p.fd, POLLOUT);
	uint64_t rng = cfg.seed ^ 0xabcdef, seq = 0, half = cfg.frames / 2;
	int paused_half = cfg.frames < 2;

	usleep(PAUSE_US);   /* wake-up probe 1: the receiver sleeps meanwhile */
	while (seq < cfg.frames) {
		if (!paused_half && seq >= half) {
			push(&w);
			usleep(PAUSE_US);   /* wake-up probe 2 */
			paused_half = 1;
		}
		wait_room(&w, tx, seq);
		uint32_t room = nmd_space(tx), want = next_batch(&rng);
		uint32_t i = tx->head;
		for (uint32_t k = 0; k < want && k < room && seq < cfg.frames; k++, seq++) {
			if (!paused_half && seq >= half)
				break;
			struct netmap_slot *s = &tx->slot[i];
			s->len = nmt_frame_len(cfg.seed, seq);
			s->flags = 0;
			nmt_frame_fill(nmd_buf(tx, s->buf_idx), seq, s->len);
			i = nmd_next(tx, i);
		}
		tx->head = tx->cur = i;
	}
	/* Wait until the peer has consumed everything: all slots reclaimed. */
	double end = nmd_now() + cfg.timeout_ms / 1000.0;
	push(&w);
	while (nmd_next(tx, tx->tail) != tx->head) {
		if (cfg.mode == M_IOCTL) {
			if (nmt_ioctl(p.fd, NIOCTXSYNC, NULL))
				side_fail("sender", "NIOCTXSYNC: %s", strerror(errno));
			sched_yield();
		} else {
			tx->cur = tx->tail;   /* wake me when tail moves on */
			int r = wait_dev(&w, cfg.timeout_ms);
			if (r < 0 || (r & POLLERR))
				side_fail("sender", "final wait: %s", r < 0 ? strerror(errno) : "POLLERR");
		}
		if (nmd_now() > end)
			side_fail("sender", "peer did not release the last slots within %d ms (tail %u head %u)",
			    cfg.timeout_ms, tx->tail, tx->head);
	}
	tx->cur = tx->head;
	nmt_port_close(&p);
	return 0;
}

/* ---- receiver: slave end ---- */

static int receiver(int ready_fd)
{
	struct nmt_port p;
	char name[64];
	snprintf(name, sizeof name, "%s}1", cfg.name);
	int e = port_open(&p, name);
	if (e)
		side_fail("receiver", "REGISTER %s: %s", name, nmt_errname(e));
	struct netmap_ring *rx = p.rx;
	struct waiter w;
	waiter_init(&w, p.fd, POLLIN);
	if (write(ready_fd, "R", 1) != 1)
		side_fail("receiver", "ready pipe: %s", strerror(errno));
	close(ready_fd);

	uint64_t seq = 0, bytes = 0, waits = 0, long_waits = 0;
	double t_first = 0, paused = 0, longest = 0;
	while (seq < cfg.frames) {
		if (cfg.mode == M_IOCTL) {
			double t0 = nmd_now(), end = t0 + cfg.timeout_ms / 1000.0;
			for (;;) {
				if (nmt_ioctl(p.fd, NIOCRXSYNC, NULL))
					side_fail("receiver", "NIOCRXSYNC: %s", strerror(errno));
				if (rx->cur != rx->tail)
					break;
				if (nmd_now() > end)
					side_fail("receiver", "no frame for %d ms after %llu frames", cfg.timeout_ms,
					    (unsigned long long)seq);
				sched_yield();
			}
			double dt = nmd_now() - t0;
			if (dt >= 0.15 && seq > 0)
				paused += dt;   /* the sender's pause, spun through */
		} else {
			double t0 = nmd_now();
			int r = wait_dev(&w, cfg.timeout_ms);
			double dt = nmd_now() - t0;
			waits++;
			if (r < 0)
				side_fail("receiver", "wait: %s", strerror(errno));
			if (r == 0)
				side_fail("receiver", "no frame for %d ms after %llu frames (timeout)", cfg.timeout_ms,
				    (unsigned long long)seq);
			if (r & POLLERR)
				side_fail("receiver", "POLLERR after %llu frames", (unsigned long long)seq);
			if (dt > longest)
				longest = dt;
			if (dt >= 0.15 && (r & POLLIN)) {
				long_waits++;
				if (seq > 0)
					paused += dt;
			}
			if (rx->cur == rx->tail)
				continue;   /* woken, nothing for us (e.g. select's except set) */
		}
		if (seq == 0)
			t_first = nmd_now();
		uint32_t i = rx->head, n = nmd_space(rx);
		for (uint32_t k = 0; k < n; k++, seq++) {
			struct netmap_slot *s = &rx->slot[i];
			if (seq >= cfg.frames)
				side_fail("receiver", "more frames than sent (%llu)", (unsigned long long)seq + 1);
			uint16_t len = nmt_frame_len(cfg.seed, seq);
			if (s->len != len) {
				uint64_t was = 0;
				if (s->buf_idx >= 2 && s->len >= 8)
					memcpy(&was, nmd_buf(rx, s->buf_idx), 8);
				side_fail("receiver", "frame %llu: len %u, want %u (its first 8 bytes say frame %llu)",
				    (unsigned long long)seq, s->len, len, (unsigned long long)was);
			}
			size_t bad = nmt_frame_check(nmd_buf(rx, s->buf_idx), seq, len);
			if (bad)
				side_fail("receiver", "frame %llu (len %u, buffer %u): byte %zu differs%s",
				    (unsigned long long)seq, len, s->buf_idx, bad - 1,
				    bad == 1 ? " (sequence number: lost, duplicated or reordered)" : "");
			bytes += len;
			i = nmd_next(rx, i);
		}
		rx->head = rx->cur = i;   /* released at the next sync */
	}
	double t_last = nmd_now();
	if (nmt_ioctl(p.fd, NIOCRXSYNC, NULL))   /* hand the last slots back */
		side_fail("receiver", "final NIOCRXSYNC: %s", strerror(errno));
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double el = t_last - t_first - paused;
	if (el <= 0)
		el = 1e-9;
	printf("INFO %s: %s: %llu frames, %llu bytes in %.3f s (excluding %.3f s of deliberate pauses): "
	       "%.3f Mpps, %.2f Gbit/s; %llu waits, %llu long, longest %.3f s, %ld voluntary context switches\n",
	    nmt_prog, mode_names[cfg.mode], (unsigned long long)seq, (unsigned long long)bytes, el, paused,
	    seq / el / 1e6, bytes * 8 / el / 1e9, (unsigned long long)waits, (unsigned long long)long_waits,
	    longest, ru.ru_nvcsw);
	printf("RESULT %s mode=%s frames=%llu bytes=%llu seconds=%.3f mpps=%.4f\n", nmt_prog, mode_names[cfg.mode],
	    (unsigned long long)seq, (unsigned long long)bytes, el, seq / el / 1e6);
	fflush(stdout);
	if (cfg.mode != M_IOCTL && cfg.frames >= 2) {
		if (long_waits < 2)
			side_fail("receiver", "slept through the sender's pauses only %llu times (want 2): not woken by the peer?",
			    (unsigned long long)long_waits);
		if (longest > NMT_SEC(2.0))
			side_fail("receiver", "a wait lasted %.3f s for a 0.3 s pause: wake-up late", longest);
	}
	nmt_port_close(&p);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: nm_pipe_traffic [-d DEVICE] [-n FRAMES] [-m poll|select|epoll|ioctl] [-b BATCH]\n"
	                "                       [-s SEED] [-t TIMEOUT_S] [-p PIPE_NAME] [-T DEADLINE_S] [-S SLOTS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_pipe_traffic");
	int c, timeout_set = 0;
	while ((c = getopt(argc, argv, "n:m:b:s:t:p:T:S:")) != -1) {
		switch (c) {
		case 'n': cfg.frames = strtoull(optarg, NULL, 0); break;
		case 'm': {
			int found = 0;
			for (int i = 0; i < 4; i++)
				if (strcmp(optarg, mode_names[i]) == 0) {
					cfg.mode = i;
					found = 1;
				}
			if (!found)
				usage();
			break;
		}
		case 'b': cfg.batch = strtoul(optarg, NULL, 0); break;
		case 's': cfg.seed = strtoull(optarg, NULL, 0); break;
		case 't': cfg.timeout_ms = atoi(optarg) * 1000; timeout_set = 1; break;
		case 'p': snprintf(cfg.name, sizeof cfg.name, "%s", optarg); break;
		case 'T': cfg.deadline_s = atoi(optarg); break;
		case 'S': cfg.slots = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!timeout_set)
		cfg.timeout_ms = NMT_MS(cfg.timeout_ms);
	if (!cfg.name[0])
		snprintf(cfg.name, sizeof cfg.name, "tr%d", (int)getpid());
	if (!cfg.deadline_s)
		cfg.deadline_s = (int)NMT_SEC(60 + (int)(cfg.frames / (cfg.mode == M_IOCTL ? 5000 : 20000)));

	int rp[2];
	if (pipe(rp))
		nmt_die("pipe: %s", strerror(errno));
	pid_t rpid = fork();
	if (rpid == 0) {
		close(rp[0]);
		_exit(receiver(rp[1]));
	}
	close(rp[1]);
	struct pollfd pr = { .fd = rp[0], .events = POLLIN };
	char ch;
	if (poll(&pr, 1, NMT_MS(10000)) != 1 || read(rp[0], &ch, 1) != 1) {
		kill(rpid, SIGKILL);
		waitpid(rpid, NULL, 0);
		nmt_die("%s: receiver did not register within 10 s", mode_names[cfg.mode]);
	}
	close(rp[0]);
	double t0 = nmd_now();
	pid_t spid = fork();
	if (spid == 0)
		_exit(sender());

	int rst = -1, sst = -1, left = 2;
	double deadline = t0 + cfg.deadline_s;
	while (left > 0) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w == rpid) {
			rst = st;
			left--;
			continue;
		}
		if (w == spid) {
			sst = st;
			left--;
			continue;
		}
		if (nmd_now() > deadline) {
			printf("FAIL %s: %s: still running after %d s: killing both sides\n", nmt_prog, mode_names[cfg.mode],
			    cfg.deadline_s);
			kill(rpid, SIGKILL);
			kill(spid, SIGKILL);
			deadline = 1e300;
		}
		usleep(10000);
	}
	double el = nmd_now() - t0;
	int ok = WIFEXITED(rst) && WEXITSTATUS(rst) == 0 && WIFEXITED(sst) && WEXITSTATUS(sst) == 0;
	char batch[32];
	if (cfg.batch)
		snprintf(batch, sizeof batch, "%u", cfg.batch);
	else
		snprintf(batch, sizeof batch, "random 1..512");
	printf("%s %s: %s: %llu frames through '%s{1' -> '%s}1', batch %s, %u-slot rings, seed %llu: receiver %s, sender %s (%.2f s wall)\n",
	    ok ? "PASS" : "FAIL", nmt_prog, mode_names[cfg.mode], (unsigned long long)cfg.frames, cfg.name, cfg.name,
	    batch, cfg.slots ? cfg.slots : 1024, (unsigned long long)cfg.seed,
	    WIFEXITED(rst) ? (WEXITSTATUS(rst) ? "failed" : "ok") : "killed",
	    WIFEXITED(sst) ? (WEXITSTATUS(sst) ? "failed" : "ok") : "killed", el);
	return ok ? 0 : 1;
}
