/*
 * tls_params_from_enable with arbitrary struct tls_enable contents.
 *
 * The fuzzer chooses every field: algorithms and lengths come either from a
 * table of values near the rules' edges or straight from the input, and each
 * of the three pointers is NULL or points to a heap copy of input bytes
 * whose size is exactly the declared length (when that is a size a caller
 * could have), or a short fuzzer-chosen size when the declared length is
 * out of range.  AddressSanitizer then catches any read past what the
 * caller declared, and any read at all of a buffer whose length should have
 * been refused first.
 *
 * The result is compared with a reference model of the rules written from
 * tls_record.h (and FreeBSD's ktls_create_session), on success the copied
 * parameters with the input, and on failure the output must be wiped.
 */
#include <limits.h>

#include "fuzz_common.h"
#include "tls_record.h"

static const int fz_algs[] = {
	0, CRYPTO_SHA1_HMAC, CRYPTO_AES_CBC, CRYPTO_SHA2_256_HMAC,
	CRYPTO_SHA2_384_HMAC, CRYPTO_AES_NIST_GCM_16,
	CRYPTO_CHACHA20_POLY1305, 1, 26, 40, 42, -1,
};

static const int fz_lens[] = {
	0, 1, 4, 12, 15, 16, 17, 20, 24, 31, 32, 33, 48, 1024, 1025, -1,
	-1024, INT_MAX, INT_MIN, 64, 11, 13,
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
pick_int(struct fz_in *in, const int *table, size_t n)
{
	uint8_t sel = fz_u8(in);

	if (sel < 224)
		return table[sel % n];
	return (int)fz_u32(in);
}

/*
 * A key, IV or MAC-key buffer: NULL, or exactly declared bytes of input
 * (0 .. TLS_MAX_PARAM_SIZE), or for a declared length no caller could mean,
 * a few bytes.  *buf is what to free.
 */
static const uint8_t *
pick_buf(struct fz_in *in, int declared, uint8_t **buf)
{
	uint8_t mode = fz_u8(in);
	const uint8_t *src;
	size_t size, got;

	*buf = NULL;
	if (mode % 8 == 0)
		return NULL;
	if (declared >= 0 && declared <= TLS_MAX_PARAM_SIZE)
		size = (size_t)declared;
	else
		size = fz_u8(in) % 40;
	*buf = malloc(size > 0 ? size : 1);
	if (*buf == NULL)
		abort();
	src = fz_bytes(in, size, &got);
	memcpy(*buf, src, got);
	memset(*buf + got, 0x5a, size - got);
	/* A zero-length buffer: one past its end is all that is readable. */
	return size > 0 ? *buf : *buf + 1;
}

/* The rules of tls_record.h, checked in no particular order. */
static int
reference(const struct tls_enable *en)
{
	int mac_len;

	if (en->tls_vmajor != TLS_MAJOR_VER_ONE ||
	    en->tls_vminor < TLS_MINOR_VER_ZERO ||
	    en->tls_vminor > TLS_MINOR_VER_THREE)
		return EINVAL;
	if (en->auth_key_len < 0 || en->auth_key_len > TLS_MAX_PARAM_SIZE ||
	    en->cipher_key_len <= 0 ||
	    en->cipher_key_len > TLS_MAX_PARAM_SIZE || en->iv_len < 0 ||
	    en->iv_len > 16 || en->cipher_key == NULL || en->flags != 0)
		return EINVAL;
	switch (en->cipher_algorithm) {
	case CRYPTO_AES_NIST_GCM_16:
		if (en->auth_algorithm != 0 || en->auth_key_len != 0 ||
		    en->iv == NULL)
			return EINVAL;
		if (en->tls_vminor == TLS_MINOR_VER_TWO &&
		    en->iv_len != TLS_AEAD_GCM_LEN)
			return EINVAL;
		if (en->tls_vminor == TLS_MINOR_VER_THREE &&
		    en->iv_len != TLS_1_3_GCM_IV_LEN)
			return EINVAL;
		if (en->tls_vminor != TLS_MINOR_VER_TWO &&
		    en->tls_vminor != TLS_MINOR_VER_THREE)
			return EINVAL;
		if (en->cipher_key_len != 16 && en->cipher_key_len != 32)
			return EINVAL;
		return 0;
	case CRYPTO_CHACHA20_POLY1305:
		if (en->auth_algorithm != 0 || en->auth_key_len != 0 ||
		    en->iv == NULL || en->iv_len != TLS_CHACHA20_IV_LEN ||
		    en->cipher_key_len != 32)
			return EINVAL;
		if (en->tls_vminor != TLS_MINOR_VER_TWO &&
		    en->tls_vminor != TLS_MINOR_VER_THREE)
			return EINVAL;
		return 0;
	case CRYPTO_AES_CBC:
		if (en->auth_algorithm == CRYPTO_SHA1_HMAC)
			mac_len = 20;
		else if (en->auth_algorithm == CRYPTO_SHA2_256_HMAC)
			mac_len = 32;
		else if (en->auth_algorithm == CRYPTO_SHA2_384_HMAC)
			mac_len = 48;
		else
			return EINVAL;
		if (mac_len != 20 && en->tls_vminor != TLS_MINOR_VER_TWO)
			return EINVAL;
		if (en->auth_key == NULL || en->auth_key_len != mac_len)
			return EINVAL;
		if (en->tls_vminor == TLS_MINOR_VER_THREE)
			return EINVAL;
		if (en->tls_vminor == TLS_MINOR_VER_ZERO &&
		    (en->iv_len != TLS_CBC_IMPLICIT_IV_LEN || en->iv == NULL))
			return EINVAL;
		if (en->cipher_key_len != 16 && en->cipher_key_len != 32)
			return EINVAL;
		return en->tls_vminor == TLS_MINOR_VER_ZERO ?
		    EPROTONOSUPPORT : ENOTSUP;
	default:
		return EINVAL;
	}
}

static int
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void
check_success(const struct tls_enable *en, const struct tls_session_params *p)
{
	uint64_t seq = 0;
	int i, gcm12;

	FZ_ASSERT(p->cipher_key_len == en->cipher_key_len &&
	    p->iv_len == en->iv_len &&
	    p->cipher_algorithm == en->cipher_algorithm &&
	    p->tls_vmajor == en->tls_vmajor && p->tls_vminor == en->tls_vminor,
	    "fields not copied");
	FZ_ASSERT(memcmp(p->cipher_key, en->cipher_key,
	    (size_t)en->cipher_key_len) == 0, "key differs");
	FZ_ASSERT(all_zero(p->cipher_key + en->cipher_key_len,
	    sizeof(p->cipher_key) - (size_t)en->cipher_key_len),
	    "bytes after the key are not zero");
	FZ_ASSERT(memcmp(p->iv, en->iv, (size_t)en->iv_len) == 0,
	    "IV differs");
	FZ_ASSERT(all_zero(p->iv + en->iv_len,
	    sizeof(p->iv) - (size_t)en->iv_len),
	    "bytes after the IV are not zero");
	gcm12 = en->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
	    en->tls_vminor == TLS_MINOR_VER_TWO;
	FZ_ASSERT(p->tls_hlen == (gcm12 ? 13 : 5), "tls_hlen %u",
	    p->tls_hlen);
	FZ_ASSERT(p->tls_tlen == 16, "tls_tlen %u", p->tls_tlen);
	for (i = 0; i < 8; i++)
		seq = seq << 8 | en->rec_seq[i];
	FZ_ASSERT(p->initial_seqno == seq, "seqno %llu, want %llu",
	    (unsigned long long)p->initial_seqno, (unsigned long long)seq);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct tls_session_params p;
	struct tls_enable en;
	uint8_t *kbuf, *ivbuf, *abuf, sel;
	size_t got;
	const uint8_t *seq;
	int got_err, want;

	memset(&en, 0, sizeof(en));
	en.cipher_algorithm = pick_int(&in, fz_algs, NELEM(fz_algs));
	en.auth_algorithm = pick_int(&in, fz_algs, NELEM(fz_algs));
	en.cipher_key_len = pick_int(&in, fz_lens, NELEM(fz_lens));
	en.iv_len = pick_int(&in, fz_lens, NELEM(fz_lens));
	en.auth_key_len = pick_int(&in, fz_lens, NELEM(fz_lens));
	sel = fz_u8(&in);
	en.flags = sel < 240 ? 0 : (int)fz_u32(&in);
	sel = fz_u8(&in);
	en.tls_vmajor = sel < 240 ? TLS_MAJOR_VER_ONE : fz_u8(&in);
	sel = fz_u8(&in);
	en.tls_vminor = sel < 240 ? (uint8_t)(sel % 6) : fz_u8(&in);
	seq = fz_bytes(&in, 8, &got);
	memcpy(en.rec_seq, seq, got);
	en.cipher_key = pick_buf(&in, en.cipher_key_len, &kbuf);
	en.iv = pick_buf(&in, en.iv_len, &ivbuf);
	en.auth_key = pick_buf(&in, en.auth_key_len, &abuf);

	/* Poison the output so that a missed wipe shows. */
	memset(&p, 0xa5, sizeof(p));
	want = reference(&en);
	got_err = tls_params_from_enable(&en, &p);
	FZ_ASSERT(got_err == want, "engine %d, reference %d (cipher %d auth "
	    "%d key_len %d iv_len %d auth_len %d flags %d version %u.%u "
	    "key %p iv %p auth %p)", got_err, want, en.cipher_algorithm,
	    en.auth_algorithm, en.cipher_key_len, en.iv_len, en.auth_key_len,
	    en.flags, en.tls_vmajor, en.tls_vminor, (const void *)en.cipher_key,
	    (const void *)en.iv, (const void *)en.auth_key);
	if (got_err == 0)
		check_success(&en, &p);
	else
		FZ_ASSERT(all_zero(&p, sizeof(p)),
		    "parameters not wiped after error %d", got_err);
	tls_params_wipe(&p);
	FZ_ASSERT(all_zero(p.cipher_key, sizeof(p.cipher_key)) &&
	    all_zero(p.iv, sizeof(p.iv)), "tls_params_wipe left key bytes");

	/* The NULL arguments, on every input: cheap and never flaky. */
	memset(&p, 0xa5, sizeof(p));
	FZ_ASSERT(tls_params_from_enable(NULL, &p) == EINVAL &&
	    all_zero(&p, sizeof(p)), "NULL enable");
	FZ_ASSERT(tls_params_from_enable(&en, NULL) == EINVAL, "NULL params");

	free(kbuf);
	free(ivbuf);
	free(abuf);
	return 0;
}
