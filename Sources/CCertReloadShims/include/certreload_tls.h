#ifndef CERTRELOAD_TLS_H
#define CERTRELOAD_TLS_H

#include <openssl/ssl.h>

#endif
