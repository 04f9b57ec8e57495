/*
 * The Intel ipsec-mb backend (crypto_ipsecmb.c), built where the Makefile
 * finds <intel-ipsec-mb.h> and defines UKTLS_HAVE_IPSECMB.  Kept apart from
 * crypto.h only until that header declares it next to ktls_crypto_openssl.
 */
#ifndef UKTLS_CRYPTO_IPSECMB_H
#define UKTLS_CRYPTO_IPSECMB_H

#include "crypto.h"

#ifdef UKTLS_HAVE_IPSECMB
extern const struct ktls_crypto_backend ktls_crypto_ipsecmb;
#endif

#endif /* UKTLS_CRYPTO_IPSECMB_H */
