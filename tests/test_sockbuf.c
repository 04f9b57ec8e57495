/*
 * Tests for src/sockbuf.c: the TLS chain (appending, merging adjacent
 * ranges of one cluster, detaching a record at every length), the detached
 * record's accounting and its cancellation by sbcut and the flushes while a
 * worker holds it, readable records with control mbufs and the reader's
 * operations, sbcut across all three parts of the buffer, a long random
 * sequence of operations against a model of the counts and bytes,
 * sbcheck's own ability to see corruption, and sbwait_active's spin.
 *
 * Every operation runs sbcheck() on its way out in these builds
 * (UKTLS_INVARIANTS), so the internal invariants are checked after every
 * step; the tests check the public counters and the bytes.  Every test gives
 * back every mbuf and cluster it took.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "harness.h"
#include "mbuf.h"
#include "sockbuf.h"

/* A byte that depends on its position in a stream, so misplaced bytes show. */
static uint8_t
pat(uint64_t pos)
{
	pos += 0x9e3779b97f4a7c15ULL;
	pos = (pos ^ (pos >> 30)) * 0xbf58476d1ce4e5b9ULL;
	pos = (pos ^ (pos >> 27)) * 0x94d049bb133111ebULL;
	return (uint8_t)(pos ^ (pos >> 31));
}

static uint64_t rng_state;

static void
rng_seed(uint64_t seed)
{
	rng_state = seed != 0 ? seed : 1;
}

static uint32_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

/* Uniform in [lo, hi]. */
static uint32_t
rng_range(uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)((uint64_t)rng() * (hi - lo + 1) >> 32);
}

/* Objects handed out by the pools, this thread's cache flushed. */
struct outstanding {
	uint64_t mbufs, clusters;
};

static void
outstanding_get(struct outstanding *o)
{
	struct mbuf_pool_stats st;

	mbuf_thread_flush();
	mbuf_pool_stats(&st);
	o->mbufs = st.mbufs_total - st.mbufs_free;
	o->clusters = st.clusters_total - st.clusters_free;
}

#define CHECK_BALANCED(before)                                             \
	do {                                                               \
		struct outstanding after_;                                 \
                                                                           \
		outstanding_get(&after_);                                  \
		CHECK_EQ(after_.mbufs, (before).mbufs);                    \
		CHECK_EQ(after_.clusters, (before).clusters);              \
	} while (0)

static const char *fault_site;

static int
fault_fn(const char *site)
{
	return fault_site != NULL && strcmp(site, fault_site) == 0;
}

static void
fault_set(const char *site)
{
	fault_site = site;
	uktls_fault_hook = site != NULL ? fault_fn : NULL;
}

static void
sb_setup(struct sockbuf *sb)
{
	sbinit(sb, 1 << 20);
	sb->sb_flags |= SB_TLS_RX;
	SOCKBUF_LOCK(sb);
}

/* Empty the buffer (every count must reach 0) and destroy it. */
static void
sb_teardown(struct sockbuf *sb)
{
	sbflush_locked(sb);
	CHECK_EQ(sb->sb_ccc, 0);
	CHECK_EQ(sb->sb_acc, 0);
	CHECK_EQ(sb->sb_ctl, 0);
	CHECK_EQ(sb->sb_tlscc, 0);
	CHECK_EQ(sb->sb_tlsdcc, 0);
	CHECK_EQ(sb->sb_mbcnt, 0);
	CHECK(sb->sb_mb == NULL && sb->sb_mtls == NULL);
	CHECK(sb->sb_mtlstail == NULL && sb->sb_lastrecord == NULL &&
	    sb->sb_mbtail == NULL);
	SOCKBUF_UNLOCK(sb);
	sbdestroy(sb);
}

#define CHECK_COUNTS(sb, acc, ctl, tlscc, tlsdcc)                          \
	do {                                                               \
		CHECK_EQ((sb)->sb_acc, (acc));                             \
		CHECK_EQ((sb)->sb_ctl, (ctl));                             \
		CHECK_EQ((sb)->sb_tlscc, (tlscc));                         \
		CHECK_EQ((sb)->sb_tlsdcc, (tlsdcc));                       \
		CHECK_EQ((sb)->sb_ccc, (uint64_t)(acc) + (tlsdcc) +        \
		    (tlscc));                                              \
	} while (0)

/* Storage kinds for building chains. */
enum { INL, CL2K, CL16K };

struct seg {
	int kind;
	uint32_t len;
	uint32_t lead; /* where the data starts in the storage */
};

static struct mbuf *
mk_mbuf(int kind, int type)
{
	struct mbuf *m;

	switch (kind) {
	case CL2K:
		m = m_getcl(type, MCLBYTES);
		break;
	case CL16K:
		m = m_getcl(type, MJUMTLSBYTES);
		break;
	default:
		m = m_get(type);
		break;
	}
	if (m == NULL) {
		/* No test runs out of mbufs on purpose while building. */
		fprintf(stderr, "mk_mbuf: out of mbufs\n");
		abort();
	}
	return m;
}

/* Fill m's data with pat(pos ...) and return the position after it. */
static uint64_t
fill(struct mbuf *m, uint64_t pos)
{
	uint32_t i;

	for (i = 0; i < m->m_len; i++)
		m->m_data[i] = (char)pat(pos++);
	return pos;
}

/* A chain from segs filled from pos; the last mbuf is marked M_EOR. */
static struct mbuf *
build_chain(const struct seg *segs, int nseg, uint64_t pos,
    struct mbuf **mbufs)
{
	struct mbuf *head = NULL, **pp = &head, *m;
	int s;

	for (s = 0; s < nseg; s++) {
		m = mk_mbuf(segs[s].kind, MT_DATA);
		m->m_data += segs[s].lead;
		m->m_len = segs[s].len;
		pos = fill(m, pos);
		if (s == nseg - 1)
			m->m_flags |= M_EOR;
		if (mbufs != NULL)
			mbufs[s] = m;
		*pp = m;
		pp = &m->m_next;
	}
	return head;
}

/* A control mbuf of len bytes, as ktls_decrypt makes for each record. */
static struct mbuf *
mk_control(uint32_t len)
{
	struct mbuf *c = mk_mbuf(INL, MT_CONTROL);

	c->m_len = len;
	memset(c->m_data, 0xc0, len);
	return c;
}

/*
 * A new mbuf for bytes [off, off + len) of m's cluster, shared with m the
 * way m_split shares one.
 */
static struct mbuf *
mk_share(struct mbuf *m, uint32_t off, uint32_t len)
{
	struct mbuf *n = mk_mbuf(INL, MT_DATA);

	atomic_fetch_add(&m->m_ext->cl_refcnt, 1);
	n->m_ext = m->m_ext;
	n->m_flags = M_EXT;
	n->m_data = m->m_ext->cl_buf + off;
	n->m_len = len;
	return n;
}

static int
chain_count(const struct mbuf *m)
{
	int n = 0;

	for (; m != NULL; m = m->m_next)
		n++;
	return n;
}

/* True when the chain holds exactly pat(pos), pat(pos + 1), ... len bytes. */
static int
chain_matches(const struct mbuf *m, uint64_t pos, uint32_t len)
{
	uint64_t p = pos;
	uint32_t i;

	for (; m != NULL; m = m->m_next)
		for (i = 0; i < m->m_len; i++, p++)
			if (p - pos >= len || (uint8_t)m->m_data[i] != pat(p))
				return 0;
	return p - pos == len;
}

/* What a chain of TLS-chain (or data) mbufs counts against sb_mbcnt. */
static uint32_t
chain_mbcnt(const struct mbuf *m)
{
	uint32_t n = 0;

	for (; m != NULL; m = m->m_next)
		n += MSIZE + ((m->m_flags & M_EXT) != 0 ? m->m_len : 0);
	return n;
}

static int
nrecords(const struct sockbuf *sb)
{
	const struct mbuf *r;
	int n = 0;

	for (r = sb->sb_mb; r != NULL; r = r->m_nextpkt)
		n++;
	return n;
}

static struct mbuf *
chain_last(struct mbuf *m)
{
	while (m != NULL && m->m_next != NULL)
		m = m->m_next;
	return m;
}

TEST(ktls_append_counts)
{
	static const struct seg segs[] = { { INL, 100, 0 },
		{ CL2K, 1000, 0 }, { CL16K, 5000, 40 } };
	static const struct seg segs2[] = { { INL, 10, 0 }, { INL, 0, 0 },
		{ CL2K, 300, 5 } };
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *mb[3], *m, *z;
	uint64_t pos;

	outstanding_get(&before);
	sb_setup(&sb);
	CHECK_COUNTS(&sb, 0, 0, 0, 0);
	m = build_chain(segs, 3, 0, mb);
	sbappend_ktls_rx(&sb, m);
	pos = 6100;
	CHECK_COUNTS(&sb, 0, 0, 6100, 0);
	CHECK_EQ(sb.sb_mbcnt, 3 * MSIZE + 1000 + 5000);
	CHECK(sb.sb_mtls == mb[0] && sb.sb_mtlstail == mb[2]);
	CHECK(sb.sb_mb == NULL);
	for (m = sb.sb_mtls; m != NULL; m = m->m_next) {
		/* Encrypted bytes are not ready and carry no record marks. */
		CHECK((m->m_flags & M_NOTREADY) != 0);
		CHECK((m->m_flags & M_EOR) == 0);
		CHECK(m->m_nextpkt == NULL);
	}
	CHECK(chain_matches(sb.sb_mtls, 0, 6100));

	/* An empty mbuf adds nothing and is freed. */
	z = mk_mbuf(INL, MT_DATA);
	sbappend_ktls_rx(&sb, z);
	CHECK_COUNTS(&sb, 0, 0, 6100, 0);
	CHECK_EQ(chain_count(sb.sb_mtls), 3);
	z = mk_mbuf(CL16K, MT_DATA);
	sbappend_ktls_rx(&sb, z);
	CHECK_EQ(chain_count(sb.sb_mtls), 3);
	CHECK_EQ(sb.sb_mbcnt, 3 * MSIZE + 1000 + 5000);

	/* Empty mbufs inside a chain are dropped too. */
	m = build_chain(segs2, 3, pos, mb);
	sbappend_ktls_rx(&sb, m);
	pos += 310;
	CHECK_COUNTS(&sb, 0, 0, 6410, 0);
	CHECK_EQ(chain_count(sb.sb_mtls), 5);
	CHECK(sb.sb_mtlstail == mb[2]);
	CHECK_EQ(sb.sb_mbcnt, 5 * MSIZE + 1000 + 5000 + 300);
	CHECK(chain_matches(sb.sb_mtls, 0, (uint32_t)pos));
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/*
 * Bytes that continue the tail's range of the same cluster extend the tail
 * (the socket hands over ranges of one big cluster as it reads into it).
 */
TEST(ktls_append_merge)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *m1, *m2, *m3, *m4, *m5, *i1, *i2, *rec;
	struct mcluster *cl;

	outstanding_get(&before);
	sb_setup(&sb);
	m1 = mk_mbuf(CL16K, MT_DATA);
	cl = m1->m_ext;
	m1->m_len = 1000;
	fill(m1, 0);
	m1->m_len = 100;
	m2 = mk_share(m1, 100, 200);
	m3 = mk_share(m1, 300, 50);
	m4 = mk_share(m1, 400, 50); /* a gap of 50 before it */
	m5 = mk_share(m1, 450, 50);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 5);

	/* Two adjacent ranges in one chain: one mbuf remains. */
	m1->m_next = m2;
	sbappend_ktls_rx(&sb, m1);
	CHECK_EQ(chain_count(sb.sb_mtls), 1);
	CHECK(sb.sb_mtls == m1 && sb.sb_mtlstail == m1);
	CHECK_EQ(m1->m_len, 300);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 4);
	CHECK_COUNTS(&sb, 0, 0, 300, 0);
	CHECK_EQ(sb.sb_mbcnt, MSIZE + 300);

	/* An adjacent range appended on its own merges too. */
	sbappend_ktls_rx(&sb, m3);
	CHECK_EQ(chain_count(sb.sb_mtls), 1);
	CHECK_EQ(m1->m_len, 350);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 3);
	CHECK_COUNTS(&sb, 0, 0, 350, 0);
	CHECK_EQ(sb.sb_mbcnt, MSIZE + 350);

	/* Past a gap a new mbuf is needed; the next range merges into it. */
	sbappend_ktls_rx(&sb, m4);
	CHECK_EQ(chain_count(sb.sb_mtls), 2);
	CHECK(sb.sb_mtlstail == m4);
	CHECK_EQ(sb.sb_mbcnt, 2 * MSIZE + 400);
	sbappend_ktls_rx(&sb, m5);
	CHECK_EQ(chain_count(sb.sb_mtls), 2);
	CHECK_EQ(m4->m_len, 100);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 2);
	CHECK_COUNTS(&sb, 0, 0, 450, 0);
	CHECK_EQ(sb.sb_mbcnt, 2 * MSIZE + 450);

	/*
	 * Inline mbufs pack into an inline tail with room (sbcompress): i2's
	 * bytes are copied into i1 and i2 is freed.
	 */
	i1 = mk_mbuf(INL, MT_DATA);
	i1->m_len = 10;
	fill(i1, 1000);
	i2 = mk_mbuf(INL, MT_DATA);
	i2->m_len = 10;
	fill(i2, 1010);
	i1->m_next = i2;
	sbappend_ktls_rx(&sb, i1);
	CHECK_EQ(chain_count(sb.sb_mtls), 3);
	CHECK(sb.sb_mtlstail == i1);
	CHECK_EQ(i1->m_len, 20);
	CHECK_COUNTS(&sb, 0, 0, 470, 0);
	CHECK_EQ(sb.sb_mbcnt, 3 * MSIZE + 450);
	{
		uint8_t buf[470], want[470];
		uint32_t i;

		m_copydata(sb.sb_mtls, 0, 470, buf);
		for (i = 0; i < 350; i++)
			want[i] = pat(i);
		for (i = 0; i < 100; i++)
			want[350 + i] = pat(400 + i);
		for (i = 0; i < 20; i++)
			want[450 + i] = pat(1000 + i);
		CHECK(memcmp(buf, want, sizeof(buf)) == 0);
	}
	sbflush_locked(&sb);
	CHECK_COUNTS(&sb, 0, 0, 0, 0);

	/*
	 * A record detached inside a cluster leaves the rest as the tail,
	 * sharing the cluster; the next range merges into that tail.
	 */
	m1 = mk_mbuf(CL16K, MT_DATA);
	cl = m1->m_ext;
	m1->m_len = 1500;
	fill(m1, 0);
	m1->m_len = 1000;
	m2 = mk_share(m1, 1000, 500);
	sbappend_ktls_rx(&sb, m1);
	REQUIRE_EQ(sbdetach_ktls_rx(&sb, 600, &rec), 0);
	CHECK(rec == m1 && rec->m_len == 600);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 3);
	sbappend_ktls_rx(&sb, m2);
	CHECK_EQ(chain_count(sb.sb_mtls), 1);
	CHECK_EQ(sb.sb_mtls->m_len, 900);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 2);
	CHECK_COUNTS(&sb, 0, 0, 900, 600);
	CHECK_EQ(sb.sb_mbcnt, MSIZE + 900);
	CHECK(chain_matches(sb.sb_mtls, 600, 900));
	CHECK_EQ(sbdone_ktls_rx(&sb, 600), 0);
	CHECK_COUNTS(&sb, 0, 0, 900, 0);
	CHECK(chain_matches(rec, 0, 600));
	m_freem(rec);
	CHECK_EQ(atomic_load(&cl->cl_refcnt), 1);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/*
 * A TLS chain of mixed mbufs for the detach tests: inline and clusters,
 * data not at the start of storage.
 */
static const struct seg tls_segs[] = { { INL, 50, 0 }, { CL2K, 700, 13 },
	{ CL16K, 3000, 0 }, { INL, 20, 100 }, { CL2K, 300, 0 } };
#define NTLS ((int)(sizeof(tls_segs) / sizeof(tls_segs[0])))

/* Where reclen falls: the index of the mbuf it ends in, and how far in. */
static int
tls_seg_at(uint32_t reclen, uint32_t *inner)
{
	uint32_t end = 0;
	int k;

	for (k = 0; k < NTLS; k++) {
		end += tls_segs[k].len;
		if (reclen <= end) {
			*inner = reclen - (end - tls_segs[k].len);
			return k;
		}
	}
	return -1;
}

TEST(detach_every_length)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *mb[NTLS], *rec, *rl, *t;
	uint32_t total = 0, reclen, inner;
	uint64_t pos;
	int i, k, bad = 0;

	outstanding_get(&before);
	for (i = 0; i < NTLS; i++)
		total += tls_segs[i].len;
	sb_setup(&sb);
	for (reclen = 1; reclen <= total && bad < 5; reclen++) {
		int fails = harness_cur_failed;

		pos = (uint64_t)reclen << 16;
		sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, pos, mb));
		k = tls_seg_at(reclen, &inner);
		REQUIRE_EQ(sbdetach_ktls_rx(&sb, reclen, &rec), 0);
		CHECK(rec == mb[0]);
		CHECK_EQ(m_length(rec, &rl), reclen);
		CHECK(chain_matches(rec, pos, reclen));
		for (t = rec; t != NULL; t = t->m_next)
			CHECK((t->m_flags & M_NOTREADY) != 0);
		CHECK_COUNTS(&sb, 0, 0, total - reclen, reclen);
		CHECK(chain_matches(sb.sb_mtls, pos + reclen,
		    total - reclen));
		/* The tail and mbcnt follow the chain that is left. */
		CHECK(sb.sb_mtlstail == chain_last(sb.sb_mtls));
		CHECK_EQ(sb.sb_mbcnt, chain_mbcnt(sb.sb_mtls));
		if (reclen == total) {
			CHECK(sb.sb_mtls == NULL);
		} else if (inner == tls_segs[k].len) {
			/* On a boundary: the next mbuf heads the chain. */
			CHECK(rl == mb[k] && sb.sb_mtls == mb[k + 1]);
			CHECK(sb.sb_mtlstail == mb[NTLS - 1]);
		} else {
			/* Inside: the rest is a new mbuf in mb[k]'s place. */
			CHECK(rl == mb[k] && rl->m_len == inner);
			CHECK(sb.sb_mtls != mb[k] && sb.sb_mtls != NULL);
			if ((rl->m_flags & M_EXT) != 0) {
				CHECK(sb.sb_mtls->m_ext == rl->m_ext);
				CHECK_EQ(atomic_load(&rl->m_ext->cl_refcnt),
				    2);
			}
			if (k == NTLS - 1)
				CHECK(sb.sb_mtlstail == sb.sb_mtls);
			else
				CHECK(sb.sb_mtlstail == mb[NTLS - 1]);
		}
		CHECK_EQ(sbdone_ktls_rx(&sb, reclen), 0);
		CHECK_COUNTS(&sb, 0, 0, total - reclen, 0);
		m_freem(rec);
		sbflush_locked(&sb);
		CHECK_COUNTS(&sb, 0, 0, 0, 0);
		if (harness_cur_failed != fails) {
			fprintf(stderr, "  ... at reclen %u\n", reclen);
			bad++;
		}
	}
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/* Records detached one after another until the chain is empty. */
TEST(detach_successive)
{
	static const uint32_t lens[] = { 1, 49, 1, 699, 13, 3000, 7, 20, 80,
		200, 20 };
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *rec;
	uint32_t total = 0, left;
	uint64_t pos = 0;
	size_t i;
	int j;

	outstanding_get(&before);
	for (j = 0; j < NTLS; j++)
		total += tls_segs[j].len;
	sb_setup(&sb);
	sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, 0, NULL));
	left = total;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]) && left > 0; i++) {
		uint32_t len = lens[i] < left ? lens[i] : left;

		REQUIRE_EQ(sbdetach_ktls_rx(&sb, len, &rec), 0);
		CHECK(chain_matches(rec, pos, len));
		left -= len;
		pos += len;
		CHECK_COUNTS(&sb, 0, 0, left, len);
		CHECK(chain_matches(sb.sb_mtls, pos, left));
		CHECK(sb.sb_mtlstail == chain_last(sb.sb_mtls));
		CHECK_EQ(sb.sb_mbcnt, chain_mbcnt(sb.sb_mtls));
		CHECK_EQ(sbdone_ktls_rx(&sb, len), 0);
		m_freem(rec);
		/* More bytes arrive between records. */
		if (i == 4) {
			sbappend_ktls_rx(&sb, build_chain(tls_segs, 2,
			    pos + left, NULL));
			left += tls_segs[0].len + tls_segs[1].len;
		}
	}
	/* The rest as one record. */
	REQUIRE_EQ(sbdetach_ktls_rx(&sb, left, &rec), 0);
	CHECK(chain_matches(rec, pos, left));
	CHECK_COUNTS(&sb, 0, 0, 0, left);
	CHECK(sb.sb_mtls == NULL && sb.sb_mtlstail == NULL);
	CHECK_EQ(sb.sb_mbcnt, 0);
	CHECK_EQ(sbdone_ktls_rx(&sb, left), 0);
	m_freem(rec);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/* A detach that needs an mbuf for the split fails cleanly without one. */
TEST(detach_enobufs)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *mb[NTLS], *rec;
	uint32_t total = 0, mbcnt;
	int i;

	outstanding_get(&before);
	for (i = 0; i < NTLS; i++)
		total += tls_segs[i].len;
	sb_setup(&sb);
	sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, 0, mb));
	mbcnt = sb.sb_mbcnt;
	fault_set("mbuf");
	/* Inside inline storage, inside a cluster. */
	rec = NULL;
	CHECK_EQ(sbdetach_ktls_rx(&sb, 20, &rec), ENOBUFS);
	CHECK_EQ(sbdetach_ktls_rx(&sb, 1000, &rec), ENOBUFS);
	CHECK(rec == NULL);
	CHECK_COUNTS(&sb, 0, 0, total, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK_EQ(chain_count(sb.sb_mtls), NTLS);
	CHECK_EQ(atomic_load(&mb[2]->m_ext->cl_refcnt), 1);
	CHECK(chain_matches(sb.sb_mtls, 0, total));
	/* On a boundary, or the whole chain, no mbuf is needed. */
	CHECK_EQ(sbdetach_ktls_rx(&sb, 750, &rec), 0);
	CHECK(chain_matches(rec, 0, 750));
	CHECK_EQ(sbdone_ktls_rx(&sb, 750), 0);
	m_freem(rec);
	CHECK_EQ(sbdetach_ktls_rx(&sb, total - 750, &rec), 0);
	fault_set(NULL);
	CHECK(chain_matches(rec, 750, total - 750));
	CHECK_COUNTS(&sb, 0, 0, 0, total - 750);
	CHECK_EQ(sbdone_ktls_rx(&sb, total - 750), 0);
	m_freem(rec);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/*
 * Readable records for the cancel and cut tests: ctl bytes of control, then
 * data; rec_len 0 makes an empty record (one data mbuf of length 0).
 */
static void
add_record(struct sockbuf *sb, uint32_t ctl, uint32_t data_len, uint64_t pos)
{
	struct mbuf *d;

	if (data_len > (uint32_t)MLEN) {
		d = mk_mbuf(CL16K, MT_DATA);
		d->m_len = data_len / 2;
		fill(d, pos);
		d->m_next = mk_mbuf(CL2K, MT_DATA);
		d->m_next->m_len = data_len - data_len / 2;
		fill(d->m_next, pos + data_len / 2);
	} else {
		d = mk_mbuf(INL, MT_DATA);
		d->m_len = data_len;
		fill(d, pos);
	}
	sbappendcontrol_locked(sb, d, mk_control(ctl));
}

/*
 * The buffer the cancel and cut tests start from: readable records of 100,
 * 0 and 250 bytes, a record of 500 bytes detached (inside a cluster, so the
 * worker's record shares it with the TLS chain), and 1500 bytes after it.
 */
#define ST_ACC 350u
#define ST_DCC 500u
#define ST_TLS 1500u

static struct mbuf *
setup_three_parts(struct sockbuf *sb)
{
	static const struct seg segs[] = { { CL16K, 1200, 0 },
		{ INL, 100, 0 }, { CL2K, 700, 0 } };
	struct mbuf *rec;

	add_record(sb, 8, 100, 1000000);
	add_record(sb, 8, 0, 2000000);
	add_record(sb, 8, 250, 3000000);
	sbappend_ktls_rx(sb, build_chain(segs, 3, 0, NULL));
	if (sbdetach_ktls_rx(sb, ST_DCC, &rec) != 0)
		abort();
	return rec;
}

TEST(cancel_by_sbcut)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *rec;

	outstanding_get(&before);
	sb_setup(&sb);
	rec = setup_three_parts(&sb);
	CHECK_COUNTS(&sb, ST_ACC, 24, ST_TLS, ST_DCC);
	CHECK_EQ(atomic_load(&rec->m_ext->cl_refcnt), 2);
	/* Close while the worker decrypts: everything is cut. */
	sbcut_locked(&sb, sb.sb_ccc);
	CHECK_COUNTS(&sb, 0, 0, 0, 0);
	CHECK_EQ(sb.sb_mbcnt, 0);
	CHECK(sb.sb_mb == NULL && sb.sb_mtls == NULL);
	/* The worker's record is untouched, and its cluster now its own. */
	CHECK(chain_matches(rec, 0, ST_DCC));
	CHECK_EQ(atomic_load(&rec->m_ext->cl_refcnt), 1);
	/* The worker relocks: the record was cancelled; it frees it. */
	CHECK_EQ(sbdone_ktls_rx(&sb, ST_DCC), ECANCELED);
	CHECK_COUNTS(&sb, 0, 0, 0, 0);
	m_freem(rec);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

TEST(cancel_by_sbflush)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *rec;

	outstanding_get(&before);
	sb_setup(&sb);
	rec = setup_three_parts(&sb);
	/* An empty record at the end, which only the flush removes. */
	add_record(&sb, 8, 0, 0);
	sbflush_locked(&sb);
	CHECK_COUNTS(&sb, 0, 0, 0, 0);
	CHECK_EQ(sb.sb_mbcnt, 0);
	CHECK(sb.sb_mb == NULL && sb.sb_lastrecord == NULL);
	CHECK_EQ(sbdone_ktls_rx(&sb, ST_DCC), ECANCELED);
	CHECK(chain_matches(rec, 0, ST_DCC));
	m_freem(rec);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/* Shutdown of TLS receive: encrypted bytes go, readable records stay. */
TEST(cancel_by_flush_ktls)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *rec, *r;
	uint32_t mbcnt_recs = 0;

	outstanding_get(&before);
	sb_setup(&sb);
	rec = setup_three_parts(&sb);
	for (r = sb.sb_mb; r != NULL; r = r->m_nextpkt)
		mbcnt_recs += chain_mbcnt(r);
	sbflush_ktls_rx_locked(&sb);
	CHECK_COUNTS(&sb, ST_ACC, 24, 0, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt_recs);
	CHECK(sb.sb_mtls == NULL && sb.sb_mtlstail == NULL);
	CHECK_EQ(nrecords(&sb), 3);
	CHECK(chain_matches(sb.sb_mb->m_next, 1000000, 100));
	CHECK(chain_matches(sb.sb_lastrecord->m_next, 3000000, 250));
	CHECK_EQ(sbdone_ktls_rx(&sb, ST_DCC), ECANCELED);
	m_freem(rec);

	/* Without a detached record, and with an empty TLS chain. */
	add_record(&sb, 8, 10, 0);
	sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, 0, NULL));
	sbflush_ktls_rx_locked(&sb);
	CHECK_COUNTS(&sb, ST_ACC + 10, 32, 0, 0);
	sbflush_ktls_rx_locked(&sb);
	CHECK_COUNTS(&sb, ST_ACC + 10, 32, 0, 0);
	CHECK_EQ(nrecords(&sb), 4);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/* A parked entry for a detached record: its chain and a control mbuf. */
static struct sb_tlsparked
mk_parked(struct mbuf *rec, uint64_t seqno, uint32_t reclen)
{
	struct sb_tlsparked sp;

	memset(&sp, 0, sizeof(sp));
	sp.sp_data = rec;
	sp.sp_control = mk_mbuf(INL, MT_CONTROL);
	sp.sp_control->m_len = 24;
	sp.sp_seqno = seqno;
	sp.sp_reclen = reclen;
	sp.sp_len = reclen;
	return sp;
}

/*
 * Several records out at once (a pass and readers helping it): each is
 * detached in turn, those back before the ones ahead of them are parked
 * with their bytes still in sb_tlsdcc, and they leave it in order.  With
 * sequence numbers from base: 0, and 2^64 - 2, where they wrap to 0 among
 * the records out.
 */
static void
park_in_order(uint64_t base)
{
	struct outstanding before;
	struct sockbuf sb;
	struct sb_tlsparked sp;
	struct mbuf *rec[SB_TLS_MAXINFLIGHT], *extra;
	static const uint32_t len[SB_TLS_MAXINFLIGHT] = { 300, 500, 200, 400 };
	uint32_t off = 0, total = 0, i;

	outstanding_get(&before);
	sb_setup(&sb);
	sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, 0, NULL));
	for (i = 0; i < NTLS; i++)
		total += tls_segs[i].len;
	for (i = 0; i < SB_TLS_MAXINFLIGHT; i++) {
		REQUIRE_EQ(sbdetach_ktls_rx(&sb, len[i], &rec[i]), 0);
		CHECK(chain_matches(rec[i], off, len[i]));
		off += len[i];
		CHECK_COUNTS(&sb, 0, 0, total - off, off);
		CHECK_EQ(sb.sb_tls_inflight, i + 1);
	}
	sb.sb_tls_seqno = base + SB_TLS_MAXINFLIGHT;
	sb.sb_tls_pubseq = base;
	/* Records 3 and 1 are back first: parked, bytes still detached. */
	sp = mk_parked(rec[3], base + 3, len[3]);
	CHECK_EQ(sbpark_ktls_rx(&sb, &sp), 0);
	sp = mk_parked(rec[1], base + 1, len[1]);
	CHECK_EQ(sbpark_ktls_rx(&sb, &sp), 0);
	CHECK_EQ(sb.sb_tls_nparked, 2);
	CHECK_EQ(sb.sb_tls_inflight, 2);
	CHECK_COUNTS(&sb, 0, 0, total - off, off);
	/* None is record 0's turn. */
	CHECK_EQ(sbunpark_ktls_rx(&sb, base, &sp), 0);
	/* Record 0 is back in turn; then 1 leaves the parked ones. */
	CHECK_EQ(sbdone_ktls_rx(&sb, len[0]), 0);
	m_freem(rec[0]);
	sb.sb_tls_pubseq = base + 1;
	CHECK_COUNTS(&sb, 0, 0, total - off, off - len[0]);
	CHECK_EQ(sbunpark_ktls_rx(&sb, base + 1, &sp), 1);
	CHECK(sp.sp_data == rec[1] && sp.sp_reclen == len[1]);
	CHECK(chain_matches(sp.sp_data, len[0], len[1]));
	m_freem(sp.sp_data);
	m_freem(sp.sp_control);
	sb.sb_tls_pubseq = base + 2;
	CHECK_COUNTS(&sb, 0, 0, total - off, len[2] + len[3]);
	/* Record 3 waits for 2; with 2 back, it goes too. */
	CHECK_EQ(sbunpark_ktls_rx(&sb, base + 2, &sp), 0);
	CHECK_EQ(sbdone_ktls_rx(&sb, len[2]), 0);
	m_freem(rec[2]);
	sb.sb_tls_pubseq = base + 3;
	CHECK_EQ(sbunpark_ktls_rx(&sb, base + 3, &sp), 1);
	CHECK(chain_matches(sp.sp_data, off - len[3], len[3]));
	m_freem(sp.sp_data);
	m_freem(sp.sp_control);
	CHECK_COUNTS(&sb, 0, 0, total - off, 0);
	CHECK_EQ(sb.sb_tls_nparked, 0);
	CHECK_EQ(sb.sb_tls_inflight, 0);
	/* And detaching goes on from there. */
	REQUIRE_EQ(sbdetach_ktls_rx(&sb, 100, &extra), 0);
	CHECK(chain_matches(extra, off, 100));
	CHECK_EQ(sbdone_ktls_rx(&sb, 100), 0);
	m_freem(extra);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

TEST(several_detached_park_in_order)
{
	park_in_order(0);
	park_in_order(UINT64_MAX - 1);
}

/*
 * A cut (close, shutdown) while records are out and others parked: the
 * parked ones are freed with the buffer, each one still out is cancelled
 * when it comes back, parked or not.
 */
TEST(cancel_with_parked_records)
{
	struct outstanding before;
	struct sockbuf sb;
	struct sb_tlsparked sp;
	struct mbuf *rec[3];
	int how;

	outstanding_get(&before);
	for (how = 0; how < 3; how++) {
		sb_setup(&sb);
		sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, 0, NULL));
		REQUIRE_EQ(sbdetach_ktls_rx(&sb, 300, &rec[0]), 0);
		REQUIRE_EQ(sbdetach_ktls_rx(&sb, 300, &rec[1]), 0);
		REQUIRE_EQ(sbdetach_ktls_rx(&sb, 300, &rec[2]), 0);
		sb.sb_tls_seqno = 3;
		sp = mk_parked(rec[2], 2, 300);
		CHECK_EQ(sbpark_ktls_rx(&sb, &sp), 0);
		if (how == 0)
			sbcut_locked(&sb, sb.sb_ccc);
		else if (how == 1)
			sbflush_locked(&sb);
		else
			sbflush_ktls_rx_locked(&sb);
		CHECK_COUNTS(&sb, 0, 0, 0, 0);
		CHECK_EQ(sb.sb_tls_nparked, 0);
		CHECK_EQ(sb.sb_tls_inflight, 2);
		CHECK_EQ(sb.sb_tls_pubseq, 3);
		/* Back after the cut: one would be parked, one published;
		 * both are told it was cancelled and free their records. */
		sp = mk_parked(rec[1], 1, 300);
		CHECK_EQ(sbpark_ktls_rx(&sb, &sp), ECANCELED);
		m_freem(sp.sp_data);
		m_freem(sp.sp_control);
		CHECK_EQ(sbdone_ktls_rx(&sb, 300), ECANCELED);
		m_freem(rec[0]);
		CHECK_EQ(sb.sb_tls_inflight, 0);
		CHECK_COUNTS(&sb, 0, 0, 0, 0);
		sb_teardown(&sb);
	}
	CHECK_BALANCED(before);
}

/*
 * A cut that ends at or before the detached record leaves it alone, and the
 * worker's sbdone accounts for it as usual.
 */
TEST(cut_before_detached)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *rec;

	outstanding_get(&before);
	sb_setup(&sb);
	rec = setup_three_parts(&sb);
	sbcut_locked(&sb, ST_ACC);
	CHECK_COUNTS(&sb, 0, 0, ST_TLS, ST_DCC);
	CHECK(sb.sb_mb == NULL);
	CHECK_EQ(sbdone_ktls_rx(&sb, ST_DCC), 0);
	CHECK_COUNTS(&sb, 0, 0, ST_TLS, 0);
	m_freem(rec);
	/* Cutting exactly the detached record cancels only it. */
	REQUIRE_EQ(sbdetach_ktls_rx(&sb, 600, &rec), 0);
	sbcut_locked(&sb, 600);
	CHECK_COUNTS(&sb, 0, 0, ST_TLS - 600, 0);
	CHECK(chain_matches(sb.sb_mtls, ST_DCC + 600, ST_TLS - 600));
	CHECK_EQ(sbdone_ktls_rx(&sb, 600), ECANCELED);
	m_freem(rec);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/*
 * The race the FreeBSD review describes, with real threads: a worker
 * detaches a record and drops the lock to decrypt it (writing into it in
 * place, in a cluster it shares with the TLS chain); meanwhile the socket
 * is closed (sbflush), shut down (sbflush_ktls_rx) or only read
 * (sbcut of the readable bytes).  The worker relocks and learns from
 * sbdone whether the record still counts.
 */
enum { RACE_FLUSH, RACE_FLUSH_KTLS, RACE_CUT_ALL, RACE_READ, RACE_NMODES };

struct race {
	struct sockbuf *sb;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int stage;      /* 1: detached, 2: closer done */
	int mode;
	int done_rc;
	int bad;
};

static void *
race_worker(void *arg)
{
	struct race *r = arg;
	struct sockbuf *sb = r->sb;
	struct mbuf *rec;
	uint8_t plain[ST_DCC];

	SOCKBUF_LOCK(sb);
	if (sbdetach_ktls_rx(sb, ST_DCC, &rec) != 0) {
		r->bad++;
		SOCKBUF_UNLOCK(sb);
		return NULL;
	}
	SOCKBUF_UNLOCK(sb);

	pthread_mutex_lock(&r->mtx);
	r->stage = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mtx);

	/* "Decrypt" in place while the closer runs. */
	memset(plain, 0x77, sizeof(plain));
	m_copyback(rec, 0, sizeof(plain), plain);

	pthread_mutex_lock(&r->mtx);
	while (r->stage != 2)
		pthread_cond_wait(&r->cv, &r->mtx);
	pthread_mutex_unlock(&r->mtx);

	SOCKBUF_LOCK(sb);
	r->done_rc = sbdone_ktls_rx(sb, ST_DCC);
	SOCKBUF_UNLOCK(sb);
	/* Cancelled or not, this test's worker drops the record. */
	m_freem(rec);
	/* This file does not test the exit-time cache flush (test_mbuf). */
	mbuf_thread_flush();
	return NULL;
}

TEST(cancel_race_threads)
{
	static const struct seg segs[] = { { CL16K, 1200, 0 },
		{ INL, 100, 0 }, { CL2K, 700, 0 } };
	struct outstanding before;
	struct sockbuf sb;
	struct race r;
	pthread_t tid;
	int i;

	outstanding_get(&before);
	sbinit(&sb, 1 << 20);
	sb.sb_flags |= SB_TLS_RX;
	pthread_mutex_init(&r.mtx, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.sb = &sb;
	r.bad = 0;
	for (i = 0; i < 200; i++) {
		r.mode = i % RACE_NMODES;
		r.stage = 0;
		r.done_rc = -1;
		SOCKBUF_LOCK(&sb);
		add_record(&sb, 8, 100, 0);
		sbappend_ktls_rx(&sb, build_chain(segs, 3, 0, NULL));
		SOCKBUF_UNLOCK(&sb);
		REQUIRE(pthread_create(&tid, NULL, race_worker, &r) == 0);

		pthread_mutex_lock(&r.mtx);
		while (r.stage != 1)
			pthread_cond_wait(&r.cv, &r.mtx);
		pthread_mutex_unlock(&r.mtx);
		SOCKBUF_LOCK(&sb);
		switch (r.mode) {
		case RACE_FLUSH:
			sbflush_locked(&sb);
			break;
		case RACE_FLUSH_KTLS:
			sbflush_ktls_rx_locked(&sb);
			break;
		case RACE_CUT_ALL:
			sbcut_locked(&sb, sb.sb_ccc);
			break;
		case RACE_READ:
			sbcut_locked(&sb, sb.sb_acc);
			break;
		}
		SOCKBUF_UNLOCK(&sb);
		pthread_mutex_lock(&r.mtx);
		r.stage = 2;
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mtx);
		pthread_join(tid, NULL);

		SOCKBUF_LOCK(&sb);
		CHECK_EQ(r.done_rc, r.mode == RACE_READ ? 0 : ECANCELED);
		CHECK_EQ(sb.sb_tlsdcc, 0);
		CHECK_EQ(sb.sb_ccc, sb.sb_acc + sb.sb_tlscc);
		sbflush_locked(&sb);
		CHECK_EQ(sb.sb_ccc, 0);
		CHECK_EQ(sb.sb_mbcnt, 0);
		SOCKBUF_UNLOCK(&sb);
	}
	CHECK_EQ(r.bad, 0);
	pthread_mutex_destroy(&r.mtx);
	pthread_cond_destroy(&r.cv);
	sbdestroy(&sb);
	CHECK_BALANCED(before);
}

/* A thread that wakes sb after a delay, as a worker appending a record. */
struct waker {
	struct sockbuf *sb;
	unsigned int delay_us;
	int woke;
};

static void *
waker_main(void *arg)
{
	struct waker *w = arg;

	usleep(w->delay_us);
	SOCKBUF_LOCK(w->sb);
	w->woke = 1;
	sbwakeup(w->sb);
	SOCKBUF_UNLOCK(w->sb);
	return NULL;
}

static int
spin_wait_once(struct sockbuf *sb, unsigned int delay_us, uint64_t spin_ns)
{
	struct waker w = { sb, delay_us, 0 };
	pthread_t tid;
	int rc = 0;

	if (pthread_create(&tid, NULL, waker_main, &w) != 0)
		return -1;
	SOCKBUF_LOCK(sb);
	/* As soreceive waits: until the waker has run, whatever wakes us. */
	while (!w.woke && rc == 0)
		rc = sbwait_active(sb, NULL, spin_ns);
	SOCKBUF_UNLOCK(sb);
	pthread_join(tid, NULL);
	return rc;
}

/*
 * sbwait_active: no spin unless a record is being decrypted
 * (SB_TLS_RX_ACTIVE); a wake-up during the spin ends it, one after the spin
 * has run out is still seen by the sleep, a spin that ran out makes the next
 * SB_SPIN_SKIP waits sleep at once, a caller on the decrypting thread's CPU
 * never spins, and a deadline is still kept.
 */
TEST(sbwait_active_spin)
{
	struct sockbuf sb;
	struct timespec past;
	uint32_t skip;
	int i;

	sbinit(&sb, 1 << 20);
	/* Nothing being decrypted: a plain sleep, whatever the limit. */
	CHECK_EQ(spin_wait_once(&sb, 20000, 10000), 0);
	CHECK_EQ(sb.sb_spin_skip, 0u);
	sb.sb_flags |= SB_TLS_RX_ACTIVE;
	/* Woken within a 1 s spin: no sleep, nothing to skip afterwards. */
	CHECK_EQ(spin_wait_once(&sb, 2000, 1000000000u), 0);
	CHECK_EQ(sb.sb_spin_skip, 0u);
	/* Woken long after a 10 us spin: the sleep sees it. */
	CHECK_EQ(spin_wait_once(&sb, 20000, 10000), 0);
	skip = sb.sb_spin_skip;
	CHECK(skip > 0);
	/* The next waits sleep at once, counting the skips down (a spurious
	 * wake-up would count one more). */
	for (i = 0; i < 3; i++)
		CHECK_EQ(spin_wait_once(&sb, 1000, 1000000000u), 0);
	CHECK(skip >= 3 && sb.sb_spin_skip <= skip - 3);
	sb.sb_spin_skip = 0;
	/* On the decrypting thread's CPU: no spin, whatever the limit. */
	sb.sb_tls_cpu = sched_getcpu();
	if (sb.sb_tls_cpu >= 0) {
		CHECK_EQ(spin_wait_once(&sb, 1000, 1000000000u), 0);
		CHECK_EQ(sb.sb_spin_skip, 0u);
	}
	sb.sb_tls_cpu = -1;
	/* A deadline already past: EAGAIN after the spin. */
	clock_gettime(CLOCK_MONOTONIC, &past);
	past.tv_sec -= 1;
	SOCKBUF_LOCK(&sb);
	CHECK_EQ(sbwait_active(&sb, &past, 10000), EAGAIN);
	SOCKBUF_UNLOCK(&sb);
	sbdestroy(&sb);
}

/* Readable records and the reader's operations on them, one at a time. */
TEST(control_records_reader)
{
	struct outstanding before;
	struct sockbuf sb;
	struct mbuf *c1, *c2, *c3, *d1a, *d1b, *d2, *d3;
	uint32_t mbcnt;

	outstanding_get(&before);
	sb_setup(&sb);
	/* Record 1: 8 control bytes, 30 inline and 500 in a cluster. */
	d1a = mk_mbuf(INL, MT_DATA);
	d1a->m_len = 30;
	fill(d1a, 0);
	d1b = mk_mbuf(CL2K, MT_DATA);
	d1b->m_len = 500;
	fill(d1b, 30);
	d1a->m_next = d1b;
	/* Marks from the TLS chain are cleared; M_EOR goes on the last. */
	d1a->m_flags |= M_NOTREADY | M_EOR;
	d1b->m_flags |= M_NOTREADY;
	c1 = mk_control(8);
	sbappendcontrol_locked(&sb, d1a, c1);
	CHECK_COUNTS(&sb, 530, 8, 0, 0);
	CHECK_EQ(sb.sb_mbcnt, 3 * MSIZE + 500);
	CHECK((d1a->m_flags & (M_NOTREADY | M_EOR)) == 0);
	CHECK((d1b->m_flags & (M_NOTREADY | M_EOR)) == M_EOR);
	CHECK(sb.sb_mb == c1 && sb.sb_lastrecord == c1 &&
	    sb.sb_mbtail == d1b);

	/* Record 2: 16k cluster of 100.  Record 3: empty. */
	d2 = mk_mbuf(CL16K, MT_DATA);
	d2->m_len = 100;
	fill(d2, 1000);
	c2 = mk_control(8);
	sbappendcontrol_locked(&sb, d2, c2);
	d3 = mk_mbuf(INL, MT_DATA);
	c3 = mk_control(8);
	sbappendcontrol_locked(&sb, d3, c3);
	CHECK_COUNTS(&sb, 630, 24, 0, 0);
	mbcnt = 7 * MSIZE + 600;
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK_EQ(nrecords(&sb), 3);
	CHECK(c1->m_nextpkt == c2 && c2->m_nextpkt == c3);
	CHECK(sb.sb_lastrecord == c3 && sb.sb_mbtail == d3);
	CHECK((d3->m_flags & M_EOR) != 0);

	/* A TLS chain alongside, which the reader's operations leave be. */
	sbappend_ktls_rx(&sb, build_chain(tls_segs, 2, 5000, NULL));
	mbcnt += 2 * MSIZE + 700;
	CHECK_COUNTS(&sb, 630, 24, 750, 0);

	/* The reader takes the control message. */
	sbfree_control_locked(&sb);
	mbcnt -= MSIZE;
	CHECK_COUNTS(&sb, 630, 16, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK(sb.sb_mb == d1a && d1a->m_nextpkt == c2);

	/* Then reads part of the data, within the first mbuf... */
	sbdrop_record_bytes_locked(&sb, 10);
	CHECK_COUNTS(&sb, 620, 16, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK(sb.sb_mb == d1a && d1a->m_len == 20);
	CHECK(chain_matches(sb.sb_mb, 10, 520));
	/* ...to its end (the emptied mbuf goes)... */
	sbdrop_record_bytes_locked(&sb, 20);
	mbcnt -= MSIZE;
	CHECK_COUNTS(&sb, 600, 16, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK(sb.sb_mb == d1b && d1b->m_nextpkt == c2);
	/* ...and into the cluster, which counts its bytes. */
	sbdrop_record_bytes_locked(&sb, 100);
	mbcnt -= 100;
	CHECK_COUNTS(&sb, 500, 16, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK(chain_matches(sb.sb_mb, 130, 400));
	/* Across the two: a fresh record for that. */
	sbdroprecord_locked(&sb);
	mbcnt -= MSIZE + 400;
	CHECK_COUNTS(&sb, 100, 16, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK(sb.sb_mb == c2 && sb.sb_lastrecord == c3);

	/* A whole record, control included. */
	CHECK(chain_matches(sb.sb_mb->m_next, 1000, 100));
	sbdroprecord_locked(&sb);
	mbcnt -= 2 * MSIZE + 100;
	CHECK_COUNTS(&sb, 0, 8, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, mbcnt);
	CHECK(sb.sb_mb == c3 && sb.sb_lastrecord == c3);

	/* The empty record: its control, then the record itself. */
	sbfree_control_locked(&sb);
	CHECK(sb.sb_mb == d3 && sb.sb_lastrecord == d3 &&
	    sb.sb_mbtail == d3);
	CHECK_COUNTS(&sb, 0, 0, 750, 0);
	sbdroprecord_locked(&sb);
	CHECK(sb.sb_mb == NULL && sb.sb_lastrecord == NULL &&
	    sb.sb_mbtail == NULL);
	CHECK_COUNTS(&sb, 0, 0, 750, 0);
	CHECK_EQ(sb.sb_mbcnt, 2 * MSIZE + 700);

	/* A record whose data spans mbufs, read across them. */
	add_record(&sb, 4, 1000, 7000);
	sbfree_control_locked(&sb);
	sbdrop_record_bytes_locked(&sb, 700);
	CHECK_COUNTS(&sb, 300, 0, 750, 0);
	CHECK(chain_matches(sb.sb_mb, 7700, 300));
	CHECK_EQ(chain_count(sb.sb_mb), 1);
	sbdrop_record_bytes_locked(&sb, 299);
	CHECK(chain_matches(sb.sb_mb, 7999, 1));
	sbdroprecord_locked(&sb);
	CHECK_COUNTS(&sb, 0, 0, 750, 0);
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

/*
 * A model of the buffer: readable records, the detached record's length,
 * and the TLS chain as a range of positions in the stream of encrypted
 * bytes.  Every byte is pat(position), so the model knows every byte.
 */
#define MAXREC 512

struct mrec {
	int has_ctl;
	uint32_t ctl;
	uint64_t base; /* position of the first data byte */
	uint32_t len;
};

struct model {
	struct mrec recs[MAXREC];
	int nrec;
	uint32_t acc, ctl, tlsdcc;
	uint64_t tls_head, tls_tail;
};

static void
model_init(struct model *md)
{
	memset(md, 0, sizeof(*md));
}

static void
model_push(struct model *md, uint32_t ctl, uint64_t base, uint32_t len)
{
	struct mrec *r = &md->recs[md->nrec++];

	r->has_ctl = 1;
	r->ctl = ctl;
	r->base = base;
	r->len = len;
	md->ctl += ctl;
	md->acc += len;
}

static void
model_pop(struct model *md)
{
	struct mrec *r = &md->recs[0];

	if (r->has_ctl)
		md->ctl -= r->ctl;
	md->acc -= r->len;
	md->nrec--;
	memmove(&md->recs[0], &md->recs[1], md->nrec * sizeof(md->recs[0]));
}

static uint32_t
model_tlscc(const struct model *md)
{
	return (uint32_t)(md->tls_tail - md->tls_head);
}

static uint32_t
model_ccc(const struct model *md)
{
	return md->acc + md->tlsdcc + model_tlscc(md);
}

/* What sbcut_locked does, in the model. */
static void
model_cut(struct model *md, uint32_t len)
{
	struct mrec *r;

	while (md->nrec > 0 && len > 0) {
		r = &md->recs[0];
		if (r->has_ctl) {
			/* Control goes as soon as the cut reaches it. */
			md->ctl -= r->ctl;
			r->has_ctl = 0;
			continue;
		}
		if (len >= r->len) {
			len -= r->len;
			model_pop(md);
		} else {
			r->base += len;
			r->len -= len;
			md->acc -= len;
			len = 0;
		}
	}
	if (len > 0 && md->tlsdcc != 0) {
		len -= md->tlsdcc;
		md->tlsdcc = 0;
	}
	md->tls_head += len;
}

/* The public counters against the model. */
static int
model_check(const struct sockbuf *sb, const struct model *md)
{
	int fails = harness_cur_failed;

	CHECK_EQ(sb->sb_acc, md->acc);
	CHECK_EQ(sb->sb_ctl, md->ctl);
	CHECK_EQ(sb->sb_tlscc, model_tlscc(md));
	CHECK_EQ(sb->sb_tlsdcc, md->tlsdcc);
	CHECK_EQ(sb->sb_ccc, model_ccc(md));
	CHECK_EQ(nrecords(sb), md->nrec);
	CHECK((sb->sb_mtls == NULL) == (model_tlscc(md) == 0));
	CHECK((sb->sb_mbcnt == 0) == (sb->sb_mb == NULL &&
	    sb->sb_mtls == NULL));
	return harness_cur_failed == fails;
}

/* Every byte in the buffer against the model. */
static int
model_check_bytes(const struct sockbuf *sb, const struct model *md)
{
	const struct mbuf *rec, *d;
	int i, fails = harness_cur_failed;

	for (i = 0, rec = sb->sb_mb; rec != NULL && i < md->nrec;
	    i++, rec = rec->m_nextpkt) {
		d = rec;
		if (md->recs[i].has_ctl) {
			CHECK(rec->m_type == MT_CONTROL);
			CHECK_EQ(rec->m_len, md->recs[i].ctl);
			d = rec->m_next;
		} else
			CHECK(rec->m_type == MT_DATA);
		CHECK(chain_matches(d, md->recs[i].base, md->recs[i].len));
	}
	CHECK(chain_matches(sb->sb_mtls, md->tls_head, model_tlscc(md)));
	return harness_cur_failed == fails;
}

/* The TLS-stream positions of bytes appended to readable records directly. */
#define DIRECT_BASE (1ULL << 44)

struct rstate {
	struct sockbuf *sb;
	struct model *md;
	uint64_t direct_pos;
	/* The worker's detached record. */
	struct mbuf *rec;
	uint64_t rec_base;
	uint32_t rec_len;
	/* Ranges of one cluster not yet handed to the socket buffer. */
	struct mbuf *pend[8];
	int npend, ipend;
};

/* A TLS-chain mbuf of a random kind, or the next pending shared range. */
static struct mbuf *
rnd_tls_mbuf(struct rstate *st)
{
	struct mbuf *m, *c;
	uint32_t off, len;
	int kind, k;

	if (st->ipend < st->npend && rng() % 2 == 0)
		return st->pend[st->ipend++];
	if (st->ipend == st->npend && rng() % 8 == 0) {
		/*
		 * Cut a fresh cluster into ranges, some adjacent, some with
		 * a gap, handed over one at a time later.
		 */
		c = mk_mbuf(CL16K, MT_DATA);
		st->npend = st->ipend = 0;
		off = 0;
		for (k = 0; k < 8; k++) {
			len = rng_range(1, 2000);
			if (rng() % 5 == 0)
				off += rng_range(1, 100);
			if (off + len > MJUMTLSBYTES)
				break;
			st->pend[st->npend++] = mk_share(c, off, len);
			off += len;
		}
		m_free(c);
		if (st->npend > 0)
			return st->pend[st->ipend++];
	}
	kind = (int)rng_range(0, 2);
	m = mk_mbuf(kind, MT_DATA);
	if (rng() % 30 == 0)
		return m; /* empty */
	off = rng() % 4 == 0 ? rng_range(0, m_bufsize(m) / 2) : 0;
	m->m_data += off;
	m->m_len = rng_range(1, m_bufsize(m) - off);
	if (kind == CL16K && rng() % 2 == 0 && m->m_len > 6000)
		m->m_len = rng_range(1, 6000);
	return m;
}

static void
op_append_tls(struct rstate *st)
{
	struct mbuf *head = NULL, **pp = &head, *m;
	int n = (int)rng_range(1, 4), i;

	for (i = 0; i < n; i++) {
		m = rnd_tls_mbuf(st);
		/* The bytes are written now: they follow the stream. */
		st->md->tls_tail = fill(m, st->md->tls_tail);
		*pp = m;
		pp = &m->m_next;
	}
	sbappend_ktls_rx(st->sb, head);
}

/* A record length: anywhere, on an mbuf boundary, or next to one. */
static uint32_t
rnd_reclen(struct sockbuf *sb)
{
	struct mbuf *m;
	uint32_t tlscc = sb->sb_tlscc, end = 0, want;
	int r = (int)(rng() % 10);

	if (r < 4)
		return rng_range(1, tlscc < 17000 ? tlscc : 17000);
	if (r == 9)
		return tlscc;
	want = rng_range(1, tlscc);
	for (m = sb->sb_mtls; m != NULL && end + m->m_len < want;
	    m = m->m_next)
		end += m->m_len;
	if (m != NULL)
		end += m->m_len;
	if (r == 7 && end > 1)
		end--;
	else if (r == 8 && end < tlscc)
		end++;
	return end;
}

static void
op_detach(struct rstate *st)
{
	struct model *md = st->md;
	struct mbuf *rec = NULL;
	uint32_t reclen = rnd_reclen(st->sb);
	int faulty = rng() % 20 == 0, error;

	if (faulty)
		fault_set("mbuf");
	error = sbdetach_ktls_rx(st->sb, reclen, &rec);
	fault_set(NULL);
	if (error != 0) {
		/* Only a split that needs an mbuf may fail. */
		CHECK(faulty);
		CHECK_EQ(error, ENOBUFS);
		return;
	}
	CHECK(chain_matches(rec, md->tls_head, reclen));
	st->rec = rec;
	st->rec_base = md->tls_head;
	st->rec_len = reclen;
	md->tls_head += reclen;
	md->tlsdcc = reclen;
}

/*
 * The worker relocks after decrypting.  If the record still counts it
 * usually becomes a readable record (header and trailer trimmed, as
 * ktls_decrypt does); sometimes decryption "failed" and it is dropped.
 */
static void
op_done(struct rstate *st)
{
	struct model *md = st->md;
	uint32_t ctl, base_off = 0, len = st->rec_len;
	int error;

	/* Nothing touched the worker's bytes while it held them. */
	CHECK(chain_matches(st->rec, st->rec_base, st->rec_len));
	error = sbdone_ktls_rx(st->sb, st->rec_len);
	CHECK_EQ(error, md->tlsdcc != 0 ? 0 : ECANCELED);
	if (error == 0 && rng() % 4 != 0) {
		md->tlsdcc = 0;
		if (len >= 21) {
			m_adj(st->rec, 5);
			m_adj(st->rec, -16);
			base_off = 5;
			len -= 21;
		}
		ctl = rng_range(1, 16);
		sbappendcontrol_locked(st->sb, st->rec, mk_control(ctl));
		model_push(md, ctl, st->rec_base + base_off, len);
	} else {
		md->tlsdcc = 0;
		m_freem(st->rec);
	}
	st->rec = NULL;
}

/* A readable record straight from the test: 0..3 mbufs of data. */
static void
op_append_record(struct rstate *st)
{
	struct mbuf *head = NULL, **pp = &head, *m;
	uint64_t base = st->direct_pos;
	uint32_t len = 0, ctl;
	int n = (int)rng_range(1, 3), i;

	for (i = 0; i < n; i++) {
		m = mk_mbuf((int)rng_range(0, 2), MT_DATA);
		if (rng() % 5 != 0)
			m->m_len = rng_range(1, m_bufsize(m) < 3000 ?
			    m_bufsize(m) : 3000);
		st->direct_pos = fill(m, st->direct_pos);
		len += m->m_len;
		*pp = m;
		pp = &m->m_next;
	}
	ctl = rng_range(1, 16);
	sbappendcontrol_locked(st->sb, head, mk_control(ctl));
	model_push(st->md, ctl, base, len);
}

static void
op_read(struct rstate *st)
{
	struct model *md = st->md;
	struct mrec *r = &md->recs[0];
	uint32_t n;

	if (r->has_ctl) {
		if (rng() % 4 != 0) {
			sbfree_control_locked(st->sb);
			md->ctl -= r->ctl;
			r->has_ctl = 0;
		} else {
			sbdroprecord_locked(st->sb);
			model_pop(md);
		}
		return;
	}
	CHECK(chain_matches(st->sb->sb_mb, r->base, r->len));
	if (r->len >= 2 && rng() % 3 != 0) {
		n = rng() % 2 == 0 ? rng_range(1, r->len - 1) :
		    rng_range(1, r->len < 50 ? r->len - 1 : 49);
		sbdrop_record_bytes_locked(st->sb, n);
		r->base += n;
		r->len -= n;
		md->acc -= n;
	} else {
		sbdroprecord_locked(st->sb);
		model_pop(md);
	}
}

/*
 * A cut of any length that does not end inside the detached record (which
 * sbcut does not allow: only a close cuts it, and then all of it).
 */
static void
op_cut(struct rstate *st)
{
	struct model *md = st->md;
	uint32_t ccc = model_ccc(md), len;
	int r = (int)(rng() % 8);

	if (r < 3)
		len = rng_range(0, ccc < 2000 ? ccc : 2000);
	else if (r == 3)
		len = md->acc;
	else if (r == 4)
		len = md->acc + md->tlsdcc;
	else if (r == 5 && md->nrec > 0)
		len = md->recs[0].len;
	else
		len = rng_range(0, ccc);
	if (len > md->acc && len < md->acc + md->tlsdcc)
		len = rng() % 2 == 0 ? md->acc : md->acc + md->tlsdcc;
	if (rng() % 2 == 0)
		sbcut_locked(st->sb, len);
	else
		sbdrop_locked(st->sb, len);
	model_cut(md, len);
}

/*
 * Weights (per thousand) of: append to the TLS chain, detach, done, append
 * a record, read, cut, flush the TLS bytes; the rest is a full flush.
 */
static const int grow[7] = { 300, 200, 200, 100, 170, 25, 3 };
static const int drain[7] = { 150, 150, 150, 50, 350, 130, 10 };

static void
random_ops(uint64_t seed, int nops)
{
	const int *w;
	struct outstanding before;
	struct sockbuf sb;
	struct model *md;
	struct rstate st;
	int op, r, i;

	outstanding_get(&before);
	md = malloc(sizeof(*md));
	REQUIRE(md != NULL);
	model_init(md);
	rng_seed(seed);
	sb_setup(&sb);
	memset(&st, 0, sizeof(st));
	st.sb = &sb;
	st.md = md;
	st.direct_pos = DIRECT_BASE;
	for (op = 0; op < nops; op++) {
		/*
		 * Phases of 2000 operations: one that lets the buffer grow
		 * (many records, a long TLS chain), one that drains it.
		 */
		w = (op / 2000) % 2 == 0 ? grow : drain;
		r = (int)(rng() % 1000);
		if ((r -= w[0]) < 0) {
			if (model_ccc(md) < 768 * 1024)
				op_append_tls(&st);
		} else if ((r -= w[1]) < 0) {
			if (st.rec == NULL && sb.sb_tlscc > 0)
				op_detach(&st);
		} else if ((r -= w[2]) < 0) {
			if (st.rec != NULL)
				op_done(&st);
		} else if ((r -= w[3]) < 0) {
			if (md->nrec < MAXREC - 1 &&
			    model_ccc(md) < 768 * 1024)
				op_append_record(&st);
		} else if ((r -= w[4]) < 0) {
			if (md->nrec > 0)
				op_read(&st);
		} else if ((r -= w[5]) < 0) {
			op_cut(&st);
		} else if ((r -= w[6]) < 0) {
			sbflush_ktls_rx_locked(&sb);
			md->tls_head = md->tls_tail;
			md->tlsdcc = 0;
		} else {
			sbflush_locked(&sb);
			while (md->nrec > 0)
				model_pop(md);
			md->tls_head = md->tls_tail;
			md->tlsdcc = 0;
		}
		if (!model_check(&sb, md) ||
		    (op % 500 == 0 && !model_check_bytes(&sb, md))) {
			fprintf(stderr, "  ... seed %#llx op %d\n",
			    (unsigned long long)seed, op);
			break;
		}
	}
	CHECK(model_check_bytes(&sb, md));
	/* Close: the held record is cancelled and freed by its worker. */
	sbflush_locked(&sb);
	if (st.rec != NULL) {
		CHECK(chain_matches(st.rec, st.rec_base, st.rec_len));
		CHECK_EQ(sbdone_ktls_rx(&sb, st.rec_len), ECANCELED);
		m_freem(st.rec);
	}
	for (i = st.ipend; i < st.npend; i++)
		m_free(st.pend[i]);
	sb_teardown(&sb);
	free(md);
	CHECK_BALANCED(before);
}

TEST(random_sequence)
{
	random_ops(0x5eedULL, 20000);
}

TEST(random_sequence_more_seeds)
{
	uint64_t seed;

	for (seed = 1; seed <= 4; seed++)
		random_ops(seed * 0x9e3779b97f4a7c15ULL, 5000);
}

/* sbcut at lengths that end in each part of the buffer, against the model. */
TEST(sbcut_across_parts)
{
	static const uint32_t lens[] = { 0, 1, 99, 100, 101, 349, ST_ACC,
		ST_ACC + ST_DCC, ST_ACC + ST_DCC + 1, ST_ACC + ST_DCC + 1199,
		ST_ACC + ST_DCC + 1200, ST_ACC + ST_DCC + ST_TLS - 1,
		ST_ACC + ST_DCC + ST_TLS };
	struct outstanding before;
	struct sockbuf sb;
	struct model *md;
	struct mbuf *rec;
	size_t i;

	outstanding_get(&before);
	md = malloc(sizeof(*md));
	REQUIRE(md != NULL);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		sb_setup(&sb);
		rec = setup_three_parts(&sb);
		model_init(md);
		model_push(md, 8, 1000000, 100);
		model_push(md, 8, 2000000, 0);
		model_push(md, 8, 3000000, 250);
		md->tlsdcc = ST_DCC;
		md->tls_head = ST_DCC;
		md->tls_tail = ST_DCC + ST_TLS;
		sbcut_locked(&sb, lens[i]);
		model_cut(md, lens[i]);
		if (!model_check(&sb, md) || !model_check_bytes(&sb, md))
			fprintf(stderr, "  ... cut %u\n", lens[i]);
		CHECK_EQ(sbdone_ktls_rx(&sb, ST_DCC),
		    lens[i] > ST_ACC ? ECANCELED : 0);
		m_freem(rec);
		sb_teardown(&sb);
	}
	free(md);
	CHECK_BALANCED(before);
}

/*
 * sbcheck must see corruption, or the invariant checking every other test
 * leans on proves nothing.  Each corruption is made in a child, which must
 * die of SIGABRT with sbcheck's message.
 */
enum {
	CORRUPT_NONE,
	CORRUPT_TLSCC,
	CORRUPT_EOR,
	CORRUPT_NOTREADY,
	CORRUPT_TLSTAIL,
	CORRUPT_MBCNT,
	CORRUPT_EOR_MIDDLE,
	CORRUPT_CCC,
	CORRUPT_PARKED,
	CORRUPT_PUBSEQ,
	CORRUPT_COUNT
};

static const char *const corrupt_msg[CORRUPT_COUNT] = {
	[CORRUPT_NONE] = NULL,
	[CORRUPT_TLSCC] = "sbcheck: acc",
	[CORRUPT_EOR] = "M_EOR not on",
	[CORRUPT_NOTREADY] = "bad TLS-chain mbuf",
	[CORRUPT_TLSTAIL] = "mtlstail",
	[CORRUPT_MBCNT] = "sbcheck: acc",
	[CORRUPT_EOR_MIDDLE] = "M_EOR not on",
	[CORRUPT_CCC] = "sbcheck: acc",
	[CORRUPT_PARKED] = "sbcheck: parked record",
	[CORRUPT_PUBSEQ] = "sbcheck: publishing",
};

static void
corrupt(struct sockbuf *sb, int how)
{
	switch (how) {
	case CORRUPT_TLSCC:
		sb->sb_tlscc++;
		break;
	case CORRUPT_EOR:
		sb->sb_mbtail->m_flags &= (uint16_t)~M_EOR;
		break;
	case CORRUPT_NOTREADY:
		sb->sb_mtls->m_next->m_flags &= (uint16_t)~M_NOTREADY;
		break;
	case CORRUPT_TLSTAIL:
		sb->sb_mtlstail = sb->sb_mtls;
		break;
	case CORRUPT_MBCNT:
		sb->sb_mbcnt -= MSIZE;
		break;
	case CORRUPT_EOR_MIDDLE:
		sb->sb_mb->m_next->m_flags |= M_EOR;
		break;
	case CORRUPT_CCC:
		sb->sb_ccc--;
		break;
	case CORRUPT_PARKED:
		/* A parked record no record is ahead of. */
		sb->sb_tls_nparked = 1;
		break;
	case CORRUPT_PUBSEQ:
		/* Nothing out, yet the next record to publish is one never
		 * detached: every later record would park for good. */
		sb->sb_tls_pubseq = sb->sb_tls_seqno + 1;
		break;
	}
}

static void
sbcheck_child(int how)
{
	struct outstanding before;
	struct sockbuf sb;
	struct rlimit rl = { 0, 0 };
	char out[4096];
	ssize_t n;
	size_t got = 0;
	int fds[2], status;
	pid_t pid;

	outstanding_get(&before);
	sb_setup(&sb);
	/* A record of two data mbufs and a TLS chain of five. */
	add_record(&sb, 8, 1000, 0);
	sbappend_ktls_rx(&sb, build_chain(tls_segs, NTLS, 0, NULL));
	REQUIRE(pipe(fds) == 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		/* The child: no core file, its panic message to the pipe. */
		setrlimit(RLIMIT_CORE, &rl);
		close(fds[0]);
		dup2(fds[1], 2);
		sb.sb_owner = pthread_self();
		corrupt(&sb, how);
		sbcheck(&sb, "corrupted");
		_exit(0);
	}
	close(fds[1]);
	while (got < sizeof(out) - 1 &&
	    (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	if (how == CORRUPT_NONE) {
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	} else {
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
		CHECK(strstr(out, "uktls panic: corrupted: sbcheck") != NULL);
		CHECK(strstr(out, corrupt_msg[how]) != NULL);
		if (harness_cur_failed != 0)
			fprintf(stderr, "  ... corruption %d: status %#x "
			    "output \"%s\"\n", how, status, out);
	}
	/* The parent's buffer was never corrupted. */
	sb_teardown(&sb);
	CHECK_BALANCED(before);
}

TEST(sbcheck_catches_corruption)
{
	int how;

	for (how = 0; how < CORRUPT_COUNT; how++)
		sbcheck_child(how);
}

int
main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
