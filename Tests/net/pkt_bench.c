/*
 * pkt_bench.c: the measurements behind PacketPort's data-path choices
 * (Sources/Ports/NetmapPorts/Packet/PacketPort.swift, "Choices"). It drives AF_PACKET the
 * ways the backend could, without the daemon, on a veth pair that
 * Tests/net/pkt-bench.sh makes in two fresh network namespaces.
 *
 *   pkt_bench tx  IFACE MODE SIZE SECONDS   MODE: mmsg | mmsg-bypass | ring | ring-bypass
 *   pkt_bench rx  IFACE MODE SECONDS        MODE: v2 | v3 | mmsg, each also with -mit
 *   pkt_bench lat-tx IFACE MODE COUNT GAP_US  (one timestamped frame every GAP_US)
 *   pkt_bench lat-rx IFACE MODE COUNT       (prints median and p99 wake-up delay)
 *
 * TX sends from a pool of 2048-byte buffers, as the daemon sends from netmap
 * buffers: sendmmsg points iovecs at them, the TX ring copies them in. RX
 * copies every frame into such a buffer, as rxsync must. Frames carry
 * ethertype 0x88b5 (IEEE local experimental): nothing in a namespace
 * answers them. Needs root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nmd_client.h"

#define BATCH 512
#define POOL 1024
#define BUFSZ 2048
#define ETHERTYPE_BENCH 0x88b5

static unsigned char pool[POOL][BUFSZ];

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int open_socket(const char *ifname, int proto, int bypass)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
	if (fd < 0)
		die("socket");
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
				   .sll_ifindex = (int)if_nametoindex(ifname) };
	if (!sll.sll_ifindex)
		die(ifname);
	int one = 1;
	if (bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one))
		die("PACKET_QDISC_BYPASS");
	if (proto == ETH_P_ALL && setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one))
		die("PACKET_IGNORE_OUTGOING");
	int big = 64 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll))
		die("bind");
	return fd;
}

static void fill_pool(int size)
{
	for (int i = 0; i < POOL; i++) {
		unsigned char *p = pool[i];
		memset(p, 0xff, 6);
		memcpy(p + 6, "\x02\x00\x00\x00\x00\x01", 6);
		p[12] = ETHERTYPE_BENCH >> 8;
		p[13] = ETHERTYPE_BENCH & 0xff;
		for (int j = 14; j < size; j++)
			p[j] = (unsigned char)(i + j);
	}
}

/* ---- TX ---- */

struct txring {
	unsigned char *map;
	unsigned nframes, fsize, next;
};

static void setup_txring(int fd, struct txring *r)
{
	int v = TPACKET_V2;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v))
		die("PACKET_VERSION");
	struct tpacket_req req = { .tp_block_size = 1 << 16, .tp_frame_size = BUFSZ, .tp_block_nr = 64 };
	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req))
		die("PACKET_TX_RING");
	r->map = mmap(NULL, (size_t)req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->map == MAP_FAILED)
		die("mmap");
	r->nframes = req.tp_frame_nr;
	r->fsize = req.tp_frame_size;
	r->next = 0;
}

/* Queues up to n frames of the pool into the TX ring and kicks it once. */
static int ring_send(int fd, struct txring *r, int first, int n, int size)
{
	int queued = 0;
	for (; queued < n; queued++) {
		struct tpacket2_hdr *h = (void *)(r->map + (size_t)r->next * r->fsize);
		if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
			break;
		memcpy((char *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), pool[(first + queued) % POOL], size);
		h->tp_len = size;
		__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
		r->next = r->next + 1 == r->nframes ? 0 : r->next + 1;
	}
	if (send(fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS)
		die("send");
	return queued;
}

static int mmsg_send(int fd, int first, int n, int size)
{
	static struct mmsghdr m[BATCH];
	static struct iovec v[BATCH];
	for (int i = 0; i < n; i++) {
		v[i].iov_base = pool[(first + i) % POOL];
		v[i].iov_len = size;
		m[i].msg_hdr = (struct msghdr){ .msg_iov = &v[i], .msg_iovlen = 1 };
	}
	int r = sendmmsg(fd, m, n, MSG_DONTWAIT);
	if (r < 0 && errno != EAGAIN && errno != ENOBUFS)
		die("sendmmsg");
	return r < 0 ? 0 : r;
}

static void run_tx(const char *ifname, const char *mode, int size, double secs)
{
	int ring = strncmp(mode, "ring", 4) == 0;
	int bypass = strstr(mode, "bypass") != NULL;
	int fd = open_socket(ifname, 0, bypass);
	struct txring r;
	if (ring)
		setup_txring(fd, &r);
	fill_pool(size);
	long sent = 0, calls = 0;
	double t0 = nmd_now(), c0 = nmd_cpu(), t;
	while ((t = nmd_now()) - t0 < secs) {
		sent += ring ? ring_send(fd, &r, (int)sent, BATCH, size) : mmsg_send(fd, (int)sent, BATCH, size);
		calls++;
	}
	double c = nmd_cpu() - c0;
	printf("tx %-12s %4dB: %8.0f kpps  %6.2f Gbit/s  %5.2f us CPU/frame  (%ld syscalls)\n", mode, size,
	       sent / (t - t0) / 1e3, sent * size * 8 / (t - t0) / 1e9, c / sent * 1e6, calls);
}

/* ---- RX ---- */

struct rxring {
	int v3;
	unsigned char *map;
	unsigned nframes, fsize, nblocks, bsize, next;
};

static void setup_rxring(int fd, struct rxring *r, int v3, int tov_ms)
{
	int v = v3 ? TPACKET_V3 : TPACKET_V2;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v))
		die("PACKET_VERSION");
	struct tpacket_req3 req = { .tp_block_size = 1 << 16, .tp_frame_size = BUFSZ, .tp_block_nr = 64 };
	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	req.tp_retire_blk_tov = (unsigned)tov_ms;
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, v3 ? sizeof req : sizeof(struct tpacket_req)))
		die("PACKET_RX_RING");
	r->map = mmap(NULL, (size_t)req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->map == MAP_FAILED)
		die("mmap");
	r->v3 = v3;
	r->nframes = req.tp_frame_nr;
	r->fsize = req.tp_frame_size;
	r->nblocks = req.tp_block_nr;
	r->bsize = req.tp_block_size;
	r->next = 0;
}

/* Copies every frame the ring holds into the pool; returns how many. */
static long ring_drain(struct rxring *r, double *first_ts)
{
	long n = 0;
	if (!r->v3) {
		for (;;) {
			struct tpacket2_hdr *h = (void *)(r->map + (size_t)r->next * r->fsize);
			if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				break;
			unsigned char *d = (unsigned char *)h + h->tp_mac;
			memcpy(pool[n % POOL], d, h->tp_snaplen);
			if (first_ts && n == 0)
				memcpy(first_ts, d + 14, sizeof *first_ts);
			__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			r->next = r->next + 1 == r->nframes ? 0 : r->next + 1;
			n++;
		}
		return n;
	}
	for (;;) {
		struct tpacket_block_desc *b = (void *)(r->map + (size_t)r->next * r->bsize);
		if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
			break;
		struct tpacket3_hdr *h = (void *)((char *)b + b->hdr.bh1.offset_to_first_pkt);
		for (unsigned i = 0; i < b->hdr.bh1.num_pkts; i++) {
			unsigned char *d = (unsigned char *)h + h->tp_mac;
			memcpy(pool[n % POOL], d, h->tp_snaplen);
			if (first_ts && n == 0)
				memcpy(first_ts, d + 14, sizeof *first_ts);
			h = (void *)((char *)h + h->tp_next_offset);
			n++;
		}
		__atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		r->next = r->next + 1 == r->nblocks ? 0 : r->next + 1;
	}
	return n;
}

static long mmsg_recv(int fd, double *first_ts)
{
	static struct mmsghdr m[BATCH];
	static struct iovec v[BATCH];
	for (int i = 0; i < BATCH; i++) {
		v[i].iov_base = pool[i];
		v[i].iov_len = BUFSZ;
		m[i].msg_hdr = (struct msghdr){ .msg_iov = &v[i], .msg_iovlen = 1 };
	}
	int r = recvmmsg(fd, m, BATCH, MSG_DONTWAIT, NULL);
	if (r > 0 && first_ts)
		memcpy(first_ts, pool[0] + 14, sizeof *first_ts);
	return r < 0 ? 0 : r;
}

static void run_rx(const char *ifname, const char *mode, double secs)
{
	int fd = open_socket(ifname, ETH_P_ALL, 0);
	struct rxring r;
	int mm = strncmp(mode, "mmsg", 4) == 0;
	/* "-mit": at most one wake-up per 50 us, as a daemon that re-arms its
	 * one-shot epoll only from the next sync would see. */
	int mit = strstr(mode, "-mit") != NULL;
	if (!mm)
		setup_rxring(fd, &r, strncmp(mode, "v3", 2) == 0, 1);
	long got = 0, wakes = 0;
	double t0 = 0, c0 = 0, t = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		poll(&p, 1, 100);
		wakes++;
		long n = mm ? mmsg_recv(fd, NULL) : ring_drain(&r, NULL);
		if (n && t0 == 0) {
			t0 = nmd_now();
			c0 = nmd_cpu();
			continue;
		}
		got += n;
		if (t0 && (t = nmd_now()) - t0 >= secs)
			break;
		if (mit)
			usleep(50);
	}
	struct tpacket_stats st;
	socklen_t sl = sizeof st;
	getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
	double c = nmd_cpu() - c0;
	printf("rx %-12s      : %8.0f kpps  %5.2f us CPU/frame  %ld wake-ups  kernel drops %u of %u\n", mode,
	       got / (t - t0) / 1e3, c / got * 1e6, wakes, st.tp_drops, st.tp_packets);
}

/* ---- latency ---- */

static void run_lat_tx(const char *ifname, const char *mode, int count, int gap_us)
{
	int ring = strncmp(mode, "ring", 4) == 0;
	int fd = open_socket(ifname, 0, strstr(mode, "bypass") != NULL);
	struct txring r;
	if (ring)
		setup_txring(fd, &r);
	fill_pool(60);
	for (int i = 0; i < count; i++) {
		double ts = nmd_now();
		memcpy(pool[0] + 14, &ts, sizeof ts);
		ring ? ring_send(fd, &r, 0, 1, 60) : mmsg_send(fd, 0, 1, 60);
		usleep(gap_us);
	}
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void run_lat_rx(const char *ifname, const char *mode, int count)
{
	int fd = open_socket(ifname, ETH_P_ALL, 0);
	struct rxring r;
	int mm = strcmp(mode, "mmsg") == 0;
	int tov = strcmp(mode, "v3-8ms") == 0 ? 8 : 1;
	if (!mm)
		setup_rxring(fd, &r, strncmp(mode, "v3", 2) == 0, tov);
	double *lat = calloc((size_t)count, sizeof *lat);
	int n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (n < count) {
		if (poll(&p, 1, 2000) == 0)
			break;
		double ts = 0;
		long k = mm ? mmsg_recv(fd, &ts) : ring_drain(&r, &ts);
		if (k > 0 && ts > 0)
			lat[n++] = (nmd_now() - ts) * 1e6;
	}
	qsort(lat, (size_t)n, sizeof *lat, cmpd);
	if (n == 0) {
		printf("lat %-12s: nothing received\n", mode);
		return;
	}
	printf("lat rx %-8s: %d samples  median %6.1f us  p99 %7.1f us\n", mode, n, lat[n / 2], lat[n * 99 / 100]);
}

int main(int argc, char **argv)
{
	if (argc >= 6 && !strcmp(argv[1], "tx"))
		run_tx(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
	else if (argc >= 5 && !strcmp(argv[1], "rx"))
		run_rx(argv[2], argv[3], atof(argv[4]));
	else if (argc >= 6 && !strcmp(argv[1], "lat-tx"))
		run_lat_tx(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	else if (argc >= 5 && !strcmp(argv[1], "lat-rx"))
		run_lat_rx(argv[2], argv[3], atoi(argv[4]));
	else {
		fprintf(stderr, "usage: see the comment at the top of pkt_bench.c\n");
		return 2;
	}
	return 0;
}
