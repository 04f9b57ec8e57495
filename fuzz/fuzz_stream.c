/*
 * The byte stream of one socket through the real receive path: loopback
 * TCP, the input thread, the TLS chain with the invariant checker on, the
 * workers, decryption and uktls_recvmsg.
 *
 * Each input describes a stream: the suite and first sequence number, then
 * a list of operations that append raw bytes, valid records built here
 * (with the fuzzer's payload, type, padding, a split point and an optional
 * mutation of header, ciphertext, tag, length or sequence number, or a
 * payload that is one KeyUpdate-typed handshake message), bare
 * headers, bursts of small records, and cut points where the writer stops
 * and pauses, yields or reads.  The session uses a fixed key so that records
 * in the corpus stay valid.
 *
 * The expected outcome is computed by a reference receiver that works on
 * the whole stream laid out flat with OpenSSL EVP (fuzz_common.h): records
 * in order, one-shot errors (EBADMSG, EMSGSIZE) where a record fails, and
 * the end (0 at a clean end; EMSGSIZE for a partial record; EINVAL or
 * EMSGSIZE at a bad header, after which nothing more is read).
 *
 * The stream is written in the chunks the cuts give, with the writer's
 * socket non-blocking so that a full buffer makes the reader run, then
 * SHUT_WR; the reader then reads to the end with buffer sizes, iovec
 * counts, control-buffer sizes and flags (MSG_PEEK, MSG_DONTWAIT,
 * MSG_WAITALL) drawn from a generator seeded by the input.  Every result is
 * checked against the expected events:
 *
 *  - each record's bytes come back in order, exactly once, with MSG_EOR on
 *    its last piece, its control message (or MSG_CTRUNC) on its first, and
 *    a read returns exactly min(buffer, rest of record);
 *  - an error comes back at the record boundary where it happened, each
 *    one (uktls keeps every failed record's error in its place); only
 *    when more than SO_ERRQ_MAX + 1 wait at once does the stream end at
 *    the last of them, with its error, sticky;
 *  - the end is the expected one and stays (a second read agrees), and
 *    never a clean 0 while a partial record was sent;
 *  - a read that uktls_poll said would not block does not return EAGAIN;
 *  - no blocking read takes longer than a few seconds (SO_RCVTIMEO).
 *
 * Some inputs close the socket, or shut its receive side, part-way through,
 * to reach the paths that cancel queued and in-flight records; after
 * SHUT_RD every read must report the end at once.
 *
 * Some inputs enable with Linux's SOL_TLS/TLS_RX instead, and the reads
 * are then checked against Linux's rules: the type in a
 * SOL_TLS/TLS_GET_RECORD_TYPE message on every read with room for it, data
 * records merged (a read returns a run of consecutive data records' bytes,
 * at least the rest of the first record or all the buffer takes, all the
 * buffer with MSG_WAITALL, MSG_PEEK or not, unless the run ends), a record
 * of another type
 * alone and only with room for its type (EIO, the record kept, without),
 * empty data records absorbed, a record that fails (tag or length) the
 * end of the stream with its error; on TLS 1.3 the reference follows the
 * handshake messages, and after a KeyUpdate every read must give
 * EKEYEXPIRED (the records after it wait for a key that never comes).
 *
 * The engine's threads and the listening socket persist across inputs; each
 * input gets a fresh connection, closed with a reset so that no TIME_WAIT
 * state piles up.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "socket.h"

/* The stream is kept under the engine's 256 KiB buffer and the kernel's. */
#define FS_MAX_STREAM (160 * 1024)
#define FS_MAX_EVENTS (FS_MAX_STREAM / 5 + 16)
#define FS_MAX_CUTS 512
#define FS_MAX_PREFIX_RECS 3
#define MJUM16 16384
#define FS_BUF (MJUM16 + 1024)
/* More pool memory than a few streams need means buffers leak. */
#define FS_POOL_LIMIT (64u << 20)
/* Seconds a blocking read or a stalled writer may take: a hang beyond. */
#define FS_HANG_S 10

/* Cut actions: what the writer does after writing up to a cut. */
enum { CUT_NONE, CUT_YIELD, CUT_SLEEP, CUT_DRAIN, CUT_SHUTRD, CUT_CLOSE,
	CUT_NACTIONS };

struct cut {
	uint32_t at;
	int action;
};

enum { EV_REC, EV_ERR };

struct event {
	int kind;
	int err;          /* EV_ERR */
	unsigned int ord; /* EV_ERR: 1 for the stream's first error, ... */
	uint8_t type;     /* EV_REC */
	uint32_t off;     /* EV_REC: plaintext in fs_plain */
	uint32_t len;
};

/* The input, decoded. */
static uint8_t fs_stream[FS_MAX_STREAM + FZ_MAX_RECORD + 64];
static uint32_t fs_len;
static struct cut fs_cuts[FS_MAX_CUTS + 1];
static int fs_ncuts;
static struct uktls_plain_record fs_prefix[FS_MAX_PREFIX_RECS];
static uint8_t fs_prefix_data[FS_MAX_PREFIX_RECS][256];
static size_t fs_nprefix;
static int fs_prefixed;
static int fs_linux; /* enabled with Linux's TLS_RX: Linux's reads */

/* What the reference receiver expects. */
static struct event fs_ev[FS_MAX_EVENTS];
static size_t fs_nev;
static int fs_term;        /* 0: clean end; else the sticky errno */
static unsigned int fs_nerr; /* EV_ERR events so far */
static uint8_t fs_plain[FS_MAX_STREAM + 1024];
static uint32_t fs_plain_len;

static EVP_CIPHER_CTX *fs_enc, *fs_dec;
static int fs_listen = -1;
static struct sockaddr_in fs_addr;
static uint8_t fs_rec[FZ_MAX_RECORD + 64];
static uint8_t fs_payload[MJUM16 + 256];

/*
 * Other programs on the machine (a test suite with thousands of short
 * connections) may hold every ephemeral port for a while in TIME_WAIT:
 * wait for one rather than report a bug that is not there.
 */
static int
fs_retry_bind(int fd)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (bind(fd, (struct sockaddr *)&fs_addr, sizeof(fs_addr)) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -1;
		usleep(100000);
	}
	return -1;
}

static void
fs_init(void)
{
	socklen_t sl = sizeof(fs_addr);

	if (fs_enc != NULL)
		return;
	signal(SIGPIPE, SIG_IGN);
	fs_enc = EVP_CIPHER_CTX_new();
	fs_dec = EVP_CIPHER_CTX_new();
	fs_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&fs_addr, 0, sizeof(fs_addr));
	fs_addr.sin_family = AF_INET;
	fs_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fs_enc == NULL || fs_dec == NULL || fs_listen < 0 ||
	    fs_retry_bind(fs_listen) != 0 || listen(fs_listen, 16) != 0 ||
	    getsockname(fs_listen, (struct sockaddr *)&fs_addr, &sl) != 0) {
		perror("fuzz_stream: setup");
		abort();
	}
}

/* ---- building the stream --------------------------------------------- */

static void
add_cut(uint32_t at, int action)
{
	if (fs_ncuts >= FS_MAX_CUTS)
		return;
	if (fs_ncuts > 0 && fs_cuts[fs_ncuts - 1].at > at)
		at = fs_cuts[fs_ncuts - 1].at;
	fs_cuts[fs_ncuts].at = at;
	fs_cuts[fs_ncuts].action = action;
	fs_ncuts++;
}

static void
append(const uint8_t *p, size_t n)
{
	if (n > FS_MAX_STREAM + FZ_MAX_RECORD - fs_len)
		n = FS_MAX_STREAM + FZ_MAX_RECORD - fs_len;
	memcpy(fs_stream + fs_len, p, n);
	fs_len += (uint32_t)n;
}

/* Payload of len bytes in one of four shapes the input picks. */
static void
make_payload(struct fz_in *in, struct fz_rng *rng, size_t len)
{
	const uint8_t *src;
	size_t got, z;

	switch (fz_u8(in) % 4) {
	case 0:
		fz_rng_fill(rng, fs_payload, len);
		break;
	case 1:
		memset(fs_payload, 0, len);
		break;
	case 2:
		src = fz_bytes(in, len, &got);
		memcpy(fs_payload, src, got);
		memset(fs_payload + got, 0, len - got);
		break;
	default:
		/* Trailing zeros: TLS 1.3 then has to look past them. */
		fz_rng_fill(rng, fs_payload, len);
		z = fz_u8(in) % (len + 1);
		memset(fs_payload + len - z, 0, z);
		break;
	}
}

static size_t
pick_len(struct fz_in *in)
{
	uint8_t s = fz_u8(in);

	if (s < 200)
		return s;
	if (s < 250)
		return fz_u16(in) % (MJUM16 + 1);
	return MJUM16 - (s - 250);
}

/* One record, valid unless mutated. */
static void
op_record(struct fz_in *in, struct fz_rng *rng, const struct fz_suite *s,
    uint64_t *seq, uint32_t *last_off, uint32_t *last_len)
{
	uint8_t type, p, mut, split;
	size_t len, pad = 0, reclen;
	uint64_t rseq = *seq;
	uint32_t start = fs_len, k;

	type = fz_u8(in);
	len = pick_len(in);
	p = fz_u8(in);
	if (fz_tls13(s) && p >= 128)
		pad = p == 255 ? 255 : p - 128u;
	make_payload(in, rng, len);
	mut = fz_u8(in) % 16;
	if (mut == 7 && len >= 4) {
		/*
		 * A handshake message filling the payload, with a KeyUpdate's
		 * type: in a TLS 1.3 handshake record read the Linux way, the
		 * reference and uktls must both stop there.
		 */
		fs_payload[0] = 24;
		fs_payload[1] = (uint8_t)((len - 4) >> 16);
		fs_payload[2] = (uint8_t)((len - 4) >> 8);
		fs_payload[3] = (uint8_t)(len - 4);
	}
	split = fz_u8(in);
	if (mut == 14)
		rseq += 1 + fz_u8(in);
	if (mut == 15 && *last_len > 0) {
		/* A replay of the previous record: wrong sequence number. */
		memcpy(fs_rec, fs_stream + *last_off, *last_len);
		reclen = *last_len;
	} else
		reclen = fz_seal(fs_enc, s, rseq, type, fs_payload, len, pad,
		    fs_rec);
	(*seq)++;
	switch (mut) {
	case 8:
		fs_rec[reclen - FZ_TAG + fz_u8(in) % FZ_TAG] ^=
		    (uint8_t)(1u << (fz_u8(in) % 8));
		break;
	case 9:
		k = FZ_HDR + fz_u16(in) % (uint32_t)(reclen - FZ_HDR);
		fs_rec[k] ^= (uint8_t)(1u << (fz_u8(in) % 8));
		break;
	case 10:
		k = fz_u16(in);
		fs_rec[3] = (uint8_t)(k >> 8);
		fs_rec[4] = (uint8_t)k;
		break;
	case 11:
		fs_rec[1] = fz_u8(in);
		fs_rec[2] = fz_u8(in);
		break;
	case 12:
		fs_rec[0] = fz_u8(in);
		break;
	case 13:
		reclen -= 1 + fz_u16(in) % reclen;
		break;
	default:
		break;
	}
	*last_off = start;
	*last_len = (uint32_t)reclen;
	append(fs_rec, reclen);
	if (split != 0 && reclen > 1)
		add_cut(start + 1 + (uint32_t)(split * (reclen - 1) / 256),
		    split % CUT_DRAIN);
}

static void
build_stream(struct fz_in *in, struct fz_rng *rng, const struct fz_suite *s,
    uint64_t seq)
{
	uint32_t last_off = 0, last_len = 0;
	uint8_t op, hdr[5];
	const uint8_t *b;
	size_t got, n, i;
	uint16_t l;

	fs_len = 0;
	fs_ncuts = 0;
	while (in->n > 0 && fs_len < FS_MAX_STREAM) {
		op = fz_u8(in) % 11;
		switch (op) {
		case 0:
		case 1:
			n = fz_u8(in);
			b = fz_bytes(in, n == 0 ? 1 : n, &got);
			append(b, got);
			break;
		case 6:
		case 7:
			add_cut(fs_len, fz_u8(in) % CUT_NACTIONS);
			break;
		case 8:
			/* A bare header: its record is made of what follows. */
			hdr[0] = fz_u8(in);
			hdr[1] = TLS_MAJOR_VER_ONE;
			hdr[2] = TLS_MINOR_VER_TWO;
			l = fz_u16(in);
			hdr[3] = (uint8_t)(l >> 8);
			hdr[4] = (uint8_t)l;
			append(hdr, sizeof(hdr));
			break;
		case 9:
			/* A burst of small valid records. */
			n = fz_u8(in) % 32 + 1;
			for (i = 0; i < n && fs_len < FS_MAX_STREAM; i++) {
				size_t len = fz_rng_below(rng, 300);

				fz_rng_fill(rng, fs_payload, len);
				append(fs_rec, fz_seal(fs_enc, s, seq++,
				    (uint8_t)(TLS_RLTYPE_CHANGE_CIPHER_SPEC +
				    fz_rng_below(rng, 4)), fs_payload, len,
				    fz_rng_below(rng, 3) == 0 ?
				    fz_rng_below(rng, 40) : 0, fs_rec));
			}
			break;
		default:
			op_record(in, rng, s, &seq, &last_off, &last_len);
			break;
		}
	}
	if (fs_len > FS_MAX_STREAM)
		fs_len = FS_MAX_STREAM;
	for (i = 0; i < (size_t)fs_ncuts; i++)
		if (fs_cuts[i].at > fs_len)
			fs_cuts[i].at = fs_len;
	add_cut(fs_len, CUT_NONE);
}

/* ---- the reference receiver ------------------------------------------ */

static void
ev_add(int kind, int err, uint8_t type, const uint8_t *pt, uint32_t len)
{
	struct event *e;

	FZ_ASSERT(fs_nev < FS_MAX_EVENTS, "too many events");
	e = &fs_ev[fs_nev++];
	e->kind = kind;
	e->err = err;
	e->type = type;
	e->off = fs_plain_len;
	e->len = len;
	e->ord = 0;
	if (kind == EV_REC) {
		memcpy(fs_plain + fs_plain_len, pt, len);
		fs_plain_len += len;
	}
	if (kind == EV_ERR)
		e->ord = ++fs_nerr;
}

/*
 * The handshake message stream of TLS 1.3 records, in order: does this
 * record hold the end of a KeyUpdate message?  Written from RFC 8446 4
 * (type, 24-bit length), independently of the engine's parser.
 */
static uint8_t ref_hs[4];
static uint32_t ref_hs_have, ref_hs_body;
static int ref_hs_ku;
/* The KeyUpdate's request_update byte (its first body byte), and whether
 * the one that stopped the stream asked for a KeyUpdate back. */
static int ref_hs_req_due, ref_hs_req, ref_ku_requested;

static int
ref_keyupdate(const uint8_t *p, uint32_t len)
{
	uint32_t i;
	int ku = 0;

	for (i = 0; i < len; i++) {
		if (ref_hs_body > 0) {
			if (ref_hs_req_due) {
				ref_hs_req = p[i];
				ref_hs_req_due = 0;
			}
			ref_hs_body--;
		} else {
			ref_hs[ref_hs_have++] = p[i];
			if (ref_hs_have < 4)
				continue;
			ref_hs_have = 0;
			ref_hs_ku = ref_hs[0] == 24;
			ref_hs_req_due = ref_hs_ku;
			ref_hs_req = 0;
			ref_hs_body = (uint32_t)ref_hs[1] << 16 |
			    (uint32_t)ref_hs[2] << 8 | ref_hs[3];
		}
		if (ref_hs_body == 0 && ref_hs_ku) {
			ref_hs_ku = 0;
			ref_hs_req_due = 0;
			ref_ku_requested = ref_hs_req == 1;
			ku = 1;
		}
	}
	return ku;
}

/* Expected events for fs_stream[from .. fs_len). */
static void
reference(const struct fz_suite *s, uint64_t seq, uint32_t from)
{
	static uint8_t pt[FZ_MAX_RECORD];
	uint32_t pos = from, rem, reclen, ptlen, clen;
	uint8_t type;
	size_t i;
	int error;

	fs_nev = 0;
	fs_plain_len = 0;
	fs_nerr = 0;
	ref_hs_have = ref_hs_body = 0;
	ref_hs_ku = ref_hs_req_due = ref_hs_req = ref_ku_requested = 0;
	for (i = 0; i < fs_nprefix; i++)
		ev_add(EV_REC, 0, fs_prefix[i].type, fs_prefix[i].data,
		    (uint32_t)fs_prefix[i].len);
	for (;;) {
		rem = fs_len - pos;
		if (rem == 0) {
			fs_term = 0;
			break;
		}
		if (rem < FZ_HDR) {
			fs_term = EMSGSIZE;
			break;
		}
		error = fs_linux ? fz_ref_header_linux(s, fs_stream + pos,
		    &reclen) : fz_ref_header(s, fs_stream + pos, &reclen);
		if (error != 0) {
			fs_term = error;
			break;
		}
		if (rem < reclen) {
			fs_term = EMSGSIZE;
			break;
		}
		error = fz_ref_min_len(s, reclen);
		if (error == 0)
			error = fz_open(fs_dec, s, seq, fs_stream + pos, reclen,
			    pt, &ptlen);
		seq++;
		if (error == 0) {
			type = fs_stream[pos];
			clen = ptlen;
			if (fz_tls13(s))
				error = fz_ref_inner_type(pt, ptlen, &type,
				    &clen);
		}
		if (error != 0 && fs_linux && (error == EBADMSG ||
		    error == EMSGSIZE)) {
			/*
			 * Linux's form: a failed record ends the stream with
			 * its error, a TLS 1.3 one of the tag alone as
			 * Linux's EBADMSG.
			 */
			if (fz_tls13(s) && reclen == FZ_HDR + FZ_TAG)
				error = EBADMSG;
			fs_term = error;
			break;
		}
		if (error == 0)
			ev_add(EV_REC, 0, type, pt, clen);
		else
			ev_add(EV_ERR, error, 0, NULL, 0);
		pos += reclen;
		if (error == 0 && fs_linux && fz_tls13(s) &&
		    type == TLS_RLTYPE_HANDSHAKE && ref_keyupdate(pt, clen)) {
			/* Nothing after it is decrypted: no key comes. */
			fs_term = EKEYEXPIRED;
			break;
		}
	}
}

/* ---- the reader and its oracle --------------------------------------- */

struct reader {
	int fd;
	size_t i;        /* next expected event */
	uint32_t off;    /* bytes of fs_ev[i] consumed */
	int ctl_gone;    /* fs_ev[i]'s control message is consumed */
	int done;        /* the end was seen */
	int end_err;     /* what it was */
	int shut;        /* uktls_shutdown(SHUT_RD) was called */
	int readable;    /* uktls_poll said a read would not block */
	struct fz_rng rng;
	uint64_t nreads;
};

union ctlbuf {
	struct cmsghdr align;
	uint8_t b[128];
};

struct rop {
	int api;          /* 0 recvmsg, 1 recv, 2 read, 3 recv_zc */
	int flags;
	int niov;
	size_t iov[3];
	size_t total;
	int ctl;          /* a control buffer is passed */
	size_t ctlspace;
};

static uint8_t rd_buf[FS_BUF];
static const char *fs_suite_name;
/* What the last zero-copy read returned besides its length. */
static struct tls_get_record rd_zc_tgr;
static int rd_zc_null;
/* The read being checked, for the report. */
static struct rop rd_last;

static void
rd_fail(const struct reader *r, const char *what, ssize_t n, int err,
    int flags)
{
	size_t j;

	fprintf(stderr, "fuzz_stream: %s\n  suite %s, stream %u bytes, %zu "
	    "events, end %d, prefixed %d\n  reader at event %zu offset %u "
	    "ctl_gone %d after %llu reads; got n %zd errno %d flags %#x\n",
	    what, fs_suite_name, fs_len, fs_nev, fs_term, fs_prefixed, r->i,
	    r->off, r->ctl_gone, (unsigned long long)r->nreads, n, err, flags);
	fprintf(stderr, "  read: %s flags %#x, %d iovecs of %zu bytes, "
	    "control %s of %zu\n", rd_last.api == 0 ? "recvmsg" :
	    rd_last.api == 1 ? "recv" : rd_last.api == 2 ? "read" : "recv_zc",
	    rd_last.flags, rd_last.niov,
	    rd_last.total, rd_last.ctl ? "buffer" : "none", rd_last.ctlspace);
	for (j = r->i > 3 ? r->i - 3 : 0; j < fs_nev && j < r->i + 4; j++)
		fprintf(stderr, "  event %zu: %s %d type %u len %u\n", j,
		    fs_ev[j].kind == EV_REC ? "record" : "error",
		    fs_ev[j].err, fs_ev[j].type, fs_ev[j].len);
	abort();
}

/*
 * The index of the next event a read at the reader's position may report,
 * stepping over, for a reader without a control buffer, empty records
 * (uktls drops those).  No error is ever stepped over: each failed record
 * keeps its own error in its place.
 */
static size_t
rd_next(const struct reader *r, int want_ctl)
{
	size_t j = r->i;

	if (r->off > 0 || r->ctl_gone)
		return j;
	while (j < fs_nev) {
		if (fs_ev[j].kind == EV_ERR || fs_ev[j].len > 0 ||
		    (fs_linux ? fs_ev[j].type != TLS_RLTYPE_APP : want_ctl))
			return j;
		j++;
	}
	return j;
}

/* Does a read of Linux's form have room for the record type? */
static int
rd_lx_room(const struct rop *op)
{
	return op->api == 0 && op->ctl && op->ctlspace >= CMSG_LEN(1);
}

/* The SOL_TLS/TLS_GET_RECORD_TYPE message of a read of Linux's form. */
static void
rd_lx_check_ctl(const struct reader *r, const struct rop *op,
    const struct msghdr *msg, uint8_t type, ssize_t n)
{
	struct cmsghdr *cm;

	if (op->api != 0)
		return;
	if (!op->ctl) {
		if (msg->msg_controllen != 0 ||
		    (msg->msg_flags & MSG_CTRUNC) != 0)
			rd_fail(r, "control without a control buffer", n, 0,
			    msg->msg_flags);
		return;
	}
	if (!rd_lx_room(op)) {
		if ((msg->msg_flags & MSG_CTRUNC) == 0 ||
		    msg->msg_controllen != 0)
			rd_fail(r, "small control buffer: no MSG_CTRUNC", n, 0,
			    msg->msg_flags);
		return;
	}
	cm = CMSG_FIRSTHDR(msg);
	if ((msg->msg_flags & MSG_CTRUNC) != 0 || msg->msg_controllen !=
	    (op->ctlspace < CMSG_SPACE(1) ? op->ctlspace : CMSG_SPACE(1)) ||
	    cm == NULL || cm->cmsg_level != SOL_TLS ||
	    cm->cmsg_type != TLS_GET_RECORD_TYPE ||
	    cm->cmsg_len != CMSG_LEN(1) || *CMSG_DATA(cm) != type)
		rd_fail(r, "TLS_GET_RECORD_TYPE wrong", n,
		    (int)msg->msg_controllen, msg->msg_flags);
}

/*
 * A read of Linux's form that returned n >= 0 bytes of record data from
 * event j on (not the end): check it, and move the reader past it.
 */
static void
rd_lx_data(struct reader *r, const struct rop *op, const struct msghdr *msg,
    size_t j, ssize_t n)
{
	const struct event *e = &fs_ev[j];
	uint32_t o = j == r->i ? r->off : 0, rest = e->len - o, take;
	size_t k = j, left = (size_t)n, got = 0;
	int peek = (op->flags & MSG_PEEK) != 0, eor;

	eor = op->api == 0 ? (msg->msg_flags & MSG_EOR) != 0 : -1;
	if (op->api == 0 && (msg->msg_flags & ~(MSG_EOR | MSG_CTRUNC)) != 0)
		rd_fail(r, "stray flags", n, 0, msg->msg_flags);
	if (e->type != TLS_RLTYPE_APP && !rd_lx_room(op))
		rd_fail(r, "a record not data read without room for its type",
		    n, e->type, 0);
	rd_lx_check_ctl(r, op, msg, e->type, n);
	if ((size_t)n > op->total || (size_t)n < (op->total < rest ?
	    op->total : rest))
		rd_fail(r, "short or long read", n, (int)rest, (int)op->total);
	if (e->type != TLS_RLTYPE_APP && (size_t)n != (op->total < rest ?
	    op->total : rest))
		rd_fail(r, "a record not data merged", n, (int)rest, 0);
	/* A run of data records, from event j at o. */
	while (left > 0) {
		if (k >= fs_nev || fs_ev[k].kind != EV_REC ||
		    (k != j && fs_ev[k].type != TLS_RLTYPE_APP))
			rd_fail(r, "read past a run of data records", n,
			    (int)k, 0);
		take = fs_ev[k].len - o;
		if (take > left)
			take = (uint32_t)left;
		if (memcmp(rd_buf + got, fs_plain + fs_ev[k].off + o, take))
			rd_fail(r, "record bytes differ", n, (int)k, 0);
		got += take;
		left -= take;
		o += take;
		if (o == fs_ev[k].len) {
			k++;
			o = 0;
			/* Empty data records on the way are absorbed. */
			while (left > 0 && k < fs_nev &&
			    fs_ev[k].kind == EV_REC && fs_ev[k].len == 0 &&
			    fs_ev[k].type == TLS_RLTYPE_APP)
				k++;
		}
	}
	if (n == 0 && rest == 0) {
		/* An empty record of another type, read whole. */
		k = j + 1;
		o = 0;
	}
	if (eor >= 0 && eor != (o == 0 && (n > 0 || rest == 0)))
		rd_fail(r, "MSG_EOR wrong", n, (int)o, msg->msg_flags);
	if ((op->flags & (MSG_WAITALL | MSG_DONTWAIT)) == MSG_WAITALL &&
	    (size_t)n < op->total && e->type == TLS_RLTYPE_APP) {
		/* Short only where the run of data ends. */
		size_t m = k;

		while (m < fs_nev && fs_ev[m].kind == EV_REC &&
		    fs_ev[m].len == 0 && fs_ev[m].type == TLS_RLTYPE_APP)
			m++;
		if (o != 0 || (m < fs_nev && fs_ev[m].kind == EV_REC &&
		    fs_ev[m].type == TLS_RLTYPE_APP))
			rd_fail(r, "MSG_WAITALL returned short", n, (int)m,
			    (int)op->total);
	}
	if (peek) {
		/* Empty records before it were dropped all the same. */
		if (j != r->i) {
			r->i = j;
			r->off = 0;
			r->ctl_gone = 0;
		}
		return;
	}
	r->i = k;
	r->off = o;
	/* A record read in part has lost its control mbuf to that read. */
	r->ctl_gone = o != 0 || (n == 0 && rest > 0);
}

static void
rd_choose(struct reader *r, struct rop *op, int nonblock)
{
	static const int flagset[] = { 0, 0, 0, MSG_PEEK, MSG_WAITALL,
		MSG_PEEK | MSG_WAITALL };
	static const size_t ctlsizes[] = { 0, 8, 16,
		CMSG_LEN(sizeof(struct tls_get_record)),
		CMSG_SPACE(sizeof(struct tls_get_record)),
		CMSG_SPACE(sizeof(struct tls_get_record)),
		CMSG_SPACE(sizeof(struct tls_get_record)), 64 };
	static const size_t lxsizes[] = { 8, CMSG_LEN(1) - 1, CMSG_LEN(1),
		CMSG_SPACE(1), CMSG_SPACE(1), 64 };
	size_t cap, k;
	int i, small;

	memset(op, 0, sizeof(*op));
	/*
	 * A reader without a control buffer makes uktls drop the empty
	 * records at the head even when the read then finds nothing and
	 * returns EAGAIN, so that whether they were there cannot be told:
	 * non-blocking reads always pass a control buffer.
	 */
	op->api = !nonblock && fz_rng_below(&r->rng, 8) == 0 ?
	    1 + (int)fz_rng_below(&r->rng, 2) : 0;
	/* Zero-copy reads take whole records and, like a control buffer,
	 * see empty ones: they may be non-blocking. */
	if (fz_rng_below(&r->rng, 8) == 0)
		op->api = 3;
	op->flags = flagset[fz_rng_below(&r->rng, 6)];
	if (nonblock)
		op->flags |= MSG_DONTWAIT;
	if (op->api == 2)
		op->flags = 0;
	if (op->api == 3)
		op->flags &= MSG_DONTWAIT | MSG_WAITALL;
	op->ctl = op->api == 0 && (nonblock ||
	    fz_rng_below(&r->rng, 6) != 0);
	if (op->ctl)
		op->ctlspace = fs_linux ? lxsizes[fz_rng_below(&r->rng, 6)] :
		    ctlsizes[fz_rng_below(&r->rng, 8)];
	op->niov = op->api == 0 ? 1 + (int)fz_rng_below(&r->rng, 3) : 1;
	small = (int)fz_rng_below(&r->rng, 4);
	for (i = 0, cap = FS_BUF; i < op->niov; i++) {
		if (small == 0)
			k = fz_rng_below(&r->rng, 8);
		else if (small == 1)
			k = fz_rng_below(&r->rng, 200);
		else
			k = fz_rng_below(&r->rng, MJUM16 + 512);
		if (k > cap)
			k = cap;
		op->iov[i] = k;
		cap -= k;
		op->total += k;
	}
	/*
	 * A read into no buffer at all returns 0 for a record's data, which
	 * without a control message to show for it looks like the end: only
	 * do it when the control message will tell the two apart.
	 */
	if (op->total == 0 && (!op->ctl || r->ctl_gone || r->off > 0)) {
		op->iov[0] = 1;
		op->total = 1;
	}
}

static ssize_t
rd_call(struct reader *r, const struct rop *op, struct msghdr *msg,
    union ctlbuf *ctl, int *err)
{
	struct iovec iov[3];
	size_t off = 0;
	ssize_t n;
	int i;

	for (i = 0; i < op->niov; i++) {
		iov[i].iov_base = rd_buf + off;
		iov[i].iov_len = op->iov[i];
		off += op->iov[i];
	}
	memset(rd_buf, 0xcc, op->total < 64 ? 64 : op->total);
	memset(ctl, 0x5a, sizeof(*ctl));
	memset(msg, 0, sizeof(*msg));
	msg->msg_iov = iov;
	msg->msg_iovlen = (size_t)op->niov;
	if (op->ctl) {
		msg->msg_control = ctl->b;
		msg->msg_controllen = op->ctlspace;
	}
	errno = 0;
	if (op->api == 3) {
		struct uktls_zc_record *zr = NULL;
		struct iovec zv[64];
		int k, nv;

		memset(&rd_zc_tgr, 0xa5, sizeof(rd_zc_tgr));
		n = uktls_recv_zc(r->fd, &zr, &rd_zc_tgr, op->flags);
		*err = n < 0 ? errno : 0;
		r->nreads++;
		rd_zc_null = zr == NULL;
		if (n >= 0 && zr != NULL) {
			/* Gather the record's own buffers. */
			nv = uktls_zc_iov(zr, zv, 64);
			FZ_ASSERT(nv >= 0 && nv <= 64, "%d zero-copy buffers",
			    nv);
			for (k = 0, off = 0; k < nv; k++) {
				FZ_ASSERT(off + zv[k].iov_len <= FS_BUF,
				    "zero-copy record too long");
				memcpy(rd_buf + off, zv[k].iov_base,
				    zv[k].iov_len);
				off += zv[k].iov_len;
			}
			FZ_ASSERT(off == (size_t)n, "zero-copy buffers hold %zu "
			    "bytes, returned %zd", off, n);
			uktls_zc_free(zr);
		}
		msg->msg_flags = -1;
		msg->msg_controllen = 0;
		return n;
	}
	if (op->api == 1)
		n = uktls_recv(r->fd, rd_buf, op->total, op->flags);
	else if (op->api == 2)
		n = uktls_read(r->fd, rd_buf, op->total);
	else
		n = uktls_recvmsg(r->fd, msg, op->flags);
	*err = n < 0 ? errno : 0;
	r->nreads++;
	/* recv and read report no flags or control. */
	if (op->api != 0) {
		msg->msg_flags = -1;
		msg->msg_controllen = 0;
	}
	return n;
}

/* Check the control message a record's first piece carries. */
static void
rd_check_ctl(const struct reader *r, const struct rop *op,
    const struct msghdr *msg, const struct event *e, ssize_t n, int expect)
{
	const size_t need = CMSG_LEN(sizeof(struct tls_get_record));
	const size_t space = CMSG_SPACE(sizeof(struct tls_get_record));
	struct tls_get_record tgr;
	struct cmsghdr *cm;

	if (op->api != 0)
		return;
	if (!expect) {
		if (msg->msg_controllen != 0 ||
		    (msg->msg_flags & MSG_CTRUNC) != 0)
			rd_fail(r, "control message on a record's later piece",
			    n, 0, msg->msg_flags);
		return;
	}
	if (op->ctlspace < need) {
		if ((msg->msg_flags & MSG_CTRUNC) == 0 ||
		    msg->msg_controllen != 0)
			rd_fail(r, "small control buffer: no MSG_CTRUNC", n, 0,
			    msg->msg_flags);
		return;
	}
	if ((msg->msg_flags & MSG_CTRUNC) != 0 ||
	    msg->msg_controllen != (op->ctlspace >= space ? space : need))
		rd_fail(r, "control length wrong", n, (int)msg->msg_controllen,
		    msg->msg_flags);
	cm = CMSG_FIRSTHDR(msg);
	if (cm == NULL || cm->cmsg_level != IPPROTO_TCP ||
	    cm->cmsg_type != TLS_GET_RECORD || cm->cmsg_len != need)
		rd_fail(r, "control message not TLS_GET_RECORD", n, 0,
		    msg->msg_flags);
	memcpy(&tgr, CMSG_DATA(cm), sizeof(tgr));
	if (tgr.tls_type != e->type || tgr.tls_vmajor != TLS_MAJOR_VER_ONE ||
	    tgr.tls_vminor != TLS_MINOR_VER_TWO ||
	    ntohs(tgr.tls_length) != e->len)
		rd_fail(r, "TLS_GET_RECORD fields wrong", n, tgr.tls_type,
		    ntohs(tgr.tls_length));
}

/*
 * Could err be the sticky error of a stream that more failed records
 * ended than a socket keeps in their places (so_error and SO_ERRQ_MAX
 * behind it), possible from the (SO_ERRQ_MAX + 2)th error on?
 */
static int
rd_overflow_err(int err)
{
	size_t j;

	for (j = 0; j < fs_nev; j++)
		if (fs_ev[j].kind == EV_ERR && fs_ev[j].err == err &&
		    fs_ev[j].ord >= SO_ERRQ_MAX + 2)
			return 1;
	return 0;
}

/*
 * One read, checked.  Returns 1 when it returned something, 0 on EAGAIN
 * (non-blocking only).
 */
static int
rd_step(struct reader *r, int nonblock)
{
	union ctlbuf ctl;
	struct msghdr msg;
	struct rop op;
	const struct event *e;
	ssize_t n;
	uint32_t rest;
	size_t j;
	int err, want_ctl, peek, ctl_expected, eor, req = -1;

	rd_choose(r, &op, nonblock);
	rd_last = op;
	n = rd_call(r, &op, &msg, &ctl, &err);
	want_ctl = op.ctl || op.api == 3;
	peek = (op.flags & MSG_PEEK) != 0;
	if (r->shut) {
		/* After SHUT_RD: the end at once, or the sticky error (the
		 * stream's, or that of failed records beyond what a socket
		 * keeps in their places, which ended it before). */
		if (n == 0 || (n < 0 && ((fs_term != 0 && err == fs_term) ||
		    rd_overflow_err(err))))
			return 1;
		rd_fail(r, "read after SHUT_RD", n, err, msg.msg_flags);
	}
	if (n < 0 && err == EAGAIN) {
		if (!nonblock)
			rd_fail(r, "blocking read timed out (hang)", n, err, 0);
		/* Linux's form absorbs the empty data records that made the
		 * socket readable. */
		if (r->readable && want_ctl && !fs_linux)
			rd_fail(r, "EAGAIN after uktls_poll said readable", n,
			    err, 0);
		return 0;
	}
	r->readable = 0;
	if (r->done) {
		/* The end is sticky. */
		if ((r->end_err == 0 && n == 0 && (op.api != 0 ||
		    msg.msg_flags == 0)) || (n < 0 && err == r->end_err))
			return 1;
		rd_fail(r, "end not sticky", n, err, msg.msg_flags);
	}
	if (n < 0) {
		j = rd_next(r, want_ctl);
		if (fs_linux && err == EIO && op.api != 3) {
			/* A record not data, without room for its type. */
			if (j >= fs_nev || fs_ev[j].kind != EV_REC ||
			    fs_ev[j].type == TLS_RLTYPE_APP || rd_lx_room(&op))
				rd_fail(r, "EIO where a read was due", n, err,
				    0);
			if (j != r->i) {
				r->i = j;
				r->off = 0;
				r->ctl_gone = 0;
			}
			return 1;
		}
		if (r->off > 0 || r->ctl_gone)
			rd_fail(r, "error inside a record", n, err, 0);
		/*
		 * What was stepped over is gone even under MSG_PEEK: empty
		 * records uktls dropped.
		 */
		if (j < fs_nev && fs_ev[j].kind == EV_ERR &&
		    fs_ev[j].err == err) {
			r->i = peek ? j : j + 1;
			return 1;
		}
		/*
		 * More failed records than a socket keeps in their places
		 * (so_error and SO_ERRQ_MAX behind it) were waiting at once:
		 * the stream ended at the last of them, with its error, for
		 * good.  Possible from the (SO_ERRQ_MAX + 2)th error on.
		 */
		if (r->i > 0 && fs_ev[r->i - 1].kind == EV_ERR &&
		    fs_ev[r->i - 1].err == err &&
		    fs_ev[r->i - 1].ord >= SO_ERRQ_MAX + 2) {
			if (!peek) {
				r->done = 1;
				r->end_err = err;
			}
			return 1;
		}
		if (j == fs_nev && fs_term == err) {
			/* The KeyUpdate waits for its key, with its request. */
			if (err == EKEYEXPIRED && (uktls_rx_rekey_pending(r->fd,
			    &req) != 1 || req != ref_ku_requested))
				rd_fail(r, "uktls_rx_rekey_pending disagrees", n,
				    req, 0);
			r->i = j;
			if (!peek) {
				r->done = 1;
				r->end_err = err;
			}
			return 1;
		}
		rd_fail(r, "unexpected error", n, err, 0);
	}
	eor = op.api == 0 ? (msg.msg_flags & MSG_EOR) != 0 : -1;
	if (n == 0 && ((op.api != 0 && op.api != 3) || (op.api == 3 &&
	    rd_zc_null) || (op.api == 0 && msg.msg_flags == 0 &&
	    msg.msg_controllen == 0))) {
		/* The end, unless a record's empty piece (api != 0). */
		j = rd_next(r, want_ctl);
		if (j == fs_nev && r->off == 0 && !r->ctl_gone) {
			if (fs_term != 0)
				rd_fail(r, "clean end where an error was due",
				    n, 0, 0);
			r->i = j;
			if (!peek) {
				r->done = 1;
				r->end_err = 0;
			}
			return 1;
		}
		rd_fail(r, "0 returned before the end", n, 0,
		    op.api == 0 ? msg.msg_flags : 0);
	}
	/* Record data. */
	j = rd_next(r, want_ctl);
	if (j >= fs_nev || fs_ev[j].kind != EV_REC)
		rd_fail(r, "record data where none was due", n, 0,
		    op.api == 0 ? msg.msg_flags : 0);
	if (fs_linux && op.api != 3) {
		rd_lx_data(r, &op, &msg, j, n);
		return 1;
	}
	e = &fs_ev[j];
	rest = e->len - (j == r->i ? r->off : 0);
	if (op.api == 3)
		op.total = rest; /* a zero-copy read takes the whole rest */
	if ((size_t)n != (op.total < rest ? op.total : rest))
		rd_fail(r, "short or long read", n, (int)rest, (int)op.total);
	if (memcmp(rd_buf, fs_plain + e->off + (e->len - rest), (size_t)n))
		rd_fail(r, "record bytes differ", n, 0, 0);
	if (eor >= 0 && eor != ((size_t)n == rest))
		rd_fail(r, "MSG_EOR wrong", n, 0, msg.msg_flags);
	if (op.api == 0 && (msg.msg_flags & ~(MSG_EOR | MSG_CTRUNC)) != 0)
		rd_fail(r, "stray flags", n, 0, msg.msg_flags);
	ctl_expected = want_ctl && (j != r->i || (r->off == 0 &&
	    !r->ctl_gone));
	if (op.api == 3) {
		/* The control message's contents, or for the rest of a record
		 * a partial read began, zeros but the length. */
		if (ctl_expected ? (rd_zc_tgr.tls_type != e->type ||
		    rd_zc_tgr.tls_vmajor != TLS_MAJOR_VER_ONE ||
		    rd_zc_tgr.tls_vminor != TLS_MINOR_VER_TWO ||
		    ntohs(rd_zc_tgr.tls_length) != e->len) :
		    (rd_zc_tgr.tls_type != 0 || rd_zc_tgr.tls_vmajor != 0 ||
		    rd_zc_tgr.tls_vminor != 0 ||
		    ntohs(rd_zc_tgr.tls_length) != rest))
			rd_fail(r, "zero-copy tls_get_record wrong", n,
			    rd_zc_tgr.tls_type, ntohs(rd_zc_tgr.tls_length));
	} else
		rd_check_ctl(r, &op, &msg, e, n, ctl_expected);
	/*
	 * Under MSG_PEEK nothing is consumed, except the empty records a
	 * reader without a control buffer steps over: uktls drops them
	 * before it peeks.
	 */
	if (j != r->i) {
		r->i = j;
		r->off = 0;
		r->ctl_gone = 0;
	}
	if (peek)
		return 1;
	if ((size_t)n == rest) {
		r->i = j + 1;
		r->off = 0;
		r->ctl_gone = 0;
	} else {
		r->off += (uint32_t)n;
		r->ctl_gone = 1;
	}
	return 1;
}

/* Wait with uktls_poll until a read would not block. */
static void
rd_wait(struct reader *r)
{
	struct pollfd pfd;
	int k;

	/* Waiting for a key that never comes: Linux's form polls nothing. */
	if (fs_term == EKEYEXPIRED && rd_next(r, 1) >= fs_nev && r->off == 0) {
		r->readable = 0;
		return;
	}
	pfd.fd = r->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	k = uktls_poll(&pfd, 1, FS_HANG_S * 1000);
	if (k == 0)
		rd_fail(r, "uktls_poll: not readable in time (hang)", 0, 0, 0);
	if (k < 0)
		rd_fail(r, "uktls_poll failed", k, errno, 0);
	r->readable = (pfd.revents & POLLIN) != 0;
}

/* Read whatever is ready without blocking, a bounded number of times. */
static void
rd_drain(struct reader *r, int max)
{
	while (max-- > 0 && !r->done)
		if (rd_step(r, 1) == 0)
			break;
}

/* ---- one input ------------------------------------------------------- */

/*
 * A connect that a signal interrupted (libFuzzer's timer) goes on in the
 * kernel: wait until it is done and take its result.  0 or -1 with errno.
 */
static int
fs_connect_finish(int c)
{
	struct pollfd pfd = { .fd = c, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0, k;

	while ((k = poll(&pfd, 1, FS_HANG_S * 1000)) < 0 && errno == EINTR)
		;
	if (k != 1)
		return -1;
	if (getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

static int
fs_connect(int *rx, int *tx)
{
	struct linger lg = { 1, 0 };
	struct timeval tv = { FS_HANG_S, 0 };
	int c, a, k, one = 1;

	for (k = 0;; k++) {
		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0)
			return -1;
		if (connect(c, (struct sockaddr *)&fs_addr,
		    sizeof(fs_addr)) == 0 || (errno == EINTR &&
		    fs_connect_finish(c) == 0))
			break;
		close(c);
		/* No ephemeral port free just now (see fs_retry_bind). */
		if (errno != EADDRNOTAVAIL || k >= 300)
			return -1;
		usleep(100000);
	}
	a = accept4(fs_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (a < 0) {
		close(c);
		return -1;
	}
	/* A reset at close: no TIME_WAIT left behind per input. */
	(void)setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	(void)setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	(void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*rx = c;
	*tx = a;
	return 0;
}

/* Write fs_stream[from .. to) to tx, letting the reader run when full. */
static int
fs_write(struct reader *r, int tx, uint32_t from, uint32_t to)
{
	struct pollfd pfd;
	ssize_t n;
	int stalled = 0;

	/* After SHUT_RD or the end nothing more is read: stop. */
	while (from < to && !r->done && !r->shut) {
		n = send(tx, fs_stream + from, to - from,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			from += (uint32_t)n;
			stalled = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		/* Full: the reader must make room. */
		rd_drain(r, 64);
		pfd.fd = tx;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 10) == 0 && ++stalled > FS_HANG_S * 100)
			rd_fail(r, "writer stalled (hang)", 0, 0, 0);
	}
	return 0;
}

/* Linux's TLS_RX for suite s at seq, with the fixed key and IV. */
static int
fs_enable_linux(int fd, const struct fz_suite *s, uint64_t seq)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} u;
	unsigned char *rec_seq;
	socklen_t len;
	int i;

	memset(&u, 0, sizeof(u));
	/* The info header sits first in each structure. */
	u.g128.info.version = fz_tls13(s) ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	if (s->cipher == CRYPTO_CHACHA20_POLY1305) {
		u.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(u.cc.iv, fz_iv, 12);
		memcpy(u.cc.key, fz_key, 32);
		rec_seq = u.cc.rec_seq;
		len = sizeof(u.cc);
	} else if (s->key_len == 16) {
		u.g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(u.g128.salt, fz_iv, 4);
		memcpy(u.g128.iv, fz_iv + 4, 8);
		memcpy(u.g128.key, fz_key, 16);
		rec_seq = u.g128.rec_seq;
		len = sizeof(u.g128);
	} else {
		u.g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(u.g256.salt, fz_iv, 4);
		memcpy(u.g256.iv, fz_iv + 4, 8);
		memcpy(u.g256.key, fz_key, 32);
		rec_seq = u.g256.rec_seq;
		len = sizeof(u.g256);
	}
	for (i = 0; i < 8; i++)
		rec_seq[i] = (unsigned char)(seq >> (56 - 8 * i));
	return uktls_setsockopt(fd, SOL_TLS, TLS_RX, &u, len);
}

static void
fs_prefix_parse(struct fz_in *in, struct fz_rng *rng)
{
	size_t i, len;

	fs_nprefix = fz_u8(in) % (FS_MAX_PREFIX_RECS + 1);
	for (i = 0; i < fs_nprefix; i++) {
		len = fz_u8(in);
		fz_rng_fill(rng, fs_prefix_data[i], len);
		fs_prefix[i].type = fz_u8(in);
		fs_prefix[i].data = fs_prefix_data[i];
		fs_prefix[i].len = len;
	}
}

/*
 * Every so often, look at the pools: memory still in use after every
 * connection is closed can only grow without bound if buffers leak (the
 * pools never return memory, so malloc's leak check cannot see them).
 */
static void
fs_check_pool(void)
{
	static uint64_t inputs;
	struct uktls_stats st;

	if (++inputs % 1024 != 0)
		return;
	uktls_get_stats(&st);
	if (getenv("FUZZ_STREAM_STATS") != NULL)
		fprintf(stderr, "fuzz_stream: %llu inputs, pool %llu bytes, "
		    "mbufs %llu/%llu free, clusters %llu/%llu free, sockets "
		    "%llu\n", (unsigned long long)inputs,
		    (unsigned long long)st.pool_bytes,
		    (unsigned long long)st.pool_mbufs_free,
		    (unsigned long long)st.pool_mbufs_total,
		    (unsigned long long)st.pool_clusters_free,
		    (unsigned long long)st.pool_clusters_total,
		    (unsigned long long)st.sockets_active);
	FZ_ASSERT(st.pool_bytes < FS_POOL_LIMIT, "pool grew to %llu bytes",
	    (unsigned long long)st.pool_bytes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fz_rng rng;
	struct reader r;
	struct tls_enable en;
	const struct fz_suite *s;
	uint64_t seq;
	uint32_t from, cipher_prefix;
	uint8_t opts;
	int rx, tx, i, rc, closed = 0;

	fs_init();
	opts = fz_u8(&in);
	s = &fz_suites[opts % FZ_NSUITES];
	fs_suite_name = s->name;
	seq = fz_u64(&in);
	rng.s = fz_u32(&in);
	memset(&r, 0, sizeof(r));
	r.rng.s = rng.s ^ 0x5bd1e995u;
	fs_prefixed = (opts & 0x40) != 0;
	fs_linux = !fs_prefixed && (opts & 0x80) != 0;
	fs_nprefix = 0;
	if (fs_prefixed)
		fs_prefix_parse(&in, &rng);
	build_stream(&in, &rng, s, seq);
	/* A hand-off passes the first chunk as ciphertext read ahead. */
	cipher_prefix = fs_prefixed ? fs_cuts[0].at : 0;
	reference(s, seq, 0);

	if (fs_connect(&rx, &tx) != 0) {
		perror("fuzz_stream: connect");
		abort();
	}
	r.fd = rx;
	fz_enable(s, seq, &en);
	if (fs_prefixed)
		rc = uktls_enable_rx_prefixed(rx, &en, fs_prefix, fs_nprefix,
		    fs_stream, cipher_prefix);
	else if (fs_linux)
		rc = fs_enable_linux(rx, s, seq);
	else
		rc = uktls_setsockopt(rx, IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
		    sizeof(en));
	FZ_ASSERT(rc == 0, "enable: %s", strerror(errno));

	from = cipher_prefix;
	for (i = 0; i < fs_ncuts && !closed; i++) {
		if (fs_write(&r, tx, from, fs_cuts[i].at) != 0)
			break;
		from = fs_cuts[i].at;
		switch (fs_cuts[i].action) {
		case CUT_YIELD:
			sched_yield();
			break;
		case CUT_SLEEP:
			usleep(200);
			break;
		case CUT_DRAIN:
			rd_drain(&r, 8);
			break;
		case CUT_SHUTRD:
			/* Only once the stream is mostly out: rarely useful
			 * early, and it ends the checking. */
			if (from * 4 < fs_len * 3 || r.shut)
				break;
			/* ENOTCONN: uktls already dropped the connection
			 * for a bad header, as FreeBSD would. */
			rc = uktls_shutdown(rx, SHUT_RD);
			FZ_ASSERT(rc == 0 || errno == ENOTCONN,
			    "shutdown: %s", strerror(errno));
			r.shut = 1;
			break;
		case CUT_CLOSE:
			if (from * 4 < fs_len * 3)
				break;
			FZ_ASSERT(uktls_close(rx) == 0, "close: %s",
			    strerror(errno));
			closed = 1;
			break;
		default:
			break;
		}
	}
	(void)shutdown(tx, SHUT_WR);
	if (!closed) {
		while (!r.done && !r.shut) {
			if (fz_rng_below(&r.rng, 4) == 0) {
				rd_wait(&r);
				rd_step(&r, 1);
			} else
				rd_step(&r, 0);
		}
		/* The end again, and once more with MSG_PEEK's chance. */
		for (i = 0; i < 2; i++)
			rd_step(&r, 0);
		uktls_close(rx);
	}
	close(tx);
	fs_check_pool();
	return 0;
}
