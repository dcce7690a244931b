/*
 * nmd_xdp.c: see nmd_xdp.h.
 */
#define _GNU_SOURCE
#include "nmd_xdp.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <stdio.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

/* Newer than the uapi headers Debian 12 ships. */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif
_Static_assert(NMD_XSK_CONTD == XDP_PKT_CONTD, "XDP_PKT_CONTD");

struct nmd_xsk {
	/* libxdp reads these before writing them: they start zeroed. */
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	struct xsk_umem *umem;
	struct xsk_socket *sock;
	int fd;
	int zerocopy, sg, unaligned;
	uint32_t fill_pending, tx_pending;
	uint32_t rx_taken;
};

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* Both libraries print expected failures (a refused zero-copy bind, no
 * program yet) on stderr; the Swift side reports what matters. */
static void quiet(void)
{
	libbpf_set_print(quiet_print);
	libxdp_set_print((libxdp_print_fn_t)quiet_print);
}

static int try_open(struct nmd_xsk *x, const struct nmd_xsk_params *p, int zc, int sg)
{
	struct xsk_umem_config uc = {
		.fill_size = p->fill_size,
		.comp_size = p->comp_size,
		.frame_size = p->chunk_size,
		.frame_headroom = 0,
		.flags = p->unaligned ? XDP_UMEM_UNALIGNED_CHUNK_FLAG : 0,
	};
	memset(&x->fill, 0, sizeof x->fill);
	memset(&x->comp, 0, sizeof x->comp);
	memset(&x->rx, 0, sizeof x->rx);
	memset(&x->tx, 0, sizeof x->tx);
	int r = xsk_umem__create(&x->umem, p->area, p->area_size, &x->fill, &x->comp, &uc);
	if (r < 0)
		return r;
	struct xsk_socket_config sc = {
		.rx_size = p->rx_size,
		.tx_size = p->tx_size,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = 0,
		.bind_flags = XDP_USE_NEED_WAKEUP | (zc ? XDP_ZEROCOPY : XDP_COPY) | (sg ? XDP_USE_SG : 0),
	};
	r = xsk_socket__create(&x->sock, p->ifname, p->queue, x->umem, p->rx_size ? &x->rx : NULL,
			       p->tx_size ? &x->tx : NULL, &sc);
	if (r < 0) {
		xsk_umem__delete(x->umem);
		x->umem = NULL;
		x->sock = NULL;
		return r;
	}
	x->fd = xsk_socket__fd(x->sock);
	x->zerocopy = zc;
	x->sg = sg;
	return 0;
}

struct nmd_xsk *nmd_xsk_open(const struct nmd_xsk_params *p, int *err)
{
	quiet();
	struct nmd_xsk *x = calloc(1, sizeof *x);
	if (!x) {
		*err = -ENOMEM;
		return NULL;
	}
	x->unaligned = p->unaligned;
	int r = -EINVAL;
	/* Most wanted first: zero-copy with SG, then without SG, then copy. */
	for (int zc = p->bind == NMD_XSK_BIND_COPY ? 0 : 1; zc >= 0; zc--) {
		if (!zc && p->bind == NMD_XSK_BIND_ZEROCOPY)
			break;
		for (int sg = p->scatter_gather ? 1 : 0; sg >= 0; sg--) {
			r = try_open(x, p, zc, sg);
			if (r == 0)
				return x;
			/* No such queue, no such device, no memory: no other
			 * combination will do better. */
			if (r == -ENODEV || r == -ENOMEM || r == -ENXIO)
				goto fail;
		}
	}
fail:
	free(x);
	*err = r;
	return NULL;
}

void nmd_xsk_close(struct nmd_xsk *x)
{
	if (!x)
		return;
	if (x->sock)
		xsk_socket__delete(x->sock);
	if (x->umem)
		xsk_umem__delete(x->umem);
	free(x);
}

int nmd_xsk_fd(const struct nmd_xsk *x)
{
	return x->fd;
}

int nmd_xsk_zerocopy(const struct nmd_xsk *x)
{
	return x->zerocopy;
}

int nmd_xsk_scatter_gather(const struct nmd_xsk *x)
{
	return x->sg;
}

/* ---- fill ---- */

uint32_t nmd_xsk_fill_room(struct nmd_xsk *x)
{
	/* Reserved entries are already counted out. */
	return xsk_prod_nb_free(&x->fill, x->fill.size);
}

void nmd_xsk_fill_put(struct nmd_xsk *x, uint64_t addr)
{
	uint32_t idx;
	if (xsk_ring_prod__reserve(&x->fill, 1, &idx) != 1)
		return;
	*xsk_ring_prod__fill_addr(&x->fill, idx) = addr;
	x->fill_pending++;
}

uint32_t nmd_xsk_fill_many(struct nmd_xsk *x, const uint32_t *bufs, uint32_t n, unsigned shift, uint64_t back)
{
	uint32_t room = xsk_prod_nb_free(&x->fill, n);
	if (room > n)
		room = n;
	uint32_t idx;
	if (room == 0 || xsk_ring_prod__reserve(&x->fill, room, &idx) != room)
		return 0;
	for (uint32_t i = 0; i < room; i++)
		*xsk_ring_prod__fill_addr(&x->fill, idx + i) = ((uint64_t)bufs[n - 1 - i] << shift) - back;
	x->fill_pending += room;
	return room;
}

int nmd_xsk_fill_commit(struct nmd_xsk *x)
{
	if (x->fill_pending) {
		xsk_ring_prod__submit(&x->fill, x->fill_pending);
		x->fill_pending = 0;
	}
	if (xsk_ring_prod__needs_wakeup(&x->fill)) {
		if (recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL) < 0 && errno != EAGAIN && errno != EBUSY &&
		    errno != EINTR)
			return -errno;
	}
	return 0;
}

/* ---- RX ---- */

uint32_t nmd_xsk_rx_take(struct nmd_xsk *x, uint32_t max, struct nmd_xsk_desc *out)
{
	uint32_t idx = 0;
	uint32_t n = xsk_ring_cons__peek(&x->rx, max, &idx);
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
		out[i].addr = d->addr;
		out[i].len = d->len;
		out[i].options = d->options;
	}
	x->rx_taken = n;
	return n;
}

void nmd_xsk_rx_release(struct nmd_xsk *x, uint32_t n)
{
	if (n > x->rx_taken)
		n = x->rx_taken;
	xsk_ring_cons__cancel(&x->rx, x->rx_taken - n);
	if (n)
		xsk_ring_cons__release(&x->rx, n);
	x->rx_taken = 0;
}

uint64_t nmd_xsk_rx_data(const struct nmd_xsk *x, struct nmd_xsk_desc d)
{
	return x->unaligned ? xsk_umem__add_offset_to_addr(d.addr) : d.addr;
}

uint32_t nmd_xsk_rx_ready(const struct nmd_xsk *x)
{
	if (!x->rx.producer)
		return 0;
	uint32_t prod = __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE);
	uint32_t cons = __atomic_load_n(x->rx.consumer, __ATOMIC_RELAXED);
	return prod - cons;
}

/* ---- TX ---- */

uint32_t nmd_xsk_tx_room(struct nmd_xsk *x)
{
	return xsk_prod_nb_free(&x->tx, x->tx.size);
}

void nmd_xsk_tx_put(struct nmd_xsk *x, uint64_t addr, uint32_t len, uint32_t options)
{
	uint32_t idx;
	if (xsk_ring_prod__reserve(&x->tx, 1, &idx) != 1)
		return;
	struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx);
	d->addr = addr;
	d->len = len;
	d->options = options;
	x->tx_pending++;
}

uint32_t nmd_xsk_tx_queued(const struct nmd_xsk *x)
{
	if (!x->tx.producer)
		return 0;
	uint32_t prod = __atomic_load_n(x->tx.producer, __ATOMIC_RELAXED);
	uint32_t cons = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
	return prod - cons;
}

int nmd_xsk_tx_kick(struct nmd_xsk *x)
{
	/* In copy mode one call transmits a bounded batch; call again while
	 * the kernel keeps taking descriptors. */
	uint32_t before = nmd_xsk_tx_queued(x);
	for (int i = 0; i < 256 && before > 0; i++) {
		if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
			int e = errno;
			if (e == ENETDOWN || e == ENXIO || e == ENODEV)
				return -e;
			if (e != EAGAIN && e != EBUSY && e != ENOBUFS && e != EINTR)
				return -e;
		}
		uint32_t now = nmd_xsk_tx_queued(x);
		if (now >= before)
			break;
		before = now;
	}
	return 0;
}

int nmd_xsk_tx_commit(struct nmd_xsk *x)
{
	if (x->tx_pending) {
		xsk_ring_prod__submit(&x->tx, x->tx_pending);
		x->tx_pending = 0;
	}
	if (!xsk_ring_prod__needs_wakeup(&x->tx))
		return 0;
	return nmd_xsk_tx_kick(x);
}

uint32_t nmd_xsk_tx_completed(struct nmd_xsk *x)
{
	uint32_t idx, n = xsk_ring_cons__peek(&x->comp, x->comp.size, &idx);
	if (n)
		xsk_ring_cons__release(&x->comp, n);
	return n;
}

uint32_t nmd_xsk_comp_ready(const struct nmd_xsk *x)
{
	uint32_t prod = __atomic_load_n(x->comp.producer, __ATOMIC_ACQUIRE);
	uint32_t cons = __atomic_load_n(x->comp.consumer, __ATOMIC_RELAXED);
	return prod - cons;
}

int nmd_xsk_stats(const struct nmd_xsk *x, struct nmd_xsk_stats *s)
{
	struct xdp_statistics st;
	memset(&st, 0, sizeof st);
	socklen_t len = sizeof st;
	if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &st, &len) < 0)
		return -errno;
	s->rx_dropped = st.rx_dropped;
	s->rx_invalid = st.rx_invalid_descs;
	s->tx_invalid = st.tx_invalid_descs;
	s->rx_ring_full = st.rx_ring_full;
	s->fill_empty = st.rx_fill_ring_empty_descs;
	s->tx_empty = st.tx_ring_empty_descs;
	return 0;
}

/* ---- the XDP program ---- */

int nmd_xsk_map_create(uint32_t entries)
{
	quiet();
	int fd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, NMD_XDP_MAP_NAME, sizeof(uint32_t), sizeof(uint32_t),
				entries ? entries : 1, NULL);
	return fd < 0 ? -errno : fd;
}

int nmd_xsk_map_set(int map_fd, uint32_t queue, int xsk_fd)
{
	uint32_t v = (uint32_t)xsk_fd;
	return bpf_map_update_elem(map_fd, &queue, &v, BPF_ANY) < 0 ? -errno : 0;
}

int nmd_xsk_map_clear(int map_fd, uint32_t queue)
{
	if (bpf_map_delete_elem(map_fd, &queue) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int nmd_xdp_prog_load(int map_fd, int *frags)
{
	quiet();
	/* r2 = ctx->rx_queue_index; r1 = map; r3 = XDP_PASS (what
	 * bpf_redirect_map returns when the queue has no socket);
	 * return bpf_redirect_map(r1, r2, r3) */
	struct bpf_insn prog[] = {
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, rx_queue_index) },
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd },
		{ 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	size_t n = sizeof prog / sizeof prog[0];
	LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_flags = BPF_F_XDP_HAS_FRAGS);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, NMD_XDP_PROG_NAME, "GPL", prog, n, &o);
	if (fd >= 0) {
		*frags = 1;
		return fd;
	}
	/* A kernel without multi-buffer XDP. */
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, NMD_XDP_PROG_NAME, "GPL", prog, n, NULL);
	*frags = 0;
	return fd < 0 ? -errno : fd;
}

static uint32_t mode_flags(int mode)
{
	return mode == NMD_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
}

int nmd_xdp_attach(int ifindex, int prog_fd, int mode)
{
	quiet();
	int r = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | mode_flags(mode), NULL);
	return r < 0 ? r : 0;
}

int nmd_xdp_detach(int ifindex, int prog_fd, int mode)
{
	quiet();
	LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = prog_fd);
	int r = bpf_xdp_detach(ifindex, XDP_FLAGS_REPLACE | mode_flags(mode), &o);
	return r < 0 ? r : 0;
}

uint32_t nmd_xdp_attached_id(int ifindex, int mode)
{
	quiet();
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	if (bpf_xdp_query(ifindex, 0, &q) < 0)
		return 0;
	return mode == NMD_XDP_NATIVE ? q.drv_prog_id : q.skb_prog_id;
}

/* An fd of program `id` if it is named NMD_XDP_PROG_NAME, else -1. */
static int ours(uint32_t id)
{
	if (!id)
		return -1;
	int fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -1;
	struct bpf_prog_info info;
	memset(&info, 0, sizeof info);
	uint32_t len = sizeof info;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_PROG_TYPE_XDP &&
	    strncmp(info.name, NMD_XDP_PROG_NAME, sizeof info.name) == 0)
		return fd;
	close(fd);
	return -1;
}

int nmd_xdp_ours_attached(int ifindex)
{
	int found = 0;
	for (int mode = NMD_XDP_NATIVE; mode <= NMD_XDP_GENERIC; mode++) {
		int fd = ours(nmd_xdp_attached_id(ifindex, mode));
		if (fd >= 0) {
			found |= mode;
			close(fd);
		}
	}
	return found;
}

/* Whether some process has program `id` open (a live netmapd does; a
 * killed one's program is held by the interface alone). /proc/PID/fdinfo
 * of a BPF program descriptor has a "prog_id:" line. */
static int held_open(uint32_t id)
{
	DIR *proc = opendir("/proc");
	if (!proc)
		return 0;
	char want[32];
	snprintf(want, sizeof want, "prog_id:\t%u\n", id);
	int held = 0;
	struct dirent *p;
	while (!held && (p = readdir(proc))) {
		/* Not ourselves: looking at the program took a descriptor. */
		if (p->d_name[0] < '0' || p->d_name[0] > '9' || atoi(p->d_name) == getpid())
			continue;
		char dir[300];
		snprintf(dir, sizeof dir, "/proc/%s/fd", p->d_name);
		DIR *fds = opendir(dir);
		if (!fds)
			continue;
		struct dirent *f;
		while (!held && (f = readdir(fds))) {
			char path[600], link[64];
			snprintf(path, sizeof path, "%s/%s", dir, f->d_name);
			ssize_t n = readlink(path, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (strcmp(link, "anon_inode:bpf-prog") != 0)
				continue;
			snprintf(path, sizeof path, "/proc/%s/fdinfo/%s", p->d_name, f->d_name);
			FILE *info = fopen(path, "re");
			if (!info)
				continue;
			char line[128];
			while (fgets(line, sizeof line, info))
				if (strcmp(line, want) == 0)
					held = 1;
			fclose(info);
		}
		closedir(fds);
	}
	closedir(proc);
	return held;
}

int nmd_xdp_remove_ours(int ifindex)
{
	int removed = 0;
	for (int mode = NMD_XDP_NATIVE; mode <= NMD_XDP_GENERIC; mode++) {
		uint32_t id = nmd_xdp_attached_id(ifindex, mode);
		int fd = ours(id);
		if (fd < 0)
			continue;
		/* Another running netmapd's (started with another run directory). */
		if (!held_open(id) && nmd_xdp_detach(ifindex, fd, mode) == 0)
			removed |= mode;
		close(fd);
	}
	return removed;
}

/* ---- interface facts ---- */

int nmd_ethtool_queues(const char *ifname, uint32_t *rx, uint32_t *tx)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = (void *)&ch;
	int r = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
	close(s);
	if (r < 0)
		return r;
	*rx = ch.rx_count + ch.combined_count;
	*tx = ch.tx_count + ch.combined_count;
	if (*rx == 0 || *tx == 0)
		return -EOPNOTSUPP;
	return 0;
}

/* Generic netlink, by hand: one request, one answer, the attribute wanted. */

#define NL_ALIGN4(n) (((n) + 3u) & ~3u)

struct genl_req {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char attrs[64];
};

static void put_attr(struct genl_req *r, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NL_ALIGN4(r->n.nlmsg_len));
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->n.nlmsg_len = NL_ALIGN4(r->n.nlmsg_len) + NL_ALIGN4(a->nla_len);
}

/* Sends `req`, reads the answer into buf; returns the genl attributes'
 * start and length through attrs and len, or -errno. */
static int genl_call(int s, struct genl_req *req, char *buf, size_t cap, struct nlattr **attrs, int *len)
{
	if (send(s, req, req->n.nlmsg_len, 0) < 0)
		return -errno;
	ssize_t got = recv(s, buf, cap, 0);
	if (got < 0)
		return -errno;
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (got < (ssize_t)sizeof *h || h->nlmsg_len > (size_t)got)
		return -EPROTO;
	if (h->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(h);
		return e->error ? e->error : -EPROTO;
	}
	int hl = NLMSG_HDRLEN + GENL_HDRLEN;
	if ((int)h->nlmsg_len < hl)
		return -EPROTO;
	*attrs = (struct nlattr *)(buf + hl);
	*len = (int)h->nlmsg_len - hl;
	return 0;
}

static struct nlattr *find_attr(struct nlattr *a, int len, uint16_t type)
{
	while (len >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		int step = (int)NL_ALIGN4(a->nla_len);
		len -= step;
		a = (struct nlattr *)((char *)a + step);
	}
	return NULL;
}

int nmd_xdp_features(int ifindex, uint64_t *features)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (s < 0)
		return -errno;
	struct timeval tv = { 1, 0 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[8192];
	struct nlattr *attrs;
	int len, r;

	struct genl_req req;
	memset(&req, 0, sizeof req);
	req.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	req.n.nlmsg_type = GENL_ID_CTRL;
	req.n.nlmsg_flags = NLM_F_REQUEST;
	req.n.nlmsg_seq = 1;
	req.g.cmd = CTRL_CMD_GETFAMILY;
	req.g.version = 1;
	put_attr(&req, CTRL_ATTR_FAMILY_NAME, "netdev", 7);
	r = genl_call(s, &req, buf, sizeof buf, &attrs, &len);
	if (r < 0)
		goto out;
	struct nlattr *id = find_attr(attrs, len, CTRL_ATTR_FAMILY_ID);
	if (!id) {
		r = -ENOENT;
		goto out;
	}
	uint16_t family;
	memcpy(&family, (char *)id + NLA_HDRLEN, sizeof family);

	/* NETDEV_CMD_DEV_GET (1) with NETDEV_A_DEV_IFINDEX (1); the answer's
	 * NETDEV_A_DEV_XDP_FEATURES (3) is a u64 of NETDEV_XDP_ACT_* bits. */
	memset(&req, 0, sizeof req);
	req.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	req.n.nlmsg_type = family;
	req.n.nlmsg_flags = NLM_F_REQUEST;
	req.n.nlmsg_seq = 2;
	req.g.cmd = 1;
	req.g.version = 1;
	uint32_t idx = (uint32_t)ifindex;
	put_attr(&req, 1, &idx, sizeof idx);
	r = genl_call(s, &req, buf, sizeof buf, &attrs, &len);
	if (r < 0)
		goto out;
	struct nlattr *f = find_attr(attrs, len, 3);
	if (!f || f->nla_len < NLA_HDRLEN + 8) {
		r = -ENOENT;
		goto out;
	}
	memcpy(features, (char *)f + NLA_HDRLEN, 8);
	r = 0;
out:
	close(s);
	return r == -ENOENT || r == -EINVAL ? -ENOENT : r;
}

int nmd_fd_on_shmem(int fd)
{
	struct statfs st;
	if (fstatfs(fd, &st) < 0)
		return -errno;
	return st.f_type == TMPFS_MAGIC || st.f_type == HUGETLBFS_MAGIC;
}

/* ---- timer ---- */

int nmd_timerfd(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int nmd_timerfd_arm(int fd, uint64_t usec)
{
	struct itimerspec t;
	memset(&t, 0, sizeof t);
	t.it_value.tv_sec = (time_t)(usec / 1000000);
	t.it_value.tv_nsec = (long)(usec % 1000000) * 1000;
	return timerfd_settime(fd, 0, &t, NULL) < 0 ? -errno : 0;
}

int nmd_timerfd_drain(int fd)
{
	uint64_t n;
	return read(fd, &n, sizeof n) < 0 ? -errno : 0;
}
