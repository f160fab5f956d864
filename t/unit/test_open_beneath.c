/*
 * httpd_open_beneath without openat2: each test asks the kernel first
 * (openat2, RESOLVE_BENEATH), then installs a seccomp filter that fails
 * openat2 as an old kernel or a container would, and asks again: the walk
 * must give the same answer, the same file or the same errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd/module.h"
#include "tap.h"

static int notices;

/* fs.c says once that it walks; counted here instead of logged. */
void httpd_log(enum httpd_log_level level, const char *fmt, ...)
{
	(void)fmt;
	if (level == HTTPD_LOG_NOTICE)
		notices++;
}

static void refuse_openat2(int err)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 437, 0, 1),   /* openat2, in every table since 5.6 */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

static char top[64];
static int root_fd = -1;

static int tree_unlink(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void tree_remove(void)
{
	if (root_fd >= 0)
		close(root_fd);
	root_fd = -1;
	ck_assert_int_eq(nftw(top, tree_unlink, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void put(const char *rel, const char *link_target)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/root/%s", top, rel);
	if (link_target != NULL)
		ck_assert_int_eq(symlink(link_target, path), 0);
	else if (rel[strlen(rel) - 1] == '/')
		ck_assert_int_eq(mkdir(path, 0755), 0);
	else
		ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)), 0);
}

static void tree_make(void)
{
	char path[512];

	snprintf(top, sizeof(top), "/tmp/httpd-beneath-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
	snprintf(path, sizeof(path), "%s/root", top);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/secret", top);
	ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)), 0);
	put("a/", NULL);
	put("a/b/", NULL);
	put("a/b/file", NULL);
	put("file", NULL);
	put("to-file", "file");
	put("to-b", "a/b");
	put("a/up", "../file");
	put("a/chain", "b/../../to-file");
	put("abs", "/etc/passwd");
	put("out", "../secret");
	put("a/out-and-back", "../../root/file");
	put("loop1", "loop2");
	put("loop2", "loop1");
	put("dangling", "nowhere");
	snprintf(path, sizeof(path), "%s/root", top);
	root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root_fd, 0);
}

struct answer {
	int   err;      /* 0 when opened */
	dev_t dev;
	ino_t ino;
};

static struct answer ask(const char *path, int flags)
{
	struct answer a = { 0, 0, 0 };
	struct stat st;
	int fd = httpd_open_beneath(root_fd, path, flags);

	if (fd < 0) {
		a.err = errno;
		return a;
	}
	ck_assert_int_eq(fstat(fd, &st), 0);
	a.dev = st.st_dev;
	a.ino = st.st_ino;
	close(fd);
	return a;
}

static const char *const paths[] = {
	"file", "/file", "a/b/file", "a//b/./file", "a/b/", "a/b", ".", "", "a/..", "a/../file",
	"to-file", "to-b/file", "to-b/", "a/up", "a/chain", "abs", "out", "a/out-and-back", "..",
	"a/../../root/file", "loop1", "dangling", "missing", "file/", "file/x", "to-file/",
};
static const int flag_sets[] = {
	O_RDONLY | O_NONBLOCK, O_RDONLY | O_DIRECTORY, O_PATH | O_DIRECTORY, O_PATH,
};

static void same_answers(int refusal)
{
	struct answer kernel[sizeof(paths) / sizeof(paths[0])][sizeof(flag_sets) / sizeof(flag_sets[0])];

	tree_make();
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		for (size_t j = 0; j < sizeof(flag_sets) / sizeof(flag_sets[0]); j++)
			kernel[i][j] = ask(paths[i], flag_sets[j]);
	ck_assert_int_eq(notices, 0);
	refuse_openat2(refusal);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (size_t j = 0; j < sizeof(flag_sets) / sizeof(flag_sets[0]); j++) {
			struct answer walk = ask(paths[i], flag_sets[j]);

			ck_assert_msg(walk.err == kernel[i][j].err && walk.ino == kernel[i][j].ino &&
			              walk.dev == kernel[i][j].dev,
			              "\"%s\" flags %#x: the kernel says %s (inode %lu), the walk %s (inode %lu)",
			              paths[i], (unsigned)flag_sets[j], strerror(kernel[i][j].err),
			              (unsigned long)kernel[i][j].ino, strerror(walk.err), (unsigned long)walk.ino);
		}
	}
	ck_assert_int_eq(notices, 1);
	tree_remove();
}

START_TEST(test_walk_answers_as_the_kernel_when_openat2_is_missing)
{
	same_answers(ENOSYS);
}
END_TEST

START_TEST(test_walk_answers_as_the_kernel_when_openat2_is_refused)
{
	same_answers(EPERM);
}
END_TEST

START_TEST(test_walk_refuses_what_does_not_fit)
{
	char deep[8192];
	size_t len = 0;

	tree_make();
	refuse_openat2(ENOSYS);
	memset(deep, 'x', 300);
	deep[300] = '\0';
	ck_assert_int_lt(httpd_open_beneath(root_fd, deep, O_RDONLY), 0);   /* a name longer than NAME_MAX */
	ck_assert_int_eq(errno, ENAMETOOLONG);
	while (len + 2 < sizeof(deep)) {                                     /* a path longer than PATH_MAX */
		deep[len++] = 'a';
		deep[len++] = '/';
	}
	deep[len] = '\0';
	ck_assert_int_lt(httpd_open_beneath(root_fd, deep, O_RDONLY), 0);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	tree_remove();
}
END_TEST

START_TEST(test_walk_creates_beneath_only)
{
	struct stat st;
	int fd;

	tree_make();
	refuse_openat2(ENOSYS);
	fd = httpd_open_beneath(root_fd, "a/new", O_WRONLY | O_CREAT | O_EXCL);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(fstatat(root_fd, "a/new", &st, 0), 0);
	/* Through a dangling link: created where it points, which is beneath. */
	fd = httpd_open_beneath(root_fd, "dangling", O_WRONLY | O_CREAT);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(fstatat(root_fd, "nowhere", &st, AT_SYMLINK_NOFOLLOW), 0);
	/* Never outside. */
	ck_assert_int_lt(httpd_open_beneath(root_fd, "../made-outside", O_WRONLY | O_CREAT), 0);
	ck_assert_int_eq(errno, EXDEV);
	ck_assert_int_ne(fstatat(root_fd, "../made-outside", &st, 0), 0);
	tree_remove();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("open_beneath");
	TCase *tc = tcase_create("walk");

	tcase_add_test(tc, test_walk_answers_as_the_kernel_when_openat2_is_missing);
	tcase_add_test(tc, test_walk_answers_as_the_kernel_when_openat2_is_refused);
	tcase_add_test(tc, test_walk_refuses_what_does_not_fit);
	tcase_add_test(tc, test_walk_creates_beneath_only);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
