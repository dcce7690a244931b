/*
 * xsk_bench: raw AF_XDP on one interface queue, through the daemon's own C
 * helper (Sources/Ports/CXDPSys), with the memory laid out as netmapd lays
 * it out: a MAP_SHARED memfd whose page-aligned tail of 2048-byte buffers is
 * the UMEM. It measures what the native backend's design choices cost, with
 * no netmap client, no FUSE and no daemon in the way.
 *
 *   xsk_bench rx IFNAME QUEUE copy|land SECONDS SIZE|MIN-MAX [copy|zc]
 *       Receive for SECONDS: "copy" lets frames land in buffers the socket
 *       owns (aligned 2048-byte chunks, data 256 bytes in) and copies each
 *       into a second buffer, as a netmap slot would get it; "land" posts
 *       fill addresses 256 bytes before each buffer (unaligned chunks of
 *       2304 bytes) so the frame starts at the buffer start and nothing is
 *       copied. Prints frames, rate, the time spent handling each frame
 *       (taking it off the RX ring, the copy, giving the chunk back:
 *       waiting not counted), and whether any byte outside the frames
 *       changed (land: canaries). Frames are checked against SIZE.
 *   xsk_bench tx IFNAME QUEUE COUNT SIZE|MIN-MAX
 *       Transmit COUNT frames of SIZE bytes (tools/nmd_client.h format,
 *       stream 1) straight from the buffers, as fast as the socket takes
 *       them; prints the rate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "nmd_client.h"

#include "nmd_xdp.h"

#define BUF 2048u
#define NBUF 16384u
#define HEAD 0x19000u /* if and ring areas before the buffers, as netmapd has */
#define CANARY 0xa5

static uint8_t *map_region(void)
{
	int fd = memfd_create("xsk_bench", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, HEAD + (off_t)NBUF * BUF) < 0) {
		perror("memfd");
		exit(1);
	}
	uint8_t *p = mmap(NULL, HEAD + (size_t)NBUF * BUF, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static int attach(int ifindex, int xsk_fd, uint32_t queue, int *prog, int *map, int *mode)
{
	int frags;
	*map = nmd_xsk_map_create(64);
	*prog = nmd_xdp_prog_load(*map, &frags);
	if (*map < 0 || *prog < 0) {
		fprintf(stderr, "program: %s\n", strerror(-(*map < 0 ? *map : *prog)));
		return -1;
	}
	*mode = NMD_XDP_NATIVE;
	if (nmd_xdp_attach(ifindex, *prog, *mode) < 0) {
		*mode = NMD_XDP_GENERIC;
		int r = nmd_xdp_attach(ifindex, *prog, *mode);
		if (r < 0) {
			fprintf(stderr, "attach: %s\n", strerror(-r));
			return -1;
		}
	}
	return nmd_xsk_map_set(*map, queue, xsk_fd);
}

static int rx(const char *ifname, uint32_t queue, int land, double seconds, struct nmdf_sizes sz, int zc)
{
	uint8_t *mem = map_region();
	uint8_t *area = mem + HEAD;
	memset(area, CANARY, (size_t)NBUF * BUF);
	const uint32_t ring = 2048;
	struct nmd_xsk_params p = {
		.ifname = ifname, .queue = queue, .area = area, .area_size = (uint64_t)NBUF * BUF,
		.chunk_size = land ? BUF + 256 : BUF, .unaligned = land,
		.fill_size = ring * 2, .comp_size = 64, .rx_size = ring * 2, .tx_size = 0,
		.bind = zc ? NMD_XSK_BIND_ZEROCOPY : NMD_XSK_BIND_COPY,
	};
	int err;
	struct nmd_xsk *x = nmd_xsk_open(&p, &err);
	if (!x) {
		fprintf(stderr, "xsk: %s\n", strerror(-err));
		return 1;
	}
	int ifindex = (int)if_nametoindex(ifname), prog, map, mode;
	if (attach(ifindex, nmd_xsk_fd(x), queue, &prog, &map, &mode) < 0)
		return 1;
	/* copy: chunks 2 .. ring*2+1 belong to the socket, the "netmap
	 * ring" copies into buffers from 8192 on. land: buffers 2 .. are the
	 * "netmap ring" itself. */
	for (uint32_t i = 0; i < ring * 2 - 1; i++)
		nmd_xsk_fill_put(x, land ? (uint64_t)(i + 2) * BUF - 256 : (uint64_t)(i + 2) * BUF);
	nmd_xsk_fill_commit(x);
	fprintf(stderr, "xsk_bench: ready (%s queue %u, %s XDP, %s bind, rx %s)\n", ifname, queue,
		mode == NMD_XDP_NATIVE ? "native" : "generic", nmd_xsk_zerocopy(x) ? "zero-copy" : "copy",
		land ? "land" : "copy");
	uint64_t frames = 0, bytes = 0, bad = 0, sink = 8192;
	double t0 = 0, t1 = 0, busy = 0, start = nmd_now();
	struct pollfd pfd = { .fd = nmd_xsk_fd(x), .events = POLLIN };
	static uint64_t checked[256];
	/* land: the longest frame each buffer held (other traffic too, such
	 * as the kernel's IPv6 neighbour discovery) */
	static uint16_t longest[NBUF];
	static uint32_t checked_len[256];
	while (nmd_now() - start < seconds) {
		static struct nmd_xsk_desc descs[256];
		uint32_t n = nmd_xsk_rx_take(x, 256, descs);
		if (n == 0) {
			poll(&pfd, 1, 100);
			continue;
		}
		double b0 = nmd_now();
		if (frames == 0)
			t0 = b0;
		for (uint32_t i = 0; i < n; i++) {
			struct nmd_xsk_desc d = descs[i];
			uint64_t data = nmd_xsk_rx_data(x, d);
			uint64_t chunk;
			if (land) {
				if (data % BUF != 0)
					bad++;
				chunk = data - 256;
				/* the frame is in place: a netmap rxsync writes len */
				uint64_t b = data / BUF;
				if (b < NBUF && d.len > longest[b])
					longest[b] = (uint16_t)d.len;
				if (getenv("XSK_TOUCH"))
					for (uint32_t j = 0; j < d.len; j += 64)
						sink += area[data + j];
			} else {
				chunk = data & ~(uint64_t)(BUF - 1);
				memcpy(area + sink * BUF, area + data, d.len);
				data = sink * BUF;
				sink = sink + 1 < NBUF ? sink + 1 : 8192;
			}
			checked[i] = data;
			checked_len[i] = d.len;
			bytes += d.len;
			nmd_xsk_fill_put(x, chunk);
		}
		frames += n;
		nmd_xsk_rx_release(x, n);
		nmd_xsk_fill_commit(x);
		t1 = nmd_now();
		busy += t1 - b0;
		/* What a netmap client would do with the frames (not timed).
		 * Land: the buffers are back in the fill ring already, which a
		 * netmap ring would only do after the client released them, so
		 * a late check may see a newer frame: only the copy path's
		 * buffers are checked byte by byte. */
		for (uint32_t i = 0; i < n && !land; i++) {
			uint64_t seq;
			const char *why;
			if (nmdf_check(area + checked[i], checked_len[i], &sz, 1, &seq, &why) != NMDF_OK)
				bad++;
		}
	}
	double dt = t1 > t0 ? t1 - t0 : 1e-9;
	printf("xsk_bench rx %s: %llu frames, %.0f pps, %.3f Gbit/s, %.1f ns handling per frame, %llu bad\n",
	       land ? "land" : "copy", (unsigned long long)frames, (double)frames / dt, (double)bytes * 8 / dt / 1e9,
	       frames ? busy / (double)frames * 1e9 : 0.0, (unsigned long long)bad);
	if (land) {
		/* Every byte outside a frame must still be the canary: past the
		 * longest frame each buffer held, up to the next buffer — which
		 * includes the 256 bytes of "headroom" before the next buffer's
		 * frame, the kernel's XDP_PACKET_HEADROOM. */
		uint64_t touched = 0;
		for (uint32_t b = 2; b < ring * 2 + 1; b++)
			for (uint32_t j = longest[b]; j < BUF; j++)
				touched += area[(uint64_t)b * BUF + j] != CANARY;
		printf("xsk_bench rx land: %llu bytes outside frames changed\n", (unsigned long long)touched);
	}
	nmd_xdp_detach(ifindex, prog, mode);
	nmd_xsk_close(x);
	return 0;
}

static int tx(const char *ifname, uint32_t queue, uint64_t count, struct nmdf_sizes sz)
{
	uint8_t *mem = map_region();
	uint8_t *area = mem + HEAD;
	const uint32_t ring = 2048;
	struct nmd_xsk_params p = {
		.ifname = ifname, .queue = queue, .area = area, .area_size = (uint64_t)NBUF * BUF,
		.chunk_size = BUF, .fill_size = 64, .comp_size = ring, .rx_size = 0, .tx_size = ring,
		.bind = NMD_XSK_BIND_AUTO,
	};
	int err;
	struct nmd_xsk *x = nmd_xsk_open(&p, &err);
	if (!x) {
		fprintf(stderr, "xsk: %s\n", strerror(-err));
		return 1;
	}
	uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, src[6] = { 2, 0x6e, 0x6d, 0, 0, 9 };
	uint64_t sent = 0, done = 0, calls = 0;
	uint32_t next = 2;
	double t0 = nmd_now(), c0 = nmd_cpu();
	while (done < count) {
		done += nmd_xsk_tx_completed(x);
		uint32_t room = nmd_xsk_tx_room(x);
		uint64_t inflight = sent - done;
		if (room > ring - inflight)
			room = (uint32_t)(ring - inflight);
		for (uint32_t i = 0; i < room && sent < count; i++) {
			unsigned len = nmdf_build(area + (uint64_t)next * BUF, &sz, sent, 1, dst, src);
			nmd_xsk_tx_put(x, (uint64_t)next * BUF, len, 0);
			next = next + 1 < ring + 2 ? next + 1 : 2;
			sent++;
		}
		nmd_xsk_tx_commit(x);
		calls++;
	}
	double dt = nmd_now() - t0, dc = nmd_cpu() - c0;
	printf("xsk_bench tx: %llu frames of %u-%u bytes in %.3f s: %.0f pps, %.0f ns CPU per frame (%s bind), %llu rounds\n",
	       (unsigned long long)count, sz.min, sz.max, dt, (double)count / dt, dc / (double)count * 1e9,
	       nmd_xsk_zerocopy(x) ? "zero-copy" : "copy", (unsigned long long)calls);
	nmd_xsk_close(x);
	return 0;
}

int main(int argc, char **argv)
{
	struct nmdf_sizes sz;
	if (argc >= 7 && strcmp(argv[1], "rx") == 0 && nmdf_parse_sizes(argv[6], &sz) == 0)
		return rx(argv[2], (uint32_t)atoi(argv[3]), strcmp(argv[4], "land") == 0, atof(argv[5]), sz,
			  argc > 7 && strcmp(argv[7], "zc") == 0);
	if (argc >= 6 && strcmp(argv[1], "tx") == 0 && nmdf_parse_sizes(argv[5], &sz) == 0)
		return tx(argv[2], (uint32_t)atoi(argv[3]), strtoull(argv[4], NULL, 10), sz);
	fprintf(stderr, "usage: xsk_bench rx IF QUEUE copy|land SECONDS SIZE [copy|zc] | tx IF QUEUE COUNT SIZE\n");
	return 2;
}
