#ifndef CERTRELOAD_X509_H
#define CERTRELOAD_X509_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* OpenSSL macros and callbacks for certificate and key loading (Sources/CertReload/Validation). */

/// A PEM password callback that refuses, so an encrypted key fails instead of prompting.
int certreload_pem_no_password(char *buf, int size, int rwflag, void *userdata);

/// subjectAltName entries of a certificate (NULL when it has none). Free with
/// certreload_general_names_free.
GENERAL_NAMES *certreload_x509_get_sans(const X509 *cert);
int certreload_general_names_count(const GENERAL_NAMES *names);
/// Entry `index`: its GEN_* type and, for DNS/IP/email, its bytes. Returns 0 on success.
int certreload_general_name_at(const GENERAL_NAMES *names, int index, int *type,
                               const unsigned char **data, int *length);
void certreload_general_names_free(GENERAL_NAMES *names);

/// STACK_OF(X509) accessors (macros in OpenSSL).
int certreload_x509_stack_count(const STACK_OF(X509) *stack);
X509 *certreload_x509_stack_at(const STACK_OF(X509) *stack, int index);

/// XN_FLAG_RFC2253 (a macro built from other macros).
unsigned long certreload_xn_flag_rfc2253(void);

#endif
