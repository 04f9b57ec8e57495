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
#include <openssl/ssl.h>

#include "fault.h"
#include "harness.h"
#include "tlsgen.h"
#include "tlspeer.h"
#include "uktls.h"
#include "uktls/gnutls.h"
#include "uktls/openssl.h"

#define KIB 1024u
/* The peer's stream in most scenarios. */
#define STREAM_LEN ((uint64_t)(1024 * KIB / TG_SCALE_DIV))

/* An OpenSSL context for suite s, either side. */
static SSL_CTX *
ossl_ctx(const struct tg_suite *s, int server)
{

	return (tp_ossl_ctx(server, s->tls_vminor, tp_ossl_suite(s)));
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
		if (e != SSL_ERROR_WANT_READ || tp_wait_fd(fd, POLLIN,
		    TP_PEER_WAIT_MS) != 1)
			return (-1);
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
	int ku_every;       /* OpenSSL: a KeyUpdate after every n-th write,
			       every other one asking for one back */
	int ku_max;         /* ... and no more than this many, if set */
	uint64_t seed;
	uint64_t total;
	size_t first_len;   /* the first write's length, 0 random */
	/* Results. */
	/* ku_every's KeyUpdates, and those asking for one back (atomic: the
	 * test reads them before the peer is joined). */
	atomic_int ku_sent;
	atomic_int ku_asked;
	atomic_int ku_got;  /* KeyUpdates the peer received */
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
		if (tp_wait_fd(p->go_fd, POLLIN, TP_PEER_WAIT_MS) != 1 ||
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
			peer_fail(p, "SSL_connect: %s", tp_ossl_errstr());
			return (-1);
		}
		if (mem_flush(p, ssl, 0) != 0)
			return (-1);
		if (tp_wait_fd(p->fd, POLLIN, TP_PEER_WAIT_MS) != 1 ||
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
		if (tp_wait_fd(p->fd, POLLIN, TP_PEER_WAIT_MS) != 1)
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

/* The peer's message callback: count the KeyUpdates it receives. */
static void
peer_msg(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
	struct peer *p = arg;

	(void)version, (void)ssl;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const uint8_t *)buf)[0] == 24)
		atomic_fetch_add(&p->ku_got, 1);
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
	SSL_set_msg_callback(ssl, peer_msg);
	SSL_set_msg_callback_arg(ssl, p);
	if (p->kind == PEER_OPENSSL_MEM) {
		SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
		if (mem_connect(p, ssl) != 0)
			goto out;
	} else {
		SSL_set_fd(ssl, p->fd);
		if ((p->server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
			peer_fail(p, "handshake: %s", tp_ossl_errstr());
			goto out;
		}
	}
	p->resumed = SSL_session_reused(ssl);
	for (i = 0; i < p->key_updates; i++) {
		if (!SSL_key_update(ssl, p->ku_requested ?
		    SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) ||
		    SSL_do_handshake(ssl) != 1) {
			peer_fail(p, "KeyUpdate: %s", tp_ossl_errstr());
			goto out;
		}
	}
	/* Mem: the Finished (TLS 1.3) waits in the BIO to go with data. */
	if (p->kind == PEER_OPENSSL_MEM && p->coalesce == 0 &&
	    mem_flush(p, ssl, 0) != 0)
		goto out;
	while (off < p->total) {
		n = peer_chunk(p, &rng, k, p->total - off);
		tp_pat_fill(p->seed, off, buf, n);
		if (SSL_write(ssl, buf, (int)n) != (int)n) {
			peer_fail(p, "SSL_write at %" PRIu64 ": %s", off,
			    tp_ossl_errstr());
			goto out;
		}
		off += n;
		k++;
		if (p->ku_every > 0 && k % (uint64_t)p->ku_every == 0 &&
		    off < p->total && (p->ku_max == 0 ||
		    atomic_load(&p->ku_sent) < p->ku_max)) {
			if (!SSL_key_update(ssl, atomic_load(&p->ku_sent) % 2 ?
			    SSL_KEY_UPDATE_REQUESTED :
			    SSL_KEY_UPDATE_NOT_REQUESTED) ||
			    SSL_do_handshake(ssl) != 1) {
				peer_fail(p, "KeyUpdate after %" PRIu64
				    " bytes: %s", off, tp_ossl_errstr());
				goto out;
			}
			atomic_fetch_add(&p->ku_asked,
			    atomic_load(&p->ku_sent) % 2);
			atomic_fetch_add(&p->ku_sent, 1);
		}
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
		peer_fail(p, "SSL_shutdown: %s", tp_ossl_errstr());
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
	struct tp_gnutls g = { NULL, NULL };
	uint8_t *buf;
	uint64_t off = 0, k = 0;
	size_t n, done;
	ssize_t w;
	int i, r;

	buf = malloc(20000);
	if (buf == NULL) {
		peer_fail(p, "out of memory");
		goto out;
	}
	r = tp_gnutls_start(&g, p->server, p->prio != NULL ? p->prio :
	    tp_gnutls_prio(p->suite), p->fd);
	if (r != 0) {
		peer_fail(p, "GnuTLS session: %s", strerror(r));
		goto out;
	}
	r = tp_gnutls_handshake(g.ses, p->fd);
	if (r != 0) {
		peer_fail(p, "gnutls_handshake: %s", gnutls_strerror(r));
		goto out;
	}
	for (i = 0; i < p->key_updates; i++) {
		r = gnutls_session_key_update(g.ses, p->ku_requested ?
		    GNUTLS_KU_PEER : 0);
		if (r < 0) {
			peer_fail(p, "key update: %s", gnutls_strerror(r));
			goto out;
		}
	}
	while (off < p->total) {
		n = peer_chunk(p, &rng, k, p->total - off);
		tp_pat_fill(p->seed, off, buf, n);
		for (done = 0; done < n; done += (size_t)w) {
			w = gnutls_record_send(g.ses, buf + done, n - done);
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
	(void)gnutls_bye(g.ses, GNUTLS_SHUT_WR);
	shutdown(p->fd, SHUT_WR);
	peer_drain(p, NULL);
out:
	tp_gnutls_end(&g);
	free(buf);
	close(p->fd);
	p->fd = -1;
	return (NULL);
}

/*
 * A peer of kind that will send total bytes of a new stream, with nothing
 * else set and no socket yet, so that peer_end() may follow at once.
 */
static void
peer_init(struct peer *p, enum peer_kind kind, uint64_t total)
{

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->fd = -1;
	p->half_fd = p->go_fd = p->half_rd = p->go_wr = -1;
	p->seed = tg_random64();
	p->total = total;
}

/*
 * Connect the peer to a new loopback pair, whose other end goes to *rx,
 * and start it on its own thread.  Returns 0 or an errno.
 */
static int
peer_start(struct peer *p, int *rx)
{
	int r;

	if (tg_tcp_pair(rx, &p->fd) != 0)
		return (errno);
	r = pthread_create(&p->thr, NULL,
	    p->kind == PEER_GNUTLS ? gpeer_main : opeer_main, p);
	if (r != 0)
		return (r);
	p->started = 1;
	return (0);
}

/*
 * Close the uktls side's socket rx (the peer reads until it sees the
 * close), join the peer and report its failure, if any, and close the
 * split pipes.  The test's end of the go pipe closes first: a peer still
 * waiting for the go after a failed test gives up at once.  The session
 * the peer kept as a client goes to *sessp, or is freed.
 */
static void
peer_end(struct peer *p, int rx, SSL_SESSION **sessp)
{

	if (rx != -1)
		uktls_close(rx);
	if (p->go_wr != -1)
		close(p->go_wr);
	if (p->started) {
		pthread_join(p->thr, NULL);
		if (p->err[0] != '\0')
			harness_fail(__FILE__, __LINE__, "peer: %s", p->err);
	} else if (p->fd != -1)
		close(p->fd);
	if (p->half_fd != -1)
		close(p->half_fd);
	if (p->go_fd != -1)
		close(p->go_fd);
	if (p->half_rd != -1)
		close(p->half_rd);
	if (sessp != NULL)
		*sessp = p->session;
	else
		SSL_SESSION_free(p->session);
	p->started = 0;
	p->fd = p->half_fd = p->go_fd = p->half_rd = p->go_wr = -1;
	p->session = NULL;
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

enum resume {
	RESUME_NO,
	RESUME_YES,       /* a first connection, then a resumed one */
	RESUME_TLS12,     /* ... with TLS 1.2 only */
};

/* Where the uktls side's sending side stands when KeyUpdates come. */
enum answer {
	ANSWER_NORMAL,
	ANSWER_SHUTDOWN, /* its close_notify sent: no KeyUpdate may follow */
	ANSWER_BLOCKED,  /* an SSL_write() to retry (non-blocking, full) */
};

struct scenario {
	const char *name;
	int tls13_only;       /* runs for the TLS 1.3 suites only */
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
	int ku_every;         /* peer KeyUpdates during its stream */
	int ku_max;           /* ... at most this many, if set */
	int linux_form;       /* enable with UKTLS_RX_LINUX */
	enum answer answer;   /* ... and how a requested KeyUpdate is met */
	enum resume resume;
	size_t read_before;   /* the application reads this much first */
	size_t first_len;     /* the peer's first write */
	unsigned int delay_ms;/* pause between handshake and enable */
};

/* What the uktls side writes to fill its socket (ANSWER_BLOCKED); OpenSSL
 * wants a retried write to come from the same buffer. */
static uint8_t fill_buf[16384];

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
	FAILIF(ssl == NULL, "SSL_new: %s", tp_ossl_errstr());
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
	r = tp_ossl_handshake(ssl, fd);
	FAILIF(r != 1, "handshake: %s", tp_ossl_errstr());
	if (sc->read_before > 0) {
		r = ossl_read_some(ssl, fd, buf, (int)sc->read_before);
		FAILIF(r <= 0, "SSL_read before the enable: %s",
		    tp_ossl_errstr());
		tp_pat_fill(p->seed, 0, want, (size_t)r);
		FAILIF(memcmp(buf, want, (size_t)r) != 0,
		    "SSL_read before the enable: wrong data");
		*start = (uint64_t)r;
		FAILIF(SSL_pending(ssl) <= 0, "nothing left pending after "
		    "reading %d of the first record", r);
	}
	if (sc->split) {
		/* The peer's first record is half in: OpenSSL reads half. */
		FAILIF(tp_wait_fd(p->half_rd, POLLIN, TG_WAIT_MS) != 1 ||
		    read(p->half_rd, &c, 1) != 1, "peer sent no half record");
		tg_sleep_ms(20);
		r = SSL_read(ssl, buf, sizeof(buf));
		FAILIF(r > 0 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ,
		    "SSL_read of half a record returned %d (error %d)", r,
		    SSL_get_error(ssl, r));
	}
	if (sc->delay_ms > 0)
		tg_sleep_ms(sc->delay_ms);
	r = sc->linux_form ? uktls_openssl_enable_rx_flags(ssl,
	    UKTLS_RX_LINUX) : uktls_openssl_enable_rx(ssl);
	FAILIF(r != 0, "uktls_openssl_enable_rx: %s", strerror(r));
	/*
	 * update_rx() is for Linux's form on TLS 1.3 alone, and has nothing
	 * to do before a KeyUpdate (asked only where none can have come).
	 */
	if (!sc->linux_form || SSL_version(ssl) != TLS1_3_VERSION)
		CHECK_EQ(uktls_openssl_update_rx(ssl), EINVAL);
	else if (sc->ku_every == 0)
		CHECK_EQ(uktls_openssl_update_rx(ssl), EAGAIN);
	if (sc->answer == ANSWER_SHUTDOWN)
		FAILIF(SSL_shutdown(ssl) < 0, "SSL_shutdown: %s",
		    tp_ossl_errstr());
	if (sc->answer == ANSWER_BLOCKED) {
		/* The peer reads nothing until its stream is out. */
		while ((r = SSL_write(ssl, fill_buf, sizeof(fill_buf))) > 0)
			;
		FAILIF(SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE,
		    "SSL_write to fill the socket: %s", tp_ossl_errstr());
	}
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

/*
 * The same with GnuTLS, in g (which the caller frees after the socket is
 * closed).  Returns the session, or NULL after reporting a failure.
 */
static gnutls_session_t
gnutls_side(const struct scenario *sc, const struct tg_suite *s,
    struct tp_gnutls *g, int fd, struct peer *p, uint64_t *start)
{
	uint8_t buf[2048], want[2048];
	ssize_t n;
	int r, ok = 0;

	*start = 0;
	r = tp_gnutls_start(g, !sc->uktls_client, tp_gnutls_prio(s), fd);
	FAILIF(r != 0, "GnuTLS session: %s", strerror(r));
	r = tp_gnutls_handshake(g->ses, fd);
	FAILIF(r != 0, "gnutls_handshake: %s", gnutls_strerror(r));
	if (sc->read_before > 0) {
		do {
			n = gnutls_record_recv(g->ses, buf, sc->read_before);
			if (n == GNUTLS_E_AGAIN && tp_wait_fd(fd, POLLIN,
			    TG_WAIT_MS) != 1)
				break;
		} while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
		FAILIF(n <= 0, "gnutls_record_recv before the enable: %s",
		    gnutls_strerror((int)n));
		tp_pat_fill(p->seed, 0, want, (size_t)n);
		FAILIF(memcmp(buf, want, (size_t)n) != 0,
		    "gnutls_record_recv before the enable: wrong data");
		*start = (uint64_t)n;
		FAILIF(gnutls_record_check_pending(g->ses) == 0,
		    "nothing pending after reading %zd bytes", n);
	}
	if (sc->delay_ms > 0)
		tg_sleep_ms(sc->delay_ms);
	r = uktls_gnutls_enable_rx_flags(g->ses, sc->linux_form ?
	    UKTLS_RX_LINUX : 0);
	FAILIF(r != 0, "uktls_gnutls_enable_rx_flags: %s", strerror(r));
	if (!sc->linux_form || !tp_is_tls13(s))
		CHECK_EQ(uktls_gnutls_update_rx(g->ses), EINVAL);
	else if (sc->ku_every == 0)
		CHECK_EQ(uktls_gnutls_update_rx(g->ses), EAGAIN);
	ok = 1;
out:
	return (ok ? g->ses : NULL);
}

/*
 * tp_rx_stream's rekey: the OpenSSL helper gives the next key.  After the
 * application's close_notify it must write nothing; with a write to retry
 * it gives the key and says EINPROGRESS for a KeyUpdate owed.
 */
struct rekey_ctx {
	SSL *ssl;               /* the OpenSSL helper's, or */
	gnutls_session_t ses;   /* the GnuTLS helper's */
	enum answer answer;
	int inprogress;   /* EINPROGRESS answers */
	int busy;         /* EBUSY answers (GnuTLS: too many at once) */
	int wrote;        /* bytes written after the close_notify */
};

static int
ossl_rekey(void *arg)
{
	struct rekey_ctx *rk = arg;
	uint64_t w0;
	int r;

	if (rk->ssl == NULL) {
		/* GnuTLS takes 8 a second: the same call works later. */
		while ((r = uktls_gnutls_update_rx(rk->ses)) == EBUSY &&
		    rk->busy++ < 50)
			tg_sleep_ms(100);
		return (r);
	}
	w0 = BIO_number_written(SSL_get_wbio(rk->ssl));
	r = uktls_openssl_update_rx(rk->ssl);
	if (rk->answer == ANSWER_SHUTDOWN &&
	    BIO_number_written(SSL_get_wbio(rk->ssl)) != w0)
		rk->wrote = 1;
	if (r == EINPROGRESS && rk->answer == ANSWER_BLOCKED) {
		rk->inprogress++;
		r = 0;
	}
	return (r);
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
	struct tp_stream want;
	struct tp_rx st;
	struct tp_gnutls g = { NULL, NULL };
	SSL *ssl = NULL;
	gnutls_session_t ses;
	uint64_t start = 0;
	struct rekey_ctx rk;
	int rx = -1, pfd[2], r, check_ku = 0, ku_want = 0, asked;
	int fails0 = harness_cur_failed, resumed;

	peer_init(&p, sc->peer, STREAM_LEN);
	p.suite = s;
	p.server = sc->uktls_client;
	p.ctx = pctx;
	p.resume = resume;
	p.coalesce = coalesce;
	p.split = sc->split;
	p.key_updates = sc->key_updates;
	p.ku_requested = sc->ku_requested;
	p.ku_every = sc->ku_every;
	p.ku_max = sc->ku_max;
	p.first_len = sc->first_len;
	if (sc->split) {
		FAILIF(pipe(pfd) != 0, "pipe: %s", strerror(errno));
		p.half_rd = pfd[0];
		p.half_fd = pfd[1];
		FAILIF(pipe(pfd) != 0, "pipe: %s", strerror(errno));
		p.go_fd = pfd[0];
		p.go_wr = pfd[1];
	}
	r = peer_start(&p, &rx);
	FAILIF(r != 0, "peer: %s", strerror(r));
	if (sc->nonblock)
		FAILIF(fcntl(rx, F_SETFL, fcntl(rx, F_GETFL) | O_NONBLOCK) != 0,
		    "O_NONBLOCK");

	if (sc->helper == H_OPENSSL) {
		ssl = ossl_side(sc, uctx, rx, &p, &start);
		if (ssl == NULL)
			goto out;
		resumed = SSL_session_reused(ssl);
	} else {
		ses = gnutls_side(sc, s, &g, rx, &p, &start);
		if (ses == NULL)
			goto out;
		resumed = gnutls_session_is_resumed(ses);
	}
	if (resume != NULL)
		CHECK(resumed);
	want = (struct tp_stream){ .seed = p.seed, .start = start,
	    .wait_ms = TG_WAIT_MS, .linux_form = sc->linux_form };
	rk = (struct rekey_ctx){ .ssl = ssl, .ses = g.ses,
	    .answer = sc->answer };
	if (sc->linux_form && tp_is_tls13(s)) {
		want.rekey = ossl_rekey;
		want.rekey_arg = &rk;
	}
	if (tp_rx_stream(rx, &want, &st) != 0)
		goto out;
	CHECK_EQ(rk.wrote, 0);
	asked = atomic_load(&p.ku_asked);
	ku_want = sc->answer == ANSWER_NORMAL ? asked : 0;
	if (sc->answer == ANSWER_BLOCKED) {
		/*
		 * The peer reads now: the write completes, and the next call
		 * sends the KeyUpdate owed, one for all the requests.
		 */
		CHECK_EQ(rk.inprogress > 0, asked > 0);
		while ((r = SSL_write(ssl, fill_buf, sizeof(fill_buf))) <= 0)
			FAILIF(SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE ||
			    tp_wait_fd(rx, POLLOUT, TG_WAIT_MS) != 1,
			    "SSL_write retried: %s", tp_ossl_errstr());
		CHECK_EQ(uktls_openssl_update_rx(ssl), asked > 0 ? 0 : EAGAIN);
		CHECK_EQ(uktls_openssl_update_rx(ssl), EAGAIN);
		ku_want = asked > 0;
	}
	if (sc->helper == H_GNUTLS && sc->linux_form) {
		/* GnuTLS sends the KeyUpdate asked for before data: one for
		 * all the requests. */
		CHECK_EQ(gnutls_record_send(g.ses, "x", 1), 1);
		ku_want = asked > 0;
		/*
		 * More than 8 in a burst: GnuTLS said EBUSY, then took it
		 * (a sanitizer's slowness may spread them over a second).
		 */
		if (atomic_load(&p.ku_sent) <= 8)
			CHECK_EQ(rk.busy, 0);
		else if (TG_TIME_MUL == 1)
			CHECK(rk.busy > 0);
	}
	TP_CHECK_CLEAN_END(&st, STREAM_LEN - start);
	CHECK_EQ(st.eof, 1);
	/* Linux's form merges the rest of the first record with more. */
	if (sc->read_before > 0 && !sc->linux_form)
		CHECK_EQ(st.first_app_len, sc->first_len - start);
	/*
	 * Every KeyUpdate reached the application and was followed, and
	 * the peer received one back for each that asked (its last reads
	 * come after the stream, so it is waited for).
	 */
	CHECK_EQ(st.key_updates, atomic_load(&p.ku_sent));
	CHECK_EQ(st.rekeys, atomic_load(&p.ku_sent));
	check_ku = 1;
	/*
	 * TLS 1.3 NewSessionTickets from an OpenSSL server (two by default)
	 * reach the uktls client as handshake records, unless the
	 * application's read before the enable took them.
	 */
	if (sc->uktls_client && tp_is_tls13(s) && sc->peer != PEER_GNUTLS &&
	    sc->read_before == 0)
		CHECK_EQ(st.nst, 2);
	else
		CHECK_EQ(st.nst, 0);
out:
	peer_end(&p, rx, sessp);
	if (check_ku)
		CHECK_EQ(atomic_load(&p.ku_got), ku_want);
	SSL_free(ssl);
	tp_gnutls_end(&g);
	return (harness_cur_failed == fails0 ? 0 : -1);
}

/* A test: scenario arg with suite s. */
static void
run_scenario(const struct tg_suite *s, const void *arg)
{
	const struct scenario *sc = arg;
	SSL_CTX *uctx = NULL, *pctx = NULL;
	SSL_SESSION *sess = NULL;

	tg_watchdog(TG_WATCHDOG_S);
	app_callbacks_reset();
	FAILIF(tp_cert() == NULL, "no certificate");
	if (sc->helper == H_OPENSSL) {
		uctx = ossl_ctx(s, !sc->uktls_client);
		FAILIF(uctx == NULL, "SSL_CTX: %s", tp_ossl_errstr());
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
		FAILIF(pctx == NULL, "peer SSL_CTX: %s", tp_ossl_errstr());
		SSL_CTX_set_read_ahead(pctx, sc->read_ahead);
	}
	if (sc->resume == RESUME_YES ||
	    (sc->resume == RESUME_TLS12 && !tp_is_tls13(s))) {
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

/*
 * The scenarios, each run for the six suites (or the three of TLS 1.3).
 * What a scenario leaves out is the default: OpenSSL on both sides, the
 * uktls side the server, no read-ahead, blocking sockets.
 */
static const struct scenario scenarios[] = {
	/* ---- OpenSSL on the uktls side, as the server ---------------- */

	/* Plain: the peer writes right after its handshake. */
	{ .name = "ossl_basic" },
	{ .name = "ossl_read_ahead", .read_ahead = 1 },
	/*
	 * The peer's Finished and its first three records in one TCP write
	 * (TLS 1.2: on a resumed session, where the client sends the last
	 * Finished), and the enable delayed so that more piles up, with
	 * read-ahead on and off.
	 */
	{ .name = "ossl_coalesced", .peer = PEER_OPENSSL_MEM, .coalesce = 3,
	    .resume = RESUME_TLS12, .delay_ms = 50 },
	{ .name = "ossl_coalesced_read_ahead", .peer = PEER_OPENSSL_MEM,
	    .coalesce = 3, .resume = RESUME_TLS12, .read_ahead = 1,
	    .delay_ms = 50 },
	/* TLS 1.3 resumption too, with the data coalesced. */
	{ .name = "ossl_resumed", .peer = PEER_OPENSSL_MEM, .coalesce = 2,
	    .resume = RESUME_YES, .read_ahead = 1 },
	/* The enable comes late: the peer's stream piles up in the socket. */
	{ .name = "ossl_delayed_enable", .read_ahead = 1, .delay_ms = 150 },
	/* The application read 100 bytes of a 1000-byte record first. */
	{ .name = "ossl_read_before", .read_before = 100, .first_len = 1000 },
	{ .name = "ossl_read_before_read_ahead", .read_before = 100,
	    .first_len = 1000, .read_ahead = 1, .peer = PEER_OPENSSL_MEM,
	    .coalesce = 4 },
	/*
	 * Non-blocking: SSL_read() took the first half of a record and wants
	 * more; the enable hands the half over as ciphertext, and the rest
	 * follows.
	 */
	{ .name = "ossl_half_record", .peer = PEER_OPENSSL_MEM, .nonblock = 1,
	    .split = 1, .first_len = 3000 },
	{ .name = "ossl_half_record_read_ahead", .peer = PEER_OPENSSL_MEM,
	    .nonblock = 1, .split = 1, .read_ahead = 1, .first_len = 16384 },
	/*
	 * Linux's form (UKTLS_RX_LINUX): the same hand-over of plaintext and
	 * ciphertext, and on TLS 1.3 the peer's KeyUpdates during the stream
	 * (every 7th write, every other one asking for one back) followed
	 * with uktls_openssl_update_rx(), after KeyUpdates OpenSSL processed
	 * too.
	 */
	{ .name = "ossl_linux", .linux_form = 1, .read_ahead = 1 },
	{ .name = "ossl_linux_read_before", .linux_form = 1,
	    .read_before = 100, .first_len = 1000, .read_ahead = 1,
	    .peer = PEER_OPENSSL_MEM, .coalesce = 4 },
	{ .name = "ossl_linux_half_record", .linux_form = 1,
	    .peer = PEER_OPENSSL_MEM, .nonblock = 1, .split = 1,
	    .first_len = 3000 },
	{ .name = "ossl_linux_key_updates", .tls13_only = 1, .linux_form = 1,
	    .ku_every = 7 },
	{ .name = "ossl_linux_key_updates_nonblock", .tls13_only = 1,
	    .linux_form = 1, .ku_every = 3, .nonblock = 1, .key_updates = 2,
	    .read_before = 10 },
	/* Requests met after the application's close_notify (none sent),
	 * and while its socket is full (sent once it drains). */
	{ .name = "ossl_linux_key_updates_shut", .tls13_only = 1,
	    .linux_form = 1, .ku_every = 5, .answer = ANSWER_SHUTDOWN },
	{ .name = "ossl_linux_key_updates_blocked", .tls13_only = 1,
	    .linux_form = 1, .ku_every = 5, .nonblock = 1,
	    .answer = ANSWER_BLOCKED },
	/* The application's keylog, message and info callbacks keep working. */
	{ .name = "ossl_app_callbacks", .callbacks = CB_BEFORE,
	    .read_ahead = 1 },
	{ .name = "ossl_app_callbacks_after", .callbacks = CB_AFTER },
	/* TLS 1.3: KeyUpdates that OpenSSL processed before the enable. */
	{ .name = "ossl_key_update_before", .tls13_only = 1, .key_updates = 2,
	    .read_before = 10, .first_len = 500 },
	/* The peer asks for an update back: the uktls side's OpenSSL does. */
	{ .name = "ossl_key_update_requested", .tls13_only = 1,
	    .key_updates = 1, .ku_requested = 1, .read_before = 10,
	    .first_len = 500, .read_ahead = 1 },
	/* The same with a GnuTLS peer. */
	{ .name = "ossl_gnutls_peer", .peer = PEER_GNUTLS, .read_ahead = 1 },

	/* ---- OpenSSL on the uktls side, as the client ---------------- */

	{ .name = "ossl_client", .uktls_client = 1, .read_ahead = 1 },
	/* TLS 1.3: SSL_read() took the tickets and part of a record first. */
	{ .name = "ossl_client_read_before", .uktls_client = 1,
	    .read_before = 300, .first_len = 4000 },

	/* ---- GnuTLS on the uktls side -------------------------------- */

	{ .name = "gnutls_openssl_peer", .helper = H_GNUTLS },
	{ .name = "gnutls_gnutls_peer", .helper = H_GNUTLS,
	    .peer = PEER_GNUTLS },
	{ .name = "gnutls_coalesced", .helper = H_GNUTLS,
	    .peer = PEER_OPENSSL_MEM, .coalesce = 3, .delay_ms = 50 },
	{ .name = "gnutls_read_before", .helper = H_GNUTLS, .read_before = 100,
	    .first_len = 1000, .nonblock = 1 },
	{ .name = "gnutls_key_update_before", .tls13_only = 1,
	    .helper = H_GNUTLS, .peer = PEER_GNUTLS, .key_updates = 1,
	    .read_before = 10, .first_len = 500 },
	{ .name = "gnutls_key_update_requested", .tls13_only = 1,
	    .helper = H_GNUTLS, .peer = PEER_OPENSSL, .key_updates = 2,
	    .ku_requested = 1, .read_before = 10, .first_len = 500 },
	/*
	 * Linux's form with GnuTLS, and the peer's KeyUpdates followed with
	 * uktls_gnutls_update_rx() (every 25th write: GnuTLS takes at most 8
	 * a second).
	 */
	{ .name = "gnutls_linux", .helper = H_GNUTLS, .linux_form = 1 },
	{ .name = "gnutls_linux_read_before", .helper = H_GNUTLS,
	    .linux_form = 1, .read_before = 100, .first_len = 1000,
	    .peer = PEER_OPENSSL_MEM, .coalesce = 4 },
	{ .name = "gnutls_linux_key_updates", .tls13_only = 1,
	    .helper = H_GNUTLS, .peer = PEER_OPENSSL, .linux_form = 1,
	    .ku_every = 25, .key_updates = 1, .read_before = 10,
	    .first_len = 500 },
	{ .name = "gnutls_linux_key_update_burst", .tls13_only = 1,
	    .helper = H_GNUTLS, .peer = PEER_OPENSSL, .linux_form = 1,
	    .ku_every = 1, .ku_max = 10 },
	{ .name = "gnutls_client", .helper = H_GNUTLS, .uktls_client = 1 },
	{ .name = "gnutls_client_read_before", .helper = H_GNUTLS,
	    .uktls_client = 1, .read_before = 300, .first_len = 4000 },
};
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
	int rx = -1, mode = -1, r;
	socklen_t ml = sizeof(mode);

	peer_init(&p, PEER_OPENSSL, 64);
	/* One record of 64 bytes, which one read returns whole. */
	p.first_len = 64;
	uctx = tp_ossl_ctx(1, vminor, cipher);
	p.ctx = tp_ossl_ctx(0, vminor, cipher);
	FAILIF(uctx == NULL || p.ctx == NULL, "SSL_CTX for %s: %s", cipher,
	    tp_ossl_errstr());
	r = peer_start(&p, &rx);
	FAILIF(r != 0, "peer: %s", strerror(r));
	ssl = SSL_new(uctx);
	FAILIF(ssl == NULL || !SSL_set_fd(ssl, rx), "SSL");
	CHECK_EQ(uktls_openssl_prepare(ssl), 0);
	FAILIF(tp_ossl_handshake(ssl, rx) != 1, "handshake: %s",
	    tp_ossl_errstr());
	CHECK_EQ(uktls_openssl_enable_rx(ssl), ENOTSUP);
	CHECK_EQ(uktls_getsockopt(rx, IPPROTO_TCP, TCP_RXTLS_MODE, &mode,
	    &ml), 0);
	CHECK_EQ(mode, TCP_TLS_MODE_NONE);
	/* Nothing was taken from the socket: OpenSSL reads the data. */
	FAILIF(ossl_read_some(ssl, rx, buf, sizeof(buf)) != 64,
	    "SSL_read after the refusal: %s", tp_ossl_errstr());
	tp_pat_fill(p.seed, 0, want, 64);
	CHECK(memcmp(buf, want, 64) == 0);
out:
	peer_end(&p, rx, NULL);
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
	struct tp_gnutls g = { NULL, NULL };
	uint8_t buf[64], want[64];
	ssize_t n;
	int rx = -1, r;

	/* The peer: GnuTLS with the same priorities, on its own thread. */
	peer_init(&p, PEER_GNUTLS, 64);
	/* One record of 64 bytes, which one read returns whole. */
	p.first_len = 64;
	p.prio = prio;
	r = peer_start(&p, &rx);
	FAILIF(r != 0, "peer: %s", strerror(r));
	r = tp_gnutls_start(&g, 1, prio, rx);
	FAILIF(r != 0, "GnuTLS session: %s", strerror(r));
	r = tp_gnutls_handshake(g.ses, rx);
	FAILIF(r != 0, "handshake: %s", gnutls_strerror(r));
	CHECK_EQ(uktls_gnutls_enable_rx(g.ses), ENOTSUP);
	do
		n = gnutls_record_recv(g.ses, buf, sizeof(buf));
	while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	CHECK_EQ(n, 64);
	tp_pat_fill(p.seed, 0, want, 64);
	CHECK(n == 64 && memcmp(buf, want, 64) == 0);
out:
	peer_end(&p, rx, NULL);
	tp_gnutls_end(&g);
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
	int rx = -1, fds[2] = { -1, -1 }, r;

	peer_init(&p, PEER_OPENSSL, 10);
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
	p.ctx = ossl_ctx(&tg_suites[TG_FIRST_TLS13], 0);
	FAILIF(p.ctx == NULL, "peer SSL_CTX");
	r = peer_start(&p, &rx);
	FAILIF(r != 0, "peer: %s", strerror(r));
	late = SSL_new(uctx);
	FAILIF(late == NULL || !SSL_set_fd(late, rx), "SSL");
	FAILIF(tp_ossl_handshake(late, rx) != 1, "handshake: %s",
	    tp_ossl_errstr());
	CHECK_EQ(uktls_openssl_prepare(late), EINVAL);
	CHECK_EQ(uktls_openssl_enable_rx(late), EINVAL);
	/* Let the peer finish with OpenSSL. */
	{
		uint8_t buf[16];

		CHECK_EQ(ossl_read_some(late, rx, buf, sizeof(buf)), 10);
	}
out:
	peer_end(&p, rx, NULL);
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
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
	r = tp_ossl_handshake(ssl, rx);
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

/* An OpenSSL client whose Finished comes late, then 1000 bytes. */
struct late_client {
	int fd;
	int vminor;
	uint64_t seed;
	int ok;
};

static void
late_finished(const SSL *ssl, int where, int ret)
{
	OSSL_HANDSHAKE_STATE st = SSL_get_state(ssl);

	(void)ret;
	if ((where & SSL_CB_LOOP) != 0 &&
	    (st == TLS_ST_CR_FINISHED || st == TLS_ST_CW_CHANGE))
		tg_sleep_ms(300);
}

static void *
late_client_main(void *arg)
{
	struct late_client *lc = arg;
	uint8_t b[1000];
	SSL_CTX *ctx;
	SSL *ssl = NULL;

	ctx = tp_ossl_ctx(0, lc->vminor, NULL);
	if (ctx != NULL)
		ssl = SSL_new(ctx);
	if (ssl != NULL && SSL_set_fd(ssl, lc->fd) == 1) {
		SSL_set_info_callback(ssl, late_finished);
		if (tp_ossl_handshake(ssl, lc->fd) == 1) {
			tp_pat_fill(lc->seed, 0, b, sizeof(b));
			lc->ok = SSL_write(ssl, b, sizeof(b)) == sizeof(b);
			(void)SSL_shutdown(ssl);
		}
	}
	(void)shutdown(lc->fd, SHUT_WR);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * uktls_gnutls_enable_rx() in the middle of a handshake that returned
 * GNUTLS_E_AGAIN (the peer's Finished not in yet: the current read key is
 * its handshake key) is EINVAL and takes nothing; the handshake then
 * finishes and the enable takes the stream.
 */
static void
t_gnutls_mid_handshake(void *arg)
{
	const struct tg_suite *s = arg;
	struct tp_gnutls g = { NULL, NULL };
	struct late_client lc;
	struct tp_stream want_rx;
	struct tp_rx st;
	pthread_t t;
	int rx = -1, tx = -1, r, tries = 0, started = 0;

	tg_watchdog(TG_WATCHDOG_S);
	REQUIRE(tg_tcp_pair(&rx, &tx) == 0);
	memset(&lc, 0, sizeof(lc));
	lc.fd = tx;
	lc.vminor = s->tls_vminor;
	lc.seed = 77;
	FAILIF(tp_gnutls_start(&g, 1, tp_gnutls_prio(s), rx) != 0, "GnuTLS");
	FAILIF(fcntl(rx, F_SETFL, fcntl(rx, F_GETFL) | O_NONBLOCK) != 0,
	    "O_NONBLOCK");
	FAILIF(pthread_create(&t, NULL, late_client_main, &lc) != 0,
	    "pthread_create");
	started = 1;
	/* Into the handshake, until it waits for the late Finished. */
	do {
		r = gnutls_handshake(g.ses);
		if (r == GNUTLS_E_AGAIN)
			(void)tp_wait_fd(rx, POLLIN, 20);
	} while (r == GNUTLS_E_AGAIN && ++tries < 5);
	FAILIF(r != GNUTLS_E_AGAIN, "handshake did not wait: %s",
	    gnutls_strerror(r));
	CHECK_EQ(uktls_gnutls_enable_rx(g.ses), EINVAL);
	r = tp_gnutls_handshake(g.ses, rx);
	FAILIF(r != 0, "gnutls_handshake: %s", gnutls_strerror(r));
	FAILIF(fcntl(rx, F_SETFL, fcntl(rx, F_GETFL) & ~O_NONBLOCK) != 0,
	    "blocking");
	r = uktls_gnutls_enable_rx(g.ses);
	FAILIF(r != 0, "enable after the handshake: %s", strerror(r));
	want_rx = (struct tp_stream){ .seed = lc.seed, .start = 0,
	    .wait_ms = TG_WAIT_MS };
	if (tp_rx_stream(rx, &want_rx, &st) != 0)
		goto out;
	TP_CHECK_CLEAN_END(&st, 1000);
out:
	if (started)
		pthread_join(t, NULL);
	if (started)
		CHECK_EQ(lc.ok, 1);
	if (rx >= 0)
		uktls_close(rx);
	if (tx >= 0)
		close(tx);
	tp_gnutls_end(&g);
}

/* After the server's Finished: let the peer's Finished and data arrive
 * together, so that a buffering BIO reads both. */
static void
finished_pause(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	(void)arg;
	if (write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const uint8_t *)buf)[0] == SSL3_MT_FINISHED)
		tg_sleep_ms(100);
}

/*
 * A BIO_f_buffer() under OpenSSL reads the socket in blocks, past the
 * record OpenSSL asked for: with bytes in it the enable is refused (EPROTO)
 * and the SSL goes on reading the whole stream; with none (TLS 1.2, whose
 * server's Finished comes last) the enable takes the whole stream.
 */
static void
t_ossl_buffer_bio(void *arg)
{
	const struct tg_suite *s = arg;
	struct peer p;
	struct tp_stream want_rx;
	struct tp_rx st;
	SSL_CTX *uctx = NULL;
	SSL *ssl = NULL;
	BIO *sock, *buf;
	uint8_t b[4096], want[4096];
	uint64_t off = 0;
	int rx = -1, r, held;

	tg_watchdog(TG_WATCHDOG_S);
	peer_init(&p, PEER_OPENSSL, STREAM_LEN);
	uctx = ossl_ctx(s, 1);
	p.ctx = ossl_ctx(s, 0);
	FAILIF(uctx == NULL || p.ctx == NULL, "SSL_CTX");
	r = peer_start(&p, &rx);
	FAILIF(r != 0, "peer: %s", strerror(r));
	ssl = SSL_new(uctx);
	sock = BIO_new_socket(rx, BIO_NOCLOSE);
	buf = BIO_new(BIO_f_buffer());
	FAILIF(ssl == NULL || sock == NULL || buf == NULL, "SSL, BIOs");
	BIO_up_ref(sock);
	BIO_push(buf, sock);
	SSL_set_bio(ssl, buf, sock);
	SSL_set_msg_callback(ssl, finished_pause);
	FAILIF(uktls_openssl_prepare(ssl) != 0, "prepare");
	FAILIF(tp_ossl_handshake(ssl, rx) != 1, "handshake: %s",
	    tp_ossl_errstr());
	held = BIO_ctrl_pending(sock) == 0 && BIO_ctrl_pending(buf) > 0;
	r = uktls_openssl_enable_rx(ssl);
	if (held) {
		CHECK_EQ(r, EPROTO);
		/* Nothing was taken: OpenSSL reads the stream to its end. */
		while (off < p.total) {
			r = ossl_read_some(ssl, rx, b, sizeof(b));
			FAILIF(r <= 0, "SSL_read after the refusal at %llu",
			    (unsigned long long)off);
			tp_pat_fill(p.seed, off, want, (size_t)r);
			FAILIF(memcmp(b, want, (size_t)r) != 0, "SSL_read: "
			    "wrong bytes at %llu", (unsigned long long)off);
			off += (uint64_t)r;
		}
		goto out;
	}
	FAILIF(r != 0, "enable with nothing buffered: %s", strerror(r));
	want_rx = (struct tp_stream){ .seed = p.seed, .start = 0,
	    .wait_ms = TG_WAIT_MS };
	if (tp_rx_stream(rx, &want_rx, &st) != 0)
		goto out;
	TP_CHECK_CLEAN_END(&st, p.total);
out:
	peer_end(&p, rx, NULL);
	SSL_free(ssl);
	SSL_CTX_free(uctx);
	SSL_CTX_free(p.ctx);
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
	struct tp_stream want_rx;
	struct tp_rx st;
	SSL_CTX *uctx = NULL;
	SSL *ssl = NULL;
	uint8_t buf[2048], want[2048];
	uint64_t off = 0;
	int rx = -1, r, i;

	tg_watchdog(TG_WATCHDOG_S);
	peer_init(&p, PEER_OPENSSL, STREAM_LEN);
	p.first_len = 1000;
	uctx = ossl_ctx(s, 1);
	p.ctx = ossl_ctx(s, 0);
	FAILIF(uctx == NULL || p.ctx == NULL, "SSL_CTX");
	SSL_CTX_set_read_ahead(uctx, 1);
	r = peer_start(&p, &rx);
	FAILIF(r != 0, "peer: %s", strerror(r));
	ssl = SSL_new(uctx);
	FAILIF(ssl == NULL || !SSL_set_fd(ssl, rx), "SSL");
	FAILIF(uktls_openssl_prepare(ssl) != 0, "prepare");
	FAILIF(tp_ossl_handshake(ssl, rx) != 1, "handshake: %s",
	    tp_ossl_errstr());
	for (i = 0; i < 2; i++) {
		r = ossl_read_some(ssl, rx, buf, 100);
		FAILIF(r != 100, "SSL_read: %d", r);
		tp_pat_fill(p.seed, off, want, 100);
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
	want_rx = (struct tp_stream){ .seed = p.seed, .start = off,
	    .wait_ms = TG_WAIT_MS };
	if (tp_rx_stream(rx, &want_rx, &st) != 0)
		goto out;
	TP_CHECK_CLEAN_END(&st, p.total - off);
	CHECK_EQ(st.eof, 1);
	CHECK_EQ(st.first_app_len, 800);
out:
	uktls_fault_hook = NULL;
	peer_end(&p, rx, NULL);
	SSL_free(ssl);
	SSL_CTX_free(uctx);
	SSL_CTX_free(p.ctx);
}
#endif /* UKTLS_TEST_HOOKS */

int
main(int argc, char **argv)
{
	size_t i;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		tp_register(scenarios[i].name, run_scenario, &scenarios[i],
		    scenarios[i].tls13_only);
#ifdef UKTLS_TEST_HOOKS
	tg_register_suites("ossl_buffer_bio", t_ossl_buffer_bio, 0, TG_NSUITES);
	tg_register_suites("gnutls_mid_handshake", t_gnutls_mid_handshake, 0,
	    TG_NSUITES);
	tg_register_suites("ossl_enable_failure", t_ossl_enable_failure, 0,
	    TG_NSUITES);
#endif
	return (harness_main(argc, argv));
}
