/*
 * uktls demo: an end-to-end run with real TLS peers and nothing beyond
 * loopback.  The server of `uktls serve` runs in this process; the openssl
 * s_client and gnutls-cli programs connect to it one at a time, for TLS 1.2
 * and 1.3 and each AEAD suite they can negotiate, and send a file of
 * generated data on their stdin.  For each run the table shows what the
 * server received through uktls and whether its SHA-256 matches the file's.
 *
 * Both clients send everything they read and then, at the end of their
 * stdin, a close_notify, and exit: s_client when it is not told to ignore
 * EOF (-quiet implies -ign_eof, so -no_ign_eof follows it; -nocommands keeps
 * it from taking lines of the data that start with Q, R or k as commands),
 * gnutls-cli always.  Every run has a deadline, after which the client is
 * killed and the server's side of the connection shut down, so that the
 * demo always ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "common.h"

#define DEMO_BYTES_DEFAULT (8ULL << 20)
#define DEMO_BYTES_MAX (4ULL << 30)
/* The data is the same on every run, so that checksums can be compared. */
#define DEMO_SEED 0x756b746c7364656dULL
/* A run may take this long plus a second per DEMO_RATE bytes. */
#define DEMO_TIMEOUT_S 30
#define DEMO_RATE (5ULL << 20)
/* Grace for the other side once the client or the server is done. */
#define DEMO_GRACE_S 5
#define PROBE_TIMEOUT_MS 10000
#define TICK_MS 50

enum peer { PEER_OPENSSL, PEER_GNUTLS, NPEERS };

static const struct peer_prog {
	const char *prog;    /* program looked up in $PATH */
	const char *label;   /* table column */
	const char *package; /* Debian/Ubuntu package that has it */
} peer_progs[NPEERS] = {
	{ "openssl", "s_client", "openssl" },
	{ "gnutls-cli", "gnutls-cli", "gnutls-bin" },
};

/* One suite by each client's and the server's names for it. */
static const struct demo_suite {
	const char *aead;    /* as the server reports it (aead_name()) */
	const char *ossl12;  /* s_client -cipher (ECDSA: the certificate) */
	const char *ossl13;  /* s_client -ciphersuites */
	const char *gnutls;  /* gnutls-cli priority cipher */
} demo_suites[] = {
	{ "AES-128-GCM", "ECDHE-ECDSA-AES128-GCM-SHA256",
	  "TLS_AES_128_GCM_SHA256", "AES-128-GCM" },
	{ "AES-256-GCM", "ECDHE-ECDSA-AES256-GCM-SHA384",
	  "TLS_AES_256_GCM_SHA384", "AES-256-GCM" },
	{ "CHACHA20-POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305",
	  "TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305" },
};
#define NSUITES (sizeof(demo_suites) / sizeof(demo_suites[0]))
#define NROWS (NPEERS * 2 * NSUITES)

enum row_state { ROW_PENDING, ROW_SKIPPED, ROW_OK, ROW_FAILED };

struct row {
	enum peer peer;
	int tls13;
	const struct demo_suite *suite;
	enum row_state state;
	char note[256];          /* why it was skipped or failed */
	char log[PATH_MAX];      /* the client's stdout and stderr */
	int have_res;
	struct conn_result res;  /* the server's side */
	int sha_match;
};

struct demo {
	char tmpdir[PATH_MAX - 64]; /* room for the names of files in it */
	char datafile[PATH_MAX];
	uint64_t bytes;
	unsigned char sha256[32];
	char prog[NPEERS][PATH_MAX];
	int have[NPEERS];
	struct srv *srv;
	sigset_t sigs;
	int tty;
	int interrupted;
	struct row rows[NROWS];
	size_t nrows;

	/* The server's report of the connection now running. */
	pthread_mutex_t lock;
	int have_res;
	unsigned int extra_conns; /* connections beyond the one expected */
	struct conn_result res;
};

static const char demo_usage[] =
"usage: uktls demo\n"
"\n"
"Run a uktls server in this process on 127.0.0.1 and send it a file of\n"
"generated data (8 MiB from a fixed seed) with the real `openssl s_client`\n"
"and `gnutls-cli` programs, over TLS 1.2 and TLS 1.3 with each of\n"
"AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 that the client supports.\n"
"Prints a table: peer, version, suite, bytes and records received, MB/s,\n"
"and whether the SHA-256 of what the server received matches the file.\n"
"A progress bar is drawn on stderr when it is a terminal.\n"
"\n"
"Needs the openssl (openssl package) and gnutls-cli (gnutls-bin package)\n"
"programs.  UKTLS_DEMO_BYTES sets the size of the data (k, m, g suffixes).\n"
"Exit status: 0 when every run succeeded, 1 otherwise.\n";

static void
demo_done(const struct conn_result *r, void *arg)
{
	struct demo *d = arg;

	pthread_mutex_lock(&d->lock);
	if (!d->have_res) {
		d->res = *r;
		d->have_res = 1;
	} else {
		d->extra_conns++;
	}
	pthread_mutex_unlock(&d->lock);
}

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Write the data file and its SHA-256. */
static int
demo_make_data(struct demo *d)
{
	EVP_MD_CTX *md = NULL;
	unsigned char *buf = NULL;
	uint64_t seed = DEMO_SEED, left, v;
	size_t chunk = 1 << 20, n, i;
	unsigned int mdlen = sizeof(d->sha256);
	int fd = -1, error = 0;

	snprintf(d->datafile, sizeof(d->datafile), "%s/data", d->tmpdir);
	fd = open(d->datafile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	buf = malloc(chunk);
	md = EVP_MD_CTX_new();
	if (fd < 0 || buf == NULL || md == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		error = fd < 0 ? errno : ENOMEM;
		goto out;
	}
	for (left = d->bytes; left > 0; left -= n) {
		n = left < chunk ? (size_t)left : chunk;
		for (i = 0; i < n; i += 8) {
			v = splitmix64(&seed);
			memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
		}
		if (EVP_DigestUpdate(md, buf, n) != 1) {
			error = EIO;
			goto out;
		}
		error = write_all(fd, buf, n);
		if (error != 0)
			goto out;
	}
	if (EVP_DigestFinal_ex(md, d->sha256, &mdlen) != 1)
		error = EIO;
out:
	if (fd >= 0 && close(fd) != 0 && error == 0)
		error = errno;
	EVP_MD_CTX_free(md);
	free(buf);
	return error;
}

/* Does a line of text hold word as a whole token? */
static int
has_token(const char *text, const char *word)
{
	size_t wl = strlen(word);
	const char *p;

	for (p = strstr(text, word); p != NULL; p = strstr(p + 1, word)) {
		if ((p == text || strchr(" \t\n:,", p[-1]) != NULL) &&
		    (p[wl] == '\0' || strchr(" \t\r\n:,", p[wl]) != NULL))
			return 1;
	}
	return 0;
}

static void
gnutls_priority(const struct row *r, char *buf, size_t len)
{
	snprintf(buf, len, "NORMAL:-VERS-ALL:+VERS-TLS1.%c:-CIPHER-ALL:+%s",
	    r->tls13 ? '3' : '2', r->suite->gnutls);
}

/* gnutls-cli --list: a line per suite, "NAME  0xNN, 0xNN  TLS1.x". */
static int
gnutls_lists_suite(const char *out, const struct row *r)
{
	const char *line, *end, *tab;
	const char *ver = r->tls13 ? "TLS1.3" : "TLS1.2";
	size_t vl = strlen(ver);

	for (line = out; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		if ((size_t)(end - line) <= vl ||
		    strncmp(end - vl, ver, vl) != 0)
			continue;
		/* TLS 1.2 suites name the key exchange: the certificate is
		 * ECDSA, so only ECDHE_ECDSA ones can be used. */
		tab = memchr(line, ' ', (size_t)(end - line));
		if (!r->tls13 && (tab == NULL ||
		    memmem(line, (size_t)(tab - line), "_ECDSA_", 7) == NULL))
			continue;
		return 1;
	}
	return 0;
}

/* Can the client, and this process's OpenSSL as the server, do r? */
static void
demo_probe(struct demo *d, struct row *r)
{
	char out[16384], prio[160], *argv[8];
	const char *name;
	SSL_CTX *ctx;
	int status, ok, error;

	ctx = SSL_CTX_new(TLS_server_method());
	ok = ctx != NULL && (r->tls13 ?
	    SSL_CTX_set_ciphersuites(ctx, r->suite->ossl13) :
	    SSL_CTX_set_cipher_list(ctx, r->suite->ossl12)) == 1;
	SSL_CTX_free(ctx);
	if (!ok) {
		r->state = ROW_SKIPPED;
		snprintf(r->note, sizeof(r->note), "this OpenSSL lacks the "
		    "suite");
		return;
	}
	if (r->peer == PEER_OPENSSL) {
		name = r->tls13 ? r->suite->ossl13 : r->suite->ossl12;
		argv[0] = d->prog[PEER_OPENSSL];
		argv[1] = "ciphers";
		argv[2] = "-s";
		argv[3] = r->tls13 ? "-tls1_3" : "-tls1_2";
		if (r->tls13) {
			argv[4] = "-ciphersuites";
			argv[5] = (char *)name;
			argv[6] = NULL;
		} else {
			argv[4] = (char *)name;
			argv[5] = NULL;
		}
		error = run_capture(argv, out, sizeof(out), PROBE_TIMEOUT_MS,
		    &status);
		ok = error == 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0 && has_token(out, name);
	} else {
		gnutls_priority(r, prio, sizeof(prio));
		argv[0] = d->prog[PEER_GNUTLS];
		argv[1] = "--list";
		argv[2] = "--priority";
		argv[3] = prio;
		argv[4] = NULL;
		error = run_capture(argv, out, sizeof(out), PROBE_TIMEOUT_MS,
		    &status);
		ok = error == 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0 && gnutls_lists_suite(out, r);
	}
	if (!ok) {
		r->state = ROW_SKIPPED;
		snprintf(r->note, sizeof(r->note), "%s cannot offer it",
		    peer_progs[r->peer].label);
	}
}

static void
fmt_mib(uint64_t n, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f", (double)n / (1 << 20));
}

/* The progress bar: one line on stderr, redrawn in place. */
static void
demo_progress(struct demo *d, size_t idx, const struct row *r, uint64_t got)
{
	char bar[32], a[32], b[32];
	double frac;
	size_t width = 24, fill, i;

	if (!d->tty)
		return;
	frac = ((double)idx + (d->bytes > 0 ? (double)(got > d->bytes ?
	    d->bytes : got) / (double)d->bytes : 1)) / (double)d->nrows;
	fill = (size_t)(frac * (double)width);
	for (i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	fmt_mib(got, a, sizeof(a));
	fmt_mib(d->bytes, b, sizeof(b));
	fprintf(stderr, "\r\033[K[%s] %zu/%zu %s %s %s %s/%s MiB", bar,
	    idx + 1, d->nrows, peer_progs[r->peer].label,
	    r->tls13 ? "TLSv1.3" : "TLSv1.2", r->suite->aead, a, b);
}

static void
row_argv(struct demo *d, const struct row *r, char *connect, size_t clen,
    char *port, size_t plen, char *prio, size_t prlen, char **argv)
{
	int i = 0;

	snprintf(connect, clen, "127.0.0.1:%u", srv_port(d->srv));
	snprintf(port, plen, "%u", srv_port(d->srv));
	argv[i++] = d->prog[r->peer];
	if (r->peer == PEER_OPENSSL) {
		argv[i++] = "s_client";
		argv[i++] = "-connect";
		argv[i++] = connect;
		argv[i++] = "-quiet";
		argv[i++] = "-no_ign_eof";
		argv[i++] = "-nocommands";
		if (r->tls13) {
			argv[i++] = "-tls1_3";
			argv[i++] = "-ciphersuites";
			argv[i++] = (char *)r->suite->ossl13;
		} else {
			argv[i++] = "-tls1_2";
			argv[i++] = "-cipher";
			argv[i++] = (char *)r->suite->ossl12;
		}
	} else {
		gnutls_priority(r, prio, prlen);
		argv[i++] = "--insecure";
		argv[i++] = "-p";
		argv[i++] = port;
		argv[i++] = "--priority";
		argv[i++] = prio;
		argv[i++] = "127.0.0.1";
	}
	argv[i] = NULL;
}

static void row_fail(struct row *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
row_fail(struct row *r, const char *fmt, ...)
{
	va_list ap;

	if (r->state == ROW_FAILED)
		return;
	r->state = ROW_FAILED;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof(r->note), fmt, ap);
	va_end(ap);
}

/* Judge a finished run by the client's exit and the server's report. */
static void
row_judge(struct demo *d, struct row *r, int status)
{
	const char *want = r->tls13 ? "TLSv1.3" : "TLSv1.2";

	if (r->have_res)
		r->sha_match = r->res.hashed && r->res.bytes == d->bytes &&
		    memcmp(r->res.sha256, d->sha256, 32) == 0;
	/* The server's reason is the more telling one, when it has one. */
	if (r->have_res && r->res.error != 0)
		row_fail(r, "server: %s", r->res.errmsg);
	if (status == -1)
		row_fail(r, "%s did not exit", peer_progs[r->peer].label);
	else if (WIFSIGNALED(status))
		row_fail(r, "%s killed by signal %d", peer_progs[r->peer].label,
		    WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		row_fail(r, "%s exited with status %d",
		    peer_progs[r->peer].label, WEXITSTATUS(status));
	if (!r->have_res) {
		row_fail(r, "the server saw no connection");
		return;
	}
	if (strcmp(r->res.version, want) != 0)
		row_fail(r, "negotiated %s, not %s", r->res.version, want);
	else if (strcmp(r->res.aead, r->suite->aead) != 0)
		row_fail(r, "negotiated %s, not %s", r->res.aead,
		    r->suite->aead);
	else if (r->res.bytes != d->bytes)
		row_fail(r, "received %llu bytes of %llu",
		    (unsigned long long)r->res.bytes,
		    (unsigned long long)d->bytes);
	else if (!r->sha_match)
		row_fail(r, "the data received differs from the data sent");
	if (r->state == ROW_PENDING)
		r->state = ROW_OK;
}

/*
 * One run: start the client on the data file, wait for it to exit and for
 * the server to report the connection's end, or for the deadline.  Returns
 * -1 if a signal asks the demo to stop.
 */
static int
row_run(struct demo *d, size_t idx, struct row *r)
{
	char connect[64], port[16], prio[160], *argv[16];
	struct timespec tick = { 0, TICK_MS * 1000 * 1000 };
	double deadline, t_child = 0, t_res = 0, now;
	pid_t pid = -1;
	uint64_t base;
	int datafd = -1, logfd = -1, status = -1, child_done = 0;
	int got, error, ret = 0;

	snprintf(r->log, sizeof(r->log), "%s/run-%zu.log", d->tmpdir, idx + 1);
	datafd = open(d->datafile, O_RDONLY | O_CLOEXEC);
	logfd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (datafd < 0 || logfd < 0) {
		row_fail(r, "opening %s: %s", datafd < 0 ? d->datafile : r->log,
		    strerror(errno));
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	d->have_res = 0;
	d->extra_conns = 0;
	pthread_mutex_unlock(&d->lock);
	base = srv_bytes(d->srv);
	row_argv(d, r, connect, sizeof(connect), port, sizeof(port), prio,
	    sizeof(prio), argv);
	error = spawn(argv, datafd, logfd, 1, &pid);
	if (error != 0) {
		row_fail(r, "starting %s: %s", argv[0], strerror(error));
		pid = -1;
		goto out;
	}
	deadline = now_s() + DEMO_TIMEOUT_S + (double)(d->bytes / DEMO_RATE);
	for (;;) {
		now = now_s();
		if (!child_done && waitpid(pid, &status, WNOHANG) == pid) {
			child_done = 1;
			t_child = now;
		}
		pthread_mutex_lock(&d->lock);
		got = d->have_res;
		pthread_mutex_unlock(&d->lock);
		if (got && t_res == 0)
			t_res = now;
		if (child_done && got)
			break;
		/*
		 * The client failed and the server holds no connection: it
		 * most likely never connected.  A moment is left for the
		 * acceptor to take a connection from the backlog.
		 */
		if (child_done && (!WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) && now - t_child > 0.5 &&
		    srv_active(d->srv) == 0)
			break;
		if (child_done && now - t_child > DEMO_GRACE_S) {
			/* The client is gone; whatever the server still
			 * holds will not complete. */
			srv_abort_conns(d->srv);
			break;
		}
		if (got && !child_done && now - t_res > DEMO_GRACE_S) {
			kill_child(pid);
			pid = -1;
			status = -1;
			break;
		}
		if (now > deadline) {
			row_fail(r, "timed out after %.0f s",
			    (double)DEMO_TIMEOUT_S +
			    (double)(d->bytes / DEMO_RATE));
			kill_child(pid);
			pid = -1;
			srv_abort_conns(d->srv);
			break;
		}
		demo_progress(d, idx, r, srv_bytes(d->srv) - base);
		if (sigtimedwait(&d->sigs, NULL, &tick) > 0) {
			d->interrupted = 1;
			kill_child(pid);
			pid = -1;
			srv_abort_conns(d->srv);
			ret = -1;
			break;
		}
	}
	if (!child_done && pid > 0) {
		kill_child(pid);
		status = -1;
	}
	/* After an abort the server's report follows shortly. */
	for (now = now_s(); now_s() - now < DEMO_GRACE_S;) {
		pthread_mutex_lock(&d->lock);
		got = d->have_res;
		pthread_mutex_unlock(&d->lock);
		if (got || srv_active(d->srv) == 0)
			break;
		nanosleep(&tick, NULL);
	}
	pthread_mutex_lock(&d->lock);
	r->have_res = d->have_res;
	if (d->have_res)
		r->res = d->res;
	if (d->extra_conns > 0)
		row_fail(r, "%u unexpected connections", d->extra_conns);
	pthread_mutex_unlock(&d->lock);
	if (ret == 0)
		row_judge(d, r, status);
	demo_progress(d, idx, r, r->have_res ? r->res.bytes : 0);
out:
	if (datafd >= 0)
		close(datafd);
	if (logfd >= 0)
		close(logfd);
	return ret;
}

static double
row_mbs(const struct row *r)
{
	return r->res.seconds > 0 ? (double)r->res.bytes / 1e6 /
	    r->res.seconds : 0;
}

static void
row_line(const struct demo *d, size_t idx, const struct row *r)
{
	if (d->tty)
		return;
	fprintf(stderr, "demo: [%zu/%zu] %s %s %s: ", idx + 1, d->nrows,
	    peer_progs[r->peer].label, r->tls13 ? "TLSv1.3" : "TLSv1.2",
	    r->suite->aead);
	if (r->state == ROW_OK)
		fprintf(stderr, "ok, %llu bytes in %llu records, %.1f MB/s\n",
		    (unsigned long long)r->res.bytes,
		    (unsigned long long)r->res.records, row_mbs(r));
	else
		fprintf(stderr, "%s: %s\n", r->state == ROW_SKIPPED ?
		    "skipped" : "FAILED", r->note);
}

/* The last lines of a client's log, indented, for a failed run. */
static void
print_log_tail(const char *path)
{
	char buf[2048];
	ssize_t n;
	off_t size;
	int fd, lines = 0;
	char *p;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* Start at the sixth line from the end. */
	for (p = buf + n - 1; p > buf; p--) {
		if (*p == '\n' && p[1] != '\0' && ++lines > 6)
			break;
	}
	if (*p == '\n')
		p++;
	for (; *p != '\0'; p++) {
		if (p == buf || p[-1] == '\n')
			printf("    | ");
		putchar(*p >= 0x20 || *p == '\n' || *p == '\t' ? *p : '?');
	}
	if (n > 0 && buf[n - 1] != '\n')
		putchar('\n');
}

static int
demo_table(const struct demo *d)
{
	const struct row *r;
	size_t i;
	int failed = 0, ok = 0, skipped = 0;
	char mbs[16];

	printf("\n%-10s  %-7s  %-17s  %10s  %7s  %8s  %-8s  %s\n", "peer",
	    "version", "suite", "bytes", "records", "MB/s", "sha256", "result");
	for (i = 0; i < d->nrows; i++) {
		r = &d->rows[i];
		if (r->state == ROW_SKIPPED) {
			printf("%-10s  %-7s  %-17s  %10s  %7s  %8s  %-8s  "
			    "skipped\n", peer_progs[r->peer].label,
			    r->tls13 ? "TLSv1.3" : "TLSv1.2", r->suite->aead,
			    "-", "-", "-", "-");
			skipped++;
			continue;
		}
		snprintf(mbs, sizeof(mbs), "%.1f", row_mbs(r));
		printf("%-10s  %-7s  %-17s  %10llu  %7llu  %8s  %-8s  %s\n",
		    peer_progs[r->peer].label,
		    r->have_res && strcmp(r->res.version, "-") != 0 ?
		    r->res.version : r->tls13 ? "TLSv1.3" : "TLSv1.2",
		    r->suite->aead,
		    (unsigned long long)(r->have_res ? r->res.bytes : 0),
		    (unsigned long long)(r->have_res ? r->res.records : 0),
		    r->have_res ? mbs : "-",
		    r->sha_match ? "match" : "MISMATCH",
		    r->state == ROW_OK ? "ok" : "FAIL");
		if (r->state == ROW_OK)
			ok++;
		else
			failed++;
	}
	if (failed > 0) {
		printf("\nfailures:\n");
		for (i = 0; i < d->nrows; i++) {
			r = &d->rows[i];
			if (r->state != ROW_FAILED)
				continue;
			printf("  %s %s %s: %s\n", peer_progs[r->peer].label,
			    r->tls13 ? "TLSv1.3" : "TLSv1.2", r->suite->aead,
			    r->note);
			print_log_tail(r->log);
		}
	}
	for (i = 0; i < d->nrows; i++) {
		r = &d->rows[i];
		if (r->state == ROW_SKIPPED)
			printf("\nskipped %s %s %s: %s",
			    peer_progs[r->peer].label,
			    r->tls13 ? "TLSv1.3" : "TLSv1.2", r->suite->aead,
			    r->note);
	}
	printf("%s\n%d of %d runs ok, %d failed, %d skipped\n",
	    skipped > 0 ? "\n" : "", ok, ok + failed, failed, skipped);
	return failed;
}

static void
demo_cleanup(struct demo *d)
{
	size_t i;

	if (d->tmpdir[0] == '\0')
		return;
	for (i = 0; i < d->nrows; i++)
		if (d->rows[i].log[0] != '\0')
			unlink(d->rows[i].log);
	if (d->datafile[0] != '\0')
		unlink(d->datafile);
	rmdir(d->tmpdir);
}

int
cmd_demo(int argc, char **argv)
{
	struct srv_options opt;
	struct demo *d;
	const char *env, *tmp;
	char err[512], hex[65];
	size_t p, v, s, i;
	int error, status = 1, missing = 0;

	if (wants_help(argc, argv)) {
		fputs(demo_usage, stdout);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "uktls demo: takes no arguments\n%s",
		    demo_usage);
		return EXIT_USAGE;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		fprintf(stderr, "uktls demo: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->bytes = DEMO_BYTES_DEFAULT;
	env = getenv("UKTLS_DEMO_BYTES");
	if (env != NULL && *env != '\0' &&
	    parse_size(env, 1, DEMO_BYTES_MAX, &d->bytes) != 0) {
		fprintf(stderr, "uktls demo: UKTLS_DEMO_BYTES=%s: want a size "
		    "from 1 to 4g\n", env);
		status = EXIT_USAGE;
		goto out;
	}
	for (p = 0; p < NPEERS; p++) {
		d->have[p] = find_program(peer_progs[p].prog, d->prog[p],
		    sizeof(d->prog[p])) == 0;
		if (!d->have[p]) {
			fprintf(stderr, "uktls demo: %s not found in PATH; it "
			    "comes with the %s package (apt-get install "
			    "%s)\n", peer_progs[p].prog, peer_progs[p].package,
			    peer_progs[p].package);
			missing++;
		}
	}
	if (missing == NPEERS)
		goto out;

	/* Signals end the demo through the run loop, which kills the client
	 * and removes the files; the server's threads inherit the mask. */
	sigemptyset(&d->sigs);
	sigaddset(&d->sigs, SIGINT);
	sigaddset(&d->sigs, SIGTERM);
	sigaddset(&d->sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->tty = isatty(STDERR_FILENO);

	tmp = getenv("TMPDIR");
	snprintf(d->tmpdir, sizeof(d->tmpdir), "%s/uktls-demo.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(d->tmpdir) == NULL) {
		fprintf(stderr, "uktls demo: %s: %s\n", d->tmpdir,
		    strerror(errno));
		d->tmpdir[0] = '\0';
		goto out;
	}
	error = demo_make_data(d);
	if (error != 0) {
		fprintf(stderr, "uktls demo: writing %s: %s\n", d->datafile,
		    strerror(error));
		goto out;
	}

	memset(&opt, 0, sizeof(opt));
	opt.listen = "127.0.0.1:0";
	opt.hash = 1;
	opt.quiet = 1;
	opt.idle_timeout = DEMO_TIMEOUT_S;
	opt.done = demo_done;
	opt.done_arg = d;
	if (srv_start(&opt, &d->srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "uktls demo: %s\n", err);
		goto out;
	}

	for (p = 0; p < NPEERS; p++) {
		if (!d->have[p])
			continue;
		for (v = 0; v < 2; v++) {
			for (s = 0; s < NSUITES; s++) {
				struct row *r = &d->rows[d->nrows++];

				r->peer = (enum peer)p;
				r->tls13 = (int)v;
				r->suite = &demo_suites[s];
				demo_probe(d, r);
			}
		}
	}
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d->sha256[i]);
	printf("uktls demo: %zu runs, each sending %llu bytes "
	    "(sha256 %.16s...) to a uktls server on %s\n", d->nrows,
	    (unsigned long long)d->bytes, hex, srv_address(d->srv));
	fflush(stdout);
	for (i = 0; i < d->nrows; i++) {
		if (d->rows[i].state == ROW_SKIPPED) {
			row_line(d, i, &d->rows[i]);
			continue;
		}
		if (row_run(d, i, &d->rows[i]) != 0)
			break;
		row_line(d, i, &d->rows[i]);
	}
	if (d->tty)
		fprintf(stderr, "\r\033[K");
	if (d->interrupted) {
		fprintf(stderr, "uktls demo: interrupted\n");
		goto out;
	}
	status = demo_table(d) == 0 && missing == 0 ? 0 : 1;
	if (missing > 0)
		printf("(runs with a missing client program were left out)\n");
out:
	if (d->srv != NULL)
		srv_destroy(d->srv);
	demo_cleanup(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return status;
}
