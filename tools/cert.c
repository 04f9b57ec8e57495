/*
 * The server's certificate: a chain and key from PEM files, or an ephemeral
 * self-signed EC P-256 certificate made in memory, so that `uktls serve` and
 * `uktls demo` need nothing on disk.  The ephemeral key never leaves the
 * process; clients are expected to skip verification (s_client does by
 * default, gnutls-cli with --insecure).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"

/* Valid from an hour ago (clock skew) for a week. */
#define CERT_BACKDATE_S (60L * 60)
#define CERT_LIFETIME_S (7L * 24 * 60 * 60)

static int
cert_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	if (ext == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static int
cert_make(EVP_PKEY **pkeyp, X509 **xp)
{
	EVP_PKEY_CTX *kctx = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	BIGNUM *bn = NULL;
	unsigned char serial[16];
	int error = EPROTO;

	kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (kctx == NULL || EVP_PKEY_keygen_init(kctx) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(kctx, "P-256") <= 0 ||
	    EVP_PKEY_generate(kctx, &pkey) <= 0)
		goto out;
	x = X509_new();
	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1)
		goto out;
	/* A random positive serial, so that clients caching certificates by
	 * issuer and serial never confuse two runs. */
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ==
	    NULL)
		goto out;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -CERT_BACKDATE_S) ==
	    NULL || X509_gmtime_adj(X509_getm_notAfter(x), CERT_LIFETIME_S) ==
	    NULL || X509_set_pubkey(x, pkey) != 1)
		goto out;
	name = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"uktls ephemeral", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (!cert_add_ext(x, &v3, NID_subject_alt_name,
	    "DNS:localhost,IP:127.0.0.1,IP:::1") ||
	    !cert_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    !cert_add_ext(x, &v3, NID_key_usage,
	    "critical,digitalSignature") ||
	    !cert_add_ext(x, &v3, NID_ext_key_usage, "serverAuth"))
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	*pkeyp = pkey;
	*xp = x;
	pkey = NULL;
	x = NULL;
	error = 0;
out:
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(kctx);
	return error;
}

/* "CN=localhost, sha256 AB:CD:..." for the log. */
static void
cert_describe(X509 *x, const char *what, char *desc, size_t desclen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char subject[128], fp[3 * EVP_MAX_MD_SIZE + 1];
	size_t off = 0;
	BIO *bio;
	int n;

	subject[0] = '\0';
	bio = BIO_new(BIO_s_mem());
	if (bio != NULL && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
	    XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(bio, subject, (int)sizeof(subject) - 1);
		subject[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
	fp[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1) {
		for (i = 0; i < mdlen && off + 4 <= sizeof(fp); i++)
			off += (size_t)snprintf(fp + off, sizeof(fp) - off,
			    "%s%02X", i > 0 ? ":" : "", md[i]);
	}
	snprintf(desc, desclen, "%s %s, sha256 %s", what, subject, fp);
}

int
cert_setup(SSL_CTX *ctx, const char *cert_file, const char *key_file,
    char *desc, size_t desclen, char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	char why[160];
	int error = 0;

	if ((cert_file == NULL) != (key_file == NULL)) {
		snprintf(err, errlen, "--cert and --key go together");
		return EINVAL;
	}
	if (cert_file != NULL) {
		/* OpenSSL's own error would say only "system lib". */
		if (access(cert_file, R_OK) != 0 ||
		    access(key_file, R_OK) != 0) {
			snprintf(err, errlen, "%s: %s", access(cert_file,
			    R_OK) != 0 ? cert_file : key_file,
			    strerror(errno));
			error = EINVAL;
			goto out;
		}
		if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
			ssl_errstr(why, sizeof(why));
			snprintf(err, errlen, "%s: %s", cert_file, why);
			error = EINVAL;
			goto out;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key_file,
		    SSL_FILETYPE_PEM) != 1) {
			ssl_errstr(why, sizeof(why));
			snprintf(err, errlen, "%s: %s", key_file, why);
			error = EINVAL;
			goto out;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(err, errlen, "%s does not match %s", key_file,
			    cert_file);
			error = EINVAL;
			goto out;
		}
		cert_describe(SSL_CTX_get0_certificate(ctx), "certificate",
		    desc, desclen);
		goto out;
	}
	error = cert_make(&pkey, &x);
	if (error != 0) {
		ssl_errstr(why, sizeof(why));
		snprintf(err, errlen, "making a certificate: %s", why);
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
		ssl_errstr(why, sizeof(why));
		snprintf(err, errlen, "using the certificate: %s", why);
		error = EPROTO;
		goto out;
	}
	cert_describe(x, "ephemeral self-signed EC P-256 certificate", desc,
	    desclen);
out:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return error;
}
