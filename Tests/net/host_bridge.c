/*
 * host_bridge.c: a netmap program between an interface and its host stack
 * (issue #13), the way netmap's one-interface bridge works: frames received
 * on the NIC rings go to the host TX ring, frames the host stack sends
 * (host RX ring) go to the NIC TX rings.
 *
 *   host_bridge -d DEV -i IF [-f] [-c]
 *
 *   default  two descriptors, `IF` (NR_REG_ALL_NIC) and `IF` with
 *            NR_REG_SW, and zero-copy buffer swaps (NS_BUF_CHANGED)
 *   -c       copies instead of swaps
 *   -f       transparent mode instead: one descriptor with NR_REG_NIC_SW,
 *            NR_FORWARD on every RX ring and NS_FORWARD on every received
 *            slot; the device forwards them on the next sync
 *
 * Prints "ready" on stderr once registered, runs until SIGTERM/SIGINT, then
 * prints "nic->host N host->nic M" on stdout and exits 0 (1 on an error).
 */
#include <poll.h>
#include <signal.h>

#include "nmd_client.h"

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int reg(const char *dev, const char *ifname, uint32_t mode, struct nmd_port *p)
{
	return nmd_port_open_mode(p, dev, ifname, mode, 0, 0, 0, 0) ? -1 : 0;
}

/* Moves what `rx` holds into `tx` (swaps or copies); returns frames moved. */
static uint64_t move(struct netmap_ring *rx, struct netmap_ring *tx, int copy)
{
	uint64_t n = 0;
	while (rx->head != rx->tail && tx->head != tx->tail) {
		struct netmap_slot *rs = &rx->slot[rx->head], *ts = &tx->slot[tx->head];
		if (copy) {
			memcpy(nmd_buf(tx, ts->buf_idx), nmd_buf(rx, rs->buf_idx), rs->len);
		} else {
			uint32_t b = ts->buf_idx;
			ts->buf_idx = rs->buf_idx;
			rs->buf_idx = b;
			rs->flags |= NS_BUF_CHANGED;
		}
		ts->len = rs->len;
		ts->flags = (uint16_t)((copy ? 0 : NS_BUF_CHANGED) | (rs->flags & NS_MOREFRAG));
		if (!(rs->flags & NS_MOREFRAG))
			n++;
		rx->head = rx->cur = nmd_next(rx, rx->head);
		tx->head = tx->cur = nmd_next(tx, tx->head);
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/netmap", *ifname = NULL;
	int forward = 0, copy = 0, c;
	while ((c = getopt(argc, argv, "d:i:fc")) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'i': ifname = optarg; break;
		case 'f': forward = 1; break;
		case 'c': copy = 1; break;
		default: goto usage;
		}
	}
	if (!ifname)
		goto usage;
	if (strncmp(ifname, "netmap:", 7) == 0)
		ifname += 7;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	uint64_t to_host = 0, to_nic = 0;

	if (forward) {
		struct nmd_port p;
		if (reg(dev, ifname, NR_REG_NIC_SW, &p) < 0)
			return 1;
		struct netmap_if *nifp = p.nifp;
		unsigned nr = nifp->ni_rx_rings, hr = nifp->ni_host_rx_rings;
		for (unsigned i = 0; i < nr + hr; i++)
			nmd_rxring(nifp, i)->flags |= NR_FORWARD;
		fprintf(stderr, "ready\n");
		while (!stop) {
			struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
			if (poll(&pfd, 1, 200) < 0 && errno != EINTR) {
				perror("poll");
				return 1;
			}
			for (unsigned i = 0; i < nr + hr; i++) {
				struct netmap_ring *r = nmd_rxring(nifp, i);
				while (r->head != r->tail) {
					struct netmap_slot *s = &r->slot[r->head];
					s->flags |= NS_FORWARD;
					if (!(s->flags & NS_MOREFRAG))
						*(i < nr ? &to_host : &to_nic) += 1;
					r->head = r->cur = nmd_next(r, r->head);
				}
			}
		}
		ioctl(p.fd, NIOCRXSYNC, NULL);   /* the last released slots go too */
		printf("nic->host %llu host->nic %llu\n", (unsigned long long)to_host, (unsigned long long)to_nic);
		return 0;
	}

	struct nmd_port nic, host;
	if (reg(dev, ifname, NR_REG_ALL_NIC, &nic) < 0 || reg(dev, ifname, NR_REG_SW, &host) < 0)
		return 1;
	if (!copy && nic.reg.nr_mem_id != host.reg.nr_mem_id) {
		fprintf(stderr, "NIC and host rings in different memory (%u, %u): use -c\n",
			nic.reg.nr_mem_id, host.reg.nr_mem_id);
		return 1;
	}
	struct netmap_if *ni = nic.nifp, *hi = host.nifp;
	unsigned nt = ni->ni_tx_rings, nr = ni->ni_rx_rings;
	struct netmap_ring *htx = nmd_txring(hi, hi->ni_tx_rings), *hrx = nmd_rxring(hi, hi->ni_rx_rings);
	fprintf(stderr, "ready\n");
	unsigned next_tx = 0;
	while (!stop) {
		struct pollfd pfd[2] = { { .fd = nic.fd, .events = POLLIN }, { .fd = host.fd, .events = POLLIN } };
		/* Wait for room too where frames wait for it. */
		for (unsigned i = 0; i < nr; i++)
			if (nmd_rxring(ni, i)->head != nmd_rxring(ni, i)->tail && htx->head == htx->tail)
				pfd[1].events |= POLLOUT;
		if (hrx->head != hrx->tail)
			pfd[0].events |= POLLOUT;
		if (poll(pfd, 2, 200) < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
		for (unsigned i = 0; i < nr; i++)
			to_host += move(nmd_rxring(ni, i), htx, copy);
		for (unsigned k = 0; k < nt && hrx->head != hrx->tail; k++) {
			to_nic += move(hrx, nmd_txring(ni, next_tx), copy);
			next_tx = (next_tx + 1) % nt;
		}
		/* What was moved goes out with the next poll (netmap's poll syncs
		 * the TX rings first), as netmap's bridge relies on. */
	}
	ioctl(host.fd, NIOCTXSYNC, NULL);
	ioctl(nic.fd, NIOCTXSYNC, NULL);
	printf("nic->host %llu host->nic %llu\n", (unsigned long long)to_host, (unsigned long long)to_nic);
	return 0;
usage:
	fprintf(stderr, "usage: host_bridge -d DEV -i IF [-f] [-c]\n");
	return 2;
}
