/*
 * Engine counters.  They live in one struct uktls_stats_region, which is
 * either process-private or, when publishing is on (UKTLS_STATS=1 or
 * uktls_config.publish_stats), a shared-memory object /uktls.<pid> that
 * `uktls stat` and uktls_get_stats_pid() read from another process.  All
 * fields are updated with relaxed atomics and read without locks: no count
 * is ever lost, but a set of values is not a snapshot.  No field ever holds
 * key material.
 */
#ifndef UKTLS_STATS_H
#define UKTLS_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define UKTLS_STATS_MAGIC 0x756b746c73737473ULL /* "uktlssts" */
#define UKTLS_STATS_VERSION 3
#define UKTLS_STATS_MAXWQ 256
/* Counter slots: one per thread that counts, up to this many at once. */
#define UKTLS_STATS_NSLOTS 64

/*
 * The counters that only ever add up (KTLS_COUNT).  Each thread adds to its
 * own slot, in its own cache lines, the way FreeBSD's counter(9) keeps one
 * per CPU: a record decrypted on one CPU does not pull a line from another,
 * and a single writer needs no locked instruction.  A value is the sum over
 * the slots.  Slot 0 is shared by threads that found none free (and by a
 * thread's last counts as it exits); it is added to atomically.
 */
struct uktls_stats_counters {
	atomic_uint_least64_t sockets_enabled, sockets_active;
	atomic_uint_least64_t records_decrypted, bytes_decrypted;
	atomic_uint_least64_t bytes_received;
	atomic_uint_least64_t err_bad_tag, err_bad_header, err_bad_length;
	atomic_uint_least64_t err_truncated, err_nomem, records_cancelled;
	atomic_uint_least64_t records_split;
	atomic_uint_least64_t wq_enqueued;
	atomic_uint_least64_t pool_mbufs_total, pool_mbufs_free;
	atomic_uint_least64_t pool_clusters_total, pool_clusters_free;
	atomic_uint_least64_t pool_bytes;
} __attribute__((aligned(64)));

struct uktls_stats_region {
	uint64_t magic;
	uint32_t version;
	uint32_t size;
	int32_t pid;
	atomic_uint_least32_t nwq;  /* set once the engine runs */
	atomic_uint_least32_t workers;
	atomic_uint_least32_t input_threads;
	char backend[32];           /* written before the region is shared */
	atomic_uint_least64_t wq_depth_max;
	atomic_uint_least64_t wq_depth[UKTLS_STATS_MAXWQ];
	struct uktls_stats_counters slot[UKTLS_STATS_NSLOTS];
};

/* The region in use; never NULL. */
extern struct uktls_stats_region *_Atomic ktls_stats;

/* This thread's slot; -1 until it first counts. */
extern __thread int ktls_stats_slot_idx
    __attribute__((tls_model("initial-exec")));
int ktls_stats_slot_claim(void);

static inline struct uktls_stats_counters *
ktls_stats_slot(int *shared)
{
	int i = ktls_stats_slot_idx;

	if (__builtin_expect(i < 0, 0))
		i = ktls_stats_slot_claim();
	*shared = i == 0;
	return &atomic_load_explicit(&ktls_stats, memory_order_relaxed)->
	    slot[i];
}

static inline void
ktls_stats_add(atomic_uint_least64_t *c, uint64_t n, int shared)
{
	if (shared)
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
	else
		atomic_store_explicit(c, atomic_load_explicit(c,
		    memory_order_relaxed) + n, memory_order_relaxed);
}

/* Add n to a counter (n may be a negative value cast to uint64_t). */
#define KTLS_COUNT(field, n)                                               \
	do {                                                               \
		int shared_;                                               \
		struct uktls_stats_counters *slot_ =                       \
		    ktls_stats_slot(&shared_);                             \
		ktls_stats_add(&slot_->field, (uint64_t)(n), shared_);     \
	} while (0)
#define KTLS_SET(field, v)                                                 \
	atomic_store_explicit(&atomic_load_explicit(&ktls_stats,           \
	    memory_order_relaxed)->field, (v), memory_order_relaxed)
#define KTLS_GET(r, field)                                                 \
	atomic_load_explicit(&(r)->field, memory_order_relaxed)

/* The sum of a KTLS_COUNT counter over r's slots. */
uint64_t ktls_stats_sum(const struct uktls_stats_region *r, size_t off);
#define KTLS_SUM(r, field)                                                 \
	ktls_stats_sum((r), offsetof(struct uktls_stats_counters, field))

/* In a child after fork(): counters start again, private and at zero. */
void ktls_stats_fork_child(void);

/*
 * Move the counters into a shared-memory object named after the process,
 * removed at exit.  Called once when the engine starts.  0 or an errno.
 */
int ktls_stats_publish(void);

#endif /* UKTLS_STATS_H */
