/*
 * fuse_floor.c: the floor for one empty ioctl round trip through FUSE, and
 * the same measurement against netmapd.
 *
 * "serve" is the smallest FUSE server that can answer an ioctl: it speaks the
 * kernel protocol directly on /dev/fuse (no libfuse), mounts a file system
 * whose root is a single regular file onto a regular file (the way netmapd's
 * FUSE-file front end presents /dev/netmap), and answers in one thread:
 *   INIT     protocol 7.x, no optional features
 *   GETATTR  a 0600 regular file of size 0, cached for 60 s
 *   OPEN     fh 1, FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_NOFLUSH
 *   IOCTL    result 0, no data
 *   FLUSH, RELEASE, DESTROY  success (DESTROY ends the loop)
 *   FORGET, BATCH_FORGET, INTERRUPT  no reply
 *   anything else  ENOSYS
 * Whatever netmapd spends on an empty sync beyond this floor is its own.
 *
 * "client" opens the file and times back-to-back ioctl(NIOCTXSYNC) calls.
 * With --netmap it first registers a netmap port on the file (NIOCCTRL
 * NETMAP_REQ_REGISTER and mmap, as tools/nmd_client.h does), so that the same
 * loop measures netmapd's empty TX sync on that port.
 *
 * Usage:
 *   fuse_floor serve PATH
 *       Creates PATH (empty regular file) if missing, mounts on it, prints
 *       "ready" on stdout, serves until SIGTERM/SIGINT, then unmounts
 *       (umount2 MNT_DETACH) and exits 0. Needs root (mount(2)).
 *   fuse_floor client PATH SECONDS [--netmap PORT]
 *       Opens PATH O_RDWR; 0.2 s warm-up, then ioctl(fd, NIOCTXSYNC) in a
 *       loop for SECONDS. PORT is a netmap port name, e.g. "bench{0" (a
 *       pipe) or "netmap:eth0".
 *
 * Output (client, one line on stdout):
 *   floor: calls=N seconds=S us_per_call=X       (plain)
 *   sync: calls=N seconds=S us_per_call=X        (--netmap)
 * The server prints only "ready" on stdout; errors go to stderr, and with
 * FUSE_FLOOR_DEBUG set in its environment every request but IOCTL is logged
 * there too.
 *
 * Build (from the repository root):
 *   gcc -O2 -g -Wall -Wextra -Werror -I Sources/ABI/CNetmapABI/include -I tools \
 *       -o bench/fuse_floor bench/fuse_floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "netmapd_abi.h"
#include "nmd_client.h"

_Static_assert(NIOCTXSYNC == _IO('i', 148), "NIOCTXSYNC");

/* ------------------------------------------------------------------ server */

/* Request buffer: the kernel wants room for max_write plus headers and at
 * least FUSE_MIN_READ_BUFFER; max_write is 4096 below. */
#define REQ_BUF (64 * 1024)
#define MAX_WRITE 4096

static volatile sig_atomic_t stopping;

static void on_alarm(int sig)
{
	(void)sig; /* only here to interrupt read(2) */
}

/* Installed without SA_RESTART so that a blocked read(2) on /dev/fuse
 * returns EINTR. A signal arriving between the loop's check of `stopping`
 * and read(2) would be missed, so a repeating timer keeps interrupting until
 * the loop notices. */
static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
	struct itimerval it = { .it_interval = { 0, 20000 }, .it_value = { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static int reply(int fd, uint64_t unique, int error, const void *body, size_t len)
{
	struct {
		struct fuse_out_header h;
		unsigned char body[128];
	} msg;
	if (len > sizeof msg.body)
		return -1;
	msg.h.len = (uint32_t)(sizeof msg.h + len);
	msg.h.error = error;
	msg.h.unique = unique;
	if (len)
		memcpy(msg.body, body, len);
	ssize_t n = write(fd, &msg, msg.h.len);
	if (n < 0) {
		/* ENOENT: the request was interrupted and is gone; harmless. */
		if (errno != ENOENT && errno != ENODEV)
			fprintf(stderr, "fuse_floor: reply %llu: %s\n", (unsigned long long)unique, strerror(errno));
		return -1;
	}
	return 0;
}

static void fill_attr(struct fuse_attr *a, time_t t0)
{
	memset(a, 0, sizeof *a);
	a->ino = FUSE_ROOT_ID;
	a->mode = S_IFREG | 0600;
	a->nlink = 1;
	a->blksize = 4096;
	a->atime = a->mtime = a->ctime = (uint64_t)t0;
}

/* Answers FUSE_INIT. Returns 0, or -1 if the kernel wants another major. */
static int answer_init(int fd, const struct fuse_in_header *h, const void *payload, size_t plen)
{
	struct fuse_init_in in;
	memset(&in, 0, sizeof in);
	memcpy(&in, payload, plen < sizeof in ? plen : sizeof in);
	if (in.major != FUSE_KERNEL_VERSION) {
		reply(fd, h->unique, -EPROTO, NULL, 0);
		fprintf(stderr, "fuse_floor: kernel FUSE major %u, want %u\n", in.major, FUSE_KERNEL_VERSION);
		return -1;
	}
	struct fuse_init_out out;
	memset(&out, 0, sizeof out);
	out.major = FUSE_KERNEL_VERSION;
	/* Our layouts are those of the installed header's minor. */
	out.minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION;
	out.max_readahead = in.max_readahead;
	out.flags = 0;
	out.max_background = 16;
	out.congestion_threshold = 12;
	out.max_write = MAX_WRITE;
	out.time_gran = 1;
	return reply(fd, h->unique, 0, &out, sizeof out);
}

static int serve(const char *path)
{
	struct stat st;
	int created = 0;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "fuse_floor: stat %s: %s\n", path, strerror(errno));
			return 1;
		}
		int f = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (f < 0) {
			fprintf(stderr, "fuse_floor: create %s: %s\n", path, strerror(errno));
			return 1;
		}
		close(f);
		created = 1;
	} else if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "fuse_floor: %s is not a regular file\n", path);
		return 1;
	}

	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fuse_floor: open /dev/fuse: %s\n", strerror(errno));
		return 1;
	}
	char opts[128];
	snprintf(opts, sizeof opts, "fd=%d,rootmode=100000,user_id=0,group_id=0", fd);
	if (mount("fuse_floor", path, "fuse", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0) {
		fprintf(stderr, "fuse_floor: mount on %s: %s\n", path, strerror(errno));
		close(fd);
		if (created)
			unlink(path);
		return 1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop; /* no SA_RESTART: read(2) must return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);

	unsigned char *buf = aligned_alloc(4096, REQ_BUF);
	if (!buf) {
		fprintf(stderr, "fuse_floor: out of memory\n");
		umount2(path, MNT_DETACH);
		return 1;
	}
	time_t t0 = time(NULL);
	int debug = getenv("FUSE_FLOOR_DEBUG") != NULL;
	int inited = 0, rc = 0;
	unsigned long long ioctls = 0;

	while (!stopping) {
		ssize_t n = read(fd, buf, REQ_BUF);
		if (n < 0) {
			if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
				continue;
			if (errno != ENODEV) {
				fprintf(stderr, "fuse_floor: read /dev/fuse: %s\n", strerror(errno));
				rc = 1;
			}
			break;
		}
		if ((size_t)n < sizeof(struct fuse_in_header))
			continue;
		const struct fuse_in_header *h = (const void *)buf;
		const void *payload = buf + sizeof *h;
		size_t plen = (size_t)n - sizeof *h;
		if (debug && h->opcode != FUSE_IOCTL)
			fprintf(stderr, "fuse_floor: opcode %u node %llu unique %llu\n", h->opcode,
				(unsigned long long)h->nodeid, (unsigned long long)h->unique);

		switch (h->opcode) {
		case FUSE_IOCTL: {
			struct fuse_ioctl_out out;
			memset(&out, 0, sizeof out);
			reply(fd, h->unique, 0, &out, sizeof out);
			ioctls++;
			break;
		}
		case FUSE_INIT:
			if (inited) {
				reply(fd, h->unique, -EPROTO, NULL, 0);
				break;
			}
			if (answer_init(fd, h, payload, plen) != 0) {
				rc = 1;
				stopping = 1;
				break;
			}
			inited = 1;
			printf("ready\n");
			fflush(stdout);
			break;
		case FUSE_GETATTR: {
			if (h->nodeid != FUSE_ROOT_ID) {
				reply(fd, h->unique, -ENOENT, NULL, 0);
				break;
			}
			struct fuse_attr_out out;
			memset(&out, 0, sizeof out);
			out.attr_valid = 60;
			fill_attr(&out.attr, t0);
			reply(fd, h->unique, 0, &out, sizeof out);
			break;
		}
		case FUSE_OPEN: {
			struct fuse_open_out out;
			memset(&out, 0, sizeof out);
			out.fh = 1;
			out.open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_NOFLUSH;
			reply(fd, h->unique, 0, &out, sizeof out);
			break;
		}
		case FUSE_FLUSH:
		case FUSE_RELEASE:
			reply(fd, h->unique, 0, NULL, 0);
			break;
		case FUSE_DESTROY:
			reply(fd, h->unique, 0, NULL, 0);
			stopping = 1;
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break; /* these take no reply */
		default:
			reply(fd, h->unique, -ENOSYS, NULL, 0);
			break;
		}
	}

	struct itimerval off;
	memset(&off, 0, sizeof off);
	setitimer(ITIMER_REAL, &off, NULL);
	if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL)
		fprintf(stderr, "fuse_floor: umount2 %s: %s\n", path, strerror(errno));
	/* Closing the last /dev/fuse descriptor aborts the connection: clients
	 * still holding the file get ENOTCONN from then on. */
	close(fd);
	if (created)
		unlink(path);
	fprintf(stderr, "fuse_floor: served %llu ioctls\n", ioctls);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ client */

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int client(const char *path, double seconds, const char *port)
{
	struct nmd_port p;
	int fd;
	if (port) {
		if (nmd_port_open(&p, path, port, 0) != 0)
			return 1;
		fd = p.fd;
	} else {
		fd = open(path, O_RDWR);
		if (fd < 0) {
			fprintf(stderr, "fuse_floor: open %s: %s\n", path, strerror(errno));
			return 1;
		}
	}

	double t = now(), end = t + 0.2;
	while (t < end) {
		if (ioctl(fd, NIOCTXSYNC) != 0) {
			fprintf(stderr, "fuse_floor: ioctl NIOCTXSYNC: %s\n", strerror(errno));
			return 1;
		}
		t = now();
	}

	unsigned long long calls = 0;
	double start = now();
	end = start + seconds;
	do {
		if (ioctl(fd, NIOCTXSYNC) != 0) {
			fprintf(stderr, "fuse_floor: ioctl NIOCTXSYNC: %s\n", strerror(errno));
			return 1;
		}
		calls++;
		t = now();
	} while (t < end);
	double elapsed = t - start;

	printf("%s: calls=%llu seconds=%.3f us_per_call=%.3f\n", port ? "sync" : "floor", calls, elapsed,
	       elapsed * 1e6 / (double)calls);
	fflush(stdout);
	if (port)
		nmd_port_close(&p);
	else
		close(fd);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: fuse_floor serve PATH\n"
			"       fuse_floor client PATH SECONDS [--netmap PORT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2]);
	if ((argc == 4 || argc == 6) && strcmp(argv[1], "client") == 0) {
		char *e;
		double s = strtod(argv[3], &e);
		if (*e || !(s > 0))
			usage();
		const char *port = NULL;
		if (argc == 6) {
			if (strcmp(argv[4], "--netmap") != 0)
				usage();
			port = argv[5];
		}
		return client(argv[2], s, port);
	}
	usage();
	return 2;
}
