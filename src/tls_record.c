/*
 * TLS record protection parameters: the checks FreeBSD makes of a struct
 * tls_enable in ktls_create_session() and ktls_ocf_try(), the header checks
 * of ktls_decrypt(), and the nonce, additional data and TLS 1.3 inner
 * content type of each record.  Nothing here locks or allocates, so every
 * function may run on a worker with no lock held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kassert.h"
#include "mbuf.h"
#include "tls_record.h"

/*
 * The largest key, authentication key or IV length a caller may name at all
 * (FreeBSD's TLS_MAX_PARAM_SIZE in sys/sys/ktls.h), and the largest iv_len
 * (FreeBSD keeps the IV in a 16-byte array).  Lengths inside these bounds
 * but wrong for the cipher are rejected by the per-cipher checks.
 */
#define TLS_ENABLE_MAX_PARAM_LEN TLS_MAX_PARAM_SIZE
#define TLS_ENABLE_MAX_IV_LEN 16

/* HMAC key lengths for AES-CBC suites: TLS MAC keys are one hash long. */
#define TLS_SHA1_HASH_LEN 20
#define TLS_SHA2_256_HASH_LEN 32
#define TLS_SHA2_384_HASH_LEN 48

/* AES key lengths the AEAD and CBC suites use (128 and 256 bits). */
#define TLS_AES128_KEY_LEN 16
#define TLS_AES256_KEY_LEN 32
#define TLS_CHACHA20_KEY_LEN 32

/*
 * How many mbuf segments tls13_find_record_type() gathers on the stack
 * before it scans them backwards.  A record is normally a handful of
 * clusters, so one window covers it; longer chains are scanned one window
 * at a time.
 */
#define TLS13_SCAN_WINDOW 64

static inline uint64_t
tls_be64dec(const uint8_t *b)
{
	uint64_t v;
	int i;

	v = 0;
	for (i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

static inline void
tls_be64enc(uint8_t *b, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline int
tls_aes_key_len_ok(int len)
{
	return len == TLS_AES128_KEY_LEN || len == TLS_AES256_KEY_LEN;
}

/*
 * AES-GCM (RFC 5288 for TLS 1.2, RFC 8446 for TLS 1.3).  FreeBSD checks the
 * version here, in ktls_create_session(), so GCM on TLS 1.0 or 1.1 is
 * EINVAL, and the key size later, in ktls_ocf_try(), also EINVAL.
 */
static int
tls_enable_check_gcm(const struct tls_enable *en)
{
	if (en->auth_algorithm != 0 || en->auth_key_len != 0)
		return EINVAL;
	switch (en->tls_vminor) {
	case TLS_MINOR_VER_TWO:
		if (en->iv_len != TLS_AEAD_GCM_LEN)
			return EINVAL;
		break;
	case TLS_MINOR_VER_THREE:
		if (en->iv_len != TLS_1_3_GCM_IV_LEN)
			return EINVAL;
		break;
	default:
		return EINVAL;
	}
	if (en->iv == NULL)
		return EINVAL;
	if (!tls_aes_key_len_ok(en->cipher_key_len))
		return EINVAL;
	return 0;
}

/* ChaCha20-Poly1305 (RFC 7905 for TLS 1.2, RFC 8446 for TLS 1.3). */
static int
tls_enable_check_chacha(const struct tls_enable *en)
{
	if (en->auth_algorithm != 0 || en->auth_key_len != 0)
		return EINVAL;
	if (en->tls_vminor != TLS_MINOR_VER_TWO &&
	    en->tls_vminor != TLS_MINOR_VER_THREE)
		return EINVAL;
	if (en->iv_len != TLS_CHACHA20_IV_LEN || en->iv == NULL)
		return EINVAL;
	if (en->cipher_key_len != TLS_CHACHA20_KEY_LEN)
		return EINVAL;
	return 0;
}

/*
 * AES-CBC with HMAC.  Every malformed combination is EINVAL, as in
 * ktls_create_session(); a well-formed one is then refused the way
 * ktls_ocf_try() refuses it for receive: TLS 1.0 is EPROTONOSUPPORT
 * (FreeBSD has no receive path for its implicit IV), and TLS 1.1 and 1.2
 * are ENOTSUP because uktls does not decrypt CBC at all, the answer FreeBSD
 * gives with kern.ipc.tls.cbc_enable off.
 */
static int
tls_enable_check_cbc(const struct tls_enable *en)
{
	int mac_len;

	switch (en->auth_algorithm) {
	case CRYPTO_SHA1_HMAC:
		mac_len = TLS_SHA1_HASH_LEN;
		break;
	case CRYPTO_SHA2_256_HMAC:
	case CRYPTO_SHA2_384_HMAC:
		/* The SHA-2 MAC suites exist from TLS 1.2 on (RFC 5246). */
		if (en->tls_vminor != TLS_MINOR_VER_TWO)
			return EINVAL;
		mac_len = en->auth_algorithm == CRYPTO_SHA2_256_HMAC ?
		    TLS_SHA2_256_HASH_LEN : TLS_SHA2_384_HASH_LEN;
		break;
	default:
		return EINVAL;
	}
	if (en->auth_key == NULL || en->auth_key_len != mac_len)
		return EINVAL;
	switch (en->tls_vminor) {
	case TLS_MINOR_VER_ZERO:
		/* TLS 1.0 chains the IV across records: it must be given. */
		if (en->iv_len != TLS_CBC_IMPLICIT_IV_LEN || en->iv == NULL)
			return EINVAL;
		break;
	case TLS_MINOR_VER_ONE:
	case TLS_MINOR_VER_TWO:
		/* Each record carries its IV; any IV passed is ignored. */
		break;
	default:
		return EINVAL;
	}
	if (!tls_aes_key_len_ok(en->cipher_key_len))
		return EINVAL;
	if (en->tls_vminor == TLS_MINOR_VER_ZERO)
		return EPROTONOSUPPORT;
	return ENOTSUP;
}

/*
 * The checks common to every cipher come first, in FreeBSD's order, so that
 * a structure that is wrong in several ways gets the errno FreeBSD gives.
 */
static int
tls_enable_check(const struct tls_enable *en)
{
	if (en->tls_vmajor != TLS_MAJOR_VER_ONE)
		return EINVAL;
	if (en->tls_vminor < TLS_MINOR_VER_ZERO ||
	    en->tls_vminor > TLS_MINOR_VER_THREE)
		return EINVAL;
	if (en->auth_key_len < 0 ||
	    en->auth_key_len > TLS_ENABLE_MAX_PARAM_LEN)
		return EINVAL;
	if (en->cipher_key_len <= 0 ||
	    en->cipher_key_len > TLS_ENABLE_MAX_PARAM_LEN)
		return EINVAL;
	if (en->iv_len < 0 || en->iv_len > TLS_ENABLE_MAX_IV_LEN)
		return EINVAL;
	if (en->cipher_key == NULL)
		return EINVAL;
	if (en->flags != 0)
		return EINVAL;

	switch (en->cipher_algorithm) {
	case CRYPTO_AES_NIST_GCM_16:
		return tls_enable_check_gcm(en);
	case CRYPTO_CHACHA20_POLY1305:
		return tls_enable_check_chacha(en);
	case CRYPTO_AES_CBC:
		return tls_enable_check_cbc(en);
	default:
		return EINVAL;
	}
}

int
tls_params_from_enable(const struct tls_enable *en,
    struct tls_session_params *p)
{
	int error;

	if (p == NULL)
		return EINVAL;
	memset(p, 0, sizeof(*p));
	if (en == NULL) {
		error = EINVAL;
		goto out;
	}
	error = tls_enable_check(en);
	if (error != 0)
		goto out;

	/* Only the AEAD suites get here; their sizes fit the arrays. */
	KASSERT(en->cipher_key_len <= (int)sizeof(p->cipher_key),
	    ("%s: key length %d", __func__, en->cipher_key_len));
	KASSERT(en->iv_len <= (int)sizeof(p->iv),
	    ("%s: iv length %d", __func__, en->iv_len));
	memcpy(p->cipher_key, en->cipher_key, (size_t)en->cipher_key_len);
	memcpy(p->iv, en->iv, (size_t)en->iv_len);
	p->cipher_algorithm = en->cipher_algorithm;
	p->cipher_key_len = en->cipher_key_len;
	p->iv_len = en->iv_len;
	p->tls_vmajor = en->tls_vmajor;
	p->tls_vminor = en->tls_vminor;
	p->tls_hlen = TLS_HEADER_LEN;
	if (en->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
	    en->tls_vminor == TLS_MINOR_VER_TWO)
		p->tls_hlen += TLS_GCM_EXPLICIT_NONCE_LEN;
	p->tls_tlen = TLS_AEAD_TAG_LEN;
	p->initial_seqno = tls_be64dec(en->rec_seq);
out:
	if (error != 0)
		tls_explicit_bzero(p, sizeof(*p));
	return error;
}

/*
 * Where each supported Linux structure keeps its fields.  Linux's 8-byte
 * `iv' of the AES-GCM structures is, for TLS 1.2, the explicit nonce of the
 * first record the holder would send; a receiver reads each record's own
 * explicit nonce, so only the salt matters there.  For TLS 1.3 the 12-byte
 * static IV is salt || iv.  ChaCha20 has a 12-byte iv and no salt.
 */
struct tls_linux_cipher {
	uint16_t cipher_type;
	int cipher_algorithm;
	size_t size;
	size_t key_off;
	int key_len;
	size_t iv_off;
	size_t iv_len;
	size_t salt_off;
	size_t salt_len;
	size_t seq_off;
};

#define TLS_LINUX_GCM(type, st, klen) {					\
	(type), CRYPTO_AES_NIST_GCM_16, sizeof(struct st),		\
	offsetof(struct st, key), (klen),				\
	offsetof(struct st, iv), sizeof(((struct st *)0)->iv),		\
	offsetof(struct st, salt), sizeof(((struct st *)0)->salt),	\
	offsetof(struct st, rec_seq) }

static const struct tls_linux_cipher tls_linux_ciphers[] = {
	TLS_LINUX_GCM(TLS_CIPHER_AES_GCM_128, tls12_crypto_info_aes_gcm_128,
	    TLS_AES128_KEY_LEN),
	TLS_LINUX_GCM(TLS_CIPHER_AES_GCM_256, tls12_crypto_info_aes_gcm_256,
	    TLS_AES256_KEY_LEN),
	{ TLS_CIPHER_CHACHA20_POLY1305, CRYPTO_CHACHA20_POLY1305,
	    sizeof(struct tls12_crypto_info_chacha20_poly1305),
	    offsetof(struct tls12_crypto_info_chacha20_poly1305, key),
	    TLS_CHACHA20_KEY_LEN,
	    offsetof(struct tls12_crypto_info_chacha20_poly1305, iv),
	    TLS_CHACHA20_IV_LEN, 0, 0,
	    offsetof(struct tls12_crypto_info_chacha20_poly1305, rec_seq) },
};

_Static_assert(TLS_CIPHER_AES_GCM_128_SALT_SIZE +
    TLS_CIPHER_AES_GCM_128_IV_SIZE == TLS_1_3_GCM_IV_LEN &&
    TLS_CIPHER_AES_GCM_256_SALT_SIZE + TLS_CIPHER_AES_GCM_256_IV_SIZE ==
    TLS_1_3_GCM_IV_LEN, "salt || iv is not a TLS 1.3 IV");

int
tls_enable_from_crypto_info(const void *optval, socklen_t optlen,
    struct tls_enable *en, uint8_t ivbuf[TLS_NONCE_LEN])
{
	const struct tls_linux_cipher *lc;
	const uint8_t *base = optval;
	struct tls_crypto_info info;
	uint8_t vminor;
	size_t i, want;

	memset(en, 0, sizeof(*en));
	if (optval == NULL || optlen < sizeof(info))
		return EINVAL;
	/* optval need not be aligned for a uint16_t. */
	memcpy(&info, optval, sizeof(info));
	switch (info.version) {
	case TLS_1_2_VERSION:
		vminor = TLS_MINOR_VER_TWO;
		break;
	case TLS_1_3_VERSION:
		vminor = TLS_MINOR_VER_THREE;
		break;
	default:
		return EINVAL;
	}
	lc = NULL;
	for (i = 0; i < sizeof(tls_linux_ciphers) /
	    sizeof(tls_linux_ciphers[0]); i++)
		if (tls_linux_ciphers[i].cipher_type == info.cipher_type)
			lc = &tls_linux_ciphers[i];
	if (lc == NULL) {
		/*
		 * A cipher Linux knows and uktls does not decrypt: Linux's
		 * own checks first (ARIA is TLS 1.2 only; the structure's
		 * exact size: 40 bytes, or 56 with ARIA-256's key), then
		 * the refusal of a valid request.
		 */
		switch (info.cipher_type) {
		case TLS_CIPHER_AES_CCM_128:
		case TLS_CIPHER_SM4_GCM:
		case TLS_CIPHER_SM4_CCM:
			want = sizeof(struct tls12_crypto_info_aes_gcm_128);
			break;
		case TLS_CIPHER_ARIA_GCM_128:
		case TLS_CIPHER_ARIA_GCM_256:
			if (info.version != TLS_1_2_VERSION)
				return EINVAL;
			want = info.cipher_type == TLS_CIPHER_ARIA_GCM_128 ?
			    sizeof(struct tls12_crypto_info_aes_gcm_128) :
			    sizeof(struct tls12_crypto_info_aes_gcm_256);
			break;
		default:
			return EINVAL;
		}
		return optlen != want ? EINVAL : EOPNOTSUPP;
	}
	/* Linux takes exactly the structure, no more, no less. */
	if (optlen != lc->size)
		return EINVAL;

	en->cipher_algorithm = lc->cipher_algorithm;
	en->cipher_key = base + lc->key_off;
	en->cipher_key_len = lc->key_len;
	en->tls_vmajor = TLS_MAJOR_VER_ONE;
	en->tls_vminor = vminor;
	memcpy(en->rec_seq, base + lc->seq_off, sizeof(en->rec_seq));
	if (lc->cipher_algorithm == CRYPTO_CHACHA20_POLY1305) {
		en->iv = base + lc->iv_off;
		en->iv_len = TLS_CHACHA20_IV_LEN;
	} else if (vminor == TLS_MINOR_VER_TWO) {
		en->iv = base + lc->salt_off;
		en->iv_len = TLS_AEAD_GCM_LEN;
	} else {
		memcpy(ivbuf, base + lc->salt_off, lc->salt_len);
		memcpy(ivbuf + lc->salt_len, base + lc->iv_off, lc->iv_len);
		en->iv = ivbuf;
		en->iv_len = TLS_1_3_GCM_IV_LEN;
	}
	return 0;
}

size_t
tls_crypto_info_from_params(const struct tls_session_params *p,
    const uint8_t *iv12, uint64_t seq, uint8_t *out)
{
	const struct tls_linux_cipher *lc = NULL;
	struct tls_crypto_info info;
	size_t i;

	for (i = 0; i < sizeof(tls_linux_ciphers) /
	    sizeof(tls_linux_ciphers[0]); i++)
		if (tls_linux_ciphers[i].cipher_algorithm ==
		    p->cipher_algorithm &&
		    tls_linux_ciphers[i].key_len == p->cipher_key_len)
			lc = &tls_linux_ciphers[i];
	if (lc == NULL || (p->tls_vminor != TLS_MINOR_VER_TWO &&
	    p->tls_vminor != TLS_MINOR_VER_THREE) ||
	    lc->size > TLS_LINUX_INFO_MAX)
		return 0;
	memset(out, 0, lc->size);
	info.version = p->tls_vminor == TLS_MINOR_VER_THREE ?
	    TLS_1_3_VERSION : TLS_1_2_VERSION;
	info.cipher_type = lc->cipher_type;
	memcpy(out, &info, sizeof(info));
	memcpy(out + lc->key_off, p->cipher_key, (size_t)lc->key_len);
	if (lc->cipher_algorithm == CRYPTO_CHACHA20_POLY1305) {
		if (p->iv_len != (int)lc->iv_len)
			return 0;
		memcpy(out + lc->iv_off, p->iv, lc->iv_len);
	} else if (p->tls_vminor == TLS_MINOR_VER_TWO) {
		if (p->iv_len != (int)lc->salt_len)
			return 0;
		memcpy(out + lc->salt_off, p->iv, lc->salt_len);
		if (iv12 != NULL)
			memcpy(out + lc->iv_off, iv12, lc->iv_len);
	} else {
		if (p->iv_len != (int)(lc->salt_len + lc->iv_len))
			return 0;
		memcpy(out + lc->salt_off, p->iv, lc->salt_len);
		memcpy(out + lc->iv_off, p->iv + lc->salt_len, lc->iv_len);
	}
	tls_be64enc(out + lc->seq_off, seq);
	return lc->size;
}

void
tls_params_wipe(struct tls_session_params *p)
{
	tls_explicit_bzero(p->cipher_key, sizeof(p->cipher_key));
	tls_explicit_bzero(p->iv, sizeof(p->iv));
}

void
tls_explicit_bzero(void *ptr, unsigned long len)
{
	/* glibc's explicit_bzero is a store the optimiser must keep. */
	explicit_bzero(ptr, len);
}

/*
 * The header checks, in FreeBSD's order (version and outer type, then the
 * length) or, linux_order, in Linux's (tls_rx_msg_size: the length against
 * its bounds first, a record shorter than the explicit nonce and the tag
 * being EBADMSG, then the version).
 */
static int
tls_check_header_order(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint32_t *reclen, bool linux_order)
{
	uint32_t len, maxlen, minlen;
	uint8_t wire_minor;
	bool tls13;

	tls13 = p->tls_vminor == TLS_MINOR_VER_THREE;

	/*
	 * The length must cover any explicit nonce, or the nonce would be
	 * read from the next record.  The upper bound is what the version
	 * allows a sender: TLS 1.2 a plaintext of 2^14 plus the AEAD
	 * expansion (RFC 5246 6.2.3), TLS 1.3 2^14 + 256 (RFC 8446 5.2).
	 * Anything longer would only make the reader buffer more.
	 */
	len = ntohs(hdr->tls_length);
	minlen = (uint32_t)p->tls_hlen - TLS_HEADER_LEN;
	if (tls13)
		maxlen = TLS13_MAX_CIPHERTEXT_LEN;
	else
		maxlen = minlen + TLS_MAX_MSG_SIZE_V10_2 + p->tls_tlen;
	if (linux_order) {
		if (len > maxlen)
			return EMSGSIZE;
		if (len < minlen + p->tls_tlen)
			return EBADMSG;
	}

	/*
	 * RFC 8446 5.1: a TLS 1.3 record carries legacy_record_version 3.3
	 * and, once protected, the outer type application_data.
	 */
	wire_minor = tls13 ? TLS_MINOR_VER_TWO : p->tls_vminor;
	if (hdr->tls_vmajor != p->tls_vmajor || hdr->tls_vminor != wire_minor)
		return EINVAL;
	if (tls13 && hdr->tls_type != TLS_RLTYPE_APP)
		return EINVAL;
	if (len < minlen || len > maxlen)
		return EMSGSIZE;
	*reclen = TLS_HEADER_LEN + len;
	return 0;
}

int
tls_check_header(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint32_t *reclen)
{
	return tls_check_header_order(p, hdr, reclen, false);
}

int
tls_check_header_linux(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint32_t *reclen)
{
	return tls_check_header_order(p, hdr, reclen, true);
}

int
tls_check_min_len(const struct tls_session_params *p, uint32_t reclen)
{
	uint32_t minlen;

	minlen = (uint32_t)p->tls_hlen + p->tls_tlen;
	/* A TLS 1.3 inner plaintext holds at least its content type. */
	if (p->tls_vminor == TLS_MINOR_VER_THREE)
		minlen++;
	if (reclen < minlen)
		return EMSGSIZE;
	return 0;
}

void
tls_nonce(const struct tls_session_params *p,
    const uint8_t *explicit_nonce, uint64_t seqno,
    uint8_t nonce[TLS_NONCE_LEN])
{
	uint8_t seq[8];
	int i;

	if (p->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
	    p->tls_vminor == TLS_MINOR_VER_TWO) {
		/*
		 * RFC 5288 3: salt || explicit nonce.  The explicit part is
		 * the sender's choice and is not compared with seqno, as on
		 * FreeBSD.
		 */
		memcpy(nonce, p->iv, TLS_AEAD_GCM_LEN);
		memcpy(nonce + TLS_AEAD_GCM_LEN, explicit_nonce,
		    TLS_GCM_EXPLICIT_NONCE_LEN);
		return;
	}

	/* RFC 8446 5.3 and RFC 7905 2: the IV xor the padded seqno. */
	memcpy(nonce, p->iv, TLS_NONCE_LEN);
	tls_be64enc(seq, seqno);
	for (i = 0; i < 8; i++)
		nonce[TLS_NONCE_LEN - 8 + i] ^= seq[i];
}

unsigned int
tls_aad(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, uint64_t seqno, uint32_t payload_len,
    uint8_t aad[TLS_MAX_AAD_LEN])
{
	if (p->tls_vminor == TLS_MINOR_VER_THREE) {
		/* RFC 8446 5.2: the record header exactly as received. */
		memcpy(aad, hdr, TLS_HEADER_LEN);
		return TLS_HEADER_LEN;
	}

	/* RFC 5246 6.2.3.3: seq_num || type || version || length. */
	KASSERT(payload_len <= UINT16_MAX,
	    ("%s: payload length %u", __func__, payload_len));
	tls_be64enc(aad, seqno);
	aad[8] = hdr->tls_type;
	aad[9] = hdr->tls_vmajor;
	aad[10] = hdr->tls_vminor;
	aad[11] = (uint8_t)(payload_len >> 8);
	aad[12] = (uint8_t)payload_len;
	return TLS_MAX_AAD_LEN;
}

/*
 * Scan n segments backwards for the last non-zero byte.  On a hit, *idx is
 * its position counted from the first byte of seg[0] and *type the byte.
 */
static bool
tls13_scan_window(const uint8_t *const *seg, const uint32_t *seglen,
    unsigned int n, uint32_t wlen, uint32_t *idx, uint8_t *type)
{
	uint32_t end, j;
	unsigned int i;

	end = wlen;
	for (i = n; i-- > 0;) {
		end -= seglen[i];
		for (j = seglen[i]; j-- > 0;) {
			if (seg[i][j] != 0) {
				*idx = end + j;
				*type = seg[i][j];
				return true;
			}
		}
	}
	return false;
}

int
tls13_find_record_type(const struct mbuf *m, uint32_t off, uint32_t len,
    uint8_t *type, uint32_t *content_len)
{
	const uint8_t *seg[TLS13_SCAN_WINDOW];
	uint32_t seglen[TLS13_SCAN_WINDOW];
	uint32_t base, idx, last, take, wlen;
	unsigned int n;
	uint8_t t, last_type;
	bool found;

	while (m != NULL && off >= m->m_len) {
		off -= m->m_len;
		m = m->m_next;
	}

	/*
	 * Most senders do not pad: when the range's last byte is not zero it
	 * is the type, found without gathering the segments.
	 */
	if (len > 0) {
		const struct mbuf *l = m;
		uint32_t end = off + len - 1;

		while (l != NULL && end >= l->m_len) {
			end -= l->m_len;
			l = l->m_next;
		}
		KASSERT(l != NULL, ("%s: chain shorter than off + len",
		    __func__));
		t = l != NULL ? mtod(l, const uint8_t *)[end] : 0;
		if (t != 0) {
			if (len - 1 > TLS_MAX_MSG_SIZE_V10_2)
				return EMSGSIZE;
			*type = t;
			*content_len = len - 1;
			return 0;
		}
	}

	/*
	 * The padding is at the end, so scan from there: gather the range's
	 * segments (normally all of them fit in one window) and walk them
	 * backwards until a non-zero byte.  A range of more segments than a
	 * window is taken one window after another, front to back, and the
	 * last window with a non-zero byte has the answer; each window is
	 * still scanned from its end, so no byte is looked at twice.
	 */
	found = false;
	last = 0;
	last_type = 0;
	base = 0;
	while (base < len) {
		n = 0;
		wlen = 0;
		while (n < TLS13_SCAN_WINDOW && base + wlen < len) {
			KASSERT(m != NULL,
			    ("%s: chain shorter than off + len", __func__));
			take = m->m_len - off;
			if (take > len - base - wlen)
				take = len - base - wlen;
			if (take > 0) {
				seg[n] = mtod(m, const uint8_t *) + off;
				seglen[n] = take;
				n++;
				wlen += take;
			}
			off = 0;
			m = m->m_next;
		}
		if (tls13_scan_window(seg, seglen, n, wlen, &idx, &t)) {
			found = true;
			last = base + idx;
			last_type = t;
		}
		base += wlen;
	}

	/* RFC 8446 5.4: no non-zero byte means no content type. */
	if (!found)
		return EBADMSG;
	if (last > TLS_MAX_MSG_SIZE_V10_2)
		return EMSGSIZE;
	*type = last_type;
	*content_len = last;
	return 0;
}
