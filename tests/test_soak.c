/*
 * A mixed soak of the whole receive path.
 *
 * Several threads each run connections one after another until the time is
 * up.  Every connection picks at random: the suite, the first sequence
 * number, how many records and of what sizes, types and padding, how the
 * peer splits its writes (down to single bytes, with pauses), whether the
 * enable is a hand-off with decrypted records and read-ahead ciphertext,
 * how the application reads (blocking with a big buffer, in small pieces,
 * with MSG_PEEK first, non-blocking after uktls_poll or after poll() on the
 * uktls_event_fd descriptor, or uktls_read without control messages), and
 * what goes wrong:
 *
 *   nothing            every record, then the end
 *   bad tag            the records around it, EBADMSG in its place
 *   bad header         the records before it, then EINVAL for good
 *   truncated          the records before it, then EMSGSIZE
 *   peer reset         a prefix of the records, then ECONNRESET/EMSGSIZE
 *   close              the application closes part-way through
 *   shutdown           the application shuts its receive side part-way;
 *                      every read after it reports the end
 *
 * Every byte read is compared with what was sent.  The test build checks
 * the socket buffer's invariants after every change, so the soak also
 * drives sbcheck() through all these paths, from several threads at once.
 *
 * It runs for 60 seconds (20 under a sanitizer); UKTLS_SOAK_SECONDS
 * overrides that, e.g. 600 for a long run.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tlsgen.h"
#include "uktls.h"

#define APP TLS_RLTYPE_APP
#define MAX_RECS 160
#define MAX_WIRE (3u << 20)
#define NTHREADS (TG_TSAN ? 3 : 5)

enum what { W_NONE, W_BADTAG, W_BADHDR, W_TRUNC, W_RESET, W_CLOSE,
	W_SHUTRD, W_COUNT };
static const char *const what_names[W_COUNT] = { "clean", "bad tag",
	"bad header", "truncated", "peer reset", "close", "shutdown" };

enum rmode { R_BIG, R_SMALL, R_PEEK, R_POLL, R_EVFD, R_READ, R_COUNT };

/* Totals over all threads. */
static atomic_ullong t_conns, t_records, t_bytes, t_what[W_COUNT];
static atomic_ullong t_prefixed;
static _Atomic int t_failed;
static pthread_mutex_t fail_mtx = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[1024];
static double deadline;

/* Only the first failure is kept; the test reports it. */
static void
soak_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
soak_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_mtx);
	if (!t_failed) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
		t_failed = 1;
	}
	pthread_mutex_unlock(&fail_mtx);
}

struct conn {
	struct tg_rng rng;
	const struct tg_suite *suite;
	struct tlsgen g;
	int rx, tx;
	enum what what;
	enum rmode mode;
	int nrecs;
	int bad;             /* the record that goes wrong */
	int stop_after;      /* W_CLOSE, W_SHUTRD: records read first */
	size_t len[MAX_RECS];
	uint8_t type[MAX_RECS];
	uint8_t *payload;    /* all payloads back to back */
	size_t poff[MAX_RECS];
	int nplain;          /* hand-off: records given decrypted */
	uint8_t *wire;
	size_t wire_len;
	size_t prefix_len;   /* hand-off: ciphertext given at enable */
	/* The writer. */
	pthread_t wt;
	uint64_t wseed;
	int werr;
};

/* ---- the peer -------------------------------------------------------- */

static void *
writer_main(void *arg)
{
	struct conn *c = arg;
	struct tg_rng r = { c->wseed };
	size_t off = c->prefix_len, k;
	struct linger lg = { 1, 0 };
	int style = (int)tg_rng_below(&r, 4);

	while (off < c->wire_len) {
		switch (style) {
		case 0:
			k = c->wire_len - off;
			break;
		case 1:
			k = 1 + tg_rng_below(&r, 3000);
			break;
		case 2:
			/* Mostly tiny writes: headers and tags split. */
			k = 1 + tg_rng_below(&r, tg_rng_below(&r, 8) == 0 ?
			    20000 : 7);
			break;
		default:
			k = 1 + tg_rng_below(&r, 40000);
			break;
		}
		if (k > c->wire_len - off)
			k = c->wire_len - off;
		if (tg_write_all(c->tx, c->wire + off, k) < 0) {
			/* The application closed or shut down: expected
			 * then, and the reader judges the rest. */
			c->werr = errno;
			return NULL;
		}
		off += k;
		if (style != 0 && tg_rng_below(&r, 16) == 0)
			usleep((useconds_t)tg_rng_below(&r, 300));
	}
	if (c->what == W_RESET) {
		/* Give uktls a moment to read the half record first. */
		tg_sleep_ms(5);
		(void)setsockopt(c->tx, SOL_SOCKET, SO_LINGER, &lg,
		    sizeof(lg));
		close(c->tx);
		c->tx = -1;
	} else
		shutdown(c->tx, SHUT_WR);
	return NULL;
}

/* ---- building a connection ------------------------------------------- */

static size_t
pick_len(struct tg_rng *r)
{
	switch (tg_rng_below(r, 8)) {
	case 0:
		return 0;
	case 1:
	case 2:
		return 1 + tg_rng_below(r, 64);
	case 3:
		return TG_MAX_PLAINTEXT - tg_rng_below(r, 3);
	default:
		return tg_rng_below(r, TG_MAX_PLAINTEXT + 1);
	}
}

static int
conn_build(struct conn *c)
{
	struct tg_rng *r = &c->rng;
	uint64_t seq;
	size_t total = 0, pad;
	ssize_t n;
	int i;

	c->suite = &tg_suites[tg_rng_below(r, TG_NSUITES)];
	c->what = tg_rng_below(r, 2) == 0 ? W_NONE :
	    (enum what)(1 + tg_rng_below(r, W_COUNT - 1));
	c->mode = (enum rmode)tg_rng_below(r, R_COUNT);
	c->nrecs = 1 + (int)tg_rng_below(r, tg_rng_below(r, 4) == 0 ?
	    MAX_RECS : 12);
	seq = tg_rng_below(r, 8) == 0 ? UINT64_MAX - (uint64_t)c->nrecs -
	    tg_rng_below(r, 3) : tg_rng_next(r) >> 1;
	if (tlsgen_init(&c->g, c->suite, seq) != 0)
		return -1;
	c->bad = (int)tg_rng_below(r, (uint64_t)c->nrecs);
	c->stop_after = (int)tg_rng_below(r, (uint64_t)c->nrecs + 1);
	for (i = 0; i < c->nrecs; i++) {
		c->len[i] = pick_len(r);
		if (total + c->len[i] > MAX_WIRE / 2)
			c->len[i] = 0;
		c->type[i] = (uint8_t)(TLS_RLTYPE_CHANGE_CIPHER_SPEC +
		    tg_rng_below(r, 4));
		c->poff[i] = total;
		total += c->len[i];
	}
	c->payload = malloc(total + 1);
	c->wire = malloc(MAX_WIRE);
	if (c->payload == NULL || c->wire == NULL)
		return -1;
	tg_rng_fill(r, c->payload, total);
	/* A hand-off gives the first records decrypted, sometimes. */
	c->nplain = tg_rng_below(r, 6) == 0 ?
	    (int)tg_rng_below(r, (uint64_t)(c->nrecs < 3 ? c->nrecs : 3)) : 0;
	if (c->what != W_NONE && c->bad < c->nplain)
		c->nplain = c->bad;
	c->wire_len = 0;
	for (i = c->nplain; i < c->nrecs; i++) {
		pad = tlsgen_is_tls13(&c->g) && tg_rng_below(r, 4) == 0 ?
		    tg_rng_below(r, 40) : 0;
		if (c->len[i] + pad > TG_MAX_PLAINTEXT)
			pad = 0;
		n = tlsgen_encrypt(&c->g, c->type[i], c->payload + c->poff[i],
		    c->len[i], pad, c->wire + c->wire_len,
		    MAX_WIRE - c->wire_len);
		if (n < 0)
			return -1;
		if (i == c->bad) {
			if (c->what == W_BADTAG)
				c->wire[c->wire_len + (size_t)n - 1 -
				    tg_rng_below(r, TG_TAG_LEN)] ^= 0x10;
			else if (c->what == W_BADHDR)
				c->wire[c->wire_len + TG_OFF_VMINOR] = 1;
			else if (c->what == W_TRUNC || c->what == W_RESET) {
				/* Cut inside the record: the stream ends. */
				c->wire_len += 1 + tg_rng_below(r,
				    (uint64_t)n - 1);
				break;
			}
		}
		c->wire_len += (size_t)n;
	}
	if (c->nplain > 0 && c->nplain < c->nrecs)
		c->prefix_len = tg_rng_below(r, c->wire_len + 1);
	return 0;
}

static int
conn_enable(struct conn *c)
{
	struct uktls_plain_record pr[3];
	struct tls_enable en;
	int i;

	tlsgen_enable(&c->g, &en);
	if (c->nplain == 0 && c->prefix_len == 0)
		return uktls_setsockopt(c->rx, IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &en, sizeof(en));
	for (i = 0; i < c->nplain; i++) {
		pr[i].type = c->type[i];
		pr[i].data = c->payload + c->poff[i];
		pr[i].len = c->len[i];
	}
	atomic_fetch_add(&t_prefixed, 1);
	return uktls_enable_rx_prefixed(c->rx, &en, pr, (size_t)c->nplain,
	    c->wire, c->prefix_len);
}

/* ---- the application ------------------------------------------------- */

/* What the stream must produce, in order: records and at most one error. */
static int
expect_err_at(const struct conn *c, int *err, int *sticky)
{
	*sticky = 0;
	switch (c->what) {
	case W_BADTAG:
		*err = EBADMSG;
		return c->bad;
	case W_BADHDR:
		*err = EINVAL;
		*sticky = 1;
		return c->bad;
	case W_TRUNC:
		*err = EMSGSIZE;
		*sticky = 1;
		return c->bad;
	case W_RESET:
		*err = EMSGSIZE; /* or ECONNRESET */
		*sticky = 1;
		return c->bad;
	default:
		*err = 0;
		return c->nrecs;
	}
}

struct rd {
	int rec;       /* next record */
	size_t off;    /* of it, already read */
	int err_seen;  /* errno of the error read, 0 before it */
	int evfd;
};

/*
 * One read in the connection's mode.  Returns the recvmsg result; *flags,
 * *ctl_ok, *tgr and *err describe it.
 */
static ssize_t
do_read(struct conn *c, struct rd *rd, uint8_t *buf, size_t *bufsize,
    int *flags, int *ncmsg, struct tls_get_record *tgr, int *err)
{
	union {
		struct cmsghdr align;
		char b[64];
	} ctl;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *cm;
	struct pollfd pfd;
	ssize_t n;
	int f = 0, k;

	*flags = -1;
	*ncmsg = -1;
	*bufsize = TG_MAX_PLAINTEXT + 64;
	if (c->mode == R_SMALL)
		*bufsize = 1 + tg_rng_below(&c->rng, tg_rng_below(&c->rng,
		    2) ? 64 : 6000);
	if (c->mode == R_POLL || c->mode == R_EVFD) {
		f = MSG_DONTWAIT;
		pfd.fd = c->mode == R_POLL ? c->rx : rd->evfd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		k = c->mode == R_POLL ?
		    uktls_poll(&pfd, 1, 20000 * TG_TIME_MUL) :
		    poll(&pfd, 1, 20000 * TG_TIME_MUL);
		if (k != 1) {
			*err = k == 0 ? ETIMEDOUT : errno;
			return -2;
		}
	}
	if (c->mode == R_READ) {
		n = uktls_read(c->rx, buf, *bufsize);
		*err = n < 0 ? errno : 0;
		*flags = -1;
		*ncmsg = -1;
		return n;
	}
	if (c->mode == R_PEEK && tg_rng_below(&c->rng, 2) == 0)
		f |= MSG_PEEK;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = *bufsize;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.b;
	msg.msg_controllen = CMSG_SPACE(sizeof(*tgr));
	n = uktls_recvmsg(c->rx, &msg, f);
	*err = n < 0 ? errno : 0;
	*flags = msg.msg_flags | (f & MSG_PEEK ? 0x40000000 : 0);
	*ncmsg = 0;
	for (cm = CMSG_FIRSTHDR(&msg); n >= 0 && cm != NULL;
	    cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == IPPROTO_TCP &&
		    cm->cmsg_type == TLS_GET_RECORD)
			memcpy(tgr, CMSG_DATA(cm), sizeof(*tgr));
		(*ncmsg)++;
	}
	return n;
}

/*
 * Read the connection to its end and check everything.  Returns 0, or -1
 * after soak_fail().
 */
static int
conn_read(struct conn *c)
{
	static _Thread_local uint8_t buf[TG_MAX_PLAINTEXT + 64];
	struct tls_get_record tgr;
	struct rd rd = { 0, 0, 0, -1 };
	size_t bufsize, rest, read_bytes = 0;
	ssize_t n;
	int err_at, err, sticky, flags, ncmsg, e, peek, k;
	const char *wn = what_names[c->what];

	err_at = expect_err_at(c, &err, &sticky);
	if (c->mode == R_EVFD) {
		rd.evfd = uktls_event_fd(c->rx);
		if (rd.evfd < 0) {
			soak_fail("uktls_event_fd: %s", strerror(errno));
			return -1;
		}
	}
	for (k = 0; k < 100000; k++) {
		/* The application's own end of the story. */
		if ((c->what == W_CLOSE || c->what == W_SHUTRD) &&
		    rd.rec >= c->stop_after && rd.off == 0) {
			if (c->what == W_CLOSE)
				return 0;
			if (uktls_shutdown(c->rx, SHUT_RD) != 0 &&
			    errno != ENOTCONN) {
				soak_fail("shutdown: %s", strerror(errno));
				return -1;
			}
			for (e = 0; e < 3; e++) {
				n = uktls_recv(c->rx, buf, sizeof(buf),
				    MSG_DONTWAIT);
				if (n != 0) {
					soak_fail("read after SHUT_RD: %zd "
					    "(%s)", n, strerror(errno));
					return -1;
				}
			}
			return 0;
		}
		/* uktls_read skips empty records. */
		while (c->mode == R_READ && rd.off == 0 &&
		    rd.rec < c->nrecs && rd.rec != err_at &&
		    c->len[rd.rec] == 0)
			rd.rec++;
		n = do_read(c, &rd, buf, &bufsize, &flags, &ncmsg, &tgr, &e);
		peek = flags != -1 && (flags & 0x40000000) != 0;
		if (n == -2 || (n < 0 && e == EAGAIN && c->mode != R_POLL &&
		    c->mode != R_EVFD)) {
			soak_fail("%s, %s: stuck at record %d of %d (%s)",
			    c->suite->name, wn, rd.rec, c->nrecs, strerror(e));
			return -1;
		}
		if (n < 0 && e == EAGAIN)
			continue; /* woken, but the record was peeked away */
		if (n < 0) {
			/* An error: in its place, with its errno. */
			int ok = rd.rec == err_at && rd.off == 0 &&
			    (e == err || (c->what == W_RESET &&
			    e == ECONNRESET));

			/* A reset may cost records still in the kernel. */
			if (c->what == W_RESET && rd.off == 0 &&
			    rd.rec <= err_at && (e == ECONNRESET ||
			    e == EMSGSIZE))
				ok = 1;
			if (!ok) {
				soak_fail("%s, %s (mode %d): errno %d (%s) at "
				    "record %d+%zu, want errno %d at %d",
				    c->suite->name, wn, c->mode, e,
				    strerror(e), rd.rec, rd.off, err, err_at);
				return -1;
			}
			if (peek)
				continue;
			if (sticky && rd.err_seen != 0)
				return 0;
			rd.err_seen = e;
			if (!sticky)
				err_at = -1; /* past it: the rest follows */
			if (!sticky && c->what == W_BADTAG)
				rd.rec++; /* the bad record is gone */
			continue;
		}
		if (n == 0 && (flags == -1 || (flags & MSG_EOR) == 0) &&
		    ncmsg <= 0) {
			/* The end; after a reset reported (once), too. */
			if (c->what == W_RESET && rd.err_seen == ECONNRESET)
				return 0;
			if (rd.rec != c->nrecs || sticky || rd.off != 0) {
				soak_fail("%s, %s (mode %d): end of stream at "
				    "record %d+%zu of %d", c->suite->name, wn,
				    c->mode, rd.rec, rd.off, c->nrecs);
				return -1;
			}
			atomic_fetch_add(&t_bytes, read_bytes);
			return 0;
		}
		/* Record bytes. */
		if (rd.rec >= c->nrecs || rd.rec == err_at) {
			soak_fail("%s, %s (mode %d): %zd record bytes where "
			    "record %d (error at %d) was due", c->suite->name,
			    wn, c->mode, n, rd.rec, err_at);
			return -1;
		}
		rest = c->len[rd.rec] - rd.off;
		if ((size_t)n != (bufsize < rest ? bufsize : rest) ||
		    memcmp(buf, c->payload + c->poff[rd.rec] + rd.off,
		    (size_t)n) != 0 ||
		    (flags != -1 && ((flags & MSG_EOR) != 0) !=
		    ((size_t)n == rest)) ||
		    (ncmsg >= 0 && (ncmsg == 1) != (rd.off == 0)) ||
		    (ncmsg == 1 && (tgr.tls_type != c->type[rd.rec] ||
		    ntohs(tgr.tls_length) != c->len[rd.rec]))) {
			soak_fail("%s, %s (mode %d): record %d (%zu bytes, "
			    "type %u) at offset %zu: got %zd bytes, flags %#x, "
			    "%d cmsgs (type %u len %u)", c->suite->name, wn,
			    c->mode, rd.rec, c->len[rd.rec], c->type[rd.rec],
			    rd.off, n, flags, ncmsg, tgr.tls_type,
			    ntohs(tgr.tls_length));
			return -1;
		}
		if (peek)
			continue;
		read_bytes += (size_t)n;
		if ((size_t)n == rest) {
			rd.rec++;
			rd.off = 0;
			atomic_fetch_add(&t_records, 1);
		} else
			rd.off += (size_t)n;
	}
	soak_fail("%s, %s: no end after %d reads", c->suite->name, wn, k);
	return -1;
}

static void
conn_run(struct tg_rng *r)
{
	struct conn c;
	struct timeval tv = { 20 * TG_TIME_MUL, 0 };
	struct linger lg = { 1, 0 };
	int started = 0;

	memset(&c, 0, sizeof(c));
	c.rx = c.tx = -1;
	c.rng.s = tg_rng_next(r);
	if (conn_build(&c) != 0) {
		soak_fail("building a connection failed");
		goto out;
	}
	if (tg_tcp_pair(&c.rx, &c.tx) != 0) {
		soak_fail("tcp pair: %s", strerror(errno));
		goto out;
	}
	(void)setsockopt(c.rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (conn_enable(&c) != 0) {
		soak_fail("enable (%s): %s", c.suite->name, strerror(errno));
		close(c.rx);
		c.rx = -1;
		goto out;
	}
	c.wseed = tg_rng_next(&c.rng);
	if (pthread_create(&c.wt, NULL, writer_main, &c) != 0) {
		soak_fail("pthread_create");
		goto out;
	}
	started = 1;
	(void)conn_read(&c);
	atomic_fetch_add(&t_conns, 1);
	atomic_fetch_add(&t_what[c.what], 1);
out:
	/*
	 * Closing the application's side unblocks a writer that the
	 * application stopped reading (close, shutdown, errors).  Both
	 * sides close with a reset: tens of thousands of connections a
	 * minute would otherwise leave their ports in TIME_WAIT and run the
	 * machine out of ephemeral ports.
	 */
	if (c.rx >= 0) {
		(void)setsockopt(c.rx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		uktls_close(c.rx);
	}
	if (started)
		pthread_join(c.wt, NULL);
	if (c.tx >= 0) {
		(void)setsockopt(c.tx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c.tx);
	}
	tlsgen_free(&c.g);
	free(c.payload);
	free(c.wire);
}

static void *
soak_thread(void *arg)
{
	struct tg_rng r = { (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL ^
	    tg_random64() };

	while (tg_now() < deadline && !t_failed)
		conn_run(&r);
	return NULL;
}

static double
soak_seconds(void)
{
	const char *e = getenv("UKTLS_SOAK_SECONDS");
	double s;

	if (e != NULL && (s = atof(e)) > 0)
		return s;
	return TG_SANITIZED ? 20 : 60;
}

TEST(soak)
{
	pthread_t t[NTHREADS];
	struct uktls_stats st0, st1;
	struct timespec ts;
	double secs = soak_seconds(), t0;
	int i, w, stuck = 0;

	signal(SIGPIPE, SIG_IGN);
	uktls_get_stats(&st0);
	t0 = tg_now();
	deadline = t0 + secs;
	/*
	 * Install the watchdog from this thread before the others start:
	 * tg_tcp_pair() re-arms it from every thread, and its first call
	 * sets up the handler unsynchronised.
	 */
	tg_watchdog((unsigned int)secs + 120 * TG_TIME_MUL);
	for (i = 0; i < NTHREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, soak_thread,
		    (void *)(uintptr_t)(i + 1)) == 0);
	for (i = 0; i < NTHREADS; i++) {
		/* A connection runs at most ~20 s past the deadline. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(deadline - tg_now()) + 90 * TG_TIME_MUL;
		tg_watchdog((unsigned int)(deadline - tg_now()) + 120 *
		    TG_TIME_MUL);
		if (pthread_timedjoin_np(t[i], NULL, &ts) != 0)
			stuck++;
	}
	if (stuck > 0) {
		harness_fail(__FILE__, __LINE__, "%d soak threads stuck", stuck);
		return;
	}
	uktls_get_stats(&st1);
	if (t_failed)
		harness_fail(__FILE__, __LINE__, "%s", fail_msg);
	printf("  %.0f s, %d threads: %llu connections, %llu records, %.1f "
	    "MiB read and verified (%llu hand-offs)\n", tg_now() - t0, NTHREADS,
	    (unsigned long long)t_conns, (unsigned long long)t_records,
	    (double)t_bytes / (1 << 20), (unsigned long long)t_prefixed);
	printf("  ");
	for (w = 0; w < W_COUNT; w++)
		printf("%s%s %llu", w ? ", " : "", what_names[w],
		    (unsigned long long)t_what[w]);
	printf("\n  engine: %llu records decrypted, %llu bad tags, %llu bad "
	    "headers, %llu bad lengths, %llu truncated, %llu cancelled\n",
	    (unsigned long long)(st1.records_decrypted - st0.records_decrypted),
	    (unsigned long long)(st1.err_bad_tag - st0.err_bad_tag),
	    (unsigned long long)(st1.err_bad_header - st0.err_bad_header),
	    (unsigned long long)(st1.err_bad_length - st0.err_bad_length),
	    (unsigned long long)(st1.err_truncated - st0.err_truncated),
	    (unsigned long long)(st1.records_cancelled -
	    st0.records_cancelled));
	CHECK(t_conns > 0);
	CHECK_EQ(st1.sockets_active, st0.sockets_active);
}

int
main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
