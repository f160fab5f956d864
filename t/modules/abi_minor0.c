/*
 * A module as one built before ABI 2 had minor versions: no minor symbol,
 * and its option table in the old layout (five fields per option).  The
 * loader must read that table with the old stride.
 */
#include <stdio.h>
#include <string.h>

#include <httpd/module.h>

struct option_v0 {
	const char              *name;
	enum httpd_option_type   type;
	const char              *def;
	unsigned                 flags;
	const struct option_v0  *section;
};

static const struct option_v0 inner_v0[] = {
	{ "label", HTTPD_OPT_STR, NULL, 0, NULL },
	{ NULL, HTTPD_OPT_END, NULL, 0, NULL },
};

static const struct option_v0 options_v0[] = {
	{ "old_greeting", HTTPD_OPT_STR, "hello", 0, NULL },
	{ "old_count", HTTPD_OPT_INT, "2", 0, NULL },
	{ "old_flag", HTTPD_OPT_BOOL, "false", 0, NULL },
	{ "old_part", HTTPD_OPT_SECTION, NULL, HTTPD_OPT_MULTI | HTTPD_OPT_TITLED, inner_v0 },
	{ NULL, HTTPD_OPT_END, NULL, 0, NULL },
};

struct old_conf {
	char line[256];
};

static struct old_conf confs[16];
static unsigned conf_count;

static int old_configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data, char *err,
                         size_t errlen)
{
	struct old_conf *c;
	const struct httpd_conf *part = httpd_conf_count(opts, "old_part") > 0 ? httpd_conf_section(opts, "old_part", 0)
	                                                                      : NULL;

	(void)loc;
	if (conf_count == sizeof(confs) / sizeof(confs[0])) {
		snprintf(err, errlen, "too many locations");
		return -1;
	}
	c = &confs[conf_count++];
	snprintf(c->line, sizeof(c->line), "%s %ld %d %s\n", httpd_conf_str(opts, "old_greeting"),
	         httpd_conf_int(opts, "old_count"), httpd_conf_bool(opts, "old_flag"),
	         part != NULL ? httpd_conf_str(part, "label") : "-");
	*data = c;
	return 0;
}

static int old_handler(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct old_conf *c = data;

	(void)req;
	httpd_response_set_status(res, 200);
	if (httpd_response_add_header(res, "Content-Type", "text/plain") < 0)
		return 500;
	httpd_response_set_body_buffer(res, c->line, strlen(c->line));
	return HTTPD_OK;
}

static int old_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "abi_minor0");
	httpd_module_options(api, (const struct httpd_option *)(const void *)options_v0);
	httpd_hook_configure(api, old_configure);
	httpd_hook_handler(api, old_handler, HTTPD_METHOD_GET);
	return 0;
}

/* What HTTPD_MODULE() exported before minor versions: the ABI number and the init function. */
__attribute__((visibility("default"))) const unsigned httpd_module_abi = HTTPD_MODULE_ABI;
__attribute__((visibility("default"))) int httpd_module_init(struct httpd_module_api *api);
int httpd_module_init(struct httpd_module_api *api)
{
	return old_register(api);
}
