/*
 * mbufs: the buffers that carry received bytes from the socket, through
 * decryption, to the reader, in the manner of FreeBSD's sys/mbuf.h.
 *
 * An mbuf holds up to MLEN bytes inline, or points into a reference-counted
 * cluster of MCLBYTES or MJUMTLSBYTES.  Mbufs are linked into chains through
 * m_next (the bytes of one record or stream) and chains into lists of
 * records through m_nextpkt.
 *
 * All mbufs and clusters come from pools that grow in slabs and never give
 * memory back: the steady state takes nothing from malloc.  Each thread keeps
 * a small cache of free objects in front of the shared free lists, so the
 * hot path takes no lock.  The pools may be capped (mbuf_pool_setmax); past
 * the cap an allocation fails and the caller reports ENOBUFS.
 *
 * Ownership: an mbuf belongs to exactly one chain or one thread at a time.
 * A cluster may be shared by several mbufs (m_split); each shares a disjoint
 * range of its bytes, and only an mbuf whose cluster is not shared may write
 * past its own data (M_TRAILINGSPACE is 0 otherwise).
 */
#ifndef UKTLS_MBUF_H
#define UKTLS_MBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MSIZE 256          /* size of an mbuf, header included */
#define MCLBYTES 2048      /* small cluster */
/*
 * Large cluster: one whole TLS record as it comes off the wire.  The
 * largest record TLS 1.3 allows is 2^14 + 256 bytes of ciphertext after a
 * 5-byte header (16645 bytes); rounded up to a multiple of 512.  A 16 KiB
 * cluster would cut every full record in two (a full TLS 1.3 AES-GCM record
 * is 16406 bytes), which costs the split, a second mbuf and the cipher's
 * pass over the cut; the input threads lay each record into one cluster of
 * this size (input_layout).
 */
#define MJUMTLSBYTES 16896

/* m_flags */
#define M_EXT 0x0001      /* data lives in a cluster (m_ext) */
#define M_EOR 0x0002      /* last mbuf of a record */
#define M_NOTREADY 0x0004 /* encrypted, not yet readable */
#define M_RDONLY 0x0008   /* data must not be written (not ours to decrypt) */

/* m_type */
#define MT_NOTMBUF 0 /* on a free list */
#define MT_DATA 1
#define MT_CONTROL 2

struct mcluster {
	atomic_uint cl_refcnt;
	uint32_t cl_size; /* MCLBYTES or MJUMTLSBYTES */
	struct mcluster *cl_nextfree;
	uint32_t cl_pad[12]; /* keep cl_buf 64-byte aligned */
	char cl_buf[];
};

struct mbuf {
	struct mbuf *m_next;    /* next mbuf of this chain */
	struct mbuf *m_nextpkt; /* next record */
	char *m_data;           /* first byte of data */
	uint32_t m_len;         /* bytes of data in this mbuf */
	uint16_t m_flags;
	uint16_t m_type;
	struct mcluster *m_ext; /* cluster when M_EXT */
	char m_dat[];           /* inline data, MLEN bytes */
};

#define MHLEN_HDR 40
#define MLEN ((int)(MSIZE - MHLEN_HDR))

_Static_assert(sizeof(struct mbuf) == MHLEN_HDR, "mbuf header size");
_Static_assert(sizeof(struct mcluster) == 64, "cluster header size");

#define mtod(m, t) ((t)((m)->m_data))

/* Buffer start and size of m's storage, inline or cluster. */
static inline char *
m_bufstart(const struct mbuf *m)
{
	return (m->m_flags & M_EXT) != 0 ? m->m_ext->cl_buf :
	    (char *)(uintptr_t)m->m_dat;
}

static inline uint32_t
m_bufsize(const struct mbuf *m)
{
	return (m->m_flags & M_EXT) != 0 ? m->m_ext->cl_size :
	    (uint32_t)MLEN;
}

/* True when m alone references its storage, so it may write to it. */
static inline int
M_WRITABLE(const struct mbuf *m)
{
	if ((m->m_flags & M_RDONLY) != 0)
		return 0;
	return (m->m_flags & M_EXT) == 0 ||
	    atomic_load_explicit(&m->m_ext->cl_refcnt,
		memory_order_acquire) == 1;
}

/* Bytes that may be appended after m's data. */
static inline uint32_t
M_TRAILINGSPACE(const struct mbuf *m)
{
	if (!M_WRITABLE(m))
		return 0;
	return (uint32_t)(m_bufstart(m) + m_bufsize(m) -
	    (m->m_data + m->m_len));
}

/* Pool setup and accounting. */
struct mbuf_pool_stats {
	uint64_t mbufs_total, mbufs_free;
	uint64_t clusters_total, clusters_free;
	uint64_t bytes;     /* memory held by all pools */
	uint64_t slab_allocs; /* times a pool grew (calls to malloc) */
};

void mbuf_pool_setmax(size_t bytes);
/*
 * Reserve (n > 0) or release (n < 0) room for n mbufs and large clusters:
 * a socket reserves its worst-case working set when it is enabled, so that
 * the pools hold it before the data path needs it.
 */
void mbuf_pool_reserve(int64_t mbufs, int64_t clusters);
void mbuf_pool_stats(struct mbuf_pool_stats *st);
/*
 * Reserve this thread's caches in every pool now (engine threads call it
 * when they start), rather than at the thread's first use of each pool.
 */
void mbuf_thread_init(void);
/* Give this thread's cached objects back to the shared lists. */
void mbuf_thread_flush(void);

/*
 * fork() while other threads may hold the pools' locks: prepare takes them
 * all in the forking thread, parent gives them back, child makes them
 * usable again in the new process (where only the forking thread exists;
 * what other threads held in their caches is simply left behind).
 */
void mbuf_fork_prepare(void);
void mbuf_fork_parent(void);
void mbuf_fork_child(void);

/*
 * Allocation.  m_get returns an mbuf with inline storage, m_getcl one with a
 * cluster of the given size (MCLBYTES or MJUMTLSBYTES).  Both return NULL when
 * the pool cap is reached or malloc fails; the caller turns that into
 * ENOBUFS.  New mbufs are empty (m_len 0, data at the start of storage).
 */
struct mbuf *m_get(int type);
struct mbuf *m_getcl(int type, uint32_t size);

/* Free one mbuf and return its m_next; free a whole m_next chain. */
struct mbuf *m_free(struct mbuf *m);
void m_freem(struct mbuf *m);

/* Bytes in the chain m (following m_next). */
uint32_t m_length(const struct mbuf *m, struct mbuf **last);

/* Copy len bytes at offset off of chain m into cp.  The range must exist. */
void m_copydata(const struct mbuf *m, uint32_t off, uint32_t len, void *cp);

/* Copy len bytes from cp into chain m at offset off (the range must exist). */
void m_copyback(struct mbuf *m, uint32_t off, uint32_t len, const void *cp);

/*
 * Trim req_len bytes from the head of the chain (req_len > 0) or from its
 * tail (req_len < 0).  Emptied mbufs stay in the chain with m_len 0.
 */
void m_adj(struct mbuf *m, int req_len);

/*
 * Split chain m after len bytes: m keeps the first len bytes and the rest is
 * returned as a new chain.  When the split falls inside a cluster both halves
 * share it (no copy); inside inline storage the tail is copied.  Returns NULL
 * (m unchanged) when an mbuf cannot be allocated, or when len is the whole
 * chain (nothing to return: *err is 0 then, ENOBUFS on failure).
 */
struct mbuf *m_split(struct mbuf *m, uint32_t len, int *err);

/* Take one more reference to cl, for another mbuf over its bytes; the
 * caller holds one. */
void mcluster_ref(struct mcluster *cl);

/*
 * Append len bytes from cp to the tail of chain m, into trailing space and
 * then new clusters.  m must not be NULL: the new mbufs take its type.
 * Returns 0 or ENOBUFS (what fitted stays appended and *done says how
 * much).
 */
int m_append(struct mbuf *m, uint32_t len, const void *cp, uint32_t *done);

/* Walk the chain and abort if an mbuf's data escapes its storage. */
void m_sanity(const struct mbuf *m, const char *where);

#endif /* UKTLS_MBUF_H */
