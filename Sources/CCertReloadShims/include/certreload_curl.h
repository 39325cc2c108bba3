#ifndef CERTRELOAD_CURL_H
#define CERTRELOAD_CURL_H

#include <curl/curl.h>
#include <stddef.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic; Swift calls these typed wrappers. */
CURLcode certreload_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode certreload_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode certreload_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode certreload_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode certreload_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
/// A string owned by the handle (valid until the next transfer or cleanup), or NULL.
CURLcode certreload_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value);

/// Runs curl_global_init(CURL_GLOBAL_DEFAULT) exactly once per process (pthread_once);
/// returns its result on every call.
CURLcode certreload_curl_global_init_once(void);

/// A growable byte buffer that the write and header callbacks append to, up to `limit`
/// bytes; what arrives beyond the limit is counted in `dropped` and discarded.
typedef struct certreload_curl_buffer {
    unsigned char *data;
    size_t length;
    size_t capacity;
    size_t limit;
    size_t dropped;
    int failed; /* out of memory */
} certreload_curl_buffer;

void certreload_curl_buffer_free(certreload_curl_buffer *buffer);

/// Points CURLOPT_WRITEFUNCTION/WRITEDATA at `body` and CURLOPT_HEADERFUNCTION/HEADERDATA
/// at `headers`. The buffers must outlive the transfer.
CURLcode certreload_curl_capture(CURL *handle, certreload_curl_buffer *body,
                                 certreload_curl_buffer *headers);

/// Sets a request body of `length` bytes copied by curl (CURLOPT_POSTFIELDSIZE +
/// CURLOPT_COPYPOSTFIELDS), so the caller's memory need not outlive the call.
CURLcode certreload_curl_set_body(CURL *handle, const char *data, long length);

/// Restricts protocols (and redirect protocols) to HTTP and HTTPS.
CURLcode certreload_curl_http_only(CURL *handle);

/// Sends `Authorization: Bearer <token>` (CURLAUTH_BEARER), kept out of the header list.
CURLcode certreload_curl_auth_bearer(CURL *handle, const char *token);
/// Sends HTTP Basic credentials (CURLAUTH_BASIC), kept out of the header list.
CURLcode certreload_curl_auth_basic(CURL *handle, const char *username, const char *password);

#endif
