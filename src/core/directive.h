/*
 * The table of directives: each directive of the core, of a layer or of a
 * module is described once, as one row.  The libconfuse schema, the checks
 * (each at the directive's own file:line), the defaults, the inheritance
 * from the top level to server blocks to locations and the storage into
 * struct httpd_config, httpd_server or httpd_location all come from the
 * row.  Each layer owns its rows (struct directive_table) and the daemon
 * hands the tables to the core, which never calls up to learn them.
 */
#ifndef HTTPD_DIRECTIVE_H
#define HTTPD_DIRECTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd_config;
struct httpd_server;
struct httpd_location;
struct httpd_conf;

enum directive_type {
	DIRECTIVE_STR,        /* text; check() may refuse it */
	DIRECTIVE_PATH,       /* an absolute path */
	DIRECTIVE_INT,        /* an integer from min to max */
	DIRECTIVE_BOOL,       /* true or false */
	DIRECTIVE_SIZE,       /* bytes: "512", "16k", "1m", "2g"; min to max */
	DIRECTIVE_DURATION,   /* milliseconds: "30" (seconds), "500ms", "30s", "5m", "2h", "1d"; min to max */
	DIRECTIVE_ENUM,       /* one of words[]; stored as its index */
	DIRECTIVE_RATE,       /* "10r/s", "30r/m": requests per 1000 s */
	DIRECTIVE_LIST,       /* {"a", "b"}: each item check()ed; at most max items when max > 0 */
	DIRECTIVE_CIDR_LIST,  /* {"10.0.0.0/8", "::1"}: addresses or CIDR blocks */
	DIRECTIVE_BLOCK,      /* name ["TITLE"] { the rows of block } */
	DIRECTIVE_FUNC,       /* name(arg, ...): func reads the arguments */
	DIRECTIVE_EXPR,       /* text with $variables: compiled by the HTTP layer's checker */
};

/* Where a directive may be written. */
#define DIRECTIVE_TOP      1u
#define DIRECTIVE_SERVER   2u
#define DIRECTIVE_LOCATION 4u

/* Flags */
#define DIRECTIVE_MULTI  1u   /* a block that may appear more than once */
#define DIRECTIVE_TITLED 2u   /* a block with a unique title */
#define DIRECTIVE_OWN    4u   /* not inherited: each block's own value (or the default) */
#define DIRECTIVE_ANSWERS 8u  /* set in a location, it answers by itself: the location needs no handler */

/* The object a row's value is stored in. */
enum directive_store { DIRECTIVE_IN_CONFIG, DIRECTIVE_IN_SERVER, DIRECTIVE_IN_LOCATION };

struct directive;

/* What a row's build callback sees: the applying setting, and where it goes. */
struct directive_use {
	const struct directive  *d;
	struct httpd_config     *config;
	struct httpd_server     *server;     /* NULL for config-level rows */
	struct httpd_location   *location;   /* NULL above locations */
	const struct httpd_conf *from;       /* the nearest block that sets it (or holds its default) */
	unsigned                 from_level; /* DIRECTIVE_TOP, _SERVER or _LOCATION */
	bool                     set;        /* written, not the default */
	const char              *file;       /* the directive's line when set, else the block's */
	int                      line;
};

struct directive {
	const char              *name;
	unsigned                 where;     /* DIRECTIVE_TOP | DIRECTIVE_SERVER | DIRECTIVE_LOCATION */
	enum directive_type      type;
	const char              *def;       /* the default in config syntax ("16k", "{}"); NULL: none */
	int64_t                  min, max;  /* INT, SIZE and DURATION (ms) bounds; LIST: max items (0: any) */
	const char *const       *words;     /* ENUM: NULL-terminated */
	enum directive_store     store;
	size_t                   offset;    /* of the value in the store object */
	size_t                   width;     /* its size: 1 (bool), 4 or 8; 0 stores nothing */
	unsigned                 flags;
	/* The rule of a STR value or of each LIST item: 0, or -1 with a reason in err. */
	int (*check)(const char *text, char *err, size_t errlen);
	/* Storage the generic kinds do not cover (lists, blocks): 0 or -1 (reported already). */
	int (*build)(const struct directive_use *use);
	const struct directive  *block;     /* BLOCK: its rows, ending with a row whose name is NULL */
	/* FUNC: called while parsing, with its origin; 0 or -1 (reported already). */
	int (*func)(const struct httpd_conf *in, const char *file, int line, int argc, const char **argv);
};

/* Stores a row's parsed value into member m of struct T. */
#define DIRECTIVE_AT(where_, T, m) \
	.store = (where_), .offset = offsetof(struct T, m), .width = sizeof(((struct T *)0)->m)
#define DIRECTIVE_CONFIG(m)   DIRECTIVE_AT(DIRECTIVE_IN_CONFIG, httpd_config, m)
#define DIRECTIVE_SERVER_AT(m) DIRECTIVE_AT(DIRECTIVE_IN_SERVER, httpd_server, m)
#define DIRECTIVE_LOCATION_AT(m) DIRECTIVE_AT(DIRECTIVE_IN_LOCATION, httpd_location, m)

/* One layer's rows and what it does once everything is stored. */
struct directive_table {
	const char             *layer;
	const struct directive *rows;   /* ends with a row whose name is NULL */
	/* After every row of every table is stored: cross-checks, files; 0 or -1 (reported already). */
	int (*finish)(struct httpd_config *config);
	/* A location block, before its rows are stored: its title read (kinds, regexes); 0 or -1 (reported). */
	int (*location)(struct httpd_config *config, struct httpd_location *loc);
};

/*
 * Parsing a value as its row's type: 0 with the value in *out (bytes,
 * milliseconds, an enum index, requests per 1000 s, 0/1), or -1 with the
 * reason in err ("16q" is not a size ...).  Bounds are checked.
 */
int directive_value_parse(const struct directive *d, const char *text, int64_t *out, char *err, size_t errlen);

/*
 * What checks an EXPR value (the variables are the HTTP layer's): the
 * daemon installs it with the tables.  Without one, any text passes.
 */
void directive_expr_checker_set(int (*check)(const char *text, char *err, size_t errlen));

/* "30" (seconds), "500ms", "30s", "5m", "2h", "1d" into milliseconds; -1 if malformed or too large. */
int config_duration_parse(const char *text, uint64_t *ms);
/* "10r/s", "30r/m" into requests per 1000 seconds; -1 if malformed. */
int config_rate_parse(const char *text, uint64_t *per_ks);

#endif
