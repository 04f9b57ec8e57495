/*
 * Hand-off from OpenSSL: the handshake stays with OpenSSL, the receive side
 * of the connection goes to uktls.  Link with build/libuktls-openssl.a (and
 * -lssl -lcrypto).  Uses OpenSSL's public API only.
 *
 *	SSL_set_fd(ssl, fd);
 *	uktls_openssl_prepare(ssl);          before the handshake
 *	SSL_accept(ssl);                     or SSL_connect
 *	uktls_openssl_enable_rx(ssl);        after it
 *	uktls_recvmsg(fd, ...);              plaintext records from here on
 *
 * prepare() arranges for the traffic secrets to be exported and taps the
 * read side so that no byte OpenSSL read past the handshake is lost; it
 * keeps any callbacks the application set itself.  enable_rx() derives the
 * receive key, IV and exact next sequence number for TLS 1.2 or 1.3 and
 * enables RX on SSL_get_rfd(ssl), handing over what OpenSSL had buffered:
 * records it already decrypted come first, then ciphertext it read ahead.
 * After enable_rx() the application must not call SSL_read on ssl; it may
 * still write with SSL_write.  Both return 0 or an errno value.
 */
#ifndef UKTLS_OPENSSL_H
#define UKTLS_OPENSSL_H

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

int uktls_openssl_prepare(SSL *ssl);
int uktls_openssl_enable_rx(SSL *ssl);

#ifdef __cplusplus
}
#endif

#endif /* UKTLS_OPENSSL_H */
