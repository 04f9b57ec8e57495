/*
 * The engine's receive path without sockets: TLS 1.3 AES-128-GCM records
 * of 16 KiB appended to a socket buffer's TLS chain, decrypted by a worker
 * and read back as records, through the engine's internal calls, against
 * the cipher alone.
 *
 * The stream is sealed once (--records records, 64 MiB by default) and, for
 * each engine turn, read into clusters as the input threads read it: in
 * reads of 128 KiB, laid out and handed over by the steps input_fill_locked
 * takes (stage_read).  The copy into the clusters
 * stands for recvmsg and is not timed; everything around it (the pools,
 * the layout, the tracking of record boundaries, the mbufs) is.  The reads
 * are made in batches, each just before the engine takes it, because a
 * socket read leaves the bytes in the cache for the decryption that
 * follows; the cipher alone gets its bytes the same way.  A batch is
 * --batch times 16 KiB of the stream, 64 by default (1 MiB): this thread
 * stages the batches between its turns as reader, so that the worker idles
 * meanwhile, and smaller batches would charge the worker paths more of
 * that idling than an input thread reading beside them ever costs.  The
 * timed part is what the engine adds on the way from there to the reader:
 *
 *   cipher          the cipher library alone over each contiguous record
 *                   (raw EVP or ipsec-mb's direct API), one thread
 *   backend         the backend's decrypt over each record's mbuf chain,
 *                   one mbuf as the input layout leaves it, one thread
 *   engine          this thread appends clusters to the TLS chain, 8 at a
 *                   time, pausing when the buffer is full and resuming
 *                   below its low-water mark (the input thread's part), and
 *                   takes records out one per lock hold, copying each to a
 *                   buffer (uktls_read's part); a pinned worker on another
 *                   CPU detaches, decrypts and publishes them
 *   engine-nocopy   the same, the reader dropping records uncopied
 *   engine-inline   the reader-driven path of soreceive: a reader that
 *                   has nothing to read appends the next 4 clusters itself
 *                   (as it reads its socket when it has caught up),
 *                   counting as waiting, so that the whole records are
 *                   left to it and it decrypts them in this thread
 *                   (ktls_decrypt_locked): no hand-off at all
 *   engine-inline-nocopy
 *                   the same, the reader dropping records uncopied: the
 *                   engine path proper (append, decrypt, readable record),
 *                   as a waiting reader of uktls_recv_zc runs it
 *
 * for each backend (chosen through UKTLS_CRYPTO).  Every variant takes its
 * turn in each round (A B C D A B C D ...); medians over --rounds rounds.
 * Reported: wall-clock throughput, CPU time of all threads of the process
 * per record (workers included), and the ratio of each to the cipher's.
 *
 *   build/bench/bench_engine [--rounds N] [--records N] [--batch N] [--quick]
 *                            [--json FILE] [--only VARIANT,...] [--backend NAME]
 *
 * --only (a comma-separated list of variants) and --backend restrict the
 * run, for profiling (perf record, valgrind --tool=callgrind) and for A/B
 * runs of two builds (--only cipher,engine-inline-nocopy).
 *
 * The ratios to the cipher are taken round by round, each variant against
 * the cipher's turn of the same round, and the median of those is shown
 * with its range: this machine's speed swings for seconds at a time, a round
 * takes a fraction of a second, and a ratio of medians taken over different
 * rounds would mix fast and slow ones.
 *
 * The process's CPU clock is read only at the start and end of a turn: on
 * a virtual machine each read is a system call of a microsecond or more,
 * which, read around every batch, would weigh on small batches.  The
 * copies that stand for socket reads are timed with the (vDSO) monotonic
 * clock and their time is taken off both the wall and the CPU time: the
 * thread that makes them is busy throughout.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "crypto.h"
#include "ktls.h"
#include "mbuf.h"
#include "sockbuf.h"
#include "socket.h"
#include "tls_record.h"
#include "uktls.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))
#define CONTENT 16384u
#define MAXROUNDS 64
/* Clusters a reader and an input thread read at once (input.c's READER_IOV
 * and INPUT_IOV). */
#define READ_CHUNKS 4
#define INPUT_CHUNKS 8

enum variant { V_CIPHER, V_BACKEND, V_ENGINE, V_ENGINE_NOCOPY, V_ENGINE_INLINE,
	V_ENGINE_INLINE_NOCOPY, NVARIANTS };
static const char *const vnames[NVARIANTS] = { "cipher", "backend", "engine",
	"engine-nocopy", "engine-inline", "engine-inline-nocopy" };

/* Does variant v copy each record out, and does the reader decrypt? */
#define V_COPIES(v) ((v) == V_ENGINE || (v) == V_ENGINE_INLINE)
#define V_INLINE(v) ((v) == V_ENGINE_INLINE || (v) == V_ENGINE_INLINE_NOCOPY)

struct backend {
	const char *name; /* for UKTLS_CRYPTO */
	const char *raw;  /* for bl_raw_new */
};

static const struct backend backends[] = {
#ifdef UKTLS_HAVE_IPSECMB
	{ "ipsecmb", "imb" },
#endif
	{ "openssl", "evp" },
};

static uint8_t key[16], iv[12];
static struct tls_enable en;
static struct tls_session_params params;
static uint8_t *wire, *work;     /* the sealed stream, a scratch copy */
static size_t wire_len, nrec, reclen;
/* A batch: clusters staged at once, and the records they hold. */
static size_t batch_chunks = 64, batch_recs;
static uint8_t *outbuf;          /* the reader's buffer */

/* One measurement: wall and CPU nanoseconds for nrec records. */
struct sample {
	uint64_t wall_ns, cpu_ns;
};

static void
die(const char *what, int error)
{
	fprintf(stderr, "bench_engine: %s: %s\n", what, strerror(error));
	exit(1);
}

/* Turns whose copies took as long as the whole turn: a busy machine. */
static unsigned int busy_turns;

/*
 * Close a turn begun at wall time t0 and process CPU time c0, less the
 * staged nanoseconds spent on the copies that stand for socket reads.
 * Those are wall time: taken off the CPU time they assume the copying
 * thread ran throughout, which holds on an otherwise idle machine.
 */
static void
sample_end(struct sample *s, uint64_t t0, uint64_t c0, uint64_t staged)
{
	uint64_t wall = bl_now_ns() - t0, cpu = bl_cpu_ns() - c0;

	if (staged >= cpu || staged >= wall)
		busy_turns++;
	s->wall_ns = wall > staged ? wall - staged : 1;
	s->cpu_ns = cpu > staged ? cpu - staged : 1;
}

/*
 * The input thread's part of staging: reads of up to STAGE_READ bytes into
 * the clusters the thread holds (sg_slot), taken in the same steps as
 * input_fill_locked takes them around its recvmsg (input_continue_first,
 * input_read_plan, input_track_bytes, input_wrap_range).  All of that is
 * timed; the copy into the clusters that stands for recvmsg is not (its
 * time is added up in sg_staged).
 */
#define STAGE_IOV 8
#define STAGE_READ (STAGE_IOV * 16384u)

struct stager {
	struct input_track sg_tr;
	struct mbuf *sg_slot[STAGE_IOV];
	size_t sg_off;                  /* stream bytes staged so far */
	struct mbuf *sg_last;           /* the last range handed over */
	uint64_t sg_staged;             /* ns spent standing for recvmsg */
};

/*
 * One read of up to len bytes of the stream; the ranges go to
 * chunks[*n...].  Returns the bytes read (the layout may stop at a record's
 * end short of len).
 */
static size_t
stage_read(struct stager *sg, size_t len, struct mbuf **chunks, size_t *n)
{
	struct iovec iov[STAGE_IOV];
	unsigned int ci[STAGE_IOV], i, nio;
	struct mbuf *m, *last;
	size_t pos, off0 = sg->sg_off;
	uint64_t st;
	int cont = 0;

	/* As the last range would still be the TLS chain's tail. */
	if (sg->sg_tr.tr_left > 0 || sg->sg_tr.tr_hdrlen > 0)
		cont = input_continue_first(sg->sg_slot, STAGE_IOV,
		    sg->sg_last);
	nio = input_read_plan(&sg->sg_tr, sg->sg_slot, STAGE_IOV,
	    (uint32_t)len, &cont, iov, ci);
	if (nio == 0)
		die("stage: pools", ENOBUFS);

	/* recvmsg's part. */
	st = bl_now_ns();
	for (i = 0, pos = sg->sg_off; i < nio; pos += iov[i].iov_len, i++)
		memcpy(iov[i].iov_base, wire + pos, iov[i].iov_len);
	sg->sg_staged += bl_now_ns() - st;

	for (i = 0; i < nio; i++) {
		input_track_bytes(&sg->sg_tr, iov[i].iov_base,
		    iov[i].iov_len);
		m = input_wrap_range(&sg->sg_slot[ci[i]], iov[i].iov_base,
		    (uint32_t)iov[i].iov_len, i + 1 < nio,
		    i == 0 && ci[i] == 0 && cont);
		for (last = m; last->m_next != NULL; last = last->m_next)
			;
		sg->sg_off += iov[i].iov_len;
		sg->sg_last = last;
		chunks[(*n)++] = m;
	}
	return sg->sg_off - off0;
}

static void
stage_done(struct stager *sg)
{
	unsigned int i;

	for (i = 0; i < STAGE_IOV; i++)
		if (sg->sg_slot[i] != NULL)
			m_free(sg->sg_slot[i]);
}

/* The cipher alone, or the backend over chains, on one thread. */
static void
run_direct(const struct backend *b, int chains, struct sample *s)
{
	const struct ktls_crypto_backend *be;
	struct tls_record_layer hdr;
	struct mbuf m[3];
	struct bl_raw *raw = NULL;
	void *cookie = NULL;
	uint64_t t0, c0, st, staged = 0;
	size_t i, k, pos, cut, seglen;
	int n, trailer_len, error;

	if (chains) {
		setenv("UKTLS_CRYPTO", b->name, 1);
		be = ktls_crypto_select(&params);
		if (be == NULL || strcmp(be->name, b->name) != 0)
			die(b->name, ENOTSUP);
		error = be->setup(&params, &cookie);
		if (error != 0)
			die("backend setup", error);
	} else {
		be = NULL;
		raw = bl_raw_new(b->raw, &params);
		if (raw == NULL)
			die(b->raw, ENOTSUP);
	}
	t0 = bl_now_ns();
	c0 = bl_cpu_ns();
	for (i = 0, pos = 0; i < nrec; i++, pos += reclen) {
		if (i % batch_recs == 0) {
			/* Stage the next batch where the cipher finds it. */
			st = bl_now_ns();
			k = nrec - i < batch_recs ? nrec - i : batch_recs;
			memcpy(work + pos, wire + pos, k * reclen);
			staged += bl_now_ns() - st;
		}
		if (!chains) {
			error = bl_raw_decrypt(raw, work + pos,
			    (uint32_t)reclen, i);
		} else {
			/*
			 * Each record in a cluster of its own, as the input
			 * layout leaves records it can predict (cut where
			 * the clusters end only if longer than one).
			 */
			memset(m, 0, sizeof(m));
			n = 0;
			for (cut = pos; cut < pos + reclen; cut += seglen) {
				seglen = MJUMTLSBYTES;
				if (seglen > pos + reclen - cut)
					seglen = pos + reclen - cut;
				m[n].m_data = (char *)work + cut;
				m[n].m_len = (uint32_t)seglen;
				if (n > 0)
					m[n - 1].m_next = &m[n];
				n++;
			}
			memcpy(&hdr, work + pos, sizeof(hdr));
			error = be->decrypt(cookie, &params, &hdr, m, i,
			    &trailer_len);
		}
		if (error != 0)
			die("decrypt", error);
	}
	sample_end(s, t0, c0, staged);
	if (be != NULL)
		be->teardown(cookie);
	bl_raw_free(raw);
}

/*
 * The engine: a socket of our own (no descriptor, no input thread) on work
 * queue wq, fed from clusters filled beforehand.
 */
static void
run_engine(const struct backend *b, int copyout, int inl, unsigned int wq,
    struct sample *s)
{
	struct ktls_session *tls;
	struct mbuf **chunks, *rec, *data, *m;
	struct socket *so;
	struct sockbuf *sb;
	struct stager sg;
	size_t nchunks, next, nread, i, off, len, left, batch_end, whole;
	uint64_t t0, c0, bytes = 0;
	int appended, paused = 0, error;

	setenv("UKTLS_CRYPTO", b->name, 1);
	error = ktls_session_create(&en, &tls);
	if (error != 0)
		die("ktls_session_create", error);
	if (strcmp(tls->be->name, b->name) != 0)
		die(b->name, ENOTSUP);
	so = calloc(1, sizeof(*so));
	if (so == NULL)
		die("calloc", ENOMEM);
	atomic_init(&so->so_count, 1);
	so->so_fd = -1;
	so->so_evfd = -1;
	so->so_wq = wq;
	so->so_input_state = SOI_DONE;
	sbinit(&so->so_rcv, ktls_config.rcvbuf);
	sb = &so->so_rcv;
	sb->sb_flags = SB_TLS_RX;
	sb->sb_tls_info = tls;
	sb->sb_tls_seqno = 0;
	sb->sb_tls_pubseq = 0;

	/* The socket reads: the ranges the input thread hands over. */
	nchunks = 2 * nrec + wire_len / STAGE_READ + 16;
	chunks = calloc(nchunks, sizeof(*chunks));
	if (chunks == NULL)
		die("calloc", ENOMEM);
	memset(&sg, 0, sizeof(sg));

	next = nread = 0;
	SOCKBUF_LOCK(sb);
	batch_end = whole = 0;
	t0 = bl_now_ns();
	c0 = bl_cpu_ns();
	while (nread < nrec) {
		if (nread == whole) {
			/*
			 * Stage the next batch.  The clusters are taken as
			 * the input thread takes them, just before its read,
			 * and that is timed; the read itself is not.
			 */
			left = wire_len - sg.sg_off;
			if (left > batch_chunks * 16384)
				left = batch_chunks * 16384;
			while (left > 0) {
				len = left < STAGE_READ ? left : STAGE_READ;
				left -= stage_read(&sg, len, chunks,
				    &batch_end);
			}
			/* The records that end inside what is staged. */
			whole = sg.sg_off / reclen;
		}
		if (inl) {
			/*
			 * The reader-driven path of soreceive: a reader with
			 * nothing to read reads the socket itself (up to
			 * READ_CHUNKS clusters), counting as waiting, and
			 * decrypts the whole records it finds in this thread.
			 */
			if (sb->sb_mb == NULL) {
				sb->sb_rwaiters++;
				for (i = 0; i < READ_CHUNKS &&
				    next < batch_end &&
				    sbspace_ktls_rx(sb) > 0; i++) {
					sbappend_ktls_rx(sb, chunks[next]);
					chunks[next++] = NULL;
				}
				ktls_check_rx(so);
				sb->sb_rwaiters--;
				if ((sb->sb_flags & SB_TLS_RX_INLINE) != 0) {
					sb->sb_flags &=
					    (uint16_t)~SB_TLS_RX_INLINE;
					ktls_decrypt_locked(so);
				}
				if (sb->sb_mb == NULL)
					die("engine-inline: no record", EIO);
			}
			goto read_one;
		}
		/*
		 * The input thread's part, as input_fill_locked and
		 * so_input_resume_locked do it: each read takes up to
		 * INPUT_CHUNKS clusters; a full buffer pauses the input,
		 * which resumes once the reader has drained it below the
		 * low-water mark.
		 */
		appended = 0;
		if (paused && sbresume_ktls_rx(sb))
			paused = 0;
		for (i = 0; !paused && i < INPUT_CHUNKS && next < batch_end;
		    i++) {
			sbappend_ktls_rx(sb, chunks[next]);
			chunks[next++] = NULL;
			appended = 1;
			if (sbspace_ktls_rx(sb) == 0)
				paused = 1;
		}
		if (appended)
			ktls_check_rx(so);
		if ((so->so_state & SS_RCVDEAD) != 0 || so->so_error != 0)
			die("engine", so->so_rcverror != 0 ? so->so_rcverror :
			    so->so_error);
		if (sb->sb_mb == NULL) {
			/* As soreceive waits: decrypting the record after the
			 * one a worker is on, spinning while there is none,
			 * sleeping otherwise. */
			if (ktls_rx_help_locked(so))
				continue;
			sb->sb_rwaiters++;
			sbwait_active(sb, NULL, (uint64_t)ktls_config.spin_ns);
			sb->sb_rwaiters--;
			continue;
		}
		/* The reader's part: one record per lock hold. */
read_one:
		rec = sb->sb_mb;
		data = rec->m_type == MT_CONTROL ? rec->m_next : rec;
		off = 0;
		for (m = data; m != NULL; m = m->m_next) {
			if (copyout)
				memcpy(outbuf + off, m->m_data, m->m_len);
			off += m->m_len;
		}
		bytes += off;
		sbdroprecord_locked(sb);
		so_input_resume_locked(so);
		nread++;
		SOCKBUF_UNLOCK(sb);
		SOCKBUF_LOCK(sb);
	}
	SOCKBUF_UNLOCK(sb);
	sample_end(s, t0, c0, sg.sg_staged);
	if (bytes != (uint64_t)nrec * CONTENT)
		die("engine: short read", EIO);

	SOCKBUF_LOCK(sb);
	so->so_state |= SS_CLOSING;
	sbflush_locked(sb);
	SOCKBUF_UNLOCK(sb);
	for (i = next; i < batch_end; i++)
		m_freem(chunks[i]);
	free(chunks);
	stage_done(&sg);
	/* The worker may still hold a reference; the last one frees. */
	sorele(so);
}

/* Is variant v of backend b selected by --only and --backend? */
static int
selected(const char *only, const char *only_backend, size_t b, int v)
{
	if (only_backend != NULL && !bl_arg_has(only_backend, backends[b].name))
		return 0;
	return only == NULL || bl_arg_has(only, vnames[v]);
}

static void
pin_self(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
}

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr, "usage: bench_engine "
	    "[--rounds N] [--records N] [--batch N] [--quick] [--json FILE] "
	    "[--only VARIANT,...] [--backend NAME]\n");
	exit(status);
}

int
main(int argc, char **argv)
{
	static double mbps[NITEMS(backends)][NVARIANTS][MAXROUNDS];
	static double cpurec[NITEMS(backends)][NVARIANTS][MAXROUNDS];
	struct bl_sealer *sealer;
	struct sample smp;
	cpu_set_t set;
	const char *json = NULL, *only = NULL, *only_backend = NULL;
	const char *bnames[NITEMS(backends)];
	uint8_t *content;
	size_t b, i, pos;
	int rounds = 15, r, k, v, error, first = -1, last = -1, c;
	unsigned int wq = 0;

	nrec = 4096;
	/* --quick sets defaults that options given with it override. */
	for (i = 1; i < (size_t)argc; i++)
		if (strcmp(argv[i], "--quick") == 0) {
			rounds = 5;
			nrec = 1024;
		}
	for (i = 1; i < (size_t)argc; i++) {
		const char *val = i + 1 < (size_t)argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--help") == 0)
			usage(0);
		else if (strcmp(argv[i], "--quick") == 0)
			continue;
		else if (val == NULL)
			usage(2);
		else if (strcmp(argv[i], "--json") == 0)
			json = val;
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (int)bl_arg_num("bench_engine", argv[i], val,
			    1, MAXROUNDS);
		else if (strcmp(argv[i], "--records") == 0)
			nrec = (size_t)bl_arg_num("bench_engine", argv[i], val,
			    16, 1L << 24);
		else if (strcmp(argv[i], "--only") == 0) {
			bl_arg_list("bench_engine", argv[i], val, vnames,
			    NVARIANTS);
			only = val;
		} else if (strcmp(argv[i], "--backend") == 0) {
			for (b = 0; b < NITEMS(backends); b++)
				bnames[b] = backends[b].name;
			bl_arg_list("bench_engine", argv[i], val, bnames,
			    NITEMS(backends));
			only_backend = val;
		} else if (strcmp(argv[i], "--batch") == 0)
			batch_chunks = (size_t)bl_arg_num("bench_engine",
			    argv[i], val, 4, 4096);
		else
			usage(2);
		i++;
	}

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 13 + 1);
	for (i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(i * 7 + 5);
	memset(&en, 0, sizeof(en));
	en.cipher_key = key;
	en.iv = iv;
	en.cipher_algorithm = CRYPTO_AES_NIST_GCM_16;
	en.cipher_key_len = 16;
	en.iv_len = 12;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = TLS_MINOR_VER_THREE;
	error = tls_params_from_enable(&en, &params);
	if (error != 0)
		die("tls_params_from_enable", error);

	reclen = bl_sealed_len(CRYPTO_AES_NIST_GCM_16, TLS_MINOR_VER_THREE,
	    CONTENT);
	wire_len = nrec * reclen;
	wire = malloc(wire_len);
	work = malloc(wire_len);
	outbuf = malloc(CONTENT + 256);
	content = malloc(CONTENT);
	sealer = bl_sealer_new(CRYPTO_AES_NIST_GCM_16, 16,
	    TLS_MINOR_VER_THREE, key, iv);
	if (wire == NULL || work == NULL || outbuf == NULL ||
	    content == NULL || sealer == NULL)
		die("setup", ENOMEM);
	for (i = 0; i < CONTENT; i++)
		content[i] = (uint8_t)(i * 29 + 11);
	for (i = 0, pos = 0; i < nrec; i++, pos += reclen)
		if (bl_seal(sealer, i, TLS_RLTYPE_APP, content, CONTENT,
		    wire + pos) != reclen)
			die("seal", EIO);
	bl_sealer_free(sealer);
	free(content);
	bl_prefault(work, wire_len);
	bl_prefault(outbuf, CONTENT + 256);

	/*
	 * This thread (the input thread's and the reader's part) on the last
	 * CPU we may use, the socket's worker on the first: with two CPUs or
	 * more they run side by side, as in the real path.
	 */
	error = ktls_engine_start();
	if (error != 0)
		die("ktls_engine_start", error);
	batch_recs = batch_chunks * 16384 / reclen;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set)) {
				if (first < 0)
					first = c;
				last = c;
			}
	if (last >= 0 && last != first)
		pin_self(last);
	wq = 0;

	printf("# engine path, TLS 1.3 AES-128-GCM, %zu records of 16 KiB per "
	    "turn, read in 128 KiB reads, batches of %zu KiB, median of %d "
	    "rounds [min..max]\n", nrec, batch_chunks * 16, rounds);
	printf("# %u workers (queue %u pinned to CPU %d), reader on CPU %d\n",
	    ktls_config.workers, wq, first, last);
	/* Warm up: pools, per-thread state, the backends' first use. */
	for (b = 0; b < NITEMS(backends); b++)
		for (v = 0; v < NVARIANTS; v++) {
			if (!selected(only, only_backend, b, v))
				continue;
			if (v >= V_ENGINE)
				run_engine(&backends[b], V_COPIES(v),
				    V_INLINE(v), wq, &smp);
			else
				run_direct(&backends[b], v == V_BACKEND, &smp);
		}
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < (int)(NITEMS(backends) * NVARIANTS); k++) {
			int kk = (k + r) % (int)(NITEMS(backends) * NVARIANTS);

			b = (size_t)kk / NVARIANTS;
			v = kk % NVARIANTS;
			if (!selected(only, only_backend, b, v))
				continue;
			if (v >= V_ENGINE)
				run_engine(&backends[b], V_COPIES(v),
				    V_INLINE(v), wq, &smp);
			else
				run_direct(&backends[b], v == V_BACKEND, &smp);
			mbps[b][v][r] = (double)nrec * CONTENT * 1e3 /
			    (double)smp.wall_ns;
			cpurec[b][v][r] = (double)smp.cpu_ns / (double)nrec;
		}
	}
	unsetenv("UKTLS_CRYPTO");

	for (b = 0; b < NITEMS(backends); b++) {
		for (v = 0; v < NVARIANTS; v++) {
			double m, lo, hi, cm, clo, chi;

			if (!selected(only, only_backend, b, v))
				continue;
			lo = bl_min(mbps[b][v], (size_t)rounds);
			hi = bl_max(mbps[b][v], (size_t)rounds);
			m = bl_median(mbps[b][v], (size_t)rounds);
			clo = bl_min(cpurec[b][v], (size_t)rounds);
			chi = bl_max(cpurec[b][v], (size_t)rounds);
			cm = bl_median(cpurec[b][v], (size_t)rounds);
			bl_result_add(backends[b].name, vnames[v],
			    "throughput", "MB/s", m, lo, hi,
			    (unsigned int)rounds);
			bl_result_add(backends[b].name, vnames[v],
			    "cpu_per_record", "ns", cm, clo, chi,
			    (unsigned int)rounds);
			bl_result_add(backends[b].name, vnames[v],
			    "cpu_efficiency", "MB/cpu-s", CONTENT * 1e3 / cm,
			    CONTENT * 1e3 / chi, CONTENT * 1e3 / clo,
			    (unsigned int)rounds);
			printf("%-8s %-20s %9.1f MB/s [%.1f..%.1f]  CPU %7.1f "
			    "ns/record [%.1f..%.1f] = %8.1f MB/CPU-s\n",
			    backends[b].name, vnames[v], m, lo, hi, cm, clo,
			    chi, CONTENT * 1e3 / cm);
		}
	}
	if (busy_turns > 0)
		printf("# warning: in %u turns the copies standing for socket "
		    "reads took longer than the turn itself: the machine was "
		    "busy, and these figures mean little\n", busy_turns);
	printf("\n# ratios to the cipher alone in the same round, median "
	    "[min..max] (target: engine >= 0.8)\n%-8s %-20s %24s %24s\n",
	    "backend", "variant", "wall", "CPU-efficiency");
	for (b = 0; b < NITEMS(backends); b++) {
		if (!selected(only, only_backend, b, V_CIPHER))
			continue;
		for (v = V_BACKEND; v < NVARIANTS; v++) {
			double w[MAXROUNDS], c2[MAXROUNDS];
			size_t n = (size_t)rounds;

			if (!selected(only, only_backend, b, v))
				continue;
			for (r = 0; r < rounds; r++) {
				w[r] = mbps[b][v][r] / mbps[b][V_CIPHER][r];
				c2[r] = cpurec[b][V_CIPHER][r] /
				    cpurec[b][v][r];
			}
			printf("%-8s %-20s %6.3f [%6.3f..%6.3f] %6.3f "
			    "[%6.3f..%6.3f]\n", backends[b].name, vnames[v],
			    bl_median(w, n), bl_min(w, n), bl_max(w, n),
			    bl_median(c2, n), bl_min(c2, n), bl_max(c2, n));
			bl_result_add_rounds(backends[b].name, vnames[v],
			    "ratio_wall_vs_cipher", "x", w, n);
			bl_result_add_rounds(backends[b].name, vnames[v],
			    "ratio_cpu_vs_cipher", "x", c2, n);
		}
	}
	bl_note("method", "%zu records of 16 KiB per turn, read in 128 KiB "
	    "reads laid out as the input threads lay them, staged in batches "
	    "of %zu KiB, median of %d interleaved rounds; CPU is "
	    "CLOCK_PROCESS_CPUTIME_ID (all threads)", nrec, batch_chunks * 16,
	    rounds);
	if (json != NULL) {
		error = bl_json_write(json, "bench_engine");
		if (error != 0)
			die(json, error);
	}
	bl_results_free();
	tls_params_wipe(&params);
	free(wire);
	free(work);
	free(outbuf);
	return 0;
}
