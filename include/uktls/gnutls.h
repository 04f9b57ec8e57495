/*
 * Hand-off from GnuTLS: after gnutls_handshake(), give the receive side of
 * the session's socket to uktls.  Link with build/libuktls-gnutls.a (and
 * -lgnutls).  Derives the receive key, IV and next sequence number for TLS
 * 1.2 or 1.3 from the session and enables RX on the session's transport
 * descriptor; records GnuTLS already decrypted and ciphertext it buffered
 * are handed over first.  Returns 0 or an errno value.
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
