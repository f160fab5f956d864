/*
 * systemd, spoken directly (no libsystemd): the notify protocol (a
 * datagram to $NOTIFY_SOCKET, abstract names included) for Type=notify,
 * the watchdog, and socket activation ($LISTEN_FDS/$LISTEN_PID/
 * $LISTEN_FDNAMES).  Everything here is a no-op outside systemd.
 */
#ifndef HTTPD_SYSTEMD_H
#define HTTPD_SYSTEMD_H

#include <stdbool.h>
#include <stdint.h>

#include "listen.h"

/* Reads and clears the environment (children must not see it). */
void systemd_init(void);

/* Sends one notify message ("READY=1", "STATUS=..."); false when not under systemd or it failed. */
bool systemd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The notify socket systemd gave us ("" if none), for a new master after a binary upgrade. */
const char *systemd_notify_socket(void);
/* "RELOADING=1" with the MONOTONIC_USEC systemd wants beside it. */
void systemd_notify_reloading(void);

/* The watchdog interval in ms (half of WATCHDOG_USEC), 0 when there is none. */
uint64_t systemd_watchdog_ms(void);

/*
 * A listening socket systemd passed for spec (matched by its
 * FileDescriptorName= being the address as written, or by getsockname),
 * taken over by the caller; -1 when there is none.
 */
int  systemd_listen_take(const struct listen_spec *spec);
/* Closes the passed sockets nothing took, naming them in the log. */
void systemd_listen_close_unused(void);

#endif
