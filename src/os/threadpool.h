/*
 * A small per-worker thread pool for blocking work (fsync, rename, large
 * directory listings) so that the event loop never waits on the disk.
 * Threads start on first use.  Finished jobs are handed back to the loop
 * through an eventfd, and their done callbacks run there, one thread only.
 */
#ifndef HTTPD_THREADPOOL_H
#define HTTPD_THREADPOOL_H

struct job {
	void       (*work)(void *arg);     /* on a pool thread */
	void       (*done)(struct job *job); /* in the event loop, after work */
	void        *arg;
	struct job  *next;
};

struct threadpool;

/* Up to threads threads; *event_fd becomes readable when jobs have finished.  NULL on failure. */
struct threadpool *threadpool_create(unsigned threads, int *event_fd);
/* Queues job (owned by the caller until its done runs).  -1 on failure. */
int  threadpool_submit(struct threadpool *tp, struct job *job);
/* From the loop when the eventfd is readable: runs done for each finished job. */
void threadpool_complete(struct threadpool *tp);
/* Waits for queued and running work, runs the last done callbacks, frees everything. */
void threadpool_destroy(struct threadpool *tp);

#endif
