/* The daemon's side of a worker: the hooks its event loop calls (event/worker.h). */
#ifndef HTTPD_WORKER_HOOKS_H
#define HTTPD_WORKER_HOOKS_H

#include "worker.h"

extern const struct worker_hooks daemon_worker_hooks;

#endif
