/*
 * svc_client.c: a deliberately awkward client of netmapd's control socket,
 * for Tests/service/run-service-tests.sh.
 *
 *   svc_client SOCKET line TEXT      send TEXT and a newline, print the reply line
 *   svc_client SOCKET long N         send N bytes without a newline, print the
 *                                    reply, then "EOF" if the daemon closed
 *   svc_client SOCKET idle N SECS    open N connections that send nothing,
 *                                    print "busy=B" (connections answered
 *                                    "busy" at once), hold them SECS seconds,
 *                                    then print "closed=C" (connections the
 *                                    daemon has closed meanwhile)
 *
 * Exit 0 when the exchange happened, 1 on a socket error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int dial(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		fprintf(stderr, "svc_client: connect %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

/* Reads one line (or until EOF / timeout) into buf; returns its length, -1 if nothing came. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;
	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(buf, '\n', n))
			break;
	}
	buf[n] = 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	return n ? (int)strlen(buf) : -1;
}

static int closed_by_peer(int fd)
{
	char c[4096];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		if (poll(&p, 1, 0) <= 0)
			return 0;
		ssize_t r = recv(fd, c, sizeof c, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
		if (r < 0)
			return 0;
	}
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	if (argc < 4) {
		fprintf(stderr, "usage: svc_client SOCKET line TEXT | long N | idle N SECS\n");
		return 2;
	}
	const char *path = argv[1], *mode = argv[2];
	if (strcmp(mode, "line") == 0) {
		int fd = dial(path);
		dprintf(fd, "%s\n", argv[3]);
		if (read_line(fd, buf, sizeof buf, 5000) < 0)
			return 1;
		printf("%s\n", buf);
		return 0;
	}
	if (strcmp(mode, "long") == 0) {
		size_t n = strtoul(argv[3], NULL, 0);
		char *junk = malloc(n);
		memset(junk, 'x', n);
		int fd = dial(path);
		size_t off = 0;
		while (off < n) {
			ssize_t w = send(fd, junk + off, n - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;   /* the daemon may close before taking it all */
			off += (size_t)w;
		}
		if (read_line(fd, buf, sizeof buf, 5000) >= 0)
			printf("%s\n", buf);
		/* the daemon must hang up after an over-long request */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		for (int i = 0; i < 50; i++) {
			if (poll(&p, 1, 100) > 0 && closed_by_peer(fd)) {
				printf("EOF\n");
				break;
			}
		}
		return 0;
	}
	if (strcmp(mode, "idle") == 0 && argc >= 5) {
		int n = atoi(argv[3]), secs = atoi(argv[4]), busy = 0, closed = 0;
		int *fds = calloc((size_t)n, sizeof(int));
		for (int i = 0; i < n; i++)
			fds[i] = dial(path);
		for (int i = 0; i < n; i++)
			if (read_line(fds[i], buf, sizeof buf, 200) > 0 && strstr(buf, "busy"))
				busy++;
		printf("busy=%d\n", busy);
		fflush(stdout);
		sleep((unsigned)secs);
		for (int i = 0; i < n; i++)
			closed += closed_by_peer(fds[i]);
		printf("closed=%d\n", closed);
		return 0;
	}
	fprintf(stderr, "svc_client: unknown mode %s\n", mode);
	return 2;
}
