/*
 * nmd_xdp.h: what the native backend (Sources/Ports/NetmapPorts/XDP) needs from C —
 * AF_XDP sockets on libxdp's xsk API (one UMEM and one socket per interface
 * queue, the four rings behind small batch calls), the XDP program that
 * redirects bound queues to their sockets (libbpf), and the interface facts
 * rtnetlink does not give (ethtool channel counts, XDP features through the
 * netdev generic-netlink family). No policy: the Swift side decides.
 *
 * Functions return a value >= 0 on success and -errno on failure.
 */
#ifndef NMD_XDP_H
#define NMD_XDP_H

#include <stddef.h>
#include <stdint.h>

/* ---- AF_XDP sockets ---- */

enum nmd_xsk_bind {
	NMD_XSK_BIND_AUTO = 0, /* zero-copy where the driver has it, else copy */
	NMD_XSK_BIND_COPY = 1,
	NMD_XSK_BIND_ZEROCOPY = 2,
};

struct nmd_xsk_params {
	const char *ifname;
	uint32_t queue;
	/* The UMEM: page-aligned start and length, chunk size (2048..4096). */
	void *area;
	uint64_t area_size;
	uint32_t chunk_size;
	int unaligned;
	/* Ring sizes, powers of two; rx_size 0: no RX ring, tx_size 0: no TX ring. */
	uint32_t fill_size, comp_size, rx_size, tx_size;
	int bind; /* enum nmd_xsk_bind */
	/* Ask for multi-buffer frames (XDP_USE_SG); dropped if refused. */
	int scatter_gather;
};

struct nmd_xsk;

/* Registers the UMEM and creates a socket bound to (ifname, queue); NULL
 * and *err = -errno on failure. Copy mode is tried when zero-copy is
 * refused (AUTO), and the bind without SG when SG is refused. */
struct nmd_xsk *nmd_xsk_open(const struct nmd_xsk_params *p, int *err);
/* Closes the socket and the UMEM registration. */
void nmd_xsk_close(struct nmd_xsk *x);

int nmd_xsk_fd(const struct nmd_xsk *x);
int nmd_xsk_zerocopy(const struct nmd_xsk *x);
int nmd_xsk_scatter_gather(const struct nmd_xsk *x);

/* Descriptor option: the frame continues in the next descriptor. */
#define NMD_XSK_CONTD 1u

struct nmd_xsk_desc {
	uint64_t addr; /* UMEM offset of the data (unaligned mode: base | offset << 48) */
	uint32_t len;
	uint32_t options;
};

/* Fill ring: room for how many more, queue one address, publish the queued
 * ones (and wake the kernel if it asked). */
uint32_t nmd_xsk_fill_room(struct nmd_xsk *x);
void nmd_xsk_fill_put(struct nmd_xsk *x, uint64_t addr);
int nmd_xsk_fill_commit(struct nmd_xsk *x);
/* Queues the addresses (bufs[i] << shift) - back for as many of the last
 * `n` entries of `bufs` as the ring has room for, last first; returns how
 * many were queued (a stack popped from the top). */
uint32_t nmd_xsk_fill_many(struct nmd_xsk *x, const uint32_t *bufs, uint32_t n, unsigned shift, uint64_t back);

/* RX ring: up to `max` received descriptors are taken and copied to
 * `out` (returns how many); release the first `n` of them with
 * nmd_xsk_rx_release, which also forgets the rest (they come back on the
 * next take). */
uint32_t nmd_xsk_rx_take(struct nmd_xsk *x, uint32_t max, struct nmd_xsk_desc *out);
void nmd_xsk_rx_release(struct nmd_xsk *x, uint32_t n);
/* Data address of a received descriptor (offset folded in). */
uint64_t nmd_xsk_rx_data(const struct nmd_xsk *x, struct nmd_xsk_desc d);

/* TX ring: room, queue one descriptor, publish the queued ones and kick
 * the kernel when it wants a system call (need_wakeup). The kick's EAGAIN,
 * EBUSY and ENOBUFS only mean "later" and are not errors. */
uint32_t nmd_xsk_tx_room(struct nmd_xsk *x);
void nmd_xsk_tx_put(struct nmd_xsk *x, uint64_t addr, uint32_t len, uint32_t options);
int nmd_xsk_tx_commit(struct nmd_xsk *x);
/* A kick without new descriptors (the kernel stopped half-way). */
int nmd_xsk_tx_kick(struct nmd_xsk *x);
/* Descriptors the kernel has not taken from the TX ring yet. */
uint32_t nmd_xsk_tx_queued(const struct nmd_xsk *x);
/* Completion ring: consumes every completion, returns the count. */
uint32_t nmd_xsk_tx_completed(struct nmd_xsk *x);
/* Completions waiting, without consuming (safe from another thread). */
uint32_t nmd_xsk_comp_ready(const struct nmd_xsk *x);
/* Received descriptors waiting (safe from another thread). */
uint32_t nmd_xsk_rx_ready(const struct nmd_xsk *x);

struct nmd_xsk_stats {
	uint64_t rx_dropped, rx_invalid, tx_invalid, rx_ring_full, fill_empty, tx_empty;
};
int nmd_xsk_stats(const struct nmd_xsk *x, struct nmd_xsk_stats *s);

/* ---- the XDP program ----
 * Five instructions: redirect to the xsks map entry of the frame's RX queue,
 * XDP_PASS when the queue has no socket (so queues nobody bound keep feeding
 * the host stack). Named NMD_XDP_PROG_NAME: a daemon starting after a killed
 * one finds its predecessor's attachments by that name. */

#define NMD_XDP_PROG_NAME "netmapd_xsk"
#define NMD_XDP_MAP_NAME "netmapd_xsks"

enum nmd_xdp_mode {
	NMD_XDP_NATIVE = 1, /* the driver runs it (XDP_FLAGS_DRV_MODE) */
	NMD_XDP_GENERIC = 2, /* the stack runs it on skbs (XDP_FLAGS_SKB_MODE) */
};

/* An XSKMAP with `entries` slots. */
int nmd_xsk_map_create(uint32_t entries);
int nmd_xsk_map_set(int map_fd, uint32_t queue, int xsk_fd);
int nmd_xsk_map_clear(int map_fd, uint32_t queue);

/* Loads the program over `map_fd`; *frags = 1 if it was accepted as
 * multi-buffer aware (BPF_F_XDP_HAS_FRAGS). */
int nmd_xdp_prog_load(int map_fd, int *frags);
/* Attaches in `mode` unless the interface already has a program (EBUSY). */
int nmd_xdp_attach(int ifindex, int prog_fd, int mode);
/* Detaches `prog_fd` in `mode`, only if it is still the one attached. */
int nmd_xdp_detach(int ifindex, int prog_fd, int mode);
/* Which modes (bits of enum nmd_xdp_mode) have a program named
 * NMD_XDP_PROG_NAME attached on `ifindex`. */
int nmd_xdp_ours_attached(int ifindex);
/* Detaches every program named NMD_XDP_PROG_NAME from `ifindex` that no
 * process holds open (a killed daemon's; a running one keeps its program's
 * descriptor); returns the modes it was removed from. */
int nmd_xdp_remove_ours(int ifindex);
/* The program id attached in `mode`, 0 if none. */
uint32_t nmd_xdp_attached_id(int ifindex, int mode);

/* ---- interface facts ---- */

/* ethtool channel counts: RX queues and TX queues (combined counted in
 * both). -EOPNOTSUPP when the driver does not say. */
int nmd_ethtool_queues(const char *ifname, uint32_t *rx, uint32_t *tx);

/* XDP features (NETDEV_XDP_ACT_* bits) through the netdev generic-netlink
 * family; -ENOENT when the kernel has no such family. */
int nmd_xdp_features(int ifindex, uint64_t *features);
#define NMD_XDP_ACT_BASIC 1u
#define NMD_XDP_ACT_REDIRECT 2u
#define NMD_XDP_ACT_XSK_ZEROCOPY 8u
#define NMD_XDP_ACT_RX_SG 32u

/* 1 if `fd` is a file on tmpfs or hugetlbfs (memory the kernel can pin as
 * a UMEM), 0 if not. */
int nmd_fd_on_shmem(int fd);

/* ---- a timer for the event thread ---- */
int nmd_timerfd(void);
/* One expiry after `usec` microseconds (0 disarms). */
int nmd_timerfd_arm(int fd, uint64_t usec);
/* Reads the expiry count so the descriptor is quiet again. */
int nmd_timerfd_drain(int fd);

#endif
