/*
 * Hand-off from OpenSSL to uktls (see <uktls/openssl.h>), with OpenSSL 3.0's
 * public API only.
 *
 * What must be exact is where the peer's TLS stream stands when uktls takes
 * the socket over: the receive key, the sequence number of the next record
 * and every byte OpenSSL took from the socket without turning it into
 * something the application has read.  A hand-off that gets any of them
 * wrong fails on the first record (EBADMSG, EMSGSIZE or EINVAL), which is
 * the bug users of kernel TLS report most.  prepare() installs three things:
 *
 *  - A read tap: a filter BIO in front of the SSL's read BIO.  It reads
 *    the socket through that BIO, never past the end of the record OpenSSL
 *    is reading (even with SSL_CTX_set_read_ahead(1)), and keeps a copy of
 *    the record in progress.  So OpenSSL never holds a byte of a record it has not
 *    processed except the start of one it is still reading, which the tap
 *    has; SSL_has_pending() and poll() on the socket stay truthful; and the
 *    tap counts the records OpenSSL took whole and sees each record's
 *    outer type (TLS 1.2's ChangeCipherSpec starts the new key at sequence
 *    number 0).
 *  - A keylog callback on the SSL_CTX, chained to the application's own,
 *    which keeps the TLS 1.3 traffic secrets of this SSL.
 *  - An info callback on the SSL, chained to the application's own, which
 *    notices the peer's KeyUpdate messages (each changes the TLS 1.3
 *    receive key and restarts the sequence numbers).
 *
 * No message callback is installed: OpenSSL has no call that returns the
 * application's message callback, so one could not be chained, and the
 * tap makes it unnecessary.  The application keeps whatever message
 * callback it sets, before or after prepare().
 *
 * enable_rx() derives the key and IV (TLS 1.3: HKDF-Expand-Label from the
 * peer's traffic secret; TLS 1.2: the key block from the master secret),
 * takes the sequence number from the tap's counts, peeks at the plaintext
 * OpenSSL decrypted but the application has not read, and hands all of it
 * to uktls_enable_rx_prefixed(); only then does it consume that plaintext
 * and close the tap, so that a failed enable leaves the SSL usable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include "uktls.h"
#include "uktls/openssl.h"
#include "rekey.h"

#define HO_HDR_LEN 5
/* The highest TLS record type (heartbeat, RFC 6520). */
#define HO_RT_HEARTBEAT 24
/* The largest TLS 1.2 ciphertext (RFC 5246 6.2.3) with its header. */
#define HO_MAX_RECORD (HO_HDR_LEN + TLS_MAX_MSG_SIZE_V10_2 + 2048)
#define HO_MAX_SECRET EVP_MAX_MD_SIZE
/* Plaintext taken over at most: OpenSSL 3.0 holds one record's worth. */
#define HO_MAX_PLAIN (4 * TLS_MAX_MSG_SIZE_V10_2)
#define HO_MAX_RECS (HO_MAX_PLAIN / TLS_MAX_MSG_SIZE_V10_2 + 1)

/*
 * OpenSSL's internal control that turns on kernel TLS on a socket BIO
 * (BIO_CTRL_SET_KTLS).  The tap refuses it so that OpenSSL's own kernel-TLS
 * support cannot take the receive side from under uktls; OpenSSL then
 * carries on in software.
 */
#define HO_BIO_CTRL_SET_KTLS 72

/*
 * One SSL's hand-off state.  It is referenced by the SSL (ex_data) and by
 * the tap BIO, which OpenSSL frees after the SSL's ex_data, so it counts
 * its references; ssl is cleared when the SSL goes.  Like the SSL itself it
 * is used by one thread at a time.
 */
struct ho_state {
	atomic_int refs;
	SSL *ssl;
	void (*app_info_cb)(const SSL *, int, int);

	/* The tap: buf[start, wpos) is the record in progress and after. */
	uint8_t *buf;
	size_t start;     /* first byte of the record in progress */
	size_t rpos;      /* next byte to give OpenSSL */
	size_t wpos;      /* end of what was read from the socket */
	size_t rec_left;  /* bytes of the record in progress not given yet */
	uint8_t rec_type; /* its outer content type */
	int rec_lost;     /* it was too long to keep: no exact hand-off */
	int frozen;       /* enable_rx() is looking: read nothing */
	int closed;       /* RX is enabled: the socket is uktls's now */
	int broken;       /* framing lost: not TLS, or cut in a header */

	/* Counts of records OpenSSL took whole. */
	uint64_t nrec;
	uint64_t ccs_mark;    /* nrec after the last ChangeCipherSpec */
	int ccs_seen;
	uint64_t app_mark;    /* TLS 1.3: nrec when the handshake ended */
	int app_marked;
	uint64_t ku_mark;     /* nrec after the peer's last KeyUpdate */
	unsigned int ku_gen;  /* KeyUpdates the peer sent */
	int last_hs_state;

	/* TLS 1.3 traffic secrets from the keylog callback. */
	uint8_t client_secret[HO_MAX_SECRET];
	size_t client_secret_len;
	uint8_t server_secret[HO_MAX_SECRET];
	size_t server_secret_len;

	/*
	 * After an enable with UKTLS_RX_LINUX on TLS 1.3: the peer's current
	 * traffic secret and its suite, from which update_rx() derives the
	 * key after each KeyUpdate.  Wiped with the others.
	 */
	int rx_rekey;
	int ku_owed;          /* the peer asked for a KeyUpdate: not queued */
	uint8_t rx_secret[HO_MAX_SECRET];
	size_t rx_secret_len;
	const EVP_MD *rx_md;
	int rx_alg;
	size_t rx_key_len;
};

/*
 * The application's keylog callback per SSL_CTX on which prepare()
 * installed ours.  A short list: programs have few contexts.  Entries go
 * when the context is freed (the SSL_CTX ex_data free hook is called for
 * every context, with or without data).
 */
struct ho_ctx_entry {
	const SSL_CTX *ctx;
	SSL_CTX_keylog_cb_func app_cb;
	struct ho_ctx_entry *next;
};

static pthread_once_t ho_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t ho_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct ho_ctx_entry *ho_ctxs;
static BIO_METHOD *ho_tap_meth;
static int ho_tap_type;
static int ho_ssl_idx = -1;
static int ho_ctx_idx = -1;

static void ho_keylog_cb(const SSL *ssl, const char *line);
static void ho_info_cb(const SSL *ssl, int where, int ret);
static int ho_ctx_install(SSL_CTX *ctx);

/* ---------------------------------------------------------------------- */
/* State and its references.                                              */

static void
ho_wipe_secrets(struct ho_state *st)
{

	OPENSSL_cleanse(st->client_secret, sizeof(st->client_secret));
	OPENSSL_cleanse(st->server_secret, sizeof(st->server_secret));
	OPENSSL_cleanse(st->rx_secret, sizeof(st->rx_secret));
	st->client_secret_len = st->server_secret_len = 0;
	st->rx_secret_len = 0;
	st->rx_rekey = 0;
}

static void
ho_state_rele(struct ho_state *st)
{

	if (atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	ho_wipe_secrets(st);
	if (st->buf != NULL) {
		/* The tap held records of the peer's stream. */
		OPENSSL_cleanse(st->buf, HO_MAX_RECORD);
		free(st->buf);
	}
	free(st);
}

/* SSL ex_data hooks: the SSL is going, or being copied by SSL_dup(). */
static void
ho_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct ho_state *st = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (st == NULL)
		return;
	st->ssl = NULL;
	ho_wipe_secrets(st);
	ho_state_rele(st);
}

static int
ho_ssl_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d,
    int idx, long argl, void *argp)
{

	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	/* A copy has no tap and no secrets: it must be prepared anew. */
	*from_d = NULL;
	return 1;
}

/* SSL_CTX ex_data hook: forget the context's application callback. */
static void
ho_ctx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct ho_ctx_entry **pp, *e;

	(void)ptr, (void)ad, (void)idx, (void)argl, (void)argp;
	pthread_mutex_lock(&ho_mtx);
	for (pp = &ho_ctxs; (e = *pp) != NULL; pp = &e->next) {
		if (e->ctx == parent) {
			*pp = e->next;
			free(e);
			break;
		}
	}
	pthread_mutex_unlock(&ho_mtx);
}

/* ---------------------------------------------------------------------- */
/* Following the peer's stream.                                           */

/*
 * TLS 1.3: the first time the handshake is seen complete, no record under
 * the peer's application key has been taken yet (the peer's Finished was
 * the last record the handshake read), so that count is where the
 * application key's sequence numbers start.  Called before the tap gives
 * OpenSSL any new byte, from the info callback and from enable_rx().
 */
static void
ho_note_progress(struct ho_state *st)
{

	if (!st->app_marked && st->ssl != NULL &&
	    SSL_is_init_finished(st->ssl)) {
		st->app_mark = st->nrec;
		st->app_marked = 1;
	}
}

/* Move the record in progress to the front of the buffer. */
static void
ho_tap_compact(struct ho_state *st)
{

	if (st->start == 0)
		return;
	memmove(st->buf, st->buf + st->start, st->wpos - st->start);
	st->rpos -= st->start;
	st->wpos -= st->start;
	st->start = 0;
}

/*
 * Read from the socket (the next BIO) only what the record in progress
 * still lacks: the rest of its header, then the rest of its body.  Never
 * past its end, whatever OpenSSL's read-ahead setting, so that what follows
 * stays in the socket for uktls (or for a later SSL_read) and poll() still
 * sees it.  Returns what BIO_read returned.
 */
static int
ho_tap_fill(struct ho_state *st, BIO *next)
{
	size_t avail, need, room;
	int n;

	ho_tap_compact(st);
	avail = st->wpos - st->rpos;
	need = st->rec_left == 0 ? HO_HDR_LEN - avail : st->rec_left - avail;
	room = HO_MAX_RECORD - st->wpos;
	if (room == 0) {
		/*
		 * A record longer than any legal one: OpenSSL will reject it.
		 * Let its start go; a hand-off in the middle of it cannot be
		 * exact.
		 */
		st->rec_lost = 1;
		st->start = st->rpos;
		ho_tap_compact(st);
		room = HO_MAX_RECORD - st->wpos;
	}
	if (need > room)
		need = room;
	n = BIO_read(next, st->buf + st->wpos, (int)need);
	if (n > 0)
		st->wpos += (size_t)n;
	return n;
}

static int
ho_tap_read(BIO *b, char *out, int outl)
{
	struct ho_state *st = BIO_get_data(b);
	BIO *next = BIO_next(b);
	size_t avail, n;
	const uint8_t *h;
	int r;

	BIO_clear_retry_flags(b);
	if (st == NULL || next == NULL || out == NULL || outl <= 0)
		return 0;
	if (st->closed) {
		/* The socket belongs to uktls: OpenSSL sees end of stream. */
		return 0;
	}
	if (st->frozen || st->buf == NULL) {
		BIO_set_retry_read(b);
		return -1;
	}
	ho_note_progress(st);
	if (!st->app_marked && st->ssl != NULL) {
		/*
		 * During the handshake: if the application replaced our keylog
		 * callback (or an SNI callback moved the SSL to another
		 * context), put ours back, chained to the new one, before the
		 * traffic secrets are derived.
		 */
		(void)ho_ctx_install(SSL_get_SSL_CTX(st->ssl));
	}
	for (;;) {
		avail = st->wpos - st->rpos;
		if (st->broken) {
			/* Framing lost: bytes pass through, uncounted. */
			if (avail > 0) {
				n = avail < (size_t)outl ? avail : (size_t)outl;
				memcpy(out, st->buf + st->rpos, n);
				st->rpos += n;
				st->start = st->rpos;
				return (int)n;
			}
			r = BIO_read(next, out, outl);
			BIO_copy_next_retry(b);
			return r;
		}
		if (st->rec_left == 0 && avail >= HO_HDR_LEN) {
			h = st->buf + st->rpos;
			if (h[0] < SSL3_RT_CHANGE_CIPHER_SPEC ||
			    h[0] > HO_RT_HEARTBEAT ||
			    h[1] != SSL3_VERSION_MAJOR) {
				/*
				 * Not a TLS record header (an SSLv2-format
				 * ClientHello, or garbage OpenSSL will
				 * reject): stop framing rather than wait for a
				 * length that means nothing.
				 */
				st->broken = 1;
				continue;
			}
			st->start = st->rpos;
			st->rec_type = h[0];
			st->rec_left = HO_HDR_LEN + ((size_t)h[3] << 8 | h[4]);
			st->rec_lost = 0;
		}
		if (st->rec_left > 0 && avail > 0) {
			n = avail < st->rec_left ? avail : st->rec_left;
			if (n > (size_t)outl)
				n = (size_t)outl;
			memcpy(out, st->buf + st->rpos, n);
			st->rpos += n;
			st->rec_left -= n;
			if (st->rec_left == 0) {
				/* OpenSSL has the whole record: it is taken. */
				st->nrec++;
				if (st->rec_type ==
				    SSL3_RT_CHANGE_CIPHER_SPEC) {
					st->ccs_mark = st->nrec;
					st->ccs_seen = 1;
				}
				st->start = st->rpos;
			}
			return (int)n;
		}
		r = ho_tap_fill(st, next);
		if (r > 0)
			continue;
		BIO_copy_next_retry(b);
		if (r == 0 && avail > 0) {
			/*
			 * End of stream inside a record header: give OpenSSL
			 * the bytes so that it reports the truncation itself.
			 */
			n = avail < (size_t)outl ? avail : (size_t)outl;
			memcpy(out, st->buf + st->rpos, n);
			st->rpos += n;
			st->start = st->rpos;
			st->broken = 1;
			return (int)n;
		}
		return r;
	}
}

static int
ho_tap_write(BIO *b, const char *in, int inl)
{
	BIO *next = BIO_next(b);
	int r;

	BIO_clear_retry_flags(b);
	if (next == NULL)
		return 0;
	r = BIO_write(next, in, inl);
	BIO_copy_next_retry(b);
	return r;
}

static long
ho_tap_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct ho_state *st = BIO_get_data(b);
	BIO *next = BIO_next(b);
	long r;

	switch (cmd) {
	case HO_BIO_CTRL_SET_KTLS:
		return 0;
	case BIO_CTRL_PENDING:
		r = next != NULL ? BIO_ctrl(next, cmd, num, ptr) : 0;
		if (st != NULL && !st->closed && r >= 0)
			r += (long)(st->wpos - st->rpos);
		return r;
	case BIO_CTRL_EOF:
		if (st != NULL && !st->closed && st->wpos > st->rpos)
			return 0;
		break;
	case BIO_CTRL_DUP:
		/* A duplicate would share the copy of the stream. */
		return 0;
	default:
		break;
	}
	if (next == NULL)
		return 0;
	return BIO_ctrl(next, cmd, num, ptr);
}

static long
ho_tap_callback_ctrl(BIO *b, int cmd, BIO_info_cb *fp)
{
	BIO *next = BIO_next(b);

	return next != NULL ? BIO_callback_ctrl(next, cmd, fp) : 0;
}

static int
ho_tap_create(BIO *b)
{

	BIO_set_init(b, 1);
	return 1;
}

static int
ho_tap_destroy(BIO *b)
{
	struct ho_state *st = BIO_get_data(b);

	if (st != NULL) {
		BIO_set_data(b, NULL);
		ho_state_rele(st);
	}
	return 1;
}

/* ---------------------------------------------------------------------- */
/* Callbacks.                                                             */

static int
ho_hexval(int c)
{

	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Keep the secret of a "LABEL <client random> <secret>" line we need. */
static void
ho_keylog_parse(struct ho_state *st, const char *line)
{
	static const char cts[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char sts[] = "SERVER_TRAFFIC_SECRET_0 ";
	uint8_t *dst;
	size_t *dstlen, n = 0;
	const char *p;
	int hi, lo;

	if (strncmp(line, cts, sizeof(cts) - 1) == 0) {
		dst = st->client_secret;
		dstlen = &st->client_secret_len;
	} else if (strncmp(line, sts, sizeof(sts) - 1) == 0) {
		dst = st->server_secret;
		dstlen = &st->server_secret_len;
	} else
		return;
	p = strrchr(line, ' ');
	if (p == NULL)
		return;
	for (p++; p[0] != '\0' && p[1] != '\0' && n < HO_MAX_SECRET; p += 2) {
		hi = ho_hexval((unsigned char)p[0]);
		lo = ho_hexval((unsigned char)p[1]);
		if (hi < 0 || lo < 0)
			break;
		dst[n++] = (uint8_t)(hi << 4 | lo);
	}
	*dstlen = n;
}

/* The application's keylog callback for ctx, or NULL.  ho_mtx held. */
static struct ho_ctx_entry *
ho_ctx_lookup(const SSL_CTX *ctx)
{
	struct ho_ctx_entry *e;

	for (e = ho_ctxs; e != NULL; e = e->next)
		if (e->ctx == ctx)
			return e;
	return NULL;
}

/*
 * Put our keylog callback on ctx, remembering the application's.  Also
 * called during the handshake, because an SNI callback may move the SSL to
 * another context (SSL_set_SSL_CTX).  0 or ENOMEM.
 */
static int
ho_ctx_install(SSL_CTX *ctx)
{
	struct ho_ctx_entry *e;
	SSL_CTX_keylog_cb_func cur;
	int error = 0;

	pthread_mutex_lock(&ho_mtx);
	cur = SSL_CTX_get_keylog_callback(ctx);
	if (cur != ho_keylog_cb) {
		e = ho_ctx_lookup(ctx);
		if (e == NULL) {
			e = calloc(1, sizeof(*e));
			if (e == NULL) {
				error = ENOMEM;
				goto out;
			}
			e->ctx = ctx;
			e->next = ho_ctxs;
			ho_ctxs = e;
		}
		e->app_cb = cur;
		SSL_CTX_set_keylog_callback(ctx, ho_keylog_cb);
	}
out:
	pthread_mutex_unlock(&ho_mtx);
	return error;
}

static void
ho_keylog_cb(const SSL *ssl, const char *line)
{
	struct ho_state *st;
	struct ho_ctx_entry *e;
	SSL_CTX_keylog_cb_func app = NULL;

	st = SSL_get_ex_data(ssl, ho_ssl_idx);
	if (st != NULL && line != NULL)
		ho_keylog_parse(st, line);
	pthread_mutex_lock(&ho_mtx);
	e = ho_ctx_lookup(SSL_get_SSL_CTX(ssl));
	if (e != NULL)
		app = e->app_cb;
	pthread_mutex_unlock(&ho_mtx);
	if (app != NULL && app != ho_keylog_cb)
		app(ssl, line);
}

/*
 * The state machine calls this before each transition, with SSL_get_state()
 * giving the state it leaves.  Leaving TLS_ST_SR_KEY_UPDATE or
 * TLS_ST_CR_KEY_UPDATE means the peer's KeyUpdate was read and processed:
 * OpenSSL's receive key has moved on, after the record that carried it (a
 * KeyUpdate must end its record).
 */
static void
ho_info_cb(const SSL *ssl, int where, int ret)
{
	void (*app)(const SSL *, int, int) = NULL;
	struct ho_state *st;
	int hs;

	st = SSL_get_ex_data(ssl, ho_ssl_idx);
	if (st != NULL) {
		hs = (int)SSL_get_state(ssl);
		if ((hs == TLS_ST_SR_KEY_UPDATE ||
		    hs == TLS_ST_CR_KEY_UPDATE) && hs != st->last_hs_state) {
			st->ku_gen++;
			st->ku_mark = st->nrec;
		}
		st->last_hs_state = hs;
		ho_note_progress(st);
		if ((where & SSL_CB_LOOP) != 0)
			(void)ho_ctx_install(SSL_get_SSL_CTX(ssl));
		app = st->app_info_cb;
	}
	if (app == NULL)
		app = SSL_CTX_get_info_callback(SSL_get_SSL_CTX(ssl));
	if (app != NULL && app != ho_info_cb)
		app(ssl, where, ret);
}

static void
ho_init(void)
{
	BIO_METHOD *m;
	int type;

	ho_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, ho_ssl_dup,
	    ho_ssl_free);
	ho_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
	    ho_ctx_free);
	type = BIO_get_new_index();
	if (type == -1)
		return;
	ho_tap_type = type | BIO_TYPE_FILTER;
	m = BIO_meth_new(ho_tap_type, "uktls read tap");
	if (m == NULL)
		return;
	if (BIO_meth_set_read(m, ho_tap_read) != 1 ||
	    BIO_meth_set_write(m, ho_tap_write) != 1 ||
	    BIO_meth_set_ctrl(m, ho_tap_ctrl) != 1 ||
	    BIO_meth_set_callback_ctrl(m, ho_tap_callback_ctrl) != 1 ||
	    BIO_meth_set_create(m, ho_tap_create) != 1 ||
	    BIO_meth_set_destroy(m, ho_tap_destroy) != 1) {
		BIO_meth_free(m);
		return;
	}
	ho_tap_meth = m;
}

/* Is our tap still in the SSL's read chain? */
static int
ho_tap_present(SSL *ssl)
{
	BIO *b;

	for (b = SSL_get_rbio(ssl); b != NULL; b = BIO_next(b))
		if (BIO_method_type(b) == ho_tap_type)
			return 1;
	return 0;
}

/* Do the BIOs between the tap and the descriptor hold bytes read? */
static int
ho_below_tap_pending(SSL *ssl)
{
	BIO *b;

	for (b = SSL_get_rbio(ssl); b != NULL; b = BIO_next(b))
		if (BIO_method_type(b) == ho_tap_type)
			return BIO_next(b) != NULL &&
			    BIO_ctrl_pending(BIO_next(b)) > 0;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* prepare().                                                             */

int
uktls_openssl_prepare(SSL *ssl)
{
	struct ho_state *st = NULL;
	BIO *rbio, *tap = NULL;
	int error;

	if (ssl == NULL)
		return EINVAL;
	pthread_once(&ho_once, ho_init);
	if (ho_tap_meth == NULL || ho_ssl_idx < 0 || ho_ctx_idx < 0)
		return ENOMEM;
	if (SSL_get_ex_data(ssl, ho_ssl_idx) != NULL)
		return EALREADY;
	/* The counts start at the first record; a started handshake is late. */
	if (!SSL_in_before(ssl) || SSL_is_dtls(ssl))
		return EINVAL;
	rbio = SSL_get_rbio(ssl);
	if (rbio == NULL)
		return EINVAL;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return ENOMEM;
	atomic_init(&st->refs, 1);
	st->ssl = ssl;
	st->last_hs_state = -1;
	st->buf = malloc(HO_MAX_RECORD);
	if (st->buf == NULL) {
		error = ENOMEM;
		goto out;
	}
	error = ho_ctx_install(SSL_get_SSL_CTX(ssl));
	if (error != 0)
		goto out;
	tap = BIO_new(ho_tap_meth);
	if (tap == NULL || !SSL_set_ex_data(ssl, ho_ssl_idx, st)) {
		error = ENOMEM;
		goto out;
	}
	/* From here on the SSL owns one reference, the tap the other. */
	atomic_fetch_add(&st->refs, 1);
	BIO_set_data(tap, st);
	st->app_info_cb = SSL_get_info_callback(ssl);
	SSL_set_info_callback(ssl, ho_info_cb);
	/*
	 * SSL_set0_rbio() drops the SSL's reference to the old read BIO, which
	 * the tap's chain keeps using, hence the extra reference.
	 */
	BIO_up_ref(rbio);
	BIO_push(tap, rbio);
	SSL_set0_rbio(ssl, tap);
	tap = NULL;
	st = NULL;
out:
	BIO_free(tap);
	if (st != NULL)
		ho_state_rele(st);
	return error;
}

/* ---------------------------------------------------------------------- */
/* enable_rx().                                                           */

/* The suite's algorithm, key length and TLS 1.2 implicit IV length. */
static int
ho_suite(const SSL_CIPHER *c, int *alg, size_t *key_len, size_t *iv12_len)
{

	switch (SSL_CIPHER_get_cipher_nid(c)) {
	case NID_aes_128_gcm:
		*alg = CRYPTO_AES_NIST_GCM_16;
		*key_len = 16;
		*iv12_len = TLS_AEAD_GCM_LEN;
		return 0;
	case NID_aes_256_gcm:
		*alg = CRYPTO_AES_NIST_GCM_16;
		*key_len = 32;
		*iv12_len = TLS_AEAD_GCM_LEN;
		return 0;
	case NID_chacha20_poly1305:
		*alg = CRYPTO_CHACHA20_POLY1305;
		*key_len = 32;
		*iv12_len = TLS_CHACHA20_IV_LEN;
		return 0;
	default:
		return ENOTSUP;
	}
}

/*
 * TLS 1.3 HKDF-Expand-Label(secret, label, "", out_len) (RFC 8446 7.1):
 * HKDF-Expand with info = uint16 length || "tls13 " label || empty context.
 * 0 or EIO.
 */
static int
ho_expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
    const char *label, uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[5];
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf = NULL;
	uint8_t info[2 + 1 + 6 + 32 + 1];
	size_t ll = strlen(label), ilen;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, error = EIO;

	if (ll > 32 || out_len > 255)
		return EINVAL;
	info[0] = (uint8_t)(out_len >> 8);
	info[1] = (uint8_t)out_len;
	info[2] = (uint8_t)(6 + ll);
	memcpy(info + 3, "tls13 ", 6);
	memcpy(info + 9, label, ll);
	info[9 + ll] = 0;
	ilen = 10 + ll;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)EVP_MD_get0_name(md), 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)secret, secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    info, ilen);
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		error = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return error;
}

/*
 * TLS 1.2 key block (RFC 5246 6.3): PRF(master_secret, "key expansion",
 * server_random || client_random).  0, EPROTO or EIO.
 */
static int
ho_key_block(SSL *ssl, const EVP_MD *md, uint8_t *kb, size_t kb_len)
{
	static const char label[] = "key expansion";
	OSSL_PARAM params[4];
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf = NULL;
	SSL_SESSION *sess;
	uint8_t ms[SSL_MAX_MASTER_KEY_LENGTH];
	uint8_t seed[sizeof(label) - 1 + 2 * (size_t)SSL3_RANDOM_SIZE];
	size_t ms_len, ll = sizeof(label) - 1;
	int error = EIO;

	sess = SSL_get_session(ssl);
	ms_len = sess != NULL ? SSL_SESSION_get_master_key(sess, ms,
	    sizeof(ms)) : 0;
	if (ms_len == 0) {
		error = EPROTO;
		goto out;
	}
	memcpy(seed, label, ll);
	if (SSL_get_server_random(ssl, seed + ll, SSL3_RANDOM_SIZE) !=
	    SSL3_RANDOM_SIZE ||
	    SSL_get_client_random(ssl, seed + ll + SSL3_RANDOM_SIZE,
	    SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE) {
		error = EPROTO;
		goto out;
	}
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
	    ms, ms_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED,
	    seed, sizeof(seed));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, kb, kb_len, params) == 1)
		error = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(ms, sizeof(ms));
	return error;
}

static void
ho_be64enc(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/*
 * The enable, FreeBSD's form (flags 0) or Linux's (UKTLS_RX_LINUX).  On
 * TLS 1.3 in Linux's form the peer's traffic secret is kept for
 * update_rx(); otherwise every secret is wiped once RX is on.
 */
static int
ho_enable_rx(SSL *ssl, int flags)
{
	static const uint8_t close_notify[2] = { SSL3_AL_WARNING,
	    SSL_AD_CLOSE_NOTIFY };
	struct uktls_plain_record recs[HO_MAX_RECS];
	struct tls_enable en;
	struct ho_state *st;
	const SSL_CIPHER *c;
	const EVP_MD *md;
	const uint8_t *src;
	uint8_t key[32], iv[TLS_1_3_GCM_IV_LEN];
	uint8_t secret[HO_MAX_SECRET], upd[HO_MAX_SECRET];
	uint8_t kb[2 * 32 + 2 * TLS_CHACHA20_IV_LEN];
	uint8_t *plain = NULL;
	size_t key_len, iv12_len, iv_len, secret_len = 0, plen = 0, nrecs = 0;
	size_t off, n;
	uint64_t mark;
	unsigned int g;
	int alg, version, fd, pending = 0, r, error = 0;

	memset(&en, 0, sizeof(en));
	if (ssl == NULL || (flags & ~UKTLS_RX_LINUX) != 0)
		return EINVAL;
	pthread_once(&ho_once, ho_init);
	st = ho_ssl_idx >= 0 ? SSL_get_ex_data(ssl, ho_ssl_idx) : NULL;
	if (st == NULL)
		return EINVAL;
	if (st->closed)
		return EALREADY;
	if (!SSL_is_init_finished(ssl))
		return EINVAL;
	version = SSL_version(ssl);
	c = SSL_get_current_cipher(ssl);
	if (c == NULL)
		return EINVAL;
	if (version != TLS1_2_VERSION && version != TLS1_3_VERSION)
		return ENOTSUP;
	error = ho_suite(c, &alg, &key_len, &iv12_len);
	if (error != 0)
		return error;
	md = SSL_CIPHER_get_handshake_digest(c);
	if (md == NULL)
		return ENOTSUP;
	fd = SSL_get_rfd(ssl);
	if (fd < 0)
		return EBADF;
	/*
	 * Without the tap, or with a record in progress whose start it could
	 * not keep, the stream position is unknown.
	 */
	if (!ho_tap_present(ssl) || st->broken ||
	    (st->rec_left > 0 && st->rec_lost))
		return EPROTO;
	/*
	 * A buffering BIO under the tap (BIO_f_buffer) reads the socket in
	 * blocks: what it holds is past what the tap saw, and the descriptor
	 * would hand uktls the stream from the middle of a record.
	 */
	if (ho_below_tap_pending(ssl))
		return EPROTO;

	ho_note_progress(st);
	if (version == TLS1_3_VERSION) {
		if (!st->app_marked) {
			error = EPROTO;
			goto out;
		}
		mark = st->ku_gen > 0 ? st->ku_mark : st->app_mark;
		/*
		 * With our info callback replaced, a KeyUpdate among the
		 * records read since would have gone unseen.
		 */
		if (SSL_get_info_callback(ssl) != ho_info_cb &&
		    st->nrec > mark) {
			error = EPROTO;
			goto out;
		}
		/* The peer's direction: a server receives with the client's. */
		if (SSL_is_server(ssl)) {
			src = st->client_secret;
			secret_len = st->client_secret_len;
		} else {
			src = st->server_secret;
			secret_len = st->server_secret_len;
		}
		if (secret_len == 0 ||
		    secret_len != (size_t)EVP_MD_get_size(md)) {
			error = ENOKEY;
			goto out;
		}
		memcpy(secret, src, secret_len);
		/*
		 * Each KeyUpdate moved the secret on:
		 * secret_N+1 = Expand-Label(secret_N, "traffic upd", "").
		 */
		for (g = 0; g < st->ku_gen; g++) {
			error = ho_expand_label(md, secret, secret_len,
			    "traffic upd", upd, secret_len);
			if (error != 0)
				goto out;
			memcpy(secret, upd, secret_len);
		}
		error = ho_expand_label(md, secret, secret_len, "key", key,
		    key_len);
		if (error == 0)
			error = ho_expand_label(md, secret, secret_len, "iv",
			    iv, TLS_1_3_GCM_IV_LEN);
		if (error != 0)
			goto out;
		iv_len = TLS_1_3_GCM_IV_LEN;
		en.tls_vminor = TLS_MINOR_VER_THREE;
	} else {
		/* The peer's Finished, after its ChangeCipherSpec, is 0. */
		if (!st->ccs_seen) {
			error = EPROTO;
			goto out;
		}
		mark = st->ccs_mark;
		error = ho_key_block(ssl, md, kb, 2 * key_len + 2 * iv12_len);
		if (error != 0)
			goto out;
		/* Client key, server key, client IV, server IV; no MAC keys. */
		off = SSL_is_server(ssl) ? 0 : key_len;
		memcpy(key, kb + off, key_len);
		off = 2 * key_len + (SSL_is_server(ssl) ? 0 : iv12_len);
		memcpy(iv, kb + off, iv12_len);
		iv_len = iv12_len;
		en.tls_vminor = TLS_MINOR_VER_TWO;
	}
	en.cipher_key = key;
	en.iv = iv;
	en.cipher_algorithm = alg;
	en.cipher_key_len = (int)key_len;
	en.iv_len = (int)iv_len;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	ho_be64enc(en.rec_seq, st->nrec - mark);

	/*
	 * Plaintext OpenSSL decrypted that the application has not read: the
	 * rest of the record SSL_read() was in (OpenSSL 3.0 decrypts one
	 * record at a time).  Peek, so that a failed enable loses nothing; the
	 * tap is frozen meanwhile so that OpenSSL cannot read the socket.
	 */
	st->frozen = 1;
	pending = SSL_pending(ssl);
	if (pending > HO_MAX_PLAIN) {
		error = ENOBUFS;
		goto out;
	}
	if (pending > 0) {
		plain = malloc((size_t)pending);
		if (plain == NULL) {
			error = ENOMEM;
			goto out;
		}
		r = SSL_peek(ssl, plain, pending);
		if (r <= 0) {
			error = EIO;
			goto out;
		}
		plen = (size_t)r;
		for (off = 0; off < plen; off += n) {
			n = plen - off;
			if (n > TLS_MAX_MSG_SIZE_V10_2)
				n = TLS_MAX_MSG_SIZE_V10_2;
			recs[nrecs].type = TLS_RLTYPE_APP;
			recs[nrecs].data = plain + off;
			recs[nrecs].len = n;
			nrecs++;
		}
	}
	/* A close_notify OpenSSL took ends the stream for uktls too. */
	if ((SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0) {
		recs[nrecs].type = TLS_RLTYPE_ALERT;
		recs[nrecs].data = close_notify;
		recs[nrecs].len = sizeof(close_notify);
		nrecs++;
	}
	/* Ciphertext of the record in progress and any bytes after it. */
	if (uktls_enable_rx_prefixed_flags(fd, &en, recs, nrecs,
	    st->buf + st->start, st->wpos - st->start, flags) != 0) {
		error = errno;
		goto out;
	}
	st->closed = 1;
	if (plen > 0)
		(void)SSL_read(ssl, plain, (int)plen);
	ho_wipe_secrets(st);
	if ((flags & UKTLS_RX_LINUX) != 0 && version == TLS1_3_VERSION) {
		memcpy(st->rx_secret, secret, secret_len);
		st->rx_secret_len = secret_len;
		st->rx_md = md;
		st->rx_alg = alg;
		st->rx_key_len = key_len;
		st->rx_rekey = 1;
	}
	OPENSSL_cleanse(st->buf, HO_MAX_RECORD);
	free(st->buf);
	st->buf = NULL;
	st->start = st->rpos = st->wpos = st->rec_left = 0;
out:
	st->frozen = 0;
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(upd, sizeof(upd));
	OPENSSL_cleanse(kb, sizeof(kb));
	OPENSSL_cleanse(&en, sizeof(en));
	if (plain != NULL) {
		OPENSSL_cleanse(plain, (size_t)pending);
		free(plain);
	}
	return error;
}

int
uktls_openssl_enable_rx(SSL *ssl)
{

	return ho_enable_rx(ssl, 0);
}

int
uktls_openssl_enable_rx_flags(SSL *ssl, int flags)
{

	return ho_enable_rx(ssl, flags);
}

/*
 * Send the KeyUpdate the peer asked for (RFC 8446 4.6.3: before our next
 * data).  OpenSSL queues it and writes it before anything else, so it is
 * written at once where the socket takes it, else by the application's
 * next SSL_write().  0 once queued (or nothing is owed: after our
 * close_notify we send nothing, RFC 8446 6.1), EINPROGRESS while OpenSSL
 * has a write the application must retry first (still owed), EIO if
 * OpenSSL failed (its error left on the queue).  The errors OpenSSL
 * queues on the first two paths are taken back off.
 */
static int
ho_answer_keyupdate(SSL *ssl, struct ho_state *st)
{
	int r;

	if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) != 0) {
		st->ku_owed = 0;
		return 0;
	}
	ERR_set_mark();
	/* One already queued, not yet written, will do. */
	if (SSL_get_key_update_type(ssl) == SSL_KEY_UPDATE_NONE &&
	    SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
		(void)ERR_pop_to_mark();
		return EINPROGRESS;
	}
	st->ku_owed = 0;
	r = SSL_do_handshake(ssl);
	if (r != 1 && SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE) {
		(void)ERR_clear_last_mark();
		return EIO;
	}
	(void)ERR_pop_to_mark();
	return 0;
}

/*
 * The peer's KeyUpdate stopped decryption: move the kept secret on
 * (secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.len)),
 * derive its key and IV, and give them to uktls as Linux's TLS_RX rekey
 * (the sequence numbers restart at 0); the secret moves on only once uktls
 * has the key.  The receive side never waits for the sending side: where
 * the peer asked for a KeyUpdate back, it is owed from then on and sent
 * after the key is given (ho_answer_keyupdate), or by a later call.
 */
int
uktls_openssl_update_rx(SSL *ssl)
{
	union ho_tls13_info ci;
	struct ho_state *st;
	uint8_t next[HO_MAX_SECRET], key[32], iv[TLS_1_3_GCM_IV_LEN];
	socklen_t cilen;
	int fd, pending, requested = 0, error = 0;

	memset(&ci, 0, sizeof(ci));
	if (ssl == NULL)
		return EINVAL;
	pthread_once(&ho_once, ho_init);
	st = ho_ssl_idx >= 0 ? SSL_get_ex_data(ssl, ho_ssl_idx) : NULL;
	if (st == NULL || !st->closed || !st->rx_rekey)
		return EINVAL;
	fd = SSL_get_rfd(ssl);
	if (fd < 0)
		return EBADF;
	pending = uktls_rx_rekey_pending(fd, &requested);
	if (pending < 0)
		return errno;
	if (pending == 0)
		return st->ku_owed ? ho_answer_keyupdate(ssl, st) : EAGAIN;
	error = ho_expand_label(st->rx_md, st->rx_secret, st->rx_secret_len,
	    "traffic upd", next, st->rx_secret_len);
	if (error == 0)
		error = ho_expand_label(st->rx_md, next, st->rx_secret_len,
		    "key", key, st->rx_key_len);
	if (error == 0)
		error = ho_expand_label(st->rx_md, next, st->rx_secret_len,
		    "iv", iv, sizeof(iv));
	if (error != 0)
		goto out;
	cilen = ho_tls13_info(&ci, st->rx_alg == CRYPTO_CHACHA20_POLY1305, key,
	    st->rx_key_len, iv, NULL);
	if (cilen == 0) {
		error = EPROTO;
		goto out;
	}
	if (uktls_setsockopt(fd, SOL_TLS, TLS_RX, &ci, cilen) != 0) {
		error = errno;
		goto out;
	}
	memcpy(st->rx_secret, next, st->rx_secret_len);
	if (requested)
		st->ku_owed = 1;
	if (st->ku_owed)
		error = ho_answer_keyupdate(ssl, st);
out:
	OPENSSL_cleanse(&ci, sizeof(ci));
	OPENSSL_cleanse(next, sizeof(next));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	return error;
}
