/* Runs a Check suite with TAP output, for automake's tap-driver. */
#ifndef HTTPD_TEST_TAP_H
#define HTTPD_TEST_TAP_H

#include <check.h>
#include <stdlib.h>

static inline int tap_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	int failed;

	srunner_set_tap(sr, "-");
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
