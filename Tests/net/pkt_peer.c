/*
 * pkt_peer.c: the ordinary-socket end of the net tests. Sends or receives
 * the test frames of tools/nmd_client.h through a plain AF_PACKET socket, so
 * a netmap program on one end of a veth pair can be checked against a
 * program that knows nothing of netmap on the other.
 *
 *   pkt_peer send IFACE COUNT SIZES [-R PPS] [-s STREAM]
 *   pkt_peer recv IFACE COUNT SIZES [-s STREAM] [-T IDLE] [-W WAIT]
 *
 * recv prints "pkt_peer: ready" on stderr once its socket is bound and exits
 * 0 only if COUNT distinct frames arrived with every byte right.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../tools/nmd_client.h"

#define BATCH 256

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int open_bound(const char *ifname, int proto)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	int big = 256 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(proto),
				   .sll_ifindex = (int)if_nametoindex(ifname) };
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
		perror(ifname);
		exit(1);
	}
	return fd;
}

static int do_send(const char *ifname, uint64_t count, struct nmdf_sizes *z, uint32_t stream, double rate)
{
	int fd = open_bound(ifname, 0);
	static uint8_t bufs[BATCH][2048];
	static struct mmsghdr m[BATCH];
	static struct iovec v[BATCH];
	uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, src[6] = { 0x02, 0x6e, 0x6d, 0x00, 0x00, 0x02 };
	uint64_t seq = 0, bytes = 0;
	double t0 = now();
	while (seq < count) {
		uint64_t k = count - seq < BATCH ? count - seq : BATCH;
		if (rate > 0) {
			double allowed = rate * (now() - t0) - (double)seq;
			if (allowed < 1) {
				struct timespec ts = { 0, 20000 };
				nanosleep(&ts, NULL);
				continue;
			}
			if ((double)k > allowed)
				k = (uint64_t)allowed;
		}
		for (uint64_t i = 0; i < k; i++) {
			v[i].iov_base = bufs[i];
			v[i].iov_len = nmdf_build(bufs[i], z, seq + i, stream, dst, src);
			m[i].msg_hdr = (struct msghdr){ .msg_iov = &v[i], .msg_iovlen = 1 };
		}
		int r = sendmmsg(fd, m, (unsigned)k, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
				continue;
			perror("sendmmsg");
			return 1;
		}
		for (int i = 0; i < r; i++)
			bytes += v[i].iov_len;
		seq += (uint64_t)r;
	}
	double dt = now() - t0;
	printf("pkt_peer: sent %llu frames, %llu bytes in %.3f s: %.0f pps\n", (unsigned long long)seq,
	       (unsigned long long)bytes, dt, (double)seq / dt);
	return 0;
}

static int do_recv(const char *ifname, uint64_t count, struct nmdf_sizes *z, uint32_t stream, double idle,
		   double first_wait)
{
	int fd = open_bound(ifname, NMDF_ETHERTYPE);
	fprintf(stderr, "pkt_peer: ready\n");
	fflush(stderr);
	static uint8_t bufs[BATCH][2048];
	static struct mmsghdr m[BATCH];
	static struct iovec v[BATCH];
	struct nmdf_seen seen;
	if (nmdf_seen_init(&seen, count))
		return 1;
	uint64_t frames = 0, bytes = 0, bad = 0, other = 0;
	int reported = 0;
	double t0 = now(), first = 0, last = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (seen.unique < count) {
		double t = now();
		if ((first == 0 && t - t0 > first_wait) || (first != 0 && t - last > idle))
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		for (int i = 0; i < BATCH; i++) {
			v[i].iov_base = bufs[i];
			v[i].iov_len = sizeof bufs[i];
			m[i].msg_hdr = (struct msghdr){ .msg_iov = &v[i], .msg_iovlen = 1 };
		}
		int r = recvmmsg(fd, m, BATCH, MSG_DONTWAIT, NULL);
		if (r <= 0)
			continue;
		last = now();
		if (first == 0)
			first = last;
		for (int i = 0; i < r; i++) {
			uint64_t seq = 0;
			const char *why = "";
			unsigned len = m[i].msg_len;
			switch (nmdf_check(bufs[i], len, z, stream, &seq, &why)) {
			case NMDF_OK:
				nmdf_seen_add(&seen, seq);
				frames++;
				bytes += len;
				break;
			case NMDF_BAD:
				if (reported++ < 5)
					fprintf(stderr, "pkt_peer: bad frame (%s), %u bytes, seq %llu\n", why, len,
						(unsigned long long)seq);
				bad++;
				frames++;
				break;
			case NMDF_OTHER:
				other++;
				break;
			}
		}
	}
	double dt = last > first ? last - first : 1e-9;
	uint64_t lost = count - seen.unique;
	printf("pkt_peer: received %llu frames, %llu bytes in %.3f s: %.0f pps; lost %llu, bad %llu, duplicate %llu, "
	       "other %llu\n",
	       (unsigned long long)frames, (unsigned long long)bytes, dt, (double)frames / dt, (unsigned long long)lost,
	       (unsigned long long)bad, (unsigned long long)seen.dups, (unsigned long long)other);
	return lost || bad || seen.dups || seen.beyond ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: pkt_peer send|recv IFACE COUNT SIZES [-R PPS] [-s STREAM] [-T IDLE] [-W WAIT]\n");
		return 2;
	}
	const char *mode = argv[1], *ifname = argv[2];
	uint64_t count = strtoull(argv[3], NULL, 10);
	struct nmdf_sizes z;
	if (nmdf_parse_sizes(argv[4], &z)) {
		fprintf(stderr, "bad sizes %s\n", argv[4]);
		return 2;
	}
	uint32_t stream = 1;
	double rate = 0, idle = 2, wait = 30;
	int c;
	optind = 5;
	while ((c = getopt(argc, argv, "R:s:T:W:")) != -1) {
		switch (c) {
		case 'R': rate = atof(optarg); break;
		case 's': stream = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'T': idle = atof(optarg); break;
		case 'W': wait = atof(optarg); break;
		default: return 2;
		}
	}
	if (!strcmp(mode, "send"))
		return do_send(ifname, count, &z, stream, rate);
	if (!strcmp(mode, "recv"))
		return do_recv(ifname, count, &z, stream, idle, wait);
	return 2;
}
