/*
 * Linux kernel TLS's receive enable, uktls_setsockopt(fd, SOL_TLS, TLS_RX,
 * &crypto_info, sizeof(crypto_info)), through the public API over loopback
 * TCP with records made by tlsgen.
 *
 * For each of the six suites the Linux structure is built from the
 * generator's key, IV and starting sequence number the way a Linux kTLS
 * program fills it from its TLS library, and records must then read back
 * with FreeBSD's semantics (one record per read, TLS_GET_RECORD), also
 * across the last sequence numbers before 2^64.  Then every way the enable
 * can be refused, in the order Linux checks, and the TLS_RX read-back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
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

/* Send and read back records of a few sizes and types. */
static void
exchange(struct tg_conn *c)
{
	static const size_t sizes[] = { 0, 1, 100, 4096, TG_MAX_PLAINTEXT };
	static uint8_t buf[TG_MAX_PLAINTEXT];
	size_t i;

	tg_random(buf, sizeof(buf));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK_EQ(tg_conn_send(c, APP, buf, sizes[i], i % 2), 0);
		CHECK_EQ(TG_EXPECT_RECORD(c->rx, APP, buf, sizes[i]), 0);
	}
	CHECK_EQ(tg_conn_send(c, TLS_RLTYPE_ALERT, "\x01\x00", 2, 0), 0);
	CHECK_EQ(TG_EXPECT_RECORD(c->rx, TLS_RLTYPE_ALERT, "\x01\x00", 2), 0);
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

/* Enable the Linux way, receive, and read the settings back. */
static void
t_receive(void *param)
{
	const struct tg_suite *s = param;
	union linux_info u, big;
	struct tg_conn c;
	socklen_t len;

	REQUIRE_EQ(tg_conn_open(&c, s, 0), 0);
	CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_NONE);
	if (linux_enable(&c) == -1)
		goto out;
	CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_SW);
	exchange(&c);
	expect_info(c.rx, s);

	/* The keys are never read back: any length but 4 is refused. */
	len = mk_info(&c.g, &u);
	memset(&big, 0, sizeof(big));
	CHECK_ERRNO(uktls_getsockopt(c.rx, SOL_TLS, TLS_RX, &big, &len),
	    EINVAL);
	len = sizeof(big);
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

	/* Enabled once, by either interface. */
	len = mk_info(&c.g, &u);
	CHECK_ERRNO(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX, &u, len),
	    EALREADY);
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
		CHECK_EQ(TG_EXPECT_RECORD(c.rx, APP, msg, sizeof(msg)), 0);
	}
out:
	tg_conn_close(&c);
}

/* A TCP_RXTLS_ENABLE session reads back through TLS_RX too. */
static void
t_freebsd_enable_info(void *param)
{
	const struct tg_suite *s = param;
	struct tg_conn c;

	REQUIRE_EQ(tg_conn_open(&c, s, 1), 0);
	expect_info(c.rx, s);
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
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    listen(fd, 1) == 0) {
			CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, &u,
			    len), ENOTCONN);
			CHECK_ERRNO(uktls_setsockopt(fd, SOL_TLS, TLS_RX, NULL,
			    0), ENOTCONN);
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
	CHECK_EQ(TG_EXPECT_RECORD(c.rx, APP, msg, sizeof(msg)), 0);
	v = 0;
	if (tls13)
		CHECK_EQ(uktls_setsockopt(c.rx, SOL_TLS, TLS_RX_EXPECT_NO_PAD,
		    &v, sizeof(v)), 0);
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
	return (harness_main(argc, argv));
}
