/*
 * In-place decryption throughput of each crypto backend, per suite and
 * record size, against the raw cipher it wraps.
 *
 * For each of the six suites (TLS 1.2 and 1.3 with AES-128-GCM,
 * AES-256-GCM and ChaCha20-Poly1305) and each record size (16 KiB, 1 KiB,
 * 64 B of content) about 1 MiB of consecutive records is sealed once and
 * laid out as the input threads lay a stream out (input_layout): each
 * record in one cluster, so one mbuf.  The variants then take turns
 * decrypting every record of it:
 *
 *   openssl   the OpenSSL backend over the mbuf chains
 *   ipsecmb   the ipsec-mb backend over the mbuf chains
 *   raw-evp   OpenSSL EVP over the contiguous record, nonce and additional
 *             data as the backends make them: what libcrypto alone costs
 *   raw-imb   ipsec-mb's direct API over the contiguous record
 *
 * Before each pass the ciphertext is restored from a copy, outside the
 * timed part, so every pass decrypts valid records that sit in cache alike
 * for every variant.  Each turn lasts --slice-ms of decryption; the
 * reported figure is the median over --rounds turns, with min and max.
 *
 *   build/bench/bench_cipher [--rounds N] [--slice-ms MS] [--quick]
 *                            [--json FILE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "crypto.h"
#include "mbuf.h"
#include "tls_record.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))
#define WIRE_BYTES (1u << 20)
#define MAXSEG 3

struct suite {
	const char *name;
	int cipher;
	int key_len;
	int minor;
};

static const struct suite suites[] = {
	{ "aes128-gcm-tls1.3", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_THREE },
	{ "aes256-gcm-tls1.3", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_THREE },
	{ "chacha20-tls1.3", CRYPTO_CHACHA20_POLY1305, 32, TLS_MINOR_VER_THREE },
	{ "aes128-gcm-tls1.2", CRYPTO_AES_NIST_GCM_16, 16, TLS_MINOR_VER_TWO },
	{ "aes256-gcm-tls1.2", CRYPTO_AES_NIST_GCM_16, 32, TLS_MINOR_VER_TWO },
	{ "chacha20-tls1.2", CRYPTO_CHACHA20_POLY1305, 32, TLS_MINOR_VER_TWO },
};

static const uint32_t sizes[] = { 16384, 1024, 64 };

enum variant { V_OPENSSL, V_IPSECMB, V_RAW_EVP, V_RAW_IMB, NVARIANTS };
static const char *const vnames[NVARIANTS] = { "openssl", "ipsecmb",
	"raw-evp", "raw-imb" };

/* One suite and size: the records and every variant's session. */
struct work {
	const struct suite *su;
	uint32_t size;
	struct tls_session_params p;
	uint8_t *wire, *pristine;
	size_t wire_len, nrec;
	size_t *off;          /* record i starts at wire + off[i] */
	uint32_t *reclen;
	struct mbuf *mb;      /* MAXSEG headers per record */
	void *cookie[2];      /* openssl, ipsecmb backend sessions */
	struct bl_raw *raw[2];  /* evp, imb */
	int have[NVARIANTS];
};

static const struct ktls_crypto_backend *
backend_of(int v)
{
#ifdef UKTLS_HAVE_IPSECMB
	if (v == V_IPSECMB)
		return &ktls_crypto_ipsecmb;
#endif
	return v == V_OPENSSL ? &ktls_crypto_openssl : NULL;
}

static void
work_free(struct work *w)
{
	int v;

	for (v = V_OPENSSL; v <= V_IPSECMB; v++)
		if (w->cookie[v] != NULL)
			backend_of(v)->teardown(w->cookie[v]);
	bl_raw_free(w->raw[0]);
	bl_raw_free(w->raw[1]);
	tls_params_wipe(&w->p);
	free(w->wire);
	free(w->pristine);
	free(w->off);
	free(w->reclen);
	free(w->mb);
	memset(w, 0, sizeof(*w));
}

static int
work_init(struct work *w, const struct suite *su, uint32_t size)
{
	struct tls_enable en;
	struct bl_sealer *sealer;
	uint8_t key[32], iv[12], *content;
	size_t rl, pos, i, cut, seglen;
	struct mbuf *m;
	int v, nseg;

	memset(w, 0, sizeof(*w));
	w->su = su;
	w->size = size;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0x11 * i + 7);
	for (i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(0x35 * i + 1);
	memset(&en, 0, sizeof(en));
	en.cipher_key = key;
	en.iv = iv;
	en.cipher_algorithm = su->cipher;
	en.cipher_key_len = su->key_len;
	en.iv_len = su->cipher == CRYPTO_AES_NIST_GCM_16 &&
	    su->minor == TLS_MINOR_VER_TWO ? 4 : 12;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = (uint8_t)su->minor;
	if (tls_params_from_enable(&en, &w->p) != 0)
		return EINVAL;

	rl = bl_sealed_len(su->cipher, su->minor, size);
	w->nrec = WIRE_BYTES / rl;
	w->wire_len = w->nrec * rl;
	w->wire = aligned_alloc(64, (w->wire_len + 63) & ~(size_t)63);
	w->pristine = malloc(w->wire_len);
	w->off = calloc(w->nrec, sizeof(*w->off));
	w->reclen = calloc(w->nrec, sizeof(*w->reclen));
	w->mb = calloc(w->nrec * MAXSEG, sizeof(*w->mb));
	content = malloc(size);
	sealer = bl_sealer_new(su->cipher, su->key_len, su->minor, key, iv);
	if (w->wire == NULL || w->pristine == NULL || w->off == NULL ||
	    w->reclen == NULL || w->mb == NULL || content == NULL ||
	    sealer == NULL) {
		free(content);
		bl_sealer_free(sealer);
		return ENOMEM;
	}
	for (i = 0; i < size; i++)
		content[i] = (uint8_t)(i * 31 + 3);

	/*
	 * Records back to back, as on the wire; each record's chain is one
	 * mbuf, as the input threads' layout leaves a stream whose record
	 * lengths it has seen (the loop would cut a record longer than a
	 * cluster where the clusters end).
	 */
	for (i = 0, pos = 0; i < w->nrec; i++, pos += rl) {
		if (bl_seal(sealer, i, TLS_RLTYPE_APP, content, size,
		    w->wire + pos) != rl) {
			free(content);
			bl_sealer_free(sealer);
			return EIO;
		}
		w->off[i] = pos;
		w->reclen[i] = (uint32_t)rl;
		nseg = 0;
		for (cut = pos; cut < pos + rl; cut += seglen) {
			seglen = MJUMTLSBYTES;
			if (seglen > pos + rl - cut)
				seglen = pos + rl - cut;
			m = &w->mb[i * MAXSEG + nseg];
			m->m_type = MT_DATA;
			m->m_data = (char *)w->wire + cut;
			m->m_len = (uint32_t)seglen;
			if (nseg > 0)
				w->mb[i * MAXSEG + nseg - 1].m_next = m;
			nseg++;
		}
	}
	memcpy(w->pristine, w->wire, w->wire_len);
	free(content);
	bl_sealer_free(sealer);

	for (v = V_OPENSSL; v <= V_IPSECMB; v++) {
		if (backend_of(v) == NULL || backend_of(v)->probe(&w->p) != 0)
			continue;
		if (backend_of(v)->setup(&w->p, &w->cookie[v]) == 0)
			w->have[v] = 1;
		else
			w->cookie[v] = NULL;
	}
	w->raw[0] = bl_raw_new("evp", &w->p);
	w->raw[1] = bl_raw_new("imb", &w->p);
	w->have[V_RAW_EVP] = w->raw[0] != NULL;
	w->have[V_RAW_IMB] = w->raw[1] != NULL;
	return 0;
}

static int
decrypt_one(struct work *w, int v, size_t i)
{
	struct tls_record_layer hdr;
	int trailer_len;

	switch (v) {
	case V_OPENSSL:
	case V_IPSECMB:
		memcpy(&hdr, w->wire + w->off[i], sizeof(hdr));
		return backend_of(v)->decrypt(w->cookie[v], &w->p, &hdr,
		    &w->mb[i * MAXSEG], i, &trailer_len);
	case V_RAW_EVP:
		return bl_raw_decrypt(w->raw[0], w->wire + w->off[i],
		    w->reclen[i], i);
	case V_RAW_IMB:
		return bl_raw_decrypt(w->raw[1], w->wire + w->off[i],
		    w->reclen[i], i);
	}
	return ENOTSUP;
}

/*
 * One turn of variant v: passes over all records until slice_ns of
 * decryption have been timed.  Returns content MB/s (10^6 bytes), or -1
 * when a record failed to open.
 */
static double
run_turn(struct work *w, int v, uint64_t slice_ns)
{
	uint64_t t0, spent = 0, bytes = 0;
	size_t i;

	while (spent < slice_ns) {
		memcpy(w->wire, w->pristine, w->wire_len);
		t0 = bl_now_ns();
		for (i = 0; i < w->nrec; i++)
			if (decrypt_one(w, v, i) != 0)
				return -1;
		spent += bl_now_ns() - t0;
		bytes += (uint64_t)w->nrec * w->size;
	}
	return (double)bytes * 1e3 / (double)spent;
}

/* Usage on stdout and status 0 when asked (--help), else stderr and 2. */
static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr, "usage: bench_cipher "
	    "[--rounds N] [--slice-ms MS] [--quick] [--json FILE]\n");
	exit(status);
}

int
main(int argc, char **argv)
{
	double rate[NVARIANTS][64];
	const char *json = NULL;
	char group[64];
	struct work w;
	uint64_t slice_ns = 20000000;
	size_t s, z;
	int rounds = 7, r, k, v, i, error;

	/* --quick sets defaults that options given with it override. */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0) {
			rounds = 3;
			slice_ns = 4000000;
		}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0)
			usage(0);
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json = argv[++i];
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = (int)bl_arg_num("bench_cipher", argv[i],
			    argv[i + 1], 1, 64), i++;
		else if (strcmp(argv[i], "--slice-ms") == 0 && i + 1 < argc)
			slice_ns = (uint64_t)bl_arg_num("bench_cipher", argv[i],
			    argv[i + 1], 1, 60000) * 1000000u, i++;
		else if (strcmp(argv[i], "--quick") != 0)
			usage(2);
	}

	printf("# in-place decryption, content MB/s (10^6 B/s): median of %d "
	    "interleaved turns of %.0f ms [min..max]\n", rounds,
	    (double)slice_ns / 1e6);
	for (s = 0; s < NITEMS(suites); s++) {
		for (z = 0; z < NITEMS(sizes); z++) {
			error = work_init(&w, &suites[s], sizes[z]);
			if (error != 0) {
				fprintf(stderr, "bench_cipher: %s/%u: setup "
				    "failed: %s\n", suites[s].name, sizes[z],
				    strerror(error));
				return 1;
			}
			/* Warm every variant up once, and check it. */
			for (v = 0; v < NVARIANTS; v++)
				if (w.have[v] && run_turn(&w, v, 1) < 0) {
					fprintf(stderr, "bench_cipher: %s: %s "
					    "fails to open its records\n",
					    suites[s].name, vnames[v]);
					w.have[v] = 0;
				}
			for (r = 0; r < rounds; r++) {
				/* Rotate who goes first. */
				for (k = 0; k < NVARIANTS; k++) {
					v = (k + r) % NVARIANTS;
					if (w.have[v])
						rate[v][r] = run_turn(&w, v,
						    slice_ns);
				}
			}
			snprintf(group, sizeof(group), "%s/%u",
			    suites[s].name, sizes[z]);
			for (v = 0; v < NVARIANTS; v++) {
				double lo, hi, med;

				if (!w.have[v])
					continue;
				lo = bl_min(rate[v], (size_t)rounds);
				hi = bl_max(rate[v], (size_t)rounds);
				med = bl_median(rate[v], (size_t)rounds);
				bl_result_add(group, vnames[v], "throughput",
				    "MB/s", med, lo, hi, (unsigned int)rounds);
				printf("%-24s %-8s %9.1f MB/s [%.1f..%.1f] "
				    "%8.1f ns/record\n", group, vnames[v], med,
				    lo, hi, (double)sizes[z] * 1e3 / med);
			}
			work_free(&w);
		}
	}

	printf("\n# ratios of medians\n%-24s %18s %18s %18s\n", "suite/size",
	    "ipsecmb/openssl", "openssl/raw-evp", "ipsecmb/raw-imb");
	for (s = 0; s < NITEMS(suites); s++) {
		for (z = 0; z < NITEMS(sizes); z++) {
			double o, im, re, ri;

			snprintf(group, sizeof(group), "%s/%u",
			    suites[s].name, sizes[z]);
			o = bl_result_get(group, "openssl", "throughput");
			im = bl_result_get(group, "ipsecmb", "throughput");
			re = bl_result_get(group, "raw-evp", "throughput");
			ri = bl_result_get(group, "raw-imb", "throughput");
			printf("%-24s %18.3f %18.3f %18.3f\n", group,
			    o > 0 && im > 0 ? im / o : 0,
			    o > 0 && re > 0 ? o / re : 0,
			    im > 0 && ri > 0 ? im / ri : 0);
			if (o > 0 && im > 0)
				bl_result_add(group, "ipsecmb/openssl",
				    "ratio", "x", im / o, im / o, im / o, 1);
			if (o > 0 && re > 0)
				bl_result_add(group, "openssl/raw-evp",
				    "ratio", "x", o / re, o / re, o / re, 1);
			if (im > 0 && ri > 0)
				bl_result_add(group, "ipsecmb/raw-imb",
				    "ratio", "x", im / ri, im / ri, im / ri,
				    1);
		}
	}
	printf("\ndefault backend for AES-128-GCM TLS 1.3: %s\n",
	    ktls_crypto_default_name());
	bl_note("default_backend", "%s", ktls_crypto_default_name());
	bl_note("method", "median of %d interleaved turns of %.0f ms each, "
	    "1 MiB of records restored from a copy before each pass",
	    rounds, (double)slice_ns / 1e6);
	if (json != NULL) {
		error = bl_json_write(json, "bench_cipher");
		if (error != 0) {
			fprintf(stderr, "bench_cipher: %s: %s\n", json,
			    strerror(error));
			return 1;
		}
	}
	bl_results_free();
	return 0;
}
