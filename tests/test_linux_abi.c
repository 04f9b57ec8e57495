/*
 * Linux kernel TLS's receive enable, uktls_setsockopt(fd, SOL_TLS, TLS_RX,
 * &crypto_info, sizeof(crypto_info)), and the reads of a socket enabled
 * that way, through the public API over loopback TCP with records made by
 * tlsgen.
 *
 * For each of the six suites the Linux structure is built from the
 * generator's key, IV and starting sequence number the way a Linux kTLS
 * program fills it from its TLS library, and records must then read back
 * with Linux's semantics (the type in a SOL_TLS/TLS_GET_RECORD_TYPE
 * control message, data records merged, EIO for a record of another type
 * read without room for its type, empty data records absorbed), also
 * across the last sequence numbers before 2^64; TLS 1.3 rekeys after the
 * peer's KeyUpdate as Linux does.  Then every way the enable can be
 * refused, in the order Linux checks, and the TLS_RX read-back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "ktls.h"
#include "socket.h"
#include "tlsgen.h"
#include "uktls.h"

#define APP TLS_RLTYPE_APP

union linux_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
	unsigned char bytes[128]; /* room to pass a length that is too long */
};

static void
put_seq(unsigned char rec_seq[8], uint64_t seqno)
{
	int i;

	for (i = 0; i < 8; i++)
		rec_seq[i] = (unsigned char)(seqno >> (56 - 8 * i));
}

/*
 * Fill *u for the generator g as a Linux program would, and return the
 * length to pass.  For TLS 1.2 AES-GCM Linux's iv is the explicit nonce of
 * the first record its holder sends: a receiver must ignore it, so it is
 * filled with random bytes here.
 */
static socklen_t
mk_info(const struct tlsgen *g, union linux_info *u)
{
	const struct tg_suite *s = g->suite;
	int tls13 = s->tls_vminor == TLS_MINOR_VER_THREE;

	memset(u, 0, sizeof(*u));
	u->info.version = tls13 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305) {
		u->info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(u->chacha.iv, g->iv, sizeof(u->chacha.iv));
		memcpy(u->chacha.key, g->key, sizeof(u->chacha.key));
		put_seq(u->chacha.rec_seq, g->seqno0);
		return (sizeof(u->chacha));
	}
	if (s->key_len == 16) {
		u->info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(u->gcm128.salt, g->iv, 4);
		if (tls13)
			memcpy(u->gcm128.iv, g->iv + 4, 8);
		else
			tg_random(u->gcm128.iv, sizeof(u->gcm128.iv));
		memcpy(u->gcm128.key, g->key, 16);
		put_seq(u->gcm128.rec_seq, g->seqno0);
		return (sizeof(u->gcm128));
	}
	u->info.cipher_type = TLS_CIPHER_AES_GCM_256;
	memcpy(u->gcm256.salt, g->iv, 4);
	if (tls13)
		memcpy(u->gcm256.iv, g->iv + 4, 8);
	else
		tg_random(u->gcm256.iv, sizeof(u->gcm256.iv));
	memcpy(u->gcm256.key, g->key, 32);
	put_seq(u->gcm256.rec_seq, g->seqno0);
	return (sizeof(u->gcm256));
}

static int
rx_mode(int fd)
{
	socklen_t len = sizeof(int);
	int mode = -1;

	if (uktls_getsockopt(fd, IPPROTO_TCP, TCP_RXTLS_MODE, &mode,
	    &len) == -1)
		return (-1);
	return (mode);
}

static int
linux_enable(struct tg_conn *c)
{
	union linux_info u;
	socklen_t len;

	len = mk_info(&c->g, &u);
	if (uktls_setsockopt(c->rx, SOL_TLS, TLS_RX, &u, len) == -1) {
		harness_fail(__FILE__, __LINE__, "TLS_RX (%s): %s",
		    c->g.suite->name, strerror(errno));
		return (-1);
	}
	/* uktls keeps its own copies: the caller's may go at once. */
	memset(&u, 0, sizeof(u));
	c->enabled = 1;
	return (0);
}

/* One uktls_recvmsg() as a Linux kTLS program makes it. */
struct lx_rec {
	ssize_t n;    /* the return value */
	int err;      /* errno when n == -1 */
	int flags;    /* msg_flags */
	int ncmsg;    /* control messages found */
	int type;     /* the TLS_GET_RECORD_TYPE byte, -1 if none */
};

/*
 * ctl: the control buffer's size (0: none; LX_CTL: room for the record
 * type).  Checks that any control message is SOL_TLS/TLS_GET_RECORD_TYPE
 * with one byte.
 */
#define LX_CTL CMSG_SPACE(1)
static ssize_t
lx_recv(int fd, void *buf, size_t len, int flags, size_t ctl,
    struct lx_rec *r)
{
	struct tg_rec t;

	tg_recv(fd, buf, len, flags, ctl, &t);
	r->n = t.n;
	r->err = t.err;
	r->flags = t.flags;
	r->ncmsg = t.ncmsg;
	r->type = t.lx_type;
	/* Any control message is Linux's, whole. */
	if (t.ncmsg > 0 && t.lx_type < 0)
		harness_fail(__FILE__, __LINE__, "control message not "
		    "SOL_TLS/TLS_GET_RECORD_TYPE of one byte");
	return (r->n);
}

/*
 * Read one whole record (or several data records adding up to len) the
 * Linux way: its type in the control message, MSG_EOR, the payload.
 */
static int
lx_expect(int line, int fd, uint8_t type, const void *payload, size_t len)
{
	static uint8_t buf[4 * TG_MAX_PLAINTEXT + 64];
	struct lx_rec r;

	FAILIF(tg_wait_readable(fd, TG_WAIT_MS) != 1,
	    "line %d: not readable", line);
	lx_recv(fd, buf, len, type == APP ? MSG_WAITALL : 0, LX_CTL, &r);
	FAILIF(r.n != (ssize_t)len, "line %d: read %zd (%s), want %zu", line,
	    r.n, strerror(r.err), len);
	FAILIF(r.ncmsg != 1 || r.type != type, "line %d: %d cmsgs, type %d, "
	    "want %u", line, r.ncmsg, r.type, type);
	FAILIF((r.flags & MSG_EOR) == 0 || (r.flags & MSG_CTRUNC) != 0,
	    "line %d: flags %#x", line, r.flags);
	FAILIF(len > 0 && memcmp(buf, payload, len) != 0,
	    "line %d: payload differs", line);
	return (0);
out:
	return (-1);
}
#define LX_EXPECT(fd, type, p, len) lx_expect(__LINE__, (fd), (type), (p), \
    (len))

/* Peek until n bytes of data are decrypted and readable at once. */
static int
lx_wait_bytes(int fd, size_t n)
{
	static uint8_t buf[4 * TG_MAX_PLAINTEXT];
	struct lx_rec r;
	double end = tg_now() + TG_WAIT_MS / 1000.0;

	while (tg_now() < end) {
		(void)tg_wait_readable(fd, TG_WAIT_MS);
		lx_recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT, 0, &r);
		if (r.n >= (ssize_t)n)
			return (0);
		tg_sleep_ms(2);
	}
	harness_fail(__FILE__, __LINE__, "%zu bytes never readable", n);
	return (-1);
}

/* Send and read back records of a few sizes and types. */
static void
exchange(struct tg_conn *c)
{
	static const size_t sizes[] = { 0, 1, 100, 4096, TG_MAX_PLAINTEXT };
	static uint8_t buf[TG_MAX_PLAINTEXT];
	size_t i;

	tg_random(buf, sizeof(buf));
	for (i = 1; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* An empty data record before each: absorbed. */
		CHECK_EQ(tg_conn_send(c, APP, buf, 0, 0), 0);
		CHECK_EQ(tg_conn_send(c, APP, buf, sizes[i], i % 2), 0);
		CHECK_EQ(LX_EXPECT(c->rx, APP, buf, sizes[i]), 0);
	}
	CHECK_EQ(tg_conn_send(c, TLS_RLTYPE_ALERT, "\x01\x00", 2, 0), 0);
	CHECK_EQ(LX_EXPECT(c->rx, TLS_RLTYPE_ALERT, "\x01\x00", 2), 0);
}

static void
expect_info(int fd, const struct tg_suite *s)
{
	struct tls_crypto_info info;
	socklen_t len = sizeof(info);
	uint16_t want;

	memset(&info, 0xff, sizeof(info));
	REQUIRE_EQ(uktls_getsockopt(fd, SOL_TLS, TLS_RX, &info, &len), 0);
	CHECK_EQ(len, sizeof(info));
	CHECK_EQ(info.version, s->tls_vminor == TLS_MINOR_VER_THREE ?
	    TLS_1_3_VERSION : TLS_1_2_VERSION);
	if (s->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		want = TLS_CIPHER_CHACHA20_POLY1305;
	else
		want = s->key_len == 16 ? TLS_CIPHER_AES_GCM_128 :
		    TLS_CIPHER_AES_GCM_256;
	CHECK_EQ(info.cipher_type, want);
}

/*
 * Enable the Linux way (TCP_ULP "tls", answered by uktls whether or not
 * the kernel has the module, then TLS_RX), receive, and read the settings
 * back.
 */
static void
t_receive(void *param)
{
	const struct tg_suite *s = param;
	union linux_info u, big;
	struct tg_conn c;
	char ulp[16];
	socklen_t len;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_NONE);
	CHECK_EQ(uktls_setsockopt(c.rx, IPPROTO_TCP, TCP_ULP, "tls",
	    sizeof("tls")), 0);
	CHECK_EQ(uktls_setsockopt(c.rx, IPPROTO_TCP, TCP_ULP, "tls", 3), 0);
	if (linux_enable(&c) == -1)
		goto out;
	CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_SW);
	CHECK_ERRNO(uktls_setsockopt(c.rx, IPPROTO_TCP, TCP_ULP, "tls",
	    sizeof("tls")), EEXIST);
	memset(ulp, 'x', sizeof(ulp));
	len = sizeof(ulp);
	CHECK_EQ(uktls_getsockopt(c.rx, IPPROTO_TCP, TCP_ULP, ulp, &len), 0);
	CHECK_EQ(strcmp(ulp, "tls"), 0);
	exchange(&c);
	expect_info(c.rx, s);

	/* Only the header's size or the cipher's structure's (t_keys). */
	len = mk_info(&c.g, &u) + 1;
	memset(&big, 0, sizeof(big));
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &big, &len),
	    EINVAL);
	len = mk_info(&c.g, &u) - 1;
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &big, &len),
	    EINVAL);
	len = 5;
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &big, &len),
	    EINVAL);
	len = 3;
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &big, &len),
	    EINVAL);
	/* Linux: EINVAL without optval, EFAULT without optlen. */
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, NULL, &len),
	    EINVAL);
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &big, NULL),
	    EFAULT);

	/*
	 * Enabled once by FreeBSD's interface; TLS_RX again is a rekey,
	 * which TLS 1.2 refuses as Linux does (t_rekey for TLS 1.3).
	 */
	len = mk_info(&c.g, &u);
	if (s->tls_vminor != TLS_MINOR_VER_THREE)
		CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len),
		    EBUSY);
	CHECK_ERRNO(uktls_setsockopt(c.rx, IPPROTO_TCP, TCP_RXTLS_ENABLE,
	    &c.en, sizeof(c.en)), EALREADY);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_TX, &u, len),
	    EOPNOTSUPP);
	/* The session the refusals found is still the one working. */
	exchange(&c);
out:
	tg_conn_close(&c);
}

/* The last records before the sequence number would wrap. */
static void
t_near_wrap(void *param)
{
	const struct tg_suite *s = param;
	static const char msg[] = "near the end of the sequence space";
	struct tg_conn c;
	int i;

	REQUIRE_EQ(tg_conn_open_seq(&c, s, UINT64_MAX - 2, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	/* Records 2^64 - 3, 2^64 - 2 and 2^64 - 1: no more may be sent. */
	for (i = 0; i < 3; i++) {
		CHECK_EQ(tg_conn_send(&c, APP, msg, sizeof(msg), 0), 0);
		CHECK_EQ(LX_EXPECT(c.rx, APP, msg, sizeof(msg)), 0);
	}
out:
	tg_conn_close(&c);
}

/*
 * A TCP_RXTLS_ENABLE session reads back through TLS_RX too, keeps
 * FreeBSD's reads, and TLS_RX cannot enable it again or rekey it.
 */
static void
t_freebsd_enable_info(void *param)
{
	const struct tg_suite *s = param;
	static const char msg[] = "FreeBSD's reads";
	union linux_info u;
	struct tg_conn c;
	socklen_t len;

	REQUIRE_EQ(tg_conn_open(&c, s, 1), 0);
	expect_info(c.rx, s);
	len = mk_info(&c.g, &u);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len),
	    EALREADY);
	/* FreeBSD's form has no rekey to wait for. */
	CHECK_ERRNO(uktls_rx_rekey_pending(c.rx, NULL), EINVAL);
	CHECK_EQ(tg_conn_send(&c, APP, msg, sizeof(msg), 0), 0);
	CHECK_EQ(TG_EXPECT_RECORD(c.rx, APP, msg, sizeof(msg)), 0);
	tg_conn_close(&c);
}

/* One refused enable: the socket must be left as it was. */
static void
refused(int line, int fd, const void *optval, socklen_t optlen, int err)
{
	errno = 0;
	if (uktls_setsockopt(fd, SOL_TLS, TLS_RX, optval, optlen) != -1 ||
	    errno != err)
		harness_fail(__FILE__, line, "TLS_RX optlen %u: errno %d (%s), "
		    "want %d (%s)", (unsigned int)optlen, errno,
		    strerror(errno), err, strerror(err));
	if (rx_mode(fd) != TCP_TLS_MODE_NONE)
		harness_fail(__FILE__, line, "enabled after a refusal");
}
#define REFUSED(fd, p, len, err) refused(__LINE__, (fd), (p), (len), (err))

static void
set_info(union linux_info *u, uint16_t version, uint16_t cipher)
{
	u->info.version = version;
	u->info.cipher_type = cipher;
}

/* Every refusal, in Linux's order of checks, then a good enable. */
TEST(refusals)
{
	static const uint16_t unsupported[] = { TLS_CIPHER_AES_CCM_128,
		TLS_CIPHER_SM4_GCM, TLS_CIPHER_SM4_CCM,
		TLS_CIPHER_ARIA_GCM_128, TLS_CIPHER_ARIA_GCM_256 };
	static const uint16_t unknown[] = { 0, 1, 50, 59, 0xffff };
	static const uint16_t bad_version[] = { 0, 0x0301, 0x0302, 0x0305,
		0x0403, 0xffff };
	static const struct {
		uint16_t cipher;
		socklen_t size;
	} sizes[] = {
		{ TLS_CIPHER_AES_GCM_128, 40 },
		{ TLS_CIPHER_AES_GCM_256, 56 },
		{ TLS_CIPHER_CHACHA20_POLY1305, 56 },
	};
	union linux_info u;
	struct tls_crypto_info info;
	struct tg_conn c;
	socklen_t len, l;
	size_t i;

	/* TLS 1.3 AES-128-GCM: a valid 40-byte structure to spoil. */
	REQUIRE_EQ(tg_conn_open(&c, &tg_suites[TG_FIRST_TLS13], 0), 0);
	len = mk_info(&c.g, &u);
	REQUIRE_EQ(len, 40);

	/* Not enabled yet: nothing to read back. */
	l = sizeof(info);
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &info, &l), EBUSY);
	l = 2;
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &info, &l),
	    EINVAL);

	REFUSED(c.rx, NULL, len, EINVAL);
	REFUSED(c.rx, NULL, 0, EINVAL);
	for (l = 0; l < sizeof(struct tls_crypto_info); l++)
		REFUSED(c.rx, &u, l, EINVAL);

	/* The exact size of each structure, and nothing else. */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		set_info(&u, TLS_1_3_VERSION, sizes[i].cipher);
		REFUSED(c.rx, &u, sizes[i].size - 1, EINVAL);
		REFUSED(c.rx, &u, sizes[i].size + 1, EINVAL);
		REFUSED(c.rx, &u, 4, EINVAL);
		REFUSED(c.rx, &u, sizeof(u), EINVAL);
		set_info(&u, TLS_1_2_VERSION, sizes[i].cipher);
		REFUSED(c.rx, &u, sizes[i].size - 1, EINVAL);
		REFUSED(c.rx, &u, sizes[i].size + 1, EINVAL);
	}

	/* The version is checked first, then the cipher, then the size. */
	for (i = 0; i < sizeof(bad_version) / sizeof(bad_version[0]); i++) {
		set_info(&u, bad_version[i], TLS_CIPHER_AES_GCM_128);
		REFUSED(c.rx, &u, len, EINVAL);
		set_info(&u, bad_version[i], TLS_CIPHER_AES_CCM_128);
		REFUSED(c.rx, &u, len, EINVAL);
	}
	/*
	 * Ciphers Linux knows and uktls does not decrypt: Linux's checks
	 * first (ARIA is TLS 1.2 only; the exact size), then EOPNOTSUPP.
	 */
	for (i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		socklen_t want = unsupported[i] == TLS_CIPHER_ARIA_GCM_256 ?
		    56 : 40;
		int aria = unsupported[i] == TLS_CIPHER_ARIA_GCM_128 ||
		    unsupported[i] == TLS_CIPHER_ARIA_GCM_256;

		set_info(&u, TLS_1_2_VERSION, unsupported[i]);
		REFUSED(c.rx, &u, want, EOPNOTSUPP);
		REFUSED(c.rx, &u, want == 40 ? 56 : 40, EINVAL);
		REFUSED(c.rx, &u, want - 1, EINVAL);
		REFUSED(c.rx, &u, 4, EINVAL);
		set_info(&u, TLS_1_3_VERSION, unsupported[i]);
		REFUSED(c.rx, &u, want, aria ? EINVAL : EOPNOTSUPP);
		REFUSED(c.rx, &u, want + 1, EINVAL);
	}
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		set_info(&u, TLS_1_3_VERSION, unknown[i]);
		REFUSED(c.rx, &u, 40, EINVAL);
		REFUSED(c.rx, &u, 56, EINVAL);
	}

	/* No transmit side, whatever the argument. */
	len = mk_info(&c.g, &u);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_TX, &u, len),
	    EOPNOTSUPP);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_TX, NULL, 0),
	    EOPNOTSUPP);
	CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_NONE);

	/* After all that, the socket still takes a good enable. */
	if (linux_enable(&c) == 0) {
		CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_SW);
		exchange(&c);
		expect_info(c.rx, c.g.suite);
	}
	tg_conn_close(&c);
}

/*
 * TLS_RX is for connected TCP sockets.  The descriptor is checked first, as
 * Linux's system call does before SOL_TLS reaches the TLS layer: EBADF,
 * ENOTSOCK, ENOPROTOOPT for a protocol without SOL_TLS (UDP, a Unix
 * stream), ENOTCONN for a listening or unconnected TCP socket, whatever the
 * argument.  Read back, a TCP socket without RX is EBUSY.
 */
TEST(not_a_tcp_socket)
{
	struct sockaddr_in sin;
	struct tls_crypto_info info;
	struct tg_conn c;
	union linux_info u;
	socklen_t len, l;
	int fd, sv[2], p[2], one = 1;

	REQUIRE_EQ(tg_conn_open(&c, &tg_suites[0], 0), 0);
	len = mk_info(&c.g, &u);
	l = sizeof(info);
	CHECK_ERRNO(uktls_setsockopt(-1, SOL_TLS, TLS_RX, &u, len), EBADF);
	CHECK_ERRNO(uktls_getsockopt(-1, SOL_TLS, TLS_RX, &info, &l), EBADF);
	CHECK_ERRNO(uktls_setsockopt(-1, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &one,
	    sizeof(one)), EBADF);
	CHECK_ERRNO(uktls_setsockopt(-1, IPPROTO_TCP, TCP_ULP, "tls", 4),
	    EBADF);
	if (pipe(p) == 0) {
		CHECK_ERRNO(uktls_setsockopt(p[0], SOL_TLS, TLS_RX, &u, len),
		    ENOTSOCK);
		CHECK_ERRNO(uktls_getsockopt(p[0], SOL_TLS, TLS_RX, &info,
		    &l), ENOTSOCK);
		close(p[0]);
		close(p[1]);
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd != -1) {
		CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, &u, len),
		    ENOPROTOOPT);
		CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, NULL, 0),
		    ENOPROTOOPT);
		CHECK_ERRNO(uktls_getsockopt(fd, SOL_TLS, TLS_RX, &info, &l),
		    ENOPROTOOPT);
		CHECK_ERRNO(uktls_setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls",
		    4), ENOPROTOOPT);
		close(fd);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		CHECK_ERRNO(uktls_setsockopt(sv[0], SOL_TLS, TLS_RX, &u, len),
		    ENOPROTOOPT);
		close(sv[0]);
		close(sv[1]);
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd != -1) {
		CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, &u, len),
		    ENOTCONN);
		CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, NULL, 0),
		    ENOTCONN);
		CHECK_ERRNO(uktls_getsockopt(fd, SOL_TLS, TLS_RX, &info, &l),
		    EBUSY);
		CHECK_ERRNO(uktls_setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls",
		    4), ENOTCONN);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    listen(fd, 1) == 0) {
			CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, &u,
			    len), ENOTCONN);
			CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, NULL,
			    0), ENOTCONN);
			CHECK_ERRNO(uktls_setsockopt(fd, IPPROTO_TCP, TCP_ULP,
			    "tls", 4), ENOTCONN);
		}
		close(fd);
	}
	tg_conn_close(&c);
}

/*
 * TLS_RX_EXPECT_NO_PAD, as Linux takes it: an int 0 or 1 on a socket with
 * TLS 1.3 RX; EINVAL before the enable, on TLS 1.2, for another value or a
 * short argument.  Records decrypt as before, padded or not.
 */
static void
t_no_pad(void *param)
{
	const struct tg_suite *s = param;
	static const char msg[] = "after the hint";
	struct tg_conn c;
	socklen_t l;
	int v, tls13 = s->tls_vminor == TLS_MINOR_VER_THREE;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	v = 1;
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    sizeof(v)), EINVAL);
	l = sizeof(v);
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    &l), EINVAL);
	if (linux_enable(&c) == -1)
		goto out;
	if (!tls13) {
		v = 1;
		CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS,
		    TLS_RX_EXPECT_NO_PAD, &v, sizeof(v)), EINVAL);
		l = sizeof(v);
		CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS,
		    TLS_RX_EXPECT_NO_PAD, &v, &l), EINVAL);
		goto read;
	}
	v = -1;
	l = sizeof(v);
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    &l), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(l, (socklen_t)sizeof(v));
	v = 2;
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    sizeof(v)), EINVAL);
	v = 1;
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    sizeof(v) - 1), EINVAL);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, NULL,
	    sizeof(v)), EINVAL);
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    sizeof(v)), 0);
	v = -1;
	l = 8;
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    &l), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(l, (socklen_t)sizeof(v));
	l = sizeof(v) - 1;
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    &l), EINVAL);
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &v,
	    NULL), EFAULT);
read:
	/* A padded record still reads whole with the hint set. */
	CHECK_EQ(tg_conn_send(&c, APP, msg, sizeof(msg), tls13 ? 32 : 0), 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, msg, sizeof(msg)), 0);
	v = 0;
	if (tls13)
		CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD,
		    &v, sizeof(v)), 0);
out:
	tg_conn_close(&c);
}

/*
 * Data records are merged into one read, as far as the buffer goes and
 * up to a record of another type; that record needs room for its type
 * (EIO otherwise, the record kept: no buffer, a buffer too short for the
 * message), and is read alone.
 */
static void
t_merge(void *param)
{
	const struct tg_suite *s = param;
	static uint8_t buf[3 * TG_MAX_PLAINTEXT];
	uint8_t data[700];
	struct tg_conn c;
	struct lx_rec r;

	tg_random(data, sizeof(data));
	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	/* Not RX-enabled yet, then not open at all. */
	CHECK_ERRNO(uktls_rx_rekey_pending(c.rx, NULL), ENOTCONN);
	CHECK_ERRNO(uktls_rx_rekey_pending(-1, NULL), EBADF);
	if (linux_enable(&c) == -1)
		goto out;
	/* Only TLS 1.3 has KeyUpdates; none has come. */
	if (s->tls_vminor == TLS_MINOR_VER_THREE)
		CHECK_EQ(uktls_rx_rekey_pending(c.rx, NULL), 0);
	else
		CHECK_ERRNO(uktls_rx_rekey_pending(c.rx, NULL), EINVAL);
	CHECK_EQ(tg_conn_send(&c, APP, data, 100, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data, 0, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data + 100, 200, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data + 300, 300, 0), 0);
	CHECK_EQ(tg_conn_send(&c, TLS_RLTYPE_ALERT, "\x01\x00", 2, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data + 600, 100, 0), 0);
	if (lx_wait_bytes(c.rx, 600) != 0)
		goto out;
	/* 550 bytes: the first two records whole, 250 of the third. */
	lx_recv(c.rx, buf, 550, 0, LX_CTL, &r);
	CHECK_EQ(r.n, 550);
	CHECK_EQ(r.type, APP);
	CHECK_EQ(r.ncmsg, 1);
	CHECK_EQ(r.flags & MSG_EOR, 0);
	CHECK_EQ(memcmp(buf, data, 550), 0);
	/* The rest of the third; the alert is not merged with it. */
	lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r);
	CHECK_EQ(r.n, 50);
	CHECK_EQ(r.type, APP);
	CHECK_EQ(r.flags & (MSG_EOR | MSG_CTRUNC), MSG_EOR);
	CHECK_EQ(memcmp(buf, data + 550, 50), 0);
	/* The alert cannot be told apart from data without its type. */
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EIO);
	CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), EIO);
	CHECK_ERRNO(lx_recv(c.rx, buf, sizeof(buf), 0, CMSG_LEN(1) - 1, &r),
	    EIO);
	CHECK_ERRNO(lx_recv(c.rx, buf, sizeof(buf), MSG_PEEK, 0, &r), EIO);
	/* With room for its type: the alert alone, then the data. */
	lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r);
	CHECK_EQ(r.n, 2);
	CHECK_EQ(r.type, TLS_RLTYPE_ALERT);
	CHECK_EQ(r.flags & MSG_EOR, MSG_EOR);
	CHECK_EQ(memcmp(buf, "\x01\x00", 2), 0);
	/* Plain reads of data need no control buffer. */
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 100);
	CHECK_EQ(memcmp(buf, data + 600, 100), 0);
out:
	tg_conn_close(&c);
}

/*
 * A record read in parts: every read with a control buffer gets the type,
 * MSG_EOR comes with the last part, and a record of another type still
 * needs room for its type at its second part.
 */
static void
t_partial(void *param)
{
	const struct tg_suite *s = param;
	uint8_t data[1000], buf[1000];
	struct tg_conn c;
	struct lx_rec r;
	size_t off;

	tg_random(data, sizeof(data));
	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	CHECK_EQ(tg_conn_send(&c, APP, data, sizeof(data), 0), 0);
	CHECK_EQ(tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, data, 10, 0), 0);
	for (off = 0; off < sizeof(data); off += 300) {
		lx_recv(c.rx, buf, 300, 0, LX_CTL, &r);
		CHECK_EQ(r.n, (ssize_t)(off + 300 <= sizeof(data) ? 300 :
		    sizeof(data) - off));
		CHECK_EQ(r.type, APP);
		CHECK_EQ(r.flags & MSG_EOR, off + 300 >= sizeof(data) ?
		    MSG_EOR : 0);
		CHECK_EQ(memcmp(buf, data + off, (size_t)(r.n > 0 ? r.n : 0)),
		    0);
	}
	if (tg_wait_readable(c.rx, TG_WAIT_MS) != 1)
		goto out;
	lx_recv(c.rx, buf, 4, 0, LX_CTL, &r);
	CHECK_EQ(r.n, 4);
	CHECK_EQ(r.type, TLS_RLTYPE_HANDSHAKE);
	CHECK_EQ(r.flags & MSG_EOR, 0);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EIO);
	lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r);
	CHECK_EQ(r.n, 6);
	CHECK_EQ(r.type, TLS_RLTYPE_HANDSHAKE);
	CHECK_EQ(r.flags & MSG_EOR, MSG_EOR);
	CHECK_EQ(memcmp(buf, data + 4, 6), 0);
out:
	tg_conn_close(&c);
}

/*
 * MSG_WAITALL waits for data records until the buffer is full; it stops at
 * a record of another type and at the end of the stream, with what it has.
 * MSG_PEEK looks across data records and takes none.
 */
static void
t_waitall_peek(void *param)
{
	const struct tg_suite *s = param;
	static uint8_t wire[2 * TG_MAX_RECORD], buf[3 * TG_MAX_PLAINTEXT];
	static uint8_t data[2 * TG_MAX_PLAINTEXT];
	struct tg_delayed_write dw;
	struct tg_conn c;
	struct lx_rec r;
	ssize_t n1, n2;

	tg_random(data, sizeof(data));
	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	/* Two records now, the third in 100 ms: one read takes all three. */
	CHECK_EQ(tg_conn_send(&c, APP, data, 5000, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data + 5000, 5000, 0), 0);
	n1 = tg_conn_make(&c, APP, data + 10000, TG_MAX_PLAINTEXT, 0, wire);
	REQUIRE(n1 > 0);
	REQUIRE_EQ(tg_delayed_write_start(&dw, c.tx, wire, (size_t)n1, 100),
	    0);
	lx_recv(c.rx, buf, 10000 + TG_MAX_PLAINTEXT, MSG_WAITALL, LX_CTL, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), n1);
	CHECK_EQ(r.n, 10000 + TG_MAX_PLAINTEXT);
	CHECK_EQ(r.type, APP);
	CHECK_EQ(r.flags & MSG_EOR, MSG_EOR);
	CHECK_EQ(memcmp(buf, data, 10000 + TG_MAX_PLAINTEXT), 0);

	/* MSG_PEEK | MSG_WAITALL waits for the third as well, takes none. */
	CHECK_EQ(tg_conn_send(&c, APP, data, 5000, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data + 5000, 5000, 0), 0);
	n1 = tg_conn_make(&c, APP, data + 10000, TG_MAX_PLAINTEXT, 0, wire);
	REQUIRE(n1 > 0);
	REQUIRE_EQ(tg_delayed_write_start(&dw, c.tx, wire, (size_t)n1, 100),
	    0);
	lx_recv(c.rx, buf, 10000 + TG_MAX_PLAINTEXT, MSG_PEEK | MSG_WAITALL,
	    LX_CTL, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), n1);
	CHECK_EQ(r.n, 10000 + TG_MAX_PLAINTEXT);
	CHECK_EQ(memcmp(buf, data, 10000 + TG_MAX_PLAINTEXT), 0);
	lx_recv(c.rx, buf, sizeof(buf), MSG_WAITALL | MSG_DONTWAIT, 0, &r);
	CHECK_EQ(r.n, 10000 + TG_MAX_PLAINTEXT);

	/* Peek across two records, twice, then read them. */
	CHECK_EQ(tg_conn_send(&c, APP, data, 3000, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, data + 3000, 4000, 0), 0);
	if (lx_wait_bytes(c.rx, 7000) != 0)
		goto out;
	lx_recv(c.rx, buf, sizeof(buf), MSG_PEEK, LX_CTL, &r);
	CHECK_EQ(r.n, 7000);
	CHECK_EQ(r.type, APP);
	CHECK_EQ(memcmp(buf, data, 7000), 0);
	lx_recv(c.rx, buf, 5000, MSG_PEEK, 0, &r);
	CHECK_EQ(r.n, 5000);
	CHECK_EQ(r.flags & MSG_EOR, 0);
	lx_recv(c.rx, buf, sizeof(buf), 0, 0, &r);
	CHECK_EQ(r.n, 7000);
	CHECK_EQ(memcmp(buf, data, 7000), 0);

	/* MSG_WAITALL stops at an alert, and at the end of the stream. */
	CHECK_EQ(tg_conn_send(&c, APP, data, 100, 0), 0);
	CHECK_EQ(tg_conn_send(&c, TLS_RLTYPE_ALERT, "\x01\x00", 2, 0), 0);
	n2 = tg_conn_make(&c, APP, data + 100, 50, 0, wire);
	REQUIRE(n2 > 0);
	if (lx_wait_bytes(c.rx, 100) != 0)
		goto out;
	lx_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, LX_CTL, &r);
	CHECK_EQ(r.n, 100);
	CHECK_EQ(r.type, APP);
	CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_ALERT, "\x01\x00", 2), 0);
	CHECK_EQ(tg_write_all(c.tx, wire, (size_t)n2), n2);
	CHECK_EQ(shutdown(c.tx, SHUT_WR), 0);
	lx_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, LX_CTL, &r);
	CHECK_EQ(r.n, 50);
	CHECK_EQ(memcmp(buf, data + 100, 50), 0);
	lx_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, LX_CTL, &r);
	CHECK_EQ(r.n, 0);
out:
	tg_conn_close(&c);
}

/*
 * Empty data records are absorbed: never 0 before the end of the stream,
 * EAGAIN when they are all there is.  An empty record of another type is
 * read, as 0 bytes with its type.
 */
static void
t_empty(void *param)
{
	const struct tg_suite *s = param;
	uint8_t buf[64];
	struct tg_conn c;
	struct lx_rec r;
	int i;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	for (i = 0; i < 3; i++)
		CHECK_EQ(tg_conn_send(&c, APP, "", 0, 0), 0);
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	/* Whatever of the three is decrypted yet goes; nothing is left. */
	CHECK_ERRNO(lx_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT, LX_CTL, &r),
	    EAGAIN);
	CHECK_EQ(tg_conn_send(&c, APP, "x", 1, 0), 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "x", 1), 0);
	if (s->tls_vminor != TLS_MINOR_VER_THREE) {
		/* TLS 1.3 forbids empty records of other types. */
		CHECK_EQ(tg_conn_send(&c, TLS_RLTYPE_ALERT, "", 0, 0), 0);
		CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_ALERT, "", 0), 0);
	}
	CHECK_EQ(tg_conn_send(&c, APP, "", 0, 0), 0);
	CHECK_EQ(shutdown(c.tx, SHUT_WR), 0);
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
out:
	tg_conn_close(&c);
}

/*
 * A record that fails its tag: the data before it is read first (not
 * merged past it), then EBADMSG on every read, as on Linux (the record
 * stays at the head and fails each read again): nothing after it comes.
 */
static void
t_bad_tag(void *param)
{
	const struct tg_suite *s = param;
	static uint8_t wire[TG_MAX_RECORD];
	uint8_t buf[256];
	struct tg_conn c;
	struct lx_rec r;
	ssize_t n;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	CHECK_EQ(tg_conn_send(&c, APP, "before", 6, 0), 0);
	n = tg_conn_make(&c, APP, "forged", 6, 0, wire);
	REQUIRE(n > 0);
	wire[n - 1] ^= 1;
	CHECK_EQ(tg_write_all(c.tx, wire, (size_t)n), n);
	CHECK_EQ(tg_conn_send(&c, APP, "after", 5, 0), 0);
	if (lx_wait_bytes(c.rx, 6) != 0)
		goto out;
	lx_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, LX_CTL, &r);
	CHECK_EQ(r.n, 6);
	CHECK_EQ(memcmp(buf, "before", 6), 0);
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	CHECK_ERRNO(lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r), EBADMSG);
	CHECK_ERRNO(lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r), EBADMSG);
	CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT),
	    EBADMSG);
	CHECK_EQ(tg_wait_readable(c.rx, 0), 1);
out:
	tg_conn_close(&c);
}

/* The generator's next key, as the peer would derive it, and its info. */
static int
next_key(struct tg_conn *c, struct tlsgen *g2, union linux_info *u,
    socklen_t *len)
{
	if (tlsgen_init(g2, c->g.suite, 0) != 0)
		return (-1);
	*len = mk_info(g2, u);
	return (0);
}

/*
 * TLS 1.3 key update, as on Linux: the peer's KeyUpdate reads as a
 * handshake record (with room for its type only), reads after it fail
 * with EKEYEXPIRED and poll shows nothing, and the records under the next
 * key wait, encrypted, until TLS_RX gives it; then they read in order.
 * many: twenty records under the next key come in the KeyUpdate's write,
 * so that none may be decrypted under the old key; nst: the KeyUpdate
 * follows a NewSessionTicket in the same record.
 */
static void
rekey_run(const struct tg_suite *s, int many, int nst)
{
	static uint8_t wire[24 * TG_MAX_RECORD], buf[TG_MAX_PLAINTEXT];
	static const uint8_t ku[] = { 24, 0, 0, 1, 1 };
	uint8_t hs[64], data[TG_MAX_PLAINTEXT];
	union linux_info u;
	struct tlsgen g2;
	struct tg_conn c;
	struct tls_crypto_info info;
	struct pollfd pfd;
	struct lx_rec r;
	size_t off = 0, hslen = 0;
	socklen_t len;
	ssize_t n;
	int i, nrec = many ? 20 : 1, g2ok = 0, req;

	tg_random(data, sizeof(data));
	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1 || next_key(&c, &g2, &u, &len) != 0)
		goto out;
	g2ok = 1;
	if (nst) {
		/* A NewSessionTicket (type 4) of 10 bytes of body. */
		memcpy(hs, "\x04\x00\x00\x0a", 4);
		memset(hs + 4, 7, 10);
		hslen = 14;
	}
	memcpy(hs + hslen, ku, sizeof(ku));
	hslen += sizeof(ku);
	CHECK_EQ(tg_conn_send(&c, APP, "old key", 7, 0), 0);
	n = tg_conn_make(&c, TLS_RLTYPE_HANDSHAKE, hs, hslen, 0, wire);
	REQUIRE(n > 0);
	off = (size_t)n;
	for (i = 0; i < nrec; i++) {
		n = tlsgen_encrypt(&g2, APP, data, 1000 + (size_t)i, 0,
		    wire + off, sizeof(wire) - off);
		REQUIRE(n > 0);
		off += (size_t)n;
	}
	CHECK_EQ(tg_write_all(c.tx, wire, off), (ssize_t)off);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "old key", 7), 0);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EIO);
	CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, hs, hslen), 0);
	CHECK_ERRNO(lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r),
	    EKEYEXPIRED);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EKEYEXPIRED);
	req = -1;
	CHECK_EQ(uktls_rx_rekey_pending(c.rx, &req), 1);
	CHECK_EQ(req, 1);
	pfd.fd = c.rx;
	pfd.events = POLLIN;
	pfd.revents = 0;
	CHECK_EQ(uktls_poll(&pfd, 1, 50), 0);
	/* Still pending: a wrong version or cipher is refused. */
	info.version = TLS_1_2_VERSION;
	info.cipher_type = u.info.cipher_type;
	memcpy(&u.info, &info, sizeof(info));
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), EINVAL);
	len = mk_info(&g2, &u);
	u.info.cipher_type = u.info.cipher_type == TLS_CIPHER_AES_GCM_128 ?
	    TLS_CIPHER_AES_GCM_256 : TLS_CIPHER_AES_GCM_128;
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), EINVAL);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, NULL, len),
	    EINVAL);
	len = mk_info(&g2, &u);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len - 1),
	    EINVAL);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EKEYEXPIRED);
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), 0);
	memset(&u, 0, sizeof(u));
	expect_info(c.rx, s);
	for (i = 0; i < nrec; i++) {
		CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
		/* One record per read: the sizes tell them apart. */
		lx_recv(c.rx, buf, 1000 + (size_t)i, 0, LX_CTL, &r);
		CHECK_EQ(r.n, 1000 + i);
		CHECK_EQ(r.type, APP);
		CHECK_EQ(memcmp(buf, data, 1000 + (size_t)i), 0);
	}
	/* And a rekey the peer did not announce: from the next record on. */
	tlsgen_free(&c.g);
	c.g = g2;
	g2ok = 0;
	if (next_key(&c, &c.g, &u, &len) != 0) {
		harness_fail(__FILE__, __LINE__, "no third key");
		c.g = g2;
		goto out;
	}
	tlsgen_free(&g2);
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), 0);
	memset(&u, 0, sizeof(u));
	CHECK_EQ(tg_conn_send(&c, APP, "third key", 9, 0), 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "third key", 9), 0);
out:
	if (g2ok)
		tlsgen_free(&g2);
	tg_conn_close(&c);
}

/* Another thread gives the next key after a pause (t_rekey_poll_delay). */
struct late_key {
	int fd;
	union linux_info u;
	socklen_t len;
	int ret;
};

static void *
late_key_main(void *arg)
{
	struct late_key *lk = arg;

	tg_sleep_ms(100);
	lk->ret = uktls_setsockopt(lk->fd, SOL_TLS, TLS_RX, &lk->u, lk->len);
	return (NULL);
}

/*
 * Linux's rekey_poll_delay: a reader polls while the KeyUpdate waits for
 * its key; another thread gives the key later, and the poll wakes for the
 * record under the new key that was waiting, encrypted.
 */
static void
t_rekey_poll_delay(void *param)
{
	const struct tg_suite *s = param;
	static const uint8_t ku[] = { 24, 0, 0, 1, 0 };
	static uint8_t wire[2 * TG_MAX_RECORD];
	struct late_key lk;
	struct tlsgen g2;
	struct tg_conn c;
	struct pollfd pfd;
	pthread_t thr;
	size_t off;
	ssize_t n;
	int g2ok = 0, started = 0;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1 || next_key(&c, &g2, &lk.u, &lk.len) != 0)
		goto out;
	g2ok = 1;
	n = tg_conn_make(&c, TLS_RLTYPE_HANDSHAKE, ku, sizeof(ku), 0, wire);
	FAILIF(n <= 0, "records");
	off = (size_t)n;
	n = tlsgen_encrypt(&g2, APP, "later", 5, 0, wire + off,
	    sizeof(wire) - off);
	FAILIF(n <= 0, "records");
	off += (size_t)n;
	CHECK_EQ(tg_write_all(c.tx, wire, off), (ssize_t)off);
	CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, ku, sizeof(ku)), 0);
	lk.fd = c.rx;
	lk.ret = -2;
	FAILIF(pthread_create(&thr, NULL, late_key_main, &lk) != 0,
	    "pthread_create");
	started = 1;
	pfd.fd = c.rx;
	pfd.events = POLLIN;
	pfd.revents = 0;
	CHECK_EQ(uktls_poll(&pfd, 1, 5000 * TG_TIME_MUL), 1);
	CHECK((pfd.revents & POLLIN) != 0);
	pthread_join(thr, NULL);
	started = 0;
	CHECK_EQ(lk.ret, 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "later", 5), 0);
out:
	if (started)
		pthread_join(thr, NULL);
	if (g2ok)
		tlsgen_free(&g2);
	tg_conn_close(&c);
}

static void
t_rekey(void *param)
{
	rekey_run(param, 0, 0);
}

static void
t_rekey_many(void *param)
{
	rekey_run(param, 1, 0);
}

static void
t_rekey_after_ticket(void *param)
{
	rekey_run(param, 0, 1);
}

/*
 * SO_RCVLOWAT counts plaintext and is uktls's once RX is on: Linux's form
 * waits for that many bytes of data records (unless MSG_DONTWAIT, or a
 * record of another type or the end comes first), and the kernel's own is
 * 1, so that a low-water mark set before the enable (here on a socket
 * enabled FreeBSD's way, which reads a record at a time) never holds the
 * ciphertext back from uktls.
 */
static void
t_rcvlowat(void *param)
{
	const struct tg_suite *s = param;
	static uint8_t wire[TG_MAX_RECORD], buf[8192];
	uint8_t data[4000];
	struct tg_delayed_write dw;
	struct tg_conn c, f;
	struct lx_rec r;
	socklen_t l;
	ssize_t n;
	int v, fopen_ok = 0;

	tg_random(data, sizeof(data));
	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	v = 3000;
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &v,
	    sizeof(v)), 0);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &v, 2),
	    EINVAL);
	v = 0;
	l = sizeof(v);
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &v, &l), 0);
	CHECK_EQ(v, 3000);
	l = sizeof(v);
	CHECK_EQ(getsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &v, &l), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(tg_conn_send(&c, APP, data, 1000, 0), 0);
	n = tg_conn_make(&c, APP, data + 1000, 2500, 0, wire);
	REQUIRE(n > 0);
	REQUIRE_EQ(tg_delayed_write_start(&dw, c.tx, wire, (size_t)n, 100),
	    0);
	lx_recv(c.rx, buf, sizeof(buf), 0, LX_CTL, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), n);
	CHECK_EQ(r.n, 3500);
	CHECK_EQ(memcmp(buf, data, 3500), 0);
	/* Without waiting: what there is. */
	CHECK_EQ(tg_conn_send(&c, APP, data, 10, 0), 0);
	if (lx_wait_bytes(c.rx, 10) != 0)
		goto out;
	CHECK_EQ(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), 10);

	REQUIRE_EQ(tg_conn_open(&f, s, 0), 0);
	fopen_ok = 1;
	v = 65536;
	CHECK_EQ(setsockopt(f.rx, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)), 0);
	if (tg_conn_enable(&f) != 0)
		goto out;
	l = sizeof(v);
	CHECK_EQ(uktls_getsockopt(f.rx, SOL_SOCKET, SO_RCVLOWAT, &v, &l), 0);
	CHECK_EQ(v, 65536);
	CHECK_EQ(tg_conn_send(&f, APP, data, 100, 0), 0);
	CHECK_EQ(TG_EXPECT_RECORD(f.rx, APP, data, 100), 0);
out:
	if (fopen_ok)
		tg_conn_close(&f);
	tg_conn_close(&c);
}

/*
 * A wire of records: a KeyUpdate under the generator's key (its handshake
 * bytes hs), then one data record holding "new" under g2.  cut: leave the
 * last 5 bytes of that record out.  Returns its length, or -1.
 */
static ssize_t
ku_wire(struct tg_conn *c, struct tlsgen *g2, uint8_t *wire, size_t size,
    int cut)
{
	static const uint8_t ku[] = { 24, 0, 0, 1, 0 };
	ssize_t n, m;

	n = tg_conn_make(c, TLS_RLTYPE_HANDSHAKE, ku, sizeof(ku), 0, wire);
	if (n <= 0)
		return (-1);
	m = tlsgen_encrypt(g2, APP, "new", 3, 0, wire + n, size - (size_t)n);
	if (m <= 0)
		return (-1);
	return (n + m - (cut ? 5 : 0));
}

/*
 * What follows a KeyUpdate waits for the next key, the end of the stream
 * and its errors too (Linux's EKEYEXPIRED comes first): a whole record and
 * EOF read as the record, then 0, once the key is in; a record cut by EOF
 * is EMSGSIZE then (uktls never takes a cut record for a clean end); and
 * shutdown(SHUT_RD) ends the wait for a key with the end of the stream.
 */
static void
t_rekey_end(void *param)
{
	const struct tg_suite *s = param;
	static const uint8_t ku[] = { 24, 0, 0, 1, 0 };
	static uint8_t wire[2 * TG_MAX_RECORD];
	uint8_t buf[64];
	union linux_info u;
	struct tlsgen g2;
	struct tg_conn c;
	socklen_t len;
	ssize_t n;
	int cut, g2ok;

	for (cut = 0; cut < 3; cut++) {
		g2ok = 0;
		REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
		if (linux_enable(&c) == -1 || next_key(&c, &g2, &u, &len) != 0)
			goto next;
		g2ok = 1;
		n = ku_wire(&c, &g2, wire, sizeof(wire), cut == 1);
		FAILIF(n <= 0, "records");
		CHECK_EQ(tg_write_all(c.tx, wire, (size_t)n), n);
		CHECK_EQ(shutdown(c.tx, SHUT_WR), 0);
		CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, ku, sizeof(ku)),
		    0);
		/* Time for the end of the stream to come in behind it. */
		tg_sleep_ms(20);
		CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EKEYEXPIRED);
		if (cut == 2) {
			CHECK_EQ(uktls_shutdown(c.rx, SHUT_RD), 0);
			CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
			goto next;
		}
		CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), 0);
		if (cut == 1) {
			CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
			CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)),
			    EMSGSIZE);
			goto next;
		}
		CHECK_EQ(LX_EXPECT(c.rx, APP, "new", 3), 0);
		CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
next:
		if (g2ok)
			tlsgen_free(&g2);
		tg_conn_close(&c);
	}
	return;
out:
	if (g2ok)
		tlsgen_free(&g2);
	tg_conn_close(&c);
}

/*
 * TLS_RX given while a record is out for decryption (from the test hook,
 * on the thread decrypting it): the next key applies from the record
 * after it.  The record out is the KeyUpdate itself (the key given ahead
 * answers it: no EKEYEXPIRED) or, with no KeyUpdate, a data record.
 */
static atomic_int hook_fd = -1;
static union linux_info hook_info;
static socklen_t hook_len;
static atomic_int hook_result = -2;

static void
rekey_hook(struct socket *so)
{
	int fd = atomic_load(&hook_fd);

	if (so->so_fd != fd || !atomic_compare_exchange_strong(&hook_fd, &fd,
	    -1))
		return;
	atomic_store(&hook_result, uktls_setsockopt(fd, SOL_TLS, TLS_RX,
	    &hook_info, hook_len));
}

static void
t_rekey_while_out(void *param)
{
	const struct tg_suite *s = param;
	static const uint8_t ku[] = { 24, 0, 0, 1, 0 };
	static uint8_t wire[2 * TG_MAX_RECORD];
	struct tlsgen g2;
	struct tg_conn c;
	ssize_t n;
	int kurec, g2ok;

	for (kurec = 0; kurec < 2; kurec++) {
		g2ok = 0;
		REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
		if (linux_enable(&c) == -1 ||
		    next_key(&c, &g2, &hook_info, &hook_len) != 0)
			goto next;
		g2ok = 1;
		if (kurec)
			n = ku_wire(&c, &g2, wire, sizeof(wire), 0);
		else {
			n = tg_conn_make(&c, APP, "old", 3, 0, wire);
			if (n > 0)
				n += tlsgen_encrypt(&g2, APP, "new", 3, 0,
				    wire + n, sizeof(wire) - (size_t)n);
		}
		FAILIF(n <= 0, "records");
		atomic_store(&hook_result, -2);
		atomic_store(&hook_fd, c.rx);
		ktls_test_detach_hook = rekey_hook;
		CHECK_EQ(tg_write_all(c.tx, wire, (size_t)n), n);
		if (kurec)
			CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, ku,
			    sizeof(ku)), 0);
		else
			CHECK_EQ(LX_EXPECT(c.rx, APP, "old", 3), 0);
		CHECK_EQ(LX_EXPECT(c.rx, APP, "new", 3), 0);
		CHECK_EQ(atomic_load(&hook_result), 0);
next:
		ktls_test_detach_hook = NULL;
		memset(&hook_info, 0, sizeof(hook_info));
		if (g2ok)
			tlsgen_free(&g2);
		tg_conn_close(&c);
	}
	return;
out:
	ktls_test_detach_hook = NULL;
	if (g2ok)
		tlsgen_free(&g2);
	tg_conn_close(&c);
}

/*
 * The handshake stream is followed across records: a NewSessionTicket
 * whose body spans two records, then a KeyUpdate whose header is cut by
 * the next two record boundaries, is found when its last byte comes.
 */
static void
t_keyupdate_split(void *param)
{
	const struct tg_suite *s = param;
	static uint8_t wire[4 * TG_MAX_RECORD];
	/* NST (type 4, 10 bytes of body), then KeyUpdate 24 0 0 1 1 (its
	 * request_update byte alone in the last record). */
	static const uint8_t hs[] = { 4, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9,
	    10, 24, 0, 0, 1, 1 };
	static const size_t cuts[] = { 0, 9, 16, 18, sizeof(hs) };
	union linux_info u;
	struct tlsgen g2;
	struct tg_conn c;
	socklen_t len;
	size_t off = 0, i;
	ssize_t n;
	uint8_t buf[64];
	int g2ok = 0, req;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1 || next_key(&c, &g2, &u, &len) != 0)
		goto out;
	g2ok = 1;
	for (i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++) {
		n = tg_conn_make(&c, TLS_RLTYPE_HANDSHAKE, hs + cuts[i],
		    cuts[i + 1] - cuts[i], 0, wire + off);
		FAILIF(n <= 0, "records");
		off += (size_t)n;
	}
	n = tlsgen_encrypt(&g2, APP, "new", 3, 0, wire + off,
	    sizeof(wire) - off);
	FAILIF(n <= 0, "records");
	off += (size_t)n;
	CHECK_EQ(tg_write_all(c.tx, wire, off), (ssize_t)off);
	for (i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++)
		CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, hs + cuts[i],
		    cuts[i + 1] - cuts[i]), 0);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EKEYEXPIRED);
	req = -1;
	CHECK_EQ(uktls_rx_rekey_pending(c.rx, &req), 1);
	CHECK_EQ(req, 1);
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), 0);
	req = -1;
	CHECK_EQ(uktls_rx_rekey_pending(c.rx, &req), 0);
	CHECK_EQ(req, 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "new", 3), 0);
out:
	if (g2ok)
		tlsgen_free(&g2);
	tg_conn_close(&c);
}

/*
 * Linux's read-back of the whole structure (its rekey_getsockopt): key,
 * salt and IV as TLS_RX gave them (TLS 1.2's unused iv too) and rec_seq
 * the next record's, moving on as records are read; after a rekey, the
 * new key from the TLS_RX on.
 */
static void
t_keys(void *param)
{
	const struct tg_suite *s = param;
	static const uint8_t ku[] = { 24, 0, 0, 1, 0 };
	union linux_info u, got, u2;
	struct tlsgen g2;
	struct tg_conn c;
	socklen_t len, glen;
	int g2ok = 0;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	len = mk_info(&c.g, &u);
	REQUIRE_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len), 0);
	c.enabled = 1;
	memset(&got, 0xa5, sizeof(got));
	glen = len;
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &got, &glen), 0);
	CHECK_EQ(glen, len);
	CHECK_EQ(memcmp(&got, &u, len), 0);
	/* Three records read: rec_seq moves on by three. */
	CHECK_EQ(tg_conn_send(&c, APP, "one", 3, 0), 0);
	CHECK_EQ(tg_conn_send(&c, APP, "two", 3, 0), 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "onetwo", 6), 0);
	CHECK_EQ(tg_conn_send(&c, APP, "three", 5, 0), 0);
	CHECK_EQ(LX_EXPECT(c.rx, APP, "three", 5), 0);
	glen = len;
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &got, &glen), 0);
	put_seq((uint8_t *)&u + len - 8, c.g.seqno0 + 3);
	CHECK_EQ(memcmp(&got, &u, len), 0);
	if (s->tls_vminor != TLS_MINOR_VER_THREE)
		goto out;
	if (next_key(&c, &g2, &u2, &len) != 0)
		goto out;
	g2ok = 1;
	CHECK_EQ(tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, ku, sizeof(ku), 0), 0);
	CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, ku, sizeof(ku)), 0);
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u2, len), 0);
	glen = len;
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &got, &glen), 0);
	CHECK_EQ(memcmp(&got, &u2, len), 0);
out:
	if (g2ok)
		tlsgen_free(&g2);
	memset(&u, 0, sizeof(u));
	memset(&got, 0, sizeof(got));
	tg_conn_close(&c);
}

/*
 * A KeyUpdate asking for one back, followed in its record by another
 * message (RFC 8446 5.1 forbids it; the key changes after the KeyUpdate
 * all the same): the request is the KeyUpdate's, not reset by what follows.
 */
static void
t_keyupdate_trailing(void *param)
{
	const struct tg_suite *s = param;
	static const uint8_t hs[] = { 24, 0, 0, 1, 1, 4, 0, 0, 0 };
	uint8_t buf[64];
	struct tg_conn c;
	int req = -1;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	CHECK_EQ(tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, hs, sizeof(hs), 0),
	    0);
	CHECK_EQ(LX_EXPECT(c.rx, TLS_RLTYPE_HANDSHAKE, hs, sizeof(hs)), 0);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EKEYEXPIRED);
	CHECK_EQ(uktls_rx_rekey_pending(c.rx, &req), 1);
	CHECK_EQ(req, 1);
out:
	tg_conn_close(&c);
}

/*
 * A malformed header, checked in Linux's order (tls_rx_msg_size): the
 * length's upper bound (EMSGSIZE), then under the explicit nonce and the
 * tag (EBADMSG), then the version (EINVAL), then uktls's TLS 1.3 outer
 * type (EINVAL).  Each ends the stream: the error stays.
 */
static void
t_bad_header(void *param)
{
	static const struct {
		uint8_t h[5];
		int err;
	} cases[] = {
		{ { 0x55, 0x55, 0x55, 0x55, 0x55 }, EMSGSIZE },
		{ { 0x17, 0x55, 0x55, 0x55, 0x55 }, EMSGSIZE },
		{ { 0x55, 0x03, 0x03, 0x55, 0x55 }, EMSGSIZE },
		{ { 0x17, 0x03, 0x03, 0x55, 0x55 }, EMSGSIZE },
		{ { 0x17, 0x55, 0x55, 0x00, 0x01 }, EBADMSG },
		{ { 0x17, 0x03, 0x03, 0x00, 0x01 }, EBADMSG },
		{ { 0x17, 0x03, 0x01, 0x00, 0x40 }, EINVAL },
		{ { 0x16, 0x03, 0x03, 0x00, 0x40 }, EINVAL }, /* 1.3 only */
	};
	const struct tg_suite *s = param;
	uint8_t wire[5 + 0x40], buf[64];
	struct tg_conn c;
	size_t i, n = sizeof(cases) / sizeof(cases[0]);

	if (s->tls_vminor != TLS_MINOR_VER_THREE)
		n--;
	for (i = 0; i < n; i++) {
		REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
		if (linux_enable(&c) == -1) {
			tg_conn_close(&c);
			return;
		}
		memcpy(wire, cases[i].h, 5);
		memset(wire + 5, 0x55, sizeof(wire) - 5);
		CHECK_EQ(tg_write_all(c.tx, wire, sizeof(wire)),
		    (ssize_t)sizeof(wire));
		CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
		CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT),
		    cases[i].err);
		CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT),
		    cases[i].err);
		tg_conn_close(&c);
	}
}

/*
 * A peek for more than the socket buffer holds (MSG_WAITALL, or an
 * SO_RCVLOWAT as high) returns what the buffer holds rather than wait for
 * a read that never comes; the stream then reads whole.
 */
static void
t_peek_big(void *param)
{
	const struct tg_suite *s = param;
	enum { NREC = 24 };
	static uint8_t wire[NREC * TG_MAX_RECORD], data[TG_MAX_PLAINTEXT];
	static uint8_t buf[NREC * TG_MAX_PLAINTEXT];
	struct tg_delayed_write dw;
	struct tg_conn c;
	struct lx_rec r;
	size_t off = 0, total = (size_t)NREC * TG_MAX_PLAINTEXT, i;
	ssize_t n;
	int v, pass;

	tg_random(data, sizeof(data));
	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	if (linux_enable(&c) == -1)
		goto out;
	for (i = 0; i < NREC; i++) {
		n = tg_conn_make(&c, APP, data, sizeof(data), 0, wire + off);
		REQUIRE(n > 0);
		off += (size_t)n;
	}
	REQUIRE_EQ(tg_delayed_write_start(&dw, c.tx, wire, off, 0), 0);
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			v = -1;
			CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET,
			    SO_RCVLOWAT, &v, sizeof(v)), 0);
		}
		lx_recv(c.rx, buf, total, MSG_PEEK | (pass == 0 ?
		    MSG_WAITALL : 0), LX_CTL, &r);
		CHECK(r.n > 0 && (size_t)r.n < total);
		CHECK_EQ(r.type, APP);
		CHECK_EQ(r.n > 0 ? memcmp(buf, data, r.n < TG_MAX_PLAINTEXT ?
		    (size_t)r.n : sizeof(data)) : 0, 0);
	}
	v = 1;
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &v,
	    sizeof(v)), 0);
	lx_recv(c.rx, buf, total, MSG_WAITALL, 0, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), (ssize_t)off);
	CHECK_EQ(r.n, (ssize_t)total);
	for (i = 0; i < NREC && r.n == (ssize_t)total; i++)
		CHECK_EQ(memcmp(buf + i * sizeof(data), data, sizeof(data)), 0);
out:
	tg_conn_close(&c);
}

int
main(int argc, char **argv)
{

	tg_register_suites("receive", t_receive, 0, TG_NSUITES);
	tg_register_suites("near_wrap", t_near_wrap, 0, TG_NSUITES);
	tg_register_suites("no_pad", t_no_pad, 0, TG_NSUITES);
	tg_register_suites("freebsd_enable_info", t_freebsd_enable_info, 0,
	    TG_NSUITES);
	tg_register_suites("merge", t_merge, 0, TG_NSUITES);
	tg_register_suites("partial", t_partial, 0, TG_NSUITES);
	tg_register_suites("waitall_peek", t_waitall_peek, 0, TG_NSUITES);
	tg_register_suites("empty", t_empty, 0, TG_NSUITES);
	tg_register_suites("bad_tag", t_bad_tag, 0, TG_NSUITES);
	tg_register_suites("bad_header", t_bad_header, 0, TG_NSUITES);
	tg_register_suites("rcvlowat", t_rcvlowat, 0, TG_NSUITES);
	tg_register_suites("peek_big", t_peek_big, 0, TG_NSUITES);
	tg_register_suites("rekey", t_rekey, TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("rekey_many", t_rekey_many, TG_FIRST_TLS13,
	    TG_NTLS13);
	tg_register_suites("rekey_after_ticket", t_rekey_after_ticket,
	    TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("rekey_end", t_rekey_end, TG_FIRST_TLS13,
	    TG_NTLS13);
	tg_register_suites("rekey_while_out", t_rekey_while_out,
	    TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("keyupdate_split", t_keyupdate_split,
	    TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("keyupdate_trailing", t_keyupdate_trailing,
	    TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("rekey_poll_delay", t_rekey_poll_delay,
	    TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("keys", t_keys, 0, TG_NSUITES);
	return (harness_main(argc, argv));
}
