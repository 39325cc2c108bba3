#include "certreload_keys.h"

#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>

static int certreload_no_passphrase(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg) {
    (void)pass; (void)size; (void)params; (void)arg;
    *len = 0;
    return 0;
}

/* One context per thread: a decoder context is not safe to share, and reusing it within one
 * thread only needs its output slot cleared before each use. The context lives as long as the
 * thread (a handful of threads per process). */
static _Thread_local OSSL_DECODER_CTX *key_decoder;
static _Thread_local EVP_PKEY *key_decoded;

EVP_PKEY *certreload_read_private_key(const unsigned char *pem, size_t length) {
    if (key_decoder == NULL) {
        key_decoder = OSSL_DECODER_CTX_new_for_pkey(&key_decoded, "PEM", NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
        if (key_decoder == NULL) return NULL;
        if (!OSSL_DECODER_CTX_set_passphrase_cb(key_decoder, certreload_no_passphrase, NULL)) {
            OSSL_DECODER_CTX_free(key_decoder);
            key_decoder = NULL;
            return NULL;
        }
    }
    if (length > (size_t)0x7fffffff) return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    /* As PEM_read_bio_PrivateKey: try block after block until a key decodes or the text ends. */
    EVP_PKEY *key = NULL;
    long position = BIO_tell(bio);
    ERR_set_mark();
    for (;;) {
        key_decoded = NULL;
        if (OSSL_DECODER_from_bio(key_decoder, bio) && key_decoded != NULL) {
            key = key_decoded;
            key_decoded = NULL;
            ERR_pop_to_mark();
            break;
        }
        EVP_PKEY_free(key_decoded);
        key_decoded = NULL;
        long next = BIO_tell(bio);
        if (BIO_eof(bio) || next < 0 || next <= position) {
            ERR_clear_last_mark();
            break;
        }
        position = next;
    }
    BIO_free(bio);
    return key;
}
