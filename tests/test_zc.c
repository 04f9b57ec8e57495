/*
 * The zero-copy receive interface: uktls_recv_zc hands over each decrypted
 * record's own buffers.  Real loopback TCP, every suite.
 */
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "harness.h"
#include "tlsgen.h"

/* Gather a zero-copy record into buf; returns its length. */
static size_t
zc_gather(const struct uktls_zc_record *rec, char *buf, size_t size)
{
	struct iovec iov[64];
	size_t off = 0;
	int i, n;

	n = uktls_zc_iov(rec, iov, 64);
	for (i = 0; i < n && i < 64; i++) {
		if (off + iov[i].iov_len > size)
			break;
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return off;
}

/* Records of many sizes, each handed over whole with its type. */
static void
zc_records(void *p)
{
	const struct tg_suite *s = p;
	static const size_t sizes[] = { 1, 100, 2047, 2048, 5000, 16383,
		16384 };
	struct uktls_zc_record *rec;
	struct tls_get_record tgr;
	struct tg_conn c;
	char payload[16384], got[16384];
	size_t i;
	ssize_t n;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tg_random(payload, sizes[i]);
		REQUIRE(tg_conn_send(&c, 23, payload, sizes[i], 0) == 0);
		n = uktls_recv_zc(c.rx, &rec, &tgr, 0);
		REQUIRE_EQ(n, (ssize_t)sizes[i]);
		REQUIRE(rec != NULL);
		CHECK_EQ(tgr.tls_type, 23);
		CHECK_EQ(tgr.tls_vmajor, 3);
		CHECK_EQ(ntohs(tgr.tls_length), sizes[i]);
		CHECK_EQ(zc_gather(rec, got, sizeof(got)), sizes[i]);
		CHECK(memcmp(got, payload, sizes[i]) == 0);
		uktls_zc_free(rec);
	}
	/* A handshake-type record and an empty record keep their type. */
	REQUIRE(tg_conn_send(&c, 22, payload, 10, 0) == 0);
	REQUIRE(tg_conn_send(&c, 23, payload, 0, 0) == 0);
	n = uktls_recv_zc(c.rx, &rec, &tgr, 0);
	CHECK_EQ(n, 10);
	CHECK_EQ(tgr.tls_type, 22);
	uktls_zc_free(rec);
	n = uktls_recv_zc(c.rx, &rec, &tgr, 0);
	CHECK_EQ(n, 0);
	REQUIRE(rec != NULL);
	CHECK_EQ(uktls_zc_iov(rec, NULL, 0), 0);
	uktls_zc_free(rec);
	/* End of stream: 0 and no record. */
	shutdown(c.tx, SHUT_WR);
	n = uktls_recv_zc(c.rx, &rec, &tgr, 0);
	CHECK_EQ(n, 0);
	CHECK(rec == NULL);
	tg_conn_close(&c);
}

/*
 * A record held by the application outlives the socket: it is freed after
 * uktls_close, and a partial read before zc hands over the rest.
 */
static void
zc_outlives_close(void *p)
{
	const struct tg_suite *s = p;
	struct uktls_zc_record *rec, *rec2;
	struct tls_get_record tgr;
	struct tg_conn c;
	char payload[9000], got[9000];
	ssize_t n;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	REQUIRE(tg_conn_send(&c, 23, payload, sizeof(payload), 0) == 0);
	REQUIRE(tg_conn_send(&c, 23, payload, sizeof(payload), 0) == 0);
	CHECK_EQ(uktls_read(c.rx, got, 1000), 1000);
	n = uktls_recv_zc(c.rx, &rec, &tgr, 0);
	CHECK_EQ(n, (ssize_t)sizeof(payload) - 1000);
	CHECK_EQ(tgr.tls_type, 0);
	CHECK_EQ(ntohs(tgr.tls_length), sizeof(payload) - 1000);
	n = uktls_recv_zc(c.rx, &rec2, &tgr, MSG_WAITALL);
	CHECK_EQ(n, (ssize_t)sizeof(payload));
	tg_conn_close(&c);
	CHECK_EQ(zc_gather(rec, got, sizeof(got)), sizeof(payload) - 1000);
	CHECK(memcmp(got, payload + 1000, sizeof(payload) - 1000) == 0);
	CHECK_EQ(zc_gather(rec2, got, sizeof(got)), sizeof(payload));
	CHECK(memcmp(got, payload, sizeof(payload)) == 0);
	uktls_zc_free(rec);
	uktls_zc_free(rec2);
}

/* Errors and non-blocking behave as for uktls_recvmsg. */
static void
zc_errors(void *p)
{
	const struct tg_suite *s = p;
	struct uktls_zc_record *rec;
	struct tg_conn c;
	uint8_t buf[TG_MAX_RECORD];
	ssize_t len;
	int fd;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	CHECK_ERRNO(uktls_recv_zc(c.rx, &rec, NULL, MSG_DONTWAIT), EAGAIN);
	len = tg_conn_make(&c, 23, "hello", 5, 0, buf);
	REQUIRE(len > 0);
	buf[len - 1] ^= 1;
	REQUIRE(tg_write_all(c.tx, buf, (size_t)len) == len);
	CHECK_ERRNO(uktls_recv_zc(c.rx, &rec, NULL, 0), EBADMSG);
	CHECK_ERRNO(uktls_recv_zc(c.rx, &rec, NULL, MSG_PEEK), EINVAL);
	/* Not RX-enabled: ENOTCONN; not open (never, or closed): EBADF, as
	 * uktls_recvmsg finds through the system call. */
	CHECK_ERRNO(uktls_recv_zc(c.tx, &rec, NULL, 0), ENOTCONN);
	fd = c.rx;
	tg_conn_close(&c);
	CHECK_ERRNO(uktls_recv_zc(fd, &rec, NULL, 0), EBADF);
	CHECK_ERRNO(uktls_recv(fd, buf, sizeof(buf), 0), EBADF);
	CHECK_ERRNO(uktls_recv_zc(-1, &rec, NULL, 0), EBADF);
	errno = 0;
	CHECK(uktls_event_fd(-1) == -1 && errno == EBADF);
}

int
main(int argc, char **argv)
{
	tg_register_suites("zc_records", zc_records, 0, TG_NSUITES);
	tg_register_suites("zc_outlives_close", zc_outlives_close, 0,
	    TG_NSUITES);
	tg_register_suites("zc_errors", zc_errors, 0, TG_NSUITES);
	return harness_main(argc, argv);
}
