/*
 * Allocation failures, resets, races with close and shutdown, and secrets.
 *
 * Every allocation site on the receive path asks uktls_fault_hook whether to
 * fail (src/fault.h).  The sweep counts the hook's calls during one clean
 * run of a real TCP stream, then runs the stream again once for each i,
 * failing only the i-th call, whichever site and thread it comes from; the
 * window tests fail every call of one site for a while.  Each time the
 * reader must get every record exactly once, in order, and then the end, or
 * the records before a clear error (ENOBUFS) and that error for good; an
 * enable that fails must fail with ENOMEM, ENOBUFS or ENXIO and leave the
 * socket as it was, so that a retry succeeds.  Nothing may leak (the pools
 * must not keep growing; LeakSanitizer checks the rest under SAN=asan),
 * trip an invariant (the build checks the socket buffer after every change)
 * or hang (the watchdog).
 *
 * Then: a peer that resets the connection inside a record and at a record
 * boundary, uktls_close and shutdown(SHUT_RD) while a worker holds a record
 * it is decrypting (ktls_test_detach_hook stops it there), and the secrets
 * tests: no key or IV byte sequence in a session's memory when it is
 * released (ktls_test_session_free_hook), in the counters, or in anything
 * the library prints.
 *
 * Threads other than the test's own only touch atomics; the test reports.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "harness.h"
#include "ktls.h"
#include "mbuf.h"
#include "socket.h"
#include "tlsgen.h"
#include "uktls.h"

#define APP TLS_RLTYPE_APP

/* ==== the fault hook ================================================== */

static const char *const fault_sites[] = {
	"mbuf", "cluster 2k", "cluster tls", "mbuf slab", "mbuf stack",
	"ktls session", "ktls wq", "socket", "so table",
};
#define NSITES (int)(sizeof(fault_sites) / sizeof(fault_sites[0]))

enum fault_mode { F_OFF, F_COUNT, F_NTH, F_SITE };

/*
 * The hooks are installed once, in main(), before the engine has threads,
 * and never changed: they are plain pointers the engine reads without
 * synchronisation.  Tests steer them through these atomics instead.
 */
static _Atomic int f_mode;
static atomic_long f_calls;           /* calls since armed */
static atomic_long f_nth;             /* F_NTH: the call to fail */
static _Atomic int f_site;            /* F_SITE: index in fault_sites */
static _Atomic uint64_t f_until_ns;   /* F_SITE: fail until then */
static atomic_long f_site_calls[NSITES + 1];
static atomic_long f_site_failed[NSITES + 1];
static atomic_long f_failed;
/* A site whose call sleeps this long first (race tests); -1 none. */
static _Atomic int f_stall_site = -1;
static _Atomic int f_stall_ms;
/* When set, only the threads that set f_is_victim see faults. */
static _Atomic int f_victim_only;
static __thread int f_is_victim;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
site_index(const char *site)
{
	int i;

	for (i = 0; i < NSITES; i++)
		if (strcmp(site, fault_sites[i]) == 0)
			return i;
	return NSITES; /* a site this test does not know */
}

static int
fault_hook(const char *site)
{
	int si, fail = 0;
	long n;

	if (f_mode == F_OFF || (f_victim_only && !f_is_victim))
		return 0;
	si = site_index(site);
	atomic_fetch_add(&f_site_calls[si], 1);
	n = atomic_fetch_add(&f_calls, 1) + 1;
	if (si == f_stall_site)
		tg_sleep_ms((unsigned int)f_stall_ms);
	switch (f_mode) {
	case F_NTH:
		fail = n == f_nth;
		break;
	case F_SITE:
		fail = si == f_site && now_ns() < f_until_ns;
		break;
	default:
		break;
	}
	if (fail) {
		atomic_fetch_add(&f_site_failed[si], 1);
		atomic_fetch_add(&f_failed, 1);
	}
	return fail;
}

static void
fault_arm(enum fault_mode mode, long nth, int site, unsigned int ms)
{
	int i;

	f_mode = F_OFF;
	atomic_store(&f_calls, 0);
	atomic_store(&f_failed, 0);
	for (i = 0; i <= NSITES; i++) {
		atomic_store(&f_site_calls[i], 0);
		atomic_store(&f_site_failed[i], 0);
	}
	f_nth = nth;
	f_site = site;
	f_until_ns = now_ns() + (uint64_t)ms * 1000000u;
	f_mode = (int)mode;
}

/* Stop failing; the calls made so far stay counted. */
static void
fault_disarm(void)
{
	if (f_mode != F_OFF)
		f_mode = F_COUNT;
	f_stall_site = -1;
}

/* ==== pool accounting ================================================= */

/*
 * Buffers out of the pools' shared lists: held by sockets and threads, or
 * in the engine threads' caches.  Once every connection is closed this
 * must come back to where it was, give or take what the caches hold; a
 * buffer leaked on an error path never comes back, and the sweeps fail
 * enough allocations to make a per-failure leak stand out.  (The pools'
 * totals are no measure: they grow with socket reservations.)
 */
struct pool_use {
	uint64_t mbufs, clusters, bytes;
};

static void
pool_use(struct pool_use *u)
{
	struct uktls_stats st;

	/* This thread's cache goes back first; the engine's threads keep
	 * theirs, at most MCACHE_MAX objects per pool each. */
	mbuf_thread_flush();
	uktls_get_stats(&st);
	u->mbufs = st.pool_mbufs_total - st.pool_mbufs_free;
	u->clusters = st.pool_clusters_total - st.pool_clusters_free;
	u->bytes = st.pool_bytes;
}

/* ==== one stream, checked ============================================= */

/*
 * The stream: two records the "TLS library" already decrypted, then six
 * records of ciphertext of which the first two and half the third were
 * "read ahead" (prefixed variant) or all of which come over TCP.  The sizes
 * make every allocation site work: an empty record, records inside one
 * inline mbuf, a 2 KiB cluster and a 16 KiB cluster, and records that
 * straddle the input thread's clusters and so need m_split.
 */
#define NPLAIN 2
#define NRECS 6
static const size_t plain_sizes[NPLAIN] = { 100, 1500 };
static const size_t rec_sizes[NRECS] = { 1, 200, 3000, 16384, 0, 700 };

struct stream {
	struct tlsgen g;
	struct tls_enable en;
	int rx, tx;
	int prefixed;
	uint8_t plain[NPLAIN][1500];
	uint8_t payload[NRECS][16384];
	uint8_t types[NRECS];
	uint8_t *wire;
	size_t wire_len;
	size_t rec_end[NRECS]; /* end of record i in wire */
	/* Fail every call of this site for window_ms once enabled; -1 none. */
	int window_site;
	unsigned int window_ms;
};

struct outcome {
	int enable_tries;
	int enable_err;   /* the last enable failure, 0 if none */
	int delivered;    /* records read back intact (plain ones too) */
	int end;          /* 0 for a clean end, else the errno */
	int ok;           /* everything as the contract says */
};

static int
stream_open(struct stream *st, const struct tg_suite *s, int prefixed)
{
	size_t i, n;
	ssize_t r;

	memset(st, 0, sizeof(*st));
	st->prefixed = prefixed;
	st->window_site = -1;
	if (tg_tcp_pair(&st->rx, &st->tx) != 0) {
		harness_fail(__FILE__, __LINE__, "tcp pair: %s",
		    strerror(errno));
		return -1;
	}
	if (tlsgen_init(&st->g, s, tg_random64() >> 2) != 0) {
		harness_fail(__FILE__, __LINE__, "tlsgen_init");
		return -1;
	}
	tlsgen_enable(&st->g, &st->en);
	st->wire = malloc(NRECS * TG_MAX_RECORD);
	if (st->wire == NULL)
		abort();
	for (i = 0; i < NPLAIN; i++)
		tg_random(st->plain[i], plain_sizes[i]);
	for (i = 0, n = 0; i < NRECS; i++) {
		tg_random(st->payload[i], rec_sizes[i]);
		st->types[i] = i == 4 ? TLS_RLTYPE_HANDSHAKE : APP;
		r = tlsgen_encrypt(&st->g, st->types[i], st->payload[i],
		    rec_sizes[i], i == 5 && tlsgen_is_tls13(&st->g) ? 30 : 0,
		    st->wire + n, TG_MAX_RECORD);
		if (r < 0) {
			harness_fail(__FILE__, __LINE__, "tlsgen_encrypt");
			return -1;
		}
		n += (size_t)r;
		st->rec_end[i] = n;
	}
	st->wire_len = n;
	return 0;
}

static void
stream_close(struct stream *st)
{
	if (st->rx >= 0)
		uktls_close(st->rx);
	if (st->tx >= 0)
		close(st->tx);
	st->rx = st->tx = -1;
	tlsgen_free(&st->g);
	free(st->wire);
	st->wire = NULL;
}

/* Where the ciphertext read ahead ends: half-way into record 2. */
static size_t
stream_prefix_len(const struct stream *st)
{
	return st->prefixed ? st->rec_end[1] +
	    (st->rec_end[2] - st->rec_end[1]) / 2 : 0;
}

static int
stream_enable(struct stream *st)
{
	struct uktls_plain_record recs[NPLAIN];
	size_t i;

	if (!st->prefixed)
		return uktls_setsockopt(st->rx, IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &st->en, sizeof(st->en));
	for (i = 0; i < NPLAIN; i++) {
		recs[i].type = APP;
		recs[i].data = st->plain[i];
		recs[i].len = plain_sizes[i];
	}
	return uktls_enable_rx_prefixed(st->rx, &st->en, recs, NPLAIN,
	    st->wire, stream_prefix_len(st));
}

/* The expected i-th record of the whole stream (plain ones first). */
static void
stream_expect(const struct stream *st, int i, uint8_t *type,
    const uint8_t **p, size_t *len)
{
	int nplain = st->prefixed ? NPLAIN : 0;

	if (i < nplain) {
		*type = APP;
		*p = st->plain[i];
		*len = plain_sizes[i];
		return;
	}
	i -= nplain;
	*type = st->types[i];
	*p = st->payload[i];
	*len = rec_sizes[i];
}

static int
stream_nrecs(const struct stream *st)
{
	return (st->prefixed ? NPLAIN : 0) + NRECS;
}

/*
 * Take every free buffer of one pool (or all three) so that the engine's
 * next allocations must grow the pools; *held is the chain to give back.
 */
static void
drain_pools(struct mbuf **held)
{
	struct mbuf *m;
	int pass;

	for (pass = 0; pass < 3; pass++) {
		for (;;) {
			m = pass == 0 ? m_getcl(MT_DATA, MJUMTLSBYTES) :
			    pass == 1 ? m_getcl(MT_DATA, MCLBYTES) :
			    m_get(MT_DATA);
			if (m == NULL)
				break;
			m->m_next = *held;
			*held = m;
		}
	}
}

/*
 * Enable (retrying a failed enable, which must leave the socket as it was),
 * write the rest in three pieces, end the stream and read it all.  Reports
 * and returns the outcome; o->ok is 0 after a reported failure.
 */
static void
stream_run(struct stream *st, struct outcome *o, int max_tries)
{
	static uint8_t buf[20000];
	struct timeval tv = { 10 * TG_TIME_MUL, 0 };
	struct mbuf *held = NULL;
	struct tg_rec r;
	const uint8_t *want;
	size_t from, cut1, cut2, wlen;
	uint8_t wtype;
	int mode;
	socklen_t ml;

	memset(o, 0, sizeof(*o));
	o->ok = 1;
	(void)setsockopt(st->rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		o->enable_tries++;
		if (stream_enable(st) == 0)
			break;
		o->enable_err = errno;
		if (errno != ENOMEM && errno != ENOBUFS && errno != ENXIO) {
			harness_fail(__FILE__, __LINE__, "enable: errno %d "
			    "(%s), want ENOMEM, ENOBUFS or ENXIO", errno,
			    strerror(errno));
			o->ok = 0;
			return;
		}
		/* A failed enable leaves nothing behind. */
		mode = -1;
		ml = sizeof(mode);
		if (uktls_getsockopt(st->rx, IPPROTO_TCP, TCP_RXTLS_MODE,
		    &mode, &ml) != 0 || mode != TCP_TLS_MODE_NONE) {
			harness_fail(__FILE__, __LINE__, "failed enable left "
			    "mode %d", mode);
			o->ok = 0;
			return;
		}
		if (o->enable_tries >= max_tries) {
			harness_fail(__FILE__, __LINE__, "enable failed %d "
			    "times, last errno %d", o->enable_tries,
			    o->enable_err);
			o->ok = 0;
			return;
		}
		tg_sleep_ms(20);
	}

	if (st->window_site >= 0) {
		fault_arm(F_SITE, 0, st->window_site, st->window_ms);
		/* Slabs are only asked for when a pool is empty. */
		if (strcmp(fault_sites[st->window_site], "mbuf slab") == 0)
			drain_pools(&held);
	}

	/* The rest of the ciphertext in three writes. */
	from = stream_prefix_len(st);
	cut1 = from + (st->wire_len - from) / 3;
	cut2 = st->rec_end[3] - 100;
	if (cut2 < cut1)
		cut2 = cut1;
	if (tg_write_all(st->tx, st->wire + from, cut1 - from) < 0 ||
	    (tg_sleep_ms(1), tg_write_all(st->tx, st->wire + cut1,
	    cut2 - cut1)) < 0 ||
	    (tg_sleep_ms(1), tg_write_all(st->tx, st->wire + cut2,
	    st->wire_len - cut2)) < 0) {
		harness_fail(__FILE__, __LINE__, "write: %s", strerror(errno));
		o->ok = 0;
		return;
	}
	shutdown(st->tx, SHUT_WR);
	if (held != NULL) {
		tg_sleep_ms(st->window_ms);
		m_freem(held);
		mbuf_thread_flush();
	}

	for (;;) {
		tg_recv(st->rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
		if (r.n < 0) {
			o->end = r.err;
			if (r.err != ENOBUFS) {
				harness_fail(__FILE__, __LINE__, "after %d "
				    "records: errno %d (%s), want ENOBUFS or "
				    "the records", o->delivered, r.err,
				    strerror(r.err));
				o->ok = 0;
				return;
			}
			/* The receive side is dead for good. */
			tg_recv(st->rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT,
			    &r);
			if (r.n != -1 || r.err != ENOBUFS) {
				harness_fail(__FILE__, __LINE__, "ENOBUFS not "
				    "sticky: %zd errno %d", r.n, r.err);
				o->ok = 0;
			}
			return;
		}
		if (r.n == 0 && r.ncmsg == 0) {
			if (o->delivered != stream_nrecs(st)) {
				harness_fail(__FILE__, __LINE__, "end of stream "
				    "after %d of %d records", o->delivered,
				    stream_nrecs(st));
				o->ok = 0;
			}
			o->end = 0;
			return;
		}
		if (o->delivered >= stream_nrecs(st)) {
			harness_fail(__FILE__, __LINE__, "record %d: more "
			    "records than sent", o->delivered);
			o->ok = 0;
			return;
		}
		stream_expect(st, o->delivered, &wtype, &want, &wlen);
		if (!r.cmsg_ok || r.tgr.tls_type != wtype ||
		    ntohs(r.tgr.tls_length) != wlen || (size_t)r.n != wlen ||
		    (r.flags & MSG_EOR) == 0 ||
		    memcmp(buf, want, wlen) != 0) {
			harness_fail(__FILE__, __LINE__, "record %d: %zd bytes "
			    "(want %zu), type %u (want %u), cmsg %d, flags %#x, "
			    "payload %s", o->delivered, r.n, wlen,
			    r.tgr.tls_type, wtype, r.cmsg_ok, r.flags,
			    (size_t)r.n == wlen && memcmp(buf, want, wlen) == 0 ?
			    "equal" : "differs");
			o->ok = 0;
			return;
		}
		o->delivered++;
	}
}

/* ==== engine start and enable ========================================= */

/*
 * Must run first in the process: the engine starts at the first enable.
 * Each site on the enable path fails once; the enable must fail cleanly
 * (the socket stays a plain socket, the peer's bytes stay unread in the
 * kernel) and the next try must work.
 */
static void
test_enable_faults(void *arg)
{
	static const struct {
		const char *site;
		int err;
	} steps[] = {
		{ "ktls session", ENOMEM },
		{ "ktls wq", ENXIO },
		{ "socket", ENOMEM },
		{ "so table", ENOMEM },
	};
	struct tg_conn c;
	uint8_t payload[300];
	int fresh, i, mode, lowat;
	socklen_t ml;

	(void)arg;
	fresh = !ktls_engine_started();
	if (!fresh)
		printf("  (engine already running: the start-up sites are "
		    "skipped)\n");
	REQUIRE(tg_conn_open(&c, &tg_suites[3], 0) == 0);
	tg_random(payload, sizeof(payload));
	/* Queued in the kernel before the enable: it must survive the
	 * failed tries. */
	REQUIRE(tg_conn_send(&c, APP, payload, sizeof(payload), 0) == 0);
	/* The application's SO_RCVLOWAT, which uktls takes over at the
	 * enable, must be the kernel's again after each failed try. */
	lowat = 4096;
	CHECK_EQ(setsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &lowat,
	    sizeof(lowat)), 0);
	for (i = 0; i < (int)(sizeof(steps) / sizeof(steps[0])); i++) {
		if (!fresh && i != 0 && i != 2)
			continue;
		fault_arm(F_SITE, 0, site_index(steps[i].site), 60000);
		errno = 0;
		CHECK_ERRNO(uktls_setsockopt(c.rx, IPPROTO_TCP,
		    TCP_RXTLS_ENABLE, &c.en, sizeof(c.en)), steps[i].err);
		if (atomic_load(&f_site_failed[site_index(steps[i].site)]) ==
		    0)
			harness_fail(__FILE__, __LINE__, "site \"%s\" was not "
			    "asked", steps[i].site);
		fault_disarm();
		mode = -1;
		ml = sizeof(mode);
		CHECK_EQ(uktls_getsockopt(c.rx, IPPROTO_TCP, TCP_RXTLS_MODE,
		    &mode, &ml), 0);
		CHECK_EQ(mode, TCP_TLS_MODE_NONE);
		if (steps[i].err == ENXIO)
			CHECK(!ktls_engine_started());
		lowat = 0;
		ml = sizeof(lowat);
		CHECK_EQ(getsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &lowat,
		    &ml), 0);
		CHECK_EQ(lowat, 4096);
	}
	REQUIRE(tg_conn_enable(&c) == 0);
	CHECK(ktls_engine_started());
	lowat = 0;
	ml = sizeof(lowat);
	CHECK_EQ(uktls_getsockopt(c.rx, SOL_SOCKET, SO_RCVLOWAT, &lowat, &ml),
	    0);
	CHECK_EQ(lowat, 4096);
	TG_EXPECT_RECORD(c.rx, APP, payload, sizeof(payload));
	REQUIRE(tg_conn_send(&c, APP, payload, 10, 0) == 0);
	TG_EXPECT_RECORD(c.rx, APP, payload, 10);
	shutdown(c.tx, SHUT_WR);
	TG_EXPECT_EOF(c.rx);
	tg_conn_close(&c);
}

/* ==== the sweep ======================================================= */

static const char *
outcome_name(const struct outcome *o)
{
	if (!o->ok)
		return "FAILED";
	if (o->end == ENOBUFS)
		return "ENOBUFS";
	if (o->enable_tries > 1)
		return "enable retried";
	return "all delivered";
}

/* Passes of each sweep: enough failures that a leak per failure shows. */
#define SWEEP_PASSES 4

struct sweep_tally {
	long runs, full, retry, nobufs, quiet, failures;
	long failed_by_site[NSITES + 1];
};

/*
 * One clean run to count the hook's calls, then one run per call failing
 * just that one.  A few more than counted, as the count varies with how
 * the input thread happens to split the stream.  Returns -1 after a
 * reported failure.
 */
static int
sweep(const struct tg_suite *s, int prefixed, int verbose,
    struct sweep_tally *t)
{
	struct stream st;
	struct outcome o;
	long ncalls, i;
	int k;

	if (stream_open(&st, s, prefixed) != 0)
		return -1;
	fault_arm(F_COUNT, 0, 0, 0);
	stream_run(&st, &o, 1);
	fault_disarm();
	stream_close(&st);
	if (!o.ok || o.end != 0)
		return -1;
	ncalls = atomic_load(&f_calls);
	if (verbose) {
		printf("  %s%s: %ld hook calls in a clean run:", s->name,
		    prefixed ? " (prefixed)" : "", ncalls);
		for (k = 0; k <= NSITES; k++)
			if (atomic_load(&f_site_calls[k]) > 0)
				printf(" %s %ld", k < NSITES ?
				    fault_sites[k] : "?",
				    atomic_load(&f_site_calls[k]));
		printf("\n");
	}
	if (ncalls <= 0) {
		harness_fail(__FILE__, __LINE__, "no allocation asked the hook");
		return -1;
	}
	for (i = 1; i <= ncalls + 8; i++) {
		if (stream_open(&st, s, prefixed) != 0)
			return -1;
		fault_arm(F_NTH, i, 0, 0);
		stream_run(&st, &o, 3);
		fault_disarm();
		stream_close(&st);
		for (k = 0; k <= NSITES; k++)
			t->failed_by_site[k] += atomic_load(&f_site_failed[k]);
		t->failures += atomic_load(&f_failed);
		t->runs++;
		if (!o.ok) {
			harness_fail(__FILE__, __LINE__, "%s: failing call %ld "
			    "of %ld: %s", s->name, i, ncalls,
			    outcome_name(&o));
			return -1;
		}
		if (atomic_load(&f_failed) == 0)
			t->quiet++;
		else if (o.end == ENOBUFS)
			t->nobufs++;
		else if (o.enable_tries > 1)
			t->retry++;
		else
			t->full++;
	}
	return 0;
}

static void
test_sweep(void *arg)
{
	const struct tg_suite *s = arg;
	struct sweep_tally t;
	struct stream st;
	struct outcome o;
	struct pool_use u0, u1;
	int pass, k;

	memset(&t, 0, sizeof(t));
	/* Warm up: the engine, its threads' caches, the reservations. */
	for (k = 0; k < 4; k++) {
		REQUIRE(stream_open(&st, s, k % 2) == 0);
		stream_run(&st, &o, 1);
		stream_close(&st);
		REQUIRE(o.ok && o.end == 0);
	}
	tg_sleep_ms(20);
	pool_use(&u0);
	for (pass = 0; pass < SWEEP_PASSES; pass++)
		for (k = 0; k < 2; k++)
			if (sweep(s, k, pass == 0, &t) != 0)
				return;
	tg_sleep_ms(50);
	pool_use(&u1);
	printf("  %ld runs, %ld allocations failed: %ld delivered everything, "
	    "%ld retried the enable, %ld ended with ENOBUFS, %ld had no call "
	    "left to fail; failed:", t.runs, t.failures, t.full, t.retry,
	    t.nobufs, t.quiet);
	for (k = 0; k <= NSITES; k++)
		if (t.failed_by_site[k] > 0)
			printf(" %s %ld", k < NSITES ? fault_sites[k] : "?",
			    t.failed_by_site[k]);
	printf("\n  in use: %llu -> %llu mbufs, %llu -> %llu clusters\n",
	    (unsigned long long)u0.mbufs, (unsigned long long)u1.mbufs,
	    (unsigned long long)u0.clusters, (unsigned long long)u1.clusters);
	/*
	 * A buffer leaked per failure would leave hundreds out; what the
	 * engine's threads may hold in their caches (64 mbufs, 48 clusters
	 * each, four threads) is the allowance.
	 */
	CHECK(u1.mbufs <= u0.mbufs + 4 * 64);
	CHECK(u1.clusters <= u0.clusters + 4 * 48);
}

/*
 * Every call of one site fails for a while: briefly (the engine's retries
 * ride it out) and for longer than the worker retries (the reader gets
 * ENOBUFS), while the stream is sent.
 */
static void
test_site_windows(void *arg)
{
	static const char *const sites[] = { "mbuf", "cluster tls",
		"cluster 2k", "mbuf slab" };
	static const unsigned int windows_ms[] = { 15, 400 };
	const struct tg_suite *s = arg;
	struct stream st;
	struct outcome o;
	struct pool_use u0, u1;
	size_t i, w;
	int k, rounds;
	long hits;

	/* Warm the engine and its pools first. */
	REQUIRE(stream_open(&st, s, 1) == 0);
	stream_run(&st, &o, 1);
	stream_close(&st);
	REQUIRE(o.ok && o.end == 0);
	tg_sleep_ms(20);
	pool_use(&u0);
	for (rounds = 0; rounds < 2; rounds++) {
		for (i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
			for (w = 0; w < 2; w++) {
				REQUIRE(stream_open(&st, s, (int)(i + w) % 2)
				    == 0);
				st.window_site = site_index(sites[i]);
				st.window_ms = windows_ms[w] * TG_TIME_MUL;
				stream_run(&st, &o, 1);
				hits = atomic_load(&f_failed);
				fault_disarm();
				stream_close(&st);
				if (rounds == 0)
					printf("  %s for %u ms: %ld failed, %s "
					    "after %d records\n", sites[i],
					    st.window_ms, hits,
					    outcome_name(&o), o.delivered);
				REQUIRE(o.ok);
			}
		}
	}
	/* After the pools were starved: a clean stream works again. */
	REQUIRE(stream_open(&st, s, 1) == 0);
	stream_run(&st, &o, 1);
	stream_close(&st);
	CHECK(o.ok && o.end == 0);
	tg_sleep_ms(50);
	pool_use(&u1);
	k = u1.mbufs <= u0.mbufs + 256 && u1.clusters <= u0.clusters + 64;
	if (!k)
		harness_fail(__FILE__, __LINE__, "pools grew from %llu to %llu "
		    "mbufs, %llu to %llu clusters", (unsigned long long)u0.mbufs,
		    (unsigned long long)u1.mbufs,
		    (unsigned long long)u0.clusters,
		    (unsigned long long)u1.clusters);
}

/*
 * An enable that fails after its read-ahead ciphertext was queued must have
 * no effect on the socket.  The prefix holds a whole record and then a bad
 * header, so a worker starts on the new socket inside the enable; the
 * descriptor table's allocation then fails (the descriptor is above the
 * table's size) after a pause that lets the worker reach the bad header.
 * The application still owns the socket: uktls must not have shut it down.
 */
/*
 * The mbufs and clusters a failed enable freed are the first this thread's
 * pool caches hand out again: none of them may still hold the hand-over
 * plaintext (made of repeats of marker).
 */
static void
check_prefix_wiped(const uint8_t *marker, size_t mlen)
{
	struct mbuf *ms[24];
	size_t i, n = 0;

	for (i = 0; i < 8; i++)
		ms[n++] = m_get(MT_DATA);
	for (i = 0; i < 8; i++)
		ms[n++] = m_getcl(MT_DATA, MCLBYTES);
	for (i = 0; i < 8; i++)
		ms[n++] = m_getcl(MT_DATA, MJUMTLSBYTES);
	for (i = 0; i < n; i++) {
		if (ms[i] == NULL) {
			harness_fail(__FILE__, __LINE__, "no mbuf to look at");
			continue;
		}
		if (memmem(m_bufstart(ms[i]), m_bufsize(ms[i]), marker,
		    mlen) != NULL)
			harness_fail(__FILE__, __LINE__, "hand-over plaintext "
			    "left in a freed %u-byte buffer", m_bufsize(ms[i]));
		m_free(ms[i]);
	}
}

static void
test_enable_fails_after_prefix(void *arg)
{
	static uint8_t plain[3][TLS_MAX_MSG_SIZE_V10_2];
	static const size_t plain_len[3] = { TLS_MAX_MSG_SIZE_V10_2, 1000,
		100 };
	const struct tg_suite *s = arg;
	struct uktls_plain_record prs[3];
	struct tg_conn c;
	uint8_t rec[2][TG_MAX_RECORD], payload[64], marker[24], b;
	struct pollfd pfd;
	ssize_t n0, n1;
	size_t i, j;
	int fd, rc, err;

	REQUIRE(tg_conn_open(&c, s, 0) == 0);
	tg_random(payload, sizeof(payload));
	n0 = tg_conn_make(&c, APP, payload, sizeof(payload), 0, rec[0]);
	n1 = tg_conn_make(&c, APP, payload, sizeof(payload), 0, rec[1]);
	REQUIRE(n0 > 0 && n1 > 0);
	memcpy(rec[0] + n0, rec[1], (size_t)n1);
	rec[0][n0 + TG_OFF_VMAJOR] = 2; /* the second header is bad */
	/* A descriptor past the table makes the enable grow the table. */
	fd = fcntl(c.rx, F_DUPFD_CLOEXEC, 4000);
	REQUIRE(fd >= 4000);
	close(c.rx);
	c.rx = fd;
	fault_arm(F_SITE, 0, site_index("so table"), 60000);
	f_stall_ms = 200 * TG_TIME_MUL;
	f_stall_site = site_index("so table");
	errno = 0;
	/* Hand-over plaintext made of a marker, to look for afterwards. */
	tg_random(marker, sizeof(marker));
	for (i = 0; i < 3; i++) {
		for (j = 0; j < plain_len[i]; j++)
			plain[i][j] = marker[j % sizeof(marker)];
		prs[i].type = TLS_RLTYPE_APP;
		prs[i].data = plain[i];
		prs[i].len = plain_len[i];
	}
	rc = uktls_enable_rx_prefixed(c.rx, &c.en, prs, 3, rec[0],
	    (size_t)(n0 + n1));
	err = errno;
	fault_disarm();
	if (atomic_load(&f_site_failed[site_index("so table")]) == 0) {
		printf("  (the table is already large enough: skipped)\n");
		if (rc == 0)
			c.enabled = 1;
		tg_conn_close(&c);
		return;
	}
	CHECK_EQ(rc, -1);
	CHECK_EQ(err, ENOMEM);
	check_prefix_wiped(marker, sizeof(marker));
	tg_sleep_ms(50);
	/* The peer must not have seen the connection end. */
	pfd.fd = c.tx;
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	if (poll(&pfd, 1, 100) != 0)
		harness_fail(__FILE__, __LINE__, "a failed enable shut the "
		    "application's connection down (peer revents %#x)",
		    pfd.revents);
	/* And the socket still carries bytes both ways. */
	b = 'x';
	CHECK_EQ(send(c.rx, &b, 1, MSG_NOSIGNAL), 1);
	tg_conn_close(&c);
}

/* ==== resets ========================================================== */

static uint64_t
bytes_received(void)
{
	struct uktls_stats st;

	uktls_get_stats(&st);
	return st.bytes_received;
}

/* Wait until uktls has read at least want more bytes than at base. */
static int
wait_received(uint64_t base, uint64_t want)
{
	int i;

	for (i = 0; i < 500 * TG_TIME_MUL; i++) {
		if (bytes_received() >= base + want)
			return 1;
		tg_sleep_ms(2);
	}
	return 0;
}

static void
reset_peer(int fd)
{
	struct linger lg = { 1, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/*
 * The peer resets the connection after a record and a half.  The whole
 * record is delivered; then an error, ECONNRESET or EMSGSIZE (the partial
 * record), never 0: a reset is not a clean end.  And it stays.
 */
static void
test_reset_mid_record(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t rec[TG_MAX_RECORD], payload[5000], buf[256];
	struct tg_rec r;
	uint64_t base;
	ssize_t n;
	int err;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	REQUIRE(tg_conn_send(&c, APP, payload, 1000, 0) == 0);
	TG_EXPECT_RECORD(c.rx, APP, payload, 1000);
	n = tg_conn_make(&c, APP, payload, sizeof(payload), 0, rec);
	REQUIRE(n > 0);
	base = bytes_received();
	REQUIRE(tg_write_all(c.tx, rec, (size_t)n / 2) == n / 2);
	CHECK(wait_received(base, (uint64_t)n / 2));
	reset_peer(c.tx);
	c.tx = -1;
	REQUIRE(tg_wait_readable(c.rx, TG_WAIT_MS) == 1);
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	CHECK_EQ(r.n, -1);
	if (r.n == -1 && r.err != ECONNRESET && r.err != EMSGSIZE)
		harness_fail(__FILE__, __LINE__, "errno %d (%s), want "
		    "ECONNRESET or EMSGSIZE", r.err, strerror(r.err));
	/* EMSGSIZE (the partial record) is sticky; a reset is told once. */
	err = r.err;
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	if (err == EMSGSIZE)
		CHECK(r.n == -1 && r.err == EMSGSIZE);
	else
		CHECK_EQ(r.n, 0);
	tg_conn_close(&c);
}

/*
 * The reset comes at a record boundary: the records, then ECONNRESET once
 * (as the kernels report a socket's error), then the end of the stream.
 */
static void
test_reset_at_boundary(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t payload[3][2000], buf[256];
	struct tg_rec r;
	uint64_t base;
	int i;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	base = bytes_received();
	for (i = 0; i < 3; i++) {
		tg_random(payload[i], sizeof(payload[i]));
		REQUIRE(tg_conn_send(&c, APP, payload[i], sizeof(payload[i]),
		    0) == 0);
	}
	CHECK(wait_received(base, 3 * tlsgen_record_len(&c.g, 2000, 0)));
	reset_peer(c.tx);
	c.tx = -1;
	for (i = 0; i < 3; i++)
		TG_EXPECT_RECORD(c.rx, APP, payload[i], sizeof(payload[i]));
	tg_recv(c.rx, buf, sizeof(buf), MSG_PEEK, TG_CTL_DEFAULT, &r);
	CHECK(r.n == -1 && r.err == ECONNRESET);
	TG_EXPECT_ERROR(c.rx, ECONNRESET);
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	CHECK_EQ(r.n, 0);
	tg_recv(c.rx, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	CHECK_EQ(r.n, 0);
	tg_conn_close(&c);
}

/* ==== close and shutdown while a worker decrypts ======================== */

static _Atomic int hold_fd = -1;
static sem_t hold_detached, hold_release;

static void
hold_hook(struct socket *so)
{
	if (so->so_fd != hold_fd)
		return;
	hold_fd = -1;
	sem_post(&hold_detached);
	sem_wait(&hold_release);
}

static void
hold_arm(int fd)
{
	sem_init(&hold_detached, 0, 0);
	sem_init(&hold_release, 0, 0);
	hold_fd = fd;
}

static void
hold_disarm(void)
{
	hold_fd = -1;
	sem_destroy(&hold_detached);
	sem_destroy(&hold_release);
}

/* Wait for the worker to stop in the hook, with a deadline. */
static int
hold_wait(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10 * TG_TIME_MUL;
	return sem_timedwait(&hold_detached, &ts) == 0;
}

struct blocked {
	int fd;
	int use_poll;
	ssize_t n;
	int err;
	short revents;
	pthread_t t;
};

static void *
blocked_main(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[20000];
	struct pollfd pfd;

	if (b->use_poll) {
		pfd.fd = b->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		b->n = uktls_poll(&pfd, 1, 20000 * TG_TIME_MUL);
		b->err = errno;
		b->revents = pfd.revents;
		return NULL;
	}
	b->n = uktls_read(b->fd, buf, sizeof(buf));
	b->err = errno;
	return NULL;
}

struct closer {
	int fd;
	int how; /* -1: uktls_close, else uktls_shutdown(how) */
	int rc, err;
	pthread_t t;
};

static void *
closer_main(void *arg)
{
	struct closer *c = arg;

	if (c->how < 0)
		c->rc = uktls_close(c->fd);
	else
		c->rc = uktls_shutdown(c->fd, c->how);
	c->err = errno;
	return NULL;
}

static uint64_t
cancelled(void)
{
	struct uktls_stats st;

	uktls_get_stats(&st);
	return st.records_cancelled;
}

/*
 * A reader blocked in uktls_read and another in uktls_poll, a worker
 * holding a record, and uktls_close from a third thread: both return (the
 * read with EBADF, the poll readable), the record is cancelled when the
 * worker goes on, and nothing is left behind.
 */
static void
test_close_while_decrypting(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct blocked rd, pl;
	struct closer cl;
	uint8_t payload[16384];
	uint64_t before = cancelled();
	int i;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	memset(&rd, 0, sizeof(rd));
	memset(&pl, 0, sizeof(pl));
	rd.fd = pl.fd = c.rx;
	pl.use_poll = 1;
	REQUIRE(pthread_create(&rd.t, NULL, blocked_main, &rd) == 0);
	REQUIRE(pthread_create(&pl.t, NULL, blocked_main, &pl) == 0);
	tg_sleep_ms(20);
	hold_arm(c.rx);
	REQUIRE(tg_conn_send(&c, APP, payload, sizeof(payload), 0) == 0);
	if (!hold_wait()) {
		harness_fail(__FILE__, __LINE__, "worker never detached");
		hold_disarm();
		return;
	}
	cl.fd = c.rx;
	cl.how = -1;
	REQUIRE(pthread_create(&cl.t, NULL, closer_main, &cl) == 0);
	pthread_join(cl.t, NULL);
	CHECK_EQ(cl.rc, 0);
	/*
	 * The held decryption may be the blocked reader's own (a waiting
	 * reader decrypts inline), so let it go before joining the reader.
	 */
	sem_post(&hold_release);
	pthread_join(rd.t, NULL);
	pthread_join(pl.t, NULL);
	CHECK_EQ(rd.n, -1);
	CHECK_EQ(rd.err, EBADF);
	CHECK_EQ(pl.n, 1);
	for (i = 0; i < 500 * TG_TIME_MUL && cancelled() == before; i++)
		tg_sleep_ms(2);
	CHECK(cancelled() > before);
	hold_disarm();
	c.rx = -1;
	c.enabled = 0;
	tg_conn_close(&c);
}

/*
 * shutdown(SHUT_RD) from another thread while the worker holds a record
 * and a reader waits: the reader gets the end, the held record is never
 * delivered, and every later read says end of stream at once.
 */
static void
test_shutdown_while_decrypting(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct blocked rd;
	struct closer cl;
	uint8_t payload[4000], buf[5000];
	uint64_t before = cancelled();
	int i;

	REQUIRE(tg_conn_open(&c, s, 1) == 0);
	tg_random(payload, sizeof(payload));
	memset(&rd, 0, sizeof(rd));
	rd.fd = c.rx;
	REQUIRE(pthread_create(&rd.t, NULL, blocked_main, &rd) == 0);
	tg_sleep_ms(20);
	hold_arm(c.rx);
	REQUIRE(tg_conn_send(&c, APP, payload, sizeof(payload), 0) == 0);
	/* A second record queues behind the held one. */
	REQUIRE(tg_conn_send(&c, APP, payload, 100, 0) == 0);
	if (!hold_wait()) {
		harness_fail(__FILE__, __LINE__, "worker never detached");
		hold_disarm();
		return;
	}
	cl.fd = c.rx;
	cl.how = SHUT_RD;
	REQUIRE(pthread_create(&cl.t, NULL, closer_main, &cl) == 0);
	pthread_join(cl.t, NULL);
	CHECK_EQ(cl.rc, 0);
	/* The reader may be the thread that holds the record. */
	sem_post(&hold_release);
	pthread_join(rd.t, NULL);
	CHECK_EQ(rd.n, 0);
	for (i = 0; i < 500 * TG_TIME_MUL && cancelled() == before; i++)
		tg_sleep_ms(2);
	CHECK(cancelled() > before);
	hold_disarm();
	tg_sleep_ms(20);
	for (i = 0; i < 3; i++)
		CHECK_EQ(uktls_recv(c.rx, buf, sizeof(buf), MSG_DONTWAIT), 0);
	tg_conn_close(&c);
}

/* ==== secrets ========================================================== */

struct secret {
	uint8_t key[32];
	int key_len;
	uint8_t iv[12];
	int iv_len;
};

/* Sessions released, and any that held a recognisable secret. */
/* The secret to look for; sessions of earlier tests may be released by
 * the engine's threads while a test sets it. */
static pthread_mutex_t watch_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct secret watch;
static _Atomic int watch_on;
static atomic_long freed_sessions, freed_bad, freed_badlen;

/*
 * Does a window of w bytes of the secret s (len bytes) occur in buf?  All-
 * zero windows are skipped: wiped memory is zeros.
 */
static int
contains_window(const uint8_t *buf, size_t n, const uint8_t *s, size_t len,
    size_t w)
{
	size_t i, j, z;

	if (len < w)
		w = len;
	for (i = 0; i + w <= len; i++) {
		for (z = 0; z < w && s[i + z] == 0; z++)
			;
		if (z == w)
			continue;
		for (j = 0; j + w <= n; j++)
			if (memcmp(buf + j, s + i, w) == 0)
				return 1;
	}
	return 0;
}

static int
contains_secret(const uint8_t *buf, size_t n, const struct secret *sc)
{
	return contains_window(buf, n, sc->key, (size_t)sc->key_len, 4) ||
	    contains_window(buf, n, sc->iv, (size_t)sc->iv_len, 4);
}

static void
session_free_hook(const void *mem, size_t len)
{
	int bad;

	if (!watch_on)
		return;
	atomic_fetch_add(&freed_sessions, 1);
	if (len != sizeof(struct ktls_session))
		atomic_fetch_add(&freed_badlen, 1);
	pthread_mutex_lock(&watch_mtx);
	bad = contains_secret(mem, len, &watch);
	pthread_mutex_unlock(&watch_mtx);
	if (bad)
		atomic_fetch_add(&freed_bad, 1);
}

static void
watch_conn(const struct tg_conn *c)
{
	pthread_mutex_lock(&watch_mtx);
	memcpy(watch.key, c->g.key, sizeof(watch.key));
	watch.key_len = c->g.suite->key_len;
	memcpy(watch.iv, c->g.iv, sizeof(watch.iv));
	watch.iv_len = c->g.iv_len;
	pthread_mutex_unlock(&watch_mtx);
}

static int
wait_freed(long want)
{
	int i;

	for (i = 0; i < 1000 * TG_TIME_MUL; i++) {
		if (atomic_load(&freed_sessions) >= want)
			return 1;
		tg_sleep_ms(2);
	}
	return 0;
}

/*
 * A session's memory, as it is released, holds no four consecutive bytes
 * of its key or IV: after a normal close, after a close with records and
 * encrypted bytes still queued, and when the enable itself fails after the
 * session was made (the socket is not connected).
 */
static void
test_session_wiped(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t payload[3000], rec[TG_MAX_RECORD];
	struct tls_enable en;
	ssize_t n;
	long base;
	int fd;

	atomic_store(&freed_bad, 0);
	atomic_store(&freed_badlen, 0);
	watch_on = 1;

	/* A normal life. */
	base = atomic_load(&freed_sessions);
	REQUIRE(tg_conn_open(&c, s, 0) == 0);
	watch_conn(&c);
	REQUIRE(tg_conn_enable(&c) == 0);
	tg_random(payload, sizeof(payload));
	REQUIRE(tg_conn_send(&c, APP, payload, sizeof(payload), 0) == 0);
	TG_EXPECT_RECORD(c.rx, APP, payload, sizeof(payload));
	tg_conn_close(&c);
	CHECK(wait_freed(base + 1));

	/* Closed with a record unread and half a record encrypted. */
	base = atomic_load(&freed_sessions);
	REQUIRE(tg_conn_open(&c, s, 0) == 0);
	watch_conn(&c);
	REQUIRE(tg_conn_enable(&c) == 0);
	REQUIRE(tg_conn_send(&c, APP, payload, 100, 0) == 0);
	n = tg_conn_make(&c, APP, payload, sizeof(payload), 0, rec);
	REQUIRE(n > 0);
	REQUIRE(tg_write_all(c.tx, rec, (size_t)n / 2) == n / 2);
	REQUIRE(tg_wait_readable(c.rx, TG_WAIT_MS) == 1);
	tg_sleep_ms(10);
	tg_conn_close(&c);
	CHECK(wait_freed(base + 1));

	/* The enable fails after the session was built. */
	base = atomic_load(&freed_sessions);
	REQUIRE(tg_conn_open(&c, s, 0) == 0);
	watch_conn(&c);
	en = c.en;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	CHECK_ERRNO(uktls_setsockopt(fd, IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
	    sizeof(en)), ENOTCONN);
	close(fd);
	CHECK(wait_freed(base + 1));
	tg_conn_close(&c);

	watch_on = 0;
	CHECK_EQ(atomic_load(&freed_badlen), 0);
	CHECK_EQ(atomic_load(&freed_bad), 0);
}

/* Append the statistics as text, the way a tool would print them. */
static size_t
stats_text(char *out, size_t size)
{
	struct uktls_stats st;

	uktls_get_stats(&st);
	return (size_t)snprintf(out, size,
	    "enabled %llu active %llu records %llu bytes %llu received %llu "
	    "bad_tag %llu bad_header %llu bad_length %llu truncated %llu "
	    "nomem %llu cancelled %llu wq %llu depth %llu mbufs %llu/%llu "
	    "clusters %llu/%llu pool %llu workers %u input %u backend %.32s\n",
	    (unsigned long long)st.sockets_enabled,
	    (unsigned long long)st.sockets_active,
	    (unsigned long long)st.records_decrypted,
	    (unsigned long long)st.bytes_decrypted,
	    (unsigned long long)st.bytes_received,
	    (unsigned long long)st.err_bad_tag,
	    (unsigned long long)st.err_bad_header,
	    (unsigned long long)st.err_bad_length,
	    (unsigned long long)st.err_truncated,
	    (unsigned long long)st.err_nomem,
	    (unsigned long long)st.records_cancelled,
	    (unsigned long long)st.wq_enqueued,
	    (unsigned long long)st.wq_depth_max,
	    (unsigned long long)st.pool_mbufs_free,
	    (unsigned long long)st.pool_mbufs_total,
	    (unsigned long long)st.pool_clusters_free,
	    (unsigned long long)st.pool_clusters_total,
	    (unsigned long long)st.pool_bytes, st.workers, st.input_threads,
	    st.crypto_backend);
}

static void
hex(char *out, const uint8_t *p, size_t n, int upper)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Does text hold the secret raw or in hex (any 4-byte window)? */
static int
text_has_secret(const char *text, size_t n, const struct secret *sc)
{
	char h[2][2 * 32 + 1];
	int u;

	if (contains_secret((const uint8_t *)text, n, sc))
		return 1;
	for (u = 0; u < 2; u++) {
		hex(h[0], sc->key, (size_t)sc->key_len, u);
		hex(h[1], sc->iv, (size_t)sc->iv_len, u);
		if (contains_window((const uint8_t *)text, n,
		    (const uint8_t *)h[0], strlen(h[0]), 8) ||
		    contains_window((const uint8_t *)text, n,
		    (const uint8_t *)h[1], strlen(h[1]), 8))
			return 1;
	}
	return 0;
}

/*
 * Nothing uktls prints or counts carries key material: run good records,
 * a bad tag, a bad header, a truncated stream and refused enables with
 * stderr captured, then look for the keys in what was printed, in the
 * counters (raw and as text) and in the error strings the calls produced.
 */
static void
test_no_secrets_in_output(void *arg)
{
	static char text[1 << 16];
	const struct tg_suite *s = arg;
	struct secret secrets[3];
	struct tg_conn c[3];
	struct tls_enable bad;
	struct uktls_stats st;
	uint8_t payload[500], rec[TG_MAX_RECORD];
	char path[] = "/tmp/uktls-test-fault-XXXXXX";
	size_t len = 0;
	ssize_t n;
	int tmp, saved, i;

	tmp = mkstemp(path);
	REQUIRE(tmp >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	REQUIRE(saved >= 0);
	dup2(tmp, 2);

	tg_random(payload, sizeof(payload));
	for (i = 0; i < 3; i++) {
		if (tg_conn_open(&c[i], s, 1) != 0)
			break;
		memcpy(secrets[i].key, c[i].g.key, sizeof(secrets[i].key));
		secrets[i].key_len = c[i].g.suite->key_len;
		memcpy(secrets[i].iv, c[i].g.iv, sizeof(secrets[i].iv));
		secrets[i].iv_len = c[i].g.iv_len;
	}
	if (i == 3) {
		/* Good, then a bad tag, then good. */
		tg_conn_send(&c[0], APP, payload, sizeof(payload), 0);
		n = tg_conn_make(&c[0], APP, payload, sizeof(payload), 0, rec);
		if (n > 0) {
			rec[n - 1] ^= 1;
			tg_write_all(c[0].tx, rec, (size_t)n);
		}
		tg_conn_send(&c[0], APP, payload, 10, 0);
		shutdown(c[0].tx, SHUT_WR);
		/* A bad header. */
		n = tg_conn_make(&c[1], APP, payload, 10, 0, rec);
		if (n > 0) {
			rec[TG_OFF_VMINOR] = 9;
			tg_write_all(c[1].tx, rec, (size_t)n);
		}
		/* A truncated record. */
		n = tg_conn_make(&c[2], APP, payload, sizeof(payload), 0, rec);
		if (n > 0)
			tg_write_all(c[2].tx, rec, (size_t)n - 3);
		shutdown(c[2].tx, SHUT_WR);
		/* Refused enables with the same keys. */
		bad = c[0].en;
		bad.cipher_key_len = 24;
		(void)uktls_setsockopt(c[0].tx, IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &bad, sizeof(bad));
		bad = c[0].en;
		(void)uktls_setsockopt(c[0].rx, IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &bad, sizeof(bad));
		/* Read everything there is. */
		for (i = 0; i < 3; i++) {
			uint8_t buf[600];
			struct tg_rec r;
			int k;

			for (k = 0; k < 4; k++) {
				if (tg_wait_readable(c[i].rx, 2000) != 1)
					break;
				tg_recv(c[i].rx, buf, sizeof(buf), 0,
				    TG_CTL_DEFAULT, &r);
				if (r.n < 0)
					len += (size_t)snprintf(text + len,
					    sizeof(text) - len, "%s\n",
					    strerror(r.err));
			}
		}
		for (i = 0; i < 3; i++)
			tg_conn_close(&c[i]);
	}

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	REQUIRE(i == 3);
	len += stats_text(text + len, sizeof(text) - len);
	n = pread(tmp, text + len, sizeof(text) - len - 1, 0);
	close(tmp);
	if (n > 0)
		len += (size_t)n;
	uktls_get_stats(&st);
	for (i = 0; i < 3; i++) {
		if (text_has_secret(text, len, &secrets[i]))
			harness_fail(__FILE__, __LINE__, "key material of "
			    "connection %d in the output or error strings", i);
		if (contains_secret((const uint8_t *)&st, sizeof(st),
		    &secrets[i]))
			harness_fail(__FILE__, __LINE__, "key material of "
			    "connection %d in struct uktls_stats", i);
	}
	CHECK(st.err_bad_tag > 0 && st.err_bad_header > 0 &&
	    st.err_truncated > 0);
}

/* ==== empty pools and a bounded wait ================================== */

/*
 * A reader with SO_RCVTIMEO whose thread gets no cluster while a record
 * waits in the kernel: each poll returns at once, and the read must back
 * off between tries (as the input thread does) rather than spin until the
 * deadline.  When clusters come back the record is read whole.
 */
struct starved_reader {
	int fd;
	ssize_t n;
	int err;
};

static void *
starved_reader_main(void *arg)
{
	struct starved_reader *sr = arg;
	struct tg_rec r;
	uint8_t buf[256];

	/* A new thread: no clusters of its own from earlier reads. */
	f_is_victim = 1;
	tg_recv(sr->fd, buf, sizeof(buf), 0, TG_CTL_DEFAULT, &r);
	sr->n = r.n;
	sr->err = r.err;
	return NULL;
}

static void
test_timed_wait_no_clusters(void *arg)
{
	const struct tg_suite *s = arg;
	struct starved_reader sr;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };
	struct tg_delayed_write dw;
	struct tg_conn c;
	uint8_t a[100], *rec;
	pthread_t t;
	ssize_t n;
	long calls;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = malloc(TG_MAX_RECORD);
	REQUIRE(rec != NULL);
	tg_random(a, sizeof(a));
	n = tg_conn_make(&c, APP, a, sizeof(a), 0, rec);
	if (n <= 0)
		goto out;
	CHECK_EQ(uktls_setsockopt(c.rx, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	memset(&sr, 0, sizeof(sr));
	sr.fd = c.rx;
	f_victim_only = 1;
	fault_arm(F_SITE, 0, site_index("cluster tls"), 60000);
	/* The record comes while the reader waits on the socket itself. */
	if (tg_delayed_write_start(&dw, c.tx, rec, (size_t)n, 50) == -1 ||
	    pthread_create(&t, NULL, starved_reader_main, &sr) != 0) {
		fault_disarm();
		f_victim_only = 0;
		goto out;
	}
	pthread_join(t, NULL);
	CHECK_EQ(tg_delayed_write_join(&dw), n);
	fault_disarm();
	f_victim_only = 0;
	calls = atomic_load(&f_site_calls[site_index("cluster tls")]);
	printf("  %ld tries for a cluster in 300 ms\n", calls);
	CHECK_EQ(sr.n, -1);
	CHECK(sr.err == EAGAIN || sr.err == EWOULDBLOCK);
	/* A 1 ms pause between tries allows about 300; a spin makes 10^4+. */
	CHECK(calls < 3000);
	TG_EXPECT_RECORD(c.rx, APP, a, sizeof(a));
out:
	free(rec);
	tg_conn_close(&c);
}

/* ==== registration ===================================================== */

static struct harness_test tests[] = {
	/* First: the engine starts here. */
	{ "enable_faults", test_enable_faults, NULL, NULL, NULL },
	{ "sweep", test_sweep, (void *)&tg_suites[0], "tls12_aes128_gcm",
	    NULL },
	{ "sweep", test_sweep, (void *)&tg_suites[5],
	    "tls13_chacha20_poly1305", NULL },
	{ "site_windows", test_site_windows, (void *)&tg_suites[3],
	    "tls13_aes128_gcm", NULL },
	{ "reset_mid_record", test_reset_mid_record, (void *)&tg_suites[0],
	    "tls12_aes128_gcm", NULL },
	{ "reset_mid_record", test_reset_mid_record, (void *)&tg_suites[4],
	    "tls13_aes256_gcm", NULL },
	{ "reset_at_boundary", test_reset_at_boundary, (void *)&tg_suites[2],
	    "tls12_chacha20_poly1305", NULL },
	{ "reset_at_boundary", test_reset_at_boundary, (void *)&tg_suites[3],
	    "tls13_aes128_gcm", NULL },
	{ "close_while_decrypting", test_close_while_decrypting,
	    (void *)&tg_suites[1], "tls12_aes256_gcm", NULL },
	{ "close_while_decrypting", test_close_while_decrypting,
	    (void *)&tg_suites[5], "tls13_chacha20_poly1305", NULL },
	{ "shutdown_while_decrypting", test_shutdown_while_decrypting,
	    (void *)&tg_suites[0], "tls12_aes128_gcm", NULL },
	{ "shutdown_while_decrypting", test_shutdown_while_decrypting,
	    (void *)&tg_suites[4], "tls13_aes256_gcm", NULL },
	{ "no_secrets_in_output", test_no_secrets_in_output,
	    (void *)&tg_suites[3], "tls13_aes128_gcm", NULL },
	{ "timed_wait_no_clusters", test_timed_wait_no_clusters,
	    (void *)&tg_suites[3], "tls13_aes128_gcm", NULL },
	/* Last: ThreadSanitizer stops the program at the race it shows. */
	{ "enable_fails_after_prefix", test_enable_fails_after_prefix,
	    (void *)&tg_suites[3], "tls13_aes128_gcm", NULL },
};

int
main(int argc, char **argv)
{
	size_t i;

	uktls_fault_hook = fault_hook;
	ktls_test_detach_hook = hold_hook;
	ktls_test_session_free_hook = session_free_hook;
	for (i = 0; i + 1 < sizeof(tests) / sizeof(tests[0]); i++)
		harness_register(&tests[i]);
	/* Session wiping for every suite. */
	tg_register_suites("session_wiped", test_session_wiped, 0,
	    TG_NSUITES);
	harness_register(&tests[i]);
	return harness_main(argc, argv);
}
