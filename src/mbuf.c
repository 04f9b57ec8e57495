/*
 * mbufs and clusters (the counterpart of FreeBSD's uipc_mbuf.c and the mbuf
 * zones of kern_mbuf.c).
 *
 * Three pools hold mbufs, 2 KiB clusters and large clusters (MJUMTLSBYTES,
 * one whole TLS record).  A pool grows by a slab at a time: one malloc,
 * every page written once so that it is faulted in before it is used, and
 * never freed.  Free objects sit on the
 * pool's stack (under its mutex) or in a per-thread cache of up to
 * cache_max objects, which the thread fills and drains half a cache at a
 * time so that the common allocation and free take no lock.  A thread's
 * cache goes back to the pool when the thread exits.
 *
 * The pool's stack is an array of pointers, like the buckets of FreeBSD's
 * UMA, not a list linked through the free objects: moving half a cache
 * between a thread and the pool copies pointers and touches none of the
 * objects.  A linked list would read each object's first line as it pops
 * it, a cache miss per object on a line that the thread which freed it,
 * often on another CPU, wrote last.
 *
 * Caches hide objects from the other threads, so a pool must hold the
 * working set plus what all caches may hold at once, or it would keep
 * growing, slowly, each time the caches happen to hold more than ever
 * before.  Each thread therefore reserves its cache's capacity in a pool
 * the first time it uses that pool, and gives the reservation back when it
 * exits; the pool grows only when the live reservations exceed their
 * previous peak.  After warm-up the data path takes nothing from malloc.
 */
#include "mbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kassert.h"
#include "stats.h"

#ifdef UKTLS_TEST_HOOKS
int (*volatile uktls_fault_hook)(const char *site);
#endif

#define MCACHE_MAX 64 /* the largest cache_max */

/*
 * Under AddressSanitizer a free object is poisoned, so that a use after
 * m_free is caught even though the pool never gives memory back.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define MPOOL_POISON(o, n) ASAN_POISON_MEMORY_REGION((o), (n))
#define MPOOL_UNPOISON(o, n) ASAN_UNPOISON_MEMORY_REGION((o), (n))
#else
#define MPOOL_POISON(o, n) ((void)(o), (void)(n))
#define MPOOL_UNPOISON(o, n) ((void)(o), (void)(n))
#endif

enum { POOL_MBUF, POOL_CL2K, POOL_CL16K, POOL_COUNT };

struct mpool {
	pthread_mutex_t mtx;
	void **stack;         /* free objects, nfree of them */
	uint64_t stack_cap;   /* room in stack: never less than total */
	uint64_t total;       /* objects owned by the pool */
	uint64_t nfree;       /* objects on the stack */
	size_t objsize;
	unsigned int slab_n;  /* objects added per growth */
	const char *name;
	unsigned int cache_max; /* per-thread cache capacity */
	uint64_t reserved;    /* cache capacity of live threads */
	uint64_t reserved_peak;
};

static struct mpool pools[POOL_COUNT] = {
	[POOL_MBUF] = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, MSIZE, 64,
	    "mbuf", 64, 0, 0 },
	[POOL_CL2K] = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0,
	    sizeof(struct mcluster) + MCLBYTES, 16, "cluster 2k", 32, 0, 0 },
	[POOL_CL16K] = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0,
	    sizeof(struct mcluster) + MJUMTLSBYTES, 4, "cluster tls", 16, 0,
	    0 },
};

/* Memory held by all pools and the cap on it (0: none).  Under slab_mtx. */
static pthread_mutex_t slab_mtx = PTHREAD_MUTEX_INITIALIZER;
static size_t pool_bytes;
static size_t pool_max;
static uint64_t slab_allocs;

struct mcache {
	void *items[MCACHE_MAX];
	int n;
};

/* A thread's caches, and which pools it has reserved a cache's worth in. */
struct mthread {
	struct mcache mt_cache[POOL_COUNT];
	unsigned int mt_reserved; /* bit per pool */
	int mt_registered;
};
static __thread struct mthread mthread_storage;
/*
 * Its address, in the initial-exec TLS block.  In the shared library an
 * access to mthread_storage itself is a call to __tls_get_addr, several for
 * each mbuf freed; this is one load.  Eight bytes, so that the library can
 * still be loaded with dlopen().
 */
static __thread struct mthread *mthread_self
    __attribute__((tls_model("initial-exec")));

static inline struct mthread *
mthread_get(void)
{
	struct mthread *t = mthread_self;

	if (__predict_false(t == NULL))
		t = mthread_self = &mthread_storage;
	return t;
}
static pthread_key_t mcache_key;
static pthread_once_t mcache_once = PTHREAD_ONCE_INIT;

void
mbuf_pool_setmax(size_t bytes)
{
	pthread_mutex_lock(&slab_mtx);
	pool_max = bytes;
	pthread_mutex_unlock(&slab_mtx);
}

void
mbuf_pool_stats(struct mbuf_pool_stats *st)
{
	int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < POOL_COUNT; i++) {
		pthread_mutex_lock(&pools[i].mtx);
		if (i == POOL_MBUF) {
			st->mbufs_total = pools[i].total;
			st->mbufs_free = pools[i].nfree;
		} else {
			st->clusters_total += pools[i].total;
			st->clusters_free += pools[i].nfree;
		}
		pthread_mutex_unlock(&pools[i].mtx);
	}
	pthread_mutex_lock(&slab_mtx);
	st->bytes = pool_bytes;
	st->slab_allocs = slab_allocs;
	pthread_mutex_unlock(&slab_mtx);
}

/* Mirror a change of p's counts in the engine's counters. */
static void
mpool_publish(const struct mpool *p, int64_t dtotal, int64_t dfree)
{
	if (p == &pools[POOL_MBUF]) {
		KTLS_COUNT(pool_mbufs_total, (uint64_t)dtotal);
		KTLS_COUNT(pool_mbufs_free, (uint64_t)dfree);
	} else {
		KTLS_COUNT(pool_clusters_total, (uint64_t)dtotal);
		KTLS_COUNT(pool_clusters_free, (uint64_t)dfree);
	}
}

/*
 * Grow pool p by one slab.  Called with p->mtx held.  The slab's memory is
 * written in full here so that no page fault happens later on the data path.
 */
static int
mpool_grow(struct mpool *p)
{
	size_t bytes = p->objsize * p->slab_n;
	char *slab;
	void **stack;
	uint64_t cap;
	unsigned int i;

	/*
	 * Room on the stack for every object first, so that a free never
	 * finds it full.  It doubles: growth stays rare.
	 */
	if (p->stack_cap < p->total + p->slab_n) {
		cap = p->stack_cap != 0 ? 2 * p->stack_cap : 256;
		while (cap < p->total + p->slab_n)
			cap *= 2;
		stack = UKTLS_FAULT("mbuf stack") ? NULL :
		    realloc(p->stack, cap * sizeof(*stack));
		if (stack == NULL)
			return ENOBUFS;
		p->stack = stack;
		p->stack_cap = cap;
	}

	pthread_mutex_lock(&slab_mtx);
	if (pool_max != 0 && pool_bytes + bytes > pool_max) {
		pthread_mutex_unlock(&slab_mtx);
		return ENOBUFS;
	}
	pool_bytes += bytes;
	pthread_mutex_unlock(&slab_mtx);

	slab = UKTLS_FAULT("mbuf slab") ? NULL : aligned_alloc(64, bytes);
	pthread_mutex_lock(&slab_mtx);
	if (slab == NULL)
		pool_bytes -= bytes;
	else
		slab_allocs++;
	pthread_mutex_unlock(&slab_mtx);
	if (slab == NULL)
		return ENOBUFS;
	memset(slab, 0, bytes);
	/* Pushed last first, so that the slab is handed out in order. */
	for (i = p->slab_n; i-- > 0;) {
		void *o = slab + i * p->objsize;

		p->stack[p->nfree++] = o;
		MPOOL_POISON(o, p->objsize);
	}
	p->total += p->slab_n;
	mpool_publish(p, (int64_t)p->slab_n, (int64_t)p->slab_n);
	KTLS_COUNT(pool_bytes, bytes);
	return 0;
}

static void
mcache_flush_pool(int pi, int keep)
{
	struct mcache *c = &mthread_get()->mt_cache[pi];
	struct mpool *p = &pools[pi];

	if (c->n <= keep)
		return;
	pthread_mutex_lock(&p->mtx);
	mpool_publish(p, 0, c->n - keep);
	KASSERT(p->nfree + (uint64_t)(c->n - keep) <= p->stack_cap,
	    ("mcache_flush_pool: %s stack of %ju holds %ju, %d more",
	    p->name, (uintmax_t)p->stack_cap, (uintmax_t)p->nfree,
	    c->n - keep));
	memcpy(&p->stack[p->nfree], &c->items[keep],
	    (size_t)(c->n - keep) * sizeof(void *));
	p->nfree += (uint64_t)(c->n - keep);
	c->n = keep;
	pthread_mutex_unlock(&p->mtx);
}

void
mbuf_fork_prepare(void)
{
	int i;

	/* The order of mpool_grow and mpool_reserve: pool, then slab_mtx. */
	for (i = 0; i < POOL_COUNT; i++)
		pthread_mutex_lock(&pools[i].mtx);
	pthread_mutex_lock(&slab_mtx);
}

void
mbuf_fork_parent(void)
{
	int i;

	pthread_mutex_unlock(&slab_mtx);
	for (i = POOL_COUNT - 1; i >= 0; i--)
		pthread_mutex_unlock(&pools[i].mtx);
}

void
mbuf_fork_child(void)
{
	int i;

	pthread_mutex_init(&slab_mtx, NULL);
	for (i = 0; i < POOL_COUNT; i++)
		pthread_mutex_init(&pools[i].mtx, NULL);
}

void
mbuf_thread_flush(void)
{
	int i;

	for (i = 0; i < POOL_COUNT; i++)
		mcache_flush_pool(i, 0);
}

static void
mcache_destructor(void *arg)
{
	struct mthread *t = mthread_get();
	int i;

	(void)arg;
	mbuf_thread_flush();
	for (i = 0; i < POOL_COUNT; i++) {
		if ((t->mt_reserved & (1u << i)) == 0)
			continue;
		pthread_mutex_lock(&pools[i].mtx);
		pools[i].reserved -= pools[i].cache_max;
		pthread_mutex_unlock(&pools[i].mtx);
	}
	t->mt_reserved = 0;
	/*
	 * Keys' destructors run in the order the keys were made, so one made
	 * later (a reader's clusters, input.c) may free mbufs after this one
	 * ran, which reserves a cache again.  Unregistered, that reservation
	 * registers the key again, and the thread's exit runs this destructor
	 * once more to give it back.
	 */
	t->mt_registered = 0;
}

static void
mcache_key_init(void)
{
	if (pthread_key_create(&mcache_key, mcache_destructor) != 0)
		uktls_panic("mcache_key_init: pthread_key_create failed");
}

/* Arrange for this thread's caches to be returned when it exits. */
static void
mcache_register(void)
{
	pthread_once(&mcache_once, mcache_key_init);
	/* Any non-NULL value makes the destructor run at thread exit. */
	pthread_setspecific(mcache_key, mthread_get());
	mthread_get()->mt_registered = 1;
}


/*
 * Memory the pools may take eagerly for reservations.  Past it they still
 * grow, but on demand: a process with thousands of sockets does not hold
 * every socket's worst case.
 */
#define MBUF_PREALLOC_MAX (2UL << 20)

/* Add n (may be negative) to pool p's reservations; grow past the peak. */
static void
mpool_reserve(struct mpool *p, int64_t n)
{
	uint64_t before;
	size_t bytes;

	pthread_mutex_lock(&p->mtx);
	p->reserved += (uint64_t)n;
	if (n > 0 && p->reserved > p->reserved_peak) {
		before = p->total;
		for (;;) {
			pthread_mutex_lock(&slab_mtx);
			bytes = pool_bytes;
			pthread_mutex_unlock(&slab_mtx);
			if (p->total - before >= p->reserved - p->reserved_peak ||
			    bytes >= MBUF_PREALLOC_MAX || mpool_grow(p) != 0)
				break;
		}
		p->reserved_peak = p->reserved;
	}
	pthread_mutex_unlock(&p->mtx);
}

void
mbuf_pool_reserve(int64_t mbufs, int64_t clusters)
{
	mpool_reserve(&pools[POOL_MBUF], mbufs);
	mpool_reserve(&pools[POOL_CL16K], clusters);
}

/*
 * First use of pool pi by this thread: reserve its cache's capacity, growing
 * the pool if the live reservations pass their peak.  A failed growth (the
 * cap) is not an error: allocations then fail later and are reported there.
 */
static void
mcache_reserve(int pi)
{
	struct mthread *t = mthread_get();

	if (!t->mt_registered)
		mcache_register();
	t->mt_reserved |= 1u << pi;
	mpool_reserve(&pools[pi], (int64_t)pools[pi].cache_max);
}

void
mbuf_thread_init(void)
{
	int i;

	for (i = 0; i < POOL_COUNT; i++)
		if ((mthread_get()->mt_reserved & (1u << i)) == 0)
			mcache_reserve(i);
}

static void *
mpool_alloc(int pi)
{
	struct mthread *t = mthread_get();
	struct mcache *c = &t->mt_cache[pi];
	struct mpool *p = &pools[pi];
	void *obj;
	int n;

	if (__predict_false(UKTLS_FAULT(p->name)))
		return NULL;
	if (__predict_true(c->n > 0)) {
		obj = c->items[--c->n];
		MPOOL_UNPOISON(obj, p->objsize);
		return obj;
	}
	if ((t->mt_reserved & (1u << pi)) == 0)
		mcache_reserve(pi);
	pthread_mutex_lock(&p->mtx);
	if (p->nfree == 0 && mpool_grow(p) != 0) {
		pthread_mutex_unlock(&p->mtx);
		return NULL;
	}
	/* Half a cache, or what there is: pointers only (see the top). */
	n = p->nfree < p->cache_max / 2 ? (int)p->nfree :
	    (int)p->cache_max / 2;
	p->nfree -= (uint64_t)n;
	memcpy(&c->items[c->n], &p->stack[p->nfree], (size_t)n *
	    sizeof(void *));
	c->n += n;
	mpool_publish(p, 0, -(int64_t)n);
	pthread_mutex_unlock(&p->mtx);
	obj = c->items[--c->n];
	MPOOL_UNPOISON(obj, p->objsize);
	return obj;
}

static void
mpool_free(int pi, void *obj)
{
	struct mthread *t = mthread_get();
	struct mcache *c = &t->mt_cache[pi];

	if (__predict_false((t->mt_reserved & (1u << pi)) == 0))
		mcache_reserve(pi);
	if (__predict_false(c->n == (int)pools[pi].cache_max))
		mcache_flush_pool(pi, (int)pools[pi].cache_max / 2);
	MPOOL_POISON(obj, pools[pi].objsize);
	c->items[c->n++] = obj;
}

struct mbuf *
m_get(int type)
{
	struct mbuf *m;

	m = mpool_alloc(POOL_MBUF);
	if (m == NULL)
		return NULL;
	m->m_next = NULL;
	m->m_nextpkt = NULL;
	m->m_data = m->m_dat;
	m->m_len = 0;
	m->m_flags = 0;
	m->m_type = (uint16_t)type;
	m->m_ext = NULL;
	return m;
}

struct mbuf *
m_getcl(int type, uint32_t size)
{
	struct mcluster *cl;
	struct mbuf *m;
	int pi;

	KASSERT(size == MCLBYTES || size == MJUMTLSBYTES,
	    ("m_getcl: bad cluster size %u", size));
	pi = size == MCLBYTES ? POOL_CL2K : POOL_CL16K;
	m = m_get(type);
	if (m == NULL)
		return NULL;
	cl = mpool_alloc(pi);
	if (cl == NULL) {
		m->m_type = MT_NOTMBUF;
		mpool_free(POOL_MBUF, m);
		return NULL;
	}
	atomic_init(&cl->cl_refcnt, 1);
	cl->cl_size = size;
	cl->cl_nextfree = NULL;
	m->m_ext = cl;
	m->m_flags = M_EXT;
	m->m_data = cl->cl_buf;
	return m;
}

/*
 * Drop a reference to cl.  A count of 1 is ours alone: no other mbuf can
 * reach the cluster to change it, so the last reference is dropped without
 * a locked instruction (which costs more than the rest of m_free).  The
 * acquire load pairs with the release of whoever dropped the others, so
 * that their accesses come before the cluster's reuse.
 */
static void
mcluster_release(struct mcluster *cl)
{
	if (atomic_load_explicit(&cl->cl_refcnt, memory_order_acquire) == 1)
		/* 0 marks it free for m_sanity. */
		atomic_store_explicit(&cl->cl_refcnt, 0, memory_order_relaxed);
	else if (atomic_fetch_sub_explicit(&cl->cl_refcnt, 1,
	    memory_order_acq_rel) != 1)
		return;
	mpool_free(cl->cl_size == MCLBYTES ? POOL_CL2K : POOL_CL16K, cl);
}

void
mcluster_ref(struct mcluster *cl)
{
	/* As in mcluster_release: a count of 1 is the caller's own. */
	if (atomic_load_explicit(&cl->cl_refcnt, memory_order_acquire) == 1)
		atomic_store_explicit(&cl->cl_refcnt, 2, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&cl->cl_refcnt, 1,
		    memory_order_relaxed);
}

struct mbuf *
m_free(struct mbuf *m)
{
	struct mbuf *n = m->m_next;

	KASSERT(m->m_type != MT_NOTMBUF, ("m_free: %p already free", m));
	if ((m->m_flags & M_EXT) != 0)
		mcluster_release(m->m_ext);
	m->m_type = MT_NOTMBUF;
	mpool_free(POOL_MBUF, m);
	return n;
}

void
m_freem(struct mbuf *m)
{
	while (m != NULL)
		m = m_free(m);
}

uint32_t
m_length(const struct mbuf *m, struct mbuf **last)
{
	const struct mbuf *l = NULL;
	uint32_t len = 0;

	for (; m != NULL; m = m->m_next) {
		len += m->m_len;
		l = m;
	}
	if (last != NULL)
		*last = (struct mbuf *)(uintptr_t)l;
	return len;
}

void
m_copydata(const struct mbuf *m, uint32_t off, uint32_t len, void *cp)
{
	char *dst = cp;
	uint32_t n;

	while (m != NULL && off >= m->m_len) {
		off -= m->m_len;
		m = m->m_next;
	}
	while (len > 0) {
		KASSERT(m != NULL, ("m_copydata: chain too short"));
		n = m->m_len - off;
		if (n > len)
			n = len;
		memcpy(dst, m->m_data + off, n);
		dst += n;
		len -= n;
		off = 0;
		m = m->m_next;
	}
}

void
m_copyback(struct mbuf *m, uint32_t off, uint32_t len, const void *cp)
{
	const char *src = cp;
	uint32_t n;

	while (m != NULL && off >= m->m_len) {
		off -= m->m_len;
		m = m->m_next;
	}
	while (len > 0) {
		KASSERT(m != NULL, ("m_copyback: chain too short"));
		n = m->m_len - off;
		if (n > len)
			n = len;
		memcpy(m->m_data + off, src, n);
		src += n;
		len -= n;
		off = 0;
		m = m->m_next;
	}
}

void
m_adj(struct mbuf *mp, int req_len)
{
	struct mbuf *m;
	uint32_t len, total;

	if (mp == NULL)
		return;
	if (req_len >= 0) {
		len = (uint32_t)req_len;
		for (m = mp; m != NULL && len > 0; m = m->m_next) {
			if (m->m_len <= len) {
				len -= m->m_len;
				m->m_data += m->m_len;
				m->m_len = 0;
			} else {
				m->m_data += len;
				m->m_len -= len;
				len = 0;
			}
		}
		return;
	}
	/* Trim from the tail: keep the first total - len bytes. */
	len = (uint32_t)-(long)req_len;
	total = m_length(mp, NULL);
	total = len >= total ? 0 : total - len;
	for (m = mp; m != NULL; m = m->m_next) {
		if (m->m_len >= total) {
			m->m_len = total;
			total = 0;
		} else
			total -= m->m_len;
	}
}

struct mbuf *
m_split(struct mbuf *m0, uint32_t len, int *err)
{
	struct mbuf *m, *n;
	uint32_t off = len;

	*err = 0;
	KASSERT(len > 0, ("m_split: zero length"));
	for (m = m0; m != NULL && off > m->m_len; m = m->m_next)
		off -= m->m_len;
	if (m == NULL)
		return NULL;
	if (off == m->m_len) {
		/* The split falls on an mbuf boundary: no new mbuf. */
		n = m->m_next;
		m->m_next = NULL;
		if (n != NULL && (m->m_flags & M_EOR) != 0) {
			m->m_flags &= ~M_EOR;
			n->m_flags |= M_EOR;
		}
		return n;
	}
	if ((m->m_flags & M_EXT) != 0) {
		n = m_get(m->m_type);
		if (n == NULL)
			goto nobufs;
		mcluster_ref(m->m_ext);
		n->m_ext = m->m_ext;
		n->m_flags = M_EXT;
		n->m_data = m->m_data + off;
	} else {
		n = m_get(m->m_type);
		if (n == NULL)
			goto nobufs;
		memcpy(n->m_dat, m->m_data + off, m->m_len - off);
	}
	n->m_len = m->m_len - off;
	n->m_flags |= m->m_flags & (M_EOR | M_NOTREADY | M_RDONLY);
	m->m_flags &= ~M_EOR;
	m->m_len = off;
	n->m_next = m->m_next;
	m->m_next = NULL;
	return n;
nobufs:
	*err = ENOBUFS;
	return NULL;
}

int
m_append(struct mbuf *m0, uint32_t len, const void *cp, uint32_t *done)
{
	const char *src = cp;
	struct mbuf *m, *n;
	uint32_t space, n_done = 0;
	int error = 0;

	KASSERT(m0 != NULL, ("m_append: no chain"));
	m_length(m0, &m);
	while (len > 0) {
		space = M_TRAILINGSPACE(m);
		if (space == 0) {
			n = len > MCLBYTES ? m_getcl(m->m_type, MJUMTLSBYTES) :
			    len > (uint32_t)MLEN ?
			    m_getcl(m->m_type, MCLBYTES) : m_get(m->m_type);
			if (n == NULL) {
				error = ENOBUFS;
				goto out;
			}
			n->m_flags |= m->m_flags & (M_NOTREADY | M_EOR);
			m->m_flags &= (uint16_t)~M_EOR;
			m->m_next = n;
			m = n;
			continue;
		}
		if (space > len)
			space = len;
		memcpy(m->m_data + m->m_len, src, space);
		m->m_len += space;
		src += space;
		len -= space;
		n_done += space;
	}
out:
	if (done != NULL)
		*done = n_done;
	return error;
}

void
m_sanity(const struct mbuf *m, const char *where)
{
	for (; m != NULL; m = m->m_next) {
		const char *start = m_bufstart(m);

		if (m->m_type == MT_NOTMBUF)
			uktls_panic("%s: freed mbuf %p in chain", where,
			    (const void *)m);
		if (m->m_data < start ||
		    m->m_data + m->m_len > start + m_bufsize(m))
			uktls_panic("%s: mbuf %p data escapes its storage",
			    where, (const void *)m);
		if ((m->m_flags & M_EXT) != 0 &&
		    atomic_load(&m->m_ext->cl_refcnt) == 0)
			uktls_panic("%s: mbuf %p on a free cluster", where,
			    (const void *)m);
	}
}
