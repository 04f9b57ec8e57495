/*
 * Receiving a TLS stream over loopback TCP: uktls against OpenSSL's
 * SSL_read and against plain TCP.
 *
 * The receiver is this process; each sender is a forked child, so that the
 * CPU time this process reports (getrusage(RUSAGE_SELF): every thread,
 * uktls's input threads and workers included) is the receiving side's
 * alone.  After a real TLS 1.3 handshake (TLS_AES_128_GCM_SHA256, a
 * self-signed certificate made at start-up, no session tickets) the sender
 * seals the whole stream in advance with its session's keys, by writing
 * 16 KiB records through SSL_write into a memory BIO, so consecutive
 * sequence numbers and all, and then writes the bytes to the socket at
 * wire speed: the sender's encryption is not part of what is measured.
 * Buffers are touched before the clock starts.
 *
 * Receive methods, taking turns in every round:
 *   plain    read() into 256 KiB, no TLS (the sender writes raw bytes)
 *   ssl      SSL_read() into 256 KiB, OpenSSL's defaults
 *   ssl-ra   SSL_read() with read-ahead and a 256 KiB read buffer
 *   uktls    the receive side handed to uktls with uktls_openssl_prepare()
 *            and uktls_openssl_enable_rx(), then uktls_read() into 256 KiB
 *   uktls-zc the same, through the zero-copy interface: uktls_recv_zc()
 *            hands over each record's decrypted buffers, released unread
 *            with uktls_zc_free() (the other modes do not read theirs
 *            either)
 *
 * Parts:
 *   throughput  one connection: MB/s, receive CPU seconds per GB, and
 *               context switches and system calls of the receiving
 *               process per 16 KiB
 *   scaling     1, 2, 4 ... connections up to 4 per CPU, one reader
 *               thread each: aggregate MB/s and CPU per GB; a PNG chart
 *               with gnuplot when it is installed (Debian: gnuplot-nox)
 *   latency     one record at a time: the sender stamps CLOCK_MONOTONIC
 *               into shared memory and writes a record, the reader
 *               returns it and notes the time; p50/p99/p99.9 of the
 *               difference, for 64 B and 16 KiB records
 *   memory      resident bytes per idle RX-enabled socket (RSS delta over
 *               1000 sockets, /proc/self/statm) and heap bytes (mallinfo2),
 *               per backend, in a child each
 *   allocations heap allocations per record while receiving, counted by
 *               replacing malloc and its relatives in this program: over
 *               the whole timed run (its connections and reader threads
 *               are new) and after warm-up (every reader past a quarter
 *               of its stream); the highest over the rounds
 *
 *   build/bench/bench_recv [--mb N] [--rounds N] [--max-conns N]
 *       [--lat-records N] [--quick] [--json FILE] [--png FILE]
 *       [--only throughput,scaling,latency,memory]
 *       [--modes plain,ssl,ssl-ra,uktls,uktls-zc]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "benchlib.h"
#include "uktls.h"
#include "uktls/openssl.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))
#define RECORD 16384
#define RBUF (256 * 1024)
#define MAXCONNS 256
#define MAXROUNDS 32
#define IDLE_SOCKETS 1000

enum mode { M_PLAIN, M_SSL, M_SSL_RA, M_UKTLS, M_UKTLS_ZC, NMODES };
static const char *const mnames[NMODES] = { "plain", "ssl", "ssl-ra",
	"uktls", "uktls-zc" };
/* Modes selected with --modes (all by default). */
static int mode_on[NMODES] = { 1, 1, 1, 1, 1 };

/* Is m one of the modes whose receive side uktls runs? */
static int
is_uktls(enum mode m)
{
	return m == M_UKTLS || m == M_UKTLS_ZC;
}

/*
 * The zero-copy interface: the next record's decrypted buffers are handed
 * over and released, as an in-process consumer that parses them in place
 * would do; like read() in the other modes, the content is not looked at.
 */
static ssize_t
recv_zc(int fd)
{
	struct uktls_zc_record *rec;
	ssize_t n;

	n = uktls_recv_zc(fd, &rec, NULL, 0);
	if (n > 0 || (n == 0 && rec != NULL))
		uktls_zc_free(rec);
	return n;
}

/* ==== heap allocation counting ====================================== */

/*
 * malloc and its relatives, forwarding to glibc and counting the calls
 * made while counting is set, in every thread of this process.
 */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_int counting;
static atomic_ulong nallocs;

/*
 * With BENCH_ALLOC_SITES set in the environment, the call stacks of the
 * first few counted allocations are printed at the end of each run.
 */
#define NSITES 8
#define SITE_DEPTH 16
static int trace_sites;
static atomic_int nsites;
static void *sites[NSITES][SITE_DEPTH];
static int site_depth[NSITES];
static __thread int in_hook;

static inline void
note_alloc(void)
{
	int i;

	if (!atomic_load_explicit(&counting, memory_order_relaxed))
		return;
	atomic_fetch_add_explicit(&nallocs, 1, memory_order_relaxed);
	if (!trace_sites || in_hook)
		return;
	in_hook = 1;
	i = atomic_fetch_add(&nsites, 1);
	if (i < NSITES)
		site_depth[i] = backtrace(sites[i], SITE_DEPTH);
	in_hook = 0;
}

static void
print_sites(const char *what)
{
	int i, n;

	n = atomic_exchange(&nsites, 0);
	for (i = 0; i < n && i < NSITES; i++) {
		fprintf(stderr, "-- %s: allocation %d while counting:\n", what,
		    i);
		backtrace_symbols_fd(sites[i], site_depth[i], 2);
	}
}

void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);
void free(void *p);
void *memalign(size_t align, size_t n);
void *aligned_alloc(size_t align, size_t n);
int posix_memalign(void **pp, size_t align, size_t n);

void *
malloc(size_t n)
{
	note_alloc();
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t m)
{
	note_alloc();
	return __libc_calloc(n, m);
}

void *
realloc(void *p, size_t n)
{
	note_alloc();
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}

void *
memalign(size_t align, size_t n)
{
	note_alloc();
	return __libc_memalign(align, n);
}

void *
aligned_alloc(size_t align, size_t n)
{
	note_alloc();
	return __libc_memalign(align, n);
}

int
posix_memalign(void **pp, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	note_alloc();
	p = __libc_memalign(align, n);
	if (p == NULL)
		return ENOMEM;
	*pp = p;
	return 0;
}

/* ==== system call counting ========================================== */

/*
 * The calls the receive paths make, replaced by wrappers that count them
 * (while counting is set) and enter the kernel directly.  uktls is linked
 * in statically, so its calls land here too; futex calls made inside the
 * pthread library cannot be seen, context switches stand for them.
 */
enum { S_RECVMSG, S_READ, S_WRITE, S_EPOLL_CTL, S_EPOLL_WAIT, S_POLL,
	S_FCNTL, S_GETSOCKOPT, NSYS };
static const char *const sysnames[NSYS] = { "recvmsg", "read", "write",
	"epoll_ctl", "epoll_wait", "poll", "fcntl", "getsockopt" };
static atomic_ulong nsys[NSYS];

static inline void
note_sys(int k)
{
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_fetch_add_explicit(&nsys[k], 1, memory_order_relaxed);
}

ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	note_sys(S_RECVMSG);
	return syscall(SYS_recvmsg, fd, msg, flags);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	note_sys(S_READ);
	return syscall(SYS_read, fd, buf, len);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	note_sys(S_WRITE);
	return syscall(SYS_write, fd, buf, len);
}

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	note_sys(S_EPOLL_CTL);
	return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

int
epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	note_sys(S_EPOLL_WAIT);
	return (int)syscall(SYS_epoll_wait, epfd, ev, max, timeout);
}

int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	note_sys(S_POLL);
	return (int)syscall(SYS_poll, fds, n, timeout);
}

int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	note_sys(S_FCNTL);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	note_sys(S_GETSOCKOPT);
	return (int)syscall(SYS_getsockopt, fd, level, name, val, len);
}

/* ==== set-up ========================================================= */

static SSL_CTX *sctx, *cctx;
static int lfd = -1;
static struct sockaddr_in laddr;

static void
die(const char *what, int error)
{
	fprintf(stderr, "bench_recv: %s: %s\n", what, strerror(error));
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void
die_ssl(const char *what)
{
	fprintf(stderr, "bench_recv: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* A P-256 key and a self-signed certificate for the sender's side. */
static void
make_ctx(void)
{
	EVP_PKEY *pkey;
	X509 *x;
	X509_NAME *name;

	pkey = EVP_EC_gen("P-256");
	x = X509_new();
	if (pkey == NULL || x == NULL)
		die_ssl("key generation");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"bench_recv", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, pkey, EVP_sha256()) == 0)
		die_ssl("X509_sign");

	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (sctx == NULL || cctx == NULL ||
	    SSL_CTX_use_certificate(sctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(sctx, pkey) != 1)
		die_ssl("SSL_CTX");
	SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(sctx, "TLS_AES_128_GCM_SHA256");
	SSL_CTX_set_ciphersuites(cctx, "TLS_AES_128_GCM_SHA256");
	/*
	 * No NewSessionTicket after the handshake: the stream from the
	 * sender is application data only, in every mode alike.
	 */
	SSL_CTX_set_num_tickets(sctx, 0);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static void
make_listener(void)
{
	socklen_t len = sizeof(laddr);
	int one = 1;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket", errno);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&laddr, 0, sizeof(laddr));
	laddr.sin_family = AF_INET;
	laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0 ||
	    listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&laddr, &len) != 0)
		die("listen", errno);
}

/* A connected loopback pair: *c ours, *s the sender's. */
static int
make_pair(int *c, int *s)
{
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0)
		return errno;
	if (connect(*c, (struct sockaddr *)&laddr, sizeof(laddr)) != 0) {
		close(*c);
		return errno;
	}
	*s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*s < 0) {
		close(*c);
		return errno;
	}
	return 0;
}

static ssize_t
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int
read_byte(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? (unsigned char)c : -1;
}

/* ==== the sender ===================================================== */

/*
 * Seal len bytes of content as 16 KiB records (rec bytes each, the last
 * shorter) through ssl's write side into memory, and return the stream.
 * plain mode returns len bytes of raw content instead.
 */
static uint8_t *
sender_prepare(enum mode m, SSL *ssl, size_t len, size_t rec, size_t *outlen)
{
	static uint8_t content[RECORD];
	uint8_t *stream;
	BIO *mem;
	size_t done, n, i, cap, pos;
	int got;

	for (i = 0; i < sizeof(content); i++)
		content[i] = (uint8_t)(i * 7 + 1);
	if (m == M_PLAIN) {
		stream = malloc(len);
		if (stream == NULL)
			die("malloc", ENOMEM);
		for (i = 0; i < len; i += sizeof(content))
			memcpy(stream + i, content, len - i < sizeof(content) ?
			    len - i : sizeof(content));
		*outlen = len;
		return stream;
	}
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		die_ssl("BIO_new");
	/* The SSL's reads still go to the socket. */
	SSL_set0_wbio(ssl, mem);
	/*
	 * Each SSL_write of at most 2^14 bytes is one TLS 1.3 record: header,
	 * content, inner type and tag.  Move each out of the memory BIO as
	 * it is made, so that the BIO never grows past one record.
	 */
	cap = len + (len / rec + 1) * (5 + 1 + 16 + 256);
	stream = malloc(cap);
	if (stream == NULL)
		die("malloc", ENOMEM);
	for (done = 0, pos = 0; done < len; done += n) {
		n = len - done < rec ? len - done : rec;
		/* Room for this record and its overhead (cap allows it). */
		if (pos + n + 5 + 1 + 16 + 256 > cap)
			die("stream buffer", ENOSPC);
		if (SSL_write(ssl, content, (int)n) != (int)n)
			die_ssl("SSL_write");
		while ((got = BIO_read(mem, stream + pos,
		    (int)(cap - pos < (1u << 30) ? cap - pos : 1u << 30))) > 0)
			pos += (size_t)got;
	}
	*outlen = pos;
	return stream;
}

struct sender_conn {
	int fd;
	uint8_t *stream;
	size_t len;
	pthread_barrier_t *go;
};

static void *
sender_thread(void *arg)
{
	struct sender_conn *sc = arg;

	pthread_barrier_wait(sc->go);
	if (write_all(sc->fd, sc->stream, sc->len) < 0)
		_exit(3);
	shutdown(sc->fd, SHUT_WR);
	return NULL;
}

/*
 * The sender's process for a throughput run: handshake each connection,
 * prepare its stream, say ready, wait for go, write everything at once on
 * one thread per connection.  Never returns.
 */
static void
sender_main(enum mode m, int n, const int *sfd, size_t per_conn, int ready,
    int go)
{
	static struct sender_conn sc[MAXCONNS];
	static pthread_t tid[MAXCONNS];
	pthread_barrier_t bar;
	SSL *ssl[MAXCONNS];
	int i;

	/* A name of its own, so that profiles can leave the sender out. */
	prctl(PR_SET_NAME, "bench_sender");
	for (i = 0; i < n; i++) {
		ssl[i] = NULL;
		if (m == M_PLAIN)
			continue;
		ssl[i] = SSL_new(sctx);
		if (ssl[i] == NULL || SSL_set_fd(ssl[i], sfd[i]) != 1 ||
		    SSL_accept(ssl[i]) != 1)
			_exit(2);
	}
	pthread_barrier_init(&bar, NULL, (unsigned int)n + 1);
	for (i = 0; i < n; i++) {
		sc[i].fd = sfd[i];
		sc[i].stream = sender_prepare(m, ssl[i], per_conn, RECORD,
		    &sc[i].len);
		sc[i].go = &bar;
		bl_prefault(sc[i].stream, sc[i].len);
		if (pthread_create(&tid[i], NULL, sender_thread, &sc[i]) != 0)
			_exit(2);
	}
	if (write_all(ready, "r", 1) != 1 || read_byte(go) != 'g')
		_exit(2);
	pthread_barrier_wait(&bar);
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	_exit(0);
}

/* ==== the receiver =================================================== */

struct recv_conn {
	enum mode mode;
	int fd;
	SSL *ssl;
	uint8_t *buf;
	uint64_t bytes;
	uint64_t reads;
	uint64_t warm_at;  /* bytes after which this reader is warmed up */
	int warm;
	int error;
};

/*
 * Steady state: once every reader of a run has taken a quarter of its
 * stream (new threads' first reads and the pools' growth to the run's
 * working set are behind), the allocation count and byte count are noted,
 * so that allocations per record can also be given for the rest.
 */
static atomic_ulong run_bytes;
static atomic_int run_warmed, run_nconn;
static atomic_ulong warm_allocs, warm_bytes;
static atomic_int warm_done;

static void *
recv_thread(void *arg)
{
	struct recv_conn *rc = arg;
	ssize_t n;

	for (;;) {
		switch (rc->mode) {
		case M_PLAIN:
			n = read(rc->fd, rc->buf, RBUF);
			break;
		case M_SSL:
		case M_SSL_RA:
			n = SSL_read(rc->ssl, rc->buf, RBUF);
			break;
		case M_UKTLS_ZC:
			n = recv_zc(rc->fd);
			break;
		default:
			n = uktls_read(rc->fd, rc->buf, RBUF);
			break;
		}
		if (n > 0) {
			uint64_t total;

			rc->bytes += (uint64_t)n;
			rc->reads++;
			total = atomic_fetch_add_explicit(&run_bytes,
			    (uint64_t)n, memory_order_relaxed) + (uint64_t)n;
			if (!rc->warm && rc->bytes >= rc->warm_at) {
				rc->warm = 1;
				if (atomic_fetch_add(&run_warmed, 1) + 1 ==
				    atomic_load(&run_nconn)) {
					atomic_store(&warm_allocs,
					    atomic_load(&nallocs));
					atomic_store(&warm_bytes, total);
					atomic_store(&warm_done, 1);
				}
			}
			continue;
		}
		if (n < 0 && rc->mode != M_SSL && rc->mode != M_SSL_RA &&
		    errno == EINTR)
			continue;
		/* SSL_read ends with an error at EOF without close_notify. */
		if (n < 0 && (rc->mode == M_PLAIN || is_uktls(rc->mode)))
			rc->error = errno;
		break;
	}
	return NULL;
}

/* Connect n TLS clients (ssl[i] on cfd[i]) for mode m. */
static void
client_handshakes(enum mode m, int n, const int *cfd, SSL **ssl)
{
	int i, error;

	for (i = 0; i < n; i++) {
		ssl[i] = NULL;
		if (m == M_PLAIN)
			continue;
		ssl[i] = SSL_new(cctx);
		if (ssl[i] == NULL || SSL_set_fd(ssl[i], cfd[i]) != 1)
			die_ssl("SSL_new");
		if (m == M_SSL_RA) {
			SSL_set_read_ahead(ssl[i], 1);
			SSL_set_default_read_buffer_len(ssl[i], RBUF);
		}
		if (is_uktls(m)) {
			error = uktls_openssl_prepare(ssl[i]);
			if (error != 0)
				die("uktls_openssl_prepare", error);
		}
		if (SSL_connect(ssl[i]) != 1)
			die_ssl("SSL_connect");
		if (is_uktls(m)) {
			error = uktls_openssl_enable_rx(ssl[i]);
			if (error != 0)
				die("uktls_openssl_enable_rx", error);
		}
	}
}

/* CPU time of every thread of this process; *csw: context switches. */
static uint64_t
rusage_ns(uint64_t *csw)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*csw = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
	    1000000000u + ((uint64_t)ru.ru_utime.tv_usec +
	    (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

struct run_result {
	uint64_t bytes, wall_ns, cpu_ns, allocs, reads, csw;
	uint64_t steady_allocs, steady_bytes; /* after warm-up, see above */
	uint64_t sys[NSYS];
	uint64_t split;  /* records that reached decryption in pieces */
};

/*
 * One throughput run: n connections in mode m, total content bytes spread
 * over them.
 */
static void
run_stream(enum mode m, int n, size_t total, struct run_result *res)
{
	static struct recv_conn rc[MAXCONNS];
	static pthread_t tid[MAXCONNS];
	int cfd[MAXCONNS], sfd[MAXCONNS], ready[2], go[2];
	SSL *ssl[MAXCONNS];
	size_t per_conn;
	uint64_t t0, c0, expect, csw0, csw1;
	struct uktls_stats st0, st1;
	pid_t pid;
	int i, st, error;

	per_conn = (total / (size_t)n + RECORD - 1) / RECORD * RECORD;
	for (i = 0; i < n; i++) {
		error = make_pair(&cfd[i], &sfd[i]);
		if (error != 0)
			die("connect", error);
	}
	if (pipe(ready) != 0 || pipe(go) != 0)
		die("pipe", errno);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		for (i = 0; i < n; i++)
			close(cfd[i]);
		close(ready[0]);
		close(go[1]);
		sender_main(m, n, sfd, per_conn, ready[1], go[0]);
	}
	for (i = 0; i < n; i++)
		close(sfd[i]);
	close(ready[1]);
	close(go[0]);
	client_handshakes(m, n, cfd, ssl);
	for (i = 0; i < n; i++) {
		memset(&rc[i], 0, sizeof(rc[i]));
		rc[i].mode = m;
		rc[i].fd = cfd[i];
		rc[i].ssl = ssl[i];
		rc[i].buf = malloc(RBUF);
		if (rc[i].buf == NULL)
			die("malloc", ENOMEM);
		rc[i].warm_at = per_conn / 4;
		bl_prefault(rc[i].buf, RBUF);
	}
	atomic_store(&run_bytes, 0);
	atomic_store(&run_warmed, 0);
	atomic_store(&run_nconn, n);
	atomic_store(&warm_done, 0);
	if (read_byte(ready[0]) != 'r')
		die("sender not ready", EIO);
	/* The readers block in their first read until the sender starts. */
	for (i = 0; i < n; i++)
		if (pthread_create(&tid[i], NULL, recv_thread, &rc[i]) != 0)
			die("pthread_create", EAGAIN);
	usleep(2000);
	atomic_store(&nallocs, 0);
	for (i = 0; i < NSYS; i++)
		atomic_store(&nsys[i], 0);
	(void)uktls_get_stats(&st0);
	t0 = bl_now_ns();
	c0 = rusage_ns(&csw0);
	atomic_store(&counting, 1);
	if (write_all(go[1], "g", 1) != 1)
		die("go", errno);
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	atomic_store(&counting, 0);
	res->cpu_ns = rusage_ns(&csw1) - c0;
	res->csw = csw1 - csw0;
	res->wall_ns = bl_now_ns() - t0;
	res->allocs = atomic_load(&nallocs);
	(void)uktls_get_stats(&st1);
	res->split = st1.records_split - st0.records_split;
	res->steady_allocs = res->steady_bytes = 0;
	if (atomic_load(&warm_done)) {
		res->steady_allocs = res->allocs - atomic_load(&warm_allocs);
		res->steady_bytes = atomic_load(&run_bytes) -
		    atomic_load(&warm_bytes);
	}
	for (i = 0; i < NSYS; i++)
		res->sys[i] = atomic_load(&nsys[i]);
	if (trace_sites)
		print_sites(mnames[m]);
	res->bytes = res->reads = 0;
	expect = (uint64_t)per_conn * (uint64_t)n;
	for (i = 0; i < n; i++) {
		res->bytes += rc[i].bytes;
		res->reads += rc[i].reads;
		if (rc[i].error != 0)
			die(mnames[m], rc[i].error);
		free(rc[i].buf);
		if (ssl[i] != NULL)
			SSL_free(ssl[i]);
		if (is_uktls(m))
			uktls_close(cfd[i]);
		else
			close(cfd[i]);
	}
	close(ready[0]);
	close(go[1]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("sender", EIO);
	if (res->bytes != expect) {
		fprintf(stderr, "bench_recv: %s: %" PRIu64 " of %" PRIu64
		    " bytes\n", mnames[m], res->bytes, expect);
		exit(1);
	}
}

/* ==== throughput and scaling ========================================= */

struct cell {
	double mbps[MAXROUNDS], cpu_s_per_gb[MAXROUNDS];
	double allocs_per_rec[MAXROUNDS], csw_per_rec[MAXROUNDS];
	double steady_allocs_per_rec[MAXROUNDS];
	double sys_per_rec[NSYS][MAXROUNDS];
	double split_per_rec[MAXROUNDS];
};

static void
report_cell(const char *group, enum mode m, struct cell *c, int rounds)
{
	double mb, mblo, mbhi, cpu, cpulo, cpuhi, al, st, cs;
	int k;

	mblo = bl_min(c->mbps, (size_t)rounds);
	mbhi = bl_max(c->mbps, (size_t)rounds);
	mb = bl_median(c->mbps, (size_t)rounds);
	cpulo = bl_min(c->cpu_s_per_gb, (size_t)rounds);
	cpuhi = bl_max(c->cpu_s_per_gb, (size_t)rounds);
	cpu = bl_median(c->cpu_s_per_gb, (size_t)rounds);
	al = bl_max(c->allocs_per_rec, (size_t)rounds);
	st = bl_max(c->steady_allocs_per_rec, (size_t)rounds);
	cs = bl_median(c->csw_per_rec, (size_t)rounds);
	bl_result_add(group, mnames[m], "throughput", "MB/s", mb, mblo, mbhi,
	    (unsigned int)rounds);
	bl_result_add(group, mnames[m], "cpu_per_gb", "cpu-s/GB", cpu, cpulo,
	    cpuhi, (unsigned int)rounds);
	bl_result_add(group, mnames[m], "efficiency", "GB/cpu-s", 1 / cpu,
	    1 / cpuhi, 1 / cpulo, (unsigned int)rounds);
	bl_result_add(group, mnames[m], "allocs_per_record", "allocs", al,
	    bl_min(c->allocs_per_rec, (size_t)rounds), al,
	    (unsigned int)rounds);
	bl_result_add(group, mnames[m], "steady_allocs_per_record", "allocs",
	    st, bl_min(c->steady_allocs_per_rec, (size_t)rounds), st,
	    (unsigned int)rounds);
	bl_result_add(group, mnames[m], "csw_per_record", "switches", cs,
	    bl_min(c->csw_per_rec, (size_t)rounds),
	    bl_max(c->csw_per_rec, (size_t)rounds), (unsigned int)rounds);
	printf("%-10s %-8s %8.1f MB/s [%.1f..%.1f]  %.3f CPU-s/GB "
	    "[%.3f..%.3f] = %.2f GB/CPU-s  %.4f allocs/rec  %.2f csw/rec\n",
	    group, mnames[m], mb, mblo, mbhi, cpu, cpulo, cpuhi, 1 / cpu, al,
	    cs);
	printf("%-10s %-8s   allocs per 16 KiB after warm-up (max) %.4f;"
	    " syscalls per 16 KiB:", "", "", st);
	for (k = 0; k < NSYS; k++) {
		char metric[32];
		double v = bl_median(c->sys_per_rec[k], (size_t)rounds);

		snprintf(metric, sizeof(metric), "%s_per_record", sysnames[k]);
		bl_result_add(group, mnames[m], metric, "calls", v, v, v,
		    (unsigned int)rounds);
		if (v >= 0.005)
			printf(" %s %.2f", sysnames[k], v);
	}
	if (is_uktls(m)) {
		double v = bl_median(c->split_per_rec, (size_t)rounds);

		bl_result_add(group, mnames[m], "split_records", "fraction",
		    v, bl_min(c->split_per_rec, (size_t)rounds),
		    bl_max(c->split_per_rec, (size_t)rounds),
		    (unsigned int)rounds);
		printf("; records split %.1f%%", 100 * v);
	}
	printf("\n");
}

/*
 * uktls's ratios to the other modes, round by round (each against the
 * other's turn in the same round: this machine's speed swings for seconds
 * at a time, and a ratio of medians would mix fast and slow rounds), kept
 * as their median and range for ratio_table.
 */
static void
ratios(const char *group, const struct cell *cells, int rounds)
{
	static const enum mode us[] = { M_UKTLS, M_UKTLS_ZC };
	static const enum mode others[] = { M_PLAIN, M_SSL, M_SSL_RA };
	double w[MAXROUNDS], c[MAXROUNDS];
	char name[64];
	size_t i, j;
	int r;

	for (i = 0; i < NITEMS(us); i++) {
		for (j = 0; j < NITEMS(others); j++) {
			const struct cell *u = &cells[us[i]];
			const struct cell *o = &cells[others[j]];

			if (!mode_on[us[i]] || !mode_on[others[j]])
				continue;
			for (r = 0; r < rounds; r++) {
				w[r] = u->mbps[r] / o->mbps[r];
				c[r] = o->cpu_s_per_gb[r] / u->cpu_s_per_gb[r];
			}
			snprintf(name, sizeof(name), "throughput_vs_%s",
			    mnames[others[j]]);
			bl_result_add_rounds(group, mnames[us[i]], name, "x",
			    w, (size_t)rounds);
			snprintf(name, sizeof(name), "efficiency_vs_%s",
			    mnames[others[j]]);
			bl_result_add_rounds(group, mnames[us[i]], name, "x",
			    c, (size_t)rounds);
		}
	}
}

/*
 * Rounds of every mode in turn with n connections.  The first round of
 * all is a warm-up (pools, calibration, page cache of the code) and is
 * thrown away.
 */
static void
measure(const char *group, int n, size_t total, int rounds)
{
	static struct cell cells[NMODES];
	struct run_result res;
	int r, k, k2, m;

	memset(cells, 0, sizeof(cells));
	for (r = -1; r < rounds; r++) {
		for (k = 0; k < NMODES; k++) {
			m = (k + (r < 0 ? 0 : r)) % NMODES;
			if (!mode_on[m])
				continue;
			run_stream((enum mode)m, n, r < 0 ? total / 4 : total,
			    &res);
			if (r < 0)
				continue;
			cells[m].mbps[r] = (double)res.bytes * 1e3 /
			    (double)res.wall_ns;
			cells[m].cpu_s_per_gb[r] = (double)res.cpu_ns /
			    (double)res.bytes;
			cells[m].allocs_per_rec[r] = (double)res.allocs /
			    ((double)res.bytes / RECORD);
			cells[m].csw_per_rec[r] = (double)res.csw /
			    ((double)res.bytes / RECORD);
			cells[m].split_per_rec[r] = (double)res.split /
			    ((double)res.bytes / RECORD);
			cells[m].steady_allocs_per_rec[r] =
			    res.steady_bytes == 0 ? 0 :
			    (double)res.steady_allocs /
			    ((double)res.steady_bytes / RECORD);
			for (k2 = 0; k2 < NSYS; k2++)
				cells[m].sys_per_rec[k2][r] =
				    (double)res.sys[k2] /
				    ((double)res.bytes / RECORD);
		}
	}
	for (m = 0; m < NMODES; m++)
		if (mode_on[m])
			report_cell(group, (enum mode)m, &cells[m], rounds);
	ratios(group, cells, rounds);
}

/* ==== latency ======================================================== */

/*
 * A latency peer: a sender child for one mode holding nrec records of size
 * bytes, sealed in advance, that writes the next one each time the parent
 * sends it a token, having stamped the time into shared memory first.
 */
struct lat_peer {
	enum mode mode;
	pid_t pid;
	int fd;        /* ours */
	SSL *ssl;
	int tok;       /* parent -> child tokens */
	uint64_t *ts;  /* shared: send time of record i */
	size_t next;   /* the next record's index */
	size_t nrec;
};

static void
lat_child(enum mode m, int sfd, int tok, uint64_t *ts, size_t nrec,
    size_t size)
{
	uint8_t *stream;
	size_t len, *off, i, pos, rl;
	SSL *ssl = NULL;
	int c;

	prctl(PR_SET_NAME, "bench_sender");
	if (m != M_PLAIN) {
		ssl = SSL_new(sctx);
		if (ssl == NULL || SSL_set_fd(ssl, sfd) != 1 ||
		    SSL_accept(ssl) != 1)
			_exit(2);
	}
	stream = sender_prepare(m, ssl, nrec * size, size, &len);
	off = calloc(nrec + 1, sizeof(*off));
	if (off == NULL)
		_exit(2);
	/* Where each record starts: parse the headers, or count bytes. */
	for (i = 0, pos = 0; i < nrec; i++) {
		off[i] = pos;
		if (m == M_PLAIN)
			rl = size;
		else
			rl = 5 + ((size_t)stream[pos + 3] << 8 |
			    stream[pos + 4]);
		pos += rl;
	}
	off[nrec] = pos;
	if (pos != len)
		_exit(4);
	bl_prefault(stream, len);
	for (i = 0; i < nrec; i++) {
		c = read_byte(tok);
		if (c != 't')
			break;
		ts[i] = bl_now_ns();
		if (write_all(sfd, stream + off[i], off[i + 1] - off[i]) < 0)
			_exit(3);
	}
	_exit(0);
}

static void
lat_start(struct lat_peer *lp, enum mode m, size_t nrec, size_t size)
{
	int cfd, sfd, tok[2], error;

	memset(lp, 0, sizeof(*lp));
	lp->mode = m;
	lp->nrec = nrec;
	lp->ts = mmap(NULL, nrec * sizeof(uint64_t), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lp->ts == MAP_FAILED)
		die("mmap", errno);
	error = make_pair(&cfd, &sfd);
	if (error != 0)
		die("connect", error);
	if (pipe(tok) != 0)
		die("pipe", errno);
	fflush(NULL);
	lp->pid = fork();
	if (lp->pid < 0)
		die("fork", errno);
	if (lp->pid == 0) {
		close(cfd);
		close(tok[1]);
		lat_child(m, sfd, tok[0], lp->ts, nrec, size);
	}
	close(sfd);
	close(tok[0]);
	lp->fd = cfd;
	lp->tok = tok[1];
	client_handshakes(m, 1, &cfd, &lp->ssl);
	/* Records of 64 bytes must not wait for Nagle on the sender. */
	if (m == M_PLAIN || m == M_SSL || m == M_SSL_RA) {
		int one = 1;

		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

/* Receive one record's content (size bytes) the mode's way. */
static void
lat_recv_one(struct lat_peer *lp, uint8_t *buf, size_t size)
{
	size_t got = 0;
	ssize_t n;

	while (got < size) {
		switch (lp->mode) {
		case M_PLAIN:
			n = read(lp->fd, buf + got, RBUF - got);
			break;
		case M_SSL:
		case M_SSL_RA:
			n = SSL_read(lp->ssl, buf + got, (int)(RBUF - got));
			break;
		case M_UKTLS_ZC:
			n = recv_zc(lp->fd);
			break;
		default:
			n = uktls_read(lp->fd, buf + got, RBUF - got);
			break;
		}
		if (n <= 0)
			die(mnames[lp->mode], n < 0 ? errno : EPIPE);
		got += (size_t)n;
	}
}

static void
lat_stop(struct lat_peer *lp)
{
	int st;

	close(lp->tok);
	if (lp->ssl != NULL)
		SSL_free(lp->ssl);
	if (is_uktls(lp->mode))
		uktls_close(lp->fd);
	else
		close(lp->fd);
	waitpid(lp->pid, &st, 0);
	munmap(lp->ts, lp->nrec * sizeof(uint64_t));
}

static void
latency(size_t size, int rounds, size_t per_round)
{
	static struct lat_peer peers[NMODES];
	double *lat[NMODES];
	uint8_t *buf;
	char group[32];
	size_t i, nrec = (size_t)rounds * per_round + 16;
	uint64_t t;
	int r, k, m;

	buf = malloc(RBUF);
	if (buf == NULL)
		die("malloc", ENOMEM);
	bl_prefault(buf, RBUF);
	for (m = 0; m < NMODES; m++) {
		lat[m] = calloc(nrec, sizeof(double));
		if (lat[m] == NULL)
			die("calloc", ENOMEM);
		if (mode_on[m])
			lat_start(&peers[m], (enum mode)m, nrec, size);
	}
	/* 16 warm-up records each, then the rounds, taking turns. */
	for (m = 0; m < NMODES; m++)
		for (i = 0; i < 16 && mode_on[m]; i++) {
			if (write_all(peers[m].tok, "t", 1) != 1)
				die("token", errno);
			lat_recv_one(&peers[m], buf, size);
			peers[m].next++;
		}
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < NMODES; k++) {
			m = (k + r) % NMODES;
			for (i = 0; i < per_round && mode_on[m]; i++) {
				struct lat_peer *lp = &peers[m];

				if (write_all(lp->tok, "t", 1) != 1)
					die("token", errno);
				lat_recv_one(lp, buf, size);
				t = bl_now_ns();
				lat[m][(size_t)r * per_round + i] =
				    (double)(t - lp->ts[lp->next]) / 1e3;
				lp->next++;
			}
		}
	}
	snprintf(group, sizeof(group), "latency/%zu", size);
	for (m = 0; m < NMODES; m++) {
		size_t n = (size_t)rounds * per_round;
		double p50, p99, p999;

		if (!mode_on[m]) {
			free(lat[m]);
			continue;
		}
		bl_sort(lat[m], n);
		p50 = bl_quantile_sorted(lat[m], n, 0.50);
		p99 = bl_quantile_sorted(lat[m], n, 0.99);
		p999 = bl_quantile_sorted(lat[m], n, 0.999);
		bl_result_add(group, mnames[m], "p50", "us", p50, p50, p50,
		    (unsigned int)n);
		bl_result_add(group, mnames[m], "p99", "us", p99, p99, p99,
		    (unsigned int)n);
		bl_result_add(group, mnames[m], "p99.9", "us", p999, p999,
		    p999, (unsigned int)n);
		printf("%-14s %-7s p50 %7.1f us  p99 %7.1f us  p99.9 %7.1f us"
		    "  (min %.1f, max %.1f, %zu records)\n", group, mnames[m],
		    p50, p99, p999, lat[m][0], lat[m][n - 1], n);
		lat_stop(&peers[m]);
		free(lat[m]);
	}
	free(buf);
}

/* ==== memory per idle socket ========================================= */

static long
rss_bytes(void)
{
	long size, resident;
	FILE *f;

	f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

/*
 * In a child with UKTLS_CRYPTO=backend: 1 + IDLE_SOCKETS connections,
 * RX-enabled with a made-up key; the first starts the engine and the
 * backend, the rest are measured.  Writes three doubles (RSS, heap and
 * mbuf pool bytes per socket) to out.
 */
static void
memory_child(const char *backend, int out)
{
	static int cfd[IDLE_SOCKETS + 1], sfd[IDLE_SOCKETS + 1];
	struct tls_enable en;
	struct mallinfo2 mi0, mi1;
	struct uktls_stats st0, st1;
	struct rlimit rl;
	uint8_t key[16], iv[12];
	double res[3];
	long rss0, rss1;
	int i, error;

	setenv("UKTLS_CRYPTO", backend, 1);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(key, 0x42, sizeof(key));
	memset(iv, 0x24, sizeof(iv));
	memset(&en, 0, sizeof(en));
	en.cipher_key = key;
	en.iv = iv;
	en.cipher_algorithm = CRYPTO_AES_NIST_GCM_16;
	en.cipher_key_len = 16;
	en.iv_len = 12;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = TLS_MINOR_VER_THREE;
	for (i = 0; i <= IDLE_SOCKETS; i++) {
		error = make_pair(&cfd[i], &sfd[i]);
		if (error != 0)
			die("connect (raise the descriptor limit?)", error);
	}
	if (uktls_setsockopt(cfd[0], IPPROTO_TCP, TCP_RXTLS_ENABLE, &en,
	    sizeof(en)) != 0)
		die("TCP_RXTLS_ENABLE", errno);
	usleep(100000);
	mi0 = mallinfo2();
	rss0 = rss_bytes();
	uktls_get_stats(&st0);
	for (i = 1; i <= IDLE_SOCKETS; i++)
		if (uktls_setsockopt(cfd[i], IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &en, sizeof(en)) != 0)
			die("TCP_RXTLS_ENABLE", errno);
	usleep(100000);
	rss1 = rss_bytes();
	mi1 = mallinfo2();
	uktls_get_stats(&st1);
	res[0] = (double)(rss1 - rss0) / IDLE_SOCKETS;
	res[1] = ((double)(mi1.uordblks + mi1.hblkhd) -
	    (double)(mi0.uordblks + mi0.hblkhd)) / IDLE_SOCKETS;
	res[2] = ((double)st1.pool_bytes - (double)st0.pool_bytes) /
	    IDLE_SOCKETS;
	if (write_all(out, res, sizeof(res)) < 0)
		_exit(3);
	/*
	 * Abortive closes, the sender's end first: no TIME_WAIT is left on
	 * the thousand ephemeral ports, which later runs need.
	 */
	for (i = 0; i <= IDLE_SOCKETS; i++) {
		struct linger lg = { 1, 0 };

		setsockopt(sfd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(sfd[i]);
		uktls_close(cfd[i]);
	}
	_exit(0);
}

static void
memory(void)
{
	static const char *const backends[] = {
#ifdef UKTLS_HAVE_IPSECMB
		"ipsecmb",
#endif
		"openssl"
	};
	double res[3];
	size_t b;
	pid_t pid;
	int p[2], st;
	ssize_t n;

	for (b = 0; b < NITEMS(backends); b++) {
		if (pipe(p) != 0)
			die("pipe", errno);
		fflush(NULL);
		pid = fork();
		if (pid < 0)
			die("fork", errno);
		if (pid == 0) {
			close(p[0]);
			memory_child(backends[b], p[1]);
		}
		close(p[1]);
		n = read(p[0], res, sizeof(res));
		close(p[0]);
		waitpid(pid, &st, 0);
		if (n != (ssize_t)sizeof(res)) {
			printf("memory/%s: child failed\n", backends[b]);
			continue;
		}
		bl_result_add("memory", backends[b], "rss_per_socket", "B",
		    res[0], res[0], res[0], IDLE_SOCKETS);
		bl_result_add("memory", backends[b], "heap_per_socket", "B",
		    res[1], res[1], res[1], IDLE_SOCKETS);
		bl_result_add("memory", backends[b], "pool_per_socket", "B",
		    res[2], res[2], res[2], IDLE_SOCKETS);
		printf("memory     %-7s %7.0f B RSS per idle RX socket, %7.0f B "
		    "heap (mallinfo2), of which %7.0f B mbuf pools; over %d "
		    "sockets\n", backends[b], res[0], res[1], res[2],
		    IDLE_SOCKETS);
	}
}

/* ==== chart ========================================================== */

/* Draw the scaling run into png with gnuplot: 0, or -1 (and a note). */
static int
chart(const char *png, const int *conns, int nconns)
{
	char group[32], cmd[64];
	FILE *g;
	int i, m;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		printf("chart: gnuplot not found (Debian package gnuplot-nox); "
		    "no PNG written\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "gnuplot");
	g = popen(cmd, "w");
	if (g == NULL) {
		printf("chart: cannot run gnuplot\n");
		return -1;
	}
	fprintf(g, "set terminal pngcairo size 900,560 noenhanced\n"
	    "set output '%s'\n"
	    "set title 'Loopback receive, TLS 1.3 AES-128-GCM, 16 KiB "
	    "records: aggregate throughput'\n"
	    "set xlabel 'connections'\nset ylabel 'MB/s'\n"
	    "set logscale x 2\nset grid\nset key top left\n"
	    "set yrange [0:*]\n", png);
	fprintf(g, "plot ");
	for (m = 0, i = 0; m < NMODES; m++)
		if (mode_on[m])
			fprintf(g, "%s'-' using 1:2 with linespoints lw 2 "
			    "title '%s'", i++ == 0 ? "" : ", ", mnames[m]);
	fprintf(g, "\n");
	for (m = 0; m < NMODES; m++) {
		if (!mode_on[m])
			continue;
		for (i = 0; i < nconns; i++) {
			snprintf(group, sizeof(group), "scaling/%d", conns[i]);
			fprintf(g, "%d %.1f\n", conns[i],
			    bl_result_get(group, mnames[m], "throughput"));
		}
		fprintf(g, "e\n");
	}
	if (pclose(g) == 0 && access(png, F_OK) == 0) {
		printf("chart: %s\n", png);
		return 0;
	}
	printf("chart: gnuplot failed; no PNG written to %s\n", png);
	return -1;
}

/* ==== main =========================================================== */

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr, "usage: bench_recv [--mb N] "
	    "[--rounds N] [--max-conns N] [--lat-records N] [--quick] "
	    "[--json FILE] [--png FILE] [--only LIST] [--modes LIST]\n");
	exit(status);
}

/*
 * One line of ratios, mode u (uktls or uktls-zc) over each of the others,
 * for whichever of them ran.
 */
static void
ratio_line(const char *group, const char *u, const char *what)
{
	static const char *const others[] = { "plain", "ssl", "ssl-ra" };
	char name[64];
	double y;
	size_t i;

	if (bl_result_get(group, u, "throughput") <= 0)
		return;
	printf("%-10s %-9s %-11s", group, u, what);
	for (i = 0; i < NITEMS(others); i++) {
		snprintf(name, sizeof(name), "%s_vs_%s", what, others[i]);
		y = bl_result_get(group, u, name);
		if (y <= 0)
			printf(" %12s", "-");
		else
			printf(" %12.3f", y);
	}
	printf("\n");
}

static void
ratio_table(const char *group)
{
	ratio_line(group, "uktls", "throughput");
	ratio_line(group, "uktls", "efficiency");
	ratio_line(group, "uktls-zc", "throughput");
	ratio_line(group, "uktls-zc", "efficiency");
}

int
main(int argc, char **argv)
{
	static int conns[32];
	struct uktls_stats st;
	static const char *const parts[] = { "throughput", "scaling",
		"latency", "memory" };
	const char *json = NULL, *only = NULL;
	char png[512], group[32];
	int png_asked = 0, status = 0;
	size_t total_mb = 256, lat_records = 1000;
	int rounds = 5, max_conns, nconns = 0, i, n;
	long ncpu;

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	max_conns = 4 * (int)(ncpu > 0 ? ncpu : 1);
	png[0] = '\0';
	/* --quick sets defaults that options given with it override. */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0) {
			total_mb = 64;
			rounds = 3;
			lat_records = 200;
		}
	for (i = 1; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--help") == 0)
			usage(0);
		else if (strcmp(argv[i], "--quick") == 0)
			continue;
		else if (val == NULL)
			usage(2);
		else if (strcmp(argv[i], "--json") == 0)
			json = val;
		else if (strcmp(argv[i], "--png") == 0) {
			snprintf(png, sizeof(png), "%s", val);
			png_asked = 1;
		} else if (strcmp(argv[i], "--mb") == 0)
			total_mb = (size_t)bl_arg_num("bench_recv", argv[i],
			    val, 1, 1L << 20);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (int)bl_arg_num("bench_recv", argv[i], val, 1,
			    MAXROUNDS);
		else if (strcmp(argv[i], "--max-conns") == 0)
			max_conns = (int)bl_arg_num("bench_recv", argv[i], val,
			    1, MAXCONNS);
		else if (strcmp(argv[i], "--lat-records") == 0)
			lat_records = (size_t)bl_arg_num("bench_recv", argv[i],
			    val, 10, 10000000);
		else if (strcmp(argv[i], "--only") == 0) {
			bl_arg_list("bench_recv", argv[i], val, parts,
			    sizeof(parts) / sizeof(parts[0]));
			only = val;
		} else if (strcmp(argv[i], "--modes") == 0) {
			bl_arg_list("bench_recv", argv[i], val, mnames,
			    NMODES);
			for (n = 0; n < NMODES; n++)
				mode_on[n] = bl_arg_has(val, mnames[n]);
		} else
			usage(2);
		i++;
	}
	if (max_conns > MAXCONNS)
		max_conns = MAXCONNS;
	if (png[0] == '\0') {
		if (json != NULL) {
			snprintf(png, sizeof(png), "%s", json);
			n = (int)strlen(png);
			if (n > 5 && strcmp(png + n - 5, ".json") == 0)
				png[n - 5] = '\0';
			strncat(png, "-scaling.png", sizeof(png) - strlen(png) -
			    1);
		} else
			snprintf(png, sizeof(png), "bench_recv-scaling.png");
	}
	signal(SIGPIPE, SIG_IGN);
	if (getenv("BENCH_ALLOC_SITES") != NULL) {
		void *frames[4];

		/* backtrace() loads libgcc on first use: not in a hook. */
		(void)backtrace(frames, 4);
		trace_sites = 1;
	}
	make_ctx();
	make_listener();

	printf("# loopback TCP receive, TLS 1.3 AES-128-GCM 16 KiB records, "
	    "%zu MiB per run, medians of %d interleaved rounds [min..max]\n",
	    total_mb, rounds);
	memset(&st, 0, sizeof(st));
	(void)uktls_get_stats(&st);
	printf("# CPU is the receiving process's (all threads), sender "
	    "forked; uktls backend: %s\n", st.crypto_backend);
	bl_note("uktls_backend", "%s", st.crypto_backend);
	if (only == NULL || bl_arg_has(only, "throughput")) {
		measure("stream/1", 1, total_mb << 20, rounds);
		printf("\n# uktls over each, medians of the rounds' own ratios"
		    "\n%-10s %-9s %-11s "
		    "%12s %12s %12s\n", "", "", "", "plain", "ssl", "ssl-ra");
		ratio_table("stream/1");
		printf("\n");
	}
	if (only == NULL || bl_arg_has(only, "scaling")) {
		for (n = 1; n <= max_conns; n *= 2)
			conns[nconns++] = n;
		if (conns[nconns - 1] != max_conns)
			conns[nconns++] = max_conns;
		for (i = 0; i < nconns; i++) {
			snprintf(group, sizeof(group), "scaling/%d", conns[i]);
			measure(group, conns[i], total_mb << 20,
			    rounds > 3 ? 3 : rounds);
		}
		printf("\n# uktls over each, medians of the rounds' own ratios"
		    "\n%-10s %-9s %-11s "
		    "%12s %12s %12s\n", "", "", "", "plain", "ssl", "ssl-ra");
		for (i = 0; i < nconns; i++) {
			snprintf(group, sizeof(group), "scaling/%d", conns[i]);
			ratio_table(group);
		}
		/* A chart asked for by name that cannot be drawn fails the
		 * run (after the numbers); the default one is a bonus. */
		if (chart(png, conns, nconns) != 0 && png_asked)
			status = 1;
		printf("\n");
	}
	if (only == NULL || bl_arg_has(only, "latency")) {
		latency(16384, rounds * 2, lat_records);
		latency(64, rounds * 2, lat_records);
		printf("\n");
	}
	if (only == NULL || bl_arg_has(only, "memory"))
		memory();

	bl_note("method", "%zu MiB per run; medians of %d interleaved rounds "
	    "(scaling: up to 3); latency: %d rounds of %zu records per mode",
	    total_mb, rounds, rounds * 2, lat_records);
	if (json != NULL) {
		int error = bl_json_write(json, "bench_recv");

		if (error != 0)
			die(json, error);
	}
	bl_results_free();
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	close(lfd);
	return status;
}
