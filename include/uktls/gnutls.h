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
 * Returns 0 or an errno value: EINVAL (no session, or a handshake not
 * finished: none yet, one that returned GNUTLS_E_AGAIN, a False Start or
 * an early start before the peer's Finished), ENOTSUP (not TLS 1.2 or 1.3
 * with AES-GCM or ChaCha20-Poly1305; the socket is left alone), EALREADY
 * (GnuTLS put kernel TLS on the socket), EBADF, EPROTO, ENOMEM (no memory
 * to take the unread data over; nothing was taken), EIO (GnuTLS failed to
 * give out data it reported pending), or what uktls_enable_rx_prefixed()
 * failed with.
 */
#ifndef UKTLS_GNUTLS_H
#define UKTLS_GNUTLS_H

#include <gnutls/gnutls.h>

#ifdef __cplusplus
extern "C" {
#endif

int uktls_gnutls_enable_rx(gnutls_session_t session);

#ifdef __cplusplus
}
#endif

#endif /* UKTLS_GNUTLS_H */
