/*
 * pkt_errors.c: the error answers of the generic backend, as a netmap
 * program sees them through the device.
 *
 *   pkt_errors register DEV NAME WANT [rx|tx]   REGISTER (ALL_NIC, or only
 *       RX / TX rings) must fail with errno WANT (a name: ENXIO, EINVAL ...)
 *       or succeed (WANT = OK)
 *   pkt_errors info DEV NAME WANT               PORT_INFO_GET, the same way
 *   pkt_errors ginfo DEV NAME WANT              legacy NIOCGINFO, the same way
 *   pkt_errors regif DEV NAME WANT              legacy NIOCREGIF (NR_REG_ALL_NIC)
 *   pkt_errors vanish DEV NAME                  registers NAME, says "ready"
 *       on stdout, waits for a line on stdin (the interface is deleted
 *       meanwhile), then expects EIO from both sync ioctls and POLLERR
 *       from poll
 *   pkt_errors linkdown DEV NAME                registers NAME, takes its
 *       link down itself (SIOCSIFFLAGS) and expects what netmap does
 *       (§5.9, §6): no POLLERR and no EIO, poll sleeps; then brings the
 *       link up from a thread while poll(POLLOUT) sleeps: poll wakes then
 *   pkt_errors badslots DEV NAME PEER_NETNS PEER_IF   registers NAME's TX
 *       rings and sends a slot whose buffer index is past the pool (len 60)
 *       and one whose length is 3000: netmap sends buffer 0 and the first
 *       2048 bytes (§4.6); a plain socket on PEER_IF (in the namespace
 *       PEER_NETNS names) must receive both; then says "ready" and holds
 *       the port until a line arrives on stdin
 *   pkt_errors status SOCKET                    prints netmapd's status (JSON)
 *
 * Prints one PASS/FAIL line per check; exit status 0 only if all pass.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"

static int failed;

static void check(int ok, const char *what)
{
	printf("%s pkt_errors: %s\n", ok ? "PASS" : "FAIL", what);
	fflush(stdout);
	if (!ok)
		failed = 1;
}

static int errno_named(const char *s)
{
	static const struct { const char *n; int e; } t[] = {
		{ "OK", 0 }, { "ENXIO", ENXIO }, { "EINVAL", EINVAL }, { "EIO", EIO }, { "EBUSY", EBUSY },
		{ "ENOMEM", ENOMEM }, { "EOPNOTSUPP", EOPNOTSUPP }, { "ENODEV", ENODEV },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i].n))
			return t[i].e;
	fprintf(stderr, "unknown errno name %s\n", s);
	exit(2);
}

static int ctrl(int fd, const char *name, uint16_t type, void *body)
{
	struct nmreq_header h;
	memset(&h, 0, sizeof h);
	h.nr_version = NETMAP_API;
	h.nr_reqtype = type;
	snprintf(h.nr_name, sizeof h.nr_name, "%s", name);
	h.nr_body = (uintptr_t)body;
	return ioctl(fd, NIOCCTRL, &h) == 0 ? 0 : errno;
}

static int open_dev(const char *dev)
{
	int fd = open(dev, O_RDWR);
	if (fd < 0) {
		perror(dev);
		exit(1);
	}
	return fd;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Sets NAME administratively up or down, as `ip link set NAME up|down`. */
static int set_link(const char *name, int up)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	int rc = -1;
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		if (up)
			ifr.ifr_flags |= IFF_UP;
		else
			ifr.ifr_flags &= ~IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
	return rc;
}

/* REGISTER `name` (mode and flags as given) and map the region; prints a
 * check for each step. The mapping, or NULL when either failed. */
static void *register_and_map(int fd, const char *name, uint32_t mode, uint64_t flags, const char *label,
			      struct nmreq_register *r)
{
	char what[256];
	memset(r, 0, sizeof *r);
	r->nr_mode = mode;
	r->nr_flags = flags;
	int got = ctrl(fd, name, NETMAP_REQ_REGISTER, r);
	snprintf(what, sizeof what, "REGISTER %s%s", name, label);
	check(got == 0, what);
	if (got)
		return NULL;
	void *mem = mmap(NULL, r->nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(mem != MAP_FAILED, "mmap");
	return mem == MAP_FAILED ? NULL : mem;
}

struct later { const char *name; int ms; };

static void *link_up_later(void *arg)
{
	struct later *l = arg;
	usleep((useconds_t)l->ms * 1000);
	set_link(l->name, 1);
	return NULL;
}

/* §5.9, §6, §10: a link that is down locks the rings; nothing fails. */
static int linkdown(int fd, const char *name)
{
	char what[256];
	struct nmreq_register r;
	void *mem = register_and_map(fd, name, NR_REG_ALL_NIC, 0, "", &r);
	if (!mem)
		return 1;
	struct netmap_if *nifp = nmd_if(mem, r.nr_offset);
	struct netmap_ring *tx = nmd_txring(nifp, 0);
	check(ioctl(fd, NIOCTXSYNC, NULL) == 0 && ioctl(fd, NIOCRXSYNC, NULL) == 0, "syncs succeed while the link is up");
	check(set_link(name, 0) == 0, "link set down (SIOCSIFFLAGS)");
	usleep(500000);   /* the daemon's link monitor sees it */

	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	double t0 = now();
	int n = poll(&p, 1, 300);
	snprintf(what, sizeof what,
		 "§6: poll(POLLIN|POLLOUT, 300 ms) with the link down: sleeps, no POLLERR (got %d, revents 0x%x, %.3f s)", n,
		 p.revents, now() - t0);
	check(n == 0 && now() - t0 > 0.25, what);
	/* a frame waits on the TX ring meanwhile */
	struct netmap_slot *sl = &tx->slot[tx->head];
	char *b = nmd_buf(tx, sl->buf_idx);
	memset(b, 0xff, 6);
	memset(b + 6, 0x02, 6);
	b[12] = (char)0x88;
	b[13] = (char)0xb5;
	memset(b + 14, 0x5a, 46);
	sl->len = 60;
	tx->head = tx->cur = nmd_next(tx, tx->head);
	int e = ioctl(fd, NIOCTXSYNC, NULL) == 0 ? 0 : errno;
	snprintf(what, sizeof what, "§5.9: NIOCTXSYNC with the link down: no EIO (got %s)", e ? strerror(e) : "success");
	check(e == 0, what);
	e = ioctl(fd, NIOCRXSYNC, NULL) == 0 ? 0 : errno;
	snprintf(what, sizeof what, "§5.9: NIOCRXSYNC with the link down: no EIO (got %s)", e ? strerror(e) : "success");
	check(e == 0, what);

	/* the link comes back while poll sleeps: poll wakes, POLLOUT */
	struct later l = { name, 400 };
	pthread_t th;
	pthread_create(&th, NULL, link_up_later, &l);
	p.events = POLLOUT;
	p.revents = 0;
	t0 = now();
	n = poll(&p, 1, 5000);
	double dt = now() - t0;
	pthread_join(th, NULL);
	snprintf(what, sizeof what,
		 "§6: poll(POLLOUT, 5 s) wakes when the link comes back after 0.4 s: got %d, revents 0x%x after %.3f s", n,
		 p.revents, dt);
	check(n == 1 && p.revents == POLLOUT && dt >= 0.35 && dt < 4.0, what);
	e = ioctl(fd, NIOCTXSYNC, NULL) == 0 ? 0 : errno;
	snprintf(what, sizeof what, "NIOCTXSYNC after the link is back: %s, TX ring fully reclaimed (%u free)",
		 e ? strerror(e) : "success", nmd_space(tx));
	check(e == 0 && nmd_space(tx) == tx->num_slots - 1, what);
	return 0;
}

/* A raw socket for ethertype 0x88b5 on IF in the network namespace NS. */
static int peer_socket(const char *ns, const char *ifname)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), other = open(ns, O_RDONLY | O_CLOEXEC);
	if (self < 0 || other < 0 || setns(other, CLONE_NEWNET) != 0) {
		perror(ns);
		exit(1);
	}
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x88b5));
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b5),
				   .sll_ifindex = (int)if_nametoindex(ifname) };
	if (s < 0 || !sll.sll_ifindex || bind(s, (struct sockaddr *)&sll, sizeof sll) != 0) {
		perror(ifname);
		exit(1);
	}
	if (setns(self, CLONE_NEWNET) != 0) {
		perror("setns back");
		exit(1);
	}
	close(self);
	close(other);
	return s;
}

/* §4.6, §5.5: bad TX slots go out the way netmap sends them. */
static int badslots(int fd, const char *name, const char *ns, const char *peer_if)
{
	char what[256];
	int s = peer_socket(ns, peer_if);
	struct nmreq_register r;
	void *mem = register_and_map(fd, name, NR_REG_ONE_NIC, NR_TX_RINGS_ONLY, ", TX ring 0 only", &r);
	if (!mem)
		return 1;
	struct netmap_ring *tx = nmd_txring(nmd_if(mem, r.nr_offset), 0);
	static const char zero_tag[] = "netmapd buffer zero";
	/* buffer 0, which an index past the pool stands for */
	char *b0 = nmd_buf(tx, 0);
	memset(b0, 0xff, 6);
	memset(b0 + 6, 0x02, 6);
	b0[12] = (char)0x88;
	b0[13] = (char)0xb5;
	memset(b0 + 14, 0, 46);
	memcpy(b0 + 14, zero_tag, sizeof zero_tag);
	uint32_t i0 = tx->head, i1 = nmd_next(tx, i0);
	char *b1 = nmd_buf(tx, tx->slot[i1].buf_idx);
	memcpy(b1, b0, 14);
	for (int j = 14; j < 2048; j++)
		b1[j] = (char)(j * 7);
	tx->slot[i0].buf_idx = 0xfffffff0u;
	tx->slot[i0].len = 60;
	tx->slot[i0].flags = 0;
	tx->slot[i1].len = 3000;
	tx->slot[i1].flags = 0;
	tx->head = tx->cur = nmd_next(tx, i1);
	check(ioctl(fd, NIOCTXSYNC, NULL) == 0, "NIOCTXSYNC with a buffer index past the pool and a length of 3000");
	int zero_ok = 0, long_ok = 0, other = 0;
	static char rx[4096];
	double end = now() + 3.0;
	while (now() < end && !(zero_ok && long_ok)) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = recv(s, rx, sizeof rx, 0);
		if (n == 60 && !memcmp(rx, b0, 60))
			zero_ok = 1;
		else if (n == 2048 && !memcmp(rx, b1, 2048))
			long_ok = 1;
		else
			other++;
	}
	check(zero_ok, "§4.6: the slot naming buffer 0xfffffff0 went out as buffer 0's 60 bytes");
	check(long_ok, "§5.5: the slot of length 3000 went out cut to the 2048-byte buffer");
	snprintf(what, sizeof what, "nothing else of ours arrived (%d other frames)", other);
	check(other == 0, what);
	close(s);
	/* held until told, so that the port's counters can be read */
	printf("ready\n");
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	return 0;
}

/* netmapd's control socket: one "status" line, the JSON reply on stdout. */
static int status(const char *path)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0 || write(s, "status\n", 7) != 7) {
		perror(path);
		return 1;
	}
	static char buf[1 << 20];
	size_t n = 0;
	while (n < sizeof buf - 1) {
		ssize_t k = read(s, buf + n, sizeof buf - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (memchr(buf + n - k, '\n', (size_t)k))
			break;
	}
	fwrite(buf, 1, n, stdout);
	close(s);
	return n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "status"))
		return status(argv[2]);
	if (argc < 4) {
		fprintf(stderr, "usage: see pkt_errors.c\n");
		return 2;
	}
	const char *cmd = argv[1], *dev = argv[2], *name = argv[3];
	char what[256];
	int fd = open_dev(dev);
	if (!strcmp(cmd, "register") && argc >= 5) {
		struct nmreq_register r;
		memset(&r, 0, sizeof r);
		r.nr_mode = NR_REG_ALL_NIC;
		if (argc >= 6 && !strcmp(argv[5], "rx"))
			r.nr_flags = NR_RX_RINGS_ONLY;
		if (argc >= 6 && !strcmp(argv[5], "tx"))
			r.nr_flags = NR_TX_RINGS_ONLY;
		int got = ctrl(fd, name, NETMAP_REQ_REGISTER, &r);
		snprintf(what, sizeof what, "REGISTER %s%s%s: want %s, got %s", name, argc >= 6 ? " " : "",
			 argc >= 6 ? argv[5] : "", argv[4], got ? strerror(got) : "success");
		check(got == errno_named(argv[4]), what);
	} else if (!strcmp(cmd, "info") && argc >= 5) {
		struct nmreq_port_info_get r;
		memset(&r, 0, sizeof r);
		int got = ctrl(fd, name, NETMAP_REQ_PORT_INFO_GET, &r);
		snprintf(what, sizeof what, "PORT_INFO_GET %s: want %s, got %s", name, argv[4],
			 got ? strerror(got) : "success");
		check(got == errno_named(argv[4]), what);
		if (!got) {
			snprintf(what, sizeof what, "PORT_INFO_GET %s: %u/%u rings of %u/%u slots, %u/%u host rings", name,
				 r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots, r.nr_rx_slots, r.nr_host_tx_rings,
				 r.nr_host_rx_rings);
			check(r.nr_tx_rings >= 1 && r.nr_rx_rings >= 1 && r.nr_host_tx_rings == 1 && r.nr_host_rx_rings == 1,
			      what);
		}
	} else if ((!strcmp(cmd, "ginfo") || !strcmp(cmd, "regif")) && argc >= 5) {
		struct nmreq r;
		memset(&r, 0, sizeof r);
		snprintf(r.nr_name, sizeof r.nr_name, "%s", name);
		r.nr_version = NETMAP_API;
		r.nr_flags = NR_REG_ALL_NIC;
		int reg = !strcmp(cmd, "regif");
		int got = ioctl(fd, reg ? NIOCREGIF : NIOCGINFO, &r) == 0 ? 0 : errno;
		snprintf(what, sizeof what, "%s %s: want %s, got %s", reg ? "NIOCREGIF" : "NIOCGINFO", name, argv[4],
			 got ? strerror(got) : "success");
		check(got == errno_named(argv[4]), what);
	} else if (!strcmp(cmd, "vanish")) {
		struct nmreq_register r;
		if (!register_and_map(fd, name, NR_REG_ALL_NIC, 0, " before deletion", &r))
			return 1;
		check(ioctl(fd, NIOCTXSYNC, NULL) == 0 && ioctl(fd, NIOCRXSYNC, NULL) == 0, "syncs succeed while the interface exists");
		printf("ready\n");
		fflush(stdout);
		char line[64];
		if (!fgets(line, sizeof line, stdin))
			return 1;
		int tx = ioctl(fd, NIOCTXSYNC, NULL) == 0 ? 0 : errno;
		snprintf(what, sizeof what, "NIOCTXSYNC after deletion: want EIO, got %s", tx ? strerror(tx) : "success");
		check(tx == EIO, what);
		int rx = ioctl(fd, NIOCRXSYNC, NULL) == 0 ? 0 : errno;
		snprintf(what, sizeof what, "NIOCRXSYNC after deletion: want EIO, got %s", rx ? strerror(rx) : "success");
		check(rx == EIO, what);
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
		int n = poll(&p, 1, 2000);
		snprintf(what, sizeof what, "poll after deletion: want POLLERR, got %d revents 0x%x", n, p.revents);
		check(n == 1 && (p.revents & POLLERR), what);
	} else if (!strcmp(cmd, "linkdown")) {
		linkdown(fd, name);
	} else if (!strcmp(cmd, "badslots") && argc >= 6) {
		badslots(fd, name, argv[4], argv[5]);
	} else {
		fprintf(stderr, "usage: see pkt_errors.c\n");
		return 2;
	}
	close(fd);
	return failed;
}
