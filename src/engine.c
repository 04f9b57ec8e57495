/*
 * Engine settings and counters: uktls_config_defaults, uktls_configure and
 * uktls_get_stats.  Settings come from, in increasing precedence, built-in
 * defaults, the environment, and uktls_configure().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ktls.h"
#include "mbuf.h"
#include "uktls.h"

/* The smallest receive buffer that still holds two maximal records. */
#define UKTLS_MIN_RCVBUF (64 * 1024)

/* Parse a non-negative number with an optional k/m/g suffix. */
static int
env_number(const char *name, unsigned long long *out)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || end == v)
		return 0;
	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	default: break;
	}
	if (*end != '\0')
		return 0;
	*out = n;
	return 1;
}

void
uktls_config_defaults(struct uktls_config *cfg)
{
	unsigned long long n;

	memset(cfg, 0, sizeof(*cfg));
	cfg->pin_workers = -1;
	if (env_number("UKTLS_WORKERS", &n) && n > 0 && n <= 4096)
		cfg->workers = (unsigned int)n;
	if (env_number("UKTLS_PIN_WORKERS", &n))
		cfg->pin_workers = n != 0;
	if (env_number("UKTLS_INPUT_THREADS", &n) && n > 0 && n <= 1024)
		cfg->input_threads = (unsigned int)n;
	if (env_number("UKTLS_RCVBUF", &n) && n >= UKTLS_MIN_RCVBUF &&
	    n <= (1ULL << 30))
		cfg->rcvbuf = (size_t)n;
	if (env_number("UKTLS_POOL_MAX", &n))
		cfg->pool_max = (size_t)n;
}

static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void
config_from_env(void)
{
	struct uktls_config cfg;

	uktls_config_defaults(&cfg);
	ktls_config.workers = cfg.workers;
	ktls_config.pin_workers = cfg.pin_workers;
	ktls_config.input_threads = cfg.input_threads;
	ktls_config.rcvbuf = (uint32_t)cfg.rcvbuf;
	ktls_config.pool_max = cfg.pool_max;
}

void
ktls_config_load(void)
{
	pthread_once(&config_once, config_from_env);
}

int
uktls_configure(const struct uktls_config *cfg)
{
	if (cfg == NULL)
		return EINVAL;
	if ((cfg->rcvbuf != 0 && (cfg->rcvbuf < UKTLS_MIN_RCVBUF ||
	    cfg->rcvbuf > (1U << 30))) || cfg->workers > 4096 ||
	    cfg->input_threads > 1024 || cfg->pin_workers > 1 ||
	    cfg->pin_workers < -1)
		return EINVAL;
	ktls_config_load();
	if (ktls_engine_started())
		return EBUSY;
	if (cfg->workers != 0)
		ktls_config.workers = cfg->workers;
	if (cfg->pin_workers >= 0)
		ktls_config.pin_workers = cfg->pin_workers;
	if (cfg->input_threads != 0)
		ktls_config.input_threads = cfg->input_threads;
	if (cfg->rcvbuf != 0)
		ktls_config.rcvbuf = (uint32_t)cfg->rcvbuf;
	if (cfg->pool_max != 0)
		ktls_config.pool_max = cfg->pool_max;
	return 0;
}

#define LOAD(f) atomic_load_explicit(&ktls_counters.f, memory_order_relaxed)

int
uktls_get_stats(struct uktls_stats *st)
{
	struct mbuf_pool_stats ps;

	if (st == NULL)
		return EINVAL;
	memset(st, 0, sizeof(*st));
	st->sockets_enabled = LOAD(sockets_enabled);
	st->sockets_active = LOAD(sockets_active);
	st->records_decrypted = LOAD(records_decrypted);
	st->bytes_decrypted = LOAD(bytes_decrypted);
	st->bytes_received = LOAD(bytes_received);
	st->err_bad_tag = LOAD(err_bad_tag);
	st->err_bad_header = LOAD(err_bad_header);
	st->err_bad_length = LOAD(err_bad_length);
	st->err_truncated = LOAD(err_truncated);
	st->err_nomem = LOAD(err_nomem);
	st->records_cancelled = LOAD(records_cancelled);
	st->wq_enqueued = LOAD(wq_enqueued);
	st->wq_depth_max = LOAD(wq_depth_max);
	mbuf_pool_stats(&ps);
	st->pool_mbufs_total = ps.mbufs_total;
	st->pool_mbufs_free = ps.mbufs_free;
	st->pool_clusters_total = ps.clusters_total;
	st->pool_clusters_free = ps.clusters_free;
	st->pool_bytes = ps.bytes;
	if (ktls_engine_started()) {
		st->workers = ktls_config.workers;
		st->input_threads = ktls_config.input_threads;
	}
	strncpy(st->crypto_backend, ktls_crypto_default_name(),
	    sizeof(st->crypto_backend) - 1);
	return 0;
}
