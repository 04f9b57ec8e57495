/*
 * Engine settings and counters: uktls_config_defaults, uktls_configure and
 * uktls_get_stats.  Settings come from, in increasing precedence, built-in
 * defaults, the environment, and uktls_configure().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ktls.h"
#include "uktls.h"

/* The smallest receive buffer that still holds two maximal records. */
#define UKTLS_MIN_RCVBUF ((size_t)64 * 1024)
/* A spin longer than this costs more than any sleep it saves. */
#define UKTLS_MAX_SPIN_US 1000

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
	if (env_number("UKTLS_STATS", &n))
		cfg->publish_stats = n != 0;
	if (env_number("UKTLS_INLINE_DECRYPT", &n))
		cfg->no_inline_decrypt = n == 0;
	if (env_number("UKTLS_SPIN_US", &n)) {
		if (n == 0)
			cfg->no_spin = 1;
		else if (n <= UKTLS_MAX_SPIN_US)
			cfg->spin_us = (unsigned int)n;
	}
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
	ktls_config.publish_stats = cfg.publish_stats;
	ktls_config.inline_decrypt = !cfg.no_inline_decrypt;
	ktls_config.spin_ns = cfg.no_spin ? 0 : cfg.spin_us != 0 ?
	    (int64_t)cfg.spin_us * 1000 : -1;
}

void
ktls_config_load(void)
{
	pthread_once(&config_once, config_from_env);
}

int
uktls_start(void)
{
	return ktls_engine_start();
}

int
uktls_configure(const struct uktls_config *cfg)
{
	if (cfg == NULL)
		return EINVAL;
	if ((cfg->rcvbuf != 0 && (cfg->rcvbuf < UKTLS_MIN_RCVBUF ||
	    cfg->rcvbuf > (1U << 30))) || cfg->workers > 4096 ||
	    cfg->input_threads > 1024 || cfg->pin_workers > 1 ||
	    cfg->pin_workers < -1 || cfg->spin_us > UKTLS_MAX_SPIN_US)
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
	if (cfg->publish_stats != 0)
		ktls_config.publish_stats = cfg->publish_stats > 0;
	if (cfg->no_inline_decrypt != 0)
		ktls_config.inline_decrypt = 0;
	if (cfg->no_spin != 0)
		ktls_config.spin_ns = 0;
	else if (cfg->spin_us != 0)
		ktls_config.spin_ns = (int64_t)cfg->spin_us * 1000;
	return 0;
}
