/*
 * uktls stat: the engine counters of processes that publish them
 * (uktls_config.publish_stats or UKTLS_STATS=1; `uktls serve` always does),
 * read from their shared-memory objects /dev/shm/uktls.<pid> through
 * uktls_get_stats_pid().
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "uktls.h"

/* As many work queues as one process can publish. */
#define STAT_MAXWQ 256
#define STAT_MAXPIDS 4096

struct pstat {
	pid_t pid;
	char comm[64];
	struct uktls_stats st;
	uint64_t wq[STAT_MAXWQ];
	unsigned int nwq;
};

/* The counters, by the names of struct uktls_stats (text and JSON alike). */
#define STAT_FIELDS(X)                                                     \
	X(sockets_enabled) X(sockets_active)                               \
	X(records_decrypted) X(bytes_decrypted) X(bytes_received)          \
	X(err_bad_tag) X(err_bad_header) X(err_bad_length)                 \
	X(err_truncated) X(err_nomem) X(records_cancelled)                 \
	X(records_split)                                                   \
	X(wq_enqueued) X(wq_depth_max)                                     \
	X(pool_mbufs_total) X(pool_mbufs_free)                             \
	X(pool_clusters_total) X(pool_clusters_free) X(pool_bytes)

static const char stat_usage[] =
"usage: uktls stat [--json] [PID ...]\n"
"\n"
"Print the uktls engine counters of each process PID, or with no PID of\n"
"every live process that publishes them (/dev/shm/uktls.<pid>).  A process\n"
"publishes when it sets uktls_config.publish_stats or runs with\n"
"UKTLS_STATS=1; `uktls serve` and `uktls demo` do by default.\n"
"\n"
"  -j, --json  one JSON array with an object per process\n"
"\n"
"Counters, named as in struct uktls_stats (uktls_get_stats_pid()):\n"
"  sockets_enabled, sockets_active    RX enables ever, sockets open now\n"
"  records_decrypted, bytes_decrypted records and plaintext bytes\n"
"  bytes_received                     ciphertext bytes read from sockets\n"
"  err_bad_tag, err_bad_header,       errors by kind (EBADMSG, EINVAL,\n"
"  err_bad_length, err_truncated,     EMSGSIZE, EMSGSIZE at EOF, ENOBUFS)\n"
"  err_nomem, records_cancelled       and records cut while decrypting\n"
"  records_split                      records that came in several buffers\n"
"  wq_enqueued, wq_depth_max,         work queues: sockets queued, deepest\n"
"  wq_depth                           queue seen, current depth of each\n"
"  pool_*                             mbufs and clusters (total, free), bytes\n"
"  crypto_backend, workers, input_threads\n"
"Exit status: 0 when every PID given was read (with no PID: when at least\n"
"one process was), 1 otherwise.\n";

static void
read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(buf, (int)len, f) != NULL) {
		n = strlen(buf);
		if (n > 0 && buf[n - 1] == '\n')
			buf[n - 1] = '\0';
	}
	fclose(f);
}

static int
stat_read(pid_t pid, struct pstat *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->pid = pid;
	ps->nwq = STAT_MAXWQ;
	read_comm(pid, ps->comm, sizeof(ps->comm));
	return uktls_get_stats_pid(pid, &ps->st, ps->wq, &ps->nwq);
}

static const char *
stat_strerror(int error)
{
	switch (error) {
	case ENOENT:
		return "does not publish uktls counters (run it with "
		    "UKTLS_STATS=1)";
	case ESRCH:
		return "no such process (stale counters)";
	case EPROTO:
		return "publishes counters of another uktls version";
	case EACCES:
		return "permission denied";
	default:
		return strerror(error);
	}
}

static int
pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

/* The pids named by /dev/shm/uktls.<pid>, sorted. */
static size_t
stat_scan(pid_t *pids, size_t max)
{
	struct dirent *de;
	DIR *d;
	size_t n = 0;
	const char *p;
	char *end;
	long v;

	d = opendir("/dev/shm");
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		if (strncmp(de->d_name, "uktls.", 6) != 0)
			continue;
		p = de->d_name + 6;
		if (!isdigit((unsigned char)*p))
			continue;
		v = strtol(p, &end, 10);
		if (*end != '\0' || v <= 0 || v > 0x7fffffff)
			continue;
		pids[n++] = (pid_t)v;
	}
	closedir(d);
	qsort(pids, n, sizeof(pids[0]), pid_cmp);
	return n;
}

static void
print_text(const struct pstat *ps)
{
	const struct uktls_stats *st = &ps->st;
	unsigned int i;

	printf("pid %d%s%s%s\n", (int)ps->pid, ps->comm[0] != '\0' ? " (" : "",
	    ps->comm, ps->comm[0] != '\0' ? ")" : "");
	printf("  %-20s %s\n", "crypto_backend", st->crypto_backend);
	printf("  %-20s %u\n", "workers", st->workers);
	printf("  %-20s %u\n", "input_threads", st->input_threads);
#define X(f) printf("  %-20s %llu\n", #f, (unsigned long long)st->f);
	STAT_FIELDS(X)
#undef X
	printf("  %-20s", "wq_depth");
	for (i = 0; i < ps->nwq; i++)
		printf(" %llu", (unsigned long long)ps->wq[i]);
	printf("\n");
}

/* A JSON string: the backend and process names are short and printable,
 * but a process may name itself anything. */
static void
json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
print_json(const struct pstat *ps)
{
	const struct uktls_stats *st = &ps->st;
	unsigned int i;

	printf("{\"pid\":%d,\"comm\":", (int)ps->pid);
	json_string(ps->comm);
	printf(",\"crypto_backend\":");
	json_string(st->crypto_backend);
	printf(",\"workers\":%u,\"input_threads\":%u", st->workers,
	    st->input_threads);
#define X(f) printf(",\"%s\":%llu", #f, (unsigned long long)st->f);
	STAT_FIELDS(X)
#undef X
	printf(",\"wq_depth\":[");
	for (i = 0; i < ps->nwq; i++)
		printf("%s%llu", i > 0 ? "," : "",
		    (unsigned long long)ps->wq[i]);
	printf("]}");
}

int
cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pstat *ps = NULL;
	pid_t *pids = NULL;
	size_t npids, i, shown = 0;
	long v;
	char *end;
	int ch, json = 0, scan, error, status = 0;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(stat_usage, stdout);
			return 0;
		default:
			fputs(stat_usage, stderr);
			return EXIT_USAGE;
		}
	}
	pids = calloc(STAT_MAXPIDS, sizeof(*pids));
	ps = malloc(sizeof(*ps));
	if (pids == NULL || ps == NULL) {
		fprintf(stderr, "uktls stat: out of memory\n");
		status = 1;
		goto out;
	}
	scan = optind == argc;
	if (scan) {
		npids = stat_scan(pids, STAT_MAXPIDS);
	} else {
		for (npids = 0; optind < argc && npids < STAT_MAXPIDS;
		    optind++) {
			errno = 0;
			v = strtol(argv[optind], &end, 10);
			if (errno != 0 || *end != '\0' || v <= 0 ||
			    v > 0x7fffffff) {
				fprintf(stderr, "uktls stat: bad pid '%s'\n%s",
				    argv[optind], stat_usage);
				status = EXIT_USAGE;
				goto out;
			}
			pids[npids++] = (pid_t)v;
		}
	}
	if (json)
		printf("[");
	for (i = 0; i < npids; i++) {
		error = stat_read(pids[i], ps);
		if (error != 0) {
			/* A scan finds the objects of processes that died
			 * without removing theirs: not worth a word. */
			if (scan && (error == ESRCH || error == ENOENT))
				continue;
			fprintf(stderr, "uktls stat: pid %d: %s\n",
			    (int)pids[i], stat_strerror(error));
			/* In a scan, another user's or another version's
			 * object is worth a word but is not a failure. */
			if (!scan)
				status = 1;
			continue;
		}
		if (json) {
			printf("%s", shown > 0 ? ",\n " : "");
			print_json(ps);
		} else {
			if (shown > 0)
				printf("\n");
			print_text(ps);
		}
		shown++;
	}
	if (json)
		printf("]\n");
	if (scan && shown == 0) {
		fprintf(stderr, "uktls stat: no live process publishes uktls "
		    "counters (start one with UKTLS_STATS=1, or run `uktls "
		    "serve`)\n");
		status = 1;
	}
out:
	free(ps);
	free(pids);
	return status;
}
