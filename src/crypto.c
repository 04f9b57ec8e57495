/*
 * Choice of the crypto backend for a session.
 *
 * Backends are listed in the table below, narrower and possibly faster ones
 * in front of the general OpenSSL one, which stays last as the fallback.  A
 * session gets, in this order:
 *  - the backend named by the environment variable UKTLS_CRYPTO ("openssl",
 *    "ipsecmb"), when it can decrypt the session's suite;
 *  - the only backend that can, when only one can;
 *  - otherwise the one measured fastest for the suite's cipher on this
 *    machine.  The first session of each cipher times every willing
 *    backend on a 16 KiB record, about 2 ms each, taking turns so that a
 *    change of clock speed meets all of them alike, and the choice is kept
 *    for the life of the process.  The TLS version does not enter into it:
 *    it changes only the nonce and 8 bytes of additional data, not the
 *    cost of the bulk cipher.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "kassert.h"
#include "mbuf.h"
#include "tls_record.h"

static const struct ktls_crypto_backend *const ktls_crypto_backends[] = {
#ifdef UKTLS_HAVE_IPSECMB
	&ktls_crypto_ipsecmb,
#endif
	&ktls_crypto_openssl,
};

#define KTLS_CRYPTO_NBACKENDS \
	(sizeof(ktls_crypto_backends) / sizeof(ktls_crypto_backends[0]))

/* The ciphers a choice is measured and kept for. */
enum {
	CRYPTO_SUITE_AES128_GCM,
	CRYPTO_SUITE_AES256_GCM,
	CRYPTO_SUITE_CHACHA20_POLY1305,
	CRYPTO_NSUITES
};

/*
 * Timing: CALIB_ROUNDS turns per backend of CALIB_SLICE_NS each, so about
 * 2 ms per backend, on a record of CALIB_PAYLOAD plaintext bytes.
 */
#define CALIB_ROUNDS 8
#define CALIB_SLICE_NS 250000
#define CALIB_PAYLOAD TLS_MAX_MSG_SIZE_V10_2
/* Header, content, the TLS 1.3 inner type byte and the tag. */
#define CALIB_RECLEN (TLS_HEADER_LEN + CALIB_PAYLOAD + 1 + TLS_AEAD_TAG_LEN)

static _Atomic(const struct ktls_crypto_backend *) crypto_choice[
    CRYPTO_NSUITES];
static pthread_mutex_t crypto_calib_mtx = PTHREAD_MUTEX_INITIALIZER;

static int
crypto_suite(const struct tls_session_params *p)
{
	if (p->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
	    p->cipher_key_len == 16)
		return CRYPTO_SUITE_AES128_GCM;
	if (p->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
	    p->cipher_key_len == 32)
		return CRYPTO_SUITE_AES256_GCM;
	if (p->cipher_algorithm == CRYPTO_CHACHA20_POLY1305 &&
	    p->cipher_key_len == 32)
		return CRYPTO_SUITE_CHACHA20_POLY1305;
	return -1;
}

static uint64_t
crypto_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Seal the calibration record in rec with libcrypto directly: a TLS 1.3
 * record of sequence number 0, so the nonce is the IV itself.  Every
 * backend must open it, which doubles as a check that each one works here.
 * 0 or ENOMEM.
 */
static int
crypto_calib_seal(const struct tls_session_params *p, uint8_t *rec)
{
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *ctx;
	uint32_t plen = CALIB_PAYLOAD + 1;
	int error, outl;

	cipher = p->cipher_algorithm == CRYPTO_CHACHA20_POLY1305 ?
	    EVP_chacha20_poly1305() : p->cipher_key_len == 16 ?
	    EVP_aes_128_gcm() : EVP_aes_256_gcm();
	rec[0] = TLS_RLTYPE_APP;
	rec[1] = TLS_MAJOR_VER_ONE;
	rec[2] = TLS_MINOR_VER_TWO;
	rec[3] = (uint8_t)((CALIB_RECLEN - TLS_HEADER_LEN) >> 8);
	rec[4] = (uint8_t)(CALIB_RECLEN - TLS_HEADER_LEN);
	memset(rec + TLS_HEADER_LEN, 0xa5, plen);
	rec[TLS_HEADER_LEN + plen - 1] = TLS_RLTYPE_APP;
	ctx = cipher != NULL ? EVP_CIPHER_CTX_new() : NULL;
	if (ctx == NULL ||
	    EVP_EncryptInit_ex(ctx, cipher, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, TLS_NONCE_LEN,
	    NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, p->cipher_key, p->iv) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, rec, TLS_HEADER_LEN) != 1 ||
	    EVP_EncryptUpdate(ctx, rec + TLS_HEADER_LEN, &outl,
	    rec + TLS_HEADER_LEN, (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(ctx, rec + TLS_HEADER_LEN + plen,
	    &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS_AEAD_TAG_LEN,
	    rec + TLS_HEADER_LEN + plen) != 1)
		error = ENOMEM;
	else
		error = 0;
	EVP_CIPHER_CTX_free(ctx);
	return error;
}

/*
 * Time each of the n backends in cands on a valid 16 KiB record of p's
 * cipher and return the fastest, or NULL when none could be timed (the
 * caller then takes the first).  The record lies in two mbufs, cut
 * CALIB_CUT bytes in as a read that ended inside it leaves it (the harder
 * case for a backend: whole records are one mbuf), and is restored from a
 * copy before each decryption, a cost the same for every backend.
 */
#define CALIB_CUT 16384
static const struct ktls_crypto_backend *
crypto_calibrate(const struct tls_session_params *sp,
    const struct ktls_crypto_backend *const *cands, size_t n)
{
	struct tls_session_params p;
	struct tls_record_layer hdr;
	struct mbuf *m0 = NULL, *m1 = NULL;
	const struct ktls_crypto_backend *best = NULL;
	void *cookie[KTLS_CRYPTO_NBACKENDS];
	uint64_t recs[KTLS_CRYPTO_NBACKENDS], ns[KTLS_CRYPTO_NBACKENDS];
	uint64_t t0, t;
	uint8_t *rec = NULL, *work = NULL;
	size_t i, k, round;
	int trailer_len;

	memset(cookie, 0, sizeof(cookie));
	memset(recs, 0, sizeof(recs));
	memset(ns, 0, sizeof(ns));

	/* A TLS 1.3 session of the same cipher with a made-up key. */
	memset(&p, 0, sizeof(p));
	p.cipher_algorithm = sp->cipher_algorithm;
	p.cipher_key_len = sp->cipher_key_len;
	p.iv_len = TLS_1_3_GCM_IV_LEN;
	p.tls_vmajor = TLS_MAJOR_VER_ONE;
	p.tls_vminor = TLS_MINOR_VER_THREE;
	p.tls_hlen = TLS_HEADER_LEN;
	p.tls_tlen = TLS_AEAD_TAG_LEN;
	memset(p.cipher_key, 0x3c, sizeof(p.cipher_key));
	memset(p.iv, 0x69, sizeof(p.iv));

	rec = malloc(CALIB_RECLEN);
	work = aligned_alloc(64, (CALIB_RECLEN + 63) & ~63u);
	m0 = calloc(1, sizeof(*m0));
	m1 = calloc(1, sizeof(*m1));
	if (rec == NULL || work == NULL || m0 == NULL || m1 == NULL ||
	    crypto_calib_seal(&p, rec) != 0)
		goto out;
	memcpy(&hdr, rec, sizeof(hdr));
	/* Plain mbuf headers over our buffer: nothing from the pools. */
	m0->m_type = m1->m_type = MT_DATA;
	m0->m_data = (char *)work;
	m0->m_len = CALIB_CUT;
	m0->m_next = m1;
	m1->m_data = (char *)work + CALIB_CUT;
	m1->m_len = CALIB_RECLEN - CALIB_CUT;

	/*
	 * Set up each backend and check that it opens the record, which
	 * also warms it up (a thread's first use may allocate).
	 */
	for (i = 0; i < n; i++) {
		if (cands[i]->setup(&p, &cookie[i]) != 0) {
			cookie[i] = NULL;
			continue;
		}
		memcpy(work, rec, CALIB_RECLEN);
		if (cands[i]->decrypt(cookie[i], &p, &hdr, m0, 0,
		    &trailer_len) != 0) {
			cands[i]->teardown(cookie[i]);
			cookie[i] = NULL;
		}
	}

	for (round = 0; round < CALIB_ROUNDS; round++) {
		for (k = 0; k < n; k++) {
			/* Alternate who goes first from round to round. */
			i = (round & 1) != 0 ? n - 1 - k : k;
			if (cookie[i] == NULL)
				continue;
			t0 = crypto_now_ns();
			do {
				memcpy(work, rec, CALIB_RECLEN);
				(void)cands[i]->decrypt(cookie[i], &p, &hdr,
				    m0, 0, &trailer_len);
				recs[i]++;
				t = crypto_now_ns();
			} while (t - t0 < CALIB_SLICE_NS);
			ns[i] += t - t0;
		}
	}
	for (i = 0; i < n; i++) {
		if (cookie[i] == NULL)
			continue;
		/* Records per nanosecond, compared without division. */
		if (best == NULL || recs[i] * ns[k] > recs[k] * ns[i]) {
			best = cands[i];
			k = i;
		}
	}
out:
	for (i = 0; i < n; i++)
		if (cookie[i] != NULL)
			cands[i]->teardown(cookie[i]);
	tls_params_wipe(&p);
	free(m0);
	free(m1);
	free(work);
	free(rec);
	return best;
}

/* The backend UKTLS_CRYPTO names, or NULL when it is unset or unknown. */
static const struct ktls_crypto_backend *
crypto_forced(void)
{
	const char *name;
	size_t i;

	name = getenv("UKTLS_CRYPTO");
	if (name == NULL || *name == '\0')
		return NULL;
	for (i = 0; i < KTLS_CRYPTO_NBACKENDS; i++)
		if (strcmp(ktls_crypto_backends[i]->name, name) == 0)
			return ktls_crypto_backends[i];
	return NULL;
}

const struct ktls_crypto_backend *
ktls_crypto_select(const struct tls_session_params *p)
{
	const struct ktls_crypto_backend *cands[KTLS_CRYPTO_NBACKENDS];
	const struct ktls_crypto_backend *be;
	size_t i, n;
	int suite;

	/* A forced backend that cannot do this suite falls back below. */
	be = crypto_forced();
	if (be != NULL && be->probe(p) == 0)
		return be;

	n = 0;
	for (i = 0; i < KTLS_CRYPTO_NBACKENDS; i++)
		if (ktls_crypto_backends[i]->probe(p) == 0)
			cands[n++] = ktls_crypto_backends[i];
	if (n == 0)
		return NULL;
	suite = crypto_suite(p);
	if (n == 1 || suite < 0)
		return cands[0];

	be = atomic_load_explicit(&crypto_choice[suite], memory_order_acquire);
	if (be == NULL) {
		/*
		 * Measure once.  Sessions of the cipher that start meanwhile
		 * wait the few milliseconds it takes.
		 */
		pthread_mutex_lock(&crypto_calib_mtx);
		be = atomic_load_explicit(&crypto_choice[suite],
		    memory_order_relaxed);
		if (be == NULL) {
			/*
			 * This runs on an application thread (enable, stats),
			 * whose OpenSSL error queue is left as it was.
			 */
			ERR_set_mark();
			be = crypto_calibrate(p, cands, n);
			ERR_pop_to_mark();
			if (be == NULL)
				be = cands[0];
			atomic_store_explicit(&crypto_choice[suite], be,
			    memory_order_release);
		}
		pthread_mutex_unlock(&crypto_calib_mtx);
	}
	/* The choice was made for the cipher; check it takes this version. */
	for (i = 0; i < n; i++)
		if (cands[i] == be)
			return be;
	return cands[0];
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

void
ktls_seg_init(struct ktls_seg_cursor *c, struct mbuf *m, uint32_t from,
    uint32_t to)
{
	uint32_t off = from;

	while (m != NULL && off >= m->m_len) {
		off -= m->m_len;
		m = m->m_next;
	}
	c->sc_m = m;
	c->sc_off = off;
	c->sc_pos = from;
	c->sc_end = to;
}

uint8_t *
ktls_seg_next(struct ktls_seg_cursor *c, uint32_t *len)
{
	struct mbuf *m;
	uint8_t *buf;
	uint32_t n;

	while (c->sc_pos < c->sc_end) {
		m = c->sc_m;
		KASSERT(m != NULL, ("ktls_seg_next: chain ends at %u",
		    c->sc_pos));
		n = m->m_len - c->sc_off;
		if (n > c->sc_end - c->sc_pos)
			n = c->sc_end - c->sc_pos;
		if (n == 0) {
			c->sc_m = m->m_next;
			c->sc_off = 0;
			continue;
		}
		/*
		 * Never hand out storage the receive path does not own: a
		 * cluster may be shared, but only with other mbufs of the
		 * receive path holding disjoint ranges of it.
		 */
		KASSERT((m->m_flags & M_RDONLY) == 0,
		    ("ktls_seg_next: mbuf %p is read-only", (void *)m));
		buf = mtod(m, uint8_t *) + c->sc_off;
		c->sc_pos += n;
		c->sc_off += n;
		if (c->sc_off == m->m_len) {
			c->sc_m = m->m_next;
			c->sc_off = 0;
		}
		*len = n;
		return buf;
	}
	return NULL;
}

void
ktls_wipe_range(struct mbuf *m, uint32_t from, uint32_t to)
{
	struct ktls_seg_cursor cur;
	uint8_t *buf;
	uint32_t n;

	ktls_seg_init(&cur, m, from, to);
	while ((buf = ktls_seg_next(&cur, &n)) != NULL)
		tls_explicit_bzero(buf, n);
}

void
ktls_aead_input(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, const struct mbuf *m, uint64_t seqno,
    struct ktls_aead_input *in)
{
	uint8_t explicit_nonce[TLS_GCM_EXPLICIT_NONCE_LEN];
	uint32_t reclen;

	_Static_assert(sizeof(in->ai_nonce) == TLS_NONCE_LEN &&
	    sizeof(in->ai_aad) == TLS_MAX_AAD_LEN &&
	    sizeof(in->ai_tag) == TLS_AEAD_TAG_LEN, "ktls_aead_input sizes");
	reclen = TLS_HEADER_LEN + (uint32_t)ntohs(hdr->tls_length);
	KASSERT(p->tls_tlen == TLS_AEAD_TAG_LEN,
	    ("ktls_aead_input: trailer length %u", p->tls_tlen));
	KASSERT(reclen >= (uint32_t)p->tls_hlen + p->tls_tlen,
	    ("ktls_aead_input: record of %u bytes too short", reclen));
	KASSERT(m_length(m, NULL) == reclen,
	    ("ktls_aead_input: chain of %u bytes for a record of %u",
	    m_length(m, NULL), reclen));
	in->ai_end = reclen - TLS_AEAD_TAG_LEN;
	/*
	 * Only TLS 1.2 AES-GCM has an explicit nonce: the bytes between the
	 * header and the payload.
	 */
	if (p->tls_hlen > TLS_HEADER_LEN) {
		KASSERT(p->tls_hlen == TLS_HEADER_LEN +
		    TLS_GCM_EXPLICIT_NONCE_LEN,
		    ("ktls_aead_input: header length %u", p->tls_hlen));
		m_copydata(m, TLS_HEADER_LEN, sizeof(explicit_nonce),
		    explicit_nonce);
		tls_nonce(p, explicit_nonce, seqno, in->ai_nonce);
		tls_explicit_bzero(explicit_nonce, sizeof(explicit_nonce));
	} else
		tls_nonce(p, NULL, seqno, in->ai_nonce);
	in->ai_aadlen = tls_aad(p, hdr, seqno, in->ai_end - p->tls_hlen,
	    in->ai_aad);
	m_copydata(m, in->ai_end, sizeof(in->ai_tag), in->ai_tag);
}
