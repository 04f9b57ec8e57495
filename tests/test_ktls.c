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
#include <sys/socket.h>
#include <unistd.h>

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

int
main(int argc, char **argv)
{
	tg_register_suites("close_while_decrypting", close_while_decrypting, 0,
	    TG_NSUITES);
	tg_register_suites("shutdown_while_decrypting",
	    shutdown_while_decrypting, 0, TG_NSUITES);
	tg_register_suites("close_with_blocked_reader",
	    close_with_blocked_reader, 0, TG_NSUITES);
	tg_register_suites("appends_while_decrypting",
	    appends_while_decrypting, 0, TG_NSUITES);
	return harness_main(argc, argv);
}
