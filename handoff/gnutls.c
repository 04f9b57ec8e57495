/*
 * Hand-off from GnuTLS to uktls (see <uktls/gnutls.h>).
 *
 * GnuTLS keeps the receive key, IV and the sequence number of the next
 * record it would read, and gives them out with gnutls_record_get_state():
 * the key and IV of the current read epoch (for TLS 1.3 after any KeyUpdate
 * it has processed; for TLS 1.2 GCM the IV is the 4-byte salt) and the
 * sequence number as GnuTLS will use it next.
 *
 * What GnuTLS may hold:
 *  - Decrypted application data the application has not read
 *    (gnutls_record_check_pending()).  It is kept per record; each record is
 *    taken with gnutls_record_recv_packet(), and the bytes are handed over
 *    in order as plaintext records.  GnuTLS cannot give data back, so this
 *    is done after every check that can fail except the enable itself, and
 *    after the memory for all of it has been found.
 *  - No ciphertext read ahead.  On a stream transport GnuTLS reads exactly
 *    the bytes the record in progress still lacks (its header, then its
 *    body) and never more, so once gnutls_handshake() has returned success,
 *    or gnutls_record_recv() has returned a record, it holds no ciphertext.
 *    The one exception is a gnutls_record_recv() on a non-blocking socket
 *    that returned GNUTLS_E_AGAIN after reading part of a record: GnuTLS
 *    keeps that part and has no call that gives it out, so RX must not be
 *    enabled until such a call has been completed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>

#include "uktls.h"
#include "uktls/gnutls.h"
#include "rekey.h"

/*
 * Is a handshake of session under way?  GnuTLS forgets the last handshake
 * message in each direction (-1) when a handshake ends, and notes only
 * post-handshake messages after it: TLS 1.3 tickets and KeyUpdates, and a
 * server's request for a client certificate received.  Anything else
 * means a handshake that returned GNUTLS_E_AGAIN (or that renegotiation
 * started), with the peer's Finished not yet in.
 */
static int
hg_handshake_busy(gnutls_session_t session)
{
	int in = (int)gnutls_handshake_get_last_in(session);
	int out = (int)gnutls_handshake_get_last_out(session);

	return !(in == -1 || in == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET ||
	    in == GNUTLS_HANDSHAKE_KEY_UPDATE ||
	    in == GNUTLS_HANDSHAKE_CERTIFICATE_REQUEST) ||
	    !(out == -1 || out == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET ||
	    out == GNUTLS_HANDSHAKE_KEY_UPDATE);
}

/* The enable, FreeBSD's form (flags 0) or Linux's (UKTLS_RX_LINUX). */
static int
hg_enable_rx(gnutls_session_t session, int rxflags)
{
	struct uktls_plain_record *recs = NULL;
	gnutls_packet_t pkt = NULL;
	gnutls_datum_t mac_key, iv, key, data;
	struct tls_enable en;
	gnutls_handshake_description_t last_in;
	unsigned int flags;
	uint8_t *plain = NULL;
	size_t pending, plen = 0, nrecs = 0, i;
	ssize_t r;
	int alg, vminor, rfd, sfd, error = 0;

	memset(&en, 0, sizeof(en));
	if (session == NULL || (rxflags & ~UKTLS_RX_LINUX) != 0)
		return EINVAL;
	/*
	 * RX must follow a finished handshake.  A client's False Start (TLS
	 * 1.2) or a server's early start (TLS 1.3) returns before the peer's
	 * Finished is in, while the peer's handshake key is still current;
	 * so does a handshake that returned GNUTLS_E_AGAIN; a session that
	 * never started one has no cipher yet.
	 */
	flags = gnutls_session_get_flags(session);
	last_in = gnutls_handshake_get_last_in(session);
	if ((flags & GNUTLS_SFLAGS_FALSE_START) != 0 &&
	    last_in != GNUTLS_HANDSHAKE_FINISHED)
		return EINVAL;
	if ((flags & GNUTLS_SFLAGS_EARLY_START) != 0 &&
	    last_in != GNUTLS_HANDSHAKE_FINISHED &&
	    last_in != GNUTLS_HANDSHAKE_KEY_UPDATE)
		return EINVAL;
	if (hg_handshake_busy(session) ||
	    gnutls_cipher_get(session) == GNUTLS_CIPHER_NULL)
		return EINVAL;
	switch (gnutls_protocol_get_version(session)) {
	case GNUTLS_TLS1_2:
		vminor = TLS_MINOR_VER_TWO;
		break;
	case GNUTLS_TLS1_3:
		vminor = TLS_MINOR_VER_THREE;
		break;
	default:
		return ENOTSUP;
	}
	switch (gnutls_cipher_get(session)) {
	case GNUTLS_CIPHER_AES_128_GCM:
	case GNUTLS_CIPHER_AES_256_GCM:
		alg = CRYPTO_AES_NIST_GCM_16;
		break;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		alg = CRYPTO_CHACHA20_POLY1305;
		break;
	default:
		return ENOTSUP;
	}
	if ((gnutls_transport_is_ktls_enabled(session) & GNUTLS_KTLS_RECV) != 0)
		return EALREADY;
	gnutls_transport_get_int2(session, &rfd, &sfd);
	if (rfd < 0)
		return EBADF;
	/*
	 * The datums point into the session; uktls copies what it needs
	 * during the enable call.
	 */
	if (gnutls_record_get_state(session, 1, &mac_key, &iv, &key,
	    en.rec_seq) < 0)
		return EINVAL;
	if (key.data == NULL || iv.data == NULL || mac_key.size != 0)
		return EPROTO;
	en.cipher_key = key.data;
	en.cipher_key_len = (int)key.size;
	en.iv = iv.data;
	en.iv_len = (int)iv.size;
	en.cipher_algorithm = alg;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = (uint8_t)vminor;
	/*
	 * Decrypted records the application has not read, the first possibly
	 * partly read already.  Taken only while GnuTLS reports them pending,
	 * so no call here reads the socket.  GnuTLS cannot take a record back,
	 * so the room for all of them is found before the first is taken: the
	 * pending bytes are copied out in order and handed over in records of
	 * at most 2^14 bytes (the boundaries of application data carry no
	 * meaning, and there is no telling in advance how many records the
	 * bytes came in).
	 */
	pending = gnutls_record_check_pending(session);
	if (pending > 0) {
		nrecs = (pending + TLS_MAX_MSG_SIZE_V10_2 - 1) /
		    TLS_MAX_MSG_SIZE_V10_2;
		plain = malloc(pending);
		recs = calloc(nrecs, sizeof(*recs));
		if (plain == NULL || recs == NULL) {
			error = ENOMEM;
			goto out;
		}
	}
	while (gnutls_record_check_pending(session) > 0) {
		r = gnutls_record_recv_packet(session, &pkt);
		if (r <= 0 || pkt == NULL) {
			error = EIO;
			goto out;
		}
		gnutls_packet_get(pkt, &data, NULL);
		if (data.size > pending - plen) {
			/* More than GnuTLS said it held: nothing sane to do
			 * but say the stream is broken. */
			error = EIO;
		} else {
			memcpy(plain + plen, data.data, data.size);
			plen += data.size;
		}
		/* Application data leaves no copy behind. */
		if (data.data != NULL)
			gnutls_memset(data.data, 0, data.size);
		gnutls_packet_deinit(pkt);
		pkt = NULL;
		if (error != 0)
			goto out;
	}
	for (i = 0, nrecs = 0; i < plen; i += recs[nrecs - 1].len) {
		recs[nrecs].type = TLS_RLTYPE_APP;
		recs[nrecs].data = plain + i;
		recs[nrecs].len = plen - i < TLS_MAX_MSG_SIZE_V10_2 ?
		    plen - i : TLS_MAX_MSG_SIZE_V10_2;
		nrecs++;
	}
	if (uktls_enable_rx_prefixed_flags(rfd, &en, recs, nrecs, NULL, 0,
	    rxflags) != 0)
		error = errno;
out:
	if (plain != NULL) {
		gnutls_memset(plain, 0, pending);
		free(plain);
	}
	free(recs);
	gnutls_memset(&en, 0, sizeof(en));
	return error;
}

int
uktls_gnutls_enable_rx(gnutls_session_t session)
{

	return hg_enable_rx(session, 0);
}

int
uktls_gnutls_enable_rx_flags(gnutls_session_t session, int flags)
{

	return hg_enable_rx(session, flags);
}

/*
 * The peer's KeyUpdate, as GnuTLS is to read it (hg_pull), for the one
 * update_rx() call that feeds it on this thread.
 */
struct hg_feed {
	const uint8_t *buf;
	size_t len, off;
};

static _Thread_local struct hg_feed *hg_feed;

/*
 * The session's transport once a KeyUpdate was fed: GnuTLS reads the fed
 * record and nothing else, never the socket, which is uktls's.
 */
static ssize_t
hg_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct hg_feed *f = hg_feed;
	size_t n;

	(void)ptr;
	if (f == NULL || f->off == f->len) {
		errno = EAGAIN;
		return -1;
	}
	n = f->len - f->off < len ? f->len - f->off : len;
	memcpy(buf, f->buf + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

static int
hg_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct hg_feed *f = hg_feed;

	(void)ptr, (void)ms;
	return f != NULL && f->off < f->len ? 1 : 0;
}

/*
 * GnuTLS keeps its TLS 1.3 traffic secrets to itself, so the next key is
 * had from GnuTLS itself: the KeyUpdate uktls found is sealed again under
 * GnuTLS's current read key at its next sequence number (both from
 * gnutls_record_get_state()) and fed to gnutls_record_recv() through the
 * transport, which GnuTLS processes as if it had read it: its read key
 * moves on, and a KeyUpdate the peer asked for is queued to go before our
 * next data.  The new key, IV and sequence number 0 then go to uktls with
 * TLS_RX.  GnuTLS reads only through hg_pull from then on.
 */
int
uktls_gnutls_update_rx(gnutls_session_t session)
{
	union ho_tls13_info ci;
	gnutls_aead_cipher_hd_t aead = NULL;
	gnutls_cipher_algorithm_t cipher;
	gnutls_datum_t mac_key, iv, key;
	struct hg_feed feed;
	uint8_t seq[8], nonce[TLS_1_3_GCM_IV_LEN], ku[6], rec[5 + 6 + 16];
	uint8_t junk[64];
	size_t clen, i;
	socklen_t cilen = 0;
	ssize_t r;
	int rfd, sfd, pending, requested = 0, error = 0;

	memset(&ci, 0, sizeof(ci));
	memset(nonce, 0, sizeof(nonce));
	if (session == NULL)
		return EINVAL;
	gnutls_transport_get_int2(session, &rfd, &sfd);
	if (rfd < 0)
		return EBADF;
	pending = uktls_rx_rekey_pending(rfd, &requested);
	if (pending < 0)
		return errno;
	if (pending == 0)
		return EAGAIN;
	cipher = gnutls_cipher_get(session);
	if (gnutls_protocol_get_version(session) != GNUTLS_TLS1_3 ||
	    gnutls_record_get_state(session, 1, &mac_key, &iv, &key, seq) < 0 ||
	    iv.size != TLS_1_3_GCM_IV_LEN)
		return EINVAL;
	/* KeyUpdate(request_update) and its inner content type. */
	ku[0] = 24;
	ku[1] = ku[2] = 0;
	ku[3] = 1;
	ku[4] = (uint8_t)requested;
	ku[5] = TLS_RLTYPE_HANDSHAKE;
	rec[0] = TLS_RLTYPE_APP;
	rec[1] = TLS_MAJOR_VER_ONE;
	rec[2] = TLS_MINOR_VER_TWO;
	rec[3] = 0;
	rec[4] = sizeof(rec) - 5;
	memcpy(nonce, iv.data, sizeof(nonce));
	for (i = 0; i < sizeof(seq); i++)
		nonce[sizeof(nonce) - sizeof(seq) + i] ^= seq[i];
	clen = sizeof(rec) - 5;
	if (gnutls_aead_cipher_init(&aead, cipher, &key) < 0 ||
	    gnutls_aead_cipher_encrypt(aead, nonce, sizeof(nonce), rec, 5, 16,
	    ku, sizeof(ku), rec + 5, &clen) < 0 || clen != sizeof(rec) - 5) {
		error = EPROTO;
		goto out;
	}
	feed.buf = rec;
	feed.len = sizeof(rec);
	feed.off = 0;
	gnutls_transport_set_pull_function(session, hg_pull);
	gnutls_transport_set_pull_timeout_function(session, hg_pull_timeout);
	hg_feed = &feed;
	r = gnutls_record_recv(session, junk, sizeof(junk));
	hg_feed = NULL;
	/*
	 * Taken: GnuTLS processed the message and wants the next record.
	 * GnuTLS refuses more than 8 KeyUpdates a second, leaving its key as
	 * it was: the same call succeeds later.  Anything else (GnuTLS
	 * refuses a KeyUpdate asking for one back while its own request is
	 * out, for one) leaves the two sides' keys apart for good.
	 */
	if (r == GNUTLS_E_TOO_MANY_HANDSHAKE_PACKETS) {
		error = EBUSY;
		goto out;
	}
	if (r != GNUTLS_E_AGAIN || feed.off != feed.len ||
	    gnutls_handshake_get_last_in(session) !=
	    GNUTLS_HANDSHAKE_KEY_UPDATE ||
	    gnutls_record_get_state(session, 1, &mac_key, &iv, &key, seq) < 0 ||
	    iv.size != TLS_1_3_GCM_IV_LEN) {
		error = EPROTO;
		goto out;
	}
	cilen = ho_tls13_info(&ci, cipher == GNUTLS_CIPHER_CHACHA20_POLY1305,
	    key.data, key.size, iv.data, seq);
	if (cilen == 0) {
		error = EPROTO;
		goto out;
	}
	if (uktls_setsockopt(rfd, SOL_TLS, TLS_RX, &ci, cilen) != 0)
		error = errno;
out:
	if (aead != NULL)
		gnutls_aead_cipher_deinit(aead);
	gnutls_memset(&ci, 0, sizeof(ci));
	gnutls_memset(nonce, 0, sizeof(nonce));
	gnutls_memset(ku, 0, sizeof(ku));
	gnutls_memset(junk, 0, sizeof(junk));
	return error;
}
