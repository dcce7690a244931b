/*
 * rx_stable.c: NIC RX slots keep their buffers (issue #14 item 13). On a
 * netmap NIC RX ring a slot's buf_idx changes only when the program swaps
 * it; the device never sets NS_BUF_CHANGED there.
 *
 *   rx_stable DEV IF COUNT   registers IF (all NIC rings), notes every RX
 *                            slot's buffer, then receives COUNT frames
 *                            (3 s idle timeout) and checks that each slot
 *                            that got one still holds the buffer it had,
 *                            without NS_BUF_CHANGED
 *
 * Prints "ready" on stderr once registered; exits 0 if every slot kept its
 * buffer, 1 otherwise (with the first slot that did not).
 */
#include <poll.h>

#include "nmd_client.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: rx_stable DEV IF COUNT\n");
		return 2;
	}
	uint64_t count = strtoull(argv[3], NULL, 0), got = 0;
	struct nmd_port p;
	if (nmd_port_open_mode(&p, argv[1], argv[2], NR_REG_ALL_NIC, 0, 0, 0, 0))
		return 1;
	unsigned nr = p.nifp->ni_rx_rings;
	uint32_t *noted[64] = { 0 };
	for (unsigned i = 0; i < nr && i < 64; i++) {
		struct netmap_ring *r = nmd_rxring(p.nifp, i);
		noted[i] = calloc(r->num_slots, sizeof(uint32_t));
		for (uint32_t s = 0; s < r->num_slots; s++)
			noted[i][s] = r->slot[s].buf_idx;
	}
	fprintf(stderr, "ready\n");
	double idle = nmd_now();
	while (got < count && nmd_now() - idle < 3) {
		struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
		poll(&pfd, 1, 200);
		for (unsigned i = 0; i < nr && i < 64; i++) {
			struct netmap_ring *r = nmd_rxring(p.nifp, i);
			while (r->head != r->tail) {
				struct netmap_slot *s = &r->slot[r->head];
				if (s->buf_idx != noted[i][r->head] || (s->flags & NS_BUF_CHANGED)) {
					fprintf(stderr, "rx_stable: ring %u slot %u: buffer %u, was %u, flags 0x%x\n", i,
						r->head, s->buf_idx, noted[i][r->head], s->flags);
					return 1;
				}
				got++;
				r->head = r->cur = nmd_next(r, r->head);
				idle = nmd_now();
			}
		}
	}
	printf("rx_stable: %llu frames, every slot kept its buffer\n", (unsigned long long)got);
	return got >= count ? 0 : 1;
}
