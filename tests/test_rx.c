/*
 * Receive tests for uktls, through the public API only, over real loopback
 * TCP with records made by tlsgen (OpenSSL EVP) under random keys and random
 * starting sequence numbers.
 *
 * The first part ports the receive cases of FreeBSD's
 * tests/sys/kern/ktls_test.c for the six AEAD suites (TLS 1.2 and 1.3 with
 * AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305) and its enable-time cases.
 * The second part checks the receive semantics: partial reads, MSG_PEEK,
 * MSG_WAITALL, non-blocking reads, poll and the event descriptor, records of
 * other content types, empty records, error positions and stickiness, end of
 * stream, close while a reader blocks, descriptor reuse and data queued
 * before the enable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ktls.h"
#include "socket.h"
#include "tlsgen.h"
#include "uktls.h"

#define APP TLS_RLTYPE_APP

static uint8_t *
xmalloc(size_t n)
{
	uint8_t *p;

	p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		abort();
	return (p);
}

/*
 * Encrypt one record at out; returns its length, or 0 after reporting a
 * failure (a record is never 0 bytes long).
 */
static size_t
mk(struct tg_conn *c, uint8_t *out, uint8_t type, const void *p, size_t len,
    size_t pad)
{
	ssize_t n;

	n = tg_conn_make(c, type, p, len, pad, out);
	return (n < 0 ? 0 : (size_t)n);
}

static int
send_raw(struct tg_conn *c, const void *buf, size_t len)
{

	if (tg_write_all(c->tx, buf, len) != (ssize_t)len) {
		harness_fail(__FILE__, __LINE__, "write %zu bytes: %s", len,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

static int
rx_mode(int fd)
{
	socklen_t len = sizeof(int);
	int mode = -1;

	if (uktls_getsockopt(fd, IPPROTO_TCP, TCP_RXTLS_MODE, &mode,
	    &len) == -1)
		return (-1);
	if (len != sizeof(int))
		return (-2);
	return (mode);
}

static int
poll_one(int fd, short events, int ms, short *revents)
{
	struct pollfd pfd;
	int r;

	pfd.fd = fd;
	pfd.events = events;
	pfd.revents = 0;
	r = uktls_poll(&pfd, 1, ms);
	*revents = pfd.revents;
	return (r);
}

/* poll(2) on a plain descriptor such as uktls_event_fd()'s. */
static int
sys_poll_one(int fd, int ms)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, ms) <= 0)
		return (0);
	return ((pfd.revents & POLLIN) != 0);
}

/* ==== FreeBSD ktls_test.c receive catalog =========================== */

/*
 * Send total bytes of application data in records of at most max_rec bytes
 * (TLS 1.3: with pad zero bytes of padding each), in one write, and receive
 * them record by record.
 */
static void
rx_data(const struct tg_suite *s, size_t total, size_t pad)
{
	struct tg_conn c;
	uint8_t *plain, *wire;
	size_t max_rec, off, n, wlen, nrec, i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	/* TLSInnerPlaintext (content, type, padding) stays within 2^14 + 1. */
	max_rec = TG_MAX_PLAINTEXT - (tlsgen_is_tls13(&c.g) ? pad : 0);
	plain = xmalloc(total);
	tg_random(plain, total);
	nrec = (total + max_rec - 1) / max_rec;
	wire = xmalloc(nrec * TG_MAX_RECORD);
	wlen = 0;
	for (off = 0; off < total; off += n) {
		n = total - off < max_rec ? total - off : max_rec;
		i = mk(&c, wire + wlen, APP, plain + off, n, pad);
		if (i == 0)
			goto out;
		wlen += i;
	}
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	for (off = 0; off < total; off += n) {
		n = total - off < max_rec ? total - off : max_rec;
		if (TG_EXPECT_RECORD(c.rx, APP, plain + off, n) == -1)
			break;
	}
out:
	free(wire);
	free(plain);
	tg_conn_close(&c);
}

static void
t_short(void *arg)
{

	rx_data(arg, 64, 0);
}

static void
t_long(void *arg)
{

	rx_data(arg, 64 * 1024, 0);
}

static void
t_short_padded(void *arg)
{

	rx_data(arg, 64, 16);
}

static void
t_long_padded(void *arg)
{

	rx_data(arg, 64 * 1024, 15);
}

enum corrupt {
	C_DATA,      /* first ciphertext byte ^ 1 */
	C_MAC,       /* first tag byte ^ 1 */
	C_IV,        /* explicit nonce ^ 1 */
	C_MAJOR,     /* version major 4 */
	C_MINOR,     /* version minor 4 */
	C_TYPE,      /* TLS 1.3 outer type 24 */
	C_TRUNC,     /* half the record, then EOF */
	C_SMALL,     /* one byte below the minimum length, zeros, EOF */
	C_OVERSIZE,  /* length field 32768, no EOF */
	C_SHORTHDR,  /* length field 6, EOF */
	C_MAXPLUS1,  /* length field one above the version's maximum */
};

/*
 * One record of 64 bytes of application data, damaged as kind says, must
 * make the receive fail with errno err.
 */
static void
rx_bad(const struct tg_suite *s, enum corrupt kind, int err)
{
	struct tg_conn c;
	uint8_t p[64], *rec;
	size_t n, wlen, minlen, maxlen;
	int shut = 0;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	tg_random(p, sizeof(p));
	n = mk(&c, rec, APP, p, sizeof(p), 0);
	if (n == 0)
		goto out;
	wlen = n;
	minlen = tlsgen_min_length_field(&c.g);
	maxlen = tlsgen_is_tls13(&c.g) ? TG_MAX_PLAINTEXT + 256 :
	    TG_MAX_PLAINTEXT + tlsgen_hlen(&c.g) - TG_HDR_LEN + TG_TAG_LEN;
	switch (kind) {
	case C_DATA:
		rec[tlsgen_hlen(&c.g)] ^= 1;
		break;
	case C_MAC:
		rec[n - TG_TAG_LEN] ^= 1;
		break;
	case C_IV:
		rec[TG_OFF_EXPLICIT_NONCE] ^= 1;
		break;
	case C_MAJOR:
		rec[TG_OFF_VMAJOR] = TLS_MAJOR_VER_ONE + 1;
		break;
	case C_MINOR:
		rec[TG_OFF_VMINOR] = TLS_MINOR_VER_TWO + 1;
		break;
	case C_TYPE:
		rec[TG_OFF_TYPE] = TLS_RLTYPE_APP + 1;
		break;
	case C_TRUNC:
		wlen = n / 2;
		shut = 1;
		break;
	case C_SMALL:
		memset(rec + TG_HDR_LEN, 0, minlen - 1);
		tg_set_length_field(rec, (unsigned int)(minlen - 1));
		wlen = TG_HDR_LEN + minlen - 1;
		shut = 1;
		break;
	case C_OVERSIZE:
		tg_set_length_field(rec, 32768);
		break;
	case C_SHORTHDR:
		tg_set_length_field(rec, 6);
		wlen = TG_HDR_LEN + 6;
		shut = 1;
		break;
	case C_MAXPLUS1:
		tg_set_length_field(rec, (unsigned int)(maxlen + 1));
		break;
	}
	if (send_raw(&c, rec, wlen) == -1)
		goto out;
	if (shut)
		shutdown(c.tx, SHUT_WR);
	TG_EXPECT_ERROR(c.rx, err);
out:
	free(rec);
	tg_conn_close(&c);
}

static void
t_bad_data(void *arg)
{

	rx_bad(arg, C_DATA, EBADMSG);
}

static void
t_bad_mac(void *arg)
{

	rx_bad(arg, C_MAC, EBADMSG);
}

static void
t_truncated_record(void *arg)
{

	rx_bad(arg, C_TRUNC, EMSGSIZE);
}

static void
t_bad_major(void *arg)
{

	rx_bad(arg, C_MAJOR, EINVAL);
}

static void
t_bad_minor(void *arg)
{

	rx_bad(arg, C_MINOR, EINVAL);
}

static void
t_small_record(void *arg)
{

	rx_bad(arg, C_SMALL, EMSGSIZE);
}

static void
t_oversized_record(void *arg)
{

	rx_bad(arg, C_OVERSIZE, EMSGSIZE);
}

static void
t_bad_iv(void *arg)
{

	rx_bad(arg, C_IV, EBADMSG);
}

static void
t_short_header(void *arg)
{

	rx_bad(arg, C_SHORTHDR, EMSGSIZE);
}

static void
t_bad_type(void *arg)
{

	rx_bad(arg, C_TYPE, EINVAL);
}

static void
t_oversized_by_one(void *arg)
{

	rx_bad(arg, C_MAXPLUS1, EMSGSIZE);
}

/*
 * The largest legal records: 2^14 bytes of plaintext; for TLS 1.3 also a
 * record whose ciphertext is the RFC 8446 maximum of 2^14 + 256 bytes
 * (2^14 bytes of content, the type and 239 bytes of padding).
 */
static void
t_max_record(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t *p, *rec;
	size_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	p = xmalloc(TG_MAX_PLAINTEXT);
	rec = xmalloc(TG_MAX_RECORD);
	tg_random(p, TG_MAX_PLAINTEXT);
	n = mk(&c, rec, APP, p, TG_MAX_PLAINTEXT, 0);
	if (n == 0 || send_raw(&c, rec, n) == -1)
		goto out;
	if (TG_EXPECT_RECORD(c.rx, APP, p, TG_MAX_PLAINTEXT) == -1)
		goto out;
	if (tlsgen_is_tls13(&c.g)) {
		n = mk(&c, rec, APP, p, TG_MAX_PLAINTEXT, 239);
		CHECK_EQ(n, TG_HDR_LEN + TG_MAX_PLAINTEXT + 256);
		if (n == 0 || send_raw(&c, rec, n) == -1)
			goto out;
		TG_EXPECT_RECORD(c.rx, APP, p, TG_MAX_PLAINTEXT);
	}
out:
	free(rec);
	free(p);
	tg_conn_close(&c);
}

/* TLS 1.3: 2^14 + 1 bytes of content (authentic) -> EMSGSIZE. */
static void
t_tls13_content_overflow(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t *p, *rec;
	size_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	p = xmalloc(TG_MAX_PLAINTEXT + 1);
	rec = xmalloc(TG_MAX_RECORD);
	tg_random(p, TG_MAX_PLAINTEXT + 1);
	n = mk(&c, rec, APP, p, TG_MAX_PLAINTEXT + 1, 0);
	if (n != 0 && send_raw(&c, rec, n) == 0)
		TG_EXPECT_ERROR(c.rx, EMSGSIZE);
	free(rec);
	free(p);
	tg_conn_close(&c);
}

/* TLS 1.3: an authentic record whose plaintext is all zeros -> EBADMSG. */
static void
t_tls13_no_type(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t zeros[32], *rec, p[16];
	size_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	memset(zeros, 0, sizeof(zeros));
	rec = xmalloc(TG_MAX_RECORD);
	/* Type 0 with 31 zero bytes of "padding" is an all-zero plaintext. */
	n = mk(&c, rec, 0, NULL, 0, 31);
	if (n == 0 || send_raw(&c, rec, n) == -1)
		goto out;
	if (TG_EXPECT_ERROR(c.rx, EBADMSG) == -1)
		goto out;
	/* The connection survives an authentication failure. */
	tg_random(p, sizeof(p));
	if (tg_conn_send(&c, APP, p, sizeof(p), 0) == 0)
		TG_EXPECT_RECORD(c.rx, APP, p, sizeof(p));
out:
	free(rec);
	tg_conn_close(&c);
}

/* ==== enable-time cases ============================================= */

struct enable_case {
	const char *name;
	int cipher;
	int key_len;
	int auth;
	int auth_key_len;
	uint8_t vminor;
	int iv_len;
	int err;
};

#define SHA1 CRYPTO_SHA1_HMAC, 20
#define SHA256 CRYPTO_SHA2_256_HMAC, 32
#define SHA384 CRYPTO_SHA2_384_HMAC, 48
#define CBC128 CRYPTO_AES_CBC, 16
#define CBC256 CRYPTO_AES_CBC, 32
#define GCM128 CRYPTO_AES_NIST_GCM_16, 16
#define CHACHA CRYPTO_CHACHA20_POLY1305, 32
#define NOAUTH 0, 0

static struct enable_case enable_invalid[] = {
	{ "cbc_1_0_sha256", CBC128, SHA256, TLS_MINOR_VER_ZERO, 16, EINVAL },
	{ "cbc_1_0_sha384", CBC128, SHA384, TLS_MINOR_VER_ZERO, 16, EINVAL },
	{ "gcm_1_0", GCM128, NOAUTH, TLS_MINOR_VER_ZERO, 4, EINVAL },
	{ "gcm_1_1", GCM128, NOAUTH, TLS_MINOR_VER_ONE, 4, EINVAL },
	{ "chacha_1_0", CHACHA, NOAUTH, TLS_MINOR_VER_ZERO, 12, EINVAL },
	{ "chacha_1_1", CHACHA, NOAUTH, TLS_MINOR_VER_ONE, 12, EINVAL },
	{ "cbc_1_1_sha256", CBC128, SHA256, TLS_MINOR_VER_ONE, 16, EINVAL },
	{ "cbc_1_1_sha384", CBC128, SHA384, TLS_MINOR_VER_ONE, 16, EINVAL },
	{ "cbc_1_3_sha1", CBC128, SHA1, TLS_MINOR_VER_THREE, 16, EINVAL },
	{ "cbc_1_3_sha256", CBC128, SHA256, TLS_MINOR_VER_THREE, 16, EINVAL },
	{ "cbc_1_3_sha384", CBC128, SHA384, TLS_MINOR_VER_THREE, 16, EINVAL },
};

static struct enable_case enable_unsupported[] = {
	{ "cbc_1_0_sha1", CBC128, SHA1, TLS_MINOR_VER_ZERO, 16,
	    EPROTONOSUPPORT },
};

/* Valid CBC combinations: uktls does not decrypt CBC. */
static struct enable_case enable_cbc[] = {
	{ "aes128_cbc_1_1_sha1", CBC128, SHA1, TLS_MINOR_VER_ONE, 16, ENOTSUP },
	{ "aes256_cbc_1_1_sha1", CBC256, SHA1, TLS_MINOR_VER_ONE, 16, ENOTSUP },
	{ "aes128_cbc_1_2_sha1", CBC128, SHA1, TLS_MINOR_VER_TWO, 16, ENOTSUP },
	{ "aes256_cbc_1_2_sha1", CBC256, SHA1, TLS_MINOR_VER_TWO, 16, ENOTSUP },
	{ "aes128_cbc_1_2_sha256", CBC128, SHA256, TLS_MINOR_VER_TWO, 16,
	    ENOTSUP },
	{ "aes256_cbc_1_2_sha256", CBC256, SHA256, TLS_MINOR_VER_TWO, 16,
	    ENOTSUP },
	{ "aes128_cbc_1_2_sha384", CBC128, SHA384, TLS_MINOR_VER_TWO, 16,
	    ENOTSUP },
	{ "aes256_cbc_1_2_sha384", CBC256, SHA384, TLS_MINOR_VER_TWO, 16,
	    ENOTSUP },
};

static const char *
enable_case_name(const void *p)
{

	return (((const struct enable_case *)p)->name);
}

/*
 * After a refused enable the socket must be untouched: mode NONE, plain
 * reads, and a valid enable must still work.
 */
static void
check_still_plain(int rx, int tx)
{
	struct tlsgen g;
	struct tls_enable en;
	char buf[16];
	ssize_t n;

	CHECK_EQ(rx_mode(rx), TCP_TLS_MODE_NONE);
	if (tg_write_all(tx, "plain", 5) != 5) {
		harness_fail(__FILE__, __LINE__, "write: %s", strerror(errno));
		return;
	}
	n = uktls_recv(rx, buf, sizeof(buf), 0);
	CHECK_EQ(n, 5);
	CHECK(n == 5 && memcmp(buf, "plain", 5) == 0);
	REQUIRE(tlsgen_init(&g, &tg_suites[TG_FIRST_TLS13], 7) == 0);
	tlsgen_enable(&g, &en);
	CHECK_EQ(uktls_setsockopt(rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
	    sizeof(en)), 0);
	CHECK_EQ(rx_mode(rx), TCP_TLS_MODE_SW);
	tlsgen_free(&g);
}

static void
t_enable_case(void *arg)
{
	const struct enable_case *ec = arg;
	struct tls_enable en;
	uint8_t key[32], iv[16], akey[64];
	int rx, tx;

	REQUIRE(tg_tcp_pair(&rx, &tx) == 0);
	tg_random(key, sizeof(key));
	tg_random(iv, sizeof(iv));
	tg_random(akey, sizeof(akey));
	memset(&en, 0, sizeof(en));
	en.cipher_key = key;
	en.cipher_key_len = ec->key_len;
	en.iv = iv;
	en.iv_len = ec->iv_len;
	en.auth_key = ec->auth != 0 ? akey : NULL;
	en.auth_key_len = ec->auth_key_len;
	en.cipher_algorithm = ec->cipher;
	en.auth_algorithm = ec->auth;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = ec->vminor;
	CHECK_ERRNO(uktls_setsockopt(rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
	    sizeof(en)), ec->err);
	check_still_plain(rx, tx);
	uktls_close(rx);
	close(tx);
}

/* Malformed parameters of an otherwise valid AEAD enable: EINVAL each. */
TEST(invalid_params)
{
	struct tls_enable good, en;
	struct tlsgen g13, g12;
	int rx, tx, i;

	REQUIRE(tg_tcp_pair(&rx, &tx) == 0);
	REQUIRE(tlsgen_init(&g13, &tg_suites[TG_FIRST_TLS13], 1) == 0);
	REQUIRE(tlsgen_init(&g12, &tg_suites[TG_FIRST_TLS12_GCM], 1) == 0);
	tlsgen_enable(&g13, &good);
	for (i = 0; i < 15; i++) {
		en = good;
		switch (i) {
		case 0: en.flags = 1; break;
		case 1: en.cipher_key_len = 24; break;
		case 2: en.cipher_key_len = 0; break;
		case 3: en.cipher_key = NULL; break;
		case 4: en.iv_len = 4; break;
		case 5: en.iv = NULL; break;
		case 6: en.tls_vmajor = 2; break;
		case 7: en.tls_vminor = 5; break;
		case 8:
			en.auth_algorithm = CRYPTO_SHA1_HMAC;
			en.auth_key = g13.key;
			en.auth_key_len = 20;
			break;
		case 9: en.cipher_algorithm = 99; break;
		case 10:
			en.cipher_algorithm = CRYPTO_CHACHA20_POLY1305;
			en.cipher_key_len = 16;
			break;
		case 11: en.cipher_key_len = 2048; break;
		case 12: en.iv_len = 17; break;
		case 13:
			/* TLS 1.2 GCM takes a 4-byte salt, not 12 bytes. */
			tlsgen_enable(&g12, &en);
			en.iv_len = 12;
			break;
		case 14: en.tls_vminor = 0; break;
		}
		errno = 0;
		if (uktls_setsockopt(rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
		    sizeof(en)) != -1 || errno != EINVAL)
			harness_fail(__FILE__, __LINE__, "invalid enable case "
			    "%d: errno %d (%s), want EINVAL", i, errno,
			    strerror(errno));
	}
	/* A short option length. */
	CHECK_ERRNO(uktls_setsockopt(rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &good,
	    sizeof(good) - 1), EINVAL);
	check_still_plain(rx, tx);
	tlsgen_free(&g13);
	tlsgen_free(&g12);
	uktls_close(rx);
	close(tx);
}

/* ktls_listening_socket: RX on a listening socket -> EINVAL. */
TEST(listening_socket)
{
	struct sockaddr_in sin;
	struct tls_enable en;
	struct tlsgen g;
	int l;

	l = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(l != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(bind(l, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	REQUIRE(listen(l, 1) == 0);
	REQUIRE(tlsgen_init(&g, &tg_suites[0], 1) == 0);
	tlsgen_enable(&g, &en);
	CHECK_ERRNO(uktls_setsockopt(l, IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
	    sizeof(en)), EINVAL);
	CHECK_EQ(rx_mode(l), TCP_TLS_MODE_NONE);
	tlsgen_free(&g);
	uktls_close(l);
}

/* A second enable: EALREADY, and the first session stays in force. */
static void
t_already_enabled(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct tlsgen g2;
	struct tls_enable en2;
	uint8_t p[100];

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	CHECK_ERRNO(uktls_setsockopt(c.rx, IPPROTO_TCP, TCP_RXTLS_ENABLE,
	    &c.en, sizeof(c.en)), EALREADY);
	if (tlsgen_init(&g2, &tg_suites[(s - tg_suites + 1) % TG_NSUITES],
	    5) == 0) {
		tlsgen_enable(&g2, &en2);
		CHECK_ERRNO(uktls_setsockopt(c.rx, IPPROTO_TCP,
		    TCP_RXTLS_ENABLE, &en2, sizeof(en2)), EALREADY);
		tlsgen_free(&g2);
	}
	tg_random(p, sizeof(p));
	if (tg_conn_send(&c, APP, p, sizeof(p), 0) == 0)
		TG_EXPECT_RECORD(c.rx, APP, p, sizeof(p));
	tg_conn_close(&c);
}

/* getsockopt(TCP_RXTLS_MODE): NONE before the enable, SW after. */
static void
t_rxtls_mode(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;

	if (tg_conn_open(&c, s, 0) == -1)
		return;
	CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_NONE);
	if (tg_conn_enable(&c) == 0)
		CHECK_EQ(rx_mode(c.rx), TCP_TLS_MODE_SW);
	tg_conn_close(&c);
}

/* ==== receive semantics ============================================= */

/*
 * A small buffer: the first call gets the control message and part of the
 * record without MSG_EOR; later calls get the rest, no control message,
 * MSG_EOR on the last; no call crosses into the next record.
 */
static void
t_partial_read(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[1000], b[300], buf[4096], *wire;
	size_t wlen, n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = xmalloc(2 * TG_MAX_RECORD);
	tg_random(a, sizeof(a));
	tg_random(b, sizeof(b));
	if ((n = mk(&c, wire, APP, a, sizeof(a), 0)) == 0)
		goto out;
	wlen = n;
	if ((n = mk(&c, wire + wlen, APP, b, sizeof(b), 0)) == 0)
		goto out;
	wlen += n;
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	/* Let the second record be decrypted too: reads must not cross. */
	tg_sleep_ms(50);

	tg_recv(c.rx, buf, 100, 0, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, 100);
	CHECK(r.cmsg_ok && r.ncmsg == 1);
	CHECK_EQ(r.tgr.tls_type, APP);
	CHECK_EQ(ntohs(r.tgr.tls_length), sizeof(a));
	CHECK((r.flags & MSG_EOR) == 0);
	CHECK((r.flags & MSG_CTRUNC) == 0);
	CHECK(memcmp(buf, a, 100) == 0);

	/* Peek in the middle: bytes 100.., no control message. */
	tg_recv(c.rx, buf, 50, MSG_PEEK, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, 50);
	CHECK_EQ(r.ncmsg, 0);
	CHECK_EQ(r.controllen, 0);
	CHECK(memcmp(buf, a + 100, 50) == 0);

	tg_recv(c.rx, buf, 400, 0, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, 400);
	CHECK_EQ(r.ncmsg, 0);
	CHECK_EQ(r.controllen, 0);
	CHECK((r.flags & MSG_EOR) == 0);
	CHECK(memcmp(buf, a + 100, 400) == 0);

	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, 500);
	CHECK_EQ(r.ncmsg, 0);
	CHECK_EQ(r.controllen, 0);
	CHECK((r.flags & MSG_EOR) != 0);
	CHECK(memcmp(buf, a + 500, 500) == 0);

	TG_EXPECT_RECORD(c.rx, APP, b, sizeof(b));
out:
	free(wire);
	tg_conn_close(&c);
}

/* A control buffer too small for the message: MSG_CTRUNC, payload kept. */
static void
t_ctrunc(void *arg)
{
	const struct tg_suite *s = arg;
	static const size_t ctl[2] = { sizeof(struct cmsghdr),
	    CMSG_LEN(sizeof(struct tls_get_record)) - 1 };
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[2][200], b[100], buf[4096];
	int i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	for (i = 0; i < 2; i++) {
		tg_random(a[i], sizeof(a[i]));
		if (tg_conn_send(&c, APP, a[i], sizeof(a[i]), 0) == -1)
			goto out;
	}
	tg_random(b, sizeof(b));
	if (tg_conn_send(&c, APP, b, sizeof(b), 0) == -1)
		goto out;
	for (i = 0; i < 2; i++) {
		CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
		tg_recv(c.rx, buf, sizeof(buf), 0, ctl[i], &r);
		if (r.n == -1) {
			harness_fail(__FILE__, __LINE__, "controllen %zu: "
			    "errno %d (%s)", ctl[i], r.err, strerror(r.err));
			goto out;
		}
		CHECK_EQ(r.n, sizeof(a[i]));
		CHECK((r.flags & MSG_CTRUNC) != 0);
		CHECK((r.flags & MSG_EOR) != 0);
		CHECK(memcmp(buf, a[i], sizeof(a[i])) == 0);
	}
	TG_EXPECT_RECORD(c.rx, APP, b, sizeof(b));
out:
	tg_conn_close(&c);
}

/* MSG_PEEK returns the control message and the payload and consumes none. */
static void
t_peek(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[500], b[100], buf[4096];

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	tg_random(a, sizeof(a));
	tg_random(b, sizeof(b));
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1 ||
	    tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, b, sizeof(b), 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	tg_sleep_ms(20);
	tg_recv(c.rx, buf, sizeof(buf), MSG_PEEK, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, sizeof(a));
	CHECK(r.cmsg_ok && r.ncmsg == 1);
	CHECK_EQ(r.tgr.tls_type, APP);
	CHECK_EQ(ntohs(r.tgr.tls_length), sizeof(a));
	CHECK(memcmp(buf, a, sizeof(a)) == 0);

	tg_recv(c.rx, buf, 10, MSG_PEEK, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, 10);
	CHECK(r.cmsg_ok && r.ncmsg == 1);
	CHECK((r.flags & MSG_EOR) == 0);
	CHECK(memcmp(buf, a, 10) == 0);

	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	tg_recv(c.rx, buf, sizeof(buf), MSG_PEEK, TG_CTL_DEFAULT, &r);
	REQUIRE_EQ(r.n, sizeof(b));
	CHECK(r.cmsg_ok && r.tgr.tls_type == TLS_RLTYPE_HANDSHAKE);
	CHECK(memcmp(buf, b, sizeof(b)) == 0);
	TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_HANDSHAKE, b, sizeof(b));
out:
	tg_conn_close(&c);
}

/* MSG_WAITALL with a big buffer returns one record and never crosses. */
static void
t_waitall(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_delayed_write dw1, dw2;
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[100], b[200], d[300], e[50], buf[8192], *wire, *rec_d,
	    *rec_e;
	size_t n, wlen, nd, ne;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = xmalloc(2 * TG_MAX_RECORD);
	rec_d = xmalloc(TG_MAX_RECORD);
	rec_e = xmalloc(TG_MAX_RECORD);
	tg_random(a, sizeof(a));
	tg_random(b, sizeof(b));
	tg_random(d, sizeof(d));
	tg_random(e, sizeof(e));
	if ((n = mk(&c, wire, APP, a, sizeof(a), 0)) == 0)
		goto out;
	wlen = n;
	if ((n = mk(&c, wire + wlen, APP, b, sizeof(b), 0)) == 0)
		goto out;
	wlen += n;
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	tg_sleep_ms(50);
	tg_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, TG_CTL_DEFAULT, &r);
	CHECK_EQ(r.n, sizeof(a));
	CHECK(r.cmsg_ok && ntohs(r.tgr.tls_length) == sizeof(a));
	CHECK((r.flags & MSG_EOR) != 0);
	CHECK(r.n == sizeof(a) && memcmp(buf, a, sizeof(a)) == 0);
	tg_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, TG_CTL_DEFAULT, &r);
	CHECK_EQ(r.n, sizeof(b));
	CHECK(r.cmsg_ok && ntohs(r.tgr.tls_length) == sizeof(b));
	CHECK(r.n == sizeof(b) && memcmp(buf, b, sizeof(b)) == 0);

	/*
	 * A blocked MSG_WAITALL read: half of record d now, the rest after
	 * 100 ms, record e after 600 ms.  The read returns d alone.
	 */
	if ((nd = mk(&c, rec_d, APP, d, sizeof(d), 0)) == 0 ||
	    (ne = mk(&c, rec_e, APP, e, sizeof(e), 0)) == 0)
		goto out;
	if (send_raw(&c, rec_d, nd / 2) == -1)
		goto out;
	if (tg_delayed_write_start(&dw1, c.tx, rec_d + nd / 2, nd - nd / 2,
	    100) == -1)
		goto out;
	if (tg_delayed_write_start(&dw2, c.tx, rec_e, ne, 600) == -1) {
		tg_delayed_write_join(&dw1);
		goto out;
	}
	tg_recv(c.rx, buf, sizeof(buf), MSG_WAITALL, TG_CTL_DEFAULT, &r);
	CHECK_EQ(r.n, sizeof(d));
	CHECK(r.cmsg_ok && ntohs(r.tgr.tls_length) == sizeof(d));
	CHECK((r.flags & MSG_EOR) != 0);
	CHECK(r.n == sizeof(d) && memcmp(buf, d, sizeof(d)) == 0);
	CHECK_EQ(tg_delayed_write_join(&dw1), nd - nd / 2);
	CHECK_EQ(tg_delayed_write_join(&dw2), ne);
	if (r.n == sizeof(d))
		TG_EXPECT_RECORD(c.rx, APP, e, sizeof(e));
out:
	free(rec_e);
	free(rec_d);
	free(wire);
	tg_conn_close(&c);
}

/*
 * Non-blocking reads (MSG_DONTWAIT, or O_NONBLOCK on the descriptor when
 * use_fcntl): EAGAIN with nothing queued and while only part of a record
 * has arrived; the record once it is whole.
 */
static void
rx_nonblock(const struct tg_suite *s, int use_fcntl)
{
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[300], buf[4096], *rec;
	size_t n;
	int flags, fl;
	double deadline;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	flags = MSG_DONTWAIT;
	if (use_fcntl) {
		fl = fcntl(c.rx, F_GETFL);
		REQUIRE(fl != -1);
		REQUIRE(fcntl(c.rx, F_SETFL, fl | O_NONBLOCK) == 0);
		flags = 0;
	}
	tg_recv(c.rx, buf, sizeof(buf), flags, TG_CTL_DEFAULT, &r);
	CHECK(r.n == -1 && r.err == EAGAIN);
	if (use_fcntl)
		CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), EAGAIN);
	CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);

	tg_random(a, sizeof(a));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
	    send_raw(&c, rec, n / 2) == -1)
		goto out;
	tg_sleep_ms(50);
	tg_recv(c.rx, buf, sizeof(buf), flags, TG_CTL_DEFAULT, &r);
	if (r.n != -1 || r.err != EAGAIN)
		harness_fail(__FILE__, __LINE__, "half a record queued: "
		    "recvmsg %zd errno %d, want EAGAIN", r.n, r.err);
	if (send_raw(&c, rec + n / 2, n - n / 2) == -1)
		goto out;
	deadline = tg_now() + TG_WAIT_MS / 1000.0;
	for (;;) {
		tg_recv(c.rx, buf, sizeof(buf), flags, TG_CTL_DEFAULT, &r);
		if (r.n != -1 || r.err != EAGAIN || tg_now() > deadline)
			break;
		tg_sleep_ms(1);
	}
	CHECK_EQ(r.n, sizeof(a));
	CHECK(r.cmsg_ok && ntohs(r.tgr.tls_length) == sizeof(a));
	CHECK((r.flags & MSG_EOR) != 0);
	CHECK(r.n == sizeof(a) && memcmp(buf, a, sizeof(a)) == 0);
	tg_recv(c.rx, buf, sizeof(buf), flags, TG_CTL_DEFAULT, &r);
	CHECK(r.n == -1 && r.err == EAGAIN);
out:
	free(rec);
	tg_conn_close(&c);
}

static void
t_dontwait(void *arg)
{

	rx_nonblock(arg, 0);
}

static void
t_o_nonblock(void *arg)
{

	rx_nonblock(arg, 1);
}

/* A blocking read waits for the record, which arrives in two pieces. */
static void
t_blocking_wait(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_delayed_write dw;
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[700], buf[4096], *rec;
	size_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	tg_random(a, sizeof(a));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
	    send_raw(&c, rec, 3) == -1)
		goto out;
	if (tg_delayed_write_start(&dw, c.tx, rec + 3, n - 3, 100) == -1)
		goto out;
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), n - 3);
	CHECK_EQ(r.n, sizeof(a));
	CHECK(r.cmsg_ok && ntohs(r.tgr.tls_length) == sizeof(a));
	CHECK(r.n == sizeof(a) && memcmp(buf, a, sizeof(a)) == 0);
out:
	free(rec);
	tg_conn_close(&c);
}

struct delayed_shutdown {
	int fd;
	unsigned int ms;
};

static void *
delayed_shutdown_main(void *arg)
{
	struct delayed_shutdown *ds = arg;

	tg_sleep_ms(ds->ms);
	shutdown(ds->fd, SHUT_WR);
	return (NULL);
}

/*
 * A blocked reader wakes for an authentication error, for a record, and for
 * the end of the stream, each arriving while it waits.
 */
static void
t_blocking_wakeups(void *arg)
{
	const struct tg_suite *s = arg;
	struct delayed_shutdown ds;
	struct tg_delayed_write dw;
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[100], buf[4096], *rec;
	pthread_t t;
	size_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	tg_random(a, sizeof(a));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0)
		goto out;
	rec[n - 1] ^= 0x01;
	if (tg_delayed_write_start(&dw, c.tx, rec, n, 100) == -1)
		goto out;
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), n);
	CHECK_EQ(r.n, -1);
	CHECK_EQ(r.err, EBADMSG);

	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0)
		goto out;
	if (tg_delayed_write_start(&dw, c.tx, rec, n, 100) == -1)
		goto out;
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	CHECK_EQ(tg_delayed_write_join(&dw), n);
	CHECK_EQ(r.n, sizeof(a));
	CHECK(r.cmsg_ok && ntohs(r.tgr.tls_length) == sizeof(a));
	CHECK(r.n == sizeof(a) && memcmp(buf, a, sizeof(a)) == 0);

	ds.fd = c.tx;
	ds.ms = 100;
	if (pthread_create(&t, NULL, delayed_shutdown_main, &ds) != 0)
		goto out;
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	pthread_join(t, NULL);
	CHECK_EQ(r.n, 0);
	CHECK_EQ(r.ncmsg, 0);
out:
	free(rec);
	tg_conn_close(&c);
}

/* SO_RCVTIMEO bounds a blocking read that waits on half a record. */
static void
t_rcvtimeo(void *arg)
{
	const struct tg_suite *s = arg;
	struct timeval tv;
	struct tg_conn c;
	struct tg_rec r;
	uint8_t a[100], buf[4096], *rec;
	size_t n;
	double t0, dt;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	tv.tv_sec = 0;
	tv.tv_usec = 100000;
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	tg_random(a, sizeof(a));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
	    send_raw(&c, rec, n / 2) == -1)
		goto out;
	t0 = tg_now();
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	dt = tg_now() - t0;
	CHECK_EQ(r.n, -1);
	CHECK(r.err == EAGAIN || r.err == EWOULDBLOCK);
	CHECK(dt >= 0.09);
	CHECK(dt < 5.0 * TG_TIME_MUL);
	if (send_raw(&c, rec + n / 2, n - n / 2) == 0)
		TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
out:
	free(rec);
	tg_conn_close(&c);
}

/* recvmsg scatters a record over several iovecs, empty ones included. */
static void
t_iovec(void *arg)
{
	const struct tg_suite *s = arg;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct tls_get_record))];
	} ctl;
	struct tg_conn c;
	struct msghdr msg;
	struct iovec iov[3];
	uint8_t a[80], b[300], x[10], y[100], z[1000];
	ssize_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	tg_random(a, sizeof(a));
	tg_random(b, sizeof(b));
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1 ||
	    tg_conn_send(&c, APP, b, sizeof(b), 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	memset(&msg, 0, sizeof(msg));
	iov[0].iov_base = x;
	iov[0].iov_len = sizeof(x);
	iov[1].iov_base = NULL;
	iov[1].iov_len = 0;
	iov[2].iov_base = y;
	iov[2].iov_len = sizeof(y);
	msg.msg_iov = iov;
	msg.msg_iovlen = 3;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = uktls_recvmsg(c.rx, &msg, 0);
	CHECK_EQ(n, sizeof(a));
	CHECK((msg.msg_flags & MSG_EOR) != 0);
	CHECK_EQ(msg.msg_controllen, CMSG_SPACE(sizeof(struct tls_get_record)));
	CHECK(memcmp(x, a, 10) == 0);
	CHECK(memcmp(y, a + 10, 70) == 0);

	/* 300 bytes into 10 + 100: a partial read. */
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	msg.msg_iovlen = 3;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = uktls_recvmsg(c.rx, &msg, 0);
	CHECK_EQ(n, 110);
	CHECK((msg.msg_flags & MSG_EOR) == 0);
	CHECK(memcmp(x, b, 10) == 0);
	CHECK(memcmp(y, b + 10, 100) == 0);
	iov[0].iov_base = z;
	iov[0].iov_len = sizeof(z);
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = uktls_recvmsg(c.rx, &msg, 0);
	CHECK_EQ(n, 190);
	CHECK((msg.msg_flags & MSG_EOR) != 0);
	CHECK_EQ(msg.msg_controllen, 0);
	CHECK(memcmp(z, b + 110, 190) == 0);
out:
	tg_conn_close(&c);
}

/* uktls_poll: POLLIN only once a record is decrypted. */
static void
t_poll_partial(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t a[300], *rec;
	size_t n;
	short rev;
	int r;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	r = poll_one(c.rx, POLLIN, 0, &rev);
	CHECK_EQ(r, 0);
	tg_random(a, sizeof(a));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
	    send_raw(&c, rec, n - 1) == -1)
		goto out;
	r = poll_one(c.rx, POLLIN, 200, &rev);
	CHECK_EQ(r, 0);
	CHECK_EQ(rev, 0);
	if (send_raw(&c, rec + n - 1, 1) == -1)
		goto out;
	r = poll_one(c.rx, POLLIN, TG_WAIT_MS, &rev);
	CHECK_EQ(r, 1);
	CHECK((rev & POLLIN) != 0);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	r = poll_one(c.rx, POLLIN, 0, &rev);
	CHECK_EQ(r, 0);
out:
	free(rec);
	tg_conn_close(&c);
}

/* uktls_poll over an RX socket and a plain descriptor together. */
static void
t_poll_mixed(void *arg)
{
	const struct tg_suite *s = arg;
	struct pollfd pfd[2];
	struct tg_conn c;
	uint8_t a[64], *rec;
	size_t n;
	int pp[2], r;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	if (pipe(pp) == -1) {
		harness_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
		goto out;
	}
	CHECK_EQ(write(pp[1], "x", 1), 1);
	tg_random(a, sizeof(a));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
	    send_raw(&c, rec, n / 2) == -1)
		goto out2;
	pfd[0].fd = c.rx;
	pfd[0].events = POLLIN;
	pfd[1].fd = pp[0];
	pfd[1].events = POLLIN;
	pfd[0].revents = pfd[1].revents = 0;
	r = uktls_poll(pfd, 2, 200);
	CHECK_EQ(r, 1);
	CHECK_EQ(pfd[0].revents, 0);
	CHECK((pfd[1].revents & POLLIN) != 0);
	if (send_raw(&c, rec + n / 2, n - n / 2) == -1)
		goto out2;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	pfd[0].revents = pfd[1].revents = 0;
	r = uktls_poll(pfd, 2, 0);
	CHECK_EQ(r, 2);
	CHECK((pfd[0].revents & POLLIN) != 0);
	CHECK((pfd[1].revents & POLLIN) != 0);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
out2:
	close(pp[0]);
	close(pp[1]);
out:
	free(rec);
	tg_conn_close(&c);
}

/* uktls_event_fd() polls readable exactly when a receive would not block. */
static void
t_event_fd(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t a[300], b[40], *rec;
	size_t n;
	int efd;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	efd = uktls_event_fd(c.rx);
	if (efd < 0) {
		harness_fail(__FILE__, __LINE__, "uktls_event_fd: %s",
		    strerror(errno));
		goto out;
	}
	CHECK_EQ(sys_poll_one(efd, 0), 0);
	tg_random(a, sizeof(a));
	tg_random(b, sizeof(b));
	if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
	    send_raw(&c, rec, n - 10) == -1)
		goto out;
	CHECK_EQ(sys_poll_one(efd, 200), 0);
	if (send_raw(&c, rec + n - 10, 10) == -1)
		goto out;
	CHECK_EQ(sys_poll_one(efd, TG_WAIT_MS), 1);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	CHECK_EQ(sys_poll_one(efd, 0), 0);

	/* Two records: readable until both are read. */
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1 ||
	    tg_conn_send(&c, APP, b, sizeof(b), 0) == -1)
		goto out;
	CHECK_EQ(sys_poll_one(efd, TG_WAIT_MS), 1);
	tg_sleep_ms(50);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	CHECK_EQ(sys_poll_one(efd, 0), 1);
	TG_EXPECT_RECORD(c.rx, APP, b, sizeof(b));
	CHECK_EQ(sys_poll_one(efd, 0), 0);

	/* End of stream makes it readable too. */
	shutdown(c.tx, SHUT_WR);
	CHECK_EQ(sys_poll_one(efd, TG_WAIT_MS), 1);
	TG_EXPECT_EOF(c.rx);
	CHECK_EQ(uktls_event_fd(c.rx), efd);
out:
	free(rec);
	tg_conn_close(&c);
}

/*
 * uktls_read(), uktls_recv() and uktls_recvmsg() without a control buffer
 * return the payload and drop the control message.  Reads are checked as
 * a byte stream: each must return the bytes in order.
 */
static void
t_read_recv(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct msghdr msg;
	struct iovec iov;
	uint8_t a[100], b[50], d[70], buf[4096];
	ssize_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	tg_random(a, sizeof(a));
	tg_random(b, sizeof(b));
	tg_random(d, sizeof(d));
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	n = uktls_read(c.rx, buf, sizeof(buf));
	CHECK_EQ(n, sizeof(a));
	CHECK(n == sizeof(a) && memcmp(buf, a, sizeof(a)) == 0);

	if (tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, b, sizeof(b), 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	n = uktls_recv(c.rx, buf, sizeof(buf), 0);
	CHECK_EQ(n, sizeof(b));
	CHECK(n == sizeof(b) && memcmp(buf, b, sizeof(b)) == 0);

	if (tg_conn_send(&c, APP, d, sizeof(d), 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	n = uktls_recvmsg(c.rx, &msg, 0);
	CHECK_EQ(n, sizeof(d));
	CHECK_EQ(msg.msg_controllen, 0);
	CHECK(n == sizeof(d) && memcmp(buf, d, sizeof(d)) == 0);

	/* A small read buffer. */
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	n = uktls_read(c.rx, buf, 30);
	CHECK_EQ(n, 30);
	CHECK(n == 30 && memcmp(buf, a, 30) == 0);
	n = uktls_read(c.rx, buf, sizeof(buf));
	CHECK_EQ(n, 70);
	CHECK(n == 70 && memcmp(buf, a + 30, 70) == 0);
out:
	tg_conn_close(&c);
}

/*
 * Empty application_data records: recvmsg with a control buffer returns 0
 * with the control message and MSG_EOR; read() skips them and returns 0
 * only at the end of the stream.
 */
static void
t_empty_record(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t a[10], buf[64];
	ssize_t n;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	tg_random(a, sizeof(a));
	if (tg_conn_send(&c, APP, NULL, 0, 0) == -1 ||
	    tg_conn_send(&c, APP, a, sizeof(a), 0) == -1)
		goto out;
	TG_EXPECT_RECORD(c.rx, APP, NULL, 0);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));

	/* read() skips empty records. */
	if (tg_conn_send(&c, APP, NULL, 0, 0) == -1 ||
	    tg_conn_send(&c, APP, NULL, 0, 0) == -1 ||
	    tg_conn_send(&c, APP, a, 5, 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	tg_sleep_ms(20);
	n = uktls_read(c.rx, buf, sizeof(buf));
	CHECK_EQ(n, 5);
	CHECK(n == 5 && memcmp(buf, a, 5) == 0);

	/* Only an empty record queued: not EOF, nothing to read. */
	if (tg_conn_send(&c, APP, NULL, 0, 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);

	/* The real end of stream. */
	if (tg_conn_send(&c, APP, NULL, 0, 0) == -1)
		goto out;
	shutdown(c.tx, SHUT_WR);
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
out:
	tg_conn_close(&c);
}

/*
 * Thousands of empty records decrypted while the application is busy fill
 * the buffer's mbuf budget, so input pauses.  A reader without a control
 * buffer drops them: that must resume input (the data record behind them
 * arrives) and clear readiness (the event fd is not left readable).
 */
static void
t_empty_records_flood(void *arg)
{
	const struct tg_suite *s = arg;
	struct timeval tv = { .tv_sec = 5 * TG_TIME_MUL, .tv_usec = 0 };
	struct pollfd pfd;
	struct tg_conn c;
	uint8_t a[10], buf[64], *wire;
	size_t n, wlen = 0;
	int i, efd;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = xmalloc(3000 * 64);
	tg_random(a, sizeof(a));
	for (i = 0; i < 3000; i++) {
		if ((n = mk(&c, wire + wlen, APP, NULL, 0, 0)) == 0)
			goto out;
		wlen += n;
	}
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	tg_sleep_ms(300);
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1)
		goto out;
	tg_sleep_ms(100);
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	n = (size_t)uktls_read(c.rx, buf, sizeof(buf));
	CHECK_EQ((ssize_t)n, (ssize_t)sizeof(a));
	CHECK(n == sizeof(a) && memcmp(buf, a, sizeof(a)) == 0);

	/* One empty record under an event fd: dropped, nothing readable. */
	efd = uktls_event_fd(c.rx);
	CHECK(efd >= 0);
	if (efd < 0 || tg_conn_send(&c, APP, NULL, 0, 0) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);
	pfd.fd = efd;
	pfd.events = POLLIN;
	CHECK_EQ(poll(&pfd, 1, 0), 0);
out:
	free(wire);
	tg_conn_close(&c);
}

/* Records of other content types carry their type in the control message. */
static void
t_control_types(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t alert[2] = { 1, 0 }, hs[40], ccs[1] = { 1 }, a[10];

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	tg_random(hs, sizeof(hs));
	tg_random(a, sizeof(a));
	if (tg_conn_send(&c, TLS_RLTYPE_ALERT, alert, sizeof(alert), 0) ||
	    tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, hs, sizeof(hs), 0) ||
	    tg_conn_send(&c, TLS_RLTYPE_CHANGE_CIPHER_SPEC, ccs, 1, 0) ||
	    tg_conn_send(&c, APP, a, sizeof(a), 0) ||
	    tg_conn_send(&c, TLS_RLTYPE_HANDSHAKE, NULL, 0, 0))
		goto out;
	TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_ALERT, alert, sizeof(alert));
	TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_HANDSHAKE, hs, sizeof(hs));
	TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_CHANGE_CIPHER_SPEC, ccs, 1);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_HANDSHAKE, NULL, 0);
out:
	tg_conn_close(&c);
}


/*
 * Wait (5 s at most) until the engine has counted bad more failed tags and
 * good more decrypted records than s0 held.
 */
static void
wait_engine(const struct uktls_stats *s0, uint64_t bad, uint64_t good)
{
	struct uktls_stats s1;
	double deadline = tg_now() + 5.0 * TG_TIME_MUL;

	do {
		tg_sleep_ms(5);
		REQUIRE(uktls_get_stats(&s1) == 0);
	} while ((s1.err_bad_tag - s0->err_bad_tag < bad ||
	    s1.records_decrypted - s0->records_decrypted < good) &&
	    tg_now() < deadline);
}

/*
 * Several records with bad tags, all decrypted before the reader comes:
 * each failed record's EBADMSG comes in its own place, none is lost (two
 * in a row give two errors).  Past SO_ERRQ_MAX + 1 errors waiting at once
 * the socket cannot keep them in their places: the records before the
 * last come, then the error, sticky, and the receive side is dead.
 */
static void
rx_bad_tags(const struct tg_suite *s, int nrec, const int *bad, int overflow)
{
	struct uktls_stats s0;
	struct tg_conn c;
	uint8_t p[24][64], *wire;
	size_t n, wlen = 0;
	int i, nbad = 0, isbad[24] = { 0 };

	REQUIRE(nrec <= 24);
	for (i = 0; bad[i] >= 0; i++) {
		isbad[bad[i]] = 1;
		nbad++;
	}
	if (tg_conn_open(&c, s, 1) == -1)
		return;
	REQUIRE(uktls_get_stats(&s0) == 0);
	wire = xmalloc((size_t)nrec * TG_MAX_RECORD);
	for (i = 0; i < nrec; i++) {
		tg_random(p[i], sizeof(p[i]));
		if ((n = mk(&c, wire + wlen, APP, p[i], sizeof(p[i]), 0)) == 0)
			goto out;
		if (isbad[i])
			wire[wlen + n - 3] ^= 0x80;
		wlen += n;
	}
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	/* Every record through the engine before the first read. */
	wait_engine(&s0, (uint64_t)nbad, (uint64_t)(overflow ?
	    bad[nbad - 1] - (nbad - 1) : nrec - nbad));
	for (i = 0; i < nrec; i++) {
		if (overflow && i == bad[nbad - 1])
			break;
		if (isbad[i])
			TG_EXPECT_ERROR(c.rx, EBADMSG);
		else
			TG_EXPECT_RECORD(c.rx, APP, p[i], sizeof(p[i]));
	}
	if (overflow) {
		/* The stream ended at the error that did not fit. */
		TG_EXPECT_ERROR(c.rx, EBADMSG);
		TG_EXPECT_ERROR(c.rx, EBADMSG);
	} else {
		CHECK_ERRNO(uktls_recv(c.rx, p[0], sizeof(p[0]),
		    MSG_DONTWAIT), EAGAIN);
		if (tg_conn_send(&c, APP, p[0], 10, 0) == 0)
			TG_EXPECT_RECORD(c.rx, APP, p[0], 10);
	}
out:
	free(wire);
	tg_conn_close(&c);
}

/*
 * A record with a bad tag between good ones: the good records before it
 * first, then EBADMSG once, then the good records after it.
 */
static void
t_bad_tag_between(void *arg)
{
	static const int bad[] = { 2, -1 };

	rx_bad_tags(arg, 5, bad, 0);
}

static void
t_bad_tags_in_place(void *arg)
{
	static const int bad[] = { 1, 3, 4, 7, 11, -1 };

	rx_bad_tags(arg, 12, bad, 0);
}

static void
t_bad_tags_overflow(void *arg)
{
	/* One so_error, SO_ERRQ_MAX queued behind it, and one more. */
	static const int bad[] = { 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, -1 };

	rx_bad_tags(arg, 21, bad, 1);
}

static int
so_error_of(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (uktls_getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l) != 0)
		return -errno;
	return l == sizeof(v) ? v : -1000;
}

/*
 * SO_ERROR reads the error a read would get now and takes it, as the
 * kernels' SO_ERROR takes so_error / sk_err: a bad tag's EBADMSG once the
 * records before it are read (0 before), then no more, and the records
 * after it still come; a reset at a record boundary likewise, then the end
 * of the stream.  recvmsg gives back no address (msg_namelen 0), as TCP's.
 */
static void
t_so_error(void *arg)
{
	const struct tg_suite *s = arg;
	struct sockaddr_storage ss;
	struct linger lg = { 1, 0 };
	struct uktls_stats s0;
	struct msghdr msg;
	struct iovec iov;
	struct tg_conn c;
	uint8_t p[3][64], *wire, buf[256];
	size_t n, wlen = 0;
	double deadline;
	int i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	REQUIRE(uktls_get_stats(&s0) == 0);
	wire = xmalloc(3 * TG_MAX_RECORD);
	for (i = 0; i < 3; i++) {
		tg_random(p[i], sizeof(p[i]));
		if ((n = mk(&c, wire + wlen, APP, p[i], sizeof(p[i]), 0)) == 0)
			goto out;
		if (i == 1)
			wire[wlen + n - 3] ^= 0x80;
		wlen += n;
	}
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	wait_engine(&s0, 1, 2);
	CHECK_EQ(so_error_of(c.rx), 0);
	memset(&msg, 0, sizeof(msg));
	memset(&ss, 0xee, sizeof(ss));
	msg.msg_name = &ss;
	msg.msg_namelen = sizeof(ss);
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	CHECK_EQ(uktls_recvmsg(c.rx, &msg, 0), (ssize_t)sizeof(p[0]));
	CHECK_EQ(msg.msg_namelen, 0);
	CHECK(memcmp(buf, p[0], sizeof(p[0])) == 0);
	CHECK_EQ(so_error_of(c.rx), EBADMSG);
	CHECK_EQ(so_error_of(c.rx), 0);
	TG_EXPECT_RECORD(c.rx, APP, p[2], sizeof(p[2]));

	/* A reset at a record boundary: ECONNRESET once, then the end. */
	if (tg_conn_send(&c, APP, p[0], sizeof(p[0]), 0) == -1)
		goto out;
	TG_EXPECT_RECORD(c.rx, APP, p[0], sizeof(p[0]));
	(void)setsockopt(c.tx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c.tx);
	c.tx = -1;
	deadline = tg_now() + 5.0 * TG_TIME_MUL;
	while ((i = so_error_of(c.rx)) == 0 && tg_now() < deadline)
		tg_sleep_ms(5);
	CHECK_EQ(i, ECONNRESET);
	CHECK_EQ(so_error_of(c.rx), 0);
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
out:
	free(wire);
	tg_conn_close(&c);
}

/*
 * A malformed header after a good record: the good record, then the error,
 * again on every later call; the socket stays readable.
 */
static void
rx_sticky(const struct tg_suite *s, enum corrupt kind, int err)
{
	struct tg_conn c;
	uint8_t p[3][80], *wire, buf[256];
	size_t n, wlen = 0, at = 0;
	short rev;
	int i, efd;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = xmalloc(3 * TG_MAX_RECORD);
	for (i = 0; i < 3; i++) {
		tg_random(p[i], sizeof(p[i]));
		if ((n = mk(&c, wire + wlen, APP, p[i], sizeof(p[i]), 0)) == 0)
			goto out;
		if (i == 1)
			at = wlen;
		wlen += n;
	}
	if (kind == C_MAJOR)
		wire[at + TG_OFF_VMAJOR] = 2;
	else
		tg_set_length_field(wire + at, 0x7fff);
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	CHECK_EQ(tg_wait_readable(c.rx, TG_WAIT_MS), 1);
	tg_sleep_ms(50);
	TG_EXPECT_RECORD(c.rx, APP, p[0], sizeof(p[0]));
	for (i = 0; i < 3; i++)
		TG_EXPECT_ERROR(c.rx, err);
	CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)), err);
	CHECK_ERRNO(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), err);
	CHECK_EQ(poll_one(c.rx, POLLIN, 0, &rev), 1);
	efd = uktls_event_fd(c.rx);
	CHECK(efd >= 0 && sys_poll_one(efd, 0) == 1);
	/* More data does not revive the socket. */
	if (tg_conn_send(&c, APP, p[0], 10, 0) == 0) {
		tg_sleep_ms(50);
		TG_EXPECT_ERROR(c.rx, err);
	}
out:
	free(wire);
	tg_conn_close(&c);
}

static void
t_sticky_einval(void *arg)
{

	rx_sticky(arg, C_MAJOR, EINVAL);
}

static void
t_sticky_emsgsize(void *arg)
{

	rx_sticky(arg, C_OVERSIZE, EMSGSIZE);
}

/* Peer shutdown at a record boundary: the records, then 0 for good. */
static void
t_clean_eof(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t p[3][200], buf[64];
	int i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	for (i = 0; i < 3; i++) {
		tg_random(p[i], sizeof(p[i]));
		if (tg_conn_send(&c, APP, p[i], sizeof(p[i]), 0) == -1)
			goto out;
	}
	shutdown(c.tx, SHUT_WR);
	for (i = 0; i < 3; i++)
		TG_EXPECT_RECORD(c.rx, APP, p[i], sizeof(p[i]));
	TG_EXPECT_EOF(c.rx);
	TG_EXPECT_EOF(c.rx);
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
	CHECK_EQ(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), 0);
out:
	tg_conn_close(&c);
}

/*
 * End of stream inside a record (cut bytes into it) or inside its header:
 * the good record first, then EMSGSIZE, never 0.
 */
static void
rx_eof_mid(const struct tg_suite *s, int in_header)
{
	struct tg_conn c;
	uint8_t p[200], *rec;
	size_t n, cut;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	tg_random(p, sizeof(p));
	if (tg_conn_send(&c, APP, p, sizeof(p), 0) == -1)
		goto out;
	if ((n = mk(&c, rec, APP, p, sizeof(p), 0)) == 0)
		goto out;
	cut = in_header ? 3 : n - 1;
	if (send_raw(&c, rec, cut) == -1)
		goto out;
	shutdown(c.tx, SHUT_WR);
	TG_EXPECT_RECORD(c.rx, APP, p, sizeof(p));
	TG_EXPECT_ERROR(c.rx, EMSGSIZE);
	TG_EXPECT_ERROR(c.rx, EMSGSIZE);
out:
	free(rec);
	tg_conn_close(&c);
}

static void
t_eof_mid_record(void *arg)
{

	rx_eof_mid(arg, 0);
}

static void
t_eof_mid_header(void *arg)
{

	rx_eof_mid(arg, 1);
}

struct blocked_reader {
	int fd;
	int use_read;
	ssize_t n;
	int err;
};

static void *
blocked_reader_main(void *arg)
{
	struct blocked_reader *br = arg;
	struct tg_rec r;
	uint8_t buf[256];

	if (br->use_read) {
		errno = 0;
		br->n = uktls_read(br->fd, buf, sizeof(buf));
		br->err = errno;
	} else {
		tg_recv(br->fd, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
		br->n = r.n;
		br->err = r.err;
	}
	return (NULL);
}

/* uktls_close() from another thread wakes a blocked reader with EBADF. */
static void
t_close_wakes_reader(void *arg)
{
	const struct tg_suite *s = arg;
	struct blocked_reader br;
	struct tg_conn c;
	struct timespec ts;
	pthread_t t;
	int mode;

	for (mode = 0; mode < 2; mode++) {
		if (tg_conn_open(&c, s, 1) == -1)
			return;
		memset(&br, 0, sizeof(br));
		br.fd = c.rx;
		br.use_read = mode;
		/* Half a header queued: the reader has something to wait on. */
		if (send_raw(&c, "\x17\x03", 2) == -1 ||
		    pthread_create(&t, NULL, blocked_reader_main, &br) != 0) {
			tg_conn_close(&c);
			return;
		}
		tg_sleep_ms(150);
		CHECK_EQ(uktls_close(c.rx), 0);
		c.rx = -1;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5 * TG_TIME_MUL;
		if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
			harness_fail(__FILE__, __LINE__, "%s blocked in "
			    "uktls_%s did not return after uktls_close",
			    "reader", mode ? "read" : "recvmsg");
			pthread_detach(t);
			tg_conn_close(&c);
			return;
		}
		CHECK_EQ(br.n, -1);
		CHECK_EQ(br.err, EBADF);
		tg_conn_close(&c);
	}
}

/*
 * A reader racing uktls_close: a read that starts while the close is under
 * way must get EBADF (or, once the descriptor is closed, what the kernel
 * says of a closed descriptor), never bytes read from the descriptor
 * itself, which would hand ciphertext over as plaintext.  The peer's
 * records carry zeros only, so any other byte is ciphertext.
 */
struct close_racer {
	int fd;
	atomic_int stop;
	int leaked;
};

static void *
close_racer_main(void *arg)
{
	struct close_racer *cr = arg;
	uint8_t buf[65536];
	ssize_t n, i;

	while (!atomic_load(&cr->stop)) {
		n = uktls_recv(cr->fd, buf, sizeof(buf), MSG_DONTWAIT);
		for (i = 0; i < n; i++)
			if (buf[i] != 0) {
				cr->leaked++;
				break;
			}
	}
	return NULL;
}

static void
t_close_race_reader(void *arg)
{
	const struct tg_suite *s = arg;
	struct close_racer cr;
	struct tg_delayed_write dw;
	struct tg_conn c;
	uint8_t *zero, *wire;
	size_t n, wlen = 0;
	pthread_t t;
	int iter, i, leaked = 0;

	zero = calloc(1, 16000);
	wire = xmalloc(32 * TG_MAX_RECORD);
	REQUIRE(zero != NULL);
	for (iter = 0; iter < 40; iter++) {
		if (tg_conn_open(&c, s, 1) == -1)
			break;
		wlen = 0;
		for (i = 0; i < 32; i++) {
			if ((n = mk(&c, wire + wlen, APP, zero, 16000, 0)) == 0)
				break;
			wlen += n;
		}
		memset(&cr, 0, sizeof(cr));
		cr.fd = c.rx;
		if (tg_delayed_write_start(&dw, c.tx, wire, wlen, 0) == -1 ||
		    pthread_create(&t, NULL, close_racer_main, &cr) != 0) {
			tg_conn_close(&c);
			break;
		}
		tg_sleep_ms(1 + iter % 5);
		CHECK_EQ(uktls_close(c.rx), 0);
		c.rx = -1;
		tg_sleep_ms(2);
		atomic_store(&cr.stop, 1);
		pthread_join(t, NULL);
		/* The peer's write may block on a closed window: end it. */
		shutdown(c.tx, SHUT_RDWR);
		(void)tg_delayed_write_join(&dw);
		leaked += cr.leaked;
		tg_conn_close(&c);
	}
	CHECK_EQ(leaked, 0);
	free(wire);
	free(zero);
}

/*
 * A signal and a blocked reader, as recv(2) has them on Linux: a handler
 * without SA_RESTART ends the wait with EINTR; with SA_RESTART the read
 * goes on, unless SO_RCVTIMEO is set, when it always ends (signal(7)).
 * Each case runs for a reader's first wait and for one that has kept the
 * socket after a record (it blocks in the socket's own recvmsg then), and
 * the record sent afterwards is read whole: nothing is lost.
 */
static void
sig_noop(int sig)
{
	(void)sig;
}

static void
t_signal(void *arg)
{
	const struct tg_suite *s = arg;
	struct blocked_reader br;
	struct sigaction sa, old;
	struct timeval tv;
	struct tg_conn c;
	uint8_t a[64];
	pthread_t t;
	int mode, kept, i, ended, fails0 = harness_cur_failed;

	tg_random(a, sizeof(a));
	for (mode = 0; mode < 3; mode++) {
	for (kept = 0; kept < 2; kept++) {
		/* 0: no SA_RESTART; 1: SA_RESTART; 2: SA_RESTART and a
		 * receive timeout. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = sig_noop;
		sa.sa_flags = mode == 0 ? 0 : SA_RESTART;
		sigemptyset(&sa.sa_mask);
		REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
		if (tg_conn_open(&c, s, 1) == -1)
			goto restore;
		if (mode == 2) {
			tv.tv_sec = 60;
			tv.tv_usec = 0;
			CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET,
			    SO_RCVTIMEO, &tv, sizeof(tv)), 0);
		}
		if (kept) {
			if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1)
				goto close;
			TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
		}
		memset(&br, 0, sizeof(br));
		br.fd = c.rx;
		if (pthread_create(&t, NULL, blocked_reader_main, &br) != 0)
			goto close;
		/*
		 * A signal that comes before the reader blocks interrupts
		 * nothing: send them until the read ends, or a while.
		 */
		ended = 0;
		for (i = 0; i < (mode == 1 ? 10 : 250 * TG_TIME_MUL); i++) {
			tg_sleep_ms(20);
			pthread_kill(t, SIGUSR1);
			if (pthread_tryjoin_np(t, NULL) == 0) {
				ended = 1;
				break;
			}
		}
		CHECK_EQ(ended, mode != 1);
		if (!ended) {
			/* The read goes on: the record ends it. */
			if (tg_conn_send(&c, APP, a, sizeof(a), 0) == -1) {
				uktls_close(c.rx);
				c.rx = -1;
			}
			pthread_join(t, NULL);
			CHECK_EQ(br.n, (ssize_t)sizeof(a));
		} else {
			CHECK_EQ(br.n, -1);
			CHECK_EQ(br.err, EINTR);
			if (tg_conn_send(&c, APP, a, sizeof(a), 0) == 0)
				TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
		}
		if (harness_cur_failed != fails0)
			printf("  mode %d, %s\n", mode, kept ? "kept socket" :
			    "first wait");
close:
		tg_conn_close(&c);
restore:
		sigaction(SIGUSR1, &old, NULL);
		if (harness_cur_failed != fails0)
			return;
	}
	}
}

/*
 * The signal cases again in a fresh process with UKTLS_INLINE_DECRYPT=0:
 * there every reader waits for the input thread and a worker, asleep in
 * the socket buffer's own wait, which must end for a signal as recv's
 * does.
 */
TEST(signal_worker_wait)
{
	char *args[3];
	int status;
	pid_t pid;

	tg_watchdog(300 * TG_TIME_MUL);
	args[0] = (char *)(uintptr_t)"test_rx";
	args[1] = (char *)(uintptr_t)"signal/";
	args[2] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		setenv("UKTLS_INLINE_DECRYPT", "0", 1);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	REQUIRE(pid > 0);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		harness_fail(__FILE__, __LINE__, "the signal cases without "
		    "inline decryption %s %d", WIFEXITED(status) ? "exited" :
		    "died of signal", WIFEXITED(status) ? WEXITSTATUS(status) :
		    WTERMSIG(status));
}

/*
 * A reader that took a record from its own read keeps the socket and, on
 * its next call, blocks in the socket's own recvmsg: uktls_close() and
 * uktls_shutdown(SHUT_RD) from another thread still end that wait (EBADF,
 * end of stream), and a descriptor made non-blocking after the first read
 * answers EAGAIN at once rather than block.
 */
struct owner_reader {
	int fd;
	const uint8_t *first;
	size_t first_len;
	int first_ok;
	ssize_t n;
	int err;
};

static void *
owner_reader_main(void *arg)
{
	struct owner_reader *or = arg;
	uint8_t buf[512];

	or->first_ok = uktls_read(or->fd, buf, sizeof(buf)) ==
	    (ssize_t)or->first_len && memcmp(buf, or->first,
	    or->first_len) == 0;
	errno = 0;
	or->n = uktls_read(or->fd, buf, sizeof(buf));
	or->err = errno;
	return (NULL);
}

static void
t_owner_wakes(void *arg)
{
	static const char *const how[] = { "uktls_close", "uktls_shutdown" };
	const struct tg_suite *s = arg;
	struct tg_delayed_write dw;
	struct owner_reader or;
	struct tg_conn c;
	struct timespec ts;
	uint8_t a[200], buf[512], *rec;
	pthread_t t;
	size_t n;
	int mode, fl;
	double t0;

	rec = xmalloc(TG_MAX_RECORD);
	for (mode = 0; mode < 3; mode++) {
		if (tg_conn_open(&c, s, 1) == -1)
			break;
		tg_random(a, sizeof(a));
		memset(&or, 0, sizeof(or));
		or.fd = c.rx;
		or.first = a;
		or.first_len = sizeof(a);
		/*
		 * The record comes while the reader already waits, so that
		 * it takes it through its own read and keeps the socket.
		 */
		if ((n = mk(&c, rec, APP, a, sizeof(a), 0)) == 0 ||
		    tg_delayed_write_start(&dw, c.tx, rec, n, 100) == -1) {
			tg_conn_close(&c);
			break;
		}
		if (mode == 2) {
			CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), sizeof(a));
			CHECK_EQ(tg_delayed_write_join(&dw), n);
			fl = fcntl(c.rx, F_GETFL);
			REQUIRE(fl != -1);
			REQUIRE(fcntl(c.rx, F_SETFL, fl | O_NONBLOCK) == 0);
			t0 = tg_now();
			CHECK_ERRNO(uktls_read(c.rx, buf, sizeof(buf)),
			    EAGAIN);
			CHECK(tg_now() - t0 < 1.0);
			tg_conn_close(&c);
			continue;
		}
		if (pthread_create(&t, NULL, owner_reader_main, &or) != 0) {
			(void)tg_delayed_write_join(&dw);
			tg_conn_close(&c);
			break;
		}
		CHECK_EQ(tg_delayed_write_join(&dw), n);
		/* Long enough for the second read to block. */
		tg_sleep_ms(150);
		if (mode == 0) {
			CHECK_EQ(uktls_close(c.rx), 0);
			c.rx = -1;
		} else
			CHECK_EQ(uktls_shutdown(c.rx, SHUT_RD), 0);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5 * TG_TIME_MUL;
		if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
			harness_fail(__FILE__, __LINE__, "reader blocked "
			    "after a record did not return after %s",
			    how[mode]);
			/* Let the reader go before the test's memory does. */
			(void)shutdown(or.fd, SHUT_RDWR);
			pthread_join(t, NULL);
			tg_conn_close(&c);
			break;
		}
		CHECK(or.first_ok);
		if (mode == 0) {
			CHECK_EQ(or.n, -1);
			CHECK_EQ(or.err, EBADF);
		} else
			CHECK_EQ(or.n, 0);
		tg_conn_close(&c);
	}
	free(rec);
}

/*
 * The child of fork() (run in the child; returns its exit status): the
 * inherited RX descriptor fails with EBADF, as its receive state stayed
 * with the parent, and closes; a connection the child enables itself works,
 * on an engine started afresh in the child.
 */
static int
fork_child(const struct tg_suite *s, int inherited,
    const struct ktls_session *parent_tls)
{
	static const uint8_t zero[TLS_MAX_KEY_LEN];
	struct tg_conn c2;
	uint8_t p[300], buf[512];
	ssize_t n;

	alarm(20 * TG_TIME_MUL);
	errno = 0;
	if (uktls_read(inherited, buf, sizeof(buf)) != -1 || errno != EBADF)
		return 1;
	/* The kernel socket is the parent's stream too: hands off. */
	errno = 0;
	if (uktls_shutdown(inherited, SHUT_RD) != -1 || errno != EBADF)
		return 6;
	/* The parent's keys are wiped in the child's copy of its memory. */
	if (memcmp(parent_tls->params.cipher_key, zero, sizeof(zero)) != 0 ||
	    memcmp(parent_tls->params.iv, zero,
	    sizeof(parent_tls->params.iv)) != 0)
		return 7;
	if (uktls_close(inherited) != 0)
		return 2;
	/* ThreadSanitizer cannot start threads in the child of a threaded
	 * process, and a new connection starts the engine's: under it only
	 * the inherited descriptor is checked. */
	if (TG_TSAN)
		return 0;
	if (tg_conn_open(&c2, s, 1) == -1)
		return 3;
	tg_random(p, sizeof(p));
	if (tg_conn_send(&c2, APP, p, sizeof(p), 0) != 0)
		return 4;
	n = uktls_read(c2.rx, buf, sizeof(buf));
	if (n != (ssize_t)sizeof(p) || memcmp(buf, p, sizeof(p)) != 0)
		return 5;
	tg_conn_close(&c2);
	return 0;
}

/*
 * fork() after the engine has run: the parent's socket goes on working
 * during and after the child's life, and the child gets what fork_child
 * checks.
 */
static void
t_fork(void *arg)
{
	const struct tg_suite *s = arg;
	const struct ktls_session *tls;
	struct socket *so;
	struct tg_conn c;
	uint8_t a[300], b[300];
	pid_t pid;
	int st;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	tg_random(a, sizeof(a));
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == 0)
		TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	so = so_lookup(c.rx);
	REQUIRE(so != NULL);
	tls = so->so_rcv.sb_tls_info;
	sorele(so);
	pid = fork();
	if (pid == -1) {
		harness_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
		tg_conn_close(&c);
		return;
	}
	if (pid == 0)
		_exit(fork_child(s, c.rx, tls));
	tg_random(b, sizeof(b));
	if (tg_conn_send(&c, APP, b, sizeof(b), 0) == 0)
		TG_EXPECT_RECORD(c.rx, APP, b, sizeof(b));
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		harness_fail(__FILE__, __LINE__, "child: %s %d",
		    WIFEXITED(st) ? "exit status" : "signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	tg_random(a, sizeof(a));
	if (tg_conn_send(&c, APP, a, sizeof(a), 0) == 0)
		TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
	tg_conn_close(&c);
}

/* A descriptor number freed by uktls_close() works again when reused. */
static void
t_fd_reuse(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c1, c2;
	uint8_t p[100], buf[16];
	int fd, rx2, tx2;

	if (tg_conn_open(&c1, s, 1) == -1)
		return;
	tg_random(p, sizeof(p));
	if (tg_conn_send(&c1, APP, p, sizeof(p), 0) == 0)
		TG_EXPECT_RECORD(c1.rx, APP, p, sizeof(p));
	/* Leave a record unread: close must discard it. */
	(void)tg_conn_send(&c1, APP, p, sizeof(p), 0);
	fd = c1.rx;
	CHECK_EQ(uktls_close(fd), 0);
	c1.rx = -1;
	tg_conn_close(&c1);
	errno = 0;
	CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF);

	REQUIRE(tg_tcp_pair(&rx2, &tx2) == 0);
	if (tx2 == fd) {
		/* The peer got the number: move it out of the way. */
		tx2 = dup(fd);
		REQUIRE(tx2 != -1);
		close(fd);
	}
	if (rx2 != fd) {
		REQUIRE(dup2(rx2, fd) == fd);
		close(rx2);
	}
	memset(&c2, 0, sizeof(c2));
	c2.rx = fd;
	c2.tx = tx2;
	if (tlsgen_init(&c2.g, s, tg_random64() >> 1) == -1) {
		harness_fail(__FILE__, __LINE__, "tlsgen_init");
		tg_conn_close(&c2);
		return;
	}
	tlsgen_enable(&c2.g, &c2.en);
	/* The new socket starts plain. */
	CHECK_EQ(rx_mode(fd), TCP_TLS_MODE_NONE);
	errno = 0;
	CHECK(uktls_event_fd(fd) == -1 && errno == ENOTCONN);
	CHECK_EQ(tg_write_all(tx2, "raw", 3), 3);
	CHECK_EQ(uktls_recv(fd, buf, sizeof(buf), 0), 3);
	CHECK(memcmp(buf, "raw", 3) == 0);
	if (tg_conn_enable(&c2) == 0) {
		CHECK_EQ(rx_mode(fd), TCP_TLS_MODE_SW);
		tg_random(p, sizeof(p));
		if (tg_conn_send(&c2, APP, p, sizeof(p), 0) == 0)
			TG_EXPECT_RECORD(fd, APP, p, sizeof(p));
	}
	tg_conn_close(&c2);
}

/*
 * Bytes queued in the kernel before the enable start the TLS stream; with
 * partial, the last record is split across the enable.
 */
static void
rx_prequeued(const struct tg_suite *s, int partial)
{
	struct tg_conn c;
	uint8_t p[3][333], *wire;
	size_t n, wlen = 0, last = 0;
	int i;

	if (tg_conn_open(&c, s, 0) == -1)
		return;
	wire = xmalloc(3 * TG_MAX_RECORD);
	for (i = 0; i < 3; i++) {
		tg_random(p[i], sizeof(p[i]));
		if ((n = mk(&c, wire + wlen, i == 1 ? TLS_RLTYPE_HANDSHAKE :
		    APP, p[i], sizeof(p[i]), 0)) == 0)
			goto out;
		last = wlen;
		wlen += n;
	}
	if (partial) {
		if (send_raw(&c, wire, last + 7) == -1)
			goto out;
	} else if (send_raw(&c, wire, wlen) == -1)
		goto out;
	tg_sleep_ms(50);
	if (tg_conn_enable(&c) == -1)
		goto out;
	if (partial && send_raw(&c, wire + last + 7, wlen - last - 7) == -1)
		goto out;
	TG_EXPECT_RECORD(c.rx, APP, p[0], sizeof(p[0]));
	TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_HANDSHAKE, p[1], sizeof(p[1]));
	TG_EXPECT_RECORD(c.rx, APP, p[2], sizeof(p[2]));
out:
	free(wire);
	tg_conn_close(&c);
}

static void
t_prequeued(void *arg)
{

	rx_prequeued(arg, 0);
}

static void
t_prequeued_partial(void *arg)
{

	rx_prequeued(arg, 1);
}

/* Without RX the calls are the plain system calls. */
TEST(not_enabled)
{
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		char buf[64];
	} ctl;
	char buf[64];
	socklen_t sl;
	short rev;
	int rx, tx, v, one = 1;

	REQUIRE(tg_tcp_pair(&rx, &tx) == 0);
	CHECK_EQ(rx_mode(rx), TCP_TLS_MODE_NONE);
	errno = 0;
	CHECK(uktls_event_fd(rx) == -1 && errno == ENOTCONN);
	CHECK_EQ(poll_one(rx, POLLIN, 0, &rev), 0);
	CHECK_ERRNO(uktls_recv(rx, buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);

	CHECK_EQ(tg_write_all(tx, "hello world", 11), 11);
	CHECK_EQ(poll_one(rx, POLLIN, TG_WAIT_MS, &rev), 1);
	CHECK((rev & POLLIN) != 0);
	CHECK_EQ(uktls_recv(rx, buf, 5, MSG_WAITALL), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(uktls_read(rx, buf, 6), 6);
	CHECK(memcmp(buf, " world", 6) == 0);

	CHECK_EQ(tg_write_all(tx, "abc", 3), 3);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = 3;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	CHECK_EQ(uktls_recvmsg(rx, &msg, MSG_WAITALL), 3);
	CHECK_EQ(msg.msg_controllen, 0);
	CHECK(memcmp(buf, "abc", 3) == 0);

	sl = sizeof(v);
	CHECK_EQ(uktls_getsockopt(rx, SOL_SOCKET, SO_TYPE, &v, &sl), 0);
	CHECK_EQ(v, SOCK_STREAM);
	CHECK_EQ(uktls_setsockopt(rx, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)), 0);

	CHECK_EQ(uktls_shutdown(rx, SHUT_WR), 0);
	CHECK_EQ(read(tx, buf, sizeof(buf)), 0);
	CHECK_EQ(uktls_close(rx), 0);
	errno = 0;
	CHECK(fcntl(rx, F_GETFD) == -1 && errno == EBADF);
	close(tx);
}

/* Calls on a descriptor that is not open fail like the system calls. */
TEST(bad_descriptor)
{
	char buf[8];
	int fd;

	fd = dup(0);
	REQUIRE(fd != -1);
	close(fd);
	CHECK_ERRNO(uktls_recv(fd, buf, sizeof(buf), 0), EBADF);
	CHECK_ERRNO(uktls_read(fd, buf, sizeof(buf)), EBADF);
	CHECK_ERRNO(uktls_close(fd), EBADF);
}

/* uktls_configure() once the engine runs: EBUSY. */
TEST(configure_after_enable)
{
	struct uktls_config cfg;
	struct tg_conn c;
	int r;

	if (tg_conn_open(&c, &tg_suites[0], 1) == -1)
		return;
	uktls_config_defaults(&cfg);
	/* The header leaves open whether the error is returned or in errno. */
	errno = 0;
	r = uktls_configure(&cfg);
	if (!(r == EBUSY || (r == -1 && errno == EBUSY)))
		harness_fail(__FILE__, __LINE__, "uktls_configure after an "
		    "enable: %d errno %d, want EBUSY", r, errno);
	tg_conn_close(&c);
}

/* uktls_start runs the engine (again: a no-op) and fixes the settings. */
TEST(start)
{
	struct uktls_config cfg;
	int r;

	CHECK_EQ(uktls_start(), 0);
	CHECK_EQ(uktls_start(), 0);
	uktls_config_defaults(&cfg);
	errno = 0;
	r = uktls_configure(&cfg);
	CHECK(r == EBUSY || (r == -1 && errno == EBUSY));
}

/*
 * The reader's spin: UKTLS_SPIN_US sets it (0 turns it off, a value past
 * the limit is ignored), and uktls_configure() refuses a spin past the
 * limit with EINVAL, before it looks at whether the engine runs.
 */
TEST(configure_spin)
{
	struct uktls_config cfg;
	const char *old = getenv("UKTLS_SPIN_US");
	char *saved = old != NULL ? strdup(old) : NULL;
	int r;

	setenv("UKTLS_SPIN_US", "50", 1);
	uktls_config_defaults(&cfg);
	CHECK_EQ(cfg.spin_us, 50u);
	CHECK_EQ(cfg.no_spin, 0);
	setenv("UKTLS_SPIN_US", "0", 1);
	uktls_config_defaults(&cfg);
	CHECK_EQ(cfg.spin_us, 0u);
	CHECK_EQ(cfg.no_spin, 1);
	setenv("UKTLS_SPIN_US", "5000", 1);
	uktls_config_defaults(&cfg);
	CHECK_EQ(cfg.spin_us, 0u);
	CHECK_EQ(cfg.no_spin, 0);
	if (saved != NULL)
		setenv("UKTLS_SPIN_US", saved, 1);
	else
		unsetenv("UKTLS_SPIN_US");
	free(saved);

	uktls_config_defaults(&cfg);
	cfg.spin_us = 1001;
	errno = 0;
	r = uktls_configure(&cfg);
	if (!(r == EINVAL || (r == -1 && errno == EINVAL)))
		harness_fail(__FILE__, __LINE__, "uktls_configure with a "
		    "1001 us spin: %d errno %d, want EINVAL", r, errno);
}

struct stat_want {
	uint64_t enabled, active, records, bytes, received, bad_tag,
	    bad_header, bad_length, truncated;
};

/* Wait (up to 2 s) for the counters to reach s0 + w, then check them. */
static void
check_stats(const struct uktls_stats *s0, const struct stat_want *w)
{
	struct uktls_stats s1;
	double deadline = tg_now() + 2.0 * TG_TIME_MUL;

	for (;;) {
		if (uktls_get_stats(&s1) != 0) {
			harness_fail(__FILE__, __LINE__, "uktls_get_stats: %s",
			    strerror(errno));
			return;
		}
		if ((s1.sockets_enabled - s0->sockets_enabled == w->enabled &&
		    s1.sockets_active - s0->sockets_active == w->active &&
		    s1.records_decrypted - s0->records_decrypted ==
		    w->records &&
		    s1.bytes_decrypted - s0->bytes_decrypted == w->bytes &&
		    s1.bytes_received - s0->bytes_received == w->received &&
		    s1.err_bad_tag - s0->err_bad_tag == w->bad_tag &&
		    s1.err_bad_header - s0->err_bad_header == w->bad_header &&
		    s1.err_bad_length - s0->err_bad_length == w->bad_length &&
		    s1.err_truncated - s0->err_truncated == w->truncated) ||
		    tg_now() > deadline)
			break;
		tg_sleep_ms(5);
	}
	CHECK_EQ(s1.sockets_enabled - s0->sockets_enabled, w->enabled);
	CHECK_EQ(s1.sockets_active - s0->sockets_active, w->active);
	CHECK_EQ(s1.records_decrypted - s0->records_decrypted, w->records);
	CHECK_EQ(s1.bytes_decrypted - s0->bytes_decrypted, w->bytes);
	CHECK_EQ(s1.bytes_received - s0->bytes_received, w->received);
	CHECK_EQ(s1.err_bad_tag - s0->err_bad_tag, w->bad_tag);
	CHECK_EQ(s1.err_bad_header - s0->err_bad_header, w->bad_header);
	CHECK_EQ(s1.err_bad_length - s0->err_bad_length, w->bad_length);
	CHECK_EQ(s1.err_truncated - s0->err_truncated, w->truncated);
}

/* The engine's counters follow what the connections did. */
static void
t_stats_counters(void *arg)
{
	const struct tg_suite *s = arg;
	struct uktls_stats s0;
	struct stat_want w;
	struct tg_conn c;
	uint8_t p[100], *rec;
	size_t n;
	int i;

	REQUIRE(uktls_get_stats(&s0) == 0);
	memset(&w, 0, sizeof(w));
	rec = xmalloc(TG_MAX_RECORD);
	if (tg_conn_open(&c, s, 1) == -1)
		goto out;
	w.enabled = w.active = 1;
	for (i = 0; i < 5; i++) {
		tg_random(p, sizeof(p));
		if ((n = mk(&c, rec, APP, p, sizeof(p), 0)) == 0 ||
		    send_raw(&c, rec, n) == -1)
			goto out1;
		w.received += n;
		TG_EXPECT_RECORD(c.rx, APP, p, sizeof(p));
	}
	w.records = 5;
	w.bytes = 5 * sizeof(p);
	if ((n = mk(&c, rec, APP, p, sizeof(p), 0)) == 0)
		goto out1;
	rec[n - 1] ^= 1;
	if (send_raw(&c, rec, n) == -1)
		goto out1;
	w.received += n;
	w.bad_tag = 1;
	TG_EXPECT_ERROR(c.rx, EBADMSG);
	check_stats(&s0, &w);
	tg_conn_close(&c);
	w.active = 0;
	check_stats(&s0, &w);

	/* A bad version, a bad length, a truncated record. */
	for (i = 0; i < 3; i++) {
		if (tg_conn_open(&c, s, 1) == -1)
			goto out;
		w.enabled++;
		if ((n = mk(&c, rec, APP, p, sizeof(p), 0)) == 0)
			goto out1;
		if (i == 0)
			rec[TG_OFF_VMAJOR] = 2;
		else if (i == 1)
			tg_set_length_field(rec, 0x7fff);
		if (i == 2)
			n -= 1;
		if (send_raw(&c, rec, n) == -1)
			goto out1;
		if (i == 2)
			shutdown(c.tx, SHUT_WR);
		TG_EXPECT_ERROR(c.rx, i == 0 ? EINVAL : EMSGSIZE);
		tg_conn_close(&c);
	}
	w.bad_header = w.bad_length = w.truncated = 1;
	/* What the input read of the broken records is not pinned down. */
	{
		struct uktls_stats s1;

		REQUIRE(uktls_get_stats(&s1) == 0);
		w.received = s1.bytes_received - s0.bytes_received;
	}
	check_stats(&s0, &w);
	goto out;
out1:
	tg_conn_close(&c);
out:
	free(rec);
}

static void
register_tests(void)
{
	/* The FreeBSD catalog, for every AEAD suite. */
	tg_register_suites("short", t_short, 0, TG_NSUITES);
	tg_register_suites("long", t_long, 0, TG_NSUITES);
	tg_register_suites("bad_data", t_bad_data, 0, TG_NSUITES);
	tg_register_suites("bad_mac", t_bad_mac, 0, TG_NSUITES);
	tg_register_suites("truncated_record", t_truncated_record, 0,
	    TG_NSUITES);
	tg_register_suites("bad_major", t_bad_major, 0, TG_NSUITES);
	tg_register_suites("bad_minor", t_bad_minor, 0, TG_NSUITES);
	tg_register_suites("small_record", t_small_record, 0, TG_NSUITES);
	tg_register_suites("oversized_record", t_oversized_record, 0,
	    TG_NSUITES);
	tg_register_suites("bad_iv", t_bad_iv, TG_FIRST_TLS12_GCM,
	    TG_NTLS12_GCM);
	tg_register_suites("short_header", t_short_header, TG_FIRST_TLS12_GCM,
	    TG_NTLS12_GCM);
	tg_register_suites("short_padded", t_short_padded, TG_FIRST_TLS13,
	    TG_NTLS13);
	tg_register_suites("long_padded", t_long_padded, TG_FIRST_TLS13,
	    TG_NTLS13);
	tg_register_suites("bad_type", t_bad_type, TG_FIRST_TLS13, TG_NTLS13);
	/* Length limits. */
	tg_register_suites("max_record", t_max_record, 0, TG_NSUITES);
	tg_register_suites("oversized_by_one", t_oversized_by_one, 0,
	    TG_NSUITES);
	tg_register_suites("tls13_content_overflow", t_tls13_content_overflow,
	    TG_FIRST_TLS13, TG_NTLS13);
	tg_register_suites("tls13_no_type", t_tls13_no_type, TG_FIRST_TLS13,
	    TG_NTLS13);

	/* Enable time. */
	harness_register_param("invalid", t_enable_case, enable_invalid,
	    sizeof(enable_invalid[0]),
	    sizeof(enable_invalid) / sizeof(enable_invalid[0]),
	    enable_case_name);
	harness_register_param("unsupported", t_enable_case,
	    enable_unsupported, sizeof(enable_unsupported[0]), 1,
	    enable_case_name);
	harness_register_param("cbc_not_supported", t_enable_case, enable_cbc,
	    sizeof(enable_cbc[0]), sizeof(enable_cbc) / sizeof(enable_cbc[0]),
	    enable_case_name);
	tg_register_suites("already_enabled", t_already_enabled, 0,
	    TG_NSUITES);
	tg_register_suites("rxtls_mode", t_rxtls_mode, 0, TG_NSUITES);

	/* Receive semantics. */
	tg_register_suites("partial_read", t_partial_read, 0, TG_NSUITES);
	tg_register_suites("ctrunc", t_ctrunc, 0, TG_NSUITES);
	tg_register_suites("peek", t_peek, 0, TG_NSUITES);
	tg_register_suites("waitall", t_waitall, 0, TG_NSUITES);
	tg_register_suites("dontwait", t_dontwait, 0, TG_NSUITES);
	tg_register_suites("o_nonblock", t_o_nonblock, 0, TG_NSUITES);
	tg_register_suites("blocking_wait", t_blocking_wait, 0, TG_NSUITES);
	tg_register_suites("blocking_wakeups", t_blocking_wakeups, 0,
	    TG_NSUITES);
	tg_register_suites("rcvtimeo", t_rcvtimeo, 0, TG_NSUITES);
	tg_register_suites("signal", t_signal, 0, TG_NSUITES);
	tg_register_suites("close_race_reader", t_close_race_reader, 0,
	    TG_NSUITES);
	tg_register_suites("iovec", t_iovec, 0, TG_NSUITES);
	tg_register_suites("poll_partial", t_poll_partial, 0, TG_NSUITES);
	tg_register_suites("poll_mixed", t_poll_mixed, 0, TG_NSUITES);
	tg_register_suites("event_fd", t_event_fd, 0, TG_NSUITES);
	tg_register_suites("read_recv", t_read_recv, 0, TG_NSUITES);
	tg_register_suites("empty_record", t_empty_record, 0, TG_NSUITES);
	tg_register_suites("empty_records_flood", t_empty_records_flood, 0,
	    TG_NSUITES);
	tg_register_suites("control_types", t_control_types, 0, TG_NSUITES);
	tg_register_suites("bad_tag_between", t_bad_tag_between, 0,
	    TG_NSUITES);
	tg_register_suites("bad_tags_in_place", t_bad_tags_in_place, 0,
	    TG_NSUITES);
	tg_register_suites("bad_tags_overflow", t_bad_tags_overflow, 0,
	    TG_NSUITES);
	tg_register_suites("so_error", t_so_error, 0, TG_NSUITES);
	tg_register_suites("sticky_einval", t_sticky_einval, 0, TG_NSUITES);
	tg_register_suites("sticky_emsgsize", t_sticky_emsgsize, 0,
	    TG_NSUITES);
	tg_register_suites("clean_eof", t_clean_eof, 0, TG_NSUITES);
	tg_register_suites("eof_mid_record", t_eof_mid_record, 0, TG_NSUITES);
	tg_register_suites("eof_mid_header", t_eof_mid_header, 0, TG_NSUITES);
	tg_register_suites("close_wakes_reader", t_close_wakes_reader, 0,
	    TG_NSUITES);
	tg_register_suites("owner_wakes", t_owner_wakes, 0,
	    TG_NSUITES);
	tg_register_suites("fd_reuse", t_fd_reuse, 0, TG_NSUITES);
	tg_register_suites("fork", t_fork, 0, TG_NSUITES);
	tg_register_suites("prequeued", t_prequeued, 0, TG_NSUITES);
	tg_register_suites("prequeued_partial", t_prequeued_partial, 0,
	    TG_NSUITES);
	tg_register_suites("stats_counters", t_stats_counters, 0, TG_NSUITES);
}

int
main(int argc, char **argv)
{

	register_tests();
	return (harness_main(argc, argv));
}
