/*
 * Tests for the crypto backends (src/crypto.c, src/crypto_openssl.c).
 *
 * Records are sealed here with OpenSSL EVP directly, with nonce and
 * additional data computed in this file, never by the code under test, so
 * that a mistake shared by both sides cannot pass.  They are then laid into
 * mbuf chains cut at every byte (short records) or at random places (16 KiB
 * records) and opened with the backend, for each of the six suites: TLS 1.2
 * and 1.3 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305.
 *
 * The random choices come from a generator seeded from UKTLS_TEST_SEED, or
 * from the clock; the seed is printed so that a failure can be replayed.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "crypto_kat.h"
#include "harness.h"
#include "mbuf.h"
#include "tls_record.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))


/* ---- a reproducible random source -------------------------------------- */

__attribute__((constructor)) static void
rng_init(void)
{
	kat_rng_init("test_crypto");
}

/* ---- sessions and sealing, independent of the code under test ---------- */

struct session {
	const struct kat_suite *su;
	struct tls_session_params p;
	void *cookie;
	uint8_t key[32];
	uint8_t iv[12];
	int iv_len;
	uint8_t hlen;
};

static int
session_open(struct session *s, const struct kat_suite *su)
{
	struct tls_enable en;
	int error;

	memset(s, 0, sizeof(*s));
	s->su = su;
	kat_rng_bytes(s->key, sizeof(s->key));
	kat_rng_bytes(s->iv, sizeof(s->iv));
	s->iv_len = su->cipher == CRYPTO_AES_NIST_GCM_16 &&
	    su->minor == TLS_MINOR_VER_TWO ? 4 : 12;
	s->hlen = su->cipher == CRYPTO_AES_NIST_GCM_16 &&
	    su->minor == TLS_MINOR_VER_TWO ? 13 : 5;

	memset(&en, 0, sizeof(en));
	en.cipher_key = s->key;
	en.iv = s->iv;
	en.cipher_algorithm = su->cipher;
	en.cipher_key_len = su->key_len;
	en.iv_len = s->iv_len;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = (uint8_t)su->minor;
	error = tls_params_from_enable(&en, &s->p);
	if (error != 0)
		return error;
	error = ktls_crypto_openssl.probe(&s->p);
	if (error != 0)
		return error;
	return ktls_crypto_openssl.setup(&s->p, &s->cookie);
}

static void
session_close(struct session *s)
{
	if (s->cookie != NULL)
		ktls_crypto_openssl.teardown(s->cookie);
	tls_params_wipe(&s->p);
	memset(s, 0, sizeof(*s));
}

/* Seal with the session's key (crypto_kat.h). */
static uint32_t
seal_record(const struct session *s, uint64_t seqno, uint8_t type,
    const uint8_t *content, uint32_t content_len, uint32_t pad, uint8_t *rec,
    uint8_t *payload, uint32_t *payload_len)
{
	return kat_seal(s->su, s->key, s->iv, s->hlen, seqno, type, content,
	    content_len, pad, rec, payload, payload_len);
}

/* ---- chains ------------------------------------------------------------ */

/*
 * Open a record laid out as lens[] with the backend.  On success check the
 * payload against want and the header against the original.
 */
static int
open_record(const struct session *s, const uint8_t *rec, uint32_t reclen,
    const uint32_t *lens, unsigned int nseg, uint64_t seqno,
    const struct tls_record_layer *hdr_override, const uint8_t *want,
    uint32_t want_len, const char *what)
{
	static uint8_t got[REC_MAX];
	struct tls_record_layer hdr;
	struct mbuf *m;
	int error, trailer_len;

	memcpy(&hdr, rec, sizeof(hdr));
	if (hdr_override != NULL)
		hdr = *hdr_override;
	m = kat_chain(rec, lens, nseg);
	if (m_length(m, NULL) != reclen)
		abort();
	trailer_len = -1;
	error = ktls_crypto_openssl.decrypt(s->cookie, &s->p, &hdr, m, seqno,
	    &trailer_len);
	if (error == 0) {
		if (trailer_len != TLS_AEAD_TAG_LEN)
			harness_fail(__FILE__, __LINE__,
			    "%s: trailer_len %d", what, trailer_len);
		m_copydata(m, 0, reclen, got);
		if (memcmp(got, rec, s->hlen) != 0)
			harness_fail(__FILE__, __LINE__,
			    "%s: header or explicit nonce changed", what);
		if (reclen - s->hlen - TLS_AEAD_TAG_LEN != want_len ||
		    memcmp(got + s->hlen, want, want_len) != 0)
			harness_fail(__FILE__, __LINE__,
			    "%s: wrong plaintext (%u segments)", what, nseg);
	}
	m_freem(m);
	return error;
}

static void
expect_open(const struct session *s, const uint8_t *rec, uint32_t reclen,
    const uint32_t *lens, unsigned int nseg, uint64_t seqno,
    const uint8_t *want, uint32_t want_len, const char *what)
{
	int error;

	error = open_record(s, rec, reclen, lens, nseg, seqno, NULL, want,
	    want_len, what);
	if (error != 0)
		harness_fail(__FILE__, __LINE__,
		    "%s: %u segments, seqno %#" PRIx64 ": error %d", what, nseg,
		    seqno, error);
}

/* Cut points sorted and made into segment lengths no longer than max. */
static unsigned int
random_segs(uint32_t reclen, unsigned int ncuts, uint32_t max, uint32_t *lens)
{
	static uint32_t cuts[256];
	unsigned int i, j, n;
	uint32_t c, pos;

	if (ncuts > NITEMS(cuts))
		abort();
	for (i = 0; i < ncuts; i++)
		cuts[i] = 1 + kat_rng_below(reclen - 1);
	/* Insertion sort: there are few cuts. */
	for (i = 1; i < ncuts; i++) {
		c = cuts[i];
		for (j = i; j > 0 && cuts[j - 1] > c; j--)
			cuts[j] = cuts[j - 1];
		cuts[j] = c;
	}
	n = 0;
	pos = 0;
	for (i = 0; i <= ncuts; i++) {
		c = i < ncuts ? cuts[i] : reclen;
		while (c - pos > max) {
			lens[n++] = max;
			pos += max;
		}
		/* Equal cuts leave empty mbufs, which chains may hold. */
		lens[n++] = c - pos;
		pos = c;
	}
	return n;
}

/* ---- parameterised tests ----------------------------------------------- */

static uint8_t rec_buf[REC_MAX];
static uint8_t payload_buf[REC_MAX];
static uint8_t content_buf[REC_MAX];
static uint32_t lens_buf[2 * REC_MAX + 64];

static uint64_t
pick_seqno(int i)
{
	switch (i) {
	case 0:
		return 0;
	case 1:
		return UINT64_MAX;
	case 2:
		return UINT64_MAX - 1;
	default:
		return kat_rng_next();
	}
}

/*
 * FreeBSD's "short" case (64 bytes; for TLS 1.3 also "short_padded" with
 * 16 zero bytes) cut at every byte boundary, in two and three pieces, and
 * as a chain of one-byte mbufs.
 */
static void
test_short_every_split(void *arg)
{
	const struct kat_suite *su = arg;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t i, j, plen, reclen;
	uint64_t seqno;
	int k, pad;

	REQUIRE_EQ(session_open(&s, su), 0);
	for (k = 0; k < 5; k++) {
		for (pad = 0; pad <= 16; pad += 16) {
			if (pad != 0 && su->minor != TLS_MINOR_VER_THREE)
				continue;
			seqno = pick_seqno(k);
			kat_rng_bytes(content_buf, 64);
			reclen = seal_record(&s, seqno, TLS_RLTYPE_APP,
			    content_buf, 64, (uint32_t)pad, rec_buf,
			    payload_buf, &plen);

			lens[0] = reclen;
			expect_open(&s, rec_buf, reclen, lens, 1, seqno,
			    payload_buf, plen, "one mbuf");
			for (i = 0; i <= reclen; i++) {
				lens[0] = i;
				lens[1] = reclen - i;
				expect_open(&s, rec_buf, reclen, lens, 2, seqno,
				    payload_buf, plen, "two mbufs");
			}
			for (i = 0; i < reclen; i++)
				lens[i] = 1;
			expect_open(&s, rec_buf, reclen, lens, reclen, seqno,
			    payload_buf, plen, "byte mbufs");
			for (i = 0; i < reclen; i++) {
				lens[2 * i] = 1;
				lens[2 * i + 1] = 0;
			}
			expect_open(&s, rec_buf, reclen, lens, 2 * reclen,
			    seqno, payload_buf, plen, "byte and empty mbufs");
			if (k != 4)
				continue;
			for (i = 1; i < reclen; i++) {
				for (j = i + 1; j < reclen; j++) {
					lens[0] = i;
					lens[1] = j - i;
					lens[2] = reclen - j;
					expect_open(&s, rec_buf, reclen, lens,
					    3, seqno, payload_buf, plen,
					    "three mbufs");
				}
			}
		}
	}
	session_close(&s);
}

/*
 * Records of 16 KiB (FreeBSD's "long" sends 64 KiB in such records; TLS
 * 1.3 "long_padded" adds 15 zero bytes), as one cluster chain the way the
 * input path fills them and cut at random places.
 */
static void
test_long_random_splits(void *arg)
{
	const struct kat_suite *su = arg;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t content_len, i, n, plen, pos, reclen;
	uint64_t seqno;
	int k, pad, r;

	REQUIRE_EQ(session_open(&s, su), 0);
	for (k = 0; k < 4; k++) {
		for (pad = 0; pad <= 15; pad += 15) {
			if (pad != 0 && su->minor != TLS_MINOR_VER_THREE)
				continue;
			seqno = pick_seqno(k);
			content_len = TLS_MAX_MSG_SIZE_V10_2 - (uint32_t)k;
			kat_rng_bytes(content_buf, content_len);
			reclen = seal_record(&s, seqno, TLS_RLTYPE_APP,
			    content_buf, content_len, (uint32_t)pad, rec_buf,
			    payload_buf, &plen);

			/* 2 KiB clusters, then a 16 KiB one and the rest. */
			n = 0;
			for (pos = 0; pos < reclen; pos += lens[n++])
				lens[n] = reclen - pos < MCLBYTES ?
				    reclen - pos : MCLBYTES;
			expect_open(&s, rec_buf, reclen, lens, n, seqno,
			    payload_buf, plen, "2k clusters");
			lens[0] = MJUM16BYTES;
			lens[1] = reclen - MJUM16BYTES;
			expect_open(&s, rec_buf, reclen, lens, 2, seqno,
			    payload_buf, plen, "16k cluster");

			for (r = 0; r < 40; r++) {
				n = random_segs(reclen, 1 + kat_rng_below(r < 20 ?
				    8 : 200), SEG_MAX, lens);
				expect_open(&s, rec_buf, reclen, lens, n, seqno,
				    payload_buf, plen, "random cuts");
			}
			/* Cuts around the tag, among many small mbufs. */
			for (i = 0; i < 16; i++) {
				n = random_segs(reclen - 16, 20, SEG_MAX, lens);
				lens[n++] = i;
				lens[n++] = 16 - i;
				expect_open(&s, rec_buf, reclen, lens, n, seqno,
				    payload_buf, plen, "split tag");
			}
		}
	}
	session_close(&s);
}

struct flip {
	const char *what;
	uint32_t off; /* byte to flip */
	uint8_t bit;
};

/*
 * FreeBSD's bad_data, bad_mac and bad_iv, a wrong seqno and changed
 * additional data: each EBADMSG, and the session still opens a good record
 * afterwards.
 */
static void
test_bad_records(void *arg)
{
	const struct kat_suite *su = arg;
	static uint8_t bad[REC_MAX];
	struct tls_record_layer hdr;
	struct session s;
	uint32_t lens[3], plen, reclen;
	uint64_t seqno;
	size_t i;
	int error;
	struct flip flips[8];
	size_t nflips;

	REQUIRE_EQ(session_open(&s, su), 0);
	seqno = kat_rng_next();
	kat_rng_bytes(content_buf, 64);
	reclen = seal_record(&s, seqno, TLS_RLTYPE_APP, content_buf, 64, 0,
	    rec_buf, payload_buf, &plen);
	/* The tag straddles two mbufs throughout. */
	lens[0] = 20;
	lens[1] = reclen - 20 - 7;
	lens[2] = 7;

	nflips = 0;
	flips[nflips++] = (struct flip){ "first ciphertext byte",
	    s.hlen, 0x01 };
	flips[nflips++] = (struct flip){ "last ciphertext byte",
	    reclen - 17, 0x80 };
	flips[nflips++] = (struct flip){ "first tag byte", reclen - 16,
	    0x01 };
	flips[nflips++] = (struct flip){ "last tag byte", reclen - 1,
	    0x40 };
	if (s.hlen == 13) {
		flips[nflips++] = (struct flip){ "explicit nonce", 5,
		    0x01 };
		flips[nflips++] = (struct flip){ "explicit nonce end",
		    12, 0x80 };
	}
	for (i = 0; i < nflips; i++) {
		memcpy(bad, rec_buf, reclen);
		bad[flips[i].off] ^= flips[i].bit;
		error = open_record(&s, bad, reclen, lens, 3, seqno, NULL,
		    payload_buf, plen, flips[i].what);
		if (error != EBADMSG)
			harness_fail(__FILE__, __LINE__, "%s: error %d",
			    flips[i].what, error);
		expect_open(&s, rec_buf, reclen, lens, 3, seqno, payload_buf,
		    plen, "good after bad");
	}

	CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3, seqno + 1, NULL,
	    payload_buf, plen, "seqno + 1"), EBADMSG);
	CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3,
	    seqno ^ (UINT64_C(1) << 63), NULL, payload_buf, plen,
	    "seqno high bit"), EBADMSG);
	expect_open(&s, rec_buf, reclen, lens, 3, seqno, payload_buf, plen,
	    "good after bad seqno");

	/* The header is additional data in both versions. */
	memcpy(&hdr, rec_buf, sizeof(hdr));
	hdr.tls_type = TLS_RLTYPE_HANDSHAKE;
	CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3, seqno, &hdr,
	    payload_buf, plen, "header type"), EBADMSG);
	expect_open(&s, rec_buf, reclen, lens, 3, seqno, payload_buf, plen,
	    "good after bad header");
	session_close(&s);
}

/* The tag, and the explicit nonce, cut at every byte and into bytes. */
static void
test_tag_straddles(void *arg)
{
	const struct kat_suite *su = arg;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t i, j, n, plen, reclen;
	uint64_t seqno;

	REQUIRE_EQ(session_open(&s, su), 0);
	seqno = kat_rng_next();
	kat_rng_bytes(content_buf, 300);
	reclen = seal_record(&s, seqno, TLS_RLTYPE_APP, content_buf, 300, 3,
	    rec_buf, payload_buf, &plen);

	/* One cut inside the tag, the payload in one or two mbufs. */
	for (i = 1; i < 16; i++) {
		lens[0] = reclen - 16 + i;
		lens[1] = 16 - i;
		expect_open(&s, rec_buf, reclen, lens, 2, seqno, payload_buf,
		    plen, "tag cut");
		lens[0] = 100;
		lens[1] = reclen - 16 + i - 100;
		lens[2] = 16 - i;
		expect_open(&s, rec_buf, reclen, lens, 3, seqno, payload_buf,
		    plen, "tag cut, payload in two");
	}
	/* The tag alone, then in sixteen one-byte mbufs. */
	lens[0] = reclen - 16;
	lens[1] = 16;
	expect_open(&s, rec_buf, reclen, lens, 2, seqno, payload_buf, plen,
	    "tag alone");
	for (i = 0; i < 16; i++)
		lens[1 + i] = 1;
	expect_open(&s, rec_buf, reclen, lens, 17, seqno, payload_buf, plen,
	    "tag in bytes");
	/* Header and explicit nonce in bytes, the rest whole. */
	n = 0;
	for (j = 0; j < s.hlen; j++)
		lens[n++] = 1;
	lens[n++] = reclen - s.hlen;
	expect_open(&s, rec_buf, reclen, lens, n, seqno, payload_buf, plen,
	    "header in bytes");
	/* The payload's last byte and the tag share one mbuf. */
	lens[0] = reclen - 17;
	lens[1] = 17;
	expect_open(&s, rec_buf, reclen, lens, 2, seqno, payload_buf, plen,
	    "payload end with tag");
	session_close(&s);
}

/* The smallest records: no plaintext (1.2), a lone type byte (1.3). */
static void
test_empty_records(void *arg)
{
	const struct kat_suite *su = arg;
	struct session s;
	uint32_t lens[2], plen, reclen;
	uint64_t seqno;
	int k;

	REQUIRE_EQ(session_open(&s, su), 0);
	for (k = 0; k < 4; k++) {
		seqno = pick_seqno(k);
		reclen = seal_record(&s, seqno, TLS_RLTYPE_ALERT, content_buf,
		    0, 0, rec_buf, payload_buf, &plen);
		CHECK_EQ(reclen, s.hlen + 16 +
		    (su->minor == TLS_MINOR_VER_THREE ? 1 : 0));
		CHECK_EQ(tls_check_min_len(&s.p, reclen), 0);
		lens[0] = reclen;
		expect_open(&s, rec_buf, reclen, lens, 1, seqno, payload_buf,
		    plen, "empty");
		lens[0] = s.hlen;
		lens[1] = reclen - s.hlen;
		expect_open(&s, rec_buf, reclen, lens, 2, seqno, payload_buf,
		    plen, "empty, header apart");
	}
	if (su->minor == TLS_MINOR_VER_THREE) {
		/* A type byte and 200 bytes of padding. */
		seqno = kat_rng_next();
		reclen = seal_record(&s, seqno, TLS_RLTYPE_HANDSHAKE,
		    content_buf, 0, 200, rec_buf, payload_buf, &plen);
		lens[0] = reclen;
		expect_open(&s, rec_buf, reclen, lens, 1, seqno, payload_buf,
		    plen, "type and padding");
	}
	session_close(&s);
}

/*
 * Consecutive records of one session, of varied sizes, through the wrap of
 * the sequence number, in random layouts.
 */
static void
test_record_stream(void *arg)
{
	const struct kat_suite *su = arg;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t content_len, n, plen, reclen;
	uint64_t seqno;
	int k;

	REQUIRE_EQ(session_open(&s, su), 0);
	seqno = UINT64_MAX - 20;
	for (k = 0; k < 40; k++, seqno++) {
		content_len = kat_rng_below(5) == 0 ? TLS_MAX_MSG_SIZE_V10_2 :
		    kat_rng_below(3000);
		kat_rng_bytes(content_buf, content_len);
		reclen = seal_record(&s, seqno, TLS_RLTYPE_APP, content_buf,
		    content_len, su->minor == TLS_MINOR_VER_THREE ?
		    kat_rng_below(40) : 0, rec_buf, payload_buf, &plen);
		n = random_segs(reclen, kat_rng_below(10), SEG_MAX, lens);
		expect_open(&s, rec_buf, reclen, lens, n, seqno, payload_buf,
		    plen, "stream");
	}
	session_close(&s);
}

static const char *
suite_name(const void *p)
{
	return ((const struct kat_suite *)p)->name;
}

__attribute__((constructor)) static void
register_suite_tests(void)
{
	harness_register_param("short_every_split", test_short_every_split,
	    kat_suites, sizeof(kat_suites[0]), NITEMS(kat_suites), suite_name);
	harness_register_param("long_random_splits", test_long_random_splits,
	    kat_suites, sizeof(kat_suites[0]), NITEMS(kat_suites), suite_name);
	harness_register_param("bad_records", test_bad_records, kat_suites,
	    sizeof(kat_suites[0]), NITEMS(kat_suites), suite_name);
	harness_register_param("tag_straddles", test_tag_straddles, kat_suites,
	    sizeof(kat_suites[0]), NITEMS(kat_suites), suite_name);
	harness_register_param("empty_records", test_empty_records, kat_suites,
	    sizeof(kat_suites[0]), NITEMS(kat_suites), suite_name);
	harness_register_param("record_stream", test_record_stream, kat_suites,
	    sizeof(kat_suites[0]), NITEMS(kat_suites), suite_name);
}

/* ---- the backend table ------------------------------------------------- */

static void
params_for(struct tls_session_params *p, int cipher, int key_len, int minor)
{
	memset(p, 0, sizeof(*p));
	p->cipher_algorithm = cipher;
	p->cipher_key_len = key_len;
	p->iv_len = 12;
	p->tls_vmajor = TLS_MAJOR_VER_ONE;
	p->tls_vminor = (uint8_t)minor;
	p->tls_hlen = TLS_HEADER_LEN;
	p->tls_tlen = TLS_AEAD_TAG_LEN;
}

TEST(probe_and_select)
{
	struct tls_session_params p;
	size_t i;

	for (i = 0; i < NITEMS(kat_suites); i++) {
		params_for(&p, kat_suites[i].cipher, kat_suites[i].key_len,
		    kat_suites[i].minor);
		CHECK_EQ(ktls_crypto_openssl.probe(&p), 0);
		CHECK(ktls_crypto_select(&p) != NULL);
	}
	params_for(&p, CRYPTO_AES_CBC, 16, TLS_MINOR_VER_TWO);
	CHECK_EQ(ktls_crypto_openssl.probe(&p), ENOTSUP);
	CHECK(ktls_crypto_select(&p) == NULL);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 24, TLS_MINOR_VER_THREE);
	CHECK_EQ(ktls_crypto_openssl.probe(&p), ENOTSUP);
	CHECK(ktls_crypto_select(&p) == NULL);
	params_for(&p, CRYPTO_CHACHA20_POLY1305, 16, TLS_MINOR_VER_THREE);
	CHECK_EQ(ktls_crypto_openssl.probe(&p), ENOTSUP);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_ONE);
	CHECK_EQ(ktls_crypto_openssl.probe(&p), ENOTSUP);
	CHECK(ktls_crypto_select(&p) == NULL);
}

TEST(default_name)
{
	const char *name;

	struct tls_session_params p;
	const struct ktls_crypto_backend *be;

	/* The default is whichever backend TLS 1.3 AES-128-GCM gets. */
	name = ktls_crypto_default_name();
	REQUIRE(name != NULL);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE);
	be = ktls_crypto_select(&p);
	REQUIRE(be != NULL);
	CHECK(strcmp(name, be->name) == 0);
	CHECK(strcmp(ktls_crypto_openssl.name, "openssl") == 0);
}

TEST(setup_teardown)
{
	struct session s;
	size_t i;
	int k;

	/* Under AddressSanitizer this finds a context left behind. */
	for (k = 0; k < 200; k++) {
		for (i = 0; i < NITEMS(kat_suites); i++) {
			REQUIRE_EQ(session_open(&s, &kat_suites[i]), 0);
			CHECK(s.cookie != NULL);
			session_close(&s);
		}
	}
}

/* One session's records are independent of another's on the same key. */
TEST(sessions_independent)
{
	struct session a, b;
	uint32_t lens[1], plen, reclen;

	REQUIRE_EQ(session_open(&a, &kat_suites[3]), 0);
	REQUIRE_EQ(session_open(&b, &kat_suites[3]), 0);
	kat_rng_bytes(content_buf, 100);
	reclen = seal_record(&a, 7, TLS_RLTYPE_APP, content_buf, 100, 0,
	    rec_buf, payload_buf, &plen);
	lens[0] = reclen;
	CHECK_EQ(open_record(&b, rec_buf, reclen, lens, 1, 7, NULL,
	    payload_buf, plen, "other key"), EBADMSG);
	expect_open(&a, rec_buf, reclen, lens, 1, 7, payload_buf, plen,
	    "own key");
	session_close(&a);
	session_close(&b);
}

int
main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
