/*
 * host_io.c: the host rings of an interface driven directly (issue #13).
 *
 *   host_io tx DEV IF COUNT   registers IF with NR_REG_SW and puts COUNT test
 *                             frames (tools/nmd_client.h, stream 7, 60-1514
 *                             bytes) on the host TX ring, after three slots
 *                             the device must drop: a buffer index outside
 *                             the pool, a 10-byte runt, and a 2000-byte
 *                             frame (over the MTU; it would fail a
 *                             receiver's length check if delivered)
 *   host_io txfrag DEV IF COUNT  as tx without the bad slots, frame n split
 *                             over 1 + n % 3 slots chained with NS_MOREFRAG
 *                             (each chain must reach the stack as one frame)
 *   host_io modes DEV IF      the host-ring registration modes: NR_REG_SW,
 *                             NR_REG_NIC_SW, NR_REG_ONE_SW 0 bind the right
 *                             rings (non-zero ring_ofs exactly there, host
 *                             ring counts 1), ONE_SW / ONE_NIC beyond the
 *                             rings give EINVAL; prints one line per check
 *                             and, with 2 host ring pairs requested by
 *                             the first registration: counts 2, ring_ofs,
 *                             ONE_SW 1 binds the second pair, ONE_SW 2
 *                             EINVAL
 *   host_io rx DEV IF COUNT [H]  registers IF with NR_REG_NIC_SW (the stack's
 *                             transmissions are captured only while NIC TX
 *                             rings are in netmap mode too), asking for H
 *                             host ring pairs (default 1), and waits for
 *                             COUNT distinct stream-9 frames on the host RX
 *                             rings, checking every byte (3 s idle timeout)
 *
 * Prints "ready" on stderr once registered; exits 0 on success.
 */
#include <poll.h>

#include "nmd_client.h"

static int reg_hosts(int fd, const char *ifname, uint32_t mode, uint16_t ring, uint16_t hosts,
		     struct nmreq_register *out)
{
	return nmd_register_hosts(fd, ifname, mode, ring, 0, 0, hosts, out);
}

static int reg_n(const char *dev, const char *ifname, uint32_t mode, uint16_t hosts, struct nmd_port *p)
{
	return nmd_port_open_mode(p, dev, ifname, mode, 0, 0, 0, hosts) ? -1 : 0;
}

static int reg(const char *dev, const char *ifname, uint32_t mode, struct nmd_port *p)
{
	return reg_n(dev, ifname, mode, 0, p);
}

static void put(struct netmap_ring *r, uint32_t len, uint32_t buf_override)
{
	struct netmap_slot *s = &r->slot[r->head];
	s->len = (uint16_t)len;
	s->flags = 0;
	if (buf_override)
		s->buf_idx = buf_override;
	r->head = r->cur = nmd_next(r, r->head);
}

/* Puts frame `seq` (stream 7) on the host TX ring, split over `parts`
 * slots chained with NS_MOREFRAG. */
static void put_frame(struct netmap_ring *r, uint64_t seq, unsigned parts)
{
	static const uint8_t dst[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, src[6] = { 2, 0, 0, 0, 0, 7 };
	struct nmdf_sizes z = { 60, 1514 };
	uint8_t frame[2048];
	unsigned len = nmdf_build(frame, &z, seq, 7, dst, src), off = 0;
	for (unsigned i = 0; i < parts; i++) {
		unsigned n = i + 1 < parts ? len / parts : len - off;
		memcpy(nmd_buf(r, r->slot[r->head].buf_idx), frame + off, n);
		off += n;
		put(r, n, 0);
		if (i + 1 < parts)
			r->slot[(r->head + r->num_slots - 1) % r->num_slots].flags = NS_MOREFRAG;
	}
}

/* tx: the three bad slots, then COUNT whole frames; txfrag (`frag`): frame
 * n over 1 + n % 3 slots chained with NS_MOREFRAG, no bad slots. */
static int tx(const char *dev, const char *ifname, uint64_t count, int frag)
{
	struct nmd_port p;
	if (reg(dev, ifname, NR_REG_SW, &p) < 0)
		return 1;
	struct netmap_if *nifp = p.nifp;
	struct netmap_ring *r = nmd_txring(nifp, nifp->ni_tx_rings);
	fprintf(stderr, "ready\n");
	if (!frag) {
		/* The three bad slots first. */
		uint32_t saved = r->slot[r->head].buf_idx;
		put(r, 60, 0xfffffff0u);
		put(r, 10, 0);
		put_frame(r, 0, 1);   /* a valid frame ... */
		r->slot[(r->head + r->num_slots - 1) % r->num_slots].len = 2000;   /* ... over the MTU */
		ioctl(p.fd, NIOCTXSYNC, NULL);
		/* The bad slot got its buffer back from us (the device reclaims the
		 * slot as is: the index stays what we wrote). */
		for (uint32_t i = 0; i < r->num_slots; i++)
			if (r->slot[i].buf_idx == 0xfffffff0u)
				r->slot[i].buf_idx = saved;
	}
	uint64_t seq = 0, chained = 0;
	while (seq < count) {
		struct pollfd pfd = { .fd = p.fd, .events = POLLOUT };
		if (poll(&pfd, 1, 2000) <= 0) {
			fprintf(stderr, "host TX ring never had room\n");
			return 1;
		}
		while (seq < count && nmd_space(r) >= 3) {
			unsigned parts = frag ? 1 + (unsigned)(seq % 3) : 1;
			put_frame(r, seq++, parts);
			chained += parts > 1;
		}
		ioctl(p.fd, NIOCTXSYNC, NULL);
		usleep(2000);   /* the receiving socket is an ordinary one: pace a little */
	}
	ioctl(p.fd, NIOCTXSYNC, NULL);
	if (frag)
		printf("sent %llu frames, %llu of them as NS_MOREFRAG chains of 2 or 3 slots\n",
		       (unsigned long long)count, (unsigned long long)chained);
	else
		printf("sent %llu frames; bad slots dropped: 3 expected\n", (unsigned long long)count);
	return 0;
}

static int rx(const char *dev, const char *ifname, uint64_t count, uint16_t hosts)
{
	struct nmd_port p;
	if (reg_n(dev, ifname, NR_REG_NIC_SW, hosts, &p) < 0)
		return 1;
	struct netmap_if *nifp = p.nifp;
	unsigned hr = nifp->ni_host_rx_rings;
	uint64_t per[16] = { 0 };
	struct nmdf_sizes z = { 60, 1514 };
	struct nmdf_seen seen;
	nmdf_seen_init(&seen, count);
	uint64_t other = 0;
	fprintf(stderr, "ready\n");
	double idle = nmd_now();
	while (seen.unique < count) {
		struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
		poll(&pfd, 1, 200);
		if (nmd_now() - idle > 3) {
			fprintf(stderr, "host RX: %llu of %llu frames, then nothing for 3 s\n",
				(unsigned long long)seen.unique, (unsigned long long)count);
			return 1;
		}
		for (unsigned q = 0; q < hr && q < 16; q++) {
		struct netmap_ring *r = nmd_rxring(nifp, nifp->ni_rx_rings + q);
		while (r->head != r->tail) {
			struct netmap_slot *s = &r->slot[r->head];
			uint64_t seq;
			const char *why = "";
			switch (nmdf_check((uint8_t *)nmd_buf(r, s->buf_idx), s->len, &z, 9, &seq, &why)) {
			case NMDF_OK: nmdf_seen_add(&seen, seq); break;
			case NMDF_OTHER: other++; break;
			case NMDF_BAD:
				fprintf(stderr, "host RX: a frame with a wrong %s\n", why);
				return 1;
			}
			r->head = r->cur = nmd_next(r, r->head);
			per[q]++;
			idle = nmd_now();
		}
		}
	}
	printf("host RX: %llu frames byte-exact, %llu duplicates, %llu other frames; %u host RX ring(s):",
	       (unsigned long long)seen.unique, (unsigned long long)seen.dups, (unsigned long long)other, hr);
	for (unsigned q = 0; q < hr && q < 16; q++)
		printf(" %llu", (unsigned long long)per[q]);
	printf("\n");
	if (hosts && hr != hosts) {
		fprintf(stderr, "host RX: %u host RX rings, %u asked for\n", hr, hosts);
		return 1;
	}
	return seen.dups == 0 ? 0 : 1;
}

static int failures, passes;
static void expect_true(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", what);
	failures += !ok;
	passes += !!ok;
}

/* Registers with `mode`/`ring`; checks that exactly [tx0, tx1) and [rx0, rx1)
 * of the ring_ofs table are non-zero. */
static void mode_case(const char *dev, const char *ifname, uint32_t mode, uint16_t ring, const char *label)
{
	int fd = open(dev, O_RDWR);
	struct nmreq_register r;
	int e = nmd_register(fd, ifname, mode, ring, 0, 0, &r);
	char what[160];
	snprintf(what, sizeof what, "%s: registers (%s)", label, e ? strerror(e) : "ok");
	expect_true(e == 0, what);
	if (e) {
		close(fd);
		return;
	}
	void *mem = mmap(NULL, r.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct netmap_if *nifp = nmd_if(mem, r.nr_offset);
	unsigned nt = nifp->ni_tx_rings, nr = nifp->ni_rx_rings, ht = nifp->ni_host_tx_rings, hr = nifp->ni_host_rx_rings;
	int nic = mode == NR_REG_NIC_SW, host = 1;
	int ok = r.nr_host_tx_rings == 1 && r.nr_host_rx_rings == 1 && ht == 1 && hr == 1;
	for (unsigned i = 0; i < nt + ht; i++)
		ok &= (nifp->ring_ofs[i] != 0) == (i < nt ? nic : host);
	for (unsigned i = 0; i < nr + hr; i++)
		ok &= (nifp->ring_ofs[nt + ht + i] != 0) == (i < nr ? nic : host);
	snprintf(what, sizeof what, "%s: ring_ofs non-zero exactly for the %s rings, one host ring pair", label,
		 nic ? "NIC and host" : "host");
	expect_true(ok, what);
	munmap(mem, r.nr_memsize);
	close(fd);
}

static int modes(const char *dev, const char *ifname)
{
	mode_case(dev, ifname, NR_REG_SW, 0, "NR_REG_SW");
	mode_case(dev, ifname, NR_REG_NIC_SW, 0, "NR_REG_NIC_SW");
	mode_case(dev, ifname, NR_REG_ONE_SW, 0, "NR_REG_ONE_SW ring 0");
	int fd = open(dev, O_RDWR);
	int e = nmd_register(fd, ifname, NR_REG_ONE_SW, 1, 0, 0, NULL);
	expect_true(e == EINVAL, "NR_REG_ONE_SW ring 1 (one host ring pair): EINVAL");
	e = nmd_register(fd, ifname, NR_REG_ONE_NIC, 64, 0, 0, NULL);
	expect_true(e == EINVAL, "NR_REG_ONE_NIC ring 64: EINVAL");
	close(fd);

	/* Two host ring pairs, asked for by the registration that creates the port. */
	struct nmreq_register r;
	int a = open(dev, O_RDWR);
	e = reg_hosts(a, ifname, NR_REG_NIC_SW, 0, 2, &r);
	expect_true(e == 0 && r.nr_host_tx_rings == 2 && r.nr_host_rx_rings == 2,
		    "nr_host_tx/rx_rings 2 on the first registration: 2 host ring pairs reported");
	if (e == 0) {
		void *mem = mmap(NULL, r.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
		struct netmap_if *nifp = nmd_if(mem, r.nr_offset);
		unsigned nt = nifp->ni_tx_rings, nr = nifp->ni_rx_rings;
		int ok = nifp->ni_host_tx_rings == 2 && nifp->ni_host_rx_rings == 2;
		for (unsigned i = 0; i < nt + 2 + nr + 2; i++)
			ok &= nifp->ring_ofs[i] != 0;
		expect_true(ok, "NR_REG_NIC_SW with 2 host ring pairs: ni_host_*_rings 2, every ring bound");
		int b = open(dev, O_RDWR);
		e = reg_hosts(b, ifname, NR_REG_ONE_SW, 1, 0, &r);
		ok = e == 0;
		if (ok) {
			void *m2 = mmap(NULL, r.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
			struct netmap_if *n2 = nmd_if(m2, r.nr_offset);
			for (unsigned i = 0; i < nt + 2; i++)
				ok &= (n2->ring_ofs[i] != 0) == (i == nt + 1);
			for (unsigned i = 0; i < nr + 2; i++)
				ok &= (n2->ring_ofs[nt + 2 + i] != 0) == (i == nr + 1);
			munmap(m2, r.nr_memsize);
		}
		expect_true(ok, "NR_REG_ONE_SW ring 1 next to it: exactly the second host ring pair");
		close(b);
		b = open(dev, O_RDWR);
		e = reg_hosts(b, ifname, NR_REG_ONE_SW, 2, 0, NULL);
		expect_true(e == EINVAL, "NR_REG_ONE_SW ring 2 (two host ring pairs): EINVAL");
		close(b);
		munmap(mem, r.nr_memsize);
	}
	close(a);
	printf("%d passed, %d failed\n", passes, failures);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "modes") == 0)
		return modes(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "rx") == 0)
		return rx(argv[2], argv[3], strtoull(argv[4], NULL, 0), (uint16_t)atoi(argv[5]));
	if (argc != 5) {
		fprintf(stderr, "usage: host_io tx|txfrag|rx DEV IF COUNT\n");
		return 2;
	}
	uint64_t count = strtoull(argv[4], NULL, 0);
	if (strcmp(argv[1], "tx") == 0)
		return tx(argv[2], argv[3], count, 0);
	if (strcmp(argv[1], "txfrag") == 0)
		return tx(argv[2], argv[3], count, 1);
	if (strcmp(argv[1], "rx") == 0)
		return rx(argv[2], argv[3], count, 0);
	fprintf(stderr, "usage: host_io tx|txfrag|rx DEV IF COUNT\n");
	return 2;
}
