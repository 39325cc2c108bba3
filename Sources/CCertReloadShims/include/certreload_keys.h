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

#endif
