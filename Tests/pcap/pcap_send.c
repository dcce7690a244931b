/*
 * pcap_send.c: pcap_inject through libpcap's netmap backend. Opens DEVICE
 * (e.g. netmap:eth0) with pcap_create/pcap_activate, sends COUNT test frames
 * (tools/nmd_client.h's format, stream STREAM, lengths SIZES) with
 * pcap_inject, and waits on the capture's selectable descriptor for room
 * when the TX ring is full (pcap_inject returns 0 then: the netmap backend
 * only fills slots, the descriptor's poll hands them to the port).
 *
 *   pcap_send DEVICE COUNT SIZES STREAM
 *
 * Links only libpcap (the one built by build-libpcap.sh); exits 0 when every
 * frame was accepted by pcap_inject.
 */
#define _GNU_SOURCE
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/ioctl.h>

#include "../../tools/nmd_client.h"



int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: pcap_send DEVICE COUNT SIZES STREAM\n");
		return 2;
	}
	char err[PCAP_ERRBUF_SIZE];
	uint64_t count = strtoull(argv[2], NULL, 10);
	struct nmdf_sizes z;
	if (nmdf_parse_sizes(argv[3], &z))
		return 2;
	uint32_t stream = (uint32_t)strtoul(argv[4], NULL, 0);
	pcap_t *p = pcap_create(argv[1], err);
	if (!p) {
		fprintf(stderr, "pcap_send: pcap_create: %s\n", err);
		return 1;
	}
	pcap_set_promisc(p, 0);
	int rc = pcap_activate(p);
	if (rc < 0) {
		fprintf(stderr, "pcap_send: pcap_activate: %s\n", pcap_geterr(p));
		return 1;
	}
	int fd = pcap_get_selectable_fd(p);
	uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, src[6] = { 0x02, 0x70, 0x63, 0, 0, 1 };
	static uint8_t f[2048];
	uint64_t seq = 0, waits = 0;
	while (seq < count) {
		unsigned len = nmdf_build(f, &z, seq, stream, dst, src);
		int r = pcap_inject(p, f, len);
		if (r == (int)len) {
			seq++;
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "pcap_send: pcap_inject: %s\n", pcap_geterr(p));
			return 1;
		}
		/* Ring full: poll sends what is queued and waits for room. */
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, 2000) <= 0 || (pfd.revents & POLLERR)) {
			fprintf(stderr, "pcap_send: no room after %llu frames\n", (unsigned long long)seq);
			return 1;
		}
		waits++;
	}
	/* The last batch: hand it over, then let it drain before the close. */
	ioctl(fd, NIOCTXSYNC, NULL);
	for (int i = 0; i < 20; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		poll(&pfd, 1, 50);
	}
	printf("pcap_send: %llu frames injected through %s (%s), %llu waits for room\n", (unsigned long long)seq,
	       argv[1], pcap_lib_version(), (unsigned long long)waits);
	pcap_close(p);
	return 0;
}
