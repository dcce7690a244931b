/*
 * xdp_drop.c: attach or detach an XDP program that drops every frame; the
 * cheapest possible receiver at the far end of a TX benchmark.
 *
 * The program is two raw BPF instructions (r0 = XDP_DROP; exit), loaded with
 * bpf_prog_load and attached through netlink with bpf_xdp_attach, so it
 * stays attached after this tool exits, until "detach". Native (driver) mode
 * is tried first; where the driver has no XDP support it falls back to
 * generic (SKB) mode and says so on stderr. On a veth, a native XDP program
 * also turns on the device's NAPI, which is what lets its peer's
 * XDP-redirected frames (bench/xdp_gen) arrive at all; dropped frames still
 * count in rx_packets (/sys/class/net/IFNAME/statistics/rx_packets).
 *
 * An interface that already has an XDP program is left alone (error).
 * "detach" removes whatever XDP program IFNAME has, in the mode it has it.
 * Needs CAP_NET_ADMIN and CAP_BPF (root); run it in the interface's network
 * namespace (ip netns exec NS xdp_drop ...).
 *
 * Usage:
 *   xdp_drop attach IFNAME
 *   xdp_drop detach IFNAME
 *
 * Output (stdout, one line):
 *   xdp_drop: attached to IFNAME (native|generic mode, prog id N)
 *   xdp_drop: detached from IFNAME
 * Exit status 0 on success, 1 on failure (message on stderr).
 *
 * Build (from the repository root):
 *   gcc -O2 -g -Wall -Wextra -Werror -o bench/xdp_drop bench/xdp_drop.c -lbpf
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct bpf_insn insn(uint8_t code, uint8_t dst, int32_t imm)
{
	struct bpf_insn i;
	memset(&i, 0, sizeof i);
	i.code = code;
	i.dst_reg = dst & 0xf;
	i.imm = imm;
	return i;
}

static int load_drop(void)
{
	struct bpf_insn prog[] = {
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, XDP_DROP),
		insn(BPF_JMP | BPF_EXIT, 0, 0),
	};
	static char log[4096];
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof log);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_drop", "GPL", prog, sizeof prog / sizeof prog[0], &opts);
	if (fd < 0)
		fprintf(stderr, "xdp_drop: load XDP program: %s\n%s", strerror(-fd), log);
	return fd;
}

static int attach(const char *ifname, int ifindex)
{
	int prog = load_drop();
	if (prog < 0)
		return 1;
	const char *mode = "native";
	int err = bpf_xdp_attach(ifindex, prog, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	if (err == -EBUSY || err == -EEXIST) {
		fprintf(stderr, "xdp_drop: %s already has an XDP program (xdp_drop detach %s first)\n", ifname,
			ifname);
		return 1;
	}
	if (err) {
		fprintf(stderr, "xdp_drop: native XDP on %s failed (%s); falling back to generic (SKB) mode\n",
			ifname, strerror(-err));
		mode = "generic";
		err = bpf_xdp_attach(ifindex, prog, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (err) {
			fprintf(stderr, "xdp_drop: generic XDP on %s: %s\n", ifname, strerror(-err));
			return 1;
		}
	}
	struct bpf_prog_info info;
	uint32_t info_len = sizeof info;
	memset(&info, 0, sizeof info);
	unsigned id = 0;
	if (bpf_obj_get_info_by_fd(prog, &info, &info_len) == 0)
		id = info.id;
	printf("xdp_drop: attached to %s (%s mode, prog id %u)\n", ifname, mode, id);
	close(prog); /* the attachment keeps the program */
	return 0;
}

static int detach(const char *ifname, int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		fprintf(stderr, "xdp_drop: query XDP on %s: %s\n", ifname, strerror(-err));
		return 1;
	}
	uint32_t flags;
	switch (q.attach_mode) {
	case XDP_ATTACHED_NONE:
		fprintf(stderr, "xdp_drop: %s has no XDP program\n", ifname);
		return 1;
	case XDP_ATTACHED_DRV:
		flags = XDP_FLAGS_DRV_MODE;
		break;
	case XDP_ATTACHED_SKB:
		flags = XDP_FLAGS_SKB_MODE;
		break;
	case XDP_ATTACHED_HW:
		flags = XDP_FLAGS_HW_MODE;
		break;
	default:
		fprintf(stderr, "xdp_drop: %s has XDP programs in several modes; detach them by hand\n", ifname);
		return 1;
	}
	err = bpf_xdp_detach(ifindex, flags, NULL);
	if (err) {
		fprintf(stderr, "xdp_drop: detach XDP from %s: %s\n", ifname, strerror(-err));
		return 1;
	}
	printf("xdp_drop: detached from %s\n", ifname);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "attach") != 0 && strcmp(argv[1], "detach") != 0)) {
		fprintf(stderr, "usage: xdp_drop attach IFNAME\n       xdp_drop detach IFNAME\n");
		return 2;
	}
	int ifindex = (int)if_nametoindex(argv[2]);
	if (ifindex == 0) {
		fprintf(stderr, "xdp_drop: no interface %s in this network namespace\n", argv[2]);
		return 1;
	}
	return strcmp(argv[1], "attach") == 0 ? attach(argv[2], ifindex) : detach(argv[2], ifindex);
}
