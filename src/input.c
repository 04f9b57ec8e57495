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
 * that stays (an idle peer's partial record) then pins at most four times
 * its size, not a whole 16 KiB cluster, whatever the other sockets do.
 */
#define INPUT_COPY_MAX (MJUM16BYTES / 4)

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
	struct iovec iov[INPUT_IOV];
	struct mbuf *share[INPUT_IOV], *chain = NULL, **tailp = &chain;
	struct msghdr msg;
	uint32_t space, want, k, nio = 0, i;
	ssize_t n;
	int error = 0;

	SOCKBUF_LOCK_ASSERT(sb);
	KASSERT(so->so_input_state == SOI_ARMED && ncl <= INPUT_IOV,
	    ("input_fill_locked: socket %p state %u", (void *)so,
	    so->so_input_state));
	space = sbspace_ktls_rx(sb);
	if (space == 0) {
		so->so_input_state = SOI_PAUSED;
		return 0;
	}
	so->so_input_state = SOI_BUSY;
	SOCKBUF_UNLOCK(sb);

	/*
	 * Prepare the clusters and, for each, the mbuf that will carry its
	 * range: taken before the read so that bytes once read are never
	 * lost for want of an mbuf.
	 */
	want = space;
	for (i = 0; i < ncl && want > 0; i++) {
		if (cl[i] != NULL && input_room(cl[i]) < INPUT_MIN_ROOM) {
			m_free(cl[i]);
			cl[i] = NULL;
		}
		if (cl[i] == NULL) {
			cl[i] = m_getcl(MT_DATA, MJUM16BYTES);
			if (cl[i] == NULL)
				break;
		}
		share[i] = m_get(MT_DATA);
		if (share[i] == NULL)
			break;
		k = input_room(cl[i]);
		if (k > want)
			k = want;
		iov[i].iov_base = cl[i]->m_data + cl[i]->m_len;
		iov[i].iov_len = k;
		want -= k;
		nio++;
	}
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

	/* Wrap what was read in the prepared mbufs. */
	for (i = 0; i < nio; i++) {
		if (n > 0) {
			k = (uint32_t)iov[i].iov_len;
			if ((ssize_t)k > n)
				k = (uint32_t)n;
		} else
			k = 0;
		if (k == 0) {
			m_free(share[i]);
			continue;
		}
		n -= k;
		if (k <= (uint32_t)MLEN) {
			/*
			 * A few bytes (a straggler, an idle peer's partial
			 * header) are copied into the mbuf itself, so that
			 * they do not pin a 16 KiB cluster the other sockets'
			 * bytes fill; sbappend_ktls_rx packs such mbufs.
			 */
			memcpy(share[i]->m_dat, iov[i].iov_base, k);
			share[i]->m_len = k;
		} else if (k >= INPUT_COPY_MAX ||
		    input_copy_small(share[i], iov[i].iov_base, k) != 0) {
			mcluster_ref(cl[i]->m_ext);
			share[i]->m_ext = cl[i]->m_ext;
			share[i]->m_flags = M_EXT;
			share[i]->m_data = iov[i].iov_base;
			share[i]->m_len = k;
		}
		cl[i]->m_len += k;
		*tailp = share[i];
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
		so->so_input_state = SOI_PAUSED;
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
	return error == ENOBUFS || error == EAGAIN ? error : 0;
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
 * itself (input_read_locked), released when the thread exits.
 */
#define READER_IOV 4
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
	mbuf_pool_reserve(0, (int64_t)(i * INPUT_IOV));
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
