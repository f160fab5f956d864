/* File name extension to media type, from a mime.types file. */
#ifndef HTTPD_MIME_H
#define HTTPD_MIME_H

#include <stddef.h>

struct mime_table;

/* Loads path (mime.types format).  NULL with the reason in err. */
struct mime_table *mime_table_load(const char *path, char *err, size_t errlen);
void mime_table_free(struct mime_table *t);
/* The table httpd_mime_type answers from in this process. */
void mime_table_use(const struct mime_table *t);

#endif
