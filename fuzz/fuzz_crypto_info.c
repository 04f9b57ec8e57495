/*
 * tls_enable_from_crypto_info, then tls_params_from_enable, with arbitrary
 * bytes as Linux's TLS_RX argument.
 *
 * The input is the whole optval and its length the optlen, in a heap copy of
 * exactly that size, so that AddressSanitizer catches a read past what the
 * caller passed (the length rules are what stop one).  The result is
 * compared with a reference model written from uapi/linux/tls.h's layouts
 * with the offsets spelt out by hand, not taken from the structures: accept
 * or refuse and the errno must agree; on success every field of the
 * struct tls_enable, and then the key, IV and sequence number of the
 * parameters, must be the input's bytes at the model's offsets.  On failure
 * the struct tls_enable must be zero and the IV buffer untouched.
 */
#include "fuzz_common.h"
#include "tls_record.h"

/* A Linux structure as the model sees it: byte offsets into optval. */
struct model {
	int err;
	int alg;
	int key_len;
	size_t key_off;
	uint8_t vminor;
	uint8_t iv[12]; /* the IV uktls must use */
	int iv_len;
	size_t seq_off;
};

static void
reference(const uint8_t *b, size_t n, struct model *m)
{
	uint16_t version, cipher;
	size_t want, iv_off, salt_off;

	memset(m, 0, sizeof(*m));
	if (n < 4) {
		m->err = EINVAL;
		return;
	}
	/* Both fields are host-order uint16_t, as in Linux's ABI. */
	memcpy(&version, b, 2);
	memcpy(&cipher, b + 2, 2);
	if (version != 0x0303 && version != 0x0304) {
		m->err = EINVAL;
		return;
	}
	m->vminor = version == 0x0303 ? 3 : 4;
	iv_off = 4;
	salt_off = 0;
	switch (cipher) {
	case 51: /* AES-128-GCM: iv 4..11, key 12..27, salt 28..31, seq */
		want = 40;
		m->alg = CRYPTO_AES_NIST_GCM_16;
		m->key_len = 16;
		m->key_off = 12;
		salt_off = 28;
		break;
	case 52: /* AES-256-GCM: iv 4..11, key 12..43, salt 44..47, seq */
		want = 56;
		m->alg = CRYPTO_AES_NIST_GCM_16;
		m->key_len = 32;
		m->key_off = 12;
		salt_off = 44;
		break;
	case 54: /* ChaCha20-Poly1305: iv 4..15, key 16..47, seq */
		want = 56;
		m->alg = CRYPTO_CHACHA20_POLY1305;
		m->key_len = 32;
		m->key_off = 16;
		break;
	case 53: case 55: case 56: case 57:
		/* Known to Linux, not decrypted by uktls: Linux's checks
		 * (ARIA on TLS 1.2 only, the exact size), then refused. */
		if (cipher == 57 && version != 0x0303)
			m->err = EINVAL;
		else
			m->err = n == 40 ? EOPNOTSUPP : EINVAL;
		return;
	case 58:
		if (version != 0x0303)
			m->err = EINVAL;
		else
			m->err = n == 56 ? EOPNOTSUPP : EINVAL;
		return;
	default:
		m->err = EINVAL;
		return;
	}
	if (n != want) {
		m->err = EINVAL;
		return;
	}
	m->seq_off = want - 8;
	if (m->alg == CRYPTO_CHACHA20_POLY1305) {
		memcpy(m->iv, b + iv_off, 12);
		m->iv_len = 12;
	} else if (m->vminor == 3) {
		memcpy(m->iv, b + salt_off, 4);
		m->iv_len = 4;
	} else {
		memcpy(m->iv, b + salt_off, 4);
		memcpy(m->iv + 4, b + iv_off, 8);
		m->iv_len = 12;
	}
}

static int
all_byte(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

static void
check_success(const uint8_t *b, const struct model *m,
    const struct tls_enable *en, const struct tls_session_params *p)
{
	uint64_t seq = 0;
	int i;

	FZ_ASSERT(en->cipher_algorithm == m->alg &&
	    en->cipher_key_len == m->key_len && en->iv_len == m->iv_len &&
	    en->tls_vmajor == 3 && en->tls_vminor == m->vminor &&
	    en->auth_algorithm == 0 && en->auth_key == NULL &&
	    en->auth_key_len == 0 && en->flags == 0, "enable fields");
	FZ_ASSERT(en->cipher_key == b + m->key_off,
	    "key does not point into optval");
	FZ_ASSERT(memcmp(en->iv, m->iv, (size_t)m->iv_len) == 0, "enable IV");
	FZ_ASSERT(memcmp(en->rec_seq, b + m->seq_off, 8) == 0, "rec_seq");

	FZ_ASSERT(p->cipher_algorithm == m->alg &&
	    p->cipher_key_len == m->key_len && p->iv_len == m->iv_len &&
	    p->tls_vmajor == 3 && p->tls_vminor == m->vminor,
	    "parameter fields");
	FZ_ASSERT(memcmp(p->cipher_key, b + m->key_off,
	    (size_t)m->key_len) == 0, "parameter key is not the input's");
	FZ_ASSERT(memcmp(p->iv, m->iv, (size_t)m->iv_len) == 0,
	    "parameter IV");
	for (i = 0; i < 8; i++)
		seq = seq << 8 | b[m->seq_off + (size_t)i];
	FZ_ASSERT(p->initial_seqno == seq, "seqno %llu, want %llu",
	    (unsigned long long)p->initial_seqno, (unsigned long long)seq);
	FZ_ASSERT(p->tls_hlen == (m->alg == CRYPTO_AES_NIST_GCM_16 &&
	    m->vminor == 3 ? 13 : 5), "tls_hlen %u", p->tls_hlen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_session_params p;
	struct tls_enable en;
	struct model m;
	uint8_t ivbuf[TLS_NONCE_LEN], *buf;
	int err;

	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		abort();
	if (size > 0)
		memcpy(buf, data, size);
	reference(buf, size, &m);

	/* Poison the outputs so that a missed clear shows. */
	memset(&en, 0xa5, sizeof(en));
	memset(ivbuf, 0xa5, sizeof(ivbuf));
	/* A zero-length argument: one past its end is all that is there. */
	err = tls_enable_from_crypto_info(size > 0 ? buf : buf + 1,
	    (socklen_t)size, &en, ivbuf);
	FZ_ASSERT(err == m.err, "converted %d, reference %d (length %zu)",
	    err, m.err, size);
	if (err == 0) {
		memset(&p, 0xa5, sizeof(p));
		err = tls_params_from_enable(&en, &p);
		/* Every structure that converts is one uktls decrypts. */
		FZ_ASSERT(err == 0, "converted enable refused: %d", err);
		check_success(buf, &m, &en, &p);
		tls_params_wipe(&p);
		FZ_ASSERT(all_byte(p.cipher_key, sizeof(p.cipher_key), 0) &&
		    all_byte(p.iv, sizeof(p.iv), 0), "wipe left key bytes");
	} else {
		FZ_ASSERT(all_byte(&en, sizeof(en), 0),
		    "enable not cleared after error %d", err);
		FZ_ASSERT(all_byte(ivbuf, sizeof(ivbuf), 0xa5),
		    "IV buffer written after error %d", err);
	}

	/* NULL optval, on every input: cheap and never flaky. */
	memset(&en, 0xa5, sizeof(en));
	FZ_ASSERT(tls_enable_from_crypto_info(NULL, (socklen_t)size, &en,
	    ivbuf) == EINVAL && all_byte(&en, sizeof(en), 0), "NULL optval");

	tls_explicit_bzero(ivbuf, sizeof(ivbuf));
	tls_explicit_bzero(&en, sizeof(en));
	tls_explicit_bzero(&m, sizeof(m));
	tls_explicit_bzero(buf, size);
	free(buf);
	return 0;
}
