/*
 * nmd_packet.c: see nmd_packet.h.
 */
#define _GNU_SOURCE
#include "nmd_packet.h"

#include <stddef.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/pkt_cls.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

_Static_assert(sizeof(struct nmd_tp2_hdr) == sizeof(struct tpacket2_hdr), "tpacket2_hdr");
_Static_assert(offsetof(struct nmd_tp2_hdr, tp_vlan_tpid) == offsetof(struct tpacket2_hdr, tp_vlan_tpid), "tpid");
_Static_assert(NMD_TP_STATUS_VLAN_VALID == TP_STATUS_VLAN_VALID &&
	       NMD_TP_STATUS_VLAN_TPID_VALID == TP_STATUS_VLAN_TPID_VALID, "TP_STATUS_VLAN");
_Static_assert(offsetof(struct nmd_tp2_hdr, tp_mac) == offsetof(struct tpacket2_hdr, tp_mac), "tp_mac");
_Static_assert(offsetof(struct nmd_tp2_hdr, tp_snaplen) == offsetof(struct tpacket2_hdr, tp_snaplen), "tp_snaplen");
_Static_assert(NMD_TP_STATUS_USER == TP_STATUS_USER && NMD_TP_STATUS_KERNEL == TP_STATUS_KERNEL &&
	       NMD_TP_STATUS_CSUMNOTREADY == TP_STATUS_CSUMNOTREADY, "TP_STATUS");

/* ---- AF_PACKET sockets ---- */

int nmd_packet_open(int receive)
{
	/* Protocol 0: the socket receives nothing until nmd_packet_bind hooks it
	 * to one interface with ETH_P_ALL. Opened with ETH_P_ALL it would take
	 * every interface's frames until then, and count them in tp_drops when
	 * they do not fit. */
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (receive && setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* Receive: frames a host TX ring gives the stack enter the interface's
	 * receive path and would show up here; they are not from the wire.
	 * Transmit: marked so a host RX capture filter lets them pass. */
	struct sock_filter not_injected[] = {
		{ BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)(SKF_AD_OFF + SKF_AD_MARK) },
		{ BPF_JMP | BPF_JEQ | BPF_K, 0, 1, NMD_MARK_HOST_TX },
		{ BPF_RET | BPF_K, 0, 0, 0 },
		{ BPF_RET | BPF_K, 0, 0, 0xffffffffu },
	};
	struct sock_fprog fprog = { .len = 4, .filter = not_injected };
	uint32_t mark = NMD_MARK_DAEMON_TX;
	int r = receive ? setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog)
			: setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
	if (r < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int nmd_packet_bind(int fd, int ifindex, int receive)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = receive ? htons(ETH_P_ALL) : 0,
				   .sll_ifindex = ifindex };
	return bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0 ? -errno : 0;
}

int nmd_packet_set_qdisc_bypass(int fd, int on)
{
	return setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &on, sizeof on) < 0 ? -errno : 0;
}

int nmd_packet_join_fanout(int fd, int group, int by_queue)
{
	int flags = PACKET_FANOUT_FLAG_ROLLOVER | (group < 0 ? PACKET_FANOUT_FLAG_UNIQUEID : 0);
	int mode = by_queue ? PACKET_FANOUT_QM : PACKET_FANOUT_HASH;
	int arg = (group < 0 ? 0 : group & 0xffff) | ((mode | flags) << 16);
	if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0)
		return -errno;
	socklen_t len = sizeof arg;
	if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, &len) < 0)
		return -errno;
	return arg & 0xffff;
}

int nmd_packet_set_buffers(int fd, int sndbuf, int rcvbuf)
{
	if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0)
		return -errno;
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
		return -errno;
	return 0;
}

int64_t nmd_packet_drops(int fd)
{
	struct tpacket_stats st;
	socklen_t len = sizeof st;
	if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
		return -errno;
	return st.tp_drops;
}

/* ---- TPACKET_V2 receive ring ---- */

int nmd_rx_ring_setup(int fd, uint32_t max_frame, uint32_t frame_count, struct nmd_rx_ring *ring)
{
	int v = TPACKET_V2;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0)
		return -errno;
	/* Frame: tpacket2_hdr + sockaddr_ll, the MAC header aligned so the
	 * network header lands on TPACKET_ALIGNMENT, then the packet. */
	uint32_t need = TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + max_frame;
	uint32_t fsize = TPACKET_ALIGN(need);
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
	/* A block holds whole frames; take the smallest page multiple that
	 * wastes less than one frame in eight. */
	uint32_t bsize = page;
	while (bsize < fsize || (bsize % fsize) * 8 > bsize)
		bsize += page;
	uint32_t per_block = bsize / fsize;
	uint32_t blocks = (frame_count + per_block - 1) / per_block;
	struct tpacket_req req = { .tp_block_size = bsize, .tp_block_nr = blocks, .tp_frame_size = fsize,
				   .tp_frame_nr = blocks * per_block };
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0)
		return -errno;
	size_t len = (size_t)bsize * blocks;
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	ring->map = map;
	ring->map_len = len;
	ring->block_size = bsize;
	ring->frame_size = fsize;
	ring->frames_per_block = per_block;
	ring->frame_count = req.tp_frame_nr;
	return 0;
}

void nmd_rx_ring_unmap(struct nmd_rx_ring *ring)
{
	if (ring->map)
		munmap(ring->map, ring->map_len);
	ring->map = NULL;
}


/* ---- transmission with sendmmsg ---- */

struct nmd_tx_batch {
	uint32_t max_msgs, max_frags;
	uint32_t msgs, frags;      /* complete messages; fragments used */
	uint32_t open_first;       /* first fragment of the message being built */
	struct mmsghdr *m;
	struct iovec *v;
};

struct nmd_tx_batch *nmd_tx_batch_new(uint32_t max_messages, uint32_t max_fragments)
{
	struct nmd_tx_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->max_msgs = max_messages;
	b->max_frags = max_fragments;
	b->m = calloc(max_messages, sizeof *b->m);
	b->v = calloc(max_fragments, sizeof *b->v);
	if (!b->m || !b->v) {
		nmd_tx_batch_free(b);
		return NULL;
	}
	return b;
}

void nmd_tx_batch_free(struct nmd_tx_batch *b)
{
	if (!b)
		return;
	free(b->m);
	free(b->v);
	free(b);
}

void nmd_tx_batch_reset(struct nmd_tx_batch *b)
{
	b->msgs = b->frags = b->open_first = 0;
}

uint32_t nmd_tx_batch_count(const struct nmd_tx_batch *b)
{
	return b->msgs;
}

int nmd_tx_batch_add(struct nmd_tx_batch *b, const void *data, uint32_t len)
{
	if (b->frags >= b->max_frags || b->msgs >= b->max_msgs)
		return -ENOSPC;
	b->v[b->frags].iov_base = (void *)data;
	b->v[b->frags].iov_len = len;
	b->frags++;
	return 0;
}

uint32_t nmd_tx_batch_end(struct nmd_tx_batch *b)
{
	if (b->frags > b->open_first && b->msgs < b->max_msgs) {
		b->m[b->msgs].msg_hdr = (struct msghdr){ .msg_iov = &b->v[b->open_first],
							 .msg_iovlen = b->frags - b->open_first };
		b->m[b->msgs].msg_len = 0;
		b->msgs++;
		b->open_first = b->frags;
	}
	return b->msgs;
}

void nmd_tx_batch_drop_partial(struct nmd_tx_batch *b)
{
	b->frags = b->open_first;
}

int nmd_tx_batch_send(int fd, const struct nmd_tx_batch *b, uint32_t from)
{
	if (from >= b->msgs)
		return 0;
	int r = sendmmsg(fd, &b->m[from], b->msgs - from, MSG_DONTWAIT);
	return r < 0 ? -errno : r;
}

/* ---- epoll ---- */

_Static_assert(NMD_EPOLLIN == EPOLLIN && NMD_EPOLLOUT == EPOLLOUT && NMD_EPOLLERR == EPOLLERR &&
	       NMD_EPOLLHUP == EPOLLHUP && NMD_EPOLLONESHOT == EPOLLONESHOT, "epoll bits");

int nmd_epoll_create(void)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int ctl(int epfd, int op, int fd, uint32_t events, uint64_t id)
{
	struct epoll_event ev = { .events = events, .data.u64 = id };
	return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int nmd_epoll_add(int epfd, int fd, uint32_t events, uint64_t id)
{
	return ctl(epfd, EPOLL_CTL_ADD, fd, events, id);
}

int nmd_epoll_mod(int epfd, int fd, uint32_t events, uint64_t id)
{
	return ctl(epfd, EPOLL_CTL_MOD, fd, events, id);
}

int nmd_epoll_del(int epfd, int fd)
{
	return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int nmd_epoll_wait(int epfd, uint64_t *ids, uint32_t *events, int max, int timeout_ms)
{
	struct epoll_event ev[64];
	if (max > 64)
		max = 64;
	int n = epoll_wait(epfd, ev, max, timeout_ms);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		ids[i] = ev[i].data.u64;
		events[i] = ev[i].events;
	}
	return n;
}

int nmd_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int nmd_eventfd_signal(int fd)
{
	uint64_t one = 1;
	return write(fd, &one, sizeof one) < 0 ? -errno : 0;
}

/* ---- stealing ---- */

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* libbpf reports expected failures (no clsact yet, no filter) on stderr;
 * the Swift side reports what matters. */
static void quiet(void)
{
	libbpf_set_print(quiet_libbpf);
}

/* 1 if program `prog_id` is named `name` (ours, from this or an earlier daemon). */
static int prog_named(uint32_t prog_id, const char *name)
{
	int pfd = bpf_prog_get_fd_by_id(prog_id);
	if (pfd < 0)
		return 0;
	struct bpf_prog_info info;
	memset(&info, 0, sizeof info);
	uint32_t len = sizeof info;
	int ours = bpf_obj_get_info_by_fd(pfd, &info, &len) == 0 &&
		   strncmp(info.name, name, sizeof info.name - 1) == 0;
	close(pfd);
	return ours;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define LOAD_MARK(d) INSN(BPF_LDX | BPF_MEM | BPF_W, d, BPF_REG_1, offsetof(struct __sk_buff, mark), 0)
#define STORE_MARK(s) INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_1, s, offsetof(struct __sk_buff, mark), 0)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)

static int load_cls(const char *name, const struct bpf_insn *prog, size_t n)
{
	quiet();
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name, "GPL", prog, n, NULL);
	return fd < 0 ? -errno : fd;
}

/* A frame marked `mark` has the mark cleared and passes (TC_ACT_OK); any
 * other gets `verdict`. */
static int load_mark_filter(const char *name, uint32_t mark, int verdict)
{
	struct bpf_insn prog[] = {
		LOAD_MARK(BPF_REG_2),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 4, (int32_t)mark),
		MOV_IMM(BPF_REG_2, 0),
		STORE_MARK(BPF_REG_2),
		MOV_IMM(BPF_REG_0, TC_ACT_OK),
		EXIT(),
		MOV_IMM(BPF_REG_0, verdict),
		EXIT(),
	};
	return load_cls(name, prog, sizeof prog / sizeof prog[0]);
}

int nmd_steal_load(void)
{
	/* Everything is dropped but what a host TX ring gives the stack. */
	return load_mark_filter(NMD_STEAL_PROG_NAME, NMD_MARK_HOST_TX, TC_ACT_SHOT);
}

/* ---- the host path ---- */

int nmd_host_load_pass(void)
{
	return load_mark_filter(NMD_HOSTIN_PROG_NAME, NMD_MARK_HOST_TX, TC_ACT_OK);
}

int nmd_host_load_capture(int tap_ifindex)
{
	struct bpf_insn prog[] = {
		LOAD_MARK(BPF_REG_2),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 4, (int32_t)NMD_MARK_DAEMON_TX),
		MOV_IMM(BPF_REG_2, 0),
		STORE_MARK(BPF_REG_2),
		MOV_IMM(BPF_REG_0, TC_ACT_OK),
		EXIT(),
		MOV_IMM(BPF_REG_1, tap_ifindex),
		MOV_IMM(BPF_REG_2, 0),
		CALL(BPF_FUNC_redirect),
		EXIT(),
	};
	return load_cls(NMD_HOSTRX_PROG_NAME, prog, sizeof prog / sizeof prog[0]);
}

int nmd_host_load_inject(int ifindex)
{
	struct bpf_insn prog[] = {
		MOV_IMM(BPF_REG_2, (int32_t)NMD_MARK_HOST_TX),
		STORE_MARK(BPF_REG_2),
		MOV_IMM(BPF_REG_1, ifindex),
		MOV_IMM(BPF_REG_2, BPF_F_INGRESS),
		CALL(BPF_FUNC_redirect),
		EXIT(),
	};
	return load_cls(NMD_HOSTTX_PROG_NAME, prog, sizeof prog / sizeof prog[0]);
}

int nmd_host_tap_open(const char *name, int mtu, int queues, int *fds, int *ifindex)
{
	struct ifreq ifr;
	int s = -1, e = 0, opened = 0;
	for (; opened < queues; opened++) {
		int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			goto fail;
		fds[opened] = fd;
		memset(&ifr, 0, sizeof ifr);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0);
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			e = errno;
			close(fd);
			errno = e;
			goto fail;
		}
	}
	/* Nothing of the stack's own may go out on it: no IPv6 (router and
	 * neighbour solicitations), no ARP, no address. */
	char path[96];
	snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifr.ifr_name);
	int p = open(path, O_WRONLY | O_CLOEXEC);
	if (p >= 0) {
		(void)!write(p, "1", 1);
		close(p);
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto fail;
	ifr.ifr_mtu = mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
		goto fail;
	ifr.ifr_qlen = 4096;
	if (ioctl(s, SIOCSIFTXQLEN, &ifr) < 0)
		goto fail;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_NOARP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		goto fail;
	*ifindex = ifr.ifr_ifindex;
	close(s);
	return 0;
fail:
	e = errno;
	if (s >= 0)
		close(s);
	while (opened > 0)
		close(fds[--opened]);
	return -e;
}

static struct bpf_tc_hook host_hook(int ifindex, int egress)
{
	struct bpf_tc_hook h = { .sz = sizeof h, .ifindex = ifindex,
				 .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS };
	return h;
}

int nmd_host_attach(int ifindex, int egress, int prog_fd, int *created)
{
	quiet();
	struct bpf_tc_hook h = host_hook(ifindex, egress);
	int r = bpf_tc_hook_create(&h);
	if (r < 0 && r != -EEXIST)
		return r;
	*created = r == 0;
	struct bpf_tc_opts o = { .sz = sizeof o, .prog_fd = prog_fd, .handle = NMD_HOST_HANDLE,
				 .priority = NMD_HOST_PRIORITY, .flags = BPF_TC_F_REPLACE };
	r = bpf_tc_attach(&h, &o);
	return r < 0 ? r : 0;
}

int nmd_host_detach(int ifindex, int egress)
{
	quiet();
	struct bpf_tc_hook h = host_hook(ifindex, egress);
	struct bpf_tc_opts o = { .sz = sizeof o, .handle = NMD_HOST_HANDLE, .priority = NMD_HOST_PRIORITY };
	return bpf_tc_detach(&h, &o);
}

int nmd_host_present(int ifindex, int egress)
{
	quiet();
	struct bpf_tc_hook h = host_hook(ifindex, egress);
	struct bpf_tc_opts o = { .sz = sizeof o, .handle = NMD_HOST_HANDLE, .priority = NMD_HOST_PRIORITY };
	if (bpf_tc_query(&h, &o) < 0 || o.prog_id == 0)
		return 0;
	return prog_named(o.prog_id, egress ? NMD_HOSTRX_PROG_NAME : NMD_HOSTIN_PROG_NAME);
}

static struct bpf_tc_hook ingress_hook(int ifindex)
{
	struct bpf_tc_hook h = { .sz = sizeof h, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS };
	return h;
}

static struct bpf_tc_opts our_filter(int prog_fd)
{
	struct bpf_tc_opts o = { .sz = sizeof o, .prog_fd = prog_fd, .handle = NMD_STEAL_HANDLE,
				 .priority = NMD_STEAL_PRIORITY };
	return o;
}

int nmd_steal_attach(int ifindex, int prog_fd, int *created)
{
	quiet();
	struct bpf_tc_hook h = ingress_hook(ifindex);
	int r = bpf_tc_hook_create(&h);
	if (r < 0 && r != -EEXIST)
		return r;
	*created = r == 0;
	struct bpf_tc_opts o = our_filter(prog_fd);
	o.flags = BPF_TC_F_REPLACE;
	r = bpf_tc_attach(&h, &o);
	if (r < 0 && *created) {
		struct bpf_tc_hook both = { .sz = sizeof both, .ifindex = ifindex,
					    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS };
		bpf_tc_hook_destroy(&both);
		*created = 0;
	}
	return r < 0 ? r : 0;
}

int nmd_steal_detach(int ifindex)
{
	quiet();
	struct bpf_tc_hook h = ingress_hook(ifindex);
	struct bpf_tc_opts o = our_filter(0);
	return bpf_tc_detach(&h, &o);
}

int nmd_steal_present(int ifindex)
{
	quiet();
	struct bpf_tc_hook h = ingress_hook(ifindex);
	struct bpf_tc_opts o = our_filter(0);
	if (bpf_tc_query(&h, &o) < 0 || o.prog_id == 0)
		return 0;
	return prog_named(o.prog_id, NMD_STEAL_PROG_NAME);
}

int nmd_clsact_remove(int ifindex)
{
	quiet();
	struct bpf_tc_hook h = { .sz = sizeof h, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS };
	return bpf_tc_hook_destroy(&h);
}

/* ---- network namespaces ---------------------------------------------------- */

int nmd_netns_open(int tid)
{
	char path[64];
	if (tid > 0)
		snprintf(path, sizeof path, "/proc/%d/ns/net", tid);
	else
		snprintf(path, sizeof path, "/proc/thread-self/ns/net");
	return nmd_netns_open_path(path);
}

int nmd_netns_open_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

int nmd_netns_id(int fd, uint64_t *id)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	*id = (uint64_t)st.st_ino;
	return 0;
}

int nmd_netns_enter(int fd)
{
	return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}
