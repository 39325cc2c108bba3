#ifndef CERTRELOAD_SYSTEMD_H
#define CERTRELOAD_SYSTEMD_H

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-daemon.h>

/* Typed wrappers for libsystemd's variadic calls. Each returns what libsystemd returns:
   >= 0 on success, -errno on failure (with `error` filled for D-Bus errors). */

/// sd_bus_call_method with one string argument (signature "s"), e.g. GetUnit(name).
int certreload_bus_call_s(sd_bus *bus, const char *destination, const char *path,
                          const char *interface, const char *member, sd_bus_error *error,
                          sd_bus_message **reply, const char *arg1);

/// sd_bus_call_method with two string arguments (signature "ss"), e.g. ReloadUnit(name, mode).
int certreload_bus_call_ss(sd_bus *bus, const char *destination, const char *path,
                           const char *interface, const char *member, sd_bus_error *error,
                           sd_bus_message **reply, const char *arg1, const char *arg2);

/// sd_bus_call_method without arguments, e.g. Subscribe().
int certreload_bus_call_void(sd_bus *bus, const char *destination, const char *path,
                             const char *interface, const char *member, sd_bus_error *error,
                             sd_bus_message **reply);

/// sd_bus_message_read(m, "o", &path): the object path a method returned. The string
/// belongs to the message.
int certreload_bus_message_read_object_path(sd_bus_message *message, const char **path);

/// sd_bus_message_read(m, "uoss", ...): the body of systemd's Manager.JobRemoved signal
/// (id, job path, unit, result). The strings belong to the message.
int certreload_bus_message_read_job_removed(sd_bus_message *message, uint32_t *id,
                                            const char **job, const char **unit,
                                            const char **result);

/// sd_journal_sendv over `count` fields, each "NAME=value" of `lengths[i]` bytes (the value
/// may hold newlines or any byte). No CODE_* fields are added (systemd.c defines
/// SD_JOURNAL_SUPPRESS_LOCATION before including sd-journal.h): the caller passes them.
int certreload_journal_send_fields(const char *const *fields, const size_t *lengths, size_t count);

#endif
