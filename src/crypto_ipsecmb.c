/*
 * The Intel ipsec-mb backend: AES-128-GCM, AES-256-GCM and
 * ChaCha20-Poly1305 for TLS 1.2 and 1.3, decrypted in place over the mbuf
 * chain of a record with the library's multi-segment ("direct") API:
 * init with nonce and additional data, one update per mbuf's share of the
 * payload, finalize for the tag.
 *
 * A session owns only its expanded key: for AES-GCM the round keys and the
 * GHASH key powers (struct gcm_key_data, computed once at setup), for ChaCha
 * the raw 32-byte key, which ChaCha has no schedule for.  The per-record
 * state (struct gcm_context_data, struct chacha20_poly1305_context_data)
 * lives on the stack of the decrypting thread and is wiped before return.
 *
 * The direct API is reached through an IMB_MGR's function pointers, which
 * init_mb_mgr_auto() sets for the best code this CPU runs.  Managers are
 * large (about 200 KiB) and slow to set up, so there is one for the whole
 * process, made on first use and kept until exit.  Sharing it needs no
 * lock: after set-up the manager is only read, to fetch a function
 * pointer, and the direct-API functions are not even passed the manager
 * (their signatures take the key, the context and the data), so they
 * cannot write to it; with the library's parameter checks on they report
 * errors through a thread-local variable.  One manager per thread would
 * cost every application thread that ever decrypts a record (uktls lets a
 * waiting reader decrypt) 200 KiB and an allocation on its first record.
 *
 * ipsec-mb computes the tag but leaves the comparison to the caller; it is
 * compared here in constant time.  The plaintext is written over the
 * ciphertext before the tag is known; the record belongs to the worker
 * alone until decrypt returns, and when authentication fails the payload is
 * wiped so that no unauthenticated plaintext stays in pooled memory.
 */
#ifdef UKTLS_HAVE_IPSECMB

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>

#include "crypto.h"
#include "kassert.h"
#include "mbuf.h"
#include "tls_record.h"

enum imb_kind {
	IMB_KIND_AES128_GCM = 1,
	IMB_KIND_AES256_GCM,
	IMB_KIND_CHACHA20_POLY1305,
};

/*
 * A session.  The key comes last so that a ChaCha session allocates only
 * the 32 bytes it needs instead of a whole gcm_key_data (about 1 KiB); the
 * union keeps the 64-byte alignment ipsec-mb's vector code expects.
 */
struct imb_session {
	uint32_t is_kind;      /* enum imb_kind */
	uint32_t is_size;      /* bytes allocated, for the wipe */
	union {
		struct gcm_key_data gcm;
		uint8_t chacha[32];
	} is_key __attribute__((aligned(64)));
};

#define IMB_SESSION_GCM_SIZE sizeof(struct imb_session)
#define IMB_SESSION_CHACHA_SIZE \
	((offsetof(struct imb_session, is_key) + 32 + 63) & ~(size_t)63)

_Static_assert(IMB_SESSION_GCM_SIZE % 64 == 0, "aligned_alloc size");

/* ---------------------------------------------------------------------- */
/* The manager, one per process.                                          */

static pthread_once_t imb_once = PTHREAD_ONCE_INIT;
static IMB_MGR *imb_shared_mgr; /* written once, under imb_once */

static void
imb_once_init(void)
{
	IMB_MGR *mgr;
	IMB_ARCH arch = IMB_ARCH_NONE;

	mgr = alloc_mb_mgr(0);
	if (mgr == NULL)
		return;
	init_mb_mgr_auto(mgr, &arch);
	if (imb_get_errno(mgr) != 0 || arch == IMB_ARCH_NONE) {
		free_mb_mgr(mgr);
		return;
	}
	imb_shared_mgr = mgr;
}

/*
 * The process's manager, NULL when the library cannot run here (no usable
 * code for this CPU, or no memory the first time).  It is never freed:
 * workers may still be decrypting while the process exits.
 */
static IMB_MGR *
imb_mgr(void)
{
	pthread_once(&imb_once, imb_once_init);
	return imb_shared_mgr;
}

/* ---------------------------------------------------------------------- */
/* Backend.                                                               */

static enum imb_kind
imb_kind_of(const struct tls_session_params *p)
{
	switch (p->cipher_algorithm) {
	case CRYPTO_AES_NIST_GCM_16:
		if (p->cipher_key_len == 16)
			return IMB_KIND_AES128_GCM;
		if (p->cipher_key_len == 32)
			return IMB_KIND_AES256_GCM;
		break;
	case CRYPTO_CHACHA20_POLY1305:
		if (p->cipher_key_len == 32)
			return IMB_KIND_CHACHA20_POLY1305;
		break;
	}
	return 0;
}

static int
imb_probe(const struct tls_session_params *p)
{
	if (p->tls_vmajor != TLS_MAJOR_VER_ONE ||
	    (p->tls_vminor != TLS_MINOR_VER_TWO &&
	    p->tls_vminor != TLS_MINOR_VER_THREE))
		return ENOTSUP;
	if (p->tls_tlen != TLS_AEAD_TAG_LEN || imb_kind_of(p) == 0)
		return ENOTSUP;
	/* A CPU or build the library cannot run on leaves OpenSSL to it. */
	if (imb_mgr() == NULL)
		return ENOTSUP;
	return 0;
}

static int
imb_setup(const struct tls_session_params *p, void **cookie)
{
	struct imb_session *s = NULL;
	enum imb_kind kind;
	IMB_MGR *mgr;
	size_t size;
	int error;

	*cookie = NULL;
	kind = imb_kind_of(p);
	if (kind == 0) {
		error = ENOTSUP;
		goto out;
	}
	mgr = imb_mgr();
	if (mgr == NULL) {
		error = ENOTSUP;
		goto out;
	}
	size = kind == IMB_KIND_CHACHA20_POLY1305 ? IMB_SESSION_CHACHA_SIZE :
	    IMB_SESSION_GCM_SIZE;
	s = aligned_alloc(64, size);
	if (s == NULL) {
		error = ENOMEM;
		goto out;
	}
	memset(s, 0, size);
	s->is_kind = kind;
	s->is_size = (uint32_t)size;
	switch (kind) {
	case IMB_KIND_AES128_GCM:
		IMB_AES128_GCM_PRE(mgr, p->cipher_key, &s->is_key.gcm);
		break;
	case IMB_KIND_AES256_GCM:
		IMB_AES256_GCM_PRE(mgr, p->cipher_key, &s->is_key.gcm);
		break;
	case IMB_KIND_CHACHA20_POLY1305:
		memcpy(s->is_key.chacha, p->cipher_key, 32);
		break;
	}
	*cookie = s;
	s = NULL;
	error = 0;
out:
	/* Nothing secret was stored in a session that is not handed out. */
	free(s);
	return error;
}

static void
imb_teardown(void *cookie)
{
	struct imb_session *s = cookie;

	if (s == NULL)
		return;
	tls_explicit_bzero(s, s->is_size);
	free(s);
}

static int
imb_decrypt(void *cookie, const struct tls_session_params *p,
    const struct tls_record_layer *hdr, struct mbuf *m, uint64_t seqno,
    int *trailer_len)
{
	const struct imb_session *s = cookie;
	union {
		struct gcm_context_data gcm;
		struct chacha20_poly1305_context_data chacha;
	} ctx;
	struct ktls_aead_input in;
	uint8_t calc[TLS_AEAD_TAG_LEN];
	struct ktls_seg_cursor cur;
	IMB_MGR *mgr;
	uint8_t *buf;
	uint32_t n;
	int error;

	/* Set up before any session could be: never NULL here. */
	mgr = imb_mgr();
	KASSERT(mgr != NULL, ("%s: no manager", __func__));

	ktls_aead_input(p, hdr, m, seqno, &in);

	switch (s->is_kind) {
	case IMB_KIND_AES128_GCM:
		IMB_AES128_GCM_INIT_VAR_IV(mgr, &s->is_key.gcm, &ctx.gcm,
		    in.ai_nonce, sizeof(in.ai_nonce), in.ai_aad, in.ai_aadlen);
		break;
	case IMB_KIND_AES256_GCM:
		IMB_AES256_GCM_INIT_VAR_IV(mgr, &s->is_key.gcm, &ctx.gcm,
		    in.ai_nonce, sizeof(in.ai_nonce), in.ai_aad, in.ai_aadlen);
		break;
	default:
		IMB_CHACHA20_POLY1305_INIT(mgr, s->is_key.chacha, &ctx.chacha,
		    in.ai_nonce, in.ai_aad, in.ai_aadlen);
		break;
	}

	/*
	 * Decrypt each mbuf's share of [tls_hlen, end) where it lies.  The
	 * update calls carry partial blocks over from one call to the next,
	 * so any split gives the same bytes as one call over the whole.
	 */
	ktls_seg_init(&cur, m, p->tls_hlen, in.ai_end);
	while ((buf = ktls_seg_next(&cur, &n)) != NULL) {
		switch (s->is_kind) {
		case IMB_KIND_AES128_GCM:
			IMB_AES128_GCM_DEC_UPDATE(mgr, &s->is_key.gcm,
			    &ctx.gcm, buf, buf, n);
			break;
		case IMB_KIND_AES256_GCM:
			IMB_AES256_GCM_DEC_UPDATE(mgr, &s->is_key.gcm,
			    &ctx.gcm, buf, buf, n);
			break;
		default:
			IMB_CHACHA20_POLY1305_DEC_UPDATE(mgr,
			    s->is_key.chacha, &ctx.chacha, buf, buf, n);
			break;
		}
	}

	switch (s->is_kind) {
	case IMB_KIND_AES128_GCM:
		IMB_AES128_GCM_DEC_FINALIZE(mgr, &s->is_key.gcm, &ctx.gcm,
		    calc, sizeof(calc));
		break;
	case IMB_KIND_AES256_GCM:
		IMB_AES256_GCM_DEC_FINALIZE(mgr, &s->is_key.gcm, &ctx.gcm,
		    calc, sizeof(calc));
		break;
	default:
		IMB_CHACHA20_POLY1305_DEC_FINALIZE(mgr, &ctx.chacha, calc,
		    sizeof(calc));
		break;
	}

	/* CRYPTO_memcmp takes the same time whichever byte differs. */
	if (CRYPTO_memcmp(calc, in.ai_tag, sizeof(calc)) != 0) {
		ktls_wipe_range(m, p->tls_hlen, in.ai_end);
		error = EBADMSG;
		goto out;
	}
	*trailer_len = p->tls_tlen;
	error = 0;
out:
	/* The contexts hold key stream, the GHASH state and Poly's key. */
	tls_explicit_bzero(&ctx, sizeof(ctx));
	tls_explicit_bzero(&in, sizeof(in));
	tls_explicit_bzero(calc, sizeof(calc));
	return error;
}

const struct ktls_crypto_backend ktls_crypto_ipsecmb = {
	.name = "ipsecmb",
	.probe = imb_probe,
	.setup = imb_setup,
	.teardown = imb_teardown,
	/* The key schedule is read only; each call has its context on the
	 * stack. */
	.shared_cookie = 1,
	.decrypt = imb_decrypt,
};

#endif /* UKTLS_HAVE_IPSECMB */
