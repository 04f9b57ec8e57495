/*
 * Support shared by the benchmark programs (see benchlib.h).
 */
#include "benchlib.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#ifdef UKTLS_HAVE_IPSECMB
#include <intel-ipsec-mb.h>
#endif

#include "tls_record.h"

/* ---- clocks ------------------------------------------------------------ */

static uint64_t
ts_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
bl_now_ns(void)
{
	return ts_ns(CLOCK_MONOTONIC);
}

uint64_t
bl_cpu_ns(void)
{
	return ts_ns(CLOCK_PROCESS_CPUTIME_ID);
}

uint64_t
bl_thread_cpu_ns(void)
{
	return ts_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* ---- statistics -------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
bl_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double
bl_median(const double *v, size_t n)
{
	double *t, m;

	if (n == 0)
		return 0;
	/* Sort a copy: callers pair v's entries with other rounds'. */
	t = malloc(n * sizeof(*t));
	if (t == NULL) {
		fprintf(stderr, "bl_median: out of memory\n");
		exit(1);
	}
	memcpy(t, v, n * sizeof(*t));
	bl_sort(t, n);
	m = n % 2 != 0 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	free(t);
	return m;
}

double
bl_min(const double *v, size_t n)
{
	double m;
	size_t i;

	m = n > 0 ? v[0] : 0;
	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

double
bl_max(const double *v, size_t n)
{
	double m;
	size_t i;

	m = n > 0 ? v[0] : 0;
	for (i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

double
bl_quantile_sorted(const double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	/* Nearest rank: the smallest value with at least q of them below. */
	k = (size_t)(q * (double)n + 0.999999);
	if (k == 0)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

long
bl_arg_num(const char *prog, const char *opt, const char *val, long lo,
    long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "%s: %s '%s': want a number from %ld to %ld\n",
		    prog, opt, val, lo, hi);
		exit(2);
	}
	return v;
}

int
bl_arg_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ','))
			return 1;
	return 0;
}

void
bl_arg_list(const char *prog, const char *opt, const char *list,
    const char *const *names, size_t n)
{
	const char *p = list, *e;
	size_t i, len;

	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		for (i = 0; i < n; i++)
			if (strlen(names[i]) == len &&
			    strncmp(names[i], p, len) == 0)
				break;
		if (i == n) {
			fprintf(stderr, "%s: %s: unknown name '%.*s' (one of:",
			    prog, opt, (int)len, p);
			for (i = 0; i < n; i++)
				fprintf(stderr, "%s %s", i > 0 ? "," : "",
				    names[i]);
			fprintf(stderr, ")\n");
			exit(2);
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
}

void
bl_prefault(void *buf, size_t len)
{
	volatile uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i += 4096)
		p[i] = p[i];
	if (len > 0)
		p[len - 1] = p[len - 1];
}

/* ---- results ----------------------------------------------------------- */

static struct bl_result *results;
static size_t nresults, cap_results;

struct bl_notekv {
	char key[48];
	char val[512];
};
static struct bl_notekv *notes;
static size_t nnotes, cap_notes;

void
bl_result_add(const char *group, const char *variant, const char *metric,
    const char *unit, double value, double lo, double hi, unsigned int n)
{
	struct bl_result *r, *nr;

	if (nresults == cap_results) {
		cap_results = cap_results == 0 ? 64 : 2 * cap_results;
		nr = realloc(results, cap_results * sizeof(*results));
		if (nr == NULL) {
			perror("bench: realloc");
			exit(1);
		}
		results = nr;
	}
	r = &results[nresults++];
	memset(r, 0, sizeof(*r));
	snprintf(r->group, sizeof(r->group), "%s", group);
	snprintf(r->variant, sizeof(r->variant), "%s", variant);
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->value = value;
	r->lo = lo;
	r->hi = hi;
	r->n = n;
}

void
bl_result_add_rounds(const char *group, const char *variant,
    const char *metric, const char *unit, const double *v, size_t n)
{
	bl_result_add(group, variant, metric, unit, bl_median(v, n),
	    bl_min(v, n), bl_max(v, n), (unsigned int)n);
}

double
bl_result_get(const char *group, const char *variant, const char *metric)
{
	size_t i;

	for (i = 0; i < nresults; i++)
		if (strcmp(results[i].group, group) == 0 &&
		    strcmp(results[i].variant, variant) == 0 &&
		    strcmp(results[i].metric, metric) == 0)
			return results[i].value;
	return -1;
}

void
bl_note(const char *key, const char *fmt, ...)
{
	struct bl_notekv *nn;
	va_list ap;

	if (nnotes == cap_notes) {
		cap_notes = cap_notes == 0 ? 16 : 2 * cap_notes;
		nn = realloc(notes, cap_notes * sizeof(*notes));
		if (nn == NULL) {
			perror("bench: realloc");
			exit(1);
		}
		notes = nn;
	}
	snprintf(notes[nnotes].key, sizeof(notes[nnotes].key), "%s", key);
	va_start(ap, fmt);
	vsnprintf(notes[nnotes].val, sizeof(notes[nnotes].val), fmt, ap);
	va_end(ap);
	nnotes++;
}

/* Write s as a JSON string: quotes, backslashes and controls escaped. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int
bl_json_write(const char *path, const char *bench)
{
	char machine[256];
	FILE *f;
	size_t i;
	int error;

	f = fopen(path, "w");
	if (f == NULL)
		return errno;
	bl_machine(machine, sizeof(machine));
	fprintf(f, "{\n  \"bench\": ");
	json_str(f, bench);
	fprintf(f, ",\n  \"machine\": ");
	json_str(f, machine);
	fprintf(f, ",\n  \"notes\": {");
	for (i = 0; i < nnotes; i++) {
		fprintf(f, "%s\n    ", i == 0 ? "" : ",");
		json_str(f, notes[i].key);
		fprintf(f, ": ");
		json_str(f, notes[i].val);
	}
	fprintf(f, "\n  },\n  \"results\": [");
	for (i = 0; i < nresults; i++) {
		const struct bl_result *r = &results[i];

		fprintf(f, "%s\n    {\"group\": ", i == 0 ? "" : ",");
		json_str(f, r->group);
		fprintf(f, ", \"variant\": ");
		json_str(f, r->variant);
		fprintf(f, ", \"metric\": ");
		json_str(f, r->metric);
		fprintf(f, ", \"unit\": ");
		json_str(f, r->unit);
		fprintf(f, ", \"value\": %.6g, \"min\": %.6g, \"max\": %.6g, "
		    "\"turns\": %u}", r->value, r->lo, r->hi, r->n);
	}
	fprintf(f, "\n  ]\n}\n");
	error = ferror(f) ? EIO : 0;
	if (fclose(f) != 0 && error == 0)
		error = errno;
	return error;
}

void
bl_results_free(void)
{
	free(results);
	free(notes);
	results = NULL;
	notes = NULL;
	nresults = cap_results = nnotes = cap_notes = 0;
}

void
bl_machine(char *buf, size_t len)
{
	char line[256], model[128] = "unknown CPU";
	struct utsname u;
	FILE *f;
	char *p;

	f = fopen("/proc/cpuinfo", "r");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "model name", 10) != 0)
				continue;
			p = strchr(line, ':');
			if (p == NULL)
				break;
			p += strspn(p + 1, " ") + 1;
			p[strcspn(p, "\n")] = '\0';
			snprintf(model, sizeof(model), "%s", p);
			break;
		}
		fclose(f);
	}
	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(buf, len, "%s, %ld CPUs online, Linux %s", model,
	    sysconf(_SC_NPROCESSORS_ONLN), u.release);
}

/* ---- sealing ----------------------------------------------------------- */

struct bl_sealer {
	EVP_CIPHER_CTX *ctx;
	int cipher, minor;
	uint8_t iv[12];
};

size_t
bl_sealed_len(int cipher, int minor, size_t len)
{
	size_t hlen = 5;

	if (cipher == CRYPTO_AES_NIST_GCM_16 && minor == TLS_MINOR_VER_TWO)
		hlen += 8;
	return hlen + len + (minor == TLS_MINOR_VER_THREE ? 1 : 0) + 16;
}

struct bl_sealer *
bl_sealer_new(int cipher, int key_len, int minor, const uint8_t *key,
    const uint8_t *iv)
{
	const EVP_CIPHER *c;
	struct bl_sealer *s;

	if (cipher == CRYPTO_CHACHA20_POLY1305)
		c = EVP_chacha20_poly1305();
	else
		c = key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->cipher = cipher;
	s->minor = minor;
	memcpy(s->iv, iv, cipher == CRYPTO_AES_NIST_GCM_16 &&
	    minor == TLS_MINOR_VER_TWO ? 4 : 12);
	s->ctx = EVP_CIPHER_CTX_new();
	if (s->ctx == NULL ||
	    EVP_EncryptInit_ex(s->ctx, c, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_IVLEN, 12,
	    NULL) != 1 ||
	    EVP_EncryptInit_ex(s->ctx, NULL, NULL, key, NULL) != 1) {
		bl_sealer_free(s);
		return NULL;
	}
	return s;
}

void
bl_sealer_free(struct bl_sealer *s)
{
	if (s == NULL)
		return;
	EVP_CIPHER_CTX_free(s->ctx);
	free(s);
}

size_t
bl_seal(struct bl_sealer *s, uint64_t seqno, uint8_t type,
    const uint8_t *content, size_t len, uint8_t *out)
{
	uint8_t nonce[12], aad[13];
	size_t hlen, plen, reclen;
	int aadlen, i, outl, tls13;

	tls13 = s->minor == TLS_MINOR_VER_THREE;
	hlen = s->cipher == CRYPTO_AES_NIST_GCM_16 && !tls13 ? 13 : 5;
	plen = len + (tls13 ? 1 : 0);
	reclen = hlen + plen + 16;
	out[0] = tls13 ? TLS_RLTYPE_APP : type;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)((reclen - 5) >> 8);
	out[4] = (uint8_t)(reclen - 5);
	memmove(out + hlen, content, len);
	if (tls13)
		out[hlen + len] = type;
	if (hlen == 13) {
		/* RFC 5288: salt || explicit nonce; the seqno serves. */
		memcpy(nonce, s->iv, 4);
		for (i = 0; i < 8; i++)
			nonce[4 + i] = out[5 + i] =
			    (uint8_t)(seqno >> (56 - 8 * i));
	} else {
		/* RFC 8446 5.3, RFC 7905: iv xor seqno. */
		memcpy(nonce, s->iv, 12);
		for (i = 0; i < 8; i++)
			nonce[4 + i] ^= (uint8_t)(seqno >> (56 - 8 * i));
	}
	if (tls13) {
		memcpy(aad, out, 5);
		aadlen = 5;
	} else {
		for (i = 0; i < 8; i++)
			aad[i] = (uint8_t)(seqno >> (56 - 8 * i));
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (uint8_t)(plen >> 8);
		aad[12] = (uint8_t)plen;
		aadlen = 13;
	}
	if (EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(s->ctx, NULL, &outl, aad, aadlen) != 1 ||
	    EVP_EncryptUpdate(s->ctx, out + hlen, &outl, out + hlen,
	    (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(s->ctx, out + hlen + plen, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, 16,
	    out + hlen + plen) != 1)
		return 0;
	return reclen;
}

/* ---- raw ciphers ------------------------------------------------------- */

struct bl_raw {
	struct tls_session_params p;
	int imb;
	EVP_CIPHER_CTX *evp;
#ifdef UKTLS_HAVE_IPSECMB
	IMB_MGR *mgr;
	struct gcm_key_data *gk;
#endif
};

struct bl_raw *
bl_raw_new(const char *lib, const struct tls_session_params *p)
{
	const EVP_CIPHER *c;
	struct bl_raw *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->p = *p;
	if (strcmp(lib, "evp") == 0) {
		if (p->cipher_algorithm == CRYPTO_CHACHA20_POLY1305)
			c = EVP_chacha20_poly1305();
		else
			c = p->cipher_key_len == 16 ? EVP_aes_128_gcm() :
			    EVP_aes_256_gcm();
		r->evp = EVP_CIPHER_CTX_new();
		if (r->evp != NULL &&
		    EVP_DecryptInit_ex(r->evp, c, NULL, NULL, NULL) == 1 &&
		    EVP_CIPHER_CTX_ctrl(r->evp, EVP_CTRL_AEAD_SET_IVLEN, 12,
		    NULL) == 1 &&
		    EVP_DecryptInit_ex(r->evp, NULL, NULL, p->cipher_key,
		    NULL) == 1)
			return r;
	}
#ifdef UKTLS_HAVE_IPSECMB
	else if (strcmp(lib, "imb") == 0) {
		r->imb = 1;
		r->mgr = alloc_mb_mgr(0);
		r->gk = aligned_alloc(64, sizeof(*r->gk));
		if (r->mgr != NULL && r->gk != NULL) {
			init_mb_mgr_auto(r->mgr, NULL);
			if (p->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
			    p->cipher_key_len == 16)
				IMB_AES128_GCM_PRE(r->mgr, p->cipher_key,
				    r->gk);
			else if (p->cipher_algorithm ==
			    CRYPTO_AES_NIST_GCM_16)
				IMB_AES256_GCM_PRE(r->mgr, p->cipher_key,
				    r->gk);
			return r;
		}
	}
#endif
	bl_raw_free(r);
	return NULL;
}

void
bl_raw_free(struct bl_raw *r)
{
	if (r == NULL)
		return;
	EVP_CIPHER_CTX_free(r->evp);
#ifdef UKTLS_HAVE_IPSECMB
	if (r->gk != NULL) {
		OPENSSL_cleanse(r->gk, sizeof(*r->gk));
		free(r->gk);
	}
	if (r->mgr != NULL)
		free_mb_mgr(r->mgr);
#endif
	OPENSSL_cleanse(&r->p, sizeof(r->p));
	free(r);
}

int
bl_raw_decrypt(struct bl_raw *r, uint8_t *rec, uint32_t reclen,
    uint64_t seqno)
{
	struct tls_record_layer hdr;
	uint8_t nonce[12], aad[13], *payload;
	uint32_t plen;
	unsigned int aadlen;
	int outl;

	memcpy(&hdr, rec, sizeof(hdr));
	plen = reclen - r->p.tls_hlen - TLS_AEAD_TAG_LEN;
	payload = rec + r->p.tls_hlen;
	tls_nonce(&r->p, r->p.tls_hlen > TLS_HEADER_LEN ? rec + 5 : NULL,
	    seqno, nonce);
	aadlen = tls_aad(&r->p, &hdr, seqno, plen, aad);
#ifdef UKTLS_HAVE_IPSECMB
	if (r->imb) {
		struct gcm_context_data g;
		struct chacha20_poly1305_context_data cc;
		uint8_t tag[16];

		if (r->p.cipher_algorithm == CRYPTO_CHACHA20_POLY1305) {
			IMB_CHACHA20_POLY1305_INIT(r->mgr, r->p.cipher_key,
			    &cc, nonce, aad, aadlen);
			IMB_CHACHA20_POLY1305_DEC_UPDATE(r->mgr,
			    r->p.cipher_key, &cc, payload, payload, plen);
			IMB_CHACHA20_POLY1305_DEC_FINALIZE(r->mgr, &cc, tag,
			    16);
		} else if (r->p.cipher_key_len == 16) {
			IMB_AES128_GCM_INIT_VAR_IV(r->mgr, r->gk, &g, nonce,
			    12, aad, aadlen);
			IMB_AES128_GCM_DEC_UPDATE(r->mgr, r->gk, &g, payload,
			    payload, plen);
			IMB_AES128_GCM_DEC_FINALIZE(r->mgr, r->gk, &g, tag,
			    16);
		} else {
			IMB_AES256_GCM_INIT_VAR_IV(r->mgr, r->gk, &g, nonce,
			    12, aad, aadlen);
			IMB_AES256_GCM_DEC_UPDATE(r->mgr, r->gk, &g, payload,
			    payload, plen);
			IMB_AES256_GCM_DEC_FINALIZE(r->mgr, r->gk, &g, tag,
			    16);
		}
		return CRYPTO_memcmp(tag, payload + plen, 16) != 0 ?
		    EBADMSG : 0;
	}
#endif
	if (EVP_DecryptInit_ex(r->evp, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_DecryptUpdate(r->evp, NULL, &outl, aad, (int)aadlen) != 1 ||
	    EVP_DecryptUpdate(r->evp, payload, &outl, payload,
	    (int)plen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->evp, EVP_CTRL_AEAD_SET_TAG, 16,
	    payload + plen) != 1 ||
	    EVP_DecryptFinal_ex(r->evp, payload + plen, &outl) != 1)
		return EBADMSG;
	return 0;
}
