#include "certreload_keys.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

static int certreload_no_passphrase(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg) {
    (void)pass; (void)size; (void)params; (void)arg;
    *len = 0;
    return 0;
}

/* Decoder contexts are not safe to share, and building one costs far more than a decode, so
 * they are kept in a pool: a caller takes one (or builds one when all are busy) and gives it
 * back. The pool never holds more contexts than calls ever ran at once. (They used to be per
 * thread, which leaked one context per exited thread: every Blocking.run is a new thread.) */
struct decoder_slot {
    OSSL_DECODER_CTX *context;
    EVP_PKEY *decoded; /* the context's output slot: its address is fixed when it is built */
    struct decoder_slot *next;
};

struct decoder_pool {
    pthread_mutex_t lock;
    struct decoder_slot *free;
    const char *input;
    const char *structure;
    int selection;
    /* The key type the decoder is built for ("" any: it then tries every key manager, which
     * costs several times more to build). */
    char keytype[80];
};

static struct decoder_pool private_keys = {PTHREAD_MUTEX_INITIALIZER, NULL, "PEM", NULL, EVP_PKEY_KEYPAIR, ""};

/* Keys of a known type: one pool per (structure, key type), as d2i_X509 builds its decoder for
 * the algorithm the certificate names (rsaEncryption, id-ecPublicKey, ED25519, …). A decoder
 * for one key type costs about a third of one for any (1.2 vs 3.8 million instructions). */
#define TYPED_POOLS 16
static pthread_mutex_t typed_pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct decoder_pool typed_pools[TYPED_POOLS];
static int typed_pool_count;

/* The DER pool for `structure` and `keytype`, NULL when TYPED_POOLS are already in use.
 * `structure` is one of the string literals below (compared by address). */
static struct decoder_pool *typed_pool(const char *structure, int selection, const char *keytype) {
    struct decoder_pool *pool = NULL;
    pthread_mutex_lock(&typed_pools_lock);
    for (int index = 0; index < typed_pool_count; index++) {
        if (typed_pools[index].structure == structure && strcmp(typed_pools[index].keytype, keytype) == 0) {
            pool = &typed_pools[index];
            break;
        }
    }
    if (pool == NULL && typed_pool_count < TYPED_POOLS && strlen(keytype) < sizeof pool->keytype) {
        pool = &typed_pools[typed_pool_count++];
        pthread_mutex_init(&pool->lock, NULL);
        pool->free = NULL;
        pool->input = "DER";
        pool->structure = structure;
        pool->selection = selection;
        strcpy(pool->keytype, keytype);
    }
    pthread_mutex_unlock(&typed_pools_lock);
    return pool;
}

static const char public_key_info[] = "SubjectPublicKeyInfo";
static const char private_key_info[] = "PrivateKeyInfo";
static const char type_specific[] = "type-specific";

static struct decoder_slot *decoder_take(struct decoder_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    struct decoder_slot *slot = pool->free;
    if (slot != NULL) pool->free = slot->next;
    pthread_mutex_unlock(&pool->lock);
    if (slot != NULL) return slot;
    slot = calloc(1, sizeof *slot);
    if (slot == NULL) return NULL;
    slot->context = OSSL_DECODER_CTX_new_for_pkey(&slot->decoded, pool->input, pool->structure,
                                                  pool->keytype[0] ? pool->keytype : NULL, pool->selection, NULL, NULL);
    if (slot->context == NULL || !OSSL_DECODER_CTX_set_passphrase_cb(slot->context, certreload_no_passphrase, NULL)) {
        OSSL_DECODER_CTX_free(slot->context);
        free(slot);
        return NULL;
    }
    return slot;
}

static void decoder_give_back(struct decoder_pool *pool, struct decoder_slot *slot) {
    slot->decoded = NULL;
    pthread_mutex_lock(&pool->lock);
    slot->next = pool->free;
    pool->free = slot;
    pthread_mutex_unlock(&pool->lock);
}

/* Decodes DER with a pooled decoder for (`structure`, `keytype`); with more key types than
 * pools, with the context of a one-off pool, freed after use (built for any key type when the
 * name is too long to keep). */
static EVP_PKEY *decode_der(const char *structure, int selection, const char *keytype, const unsigned char *der, size_t length) {
    struct decoder_pool one_off = {PTHREAD_MUTEX_INITIALIZER, NULL, "DER", structure, selection, ""};
    struct decoder_pool *pool = typed_pool(structure, selection, keytype);
    if (pool == NULL) {
        if (strlen(keytype) < sizeof one_off.keytype) strcpy(one_off.keytype, keytype);
        pool = &one_off;
    }
    struct decoder_slot *slot = decoder_take(pool);
    if (slot == NULL) return NULL;
    EVP_PKEY *key = NULL;
    const unsigned char *cursor = der;
    size_t left = length;
    slot->decoded = NULL;
    if (OSSL_DECODER_from_data(slot->context, &cursor, &left) && slot->decoded != NULL) {
        key = slot->decoded;
    } else {
        EVP_PKEY_free(slot->decoded);
    }
    slot->decoded = NULL;
    if (pool == &one_off) {
        OSSL_DECODER_CTX_free(slot->context);
        free(slot);
    } else {
        decoder_give_back(pool, slot);
    }
    return key;
}

/* The key in the first private-key block of `pem` when that block is one of certbot's and
 * OpenSSL's plain forms (PKCS#8 "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", with no
 * encryption headers) and only certificates come before it, decoded by a decoder built for
 * its key type. NULL otherwise, with the error queue as it was: the caller then decodes as
 * PEM_read_bio_PrivateKey would, so every failure and every other form reads exactly as
 * before, and a key read here is the one that reading would have returned. */
static EVP_PKEY *read_private_key_typed(const unsigned char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    EVP_PKEY *key = NULL;
    ERR_set_mark();
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long data_length = 0;
    while (PEM_read_bio(bio, &name, &header, &data, &data_length)) {
        const char *structure = NULL;
        char keytype[80] = "";
        if (strcmp(name, "PRIVATE KEY") == 0) {
            structure = private_key_info;
            const unsigned char *cursor = data;
            PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &cursor, data_length);
            const ASN1_OBJECT *algorithm = NULL;
            /* The name EVP_PKCS82PKEY's decoder would find the key manager by. */
            if (info == NULL || !PKCS8_pkey_get0(&algorithm, NULL, NULL, NULL, info)
                || OBJ_obj2txt(keytype, sizeof keytype, algorithm, 0) <= 0) {
                structure = NULL;
            }
            PKCS8_PRIV_KEY_INFO_free(info);
        } else if (strcmp(name, "RSA PRIVATE KEY") == 0) {
            structure = type_specific;
            strcpy(keytype, "RSA");
        } else if (strcmp(name, "EC PRIVATE KEY") == 0) {
            structure = type_specific;
            strcpy(keytype, "EC");
        }
        int certificate = strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_TRUSTED) == 0
            || strcmp(name, PEM_STRING_X509_OLD) == 0;
        if (structure != NULL && header[0] == 0) {
            key = decode_der(structure, EVP_PKEY_KEYPAIR, keytype, data, (size_t)data_length);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
        if (!certificate) break; /* the first block that is not a certificate decides */
    }
    ERR_pop_to_mark();
    BIO_free(bio);
    return key;
}

EVP_PKEY *certreload_read_private_key(const unsigned char *pem, size_t length) {
    if (length > (size_t)0x7fffffff) return NULL;
    EVP_PKEY *typed = read_private_key_typed(pem, length);
    if (typed != NULL) return typed;
    struct decoder_slot *slot = decoder_take(&private_keys);
    if (slot == NULL) return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) {
        decoder_give_back(&private_keys, slot);
        return NULL;
    }
    /* As PEM_read_bio_PrivateKey: try block after block until a key decodes or the text ends. */
    EVP_PKEY *key = NULL;
    long position = BIO_tell(bio);
    ERR_set_mark();
    for (;;) {
        slot->decoded = NULL;
        if (OSSL_DECODER_from_bio(slot->context, bio) && slot->decoded != NULL) {
            key = slot->decoded;
            slot->decoded = NULL;
            ERR_pop_to_mark();
            break;
        }
        EVP_PKEY_free(slot->decoded);
        slot->decoded = NULL;
        long next = BIO_tell(bio);
        if (BIO_eof(bio) || next < 0 || next <= position) {
            ERR_clear_last_mark();
            break;
        }
        position = next;
    }
    BIO_free(bio);
    decoder_give_back(&private_keys, slot);
    return key;
}

/* A library context with only the null provider (so the default one is never loaded into it):
 * building a key decoder there finds nothing and costs next to nothing. */
static OSSL_LIB_CTX *bare_context;
static pthread_once_t bare_once = PTHREAD_ONCE_INIT;

static void bare_context_init(void) {
    OSSL_LIB_CTX *context = OSSL_LIB_CTX_new();
    if (context == NULL) return;
    if (OSSL_PROVIDER_load(context, "null") == NULL) {
        OSSL_LIB_CTX_free(context);
        return;
    }
    bare_context = context;
}

X509 *certreload_read_certificate_bare(const unsigned char *pem, size_t length) {
    if (length > (size_t)0x7fffffff) return NULL;
    pthread_once(&bare_once, bare_context_init);
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    /* PEM_read_bio_X509 is PEM_ASN1_read_bio: these bytes, then d2i_X509 on them. */
    unsigned char *data = NULL;
    long data_length = 0;
    int read = PEM_bytes_read_bio(&data, &data_length, NULL, PEM_STRING_X509, bio, NULL, NULL);
    BIO_free(bio);
    if (!read) return NULL;
    X509 *cert = NULL;
    if (bare_context != NULL && (cert = X509_new_ex(bare_context, NULL)) == NULL) {
        OPENSSL_free(data);
        return NULL;
    }
    const unsigned char *cursor = data;
    X509 *parsed = d2i_X509(&cert, &cursor, data_length);
    if (parsed == NULL) ERR_raise(ERR_LIB_PEM, ERR_R_ASN1_LIB);
    OPENSSL_free(data);
    return parsed;
}

EVP_PKEY *certreload_x509_public_key(X509 *cert) {
    X509_PUBKEY *spki_field = X509_get_X509_PUBKEY(cert);
    ASN1_OBJECT *algorithm = NULL;
    if (spki_field == NULL || !X509_PUBKEY_get0_param(&algorithm, NULL, NULL, NULL, spki_field)) return NULL;
    /* The name d2i_X509 gives its decoder (x509_pubkey_ex_d2i_ex in crypto/x509/x_pubkey.c). */
    char keytype[80];
    if (OBJ_obj2txt(keytype, sizeof keytype, algorithm, 0) <= 0) keytype[0] = 0;
    unsigned char *spki = NULL;
    int spki_length = i2d_X509_PUBKEY(spki_field, &spki);
    if (spki_length <= 0) return NULL;
    EVP_PKEY *key = decode_der(public_key_info, EVP_PKEY_PUBLIC_KEY, keytype, spki, (size_t)spki_length);
    OPENSSL_free(spki);
    return key;
}

/* The length of the DER element at der[0..], or 0 when it is not one (definite lengths only,
 * as DER demands). *header gets the size of its tag and length octets. */
static size_t der_element(const unsigned char *der, size_t available, size_t *header) {
    if (available < 2 || (der[0] & 0x1f) == 0x1f) return 0;
    size_t length = der[1];
    size_t offset = 2;
    if (length & 0x80) {
        size_t octets = length & 0x7f;
        if (octets == 0 || octets > sizeof(size_t) || available < 2 + octets) return 0;
        length = 0;
        for (size_t index = 0; index < octets; index++) length = (length << 8) | der[2 + index];
        offset += octets;
    }
    if (length > available - offset) return 0;
    *header = offset;
    return offset + length;
}

int certreload_x509_verify_der(X509 *cert, const unsigned char *der, size_t der_length, EVP_PKEY *key) {
    if (key == NULL) return -1;
    const ASN1_BIT_STRING *signature = NULL;
    const X509_ALGOR *algorithm = NULL;
    X509_get0_signature(&signature, &algorithm, cert);
    /* X509_verify's first test: the outer signature algorithm is the one signed inside. */
    if (X509_ALGOR_cmp(algorithm, X509_get0_tbs_sigalg(cert)) != 0) return 0;
    /* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } */
    size_t outer_header = 0;
    size_t outer = der_element(der, der_length, &outer_header);
    if (outer == 0 || der[0] != 0x30) return -1;
    size_t tbs_header = 0;
    size_t tbs = der_element(der + outer_header, outer - outer_header, &tbs_header);
    if (tbs == 0 || der[outer_header] != 0x30) return -1;
    /* An ANY holding a SEQUENCE encodes as its bytes unchanged: the tbsCertificate as signed,
     * which is what X509_verify digests (OpenSSL keeps the encoding a certificate came in). */
    ASN1_TYPE *any = ASN1_TYPE_new();
    ASN1_STRING *bytes = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    if (any == NULL || bytes == NULL || !ASN1_STRING_set(bytes, der + outer_header, (int)tbs)) {
        ASN1_TYPE_free(any);
        ASN1_STRING_free(bytes);
        return -1;
    }
    ASN1_TYPE_set(any, V_ASN1_SEQUENCE, bytes);
    int ok = ASN1_item_verify_ex(ASN1_ITEM_rptr(ASN1_ANY), algorithm, signature, any, NULL, key, NULL, NULL);
    ASN1_TYPE_free(any);
    return ok;
}

int certreload_x509_check_ca_bare(X509 *cert) {
    /* X509_check_ca gives up on a certificate whose SHA-1 fingerprint it could not take, and a
     * provider-less context has no SHA-1; the flags themselves are all computed. What follows
     * is check_ca() of OpenSSL 3.0's crypto/x509/v3_purp.c on those flags. */
    ERR_set_mark();
    uint32_t flags = X509_get_extension_flags(cert);
    uint32_t usage = X509_get_key_usage(cert);
    ERR_pop_to_mark();
    if (flags & EXFLAG_INVALID) return 0;
    if ((flags & EXFLAG_KUSAGE) && !(usage & KU_KEY_CERT_SIGN)) return 0;
    if (flags & EXFLAG_BCONS) return (flags & EXFLAG_CA) ? 1 : 0;
    if ((flags & (EXFLAG_V1 | EXFLAG_SS)) == (EXFLAG_V1 | EXFLAG_SS)) return 3;
    if (flags & EXFLAG_KUSAGE) return 4;
    if (flags & EXFLAG_NSCERT) {
        ERR_set_mark();
        ASN1_BIT_STRING *types = X509_get_ext_d2i(cert, NID_netscape_cert_type, NULL, NULL);
        ERR_pop_to_mark();
        int ca = types != NULL && types->length > 0 && (types->data[0] & NS_ANY_CA);
        ASN1_BIT_STRING_free(types);
        if (ca) return 5;
    }
    return 0;
}

/* The pooled decoders belong to no thread; what a thread still holds is OpenSSL's own
 * thread-local state (its error queue above all). */
void certreload_release_thread_crypto(void) {
    OPENSSL_thread_stop();
}
