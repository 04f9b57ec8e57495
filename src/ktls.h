/*
 * Sessions, the per-CPU work queues and their workers, and record
 * decryption (FreeBSD's uipc_ktls.c, receive side).
 */
#ifndef UKTLS_KTLS_H
#define UKTLS_KTLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "tls_record.h"
#include "uktls.h"

struct mbuf;
struct socket;
struct sockbuf;
struct ktls_crypto_backend;

/* Readers that may help a pass at once (SB_TLS_MAXINFLIGHT - 1). */
#define KTLS_RX_HELPERS 3

struct ktls_session {
	atomic_uint refcount;
	struct tls_session_params params; /* keys: wiped at free */
	const struct ktls_crypto_backend *be;
	void *be_cookie;                  /* the pass's */
	/*
	 * For readers helping a pass, when be cannot share be_cookie: made
	 * on first use, torn down (wiped) with the session.  Guarded by the
	 * socket's sockbuf lock.
	 */
	void *be_help[KTLS_RX_HELPERS];
	uint8_t be_help_busy[KTLS_RX_HELPERS];
};

/* Engine settings in force (after defaults, environment and configure). */
struct ktls_engine_config {
	unsigned int workers;
	int pin_workers;
	unsigned int input_threads;
	uint32_t rcvbuf;
	size_t pool_max;
	int publish_stats;
	int inline_decrypt; /* a waiting reader decrypts (default on) */
	/* How long a reader spins for a record being decrypted before it
	 * sleeps (sbwait_active); 0 never.  -1 until configured. */
	int64_t spin_ns;
};

extern struct ktls_engine_config ktls_config;

/* Load settings from the environment, once (engine.c). */
void ktls_config_load(void);

/* Start the workers and input threads once; 0 or ENXIO. */
int ktls_engine_start(void);
int ktls_engine_started(void);

/*
 * The work queue of a new socket: a hash of its connection's addresses, as
 * FreeBSD uses the RSS hash, so that one flow always lands on one CPU.
 */
unsigned int ktls_pick_wq(int fd);

/* Validate en and build a session: 0 or the errno of tls_params_from_enable
 * (EINVAL, EPROTONOSUPPORT, ENOTSUP) or ENOMEM. */
int ktls_session_create(const struct tls_enable *en,
    struct ktls_session **tlsp);
void ktls_session_hold(struct ktls_session *tls);
void ktls_session_free(struct ktls_session *tls);
/*
 * In a child after fork(): the parent's session stays the parent's, but its
 * keys are in the child's copy of memory.  Wipe them there, with the
 * backends' key schedules; the session is never used in the child again.
 */
void ktls_session_wipe_forked(struct ktls_session *tls);

/*
 * Look at the head of the TLS chain; if a whole record is queued and the
 * socket is not already RUNNING, mark it RUNNING and queue it on its worker.
 * A malformed header kills the receive side here, before the rest of the
 * record arrives; EOF with a partial record reports EMSGSIZE.  Sockbuf locked.
 */
void ktls_check_rx(struct socket *so);

/*
 * Decrypt every whole record queued on so, with the sockbuf locked (it is
 * dropped around each decryption) and the socket RUNNING; clears RUNNING.
 * Workers call it, and so does a reader that would otherwise wait.
 */
void ktls_decrypt_locked(struct socket *so);

/*
 * A reader about to wait for a record that a pass (a worker, or another
 * reader) is decrypting at this moment takes the next whole record and
 * decrypts it beside the pass, rather than wait idle: records of one
 * connection are then decrypted in parallel, and still made readable in
 * order.  Returns 1 if it did (the lock was dropped meanwhile), 0 if there
 * was nothing to take.  Sockbuf locked.
 */
int ktls_rx_help_locked(struct socket *so);

/*
 * Make control, an empty MT_CONTROL mbuf, the control message of a record:
 * IPPROTO_TCP / TLS_GET_RECORD with struct tls_get_record (type, wire
 * version, plaintext length).
 */
void ktls_fill_control(struct mbuf *control, uint8_t type, uint8_t vmajor,
    uint8_t vminor, uint32_t len);


#ifdef UKTLS_TEST_HOOKS
/*
 * Called by a worker with a detached record, the sockbuf unlocked, just
 * before decryption: a test may close, shut down or cut the socket here.
 */
extern void (*volatile ktls_test_detach_hook)(struct socket *so);
/* The same, for a reader helping a pass (ktls_rx_help_locked). */
extern void (*volatile ktls_test_help_hook)(struct socket *so);
/*
 * Called with a session's memory after it was wiped and before it is
 * freed, so that a test can check that no key material is left in it.
 */
extern void (*volatile ktls_test_session_free_hook)(const void *mem,
    size_t len);
#endif

#endif /* UKTLS_KTLS_H */
