/*
 * nmd-bridge: a zero-copy netmap bridge between two ports (think netmap's
 * bridge program): every frame received on one port is sent out of the
 * other by swapping buffer indices between the RX slot and a TX slot, both
 * flagged NS_BUF_CHANGED; nothing is copied. Like such programs it waits in
 * poll(): POLLIN on a port with nothing to forward, POLLOUT on the other
 * port while frames wait for its TX ring, and leaves TX syncs to poll.
 *
 *   nmd-bridge -a PORT -b PORT [-d DEVICE] [-n COUNT] [-T IDLE] [-W WAIT] [-t SECONDS]
 *
 * Stops when COUNT frames went A -> B (when given), when nothing moved for
 * IDLE seconds (default 3) after the first frame, when nothing came in the
 * first WAIT seconds (default 30), or after SECONDS. Then it drains: TX
 * syncs (NIOCTXSYNC) until both ports' TX rings are empty again, up to 5 s.
 * Prints "nmd-bridge: ready" on stderr once both ports are registered and
 * one summary line: frames each way and the TX slots never completed.
 * Exit status: 0 if COUNT frames (when given) went A -> B and every TX ring
 * drained; 1 otherwise; 3 on POLLERR.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>

#include "nmd_client.h"

static void usage(void)
{
	fprintf(stderr, "usage: nmd-bridge -a PORT -b PORT [-d DEVICE] [-n COUNT] [-T IDLE] [-W WAIT] [-t SECONDS]\n");
	exit(2);
}

/* Frames ready in the port's RX rings. */
static uint32_t rx_ready(struct nmd_port *p)
{
	uint32_t n = 0;
	for (unsigned ri = p->first_rx; ri < p->last_rx; ri++) {
		struct netmap_ring *r = nmd_rxring(p->nifp, ri);
		uint32_t tail = nmd_load_acquire_u32(&r->tail);
		n += (tail + r->num_slots - r->head) % r->num_slots;
	}
	return n;
}

/* TX slots handed to the port and not completed yet: everything between
 * tail and head, except the one slot netmap always keeps free. */
static uint32_t tx_pending(struct nmd_port *p)
{
	uint32_t n = 0;
	for (unsigned ti = p->first_tx; ti < p->last_tx; ti++) {
		struct netmap_ring *r = nmd_txring(p->nifp, ti);
		uint32_t tail = nmd_load_acquire_u32(&r->tail);
		n += (r->head + r->num_slots - tail - 1) % r->num_slots;
	}
	return n;
}

/* Moves what `src` received to `dst`'s TX rings by swapping buffers;
 * returns the number of frames moved. */
static uint64_t forward(struct nmd_port *src, struct nmd_port *dst)
{
	uint64_t moved = 0;
	unsigned ti = dst->first_tx;
	for (unsigned ri = src->first_rx; ri < src->last_rx; ri++) {
		struct netmap_ring *rx = nmd_rxring(src->nifp, ri);
		uint32_t rh = rx->head, rtail = nmd_load_acquire_u32(&rx->tail);
		while (rh != rtail && ti < dst->last_tx) {
			struct netmap_ring *tx = nmd_txring(dst->nifp, ti);
			uint32_t th = tx->head, ttail = nmd_load_acquire_u32(&tx->tail);
			if (th == ttail) {  /* this TX ring is full: the next one */
				ti++;
				continue;
			}
			while (rh != rtail && th != ttail) {
				struct netmap_slot *rs = &rx->slot[rh], *ts = &tx->slot[th];
				uint32_t b = ts->buf_idx;
				ts->buf_idx = rs->buf_idx;
				ts->len = rs->len;
				ts->flags = NS_BUF_CHANGED | (rs->flags & NS_MOREFRAG);
				rs->buf_idx = b;
				rs->flags |= NS_BUF_CHANGED;
				rh = nmd_next(rx, rh);
				th = nmd_next(tx, th);
				moved++;
			}
			nmd_store_release_u32(&tx->cur, th);
			nmd_store_release_u32(&tx->head, th);
		}
		nmd_store_release_u32(&rx->cur, rh);
		nmd_store_release_u32(&rx->head, rh);
	}
	return moved;
}

int main(int argc, char **argv)
{
	const char *dev = getenv("NETMAP_DEVICE") ? getenv("NETMAP_DEVICE") : "/dev/netmap";
	const char *na = NULL, *nb = NULL;
	uint64_t count = 0;
	double idle = 3, first_wait = 30, limit = 0;
	int c;
	while ((c = getopt(argc, argv, "a:b:d:n:T:W:t:")) != -1) {
		switch (c) {
		case 'a': na = optarg; break;
		case 'b': nb = optarg; break;
		case 'd': dev = optarg; break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'T': idle = atof(optarg); break;
		case 'W': first_wait = atof(optarg); break;
		case 't': limit = atof(optarg); break;
		default: usage();
		}
	}
	if (!na || !nb)
		usage();
	struct nmd_port pa, pb;
	if (nmd_port_open(&pa, dev, na, 0))
		return 1;
	if (nmd_port_open(&pb, dev, nb, 0))
		return 1;
	fprintf(stderr, "nmd-bridge: ready (%s <-> %s)\n", na, nb);
	fflush(stderr);

	uint64_t ab = 0, ba = 0;
	int status = 0;
	double t0 = nmd_now(), first = 0, last = 0, t;
	for (;;) {
		t = nmd_now();
		if (count && ab >= count)
			break;
		if (limit > 0 && t - t0 >= limit)
			break;
		if (first == 0 && t - t0 >= first_wait)
			break;
		if (first != 0 && t - last >= idle)
			break;
		struct pollfd pfd[2] = { { .fd = pa.fd }, { .fd = pb.fd } };
		if (rx_ready(&pa))
			pfd[1].events |= POLLOUT;
		else
			pfd[0].events |= POLLIN;
		if (rx_ready(&pb))
			pfd[0].events |= POLLOUT;
		else
			pfd[1].events |= POLLIN;
		int pr = poll(pfd, 2, 100);
		if (pr < 0 && errno != EINTR) {
			perror("poll");
			status = 1;
			break;
		}
		if ((pfd[0].revents | pfd[1].revents) & POLLERR) {
			fprintf(stderr, "nmd-bridge: POLLERR\n");
			status = 3;
			break;
		}
		uint64_t m = 0, n = 0;
		if (pfd[1].revents & POLLOUT)
			m = forward(&pa, &pb);
		if (pfd[0].revents & POLLOUT)
			n = forward(&pb, &pa);
		ab += m;
		ba += n;
		if (m + n) {
			last = nmd_now();
			if (first == 0)
				first = last;
		}
	}
	/* Hand what was queued to the ports and wait for the TX rings to empty. */
	uint32_t pend_a = 0, pend_b = 0;
	for (double d0 = nmd_now(); status != 3;) {
		(void)ioctl(pa.fd, NIOCTXSYNC, NULL);
		(void)ioctl(pb.fd, NIOCTXSYNC, NULL);
		pend_a = tx_pending(&pa);
		pend_b = tx_pending(&pb);
		if ((pend_a == 0 && pend_b == 0) || nmd_now() - d0 > 5)
			break;
		usleep(20000);
	}
	printf("nmd-bridge: %llu frames %s -> %s, %llu frames %s -> %s; TX slots never completed: %u on %s, %u on %s\n",
	       (unsigned long long)ab, na, nb, (unsigned long long)ba, nb, na, pend_b, nb, pend_a, na);
	if (!status && ((count && ab < count) || pend_a || pend_b || ab + ba == 0))
		status = 1;
	nmd_port_close(&pa);
	nmd_port_close(&pb);
	return status;
}
