/*
 * tlsgen: a TLS record generator and socket helpers for the uktls tests.
 *
 * The generator encrypts records with OpenSSL's EVP interface directly and
 * shares no code with the engine's crypto, so that a test compares uktls
 * against an independent implementation of the record protection:
 *
 *  TLS 1.2 AES-GCM:  header(5) | explicit nonce(8) | ciphertext | tag(16).
 *                    The explicit nonce is the sequence number, big-endian,
 *                    as OpenSSL sends it; nonce = salt(4) || explicit nonce;
 *                    AAD = seqno(8) | type | 3 | 3 | plaintext length(2).
 *  TLS 1.2 ChaCha20: header(5) | ciphertext | tag(16); nonce = iv(12) XOR
 *                    be64(seqno) in the last 8 bytes; AAD as above.
 *  TLS 1.3:          header(5) with outer type 23 and version 3.3 |
 *                    encrypt(payload || real type || pad zeros) | tag(16);
 *                    nonce = iv XOR be64(seqno); AAD = the 5-byte header.
 *
 * The sequence number is a uint64_t and wraps from 2^64 - 1 to 0 like any
 * unsigned counter.  TLS forbids the wrap (a peer must rekey first), so the
 * tests never send a record after the one numbered 2^64 - 1.
 *
 * Corrupt records are made by generating a good one and editing its bytes;
 * the TG_OFF_* helpers below give the offsets of the interesting fields.
 *
 * Functions that report through harness_fail() (tg_conn_*, TG_EXPECT_*) must
 * be called from the test's own thread only; the rest are thread-safe on
 * distinct objects.
 */
#ifndef UKTLS_TEST_TLSGEN_H
#define UKTLS_TEST_TLSGEN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "uktls.h"

/* Sanitizer builds run slower: tests scale their sizes down with these. */
#if defined(__SANITIZE_THREAD__)
#define TG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TG_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_ASAN 1
#endif
#endif
#ifndef TG_TSAN
#define TG_TSAN 0
#endif
#ifndef TG_ASAN
#define TG_ASAN 0
#endif
#define TG_SANITIZED (TG_TSAN || TG_ASAN)
/* Divide sizes by this: 1 in normal builds, more under sanitizers. */
#define TG_SCALE_DIV (TG_TSAN ? 4 : TG_ASAN ? 2 : 1)
/* Multiply timeouts by this. */
#define TG_TIME_MUL (TG_TSAN ? 4 : TG_ASAN ? 2 : 1)

#define TG_HDR_LEN 5
#define TG_TAG_LEN 16
#define TG_EXPLICIT_NONCE_LEN 8
#define TG_MAX_PLAINTEXT 16384
#define TG_MAX_PAD 256
/* A buffer that holds any record the generator makes. */
#define TG_MAX_RECORD (TG_HDR_LEN + TG_EXPLICIT_NONCE_LEN + TG_MAX_PLAINTEXT + \
    1 + TG_MAX_PAD + TG_TAG_LEN)

/* One AEAD suite: a TLS version and a cipher with its key size. */
struct tg_suite {
	const char *name;     /* "tls12_aes128_gcm", ... */
	int cipher_algorithm; /* CRYPTO_AES_NIST_GCM_16 or _CHACHA20_POLY1305 */
	int key_len;          /* 16 or 32 */
	uint8_t tls_vminor;   /* TLS_MINOR_VER_TWO or TLS_MINOR_VER_THREE */
};

/*
 * The six suites, TLS 1.2 first: indices 0-1 are TLS 1.2 AES-GCM (explicit
 * nonce), 2 is TLS 1.2 ChaCha20-Poly1305, 3-5 are TLS 1.3.
 */
#define TG_NSUITES 6
#define TG_FIRST_TLS12_GCM 0
#define TG_NTLS12_GCM 2
#define TG_FIRST_TLS13 3
#define TG_NTLS13 3
extern const struct tg_suite tg_suites[TG_NSUITES];

/* For harness_register_param(): the suite's name. */
const char *tg_suite_name(const void *suite);

/* Register fn once per suite in tg_suites[first .. first + n - 1]. */
void tg_register_suites(const char *name, void (*fn)(void *), int first,
    int n);

struct tlsgen {
	const struct tg_suite *suite;
	uint8_t key[32];
	uint8_t iv[12];  /* the salt (4 bytes) for TLS 1.2 GCM */
	int iv_len;
	uint64_t seqno;  /* of the next record */
	uint64_t seqno0; /* at init, for tlsgen_enable() */
	void *ctx;       /* EVP_CIPHER_CTX */
};

/* A random key and IV, starting at seqno.  Returns 0, or -1. */
int tlsgen_init(struct tlsgen *g, const struct tg_suite *s, uint64_t seqno);
void tlsgen_free(struct tlsgen *g);

/*
 * Fill *en for the receiver with the generator's parameters and the
 * sequence number it started at.  en points into g.
 */
void tlsgen_enable(const struct tlsgen *g, struct tls_enable *en);

int tlsgen_is_tls13(const struct tlsgen *g);
/* Bytes before the ciphertext: 13 for TLS 1.2 GCM, 5 otherwise. */
size_t tlsgen_hlen(const struct tlsgen *g);
/* The smallest legal value of the header's length field. */
size_t tlsgen_min_length_field(const struct tlsgen *g);
/* Length of the whole record (header included) for len payload bytes. */
size_t tlsgen_record_len(const struct tlsgen *g, size_t len, size_t pad);

/*
 * Encrypt one record of content type type holding len bytes of payload
 * (pad zero bytes of TLS 1.3 padding, ignored for 1.2) into out, and advance
 * the sequence number.  Returns the record's length, or -1 if it does not
 * fit in outsize or the crypto failed.
 */
ssize_t tlsgen_encrypt(struct tlsgen *g, uint8_t type, const void *payload,
    size_t len, size_t pad, void *out, size_t outsize);

/* Offsets in a record made by tlsgen_encrypt(). */
#define TG_OFF_TYPE 0
#define TG_OFF_VMAJOR 1
#define TG_OFF_VMINOR 2
#define TG_OFF_LENGTH 3
#define TG_OFF_EXPLICIT_NONCE 5 /* TLS 1.2 GCM only */
/* First ciphertext byte: tlsgen_hlen(g).  First tag byte: reclen - 16. */
void tg_set_length_field(void *record, unsigned int len);

/* Randomness.  tg_random() is OpenSSL's RAND_bytes; tg_rng is repeatable. */
void tg_random(void *buf, size_t len);
uint64_t tg_random64(void);
struct tg_rng {
	uint64_t s;
};
uint64_t tg_rng_next(struct tg_rng *r);
/* A value in [0, n). */
uint64_t tg_rng_below(struct tg_rng *r, uint64_t n);
void tg_rng_fill(struct tg_rng *r, void *buf, size_t len);

/* Sockets. */
/* A connected loopback TCP pair, both blocking, TCP_NODELAY on *tx. */
int tg_tcp_pair(int *rx, int *tx);
/* Write all of buf (send with MSG_NOSIGNAL).  Returns len or -1. */
ssize_t tg_write_all(int fd, const void *buf, size_t len);
void tg_sleep_ms(unsigned int ms);
double tg_now(void);

/*
 * Poll fd with uktls_poll() until it is readable (or has an error or EOF)
 * or ms milliseconds pass.  Returns 1 readable, 0 timeout, -1 error.
 */
int tg_wait_readable(int fd, int ms);
/* The default for tg_wait_readable in the TG_EXPECT_* helpers. */
#define TG_WAIT_MS (10000 * TG_TIME_MUL)

/*
 * A watchdog: if not re-armed within seconds, print the running test's name
 * and exit the program, so that a hang is reported instead of stalling CI.
 * tg_tcp_pair() re-arms it with TG_WATCHDOG_S.
 */
void tg_watchdog(unsigned int seconds);
#define TG_WATCHDOG_S (60 * TG_TIME_MUL)

/* One uktls_recvmsg() with a TLS_GET_RECORD-sized control buffer. */
struct tg_rec {
	ssize_t n;        /* the return value */
	int err;          /* errno when n == -1 */
	int flags;        /* msg_flags */
	size_t controllen;/* msg_controllen on return */
	int ncmsg;        /* control messages found */
	int cmsg_ok;      /* the first is IPPROTO_TCP/TLS_GET_RECORD, full len */
	struct tls_get_record tgr;
	int lx_type;      /* or SOL_TLS/TLS_GET_RECORD_TYPE (Linux's form):
			     its content type byte; -1 if not */
};
/*
 * controlspace: the control buffer's size, or (size_t)-1 for
 * CMSG_SPACE(sizeof(struct tls_get_record)); 0 passes no control buffer.
 */
ssize_t tg_recv(int fd, void *buf, size_t len, int flags, size_t controlspace,
    struct tg_rec *r);
#define TG_CTL_DEFAULT ((size_t)-1)

/*
 * Receive one record with a buffer larger than it and check it like
 * FreeBSD's ktls_test: MSG_EOR set, MSG_CTRUNC clear, one control message of
 * level IPPROTO_TCP, type TLS_GET_RECORD and length
 * CMSG_LEN(sizeof(struct tls_get_record)), the type, version 3.3, the
 * length, and the payload.  Waits for readability first (TG_WAIT_MS).
 * Returns 0 or -1 after reporting the failure.
 */
int tg_expect_record(const char *file, int line, int fd, uint8_t type,
    const void *payload, size_t len);
#define TG_EXPECT_RECORD(fd, type, p, len)                                  \
	tg_expect_record(__FILE__, __LINE__, (fd), (type), (p), (len))
/* A receive must fail with errno err. */
int tg_expect_error(const char *file, int line, int fd, int err);
#define TG_EXPECT_ERROR(fd, err)                                            \
	tg_expect_error(__FILE__, __LINE__, (fd), (err))
/* A receive must return 0 (end of stream) without a control message. */
int tg_expect_eof(const char *file, int line, int fd);
#define TG_EXPECT_EOF(fd) tg_expect_eof(__FILE__, __LINE__, (fd))

/* A connection: the application's socket with RX and its raw peer. */
struct tg_conn {
	int rx; /* the application's socket, given to uktls */
	int tx; /* the peer: writes raw records */
	struct tlsgen g;
	struct tls_enable en;
	int enabled;
};
/*
 * Make a pair and a generator at seqno (tg_conn_open: a random seqno
 * well below 2^64 - 2^32), and enable RX when enable is set.  Returns 0, or -1 after
 * reporting the failure.
 */
int tg_conn_open(struct tg_conn *c, const struct tg_suite *s, int enable);
int tg_conn_open_seq(struct tg_conn *c, const struct tg_suite *s,
    uint64_t seqno, int enable);
/* Enable RX with the parameters the generator started with. */
int tg_conn_enable(struct tg_conn *c);
void tg_conn_close(struct tg_conn *c);
/* Encrypt one record and write it to the peer side.  0 or -1. */
int tg_conn_send(struct tg_conn *c, uint8_t type, const void *p, size_t len,
    size_t pad);
/* Encrypt one record into buf (TG_MAX_RECORD bytes); its length or -1. */
ssize_t tg_conn_make(struct tg_conn *c, uint8_t type, const void *p,
    size_t len, size_t pad, void *buf);

/* Write len bytes of buf to fd after ms milliseconds, on a thread. */
struct tg_delayed_write {
	int fd;
	const void *buf;
	size_t len;
	unsigned int ms;
	ssize_t result;
	pthread_t thread;
	int started;
};
int tg_delayed_write_start(struct tg_delayed_write *dw, int fd,
    const void *buf, size_t len, unsigned int ms);
/* Join the thread; returns what tg_write_all returned, or -1. */
ssize_t tg_delayed_write_join(struct tg_delayed_write *dw);

#endif /* UKTLS_TEST_TLSGEN_H */
