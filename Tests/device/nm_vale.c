/*
 * nm_vale.c: VALE switches through the real device (spec §11, §3.4, §10).
 *
 *   nm_vale [-d DEVICE] traffic [FRAMES [SEED]]   two processes, vale0:a -> vale0:b
 *   nm_vale [-d DEVICE] learning                  three ports: learning, unicast, flood, broadcast
 *   nm_vale [-d DEVICE] drops                     a full receiver drops for itself only
 *   nm_vale [-d DEVICE] errors                    every errno case netmapd implements
 *   nm_vale [-d DEVICE] killed                    a SIGKILLed client leaves no port or switch
 *   nm_vale [-d DEVICE] attach|detach valeX:IF     VALE_ATTACH / VALE_DETACH of an interface
 *   nm_vale [-d DEVICE] attach-host valeX:IF       VALE_ATTACH with NR_REG_NIC_SW (host rings: port valeX:IF^)
 *   nm_vale [-d DEVICE] owned valeX:IF             the attached IF is a switch port nobody else may register
 *
 * traffic: the receiver forks first and registers vale0:b, the sender
 * registers vale0:a. Frame i is an Ethernet frame from a's MAC to b's, of a
 * length in 60..1514 from a PRNG seeded with SEED, its payload derived from
 * (i, length); the receiver checks every byte and the order. VALE never
 * holds a sender back (a full receiver drops), so the receiver returns an
 * acknowledgement frame after each burst it consumed, and the sender keeps
 * at most WINDOW frames unacknowledged: with 1024-slot rings no frame may be
 * dropped, and a missing one is a failure. Both sides only wait in poll():
 * the sender's frames are pushed by its poll (§6), the receiver sleeps in
 * poll until the switch wakes it.
 *
 * Exit 0 only if every check passed.
 */
#include "nm_common.h"

#include <net/if.h>

#define WINDOW 256
#define ETH_DATA 0x88b5
#define ETH_ACK 0x88b6

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t MAC_C[6] = { 0x02, 0, 0, 0, 0, 0x0c };
static const uint8_t MAC_BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MAC_MCAST[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };

static int ctrl(int fd, uint16_t type, const char *name, void *body, struct nmreq_header *out)
{
	struct nmreq_header h;
	nmd_req_header(&h, type, name, body);
	int e = nmt_ioctl(fd, NIOCCTRL, &h);
	if (out)
		*out = h;
	return e;
}

static void eth(char *buf, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	buf[12] = (char)(type >> 8);
	buf[13] = (char)(type & 0xff);
}

/* Registers `name` with geometry hints; 0 or the errno. */
static int vale_open(struct nmt_port *p, const char *name, uint64_t flags, uint32_t slots, struct nmreq_register *out)
{
	memset(p, 0, sizeof *p);
	p->fd = nmt_open();
	struct nmreq_register r;
	memset(&r, 0, sizeof r);
	r.nr_mode = NR_REG_ALL_NIC;
	r.nr_flags = flags;
	r.nr_tx_slots = r.nr_rx_slots = slots;
	struct nmreq_header h;
	nmd_req_header(&h, NETMAP_REQ_REGISTER, name, &r);
	int e = nmt_ioctl(p->fd, NIOCCTRL, &h);
	if (out)
		*out = r;
	if (e) {
		close(p->fd);
		p->fd = -1;
		return e;
	}
	p->reg = r;
	p->memsize = r.nr_memsize;
	p->mem = nmt_mmap(p->fd, p->memsize);
	p->nifp = nmd_if(p->mem, r.nr_offset);
	p->tx = nmd_txring(p->nifp, 0);
	p->rx = nmd_rxring(p->nifp, 0);
	return 0;
}

/* ---- traffic ---- */

static int wait_in(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : r == 0 ? 0 : p.revents;
}

static int receiver(uint64_t frames, uint64_t seed, int ready_fd)
{
	nmt_prog = "nm_vale receiver";
	struct nmt_port b;
	int e = vale_open(&b, "vale0:b", 0, 1024, NULL);
	if (e)
		nmt_die("REGISTER vale0:b: %s", nmt_errname(e));
	if (write(ready_fd, "r", 1) != 1)
		nmt_die("ready pipe: %s", strerror(errno));
	uint64_t got = 0, acks = 0, wakes = 0;
	while (got < frames) {
		int r = wait_in(b.fd, NMT_MS(5000));
		if (r <= 0)
			nmt_die("poll(POLLIN) %s after %llu frames", r == 0 ? "timed out" : "failed", (unsigned long long)got);
		if (r & POLLERR)
			nmt_die("POLLERR after %llu frames", (unsigned long long)got);
		wakes++;
		struct netmap_ring *rx = b.rx;
		uint32_t i = rx->head, n = nmd_space(rx), consumed = 0;
		for (; n > 0; n--, i = nmd_next(rx, i)) {
			struct netmap_slot *s = &rx->slot[i];
			const char *buf = nmd_buf(rx, s->buf_idx);
			uint16_t want = nmt_frame_len(seed, got);
			if (s->len != want || (s->flags & NS_MOREFRAG) || memcmp(buf, MAC_B, 6) || memcmp(buf + 6, MAC_A, 6) ||
			    (uint8_t)buf[12] != ETH_DATA >> 8 || (uint8_t)buf[13] != (ETH_DATA & 0xff))
				nmt_die("frame %llu: length %u (want %u), flags %#x, bad header or out of order",
				    (unsigned long long)got, s->len, want, s->flags);
			size_t bad = nmt_frame_check(buf + 14, got, (uint16_t)(want - 14));
			if (bad) {
				uint64_t was;
				memcpy(&was, buf + 14, 8);
				nmt_die("frame %llu: byte %zu differs (frame holds seq %llu)", (unsigned long long)got, bad + 13,
				    (unsigned long long)was);
			}
			got++;
			consumed++;
		}
		rx->head = rx->cur = i;
		if (consumed) {
			/* The acknowledgement goes out with the next poll (or the final TXSYNC). */
			struct netmap_ring *tx = b.tx;
			if (nmd_space(tx) == 0)
				nmt_die("no TX slot for an acknowledgement");
			struct netmap_slot *s = &tx->slot[tx->head];
			char *buf = nmd_buf(tx, s->buf_idx);
			memset(buf, 0, 60);
			eth(buf, MAC_A, MAC_B, ETH_ACK);
			memcpy(buf + 14, &got, 8);
			s->len = 60;
			s->flags = 0;
			tx->head = tx->cur = nmd_next(tx, tx->head);
			acks++;
		}
	}
	CHECK_ERRNO(nmt_ioctl(b.fd, NIOCTXSYNC, NULL), 0, "receiver: final TXSYNC (last acknowledgement)");
	CHECK(got == frames, "receiver: %llu frames byte-exact and in order, %llu acknowledgements, %llu wake-ups",
	    (unsigned long long)got, (unsigned long long)acks, (unsigned long long)wakes);
	nmt_port_close(&b);
	return nmt_summary();
}

static int sender(uint64_t frames, uint64_t seed)
{
	nmt_prog = "nm_vale sender";
	struct nmt_port a;
	struct nmreq_register r;
	int e = vale_open(&a, "vale0:a", 0, 1024, &r);
	if (e)
		nmt_die("REGISTER vale0:a: %s", nmt_errname(e));
	CHECK(r.nr_tx_slots == 1024 && r.nr_rx_slots == 1024 && r.nr_tx_rings == 1 && r.nr_rx_rings == 1 &&
		  r.nr_host_tx_rings == 0 && r.nr_host_rx_rings == 0,
	    "vale0:a geometry: %u/%u rings, %u/%u slots, %u/%u host rings", r.nr_tx_rings, r.nr_rx_rings, r.nr_tx_slots,
	    r.nr_rx_slots, r.nr_host_tx_rings, r.nr_host_rx_rings);
	CHECK(r.nr_mem_id >= 2, "vale0:a has an allocator of its own (nr_mem_id %u, not 1)", r.nr_mem_id);
	uint64_t sent = 0, acked = 0;
	double t0 = nmd_now();
	while (acked < frames) {
		struct netmap_ring *tx = a.tx;
		uint32_t i = tx->head, room = nmd_space(tx);
		while (room > 0 && sent < frames && sent - acked < WINDOW) {
			struct netmap_slot *s = &tx->slot[i];
			uint16_t len = nmt_frame_len(seed, sent);
			char *buf = nmd_buf(tx, s->buf_idx);
			eth(buf, MAC_B, MAC_A, ETH_DATA);
			nmt_frame_fill(buf + 14, sent, (uint16_t)(len - 14));
			s->len = len;
			s->flags = 0;
			i = nmd_next(tx, i);
			room--;
			sent++;
		}
		tx->head = tx->cur = i;
		int rv = wait_in(a.fd, NMT_MS(5000));
		if (rv <= 0)
			nmt_die("poll(POLLIN) %s with %llu sent, %llu acknowledged", rv == 0 ? "timed out" : "failed",
			    (unsigned long long)sent, (unsigned long long)acked);
		struct netmap_ring *rx = a.rx;
		uint32_t j = rx->head;
		for (uint32_t n = nmd_space(rx); n > 0; n--, j = nmd_next(rx, j)) {
			const char *buf = nmd_buf(rx, rx->slot[j].buf_idx);
			uint64_t v;
			memcpy(&v, buf + 14, 8);
			if (memcmp(buf, MAC_A, 6) || memcmp(buf + 6, MAC_B, 6) || v > sent || v < acked)
				nmt_die("bad acknowledgement %llu (sent %llu, acknowledged %llu)", (unsigned long long)v,
				    (unsigned long long)sent, (unsigned long long)acked);
			acked = v;
		}
		rx->head = rx->cur = j;
	}
	double dt = nmd_now() - t0;
	CHECK(acked == frames, "sender: %llu frames acknowledged", (unsigned long long)acked);
	printf("RESULT nm_vale traffic frames=%llu seconds=%.2f rate=%.0f\n", (unsigned long long)frames, dt,
	    frames / (dt > 0 ? dt : 1));
	nmt_port_close(&a);
	return nmt_summary();
}

static int traffic(uint64_t frames, uint64_t seed)
{
	int rp[2];
	if (pipe(rp) < 0)
		nmt_die("pipe: %s", strerror(errno));
	pid_t rpid = fork();
	if (rpid == 0) {
		close(rp[0]);
		_exit(receiver(frames, seed, rp[1]));
	}
	close(rp[1]);
	char ch;
	struct pollfd pr = { .fd = rp[0], .events = POLLIN };
	if (poll(&pr, 1, NMT_MS(10000)) != 1 || read(rp[0], &ch, 1) != 1) {
		kill(rpid, SIGKILL);
		nmt_die("the receiver did not register vale0:b");
	}
	pid_t spid = fork();
	if (spid == 0)
		_exit(sender(frames, seed));
	int ok = 1;
	for (int k = 0; k < 2; k++) {
		int st;
		pid_t w = wait(&st);
		int good = w > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (!good && w > 0)
			kill(w == rpid ? spid : rpid, SIGKILL);
		ok &= good;
	}
	nmt_prog = "nm_vale";
	CHECK(ok, "traffic: both processes finished, every frame checked");
	return nmt_summary();
}

/* ---- three ports ---- */

/* Sends one 60-byte frame dst <- src tagged `tag` on p, with NIOCTXSYNC. */
static void send1(struct nmt_port *p, const uint8_t *dst, const uint8_t *src, uint8_t tag)
{
	struct netmap_ring *tx = p->tx;
	struct netmap_slot *s = &tx->slot[tx->head];
	char *buf = nmd_buf(tx, s->buf_idx);
	memset(buf, tag, 60);
	eth(buf, dst, src, ETH_DATA);
	s->len = 60;
	s->flags = 0;
	tx->head = tx->cur = nmd_next(tx, tx->head);
	if (nmt_ioctl(p->fd, NIOCTXSYNC, NULL))
		nmt_die("TXSYNC: %s", strerror(errno));
}

/* The tags of the frames waiting on p's RX ring 0 ("" if none), released. */
static const char *recv_tags(struct nmt_port *p, char *out)
{
	if (nmt_ioctl(p->fd, NIOCRXSYNC, NULL))
		nmt_die("RXSYNC: %s", strerror(errno));
	struct netmap_ring *rx = p->rx;
	int k = 0;
	uint32_t i = rx->head;
	for (uint32_t n = nmd_space(rx); n > 0 && k < 30; n--, i = nmd_next(rx, i))
		out[k++] = (char)nmd_buf(rx, rx->slot[i].buf_idx)[20];
	out[k] = 0;
	rx->head = rx->cur = i;
	return out;
}

#define EXPECT_TAGS(p, want, what) ({ char t_[32]; recv_tags(p, t_); \
	nmt_check(strcmp(t_, want) == 0, "%s: received \"%s\" (want \"%s\")", what, t_, want); })

static int learning(void)
{
	struct nmt_port a, b, c;
	if (vale_open(&a, "vale1:a", 0, 0, NULL) || vale_open(&b, "vale1:b", 0, 0, NULL) ||
	    vale_open(&c, "vale1:c", 0, 0, NULL))
		nmt_die("REGISTER vale1:a/b/c: %s", strerror(errno));
	send1(&a, MAC_B, MAC_A, '1');
	EXPECT_TAGS(&b, "1", "unknown destination: flooded to b");
	EXPECT_TAGS(&c, "1", "unknown destination: flooded to c");
	EXPECT_TAGS(&a, "", "never back to the sender a");
	send1(&b, MAC_A, MAC_B, '2');
	send1(&c, MAC_A, MAC_C, '3');
	EXPECT_TAGS(&a, "23", "b and c to a (a learnt from its first frame)");
	EXPECT_TAGS(&b, "", "c's frame to a did not reach b");
	EXPECT_TAGS(&c, "", "b's frame to a did not reach c");
	/* Everyone has sent one frame: unicast reaches only its destination. */
	send1(&a, MAC_C, MAC_A, '4');
	send1(&b, MAC_C, MAC_B, '5');
	send1(&c, MAC_B, MAC_C, '6');
	EXPECT_TAGS(&a, "", "learnt unicast: nothing for a");
	EXPECT_TAGS(&b, "6", "learnt unicast: c to b only");
	EXPECT_TAGS(&c, "45", "learnt unicast: a and b to c only");
	send1(&c, MAC_BCAST, MAC_C, '7');
	EXPECT_TAGS(&a, "7", "broadcast from c reaches a");
	EXPECT_TAGS(&b, "7", "broadcast from c reaches b");
	EXPECT_TAGS(&c, "", "broadcast not back to c");
	send1(&a, MAC_MCAST, MAC_A, '8');
	EXPECT_TAGS(&b, "8", "multicast from a reaches b");
	EXPECT_TAGS(&c, "8", "multicast from a reaches c");
	send1(&a, MAC_A, MAC_A, '9');
	EXPECT_TAGS(&a, "", "a frame to the sender's own MAC goes nowhere");
	EXPECT_TAGS(&b, "", "... and not to b");
	/* A station that moves: a sends with b's MAC; frames to B now go to a. */
	send1(&a, MAC_C, MAC_B, 'm');
	EXPECT_TAGS(&c, "m", "a speaking as B reaches c");
	send1(&c, MAC_B, MAC_C, 'n');
	EXPECT_TAGS(&a, "n", "B moved to a: c's frame to B reaches a");
	EXPECT_TAGS(&b, "", "... and not b");
	nmt_port_close(&a);
	nmt_port_close(&b);
	nmt_port_close(&c);
	return nmt_summary();
}

static int drops(void)
{
	struct nmt_port a, b, c;
	if (vale_open(&a, "vale2:a", 0, 256, NULL) || vale_open(&b, "vale2:b", 0, 16, NULL) ||
	    vale_open(&c, "vale2:c", 0, 256, NULL))
		nmt_die("REGISTER vale2:a/b/c: %s", strerror(errno));
	struct netmap_ring *tx = a.tx;
	uint32_t i = tx->head;
	for (int k = 0; k < 100; k++) {
		struct netmap_slot *s = &tx->slot[i];
		char *buf = nmd_buf(tx, s->buf_idx);
		eth(buf, MAC_BCAST, MAC_A, ETH_DATA);
		memcpy(buf + 14, &k, sizeof k);
		s->len = 60;
		s->flags = 0;
		i = nmd_next(tx, i);
	}
	tx->head = tx->cur = i;
	CHECK_ERRNO(nmt_ioctl(a.fd, NIOCTXSYNC, NULL), 0, "TXSYNC of 100 broadcast frames");
	CHECK_EQ(nmd_space(tx), 255, "the sender's TX ring is reclaimed at once (no back-pressure)");
	CHECK_ERRNO(nmt_ioctl(b.fd, NIOCRXSYNC, NULL), 0, "RXSYNC on b");
	CHECK_EQ(nmd_space(b.rx), 15, "b (16 slots) got the 15 that fit");
	CHECK_ERRNO(nmt_ioctl(c.fd, NIOCRXSYNC, NULL), 0, "RXSYNC on c");
	CHECK_EQ(nmd_space(c.rx), 100, "c (256 slots) got all 100");
	int first = -1, last = -1;
	memcpy(&first, nmd_buf(b.rx, b.rx->slot[b.rx->head].buf_idx) + 14, sizeof first);
	uint32_t l = (b.rx->tail + b.rx->num_slots - 1) % b.rx->num_slots;
	memcpy(&last, nmd_buf(b.rx, b.rx->slot[l].buf_idx) + 14, sizeof last);
	CHECK(first == 0 && last == 14, "b holds frames 0..14 (got %d..%d): the rest was dropped for b only", first, last);
	/* Fragments travel together: a 3-slot chain arrives as 3 slots. */
	b.rx->head = b.rx->cur = b.rx->tail;
	c.rx->head = c.rx->cur = c.rx->tail;
	nmt_ioctl(b.fd, NIOCRXSYNC, NULL);
	nmt_ioctl(c.fd, NIOCRXSYNC, NULL);
	i = tx->head;
	for (int k = 0; k < 3; k++) {
		struct netmap_slot *s = &tx->slot[i];
		char *buf = nmd_buf(tx, s->buf_idx);
		memset(buf, 'a' + k, 1000);
		if (k == 0)
			eth(buf, MAC_BCAST, MAC_A, ETH_DATA);
		s->len = 1000;
		s->flags = k < 2 ? NS_MOREFRAG : 0;
		i = nmd_next(tx, i);
	}
	tx->head = tx->cur = i;
	nmt_ioctl(a.fd, NIOCTXSYNC, NULL);
	nmt_ioctl(c.fd, NIOCRXSYNC, NULL);
	struct netmap_ring *rx = c.rx;
	int ok = nmd_space(rx) == 3;
	uint32_t j = rx->head;
	for (int k = 0; ok && k < 3; k++, j = nmd_next(rx, j)) {
		struct netmap_slot *s = &rx->slot[j];
		ok = s->len == 1000 && !!(s->flags & NS_MOREFRAG) == (k < 2) && nmd_buf(rx, s->buf_idx)[999] == 'a' + k;
	}
	CHECK(ok, "an NS_MOREFRAG chain of 3 slots arrives whole, fragment by fragment (%u slots)", nmd_space(rx));
	nmt_port_close(&a);
	nmt_port_close(&b);
	nmt_port_close(&c);
	return nmt_summary();
}

/* ---- errors ---- */

static int reg_errno(const char *name, uint32_t mode, uint16_t ringid, uint64_t flags, uint16_t mem_id)
{
	int fd = nmt_open();
	struct nmreq_register r;
	memset(&r, 0, sizeof r);
	r.nr_mode = mode;
	r.nr_ringid = ringid;
	r.nr_flags = flags;
	r.nr_mem_id = mem_id;
	int e = ctrl(fd, NETMAP_REQ_REGISTER, name, &r, NULL);
	close(fd);
	return e;
}

static int errors(void)
{
	int fd = nmt_open();
	char what[160];
	/* Names (§8.1). */
	CHECK_ERRNO(reg_errno("vale0", NR_REG_ALL_NIC, 0, 0, 0), ENOMEM, "REGISTER vale0 (no ':')");
	CHECK_ERRNO(reg_errno("vale-0:a", NR_REG_ALL_NIC, 0, 0, 0), ENOMEM, "REGISTER vale-0:a (bad bridge character)");
	CHECK_ERRNO(reg_errno("vale0123456789abc:a", NR_REG_ALL_NIC, 0, 0, 0), ENOMEM,
	    "REGISTER with the ':' beyond 16 characters");
	CHECK_ERRNO(reg_errno("vale0:0123456789abcdef", NR_REG_ALL_NIC, 0, 0, 0), ENOMEM,
	    "REGISTER with ':' and port name longer than 16");
	CHECK_ERRNO(reg_errno("vale0:lo", NR_REG_ALL_NIC, 0, 0, 0), EINVAL, "REGISTER vale0:lo (an interface: attach only)");
	CHECK_ERRNO(reg_errno("vale0:p", NR_REG_SW, 0, 0, 0), EINVAL, "REGISTER vale0:p with NR_REG_SW (no host rings)");
	CHECK_ERRNO(reg_errno("vale0:p", NR_REG_ONE_NIC, 1, 0, 0), EINVAL, "REGISTER vale0:p ring 1 of 1");
	CHECK_ERRNO(reg_errno("vale0:p", NR_REG_ALL_NIC, 0, 0, 999), EINVAL, "REGISTER vale0:p with an unknown nr_mem_id");

	/* Exclusive use, memory ids, port info. */
	struct nmt_port x, y;
	struct nmreq_register rx, ry;
	CHECK_ERRNO(vale_open(&x, "vale0:x", NR_EXCLUSIVE, 64, &rx), 0, "REGISTER vale0:x/x");
	CHECK_ERRNO(reg_errno("vale0:x", NR_REG_ALL_NIC, 0, 0, 0), EBUSY, "REGISTER vale0:x while held exclusively");
	CHECK_ERRNO(vale_open(&y, "vale0:y", 0, 64, &ry), 0, "REGISTER vale0:y");
	CHECK(rx.nr_mem_id >= 2 && ry.nr_mem_id >= 2 && rx.nr_mem_id != ry.nr_mem_id,
	    "two VALE ports, two memory ids (%u, %u), neither the global 1", rx.nr_mem_id, ry.nr_mem_id);
	CHECK(rx.nr_memsize == ry.nr_memsize && rx.nr_offset != ry.nr_offset,
	    "... in the one region (same nr_memsize, distinct netmap_if offsets)");
	struct nmreq_port_info_get pi;
	memset(&pi, 0, sizeof pi);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "vale0:y", &pi, NULL), 0, "PORT_INFO_GET vale0:y");
	CHECK(pi.nr_mem_id == ry.nr_mem_id && pi.nr_tx_slots == 64 && pi.nr_rx_rings == 1,
	    "... its memory id %u and geometry (%u slots)", pi.nr_mem_id, pi.nr_tx_slots);
	memset(&pi, 0, sizeof pi);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "vale0:nope", &pi, NULL), EINVAL,
	    "PORT_INFO_GET of a VALE port that does not exist (not created for the question)");
	memset(&pi, 0, sizeof pi);
	pi.nr_mem_id = ry.nr_mem_id;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &pi, NULL), 0, "PORT_INFO_GET with no name, y's memory id");
	CHECK(pi.nr_mem_id == ry.nr_mem_id && pi.nr_memsize == ry.nr_memsize, "... answers for that allocator");
	struct nmreq_pools_info pools;
	memset(&pools, 0, sizeof pools);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_POOLS_INFO_GET, "vale0:y", &pools, NULL), 0, "POOLS_INFO_GET vale0:y");
	CHECK(pools.nr_mem_id == ry.nr_mem_id && pools.nr_memsize == ry.nr_memsize && pools.nr_buf_pool_objsize == 2048,
	    "... its memory id %u, the region's geometry", pools.nr_mem_id);

	/* Virtio-net headers. */
	struct nmreq_port_hdr ph = { .nr_hdr_len = 7 };
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_HDR_SET, "vale0:y", &ph, NULL), EINVAL, "PORT_HDR_SET length 7");
	ph.nr_hdr_len = 12;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_HDR_SET, "vale0:nope", &ph, NULL), ENXIO, "PORT_HDR_SET on a missing VALE port");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_HDR_SET, "lo", &ph, NULL), ENXIO, "PORT_HDR_SET on an interface");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_HDR_SET, "vale0:y", &ph, NULL), 0, "PORT_HDR_SET vale0:y 12");
	ph.nr_hdr_len = 0;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_HDR_GET, "vale0:y", &ph, NULL), 0, "PORT_HDR_GET vale0:y");
	CHECK_EQ(ph.nr_hdr_len, 12, "... length");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_PORT_HDR_GET, "vale0:nope", &ph, NULL), ENXIO, "PORT_HDR_GET on a missing VALE port");
	CHECK_ERRNO(reg_errno("vale0:y", NR_REG_ALL_NIC, 0, 0, 0), EIO, "REGISTER vale0:y without NR_ACCEPT_VNET_HDR");
	CHECK_ERRNO(reg_errno("vale0:y", NR_REG_ALL_NIC, 0, NR_ACCEPT_VNET_HDR, 0), 0,
	    "REGISTER vale0:y with NR_ACCEPT_VNET_HDR");

	/* VALE_LIST (§3.4): enumeration and names. */
	struct nmreq_vale_list vl;
	struct nmreq_header h;
	memset(&vl, 0, sizeof vl);
	int found = 0, e;
	char names[128] = "";
	while ((e = ctrl(fd, NETMAP_REQ_VALE_LIST, "", &vl, &h)) == 0 && found < 10) {
		snprintf(what, sizeof what, "%s%u/%u %s", found ? ", " : "", vl.nr_bridge_idx, vl.nr_port_idx, h.nr_name);
		strncat(names, what, sizeof names - strlen(names) - 1);
		found++;
		vl.nr_port_idx++;
	}
	CHECK(e == ENOENT && strcmp(names, "0/0 vale0:x, 0/1 vale0:y") == 0,
	    "VALE_LIST enumerates \"%s\" then %s", names, nmt_errname(e));
	memset(&vl, 0, sizeof vl);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, "vale0:y", &vl, NULL), 0, "VALE_LIST vale0:y");
	CHECK(vl.nr_bridge_idx == 0 && vl.nr_port_idx == 1, "... bridge 0 port 1 (got %u/%u)", vl.nr_bridge_idx,
	    vl.nr_port_idx);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, "vale0:zz", &vl, NULL), 0, "VALE_LIST of a missing port of vale0");
	CHECK_EQ(vl.nr_port_idx, 255, "... port index NM_BDG_NOPORT");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, "vale5:a", &vl, NULL), ENOENT, "VALE_LIST of a missing switch");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, "lo", &vl, NULL), EINVAL, "VALE_LIST without the vale prefix");
	struct nmreq lr;
	memset(&lr, 0, sizeof lr);
	lr.nr_version = NETMAP_API;
	lr.nr_cmd = NETMAP_BDG_LIST;
	lr.nr_arg2 = 1;
	CHECK_ERRNO(nmt_ioctl(fd, NIOCGINFO, &lr), 0, "legacy NIOCGINFO NETMAP_BDG_LIST from port 1");
	CHECK(strcmp(lr.nr_name, "vale0:y") == 0 && lr.nr_arg1 == 0 && lr.nr_arg2 == 1, "... finds %s at %u/%u",
	    lr.nr_name, lr.nr_arg1, lr.nr_arg2);

	/* Eight switches, no ninth. */
	struct nmt_port sw[7];
	char n[32];
	int made = 0;
	for (int i = 1; i < 8; i++) {
		snprintf(n, sizeof n, "vale%d:p", 10 + i);
		made += vale_open(&sw[i - 1], n, 0, 8, NULL) == 0;
	}
	CHECK_EQ(made, 7, "seven more switches (eight in all)");
	CHECK_ERRNO(reg_errno("vale99:p", NR_REG_ALL_NIC, 0, 0, 0), ENOMEM, "REGISTER on a ninth switch");
	for (int i = 0; i < 7; i++)
		nmt_port_close(&sw[i]);

	/* Attach, detach, newif, delif, polling (§3.4, §10). */
	struct nmreq_vale_attach at;
	memset(&at, 0, sizeof at);
	at.reg.nr_mode = NR_REG_ALL_NIC;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "lo", &at, NULL), EINVAL, "VALE_ATTACH without the vale prefix");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0:y", &at, NULL), EBUSY, "VALE_ATTACH of an existing port");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0:nmdnosuch", &at, NULL), EINVAL,
	    "VALE_ATTACH of an interface that does not exist");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0", &at, NULL), ENOMEM, "VALE_ATTACH with a bad switch name");
	at.reg.nr_ringid = 1;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0:lo", &at, NULL), EINVAL, "VALE_ATTACH of a NIC with ring id 1");
	at.reg.nr_ringid = 0;
	at.reg.nr_mode = NR_REG_ONE_NIC;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0:lo", &at, NULL), EINVAL, "VALE_ATTACH of a NIC with ONE_NIC");
	at.reg.nr_mode = NR_REG_ALL_NIC;
	at.reg.nr_mem_id = 999;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0:lo", &at, NULL), EINVAL, "VALE_ATTACH with an unknown nr_mem_id");
	at.reg.nr_mem_id = 0;
	at.reg.nr_mode = NR_REG_NIC_SW;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, "vale0:x", &at, NULL), EBUSY,
	    "VALE_ATTACH with host rings of an existing port");
	/* (Attaching real interfaces: Tests/net/run-vale-nic-tests.sh; never lo here.) */
	struct nmreq_vale_detach dt;
	memset(&dt, 0, sizeof dt);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_DETACH, "lo", &dt, NULL), EINVAL, "VALE_DETACH without the vale prefix");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_DETACH, "vale0:nope", &dt, NULL), ENXIO, "VALE_DETACH of a missing port");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_DETACH, "vale0:y", &dt, NULL), EINVAL,
	    "VALE_DETACH of an ephemeral port (not attached)");
	struct nmreq_vale_newif nf;
	memset(&nf, 0, sizeof nf);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_NEWIF, "vale0", &nf, NULL), EINVAL, "VALE_NEWIF of a vale name");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_NEWIF, "nmd0123456789abc", &nf, NULL), EINVAL, "VALE_NEWIF of 16 characters");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_NEWIF, "lo", &nf, NULL), EEXIST, "VALE_NEWIF of an existing interface");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_NEWIF, "nmdv0", &nf, NULL), EOPNOTSUPP,
	    "VALE_NEWIF of a new name (persistent ports not provided)");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_DELIF, "nmdnosuch", NULL, NULL), ENXIO, "VALE_DELIF of a missing interface");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_DELIF, "lo", NULL, NULL), EINVAL, "VALE_DELIF of a non-VALE interface");
	struct nmreq_vale_polling vp;
	memset(&vp, 0, sizeof vp);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_POLLING_ENABLE, "lo", &vp, NULL), EINVAL, "VALE_POLLING_ENABLE without the prefix");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_POLLING_ENABLE, "vale0:nope", &vp, NULL), ENXIO,
	    "VALE_POLLING_ENABLE of a missing port");
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_POLLING_DISABLE, "vale0:y", &vp, NULL), EOPNOTSUPP,
	    "VALE_POLLING_DISABLE of a port that is no attached NIC");

	nmt_port_close(&x);
	nmt_port_close(&y);
	close(fd);
	return nmt_summary();
}

/* ---- SIGKILL ---- */

static int killed(void)
{
	int rp[2];
	if (pipe(rp) < 0)
		nmt_die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		struct nmt_port k;
		if (vale_open(&k, "vale3:k", 0, 64, NULL) == 0 && write(rp[1], "r", 1) == 1)
			pause();
		_exit(1);
	}
	char ch;
	struct pollfd pr = { .fd = rp[0], .events = POLLIN };
	if (poll(&pr, 1, NMT_MS(10000)) != 1 || read(rp[0], &ch, 1) != 1) {
		kill(pid, SIGKILL);
		nmt_die("the child did not register vale3:k");
	}
	int fd = nmt_open();
	struct nmreq_vale_list vl;
	memset(&vl, 0, sizeof vl);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, "vale3:k", &vl, NULL), 0, "vale3:k exists while its client lives");
	CHECK(vl.nr_port_idx == 0, "... as port 0 (got %u)", vl.nr_port_idx);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	double t0 = nmd_now();
	int e;
	while ((e = ctrl(fd, NETMAP_REQ_VALE_LIST, "vale3:k", &vl, NULL)) == 0 && nmd_now() - t0 < NMT_SEC(10))
		usleep(20000);
	CHECK_ERRNO(e, ENOENT, "after SIGKILL of its only client, switch vale3 is gone");
	memset(&vl, 0, sizeof vl);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, "", &vl, NULL), ENOENT, "VALE_LIST enumerates nothing");
	close(fd);
	return nmt_summary();
}

/* ---- attach / detach (a NIC stays attached after this program exits) ---- */

static int attach_cmd(const char *name, int detach, int host)
{
	int fd = nmt_open();
	int e;
	uint32_t idx;
	if (detach) {
		struct nmreq_vale_detach d;
		memset(&d, 0, sizeof d);
		e = ctrl(fd, NETMAP_REQ_VALE_DETACH, name, &d, NULL);
		idx = d.port_index;
	} else {
		struct nmreq_vale_attach a;
		memset(&a, 0, sizeof a);
		a.reg.nr_mode = host ? NR_REG_NIC_SW : NR_REG_ALL_NIC;
		e = ctrl(fd, NETMAP_REQ_VALE_ATTACH, name, &a, NULL);
		idx = a.port_index;
	}
	CHECK(e == 0, "%s %s -> %s, port %u", detach ? "VALE_DETACH" : "VALE_ATTACH", name, nmt_errname(e), idx);
	close(fd);
	return nmt_summary();
}

/* An attached NIC belongs to its switch (§3.4 step 5, §11.3). */
static int owned_cmd(const char *name)
{
	const char *ifname = strchr(name, ':');
	if (!ifname)
		nmt_die("owned: %s is no valeX:IF name", name);
	ifname++;
	int fd = nmt_open();
	struct nmreq_vale_list vl;
	memset(&vl, 0, sizeof vl);
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_LIST, name, &vl, NULL), 0, "VALE_LIST of the attached NIC");
	CHECK(vl.nr_port_idx != 255, "... is a port of its switch (port %u)", vl.nr_port_idx);
	CHECK_ERRNO(reg_errno(ifname, NR_REG_ALL_NIC, 0, 0, 0), EBUSY, "REGISTER of an attached NIC");
	CHECK_ERRNO(reg_errno(name, NR_REG_ALL_NIC, 0, 0, 0), EBUSY, "REGISTER of the attached NIC's switch port");
	char other[64];
	snprintf(other, sizeof other, "vale7:%s", ifname);
	struct nmreq_vale_attach a;
	memset(&a, 0, sizeof a);
	a.reg.nr_mode = NR_REG_ALL_NIC;
	CHECK_ERRNO(ctrl(fd, NETMAP_REQ_VALE_ATTACH, other, &a, NULL), EBUSY, "VALE_ATTACH of the NIC to a second switch");
	close(fd);
	return nmt_summary();
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_vale");
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		nmt_die("usage: nm_vale [-d DEVICE] traffic [FRAMES [SEED]] | learning | drops | errors | killed");
	if (strcmp(argv[1], "traffic") == 0)
		return traffic(argc > 2 ? strtoull(argv[2], NULL, 0) : 1000000, argc > 3 ? strtoull(argv[3], NULL, 0) : 1);
	if (strcmp(argv[1], "learning") == 0)
		return learning();
	if (strcmp(argv[1], "drops") == 0)
		return drops();
	if (strcmp(argv[1], "errors") == 0)
		return errors();
	if (strcmp(argv[1], "killed") == 0)
		return killed();
	if (strcmp(argv[1], "owned") == 0 && argc > 2)
		return owned_cmd(argv[2]);
	if ((strcmp(argv[1], "attach") == 0 || strcmp(argv[1], "attach-host") == 0 || strcmp(argv[1], "detach") == 0) &&
	    argc > 2)
		return attach_cmd(argv[2], argv[1][0] == 'd', strcmp(argv[1], "attach-host") == 0);
	nmt_die("unknown test %s", argv[1]);
}
