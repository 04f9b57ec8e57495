/*
 * uktls serve, and the TLS server behind it that uktls demo runs as well.
 *
 * One thread accepts; every connection gets a thread of its own that does
 * the handshake with OpenSSL, hands the receive side to uktls and then reads
 * one record per uktls_recvmsg() until the peer's close_notify.  A thread
 * per connection keeps each connection's logic a straight line; the
 * decryption itself runs on uktls's workers however many connections there
 * are, so the threads here only copy plaintext out.
 *
 * Where the plaintext goes (--out):
 *	-	stdout (the default), shared by all connections;
 *	DIR	an existing directory: connection N writes DIR/conn-N;
 *	FILE	connection 1 writes FILE, connection N > 1 writes FILE.N;
 *		if FILE exists and is not a regular file (/dev/null, a FIFO),
 *		every connection writes FILE itself.
 * Shared outputs get whole chunks of up to CONN_BUF bytes at a time, so
 * concurrent connections interleave there at chunk granularity.
 */
#include <arpa/inet.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "common.h"
#include "uktls.h"
#include "uktls/openssl.h"

/* Plaintext gathered before a write to the output. */
#define CONN_BUF (256 * 1024)
/* Room left for the next record: TLS plaintext is at most 2^14 bytes. */
#define REC_ROOM (TLS_MAX_MSG_SIZE_V10_2 + 256)
/* How long a peer may stall the handshake or our writes. */
#define HANDSHAKE_TIMEOUT_S 30
#define LISTEN_BACKLOG 128
/* How long to wait for a free ephemeral port (port 0). */
#define BIND_TRIES 50
#define BIND_RETRY_MS 100

/* TLS handshake message types that may follow the handshake. */
#define HS_HELLO_REQUEST 0
#define HS_CLIENT_HELLO 1
#define HS_NEW_SESSION_TICKET 4
#define HS_KEY_UPDATE 24

/* Alert levels and the descriptions handled by name. */
#define ALERT_WARNING 1
#define ALERT_CLOSE_NOTIFY 0
#define ALERT_USER_CANCELED 90

enum out_mode { OUT_NONE, OUT_SHARED, OUT_FILE, OUT_DIR };

struct conn {
	struct srv *srv;
	pthread_t thread;
	int fd;              /* -1 once closed (srv->lock) */
	int enabled;         /* RX handed to uktls (srv->lock) */
	int aborted;         /* srv_abort_conns() ended it (srv->lock) */
	int out_fd;
	int own_out;         /* out_fd is this connection's to close */
	SSL *ssl;
	EVP_MD_CTX *md;
	unsigned char *buf;  /* CONN_BUF bytes */
	size_t used;
	uint32_t hs_skip;    /* bytes of a handshake message in later records */
	struct conn_result res;
	struct conn *next;   /* on srv->active or srv->dead */
};

struct srv {
	struct srv_options opt;
	SSL_CTX *ctx;
	int lfd;
	int wake[2];         /* written to stop the acceptor */
	pthread_t acceptor;
	int acceptor_started;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct conn *active; /* connections running */
	struct conn *dead;   /* ended, thread still to join */
	unsigned long accepted, ended, failures;
	int stopping;
	int accept_done;     /* the acceptor has returned */
	_Atomic uint64_t bytes;
	enum out_mode out_mode;
	int out_fd;          /* OUT_SHARED: everyone's; OUT_FILE: conn 1's */
	int own_out_fd;
	pthread_mutex_t out_lock;
	char addr[INET6_ADDRSTRLEN + 8];
	unsigned int port;
	char cert_desc[256];
};

/* The AEAD suites uktls decrypts, by the names --ciphers takes. */
static const struct aead_suite {
	const char *name;
	const char *alias;
	int nid;
	const char *tls12; /* OpenSSL cipher list for TLS 1.2 */
	const char *tls13; /* OpenSSL ciphersuite for TLS 1.3 */
} aead_suites[] = {
	{ "aes128-gcm", "aes-128-gcm", NID_aes_128_gcm,
	  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
	  "TLS_AES_128_GCM_SHA256" },
	{ "aes256-gcm", "aes-256-gcm", NID_aes_256_gcm,
	  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
	  "TLS_AES_256_GCM_SHA384" },
	{ "chacha20-poly1305", "chacha20", NID_chacha20_poly1305,
	  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
	  "TLS_CHACHA20_POLY1305_SHA256" },
};
#define NAEAD (sizeof(aead_suites) / sizeof(aead_suites[0]))

const char *
aead_name(int nid)
{
	switch (nid) {
	case NID_aes_128_gcm:
		return "AES-128-GCM";
	case NID_aes_256_gcm:
		return "AES-256-GCM";
	case NID_chacha20_poly1305:
		return "CHACHA20-POLY1305";
	default:
		return "?";
	}
}

/* ---------------------------------------------------------------------- */
/* Setup.                                                                 */

/*
 * Publish the counters so that `uktls stat` sees this process, unless the
 * user said UKTLS_STATS=0.  The engine reads its settings once; if it is
 * already running in this process they stay as they are.
 */
static int
engine_setup(char *err, size_t errlen)
{
	struct uktls_config cfg;
	const char *env;
	int error;

	uktls_config_defaults(&cfg);
	env = getenv("UKTLS_STATS");
	if (env == NULL || *env == '\0')
		cfg.publish_stats = 1;
	error = uktls_configure(&cfg);
	if (error == EBUSY)
		error = 0;
	if (error != 0) {
		snprintf(err, errlen, "configuring uktls: %s", strerror(error));
		return error;
	}
	/* Running, and seen by `uktls stat`, before the first connection. */
	error = uktls_start();
	if (error != 0)
		snprintf(err, errlen, "starting uktls: %s", strerror(error));
	return error;
}

/* Turn --ciphers into OpenSSL's TLS 1.2 and TLS 1.3 lists. */
static int
cipher_lists(const char *spec, char *l12, size_t l12len, char *l13,
    size_t l13len, char *err, size_t errlen)
{
	char tmp[256], *tok, *save;
	size_t i;
	int chosen[NAEAD] = { 0 }, any = 0;

	if (spec == NULL) {
		for (i = 0; i < NAEAD; i++)
			chosen[i] = 1;
	} else {
		if (strlen(spec) >= sizeof(tmp)) {
			snprintf(err, errlen, "--ciphers: list too long");
			return EINVAL;
		}
		strcpy(tmp, spec);
		for (tok = strtok_r(tmp, ",: ", &save); tok != NULL;
		    tok = strtok_r(NULL, ",: ", &save)) {
			for (i = 0; i < NAEAD; i++)
				if (strcasecmp(tok, aead_suites[i].name) == 0 ||
				    strcasecmp(tok, aead_suites[i].alias) == 0)
					break;
			if (i == NAEAD) {
				snprintf(err, errlen, "--ciphers: unknown "
				    "cipher '%s' (aes128-gcm, aes256-gcm, "
				    "chacha20-poly1305)", tok);
				return EINVAL;
			}
			chosen[i] = 1;
		}
	}
	l12[0] = l13[0] = '\0';
	for (i = 0; i < NAEAD; i++) {
		if (!chosen[i])
			continue;
		if (any) {
			strncat(l12, ":", l12len - strlen(l12) - 1);
			strncat(l13, ":", l13len - strlen(l13) - 1);
		}
		strncat(l12, aead_suites[i].tls12, l12len - strlen(l12) - 1);
		strncat(l13, aead_suites[i].tls13, l13len - strlen(l13) - 1);
		any = 1;
	}
	if (!any) {
		snprintf(err, errlen, "--ciphers: no cipher named");
		return EINVAL;
	}
	return 0;
}

static int
tls_setup(struct srv *s, char *err, size_t errlen)
{
	char l12[512], l13[256], why[160];
	int v = s->opt.version, error;

	error = cipher_lists(s->opt.ciphers, l12, sizeof(l12), l13, sizeof(l13),
	    err, errlen);
	if (error != 0)
		return error;
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (s->ctx == NULL) {
		ssl_errstr(why, sizeof(why));
		snprintf(err, errlen, "SSL_CTX_new: %s", why);
		return ENOMEM;
	}
	/*
	 * uktls receives TLS 1.2 and 1.3 AEAD records only, and cannot follow
	 * a renegotiation (new keys on the receive side), so none of those
	 * is ever negotiated.
	 */
	if (SSL_CTX_set_min_proto_version(s->ctx, v != 0 ? v :
	    TLS1_2_VERSION) != 1 || SSL_CTX_set_max_proto_version(s->ctx,
	    v != 0 ? v : TLS1_3_VERSION) != 1) {
		ssl_errstr(why, sizeof(why));
		snprintf(err, errlen, "setting the TLS version: %s", why);
		return EINVAL;
	}
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	/* A version with none of its suites left is fine while the other
	 * still has some; OpenSSL refuses only an empty result. */
	if (SSL_CTX_set_cipher_list(s->ctx, l12) != 1 && v != TLS1_3_VERSION) {
		ssl_errstr(why, sizeof(why));
		snprintf(err, errlen, "TLS 1.2 ciphers %s: %s", l12, why);
		return EINVAL;
	}
	ERR_clear_error();
	if (SSL_CTX_set_ciphersuites(s->ctx, l13) != 1 &&
	    v != TLS1_2_VERSION) {
		ssl_errstr(why, sizeof(why));
		snprintf(err, errlen, "TLS 1.3 ciphersuites %s: %s", l13, why);
		return EINVAL;
	}
	ERR_clear_error();
	return cert_setup(s->ctx, s->opt.cert_file, s->opt.key_file,
	    s->cert_desc, sizeof(s->cert_desc), err, errlen);
}

/* Split "ADDR:PORT", "[ADDR6]:PORT" or "PORT" into host and port. */
static int
split_listen(const char *spec, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *colon, *end;
	size_t n;

	if (strchr(spec, ':') == NULL) {
		snprintf(host, hostlen, "127.0.0.1");
		n = (size_t)snprintf(port, portlen, "%s", spec);
		return n < portlen && *spec != '\0' ? 0 : EINVAL;
	}
	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (end == NULL || end[1] != ':')
			return EINVAL;
		n = (size_t)(end - spec - 1);
		colon = end + 1;
		spec++;
	} else {
		colon = strrchr(spec, ':');
		n = (size_t)(colon - spec);
	}
	if (n >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0')
		return EINVAL;
	memcpy(host, spec, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static void
format_addr(const struct sockaddr *sa, char *buf, size_t len,
    unsigned int *portp)
{
	char a[INET6_ADDRSTRLEN];
	unsigned int port = 0;

	a[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		port = ntohs(sin->sin_port);
		snprintf(buf, len, "%s:%u", a, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		port = ntohs(sin6->sin6_port);
		snprintf(buf, len, "[%s]:%u", a, port);
	} else {
		snprintf(buf, len, "?");
	}
	if (portp != NULL)
		*portp = port;
}

static int
listen_setup(struct srv *s, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[32];
	const char *spec = s->opt.listen != NULL ? s->opt.listen :
	    "127.0.0.1:0";
	int error, one = 1, fd = -1, tries;

	if (split_listen(spec, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen, "--listen %s: want ADDR:PORT", spec);
		return EINVAL;
	}
	/* getaddrinfo takes any number and keeps its low 16 bits. */
	if (port[strspn(port, "0123456789")] != '\0' ||
	    strtoul(port, NULL, 10) > 65535 || strlen(port) > 5) {
		snprintf(err, errlen, "--listen %s: the port must be a number "
		    "from 0 to 65535", spec);
		return EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	/* "*" or an empty host means every address. */
	error = getaddrinfo(host[0] == '\0' || strcmp(host, "*") == 0 ? NULL :
	    host, port, &hints, &res);
	if (error != 0) {
		snprintf(err, errlen, "--listen %s: %s", spec,
		    gai_strerror(error));
		return EINVAL;
	}
	error = EADDRNOTAVAIL;
	for (tries = 0; fd < 0 && tries < BIND_TRIES; tries++) {
		/*
		 * Port 0 asks for any free port; when a burst of closed
		 * connections has every ephemeral port in TIME_WAIT there is
		 * none for a moment, so wait for one rather than give up.
		 */
		if (tries > 0) {
			if (error != EADDRINUSE || strcmp(port, "0") != 0)
				break;
			usleep(BIND_RETRY_MS * 1000);
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype |
			    SOCK_CLOEXEC, ai->ai_protocol);
			if (fd < 0) {
				error = errno;
				continue;
			}
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			    sizeof(one));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
			    listen(fd, LISTEN_BACKLOG) == 0)
				break;
			error = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "--listen %s: %s", spec, strerror(error));
		return error;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		error = errno;
		close(fd);
		snprintf(err, errlen, "getsockname: %s", strerror(error));
		return error;
	}
	format_addr((struct sockaddr *)&ss, s->addr, sizeof(s->addr),
	    &s->port);
	s->lfd = fd;
	return 0;
}

static int
out_setup(struct srv *s, char *err, size_t errlen)
{
	struct stat st;
	const char *out = s->opt.out;

	if (out == NULL) {
		s->out_mode = OUT_NONE;
		return 0;
	}
	if (strcmp(out, "-") == 0) {
		s->out_mode = OUT_SHARED;
		s->out_fd = STDOUT_FILENO;
		return 0;
	}
	if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* Each connection makes its file there: find out now
		 * whether one can be made (permissions alone do not say,
		 * on a read-only or special file system). */
		char probe[PATH_MAX];
		int pfd, e;

		if (snprintf(probe, sizeof(probe), "%s/.uktls-probe-XXXXXX",
		    out) >= (int)sizeof(probe)) {
			snprintf(err, errlen, "--out %s: path too long", out);
			return ENAMETOOLONG;
		}
		pfd = mkstemp(probe);
		if (pfd < 0) {
			e = errno;
			snprintf(err, errlen, "--out %s: %s", out, strerror(e));
			return e;
		}
		close(pfd);
		unlink(probe);
		s->out_mode = OUT_DIR;
		return 0;
	}
	s->out_mode = stat(out, &st) == 0 && !S_ISREG(st.st_mode) ?
	    OUT_SHARED : OUT_FILE;
	/* Open the first (or only) file now, so that a path that cannot be
	 * written is reported before anyone connects. */
	s->out_fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC |
	    (s->out_mode == OUT_FILE ? O_TRUNC : 0), 0644);
	if (s->out_fd < 0) {
		snprintf(err, errlen, "--out %s: %s", out, strerror(errno));
		return errno;
	}
	s->own_out_fd = 1;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* One connection.                                                        */

static void conn_fail(struct conn *c, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record why the connection ends; the first reason is the one kept. */
static void
conn_fail(struct conn *c, int error, const char *fmt, ...)
{
	va_list ap;

	if (c->res.error != 0)
		return;
	c->res.error = error != 0 ? error : EPROTO;
	va_start(ap, fmt);
	vsnprintf(c->res.errmsg, sizeof(c->res.errmsg), fmt, ap);
	va_end(ap);
}

static int
conn_aborted(struct conn *c)
{
	int a;

	pthread_mutex_lock(&c->srv->lock);
	a = c->aborted;
	pthread_mutex_unlock(&c->srv->lock);
	return a;
}

static void
set_timeout(int fd, int opt, unsigned int seconds)
{
	struct timeval tv;

	tv.tv_sec = seconds;
	tv.tv_usec = 0;
	/* Through uktls: once RX is enabled its reads keep their own copy. */
	uktls_setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static int
conn_flush(struct conn *c)
{
	struct srv *s = c->srv;
	int error;

	if (c->used == 0)
		return 0;
	if (c->out_fd < 0) {
		c->used = 0;
		return 0;
	}
	if (!c->own_out)
		pthread_mutex_lock(&s->out_lock);
	error = write_all(c->out_fd, c->buf, c->used);
	if (!c->own_out)
		pthread_mutex_unlock(&s->out_lock);
	c->used = 0;
	if (error != 0)
		conn_fail(c, error, "writing %s: %s", c->res.out[0] != '\0' ?
		    c->res.out : "the output", strerror(error));
	return error;
}

static int
conn_out_open(struct conn *c)
{
	struct srv *s = c->srv;
	int n;

	c->out_fd = -1;
	switch (s->out_mode) {
	case OUT_NONE:
		return 0;
	case OUT_SHARED:
		c->out_fd = s->out_fd;
		snprintf(c->res.out, sizeof(c->res.out), "%s",
		    strcmp(s->opt.out, "-") == 0 ? "stdout" : s->opt.out);
		return 0;
	case OUT_FILE:
		if (c->res.id == 1) {
			pthread_mutex_lock(&s->lock);
			c->out_fd = s->out_fd;
			s->out_fd = -1;
			pthread_mutex_unlock(&s->lock);
			c->own_out = 1;
			snprintf(c->res.out, sizeof(c->res.out), "%s",
			    s->opt.out);
			return 0;
		}
		n = snprintf(c->res.out, sizeof(c->res.out), "%s.%lu",
		    s->opt.out, c->res.id);
		break;
	case OUT_DIR:
		n = snprintf(c->res.out, sizeof(c->res.out), "%s/conn-%lu",
		    s->opt.out, c->res.id);
		break;
	default:
		return EINVAL;
	}
	if (n < 0 || (size_t)n >= sizeof(c->res.out)) {
		conn_fail(c, ENAMETOOLONG, "output path too long");
		return ENAMETOOLONG;
	}
	c->out_fd = open(c->res.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (c->out_fd < 0) {
		conn_fail(c, errno, "%s: %s", c->res.out, strerror(errno));
		return errno;
	}
	c->own_out = 1;
	return 0;
}

/* Returns 1 when the connection is over. */
static int
conn_alert(struct conn *c, const unsigned char *p, ssize_t n)
{
	if (n != 2) {
		conn_fail(c, EPROTO, "malformed alert record (%zd bytes)", n);
		return 1;
	}
	if (p[1] == ALERT_CLOSE_NOTIFY) {
		c->res.clean = 1;
		return 1;
	}
	/* user_canceled is a warning that a close_notify follows. */
	if (p[0] == ALERT_WARNING && p[1] == ALERT_USER_CANCELED)
		return 0;
	conn_fail(c, ECONNABORTED, "peer sent %s alert %s (%u)",
	    p[0] == ALERT_WARNING ? "warning" : "fatal",
	    SSL_alert_desc_string_long(p[1]), p[1]);
	return 1;
}

/*
 * Handshake messages after the hand-off.  A message may continue in later
 * records; hs_skip counts its bytes still to come.  Returns 1 when the
 * connection is over.
 */
static int
conn_handshake(struct conn *c, const unsigned char *p, size_t n)
{
	uint32_t len, k;
	unsigned int type;

	c->res.hs_records++;
	while (n > 0) {
		if (c->hs_skip > 0) {
			k = c->hs_skip < n ? c->hs_skip : (uint32_t)n;
			c->hs_skip -= k;
			p += k;
			n -= k;
			continue;
		}
		if (n < 4) {
			conn_fail(c, EPROTO, "handshake message header split "
			    "across records");
			return 1;
		}
		type = p[0];
		len = (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		p += 4;
		n -= 4;
		switch (type) {
		case HS_NEW_SESSION_TICKET:
			c->res.tickets++;
			break;
		case HS_KEY_UPDATE:
			conn_fail(c, ENOTSUP, "peer sent KeyUpdate: serve "
			    "enables RX with FreeBSD's interface, which cannot "
			    "change the receive key, so the connection cannot "
			    "go on");
			return 1;
		case HS_CLIENT_HELLO:
		case HS_HELLO_REQUEST:
			conn_fail(c, ENOTSUP, "peer tried to renegotiate, "
			    "which uktls cannot follow");
			return 1;
		default:
			conn_fail(c, EPROTO, "unexpected handshake message %u "
			    "after the handshake", type);
			return 1;
		}
		k = len < n ? len : (uint32_t)n;
		c->hs_skip = len - k;
		p += k;
		n -= k;
	}
	return 0;
}

static void
conn_read_error(struct conn *c, int error)
{
	switch (error) {
	case EAGAIN:
		conn_fail(c, ETIMEDOUT, "nothing received for %u s "
		    "(--idle-timeout)", c->srv->opt.idle_timeout);
		break;
	case EBADMSG:
		conn_fail(c, error, "a record failed authentication (EBADMSG)");
		break;
	case EMSGSIZE:
		conn_fail(c, error, "bad record length, or the stream ended "
		    "inside a record (EMSGSIZE)");
		break;
	case EINVAL:
		conn_fail(c, error, "bad record header (EINVAL)");
		break;
	case ENOBUFS:
		conn_fail(c, error, "uktls ran out of buffers (ENOBUFS)");
		break;
	case EBADF:
		conn_fail(c, error, "interrupted");
		break;
	case ECONNRESET:
		/*
		 * A peer killed with unread data (a session ticket it had
		 * not read yet) resets rather than closes: that too is an
		 * end without close_notify.
		 */
		conn_fail(c, error, "connection reset by peer without "
		    "close_notify (the data may be truncated)");
		break;
	default:
		conn_fail(c, error, "uktls_recvmsg: %s", strerror(error));
		break;
	}
}

/* Read records until the connection ends. */
static void
conn_read(struct conn *c)
{
	union {
		struct cmsghdr hdr;
		unsigned char buf[CMSG_SPACE(sizeof(struct tls_get_record))];
	} ctl;
	struct tls_get_record tgr;
	struct cmsghdr *cm;
	struct msghdr msg;
	struct iovec iov;
	unsigned char *p;
	ssize_t n;
	int found, error;

	for (;;) {
		if (CONN_BUF - c->used < REC_ROOM && conn_flush(c) != 0)
			return;
		p = c->buf + c->used;
		iov.iov_base = p;
		iov.iov_len = CONN_BUF - c->used;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		/*
		 * Plaintext waiting in the buffer is written out as soon as
		 * no further record is ready, so that a slow or interactive
		 * peer's data is not held back until the buffer fills.
		 */
		n = uktls_recvmsg(c->fd, &msg, c->used > 0 ? MSG_DONTWAIT : 0);
		if (n < 0 && errno == EAGAIN && c->used > 0) {
			if (conn_flush(c) != 0)
				return;
			continue;
		}
		if (n < 0) {
			error = errno;
			if (error == EINTR)
				continue;
			if (conn_aborted(c))
				conn_fail(c, EINTR, "interrupted");
			conn_read_error(c, error);
			return;
		}
		found = 0;
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL;
		    cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level == IPPROTO_TCP &&
			    cm->cmsg_type == TLS_GET_RECORD &&
			    cm->cmsg_len >= CMSG_LEN(sizeof(tgr))) {
				memcpy(&tgr, CMSG_DATA(cm), sizeof(tgr));
				found = 1;
				break;
			}
		}
		if (n == 0 && !found) {
			if (conn_aborted(c))
				conn_fail(c, EINTR, "interrupted");
			conn_fail(c, ECONNRESET, "peer closed the connection "
			    "without close_notify (the data may be truncated)");
			return;
		}
		if (!found) {
			conn_fail(c, EPROTO, "record without a TLS_GET_RECORD "
			    "control message");
			return;
		}
		if ((msg.msg_flags & MSG_EOR) == 0) {
			conn_fail(c, EMSGSIZE, "record larger than %zu bytes",
			    iov.iov_len);
			return;
		}
		switch (tgr.tls_type) {
		case TLS_RLTYPE_APP:
			c->used += (size_t)n;
			c->res.records++;
			c->res.bytes += (uint64_t)n;
			atomic_fetch_add_explicit(&c->srv->bytes, (uint64_t)n,
			    memory_order_relaxed);
			if (c->md != NULL && EVP_DigestUpdate(c->md, p,
			    (size_t)n) != 1) {
				conn_fail(c, EIO, "SHA-256 failed");
				return;
			}
			break;
		case TLS_RLTYPE_ALERT:
			if (conn_alert(c, p, n))
				return;
			break;
		case TLS_RLTYPE_HANDSHAKE:
			if (conn_handshake(c, p, (size_t)n))
				return;
			break;
		default:
			conn_fail(c, EPROTO, "unexpected record of type %u",
			    tgr.tls_type);
			return;
		}
	}
}

static void
conn_handshake_error(struct conn *c, int r, int saved_errno)
{
	char why[160];

	/* srv_abort_conns() shut the socket down under OpenSSL's feet. */
	if (conn_aborted(c)) {
		conn_fail(c, EINTR, "interrupted");
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_SYSCALL:
		if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
			conn_fail(c, ETIMEDOUT, "handshake timed out after "
			    "%d s", HANDSHAKE_TIMEOUT_S);
		else if (saved_errno == 0)
			conn_fail(c, ECONNRESET, "peer closed the connection "
			    "during the handshake");
		else
			conn_fail(c, saved_errno, "handshake: %s",
			    strerror(saved_errno));
		break;
	case SSL_ERROR_ZERO_RETURN:
		conn_fail(c, ECONNRESET, "peer closed the connection during "
		    "the handshake");
		break;
	default:
		ssl_errstr(why, sizeof(why));
		conn_fail(c, EPROTO, "handshake failed: %s", why);
		break;
	}
}

/* The handshake, the hand-off and the records. */
static void
conn_run(struct conn *c)
{
	struct srv *s = c->srv;
	const SSL_CIPHER *cipher;
	double t0;
	int r, error, saved;

	set_timeout(c->fd, SO_RCVTIMEO, HANDSHAKE_TIMEOUT_S);
	set_timeout(c->fd, SO_SNDTIMEO, HANDSHAKE_TIMEOUT_S);
	c->ssl = SSL_new(s->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_fail(c, ENOMEM, "SSL_new failed");
		return;
	}
	error = uktls_openssl_prepare(c->ssl);
	if (error != 0) {
		conn_fail(c, error, "uktls_openssl_prepare: %s",
		    strerror(error));
		return;
	}
	ERR_clear_error();
	errno = 0;
	r = SSL_accept(c->ssl);
	saved = errno;
	if (r != 1) {
		conn_handshake_error(c, r, saved);
		return;
	}
	snprintf(c->res.version, sizeof(c->res.version), "%s",
	    SSL_get_version(c->ssl));
	cipher = SSL_get_current_cipher(c->ssl);
	if (cipher != NULL) {
		snprintf(c->res.suite, sizeof(c->res.suite), "%s",
		    SSL_CIPHER_get_name(cipher));
		snprintf(c->res.aead, sizeof(c->res.aead), "%s",
		    aead_name(SSL_CIPHER_get_cipher_nid(cipher)));
	}
	error = uktls_openssl_enable_rx(c->ssl);
	if (error != 0) {
		conn_fail(c, error, "handing the connection to uktls: %s",
		    strerror(error));
		return;
	}
	pthread_mutex_lock(&s->lock);
	c->enabled = 1;
	/* An abort that came during the hand-off shut down the socket but
	 * not yet uktls's side of it. */
	if (c->aborted)
		uktls_shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
	set_timeout(c->fd, SO_RCVTIMEO, s->opt.idle_timeout);
	if (conn_out_open(c) != 0)
		return;
	t0 = now_s();
	conn_read(c);
	conn_flush(c);
	c->res.seconds = now_s() - t0;
	/* Answer the peer's close_notify with ours, as TLS asks. */
	if (c->res.clean)
		SSL_shutdown(c->ssl);
}

/* "conn 3 peer=... version=... ... ok" on stderr, in one write. */
static void
conn_report(const struct conn_result *r)
{
	char line[1024], hex[65];
	size_t off = 0, i, n;
	double mbs;

	mbs = r->seconds > 0 ? (double)r->bytes / 1e6 / r->seconds : 0;
	off += (size_t)snprintf(line + off, sizeof(line) - off,
	    "conn %lu peer=%s version=%s suite=%s records=%llu bytes=%llu "
	    "seconds=%.3f MB/s=%.1f", r->id, r->peer, r->version, r->suite,
	    (unsigned long long)r->records, (unsigned long long)r->bytes,
	    r->seconds, mbs);
	if (r->hs_records > 0 && off < sizeof(line))
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    " handshake_records=%llu tickets=%llu",
		    (unsigned long long)r->hs_records,
		    (unsigned long long)r->tickets);
	if (r->hashed && off < sizeof(line)) {
		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", r->sha256[i]);
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    " sha256=%s", hex);
	}
	if (r->out[0] != '\0' && off < sizeof(line))
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    " out=%s", r->out);
	if (off < sizeof(line)) {
		if (r->error == 0)
			snprintf(line + off, sizeof(line) - off, " ok\n");
		else
			snprintf(line + off, sizeof(line) - off,
			    " error=\"%s\"\n", r->errmsg);
	}
	/* A line cut short still ends with its newline. */
	n = strlen(line);
	if (n == 0 || line[n - 1] != '\n') {
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	flockfile(stderr);
	fputs(line, stderr);
	funlockfile(stderr);
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->srv;
	struct conn **pp;
	unsigned int mdlen;
	int fd;

	c->buf = malloc(CONN_BUF);
	if (c->buf == NULL) {
		conn_fail(c, ENOMEM, "out of memory");
		goto done;
	}
	if (s->opt.hash) {
		c->md = EVP_MD_CTX_new();
		if (c->md == NULL || EVP_DigestInit_ex(c->md, EVP_sha256(),
		    NULL) != 1) {
			conn_fail(c, ENOMEM, "SHA-256 setup failed");
			goto done;
		}
	}
	conn_run(c);
done:
	if (c->md != NULL && c->res.error == 0) {
		mdlen = sizeof(c->res.sha256);
		if (EVP_DigestFinal_ex(c->md, c->res.sha256, &mdlen) == 1)
			c->res.hashed = 1;
	}
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
	SSL_free(c->ssl);
	c->ssl = NULL;
	pthread_mutex_lock(&s->lock);
	fd = c->fd;
	c->fd = -1;
	pthread_mutex_unlock(&s->lock);
	uktls_close(fd);
	if (c->own_out && c->out_fd >= 0 && close(c->out_fd) != 0)
		conn_fail(c, errno, "closing %s: %s", c->res.out,
		    strerror(errno));
	free(c->buf);
	c->buf = NULL;
	if (!s->opt.quiet)
		conn_report(&c->res);
	if (s->opt.done != NULL)
		s->opt.done(&c->res, s->opt.done_arg);
	pthread_mutex_lock(&s->lock);
	for (pp = &s->active; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->next = s->dead;
	s->dead = c;
	s->ended++;
	if (c->res.error != 0)
		s->failures++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Join the threads of connections that ended.  Called unlocked. */
static void
srv_reap(struct srv *s)
{
	struct conn *c, *next;

	pthread_mutex_lock(&s->lock);
	c = s->dead;
	s->dead = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; c != NULL; c = next) {
		next = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

static void
srv_accept_one(struct srv *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn *c;
	int fd, error;

	fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of descriptors: wait for connections to end rather
		 * than spin on the pending one. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			usleep(100 * 1000);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	c->out_fd = -1;
	format_addr((struct sockaddr *)&ss, c->res.peer, sizeof(c->res.peer),
	    NULL);
	snprintf(c->res.version, sizeof(c->res.version), "-");
	snprintf(c->res.suite, sizeof(c->res.suite), "-");
	snprintf(c->res.aead, sizeof(c->res.aead), "-");
	pthread_mutex_lock(&s->lock);
	c->res.id = ++s->accepted;
	c->next = s->active;
	s->active = c;
	error = pthread_create(&c->thread, NULL, conn_main, c);
	if (error != 0) {
		s->active = c->next;
		s->ended++;
		s->failures++;
	}
	pthread_mutex_unlock(&s->lock);
	if (error != 0) {
		warnx("connection from %s: no thread: %s", c->res.peer,
		    strerror(error));
		close(fd);
		free(c);
	}
}

static void *
acceptor_main(void *arg)
{
	struct srv *s = arg;
	struct pollfd pfd[2];
	int stop;

	for (;;) {
		srv_reap(s);
		pthread_mutex_lock(&s->lock);
		stop = s->stopping || (s->opt.max_conns != 0 &&
		    s->accepted >= s->opt.max_conns);
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		pfd[0].fd = s->lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = s->wake[0];
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			warn("poll");
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if (pfd[0].revents != 0)
			srv_accept_one(s);
	}
	/* No more connections: let the next connect be refused rather than
	 * wait in the backlog. */
	close(s->lfd);
	pthread_mutex_lock(&s->lock);
	s->lfd = -1;
	s->accept_done = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* The server's interface.                                                */

int
srv_start(const struct srv_options *opt, struct srv **srvp, char *err,
    size_t errlen)
{
	struct srv *s;
	int error;

	*srvp = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	s->opt = *opt;
	s->lfd = s->out_fd = -1;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->out_lock, NULL);
	pthread_cond_init(&s->cv, NULL);
	atomic_init(&s->bytes, 0);
	if ((error = engine_setup(err, errlen)) != 0 ||
	    (error = out_setup(s, err, errlen)) != 0 ||
	    (error = tls_setup(s, err, errlen)) != 0 ||
	    (error = listen_setup(s, err, errlen)) != 0)
		goto out;
	if (pipe2(s->wake, O_CLOEXEC) != 0) {
		error = errno;
		snprintf(err, errlen, "pipe: %s", strerror(error));
		goto out;
	}
	error = pthread_create(&s->acceptor, NULL, acceptor_main, s);
	if (error != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(error));
		goto out;
	}
	s->acceptor_started = 1;
	*srvp = s;
out:
	if (error != 0)
		srv_destroy(s);
	return error;
}

const char *
srv_address(const struct srv *s)
{
	return s->addr;
}

unsigned int
srv_port(const struct srv *s)
{
	return s->port;
}

const char *
srv_cert_desc(const struct srv *s)
{
	return s->cert_desc;
}

uint64_t
srv_bytes(struct srv *s)
{
	return atomic_load_explicit(&s->bytes, memory_order_relaxed);
}

int
srv_finished(struct srv *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = s->accept_done && s->active == NULL;
	pthread_mutex_unlock(&s->lock);
	return r;
}

unsigned int
srv_active(struct srv *s)
{
	struct conn *c;
	unsigned int n = 0;

	pthread_mutex_lock(&s->lock);
	for (c = s->active; c != NULL; c = c->next)
		n++;
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned long
srv_failures(struct srv *s)
{
	unsigned long n;

	pthread_mutex_lock(&s->lock);
	n = s->failures;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
srv_abort_conns(struct srv *s)
{
	struct conn *c;

	pthread_mutex_lock(&s->lock);
	for (c = s->active; c != NULL; c = c->next) {
		c->aborted = 1;
		if (c->fd < 0)
			continue;
		/* Wakes a reader blocked in uktls_recvmsg, or a handshake
		 * blocked in OpenSSL. */
		if (c->enabled)
			uktls_shutdown(c->fd, SHUT_RDWR);
		else
			shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&s->lock);
}

unsigned long
srv_destroy(struct srv *s)
{
	unsigned long failures;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_mutex_unlock(&s->lock);
	if (s->acceptor_started) {
		if (write(s->wake[1], "x", 1) < 0)
			warn("waking the acceptor");
		pthread_join(s->acceptor, NULL);
	}
	srv_abort_conns(s);
	pthread_mutex_lock(&s->lock);
	while (s->active != NULL)
		pthread_cond_wait(&s->cv, &s->lock);
	pthread_mutex_unlock(&s->lock);
	srv_reap(s);
	failures = s->failures;
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	if (s->own_out_fd && s->out_fd >= 0)
		close(s->out_fd);
	SSL_CTX_free(s->ctx);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->out_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return failures;
}

/* ---------------------------------------------------------------------- */
/* uktls serve                                                            */

static const char serve_usage[] =
"usage: uktls serve [--listen ADDR:PORT] [--cert FILE --key FILE]\n"
"                   [--out FILE|DIR|-] [--tls1.2 | --tls1.3] [--ciphers LIST]\n"
"                   [--max-conns N] [--idle-timeout SECONDS] [--sha256]\n"
"                   [--quiet]\n"
"\n"
"A TLS server whose receive side runs on uktls: OpenSSL does the handshake,\n"
"then uktls decrypts the records and the plaintext is written out.\n"
"\n"
"  -l, --listen ADDR:PORT  address to listen on (default 127.0.0.1:0; port 0\n"
"                          picks a free one; [ADDR6]:PORT for IPv6, *:PORT\n"
"                          for all addresses).  Printed on stderr as\n"
"                          \"listening on ADDR:PORT\".\n"
"      --cert FILE         certificate chain (PEM); with --key.  Without them\n"
"                          an ephemeral self-signed EC P-256 certificate for\n"
"                          CN=localhost is made in memory.\n"
"      --key FILE          private key (PEM) of --cert.\n"
"  -o, --out PATH          where application data goes: - for stdout (the\n"
"                          default); an existing directory DIR: connection N\n"
"                          writes DIR/conn-N; a FILE: connection 1 writes\n"
"                          FILE, connection N>1 writes FILE.N; a FILE that is\n"
"                          not a regular file (/dev/null, a FIFO) gets every\n"
"                          connection's data.\n"
"      --tls1.2, --tls1.3  accept only this version (default both).\n"
"      --ciphers LIST      comma-separated among aes128-gcm, aes256-gcm,\n"
"                          chacha20-poly1305 (default all three, the AEAD\n"
"                          suites uktls decrypts).\n"
"  -n, --max-conns N       exit once N connections have been accepted and\n"
"                          have ended (default: serve until SIGINT/SIGTERM).\n"
"      --idle-timeout S    end a connection that sends nothing for S seconds\n"
"                          (default: wait forever).\n"
"      --sha256            add the SHA-256 of each connection's data to its\n"
"                          line.\n"
"  -q, --quiet             no per-connection lines.\n"
"\n"
"Each connection ends with one line on stderr (wrapped here):\n"
"  conn N peer=ADDR:PORT version=TLSv1.3 suite=TLS_AES_128_GCM_SHA256\n"
"    records=N bytes=N seconds=S MB/s=R [sha256=HEX] [out=PATH] ok\n"
"with error=\"why\" in place of ok when it failed.  "
"A close_notify alert\n"
"ends a connection cleanly; any other alert, a KeyUpdate (uktls cannot\n"
"rekey), a renegotiation or an end of stream or reset without close_notify\n"
"ends it with an error.\n"
"\n"
"The engine's counters are published for `uktls stat` (UKTLS_STATS=0 turns\n"
"that off); UKTLS_WORKERS, UKTLS_INPUT_THREADS and the other UKTLS_*\n"
"variables tune the engine.\n"
"Exit status: 0 if every connection ended cleanly, 1 otherwise.\n";

enum {
	OPT_CERT = 256, OPT_KEY, OPT_TLS12, OPT_TLS13, OPT_CIPHERS,
	OPT_IDLE, OPT_SHA256
};

static const struct option serve_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "out", required_argument, NULL, 'o' },
	{ "tls1.2", no_argument, NULL, OPT_TLS12 },
	{ "tls1.3", no_argument, NULL, OPT_TLS13 },
	{ "ciphers", required_argument, NULL, OPT_CIPHERS },
	{ "max-conns", required_argument, NULL, 'n' },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "sha256", no_argument, NULL, OPT_SHA256 },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int serve_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
serve_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uktls serve: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", serve_usage);
	return EXIT_USAGE;
}

int
cmd_serve(int argc, char **argv)
{
	struct srv_options opt;
	struct srv *s = NULL;
	struct timespec tick = { 0, 200 * 1000 * 1000 };
	sigset_t sigs;
	uint64_t v;
	char err[512];
	unsigned long failures;
	int ch, sig;

	memset(&opt, 0, sizeof(opt));
	opt.out = "-";
	optind = 0;
	while ((ch = getopt_long(argc, argv, "l:o:n:qh", serve_options,
	    NULL)) != -1) {
		switch (ch) {
		case 'l':
			opt.listen = optarg;
			break;
		case OPT_CERT:
			opt.cert_file = optarg;
			break;
		case OPT_KEY:
			opt.key_file = optarg;
			break;
		case 'o':
			opt.out = optarg;
			break;
		case OPT_TLS12:
		case OPT_TLS13:
			if (opt.version != 0)
				return serve_usage_error("%s",
				    "--tls1.2 and --tls1.3 exclude each other");
			opt.version = ch == OPT_TLS12 ? TLS1_2_VERSION :
			    TLS1_3_VERSION;
			break;
		case OPT_CIPHERS:
			opt.ciphers = optarg;
			break;
		case 'n':
			if (parse_size(optarg, 0, 1UL << 31, &v) != 0)
				return serve_usage_error("bad --max-conns %s",
				    optarg);
			opt.max_conns = (unsigned long)v;
			break;
		case OPT_IDLE:
			if (parse_size(optarg, 0, 1U << 30, &v) != 0)
				return serve_usage_error(
				    "bad --idle-timeout %s", optarg);
			opt.idle_timeout = (unsigned int)v;
			break;
		case OPT_SHA256:
			opt.hash = 1;
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'h':
			fputs(serve_usage, stdout);
			return 0;
		default:
			fputs(serve_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return serve_usage_error("unexpected argument %s",
		    argv[optind]);
	if ((opt.cert_file == NULL) != (opt.key_file == NULL))
		return serve_usage_error("%s", "--cert and --key go together");

	/*
	 * Termination signals are taken synchronously by this thread only
	 * (every thread started from here inherits the blocked mask), so
	 * that the server stops in order and the process exits normally,
	 * which removes its published counters.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (srv_start(&opt, &s, err, sizeof(err)) != 0) {
		warnx("%s", err);
		return 1;
	}
	fprintf(stderr, "%s\n", srv_cert_desc(s));
	fprintf(stderr, "listening on %s\n", srv_address(s));
	for (;;) {
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig > 0)
			break;
		if (srv_finished(s))
			break;
	}
	failures = srv_destroy(s);
	return failures == 0 ? 0 : 1;
}
