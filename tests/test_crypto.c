/*
 * Tests for the crypto backends (src/crypto_openssl.c and, where the build
 * has it, src/crypto_ipsecmb.c) and for the choice between them
 * (src/crypto.c).
 *
 * Records are sealed here with OpenSSL EVP directly, with nonce and
 * additional data computed in this file, never by the code under test, so
 * that a mistake shared by both sides cannot pass.  They are then laid into
 * mbuf chains cut at every byte (short records) or at random places (16 KiB
 * records) and opened with each backend, for each of the six suites: TLS 1.2
 * and 1.3 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305.  Every test
 * body below runs once per backend and suite and is reported as
 * "body/backend/suite".  A backend other than OpenSSL also has every record
 * opened, in the same layout, by the OpenSSL backend as a reference, and
 * the two must agree on the verdict and on every byte of the result.
 *
 * The random choices come from a generator seeded from UKTLS_TEST_SEED, or
 * from the clock; the seed is printed so that a failure can be replayed.
 */
#include <pthread.h>
#include <stdint.h>

#include "crypto.h"
#include "crypto_kat.h"
#include "harness.h"
#include "mbuf.h"
#include "tls_record.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the backends under test ------------------------------------------- */

/*
 * A backend and what its tests hold it to beyond the interface of crypto.h.
 * The interface lets a failed record's payload hold garbage; a backend that
 * promises more (wipes_bad) is checked for it, as is a promised alignment
 * of the session state.
 */
struct backend {
	const char *name; /* as the backend reports it */
	const struct ktls_crypto_backend *be;
	/* The backend every record is also opened with; NULL for none. */
	const struct ktls_crypto_backend *ref;
	int wipes_bad; /* the payload reads as zeros after EBADMSG */
	uintptr_t cookie_align; /* of what setup returns; 0 if not promised */
};

/*
 * OpenSSL is the reference for the others, which is why it has none: the
 * records of its own tests are checked against the answers known here.
 * Both wipe a failed record so that no unauthenticated plaintext stays in
 * pooled memory; ipsec-mb keeps its key schedule on 64 bytes for its
 * vector code.
 */
static struct backend backends[] = {
	{ "openssl", &ktls_crypto_openssl, NULL, 1, 0 },
#ifdef UKTLS_HAVE_IPSECMB
	{ "ipsecmb", &ktls_crypto_ipsecmb, &ktls_crypto_openssl, 1, 64 },
#endif
};

/* A backend and a suite: the parameter of the record tests. */
struct crypto_case {
	const struct backend *bk;
	const struct kat_suite *su;
	char name[48]; /* "backend/suite" */
};

static struct crypto_case cases[NITEMS(backends) * KAT_NSUITES];

/* ---- a reproducible random source -------------------------------------- */

__attribute__((constructor)) static void
rng_init(void)
{
	kat_rng_init("test_crypto");
}

/* ---- sessions and sealing, independent of the code under test ---------- */

/* One key, opened by the backend under test and by its reference. */
struct session {
	const struct backend *bk;
	const struct kat_suite *su;
	struct tls_session_params p;
	void *cookie;     /* the backend under test */
	void *ref_cookie; /* its reference, if it has one */
	uint8_t key[32];
	uint8_t iv[12];
	int iv_len;
	uint8_t hlen;
};

static int
session_open(struct session *s, const struct backend *bk,
    const struct kat_suite *su)
{
	struct tls_enable en;
	int error;

	memset(s, 0, sizeof(*s));
	s->bk = bk;
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
	error = bk->be->probe(&s->p);
	if (error != 0)
		return error;
	error = bk->be->setup(&s->p, &s->cookie);
	if (error != 0 || bk->ref == NULL)
		return error;
	return bk->ref->setup(&s->p, &s->ref_cookie);
}

static void
session_close(struct session *s)
{
	if (s->cookie != NULL)
		s->bk->be->teardown(s->cookie);
	if (s->ref_cookie != NULL)
		s->bk->ref->teardown(s->ref_cookie);
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
 * Open the record in a second chain of the same layout with the session's
 * reference, which must return the error the backend under test did
 * (error) and, when both succeed, the same payload (got holds the tested
 * backend's whole record).
 */
static void
check_reference(const struct session *s, const uint8_t *rec, uint32_t reclen,
    const uint32_t *lens, unsigned int nseg, uint64_t seqno,
    const struct tls_record_layer *hdr, const uint8_t *got, int error,
    const char *what)
{
	static uint8_t ref[REC_MAX];
	struct mbuf *mr;
	uint32_t end;
	int ref_error, ref_trailer;

	mr = kat_chain(rec, lens, nseg);
	ref_trailer = -1;
	ref_error = s->bk->ref->decrypt(s->ref_cookie, &s->p, hdr, mr, seqno,
	    &ref_trailer);
	if (error != ref_error)
		harness_fail(__FILE__, __LINE__,
		    "%s: %s error %d, %s error %d (%u segments)", what,
		    s->bk->name, error, s->bk->ref->name, ref_error, nseg);
	end = reclen - TLS_AEAD_TAG_LEN;
	if (error == 0 && ref_error == 0) {
		m_copydata(mr, 0, reclen, ref);
		if (memcmp(got + s->hlen, ref + s->hlen, end - s->hlen) != 0)
			harness_fail(__FILE__, __LINE__, "%s: %s and %s differ",
			    what, s->bk->name, s->bk->ref->name);
	}
	m_freem(mr);
}

/*
 * Open a record laid out as lens[] with the backend under test.  On success
 * the payload must be want and the header and explicit nonce untouched.  On
 * EBADMSG a backend that wipes must have left no plaintext: the payload
 * reads as zeros.  A backend with a reference must agree with it.
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
	uint32_t i, end;
	int error, trailer_len;

	memcpy(&hdr, rec, sizeof(hdr));
	if (hdr_override != NULL)
		hdr = *hdr_override;
	m = kat_chain(rec, lens, nseg);
	if (m_length(m, NULL) != reclen)
		abort();
	trailer_len = -1;
	error = s->bk->be->decrypt(s->cookie, &s->p, &hdr, m, seqno,
	    &trailer_len);
	m_copydata(m, 0, reclen, got);
	m_freem(m);
	end = reclen - TLS_AEAD_TAG_LEN;
	if (error == 0) {
		if (trailer_len != TLS_AEAD_TAG_LEN)
			harness_fail(__FILE__, __LINE__,
			    "%s: trailer_len %d", what, trailer_len);
		if (memcmp(got, rec, s->hlen) != 0)
			harness_fail(__FILE__, __LINE__,
			    "%s: header or explicit nonce changed", what);
		if (end - s->hlen != want_len ||
		    memcmp(got + s->hlen, want, want_len) != 0)
			harness_fail(__FILE__, __LINE__,
			    "%s: wrong plaintext (%u segments)", what, nseg);
	} else if (error == EBADMSG && s->bk->wipes_bad) {
		for (i = s->hlen; i < end; i++)
			if (got[i] != 0)
				break;
		if (i != end)
			harness_fail(__FILE__, __LINE__,
			    "%s: payload byte %u not wiped after EBADMSG",
			    what, i);
	}
	if (s->bk->ref != NULL)
		check_reference(s, rec, reclen, lens, nseg, seqno, &hdr, got,
		    error, what);
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

/* ---- tests over backend x suite ---------------------------------------- */

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
 * FreeBSD's "short" case (64 bytes of content, and once a length that is
 * no block's; for TLS 1.3 also "short_padded" with 16 zero bytes) cut at
 * every byte boundary, in two and three pieces, and as a chain of one-byte
 * mbufs with and without empty ones between.  Splits inside a 16-byte block
 * and in the 64-byte ChaCha block both matter: each update call must carry
 * the partial block over to the next.
 */
static void
test_short_every_split(void *arg)
{
	const struct crypto_case *c = arg;
	const struct kat_suite *su = c->su;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t i, j, plen, reclen, clen;
	uint64_t seqno;
	int k, pad;

	REQUIRE_EQ(session_open(&s, c->bk, su), 0);
	for (k = 0; k < 5; k++) {
		for (pad = 0; pad <= 16; pad += 16) {
			if (pad != 0 && su->minor != TLS_MINOR_VER_THREE)
				continue;
			seqno = pick_seqno(k);
			clen = k == 3 ? 77 : 64;
			kat_rng_bytes(content_buf, clen);
			reclen = seal_record(&s, seqno, TLS_RLTYPE_APP,
			    content_buf, clen, (uint32_t)pad, rec_buf,
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
 * 1.3 "long_padded" adds 15 zero bytes), laid out as the input path fills
 * clusters and cut at random places, some into many small mbufs of odd
 * lengths, with the tag split among them.
 */
static void
test_long_random_splits(void *arg)
{
	const struct crypto_case *c = arg;
	const struct kat_suite *su = c->su;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t content_len, i, n, ncuts, plen, pos, reclen;
	uint64_t seqno;
	int k, pad, r;

	REQUIRE_EQ(session_open(&s, c->bk, su), 0);
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
			/* Cut 16 KiB in, where a read may end. */
			lens[0] = 16384;
			lens[1] = reclen - 16384;
			expect_open(&s, rec_buf, reclen, lens, 2, seqno,
			    payload_buf, plen, "cut at 16k");

			for (r = 0; r < 40; r++) {
				ncuts = 1 + kat_rng_below(r < 20 ? 8 : 200);
				n = random_segs(reclen, ncuts, SEG_MAX, lens);
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
 * additional data (header type and version): each EBADMSG, and the session
 * still opens a good record afterwards.  Short and 16 KiB records, the tag
 * straddling mbufs.
 */
static void
test_bad_records(void *arg)
{
	const struct crypto_case *c = arg;
	static uint8_t bad[REC_MAX];
	struct tls_record_layer hdr;
	struct session s;
	uint32_t lens[3], plen, reclen, clen;
	uint64_t seqno;
	size_t i;
	int error, big;
	struct flip flips[10];
	size_t nflips;

	REQUIRE_EQ(session_open(&s, c->bk, c->su), 0);
	for (big = 0; big <= 1; big++) {
		seqno = kat_rng_next();
		clen = big ? TLS_MAX_MSG_SIZE_V10_2 : 64;
		kat_rng_bytes(content_buf, clen);
		reclen = seal_record(&s, seqno, TLS_RLTYPE_APP, content_buf,
		    clen, 0, rec_buf, payload_buf, &plen);
		/* The tag straddles two mbufs throughout. */
		lens[0] = big ? 16384 : 20;
		lens[1] = reclen - lens[0] - 7;
		lens[2] = 7;

		nflips = 0;
		flips[nflips++] = (struct flip){ "first ciphertext byte",
		    s.hlen, 0x01 };
		flips[nflips++] = (struct flip){ "middle ciphertext byte",
		    s.hlen + plen / 2, 0x10 };
		flips[nflips++] = (struct flip){ "last ciphertext byte",
		    reclen - 17, 0x80 };
		flips[nflips++] = (struct flip){ "first tag byte",
		    reclen - 16, 0x01 };
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
			error = open_record(&s, bad, reclen, lens, 3, seqno,
			    NULL, payload_buf, plen, flips[i].what);
			if (error != EBADMSG)
				harness_fail(__FILE__, __LINE__,
				    "%s: error %d", flips[i].what, error);
			expect_open(&s, rec_buf, reclen, lens, 3, seqno,
			    payload_buf, plen, "good after bad");
		}

		CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3, seqno + 1,
		    NULL, payload_buf, plen, "seqno + 1"), EBADMSG);
		CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3,
		    seqno ^ (UINT64_C(1) << 63), NULL, payload_buf, plen,
		    "seqno high bit"), EBADMSG);
		expect_open(&s, rec_buf, reclen, lens, 3, seqno, payload_buf,
		    plen, "good after bad seqno");

		/* The header is additional data in both versions. */
		memcpy(&hdr, rec_buf, sizeof(hdr));
		hdr.tls_type = TLS_RLTYPE_HANDSHAKE;
		CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3, seqno,
		    &hdr, payload_buf, plen, "header type"), EBADMSG);
		memcpy(&hdr, rec_buf, sizeof(hdr));
		hdr.tls_vminor ^= 1;
		CHECK_EQ(open_record(&s, rec_buf, reclen, lens, 3, seqno,
		    &hdr, payload_buf, plen, "header version"), EBADMSG);
		expect_open(&s, rec_buf, reclen, lens, 3, seqno, payload_buf,
		    plen, "good after bad header");
	}
	session_close(&s);
}

/* The tag, and the explicit nonce, cut at every byte and into bytes. */
static void
test_tag_straddles(void *arg)
{
	const struct crypto_case *c = arg;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t i, j, n, plen, reclen;
	uint64_t seqno;

	REQUIRE_EQ(session_open(&s, c->bk, c->su), 0);
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
	const struct crypto_case *c = arg;
	const struct kat_suite *su = c->su;
	struct session s;
	uint32_t lens[2], plen, reclen;
	uint64_t seqno;
	int k;

	REQUIRE_EQ(session_open(&s, c->bk, su), 0);
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
 * Consecutive records of one session, of every size class, through the
 * wrap of the sequence number, in random layouts.
 */
static void
test_record_stream(void *arg)
{
	const struct crypto_case *c = arg;
	const struct kat_suite *su = c->su;
	struct session s;
	uint32_t *lens = lens_buf;
	uint32_t content_len, n, plen, reclen;
	uint64_t seqno;
	int k;

	REQUIRE_EQ(session_open(&s, c->bk, su), 0);
	seqno = UINT64_MAX - 30;
	for (k = 0; k < 60; k++, seqno++) {
		switch (kat_rng_below(4)) {
		case 0:
			content_len = TLS_MAX_MSG_SIZE_V10_2;
			break;
		case 1:
			content_len = kat_rng_below(64);
			break;
		default:
			content_len = kat_rng_below(3000);
			break;
		}
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
case_name(const void *p)
{
	return ((const struct crypto_case *)p)->name;
}

__attribute__((constructor)) static void
register_case_tests(void)
{
	static const struct {
		const char *name;
		void (*fn)(void *);
	} bodies[] = {
		{ "short_every_split", test_short_every_split },
		{ "long_random_splits", test_long_random_splits },
		{ "bad_records", test_bad_records },
		{ "tag_straddles", test_tag_straddles },
		{ "empty_records", test_empty_records },
		{ "record_stream", test_record_stream },
	};
	struct crypto_case *c;
	size_t b, i, j;
	int n;

	for (i = 0; i < NITEMS(backends); i++) {
		for (j = 0; j < NITEMS(kat_suites); j++) {
			c = &cases[i * NITEMS(kat_suites) + j];
			c->bk = &backends[i];
			c->su = &kat_suites[j];
			n = snprintf(c->name, sizeof(c->name), "%s/%s",
			    backends[i].name, kat_suites[j].name);
			if (n < 0 || (size_t)n >= sizeof(c->name))
				abort();
		}
	}
	for (b = 0; b < NITEMS(bodies); b++)
		harness_register_param(bodies[b].name, bodies[b].fn, cases,
		    sizeof(cases[0]), NITEMS(cases), case_name);
}

/* ---- tests over backends: probe, setup, threads ------------------------ */

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

static void
test_probe(void *arg)
{
	const struct backend *bk = arg;
	struct tls_session_params p;
	size_t i;

	for (i = 0; i < NITEMS(kat_suites); i++) {
		params_for(&p, kat_suites[i].cipher, kat_suites[i].key_len,
		    kat_suites[i].minor);
		CHECK_EQ(bk->be->probe(&p), 0);
	}
	params_for(&p, CRYPTO_AES_CBC, 16, TLS_MINOR_VER_TWO);
	CHECK_EQ(bk->be->probe(&p), ENOTSUP);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 24, TLS_MINOR_VER_THREE);
	CHECK_EQ(bk->be->probe(&p), ENOTSUP);
	params_for(&p, CRYPTO_CHACHA20_POLY1305, 16, TLS_MINOR_VER_THREE);
	CHECK_EQ(bk->be->probe(&p), ENOTSUP);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_ONE);
	CHECK_EQ(bk->be->probe(&p), ENOTSUP);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE);
	p.tls_vmajor = 2;
	CHECK_EQ(bk->be->probe(&p), ENOTSUP);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE);
	p.tls_tlen = 12;
	CHECK_EQ(bk->be->probe(&p), ENOTSUP);
	CHECK(strcmp(bk->be->name, bk->name) == 0);
}

static void
test_setup_teardown(void *arg)
{
	const struct backend *bk = arg;
	struct session s;
	size_t i;
	int k;

	/* Under AddressSanitizer this finds a session left behind. */
	for (k = 0; k < 200; k++) {
		for (i = 0; i < NITEMS(kat_suites); i++) {
			REQUIRE_EQ(session_open(&s, bk, &kat_suites[i]), 0);
			CHECK(s.cookie != NULL);
			if (bk->cookie_align != 0)
				CHECK((uintptr_t)s.cookie % bk->cookie_align ==
				    0);
			session_close(&s);
		}
	}
}

/* One session's records do not open under another key. */
static void
test_sessions_independent(void *arg)
{
	const struct backend *bk = arg;
	struct session a, b;
	uint32_t lens[1], plen, reclen;
	size_t i;

	for (i = 0; i < NITEMS(kat_suites); i++) {
		REQUIRE_EQ(session_open(&a, bk, &kat_suites[i]), 0);
		REQUIRE_EQ(session_open(&b, bk, &kat_suites[i]), 0);
		kat_rng_bytes(content_buf, 100);
		reclen = seal_record(&a, 7, TLS_RLTYPE_APP, content_buf, 100,
		    0, rec_buf, payload_buf, &plen);
		lens[0] = reclen;
		CHECK_EQ(open_record(&b, rec_buf, reclen, lens, 1, 7, NULL,
		    payload_buf, plen, "other key"), EBADMSG);
		expect_open(&a, rec_buf, reclen, lens, 1, 7, payload_buf, plen,
		    "own key");
		session_close(&a);
		session_close(&b);
	}
}

/*
 * Threads other than the one that set a session up decrypt records at the
 * same time, as workers and waiting readers do.  ipsec-mb's sessions all go
 * through the process's one manager, and ThreadSanitizer checks that
 * sharing it is clean; OpenSSL's contexts move from the thread that made
 * them to the one that uses them.
 */
#define THR_N 4
#define THR_RECORDS 50

struct thr_arg {
	const struct kat_suite *su;
	struct session s;
	uint8_t rec[REC_MAX];
	uint8_t payload[REC_MAX];
	uint8_t content[2048];
	uint32_t reclen, plen;
	int failures;
};

static void *
thr_main(void *arg)
{
	struct thr_arg *t = arg;
	struct tls_record_layer hdr;
	struct mbuf *m;
	uint32_t lens[3];
	int k, trailer_len;

	for (k = 0; k < THR_RECORDS; k++) {
		lens[0] = 1 + (uint32_t)k % 40;
		lens[1] = (t->reclen - lens[0]) / 2;
		lens[2] = t->reclen - lens[0] - lens[1];
		m = kat_chain(t->rec, lens, 3);
		memcpy(&hdr, t->rec, sizeof(hdr));
		if (t->s.bk->be->decrypt(t->s.cookie, &t->s.p, &hdr, m, 5,
		    &trailer_len) != 0)
			t->failures++;
		else {
			m_copydata(m, t->s.hlen, t->plen, t->content);
			if (memcmp(t->content, t->payload, t->plen) != 0)
				t->failures++;
		}
		m_freem(m);
	}
	mbuf_thread_flush();
	return NULL;
}

static void
test_threads(void *arg)
{
	const struct backend *bk = arg;
	static struct thr_arg args[THR_N];
	pthread_t tid[THR_N];
	size_t i;

	for (i = 0; i < THR_N; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].su = &kat_suites[i % NITEMS(kat_suites)];
		REQUIRE_EQ(session_open(&args[i].s, bk, args[i].su), 0);
		kat_rng_bytes(content_buf, 1500);
		args[i].reclen = seal_record(&args[i].s, 5, TLS_RLTYPE_APP,
		    content_buf, 1500, 0, args[i].rec, args[i].payload,
		    &args[i].plen);
	}
	for (i = 0; i < THR_N; i++)
		REQUIRE_EQ(pthread_create(&tid[i], NULL, thr_main, &args[i]),
		    0);
	for (i = 0; i < THR_N; i++) {
		pthread_join(tid[i], NULL);
		CHECK_EQ(args[i].failures, 0);
		session_close(&args[i].s);
	}
}

static const char *
backend_name(const void *p)
{
	return ((const struct backend *)p)->name;
}

__attribute__((constructor)) static void
register_backend_tests(void)
{
	harness_register_param("probe", test_probe, backends,
	    sizeof(backends[0]), NITEMS(backends), backend_name);
	harness_register_param("setup_teardown", test_setup_teardown,
	    backends, sizeof(backends[0]), NITEMS(backends), backend_name);
	harness_register_param("sessions_independent",
	    test_sessions_independent, backends, sizeof(backends[0]),
	    NITEMS(backends), backend_name);
	harness_register_param("threads", test_threads, backends,
	    sizeof(backends[0]), NITEMS(backends), backend_name);
}

/* ---- the choice of backend --------------------------------------------- */

/* Each suite gets a backend; a suite no backend can decrypt gets none. */
TEST(select_by_suite)
{
	struct tls_session_params p;
	size_t i;

	for (i = 0; i < NITEMS(kat_suites); i++) {
		params_for(&p, kat_suites[i].cipher, kat_suites[i].key_len,
		    kat_suites[i].minor);
		CHECK(ktls_crypto_select(&p) != NULL);
	}
	params_for(&p, CRYPTO_AES_CBC, 16, TLS_MINOR_VER_TWO);
	CHECK(ktls_crypto_select(&p) == NULL);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 24, TLS_MINOR_VER_THREE);
	CHECK(ktls_crypto_select(&p) == NULL);
	params_for(&p, CRYPTO_CHACHA20_POLY1305, 16, TLS_MINOR_VER_THREE);
	CHECK(ktls_crypto_select(&p) == NULL);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_ONE);
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
}

#ifdef UKTLS_HAVE_IPSECMB

/*
 * Restore UKTLS_CRYPTO as it was when the program started, so that one
 * test's setting does not leak into the next.
 */
static char *saved_env;
static int saved_env_set;

__attribute__((constructor)) static void
save_env(void)
{
	const char *v = getenv("UKTLS_CRYPTO");

	saved_env_set = v != NULL;
	saved_env = v != NULL ? strdup(v) : NULL;
}

static void
restore_env(void)
{
	if (saved_env_set)
		setenv("UKTLS_CRYPTO", saved_env, 1);
	else
		unsetenv("UKTLS_CRYPTO");
}

__attribute__((destructor)) static void
free_env(void)
{
	free(saved_env);
}

TEST(select_forced)
{
	struct tls_session_params p;
	const struct ktls_crypto_backend *be;
	size_t i;

	for (i = 0; i < NITEMS(kat_suites); i++) {
		params_for(&p, kat_suites[i].cipher, kat_suites[i].key_len,
		    kat_suites[i].minor);
		setenv("UKTLS_CRYPTO", "openssl", 1);
		CHECK(ktls_crypto_select(&p) == &ktls_crypto_openssl);
		setenv("UKTLS_CRYPTO", "ipsecmb", 1);
		CHECK(ktls_crypto_select(&p) == &ktls_crypto_ipsecmb);
		/* An unknown name is no name: the measured choice. */
		setenv("UKTLS_CRYPTO", "nonesuch", 1);
		be = ktls_crypto_select(&p);
		CHECK(be == &ktls_crypto_openssl ||
		    be == &ktls_crypto_ipsecmb);
		unsetenv("UKTLS_CRYPTO");
		CHECK(ktls_crypto_select(&p) == be);
	}
	setenv("UKTLS_CRYPTO", "openssl", 1);
	CHECK(strcmp(ktls_crypto_default_name(), "openssl") == 0);
	setenv("UKTLS_CRYPTO", "ipsecmb", 1);
	CHECK(strcmp(ktls_crypto_default_name(), "ipsecmb") == 0);
	/* Forcing never makes an unsupported suite selectable. */
	params_for(&p, CRYPTO_AES_CBC, 16, TLS_MINOR_VER_TWO);
	CHECK(ktls_crypto_select(&p) == NULL);
	restore_env();
}

TEST(select_measured)
{
	struct tls_session_params p;
	const struct ktls_crypto_backend *be, *be12;
	const char *name;
	size_t i;

	unsetenv("UKTLS_CRYPTO");
	/* The name reported is the backend an AES-128-GCM 1.3 session gets. */
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE);
	be = ktls_crypto_select(&p);
	REQUIRE(be != NULL);
	name = ktls_crypto_default_name();
	CHECK(strcmp(name, be->name) == 0);
	fprintf(stderr, "test_crypto: measured choice for AES-128-GCM: %s\n",
	    name);
	/* A choice is kept, and is the same for both versions. */
	for (i = 0; i < NITEMS(kat_suites); i++) {
		params_for(&p, kat_suites[i].cipher, kat_suites[i].key_len,
		    TLS_MINOR_VER_THREE);
		be = ktls_crypto_select(&p);
		params_for(&p, kat_suites[i].cipher, kat_suites[i].key_len,
		    TLS_MINOR_VER_TWO);
		be12 = ktls_crypto_select(&p);
		CHECK(be != NULL && be == be12);
		CHECK(ktls_crypto_select(&p) == be12);
	}
	params_for(&p, CRYPTO_AES_CBC, 16, TLS_MINOR_VER_TWO);
	CHECK(ktls_crypto_select(&p) == NULL);
	params_for(&p, CRYPTO_AES_NIST_GCM_16, 24, TLS_MINOR_VER_THREE);
	CHECK(ktls_crypto_select(&p) == NULL);
	restore_env();
}

#else /* !UKTLS_HAVE_IPSECMB */

/* Without the library OpenSSL is the one backend, and every suite's. */
TEST(ipsecmb_not_built)
{
	fprintf(stderr, "test_crypto: built without ipsec-mb\n");
	CHECK(strcmp(ktls_crypto_default_name(), "openssl") == 0);
}

#endif /* UKTLS_HAVE_IPSECMB */

int
main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
