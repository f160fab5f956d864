/* auth_basic: credentials decoding, the htpasswd file, and verification with libcrypt. */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_basic.h"
#include "tap.h"

START_TEST(test_credentials)
{
	char buf[128];
	const char *user, *password;

	ck_assert(auth_basic_credentials("Basic YWxpY2U6b3BlbiBzZXNhbWU=", buf, sizeof(buf), &user, &password));
	ck_assert_str_eq(user, "alice");
	ck_assert_str_eq(password, "open sesame");
	ck_assert(auth_basic_credentials("basic   YTpiOmM=  ", buf, sizeof(buf), &user, &password));   /* a:b:c */
	ck_assert_str_eq(user, "a");
	ck_assert_str_eq(password, "b:c");                                                 /* RFC 7617: first colon */
	ck_assert(auth_basic_credentials("Basic Og==", buf, sizeof(buf), &user, &password));   /* ":" */
	ck_assert_str_eq(user, "");
	ck_assert(!auth_basic_credentials("Bearer YWxpY2U6eA==", buf, sizeof(buf), &user, &password));
	ck_assert(!auth_basic_credentials("Basic", buf, sizeof(buf), &user, &password));
	ck_assert(!auth_basic_credentials("BasicYWxpY2U6eA==", buf, sizeof(buf), &user, &password));
	ck_assert(!auth_basic_credentials("Basic YWxp!2U6eA==", buf, sizeof(buf), &user, &password));
	ck_assert(!auth_basic_credentials("Basic YWxpY2U=", buf, sizeof(buf), &user, &password));    /* no colon */
	ck_assert(!auth_basic_credentials("Basic YQBiOmM=", buf, sizeof(buf), &user, &password));    /* a NUL */
	ck_assert(!auth_basic_credentials("Basic YWxpY2U6b3BlbiBzZXNhbWU=", buf, 8, &user, &password));   /* no room */
}
END_TEST

START_TEST(test_schemes)
{
	ck_assert(htpasswd_hash_accepted("$2y$05$abcdefghijklmnopqrstuu"));
	ck_assert(htpasswd_hash_accepted("$2b$10$x"));
	ck_assert(htpasswd_hash_accepted("$5$salt$x"));
	ck_assert(htpasswd_hash_accepted("$6$salt$x"));
	ck_assert(htpasswd_hash_accepted("$y$j9T$x"));
	ck_assert(!htpasswd_hash_accepted("$apr1$salt$x"));
	ck_assert(!htpasswd_hash_accepted("{SHA}qvTGHdzF6KLavt4PO0gs2a6pQ00="));
	ck_assert(!htpasswd_hash_accepted("$1$salt$x"));
	ck_assert(!htpasswd_hash_accepted("abJnggxhB/yWI"));
	ck_assert(!htpasswd_hash_accepted("secret"));
}
END_TEST

static char *write_file(const char *text)
{
	static char path[] = "/tmp/htpasswd-test-XXXXXX";
	int fd;

	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(test_file_and_verify)
{
	struct crypt_data data;
	char text[512], err[256];
	const char *hash;
	struct auth_basic *a;
	bool known;
	char *path;
	int line;

	memset(&data, 0, sizeof(data));
	hash = crypt_r("pw six", "$6$saltsaltsalt$", &data);
	ck_assert_ptr_nonnull(hash);
	snprintf(text, sizeof(text), "# staff\n\nbob:%s\n", hash);
	path = write_file(text);
	a = auth_basic_load("Staff", path, err, sizeof(err), &line);
	unlink(path);
	ck_assert_msg(a != NULL, "%s", err);
	ck_assert_str_eq(a->header, "Basic realm=\"Staff\", charset=\"UTF-8\"");
	ck_assert_uint_eq(a->count, 1);
	ck_assert(auth_basic_verify("pw six", auth_basic_hash_of(a, "bob", &known)) && known);
	ck_assert(!auth_basic_verify("pw sixx", auth_basic_hash_of(a, "bob", &known)));
	ck_assert(!auth_basic_verify("pw six", "$6$othersalt$"));
	/* an unknown user is checked against a real hash: it costs the same, and never passes */
	ck_assert_ptr_nonnull(auth_basic_hash_of(a, "mallory", &known));
	ck_assert(!known);
	auth_basic_free(a);

	snprintf(text, sizeof(text), "bob:%s\ndave:$apr1$abcdefgh$0123456789012345678901\n", hash);
	path = write_file(text);
	a = auth_basic_load("Staff", path, err, sizeof(err), &line);
	unlink(path);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(line, 2);
	ck_assert_msg(strstr(err, "user \"dave\"") != NULL && strstr(err, "htpasswd -B") != NULL, "%s", err);

	path = write_file("no colon here\n");
	a = auth_basic_load("Staff", path, err, sizeof(err), &line);
	unlink(path);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(line, 1);

	ck_assert_ptr_null(auth_basic_load("a \"quoted\" realm", "/nonexistent", err, sizeof(err), &line));
	ck_assert_ptr_null(auth_basic_load("Staff", "/nonexistent/htpasswd", err, sizeof(err), &line));
	ck_assert_msg(strstr(err, "/nonexistent/htpasswd") != NULL, "%s", err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth_basic");
	TCase *tc = tcase_create("auth_basic");

	tcase_add_test(tc, test_credentials);
	tcase_add_test(tc, test_schemes);
	tcase_add_test(tc, test_file_and_verify);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
