/*
 * nmd_client.h: the project's C client library for netmap devices, one
 * header for the test programs (Tests/), the traffic tools (tools/) and the
 * benchmarks (bench/). Only the project's ABI header is used, so everything
 * built on it runs unchanged against any netmap device.
 *
 *   clocks     nmd_now (monotonic seconds), nmd_cpu (this process's CPU)
 *   requests   nmd_req_header, nmd_register: API 14 NIOCCTRL REGISTER
 *   ports      struct nmd_port: open a port the way netmap programs do
 *              (NIOCCTRL REGISTER, mmap of nr_memsize bytes), close it
 *   frames     nmdf_*: the test-frame format of nmd-send, nmd-recv, the net
 *              tests' socket peer and the benchmarks (below)
 *   output     nmd_si: "12.3 M" style numbers
 *
 * The device tests add their reporting and pool-statistics helpers on top
 * (Tests/device/nm_common.h).
 *
 * Test frames:
 *
 * A frame is an Ethernet header with ethertype 0x88b5 (IEEE "local
 * experimental": no host stack answers it), then a 20-byte test header and a
 * payload that is a function of the sequence number and the offset, so that
 * a receiver can check every byte without knowing what was sent:
 *
 *   0  dst MAC, src MAC, 0x88b5
 *   14 "NMDT"   magic
 *   18 u32      stream id (sender's choice; receivers ignore other streams)
 *   22 u64      sequence number, from 0
 *   30 u16      frame length (bytes on the wire, without FCS)
 *   32 u16      header checksum (sum of bytes 14..31, for a quick sanity check)
 *   34 ...      payload: byte at offset j = nmdf_byte(seq, j)
 *
 * Frame lengths come from a size spec "N" or "MIN-MAX": with a range, the
 * length of frame `seq` is MIN + hash(seq) mod (MAX - MIN + 1), so receivers
 * can check it too. Frames are at least 60 bytes (Ethernet's minimum).
 */
#ifndef NMD_CLIENT_H
#define NMD_CLIENT_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"

/* ---- clocks ---- */

/* Monotonic seconds. */
static inline double nmd_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* User + system CPU seconds of this process. */
static inline double nmd_cpu(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
	       (double)u.ru_stime.tv_usec * 1e-6;
}

/* ---- requests ---- */

/* An API 14 request header for `type` on port `name` (NULL: none) with
 * `body`. */
static inline void nmd_req_header(struct nmreq_header *h, uint16_t type, const char *name, void *body)
{
	memset(h, 0, sizeof(*h));
	h->nr_version = NETMAP_API;
	h->nr_reqtype = type;
	if (name)
		snprintf(h->nr_name, sizeof(h->nr_name), "%s", name);
	h->nr_body = (uintptr_t)body;
}

/* NIOCCTRL REGISTER of `name` on `fd`, asking for `host_rings` host ring
 * pairs (0: the port's default); returns 0 or the errno. The request body as
 * the device left it goes to `out` (may be NULL). */
static inline int nmd_register_hosts(int fd, const char *name, uint32_t mode, uint16_t ringid, uint64_t flags,
				     uint32_t extra, uint16_t host_rings, struct nmreq_register *out)
{
	struct nmreq_header h;
	struct nmreq_register r;
	memset(&r, 0, sizeof(r));
	r.nr_mode = mode;
	r.nr_ringid = ringid;
	r.nr_flags = flags;
	r.nr_extra_bufs = extra;
	r.nr_host_tx_rings = host_rings;
	r.nr_host_rx_rings = host_rings;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, name, &r);
	int e = ioctl(fd, NIOCCTRL, &h) == 0 ? 0 : errno;
	if (out)
		*out = r;
	return e;
}

static inline int nmd_register(int fd, const char *name, uint32_t mode, uint16_t ringid, uint64_t flags,
			       uint32_t extra, struct nmreq_register *out)
{
	return nmd_register_hosts(fd, name, mode, ringid, flags, extra, 0, out);
}

/* ---- ports ---- */

struct nmd_port {
	int fd;
	void *mem;
	uint64_t memsize;
	struct netmap_if *nifp;
	unsigned first_tx, last_tx, first_rx, last_rx; /* [first, last) bound NIC rings */
	struct nmreq_register reg;
};

/* Opens `dev`, registers `name` exactly as given with `mode` / `ringid`
 * (host_rings as in nmd_register_hosts) and maps the region. Returns 0 or
 * an errno, with a message; p->first_* / last_* are left 0. */
static inline int nmd_port_open_mode(struct nmd_port *p, const char *dev, const char *name, uint32_t mode,
				     uint16_t ringid, uint64_t flags, uint32_t extra, uint16_t host_rings)
{
	memset(p, 0, sizeof *p);
	p->fd = open(dev, O_RDWR);
	if (p->fd < 0) {
		int e = errno;
		fprintf(stderr, "open %s: %s\n", dev, strerror(e));
		return e;
	}
	int e = nmd_register_hosts(p->fd, name, mode, ringid, flags, extra, host_rings, &p->reg);
	if (e) {
		fprintf(stderr, "register %s (mode %u): %s\n", name, mode, strerror(e));
		close(p->fd);
		return e;
	}
	p->memsize = p->reg.nr_memsize;
	p->mem = mmap(NULL, p->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (p->mem == MAP_FAILED) {
		e = errno;
		fprintf(stderr, "mmap: %s\n", strerror(e));
		close(p->fd);
		return e;
	}
	p->nifp = nmd_if(p->mem, p->reg.nr_offset);
	return 0;
}

/* Registers `name` ("netmap:" prefix optional; a "-N" suffix binds NIC ring
 * pair N only; a "/FLAGS" suffix as libnetmap's: r, t, z monitors, x
 * exclusive) on `dev`, direction-only with NR_TX_RINGS_ONLY /
 * NR_RX_RINGS_ONLY in `flags`, asking for `extra` extra buffers (chained
 * from nifp->ni_bufs_head). Returns 0 or an errno, with a message. */
static inline int nmd_port_open_extra(struct nmd_port *p, const char *dev, const char *name, uint64_t flags,
				      uint32_t extra)
{
	memset(p, 0, sizeof *p);
	if (strncmp(name, "netmap:", 7) == 0)
		name += 7;
	char ifname[NETMAP_REQ_IFNAMSIZ];
	snprintf(ifname, sizeof ifname, "%s", name);
	/* libnetmap's "/FLAGS" suffix, after any ring spec: r t z monitors, x exclusive. */
	char *slash = strrchr(ifname, '/');
	if (slash) {
		for (const char *f = slash + 1; *f; f++)
			flags |= *f == 'r' ? NR_MONITOR_RX : *f == 't' ? NR_MONITOR_TX : *f == 'z' ? NR_ZCOPY_MON :
			    *f == 'x' ? NR_EXCLUSIVE : 0;
		*slash = 0;
	}
	int ring = -1;
	char *dash = strrchr(ifname, '-');
	if (dash && dash[1] >= '0' && dash[1] <= '9') {
		ring = atoi(dash + 1);
		*dash = 0;
	}
	int e = nmd_port_open_mode(p, dev, ifname, ring >= 0 ? NR_REG_ONE_NIC : NR_REG_ALL_NIC,
				   ring >= 0 ? (uint16_t)ring : 0, flags, extra, 0);
	if (e)
		return e;
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

/* ---- test frames ---- */

#define NMDF_ETHERTYPE 0x88b5
#define NMDF_HDR 34
#define NMDF_MIN 60
#define NMDF_MAX 1514

struct nmdf_sizes {
	unsigned min, max;
};

/* Parses "N" or "MIN-MAX"; returns 0 or -1. */
static inline int nmdf_parse_sizes(const char *s, struct nmdf_sizes *z)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b = a;
	if (*end == '-')
		b = strtoul(end + 1, &end, 10);
	if (*end || a < NMDF_MIN || b < a || b > 65535)
		return -1;
	z->min = (unsigned)a;
	z->max = (unsigned)b;
	return 0;
}

static inline uint64_t nmdf_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline unsigned nmdf_len(const struct nmdf_sizes *z, uint64_t seq)
{
	if (z->min == z->max)
		return z->min;
	return z->min + (unsigned)(nmdf_mix(seq) % (z->max - z->min + 1));
}

static inline uint8_t nmdf_byte(uint64_t seq, unsigned j)
{
	return (uint8_t)(seq * 131 + j * 7 + (j >> 8) * 13);
}

static inline void nmdf_put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t nmdf_hsum(const uint8_t *f)
{
	unsigned s = 0;
	for (int i = 14; i < 32; i++)
		s += f[i];
	return (uint16_t)s;
}

/* Writes frame `seq` (length nmdf_len) into `f`; returns its length. */
static inline unsigned nmdf_build(uint8_t *f, const struct nmdf_sizes *z, uint64_t seq, uint32_t stream,
				  const uint8_t dst[6], const uint8_t src[6])
{
	unsigned len = nmdf_len(z, seq);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	nmdf_put16(f + 12, NMDF_ETHERTYPE);
	memcpy(f + 14, "NMDT", 4);
	memcpy(f + 18, &stream, 4);
	memcpy(f + 22, &seq, 8);
	uint16_t l16 = (uint16_t)len;
	memcpy(f + 30, &l16, 2);
	uint16_t hs = nmdf_hsum(f);
	memcpy(f + 32, &hs, 2);
	for (unsigned j = NMDF_HDR; j < len; j++)
		f[j] = nmdf_byte(seq, j);
	return len;
}

enum nmdf_verdict { NMDF_OK, NMDF_OTHER, NMDF_BAD };

/* Checks a received frame: NMDF_OTHER for frames that are not ours (other
 * ethertype, magic or stream), NMDF_BAD for ours with a wrong length or
 * byte (`why` says which), else NMDF_OK with *seq set. */
static inline enum nmdf_verdict nmdf_check(const uint8_t *f, unsigned len, const struct nmdf_sizes *z,
					   uint32_t stream, uint64_t *seq, const char **why)
{
	if (len < NMDF_HDR || f[12] != (NMDF_ETHERTYPE >> 8) || f[13] != (NMDF_ETHERTYPE & 0xff) ||
	    memcmp(f + 14, "NMDT", 4) != 0)
		return NMDF_OTHER;
	uint32_t st;
	memcpy(&st, f + 18, 4);
	if (st != stream)
		return NMDF_OTHER;
	uint16_t hs, l16;
	memcpy(&hs, f + 32, 2);
	if (hs != nmdf_hsum(f)) {
		*why = "header checksum";
		return NMDF_BAD;
	}
	memcpy(seq, f + 22, 8);
	memcpy(&l16, f + 30, 2);
	if (l16 != len || len != nmdf_len(z, *seq)) {
		*why = "length";
		return NMDF_BAD;
	}
	for (unsigned j = NMDF_HDR; j < len; j++)
		if (f[j] != nmdf_byte(*seq, j)) {
			*why = "payload";
			return NMDF_BAD;
		}
	return NMDF_OK;
}

/* Parses "aa:bb:cc:dd:ee:ff"; returns 0 or -1. */
static inline int nmdf_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* Sequence numbers seen: duplicates and gaps, with no order assumed
 * (several RX rings deliver flows in parallel). */
struct nmdf_seen {
	uint8_t *bits;
	uint64_t count;
	uint64_t unique, dups, beyond, reordered, last;
};

static inline int nmdf_seen_init(struct nmdf_seen *s, uint64_t count)
{
	memset(s, 0, sizeof *s);
	s->count = count;
	s->bits = calloc((size_t)(count / 8 + 1), 1);
	return s->bits ? 0 : -1;
}

static inline void nmdf_seen_add(struct nmdf_seen *s, uint64_t seq)
{
	if (s->unique + s->dups > 0 && seq < s->last)
		s->reordered++;
	s->last = seq;
	if (seq >= s->count) {
		s->beyond++;
		return;
	}
	uint8_t m = (uint8_t)(1u << (seq & 7));
	if (s->bits[seq >> 3] & m) {
		s->dups++;
		return;
	}
	s->bits[seq >> 3] |= m;
	s->unique++;
}

#endif /* NMD_CLIENT_H */
