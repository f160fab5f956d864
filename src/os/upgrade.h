/*
 * SIGUSR2 binary upgrade: the master starts the binary at its own path
 * again (the new one, after a package upgrade) with its listening sockets
 * inherited the way systemd passes them ($LISTEN_FDS), waits for the new
 * master to say every new worker accepts, then drains its own workers and
 * exits.  If the new master dies or is not ready within upgrade_timeout,
 * it is stopped and the old master simply goes on serving.
 */
#ifndef HTTPD_UPGRADE_H
#define HTTPD_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Before anything else: the path and arguments to start again, and whether we are the new master. */
void upgrade_init(char **argv);
/* This master was started by an upgrade (so it does not daemonize: it already is one). */
bool upgrade_is_new_master(void);
/* The new master: every worker accepts; tell the old one (once). */
void upgrade_report_ready(void);

enum upgrade_result { UPGRADE_READY, UPGRADE_FAILED };

/*
 * The old master: starts the new binary with fds[0..nfds) as its
 * listening sockets and waits up to timeout_ms for it to be ready.
 * *child is its pid (for MAINPID=); on failure it has been stopped.
 */
enum upgrade_result upgrade_start(const int *fds, size_t nfds, const char *notify_socket,
                                  unsigned timeout_ms, pid_t *child);

#endif
