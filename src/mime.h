/* File name extension to media type, from a mime.types file. */
#ifndef HTTPD_MIME_H
#define HTTPD_MIME_H

/* Loads path (mime.types format); replaces any table loaded before.  -1 on error. */
int mime_load(const char *path);
void mime_free(void);

#endif
