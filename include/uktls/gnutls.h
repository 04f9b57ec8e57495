/*
 * Hand-off from GnuTLS: after gnutls_handshake(), give the receive side of
 * the session's socket to uktls.  Link with build/libuktls-gnutls.a (and
 * -lgnutls).  Takes the receive key, IV and next sequence number of the
 * current read epoch from gnutls_record_get_state() (after any KeyUpdate
 * GnuTLS processed) and enables RX on the session's transport descriptor
 * (gnutls_transport_get_int2()); what GnuTLS decrypted that the
 * application has not read is handed over first, in order, as plaintext
 * records of up to 2^14 bytes (however many records it came in).
 *
 * GnuTLS reads a stream transport exactly one record at a time and never
 * ahead, so after gnutls_handshake() or a gnutls_record_recv() that
 * returned data it holds no ciphertext.  Do not call this after a
 * gnutls_record_recv() that returned GNUTLS_E_AGAIN on a non-blocking
 * socket (GnuTLS may keep part of a record it cannot give out) or 0 (the
 * peer's close_notify is gone).  GnuTLS cannot give back plaintext, so if
 * the enable itself fails after buffered records were taken, they are
 * lost.  After it, do not call gnutls_record_recv(); write as before, and
 * answer the peer's close_notify with gnutls_bye(session, GNUTLS_SHUT_WR).
 *
 * enable_rx_flags(session, UKTLS_RX_LINUX), from <uktls.h>, enables RX as
 * Linux's TLS_RX does (see uktls_enable_rx_prefixed_flags()): reads give
 * each record's type in a SOL_TLS/TLS_GET_RECORD_TYPE message and merge
 * data records, and on TLS 1.3 the peer's KeyUpdate stops decryption until
 * update_rx().  enable_rx_flags(session, 0) is enable_rx(session).
 *
 * update_rx(), on such a TLS 1.3 connection once a read failed with
 * EKEYEXPIRED (or uktls_rx_rekey_pending() says 1), gives uktls the peer's
 * next key.  GnuTLS gives out no traffic secret, so the KeyUpdate is
 * handed to GnuTLS itself (sealed again under its read key and fed to
 * gnutls_record_recv() through the transport's pull function, which the
 * helper replaces with one that never reads the socket), and GnuTLS's next
 * read key goes to uktls.  GnuTLS queues the KeyUpdate the peer asked for,
 * if it did, and sends it before the next gnutls_record_send() data.  Call
 * it from the thread that uses the session, and not while a
 * gnutls_record_send() that returned GNUTLS_E_AGAIN is unfinished (GnuTLS
 * 3.7 then sends that record twice when it answers a KeyUpdate: finish
 * the send first; GnuTLS reading the socket itself does the same).
 * Returns 0, EAGAIN (no KeyUpdate waits for a key), EBUSY (GnuTLS takes
 * at most 8 KeyUpdates a second: nothing changed, call again later),
 * EINVAL (enabled FreeBSD's way, or TLS 1.2), ENOTCONN (RX not enabled),
 * EBADF, EPROTO (GnuTLS refused the KeyUpdate, as it does one asking for
 * an update while its own request, gnutls_session_key_update() with
 * GNUTLS_KU_PEER, is unanswered: the connection cannot go on), or what
 * TLS_RX failed with.
 *
 * The enables return 0 or an errno value: EINVAL (no session, unknown
 * flags, or a handshake not
 * finished: none yet, one that returned GNUTLS_E_AGAIN, a False Start or
 * an early start before the peer's Finished), ENOTSUP (not TLS 1.2 or 1.3
 * with AES-GCM or ChaCha20-Poly1305; the socket is left alone), EALREADY
 * (GnuTLS put kernel TLS on the socket), EBADF, EPROTO, ENOMEM (no memory
 * to take the unread data over; nothing was taken), EIO (GnuTLS failed to
 * give out data it reported pending), or what
 * uktls_enable_rx_prefixed_flags() failed with.
 */
#ifndef UKTLS_GNUTLS_H
#define UKTLS_GNUTLS_H

#include <gnutls/gnutls.h>

#ifdef __cplusplus
extern "C" {
#endif

int uktls_gnutls_enable_rx(gnutls_session_t session);
int uktls_gnutls_enable_rx_flags(gnutls_session_t session, int flags);
int uktls_gnutls_update_rx(gnutls_session_t session);

#ifdef __cplusplus
}
#endif

#endif /* UKTLS_GNUTLS_H */
