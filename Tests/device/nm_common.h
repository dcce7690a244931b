/*
 * nm_common.h: small helpers shared by the device test programs
 * (nm_classic, nm_api14, nm_pipe_traffic, nm_errors, nm_killer, nm_faults).
 *
 * The programs talk to the device the way netmap programs do: open the
 * device, register with NIOCREGIF or NIOCCTRL, mmap nr_memsize bytes at
 * offset 0, and find everything by offsets (nr_offset, ring_ofs, buf_ofs).
 * Only netmapd_abi.h and the project's client library (tools/nmd_client.h:
 * clocks, requests, ports) are used; nothing here depends on the front end.
 *
 * Device path: "-d PATH" on the command line, else $NETMAP_DEVICE, else
 * /dev/netmap. $NMT_TIME_SCALE (>= 1) multiplies every time limit.
 */
#ifndef NM_COMMON_H
#define NM_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"
#include "../../tools/nmd_client.h"

/* ---- reporting: one PASS/FAIL line per check, a summary at the end ---- */

static const char *nmt_prog = "nm";
static int nmt_passed, nmt_failed;

__attribute__((format(printf, 2, 3), unused))
static int nmt_check(int ok, const char *fmt, ...)
{
	va_list ap;
	printf("%s %s: ", ok ? "PASS" : "FAIL", nmt_prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		nmt_passed++;
	else
		nmt_failed++;
	return ok;
}

/* A check whose failure names what was expected and what came back. */
#define CHECK(cond, ...) nmt_check(!!(cond), __VA_ARGS__)
#define CHECK_EQ(got, want, what) ({ \
	unsigned long long got_ = (uint64_t)(got), want_ = (uint64_t)(want); \
	nmt_check(got_ == want_, "%s (got %llu, want %llu)", what, got_, want_); })

__attribute__((format(printf, 1, 2)))
static inline void nmt_info(const char *fmt, ...)
{
	va_list ap;
	printf("INFO %s: ", nmt_prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

__attribute__((format(printf, 1, 2), noreturn))
static inline void nmt_die(const char *fmt, ...)
{
	va_list ap;
	printf("FAIL %s: ", nmt_prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static inline int nmt_summary(void)
{
	printf("%s %s: %d checks passed, %d failed\n", nmt_failed ? "FAIL" : "PASS", nmt_prog,
	    nmt_passed, nmt_failed);
	fflush(stdout);
	return nmt_failed ? 1 : 0;
}

static inline const char *nmt_errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case ENXIO: return "ENXIO";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EMSGSIZE: return "EMSGSIZE";
	case ENODEV: return "ENODEV";
	case EIO: return "EIO";
	case ENOTTY: return "ENOTTY";
	case ENOENT: return "ENOENT";
	case ENOTCONN: return "ENOTCONN";
	case EACCES: return "EACCES";
	default: return strerror(e);
	}
}

/* An ioctl's errno (0 on success). */
static inline int nmt_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

#define CHECK_ERRNO(got, want, what) ({ \
	int got_ = (got), want_ = (want); \
	nmt_check(got_ == want_, "%s -> %s (want %s)", what, nmt_errname(got_), nmt_errname(want_)); })

/* ---- the device ---- */

static const char *nmt_device = NULL;

/* NMT_TIME_SCALE (default 1) stretches every time limit: for slow machines
 * such as an emulated VM. Only upper bounds and timeouts are scaled. */
static double nmt_slow = 1.0;
#define NMT_SEC(x) ((x) * nmt_slow)
#define NMT_MS(x) ((int)((x) * nmt_slow))

static inline const char *nmt_device_path(void)
{
	if (nmt_device)
		return nmt_device;
	const char *e = getenv("NETMAP_DEVICE");
	return e && *e ? e : "/dev/netmap";
}

static inline int nmt_open(void)
{
	int fd = open(nmt_device_path(), O_RDWR);
	if (fd < 0)
		nmt_die("open %s: %s", nmt_device_path(), strerror(errno));
	return fd;
}

/* ---- API 14 requests (nmd_req_header, nmd_register: tools/nmd_client.h) ---- */

static inline int nmt_pools_info(int fd, const char *name, struct nmreq_pools_info *pi)
{
	struct nmreq_header h;
	memset(pi, 0, sizeof(*pi));
	nmd_req_header(&h, NETMAP_REQ_POOLS_INFO_GET, name, pi);
	return nmt_ioctl(fd, NIOCCTRL, &h);
}

/* netmapd's pool statistics (any descriptor). fd < 0: a fresh one. */
static inline int nmt_poolstat(int fd, struct netmapd_pool_stats *st)
{
	int own = fd < 0;
	if (own)
		fd = nmt_open();
	memset(st, 0, sizeof(*st));
	int e = nmt_ioctl(fd, NETMAPD_IOC_POOLSTAT, st);
	if (own)
		close(fd);
	return e;
}

/* Polls the pool statistics until free buffers/rings/ifs equal `want`
 * (release after a close or a kill is asynchronous). */
static inline int nmt_wait_pool(const struct netmapd_pool_stats *want, struct netmapd_pool_stats *got,
    double seconds)
{
	double end = nmd_now() + NMT_SEC(seconds);
	for (;;) {
		if (nmt_poolstat(-1, got) == 0 && got->free_buffers == want->free_buffers &&
		    got->free_rings == want->free_rings && got->free_ifs == want->free_ifs)
			return 1;
		if (nmd_now() > end)
			return 0;
		usleep(2000);
	}
}

/* Whether two pool snapshots agree on everything a client can change:
 * free buffers, rings and ifs, registered descriptors and ports. */
static inline int nmt_stat_same(const struct netmapd_pool_stats *a, const struct netmapd_pool_stats *b)
{
	return a->free_buffers == b->free_buffers && a->free_rings == b->free_rings && a->free_ifs == b->free_ifs &&
	    a->sessions == b->sessions && a->ports == b->ports;
}

/* Polls the pool statistics until they agree with `want` (nmt_stat_same). */
static inline int nmt_wait_stat(const struct netmapd_pool_stats *want, struct netmapd_pool_stats *got, double seconds)
{
	double end = nmd_now() + NMT_SEC(seconds);
	for (;;) {
		if (nmt_poolstat(-1, got) == 0 && nmt_stat_same(want, got))
			return 1;
		if (nmd_now() > end)
			return 0;
		usleep(2000);
	}
}

/* Waits until the daemon counts `sessions` registered descriptors (a close
 * reaches the daemon asynchronously). */
static inline int nmt_wait_sessions(uint32_t sessions, double seconds)
{
	struct netmapd_pool_stats st;
	double end = nmd_now() + NMT_SEC(seconds);
	while (nmt_poolstat(-1, &st) == 0 && st.sessions != sessions) {
		if (nmd_now() > end)
			return 0;
		usleep(1000);
	}
	return 1;
}

static inline void *nmt_mmap(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		nmt_die("mmap %llu bytes: %s", (unsigned long long)size, strerror(errno));
	return p;
}

/* ---- one registered pipe end, mapped ---- */

struct nmt_port {
	int fd;
	void *mem;
	uint64_t memsize;
	struct netmap_if *nifp;
	struct netmap_ring *tx, *rx;   /* ring 0 of each direction */
	struct nmreq_register reg;
};

static inline int nmt_port_open(struct nmt_port *p, const char *name, uint64_t flags, uint32_t extra)
{
	memset(p, 0, sizeof(*p));
	p->fd = nmt_open();
	int e = nmd_register(p->fd, name, NR_REG_ALL_NIC, 0, flags, extra, &p->reg);
	if (e) {
		close(p->fd);
		p->fd = -1;
		return e;
	}
	p->memsize = p->reg.nr_memsize;
	p->mem = nmt_mmap(p->fd, p->memsize);
	p->nifp = nmd_if(p->mem, p->reg.nr_offset);
	p->tx = nmd_txring(p->nifp, 0);
	p->rx = nmd_rxring(p->nifp, 0);
	return 0;
}

static inline void nmt_port_close(struct nmt_port *p)
{
	if (p->mem)
		munmap(p->mem, p->memsize);
	if (p->fd >= 0)
		close(p->fd);
	p->mem = NULL;
	p->fd = -1;
}

/* ---- frames: lengths from a seeded PRNG, bytes from (seq, len) ---- */

static inline uint64_t nmt_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define NMT_MIN_LEN 60
#define NMT_MAX_LEN 1514

/* Length of frame `seq` of a run seeded with `seed`: 60..1514. */
static inline uint16_t nmt_frame_len(uint64_t seed, uint64_t seq)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dull + seq;
	return (uint16_t)(NMT_MIN_LEN + nmt_splitmix(&s) % (NMT_MAX_LEN - NMT_MIN_LEN + 1));
}

/* Frame bytes: seq (8 bytes LE), len (2 bytes), then a stream keyed by both. */
static inline void nmt_frame_fill(char *buf, uint64_t seq, uint16_t len)
{
	uint64_t s = seq ^ ((uint64_t)len << 48) ^ 0x5a5a5a5a00000000ull;
	memcpy(buf, &seq, 8);
	memcpy(buf + 8, &len, 2);
	size_t i = 10;
	for (; i + 8 <= len; i += 8) {
		uint64_t v = nmt_splitmix(&s);
		memcpy(buf + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = nmt_splitmix(&s);
		memcpy(buf + i, &v, len - i);
	}
}

/* 0 if `buf` holds frame (seq, len), else the first bad byte offset + 1. */
static inline size_t nmt_frame_check(const char *buf, uint64_t seq, uint16_t len)
{
	uint64_t s = seq ^ ((uint64_t)len << 48) ^ 0x5a5a5a5a00000000ull, v;
	uint16_t l;
	memcpy(&v, buf, 8);
	if (v != seq)
		return 1;
	memcpy(&l, buf + 8, 2);
	if (l != len)
		return 9;
	size_t i = 10;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = nmt_splitmix(&s);
		if (memcmp(buf + i, &w, 8) != 0)
			return i + 1;
	}
	if (i < len) {
		uint64_t w = nmt_splitmix(&s);
		if (memcmp(buf + i, &w, len - i) != 0)
			return i + 1;
	}
	return 0;
}

/* Parses "-d PATH" wherever it appears and removes it from argv. */
static inline void nmt_args(int *argc, char **argv, const char *prog)
{
	nmt_prog = prog;
	int j = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "-d") == 0 && i + 1 < *argc) {
			nmt_device = argv[++i];
			continue;
		}
		argv[j++] = argv[i];
	}
	*argc = j;
	argv[j] = NULL;
	const char *sc = getenv("NMT_TIME_SCALE");
	if (sc && atof(sc) >= 1.0)
		nmt_slow = atof(sc);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

#endif /* NM_COMMON_H */
