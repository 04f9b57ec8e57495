/*
 * Choice of the crypto backend for a session.  Backends are tried in the
 * order of the table below and the first whose probe accepts the session's
 * parameters decrypts it; faster, narrower backends go in front of the
 * general OpenSSL one, which stays last as the fallback.
 */
#include <stddef.h>
#include <string.h>

#include "crypto.h"
#include "tls_record.h"

static const struct ktls_crypto_backend *const ktls_crypto_backends[] = {
	&ktls_crypto_openssl,
};

#define KTLS_CRYPTO_NBACKENDS \
	(sizeof(ktls_crypto_backends) / sizeof(ktls_crypto_backends[0]))

const struct ktls_crypto_backend *
ktls_crypto_select(const struct tls_session_params *p)
{
	size_t i;

	for (i = 0; i < KTLS_CRYPTO_NBACKENDS; i++)
		if (ktls_crypto_backends[i]->probe(p) == 0)
			return ktls_crypto_backends[i];
	return NULL;
}

const char *
ktls_crypto_default_name(void)
{
	const struct ktls_crypto_backend *be;
	struct tls_session_params p;

	/*
	 * Probes look at the algorithm, key length and version only, so a
	 * zero key stands in for the most common suite.
	 */
	memset(&p, 0, sizeof(p));
	p.cipher_algorithm = CRYPTO_AES_NIST_GCM_16;
	p.cipher_key_len = 16;
	p.iv_len = TLS_1_3_GCM_IV_LEN;
	p.tls_vmajor = TLS_MAJOR_VER_ONE;
	p.tls_vminor = TLS_MINOR_VER_THREE;
	p.tls_hlen = TLS_HEADER_LEN;
	p.tls_tlen = TLS_AEAD_TAG_LEN;
	be = ktls_crypto_select(&p);
	return be != NULL ? be->name : "none";
}
