/* The sign module's nonce store in its file: reopened, resized with its live entries, refused or made anew. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nonce_store.h"
#include "tap.h"

static char dir[] = "/tmp/nonce-test-XXXXXX";
static char path[128];

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/httpd.nonces", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

START_TEST(test_reopened_store_keeps_every_nonce)
{
	char err[256];
	time_t now = time(NULL);
	struct nonce_store *s = nonce_store_open(path, 64, NULL, err, sizeof(err));
	struct stat st;
	time_t started;

	ck_assert_msg(s != NULL, "%s", err);
	ck_assert(nonce_store_fresh(s));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(nonce_store_claim(s, "k", "n1", now + 300, now), NONCE_CLAIMED);
	ck_assert_int_eq(nonce_store_claim(s, "k", "n1", now + 300, now), NONCE_REPLAY);
	ck_assert_int_eq(nonce_store_claim(s, "k", "gone", now + 1, now), NONCE_CLAIMED);
	started = nonce_store_started(s);
	nonce_store_destroy(s);
	/* a new master: the same file, every nonce still there, the start of the store kept */
	s = nonce_store_open(path, 64, NULL, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert(!nonce_store_fresh(s));
	ck_assert_int_eq(nonce_store_started(s), started);
	ck_assert_int_eq(nonce_store_claim(s, "k", "n1", now + 300, now), NONCE_REPLAY);
	ck_assert_int_eq(nonce_store_claim(s, "k", "gone", now + 300, now + 2), NONCE_CLAIMED);   /* it expired */
	ck_assert_int_eq(nonce_store_claim(s, "k2", "n1", now + 300, now), NONCE_CLAIMED);
	nonce_store_destroy(s);
}
END_TEST

START_TEST(test_resized_store_copies_live_entries)
{
	char err[256];
	time_t now = time(NULL);
	struct nonce_store *s = nonce_store_open(path, 64, NULL, err, sizeof(err)), *bigger, *again;
	char nonce[16];

	ck_assert_msg(s != NULL, "%s", err);
	for (int i = 0; i < 40; i++) {
		snprintf(nonce, sizeof(nonce), "n%d", i);
		ck_assert_int_eq(nonce_store_claim(s, "k", nonce, now + 300, now), NONCE_CLAIMED);
	}
	/* a reload with more entries: from the running store */
	bigger = nonce_store_open(path, 1024, s, err, sizeof(err));
	ck_assert_msg(bigger != NULL, "%s", err);
	ck_assert(!nonce_store_fresh(bigger));
	for (int i = 0; i < 40; i++) {
		snprintf(nonce, sizeof(nonce), "n%d", i);
		ck_assert_int_eq(nonce_store_claim(bigger, "k", nonce, now + 300, now), NONCE_REPLAY);
	}
	nonce_store_destroy(s);
	nonce_store_destroy(bigger);
	/* a restart with fewer entries: from the file */
	again = nonce_store_open(path, 128, NULL, err, sizeof(err));
	ck_assert_msg(again != NULL, "%s", err);
	ck_assert(!nonce_store_fresh(again));
	ck_assert_int_eq(nonce_store_entries(again), 128);
	ck_assert_int_eq(nonce_store_claim(again, "k", "n7", now + 300, now), NONCE_REPLAY);
	nonce_store_destroy(again);
}
END_TEST

START_TEST(test_damaged_or_foreign_files)
{
	char err[256];
	struct nonce_store *s = nonce_store_open(path, 64, NULL, err, sizeof(err));
	int fd;

	ck_assert_msg(s != NULL, "%s", err);
	nonce_store_destroy(s);
	/* a scribbled head (a worker's doing, or a torn disk): a store made anew, never trusted */
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16, 8), 16);
	close(fd);
	s = nonce_store_open(path, 64, NULL, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert(nonce_store_fresh(s));
	nonce_store_destroy(s);
	/* a file others may read is refused, with its path */
	ck_assert_int_eq(chmod(path, 0644), 0);
	s = nonce_store_open(path, 64, NULL, err, sizeof(err));
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err, path) != NULL && strstr(err, "0600") != NULL, "%s", err);
	/* and a file of the wrong length is only data: made anew */
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(truncate(path, 100), 0);
	s = nonce_store_open(path, 64, NULL, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert(nonce_store_fresh(s));
	nonce_store_destroy(s);
}
END_TEST

START_TEST(test_anonymous_store_and_full_window)
{
	struct nonce_store *s = nonce_store_create(16);
	time_t now = time(NULL);
	char nonce[16];
	int claimed = 0, full = 0;

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 40; i++) {
		snprintf(nonce, sizeof(nonce), "n%d", i);
		switch (nonce_store_claim(s, "k", nonce, now + 300, now)) {
		case NONCE_CLAIMED: claimed++; break;
		case NONCE_FULL:    full++; break;
		default:            ck_abort_msg("unexpected claim result");
		}
	}
	ck_assert_int_eq(claimed, 16);   /* a live entry is never evicted */
	ck_assert_int_eq(full, 24);
	nonce_store_destroy(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nonce_store");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reopened_store_keeps_every_nonce);
	tcase_add_test(tc, test_resized_store_copies_live_entries);
	tcase_add_test(tc, test_damaged_or_foreign_files);
	tcase_add_test(tc, test_anonymous_store_and_full_window);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
