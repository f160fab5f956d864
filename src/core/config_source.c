#include "config_source.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INCLUDE_DEPTH_MAX 8

struct loader {
	struct config_source *src;
	void (*report)(const char *file, int line, const char *msg);
	int depth;
};

static int text_put(struct config_source *src, char c, const char *file, int line)
{
	if (src->len + 2 > src->cap) {
		size_t cap = src->cap ? src->cap * 2 : 4096;
		char *text = realloc(src->text, cap);

		if (text == NULL)
			return -1;
		src->text = text;
		src->cap = cap;
	}
	src->text[src->len++] = c;
	src->text[src->len] = '\0';
	if (c == '\n') {
		if (src->lines == src->lines_cap) {
			size_t cap = src->lines_cap ? src->lines_cap * 2 : 256;
			const char **files = realloc(src->line_file, cap * sizeof(*files));
			int *nos;

			if (files == NULL)
				return -1;
			src->line_file = files;
			nos = realloc(src->line_no, cap * sizeof(*nos));
			if (nos == NULL)
				return -1;
			src->line_no = nos;
			src->lines_cap = cap;
		}
		src->line_file[src->lines] = file;
		src->line_no[src->lines] = line;
		src->lines++;
	}
	return 0;
}

static int line_mark(struct config_source *src, int **lines, size_t *count)
{
	int *grown = realloc(*lines, (*count + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	*lines = grown;
	grown[(*count)++] = (int)src->lines + 1;
	return 0;
}

/* "server" followed by a title opens a server block (an upstream's server = {...} does not). */
static bool server_title_follows(const char *p)
{
	p += 6;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return *p == '"';
}

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static int load_file(struct loader *ld, const char *path, const char *from_file, int from_line);

static void report_errno(struct loader *ld, const char *file, int line, const char *what,
                         const char *path)
{
	char msg[4096 + 512];

	snprintf(msg, sizeof(msg), "%s %s: %s", what, path, strerror(errno));
	ld->report(file, line, msg);
}

/* A directory in the pattern that does not exist just means no match. */
static int glob_error(const char *path, int err)
{
	(void)path;
	return err != ENOENT && err != ENOTDIR;
}

/*
 * include "PATTERN", include = "PATTERN" or include("PATTERN"): every file
 * the glob matches, in sorted order.  A pattern without wildcards must match.
 * Relative patterns are relative to the including file's directory.
 */
static int include_expand(struct loader *ld, const char *file, int line, const char *pattern)
{
	char full[4096];
	glob_t g;
	int rc, result = 0;

	if (pattern[0] != '/') {
		char *copy = strdup(file);

		if (copy == NULL)
			return -1;
		snprintf(full, sizeof(full), "%s/%s", dirname(copy), pattern);
		free(copy);
	} else {
		snprintf(full, sizeof(full), "%s", pattern);
	}
	rc = glob(full, 0, glob_error, &g);
	if (rc == GLOB_NOMATCH) {
		if (strpbrk(full, "*?[") == NULL) {
			errno = ENOENT;
			report_errno(ld, file, line, "cannot include", full);
			return -1;
		}
		return 0;
	}
	if (rc != 0) {
		report_errno(ld, file, line, "cannot include", full);
		return -1;
	}
	for (size_t i = 0; i < g.gl_pathc && result == 0; i++)
		result = load_file(ld, g.gl_pathv[i], file, line);
	globfree(&g);
	return result;
}

/* Parses the include directive at p; returns the position after it or NULL. */
static const char *include_directive(struct loader *ld, const char *p, const char *file, int line,
                                     int *rc)
{
	char pattern[4096];
	size_t n = 0;
	bool paren = false;
	char quote;

	p += strlen("include");
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '=' || *p == '(') {
		paren = *p == '(';
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (*p != '"' && *p != '\'') {
		ld->report(file, line, "include needs a quoted file name or pattern");
		*rc = -1;
		return NULL;
	}
	quote = *p++;
	while (*p != quote && *p != '\0' && *p != '\n' && n + 1 < sizeof(pattern))
		pattern[n++] = *p++;
	pattern[n] = '\0';
	if (*p != quote) {
		ld->report(file, line, "unterminated include file name");
		*rc = -1;
		return NULL;
	}
	p++;
	if (paren) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ')') {
			ld->report(file, line, "include( needs a closing parenthesis");
			*rc = -1;
			return NULL;
		}
		p++;
	}
	/* Included text starts and ends on lines of its own. */
	if (text_put(ld->src, '\n', file, line) < 0 ||
	    (*rc = include_expand(ld, file, line, pattern)) != 0)
		return NULL;
	return p;
}

static int text_process(struct loader *ld, const char *text, const char *file)
{
	struct config_source *src = ld->src;
	const char *p = text;
	int line = 1;
	int rc = 0;

	while (*p != '\0') {
		char c = *p;
		bool token_start = p == text || !ident_char(p[-1]);

		if (c == '"' || c == '\'') {
			char quote = c;

			do {
				char ch = *p++;

				if (ch == '\\' && quote == '"' && *p != '\0') {
					if (text_put(src, ch, file, line) < 0)
						return -1;
					ch = *p++;
				}
				if (text_put(src, ch, file, line) < 0)
					return -1;
				if (ch == '\n')
					line++;
			} while (*p != '\0' && *p != quote);
			if (*p == quote && text_put(src, *p++, file, line) < 0)
				return -1;
			continue;
		}
		if (c == '#' || (c == '/' && p[1] == '/')) {
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (c == '/' && p[1] == '*') {
			p += 2;
			while (*p != '\0' && !(*p == '*' && p[1] == '/')) {
				if (*p == '\n' && text_put(src, '\n', file, line++) < 0)
					return -1;
				p++;
			}
			if (*p == '\0') {
				ld->report(file, line, "unterminated /* comment");
				return -1;
			}
			p += 2;
			continue;
		}
		if (token_start && strncmp(p, "include", 7) == 0 && !ident_char(p[7])) {
			p = include_directive(ld, p, file, line, &rc);
			if (p == NULL)
				return rc != 0 ? rc : -1;
			continue;
		}
		if (token_start && strncmp(p, "location", 8) == 0 && !ident_char(p[8]) &&
		    line_mark(src, &src->location_lines, &src->location_count) < 0)
			return -1;
		if (token_start && strncmp(p, "server", 6) == 0 && !ident_char(p[6]) && server_title_follows(p) &&
		    line_mark(src, &src->server_lines, &src->server_count) < 0)
			return -1;
		if (text_put(src, c, file, line) < 0)
			return -1;
		if (c == '\n')
			line++;
		p++;
	}
	return text_put(src, '\n', file, line);
}

static int load_file(struct loader *ld, const char *path, const char *from_file, int from_line)
{
	struct config_source *src = ld->src;
	FILE *fp;
	char *text = NULL, *name, **files;
	size_t cap = 0;
	ssize_t n;
	int rc;

	if (ld->depth >= INCLUDE_DEPTH_MAX) {
		ld->report(from_file, from_line, "includes nested too deeply (a loop?)");
		return -1;
	}
	fp = fopen(path, "re");
	if (fp == NULL) {
		if (from_file != NULL)
			report_errno(ld, from_file, from_line, "cannot open", path);
		else
			report_errno(ld, path, 0, "cannot open", path);
		return -1;
	}
	n = getdelim(&text, &cap, '\0', fp);
	if (n < 0 && ferror(fp)) {
		report_errno(ld, path, 0, "cannot read", path);
		fclose(fp);
		free(text);
		return -1;
	}
	fclose(fp);
	if (n < 0) {
		free(text);
		text = strdup("");
		if (text == NULL)
			return -1;
	} else if ((size_t)n != strlen(text)) {
		ld->report(path, 0, "file contains a NUL byte");
		free(text);
		return -1;
	}
	name = strdup(path);
	files = realloc(src->files, (src->file_count + 1) * sizeof(*files));
	if (name == NULL || files == NULL) {
		free(name);
		free(text);
		if (files != NULL)
			src->files = files;
		return -1;
	}
	src->files = files;
	src->files[src->file_count++] = name;
	ld->depth++;
	rc = text_process(ld, text, name);
	ld->depth--;
	free(text);
	return rc;
}

int config_source_load(struct config_source *src, const char *path,
                       void (*report)(const char *file, int line, const char *msg))
{
	struct loader ld = { .src = src, .report = report, .depth = 0 };

	memset(src, 0, sizeof(*src));
	return load_file(&ld, path, NULL, 0);
}

void config_source_free(struct config_source *src)
{
	for (size_t i = 0; i < src->file_count; i++)
		free(src->files[i]);
	free(src->files);
	free(src->text);
	free(src->line_file);
	free(src->line_no);
	free(src->location_lines);
	free(src->server_lines);
	memset(src, 0, sizeof(*src));
}

void config_source_origin(const struct config_source *src, int line, const char **file, int *file_line)
{
	if (line >= 1 && (size_t)line <= src->lines) {
		*file = src->line_file[line - 1];
		*file_line = src->line_no[line - 1];
	} else if (src->lines > 0) {
		*file = src->line_file[src->lines - 1];
		*file_line = src->line_no[src->lines - 1];
	} else {
		*file = src->file_count > 0 ? src->files[0] : "?";
		*file_line = 0;
	}
}

int config_source_title_line(const int *lines, size_t count, int end_line)
{
	int found = 0;

	for (size_t i = 0; i < count && lines[i] <= end_line; i++)
		found = lines[i];
	return found;
}
