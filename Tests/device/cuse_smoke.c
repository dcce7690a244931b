/*
 * cuse_smoke.c: drives the CUSE front end through the real kernel, against
 * the fake device of Tests/CUSEProbe, and the mmap shim.
 *
 *   cuse_smoke            all checks; needs LD_PRELOAD=libnetmapd-shim.so
 *   cuse_smoke --no-shim  registers and syncs without the shim: mmap must
 *                         fail with ENODEV (the probe should log the hint)
 *
 * Build: gcc -O2 -Wall -I Sources/ABI/CNetmapABI/include -o cuse_smoke Tests/device/cuse_smoke.c -pthread
 * Exits 0 when every check passed. No timing assertions (it runs emulated).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"

/* The probe's own ioctl and layout (Tests/CUSEProbe/main.swift). */
#define PROBE_STATS 0x80106e01u
struct probe_stats { uint32_t live, released, region_asks, syncs; };
#define FAKE_IF_OFFSET 0x1000
static const char magic[] = "NETMAPD-PROBE-REGION";

static const char *dev_path = "/dev/netmap";
static int passed, failed;

#define CHECK(cond, ...) do { \
	if (cond) { passed++; } else { failed++; \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno)); } \
} while (0)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t pattern(size_t i)
{
	if (i < sizeof(magic) - 1)
		return (uint8_t)magic[i];
	return (uint8_t)((i * 131) ^ (i >> 12));
}

static int open_dev(void)
{
	int fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", dev_path, strerror(errno));
		exit(2);
	}
	return fd;
}

static struct probe_stats stats(int fd)
{
	struct probe_stats s;
	memset(&s, 0xff, sizeof(s));
	if (ioctl(fd, PROBE_STATS, &s) != 0)
		fprintf(stderr, "PROBE_STATS: %s\n", strerror(errno));
	return s;
}

static int legacy_register(int fd, uint32_t version, struct nmreq *req)
{
	memset(req, 0, sizeof(*req));
	memcpy(req->nr_name, "veth0123456789AB", 16); /* 16 bytes, no NUL */
	req->nr_version = version;
	return ioctl(fd, NIOCREGIF, req);
}

/* Send fd over a unix socket. */
static int send_fd(int sock, int fd)
{
	char data = 'x';
	struct iovec iov = { &data, 1 };
	char ctl[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char data;
	struct iovec iov = { &data, 1 };
	char ctl[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	int fd = -1;
	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Several threads in two-round ioctls on one descriptor at once: the
 * front end keeps each thread's retry state apart. */
struct worker { int fd; int ok; };

static void *port_info_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 100; i++) {
		struct nmreq_header hdr;
		struct nmreq_port_info_get body;
		memset(&hdr, 0, sizeof(hdr));
		memset(&body, 0, sizeof(body));
		hdr.nr_version = NETMAP_API;
		hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
		hdr.nr_body = (uint64_t)(uintptr_t)&body;
		if (ioctl(w->fd, NIOCCTRL, &hdr) != 0 || body.nr_memsize != (1u << 20))
			return NULL;
	}
	w->ok = 1;
	return NULL;
}

static int no_shim(void)
{
	struct nmreq req;
	int fd = open_dev();

	CHECK(legacy_register(fd, 14, &req) == 0, "NIOCREGIF");
	void *p = mmap(NULL, req.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED && errno == ENODEV, "mmap without the shim must fail with ENODEV, got %p", p);
	CHECK(ioctl(fd, NIOCTXSYNC, 0) == 0, "NIOCTXSYNC");
	close(fd);
	printf("cuse_smoke --no-shim: %d checks passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (getenv("NETMAPD_DEVICE"))
		dev_path = getenv("NETMAPD_DEVICE");
	if (argc > 1 && strcmp(argv[1], "--no-shim") == 0)
		return no_shim();

	int fd = open_dev();
	struct netmapd_region_info info;
	struct nmreq req;
	double t0, t1;

	/* ---- before registration ---- */
	errno = 0;
	CHECK(ioctl(fd, NETMAPD_IOC_REGION, &info) == -1 && errno == EINVAL, "REGION before register: EINVAL");
	errno = 0;
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "mmap before register: EINVAL");
	errno = 0;
	CHECK(ioctl(fd, _IO('i', 199), 0) == -1 && errno == EOPNOTSUPP, "unknown ioctl: EOPNOTSUPP");

	/* ---- legacy NIOCREGIF: one retry round; written back even on error ---- */
	errno = 0;
	CHECK(legacy_register(fd, 11, &req) == -1 && errno == EINVAL, "NIOCREGIF version 11: EINVAL");
	CHECK(req.nr_name[15] == '\0' && req.nr_name[14] == 'A', "error path wrote the nmreq back (name[15] forced to NUL)");
	CHECK(req.nr_version == 11, "nr_version untouched");

	/* ---- NIOCCTRL PORT_INFO_GET: header, then body ---- */
	struct nmreq_header hdr;
	struct nmreq_port_info_get pinfo;
	memset(&hdr, 0, sizeof(hdr));
	memset(&pinfo, 0, sizeof(pinfo));
	hdr.nr_version = NETMAP_API;
	hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
	strcpy(hdr.nr_name, "veth0");
	hdr.nr_body = (uint64_t)(uintptr_t)&pinfo;
	CHECK(ioctl(fd, NIOCCTRL, &hdr) == 0, "NIOCCTRL PORT_INFO_GET");
	CHECK(pinfo.nr_memsize == (1u << 20) && pinfo.nr_tx_slots == 512 && pinfo.nr_mem_id == 1,
	      "PORT_INFO_GET body written (memsize %llu)", (unsigned long long)pinfo.nr_memsize);
	CHECK(hdr.nr_body == (uint64_t)(uintptr_t)&pinfo, "header pointers kept");

	/* ---- NIOCCTRL REGISTER with an option chain of two: three rounds, fails, options written ---- */
	struct nmreq_register reg;
	struct nmreq_option opt1, opt2;
	memset(&reg, 0, sizeof(reg));
	memset(&opt1, 0, sizeof(opt1));
	memset(&opt2, 0, sizeof(opt2));
	opt1.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
	opt1.nro_next = (uint64_t)(uintptr_t)&opt2;
	opt2.nro_reqtype = 77;
	hdr.nr_reqtype = NETMAP_REQ_REGISTER;
	hdr.nr_body = (uint64_t)(uintptr_t)&reg;
	hdr.nr_options = (uint64_t)(uintptr_t)&opt1;
	errno = 0;
	CHECK(ioctl(fd, NIOCCTRL, &hdr) == -1 && errno == EOPNOTSUPP, "REGISTER with unconsumed options: EOPNOTSUPP");
	CHECK(opt1.nro_status == EOPNOTSUPP && opt2.nro_status == EOPNOTSUPP, "option statuses written back (%u, %u)",
	      opt1.nro_status, opt2.nro_status);
	CHECK(opt1.nro_next == (uint64_t)(uintptr_t)&opt2, "option chain kept");
	CHECK(reg.nr_memsize == 0, "failed REGISTER left the body alone");

	/* ---- NIOCCTRL REGISTER ---- */
	hdr.nr_options = 0;
	CHECK(ioctl(fd, NIOCCTRL, &hdr) == 0, "NIOCCTRL REGISTER");
	CHECK(reg.nr_memsize == (1u << 20) && reg.nr_offset == FAKE_IF_OFFSET && reg.nr_mem_id == 1,
	      "REGISTER body written");
	size_t memsize = reg.nr_memsize;

	/* ---- NETMAPD_IOC_REGION: write-only answer ---- */
	memset(&info, 0, sizeof(info));
	CHECK(ioctl(fd, NETMAPD_IOC_REGION, &info) == 0, "NETMAPD_IOC_REGION");
	CHECK(info.size == memsize && info.mem_id == 1 && info.path[0] == '/', "region info %llu %s",
	      (unsigned long long)info.size, info.path);

	/* ---- first mmap after registration (through the shim) ---- */
	uint8_t *base = mmap(NULL, memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(base != MAP_FAILED, "mmap of the region");
	if (base == MAP_FAILED)
		goto out;
	size_t bad = 0;
	for (size_t i = 0; i < memsize; i++)
		if (base[i] != pattern(i))
			bad++;
	CHECK(bad == 0, "region bytes match the probe's pattern (%zu differ)", bad);
	base[12345] = 0xA5;
	/* syncs come after the mmap, as in every netmap program */
	CHECK(ioctl(fd, NIOCTXSYNC, 0) == 0, "NIOCTXSYNC");
	CHECK(ioctl(fd, NIOCRXSYNC, 0) == 0, "NIOCRXSYNC");

	/* a second mapping at an offset sees the same memory */
	uint8_t *part = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 8192);
	CHECK(part != MAP_FAILED && part[12345 - 8192] == 0xA5 && part[0] == pattern(8192),
	      "mapping at offset 8192 shares the bytes");
	errno = 0;
	CHECK(mmap(NULL, memsize + 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "mmap beyond the region: EINVAL");

	/* ---- a second port in the same region: used through the first mapping, no new mmap ---- */
	int fd2 = open_dev();
	CHECK(legacy_register(fd2, 14, &req) == 0, "second fd NIOCREGIF");
	CHECK(req.nr_memsize == memsize && req.nr_offset == FAKE_IF_OFFSET && req.nr_arg2 == 1,
	      "second port reports the same region");
	CHECK(base[req.nr_offset] == pattern(req.nr_offset), "second port's netmap_if read through the first mapping");
	CHECK(ioctl(fd2, NIOCTXSYNC, 0) == 0, "second fd NIOCTXSYNC");

	/* ---- poll: nothing ready, the probe wakes the handle 300 ms later ---- */
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	t0 = now();
	int pr = poll(&pfd, 1, 20000);
	t1 = now();
	CHECK(pr == 1 && (pfd.revents & POLLIN), "poll woke with POLLIN (rc %d revents 0x%x)", pr, pfd.revents);
	printf("cuse_smoke: poll woke after %.0f ms\n", (t1 - t0) * 1000);
	CHECK(ioctl(fd, NIOCRXSYNC, 0) == 0, "NIOCRXSYNC after poll");
	pfd.revents = 0;
	CHECK(poll(&pfd, 1, 0) == 0, "poll with timeout 0 and nothing ready returns 0");

	/* ---- cost of a round trip (reported, not checked: the VM emulates) ---- */
	t0 = now();
	for (int i = 0; i < 200; i++)
		ioctl(fd, NIOCTXSYNC, 0);
	t1 = now();
	printf("cuse_smoke: NIOCTXSYNC %.0f us each\n", (t1 - t0) / 200 * 1e6);
	t0 = now();
	for (int i = 0; i < 100; i++) {
		hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
		hdr.nr_body = (uint64_t)(uintptr_t)&pinfo;
		ioctl(fd, NIOCCTRL, &hdr);
	}
	t1 = now();
	printf("cuse_smoke: NIOCCTRL PORT_INFO_GET (3 rounds) %.0f us each\n", (t1 - t0) / 100 * 1e6);

	/* ---- concurrent multi-round ioctls on one descriptor ---- */
	struct worker workers[4];
	pthread_t threads[4];
	for (int i = 0; i < 4; i++) {
		workers[i] = (struct worker){ fd2, 0 };
		pthread_create(&threads[i], NULL, port_info_worker, &workers[i]);
	}
	int all_ok = 1;
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		all_ok &= workers[i].ok;
	}
	CHECK(all_ok, "4 threads x 100 NIOCCTRL PORT_INFO_GET on one fd");

	/* ---- SCM_RIGHTS: another process receives the fd and maps it ---- */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid_t child = fork();
	if (child == 0) {
		close(sv[0]);
		int rfd = recv_fd(sv[1]);
		if (rfd < 0)
			_exit(10);
		uint8_t *m = mmap(NULL, memsize, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
		if (m == MAP_FAILED)
			_exit(11);
		if (memcmp(m, magic, sizeof(magic) - 1) != 0 || m[12345] != 0xA5)
			_exit(12);
		m[54321] = 0x5A;
		if (munmap(m, memsize) != 0)
			_exit(13);
		close(rfd);
		_exit(0);
	}
	close(sv[1]);
	CHECK(send_fd(sv[0], fd) == 0, "sendmsg SCM_RIGHTS");
	int status = -1;
	waitpid(child, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child mapped the received fd (status 0x%x)", status);
	CHECK(base[54321] == 0x5A, "child's write visible through our mapping");
	close(sv[0]);

	/* ---- close(fd) while mapped keeps the file; munmap releases it ---- */
	struct probe_stats before = stats(fd2);
	close(fd);
	struct probe_stats after_close = stats(fd2);
	CHECK(after_close.live == before.live && after_close.released == before.released,
	      "close with mappings left: not released (live %u->%u)", before.live, after_close.live);
	CHECK(munmap(part, 8192) == 0, "munmap of the offset mapping");
	struct probe_stats after_part = stats(fd2);
	CHECK(after_part.live == before.live, "one mapping left: still not released");
	/* unmap in two pieces: the middle first, then the rest */
	CHECK(munmap(base + 4096, 8192) == 0, "munmap of a middle piece");
	CHECK(stats(fd2).live == before.live, "pieces left: still not released");
	CHECK(munmap(base, memsize) == 0, "munmap of the rest");
	struct probe_stats after_unmap = stats(fd2);
	CHECK(after_unmap.live == before.live - 1 && after_unmap.released == before.released + 1,
	      "last munmap released the file (live %u->%u)", before.live, after_unmap.live);
	CHECK(after_unmap.region_asks >= 4, "region asked by every mmap (%u)", after_unmap.region_asks);
	close(fd2);

out:
	printf("cuse_smoke: %d checks passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
