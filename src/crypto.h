/*
 * The crypto backend interface, in the role of FreeBSD's ktls_ocf.c: a
 * backend decrypts one whole record in place over the mbuf chain that holds
 * it.  No iovec array is built and nothing is allocated per record: nonce,
 * additional data and the tag are small buffers on the stack.
 *
 * Contracts:
 *  - setup runs once per session (enable), may allocate, and keeps its own
 *    state behind *cookie; teardown frees it and wipes any key schedule.
 *  - decrypt is called by one thread at a time per session (the socket's
 *    RUNNING flag serialises it) with no lock held; the chain is owned by
 *    the caller alone.  No mbuf in it is M_RDONLY; a cluster may be shared
 *    with other mbufs of the receive path (the input thread's, the next
 *    record's), each of which owns a disjoint range of it, so writing
 *    inside the record's own range is safe.
 *  - decrypt must not leave unauthenticated plaintext where a reader can see
 *    it: the caller publishes the record only after decrypt returned 0.
 *  - the tag is compared in constant time.
 */
#ifndef UKTLS_CRYPTO_H
#define UKTLS_CRYPTO_H

#include <stdint.h>

struct mbuf;
struct tls_record_layer;
struct tls_session_params;

struct ktls_crypto_backend {
	const char *name;
	/* 0 if the backend can decrypt these parameters, else ENOTSUP. */
	int (*probe)(const struct tls_session_params *p);
	int (*setup)(const struct tls_session_params *p, void **cookie);
	void (*teardown)(void *cookie);
	/*
	 * 1: one cookie may decrypt in several threads at once (it holds a
	 * key schedule and nothing else); 0: each thread decrypting a
	 * session's records at the same time needs a cookie of its own.
	 */
	int shared_cookie;
	/*
	 * Decrypt and authenticate the record in chain m: m holds exactly the
	 * record, header first (reclen bytes, which the caller has checked
	 * with tls_check_header and tls_check_min_len); hdr is a copy of the
	 * header; seqno is the record's sequence number.  On success the
	 * payload bytes (after tls_hlen, before the tag) hold plaintext and
	 * *trailer_len is the tag length to strip.  Returns 0, EBADMSG when
	 * authentication fails (the payload then holds garbage), or ENOMEM
	 * for a transient backend failure.
	 */
	int (*decrypt)(void *cookie, const struct tls_session_params *p,
	    const struct tls_record_layer *hdr, struct mbuf *m,
	    uint64_t seqno, int *trailer_len);
};

/*
 * Walking a byte range of an mbuf chain one mbuf's share at a time, as the
 * backends do to decrypt in place: ktls_seg_init(&c, m, from, to), then
 * ktls_seg_next(&c, &len) gives each segment's address and length, NULL
 * after the last.  The range must lie inside the chain.
 */
struct ktls_seg_cursor {
	struct mbuf *sc_m;
	uint32_t sc_off; /* in sc_m */
	uint32_t sc_pos; /* in the chain */
	uint32_t sc_end;
};

void ktls_seg_init(struct ktls_seg_cursor *c, struct mbuf *m, uint32_t from,
    uint32_t to);
uint8_t *ktls_seg_next(struct ktls_seg_cursor *c, uint32_t *len);

/*
 * Zero the payload [from, to) of a record that failed authentication, or
 * whose decryption stopped part-way: the chain goes back to the pools,
 * whose memory another socket may be handed, and no unauthenticated
 * plaintext may stay in it.
 */
void ktls_wipe_range(struct mbuf *m, uint32_t from, uint32_t to);

/*
 * What every AEAD backend reads before the bulk of a record: the nonce,
 * the additional data and the received tag, and where the payload ends.
 * Secrets (the nonce derives from the IV): wipe with tls_explicit_bzero.
 */
struct ktls_aead_input {
	uint8_t ai_nonce[12];
	uint8_t ai_aad[13];
	uint8_t ai_tag[16];
	unsigned int ai_aadlen;
	uint32_t ai_end;  /* offset of the tag: the payload is [tls_hlen, end) */
};

/* Fill *in for the record in chain m (exactly the record, header first). */
void ktls_aead_input(const struct tls_session_params *p,
    const struct tls_record_layer *hdr, const struct mbuf *m, uint64_t seqno,
    struct ktls_aead_input *in);

extern const struct ktls_crypto_backend ktls_crypto_openssl;
#ifdef UKTLS_HAVE_IPSECMB
extern const struct ktls_crypto_backend ktls_crypto_ipsecmb;
#endif

/*
 * Pick the backend for a session: the first registered backend whose probe
 * accepts p.  NULL (ENOTSUP) if none does.
 */
const struct ktls_crypto_backend *ktls_crypto_select(
    const struct tls_session_params *p);

/* Name of the backend chosen for AES-128-GCM TLS 1.3, for stats. */
const char *ktls_crypto_default_name(void);

#endif /* UKTLS_CRYPTO_H */
