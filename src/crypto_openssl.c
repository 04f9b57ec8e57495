/*
 * The OpenSSL 3 libcrypto backend: AES-128-GCM, AES-256-GCM and
 * ChaCha20-Poly1305 for TLS 1.2 and 1.3, decrypted in place over the mbuf
 * chain of a record, in the role of FreeBSD's ktls_ocf.c.
 *
 * A session owns one EVP_CIPHER_CTX with its key schedule set up once.  Each
 * record only loads a new nonce, feeds the additional data, and runs the
 * cipher over each mbuf's share of the payload; the explicit nonce and the
 * tag, which may be split across mbufs, are copied into stack buffers.
 * Nothing is allocated per record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "kassert.h"
#include "mbuf.h"
#include "tls_record.h"

static const EVP_CIPHER *
ossl_cipher(const struct tls_session_params *p)
{
	switch (p->cipher_algorithm) {
	case CRYPTO_AES_NIST_GCM_16:
		if (p->cipher_key_len == 16)
			return EVP_aes_128_gcm();
		if (p->cipher_key_len == 32)
			return EVP_aes_256_gcm();
		break;
	case CRYPTO_CHACHA20_POLY1305:
		/* NULL when libcrypto was built without ChaCha. */
		if (p->cipher_key_len == 32)
			return EVP_chacha20_poly1305();
		break;
	}
	return NULL;
}

static int
ossl_probe(const struct tls_session_params *p)
{
	if (p->tls_vmajor != TLS_MAJOR_VER_ONE ||
	    (p->tls_vminor != TLS_MINOR_VER_TWO &&
	    p->tls_vminor != TLS_MINOR_VER_THREE))
		return ENOTSUP;
	if (p->tls_tlen != TLS_AEAD_TAG_LEN)
		return ENOTSUP;
	if (ossl_cipher(p) == NULL)
		return ENOTSUP;
	return 0;
}

static int
ossl_setup(const struct tls_session_params *p, void **cookie)
{
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *ctx;
	int error;

	*cookie = NULL;
	cipher = ossl_cipher(p);
	if (cipher == NULL)
		return ENOTSUP;

	/*
	 * setup runs on the application's thread, whose OpenSSL error queue
	 * may matter to its own TLS library: take back whatever we add.
	 */
	ERR_set_mark();
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL) {
		error = ENOMEM;
		goto out;
	}

	/*
	 * Both AEADs take a 12-byte nonce (RFC 5288, RFC 7905, RFC 8446);
	 * set the length explicitly rather than rely on the default, then
	 * the key, once.  Records later pass only the nonce, which keeps the
	 * key schedule.
	 */
	if (EVP_DecryptInit_ex(ctx, cipher, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, TLS_NONCE_LEN,
	    NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, p->cipher_key, NULL) != 1) {
		error = ENOMEM;
		goto out;
	}
	*cookie = ctx;
	ctx = NULL;
	error = 0;
out:
	/* Frees and wipes a context that was not handed out; NULL is fine. */
	EVP_CIPHER_CTX_free(ctx);
	ERR_pop_to_mark();
	return error;
}

static void
ossl_teardown(void *cookie)
{
	/* EVP_CIPHER_CTX_free cleanses the key schedule before freeing. */
	EVP_CIPHER_CTX_free(cookie);
}

static int
ossl_decrypt(void *cookie, const struct tls_session_params *p,
    const struct tls_record_layer *hdr, struct mbuf *m, uint64_t seqno,
    int *trailer_len)
{
	EVP_CIPHER_CTX *ctx = cookie;
	struct ktls_aead_input in;
	uint8_t fin[TLS_AEAD_TAG_LEN];
	struct ktls_seg_cursor cur;
	uint8_t *buf;
	uint32_t n;
	int error, outl;

	/*
	 * decrypt may run on a thread of the application's (see ossl_setup);
	 * leave its error queue as it was.
	 */
	ERR_set_mark();

	ktls_aead_input(p, hdr, m, seqno, &in);

	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, in.ai_nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, in.ai_aad,
	    (int)in.ai_aadlen) != 1) {
		error = ENOMEM;
		goto out;
	}

	/*
	 * Decrypt each mbuf's share of [tls_hlen, end) where it lies.  Both
	 * ciphers are stream ciphers to EVP: every call returns as many bytes
	 * as it was given, whatever the split, so the output lands exactly
	 * over the input.
	 */
	ktls_seg_init(&cur, m, p->tls_hlen, in.ai_end);
	while ((buf = ktls_seg_next(&cur, &n)) != NULL) {
		if (EVP_DecryptUpdate(ctx, buf, &outl, buf, (int)n) != 1 ||
		    outl != (int)n) {
			error = ENOMEM;
			goto out;
		}
	}

	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
	    sizeof(in.ai_tag), in.ai_tag) != 1) {
		error = ENOMEM;
		goto out;
	}
	/* libcrypto compares the tag in constant time. */
	if (EVP_DecryptFinal_ex(ctx, fin, &outl) != 1) {
		error = EBADMSG;
		goto out;
	}
	*trailer_len = p->tls_tlen;
	error = 0;
out:
	/* Plaintext written before the check failed (or the cipher did)
	 * stays in no pooled memory. */
	if (error != 0)
		ktls_wipe_range(m, p->tls_hlen, in.ai_end);
	tls_explicit_bzero(&in, sizeof(in));
	tls_explicit_bzero(fin, sizeof(fin));
	ERR_pop_to_mark();
	return error;
}

const struct ktls_crypto_backend ktls_crypto_openssl = {
	.name = "openssl",
	.probe = ossl_probe,
	.setup = ossl_setup,
	.teardown = ossl_teardown,
	/* An EVP_CIPHER_CTX holds the record under way. */
	.shared_cookie = 0,
	.decrypt = ossl_decrypt,
};
