/*
 * Request bodies, streamed: each piece goes through the body-check hooks,
 * then to the handler's own body hook if it took the body, else into
 * memory up to body_buffer_size and beyond that into an unlinked
 * temporary file (O_TMPFILE in temp_dir).  Memory never grows with the
 * size of an upload.  While a body check is undecided (a signature over
 * the body's digest), no byte reaches the handler: the core holds the
 * whole body and hands it over only once every check passed at its end.
 */
#ifndef HTTPD_BODY_H
#define HTTPD_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parse.h"

struct request;

struct request_body {
	uint64_t            expected;     /* Content-Length; 0 for chunked */
	uint64_t            received;     /* decoded bytes so far */
	bool                chunked;
	struct httpd_chunked chunked_state;
	char               *scratch;      /* chunked decoding output */
	bool                to_module;    /* the handler's body hook takes it */
	bool                held;         /* a body check is undecided: the core holds it all */
	bool                replaying;    /* checks passed: the held body goes to the handler's hook */
	uint64_t            replayed;     /* bytes of it handed over so far */
	char               *replay_buf;   /* a spilled body is read back through this */
	bool                paused;       /* httpd_request_body_pause: deliver nothing for now */
	bool                turns;        /* read in BODY_READ_TURN turns (it came faster than 4 KiB) */
	uint32_t            checks_off;   /* body-check modules that declined at START */
	uint32_t            check_next;   /* after a body check waited at END: the next one to ask */
	char               *mem;
	size_t              mem_len, mem_cap;
	int                 fd;           /* spill file, or -1 */
};

#define BODY_SCRATCH_SIZE 16384
/* The input buffer's size while a long body streams through it (nginx reads 8 or 16 KiB). */
#define BODY_READ_TURN    65536

/* Before the first byte: START events; picks where the body goes.  0 or an error status. */
int body_start(struct request *r);
/* One decoded piece.  0 or an error status. */
int body_data(struct request *r, const char *buf, size_t len);
/*
 * After the last byte: END events; the body becomes req.body or the body
 * fd, or, held for checks that passed, starts going to the handler's body
 * hook (replaying is then set).  0 or a status.
 */
int body_end(struct request *r);
/*
 * BODY_WAIT from body_end: a body check decides later (HTTPD_PENDING at
 * END).  body_end_resume takes its verdict (HTTPD_OK or HTTPD_DECLINED to
 * go on, else a status) and does the rest of body_end: 0, a status, or
 * BODY_WAIT again for a later check that waits too.
 */
#define BODY_WAIT 3
int body_end_resume(struct request *r, int rc);
/*
 * Hands the held body to the handler's body hook until it pauses:
 * 0 once all of it and END went, BODY_AGAIN while paused, or a status.
 */
#define BODY_AGAIN 1
int body_replay(struct request *r);

#endif
