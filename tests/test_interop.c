/*
 * Interoperability tests: the real `openssl s_client`, `openssl s_server`
 * and `gnutls-cli` programs against a uktls endpoint that did its
 * handshake with OpenSSL or GnuTLS and handed the receive side over with
 * the hand-off helpers.  They pin down what an application sees through
 * uktls_recvmsg() for each kind of record a real peer sends:
 *
 *  - application data: long streams (64 MiB, 8 MiB under sanitizers) with
 *    SHA-256 checksums of what went into the client and what came out of
 *    uktls, for the six suites, with TLS 1.3 record padding too;
 *  - close_notify: a record of type 21 holding 01 00, then end of stream;
 *  - KeyUpdate: a record of type 22 whose payload starts with 24; with
 *    FreeBSD's enable (the hand-off helpers) there is no rekey, so the
 *    records after it fail to authenticate and the receive returns
 *    EBADMSG; with Linux's enable, done by the application from the
 *    keys it derives itself, reads give EKEYEXPIRED until it sets the
 *    next key, and the records after it then read as sent;
 *  - NewSessionTicket (uktls on the client side, TLS 1.3): records of type
 *    22 whose payload starts with 4, before the data;
 *  - a peer killed in the middle of a record: EMSGSIZE or ECONNRESET,
 *    never a clean end of stream.
 *
 * The programs come from the openssl and gnutls-bin packages; a test whose
 * program is missing fails and says so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "tlsgen.h"
#include "tlspeer.h"
#include "uktls.h"
#include "uktls/gnutls.h"
#include "uktls/openssl.h"

extern char **environ;

#define APP TLS_RLTYPE_APP
#define MIB (1024u * 1024u)
/* The long streams: 64 MiB, 8 MiB under sanitizers. */
#define BIG_STREAM ((uint64_t)(TG_SANITIZED ? 8 : 64) * MIB)
#define SMALL_STREAM ((uint64_t)MIB)
#define WAIT_MS (20000 * TG_TIME_MUL)
/* Per test: the watchdog ends the program if one hangs. */
#define TEST_TIMEOUT_S (120 * TG_TIME_MUL)

/* ==== data =========================================================== */

static void
hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* write() all of buf to a pipe or file (tg_write_all is for sockets). */
static ssize_t
write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		done += (size_t)n;
	}
	return ((ssize_t)len);
}

/* ==== child programs ================================================= */

struct child {
	pid_t pid;
	int in;           /* its stdin, or -1 */
	char log[64];     /* its stdout and stderr */
};

/*
 * Start argv[0] (found on PATH) with stdin from a new pipe (kept in
 * c->in) and output to a log file.  Returns 0, or -1 after reporting.
 */
static int
child_start(struct child *c, char *const argv[], const char *cwd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t dfl;
	int in[2] = { -1, -1 }, logfd = -1, r, ret = -1;

	c->pid = -1;
	c->in = -1;
	snprintf(c->log, sizeof(c->log), "/tmp/uktls-interop-XXXXXX");
	logfd = mkstemp(c->log);
	if (logfd == -1 || pipe2(in, O_CLOEXEC) != 0) {
		harness_fail(__FILE__, __LINE__, "log or pipe: %s",
		    strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, 1);
	posix_spawn_file_actions_adddup2(&fa, logfd, 2);
	if (cwd != NULL)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	/* The tests ignore SIGPIPE; the programs get the default back. */
	posix_spawnattr_init(&sa);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigdefault(&sa, &dfl);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF);
	r = posix_spawnp(&c->pid, argv[0], &fa, &sa, argv, environ);
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		harness_fail(__FILE__, __LINE__, "cannot run %s: %s (install "
		    "the openssl and gnutls-bin packages)", argv[0],
		    strerror(r));
		c->pid = -1;
		goto out;
	}
	c->in = in[1];
	in[1] = -1;
	ret = 0;
out:
	if (in[0] != -1)
		close(in[0]);
	if (in[1] != -1)
		close(in[1]);
	if (logfd != -1)
		close(logfd);
	return (ret);
}

/* Print the end of the child's log, to explain a failure. */
static void
child_show_log(const struct child *c)
{
	char buf[1500];
	ssize_t n;
	off_t size;
	int fd;

	fd = open(c->log, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) - 1 ?
	    size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		printf("     --- child output (end) ---\n%s\n     ---\n", buf);
	}
}

/* Wait up to ms for text to appear in the child's log: 1 if it did. */
static int
child_log_wait(const struct child *c, const char *text, int ms)
{
	static char buf[1 << 16];
	double deadline = tg_now() + ms / 1000.0;
	ssize_t n;
	int fd, found = 0;

	for (;;) {
		fd = open(c->log, O_RDONLY | O_CLOEXEC);
		if (fd != -1) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0) {
				buf[n] = '\0';
				found = strstr(buf, text) != NULL;
			}
		}
		if (found || tg_now() > deadline)
			return (found);
		usleep(10000);
	}
}

/*
 * Wait up to ms for the child to exit, then kill it.  Returns its wait
 * status, or -1 if it had to be killed.
 */
static int
child_reap(struct child *c, int ms, int show_log)
{
	double deadline = tg_now() + ms / 1000.0;
	int status = -1, killed = 0;
	pid_t r;

	if (c->in != -1) {
		close(c->in);
		c->in = -1;
	}
	if (c->pid > 0) {
		for (;;) {
			r = waitpid(c->pid, &status, WNOHANG);
			if (r == c->pid || (r == -1 && errno != EINTR))
				break;
			if (tg_now() > deadline) {
				kill(c->pid, SIGKILL);
				waitpid(c->pid, &status, 0);
				killed = 1;
				break;
			}
			tg_sleep_ms(5);
		}
		c->pid = -1;
	}
	if (show_log)
		child_show_log(c);
	if (c->log[0] != '\0') {
		unlink(c->log);
		c->log[0] = '\0';
	}
	return (killed ? -1 : status);
}

/* A client program for suite s, connecting to port; extra options first. */
enum client_prog {
	S_CLIENT,
	GNUTLS_CLI,
};

struct argv_buf {
	char *v[32];
	char store[8][160];
	int n;
	int ns;
};

static void
argv_add(struct argv_buf *a, const char *s)
{

	if (a->n < 31)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static void argv_addf(struct argv_buf *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
argv_addf(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;

	if (a->ns >= 8)
		return;
	va_start(ap, fmt);
	vsnprintf(a->store[a->ns], sizeof(a->store[0]), fmt, ap);
	va_end(ap);
	argv_add(a, a->store[a->ns++]);
}

static void
client_argv(struct argv_buf *a, enum client_prog prog,
    const struct tg_suite *s, int port, const char *const *extra)
{

	memset(a, 0, sizeof(*a));
	if (prog == S_CLIENT) {
		argv_add(a, "openssl");
		argv_add(a, "s_client");
		argv_add(a, "-connect");
		argv_addf(a, "127.0.0.1:%d", port);
		argv_add(a, tp_is_tls13(s) ? "-tls1_3" : "-tls1_2");
		argv_add(a, tp_is_tls13(s) ? "-ciphersuites" : "-cipher");
		argv_add(a, tp_ossl_suite(s));
	} else {
		argv_add(a, "gnutls-cli");
		argv_add(a, "--insecure");
		argv_addf(a, "--port=%d", port);
		argv_addf(a, "--priority=%s", tp_gnutls_prio(s));
	}
	for (; extra != NULL && *extra != NULL; extra++)
		argv_add(a, *extra);
	if (prog == GNUTLS_CLI)
		argv_add(a, "127.0.0.1");
}

/* ==== the uktls server =============================================== */

enum helper {
	H_OPENSSL,
	H_GNUTLS,
	/*
	 * No helper: an OpenSSL handshake without read-ahead, then the
	 * application enables Linux's way (SOL_TLS/TLS_RX) with keys it
	 * derives itself from the peer's traffic secret, as a Linux kTLS
	 * program does.  TLS 1.3 only.
	 */
	H_LINUX,
	/* The OpenSSL helper enabling Linux's way (UKTLS_RX_LINUX), which
	 * follows KeyUpdates with uktls_openssl_update_rx(). */
	H_OPENSSL_LINUX,
	/* The same with GnuTLS: uktls_gnutls_update_rx(). */
	H_GNUTLS_LINUX,
};

static const char *
helper_name(enum helper h)
{

	return (h == H_OPENSSL ? "OpenSSL" : h == H_GNUTLS ? "GnuTLS" :
	    h == H_OPENSSL_LINUX ? "OpenSSL, Linux's form" :
	    h == H_GNUTLS_LINUX ? "GnuTLS, Linux's form" :
	    "Linux's TLS_RX");
}

/* ==== Linux's form: keys from the traffic secret ===================== */

/* The peer's (the client's) TLS 1.3 traffic secret, from the keylog. */
static uint8_t lx_secret[48];
static size_t lx_secret_len;

static void
lx_keylog(const SSL *ssl, const char *line)
{
	static const char tag[] = "CLIENT_TRAFFIC_SECRET_0 ";
	const char *hexs;
	size_t i, n;

	(void)ssl;
	if (strncmp(line, tag, sizeof(tag) - 1) != 0)
		return;
	hexs = strrchr(line, ' ') + 1;
	n = strlen(hexs) / 2;
	if (n > sizeof(lx_secret))
		return;
	for (i = 0; i < n; i++)
		if (sscanf(hexs + 2 * i, "%2hhx", &lx_secret[i]) != 1)
			return;
	lx_secret_len = n;
}

/* RFC 8446 7.1 HKDF-Expand-Label with an empty context. */
static int
lx_expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen,
    const char *label, uint8_t *out, size_t outlen)
{
	uint8_t info[64];
	size_t n = 0, ll = strlen(label);
	EVP_PKEY_CTX *pctx;
	int ok;

	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;
	pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	ok = pctx != NULL && EVP_PKEY_derive_init(pctx) > 0 &&
	    EVP_PKEY_CTX_set_hkdf_mode(pctx,
	    EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) > 0 &&
	    EVP_PKEY_CTX_set_hkdf_md(pctx, md) > 0 &&
	    EVP_PKEY_CTX_set1_hkdf_key(pctx, secret, (int)slen) > 0 &&
	    EVP_PKEY_CTX_add1_hkdf_info(pctx, info, (int)n) > 0 &&
	    EVP_PKEY_derive(pctx, out, &outlen) > 0;
	EVP_PKEY_CTX_free(pctx);
	return (ok ? 0 : -1);
}

/*
 * uktls_setsockopt(SOL_TLS, TLS_RX) with the key and IV of the peer's
 * current traffic secret and sequence number 0, as after the handshake or
 * a KeyUpdate.  next: first move to the secret after the current one
 * (RFC 8446 7.2, "traffic upd").  Returns 0, or -1 after reporting.
 */
static int
lx_set_keys(int fd, const struct tg_suite *s, int next)
{
	const EVP_MD *md = s->key_len == 32 &&
	    s->cipher_algorithm != CRYPTO_CHACHA20_POLY1305 ? EVP_sha384() :
	    EVP_sha256();
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 chacha;
	} u;
	uint8_t key[32], iv[12], upd[48];
	size_t hlen = (size_t)EVP_MD_get_size(md);
	socklen_t len;
	int r = -1;

	memset(&u, 0, sizeof(u));
	FAILIF(lx_secret_len != hlen, "traffic secret: %zu bytes, want %zu",
	    lx_secret_len, hlen);
	if (next) {
		FAILIF(lx_expand_label(md, lx_secret, hlen, "traffic upd", upd,
		    hlen) != 0, "HKDF-Expand-Label");
		memcpy(lx_secret, upd, hlen);
	}
	FAILIF(lx_expand_label(md, lx_secret, hlen, "key", key,
	    (size_t)s->key_len) != 0 ||
	    lx_expand_label(md, lx_secret, hlen, "iv", iv, 12) != 0,
	    "HKDF-Expand-Label");
	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305) {
		u.chacha.info.version = TLS_1_3_VERSION;
		u.chacha.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(u.chacha.iv, iv, 12);
		memcpy(u.chacha.key, key, 32);
		len = sizeof(u.chacha);
	} else if (s->key_len == 16) {
		u.g128.info.version = TLS_1_3_VERSION;
		u.g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(u.g128.salt, iv, 4);
		memcpy(u.g128.iv, iv + 4, 8);
		memcpy(u.g128.key, key, 16);
		len = sizeof(u.g128);
	} else {
		u.g256.info.version = TLS_1_3_VERSION;
		u.g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(u.g256.salt, iv, 4);
		memcpy(u.g256.iv, iv + 4, 8);
		memcpy(u.g256.key, key, 32);
		len = sizeof(u.g256);
	}
	FAILIF(uktls_setsockopt(fd, SOL_TLS, TLS_RX, &u, len) != 0,
	    "TLS_RX: %s", strerror(errno));
	r = 0;
out:
	OPENSSL_cleanse(&u, sizeof(u));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(upd, sizeof(upd));
	return (r);
}

static int
listen_any(int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int l;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l == -1)
		return (-1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) != 0) {
		close(l);
		return (-1);
	}
	*port = ntohs(sin.sin_port);
	return (l);
}

static int
accept_wait(int l, int ms)
{

	if (tp_wait_fd(l, POLLIN, ms) != 1)
		return (-1);
	return (accept4(l, NULL, NULL, SOCK_CLOEXEC));
}

/* What the uktls side did its handshake with; freed by uk_end(). */
struct uk {
	enum helper helper;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	struct tp_gnutls g;
};

static void
uk_end(struct uk *u)
{

	if (u->fd != -1)
		uktls_close(u->fd);
	u->fd = -1;
	SSL_free(u->ssl);
	SSL_CTX_free(u->ctx);
	tp_gnutls_end(&u->g);
	u->ssl = NULL;
	u->ctx = NULL;
}

/*
 * An OpenSSL context for either side with read-ahead on, which the
 * hand-off must cope with.  A server takes every suite the tests use, so
 * that the real program picks the one under test; a client (s not NULL)
 * offers suite s alone.
 */
static SSL_CTX *
ossl_ctx(int server, const struct tg_suite *s)
{
	SSL_CTX *ctx;

	ctx = s == NULL ? tp_ossl_ctx(server, 0, NULL) :
	    tp_ossl_ctx(server, s->tls_vminor, tp_ossl_suite(s));
	if (ctx != NULL)
		SSL_CTX_set_read_ahead(ctx, 1);
	return (ctx);
}

/*
 * Handshake on fd with the helper's library, as server or client, check
 * that suite s was negotiated, and enable RX with the helper.  Returns 0,
 * or -1 after reporting.
 */
static int
uk_start(struct uk *u, enum helper h, int fd, int server,
    const struct tg_suite *s)
{
	int r, v, nid, want_nid;

	memset(u, 0, sizeof(*u));
	u->helper = h;
	u->fd = fd;
	if (h == H_OPENSSL || h == H_LINUX || h == H_OPENSSL_LINUX) {
		u->ctx = ossl_ctx(server, server ? NULL : s);
		FAILIF(u->ctx == NULL, "SSL_CTX: %s", tp_ossl_errstr());
		if (h == H_LINUX) {
			/* Nothing read past the handshake: no hand-off. */
			SSL_CTX_set_read_ahead(u->ctx, 0);
			SSL_CTX_set_keylog_callback(u->ctx, lx_keylog);
			lx_secret_len = 0;
		}
		u->ssl = SSL_new(u->ctx);
		FAILIF(u->ssl == NULL || !SSL_set_fd(u->ssl, fd), "SSL");
		if (h != H_LINUX) {
			r = uktls_openssl_prepare(u->ssl);
			FAILIF(r != 0, "uktls_openssl_prepare: %s",
			    strerror(r));
		}
		r = tp_ossl_handshake(u->ssl, fd);
		FAILIF(r != 1, "OpenSSL handshake: %s", tp_ossl_errstr());
		v = SSL_version(u->ssl);
		nid = SSL_CIPHER_get_cipher_nid(SSL_get_current_cipher(u->ssl));
		want_nid = s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305 ?
		    NID_chacha20_poly1305 : s->key_len == 16 ?
		    NID_aes_128_gcm : NID_aes_256_gcm;
		FAILIF(v != (tp_is_tls13(s) ? TLS1_3_VERSION :
		    TLS1_2_VERSION) || nid != want_nid,
		    "negotiated %s %s, want %s", SSL_get_version(u->ssl),
		    SSL_CIPHER_get_name(SSL_get_current_cipher(u->ssl)),
		    s->name);
		if (h == H_LINUX) {
			FAILIF(!server || !tp_is_tls13(s) ||
			    SSL_has_pending(u->ssl),
			    "Linux's form: a TLS 1.3 server with nothing "
			    "buffered");
			if (lx_set_keys(fd, s, 0) != 0)
				goto out;
			return (0);
		}
		r = uktls_openssl_enable_rx_flags(u->ssl, h == H_OPENSSL_LINUX ?
		    UKTLS_RX_LINUX : 0);
		FAILIF(r != 0, "uktls_openssl_enable_rx_flags: %s",
		    strerror(r));
	} else {
		r = tp_gnutls_start(&u->g, server, server ?
		    "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3" :
		    tp_gnutls_prio(s), fd);
		FAILIF(r != 0, "GnuTLS session: %s", strerror(r));
		r = tp_gnutls_handshake(u->g.ses, fd);
		FAILIF(r != 0, "GnuTLS handshake: %s", gnutls_strerror(r));
		FAILIF(gnutls_protocol_get_version(u->g.ses) !=
		    (tp_is_tls13(s) ? GNUTLS_TLS1_3 : GNUTLS_TLS1_2) ||
		    gnutls_cipher_get(u->g.ses) != (s->cipher_algorithm ==
		    CRYPTO_CHACHA20_POLY1305 ? GNUTLS_CIPHER_CHACHA20_POLY1305 :
		    s->key_len == 16 ? GNUTLS_CIPHER_AES_128_GCM :
		    GNUTLS_CIPHER_AES_256_GCM), "negotiated %s %s, want %s",
		    gnutls_protocol_get_name(
		    gnutls_protocol_get_version(u->g.ses)),
		    gnutls_cipher_get_name(gnutls_cipher_get(u->g.ses)),
		    s->name);
		r = uktls_gnutls_enable_rx_flags(u->g.ses, h == H_GNUTLS_LINUX ?
		    UKTLS_RX_LINUX : 0);
		FAILIF(r != 0, "uktls_gnutls_enable_rx_flags: %s",
		    strerror(r));
	}
	return (0);
out:
	return (-1);
}

/*
 * The answer to the peer's close_notify.  Only the sending side: a second
 * SSL_shutdown() or GNUTLS_SHUT_RDWR would read the socket, which is
 * uktls's.
 */
static void
uk_send_close_notify(struct uk *u)
{

	if (u->helper == H_OPENSSL || u->helper == H_OPENSSL_LINUX)
		CHECK(SSL_shutdown(u->ssl) >= 0);
	else
		CHECK_EQ(gnutls_bye(u->g.ses, GNUTLS_SHUT_WR), 0);
}

/* ==== checksums ====================================================== */

static EVP_MD_CTX *
sha256_new(void)
{
	EVP_MD_CTX *md;

	md = EVP_MD_CTX_new();
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		abort();
	return (md);
}

/* ==== feeding a program's stdin ====================================== */

struct feeder {
	int fd;
	uint64_t seed;
	uint64_t total;
	uint8_t sha[32];
	int err;
	pthread_t thr;
	int started;
};

/* Write the stream in pieces of random size, then close: end of input. */
static void *
feeder_main(void *arg)
{
	struct feeder *f = arg;
	struct tg_rng rng = { f->seed };
	EVP_MD_CTX *md;
	uint8_t *buf;
	uint64_t off = 0;
	unsigned int len;
	size_t n;

	buf = malloc(65536);
	md = EVP_MD_CTX_new();
	if (buf == NULL || md == NULL ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		f->err = ENOMEM;
		goto out;
	}
	while (off < f->total) {
		n = 1 + (size_t)tg_rng_below(&rng, 65536);
		if (n > f->total - off)
			n = (size_t)(f->total - off);
		tp_pat_fill(f->seed, off, buf, n);
		EVP_DigestUpdate(md, buf, n);
		if (write_all(f->fd, buf, n) != (ssize_t)n) {
			f->err = errno;
			goto out;
		}
		off += n;
	}
	EVP_DigestFinal_ex(md, f->sha, &len);
out:
	close(f->fd);
	f->fd = -1;
	EVP_MD_CTX_free(md);
	free(buf);
	return (NULL);
}

/* ==== streams ======================================================== */

/*
 * A test: a row of the table before main(), run for each suite as
 * fn(suite, row), which takes from the row what it needs.
 */
struct row {
	const char *name;
	void (*fn)(const struct tg_suite *, const void *);
	int tls13_only;
	enum client_prog prog;
	enum helper helper;
	uint64_t total;          /* stream: the bytes the client sends */
	const char *const *opts; /* ... its options */
	int ku_requested_too;    /* KeyUpdate: with update_requested, too */
};

static const char *
prog_name(enum client_prog prog)
{

	return (prog == S_CLIENT ? "s_client" : "gnutls-cli");
}

/*
 * Run prog as a client of suite s, with the options extra, and take its
 * connection on a new listening socket as the uktls server with helper h.
 * c and u are set up before anything can fail, so that child_reap() and
 * uk_end() may follow whatever happens.  Returns 0, or -1 after reporting.
 */
static int
client_connect(struct child *c, struct uk *u, enum client_prog prog,
    enum helper h, const struct tg_suite *s, const char *const *extra)
{
	struct argv_buf a;
	int l, fd, port, ret = -1;

	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->in = -1;
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	l = listen_any(&port);
	FAILIF(l == -1, "listen: %s", strerror(errno));
	client_argv(&a, prog, s, port, extra);
	if (child_start(c, a.v, NULL) != 0)
		goto out;
	fd = accept_wait(l, WAIT_MS);
	FAILIF(fd == -1, "%s did not connect", prog_name(prog));
	if (uk_start(u, h, fd, 1, s) != 0)
		goto out;
	ret = 0;
out:
	if (l != -1)
		close(l);
	return (ret);
}

/*
 * prog sends total bytes of a random stream (from its stdin) to the uktls
 * server using helper h; the stream, its SHA-256, the close_notify and the
 * end of stream must come out of uktls.
 */
static void
stream_test(const struct tg_suite *s, enum client_prog prog, enum helper h,
    uint64_t total, const char *const *extra)
{
	struct child c;
	struct feeder f;
	struct tp_stream want;
	struct tp_rx st;
	struct uk u;
	EVP_MD_CTX *md = sha256_new();
	uint8_t sha[32];
	unsigned int len;
	char h1[65] = "", h2[65];
	int status, fails0 = harness_cur_failed;

	tg_watchdog(TEST_TIMEOUT_S);
	memset(&f, 0, sizeof(f));
	if (client_connect(&c, &u, prog, h, s, extra) != 0)
		goto out;
	f.fd = c.in;
	c.in = -1;
	f.seed = tg_random64();
	f.total = total;
	f.started = pthread_create(&f.thr, NULL, feeder_main, &f) == 0;
	FAILIF(!f.started, "feeder thread");
	want = (struct tp_stream){ .seed = f.seed, .md = md,
	    .wait_ms = WAIT_MS, .stop_at_close_notify = 1 };
	if (tp_rx_stream(u.fd, &want, &st) != 0)
		goto out;
	EVP_DigestFinal_ex(md, sha, &len);
	/*
	 * The client said close_notify: answer with ours through the TLS
	 * library, whose sending side the application keeps (gnutls-cli
	 * waits two seconds for it otherwise), then the end of stream.
	 */
	if (st.close_notify == 1) {
		uk_send_close_notify(&u);
		TG_EXPECT_EOF(u.fd);
	}
	pthread_join(f.thr, NULL);
	f.started = 0;
	FAILIF(f.err != 0, "feeding %s: %s", prog_name(prog),
	    strerror(f.err));
	TP_CHECK_CLEAN_END(&st, total);
	CHECK_EQ(st.nst, 0);
	hex(f.sha, 32, h1);
	hex(sha, 32, h2);
	if (memcmp(f.sha, sha, 32) != 0)
		harness_fail(__FILE__, __LINE__, "SHA-256 in %s, out %s", h1,
		    h2);
out:
	if (f.started) {
		/* Unblock the feeder if the reader gave up. */
		if (c.pid > 0)
			kill(c.pid, SIGKILL);
		pthread_join(f.thr, NULL);
	}
	uk_end(&u);
	status = child_reap(&c, WAIT_MS, harness_cur_failed != fails0);
	if (harness_cur_failed == fails0 && (status == -1 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0))
		harness_fail(__FILE__, __LINE__, "%s exited with status %#x",
		    prog_name(prog), status);
	EVP_MD_CTX_free(md);
	if (harness_cur_failed == fails0)
		printf("     %s -> %s: %" PRIu64 " bytes, SHA-256 %.16s...\n",
		    prog_name(prog), helper_name(h), total, h1);
}

static void
t_stream(const struct tg_suite *s, const void *arg)
{
	const struct row *r = arg;

	stream_test(s, r->prog, r->helper, r->total, r->opts);
}

/*
 * TLS 1.3 padding: every record padded to a multiple of 512.  The padding
 * must be taken off; the engine's counters show it was there.
 */
static void
t_padding(const struct tg_suite *s, const void *arg)
{
	static const char *const opts[] = { "-quiet", "-no_ign_eof",
	    "-nocommands", "-record_padding", "512", NULL };
	const struct row *r = arg;
	struct uktls_stats s0, s1;
	uint64_t recs, overhead;

	REQUIRE(uktls_get_stats(&s0) == 0);
	stream_test(s, S_CLIENT, r->helper, SMALL_STREAM, opts);
	REQUIRE(uktls_get_stats(&s1) == 0);
	recs = s1.records_decrypted - s0.records_decrypted;
	overhead = (s1.bytes_received - s0.bytes_received) -
	    (s1.bytes_decrypted - s0.bytes_decrypted);
	/* Unpadded, a record costs 22 bytes: header, type byte and tag. */
	printf("     %" PRIu64 " records, %" PRIu64 " bytes of overhead\n",
	    recs, overhead);
	CHECK(recs > 0 && overhead > recs * 22 + recs * 64);
}

/* Nothing to send: the client's close_notify and end of stream only. */
static void
t_close_notify(const struct tg_suite *s, const void *arg)
{
	static const char *const opts[] = { "-quiet", "-no_ign_eof",
	    "-nocommands", NULL };

	(void)arg;
	stream_test(s, S_CLIENT, H_OPENSSL, 0, opts);
	stream_test(s, GNUTLS_CLI, H_GNUTLS, 0, NULL);
}

/* ==== KeyUpdate ====================================================== */

/*
 * One record from fd; the caller checks it.  Returns the length, or -1
 * with *err set.
 */
static ssize_t
rx_one(int fd, uint8_t *buf, size_t len, uint8_t *type, int *err)
{
	struct tg_rec r;

	*err = 0;
	*type = 0;
	if (tg_wait_readable(fd, WAIT_MS) != 1) {
		*err = ETIMEDOUT;
		return (-1);
	}
	/* Room for FreeBSD's message or Linux's, as the socket was enabled. */
	tg_recv(fd, buf, len, 0, TG_CTL_DEFAULT, &r);
	if (r.n == -1) {
		*err = r.err;
		return (-1);
	}
	if (r.cmsg_ok)
		*type = r.tgr.tls_type;
	else if (r.lx_type >= 0)
		*type = (uint8_t)r.lx_type;
	return (r.n);
}

/* The helper's update_rx() for a Linux-form connection. */
static int
uk_update_rx(struct uk *u)
{

	return (u->helper == H_OPENSSL_LINUX ? uktls_openssl_update_rx(u->ssl) :
	    uktls_gnutls_update_rx(u->g.ses));
}

/*
 * The client sends "hello", then a KeyUpdate (s_client: the line "K" asks
 * the server to update too, "k" does not; gnutls-cli: "^rekey^" and
 * "^rekey1^"), then "after".  uktls delivers "hello", the KeyUpdate as a
 * handshake record (24, length 1, request flag).  With FreeBSD's enable
 * (the helpers) there is no rekey: the next record fails with EBADMSG.
 * With Linux's (H_LINUX) reads give EKEYEXPIRED until the application
 * sets the next key, then "after" reads as sent.
 */
static void
key_update_test(const struct tg_suite *s, enum client_prog prog,
    enum helper h, int requested)
{
	/* -msg: s_client shows the handshake messages it receives. */
	static const char *const s_opts[] = { "-msg", NULL };
	static const char *const g_opts[] = { "--inline-commands", NULL };
	static const char hello[] = "hello\n", after[] = "after\n";
	struct child c;
	struct uk u;
	uint8_t buf[512], type;
	const char *cmd;
	ssize_t n;
	int err, fails0 = harness_cur_failed;

	tg_watchdog(TEST_TIMEOUT_S);
	/* s_client: interactive, so that command letters work. */
	if (client_connect(&c, &u, prog, h, s, prog == S_CLIENT ? s_opts :
	    g_opts) != 0)
		goto out;

	/* Each piece is read by the program alone: wait for its record. */
	FAILIF(write_all(c.in, hello, 6) != 6, "stdin: %s",
	    strerror(errno));
	n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
	FAILIF(n != 6 || type != APP || memcmp(buf, hello, 6) != 0,
	    "first record: %zd bytes, type %u, errno %d", n, type, err);

	if (prog == S_CLIENT)
		cmd = requested ? "K\n" : "k\n";
	else
		cmd = requested ? "^rekey^\n" : "^rekey1^\n";
	FAILIF(write_all(c.in, cmd, strlen(cmd)) != (ssize_t)strlen(cmd),
	    "stdin: %s", strerror(errno));
	n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
	FAILIF(n == -1, "KeyUpdate: receive failed, errno %d (%s)", err,
	    strerror(err));
	CHECK_EQ(type, TLS_RLTYPE_HANDSHAKE);
	CHECK_EQ(n, 5);
	if (n == 5) {
		CHECK_EQ(buf[0], 24);
		CHECK_EQ(buf[1], 0);
		CHECK_EQ(buf[2], 0);
		CHECK_EQ(buf[3], 1);
		CHECK_EQ(buf[4], requested ? 1 : 0);
	}

	FAILIF(write_all(c.in, after, 6) != 6, "stdin: %s",
	    strerror(errno));
	if (h == H_OPENSSL_LINUX || h == H_GNUTLS_LINUX) {
		int req = -1;

		CHECK_ERRNO(uktls_recv(u.fd, buf, sizeof(buf), 0),
		    EKEYEXPIRED);
		CHECK_EQ(uktls_rx_rekey_pending(u.fd, &req), 1);
		CHECK_EQ(req, requested);
		CHECK_EQ(uk_update_rx(&u), 0);
		/* The key is given: nothing waits for another. */
		CHECK_EQ(uktls_rx_rekey_pending(u.fd, &req), 0);
		CHECK_EQ(uk_update_rx(&u), EAGAIN);
		n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
		FAILIF(n != 6 || type != APP || memcmp(buf, after, 6) != 0,
		    "record after update_rx: %zd bytes, type %u, errno %d "
		    "(%s)", n, type, err, strerror(err));
		/*
		 * Data back, after our own KeyUpdate where the peer asked
		 * for one: the peer reads it (under its next receive key if
		 * it asked), and s_client shows our KeyUpdate.
		 */
		if (h == H_OPENSSL_LINUX)
			FAILIF(SSL_write(u.ssl, "ack\n", 4) != 4, "SSL_write: "
			    "%s", tp_ossl_errstr());
		else
			FAILIF(gnutls_record_send(u.g.ses, "ack\n", 4) != 4,
			    "gnutls_record_send");
		FAILIF(!child_log_wait(&c, "ack", WAIT_MS), "%s did not read "
		    "the data sent after the KeyUpdate", prog_name(prog));
		if (prog == S_CLIENT)
			CHECK_EQ(child_log_wait(&c, "<<< TLS 1.3, Handshake "
			    "[length 0005], KeyUpdate", requested ? WAIT_MS :
			    0), requested);
		goto out;
	}
	if (h == H_LINUX) {
		CHECK_ERRNO(uktls_recv(u.fd, buf, sizeof(buf), 0),
		    EKEYEXPIRED);
		if (lx_set_keys(u.fd, s, 1) != 0)
			goto out;
		n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
		FAILIF(n != 6 || type != APP || memcmp(buf, after, 6) != 0,
		    "record after the rekey: %zd bytes, type %u, errno %d "
		    "(%s)", n, type, err, strerror(err));
		goto out;
	}
	/* Under the peer's new key: uktls cannot authenticate it. */
	n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
	FAILIF(n != -1 || err != EBADMSG, "record after the KeyUpdate: "
	    "returned %zd (type %u), errno %d (%s); want EBADMSG", n, type,
	    err, strerror(err));
out:
	uk_end(&u);
	(void)child_reap(&c, 2000 * TG_TIME_MUL, harness_cur_failed != fails0);
}

static void
t_key_update(const struct tg_suite *s, const void *arg)
{
	const struct row *r = arg;

	if (r->ku_requested_too)
		key_update_test(s, r->prog, r->helper, 1);
	key_update_test(s, r->prog, r->helper, 0);
}

/* ==== a peer killed in the middle of a record ======================== */

enum cut {
	CUT_KILL,  /* the writing process is killed: FIN after half */
	CUT_RESET, /* the socket is reset (SO_LINGER 0): RST after half */
};

struct cutter {
	const struct tg_suite *suite;
	int fd;
	int go_fd;       /* a byte here once RX is enabled on the other side */
	enum cut how;
	char err[200];
	pthread_t thr;
	int started;
};

/*
 * A raw writer: an OpenSSL client does the handshake on the socket, then
 * writes two records (a whole one and one cut in half) straight to it and
 * dies or resets the connection.
 */
static void *
cutter_main(void *arg)
{
	struct cutter *k = arg;
	struct linger lg = { 1, 0 };
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	BIO *mem;
	uint8_t data[4000], drain[4096], *wire = NULL;
	size_t n, half;
	pid_t pid;
	char c;
	int status;

	ctx = ossl_ctx(0, k->suite);
	ssl = ctx != NULL ? SSL_new(ctx) : NULL;
	if (ssl == NULL || !SSL_set_fd(ssl, k->fd)) {
		snprintf(k->err, sizeof(k->err), "client SSL");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		snprintf(k->err, sizeof(k->err), "SSL_connect: %s",
		    tp_ossl_errstr());
		goto out;
	}
	/* From here the records go to memory, then out by hand. */
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL) {
		snprintf(k->err, sizeof(k->err), "BIO");
		goto out;
	}
	SSL_set0_wbio(ssl, mem);
	memset(data, 'x', sizeof(data));
	if (SSL_write(ssl, "whole", 5) != 5 ||
	    SSL_write(ssl, data, sizeof(data)) != (int)sizeof(data)) {
		snprintf(k->err, sizeof(k->err), "SSL_write");
		goto out;
	}
	n = BIO_ctrl_pending(mem);
	wire = malloc(n);
	if (wire == NULL || BIO_read(mem, wire, (int)n) != (int)n) {
		snprintf(k->err, sizeof(k->err), "BIO_read");
		goto out;
	}
	/* The whole first record, then half of the second. */
	half = n - (sizeof(data) + 22) / 2;
	/*
	 * Cut only once the other side has handed over, and after taking in
	 * what it sent (TLS 1.3 tickets), so that the close is a plain FIN.
	 */
	if (tp_wait_fd(k->go_fd, POLLIN, WAIT_MS) != 1 ||
	    read(k->go_fd, &c, 1) != 1) {
		snprintf(k->err, sizeof(k->err), "no go");
		goto out;
	}
	while (recv(k->fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
		;
	if (k->how == CUT_RESET) {
		if (tg_write_all(k->fd, wire, half) != (ssize_t)half) {
			snprintf(k->err, sizeof(k->err), "write: %s",
			    strerror(errno));
			goto out;
		}
		tg_sleep_ms(50);
		setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(k->fd);
		k->fd = -1;
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		/* The child only writes and dies: async-signal-safe calls. */
		(void)write(k->fd, wire, half);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	if (pid == -1) {
		snprintf(k->err, sizeof(k->err), "fork: %s", strerror(errno));
		goto out;
	}
	/* The child holds the socket now; it closes when the child dies. */
	close(k->fd);
	k->fd = -1;
	if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
		snprintf(k->err, sizeof(k->err), "child status %#x", status);
out:
	free(wire);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (k->fd != -1)
		close(k->fd);
	k->fd = -1;
	return (NULL);
}

static void
cut_test(const struct tg_suite *s, enum helper h, enum cut how)
{
	struct cutter k;
	struct uk u;
	uint8_t buf[8192], type;
	ssize_t n;
	int rx = -1, err, go[2] = { -1, -1 };

	tg_watchdog(TEST_TIMEOUT_S);
	memset(&k, 0, sizeof(k));
	memset(&u, 0, sizeof(u));
	u.fd = -1;
	k.fd = -1;
	FAILIF(pipe2(go, O_CLOEXEC) != 0, "pipe");
	k.go_fd = go[0];
	FAILIF(tg_tcp_pair(&rx, &k.fd) != 0, "tcp pair");
	k.suite = s;
	k.how = how;
	k.started = pthread_create(&k.thr, NULL, cutter_main, &k) == 0;
	FAILIF(!k.started, "thread");
	if (uk_start(&u, h, rx, 1, s) != 0) {
		rx = -1;
		goto out;
	}
	rx = -1;
	FAILIF(write(go[1], "g", 1) != 1, "go: %s", strerror(errno));
	n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
	FAILIF(n != 5 || type != APP || memcmp(buf, "whole", 5) != 0,
	    "first record: %zd bytes, type %u, errno %d", n, type, err);
	n = rx_one(u.fd, buf, sizeof(buf), &type, &err);
	FAILIF(n == 0, "a record cut in half read as a clean end of stream");
	FAILIF(n != -1 || (err != EMSGSIZE && err != ECONNRESET),
	    "half a record: returned %zd (type %u), errno %d (%s); want "
	    "EMSGSIZE or ECONNRESET", n, type, err, strerror(err));
	if (how == CUT_KILL)
		CHECK_EQ(err, EMSGSIZE);
	else
		printf("     reset in mid-record: %s\n", strerror(err));
out:
	if (rx != -1)
		close(rx);
	uk_end(&u);
	if (go[1] != -1)
		close(go[1]);
	if (k.started) {
		pthread_join(k.thr, NULL);
		if (k.err[0] != '\0')
			harness_fail(__FILE__, __LINE__, "writer: %s", k.err);
	} else if (k.fd != -1)
		close(k.fd);
	if (go[0] != -1)
		close(go[0]);
}

static void
t_cut(const struct tg_suite *s, const void *arg)
{
	const struct row *r = arg;

	cut_test(s, r->helper, CUT_KILL);
	cut_test(s, r->helper, CUT_RESET);
}

/* ==== uktls as the client of `openssl s_server` ====================== */

static int
write_file(const char *path, const void *p, size_t len)
{
	int fd, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return (-1);
	ok = write_all(fd, p, len) == (ssize_t)len;
	return (close(fd) == 0 && ok ? 0 : -1);
}

/* A free port for a program that listens itself. */
static int
free_port(void)
{
	int l, port = -1;

	l = listen_any(&port);
	if (l != -1)
		close(l);
	return (port);
}

/*
 * Connect to port, retrying until the program c listens there, ms pass,
 * or c exits.  Returns the socket or -1.
 */
static int
connect_retry(const struct child *c, int port, int ms)
{
	struct sockaddr_in sin;
	siginfo_t si;
	double deadline = tg_now() + ms / 1000.0;
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	while (tg_now() < deadline) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1)
			return (-1);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return (fd);
		close(fd);
		/* Exited (its port was taken): no point waiting. */
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) == 0 && si.si_pid == c->pid)
			return (-1);
		tg_sleep_ms(20);
	}
	return (-1);
}

/*
 * uktls (with helper h) as the client of `openssl s_server -WWW` serving a
 * file: TLS 1.3 NewSessionTickets arrive as handshake records (type 22,
 * first byte 4) before the response; then the HTTP header and the file,
 * byte for byte; then the server's close and end of stream.
 */
static void
t_sserver(const struct tg_suite *s, const void *arg)
{
	static const char hdr_end[] = "\r\n\r\n";
	char dir[] = "/tmp/uktls-sserver-XXXXXX";
	char path[3][128], portstr[16], *argv[24], req[64];
	const struct tp_cert *cert;
	struct child c;
	struct tp_stream body;
	struct tp_rx st;
	struct uk u;
	EVP_MD_CTX *md = NULL;
	static uint8_t buf[2 * TLS_MAX_MSG_SIZE_V10_2], want[sizeof(buf)];
	uint8_t *file = NULL, type, fsha[32], sha[32];
	uint64_t seed = tg_random64(), size = SMALL_STREAM;
	unsigned int len;
	size_t hlen = 0, k;
	ssize_t n;
	int i = 0, fd, port, err, fails0 = harness_cur_failed, have_dir = 0;
	int tries, nst = 0;
	enum helper h = ((const struct row *)arg)->helper;

	tg_watchdog(TEST_TIMEOUT_S);
	memset(&c, 0, sizeof(c));
	memset(&u, 0, sizeof(u));
	c.pid = -1;
	c.in = -1;
	u.fd = -1;
	path[0][0] = path[1][0] = path[2][0] = '\0';
	cert = tp_cert();
	FAILIF(cert == NULL, "certificate");
	FAILIF(mkdtemp(dir) == NULL, "mkdtemp: %s", strerror(errno));
	have_dir = 1;
	file = malloc((size_t)size);
	FAILIF(file == NULL, "malloc");
	tp_pat_fill(seed, 0, file, (size_t)size);
	EVP_Digest(file, (size_t)size, fsha, &len, EVP_sha256(), NULL);
	snprintf(path[0], sizeof(path[0]), "%s/cert.pem", dir);
	snprintf(path[1], sizeof(path[1]), "%s/key.pem", dir);
	snprintf(path[2], sizeof(path[2]), "%s/data.bin", dir);
	FAILIF(write_file(path[0], cert->cert_pem.data, cert->cert_pem.size) ||
	    write_file(path[1], cert->key_pem.data, cert->key_pem.size) ||
	    write_file(path[2], file, (size_t)size), "writing files: %s",
	    strerror(errno));
	argv[i++] = "openssl";
	argv[i++] = "s_server";
	argv[i++] = "-accept";
	argv[i++] = portstr;
	argv[i++] = "-cert";
	argv[i++] = path[0];
	argv[i++] = "-key";
	argv[i++] = path[1];
	argv[i++] = "-WWW";
	argv[i++] = "-naccept";
	argv[i++] = "1";
	argv[i++] = "-num_tickets";
	argv[i++] = "2";
	argv[i++] = tp_is_tls13(s) ? "-tls1_3" : "-tls1_2";
	argv[i++] = tp_is_tls13(s) ? "-ciphersuites" : "-cipher";
	argv[i++] = (char *)tp_ossl_suite(s);
	argv[i] = NULL;
	/*
	 * The port was free a moment ago; if another program took it,
	 * s_server exits at once and the next try takes another.
	 */
	fd = -1;
	for (tries = 0; tries < 3 && fd == -1; tries++) {
		port = free_port();
		FAILIF(port <= 0, "no free port");
		snprintf(portstr, sizeof(portstr), "%d", port);
		if (child_start(&c, argv, dir) != 0)
			goto out;
		fd = connect_retry(&c, port, WAIT_MS);
		if (fd == -1)
			(void)child_reap(&c, 0, 0);
	}
	FAILIF(fd == -1, "s_server does not listen");
	if (uk_start(&u, h, fd, 0, s) != 0)
		goto out;
	/* The request goes out through the library, after the enable. */
	snprintf(req, sizeof(req), "GET /data.bin HTTP/1.0\r\n\r\n");
	if (h == H_OPENSSL)
		FAILIF(SSL_write(u.ssl, req, (int)strlen(req)) !=
		    (int)strlen(req), "SSL_write: %s", tp_ossl_errstr());
	else
		FAILIF(gnutls_record_send(u.g.ses, req, strlen(req)) !=
		    (ssize_t)strlen(req), "gnutls_record_send");
	/*
	 * The header first, record by record until its end; what follows
	 * it in the same record is the start of the file.
	 */
	for (;;) {
		/* Room for a whole record: one read, one record. */
		FAILIF(sizeof(buf) - hlen < TLS_MAX_MSG_SIZE_V10_2,
		    "no end of the HTTP header");
		n = rx_one(u.fd, buf + hlen, sizeof(buf) - hlen, &type, &err);
		FAILIF(n <= 0, "before the response: %zd, errno %d (%s)", n,
		    err, strerror(err));
		if (type == TLS_RLTYPE_HANDSHAKE) {
			FAILIF(buf[hlen] != 4, "handshake record of type %u",
			    buf[hlen]);
			nst++;
			continue;
		}
		FAILIF(type != APP, "record of type %u", type);
		hlen += (size_t)n;
		for (k = 0; k + 4 <= hlen; k++)
			if (memcmp(buf + k, hdr_end, 4) == 0)
				break;
		if (k + 4 <= hlen)
			break;
	}
	FAILIF(strncmp((char *)buf, "HTTP/1.0 200", 12) != 0,
	    "response: %.40s", buf);
	CHECK_EQ(nst, tp_is_tls13(s) ? 2 : 0);
	/* The body bytes that came with the header, then the rest. */
	k += 4;
	tp_pat_fill(seed, 0, want, hlen - k);
	FAILIF(memcmp(buf + k, want, hlen - k) != 0, "start of the body");
	md = sha256_new();
	EVP_DigestUpdate(md, buf + k, hlen - k);
	body = (struct tp_stream){ .seed = seed, .start = hlen - k, .md = md,
	    .wait_ms = WAIT_MS, .stop_at_close_notify = 1 };
	if (tp_rx_stream(u.fd, &body, &st) != 0)
		goto out;
	EVP_DigestFinal_ex(md, sha, &len);
	TP_CHECK_CLEAN_END(&st, size - (hlen - k));
	CHECK(memcmp(sha, fsha, 32) == 0);
	CHECK_EQ(st.nst, 0);
	/*
	 * s_server waits for our close_notify before it closes (a second
	 * SSL_shutdown()): the application answers with its TLS library,
	 * whose sending side it still owns, then sees the end of stream.
	 */
	uk_send_close_notify(&u);
	TG_EXPECT_EOF(u.fd);
out:
	uk_end(&u);
	(void)child_reap(&c, 5000 * TG_TIME_MUL, harness_cur_failed != fails0);
	for (i = 0; i < 3; i++)
		if (path[i][0] != '\0')
			unlink(path[i]);
	if (have_dir)
		rmdir(dir);
	EVP_MD_CTX_free(md);
	free(file);
}

static const char *const sclient_stream_opts[] = { "-quiet", "-no_ign_eof",
    "-nocommands", NULL };

static const struct row rows[] = {
	{ .name = "sclient_openssl_big", .fn = t_stream, .prog = S_CLIENT,
	    .helper = H_OPENSSL, .total = BIG_STREAM,
	    .opts = sclient_stream_opts },
	{ .name = "gnutlscli_gnutls_big", .fn = t_stream, .prog = GNUTLS_CLI,
	    .helper = H_GNUTLS, .total = BIG_STREAM },
	{ .name = "sclient_gnutls", .fn = t_stream, .prog = S_CLIENT,
	    .helper = H_GNUTLS, .total = SMALL_STREAM * 4,
	    .opts = sclient_stream_opts },
	{ .name = "gnutlscli_openssl", .fn = t_stream, .prog = GNUTLS_CLI,
	    .helper = H_OPENSSL, .total = SMALL_STREAM * 4 },
	{ .name = "padding_openssl", .fn = t_padding, .tls13_only = 1,
	    .helper = H_OPENSSL },
	{ .name = "padding_gnutls", .fn = t_padding, .tls13_only = 1,
	    .helper = H_GNUTLS },
	{ .name = "close_notify", .fn = t_close_notify },
	{ .name = "key_update_sclient_openssl", .fn = t_key_update,
	    .tls13_only = 1, .prog = S_CLIENT, .helper = H_OPENSSL,
	    .ku_requested_too = 1 },
	{ .name = "key_update_sclient_gnutls", .fn = t_key_update,
	    .tls13_only = 1, .prog = S_CLIENT, .helper = H_GNUTLS,
	    .ku_requested_too = 1 },
	{ .name = "key_update_gnutlscli_gnutls", .fn = t_key_update,
	    .tls13_only = 1, .prog = GNUTLS_CLI, .helper = H_GNUTLS,
	    .ku_requested_too = 1 },
	{ .name = "key_update_gnutlscli_openssl", .fn = t_key_update,
	    .tls13_only = 1, .prog = GNUTLS_CLI, .helper = H_OPENSSL },
	{ .name = "key_update_sclient_linux", .fn = t_key_update,
	    .tls13_only = 1, .prog = S_CLIENT, .helper = H_LINUX,
	    .ku_requested_too = 1 },
	{ .name = "key_update_gnutlscli_linux", .fn = t_key_update,
	    .tls13_only = 1, .prog = GNUTLS_CLI, .helper = H_LINUX,
	    .ku_requested_too = 1 },
	{ .name = "key_update_sclient_openssl_linux", .fn = t_key_update,
	    .tls13_only = 1, .prog = S_CLIENT, .helper = H_OPENSSL_LINUX,
	    .ku_requested_too = 1 },
	{ .name = "key_update_gnutlscli_openssl_linux", .fn = t_key_update,
	    .tls13_only = 1, .prog = GNUTLS_CLI, .helper = H_OPENSSL_LINUX,
	    .ku_requested_too = 1 },
	{ .name = "key_update_sclient_gnutls_linux", .fn = t_key_update,
	    .tls13_only = 1, .prog = S_CLIENT, .helper = H_GNUTLS_LINUX,
	    .ku_requested_too = 1 },
	{ .name = "key_update_gnutlscli_gnutls_linux", .fn = t_key_update,
	    .tls13_only = 1, .prog = GNUTLS_CLI, .helper = H_GNUTLS_LINUX,
	    .ku_requested_too = 1 },
	{ .name = "cut_openssl", .fn = t_cut, .helper = H_OPENSSL },
	{ .name = "cut_gnutls", .fn = t_cut, .helper = H_GNUTLS },
	{ .name = "sserver_openssl", .fn = t_sserver, .helper = H_OPENSSL },
	{ .name = "sserver_gnutls", .fn = t_sserver, .helper = H_GNUTLS },
};

int
main(int argc, char **argv)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		tp_register(rows[i].name, rows[i].fn, &rows[i],
		    rows[i].tls13_only);
	return (harness_main(argc, argv));
}
