/* Request paths: percent-decoding and normalisation, done once in the core. */
#ifndef HTTPD_PATH_H
#define HTTPD_PATH_H

#include <stddef.h>

/*
 * Decodes the path part of an origin-form target (len bytes, no query) into
 * out (at least len + 1 bytes) and normalises it: dot segments resolved,
 * repeated slashes merged.  Returns the length, or -1 for a path that must
 * be refused with 400: not starting with '/', a bad escape, an encoded NUL
 * or '/', a raw control byte, or ".." above the root.
 */
long path_normalise(const char *path, size_t len, char *out);

/*
 * Percent-encodes path for a header such as Location or an href: everything
 * but unreserved characters and '/'.  Returns the length written, or -1 if
 * out (size bytes) is too small; 3 * strlen(path) + 1 bytes always suffice.
 */
long path_encode(const char *path, char *out, size_t size);

#endif
