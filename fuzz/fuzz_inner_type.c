/*
 * tls13_find_record_type over mbuf chains split the way the input says,
 * compared with a plain backwards scan of the same bytes laid out flat.
 *
 * Input: two 16-bit selectors for the offset and length of the range to
 * scan, then segment descriptions until the input ends.  A segment is a
 * flags byte, a length and, unless it is a run of zeros, its bytes:
 *
 *   flags & 3     storage: inline mbuf, 2 KiB cluster, large cluster (x2)
 *   flags & 4     a run of zeros (padding) instead of input bytes
 *   flags & 8     start the data part-way into the storage
 *   flags & 16    repeat the segment (1-byte copies): long chains of tiny
 *                 mbufs cross the function's 64-segment scan window
 *   flags & 32    an empty mbuf in front of the segment
 *
 * Bytes outside the range are filled so that a scan that strays out of it
 * finds non-zero bytes and gets a different answer.
 */
#include "fuzz_common.h"
#include "mbuf.h"
#include "tls_record.h"

#define MAX_TOTAL (3 * MJUMTLSBYTES)
#define MAX_SEGS 600

static uint8_t flat[MAX_TOTAL];

/* Append an mbuf with storage of kind and data of len bytes from src (NULL:
 * zeros) to the chain ending at *tailp. */
static int
add_mbuf(struct mbuf ***tailp, unsigned int kind, uint32_t lead,
    const uint8_t *src, uint32_t len)
{
	struct mbuf *m;
	uint32_t cap;

	if (kind == 0)
		m = m_get(MT_DATA);
	else if (kind == 1)
		m = m_getcl(MT_DATA, MCLBYTES);
	else
		m = m_getcl(MT_DATA, MJUMTLSBYTES);
	if (m == NULL)
		abort();
	cap = m_bufsize(m);
	if (lead > cap)
		lead = cap;
	if (len > cap - lead)
		len = cap - lead;
	/* Non-zero junk around the data catches reads outside m_len. */
	memset(m_bufstart(m), 0xee, cap);
	m->m_data = m_bufstart(m) + lead;
	if (src != NULL)
		memcpy(m->m_data, src, len);
	else
		memset(m->m_data, 0, len);
	m->m_len = len;
	**tailp = m;
	*tailp = &m->m_next;
	return (int)len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct mbuf *chain = NULL, **tail = &chain;
	const uint8_t *src;
	uint32_t total = 0, off, len, want_len = 0, got_len = 0, seglen, lead;
	uint32_t rep, i;
	uint16_t off_sel, len_sel;
	uint8_t flags, want_type = 0, got_type = 0;
	size_t got;
	int nsegs = 0, want, error;

	off_sel = fz_u16(&in);
	len_sel = fz_u16(&in);
	while (in.n > 0 && nsegs < MAX_SEGS && total < MAX_TOTAL) {
		flags = fz_u8(&in);
		seglen = fz_u16(&in);
		lead = (flags & 8) != 0 ? fz_u8(&in) : 0;
		if ((flags & 32) != 0) {
			add_mbuf(&tail, 0, 0, NULL, 0);
			nsegs++;
		}
		if ((flags & 16) != 0) {
			/* rep one-byte mbufs, each holding the next byte. */
			rep = seglen % 200 + 1;
			for (i = 0; i < rep && total < MAX_TOTAL &&
			    nsegs < MAX_SEGS; i++) {
				flat[total] = (flags & 4) != 0 ? 0 : fz_u8(&in);
				total += (uint32_t)add_mbuf(&tail, 0, lead % 200,
				    &flat[total], 1);
				nsegs++;
			}
			continue;
		}
		if (seglen > MAX_TOTAL - total)
			seglen = MAX_TOTAL - total;
		if ((flags & 4) != 0) {
			memset(&flat[total], 0, seglen);
			src = &flat[total];
		} else {
			src = fz_bytes(&in, seglen, &got);
			seglen = (uint32_t)got;
			memcpy(&flat[total], src, seglen);
		}
		seglen = (uint32_t)add_mbuf(&tail, flags & 3, lead,
		    &flat[total], seglen);
		total += seglen;
		nsegs++;
	}
	if (chain == NULL) {
		/* An empty range over one empty mbuf. */
		add_mbuf(&tail, 0, 0, NULL, 0);
	}
	FZ_ASSERT(m_length(chain, NULL) == total, "chain of %u bytes, want %u",
	    m_length(chain, NULL), total);

	off = off_sel % (total + 1);
	len = total - off - len_sel % (total - off + 1);
	want = fz_ref_inner_type(&flat[off], len, &want_type, &want_len);
	error = tls13_find_record_type(chain, off, len, &got_type, &got_len);
	FZ_ASSERT(error == want, "off %u len %u of %u in %d mbufs: engine %d, "
	    "reference %d", off, len, total, nsegs, error, want);
	if (error == 0)
		FZ_ASSERT(got_type == want_type && got_len == want_len,
		    "off %u len %u in %d mbufs: type %u len %u, want type %u "
		    "len %u", off, len, nsegs, got_type, got_len, want_type,
		    want_len);
	m_freem(chain);
	return 0;
}
