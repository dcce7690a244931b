/*
 * soak_null.c: a short-lived client of a netmap null port, for the soak test
 * (Tests/soak/soak.sh). Registers NAME with NR_REG_NULL (rings and nothing
 * behind them), optionally with extra buffers, maps the region, then for
 * SECONDS keeps filling its TX rings, releasing its RX rings and syncing
 * both ways, and leaves as netmap wants (extra buffers chained back from
 * ni_bufs_head).
 *
 *   soak_null -d DEVICE -n NAME [-r RINGS] [-s SLOTS] [-x EXTRA] [-t SECONDS]
 *
 * Prints "soak_null: ready" on stderr once registered and one result line on
 * stdout. Exit status 0 if every request and sync succeeded and the rings
 * kept netmap's invariants (head/cur/tail inside the ring), 1 otherwise.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>

#include "nmd_client.h"

static void usage(void)
{
	fprintf(stderr, "usage: soak_null -d DEVICE -n NAME [-r RINGS] [-s SLOTS] [-x EXTRA] [-t SECONDS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dev = NULL, *name = NULL;
	unsigned rings = 1, slots = 0;
	uint32_t extra = 0;
	double seconds = 1;
	int c;
	while ((c = getopt(argc, argv, "d:n:r:s:x:t:")) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'n': name = optarg; break;
		case 'r': rings = (unsigned)atoi(optarg); break;
		case 's': slots = (unsigned)atoi(optarg); break;
		case 'x': extra = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 't': seconds = atof(optarg); break;
		default: usage();
		}
	}
	if (!dev || !name || rings == 0 || rings > 16)
		usage();
	int fd = open(dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "soak_null: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	struct nmreq_register reg;
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_NULL;
	reg.nr_mem_id = 1;   /* a null port takes the allocator it is given (the only one here) */
	reg.nr_tx_rings = (uint16_t)rings;
	reg.nr_rx_rings = (uint16_t)rings;
	reg.nr_tx_slots = slots;
	reg.nr_rx_slots = slots;
	reg.nr_extra_bufs = extra;
	struct nmreq_header hdr;
	memset(&hdr, 0, sizeof hdr);
	hdr.nr_version = NETMAP_API;
	hdr.nr_reqtype = NETMAP_REQ_REGISTER;
	snprintf(hdr.nr_name, sizeof hdr.nr_name, "%s", name);
	hdr.nr_body = (uintptr_t)&reg;
	if (ioctl(fd, NIOCCTRL, &hdr) != 0) {
		fprintf(stderr, "soak_null: register %s: %s\n", name, strerror(errno));
		return 1;
	}
	void *mem = mmap(NULL, reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "soak_null: mmap: %s\n", strerror(errno));
		return 1;
	}
	struct netmap_if *nifp = nmd_if(mem, reg.nr_offset);
	unsigned nt = nifp->ni_tx_rings, nr = nifp->ni_rx_rings;
	/* Count the extra buffers granted (the chain is left as it is: the
	 * daemon takes it back at release). */
	uint32_t granted = 0;
	if (nt > 0) {
		struct netmap_ring *r0 = nmd_txring(nifp, 0);
		for (uint32_t b = nifp->ni_bufs_head; b != 0 && granted <= extra; b = *(uint32_t *)nmd_buf(r0, b))
			granted++;
	}
	fprintf(stderr, "soak_null: ready (%s, %u+%u rings, %u extra buffers)\n", name, nt, nr, granted);
	fflush(stderr);
	int bad = granted > extra;
	uint64_t syncs = 0, filled = 0;
	double t0 = nmd_now();
	while (!bad && nmd_now() - t0 < seconds) {
		for (unsigned i = 0; i < nt; i++) {
			struct netmap_ring *r = nmd_txring(nifp, i);
			uint32_t head = r->head, space = nmd_space(r);
			if (head >= r->num_slots || r->tail >= r->num_slots) {
				bad = 1;
				break;
			}
			for (uint32_t k = 0; k < space; k++) {
				struct netmap_slot *s = &r->slot[head];
				s->len = (uint16_t)(60 + (filled % 1455));
				memset(nmd_buf(r, s->buf_idx), (int)(filled & 0xff), 60);
				head = nmd_next(r, head);
				filled++;
			}
			nmd_store_release_u32(&r->cur, head);
			nmd_store_release_u32(&r->head, head);
		}
		for (unsigned i = 0; i < nr; i++) {
			struct netmap_ring *r = nmd_rxring(nifp, i);
			uint32_t tail = nmd_load_acquire_u32(&r->tail);
			if (r->head >= r->num_slots || tail >= r->num_slots) {
				bad = 1;
				break;
			}
			nmd_store_release_u32(&r->cur, tail);
			nmd_store_release_u32(&r->head, tail);
		}
		if (ioctl(fd, NIOCTXSYNC, NULL) != 0 || ioctl(fd, NIOCRXSYNC, NULL) != 0) {
			fprintf(stderr, "soak_null: sync: %s\n", strerror(errno));
			bad = 1;
			break;
		}
		syncs++;
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
		if (poll(&p, 1, 5) < 0 && errno != EINTR) {
			bad = 1;
			break;
		}
		if (p.revents & POLLERR) {
			fprintf(stderr, "soak_null: POLLERR\n");
			bad = 1;
			break;
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	printf("soak_null: %s %u+%u rings, %u extra buffers, %llu syncs, %llu slots filled: %s\n", name, nt, nr,
	       granted, (unsigned long long)syncs, (unsigned long long)filled, bad ? "FAILED" : "ok");
	munmap(mem, reg.nr_memsize);
	close(fd);
	return bad;
}
