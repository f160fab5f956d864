/* Files beneath a root: the one place that decides what the server may open. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "httpd/module.h"

#define WALK_DEPTH_MAX 256   /* directories deep beneath the root, for the walk */
#define WALK_LINKS_MAX 40    /* symlinks followed in one walk, as the kernel's MAXSYMLINKS */

/* Set once this process has seen openat2(2) missing: the walk answers from then on. */
static bool openat2_missing;

/*
 * Puts the target of the symlink open as linkfd in the link's place at the
 * head of what is left to resolve, *rest ("link/rest" becomes "target/rest",
 * "link" just "target"): 0, or an errno (EXDEV for an absolute target).
 */
static int link_splice(int linkfd, char *buf, size_t size, const char **rest)
{
	char target[PATH_MAX], spliced[PATH_MAX];
	ssize_t n = readlinkat(linkfd, "", target, sizeof(target));
	int len;

	if (n < 0)
		return errno;
	if ((size_t)n >= sizeof(target))
		return ENAMETOOLONG;
	target[n] = '\0';
	if (target[0] == '/')
		return EXDEV;
	len = snprintf(spliced, sizeof(spliced), "%s%s%s", target, **rest != '\0' ? "/" : "", *rest);
	if (len < 0 || (size_t)len >= sizeof(spliced) || (size_t)len >= size)
		return ENAMETOOLONG;
	memcpy(buf, spliced, (size_t)len + 1);
	*rest = buf;
	return 0;
}

/*
 * The walk: what RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS does, for kernels
 * (before 5.6) and seccomp filters without openat2.  Each directory is held
 * open while the next component is looked up beneath it with O_NOFOLLOW, so
 * a directory renamed or swapped for a symlink meanwhile cannot lead out;
 * ".." pops back to the directory held before, and never above dirfd (EXDEV).
 * A symlink is read and its target resolved the same way: an absolute one,
 * or one that climbs above dirfd, is refused with EXDEV, as the kernel does.
 */
static int open_beneath_walk(int dirfd, const char *path, int flags)
{
	int dirs[WALK_DEPTH_MAX + 1];
	char rest[PATH_MAX];
	const char *p = rest;
	size_t path_len = strlen(path);
	int depth = 0, links = 0, fd = -1, err = 0;

	if (path_len >= sizeof(rest)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(rest, path, path_len + 1);
	dirs[0] = dirfd;
	for (;;) {
		char name[NAME_MAX + 1];
		size_t len;
		bool last, trailing_slash;
		struct stat st;
		int cur;

		p += strspn(p, "/");
		if (*p == '\0') {
			/* The path names a directory already held ("." or "dir/"). */
			fd = openat(dirs[depth], ".", flags | O_CLOEXEC);
			err = errno;
			break;
		}
		len = strcspn(p, "/");
		if (len > NAME_MAX) {
			err = ENAMETOOLONG;
			break;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		trailing_slash = *p == '/';
		last = p[strspn(p, "/")] == '\0';
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			if (depth == 0) {
				err = EXDEV;
				break;
			}
			close(dirs[depth--]);
			continue;
		}
		cur = openat(dirs[depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (cur < 0 && errno == ENOENT && last && (flags & O_CREAT)) {
			/* Created as openat2 would (its open_how carries no mode: 0). */
			fd = openat(dirs[depth], name, flags | O_NOFOLLOW | O_CLOEXEC, 0);
			err = errno;
			break;
		}
		if (cur < 0 || fstat(cur, &st) < 0) {
			err = errno;
			if (cur >= 0)
				close(cur);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			err = ++links > WALK_LINKS_MAX ? ELOOP : link_splice(cur, rest, sizeof(rest), &p);
			close(cur);
			if (err != 0)
				break;
			continue;
		}
		if (last && (flags & O_PATH)) {
			/* Already open as asked, and known not to be a symlink. */
			fd = cur;
			if ((flags & O_DIRECTORY || trailing_slash) && !S_ISDIR(st.st_mode)) {
				close(cur);
				fd = -1;
				err = ENOTDIR;
			}
			break;
		}
		if (last) {
			/* Opened again as asked; O_NOFOLLOW refuses a symlink swapped in meanwhile. */
			close(cur);
			fd = openat(dirs[depth], name, flags | (trailing_slash ? O_DIRECTORY : 0) | O_NOFOLLOW | O_CLOEXEC);
			err = errno;
			break;
		}
		if (!S_ISDIR(st.st_mode) || depth == WALK_DEPTH_MAX) {
			close(cur);
			err = S_ISDIR(st.st_mode) ? ENAMETOOLONG : ENOTDIR;
			break;
		}
		dirs[++depth] = cur;
	}
	while (depth > 0)
		close(dirs[depth--]);
	if (fd < 0)
		errno = err;
	return fd;
}

/* From now on this process resolves paths itself; said once, with why. */
static void openat2_give_up(const char *why)
{
	openat2_missing = true;
	httpd_log(HTTPD_LOG_NOTICE, "openat2(2) %s: files are opened beneath their root by walking each path one "
	          "component at a time (kernel before 5.6, or a seccomp filter that does not know openat2)", why);
}

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
	int fd;

	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	if (openat2_missing)
		return open_beneath_walk(dirfd, path, flags);
	fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return fd;
	if (errno == ENOSYS) {
		openat2_give_up("is not available");
		return open_beneath_walk(dirfd, path, flags);
	}
	/* EPERM: a seccomp filter's refusal (the walk succeeds), or the file's own answer (it fails too). */
	fd = open_beneath_walk(dirfd, path, flags);
	if (fd >= 0)
		openat2_give_up("was refused (EPERM) where opening the file itself was not");
	return fd;
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
