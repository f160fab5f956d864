#include "body.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "pool.h"
#include "request.h"

static void fd_close(void *arg)
{
	close((int)(intptr_t)arg);
}

/*
 * Every body-check hook of the location gets ev, from the check numbered
 * from on; a status from one refuses the request.  At END a check may wait
 * (HTTPD_PENDING): BODY_WAIT, and body_end_resume goes on after it.
 */
static int checks_run(struct request *r, enum httpd_body_event ev, const void *buf, size_t len, size_t from)
{
	const struct httpd_location *loc = r->loc;

	for (size_t i = from; i < loc->check_count; i++) {
		const struct location_module *lm = &loc->checks[i];
		int rc;

		if (lm->mod->api.body_check == NULL || (r->body.checks_off & (1u << i)))
			continue;
		rc = lm->mod->api.body_check(lm->data, &r->req, &r->res, ev, buf, len);
		if (rc == HTTPD_DECLINED && ev == HTTPD_BODY_START)
			r->body.checks_off |= 1u << i;
		else if (rc == HTTPD_PENDING && ev == HTTPD_BODY_END) {
			r->body.check_next = (uint32_t)i + 1;
			return BODY_WAIT;
		} else if (rc != HTTPD_OK && rc != HTTPD_DECLINED) {
			if (rc < 400 || rc > 599)
				httpd_log_request(HTTPD_LOG_ERR, &r->req, "module %s: body check returned %d, not a status",
				                  lm->mod->name, rc);
			return rc >= 400 && rc <= 599 ? rc : 500;
		}
	}
	return 0;
}

static int replay_begin(struct request *r);

/* Does a body check still have to see the body before it can decide? */
static bool checks_pending(const struct request *r)
{
	const struct httpd_location *loc = r->loc;

	for (size_t i = 0; i < loc->check_count; i++)
		if (loc->checks[i].mod->api.body_check != NULL && !(r->body.checks_off & (1u << i)))
			return true;
	return false;
}

static int to_module(struct request *r, enum httpd_body_event ev, const void *buf, size_t len)
{
	const struct location_module *lm = &r->loc->handler;
	int rc = lm->mod->api.body(lm->data, &r->req, &r->res, ev, buf, len);

	if (rc == HTTPD_OK)
		return 0;
	return rc >= 400 && rc <= 599 ? rc : 500;
}

int body_start(struct request *r)
{
	struct request_body *b = &r->body;
	const struct location_module *handler = &r->loc->handler;
	int rc;

	b->chunked = r->head.chunked;
	b->expected = b->chunked ? 0 : (uint64_t)r->head.content_length;
	if (b->chunked) {
		httpd_chunked_init(&b->chunked_state);
		b->scratch = pool_alloc(r->pool, BODY_SCRATCH_SIZE);
		if (b->scratch == NULL)
			return 500;
	}
	rc = checks_run(r, HTTPD_BODY_START, NULL, 0, 0);
	if (rc != 0)
		return rc;
	b->held = checks_pending(r);
	if (handler->mod->api.body != NULL && !b->held) {
		rc = handler->mod->api.body(handler->data, &r->req, &r->res, HTTPD_BODY_START, NULL, 0);
		if (rc == HTTPD_OK) {
			b->to_module = true;
			return 0;
		}
		if (rc != HTTPD_DECLINED)
			return rc >= 400 && rc <= 599 ? rc : 500;
	}
	return 0;
}

/* Past body_buffer_size the body goes to an unlinked file: memory stays flat. */
static int spill_open(struct request *r)
{
	const char *dir = r->w->config->temp_dir;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "cannot make a temporary file for the request body in %s: %s",
		                  dir, strerror(errno));
		return -1;
	}
	if (httpd_pool_cleanup(r->pool, fd_close, (void *)(intptr_t)fd) < 0) {
		close(fd);
		return -1;
	}
	r->body.fd = fd;
	return 0;
}

static int spill_write(struct request *r, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(r->body.fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			httpd_log_request(HTTPD_LOG_ERR, &r->req, "writing the request body to %s: %s",
			                  r->w->config->temp_dir, strerror(errno));
			return errno == ENOSPC || errno == EDQUOT ? 507 : 500;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int to_core(struct request *r, const char *buf, size_t len)
{
	struct request_body *b = &r->body;
	size_t limit = r->w->config->body_buffer_size;
	int rc;

	if (b->fd >= 0)
		return spill_write(r, buf, len);
	if (b->mem == NULL) {
		/* A declared length that fits gets an exact buffer; anything else starts at the limit. */
		b->mem_cap = !b->chunked && b->expected <= limit ? (size_t)b->expected : limit;
		if (b->chunked || b->expected <= limit) {
			b->mem = pool_alloc(r->pool, b->mem_cap + 1);
			if (b->mem == NULL)
				return 500;
		}
	}
	if (b->mem != NULL && b->mem_cap - b->mem_len >= len) {
		memcpy(b->mem + b->mem_len, buf, len);
		b->mem_len += len;
		return 0;
	}
	if (spill_open(r) < 0)
		return 500;
	if (b->mem_len > 0 && (rc = spill_write(r, b->mem, b->mem_len)) != 0)
		return rc;
	b->mem = NULL;
	b->mem_len = 0;
	return spill_write(r, buf, len);
}

int body_data(struct request *r, const char *buf, size_t len)
{
	int rc;

	if (len == 0)
		return 0;
	r->body.received += len;
	rc = checks_run(r, HTTPD_BODY_DATA, buf, len, 0);
	if (rc != 0)
		return rc;
	return r->body.to_module ? to_module(r, HTTPD_BODY_DATA, buf, len) : to_core(r, buf, len);
}

/* The END checks passed (all of them, some perhaps after waiting). */
static int body_checked(struct request *r)
{
	struct request_body *b = &r->body;

	if (b->to_module)
		return to_module(r, HTTPD_BODY_END, NULL, 0);
	r->req.body_len = b->received;
	if (b->fd < 0) {
		if (b->mem == NULL) {
			b->mem = pool_alloc(r->pool, 1);
			if (b->mem == NULL)
				return 500;
		}
		b->mem[b->mem_len] = '\0';
		r->req.body = b->mem;
	}
	if (b->held && r->loc->handler.mod->api.body != NULL)
		return replay_begin(r);
	return 0;
}

int body_end(struct request *r)
{
	int rc = checks_run(r, HTTPD_BODY_END, NULL, 0, 0);

	return rc != 0 ? rc : body_checked(r);
}

int body_end_resume(struct request *r, int rc)
{
	if (rc == HTTPD_OK || rc == HTTPD_DECLINED)
		rc = checks_run(r, HTTPD_BODY_END, NULL, 0, r->body.check_next);
	else if (rc < 400 || rc > 599)
		rc = 500;
	return rc != 0 ? rc : body_checked(r);
}

/* Every check passed: the handler's body hook may now take the body it would have streamed. */
static int replay_begin(struct request *r)
{
	const struct location_module *handler = &r->loc->handler;
	struct request_body *b = &r->body;
	int rc = handler->mod->api.body(handler->data, &r->req, &r->res, HTTPD_BODY_START, NULL, 0);

	if (rc == HTTPD_DECLINED)
		return 0;   /* the core keeps it, as req.body or the body fd */
	if (rc != HTTPD_OK)
		return rc >= 400 && rc <= 599 ? rc : 500;
	b->to_module = true;
	b->replaying = true;
	b->replayed = 0;
	r->req.body = NULL;
	r->req.body_len = 0;
	if (b->fd >= 0) {
		b->replay_buf = pool_alloc(r->pool, BODY_READ_TURN);
		if (b->replay_buf == NULL)
			return 500;
	}
	return 0;
}

int body_replay(struct request *r)
{
	struct request_body *b = &r->body;
	int rc;

	while (b->replayed < b->received) {
		uint64_t left = b->received - b->replayed;
		size_t len;
		const char *piece;

		if (b->paused)
			return BODY_AGAIN;
		if (b->fd >= 0) {
			ssize_t n = pread(b->fd, b->replay_buf, left < BODY_READ_TURN ? (size_t)left : BODY_READ_TURN,
			                  (off_t)b->replayed);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				httpd_log_request(HTTPD_LOG_ERR, &r->req, "reading back the request body held in %s: %s",
				                  r->w->config->temp_dir, n < 0 ? strerror(errno) : "it is shorter");
				return 500;
			}
			piece = b->replay_buf;
			len = (size_t)n;
		} else {
			piece = b->mem + b->replayed;
			len = left < BODY_READ_TURN ? (size_t)left : BODY_READ_TURN;
		}
		b->replayed += len;
		rc = to_module(r, HTTPD_BODY_DATA, piece, len);
		if (rc != 0)
			return rc;
	}
	if (b->paused)
		return BODY_AGAIN;
	b->replaying = false;
	return to_module(r, HTTPD_BODY_END, NULL, 0);
}
