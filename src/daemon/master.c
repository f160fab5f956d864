#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "mime.h"
#include "scoreboard.h"
#include "systemd.h"
#include "tls.h"
#include "upgrade.h"
#include "worker.h"
#include "worker_hooks.h"

#define LISTEN_BACKLOG   4096
#define RESPAWN_MAX_MS   30000
#define CRASH_WINDOW_MS  2000
#define STOP_GRACE_MS    5000

/* One listening socket; in reuseport mode every worker slot has its own. */
struct socket_entry {
	struct sockaddr_storage addr;
	socklen_t               addrlen;
	unsigned                flags;   /* LISTEN_* of the configuration that uses it now */
	unsigned                slot;
	int                     fd;
};

struct slot {
	pid_t    pid;            /* 0 when not running */
	int      ctl;            /* our end of its control socket (log descriptors), -1 if none */
	uint64_t started_ms;
	unsigned failures;       /* consecutive early deaths */
	uint64_t respawn_at;     /* when pid == 0 */
	bool     ready;          /* it told us it accepts */
	int      score;          /* its scoreboard slot, -1 if none */
};

struct drainer {
	pid_t pid;
	int   ctl;
	int   score;
};

struct master {
	struct httpd_config *config;
	const char          *config_path;
	struct socket_entry *sockets;
	size_t               socket_count;
	struct slot         *slots;
	unsigned             slot_count;
	struct drainer      *draining;    /* workers of older generations */
	size_t               draining_count;
	uid_t                uid;
	gid_t                gid;
	bool                 drop_privileges;
	bool                 stopping;
	bool                 ready_sent;     /* READY=1 went to systemd for this generation */
	unsigned             reloads_ok, reloads_failed;
	uint64_t             watchdog_at;
	uint64_t             sample_at;      /* next scoreboard sample */
};


/*
 * Undoes a partial sockets_open: sockets taken over from old go back to
 * their old entries, sockets opened for the new table are closed.
 */
static void sockets_give_back(struct socket_entry *table, size_t count, struct socket_entry *old,
                              size_t old_count)
{
	for (size_t k = 0; k < count; k++) {
		bool returned = false;

		if (table[k].fd < 0)
			continue;
		for (size_t j = 0; j < old_count && !returned; j++) {
			if (old[j].fd < 0 && old[j].slot == table[k].slot &&
			    listen_addr_equal(&old[j].addr, old[j].addrlen, &table[k].addr, table[k].addrlen)) {
				old[j].fd = table[k].fd;
				returned = true;
			}
		}
		if (!returned)
			close(table[k].fd);
	}
	free(table);
}

/*
 * Builds the socket table for config, reusing sockets from old (same
 * address and slot) so a reload never closes a listening socket that stays.
 * Sockets taken over are marked -1 in old.
 */
static int sockets_open(const struct httpd_config *config, struct socket_entry *old, size_t old_count,
                        struct socket_entry **out, size_t *out_count)
{
	unsigned slots = config->reuseport ? config->workers : 1;
	size_t count = config->listen_count * slots, n = 0;
	struct socket_entry *table = calloc(count ? count : 1, sizeof(*table));

	if (table == NULL)
		return -1;
	for (unsigned s = 0; s < slots; s++) {
		for (size_t i = 0; i < config->listen_count; i++) {
			const struct listen_spec *ls = &config->listens[i];
			struct socket_entry *e = &table[n++];
			char err[512];

			e->addr = ls->addr;
			e->addrlen = ls->addrlen;
			e->flags = ls->flags;
			e->slot = s;
			e->fd = -1;
			for (size_t j = 0; j < old_count; j++) {
				if (old[j].fd >= 0 && old[j].slot == s &&
				    listen_addr_equal(&old[j].addr, old[j].addrlen, &ls->addr, ls->addrlen)) {
					e->fd = old[j].fd;
					old[j].fd = -1;
					break;
				}
			}
			if (e->fd >= 0)
				continue;
			e->fd = systemd_listen_take(ls);   /* socket activation: systemd bound it */
			if (e->fd >= 0)
				continue;
			e->fd = listen_socket_open(ls, config->reuseport, LISTEN_BACKLOG, err, sizeof(err));
			if (e->fd < 0) {
				if (ls->line > 0)
					fprintf(stderr, "%s:%d: %s\n", ls->file, ls->line, err);
				else
					fprintf(stderr, "%s: %s\n", ls->file, err);
				httpd_log(HTTPD_LOG_ERR, "%s", err);
				sockets_give_back(table, n - 1, old, old_count);
				return -1;
			}
		}
	}
	*out = table;
	*out_count = count;
	return 0;
}

static void sockets_close(struct socket_entry *table, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (table[i].fd >= 0)
			close(table[i].fd);
	free(table);
}

static void controls_close(struct master *m)
{
	for (unsigned i = 0; m->slots != NULL && i < m->slot_count; i++) {
		if (m->slots[i].ctl >= 0)
			close(m->slots[i].ctl);
		m->slots[i].ctl = -1;
	}
	for (size_t i = 0; i < m->draining_count; i++) {
		if (m->draining[i].ctl >= 0)
			close(m->draining[i].ctl);
		m->draining[i].ctl = -1;
	}
}

static void slots_init(struct slot *slots, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		slots[i].ctl = -1;
		slots[i].score = -1;
	}
}

static pid_t worker_spawn(struct master *m, unsigned id)
{
	const struct httpd_config *config = m->config;
	unsigned slot = config->reuseport ? id : 0;
	int fds[HTTPD_LISTEN_MAX];
	const struct sockaddr_storage *addrs[HTTPD_LISTEN_MAX];
	unsigned flags[HTTPD_LISTEN_MAX];
	size_t nfds = 0;
	int ctl[2], score;
	pid_t pid;

	for (size_t i = 0; i < m->socket_count && nfds < sizeof(fds) / sizeof(fds[0]); i++) {
		if (m->sockets[i].slot == slot) {
			addrs[nfds] = &m->sockets[i].addr;
			flags[nfds] = m->sockets[i].flags;
			fds[nfds++] = m->sockets[i].fd;
		}
	}

	/* The channel SIGUSR1 hands reopened log files over, so no worker is replaced for a rotation. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		httpd_log(HTTPD_LOG_WARN, "socketpair: %s; this worker will keep its logs until it is replaced",
		          strerror(errno));
		ctl[0] = ctl[1] = -1;
	} else if (fcntl(ctl[0], F_SETOWN, getpid()) < 0 ||
	           fcntl(ctl[0], F_SETFL, fcntl(ctl[0], F_GETFL) | O_ASYNC | O_NONBLOCK) < 0) {
		/* Set before the fork: a worker's "R" must not arrive before SIGIO is armed. */
		httpd_log(HTTPD_LOG_WARN, "control socket: %s; readiness will not reach systemd", strerror(errno));
	}
	score = scoreboard_slot_claim(scoreboard, id, 0, scoreboard != NULL ? scoreboard->generation : 0);
	if (score < 0 && scoreboard != NULL)
		httpd_log(HTTPD_LOG_WARN, "the scoreboard is full; worker %u will not be counted", id);
	pid = fork();
	if (pid < 0) {
		httpd_log(HTTPD_LOG_ERR, "fork: %s", strerror(errno));
		scoreboard_slot_retire(scoreboard, score);
		if (ctl[0] >= 0) {
			close(ctl[0]);
			close(ctl[1]);
		}
		return -1;
	}
	if (pid == 0) {
		struct worker_setup setup = {
			.id = (int)id,
			.config = config,
			.listen_fds = fds,
			.listen_addrs = addrs,
			.listen_flags = flags,
			.listen_count = nfds,
			.exclusive = !config->reuseport,
			.uid = m->uid,
			.gid = m->gid,
			.drop_privileges = m->drop_privileges,
			.control_fd = ctl[1],
			.score_slot = score,
			.hooks = &daemon_worker_hooks,
		};

		if (ctl[0] >= 0)
			close(ctl[0]);
		controls_close(m);   /* the other workers' channels are not ours */
		_exit(worker_run(&setup));
	}
	/* Its "accepting" note raises SIGIO here: the master waits on signals, not on sockets. */
	if (ctl[1] >= 0)
		close(ctl[1]);
	if (m->slots[id].ctl >= 0)
		close(m->slots[id].ctl);
	m->slots[id].ctl = ctl[0];
	m->slots[id].pid = pid;
	m->slots[id].ready = false;
	m->slots[id].score = score;
	if (score >= 0)
		__atomic_store_n(&scoreboard->slot[score].pid, (int32_t)pid, __ATOMIC_RELAXED);
	m->slots[id].started_ms = monotonic_ms();
	return pid;
}

/* Forks a worker for every slot of the (already allocated) slot table. */
static void slots_start(struct master *m)
{
	for (unsigned i = 0; i < m->slot_count; i++)
		if (worker_spawn(m, i) < 0)
			m->slots[i].respawn_at = monotonic_ms() + 1000;
}

static void draining_add(struct master *m, pid_t pid, int ctl, int score)
{
	struct drainer *grown = realloc(m->draining, (m->draining_count + 1) * sizeof(*grown));

	if (grown == NULL) {
		/* Cannot track it: stop it at once instead (its counts are lost). */
		kill(pid, SIGTERM);
		if (ctl >= 0)
			close(ctl);
		scoreboard_slot_retire(scoreboard, score);
		return;
	}
	m->draining = grown;
	m->draining[m->draining_count++] = (struct drainer){ pid, ctl, score };
}

static void children_signal(struct master *m, int sig)
{
	for (unsigned i = 0; i < m->slot_count; i++)
		if (m->slots[i].pid > 0)
			kill(m->slots[i].pid, sig);
	for (size_t i = 0; i < m->draining_count; i++)
		kill(m->draining[i].pid, sig);
}

static size_t children_alive(const struct master *m)
{
	size_t n = m->draining_count;

	for (unsigned i = 0; i < m->slot_count; i++)
		n += m->slots[i].pid > 0;
	return n;
}

static void exit_describe(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
}

static void children_reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char why[96];
		bool found = false;

		for (size_t i = 0; i < m->draining_count; i++) {
			if (m->draining[i].pid == pid) {
				if (m->draining[i].ctl >= 0)
					close(m->draining[i].ctl);
				scoreboard_slot_retire(scoreboard, m->draining[i].score);
				m->draining[i] = m->draining[--m->draining_count];
				found = true;
				break;
			}
		}
		if (found)
			continue;
		for (unsigned i = 0; i < m->slot_count; i++) {
			struct slot *s = &m->slots[i];
			uint64_t now = monotonic_ms(), delay;

			if (s->pid != pid)
				continue;
			s->pid = 0;
			if (s->ctl >= 0)
				close(s->ctl);
			s->ctl = -1;
			if (s->score >= 0 && WIFSIGNALED(status) && scoreboard->slot[s->score].request[0] != '\0')
				httpd_log(HTTPD_LOG_ERR, "worker %u (pid %ld) died by signal %d (%s) while serving \"%.*s\"", i,
				          (long)pid, WTERMSIG(status), strsignal(WTERMSIG(status)), SCORE_REQUEST,
				          scoreboard->slot[s->score].request);
			scoreboard_slot_retire(scoreboard, s->score);
			s->score = -1;
			if (m->stopping)
				break;
			exit_describe(status, why, sizeof(why));
			/* A worker that dies at once will die again: back off, do not spin. */
			if (now - s->started_ms < CRASH_WINDOW_MS)
				s->failures++;
			else
				s->failures = 0;
			delay = s->failures == 0 ? 0 : 100ull << (s->failures > 9 ? 9 : s->failures - 1);
			if (delay > RESPAWN_MAX_MS)
				delay = RESPAWN_MAX_MS;
			s->respawn_at = now + delay;
			httpd_log(HTTPD_LOG_ERR, "worker %u (pid %ld) %s; respawning in %llu ms", i, (long)pid,
			          why, (unsigned long long)delay);
			break;
		}
	}
}

static uint64_t respawn_due(struct master *m)
{
	uint64_t next = UINT64_MAX, now = monotonic_ms();

	for (unsigned i = 0; i < m->slot_count; i++) {
		struct slot *s = &m->slots[i];

		if (s->pid != 0)
			continue;
		if (s->respawn_at <= now) {
			if (worker_spawn(m, i) < 0)
				s->respawn_at = now + 1000;
			else
				continue;
		}
		if (s->respawn_at < next)
			next = s->respawn_at;
	}
	return next;
}

static int credentials_resolve(struct master *m, const struct httpd_config *config)
{
	struct passwd *pw;

	m->drop_privileges = geteuid() == 0;
	if (!m->drop_privileges)
		return 0;
	pw = getpwnam(config->user);
	if (pw == NULL) {
		fprintf(stderr, "%s: user \"%s\" does not exist\n", m->config_path, config->user);
		httpd_log(HTTPD_LOG_ERR, "user \"%s\" does not exist", config->user);
		return -1;
	}
	m->uid = pw->pw_uid;
	m->gid = pw->pw_gid;
	/* user = "root" is allowed but means the workers keep every privilege. */
	m->drop_privileges = pw->pw_uid != 0;
	if (!m->drop_privileges)
		httpd_log(HTTPD_LOG_WARN, "user \"%s\" is root: workers will run with every privilege",
		          config->user);
	return 0;
}

/*
 * Starts a new generation of workers for new_config (or the same config
 * again).  Everything that can fail happens before the old workers are
 * told to quit; after that point the switch always completes, so a failed
 * reload can never free the configuration that is live.
 */
static int generation_switch(struct master *m, struct httpd_config *new_config)
{
	struct socket_entry *table;
	size_t count;
	struct slot *new_slots;
	struct httpd_config *old_config = m->config;
	struct master saved = *m;

	if (credentials_resolve(m, new_config) < 0) {
		*m = saved;
		return -1;
	}
	new_slots = calloc(new_config->workers, sizeof(*new_slots));
	if (new_slots == NULL) {
		httpd_log(HTTPD_LOG_ERR, "out of memory starting %u workers", new_config->workers);
		*m = saved;
		return -1;
	}
	slots_init(new_slots, new_config->workers);
	if (sockets_open(new_config, m->sockets, m->socket_count, &table, &count) < 0) {
		free(new_slots);
		*m = saved;
		return -1;
	}
	/* Old workers finish what they have and exit; their sockets live on in them. */
	for (unsigned i = 0; i < m->slot_count; i++) {
		if (m->slots[i].pid > 0) {
			kill(m->slots[i].pid, SIGQUIT);
			draining_add(m, m->slots[i].pid, m->slots[i].ctl, m->slots[i].score);
			m->slots[i].ctl = -1;
			m->slots[i].score = -1;
		}
	}
	sockets_close(m->sockets, m->socket_count);
	m->sockets = table;
	m->socket_count = count;
	m->config = new_config;
	free(m->slots);
	m->slots = new_slots;
	m->ready_sent = false;
	if (scoreboard != NULL)
		scoreboard->generation++;
	m->slot_count = new_config->workers;
	mime_table_use(new_config->mime);
	slots_start(m);
	if (old_config != new_config)
		config_free(old_config);
	return 0;
}

/* The running generation goes on: systemd hears it is ready again, and why the reload failed. */
static void reload_failed(struct master *m, const char *why)
{
	m->reloads_failed++;
	if (scoreboard != NULL)
		scoreboard->reloads_failed = m->reloads_failed;
	systemd_notify("READY=1\nSTATUS=reload failed (%s); serving with the previous configuration, "
	               "%u reloads failed so far", why, m->reloads_failed);
}

static void control_drain(int ctl, bool *ready)
{
	int fds[CONTROL_FDS_MAX], kind;
	size_t nfds;

	while ((kind = control_recv(ctl, fds, &nfds)) >= 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);   /* workers send none; never keep what they might */
		if (kind == 'R' && ready != NULL)
			*ready = true;
	}
}

/* SIGIO: workers wrote on their control sockets; once every current one accepts, tell systemd. */
static void workers_ready(struct master *m)
{
	unsigned ready = 0;

	for (size_t i = 0; i < m->draining_count; i++)
		control_drain(m->draining[i].ctl, NULL);
	for (unsigned i = 0; i < m->slot_count; i++) {
		control_drain(m->slots[i].ctl, &m->slots[i].ready);
		ready += m->slots[i].ready;
	}
	if (ready < m->slot_count || m->ready_sent)
		return;
	m->ready_sent = true;
	upgrade_report_ready();   /* a new master after SIGUSR2: the old one may go now */
	systemd_notify("READY=1\nSTATUS=serving: %u workers, %zu listeners; %u reloads, %u failed",
	               m->slot_count, m->config->listen_count, m->reloads_ok, m->reloads_failed);
}

/* WATCHDOG=1 while every worker slot has a worker: a master stuck, or unable to keep workers, stops it. */
static void watchdog_tick(struct master *m)
{
	uint64_t interval = systemd_watchdog_ms(), now = monotonic_ms();

	if (interval == 0 || now < m->watchdog_at)
		return;
	m->watchdog_at = now + interval;
	for (unsigned i = 0; i < m->slot_count; i++)
		if (m->slots[i].pid <= 0)
			return;
	systemd_notify("WATCHDOG=1");
}

static void children_wait(struct master *m, const sigset_t *set, uint64_t timeout_ms);

/*
 * SIGUSR2: start the binary again with our listening sockets; once its
 * workers all accept, ours drain and we exit (true).  If it fails, we go on
 * serving (false).
 */
static bool binary_upgrade(struct master *m, const sigset_t *set)
{
	int fds[HTTPD_LISTEN_MAX];
	size_t n = 0;
	pid_t child = 0;

	/* One socket per address: with reuseport the new master opens its other ones itself. */
	for (size_t i = 0; i < m->socket_count && n < HTTPD_LISTEN_MAX; i++)
		if (m->sockets[i].slot == 0 && m->sockets[i].fd >= 0)
			fds[n++] = m->sockets[i].fd;
	if (upgrade_start(fds, n, systemd_notify_socket(), m->config->upgrade_timeout_ms, &child) != UPGRADE_READY) {
		systemd_notify("STATUS=binary upgrade failed; serving with the running binary");
		return false;
	}
	httpd_log(HTTPD_LOG_NOTICE, "upgrade: the new master (pid %ld) serves; draining this one's workers",
	          (long)child);
	systemd_notify("MAINPID=%ld\nREADY=1\nSTATUS=upgraded; the old master %ld drains", (long)child, (long)getpid());
	m->stopping = true;
	children_signal(m, SIGQUIT);
	children_wait(m, set, m->config->drain_timeout_ms + STOP_GRACE_MS);
	return true;
}

/* Every 10 s, systemd's STATUS= shows the workers, the request rate and the reloads. */
static void status_report(struct master *m)
{
	unsigned at = scoreboard->history_at;
	double rate = 0.0;

	if (!m->ready_sent || at % 10 != 0 || at < 11 || systemd_notify_socket()[0] == '\0')
		return;
	{
		unsigned cur = (at - 1) % SCORE_HISTORY, old = (at - 11) % SCORE_HISTORY;
		int64_t dt = scoreboard->history_time[cur] - scoreboard->history_time[old];

		if (dt > 0)
			rate = (double)(scoreboard->history_requests[cur] - scoreboard->history_requests[old]) / (double)dt;
	}
	systemd_notify("STATUS=serving: %u workers, %.0f req/s; %u reloads, %u failed", m->slot_count, rate,
	               m->reloads_ok, m->reloads_failed);
}

static bool logs_differ(const struct httpd_config *a, const struct httpd_config *b)
{
	if (strcmp(a->error_log, b->error_log) != 0 || a->access_log_count != b->access_log_count)
		return true;
	for (size_t i = 0; i < a->access_log_count; i++)
		if (strcmp(a->access_logs[i], b->access_logs[i]) != 0)
			return true;
	return false;
}

static void reload(struct master *m)
{
	struct httpd_config *fresh;

	httpd_log(HTTPD_LOG_NOTICE, "reloading %s", m->config_path);
	systemd_notify_reloading();
	fresh = config_load(m->config_path, true);
	if (fresh == NULL) {
		httpd_log(HTTPD_LOG_ERR, "reload failed: %s has errors; keeping the running configuration",
		          m->config_path);
		reload_failed(m, "configuration errors");
		return;
	}
	if (logs_differ(fresh, m->config)) {
		if (log_open(fresh->error_log, fresh->access_logs, fresh->access_log_count) < 0) {
			httpd_log(HTTPD_LOG_ERR, "reload failed: cannot open the new logs; keeping the running configuration");
			config_free(fresh);
			reload_failed(m, "cannot open the new logs");
			return;
		}
	}
	if (generation_switch(m, fresh) < 0) {
		httpd_log(HTTPD_LOG_ERR, "reload failed; keeping the running configuration");
		(void)log_open(m->config->error_log, m->config->access_logs, m->config->access_log_count);
		config_free(fresh);
		reload_failed(m, "the new workers could not be started");
		return;
	}
	m->reloads_ok++;
	tls_tickets_apply(m->config);
	log_set_level(m->config->error_log_level);
	if (scoreboard != NULL)
		scoreboard->reloads_ok = m->reloads_ok;
	httpd_log(HTTPD_LOG_NOTICE, "reloaded %s: %u workers", m->config_path, m->config->workers);
}

/* Hands the reopened log descriptors to one worker over its control socket. */
static int logs_send(int ctl)
{
	int fds[CONTROL_FDS_MAX];
	size_t n = 0;

	fds[n++] = log_error_fd();
	for (size_t i = 0; i < log_access_count() && n < CONTROL_FDS_MAX; i++)
		fds[n++] = log_access_fd(i) >= 0 ? log_access_fd(i) : log_error_fd();
	return control_send(ctl, 'A', fds, n);
}

/*
 * SIGUSR1: reopen the logs here (as root, where a rotated directory may be
 * closed to the workers' user), then pass the new descriptors to every
 * worker, draining ones included: no worker is replaced, no connection
 * touched, and a download in progress carries on.
 */
static void logs_reopen(struct master *m)
{
	unsigned failed = 0;

	if (log_reopen() < 0) {
		httpd_log(HTTPD_LOG_ERR, "cannot reopen logs; still writing to the old files");
		return;
	}
	for (unsigned i = 0; i < m->slot_count; i++)
		if (m->slots[i].pid > 0 && logs_send(m->slots[i].ctl) < 0)
			failed++;
	for (size_t i = 0; i < m->draining_count; i++)
		if (logs_send(m->draining[i].ctl) < 0)
			failed++;
	if (failed > 0)
		httpd_log(HTTPD_LOG_WARN, "logs reopened; %u workers could not be given the new files and keep "
		          "writing to the old ones until they are replaced", failed);
	else
		httpd_log(HTTPD_LOG_NOTICE, "logs reopened");
}

/*
 * Connections and the open-file cache both hold descriptors: take the hard
 * limit (systemd's default soft limit of 1024 would cap a worker at ~1000).
 */
static void nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			httpd_log(HTTPD_LOG_WARN, "cannot raise the open file limit: %s", strerror(errno));
	}
}

/*
 * Written beside it and renamed over it, so a reader (systemd, a script,
 * the old master of a binary upgrade) never finds it empty or half written.
 */
static int pid_file_write(const char *path)
{
	char buf[32], tmp[4096];
	int fd, n;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= sizeof(tmp)) {
		fprintf(stderr, "httpd: pid file path %s is too long\n", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "httpd: cannot write pid file %s: %s\n", path, strerror(errno));
		httpd_log(HTTPD_LOG_ERR, "cannot write pid file %s: %s", path, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n || close(fd) < 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "httpd: cannot write pid file %s: %s\n", path, strerror(errno));
		httpd_log(HTTPD_LOG_ERR, "cannot write pid file %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Removes the pid file only if it is still ours (after an upgrade it names the new master). */
static void pid_file_remove(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strtol(buf, NULL, 10) == (long)getpid())
		unlink(path);
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		fprintf(stderr, "httpd: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return -1;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

/* Waits until all children are gone or deadline passes; SIGKILL after that. */
static void children_wait(struct master *m, const sigset_t *set, uint64_t budget_ms)
{
	uint64_t deadline = monotonic_ms() + budget_ms;

	while (children_alive(m) > 0) {
		uint64_t now = monotonic_ms();
		struct timespec ts;

		if (now >= deadline) {
			httpd_log(HTTPD_LOG_WARN, "%zu workers did not stop in time; killing them", children_alive(m));
			children_signal(m, SIGKILL);
			deadline = UINT64_MAX;
		}
		ts.tv_sec = deadline == UINT64_MAX ? 1 : (time_t)((deadline - now) / 1000);
		ts.tv_nsec = deadline == UINT64_MAX ? 0 : (long)((deadline - now) % 1000) * 1000000;
		(void)sigtimedwait(set, NULL, &ts);
		children_reap(m);
	}
}

/*
 * Before a stop: readiness fails at once (SIGUSR2 to the workers), while they
 * keep accepting and serving for shutdown_delay, so a load balancer takes
 * this server out before any connection is refused.  Workers that die
 * meanwhile are reaped; no new ones are started.
 */
static void readiness_drop(struct master *m, const sigset_t *set)
{
	uint64_t deadline;

	if (m->config->shutdown_delay_ms == 0)
		return;
	httpd_log(HTTPD_LOG_NOTICE, "failing readiness for %u s before stopping",
	          m->config->shutdown_delay_ms / 1000);
	m->stopping = true;
	children_signal(m, SIGUSR2);
	deadline = monotonic_ms() + m->config->shutdown_delay_ms;
	for (uint64_t now = monotonic_ms(); now < deadline; now = monotonic_ms()) {
		struct timespec ts = { .tv_sec = (time_t)((deadline - now) / 1000),
		                       .tv_nsec = (long)((deadline - now) % 1000) * 1000000 };
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig == SIGCHLD)
			children_reap(m);
		else if (sig == SIGINT)
			break;   /* Ctrl-C: stop now after all */
	}
}

int master_run(struct httpd_config *config, const char *config_path, bool foreground)
{
	struct master m = { .config = config, .config_path = config_path };
	sigset_t set;
	int status = 1;
	bool pid_written = false;

	signal(SIGPIPE, SIG_IGN);
	systemd_init();
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGIO);      /* a worker wrote on its control socket */
	/*
	 * Started from a shell's background job these may be ignored, and an
	 * ignored signal is discarded before sigtimedwait could take it: SIGINT
	 * would not stop us.  They are ours to handle.
	 */
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&set, sig) == 1)
			(void)signal(sig, SIG_DFL);
	/* Blocked for good: the master takes signals with sigtimedwait, workers with signalfd. */
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (credentials_resolve(&m, config) < 0)
		goto out;
	nofile_raise();
	log_set_level(config->error_log_level);
	mime_table_use(config->mime);
	if (log_open(config->error_log, config->access_logs, config->access_log_count) < 0) {
		fprintf(stderr, "%s: cannot open the logs %s and %s: %s\n", config_path, config->error_log,
		        config->access_log, strerror(errno));
		goto out;
	}
	if (sockets_open(config, NULL, 0, &m.sockets, &m.socket_count) < 0)
		goto out;
	systemd_listen_close_unused();
	scoreboard = scoreboard_create();
	if (scoreboard == NULL)
		httpd_log(HTTPD_LOG_WARN, "cannot map the scoreboard: %s; the status module will show nothing",
		          strerror(errno));
	/* A new master after SIGUSR2 is already detached; forking again would look like a failure. */
	if (!foreground && !upgrade_is_new_master() && daemonize() < 0)
		goto out;
	if (pid_file_write(config->pid_file) < 0)
		goto out;
	pid_written = true;
	if (tls_tickets_init() < 0)
		httpd_log(HTTPD_LOG_WARN, "cannot map the TLS session ticket keys: %s; sessions resume only on the "
		          "worker that made them", strerror(errno));
	tls_tickets_apply(config);
	m.slot_count = config->workers;
	m.slots = calloc(m.slot_count, sizeof(*m.slots));
	if (m.slots == NULL)
		goto out;
	slots_init(m.slots, m.slot_count);
	slots_start(&m);
	workers_ready(&m);   /* notes that came before we listened for SIGIO */
	httpd_log(HTTPD_LOG_NOTICE, "started: %u workers, %zu listeners, %s accept balancing",
	          config->workers, config->listen_count, config->reuseport ? "SO_REUSEPORT" : "EPOLLEXCLUSIVE");

	for (;;) {
		siginfo_t info;
		uint64_t next = respawn_due(&m), now = monotonic_ms();
		struct timespec ts = { .tv_sec = 3600, .tv_nsec = 0 };
		int sig;

		watchdog_tick(&m);
		if (tls_tickets_next_rotation() != 0) {
			time_t wall = time(NULL), at = tls_tickets_next_rotation();

			if (wall >= at)
				tls_tickets_rotate(wall);
			else if (now + (uint64_t)(at - wall) * 1000 < next)
				next = now + (uint64_t)(at - wall) * 1000;
		}
		if (systemd_watchdog_ms() != 0 && m.watchdog_at < next)
			next = m.watchdog_at;
		if (scoreboard != NULL) {
			if (now >= m.sample_at) {
				scoreboard_sample(scoreboard, time(NULL));
				m.sample_at = now + 1000;
				status_report(&m);
			}
			if (m.sample_at < next)
				next = m.sample_at;
		}
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / 1000);
			ts.tv_nsec = (long)(wait % 1000) * 1000000;
		}
		sig = sigtimedwait(&set, &info, &ts);
		if (sig < 0)
			continue;   /* timeout or EINTR: respawn check */
		if (sig == SIGIO) {
			workers_ready(&m);
			continue;
		}
		if (sig == SIGINT || sig == SIGTERM || sig == SIGQUIT)
			systemd_notify("STOPPING=1\nSTATUS=stopping (%s)", strsignal(sig));
		switch (sig) {
		case SIGCHLD:
			children_reap(&m);
			break;
		case SIGHUP:
			reload(&m);
			break;
		case SIGUSR1:
			logs_reopen(&m);
			break;
		case SIGUSR2:
			if (binary_upgrade(&m, &set)) {
				status = 0;
				goto out;
			}
			break;
		case SIGINT:
			httpd_log(HTTPD_LOG_NOTICE, "stopping now (%s)", strsignal(sig));
			m.stopping = true;
			children_signal(&m, SIGINT);
			children_wait(&m, &set, STOP_GRACE_MS);
			status = 0;
			goto out;
		case SIGTERM:
			readiness_drop(&m, &set);
			httpd_log(HTTPD_LOG_NOTICE, "stopping: finishing requests in flight (shutdown_timeout %u s)",
			          m.config->shutdown_timeout_ms / 1000);
			m.stopping = true;
			children_signal(&m, SIGTERM);
			children_wait(&m, &set, m.config->shutdown_timeout_ms + STOP_GRACE_MS);
			status = 0;
			goto out;
		case SIGQUIT:
			readiness_drop(&m, &set);
			httpd_log(HTTPD_LOG_NOTICE, "graceful stop: draining connections (drain_timeout %u s)",
			          m.config->drain_timeout_ms / 1000);
			m.stopping = true;
			children_signal(&m, SIGQUIT);
			children_wait(&m, &set, m.config->drain_timeout_ms + STOP_GRACE_MS);
			status = 0;
			goto out;
		default:
			break;
		}
	}
out:
	if (pid_written)
		pid_file_remove(m.config->pid_file);
	if (status == 0)
		httpd_log(HTTPD_LOG_NOTICE, "stopped");
	sockets_close(m.sockets, m.socket_count);
	free(m.slots);
	free(m.draining);
	config_free(m.config);
	log_close();
	return status;
}
