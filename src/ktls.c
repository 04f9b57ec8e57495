/*
 * Kernel-TLS receive in userspace (FreeBSD's uipc_ktls.c, receive side):
 * sessions, the per-CPU work queues, their pinned worker threads, the check
 * that queues a socket once a whole record is in, and ktls_decrypt, which
 * detaches records, decrypts them with no lock held and publishes them as
 * readable records.
 */
#include "ktls.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "fault.h"
#include "input.h"
#include "kassert.h"
#include "mbuf.h"
#include "socket.h"

struct ktls_engine_config ktls_config;

#ifdef UKTLS_TEST_HOOKS
void (*volatile ktls_test_detach_hook)(struct socket *so);
void (*volatile ktls_test_help_hook)(struct socket *so);
void (*volatile ktls_test_session_free_hook)(const void *mem, size_t len);
#endif

/*
 * One work queue per worker.  Sockets wait on it in FIFO order, linked by
 * so_wq_next; a socket is on at most one queue, at most once (its
 * so_wq_onlist flag); SB_TLS_RX_RUNNING and SB_TLS_RX_ACTIVE make sure
 * that one pass at a time decrypts a socket's records (a worker's, or a
 * reader's that would otherwise wait).  Readers waiting while a pass is
 * decrypting may take the records after its own and decrypt them at the
 * same time (ktls_rx_help_locked), up to SB_TLS_MAXINFLIGHT records out;
 * sequence numbers are given in stream order as records are detached, and
 * records become readable in that order (sb_tls_pubseq, sb_tls_parked).
 */
struct ktls_wq {
	pthread_mutex_t wq_mtx;
	pthread_cond_t wq_cv;
	struct socket *wq_head;
	struct socket *wq_tail;
	uint64_t wq_depth;
	pthread_t wq_thread;
	int wq_cpu; /* -1: not pinned */
} __attribute__((aligned(64)));

static struct ktls_wq *ktls_wq;
static unsigned int ktls_nwq;
static pthread_mutex_t ktls_start_mtx = PTHREAD_MUTEX_INITIALIZER;
static atomic_int ktls_started;

/* How often a worker retries a record the pools cannot serve. */
#define KTLS_NOBUFS_RETRIES 200
#define KTLS_NOBUFS_SLEEP_US 1000

static void ktls_worker_visit(struct socket *so);

/* ---------------------------------------------------------------------- */
/* Sessions.                                                              */

int
ktls_session_create(const struct tls_enable *en, struct ktls_session **tlsp)
{
	struct ktls_session *tls;
	int error;

	*tlsp = NULL;
	tls = UKTLS_FAULT("ktls session") ? NULL : calloc(1, sizeof(*tls));
	if (tls == NULL)
		return ENOMEM;
	error = tls_params_from_enable(en, &tls->params);
	if (error != 0)
		goto out;
	tls->be = ktls_crypto_select(&tls->params);
	if (tls->be == NULL) {
		error = ENOTSUP;
		goto out;
	}
	error = tls->be->setup(&tls->params, &tls->be_cookie);
	if (error != 0)
		goto out;
	atomic_init(&tls->refcount, 1);
	*tlsp = tls;
	return 0;
out:
	tls_params_wipe(&tls->params);
	free(tls);
	return error;
}

void
ktls_session_hold(struct ktls_session *tls)
{
	atomic_fetch_add_explicit(&tls->refcount, 1, memory_order_relaxed);
}

void
ktls_session_free(struct ktls_session *tls)
{
	int i;

	if (atomic_fetch_sub_explicit(&tls->refcount, 1,
	    memory_order_acq_rel) != 1)
		return;
	tls->be->teardown(tls->be_cookie);
	for (i = 0; i < KTLS_RX_HELPERS; i++)
		if (tls->be_help[i] != NULL)
			tls->be->teardown(tls->be_help[i]);
	tls_params_wipe(&tls->params);
	tls_explicit_bzero(tls, sizeof(*tls));
#ifdef UKTLS_TEST_HOOKS
	if (ktls_test_session_free_hook != NULL)
		ktls_test_session_free_hook(tls, sizeof(*tls));
#endif
	free(tls);
}

void
ktls_session_wipe_forked(struct ktls_session *tls)
{
	int i;

	/* Only the forking thread exists in the child: nobody else can be
	 * using the session, and its reference count does not matter. */
	if (tls->be_cookie != NULL)
		tls->be->teardown(tls->be_cookie);
	tls->be_cookie = NULL;
	for (i = 0; i < KTLS_RX_HELPERS; i++) {
		if (tls->be_help[i] != NULL)
			tls->be->teardown(tls->be_help[i]);
		tls->be_help[i] = NULL;
	}
	tls_params_wipe(&tls->params);
}

/* ---------------------------------------------------------------------- */
/* Engine configuration and start-up.                                     */

static unsigned int
online_cpus(cpu_set_t *set)
{
	CPU_ZERO(set);
	if (sched_getaffinity(0, sizeof(*set), set) == 0 && CPU_COUNT(set) > 0)
		return (unsigned int)CPU_COUNT(set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

static void *
ktls_work_thread(void *arg)
{
	struct ktls_wq *wq = arg;
	struct socket *so, *next;

	mbuf_thread_init();
	for (;;) {
		pthread_mutex_lock(&wq->wq_mtx);
		while (wq->wq_head == NULL)
			pthread_cond_wait(&wq->wq_cv, &wq->wq_mtx);
		/* Take the whole list: one lock round trip per batch. */
		so = wq->wq_head;
		wq->wq_head = wq->wq_tail = NULL;
		wq->wq_depth = 0;
		if (wq - ktls_wq < UKTLS_STATS_MAXWQ)
			KTLS_SET(wq_depth[wq - ktls_wq], 0);
		pthread_mutex_unlock(&wq->wq_mtx);
		for (; so != NULL; so = next) {
			next = so->so_wq_next;
			so->so_wq_next = NULL;
			ktls_worker_visit(so);
			sorele(so);
		}
	}
	return NULL;
}

int
ktls_engine_started(void)
{
	return atomic_load(&ktls_started);
}

/* Fill ktls_config's unset fields from the environment and defaults. */
static void
ktls_config_finish(void)
{
	cpu_set_t set;
	unsigned int ncpu = online_cpus(&set);

	if (ktls_config.workers == 0)
		ktls_config.workers = ncpu;
	if (ktls_config.pin_workers < 0)
		ktls_config.pin_workers = 1;
	if (ktls_config.input_threads == 0)
		ktls_config.input_threads = ktls_config.workers;
	if (ktls_config.rcvbuf == 0)
		ktls_config.rcvbuf = 256 * 1024;
	/*
	 * A reader spins for a record being decrypted only where the thread
	 * decrypting it can run beside it.  20 us covers one 16 KiB record
	 * with any backend here (about 1 us with ipsec-mb, 4 with OpenSSL's
	 * AES-GCM) and is a few sleep and wake-up round trips.
	 */
	if (ktls_config.spin_ns < 0)
		ktls_config.spin_ns = ncpu > 1 ? 20000 : 0;
	else if (ncpu == 1)
		ktls_config.spin_ns = 0;
}

/*
 * fork(): the pools' and the descriptor table's locks are held across it,
 * so that the child finds them free; in the child the engine is forgotten
 * (its threads did not come along) and starts again on first use.
 */
static void
ktls_fork_prepare(void)
{
	pthread_mutex_lock(&ktls_start_mtx);
	so_fork_prepare();
	mbuf_fork_prepare();
}

static void
ktls_fork_parent(void)
{
	mbuf_fork_parent();
	so_fork_parent();
	pthread_mutex_unlock(&ktls_start_mtx);
}

static void
ktls_fork_child(void)
{
	ktls_stats_fork_child();
	mbuf_fork_child();
	so_fork_child();
	input_fork_child();
	/* The work queues, like the input threads, stay the parent's. */
	ktls_wq = NULL;
	ktls_nwq = 0;
	atomic_store(&ktls_started, 0);
	pthread_mutex_init(&ktls_start_mtx, NULL);
}

static pthread_once_t ktls_atfork_once = PTHREAD_ONCE_INIT;

static void
ktls_atfork_register(void)
{
	if (pthread_atfork(ktls_fork_prepare, ktls_fork_parent,
	    ktls_fork_child) != 0)
		uktls_panic("ktls_atfork_register: pthread_atfork failed");
}

int
ktls_engine_start(void)
{
	pthread_attr_t attr;
	cpu_set_t set, one;
	unsigned int i, ncpu, cpu_i;
	int error = 0, c;

	if (atomic_load_explicit(&ktls_started, memory_order_acquire))
		return 0;
	pthread_once(&ktls_atfork_once, ktls_atfork_register);
	pthread_mutex_lock(&ktls_start_mtx);
	if (atomic_load(&ktls_started))
		goto out;
	ktls_config_load();
	ktls_config_finish();
	mbuf_pool_setmax(ktls_config.pool_max);
	/*
	 * Publish before any thread starts: workers and input threads count
	 * from their first moment (pool growth), and pthread_create() orders
	 * the switch to the shared region before everything they do.
	 * Publishing is best effort: counters stay private if it fails.
	 */
	if (ktls_config.publish_stats)
		(void)ktls_stats_publish();
	ncpu = online_cpus(&set);
	ktls_nwq = ktls_config.workers;
	ktls_wq = UKTLS_FAULT("ktls wq") ? NULL :
	    aligned_alloc(64, sizeof(*ktls_wq) * ktls_nwq);
	if (ktls_wq == NULL) {
		error = ENXIO;
		goto out;
	}
	memset(ktls_wq, 0, sizeof(*ktls_wq) * ktls_nwq);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Worker i runs on the i-th CPU of the process's affinity mask. */
	cpu_i = 0;
	c = -1;
	for (i = 0; i < ktls_nwq; i++) {
		struct ktls_wq *wq = &ktls_wq[i];

		pthread_mutex_init(&wq->wq_mtx, NULL);
		pthread_cond_init(&wq->wq_cv, NULL);
		wq->wq_cpu = -1;
		if (ktls_config.pin_workers && ncpu > 0) {
			do {
				c = (c + 1) % CPU_SETSIZE;
			} while (!CPU_ISSET(c, &set));
			wq->wq_cpu = c;
			cpu_i++;
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
		}
		if (pthread_create(&wq->wq_thread, &attr, ktls_work_thread,
		    wq) != 0) {
			/* Workers already started serve the queues 0..i-1. */
			if (i == 0) {
				error = ENXIO;
				pthread_attr_destroy(&attr);
				goto out;
			}
			ktls_nwq = i;
			break;
		}
	}
	pthread_attr_destroy(&attr);
	ktls_config.workers = ktls_nwq;
	error = input_start(ktls_config.input_threads);
	if (error != 0) {
		error = ENXIO;
		goto out;
	}
	KTLS_SET(nwq, ktls_nwq);
	KTLS_SET(workers, ktls_nwq);
	KTLS_SET(input_threads, ktls_config.input_threads);
	atomic_store_explicit(&ktls_started, 1, memory_order_release);
out:
	pthread_mutex_unlock(&ktls_start_mtx);
	return error;
}

unsigned int
ktls_pick_wq(int fd)
{
	struct sockaddr_storage a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);
	const unsigned char *p;
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (getsockname(fd, (struct sockaddr *)&a, &la) != 0 ||
	    getpeername(fd, (struct sockaddr *)&b, &lb) != 0)
		return (unsigned int)fd % ktls_nwq;
	p = (const unsigned char *)&a;
	for (i = 0; i < la; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	p = (const unsigned char *)&b;
	for (i = 0; i < lb; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return (unsigned int)(h % ktls_nwq);
}

/* ---------------------------------------------------------------------- */
/* Scheduling.                                                            */

/* Put so on its work queue.  Sockbuf locked; so is RUNNING already. */
static void
ktls_enqueue(struct socket *so)
{
	struct ktls_wq *wq = &ktls_wq[so->so_wq];
	uint64_t depth, max;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	soref(so);
	so->so_wq_onlist = 1;
	pthread_mutex_lock(&wq->wq_mtx);
	so->so_wq_next = NULL;
	if (wq->wq_tail != NULL)
		wq->wq_tail->so_wq_next = so;
	else
		wq->wq_head = so;
	wq->wq_tail = so;
	depth = ++wq->wq_depth;
	if (so->so_wq < UKTLS_STATS_MAXWQ)
		KTLS_SET(wq_depth[so->so_wq], depth);
	pthread_cond_signal(&wq->wq_cv);
	pthread_mutex_unlock(&wq->wq_mtx);
	KTLS_COUNT(wq_enqueued, 1);
	max = KTLS_GET(ktls_stats, wq_depth_max);
	while (depth > max && !atomic_compare_exchange_weak(
	    &ktls_stats->wq_depth_max, &max, depth))
		;
}

/*
 * Read and check the header at the head of the TLS chain.  Returns 0 with
 * *reclen set, EAGAIN when fewer than 5 bytes are queued, or the header's
 * error (the receive side must die).
 */
static int
ktls_peek_header(struct socket *so, struct tls_record_layer *hdr,
    uint32_t *reclen)
{
	struct sockbuf *sb = &so->so_rcv;

	if (sb->sb_tlscc < TLS_HEADER_LEN)
		return EAGAIN;
	if (__predict_true(sb->sb_mtls->m_len >= TLS_HEADER_LEN))
		memcpy(hdr, sb->sb_mtls->m_data, TLS_HEADER_LEN);
	else
		m_copydata(sb->sb_mtls, 0, TLS_HEADER_LEN, hdr);
	return so->so_linux ?
	    tls_check_header_linux(&sb->sb_tls_info->params, hdr, reclen) :
	    tls_check_header(&sb->sb_tls_info->params, hdr, reclen);
}

/* Count a dead receive side by its cause. */
static void
ktls_count_header_error(int error)
{
	if (error == EINVAL)
		KTLS_COUNT(err_bad_header, 1);
	else
		KTLS_COUNT(err_bad_length, 1); /* EMSGSIZE, or Linux's EBADMSG */
}

/*
 * A rekey is waiting (sb_tls_next) and no record is out under the current
 * session: the next session takes over, and the records from here on are
 * numbered from its rec_seq.  Nothing but the pass that took the records
 * uses the session unlocked, and it has none out, so the old one can go.
 * Sockbuf locked.
 */
static void
ktls_rx_rekey_locked(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;
	struct ktls_session *old = sb->sb_tls_info;

	SOCKBUF_LOCK_ASSERT(sb);
	if (sb->sb_tls_next == NULL || sb->sb_tls_inflight != 0 ||
	    sb->sb_tls_nparked != 0)
		return;
	sb->sb_tls_info = sb->sb_tls_next;
	sb->sb_tls_next = NULL;
	sb->sb_tls_seqno = sb->sb_tls_info->params.initial_seqno;
	sb->sb_tls_pubseq = sb->sb_tls_seqno;
	if (old != NULL)
		ktls_session_free(old);
}

void
ktls_check_rx(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;
	struct tls_record_layer hdr;
	uint32_t reclen;
	int error;

	SOCKBUF_LOCK_ASSERT(sb);
	/*
	 * Not while records a reader took to help a pass are out: what comes
	 * after them (a bad header, EOF inside a record) must not overtake
	 * them, and the last one back calls here again.
	 */
	if ((sb->sb_flags & SB_TLS_RX) == 0 ||
	    (sb->sb_flags & SB_TLS_RX_RUNNING) != 0 ||
	    sb->sb_tls_inflight != 0 ||
	    (so->so_state & (SS_CLOSING | SS_RCVDEAD)) != 0)
		return;
	if (sb->sb_tls_next != NULL)
		ktls_rx_rekey_locked(so);
	/*
	 * After a KeyUpdate what follows waits for the next key, as on
	 * Linux: whole records, and also a bad header or the end of the
	 * stream inside a record, which are acted on once the key is in.
	 */
	if (so->so_rekey_pending)
		return;
	error = ktls_peek_header(so, &hdr, &reclen);
	if (error == 0 && sb->sb_tlscc >= reclen) {
		sb->sb_flags |= SB_TLS_RX_RUNNING;
		if (sb->sb_rwaiters > 0 && ktls_config.inline_decrypt) {
			/*
			 * A reader is waiting and nothing is readable: it
			 * decrypts the record itself, saving the hand-off to
			 * a worker and back (latency).  Streams that keep the
			 * reader busy still go through the workers.
			 */
			sb->sb_flags |= SB_TLS_RX_INLINE;
			so_kick_readers_locked(so);
			return;
		}
		/* Still on the list from a pass a reader took over: the
		 * worker runs this one when it gets there. */
		if (!so->so_wq_onlist)
			ktls_enqueue(so);
		return;
	}
	if (error != 0 && error != EAGAIN) {
		/* Checked before the record is whole, as FreeBSD's decrypt
		 * loop does once it has the header. */
		ktls_count_header_error(error);
		so_rcvdead_locked(so, error, 1);
		return;
	}
	if ((sb->sb_state & SBS_CANTRCVMORE) != 0 && sb->sb_tlscc > 0) {
		/* EOF inside a record: never report it as a clean end. */
		KTLS_COUNT(err_truncated, 1);
		so_rcvdead_locked(so, EMSGSIZE, 0);
	}
}

/* ---------------------------------------------------------------------- */
/* Decryption.                                                            */

/*
 * Strip header and trailer from a decrypted record, drop mbufs left empty
 * (keeping one so that an empty record still has its M_EOR mbuf), and
 * return the chain's new head.
 */
static struct mbuf *
ktls_trim_record(struct mbuf *m, uint32_t hlen, uint32_t trailer)
{
	struct mbuf *n, **pp;

	m_adj(m, (int)hlen);
	m_adj(m, -(int)trailer);
	for (pp = &m; *pp != NULL;) {
		n = *pp;
		if (n->m_len == 0 && (n != m || n->m_next != NULL)) {
			*pp = n->m_next;
			n->m_next = NULL;
			m_free(n);
			continue;
		}
		pp = &n->m_next;
	}
	return m;
}

_Static_assert(KTLS_RX_HELPERS == SB_TLS_MAXINFLIGHT - 1,
    "a helper context for each record out beside the pass");

void
ktls_fill_control(struct mbuf *control, uint8_t type, uint8_t vmajor,
    uint8_t vminor, uint32_t len)
{
	struct tls_get_record *tgr;
	struct cmsghdr *cmsg;

	control->m_len = CMSG_SPACE(sizeof(*tgr));
	memset(control->m_data, 0, control->m_len);
	cmsg = mtod(control, struct cmsghdr *);
	cmsg->cmsg_len = CMSG_LEN(sizeof(*tgr));
	cmsg->cmsg_level = IPPROTO_TCP;
	cmsg->cmsg_type = TLS_GET_RECORD;
	tgr = (struct tls_get_record *)CMSG_DATA(cmsg);
	tgr->tls_type = type;
	tgr->tls_vmajor = vmajor;
	tgr->tls_vminor = vminor;
	tgr->tls_length = htons((uint16_t)len);
}

/* One record between its detach and its place in the readable chain. */
struct ktls_rx_job {
	struct sb_tlsparked j;
	struct tls_record_layer hdr;
};

/*
 * Detach the next record for decryption, if a whole one is queued and the
 * socket may have another out.  Returns 0 with *job set up (the record is
 * out, with its sequence number), EAGAIN when there is no whole record or
 * SB_TLS_MAXINFLIGHT are out, ENOBUFS when an mbuf was not to be had
 * (nothing changed), or the header's error (EINVAL, EMSGSIZE) for the
 * caller to act on.  Sockbuf locked.
 */
static int
ktls_rx_take_locked(struct socket *so, struct ktls_rx_job *job)
{
	struct sockbuf *sb = &so->so_rcv;
	uint32_t reclen;
	int error;

	SOCKBUF_LOCK_ASSERT(sb);
	if (sb->sb_tls_next != NULL) {
		/* The next key applies from the next record on. */
		if (sb->sb_tls_inflight + sb->sb_tls_nparked != 0)
			return EAGAIN;
		ktls_rx_rekey_locked(so);
	}
	/* After a KeyUpdate the records are under a key not given yet. */
	if (so->so_rekey_pending)
		return EAGAIN;
	if (sb->sb_tls_inflight + sb->sb_tls_nparked >= SB_TLS_MAXINFLIGHT)
		return EAGAIN;
	error = ktls_peek_header(so, &job->hdr, &reclen);
	if (error != 0)
		return error;
	if (sb->sb_tlscc < reclen)
		return EAGAIN;
	/*
	 * The control mbuf is taken before the record is detached so that a
	 * failure leaves the record queued for a retry.
	 */
	memset(&job->j, 0, sizeof(job->j));
	job->j.sp_control = m_get(MT_CONTROL);
	if (job->j.sp_control == NULL)
		return ENOBUFS;
	error = sbdetach_ktls_rx(sb, reclen, &job->j.sp_data);
	if (error != 0) {
		m_free(job->j.sp_control);
		job->j.sp_control = NULL;
		return error;
	}
	job->j.sp_seqno = sb->sb_tls_seqno++;
	job->j.sp_reclen = reclen;
	if (job->j.sp_data->m_next != NULL)
		KTLS_COUNT(records_split, 1);
	return 0;
}

/*
 * Decrypt a detached record in place, strip its header and trailer and fill
 * in its control message; or note why not (sp_error, the record freed).
 * Sockbuf unlocked: the record belongs to the caller alone.
 */
static void
ktls_rx_decrypt(struct ktls_session *tls, void *cookie,
    struct ktls_rx_job *job)
{
	struct mbuf *control = job->j.sp_control;
	uint32_t reclen = job->j.sp_reclen, content_len = 0;
	uint8_t type = job->hdr.tls_type;
	int error, trailer_len = 0;

	error = tls_check_min_len(&tls->params, reclen);
	if (error == 0)
		error = tls->be->decrypt(cookie, &tls->params, &job->hdr,
		    job->j.sp_data, job->j.sp_seqno, &trailer_len);
	if (error == 0) {
		content_len = reclen - tls->params.tls_hlen -
		    (uint32_t)trailer_len;
		if (tls->params.tls_vminor == TLS_MINOR_VER_THREE) {
			error = tls13_find_record_type(job->j.sp_data,
			    tls->params.tls_hlen, content_len, &type,
			    &content_len);
			trailer_len = (int)(reclen - tls->params.tls_hlen -
			    content_len);
		}
	}
	if (error != 0) {
		m_freem(job->j.sp_data);
		job->j.sp_data = NULL;
		job->j.sp_error = error;
		return;
	}
	job->j.sp_data = ktls_trim_record(job->j.sp_data,
	    tls->params.tls_hlen, (uint32_t)trailer_len);
	job->j.sp_len = content_len;
	job->j.sp_type = type;
	ktls_fill_control(control, type, job->hdr.tls_vmajor,
	    job->hdr.tls_vminor, content_len);
}

/* What ktls_rx_keyupdate_locked found: the last KeyUpdate's request. */
#define KU_NONE 0
#define KU_NOT_REQUESTED 1
#define KU_REQUESTED 2 /* request_update 1: the peer wants one back */

/*
 * Follow the TLS 1.3 handshake messages through a decrypted handshake
 * record of len bytes at m, and say whether one of them is a KeyUpdate
 * (KU_NONE, else whether the last one asked for one back): the peer's
 * records after this one are under its next key.  Messages
 * may share a record or span several (a large NewSessionTicket), so the
 * place in the message stream is kept between records (so_hs_*); the key
 * changes where a KeyUpdate message ends.  RFC 8446 has that be the end
 * of its record; one ending anywhere counts, as the peer's key changes
 * after it all the same.  Called in stream order, which the Linux form's
 * strictly serial decryption keeps (see ktls_rx_help_locked).  Sockbuf
 * locked.
 */
static int
ktls_rx_keyupdate_locked(struct socket *so, const struct mbuf *m,
    uint32_t len)
{
	uint32_t off = 0, n;
	int keyupdate = KU_NONE;

	while (off < len) {
		if (so->so_hs_resid > 0) {
			n = len - off < so->so_hs_resid ? len - off :
			    so->so_hs_resid;
			if (so->so_hs_kureq_due) {
				m_copydata(m, (int)off, 1,
				    (char *)&so->so_hs_kureq);
				so->so_hs_kureq_due = 0;
			}
			so->so_hs_resid -= n;
			off += n;
		} else {
			n = (uint32_t)sizeof(so->so_hs_hdr) - so->so_hs_hdrlen;
			if (n > len - off)
				n = len - off;
			m_copydata(m, (int)off, (int)n,
			    (char *)so->so_hs_hdr + so->so_hs_hdrlen);
			so->so_hs_hdrlen = (uint8_t)(so->so_hs_hdrlen + n);
			off += n;
			if (so->so_hs_hdrlen < sizeof(so->so_hs_hdr))
				break;
			so->so_hs_hdrlen = 0;
			so->so_hs_ku = so->so_hs_hdr[0] == TLS_HS_KEY_UPDATE;
			so->so_hs_kureq_due = so->so_hs_ku;
			so->so_hs_kureq = 0;
			so->so_hs_resid = (uint32_t)so->so_hs_hdr[1] << 16 |
			    (uint32_t)so->so_hs_hdr[2] << 8 | so->so_hs_hdr[3];
		}
		/* The key changes where the KeyUpdate message ends. */
		if (so->so_hs_resid == 0 && so->so_hs_ku) {
			so->so_hs_ku = 0;
			so->so_hs_kureq_due = 0;
			/* Taken now: a message after it starts afresh. */
			keyupdate = so->so_hs_kureq == 1 ? KU_REQUESTED :
			    KU_NOT_REQUESTED;
		}
	}
	return keyupdate;
}

/*
 * Make a record that is back, and whose turn it is, readable: append it
 * after the records before it, or report why it could not be decrypted
 * (the connection is kept and later records still come, as on FreeBSD; the
 * reader learns of it after the records before it).  Its bytes have left
 * sb_tlsdcc.
 */
static void
ktls_rx_publish_locked(struct socket *so, struct sb_tlsparked *sp)
{
	struct sockbuf *sb = &so->so_rcv;
	int ku;

	sb->sb_tls_pubseq = sp->sp_seqno + 1;
	if (sp->sp_error != 0) {
		if (sp->sp_error == EBADMSG)
			KTLS_COUNT(err_bad_tag, 1);
		else if (sp->sp_error == EMSGSIZE)
			KTLS_COUNT(err_bad_length, 1);
		else
			KTLS_COUNT(err_nomem, 1);
		m_free(sp->sp_control);
		/*
		 * Linux's form: a record that fails (its tag, or its length
		 * once decrypted) ends the stream there, and every read after
		 * the records before it fails with its error, as on Linux,
		 * where the record stays at the head and fails each read
		 * again; RFC 8446 6.2 has a bad_record_mac end the connection
		 * too.  Nothing after it is decrypted or delivered.  The TCP
		 * connection is left alone, as Linux leaves it.
		 */
		if (so->so_linux && (sp->sp_error == EBADMSG ||
		    sp->sp_error == EMSGSIZE)) {
			/*
			 * A TLS 1.3 record of the tag alone has no content
			 * type: Linux decrypts it and says EBADMSG.
			 */
			if (sp->sp_error == EMSGSIZE &&
			    sb->sb_tls_info->params.tls_vminor ==
			    TLS_MINOR_VER_THREE && sp->sp_reclen ==
			    (uint32_t)sb->sb_tls_info->params.tls_hlen +
			    sb->sb_tls_info->params.tls_tlen)
				sp->sp_error = EBADMSG;
			so_rcvdead_locked(so, sp->sp_error, 0);
			return;
		}
		so_seterror_locked(so, sp->sp_error);
		/*
		 * Its bytes left the buffer without a reader consuming
		 * anything: input paused on a full buffer of failed records
		 * must resume here, or nothing else would resume it.
		 */
		so_input_resume_locked(so);
		return;
	}
	/*
	 * A KeyUpdate: the records after it wait for the next key, unless
	 * the application gave it while this record was out (sb_tls_next:
	 * with one record out at a time it can only be the answer to this
	 * one, and takes over at the next take).
	 */
	ku = KU_NONE;
	if (sp->sp_type == TLS_RLTYPE_HANDSHAKE && so->so_linux &&
	    sb->sb_tls_info->params.tls_vminor == TLS_MINOR_VER_THREE)
		ku = ktls_rx_keyupdate_locked(so, sp->sp_data, sp->sp_len);
	if (ku != KU_NONE && sb->sb_tls_next == NULL) {
		so->so_rekey_pending = 1;
		so->so_rekey_requested = ku == KU_REQUESTED;
	}
	sbappendcontrol_locked(sb, sp->sp_data, sp->sp_control);
	KTLS_COUNT(records_decrypted, 1);
	KTLS_COUNT(bytes_decrypted, sp->sp_len);
	/* Wake a waiting reader at the first record of a batch, so that
	 * latency does not wait for the whole batch. */
	if (sb->sb_mb == sb->sb_lastrecord)
		sorwakeup_locked(so);
}

/*
 * A detached record is back.  If it is the next in stream order it becomes
 * readable, and so do the parked records that were waiting for it;
 * otherwise it is parked.  If sbcut dropped the detached records meanwhile
 * it is freed.  Sockbuf locked.
 */
static void
ktls_rx_finish_locked(struct socket *so, struct ktls_rx_job *job)
{
	struct sockbuf *sb = &so->so_rcv;
	struct sb_tlsparked next;
	int error;

	SOCKBUF_LOCK_ASSERT(sb);
	if (job->j.sp_seqno == sb->sb_tls_pubseq) {
		error = sbdone_ktls_rx(sb, job->j.sp_reclen);
		if (error == 0) {
			ktls_rx_publish_locked(so, &job->j);
			while (sb->sb_tls_nparked != 0 &&
			    sbunpark_ktls_rx(sb, sb->sb_tls_pubseq, &next))
				ktls_rx_publish_locked(so, &next);
			KASSERT(sb->sb_tls_nparked == 0 ||
			    sb->sb_tls_inflight > 0,
			    ("ktls_rx_finish_locked: %u parked behind none",
			    sb->sb_tls_nparked));
			return;
		}
	} else
		error = sbpark_ktls_rx(sb, &job->j);
	if (error == ECANCELED) {
		/* sbcut dropped the record while it was unlocked. */
		KTLS_COUNT(records_cancelled, 1);
		m_freem(job->j.sp_data);
		m_free(job->j.sp_control);
	}
}

/*
 * Decrypt every whole record queued on so, one at a time.  Called by the
 * socket's worker with the socket RUNNING and a reference held, or by a
 * reader that would otherwise wait; sockbuf locked.
 *
 * For each record: with the lock held, check the header and detach the
 * record (its bytes move from sb_tlscc to sb_tlsdcc, still in sb_ccc); drop
 * the lock and decrypt in place; relock.  If sb_tlsdcc is 0 then sbcut
 * dropped the record meanwhile (close, shutdown) and it is freed.  Otherwise
 * the header and trailer are stripped and the plaintext appended as its own
 * record after a control mbuf holding struct tls_get_record; or, if readers
 * helping this pass (ktls_rx_help_locked) still have records ahead of it
 * out, parked until theirs are back.
 */
void
ktls_decrypt_locked(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;
	struct ktls_session *tls;
	struct ktls_rx_job job;
	int error, nobufs = 0;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT((sb->sb_flags & (SB_TLS_RX_RUNNING | SB_TLS_RX_ACTIVE |
	    SB_TLS_RX_INLINE)) == SB_TLS_RX_RUNNING,
	    ("ktls_decrypt_locked: socket %p flags %#x", (void *)so,
	    sb->sb_flags));
	sb->sb_flags |= SB_TLS_RX_ACTIVE;
	sb->sb_tls_cpu = sched_getcpu();
	for (;;) {
		if ((so->so_state & (SS_CLOSING | SS_RCVDEAD)) != 0)
			break;
		error = ktls_rx_take_locked(so, &job);
		if (error == EAGAIN)
			break;
		if (error == ENOBUFS) {
			if (++nobufs > KTLS_NOBUFS_RETRIES &&
			    sb->sb_tls_inflight != 0)
				/*
				 * Records ahead of this one that helping
				 * readers have out must not be cancelled
				 * with the stream: the last of them back
				 * looks again (ktls_check_rx).
				 */
				break;
			if (nobufs > KTLS_NOBUFS_RETRIES) {
				KTLS_COUNT(err_nomem, 1);
				so_rcvdead_locked(so, ENOBUFS, 1);
				break;
			}
			SOCKBUF_UNLOCK(sb);
			usleep(KTLS_NOBUFS_SLEEP_US);
			SOCKBUF_LOCK(sb);
			continue;
		}
		if (error != 0) {
			/*
			 * A malformed header.  Records ahead of it that
			 * helping readers have out must become readable
			 * first: the last of them back finds it again
			 * (ktls_check_rx).
			 */
			if (sb->sb_tls_inflight == 0) {
				ktls_count_header_error(error);
				so_rcvdead_locked(so, error, 1);
			}
			break;
		}
		nobufs = 0;
		/* A rekey may have put the next session in place. */
		tls = sb->sb_tls_info;
		SOCKBUF_UNLOCK(sb);
#ifdef UKTLS_TEST_HOOKS
		if (ktls_test_detach_hook != NULL)
			ktls_test_detach_hook(so);
#endif
		ktls_rx_decrypt(tls, tls->be_cookie, &job);
		SOCKBUF_LOCK(sb);
		ktls_rx_finish_locked(so, &job);
	}
	sb->sb_flags &= (uint16_t)~(SB_TLS_RX_RUNNING | SB_TLS_RX_ACTIVE);
	sb->sb_tls_cpu = -1;
	/*
	 * Bytes may have arrived while the lock was dropped; anything whole is
	 * picked up by the loop above, but EOF with a partial record left is
	 * only noticed here.
	 */
	ktls_check_rx(so);
	/* Once per batch, and also after a cancelled record or an error, so
	 * that a reader waiting for EOF or an error re-evaluates. */
	sorwakeup_locked(so);
}

int
ktls_rx_help_locked(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;
	struct ktls_session *tls = sb->sb_tls_info;
	struct ktls_rx_job job;
	void *cookie;
	int slot = -1, i;

	SOCKBUF_LOCK_ASSERT(sb);
	if ((sb->sb_flags & SB_TLS_RX_ACTIVE) == 0 ||
	    !ktls_config.inline_decrypt ||
	    (so->so_state & (SS_CLOSING | SS_RCVDEAD)) != 0)
		return 0;
	/*
	 * A Linux-form TLS 1.3 socket decrypts one record at a time: a
	 * record may be a KeyUpdate, and the one after it must not be
	 * decrypted under the old key (in place, which would lose it).
	 */
	if (sb->sb_tls_next != NULL || (so->so_linux &&
	    tls->params.tls_vminor == TLS_MINOR_VER_THREE))
		return 0;
	if (tls->be->shared_cookie)
		cookie = tls->be_cookie;
	else {
		/* A cookie of this reader's own, made once per session. */
		for (i = 0; i < KTLS_RX_HELPERS && slot < 0; i++)
			if (!tls->be_help_busy[i])
				slot = i;
		if (slot < 0 || (tls->be_help[slot] == NULL &&
		    tls->be->setup(&tls->params, &tls->be_help[slot]) != 0))
			return 0;
		cookie = tls->be_help[slot];
	}
	/* A bad header or empty pools are the pass's to deal with, in turn. */
	if (ktls_rx_take_locked(so, &job) != 0)
		return 0;
	if (slot >= 0)
		tls->be_help_busy[slot] = 1;
	SOCKBUF_UNLOCK(sb);
#ifdef UKTLS_TEST_HOOKS
	if (ktls_test_help_hook != NULL)
		ktls_test_help_hook(so);
#endif
	ktls_rx_decrypt(tls, cookie, &job);
	SOCKBUF_LOCK(sb);
	if (slot >= 0)
		tls->be_help_busy[slot] = 0;
	ktls_rx_finish_locked(so, &job);
	if (sb->sb_tls_inflight == 0 &&
	    (sb->sb_flags & SB_TLS_RX_RUNNING) == 0) {
		/* The pass ended while this record was out: what it left
		 * for the last record back (EOF, a bad header, more bytes). */
		ktls_check_rx(so);
		sorwakeup_locked(so);
	}
	return 1;
}

/*
 * A worker reached so on its list.  The pass it was queued for may have
 * been taken meanwhile by a reader that would otherwise have waited
 * (so_wait_record_locked), or handed to one (SB_TLS_RX_INLINE); then
 * there is nothing left to do here.
 */
static void
ktls_worker_visit(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;

	SOCKBUF_LOCK(sb);
	so->so_wq_onlist = 0;
	if ((sb->sb_flags & (SB_TLS_RX_RUNNING | SB_TLS_RX_ACTIVE |
	    SB_TLS_RX_INLINE)) == SB_TLS_RX_RUNNING)
		ktls_decrypt_locked(so);
	SOCKBUF_UNLOCK(sb);
}
