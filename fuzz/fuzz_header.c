/*
 * tls_check_header, tls_check_header_linux (Linux's order) and
 * tls_check_min_len against the reference model in fuzz_common.h.
 *
 * Input: one byte picks the suite (its parameters come from
 * tls_params_from_enable, as a session's do), then each group of 9 bytes is
 * a 5-byte record header and a 4-byte whole-record length for the
 * minimum-length check.  Every header is also checked with its length field
 * moved to each side of the suite's limits, so that the boundaries are
 * tried on every input rather than only when the fuzzer finds them.
 */
#include <arpa/inet.h>

#include "fuzz_common.h"
#include "tls_record.h"

static void
check_one(const struct fz_suite *s, const struct tls_session_params *p,
    const uint8_t h[5])
{
	struct tls_record_layer hdr;
	uint32_t got_len = 0, want_len = 0;
	int got, want;

	memcpy(&hdr, h, sizeof(hdr));
	want = fz_ref_header(s, h, &want_len);
	got = tls_check_header(p, &hdr, &got_len);
	FZ_ASSERT(got == want, "%s: header %02x %02x %02x %02x %02x: "
	    "engine %d, reference %d", s->name, h[0], h[1], h[2], h[3], h[4],
	    got, want);
	if (got == 0)
		FZ_ASSERT(got_len == want_len, "%s: reclen %u, want %u",
		    s->name, got_len, want_len);
	want = fz_ref_header_linux(s, h, &want_len);
	got = tls_check_header_linux(p, &hdr, &got_len);
	FZ_ASSERT(got == want, "%s: header %02x %02x %02x %02x %02x, "
	    "Linux's order: engine %d, reference %d", s->name, h[0], h[1],
	    h[2], h[3], h[4], got, want);
	if (got == 0)
		FZ_ASSERT(got_len == want_len, "%s: reclen %u, want %u",
		    s->name, got_len, want_len);
}

static void
check_min_len(const struct fz_suite *s, const struct tls_session_params *p,
    uint32_t reclen)
{
	int got = tls_check_min_len(p, reclen);
	int want = fz_ref_min_len(s, reclen);

	FZ_ASSERT(got == want, "%s: min len of %u: engine %d, reference %d",
	    s->name, reclen, got, want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	const struct fz_suite *s;
	struct tls_session_params p;
	struct tls_enable en;
	uint8_t h[5], edge[5];
	uint32_t max, lens[8], mlen;
	size_t got;
	const uint8_t *b;
	int i;

	s = &fz_suites[fz_u8(&in) % FZ_NSUITES];
	fz_enable(s, 0, &en);
	FZ_ASSERT(tls_params_from_enable(&en, &p) == 0, "%s: enable",
	    s->name);
	max = fz_tls13(s) ? FZ_TLS13_MAX_CT :
	    fz_nonce_len(s) + FZ_MAX_PLAIN + FZ_TAG;
	lens[0] = 0;
	lens[1] = fz_nonce_len(s) > 0 ? fz_nonce_len(s) - 1 : 0;
	lens[2] = fz_nonce_len(s);
	lens[3] = max;
	lens[4] = max + 1;
	lens[5] = 0xffff;
	/* Linux's lower bound: the explicit nonce and the tag. */
	lens[6] = fz_nonce_len(s) + FZ_TAG - 1;
	lens[7] = fz_nonce_len(s) + FZ_TAG;
	do {
		b = fz_bytes(&in, 5, &got);
		memset(h, 0, sizeof(h));
		memcpy(h, b, got);
		check_one(s, &p, h);
		for (i = 0; i < 8; i++) {
			memcpy(edge, h, sizeof(edge));
			edge[3] = (uint8_t)(lens[i] >> 8);
			edge[4] = (uint8_t)lens[i];
			check_one(s, &p, edge);
		}
		mlen = fz_u32(&in);
		check_min_len(s, &p, mlen);
		check_min_len(s, &p, mlen & 0x3f);
	} while (in.n > 0);
	tls_params_wipe(&p);
	return 0;
}
