/*
 * KASSERT and friends: invariants as code.  With UKTLS_INVARIANTS (debug and
 * test builds) a failed assertion prints the message, which names the
 * function, and aborts; otherwise the check compiles away.
 */
#ifndef UKTLS_KASSERT_H
#define UKTLS_KASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define uktls_panic(...)                                                   \
	do {                                                               \
		fprintf(stderr, "uktls panic: ");                          \
		fprintf(stderr, __VA_ARGS__);                              \
		fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);         \
		abort();                                                   \
	} while (0)

#ifdef UKTLS_INVARIANTS
#define KASSERT(cond, msg)                                                 \
	do {                                                               \
		if (__builtin_expect(!(cond), 0))                          \
			uktls_panic msg;                                   \
	} while (0)
#elif defined(__clang_analyzer__)
/*
 * Unchecked, but the static analyzer is still told that cond holds, as
 * the debug build would have stopped otherwise: without it every path an
 * invariant rules out is reported as a NULL dereference.
 */
#define KASSERT(cond, msg)                                                 \
	do {                                                               \
		if (!(cond))                                               \
			__builtin_unreachable();                           \
	} while (0)
#else
#define KASSERT(cond, msg)                                                 \
	do {                                                               \
	} while (0)
#endif

#define __predict_false(x) __builtin_expect(!!(x), 0)
#define __predict_true(x) __builtin_expect(!!(x), 1)

#endif /* UKTLS_KASSERT_H */
