/*
 * net/netmap_user.h: what netmap programs use to reach the shared rings,
 * as netmapd provides it. Written by the netmapd project from its ABI notes
 * (docs/netmap-abi.md, §4.5 for the address arithmetic, §8.3 for the
 * classic nm_open interface); the names are netmap's because programs use
 * them, the code and text are netmapd's.
 *
 * Always available:
 *   NETMAP_IF(base, ofs)          the netmap_if at byte ofs of the mapping
 *   NETMAP_TXRING(nifp, i)        TX ring i (host TX rings follow the NIC ones)
 *   NETMAP_RXRING(nifp, i)        RX ring i (likewise)
 *   NETMAP_BUF(ring, idx)         the buffer of index idx
 *   NETMAP_BUF_IDX(ring, buf)     the index of a buffer address
 *   nm_ring_next, nm_ring_empty, nm_ring_space, nm_tx_pending, nm_pkt_copy
 *
 * With NETMAP_WITH_LIBS defined before the include, the classic header-only
 * client library as well (no library to link):
 *   nm_open(name, req, flags, parent)   "netmap:IF", "netmap:IF-N" (one NIC
 *       ring), "netmap:IF^" (host rings), "netmap:IF*" (NIC and host),
 *       "netmap:NAME{N" / "netmap:NAME}N" (pipe master / slave), "valeX:P";
 *       then "/" flags (x exclusive, z t r monitors, R T one direction) and
 *       "@N" memory id. open(/dev/netmap), NIOCREGIF, mmap. NULL with errno
 *       0 for a name that is no netmap name, NULL with the errno otherwise.
 *   nm_close(d)                         munmap (if this descriptor mapped)
 *                                       and close
 *   nm_inject(d, buf, len)              copy one frame into the next free TX
 *                                       slot; returns len, or 0 when every
 *                                       bound TX ring is full (no syscall:
 *                                       poll or NIOCTXSYNC sends it)
 *   nm_dispatch(d, cnt, cb, arg)        call cb for up to cnt (<= 0: all)
 *                                       received frames, then release them
 *   nm_nextpkt(d, hdr)                  the next received frame, or NULL; it
 *                                       stays valid until the next sync
 * NETMAP_DEVICE (before the include) changes the device path nm_open opens
 * (default "/dev/netmap").
 */
#ifndef _NET_NETMAP_USER_H_
#define _NET_NETMAP_USER_H_

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <net/if.h>
#include <net/netmap.h>

/* ---- address arithmetic (§4.5) ---- */

#define _NETMAP_OFFSET(type, ptr, offset) \
	((type)(void *)((char *)(ptr) + (offset)))

#define NETMAP_IF(_base, _ofs) _NETMAP_OFFSET(struct netmap_if *, _base, _ofs)

#define NETMAP_TXRING(nifp, index) \
	_NETMAP_OFFSET(struct netmap_ring *, nifp, (nifp)->ring_ofs[index])

#define NETMAP_RXRING(nifp, index) \
	_NETMAP_OFFSET(struct netmap_ring *, nifp, \
	    (nifp)->ring_ofs[(index) + (nifp)->ni_tx_rings + (nifp)->ni_host_tx_rings])

#define NETMAP_BUF(ring, index) \
	((char *)(ring) + (ring)->buf_ofs + ((size_t)(index) * (ring)->nr_buf_size))

#define NETMAP_BUF_IDX(ring, buf) \
	((uint32_t)(((char *)(buf) - ((char *)(ring) + (ring)->buf_ofs)) / (ring)->nr_buf_size))

/* Data offsets (the OFFSETS option): the masked bits of a slot's ptr. */
#define NETMAP_ROFFSET(ring, slot) ((slot)->ptr & (ring)->offset_mask)
#define NETMAP_WOFFSET(ring, slot, offset) \
	do { (slot)->ptr = ((slot)->ptr & ~(ring)->offset_mask) | \
	    ((uint64_t)(offset) & (ring)->offset_mask); } while (0)
#define NETMAP_BUF_OFFSET(ring, slot) \
	(NETMAP_BUF(ring, (slot)->buf_idx) + NETMAP_ROFFSET(ring, slot))

/* The slot after i, wrapping at num_slots (which need not be a power of 2). */
static inline uint32_t
nm_ring_next(struct netmap_ring *r, uint32_t i)
{
	return i + 1 == r->num_slots ? 0 : i + 1;
}

/* Slots between cur and tail: what the program may fill (TX) or read (RX). */
static inline uint32_t
nm_ring_space(struct netmap_ring *r)
{
	int64_t n = (int64_t)r->tail - (int64_t)r->cur;
	return (uint32_t)(n < 0 ? n + r->num_slots : n);
}

static inline int
nm_ring_empty(struct netmap_ring *r)
{
	return r->cur == r->tail;
}

/* TX slots handed over and not yet reclaimed. */
static inline int
nm_tx_pending(struct netmap_ring *r)
{
	return nm_ring_next(r, r->tail) != r->head;
}

/* A frame copy for buffers of the pool (plain memcpy: the buffers are
 * cache-line aligned and never overlap). */
static inline void
nm_pkt_copy(const void *src, void *dst, int len)
{
	if (len > 0)
		memcpy(dst, src, (size_t)len);
}

#ifdef NETMAP_WITH_LIBS

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef NETMAP_DEVICE
#define NETMAP_DEVICE "/dev/netmap"
#endif

/* Logging in the style netmap programs use: D always, RD at most
 * `lps` lines per second, ND never. */
#ifndef D
#define D(_fmt, ...) do { \
	struct timeval _t0; gettimeofday(&_t0, NULL); \
	fprintf(stderr, "%03d.%06d %s [%d] " _fmt "\n", (int)(_t0.tv_sec % 1000), \
	    (int)_t0.tv_usec, __func__, __LINE__, ##__VA_ARGS__); \
} while (0)
#endif
#ifndef RD
#define RD(lps, _fmt, ...) do { \
	static int _rd_n; static time_t _rd_sec; struct timeval _rd_t; \
	gettimeofday(&_rd_t, NULL); \
	if (_rd_t.tv_sec != _rd_sec) { _rd_sec = _rd_t.tv_sec; _rd_n = 0; } \
	if (_rd_n++ < (lps)) D(_fmt, ##__VA_ARGS__); \
} while (0)
#endif
#ifndef ND
#define ND(_fmt, ...) do {} while (0)
#endif

/* What nm_dispatch passes to its callback and nm_nextpkt fills. The first
 * three fields have the layout of libpcap's struct pcap_pkthdr, so a pcap
 * handler can be called with it. */
struct nm_pkthdr {
	struct timeval ts;
	uint32_t caplen;
	uint32_t len;
	uint64_t flags;          /* NM_MORE_PKTS: more slots of this frame follow */
	struct nm_desc *d;
	struct netmap_slot *slot;
	uint8_t *buf;
};
#define NM_MORE_PKTS 1

struct nm_stat {
	unsigned int ps_recv;
	unsigned int ps_drop;
	unsigned int ps_ifdrop;
};

#define NM_ERRBUF_SIZE 512

/* A port opened with nm_open. */
struct nm_desc {
	struct nm_desc *self;        /* == the descriptor itself while valid */
	int fd;
	void *mem;                   /* the mapping (maybe the parent's) */
	uint64_t memsize;
	int done_mmap;               /* this descriptor mapped mem */
	struct netmap_if * const nifp;
	uint16_t first_tx_ring, last_tx_ring, cur_tx_ring;
	uint16_t first_rx_ring, last_rx_ring, cur_rx_ring;
	struct nmreq req;            /* what NIOCREGIF was given and answered */
	struct nm_pkthdr hdr;
	const struct netmap_ring *some_ring;
	const void *buf_start;
	const void *buf_end;
	int snaplen;
	int promisc;
	int to_ms;
	char *errbuf;
	uint32_t if_flags;
	uint32_t if_reqcap;
	uint32_t if_curcap;
	struct nm_stat st;
	char msg[NM_ERRBUF_SIZE];
};

#define P2NMD(p)          ((struct nm_desc *)(p))
#define IS_NETMAP_DESC(d) ((d) && P2NMD(d)->self == P2NMD(d))
#define NETMAP_FD(d)      (P2NMD(d)->fd)

typedef void (*nm_cb_t)(unsigned char *, const struct nm_pkthdr *, const unsigned char *d);

/* nm_open flags, besides NETMAP_NO_TX_POLL and NETMAP_DO_RX_POLL (which go
 * into nr_ringid): which parts of `req` (or of the parent's request) apply. */
#define NM_OPEN_NO_MMAP   0x040000  /* use the parent's mapping (same memory id) */
#define NM_OPEN_IFNAME    0x080000  /* the name comes from req, not from `name` */
#define NM_OPEN_ARG1      0x100000
#define NM_OPEN_ARG2      0x200000
#define NM_OPEN_ARG3      0x400000
#define NM_OPEN_RING_CFG  0x800000  /* ring and slot counts from req */

/* Reads a decimal number at *p; -1 when there is none. */
static inline long
nm_parse_num_(const char **p)
{
	long v = 0;
	if (!isdigit((unsigned char)**p))
		return -1;
	while (isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		if (v > 0xffff)
			return -1;
		(*p)++;
	}
	return v;
}

/* Fills req's name, mode, ring id, flags and memory id from a port name
 * (§8.3). Returns 0, or -1 with errno EINVAL (errno 0: no netmap name). */
static inline int
nm_parse_name_(const char *ifname, struct nmreq *req, char *err, size_t errlen)
{
	const char *p, *name;
	size_t namelen;
	long n;
	uint32_t mode = NR_REG_ALL_NIC, ringid = 0, flags = 0;
	int is_vale = 0;

	if (strncmp(ifname, "netmap:", 7) == 0) {
		name = ifname + 7;
	} else if (strncmp(ifname, "vale", 4) == 0) {
		name = ifname;
		is_vale = 1;
	} else {
		snprintf(err, errlen, "%s: not a netmap port name", ifname);
		errno = 0;
		return -1;
	}
	p = name;
	if (is_vale) {
		/* bridge and port: identifiers around one ':' */
		for (p = name + 4; *p && *p != ':'; p++)
			if (!isalnum((unsigned char)*p) && *p != '_')
				goto bad;
		if (*p != ':')
			goto bad;
		p++;
		if (!isalnum((unsigned char)*p) && *p != '_')
			goto bad;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
	} else {
		while (*p && !strchr("-*^{}/@", *p))
			p++;
	}
	namelen = (size_t)(p - name);
	if (namelen == 0 || namelen >= sizeof req->nr_name)
		goto bad;
	memset(req->nr_name, 0, sizeof req->nr_name);
	memcpy(req->nr_name, name, namelen);

	switch (*p) {
	case '^':
		mode = NR_REG_SW;
		p++;
		break;
	case '*':
		mode = NR_REG_NIC_SW;
		p++;
		break;
	case '-':
	case '{':
	case '}':
		mode = *p == '-' ? NR_REG_ONE_NIC : *p == '{' ? NR_REG_PIPE_MASTER : NR_REG_PIPE_SLAVE;
		p++;
		n = nm_parse_num_(&p);
		if (n < 0 || n >= NETMAP_RING_MASK)
			goto bad;
		ringid = (uint32_t)n;
		break;
	default:
		break;
	}
	while (*p) {
		if (*p == '/') {
			for (p++; *p && *p != '@' && *p != '/'; p++) {
				switch (*p) {
				case 'x': flags |= NR_EXCLUSIVE; break;
				case 'z': flags |= NR_ZCOPY_MON; break;
				case 't': flags |= NR_MONITOR_TX; break;
				case 'r': flags |= NR_MONITOR_RX; break;
				case 'R': flags |= NR_RX_RINGS_ONLY; break;
				case 'T': flags |= NR_TX_RINGS_ONLY; break;
				default: goto bad;
				}
			}
		} else if (*p == '@') {
			p++;
			n = nm_parse_num_(&p);
			if (n <= 0)
				goto bad;
			req->nr_arg2 = (uint16_t)n;
		} else {
			goto bad;
		}
	}
	req->nr_flags = mode | flags;
	req->nr_ringid = (uint16_t)ringid;
	return 0;
bad:
	snprintf(err, errlen, "%s: invalid netmap port name", ifname);
	errno = EINVAL;
	return -1;
}

/* Points d's ring range and buffer bounds into the mapping. */
static inline void
nm_set_rings_(struct nm_desc *d)
{
	struct netmap_if *nifp = NETMAP_IF(d->mem, d->req.nr_offset);
	uint32_t mode = d->req.nr_flags & NR_REG_MASK;
	uint16_t ring = d->req.nr_ringid & NETMAP_RING_MASK;

	*(struct netmap_if **)(uintptr_t)&d->nifp = nifp;
	switch (mode) {
	case NR_REG_SW:
		d->first_tx_ring = d->last_tx_ring = d->req.nr_tx_rings;
		d->first_rx_ring = d->last_rx_ring = d->req.nr_rx_rings;
		break;
	case NR_REG_NIC_SW:
		d->first_tx_ring = 0;
		d->last_tx_ring = d->req.nr_tx_rings;
		d->first_rx_ring = 0;
		d->last_rx_ring = d->req.nr_rx_rings;
		break;
	case NR_REG_ONE_NIC:
		d->first_tx_ring = d->last_tx_ring = ring;
		d->first_rx_ring = d->last_rx_ring = ring;
		break;
	case NR_REG_PIPE_MASTER:
	case NR_REG_PIPE_SLAVE:
		d->first_tx_ring = d->first_rx_ring = 0;
		d->last_tx_ring = d->req.nr_tx_rings ? d->req.nr_tx_rings - 1 : 0;
		d->last_rx_ring = d->req.nr_rx_rings ? d->req.nr_rx_rings - 1 : 0;
		break;
	default:
		d->first_tx_ring = d->first_rx_ring = 0;
		d->last_tx_ring = d->req.nr_tx_rings ? d->req.nr_tx_rings - 1 : 0;
		d->last_rx_ring = d->req.nr_rx_rings ? d->req.nr_rx_rings - 1 : 0;
		break;
	}
	d->cur_tx_ring = d->first_tx_ring;
	d->cur_rx_ring = d->first_rx_ring;
	/* A ring this descriptor did not bind has offset 0 (§4.3). */
	if (nifp->ring_ofs[d->first_rx_ring + nifp->ni_tx_rings + nifp->ni_host_tx_rings] != 0)
		d->some_ring = NETMAP_RXRING(nifp, d->first_rx_ring);
	else
		d->some_ring = NETMAP_TXRING(nifp, d->first_tx_ring);
	d->buf_start = NETMAP_BUF(d->some_ring, 0);
	d->buf_end = (char *)d->mem + d->memsize;
}

/* Whether TX (tx != 0) or RX ring i is bound by this descriptor. */
static inline int
nm_ring_bound_(const struct nm_desc *d, int tx, uint32_t i)
{
	const struct netmap_if *nifp = d->nifp;
	return nifp->ring_ofs[tx ? i : i + nifp->ni_tx_rings + nifp->ni_host_tx_rings] != 0;
}

static inline int nm_close(struct nm_desc *d);

static inline struct nm_desc *
nm_open(const char *ifname, const struct nmreq *req, uint64_t new_flags, const struct nm_desc *arg)
{
	struct nm_desc *d;
	const struct nm_desc *parent = arg;
	char err[NM_ERRBUF_SIZE];
	int saved;

	d = (struct nm_desc *)calloc(1, sizeof *d);
	if (d == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	d->self = d;
	d->fd = -1;
	if (req)
		d->req = *req;
	d->req.nr_version = NETMAP_API;
	d->req.nr_cmd = 0;
	if (!(new_flags & NM_OPEN_IFNAME)) {
		uint16_t memid = d->req.nr_arg2;
		d->req.nr_arg2 = 0;
		if (nm_parse_name_(ifname, &d->req, err, sizeof err) < 0) {
			saved = errno;
			free(d);
			errno = saved;
			return NULL;
		}
		if (d->req.nr_arg2 == 0)
			d->req.nr_arg2 = memid;
	}
	if (!(new_flags & NM_OPEN_RING_CFG)) {
		d->req.nr_tx_slots = d->req.nr_rx_slots = 0;
		d->req.nr_tx_rings = d->req.nr_rx_rings = 0;
	}
	if (parent) {
		if (!(new_flags & NM_OPEN_ARG1))
			d->req.nr_arg1 = parent->req.nr_arg1;
		if (!(new_flags & NM_OPEN_ARG2))
			d->req.nr_arg2 = parent->req.nr_arg2;
		if (!(new_flags & NM_OPEN_ARG3))
			d->req.nr_arg3 = parent->req.nr_arg3;
	}
	d->req.nr_ringid |= (uint16_t)(new_flags & (NETMAP_NO_TX_POLL | NETMAP_DO_RX_POLL));

	d->fd = open(NETMAP_DEVICE, O_RDWR);
	if (d->fd < 0)
		goto fail;
	if (ioctl(d->fd, NIOCREGIF, &d->req) < 0)
		goto fail;
	if ((new_flags & NM_OPEN_NO_MMAP) && parent && parent->req.nr_arg2 == d->req.nr_arg2) {
		d->mem = parent->mem;
		d->memsize = parent->memsize;
	} else {
		d->memsize = d->req.nr_memsize;
		d->mem = mmap(NULL, (size_t)d->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
		if (d->mem == MAP_FAILED) {
			d->mem = NULL;
			goto fail;
		}
		d->done_mmap = 1;
	}
	nm_set_rings_(d);
	return d;
fail:
	saved = errno;
	nm_close(d);
	errno = saved;
	return NULL;
}

static inline int
nm_close(struct nm_desc *d)
{
	if (d == NULL || d->self != d) {
		errno = EINVAL;
		return -1;
	}
	if (d->done_mmap && d->mem)
		munmap(d->mem, (size_t)d->memsize);
	if (d->fd >= 0)
		close(d->fd);
	d->self = NULL;
	free(d);
	return 0;
}

/* The mapping of an open descriptor (nm_open with NM_OPEN_NO_MMAP and no
 * parent leaves it to the caller). Returns 0 or an errno. */
static inline int
nm_mmap(struct nm_desc *d, const struct nm_desc *parent)
{
	if (d->done_mmap || d->mem)
		return EINVAL;
	if (parent && parent->req.nr_arg2 == d->req.nr_arg2) {
		d->mem = parent->mem;
		d->memsize = parent->memsize;
	} else {
		d->memsize = d->req.nr_memsize;
		d->mem = mmap(NULL, (size_t)d->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
		if (d->mem == MAP_FAILED) {
			d->mem = NULL;
			return errno;
		}
		d->done_mmap = 1;
	}
	nm_set_rings_(d);
	return 0;
}

static inline int
nm_inject(struct nm_desc *d, const void *buf, size_t size)
{
	uint32_t n = (uint32_t)(d->last_tx_ring - d->first_tx_ring + 1), k, ri = d->cur_tx_ring;

	for (k = 0; k < n; k++, ri = ri == d->last_tx_ring ? d->first_tx_ring : ri + 1) {
		struct netmap_ring *ring;
		struct netmap_slot *slot;
		uint32_t i;

		if (!nm_ring_bound_(d, 1, ri))
			continue;
		ring = NETMAP_TXRING(d->nifp, ri);
		if (size > ring->nr_buf_size || nm_ring_empty(ring))
			continue;
		i = ring->cur;
		slot = &ring->slot[i];
		nm_pkt_copy(buf, NETMAP_BUF(ring, slot->buf_idx), (int)size);
		slot->len = (uint16_t)size;
		slot->flags &= ~NS_MOREFRAG;
		ring->head = ring->cur = nm_ring_next(ring, i);
		d->cur_tx_ring = (uint16_t)ri;
		return (int)size;
	}
	return 0;
}

static inline int
nm_dispatch(struct nm_desc *d, int cnt, nm_cb_t cb, unsigned char *arg)
{
	uint32_t n = (uint32_t)(d->last_rx_ring - d->first_rx_ring + 1), k, ri = d->cur_rx_ring;
	int got = 0;

	if (cnt <= 0)
		cnt = -1;   /* everything there is */
	for (k = 0; k < n && got != cnt; k++, ri = ri == d->last_rx_ring ? d->first_rx_ring : ri + 1) {
		struct netmap_ring *ring;
		uint32_t i;

		if (!nm_ring_bound_(d, 0, ri))
			continue;
		ring = NETMAP_RXRING(d->nifp, ri);
		for (i = ring->cur; i != ring->tail && got != cnt; got++) {
			struct netmap_slot *slot = &ring->slot[i];
			uint8_t *b = (uint8_t *)NETMAP_BUF(ring, slot->buf_idx);

			d->hdr.ts = ring->ts;
			d->hdr.len = d->hdr.caplen = slot->len;
			d->hdr.flags = (slot->flags & NS_MOREFRAG) ? NM_MORE_PKTS : 0;
			d->hdr.d = d;
			d->hdr.slot = slot;
			d->hdr.buf = b;
			i = nm_ring_next(ring, i);
			ring->cur = i;
			cb(arg, &d->hdr, b);
		}
		/* The frames seen go back to the port at the next sync. */
		ring->head = ring->cur;
		d->cur_rx_ring = (uint16_t)ri;
	}
	return got;
}

static inline unsigned char *
nm_nextpkt(struct nm_desc *d, struct nm_pkthdr *hdr)
{
	uint32_t n = (uint32_t)(d->last_rx_ring - d->first_rx_ring + 1), k, ri = d->cur_rx_ring;

	for (k = 0; k < n; k++, ri = ri == d->last_rx_ring ? d->first_rx_ring : ri + 1) {
		struct netmap_ring *ring;
		struct netmap_slot *slot;
		uint32_t i;
		uint8_t *b;

		if (!nm_ring_bound_(d, 0, ri))
			continue;
		ring = NETMAP_RXRING(d->nifp, ri);
		if (nm_ring_empty(ring))
			continue;
		i = ring->cur;
		slot = &ring->slot[i];
		b = (uint8_t *)NETMAP_BUF(ring, slot->buf_idx);
		hdr->ts = ring->ts;
		hdr->len = hdr->caplen = slot->len;
		hdr->flags = (slot->flags & NS_MOREFRAG) ? NM_MORE_PKTS : 0;
		hdr->d = d;
		hdr->slot = slot;
		hdr->buf = b;
		ring->head = ring->cur = nm_ring_next(ring, i);
		d->cur_rx_ring = (uint16_t)ri;
		return b;
	}
	return NULL;
}

#endif /* NETMAP_WITH_LIBS */

#endif /* _NET_NETMAP_USER_H_ */
