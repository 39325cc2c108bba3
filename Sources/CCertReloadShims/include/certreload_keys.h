#ifndef CERTRELOAD_KEYS_H
#define CERTRELOAD_KEYS_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/// Decodes the first private key in PEM text (PKCS#8, PKCS#1 RSA, SEC1 EC, …), skipping other
/// PEM blocks, never asking for a passphrase (an encrypted key fails). NULL on failure, with
/// OpenSSL's error queue set. What PEM_read_bio_PrivateKey does, but with decoder contexts
/// built once and reused: OpenSSL 3.0 spends ~5 million instructions building that context
/// for every key (OSSL_DECODER_CTX_new_for_pkey), far more than decoding the key.
EVP_PKEY *certreload_read_private_key(const unsigned char *pem, size_t length);

/// Frees this thread's OpenSSL state now (OpenSSL's error queue and other thread-local
/// state: OPENSSL_thread_stop) instead of in the thread's exit destructors. For a
/// thread that is about to hand its result over and end: once the result is seen the process
/// may exit before those destructors ran, and LeakSanitizer then reports the error queue.
void certreload_release_thread_crypto(void);

/// Parses one PEM certificate block as PEM_read_bio_X509 does (same checks, same errors),
/// without decoding its public key: OpenSSL 3.0's d2i_X509 builds a key decoder context for
/// every certificate (~1 million instructions). The certificate belongs to a library context
/// with no provider, so X509_verify, X509_digest and X509_get0_pubkey do not work on it: use
/// certreload_x509_public_key and certreload_x509_verify_der. NULL on failure, errors queued.
X509 *certreload_read_certificate_bare(const unsigned char *pem, size_t length);

/// The public key of a certificate read by certreload_read_certificate_bare, decoded from its
/// SubjectPublicKeyInfo with a reused decoder context (as d2i_X509 would have decoded it); the
/// caller frees it. NULL, with errors queued, when it cannot be decoded.
EVP_PKEY *certreload_x509_public_key(X509 *cert);

/// X509_verify(cert, key) for a certificate given with its DER encoding (i2d_X509): the
/// signature over the tbsCertificate bytes as they came, in the default library context.
/// 1 verified, 0 not, -1 an error.
int certreload_x509_verify_der(X509 *cert, const unsigned char *der, size_t der_length, EVP_PKEY *key);

/// X509_check_ca for a certificate read by certreload_read_certificate_bare (X509_check_ca
/// itself gives 0 there: it wants a SHA-1 fingerprint, which needs a provider).
int certreload_x509_check_ca_bare(X509 *cert);

#endif
