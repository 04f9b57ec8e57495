/* Known-answer support for the crypto backend tests (crypto_kat.h). */
#include "crypto_kat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kat_suite kat_suites[KAT_NSUITES] = {
	{ "aes128_gcm_1_2", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_TWO },
	{ "aes256_gcm_1_2", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_TWO },
	{ "chacha20_poly1305_1_2", CRYPTO_CHACHA20_POLY1305, 32,
	    TLS_MINOR_VER_TWO },
	{ "aes128_gcm_1_3", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE },
	{ "aes256_gcm_1_3", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_THREE },
	{ "chacha20_poly1305_1_3", CRYPTO_CHACHA20_POLY1305, 32,
	    TLS_MINOR_VER_THREE },
};

static uint64_t kat_rng_state;

uint64_t
kat_rng_next(void)
{
	uint64_t z;

	/* splitmix64 */
	z = (kat_rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint32_t
kat_rng_below(uint32_t n)
{
	return (uint32_t)(kat_rng_next() % n);
}

void
kat_rng_bytes(void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)kat_rng_next();
}

void
kat_rng_init(const char *prog)
{
	const char *env;
	uint64_t seed;

	env = getenv("UKTLS_TEST_SEED");
	if (env != NULL)
		seed = strtoull(env, NULL, 0);
	else
		seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
	kat_rng_state = seed;
	fprintf(stderr, "%s: UKTLS_TEST_SEED=%" PRIu64 "\n", prog, seed);
}

const EVP_CIPHER *
kat_cipher(const struct kat_suite *su)
{
	if (su->cipher == CRYPTO_CHACHA20_POLY1305)
		return EVP_chacha20_poly1305();
	return su->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
}

/*
 * Seal one record of content type type into rec and return its length.
 * TLS 1.3 records hold content || type || pad zero bytes.  For TLS 1.2
 * AES-GCM the explicit nonce is random, as a sender may choose it.  The
 * bytes the backend should leave between header and tag go to payload,
 * their count to *payload_len.
 */
uint32_t
kat_seal(const struct kat_suite *su, const uint8_t *key, const uint8_t *iv,
    uint32_t hlen, uint64_t seqno, uint8_t type, const uint8_t *content,
    uint32_t content_len, uint32_t pad, uint8_t *rec, uint8_t *payload,
    uint32_t *payload_len)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t aad[13], nonce[12];
	uint32_t len, plen, reclen;
	int aadlen, i, outl;
	int tls13;

	tls13 = su->minor == TLS_MINOR_VER_THREE;
	memcpy(payload, content, content_len);
	plen = content_len;
	if (tls13) {
		payload[plen++] = type;
		memset(payload + plen, 0, pad);
		plen += pad;
	}
	*payload_len = plen;
	reclen = hlen + plen + TLS_AEAD_TAG_LEN;
	len = reclen - TLS_HEADER_LEN;
	if (reclen > REC_MAX)
		abort();

	rec[0] = tls13 ? TLS_RLTYPE_APP : type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)(len >> 8);
	rec[4] = (uint8_t)len;

	if (hlen == 13) {
		/* RFC 5288: salt || explicit nonce carried in the record. */
		kat_rng_bytes(rec + 5, 8);
		memcpy(nonce, iv, 4);
		memcpy(nonce + 4, rec + 5, 8);
	} else {
		/* RFC 8446 5.3, RFC 7905: iv xor seqno. */
		memcpy(nonce, iv, 12);
		for (i = 0; i < 8; i++)
			nonce[4 + i] ^= (uint8_t)(seqno >> (56 - 8 * i));
	}
	if (tls13) {
		memcpy(aad, rec, 5);
		aadlen = 5;
	} else {
		for (i = 0; i < 8; i++)
			aad[i] = (uint8_t)(seqno >> (56 - 8 * i));
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (uint8_t)(plen >> 8);
		aad[12] = (uint8_t)plen;
		aadlen = 13;
	}

	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_EncryptInit_ex(ctx, kat_cipher(su), NULL, NULL,
	    NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, aad, aadlen) != 1 ||
	    EVP_EncryptUpdate(ctx, rec + hlen, &outl, payload,
	    (int)plen) != 1 || (uint32_t)outl != plen ||
	    EVP_EncryptFinal_ex(ctx, rec + hlen + plen, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16,
	    rec + hlen + plen) != 1)
		abort();
	EVP_CIPHER_CTX_free(ctx);
	return reclen;
}

/*
 * Lay buf into a chain of nseg mbufs of lens[i] bytes each: inline storage
 * when it fits, else a 2 KiB or 16 KiB cluster.  Where room allows, the
 * data starts a few bytes into the storage, so that segments begin at odd
 * addresses as after m_adj or m_split.
 */
struct mbuf *
kat_chain(const uint8_t *buf, const uint32_t *lens, unsigned int nseg)
{
	struct mbuf *head, **tailp, *m;
	uint32_t lead;
	unsigned int i;

	head = NULL;
	tailp = &head;
	for (i = 0; i < nseg; i++) {
		if (lens[i] <= (uint32_t)MLEN)
			m = m_get(MT_DATA);
		else if (lens[i] <= MCLBYTES)
			m = m_getcl(MT_DATA, MCLBYTES);
		else if (lens[i] <= MJUMTLSBYTES)
			m = m_getcl(MT_DATA, MJUMTLSBYTES);
		else
			m = NULL;
		if (m == NULL)
			abort();
		lead = (i * 5 + lens[i]) % 8;
		if (lens[i] + lead <= m_bufsize(m))
			m->m_data += lead;
		memcpy(m->m_data, buf, lens[i]);
		m->m_len = lens[i];
		buf += lens[i];
		*tailp = m;
		tailp = &m->m_next;
	}
	return head;
}

