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
#include <sys/ioctl.h>
#include <sys/mman.h>
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

int main(int argc, char **argv)
{
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
		memset(&r, 0, sizeof r);
		r.nr_mode = NR_REG_ALL_NIC;
		int got = ctrl(fd, name, NETMAP_REQ_REGISTER, &r);
		snprintf(what, sizeof what, "REGISTER %s before deletion", name);
		check(got == 0, what);
		if (got)
			return 1;
		void *mem = mmap(NULL, r.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		check(mem != MAP_FAILED, "mmap");
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
	} else {
		fprintf(stderr, "usage: see pkt_errors.c\n");
		return 2;
	}
	close(fd);
	return failed;
}
