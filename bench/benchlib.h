/*
 * Support shared by the benchmark programs under bench/: clocks, CPU time,
 * medians, a collector for results that prints them and writes them as
 * JSON, and the sealing of TLS records with OpenSSL EVP.
 *
 * Every benchmark measures its variants in one run, taking turns (A B A B
 * ...) so that a change of clock speed or of load from other programs is
 * spread over all of them, and reports medians over the turns.
 */
#ifndef UKTLS_BENCHLIB_H
#define UKTLS_BENCHLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uktls.h"

/* Monotonic wall clock and this process's CPU time (all threads), in ns. */
uint64_t bl_now_ns(void);
uint64_t bl_cpu_ns(void);
/* CPU time of the calling thread alone, in ns. */
uint64_t bl_thread_cpu_ns(void);

/* Median, minimum and maximum of v[0..n-1] (v is left as it is). */
double bl_median(const double *v, size_t n);
double bl_min(const double *v, size_t n);
double bl_max(const double *v, size_t n);
/* The q-quantile (0 <= q <= 1) of sorted v[0..n-1], nearest rank. */
double bl_quantile_sorted(const double *v, size_t n, double q);
void bl_sort(double *v, size_t n);

/*
 * Command lines.  bl_arg_num: val as a whole decimal number from lo to hi,
 * or a message naming prog and opt and exit status 2.  bl_arg_list: every
 * comma-separated word of list is one of the n names, or the same.
 * bl_arg_has: is name one of the words of list?
 */
long bl_arg_num(const char *prog, const char *opt, const char *val, long lo,
    long hi);
void bl_arg_list(const char *prog, const char *opt, const char *list,
    const char *const *names, size_t n);
int bl_arg_has(const char *list, const char *name);

/* Touch every page of a buffer so that no page fault lands in a timing. */
void bl_prefault(void *buf, size_t len);

/*
 * Results.  Each is one measured value: group (what was measured: a suite
 * and size, a connection count), variant (how: a backend, a receive
 * method), metric name, value and unit.  bl_result_print writes one line;
 * bl_json_write writes all results, plus free-form notes, to path.
 */
struct bl_result {
	char group[64];
	char variant[48];
	char metric[32];
	char unit[16];
	double value;
	double lo, hi; /* spread over the turns (min, max), or both = value */
	unsigned int n; /* turns */
};

void bl_result_add(const char *group, const char *variant,
    const char *metric, const char *unit, double value, double lo, double hi,
    unsigned int n);
/* A result from one value per round: their median, minimum and maximum. */
void bl_result_add_rounds(const char *group, const char *variant,
    const char *metric, const char *unit, const double *v, size_t n);
/* The value of a result added before, or a negative number when none. */
double bl_result_get(const char *group, const char *variant,
    const char *metric);
void bl_note(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int bl_json_write(const char *path, const char *bench);
void bl_results_free(void);

/* A line describing the machine: CPU model, online CPUs, kernel. */
void bl_machine(char *buf, size_t len);

/*
 * Seal one TLS record for a session sending with key/iv (iv: 12 bytes for
 * TLS 1.3 and ChaCha, the 4-byte salt for TLS 1.2 AES-GCM) into out: type,
 * content and, for TLS 1.3, the inner type byte.  TLS 1.2 AES-GCM uses the
 * sequence number as its explicit nonce.  Returns the record's length or 0
 * on failure.  A sealer keeps one EVP context with its key set up once,
 * and is used by one thread at a time.
 */
struct bl_sealer;
struct bl_sealer *bl_sealer_new(int cipher, int key_len, int minor,
    const uint8_t *key, const uint8_t *iv);
size_t bl_seal(struct bl_sealer *s, uint64_t seqno, uint8_t type,
    const uint8_t *content, size_t len, uint8_t *out);
void bl_sealer_free(struct bl_sealer *s);
/* Length of a sealed record of len content bytes. */
size_t bl_sealed_len(int cipher, int minor, size_t len);

/*
 * The cipher library alone, for reference: decrypt and authenticate one
 * contiguous record in place, with the nonce and additional data the
 * backends use, through OpenSSL EVP ("evp") or ipsec-mb's direct API
 * ("imb", NULL where not built).  0 or EBADMSG.
 */
struct tls_session_params;
struct bl_raw;
struct bl_raw *bl_raw_new(const char *lib,
    const struct tls_session_params *p);
int bl_raw_decrypt(struct bl_raw *r, uint8_t *rec, uint32_t reclen,
    uint64_t seqno);
void bl_raw_free(struct bl_raw *r);

#endif /* UKTLS_BENCHLIB_H */
