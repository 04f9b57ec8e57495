/*
 * The hand-off helpers' TLS 1.3 rekey: Linux's TLS_RX argument for the
 * peer's next key, built the same way from either library's key and IV.
 * Included by each helper (each is its own library, so this is inline).
 */
#ifndef UKTLS_HANDOFF_REKEY_H
#define UKTLS_HANDOFF_REKEY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "uktls.h"

union ho_tls13_info {
	struct tls12_crypto_info_aes_gcm_128 g128;
	struct tls12_crypto_info_aes_gcm_256 g256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/*
 * Fill *ci for TLS 1.3 with key (key_len bytes), the 12-byte static iv
 * (AES-GCM: the first 4 bytes as salt, the rest as iv; ChaCha20: whole)
 * and rec_seq (8 bytes, big-endian; NULL for 0).  Returns the length to
 * give TLS_RX, or 0 for a key length the cipher does not have.  The
 * caller wipes *ci.
 */
static inline socklen_t
ho_tls13_info(union ho_tls13_info *ci, int chacha, const uint8_t *key,
    size_t key_len, const uint8_t *iv, const uint8_t *rec_seq)
{
	static const uint8_t zero[8];

	memset(ci, 0, sizeof(*ci));
	if (rec_seq == NULL)
		rec_seq = zero;
	if (chacha) {
		if (key_len != sizeof(ci->chacha.key))
			return 0;
		ci->chacha.info.version = TLS_1_3_VERSION;
		ci->chacha.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci->chacha.iv, iv, sizeof(ci->chacha.iv));
		memcpy(ci->chacha.key, key, key_len);
		memcpy(ci->chacha.rec_seq, rec_seq, sizeof(ci->chacha.rec_seq));
		return sizeof(ci->chacha);
	}
	if (key_len == sizeof(ci->g128.key)) {
		ci->g128.info.version = TLS_1_3_VERSION;
		ci->g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci->g128.salt, iv, sizeof(ci->g128.salt));
		memcpy(ci->g128.iv, iv + sizeof(ci->g128.salt),
		    sizeof(ci->g128.iv));
		memcpy(ci->g128.key, key, key_len);
		memcpy(ci->g128.rec_seq, rec_seq, sizeof(ci->g128.rec_seq));
		return sizeof(ci->g128);
	}
	if (key_len == sizeof(ci->g256.key)) {
		ci->g256.info.version = TLS_1_3_VERSION;
		ci->g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci->g256.salt, iv, sizeof(ci->g256.salt));
		memcpy(ci->g256.iv, iv + sizeof(ci->g256.salt),
		    sizeof(ci->g256.iv));
		memcpy(ci->g256.key, key, key_len);
		memcpy(ci->g256.rec_seq, rec_seq, sizeof(ci->g256.rec_seq));
		return sizeof(ci->g256);
	}
	return 0;
}

#endif /* UKTLS_HANDOFF_REKEY_H */
