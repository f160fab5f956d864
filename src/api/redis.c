/*
 * Redis, for the state a fleet of servers shares (nonces, rate limits).
 *
 * An endpoint is made in the master from the configuration (its address
 * resolved and its password read there, once); every worker inherits it
 * and keeps its own connection, opened on first use, in its event loop:
 * hiredis' asynchronous API with an adapter onto the worker's events (the
 * way hiredis' own adapters/ do it for libevent and libev).  Commands are
 * pipelined on that one connection and answered in order.  Each has
 * `timeout` to be answered: the first one late fails every command on the
 * connection (they are queued behind it), which is dropped and opened
 * again after a backoff that doubles up to two seconds.  Meanwhile
 * commands fail at once, so a caller that fails closed answers at once.
 */
#include "redis.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "pool.h"
#include "request.h"
#include "scoreboard.h"
#include "timer.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
#define REPLY_ELEMENTS   16

struct redis_cmd;

/* A command's link to its request: in the request's pool, cut when the request ends. */
struct redis_wait {
	struct redis_cmd    *cmd;
	struct httpd_request *req;
};

struct redis_cmd {
	struct httpd_redis *rd;
	struct redis_wait  *wait;       /* NULL: no request, or it has ended */
	bool                for_request;
	httpd_redis_fn      fn;
	void               *arg;
	uint64_t            sent_us;
	uint64_t            deadline_ms;
	struct redis_cmd   *prev, *next;
	/* Sent as EVALSHA: on NOSCRIPT (a Redis restarted) it goes again as EVAL. */
	const struct httpd_redis_script *script;
	bool                as_eval;    /* the script's source, not its SHA1 */
	int                 argc;
	char              **argv;
	size_t             *argv_len;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The failures a second held back, told when it is over. */
static void failures_told(struct httpd_request *req, void *arg, unsigned events)
{
	struct httpd_redis *rd = arg;

	(void)req;
	(void)events;
	rd->log_timer = NULL;
	if (rd->unlogged == 0)
		return;
	httpd_log(HTTPD_LOG_ERR, "redis %s: %u more failure%s in the last second, the last: %s", rd->address,
	          rd->unlogged, rd->unlogged == 1 ? "" : "s", rd->last_failure);
	rd->unlogged = 0;
	rd->logged_at = time(NULL);
}

/* Once a second per worker at most, with the address and errno; the rest are counted, then told. */
static void failure_log(struct httpd_redis *rd, const char *what, int err)
{
	time_t now = time(NULL);

	snprintf(rd->last_failure, sizeof(rd->last_failure), "%s%s%s", what, err != 0 ? ": " : "",
	         err != 0 ? strerror(err) : "");
	if (now == rd->logged_at || rd->log_timer != NULL) {
		rd->unlogged++;
		if (rd->log_timer == NULL)
			rd->log_timer = httpd_worker_timer(1000, failures_told, rd);
		return;
	}
	httpd_log(HTTPD_LOG_ERR, "redis %s: %s", rd->address, rd->last_failure);
	rd->logged_at = now;
}

/* --- the adapter: hiredis' event hooks on the worker's loop ---------------- */

static void io_ready(struct httpd_request *req, void *arg, unsigned events)
{
	struct httpd_redis *rd = arg;

	(void)req;
	/* Either call may free the context (its cleanup hook clears rd->ac). */
	if (rd->ac != NULL && (events & (HTTPD_EVENT_WRITE | HTTPD_EVENT_ERROR)))
		redisAsyncHandleWrite(rd->ac);
	if (rd->ac != NULL && (events & (HTTPD_EVENT_READ | HTTPD_EVENT_ERROR)))
		redisAsyncHandleRead(rd->ac);
}

static void io_want(struct httpd_redis *rd, unsigned events)
{
	if (rd->ac == NULL || events == rd->io_events)
		return;
	rd->io_events = events;
	if (rd->io == NULL) {
		rd->io = httpd_worker_event_fd(rd->ac->c.fd, events, io_ready, rd);
		if (rd->io == NULL)
			failure_log(rd, "cannot watch the connection", errno);
	} else if (httpd_event_fd_mod(rd->io, events) < 0) {
		failure_log(rd, "cannot watch the connection", errno);
	}
}

static void hook_add_read(void *data)
{
	struct httpd_redis *rd = data;

	io_want(rd, rd->io_events | HTTPD_EVENT_READ);
}

static void hook_del_read(void *data)
{
	struct httpd_redis *rd = data;

	io_want(rd, rd->io_events & ~HTTPD_EVENT_READ);
}

static void hook_add_write(void *data)
{
	struct httpd_redis *rd = data;

	io_want(rd, rd->io_events | HTTPD_EVENT_WRITE);
}

static void hook_del_write(void *data)
{
	struct httpd_redis *rd = data;

	io_want(rd, rd->io_events & ~HTTPD_EVENT_WRITE);
}

/* hiredis frees the context: the fd goes with it. */
static void hook_cleanup(void *data)
{
	struct httpd_redis *rd = data;

	httpd_event_del(rd->io);
	rd->io = NULL;
	rd->io_events = 0;
	rd->ac = NULL;
}

/* --- commands ------------------------------------------------------------- */

static void cmd_free(struct redis_cmd *cmd)
{
	if (cmd->wait != NULL)
		cmd->wait->cmd = NULL;
	for (int i = 0; i < cmd->argc; i++)
		free(cmd->argv[i]);
	free(cmd->argv);
	free(cmd->argv_len);
	free(cmd);
}

static void cmd_unlink(struct redis_cmd *cmd)
{
	struct httpd_redis *rd = cmd->rd;

	if (cmd->prev != NULL)
		cmd->prev->next = cmd->next;
	else
		rd->oldest = cmd->next;
	if (cmd->next != NULL)
		cmd->next->prev = cmd->prev;
	else
		rd->newest = cmd->prev;
	cmd->prev = cmd->next = NULL;
}

static void reply_convert(const redisReply *r, struct httpd_redis_reply *out, struct httpd_redis_reply *elements)
{
	memset(out, 0, sizeof(*out));
	switch (r->type) {
	case REDIS_REPLY_STRING:  out->type = HTTPD_REDIS_STRING; break;
	case REDIS_REPLY_STATUS:  out->type = HTTPD_REDIS_STATUS; break;
	case REDIS_REPLY_ERROR:   out->type = HTTPD_REDIS_ERROR; break;
	case REDIS_REPLY_INTEGER: out->type = HTTPD_REDIS_INTEGER; break;
	case REDIS_REPLY_NIL:     out->type = HTTPD_REDIS_NIL; break;
	case REDIS_REPLY_ARRAY:   out->type = HTTPD_REDIS_ARRAY; break;
	default:                  out->type = HTTPD_REDIS_FAILED; out->str = "unknown reply type"; break;
	}
	out->integer = r->integer;
	if (r->str != NULL && out->type != HTTPD_REDIS_FAILED) {
		out->str = r->str;
		out->len = r->len;
	}
	if (r->type == REDIS_REPLY_ARRAY && elements != NULL) {
		out->elements = r->elements < REPLY_ELEMENTS ? r->elements : REPLY_ELEMENTS;
		for (size_t i = 0; i < out->elements; i++)
			reply_convert(r->element[i], &elements[i], NULL);
		out->element = elements;
	}
}

static void cmd_deliver(struct redis_cmd *cmd, const struct httpd_redis_reply *reply)
{
	struct httpd_request *req = NULL;

	if (cmd->for_request) {
		if (cmd->wait == NULL)
			return;   /* its request ended: nobody to tell */
		req = cmd->wait->req;
		cmd->wait->cmd = NULL;
		cmd->wait = NULL;
	}
	if (cmd->fn != NULL)
		cmd->fn(req, cmd->arg, reply);
}

static int cmd_send(struct httpd_redis *rd, struct redis_cmd *cmd);

static void reply_arrived(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_cmd *cmd = privdata;
	struct httpd_redis *rd = cmd->rd;
	const redisReply *r = reply;
	struct httpd_redis_reply out, elements[REPLY_ELEMENTS];
	bool failed = r == NULL || r->type == REDIS_REPLY_ERROR;

	(void)ac;
	cmd_unlink(cmd);
	if (r != NULL && r->type == REDIS_REPLY_ERROR && cmd->script != NULL && !cmd->as_eval &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0 && rd->ac != NULL) {
		/* The server lost its scripts (a restart): send the source once. */
		cmd->as_eval = true;
		if (cmd_send(rd, cmd) == 0)
			return;
	}
	score_redis(failed, now_us() - cmd->sent_us);
	if (r == NULL) {
		memset(&out, 0, sizeof(out));
		out.type = HTTPD_REDIS_FAILED;
		out.str = "no answer";
		out.len = strlen(out.str);
	} else {
		reply_convert(r, &out, elements);
		if (r->type == REDIS_REPLY_ERROR)
			failure_log(rd, r->str, 0);
		else
			rd->backoff_ms = 0;   /* it answers: the next failure starts the backoff afresh */
	}
	cmd_deliver(cmd, &out);
	cmd_free(cmd);
}

/* After a failure no connection is tried for a while: 100 ms, doubling to 2 s until Redis answers again. */
static void backoff_start(struct httpd_redis *rd, uint64_t now_ms)
{
	rd->backoff_ms = rd->backoff_ms == 0 ? BACKOFF_FIRST_MS
	                 : rd->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rd->backoff_ms * 2;
	rd->retry_at_ms = now_ms + rd->backoff_ms;
}

static void timer_fired(struct httpd_request *req, void *arg, unsigned events);
static void connection_drop(struct httpd_redis *rd, const char *why, int err);

static void timer_arm_for(struct httpd_redis *rd, uint64_t now_ms)
{
	struct redis_cmd *oldest = rd->oldest;
	uint64_t wait;

	if (rd->timer != NULL || oldest == NULL)
		return;
	wait = oldest->deadline_ms > now_ms ? oldest->deadline_ms - now_ms : 0;
	rd->timer = httpd_worker_timer((unsigned)wait + 1, timer_fired, rd);
}

/* The oldest command is late: everything queued behind it is too. */
static void timer_fired(struct httpd_request *req, void *arg, unsigned events)
{
	struct httpd_redis *rd = arg;
	struct redis_cmd *oldest = rd->oldest;
	uint64_t now = monotonic_ms();

	(void)req;
	(void)events;
	rd->timer = NULL;
	if (oldest == NULL)
		return;
	if (oldest->deadline_ms > now) {
		timer_arm_for(rd, now);
		return;
	}
	connection_drop(rd, "no answer within the timeout", ETIMEDOUT);
}

/*
 * Drops the connection: hiredis answers every command on it with no reply
 * (they fail), and the next connection waits for the backoff.  why NULL:
 * the endpoint is being freed, quietly.
 */
static void connection_drop(struct httpd_redis *rd, const char *why, int err)
{
	uint64_t now = monotonic_ms();

	if (why == NULL) {
		/* Quietly: nobody is told, as the worker (or the endpoint) is going away. */
		for (struct redis_cmd *c = rd->oldest; c != NULL; c = c->next)
			c->fn = NULL;
	} else {
		failure_log(rd, why, err);
		backoff_start(rd, now);
	}
	if (rd->timer != NULL) {
		httpd_event_del(rd->timer);
		rd->timer = NULL;
	}
	if (rd->ac != NULL)
		redisAsyncFree(rd->ac);   /* calls reply_arrived(NULL) for each, then hook_cleanup */
	/* Commands hiredis had not taken (none, normally) fail too. */
	while (rd->oldest != NULL) {
		struct redis_cmd *cmd = rd->oldest;
		struct httpd_redis_reply out = { .type = HTTPD_REDIS_FAILED, .str = "no answer", .len = 9 };

		cmd_unlink(cmd);
		score_redis(true, now_us() - cmd->sent_us);
		if (why != NULL)
			cmd_deliver(cmd, &out);
		cmd_free(cmd);
	}
}

static void connected(const redisAsyncContext *ac, int status)
{
	struct httpd_redis *rd = ac->data;

	if (status != REDIS_OK)   /* hiredis' errstr already says why ("Connection refused") */
		failure_log(rd, ac->errstr != NULL ? ac->errstr : "cannot connect", 0);
}

static void disconnected(const redisAsyncContext *ac, int status)
{
	struct httpd_redis *rd = ac->data;

	if (status != REDIS_OK) {
		failure_log(rd, ac->errstr != NULL ? ac->errstr : "connection lost", 0);
		backoff_start(rd, monotonic_ms());
	}
}

static void auth_answered(struct httpd_request *req, void *arg, const struct httpd_redis_reply *reply)
{
	struct httpd_redis *rd = arg;

	(void)req;
	if (reply->type == HTTPD_REDIS_ERROR)
		failure_log(rd, "AUTH refused (password_file)", 0);
}

static void connection_quietly_drop(struct httpd_redis *rd)
{
	connection_drop(rd, NULL, 0);
}

static int connection_open(struct httpd_redis *rd)
{
	uint64_t now = monotonic_ms();

	if (now < rd->retry_at_ms)
		return -1;
	rd->ac = rd->unix_path != NULL ? redisAsyncConnectUnix(rd->unix_path) : redisAsyncConnect(rd->host, rd->port);
	if (rd->ac == NULL || rd->ac->err) {
		int err = errno;

		failure_log(rd, rd->ac != NULL ? rd->ac->errstr : "out of memory", rd->ac != NULL ? err : 0);
		if (rd->ac != NULL)
			redisAsyncFree(rd->ac);
		rd->ac = NULL;
		backoff_start(rd, now);
		return -1;
	}
	rd->ac->data = rd;
	rd->drop = connection_quietly_drop;
	rd->ac->ev.data = rd;
	rd->ac->ev.addRead = hook_add_read;
	rd->ac->ev.delRead = hook_del_read;
	rd->ac->ev.addWrite = hook_add_write;
	rd->ac->ev.delWrite = hook_del_write;
	rd->ac->ev.cleanup = hook_cleanup;
	/* Set after the hooks: it asks for the first write event, which tells the connect is done. */
	redisAsyncSetConnectCallback(rd->ac, connected);
	redisAsyncSetDisconnectCallback(rd->ac, disconnected);
	if (rd->password != NULL) {
		const char *argv[2] = { "AUTH", rd->password };
		size_t len[2] = { 4, rd->password_len };

		if (httpd_redis_command(rd, NULL, auth_answered, rd, 2, argv, len) < 0)
			return -1;
	}
	for (size_t i = 0; i < rd->script_count; i++) {
		const char *argv[3] = { "SCRIPT", "LOAD", rd->scripts[i]->source };
		size_t len[3] = { 6, 4, strlen(rd->scripts[i]->source) };

		if (httpd_redis_command(rd, NULL, NULL, NULL, 3, argv, len) < 0)
			return -1;
	}
	return 0;
}

static int cmd_send(struct httpd_redis *rd, struct redis_cmd *cmd)
{
	const char *argv[cmd->argc + 2];
	size_t len[cmd->argc + 2];
	int n = 0;

	if (cmd->script != NULL) {
		argv[0] = cmd->as_eval ? "EVAL" : "EVALSHA";
		len[0] = strlen(argv[0]);
		argv[1] = cmd->as_eval ? cmd->script->source : cmd->script->sha;
		len[1] = strlen(argv[1]);
		n = 2;
	}
	for (int i = 0; i < cmd->argc; i++, n++) {
		argv[n] = cmd->argv[i];
		len[n] = cmd->argv_len[i];
	}
	if (redisAsyncCommandArgv(rd->ac, reply_arrived, cmd, n, argv, len) != REDIS_OK)
		return -1;
	/* In the order sent, which is the order answered. */
	cmd->prev = rd->newest;
	cmd->next = NULL;
	if (rd->newest != NULL)
		rd->newest->next = cmd;
	else
		rd->oldest = cmd;
	rd->newest = cmd;
	timer_arm_for(rd, monotonic_ms());
	return 0;
}

static void wait_cut(void *arg)
{
	struct redis_wait *w = arg;

	if (w->cmd != NULL)
		w->cmd->wait = NULL;
	w->cmd = NULL;
}

static int command_queue(struct httpd_redis *rd, struct httpd_request *req, const struct httpd_redis_script *script,
                         httpd_redis_fn fn, void *arg, int argc, const char *const *argv, const size_t *argv_len)
{
	struct redis_cmd *cmd;
	struct redis_wait *w = NULL;

	if (rd->ac == NULL && connection_open(rd) < 0) {
		score_redis(true, 0);
		return -1;
	}
	cmd = calloc(1, sizeof(*cmd));
	if (cmd == NULL || (cmd->argv = calloc((size_t)argc + 1, sizeof(char *))) == NULL ||
	    (cmd->argv_len = calloc((size_t)argc + 1, sizeof(size_t))) == NULL)
		goto fail;
	for (int i = 0; i < argc; i++) {
		cmd->argv[i] = malloc(argv_len[i] + 1);
		if (cmd->argv[i] == NULL)
			goto fail;
		cmd->argc = i + 1;
		memcpy(cmd->argv[i], argv[i], argv_len[i]);
		cmd->argv[i][argv_len[i]] = '\0';
		cmd->argv_len[i] = argv_len[i];
	}
	if (req != NULL) {
		w = httpd_pool_alloc(req->pool, sizeof(*w));
		if (w == NULL || httpd_pool_cleanup(req->pool, wait_cut, w) < 0)
			goto fail;
		w->req = req;
		w->cmd = cmd;
	}
	cmd->rd = rd;
	cmd->wait = w;
	cmd->for_request = req != NULL;
	cmd->fn = fn;
	cmd->arg = arg;
	cmd->script = script;
	cmd->sent_us = now_us();
	cmd->deadline_ms = monotonic_ms() + rd->timeout_ms;
	if (cmd_send(rd, cmd) < 0) {
		failure_log(rd, "cannot send a command", 0);
		goto fail;
	}
	return 0;
fail:
	if (w != NULL)
		w->cmd = NULL;
	if (cmd != NULL) {
		cmd->wait = NULL;
		cmd_free(cmd);
	}
	score_redis(true, 0);
	return -1;
}

int httpd_redis_command(struct httpd_redis *rd, struct httpd_request *req, httpd_redis_fn fn, void *arg, int argc,
                        const char *const *argv, const size_t *argv_len)
{
	if (rd == NULL || argc < 1 || httpd_worker_id() < 0)
		return -1;
	return command_queue(rd, req, NULL, fn, arg, argc, argv, argv_len);
}

int httpd_redis_eval(struct httpd_redis *rd, struct httpd_request *req, const struct httpd_redis_script *script,
                     httpd_redis_fn fn, void *arg, int argc, const char *const *argv, const size_t *argv_len)
{
	if (rd == NULL || script == NULL || argc < 1 || httpd_worker_id() < 0)
		return -1;
	return command_queue(rd, req, script, fn, arg, argc, argv, argv_len);
}

void httpd_redis_worker_exit(struct httpd_redis *rd)
{
	if (rd == NULL)
		return;
	if (rd->ac != NULL)
		connection_drop(rd, NULL, 0);
	httpd_event_del(rd->log_timer);
	rd->log_timer = NULL;
}
