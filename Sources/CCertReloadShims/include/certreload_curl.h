#ifndef CERTRELOAD_CURL_H
#define CERTRELOAD_CURL_H

#include <curl/curl.h>

#endif
