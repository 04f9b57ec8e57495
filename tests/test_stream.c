/*
 * Stream tests for uktls: records split at every byte boundary, many records
 * in one write, one-byte writes, sequence numbers up to 2^64 - 1, a long
 * stream of random-size records checked byte for byte, and 256 connections
 * at once, each with its own suite, key and sequence number.
 *
 * Sequence numbers: the generator's counter wraps from 2^64 - 1 to 0, but
 * TLS forbids the wrap, so no test sends a record after 2^64 - 1.
 *
 * Threads other than the test's own never call harness_fail(); they leave a
 * message in their context and the test reports it after joining them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
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

/* ==== splits ======================================================== */

/*
 * Three records (of 1, 40 and 17 bytes; TLS 1.3: the second padded by 5)
 * written in up to three pieces cut at cuts[0..ncuts-1], with a pause after
 * each piece so that the engine sees them separately.  Returns 0, or -1
 * after a failure (reported, naming the cuts).
 */
static int
split_once(struct tg_conn *c, uint8_t *wire, const size_t *cuts, int ncuts)
{
	static const size_t sizes[3] = { 1, 40, 17 };
	static const size_t pads[3] = { 0, 5, 0 };
	static const uint8_t types[3] = { APP, TLS_RLTYPE_HANDSHAKE, APP };
	uint8_t p[3][40];
	size_t wlen = 0, n, from;
	int i;

	for (i = 0; i < 3; i++) {
		tg_random(p[i], sizes[i]);
		n = (size_t)tg_conn_make(c, types[i], p[i], sizes[i], pads[i],
		    wire + wlen);
		if (n == (size_t)-1)
			return (-1);
		wlen += n;
	}
	from = 0;
	for (i = 0; i <= ncuts; i++) {
		n = (i < ncuts ? cuts[i] : wlen) - from;
		if (n > 0 && send_raw(c, wire + from, n) == -1)
			return (-1);
		from += n;
		if (i < ncuts)
			tg_sleep_ms(1);
	}
	for (i = 0; i < 3; i++) {
		if (TG_EXPECT_RECORD(c->rx, types[i], p[i], sizes[i]) == -1) {
			harness_fail(__FILE__, __LINE__, "record %d of a "
			    "%zu-byte sequence cut at %zu%s%zu", i, wlen,
			    cuts[0], ncuts > 1 ? " and " : "",
			    ncuts > 1 ? cuts[1] : (size_t)0);
			return (-1);
		}
	}
	return (0);
}

static size_t
split_seq_len(const struct tg_conn *c)
{

	return (tlsgen_record_len(&c->g, 1, 0) +
	    tlsgen_record_len(&c->g, 40, 5) + tlsgen_record_len(&c->g, 17, 0));
}

/* Every single cut point k in 1 .. len - 1. */
static void
t_split_every_byte(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	uint8_t *wire;
	size_t k, len;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = xmalloc(3 * TG_MAX_RECORD);
	len = split_seq_len(&c);
	for (k = 1; k < len; k++)
		if (split_once(&c, wire, &k, 1) == -1)
			break;
	free(wire);
	tg_conn_close(&c);
}

/* Random pairs of cut points. */
static void
t_split_random_pairs(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct tg_rng rng;
	uint8_t *wire;
	size_t cuts[2], len, t;
	int i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rng.s = tg_random64();
	wire = xmalloc(3 * TG_MAX_RECORD);
	len = split_seq_len(&c);
	for (i = 0; i < 200 / TG_SCALE_DIV + 20; i++) {
		cuts[0] = 1 + tg_rng_below(&rng, len - 1);
		cuts[1] = 1 + tg_rng_below(&rng, len - 1);
		if (cuts[0] > cuts[1]) {
			t = cuts[0];
			cuts[0] = cuts[1];
			cuts[1] = t;
		}
		if (split_once(&c, wire, cuts, 2) == -1)
			break;
	}
	free(wire);
	tg_conn_close(&c);
}

/* 500 small records of mixed types in one write(). */
static void
t_many_records_one_write(void *arg)
{
	const struct tg_suite *s = arg;
	static const uint8_t types[4] = { APP, APP, TLS_RLTYPE_HANDSHAKE,
	    TLS_RLTYPE_ALERT };
	enum { NREC = 500 };
	struct tg_conn c;
	struct tg_rng rng;
	uint8_t *wire, *plain, *rtype;
	size_t *len, wlen = 0, n;
	int i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rng.s = tg_random64();
	wire = xmalloc((size_t)NREC * (64 + 64));
	plain = xmalloc((size_t)NREC * 64);
	rtype = xmalloc(NREC);
	len = malloc(NREC * sizeof(*len));
	if (len == NULL)
		abort();
	for (i = 0; i < NREC; i++) {
		len[i] = tg_rng_below(&rng, 65);
		rtype[i] = types[tg_rng_below(&rng, 4)];
		tg_rng_fill(&rng, plain + 64 * i, len[i]);
		n = (size_t)tg_conn_make(&c, rtype[i], plain + 64 * i, len[i],
		    tg_rng_below(&rng, 3), wire + wlen);
		if (n == (size_t)-1)
			goto out;
		wlen += n;
	}
	if (send_raw(&c, wire, wlen) == -1)
		goto out;
	for (i = 0; i < NREC; i++) {
		if (TG_EXPECT_RECORD(c.rx, rtype[i], plain + 64 * i,
		    len[i]) == -1) {
			harness_fail(__FILE__, __LINE__, "record %d of %d", i,
			    NREC);
			break;
		}
	}
out:
	free(len);
	free(rtype);
	free(plain);
	free(wire);
	tg_conn_close(&c);
}

/*
 * Whole records written one byte per send(), with a short pause after each;
 * not readable until the last byte.
 */
static void
t_one_byte_writes(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct pollfd pfd;
	uint8_t p[2][300], *rec;
	size_t sizes[2] = { 300, 5 }, n, j;
	int i;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	rec = xmalloc(TG_MAX_RECORD);
	for (i = 0; i < 2; i++) {
		tg_random(p[i], sizes[i]);
		n = (size_t)tg_conn_make(&c, APP, p[i], sizes[i], 0, rec);
		if (n == (size_t)-1)
			goto out;
		for (j = 0; j < n; j++) {
			if (send_raw(&c, rec + j, 1) == -1)
				goto out;
			usleep(50);
		}
		if (TG_EXPECT_RECORD(c.rx, APP, p[i], sizes[i]) == -1)
			break;
	}
	/* A third record, checked not readable before its last byte. */
	n = (size_t)tg_conn_make(&c, APP, p[0], 100, 0, rec);
	if (n == (size_t)-1)
		goto out;
	for (j = 0; j + 1 < n; j++) {
		if (send_raw(&c, rec + j, 1) == -1)
			goto out;
		usleep(50);
	}
	pfd.fd = c.rx;
	pfd.events = POLLIN;
	pfd.revents = 0;
	CHECK_EQ(uktls_poll(&pfd, 1, 50), 0);
	if (send_raw(&c, rec + n - 1, 1) == 0)
		TG_EXPECT_RECORD(c.rx, APP, p[0], 100);
out:
	free(rec);
	tg_conn_close(&c);
}

/* ==== sequence numbers ============================================== */

/* From seqno start, nrec records; each must decrypt. */
static void
seq_run(const struct tg_suite *s, uint64_t start, int nrec)
{
	struct tg_conn c;
	uint8_t p[64];
	int i;

	if (tg_conn_open_seq(&c, s, start, 1) == -1)
		return;
	for (i = 0; i < nrec; i++) {
		tg_random(p, sizeof(p));
		if (tg_conn_send(&c, APP, p, sizeof(p), 0) == -1)
			break;
		if (TG_EXPECT_RECORD(c.rx, APP, p, sizeof(p)) == -1) {
			harness_fail(__FILE__, __LINE__, "seqno %#" PRIx64,
			    start + (uint64_t)i);
			break;
		}
	}
	tg_conn_close(&c);
}

/* 2^64 - 3, 2^64 - 2, 2^64 - 1: the last legal sequence numbers. */
static void
t_seq_near_max(void *arg)
{

	seq_run(arg, UINT64_MAX - 2, 3);
}

/* Carries across byte and word boundaries of the sequence number. */
static void
t_seq_boundaries(void *arg)
{
	static const uint64_t starts[] = { 0, 0xfe, 0xfffe, 0xfffffffeULL,
	    0x00fffffffffffffeULL, 0x7ffffffffffffffeULL,
	    0xfffffffefffffffeULL };
	size_t i;

	for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
		seq_run(arg, starts[i], 4);
}

/* ==== long streams ================================================== */

/* A random record size, biased to the small and the full. */
static size_t
stream_size(struct tg_rng *r)
{
	uint64_t u;

	u = tg_rng_below(r, 64);
	if (u == 0)
		return (0);
	if (u < 16)
		return (1 + tg_rng_below(r, 256));
	if (u < 48)
		return (1 + tg_rng_below(r, TG_MAX_PLAINTEXT));
	return (TG_MAX_PLAINTEXT);
}

struct stream {
	int rx;
	int tx;
	struct tlsgen g;  /* the writer's */
	struct tls_enable en; /* the receiver's, taken before writing */
	uint64_t seed;    /* sizes and payload, shared by writer and reader */
	size_t bytes;     /* payload bytes to send, at least */
	int poll_reader;  /* read with uktls_poll + MSG_DONTWAIT */
	/* The reader's state. */
	struct tg_rng rd_rng;
	struct tg_rng rd_rrng;
	size_t rd_got;
	size_t rd_target;
	int rd_init;
	/* Results. */
	size_t records;
	size_t rbytes;
	char werr[256];
	char rerr[256];
};

static void
stream_err(char *buf, const char *fmt, ...)
{
	va_list ap;

	if (buf[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(buf, 256, fmt, ap);
	va_end(ap);
}

/*
 * The writer: records of random sizes and random bytes from the seed,
 * gathered into a batch and written in random-size pieces that ignore the
 * record boundaries; then shutdown(SHUT_WR).
 */
static void *
stream_writer(void *arg)
{
	struct stream *st = arg;
	struct tg_rng rng, wrng;
	uint8_t *batch, *plain;
	size_t bsize = 256 * 1024, blen = 0, off, piece, size, sent = 0;
	ssize_t n;

	rng.s = st->seed;
	wrng.s = st->seed ^ 0x5555aaaa5555aaaaULL;
	batch = xmalloc(bsize);
	plain = xmalloc(TG_MAX_PLAINTEXT);
	for (;;) {
		if (sent < st->bytes) {
			size = stream_size(&rng);
			tg_rng_fill(&rng, plain, size);
			n = tlsgen_encrypt(&st->g, APP, plain, size,
			    tg_rng_below(&wrng, 4) == 0 ?
			    tg_rng_below(&wrng, 32) : 0, batch + blen,
			    bsize - blen);
			if (n == -1) {
				stream_err(st->werr, "tlsgen_encrypt failed");
				break;
			}
			blen += (size_t)n;
			sent += size;
		}
		if (blen > 0 && (sent >= st->bytes ||
		    bsize - blen < TG_MAX_RECORD)) {
			for (off = 0; off < blen; off += piece) {
				piece = 1 + tg_rng_below(&wrng, 65536);
				if (piece > blen - off)
					piece = blen - off;
				if (tg_write_all(st->tx, batch + off, piece) ==
				    -1) {
					stream_err(st->werr, "write: %s",
					    strerror(errno));
					goto out;
				}
			}
			blen = 0;
		}
		if (sent >= st->bytes && blen == 0)
			break;
	}
out:
	shutdown(st->tx, SHUT_WR);
	free(plain);
	free(batch);
	return (NULL);
}

/* One receive, waiting with uktls_poll when the reader polls. */
static ssize_t
stream_recv(struct stream *st, void *buf, size_t len, struct tg_rec *r)
{
	struct pollfd pfd;
	int pr;

	if (!st->poll_reader)
		return (tg_recv(st->rx, buf, len, 0, TG_CTL_DEFAULT, r));
	for (;;) {
		tg_recv(st->rx, buf, len, MSG_DONTWAIT, TG_CTL_DEFAULT, r);
		if (r->n != -1 || r->err != EAGAIN)
			return (r->n);
		pfd.fd = st->rx;
		pfd.events = POLLIN;
		pfd.revents = 0;
		pr = uktls_poll(&pfd, 1, TG_WAIT_MS);
		if (pr == 0) {
			r->err = ETIMEDOUT;
			return (-1);
		}
		if (pr == -1 && errno != EINTR) {
			r->err = errno;
			return (-1);
		}
	}
}

/*
 * The reader: the same sizes and bytes from the seed, read with random
 * buffer sizes; the control message comes with the first piece of each
 * record only, MSG_EOR with its last.  stream_reader_part() reads whole
 * records until rd_got reaches rd_target (st->bytes when 0) and may be
 * called again to go on; stream_expect_eof() checks the end of the stream.
 */
static void
stream_reader_part(struct stream *st)
{
	struct tg_rec r;
	uint8_t *exp, *buf;
	size_t bufmax = 20000, size, off, bs, want, target;
	ssize_t n;

	if (!st->rd_init) {
		st->rd_rng.s = st->seed;
		st->rd_rrng.s = st->seed ^ 0x1234567887654321ULL;
		st->rd_init = 1;
	}
	target = st->rd_target != 0 ? st->rd_target : st->bytes;
	exp = xmalloc(TG_MAX_PLAINTEXT);
	buf = xmalloc(bufmax);
	while (st->rd_got < target) {
		size = stream_size(&st->rd_rng);
		tg_rng_fill(&st->rd_rng, exp, size);
		off = 0;
		do {
			bs = tg_rng_below(&st->rd_rrng, 4) == 0 ?
			    1 + tg_rng_below(&st->rd_rrng, size + 1) : bufmax;
			n = stream_recv(st, buf, bs, &r);
			if (n == -1) {
				stream_err(st->rerr, "record %zu (%zu bytes) "
				    "at %zu: recvmsg errno %d (%s)",
				    st->records, size, off, r.err,
				    strerror(r.err));
				goto out;
			}
			want = size - off < bs ? size - off : bs;
			if ((size_t)n != want) {
				stream_err(st->rerr, "record %zu (%zu bytes) "
				    "at %zu: got %zd bytes, want %zu",
				    st->records, size, off, n, want);
				goto out;
			}
			if (off == 0 && (!r.cmsg_ok || r.ncmsg != 1 ||
			    r.tgr.tls_type != APP ||
			    ntohs(r.tgr.tls_length) != size)) {
				stream_err(st->rerr, "record %zu: control "
				    "message ok %d n %d type %u length %u, "
				    "want length %zu", st->records, r.cmsg_ok,
				    r.ncmsg, r.tgr.tls_type,
				    ntohs(r.tgr.tls_length), size);
				goto out;
			}
			if (off > 0 && r.ncmsg != 0) {
				stream_err(st->rerr, "record %zu at %zu: "
				    "control message on a continuation",
				    st->records, off);
				goto out;
			}
			if (((r.flags & MSG_EOR) != 0) !=
			    (off + (size_t)n == size)) {
				stream_err(st->rerr, "record %zu at %zu+%zd of "
				    "%zu: MSG_EOR %s", st->records, off, n,
				    size, (r.flags & MSG_EOR) ? "set" :
				    "missing");
				goto out;
			}
			if (memcmp(buf, exp + off, (size_t)n) != 0) {
				stream_err(st->rerr, "record %zu: payload "
				    "differs in bytes %zu..%zu", st->records,
				    off, off + (size_t)n);
				goto out;
			}
			off += (size_t)n;
			st->rbytes += (size_t)n;
		} while (off < size);
		st->rd_got += size;
		st->records++;
	}
out:
	free(buf);
	free(exp);
}

static void
stream_expect_eof(struct stream *st)
{
	struct tg_rec r;
	uint8_t buf[64];
	ssize_t n;

	n = stream_recv(st, buf, sizeof(buf), &r);
	if (n != 0 || r.ncmsg != 0)
		stream_err(st->rerr, "after %zu records: want end of stream, "
		    "got %zd errno %d, %d control messages", st->records, n,
		    r.err, r.ncmsg);
}

static void *
stream_reader(void *arg)
{
	struct stream *st = arg;

	stream_reader_part(st);
	if (st->rerr[0] == '\0')
		stream_expect_eof(st);
	return (NULL);
}

static int
stream_enable(struct stream *st)
{

	if (uktls_setsockopt(st->rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &st->en,
	    sizeof(st->en)) == -1) {
		harness_fail(__FILE__, __LINE__, "TCP_RXTLS_ENABLE: %s",
		    strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Open a stream on a new connection with suite s, RX enabled when enable
 * is set (else later with stream_enable()); 0 or -1.
 */
static int
stream_open_en(struct stream *st, const struct tg_suite *s, size_t bytes,
    int enable)
{

	memset(st, 0, sizeof(*st));
	st->bytes = bytes;
	st->seed = tg_random64();
	if (tg_tcp_pair(&st->rx, &st->tx) == -1) {
		harness_fail(__FILE__, __LINE__, "tcp pair: %s",
		    strerror(errno));
		return (-1);
	}
	if (tlsgen_init(&st->g, s, tg_random64() >> 1) == -1) {
		harness_fail(__FILE__, __LINE__, "tlsgen_init");
		close(st->rx);
		close(st->tx);
		return (-1);
	}
	tlsgen_enable(&st->g, &st->en);
	if (enable && stream_enable(st) == -1) {
		tlsgen_free(&st->g);
		close(st->rx);
		close(st->tx);
		return (-1);
	}
	return (0);
}

static int
stream_open(struct stream *st, const struct tg_suite *s, size_t bytes)
{

	return (stream_open_en(st, s, bytes, 1));
}

static void
stream_close(struct stream *st)
{

	uktls_close(st->rx);
	close(st->tx);
	tlsgen_free(&st->g);
}

/* A long stream (16 MiB of payload) checked byte for byte. */
static void
t_big_stream(void *arg)
{
	const struct tg_suite *s = arg;
	struct stream st;
	pthread_t w;
	double t0;

	if (stream_open(&st, s, (16u << 20) / TG_SCALE_DIV) == -1)
		return;
	t0 = tg_now();
	if (pthread_create(&w, NULL, stream_writer, &st) != 0) {
		harness_fail(__FILE__, __LINE__, "pthread_create");
		stream_close(&st);
		return;
	}
	stream_reader(&st);
	if (st.rerr[0] != '\0') {
		/* Unblock the writer. */
		shutdown(st.tx, SHUT_WR);
	}
	pthread_join(w, NULL);
	if (st.werr[0] != '\0')
		harness_fail(__FILE__, __LINE__, "writer (seed %#" PRIx64
		    "): %s", st.seed, st.werr);
	if (st.rerr[0] != '\0')
		harness_fail(__FILE__, __LINE__, "reader (seed %#" PRIx64
		    "): %s", st.seed, st.rerr);
	else
		printf("     %zu records, %.1f MiB in %.2f s\n", st.records,
		    (double)st.rbytes / (1 << 20), tg_now() - t0);
	stream_close(&st);
}

/*
 * Backpressure: the writer runs ahead while the reader sleeps, so that the
 * engine must stop reading the socket at its high-water mark and resume
 * when the reader catches up; nothing may be lost or reordered.
 */
static void
t_backpressure(void *arg)
{
	const struct tg_suite *s = arg;
	struct stream st;
	pthread_t w;
	int i;

	if (stream_open(&st, s, (8u << 20) / TG_SCALE_DIV) == -1)
		return;
	if (pthread_create(&w, NULL, stream_writer, &st) != 0) {
		harness_fail(__FILE__, __LINE__, "pthread_create");
		stream_close(&st);
		return;
	}
	/* Pauses long enough for the buffers to fill, three times over. */
	for (i = 0; i < 3; i++) {
		tg_sleep_ms(100);
		st.rd_target = (size_t)(i + 1) * ((8u << 20) / TG_SCALE_DIV) /
		    4;
		stream_reader_part(&st);
		if (st.rerr[0] != '\0')
			break;
	}
	st.rd_target = 0;
	if (st.rerr[0] == '\0')
		stream_reader_part(&st);
	if (st.rerr[0] == '\0')
		stream_expect_eof(&st);
	if (st.rerr[0] != '\0')
		shutdown(st.tx, SHUT_WR);
	pthread_join(w, NULL);
	if (st.werr[0] != '\0')
		harness_fail(__FILE__, __LINE__, "writer (seed %#" PRIx64
		    "): %s", st.seed, st.werr);
	if (st.rerr[0] != '\0')
		harness_fail(__FILE__, __LINE__, "reader (seed %#" PRIx64
		    "): %s", st.seed, st.rerr);
	stream_close(&st);
}

/*
 * Megabytes of records written before the enable, more than the kernel and
 * the engine buffer: the writer blocks until uktls reads; all must arrive.
 */
static void
t_prequeued_large(void *arg)
{
	const struct tg_suite *s = arg;
	struct stream st;
	pthread_t w;

	if (stream_open_en(&st, s, (4u << 20) / TG_SCALE_DIV, 0) == -1)
		return;
	if (pthread_create(&w, NULL, stream_writer, &st) != 0) {
		harness_fail(__FILE__, __LINE__, "pthread_create");
		tlsgen_free(&st.g);
		close(st.rx);
		close(st.tx);
		return;
	}
	tg_sleep_ms(100);
	if (stream_enable(&st) == -1) {
		/* Let the writer finish into a plain socket. */
		shutdown(st.tx, SHUT_WR);
		pthread_join(w, NULL);
		tlsgen_free(&st.g);
		close(st.rx);
		close(st.tx);
		return;
	}
	stream_reader(&st);
	if (st.rerr[0] != '\0')
		shutdown(st.tx, SHUT_WR);
	pthread_join(w, NULL);
	if (st.werr[0] != '\0')
		harness_fail(__FILE__, __LINE__, "writer (seed %#" PRIx64
		    "): %s", st.seed, st.werr);
	if (st.rerr[0] != '\0')
		harness_fail(__FILE__, __LINE__, "reader (seed %#" PRIx64
		    "): %s", st.seed, st.rerr);
	stream_close(&st);
}

/* Records for the shared-reader test: index i has a size and bytes of its own. */
static size_t
shared_size(uint64_t i)
{

	return (8 + (size_t)((i * 7919) % 3000));
}

static void
shared_fill(uint64_t i, uint8_t *buf)
{
	struct tg_rng r;

	memcpy(buf, &i, 8);
	r.s = i * 0x9e3779b97f4a7c15ULL + 1;
	tg_rng_fill(&r, buf + 8, shared_size(i) - 8);
}

struct shared_reader {
	int fd;
	uint64_t *got; /* indexes, in the order read */
	size_t ngot;
	size_t cap;
	char err[256];
};

static void *
shared_reader_main(void *arg)
{
	struct shared_reader *sr = arg;
	struct tg_rec r;
	uint8_t *buf, *exp;
	uint64_t idx;

	buf = xmalloc(20000);
	exp = xmalloc(4096);
	for (;;) {
		tg_recv(sr->fd, buf, 20000, 0, TG_CTL_DEFAULT, &r);
		if (r.n == 0 && r.ncmsg == 0)
			break;
		if (r.n < 8 || !r.cmsg_ok || (r.flags & MSG_EOR) == 0 ||
		    ntohs(r.tgr.tls_length) != (size_t)r.n) {
			stream_err(sr->err, "read %zd errno %d cmsg %d flags "
			    "%#x after %zu records", r.n, r.err, r.cmsg_ok,
			    r.flags, sr->ngot);
			break;
		}
		memcpy(&idx, buf, 8);
		if (idx >= sr->cap || shared_size(idx) != (size_t)r.n) {
			stream_err(sr->err, "record index %" PRIu64 " with %zd "
			    "bytes", idx, r.n);
			break;
		}
		shared_fill(idx, exp);
		if (memcmp(buf, exp, (size_t)r.n) != 0) {
			stream_err(sr->err, "record %" PRIu64 ": payload "
			    "differs", idx);
			break;
		}
		if (sr->ngot > 0 && sr->got[sr->ngot - 1] >= idx) {
			stream_err(sr->err, "record %" PRIu64 " read after "
			    "%" PRIu64, idx, sr->got[sr->ngot - 1]);
			break;
		}
		sr->got[sr->ngot++] = idx;
	}
	free(exp);
	free(buf);
	return (NULL);
}

/*
 * Four threads read one socket at once: every record reaches exactly one
 * of them, whole, and each sees its records in stream order.
 */
static void
t_shared_readers(void *arg)
{
	enum { NREADERS = 4 };
	const struct tg_suite *s = arg;
	struct shared_reader sr[NREADERS];
	struct tg_delayed_write dw;
	struct tg_conn c;
	pthread_t t[NREADERS];
	uint8_t *wire, *seen, *plain;
	size_t nrec = 4000 / TG_SCALE_DIV, wlen = 0, i, total = 0;
	ssize_t n;
	int k, started = 0;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = xmalloc(nrec * (3008 + 64));
	plain = xmalloc(4096);
	seen = calloc(nrec, 1);
	REQUIRE(seen != NULL);
	for (i = 0; i < nrec; i++) {
		shared_fill(i, plain);
		n = tg_conn_make(&c, APP, plain, shared_size(i), 0, wire + wlen);
		if (n == -1)
			goto out;
		wlen += (size_t)n;
	}
	memset(sr, 0, sizeof(sr));
	for (k = 0; k < NREADERS; k++) {
		sr[k].fd = c.rx;
		sr[k].cap = nrec;
		sr[k].got = calloc(nrec, sizeof(uint64_t));
		if (sr[k].got == NULL)
			abort();
	}
	for (k = 0; k < NREADERS; k++) {
		if (pthread_create(&t[k], NULL, shared_reader_main, &sr[k]) != 0)
			break;
		started++;
	}
	if (tg_delayed_write_start(&dw, c.tx, wire, wlen, 0) == 0) {
		CHECK_EQ(tg_delayed_write_join(&dw), wlen);
	}
	shutdown(c.tx, SHUT_WR);
	for (k = 0; k < started; k++)
		pthread_join(t[k], NULL);
	for (k = 0; k < started; k++) {
		if (sr[k].err[0] != '\0')
			harness_fail(__FILE__, __LINE__, "reader %d: %s", k,
			    sr[k].err);
		for (i = 0; i < sr[k].ngot; i++) {
			if (seen[sr[k].got[i]]++ != 0)
				harness_fail(__FILE__, __LINE__, "record %"
				    PRIu64 " read twice", sr[k].got[i]);
		}
		total += sr[k].ngot;
	}
	CHECK_EQ(total, nrec);
	for (k = 0; k < started; k++)
		free(sr[k].got);
out:
	free(seen);
	free(plain);
	free(wire);
	tg_conn_close(&c);
}

/* ==== concurrency =================================================== */

static void
raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * 256 connections at once, each with a random suite, key and sequence
 * number; a writer and a reader thread per connection, about 1 MiB each,
 * every byte checked.  Half the readers block in uktls_recvmsg(), half
 * wait in uktls_poll() and read with MSG_DONTWAIT.
 */
TEST(concurrent_256)
{
	enum { NCONN = 256 };
	struct stream *st;
	pthread_t *wt, *rt;
	pthread_attr_t attr;
	struct tg_rng rng;
	size_t total = 0, bytes;
	double t0;
	int i, nopen = 0, failed = 0;

	raise_nofile(4096);
	bytes = (1u << 20) / TG_SCALE_DIV;
	st = calloc(NCONN, sizeof(*st));
	wt = calloc(NCONN, sizeof(*wt));
	rt = calloc(NCONN, sizeof(*rt));
	REQUIRE(st != NULL && wt != NULL && rt != NULL);
	rng.s = tg_random64();
	for (i = 0; i < NCONN; i++) {
		if (stream_open(&st[i], &tg_suites[tg_rng_below(&rng,
		    TG_NSUITES)], bytes) == -1)
			break;
		st[i].poll_reader = i & 1;
		nopen++;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	t0 = tg_now();
	for (i = 0; i < nopen; i++) {
		if (pthread_create(&rt[i], &attr, stream_reader, &st[i]) != 0 ||
		    pthread_create(&wt[i], &attr, stream_writer, &st[i]) != 0)
			abort();
	}
	tg_watchdog(TG_WATCHDOG_S * 2);
	for (i = 0; i < nopen; i++) {
		pthread_join(rt[i], NULL);
		if (st[i].rerr[0] != '\0')
			shutdown(st[i].tx, SHUT_WR);
		pthread_join(wt[i], NULL);
		total += st[i].rbytes;
		if ((st[i].werr[0] != '\0' || st[i].rerr[0] != '\0') &&
		    failed++ < 5)
			harness_fail(__FILE__, __LINE__, "connection %d (%s, "
			    "seed %#" PRIx64 "): writer: %s; reader: %s", i,
			    st[i].g.suite->name, st[i].seed,
			    st[i].werr[0] ? st[i].werr : "ok",
			    st[i].rerr[0] ? st[i].rerr : "ok");
	}
	if (failed > 0)
		harness_fail(__FILE__, __LINE__, "%d of %d connections failed",
		    failed, nopen);
	CHECK_EQ(nopen, NCONN);
	printf("     %d connections, %.1f MiB in %.2f s\n", nopen,
	    (double)total / (1 << 20), tg_now() - t0);
	for (i = 0; i < nopen; i++)
		stream_close(&st[i]);
	pthread_attr_destroy(&attr);
	free(rt);
	free(wt);
	free(st);
}

/*
 * Close while records stream in: readers read a few records, then
 * uktls_close() while the writer keeps sending and workers may be
 * decrypting.  Nothing may crash or hang, and every session must go away.
 */
TEST(close_while_streaming)
{
	enum { NCONN = 32 };
	struct uktls_stats s0, s1;
	struct stream *st;
	struct tg_rng rng;
	struct tg_rec r;
	pthread_t wt[NCONN];
	uint8_t *buf;
	double deadline;
	int i, k, nrec, nopen = 0;

	buf = xmalloc(20000);
	st = calloc(NCONN, sizeof(*st));
	REQUIRE(st != NULL);
	REQUIRE(uktls_get_stats(&s0) == 0);
	rng.s = tg_random64();
	for (i = 0; i < NCONN; i++) {
		if (stream_open(&st[i], &tg_suites[i % TG_NSUITES],
		    (size_t)(256u << 20)) == -1)
			break;
		nopen++;
	}
	for (i = 0; i < nopen; i++)
		if (pthread_create(&wt[i], NULL, stream_writer, &st[i]) != 0)
			abort();
	for (i = 0; i < nopen; i++) {
		nrec = (int)tg_rng_below(&rng, 20);
		for (k = 0; k < nrec; k++) {
			tg_recv(st[i].rx, buf, 20000, 0, TG_CTL_DEFAULT, &r);
			if (r.n < 0 || !r.cmsg_ok) {
				harness_fail(__FILE__, __LINE__, "connection "
				    "%d record %d: %zd errno %d", i, k, r.n,
				    r.err);
				break;
			}
		}
		tg_sleep_ms((unsigned int)tg_rng_below(&rng, 3));
		CHECK_EQ(uktls_close(st[i].rx), 0);
	}
	for (i = 0; i < nopen; i++) {
		/* The writer ends with EPIPE or ECONNRESET; unblock it anyway. */
		shutdown(st[i].tx, SHUT_RDWR);
		pthread_join(wt[i], NULL);
		close(st[i].tx);
		tlsgen_free(&st[i].g);
	}
	CHECK_EQ(nopen, NCONN);
	/* Sessions end once the workers let go of them. */
	deadline = tg_now() + 5.0 * TG_TIME_MUL;
	do {
		REQUIRE(uktls_get_stats(&s1) == 0);
		if (s1.sockets_active == s0.sockets_active)
			break;
		tg_sleep_ms(10);
	} while (tg_now() < deadline);
	CHECK_EQ(s1.sockets_active, s0.sockets_active);
	printf("     %" PRIu64 " records cancelled while decrypting\n",
	    s1.records_cancelled - s0.records_cancelled);
	free(st);
	free(buf);
}

int
main(int argc, char **argv)
{

	tg_register_suites("split_every_byte", t_split_every_byte, 0,
	    TG_NSUITES);
	tg_register_suites("split_random_pairs", t_split_random_pairs, 0,
	    TG_NSUITES);
	tg_register_suites("many_records_one_write", t_many_records_one_write,
	    0, TG_NSUITES);
	tg_register_suites("one_byte_writes", t_one_byte_writes, 0,
	    TG_NSUITES);
	tg_register_suites("seq_near_max", t_seq_near_max, 0, TG_NSUITES);
	tg_register_suites("seq_boundaries", t_seq_boundaries, 0, TG_NSUITES);
	tg_register_suites("big_stream", t_big_stream, 0, TG_NSUITES);
	tg_register_suites("backpressure", t_backpressure, 0, TG_NSUITES);
	tg_register_suites("prequeued_large", t_prequeued_large, 0,
	    TG_NSUITES);
	tg_register_suites("shared_readers", t_shared_readers, 0, TG_NSUITES);
	return (harness_main(argc, argv));
}
