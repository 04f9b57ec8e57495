/*
 * Hand-off tests: a real TLS handshake over loopback TCP between OpenSSL or
 * GnuTLS on the uktls side and OpenSSL or GnuTLS as the peer, then the
 * receive side given to uktls with the hand-off helpers and the peer's
 * stream read with uktls_recvmsg() and compared byte for byte with what the
 * peer sent.  Each scenario runs for the six suites.
 *
 * The scenarios are the ways a hand-off goes wrong in practice: bytes of
 * the peer's first application records arriving with (or right after) its
 * Finished, read-ahead on or off, the application having read part of a
 * record before the hand-off (plaintext hand-over), a record half-read by a
 * non-blocking SSL_read (ciphertext hand-over), KeyUpdates processed before
 * the hand-off, session resumption, NewSessionTicket records when the
 * uktls side is the client, and the application's own keylog, message and
 * info callbacks, which must keep being called.
 *
 * The peer runs on its own thread and never calls harness_fail(): it leaves
 * a message in its struct peer, which the test reports after joining it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fault.h"
#include "harness.h"
#include "tlsgen.h"
#include "uktls.h"
#include "uktls/gnutls.h"
#include "uktls/openssl.h"

#define APP TLS_RLTYPE_APP
#define KIB 1024u
/* The peer's stream in most scenarios. */
#define STREAM_LEN ((uint64_t)(1024 * KIB / TG_SCALE_DIV))
/* How long a peer waits for its socket before giving up. */
#define PEER_WAIT_MS (20000 * TG_TIME_MUL)

#define FAILIF(cond, ...)                                                  \
	do {                                                               \
		if (cond) {                                                \
			harness_fail(__FILE__, __LINE__, __VA_ARGS__);     \
			goto out;                                          \
		}                                                          \
	} while (0)

/* ==== the data ======================================================= */

/*
 * The peer's stream: byte i of stream seed is a function of (seed, i), so
 * that the reader can check any piece without keeping what came before.
 */
static uint64_t
pat_word(uint64_t seed, uint64_t i)
{
	uint64_t z;

	z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static void
pat_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t len)
{
	uint64_t w;
	unsigned int sh;
	size_t i = 0;

	while (i < len) {
		w = pat_word(seed, (off + i) >> 3);
		for (sh = (unsigned int)((off + i) & 7); sh < 8 && i < len;
		    sh++, i++)
			p[i] = (uint8_t)(w >> (sh * 8));
	}
}

/* ==== an ephemeral certificate ======================================= */

static struct {
	EVP_PKEY *pkey;
	X509 *x509;
	gnutls_datum_t cert_pem;
	gnutls_datum_t key_pem;
	int ok;
} tcert;
static pthread_once_t tcert_once = PTHREAD_ONCE_INIT;

static int
pem_datum(BIO *b, gnutls_datum_t *d)
{
	char *p;
	long n;

	n = BIO_get_mem_data(b, &p);
	if (n <= 0)
		return (-1);
	d->data = malloc((size_t)n + 1);
	if (d->data == NULL)
		return (-1);
	memcpy(d->data, p, (size_t)n);
	d->data[n] = '\0';
	d->size = (unsigned int)n;
	return (0);
}

/* A self-signed P-256 certificate for CN=localhost, made once. */
static void
tcert_make(void)
{
	X509_NAME *name;
	BIO *cb = NULL, *kb = NULL;

	tcert.pkey = EVP_EC_gen("P-256");
	tcert.x509 = X509_new();
	if (tcert.pkey == NULL || tcert.x509 == NULL)
		return;
	if (!X509_set_version(tcert.x509, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(tcert.x509), 1) ||
	    X509_gmtime_adj(X509_getm_notBefore(tcert.x509), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(tcert.x509), 86400) == NULL ||
	    !X509_set_pubkey(tcert.x509, tcert.pkey))
		return;
	name = X509_get_subject_name(tcert.x509);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(tcert.x509, name) ||
	    X509_sign(tcert.x509, tcert.pkey, EVP_sha256()) == 0)
		return;
	cb = BIO_new(BIO_s_mem());
	kb = BIO_new(BIO_s_mem());
	if (cb != NULL && kb != NULL && PEM_write_bio_X509(cb, tcert.x509) &&
	    PEM_write_bio_PrivateKey(kb, tcert.pkey, NULL, NULL, 0, NULL,
	    NULL) && pem_datum(cb, &tcert.cert_pem) == 0 &&
	    pem_datum(kb, &tcert.key_pem) == 0)
		tcert.ok = 1;
	BIO_free(cb);
	BIO_free(kb);
}

static int
tcert_get(void)
{

	pthread_once(&tcert_once, tcert_make);
	return (tcert.ok ? 0 : -1);
}

/* ==== library settings per suite ===================================== */

static int
suite_is13(const struct tg_suite *s)
{

	return (s->tls_vminor == TLS_MINOR_VER_THREE);
}

/* OpenSSL's name for the suite (an ECDSA certificate for TLS 1.2). */
static const char *
ossl_suite(const struct tg_suite *s)
{

	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		return (suite_is13(s) ? "TLS_CHACHA20_POLY1305_SHA256" :
		    "ECDHE-ECDSA-CHACHA20-POLY1305");
	if (s->key_len == 16)
		return (suite_is13(s) ? "TLS_AES_128_GCM_SHA256" :
		    "ECDHE-ECDSA-AES128-GCM-SHA256");
	return (suite_is13(s) ? "TLS_AES_256_GCM_SHA384" :
	    "ECDHE-ECDSA-AES256-GCM-SHA384");
}

static const char *
gnutls_prio(const struct tg_suite *s)
{

	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		return (suite_is13(s) ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
		    "-CIPHER-ALL:+CHACHA20-POLY1305" : "NORMAL:-VERS-ALL:"
		    "+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305");
	if (s->key_len == 16)
		return (suite_is13(s) ?
		    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM" :
		    "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM");
	return (suite_is13(s) ?
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM" :
	    "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM");
}

/*
 * An OpenSSL context for suite s (or, with cipher set, that TLS 1.2 cipher
 * list or TLS 1.3 suite), either side.
 */
static SSL_CTX *
ossl_ctx_for(int vminor, const char *cipher, int server)
{
	SSL_CTX *ctx;
	int v;

	if (tcert_get() != 0)
		return (NULL);
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return (NULL);
	v = vminor == TLS_MINOR_VER_THREE ? TLS1_3_VERSION : TLS1_2_VERSION;
	if (!SSL_CTX_set_min_proto_version(ctx, v) ||
	    !SSL_CTX_set_max_proto_version(ctx, v) ||
	    (v == TLS1_3_VERSION ? !SSL_CTX_set_ciphersuites(ctx, cipher) :
	    !SSL_CTX_set_cipher_list(ctx, cipher)) ||
	    (server && (!SSL_CTX_use_certificate(ctx, tcert.x509) ||
	    !SSL_CTX_use_PrivateKey(ctx, tcert.pkey)))) {
		SSL_CTX_free(ctx);
		return (NULL);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return (ctx);
}

static SSL_CTX *
ossl_ctx(const struct tg_suite *s, int server)
{

	return (ossl_ctx_for(s->tls_vminor, ossl_suite(s), server));
}

static const char *
ossl_errstr(void)
{
	static __thread char buf[160];
	unsigned long e;

	e = ERR_get_error();
	ERR_clear_error();
	if (e == 0)
		return ("no OpenSSL error queued");
	ERR_error_string_n(e, buf, sizeof(buf));
	return (buf);
}

/* ==== waiting on sockets ============================================= */

static int
wait_fd(int fd, short events, int ms)
{
	struct pollfd pfd;
	int r;

	pfd.fd = fd;
	pfd.events = events;
	pfd.revents = 0;
	do
		r = poll(&pfd, 1, ms);
	while (r == -1 && errno == EINTR);
	return (r);
}

/*
 * Run an OpenSSL handshake to its end on a blocking or non-blocking socket.
 * Returns 1, or what SSL_do_handshake() returned.
 */
static int
ossl_handshake(SSL *ssl, int fd)
{
	int r, e;

	if (SSL_in_before(ssl)) {
		if (SSL_is_server(ssl))
			SSL_set_accept_state(ssl);
		else
			SSL_set_connect_state(ssl);
	}
	for (;;) {
		r = SSL_do_handshake(ssl);
		if (r == 1)
			return (1);
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			r = wait_fd(fd, POLLIN, PEER_WAIT_MS);
		else if (e == SSL_ERROR_WANT_WRITE)
			r = wait_fd(fd, POLLOUT, PEER_WAIT_MS);
		else
			return (r);
		if (r != 1)
			return (-1);
	}
}

/* SSL_read until n > 0 bytes arrive, on a blocking or non-blocking socket. */
static int
ossl_read_some(SSL *ssl, int fd, void *buf, int len)
{
	int r, e;

	for (;;) {
		r = SSL_read(ssl, buf, len);
		if (r > 0)
			return (r);
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ || wait_fd(fd, POLLIN,
		    PEER_WAIT_MS) != 1)
			return (-1);
	}
}

static int
gnutls_do_handshake(gnutls_session_t ses, int fd)
{
	int r;

	for (;;) {
		r = gnutls_handshake(ses);
		if (r == 0)
			return (0);
		if (gnutls_error_is_fatal(r))
			return (r);
		if (r == GNUTLS_E_AGAIN && wait_fd(fd,
		    gnutls_record_get_direction(ses) ? POLLOUT : POLLIN,
		    PEER_WAIT_MS) != 1)
			return (r);
	}
}

/* ==== the peer ======================================================= */

enum peer_kind {
	PEER_OPENSSL,     /* OpenSSL on the socket */
	PEER_OPENSSL_MEM, /* OpenSSL client through memory BIOs */
	PEER_GNUTLS,
};

struct peer {
	/* Set by the test. */
	enum peer_kind kind;
	const struct tg_suite *suite;
	int fd;
	int server;         /* the peer is the TLS server */
	SSL_CTX *ctx;       /* OpenSSL: owned by the test */
	const char *prio;   /* GnuTLS: priorities, if not the suite's */
	SSL_SESSION *resume;
	int coalesce;       /* mem: writes that go out with the Finished */
	int split;          /* mem: the first record in two halves */
	int half_fd;        /* split: a byte here when the first half is out */
	int go_fd;          /* split: wait for a byte here before the rest */
	int half_rd;        /* split: the test's ends of the two pipes */
	int go_wr;
	int key_updates;    /* KeyUpdates before the first write (TLS 1.3) */
	int ku_requested;   /* ... asking the other side to update too */
	uint64_t seed;
	uint64_t total;
	size_t first_len;   /* the first write's length, 0 random */
	/* Results. */
	SSL_SESSION *session;
	int resumed;
	char err[256];
	pthread_t thr;
	int started;
};

static void peer_fail(struct peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

/* The size of the peer's k-th write. */
static size_t
peer_chunk(const struct peer *p, struct tg_rng *rng, uint64_t k,
    uint64_t left)
{
	uint64_t n;

	n = k == 0 && p->first_len > 0 ? p->first_len :
	    1 + tg_rng_below(rng, 20000);
	return ((size_t)(n < left ? n : left));
}

/* Send what the memory BIO holds, in one write. */
static int
mem_flush(struct peer *p, SSL *ssl, size_t split_at)
{
	BIO *wb = SSL_get_wbio(ssl);
	uint8_t *buf;
	size_t n;
	char c = 'h';
	int ret = -1;

	n = BIO_ctrl_pending(wb);
	if (n == 0)
		return (0);
	buf = malloc(n);
	if (buf == NULL)
		return (-1);
	if (BIO_read(wb, buf, (int)n) != (int)n) {
		peer_fail(p, "BIO_read of %zu bytes", n);
		goto out;
	}
	if (split_at > 0 && split_at < n) {
		if (tg_write_all(p->fd, buf, split_at) != (ssize_t)split_at ||
		    write(p->half_fd, &c, 1) != 1) {
			peer_fail(p, "first half: %s", strerror(errno));
			goto out;
		}
		if (wait_fd(p->go_fd, POLLIN, PEER_WAIT_MS) != 1 ||
		    read(p->go_fd, &c, 1) != 1) {
			peer_fail(p, "no go for the second half");
			goto out;
		}
		if (tg_write_all(p->fd, buf + split_at, n - split_at) !=
		    (ssize_t)(n - split_at)) {
			peer_fail(p, "second half: %s", strerror(errno));
			goto out;
		}
	} else if (tg_write_all(p->fd, buf, n) != (ssize_t)n) {
		peer_fail(p, "write %zu bytes: %s", n, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return (ret);
}

/* A client handshake with the bytes carried by hand; Finished not sent. */
static int
mem_connect(struct peer *p, SSL *ssl)
{
	uint8_t buf[4096];
	ssize_t n;
	int r;

	for (;;) {
		r = SSL_connect(ssl);
		if (r == 1)
			return (0);
		if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
			peer_fail(p, "SSL_connect: %s", ossl_errstr());
			return (-1);
		}
		if (mem_flush(p, ssl, 0) != 0)
			return (-1);
		if (wait_fd(p->fd, POLLIN, PEER_WAIT_MS) != 1 ||
		    (n = recv(p->fd, buf, sizeof(buf), 0)) <= 0) {
			peer_fail(p, "handshake: no bytes from the server");
			return (-1);
		}
		BIO_write(SSL_get_rbio(ssl), buf, (int)n);
	}
}

/*
 * Read what the other side still sends until it closes, so that closing
 * our socket sends no RST over unread bytes.  OpenSSL reads them as TLS,
 * which takes in NewSessionTickets for a later resumption.
 */
static void
peer_drain(struct peer *p, SSL *ssl)
{
	uint8_t buf[4096];
	ssize_t n;

	for (;;) {
		if (wait_fd(p->fd, POLLIN, PEER_WAIT_MS) != 1)
			return;
		if (ssl != NULL && p->kind == PEER_OPENSSL) {
			if (SSL_read(ssl, buf, sizeof(buf)) <= 0) {
				ERR_clear_error();
				return;
			}
			continue;
		}
		n = recv(p->fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return;
		if (ssl != NULL) {
			BIO_write(SSL_get_rbio(ssl), buf, (int)n);
			(void)SSL_read(ssl, buf, sizeof(buf));
			ERR_clear_error();
		}
	}
}

static void *
opeer_main(void *arg)
{
	struct peer *p = arg;
	struct tg_rng rng = { p->seed ^ 0x5555 };
	SSL *ssl;
	uint8_t *buf;
	uint64_t off = 0, k = 0;
	size_t n;
	int i, held = 0;

	buf = malloc(20000);
	ssl = SSL_new(p->ctx);
	if (buf == NULL || ssl == NULL) {
		peer_fail(p, "out of memory");
		goto out;
	}
	if (p->resume != NULL)
		SSL_set_session(ssl, p->resume);
	if (p->kind == PEER_OPENSSL_MEM) {
		SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
		if (mem_connect(p, ssl) != 0)
			goto out;
	} else {
		SSL_set_fd(ssl, p->fd);
		if ((p->server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
			peer_fail(p, "handshake: %s", ossl_errstr());
			goto out;
		}
	}
	p->resumed = SSL_session_reused(ssl);
	for (i = 0; i < p->key_updates; i++) {
		if (!SSL_key_update(ssl, p->ku_requested ?
		    SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) ||
		    SSL_do_handshake(ssl) != 1) {
			peer_fail(p, "KeyUpdate: %s", ossl_errstr());
			goto out;
		}
	}
	/* Mem: the Finished (TLS 1.3) waits in the BIO to go with data. */
	if (p->kind == PEER_OPENSSL_MEM && p->coalesce == 0 &&
	    mem_flush(p, ssl, 0) != 0)
		goto out;
	while (off < p->total) {
		n = peer_chunk(p, &rng, k, p->total - off);
		pat_fill(p->seed, off, buf, n);
		if (SSL_write(ssl, buf, (int)n) != (int)n) {
			peer_fail(p, "SSL_write at %" PRIu64 ": %s", off,
			    ossl_errstr());
			goto out;
		}
		off += n;
		k++;
		if (p->kind != PEER_OPENSSL_MEM)
			continue;
		if (p->coalesce > 0 && ++held < p->coalesce &&
		    off < p->total)
			continue;
		if (mem_flush(p, ssl, p->split && k == 1 ?
		    TG_HDR_LEN + n / 2 : 0) != 0)
			goto out;
		held = 0;
	}
	if (SSL_shutdown(ssl) < 0) {
		peer_fail(p, "SSL_shutdown: %s", ossl_errstr());
		goto out;
	}
	if (p->kind == PEER_OPENSSL_MEM && mem_flush(p, ssl, 0) != 0)
		goto out;
	shutdown(p->fd, SHUT_WR);
	peer_drain(p, ssl);
	if (!p->server)
		p->session = SSL_get1_session(ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	free(buf);
	close(p->fd);
	p->fd = -1;
	return (NULL);
}

static void *
gpeer_main(void *arg)
{
	struct peer *p = arg;
	struct tg_rng rng = { p->seed ^ 0x5555 };
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t ses = NULL;
	uint8_t *buf;
	uint64_t off = 0, k = 0;
	size_t n, done;
	ssize_t w;
	int i, r;

	buf = malloc(20000);
	if (buf == NULL || gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_init(&ses, p->server ? GNUTLS_SERVER : GNUTLS_CLIENT) < 0) {
		peer_fail(p, "GnuTLS setup");
		goto out;
	}
	if ((p->server && gnutls_certificate_set_x509_key_mem(cred,
	    &tcert.cert_pem, &tcert.key_pem, GNUTLS_X509_FMT_PEM) < 0) ||
	    gnutls_priority_set_direct(ses, p->prio != NULL ? p->prio :
	    gnutls_prio(p->suite), NULL) < 0 ||
	    gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		peer_fail(p, "GnuTLS settings");
		goto out;
	}
	gnutls_transport_set_int(ses, p->fd);
	r = gnutls_do_handshake(ses, p->fd);
	if (r != 0) {
		peer_fail(p, "gnutls_handshake: %s", gnutls_strerror(r));
		goto out;
	}
	for (i = 0; i < p->key_updates; i++) {
		r = gnutls_session_key_update(ses, p->ku_requested ?
		    GNUTLS_KU_PEER : 0);
		if (r < 0) {
			peer_fail(p, "key update: %s", gnutls_strerror(r));
			goto out;
		}
	}
	while (off < p->total) {
		n = peer_chunk(p, &rng, k, p->total - off);
		pat_fill(p->seed, off, buf, n);
		for (done = 0; done < n; done += (size_t)w) {
			w = gnutls_record_send(ses, buf + done, n - done);
			if (w < 0 && !gnutls_error_is_fatal((int)w)) {
				w = 0;
				continue;
			}
			if (w <= 0) {
				peer_fail(p, "gnutls_record_send: %s",
				    gnutls_strerror((int)w));
				goto out;
			}
		}
		off += n;
		k++;
	}
	(void)gnutls_bye(ses, GNUTLS_SHUT_WR);
	shutdown(p->fd, SHUT_WR);
	peer_drain(p, NULL);
out:
	if (ses != NULL)
		gnutls_deinit(ses);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	free(buf);
	close(p->fd);
	p->fd = -1;
	return (NULL);
}

static int
peer_start(struct peer *p)
{

	p->started = pthread_create(&p->thr, NULL,
	    p->kind == PEER_GNUTLS ? gpeer_main : opeer_main, p) == 0;
	return (p->started ? 0 : -1);
}

/* Join the peer and report its failure, if any. */
static void
peer_join(struct peer *p)
{

	if (!p->started)
		return;
	pthread_join(p->thr, NULL);
	p->started = 0;
	if (p->err[0] != '\0')
		harness_fail(__FILE__, __LINE__, "peer: %s", p->err);
}

/* ==== reading the stream with uktls ================================== */

struct rx_stats {
	uint64_t bytes;      /* application data */
	int app_recs;
	size_t first_app_len;
	int nst;             /* NewSessionTicket records */
	int other_hs;        /* other handshake records */
	int close_notify;
	int other_alerts;
	int eof;
	int err;             /* errno of a failed receive */
};

/*
 * Read records until end of stream, an error or a timeout; application
 * data must be the peer's stream from offset start on.  Returns 0 if all
 * went as the checks expect, -1 after reporting a failure.
 */
static int
rx_stream(int fd, uint64_t seed, uint64_t start, struct rx_stats *st)
{
	static const size_t bufsize = TLS_MAX_MSG_SIZE_V10_2 + 512;
	struct tg_rec r;
	uint8_t *buf, *want;
	size_t i;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	buf = malloc(bufsize);
	want = malloc(bufsize);
	if (buf == NULL || want == NULL)
		abort();
	for (;;) {
		FAILIF(tg_wait_readable(fd, TG_WAIT_MS) != 1, "no record "
		    "within %d ms after %" PRIu64 " bytes", TG_WAIT_MS,
		    st->bytes);
		tg_recv(fd, buf, bufsize, 0, TG_CTL_DEFAULT, &r);
		if (r.n == -1) {
			st->err = r.err;
			ret = 0;
			goto out;
		}
		if (r.n == 0 && r.ncmsg == 0) {
			st->eof = 1;
			ret = 0;
			goto out;
		}
		FAILIF(!r.cmsg_ok || (r.flags & MSG_EOR) == 0 ||
		    (r.flags & MSG_CTRUNC) != 0, "record after %" PRIu64
		    " bytes: cmsg %d, flags %#x", st->bytes, r.cmsg_ok,
		    r.flags);
		FAILIF(r.tgr.tls_vmajor != TLS_MAJOR_VER_ONE ||
		    r.tgr.tls_vminor != TLS_MINOR_VER_TWO ||
		    ntohs(r.tgr.tls_length) != (size_t)r.n,
		    "record header %u.%u length %u for %zd bytes",
		    r.tgr.tls_vmajor, r.tgr.tls_vminor,
		    ntohs(r.tgr.tls_length), r.n);
		FAILIF(st->close_notify > 0, "record of type %u after "
		    "close_notify", r.tgr.tls_type);
		switch (r.tgr.tls_type) {
		case APP:
			pat_fill(seed, start + st->bytes, want, (size_t)r.n);
			if (memcmp(buf, want, (size_t)r.n) != 0) {
				for (i = 0; buf[i] == want[i]; i++)
					;
				FAILIF(1, "stream differs at byte %" PRIu64,
				    start + st->bytes + i);
			}
			if (st->app_recs++ == 0)
				st->first_app_len = (size_t)r.n;
			st->bytes += (uint64_t)r.n;
			break;
		case TLS_RLTYPE_HANDSHAKE:
			if (r.n > 0 && buf[0] == 4)
				st->nst++;
			else
				st->other_hs++;
			break;
		case TLS_RLTYPE_ALERT:
			if (r.n == 2 && buf[0] == 1 && buf[1] == 0)
				st->close_notify++;
			else
				st->other_alerts++;
			break;
		default:
			FAILIF(1, "record of type %u", r.tgr.tls_type);
		}
	}
out:
	free(buf);
	free(want);
	return (ret);
}

/* The usual end: all of the stream, a close_notify, then end of stream. */
static void
check_complete(const struct rx_stats *st, uint64_t want_bytes)
{

	CHECK_EQ(st->err, 0);
	CHECK_EQ(st->bytes, want_bytes);
	CHECK_EQ(st->close_notify, 1);
	CHECK_EQ(st->other_alerts, 0);
	CHECK_EQ(st->other_hs, 0);
	CHECK_EQ(st->eof, 1);
}

/* ==== the application's own callbacks ================================ */

static atomic_int app_keylog_lines, app_keylog_traffic, app_msg_calls,
    app_info_calls;

static void
app_keylog(const SSL *ssl, const char *line)
{

	(void)ssl;
	atomic_fetch_add(&app_keylog_lines, 1);
	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0 ||
	    strncmp(line, "CLIENT_RANDOM ", 14) == 0)
		atomic_fetch_add(&app_keylog_traffic, 1);
}

static void
app_msg(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{

	(void)write_p, (void)version, (void)content_type, (void)buf;
	(void)len, (void)ssl;
	if (arg == (void *)&app_msg_calls)
		atomic_fetch_add(&app_msg_calls, 1);
}

static void
app_info(const SSL *ssl, int where, int ret)
{

	(void)ssl, (void)where, (void)ret;
	atomic_fetch_add(&app_info_calls, 1);
}

static void
app_callbacks_reset(void)
{

	atomic_store(&app_keylog_lines, 0);
	atomic_store(&app_keylog_traffic, 0);
	atomic_store(&app_msg_calls, 0);
	atomic_store(&app_info_calls, 0);
}

/* ==== scenarios ====================================================== */

enum helper {
	H_OPENSSL,
	H_GNUTLS,
};

enum cb_when {
	CB_NONE,
	CB_BEFORE, /* the application sets its callbacks before prepare() */
	CB_AFTER,  /* ... after prepare() */
};

struct scenario {
	enum helper helper;   /* the uktls side's library */
	int uktls_client;     /* the uktls side is the TLS client */
	enum peer_kind peer;
	int read_ahead;       /* OpenSSL: SSL_CTX_set_read_ahead */
	int nonblock;         /* the uktls side's socket */
	enum cb_when callbacks;
	int coalesce;         /* peer writes that go with its Finished */
	int split;            /* first record half-read before the enable */
	int key_updates;      /* peer KeyUpdates before its first write */
	int ku_requested;     /* ... with update_requested */
	int resume;           /* a first connection, then a resumed one */
	size_t read_before;   /* the application reads this much first */
	size_t first_len;     /* the peer's first write */
	unsigned int delay_ms;/* pause between handshake and enable */
	uint64_t total;
};

/*
 * The uktls side with OpenSSL: prepare, handshake, whatever the scenario
 * does before the enable, enable.  Returns the SSL (to be freed after the
 * socket is closed), or NULL after reporting a failure.
 */
static SSL *
ossl_side(const struct scenario *sc, SSL_CTX *ctx, int fd, struct peer *p,
    uint64_t *start)
{
	SSL *ssl;
	uint8_t buf[2048], want[2048];
	char c = 'g';
	int r, ok = 0;

	*start = 0;
	ssl = SSL_new(ctx);
	FAILIF(ssl == NULL, "SSL_new: %s", ossl_errstr());
	FAILIF(!SSL_set_fd(ssl, fd), "SSL_set_fd");
	if (sc->callbacks == CB_BEFORE) {
		SSL_set_msg_callback(ssl, app_msg);
		SSL_set_msg_callback_arg(ssl, &app_msg_calls);
		SSL_set_info_callback(ssl, app_info);
	}
	FAILIF((r = uktls_openssl_prepare(ssl)) != 0,
	    "uktls_openssl_prepare: %s", strerror(r));
	if (sc->callbacks == CB_AFTER) {
		SSL_CTX_set_keylog_callback(ctx, app_keylog);
		SSL_set_msg_callback(ssl, app_msg);
		SSL_set_msg_callback_arg(ssl, &app_msg_calls);
		SSL_set_info_callback(ssl, app_info);
	}
	r = ossl_handshake(ssl, fd);
	FAILIF(r != 1, "handshake: %s", ossl_errstr());
	if (sc->read_before > 0) {
		r = ossl_read_some(ssl, fd, buf, (int)sc->read_before);
		FAILIF(r <= 0, "SSL_read before the enable: %s",
		    ossl_errstr());
		pat_fill(p->seed, 0, want, (size_t)r);
		FAILIF(memcmp(buf, want, (size_t)r) != 0,
		    "SSL_read before the enable: wrong data");
		*start = (uint64_t)r;
		FAILIF(SSL_pending(ssl) <= 0, "nothing left pending after "
		    "reading %d of the first record", r);
	}
	if (sc->split) {
		/* The peer's first record is half in: OpenSSL reads half. */
		FAILIF(wait_fd(p->half_rd, POLLIN, TG_WAIT_MS) != 1 ||
		    read(p->half_rd, &c, 1) != 1, "peer sent no half record");
		tg_sleep_ms(20);
		r = SSL_read(ssl, buf, sizeof(buf));
		FAILIF(r > 0 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ,
		    "SSL_read of half a record returned %d (error %d)", r,
		    SSL_get_error(ssl, r));
	}
	if (sc->delay_ms > 0)
		tg_sleep_ms(sc->delay_ms);
	r = uktls_openssl_enable_rx(ssl);
	FAILIF(r != 0, "uktls_openssl_enable_rx: %s", strerror(r));
	if (sc->split)
		FAILIF(write(p->go_wr, &c, 1) != 1, "go: %s", strerror(errno));
	ok = 1;
out:
	if (!ok) {
		SSL_free(ssl);
		ssl = NULL;
	}
	return (ssl);
}

/* The same with GnuTLS.  Returns the session, or NULL. */
static gnutls_session_t
gnutls_side(const struct scenario *sc, const struct tg_suite *s,
    gnutls_certificate_credentials_t cred, int fd, struct peer *p,
    uint64_t *start)
{
	gnutls_session_t ses = NULL;
	uint8_t buf[2048], want[2048];
	ssize_t n;
	int r, ok = 0;

	*start = 0;
	FAILIF(gnutls_init(&ses, sc->uktls_client ? GNUTLS_CLIENT :
	    GNUTLS_SERVER) < 0, "gnutls_init");
	FAILIF(gnutls_priority_set_direct(ses, gnutls_prio(s), NULL) < 0 ||
	    gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, cred) < 0,
	    "GnuTLS settings");
	gnutls_transport_set_int(ses, fd);
	r = gnutls_do_handshake(ses, fd);
	FAILIF(r != 0, "gnutls_handshake: %s", gnutls_strerror(r));
	if (sc->read_before > 0) {
		do {
			n = gnutls_record_recv(ses, buf, sc->read_before);
			if (n == GNUTLS_E_AGAIN && wait_fd(fd, POLLIN,
			    TG_WAIT_MS) != 1)
				break;
		} while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
		FAILIF(n <= 0, "gnutls_record_recv before the enable: %s",
		    gnutls_strerror((int)n));
		pat_fill(p->seed, 0, want, (size_t)n);
		FAILIF(memcmp(buf, want, (size_t)n) != 0,
		    "gnutls_record_recv before the enable: wrong data");
		*start = (uint64_t)n;
		FAILIF(gnutls_record_check_pending(ses) == 0,
		    "nothing pending after reading %zd bytes", n);
	}
	if (sc->delay_ms > 0)
		tg_sleep_ms(sc->delay_ms);
	r = uktls_gnutls_enable_rx(ses);
	FAILIF(r != 0, "uktls_gnutls_enable_rx: %s", strerror(r));
	ok = 1;
out:
	if (!ok && ses != NULL) {
		gnutls_deinit(ses);
		ses = NULL;
	}
	return (ses);
}

/*
 * One connection of a scenario.  uctx is the uktls side's OpenSSL context,
 * pctx the peer's (kept across connections for resumption).  Returns 0 or
 * -1 (failures reported).
 */
static int
run_conn(const struct tg_suite *s, const struct scenario *sc, SSL_CTX *uctx,
    SSL_CTX *pctx, SSL_SESSION *resume, SSL_SESSION **sessp, int coalesce)
{
	struct peer p;
	struct rx_stats st;
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t ses = NULL;
	SSL *ssl = NULL;
	uint64_t start = 0;
	int rx = -1, tx = -1, half[2] = { -1, -1 }, go[2] = { -1, -1 };
	int fails0 = harness_cur_failed, resumed;

	memset(&p, 0, sizeof(p));
	p.fd = -1;
	FAILIF(tg_tcp_pair(&rx, &tx) != 0, "tcp pair: %s", strerror(errno));
	if (sc->nonblock)
		FAILIF(fcntl(rx, F_SETFL, fcntl(rx, F_GETFL) | O_NONBLOCK) != 0,
		    "O_NONBLOCK");
	if (sc->split)
		FAILIF(pipe(half) != 0 || pipe(go) != 0, "pipe");
	p.kind = sc->peer;
	p.suite = s;
	p.fd = tx;
	tx = -1;
	p.server = sc->uktls_client;
	p.ctx = pctx;
	p.resume = resume;
	p.coalesce = coalesce;
	p.split = sc->split;
	p.half_fd = half[1];
	p.go_fd = go[0];
	p.half_rd = half[0];
	p.go_wr = go[1];
	p.key_updates = sc->key_updates;
	p.ku_requested = sc->ku_requested;
	p.seed = tg_random64();
	p.total = sc->total;
	p.first_len = sc->first_len;
	FAILIF(peer_start(&p) != 0, "peer thread");

	if (sc->helper == H_OPENSSL) {
		ssl = ossl_side(sc, uctx, rx, &p, &start);
		if (ssl == NULL)
			goto out;
		resumed = SSL_session_reused(ssl);
	} else {
		FAILIF(gnutls_certificate_allocate_credentials(&cred) < 0 ||
		    (!sc->uktls_client &&
		    gnutls_certificate_set_x509_key_mem(cred, &tcert.cert_pem,
		    &tcert.key_pem, GNUTLS_X509_FMT_PEM) < 0), "credentials");
		ses = gnutls_side(sc, s, cred, rx, &p, &start);
		if (ses == NULL)
			goto out;
		resumed = gnutls_session_is_resumed(ses);
	}
	if (resume != NULL)
		CHECK(resumed);
	if (rx_stream(rx, p.seed, start, &st) != 0)
		goto out;
	check_complete(&st, sc->total - start);
	if (sc->read_before > 0)
		CHECK_EQ(st.first_app_len, sc->first_len - start);
	/*
	 * TLS 1.3 NewSessionTickets from an OpenSSL server (two by default)
	 * reach the uktls client as handshake records, unless the
	 * application's read before the enable took them.
	 */
	if (sc->uktls_client && suite_is13(s) && sc->peer != PEER_GNUTLS &&
	    sc->read_before == 0)
		CHECK_EQ(st.nst, 2);
	else
		CHECK_EQ(st.nst, 0);
out:
	if (rx != -1)
		uktls_close(rx);
	if (tx != -1)
		close(tx);
	if (p.started) {
		/* Unblock a peer waiting for the go. */
		if (go[1] != -1 && harness_cur_failed != fails0) {
			close(go[1]);
			go[1] = -1;
		}
		peer_join(&p);
	} else if (p.fd != -1)
		close(p.fd);
	if (sessp != NULL)
		*sessp = p.session;
	else
		SSL_SESSION_free(p.session);
	SSL_free(ssl);
	if (ses != NULL)
		gnutls_deinit(ses);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	if (half[0] != -1)
		close(half[0]);
	if (half[1] != -1)
		close(half[1]);
	if (go[0] != -1)
		close(go[0]);
	if (go[1] != -1)
		close(go[1]);
	return (harness_cur_failed == fails0 ? 0 : -1);
}

static void
run_scenario(const struct tg_suite *s, const struct scenario *sc)
{
	SSL_CTX *uctx = NULL, *pctx = NULL;
	SSL_SESSION *sess = NULL;

	tg_watchdog(TG_WATCHDOG_S);
	app_callbacks_reset();
	FAILIF(tcert_get() != 0, "no certificate");
	if (sc->helper == H_OPENSSL) {
		uctx = ossl_ctx(s, !sc->uktls_client);
		FAILIF(uctx == NULL, "SSL_CTX: %s", ossl_errstr());
		SSL_CTX_set_read_ahead(uctx, sc->read_ahead);
		if (sc->callbacks == CB_BEFORE) {
			SSL_CTX_set_keylog_callback(uctx, app_keylog);
			/* Also on the context: SSL_new() copies it. */
			SSL_CTX_set_msg_callback(uctx, app_msg);
			SSL_CTX_set_msg_callback_arg(uctx, &app_msg_calls);
		}
	}
	if (sc->peer != PEER_GNUTLS) {
		pctx = ossl_ctx(s, sc->uktls_client);
		FAILIF(pctx == NULL, "peer SSL_CTX: %s", ossl_errstr());
		SSL_CTX_set_read_ahead(pctx, sc->read_ahead);
	}
	if (sc->resume) {
		/* A full handshake first, for a session to resume. */
		struct scenario first = *sc;

		first.peer = sc->peer == PEER_OPENSSL_MEM ? PEER_OPENSSL :
		    sc->peer;
		first.split = 0;
		first.read_before = 0;
		if (run_conn(s, &first, uctx, pctx, NULL, &sess, 0) != 0)
			goto out;
		FAILIF(sess == NULL || !SSL_SESSION_is_resumable(sess),
		    "no resumable session from the first connection");
	}
	(void)run_conn(s, sc, uctx, pctx, sess, NULL, sc->coalesce);
	if (sc->callbacks != CB_NONE) {
		CHECK(atomic_load(&app_keylog_traffic) > 0);
		CHECK(atomic_load(&app_msg_calls) > 0);
		CHECK(atomic_load(&app_info_calls) > 0);
	}
out:
	SSL_SESSION_free(sess);
	SSL_CTX_free(uctx);
	SSL_CTX_free(pctx);
}

static const struct scenario sc_defaults = {
	.helper = H_OPENSSL,
	.peer = PEER_OPENSSL,
	.total = STREAM_LEN,
};

/* ---- OpenSSL on the uktls side, as the server ----------------------- */

/* Plain: the peer writes right after its handshake; no read-ahead. */
static void
t_ossl_basic(void *arg)
{
	struct scenario sc = sc_defaults;

	run_scenario(arg, &sc);
}

static void
t_ossl_read_ahead(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.read_ahead = 1;
	run_scenario(arg, &sc);
}

/*
 * The peer's Finished and its first three records in one TCP write (TLS
 * 1.2: on a resumed session, where the client sends the last Finished),
 * and the enable delayed so that more piles up, with read-ahead on and
 * off.
 */
static void
t_ossl_coalesced(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.peer = PEER_OPENSSL_MEM;
	sc.coalesce = 3;
	sc.resume = !suite_is13(arg);
	sc.delay_ms = 50;
	run_scenario(arg, &sc);
}

static void
t_ossl_coalesced_read_ahead(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.peer = PEER_OPENSSL_MEM;
	sc.coalesce = 3;
	sc.resume = !suite_is13(arg);
	sc.read_ahead = 1;
	sc.delay_ms = 50;
	run_scenario(arg, &sc);
}

/* TLS 1.3 resumption too, with the data coalesced. */
static void
t_ossl_resumed(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.peer = PEER_OPENSSL_MEM;
	sc.coalesce = 2;
	sc.resume = 1;
	sc.read_ahead = 1;
	run_scenario(arg, &sc);
}

/* The enable comes late: the peer's stream piles up in the socket. */
static void
t_ossl_delayed_enable(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.read_ahead = 1;
	sc.delay_ms = 150;
	run_scenario(arg, &sc);
}

/* The application read 100 bytes of a 1000-byte record before the enable. */
static void
t_ossl_read_before(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.read_before = 100;
	sc.first_len = 1000;
	run_scenario(arg, &sc);
}

static void
t_ossl_read_before_read_ahead(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.read_before = 100;
	sc.first_len = 1000;
	sc.read_ahead = 1;
	sc.peer = PEER_OPENSSL_MEM;
	sc.coalesce = 4;
	run_scenario(arg, &sc);
}

/*
 * Non-blocking: SSL_read() took the first half of a record and wants more;
 * the enable hands the half over as ciphertext, and the rest follows.
 */
static void
t_ossl_half_record(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.peer = PEER_OPENSSL_MEM;
	sc.nonblock = 1;
	sc.split = 1;
	sc.first_len = 3000;
	run_scenario(arg, &sc);
}

static void
t_ossl_half_record_read_ahead(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.peer = PEER_OPENSSL_MEM;
	sc.nonblock = 1;
	sc.split = 1;
	sc.read_ahead = 1;
	sc.first_len = 16384;
	run_scenario(arg, &sc);
}

/* The application's keylog, message and info callbacks keep working. */
static void
t_ossl_app_callbacks(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.callbacks = CB_BEFORE;
	sc.read_ahead = 1;
	run_scenario(arg, &sc);
}

static void
t_ossl_app_callbacks_after(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.callbacks = CB_AFTER;
	run_scenario(arg, &sc);
}

/* TLS 1.3: KeyUpdates that OpenSSL processed before the enable. */
static void
t_ossl_key_update_before(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.key_updates = 2;
	sc.read_before = 10;
	sc.first_len = 500;
	run_scenario(arg, &sc);
}

/* The peer asks for an update back: the uktls side's OpenSSL sends it. */
static void
t_ossl_key_update_requested(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.key_updates = 1;
	sc.ku_requested = 1;
	sc.read_before = 10;
	sc.first_len = 500;
	sc.read_ahead = 1;
	run_scenario(arg, &sc);
}

/* The same with a GnuTLS peer. */
static void
t_ossl_gnutls_peer(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.peer = PEER_GNUTLS;
	sc.read_ahead = 1;
	run_scenario(arg, &sc);
}

/* ---- OpenSSL on the uktls side, as the client ----------------------- */

static void
t_ossl_client(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.uktls_client = 1;
	sc.read_ahead = 1;
	run_scenario(arg, &sc);
}

/* TLS 1.3: SSL_read() took the tickets and part of a record first. */
static void
t_ossl_client_read_before(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.uktls_client = 1;
	sc.read_before = 300;
	sc.first_len = 4000;
	run_scenario(arg, &sc);
}

/* ---- GnuTLS on the uktls side --------------------------------------- */

static void
t_gnutls_openssl_peer(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	run_scenario(arg, &sc);
}

static void
t_gnutls_gnutls_peer(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.peer = PEER_GNUTLS;
	run_scenario(arg, &sc);
}

static void
t_gnutls_coalesced(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.peer = PEER_OPENSSL_MEM;
	sc.coalesce = 3;
	sc.delay_ms = 50;
	run_scenario(arg, &sc);
}

static void
t_gnutls_read_before(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.read_before = 100;
	sc.first_len = 1000;
	sc.nonblock = 1;
	run_scenario(arg, &sc);
}

static void
t_gnutls_key_update_before(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.peer = PEER_GNUTLS;
	sc.key_updates = 1;
	sc.read_before = 10;
	sc.first_len = 500;
	run_scenario(arg, &sc);
}

static void
t_gnutls_key_update_requested(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.peer = PEER_OPENSSL;
	sc.key_updates = 2;
	sc.ku_requested = 1;
	sc.read_before = 10;
	sc.first_len = 500;
	run_scenario(arg, &sc);
}

static void
t_gnutls_client(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.uktls_client = 1;
	run_scenario(arg, &sc);
}

static void
t_gnutls_client_read_before(void *arg)
{
	struct scenario sc = sc_defaults;

	sc.helper = H_GNUTLS;
	sc.uktls_client = 1;
	sc.read_before = 300;
	sc.first_len = 4000;
	run_scenario(arg, &sc);
}

/* ==== refusals ======================================================= */

/*
 * A suite uktls does not take: the helper says ENOTSUP without touching
 * the socket, and the application carries on with OpenSSL.
 */
static void
ossl_enotsup(int vminor, const char *cipher)
{
	struct peer p;
	SSL_CTX *uctx = NULL;
	SSL *ssl = NULL;
	uint8_t buf[64], want[64];
	int rx = -1, mode = -1;
	socklen_t ml = sizeof(mode);

	memset(&p, 0, sizeof(p));
	p.fd = -1;
	uctx = ossl_ctx_for(vminor, cipher, 1);
	p.ctx = ossl_ctx_for(vminor, cipher, 0);
	FAILIF(uctx == NULL || p.ctx == NULL, "SSL_CTX for %s: %s", cipher,
	    ossl_errstr());
	FAILIF(tg_tcp_pair(&rx, &p.fd) != 0, "tcp pair");
	p.kind = PEER_OPENSSL;
	p.seed = tg_random64();
	p.total = 64;
	FAILIF(peer_start(&p) != 0, "peer thread");
	ssl = SSL_new(uctx);
	FAILIF(ssl == NULL || !SSL_set_fd(ssl, rx), "SSL");
	CHECK_EQ(uktls_openssl_prepare(ssl), 0);
	FAILIF(ossl_handshake(ssl, rx) != 1, "handshake: %s", ossl_errstr());
	CHECK_EQ(uktls_openssl_enable_rx(ssl), ENOTSUP);
	CHECK_EQ(uktls_getsockopt(rx, IPPROTO_TCP, TCP_RXTLS_MODE, &mode,
	    &ml), 0);
	CHECK_EQ(mode, TCP_TLS_MODE_NONE);
	/* Nothing was taken from the socket: OpenSSL reads the data. */
	FAILIF(ossl_read_some(ssl, rx, buf, sizeof(buf)) != 64,
	    "SSL_read after the refusal: %s", ossl_errstr());
	pat_fill(p.seed, 0, want, 64);
	CHECK(memcmp(buf, want, 64) == 0);
out:
	if (rx != -1)
		uktls_close(rx);
	if (p.started)
		peer_join(&p);
	else if (p.fd != -1)
		close(p.fd);
	SSL_SESSION_free(p.session);
	SSL_free(ssl);
	SSL_CTX_free(uctx);
	SSL_CTX_free(p.ctx);
}

TEST(ossl_enotsup_tls12_cbc)
{

	ossl_enotsup(TLS_MINOR_VER_TWO, "ECDHE-ECDSA-AES128-SHA256");
}

TEST(ossl_enotsup_tls13_ccm)
{

	ossl_enotsup(TLS_MINOR_VER_THREE, "TLS_AES_128_CCM_SHA256");
}

static void
gnutls_enotsup(const char *prio)
{
	struct peer p;
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t ses = NULL;
	uint8_t buf[64], want[64];
	ssize_t n;
	int rx = -1, r;

	memset(&p, 0, sizeof(p));
	p.fd = -1;
	FAILIF(tcert_get() != 0, "certificate");
	FAILIF(tg_tcp_pair(&rx, &p.fd) != 0, "tcp pair");
	FAILIF(gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_key_mem(cred, &tcert.cert_pem,
	    &tcert.key_pem, GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_init(&ses, GNUTLS_SERVER) < 0 ||
	    gnutls_priority_set_direct(ses, prio, NULL) < 0 ||
	    gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, cred) < 0,
	    "GnuTLS setup");
	gnutls_transport_set_int(ses, rx);
	/* The peer: GnuTLS with the same priorities, on its own thread. */
	p.kind = PEER_GNUTLS;
	p.prio = prio;
	p.seed = tg_random64();
	p.total = 64;
	FAILIF(peer_start(&p) != 0, "peer thread");
	r = gnutls_do_handshake(ses, rx);
	FAILIF(r != 0, "handshake: %s", gnutls_strerror(r));
	CHECK_EQ(uktls_gnutls_enable_rx(ses), ENOTSUP);
	do
		n = gnutls_record_recv(ses, buf, sizeof(buf));
	while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	CHECK_EQ(n, 64);
	pat_fill(p.seed, 0, want, 64);
	CHECK(n == 64 && memcmp(buf, want, 64) == 0);
out:
	if (rx != -1)
		uktls_close(rx);
	if (p.started)
		peer_join(&p);
	else if (p.fd != -1)
		close(p.fd);
	if (ses != NULL)
		gnutls_deinit(ses);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
}

TEST(gnutls_enotsup_tls12_cbc)
{

	gnutls_enotsup("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:"
	    "+AES-128-CBC");
}

TEST(gnutls_enotsup_tls13_ccm)
{

	gnutls_enotsup("NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:"
	    "+AES-128-CCM");
}

/* ==== the helpers' own errors ======================================== */

TEST(ossl_api_errors)
{
	struct peer p;
	SSL_CTX *uctx = NULL;
	SSL *ssl = NULL, *late = NULL;
	int rx = -1, fds[2] = { -1, -1 };

	memset(&p, 0, sizeof(p));
	p.fd = -1;
	CHECK_EQ(uktls_openssl_prepare(NULL), EINVAL);
	CHECK_EQ(uktls_openssl_enable_rx(NULL), EINVAL);
	CHECK_EQ(uktls_gnutls_enable_rx(NULL), EINVAL);
	uctx = ossl_ctx(&tg_suites[TG_FIRST_TLS13], 1);
	FAILIF(uctx == NULL, "SSL_CTX");

	/* No read BIO yet: prepare() must come after SSL_set_fd(). */
	ssl = SSL_new(uctx);
	FAILIF(ssl == NULL, "SSL_new");
	CHECK_EQ(uktls_openssl_prepare(ssl), EINVAL);
	FAILIF(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0, "socketpair");
	FAILIF(!SSL_set_fd(ssl, fds[0]), "SSL_set_fd");
	CHECK_EQ(uktls_openssl_enable_rx(ssl), EINVAL);
	CHECK_EQ(uktls_openssl_prepare(ssl), 0);
	CHECK_EQ(uktls_openssl_prepare(ssl), EALREADY);
	/* Before the handshake there is nothing to enable. */
	CHECK_EQ(uktls_openssl_enable_rx(ssl), EINVAL);
	/* Freed prepared but unused: the tap and its state go too. */
	SSL_free(ssl);
	ssl = NULL;

	/* A handshake without prepare(): too late to prepare. */
	p.kind = PEER_OPENSSL;
	p.ctx = ossl_ctx(&tg_suites[TG_FIRST_TLS13], 0);
	FAILIF(p.ctx == NULL, "peer SSL_CTX");
	FAILIF(tg_tcp_pair(&rx, &p.fd) != 0, "tcp pair");
	p.seed = tg_random64();
	p.total = 10;
	FAILIF(peer_start(&p) != 0, "peer thread");
	late = SSL_new(uctx);
	FAILIF(late == NULL || !SSL_set_fd(late, rx), "SSL");
	FAILIF(ossl_handshake(late, rx) != 1, "handshake: %s", ossl_errstr());
	CHECK_EQ(uktls_openssl_prepare(late), EINVAL);
	CHECK_EQ(uktls_openssl_enable_rx(late), EINVAL);
	/* Let the peer finish with OpenSSL. */
	{
		uint8_t buf[16];

		CHECK_EQ(ossl_read_some(late, rx, buf, sizeof(buf)), 10);
	}
out:
	if (rx != -1)
		uktls_close(rx);
	if (p.started)
		peer_join(&p);
	else if (p.fd != -1)
		close(p.fd);
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	SSL_SESSION_free(p.session);
	SSL_free(ssl);
	SSL_free(late);
	SSL_CTX_free(uctx);
	SSL_CTX_free(p.ctx);
}

/*
 * Not TLS at all (an HTTP request on the TLS port): the tap must not wait
 * for the "record" length it would read in "GET /"; OpenSSL fails the
 * handshake at once, as it would without the tap.
 */
TEST(ossl_not_tls)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	SSL_CTX *uctx = NULL;
	SSL *ssl = NULL;
	double t0;
	int rx = -1, tx = -1, r;

	tg_watchdog(TG_WATCHDOG_S);
	uctx = ossl_ctx(&tg_suites[TG_FIRST_TLS13], 1);
	FAILIF(uctx == NULL, "SSL_CTX");
	SSL_CTX_set_read_ahead(uctx, 1);
	FAILIF(tg_tcp_pair(&rx, &tx) != 0, "tcp pair");
	FAILIF(tg_write_all(tx, req, sizeof(req) - 1) !=
	    (ssize_t)sizeof(req) - 1, "write");
	ssl = SSL_new(uctx);
	FAILIF(ssl == NULL || !SSL_set_fd(ssl, rx), "SSL");
	CHECK_EQ(uktls_openssl_prepare(ssl), 0);
	t0 = tg_now();
	r = ossl_handshake(ssl, rx);
	CHECK(r != 1);
	CHECK(tg_now() - t0 < 5.0);
	ERR_clear_error();
	CHECK_EQ(uktls_openssl_enable_rx(ssl), EINVAL);
out:
	if (rx != -1)
		uktls_close(rx);
	if (tx != -1)
		close(tx);
	SSL_free(ssl);
	SSL_CTX_free(uctx);
}

#ifdef UKTLS_TEST_HOOKS
/* Fail the engine's session allocation: "ktls session". */
static int
fail_session(const char *site)
{

	return (strcmp(site, "ktls session") == 0);
}

/*
 * An enable that fails in uktls leaves the SSL as it was: the plaintext it
 * had peeked is still there for SSL_read(), OpenSSL still reads the
 * socket, and a second enable later succeeds from the new position.
 */
static void
t_ossl_enable_failure(void *arg)
{
	const struct tg_suite *s = arg;
	struct peer p;
	struct rx_stats st;
	SSL_CTX *uctx = NULL;
	SSL *ssl = NULL;
	uint8_t buf[2048], want[2048];
	uint64_t off = 0;
	int rx = -1, r, i;

	tg_watchdog(TG_WATCHDOG_S);
	memset(&p, 0, sizeof(p));
	p.fd = -1;
	uctx = ossl_ctx(s, 1);
	p.ctx = ossl_ctx(s, 0);
	FAILIF(uctx == NULL || p.ctx == NULL, "SSL_CTX");
	SSL_CTX_set_read_ahead(uctx, 1);
	FAILIF(tg_tcp_pair(&rx, &p.fd) != 0, "tcp pair");
	p.kind = PEER_OPENSSL;
	p.seed = tg_random64();
	p.total = STREAM_LEN;
	p.first_len = 1000;
	FAILIF(peer_start(&p) != 0, "peer thread");
	ssl = SSL_new(uctx);
	FAILIF(ssl == NULL || !SSL_set_fd(ssl, rx), "SSL");
	FAILIF(uktls_openssl_prepare(ssl) != 0, "prepare");
	FAILIF(ossl_handshake(ssl, rx) != 1, "handshake: %s", ossl_errstr());
	for (i = 0; i < 2; i++) {
		r = ossl_read_some(ssl, rx, buf, 100);
		FAILIF(r != 100, "SSL_read: %d", r);
		pat_fill(p.seed, off, want, 100);
		CHECK(memcmp(buf, want, 100) == 0);
		off += 100;
		if (i == 1)
			break;
		uktls_fault_hook = fail_session;
		r = uktls_openssl_enable_rx(ssl);
		uktls_fault_hook = NULL;
		CHECK_EQ(r, ENOMEM);
		CHECK_EQ(SSL_pending(ssl), 900);
	}
	r = uktls_openssl_enable_rx(ssl);
	FAILIF(r != 0, "enable after a failed one: %s", strerror(r));
	CHECK_EQ(uktls_openssl_enable_rx(ssl), EALREADY);
	CHECK_EQ(SSL_pending(ssl), 0);
	if (rx_stream(rx, p.seed, off, &st) != 0)
		goto out;
	check_complete(&st, p.total - off);
	CHECK_EQ(st.first_app_len, 800);
out:
	uktls_fault_hook = NULL;
	if (rx != -1)
		uktls_close(rx);
	if (p.started)
		peer_join(&p);
	else if (p.fd != -1)
		close(p.fd);
	SSL_SESSION_free(p.session);
	SSL_free(ssl);
	SSL_CTX_free(uctx);
	SSL_CTX_free(p.ctx);
}
#endif /* UKTLS_TEST_HOOKS */

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void *);
		int tls13_only;
	} t[] = {
		{ "ossl_basic", t_ossl_basic, 0 },
		{ "ossl_read_ahead", t_ossl_read_ahead, 0 },
		{ "ossl_coalesced", t_ossl_coalesced, 0 },
		{ "ossl_coalesced_read_ahead", t_ossl_coalesced_read_ahead, 0 },
		{ "ossl_resumed", t_ossl_resumed, 0 },
		{ "ossl_delayed_enable", t_ossl_delayed_enable, 0 },
		{ "ossl_read_before", t_ossl_read_before, 0 },
		{ "ossl_read_before_read_ahead", t_ossl_read_before_read_ahead,
		    0 },
		{ "ossl_half_record", t_ossl_half_record, 0 },
		{ "ossl_half_record_read_ahead", t_ossl_half_record_read_ahead,
		    0 },
		{ "ossl_app_callbacks", t_ossl_app_callbacks, 0 },
		{ "ossl_app_callbacks_after", t_ossl_app_callbacks_after, 0 },
		{ "ossl_key_update_before", t_ossl_key_update_before, 1 },
		{ "ossl_key_update_requested", t_ossl_key_update_requested,
		    1 },
		{ "ossl_gnutls_peer", t_ossl_gnutls_peer, 0 },
		{ "ossl_client", t_ossl_client, 0 },
		{ "ossl_client_read_before", t_ossl_client_read_before, 0 },
#ifdef UKTLS_TEST_HOOKS
		{ "ossl_enable_failure", t_ossl_enable_failure, 0 },
#endif
		{ "gnutls_openssl_peer", t_gnutls_openssl_peer, 0 },
		{ "gnutls_gnutls_peer", t_gnutls_gnutls_peer, 0 },
		{ "gnutls_coalesced", t_gnutls_coalesced, 0 },
		{ "gnutls_read_before", t_gnutls_read_before, 0 },
		{ "gnutls_key_update_before", t_gnutls_key_update_before, 1 },
		{ "gnutls_key_update_requested", t_gnutls_key_update_requested,
		    1 },
		{ "gnutls_client", t_gnutls_client, 0 },
		{ "gnutls_client_read_before", t_gnutls_client_read_before, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].tls13_only)
			tg_register_suites(t[i].name, t[i].fn, TG_FIRST_TLS13,
			    TG_NTLS13);
		else
			tg_register_suites(t[i].name, t[i].fn, 0, TG_NSUITES);
	}
	return (harness_main(argc, argv));
}
