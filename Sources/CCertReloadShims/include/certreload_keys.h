#ifndef CERTRELOAD_KEYS_H
#define CERTRELOAD_KEYS_H

#include <stddef.h>
#include <openssl/evp.h>

/// Decodes the first private key in PEM text (PKCS#8, PKCS#1 RSA, SEC1 EC, …), skipping other
/// PEM blocks, never asking for a passphrase (an encrypted key fails). NULL on failure, with
/// OpenSSL's error queue set. What PEM_read_bio_PrivateKey does, but with one decoder context
/// per thread, built once and reused: OpenSSL 3.0 spends ~5 million instructions building that
/// context for every key (OSSL_DECODER_CTX_new_for_pkey), far more than decoding the key.
EVP_PKEY *certreload_read_private_key(const unsigned char *pem, size_t length);

/// Frees this thread's OpenSSL state now (its key decoder, OpenSSL's error queue and other
/// thread-local state: OPENSSL_thread_stop) instead of in the thread's exit destructors. For a
/// thread that is about to hand its result over and end: once the result is seen the process
/// may exit before those destructors ran, and LeakSanitizer then reports the error queue.
void certreload_release_thread_crypto(void);

#endif
