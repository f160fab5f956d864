/* Files beneath a root: the one place that decides what the server may open. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "httpd/module.h"

int httpd_open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		/*
		 * RESOLVE_BENEATH makes the kernel refuse "..", absolute paths and
		 * symlinks that would leave dirfd, so a symlink planted in the
		 * document root cannot expose /etc.  Magic links (/proc) never.
		 */
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int httpd_status_from_errno(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
	case ELOOP:
		return 404;
	case EACCES:
	case EPERM:
	case EXDEV:
		return 403;
	default:
		return 500;
	}
}
