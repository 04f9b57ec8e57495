/*
 * The uktls command: declarations shared by its subcommands.
 *
 * main.c dispatches to one cmd_*() per subcommand, each in its own file.
 * serve.c also holds the TLS server that both `uktls serve` and `uktls demo`
 * run (the srv_* interface below), cert.c the server's certificate, and
 * util.c small helpers: number parsing, clocks, child processes.
 */
#ifndef UKTLS_TOOLS_COMMON_H
#define UKTLS_TOOLS_COMMON_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* The Makefile may pass -DUKTLS_VERSION="..."; otherwise this one. */
#ifndef UKTLS_VERSION
#define UKTLS_VERSION "0.1.0"
#endif

/* Exit status for a command line that cannot be understood (sysexits). */
#define EXIT_USAGE 64

/* Subcommands.  Each gets argv from its own name on and returns the exit
 * status. */
int cmd_serve(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* ---- util.c ------------------------------------------------------------- */

/* A monotonic clock in seconds. */
double now_s(void);

/*
 * Parse a decimal number with an optional k, m or g suffix (powers of 1024)
 * that must lie in [min, max].  0 or EINVAL / ERANGE.
 */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* The most recent OpenSSL error of this thread as text, and clear them. */
void ssl_errstr(char *buf, size_t len);

/* Is argv[1] a request for help (-h, --help)? */
int wants_help(int argc, char **argv);

/*
 * The absolute path of program name found in $PATH, in buf.  0 or ENOENT.
 */
int find_program(const char *name, char *buf, size_t len);

/*
 * Start argv[0] (an absolute path) with stdin from in_fd and stdout and
 * stderr to out_fd (-1: /dev/null, SPAWN_INHERIT: ours), default signal
 * dispositions and an empty signal mask; with newpgrp in a process group of
 * its own so that kill_child() can end it whole.  0 or an errno value.
 */
#define SPAWN_INHERIT (-2)
int spawn(char *const argv[], int in_fd, int out_fd, int newpgrp,
    pid_t *pidp);

/*
 * Run argv to completion (at most timeout_ms) with its stdout captured in
 * buf (NUL-terminated, truncated to len - 1) and stderr discarded; *status
 * gets the wait status, or -1 if it had to be killed.  0 or an errno value.
 */
int run_capture(char *const argv[], char *buf, size_t len, int timeout_ms,
    int *status);

/* Kill a child's process group (SIGTERM, then SIGKILL) and reap it. */
void kill_child(pid_t pid);

/* Write all of buf; 0 or an errno value. */
int write_all(int fd, const void *buf, size_t len);

/* ---- cert.c ------------------------------------------------------------- */

/*
 * Give ctx its certificate: the chain in cert_file and the key in key_file
 * (PEM), or with both NULL an ephemeral self-signed EC P-256 one made in
 * memory.  desc gets one line describing it (subject, SHA-256 fingerprint);
 * err the reason on failure.  0 or an errno value.
 */
int cert_setup(SSL_CTX *ctx, const char *cert_file, const char *key_file,
    char *desc, size_t desclen, char *err, size_t errlen);

/* ---- serve.c: the server of `uktls serve` and `uktls demo` -------------- */

/* How one connection ended. */
struct conn_result {
	unsigned long id;        /* 1 for the first connection accepted */
	char peer[64];           /* ADDR:PORT */
	char version[16];        /* "TLSv1.3", or "-" before the handshake */
	char suite[64];          /* OpenSSL's name, "TLS_AES_128_GCM_SHA256" */
	char aead[24];           /* "AES-128-GCM", "AES-256-GCM", ... */
	char out[256];           /* where the plaintext went, "" if nowhere */
	uint64_t records;        /* application_data records */
	uint64_t bytes;          /* application_data plaintext bytes */
	uint64_t hs_records;     /* handshake records after the hand-off */
	uint64_t tickets;        /* NewSessionTicket messages among them */
	double seconds;          /* from the hand-off to the end */
	int clean;               /* ended by the peer's close_notify */
	int error;               /* 0, or an errno value */
	char errmsg[200];        /* why, when error != 0 */
	int hashed;
	unsigned char sha256[32];/* of the plaintext, when hashed */
};

struct srv_options {
	const char *listen;       /* "ADDR:PORT"; NULL: 127.0.0.1:0 */
	const char *cert_file;    /* both NULL: ephemeral certificate */
	const char *key_file;
	const char *out;          /* NULL: discard, "-": stdout, FILE, DIR */
	int version;              /* 0: 1.2 and 1.3, or TLS1_2/3_VERSION */
	const char *ciphers;      /* NULL: every AEAD suite uktls decrypts */
	unsigned long max_conns;  /* accept this many, then stop; 0: no limit */
	unsigned int idle_timeout;/* seconds a read may wait; 0: forever */
	int hash;                 /* SHA-256 of each connection's plaintext */
	int quiet;                /* no per-connection line on stderr */
	/* Called on the connection's thread as it ends. */
	void (*done)(const struct conn_result *, void *);
	void *done_arg;
};

struct srv;

/*
 * Configure the engine (counters published unless UKTLS_STATS=0), make the
 * TLS context and listening socket, and start accepting on a thread.  err
 * gets the reason on failure.  0 or an errno value.
 */
int srv_start(const struct srv_options *opt, struct srv **srvp, char *err,
    size_t errlen);
/* The address it listens on, "127.0.0.1:34567". */
const char *srv_address(const struct srv *s);
unsigned int srv_port(const struct srv *s);
/* One line describing the certificate. */
const char *srv_cert_desc(const struct srv *s);
/* Plaintext bytes received by all connections so far. */
uint64_t srv_bytes(struct srv *s);
/* Has it accepted max_conns connections and seen them all end? */
int srv_finished(struct srv *s);
/* Connections open now. */
unsigned int srv_active(struct srv *s);
/* Connections that ended with an error so far. */
unsigned long srv_failures(struct srv *s);
/* End every connection now (each reports an error "interrupted"). */
void srv_abort_conns(struct srv *s);
/*
 * Stop accepting, end every connection, wait for them and free it all.
 * Returns how many connections ended with an error.
 */
unsigned long srv_destroy(struct srv *s);

/* Short name of a suite's AEAD cipher, from the cipher's NID. */
const char *aead_name(int nid);

#endif /* UKTLS_TOOLS_COMMON_H */
