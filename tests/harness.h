/*
 * A small test harness shared by every test program under tests/.
 *
 * A test is a function registered with TEST(name); a parameterised test
 * runs once per parameter (the six TLS version x cipher suites, say) and is
 * reported as "name/param".  CHECK() records a failure and carries on;
 * REQUIRE() records a failure and returns from the test; FAILIF() records one
 * with a message and goes to the function's cleanup.  main() is provided
 * by harness_main(): it runs every test (or those whose name contains argv[1])
 * and ends with the line "N passed, N failed" that CI reads.
 */
#ifndef UKTLS_TEST_HARNESS_H
#define UKTLS_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harness_test {
	const char *name;
	void (*fn)(void *param);
	void *param;
	const char *param_name;
	struct harness_test *next;
};

extern struct harness_test *harness_tests;
extern struct harness_test **harness_tail;
extern int harness_cur_failed;
extern const char *harness_cur_name;
extern const char *harness_cur_param;

void harness_register(struct harness_test *t);
void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int harness_main(int argc, char **argv);

#define TEST(name)                                                         \
	static void test_##name(void *param);                              \
	static struct harness_test harness_t_##name = { #name,             \
		test_##name, NULL, NULL, NULL };                           \
	__attribute__((constructor)) static void harness_reg_##name(void)  \
	{                                                                  \
		harness_register(&harness_t_##name);                       \
	}                                                                  \
	static void test_##name(void *param __attribute__((unused)))

/*
 * Register fn once for each element of the array params[n]; name_of(p)
 * gives the parameter's printable name.  Call from a constructor or from
 * main before harness_main().
 */
void harness_register_param(const char *name, void (*fn)(void *), void *params,
    size_t elem_size, size_t n, const char *(*name_of)(const void *));

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond))                                               \
			harness_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define REQUIRE(cond)                                                      \
	do {                                                               \
		if (!(cond)) {                                             \
			harness_fail(__FILE__, __LINE__, "REQUIRE(%s)",    \
			    #cond);                                        \
			return;                                            \
		}                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long ha_ = (long long)(a), hb_ = (long long)(b);      \
		if (ha_ != hb_)                                            \
			harness_fail(__FILE__, __LINE__,                   \
			    "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, ha_, \
			    hb_);                                          \
	} while (0)

#define REQUIRE_EQ(a, b)                                                   \
	do {                                                               \
		long long ha_ = (long long)(a), hb_ = (long long)(b);      \
		if (ha_ != hb_) {                                          \
			harness_fail(__FILE__, __LINE__,                   \
			    "REQUIRE_EQ(%s, %s): %lld != %lld", #a, #b,    \
			    ha_, hb_);                                     \
			return;                                            \
		}                                                          \
	} while (0)

/*
 * Record a failure with a message and go to the function's cleanup label,
 * out, for a step the rest of the test cannot do without.
 */
#define FAILIF(cond, ...)                                                  \
	do {                                                               \
		if (cond) {                                                \
			harness_fail(__FILE__, __LINE__, __VA_ARGS__);     \
			goto out;                                          \
		}                                                          \
	} while (0)

/* A call that must fail with errno e. */
#define CHECK_ERRNO(call, e)                                               \
	do {                                                               \
		errno = 0;                                                 \
		long long hr_ = (long long)(call);                         \
		int he_ = errno;                                           \
		if (hr_ != -1 || he_ != (e))                               \
			harness_fail(__FILE__, __LINE__,                   \
			    "%s: returned %lld errno %d (%s), want -1 "    \
			    "errno %d (%s)",                               \
			    #call, hr_, he_, strerror(he_), (e),           \
			    strerror(e));                                  \
	} while (0)

#endif /* UKTLS_TEST_HARNESS_H */
