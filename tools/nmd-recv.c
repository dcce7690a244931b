/*
 * nmd-recv: a small netmap receiver (think pkt-gen -f rx) that also checks
 * what it gets: every test frame (tools/nmd_client.h) of the expected stream
 * must have the length and every byte its sequence number implies, and each
 * sequence number must arrive once. Other traffic is counted and ignored.
 *
 *   nmd-recv -i PORT [-d DEVICE] [-n COUNT] [-l SIZE|MIN-MAX] [-s STREAM]
 *            [-T IDLE_SECONDS] [-W FIRST_WAIT_SECONDS] [-t SECONDS] [-x EXTRA] [-q]
 *
 * Stops when COUNT distinct frames arrived, when no frame came for IDLE
 * seconds (default 2) after the first, or when none came in the first WAIT
 * seconds (default 30). Prints "nmd-recv: ready" on stderr once registered.
 * With -x, EXTRA extra buffers are requested and every slot given back
 * carries one of them instead of the buffer it came with (NS_BUF_CHANGED),
 * as a zero-copy forwarder swaps buffers: the port must take whatever
 * buffer a released slot names. The extra buffers are chained back from
 * ni_bufs_head at exit, as netmap wants.
 * Exit status: 0 if COUNT frames (when given) arrived intact and no frame
 * was bad or repeated; 1 otherwise; 3 on POLLERR / EIO.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>

#include "nmd_client.h"

static void usage(void)
{
	fprintf(stderr, "usage: nmd-recv -i PORT [-d DEVICE] [-n COUNT] [-l SIZE|MIN-MAX] [-s STREAM]\n"
			"                [-T IDLE] [-W WAIT] [-t SECONDS] [-x EXTRA] [-q]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dev = getenv("NETMAP_DEVICE") ? getenv("NETMAP_DEVICE") : "/dev/netmap";
	const char *port = NULL;
	uint64_t count = 0;
	struct nmdf_sizes sizes = { 60, 60 };
	uint32_t stream = 1;
	double idle = 2, first_wait = 30, limit = 0;
	int quiet = 0, c;
	uint32_t extra = 0;
	while ((c = getopt(argc, argv, "i:d:n:l:s:T:W:t:x:q")) != -1) {
		switch (c) {
		case 'i': port = optarg; break;
		case 'd': dev = optarg; break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'l': if (nmdf_parse_sizes(optarg, &sizes)) usage(); break;
		case 's': stream = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'T': idle = atof(optarg); break;
		case 'W': first_wait = atof(optarg); break;
		case 't': limit = atof(optarg); break;
		case 'x': extra = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (!port)
		usage();
	struct nmd_port p;
	if (nmd_port_open_extra(&p, dev, port, NR_RX_RINGS_ONLY, extra))
		return 1;
	/* The extra buffers, as a stack of indices. */
	uint32_t *spare = calloc(extra + 1, sizeof *spare), nspare = 0;
	if (extra) {
		struct netmap_ring *r0 = nmd_rxring(p.nifp, p.first_rx);
		for (uint32_t b = p.nifp->ni_bufs_head; b != 0 && nspare < extra;
		     b = *(uint32_t *)nmd_buf(r0, b))
			spare[nspare++] = b;
		if (nspare == 0) {
			fprintf(stderr, "nmd-recv: no extra buffers granted\n");
			return 1;
		}
	}
	struct nmdf_seen seen;
	if (nmdf_seen_init(&seen, count ? count : 1ULL << 30)) {
		fprintf(stderr, "nmd-recv: out of memory\n");
		return 1;
	}
	fprintf(stderr, "nmd-recv: ready (%s, %u RX ring(s))\n", port, p.last_rx - p.first_rx);
	fflush(stderr);

	static uint8_t frame[65536];
	unsigned flen = 0;
	uint64_t bytes = 0, bad = 0, other = 0, frames = 0;
	int status = 0, reported = 0;
	double t0 = nmd_now(), first = 0, last = 0, t;
	struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
	for (;;) {
		t = nmd_now();
		if (count && seen.unique >= count)
			break;
		if (limit > 0 && t - t0 >= limit)
			break;
		if (first == 0 && t - t0 >= first_wait)
			break;
		if (first != 0 && t - last >= idle)
			break;
		uint64_t before = frames;
		int pr = poll(&pfd, 1, 100);
		if (pr < 0 && errno != EINTR) {
			perror("poll");
			status = 1;
			break;
		}
		if (pfd.revents & POLLERR) {
			fprintf(stderr, "nmd-recv: POLLERR after %llu frames\n", (unsigned long long)frames);
			status = 3;
			break;
		}
		for (unsigned ri = p.first_rx; ri < p.last_rx; ri++) {
			struct netmap_ring *ring = nmd_rxring(p.nifp, ri);
			uint32_t head = ring->head, tail = nmd_load_acquire_u32(&ring->tail);
			while (head != tail) {
				struct netmap_slot *s = &ring->slot[head];
				if (flen + s->len <= sizeof frame) {
					memcpy(frame + flen, nmd_buf(ring, s->buf_idx), s->len);
					flen += s->len;
				}
				if (nspare) {
					/* Give the slot back with another buffer. */
					uint32_t mine = s->buf_idx;
					s->buf_idx = spare[--nspare];
					s->flags |= NS_BUF_CHANGED;
					spare[nspare++] = mine;
					/* rotate, so buffers travel through the whole set */
					uint32_t t = spare[0];
					spare[0] = spare[nspare - 1];
					spare[nspare - 1] = t;
				}
				head = nmd_next(ring, head);
				if (s->flags & NS_MOREFRAG)
					continue;
				uint64_t seq = 0;
				const char *why = "";
				switch (nmdf_check(frame, flen, &sizes, stream, &seq, &why)) {
				case NMDF_OK:
					nmdf_seen_add(&seen, seq);
					bytes += flen;
					frames++;
					break;
				case NMDF_BAD:
					if (reported++ < 5)
						fprintf(stderr, "nmd-recv: bad frame (%s), %u bytes, seq %llu\n", why, flen,
							(unsigned long long)seq);
					bad++;
					frames++;
					break;
				case NMDF_OTHER:
					other++;
					break;
				}
				flen = 0;
			}
			nmd_store_release_u32(&ring->cur, head);
			nmd_store_release_u32(&ring->head, head);
		}
		if (frames != before) {
			last = nmd_now();
			if (first == 0)
				first = last;
		}
	}
	double dt = last > first ? last - first : 1e-9;
	char a[32], b[32];
	uint64_t lost = count > seen.unique ? count - seen.unique : 0;
	printf("nmd-recv: %llu frames, %llu bytes in %.3f s: %spps, %sbit/s; lost %llu, bad %llu, duplicate %llu, "
	       "reordered %llu, other traffic %llu\n",
	       (unsigned long long)frames, (unsigned long long)bytes, dt, nmd_si((double)frames / dt, a, sizeof a),
	       nmd_si((double)bytes * 8 / dt, b, sizeof b), (unsigned long long)lost, (unsigned long long)bad,
	       (unsigned long long)seen.dups, (unsigned long long)seen.reordered, (unsigned long long)other);
	if (lost) {   /* which ones: the first few gaps */
		int shown = 0;
		for (uint64_t q = 0; q < count && shown < 8; q++)
			if (!(seen.bits[q / 8] & (1u << (q % 8)))) {
				printf("%s%llu", shown ? ", " : "nmd-recv: missing ", (unsigned long long)q);
				shown++;
			}
		printf("\n");
	}
	if (!status && (lost || bad || seen.dups || seen.beyond || (count == 0 && frames == 0)))
		status = 1;
	(void)quiet;
	/* Hand the slots consumed since the last sync back: a pipe's sender
	 * gets its TX slots back only through its peer's RX sync (as with
	 * netmap), and waits for them before it exits. */
	if (status != 3)
		(void)ioctl(p.fd, NIOCRXSYNC, NULL);
	if (nspare) {
		/* Chain the extra buffers we hold back from ni_bufs_head (§4.7). */
		struct netmap_ring *r0 = nmd_rxring(p.nifp, p.first_rx);
		uint32_t head = 0;
		for (uint32_t i = 0; i < nspare; i++) {
			*(uint32_t *)nmd_buf(r0, spare[i]) = head;
			head = spare[i];
		}
		p.nifp->ni_bufs_head = head;
	}
	free(spare);
	nmd_port_close(&p);
	return status;
}
