/* The master process: listeners, workers, signals, reloads. */
#ifndef HTTPD_MASTER_H
#define HTTPD_MASTER_H

#include <stdbool.h>

#include "config.h"

/*
 * Binds, daemonizes unless foreground, forks the workers and supervises
 * them until SIGTERM, SIGINT or SIGQUIT.  Takes ownership of config.
 * Returns the process exit status.
 */
int master_run(struct httpd_config *config, const char *config_path, bool foreground);

#endif
