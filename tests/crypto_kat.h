/*
 * Known-answer support for the crypto backend tests: the six suites, a
 * reproducible random source, a record sealer on OpenSSL EVP that shares no
 * code with the backends under test, and mbuf chains laid out at will.
 */
#ifndef UKTLS_TEST_CRYPTO_KAT_H
#define UKTLS_TEST_CRYPTO_KAT_H

#include <stdint.h>

#include <openssl/evp.h>

#include "mbuf.h"
#include "tls_record.h"

/* A record at its largest: header, explicit nonce, 2^14 + 256, tag. */
#define REC_MAX (TLS_HEADER_LEN + TLS_GCM_EXPLICIT_NONCE_LEN + \
	TLS13_MAX_CIPHERTEXT_LEN + TLS_AEAD_TAG_LEN)
#define SEG_MAX 4096

struct kat_suite {
	const char *name;
	int cipher;
	int key_len;
	int minor;
};

#define KAT_NSUITES 6
extern struct kat_suite kat_suites[KAT_NSUITES];

/* Seed from UKTLS_TEST_SEED or the clock; prog names the seed's line. */
void kat_rng_init(const char *prog);
uint64_t kat_rng_next(void);
uint32_t kat_rng_below(uint32_t n);
void kat_rng_bytes(void *buf, size_t len);

const EVP_CIPHER *kat_cipher(const struct kat_suite *su);

/*
 * Seal one record of content type type into rec and return its length.
 * TLS 1.3 records hold content || type || pad zero bytes.  For TLS 1.2
 * AES-GCM (hlen 13) the explicit nonce is random, as a sender may choose
 * it.  The bytes the backend should leave between header and tag go to
 * payload, their count to *payload_len.
 */
uint32_t kat_seal(const struct kat_suite *su, const uint8_t *key,
    const uint8_t *iv, uint32_t hlen, uint64_t seqno, uint8_t type,
    const uint8_t *content, uint32_t content_len, uint32_t pad, uint8_t *rec,
    uint8_t *payload, uint32_t *payload_len);

/*
 * Lay buf into a chain of nseg mbufs of lens[i] bytes each: inline storage
 * when it fits, else a 2 KiB or 16 KiB cluster, starting at odd offsets.
 */
struct mbuf *kat_chain(const uint8_t *buf, const uint32_t *lens,
    unsigned int nseg);

#endif /* UKTLS_TEST_CRYPTO_KAT_H */
