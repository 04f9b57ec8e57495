/*
 * Tests for src/mbuf.c: allocation of inline and cluster mbufs, chains and
 * records, the byte-range operations (m_copydata, m_copyback, m_adj,
 * m_split, m_append) at every offset of chains that mix inline and cluster
 * storage, the pools (reuse without growth, the cap), the per-thread caches
 * across threads, and the fault hook.
 *
 * Every test checks that it gave back every mbuf and cluster it took, by
 * comparing the objects the pools have handed out before and after (after
 * flushing this thread's cache, so that the shared lists see everything).
 */
#include <pthread.h>
#include <stdint.h>

#include "fault.h"
#include "harness.h"
#include "mbuf.h"

/* A byte that depends on its position in a stream, so misplaced bytes show. */
static uint8_t
pat(uint64_t pos)
{
	pos += 0x9e3779b97f4a7c15ULL;
	pos = (pos ^ (pos >> 30)) * 0xbf58476d1ce4e5b9ULL;
	pos = (pos ^ (pos >> 27)) * 0x94d049bb133111ebULL;
	return (uint8_t)(pos ^ (pos >> 31));
}

/*
 * Objects handed out by the pools and not returned, once this thread's cache
 * is flushed.  Only differences mean anything: objects another thread still
 * caches count here too.
 */
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

/* Storage kinds for building chains. */
enum { INL, CL2K, CL16K };

struct seg {
	int kind;
	uint32_t len;
	uint32_t lead; /* where the data starts in the storage */
};

static struct mbuf *
mk_mbuf(int kind)
{
	switch (kind) {
	case CL2K:
		return m_getcl(MT_DATA, MCLBYTES);
	case CL16K:
		return m_getcl(MT_DATA, MJUMTLSBYTES);
	default:
		return m_get(MT_DATA);
	}
}

/*
 * Build a chain from segs, filled with pat(salt + offset); the last mbuf
 * gets M_EOR and every mbuf gets extra_flags.  Aborts the test program on
 * allocation failure: no test here runs out of memory on purpose while
 * building a chain.
 */
static struct mbuf *
build_chain(const struct seg *segs, int nseg, uint64_t salt,
    uint16_t extra_flags, struct mbuf **mbufs)
{
	struct mbuf *head = NULL, **pp = &head, *m;
	uint64_t pos = salt;
	uint32_t i;
	int s;

	for (s = 0; s < nseg; s++) {
		m = mk_mbuf(segs[s].kind);
		if (m == NULL) {
			fprintf(stderr, "build_chain: out of mbufs\n");
			abort();
		}
		m->m_data += segs[s].lead;
		m->m_len = segs[s].len;
		for (i = 0; i < m->m_len; i++)
			m->m_data[i] = (char)pat(pos++);
		m->m_flags |= extra_flags;
		if (s == nseg - 1)
			m->m_flags |= M_EOR;
		if (mbufs != NULL)
			mbufs[s] = m;
		*pp = m;
		pp = &m->m_next;
	}
	return head;
}

static int
chain_count(const struct mbuf *m)
{
	int n = 0;

	for (; m != NULL; m = m->m_next)
		n++;
	return n;
}

/* True when the chain's bytes [0, len) are pat(salt + off + i). */
static int
chain_matches(const struct mbuf *m, uint64_t salt, uint32_t len)
{
	uint64_t pos = salt;
	uint32_t i;

	for (; m != NULL; m = m->m_next)
		for (i = 0; i < m->m_len; i++, pos++)
			if ((uint8_t)m->m_data[i] != pat(pos))
				return 0;
	return pos - salt == len;
}

TEST(m_get_inline)
{
	struct outstanding before;
	struct mbuf *m, *c;

	outstanding_get(&before);
	m = m_get(MT_DATA);
	REQUIRE(m != NULL);
	CHECK_EQ(m->m_type, MT_DATA);
	CHECK_EQ(m->m_len, 0);
	CHECK_EQ(m->m_flags, 0);
	CHECK(m->m_next == NULL && m->m_nextpkt == NULL);
	CHECK(m->m_data == m->m_dat);
	CHECK(m->m_ext == NULL);
	CHECK(M_WRITABLE(m));
	CHECK_EQ(M_TRAILINGSPACE(m), MLEN);
	CHECK_EQ(m_bufsize(m), MLEN);
	/* The whole inline area is ours (ASan sees an overrun). */
	memset(m->m_data, 0xa5, MLEN);
	m->m_len = MLEN;
	CHECK_EQ(M_TRAILINGSPACE(m), 0);
	m_sanity(m, "m_get_inline");

	/* Read-only storage has no trailing space even when there is room. */
	m->m_len = 10;
	m->m_flags |= M_RDONLY;
	CHECK(!M_WRITABLE(m));
	CHECK_EQ(M_TRAILINGSPACE(m), 0);

	c = m_get(MT_CONTROL);
	REQUIRE(c != NULL);
	CHECK_EQ(c->m_type, MT_CONTROL);
	CHECK(c != m);
	CHECK(m_free(m) == NULL);
	CHECK(m_free(c) == NULL);
	CHECK_BALANCED(before);
}

TEST(m_getcl_sizes)
{
	static const uint32_t sizes[] = { MCLBYTES, MJUMTLSBYTES };
	struct outstanding before;
	struct mbuf *m;
	size_t i;

	outstanding_get(&before);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		m = m_getcl(MT_DATA, sizes[i]);
		REQUIRE(m != NULL);
		CHECK((m->m_flags & M_EXT) != 0);
		REQUIRE(m->m_ext != NULL);
		CHECK_EQ(m->m_ext->cl_size, sizes[i]);
		CHECK_EQ(atomic_load(&m->m_ext->cl_refcnt), 1);
		CHECK(m->m_data == m->m_ext->cl_buf);
		CHECK_EQ((uintptr_t)m->m_data % 64, 0);
		CHECK_EQ(m->m_len, 0);
		CHECK_EQ(m->m_type, MT_DATA);
		CHECK(M_WRITABLE(m));
		CHECK_EQ(M_TRAILINGSPACE(m), sizes[i]);
		CHECK_EQ(m_bufsize(m), sizes[i]);
		memset(m->m_data, 0x5a, sizes[i]);
		m->m_len = sizes[i];
		CHECK_EQ(M_TRAILINGSPACE(m), 0);
		m_sanity(m, "m_getcl_sizes");
		/* Data that starts later in the cluster has less room. */
		m->m_data += 100;
		m->m_len = 50;
		CHECK_EQ(M_TRAILINGSPACE(m), sizes[i] - 150);
		m_freem(m);
	}
	m = m_getcl(MT_CONTROL, MCLBYTES);
	REQUIRE(m != NULL);
	CHECK_EQ(m->m_type, MT_CONTROL);
	m_free(m);
	CHECK_BALANCED(before);
}

TEST(m_free_chain)
{
	static const struct seg segs[] = { { INL, 10, 0 }, { CL2K, 20, 0 },
		{ CL16K, 30, 0 }, { INL, 0, 0 } };
	struct outstanding before;
	struct mbuf *mb[4], *m;

	outstanding_get(&before);
	m = build_chain(segs, 4, 0, 0, mb);
	CHECK_EQ(chain_count(m), 4);
	/* m_free returns the rest of the chain. */
	CHECK(m_free(m) == mb[1]);
	CHECK(m_free(mb[1]) == mb[2]);
	m_freem(mb[2]);
	m_freem(NULL);
	CHECK_BALANCED(before);
}

TEST(chains_and_records)
{
	static const struct seg segs[] = { { INL, 100, 0 }, { CL2K, 1000, 0 },
		{ CL16K, 9000, 0 } };
	struct outstanding before;
	struct mbuf *recs = NULL, **rp = &recs, *r, *next, *last;
	uint32_t len, want;
	int i, n;

	outstanding_get(&before);
	/* Five records of 1..3 mbufs linked by m_nextpkt. */
	for (i = 0; i < 5; i++) {
		r = build_chain(segs, 1 + i % 3, (uint64_t)i << 20, 0, NULL);
		*rp = r;
		rp = &r->m_nextpkt;
	}
	for (i = 0, r = recs; r != NULL; r = r->m_nextpkt, i++) {
		n = 1 + i % 3;
		want = n == 1 ? 100 : n == 2 ? 1100 : 10100;
		len = m_length(r, &last);
		CHECK_EQ(len, want);
		CHECK_EQ(chain_count(r), n);
		CHECK(last != NULL && last->m_next == NULL);
		CHECK((last->m_flags & M_EOR) != 0);
		CHECK(chain_matches(r, (uint64_t)i << 20, want));
	}
	CHECK_EQ(i, 5);
	CHECK_EQ(m_length(NULL, &last), 0);
	CHECK(last == NULL);
	CHECK_EQ(m_length(recs, NULL), 100);
	for (r = recs; r != NULL; r = next) {
		next = r->m_nextpkt;
		r->m_nextpkt = NULL;
		m_freem(r);
	}
	CHECK_BALANCED(before);
}

/*
 * A chain with every kind of mbuf, data not at the start of its storage, and
 * an empty mbuf in the middle, which the walkers must step over.
 */
static const struct seg mixed_segs[] = {
	{ INL, 5, 3 },
	{ CL2K, 100, 7 },
	{ INL, 0, 0 },
	{ CL16K, 3000, 1000 },
	{ INL, MLEN - 16, 16 },
	{ CL2K, 37, 0 },
};
#define NMIXED ((int)(sizeof(mixed_segs) / sizeof(mixed_segs[0])))

static uint32_t
mixed_total(void)
{
	uint32_t t = 0;
	int i;

	for (i = 0; i < NMIXED; i++)
		t += mixed_segs[i].len;
	return t;
}

/* The chain offsets where an mbuf ends, plus 1 on either side. */
static int
near_boundary(uint32_t off)
{
	uint32_t end = 0;
	int i;

	for (i = 0; i < NMIXED; i++) {
		end += mixed_segs[i].len;
		if (off + 1 >= end && off <= end + 1)
			return 1;
	}
	return off <= 1;
}

TEST(m_copydata_every_offset)
{
	struct outstanding before;
	struct mbuf *m;
	uint8_t *buf, *want;
	uint32_t total = mixed_total(), off, len, i;
	int bad = 0;

	outstanding_get(&before);
	buf = malloc(total + 1);
	want = malloc(total + 1);
	REQUIRE(buf != NULL && want != NULL);
	for (i = 0; i < total; i++)
		want[i] = pat(1000 + i);
	m = build_chain(mixed_segs, NMIXED, 1000, 0, NULL);
	CHECK_EQ(m_length(m, NULL), total);
	for (off = 0; off <= total && bad < 5; off++) {
		/* To the end, one byte, and every length near boundaries. */
		for (len = 0; off + len <= total; len++) {
			if (len > 1 && off + len != total &&
			    !near_boundary(off + len) && len % 97 != 0)
				continue;
			memset(buf, 0xee, total + 1);
			m_copydata(m, off, len, buf);
			if (memcmp(buf, want + off, len) != 0 ||
			    buf[len] != 0xee) {
				harness_fail(__FILE__, __LINE__,
				    "m_copydata off %u len %u", off, len);
				bad++;
				break;
			}
		}
	}
	m_freem(m);
	free(buf);
	free(want);
	CHECK_BALANCED(before);
}

TEST(m_copyback_every_offset)
{
	struct outstanding before;
	struct mbuf *m;
	uint8_t *buf, *shadow, src[40];
	uint32_t total = mixed_total(), off, len, i;
	int bad = 0;

	outstanding_get(&before);
	buf = malloc(total);
	shadow = malloc(total);
	REQUIRE(buf != NULL && shadow != NULL);
	for (i = 0; i < total; i++)
		shadow[i] = pat(7 + i);
	m = build_chain(mixed_segs, NMIXED, 7, 0, NULL);
	for (off = 0; off <= total && bad < 5; off++) {
		len = total - off < sizeof(src) ? total - off :
		    (uint32_t)(1 + off % sizeof(src));
		for (i = 0; i < len; i++)
			src[i] = (uint8_t)(off * 31 + i);
		m_copyback(m, off, len, src);
		memcpy(shadow + off, src, len);
		/* The whole chain, so that a write in the wrong place shows. */
		m_copydata(m, 0, total, buf);
		if (memcmp(buf, shadow, total) != 0) {
			harness_fail(__FILE__, __LINE__,
			    "m_copyback off %u len %u", off, len);
			bad++;
		}
	}
	/* Copyback never changes the shape of the chain. */
	CHECK_EQ(m_length(m, NULL), total);
	CHECK_EQ(chain_count(m), NMIXED);
	m_sanity(m, "m_copyback_every_offset");
	m_freem(m);
	free(buf);
	free(shadow);
	CHECK_BALANCED(before);
}

/* After m_adj, the chain is pat(salt + first) for len bytes. */
static void
check_adj(struct mbuf *m, uint64_t salt, uint32_t first, uint32_t len,
    int k)
{
	if (m_length(m, NULL) != len || !chain_matches(m, salt + first, len))
		harness_fail(__FILE__, __LINE__, "m_adj %d: length %u want %u",
		    k, m_length(m, NULL), len);
	/* Emptied mbufs stay in the chain. */
	if (chain_count(m) != NMIXED)
		harness_fail(__FILE__, __LINE__, "m_adj %d: %d mbufs", k,
		    chain_count(m));
	m_sanity(m, "check_adj");
}

TEST(m_adj_head)
{
	struct outstanding before;
	struct mbuf *m, *mb[NMIXED];
	uint32_t total = mixed_total(), k;
	char *d1;

	outstanding_get(&before);
	for (k = 0; k <= total + 3; k++) {
		m = build_chain(mixed_segs, NMIXED, 55, 0, mb);
		d1 = mb[1]->m_data;
		m_adj(m, (int)k);
		check_adj(m, 55, k < total ? k : total,
		    k < total ? total - k : 0, (int)k);
		/* Trimming the head advances m_data past what was cut. */
		if (k >= 5 && k < 105)
			CHECK(mb[1]->m_data == d1 + (k - 5));
		if (k >= 105)
			CHECK_EQ(mb[1]->m_len, 0);
		m_freem(m);
	}
	/* Nothing to trim, and no chain at all. */
	m = build_chain(mixed_segs, NMIXED, 55, 0, NULL);
	m_adj(m, 0);
	check_adj(m, 55, 0, total, 0);
	m_freem(m);
	m_adj(NULL, 10);
	m_adj(NULL, -10);
	CHECK_BALANCED(before);
}

TEST(m_adj_tail)
{
	struct outstanding before;
	struct mbuf *m, *mb[NMIXED];
	uint32_t total = mixed_total(), k, keep;
	int i;

	outstanding_get(&before);
	for (k = 1; k <= total + 3; k++) {
		m = build_chain(mixed_segs, NMIXED, 99, 0, mb);
		m_adj(m, -(int)k);
		keep = k < total ? total - k : 0;
		check_adj(m, 99, 0, keep, -(int)k);
		/* Tail trimming leaves where data starts alone. */
		for (i = 0; i < NMIXED; i++)
			CHECK(mb[i]->m_data == m_bufstart(mb[i]) +
			    mixed_segs[i].lead);
		m_freem(m);
	}
	CHECK_BALANCED(before);
}

/*
 * m_split at every offset.  The chain mixes inline and cluster mbufs; with
 * notready set every mbuf is M_NOTREADY (as on the TLS chain), which both
 * halves must keep.
 */
static void
split_every_offset(uint16_t notready)
{
	static const struct seg segs[] = { { INL, 30, 3 }, { CL2K, 200, 10 },
		{ INL, 50, 0 }, { CL16K, 500, 100 }, { CL2K, 60, 0 } };
	enum { NS = sizeof(segs) / sizeof(segs[0]) };
	struct mbuf *mb[NS], *m, *n, *hl, *t;
	uint32_t total = 0, off, end, inner = 0;
	int i, k, boundary, err;

	for (i = 0; i < NS; i++)
		total += segs[i].len;
	for (off = 1; off <= total; off++) {
		m = build_chain(segs, NS, off << 12, notready, mb);
		/* Which mbuf the split falls in, and where. */
		for (k = 0, end = 0; k < NS; k++) {
			end += segs[k].len;
			if (off <= end) {
				inner = off - (end - segs[k].len);
				break;
			}
		}
		boundary = off == end;
		err = -1;
		n = m_split(m, off, &err);
		CHECK_EQ(err, 0);
		if (off == total) {
			/* Nothing to split off: the chain is untouched. */
			CHECK(n == NULL);
			CHECK_EQ(chain_count(m), NS);
			CHECK((mb[NS - 1]->m_flags & M_EOR) != 0);
			CHECK(chain_matches(m, off << 12, total));
			m_freem(m);
			continue;
		}
		if (n == NULL) {
			harness_fail(__FILE__, __LINE__, "m_split %u: NULL",
			    off);
			m_freem(m);
			return;
		}
		CHECK_EQ(m_length(m, &hl), off);
		CHECK_EQ(m_length(n, NULL), total - off);
		CHECK(chain_matches(m, off << 12, off));
		CHECK(chain_matches(n, (off << 12) + off, total - off));
		CHECK(hl == mb[k]);
		/* M_EOR ends up on the tail part's last mbuf only. */
		for (t = m; t != NULL; t = t->m_next) {
			CHECK((t->m_flags & M_EOR) == 0);
			CHECK_EQ(t->m_flags & M_NOTREADY, notready);
		}
		for (t = n; t != NULL; t = t->m_next) {
			CHECK(((t->m_flags & M_EOR) != 0) ==
			    (t->m_next == NULL));
			CHECK_EQ(t->m_flags & M_NOTREADY, notready);
			CHECK(t->m_type == MT_DATA);
		}
		CHECK_EQ(chain_count(m) + chain_count(n), NS + !boundary);
		if (boundary) {
			/* No new mbuf: the next one heads the tail part. */
			CHECK(n == mb[k + 1]);
			CHECK(hl->m_next == NULL);
		} else if ((hl->m_flags & M_EXT) != 0) {
			/* Inside a cluster: both halves share it. */
			CHECK((n->m_flags & M_EXT) != 0);
			CHECK(n->m_ext == hl->m_ext);
			CHECK_EQ(atomic_load(&hl->m_ext->cl_refcnt), 2);
			CHECK(n->m_data == hl->m_data + hl->m_len);
			CHECK_EQ(hl->m_len, inner);
			CHECK(!M_WRITABLE(hl) && !M_WRITABLE(n));
			CHECK_EQ(M_TRAILINGSPACE(hl), 0);
			CHECK_EQ(M_TRAILINGSPACE(n), 0);
			CHECK(n->m_next == (k + 1 < NS ? mb[k + 1] : NULL));
		} else {
			/* Inside inline storage: the tail is copied. */
			CHECK((n->m_flags & M_EXT) == 0);
			CHECK(n->m_data == n->m_dat);
			CHECK_EQ(hl->m_len, inner);
			CHECK_EQ(M_TRAILINGSPACE(hl), MLEN - segs[k].lead -
			    inner);
		}
		m_sanity(m, "split head");
		m_sanity(n, "split tail");
		m_freem(n);
		/* With the tail gone the head owns its cluster again. */
		if (!boundary && (hl->m_flags & M_EXT) != 0) {
			CHECK_EQ(atomic_load(&hl->m_ext->cl_refcnt), 1);
			CHECK_EQ(M_TRAILINGSPACE(hl), m_bufsize(hl) -
			    segs[k].lead - inner);
		}
		CHECK(chain_matches(m, off << 12, off));
		m_freem(m);
	}
}

TEST(m_split_every_offset)
{
	struct outstanding before;

	outstanding_get(&before);
	split_every_offset(0);
	split_every_offset(M_NOTREADY);
	CHECK_BALANCED(before);
}

/* A cluster cut in four: four mbufs share it, freed in any order. */
TEST(m_split_shared_cluster)
{
	static const struct seg seg16 = { CL16K, 4000, 0 };
	static const int order[][4] = { { 0, 1, 2, 3 }, { 3, 2, 1, 0 },
		{ 2, 0, 3, 1 } };
	struct outstanding before;
	struct mbuf *p[4], *m;
	struct mcluster *cl;
	int i, j, err;

	outstanding_get(&before);
	for (i = 0; i < 3; i++) {
		m = build_chain(&seg16, 1, 77, 0, NULL);
		cl = m->m_ext;
		p[0] = m;
		for (j = 1; j < 4; j++) {
			p[j] = m_split(p[j - 1], 1000, &err);
			REQUIRE(p[j] != NULL && err == 0);
			CHECK(p[j]->m_ext == cl);
			CHECK_EQ(atomic_load(&cl->cl_refcnt), j + 1);
		}
		for (j = 0; j < 4; j++) {
			CHECK_EQ(p[j]->m_len, 1000);
			CHECK(chain_matches(p[j], 77 + 1000 * (uint64_t)j,
			    1000));
			CHECK_EQ(M_TRAILINGSPACE(p[j]), 0);
			CHECK(((p[j]->m_flags & M_EOR) != 0) == (j == 3));
		}
		for (j = 0; j < 4; j++) {
			m_free(p[order[i][j]]);
			if (j < 3)
				CHECK_EQ(atomic_load(&cl->cl_refcnt), 3 - j);
		}
	}
	CHECK_BALANCED(before);
}

static const char *fault_site;
static int fault_hits;

static int
fault_fn(const char *site)
{
	if (fault_site != NULL && strcmp(site, fault_site) == 0) {
		fault_hits++;
		return 1;
	}
	return 0;
}

static void
fault_set(const char *site)
{
	fault_site = site;
	fault_hits = 0;
	uktls_fault_hook = site != NULL ? fault_fn : NULL;
}

TEST(m_split_enobufs)
{
	static const struct seg segs[] = { { CL2K, 100, 0 }, { INL, 50, 0 },
		{ CL2K, 100, 0 } };
	struct outstanding before;
	struct mbuf *m, *n, *mb[3];
	int err;

	outstanding_get(&before);
	m = build_chain(segs, 3, 5, 0, mb);
	fault_set("mbuf");
	/* Inside a cluster or inline storage a new mbuf is needed. */
	n = m_split(m, 60, &err);
	CHECK(n == NULL);
	CHECK_EQ(err, ENOBUFS);
	n = m_split(m, 120, &err);
	CHECK(n == NULL);
	CHECK_EQ(err, ENOBUFS);
	CHECK_EQ(fault_hits, 2);
	/* Nothing changed. */
	CHECK_EQ(chain_count(m), 3);
	CHECK(chain_matches(m, 5, 250));
	CHECK_EQ(atomic_load(&mb[0]->m_ext->cl_refcnt), 1);
	CHECK((mb[2]->m_flags & M_EOR) != 0);
	/* On a boundary none is. */
	n = m_split(m, 150, &err);
	fault_set(NULL);
	CHECK_EQ(err, 0);
	CHECK(n == mb[2]);
	CHECK(chain_matches(m, 5, 150));
	m_freem(m);
	m_freem(n);
	CHECK_BALANCED(before);
}

TEST(m_append_fill)
{
	struct outstanding before;
	struct mbuf *m, *t;
	uint8_t *src, *buf;
	uint32_t done, total, i;
	const uint32_t len3 = 20000;

	outstanding_get(&before);
	src = malloc(len3);
	buf = malloc(100 + 500 + len3);
	REQUIRE(src != NULL && buf != NULL);
	for (i = 0; i < 100 + 500 + len3; i++)
		buf[i] = pat(i);

	/* Fits in the inline mbuf's trailing space. */
	m = m_get(MT_DATA);
	REQUIRE(m != NULL);
	CHECK_EQ(m_append(m, 100, buf, &done), 0);
	CHECK_EQ(done, 100);
	CHECK_EQ(chain_count(m), 1);
	CHECK_EQ(m->m_len, 100);

	/* Fills the rest of it, then a 2k cluster takes what is left. */
	CHECK_EQ(m_append(m, 500, buf + 100, &done), 0);
	CHECK_EQ(done, 500);
	CHECK_EQ(m->m_len, MLEN);
	REQUIRE_EQ(chain_count(m), 2);
	t = m->m_next;
	CHECK((t->m_flags & M_EXT) != 0 && t->m_ext->cl_size == MCLBYTES);
	CHECK_EQ(t->m_len, 600 - MLEN);

	/* Fills the 2k cluster, then 16k clusters, then a 2k one. */
	CHECK_EQ(m_append(m, len3, buf + 600, NULL), 0);
	total = 600 + len3;
	CHECK_EQ(m_length(m, NULL), total);
	CHECK_EQ(t->m_len, MCLBYTES);
	REQUIRE_EQ(chain_count(m), 4);
	t = t->m_next;
	CHECK(t->m_ext->cl_size == MJUMTLSBYTES && t->m_len == MJUMTLSBYTES);
	t = t->m_next;
	CHECK(t->m_ext->cl_size == MCLBYTES);
	CHECK_EQ(t->m_len, total - MLEN - MCLBYTES - MJUMTLSBYTES);
	CHECK(chain_matches(m, 0, total));
	m_sanity(m, "m_append_fill");

	/* Nothing to append. */
	CHECK_EQ(m_append(m, 0, buf, &done), 0);
	CHECK_EQ(done, 0);
	CHECK_EQ(m_length(m, NULL), total);
	m_freem(m);
	free(src);
	free(buf);
	CHECK_BALANCED(before);
}

/* A tail that may not be written gets a new mbuf, not its own space. */
TEST(m_append_shared_or_rdonly_tail)
{
	static const struct seg seg2k = { CL2K, 1000, 0 };
	struct outstanding before;
	struct mbuf *m, *n, *last;
	uint8_t add[50];
	uint32_t done, i;
	int err;

	outstanding_get(&before);
	for (i = 0; i < sizeof(add); i++)
		add[i] = pat(400 + i);
	m = build_chain(&seg2k, 1, 0, M_NOTREADY, NULL);
	n = m_split(m, 400, &err);
	REQUIRE(n != NULL);
	CHECK_EQ(M_TRAILINGSPACE(m), 0);
	CHECK_EQ(m_append(m, sizeof(add), add, &done), 0);
	CHECK_EQ(done, sizeof(add));
	CHECK_EQ(chain_count(m), 2);
	CHECK_EQ(m_length(m, &last), 450);
	/* New mbufs inherit M_NOTREADY: they are part of the same bytes. */
	CHECK((last->m_flags & M_NOTREADY) != 0);
	CHECK(chain_matches(m, 0, 450));
	/* The other sharer's bytes are untouched. */
	CHECK(chain_matches(n, 400, 600));
	m_freem(n);
	m_freem(m);

	m = m_get(MT_DATA);
	REQUIRE(m != NULL);
	m->m_flags |= M_RDONLY;
	CHECK_EQ(m_append(m, 10, add, &done), 0);
	CHECK_EQ(m->m_len, 0);
	CHECK_EQ(chain_count(m), 2);
	m_freem(m);
	CHECK_BALANCED(before);
}

TEST(m_append_enobufs)
{
	struct outstanding before;
	struct mbuf *m;
	uint8_t *buf;
	uint32_t done, i;
	const uint32_t len = 30000;

	outstanding_get(&before);
	buf = malloc(len);
	REQUIRE(buf != NULL);
	for (i = 0; i < len; i++)
		buf[i] = pat(i);
	m = m_getcl(MT_DATA, MCLBYTES);
	REQUIRE(m != NULL);
	CHECK_EQ(m_append(m, 48, buf, NULL), 0);
	fault_set("cluster tls");
	CHECK_EQ(m_append(m, len - 48, buf + 48, &done), ENOBUFS);
	fault_set(NULL);
	/* What fitted is appended and counted; nothing else is. */
	CHECK_EQ(done, MCLBYTES - 48);
	CHECK_EQ(m_length(m, NULL), MCLBYTES);
	CHECK_EQ(chain_count(m), 1);
	CHECK(chain_matches(m, 0, MCLBYTES));
	m_freem(m);
	free(buf);
	CHECK_BALANCED(before);
}

TEST(pool_reuse)
{
	struct mbuf_pool_stats st0, st1;
	struct outstanding before;
	struct mbuf *m[200];
	int round, i;

	outstanding_get(&before);
	/* Warm up: the pools grow to what one round needs. */
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 200; i++) {
			m[i] = mk_mbuf(i % 3);
			REQUIRE(m[i] != NULL);
		}
		for (i = 0; i < 200; i++)
			m_free(m[i]);
	}
	mbuf_pool_stats(&st0);
	for (round = 0; round < 1000; round++) {
		for (i = 0; i < 200; i++) {
			m[i] = mk_mbuf((i + round) % 3);
			REQUIRE(m[i] != NULL);
			m[i]->m_len = 1;
			m[i]->m_data[0] = (char)i;
		}
		/* Free in an order unlike the allocation order. */
		for (i = 0; i < 200; i++)
			m_free(m[(i * 7 + round) % 200]);
	}
	mbuf_pool_stats(&st1);
	CHECK_EQ(st1.slab_allocs, st0.slab_allocs);
	CHECK_EQ(st1.bytes, st0.bytes);
	CHECK_EQ(st1.mbufs_total, st0.mbufs_total);
	CHECK_EQ(st1.clusters_total, st0.clusters_total);
	CHECK_BALANCED(before);
}

/* Allocate with alloc() into a list until it fails; return the count. */
static uint64_t
drain_pool(struct mbuf **list, int kind)
{
	struct mbuf *m;
	uint64_t n = 0;

	while ((m = mk_mbuf(kind)) != NULL) {
		m->m_nextpkt = *list;
		*list = m;
		n++;
	}
	return n;
}

static void
free_list(struct mbuf *list)
{
	struct mbuf *next;

	for (; list != NULL; list = next) {
		next = list->m_nextpkt;
		list->m_nextpkt = NULL;
		m_freem(list);
	}
}

TEST(pool_cap)
{
	struct mbuf_pool_stats st0, st1;
	struct outstanding before;
	struct mbuf *list = NULL, *m;
	uint64_t n;
	size_t cap;

	outstanding_get(&before);
	m_free(m_get(MT_DATA));
	mbuf_thread_flush();
	mbuf_pool_stats(&st0);

	/* A cap at what the pools hold already: no pool may grow. */
	mbuf_pool_setmax(st0.bytes);
	n = drain_pool(&list, INL);
	/* Every free mbuf was handed out before the first failure. */
	CHECK_EQ(n, st0.mbufs_free);
	CHECK(m_get(MT_DATA) == NULL);
	CHECK(m_getcl(MT_DATA, MCLBYTES) == NULL);
	mbuf_pool_stats(&st1);
	CHECK_EQ(st1.bytes, st0.bytes);
	CHECK_EQ(st1.slab_allocs, st0.slab_allocs);

	/* Freeing one makes one allocation work again, and only one. */
	m = list;
	list = list->m_nextpkt;
	m->m_nextpkt = NULL;
	m_free(m);
	m = m_get(MT_DATA);
	CHECK(m != NULL);
	CHECK(m_get(MT_DATA) == NULL);
	if (m != NULL) {
		m->m_nextpkt = list;
		list = m;
	}

	/* A higher cap lets the pools grow up to it and no further. */
	cap = st0.bytes + 200 * 1024;
	mbuf_pool_setmax(cap);
	n = drain_pool(&list, CL2K);
	CHECK(n > 0);
	drain_pool(&list, CL16K);
	drain_pool(&list, INL);
	mbuf_pool_stats(&st1);
	CHECK(st1.bytes > st0.bytes);
	CHECK(st1.bytes <= cap);
	CHECK(m_get(MT_DATA) == NULL);

	free_list(list);
	list = NULL;
	/* Uncapped again: allocations beyond the old cap work. */
	mbuf_pool_setmax(0);
	n = 0;
	while (n < 2 * st1.mbufs_total + 10) {
		m = m_get(MT_DATA);
		REQUIRE(m != NULL);
		m->m_nextpkt = list;
		list = m;
		n++;
	}
	free_list(list);
	CHECK_BALANCED(before);
}

/*
 * The fault hook fails each allocation site; a failed m_getcl gives its
 * mbuf back, and a failed slab leaves the pool's size as it was.
 */
TEST(fault_hook)
{
	struct mbuf_pool_stats st0, st1;
	struct outstanding before;
	struct mbuf *m, *list = NULL;
	uint64_t n;

	outstanding_get(&before);
	fault_set("mbuf");
	CHECK(m_get(MT_DATA) == NULL);
	CHECK(m_getcl(MT_DATA, MCLBYTES) == NULL);
	CHECK(m_getcl(MT_DATA, MJUMTLSBYTES) == NULL);
	CHECK_EQ(fault_hits, 3);
	CHECK_BALANCED(before);

	fault_set("cluster 2k");
	CHECK(m_getcl(MT_DATA, MCLBYTES) == NULL);
	m = m_getcl(MT_DATA, MJUMTLSBYTES);
	CHECK(m != NULL);
	m_freem(m);
	m = m_get(MT_DATA);
	CHECK(m != NULL);
	m_freem(m);
	CHECK_EQ(fault_hits, 1);
	CHECK_BALANCED(before);

	fault_set("cluster tls");
	CHECK(m_getcl(MT_DATA, MJUMTLSBYTES) == NULL);
	m = m_getcl(MT_DATA, MCLBYTES);
	CHECK(m != NULL);
	m_freem(m);
	CHECK_EQ(fault_hits, 1);
	CHECK_BALANCED(before);

	/* A pool that must grow fails when its slab does. */
	mbuf_thread_flush();
	mbuf_pool_stats(&st0);
	fault_set("mbuf slab");
	n = drain_pool(&list, INL);
	CHECK_EQ(n, st0.mbufs_free);
	CHECK_EQ(fault_hits, 1);
	mbuf_pool_stats(&st1);
	CHECK_EQ(st1.bytes, st0.bytes);
	CHECK_EQ(st1.mbufs_total, st0.mbufs_total);
	fault_set(NULL);
	m = m_get(MT_DATA);
	CHECK(m != NULL);
	m_freem(m);
	free_list(list);
	CHECK_BALANCED(before);
}

/*
 * Threads pass chains round a ring: each allocates chains, fills them, hands
 * them to the next thread, which checks and frees them.  Every object is
 * allocated in one thread's cache and freed into another's.  One lock guards
 * all the mailboxes; a mailbox holds a few chains at most, so that memory
 * stays small however the threads are scheduled.
 */
#define RING_THREADS 8
#define RING_ROUNDS 300
#define RING_DEPTH 4

struct ring {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	struct mbuf *head[RING_THREADS]; /* chains linked by m_nextpkt */
	struct mbuf **tail[RING_THREADS];
	int count[RING_THREADS];
};

struct ring_arg {
	int id;
	int bad;
	struct ring *ring;
};

static uint64_t
ring_salt(int id, int round)
{
	return ((uint64_t)id << 40) | ((uint64_t)round << 20);
}

/* A chain of 1..12 mbufs of any kind, filled from ring_salt(id, round). */
static struct mbuf *
ring_make(int id, int round, uint64_t *seed)
{
	struct mbuf *head = NULL, **pp = &head, *m;
	uint64_t pos = ring_salt(id, round);
	uint32_t i, len;
	int n, j;

	/* A generator per thread: the tests' shared state is not locked. */
	*seed ^= *seed << 13;
	*seed ^= *seed >> 7;
	*seed ^= *seed << 17;
	n = 1 + (int)(*seed % 12);
	for (j = 0; j < n; j++) {
		m = mk_mbuf((int)((*seed >> (8 + 2 * j)) % 3));
		if (m == NULL)
			break;
		len = (uint32_t)((*seed >> (3 * j)) % m_bufsize(m)) + 1;
		for (i = 0; i < len; i++)
			m->m_data[i] = (char)pat(pos++);
		m->m_len = len;
		*pp = m;
		pp = &m->m_next;
	}
	return head;
}

static void *
ring_thread(void *arg)
{
	struct ring_arg *a = arg;
	struct ring *r = a->ring;
	struct mbuf *m, *got, *next = NULL;
	uint64_t seed = 0x1234567ULL * (uint64_t)(a->id + 1);
	int out = (a->id + 1) % RING_THREADS, in = a->id;
	int from = (a->id + RING_THREADS - 1) % RING_THREADS;
	int sent = 0, received = 0;

	while (received < RING_ROUNDS || sent < RING_ROUNDS) {
		if (next == NULL && sent < RING_ROUNDS) {
			next = ring_make(a->id, sent, &seed);
			if (next == NULL) {
				a->bad++;
				break;
			}
		}
		pthread_mutex_lock(&r->mtx);
		if (next != NULL && r->count[out] < RING_DEPTH) {
			/* Chains arrive in order, so the round is known. */
			*r->tail[out] = next;
			r->tail[out] = &next->m_nextpkt;
			r->count[out]++;
			next = NULL;
			sent++;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mtx);
			continue;
		}
		if (r->head[in] == NULL) {
			/* Nothing to take and nowhere to put: wait. */
			pthread_cond_wait(&r->cv, &r->mtx);
			pthread_mutex_unlock(&r->mtx);
			continue;
		}
		got = r->head[in];
		r->head[in] = NULL;
		r->tail[in] = &r->head[in];
		r->count[in] = 0;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mtx);
		while (got != NULL) {
			m = got;
			got = got->m_nextpkt;
			m->m_nextpkt = NULL;
			if (!chain_matches(m, ring_salt(from, received),
			    m_length(m, NULL)))
				a->bad++;
			m_freem(m);
			received++;
		}
	}
	/*
	 * Half the threads give their caches back themselves; the others
	 * leave it to the exit-time destructor.
	 */
	if (a->id % 2 == 0)
		mbuf_thread_flush();
	return NULL;
}

TEST(thread_caches_ring)
{
	struct ring_arg args[RING_THREADS];
	pthread_t tid[RING_THREADS];
	struct outstanding before;
	struct ring r;
	int i;

	outstanding_get(&before);
	pthread_mutex_init(&r.mtx, NULL);
	pthread_cond_init(&r.cv, NULL);
	for (i = 0; i < RING_THREADS; i++) {
		r.head[i] = NULL;
		r.tail[i] = &r.head[i];
		r.count[i] = 0;
		args[i].id = i;
		args[i].bad = 0;
		args[i].ring = &r;
	}
	for (i = 0; i < RING_THREADS; i++)
		REQUIRE(pthread_create(&tid[i], NULL, ring_thread,
		    &args[i]) == 0);
	for (i = 0; i < RING_THREADS; i++) {
		pthread_join(tid[i], NULL);
		CHECK_EQ(args[i].bad, 0);
	}
	for (i = 0; i < RING_THREADS; i++)
		CHECK(r.head[i] == NULL);
	pthread_mutex_destroy(&r.mtx);
	pthread_cond_destroy(&r.cv);
	/* Every cached object came back to the pools. */
	CHECK_BALANCED(before);
}

/* Threads that only allocate; the main thread frees what they made. */
#define ALLOC_THREADS 6

static void *
alloc_thread(void *arg)
{
	struct mbuf **out = arg;
	uint64_t seed = (uint64_t)(uintptr_t)arg | 1;
	int i;

	for (i = 0; i < 50; i++) {
		struct mbuf *m = ring_make(0, i, &seed);

		if (m == NULL)
			break;
		m->m_nextpkt = *out;
		*out = m;
	}
	return NULL;
}

TEST(thread_caches_alloc_only)
{
	struct mbuf *lists[ALLOC_THREADS];
	pthread_t tid[ALLOC_THREADS];
	struct outstanding before;
	int i;

	outstanding_get(&before);
	for (i = 0; i < ALLOC_THREADS; i++) {
		lists[i] = NULL;
		REQUIRE(pthread_create(&tid[i], NULL, alloc_thread,
		    &lists[i]) == 0);
	}
	for (i = 0; i < ALLOC_THREADS; i++)
		pthread_join(tid[i], NULL);
	for (i = 0; i < ALLOC_THREADS; i++)
		free_list(lists[i]);
	CHECK_BALANCED(before);
}

/*
 * A thread that only frees (a reader consuming records that the workers
 * allocated) and then exits.  The objects it cached must still come back
 * to the pools: mbuf.c promises that a thread's cache goes back when the
 * thread exits.
 */
struct free_arg {
	struct mbuf *list;
	int flush;
};

static void *
free_thread(void *arg)
{
	struct free_arg *a = arg;

	free_list(a->list);
	if (a->flush)
		mbuf_thread_flush();
	return NULL;
}

static void
free_elsewhere(int flush)
{
	struct outstanding before;
	struct free_arg a;
	pthread_t tid;
	int i;

	outstanding_get(&before);
	a.list = NULL;
	a.flush = flush;
	/* Fewer than a cache holds, so no free overflows to the pool. */
	for (i = 0; i < 20; i++) {
		struct mbuf *m = mk_mbuf(i % 3);

		REQUIRE(m != NULL);
		m->m_nextpkt = a.list;
		a.list = m;
	}
	REQUIRE(pthread_create(&tid, NULL, free_thread, &a) == 0);
	pthread_join(tid, NULL);
	CHECK_BALANCED(before);
}

TEST(thread_free_only_flush)
{
	free_elsewhere(1);
}

TEST(thread_free_only_exit)
{
	free_elsewhere(0);
}

/*
 * A thread-key destructor of the caller's that frees mbufs after the
 * pools' own destructor ran (keys made later run later, as a reader's
 * clusters do in input.c): the cache reserved again by that free must be
 * given back too, or each such thread leaves a cache's worth reserved and
 * the pools grow by it.
 */
static pthread_key_t late_key;

static void
late_free(void *arg)
{
	m_freem(arg);
}

static void *
late_free_thread(void *arg)
{
	struct mbuf *m;

	(void)arg;
	m = m_getcl(MT_DATA, MJUMTLSBYTES);
	if (m != NULL)
		pthread_setspecific(late_key, m);
	return NULL;
}

TEST(thread_key_frees_after_pools)
{
	struct mbuf_pool_stats st0, st1;
	pthread_t tid;
	int i;

	/* The pools' key exists before this one, so its destructor runs
	 * first, whichever tests ran before. */
	m_free(m_get(MT_DATA));
	REQUIRE(pthread_key_create(&late_key, late_free) == 0);
	/* One thread first: it may grow the pools to their working set. */
	REQUIRE(pthread_create(&tid, NULL, late_free_thread, NULL) == 0);
	pthread_join(tid, NULL);
	mbuf_pool_stats(&st0);
	for (i = 0; i < 8; i++) {
		REQUIRE(pthread_create(&tid, NULL, late_free_thread,
		    NULL) == 0);
		pthread_join(tid, NULL);
	}
	mbuf_pool_stats(&st1);
	CHECK_EQ(st1.clusters_total, st0.clusters_total);
	CHECK_EQ(st1.mbufs_total, st0.mbufs_total);
	CHECK_EQ(st1.clusters_free, st1.clusters_total - (st0.clusters_total -
	    st0.clusters_free));
	pthread_key_delete(late_key);
}

int
main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
