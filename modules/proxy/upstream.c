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

/* RFC 1123 host name: letters, digits, hyphens and dots, at most 253, with at least one letter. */
static bool name_ok(const char *host)
{
	size_t n = strlen(host);
	bool letter = false;

	if (n == 0 || n > 253 || host[0] == '.' || host[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			letter = true;
		else if (!(c >= '0' && c <= '9') && c != '-' && c != '.')
			return false;
	}
	return letter;
}

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
				if (!name_ok(host)) {
					snprintf(err, errlen, "server \"%s\": neither an IPv4 address nor a DNS name", text);
					return -1;
				}
				/* A name: its slots are filled when it resolves (resolve.c). */
				s->host = strdup(host);
				s->port = (uint16_t)port;
				if (s->host == NULL) {
					snprintf(err, errlen, "out of memory");
					return -1;
				}
				goto named;
			}
			in->sin_family = AF_INET;
			in->sin_port = htons((uint16_t)port);
			s->addrlen = (socklen_t)sizeof(*in);
		}
	}
named:
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
		if (s->host != NULL && i == s->first_slot)
			free(s->host);   /* the name's slots share it */
	}
	free(u->servers);
	free(u->resolver);
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
	/* The shared health table is by slot, and each worker fills a name's slots itself: it holds for addresses only. */
	return s->addrlen > 0 && !(i < 64 && (tried & (1ull << i))) && s->down_until_ms <= now_ms &&
	       !(u->health != NULL && s->host == NULL &&
	         atomic_load_explicit(&u->health[i].down, memory_order_relaxed));
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr, &((const struct sockaddr_in *)b)->sin_addr,
		              sizeof(struct in_addr)) == 0 &&
		       ((const struct sockaddr_in *)a)->sin_port == ((const struct sockaddr_in *)b)->sin_port;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
		              sizeof(struct in6_addr)) == 0 &&
		       ((const struct sockaddr_in6 *)a)->sin6_port == ((const struct sockaddr_in6 *)b)->sin6_port;
	return false;
}

static void slot_fill(struct upstream_server *s, const struct sockaddr_storage *a)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	s->addr = *a;
	s->addrlen = a->ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6) : (socklen_t)sizeof(struct sockaddr_in);
	if (a->ss_family == AF_INET6) {
		(void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, ip, sizeof(ip));
		snprintf(s->addr_text, sizeof(s->addr_text), "[%s]:%u", ip, s->port);
	} else {
		(void)inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, ip, sizeof(ip));
		snprintf(s->addr_text, sizeof(s->addr_text), "%s:%u", ip, s->port);
	}
	s->generation++;
	s->current = 0;
	s->fails = 0;
	s->down_until_ms = 0;
}

size_t upstream_name_set(struct upstream *u, size_t first, const struct sockaddr_storage *addrs, size_t n,
                         void (*gone)(struct upstream *u, struct upstream_server *s))
{
	struct upstream_server *slots = &u->servers[first];
	bool placed[UPSTREAM_NAME_SLOTS] = { false };
	size_t changed = 0;

	if (n > UPSTREAM_NAME_SLOTS)
		n = UPSTREAM_NAME_SLOTS;
	/* What stays keeps its slot; the slots of what went are emptied first. */
	for (size_t i = 0; i < UPSTREAM_NAME_SLOTS; i++) {
		bool keep = false;

		if (slots[i].addrlen == 0)
			continue;
		for (size_t j = 0; j < n && !keep; j++)
			if (!placed[j] && same_address(&slots[i].addr, &addrs[j]))
				keep = placed[j] = true;
		if (keep)
			continue;
		if (gone != NULL)
			gone(u, &slots[i]);
		slots[i].addrlen = 0;
		slots[i].addr_text[0] = '\0';
		slots[i].generation++;
		changed++;
	}
	for (size_t j = 0; j < n; j++) {
		bool twice = false;

		for (size_t k = 0; k < j && !twice; k++)
			twice = same_address(&addrs[k], &addrs[j]);
		if (placed[j] || twice)
			continue;
		for (size_t i = 0; i < UPSTREAM_NAME_SLOTS; i++)
			if (slots[i].addrlen == 0) {
				slot_fill(&slots[i], &addrs[j]);
				changed++;
				break;
			}
	}
	return changed;
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
			if (u->servers[i].addrlen > 0 && !(i < 64 && (tried & (1ull << i))) &&
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
