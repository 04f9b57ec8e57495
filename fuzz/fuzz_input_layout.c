/*
 * Protocol input's record count and read layout (input_track_bytes and
 * input_layout, src/input.c) over any stream cut into any reads.
 *
 * Input: an 8-byte seed for the cuts and the clusters' state, then the
 * stream itself.  The stream is fed to the count in pieces the seed
 * chooses; after each piece the count must agree with a byte-at-a-time
 * model of the rule written from the record format (a 5-byte header with
 * major version 3 and a length of at most 2^14 + 256, then that many bytes;
 * anything else ends the counting for good), and a layout is made for a
 * read of random size over clusters with random room, whose result must
 * keep the contract in input.h: every cluster used gets bytes, no more
 * than it has room for (a whole cluster when replaced), the record under
 * way is never moved off the cluster it continues, and the read is cut
 * short only when every cluster was used or where a record ends.  When the count knows the
 * record lengths and the guess is right, each record the layout places
 * in a cluster that can hold it must lie wholly in that cluster.
 */
#include "fuzz_common.h"
#include "input.h"
#include "mbuf.h"
#include "tls_record.h"

#define NCL 8

/* The model: the same state, one byte at a time. */
struct model {
	uint32_t left, reclen, hdrlen;
	uint8_t hdr[TLS_HEADER_LEN];
	int lost;
};

static void
model_byte(struct model *m, uint8_t b)
{
	uint32_t len;

	if (m->lost)
		return;
	if (m->left > 0) {
		m->left--;
		return;
	}
	m->hdr[m->hdrlen++] = b;
	if (m->hdrlen < TLS_HEADER_LEN)
		return;
	m->hdrlen = 0;
	len = (uint32_t)m->hdr[3] * 256 + m->hdr[4];
	if (m->hdr[1] != 3 || len > 16384 + 256) {
		m->lost = 1;
		m->left = m->reclen = 0;
		return;
	}
	m->left = len;
	m->reclen = TLS_HEADER_LEN + len;
}

static void
check_layout(const struct input_track *tr, struct fz_rng *rng)
{
	uint32_t room[NCL], len[NCL], want, sum = 0, need, pos, at;
	uint8_t fresh[NCL];
	unsigned int i, n;
	int cont;

	for (i = 0; i < NCL; i++)
		room[i] = fz_rng_below(rng, 3) == 0 ? MJUMTLSBYTES :
		    512 + (uint32_t)fz_rng_below(rng, MJUMTLSBYTES - 512);
	want = 1 + (uint32_t)fz_rng_below(rng, 300000);
	cont = (tr->tr_left > 0 || tr->tr_hdrlen > 0) &&
	    fz_rng_below(rng, 2) == 0;
	n = input_layout(tr, want, room, NCL, cont, len, fresh);
	FZ_ASSERT(n <= NCL, "%u clusters used", n);
	for (i = 0; i < n; i++) {
		FZ_ASSERT(len[i] > 0, "cluster %u used for nothing", i);
		FZ_ASSERT(fresh[i] <= 1, "fresh[%u] = %u", i, fresh[i]);
		FZ_ASSERT(len[i] <= (fresh[i] ? MJUMTLSBYTES : room[i]),
		    "cluster %u: %u bytes, room %u fresh %u", i, len[i],
		    room[i], fresh[i]);
		FZ_ASSERT(!fresh[i] || room[i] < MJUMTLSBYTES,
		    "an empty cluster %u replaced", i);
		sum += len[i];
	}
	FZ_ASSERT(!(cont && n > 0 && fresh[0]),
	    "the record under way moved off its cluster");
	FZ_ASSERT(sum <= want, "%u bytes laid out for a read of %u", sum,
	    want);
	FZ_ASSERT(sum > 0, "nothing laid out for a read of %u", want);
	FZ_ASSERT(n == NCL || sum == want || input_at_record_end(tr, sum),
	    "read cut to %u of %u with %u clusters, not at a record's end",
	    sum, want, n);

	/*
	 * Where the guesses are right (records of tr_reclen after the one
	 * under way), a record that fits a cluster never straddles two: each
	 * boundary between clusters falls on a record boundary, unless the
	 * cluster before it was filled because the record under way was
	 * longer than its room (cont) or the read ran out.
	 */
	if (tr->tr_lost || tr->tr_reclen == 0 || tr->tr_hdrlen > 0)
		return;
	need = tr->tr_left > 0 ? tr->tr_left : tr->tr_reclen;
	for (i = 0, pos = 0; i + 1 < n; i++) {
		pos += len[i];
		/* Record boundaries: need, need + reclen, ... */
		if (pos < need)
			at = 1;  /* inside the record under way */
		else
			at = (pos - need) % tr->tr_reclen;
		if (at == 0)
			continue;
		/* A cut inside a record is allowed only where no cluster could
		 * have held it, or it continued the record under way. */
		FZ_ASSERT((i == 0 && cont && pos <= need) ||
		    (pos < need && need > MJUMTLSBYTES) ||
		    tr->tr_reclen > MJUMTLSBYTES,
		    "record cut between clusters %u and %u at %u (left %u, "
		    "reclen %u, cont %d)", i, i + 1, pos, tr->tr_left,
		    tr->tr_reclen, cont);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct input_track tr;
	struct model m;
	struct fz_rng rng;
	const uint8_t *p;
	size_t len, k, i;

	rng.s = fz_u64(&in);
	p = fz_bytes(&in, in.n, &len);
	memset(&tr, 0, sizeof(tr));
	memset(&m, 0, sizeof(m));
	while (len > 0) {
		k = fz_rng_below(&rng, 4) == 0 ? 1 + fz_rng_below(&rng, 8) :
		    1 + fz_rng_below(&rng, len);
		if (k > len)
			k = len;
		input_track_bytes(&tr, p, k);
		for (i = 0; i < k; i++)
			model_byte(&m, p[i]);
		p += k;
		len -= k;
		FZ_ASSERT(tr.tr_lost == m.lost && tr.tr_left == m.left &&
		    tr.tr_reclen == m.reclen && tr.tr_hdrlen == m.hdrlen,
		    "count lost %u left %u reclen %u hdrlen %u, model %d %u "
		    "%u %u", tr.tr_lost, tr.tr_left, tr.tr_reclen,
		    tr.tr_hdrlen, m.lost, m.left, m.reclen, m.hdrlen);
		check_layout(&tr, &rng);
	}
	check_layout(&tr, &rng);
	return 0;
}
