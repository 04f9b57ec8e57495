/*
 * Tests of the engine's counters (src/stats.c): per-thread slots add up to
 * exact totals however many threads count at once, slots come back when
 * their threads exit, negative adds work, a published region reads the same
 * from another process, and a forked child counts afresh without touching
 * its parent's counters.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ktls.h"
#include "stats.h"
#include "uktls.h"

#define ADDS 1000

struct counter_arg {
	pthread_barrier_t *start; /* all threads count at once, or NULL */
	pthread_barrier_t *hold;  /* keep the slot until everyone has one */
	int slot;                 /* the slot this thread counted in */
};

static void *
counter_thread(void *p)
{
	struct counter_arg *a = p;
	int i;

	if (a->start != NULL)
		pthread_barrier_wait(a->start);
	for (i = 0; i < ADDS; i++) {
		KTLS_COUNT(records_cancelled, 1);
		KTLS_COUNT(bytes_decrypted, 3);
		KTLS_COUNT(sockets_active, 1);
		KTLS_COUNT(sockets_active, -1);
	}
	a->slot = ktls_stats_slot_idx;
	if (a->hold != NULL)
		pthread_barrier_wait(a->hold);
	return NULL;
}

/* Run n threads that count at once; fill slots[] with their slots. */
static void
count_in_threads(int n, int *slots)
{
	pthread_barrier_t start, hold;
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	struct counter_arg *a = calloc((size_t)n, sizeof(*a));
	int i;

	REQUIRE(t != NULL && a != NULL);
	REQUIRE(pthread_barrier_init(&start, NULL, (unsigned int)n) == 0);
	REQUIRE(pthread_barrier_init(&hold, NULL, (unsigned int)n) == 0);
	for (i = 0; i < n; i++) {
		a[i].start = &start;
		a[i].hold = &hold;
		REQUIRE(pthread_create(&t[i], NULL, counter_thread, &a[i]) ==
		    0);
	}
	for (i = 0; i < n; i++) {
		REQUIRE(pthread_join(t[i], NULL) == 0);
		slots[i] = a[i].slot;
	}
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&hold);
	free(t);
	free(a);
}

/* Slots handed out now, to this process's living threads. */
static int
slots_in_use(void)
{
	int slots[UKTLS_STATS_NSLOTS + 8], i, own = 0;

	/* More threads than slots: every free slot is taken once. */
	count_in_threads(UKTLS_STATS_NSLOTS + 8, slots);
	for (i = 0; i < UKTLS_STATS_NSLOTS + 8; i++)
		if (slots[i] != 0)
			own++;
	return UKTLS_STATS_NSLOTS - 1 - own;
}

/*
 * Waves of more threads than there are slots: every add is counted exactly
 * once, whether a thread had a slot of its own or shared slot 0.
 */
TEST(totals_exact_with_more_threads_than_slots)
{
	struct uktls_stats s0, s1;
	int slots[UKTLS_STATS_NSLOTS * 2], n = UKTLS_STATS_NSLOTS * 2;
	int wave, i, own, shared, held;

	held = slots_in_use();
	REQUIRE(uktls_get_stats(&s0) == 0);
	for (wave = 0; wave < 3; wave++) {
		count_in_threads(n, slots);
		own = shared = 0;
		for (i = 0; i < n; i++) {
			CHECK(slots[i] >= 0 && slots[i] < UKTLS_STATS_NSLOTS);
			if (slots[i] == 0)
				shared++;
			else
				own++;
		}
		/* Every slot but the shared one and those this process's
		 * other threads hold is in use at the barrier. */
		CHECK_EQ(own, UKTLS_STATS_NSLOTS - 1 - held);
		CHECK_EQ(shared, n - own);
	}
	REQUIRE(uktls_get_stats(&s1) == 0);
	CHECK_EQ(s1.records_cancelled - s0.records_cancelled,
	    (uint64_t)3 * (uint64_t)n * ADDS);
	CHECK_EQ(s1.bytes_decrypted - s0.bytes_decrypted,
	    (uint64_t)3 * (uint64_t)n * ADDS * 3);
	CHECK_EQ(s1.sockets_active, s0.sockets_active);
}

/* Threads that live at the same time own distinct slots. */
TEST(slots_distinct_while_threads_live)
{
	int slots[16], i, j;

	count_in_threads(16, slots);
	for (i = 0; i < 16; i++) {
		CHECK(slots[i] > 0);
		for (j = 0; j < i; j++)
			CHECK(slots[i] != slots[j]);
	}
}

/* A thread's slot comes back when it exits: none leak. */
TEST(slots_return_at_thread_exit)
{
	int before, after, k;

	before = slots_in_use();
	for (k = 0; k < 10; k++) {
		int slots[UKTLS_STATS_NSLOTS];

		count_in_threads(UKTLS_STATS_NSLOTS - 1 - before, slots);
	}
	after = slots_in_use();
	CHECK_EQ(after, before);
}

/* The calling thread's own slot is exact too, and keeps its slot. */
TEST(main_thread_counts)
{
	struct uktls_stats s0, s1;
	int slot, i;

	REQUIRE(uktls_get_stats(&s0) == 0);
	for (i = 0; i < 12345; i++)
		KTLS_COUNT(err_bad_tag, 1);
	slot = ktls_stats_slot_idx;
	CHECK(slot >= 0 && slot < UKTLS_STATS_NSLOTS);
	KTLS_COUNT(err_bad_tag, 1);
	CHECK_EQ(ktls_stats_slot_idx, slot);
	REQUIRE(uktls_get_stats(&s1) == 0);
	CHECK_EQ(s1.err_bad_tag - s0.err_bad_tag, (uint64_t)12346);
}

/*
 * Published: another process reads the same sums.  Then a forked child
 * starts from zero in a region of its own and does not write its parent's.
 */
TEST(published_and_forked)
{
	struct uktls_stats mine, theirs, after;
	int status, fds[2];
	pid_t pid;
	uint64_t child_saw[2];

	REQUIRE(ktls_engine_start() == 0);
	KTLS_COUNT(err_truncated, 41);
	REQUIRE(uktls_get_stats(&mine) == 0);
	REQUIRE(uktls_get_stats_pid(getpid(), &theirs, NULL, NULL) == 0);
	CHECK_EQ(theirs.err_truncated, mine.err_truncated);
	CHECK_EQ(theirs.records_cancelled, mine.records_cancelled);
	CHECK(mine.err_truncated >= 41);

	REQUIRE(pipe(fds) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct uktls_stats c0, c1;

		close(fds[0]);
		if (uktls_get_stats(&c0) != 0)
			_exit(2);
		KTLS_COUNT(err_truncated, 7);
		if (uktls_get_stats(&c1) != 0)
			_exit(3);
		child_saw[0] = c0.err_truncated;
		child_saw[1] = c1.err_truncated;
		if (write(fds[1], child_saw, sizeof(child_saw)) !=
		    (ssize_t)sizeof(child_saw))
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	REQUIRE(read(fds[0], child_saw, sizeof(child_saw)) ==
	    (ssize_t)sizeof(child_saw));
	close(fds[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(child_saw[0], (uint64_t)0);
	CHECK_EQ(child_saw[1], (uint64_t)7);
	REQUIRE(uktls_get_stats(&after) == 0);
	CHECK_EQ(after.err_truncated, mine.err_truncated);
	REQUIRE(uktls_get_stats_pid(getpid(), &theirs, NULL, NULL) == 0);
	CHECK_EQ(theirs.err_truncated, mine.err_truncated);
}

int
main(int argc, char **argv)
{
	/* The last test reads the counters through the published region. */
	setenv("UKTLS_STATS", "1", 1);
	return harness_main(argc, argv);
}
