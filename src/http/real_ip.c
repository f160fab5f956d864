#include "real_ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One hop of X-Forwarded-For ("1.2.3.4", "2001:db8::1", "[2001:db8::1]:80", "1.2.3.4:80") to a bare address. */
static bool addr_clean(const char *s, size_t len, char *out, size_t size)
{
	char buf[64];
	uint8_t bin[16];

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL || (close + 1 != s + len && close[1] != ':'))
			return false;
		len = (size_t)(close - s - 1);
		s++;
	} else if (memchr(s, '.', len) != NULL && memchr(s, ':', len) != NULL) {
		len = (size_t)((const char *)memchr(s, ':', len) - s);   /* IPv4 with a port */
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, bin) != 1 && inet_pton(AF_INET6, buf, bin) != 1)
		return false;
	if (len >= size)
		return false;
	memcpy(out, buf, len + 1);
	return true;
}

/*
 * The for= value of one Forwarded element (RFC 7239 §4: pairs separated by
 * ';', a value a token or a quoted-string).  false if there is none or it is
 * not an address ("unknown", "_obfuscated").
 */
static bool forwarded_for(const char *s, size_t len, char *out, size_t size)
{
	const char *end = s + len;

	while (s < end) {
		const char *pair = s, *eq, *value;
		size_t vlen;
		char unq[64];

		while (pair < end && (*pair == ' ' || *pair == '\t'))
			pair++;
		eq = memchr(pair, '=', (size_t)(end - pair));
		if (eq == NULL)
			return false;
		value = eq + 1;
		if (value < end && *value == '"') {
			size_t n = 0;

			for (value++; value < end && *value != '"'; value++) {
				if (*value == '\\' && value + 1 < end)
					value++;
				if (n + 1 >= sizeof(unq))
					return false;
				unq[n++] = *value;
			}
			if (value >= end)
				return false;   /* unterminated quoted-string */
			unq[n] = '\0';
			s = value + 1;
			value = unq;
			vlen = n;
		} else {
			const char *semi = memchr(value, ';', (size_t)(end - value));

			vlen = (size_t)((semi != NULL ? semi : end) - value);
			s = value + vlen;
		}
		if ((size_t)(eq - pair) == 3 && strncasecmp(pair, "for", 3) == 0)
			return addr_clean(value, vlen, out, size);
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		if (s < end && *s != ';')
			return false;
		if (s < end)
			s++;
	}
	return false;
}

/* The next hop to the left of *end in v: [start, *end).  false at the start of v. */
static bool hop_prev(const char *v, const char **end, const char **start)
{
	const char *p = *end;
	bool quoted = false;

	if (p <= v)
		return false;
	/* Commas inside a Forwarded quoted-string do not split elements. */
	while (p > v) {
		if (p[-1] == '"')
			quoted = !quoted;
		else if (p[-1] == ',' && !quoted)
			break;
		p--;
	}
	*start = p;
	return true;
}

bool real_ip_find(enum real_ip_header kind, const char *const *values, size_t count,
                  const struct cidr *trusted, size_t trusted_count, char *out, size_t size)
{
	bool found = false;

	if (kind == REAL_IP_PROXY_PROTOCOL)
		return false;
	for (size_t i = count; i > 0; i--) {
		const char *v = values[i - 1];
		const char *end = v + strlen(v), *start;

		while (hop_prev(v, &end, &start)) {
			char addr[64];
			bool ok = kind == REAL_IP_FORWARDED
			        ? forwarded_for(start, (size_t)(end - start), addr, sizeof(addr))
			        : addr_clean(start, (size_t)(end - start), addr, sizeof(addr));

			if (!ok)
				return found;   /* not an address: trust stops at the hop before */
			if (strlen(addr) >= size)
				return found;
			memcpy(out, addr, strlen(addr) + 1);
			found = true;
			if (!cidr_list_contains(trusted, trusted_count, addr))
				return true;    /* the first untrusted hop from the right is the client */
			end = start > v ? start - 1 : v;
		}
	}
	return found;
}
