/*
 * The receive socket buffer (FreeBSD's struct sockbuf, receive side only).
 *
 * Two chains live here.  The normal chain sb_mb holds readable records, each
 * a control mbuf (struct tls_get_record) followed by its data mbufs, the last
 * of them marked M_EOR; records are linked through m_nextpkt of their first
 * mbuf.  The TLS chain sb_mtls .. sb_mtlstail holds encrypted stream bytes as
 * the socket delivered them, every mbuf M_NOTREADY, linked by m_next only.
 * While a thread decrypts a record it has detached from the TLS chain, the
 * record's length is in sb_tlsdcc: still part of sb_ccc, in neither chain.
 * Several records of one socket may be detached at once (a worker's pass
 * and readers that help it, up to SB_TLS_MAXINFLIGHT); they become readable
 * in stream order.  One that is done before the records ahead of it waits,
 * decrypted, in sb_tls_parked, its bytes still in sb_tlsdcc.
 *
 * Counts (all in bytes):
 *   sb_acc    data bytes in sb_mb (all of them readable)
 *   sb_ctl    control bytes in sb_mb
 *   sb_tlscc  bytes in the TLS chain
 *   sb_tlsdcc bytes of the detached records, parked ones included (0 when
 *             none, or when sbcut cancelled them: each thread decrypting
 *             one then frees it, and sbcut freed the parked ones)
 *   sb_ccc    sb_acc + sb_tlsdcc + sb_tlscc: what counts against sb_hiwat
 *   sb_mbcnt  MSIZE per mbuf in either chain, plus for cluster mbufs the
 *             bytes they reference; bounded by sb_mbmax as sb_ccc is by
 *             sb_hiwat, so that many tiny records cannot use unbounded
 *             memory
 *
 * Locking: sb_mtx guards every field and both chains.  Every function here
 * expects it held (SOCKBUF_LOCK_ASSERT) and runs sbcheck() before it returns
 * in builds with UKTLS_INVARIANTS.  Lock order: sb_mtx, then a work-queue
 * mutex; the mbuf pool mutexes are leaves.
 */
#ifndef UKTLS_SOCKBUF_H
#define UKTLS_SOCKBUF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kassert.h"
#include "mbuf.h"

struct ktls_session;

/* sb_state */
#define SBS_CANTRCVMORE 0x0001 /* no more bytes will come (EOF, shutdown) */

/* sb_flags */
#define SB_TLS_RX 0x0001         /* the TLS chain is in use */
#define SB_TLS_RX_RUNNING 0x0002 /* a decryption pass is due or under way */
#define SB_TLS_RX_INLINE 0x0004  /* RUNNING, left to a waiting reader */
#define SB_TLS_RX_ACTIVE 0x0008  /* RUNNING, a thread is in ktls_decrypt */

/*
 * Sequence numbers in order, modulo 2^64 (as TCP's SEQ_LT): a stream whose
 * numbers started near 2^64 may wrap to 0 between two records.
 */
static inline int
sb_tls_seq_lt(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) < 0;
}

/* Records of one socket detached at once, at most. */
#define SB_TLS_MAXINFLIGHT 4

/*
 * A record decrypted (or failed) before the records ahead of it: it waits
 * here until they are readable, then is appended (or its error reported)
 * in turn.  Owned by the sockbuf; sbcut frees it.
 */
struct sb_tlsparked {
	struct mbuf *sp_data;    /* plaintext, header and trailer stripped */
	struct mbuf *sp_control; /* struct tls_get_record, filled in */
	uint64_t sp_seqno;
	uint32_t sp_reclen;      /* bytes it took on the wire (sb_tlsdcc) */
	uint32_t sp_len;         /* plaintext bytes */
	int sp_error;            /* 0, or why it could not be decrypted */
	uint8_t sp_type;         /* the record's content type, decrypted */
};

struct sockbuf {
	pthread_mutex_t sb_mtx;
	pthread_t sb_owner;           /* holder of sb_mtx, for assertions */
	int sb_owned;
	struct mbuf *sb_mb;           /* first readable record */
	struct mbuf *sb_mbtail;       /* last mbuf of the last record */
	struct mbuf *sb_lastrecord;   /* first mbuf of the last record */
	struct mbuf *sb_mtls;         /* TLS chain: encrypted bytes */
	struct mbuf *sb_mtlstail;
	uint32_t sb_ccc;
	uint32_t sb_acc;
	uint32_t sb_ctl;
	uint32_t sb_tlscc;
	uint32_t sb_tlsdcc;
	uint32_t sb_mbcnt;
	uint32_t sb_hiwat;            /* stop reading the socket here */
	uint32_t sb_lowat;            /* resume reading below this */
	uint32_t sb_mbmax;            /* and here, for sb_mbcnt */
	uint16_t sb_state;
	uint16_t sb_flags;
	uint32_t sb_rwaiters;         /* readers blocked in sbwait */
	/*
	 * Bumped, under sb_mtx, by every sbwakeup: a reader spinning
	 * unlocked in sbwait_active watches it rather than the fields the
	 * lock guards, and sbwait sleeps on it (a futex word).
	 */
	_Atomic uint32_t sb_wakegen;
	uint32_t sb_sleepers;         /* threads asleep on sb_wakegen */
	int sb_tls_cpu;               /* CPU of the thread in ktls_decrypt */
	uint32_t sb_spin_skip;        /* sleeps left before the next spin */
	uint64_t sb_tls_seqno;        /* sequence number of the next record */
	uint64_t sb_tls_pubseq;       /* the next record to become readable */
	uint32_t sb_tls_inflight;     /* records detached, being decrypted */
	uint32_t sb_tls_nparked;
	struct sb_tlsparked sb_tls_parked[SB_TLS_MAXINFLIGHT];
	struct ktls_session *sb_tls_info;
	/*
	 * The next session, given by a TLS 1.3 rekey (Linux form) while a
	 * record was out under the current one: it takes over once none is
	 * out (ktls_rx_rekey_locked), with its own sequence number.
	 */
	struct ktls_session *sb_tls_next;
};

void sbinit(struct sockbuf *sb, uint32_t hiwat);
/* Bytes the socket may still read before it must stop (flow control). */
uint32_t sbspace_ktls_rx(const struct sockbuf *sb);
/* Has the buffer drained enough for reading to resume? */
int sbresume_ktls_rx(const struct sockbuf *sb);
void sbdestroy(struct sockbuf *sb);

static inline void
SOCKBUF_LOCK(struct sockbuf *sb)
{
	pthread_mutex_lock(&sb->sb_mtx);
#ifdef UKTLS_INVARIANTS
	sb->sb_owner = pthread_self();
	sb->sb_owned = 1;
#endif
}

static inline void
SOCKBUF_UNLOCK(struct sockbuf *sb)
{
#ifdef UKTLS_INVARIANTS
	sb->sb_owned = 0;
#endif
	pthread_mutex_unlock(&sb->sb_mtx);
}

/*
 * Sleep until the next sbwakeup, abstime (CLOCK_MONOTONIC) or a signal; the
 * lock is dropped and retaken.  Returns 0 (woken, or spuriously: callers
 * look again), EAGAIN when abstime passed, or EINTR when a signal handler
 * ran that the kernel would not restart a socket's recv for: one without
 * SA_RESTART, or any handler while abstime is set (signal(7), as recv with
 * SO_RCVTIMEO).
 */
int sbwait(struct sockbuf *sb, const struct timespec *abstime);

/*
 * sbwait, for a reader.  When another thread is decrypting a record at this
 * moment (SB_TLS_RX_ACTIVE), that record will be appended within about one
 * cipher time, which is shorter than a sleep and a wake-up cost, so the
 * caller first spins for up to spin_ns with the lock dropped, watching
 * sb_wakegen, and sleeps only if nothing happened by then.  No spin when the caller runs
 * on the decrypting thread's CPU (sb_tls_cpu): that thread could not run
 * until the spin ended.  A spin that runs out (the decrypting thread was
 * not running, or the records are slow) makes the next few waits sleep at
 * once (sb_spin_skip), so that a machine with more threads than CPUs does
 * not lose a spin's worth of CPU per record.  Returns 0 when woken (by
 * the spin or the sleep), EAGAIN when abstime passed or EINTR as sbwait;
 * the lock is held on return either way.
 */
int sbwait_active(struct sockbuf *sb, const struct timespec *abstime,
    uint64_t spin_ns);

/* Wake every thread in sbwait or sbwait_active on sb. */
void sbwakeup(struct sockbuf *sb);

#ifdef UKTLS_INVARIANTS
#define SOCKBUF_LOCK_ASSERT(sb)                                            \
	KASSERT((sb)->sb_owned && pthread_equal((sb)->sb_owner,            \
	    pthread_self()), ("%s: sockbuf %p not locked", __func__,       \
	    (void *)(sb)))
void sbcheck(struct sockbuf *sb, const char *where);
#define SBCHECK(sb) sbcheck((sb), __func__)
#else
#define SOCKBUF_LOCK_ASSERT(sb)                                            \
	do {                                                               \
	} while (0)
#define SBCHECK(sb)                                                        \
	do {                                                               \
	} while (0)
#endif

/*
 * Append the chain m of encrypted bytes to the TLS chain.  The mbufs are
 * marked M_NOTREADY and stripped of record marks; bytes that continue the
 * tail mbuf's storage contiguously extend it instead of adding an mbuf.  The
 * caller then calls ktls_check_rx().
 */
void sbappend_ktls_rx(struct sockbuf *sb, struct mbuf *m);

/*
 * Append a decrypted record: control mbuf ctl followed by the data chain m
 * (its last mbuf gets M_EOR).  Both are owned by the sockbuf afterwards.
 */
void sbappendcontrol_locked(struct sockbuf *sb, struct mbuf *m,
    struct mbuf *ctl);

/*
 * Detach the first reclen bytes of the TLS chain as one record for
 * decryption.  On success *recp is the record's chain, its bytes move to
 * sb_tlsdcc and sb_tls_inflight counts it.  ENOBUFS (nothing changed) when
 * the split needs an mbuf the pool cannot give.  Not after a cancel whose
 * records are still out (sbcut stops the stream first).
 */
int sbdetach_ktls_rx(struct sockbuf *sb, uint32_t reclen, struct mbuf **recp);

/*
 * A detached record of reclen bytes is back (decrypted or not) and about to
 * be appended or reported: remove its bytes from sb_tlsdcc and sb_ccc.
 * Returns 0, or ECANCELED if sbcut dropped the detached records while the
 * lock was released (the caller frees it).
 */
int sbdone_ktls_rx(struct sockbuf *sb, uint32_t reclen);

/*
 * A detached record is back before the records ahead of it: keep it, bytes
 * and all, until sbunpark_ktls_rx hands it out in turn.  Returns 0 (*sp is
 * the sockbuf's now), or ECANCELED as sbdone_ktls_rx.
 */
int sbpark_ktls_rx(struct sockbuf *sb, const struct sb_tlsparked *sp);

/*
 * Take the parked record with sequence number seqno, if there is one, as
 * sbdone_ktls_rx would: returns 1 with *sp filled, else 0.
 */
int sbunpark_ktls_rx(struct sockbuf *sb, uint64_t seqno,
    struct sb_tlsparked *sp);

/*
 * Cut len bytes from the front of the buffer: readable records first, then
 * the detached records (all of them: cancelled by zeroing sb_tlsdcc, the
 * parked ones freed), then the TLS chain.
 */
void sbcut_locked(struct sockbuf *sb, uint32_t len);
void sbdrop_locked(struct sockbuf *sb, uint32_t len);
/* Drop the encrypted bytes: the TLS chain and any detached records. */
void sbflush_ktls_rx_locked(struct sockbuf *sb);
/* Drop everything in the buffer. */
void sbflush_locked(struct sockbuf *sb);
/* The same, zeroing the plaintext records' data before the mbufs go back
 * to the pools. */
void sbflush_wipe_locked(struct sockbuf *sb);

/* Reader side: the first record's control mbuf is consumed. */
void sbfree_control_locked(struct sockbuf *sb);
/* Reader side: drop len data bytes of the first record (not all of it). */
void sbdrop_record_bytes_locked(struct sockbuf *sb, uint32_t len);
/*
 * Reader side: unlink the first record (data mbufs only, its control mbuf
 * already freed) and hand its chain to the caller, who frees it.
 */
struct mbuf *sbunlink_record_locked(struct sockbuf *sb);
/* Reader side: drop the whole first record. */
void sbdroprecord_locked(struct sockbuf *sb);

#endif /* UKTLS_SOCKBUF_H */
