/*
 * tlsgen: TLS records made with OpenSSL EVP for the uktls tests, and the
 * socket helpers the tests share.  See tlsgen.h.
 */
#include "tlsgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const struct tg_suite tg_suites[TG_NSUITES] = {
	{ "tls12_aes128_gcm", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_TWO },
	{ "tls12_aes256_gcm", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_TWO },
	{ "tls12_chacha20_poly1305", CRYPTO_CHACHA20_POLY1305, 32,
	    TLS_MINOR_VER_TWO },
	{ "tls13_aes128_gcm", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE },
	{ "tls13_aes256_gcm", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_THREE },
	{ "tls13_chacha20_poly1305", CRYPTO_CHACHA20_POLY1305, 32,
	    TLS_MINOR_VER_THREE },
};

const char *
tg_suite_name(const void *suite)
{

	return (((const struct tg_suite *)suite)->name);
}

void
tg_register_suites(const char *name, void (*fn)(void *), int first, int n)
{

	harness_register_param(name, fn, (void *)&tg_suites[first],
	    sizeof(tg_suites[0]), (size_t)n, tg_suite_name);
}

/* ---- randomness ---------------------------------------------------- */

void
tg_random(void *buf, size_t len)
{

	if (RAND_bytes(buf, (int)len) != 1)
		abort();
}

uint64_t
tg_random64(void)
{
	uint64_t v;

	tg_random(&v, sizeof(v));
	return (v);
}

/* splitmix64: small, fast and good enough for sizes and payload bytes. */
uint64_t
tg_rng_next(struct tg_rng *r)
{
	uint64_t z;

	z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

uint64_t
tg_rng_below(struct tg_rng *r, uint64_t n)
{

	return (n == 0 ? 0 : tg_rng_next(r) % n);
}

void
tg_rng_fill(struct tg_rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t v;
	size_t i;

	while (len >= 8) {
		v = tg_rng_next(r);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len > 0) {
		v = tg_rng_next(r);
		for (i = 0; i < len; i++)
			p[i] = (uint8_t)(v >> (8 * i));
	}
}

/* ---- the generator ------------------------------------------------- */

static const EVP_CIPHER *
tg_evp_cipher(const struct tg_suite *s)
{

	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		return (EVP_chacha20_poly1305());
	return (s->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm());
}

int
tlsgen_init(struct tlsgen *g, const struct tg_suite *s, uint64_t seqno)
{
	EVP_CIPHER_CTX *ctx;

	memset(g, 0, sizeof(*g));
	g->suite = s;
	g->seqno = g->seqno0 = seqno;
	g->iv_len = (s->tls_vminor == TLS_MINOR_VER_TWO &&
	    s->cipher_algorithm == CRYPTO_AES_NIST_GCM_16) ? TLS_AEAD_GCM_LEN :
	    12;
	tg_random(g->key, (size_t)s->key_len);
	tg_random(g->iv, (size_t)g->iv_len);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return (-1);
	if (EVP_EncryptInit_ex(ctx, tg_evp_cipher(s), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return (-1);
	}
	g->ctx = ctx;
	return (0);
}

void
tlsgen_free(struct tlsgen *g)
{

	if (g->ctx != NULL)
		EVP_CIPHER_CTX_free(g->ctx);
	g->ctx = NULL;
	OPENSSL_cleanse(g->key, sizeof(g->key));
}

void
tlsgen_enable(const struct tlsgen *g, struct tls_enable *en)
{
	int i;

	memset(en, 0, sizeof(*en));
	en->cipher_key = g->key;
	en->cipher_key_len = g->suite->key_len;
	en->iv = g->iv;
	en->iv_len = g->iv_len;
	en->cipher_algorithm = g->suite->cipher_algorithm;
	en->auth_algorithm = 0;
	en->auth_key = NULL;
	en->auth_key_len = 0;
	en->flags = 0;
	en->tls_vmajor = TLS_MAJOR_VER_ONE;
	en->tls_vminor = g->suite->tls_vminor;
	for (i = 0; i < 8; i++)
		en->rec_seq[i] = (uint8_t)(g->seqno0 >> (56 - 8 * i));
}

int
tlsgen_is_tls13(const struct tlsgen *g)
{

	return (g->suite->tls_vminor == TLS_MINOR_VER_THREE);
}

static int
tlsgen_explicit_nonce(const struct tlsgen *g)
{

	return (!tlsgen_is_tls13(g) &&
	    g->suite->cipher_algorithm == CRYPTO_AES_NIST_GCM_16);
}

size_t
tlsgen_hlen(const struct tlsgen *g)
{

	return (TG_HDR_LEN + (tlsgen_explicit_nonce(g) ?
	    TG_EXPLICIT_NONCE_LEN : 0));
}

size_t
tlsgen_min_length_field(const struct tlsgen *g)
{

	return (tlsgen_hlen(g) - TG_HDR_LEN + TG_TAG_LEN +
	    (tlsgen_is_tls13(g) ? 1 : 0));
}

size_t
tlsgen_record_len(const struct tlsgen *g, size_t len, size_t pad)
{

	return (tlsgen_hlen(g) + len + TG_TAG_LEN +
	    (tlsgen_is_tls13(g) ? 1 + pad : 0));
}

static void
be64enc(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

void
tg_set_length_field(void *record, unsigned int len)
{
	uint8_t *p = record;

	p[TG_OFF_LENGTH] = (uint8_t)(len >> 8);
	p[TG_OFF_LENGTH + 1] = (uint8_t)len;
}

ssize_t
tlsgen_encrypt(struct tlsgen *g, uint8_t type, const void *payload,
    size_t len, size_t pad, void *out, size_t outsize)
{
	static const uint8_t zeros[TG_MAX_PAD];
	EVP_CIPHER_CTX *ctx = g->ctx;
	uint8_t nonce[12], aad[13], seq[8], *rec = out, *ct;
	size_t reclen, hlen, i;
	int tls13, aadlen, outl;

	tls13 = tlsgen_is_tls13(g);
	if (!tls13)
		pad = 0;
	if (len > TG_MAX_PLAINTEXT + TG_MAX_PAD || pad > TG_MAX_PAD)
		return (-1);
	hlen = tlsgen_hlen(g);
	reclen = tlsgen_record_len(g, len, pad);
	if (reclen > outsize || reclen - TG_HDR_LEN > 0xffff)
		return (-1);
	be64enc(seq, g->seqno);

	/* The header. */
	rec[0] = tls13 ? TLS_RLTYPE_APP : type;
	rec[1] = TLS_MAJOR_VER_ONE;
	rec[2] = TLS_MINOR_VER_TWO;
	tg_set_length_field(rec, (unsigned int)(reclen - TG_HDR_LEN));

	/* The nonce. */
	if (tlsgen_explicit_nonce(g)) {
		memcpy(rec + TG_OFF_EXPLICIT_NONCE, seq, 8);
		memcpy(nonce, g->iv, 4);
		memcpy(nonce + 4, seq, 8);
	} else {
		memcpy(nonce, g->iv, 12);
		for (i = 0; i < 8; i++)
			nonce[4 + i] ^= seq[i];
	}

	/* The additional data. */
	if (tls13) {
		memcpy(aad, rec, TG_HDR_LEN);
		aadlen = TG_HDR_LEN;
	} else {
		memcpy(aad, seq, 8);
		aad[8] = type;
		aad[9] = TLS_MAJOR_VER_ONE;
		aad[10] = TLS_MINOR_VER_TWO;
		aad[11] = (uint8_t)(len >> 8);
		aad[12] = (uint8_t)len;
		aadlen = 13;
	}

	ct = rec + hlen;
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, g->key, nonce) != 1)
		return (-1);
	if (EVP_EncryptUpdate(ctx, NULL, &outl, aad, aadlen) != 1)
		return (-1);
	if (len > 0) {
		if (EVP_EncryptUpdate(ctx, ct, &outl, payload, (int)len) != 1 ||
		    (size_t)outl != len)
			return (-1);
		ct += len;
	}
	if (tls13) {
		if (EVP_EncryptUpdate(ctx, ct, &outl, &type, 1) != 1 ||
		    outl != 1)
			return (-1);
		ct += 1;
		if (pad > 0) {
			if (EVP_EncryptUpdate(ctx, ct, &outl, zeros,
			    (int)pad) != 1 || (size_t)outl != pad)
				return (-1);
			ct += pad;
		}
	}
	if (EVP_EncryptFinal_ex(ctx, ct, &outl) != 1 || outl != 0)
		return (-1);
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TG_TAG_LEN,
	    ct) != 1)
		return (-1);
	g->seqno++;
	return ((ssize_t)reclen);
}

/* ---- sockets ------------------------------------------------------- */

void
tg_sleep_ms(unsigned int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

double
tg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void
tg_watchdog_fire(int sig)
{
	const char *name = harness_cur_name != NULL ? harness_cur_name : "?";
	const char *param = harness_cur_param;
	ssize_t r;

	(void)sig;
	r = write(2, "FAIL watchdog: test ", 20);
	r = write(2, name, strlen(name));
	if (param != NULL) {
		r = write(2, "/", 1);
		r = write(2, param, strlen(param));
	}
	r = write(2, " made no progress; exiting\n", 27);
	(void)r;
	_exit(3);
}

static void
tg_watchdog_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tg_watchdog_fire;
	/* It never returns; SA_RESTART keeps it from making blocking reads
	 * interruptible (test_rx's signal tests). */
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
tg_watchdog(unsigned int seconds)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* Test threads may make pairs at the same time. */
	pthread_once(&once, tg_watchdog_install);
	alarm(seconds);
}

int
tg_tcp_pair(int *rx, int *tx)
{
	struct sockaddr_in sin;
	socklen_t sl;
	int l, a, c, one = 1;

	tg_watchdog(TG_WATCHDOG_S);
	*rx = *tx = -1;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l == -1)
		return (-1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	sl = sizeof(sin);
	/*
	 * Thousands of pairs a run leave their ports in TIME_WAIT; without
	 * SO_REUSEADDR bind() would skip every such port and run out.
	 */
	(void)setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) == -1) {
		close(l);
		return (-1);
	}
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c == -1) {
		close(l);
		return (-1);
	}
	if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(c);
		close(l);
		return (-1);
	}
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (a == -1) {
		close(c);
		return (-1);
	}
	(void)setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*rx = c;
	*tx = a;
	return (0);
}

ssize_t
tg_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = send(fd, p + done, len - done, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		done += (size_t)n;
	}
	return ((ssize_t)len);
}

int
tg_wait_readable(int fd, int ms)
{
	struct pollfd pfd;
	double deadline;
	int r, left;

	deadline = tg_now() + ms / 1000.0;
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		left = (int)((deadline - tg_now()) * 1000.0);
		if (left < 0)
			left = 0;
		r = uktls_poll(&pfd, 1, left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return (-1);
		return (r > 0 ? 1 : 0);
	}
}

ssize_t
tg_recv(int fd, void *buf, size_t len, int flags, size_t controlspace,
    struct tg_rec *r)
{
	union {
		struct cmsghdr align;
		char buf[256];
	} ctl;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *cmsg;

	if (controlspace == TG_CTL_DEFAULT)
		controlspace = CMSG_SPACE(sizeof(struct tls_get_record));
	if (controlspace > sizeof(ctl.buf))
		controlspace = sizeof(ctl.buf);
	memset(r, 0, sizeof(*r));
	r->lx_type = -1;
	memset(&ctl, 0xa5, sizeof(ctl));
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = controlspace > 0 ? ctl.buf : NULL;
	msg.msg_controllen = controlspace;
	errno = 0;
	r->n = uktls_recvmsg(fd, &msg, flags);
	r->err = r->n == -1 ? errno : 0;
	if (r->n == -1)
		return (-1);
	r->flags = msg.msg_flags;
	r->controllen = msg.msg_controllen;
	if (controlspace == 0 || msg.msg_controllen == 0 ||
	    msg.msg_controllen > controlspace)
		return (r->n);
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (r->ncmsg++ > 0)
			continue;
		if (cmsg->cmsg_level == IPPROTO_TCP &&
		    cmsg->cmsg_type == TLS_GET_RECORD &&
		    cmsg->cmsg_len == CMSG_LEN(sizeof(struct tls_get_record))) {
			r->cmsg_ok = 1;
			memcpy(&r->tgr, CMSG_DATA(cmsg), sizeof(r->tgr));
		} else if (cmsg->cmsg_level == SOL_TLS &&
		    cmsg->cmsg_type == TLS_GET_RECORD_TYPE &&
		    cmsg->cmsg_len == CMSG_LEN(1))
			r->lx_type = *CMSG_DATA(cmsg);
	}
	return (r->n);
}

int
tg_expect_record(const char *file, int line, int fd, uint8_t type,
    const void *payload, size_t len)
{
	struct tg_rec r;
	uint8_t *buf;
	size_t bufsize = len + 1024;
	size_t i;
	int w, bad = 0;

	w = tg_wait_readable(fd, TG_WAIT_MS);
	if (w != 1) {
		harness_fail(file, line, "record (type %u, %zu bytes): "
		    "not readable within %d ms (poll %d, errno %d)", type, len,
		    TG_WAIT_MS, w, errno);
		return (-1);
	}
	buf = malloc(bufsize);
	if (buf == NULL)
		abort();
	tg_recv(fd, buf, bufsize, 0, TG_CTL_DEFAULT, &r);
	if (r.n == -1) {
		harness_fail(file, line, "record (type %u, %zu bytes): "
		    "recvmsg -1 errno %d (%s)", type, len, r.err,
		    strerror(r.err));
		free(buf);
		return (-1);
	}
	if ((size_t)r.n != len) {
		harness_fail(file, line, "record (type %u): recvmsg returned "
		    "%zd, want %zu", type, r.n, len);
		bad = 1;
	}
	if ((r.flags & MSG_EOR) == 0) {
		harness_fail(file, line, "record: MSG_EOR not set (flags %#x)",
		    r.flags);
		bad = 1;
	}
	if ((r.flags & MSG_CTRUNC) != 0) {
		harness_fail(file, line, "record: MSG_CTRUNC set");
		bad = 1;
	}
	if (r.ncmsg != 1 || !r.cmsg_ok) {
		harness_fail(file, line, "record: %d control messages, first "
		    "%s (controllen %zu)", r.ncmsg, r.cmsg_ok ? "good" :
		    "not IPPROTO_TCP/TLS_GET_RECORD of the right length",
		    r.controllen);
		bad = 1;
	} else {
		if (r.tgr.tls_type != type) {
			harness_fail(file, line, "record: tls_type %u, want %u",
			    r.tgr.tls_type, type);
			bad = 1;
		}
		if (r.tgr.tls_vmajor != TLS_MAJOR_VER_ONE ||
		    r.tgr.tls_vminor != TLS_MINOR_VER_TWO) {
			harness_fail(file, line, "record: version %u.%u, "
			    "want 3.3", r.tgr.tls_vmajor, r.tgr.tls_vminor);
			bad = 1;
		}
		if (ntohs(r.tgr.tls_length) != len) {
			harness_fail(file, line, "record: tls_length %u, "
			    "want %zu", ntohs(r.tgr.tls_length), len);
			bad = 1;
		}
	}
	if (r.n > 0 && payload != NULL &&
	    memcmp(buf, payload, (size_t)r.n < len ? (size_t)r.n : len) != 0) {
		for (i = 0; i < len && i < (size_t)r.n; i++)
			if (buf[i] != ((const uint8_t *)payload)[i])
				break;
		harness_fail(file, line, "record: payload differs at byte "
		    "%zu of %zu", i, len);
		bad = 1;
	}
	free(buf);
	return (bad ? -1 : 0);
}

int
tg_expect_error(const char *file, int line, int fd, int err)
{
	struct tg_rec r;
	uint8_t buf[256];
	int w;

	w = tg_wait_readable(fd, TG_WAIT_MS);
	if (w != 1) {
		harness_fail(file, line, "want errno %d (%s): not readable "
		    "within %d ms (poll %d)", err, strerror(err), TG_WAIT_MS,
		    w);
		return (-1);
	}
	tg_recv(fd, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	if (r.n != -1 || r.err != err) {
		harness_fail(file, line, "recvmsg returned %zd errno %d (%s) "
		    "(record type %u len %u), want -1 errno %d (%s)", r.n,
		    r.err, strerror(r.err), r.cmsg_ok ? r.tgr.tls_type : 0,
		    r.cmsg_ok ? ntohs(r.tgr.tls_length) : 0, err,
		    strerror(err));
		return (-1);
	}
	return (0);
}

int
tg_expect_eof(const char *file, int line, int fd)
{
	struct tg_rec r;
	uint8_t buf[256];
	int w;

	w = tg_wait_readable(fd, TG_WAIT_MS);
	if (w != 1) {
		harness_fail(file, line, "want EOF: not readable within %d ms "
		    "(poll %d)", TG_WAIT_MS, w);
		return (-1);
	}
	tg_recv(fd, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	if (r.n != 0 || r.ncmsg != 0) {
		harness_fail(file, line, "want EOF: recvmsg returned %zd errno "
		    "%d (%s), %d control messages", r.n, r.err,
		    strerror(r.err), r.ncmsg);
		return (-1);
	}
	return (0);
}

/* ---- connections --------------------------------------------------- */

int
tg_conn_open_seq(struct tg_conn *c, const struct tg_suite *s, uint64_t seqno,
    int enable)
{

	memset(c, 0, sizeof(*c));
	c->rx = c->tx = -1;
	if (tg_tcp_pair(&c->rx, &c->tx) == -1) {
		harness_fail(__FILE__, __LINE__, "tcp pair: %s",
		    strerror(errno));
		return (-1);
	}
	if (tlsgen_init(&c->g, s, seqno) == -1) {
		harness_fail(__FILE__, __LINE__, "tlsgen_init failed");
		tg_conn_close(c);
		return (-1);
	}
	tlsgen_enable(&c->g, &c->en);
	if (enable && tg_conn_enable(c) == -1) {
		tg_conn_close(c);
		return (-1);
	}
	return (0);
}

int
tg_conn_open(struct tg_conn *c, const struct tg_suite *s, int enable)
{

	/* Random, but far from the wrap so that no test reaches it. */
	return (tg_conn_open_seq(c, s, tg_random64() >> 1, enable));
}

int
tg_conn_enable(struct tg_conn *c)
{

	if (uktls_setsockopt(c->rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &c->en,
	    sizeof(c->en)) == -1) {
		harness_fail(__FILE__, __LINE__, "TCP_RXTLS_ENABLE (%s): %s",
		    c->g.suite->name, strerror(errno));
		return (-1);
	}
	c->enabled = 1;
	return (0);
}

void
tg_conn_close(struct tg_conn *c)
{

	if (c->rx != -1) {
		if (c->enabled)
			uktls_close(c->rx);
		else
			close(c->rx);
	}
	if (c->tx != -1)
		close(c->tx);
	c->rx = c->tx = -1;
	tlsgen_free(&c->g);
}

ssize_t
tg_conn_make(struct tg_conn *c, uint8_t type, const void *p, size_t len,
    size_t pad, void *buf)
{
	ssize_t n;

	n = tlsgen_encrypt(&c->g, type, p, len, pad, buf, TG_MAX_RECORD);
	if (n == -1)
		harness_fail(__FILE__, __LINE__, "tlsgen_encrypt failed");
	return (n);
}

int
tg_conn_send(struct tg_conn *c, uint8_t type, const void *p, size_t len,
    size_t pad)
{
	uint8_t *buf;
	ssize_t n;
	int ret = 0;

	buf = malloc(TG_MAX_RECORD);
	if (buf == NULL)
		abort();
	n = tg_conn_make(c, type, p, len, pad, buf);
	if (n == -1)
		ret = -1;
	else if (tg_write_all(c->tx, buf, (size_t)n) == -1) {
		harness_fail(__FILE__, __LINE__, "write: %s", strerror(errno));
		ret = -1;
	}
	free(buf);
	return (ret);
}

/* ---- delayed writes ------------------------------------------------ */

static void *
tg_delayed_write_main(void *arg)
{
	struct tg_delayed_write *dw = arg;

	tg_sleep_ms(dw->ms);
	dw->result = tg_write_all(dw->fd, dw->buf, dw->len);
	return (NULL);
}

int
tg_delayed_write_start(struct tg_delayed_write *dw, int fd, const void *buf,
    size_t len, unsigned int ms)
{

	dw->fd = fd;
	dw->buf = buf;
	dw->len = len;
	dw->ms = ms;
	dw->result = -1;
	dw->started = pthread_create(&dw->thread, NULL, tg_delayed_write_main,
	    dw) == 0;
	return (dw->started ? 0 : -1);
}

ssize_t
tg_delayed_write_join(struct tg_delayed_write *dw)
{

	if (!dw->started)
		return (-1);
	pthread_join(dw->thread, NULL);
	dw->started = 0;
	return (dw->result);
}
