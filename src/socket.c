/*
 * The socket layer (FreeBSD's uipc_socket.c and sys_socket.c for the
 * receive side): the descriptor table, the uktls_* calls, soreceive with
 * FreeBSD's one-record-per-read semantics, poll and the readiness
 * descriptor, shutdown and close.  References and locks are described in
 * socket.h.
 */
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "input.h"
#include "kassert.h"
#include "ktls.h"
#include "uktls.h"

/*
 * The descriptor table: so_table[fd] is the socket RX-enabled on fd.  The
 * rwlock guards the array and its slots; a lookup takes a reference before
 * it lets go, so a socket found here stays valid for the caller.
 */
static pthread_rwlock_t so_table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct socket **so_table;
static size_t so_table_len;

/* ---------------------------------------------------------------------- */
/* References.                                                            */

void
soref(struct socket *so)
{
	atomic_fetch_add_explicit(&so->so_count, 1, memory_order_relaxed);
}

static void
sofree(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;

	SOCKBUF_LOCK(sb);
	KASSERT((so->so_state & SS_CLOSING) != 0,
	    ("sofree: socket %p freed while open", (void *)so));
	sbflush_locked(sb);
	SOCKBUF_UNLOCK(sb);
	if (sb->sb_tls_info != NULL)
		ktls_session_free(sb->sb_tls_info);
	if (sb->sb_tls_next != NULL)
		ktls_session_free(sb->sb_tls_next);
	if (so->so_evfd >= 0)
		close(so->so_evfd);
	mbuf_pool_reserve(-so->so_resv_mbufs, -so->so_resv_clusters);
	sbdestroy(sb);
	free(so);
}

void
sorele(struct socket *so)
{
	if (atomic_fetch_sub_explicit(&so->so_count, 1,
	    memory_order_acq_rel) == 1)
		sofree(so);
}

struct socket *
so_lookup(int fd)
{
	struct socket *so = NULL;

	if (fd < 0)
		return NULL;
	pthread_rwlock_rdlock(&so_table_lock);
	if ((size_t)fd < so_table_len && (so = so_table[fd]) != NULL) {
		if (so->so_fdclosed)
			so = NULL;
		else
			soref(so);
	}
	pthread_rwlock_unlock(&so_table_lock);
	return so;
}

/*
 * How long an enable waits for a uktls_close whose close(fd) is under way
 * (a few system calls' time): 10 s at most, in steps of 50 us.
 */
#define SO_CLOSE_WAIT_US 50
#define SO_CLOSE_WAIT_TRIES 200000

/*
 * Wait while fd's entry belongs to a uktls_close that is closing the
 * descriptor: the number may come back from the kernel for a new socket
 * before that close has marked the entry closed.
 */
static void
so_table_wait_closing(int fd)
{
	struct socket *so;
	int busy, tries = 0;

	do {
		pthread_rwlock_rdlock(&so_table_lock);
		so = fd >= 0 && (size_t)fd < so_table_len ? so_table[fd] :
		    NULL;
		busy = so != NULL && so->so_fdclosing && !so->so_fdclosed;
		pthread_rwlock_unlock(&so_table_lock);
		if (busy)
			usleep(SO_CLOSE_WAIT_US);
	} while (busy && ++tries < SO_CLOSE_WAIT_TRIES);
}

/* Insert so at fd; EALREADY if fd already has one.  Takes the table's
 * reference (so_count starts at 1 for it).  An entry whose descriptor
 * uktls_close has already closed is replaced, and its reference dropped:
 * fd is a new socket with the old number. */
static int
so_table_insert(int fd, struct socket *so)
{
	struct socket **nt, *stale = NULL;
	size_t nlen;
	int error = 0, tries = 0;

again:
	pthread_rwlock_wrlock(&so_table_lock);
	if ((size_t)fd >= so_table_len) {
		nlen = so_table_len == 0 ? 1024 : so_table_len;
		while (nlen <= (size_t)fd)
			nlen *= 2;
		nt = UKTLS_FAULT("so table") ? NULL :
		    realloc(so_table, nlen * sizeof(*nt));
		if (nt == NULL) {
			error = ENOMEM;
			goto out;
		}
		memset(nt + so_table_len, 0,
		    (nlen - so_table_len) * sizeof(*nt));
		so_table = nt;
		so_table_len = nlen;
	}
	if (so_table[fd] != NULL && !so_table[fd]->so_fdclosed) {
		if (so_table[fd]->so_fdclosing && ++tries < SO_CLOSE_WAIT_TRIES) {
			/* Its close(fd) is under way; the number may be
			 * ours, handed out again by the kernel. */
			pthread_rwlock_unlock(&so_table_lock);
			usleep(SO_CLOSE_WAIT_US);
			goto again;
		}
		error = EALREADY;
	} else {
		stale = so_table[fd];
		so_table[fd] = so;
	}
out:
	pthread_rwlock_unlock(&so_table_lock);
	if (stale != NULL)
		sorele(stale);
	return error;
}

/*
 * Remove so from fd's entry if it is still there (a socket enabled on the
 * number since may have replaced it); returns 1 when it did, and the
 * caller then holds the table's reference.
 */
static int
so_table_remove(int fd, struct socket *so)
{
	int removed = 0;

	pthread_rwlock_wrlock(&so_table_lock);
	if ((size_t)fd < so_table_len && so_table[fd] == so) {
		so_table[fd] = NULL;
		removed = 1;
	}
	pthread_rwlock_unlock(&so_table_lock);
	return removed;
}

/*
 * fork().  The child has only the forking thread: the engine's threads,
 * their epoll instances and the receive state of every RX-enabled socket
 * stay with the parent, which goes on reading and decrypting those sockets
 * (the descriptors name the same kernel sockets in both processes).  In the
 * child each inherited RX descriptor gets a socket of its own that is dead
 * from the start: every uktls call on it fails with EBADF, rather than
 * hand the child raw ciphertext or race the parent for the bytes, until
 * uktls_close() (or close()) lets it go.  Sockets the child enables itself
 * work as anywhere else, on an engine started afresh.
 */
void
so_fork_prepare(void)
{
	pthread_rwlock_wrlock(&so_table_lock);
}

void
so_fork_parent(void)
{
	pthread_rwlock_unlock(&so_table_lock);
}

void
so_fork_child(void)
{
	struct socket *old, *so;
	size_t fd;

	pthread_rwlock_init(&so_table_lock, NULL);
	for (fd = 0; fd < so_table_len; fd++) {
		old = so_table[fd];
		if (old == NULL)
			continue;
		/* The old socket is the parent's; only its eventfd, a
		 * descriptor of the child's own now, is let go, and the
		 * keys in the child's copy of it are wiped. */
		if (old->so_evfd >= 0)
			(void)close(old->so_evfd);
		if (old->so_rcv.sb_tls_info != NULL)
			ktls_session_wipe_forked(old->so_rcv.sb_tls_info);
		if (old->so_rcv.sb_tls_next != NULL)
			ktls_session_wipe_forked(old->so_rcv.sb_tls_next);
		so = calloc(1, sizeof(*so));
		if (so == NULL) {
			so_table[fd] = NULL;
			continue;
		}
		atomic_init(&so->so_count, 1);
		so->so_fd = (int)fd;
		so->so_evfd = -1;
		so->so_input_state = SOI_DONE;
		sbinit(&so->so_rcv, ktls_config.rcvbuf);
		so->so_state = SS_RCVDEAD;
		so->so_rcverror = EBADF;
		so->so_inherited = 1;
		so_table[fd] = so;
	}
}

/* ---------------------------------------------------------------------- */
/* Readiness, errors, wakeups.                                            */

int
soreadable(const struct socket *so)
{
	const struct sockbuf *sb = &so->so_rcv;

	/*
	 * Any record counts, an empty one too: readable means a recvmsg with
	 * a control buffer would not block.  A read without one skips empty
	 * records and may then wait (see the receive semantics).
	 */
	return (so->so_state & SS_CLOSING) != 0 || sb->sb_mb != NULL ||
	    so->so_error != 0 || so->so_rcverror != 0 ||
	    ((sb->sb_state & SBS_CANTRCVMORE) != 0 && sb->sb_tlscc == 0 &&
	    sb->sb_tlsdcc == 0);
}

/* Make so_evfd's readability follow soreadable(). */
static void
so_evfd_update_locked(struct socket *so)
{
	uint64_t v = 1;
	int ready;

	/* Only while someone can be polling it: a caller of uktls_poll or
	 * uktls_event_fd, or a reader waiting in so_wait_direct. */
	if (so->so_evfd < 0 || (!so->so_evfd_perm && so->so_rpolling == 0 &&
	    !so->so_evfd_ready))
		return;
	ready = soreadable(so);
	if (ready && !so->so_evfd_ready) {
		if (write(so->so_evfd, &v, sizeof(v)) == sizeof(v))
			so->so_evfd_ready = 1;
	} else if (!ready && so->so_evfd_ready) {
		if (read(so->so_evfd, &v, sizeof(v)) == sizeof(v) ||
		    errno == EAGAIN)
			so->so_evfd_ready = 0;
	}
}

void
so_kick_readers_locked(struct socket *so)
{
	uint64_t v = 1;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	sbwakeup(&so->so_rcv);
	/* A reader in so_wait_direct polls the eventfd, not the condvar. */
	if (so->so_rpolling > 0 && so->so_evfd >= 0 && !so->so_evfd_ready &&
	    write(so->so_evfd, &v, sizeof(v)) == sizeof(v))
		so->so_evfd_ready = 1;
}

void
sorwakeup_locked(struct socket *so)
{
	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	sbwakeup(&so->so_rcv);
	so_evfd_update_locked(so);
}

void
so_seterror_locked(struct socket *so, int err)
{
	const struct mbuf *m;
	uint32_t n = 0;

	unsigned int i;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	for (m = so->so_rcv.sb_mb; m != NULL; m = m->m_nextpkt)
		n++;
	if (so->so_error == 0) {
		so->so_error = err;
		so->so_error_recs = n;
	} else if (so->so_errq_n < SO_ERRQ_MAX) {
		/*
		 * A second failed record before the reader came: it takes its
		 * own place, after the records between the two, so that no
		 * record goes missing without an error in its place.
		 */
		n -= so->so_error_recs;
		for (i = 0; i < so->so_errq_n; i++)
			n -= so->so_errq_recs[i];
		so->so_errq[so->so_errq_n] = err;
		so->so_errq_recs[so->so_errq_n] = n;
		so->so_errq_n++;
	} else {
		/* Too many to keep in their places: the stream ends with the
		 * error, after the records already readable. */
		so_rcvdead_locked(so, err, 1);
		return;
	}
	sorwakeup_locked(so);
}

/* The reader has had so_error: the next queued error takes its place. */
static void
so_error_next_locked(struct socket *so)
{
	unsigned int i;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	so->so_error = 0;
	if (so->so_errq_n == 0)
		return;
	so->so_error = so->so_errq[0];
	so->so_error_recs = so->so_errq_recs[0];
	for (i = 1; i < so->so_errq_n; i++) {
		so->so_errq[i - 1] = so->so_errq[i];
		so->so_errq_recs[i - 1] = so->so_errq_recs[i];
	}
	so->so_errq_n--;
}

void
so_rcvdead_locked(struct socket *so, int err, int drop)
{
	struct sockbuf *sb = &so->so_rcv;

	SOCKBUF_LOCK_ASSERT(sb);
	if (so->so_rcverror == 0)
		so->so_rcverror = err;
	so->so_state |= SS_RCVDEAD;
	sb->sb_state |= SBS_CANTRCVMORE;
	sbflush_ktls_rx_locked(sb);
	input_stop_locked(so);
	/* FreeBSD drops the connection; the closest a process can do to its
	 * own socket without closing the descriptor is to shut it down. */
	if (drop && (so->so_state & SS_CLOSING) == 0)
		(void)shutdown(so->so_fd, SHUT_RDWR);
	sorwakeup_locked(so);
}

void
so_input_resume_locked(struct socket *so)
{
	struct sockbuf *sb = &so->so_rcv;

	SOCKBUF_LOCK_ASSERT(sb);
	if (so->so_input_state == SOI_PAUSED && sbresume_ktls_rx(sb) &&
	    (so->so_state & (SS_CLOSING | SS_RCVDEAD)) == 0 &&
	    (sb->sb_state & SBS_CANTRCVMORE) == 0)
		input_rearm_locked(so);
}

/* ---------------------------------------------------------------------- */
/* Enable.                                                                */

static int
so_check_tcp(int fd)
{
	int v;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0)
		return errno;
	if (v != SOCK_STREAM)
		return EINVAL;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0)
		return errno;
	if (v != IPPROTO_TCP)
		return EINVAL;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0)
		return errno;
	if (v != 0)
		return EINVAL;
	return 0;
}

/*
 * What Linux's system call finds before an SOL_TLS option reaches the TLS
 * layer: EBADF or ENOTSOCK for the descriptor, ENOPROTOOPT for a socket that
 * is not TCP (its protocol has no SOL_TLS level).  For an enable
 * (connected != 0), ENOTCONN for a listening or unconnected socket: Linux's
 * TLS layer attaches to connected sockets only, before any argument is
 * looked at.
 */
static int
so_check_linux(int fd, int connected)
{
	int v;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0)
		return errno;
	if (v != SOCK_STREAM)
		return ENOPROTOOPT;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) != 0)
		return errno;
	if (v != IPPROTO_TCP)
		return ENOPROTOOPT;
	if (!connected)
		return 0;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0)
		return errno;
	if (v != 0)
		return ENOTCONN;
	{
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);

		if (getpeername(fd, (struct sockaddr *)&ss, &sslen) != 0)
			return errno;
	}
	return 0;
}

/*
 * Queue the hand-off prefix on a new socket before input starts: records
 * the TLS library already decrypted become the first readable records, and
 * ciphertext it read ahead becomes the start of the TLS chain.  Sockbuf
 * locked.  0 or ENOBUFS.
 */
static int
so_queue_prefix(struct socket *so, const struct tls_enable *en,
    const struct uktls_plain_record *recs, size_t nrecs, const void *cipher,
    size_t cipher_len)
{
	struct sockbuf *sb = &so->so_rcv;
	struct mbuf *ctl, *m;
	size_t i;
	int error;

	for (i = 0; i < nrecs; i++) {
		if (recs[i].len > TLS_MAX_MSG_SIZE_V10_2 ||
		    (recs[i].len > 0 && recs[i].data == NULL))
			return EINVAL;
		ctl = m_get(MT_CONTROL);
		m = m_get(MT_DATA);
		if (ctl == NULL || m == NULL ||
		    m_append(m, (uint32_t)recs[i].len, recs[i].data,
		    NULL) != 0) {
			m_freem(m);
			if (ctl != NULL)
				m_free(ctl);
			return ENOBUFS;
		}
		ktls_fill_control(ctl, recs[i].type, TLS_MAJOR_VER_ONE,
		    en->tls_vminor == TLS_MINOR_VER_THREE ? TLS_MINOR_VER_TWO :
		    en->tls_vminor, (uint32_t)recs[i].len);
		sbappendcontrol_locked(sb, m, ctl);
	}
	if (cipher_len > 0) {
		if (cipher == NULL)
			return EINVAL;
		m = m_get(MT_DATA);
		if (m == NULL)
			return ENOBUFS;
		error = m_append(m, (uint32_t)cipher_len, cipher, NULL);
		if (error != 0) {
			m_freem(m);
			return error;
		}
		/* Looked at only once the enable has succeeded: a bad record
		 * must not kill a connection whose enable then fails. */
		sbappend_ktls_rx(sb, m);
		/* The socket's reads go on from the end of these bytes. */
		input_track_bytes(&so->so_in_track, cipher, cipher_len);
	}
	return 0;
}

static int
ktls_enable_rx(int fd, const struct tls_enable *en,
    const struct uktls_plain_record *recs, size_t nrecs, const void *cipher,
    size_t cipher_len, int linux_form, const uint8_t *iv12)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct ktls_session *tls = NULL;
	struct socket *so = NULL, *old;
	int error;

	error = so_check_tcp(fd);
	if (error != 0)
		return error;
	so_table_wait_closing(fd);
	old = so_lookup(fd);
	if (old != NULL) {
		/* The parent's socket in a forked child: EBADF, as for every
		 * call on it. */
		error = old->so_inherited ? EBADF : EALREADY;
		sorele(old);
		return error;
	}
	error = ktls_session_create(en, &tls);
	if (error != 0)
		return error;
	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) != 0) {
		error = errno == ENOTCONN ? ENOTCONN : errno;
		goto out;
	}
	error = ktls_engine_start();
	if (error != 0)
		goto out;
	so = UKTLS_FAULT("socket") ? NULL : calloc(1, sizeof(*so));
	if (so == NULL) {
		error = ENOMEM;
		goto out;
	}
	atomic_init(&so->so_count, 1);
	so->so_fd = fd;
	so->so_linux = linux_form;
	if (iv12 != NULL)
		memcpy(so->so_lx_iv12, iv12, sizeof(so->so_lx_iv12));
	{
		socklen_t tvlen = sizeof(so->so_rcvtimeo);

		if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &so->so_rcvtimeo,
		    &tvlen) != 0)
			memset(&so->so_rcvtimeo, 0, sizeof(so->so_rcvtimeo));
	}
	{
		/*
		 * SO_RCVLOWAT counts plaintext from here on and is uktls's
		 * (so_rcvlowat): the kernel's is put back to 1, or its
		 * readiness would hold ciphertext back from the input
		 * thread until that many bytes came.
		 */
		socklen_t lwlen = sizeof(so->so_rcvlowat);
		int one = 1;

		if (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &so->so_rcvlowat,
		    &lwlen) != 0 || so->so_rcvlowat < 1)
			so->so_rcvlowat = 1;
		if (so->so_rcvlowat > 1)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one,
			    sizeof(one));
	}
	so->so_evfd = -1;
	so->so_wq = ktls_pick_wq(fd);
	sbinit(&so->so_rcv, ktls_config.rcvbuf);
	/*
	 * The worst case this socket holds at once: a full buffer of records
	 * of at least 2^14 bytes, one cluster each, and the partial ones
	 * around them, and mbufs for the records in it.
	 */
	so->so_resv_clusters = ktls_config.rcvbuf / TLS_MAX_MSG_SIZE_V10_2 + 4;
	so->so_resv_mbufs = 64;
	mbuf_pool_reserve(so->so_resv_mbufs, so->so_resv_clusters);
	so->so_rcv.sb_flags = SB_TLS_RX;
	so->so_rcv.sb_tls_info = tls;
	so->so_rcv.sb_tls_seqno = tls->params.initial_seqno;
	so->so_rcv.sb_tls_pubseq = tls->params.initial_seqno;
	tls = NULL;
	if (nrecs > 0 || cipher_len > 0) {
		SOCKBUF_LOCK(&so->so_rcv);
		error = so_queue_prefix(so, en, recs, nrecs, cipher,
		    cipher_len);
		if (error != 0)
			sbflush_wipe_locked(&so->so_rcv);
		SOCKBUF_UNLOCK(&so->so_rcv);
		if (error != 0)
			goto out;
	}
	error = so_table_insert(fd, so);
	if (error != 0)
		goto out;
	error = input_register(so);
	if (error != 0) {
		/* A uktls_close racing the enable may have taken it out
		 * already, with the table's reference. */
		if (!so_table_remove(fd, so))
			so = NULL;
		goto out;
	}
	if (cipher_len > 0) {
		SOCKBUF_LOCK(&so->so_rcv);
		ktls_check_rx(so);
		SOCKBUF_UNLOCK(&so->so_rcv);
	}
	KTLS_COUNT(sockets_enabled, 1);
	KTLS_COUNT(sockets_active, 1);
	return 0;
out:
	if (tls != NULL)
		ktls_session_free(tls);
	if (so != NULL) {
		/* The descriptor stays the application's, with its own
		 * SO_RCVLOWAT. */
		if (so->so_rcvlowat > 1)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT,
			    &so->so_rcvlowat, sizeof(so->so_rcvlowat));
		/* The hand-over plaintext leaves no copy behind. */
		SOCKBUF_LOCK(&so->so_rcv);
		if (nrecs > 0)
			sbflush_wipe_locked(&so->so_rcv);
		SOCKBUF_UNLOCK(&so->so_rcv);
		so->so_state |= SS_CLOSING;
		sorele(so);
	}
	return error;
}

/*
 * The version and cipher of so's session, as Linux's struct tls_crypto_info
 * names them.  EBADF for a socket inherited through fork(), whose session
 * stayed behind.  Sockbuf locked: a rekey may replace the session.
 */
static int
so_linux_info_locked(const struct socket *so, struct tls_crypto_info *info)
{
	const struct tls_session_params *p;

	SOCKBUF_LOCK_ASSERT(&so->so_rcv);
	if (so->so_rcv.sb_tls_info == NULL)
		return EBADF;
	p = &so->so_rcv.sb_tls_info->params;
	info->version = p->tls_vminor == TLS_MINOR_VER_THREE ?
	    TLS_1_3_VERSION : TLS_1_2_VERSION;
	if (p->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
		info->cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
	else if (p->cipher_key_len == TLS_CIPHER_AES_GCM_128_KEY_SIZE)
		info->cipher_type = TLS_CIPHER_AES_GCM_128;
	else
		info->cipher_type = TLS_CIPHER_AES_GCM_256;
	return 0;
}

/*
 * May TLS_RX set so's keys again?  Linux's checks for a second TLS_RX, in
 * its order: EINVAL without an argument, EBUSY unless the session is TLS
 * 1.3 (TLS 1.2 has no key update), EINVAL for another version or cipher.
 * The argument's own checks follow (tls_enable_from_crypto_info).
 */
static int
so_rekey_check(struct socket *so, const void *optval, socklen_t optlen)
{
	struct tls_crypto_info cur, info;
	int error;

	SOCKBUF_LOCK(&so->so_rcv);
	error = so_linux_info_locked(so, &cur);
	SOCKBUF_UNLOCK(&so->so_rcv);
	if (error != 0)
		return error;
	if (optval == NULL || optlen < sizeof(info))
		return EINVAL;
	if (cur.version != TLS_1_3_VERSION)
		return EBUSY;
	memcpy(&info, optval, sizeof(info));
	if (info.version != cur.version || info.cipher_type != cur.cipher_type)
		return EINVAL;
	return 0;
}

/*
 * Linux's TLS 1.3 rekey: a session from the new key, IV and rec_seq takes
 * over from the next record not yet taken for decryption; at once when
 * none is out (ktls_check_rx), else when the one out is back
 * (ktls_rx_take_locked).  A KeyUpdate waiting for it is answered, and the
 * records held back behind it are decrypted.  A rekey given before the
 * last one took over replaces it.
 */
static int
so_rekey_linux(struct socket *so, const struct tls_enable *en)
{
	struct sockbuf *sb = &so->so_rcv;
	struct ktls_session *tls = NULL, *replaced;
	int error;

	error = ktls_session_create(en, &tls);
	if (error != 0)
		return error;
	SOCKBUF_LOCK(sb);
	if ((so->so_state & SS_CLOSING) != 0 || sb->sb_tls_info == NULL) {
		SOCKBUF_UNLOCK(sb);
		ktls_session_free(tls);
		return EBADF;
	}
	replaced = sb->sb_tls_next;
	sb->sb_tls_next = tls;
	so->so_rekey_pending = 0;
	ktls_check_rx(so);
	sorwakeup_locked(so);
	SOCKBUF_UNLOCK(sb);
	if (replaced != NULL)
		ktls_session_free(replaced);
	return 0;
}

_Static_assert(offsetof(struct tls12_crypto_info_aes_gcm_128, iv) ==
    offsetof(struct tls12_crypto_info_aes_gcm_256, iv) &&
    sizeof(((struct tls12_crypto_info_aes_gcm_128 *)0)->iv) ==
    sizeof(((struct socket *)0)->so_lx_iv12),
    "the AES-GCM structures' iv differ");

/*
 * Linux's TLS_RX: the first translated to a struct tls_enable and handed
 * to the same enable as TCP_RXTLS_ENABLE (the socket then reads the Linux
 * way: so_linux); a second one on such a socket is a rekey.  The
 * translation may put the TLS 1.3 IV in ivbuf, so it is wiped here, with
 * en, on every path.
 */
static int
so_enable_rx_linux(int fd, const void *optval, socklen_t optlen)
{
	struct tls_enable en;
	uint8_t ivbuf[TLS_NONCE_LEN];
	struct socket *so = NULL;
	int error;

	memset(&en, 0, sizeof(en));
	memset(ivbuf, 0, sizeof(ivbuf));
	error = so_check_linux(fd, 1);
	if (error != 0)
		goto out;
	so = so_lookup(fd);
	if (so != NULL && so->so_linux) {
		error = so_rekey_check(so, optval, optlen);
		if (error != 0)
			goto out;
	}
	error = tls_enable_from_crypto_info(optval, optlen, &en, ivbuf);
	if (error != 0)
		goto out;
	if (so == NULL)
		/* TLS 1.2 AES-GCM's unused iv is kept for the read-back. */
		error = ktls_enable_rx(fd, &en, NULL, 0, NULL, 0, 1,
		    en.tls_vminor == TLS_MINOR_VER_TWO &&
		    en.cipher_algorithm == CRYPTO_AES_NIST_GCM_16 ?
		    (const uint8_t *)optval +
		    offsetof(struct tls12_crypto_info_aes_gcm_128, iv) : NULL);
	else if (so->so_linux)
		error = so_rekey_linux(so, &en);
	else if (so->so_inherited)
		error = EBADF; /* the parent's socket, in a forked child */
	else
		error = EALREADY; /* FreeBSD's enable: no rekey */
out:
	if (so != NULL)
		sorele(so);
	tls_explicit_bzero(ivbuf, sizeof(ivbuf));
	tls_explicit_bzero(&en, sizeof(en));
	return error;
}

/*
 * Linux's TLS_RX_EXPECT_NO_PAD, set (optval != NULL) or read back.  In the
 * order of Linux's checks: the descriptor; a socket with TLS 1.3 RX enabled
 * (EINVAL otherwise, as for Linux's sockets with no 1.3 context); then the
 * argument.  Linux uses the hint to decrypt straight into the reader's
 * buffer; uktls never does, so the value is only kept.
 */
static int
so_rx_no_pad(int fd, const void *setval, socklen_t setlen, void *getval,
    socklen_t *getlen)
{
	struct socket *so;
	struct tls_crypto_info info;
	uint32_t v;
	int error;

	error = so_check_linux(fd, 0);
	if (error != 0)
		return error;
	so = so_lookup(fd);
	if (so == NULL)
		return EINVAL;
	SOCKBUF_LOCK(&so->so_rcv);
	error = so_linux_info_locked(so, &info);
	SOCKBUF_UNLOCK(&so->so_rcv);
	if (error != 0)
		goto out;
	if (info.version != TLS_1_3_VERSION) {
		error = EINVAL;
		goto out;
	}
	if (getlen == NULL && getval == NULL) {
		if (setval == NULL || setlen < sizeof(v)) {
			error = EINVAL;
			goto out;
		}
		memcpy(&v, setval, sizeof(v));
		if (v > 1) {
			error = EINVAL;
			goto out;
		}
		SOCKBUF_LOCK(&so->so_rcv);
		so->so_rx_no_pad = (int)v;
		SOCKBUF_UNLOCK(&so->so_rcv);
		goto out;
	}
	if (getlen == NULL) {
		error = EFAULT;
		goto out;
	}
	if (*getlen < sizeof(v)) {
		error = EINVAL;
		goto out;
	}
	if (getval == NULL) {
		error = EFAULT;
		goto out;
	}
	SOCKBUF_LOCK(&so->so_rcv);
	v = (uint32_t)so->so_rx_no_pad;
	SOCKBUF_UNLOCK(&so->so_rcv);
	memcpy(getval, &v, sizeof(v));
	*getlen = sizeof(v);
out:
	sorele(so);
	return error;
}

/* Is optval, optlen Linux's upper-layer protocol name "tls"? */
static int
so_ulp_is_tls(const void *optval, socklen_t optlen)
{
	const char *name = optval;

	return name != NULL && optlen >= 3 && memcmp(name, "tls", 3) == 0 &&
	    (optlen == 3 || name[3] == '\0');
}

/*
 * Linux's setsockopt(TCP_ULP, "tls"), the step before TLS_RX: uktls is
 * the upper layer, so the kernel (which may have no tls module) is not
 * asked.  Linux's answers: the descriptor's errors, ENOTCONN unless the
 * connection is established, EEXIST once RX is on.  Nothing is kept: the
 * enable itself comes with TLS_RX.
 */
static int
so_ulp_tls(int fd)
{
	struct socket *so;
	int error;

	error = so_check_linux(fd, 1);
	if (error != 0)
		return error;
	so = so_lookup(fd);
	if (so != NULL) {
		error = so->so_inherited ? EBADF : EEXIST;
		sorele(so);
		return error;
	}
	return 0;
}

int
uktls_setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen)
{
	int error;

	if (level == IPPROTO_TCP && optname == TCP_ULP &&
	    so_ulp_is_tls(optval, optlen)) {
		error = so_ulp_tls(fd);
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}

	if (level == SOL_TLS && (optname == TLS_RX || optname == TLS_TX ||
	    optname == TLS_RX_EXPECT_NO_PAD)) {
		/* uktls has no transmit side to configure. */
		if (optname == TLS_TX)
			error = EOPNOTSUPP;
		else if (optname == TLS_RX)
			error = so_enable_rx_linux(fd, optval, optlen);
		else
			error = so_rx_no_pad(fd, optval, optlen, NULL, NULL);
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}

	if (level == SOL_SOCKET && optname == SO_RCVTIMEO) {
		struct timeval tv;
		socklen_t tvlen = sizeof(tv);
		struct socket *so;

		if (setsockopt(fd, level, optname, optval, optlen) != 0)
			return -1;
		/* Keep the RX socket's copy (as the kernel normalised it). */
		so = so_lookup(fd);
		if (so != NULL) {
			if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
			    &tvlen) == 0) {
				SOCKBUF_LOCK(&so->so_rcv);
				so->so_rcvtimeo = tv;
				SOCKBUF_UNLOCK(&so->so_rcv);
			}
			sorele(so);
		}
		return 0;
	}
	if (level == SOL_SOCKET && optname == SO_RCVLOWAT) {
		struct socket *so;
		int v;

		so = so_lookup(fd);
		if (so == NULL)
			return setsockopt(fd, level, optname, optval, optlen);
		/* The kernel's checks and rules: 0 means 1, < 0 the most. */
		error = optval == NULL ? EFAULT : optlen < sizeof(int) ?
		    EINVAL : 0;
		if (error == 0) {
			memcpy(&v, optval, sizeof(v));
			SOCKBUF_LOCK(&so->so_rcv);
			so->so_rcvlowat = v < 0 ? INT_MAX : v == 0 ? 1 : v;
			SOCKBUF_UNLOCK(&so->so_rcv);
		}
		sorele(so);
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}
	if (level != IPPROTO_TCP || optname != TCP_RXTLS_ENABLE)
		return setsockopt(fd, level, optname, optval, optlen);
	if (optval == NULL) {
		errno = EFAULT;
		return -1;
	}
	if (optlen < sizeof(struct tls_enable)) {
		errno = EINVAL;
		return -1;
	}
	error = ktls_enable_rx(fd, optval, NULL, 0, NULL, 0, 0, NULL);
	if (error != 0) {
		errno = error;
		return -1;
	}
	return 0;
}

static int so_not_rx_error(int fd);

int
uktls_enable_rx_prefixed_flags(int fd, const struct tls_enable *en,
    const struct uktls_plain_record *recs, size_t nrecs,
    const void *ciphertext, size_t ciphertext_len, int flags)
{
	int error;

	if (en == NULL || (nrecs > 0 && recs == NULL)) {
		errno = EFAULT;
		return -1;
	}
	if ((flags & ~UKTLS_RX_LINUX) != 0) {
		errno = EINVAL;
		return -1;
	}
	error = ktls_enable_rx(fd, en, recs, nrecs, ciphertext,
	    ciphertext_len, (flags & UKTLS_RX_LINUX) != 0, NULL);
	if (error != 0) {
		errno = error;
		return -1;
	}
	return 0;
}

int
uktls_enable_rx_prefixed(int fd, const struct tls_enable *en,
    const struct uktls_plain_record *recs, size_t nrecs,
    const void *ciphertext, size_t ciphertext_len)
{

	return uktls_enable_rx_prefixed_flags(fd, en, recs, nrecs, ciphertext,
	    ciphertext_len, 0);
}

/*
 * Whether a KeyUpdate waits for the next key (so_rekey_pending), for an
 * application or hand-off helper that must give it and, where the peer
 * asked, answer with a KeyUpdate of its own.  Linux has no such call: its
 * applications parse the KeyUpdate record they read.
 */
int
uktls_rx_rekey_pending(int fd, int *update_requested)
{
	struct socket *so;
	int pending, requested, error = 0;

	so = so_lookup(fd);
	if (so == NULL) {
		errno = so_not_rx_error(fd);
		return -1;
	}
	SOCKBUF_LOCK(&so->so_rcv);
	if (so->so_inherited)
		error = EBADF;
	else if (!so->so_linux || so->so_rcv.sb_tls_info == NULL ||
	    so->so_rcv.sb_tls_info->params.tls_vminor != TLS_MINOR_VER_THREE)
		error = EINVAL;
	pending = so->so_rekey_pending;
	requested = so->so_rekey_requested;
	SOCKBUF_UNLOCK(&so->so_rcv);
	sorele(so);
	if (error != 0) {
		errno = error;
		return -1;
	}
	if (update_requested != NULL)
		*update_requested = pending ? requested : 0;
	return pending;
}

/*
 * Linux's TLS_RX read-back (do_tls_getsockopt_conf): with a buffer of
 * exactly struct tls_crypto_info, the version and cipher; with one of
 * exactly the cipher's structure, that structure as TLS_RX takes it: key,
 * salt and IV as given, and rec_seq the sequence number of the next record
 * to be decrypted.  After a rekey it describes the new key, as Linux's
 * does from the TLS_RX on.  Any other length is EINVAL.  This is the one
 * place keys leave uktls, because Linux's ABI hands them back here.
 * Errors in Linux's order: those of the descriptor (so_check_linux),
 * EFAULT without optlen, EINVAL without optval or for a buffer too short to
 * mean anything, EBUSY if RX is not enabled.
 */
static int
so_getsockopt_linux_rx(int fd, void *optval, socklen_t *optlen)
{
	struct tls_crypto_info info;
	const struct ktls_session *tls;
	const struct sockbuf *sb;
	struct socket *so;
	uint8_t buf[TLS_LINUX_INFO_MAX];
	uint64_t seq;
	size_t n = 0;
	int error;

	error = so_check_linux(fd, 0);
	if (error != 0)
		return error;
	if (optlen == NULL)
		return EFAULT;
	if (optval == NULL || *optlen < sizeof(info))
		return EINVAL;
	so = so_lookup(fd);
	if (so == NULL)
		return EBUSY;
	sb = &so->so_rcv;
	SOCKBUF_LOCK(&so->so_rcv);
	error = so_linux_info_locked(so, &info);
	if (error == 0 && *optlen != sizeof(info)) {
		/* A rekey not yet in place is what TLS_RX last gave. */
		tls = sb->sb_tls_next != NULL ? sb->sb_tls_next :
		    sb->sb_tls_info;
		seq = sb->sb_tls_next != NULL ? tls->params.initial_seqno :
		    sb->sb_tls_pubseq;
		n = tls_crypto_info_from_params(&tls->params, so->so_lx_iv12,
		    seq, buf);
		if (n == 0 || *optlen != n)
			error = EINVAL;
	}
	SOCKBUF_UNLOCK(&so->so_rcv);
	sorele(so);
	if (error == 0 && n == 0) {
		memcpy(optval, &info, sizeof(info));
		*optlen = sizeof(info);
	} else if (error == 0) {
		memcpy(optval, buf, n);
		*optlen = (socklen_t)n;
	}
	tls_explicit_bzero(buf, sizeof(buf));
	return error;
}

/*
 * SO_ERROR on an RX socket: the error a read would return now, taken as
 * that read would take it (a one-shot error, or the reset that ended the
 * stream), as FreeBSD's SO_ERROR takes so_error and Linux's sk_err; a
 * sticky error is reported and stays.  An error behind records still
 * queued is not due yet: 0.  The kernel's own pending error is not asked:
 * it belongs to the input thread, whose read of the socket turns it into
 * the reset reported here, and taking it from the kernel first would make
 * a reset look like a clean end.
 */
static int
so_getsockopt_error(struct socket *so, void *optval, socklen_t *optlen)
{
	struct sockbuf *sb = &so->so_rcv;
	socklen_t len;
	int err = 0;

	if (optval == NULL || optlen == NULL)
		return EFAULT;
	if ((int)*optlen < 0)
		return EINVAL;
	SOCKBUF_LOCK(sb);
	if (sb->sb_mb != NULL &&
	    (so->so_error == 0 || so->so_error_recs > 0)) {
		/* A record comes first. */
	} else if (so->so_error != 0) {
		err = so->so_error;
		so_error_next_locked(so);
		so_evfd_update_locked(so);
	} else if (so->so_rcverror != 0) {
		err = so->so_rcverror;
	} else if ((sb->sb_state & SBS_CANTRCVMORE) != 0 &&
	    sb->sb_tlscc == 0 && sb->sb_tlsdcc == 0 && so->so_eof_error != 0) {
		err = so->so_eof_error;
		so->so_eof_error = 0;
		so_evfd_update_locked(so);
	}
	SOCKBUF_UNLOCK(sb);
	len = *optlen < sizeof(err) ? *optlen : (socklen_t)sizeof(err);
	memcpy(optval, &err, len);
	*optlen = len;
	return 0;
}

int
uktls_getsockopt(int fd, int level, int optname, void *optval,
    socklen_t *optlen)
{
	struct socket *so;
	int mode = TCP_TLS_MODE_NONE, error;

	if (level == SOL_TLS &&
	    (optname == TLS_RX || optname == TLS_RX_EXPECT_NO_PAD)) {
		error = optname == TLS_RX ?
		    so_getsockopt_linux_rx(fd, optval, optlen) :
		    so_rx_no_pad(fd, NULL, 0, optval, optlen);
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}
	if (level == IPPROTO_TCP && optname == TCP_ULP) {
		/* An RX socket's upper layer is "tls", as on Linux. */
		so = so_lookup(fd);
		if (so == NULL)
			return getsockopt(fd, level, optname, optval, optlen);
		sorele(so);
		if (optval == NULL || optlen == NULL) {
			errno = EFAULT;
			return -1;
		}
		if ((int)*optlen < 0) {
			errno = EINVAL;
			return -1;
		}
		{
			char name[16] = "tls";

			if (*optlen > sizeof(name))
				*optlen = sizeof(name);
			memcpy(optval, name, *optlen);
		}
		return 0;
	}
	if (level == SOL_SOCKET && optname == SO_RCVLOWAT) {
		so = so_lookup(fd);
		if (so == NULL)
			return getsockopt(fd, level, optname, optval, optlen);
		error = optval == NULL || optlen == NULL ? EFAULT :
		    (int)*optlen < 0 ? EINVAL : 0;
		if (error == 0) {
			socklen_t len = *optlen < sizeof(int) ? *optlen :
			    (socklen_t)sizeof(int);

			int v;

			SOCKBUF_LOCK(&so->so_rcv);
			v = so->so_rcvlowat;
			SOCKBUF_UNLOCK(&so->so_rcv);
			memcpy(optval, &v, len);
			*optlen = len;
		}
		sorele(so);
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}
	if (level == SOL_SOCKET && optname == SO_ERROR) {
		so = so_lookup(fd);
		if (so == NULL)
			return getsockopt(fd, level, optname, optval, optlen);
		error = so_getsockopt_error(so, optval, optlen);
		sorele(so);
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}
	if (level != IPPROTO_TCP ||
	    (optname != TCP_RXTLS_MODE && optname != TCP_RXTLS_ENABLE))
		return getsockopt(fd, level, optname, optval, optlen);
	if (optname == TCP_RXTLS_ENABLE) {
		/* FreeBSD: the enable option cannot be read back. */
		errno = ENOPROTOOPT;
		return -1;
	}
	error = so_check_tcp(fd);
	if (error == EINVAL) {
		/* Listening sockets report NONE too; others are not TCP. */
		int v;
		socklen_t len = sizeof(v);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 &&
		    v != 0)
			error = 0;
	}
	if (error != 0) {
		errno = error;
		return -1;
	}
	if (optval == NULL || optlen == NULL) {
		errno = EFAULT;
		return -1;
	}
	if (*optlen < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	so = so_lookup(fd);
	if (so != NULL) {
		mode = TCP_TLS_MODE_SW;
		sorele(so);
	}
	memcpy(optval, &mode, sizeof(mode));
	*optlen = sizeof(mode);
	return 0;
}

/*
 * The error for a descriptor uktls holds no socket for, in calls that have
 * no system call to fall back on: EBADF when it is not open (never was, or
 * closed, as the other calls find through the system call), ENOTCONN when
 * it is open but RX is not enabled on it.
 */
static int
so_not_rx_error(int fd)
{
	return fcntl(fd, F_GETFD) == -1 ? EBADF : ENOTCONN;
}

/* ---------------------------------------------------------------------- */
/* Receive.                                                               */

/* Which empty records a reader skips (so_wait_record_locked). */
#define SKIP_NONE 0
#define SKIP_EMPTY 1
#define SKIP_EMPTY_DATA 2

/* Would a read on so block?  Asked only when there is nothing to return. */
static int
so_nonblocking(const struct socket *so, int flags)
{
	int fl;

	if ((flags & MSG_DONTWAIT) != 0)
		return 1;
	fl = fcntl(so->so_fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

static int
so_rcvtimeo_set(const struct socket *so)
{
	return so->so_rcvtimeo.tv_sec != 0 || so->so_rcvtimeo.tv_usec != 0;
}

/*
 * The deadline for a blocking read from SO_RCVTIMEO; 0 if none.  The value
 * is the socket's at enable, kept current by uktls_setsockopt(), so that a
 * wait costs no system call for it.
 */
static int
so_rcvtimeo(const struct socket *so, struct timespec *abstime)
{
	const struct timeval *tv = &so->so_rcvtimeo;

	if (tv->tv_sec == 0 && tv->tv_usec == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, abstime);
	abstime->tv_sec += tv->tv_sec;
	abstime->tv_nsec += tv->tv_usec * 1000;
	if (abstime->tv_nsec >= 1000000000) {
		abstime->tv_sec++;
		abstime->tv_nsec -= 1000000000;
	}
	return 1;
}

/* Copy the record's control message to the caller's buffer. */
static void
so_copy_control(const struct mbuf *ctl, struct msghdr *msg)
{
	size_t avail = msg->msg_controllen, need = CMSG_LEN(
	    sizeof(struct tls_get_record));

	if (avail >= ctl->m_len) {
		memcpy(msg->msg_control, ctl->m_data, ctl->m_len);
		msg->msg_controllen = ctl->m_len;
	} else if (avail >= need) {
		/* Room for the message but not its trailing padding. */
		memcpy(msg->msg_control, ctl->m_data, need);
		msg->msg_controllen = need;
	} else {
		msg->msg_flags |= MSG_CTRUNC;
		msg->msg_controllen = 0;
	}
}

/*
 * Copy up to the end of the record starting at m into the iovecs, after
 * the first skip bytes of them (filled from records before it).
 */
static size_t
so_copy_data(const struct mbuf *m, const struct msghdr *msg, size_t skip)
{
	size_t done = 0, n;
	uint32_t off = 0;
	int i = 0;
	size_t ioff = 0;

	while (i < (int)msg->msg_iovlen && skip >= msg->msg_iov[i].iov_len) {
		skip -= msg->msg_iov[i].iov_len;
		i++;
	}
	ioff = skip;
	while (m != NULL && i < (int)msg->msg_iovlen) {
		const struct iovec *iov = &msg->msg_iov[i];

		if (ioff == iov->iov_len) {
			i++;
			ioff = 0;
			continue;
		}
		if (off == m->m_len) {
			m = m->m_next;
			off = 0;
			continue;
		}
		n = m->m_len - off;
		if (n > iov->iov_len - ioff)
			n = iov->iov_len - ioff;
		memcpy((char *)iov->iov_base + ioff, m->m_data + off, n);
		off += (uint32_t)n;
		ioff += n;
		done += n;
	}
	return done;
}

/* The content type of the record rec (at sb_mb or after it). */
static uint8_t
so_record_type(const struct socket *so, const struct mbuf *rec)
{
	const struct tls_get_record *tgr;

	if (rec->m_type != MT_CONTROL)
		return so->so_rpart_type; /* partly read, at sb_mb */
	tgr = (const struct tls_get_record *)CMSG_DATA(
	    mtod(rec, const struct cmsghdr *));
	return tgr->tls_type;
}

/* The first record is consumed: account for it. */
static void
so_record_done_locked(struct socket *so)
{
	sbdroprecord_locked(&so->so_rcv);
	if (so->so_error_recs > 0)
		so->so_error_recs--;
}

/*
 * A read took len bytes, not all, of the first record: its control
 * message goes with the first read, as on FreeBSD, and its type is kept
 * for the Linux form, which gives it with every read.
 */
static void
so_record_part_locked(struct socket *so, size_t len)
{
	struct sockbuf *sb = &so->so_rcv;

	if (sb->sb_mb->m_type == MT_CONTROL) {
		so->so_rpart_type = so_record_type(so, sb->sb_mb);
		sbfree_control_locked(sb);
	}
	if (len > 0)
		sbdrop_record_bytes_locked(sb, (uint32_t)len);
}

static int so_evfd_get_locked(struct socket *so);

/*
 * recv() on a socket without SO_RCVTIMEO is restarted after a signal
 * handler that has SA_RESTART and fails with EINTR after one that has
 * not; poll() always fails with EINTR.  Which signal interrupted a poll is
 * not known, so a reader's poll that a signal ended gives EINTR when some
 * handler lacks SA_RESTART: a handler meant to interrupt reads (an alarm()
 * timeout without SA_RESTART) does so, and a process whose handlers all
 * ask for restarts never sees EINTR (a process with a handler that lacks
 * it must expect EINTR from blocking calls anyway).  The signals a fault
 * raises in the thread itself (a crash handler's) cannot end a wait and
 * are not looked at.  Only a rare path: not fast.
 */
static int
so_signal_interrupts(void)
{
	struct sigaction sa;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV ||
		    sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
		    sig == SIGTRAP || sig == SIGSYS || sig == SIGABRT ||
		    sigaction(sig, NULL, &sa) != 0)
			continue;
		if ((sa.sa_flags & SA_SIGINFO) == 0 &&
		    (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
			continue;
		if ((sa.sa_flags & SA_RESTART) == 0)
			return 1;
	}
	return 0;
}

/*
 * A blocking reader with nothing to read, on a socket whose input is idle
 * and armed: rather than wait for the input thread and a worker (two
 * thread hand-offs), wait on the socket itself, read it and decrypt the
 * record in this thread.  The input thread's registration is disarmed for
 * the wait (both would wake for the same bytes) and armed again when the
 * wait ends, whatever ended it; the eventfd wakes this reader for anything
 * else (a record a worker made, an error, close).  Sockbuf locked; returns
 * EAGAIN at the deadline, EINTR when a signal handler interrupted the wait
 * and recv would have failed with EINTR (with SO_RCVTIMEO set, always; see
 * so_signal_interrupts), else 0 (the caller looks again).
 */
static int
so_wait_direct(struct socket *so, const struct timespec *abstime)
{
	struct sockbuf *sb = &so->so_rcv;
	struct pollfd pfd[2];
	struct timespec now;
	long ms = -1;
	int r, error, intr;

	if (abstime != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (abstime->tv_sec - now.tv_sec) * 1000 +
		    (abstime->tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return EAGAIN;
	}
	pfd[0].fd = so->so_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = so->so_evfd;
	pfd[1].events = POLLIN;
	pfd[0].revents = pfd[1].revents = 0;
	so->so_rpolling++;
	sb->sb_rwaiters++;
	if (!so->so_input_disarmed) {
		input_quiesce_locked(so);
		so->so_input_disarmed = 1;
	}
	SOCKBUF_UNLOCK(sb);
	r = poll(pfd, 2, (int)ms);
	intr = r < 0 && errno == EINTR;
	SOCKBUF_LOCK(sb);
	so->so_rpolling--;
	if (r > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
	    so->so_input_state == SOI_ARMED) {
		/*
		 * Still counted as waiting: a whole record is left to us.
		 * The registration stays disarmed: this reader keeps the
		 * socket while it comes back for more, and hands it back
		 * when it leaves otherwise (so_wait_record_locked).
		 */
		error = input_read_locked(so, 0);
		if (so->so_input_state == SOI_ARMED)
			so->so_input_disarmed = 1;
		if (error == ENOBUFS) {
			/*
			 * The pools are empty and the bytes stay in the
			 * kernel, so the next poll returns at once: give the
			 * others time to free some, as the input thread does,
			 * rather than spin until the deadline.
			 */
			SOCKBUF_UNLOCK(sb);
			usleep(1000);
			SOCKBUF_LOCK(sb);
		}
	} else if (so->so_input_state == SOI_ARMED) {
		/* Woken for something else: the input thread watches again. */
		input_rearm_locked(so);
	}
	sb->sb_rwaiters--;
	so_evfd_update_locked(so);
	if (r == 0)
		return EAGAIN;
	if (intr && (abstime != NULL || so_signal_interrupts()))
		return EINTR;
	return 0;
}

static int so_wait_record_impl(struct socket *so, int flags, int skip_empty,
    struct mbuf **recp);
static void so_consumed_locked(struct socket *so);

/*
 * so_wait_record_impl, then hand the socket back to the input thread if a
 * reader had taken it over (so_input_disarmed): unless a blocking reader
 * is leaving with a record, since it comes back for the next one and reads
 * the socket itself then.  Pollers and event loops always get it back.
 */
static int
so_wait_record_locked(struct socket *so, int flags, int skip_empty,
    struct mbuf **recp)
{
	int error;

	error = so_wait_record_impl(so, flags, skip_empty, recp);
	if (so->so_input_disarmed && so->so_input_state == SOI_ARMED &&
	    (error != 0 || so->so_evfd_perm || !so->so_rblocking))
		input_rearm_locked(so);
	return error;
}

/* An empty record the reader must not see (skip: SKIP_*)? */
static int
so_record_skipped(const struct socket *so, const struct mbuf *rec, int skip)
{
	if (skip == SKIP_NONE || m_length(rec->m_type == MT_CONTROL ?
	    rec->m_next : rec, NULL) != 0)
		return 0;
	return skip == SKIP_EMPTY ||
	    so_record_type(so, rec) == TLS_RLTYPE_APP;
}

/*
 * Wait until the reader has something: a record at sb_mb (returns 0, *recp
 * set to it), an error (returns it; a one-shot error is consumed unless
 * MSG_PEEK), or the end of the stream (returns -1).  skip_empty: which
 * empty records are invisible and dropped on the way: SKIP_EMPTY all (for
 * readers that cannot see a control message), SKIP_EMPTY_DATA those of
 * application data (the Linux form absorbs them), SKIP_NONE none.
 * Sockbuf locked.
 */
static int
so_wait_record_impl(struct socket *so, int flags, int skip_empty,
    struct mbuf **recp)
{
	struct sockbuf *sb = &so->so_rcv;
	struct timespec abstime;
	struct mbuf *rec;
	int timed = -1, error, tried_read = 0;

	for (;;) {
		if ((sb->sb_flags & SB_TLS_RX_INLINE) != 0) {
			/* check_rx left a whole record to us. */
			sb->sb_flags &= (uint16_t)~SB_TLS_RX_INLINE;
			ktls_decrypt_locked(so);
		}
		if ((so->so_state & SS_CLOSING) != 0)
			return EBADF;
		rec = sb->sb_mb;
		if (rec != NULL &&
		    (so->so_error == 0 || so->so_error_recs > 0)) {
			if (!so_record_skipped(so, rec, skip_empty)) {
				*recp = rec;
				return 0;
			}
			/*
			 * An empty record means nothing to a reader without a
			 * control buffer: it is dropped, under MSG_PEEK too
			 * (there is nothing in it to leave for a later read).
			 * Consumed like any record: its buffer space may be
			 * what input waits for, and readiness may change.
			 */
			so_record_done_locked(so);
			so_consumed_locked(so);
			continue;
		}
		if (so->so_error != 0) {
			error = so->so_error;
			if ((flags & MSG_PEEK) == 0) {
				so_error_next_locked(so);
				so_evfd_update_locked(so);
			}
			return error;
		}
		if (so->so_rcverror != 0)
			return so->so_rcverror;
		/*
		 * Every record before the peer's KeyUpdate has been read:
		 * the next key must come first (Linux's EKEYEXPIRED).
		 */
		if (so->so_rekey_pending)
			return EKEYEXPIRED;
		if ((sb->sb_state & SBS_CANTRCVMORE) != 0 &&
		    sb->sb_tlscc == 0 && sb->sb_tlsdcc == 0) {
			/*
			 * End of stream, or the reset that ended it: reported
			 * once, as the kernels report a socket's error, and
			 * the end of the stream after it.
			 */
			error = so->so_eof_error;
			if (error == 0)
				return -1;
			if ((flags & MSG_PEEK) == 0) {
				so->so_eof_error = 0;
				so_evfd_update_locked(so);
			}
			return error;
		}
		if ((sb->sb_flags & (SB_TLS_RX_RUNNING | SB_TLS_RX_ACTIVE)) ==
		    SB_TLS_RX_RUNNING && ktls_config.inline_decrypt) {
			/*
			 * A whole record waits for a worker that has not
			 * started on it: decrypt it here rather than wait.
			 */
			ktls_decrypt_locked(so);
			continue;
		}
		/*
		 * Another thread is decrypting the record this reader waits
		 * for: decrypt the next one beside it rather than wait idle.
		 */
		if (ktls_rx_help_locked(so))
			continue;
		if (ktls_config.inline_decrypt && so->so_input_disarmed &&
		    so->so_input_state == SOI_ARMED &&
		    (flags & MSG_DONTWAIT) == 0 && !so_rcvtimeo_set(so) &&
		    (sb->sb_flags & SB_TLS_RX_RUNNING) == 0) {
			/*
			 * This reader already has the socket to itself (it
			 * left with a record and came back): it reads the
			 * socket the way the socket says, blocking if it
			 * blocks, as SSL_read would.  One system call per
			 * read, with no fcntl to learn O_NONBLOCK (a
			 * non-blocking descriptor answers EAGAIN) and no
			 * poll.  The socket's own SO_RCVTIMEO would apply
			 * to each read rather than to the whole record, so
			 * a socket with one set takes the poll below.
			 */
			so->so_rblockread = 1;
			sb->sb_rwaiters++;
			error = input_read_wait_locked(so);
			sb->sb_rwaiters--;
			so->so_rblockread = 0;
			if (error == EAGAIN) {
				so->so_rblocking = 0;
				return EAGAIN;
			}
			so->so_rblocking = 1;
			if (error == EINTR &&
			    (sb->sb_flags & SB_TLS_RX_INLINE) == 0)
				return EINTR;
			if (error == ENOBUFS) {
				/* The pools are empty: as the input thread
				 * does, give the others time to free some. */
				SOCKBUF_UNLOCK(sb);
				usleep(1000);
				SOCKBUF_LOCK(sb);
			}
			continue;
		}
		if (ktls_config.inline_decrypt && !tried_read &&
		    so->so_input_state == SOI_ARMED) {
			/*
			 * The reader has caught up.  The next bytes are often
			 * in the kernel already: read them now, without
			 * blocking, and decrypt them in this thread (above),
			 * rather than be told by the input thread and then a
			 * worker.  Cross-thread wake-ups cost more CPU than
			 * the decryption; a reader that falls behind leaves
			 * the work to the input threads and workers again.
			 */
			tried_read = 1;
			sb->sb_rwaiters++;
			(void)input_read_locked(so, 0);
			sb->sb_rwaiters--;
			continue;
		}
		so->so_rblocking = !so_nonblocking(so, flags);
		if (!so->so_rblocking)
			return EAGAIN;
		if (timed < 0)
			timed = so_rcvtimeo(so, &abstime);
		if (ktls_config.inline_decrypt &&
		    so->so_input_state == SOI_ARMED &&
		    (sb->sb_flags & SB_TLS_RX_RUNNING) == 0 &&
		    so_evfd_get_locked(so) == 0) {
			error = so_wait_direct(so, timed ? &abstime : NULL);
			/* A record left to us is taken first, as one that
			 * came before the deadline or the signal. */
			if ((error == EAGAIN || error == EINTR) &&
			    (sb->sb_flags & SB_TLS_RX_INLINE) == 0)
				return error;
			continue;
		}
		if (so->so_input_disarmed && so->so_input_state == SOI_ARMED &&
		    (sb->sb_flags & SB_TLS_RX_RUNNING) == 0)
			/*
			 * This reader had taken the socket over but cannot
			 * watch it here (no event fd): the input thread must,
			 * or bytes would wait in the kernel until a timeout.
			 */
			input_rearm_locked(so);
		sb->sb_rwaiters++;
		error = sbwait_active(sb, timed ? &abstime : NULL,
		    (uint64_t)ktls_config.spin_ns);
		sb->sb_rwaiters--;
		if (error == EAGAIN || error == EINTR) {
			/* Timed out or interrupted: a record handed to us is
			 * taken first, as one that came before. */
			if ((sb->sb_flags & SB_TLS_RX_INLINE) != 0)
				continue;
			return error;
		}
	}
}

/* After the reader consumed bytes: resume input, update readiness. */
static void
so_consumed_locked(struct socket *so)
{
	so_input_resume_locked(so);
	so_evfd_update_locked(so);
}

/* Would the next read return the records' end or an error, not data? */
static int
so_data_ends_locked(const struct socket *so)
{
	const struct sockbuf *sb = &so->so_rcv;

	return (so->so_error != 0 && so->so_error_recs == 0) ||
	    so->so_rcverror != 0 || so->so_rekey_pending ||
	    (so->so_state & SS_CLOSING) != 0 ||
	    ((sb->sb_state & SBS_CANTRCVMORE) != 0 && sb->sb_tlscc == 0 &&
	    sb->sb_tlsdcc == 0);
}

/*
 * Put Linux's SOL_TLS/TLS_GET_RECORD_TYPE control message (the content
 * type, one byte) in the caller's buffer; 0, or -1 with MSG_CTRUNC set if
 * it does not fit.
 */
static int
so_put_record_type(struct msghdr *msg, size_t room, uint8_t type)
{
	struct cmsghdr *cmsg;

	if (msg->msg_control == NULL || room < CMSG_LEN(sizeof(type))) {
		if (msg->msg_control != NULL)
			msg->msg_flags |= MSG_CTRUNC;
		return -1;
	}
	cmsg = (struct cmsghdr *)msg->msg_control;
	memset(cmsg, 0, room < CMSG_SPACE(sizeof(type)) ? room :
	    CMSG_SPACE(sizeof(type)));
	cmsg->cmsg_len = CMSG_LEN(sizeof(type));
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_GET_RECORD_TYPE;
	memcpy(CMSG_DATA(cmsg), &type, sizeof(type));
	msg->msg_controllen = room < CMSG_SPACE(sizeof(type)) ? room :
	    CMSG_SPACE(sizeof(type));
	return 0;
}

/*
 * MSG_PEEK wants more data than is decrypted (MSG_WAITALL, SO_RCVLOWAT):
 * let decryption go on, in this thread if a whole record waits for a pass
 * nobody runs, or sleep until the buffer changes.  The socket goes back to
 * the input thread first if this reader had it (it reads nothing while it
 * peeks).  0 (look again), EAGAIN at the deadline or when the read must
 * not block, EINTR.  Sockbuf locked.
 */
static int
so_peek_wait_locked(struct socket *so, int flags, struct timespec *abstime,
    int *timed)
{
	struct sockbuf *sb = &so->so_rcv;
	int error;

	if ((sb->sb_flags & SB_TLS_RX_INLINE) != 0) {
		sb->sb_flags &= (uint16_t)~SB_TLS_RX_INLINE;
		ktls_decrypt_locked(so);
		return 0;
	}
	if ((sb->sb_flags & (SB_TLS_RX_RUNNING | SB_TLS_RX_ACTIVE)) ==
	    SB_TLS_RX_RUNNING && ktls_config.inline_decrypt) {
		ktls_decrypt_locked(so);
		return 0;
	}
	if (so_nonblocking(so, flags))
		return EAGAIN;
	/*
	 * The buffer is full (input paused until a read makes room) and
	 * nothing in it is left to decrypt: a peek takes nothing, so nothing
	 * more can come until a read does.  It returns what it has
	 * (Linux's peek, which moves what it decrypts out of the TCP queue,
	 * could see more).
	 */
	if ((so->so_input_state == SOI_PAUSED || sbspace_ktls_rx(sb) == 0) &&
	    (sb->sb_flags & SB_TLS_RX_RUNNING) == 0 && sb->sb_tlsdcc == 0)
		return EAGAIN;
	if (*timed < 0)
		*timed = so_rcvtimeo(so, abstime);
	if (so->so_input_disarmed && so->so_input_state == SOI_ARMED)
		input_rearm_locked(so);
	sb->sb_rwaiters++;
	error = sbwait_active(sb, *timed ? abstime : NULL,
	    (uint64_t)ktls_config.spin_ns);
	sb->sb_rwaiters--;
	/* A record handed to this waiter (SB_TLS_RX_INLINE) is decrypted
	 * first, whatever ended the wait: nobody else will. */
	if ((error == EAGAIN || error == EINTR) &&
	    (sb->sb_flags & SB_TLS_RX_INLINE) == 0)
		return error;
	return 0;
}

/*
 * soreceive for a socket enabled through Linux's SOL_TLS/TLS_RX, with
 * Linux's semantics: every read with a control buffer gets the record type
 * in a SOL_TLS/TLS_GET_RECORD_TYPE message; data records are merged into
 * one read while there is room (queued ones; with MSG_WAITALL, waiting for
 * more until the buffer is full, the stream ends or a record of another
 * type comes); a record of another type is read on its own, and only with
 * room for its type: without it the read fails with EIO and the record
 * stays; MSG_PEEK looks across data records without taking them (and
 * with MSG_WAITALL waits for more, as Linux's does); empty
 * data records are absorbed; MSG_EOR is set when the last record the read
 * reached was read to its end.  Data read before an error, the end of the
 * stream or a pending KeyUpdate is returned first, the rest comes with the
 * next read.
 */
static ssize_t
soreceive_linux(struct socket *so, struct msghdr *msg, int flags)
{
	struct sockbuf *sb = &so->so_rcv;
	struct mbuf *rec, *data;
	size_t room = msg->msg_control != NULL ? msg->msg_controllen : 0;
	size_t want = 0, copied, n, reclen, target;
	struct timespec abstime;
	uint32_t seen;
	uint8_t type;
	int peek = (flags & MSG_PEEK) != 0, timed = -1, error;
	size_t i;

	for (i = 0; i < msg->msg_iovlen; i++)
		want += msg->msg_iov[i].iov_len;
	SOCKBUF_LOCK(sb);
	/* What the read waits for, as Linux's sock_rcvlowat() says. */
	target = (flags & MSG_WAITALL) != 0 ? want :
	    (size_t)so->so_rcvlowat < want ? (size_t)so->so_rcvlowat : want;
again:
	copied = 0;
	seen = 0;
	msg->msg_flags = 0;
	msg->msg_controllen = 0;
	error = so_wait_record_locked(so, flags, SKIP_EMPTY_DATA, &rec);
	if (error != 0)
		goto out;
	type = so_record_type(so, rec);
	if (so_put_record_type(msg, room, type) != 0 &&
	    type != TLS_RLTYPE_APP) {
		/* Linux: the type cannot be told, so nothing is read. */
		error = EIO;
		goto out;
	}
	for (;;) {
		data = rec->m_type == MT_CONTROL ? rec->m_next : rec;
		reclen = m_length(data, NULL);
		n = so_copy_data(data, msg, copied);
		copied += n;
		seen++;
		if (n < reclen) {
			/* The buffer is full inside this record. */
			msg->msg_flags &= ~MSG_EOR;
			if (!peek) {
				so_record_part_locked(so, n);
				so_consumed_locked(so);
			}
			break;
		}
		msg->msg_flags |= MSG_EOR;
		if (!peek) {
			so_record_done_locked(so);
			so_consumed_locked(so);
		}
		if (type != TLS_RLTYPE_APP || copied >= want)
			break;
		/* The next record, if it is data and may be read now. */
		rec = peek ? rec->m_nextpkt : sb->sb_mb;
		if (so->so_error != 0 &&
		    so->so_error_recs <= (peek ? seen : 0))
			break;
		if (rec == NULL) {
			if (copied >= target || so_data_ends_locked(so))
				break;
			if (peek) {
				/*
				 * Wait for more, then look again from the
				 * first record: nothing was taken, and
				 * another reader may take what was looked at.
				 */
				if (so_peek_wait_locked(so, flags, &abstime,
				    &timed) != 0)
					break;
				goto again;
			}
			/* Under MSG_PEEK so that an error that ends the wait
			 * stays for the next read, after this one's data. */
			if (so_wait_record_locked(so, flags | MSG_PEEK,
			    SKIP_EMPTY_DATA, &rec) != 0)
				break;
		}
		/* An empty data record on the way adds nothing: absorbed. */
		if (so_record_type(so, rec) != TLS_RLTYPE_APP)
			break;
	}
out:
	SOCKBUF_UNLOCK(sb);
	if (error != 0) {
		msg->msg_controllen = 0;
		msg->msg_flags = 0;
		if (error < 0)
			return 0;
		errno = error;
		return -1;
	}
	return (ssize_t)copied;
}

/*
 * soreceive for an RX-enabled socket: at most one record per call.
 * With a control buffer (recvmsg) the first read of a record returns its
 * control message; without one the control message is dropped, and empty
 * records are skipped so that 0 only ever means end of stream.
 */
static ssize_t
soreceive(struct socket *so, struct msghdr *msg, int flags)
{
	struct sockbuf *sb = &so->so_rcv;
	struct mbuf *rec, *data;
	int want_ctl = msg->msg_control != NULL, error;
	size_t copied = 0, reclen;

	if ((flags & (MSG_OOB | MSG_ERRQUEUE)) != 0) {
		errno = EINVAL;
		return -1;
	}
	msg->msg_flags = 0;
	/* A stream socket has no source address to give, as TCP's recvmsg. */
	msg->msg_namelen = 0;
	if (so->so_linux)
		return soreceive_linux(so, msg, flags);
	msg->msg_controllen = want_ctl ? msg->msg_controllen : 0;
	SOCKBUF_LOCK(sb);
	error = so_wait_record_locked(so, flags,
	    want_ctl ? SKIP_NONE : SKIP_EMPTY, &rec);
	if (error != 0) {
		SOCKBUF_UNLOCK(sb);
		msg->msg_controllen = 0;
		if (error < 0)
			return 0;
		errno = error;
		return -1;
	}
	KASSERT(rec == sb->sb_mb, ("soreceive: not the first record"));
	data = rec->m_type == MT_CONTROL ? rec->m_next : rec;
	reclen = m_length(data, NULL);
	if (rec->m_type == MT_CONTROL && want_ctl)
		so_copy_control(rec, msg);
	else
		msg->msg_controllen = 0;
	copied = so_copy_data(data, msg, 0);
	if (copied == reclen)
		msg->msg_flags |= MSG_EOR;
	if ((flags & MSG_PEEK) == 0) {
		if (copied == reclen)
			so_record_done_locked(so);
		else
			so_record_part_locked(so, copied);
		so_consumed_locked(so);
	}
	SOCKBUF_UNLOCK(sb);
	return (ssize_t)copied;
}

ssize_t
uktls_recv_zc(int fd, struct uktls_zc_record **recp,
    struct tls_get_record *tgr, int flags)
{
	struct socket *so;
	struct sockbuf *sb;
	struct mbuf *rec, *data;
	struct tls_get_record t;
	ssize_t ret;
	int error, have_ctl = 0;

	if (recp == NULL) {
		errno = EFAULT;
		return -1;
	}
	*recp = NULL;
	if ((flags & ~(MSG_DONTWAIT | MSG_WAITALL)) != 0) {
		errno = EINVAL;
		return -1;
	}
	so = so_lookup(fd);
	if (so == NULL) {
		errno = so_not_rx_error(fd);
		return -1;
	}
	sb = &so->so_rcv;
	SOCKBUF_LOCK(sb);
	error = so_wait_record_locked(so, flags,
	    so->so_linux ? SKIP_EMPTY_DATA : SKIP_NONE, &rec);
	if (error != 0) {
		SOCKBUF_UNLOCK(sb);
		sorele(so);
		if (error < 0)
			return 0;
		errno = error;
		return -1;
	}
	memset(&t, 0, sizeof(t));
	if (rec->m_type == MT_CONTROL) {
		memcpy(&t, CMSG_DATA(mtod(rec, struct cmsghdr *)), sizeof(t));
		have_ctl = 1;
		sbfree_control_locked(sb);
	}
	/*
	 * Unlink the whole record from the sockbuf: from here its mbufs
	 * belong to the caller until uktls_zc_free().  The accounting is the
	 * same as for a record read in full.
	 */
	data = sb->sb_mb;
	ret = (ssize_t)m_length(data, NULL);
	sbunlink_record_locked(sb);
	if (so->so_error_recs > 0)
		so->so_error_recs--;
	so_consumed_locked(so);
	SOCKBUF_UNLOCK(sb);
	if (!have_ctl)
		t.tls_length = htons((uint16_t)ret);
	if (tgr != NULL)
		*tgr = t;
	*recp = (struct uktls_zc_record *)data;
	sorele(so);
	return ret;
}

int
uktls_zc_iov(const struct uktls_zc_record *rec, struct iovec *iov, int iovcnt)
{
	const struct mbuf *m;
	int n = 0;

	for (m = (const struct mbuf *)rec; m != NULL; m = m->m_next) {
		if (m->m_len == 0)
			continue;
		if (n < iovcnt && iov != NULL) {
			iov[n].iov_base = m->m_data;
			iov[n].iov_len = m->m_len;
		}
		n++;
	}
	return n;
}

void
uktls_zc_free(struct uktls_zc_record *rec)
{
	m_freem((struct mbuf *)rec);
}

ssize_t
uktls_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct socket *so;
	ssize_t r;

	so = so_lookup(fd);
	if (so == NULL)
		return recvmsg(fd, msg, flags);
	r = soreceive(so, msg, flags);
	sorele(so);
	return r;
}

ssize_t
uktls_recv(int fd, void *buf, size_t len, int flags)
{
	struct socket *so;
	struct msghdr msg;
	struct iovec iov;
	ssize_t r;

	so = so_lookup(fd);
	if (so == NULL)
		return recv(fd, buf, len, flags);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	r = soreceive(so, &msg, flags);
	sorele(so);
	return r;
}

ssize_t
uktls_read(int fd, void *buf, size_t len)
{
	struct socket *so;
	struct msghdr msg;
	struct iovec iov;
	ssize_t r;

	so = so_lookup(fd);
	if (so == NULL)
		return read(fd, buf, len);
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	r = soreceive(so, &msg, 0);
	sorele(so);
	return r;
}

/* ---------------------------------------------------------------------- */
/* Readiness descriptors and poll.                                        */

/* Create so's eventfd if it has none; sockbuf locked. */
static int
so_evfd_get_locked(struct socket *so)
{
	if (so->so_evfd < 0) {
		so->so_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (so->so_evfd < 0)
			return errno;
		so->so_evfd_ready = 0;
	}
	so_evfd_update_locked(so);
	return 0;
}

int
uktls_event_fd(int fd)
{
	struct socket *so;
	int error, efd;

	so = so_lookup(fd);
	if (so == NULL) {
		errno = so_not_rx_error(fd);
		return -1;
	}
	SOCKBUF_LOCK(&so->so_rcv);
	so->so_evfd_perm = 1;
	if (so->so_input_disarmed && so->so_input_state == SOI_ARMED)
		input_rearm_locked(so);
	error = so_evfd_get_locked(so);
	efd = so->so_evfd;
	SOCKBUF_UNLOCK(&so->so_rcv);
	sorele(so);
	if (error != 0) {
		errno = error;
		return -1;
	}
	return efd;
}

#define POLL_STACK 32

int
uktls_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct pollfd stack_p[2 * POLL_STACK], *p;
	struct socket *stack_so[POLL_STACK], **sos;
	nfds_t i, n;
	int r = -1, error = 0, count;
	short rd = POLLIN | POLLRDNORM;

	if (nfds <= POLL_STACK) {
		p = stack_p;
		sos = stack_so;
	} else {
		p = calloc(2 * nfds, sizeof(*p));
		sos = calloc(nfds, sizeof(*sos));
		if (p == NULL || sos == NULL) {
			free(p);
			free(sos);
			errno = ENOMEM;
			return -1;
		}
	}
	/*
	 * Each RX-enabled descriptor becomes two entries: the socket itself
	 * for everything but reading, and its readiness eventfd for reading.
	 */
	for (i = 0, n = 0; i < nfds; i++) {
		sos[i] = so_lookup(fds[i].fd);
		p[n] = fds[i];
		p[n].revents = 0;
		if (sos[i] == NULL) {
			n++;
			continue;
		}
		p[n].events &= (short)~rd;
		n++;
		SOCKBUF_LOCK(&sos[i]->so_rcv);
		sos[i]->so_evfd_perm = 1;
		if (sos[i]->so_input_disarmed &&
		    sos[i]->so_input_state == SOI_ARMED)
			input_rearm_locked(sos[i]);
		error = so_evfd_get_locked(sos[i]);
		p[n].fd = sos[i]->so_evfd;
		SOCKBUF_UNLOCK(&sos[i]->so_rcv);
		if (error != 0) {
			nfds = i + 1;
			goto out;
		}
		p[n].events = (fds[i].events & rd) != 0 ? POLLIN : 0;
		p[n].revents = 0;
		n++;
	}
	r = poll(p, n, timeout);
	if (r < 0) {
		error = errno;
		goto out;
	}
	count = 0;
	for (i = 0, n = 0; i < nfds; i++) {
		fds[i].revents = p[n].revents;
		n++;
		if (sos[i] != NULL) {
			fds[i].revents &= (short)~rd;
			if ((p[n].revents & POLLIN) != 0)
				fds[i].revents |= (short)(fds[i].events & rd);
			n++;
		}
		if (fds[i].revents != 0)
			count++;
	}
	r = count;
out:
	for (i = 0; i < nfds; i++)
		if (sos[i] != NULL)
			sorele(sos[i]);
	if (p != stack_p) {
		free(p);
		free(sos);
	}
	if (error != 0) {
		errno = error;
		return -1;
	}
	return r;
}

/* ---------------------------------------------------------------------- */
/* Shutdown and close.                                                    */

int
uktls_shutdown(int fd, int how)
{
	struct socket *so;
	struct sockbuf *sb;

	so = so_lookup(fd);
	if (so == NULL)
		return shutdown(fd, how);
	if (so->so_inherited) {
		/* Inherited through fork(): the kernel socket is the
		 * parent's stream too, and no call of the child's may
		 * touch it (SECURITY.md). */
		sorele(so);
		errno = EBADF;
		return -1;
	}
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
		sorele(so);
		errno = EINVAL;
		return -1;
	}
	if (how != SHUT_WR) {
		/*
		 * FreeBSD's sorflush: everything queued is dropped, a record
		 * being decrypted is cancelled (its worker frees it), and
		 * reads return end of stream.
		 */
		sb = &so->so_rcv;
		SOCKBUF_LOCK(sb);
		sb->sb_state |= SBS_CANTRCVMORE;
		so->so_error = 0;
		so->so_errq_n = 0;
		/* Nothing is left to wait for a key for. */
		so->so_rekey_pending = 0;
		sbflush_locked(sb);
		input_stop_locked(so);
		sorwakeup_locked(so);
		SOCKBUF_UNLOCK(sb);
	}
	sorele(so);
	return shutdown(fd, how);
}

int
uktls_close(int fd)
{
	struct socket *so;
	struct sockbuf *sb;
	int r, saved;

	/*
	 * The socket stays in the table, closing, until its descriptor is
	 * closed: a read that starts meanwhile finds it and gets EBADF,
	 * rather than finding no socket and reading ciphertext from the
	 * descriptor as plaintext.
	 */
	so = so_lookup(fd);
	if (so == NULL)
		return close(fd);
	sb = &so->so_rcv;
	SOCKBUF_LOCK(sb);
	if ((so->so_state & SS_CLOSING) != 0) {
		/* Another thread is closing it. */
		SOCKBUF_UNLOCK(sb);
		sorele(so);
		errno = EBADF;
		return -1;
	}
	so->so_state |= SS_CLOSING;
	/*
	 * The input thread may be inside recvmsg on fd: let it finish
	 * before the descriptor number can be reused.  A reader blocked in
	 * recvmsg would wait for the peer: shutting the receive side down
	 * ends its wait at once (the descriptor is being closed anyway).
	 */
	if (so->so_rblockread)
		(void)shutdown(fd, SHUT_RD);
	while (so->so_input_state == SOI_BUSY) {
		so->so_closewait = 1;
		sbwait(sb, NULL);
	}
	input_stop_locked(so);
	sbflush_locked(sb);
	sorwakeup_locked(so);
	SOCKBUF_UNLOCK(sb);
	input_reap(so);
	pthread_rwlock_wrlock(&so_table_lock);
	so->so_fdclosing = 1;
	pthread_rwlock_unlock(&so_table_lock);
	r = close(fd);
	saved = errno;
	pthread_rwlock_wrlock(&so_table_lock);
	so->so_fdclosed = 1;
	pthread_rwlock_unlock(&so_table_lock);
	/* An inherited socket was never counted in this process. */
	if (!so->so_inherited)
		KTLS_COUNT(sockets_active, -1);
	if (so_table_remove(fd, so))
		sorele(so);     /* the table's reference */
	sorele(so);             /* so_lookup's */
	errno = saved;
	return r;
}
