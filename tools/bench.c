/*
 * uktls bench: run the benchmark programs.  They are built by `make bench`
 * into build/bench/, beside build/uktls, so they are looked for in the
 * directory of this executable plus "/bench/", named bench_*.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define BENCH_MAX 64

static const char bench_usage[] =
"usage: uktls bench [--list]\n"
"       uktls bench NAME [ARGS ...]\n"
"       uktls bench [-- ARGS ...]\n"
"\n"
"Run the benchmark programs build/bench/bench_* (found in the bench/\n"
"directory beside the uktls executable; build them with `make bench`).\n"
"NAME (with or without the bench_ prefix) runs one, passing ARGS through;\n"
"with no NAME every benchmark runs in turn with ARGS.  Each program's\n"
"--help describes its own options.\n"
"\n"
"  --list   list the benchmarks that are built\n"
"Exit status: that of the program run, or 1 if any of them failed.\n";

static int
bench_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/bench", exe) >= len)
		return ENAMETOOLONG;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The executable bench_* files in dir, sorted; their count. */
static size_t
bench_list(const char *dir, char **names, size_t max)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t n = 0;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		if (strncmp(de->d_name, "bench_", 6) != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) >= sizeof(path))
			continue;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
		    access(path, X_OK) != 0)
			continue;
		names[n] = strdup(de->d_name);
		if (names[n] != NULL)
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	return n;
}

/* Run dir/name with args; its exit status, or 1 if it could not run. */
static int
bench_run(const char *dir, const char *name, int nargs, char **args)
{
	char path[PATH_MAX];
	char **argv;
	pid_t pid;
	int i, status, error;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return 1;
	argv = calloc((size_t)nargs + 2, sizeof(*argv));
	if (argv == NULL)
		return 1;
	argv[0] = path;
	for (i = 0; i < nargs; i++)
		argv[i + 1] = args[i];
	fflush(stdout);
	error = spawn(argv, SPAWN_INHERIT, SPAWN_INHERIT, 0, &pid);
	free(argv);
	if (error != 0) {
		fprintf(stderr, "uktls bench: %s: %s\n", path, strerror(error));
		return 1;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "uktls bench: %s killed by signal %d\n", name,
	    WTERMSIG(status));
	return 1;
}

int
cmd_bench(int argc, char **argv)
{
	char dir[PATH_MAX], want[NAME_MAX + 1];
	char *names[BENCH_MAX];
	size_t n, i;
	int status = 0, r, first = 1, error;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		fputs(bench_usage, stdout);
		return 0;
	}
	error = bench_dir(dir, sizeof(dir));
	if (error != 0) {
		fprintf(stderr, "uktls bench: cannot locate the uktls "
		    "executable: %s\n", strerror(error));
		return 1;
	}
	n = bench_list(dir, names, BENCH_MAX);
	if (n == 0) {
		fprintf(stderr, "uktls bench: no benchmark programs in %s/; "
		    "build them with `make bench`\n", dir);
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--list") == 0) {
		for (i = 0; i < n; i++)
			printf("%s\n", names[i] + 6);
		goto out;
	}
	if (argc > 1 && strcmp(argv[1], "--") != 0 && argv[1][0] != '-') {
		snprintf(want, sizeof(want), "%s%s",
		    strncmp(argv[1], "bench_", 6) == 0 ? "" : "bench_",
		    argv[1]);
		for (i = 0; i < n; i++)
			if (strcmp(names[i], want) == 0)
				break;
		if (i == n) {
			fprintf(stderr, "uktls bench: no benchmark '%s' in %s/ "
			    "(`make bench` builds them); there are:", argv[1],
			    dir);
			for (i = 0; i < n; i++)
				fprintf(stderr, " %s", names[i] + 6);
			fprintf(stderr, "\n");
			status = 1;
			goto out;
		}
		status = bench_run(dir, want, argc - 2, argv + 2);
		goto out;
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		argc--;
		argv++;
	}
	for (i = 0; i < n; i++) {
		if (!first)
			printf("\n");
		first = 0;
		printf("== %s\n", names[i]);
		r = bench_run(dir, names[i], argc - 1, argv + 1);
		if (r != 0) {
			fprintf(stderr, "uktls bench: %s exited %d\n", names[i],
			    r);
			status = 1;
		}
	}
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	return status;
}
