#ifndef CERTRELOAD_SYSTEMD_H
#define CERTRELOAD_SYSTEMD_H

#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-daemon.h>

#endif
