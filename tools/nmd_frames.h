/*
 * nmd_frames.h: the test-frame format shared by nmd-send, nmd-recv and the
 * net tests' socket peer (Tests/net/pkt_peer.c).
 *
 * A frame is an Ethernet header with ethertype 0x88b5 (IEEE "local
 * experimental": no host stack answers it), then a 20-byte test header and a
 * payload that is a function of the sequence number and the offset, so that
 * a receiver can check every byte without knowing what was sent:
 *
 *   0  dst MAC, src MAC, 0x88b5
 *   14 "NMDT"   magic
 *   18 u32      stream id (sender's choice; receivers ignore other streams)
 *   22 u64      sequence number, from 0
 *   30 u16      frame length (bytes on the wire, without FCS)
 *   32 u16      header checksum (sum of bytes 14..31, for a quick sanity check)
 *   34 ...      payload: byte at offset j = nmdf_byte(seq, j)
 *
 * Frame lengths come from a size spec "N" or "MIN-MAX": with a range, the
 * length of frame `seq` is MIN + hash(seq) mod (MAX - MIN + 1), so receivers
 * can check it too. Frames are at least 60 bytes (Ethernet's minimum).
 */
#ifndef NMD_FRAMES_H
#define NMD_FRAMES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NMDF_ETHERTYPE 0x88b5
#define NMDF_HDR 34
#define NMDF_MIN 60
#define NMDF_MAX 1514

struct nmdf_sizes {
	unsigned min, max;
};

/* Parses "N" or "MIN-MAX"; returns 0 or -1. */
static inline int nmdf_parse_sizes(const char *s, struct nmdf_sizes *z)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b = a;
	if (*end == '-')
		b = strtoul(end + 1, &end, 10);
	if (*end || a < NMDF_MIN || b < a || b > 65535)
		return -1;
	z->min = (unsigned)a;
	z->max = (unsigned)b;
	return 0;
}

static inline uint64_t nmdf_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline unsigned nmdf_len(const struct nmdf_sizes *z, uint64_t seq)
{
	if (z->min == z->max)
		return z->min;
	return z->min + (unsigned)(nmdf_mix(seq) % (z->max - z->min + 1));
}

static inline uint8_t nmdf_byte(uint64_t seq, unsigned j)
{
	return (uint8_t)(seq * 131 + j * 7 + (j >> 8) * 13);
}

static inline void nmdf_put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t nmdf_hsum(const uint8_t *f)
{
	unsigned s = 0;
	for (int i = 14; i < 32; i++)
		s += f[i];
	return (uint16_t)s;
}

/* Writes frame `seq` (length nmdf_len) into `f`; returns its length. */
static inline unsigned nmdf_build(uint8_t *f, const struct nmdf_sizes *z, uint64_t seq, uint32_t stream,
				  const uint8_t dst[6], const uint8_t src[6])
{
	unsigned len = nmdf_len(z, seq);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	nmdf_put16(f + 12, NMDF_ETHERTYPE);
	memcpy(f + 14, "NMDT", 4);
	memcpy(f + 18, &stream, 4);
	memcpy(f + 22, &seq, 8);
	uint16_t l16 = (uint16_t)len;
	memcpy(f + 30, &l16, 2);
	uint16_t hs = nmdf_hsum(f);
	memcpy(f + 32, &hs, 2);
	for (unsigned j = NMDF_HDR; j < len; j++)
		f[j] = nmdf_byte(seq, j);
	return len;
}

enum nmdf_verdict { NMDF_OK, NMDF_OTHER, NMDF_BAD };

/* Checks a received frame: NMDF_OTHER for frames that are not ours (other
 * ethertype, magic or stream), NMDF_BAD for ours with a wrong length or
 * byte (`why` says which), else NMDF_OK with *seq set. */
static inline enum nmdf_verdict nmdf_check(const uint8_t *f, unsigned len, const struct nmdf_sizes *z,
					   uint32_t stream, uint64_t *seq, const char **why)
{
	if (len < NMDF_HDR || f[12] != (NMDF_ETHERTYPE >> 8) || f[13] != (NMDF_ETHERTYPE & 0xff) ||
	    memcmp(f + 14, "NMDT", 4) != 0)
		return NMDF_OTHER;
	uint32_t st;
	memcpy(&st, f + 18, 4);
	if (st != stream)
		return NMDF_OTHER;
	uint16_t hs, l16;
	memcpy(&hs, f + 32, 2);
	if (hs != nmdf_hsum(f)) {
		*why = "header checksum";
		return NMDF_BAD;
	}
	memcpy(seq, f + 22, 8);
	memcpy(&l16, f + 30, 2);
	if (l16 != len || len != nmdf_len(z, *seq)) {
		*why = "length";
		return NMDF_BAD;
	}
	for (unsigned j = NMDF_HDR; j < len; j++)
		if (f[j] != nmdf_byte(*seq, j)) {
			*why = "payload";
			return NMDF_BAD;
		}
	return NMDF_OK;
}

/* Parses "aa:bb:cc:dd:ee:ff"; returns 0 or -1. */
static inline int nmdf_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* Sequence numbers seen: duplicates and gaps, with no order assumed
 * (several RX rings deliver flows in parallel). */
struct nmdf_seen {
	uint8_t *bits;
	uint64_t count;
	uint64_t unique, dups, beyond, reordered, last;
};

static inline int nmdf_seen_init(struct nmdf_seen *s, uint64_t count)
{
	memset(s, 0, sizeof *s);
	s->count = count;
	s->bits = calloc((size_t)(count / 8 + 1), 1);
	return s->bits ? 0 : -1;
}

static inline void nmdf_seen_add(struct nmdf_seen *s, uint64_t seq)
{
	if (s->unique + s->dups > 0 && seq < s->last)
		s->reordered++;
	s->last = seq;
	if (seq >= s->count) {
		s->beyond++;
		return;
	}
	uint8_t m = (uint8_t)(1u << (seq & 7));
	if (s->bits[seq >> 3] & m) {
		s->dups++;
		return;
	}
	s->bits[seq >> 3] |= m;
	s->unique++;
}

#endif
