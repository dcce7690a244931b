/*
 * nmd_packet.h: what the generic (AF_PACKET) backend needs from C — kernel
 * struct layouts (TPACKET_V2 frames, mmsghdr), a few socket calls whose
 * arguments are awkward in Swift, and the tc ingress BPF program that keeps
 * a port's received frames from the host stack (libbpf). No policy here: the
 * Swift side (Sources/Ports/NetmapPorts/Packet) decides what to call when.
 *
 * Every function returns a value >= 0 on success and -errno on failure.
 */
#ifndef NMD_PACKET_H
#define NMD_PACKET_H

#include <stddef.h>
#include <stdint.h>

/* ---- AF_PACKET sockets ---- */

/* A non-blocking AF_PACKET SOCK_RAW socket. With `receive` it will take
 * every protocol (ETH_P_ALL) but not the frames the host itself sends
 * (PACKET_IGNORE_OUTGOING); without, it only transmits (protocol 0: the
 * kernel hands it nothing). Unbound: set up its ring first, then bind. */
int nmd_packet_open(int receive);
/* Binds the socket to `ifindex` (it starts receiving now). */
int nmd_packet_bind(int fd, int ifindex, int receive);

/* PACKET_QDISC_BYPASS on or off. */
int nmd_packet_set_qdisc_bypass(int fd, int on);

/* Joins fanout group `group` (hash of the flow, with rollover when a
 * member's ring is full), or with `group` < 0 makes a new group with an id
 * the kernel picks. Returns the group id. The socket must be bound. */
int nmd_packet_join_fanout(int fd, int group);

/* SO_SNDBUFFORCE / SO_RCVBUFFORCE (root), falling back to the plain ones. */
int nmd_packet_set_buffers(int fd, int sndbuf, int rcvbuf);

/* Frames the kernel dropped for this socket since the last call. */
int64_t nmd_packet_drops(int fd);

/* ---- TPACKET_V2 receive ring ---- */

struct nmd_rx_ring {
	uint8_t *map;
	size_t map_len;
	uint32_t block_size;
	uint32_t frame_size;
	uint32_t frames_per_block;
	uint32_t frame_count;
};

/* Sets up and maps a TPACKET_V2 RX ring of `frame_count` frames, each able
 * to hold `max_frame` bytes of packet after the kernel's header. */
int nmd_rx_ring_setup(int fd, uint32_t max_frame, uint32_t frame_count, struct nmd_rx_ring *ring);
void nmd_rx_ring_unmap(struct nmd_rx_ring *ring);

/* Mirrors of the kernel's TPACKET_V2 header and status bits, so that
 * Swift sees no kernel header. Checked against <linux/if_packet.h> in
 * nmd_packet.c. */
struct nmd_tp2_hdr {
	uint32_t tp_status;
	uint32_t tp_len;
	uint32_t tp_snaplen;
	uint16_t tp_mac;
	uint16_t tp_net;
	uint32_t tp_sec;
	uint32_t tp_nsec;
	uint16_t tp_vlan_tci;
	uint16_t tp_vlan_tpid;
	uint8_t tp_padding[4];
};
#define NMD_TP_STATUS_KERNEL 0u
#define NMD_TP_STATUS_USER 1u
#define NMD_TP_STATUS_CSUMNOTREADY 8u
/* The kernel took an 802.1Q/802.1ad tag out of the frame into tp_vlan_tci
 * (and, with TPID_VALID, its ethertype into tp_vlan_tpid). */
#define NMD_TP_STATUS_VLAN_VALID 0x10u
#define NMD_TP_STATUS_VLAN_TPID_VALID 0x40u

static inline struct nmd_tp2_hdr *nmd_rx_ring_frame(const struct nmd_rx_ring *r, uint32_t i)
{
	uint32_t b = i / r->frames_per_block, k = i - b * r->frames_per_block;
	return (struct nmd_tp2_hdr *)(r->map + (size_t)b * r->block_size + (size_t)k * r->frame_size);
}

/* Whether frame `i` holds a packet for us; the acquire load orders the
 * reads of its contents after it. */
static inline int nmd_rx_ring_ready(const struct nmd_rx_ring *r, uint32_t i)
{
	return (__atomic_load_n(&nmd_rx_ring_frame(r, i)->tp_status, __ATOMIC_ACQUIRE) & NMD_TP_STATUS_USER) != 0;
}

/* Gives frame `i` back to the kernel, after our reads of it. */
static inline void nmd_rx_ring_release(const struct nmd_rx_ring *r, uint32_t i)
{
	__atomic_store_n(&nmd_rx_ring_frame(r, i)->tp_status, NMD_TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

/* ---- transmission with sendmmsg ----
 * A batch of messages, each one or more fragments pointing straight into
 * netmap buffers: the kernel copies them once, no copy in the daemon. */

struct nmd_tx_batch;

struct nmd_tx_batch *nmd_tx_batch_new(uint32_t max_messages, uint32_t max_fragments);
void nmd_tx_batch_free(struct nmd_tx_batch *b);
void nmd_tx_batch_reset(struct nmd_tx_batch *b);
uint32_t nmd_tx_batch_count(const struct nmd_tx_batch *b);
/* Appends a fragment to the message being built; -ENOSPC when the batch
 * is full (nothing appended). */
int nmd_tx_batch_add(struct nmd_tx_batch *b, const void *data, uint32_t len);
/* Ends the message being built; returns the message count. */
uint32_t nmd_tx_batch_end(struct nmd_tx_batch *b);
/* Forgets the fragments of the message being built. */
void nmd_tx_batch_drop_partial(struct nmd_tx_batch *b);
/* sendmmsg of messages [from, count), without blocking: how many went, or
 * -errno for the first one (EAGAIN/ENOBUFS: try later). */
int nmd_tx_batch_send(int fd, const struct nmd_tx_batch *b, uint32_t from);

/* ---- epoll for the event thread (epoll_event is packed: kept in C) ---- */

#define NMD_EPOLLIN 0x001u
#define NMD_EPOLLOUT 0x004u
#define NMD_EPOLLERR 0x008u
#define NMD_EPOLLHUP 0x010u
#define NMD_EPOLLONESHOT (1u << 30)

/* An epoll set (close-on-exec). */
int nmd_epoll_create(void);
/* EPOLL_CTL_ADD / _MOD with `id` as the event's data; _DEL. */
int nmd_epoll_add(int epfd, int fd, uint32_t events, uint64_t id);
int nmd_epoll_mod(int epfd, int fd, uint32_t events, uint64_t id);
int nmd_epoll_del(int epfd, int fd);
/* Waits (timeout_ms < 0: forever); fills ids[] and events[]; returns the
 * count or -errno. */
int nmd_epoll_wait(int epfd, uint64_t *ids, uint32_t *events, int max, int timeout_ms);
/* An eventfd (non-blocking, close-on-exec) and a write of 1 to it. */
int nmd_eventfd(void);
int nmd_eventfd_signal(int fd);

/* ---- "stealing": a tc clsact ingress filter that drops every frame ----
 * AF_PACKET taps run before tc ingress, so the port's sockets still see
 * the frames the host stack no longer does. The program is two
 * instructions (r0 = TC_ACT_SHOT; exit), named NMD_STEAL_PROG_NAME so a
 * later daemon can tell its predecessors' filters from anyone else's; the
 * filter sits at a fixed handle and priority. */

#define NMD_STEAL_PROG_NAME "netmapd_steal"
#define NMD_STEAL_HANDLE 0x6e6du
#define NMD_STEAL_PRIORITY 1u

/* Loads the program; returns its fd. Keep one for the daemon's life. */
int nmd_steal_load(void);
/* Attaches the program at ingress of `ifindex`, creating the clsact qdisc
 * if needed (*created = 1 then). Replaces a filter already at our handle. */
int nmd_steal_attach(int ifindex, int prog_fd, int *created);
/* Removes our filter from ingress of `ifindex` (-ENOENT if absent). */
int nmd_steal_detach(int ifindex);
/* 1 if ingress of `ifindex` has a filter at our handle and priority whose
 * program is named NMD_STEAL_PROG_NAME, 0 if not. */
int nmd_steal_present(int ifindex);
/* Removes the clsact qdisc of `ifindex` (with every filter on it). */
int nmd_clsact_remove(int ifindex);

/* ---- the host path: host rings of an interface (HostPath.swift) ---------
 * Host RX: a tc egress filter on the interface redirects every frame the
 * host stack transmits there to a daemon-owned TAP, whose descriptor the
 * daemon reads into the host RX ring; the daemon's own AF_PACKET
 * transmissions carry NMD_MARK_DAEMON_TX and pass (the filter clears it).
 * Host TX: frames the daemon writes into the TAP meet a tc ingress filter
 * there that marks them NMD_MARK_HOST_TX and redirects them into the
 * interface's receive path (BPF_F_INGRESS); the interface's ingress
 * filters let marked frames through and clear the mark, and the AF_PACKET
 * receive sockets of the daemon drop them (they are not from the wire).
 * Programs are named so a later daemon finds its predecessors' filters. */

#define NMD_MARK_DAEMON_TX 0x6e6d0001u
#define NMD_MARK_HOST_TX 0x6e6d0002u
#define NMD_HOSTRX_PROG_NAME "netmapd_hostrx"
#define NMD_HOSTTX_PROG_NAME "netmapd_hosttx"
#define NMD_HOSTIN_PROG_NAME "netmapd_hostin"
#define NMD_HOST_HANDLE 0x6e6eu
#define NMD_HOST_PRIORITY 2u

/* Creates TAP `name` (non-persistent: it goes with the descriptor), no
 * IPv6, no ARP, MTU `mtu`, up; returns the non-blocking descriptor and its
 * ifindex in *ifindex, or -errno. */
int nmd_host_tap_open(const char *name, int mtu, int *ifindex);
/* The three programs (fd or -errno): the interface's egress capture
 * (redirect to `tap_ifindex`), the TAP's ingress injection (mark, redirect
 * into `ifindex`'s receive path), the interface's ingress pass filter. */
int nmd_host_load_capture(int tap_ifindex);
int nmd_host_load_inject(int ifindex);
int nmd_host_load_pass(void);
/* Attaches `prog_fd` at NMD_HOST_HANDLE/NMD_HOST_PRIORITY on ingress or
 * egress of `ifindex` (clsact created if needed: *created = 1). */
int nmd_host_attach(int ifindex, int egress, int prog_fd, int *created);
int nmd_host_detach(int ifindex, int egress);
/* 1 if ingress/egress of `ifindex` has our host filter (by program name). */
int nmd_host_present(int ifindex, int egress);

/* ---- network namespaces ---------------------------------------------------
 * A caller's interface names are looked up in its own network namespace;
 * sockets and netlink handles for an interface are made inside the
 * interface's namespace by a thread that enters it for the moment. */

/* Opens the network namespace of thread `tid` (/proc/TID/ns/net; tid 0:
 * the calling thread). Returns the descriptor or -errno. */
int nmd_netns_open(int tid);
/* Opens a namespace file such as /run/netns/NAME. Returns fd or -errno. */
int nmd_netns_open_path(const char *path);
/* The namespace's identity (nsfs inode number) in *id; 0 or -errno. */
int nmd_netns_id(int fd, uint64_t *id);
/* Moves the calling thread into the namespace `fd`; 0 or -errno. */
int nmd_netns_enter(int fd);

#endif
