/*
 * TLS record protection parameters: validation of struct tls_enable, record
 * header checks, nonce and additional data per version and cipher, and the
 * TLS 1.3 inner content type.  Nothing here locks or allocates.
 */
#ifndef UKTLS_TLS_RECORD_H
#define UKTLS_TLS_RECORD_H

#include <stdint.h>

#include "uktls.h"

struct mbuf;

/* The 5-byte record header as on the wire; tls_length is big-endian. */
struct tls_record_layer {
	uint8_t tls_type;
	uint8_t tls_vmajor;
	uint8_t tls_vminor;
	uint16_t tls_length;
} __attribute__((packed));

#define TLS_HEADER_LEN 5
#define TLS_AEAD_TAG_LEN 16
#define TLS_GCM_EXPLICIT_NONCE_LEN 8
#define TLS_NONCE_LEN 12
#define TLS_MAX_AAD_LEN 13
#define TLS_MAX_KEY_LEN 32 /* the largest AEAD key uktls accepts */
/* RFC 8446 4.6.3: the handshake message type of a KeyUpdate. */
#define TLS_HS_KEY_UPDATE 24
/* RFC 8446 5.2: a TLSCiphertext fragment is at most 2^14 + 256 bytes. */
#define TLS13_MAX_CIPHERTEXT_LEN (TLS_MAX_MSG_SIZE_V10_2 + 256)

/*
 * A session's parameters, validated.  Keys are held here and wiped by
 * tls_params_wipe().  tls_hlen is the header plus any explicit nonce (13 for
 * TLS 1.2 AES-GCM, 5 otherwise); tls_tlen the trailer (the 16-byte tag).
 */
struct tls_session_params {
	uint8_t cipher_key[TLS_MAX_KEY_LEN];
	uint8_t iv[TLS_NONCE_LEN]; /* salt (4) for 1.2 GCM, else 12 bytes */
	int cipher_algorithm;
	int cipher_key_len;
	int iv_len;
	uint8_t tls_vmajor;
	uint8_t tls_vminor;
	uint8_t tls_hlen;
	uint8_t tls_tlen;
	uint64_t initial_seqno; /* from rec_seq */
};

/*
 * Validate a struct tls_enable for receive the way FreeBSD's ktls_enable_rx
 * and ktls_create_session do, and on success fill *p (keys copied).  Errors:
 *  EINVAL: flags != 0; cipher_key NULL or cipher_key_len not 16/32 (AES-GCM)
 *          or 32 (ChaCha) or outside 1..1024; iv NULL or iv_len wrong for the
 *          cipher/version (4 for 1.2 GCM, 12 for 1.3 GCM and ChaCha) or > 16;
 *          tls_vmajor != 3 or tls_vminor outside 1..4;
 *          AES-GCM or ChaCha on TLS 1.0 or 1.1; auth_algorithm != 0 with an
 *          AEAD cipher; CBC on TLS 1.3; CBC with SHA2-256/384 on 1.0/1.1;
 *          unknown cipher or auth algorithm; CBC auth key length wrong.
 *  EPROTONOSUPPORT: CBC on TLS 1.0 (FreeBSD has no RX for it).
 *  ENOTSUP: a valid AES-CBC combination (1.1/1.2): uktls does not decrypt
 *          CBC, as FreeBSD with CBC disabled.
 * p is wiped on failure.
 */
int tls_params_from_enable(const struct tls_enable *en,
    struct tls_session_params *p);

/*
 * Translate Linux's TLS_RX argument (optlen bytes at optval, a struct
 * tls12_crypto_info_*) into a struct tls_enable for tls_params_from_enable,
 * with the checks Linux's do_tls_setsockopt_conf makes, in its order:
 *  EINVAL: optval NULL or optlen < sizeof(struct tls_crypto_info); version
 *          not TLS 1.2 or 1.3; a cipher_type Linux does not know; ARIA with
 *          TLS 1.3; optlen not exactly the size of that cipher's structure.
 *  EOPNOTSUPP: a valid structure for a cipher Linux knows that uktls does
 *          not decrypt (AES-CCM, SM4-GCM, SM4-CCM, ARIA-GCM).
 * On success en->cipher_key points into optval and en->iv into optval or
 * ivbuf (TLS 1.3 AES-GCM: salt || iv), so both must outlive en; the caller
 * wipes ivbuf after use.  en is zeroed on failure and ivbuf left untouched.
 */
int tls_enable_from_crypto_info(const void *optval, socklen_t optlen,
    struct tls_enable *en, uint8_t ivbuf[TLS_NONCE_LEN]);

/* The largest of Linux's tls12_crypto_info_* structures uktls decrypts. */
#define TLS_LINUX_INFO_MAX sizeof(struct tls12_crypto_info_aes_gcm_256)

/*
 * The inverse, for Linux's TLS_RX read-back (do_tls_getsockopt_conf): at
 * out (TLS_LINUX_INFO_MAX bytes of room), the structure for p's cipher
 * with its key, salt and IV as TLS_RX gives them (TLS 1.2 AES-GCM's iv,
 * which a receiver does not use, from iv12; zero if NULL) and rec_seq seq.
 * Returns the structure's size, or 0 for a session Linux's structures
 * cannot describe.  The caller wipes out.
 */
size_t tls_crypto_info_from_params(const struct tls_session_params *p,
    const uint8_t *iv12, uint64_t seq, uint8_t *out);

/* Zero every secret in p (keys and IV), with a store the compiler keeps. */
void tls_params_wipe(struct tls_session_params *p);

/* Zero len bytes at ptr, a store the compiler may not remove. */
void tls_explicit_bzero(void *ptr, unsigned long len);

/*
 * Check a record header against the session, before the record is whole.
 * On success *reclen is the whole record's length, header included.  Errors
 * (the receive side is dead afterwards, as on FreeBSD):
 *  EINVAL: version is not the session's (TLS 1.3 records carry 3.3 on the
 *          wire); TLS 1.3 outer type is not 23 (application_data).
 *  EMSGSIZE: the length is shorter than the explicit nonce, or longer than
 *          the version allows (1.2: 2^14 + explicit nonce + tag; 1.3: 2^14 +
 *          256, RFC 8446).
 */
int tls_check_header(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint32_t *reclen);
/*
 * The same checks in Linux's order, for a socket enabled the Linux way:
 * EMSGSIZE for a length over the bound, EBADMSG for one shorter than the
 * explicit nonce and the tag, then EINVAL for the version or TLS 1.3
 * outer type.
 */
int tls_check_header_linux(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint32_t *reclen);

/*
 * Check that a whole record (reclen bytes with header) is long enough for
 * the cipher: at least header + explicit nonce + tag, and for TLS 1.3 one
 * more byte (the inner type).  EMSGSIZE if not; the connection survives.
 */
int tls_check_min_len(const struct tls_session_params *p, uint32_t reclen);

/*
 * The per-record nonce.  TLS 1.2 AES-GCM: salt || explicit_nonce (8 bytes
 * read from the record); everything else: iv XOR the big-endian seqno in the
 * last 8 bytes.  explicit_nonce is ignored except for 1.2 GCM.
 */
void tls_nonce(const struct tls_session_params *p,
    const uint8_t *explicit_nonce, uint64_t seqno,
    uint8_t nonce[TLS_NONCE_LEN]);

/*
 * The additional data.  TLS 1.2: seqno(8) | type | vmajor | vminor |
 * plaintext length(2), 13 bytes.  TLS 1.3: the 5-byte record header as
 * received.  Returns the AAD length.  payload_len is the ciphertext length
 * without explicit nonce and tag (= plaintext length for AEAD).
 */
unsigned int tls_aad(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint64_t seqno, uint32_t payload_len,
    uint8_t aad[TLS_MAX_AAD_LEN]);

/*
 * TLS 1.3 inner plaintext: len bytes at offset off of chain m are
 * content || type || zeros.  Find the last non-zero byte: *type is it and
 * *content_len the bytes before it.  EBADMSG if all bytes are zero (RFC 8446
 * 5.4: unexpected_message); EMSGSIZE if the content exceeds 2^14.
 */
int tls13_find_record_type(const struct mbuf *m, uint32_t off, uint32_t len,
    uint8_t *type, uint32_t *content_len);

#endif /* UKTLS_TLS_RECORD_H */
