/*
 * Protocol input: threads that read RX-enabled TCP sockets into cluster
 * mbufs and append them to the TLS chain (the role tcp_input and
 * sbappendstream play in FreeBSD).
 *
 * Each socket belongs to one input thread, which owns an epoll instance.  A
 * socket is registered EPOLLONESHOT: once an event is delivered the thread
 * reads (SOI_BUSY, unlocked), appends under the sockbuf lock, and re-arms,
 * unless the buffer reached its high-water mark (SOI_PAUSED: the reader
 * re-arms it below low water, so TCP's window closes on the peer) or the
 * stream ended (SOI_DONE).
 */
#ifndef UKTLS_INPUT_H
#define UKTLS_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mbuf;
struct socket;

/*
 * Where the record boundaries of a socket's stream fall, as its reads have
 * seen the bytes go by: the input side's own count, apart from the TLS
 * chain (which the engine parses for itself), so that a read can be laid
 * out for each record to land whole in one cluster.  Only a hint: a wrong
 * count costs a split record, never a wrong byte.  Owned by whoever holds
 * the socket SOI_BUSY (or is enabling it).
 */
struct input_track {
	uint32_t tr_left;   /* bytes of the record under way still to come */
	uint32_t tr_reclen; /* the last header's record length, header
			       included: the guess for the next; 0 none yet */
	uint8_t tr_hdrlen;  /* bytes of the next header seen so far */
	uint8_t tr_lost;    /* a header no TLS peer sends: no guesses */
	uint8_t tr_hdr[5];
};

/* Count len more bytes of the stream (the next ones, in order). */
void input_track_bytes(struct input_track *tr, const void *buf, size_t len);

/*
 * Lay out a read of up to want bytes over the clusters a thread holds:
 * room[i] is what cluster i has free (MJUMTLSBYTES for an empty slot), and
 * cont says that cluster 0 ends with the start of the record under way.
 * On return len[i] is how much to read into cluster i and fresh[i] says to
 * retire it first and read into an empty cluster instead; the clusters used
 * are 0 .. the returned count - 1, each with len[i] > 0.
 *
 * Bytes go into a cluster while the next record (as tr guesses its end)
 * fits in what is left of it; a record that does not fit moves on to the
 * next cluster, and to an empty one where the cluster there already holds
 * bytes, so that each record lies in one cluster.  A record larger than a
 * cluster, one whose start lies in cluster 0 (cont) but whose rest does not
 * fit there, or a stream whose boundaries are not known, fills the clusters
 * in turn.  A read that would end inside a record after the end of another
 * ends at that end instead, so it may lay out less than want with clusters
 * to spare.
 */
unsigned int input_layout(const struct input_track *tr, uint32_t want,
    const uint32_t *room, unsigned int ncl, int cont, uint32_t *len,
    uint8_t *fresh);

/*
 * Do the next n bytes end where tr expects a record to end (the only place
 * input_layout stops short of want with clusters to spare)?  0 when the
 * boundaries are not known.
 */
int input_at_record_end(const struct input_track *tr, uint32_t n);

/*
 * The steps of one read into the clusters cl[0 .. ncl-1] a thread holds
 * (the thread's own mbuf on each, or NULL), as input_fill_locked takes
 * them around its recvmsg; bench_engine takes the same steps around its
 * copy, so that it lays a stream out exactly as a socket's reads do.
 *
 * input_continue_first: when a cluster held ends with tail (the TLS
 * chain's last mbuf, read under the sockbuf lock), the record under way
 * continues there: put it first and return 1.
 *
 * input_read_plan: retire clusters too full to read into, lay out a read
 * of up to space bytes (input_layout) and take the clusters for it.  Fills
 * iov[] and ci[] (the cluster of each iovec) and returns their number; 0
 * when the pools are empty and no cluster held has room.  Clears *cont
 * when the cluster it named is retired.
 *
 * input_wrap_range: the mbufs that carry k bytes just read at base into
 * the cluster *clp: the thread's own mbuf when the range finishes the
 * cluster (*clp becomes NULL), a copy into inline mbufs when the range is
 * short and ends the read (more == 0, cont == 0), a second mbuf sharing the
 * cluster otherwise.  more: bytes follow in this read; cont: the bytes
 * continue the record under way in its cluster.  Never fails: without an
 * mbuf the range goes out in the thread's own.
 */
int input_continue_first(struct mbuf **cl, unsigned int ncl,
    const struct mbuf *tail);
unsigned int input_read_plan(const struct input_track *tr, struct mbuf **cl,
    unsigned int ncl, uint32_t space, int *cont, struct iovec *iov,
    unsigned int *ci);
struct mbuf *input_wrap_range(struct mbuf **clp, char *base, uint32_t k,
    int more, int cont);

int input_start(unsigned int nthreads);

/* Register so (SOI_ARMED) with an input thread; takes a reference. */
int input_register(struct socket *so);

/*
 * A reader that would block reads its socket itself when it is armed,
 * as the input thread would, into clusters of its own thread.  rearm: the
 * epoll registration was quiesced and must be armed again afterwards.
 * Sockbuf locked (dropped around the read).  0, ENOBUFS when the pools
 * are empty, or EAGAIN when there was nothing to read.
 */
int input_read_locked(struct socket *so, int rearm);

/*
 * The same, but blocking in recvmsg as a blocking socket does (for the
 * reader that has the socket to itself, so_input_disarmed): returns once
 * bytes came, at end of stream or an error, or on a signal.  EAGAIN when
 * the descriptor is non-blocking and nothing was there (or SO_RCVTIMEO
 * expired), EINTR when a signal handler without SA_RESTART interrupted the
 * wait; whoever closes the socket meanwhile shuts its receive side down
 * first to end the wait (so_rblockread).
 */
int input_read_wait_locked(struct socket *so);

/*
 * Disarm so's registration while a reader waits on the socket itself; the
 * reader re-arms it (input_rearm_locked or a read) when it stops waiting.
 * Sockbuf locked, socket SOI_ARMED.
 */
void input_quiesce_locked(struct socket *so);

/* Re-arm a SOI_PAUSED socket.  Sockbuf locked. */
void input_rearm_locked(struct socket *so);

/*
 * Stop reading so for good: an armed or paused socket leaves epoll now; a
 * busy one is stopped by its input thread when it relocks.  Sockbuf locked.
 */
void input_stop_locked(struct socket *so);

/*
 * After close: hand the registration's reference back to the input thread,
 * which drops it once no epoll event it fetched can still name the socket.
 */
void input_reap(struct socket *so);

/*
 * In a child of fork(): the input threads stayed in the parent, and their
 * epoll instances are the parent's too (a descriptor copied by fork names
 * the same instance), so the child lets go of them; the engine starts
 * afresh on the child's first enable.
 */
void input_fork_child(void);

#endif /* UKTLS_INPUT_H */
