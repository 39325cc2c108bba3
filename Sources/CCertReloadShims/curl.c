#include <fcntl.h>
#include "certreload_curl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

CURLcode certreload_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode certreload_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode certreload_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode certreload_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode certreload_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode certreload_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    char *text = NULL;
    CURLcode rc = curl_easy_getinfo(handle, info, &text);
    *value = text;
    return rc;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

static void global_init(void) {
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode certreload_curl_global_init_once(void) {
    pthread_once(&global_once, global_init);
    return global_result;
}

void certreload_curl_buffer_free(certreload_curl_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = 0;
    buffer->capacity = 0;
}

static size_t buffer_append(char *data, size_t size, size_t count, void *userdata) {
    certreload_curl_buffer *buffer = userdata;
    size_t total = size * count;
    size_t room = buffer->limit > buffer->length ? buffer->limit - buffer->length : 0;
    size_t take = total < room ? total : room;
    if (take > 0) {
        if (buffer->length + take > buffer->capacity) {
            size_t capacity = buffer->capacity ? buffer->capacity : 4096;
            while (capacity < buffer->length + take) capacity *= 2;
            if (capacity > buffer->limit) capacity = buffer->limit;
            unsigned char *grown = realloc(buffer->data, capacity);
            if (grown == NULL) {
                buffer->failed = 1;
                return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
            }
            buffer->data = grown;
            buffer->capacity = capacity;
        }
        memcpy(buffer->data + buffer->length, data, take);
        buffer->length += take;
    }
    buffer->dropped += total - take;
    return total;
}

/* libcurl opens its sockets without close-on-exec: a reload command spawned while a
 * transfer runs (another target, in watch mode) would inherit the connection and keep it
 * open for as long as it lives. */
static int socket_cloexec(void *userdata, curl_socket_t fd, curlsocktype purpose) {
    (void)userdata;
    (void)purpose;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    return CURL_SOCKOPT_OK;
}

CURLcode certreload_curl_capture(CURL *handle, certreload_curl_buffer *body,
                                 certreload_curl_buffer *headers) {
    CURLcode rc;
    if ((rc = curl_easy_setopt(handle, CURLOPT_SOCKOPTFUNCTION, socket_cloexec)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, buffer_append)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(handle, CURLOPT_WRITEDATA, body)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, buffer_append)) != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_HEADERDATA, headers);
}

CURLcode certreload_curl_set_body(CURL *handle, const char *data, long length) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE, length);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_COPYPOSTFIELDS, data);
}

CURLcode certreload_curl_http_only(CURL *handle) {
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0: string forms */
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

CURLcode certreload_curl_auth_bearer(CURL *handle, const char *token) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_HTTPAUTH, (unsigned long)CURLAUTH_BEARER);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_XOAUTH2_BEARER, token);
}

CURLcode certreload_curl_auth_basic(CURL *handle, const char *username, const char *password) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_HTTPAUTH, (unsigned long)CURLAUTH_BASIC);
    if (rc != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(handle, CURLOPT_USERNAME, username)) != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_PASSWORD, password);
}
