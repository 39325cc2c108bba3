#ifndef CERTRELOAD_TLS_H
#define CERTRELOAD_TLS_H

#include <openssl/ssl.h>

/* Shims for the TLS verify probe (Sources/CertReload/Probe). */

/// SSL_set_tlsext_host_name (a macro over SSL_ctrl): the SNI name to send. Returns 1 on success.
int certreload_ssl_set_sni(SSL *ssl, const char *name);

/// The peer's certificate chain as it sent it (leaf first on the client side); not owned.
STACK_OF(X509) *certreload_ssl_peer_chain(const SSL *ssl);

/// X509_up_ref, so a certificate taken from a stack outlives the SSL it came from.
int certreload_x509_up_ref(X509 *cert);

/// The name of the negotiated cipher suite, or NULL before a handshake.
const char *certreload_ssl_cipher_name(const SSL *ssl);

/// Bytes waiting in a memory BIO (BIO_ctrl_pending, kept here for symmetry with the macros).
size_t certreload_bio_pending(BIO *bio);

#endif
