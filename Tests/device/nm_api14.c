/*
 * nm_api14.c: the API 14 control path (NIOCCTRL), as libnetmap programs use
 * it: PORT_INFO_GET, POOLS_INFO_GET (geometry consistency, §4.2), REGISTER
 * with an option chain (unsupported options undo the registration, §3.3,
 * §3.4 step 19), REGISTER with extra buffers (§4.7: walk ni_bufs_head, swap
 * one into a TX slot with NS_BUF_CHANGED, relink before exit), and
 * netmapd's pool statistics before and after.
 *
 *   nm_api14 [-d DEVICE]
 *
 * A "keeper" registration is held for the whole run so that the pool is
 * never reset by the last client going away: the before/after counts then
 * show exact accounting, not the reset.
 */
#include "nm_common.h"

static int ctrl(int fd, uint16_t type, const char *name, void *body, void *options, struct nmreq_header *out)
{
	struct nmreq_header h;
	nmd_req_header(&h, type, name, body);
	h.nr_options = (uintptr_t)options;
	int e = nmt_ioctl(fd, NIOCCTRL, &h);
	if (out)
		*out = h;
	return e;
}

/* Walks the extra-buffer list; returns its length (-1 on a bad index or a
 * list longer than `max`). */
static int walk_extra(struct netmap_if *nifp, struct netmap_ring *r, uint32_t buf_total, uint32_t *out, int max)
{
	int n = 0;
	for (uint32_t i = nifp->ni_bufs_head; i != 0; i = *(uint32_t *)nmd_buf(r, i)) {
		if (i < 2 || i >= buf_total || n >= max)
			return -1;
		out[n++] = i;
	}
	return n;
}

static int in_ring(struct netmap_ring *r, uint32_t idx)
{
	for (uint32_t i = 0; i < r->num_slots; i++)
		if (r->slot[i].buf_idx == idx)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	nmt_args(&argc, argv, "nm_api14");
	char base[24], pm[40], ps[40], keeper[40], hinted[40];
	snprintf(base, sizeof base, "a14_%d", (int)getpid());
	snprintf(pm, sizeof pm, "%s{1", base);
	snprintf(ps, sizeof ps, "%s}1", base);
	snprintf(keeper, sizeof keeper, "%sk{1", base);
	snprintf(hinted, sizeof hinted, "%sh{2", base);

	struct netmapd_pool_stats st0, stk, st;
	int fd = nmt_open();
	CHECK_ERRNO(nmt_ioctl(fd, NETMAPD_IOC_POOLSTAT, &st0), 0, "NETMAPD_IOC_POOLSTAT on an unbound descriptor");
	nmt_info("pool at start: buffers %u/%u free, rings %u/%u, ifs %u/%u, %u sessions, %u ports",
	    st0.free_buffers, st0.total_buffers, st0.free_rings, st0.total_rings, st0.free_ifs, st0.total_ifs,
	    st0.sessions, st0.ports);

	/* --- keeper --- */
	int kfd = nmt_open();
	CHECK_ERRNO(nmd_register(kfd, keeper, NR_REG_ALL_NIC, 0, 0, 0, NULL), 0, "REGISTER keeper pipe end");
	CHECK_ERRNO(nmt_poolstat(fd, &stk), 0, "pool stat with the keeper");
	CHECK(stk.sessions == st0.sessions + 1, "keeper: sessions %u -> %u", st0.sessions, stk.sessions);

	/* --- POOLS_INFO_GET: geometry (§4.2) --- */
	struct nmreq_pools_info pi;
	int e = nmt_pools_info(fd, pm, &pi);
	CHECK_ERRNO(e, 0, "POOLS_INFO_GET on a pipe name");
	nmt_info("pools: memsize %llu mem_id %u; if %#llx %u x %u; ring %#llx %u x %u; buf %#llx %u x %u",
	    (unsigned long long)pi.nr_memsize, pi.nr_mem_id, (unsigned long long)pi.nr_if_pool_offset,
	    pi.nr_if_pool_objtotal, pi.nr_if_pool_objsize, (unsigned long long)pi.nr_ring_pool_offset,
	    pi.nr_ring_pool_objtotal, pi.nr_ring_pool_objsize, (unsigned long long)pi.nr_buf_pool_offset,
	    pi.nr_buf_pool_objtotal, pi.nr_buf_pool_objsize);
	uint64_t if_bytes = (uint64_t)pi.nr_if_pool_objtotal * pi.nr_if_pool_objsize;
	uint64_t ring_bytes = (uint64_t)pi.nr_ring_pool_objtotal * pi.nr_ring_pool_objsize;
	uint64_t buf_bytes = (uint64_t)pi.nr_buf_pool_objtotal * pi.nr_buf_pool_objsize;
	CHECK_EQ(pi.nr_mem_id, 1, "POOLS_INFO_GET mem id");
	CHECK_EQ(pi.nr_if_pool_offset, 0, "if pool at offset 0");
	CHECK_EQ(pi.nr_ring_pool_offset, pi.nr_if_pool_offset + if_bytes, "ring pool right after the if pool");
	CHECK_EQ(pi.nr_buf_pool_offset, pi.nr_ring_pool_offset + ring_bytes, "buffer pool right after the ring pool");
	CHECK_EQ(pi.nr_buf_pool_objsize, 2048, "buffer objsize");
	CHECK(pi.nr_if_pool_objsize % 64 == 0 && pi.nr_ring_pool_objsize % 64 == 0,
	    "object sizes are multiples of 64 (%u, %u)", pi.nr_if_pool_objsize, pi.nr_ring_pool_objsize);
	CHECK(if_bytes % 4096 == 0 && ring_bytes % 4096 == 0 && buf_bytes % 4096 == 0,
	    "each pool is a whole number of pages");
	CHECK(pi.nr_if_pool_objsize >= 56 + 8 * 4, "if objects hold a netmap_if with 4 ring offsets");
	CHECK(pi.nr_ring_pool_objsize >= 256 + 16 * 1024, "ring objects hold a 1024-slot ring (%u bytes)",
	    pi.nr_ring_pool_objsize);
	CHECK_EQ(pi.nr_memsize, (pi.nr_buf_pool_offset + buf_bytes + 4095) / 4096 * 4096,
	    "memsize = end of the buffer pool, page-rounded");
	CHECK(st0.total_buffers == pi.nr_buf_pool_objtotal - 2 && st0.total_rings == pi.nr_ring_pool_objtotal &&
	    st0.total_ifs == pi.nr_if_pool_objtotal,
	    "pool stat totals (buffers %u rings %u ifs %u) match the geometry (buffers - 2)", st0.total_buffers,
	    st0.total_rings, st0.total_ifs);
	struct nmreq_pools_info pi0;
	CHECK_ERRNO(nmt_pools_info(fd, "", &pi0), ENXIO, "POOLS_INFO_GET with an empty name (§3.4)");

	/* --- PORT_INFO_GET --- */
	struct nmreq_port_info_get info;
	memset(&info, 0, sizeof info);
	e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, pm, &info, NULL, NULL);
	CHECK_ERRNO(e, 0, "PORT_INFO_GET on a pipe name");
	CHECK_EQ(info.nr_memsize, pi.nr_memsize, "PORT_INFO_GET memsize");
	CHECK_EQ(info.nr_mem_id, 1, "PORT_INFO_GET mem id");
	CHECK(info.nr_tx_rings == 1 && info.nr_rx_rings == 1 && info.nr_tx_slots == 1024 && info.nr_rx_slots == 1024,
	    "PORT_INFO_GET pipe: rings %u/%u slots %u/%u (want 1/1, 1024/1024)", info.nr_tx_rings, info.nr_rx_rings,
	    info.nr_tx_slots, info.nr_rx_slots);
	CHECK(info.nr_host_tx_rings == 0 && info.nr_host_rx_rings == 0, "PORT_INFO_GET pipe: host rings %u/%u (want 0)",
	    info.nr_host_tx_rings, info.nr_host_rx_rings);
	memset(&info, 0, sizeof info);
	info.nr_tx_rings = 3;
	info.nr_rx_rings = 2;
	info.nr_tx_slots = 256;
	info.nr_rx_slots = 512;
	e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, hinted, &info, NULL, NULL);
	CHECK(e == 0 && info.nr_tx_rings == 3 && info.nr_rx_rings == 2 && info.nr_tx_slots == 256 &&
	    info.nr_rx_slots == 512, "PORT_INFO_GET honours creation hints: %s, rings %u/%u slots %u/%u (want 3/2, 256/512)",
	    nmt_errname(e), info.nr_tx_rings, info.nr_rx_rings, info.nr_tx_slots, info.nr_rx_slots);
	memset(&info, 0, sizeof info);
	e = ctrl(fd, NETMAP_REQ_PORT_INFO_GET, "", &info, NULL, NULL);
	CHECK(e == 0 && info.nr_memsize == pi.nr_memsize && info.nr_mem_id == 1,
	    "PORT_INFO_GET with an empty name: %s, memsize %llu mem id %u", nmt_errname(e),
	    (unsigned long long)info.nr_memsize, info.nr_mem_id);
	int ok = nmt_wait_pool(&stk, &st, 2.0);
	CHECK(ok && st.ports == stk.ports,
	    "ports made for PORT_INFO_GET/POOLS_INFO_GET are gone again (ports %u, want %u)", st.ports, stk.ports);

	/* --- REGISTER with an option chain: OFFSETS then an unknown type 77 --- */
	struct nmreq_option unknown;
	struct nmreq_opt_offsets offs;
	memset(&unknown, 0, sizeof unknown);
	memset(&offs, 0, sizeof offs);
	unknown.nro_reqtype = 77;
	unknown.nro_size = sizeof unknown;
	offs.nro_opt.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
	offs.nro_opt.nro_size = sizeof offs;
	offs.nro_opt.nro_next = (uintptr_t)&unknown;
	offs.nro_max_offset = 64;
	offs.nro_initial_offset = 0;
	offs.nro_offset_bits = 8;
	struct nmreq_register reg;
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;
	reg.nr_extra_bufs = 8;
	struct nmreq_header hout;
	e = ctrl(fd, NETMAP_REQ_REGISTER, pm, &reg, &offs, &hout);
	CHECK_ERRNO(e, EOPNOTSUPP, "REGISTER with options OFFSETS + type 77");
	CHECK(offs.nro_opt.nro_status == EOPNOTSUPP && unknown.nro_status == EOPNOTSUPP,
	    "nro_status OFFSETS %u, type 77 %u (want EOPNOTSUPP %d on both: netmapd provides no offsets)",
	    offs.nro_opt.nro_status, unknown.nro_status, EOPNOTSUPP);
	CHECK(offs.nro_opt.nro_next == (uintptr_t)&unknown && unknown.nro_next == 0,
	    "option links written back unchanged");
	CHECK(hout.nr_options == (uintptr_t)&offs && hout.nr_body == (uintptr_t)&reg,
	    "header pointers restored on error");
	CHECK_ERRNO(nmt_ioctl(fd, NIOCTXSYNC, NULL), ENXIO, "descriptor still unbound after the refused REGISTER");
	ok = nmt_wait_pool(&stk, &st, 2.0);
	CHECK(ok && st.sessions == stk.sessions && st.ports == stk.ports,
	    "refused REGISTER left nothing: free buffers %u (want %u), rings %u (%u), ifs %u (%u), sessions %u (%u), ports %u (%u)",
	    st.free_buffers, stk.free_buffers, st.free_rings, stk.free_rings, st.free_ifs, stk.free_ifs, st.sessions,
	    stk.sessions, st.ports, stk.ports);

	/* --- plain REGISTER with 8 extra buffers, then the slave end --- */
	memset(&reg, 0, sizeof reg);
	reg.nr_mode = NR_REG_ALL_NIC;
	reg.nr_extra_bufs = 8;
	reg.nr_flags = 0x1000;   /* an unused bit, as pkt-gen sends: ignored (§3.4) */
	e = ctrl(fd, NETMAP_REQ_REGISTER, pm, &reg, NULL, NULL);
	if (!CHECK_ERRNO(e, 0, "plain REGISTER on the same descriptor, 8 extra buffers"))
		return nmt_summary();
	CHECK_EQ(reg.nr_memsize, pi.nr_memsize, "REGISTER nr_memsize (64-bit)");
	CHECK(reg.nr_offset < reg.nr_memsize, "REGISTER nr_offset %#llx inside the region",
	    (unsigned long long)reg.nr_offset);
	CHECK(reg.nr_tx_rings == 1 && reg.nr_rx_rings == 1 && reg.nr_tx_slots == 1024 && reg.nr_rx_slots == 1024,
	    "REGISTER rings %u/%u slots %u/%u", reg.nr_tx_rings, reg.nr_rx_rings, reg.nr_tx_slots, reg.nr_rx_slots);
	CHECK(reg.nr_host_tx_rings == 0 && reg.nr_host_rx_rings == 0, "REGISTER host rings %u/%u (0 for pipes, §4.3)",
	    reg.nr_host_tx_rings, reg.nr_host_rx_rings);
	CHECK_EQ(reg.nr_mem_id, 1, "REGISTER mem id");
	CHECK_EQ(reg.nr_extra_bufs, 8, "REGISTER extra buffers granted");
	CHECK_EQ(reg.nr_flags, 0x1000, "REGISTER nr_flags echoed");

	int sfd = nmt_open();
	struct nmreq_register sreg;
	e = nmd_register(sfd, ps, NR_REG_ALL_NIC, 0, 0, 0, &sreg);
	if (!CHECK_ERRNO(e, 0, "REGISTER slave end"))
		return nmt_summary();
	CHECK_ERRNO(nmt_poolstat(fd, &st), 0, "pool stat with both ends registered");
	uint32_t ring_bufs = 2 * 1024;
	CHECK(st.free_buffers == stk.free_buffers - ring_bufs - 8 && st.free_rings == stk.free_rings - 4 &&
	    st.free_ifs == stk.free_ifs - 2,
	    "pool accounting: free buffers %u (want %u), rings %u (want %u), ifs %u (want %u)", st.free_buffers,
	    stk.free_buffers - ring_bufs - 8, st.free_rings, stk.free_rings - 4, st.free_ifs, stk.free_ifs - 2);
	CHECK(st.sessions == stk.sessions + 2 && st.ports == stk.ports + 2, "sessions %u (want %u), ports %u (want %u)",
	    st.sessions, stk.sessions + 2, st.ports, stk.ports + 2);

	void *mem = nmt_mmap(fd, reg.nr_memsize);
	void *smem = nmt_mmap(sfd, sreg.nr_memsize);
	struct netmap_if *nifp = nmd_if(mem, reg.nr_offset), *snifp = nmd_if(smem, sreg.nr_offset);
	struct netmap_ring *tx = nmd_txring(nifp, 0), *rx = nmd_rxring(nifp, 0);
	struct netmap_ring *srx = nmd_rxring(snifp, 0), *stx = nmd_txring(snifp, 0);
	CHECK(mem != smem, "two mappings of the region (each descriptor maps it)");
	CHECK(memcmp(nmd_buf(tx, tx->slot[0].buf_idx), (char *)smem + pi.nr_buf_pool_offset +
	    (uint64_t)tx->slot[0].buf_idx * 2048, 64) == 0, "both mappings show the same bytes");

	uint32_t list[64];
	int n = walk_extra(nifp, tx, pi.nr_buf_pool_objtotal, list, 64);
	CHECK(n == 8, "ni_bufs_head list: %d buffers linked through their first 4 bytes, 0-terminated (want 8)", n);
	int dup = 0, inring = 0;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < i; j++)
			dup += list[i] == list[j];
		inring += in_ring(tx, list[i]) + in_ring(rx, list[i]) + in_ring(srx, list[i]) + in_ring(stx, list[i]);
	}
	CHECK(dup == 0 && inring == 0, "extra buffers are distinct (%d dups) and in no ring (%d found)", dup, inring);
	CHECK(snifp->ni_bufs_head == 0, "the slave (no extra buffers) has ni_bufs_head 0");

	/* --- swap one extra buffer into a TX slot and send it --- */
	if (n == 8) {
		uint32_t x = nifp->ni_bufs_head;
		uint32_t slot = tx->head;
		uint32_t y = tx->slot[slot].buf_idx;
		nifp->ni_bufs_head = *(uint32_t *)nmd_buf(tx, x);   /* unlink x */
		tx->slot[slot].buf_idx = x;
		tx->slot[slot].len = 1000;
		tx->slot[slot].flags = NS_BUF_CHANGED;
		nmt_frame_fill(nmd_buf(tx, x), 4242, 1000);
		*(uint32_t *)nmd_buf(tx, y) = nifp->ni_bufs_head;  /* relink y in its place */
		nifp->ni_bufs_head = y;
		tx->head = tx->cur = nmd_next(tx, slot);
		CHECK_ERRNO(nmt_ioctl(fd, NIOCTXSYNC, NULL), 0, "NIOCTXSYNC with a swapped-in extra buffer");
		CHECK(!(tx->slot[slot].flags & NS_BUF_CHANGED), "NS_BUF_CHANGED cleared on the sent TX slot (flags %#x)",
		    tx->slot[slot].flags);
		CHECK_ERRNO(nmt_ioctl(sfd, NIOCRXSYNC, NULL), 0, "slave NIOCRXSYNC");
		CHECK(nmd_space(srx) == 1, "slave sees 1 frame (%u)", nmd_space(srx));
		struct netmap_slot *rs = &srx->slot[srx->head];
		CHECK(rs->buf_idx == x && rs->len == 1000, "slave RX slot holds the extra buffer %u (got %u), len %u",
		    x, rs->buf_idx, rs->len);
		CHECK(rs->flags & NS_BUF_CHANGED, "slave RX slot flagged NS_BUF_CHANGED (§12: the RX copy keeps it)");
		CHECK(nmt_frame_check(nmd_buf(srx, rs->buf_idx), 4242, 1000) == 0, "slave reads the bytes written into it");
		srx->head = srx->cur = nmd_next(srx, srx->head);
		CHECK_ERRNO(nmt_ioctl(sfd, NIOCRXSYNC, NULL), 0, "slave releases the slot");
		CHECK_ERRNO(nmt_ioctl(fd, NIOCTXSYNC, NULL), 0, "master reclaims");
		CHECK(tx->slot[slot].buf_idx == x, "master TX slot still holds buffer %u after the round trip (%u)", x,
		    tx->slot[slot].buf_idx);
		CHECK(nmd_space(tx) == tx->num_slots - 1, "master TX fully reclaimed");
		n = walk_extra(nifp, tx, pi.nr_buf_pool_objtotal, list, 64);
		int has_y = 0, has_x = 0;
		for (int i = 0; i < n; i++) {
			has_y |= list[i] == y;
			has_x |= list[i] == x;
		}
		CHECK(n == 8 && has_y && !has_x, "relinked list: %d buffers, holds the old slot buffer %u, not %u", n, y, x);
		struct netmapd_pool_stats st2;
		nmt_poolstat(fd, &st2);
		CHECK(st2.free_buffers == st.free_buffers, "swapping changes no pool count (%u, want %u)",
		    st2.free_buffers, st.free_buffers);
	}

	munmap(smem, sreg.nr_memsize);
	munmap(mem, reg.nr_memsize);
	close(sfd);
	close(fd);
	int back = nmt_wait_pool(&stk, &st, 3.0);
	CHECK(back && st.sessions == stk.sessions && st.ports == stk.ports,
	    "after close (keeper still registered): free buffers %u (want %u), rings %u (%u), ifs %u (%u), sessions %u (%u), ports %u (%u)",
	    st.free_buffers, stk.free_buffers, st.free_rings, stk.free_rings, st.free_ifs, stk.free_ifs, st.sessions,
	    stk.sessions, st.ports, stk.ports);
	close(kfd);
	back = nmt_wait_pool(&st0, &st, 3.0);
	CHECK(back, "after the keeper: free buffers %u (want %u), rings %u (%u), ifs %u (%u)", st.free_buffers,
	    st0.free_buffers, st.free_rings, st0.free_rings, st.free_ifs, st0.free_ifs);
	return nmt_summary();
}
