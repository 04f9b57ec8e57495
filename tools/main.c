/*
 * uktls: the command.  Dispatches to one subcommand per file (serve.c,
 * demo.c, stat.c, bench.c) and answers --help and version itself.
 */
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <openssl/crypto.h>

#include "common.h"
#include "uktls.h"

static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "serve", cmd_serve,
	  "TLS server receiving through uktls, plaintext to a file or stdout" },
	{ "demo", cmd_demo,
	  "end-to-end run against the openssl and gnutls-cli programs" },
	{ "stat", cmd_stat,
	  "counters of the processes that publish them" },
	{ "bench", cmd_bench,
	  "run the benchmark programs (build them with `make bench`)" },
	{ "version", cmd_version,
	  "versions of uktls and of the libraries it uses" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
	    "usage: uktls COMMAND [OPTIONS]\n"
	    "       uktls COMMAND --help\n"
	    "\n"
	    "Kernel TLS receive offload in userspace: after a TLS handshake\n"
	    "the receive side of a TCP connection is handed to uktls, which\n"
	    "reads and decrypts its records on its own threads.\n"
	    "\n"
	    "commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
		    commands[i].summary);
	fprintf(f,
	    "\n"
	    "Engine settings come from UKTLS_WORKERS, UKTLS_PIN_WORKERS,\n"
	    "UKTLS_INPUT_THREADS, UKTLS_RCVBUF, UKTLS_POOL_MAX, UKTLS_STATS,\n"
	    "UKTLS_INLINE_DECRYPT and UKTLS_SPIN_US; UKTLS_CRYPTO=openssl or\n"
	    "ipsecmb forces a crypto backend.\n");
}

int
cmd_version(int argc, char **argv)
{
	struct uktls_stats st;

	if (wants_help(argc, argv)) {
		printf("usage: uktls version\n\n"
		    "Print the versions of uktls, OpenSSL and GnuTLS, and the "
		    "crypto backend\nuktls decrypts with.\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: uktls version\n");
		return EXIT_USAGE;
	}
	printf("uktls %s\n", UKTLS_VERSION);
	printf("OpenSSL %s (built with %s)\n",
	    OpenSSL_version(OPENSSL_FULL_VERSION_STRING),
	    OPENSSL_FULL_VERSION_STR);
	printf("GnuTLS %s (built with %s)\n", gnutls_check_version(NULL),
	    GNUTLS_VERSION);
	if (uktls_get_stats(&st) == 0)
		printf("crypto backend: %s\n", st.crypto_backend);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv + 1);
	/* "uktls help CMD" is "uktls CMD --help". */
	if (strcmp(argv[1], "help") == 0) {
		if (argc == 2) {
			usage(stdout);
			return 0;
		}
		for (i = 0; i < NCOMMANDS; i++) {
			if (strcmp(argv[2], commands[i].name) == 0) {
				char *hargv[] = { argv[2], "--help", NULL };

				return commands[i].fn(2, hargv);
			}
		}
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "uktls: unknown command '%s'\n\n",
	    strcmp(argv[1], "help") == 0 ? argv[2] : argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
