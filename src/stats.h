/*
 * Engine counters.  They live in one struct uktls_stats_region, which is
 * either process-private or, when publishing is on (UKTLS_STATS=1 or
 * uktls_config.publish_stats), a shared-memory object /uktls.<pid> that
 * `uktls stat` and uktls_get_stats_pid() read from another process.  All
 * fields are updated with relaxed atomics and read without locks: each value
 * is exact, a set of values is not a snapshot.  No field ever holds key
 * material.
 */
#ifndef UKTLS_STATS_H
#define UKTLS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define UKTLS_STATS_MAGIC 0x756b746c73737473ULL /* "uktlssts" */
#define UKTLS_STATS_VERSION 1
#define UKTLS_STATS_MAXWQ 256

struct uktls_stats_region {
	uint64_t magic;
	uint32_t version;
	uint32_t size;
	int32_t pid;
	atomic_uint_least32_t nwq;  /* set once the engine runs */
	atomic_uint_least32_t workers;
	atomic_uint_least32_t input_threads;
	char backend[32];           /* written before the region is shared */
	atomic_uint_least64_t sockets_enabled, sockets_active;
	atomic_uint_least64_t records_decrypted, bytes_decrypted;
	atomic_uint_least64_t bytes_received;
	atomic_uint_least64_t err_bad_tag, err_bad_header, err_bad_length;
	atomic_uint_least64_t err_truncated, err_nomem, records_cancelled;
	atomic_uint_least64_t wq_enqueued, wq_depth_max;
	atomic_uint_least64_t pool_mbufs_total, pool_mbufs_free;
	atomic_uint_least64_t pool_clusters_total, pool_clusters_free;
	atomic_uint_least64_t pool_bytes;
	atomic_uint_least64_t wq_depth[UKTLS_STATS_MAXWQ];
};

/* The region in use; never NULL. */
extern struct uktls_stats_region *_Atomic ktls_stats;

#define KTLS_COUNT(field, n)                                               \
	atomic_fetch_add_explicit(&atomic_load_explicit(&ktls_stats,       \
	    memory_order_relaxed)->field, (n), memory_order_relaxed)
#define KTLS_SET(field, v)                                                 \
	atomic_store_explicit(&atomic_load_explicit(&ktls_stats,           \
	    memory_order_relaxed)->field, (v), memory_order_relaxed)
#define KTLS_GET(r, field)                                                 \
	atomic_load_explicit(&(r)->field, memory_order_relaxed)

/*
 * Move the counters into a shared-memory object named after the process,
 * removed at exit.  Called once when the engine starts.  0 or an errno.
 */
int ktls_stats_publish(void);

#endif /* UKTLS_STATS_H */
