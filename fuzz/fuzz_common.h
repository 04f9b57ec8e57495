/*
 * Helpers shared by the libFuzzer targets under fuzz/.
 *
 *  - fz_in: takes typed values from the front of the fuzzer's input, and
 *    zeros once the input runs out, so that every input is a valid program
 *    for a target and short inputs still mean something.
 *  - fz_rng: a small deterministic generator seeded from the input, for
 *    choices that should vary with the input without costing input bytes
 *    (payload bytes, buffer sizes).
 *  - The six AEAD suites with fixed keys: a fixed key lets the fuzzer keep
 *    valid records it found in its corpus and splice them.
 *  - Reference models of the header and length rules and a one-shot AEAD
 *    seal/open on contiguous buffers with OpenSSL EVP.  They are written
 *    from the specification (tls_record.h, RFC 5246 6.2, RFC 8446 5) and not
 *    from the engine's code, so a target compares two independent
 *    implementations of the same rules.
 *
 * Everything is static inline: each target includes what it needs and the
 * rest costs nothing.
 */
#ifndef UKTLS_FUZZ_COMMON_H
#define UKTLS_FUZZ_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "uktls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report a broken property and stop: libFuzzer saves the input. */
#define FZ_ASSERT(cond, ...)                                               \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__,     \
			    __LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			abort();                                           \
		}                                                          \
	} while (0)

/* ---- input ---------------------------------------------------------- */

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t
fz_u8(struct fz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t
fz_u16(struct fz_in *in)
{
	uint16_t hi = fz_u8(in);

	return (uint16_t)(hi << 8 | fz_u8(in));
}

static inline uint32_t
fz_u32(struct fz_in *in)
{
	uint32_t hi = fz_u16(in);

	return hi << 16 | fz_u16(in);
}

static inline uint64_t
fz_u64(struct fz_in *in)
{
	uint64_t hi = fz_u32(in);

	return hi << 32 | fz_u32(in);
}

/* Up to want bytes of input, in place; *got says how many. */
static inline const uint8_t *
fz_bytes(struct fz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;

	if (want > in->n)
		want = in->n;
	in->p += want;
	in->n -= want;
	*got = want;
	return p;
}

/* ---- deterministic randomness ---------------------------------------- */

struct fz_rng {
	uint64_t s;
};

/* splitmix64. */
static inline uint64_t
fz_rng_next(struct fz_rng *r)
{
	uint64_t z;

	z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A value in [0, n); 0 when n is 0. */
static inline uint64_t
fz_rng_below(struct fz_rng *r, uint64_t n)
{
	return n == 0 ? 0 : fz_rng_next(r) % n;
}

static inline void
fz_rng_fill(struct fz_rng *r, uint8_t *buf, size_t len)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = fz_rng_next(r);
		buf[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

/* ---- suites ---------------------------------------------------------- */

#define FZ_NSUITES 6
#define FZ_HDR 5
#define FZ_TAG 16
#define FZ_MAX_PLAIN 16384
#define FZ_TLS13_MAX_CT (FZ_MAX_PLAIN + 256)
/* The largest record any suite accepts, header included. */
#define FZ_MAX_RECORD (FZ_HDR + FZ_TLS13_MAX_CT)

struct fz_suite {
	const char *name;
	int cipher;   /* CRYPTO_AES_NIST_GCM_16 or CRYPTO_CHACHA20_POLY1305 */
	int key_len;  /* 16 or 32 */
	uint8_t minor; /* TLS_MINOR_VER_TWO or TLS_MINOR_VER_THREE */
};

static const struct fz_suite fz_suites[FZ_NSUITES] = {
	{ "tls12_aes128_gcm", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_TWO },
	{ "tls12_aes256_gcm", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_TWO },
	{ "tls12_chacha20", CRYPTO_CHACHA20_POLY1305, 32, TLS_MINOR_VER_TWO },
	{ "tls13_aes128_gcm", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE },
	{ "tls13_aes256_gcm", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_THREE },
	{ "tls13_chacha20", CRYPTO_CHACHA20_POLY1305, 32, TLS_MINOR_VER_THREE },
};

/* The fixed key and IV every fuzz session uses. */
static const uint8_t fz_key[32] = {
	0x6b, 0x65, 0x79, 0x21, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc,
	0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x0f, 0x1e,
	0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4,
};
static const uint8_t fz_iv[12] = {
	0x69, 0x76, 0x21, 0x5a, 0xc3, 0x3c, 0xa5, 0x5a, 0x0f, 0xf0, 0x11,
	0xee,
};

static inline int
fz_tls13(const struct fz_suite *s)
{
	return s->minor == TLS_MINOR_VER_THREE;
}

/* Bytes of explicit nonce after the header: TLS 1.2 AES-GCM only. */
static inline uint32_t
fz_nonce_len(const struct fz_suite *s)
{
	return !fz_tls13(s) && s->cipher == CRYPTO_AES_NIST_GCM_16 ? 8 : 0;
}

static inline int
fz_iv_len(const struct fz_suite *s)
{
	return fz_nonce_len(s) != 0 ? TLS_AEAD_GCM_LEN : 12;
}

/* A struct tls_enable for suite s starting at seqno. */
static inline void
fz_enable(const struct fz_suite *s, uint64_t seqno, struct tls_enable *en)
{
	int i;

	memset(en, 0, sizeof(*en));
	en->cipher_key = fz_key;
	en->cipher_key_len = s->key_len;
	en->iv = fz_iv;
	en->iv_len = fz_iv_len(s);
	en->cipher_algorithm = s->cipher;
	en->tls_vmajor = TLS_MAJOR_VER_ONE;
	en->tls_vminor = s->minor;
	for (i = 0; i < 8; i++)
		en->rec_seq[i] = (uint8_t)(seqno >> (56 - 8 * i));
}

/* ---- reference rules -------------------------------------------------- */

/*
 * What tls_check_header must answer for the 5 header bytes h: the wire
 * version is 3.3 for both TLS 1.2 and 1.3 (RFC 8446 5.1), TLS 1.3's outer
 * type is application_data, and the length lies between the explicit nonce
 * and the version's maximum (1.2: nonce + 2^14 + tag; 1.3: 2^14 + 256).
 * linux_order: what tls_check_header_linux must answer, Linux's order,
 * the length first, and under the nonce and the tag it is EBADMSG.
 */
static inline int
fz_ref_header_order(const struct fz_suite *s, const uint8_t *h,
    uint32_t *reclen, int linux_order)
{
	uint32_t len, max;

	len = (uint32_t)h[3] << 8 | h[4];
	max = fz_tls13(s) ? FZ_TLS13_MAX_CT :
	    fz_nonce_len(s) + FZ_MAX_PLAIN + FZ_TAG;
	if (linux_order && len > max)
		return EMSGSIZE;
	if (linux_order && len < fz_nonce_len(s) + FZ_TAG)
		return EBADMSG;
	if (h[1] != TLS_MAJOR_VER_ONE || h[2] != TLS_MINOR_VER_TWO)
		return EINVAL;
	if (fz_tls13(s) && h[0] != TLS_RLTYPE_APP)
		return EINVAL;
	if (len < fz_nonce_len(s) || len > max)
		return EMSGSIZE;
	*reclen = FZ_HDR + len;
	return 0;
}


static inline int
fz_ref_header(const struct fz_suite *s, const uint8_t *h, uint32_t *reclen)
{
	return fz_ref_header_order(s, h, reclen, 0);
}

/* Linux's order: the length's bounds (under nonce + tag: EBADMSG) first. */
static inline int
fz_ref_header_linux(const struct fz_suite *s, const uint8_t *h,
    uint32_t *reclen)
{
	return fz_ref_header_order(s, h, reclen, 1);
}

/* What tls_check_min_len must answer for a whole record of reclen bytes. */
static inline int
fz_ref_min_len(const struct fz_suite *s, uint32_t reclen)
{
	uint32_t min = FZ_HDR + fz_nonce_len(s) + FZ_TAG +
	    (fz_tls13(s) ? 1 : 0);

	return reclen < min ? EMSGSIZE : 0;
}

/* ---- one-shot AEAD on contiguous buffers -------------------------------- */

static inline const EVP_CIPHER *
fz_evp(const struct fz_suite *s)
{
	if (s->cipher == CRYPTO_CHACHA20_POLY1305)
		return EVP_chacha20_poly1305();
	return s->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
}

static inline void
fz_be64enc(uint8_t *b, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
}

/*
 * The nonce and additional data of record seqno.  explicit_nonce is the 8
 * bytes after the header for TLS 1.2 GCM; ptlen is the plaintext length
 * (1.2) and hdr the header as sent (1.3).  Returns the AAD length.
 */
static inline int
fz_nonce_aad(const struct fz_suite *s, uint64_t seqno, const uint8_t *hdr,
    const uint8_t *explicit_nonce, uint32_t ptlen, uint8_t nonce[12],
    uint8_t aad[13])
{
	uint8_t seq[8];
	int i;

	fz_be64enc(seq, seqno);
	if (fz_nonce_len(s) != 0) {
		memcpy(nonce, fz_iv, 4);
		memcpy(nonce + 4, explicit_nonce, 8);
	} else {
		memcpy(nonce, fz_iv, 12);
		for (i = 0; i < 8; i++)
			nonce[4 + i] ^= seq[i];
	}
	if (fz_tls13(s)) {
		memcpy(aad, hdr, FZ_HDR);
		return FZ_HDR;
	}
	memcpy(aad, seq, 8);
	aad[8] = hdr[0];
	aad[9] = hdr[1];
	aad[10] = hdr[2];
	aad[11] = (uint8_t)(ptlen >> 8);
	aad[12] = (uint8_t)ptlen;
	return 13;
}

/*
 * Build one record of suite s: type (the inner type for 1.3), len payload
 * bytes, pad zeros (1.3 only), sealed with seqno.  out must hold
 * FZ_HDR + 8 + len + 1 + pad + FZ_TAG bytes.  Returns the record's length.
 * The header's length field is whatever the record needs, even past the
 * legal maximum, so that a caller may build oversized records.
 */
static inline size_t
fz_seal(EVP_CIPHER_CTX *ctx, const struct fz_suite *s, uint64_t seqno,
    uint8_t type, const uint8_t *payload, size_t len, size_t pad,
    uint8_t *out)
{
	static const uint8_t zeros[256];
	uint8_t nonce[12], aad[13], *ct;
	size_t body, reclen;
	int aadlen, outl;

	if (!fz_tls13(s))
		pad = 0;
	body = fz_nonce_len(s) + len + (fz_tls13(s) ? 1 + pad : 0) + FZ_TAG;
	reclen = FZ_HDR + body;
	out[0] = fz_tls13(s) ? TLS_RLTYPE_APP : type;
	out[1] = TLS_MAJOR_VER_ONE;
	out[2] = TLS_MINOR_VER_TWO;
	out[3] = (uint8_t)(body >> 8);
	out[4] = (uint8_t)body;
	/* The explicit nonce is the sequence number, as OpenSSL sends it. */
	if (fz_nonce_len(s) != 0)
		fz_be64enc(out + FZ_HDR, seqno);
	aadlen = fz_nonce_aad(s, seqno, out, out + FZ_HDR, (uint32_t)len,
	    nonce, aad);
	ct = out + FZ_HDR + fz_nonce_len(s);
	if (EVP_EncryptInit_ex(ctx, fz_evp(s), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, fz_key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, aad, aadlen) != 1)
		abort();
	if (len > 0 && EVP_EncryptUpdate(ctx, ct, &outl, payload,
	    (int)len) != 1)
		abort();
	ct += len;
	if (fz_tls13(s)) {
		if (EVP_EncryptUpdate(ctx, ct, &outl, &type, 1) != 1)
			abort();
		ct++;
		if (pad > 0 && EVP_EncryptUpdate(ctx, ct, &outl, zeros,
		    (int)pad) != 1)
			abort();
		ct += pad;
	}
	if (EVP_EncryptFinal_ex(ctx, ct, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FZ_TAG, ct) != 1)
		abort();
	return reclen;
}

/*
 * Open the whole record rec (reclen bytes, a length the header rules
 * accept and at least the minimum) as record seqno.  On success the
 * plaintext (after nonce, before tag) is in pt and *ptlen its length:
 * returns 0, or EBADMSG when authentication fails.
 */
static inline int
fz_open(EVP_CIPHER_CTX *ctx, const struct fz_suite *s, uint64_t seqno,
    const uint8_t *rec, uint32_t reclen, uint8_t *pt, uint32_t *ptlen)
{
	uint8_t nonce[12], aad[13], tag[FZ_TAG];
	uint32_t off = FZ_HDR + fz_nonce_len(s), n;
	int aadlen, outl;

	n = reclen - off - FZ_TAG;
	aadlen = fz_nonce_aad(s, seqno, rec, rec + FZ_HDR, n, nonce, aad);
	memcpy(tag, rec + reclen - FZ_TAG, FZ_TAG);
	if (EVP_DecryptInit_ex(ctx, fz_evp(s), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, fz_key, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, aad, aadlen) != 1)
		abort();
	if (n > 0 && EVP_DecryptUpdate(ctx, pt, &outl, rec + off,
	    (int)n) != 1)
		abort();
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FZ_TAG, tag) != 1)
		abort();
	if (EVP_DecryptFinal_ex(ctx, pt + n, &outl) != 1)
		return EBADMSG;
	*ptlen = n;
	return 0;
}

/*
 * RFC 8446 5.4: the content type of a TLS 1.3 inner plaintext is its last
 * non-zero byte.  Returns 0 with *type and *content_len, EBADMSG when all
 * bytes are zero, EMSGSIZE when the content is longer than 2^14.
 */
static inline int
fz_ref_inner_type(const uint8_t *pt, uint32_t len, uint8_t *type,
    uint32_t *content_len)
{
	uint32_t i = len;

	while (i > 0 && pt[i - 1] == 0)
		i--;
	if (i == 0)
		return EBADMSG;
	if (i - 1 > FZ_MAX_PLAIN)
		return EMSGSIZE;
	*type = pt[i - 1];
	*content_len = i - 1;
	return 0;
}

#endif /* UKTLS_FUZZ_COMMON_H */
