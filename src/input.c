/*
 * Protocol input threads: TCP bytes straight into cluster mbufs, appended
 * to the TLS chain.  The contract is in input.h.
 *
 * An input thread fills clusters it holds itself and hands each range it
 * filled to the sockbuf as an mbuf sharing the cluster; it never writes to a
 * byte it has handed over, and nobody else writes to a byte it has not, so
 * the recv() runs without the sockbuf lock and with no copy.  Consecutive
 * ranges of one cluster merge into the TLS chain's tail mbuf
 * (sbappend_ktls_rx), so a stream of one-byte segments costs no mbuf each.
 */
#include "input.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kassert.h"
#include "ktls.h"
#include "mbuf.h"
#include "socket.h"
#include "tls_record.h"

/* At most this many clusters are filled by one recvmsg. */
#define INPUT_IOV 8
/* A cluster with less room than this is retired rather than read into. */
#define INPUT_MIN_ROOM 512
#define INPUT_EVENTS 64

struct input_thread {
	pthread_t it_thread;
	int it_epfd;
	int it_wakefd;
	pthread_mutex_t it_mtx;     /* guards it_reap */
	struct socket *it_reap;     /* closed sockets to release */
	/* Owned by the thread alone: clusters being filled.  m_len is the
	 * part already handed to sockbufs. */
	struct mbuf *it_cl[INPUT_IOV];
};

static struct input_thread *input_threads;
static unsigned int input_nthreads;
static atomic_uint input_next;

/*
 * Ranges shorter than this are copied out of the shared cluster: a range
 * that stays (an idle peer's partial record) then pins about four times
 * its size, not a whole large cluster, whatever the other sockets do.
 */
#define INPUT_COPY_MAX 4096

/*
 * Copy len bytes into the empty inline mbuf m and further inline mbufs
 * chained after it (about 1.2 bytes of memory per byte, and no cluster).
 * ENOBUFS (m unchanged, nothing leaked) when an mbuf is not to be had; the
 * caller then shares the input cluster instead.
 */
static int
input_copy_small(struct mbuf *m, const char *src, uint32_t len)
{
	struct mbuf *n, *last = m;
	uint32_t k;

	k = len < (uint32_t)MLEN ? len : (uint32_t)MLEN;
	while (len - k > 0) {
		n = m_get(MT_DATA);
		if (n == NULL) {
			m_freem(m->m_next);
			m->m_next = NULL;
			return ENOBUFS;
		}
		n->m_len = len - k < (uint32_t)MLEN ? len - k : (uint32_t)MLEN;
		memcpy(n->m_data, src + k, n->m_len);
		k += n->m_len;
		last->m_next = n;
		last = n;
	}
	m->m_len = len < (uint32_t)MLEN ? len : (uint32_t)MLEN;
	memcpy(m->m_dat, src, m->m_len);
	return 0;
}

static uint32_t
input_room(const struct mbuf *cl)
{
	return (uint32_t)(cl->m_ext->cl_size - cl->m_len -
	    (uint32_t)(cl->m_data - cl->m_ext->cl_buf));
}

/* ---- record boundaries and the layout of a read ------------------------ */

/*
 * The longest record the engine accepts is TLS 1.3's (2^14 + 256); a TLS
 * 1.2 AEAD record is at most 2^14 plus its nonce and tag (tls_record.c).
 */
_Static_assert(MJUMTLSBYTES >= TLS_HEADER_LEN + TLS13_MAX_CIPHERTEXT_LEN,
    "a large cluster holds any record the engine accepts");

void
input_track_bytes(struct input_track *tr, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t k, n;

	while (len > 0 && !tr->tr_lost) {
		if (tr->tr_left > 0) {
			k = len < tr->tr_left ? (uint32_t)len : tr->tr_left;
			tr->tr_left -= k;
			p += k;
			len -= k;
			continue;
		}
		k = (uint32_t)(TLS_HEADER_LEN - tr->tr_hdrlen);
		if (k > len)
			k = (uint32_t)len;
		memcpy(tr->tr_hdr + tr->tr_hdrlen, p, k);
		tr->tr_hdrlen = (uint8_t)(tr->tr_hdrlen + k);
		p += k;
		len -= k;
		if (tr->tr_hdrlen < TLS_HEADER_LEN)
			break;
		tr->tr_hdrlen = 0;
		n = (uint32_t)tr->tr_hdr[3] << 8 | tr->tr_hdr[4];
		if (tr->tr_hdr[1] != TLS_MAJOR_VER_ONE ||
		    n > TLS13_MAX_CIPHERTEXT_LEN) {
			/*
			 * No peer sends this; the engine will fail the stream
			 * when it gets there.  Until then reads fill clusters
			 * in turn, as they do before the first header.
			 */
			tr->tr_lost = 1;
			tr->tr_left = 0;
			tr->tr_reclen = 0;
			break;
		}
		tr->tr_left = n;
		tr->tr_reclen = TLS_HEADER_LEN + n;
	}
}

#define INPUT_UNBOUNDED UINT32_MAX

/*
 * Bytes from the stream's position to where tr expects a record to end:
 * the record under way (first) or the one after.  INPUT_UNBOUNDED when
 * nothing is known.
 */
static uint32_t
input_piece(const struct input_track *tr, int first)
{
	if (tr->tr_lost || tr->tr_reclen == 0)
		return INPUT_UNBOUNDED;
	if (first && tr->tr_left > 0)
		return tr->tr_left;
	if (first && tr->tr_hdrlen > 0)
		return tr->tr_reclen - tr->tr_hdrlen; /* tr_reclen >= 5 */
	return tr->tr_reclen;
}

int
input_at_record_end(const struct input_track *tr, uint32_t n)
{
	uint32_t first = input_piece(tr, 1);

	if (first == INPUT_UNBOUNDED)
		return 0;
	return n >= first && (n - first) % tr->tr_reclen == 0;
}

unsigned int
input_layout(const struct input_track *tr, uint32_t want,
    const uint32_t *room, unsigned int ncl, int cont, uint32_t *len,
    uint8_t *fresh)
{
	uint32_t need, avail, take, laid = 0, atend = 0;
	unsigned int i;

	need = input_piece(tr, 1);
	for (i = 0; i < ncl && want > 0; i++) {
		len[i] = 0;
		fresh[i] = 0;
		avail = room[i];
		KASSERT(avail > 0 && avail <= MJUMTLSBYTES,
		    ("input_layout: cluster %u has room %u", i, avail));
		while (want > 0 && avail > 0) {
			take = need < want ? need : want;
			if (take <= avail) {
				/* The piece (or the read's last bytes) fits. */
				len[i] += take;
				avail -= take;
				want -= take;
				laid += take;
				if (need != INPUT_UNBOUNDED) {
					need -= take;
					if (need == 0) {
						atend = laid;
						need = input_piece(tr, 0);
					}
				}
				continue;
			}
			if (need == INPUT_UNBOUNDED || need > MJUMTLSBYTES ||
			    (len[i] == 0 && avail == MJUMTLSBYTES) ||
			    (len[i] == 0 && i == 0 && cont)) {
				/*
				 * No cluster holds it whole (or its start
				 * already lies in this one, which ran out of
				 * room: it was longer than guessed): fill this
				 * one.
				 */
				len[i] += avail;
				want -= avail;
				laid += avail;
				if (need != INPUT_UNBOUNDED)
					need -= avail;
				break;
			}
			if (len[i] == 0) {
				/*
				 * Nothing of this read here yet: an empty
				 * cluster in this one's place.  The room given
				 * up is at most one record's worth, and the
				 * bytes already in the cluster keep it alive
				 * only until they are read.
				 */
				fresh[i] = 1;
				avail = MJUMTLSBYTES;
				continue;
			}
			/* The next record starts in the next cluster. */
			break;
		}
	}
	/*
	 * A read that would end inside a record, after the end of another,
	 * stops at that end instead: the record's first bytes would be left
	 * at the end of the read, copied out if few, and its rest would start
	 * another range (most often another cluster).  What stays in the
	 * socket comes with the next read.
	 */
	if (need != INPUT_UNBOUNDED && atend > 0 && laid > atend) {
		while (laid - len[i - 1] >= atend) {
			laid -= len[i - 1];
			i--;
		}
		len[i - 1] -= laid - atend;
	}
	return i;
}

/*
 * Lay a read of up to space bytes over the room the clusters held already
 * have, in turn (none are taken); returns the number of iovecs, ci[] the
 * cluster of each.
 */
static uint32_t
input_fill_room(struct mbuf **cl, unsigned int ncl, uint32_t space,
    struct iovec *iov, unsigned int *ci)
{
	uint32_t nio = 0, k;
	unsigned int j;

	for (j = 0; j < ncl && space > 0; j++) {
		if (cl[j] == NULL)
			continue;
		k = input_room(cl[j]);
		if (k > space)
			k = space;
		ci[nio] = j;
		iov[nio].iov_base = cl[j]->m_data + cl[j]->m_len;
		iov[nio].iov_len = k;
		space -= k;
		nio++;
	}
	return nio;
}

int
input_continue_first(struct mbuf **cl, unsigned int ncl,
    const struct mbuf *tail)
{
	struct mbuf *t;
	unsigned int i;

	if (tail == NULL || (tail->m_flags & M_EXT) == 0)
		return 0;
	for (i = 0; i < ncl; i++) {
		if (cl[i] == NULL || cl[i]->m_ext != tail->m_ext ||
		    cl[i]->m_data + cl[i]->m_len != tail->m_data + tail->m_len)
			continue;
		if (i != 0) {
			t = cl[0];
			cl[0] = cl[i];
			cl[i] = t;
		}
		return 1;
	}
	return 0;
}

unsigned int
input_read_plan(const struct input_track *tr, struct mbuf **cl,
    unsigned int ncl, uint32_t space, int *cont, struct iovec *iov,
    unsigned int *ci)
{
	uint32_t room[INPUT_IOV], lens[INPUT_IOV];
	uint8_t fresh[INPUT_IOV];
	unsigned int i, nlay, nio = 0;
	struct mbuf *c;

	KASSERT(ncl <= INPUT_IOV, ("input_read_plan: %u clusters", ncl));
	/*
	 * No mbuf is taken for the ranges beforehand: the thread's own mbuf
	 * on each cluster can always carry what was read into it, so no
	 * byte read is ever lost for want of one.
	 */
	for (i = 0; i < ncl; i++) {
		if (cl[i] != NULL && input_room(cl[i]) < INPUT_MIN_ROOM) {
			/* (If the record under way ended this one, its rest
			 * starts another cluster anyway.) */
			m_free(cl[i]);
			cl[i] = NULL;
			if (i == 0)
				*cont = 0;
		}
		room[i] = cl[i] != NULL ? input_room(cl[i]) : MJUMTLSBYTES;
	}
	nlay = input_layout(tr, space, room, ncl, *cont, lens, fresh);
	for (i = 0; i < nlay; i++) {
		if (cl[i] == NULL || fresh[i]) {
			c = m_getcl(MT_DATA, MJUMTLSBYTES);
			if (c == NULL) {
				/*
				 * The pools are empty: read into the room the
				 * clusters held already have, in turn, so
				 * that a capped pool still makes progress
				 * (the bytes the readers are waiting for may
				 * be what frees clusters).
				 */
				return input_fill_room(cl, ncl, space, iov, ci);
			}
			if (cl[i] != NULL)
				m_free(cl[i]);
			cl[i] = c;
		}
		ci[nio] = i;
		iov[nio].iov_base = cl[i]->m_data + cl[i]->m_len;
		iov[nio].iov_len = lens[i];
		nio++;
	}
	return nio;
}

struct mbuf *
input_wrap_range(struct mbuf **clp, char *base, uint32_t k, int more,
    int cont)
{
	struct mbuf *m = NULL, *cl = *clp;
	int whole;

	/*
	 * Short ranges are copied only at the end of what was read, where a
	 * peer that went quiet may leave them for long; one with more bytes
	 * after it ends a record the read carried on past, which is
	 * decrypted soon.  The rest of the record under way, right after its
	 * bytes so far in the same cluster, is never copied: in the cluster,
	 * sbappend_ktls_rx extends that mbuf, so the record stays one range
	 * (a copy would add mbufs to it) and pins nothing more.
	 */
	whole = k >= INPUT_COPY_MAX || more || cont;
	if (!whole || input_room(cl) - k >= INPUT_MIN_ROOM)
		m = m_get(MT_DATA);
	if (m == NULL) {
		/*
		 * The cluster is done with this range (the next read would
		 * retire it), or no mbuf was to be had for it: the range goes
		 * out in the thread's own mbuf, with its reference, and the
		 * slot takes another cluster next time.  With one record per
		 * cluster that is every full record, at no cost in mbufs.
		 */
		*clp = NULL;
		cl->m_data = base;
		cl->m_len = k;
		return cl;
	}
	if (!whole && k <= (uint32_t)MLEN) {
		/*
		 * A few bytes (a straggler, an idle peer's partial header)
		 * are copied into the mbuf itself, so that they do not pin a
		 * large cluster the other sockets' bytes fill;
		 * sbappend_ktls_rx packs such mbufs.
		 */
		memcpy(m->m_dat, base, k);
		m->m_len = k;
	} else if (whole || input_copy_small(m, base, k) != 0) {
		mcluster_ref(cl->m_ext);
		m->m_ext = cl->m_ext;
		m->m_flags = M_EXT;
		m->m_data = base;
		m->m_len = k;
	}
	cl->m_len += k;
	return m;
}

/*
 * The buffer is at its high-water mark: stop reading until a reader makes
 * room (so_input_resume_locked).  A reader asleep for more than the buffer
 * can hold (a peek with MSG_WAITALL) is woken to see that none will come.
 */
static void
input_pause_locked(struct socket *so)
{
	so->so_input_state = SOI_PAUSED;
	if (so->so_rcv.sb_rwaiters > 0)
		sbwakeup(&so->so_rcv);
}

/*
 * Read what so has, up to its free space, into the clusters cl[0..ncl-1]
 * that the calling thread owns, and queue it.  Called with the sockbuf
 * locked and the socket SOI_ARMED; returns with it locked, the socket
 * paused, done, or armed again (the epoll registration too when rearm is
 * set: the input thread's event disarmed it, or a reader had it quiesced).  The lock is dropped around recvmsg, with the
 * socket SOI_BUSY so that nobody else reads it and close waits.  Returns
 * ENOBUFS when the pools were empty (the caller backs off), else 0.
 */
static int
input_fill_locked(struct mbuf **cl, unsigned int ncl, struct socket *so,
    int rearm, int wait)
{
	struct sockbuf *sb = &so->so_rcv;
	struct input_track *tr = &so->so_in_track;
	struct iovec iov[INPUT_IOV];
	struct mbuf *m, *chain = NULL, **tailp = &chain;
	struct msghdr msg;
	uint32_t space, k, nio, i, j;
	unsigned int ci[INPUT_IOV];      /* the cluster of each iovec */
	ssize_t n;
	int error = 0, cont = 0;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(so->so_input_state == SOI_ARMED && ncl <= INPUT_IOV,
	    ("input_fill_locked: socket %p state %u", (void *)so,
	    so->so_input_state));
	space = sbspace_ktls_rx(sb);
	if (space == 0) {
		input_pause_locked(so);
		return 0;
	}
	so->so_input_state = SOI_BUSY;
	if (tr->tr_left > 0 || tr->tr_hdrlen > 0)
		cont = input_continue_first(cl, ncl, sb->sb_mtlstail);
	SOCKBUF_UNLOCK(sb);

	nio = input_read_plan(tr, cl, ncl, space, &cont, iov, ci);
	if (nio == 0) {
		/* The pools are exhausted: try again later. */
		error = ENOBUFS;
		n = -1;
	} else {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = nio;
		n = recvmsg(so->so_fd, &msg, wait ? 0 : MSG_DONTWAIT);
		if (n < 0)
			error = errno;
	}

	/* Wrap what was read in mbufs. */
	for (i = 0; i < nio; i++) {
		if (n > 0) {
			k = (uint32_t)iov[i].iov_len;
			if ((ssize_t)k > n)
				k = (uint32_t)n;
		} else
			k = 0;
		if (k == 0)
			continue;
		n -= k;
		j = ci[i];
		input_track_bytes(tr, iov[i].iov_base, k);
		m = input_wrap_range(&cl[j], iov[i].iov_base, k, n > 0,
		    i == 0 && j == 0 && cont);
		*tailp = m;
		while (*tailp != NULL)
			tailp = &(*tailp)->m_next;
		KTLS_COUNT(bytes_received, k);
	}

	SOCKBUF_LOCK(sb);
	KASSERT(so->so_input_state == SOI_BUSY,
	    ("input_fill_locked: socket %p state %u", (void *)so,
	    so->so_input_state));
	if ((so->so_state & (SS_CLOSING | SS_RCVDEAD)) != 0 ||
	    (sb->sb_state & SBS_CANTRCVMORE) != 0) {
		/* Closed, shut down or dead while we read: drop it. */
		so->so_input_state = SOI_DONE;
		m_freem(chain);
		if (so->so_closewait)
			sbwakeup(sb);
		return 0;
	}
	if (chain != NULL) {
		sbappend_ktls_rx(sb, chain);
		ktls_check_rx(so);
		if ((so->so_state & SS_RCVDEAD) != 0) {
			/* A malformed header killed the stream. */
			so->so_input_state = SOI_ARMED;
			input_stop_locked(so);
			return 0;
		}
	}
	if (error == 0 && chain == NULL) {
		/* recv returned 0: the peer finished sending. */
		so->so_input_state = SOI_DONE;
		sb->sb_state |= SBS_CANTRCVMORE;
		ktls_check_rx(so);
		sorwakeup_locked(so);
	} else if (error != 0 && error != EAGAIN && error != EINTR &&
	    error != ENOBUFS) {
		/* Reset or another hard error: records already whole are
		 * still decrypted, then the reader gets the error. */
		so->so_input_state = SOI_DONE;
		sb->sb_state |= SBS_CANTRCVMORE;
		if (so->so_rcverror == 0)
			so->so_eof_error = error;
		ktls_check_rx(so);
		sorwakeup_locked(so);
	} else if (sbspace_ktls_rx(sb) == 0) {
		input_pause_locked(so);
	} else {
		so->so_input_state = SOI_ARMED;
		if (rearm)
			input_rearm_locked(so);
		else if (so->so_input_missed) {
			/*
			 * An event the input thread received while a reader
			 * read found the socket busy, which disarmed the
			 * registration: the reader has the socket to itself
			 * and re-arms it when it leaves (socket.c).
			 */
			so->so_input_missed = 0;
			so->so_input_disarmed = 1;
		}
	}
	/*
	 * EINTR reaches only a blocking read: recvmsg was interrupted by a
	 * handler without SA_RESTART (the kernel restarts it otherwise), and
	 * the reader's uktls_recv is interrupted as recv would be.
	 */
	return error == ENOBUFS || error == EAGAIN || error == EINTR ? error :
	    0;
}

/*
 * An epoll event for so.  It may be stale (the socket was closed, or a
 * reader read it meanwhile), which the SOI_ARMED check catches.
 */
static void
input_read(struct input_thread *it, struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;
	int error = 0;

	SOCKBUF_LOCK(sb);
	if (so->so_input_state == SOI_ARMED)
		error = input_fill_locked(it->it_cl, INPUT_IOV, so, 1, 0);
	else if (so->so_input_state == SOI_BUSY)
		/* A reader is reading it: it re-arms the registration this
		 * event has disarmed when it is done. */
		so->so_input_missed = 1;
	SOCKBUF_UNLOCK(sb);
	/* Out of buffers: give the readers and workers time to free some. */
	if (error == ENOBUFS)
		usleep(1000);
}

/*
 * Clusters a reading application thread fills when it reads its socket
 * itself (input_read_locked), released when the thread exits.  As many as
 * an input thread has: with one record per cluster they bound a read to as
 * many records, and a reader that has caught up makes every read of its
 * socket (four took twice the system calls per byte of eight).
 */
#define READER_IOV INPUT_IOV
static __thread struct mbuf *reader_cl[READER_IOV];
static __thread int reader_cl_init;
static pthread_key_t reader_cl_key;
static pthread_once_t reader_cl_once = PTHREAD_ONCE_INIT;

static void
reader_cl_destructor(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < READER_IOV; i++) {
		if (reader_cl[i] != NULL)
			m_free(reader_cl[i]);
		reader_cl[i] = NULL;
	}
	mbuf_pool_reserve(0, -READER_IOV);
	mbuf_thread_flush();
}

static void
reader_cl_key_init(void)
{
	if (pthread_key_create(&reader_cl_key, reader_cl_destructor) != 0)
		uktls_panic("reader_cl_key_init: pthread_key_create failed");
}

/* This thread's first read of a socket: its clusters, released at exit. */
static void
reader_cl_setup(void)
{
	if (reader_cl_init)
		return;
	pthread_once(&reader_cl_once, reader_cl_key_init);
	pthread_setspecific(reader_cl_key, &reader_cl_init);
	mbuf_pool_reserve(0, READER_IOV);
	reader_cl_init = 1;
}

int
input_read_locked(struct socket *so, int rearm)
{
	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	if (so->so_input_state != SOI_ARMED)
		return 0;
	reader_cl_setup();
	return input_fill_locked(reader_cl, READER_IOV, so, rearm, 0);
}

int
input_read_wait_locked(struct socket *so)
{
	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	if (so->so_input_state != SOI_ARMED)
		return 0;
	reader_cl_setup();
	return input_fill_locked(reader_cl, READER_IOV, so, 0, 1);
}

static void *
input_thread_main(void *arg)
{
	struct input_thread *it = arg;
	struct epoll_event ev[INPUT_EVENTS];
	struct socket *so, *next;
	uint64_t v;
	int i, n;

	mbuf_thread_init();
	for (;;) {
		n = epoll_wait(it->it_epfd, ev, INPUT_EVENTS, -1);
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL) {
				if (read(it->it_wakefd, &v, sizeof(v)) < 0)
					(void)0;
				continue;
			}
			input_read(it, ev[i].data.ptr);
		}
		/*
		 * Release closed sockets only now: their epoll registration
		 * was removed before they were queued here, so no event
		 * fetched from now on can name them.
		 */
		pthread_mutex_lock(&it->it_mtx);
		so = it->it_reap;
		it->it_reap = NULL;
		pthread_mutex_unlock(&it->it_mtx);
		for (; so != NULL; so = next) {
			next = so->so_reap_next;
			sorele(so);
		}
	}
	return NULL;
}

void
input_fork_child(void)
{
	unsigned int i;

	for (i = 0; i < input_nthreads; i++) {
		(void)close(input_threads[i].it_epfd);
		(void)close(input_threads[i].it_wakefd);
	}
	/* The array and the clusters it names belong to the parent's
	 * threads: left behind, not freed, as their locks may be held. */
	input_threads = NULL;
	input_nthreads = 0;
	atomic_store(&input_next, 0);
}

int
input_start(unsigned int nthreads)
{
	struct epoll_event ev;
	pthread_attr_t attr;
	unsigned int i;

	input_threads = calloc(nthreads, sizeof(*input_threads));
	if (input_threads == NULL)
		return ENOMEM;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < nthreads; i++) {
		struct input_thread *it = &input_threads[i];

		pthread_mutex_init(&it->it_mtx, NULL);
		it->it_epfd = epoll_create1(EPOLL_CLOEXEC);
		it->it_wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (it->it_epfd < 0 || it->it_wakefd < 0)
			break;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;
		if (epoll_ctl(it->it_epfd, EPOLL_CTL_ADD, it->it_wakefd,
		    &ev) != 0 ||
		    pthread_create(&it->it_thread, &attr, input_thread_main,
		    it) != 0)
			break;
	}
	pthread_attr_destroy(&attr);
	if (i == 0)
		return ENXIO;
	input_nthreads = i;
	/* The clusters each input thread holds while it fills them. */
	mbuf_pool_reserve(0, (int64_t)i * INPUT_IOV);
	return 0;
}

int
input_register(struct socket *so)
{
	struct input_thread *it;
	struct epoll_event ev;

	it = &input_threads[atomic_fetch_add(&input_next, 1) % input_nthreads];
	so->so_input = it;
	so->so_input_state = SOI_ARMED;
	soref(so);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.ptr = so;
	if (epoll_ctl(it->it_epfd, EPOLL_CTL_ADD, so->so_fd, &ev) != 0) {
		int error = errno;

		so->so_input_state = SOI_DONE;
		so->so_input = NULL;
		sorele(so);
		return error;
	}
	return 0;
}

void
input_rearm_locked(struct socket *so)
{
	struct epoll_event ev;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	KASSERT(so->so_input_state == SOI_ARMED ||
	    so->so_input_state == SOI_PAUSED,
	    ("input_rearm_locked: state %u", so->so_input_state));
	so->so_input_state = SOI_ARMED;
	so->so_input_missed = 0;
	so->so_input_disarmed = 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.ptr = so;
	if (epoll_ctl(so->so_input->it_epfd, EPOLL_CTL_MOD, so->so_fd,
	    &ev) != 0) {
		/* The descriptor is gone from under us: treat as reset. */
		so->so_input_state = SOI_DONE;
		so->so_rcv.sb_state |= SBS_CANTRCVMORE;
		if (so->so_rcverror == 0)
			so->so_eof_error = errno;
		ktls_check_rx(so);
		sorwakeup_locked(so);
	}
}

void
input_stop_locked(struct socket *so)
{
	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	if (so->so_input == NULL)
		return;
	if (so->so_input_state == SOI_ARMED ||
	    so->so_input_state == SOI_PAUSED) {
		(void)epoll_ctl(so->so_input->it_epfd, EPOLL_CTL_DEL,
		    so->so_fd, NULL);
		so->so_input_state = SOI_DONE;
	} else if (so->so_input_state == SOI_DONE) {
		/* Stopped by EOF or an error: still registered, disarmed. */
		(void)epoll_ctl(so->so_input->it_epfd, EPOLL_CTL_DEL,
		    so->so_fd, NULL);
	}
	/* SOI_BUSY: the input thread stops it when it relocks. */
}

void
input_reap(struct socket *so)
{
	struct input_thread *it = so->so_input;
	uint64_t one = 1;

	if (it == NULL)
		return;
	pthread_mutex_lock(&it->it_mtx);
	so->so_reap_next = it->it_reap;
	it->it_reap = so;
	pthread_mutex_unlock(&it->it_mtx);
	if (write(it->it_wakefd, &one, sizeof(one)) < 0)
		(void)0;
}

void
input_quiesce_locked(struct socket *so)
{
	struct epoll_event ev;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	KASSERT(so->so_input_state == SOI_ARMED,
	    ("input_quiesce_locked: state %u", so->so_input_state));
	memset(&ev, 0, sizeof(ev));
	ev.events = 0;
	ev.data.ptr = so;
	(void)epoll_ctl(so->so_input->it_epfd, EPOLL_CTL_MOD, so->so_fd, &ev);
}
