#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int upstream_server_parse(const char *text, struct upstream_server *s, char *err, size_t errlen)
{
	char addr[256];
	size_t len = strcspn(text, " \t");
	const char *rest = text + len;

	memset(s, 0, sizeof(*s));
	s->weight = 1;
	if (len == 0 || len >= sizeof(addr)) {
		snprintf(err, errlen, "server \"%s\" is not an address", text);
		return -1;
	}
	memcpy(addr, text, len);
	addr[len] = '\0';
	rest += strspn(rest, " \t");
	if (*rest != '\0') {
		char *end;
		long w;

		if (strncmp(rest, "weight=", 7) != 0) {
			snprintf(err, errlen, "server \"%s\": unknown parameter (known: weight=N)", text);
			return -1;
		}
		errno = 0;
		w = strtol(rest + 7, &end, 10);
		end += strspn(end, " \t");
		if (errno != 0 || end == rest + 7 || *end != '\0' || w < 1 || w > 100) {
			snprintf(err, errlen, "server \"%s\": weight must be from 1 to 100", text);
			return -1;
		}
		s->weight = (int)w;
	}
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;

		if (addr[5] != '/' || strlen(addr + 5) >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "server \"%s\": a unix socket needs an absolute path under %zu bytes", text,
			         sizeof(un->sun_path));
			return -1;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, addr + 5, strlen(addr + 5) + 1);
		s->addrlen = (socklen_t)sizeof(*un);
	} else {
		char *colon = strrchr(addr, ':'), *end;
		const char *host = addr;
		long port;

		if (colon == NULL) {
			snprintf(err, errlen, "server \"%s\" needs a port (127.0.0.1:8000, [::1]:8000, unix:/path)", text);
			return -1;
		}
		*colon = '\0';
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535) {
			snprintf(err, errlen, "server \"%s\": the port must be from 1 to 65535", text);
			return -1;
		}
		if (host[0] == '[') {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s->addr;
			size_t hl = strlen(host);

			if (hl < 3 || host[hl - 1] != ']') {
				snprintf(err, errlen, "server \"%s\" is not an address", text);
				return -1;
			}
			addr[hl - 1] = '\0';
			if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1) {
				snprintf(err, errlen, "server \"%s\": not an IPv6 address (names are not resolved)", text);
				return -1;
			}
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			s->addrlen = (socklen_t)sizeof(*in6);
		} else {
			struct sockaddr_in *in = (struct sockaddr_in *)&s->addr;

			if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
				snprintf(err, errlen, "server \"%s\": not an IPv4 address (names are not resolved: write "
				         "the address)", text);
				return -1;
			}
			in->sin_family = AF_INET;
			in->sin_port = htons((uint16_t)port);
			s->addrlen = (socklen_t)sizeof(*in);
		}
	}
	s->name = strdup(text);
	if (s->name == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->name[len] = '\0';   /* without " weight=N" */
	return 0;
}

void upstream_release(struct upstream *u)
{
	for (size_t i = 0; i < u->count; i++) {
		struct upstream_server *s = &u->servers[i];

		free(s->idle);   /* empty in the master, where configurations are released */
		free(s->name);
	}
	free(u->servers);
	free(u->name);
	free(u->health_check);
	if (u->health != NULL)
		munmap(u->health, u->count * sizeof(*u->health));
}

int upstream_health_map(struct upstream *u)
{
	void *p = mmap(NULL, u->count * sizeof(*u->health), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	u->health = p;
	return 0;
}

static bool usable(const struct upstream *u, const struct upstream_server *s, uint64_t now_ms, uint64_t tried,
                   size_t i)
{
	return !(i < 64 && (tried & (1ull << i))) && s->down_until_ms <= now_ms &&
	       !(u->health != NULL && atomic_load_explicit(&u->health[i].down, memory_order_relaxed));
}

struct upstream_server *upstream_pick(struct upstream *u, uint64_t now_ms, uint64_t tried)
{
	struct upstream_server *best = NULL;
	int total = 0;

	for (size_t i = 0; i < u->count; i++) {
		struct upstream_server *s = &u->servers[i];

		if (!usable(u, s, now_ms, tried, i))
			continue;
		if (u->balance == BALANCE_LEAST_CONN) {
			/* Fewest requests in flight per unit of weight; ties go round-robin below. */
			if (best == NULL || (uint64_t)s->active * (uint64_t)best->weight <
			                    (uint64_t)best->active * (uint64_t)s->weight ||
			    ((uint64_t)s->active * (uint64_t)best->weight ==
			     (uint64_t)best->active * (uint64_t)s->weight && s->current > best->current))
				best = s;
			s->current += s->weight;
			total += s->weight;
			continue;
		}
		/* nginx's smooth weighted round-robin: no server gets a burst. */
		s->current += s->weight;
		total += s->weight;
		if (best == NULL || s->current > best->current)
			best = s;
	}
	if (best == NULL) {
		/* Every server is down: try the one back soonest rather than refuse outright (as nginx does). */
		for (size_t i = 0; i < u->count; i++)
			if (!(i < 64 && (tried & (1ull << i))) &&
			    (best == NULL || u->servers[i].down_until_ms < best->down_until_ms))
				best = &u->servers[i];
		return best;
	}
	best->current -= total;
	return best;
}

void upstream_failed(struct upstream *u, struct upstream_server *s, uint64_t now_ms)
{
	if (u->max_fails == 0)
		return;
	if (s->fails == 0 || now_ms - s->fail_window_ms > u->fail_timeout_ms) {
		s->fails = 0;
		s->fail_window_ms = now_ms;
	}
	if (++s->fails >= u->max_fails) {
		s->down_until_ms = now_ms + u->fail_timeout_ms;
		s->fails = 0;
	}
}

void upstream_succeeded(struct upstream_server *s)
{
	s->fails = 0;
}
