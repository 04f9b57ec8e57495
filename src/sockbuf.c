/*
 * Socket buffer operations for the receive side (FreeBSD's uipc_sockbuf.c):
 * the TLS chain of encrypted bytes, decrypted records with their control
 * mbufs, sbcut that accounts for a detached record, and the invariant
 * checker.  The locking contract is in sockbuf.h.
 */
#include "sockbuf.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Waits that sleep at once after a spin ran out (sbwait_active). */
#define SB_SPIN_SKIP 16

/* What one mbuf counts against sb_mbcnt. */
static inline uint32_t
m_cnt(const struct mbuf *m)
{
	return MSIZE + ((m->m_flags & M_EXT) != 0 ? m->m_len : 0);
}

void
sbinit(struct sockbuf *sb, uint32_t hiwat)
{
	pthread_mutexattr_t ma;

	memset(sb, 0, sizeof(*sb));
	atomic_init(&sb->sb_wakegen, 0);
	sb->sb_tls_cpu = -1;
	/*
	 * The lock is held for a few hundred nanoseconds at a time, by a
	 * reader and a worker that run side by side: spinning a little
	 * before sleeping on it (FreeBSD's adaptive mutexes) is far cheaper
	 * than the sleep and the wake-up.
	 */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&sb->sb_mtx, &ma);
	pthread_mutexattr_destroy(&ma);
	sb->sb_hiwat = hiwat;
	sb->sb_lowat = hiwat / 2;
	sb->sb_mbmax = 2 * hiwat + 2 * MJUMTLSBYTES;
}

uint32_t
sbspace_ktls_rx(const struct sockbuf *sb)
{
	uint32_t space, mbspace;

	if (sb->sb_ccc >= sb->sb_hiwat || sb->sb_mbcnt >= sb->sb_mbmax)
		return 0;
	space = sb->sb_hiwat - sb->sb_ccc;
	mbspace = sb->sb_mbmax - sb->sb_mbcnt;
	return space < mbspace ? space : mbspace;
}

int
sbresume_ktls_rx(const struct sockbuf *sb)
{
	return sb->sb_ccc < sb->sb_lowat && sb->sb_mbcnt < sb->sb_mbmax / 2;
}

void
sbdestroy(struct sockbuf *sb)
{
	KASSERT(sb->sb_mb == NULL && sb->sb_mtls == NULL &&
	    sb->sb_ccc == 0, ("sbdestroy: sockbuf %p not empty", (void *)sb));
	KASSERT(sb->sb_sleepers == 0, ("sbdestroy: sockbuf %p has sleepers",
	    (void *)sb));
	pthread_mutex_destroy(&sb->sb_mtx);
}

/*
 * A sleep is a futex wait on sb_wakegen, not a condition variable's wait:
 * the kernel then treats a signal as it does in a socket's own recv, and
 * a reader blocked here gets EINTR exactly when recv would have.  A
 * waiter reads the generation and counts itself in sb_sleepers under the
 * lock; sbwakeup bumps the generation and reads sb_sleepers under the
 * lock too, so a wake-up between the unlock and the wait makes the wait
 * return at once (the word no longer holds gen) instead of being missed.
 */
int
sbwait(struct sockbuf *sb, const struct timespec *abstime)
{
	uint32_t gen;
	int error = 0;

	SOCKBUF_LOCK_ASSERT(sb);
	gen = atomic_load_explicit(&sb->sb_wakegen, memory_order_relaxed);
	sb->sb_sleepers++;
	SOCKBUF_UNLOCK(sb);
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
	if (syscall(SYS_futex, &sb->sb_wakegen,
	    FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, gen, abstime, NULL,
	    FUTEX_BITSET_MATCH_ANY) != 0)
		error = errno;
	SOCKBUF_LOCK(sb);
	sb->sb_sleepers--;
	switch (error) {
	case ETIMEDOUT:
		return EAGAIN;
	case EINTR:
		return EINTR;
	default:
		/* Woken, or the word had changed already (EAGAIN). */
		return 0;
	}
}

void
sbwakeup(struct sockbuf *sb)
{
	SOCKBUF_LOCK_ASSERT(sb);
	/* Only holders of the lock change it: no locked add is needed. */
	atomic_store_explicit(&sb->sb_wakegen, atomic_load_explicit(
	    &sb->sb_wakegen, memory_order_relaxed) + 1, memory_order_release);
	/* A futex wake is a system call: none when nobody sleeps. */
	if (sb->sb_sleepers > 0)
		(void)syscall(SYS_futex, &sb->sb_wakegen,
		    FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static uint64_t
sb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void
sb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

int
sbwait_active(struct sockbuf *sb, const struct timespec *abstime,
    uint64_t spin_ns)
{
	uint32_t gen;
	uint64_t deadline;
	unsigned int i;

	SOCKBUF_LOCK_ASSERT(sb);
	if (spin_ns == 0 || (sb->sb_flags & SB_TLS_RX_ACTIVE) == 0 ||
	    (sb->sb_tls_cpu >= 0 && sched_getcpu() == sb->sb_tls_cpu))
		return sbwait(sb, abstime);
	if (sb->sb_spin_skip > 0) {
		sb->sb_spin_skip--;
		return sbwait(sb, abstime);
	}
	gen = atomic_load_explicit(&sb->sb_wakegen, memory_order_relaxed);
	SOCKBUF_UNLOCK(sb);
	deadline = sb_now_ns() + spin_ns;
	for (i = 1;; i++) {
		sb_cpu_relax();
		if (atomic_load_explicit(&sb->sb_wakegen,
		    memory_order_acquire) != gen)
			break;
		/* The clock is read now and then: it costs more than a
		 * pause. */
		if ((i & 31) == 0 && sb_now_ns() >= deadline)
			break;
	}
	SOCKBUF_LOCK(sb);
	/*
	 * sb_wakegen only changes under the lock: unchanged now, no wake-up
	 * can have been missed between the spin and the sleep.
	 */
	if (atomic_load_explicit(&sb->sb_wakegen, memory_order_relaxed) != gen)
		return 0;
	sb->sb_spin_skip = SB_SPIN_SKIP;
	return sbwait(sb, abstime);
}

void
sbappend_ktls_rx(struct sockbuf *sb, struct mbuf *m)
{
	struct mbuf *n, *tail;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT((sb->sb_flags & SB_TLS_RX) != 0,
	    ("sbappend_ktls_rx: sockbuf %p without TLS RX", (void *)sb));
	while (m != NULL) {
		n = m->m_next;
		m->m_next = NULL;
		m->m_nextpkt = NULL;
		m->m_flags = (uint16_t)((m->m_flags & ~M_EOR) | M_NOTREADY);
		tail = sb->sb_mtlstail;
		if (m->m_len == 0) {
			m_free(m);
		} else if (tail != NULL && (m->m_flags & M_EXT) == 0 &&
		    (tail->m_flags & M_EXT) == 0 &&
		    M_TRAILINGSPACE(tail) >= m->m_len) {
			/* Small bytes into the tail's own storage (FreeBSD's
			 * sbcompress): one mbuf, not one per segment. */
			memcpy(tail->m_data + tail->m_len, m->m_data, m->m_len);
			tail->m_len += m->m_len;
			sb->sb_tlscc += m->m_len;
			sb->sb_ccc += m->m_len;
			m_free(m);
		} else if (tail != NULL && (m->m_flags & M_EXT) != 0 &&
		    (tail->m_flags & M_EXT) != 0 &&
		    tail->m_ext == m->m_ext &&
		    tail->m_data + tail->m_len == m->m_data) {
			/*
			 * The new bytes continue the tail's range of the same
			 * cluster: extend the tail (the compression FreeBSD's
			 * sbcompress_ktls_rx does by copying).
			 */
			tail->m_len += m->m_len;
			sb->sb_tlscc += m->m_len;
			sb->sb_ccc += m->m_len;
			sb->sb_mbcnt += m->m_len;
			m_free(m);
		} else {
			if (tail != NULL)
				tail->m_next = m;
			else
				sb->sb_mtls = m;
			sb->sb_mtlstail = m;
			sb->sb_tlscc += m->m_len;
			sb->sb_ccc += m->m_len;
			sb->sb_mbcnt += m_cnt(m);
		}
		m = n;
	}
	SBCHECK(sb);
}

void
sbappendcontrol_locked(struct sockbuf *sb, struct mbuf *m, struct mbuf *ctl)
{
	struct mbuf *n, *last = ctl;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(ctl != NULL && ctl->m_type == MT_CONTROL && m != NULL,
	    ("sbappendcontrol_locked: bad record"));
	ctl->m_next = m;
	ctl->m_nextpkt = NULL;
	sb->sb_ctl += ctl->m_len;
	sb->sb_mbcnt += m_cnt(ctl);
	for (n = m; n != NULL; n = n->m_next) {
		KASSERT(n->m_type == MT_DATA && n->m_nextpkt == NULL,
		    ("sbappendcontrol_locked: bad data mbuf %p", (void *)n));
		n->m_flags &= (uint16_t)~(M_NOTREADY | M_EOR);
		sb->sb_acc += n->m_len;
		sb->sb_ccc += n->m_len;
		sb->sb_mbcnt += m_cnt(n);
		last = n;
	}
	last->m_flags |= M_EOR;
	if (sb->sb_lastrecord != NULL)
		sb->sb_lastrecord->m_nextpkt = ctl;
	else
		sb->sb_mb = ctl;
	sb->sb_lastrecord = ctl;
	sb->sb_mbtail = last;
	SBCHECK(sb);
}

int
sbdetach_ktls_rx(struct sockbuf *sb, uint32_t reclen, struct mbuf **recp)
{
	struct mbuf *m, *rem, *straddle = NULL;
	uint32_t seen = 0, cnt = 0;
	int error;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(reclen > 0 && sb->sb_tlscc >= reclen &&
	    sb->sb_tls_inflight + sb->sb_tls_nparked < SB_TLS_MAXINFLIGHT &&
	    (sb->sb_tlsdcc != 0 || sb->sb_tls_inflight == 0),
	    ("sbdetach_ktls_rx: tlscc %u tlsdcc %u reclen %u inflight %u "
	    "parked %u", sb->sb_tlscc, sb->sb_tlsdcc, reclen,
	    sb->sb_tls_inflight, sb->sb_tls_nparked));
	for (m = sb->sb_mtls; seen < reclen; m = m->m_next) {
		seen += m->m_len;
		cnt += m_cnt(m);
		if (seen > reclen)
			straddle = m;
	}
	rem = NULL;
	if (reclen < sb->sb_tlscc) {
		rem = m_split(sb->sb_mtls, reclen, &error);
		if (rem == NULL) {
			KASSERT(error != 0, ("sbdetach_ktls_rx: lost chain"));
			return error;
		}
	}
	*recp = sb->sb_mtls;
	sb->sb_mbcnt -= cnt;
	if (straddle != NULL) {
		/*
		 * m_split made rem, a new mbuf for straddle's remainder: the
		 * chain held more than reclen bytes, so reclen < sb_tlscc.
		 */
		KASSERT(rem != NULL,
		    ("sbdetach_ktls_rx: %p straddles, no remainder",
		    (void *)straddle));
		sb->sb_mbcnt += m_cnt(rem);
		if (sb->sb_mtlstail == straddle)
			sb->sb_mtlstail = rem;
	}
	sb->sb_mtls = rem;
	if (rem == NULL)
		sb->sb_mtlstail = NULL;
	sb->sb_tlscc -= reclen;
	sb->sb_tlsdcc += reclen;
	sb->sb_tls_inflight++;
	SBCHECK(sb);
	return 0;
}

/*
 * A detached record came back.  A cancel zeroes sb_tlsdcc, and no record is
 * detached after one while its records are out (the stream has stopped), so
 * sb_tlsdcc of 0 with a record out means that record was cancelled.
 */
static int
sbreturn_ktls_rx(struct sockbuf *sb)
{
	KASSERT(sb->sb_tls_inflight > 0, ("sbreturn_ktls_rx: none out"));
	sb->sb_tls_inflight--;
	return sb->sb_tlsdcc == 0 ? ECANCELED : 0;
}

/* The bytes of a record that leaves sb_tlsdcc for the readable chain. */
static void
sbtlsdcc_sub(struct sockbuf *sb, uint32_t reclen)
{
	KASSERT(sb->sb_tlsdcc >= reclen,
	    ("sbtlsdcc_sub: tlsdcc %u reclen %u", sb->sb_tlsdcc, reclen));
	sb->sb_tlsdcc -= reclen;
	sb->sb_ccc -= reclen;
}

int
sbdone_ktls_rx(struct sockbuf *sb, uint32_t reclen)
{
	int error;

	SOCKBUF_LOCK_ASSERT(sb);
	error = sbreturn_ktls_rx(sb);
	if (error == 0)
		sbtlsdcc_sub(sb, reclen);
	SBCHECK(sb);
	return error;
}

int
sbpark_ktls_rx(struct sockbuf *sb, const struct sb_tlsparked *sp)
{
	int error;

	SOCKBUF_LOCK_ASSERT(sb);
	error = sbreturn_ktls_rx(sb);
	if (error == 0) {
		KASSERT(sb->sb_tls_nparked < SB_TLS_MAXINFLIGHT &&
		    sb_tls_seq_lt(sb->sb_tls_pubseq, sp->sp_seqno),
		    ("sbpark_ktls_rx: parked %u seqno %llu pubseq %llu",
		    sb->sb_tls_nparked, (unsigned long long)sp->sp_seqno,
		    (unsigned long long)sb->sb_tls_pubseq));
		sb->sb_tls_parked[sb->sb_tls_nparked++] = *sp;
	}
	SBCHECK(sb);
	return error;
}

int
sbunpark_ktls_rx(struct sockbuf *sb, uint64_t seqno, struct sb_tlsparked *sp)
{
	uint32_t i;

	SOCKBUF_LOCK_ASSERT(sb);
	for (i = 0; i < sb->sb_tls_nparked; i++) {
		if (sb->sb_tls_parked[i].sp_seqno != seqno)
			continue;
		*sp = sb->sb_tls_parked[i];
		sb->sb_tls_parked[i] =
		    sb->sb_tls_parked[--sb->sb_tls_nparked];
		memset(&sb->sb_tls_parked[sb->sb_tls_nparked], 0,
		    sizeof(sb->sb_tls_parked[0]));
		sbtlsdcc_sub(sb, sp->sp_reclen);
		SBCHECK(sb);
		return 1;
	}
	return 0;
}

/*
 * Cancel the detached records: those being decrypted are freed by their
 * threads when they come back (sbreturn_ktls_rx), the parked ones here.
 */
static void
sbcancel_ktls_rx(struct sockbuf *sb)
{
	struct sb_tlsparked *sp;

	sb->sb_ccc -= sb->sb_tlsdcc;
	sb->sb_tlsdcc = 0;
	while (sb->sb_tls_nparked > 0) {
		sp = &sb->sb_tls_parked[--sb->sb_tls_nparked];
		m_freem(sp->sp_data);
		m_freem(sp->sp_control);
		memset(sp, 0, sizeof(*sp));
	}
	/* Nothing that was out will be readable: later records (none come
	 * after a cancel, but a test may go on) start the order afresh. */
	sb->sb_tls_pubseq = sb->sb_tls_seqno;
}

/* Unlink and free the first record of sb_mb. */
static void
sbfree_first_record(struct sockbuf *sb)
{
	struct mbuf *rec = sb->sb_mb, *m;

	sb->sb_mb = rec->m_nextpkt;
	rec->m_nextpkt = NULL;
	if (sb->sb_mb == NULL) {
		sb->sb_lastrecord = NULL;
		sb->sb_mbtail = NULL;
	}
	for (m = rec; m != NULL; m = m->m_next) {
		if (m->m_type == MT_CONTROL)
			sb->sb_ctl -= m->m_len;
		else {
			sb->sb_acc -= m->m_len;
			sb->sb_ccc -= m->m_len;
		}
		sb->sb_mbcnt -= m_cnt(m);
	}
	m_freem(rec);
}

void
sbfree_control_locked(struct sockbuf *sb)
{
	struct mbuf *ctl = sb->sb_mb;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(ctl != NULL && ctl->m_type == MT_CONTROL &&
	    ctl->m_next != NULL, ("sbfree_control_locked: no control"));
	sb->sb_mb = ctl->m_next;
	sb->sb_mb->m_nextpkt = ctl->m_nextpkt;
	if (sb->sb_lastrecord == ctl)
		sb->sb_lastrecord = sb->sb_mb;
	sb->sb_ctl -= ctl->m_len;
	sb->sb_mbcnt -= m_cnt(ctl);
	ctl->m_next = NULL;
	ctl->m_nextpkt = NULL;
	m_free(ctl);
	SBCHECK(sb);
}

void
sbdrop_record_bytes_locked(struct sockbuf *sb, uint32_t len)
{
	struct mbuf *m = sb->sb_mb, *next;
	uint32_t n;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(m != NULL && m->m_type == MT_DATA,
	    ("sbdrop_record_bytes_locked: no data record"));
	while (len > 0) {
		KASSERT((m->m_flags & M_EOR) == 0 || m->m_len > len,
		    ("sbdrop_record_bytes_locked: would empty the record"));
		n = m->m_len < len ? m->m_len : len;
		m->m_data += n;
		m->m_len -= n;
		len -= n;
		sb->sb_acc -= n;
		sb->sb_ccc -= n;
		if ((m->m_flags & M_EXT) != 0)
			sb->sb_mbcnt -= n;
		if (m->m_len == 0 && (m->m_flags & M_EOR) == 0) {
			/*
			 * Emptied: the next mbuf becomes the record's head.
			 * There is one: a record's last mbuf, and no other,
			 * carries M_EOR (sbcheck).
			 */
			next = m->m_next;
			KASSERT(next != NULL,
			    ("sbdrop_record_bytes_locked: %p ends its record "
			    "without M_EOR", (void *)m));
			next->m_nextpkt = m->m_nextpkt;
			if (sb->sb_lastrecord == m)
				sb->sb_lastrecord = next;
			sb->sb_mb = next;
			sb->sb_mbcnt -= MSIZE;
			m->m_next = NULL;
			m->m_nextpkt = NULL;
			m_free(m);
			m = next;
		}
	}
	SBCHECK(sb);
}

struct mbuf *
sbunlink_record_locked(struct sockbuf *sb)
{
	struct mbuf *rec = sb->sb_mb, *m;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(rec != NULL && rec->m_type == MT_DATA,
	    ("sbunlink_record_locked: no data record"));
	sb->sb_mb = rec->m_nextpkt;
	rec->m_nextpkt = NULL;
	if (sb->sb_mb == NULL) {
		sb->sb_lastrecord = NULL;
		sb->sb_mbtail = NULL;
	}
	for (m = rec; m != NULL; m = m->m_next) {
		sb->sb_acc -= m->m_len;
		sb->sb_ccc -= m->m_len;
		sb->sb_mbcnt -= m_cnt(m);
	}
	SBCHECK(sb);
	return rec;
}

void
sbdroprecord_locked(struct sockbuf *sb)
{
	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(sb->sb_mb != NULL, ("sbdroprecord_locked: empty"));
	sbfree_first_record(sb);
	SBCHECK(sb);
}

void
sbcut_locked(struct sockbuf *sb, uint32_t len)
{
	struct mbuf *m;
	uint32_t n;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(len <= sb->sb_ccc, ("sbcut_locked: len %u > ccc %u", len,
	    sb->sb_ccc));
	/* Readable records first. */
	while (sb->sb_mb != NULL && len > 0) {
		m = sb->sb_mb;
		if (m->m_type == MT_CONTROL) {
			sbfree_control_locked(sb);
			continue;
		}
		n = m_length(m, NULL);
		if (len >= n) {
			sbfree_first_record(sb);
			len -= n;
		} else {
			sbdrop_record_bytes_locked(sb, len);
			len = 0;
		}
	}
	/*
	 * Then the detached records.  Zeroing sb_tlsdcc is the signal to the
	 * threads decrypting them that they are no longer wanted: each frees
	 * its record when it relocks (sbdone_ktls_rx, sbpark_ktls_rx).
	 */
	if (len > 0 && sb->sb_tlsdcc != 0) {
		KASSERT(len >= sb->sb_tlsdcc,
		    ("sbcut_locked: partial cut of the detached records"));
		len -= sb->sb_tlsdcc;
		sbcancel_ktls_rx(sb);
	}
	/* Then encrypted bytes. */
	while (len > 0) {
		m = sb->sb_mtls;
		KASSERT(m != NULL, ("sbcut_locked: TLS chain too short"));
		n = m->m_len < len ? m->m_len : len;
		m->m_data += n;
		m->m_len -= n;
		sb->sb_tlscc -= n;
		sb->sb_ccc -= n;
		if ((m->m_flags & M_EXT) != 0)
			sb->sb_mbcnt -= n;
		len -= n;
		if (m->m_len == 0) {
			sb->sb_mtls = m->m_next;
			if (sb->sb_mtls == NULL)
				sb->sb_mtlstail = NULL;
			sb->sb_mbcnt -= MSIZE;
			m->m_next = NULL;
			m_free(m);
		}
	}
	SBCHECK(sb);
}

void
sbdrop_locked(struct sockbuf *sb, uint32_t len)
{
	sbcut_locked(sb, len);
}

void
sbflush_ktls_rx_locked(struct sockbuf *sb)
{
	struct mbuf *m;

	SOCKBUF_LOCK_ASSERT(sb);
	sbcancel_ktls_rx(sb);
	while ((m = sb->sb_mtls) != NULL) {
		sb->sb_mtls = m->m_next;
		sb->sb_tlscc -= m->m_len;
		sb->sb_ccc -= m->m_len;
		sb->sb_mbcnt -= m_cnt(m);
		m->m_next = NULL;
		m_free(m);
	}
	sb->sb_mtlstail = NULL;
	SBCHECK(sb);
}

void
sbflush_locked(struct sockbuf *sb)
{
	SOCKBUF_LOCK_ASSERT(sb);
	sbcut_locked(sb, sb->sb_ccc);
	/* Records with no data left (empty records) go too. */
	while (sb->sb_mb != NULL)
		sbfree_first_record(sb);
	KASSERT(sb->sb_ccc == 0 && sb->sb_mb == NULL && sb->sb_mtls == NULL &&
	    sb->sb_mbcnt == 0 && sb->sb_ctl == 0,
	    ("sbflush_locked: ccc %u mbcnt %u ctl %u left", sb->sb_ccc,
	    sb->sb_mbcnt, sb->sb_ctl));
	SBCHECK(sb);
}

/*
 * Pooled memory is not cleared when an mbuf is freed (the next user writes
 * over it), so plaintext that must leave no copy behind is zeroed here
 * before the flush: the records a hand-off passed to an enable that then
 * failed, which the TLS library wiped its own copies of.  The wipe and the
 * flush happen under one hold of the lock, so no reader sees the zeros.
 */
void
sbflush_wipe_locked(struct sockbuf *sb)
{
	struct mbuf *rec, *m;

	SOCKBUF_LOCK_ASSERT(sb);
	for (rec = sb->sb_mb; rec != NULL; rec = rec->m_nextpkt)
		for (m = rec; m != NULL; m = m->m_next)
			if (m->m_type == MT_DATA && m->m_len > 0)
				explicit_bzero(m->m_data, m->m_len);
	sbflush_locked(sb);
}

#ifdef UKTLS_INVARIANTS
/*
 * Check every invariant of the socket buffer (FreeBSD's SBCHECK, with the
 * TLS chain's assertions).  Runs with the lock held after every change.
 */
void
sbcheck(struct sockbuf *sb, const char *where)
{
	struct mbuf *rec, *m, *lastrec = NULL, *last = NULL;
	uint32_t acc = 0, ctl = 0, tlscc = 0, mbcnt = 0;

	SOCKBUF_LOCK_ASSERT(sb);
	for (rec = sb->sb_mb; rec != NULL; rec = rec->m_nextpkt) {
		int ndata = 0;

		lastrec = rec;
		m_sanity(rec, where);
		for (m = rec; m != NULL; m = m->m_next) {
			if (m != rec && m->m_nextpkt != NULL)
				uktls_panic("%s: sbcheck: m_nextpkt inside a "
				    "record", where);
			if ((m->m_flags & M_NOTREADY) != 0)
				uktls_panic("%s: sbcheck: not-ready mbuf in "
				    "sb_mb", where);
			if (m->m_type == MT_CONTROL) {
				if (m != rec)
					uktls_panic("%s: sbcheck: control "
					    "mbuf inside a record", where);
				ctl += m->m_len;
			} else {
				if (m->m_type != MT_DATA)
					uktls_panic("%s: sbcheck: mbuf type "
					    "%u in sb_mb", where, m->m_type);
				ndata++;
				acc += m->m_len;
				if (((m->m_flags & M_EOR) != 0) !=
				    (m->m_next == NULL))
					uktls_panic("%s: sbcheck: M_EOR not on "
					    "the record's last mbuf", where);
			}
			mbcnt += m_cnt(m);
			last = m;
		}
		if (ndata == 0)
			uktls_panic("%s: sbcheck: record without data mbuf",
			    where);
	}
	if (sb->sb_lastrecord != lastrec || sb->sb_mbtail != last)
		uktls_panic("%s: sbcheck: lastrecord %p/%p mbtail %p/%p", where,
		    (void *)sb->sb_lastrecord, (void *)lastrec,
		    (void *)sb->sb_mbtail, (void *)last);
	last = NULL;
	m_sanity(sb->sb_mtls, where);
	for (m = sb->sb_mtls; m != NULL; m = m->m_next) {
		if ((m->m_flags & M_NOTREADY) == 0 || m->m_nextpkt != NULL ||
		    m->m_type != MT_DATA)
			uktls_panic("%s: sbcheck: bad TLS-chain mbuf %p", where,
			    (void *)m);
		tlscc += m->m_len;
		mbcnt += m_cnt(m);
		last = m;
	}
	if (sb->sb_mtlstail != last)
		uktls_panic("%s: sbcheck: mtlstail %p, last %p", where,
		    (void *)sb->sb_mtlstail, (void *)last);
	if (acc != sb->sb_acc || ctl != sb->sb_ctl || tlscc != sb->sb_tlscc ||
	    mbcnt != sb->sb_mbcnt ||
	    sb->sb_ccc != sb->sb_acc + sb->sb_tlsdcc + sb->sb_tlscc)
		uktls_panic("%s: sbcheck: acc %u/%u ctl %u/%u tlscc %u/%u "
		    "mbcnt %u/%u ccc %u tlsdcc %u", where, acc, sb->sb_acc, ctl,
		    sb->sb_ctl, tlscc, sb->sb_tlscc, mbcnt, sb->sb_mbcnt,
		    sb->sb_ccc, sb->sb_tlsdcc);
	if ((sb->sb_flags & SB_TLS_RX) == 0 &&
	    (sb->sb_mtls != NULL || sb->sb_tlsdcc != 0))
		uktls_panic("%s: sbcheck: TLS bytes without SB_TLS_RX", where);
	/*
	 * Parked records wait for one ahead of them, which is out being
	 * decrypted (or just back: ktls_rx_finish_locked asserts that none
	 * is left waiting for nothing); their bytes are part of sb_tlsdcc.
	 */
	{
		uint32_t i, j, parked = 0;

		if (sb->sb_tls_nparked > SB_TLS_MAXINFLIGHT ||
		    sb->sb_tls_inflight + sb->sb_tls_nparked >
		    SB_TLS_MAXINFLIGHT)
			uktls_panic("%s: sbcheck: %u parked, %u out", where,
			    sb->sb_tls_nparked, sb->sb_tls_inflight);
		for (i = 0; i < sb->sb_tls_nparked; i++) {
			const struct sb_tlsparked *sp = &sb->sb_tls_parked[i];

			if (sb_tls_seq_lt(sp->sp_seqno, sb->sb_tls_pubseq) ||
			    !sb_tls_seq_lt(sp->sp_seqno, sb->sb_tls_seqno))
				uktls_panic("%s: sbcheck: parked record %llu "
				    "outside [%llu, %llu)", where,
				    (unsigned long long)sp->sp_seqno,
				    (unsigned long long)sb->sb_tls_pubseq,
				    (unsigned long long)sb->sb_tls_seqno);
			for (j = 0; j < i; j++)
				if (sb->sb_tls_parked[j].sp_seqno ==
				    sp->sp_seqno)
					uktls_panic("%s: sbcheck: record %llu "
					    "parked twice", where,
					    (unsigned long long)sp->sp_seqno);
			if (sp->sp_control == NULL ||
			    (sp->sp_error == 0) != (sp->sp_data != NULL))
				uktls_panic("%s: sbcheck: parked record %llu "
				    "incomplete", where,
				    (unsigned long long)sp->sp_seqno);
			m_sanity(sp->sp_data, where);
			parked += sp->sp_reclen;
		}
		if (parked > sb->sb_tlsdcc ||
		    (sb->sb_tls_inflight == 0 && parked != sb->sb_tlsdcc))
			uktls_panic("%s: sbcheck: parked %u bytes, tlsdcc %u, "
			    "%u out", where, parked, sb->sb_tlsdcc,
			    sb->sb_tls_inflight);
		/*
		 * Every record numbered between the next to publish and the
		 * next to detach is out or parked; one more only between
		 * sbdone_ktls_rx and its publication (ktls_rx_finish_locked).
		 * Anything else would park every later record for good.
		 */
		if (sb->sb_tls_seqno - sb->sb_tls_pubseq >
		    (uint64_t)sb->sb_tls_inflight + sb->sb_tls_nparked + 1)
			uktls_panic("%s: sbcheck: publishing %llu, next %llu, "
			    "%u out, %u parked", where,
			    (unsigned long long)sb->sb_tls_pubseq,
			    (unsigned long long)sb->sb_tls_seqno,
			    sb->sb_tls_inflight, sb->sb_tls_nparked);
	}
}
#endif
