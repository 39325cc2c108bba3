/*
 * libcurl and libsystemd, loaded on first use.
 *
 * `certreload check` is started once per renewed lineage and should start fast; linking
 * libcurl pulls in about 40 libraries (gnutls, krb5, ldap, ssh2, …) and costs several
 * milliseconds at every start. So neither library is linked: the functions certreload calls
 * are defined here under their own names and forward to the real ones, found with dlopen
 * the first time any of them is called. When a library is missing, the call fails the way
 * that function reports failure (NULL, CURLE_FAILED_INIT, -ELIBACC).
 */
#define _GNU_SOURCE
#define CURL_DISABLE_TYPECHECK 1
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <curl/curl.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>

static void *curl_library;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_load(void) { curl_library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL); }

static void *systemd_library;
static pthread_once_t systemd_once = PTHREAD_ONCE_INIT;
static void systemd_load(void) { systemd_library = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL); }

static void *curl_symbol(const char *name) {
    pthread_once(&curl_once, curl_load);
    return curl_library ? dlsym(curl_library, name) : NULL;
}

static void *systemd_symbol(const char *name) {
    pthread_once(&systemd_once, systemd_load);
    return systemd_library ? dlsym(systemd_library, name) : NULL;
}

/* The function pointer, looked up on first use. Threads may race to the first call: each
 * looks the symbol up and stores the same value. The pointer is an atomic (acquire/release),
 * not a plain `volatile`: two threads reading and writing it at once was a data race
 * (ThreadSanitizer, sd_notify from the watchdog timer and a status update). */
#define LAZY_SYMBOL(lib, type, name)                                            \
    static type real;                                                           \
    type fn = __atomic_load_n(&real, __ATOMIC_ACQUIRE);                         \
    if (fn == NULL) {                                                           \
        fn = (type)lib##_symbol(name);                                          \
        __atomic_store_n(&real, fn, __ATOMIC_RELEASE);                          \
    }

#define FORWARD(lib, ret, name, params, args, failure)                          \
    typedef ret(*name##_fn) params;                                             \
    ret name params {                                                           \
        LAZY_SYMBOL(lib, name##_fn, #name)                                      \
        if (fn == NULL) return failure;                                         \
        return fn args;                                                         \
    }

#define FORWARD_VOID(lib, name, params, args)                                   \
    typedef void(*name##_fn) params;                                            \
    void name params {                                                          \
        LAZY_SYMBOL(lib, name##_fn, #name)                                      \
        if (fn != NULL) fn args;                                                \
    }

/* ---- libcurl ---- */

FORWARD(curl, CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)
FORWARD(curl, CURL *, curl_easy_init, (void), (), NULL)
FORWARD_VOID(curl, curl_easy_cleanup, (CURL *handle), (handle))
FORWARD(curl, CURLcode, curl_easy_perform, (CURL *handle), (handle), CURLE_FAILED_INIT)
FORWARD(curl, const char *, curl_easy_strerror, (CURLcode code), (code),
        "libcurl could not be loaded (install libcurl4)")
FORWARD(curl, struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *text),
        (list, text), NULL)
FORWARD_VOID(curl, curl_slist_free_all, (struct curl_slist *list), (list))

/* curl_easy_setopt takes one argument whose type the option number says. */
CURLcode curl_easy_setopt(CURL *handle, CURLoption option, ...) {
    typedef CURLcode (*setopt_fn)(CURL *, CURLoption, ...);
    LAZY_SYMBOL(curl, setopt_fn, "curl_easy_setopt")
    if (fn == NULL) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long value = va_arg(ap, long);
        rc = fn(handle, option, value);
    } else if (option < CURLOPTTYPE_OFF_T) {
        void *value = va_arg(ap, void *); /* object and function pointers */
        rc = fn(handle, option, value);
    } else if (option < CURLOPTTYPE_BLOB) {
        curl_off_t value = va_arg(ap, curl_off_t);
        rc = fn(handle, option, value);
    } else {
        void *value = va_arg(ap, void *);
        rc = fn(handle, option, value);
    }
    va_end(ap);
    return rc;
}

/* curl_easy_getinfo always takes one pointer. */
CURLcode curl_easy_getinfo(CURL *handle, CURLINFO info, ...) {
    typedef CURLcode (*getinfo_fn)(CURL *, CURLINFO, ...);
    LAZY_SYMBOL(curl, getinfo_fn, "curl_easy_getinfo")
    if (fn == NULL) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *pointer = va_arg(ap, void *);
    va_end(ap);
    return fn(handle, info, pointer);
}

/* ---- libsystemd ---- */

FORWARD(systemd, int, sd_bus_open_system, (sd_bus **bus), (bus), -ELIBACC)
FORWARD(systemd, int, sd_bus_new, (sd_bus **bus), (bus), -ELIBACC)
FORWARD(systemd, int, sd_bus_set_address, (sd_bus *bus, const char *address), (bus, address), -ELIBACC)
FORWARD(systemd, int, sd_bus_set_bus_client, (sd_bus *bus, int b), (bus, b), -ELIBACC)
FORWARD(systemd, int, sd_bus_start, (sd_bus *bus), (bus), -ELIBACC)
FORWARD(systemd, sd_bus *, sd_bus_flush_close_unref, (sd_bus *bus), (bus), NULL)
FORWARD(systemd, int, sd_bus_process, (sd_bus *bus, sd_bus_message **m), (bus, m), -ELIBACC)
FORWARD(systemd, int, sd_bus_wait, (sd_bus *bus, uint64_t usec), (bus, usec), -ELIBACC)
FORWARD(systemd, int, sd_bus_set_method_call_timeout, (sd_bus *bus, uint64_t usec), (bus, usec), -ELIBACC)
FORWARD(systemd, sd_bus_slot *, sd_bus_slot_unref, (sd_bus_slot *slot), (slot), NULL)
FORWARD(systemd, sd_bus_message *, sd_bus_message_unref, (sd_bus_message *m), (m), NULL)
FORWARD_VOID(systemd, sd_bus_error_free, (sd_bus_error *e), (e))
FORWARD(systemd, int, sd_bus_get_property_trivial,
        (sd_bus *bus, const char *destination, const char *path, const char *interface, const char *member,
         sd_bus_error *error, char type, void *value),
        (bus, destination, path, interface, member, error, type, value), -ELIBACC)
FORWARD(systemd, int, sd_bus_match_signal,
        (sd_bus *bus, sd_bus_slot **slot, const char *sender, const char *path, const char *interface,
         const char *member, sd_bus_message_handler_t callback, void *userdata),
        (bus, slot, sender, path, interface, member, callback, userdata), -ELIBACC)
FORWARD(systemd, int, sd_bus_call_methodv,
        (sd_bus *bus, const char *destination, const char *path, const char *interface, const char *member,
         sd_bus_error *error, sd_bus_message **reply, const char *types, va_list ap),
        (bus, destination, path, interface, member, error, reply, types, ap), -ELIBACC)
FORWARD(systemd, int, sd_bus_message_readv, (sd_bus_message *m, const char *types, va_list ap), (m, types, ap),
        -ELIBACC)
FORWARD(systemd, int, sd_journal_sendv, (const struct iovec *iov, int n), (iov, n), -ELIBACC)
FORWARD(systemd, int, sd_notify, (int unset_environment, const char *state), (unset_environment, state), -ELIBACC)

int sd_bus_call_method(sd_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, sd_bus_error *error, sd_bus_message **reply, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    int r = sd_bus_call_methodv(bus, destination, path, interface, member, error, reply, types, ap);
    va_end(ap);
    return r;
}

int sd_bus_message_read(sd_bus_message *m, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    int r = sd_bus_message_readv(m, types, ap);
    va_end(ap);
    return r;
}

FORWARD(systemd, int, sd_journal_sendv_with_location,
        (const char *file, const char *line, const char *func, const struct iovec *iov, int n),
        (file, line, func, iov, n), -ELIBACC)

/* OpenSSL's trampolines (openssl-lazy.S) call this, on every thread, before their first
 * jump: dlopen libssl.so.3 (and with it libcrypto.so.3) once and fill every slot. OpenSSL is
 * not optional: without it nothing here can work, so a missing library or function ends the
 * process with a message naming it and the package that provides it. */
#if defined(__x86_64__) && defined(__linux__)
#include <stdio.h>
#include <unistd.h>

extern void *certreload_openssl_slots[] __attribute__((visibility("hidden")));
extern void *certreload_openssl_slots_end[] __attribute__((visibility("hidden")));
extern const char *const certreload_openssl_names[] __attribute__((visibility("hidden")));
void certreload_openssl_load(void) __attribute__((visibility("hidden")));

static pthread_once_t openssl_once = PTHREAD_ONCE_INIT;

static void openssl_fail(const char *what, const char *detail) {
    dprintf(2, "certreload: cannot load OpenSSL 3: %s: %s\n  fix: apt-get install libssl3 (certreload needs libssl.so.3 and libcrypto.so.3)\n",
            what, detail ? detail : "not found");
    _exit(1);
}

static void openssl_load_all(void) {
    void *library = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) openssl_fail("libssl.so.3", dlerror());
    size_t count = (size_t)(certreload_openssl_slots_end - certreload_openssl_slots);
    for (size_t index = 0; index < count; index++) {
        void *function = dlvsym(library, certreload_openssl_names[index], "OPENSSL_3.0.0");
        if (function == NULL) openssl_fail(certreload_openssl_names[index], dlerror());
        __atomic_store_n(&certreload_openssl_slots[index], function, __ATOMIC_RELEASE);
    }
}

void certreload_openssl_load(void) { pthread_once(&openssl_once, openssl_load_all); }
#endif
