/*
 * What a worker process needs from the layers above the event loop: the
 * file cache, the sealed TLS ticket keys, the protocols a connection can
 * speak and the module events freed after each round.
 */
#include "worker_hooks.h"

#include "async.h"
#include "conn.h"
#include "file_cache.h"
#include "http_conn.h"
#include "tls.h"

static int hooks_init(const struct httpd_config *config)
{
	/* Before any request: a worker can only read the keys the master wrote. */
	tls_tickets_worker_seal();
	conn_data_reserve(http_conn_data_size());
	file_cache_init(config);
	return 0;
}

static void hooks_exit(void)
{
	file_cache_destroy();
}

const struct worker_hooks daemon_worker_hooks = {
	.init       = hooks_init,
	.exit       = hooks_exit,
	.conn_begin = http_conn_begin,
	.round_end  = async_events_reap,
};
