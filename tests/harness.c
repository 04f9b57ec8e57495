/* The shared test harness: registration, failure reporting and main(). */
#include "harness.h"

#include <stdarg.h>
#include <time.h>

struct harness_test *harness_tests;
struct harness_test **harness_tail = &harness_tests;
int harness_cur_failed;
const char *harness_cur_name;
const char *harness_cur_param;

void
harness_register(struct harness_test *t)
{
	t->next = NULL;
	*harness_tail = t;
	harness_tail = &t->next;
}

void
harness_register_param(const char *name, void (*fn)(void *), void *params,
    size_t elem_size, size_t n, const char *(*name_of)(const void *))
{
	struct harness_test *t;
	size_t i;

	for (i = 0; i < n; i++) {
		t = calloc(1, sizeof(*t));
		if (t == NULL)
			abort();
		t->name = name;
		t->fn = fn;
		t->param = (char *)params + i * elem_size;
		t->param_name = name_of(t->param);
		harness_register(t);
	}
}

void
harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	harness_cur_failed++;
	fprintf(stderr, "  FAIL %s%s%s at %s:%d: ", harness_cur_name,
	    harness_cur_param != NULL ? "/" : "",
	    harness_cur_param != NULL ? harness_cur_param : "", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
harness_main(int argc, char **argv)
{
	struct harness_test *t;
	int passed = 0, failed = 0;
	char full[256];
	const char *base;
	double t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (t = harness_tests; t != NULL; t = t->next) {
		snprintf(full, sizeof(full), "%s%s%s", t->name,
		    t->param_name != NULL ? "/" : "",
		    t->param_name != NULL ? t->param_name : "");
		if (argc > 1 && strstr(full, argv[1]) == NULL)
			continue;
		harness_cur_name = t->name;
		harness_cur_param = t->param_name;
		harness_cur_failed = 0;
		t0 = now_s();
		t->fn(t->param);
		if (harness_cur_failed == 0) {
			passed++;
			printf("ok   %s (%.2fs)\n", full, now_s() - t0);
		} else {
			failed++;
			printf("FAIL %s\n", full);
		}
	}
	base = strrchr(argv[0], '/');
	printf("%s: %d passed, %d failed\n", base != NULL ? base + 1 : argv[0],
	    passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}
