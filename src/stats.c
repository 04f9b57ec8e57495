/*
 * Engine counters: the region they live in, publishing it to other
 * processes, and reading it back (uktls_get_stats, uktls_get_stats_pid).
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "ktls.h"
#include "uktls.h"

static struct uktls_stats_region ktls_stats_private = {
	.magic = UKTLS_STATS_MAGIC,
	.version = UKTLS_STATS_VERSION,
	.size = sizeof(struct uktls_stats_region),
};

struct uktls_stats_region *_Atomic ktls_stats = &ktls_stats_private;

static char stats_name[64];

/*
 * Counter slots.  A thread claims one when it first counts and gives it back
 * when it exits; the next thread to claim it keeps adding to what it holds,
 * so sums never go back.  Slots 1 .. UKTLS_STATS_NSLOTS-1 have one writer
 * each; slot 0 is for everyone else.
 */
__thread int ktls_stats_slot_idx __attribute__((tls_model("initial-exec"))) =
    -1;
static pthread_mutex_t slot_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
static int slot_key_ok;
static uint8_t slot_free[UKTLS_STATS_NSLOTS]; /* returned slots, a stack */
static unsigned int slot_nfree;
static unsigned int slot_next = 1;            /* never handed out from here */

_Static_assert(UKTLS_STATS_NSLOTS <= 256, "slot numbers fit in a byte");

static void
slot_release(void *arg)
{
	unsigned int i = (unsigned int)(uintptr_t)arg;

	/* Whatever this thread counts from here (later destructors) goes to
	 * the shared slot: the slot may have a new owner at once. */
	ktls_stats_slot_idx = 0;
	if (i == 0 || i >= UKTLS_STATS_NSLOTS)
		return;
	pthread_mutex_lock(&slot_mtx);
	slot_free[slot_nfree++] = (uint8_t)i;
	pthread_mutex_unlock(&slot_mtx);
}

static void
slot_key_init(void)
{
	slot_key_ok = pthread_key_create(&slot_key, slot_release) == 0;
}

int
ktls_stats_slot_claim(void)
{
	unsigned int i = 0;

	pthread_once(&slot_once, slot_key_init);
	if (!slot_key_ok)
		goto out;
	pthread_mutex_lock(&slot_mtx);
	if (slot_nfree > 0)
		i = slot_free[--slot_nfree];
	else if (slot_next < UKTLS_STATS_NSLOTS)
		i = slot_next++;
	pthread_mutex_unlock(&slot_mtx);
	if (i != 0 && pthread_setspecific(slot_key, (void *)(uintptr_t)i) !=
	    0) {
		/* Without the key the slot would never come back. */
		slot_release((void *)(uintptr_t)i);
		i = 0;
	}
out:
	ktls_stats_slot_idx = (int)i;
	return (int)i;
}

uint64_t
ktls_stats_sum(const struct uktls_stats_region *r, size_t off)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < UKTLS_STATS_NSLOTS; i++)
		sum += atomic_load_explicit((const atomic_uint_least64_t *)
		    (const void *)((const char *)&r->slot[i] + off),
		    memory_order_relaxed);
	return sum;
}

void
ktls_stats_fork_child(void)
{
	struct uktls_stats_region *r = &ktls_stats_private;

	/*
	 * The parent's threads, and their slots, did not come along; nor is
	 * the parent's published region ours to count in.  The child's
	 * engine starts from nothing (the sockets stayed the parent's) and
	 * publishes its own region when it starts.
	 */
	memset(r, 0, sizeof(*r));
	r->magic = UKTLS_STATS_MAGIC;
	r->version = UKTLS_STATS_VERSION;
	r->size = sizeof(*r);
	atomic_store(&ktls_stats, r);
	stats_name[0] = '\0';
	pthread_mutex_init(&slot_mtx, NULL);
	slot_nfree = 0;
	slot_next = 1;
	if (slot_key_ok)
		(void)pthread_setspecific(slot_key, NULL);
	ktls_stats_slot_idx = -1;
}

static void
stats_unlink(void)
{
	/* Only the process that created the object removes it (not a
	 * child that inherited the atexit handler through fork). */
	if (stats_name[0] != '\0' && ktls_stats->pid == getpid())
		shm_unlink(stats_name);
}

int
ktls_stats_publish(void)
{
	struct uktls_stats_region *r;
	int fd, error = 0;

	snprintf(stats_name, sizeof(stats_name), "/uktls.%d", (int)getpid());
	/*
	 * An object by this name is a dead process's with our pid: remove it
	 * and create ours exclusively, never adopting one made by another.
	 */
	(void)shm_unlink(stats_name);
	fd = shm_open(stats_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		error = errno;
		goto out;
	}
	if (ftruncate(fd, sizeof(*r)) != 0) {
		error = errno;
		goto out;
	}
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) {
		error = errno;
		goto out;
	}
	/* Nothing counts yet: the engine publishes before it is in use. */
	memcpy(r, &ktls_stats_private, sizeof(*r));
	r->pid = (int32_t)getpid();
	strncpy(r->backend, ktls_crypto_default_name(),
	    sizeof(r->backend) - 1);
	atomic_store(&ktls_stats, r);
	atexit(stats_unlink);
out:
	if (fd >= 0)
		close(fd);
	if (error != 0 && fd >= 0)
		shm_unlink(stats_name);
	if (error != 0)
		stats_name[0] = '\0';
	return error;
}

static void
stats_fill(const struct uktls_stats_region *r, struct uktls_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sockets_enabled = KTLS_SUM(r, sockets_enabled);
	st->sockets_active = KTLS_SUM(r, sockets_active);
	st->records_decrypted = KTLS_SUM(r, records_decrypted);
	st->bytes_decrypted = KTLS_SUM(r, bytes_decrypted);
	st->bytes_received = KTLS_SUM(r, bytes_received);
	st->err_bad_tag = KTLS_SUM(r, err_bad_tag);
	st->err_bad_header = KTLS_SUM(r, err_bad_header);
	st->err_bad_length = KTLS_SUM(r, err_bad_length);
	st->err_truncated = KTLS_SUM(r, err_truncated);
	st->err_nomem = KTLS_SUM(r, err_nomem);
	st->records_cancelled = KTLS_SUM(r, records_cancelled);
	st->records_split = KTLS_SUM(r, records_split);
	st->wq_enqueued = KTLS_SUM(r, wq_enqueued);
	st->wq_depth_max = KTLS_GET(r, wq_depth_max);
	st->pool_mbufs_total = KTLS_SUM(r, pool_mbufs_total);
	st->pool_mbufs_free = KTLS_SUM(r, pool_mbufs_free);
	st->pool_clusters_total = KTLS_SUM(r, pool_clusters_total);
	st->pool_clusters_free = KTLS_SUM(r, pool_clusters_free);
	st->pool_bytes = KTLS_SUM(r, pool_bytes);
	st->workers = KTLS_GET(r, workers);
	st->input_threads = KTLS_GET(r, input_threads);
	memcpy(st->crypto_backend, r->backend, sizeof(st->crypto_backend));
	st->crypto_backend[sizeof(st->crypto_backend) - 1] = '\0';
}

int
uktls_get_stats(struct uktls_stats *st)
{
	struct uktls_stats_region *r = ktls_stats;

	if (st == NULL)
		return EINVAL;
	stats_fill(r, st);
	/* This process's backend, without writing to the shared region. */
	strncpy(st->crypto_backend, ktls_crypto_default_name(),
	    sizeof(st->crypto_backend) - 1);
	st->crypto_backend[sizeof(st->crypto_backend) - 1] = '\0';
	return 0;
}

int
uktls_get_stats_pid(pid_t pid, struct uktls_stats *st, uint64_t *wq_depth,
    unsigned int *nwq)
{
	struct uktls_stats_region *r;
	struct stat sst;
	char name[64];
	unsigned int i, n;
	int fd, error = 0;

	if (st == NULL)
		return EINVAL;
	snprintf(name, sizeof(name), "/uktls.%d", (int)pid);
	fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	/* Mapping past the object's end would fault on the first read. */
	if (fstat(fd, &sst) != 0 || (size_t)sst.st_size < sizeof(*r)) {
		close(fd);
		return EPROTO;
	}
	r = mmap(NULL, sizeof(*r), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (r == MAP_FAILED)
		return errno;
	if (r->magic != UKTLS_STATS_MAGIC || r->version != UKTLS_STATS_VERSION ||
	    r->size != sizeof(*r) || r->pid != (int32_t)pid) {
		error = EPROTO;
		goto out;
	}
	/* A process that died without cleaning up left a stale object. */
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		error = ESRCH;
		goto out;
	}
	stats_fill(r, st);
	if (wq_depth != NULL && nwq != NULL) {
		n = KTLS_GET(r, nwq);
		if (n > *nwq)
			n = *nwq;
		if (n > UKTLS_STATS_MAXWQ)
			n = UKTLS_STATS_MAXWQ;
		for (i = 0; i < n; i++)
			wq_depth[i] = KTLS_GET(r, wq_depth[i]);
		*nwq = n;
	}
out:
	munmap(r, sizeof(*r));
	return error;
}
