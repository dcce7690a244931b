/*
 * raw_bench: the baselines of `make bench`, the kernel interfaces netmapd's
 * backends sit on, driven directly with no daemon, no FUSE and no netmap
 * rings in the way. Each mode runs for SECONDS and prints one line of
 * key=value pairs that bench/run.sh parses:
 *
 *   raw_bench xdp-tx IFNAME SECONDS SIZE   AF_XDP socket on queue 0, TX ring
 *       of 2048 descriptors, frames built once in the UMEM (copy or
 *       zero-copy bind, whatever the driver gives), completions reaped
 *       every round. Counts completed frames.
 *   raw_bench xdp-rx IFNAME SECONDS        AF_XDP socket on queue 0 with
 *       the daemon's own redirect program (Sources/Ports/CXDPSys): take RX
 *       descriptors, hand the chunks straight back to the fill ring.
 *   raw_bench pkt-tx IFNAME SECONDS SIZE   AF_PACKET with a TPACKET_V2 TX
 *       ring (64 blocks of 64 KiB, 2048-byte frames): frames copied into the
 *       ring, one send() per batch of up to 512.
 *   raw_bench pkt-rx IFNAME SECONDS        AF_PACKET with a TPACKET_V3 RX
 *       ring (64 blocks of 64 KiB, 1 ms block timeout), poll()-driven, every
 *       frame read in place (its first and last bytes touched).
 *
 * Output:  raw_bench MODE: frames=N bytes=B seconds=S cpu=C
 * (cpu = user + system seconds of this process). Receivers count from the
 * first frame on and stop SECONDS later (or after 3 s with nothing). TX
 * modes include the time to drain what they queued. The frames are
 * tools/nmd_client.h test frames (ethertype 0x88b5). Needs root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nmd_client.h"

#include "nmd_xdp.h"

#define CHUNK 2048u
#define NCHUNK 16384u
#define XRING 2048u

static const uint8_t dst_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t src_mac[6] = { 0x02, 0x6e, 0x6d, 0x00, 0x00, 0x09 };

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void report(const char *mode, uint64_t frames, uint64_t bytes, double secs, double cpus)
{
	printf("raw_bench %s: frames=%llu bytes=%llu seconds=%.6f cpu=%.4f\n", mode, (unsigned long long)frames,
	       (unsigned long long)bytes, secs, cpus);
}

static uint8_t *umem(void)
{
	void *p = mmap(NULL, (size_t)NCHUNK * CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static struct nmd_xsk *xsk(const char *ifname, uint8_t *area, int rx)
{
	struct nmd_xsk_params p = {
		.ifname = ifname, .queue = 0, .area = area, .area_size = (uint64_t)NCHUNK * CHUNK,
		.chunk_size = CHUNK, .fill_size = rx ? XRING * 2 : 64, .comp_size = XRING,
		.rx_size = rx ? XRING : 0, .tx_size = rx ? 0 : XRING, .bind = NMD_XSK_BIND_AUTO,
	};
	int err;
	struct nmd_xsk *x = nmd_xsk_open(&p, &err);
	if (!x) {
		fprintf(stderr, "raw_bench: AF_XDP socket on %s: %s\n", ifname, strerror(-err));
		exit(1);
	}
	return x;
}

static int xdp_tx(const char *ifname, double secs, struct nmdf_sizes sz)
{
	uint8_t *area = umem();
	struct nmd_xsk *x = xsk(ifname, area, 0);
	unsigned len[XRING];
	for (uint32_t i = 0; i < XRING; i++)
		len[i] = nmdf_build(area + (uint64_t)i * CHUNK, &sz, i, 1, dst_mac, src_mac);
	uint64_t sent = 0, done = 0, bytes = 0;
	uint32_t next = 0;
	double t0 = nmd_now(), c0 = nmd_cpu(), stop = t0 + secs;
	for (;;) {
		done += nmd_xsk_tx_completed(x);
		int sending = nmd_now() < stop;
		if (!sending && done == sent)
			break;
		uint32_t room = nmd_xsk_tx_room(x);
		uint64_t inflight = sent - done;
		if (room > XRING - inflight)
			room = (uint32_t)(XRING - inflight);
		for (uint32_t i = 0; sending && i < room; i++) {
			nmd_xsk_tx_put(x, (uint64_t)next * CHUNK, len[next], 0);
			bytes += len[next];
			next = (next + 1) % XRING;
			sent++;
		}
		nmd_xsk_tx_commit(x);
	}
	report("xdp-tx", done, bytes, nmd_now() - t0, nmd_cpu() - c0);
	nmd_xsk_close(x);
	return 0;
}

static int xdp_rx(const char *ifname, double secs)
{
	uint8_t *area = umem();
	struct nmd_xsk *x = xsk(ifname, area, 1);
	int ifindex = (int)if_nametoindex(ifname), frags;
	int map = nmd_xsk_map_create(64);
	int prog = nmd_xdp_prog_load(map, &frags);
	if (map < 0 || prog < 0) {
		fprintf(stderr, "raw_bench: XDP program: %s\n", strerror(-(map < 0 ? map : prog)));
		return 1;
	}
	int mode = NMD_XDP_NATIVE;
	if (nmd_xdp_attach(ifindex, prog, mode) < 0) {
		mode = NMD_XDP_GENERIC;
		int r = nmd_xdp_attach(ifindex, prog, mode);
		if (r < 0) {
			fprintf(stderr, "raw_bench: attach XDP to %s: %s\n", ifname, strerror(-r));
			return 1;
		}
	}
	if (nmd_xsk_map_set(map, 0, nmd_xsk_fd(x)) < 0) {
		fprintf(stderr, "raw_bench: xsk map\n");
		nmd_xdp_detach(ifindex, prog, mode);
		return 1;
	}
	for (uint32_t i = 0; i < XRING * 2 - 1; i++)
		nmd_xsk_fill_put(x, (uint64_t)i * CHUNK);
	nmd_xsk_fill_commit(x);
	fprintf(stderr, "raw_bench: ready\n");
	uint64_t frames = 0, bytes = 0, sink = 0;
	double t0 = 0, c0 = 0, t = 0, start = nmd_now(), last = start;
	struct pollfd pfd = { .fd = nmd_xsk_fd(x), .events = POLLIN };
	static struct nmd_xsk_desc d[256];
	for (;;) {
		uint32_t n = nmd_xsk_rx_take(x, 256, d);
		t = nmd_now();
		if (n == 0) {
			if (t - (frames ? last : start) > 3)
				break;
			if (frames && t - t0 >= secs)
				break;
			poll(&pfd, 1, 100);
			continue;
		}
		if (frames == 0) {
			t0 = t;
			c0 = nmd_cpu();
		}
		last = t;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t a = nmd_xsk_rx_data(x, d[i]);
			sink += area[a] + area[a + d[i].len - 1];
			bytes += d[i].len;
			nmd_xsk_fill_put(x, a & ~(uint64_t)(CHUNK - 1));
		}
		frames += n;
		nmd_xsk_rx_release(x, n);
		nmd_xsk_fill_commit(x);
		if (t - t0 >= secs)
			break;
	}
	report("xdp-rx", frames, bytes + (sink & 0), frames ? last - t0 : 0, frames ? nmd_cpu() - c0 : 0);
	nmd_xdp_detach(ifindex, prog, mode);
	nmd_xsk_close(x);
	return frames ? 0 : 1;
}

static int packet_socket(const char *ifname, int proto)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
	if (fd < 0)
		die("socket(AF_PACKET)");
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
				   .sll_ifindex = (int)if_nametoindex(ifname) };
	if (!sll.sll_ifindex)
		die(ifname);
	int one = 1;
	if (proto == ETH_P_ALL && setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one))
		die("PACKET_IGNORE_OUTGOING");
	int big = 64 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll))
		die("bind");
	return fd;
}

static uint8_t *packet_ring(int fd, int tx, unsigned *nframes, unsigned *fsize, unsigned *nblocks, unsigned *bsize)
{
	int v = tx ? TPACKET_V2 : TPACKET_V3;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v))
		die("PACKET_VERSION");
	struct tpacket_req3 req = { .tp_block_size = 1 << 16, .tp_frame_size = CHUNK, .tp_block_nr = 64 };
	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	req.tp_retire_blk_tov = 1;
	if (setsockopt(fd, SOL_PACKET, tx ? PACKET_TX_RING : PACKET_RX_RING, &req,
		       tx ? sizeof(struct tpacket_req) : sizeof req))
		die(tx ? "PACKET_TX_RING" : "PACKET_RX_RING");
	uint8_t *map = mmap(NULL, (size_t)req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap packet ring");
	*nframes = req.tp_frame_nr;
	*fsize = req.tp_frame_size;
	*nblocks = req.tp_block_nr;
	*bsize = req.tp_block_size;
	return map;
}

static int pkt_tx(const char *ifname, double secs, struct nmdf_sizes sz)
{
	int fd = packet_socket(ifname, 0);
	unsigned nframes, fsize, nblocks, bsize;
	uint8_t *map = packet_ring(fd, 1, &nframes, &fsize, &nblocks, &bsize);
	static uint8_t frames[512][CHUNK];
	unsigned len[512];
	for (unsigned i = 0; i < 512; i++)
		len[i] = nmdf_build(frames[i], &sz, i, 1, dst_mac, src_mac);
	const size_t data_off = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
	uint64_t sent = 0, bytes = 0;
	unsigned next = 0;
	double t0 = nmd_now(), c0 = nmd_cpu(), stop = t0 + secs;
	while (nmd_now() < stop) {
		for (int q = 0; q < 512; q++) {
			struct tpacket2_hdr *h = (void *)(map + (size_t)next * fsize);
			if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
				break;
			unsigned k = (unsigned)(sent % 512);
			memcpy((uint8_t *)h + data_off, frames[k], len[k]);
			h->tp_len = len[k];
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
			next = next + 1 == nframes ? 0 : next + 1;
			bytes += len[k];
			sent++;
		}
		if (send(fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS)
			die("send");
	}
	/* Drain: every frame handed over must have left the ring. */
	for (int pending = 1; pending;) {
		send(fd, NULL, 0, 0);
		pending = 0;
		for (unsigned i = 0; i < nframes; i++) {
			struct tpacket2_hdr *h = (void *)(map + (size_t)i * fsize);
			if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
				pending = 1;
		}
	}
	report("pkt-tx", sent, bytes, nmd_now() - t0, nmd_cpu() - c0);
	close(fd);
	return 0;
}

static int pkt_rx(const char *ifname, double secs)
{
	int fd = packet_socket(ifname, ETH_P_ALL);
	unsigned nframes, fsize, nblocks, bsize;
	uint8_t *map = packet_ring(fd, 0, &nframes, &fsize, &nblocks, &bsize);
	fprintf(stderr, "raw_bench: ready\n");
	uint64_t frames = 0, bytes = 0, sink = 0;
	unsigned next = 0;
	double t0 = 0, c0 = 0, t, start = nmd_now(), last = start;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		struct tpacket_block_desc *b = (void *)(map + (size_t)next * bsize);
		t = nmd_now();
		if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
			if (t - (frames ? last : start) > 3 || (frames && t - t0 >= secs))
				break;
			poll(&p, 1, 100);
			continue;
		}
		if (frames == 0) {
			t0 = t;
			c0 = nmd_cpu();
		}
		last = t;
		struct tpacket3_hdr *h = (void *)((uint8_t *)b + b->hdr.bh1.offset_to_first_pkt);
		for (unsigned i = 0; i < b->hdr.bh1.num_pkts; i++) {
			uint8_t *d = (uint8_t *)h + h->tp_mac;
			sink += d[0] + d[h->tp_snaplen - 1];
			bytes += h->tp_snaplen;
			h = (void *)((uint8_t *)h + h->tp_next_offset);
		}
		frames += b->hdr.bh1.num_pkts;
		__atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		next = next + 1 == nblocks ? 0 : next + 1;
		if (t - t0 >= secs)
			break;
	}
	report("pkt-rx", frames, bytes + (sink & 0), frames ? last - t0 : 0, frames ? nmd_cpu() - c0 : 0);
	close(fd);
	return frames ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct nmdf_sizes sz;
	if (argc == 5 && strcmp(argv[1], "xdp-tx") == 0 && nmdf_parse_sizes(argv[4], &sz) == 0)
		return xdp_tx(argv[2], atof(argv[3]), sz);
	if (argc == 4 && strcmp(argv[1], "xdp-rx") == 0)
		return xdp_rx(argv[2], atof(argv[3]));
	if (argc == 5 && strcmp(argv[1], "pkt-tx") == 0 && nmdf_parse_sizes(argv[4], &sz) == 0)
		return pkt_tx(argv[2], atof(argv[3]), sz);
	if (argc == 4 && strcmp(argv[1], "pkt-rx") == 0)
		return pkt_rx(argv[2], atof(argv[3]));
	fprintf(stderr, "usage: raw_bench xdp-tx|pkt-tx IFNAME SECONDS SIZE | xdp-rx|pkt-rx IFNAME SECONDS\n");
	return 2;
}
