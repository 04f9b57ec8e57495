/*
 * The socket layer: one struct socket per RX-enabled descriptor, the table
 * that maps descriptors to them, references, receive and close.
 *
 * References (so_count): the descriptor table holds one from enable until
 * uktls_close; the input thread's epoll registration holds one until the
 * input thread reaps it after close; a work queue holds one while the socket
 * is on its list (so_wq_onlist); each thread inside a
 * uktls_* call on the socket holds one.  The last sorele() frees the socket
 * and its session (keys wiped).
 *
 * Fields marked (sb) are guarded by so_rcv.sb_mtx.
 */
#ifndef UKTLS_SOCKET_H
#define UKTLS_SOCKET_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/time.h>

#include "input.h"
#include "sockbuf.h"

struct input_thread;

/* so_state (sb) */
#define SS_CLOSING 0x0001  /* uktls_close in progress or done */
#define SS_RCVDEAD 0x0002  /* receive side failed: so_rcverror is set */

/* so_input_state (sb): where the socket stands with its input thread. */
#define SOI_ARMED 0  /* registered with epoll, waiting for bytes */
#define SOI_BUSY 1   /* the input thread is reading it, unlocked */
#define SOI_PAUSED 2 /* buffer at its high-water mark: not re-armed */
#define SOI_DONE 3   /* EOF, error or close: never re-armed */

/* One-shot errors a socket keeps in their places beyond the first. */
#define SO_ERRQ_MAX 8

struct socket {
	atomic_uint so_count;
	int so_fd;
	/*
	 * (table lock to read; set once) uktls_close has closed so_fd: the
	 * number may name another socket now, so the table entry, until
	 * close removes it, is as good as none (so_lookup, so_table_insert).
	 */
	int so_fdclosed;
	/* (table lock; set once) uktls_close is about to close so_fd: the
	 * number may be free in a moment, so an enable of it waits. */
	int so_fdclosing;
	uint16_t so_state;          /* (sb) */
	uint16_t so_input_state;    /* (sb) */
	int so_error;               /* (sb) one-shot error for the reader */
	uint32_t so_error_recs;     /* (sb) records queued ahead of it */
	/*
	 * (sb) Errors after so_error, each with the records queued between
	 * the error before it and itself; so_error takes the first when the
	 * reader has had it.  Full, an error kills the receive side instead.
	 */
	int so_errq[SO_ERRQ_MAX];
	uint32_t so_errq_recs[SO_ERRQ_MAX];
	unsigned int so_errq_n;
	int so_rcverror;            /* (sb) sticky error: receive side dead */
	int so_eof_error;           /* (sb) why input ended: 0 (FIN) or errno */
	struct timeval so_rcvtimeo; /* (sb) SO_RCVTIMEO, see so_rcvtimeo() */
	/* (sb) SO_RCVLOWAT in plaintext bytes, kept by uktls (the kernel's
	 * is 1 while RX is on); Linux's form waits for it (soreceive_linux). */
	int so_rcvlowat;
	int so_evfd;                /* (sb) readiness eventfd, -1 if none */
	int so_evfd_ready;          /* (sb) so_evfd holds a count */
	int so_evfd_perm;           /* (sb) kept current: poll/event_fd use */
	int so_rpolling;            /* (sb) readers polling fd and so_evfd */
	int so_closewait;           /* (sb) a closer waits for SOI_BUSY */
	int so_rx_no_pad;           /* (sb) TLS_RX_EXPECT_NO_PAD, as set */
	/* (set once, before the socket is in the table) TLS 1.2 AES-GCM:
	 * the 8-byte iv TLS_RX gave, which records' own nonces make unused,
	 * kept to be read back as Linux does. */
	uint8_t so_lx_iv12[8];
	/*
	 * (set once, before the socket is in the table) Enabled through
	 * Linux's SOL_TLS/TLS_RX: reads follow Linux (the record type in a
	 * SOL_TLS/TLS_GET_RECORD_TYPE control message, data records merged,
	 * EIO for a record that is not data without room for its type) and,
	 * on TLS 1.3, a KeyUpdate stops decryption until TLS_RX gives the
	 * next key.
	 */
	int so_linux;
	/* (set once) The parent's socket in a forked child: no session. */
	int so_inherited;
	/*
	 * (sb) The peer's KeyUpdate was decrypted (Linux form, TLS 1.3): the
	 * records after it wait, encrypted, for TLS_RX with the next key;
	 * once the records before have been read, reads give EKEYEXPIRED.
	 */
	int so_rekey_pending;
	/* (sb) The content type of the record at sb_mb once a read has
	 * taken part of it, and its control message with it. */
	uint8_t so_rpart_type;
	/*
	 * (sb) Where the TLS 1.3 handshake stream stands between records,
	 * for finding KeyUpdate messages in records that hold several
	 * messages or a part of one: bytes of a message body still to come,
	 * the bytes of a message header cut by a record boundary, and
	 * whether the message under way is a KeyUpdate.
	 */
	uint32_t so_hs_resid;
	uint8_t so_hs_hdr[4];
	uint8_t so_hs_hdrlen;
	uint8_t so_hs_ku;           /* (sb) the message is a KeyUpdate */
	uint8_t so_hs_kureq_due;    /* (sb) its request_update byte is next */
	uint8_t so_hs_kureq;        /* (sb) that byte, once seen (0 before) */
	/* (sb) The KeyUpdate behind so_rekey_pending asked for one back
	 * (request_update 1), for uktls_rx_rekey_pending(). */
	int so_rekey_requested;
	int so_input_missed;        /* (sb) an epoll event found it SOI_BUSY */
	int so_input_disarmed;      /* (sb) SOI_ARMED, registration disarmed:
				       a reader has the socket to itself */
	int so_rblocking;           /* (sb) the last reader to wait blocks */
	int so_rblockread;          /* (sb) a reader blocks in recvmsg on
				       so_fd (input_read_wait_locked) */
	unsigned int so_wq;         /* work queue index, chosen once */
	int so_wq_onlist;           /* (sb) on the queue's list: worker visits */
	struct socket *so_wq_next;  /* work-queue linkage (wq lock) */
	struct input_thread *so_input;
	struct input_track so_in_track; /* (SOI_BUSY holder) record
					   boundaries for laying out reads */
	struct socket *so_reap_next; /* input thread's reap list */
	int64_t so_resv_mbufs;      /* pool reservation, released at free */
	int64_t so_resv_clusters;
	struct sockbuf so_rcv;
};

void soref(struct socket *so);

/* pthread_atfork handlers for the descriptor table (see socket.c). */
void so_fork_prepare(void);
void so_fork_parent(void);
void so_fork_child(void);
void sorele(struct socket *so);

/* Find the socket RX-enabled on fd and take a reference; NULL if none. */
struct socket *so_lookup(int fd);

/*
 * Readers, pollers and event-loop descriptors are told of a change: called
 * with the sockbuf locked after records were appended, an error set, EOF
 * seen or the socket closed.
 */
void sorwakeup_locked(struct socket *so);

/* Wake the waiting readers (condvar and direct waiters) without a
 * readiness change: ktls_check_rx left them a record to decrypt. */
void so_kick_readers_locked(struct socket *so);

/* Is a reader going to return without blocking?  Sockbuf locked. */
int soreadable(const struct socket *so);

/*
 * Record err for the reader at the current end of the readable records:
 * the reader gets every record queued before it, then -1 with err once.
 * Errors while one is pending queue behind it in their own places
 * (so_errq); one more than SO_ERRQ_MAX behind it ends the receive side.
 */
void so_seterror_locked(struct socket *so, int err);

/*
 * The receive side is dead with err (malformed header, EOF inside a record,
 * reset): encrypted bytes are dropped, input stops, and after the records
 * already decrypted every read returns err.  drop: also shut the TCP
 * connection down, as FreeBSD drops it.
 */
void so_rcvdead_locked(struct socket *so, int err, int drop);

/* Called by the reader after consuming: resume input below low water. */
void so_input_resume_locked(struct socket *so);

#endif /* UKTLS_SOCKET_H */
