/*
 * Tests of protocol input's layout of reads (src/input.c): the count of
 * record boundaries a socket's reads keep (input_track_bytes), the layout
 * that puts each record in a cluster of its own (input_layout), and, over
 * real TCP connections for every suite, that full-size records reach
 * decryption whole (the records_split counter) and intact.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "input.h"
#include "mbuf.h"
#include "tls_record.h"
#include "tlsgen.h"
#include "uktls.h"

/* A header for a record of len bytes after it. */
static void
put_header(uint8_t *p, uint32_t len)
{
	p[0] = TLS_RLTYPE_APP;
	p[1] = TLS_MAJOR_VER_ONE;
	p[2] = TLS_MINOR_VER_TWO;
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
}

/*
 * A stream of n records with lengths from rng (some empty, some full); the
 * end offset of each record in ends[].
 */
static uint8_t *
make_stream(struct tg_rng *rng, size_t n, size_t *ends, size_t *total)
{
	uint8_t *s;
	size_t i, pos = 0, cap = n * (TLS_HEADER_LEN + 16640);
	uint32_t len;

	s = malloc(cap);
	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		switch (tg_rng_below(rng, 4)) {
		case 0:
			len = (uint32_t)tg_rng_below(rng, 40);
			break;
		case 1:
			len = TLS13_MAX_CIPHERTEXT_LEN -
			    (uint32_t)tg_rng_below(rng, 300);
			break;
		default:
			len = (uint32_t)tg_rng_below(rng, 16641);
			break;
		}
		put_header(s + pos, len);
		tg_rng_fill(rng, s + pos + TLS_HEADER_LEN, len);
		pos += TLS_HEADER_LEN + len;
		ends[i] = pos;
	}
	*total = pos;
	return s;
}

/*
 * Fed a stream in pieces of any size, the count knows at every point how
 * far the record under way has to go, and the last header's length.
 */
TEST(track_follows_records)
{
	struct tg_rng rng = { 0x1badb002 };
	struct input_track tr;
	size_t ends[400], total, pos, k, r, round, start;
	uint8_t *s;

	s = make_stream(&rng, 400, ends, &total);
	REQUIRE(s != NULL);
	for (round = 0; round < 20; round++) {
		memset(&tr, 0, sizeof(tr));
		for (pos = 0, r = 0; pos < total; pos += k) {
			k = round == 0 ? 1 : 1 + tg_rng_below(&rng,
			    round < 10 ? 64 : 40000);
			if (k > total - pos)
				k = total - pos;
			input_track_bytes(&tr, s + pos, k);
			while (r < 400 && ends[r] <= pos + k)
				r++;
			CHECK(!tr.tr_lost);
			if (r == 400) {
				CHECK_EQ(tr.tr_left, 0);
				CHECK_EQ(tr.tr_hdrlen, 0);
				continue;
			}
			/* Inside record r, its header whole or not. */
			start = r > 0 ? ends[r - 1] : 0;
			if (pos + k >= start + TLS_HEADER_LEN) {
				CHECK_EQ(tr.tr_left, ends[r] - (pos + k));
				CHECK_EQ(tr.tr_hdrlen, 0);
				CHECK_EQ(tr.tr_reclen, ends[r] - start);
			} else {
				CHECK_EQ(tr.tr_left, 0);
				CHECK_EQ(tr.tr_hdrlen, pos + k - start);
			}
		}
		CHECK_EQ(tr.tr_reclen, ends[399] - ends[398]);
	}
	free(s);
}

/* A header no peer sends stops the guessing for good. */
TEST(track_lost_on_bad_header)
{
	struct input_track tr;
	uint8_t s[64];
	int bad;

	for (bad = 0; bad < 2; bad++) {
		memset(&tr, 0, sizeof(tr));
		memset(s, 0, sizeof(s));
		put_header(s, 3);
		put_header(s + 8, bad ? TLS13_MAX_CIPHERTEXT_LEN + 1 : 4);
		if (!bad)
			s[9] = 2; /* major version 2 */
		input_track_bytes(&tr, s, 8);
		CHECK(!tr.tr_lost);
		CHECK_EQ(tr.tr_reclen, 8);
		input_track_bytes(&tr, s + 8, 7);
		CHECK(tr.tr_lost);
		CHECK_EQ(tr.tr_left, 0);
		CHECK_EQ(tr.tr_reclen, 0);
		/* Nothing more is counted, and reads fill clusters. */
		put_header(s + 16, 1);
		input_track_bytes(&tr, s + 16, 6);
		CHECK(tr.tr_lost);
		CHECK_EQ(tr.tr_reclen, 0);
	}
}

#define NCL 8

/* Run input_layout; check what holds for every layout; return the sum. */
static uint32_t
layout(const struct input_track *tr, uint32_t want, const uint32_t *room,
    int cont, uint32_t *len, uint8_t *fresh, unsigned int *nused)
{
	uint32_t sum = 0;
	unsigned int i, n;

	memset(len, 0xa5, NCL * sizeof(*len));
	memset(fresh, 0xa5, NCL);
	n = input_layout(tr, want, room, NCL, cont, len, fresh);
	CHECK(n <= NCL);
	for (i = 0; i < n; i++) {
		CHECK(len[i] > 0);
		CHECK(fresh[i] == 0 || fresh[i] == 1);
		CHECK(len[i] <= (fresh[i] ? (uint32_t)MJUMTLSBYTES : room[i]));
		if (fresh[i])
			CHECK(room[i] < MJUMTLSBYTES && !(i == 0 && cont));
		sum += len[i];
	}
	CHECK(sum <= want);
	*nused = n;
	return sum;
}

/* Every cluster with room v. */
static void
rooms(uint32_t *room, uint32_t v)
{
	unsigned int i;

	for (i = 0; i < NCL; i++)
		room[i] = v;
}

static void
track_at(struct input_track *tr, uint32_t left, uint32_t reclen)
{
	memset(tr, 0, sizeof(*tr));
	tr->tr_left = left;
	tr->tr_reclen = reclen;
}

TEST(layout_one_record_per_cluster)
{
	struct input_track tr;
	uint32_t room[NCL], len[NCL];
	uint8_t fresh[NCL];
	unsigned int i, n;

	rooms(room, MJUMTLSBYTES);
	track_at(&tr, 0, 16406);
	CHECK_EQ(layout(&tr, 256 * 1024, room, 0, len, fresh, &n),
	    NCL * 16406);
	CHECK_EQ(n, NCL);
	for (i = 0; i < n; i++) {
		CHECK_EQ(len[i], 16406);
		CHECK_EQ(fresh[i], 0);
	}
	/* A read smaller than a record: the record's start, in cluster 0. */
	CHECK_EQ(layout(&tr, 3000, room, 0, len, fresh, &n), 3000);
	CHECK_EQ(n, 1);
	/* The rest of a record first, then whole ones; the read stops at
	 * the end of the last whole one rather than inside the next. */
	track_at(&tr, 100, 16406);
	room[0] = 150;
	CHECK_EQ(layout(&tr, 40000, room, 1, len, fresh, &n),
	    100 + 2 * 16406);
	CHECK_EQ(n, 3);
	CHECK_EQ(len[0], 100);
	CHECK_EQ(fresh[0], 0);
	CHECK_EQ(len[1], 16406);
	CHECK_EQ(len[2], 16406);
	/* Ending on a record's end, it is not cut. */
	CHECK_EQ(layout(&tr, 100 + 16406, room, 1, len, fresh, &n),
	    100 + 16406);
	CHECK_EQ(n, 2);
}

/* A cluster holding other bytes, too full for the next record, is
 * replaced by an empty one; a cluster with room enough is used. */
TEST(layout_replaces_clusters_too_full)
{
	struct input_track tr;
	uint32_t room[NCL], len[NCL];
	uint8_t fresh[NCL];
	unsigned int n;

	rooms(room, 5000);
	track_at(&tr, 0, 16406);
	CHECK_EQ(layout(&tr, 2 * 16406, room, 0, len, fresh, &n), 2 * 16406);
	CHECK_EQ(n, 2);
	CHECK(fresh[0] && fresh[1]);
	CHECK_EQ(len[0], 16406);
	/* Records of 1000 bytes: five fit in what the cluster has. */
	track_at(&tr, 0, 1000);
	CHECK_EQ(layout(&tr, 12000, room, 0, len, fresh, &n), 12000);
	CHECK_EQ(n, 3);
	CHECK_EQ(len[0], 5000);
	CHECK_EQ(len[1], 5000);
	CHECK_EQ(len[2], 2000);
	CHECK(!fresh[0] && !fresh[1] && !fresh[2]);
	/* Small records pack an empty cluster up to the last whole one. */
	room[0] = MJUMTLSBYTES;
	track_at(&tr, 0, 100);
	CHECK_EQ(layout(&tr, 20000, room, 0, len, fresh, &n), 20000);
	CHECK_EQ(len[0], MJUMTLSBYTES / 100 * 100);
}

/* The record under way continues in cluster 0 (cont); longer than that
 * cluster has room for, it fills it rather than moving. */
TEST(layout_continues_record_under_way)
{
	struct input_track tr;
	uint32_t room[NCL], len[NCL];
	uint8_t fresh[NCL];
	unsigned int n;

	rooms(room, MJUMTLSBYTES);
	room[0] = 1000;
	track_at(&tr, 3000, 16406);
	CHECK_EQ(layout(&tr, 30000, room, 1, len, fresh, &n), 3000 + 16406);
	CHECK_EQ(n, 3);
	CHECK_EQ(fresh[0], 0);
	CHECK_EQ(len[0], 1000);
	CHECK_EQ(len[1], 2000);
	CHECK_EQ(len[2], 16406);
	/* Without cont the same record moves to an empty cluster. */
	CHECK_EQ(layout(&tr, 30000, room, 0, len, fresh, &n), 3000 + 16406);
	CHECK_EQ(n, 2);
	CHECK_EQ(fresh[0], 1);
	CHECK_EQ(len[0], 3000);
	CHECK_EQ(len[1], 16406);
	/* A read too short to finish the record under way is not cut. */
	CHECK_EQ(layout(&tr, 2500, room, 0, len, fresh, &n), 2500);
	/* A partial header: the guess less what came of it. */
	memset(&tr, 0, sizeof(tr));
	tr.tr_reclen = 16406;
	tr.tr_hdrlen = 3;
	room[0] = MJUMTLSBYTES;
	CHECK_EQ(layout(&tr, 40000, room, 1, len, fresh, &n), 16403 + 16406);
	CHECK_EQ(n, 2);
	CHECK_EQ(len[0], 16403);
	CHECK_EQ(len[1], 16406);
}

/* Nothing known (no header yet, or lost): clusters filled in turn. */
TEST(layout_fills_when_unknown)
{
	struct input_track tr;
	uint32_t room[NCL], len[NCL];
	uint8_t fresh[NCL];
	unsigned int i, n;

	for (i = 0; i < NCL; i++)
		room[i] = 600 + i * 1000;
	memset(&tr, 0, sizeof(tr));
	CHECK_EQ(layout(&tr, 5000, room, 0, len, fresh, &n), 5000);
	CHECK_EQ(n, 4);
	CHECK_EQ(len[0], 600);
	CHECK_EQ(len[1], 1600);
	CHECK_EQ(len[2], 2600);
	CHECK_EQ(len[3], 200);
	tr.tr_lost = 1;
	tr.tr_reclen = 100;
	CHECK_EQ(layout(&tr, 1u << 30, room, 0, len, fresh, &n),
	    8 * 600 + 1000 * 28);
	CHECK_EQ(n, NCL);
	for (i = 0; i < NCL; i++)
		CHECK(!fresh[i] && len[i] == room[i]);
}

/* Random states: the invariants in layout(), and nothing is left unread
 * while clusters had room for it, unless the read stops at a record's
 * end. */
TEST(layout_random)
{
	struct tg_rng rng = { 77 };
	struct input_track tr;
	uint32_t room[NCL], len[NCL], want, sum;
	uint8_t fresh[NCL];
	unsigned int i, n, r;
	int cont;

	for (r = 0; r < 20000; r++) {
		for (i = 0; i < NCL; i++)
			room[i] = tg_rng_below(&rng, 3) == 0 ? MJUMTLSBYTES :
			    512 + (uint32_t)tg_rng_below(&rng,
			    MJUMTLSBYTES - 512);
		memset(&tr, 0, sizeof(tr));
		tr.tr_reclen = (uint32_t)tg_rng_below(&rng, 3) == 0 ? 0 :
		    TLS_HEADER_LEN + (uint32_t)tg_rng_below(&rng,
		    TLS13_MAX_CIPHERTEXT_LEN + 1);
		if (tr.tr_reclen > TLS_HEADER_LEN && tg_rng_below(&rng, 2))
			tr.tr_left = 1 + (uint32_t)tg_rng_below(&rng,
			    tr.tr_reclen - TLS_HEADER_LEN);
		else if (tr.tr_reclen > 0 && tg_rng_below(&rng, 4) == 0)
			tr.tr_hdrlen = (uint8_t)(1 + tg_rng_below(&rng, 4));
		cont = (tr.tr_left > 0 || tr.tr_hdrlen > 0) &&
		    tg_rng_below(&rng, 2);
		want = 1 + (uint32_t)tg_rng_below(&rng, 300000);
		sum = layout(&tr, want, room, cont, len, fresh, &n);
		if (sum < want && n < NCL && !input_at_record_end(&tr, sum))
			CHECK_EQ(sum, want);
		CHECK(sum > 0);
	}
}

/*
 * Over a real TCP connection, full-size records sent back to back reach
 * decryption in one piece (records_split), apart from those a read ended
 * inside whose rest could not follow in the same cluster, and every byte
 * arrives intact.
 */
#define E2E_RECORDS 512

static void
t_full_records_whole(void *arg)
{
	const struct tg_suite *s = arg;
	struct tg_conn c;
	struct tg_delayed_write dw;
	struct uktls_stats st0, st1;
	uint8_t *wire, *plain, *buf;
	size_t wlen = 0, i;
	uint64_t split;
	ssize_t n;
	int nrec = E2E_RECORDS / TG_SCALE_DIV;

	if (tg_conn_open(&c, s, 1) == -1)
		return;
	wire = malloc((size_t)nrec * TG_MAX_RECORD);
	plain = malloc(TG_MAX_PLAINTEXT);
	buf = malloc(TG_MAX_PLAINTEXT + 64);
	REQUIRE(wire != NULL && plain != NULL && buf != NULL);
	for (i = 0; i < (size_t)nrec; i++) {
		memset(plain, (int)(i & 0xff), TG_MAX_PLAINTEXT);
		n = tlsgen_encrypt(&c.g, TLS_RLTYPE_APP, plain,
		    TG_MAX_PLAINTEXT, 0, wire + wlen, TG_MAX_RECORD);
		REQUIRE(n > 0);
		wlen += (size_t)n;
	}
	REQUIRE(uktls_get_stats(&st0) == 0);
	REQUIRE(tg_delayed_write_start(&dw, c.tx, wire, wlen, 0) == 0);
	for (i = 0; i < (size_t)nrec; i++) {
		memset(plain, (int)(i & 0xff), TG_MAX_PLAINTEXT);
		if (TG_EXPECT_RECORD(c.rx, TLS_RLTYPE_APP, plain,
		    TG_MAX_PLAINTEXT) != 0)
			break;
	}
	CHECK_EQ(tg_delayed_write_join(&dw), (ssize_t)wlen);
	REQUIRE(uktls_get_stats(&st1) == 0);
	split = st1.records_split - st0.records_split;
	printf("     %" PRIu64 " of %d full records split (%s)\n", split, nrec,
	    s->name);
	/* Before the layout every one of them was (16 KiB clusters). */
	CHECK(split * 4 <= (uint64_t)nrec);
	free(wire);
	free(plain);
	free(buf);
	tg_conn_close(&c);
}

int
main(int argc, char **argv)
{
	tg_register_suites("full_records_whole", t_full_records_whole, 0,
	    TG_NSUITES);
	return harness_main(argc, argv);
}
