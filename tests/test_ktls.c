/*
 * Tests of the worker path (src/ktls.c) that need to stop a worker at the
 * moment it holds a detached record with the sockbuf unlocked: the race the
 * FreeBSD review describes, where sbcut (close, shutdown) runs while a
 * record is being decrypted.  ktls_test_detach_hook makes it deterministic.
 * Every test runs over a real loopback TCP connection for each suite.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "harness.h"
#include "ktls.h"
#include "socket.h"
#include "tlsgen.h"

/* What the hook does when the worker detaches a record of hook_fd. */
enum hook_action { HOOK_NONE, HOOK_CLOSE, HOOK_SHUTDOWN, HOOK_WAIT };

/* Shared with the worker thread that runs the hook. */
static _Atomic int hook_fd = -1;
static _Atomic int hook_action;
static sem_t hook_detached, hook_release;
static _Atomic int hook_result, hook_errno;

static void
detach_hook(struct socket *so)
{
	if (so->so_fd != hook_fd || hook_action == HOOK_NONE)
		return;
	switch (hook_action) {
	case HOOK_CLOSE:
		hook_result = uktls_close(hook_fd);
		hook_errno = errno;
		break;
	case HOOK_SHUTDOWN:
		hook_result = uktls_shutdown(hook_fd, SHUT_RD);
		hook_errno = errno;
		break;
	case HOOK_WAIT:
		sem_post(&hook_detached);
		sem_wait(&hook_release);
		break;
	default:
		break;
	}
	hook_action = HOOK_NONE;
}

static void
hook_arm(int fd, enum hook_action a)
{
	sem_init(&hook_detached, 0, 0);
	sem_init(&hook_release, 0, 0);
	hook_fd = fd;
	hook_result = 0;
	hook_errno = 0;
	hook_action = (int)a;
	ktls_test_detach_hook = detach_hook;
}

static void
hook_disarm(void)
{
	ktls_test_detach_hook = NULL;
	hook_fd = -1;
	hook_action = HOOK_NONE;
	sem_destroy(&hook_detached);
	sem_destroy(&hook_release);
}

static uint64_t
cancelled(void)
{
	struct uktls_stats st;

	uktls_get_stats(&st);
	return st.records_cancelled;
}

/* Wait until the counter moves past before, for up to a few seconds. */
static int
wait_cancelled(uint64_t before)
{
	int i;

	for (i = 0; i < 500 * TG_TIME_MUL; i++) {
		if (cancelled() > before)
			return 1;
		tg_sleep_ms(10);
	}
	return 0;
}

/* uktls_close from inside the worker while it holds the record. */
static void
close_while_decrypting(void *p)
{
	const struct tg_suite *s = p;
	struct tg_conn c;
	char payload[4096];
	uint64_t before = cancelled();

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	hook_arm(c.rx, HOOK_CLOSE);
	REQUIRE(tg_conn_send(&c, 23, payload, sizeof(payload), 0) == 0);
	CHECK(wait_cancelled(before));
	CHECK_EQ(hook_result, 0);
	hook_disarm();
	/* The descriptor is closed: uktls no longer knows it. */
	c.rx = -1;
	c.enabled = 0;
	tg_conn_close(&c);
}

/* shutdown(SHUT_RD) while a record is being decrypted: the record is
 * dropped and the reader sees end of stream. */
static void
shutdown_while_decrypting(void *p)
{
	const struct tg_suite *s = p;
	struct tg_conn c;
	char payload[1000], buf[2000];
	uint64_t before = cancelled();

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	hook_arm(c.rx, HOOK_SHUTDOWN);
	REQUIRE(tg_conn_send(&c, 23, payload, sizeof(payload), 0) == 0);
	CHECK(wait_cancelled(before));
	CHECK_EQ(hook_result, 0);
	hook_disarm();
	CHECK_EQ(uktls_read(c.rx, buf, sizeof(buf)), 0);
	tg_conn_close(&c);
}

struct reader {
	int fd;
	ssize_t n;
	int err;
	pthread_t t;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	char buf[20000];

	r->n = uktls_read(r->fd, buf, sizeof(buf));
	r->err = errno;
	return NULL;
}

/*
 * A reader blocked in uktls_read, a worker holding a record, and
 * uktls_close from a third thread: the reader returns EBADF, the worker
 * frees the record, and the descriptor number can be enabled again.
 */
static void
close_with_blocked_reader(void *p)
{
	const struct tg_suite *s = p;
	struct tg_conn c, c2;
	struct reader r;
	char payload[16384];
	uint64_t before = cancelled();
	int fd;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	r.fd = c.rx;
	r.n = 0;
	REQUIRE(pthread_create(&r.t, NULL, reader_main, &r) == 0);
	tg_sleep_ms(20);
	hook_arm(c.rx, HOOK_WAIT);
	REQUIRE(tg_conn_send(&c, 23, payload, sizeof(payload), 0) == 0);
	sem_wait(&hook_detached);
	/* The worker holds the record unlocked; the reader is blocked. */
	fd = c.rx;
	CHECK_EQ(uktls_close(fd), 0);
	sem_post(&hook_release);
	pthread_join(r.t, NULL);
	CHECK_EQ(r.n, -1);
	CHECK_EQ(r.err, EBADF);
	CHECK(wait_cancelled(before));
	hook_disarm();
	c.rx = -1;
	c.enabled = 0;
	tg_conn_close(&c);

	/* The number is free again and a new connection can be enabled on
	 * it, as the kernel hands out the lowest free descriptor. */
	REQUIRE(tg_conn_open(&c2, s, 1) == 0);
	REQUIRE(tg_conn_send(&c2, 23, payload, 100, 0) == 0);
	TG_EXPECT_RECORD(c2.rx, 23, payload, 100);
	tg_conn_close(&c2);
}

/*
 * Records keep arriving while the worker is stopped holding one: once it
 * goes on, everything is delivered in order, nothing lost.
 */
static void
appends_while_decrypting(void *p)
{
	const struct tg_suite *s = p;
	struct tg_conn c;
	char payload[8][3000];
	int i;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	for (i = 0; i < 8; i++)
		tg_random(payload[i], sizeof(payload[i]));
	hook_arm(c.rx, HOOK_WAIT);
	REQUIRE(tg_conn_send(&c, 23, payload[0], sizeof(payload[0]), 0) == 0);
	sem_wait(&hook_detached);
	for (i = 1; i < 8; i++)
		REQUIRE(tg_conn_send(&c, 23, payload[i], sizeof(payload[i]),
		    0) == 0);
	tg_sleep_ms(20);
	/* Nothing is readable while the first record is not decrypted. */
	CHECK_EQ(tg_wait_readable(c.rx, 0), 0);
	sem_post(&hook_release);
	for (i = 0; i < 8; i++)
		TG_EXPECT_RECORD(c.rx, 23, payload[i], sizeof(payload[i]));
	hook_disarm();
	tg_conn_close(&c);
}

/* ---------------------------------------------------------------------- */
/* Readers that help a pass: records of one connection decrypted at once.  */

static _Atomic int helped; /* records a helping reader took */

static void
help_hook(struct socket *so)
{
	(void)so;
	helped++;
}

/* The socket's detached records: out being decrypted, and parked. */
static void
tls_out(int fd, uint32_t *inflight, uint32_t *parked)
{
	struct socket *so = so_lookup(fd);

	*inflight = *parked = 0;
	if (so == NULL)
		return;
	SOCKBUF_LOCK(&so->so_rcv);
	*inflight = so->so_rcv.sb_tls_inflight;
	*parked = so->so_rcv.sb_tls_nparked;
	SOCKBUF_UNLOCK(&so->so_rcv);
	sorele(so);
}

/* Wait for n parked records, for up to a few seconds. */
static int
wait_parked(int fd, uint32_t n)
{
	uint32_t inflight, parked;
	int i;

	for (i = 0; i < 500 * TG_TIME_MUL; i++) {
		tls_out(fd, &inflight, &parked);
		if (parked == n)
			return 1;
		tg_sleep_ms(10);
	}
	fprintf(stderr, "  ... %u parked, %u out, waited for %u\n", parked,
	    inflight, n);
	return 0;
}

#define HELP_RECORDS 8
#define HELP_LEN 5000

/* What a reader thread got: each record's length and bytes, or an error. */
struct help_reader {
	int fd;
	int nrec;                 /* records to read */
	int stop_at_error;
	ssize_t n[HELP_RECORDS + 1];
	int err[HELP_RECORDS + 1];
	uint8_t type[HELP_RECORDS + 1];
	char buf[HELP_RECORDS + 1][HELP_LEN];
	pthread_t t;
};

static void *
help_reader_main(void *arg)
{
	struct help_reader *r = arg;
	struct tg_rec rec;
	int i;

	for (i = 0; i < r->nrec; i++) {
		r->n[i] = tg_recv(r->fd, r->buf[i], sizeof(r->buf[i]), 0,
		    TG_CTL_DEFAULT, &rec);
		r->err[i] = rec.err;
		r->type[i] = rec.tgr.tls_type;
		if (r->n[i] < 0 && r->stop_at_error && r->err[i] != EBADMSG)
			break;
	}
	return NULL;
}

/*
 * Hold the worker on the first of the records queued on c, then start a
 * reader: it takes the three after it (SB_TLS_MAXINFLIGHT) and parks them.
 * The records are in payload[], record k is payload[k]; bad[k] sends it
 * with a broken tag.
 */
static void
help_send(struct tg_conn *c, int nsend, char (*payload)[HELP_LEN],
    const int *bad)
{
	uint8_t wire[TG_MAX_RECORD];
	ssize_t n;
	int k;

	helped = 0;
	ktls_test_help_hook = help_hook;
	hook_arm(c->rx, HOOK_WAIT);
	for (k = 0; k < nsend; k++) {
		n = tg_conn_make(c, 23, payload[k], HELP_LEN, 0, wire);
		REQUIRE(n > 0);
		if (bad != NULL && bad[k])
			wire[n - 1] ^= 0x40;
		REQUIRE(tg_write_all(c->tx, wire, (size_t)n) == n);
		if (k == 0)
			sem_wait(&hook_detached);
	}
}

static void
help_start_reader(struct tg_conn *c, struct help_reader *r)
{
	/* Let the input thread queue everything sent. */
	tg_sleep_ms(50);
	r->fd = c->rx;
	REQUIRE(pthread_create(&r->t, NULL, help_reader_main, r) == 0);
}

static void
help_setup(struct tg_conn *c, struct help_reader *r, int nsend,
    char (*payload)[HELP_LEN], const int *bad)
{
	help_send(c, nsend, payload, bad);
	help_start_reader(c, r);
}

static void
help_teardown(void)
{
	ktls_test_help_hook = NULL;
	hook_disarm();
}

/*
 * The worker is stopped on record 0 while a reader waits: the reader
 * decrypts records 1-3 beside it and they wait, parked, until record 0 is
 * readable; then all eight arrive in order, the last four through the
 * worker or the reader, whichever got there.  For each backend: ipsec-mb
 * shares a session's key schedule between threads, OpenSSL gives each
 * helping reader a context of its own.
 */
static void
helpers_keep_order(void *p)
{
	const struct tg_suite *s = p;
	static const char *const backends[] = { "openssl", "ipsecmb" };
	static char payload[HELP_RECORDS][HELP_LEN];
	static struct help_reader r;
	struct tg_conn c;
	size_t b;
	int k, rc;

	/* Each backend, and ipsec-mb again with sequence numbers that wrap
	 * from 2^64 - 1 to 0 among the records out at once. */
	for (b = 0; b < sizeof(backends) / sizeof(backends[0]) + 1; b++) {
		setenv("UKTLS_CRYPTO", backends[b < 2 ? b : 1], 1);
		rc = b < 2 ? tg_conn_open(&c, s, 1) :
		    tg_conn_open_seq(&c, s, UINT64_MAX - 2, 1);
		if (rc != 0) {
			/* Not built with this backend, or it lacks the
			 * suite: the other covers it. */
			unsetenv("UKTLS_CRYPTO");
			continue;
		}
		unsetenv("UKTLS_CRYPTO");
		for (k = 0; k < HELP_RECORDS; k++)
			tg_random(payload[k], HELP_LEN);
		memset(&r, 0, sizeof(r));
		r.nrec = HELP_RECORDS;
		help_setup(&c, &r, 4, payload, NULL);
		CHECK(wait_parked(c.rx, 3));
		CHECK_EQ(helped, 3);
		/* Nothing is readable before record 0 is. */
		CHECK_EQ(tg_wait_readable(c.rx, 0), 0);
		for (k = 4; k < HELP_RECORDS; k++)
			REQUIRE(tg_conn_send(&c, 23, payload[k], HELP_LEN, 0) ==
			    0);
		sem_post(&hook_release);
		pthread_join(r.t, NULL);
		for (k = 0; k < HELP_RECORDS; k++) {
			CHECK_EQ(r.n[k], (ssize_t)HELP_LEN);
			CHECK_EQ(r.type[k], 23);
			CHECK(memcmp(r.buf[k], payload[k], HELP_LEN) == 0);
			if (harness_cur_failed != 0) {
				fprintf(stderr, "  ... run %zu, record %d\n",
				    b, k);
				break;
			}
		}
		help_teardown();
		tg_conn_close(&c);
	}
}

/*
 * A helped record that fails to authenticate is reported after the records
 * before it, the worker's included, and the records after it still come.
 */
static void
helper_bad_tag_in_order(void *p)
{
	const struct tg_suite *s = p;
	static char payload[HELP_RECORDS][HELP_LEN];
	static struct help_reader r;
	static const int bad[4] = { 0, 0, 1, 0 };
	struct tg_conn c;
	int k;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	for (k = 0; k < 4; k++)
		tg_random(payload[k], HELP_LEN);
	memset(&r, 0, sizeof(r));
	/* Records 0 and 1, the error in record 2's place, record 3. */
	r.nrec = 4;
	help_setup(&c, &r, 4, payload, bad);
	CHECK(wait_parked(c.rx, 3));
	sem_post(&hook_release);
	pthread_join(r.t, NULL);
	CHECK_EQ(r.n[0], (ssize_t)HELP_LEN);
	CHECK(memcmp(r.buf[0], payload[0], HELP_LEN) == 0);
	CHECK_EQ(r.n[1], (ssize_t)HELP_LEN);
	CHECK(memcmp(r.buf[1], payload[1], HELP_LEN) == 0);
	CHECK_EQ(r.n[2], -1);
	CHECK_EQ(r.err[2], EBADMSG);
	CHECK_EQ(r.n[3], (ssize_t)HELP_LEN);
	CHECK(memcmp(r.buf[3], payload[3], HELP_LEN) == 0);
	help_teardown();
	tg_conn_close(&c);
}

/*
 * A malformed header behind helped records: the helper leaves it alone,
 * the records before it are all readable, and then the stream dies with
 * EINVAL, never before them.  EOF inside a record behind helped records
 * likewise comes after them, as EMSGSIZE.
 */
static void
helper_then_bad_header_or_eof(void *p)
{
	const struct tg_suite *s = p;
	static char payload[HELP_RECORDS][HELP_LEN];
	static struct help_reader r;
	static const uint8_t badhdr[5 + 32] = { 23, 3, 1, 0, 32 };
	uint8_t wire[TG_MAX_RECORD];
	struct tg_conn c;
	ssize_t n;
	int k, eof;

	for (eof = 0; eof < 2; eof++) {
		REQUIRE(tg_conn_open(&c, s, 1) == 0);
		for (k = 0; k < 3; k++)
			tg_random(payload[k], HELP_LEN);
		memset(&r, 0, sizeof(r));
		r.nrec = 4;
		r.stop_at_error = 1;
		/* Records 0-2 and, behind them, the bad part: the helper
		 * takes 1 and 2 only. */
		help_send(&c, 3, payload, NULL);
		if (eof) {
			n = tg_conn_make(&c, 23, payload[0], HELP_LEN, 0, wire);
			REQUIRE(n > 0);
			REQUIRE(tg_write_all(c.tx, wire, 100) == 100);
			REQUIRE(shutdown(c.tx, SHUT_WR) == 0);
		} else
			REQUIRE(tg_write_all(c.tx, badhdr, sizeof(badhdr)) ==
			    (ssize_t)sizeof(badhdr));
		help_start_reader(&c, &r);
		CHECK(wait_parked(c.rx, 2));
		CHECK_EQ(helped, 2);
		sem_post(&hook_release);
		pthread_join(r.t, NULL);
		for (k = 0; k < 3; k++) {
			CHECK_EQ(r.n[k], (ssize_t)HELP_LEN);
			CHECK(memcmp(r.buf[k], payload[k], HELP_LEN) == 0);
		}
		CHECK_EQ(r.n[3], -1);
		CHECK_EQ(r.err[3], eof ? EMSGSIZE : EINVAL);
		if (harness_cur_failed != 0)
			fprintf(stderr, "  ... %s\n", eof ? "EOF" : "header");
		help_teardown();
		tg_conn_close(&c);
	}
}

/*
 * uktls_close while the worker holds record 0 and a reader's helped records
 * are parked: the reader returns EBADF, the parked records are freed with
 * the buffer, the worker's is cancelled, and nothing leaks.
 */
static void
close_with_parked_records(void *p)
{
	const struct tg_suite *s = p;
	static char payload[HELP_RECORDS][HELP_LEN];
	static struct help_reader r;
	struct tg_conn c;
	uint64_t before = cancelled();
	int k;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	for (k = 0; k < 4; k++)
		tg_random(payload[k], HELP_LEN);
	memset(&r, 0, sizeof(r));
	r.nrec = 1;
	help_setup(&c, &r, 4, payload, NULL);
	CHECK(wait_parked(c.rx, 3));
	CHECK_EQ(uktls_close(c.rx), 0);
	pthread_join(r.t, NULL);
	CHECK_EQ(r.n[0], -1);
	CHECK_EQ(r.err[0], EBADF);
	sem_post(&hook_release);
	CHECK(wait_cancelled(before));
	help_teardown();
	c.rx = -1;
	c.enabled = 0;
	tg_conn_close(&c);
}

/*
 * The pools run dry while a helping reader has record 1 out and the worker
 * wants record 2: the worker must not end the stream under the helper
 * (record 1 is whole and authentic, and would be cancelled).  It leaves
 * record 2 for later; when the helper is back and the pools have buffers
 * again, all three records arrive.
 */
static _Atomic int fail_mbufs;
static sem_t hb_in, hb_release;

/* Installed once in main(), before the engine has threads: the engine
 * reads the hook without synchronisation. */
static int
fail_mbuf_hook(const char *site)
{
	return fail_mbufs && strcmp(site, "mbuf") == 0;
}

static void
help_block_hook(struct socket *so)
{
	(void)so;
	helped++;
	sem_post(&hb_in);
	sem_wait(&hb_release);
}

static void
nobufs_spares_helped(void *p)
{
	const struct tg_suite *s = p;
	static char payload[HELP_RECORDS][HELP_LEN];
	static struct help_reader r;
	struct tg_conn c;
	int k;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	for (k = 0; k < 3; k++)
		tg_random(payload[k], HELP_LEN);
	memset(&r, 0, sizeof(r));
	r.nrec = 3;
	r.stop_at_error = 1;
	sem_init(&hb_in, 0, 0);
	sem_init(&hb_release, 0, 0);
	help_send(&c, 3, payload, NULL);      /* the worker holds record 0 */
	ktls_test_help_hook = help_block_hook;
	help_start_reader(&c, &r);            /* the reader takes record 1 */
	sem_wait(&hb_in);
	fail_mbufs = 1;
	/* The worker publishes record 0, then finds no mbuf for record 2
	 * for longer than it retries. */
	sem_post(&hook_release);
	tg_sleep_ms(600 * TG_TIME_MUL);
	fail_mbufs = 0;
	sem_post(&hb_release);
	pthread_join(r.t, NULL);
	for (k = 0; k < 3; k++) {
		CHECK_EQ(r.n[k], (ssize_t)HELP_LEN);
		CHECK(r.n[k] == HELP_LEN &&
		    memcmp(r.buf[k], payload[k], HELP_LEN) == 0);
	}
	help_teardown();
	sem_destroy(&hb_in);
	sem_destroy(&hb_release);
	tg_conn_close(&c);
}

int
main(int argc, char **argv)
{
	uktls_fault_hook = fail_mbuf_hook;
	tg_register_suites("close_while_decrypting", close_while_decrypting, 0,
	    TG_NSUITES);
	tg_register_suites("shutdown_while_decrypting",
	    shutdown_while_decrypting, 0, TG_NSUITES);
	tg_register_suites("close_with_blocked_reader",
	    close_with_blocked_reader, 0, TG_NSUITES);
	tg_register_suites("appends_while_decrypting",
	    appends_while_decrypting, 0, TG_NSUITES);
	tg_register_suites("helpers_keep_order", helpers_keep_order, 0,
	    TG_NSUITES);
	tg_register_suites("helper_bad_tag_in_order", helper_bad_tag_in_order,
	    0, TG_NSUITES);
	tg_register_suites("helper_then_bad_header_or_eof",
	    helper_then_bad_header_or_eof, 0, TG_NSUITES);
	tg_register_suites("close_with_parked_records",
	    close_with_parked_records, 0, TG_NSUITES);
	tg_register_suites("nobufs_spares_helped", nobufs_spares_helped, 0,
	    TG_NSUITES);
	return harness_main(argc, argv);
}
