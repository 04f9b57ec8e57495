/*
 * Hand-off from OpenSSL: the handshake stays with OpenSSL, the receive side
 * of the connection goes to uktls.  Link with build/libuktls-openssl.a (and
 * -lssl -lcrypto).  Uses OpenSSL's public API only.
 *
 *	SSL_set_fd(ssl, fd);                 or SSL_set_bio()
 *	uktls_openssl_prepare(ssl);          after it, before the handshake
 *	SSL_accept(ssl);                     or SSL_connect
 *	uktls_openssl_enable_rx(ssl);        after it
 *	uktls_recvmsg(fd, ...);              plaintext records from here on
 *
 * prepare() puts a read tap in front of the SSL's read BIO.  The tap reads
 * the socket for OpenSSL but never past the end of the record OpenSSL is
 * reading, read-ahead or not, so OpenSSL never holds bytes of a record it
 * has not processed (SSL_has_pending() and poll() stay truthful), and it
 * counts the records OpenSSL takes.  prepare() also chains a keylog
 * callback on the SSL_CTX and an info callback on the SSL in front of the
 * application's own, which keep being called; a keylog callback the
 * application sets later is chained too.  The message callback is left
 * alone (OpenSSL cannot report it, so it could not be chained).
 *
 * enable_rx() derives the receive key, IV and exact next sequence number
 * for TLS 1.2 or 1.3 (after any KeyUpdate OpenSSL processed) and enables
 * RX on SSL_get_rfd(ssl), handing over what OpenSSL had: the rest of a
 * record SSL_read() had started (a plaintext record), a close_notify it
 * had taken, and the start of a record a non-blocking SSL_read() was
 * reading (ciphertext).  If it fails nothing was taken: the application
 * may go on with SSL_read() and call it again later.
 *
 * After enable_rx() the application must not call SSL_read() on ssl (the
 * tap reports end of stream to OpenSSL); it may still write with
 * SSL_write(), and answers the peer's close_notify with one SSL_shutdown()
 * (a second one would wait to read).  Not supported: DTLS, SSL_clear() or
 * SSL_set_fd() after prepare(), and, for TLS 1.3 when SSL_read() was
 * called before enable_rx(), an info callback set on the SSL after
 * prepare() (it replaces the one that sees KeyUpdates; enable_rx() then
 * says EPROTO).
 *
 * enable_rx_flags(ssl, UKTLS_RX_LINUX), from <uktls.h>, enables RX as
 * Linux's TLS_RX does (see uktls_enable_rx_prefixed_flags()): reads give
 * each record's type in a SOL_TLS/TLS_GET_RECORD_TYPE message and merge
 * data records, and on TLS 1.3 the peer's KeyUpdate stops decryption, so
 * that the connection can go on under the peer's next key.  The helper
 * then keeps the peer's traffic secret (wiped when the SSL is freed).
 * enable_rx_flags(ssl, 0) is enable_rx(ssl).
 *
 * update_rx(), on such a TLS 1.3 connection once a read failed with
 * EKEYEXPIRED (or uktls_rx_rekey_pending() says 1), derives the peer's
 * next traffic secret, key and IV and gives them to uktls (TLS_RX); the
 * records after the KeyUpdate then read as sent.  If the peer asked for a
 * KeyUpdate in return, OpenSSL sends ours (SSL_key_update(), then
 * SSL_do_handshake(); on a full non-blocking socket it goes out with the
 * next SSL_write()), unless the application already sent its
 * close_notify.  Call it from the thread that writes with the SSL, with
 * the thread's OpenSSL error queue empty.  It returns:
 *   0            the key is given (and the KeyUpdate owed queued);
 *   EINPROGRESS  the key is given, but OpenSSL has a write the
 *                application must retry first: retry it, then call
 *                update_rx() again, before writing anything new, to
 *                send the KeyUpdate owed;
 *   EIO          the key is given, but OpenSSL failed to send the
 *                KeyUpdate (its error is on the queue);
 *   EAGAIN       no KeyUpdate waits for a key, and none is owed;
 *   EINVAL       not enabled with UKTLS_RX_LINUX on TLS 1.3;
 *   EBADF, or what TLS_RX failed with: nothing changed; it may be called
 *                again.
 *
 * The enables return 0 or an errno value: EINVAL (no read BIO, handshake
 * started before prepare() or not finished at the enable, prepare() not
 * called, unknown flags), EALREADY (called twice), ENOTSUP (not TLS 1.2
 * or 1.3 with AES-GCM or ChaCha20-Poly1305; the socket is left alone),
 * ENOKEY (the TLS 1.3 traffic secret never reached the keylog callback),
 * EPROTO (the position in the peer's stream is not known, or a buffering
 * BIO under OpenSSL, such as BIO_f_buffer(), holds bytes it read past
 * it), EBADF (no descriptor), ENOMEM, or what
 * uktls_enable_rx_prefixed_flags() failed with.
 */
#ifndef UKTLS_OPENSSL_H
#define UKTLS_OPENSSL_H

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

int uktls_openssl_prepare(SSL *ssl);
int uktls_openssl_enable_rx(SSL *ssl);
int uktls_openssl_enable_rx_flags(SSL *ssl, int flags);
int uktls_openssl_update_rx(SSL *ssl);

#ifdef __cplusplus
}
#endif

#endif /* UKTLS_OPENSSL_H */
