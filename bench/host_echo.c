/*
 * host_echo.c: the host-path groups' load (bench/run.sh, issue #13).
 *
 *   host_echo serve ADDR PORT             a UDP echo on the host stack:
 *                                         every datagram goes back (batches
 *                                         of recvmmsg / sendmmsg)
 *   host_echo load ADDR PORT SECS WINDOW  keeps WINDOW 18-byte datagrams
 *                                         (60-byte frames) in flight to the
 *                                         echo for SECS seconds; when no
 *                                         answer comes for 10 ms the window
 *                                         is sent afresh, so losses cost
 *                                         10 ms, not the run. Prints
 *                                         "echo frames=N bytes=B seconds=S"
 *                                         (N: requests + answers)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: host_echo serve ADDR PORT | load ADDR PORT SECS WINDOW\n");
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
	inet_pton(AF_INET, argv[2], &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char buf[BATCH][64];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	struct sockaddr_in from[BATCH];
	if (strcmp(argv[1], "serve") == 0) {
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
			perror("bind");
			return 1;
		}
		fprintf(stderr, "ready\n");
		for (;;) {
			for (int i = 0; i < BATCH; i++) {
				iov[i] = (struct iovec){ buf[i], sizeof buf[i] };
				m[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof from[i],
								.msg_iov = &iov[i], .msg_iovlen = 1 };
			}
			int n = recvmmsg(fd, m, BATCH, MSG_WAITFORONE, NULL);
			if (n <= 0)
				continue;
			for (int i = 0; i < n; i++)
				iov[i].iov_len = m[i].msg_len;
			sendmmsg(fd, m, (unsigned)n, 0);
		}
	}
	if (argc != 6 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("load");
		return 2;
	}
	double secs = atof(argv[4]);
	int window = atoi(argv[5]);
	char req[18] = "netmapd host path";
	unsigned long long sent = 0, answered = 0;
	for (int i = 0; i < window; i++, sent++)
		send(fd, req, sizeof req, 0);
	double t0 = now(), end = t0 + secs;
	while (now() < end) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 10) == 0) {
			for (int i = 0; i < window; i++, sent++)   /* lost: the window afresh */
				send(fd, req, sizeof req, 0);
			continue;
		}
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ buf[i], sizeof buf[i] };
			m[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		int n = recvmmsg(fd, m, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		answered += (unsigned)n;
		for (int i = 0; i < n; i++) {
			iov[i] = (struct iovec){ req, sizeof req };
			m[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		int s = sendmmsg(fd, m, (unsigned)n, 0);
		if (s > 0)
			sent += (unsigned)s;
	}
	double t = now() - t0;
	printf("echo frames=%llu bytes=%llu seconds=%.3f\n", sent + answered, (sent + answered) * 60, t);
	return 0;
}
