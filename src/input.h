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

struct socket;

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
 * expired); whoever closes the socket meanwhile shuts its receive side
 * down first to end the wait (so_rblockread).
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
