/*
 * tlspeer: what the hand-off and interoperability tests need around a real
 * TLS connection, so that both set up and read their connections the same
 * way:
 *
 *  - a test per row of a table, each run for the suites of tg_suites[];
 *  - a peer's stream whose byte i is a function of (seed, i), so that the
 *    reader can check any piece without keeping what came before;
 *  - an ephemeral self-signed certificate, made once per program;
 *  - OpenSSL contexts and GnuTLS sessions for a suite of tg_suites[], both
 *    sides, with that certificate on the server;
 *  - handshakes that run to their end on blocking or non-blocking sockets;
 *  - a reader that takes a connection's records through uktls_recvmsg()
 *    to its end and checks each of them against the peer's stream.
 *
 * Functions that report through harness_fail() (tp_rx_stream and
 * TP_CHECK_CLEAN_END) must be called from the test's own thread; the rest
 * may run on a peer's thread too.
 */
#ifndef UKTLS_TEST_TLSPEER_H
#define UKTLS_TEST_TLSPEER_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsgen.h"

/* How long a peer waits for its socket before giving up. */
#define TP_PEER_WAIT_MS (20000 * TG_TIME_MUL)

/* ---- tests from a table --------------------------------------------- */

/*
 * Register the test name to run once for each suite of tg_suites[] (for
 * the three TLS 1.3 ones only with tls13_only), as fn(suite, arg), so that
 * a table of settings makes one test a row.  Reported as "name/suite".
 * Call from main() before harness_main().
 */
void tp_register(const char *name,
    void (*fn)(const struct tg_suite *, const void *), const void *arg,
    int tls13_only);

/* ---- the peer's stream ---------------------------------------------- */

/* Bytes off .. off + len - 1 of stream seed. */
void tp_pat_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t len);

/* ---- the certificate ------------------------------------------------ */

struct tp_cert {
	EVP_PKEY *pkey;
	X509 *x509;
	gnutls_datum_t cert_pem; /* NUL-terminated, size without the NUL */
	gnutls_datum_t key_pem;
};

/*
 * A self-signed P-256 certificate for CN=localhost, made on the first call
 * from any thread.  Returns it, or NULL if it could not be made.
 */
const struct tp_cert *tp_cert(void);

/* ---- library settings per suite ------------------------------------- */

int tp_is_tls13(const struct tg_suite *s);
/* OpenSSL's name for the suite (an ECDSA certificate for TLS 1.2). */
const char *tp_ossl_suite(const struct tg_suite *s);
/* GnuTLS priorities that allow the suite's version and cipher only. */
const char *tp_gnutls_prio(const struct tg_suite *s);

/* The first error OpenSSL queued on this thread, as text; clears the queue. */
const char *tp_ossl_errstr(void);

/*
 * An OpenSSL context for either side, with the certificate on a server and
 * no verification on a client.  vminor TLS_MINOR_VER_TWO or _THREE gives
 * that version only, with cipher as its cipher list (TLS 1.2) or its
 * suites (TLS 1.3).  vminor 0 gives TLS 1.2 and 1.3 with every suite of
 * tg_suites[], so that the peer picks, and cipher is not used.  Returns
 * NULL if the certificate or a setting failed.
 */
SSL_CTX *tp_ossl_ctx(int server, int vminor, const char *cipher);

/*
 * A GnuTLS session on fd, server (with the certificate) or client, with
 * priorities prio.  Both members are NULL until made; tp_gnutls_end()
 * frees what tp_gnutls_start() made, whether it succeeded or not.
 */
struct tp_gnutls {
	gnutls_certificate_credentials_t cred;
	gnutls_session_t ses;
};
/* Returns 0, ENOMEM, or EINVAL for a certificate or priorities refused. */
int tp_gnutls_start(struct tp_gnutls *g, int server, const char *prio,
    int fd);
void tp_gnutls_end(struct tp_gnutls *g);

/* ---- sockets and handshakes ----------------------------------------- */

/*
 * poll() fd for events for up to ms milliseconds, again after a signal.
 * Returns 1 ready, 0 timeout, -1 error.  For a socket uktls does not hold;
 * tg_wait_readable() is the one for uktls's own.
 */
int tp_wait_fd(int fd, short events, int ms);

/*
 * Run an OpenSSL handshake to its end on fd, blocking or not, as the side
 * the SSL's method says.  Returns 1, or what SSL_do_handshake() returned,
 * or -1 when the socket did not become ready within TP_PEER_WAIT_MS.
 */
int tp_ossl_handshake(SSL *ssl, int fd);

/* The same with GnuTLS.  Returns 0 or a GnuTLS error code. */
int tp_gnutls_handshake(gnutls_session_t ses, int fd);

/* ---- reading a connection with uktls -------------------------------- */

/* What the reader expects of the application data. */
struct tp_stream {
	uint64_t seed;      /* the peer's stream */
	uint64_t start;     /* ... from this offset on */
	EVP_MD_CTX *md;     /* if set, the data is hashed into it too */
	int wait_ms;        /* the longest wait for a record */
	int stop_at_close_notify;
	/*
	 * The socket reads Linux's way: each read's type comes in a
	 * TLS_GET_RECORD_TYPE message and data records merge.  rekey, if
	 * set, is called whenever a KeyUpdate waits for the next key
	 * (uktls_rx_rekey_pending()); it returns 0 or an errno.
	 */
	int linux_form;
	int (*rekey)(void *arg);
	void *rekey_arg;
};

/* What the reader saw. */
struct tp_rx {
	uint64_t bytes;       /* application data */
	int app_recs;
	size_t first_app_len;
	int nst;              /* NewSessionTicket records */
	int key_updates;      /* records starting with a KeyUpdate */
	int rekeys;           /* calls of want->rekey */
	int other_hs;         /* other handshake records */
	int close_notify;
	int other_alerts;
	int eof;
	int err;              /* errno of the receive that failed */
};

/*
 * Read records from fd, one uktls_recvmsg() each, until the end of the
 * stream, a receive that fails (its errno goes to rx->err) or, if asked, a
 * close_notify.  Each record must come whole with its TLS_GET_RECORD
 * message and version 3.3 (Linux's form: with its type, data merged);
 * application data must be the stream want describes; no record may
 * follow a close_notify.  Returns 0, or after
 * reporting the failure ETIMEDOUT when no record came within
 * want->wait_ms, or EBADMSG for a record that broke a rule.
 */
int tp_rx_stream(int fd, const struct tp_stream *want, struct tp_rx *rx);

/*
 * The end every clean connection has: no failed receive, want_bytes of
 * application data, one close_notify, no other alert and no handshake
 * record but NewSessionTickets (which the caller counts, as they depend on
 * the sides).  Each difference is reported at the caller's line.
 */
void tp_check_clean_end(const char *file, int line, const struct tp_rx *rx,
    uint64_t want_bytes);
#define TP_CHECK_CLEAN_END(rx, want_bytes)                                  \
	tp_check_clean_end(__FILE__, __LINE__, (rx), (want_bytes))

#endif /* UKTLS_TEST_TLSPEER_H */
