/*
 * nm_headers.c: a netmap program built against netmapd's installed headers
 * alone (<net/netmap.h>, <net/netmap_user.h> with NETMAP_WITH_LIBS; no
 * project header, no library), as software with a netmap build option is.
 *
 * At compile time: every structure size, field offset, constant and ioctl
 * number of the ABI notes (§1) that the headers define.
 * At run time, through a running netmapd (device path: argument 1, which
 * nm_open uses through NETMAP_DEVICE):
 *   - nm_open's name handling: no netmap name gives NULL with errno 0,
 *     malformed names EINVAL, an absent interface ENXIO (from NIOCREGIF);
 *   - a pipe opened as "netmap:NAME{N" and "netmap:NAME}N" (the second with
 *     NM_OPEN_NO_MMAP and the first as parent: one mapping), ring macros
 *     (NETMAP_TXRING/RXRING/BUF/BUF_IDX, nm_ring_space) consistent with the
 *     registration;
 *   - FRAMES frames (argument 2, default 200000) of varying length sent with
 *     nm_inject, received alternately with nm_dispatch and nm_nextpkt, every
 *     byte and the order checked (NIOCTXSYNC and NIOCRXSYNC move them);
 *   - nm_close of both, and of NULL (EINVAL).
 * Prints "ok - ..." / "not ok - ..." lines and "headers: N passed, M failed";
 * exits 0 only if everything passed.
 */
#define _GNU_SOURCE
#include <stdio.h>

static const char *nmh_device = "/dev/netmap";
#define NETMAP_DEVICE nmh_device
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

/* ---- the ABI, at compile time (§1.2-§1.4) ---- */
#define OFF(t, f, v) _Static_assert(offsetof(struct t, f) == (v), #t "." #f)
#define SIZE(t, v) _Static_assert(sizeof(struct t) == (v), "sizeof " #t)
#define VAL(c, v) _Static_assert((c) == (v), #c)

SIZE(netmap_slot, 16);
OFF(netmap_slot, len, 4); OFF(netmap_slot, flags, 6); OFF(netmap_slot, ptr, 8);
SIZE(netmap_ring, 256);
_Static_assert(_Alignof(struct netmap_ring) == 128, "netmap_ring alignment");
OFF(netmap_ring, num_slots, 8); OFF(netmap_ring, nr_buf_size, 12); OFF(netmap_ring, ringid, 16);
OFF(netmap_ring, dir, 18); OFF(netmap_ring, head, 20); OFF(netmap_ring, cur, 24);
OFF(netmap_ring, tail, 28); OFF(netmap_ring, flags, 32); OFF(netmap_ring, ts, 40);
OFF(netmap_ring, offset_mask, 56); OFF(netmap_ring, buf_align, 64); OFF(netmap_ring, sem, 128);
OFF(netmap_ring, slot, 256);
SIZE(netmap_if, 56);
OFF(netmap_if, ni_version, 16); OFF(netmap_if, ni_flags, 20); OFF(netmap_if, ni_tx_rings, 24);
OFF(netmap_if, ni_rx_rings, 28); OFF(netmap_if, ni_bufs_head, 32); OFF(netmap_if, ni_host_tx_rings, 36);
OFF(netmap_if, ni_host_rx_rings, 40); OFF(netmap_if, ring_ofs, 56);
SIZE(nmreq, 60);
OFF(nmreq, nr_version, 16); OFF(nmreq, nr_offset, 20); OFF(nmreq, nr_memsize, 24);
OFF(nmreq, nr_tx_slots, 28); OFF(nmreq, nr_rx_slots, 32); OFF(nmreq, nr_tx_rings, 36);
OFF(nmreq, nr_rx_rings, 38); OFF(nmreq, nr_ringid, 40); OFF(nmreq, nr_cmd, 42);
OFF(nmreq, nr_arg1, 44); OFF(nmreq, nr_arg2, 46); OFF(nmreq, nr_arg3, 48);
OFF(nmreq, nr_flags, 52); OFF(nmreq, spare2, 56);
SIZE(nm_ifreq, 272);
SIZE(nmreq_header, 88);
OFF(nmreq_header, nr_reqtype, 2); OFF(nmreq_header, nr_name, 8); OFF(nmreq_header, nr_options, 72);
OFF(nmreq_header, nr_body, 80);
SIZE(nmreq_option, 24);
OFF(nmreq_option, nro_reqtype, 8); OFF(nmreq_option, nro_status, 12); OFF(nmreq_option, nro_size, 16);
SIZE(nmreq_register, 56);
OFF(nmreq_register, nr_memsize, 8); OFF(nmreq_register, nr_tx_slots, 16); OFF(nmreq_register, nr_tx_rings, 24);
OFF(nmreq_register, nr_host_tx_rings, 28); OFF(nmreq_register, nr_mem_id, 32); OFF(nmreq_register, nr_ringid, 34);
OFF(nmreq_register, nr_mode, 36); OFF(nmreq_register, nr_extra_bufs, 40); OFF(nmreq_register, nr_flags, 48);
SIZE(nmreq_port_info_get, 32); OFF(nmreq_port_info_get, nr_mem_id, 24);
SIZE(nmreq_vale_attach, 64); OFF(nmreq_vale_attach, port_index, 56);
SIZE(nmreq_vale_detach, 8); SIZE(nmreq_vale_list, 8); SIZE(nmreq_port_hdr, 8);
SIZE(nmreq_vale_newif, 16); SIZE(nmreq_vale_polling, 16);
SIZE(nmreq_pools_info, 64);
OFF(nmreq_pools_info, nr_if_pool_offset, 16); OFF(nmreq_pools_info, nr_ring_pool_offset, 32);
OFF(nmreq_pools_info, nr_buf_pool_offset, 48); OFF(nmreq_pools_info, nr_buf_pool_objsize, 60);
SIZE(nmreq_sync_kloop_start, 8); SIZE(nm_csb_atok, 64); SIZE(nm_csb_ktoa, 64);
SIZE(nmreq_opt_extmem, 96); OFF(nmreq_opt_extmem, nro_info, 32);
SIZE(nmreq_opt_csb, 40); SIZE(nmreq_opt_offsets, 56); OFF(nmreq_opt_offsets, nro_min_gap, 48);
SIZE(nmreq_opt_sync_kloop_mode, 32); SIZE(nmreq_opt_sync_kloop_eventfds, 24);

VAL(NETMAP_API, 14); VAL(NETMAP_MIN_API, 14); VAL(NETMAP_MAX_API, 15);
VAL(NIOCGINFO, 0xc03c6991u); VAL(NIOCREGIF, 0xc03c6992u); VAL(NIOCTXSYNC, 0x6994u);
VAL(NIOCRXSYNC, 0x6995u); VAL(NIOCCONFIG, 0xc1106996u); VAL(NIOCCTRL, 0xc0586997u);
VAL(NS_BUF_CHANGED, 1); VAL(NS_REPORT, 2); VAL(NS_FORWARD, 4); VAL(NS_NO_LEARN, 8);
VAL(NS_INDIRECT, 0x10); VAL(NS_MOREFRAG, 0x20); VAL(NS_TXMON, 0x40); VAL(NS_PORT_MASK, 0xff00);
VAL(NR_TIMESTAMP, 2); VAL(NR_FORWARD, 4); VAL(NI_PRIV_MEM, 1);
VAL(NETMAP_RING_MASK, 0xfff); VAL(NETMAP_NO_TX_POLL, 0x1000); VAL(NETMAP_SW_RING, 0x2000);
VAL(NETMAP_HW_RING, 0x4000); VAL(NETMAP_DO_RX_POLL, 0x8000); VAL(NR_REG_MASK, 0xf);
VAL(NR_REG_ALL_NIC, 1); VAL(NR_REG_SW, 2); VAL(NR_REG_NIC_SW, 3); VAL(NR_REG_ONE_NIC, 4);
VAL(NR_REG_PIPE_MASTER, 5); VAL(NR_REG_PIPE_SLAVE, 6); VAL(NR_REG_NULL, 7); VAL(NR_REG_ONE_SW, 8);
VAL(NR_MONITOR_TX, 0x100); VAL(NR_MONITOR_RX, 0x200); VAL(NR_ZCOPY_MON, 0x400); VAL(NR_EXCLUSIVE, 0x800);
VAL(NR_RX_RINGS_ONLY, 0x2000); VAL(NR_TX_RINGS_ONLY, 0x4000); VAL(NR_ACCEPT_VNET_HDR, 0x8000);
VAL(NR_DO_RX_POLL, 0x10000); VAL(NR_NO_TX_POLL, 0x20000);
VAL(NETMAP_REQ_REGISTER, 1); VAL(NETMAP_REQ_PORT_INFO_GET, 2); VAL(NETMAP_REQ_POOLS_INFO_GET, 12);
VAL(NETMAP_REQ_CSB_ENABLE, 15); VAL(NETMAP_REQ_OPT_EXTMEM, 1); VAL(NETMAP_REQ_OPT_OFFSETS, 5);
VAL(NETMAP_REQ_OPT_MAX, 6); VAL(NETMAP_BDG_LIST, 4); VAL(NETMAP_VNET_HDR_GET, 12);

/* ---- run time ---- */
static int passed, failed;

static void report(int ok, const char *what, const char *why)
{
	if (ok) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("not ok - %s%s%s\n", what, why ? ": " : "", why ? why : "");
	}
	fflush(stdout);
}

static int open_fails(const char *name, int want_errno, char *why, size_t n)
{
	errno = 12345;
	struct nm_desc *d = nm_open(name, NULL, 0, NULL);
	if (d) {
		nm_close(d);
		snprintf(why, n, "opened");
		return 0;
	}
	snprintf(why, n, "errno %d (%s), %d wanted", errno, strerror(errno), want_errno);
	return errno == want_errno;
}

static unsigned frame_len(uint64_t seq) { return 60 + (unsigned)((seq * 2654435761u) % 1455); }
static uint8_t frame_byte(uint64_t seq, unsigned j) { return (uint8_t)(seq * 31 + j * 7); }

static void build(uint8_t *f, uint64_t seq)
{
	unsigned len = frame_len(seq);
	memcpy(f, &seq, 8);
	for (unsigned j = 8; j < len; j++)
		f[j] = frame_byte(seq, j);
}

struct rx_state {
	uint64_t next;     /* the sequence number due */
	uint64_t bad;
	char why[160];
};

static void check_frame(struct rx_state *st, const uint8_t *b, unsigned len)
{
	uint64_t seq;
	memcpy(&seq, b, 8);
	int ok = seq == st->next && len == frame_len(seq);
	for (unsigned j = 8; ok && j < len; j++)
		ok = b[j] == frame_byte(seq, j);
	if (!ok && st->bad++ == 0)
		snprintf(st->why, sizeof st->why, "frame %llu: got seq %llu, %u bytes",
			 (unsigned long long)st->next, (unsigned long long)seq, len);
	st->next++;
}

static void on_frame(unsigned char *arg, const struct nm_pkthdr *h, const unsigned char *buf)
{
	struct rx_state *st = (struct rx_state *)(void *)arg;
	if (h->buf != buf || h->caplen != h->len || h->slot->len != h->len) {
		if (st->bad++ == 0)
			snprintf(st->why, sizeof st->why, "nm_pkthdr does not describe the frame");
	}
	check_frame(st, buf, h->len);
}

int main(int argc, char **argv)
{
	char why[256];
	if (argc > 1)
		nmh_device = argv[1];
	uint64_t frames = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
	char pipe_m[32], pipe_s[32];
	snprintf(pipe_m, sizeof pipe_m, "netmap:nmh%d{3", (int)(getpid() % 100000));
	snprintf(pipe_s, sizeof pipe_s, "netmap:nmh%d}3", (int)(getpid() % 100000));

	report(open_fails("eth0", 0, why, sizeof why), "nm_open(\"eth0\"): not a netmap name, errno 0", why);
	report(open_fails("netmap:", EINVAL, why, sizeof why), "nm_open(\"netmap:\"): EINVAL", why);
	report(open_fails("netmap:x-", EINVAL, why, sizeof why), "nm_open(\"netmap:x-\"): EINVAL", why);
	report(open_fails("netmap:x/q", EINVAL, why, sizeof why), "nm_open(\"netmap:x/q\"): EINVAL", why);
	report(open_fails("netmap:nmhabsent0", ENXIO, why, sizeof why),
	       "nm_open(\"netmap:nmhabsent0\"): ENXIO from NIOCREGIF", why);

	struct nm_desc *m = nm_open(pipe_m, NULL, 0, NULL);
	snprintf(why, sizeof why, "%s", strerror(errno));
	report(m != NULL, "nm_open of a pipe master", why);
	struct nm_desc *s = m ? nm_open(pipe_s, NULL, NM_OPEN_NO_MMAP, m) : NULL;
	snprintf(why, sizeof why, "%s", strerror(errno));
	report(s != NULL, "nm_open of its slave with NM_OPEN_NO_MMAP", why);
	if (!m || !s) {
		printf("headers: %d passed, %d failed\n", passed, failed + 1);
		return 1;
	}
	report(IS_NETMAP_DESC(m) && IS_NETMAP_DESC(s) && NETMAP_FD(m) >= 0 && NETMAP_FD(s) >= 0,
	       "descriptors are valid and have a file", NULL);
	report(m->done_mmap && !s->done_mmap && s->mem == m->mem && s->memsize == m->memsize &&
		       m->memsize == m->req.nr_memsize,
	       "the slave shares the master's mapping", NULL);
	struct netmap_if *nifp = m->nifp;
	struct netmap_ring *tx = NETMAP_TXRING(nifp, m->first_tx_ring);
	struct netmap_ring *rx = NETMAP_RXRING(s->nifp, s->first_rx_ring);
	snprintf(why, sizeof why, "nifp %p (mem %p + %u), tx slots %u dir %u, rx slots %u dir %u, tx space %u",
		 (void *)nifp, m->mem, m->req.nr_offset, tx->num_slots, tx->dir, rx->num_slots, rx->dir,
		 nm_ring_space(tx));
	report(nifp == NETMAP_IF(m->mem, m->req.nr_offset) && tx->num_slots == m->req.nr_tx_slots &&
		       rx->num_slots == s->req.nr_rx_slots && tx->dir == 1 && rx->dir == 0 &&
		       nm_ring_space(tx) == tx->num_slots - 1 && nm_ring_empty(rx),
	       "ring macros agree with the registration", why);
	uint32_t idx = tx->slot[0].buf_idx;
	char *b0 = NETMAP_BUF(tx, idx);
	report(idx >= 2 && NETMAP_BUF_IDX(tx, b0) == idx && NETMAP_BUF(rx, idx) == b0 &&
		       (const char *)b0 >= (const char *)m->buf_start && (const char *)b0 < (const char *)m->buf_end,
	       "NETMAP_BUF and NETMAP_BUF_IDX are inverse and the same from every ring", NULL);

	/* Traffic: the sender fills the ring with nm_inject, NIOCTXSYNC hands it
	 * over; the receiver polls, then takes the frames with nm_dispatch or
	 * nm_nextpkt in turns. */
	static uint8_t f[2048];
	struct rx_state st = { 0 };
	uint64_t sent = 0, by_dispatch = 0, by_nextpkt = 0, stalls = 0;
	int round = 0;
	while (st.next < frames && stalls < 50) {
		if (ioctl(NETMAP_FD(m), NIOCTXSYNC, NULL) < 0)   /* reclaim what the receiver released */
			break;
		while (sent < frames) {
			build(f, sent);
			if (nm_inject(m, f, frame_len(sent)) == 0)
				break;
			sent++;
		}
		if (ioctl(NETMAP_FD(m), NIOCTXSYNC, NULL) < 0)
			break;
		struct pollfd p = { .fd = NETMAP_FD(s), .events = POLLIN };
		if (poll(&p, 1, 1000) <= 0) {
			stalls++;
			continue;
		}
		if (round++ & 1) {
			by_dispatch += (uint64_t)nm_dispatch(s, 0, on_frame, (unsigned char *)&st);
		} else {
			struct nm_pkthdr h;
			unsigned char *b;
			while ((b = nm_nextpkt(s, &h)) != NULL) {
				check_frame(&st, b, h.len);
				by_nextpkt++;
			}
		}
		/* Hand the slots back: a pipe's sender gets room only then. */
		ioctl(NETMAP_FD(s), NIOCRXSYNC, NULL);
	}
	snprintf(why, sizeof why, "sent %llu, received %llu (%llu by nm_dispatch, %llu by nm_nextpkt), %llu bad%s%s",
		 (unsigned long long)sent, (unsigned long long)st.next, (unsigned long long)by_dispatch,
		 (unsigned long long)by_nextpkt, (unsigned long long)st.bad, st.bad ? ": " : "", st.why);
	report(sent == frames && st.next == frames && st.bad == 0 && by_dispatch > 0 && by_nextpkt > 0,
	       "frames sent with nm_inject arrive in order and byte-exact through nm_dispatch and nm_nextpkt", why);
	printf("nm_headers: %s\n", why);
	/* A limited nm_dispatch takes no more than asked. */
	for (int i = 0; i < 5; i++) {
		build(f, frames + (uint64_t)i);
		nm_inject(m, f, frame_len(frames + (uint64_t)i));
	}
	ioctl(NETMAP_FD(m), NIOCTXSYNC, NULL);
	struct pollfd p = { .fd = NETMAP_FD(s), .events = POLLIN };
	poll(&p, 1, 1000);
	int first = nm_dispatch(s, 2, on_frame, (unsigned char *)&st);
	int rest = nm_dispatch(s, -1, on_frame, (unsigned char *)&st);
	snprintf(why, sizeof why, "%d then %d, %llu bad", first, rest, (unsigned long long)st.bad);
	report(first == 2 && rest == 3 && st.bad == 0, "nm_dispatch(d, 2, ...) takes 2 frames, then -1 the other 3", why);

	report(nm_close(s) == 0 && nm_close(m) == 0, "nm_close of slave and master", NULL);
	errno = 0;
	report(nm_close(NULL) == -1 && errno == EINVAL, "nm_close(NULL): EINVAL", NULL);
	printf("headers: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
