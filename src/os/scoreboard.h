/*
 * The scoreboard: shared memory made by the master, one cache-line-aligned
 * slot per worker process, written only by that worker (relaxed atomic
 * stores, no locks on the hot path) and read by anyone (the status
 * module).  When a worker exits the master folds its counters into the
 * retired totals, so totals never go backwards across reloads and crashes.
 * The master also samples the request total once a second for the status
 * page's chart.
 */
#ifndef HTTPD_SCOREBOARD_H
#define HTTPD_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SCORE_SLOTS      2048   /* worker processes alive at once, draining generations included */
#define SCORE_CODES      48     /* distinct (status, method) pairs counted per slot */
#define SCORE_BUCKETS    12     /* request duration histogram */
#define SCORE_REDIS_BUCKETS 10  /* Redis command duration histogram */
#define SCORE_HISTORY    300    /* seconds of the requests-per-second chart */
#define SCORE_REQUEST    96     /* the request a worker is serving, for crash reports */

enum score_state { SCORE_FREE, SCORE_STARTING, SCORE_SERVING, SCORE_DRAINING };

/* Methods as counted: the names line up with score_method_names. */
enum score_method { SM_GET, SM_HEAD, SM_POST, SM_PUT, SM_DELETE, SM_OPTIONS, SM_PATCH, SM_OTHER, SM_COUNT };
extern const char *const score_method_names[SM_COUNT];
/* Upper bounds of the duration buckets, in ms (the last one is +Inf). */
extern const uint32_t score_bucket_ms[SCORE_BUCKETS];
/* Upper bounds of the Redis buckets, in microseconds (the last one is +Inf). */
extern const uint32_t score_redis_bucket_us[SCORE_REDIS_BUCKETS];

struct score_code {
	uint32_t key;     /* status << 4 | method; 0: empty */
	uint32_t pad;
	uint64_t count;
};

/* Counters that add up: a worker's own, and the retired totals. */
struct score_counters {
	uint64_t          requests;
	uint64_t          bytes_in, bytes_out;
	uint64_t          accepted, handled, refused;
	uint64_t          duration_ms_sum;
	uint64_t          buckets[SCORE_BUCKETS];   /* not cumulative: one bucket per request */
	struct score_code codes[SCORE_CODES];
	uint64_t          codes_other;              /* pairs that did not fit */
	uint64_t          redis_commands;           /* answered, failed or timed out */
	uint64_t          redis_errors;             /* unreachable, timed out, or an error reply */
	uint64_t          redis_duration_us_sum;
	uint64_t          redis_buckets[SCORE_REDIS_BUCKETS];
	uint64_t          h2_parked;                /* idle HTTP/2 sessions given back (see http2.c) */
	uint64_t          h2_resumed;               /* parked sessions taken up again */
};

struct score_slot {
	uint32_t              state;        /* enum score_state */
	uint32_t              worker_id;
	int32_t               pid;
	uint32_t              generation;
	int64_t               started;      /* wall clock, seconds */
	uint64_t              connections, reading, writing, keepalive;
	struct score_counters c;
	char                  request[SCORE_REQUEST];   /* "GET /x" while serving one, else "" */
} __attribute__((aligned(64)));

struct scoreboard {
	int64_t               started;      /* when the master started */
	uint32_t              generation;
	uint32_t              history_at;   /* next history index */
	uint64_t              reloads_ok, reloads_failed;
	int64_t               history_time[SCORE_HISTORY];
	uint64_t              history_requests[SCORE_HISTORY];
	struct score_counters retired;
	struct score_slot     slot[SCORE_SLOTS];
};

/* In the master: the shared map, or NULL (then nothing is counted). */
struct scoreboard *scoreboard_create(void);
/* In the master: a free slot for a new worker (its state STARTING), or -1. */
int  scoreboard_slot_claim(struct scoreboard *sb, unsigned worker_id, pid_t pid, unsigned generation);
/* In the master, after the worker exited: its counters join the retired totals, the slot is free. */
void scoreboard_slot_retire(struct scoreboard *sb, int slot);
/* In the master, about once a second. */
void scoreboard_sample(struct scoreboard *sb, int64_t now);

/* The scoreboard this process uses (set in the master before forking), and a worker's slot. */
extern struct scoreboard *scoreboard;
extern struct score_slot *score_self;

/* Adds from into to (for totals); to is private memory. */
void score_counters_add(struct score_counters *to, const struct score_counters *from);
/* A consistent-enough copy of every counter (relaxed loads). */
void score_counters_read(struct score_counters *to, const struct score_counters *from);

static inline void score_add(uint64_t *counter, uint64_t n)
{
	/* Only its own worker writes a slot: a plain add, stored atomically for readers. */
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

static inline void score_set(uint64_t *gauge, uint64_t v)
{
	__atomic_store_n(gauge, v, __ATOMIC_RELAXED);
}

/* One request answered (in the log phase). */
void score_request(int status, unsigned method, uint64_t bytes_in, uint64_t bytes_out, uint64_t duration_ms);
enum score_method score_method_of(unsigned httpd_method);
/* One Redis command done (answered, or failed after duration_us), for the metrics. */
void score_redis(bool failed, uint64_t duration_us);

#endif
