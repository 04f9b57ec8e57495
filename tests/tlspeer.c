/*
 * tlspeer: table-driven registration, the certificate, library settings,
 * handshakes and a checking reader for the tests that run real TLS peers.
 * See tlspeer.h.
 */
#include "tlspeer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "harness.h"
#include "uktls.h"

/* ==== tests from a table ============================================= */

/* One registered test: a row's function and settings, and a suite. */
struct tp_case {
	void (*fn)(const struct tg_suite *, const void *);
	const void *arg;
	const struct tg_suite *suite;
};

static const char *
case_name(const void *arg)
{

	return (((const struct tp_case *)arg)->suite->name);
}

static void
case_run(void *arg)
{
	const struct tp_case *c = arg;

	c->fn(c->suite, c->arg);
}

void
tp_register(const char *name,
    void (*fn)(const struct tg_suite *, const void *), const void *arg,
    int tls13_only)
{
	struct tp_case *c;
	int first, n, i;

	first = tls13_only ? TG_FIRST_TLS13 : 0;
	n = tls13_only ? TG_NTLS13 : TG_NSUITES;
	/* Kept for the program's life, like the harness's own entries. */
	c = calloc((size_t)n, sizeof(*c));
	if (c == NULL)
		abort();
	for (i = 0; i < n; i++) {
		c[i].fn = fn;
		c[i].arg = arg;
		c[i].suite = &tg_suites[first + i];
	}
	harness_register_param(name, case_run, c, sizeof(*c), (size_t)n,
	    case_name);
}

/* ==== the peer's stream ============================================== */

/* Word i of stream seed: splitmix64 of the seed and the index. */
static uint64_t
pat_word(uint64_t seed, uint64_t i)
{
	uint64_t z;

	z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

void
tp_pat_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t len)
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

/* ==== the certificate ================================================ */

static struct tp_cert tcert;
static int tcert_ok;
static pthread_once_t tcert_once = PTHREAD_ONCE_INIT;

/* A NUL-terminated copy of what the memory BIO holds. */
static int
pem_datum(BIO *b, gnutls_datum_t *d)
{
	char *p;
	long n;

	n = BIO_get_mem_data(b, &p);
	if (n <= 0)
		return (EINVAL);
	d->data = malloc((size_t)n + 1);
	if (d->data == NULL)
		return (ENOMEM);
	memcpy(d->data, p, (size_t)n);
	d->data[n] = '\0';
	d->size = (unsigned int)n;
	return (0);
}

/*
 * Made in-process rather than read from files, so that the tests need no
 * key material in the tree; GnuTLS and the programs that take files get
 * the PEM forms.
 */
static void
tcert_make(void)
{
	X509_NAME *name;
	BIO *cb = NULL, *kb = NULL;

	tcert.pkey = EVP_EC_gen("P-256");
	tcert.x509 = X509_new();
	if (tcert.pkey == NULL || tcert.x509 == NULL)
		goto out;
	if (!X509_set_version(tcert.x509, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(tcert.x509), 1) ||
	    X509_gmtime_adj(X509_getm_notBefore(tcert.x509), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(tcert.x509), 86400) == NULL ||
	    !X509_set_pubkey(tcert.x509, tcert.pkey))
		goto out;
	name = X509_get_subject_name(tcert.x509);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(tcert.x509, name) ||
	    X509_sign(tcert.x509, tcert.pkey, EVP_sha256()) == 0)
		goto out;
	cb = BIO_new(BIO_s_mem());
	kb = BIO_new(BIO_s_mem());
	if (cb != NULL && kb != NULL && PEM_write_bio_X509(cb, tcert.x509) &&
	    PEM_write_bio_PrivateKey(kb, tcert.pkey, NULL, NULL, 0, NULL,
	    NULL) && pem_datum(cb, &tcert.cert_pem) == 0 &&
	    pem_datum(kb, &tcert.key_pem) == 0)
		tcert_ok = 1;
out:
	BIO_free(cb);
	BIO_free(kb);
}

const struct tp_cert *
tp_cert(void)
{

	pthread_once(&tcert_once, tcert_make);
	return (tcert_ok ? &tcert : NULL);
}

/* ==== library settings per suite ===================================== */

int
tp_is_tls13(const struct tg_suite *s)
{

	return (s->tls_vminor == TLS_MINOR_VER_THREE);
}

const char *
tp_ossl_suite(const struct tg_suite *s)
{

	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		return (tp_is_tls13(s) ? "TLS_CHACHA20_POLY1305_SHA256" :
		    "ECDHE-ECDSA-CHACHA20-POLY1305");
	if (s->key_len == 16)
		return (tp_is_tls13(s) ? "TLS_AES_128_GCM_SHA256" :
		    "ECDHE-ECDSA-AES128-GCM-SHA256");
	return (tp_is_tls13(s) ? "TLS_AES_256_GCM_SHA384" :
	    "ECDHE-ECDSA-AES256-GCM-SHA384");
}

const char *
tp_gnutls_prio(const struct tg_suite *s)
{

	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		return (tp_is_tls13(s) ? "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
		    "-CIPHER-ALL:+CHACHA20-POLY1305" : "NORMAL:-VERS-ALL:"
		    "+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305");
	if (s->key_len == 16)
		return (tp_is_tls13(s) ?
		    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM" :
		    "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM");
	return (tp_is_tls13(s) ?
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM" :
	    "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM");
}

const char *
tp_ossl_errstr(void)
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

SSL_CTX *
tp_ossl_ctx(int server, int vminor, const char *cipher)
{
	const struct tp_cert *c;
	const char *suites = NULL, *list = NULL;
	SSL_CTX *ctx;
	int vmin, vmax;

	c = tp_cert();
	if (c == NULL)
		return (NULL);
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return (NULL);
	if (vminor == TLS_MINOR_VER_THREE) {
		vmin = vmax = TLS1_3_VERSION;
		suites = cipher;
	} else if (vminor == TLS_MINOR_VER_TWO) {
		vmin = vmax = TLS1_2_VERSION;
		list = cipher;
	} else {
		/* 0: as high as the library goes. */
		vmin = TLS1_2_VERSION;
		vmax = 0;
		suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
		    "TLS_CHACHA20_POLY1305_SHA256";
		list = "ECDHE-ECDSA-AES128-GCM-SHA256:"
		    "ECDHE-ECDSA-AES256-GCM-SHA384:"
		    "ECDHE-ECDSA-CHACHA20-POLY1305";
	}
	if (!SSL_CTX_set_min_proto_version(ctx, vmin) ||
	    !SSL_CTX_set_max_proto_version(ctx, vmax) ||
	    (suites != NULL && !SSL_CTX_set_ciphersuites(ctx, suites)) ||
	    (list != NULL && !SSL_CTX_set_cipher_list(ctx, list)) ||
	    (server && (!SSL_CTX_use_certificate(ctx, c->x509) ||
	    !SSL_CTX_use_PrivateKey(ctx, c->pkey)))) {
		SSL_CTX_free(ctx);
		return (NULL);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return (ctx);
}

int
tp_gnutls_start(struct tp_gnutls *g, int server, const char *prio, int fd)
{
	const struct tp_cert *c;

	g->cred = NULL;
	g->ses = NULL;
	c = tp_cert();
	if (c == NULL)
		return (EINVAL);
	if (gnutls_certificate_allocate_credentials(&g->cred) < 0) {
		g->cred = NULL;
		return (ENOMEM);
	}
	if (server && gnutls_certificate_set_x509_key_mem(g->cred,
	    &c->cert_pem, &c->key_pem, GNUTLS_X509_FMT_PEM) < 0)
		return (EINVAL);
	if (gnutls_init(&g->ses, server ? GNUTLS_SERVER : GNUTLS_CLIENT) <
	    0) {
		g->ses = NULL;
		return (ENOMEM);
	}
	if (gnutls_priority_set_direct(g->ses, prio, NULL) < 0 ||
	    gnutls_credentials_set(g->ses, GNUTLS_CRD_CERTIFICATE, g->cred) <
	    0)
		return (EINVAL);
	gnutls_transport_set_int(g->ses, fd);
	return (0);
}

void
tp_gnutls_end(struct tp_gnutls *g)
{

	if (g->ses != NULL)
		gnutls_deinit(g->ses);
	if (g->cred != NULL)
		gnutls_certificate_free_credentials(g->cred);
	g->ses = NULL;
	g->cred = NULL;
}

/* ==== sockets and handshakes ========================================= */

int
tp_wait_fd(int fd, short events, int ms)
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

int
tp_ossl_handshake(SSL *ssl, int fd)
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
			r = tp_wait_fd(fd, POLLIN, TP_PEER_WAIT_MS);
		else if (e == SSL_ERROR_WANT_WRITE)
			r = tp_wait_fd(fd, POLLOUT, TP_PEER_WAIT_MS);
		else
			return (r);
		if (r != 1)
			return (-1);
	}
}

int
tp_gnutls_handshake(gnutls_session_t ses, int fd)
{
	int r;

	for (;;) {
		r = gnutls_handshake(ses);
		if (r == 0)
			return (0);
		if (gnutls_error_is_fatal(r))
			return (r);
		if (r == GNUTLS_E_AGAIN && tp_wait_fd(fd,
		    gnutls_record_get_direction(ses) ? POLLOUT : POLLIN,
		    TP_PEER_WAIT_MS) != 1)
			return (r);
	}
}

/* ==== reading a connection with uktls ================================ */

int
tp_rx_stream(int fd, const struct tp_stream *want, struct tp_rx *rx)
{
	static const size_t bufsize = TLS_MAX_MSG_SIZE_V10_2 + 512;
	struct tg_rec r;
	uint8_t *buf, *exp;
	size_t i, n;
	int ret = EBADMSG;

	memset(rx, 0, sizeof(*rx));
	buf = malloc(bufsize);
	exp = malloc(bufsize);
	if (buf == NULL || exp == NULL)
		abort();
	for (;;) {
		/* Linux's form: a KeyUpdate hides readiness until the key. */
		if (want->rekey != NULL &&
		    uktls_rx_rekey_pending(fd, NULL) == 1) {
			rx->rekeys++;
			rx->err = want->rekey(want->rekey_arg);
			if (rx->err != 0)
				break;
			continue;
		}
		if (tg_wait_readable(fd, want->wait_ms) != 1) {
			harness_fail(__FILE__, __LINE__, "no record within %d "
			    "ms after %" PRIu64 " bytes", want->wait_ms,
			    rx->bytes);
			ret = ETIMEDOUT;
			goto out;
		}
		tg_recv(fd, buf, bufsize, 0, TG_CTL_DEFAULT, &r);
		if (r.n == -1) {
			rx->err = r.err;
			break;
		}
		if (r.n == 0 && r.ncmsg == 0) {
			rx->eof = 1;
			break;
		}
		if (want->linux_form) {
			FAILIF(r.lx_type < 0 || (r.flags & MSG_CTRUNC) != 0,
			    "read after %" PRIu64 " bytes: type %d, flags %#x",
			    rx->bytes, r.lx_type, r.flags);
			r.tgr.tls_type = (uint8_t)r.lx_type;
		} else {
			FAILIF(!r.cmsg_ok || (r.flags & MSG_EOR) == 0 ||
			    (r.flags & MSG_CTRUNC) != 0, "record after %" PRIu64
			    " bytes: cmsg %d, flags %#x", rx->bytes, r.cmsg_ok,
			    r.flags);
			FAILIF(r.tgr.tls_vmajor != TLS_MAJOR_VER_ONE ||
			    r.tgr.tls_vminor != TLS_MINOR_VER_TWO ||
			    ntohs(r.tgr.tls_length) != (size_t)r.n,
			    "record header %u.%u length %u for %zd bytes",
			    r.tgr.tls_vmajor, r.tgr.tls_vminor,
			    ntohs(r.tgr.tls_length), r.n);
		}
		FAILIF(rx->close_notify > 0, "record of type %u after "
		    "close_notify", r.tgr.tls_type);
		n = (size_t)r.n;
		switch (r.tgr.tls_type) {
		case TLS_RLTYPE_APP:
			tp_pat_fill(want->seed, want->start + rx->bytes, exp,
			    n);
			if (memcmp(buf, exp, n) != 0) {
				for (i = 0; buf[i] == exp[i]; i++)
					;
				FAILIF(1, "stream differs at byte %" PRIu64,
				    want->start + rx->bytes + i);
			}
			if (want->md != NULL)
				EVP_DigestUpdate(want->md, buf, n);
			if (rx->app_recs++ == 0)
				rx->first_app_len = n;
			rx->bytes += n;
			break;
		case TLS_RLTYPE_HANDSHAKE:
			if (n > 0 && buf[0] == 4)
				rx->nst++;
			else if (n > 0 && buf[0] == 24)
				rx->key_updates++;
			else
				rx->other_hs++;
			break;
		case TLS_RLTYPE_ALERT:
			if (n == 2 && buf[0] == 1 && buf[1] == 0)
				rx->close_notify++;
			else
				rx->other_alerts++;
			break;
		default:
			FAILIF(1, "record of type %u", r.tgr.tls_type);
		}
		if (want->stop_at_close_notify && rx->close_notify > 0)
			break;
	}
	ret = 0;
out:
	free(buf);
	free(exp);
	return (ret);
}

/* One count of the end against what it should be. */
static void
check_count(const char *file, int line, const char *what, uint64_t got,
    uint64_t want)
{

	if (got != want)
		harness_fail(file, line, "%s: %" PRIu64 ", want %" PRIu64,
		    what, got, want);
}

void
tp_check_clean_end(const char *file, int line, const struct tp_rx *rx,
    uint64_t want_bytes)
{

	if (rx->err != 0)
		harness_fail(file, line, "a receive failed: %s",
		    strerror(rx->err));
	check_count(file, line, "bytes", rx->bytes, want_bytes);
	check_count(file, line, "close_notify alerts",
	    (uint64_t)rx->close_notify, 1);
	check_count(file, line, "other alerts", (uint64_t)rx->other_alerts,
	    0);
	check_count(file, line, "handshake records other than tickets",
	    (uint64_t)rx->other_hs, 0);
}
