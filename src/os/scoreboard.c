#include "scoreboard.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "httpd/module.h"

struct scoreboard *scoreboard;
struct score_slot *score_self;

const char *const score_method_names[SM_COUNT] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other",
};

const uint32_t score_bucket_ms[SCORE_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, UINT32_MAX,
};
const uint32_t score_redis_bucket_us[SCORE_REDIS_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, UINT32_MAX,
};

struct scoreboard *scoreboard_create(void)
{
	struct scoreboard *sb = mmap(NULL, sizeof(*sb), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (sb == MAP_FAILED)
		return NULL;
	sb->started = time(NULL);
	return sb;
}

int scoreboard_slot_claim(struct scoreboard *sb, unsigned worker_id, pid_t pid, unsigned generation)
{
	for (int i = 0; sb != NULL && i < SCORE_SLOTS; i++) {
		struct score_slot *s = &sb->slot[i];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SCORE_FREE)
			continue;
		memset(s, 0, sizeof(*s));
		s->worker_id = worker_id;
		s->pid = (int32_t)pid;
		s->generation = generation;
		s->started = time(NULL);
		__atomic_store_n(&s->state, SCORE_STARTING, __ATOMIC_RELEASE);
		return i;
	}
	return -1;
}

static void codes_add(struct score_counters *to, uint32_t key, uint64_t n)
{
	for (int k = 0; k < SCORE_CODES; k++) {
		if (to->codes[k].key == key || to->codes[k].key == 0) {
			to->codes[k].key = key;
			to->codes[k].count += n;
			return;
		}
	}
	to->codes_other += n;
}

void score_counters_add(struct score_counters *to, const struct score_counters *from)
{
	to->requests += from->requests;
	to->bytes_in += from->bytes_in;
	to->bytes_out += from->bytes_out;
	to->accepted += from->accepted;
	to->handled += from->handled;
	to->refused += from->refused;
	to->duration_ms_sum += from->duration_ms_sum;
	for (int b = 0; b < SCORE_BUCKETS; b++)
		to->buckets[b] += from->buckets[b];
	for (int k = 0; k < SCORE_CODES; k++)
		if (from->codes[k].key != 0)
			codes_add(to, from->codes[k].key, from->codes[k].count);
	to->codes_other += from->codes_other;
	to->redis_commands += from->redis_commands;
	to->redis_errors += from->redis_errors;
	to->redis_duration_us_sum += from->redis_duration_us_sum;
	for (int b = 0; b < SCORE_REDIS_BUCKETS; b++)
		to->redis_buckets[b] += from->redis_buckets[b];
	to->h2_parked += from->h2_parked;
	to->h2_resumed += from->h2_resumed;
}

void score_counters_read(struct score_counters *to, const struct score_counters *from)
{
	const uint64_t *src = (const uint64_t *)from;
	uint64_t *dst = (uint64_t *)to;

	/* Word by word, each load atomic: a counter is never seen half-written. */
	for (size_t i = 0; i < sizeof(*from) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void scoreboard_slot_retire(struct scoreboard *sb, int slot)
{
	struct score_counters c;

	if (sb == NULL || slot < 0 || slot >= SCORE_SLOTS)
		return;
	score_counters_read(&c, &sb->slot[slot].c);
	score_counters_add(&sb->retired, &c);
	__atomic_store_n(&sb->slot[slot].state, SCORE_FREE, __ATOMIC_RELEASE);
}

void scoreboard_sample(struct scoreboard *sb, int64_t now)
{
	uint64_t total = sb->retired.requests;
	unsigned at = sb->history_at % SCORE_HISTORY;

	for (int i = 0; i < SCORE_SLOTS; i++) {
		if (__atomic_load_n(&sb->slot[i].state, __ATOMIC_ACQUIRE) == SCORE_FREE)
			continue;
		total += __atomic_load_n(&sb->slot[i].c.requests, __ATOMIC_RELAXED);
	}
	sb->history_time[at] = now;
	__atomic_store_n(&sb->history_requests[at], total, __ATOMIC_RELAXED);
	__atomic_store_n(&sb->history_at, sb->history_at + 1, __ATOMIC_RELEASE);
}

enum score_method score_method_of(unsigned m)
{
	switch (m) {
	case HTTPD_METHOD_GET:     return SM_GET;
	case HTTPD_METHOD_HEAD:    return SM_HEAD;
	case HTTPD_METHOD_POST:    return SM_POST;
	case HTTPD_METHOD_PUT:     return SM_PUT;
	case HTTPD_METHOD_DELETE:  return SM_DELETE;
	case HTTPD_METHOD_OPTIONS: return SM_OPTIONS;
	case HTTPD_METHOD_PATCH:   return SM_PATCH;
	default:                   return SM_OTHER;
	}
}

void score_request(int status, unsigned method, uint64_t bytes_in, uint64_t bytes_out, uint64_t duration_ms)
{
	struct score_counters *c;
	uint32_t key = (uint32_t)status << 4 | (method & 15u);
	int b = 0;

	if (score_self == NULL)
		return;
	c = &score_self->c;
	score_add(&c->requests, 1);
	score_add(&c->bytes_in, bytes_in);
	score_add(&c->bytes_out, bytes_out);
	score_add(&c->duration_ms_sum, duration_ms);
	while (b < SCORE_BUCKETS - 1 && duration_ms > score_bucket_ms[b])
		b++;
	score_add(&c->buckets[b], 1);
	for (int k = 0; k < SCORE_CODES; k++) {
		if (c->codes[k].key == key) {
			score_add(&c->codes[k].count, 1);
			return;
		}
		if (c->codes[k].key == 0) {
			/* Count first, then publish the key: a reader never sees a key with a stale count. */
			score_add(&c->codes[k].count, 1);
			__atomic_store_n(&c->codes[k].key, key, __ATOMIC_RELEASE);
			return;
		}
	}
	score_add(&c->codes_other, 1);
}

void score_redis(bool failed, uint64_t duration_us)
{
	struct score_counters *c;
	int b = 0;

	if (score_self == NULL)
		return;
	c = &score_self->c;
	score_add(&c->redis_commands, 1);
	if (failed)
		score_add(&c->redis_errors, 1);
	score_add(&c->redis_duration_us_sum, duration_us);
	while (b < SCORE_REDIS_BUCKETS - 1 && duration_us > score_redis_bucket_us[b])
		b++;
	score_add(&c->redis_buckets[b], 1);
}
