/*
 * svc_traffic.c: known traffic through a netmap pipe, for checking
 * netmapctl's counters (Tests/service/run-service-tests.sh).
 *
 *   svc_traffic [-d DEVICE] -p NAME -n A2B_FRAMES -r B2A_FRAMES [-s SEED]
 *   svc_traffic [-d DEVICE] -i IFNAME -n FRAMES [-s SEED]
 *   svc_traffic [-d DEVICE] -i IFNAME -R FRAMES [-s SEED]
 *
 * One process opens the device twice and registers both ends of the pipe
 * NAME: NAME{1 (A, master) and NAME}1 (B, slave), as nr_name (what a netmap
 * library sends for netmap:NAME{1 and netmap:NAME}1). It sends
 * A2B_FRAMES frames A -> B and B2A_FRAMES frames B -> A, frame lengths
 * 60..1514 from a PRNG seeded with SEED, in batches of varying size, each
 * received frame checked byte for byte. Then it prints
 *
 *     TOTAL pid=P a2b_frames=N a2b_bytes=X b2a_frames=M b2a_bytes=Y
 *     HOLD
 *
 * and keeps both registrations until SIGTERM, SIGINT or SIGUSR1 (so the
 * caller can read the daemon's counters while the ports exist), then closes
 * everything and exits 0. Any failure prints a FAIL line and exits 1.
 *
 * With -i it registers the interface IFNAME instead and transmits
 * FRAMES Ethernet frames (broadcast, EtherType 0x88b5, lengths as above) on
 * its first TX ring, waits until the daemon has taken every slot, prints
 *
 *     TOTAL pid=P tx_frames=N tx_bytes=X
 *     HOLD
 *
 * and holds the registration as above. With -R it receives FRAMES frames
 * sent that way instead (checking each; anything else on the ring is a
 * failure), prints "REGISTERED" once registered, then
 *
 *     TOTAL pid=P rx_frames=N rx_bytes=X
 *     HOLD
 */
#include "nm_common.h"

static uint64_t seed = 7;

/* Moves `frames` frames from `tx` (port s) to `rx` (port r); returns the bytes. */
static uint64_t transfer(struct nmt_port *s, struct nmt_port *r, uint64_t frames, uint64_t seq0, const char *what)
{
	struct netmap_ring *tx = s->tx, *rx = r->rx;
	uint64_t sent = 0, got = 0, bytes = 0;
	uint32_t batch = 1;
	double deadline = nmd_now() + NMT_SEC(30);

	while (got < frames) {
		if (nmd_now() > deadline)
			nmt_die("%s: stalled after %llu of %llu frames", what, (unsigned long long)got,
			    (unsigned long long)frames);
		/* fill a batch of 1, 2, ... 97, 1, ... slots (whatever room there is) */
		uint32_t room = nmd_space(tx), i = tx->head;
		for (uint32_t k = 0; k < batch && k < room && sent < frames; k++, sent++) {
			struct netmap_slot *sl = &tx->slot[i];
			sl->len = nmt_frame_len(seed, seq0 + sent);
			sl->flags = 0;
			nmt_frame_fill(nmd_buf(tx, sl->buf_idx), seq0 + sent, sl->len);
			i = nmd_next(tx, i);
		}
		tx->head = tx->cur = i;
		batch = batch % 97 + 1;
		if (nmt_ioctl(s->fd, NIOCTXSYNC, NULL))
			nmt_die("%s: NIOCTXSYNC: %s", what, strerror(errno));
		if (nmt_ioctl(r->fd, NIOCRXSYNC, NULL))
			nmt_die("%s: NIOCRXSYNC: %s", what, strerror(errno));
		uint32_t n = nmd_space(rx);
		i = rx->head;
		for (uint32_t k = 0; k < n; k++, got++) {
			struct netmap_slot *sl = &rx->slot[i];
			uint16_t len = nmt_frame_len(seed, seq0 + got);
			if (got >= frames)
				nmt_die("%s: more frames than sent", what);
			if (sl->len != len)
				nmt_die("%s: frame %llu: len %u, want %u", what, (unsigned long long)got, sl->len, len);
			if (nmt_frame_check(nmd_buf(rx, sl->buf_idx), seq0 + got, len))
				nmt_die("%s: frame %llu: bytes differ", what, (unsigned long long)got);
			bytes += len;
			i = nmd_next(rx, i);
		}
		rx->head = rx->cur = i;
	}
	/* hand the last received slots back and let the sender reclaim */
	if (nmt_ioctl(r->fd, NIOCRXSYNC, NULL) || nmt_ioctl(s->fd, NIOCTXSYNC, NULL))
		nmt_die("%s: final sync: %s", what, strerror(errno));
	return bytes;
}

/* Transmits `frames` frames on the interface port p; returns the bytes. */
static uint64_t transmit(struct nmt_port *p, uint64_t frames)
{
	static const unsigned char hdr[14] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5 };
	struct netmap_ring *tx = p->tx;
	uint64_t sent = 0, bytes = 0;
	double deadline = nmd_now() + NMT_SEC(30);
	while (sent < frames || nmd_space(tx) != tx->num_slots - 1) {
		if (nmd_now() > deadline)
			nmt_die("tx: stalled after %llu of %llu frames (%u slots free)", (unsigned long long)sent,
			    (unsigned long long)frames, nmd_space(tx));
		uint32_t room = nmd_space(tx), i = tx->head;
		for (uint32_t k = 0; k < room && k < 64 && sent < frames; k++, sent++) {
			struct netmap_slot *sl = &tx->slot[i];
			sl->len = nmt_frame_len(seed, sent);
			sl->flags = 0;
			char *b = nmd_buf(tx, sl->buf_idx);
			nmt_frame_fill(b, sent, sl->len);
			memcpy(b, hdr, sizeof hdr);
			bytes += sl->len;
			i = nmd_next(tx, i);
		}
		tx->head = tx->cur = i;
		if (nmt_ioctl(p->fd, NIOCTXSYNC, NULL))
			nmt_die("tx: NIOCTXSYNC: %s", strerror(errno));
		if (nmd_space(tx) == 0)
			usleep(1000);
	}
	return bytes;
}

/* Receives `frames` frames sent by transmit(); returns the bytes. */
static uint64_t receive(struct nmt_port *p, uint64_t frames)
{
	struct netmap_ring *rx = p->rx;
	uint64_t got = 0, bytes = 0;
	double deadline = nmd_now() + NMT_SEC(30);
	while (got < frames) {
		if (nmd_now() > deadline)
			nmt_die("rx: stalled after %llu of %llu frames", (unsigned long long)got, (unsigned long long)frames);
		if (nmt_ioctl(p->fd, NIOCRXSYNC, NULL))
			nmt_die("rx: NIOCRXSYNC: %s", strerror(errno));
		uint32_t n = nmd_space(rx), i = rx->head;
		for (uint32_t k = 0; k < n; k++, got++) {
			struct netmap_slot *sl = &rx->slot[i];
			char *b = nmd_buf(rx, sl->buf_idx);
			uint16_t len = nmt_frame_len(seed, got);
			if (got >= frames || sl->len != len || (unsigned char)b[12] != 0x88 || (unsigned char)b[13] != 0xb5)
				nmt_die("rx: frame %llu: len %u (want %u), EtherType %02x%02x", (unsigned long long)got, sl->len,
				    len, (unsigned char)b[12], (unsigned char)b[13]);
			char want[2048];
			nmt_frame_fill(want, got, len);
			if (memcmp(b + 14, want + 14, len - 14) != 0)
				nmt_die("rx: frame %llu: bytes differ", (unsigned long long)got);
			bytes += len;
			i = nmd_next(rx, i);
		}
		rx->head = rx->cur = i;
		if (n == 0)
			usleep(1000);
	}
	if (nmt_ioctl(p->fd, NIOCRXSYNC, NULL))
		nmt_die("rx: final NIOCRXSYNC: %s", strerror(errno));
	return bytes;
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "svc_traffic");
	const char *name = NULL, *ifname = NULL;
	uint64_t a2b = 0, b2a = 0, rxn = 0;
	int c;
	while ((c = getopt(argc, argv, "i:p:n:r:R:s:")) != -1) {
		switch (c) {
		case 'i': ifname = optarg; break;
		case 'p': name = optarg; break;
		case 'n': a2b = strtoull(optarg, NULL, 0); break;
		case 'r': b2a = strtoull(optarg, NULL, 0); break;
		case 'R': rxn = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: svc_traffic [-d DEVICE] -p NAME -n A2B -r B2A [-s SEED]\n");
			return 2;
		}
	}
	if (!name && !ifname)
		nmt_die("-p NAME or -i IFNAME is required");

	/* the signals that end the hold are taken by sigwait only */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (ifname) {
		char n[64];
		snprintf(n, sizeof n, "%s", ifname);
		struct nmt_port p;
		int e = nmt_port_open(&p, n, 0, 0);
		if (e)
			nmt_die("register %s: %s", n, strerror(e));
		printf("REGISTERED\n");
		fflush(stdout);
		if (rxn) {
			uint64_t bytes = receive(&p, rxn);
			printf("TOTAL pid=%d rx_frames=%llu rx_bytes=%llu\n", (int)getpid(), (unsigned long long)rxn,
			    (unsigned long long)bytes);
		} else {
			uint64_t bytes = transmit(&p, a2b);
			printf("TOTAL pid=%d tx_frames=%llu tx_bytes=%llu\n", (int)getpid(), (unsigned long long)a2b,
			    (unsigned long long)bytes);
		}
		printf("HOLD\n");
		fflush(stdout);
		int sig;
		sigwait(&set, &sig);
		nmt_port_close(&p);
		printf("DONE\n");
		return 0;
	}

	char an[64], bn[64];
	snprintf(an, sizeof an, "%s{1", name);
	snprintf(bn, sizeof bn, "%s}1", name);
	struct nmt_port a, b;
	int e = nmt_port_open(&a, an, 0, 0);
	if (e)
		nmt_die("register %s: %s", an, strerror(e));
	e = nmt_port_open(&b, bn, 0, 0);
	if (e)
		nmt_die("register %s: %s", bn, strerror(e));

	uint64_t a2b_bytes = transfer(&a, &b, a2b, 0, "A->B");
	uint64_t b2a_bytes = transfer(&b, &a, b2a, 1000000, "B->A");

	printf("TOTAL pid=%d a2b_frames=%llu a2b_bytes=%llu b2a_frames=%llu b2a_bytes=%llu\n", (int)getpid(),
	    (unsigned long long)a2b, (unsigned long long)a2b_bytes, (unsigned long long)b2a,
	    (unsigned long long)b2a_bytes);
	printf("HOLD\n");
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	nmt_port_close(&b);
	nmt_port_close(&a);
	printf("DONE\n");
	return 0;
}
