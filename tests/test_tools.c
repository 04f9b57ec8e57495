/*
 * Tests of the uktls command, run as a real process: build/uktls (or
 * $UKTLS_BIN) serving real `openssl s_client` peers, `uktls stat` reading a
 * running server's published counters, and `uktls demo` against both
 * openssl and gnutls-cli.  Run from the repository root, as make check does.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tlsgen.h"
#include "tlspeer.h"

extern char **environ;

/* The test's own files live here; removed at the end when all passed. */
static char tdir[PATH_MAX - 64];

struct proc {
	pid_t pid;
	char out[PATH_MAX]; /* its stdout */
	char err[PATH_MAX]; /* its stderr */
};

static const char *
uktls_bin(void)
{
	const char *b = getenv("UKTLS_BIN");

	return b != NULL && *b != '\0' ? b : "build/uktls";
}

static int
have_program(const char *name)
{
	char path[PATH_MAX];
	const char *p, *colon, *env = getenv("PATH");

	if (env == NULL)
		return 0;
	for (p = env; *p != '\0'; p = *colon != '\0' ? colon + 1 : colon) {
		colon = strchr(p, ':');
		if (colon == NULL)
			colon = p + strlen(p);
		if (snprintf(path, sizeof(path), "%.*s/%s", (int)(colon - p), p,
		    name) < (int)sizeof(path) && access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

/*
 * Start argv (looked up in $PATH) with stdin from in_path (NULL:
 * /dev/null, or in_fd when in_path is NULL and in_fd >= 0), stdout and
 * stderr to tdir/tag.out and tdir/tag.err.  0 or an errno value.
 */
static int
proc_start(struct proc *p, char *const argv[], const char *in_path, int in_fd,
    const char *tag)
{
	posix_spawn_file_actions_t fa;
	int error;

	snprintf(p->out, sizeof(p->out), "%s/%s.out", tdir, tag);
	snprintf(p->err, sizeof(p->err), "%s/%s.err", tdir, tag);
	posix_spawn_file_actions_init(&fa);
	if (in_path == NULL && in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, in_path != NULL ?
		    in_path : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, p->out,
	    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, p->err,
	    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	error = posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (error != 0)
		p->pid = -1;
	return error;
}

/* Wait for p to exit; its exit code, 128 + signal, or -1 after a kill. */
static int
proc_wait(struct proc *p, int timeout_ms)
{
	double deadline = tg_now() + timeout_ms * TG_TIME_MUL / 1000.0;
	int status;
	pid_t r;

	if (p->pid <= 0)
		return -1;
	for (;;) {
		r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (tg_now() > deadline) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			p->pid = -1;
			return -1;
		}
		tg_sleep_ms(20);
	}
	p->pid = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static char *
slurp(const char *path, size_t *lenp)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf != NULL && len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf != NULL)
		buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

/*
 * Wait until the file holds a line starting with prefix; copy that line
 * (without its newline) to line.  0 or -1 on timeout.
 */
static int
wait_line(const char *path, const char *prefix, char *line, size_t len,
    int timeout_ms)
{
	double deadline = tg_now() + timeout_ms * TG_TIME_MUL / 1000.0;
	char *text, *p, *end;

	for (;;) {
		text = slurp(path, NULL);
		for (p = text; p != NULL && *p != '\0'; p = end + 1) {
			end = strchr(p, '\n');
			if (end == NULL)
				break;
			if (strncmp(p, prefix, strlen(prefix)) == 0) {
				snprintf(line, len, "%.*s", (int)(end - p), p);
				free(text);
				return 0;
			}
		}
		free(text);
		if (tg_now() > deadline)
			return -1;
		tg_sleep_ms(20);
	}
}

/* The number after "key" (as "key=N" or "key   N") in text, or -1. */
static long long
field(const char *text, const char *key)
{
	const char *p = text;
	size_t kl = strlen(key);

	while ((p = strstr(p, key)) != NULL) {
		if ((p == text || p[-1] == ' ' || p[-1] == '\n') &&
		    (p[kl] == '=' || p[kl] == ' ')) {
			p += kl;
			while (*p == '=' || *p == ' ')
				p++;
			return strtoll(p, NULL, 10);
		}
		p += kl;
	}
	return -1;
}

static int
files_equal(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	int eq = x != NULL && y != NULL && la == lb && memcmp(x, y, la) == 0;

	free(x);
	free(y);
	return eq;
}

/* write(2) all of buf (tg_write_all sends, for sockets only). */
static ssize_t
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
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
	return (ssize_t)len;
}

/* Write n bytes from a fixed seed to path.  0 or -1. */
static int
make_input(const char *path, size_t n, uint64_t seed)
{
	struct tg_rng rng = { seed };
	char *buf = malloc(n);
	int fd, r = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (buf != NULL && fd >= 0) {
		tg_rng_fill(&rng, buf, n);
		r = write_full(fd, buf, n) == (ssize_t)n ? 0 : -1;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* Run a uktls subcommand to completion; its exit code. */
static int
run_uktls(const char *tag, char *a1, char *a2, char *a3, struct proc *p)
{
	char *argv[] = { (char *)uktls_bin(), a1, a2, a3, NULL };

	if (proc_start(p, argv, NULL, -1, tag) != 0)
		return -1;
	return proc_wait(p, 60000);
}

/* Start `uktls serve` and find its port.  0 or -1 after a failure. */
static int
serve_start(struct proc *srv, char *port, size_t plen, char **extra,
    const char *tag)
{
	char *argv[16], line[256];
	int i = 0;

	argv[i++] = (char *)uktls_bin();
	argv[i++] = "serve";
	argv[i++] = "--listen";
	argv[i++] = "127.0.0.1:0";
	while (*extra != NULL && i < 15)
		argv[i++] = *extra++;
	argv[i] = NULL;
	if (proc_start(srv, argv, NULL, -1, tag) != 0) {
		harness_fail(__FILE__, __LINE__, "cannot start %s", argv[0]);
		return -1;
	}
	if (wait_line(srv->err, "listening on 127.0.0.1:", line, sizeof(line),
	    10000) != 0) {
		harness_fail(__FILE__, __LINE__, "serve printed no "
		    "\"listening on\" line");
		kill(srv->pid, SIGKILL);
		proc_wait(srv, 5000);
		return -1;
	}
	snprintf(port, plen, "%s", line + strlen("listening on 127.0.0.1:"));
	return 0;
}

static int
s_client(const char *port, const char *input, const char *version,
    const char *cipher_opt, const char *cipher, const char *tag)
{
	char connect[64], *argv[16];
	struct proc p;
	int i = 0;

	snprintf(connect, sizeof(connect), "127.0.0.1:%s", port);
	argv[i++] = "openssl";
	argv[i++] = "s_client";
	argv[i++] = "-connect";
	argv[i++] = connect;
	argv[i++] = "-quiet";
	argv[i++] = "-no_ign_eof";
	argv[i++] = "-nocommands";
	argv[i++] = (char *)version;
	if (cipher_opt != NULL) {
		argv[i++] = (char *)cipher_opt;
		argv[i++] = (char *)cipher;
	}
	argv[i] = NULL;
	if (proc_start(&p, argv, input, -1, tag) != 0)
		return -1;
	return proc_wait(&p, 60000);
}

static int
binary_present(void)
{
	if (access(uktls_bin(), X_OK) == 0)
		return 1;
	harness_fail(__FILE__, __LINE__, "%s is not built (make)",
	    uktls_bin());
	return 0;
}

/*
 * The shared library loads with dlopen() (its thread-local variables fit
 * the static TLS a loaded library may take) and exports the API and nothing
 * else: internal names such as m_get must not clash with an application's.
 */
TEST(shared_library_exports)
{
	static const char *const api[] = { "uktls_setsockopt",
		"uktls_recvmsg", "uktls_read", "uktls_close", "uktls_poll",
		"uktls_recv_zc", "uktls_get_stats", "uktls_configure" };
	static const char *const internal[] = { "m_get", "m_free", "m_split",
		"sbcut_locked", "sbappend_ktls_rx", "ktls_decrypt_locked",
		"ktls_rx_help_locked", "ktls_config", "ktls_stats", "so_lookup",
		"input_start", "tls_check_header" };
	const char *lib = getenv("UKTLS_SO");
	void *h;
	size_t i;

	if (lib == NULL || *lib == '\0')
		lib = "build/libuktls.so";
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		fprintf(stderr, "  ... dlopen %s: %s\n", lib, dlerror());
	REQUIRE(h != NULL);
	for (i = 0; i < sizeof(api) / sizeof(api[0]); i++) {
		CHECK(dlsym(h, api[i]) != NULL);
		if (harness_cur_failed != 0) {
			fprintf(stderr, "  ... %s not exported\n", api[i]);
			break;
		}
	}
	for (i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		CHECK(dlsym(h, internal[i]) == NULL);
		if (harness_cur_failed != 0) {
			fprintf(stderr, "  ... %s exported\n", internal[i]);
			break;
		}
	}
	dlclose(h);
}

TEST(help_and_version)
{
	struct proc p;
	char *text;

	REQUIRE(binary_present());
	CHECK_EQ(run_uktls("help", "--help", NULL, NULL, &p), 0);
	text = slurp(p.out, NULL);
	REQUIRE(text != NULL);
	CHECK(strstr(text, "usage: uktls") != NULL);
	CHECK(strstr(text, "serve") != NULL && strstr(text, "demo") != NULL &&
	    strstr(text, "stat") != NULL && strstr(text, "bench") != NULL);
	free(text);
	CHECK_EQ(run_uktls("serve-help", "serve", "--help", NULL, &p), 0);
	text = slurp(p.out, NULL);
	CHECK(text != NULL && strstr(text, "--max-conns") != NULL);
	free(text);
	CHECK_EQ(run_uktls("version", "version", NULL, NULL, &p), 0);
	text = slurp(p.out, NULL);
	CHECK(text != NULL && strncmp(text, "uktls ", 6) == 0);
	free(text);
	CHECK(run_uktls("bad", "no-such-command", NULL, NULL, &p) != 0);
	CHECK(run_uktls("bad-opt", "serve", "--no-such-option", NULL, &p) != 0);
	CHECK(run_uktls("demo-arg", "demo", "extra", NULL, &p) != 0);
}

/*
 * Two connections, TLS 1.3 then TLS 1.2: each one's plaintext lands in its
 * file byte for byte, each ends with a summary line, `uktls stat` sees the
 * running server's counters, and the server exits 0 after --max-conns and
 * removes its published counters.
 */
TEST(serve_openssl_and_stat)
{
	char in[PATH_MAX], out[PATH_MAX], out2[PATH_MAX], port[16];
	char line[1024], pidstr[16], shm[64], want[64];
	char *extra[] = { "--out", out, "--max-conns", "2", "--sha256", NULL };
	size_t n = (1024 * 1024 + 321) / TG_SCALE_DIV;
	struct proc srv, st;
	char *text;

	REQUIRE(binary_present());
	if (!have_program("openssl")) {
		printf("  skip: no openssl program (openssl package)\n");
		return;
	}
	snprintf(in, sizeof(in), "%s/serve.in", tdir);
	snprintf(out, sizeof(out), "%s/serve.out", tdir);
	snprintf(out2, sizeof(out2), "%s/serve.out.2", tdir);
	REQUIRE(make_input(in, n, 42) == 0);
	REQUIRE(serve_start(&srv, port, sizeof(port), extra, "serve") == 0);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)srv.pid);

	CHECK_EQ(s_client(port, in, "-tls1_3", NULL, NULL, "client1"), 0);
	CHECK_EQ(wait_line(srv.err, "conn 1 ", line, sizeof(line), 20000), 0);
	CHECK(strstr(line, "version=TLSv1.3") != NULL);
	CHECK(strstr(line, "peer=127.0.0.1:") != NULL);
	CHECK(strstr(line, "suite=TLS_") != NULL);
	CHECK(strstr(line, "MB/s=") != NULL && strstr(line, "seconds=") !=
	    NULL);
	CHECK_EQ(field(line, "bytes"), (long long)n);
	CHECK(field(line, "records") > 0);
	CHECK(strlen(line) > 3 && strcmp(line + strlen(line) - 3, " ok") == 0);
	CHECK(files_equal(in, out));

	/* The server still runs (one connection to go): read its counters. */
	CHECK_EQ(run_uktls("stat", "stat", pidstr, NULL, &st), 0);
	text = slurp(st.out, NULL);
	REQUIRE(text != NULL);
	CHECK(field(text, "records_decrypted") > 0);
	CHECK(field(text, "bytes_decrypted") >= (long long)n);
	CHECK(field(text, "sockets_enabled") == 1);
	CHECK(strstr(text, "crypto_backend") != NULL);
	free(text);
	CHECK_EQ(run_uktls("stat-json", "stat", "--json", pidstr, &st), 0);
	text = slurp(st.out, NULL);
	REQUIRE(text != NULL);
	snprintf(want, sizeof(want), "\"pid\":%s,", pidstr);
	CHECK(text[0] == '[' && strstr(text, want) != NULL);
	CHECK(strstr(text, "\"records_decrypted\":") != NULL);
	CHECK(strstr(text, "\"records_decrypted\":0,") == NULL);
	free(text);
	/* With no pid it finds the server among the publishing processes. */
	CHECK_EQ(run_uktls("stat-all", "stat", NULL, NULL, &st), 0);
	text = slurp(st.out, NULL);
	snprintf(want, sizeof(want), "pid %s ", pidstr);
	CHECK(text != NULL && strstr(text, want) != NULL);
	free(text);

	CHECK_EQ(s_client(port, in, "-tls1_2", "-cipher",
	    "ECDHE-ECDSA-CHACHA20-POLY1305", "client2"), 0);
	CHECK_EQ(proc_wait(&srv, 20000), 0);
	REQUIRE_EQ(wait_line(srv.err, "conn 2 ", line, sizeof(line), 1000), 0);
	CHECK(strstr(line, "version=TLSv1.2") != NULL);
	CHECK(strstr(line, "suite=ECDHE-ECDSA-CHACHA20-POLY1305") != NULL);
	CHECK_EQ(field(line, "bytes"), (long long)n);
	CHECK(strstr(line, " ok") != NULL);
	CHECK(files_equal(in, out2));

	/* A clean exit removes the published counters. */
	snprintf(shm, sizeof(shm), "/dev/shm/uktls.%s", pidstr);
	CHECK(access(shm, F_OK) != 0);
	CHECK(run_uktls("stat-gone", "stat", pidstr, NULL, &st) != 0);
	unlink(in);
	unlink(out);
	unlink(out2);
}

/* Wait (10 s at most) until path holds len bytes: serve wrote them. */
static void
wait_file_len(const char *path, size_t len)
{
	struct stat st;

	for (int i = 0; i < 500 * TG_TIME_MUL; i++) {
		if (stat(path, &st) == 0 && (size_t)st.st_size == len)
			return;
		tg_sleep_ms(20);
	}
}

/*
 * The end both tests below expect: serve exits 1 with an error that names
 * the missing close_notify (and the reset when reset is set), after
 * writing the 13 bytes that came.
 */
static void
check_unclean_end(struct proc *srv, const char *out, int reset)
{
	char line[1024], *text;

	CHECK_EQ(proc_wait(srv, 20000), 1);
	REQUIRE_EQ(wait_line(srv->err, "conn 1 ", line, sizeof(line), 1000),
	    0);
	CHECK(strstr(line, "error=\"") != NULL);
	CHECK(strstr(line, "close_notify") != NULL);
	if (reset)
		CHECK(strstr(line, "reset") != NULL);
	CHECK_EQ(field(line, "bytes"), 13);
	text = slurp(out, NULL);
	CHECK(text != NULL && strcmp(text, "partial data\n") == 0);
	free(text);
}

/*
 * A peer that vanishes without close_notify: the connection ends with an
 * error naming the truncation, what arrived before is written, and serve
 * exits 1.  The killed client's kernel sends a FIN, or a reset when a
 * session ticket was still unread in its buffer; both must say so.
 */
TEST(serve_truncated)
{
	char out[PATH_MAX], port[16], connect[64];
	char *extra[] = { "--out", out, "--max-conns", "1", NULL };
	char *argv[] = { "openssl", "s_client", "-connect", connect, "-quiet",
		"-nocommands", NULL };
	struct proc srv, cli;
	int fds[2];

	REQUIRE(binary_present());
	if (!have_program("openssl")) {
		printf("  skip: no openssl program (openssl package)\n");
		return;
	}
	snprintf(out, sizeof(out), "%s/trunc.out", tdir);
	REQUIRE(serve_start(&srv, port, sizeof(port), extra, "trunc") == 0);
	snprintf(connect, sizeof(connect), "127.0.0.1:%s", port);
	REQUIRE(pipe(fds) == 0);
	REQUIRE(proc_start(&cli, argv, NULL, fds[0], "trunc-client") == 0);
	close(fds[0]);
	CHECK_EQ(write_full(fds[1], "partial data\n", 13), 13);
	/* Wait until the server has written the data, then kill the client
	 * so that it cannot send close_notify. */
	wait_file_len(out, 13);
	kill(cli.pid, SIGKILL);
	proc_wait(&cli, 10000);
	close(fds[1]);
	check_unclean_end(&srv, out, 0);
	unlink(out);
}

/*
 * An OpenSSL client of serve at 127.0.0.1:port, handshake done: its
 * socket, with *ctx and *ssl for the caller to free.
 */
static int
serve_client(const char *port, SSL_CTX **ctx, SSL **ssl)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd;

	*ctx = NULL;
	*ssl = NULL;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)atoi(port));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 &&
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    (*ctx = tp_ossl_ctx(0, 0, NULL)) != NULL &&
	    (*ssl = SSL_new(*ctx)) != NULL && SSL_set_fd(*ssl, fd) == 1 &&
	    tp_ossl_handshake(*ssl, fd) == 1)
		return fd;
	harness_fail(__FILE__, __LINE__, "no TLS connection to serve on "
	    "port %s: %s", port, tp_ossl_errstr());
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * A peer that resets the connection after its data (a close with SO_LINGER
 * of zero, as a killed client with unread data does): the data that came
 * before is written, and the error names both the reset and the missing
 * close_notify.
 */
TEST(serve_reset)
{
	char out[PATH_MAX], port[16];
	char *extra[] = { "--out", out, "--max-conns", "1", NULL };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct proc srv;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd = -1;

	REQUIRE(binary_present());
	snprintf(out, sizeof(out), "%s/reset.out", tdir);
	REQUIRE(serve_start(&srv, port, sizeof(port), extra, "reset") == 0);
	fd = serve_client(port, &ctx, &ssl);
	REQUIRE(fd >= 0);
	CHECK_EQ(SSL_write(ssl, "partial data\n", 13), 13);
	wait_file_len(out, 13);
	CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	check_unclean_end(&srv, out, 1);
	unlink(out);
}

/*
 * --idle-timeout applies to the connection uktls receives on: a peer that
 * goes quiet after its data is dropped after that many seconds (not the
 * handshake's 30), with an error that says so; what it sent is written.
 * `uktls stat` sees the server before its first connection.
 */
TEST(serve_idle_timeout)
{
	char out[PATH_MAX], port[16], line[1024], pid[16], *text;
	char *extra[] = { "--out", out, "--max-conns", "1", "--idle-timeout",
		"1", NULL };
	struct proc srv, st;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd = -1;

	REQUIRE(binary_present());
	snprintf(out, sizeof(out), "%s/idle.out", tdir);
	REQUIRE(serve_start(&srv, port, sizeof(port), extra, "idle") == 0);
	/* Its counters are published from the start, not the first
	 * connection. */
	snprintf(pid, sizeof(pid), "%d", (int)srv.pid);
	CHECK_EQ(run_uktls("idle-stat", "stat", pid, NULL, &st), 0);
	fd = serve_client(port, &ctx, &ssl);
	REQUIRE(fd >= 0);
	CHECK_EQ(SSL_write(ssl, "then silence\n", 13), 13);
	/* Well before the handshake's timeout would have ended it. */
	CHECK_EQ(wait_line(srv.err, "conn 1 ", line, sizeof(line),
	    10000 * TG_TIME_MUL), 0);
	CHECK(strstr(line, "nothing received for 1 s") != NULL);
	CHECK_EQ(field(line, "bytes"), 13);
	CHECK_EQ(proc_wait(&srv, 20000), 1);
	text = slurp(out, NULL);
	CHECK(text != NULL && strcmp(text, "then silence\n") == 0);
	free(text);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	unlink(out);
}

/*
 * Arguments that cannot work are refused before serve listens: a port
 * past 65535, an output directory where no file can be made, a missing
 * certificate file (named, with the system's reason).
 */
TEST(serve_bad_arguments)
{
	char *argv[] = { (char *)uktls_bin(), "serve", "--cert",
		"/nonexistent/cert.pem", "--key", "/nonexistent/key.pem", NULL };
	struct proc p;
	char *text;

	REQUIRE(binary_present());
	CHECK_EQ(run_uktls("port", "serve", "--listen", "127.0.0.1:70000",
	    &p), 1);
	text = slurp(p.err, NULL);
	CHECK(text != NULL && strstr(text, "0 to 65535") != NULL);
	free(text);
	/* A directory no file can be made in, whoever runs the test. */
	CHECK_EQ(run_uktls("outdir", "serve", "--out", "/proc", &p), 1);
	text = slurp(p.err, NULL);
	CHECK(text != NULL && strstr(text, "--out /proc") != NULL);
	free(text);
	REQUIRE(proc_start(&p, argv, NULL, -1, "nocert") == 0);
	CHECK_EQ(proc_wait(&p, 60000), 1);
	text = slurp(p.err, NULL);
	CHECK(text != NULL &&
	    strstr(text, "/nonexistent/cert.pem: No such file") != NULL);
	free(text);
}

/*
 * uktls demo against the real clients: every row must match.  Sanitizer
 * builds make it small; it is the test that is sanitized, not the binary,
 * but the time budget of those runs is shared.
 */
TEST(demo)
{
	struct proc p;
	char *text, *line, *end;
	int rc, rows = 0, bad = 0, missing;

	REQUIRE(binary_present());
	if (getenv("UKTLS_DEMO_BYTES") == NULL)
		setenv("UKTLS_DEMO_BYTES", TG_SANITIZED ? "128k" : "2m", 1);
	missing = !have_program("openssl") || !have_program("gnutls-cli");
	rc = run_uktls("demo", "demo", NULL, NULL, &p);
	if (missing) {
		/* It must say which package is missing, and fail. */
		CHECK(rc != 0);
		text = slurp(p.err, NULL);
		CHECK(text != NULL && (strstr(text, "gnutls-bin") != NULL ||
		    strstr(text, "openssl package") != NULL));
		free(text);
		printf("  skip: demo needs openssl and gnutls-cli "
		    "(gnutls-bin)\n");
		return;
	}
	CHECK_EQ(rc, 0);
	text = slurp(p.out, NULL);
	REQUIRE(text != NULL);
	CHECK(strstr(text, "peer") != NULL && strstr(text, "sha256") != NULL);
	for (line = text; *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		if (end == NULL)
			break;
		*end = '\0';
		if (strncmp(line, "s_client ", 9) != 0 &&
		    strncmp(line, "gnutls-cli ", 11) != 0)
			continue;
		if (strstr(line, "skipped") != NULL)
			continue;
		rows++;
		if (strstr(line, " match ") == NULL ||
		    strcmp(end - 3, " ok") != 0) {
			bad++;
			printf("  bad row: %s\n", line);
		}
	}
	/* Six per client, less any suite a client lacks. */
	CHECK(rows >= 2);
	CHECK(rows <= 12);
	CHECK_EQ(bad, 0);
	if (rc != 0 || bad != 0) {
		free(text);
		text = slurp(p.err, NULL);
		printf("%s", text != NULL ? text : "");
	}
	free(text);
}

/* tdir holds plain files only. */
static void
remove_tdir(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	d = opendir(tdir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", tdir, de->d_name) <
		    (int)sizeof(path))
			unlink(path);
	}
	closedir(d);
	rmdir(tdir);
}

int
main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	int r;

	signal(SIGPIPE, SIG_IGN);
	tg_watchdog(600 * TG_TIME_MUL);
	snprintf(tdir, sizeof(tdir), "%s/uktls-test-tools.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(tdir) == NULL) {
		perror(tdir);
		return 1;
	}
	r = harness_main(argc, argv);
	/* Keep the logs of a failed run for a look. */
	if (r == 0)
		remove_tdir();
	else
		fprintf(stderr, "logs kept in %s\n", tdir);
	return r;
}
