/*
 * xdp_gen.c: a traffic source fast enough to saturate a veth, for the
 * receiving side of netmapd benchmarks.
 *
 * It loads a four-instruction XDP program, written here as raw BPF
 * instructions (no compiler, no object file), that returns
 * bpf_redirect(IFINDEX, 0), and runs it with BPF_PROG_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel builds an xdp_frame from the test
 * data for every repetition, runs the program and carries out the redirect,
 * so each repetition puts one frame on IFNAME's transmit path
 * (ndo_xdp_xmit) without sockets or skbs. Runs are repeated in chunks until
 * SECONDS have passed; the chunk size adapts so the run ends close to it.
 *
 * The frame is test frame seq 0, stream 1 of tools/nmd_client.h (ethertype
 * 0x88b5, dst ff:ff:ff:ff:ff:ff, src 02:6e:6d:00:00:02), SIZE bytes; every
 * frame sent is that same frame.
 *
 * A veth delivers XDP-redirected frames to its peer only when the peer has
 * an XDP program (bench/xdp_drop) or NAPI enabled (ethtool -K PEER gro on,
 * or threaded NAPI); otherwise the frames are dropped. The count printed is
 * what was offered, not what arrived: read the peer's rx_packets
 * (/sys/class/net/PEER/statistics/rx_packets, or `ip -s link`) for that.
 * bpf_redirect takes an ifindex of the current network namespace: run it
 * there (ip netns exec NS xdp_gen ...). Needs CAP_SYS_ADMIN (root).
 *
 * Usage:
 *   xdp_gen IFNAME SECONDS SIZE       SIZE: frame length, 60..1514
 *
 * Output (one line on stdout):
 *   xdp_gen: frames=N seconds=S mpps=X
 * SIGINT/SIGTERM end the run early; frames of an interrupted chunk are not
 * counted. A second line, on stderr, gives IFNAME's tx_packets and
 * tx_dropped deltas over the run:
 *   xdp_gen: IFNAME tx_packets +N tx_dropped +M
 * On a veth, tx_packets counts frames the peer's queue accepted and
 * tx_dropped those refused because that queue was full; frames counted in
 * neither were refused outright (peer without NAPI or XDP). Other traffic on
 * IFNAME during the run is included.
 *
 * Build (from the repository root):
 *   gcc -O2 -g -Wall -Wextra -Werror -I tools -o bench/xdp_gen bench/xdp_gen.c -lbpf
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nmd_client.h"

#define CHUNK_MAX (1 << 20)
#define CHUNK_MIN (1 << 12)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A counter of IFNAME from sysfs (this namespace's), or -1. */
static long long stat_of(const char *ifname, const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "/sys/class/net/%s/statistics/%s", ifname, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long long v = -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn i;
	memset(&i, 0, sizeof i);
	i.code = code;
	i.dst_reg = dst & 0xf;
	i.src_reg = src & 0xf;
	i.off = off;
	i.imm = imm;
	return i;
}

/* r1 = ifindex; r2 = 0; r0 = bpf_redirect(r1, r2); return r0. */
static int load_redirect(int ifindex)
{
	struct bpf_insn prog[] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, ifindex),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 0),
		insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[8192];
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof log, .log_level = 0);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_gen", "GPL", prog, sizeof prog / sizeof prog[0], &opts);
	if (fd < 0) {
		fprintf(stderr, "xdp_gen: load XDP program: %s\n%s", strerror(-fd), log);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: xdp_gen IFNAME SECONDS SIZE\n");
		return 2;
	}
	const char *ifname = argv[1];
	char *e;
	double seconds = strtod(argv[2], &e);
	if (*e || !(seconds > 0)) {
		fprintf(stderr, "xdp_gen: bad SECONDS %s\n", argv[2]);
		return 2;
	}
	struct nmdf_sizes sizes;
	if (nmdf_parse_sizes(argv[3], &sizes) != 0 || sizes.min != sizes.max || sizes.max > NMDF_MAX) {
		fprintf(stderr, "xdp_gen: SIZE must be one length, %d..%d\n", NMDF_MIN, NMDF_MAX);
		return 2;
	}
	int ifindex = (int)if_nametoindex(ifname);
	if (ifindex == 0) {
		fprintf(stderr, "xdp_gen: no interface %s in this network namespace\n", ifname);
		return 1;
	}

	static const uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t src[6] = { 0x02, 0x6e, 0x6d, 0x00, 0x00, 0x02 };
	uint8_t frame[NMDF_MAX];
	unsigned len = nmdf_build(frame, &sizes, 0, 1, dst, src);

	int prog = load_redirect(ifindex);
	if (prog < 0)
		return 1;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	long long tx0 = stat_of(ifname, "tx_packets"), drop0 = stat_of(ifname, "tx_dropped");
	unsigned long long frames = 0;
	int chunk = CHUNK_MAX;
	double start = now(), end = start + seconds, t = start;
	while (!stop && t < end) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len, .repeat = chunk,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
		int err = bpf_prog_test_run_opts(prog, &run);
		if (err) {
			if (err == -EINTR || errno == EINTR)
				break;
			fprintf(stderr, "xdp_gen: BPF_PROG_RUN: %s\n", strerror(errno));
			return 1;
		}
		frames += (unsigned long long)chunk;
		t = now();
		/* Size the next chunk to about a tenth of a second, and no more
		 * than what is left. */
		double rate = (double)frames / (t - start);
		double want = rate * (end - t < 0.1 ? end - t : 0.1);
		chunk = want > CHUNK_MAX ? CHUNK_MAX : want < CHUNK_MIN ? CHUNK_MIN : (int)want;
	}
	double elapsed = now() - start;
	printf("xdp_gen: frames=%llu seconds=%.3f mpps=%.3f\n", frames, elapsed, (double)frames / elapsed / 1e6);
	fflush(stdout);
	long long tx1 = stat_of(ifname, "tx_packets"), drop1 = stat_of(ifname, "tx_dropped");
	if (tx0 >= 0 && tx1 >= 0 && drop0 >= 0 && drop1 >= 0)
		fprintf(stderr, "xdp_gen: %s tx_packets +%lld tx_dropped +%lld\n", ifname, tx1 - tx0, drop1 - drop0);
	return 0;
}
