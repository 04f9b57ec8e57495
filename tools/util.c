/*
 * Helpers shared by the uktls subcommands: numbers, clocks, OpenSSL error
 * text, and running other programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common.h"

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long n;
	unsigned int shift = 0;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return ERANGE;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	/* Accept "8MiB" and "8MB" as well as "8m": all mean 8 * 2^20. */
	if (shift != 0 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end != '\0')
		return EINVAL;
	if (shift != 0 && n > (UINT64_MAX >> shift))
		return ERANGE;
	n <<= shift;
	if (n < min || n > max)
		return ERANGE;
	*out = n;
	return 0;
}

void
ssl_errstr(char *buf, size_t len)
{
	unsigned long e, last = 0;

	/* The last error queued is the most specific one. */
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(last, buf, len);
}

int
wants_help(int argc, char **argv)
{
	return argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0);
}

int
find_program(const char *name, char *buf, size_t len)
{
	const char *path, *p, *colon;
	size_t dlen;
	int n;

	path = getenv("PATH");
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *colon != '\0' ? colon + 1 : colon) {
		colon = strchr(p, ':');
		if (colon == NULL)
			colon = p + strlen(p);
		dlen = (size_t)(colon - p);
		/* An empty entry means the current directory: not wanted. */
		if (dlen == 0)
			continue;
		n = snprintf(buf, len, "%.*s/%s", (int)dlen, p, name);
		if (n < 0 || (size_t)n >= len)
			continue;
		if (access(buf, X_OK) == 0)
			return 0;
	}
	return ENOENT;
}

int
spawn(char *const argv[], int in_fd, int out_fd, int newpgrp, pid_t *pidp)
{
	extern char **environ;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	int error, null_fd = -1, have_fa = 0, have_attr = 0;

	if (in_fd == -1 || out_fd == -1) {
		null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd < 0) {
			error = errno;
			goto out;
		}
		if (in_fd == -1)
			in_fd = null_fd;
		if (out_fd == -1)
			out_fd = null_fd;
	}
	error = posix_spawn_file_actions_init(&fa);
	if (error != 0)
		goto out;
	have_fa = 1;
	error = posix_spawnattr_init(&attr);
	if (error != 0)
		goto out;
	have_attr = 1;
	if (in_fd >= 0 &&
	    (error = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) != 0)
		goto out;
	if (out_fd >= 0 &&
	    ((error = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) != 0 ||
	    (error = posix_spawn_file_actions_adddup2(&fa, out_fd, 2)) != 0))
		goto out;
	/*
	 * The caller blocks its termination signals and ignores SIGPIPE;
	 * both would be inherited across exec and change how the child
	 * behaves, so put them back to the defaults.
	 */
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	if ((error = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (error = posix_spawnattr_setsigdefault(&attr, &def)) != 0 ||
	    (error = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (error = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF | (newpgrp ? POSIX_SPAWN_SETPGROUP : 0))) !=
	    0)
		goto out;
	error = posix_spawn(pidp, argv[0], &fa, &attr, argv, environ);
out:
	if (have_attr)
		posix_spawnattr_destroy(&attr);
	if (have_fa)
		posix_spawn_file_actions_destroy(&fa);
	if (null_fd >= 0)
		close(null_fd);
	return error;
}

void
kill_child(pid_t pid)
{
	int i, status;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	for (i = 0; i < 20; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(50 * 1000);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

int
run_capture(char *const argv[], char *buf, size_t len, int timeout_ms,
    int *status)
{
	struct pollfd pfd;
	double deadline;
	size_t used = 0;
	ssize_t n;
	pid_t pid = -1;
	int fds[2] = { -1, -1 }, error, left;
	char sink[512];

	*status = -1;
	if (pipe2(fds, O_CLOEXEC) != 0)
		return errno;
	error = spawn(argv, -1, fds[1], 1, &pid);
	if (error != 0)
		goto out;
	close(fds[1]);
	fds[1] = -1;
	/*
	 * spawn() sends stderr to the same place as stdout; callers only look
	 * for tokens in what comes back, so mixing them does no harm.
	 */
	deadline = now_s() + timeout_ms / 1000.0;
	for (;;) {
		left = (int)((deadline - now_s()) * 1000);
		if (left <= 0) {
			kill_child(pid);
			pid = -1;
			error = ETIMEDOUT;
			goto out;
		}
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
			error = errno;
			goto out;
		}
		if (used + 1 < len)
			n = read(fds[0], buf + used, len - 1 - used);
		else
			n = read(fds[0], sink, sizeof(sink));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			error = errno;
			goto out;
		}
		if (used + 1 < len)
			used += (size_t)n;
	}
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR) {
			error = errno;
			break;
		}
	}
	pid = -1;
out:
	if (len > 0)
		buf[used] = '\0';
	if (pid > 0)
		kill_child(pid);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return error;
}

int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
