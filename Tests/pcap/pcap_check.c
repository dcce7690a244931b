/*
 * pcap_check.c: checks a capture file (pcap format, as tcpdump -w writes
 * it) against the test frames that were sent: exactly COUNT frames of
 * stream STREAM, each whole (caplen == len) and byte-exact
 * (tools/nmd_client.h's nmdf_check), no duplicates, and nothing else (a
 * frame of another stream or protocol means the BPF filter let it through).
 *
 *   pcap_check FILE COUNT SIZES STREAM
 *
 * Reads the file format itself (no libpcap). Exit 0 only if all holds.
 */
#define _GNU_SOURCE
#include "../../tools/nmd_client.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: pcap_check FILE COUNT SIZES STREAM\n");
		return 2;
	}
	FILE *in = fopen(argv[1], "rb");
	if (!in) {
		perror(argv[1]);
		return 1;
	}
	uint64_t count = strtoull(argv[2], NULL, 10);
	struct nmdf_sizes z;
	if (nmdf_parse_sizes(argv[3], &z))
		return 2;
	uint32_t stream = (uint32_t)strtoul(argv[4], NULL, 0);
	uint32_t gh[6];
	if (fread(gh, 4, 6, in) != 6 || (gh[0] != 0xa1b2c3d4 && gh[0] != 0xa1b23c4d) || gh[5] != 1) {
		fprintf(stderr, "pcap_check: not a little-endian Ethernet pcap file\n");
		return 1;
	}
	struct nmdf_seen seen;
	if (nmdf_seen_init(&seen, count))
		return 1;
	static uint8_t f[65536];
	uint64_t records = 0, bad = 0, other = 0, cut = 0;
	uint32_t rh[4];
	while (fread(rh, 4, 4, in) == 4) {
		uint32_t caplen = rh[2], len = rh[3];
		if (caplen > sizeof f || fread(f, 1, caplen, in) != caplen) {
			fprintf(stderr, "pcap_check: truncated record %llu\n", (unsigned long long)records);
			return 1;
		}
		records++;
		if (caplen != len) {
			cut++;
			continue;
		}
		uint64_t seq = 0;
		const char *why = "";
		switch (nmdf_check(f, caplen, &z, stream, &seq, &why)) {
		case NMDF_OK: nmdf_seen_add(&seen, seq); break;
		case NMDF_BAD:
			if (bad++ < 5)
				fprintf(stderr, "pcap_check: record %llu: bad %s\n", (unsigned long long)records, why);
			break;
		case NMDF_OTHER: other++; break;
		}
	}
	printf("pcap_check: %llu records: %llu distinct frames of stream %u (of %llu sent), %llu duplicate, %llu bad, "
	       "%llu cut short, %llu not of the stream\n",
	       (unsigned long long)records, (unsigned long long)seen.unique, stream, (unsigned long long)count,
	       (unsigned long long)seen.dups, (unsigned long long)bad, (unsigned long long)cut,
	       (unsigned long long)other);
	return seen.unique == count && records == count && !seen.dups && !bad && !cut && !other && !seen.beyond ? 0 : 1;
}
