/* Without this, sd-journal.h turns sd_journal_sendv into sd_journal_sendv_with_location with
   this file's CODE_FILE (the build machine's absolute path), CODE_LINE and CODE_FUNC: every
   entry would carry them next to the Swift caller's own, which the fields already hold. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include "certreload_systemd.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>

int certreload_bus_call_s(sd_bus *bus, const char *destination, const char *path,
                          const char *interface, const char *member, sd_bus_error *error,
                          sd_bus_message **reply, const char *arg1) {
    return sd_bus_call_method(bus, destination, path, interface, member, error, reply, "s", arg1);
}

int certreload_bus_call_ss(sd_bus *bus, const char *destination, const char *path,
                           const char *interface, const char *member, sd_bus_error *error,
                           sd_bus_message **reply, const char *arg1, const char *arg2) {
    return sd_bus_call_method(bus, destination, path, interface, member, error, reply, "ss", arg1,
                              arg2);
}

int certreload_bus_call_void(sd_bus *bus, const char *destination, const char *path,
                             const char *interface, const char *member, sd_bus_error *error,
                             sd_bus_message **reply) {
    return sd_bus_call_method(bus, destination, path, interface, member, error, reply, NULL);
}

int certreload_bus_message_read_object_path(sd_bus_message *message, const char **path) {
    return sd_bus_message_read(message, "o", path);
}

int certreload_bus_message_read_job_removed(sd_bus_message *message, uint32_t *id,
                                            const char **job, const char **unit,
                                            const char **result) {
    return sd_bus_message_read(message, "uoss", id, job, unit, result);
}

int certreload_journal_send_fields(const char *const *fields, const size_t *lengths, size_t count) {
    if (count == 0 || count > 1024) return -EINVAL;
    struct iovec *iov = calloc(count, sizeof *iov);
    if (iov == NULL) return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        iov[i].iov_base = (void *)fields[i];
        iov[i].iov_len = lengths[i];
    }
    int r = sd_journal_sendv(iov, (int)count);
    free(iov);
    return r;
}
