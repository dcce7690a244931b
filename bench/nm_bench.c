/*
 * nm_bench: the netmap side of `make bench`, a sender and a receiver in the
 * style of pkt-gen, with the batch per sync as a parameter. Only the
 * project's ABI header (Sources/ABI/CNetmapABI/include/netmapd_abi.h) and tools/ are
 * used: it runs unchanged against any netmap device.
 *
 *   nm_bench tx -i PORT -t SECONDS -l SIZE -b BATCH [-d DEVICE]
 *       Every buffer of every bound TX ring gets its frame once at start
 *       (tools/nmd_client.h test frames, as pkt-gen prepares its buffers);
 *       then, round after round: poll(POLLOUT) (which runs the txsync),
 *       fill up to BATCH free slots per ring (only the length is written),
 *       advance head and cur. After SECONDS it waits until the rings are
 *       empty: the time includes the drain. full=N in its line counts the
 *       rounds that found a ring with no free slot: the path behind the
 *       rings (daemon, kernel, peer) did not keep up and pushed back.
 *   nm_bench rx -i PORT -t SECONDS -b BATCH [-d DEVICE] [-W WAIT]
 *       poll(POLLIN) (the rxsync), then consume up to BATCH slots per ring
 *       (first and last byte of each frame read), advance head and cur.
 *       Counts from the first frame for SECONDS (or until 3 s pass with
 *       nothing), then keeps draining, uncounted, until 0.5 s pass with
 *       nothing (so a pipe's sender can finish); gives up if nothing comes
 *       within WAIT seconds (10).
 *       Prints "nm_bench: ready" on stderr once registered.
 *       With -M r|t|rt|z it registers a monitor of PORT instead (NR_MONITOR_RX,
 *       NR_MONITOR_TX, both, NR_ZCOPY_MON): what the monitor saw is counted,
 *       and the monitored port leaving netmap mode (POLLERR) ends the run.
 *   nm_bench sync -i PORT -t SECONDS [-d DEVICE]
 *       Registers PORT and times empty NIOCTXSYNC calls (nothing queued):
 *       the round trip to the daemon and back.
 *
 * PORT: an interface ("netmap:" prefix optional, "-N" for ring pair N), a
 * pipe end ("name{N" / "name}N") or a null port. BATCH larger than the
 * ring's free slots means "whatever is free" (the "ring" batch).
 * Output, one line:
 *   nm_bench MODE: frames=N bytes=B seconds=S cpu=C syncs=K [full=N]
 * (sync: frames=0, syncs=calls). cpu = user + system seconds of this process.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "nmd_client.h"

static void report(const char *mode, uint64_t frames, uint64_t bytes, double secs, double cpus, uint64_t syncs)
{
	printf("nm_bench %s: frames=%llu bytes=%llu seconds=%.6f cpu=%.4f syncs=%llu", mode,
	       (unsigned long long)frames, (unsigned long long)bytes, secs, cpus, (unsigned long long)syncs);
}

static void usage(void)
{
	fprintf(stderr, "usage: nm_bench tx|rx|sync -i PORT -t SECONDS [-l SIZE] [-b BATCH] [-d DEVICE] [-W WAIT] [-M r|t|rt|z]\n");
	exit(2);
}

/* One poll(), which runs the sync; -1 (said) on an error or POLLERR. */
static int sync_poll(struct pollfd *pfd, int ms, uint64_t *syncs)
{
	int pr = poll(pfd, 1, ms);
	(*syncs)++;
	if (pr < 0 && errno != EINTR) {
		perror("nm_bench: poll");
		return -1;
	}
	if (pfd->revents & POLLERR) {
		fprintf(stderr, "nm_bench: POLLERR\n");
		return -1;
	}
	return 0;
}

static int tx(struct nmd_port *p, double secs, unsigned size, unsigned batch)
{
	static const uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t src[6] = { 0x02, 0x6e, 0x6d, 0x00, 0x00, 0x01 };
	struct nmdf_sizes sz = { size, size };
	for (unsigned ri = p->first_tx; ri < p->last_tx; ri++) {
		struct netmap_ring *ring = nmd_txring(p->nifp, ri);
		if (size > ring->nr_buf_size) {
			fprintf(stderr, "nm_bench: %u-byte frames do not fit %u-byte buffers\n", size, ring->nr_buf_size);
			return 1;
		}
		for (uint32_t i = 0; i < ring->num_slots; i++)
			nmdf_build((uint8_t *)nmd_buf(ring, ring->slot[i].buf_idx), &sz, i, 1, dst, src);
	}
	uint64_t sent = 0, syncs = 0, full = 0;
	double t0 = nmd_now(), c0 = nmd_cpu(), stop = t0 + secs;
	struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };
	while (nmd_now() < stop) {
		if (sync_poll(&pfd, 1000, &syncs))
			return 1;
		int ring_full = 0;
		for (unsigned ri = p->first_tx; ri < p->last_tx; ri++) {
			struct netmap_ring *ring = nmd_txring(p->nifp, ri);
			uint32_t space = nmd_space(ring), head = ring->head;
			ring_full |= space == 0;
			uint32_t k = space < batch ? space : batch;
			for (uint32_t i = 0; i < k; i++) {
				struct netmap_slot *s = &ring->slot[head];
				s->len = (uint16_t)size;
				s->flags = 0;
				head = nmd_next(ring, head);
			}
			sent += k;
			nmd_store_release_u32(&ring->cur, head);
			nmd_store_release_u32(&ring->head, head);
		}
		full += ring_full;
	}
	for (double deadline = nmd_now() + 10;;) {
		if (ioctl(p->fd, NIOCTXSYNC, NULL) != 0) {
			fprintf(stderr, "nm_bench: NIOCTXSYNC: %s\n", strerror(errno));
			return 1;
		}
		syncs++;
		int pending = 0;
		for (unsigned ri = p->first_tx; ri < p->last_tx; ri++) {
			struct netmap_ring *ring = nmd_txring(p->nifp, ri);
			pending |= nmd_space(ring) != ring->num_slots - 1;
		}
		if (!pending)
			break;
		if (nmd_now() > deadline) {
			fprintf(stderr, "nm_bench: frames still queued after 10 s\n");
			return 1;
		}
		poll(&pfd, 1, 10);
	}
	report("tx", sent, sent * size, nmd_now() - t0, nmd_cpu() - c0, syncs);
	printf(" full=%llu\n", (unsigned long long)full);
	return 0;
}

static uint64_t monitor_flags;

static int rx(struct nmd_port *p, double secs, unsigned batch, double wait)
{
	fprintf(stderr, "nm_bench: ready\n");
	uint64_t frames = 0, bytes = 0, syncs = 0, sink = 0;
	double start = nmd_now(), t0 = 0, c0 = 0, c1 = 0, last = start, seen = start, t;
	int done = 0;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	for (;;) {
		if (sync_poll(&pfd, 100, &syncs)) {
			if (monitor_flags && frames)
				break;   /* the monitored port left netmap mode */
			return 1;
		}
		t = nmd_now();
		uint64_t got = 0, gotbytes = 0;
		for (unsigned ri = p->first_rx; ri < p->last_rx; ri++) {
			struct netmap_ring *ring = nmd_rxring(p->nifp, ri);
			uint32_t avail = nmd_space(ring), head = ring->head;
			uint32_t k = avail < batch ? avail : batch;
			for (uint32_t i = 0; i < k; i++) {
				struct netmap_slot *s = &ring->slot[head];
				const uint8_t *f = (const uint8_t *)nmd_buf(ring, s->buf_idx);
				sink += f[0] + f[s->len ? s->len - 1 : 0];
				gotbytes += s->len;
				head = nmd_next(ring, head);
			}
			got += k;
			nmd_store_release_u32(&ring->cur, head);
			nmd_store_release_u32(&ring->head, head);
		}
		if (got) {
			if (frames == 0) {
				t0 = t;
				c0 = nmd_cpu();
			}
			if (!done) {
				frames += got;
				bytes += gotbytes;
				last = t;
				c1 = nmd_cpu();
			}
			seen = t;
		}
		if (frames == 0 && t - start > wait) {
			fprintf(stderr, "nm_bench: nothing received in %.0f s\n", wait);
			return 1;
		}
		/* The window closes SECONDS after the first frame (or 3 s after
		 * the last); what comes later is drained, not counted, so that
		 * a sender can empty its rings, until 0.5 s pass with nothing. */
		if (frames && !done && (t - t0 >= secs || t - last > 3))
			done = 1;
		if (done && t - seen > 0.5)
			break;
	}
	report("rx", frames, bytes + (sink & 0), last - t0, c1 - c0, syncs);
	printf("\n");
	return 0;
}

static int sync_loop(struct nmd_port *p, double secs)
{
	double warm = nmd_now() + 0.2;
	while (nmd_now() < warm)
		if (ioctl(p->fd, NIOCTXSYNC, NULL) != 0) {
			fprintf(stderr, "nm_bench: NIOCTXSYNC: %s\n", strerror(errno));
			return 1;
		}
	uint64_t calls = 0;
	double t0 = nmd_now(), c0 = nmd_cpu(), t = t0;
	while (t - t0 < secs) {
		for (int i = 0; i < 100; i++)
			if (ioctl(p->fd, NIOCTXSYNC, NULL) != 0) {
				fprintf(stderr, "nm_bench: NIOCTXSYNC: %s\n", strerror(errno));
				return 1;
			}
		calls += 100;
		t = nmd_now();
	}
	report("sync", 0, 0, t - t0, nmd_cpu() - c0, calls);
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	const char *dev = getenv("NETMAP_DEVICE") ? getenv("NETMAP_DEVICE") : "/dev/netmap";
	const char *port = NULL;
	double secs = 2, wait = 10;
	unsigned size = 60, batch = 512;
	int c;
	optind = 2;
	while ((c = getopt(argc, argv, "i:t:l:b:d:W:M:")) != -1) {
		switch (c) {
		case 'i': port = optarg; break;
		case 't': secs = atof(optarg); break;
		case 'l': size = (unsigned)atoi(optarg); break;
		case 'b': batch = (unsigned)atoi(optarg); break;
		case 'd': dev = optarg; break;
		case 'W': wait = atof(optarg); break;
		case 'M':
			monitor_flags = (strchr(optarg, 'r') ? NR_MONITOR_RX : 0) | (strchr(optarg, 't') ? NR_MONITOR_TX : 0) |
			    (strchr(optarg, 'z') ? NR_ZCOPY_MON : 0);
			if (!monitor_flags)
				usage();
			break;
		default: usage();
		}
	}
	if (!port || batch == 0 || secs <= 0 || size < NMDF_MIN || size > NMDF_MAX)
		usage();
	uint64_t flags = strcmp(mode, "tx") == 0 ? NR_TX_RINGS_ONLY : strcmp(mode, "rx") == 0 ? NR_RX_RINGS_ONLY : 0;
	struct nmd_port p;
	if (nmd_port_open(&p, dev, port, flags | monitor_flags))
		return 1;
	int rc;
	if (strcmp(mode, "tx") == 0)
		rc = tx(&p, secs, size, batch);
	else if (strcmp(mode, "rx") == 0)
		rc = rx(&p, secs, batch, wait);
	else if (strcmp(mode, "sync") == 0)
		rc = sync_loop(&p, secs);
	else
		usage();
	nmd_port_close(&p);
	return rc;
}
