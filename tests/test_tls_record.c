/*
 * Tests for src/tls_record.c: validation of struct tls_enable with the errno
 * FreeBSD gives for each case of its ktls_test.c, nonce and additional data
 * against values worked out by hand, record header and minimum length
 * checks at their boundaries, and the TLS 1.3 inner content type over mbuf
 * chains split at every byte.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>

#include "harness.h"
#include "mbuf.h"
#include "tls_record.h"

_Static_assert(sizeof(struct tls_record_layer) == TLS_HEADER_LEN,
    "record header is 5 bytes");

/*
 * Buffers a struct tls_enable points at.  They are larger than any valid
 * length so that tests of oversized lengths never point past them.
 */
static uint8_t test_key[1100];
static uint8_t test_iv[32];
static uint8_t test_auth_key[1100];

static void
fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + 7 * i + 1);
}

/*
 * Build a struct tls_enable the way FreeBSD's ktls_test.c build_tls_enable()
 * does: the IV length follows the cipher and version, the MAC key length
 * the hash, and a zero length means a NULL pointer.
 */
static void
build_enable(struct tls_enable *en, int cipher, int key_len, int auth,
    int minor)
{
	int auth_key_len, iv_len;

	memset(en, 0, sizeof(*en));
	switch (cipher) {
	case CRYPTO_AES_CBC:
		iv_len = minor == TLS_MINOR_VER_ZERO ?
		    TLS_CBC_IMPLICIT_IV_LEN : 0;
		break;
	case CRYPTO_AES_NIST_GCM_16:
		iv_len = minor == TLS_MINOR_VER_TWO ? TLS_AEAD_GCM_LEN :
		    TLS_1_3_GCM_IV_LEN;
		break;
	case CRYPTO_CHACHA20_POLY1305:
		iv_len = TLS_CHACHA20_IV_LEN;
		break;
	default:
		iv_len = 0;
		break;
	}
	switch (auth) {
	case CRYPTO_SHA1_HMAC:
		auth_key_len = 20;
		break;
	case CRYPTO_SHA2_256_HMAC:
		auth_key_len = 32;
		break;
	case CRYPTO_SHA2_384_HMAC:
		auth_key_len = 48;
		break;
	default:
		auth_key_len = 0;
		break;
	}
	fill_pattern(test_key, sizeof(test_key), 0x10);
	fill_pattern(test_iv, sizeof(test_iv), 0x80);
	fill_pattern(test_auth_key, sizeof(test_auth_key), 0x40);
	en->cipher_key = key_len != 0 ? test_key : NULL;
	en->iv = iv_len != 0 ? test_iv : NULL;
	en->auth_key = auth_key_len != 0 ? test_auth_key : NULL;
	en->cipher_algorithm = cipher;
	en->cipher_key_len = key_len;
	en->iv_len = iv_len;
	en->auth_algorithm = auth;
	en->auth_key_len = auth_key_len;
	en->flags = 0;
	en->tls_vmajor = TLS_MAJOR_VER_ONE;
	en->tls_vminor = (uint8_t)minor;
	memcpy(en->rec_seq, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
}

static int
all_zero(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/*
 * Run tls_params_from_enable on en, expecting want.  Failures also check
 * that the output was wiped, so p starts full of a non-zero pattern.
 */
static void
check_enable(const char *what, const struct tls_enable *en, int want)
{
	struct tls_session_params p;
	int error;

	memset(&p, 0xa5, sizeof(p));
	error = tls_params_from_enable(en, &p);
	if (error != want)
		harness_fail(__FILE__, __LINE__,
		    "%s: error %d (%s), want %d (%s)", what, error, strerror(error), want, strerror(want));
	if (error != 0 && !all_zero(&p, sizeof(p)))
		harness_fail(__FILE__, __LINE__, "%s: params not wiped", what);
	tls_params_wipe(&p);
}

struct suite {
	const char *name;
	int cipher;
	int key_len;
	int minor;
	uint8_t hlen;
};

static const struct suite aead_suites[] = {
	{ "aes128_gcm_1_2", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_TWO, 13 },
	{ "aes256_gcm_1_2", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_TWO, 13 },
	{ "chacha20_poly1305_1_2", CRYPTO_CHACHA20_POLY1305, 32,
	    TLS_MINOR_VER_TWO, 5 },
	{ "aes128_gcm_1_3", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE,
	    5 },
	{ "aes256_gcm_1_3", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_THREE,
	    5 },
	{ "chacha20_poly1305_1_3", CRYPTO_CHACHA20_POLY1305, 32,
	    TLS_MINOR_VER_THREE, 5 },
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static int
make_params(int cipher, int key_len, int minor, struct tls_session_params *p)
{
	struct tls_enable en;

	build_enable(&en, cipher, key_len, 0, minor);
	return tls_params_from_enable(&en, p);
}

TEST(enable_aead_suites)
{
	struct tls_session_params p;
	struct tls_enable en;
	const struct suite *s;
	size_t i;

	for (i = 0; i < NITEMS(aead_suites); i++) {
		s = &aead_suites[i];
		build_enable(&en, s->cipher, s->key_len, 0, s->minor);
		memset(&p, 0xa5, sizeof(p));
		REQUIRE_EQ(tls_params_from_enable(&en, &p), 0);
		CHECK_EQ(p.cipher_algorithm, s->cipher);
		CHECK_EQ(p.cipher_key_len, s->key_len);
		CHECK(memcmp(p.cipher_key, test_key, (size_t)s->key_len) == 0);
		CHECK_EQ(p.iv_len, en.iv_len);
		CHECK(memcmp(p.iv, test_iv, (size_t)en.iv_len) == 0);
		CHECK_EQ(p.tls_vmajor, TLS_MAJOR_VER_ONE);
		CHECK_EQ(p.tls_vminor, s->minor);
		CHECK_EQ(p.tls_hlen, s->hlen);
		CHECK_EQ(p.tls_tlen, TLS_AEAD_TAG_LEN);
		CHECK(p.initial_seqno == UINT64_C(0x0102030405060708));
		tls_params_wipe(&p);
	}
}

TEST(enable_copies_keys)
{
	struct tls_session_params p;
	struct tls_enable en;
	uint8_t key[32], iv[12], want_key[32], want_iv[12];

	/* The caller may reuse its buffers as soon as the call returns. */
	fill_pattern(key, sizeof(key), 0x33);
	fill_pattern(iv, sizeof(iv), 0x44);
	memcpy(want_key, key, sizeof(key));
	memcpy(want_iv, iv, sizeof(iv));
	build_enable(&en, CRYPTO_CHACHA20_POLY1305, 32, 0,
	    TLS_MINOR_VER_THREE);
	en.cipher_key = key;
	en.iv = iv;
	REQUIRE_EQ(tls_params_from_enable(&en, &p), 0);
	memset(key, 0, sizeof(key));
	memset(iv, 0, sizeof(iv));
	CHECK(memcmp(p.cipher_key, want_key, sizeof(want_key)) == 0);
	CHECK(memcmp(p.iv, want_iv, sizeof(want_iv)) == 0);
	tls_params_wipe(&p);
}

TEST(enable_rec_seq)
{
	static const struct {
		uint8_t rec_seq[8];
		uint64_t seqno;
	} cases[] = {
		{ { 0, 0, 0, 0, 0, 0, 0, 0 }, 0 },
		{ { 0, 0, 0, 0, 0, 0, 0, 1 }, 1 },
		{ { 0x80, 0, 0, 0, 0, 0, 0, 0 }, UINT64_C(0x8000000000000000) },
		{ { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67 },
		    UINT64_C(0xdeadbeef01234567) },
		{ { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		    UINT64_MAX },
	};
	struct tls_session_params p;
	struct tls_enable en;
	size_t i;

	for (i = 0; i < NITEMS(cases); i++) {
		build_enable(&en, CRYPTO_AES_NIST_GCM_16, 16, 0,
		    TLS_MINOR_VER_TWO);
		memcpy(en.rec_seq, cases[i].rec_seq, 8);
		REQUIRE_EQ(tls_params_from_enable(&en, &p), 0);
		CHECK(p.initial_seqno == cases[i].seqno);
		tls_params_wipe(&p);
	}
}

/* FreeBSD's ktls_test.c INVALID_CIPHER_SUITES: all EINVAL. */
TEST(enable_freebsd_invalid)
{
	static const struct {
		const char *name;
		int cipher, key_len, auth, minor;
	} cases[] = {
		{ "invalid_aes128_cbc_1_0_sha256", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA2_256_HMAC, TLS_MINOR_VER_ZERO },
		{ "invalid_aes128_cbc_1_0_sha384", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA2_384_HMAC, TLS_MINOR_VER_ZERO },
		{ "invalid_aes128_gcm_1_0", CRYPTO_AES_NIST_GCM_16, 16, 0,
		    TLS_MINOR_VER_ZERO },
		{ "invalid_chacha20_poly1305_1_0", CRYPTO_CHACHA20_POLY1305,
		    32, 0, TLS_MINOR_VER_ZERO },
		{ "invalid_aes128_cbc_1_1_sha256", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA2_256_HMAC, TLS_MINOR_VER_ONE },
		{ "invalid_aes128_cbc_1_1_sha384", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA2_384_HMAC, TLS_MINOR_VER_ONE },
		{ "invalid_aes128_gcm_1_1", CRYPTO_AES_NIST_GCM_16, 16, 0,
		    TLS_MINOR_VER_ONE },
		{ "invalid_chacha20_poly1305_1_1", CRYPTO_CHACHA20_POLY1305,
		    32, 0, TLS_MINOR_VER_ONE },
		{ "invalid_aes128_cbc_1_3_sha1", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA1_HMAC, TLS_MINOR_VER_THREE },
		{ "invalid_aes128_cbc_1_3_sha256", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA2_256_HMAC, TLS_MINOR_VER_THREE },
		{ "invalid_aes128_cbc_1_3_sha384", CRYPTO_AES_CBC, 16,
		    CRYPTO_SHA2_384_HMAC, TLS_MINOR_VER_THREE },
	};
	struct tls_enable en;
	size_t i;

	for (i = 0; i < NITEMS(cases); i++) {
		build_enable(&en, cases[i].cipher, cases[i].key_len,
		    cases[i].auth, cases[i].minor);
		check_enable(cases[i].name, &en, EINVAL);
	}
}

/* FreeBSD's unsupported_aes{128,256}_cbc_1_0_sha1: no RX for TLS 1.0 CBC. */
TEST(enable_cbc_1_0_sha1)
{
	struct tls_enable en;

	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ZERO);
	check_enable("aes128_cbc_1_0_sha1", &en, EPROTONOSUPPORT);
	build_enable(&en, CRYPTO_AES_CBC, 32, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ZERO);
	check_enable("aes256_cbc_1_0_sha1", &en, EPROTONOSUPPORT);

	/* Malformed TLS 1.0 CBC stays EINVAL: the shape is checked first. */
	build_enable(&en, CRYPTO_AES_CBC, 24, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ZERO);
	check_enable("aes192_cbc_1_0_sha1", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ZERO);
	en.iv_len = 12;
	check_enable("cbc_1_0 iv_len 12", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ZERO);
	en.iv = NULL;
	check_enable("cbc_1_0 iv NULL", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ZERO);
	en.cipher_key = NULL;
	check_enable("cbc_1_0 key NULL", &en, EINVAL);
}

/* FreeBSD's eight CBC RX suites are valid; uktls does not decrypt CBC. */
TEST(enable_cbc_valid_unsupported)
{
	static const struct {
		const char *name;
		int key_len, auth, minor;
	} cases[] = {
		{ "aes128_cbc_1_1_sha1", 16, CRYPTO_SHA1_HMAC,
		    TLS_MINOR_VER_ONE },
		{ "aes256_cbc_1_1_sha1", 32, CRYPTO_SHA1_HMAC,
		    TLS_MINOR_VER_ONE },
		{ "aes128_cbc_1_2_sha1", 16, CRYPTO_SHA1_HMAC,
		    TLS_MINOR_VER_TWO },
		{ "aes256_cbc_1_2_sha1", 32, CRYPTO_SHA1_HMAC,
		    TLS_MINOR_VER_TWO },
		{ "aes128_cbc_1_2_sha256", 16, CRYPTO_SHA2_256_HMAC,
		    TLS_MINOR_VER_TWO },
		{ "aes256_cbc_1_2_sha256", 32, CRYPTO_SHA2_256_HMAC,
		    TLS_MINOR_VER_TWO },
		{ "aes128_cbc_1_2_sha384", 16, CRYPTO_SHA2_384_HMAC,
		    TLS_MINOR_VER_TWO },
		{ "aes256_cbc_1_2_sha384", 32, CRYPTO_SHA2_384_HMAC,
		    TLS_MINOR_VER_TWO },
	};
	struct tls_enable en;
	size_t i;

	for (i = 0; i < NITEMS(cases); i++) {
		build_enable(&en, CRYPTO_AES_CBC, cases[i].key_len,
		    cases[i].auth, cases[i].minor);
		check_enable(cases[i].name, &en, ENOTSUP);
	}

	/* TLS 1.1 and 1.2 ignore any IV passed, as FreeBSD does. */
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_TWO);
	en.iv = test_iv;
	en.iv_len = 16;
	check_enable("cbc_1_2 with iv", &en, ENOTSUP);
	en.iv_len = 3;
	check_enable("cbc_1_2 with iv_len 3", &en, ENOTSUP);
}

TEST(enable_cbc_invalid)
{
	struct tls_enable en;

	build_enable(&en, CRYPTO_AES_CBC, 16, 0, TLS_MINOR_VER_TWO);
	check_enable("cbc no auth", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_AES_NIST_GCM_16,
	    TLS_MINOR_VER_TWO);
	en.auth_key = test_auth_key;
	en.auth_key_len = 20;
	check_enable("cbc auth gcm", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_TWO);
	en.auth_key_len = 32;
	check_enable("cbc sha1 auth key 32", &en, EINVAL);
	en.auth_key_len = 0;
	check_enable("cbc sha1 auth key 0", &en, EINVAL);
	en.auth_key_len = 20;
	en.auth_key = NULL;
	check_enable("cbc sha1 auth key NULL", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA2_384_HMAC,
	    TLS_MINOR_VER_TWO);
	en.auth_key_len = 32;
	check_enable("cbc sha384 auth key 32", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 24, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_TWO);
	check_enable("aes192_cbc_1_2", &en, EINVAL);
	build_enable(&en, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC,
	    TLS_MINOR_VER_ONE);
	en.iv = test_iv;
	en.iv_len = 17;
	check_enable("cbc_1_1 iv_len 17", &en, EINVAL);
}

/*
 * One field of a valid structure changed at a time: the named field alone
 * decides the error.
 */
struct mutation {
	const char *name;
	int cipher, key_len, minor;
	void (*apply)(struct tls_enable *en, int arg);
	int arg;
	int want;
};

static void
set_flags(struct tls_enable *en, int v)
{
	en->flags = v;
}

static void
set_vmajor(struct tls_enable *en, int v)
{
	en->tls_vmajor = (uint8_t)v;
}

static void
set_vminor(struct tls_enable *en, int v)
{
	en->tls_vminor = (uint8_t)v;
}

static void
set_key_len(struct tls_enable *en, int v)
{
	en->cipher_key_len = v;
}

static void
set_iv_len(struct tls_enable *en, int v)
{
	en->iv_len = v;
}

static void
set_auth_key_len(struct tls_enable *en, int v)
{
	en->auth_key = test_auth_key;
	en->auth_key_len = v;
}

static void
set_auth_alg(struct tls_enable *en, int v)
{
	en->auth_algorithm = v;
}

static void
set_cipher_alg(struct tls_enable *en, int v)
{
	en->cipher_algorithm = v;
}

static void
set_key_null(struct tls_enable *en, int v __attribute__((unused)))
{
	en->cipher_key = NULL;
}

static void
set_iv_null(struct tls_enable *en, int v __attribute__((unused)))
{
	en->iv = NULL;
}

#define GCM CRYPTO_AES_NIST_GCM_16
#define CHACHA CRYPTO_CHACHA20_POLY1305
#define V12 TLS_MINOR_VER_TWO
#define V13 TLS_MINOR_VER_THREE

static const struct mutation mutations[] = {
	{ "gcm12 unchanged", GCM, 16, V12, set_flags, 0, 0 },
	{ "gcm12 flags 1", GCM, 16, V12, set_flags, 1, EINVAL },
	{ "gcm13 flags -1", GCM, 16, V13, set_flags, -1, EINVAL },
	{ "chacha13 flags 0x100", CHACHA, 32, V13, set_flags, 0x100, EINVAL },
	{ "gcm12 vmajor 0", GCM, 16, V12, set_vmajor, 0, EINVAL },
	{ "gcm12 vmajor 2", GCM, 16, V12, set_vmajor, 2, EINVAL },
	{ "gcm13 vmajor 4", GCM, 16, V13, set_vmajor, 4, EINVAL },
	{ "gcm12 vminor 0", GCM, 16, V12, set_vminor, 0, EINVAL },
	{ "gcm13 vminor 5", GCM, 16, V13, set_vminor, 5, EINVAL },
	{ "chacha12 vminor 255", CHACHA, 32, V12, set_vminor, 255, EINVAL },
	{ "gcm12 key 0", GCM, 16, V12, set_key_len, 0, EINVAL },
	{ "gcm12 key -1", GCM, 16, V12, set_key_len, -1, EINVAL },
	{ "gcm12 key INT_MIN", GCM, 16, V12, set_key_len, INT_MIN, EINVAL },
	{ "gcm12 key 8", GCM, 16, V12, set_key_len, 8, EINVAL },
	{ "gcm12 key 15", GCM, 16, V12, set_key_len, 15, EINVAL },
	{ "gcm12 key 24", GCM, 16, V12, set_key_len, 24, EINVAL },
	{ "gcm13 key 24", GCM, 16, V13, set_key_len, 24, EINVAL },
	{ "gcm13 key 33", GCM, 16, V13, set_key_len, 33, EINVAL },
	{ "gcm13 key 64", GCM, 16, V13, set_key_len, 64, EINVAL },
	{ "gcm13 key 1024", GCM, 16, V13, set_key_len, 1024, EINVAL },
	{ "gcm13 key 1025", GCM, 16, V13, set_key_len, 1025, EINVAL },
	{ "gcm13 key INT_MAX", GCM, 16, V13, set_key_len, INT_MAX, EINVAL },
	{ "chacha12 key 16", CHACHA, 32, V12, set_key_len, 16, EINVAL },
	{ "chacha13 key 24", CHACHA, 32, V13, set_key_len, 24, EINVAL },
	{ "chacha13 key 31", CHACHA, 32, V13, set_key_len, 31, EINVAL },
	{ "gcm12 iv_len 0", GCM, 16, V12, set_iv_len, 0, EINVAL },
	{ "gcm12 iv_len 3", GCM, 16, V12, set_iv_len, 3, EINVAL },
	{ "gcm12 iv_len 12", GCM, 16, V12, set_iv_len, 12, EINVAL },
	{ "gcm13 iv_len 4", GCM, 16, V13, set_iv_len, 4, EINVAL },
	{ "gcm13 iv_len 16", GCM, 16, V13, set_iv_len, 16, EINVAL },
	{ "gcm13 iv_len 17", GCM, 16, V13, set_iv_len, 17, EINVAL },
	{ "gcm13 iv_len -1", GCM, 16, V13, set_iv_len, -1, EINVAL },
	{ "chacha12 iv_len 4", CHACHA, 32, V12, set_iv_len, 4, EINVAL },
	{ "chacha13 iv_len 8", CHACHA, 32, V13, set_iv_len, 8, EINVAL },
	{ "chacha13 iv_len 16", CHACHA, 32, V13, set_iv_len, 16, EINVAL },
	{ "gcm12 auth key 20", GCM, 16, V12, set_auth_key_len, 20, EINVAL },
	{ "gcm13 auth key -1", GCM, 16, V13, set_auth_key_len, -1, EINVAL },
	{ "gcm13 auth key 1025", GCM, 16, V13, set_auth_key_len, 1025,
	    EINVAL },
	{ "chacha12 auth key 32", CHACHA, 32, V12, set_auth_key_len, 32,
	    EINVAL },
	{ "gcm12 auth sha1", GCM, 16, V12, set_auth_alg, CRYPTO_SHA1_HMAC,
	    EINVAL },
	{ "gcm13 auth sha256", GCM, 16, V13, set_auth_alg,
	    CRYPTO_SHA2_256_HMAC, EINVAL },
	{ "chacha13 auth sha1", CHACHA, 32, V13, set_auth_alg,
	    CRYPTO_SHA1_HMAC, EINVAL },
	{ "chacha12 auth -1", CHACHA, 32, V12, set_auth_alg, -1, EINVAL },
	{ "cipher 0", GCM, 16, V12, set_cipher_alg, 0, EINVAL },
	{ "cipher 99", GCM, 16, V12, set_cipher_alg, 99, EINVAL },
	{ "cipher -1", GCM, 16, V13, set_cipher_alg, -1, EINVAL },
	{ "cipher sha1 hmac", GCM, 16, V13, set_cipher_alg, CRYPTO_SHA1_HMAC,
	    EINVAL },
	{ "gcm12 key NULL", GCM, 16, V12, set_key_null, 0, EINVAL },
	{ "chacha13 key NULL", CHACHA, 32, V13, set_key_null, 0, EINVAL },
	{ "gcm12 iv NULL", GCM, 16, V12, set_iv_null, 0, EINVAL },
	{ "gcm13 iv NULL", GCM, 16, V13, set_iv_null, 0, EINVAL },
	{ "chacha12 iv NULL", CHACHA, 32, V12, set_iv_null, 0, EINVAL },
};

TEST(enable_field_errors)
{
	const struct mutation *mu;
	struct tls_enable en;
	size_t i;

	for (i = 0; i < NITEMS(mutations); i++) {
		mu = &mutations[i];
		build_enable(&en, mu->cipher, mu->key_len, 0, mu->minor);
		mu->apply(&en, mu->arg);
		check_enable(mu->name, &en, mu->want);
	}
}

TEST(enable_null)
{
	struct tls_session_params p;
	struct tls_enable en;

	memset(&p, 0xa5, sizeof(p));
	CHECK_EQ(tls_params_from_enable(NULL, &p), EINVAL);
	CHECK(all_zero(&p, sizeof(p)));
	build_enable(&en, GCM, 16, 0, V12);
	CHECK_EQ(tls_params_from_enable(&en, NULL), EINVAL);
}

TEST(params_wipe)
{
	struct tls_session_params p;

	REQUIRE_EQ(make_params(GCM, 32, V13, &p), 0);
	CHECK(!all_zero(p.cipher_key, sizeof(p.cipher_key)));
	CHECK(!all_zero(p.iv, sizeof(p.iv)));
	tls_params_wipe(&p);
	CHECK(all_zero(p.cipher_key, sizeof(p.cipher_key)));
	CHECK(all_zero(p.iv, sizeof(p.iv)));
	/* The rest still describes the session. */
	CHECK_EQ(p.cipher_algorithm, GCM);
	CHECK_EQ(p.tls_vminor, V13);
}

TEST(explicit_bzero)
{
	uint8_t buf[100];

	memset(buf, 0xee, sizeof(buf));
	tls_explicit_bzero(buf + 10, 50);
	CHECK(buf[9] == 0xee);
	CHECK(all_zero(buf + 10, 50));
	CHECK(buf[60] == 0xee);
	tls_explicit_bzero(buf, 0);
	CHECK(buf[0] == 0xee);
}

/* ---- nonce and additional data ----------------------------------------- */

static const uint8_t iv12[12] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
};

static void
params_with_iv(int cipher, int key_len, int minor, const uint8_t *iv,
    struct tls_session_params *p)
{
	struct tls_enable en;

	build_enable(&en, cipher, key_len, 0, minor);
	en.iv = iv;
	if (tls_params_from_enable(&en, p) != 0)
		abort();
}

TEST(nonce_tls12_gcm)
{
	static const uint8_t salt[4] = { 0x01, 0x02, 0x03, 0x04 };
	static const uint8_t expl[8] = {
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	};
	static const uint8_t want[12] = {
		0x01, 0x02, 0x03, 0x04,
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	};
	struct tls_session_params p;
	uint8_t nonce[TLS_NONCE_LEN];

	params_with_iv(GCM, 16, V12, salt, &p);
	/* RFC 5288: salt || explicit nonce; the seqno plays no part. */
	tls_nonce(&p, expl, 0, nonce);
	CHECK(memcmp(nonce, want, sizeof(want)) == 0);
	tls_nonce(&p, expl, UINT64_MAX, nonce);
	CHECK(memcmp(nonce, want, sizeof(want)) == 0);
	tls_nonce(&p, expl, UINT64_C(0x0123456789abcdef), nonce);
	CHECK(memcmp(nonce, want, sizeof(want)) == 0);
	tls_params_wipe(&p);
}

static void
check_xor_nonce(int cipher, int key_len, int minor)
{
	/*
	 * iv12 with its last eight bytes xored by hand with each seqno:
	 * 44 55 66 77 88 99 aa bb ^ 01 23 45 67 89 ab cd ef
	 *   = 45 76 23 10 01 32 67 54.
	 */
	static const uint8_t want_0[12] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb,
	};
	static const uint8_t want_1[12] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xba,
	};
	static const uint8_t want_x[12] = {
		0x00, 0x11, 0x22, 0x33, 0x45, 0x76, 0x23, 0x10,
		0x01, 0x32, 0x67, 0x54,
	};
	static const uint8_t want_max[12] = {
		0x00, 0x11, 0x22, 0x33, 0xbb, 0xaa, 0x99, 0x88,
		0x77, 0x66, 0x55, 0x44,
	};
	struct tls_session_params p;
	uint8_t nonce[TLS_NONCE_LEN];

	params_with_iv(cipher, key_len, minor, iv12, &p);
	tls_nonce(&p, NULL, 0, nonce);
	CHECK(memcmp(nonce, want_0, 12) == 0);
	tls_nonce(&p, NULL, 1, nonce);
	CHECK(memcmp(nonce, want_1, 12) == 0);
	tls_nonce(&p, NULL, UINT64_C(0x0123456789abcdef), nonce);
	CHECK(memcmp(nonce, want_x, 12) == 0);
	tls_nonce(&p, NULL, UINT64_MAX, nonce);
	CHECK(memcmp(nonce, want_max, 12) == 0);
	tls_params_wipe(&p);
}

TEST(nonce_xor_seqno)
{
	/* RFC 8446 5.3 for TLS 1.3, RFC 7905 2 for ChaCha on TLS 1.2. */
	check_xor_nonce(GCM, 16, V13);
	check_xor_nonce(GCM, 32, V13);
	check_xor_nonce(CHACHA, 32, V13);
	check_xor_nonce(CHACHA, 32, V12);
}

static struct tls_record_layer
hdr_of(uint8_t type, uint8_t major, uint8_t minor, uint16_t len)
{
	struct tls_record_layer h;

	h.tls_type = type;
	h.tls_vmajor = major;
	h.tls_vminor = minor;
	h.tls_length = htons(len);
	return h;
}

TEST(aad_tls12)
{
	static const uint8_t want_a[13] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x17, 0x03, 0x03, 0x12, 0x34,
	};
	static const uint8_t want_b[13] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x15, 0x03, 0x03, 0x40, 0x00,
	};
	static const uint8_t want_c[13] = {
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x16, 0x03, 0x03, 0x00, 0x00,
	};
	struct tls_session_params p[2];
	struct tls_record_layer h;
	uint8_t aad[TLS_MAX_AAD_LEN];
	int i;

	REQUIRE_EQ(make_params(GCM, 16, V12, &p[0]), 0);
	REQUIRE_EQ(make_params(CHACHA, 32, V12, &p[1]), 0);
	for (i = 0; i < 2; i++) {
		/*
		 * The length in the AAD is the plaintext's, not the header's
		 * (which counts explicit nonce and tag).
		 */
		h = hdr_of(23, 3, 3, 0x1234 + 24);
		memset(aad, 0xcc, sizeof(aad));
		CHECK_EQ(tls_aad(&p[i], &h, UINT64_C(0x0102030405060708),
		    0x1234, aad), 13);
		CHECK(memcmp(aad, want_a, 13) == 0);
		h = hdr_of(21, 3, 3, 0);
		CHECK_EQ(tls_aad(&p[i], &h, UINT64_MAX, 16384, aad), 13);
		CHECK(memcmp(aad, want_b, 13) == 0);
		h = hdr_of(22, 3, 3, 24);
		CHECK_EQ(tls_aad(&p[i], &h, 0, 0, aad), 13);
		CHECK(memcmp(aad, want_c, 13) == 0);
		tls_params_wipe(&p[i]);
	}
}

TEST(aad_tls13)
{
	static const uint8_t want[5] = { 0x17, 0x03, 0x03, 0x40, 0x11 };
	struct tls_session_params p;
	struct tls_record_layer h;
	uint8_t aad[TLS_MAX_AAD_LEN];
	size_t i;

	for (i = 0; i < NITEMS(aead_suites); i++) {
		if (aead_suites[i].minor != V13)
			continue;
		REQUIRE_EQ(make_params(aead_suites[i].cipher,
		    aead_suites[i].key_len, V13, &p), 0);
		/* RFC 8446 5.2: the header as received; no seqno. */
		h = hdr_of(23, 3, 3, 0x4011);
		memset(aad, 0xcc, sizeof(aad));
		CHECK_EQ(tls_aad(&p, &h, UINT64_C(0x0102030405060708), 0x4000,
		    aad), 5);
		CHECK(memcmp(aad, want, 5) == 0);
		CHECK(aad[5] == 0xcc);
		tls_params_wipe(&p);
	}
}

/* ---- header and length checks ------------------------------------------ */

struct hdr_case {
	uint8_t type, major, minor;
	uint16_t len;
	int want;
};

static void
check_headers(const char *what, const struct tls_session_params *p,
    const struct hdr_case *c, size_t n)
{
	struct tls_record_layer h;
	uint32_t reclen;
	size_t i;
	int error;

	for (i = 0; i < n; i++) {
		h = hdr_of(c[i].type, c[i].major, c[i].minor, c[i].len);
		reclen = 0xdeadbeef;
		error = tls_check_header(p, &h, &reclen);
		if (error != c[i].want)
			harness_fail(__FILE__, __LINE__,
			    "%s: header %u %u.%u len %u: error %d, want %d",
			    what, c[i].type, c[i].major, c[i].minor, c[i].len,
			    error, c[i].want);
		else if (error == 0 && reclen != 5u + c[i].len)
			harness_fail(__FILE__, __LINE__,
			    "%s: len %u: reclen %u", what, c[i].len, reclen);
	}
}

TEST(header_tls12_gcm)
{
	/* Length field: 8 (explicit nonce) .. 8 + 16384 + 16 = 16408. */
	static const struct hdr_case c[] = {
		{ 23, 3, 3, 100, 0 },
		{ 20, 3, 3, 100, 0 },
		{ 21, 3, 3, 100, 0 },
		{ 22, 3, 3, 100, 0 },
		/* The 1.2 type is authenticated as AAD, not checked here. */
		{ 24, 3, 3, 100, 0 },
		{ 23, 2, 3, 100, EINVAL },
		{ 23, 4, 3, 100, EINVAL },
		{ 23, 3, 1, 100, EINVAL },
		{ 23, 3, 2, 100, EINVAL },
		{ 23, 3, 4, 100, EINVAL },
		{ 23, 0, 0, 100, EINVAL },
		{ 23, 3, 3, 8, 0 },
		{ 23, 3, 3, 7, EMSGSIZE },
		{ 23, 3, 3, 6, EMSGSIZE }, /* FreeBSD short_header */
		{ 23, 3, 3, 0, EMSGSIZE },
		{ 23, 3, 3, 16408, 0 },
		{ 23, 3, 3, 16409, EMSGSIZE },
		{ 23, 3, 3, 32768, EMSGSIZE }, /* FreeBSD oversized_record */
		{ 23, 3, 3, 65535, EMSGSIZE },
		/* Version is checked before length. */
		{ 23, 3, 4, 32768, EINVAL },
	};
	struct tls_session_params p;

	REQUIRE_EQ(make_params(GCM, 16, V12, &p), 0);
	check_headers("aes128_gcm_1_2", &p, c, NITEMS(c));
	tls_params_wipe(&p);
	REQUIRE_EQ(make_params(GCM, 32, V12, &p), 0);
	check_headers("aes256_gcm_1_2", &p, c, NITEMS(c));
	tls_params_wipe(&p);
}

TEST(header_tls12_chacha)
{
	/* No explicit nonce: length field 0 .. 16384 + 16 = 16400. */
	static const struct hdr_case c[] = {
		{ 23, 3, 3, 100, 0 },
		{ 23, 3, 3, 0, 0 },
		{ 23, 3, 3, 16400, 0 },
		{ 23, 3, 3, 16401, EMSGSIZE },
		{ 23, 3, 3, 32768, EMSGSIZE },
		{ 23, 2, 3, 100, EINVAL },
		{ 23, 3, 4, 100, EINVAL },
		{ 23, 3, 2, 100, EINVAL },
	};
	struct tls_session_params p;

	REQUIRE_EQ(make_params(CHACHA, 32, V12, &p), 0);
	check_headers("chacha20_poly1305_1_2", &p, c, NITEMS(c));
	tls_params_wipe(&p);
}

TEST(header_tls13)
{
	/* Wire version 3.3, outer type 23, length 0 .. 2^14 + 256. */
	static const struct hdr_case c[] = {
		{ 23, 3, 3, 100, 0 },
		{ 23, 3, 3, 0, 0 },
		{ 23, 3, 3, 16640, 0 },
		{ 23, 3, 3, 16641, EMSGSIZE },
		{ 23, 3, 3, 32768, EMSGSIZE }, /* FreeBSD oversized_record */
		{ 23, 3, 3, 65535, EMSGSIZE },
		{ 24, 3, 3, 100, EINVAL }, /* FreeBSD bad_type */
		{ 22, 3, 3, 100, EINVAL },
		{ 21, 3, 3, 100, EINVAL },
		{ 20, 3, 3, 100, EINVAL },
		{ 0, 3, 3, 100, EINVAL },
		{ 23, 3, 4, 100, EINVAL }, /* 1.3 is never on the wire */
		{ 23, 3, 2, 100, EINVAL },
		{ 23, 2, 3, 100, EINVAL }, /* FreeBSD bad_major */
		{ 23, 4, 3, 100, EINVAL },
		/* Type is checked before length. */
		{ 24, 3, 3, 32768, EINVAL },
	};
	struct tls_session_params p;
	size_t i;

	for (i = 0; i < NITEMS(aead_suites); i++) {
		if (aead_suites[i].minor != V13)
			continue;
		REQUIRE_EQ(make_params(aead_suites[i].cipher,
		    aead_suites[i].key_len, V13, &p), 0);
		check_headers(aead_suites[i].name, &p, c, NITEMS(c));
		tls_params_wipe(&p);
	}
}

TEST(min_len)
{
	static const struct {
		int cipher, key_len, minor;
		uint32_t min;
	} c[] = {
		/* header 5 + explicit nonce 8 + tag 16 */
		{ GCM, 16, V12, 29 },
		{ GCM, 32, V12, 29 },
		/* header 5 + tag 16 */
		{ CHACHA, 32, V12, 21 },
		/* header 5 + inner type 1 + tag 16 */
		{ GCM, 16, V13, 22 },
		{ GCM, 32, V13, 22 },
		{ CHACHA, 32, V13, 22 },
	};
	struct tls_session_params p;
	size_t i;

	for (i = 0; i < NITEMS(c); i++) {
		REQUIRE_EQ(make_params(c[i].cipher, c[i].key_len, c[i].minor,
		    &p), 0);
		CHECK_EQ(tls_check_min_len(&p, c[i].min), 0);
		CHECK_EQ(tls_check_min_len(&p, c[i].min + 1), 0);
		CHECK_EQ(tls_check_min_len(&p, 16384 + 5 + 256), 0);
		CHECK_EQ(tls_check_min_len(&p, c[i].min - 1), EMSGSIZE);
		CHECK_EQ(tls_check_min_len(&p, 5), EMSGSIZE);
		CHECK_EQ(tls_check_min_len(&p, 0), EMSGSIZE);
		tls_params_wipe(&p);
	}
}

/* ---- TLS 1.3 inner content type ---------------------------------------- */

/*
 * Build a chain holding buf split into nseg pieces of lens[i] bytes each
 * (zero-length pieces become empty mbufs, as m_adj leaves them).
 */
static struct mbuf *
chain_from_segs(const uint8_t *buf, const uint32_t *lens, unsigned int nseg)
{
	struct mbuf *head, **tailp, *m;
	unsigned int i;

	head = NULL;
	tailp = &head;
	for (i = 0; i < nseg; i++) {
		if (lens[i] <= (uint32_t)MLEN)
			m = m_get(MT_DATA);
		else if (lens[i] <= MCLBYTES)
			m = m_getcl(MT_DATA, MCLBYTES);
		else
			m = m_getcl(MT_DATA, MJUMTLSBYTES);
		if (m == NULL)
			abort();
		memcpy(m->m_data, buf, lens[i]);
		m->m_len = lens[i];
		buf += lens[i];
		*tailp = m;
		tailp = &m->m_next;
	}
	return head;
}

/* An inner plaintext framed like a record: header before, tag after. */
struct inner_case {
	const char *name;
	uint32_t content_len; /* bytes of content, non-zero at the end */
	uint8_t type;         /* 0: no type byte (all zero) */
	uint32_t pad;         /* zero bytes after the type */
	uint32_t zero_tail;   /* zero bytes at the end of the content */
	int want;
};

#define FRAME_HEAD 5
#define FRAME_TAIL 16
#define FRAME_MAX 600

static uint32_t
build_inner(const struct inner_case *ic, uint8_t *buf)
{
	uint32_t i, len, n;

	n = 0;
	/* Non-zero bytes around the range must not be taken for the type. */
	for (i = 0; i < FRAME_HEAD; i++)
		buf[n++] = 0x17;
	for (i = 0; i < ic->content_len; i++)
		buf[n++] = i + ic->zero_tail >= ic->content_len ? 0 :
		    (uint8_t)(i % 251 + 1);
	if (ic->type != 0)
		buf[n++] = ic->type;
	for (i = 0; i < ic->pad; i++)
		buf[n++] = 0;
	len = n - FRAME_HEAD;
	for (i = 0; i < FRAME_TAIL; i++)
		buf[n++] = 0xff;
	return len;
}

static void
check_inner(const struct inner_case *ic, const char *shape,
    struct mbuf *m, uint32_t len)
{
	uint32_t content_len;
	uint8_t type;
	int error;

	type = 0xee;
	content_len = 0xdeadbeef;
	error = tls13_find_record_type(m, FRAME_HEAD, len, &type,
	    &content_len);
	if (error != ic->want) {
		harness_fail(__FILE__, __LINE__, "%s (%s): error %d, want %d",
		    ic->name, shape, error, ic->want);
		return;
	}
	if (error != 0)
		return;
	if (type != ic->type || content_len != ic->content_len)
		harness_fail(__FILE__, __LINE__,
		    "%s (%s): type %u len %u, want %u len %u", ic->name, shape,
		    type, content_len, ic->type, ic->content_len);
}

static const struct inner_case inner_cases[] = {
	{ "content type pad", 5, 23, 10, 0, 0 },
	{ "content type", 20, 22, 0, 0, 0 },
	{ "zeros in content", 6, 21, 3, 3, 0 },
	{ "type only", 0, 21, 30, 0, 0 },
	{ "type only no pad", 0, 23, 0, 0, 0 },
	{ "all zero", 30, 0, 0, 30, EBADMSG },
	{ "one zero byte", 0, 0, 1, 0, EBADMSG },
	{ "empty", 0, 0, 0, 0, EBADMSG },
	{ "all content zero", 12, 22, 4, 12, 0 },
};

TEST(inner_type_two_and_three_pieces)
{
	uint8_t buf[FRAME_MAX];
	uint32_t lens[3], len, total, i, j;
	const struct inner_case *ic;
	struct mbuf *m;
	size_t k;

	for (k = 0; k < NITEMS(inner_cases); k++) {
		ic = &inner_cases[k];
		len = build_inner(ic, buf);
		total = FRAME_HEAD + len + FRAME_TAIL;

		lens[0] = total;
		m = chain_from_segs(buf, lens, 1);
		check_inner(ic, "one mbuf", m, len);
		m_freem(m);

		/* Every cut, including those at either end of the range. */
		for (i = 0; i <= total; i++) {
			lens[0] = i;
			lens[1] = total - i;
			m = chain_from_segs(buf, lens, 2);
			check_inner(ic, "two mbufs", m, len);
			m_freem(m);
		}
		for (i = 0; i <= total; i++) {
			for (j = i; j <= total; j++) {
				lens[0] = i;
				lens[1] = j - i;
				lens[2] = total - j;
				m = chain_from_segs(buf, lens, 3);
				check_inner(ic, "three mbufs", m, len);
				m_freem(m);
			}
		}
	}
}

/*
 * Chains of one-byte mbufs, with and without empty mbufs between them: long
 * ones take more than one 64-segment window of the scan.
 */
TEST(inner_type_byte_chains)
{
	static const struct inner_case cases[] = {
		{ "short", 5, 23, 10, 0, 0 },
		{ "type in second window", 70, 22, 100, 0, 0 },
		{ "type in last window", 200, 21, 5, 0, 0 },
		{ "type in first window", 10, 23, 300, 0, 0 },
		{ "type at window edge", 63, 23, 64, 0, 0 },
		{ "content fills a window", 64, 23, 63, 0, 0 },
		{ "type at second window edge", 127, 22, 0, 0, 0 },
		{ "all zero long", 300, 0, 0, 300, EBADMSG },
		{ "type only long pad", 0, 21, 500, 0, 0 },
	};
	uint32_t lens[2 * FRAME_MAX], len, n, sum, total, i;
	uint8_t buf[FRAME_MAX];
	const struct inner_case *ic;
	struct mbuf *m;
	size_t k;

	for (k = 0; k < NITEMS(cases); k++) {
		ic = &cases[k];
		len = build_inner(ic, buf);
		total = FRAME_HEAD + len + FRAME_TAIL;
		REQUIRE(total <= FRAME_MAX);

		for (i = 0; i < total; i++)
			lens[i] = 1;
		m = chain_from_segs(buf, lens, total);
		check_inner(ic, "byte mbufs", m, len);
		m_freem(m);

		for (i = 0; i < total; i++) {
			lens[2 * i] = 0;
			lens[2 * i + 1] = 1;
		}
		m = chain_from_segs(buf, lens, 2 * total);
		check_inner(ic, "byte and empty mbufs", m, len);
		m_freem(m);

		/* Pieces of 1..7 bytes, so windows end mid-range. */
		n = 0;
		for (sum = 0; sum < total; sum += lens[n++]) {
			lens[n] = (n % 7) + 1;
			if (lens[n] > total - sum)
				lens[n] = total - sum;
		}
		m = chain_from_segs(buf, lens, n);
		check_inner(ic, "small mbufs", m, len);
		m_freem(m);
	}
}

/* Content of 2^14 bytes is the most allowed (RFC 8446 5.4). */
TEST(inner_type_max_content)
{
	static uint8_t big[TLS_MAX_MSG_SIZE_V10_2 + 64];
	struct mbuf *m;
	uint32_t content_len, done, i;
	uint8_t type;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 255 + 1);

	/* 16384 content + type + 20 pad: accepted. */
	m = m_getcl(MT_DATA, MJUMTLSBYTES);
	REQUIRE(m != NULL);
	memset(big + 16384, 0, 64);
	big[16384] = 23;
	REQUIRE_EQ(m_append(m, 16384 + 1 + 20, big, &done), 0);
	CHECK_EQ(tls13_find_record_type(m, 0, 16384 + 1 + 20, &type,
	    &content_len), 0);
	CHECK_EQ(type, 23);
	CHECK_EQ(content_len, 16384);
	m_freem(m);

	/* 16385 content + type: too long. */
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 255 + 1);
	memset(big + 16386, 0, sizeof(big) - 16386);
	big[16385] = 23;
	m = m_getcl(MT_DATA, MCLBYTES);
	REQUIRE(m != NULL);
	REQUIRE_EQ(m_append(m, 16385 + 1 + 10, big, &done), 0);
	CHECK_EQ(tls13_find_record_type(m, 0, 16385 + 1 + 10, &type,
	    &content_len), EMSGSIZE);
	/* The same bytes with the last content byte out of range: fine. */
	CHECK_EQ(tls13_find_record_type(m, 1, 16385, &type, &content_len),
	    0);
	CHECK_EQ(type, 23);
	CHECK_EQ(content_len, 16384);
	m_freem(m);
}

int
main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
