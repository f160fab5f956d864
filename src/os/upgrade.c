#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "timer.h"

#define FD_PARK 256   /* where descriptors wait while the passed ones are put at 3, 4, ... */

static char  exe[4096];
static char **args;
static int   ready_fd = -1;   /* the new master's end of the pipe to the old one */

void upgrade_init(char **argv)
{
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *fd = getenv("HTTPD_UPGRADE_FD");

	args = argv;
	if (n > 0) {
		exe[n] = '\0';
		/* A binary replaced by a package upgrade reads as "PATH (deleted)": the path is the new one. */
		if (n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
			exe[n - 10] = '\0';
	} else {
		exe[0] = '\0';
	}
	if (fd != NULL) {
		char *end;
		long v = strtol(fd, &end, 10);

		if (*end == '\0' && v > 2 && v < 65536 && fcntl((int)v, F_GETFD) >= 0) {
			ready_fd = (int)v;
			(void)fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
		}
		unsetenv("HTTPD_UPGRADE_FD");
	}
}

bool upgrade_is_new_master(void)
{
	return ready_fd >= 0;
}

void upgrade_report_ready(void)
{
	if (ready_fd < 0)
		return;
	if (write(ready_fd, "R", 1) != 1)
		httpd_log(HTTPD_LOG_WARN, "upgrade: cannot tell the old master we are ready: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

/* In the child: the passed sockets at 3..3+nfds-1, the pipe above them, the environment set. */
static void child_exec(const int *fds, size_t nfds, int pipe_wr, const char *notify_socket)
{
	int parked[64];
	char num[32];
	sigset_t none;

	if (nfds > sizeof(parked) / sizeof(parked[0]))
		_exit(127);
	for (size_t i = 0; i < nfds; i++)
		if ((parked[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, FD_PARK)) < 0)
			_exit(127);
	if ((pipe_wr = fcntl(pipe_wr, F_DUPFD, FD_PARK + 64)) < 0)
		_exit(127);
	for (size_t i = 0; i < nfds; i++)
		if (dup2(parked[i], 3 + (int)i) < 0)   /* dup2 leaves close-on-exec off */
			_exit(127);
	snprintf(num, sizeof(num), "%zu", nfds);
	setenv("LISTEN_FDS", num, 1);
	snprintf(num, sizeof(num), "%ld", (long)getpid());
	setenv("LISTEN_PID", num, 1);
	unsetenv("LISTEN_FDNAMES");
	snprintf(num, sizeof(num), "%d", pipe_wr);
	setenv("HTTPD_UPGRADE_FD", num, 1);
	if (notify_socket != NULL && notify_socket[0] != '\0')
		setenv("NOTIFY_SOCKET", notify_socket, 1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* An ignored signal stays ignored across exec: the new program starts with the defaults. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	execv(exe, args);
	_exit(127);
}

enum upgrade_result upgrade_start(const int *fds, size_t nfds, const char *notify_socket,
                                  unsigned timeout_ms, pid_t *child)
{
	int p[2], status = 0;
	uint64_t deadline;
	pid_t pid;
	char note = 0;

	if (exe[0] == '\0') {
		httpd_log(HTTPD_LOG_ERR, "upgrade: cannot tell which binary this is; not upgrading");
		return UPGRADE_FAILED;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		httpd_log(HTTPD_LOG_ERR, "upgrade: pipe: %s", strerror(errno));
		return UPGRADE_FAILED;
	}
	pid = fork();
	if (pid < 0) {
		httpd_log(HTTPD_LOG_ERR, "upgrade: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return UPGRADE_FAILED;
	}
	if (pid == 0) {
		close(p[0]);
		child_exec(fds, nfds, p[1], notify_socket);
	}
	close(p[1]);
	*child = pid;
	httpd_log(HTTPD_LOG_NOTICE, "upgrade: started %s as pid %ld; waiting up to %u s for it to be ready", exe,
	          (long)pid, timeout_ms / 1000);
	deadline = monotonic_ms() + timeout_ms;
	for (uint64_t now = monotonic_ms(); now < deadline; now = monotonic_ms()) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int n = poll(&pfd, 1, (int)(deadline - now > 200 ? 200 : deadline - now));

		if (n > 0) {
			ssize_t r = read(p[0], &note, 1);

			if (r == 1 && note == 'R') {
				close(p[0]);
				return UPGRADE_READY;
			}
			if (r == 0) {
				/* It closed the pipe without being ready: it is exiting, or gave up on us. */
				for (int i = 0; i < 20 && waitpid(pid, &status, WNOHANG) == 0; i++)
					usleep(50000);
				if (kill(pid, 0) == 0)
					break;
				httpd_log(HTTPD_LOG_ERR, "upgrade: the new master exited (%s %d) before it was ready; "
				          "this one goes on serving", WIFSIGNALED(status) ? "signal" : "status",
				          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
				close(p[0]);
				return UPGRADE_FAILED;
			}
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			httpd_log(HTTPD_LOG_ERR, "upgrade: the new master exited (%s %d) before it was ready; "
			          "this one goes on serving", WIFSIGNALED(status) ? "signal" : "status",
			          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			close(p[0]);
			return UPGRADE_FAILED;
		}
	}
	close(p[0]);
	httpd_log(HTTPD_LOG_ERR, "upgrade: the new master (pid %ld) was not ready within %u s; stopping it, "
	          "this one goes on serving", (long)pid, timeout_ms / 1000);
	kill(pid, SIGINT);
	for (int i = 0; i < 50 && waitpid(pid, &status, WNOHANG) != pid; i++)
		usleep(100000);
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
	}
	return UPGRADE_FAILED;
}
