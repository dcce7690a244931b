/*
 * nmd_port.h: open a netmap port the way netmap programs do (NIOCCTRL
 * REGISTER, mmap of nr_memsize bytes), for nmd-send and nmd-recv. Only the
 * project's ABI header is used.
 */
#ifndef NMD_PORT_H
#define NMD_PORT_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"
#include "nmd_clock.h"

struct nmd_port {
	int fd;
	void *mem;
	uint64_t memsize;
	struct netmap_if *nifp;
	unsigned first_tx, last_tx, first_rx, last_rx; /* [first, last) bound NIC rings */
	struct nmreq_register reg;
};

/* Registers `name` ("netmap:" prefix optional; a "-N" suffix binds NIC ring
 * pair N only) on `dev`, direction-only with NR_TX_RINGS_ONLY /
 * NR_RX_RINGS_ONLY in `flags`, asking for `extra` extra buffers (chained
 * from nifp->ni_bufs_head). Returns 0 or an errno, with a message. */
static inline int nmd_port_open_extra(struct nmd_port *p, const char *dev, const char *name, uint64_t flags,
				      uint32_t extra)
{
	memset(p, 0, sizeof *p);
	p->reg.nr_extra_bufs = extra;
	if (strncmp(name, "netmap:", 7) == 0)
		name += 7;
	char ifname[NETMAP_REQ_IFNAMSIZ];
	snprintf(ifname, sizeof ifname, "%s", name);
	int ring = -1;
	char *dash = strrchr(ifname, '-');
	if (dash && dash[1] >= '0' && dash[1] <= '9') {
		ring = atoi(dash + 1);
		*dash = 0;
	}
	p->fd = open(dev, O_RDWR);
	if (p->fd < 0) {
		int e = errno;
		fprintf(stderr, "open %s: %s\n", dev, strerror(e));
		return e;
	}
	struct nmreq_header hdr;
	memset(&hdr, 0, sizeof hdr);
	hdr.nr_version = NETMAP_API;
	hdr.nr_reqtype = NETMAP_REQ_REGISTER;
	snprintf(hdr.nr_name, sizeof hdr.nr_name, "%s", ifname);
	p->reg.nr_mode = ring >= 0 ? NR_REG_ONE_NIC : NR_REG_ALL_NIC;
	p->reg.nr_ringid = ring >= 0 ? (uint16_t)ring : 0;
	p->reg.nr_flags = flags;
	hdr.nr_body = (uintptr_t)&p->reg;
	if (ioctl(p->fd, NIOCCTRL, &hdr) != 0) {
		int e = errno;
		fprintf(stderr, "register %s: %s\n", ifname, strerror(e));
		close(p->fd);
		return e;
	}
	p->memsize = p->reg.nr_memsize;
	p->mem = mmap(NULL, p->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->mem == MAP_FAILED) {
		int e = errno;
		fprintf(stderr, "mmap: %s\n", strerror(e));
		close(p->fd);
		return e;
	}
	p->nifp = nmd_if(p->mem, p->reg.nr_offset);
	unsigned nt = p->nifp->ni_tx_rings, nr = p->nifp->ni_rx_rings;
	p->first_tx = ring >= 0 ? (unsigned)ring : 0;
	p->last_tx = ring >= 0 ? (unsigned)ring + 1 : nt;
	p->first_rx = ring >= 0 ? (unsigned)ring : 0;
	p->last_rx = ring >= 0 ? (unsigned)ring + 1 : nr;
	if (flags & NR_RX_RINGS_ONLY)
		p->first_tx = p->last_tx = 0;
	if (flags & NR_TX_RINGS_ONLY)
		p->first_rx = p->last_rx = 0;
	return 0;
}

static inline int nmd_port_open(struct nmd_port *p, const char *dev, const char *name, uint64_t flags)
{
	return nmd_port_open_extra(p, dev, name, flags, 0);
}

static inline void nmd_port_close(struct nmd_port *p)
{
	if (p->mem && p->mem != MAP_FAILED)
		munmap(p->mem, p->memsize);
	if (p->fd >= 0)
		close(p->fd);
}

/* "12.3 M" style. */
static inline const char *nmd_si(double v, char *buf, size_t n)
{
	const char *u = "";
	if (v >= 1e9) {
		v /= 1e9;
		u = " G";
	} else if (v >= 1e6) {
		v /= 1e6;
		u = " M";
	} else if (v >= 1e3) {
		v /= 1e3;
		u = " k";
	} else {
		u = " ";
	}
	snprintf(buf, n, "%.2f%s", v, u);
	return buf;
}

#endif
