/*
 * nmd-send: a small netmap traffic generator (think pkt-gen -f tx), written
 * against netmapd's ABI header. Sends COUNT test frames (tools/nmd_client.h:
 * sequence numbers, checkable payload, fixed or mixed sizes) on every bound
 * TX ring, poll-driven, BATCH slots per ring per round, and prints what it
 * moved.
 *
 *   nmd-send -i PORT [-d DEVICE] [-n COUNT] [-l SIZE|MIN-MAX] [-b BATCH]
 *            [-R PPS] [-D DSTMAC] [-S SRCMAC] [-s STREAM] [-t SECONDS] [-q]
 *
 * PORT is an interface name, optionally "netmap:" prefixed, "-N" for ring
 * pair N only. COUNT 0 sends until -t SECONDS pass. Exit status: 0 when all
 * frames were handed over and transmitted, 1 on an error (POLLERR, EIO).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>

#include "nmd_client.h"

static void usage(void)
{
	fprintf(stderr, "usage: nmd-send -i PORT [-d DEVICE] [-n COUNT] [-l SIZE|MIN-MAX] [-b BATCH] [-R PPS]\n"
			"                [-D DSTMAC] [-S SRCMAC] [-s STREAM] [-t SECONDS] [-q]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dev = getenv("NETMAP_DEVICE") ? getenv("NETMAP_DEVICE") : "/dev/netmap";
	const char *port = NULL;
	uint64_t count = 1000000;
	struct nmdf_sizes sizes = { 60, 60 };
	unsigned batch = 512;
	double rate = 0, limit = 0;
	uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, src[6] = { 0x02, 0x6e, 0x6d, 0x00, 0x00, 0x01 };
	uint32_t stream = 1;
	int quiet = 0, c;
	while ((c = getopt(argc, argv, "i:d:n:l:b:R:D:S:s:t:q")) != -1) {
		switch (c) {
		case 'i': port = optarg; break;
		case 'd': dev = optarg; break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'l': if (nmdf_parse_sizes(optarg, &sizes)) usage(); break;
		case 'b': batch = (unsigned)atoi(optarg); break;
		case 'R': rate = atof(optarg); break;
		case 'D': if (nmdf_parse_mac(optarg, dst)) usage(); break;
		case 'S': if (nmdf_parse_mac(optarg, src)) usage(); break;
		case 's': stream = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 't': limit = atof(optarg); break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (!port || batch == 0 || (count == 0 && limit == 0))
		usage();
	struct nmd_port p;
	if (nmd_port_open(&p, dev, port, NR_TX_RINGS_ONLY))
		return 1;
	if (p.first_tx == p.last_tx) {
		fprintf(stderr, "nmd-send: no TX ring bound\n");
		return 1;
	}
	struct netmap_ring *r0 = nmd_txring(p.nifp, p.first_tx);
	if (sizes.max > r0->nr_buf_size) {
		fprintf(stderr, "nmd-send: frames up to %u bytes do not fit %u-byte buffers\n", sizes.max, r0->nr_buf_size);
		return 1;
	}
	if (!quiet)
		fprintf(stderr, "nmd-send: %s: %u TX ring(s) of %u slots, sending %llu frames of %u-%u bytes\n", port,
			p.last_tx - p.first_tx, r0->num_slots, (unsigned long long)count, sizes.min, sizes.max);

	uint64_t seq = 0, bytes = 0;
	int err = 0;
	double t0 = nmd_now(), t = t0;
	struct pollfd pfd = { .fd = p.fd, .events = POLLOUT };
	while (count == 0 || seq < count) {
		t = nmd_now();
		if (limit > 0 && t - t0 >= limit)
			break;
		/* pkt-gen's rhythm: poll pushes what is queued and reports room. */
		int pr = poll(&pfd, 1, 1000);
		if (pr < 0 && errno != EINTR) {
			perror("poll");
			err = 1;
			break;
		}
		if (pfd.revents & POLLERR) {
			fprintf(stderr, "nmd-send: POLLERR after %llu frames\n", (unsigned long long)seq);
			err = 1;
			break;
		}
		uint64_t budget = count ? count - seq : UINT64_MAX;
		if (rate > 0) {
			double allowed = rate * (nmd_now() - t0) - (double)seq;
			if (allowed < 1) {
				struct timespec ts = { 0, 20000 };
				nanosleep(&ts, NULL);
				continue;
			}
			if ((double)budget > allowed)
				budget = (uint64_t)allowed;
		}
		for (unsigned ri = p.first_tx; ri < p.last_tx && budget > 0; ri++) {
			struct netmap_ring *ring = nmd_txring(p.nifp, ri);
			uint32_t space = nmd_space(ring), head = ring->head;
			uint64_t k = space < batch ? space : batch;
			/* A paced budget is shared by the rings, so that every ring
			 * (every queue of a multi-queue NIC) carries traffic. */
			uint64_t left = p.last_tx - ri, share = (budget + left - 1) / left;
			if (k > share)
				k = share;
			for (uint64_t i = 0; i < k; i++) {
				struct netmap_slot *s = &ring->slot[head];
				unsigned len = nmdf_build((uint8_t *)nmd_buf(ring, s->buf_idx), &sizes, seq, stream, dst, src);
				s->len = (uint16_t)len;
				s->flags = 0;
				bytes += len;
				seq++;
				head = nmd_next(ring, head);
			}
			budget -= k;
			nmd_store_release_u32(&ring->cur, head);
			nmd_store_release_u32(&ring->head, head);
		}
	}
	/* Push the rest out and wait until every ring has taken it all. */
	double deadline = nmd_now() + 10;
	while (!err) {
		if (ioctl(p.fd, NIOCTXSYNC, NULL) != 0) {
			fprintf(stderr, "nmd-send: NIOCTXSYNC: %s\n", strerror(errno));
			err = 1;
			break;
		}
		int pending = 0;
		for (unsigned ri = p.first_tx; ri < p.last_tx; ri++) {
			struct netmap_ring *ring = nmd_txring(p.nifp, ri);
			if (nmd_space(ring) != ring->num_slots - 1)
				pending = 1;
		}
		if (!pending)
			break;
		if (nmd_now() > deadline) {
			fprintf(stderr, "nmd-send: frames still queued after 10 s\n");
			err = 1;
			break;
		}
		struct pollfd w = { .fd = p.fd, .events = POLLOUT };
		poll(&w, 1, 10);
	}
	t = nmd_now();
	char a[32], b[32];
	double dt = t - t0 > 0 ? t - t0 : 1e-9;
	printf("nmd-send: %llu frames, %llu bytes in %.3f s: %spps, %sbit/s\n", (unsigned long long)seq,
	       (unsigned long long)bytes, dt, nmd_si((double)seq / dt, a, sizeof a),
	       nmd_si((double)bytes * 8 / dt, b, sizeof b));
	nmd_port_close(&p);
	return err;
}
