/*
 * Timeouts as FIFO lists: every entry of a list has the same timeout, so
 * appending keeps each list sorted by deadline and expiry is O(1).
 */
#ifndef HTTPD_TIMER_H
#define HTTPD_TIMER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct timer {
	struct timer *prev, *next;
	uint64_t      deadline;
	int           list;     /* index of the list it is on, -1 if none */
};

struct timer_list {
	struct timer head;      /* sentinel */
	uint64_t     timeout_ms;
};

/* Milliseconds on the monotonic clock (precise; the worker loop caches a coarse one per wakeup). */
static inline uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void timer_list_init(struct timer_list *l, uint64_t timeout_ms)
{
	l->head.prev = l->head.next = &l->head;
	l->timeout_ms = timeout_ms;
}

static inline void timer_init(struct timer *t)
{
	t->prev = t->next = NULL;
	t->list = -1;
}

static inline void timer_disarm(struct timer *t)
{
	if (t->list < 0)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->list = -1;
}

static inline void timer_arm(struct timer_list *lists, int list, struct timer *t, uint64_t now)
{
	struct timer_list *l = &lists[list];

	timer_disarm(t);
	t->deadline = now + l->timeout_ms;
	t->list = list;
	t->prev = l->head.prev;
	t->next = &l->head;
	l->head.prev->next = t;
	l->head.prev = t;
}

/* The first entry of l if its deadline has passed, else NULL. */
static inline struct timer *timer_list_expired(struct timer_list *l, uint64_t now)
{
	struct timer *t = l->head.next;

	return t != &l->head && t->deadline <= now ? t : NULL;
}

static inline uint64_t timer_list_next(const struct timer_list *l)
{
	return l->head.next != &l->head ? l->head.next->deadline : UINT64_MAX;
}

#endif
