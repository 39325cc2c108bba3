#include "certreload_keys.h"

#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>

static int certreload_no_passphrase(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg) {
    (void)pass; (void)size; (void)params; (void)arg;
    *len = 0;
    return 0;
}

/* One decoder context per thread: a context is not safe to share, and reusing it within one
 * thread only needs its output slot cleared before each use. It is freed when its thread ends
 * (a pthread key's destructor): Blocking.run starts a thread per call and Dispatch's workers
 * come and go, so a context kept for the process's lifetime leaked one per thread (about
 * 2 KiB each, found by LeakSanitizer in `certreload demo`). */
struct certreload_key_decoder {
    OSSL_DECODER_CTX *context;
    EVP_PKEY *decoded; /* the context's output slot */
};

static pthread_key_t key_decoder_key;
static pthread_once_t key_decoder_once = PTHREAD_ONCE_INIT;
static int key_decoder_key_made;

static void certreload_free_key_decoder(void *value) {
    struct certreload_key_decoder *decoder = value;
    OSSL_DECODER_CTX_free(decoder->context);
    EVP_PKEY_free(decoder->decoded);
    free(decoder);
}

static void certreload_make_key_decoder_key(void) {
    key_decoder_key_made = pthread_key_create(&key_decoder_key, certreload_free_key_decoder) == 0;
}

/* This thread's decoder, made on first use; NULL when it cannot be made. */
static struct certreload_key_decoder *certreload_key_decoder(void) {
    pthread_once(&key_decoder_once, certreload_make_key_decoder_key);
    if (!key_decoder_key_made) return NULL;
    struct certreload_key_decoder *decoder = pthread_getspecific(key_decoder_key);
    if (decoder != NULL) return decoder;
    decoder = calloc(1, sizeof *decoder);
    if (decoder == NULL) return NULL;
    decoder->context = OSSL_DECODER_CTX_new_for_pkey(&decoder->decoded, "PEM", NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (decoder->context == NULL
        || !OSSL_DECODER_CTX_set_passphrase_cb(decoder->context, certreload_no_passphrase, NULL)
        || pthread_setspecific(key_decoder_key, decoder) != 0) {
        certreload_free_key_decoder(decoder);
        return NULL;
    }
    return decoder;
}

EVP_PKEY *certreload_read_private_key(const unsigned char *pem, size_t length) {
    struct certreload_key_decoder *decoder = certreload_key_decoder();
    if (decoder == NULL) return NULL;
    if (length > (size_t)0x7fffffff) return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    /* As PEM_read_bio_PrivateKey: try block after block until a key decodes or the text ends. */
    EVP_PKEY *key = NULL;
    long position = BIO_tell(bio);
    ERR_set_mark();
    for (;;) {
        decoder->decoded = NULL;
        if (OSSL_DECODER_from_bio(decoder->context, bio) && decoder->decoded != NULL) {
            key = decoder->decoded;
            decoder->decoded = NULL;
            ERR_pop_to_mark();
            break;
        }
        EVP_PKEY_free(decoder->decoded);
        decoder->decoded = NULL;
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

void certreload_release_thread_crypto(void) {
    pthread_once(&key_decoder_once, certreload_make_key_decoder_key);
    if (key_decoder_key_made) {
        struct certreload_key_decoder *decoder = pthread_getspecific(key_decoder_key);
        if (decoder != NULL) {
            pthread_setspecific(key_decoder_key, NULL);
            certreload_free_key_decoder(decoder);
        }
    }
    OPENSSL_thread_stop();
}
