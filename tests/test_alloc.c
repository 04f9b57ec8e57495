/*
 * Heap allocations per record in the steady state must be zero.
 *
 * This program replaces malloc and its relatives with wrappers that forward
 * to glibc's __libc_* entry points and count the calls made while a flag is
 * set.  It warms a loopback connection up with a few MiB of records, then
 * counts every allocation in the process (engine input threads, workers,
 * crypto, the reading thread) while at least 2000 more records are
 * received, and requires none.  The first few allocation sites are printed
 * as backtraces.
 *
 * Under AddressSanitizer or ThreadSanitizer the sanitizer owns malloc and
 * the interposition is impossible: the program then only streams the same
 * records and checks them, so that it still reports a pass.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "tlsgen.h"
#include "uktls.h"

#define APP TLS_RLTYPE_APP

#if !TG_SANITIZED
/* ==== malloc interposition ========================================== */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define NSITES 6
#define SITE_DEPTH 24

static atomic_int counting;
static atomic_ulong nalloc;
static atomic_ulong nfree;
static atomic_int nsites;
static void *sites[NSITES][SITE_DEPTH];
static int site_depth[NSITES];
static __thread int in_hook;

static void
note_alloc(void)
{
	int i;

	if (!atomic_load_explicit(&counting, memory_order_relaxed))
		return;
	atomic_fetch_add(&nalloc, 1);
	if (in_hook)
		return;
	in_hook = 1;
	i = atomic_fetch_add(&nsites, 1);
	if (i < NSITES)
		site_depth[i] = backtrace(sites[i], SITE_DEPTH);
	in_hook = 0;
}

void *
malloc(size_t n)
{

	note_alloc();
	return (__libc_malloc(n));
}

void *
calloc(size_t n, size_t m)
{

	note_alloc();
	return (__libc_calloc(n, m));
}

void *
realloc(void *p, size_t n)
{

	note_alloc();
	return (__libc_realloc(p, n));
}

void *
reallocarray(void *p, size_t n, size_t m)
{

	if (m != 0 && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return (NULL);
	}
	note_alloc();
	return (__libc_realloc(p, n * m));
}

void
free(void *p)
{

	if (p != NULL &&
	    atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add(&nfree, 1);
	__libc_free(p);
}

void *
memalign(size_t align, size_t n)
{

	note_alloc();
	return (__libc_memalign(align, n));
}

void *
aligned_alloc(size_t align, size_t n)
{

	note_alloc();
	return (__libc_memalign(align, n));
}

int
posix_memalign(void **pp, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return (EINVAL);
	note_alloc();
	p = __libc_memalign(align, n);
	if (p == NULL)
		return (ENOMEM);
	*pp = p;
	return (0);
}

void *
valloc(size_t n)
{

	note_alloc();
	return (__libc_valloc(n));
}

void *
pvalloc(size_t n)
{

	note_alloc();
	return (__libc_pvalloc(n));
}
#endif /* !TG_SANITIZED */

/* ==== the record stream ============================================= */

/* Payload bytes of warm-up, and records counted afterwards. */
#ifndef WARM_BYTES
#define WARM_BYTES ((size_t)(6u << 20) / TG_SCALE_DIV)
#endif
#ifndef COUNT_RECORDS
#define COUNT_RECORDS (TG_SANITIZED ? 256 : 2048)
#endif

static size_t
rec_size(struct tg_rng *r)
{
	uint64_t u;

	u = tg_rng_below(r, 8);
	if (u == 0)
		return (1 + tg_rng_below(r, 64));
	if (u == 1)
		return (TG_MAX_PLAINTEXT);
	return (1 + tg_rng_below(r, TG_MAX_PLAINTEXT));
}

struct writer {
	int fd;
	const uint8_t *buf;
	size_t len;
	int hold[2]; /* the writer stays alive until this pipe is written */
	ssize_t result;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	char c;

	w->result = tg_write_all(w->fd, w->buf, w->len);
	/* Do not exit (and free thread state) while allocations count. */
	while (read(w->hold[0], &c, 1) == -1 && errno == EINTR)
		;
	return (NULL);
}

/*
 * Receive one record of size bytes (regenerating its payload from rng into
 * exp) and check it.  Nothing here allocates.  Returns 0 or -1 with a
 * message in err.
 */
static int
read_one(int fd, int use_poll, struct tg_rng *rng, uint8_t *exp, uint8_t *buf,
    size_t bufsize, char *err, size_t errsize)
{
	struct pollfd pfd;
	struct tg_rec r;
	size_t size;

	size = rec_size(rng);
	tg_rng_fill(rng, exp, size);
	for (;;) {
		if (use_poll) {
			pfd.fd = fd;
			pfd.events = POLLIN;
			pfd.revents = 0;
			if (uktls_poll(&pfd, 1, TG_WAIT_MS) != 1) {
				snprintf(err, errsize, "poll: no record");
				return (-1);
			}
		}
		tg_recv(fd, buf, bufsize, use_poll ? MSG_DONTWAIT : 0,
		    TG_CTL_DEFAULT, &r);
		if (r.n == -1 && r.err == EAGAIN && use_poll)
			continue;
		break;
	}
	if (r.n != (ssize_t)size || !r.cmsg_ok || r.ncmsg != 1 ||
	    (r.flags & (MSG_EOR | MSG_CTRUNC)) != MSG_EOR ||
	    r.tgr.tls_type != APP || ntohs(r.tgr.tls_length) != size ||
	    memcmp(buf, exp, size) != 0) {
		snprintf(err, errsize, "got %zd bytes errno %d flags %#x "
		    "cmsg %d/%d length %u, want %zu bytes", r.n, r.err, r.flags,
		    r.cmsg_ok, r.ncmsg, ntohs(r.tgr.tls_length), size);
		return (-1);
	}
	return (0);
}

/*
 * Warm up, then receive COUNT_RECORDS records, counting allocations when
 * count is set.
 */
static void
alloc_run(const struct tg_suite *s, int use_poll, int count)
{
	struct tg_conn c;
	struct tg_rng grng, rrng;
	struct writer w;
	pthread_t wt;
	uint8_t *wire, *plain, *exp, *buf;
	size_t cap, wlen = 0, size, warm_bytes = 0, nwarm = 0, i, bufsize;
	unsigned long allocs = 0, frees = 0;
	struct uktls_stats st0, st1;
	char err[256] = "";
	ssize_t n;
	uint64_t seed;
	int nsite = 0, j = 0;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	seed = tg_random64();
	/* Generate everything first: the generator allocates. */
	cap = WARM_BYTES + (size_t)COUNT_RECORDS * TG_MAX_PLAINTEXT +
	    (size_t)(COUNT_RECORDS + WARM_BYTES / 64 + 16) * 64;
	wire = malloc(cap);
	plain = malloc(TG_MAX_PLAINTEXT);
	exp = malloc(TG_MAX_PLAINTEXT);
	bufsize = TG_MAX_PLAINTEXT + 1024;
	buf = malloc(bufsize);
	REQUIRE(wire != NULL && plain != NULL && exp != NULL && buf != NULL);
	grng.s = seed;
	while (warm_bytes < WARM_BYTES) {
		size = rec_size(&grng);
		tg_rng_fill(&grng, plain, size);
		n = tlsgen_encrypt(&c.g, APP, plain, size, 0, wire + wlen,
		    cap - wlen);
		REQUIRE(n > 0);
		wlen += (size_t)n;
		warm_bytes += size;
		nwarm++;
	}
	for (i = 0; i < COUNT_RECORDS; i++) {
		size = rec_size(&grng);
		tg_rng_fill(&grng, plain, size);
		n = tlsgen_encrypt(&c.g, APP, plain, size, 0, wire + wlen,
		    cap - wlen);
		REQUIRE(n > 0);
		wlen += (size_t)n;
	}

	w.fd = c.tx;
	w.buf = wire;
	w.len = wlen;
	w.result = -1;
	REQUIRE(pipe(w.hold) == 0);
	REQUIRE(pthread_create(&wt, NULL, writer_main, &w) == 0);

	rrng.s = seed;
	for (i = 0; i < nwarm; i++) {
		if (read_one(c.rx, use_poll, &rrng, exp, buf, bufsize, err,
		    sizeof(err)) == -1) {
			harness_fail(__FILE__, __LINE__, "warm-up record %zu "
			    "of %zu: %s", i, nwarm, err);
			goto out;
		}
	}
	uktls_get_stats(&st0);
#if !TG_SANITIZED
	if (count) {
		atomic_store(&nalloc, 0);
		atomic_store(&nfree, 0);
		atomic_store(&nsites, 0);
		atomic_store(&counting, 1);
	}
#endif
	for (i = 0; i < COUNT_RECORDS; i++) {
		if (read_one(c.rx, use_poll, &rrng, exp, buf, bufsize, err,
		    sizeof(err)) == -1)
			break;
	}
#if !TG_SANITIZED
	if (count) {
		atomic_store(&counting, 0);
		allocs = atomic_load(&nalloc);
		frees = atomic_load(&nfree);
		nsite = atomic_load(&nsites);
	}
#endif
	if (i < COUNT_RECORDS)
		harness_fail(__FILE__, __LINE__, "record %zu of %d: %s", i,
		    COUNT_RECORDS, err);
	if (count) {
		uktls_get_stats(&st1);
		printf("     %lu allocations, %lu frees over %zu records "
		    "(%s%s); pool %" PRIu64 " -> %" PRIu64 " bytes\n", allocs,
		    frees, i, s->name, use_poll ? ", uktls_poll + MSG_DONTWAIT" :
		    "", st0.pool_bytes, st1.pool_bytes);
		if (allocs != 0) {
			harness_fail(__FILE__, __LINE__, "%lu heap allocations "
			    "while receiving %zu records; first sites:",
			    allocs, i);
#if !TG_SANITIZED
			for (j = 0; j < nsite && j < NSITES; j++) {
				fprintf(stderr, "  -- allocation %d:\n", j);
				backtrace_symbols_fd(sites[j], site_depth[j],
				    2);
			}
#endif
		}
	}
	(void)nsite;
	(void)j;
out:
	CHECK_EQ(write(w.hold[1], "x", 1), 1);
	pthread_join(wt, NULL);
	CHECK_EQ(w.result, (ssize_t)wlen);
	close(w.hold[0]);
	close(w.hold[1]);
	free(buf);
	free(exp);
	free(plain);
	free(wire);
	tg_conn_close(&c);
}

#if !TG_SANITIZED
static void
t_alloc_recvmsg(void *arg)
{

	alloc_run(arg, 0, 1);
}

static void
t_alloc_poll(void *arg)
{

	alloc_run(arg, 1, 1);
}
#endif

static void
t_stream(void *arg)
{

	alloc_run(arg, 0, 0);
}

int
main(int argc, char **argv)
{
#if !TG_SANITIZED
	void *frames[4];

	/* backtrace() loads libgcc on first use: do it now, not in a hook. */
	(void)backtrace(frames, 4);
	tg_register_suites("zero_alloc_recvmsg", t_alloc_recvmsg, 0,
	    TG_NSUITES);
	tg_register_suites("zero_alloc_poll", t_alloc_poll, 0, TG_NSUITES);
#else
	tg_register_suites("stream", t_stream, 0, TG_NSUITES);
#endif
	(void)t_stream;
	return (harness_main(argc, argv));
}
