#include "certreload_tls.h"

int certreload_ssl_set_sni(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

STACK_OF(X509) *certreload_ssl_peer_chain(const SSL *ssl) {
    return SSL_get_peer_cert_chain(ssl);
}

int certreload_x509_up_ref(X509 *cert) {
    return X509_up_ref(cert);
}

const char *certreload_ssl_cipher_name(const SSL *ssl) {
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    return cipher == NULL ? NULL : SSL_CIPHER_get_name(cipher);
}

size_t certreload_bio_pending(BIO *bio) {
    return BIO_ctrl_pending(bio);
}
