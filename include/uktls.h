/*
 * uktls: kernel TLS receive offload in userspace.
 *
 * The application performs the TLS handshake with the library of its choice,
 * then hands the receive side of its connected TCP socket to uktls with
 * uktls_setsockopt(fd, IPPROTO_TCP, TCP_RXTLS_ENABLE, &tls_enable, ...).
 * From then on uktls reads the socket itself, decrypts records on per-CPU
 * worker threads, and the application reads one plaintext record per call
 * with uktls_recvmsg(), each carrying a TLS_GET_RECORD control message, as on
 * FreeBSD.  The structures and constants keep FreeBSD's names and values so
 * that kernel-TLS programs port with a rename of the calls.
 *
 * Every call takes the application's own descriptor.  On a descriptor that
 * does not have RX enabled the calls behave as the system call they are
 * named after, except that TCP_RXTLS_ENABLE and TCP_RXTLS_MODE (and Linux's
 * SOL_TLS TLS_RX and TLS_TX, below) are always answered by uktls.
 */
#ifndef UKTLS_H
#define UKTLS_H

#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* TCP-level socket options, with FreeBSD's numbers (sys/netinet/tcp.h). */
#define TCP_TXTLS_ENABLE 39
#define TCP_TXTLS_MODE 40
#define TCP_RXTLS_ENABLE 41
#define TCP_RXTLS_MODE 42

/* Values of TCP_RXTLS_MODE. */
#define TCP_TLS_MODE_NONE 0
#define TCP_TLS_MODE_SW 1
#define TCP_TLS_MODE_IFNET 2
#define TCP_TLS_MODE_TOE 3

/* Record-layer versions (sys/sys/ktls.h). */
#define TLS_MAJOR_VER_ONE 3
#define TLS_MINOR_VER_ZERO 1  /* TLS 1.0 */
#define TLS_MINOR_VER_ONE 2   /* TLS 1.1 */
#define TLS_MINOR_VER_TWO 3   /* TLS 1.2 */
#define TLS_MINOR_VER_THREE 4 /* TLS 1.3 */

/* Control message type at level IPPROTO_TCP carrying struct tls_get_record. */
#define TLS_GET_RECORD 2

/* Record content types (RFC 8446 section 5.1). */
#define TLS_RLTYPE_CHANGE_CIPHER_SPEC 20
#define TLS_RLTYPE_ALERT 21
#define TLS_RLTYPE_HANDSHAKE 22
#define TLS_RLTYPE_APP 23

/* Algorithm identifiers, with FreeBSD's values (opencrypto/cryptodev.h). */
#define CRYPTO_SHA1_HMAC 7
#define CRYPTO_AES_CBC 11
#define CRYPTO_SHA2_256_HMAC 18
#define CRYPTO_SHA2_384_HMAC 19
#define CRYPTO_AES_NIST_GCM_16 25
#define CRYPTO_CHACHA20_POLY1305 41

/* Record size limits (RFC 8446 5.1 / 5.2, RFC 5246 6.2). */
#define TLS_MAX_MSG_SIZE_V10_2 16384
#define TLS_MAX_PARAM_SIZE 1024 /* max key, MAC key or IV length in tls_enable */
#define TLS_AEAD_GCM_LEN 4    /* TLS 1.2 GCM implicit nonce (salt) length */
#define TLS_1_3_GCM_IV_LEN 12
#define TLS_CHACHA20_IV_LEN 12
#define TLS_CBC_IMPLICIT_IV_LEN 16

/*
 * Argument of TCP_RXTLS_ENABLE (FreeBSD's layout).  The key, IV and auth-key
 * buffers are read during the call only; uktls keeps its own copies and
 * wipes them when the session ends.  rec_seq is the sequence number of the
 * next record the peer will send, big-endian.
 */
struct tls_enable {
	const uint8_t *cipher_key;
	const uint8_t *iv; /* implicit IV (salt for TLS 1.2 GCM) */
	const uint8_t *auth_key;
	int cipher_algorithm; /* CRYPTO_AES_NIST_GCM_16, ... */
	int cipher_key_len;
	int iv_len;
	int auth_algorithm; /* 0 for AEAD ciphers */
	int auth_key_len;
	int flags; /* must be 0 */
	uint8_t tls_vmajor;
	uint8_t tls_vminor;
	uint8_t rec_seq[8];
};

/*
 * Payload of each record's control message (level IPPROTO_TCP, type
 * TLS_GET_RECORD).  tls_type is the record's real content type (the inner
 * type for TLS 1.3); version is the one on the wire; tls_length is the
 * plaintext length, in network byte order.
 */
struct tls_get_record {
	uint8_t tls_type;
	uint8_t tls_vmajor;
	uint8_t tls_vminor;
	uint16_t tls_length;
};

/*
 * Linux kernel TLS's receive enable (uapi/linux/tls.h), accepted as a second
 * way in so that a Linux kTLS program hands over with a rename:
 *
 *	uktls_setsockopt(fd, SOL_TLS, TLS_RX, &crypto_info, sizeof(crypto_info))
 *
 * with one of the tls12_crypto_info_* structures below; optlen must be that
 * structure's size exactly, as Linux requires.  AES-128-GCM, AES-256-GCM and
 * ChaCha20-Poly1305 on TLS 1.2 and 1.3 are supported; the other ciphers
 * Linux names (CCM, SM4, ARIA) fail with EOPNOTSUPP.  Linux's step before
 * it, uktls_setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", ...), is answered by
 * uktls, not the kernel (which may have no tls module): 0 on a connected TCP
 * socket, ENOTCONN on one that is not, EEXIST once RX is on; it may also be
 * left out.  uktls_getsockopt(TCP_ULP) on an RX socket gives "tls".
 *
 * A socket enabled this way also reads the Linux way (FreeBSD's enable
 * keeps FreeBSD's reads): a read with a control buffer gets the record's
 * content type in a SOL_TLS/TLS_GET_RECORD_TYPE message (one byte); data
 * records are merged into one read while there is room (MSG_WAITALL waits
 * for more); a record of another type is read alone, and a read without
 * room for its type fails with EIO and leaves it queued; MSG_PEEK looks
 * across data records; empty data records are absorbed.  TLS 1.3 rekeying
 * works as on Linux: once the peer's KeyUpdate (a handshake record) has
 * been read, reads fail with EKEYEXPIRED, and the records after it stay
 * encrypted, until TLS_RX is set again with the next key, IV and rec_seq
 * (same version and cipher, else EINVAL; EBUSY on TLS 1.2).  TLS_TX is
 * EOPNOTSUPP (uktls does no transmit).
 * uktls_getsockopt(SOL_TLS, TLS_RX) reads back, as Linux's does, struct
 * tls_crypto_info (version and cipher) into a 4-byte buffer, and into one
 * of exactly the cipher's structure that structure: key, salt and IV as
 * TLS_RX gave them (after a rekey, the new ones) and rec_seq the sequence
 * number of the next record to be decrypted; any other length is EINVAL.
 * TLS_RX_EXPECT_NO_PAD is taken and read back as Linux does (TLS 1.3
 * only, 0 or 1); it changes nothing, since uktls never decrypts into the
 * application's buffer, the case the hint is for.  The checks on the
 * descriptor come first, as the system call's do: EBADF, ENOTSOCK,
 * ENOPROTOOPT for a socket that is not TCP, ENOTCONN for an enable on a
 * listening or unconnected one.
 *
 * Each name is defined only where the system has not already defined it, so
 * <linux/tls.h> or glibc's <sys/socket.h> (SOL_TLS) may come first.
 * Including <linux/tls.h> after this header is not supported.
 */
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* Linux's structures, unless <linux/tls.h> has given them. */
#ifndef _LINUX_TLS_H
struct tls_crypto_info {
	uint16_t version;     /* TLS_1_2_VERSION or TLS_1_3_VERSION */
	uint16_t cipher_type; /* TLS_CIPHER_* */
};

struct tls12_crypto_info_aes_gcm_128 {
	struct tls_crypto_info info;
	unsigned char iv[8]; /* ignored for RX: each record carries its own */
	unsigned char key[16];
	unsigned char salt[4];
	unsigned char rec_seq[8];
};

struct tls12_crypto_info_aes_gcm_256 {
	struct tls_crypto_info info;
	unsigned char iv[8]; /* ignored for RX: each record carries its own */
	unsigned char key[32];
	unsigned char salt[4];
	unsigned char rec_seq[8];
};
#endif

/*
 * ChaCha20-Poly1305 came to <linux/tls.h> later than AES-GCM, so an older
 * header may lack it.  Linux declares a zero-length salt array after the
 * key, a GNU extension; leaving it out gives the same layout in C11.
 */
#if !defined(_LINUX_TLS_H) || !defined(TLS_CIPHER_CHACHA20_POLY1305)
struct tls12_crypto_info_chacha20_poly1305 {
	struct tls_crypto_info info;
	unsigned char iv[12];
	unsigned char key[32];
	unsigned char rec_seq[8];
};
#endif

#ifndef TLS_TX
#define TLS_TX 1 /* transmit parameters: uktls answers EOPNOTSUPP */
#endif
#ifndef TLS_RX
#define TLS_RX 2 /* receive parameters */
#endif
#ifndef TCP_ULP
#define TCP_ULP 31 /* IPPROTO_TCP: "tls" is answered by uktls */
#endif
#ifndef TLS_GET_RECORD_TYPE
#define TLS_GET_RECORD_TYPE 2 /* control message: the content type, 1 byte */
#endif
#ifndef TLS_RX_EXPECT_NO_PAD
#define TLS_RX_EXPECT_NO_PAD 4 /* TLS 1.3 hint, an int 0 or 1 */
#endif
#ifndef TLS_1_2_VERSION
#define TLS_1_2_VERSION 0x0303
#endif
#ifndef TLS_1_3_VERSION
#define TLS_1_3_VERSION 0x0304
#endif

#ifndef TLS_CIPHER_AES_GCM_128
#define TLS_CIPHER_AES_GCM_128 51
#define TLS_CIPHER_AES_GCM_128_IV_SIZE 8
#define TLS_CIPHER_AES_GCM_128_KEY_SIZE 16
#define TLS_CIPHER_AES_GCM_128_SALT_SIZE 4
#define TLS_CIPHER_AES_GCM_128_TAG_SIZE 16
#define TLS_CIPHER_AES_GCM_128_REC_SEQ_SIZE 8
#endif
#ifndef TLS_CIPHER_AES_GCM_256
#define TLS_CIPHER_AES_GCM_256 52
#define TLS_CIPHER_AES_GCM_256_IV_SIZE 8
#define TLS_CIPHER_AES_GCM_256_KEY_SIZE 32
#define TLS_CIPHER_AES_GCM_256_SALT_SIZE 4
#define TLS_CIPHER_AES_GCM_256_TAG_SIZE 16
#define TLS_CIPHER_AES_GCM_256_REC_SEQ_SIZE 8
#endif
#ifndef TLS_CIPHER_AES_CCM_128
#define TLS_CIPHER_AES_CCM_128 53 /* not supported: EOPNOTSUPP */
#endif
#ifndef TLS_CIPHER_CHACHA20_POLY1305
#define TLS_CIPHER_CHACHA20_POLY1305 54
#define TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE 12
#define TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE 32
#define TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE 0
#define TLS_CIPHER_CHACHA20_POLY1305_TAG_SIZE 16
#define TLS_CIPHER_CHACHA20_POLY1305_REC_SEQ_SIZE 8
#endif
/* Not supported by uktls (EOPNOTSUPP), named so that they can be refused. */
#ifndef TLS_CIPHER_SM4_GCM
#define TLS_CIPHER_SM4_GCM 55
#endif
#ifndef TLS_CIPHER_SM4_CCM
#define TLS_CIPHER_SM4_CCM 56
#endif
#ifndef TLS_CIPHER_ARIA_GCM_128
#define TLS_CIPHER_ARIA_GCM_128 57
#endif
#ifndef TLS_CIPHER_ARIA_GCM_256
#define TLS_CIPHER_ARIA_GCM_256 58
#endif

/* optlen is checked against these sizes: they must be Linux's. */
#ifndef __cplusplus
_Static_assert(sizeof(struct tls_crypto_info) == 4,
    "struct tls_crypto_info differs from Linux's");
_Static_assert(sizeof(struct tls12_crypto_info_aes_gcm_128) == 40,
    "struct tls12_crypto_info_aes_gcm_128 differs from Linux's");
_Static_assert(sizeof(struct tls12_crypto_info_aes_gcm_256) == 56,
    "struct tls12_crypto_info_aes_gcm_256 differs from Linux's");
_Static_assert(sizeof(struct tls12_crypto_info_chacha20_poly1305) == 56,
    "struct tls12_crypto_info_chacha20_poly1305 differs from Linux's");
#endif

/*
 * The calls.  Each returns what the system call would, errno on failure.
 * On an RX-enabled socket, set SO_RCVTIMEO through uktls_setsockopt (uktls
 * keeps its own copy); O_NONBLOCK is read from the descriptor when a read
 * would block, as the kernel does.  SO_RCVLOWAT on an RX-enabled socket is
 * uktls's, set and read through uktls_setsockopt/uktls_getsockopt: it counts
 * plaintext, a read of Linux's form waits for that much data (as Linux's
 * does), and the kernel's own is set to 1 at the enable, so that ciphertext
 * is never held back in the kernel (a value set before the enable carries
 * over).
 */
int uktls_setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen);
int uktls_getsockopt(int fd, int level, int optname, void *optval,
    socklen_t *optlen);
ssize_t uktls_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t uktls_recv(int fd, void *buf, size_t len, int flags);
ssize_t uktls_read(int fd, void *buf, size_t len);
int uktls_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int uktls_shutdown(int fd, int how);
int uktls_close(int fd);

/*
 * Enable RX for a hand-off that read past the handshake.  A TLS library may
 * already hold bytes of the peer's stream when the handshake ends: records
 * it decrypted that the application has not read (recs, delivered first, in
 * order, each with its content type) and ciphertext it read ahead (the
 * start of the TLS stream, before anything still in the socket).  Otherwise
 * as TCP_RXTLS_ENABLE; returns 0 or -1 with errno.  The hand-off helpers in
 * <uktls/openssl.h> and <uktls/gnutls.h> call this.
 */
struct uktls_plain_record {
	uint8_t type; /* content type */
	const void *data;
	size_t len;   /* at most 2^14 */
};

int uktls_enable_rx_prefixed(int fd, const struct tls_enable *en,
    const struct uktls_plain_record *recs, size_t nrecs,
    const void *ciphertext, size_t ciphertext_len);

/*
 * The same with flags: UKTLS_RX_LINUX has the socket read the Linux way,
 * as after SOL_TLS/TLS_RX (the record type in a TLS_GET_RECORD_TYPE
 * message, data records merged, and on TLS 1.3 a KeyUpdate stops
 * decryption: reads give EKEYEXPIRED until TLS_RX gives the next key).
 * Other bits: EINVAL.
 */
#define UKTLS_RX_LINUX 0x1

int uktls_enable_rx_prefixed_flags(int fd, const struct tls_enable *en,
    const struct uktls_plain_record *recs, size_t nrecs,
    const void *ciphertext, size_t ciphertext_len, int flags);

/*
 * On a socket that reads the Linux way with TLS 1.3: 1 if the peer's
 * KeyUpdate has stopped decryption and the next key is awaited (with
 * *update_requested, when given, 1 if the peer asked for a KeyUpdate in
 * return: RFC 8446 4.6.3 has the application send one before its next
 * data), 0 if not; -1 with errno EBADF (not open, or inherited across
 * fork), ENOTCONN (RX not enabled) or EINVAL (FreeBSD's form, or TLS 1.2).
 */
int uktls_rx_rekey_pending(int fd, int *update_requested);

/*
 * Zero-copy receive, for in-process consumers (an RPC layer, a proxy): the
 * next whole record is handed over as the decrypted buffers themselves,
 * without a copy.  Blocks, fails and ends like uktls_recvmsg (MSG_DONTWAIT
 * and MSG_WAITALL accepted).  Returns the record's plaintext length with
 * *rec set (an empty record too), 0 with *rec NULL at end of stream, or -1
 * with errno.  *tgr, when given, receives what the control message would
 * hold (all zero but tls_length for the rest of a record a partial read
 * began).  uktls_zc_iov describes the record's buffers (returns how many
 * there are, filling at most iovcnt); the buffers stay valid and readable,
 * and are the caller's alone, until uktls_zc_free(rec), which may be called
 * from any thread, also after uktls_close.  On a descriptor that is not
 * open it fails with EBADF, on one without RX enabled with ENOTCONN.
 */
struct uktls_zc_record;
struct iovec;

ssize_t uktls_recv_zc(int fd, struct uktls_zc_record **rec,
    struct tls_get_record *tgr, int flags);
int uktls_zc_iov(const struct uktls_zc_record *rec, struct iovec *iov,
    int iovcnt);
void uktls_zc_free(struct uktls_zc_record *rec);

/*
 * A descriptor for event loops: it polls readable (POLLIN / EPOLLIN) exactly
 * when uktls_recvmsg() on fd with a control buffer would not block (a
 * decrypted record, an empty one too, an error or end of stream is
 * waiting; a read without a control buffer skips empty records).  It
 * belongs to uktls and stays valid until uktls_close(fd); the caller must
 * not read or close it.  Returns -1 with errno EBADF when fd is not open,
 * ENOTCONN when RX is not enabled on it.
 */
int uktls_event_fd(int fd);

/*
 * Engine settings.  Defaults come from the environment when set
 * (UKTLS_WORKERS, UKTLS_PIN_WORKERS, UKTLS_INPUT_THREADS, UKTLS_RCVBUF,
 * UKTLS_POOL_MAX, UKTLS_STATS, UKTLS_INLINE_DECRYPT, UKTLS_SPIN_US) and
 * otherwise: one worker per CPU of the process's affinity mask, pinned;
 * one input thread per
 * worker; a 256 KiB receive buffer per socket; no cap on pool memory;
 * counters private to the process; a reader blocked with nothing readable
 * decrypts the next record itself rather than wait for a worker (lower
 * latency), and one waiting for a record that another thread is decrypting
 * decrypts the records after it meanwhile (no_inline_decrypt turns both
 * off); a reader waiting for a record that another thread is
 * decrypting spins for up to 20 us before it sleeps, where there is more
 * than one CPU (UKTLS_SPIN_US=0 or no_spin: never; at most 1000 us, EINVAL
 * past it).  An environment value out of range is ignored (the default
 * stays).  uktls_configure() applies settings to the engine and must be
 * called before it starts, at the first enable or uktls_start() (EBUSY
 * afterwards).  Start from uktls_config_defaults(): zero fields keep the
 * default, except pin_workers, where 0 means unpinned.
 */
struct uktls_config {
	unsigned int workers;       /* decryption worker threads */
	int pin_workers;            /* 1 pin to CPUs, 0 leave unpinned, -1 default */
	unsigned int input_threads; /* epoll threads reading sockets */
	size_t rcvbuf;              /* per-socket high-water mark in bytes */
	size_t pool_max;            /* cap on mbuf/cluster pool memory, 0 none */
	int publish_stats;          /* 1: counters readable by other processes */
	int no_inline_decrypt;      /* 1: a waiting reader never decrypts */
	unsigned int spin_us;       /* a reader's spin for a record being
	                               decrypted before it sleeps, 0 default */
	int no_spin;                /* 1: readers sleep at once */
};

void uktls_config_defaults(struct uktls_config *cfg);
int uktls_configure(const struct uktls_config *cfg);
/*
 * Start the engine now rather than at the first enable: its workers and
 * input threads, and, with publish_stats, the counters other processes
 * read (`uktls stat` sees a server from its start, not from its first
 * connection).  The settings are fixed from then on (uktls_configure gives
 * EBUSY).  0 if running (already, or now), or an errno value: ENXIO when
 * its threads could not start.
 */
int uktls_start(void);

/* Engine-wide counters, read with uktls_get_stats(). */
struct uktls_stats {
	uint64_t sockets_enabled; /* RX enables that succeeded, ever */
	uint64_t sockets_active;  /* RX-enabled sockets now open */
	uint64_t records_decrypted;
	uint64_t bytes_decrypted; /* plaintext bytes delivered to sockbufs */
	uint64_t bytes_received;  /* ciphertext bytes read from sockets */
	uint64_t err_bad_tag;     /* EBADMSG: authentication failed */
	uint64_t err_bad_header;  /* EINVAL: version or outer type wrong */
	uint64_t err_bad_length;  /* EMSGSIZE: record length out of range */
	uint64_t err_truncated;   /* EMSGSIZE: EOF in the middle of a record */
	uint64_t err_nomem;       /* ENOBUFS: pool exhausted */
	uint64_t records_cancelled; /* detached records cut while decrypting */
	uint64_t wq_enqueued;     /* sockets put on a work queue */
	uint64_t wq_depth_max;    /* deepest any work queue has been */
	uint64_t pool_mbufs_total; /* mbufs owned by the pool */
	uint64_t pool_mbufs_free;
	uint64_t pool_clusters_total; /* clusters (all sizes) owned by the pool */
	uint64_t pool_clusters_free;
	uint64_t pool_bytes;      /* memory held by the pools */
	uint32_t workers;
	uint32_t input_threads;
	char crypto_backend[32];  /* name of the default backend */
	/*
	 * Records that reached decryption in more than one buffer (a read
	 * ended inside them and their rest went elsewhere); the input threads
	 * lay records out whole where they can, and each cut costs the
	 * cipher a pass over it.
	 */
	uint64_t records_split;
};

/* This process's counters.  0 or EINVAL. */
int uktls_get_stats(struct uktls_stats *st);

/*
 * The counters of another process that publishes them (publish_stats), and
 * the current depth of each of its work queues (wq_depth[0 .. *nwq-1], *nwq
 * in: room, out: count; both may be NULL).  0, or ENOENT (not publishing),
 * ESRCH (gone), EPROTO (another version), EACCES.
 */
int uktls_get_stats_pid(pid_t pid, struct uktls_stats *st, uint64_t *wq_depth,
    unsigned int *nwq);

#ifdef __cplusplus
}
#endif

#endif /* UKTLS_H */
