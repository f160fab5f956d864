/*
 * Redis for the core and for modules (httpd_redis_* in <httpd/module.h>):
 * the endpoint is made in the master (redis_endpoint.c: address, password,
 * scripts), and each worker keeps one pipelined connection (redis.c).
 */
#ifndef HTTPD_API_REDIS_H
#define HTTPD_API_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "httpd/module.h"

#define REDIS_SCRIPTS_MAX 8

struct redisAsyncContext;
struct redis_cmd;

struct httpd_redis_script {
	char  sha[41];
	char *source;
};

struct httpd_redis {
	char               *address;    /* as configured, for messages */
	char               *host;       /* numeric, resolved in the master; NULL for a unix socket */
	int                 port;
	char               *unix_path;
	char               *password;   /* wiped when freed */
	size_t              password_len;
	unsigned            timeout_ms;
	struct httpd_redis_script *scripts[REDIS_SCRIPTS_MAX];
	size_t              script_count;
	/* The worker's connection (the master never opens one): redis.c. */
	struct redisAsyncContext *ac;
	void              (*drop)(struct httpd_redis *rd);
	struct httpd_event *io;
	unsigned            io_events;
	struct httpd_event *timer;
	struct redis_cmd   *oldest, *newest;   /* the commands sent, in order */
	uint64_t            retry_at_ms; /* no connection before this (backoff) */
	unsigned            backoff_ms;
	time_t              logged_at;  /* failures are logged once a second */
	unsigned            unlogged;
	struct httpd_event *log_timer;
	char                last_failure[160];
};

#endif
