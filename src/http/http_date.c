#include "http_date.h"

#include <string.h>

static const char weekdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static char *two_digits(char *p, int v)
{
	*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

char *httpd_http_date(time_t t, char buf[HTTPD_DATE_LEN])
{
	struct tm tm;
	char *p = buf;
	int year;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year < 70) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_mday = 1;
		tm.tm_year = 70;
		tm.tm_wday = 4;
	}
	year = tm.tm_year + 1900;
	memcpy(p, weekdays[tm.tm_wday], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	p = two_digits(p, tm.tm_mday);
	*p++ = ' ';
	memcpy(p, months[tm.tm_mon], 3);
	p += 3;
	*p++ = ' ';
	p = two_digits(p, year / 100);
	p = two_digits(p, year % 100);
	*p++ = ' ';
	p = two_digits(p, tm.tm_hour);
	*p++ = ':';
	p = two_digits(p, tm.tm_min);
	*p++ = ':';
	p = two_digits(p, tm.tm_sec);
	memcpy(p, " GMT", 5);
	return buf;
}

const char *http_date_now(time_t now)
{
	static char cached[HTTPD_DATE_LEN];
	static time_t cached_at = -1;

	if (now != cached_at) {
		httpd_http_date(now, cached);
		cached_at = now;
	}
	return cached;
}

static int month_index(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (memcmp(s, months[i], 3) == 0)
			return i;
	return -1;
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool literal(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

static bool clock_parse(const char **p, struct tm *tm)
{
	return digits(p, 2, &tm->tm_hour) && literal(p, ":") &&
	       digits(p, 2, &tm->tm_min) && literal(p, ":") &&
	       digits(p, 2, &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec <= 60;
}

static bool month_parse(const char **p, struct tm *tm)
{
	if (strlen(*p) < 3 || (tm->tm_mon = month_index(*p)) < 0)
		return false;
	*p += 3;
	return true;
}

bool http_date_parse(const char *s, time_t *out)
{
	struct tm tm;
	const char *p = s;
	const char *comma = strchr(s, ',');
	int year;

	memset(&tm, 0, sizeof(tm));
	if (comma != NULL && comma - s == 3) {
		/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
		p = comma + 1;
		if (!literal(&p, " ") || !digits(&p, 2, &tm.tm_mday) || !literal(&p, " ") ||
		    !month_parse(&p, &tm) || !literal(&p, " ") || !digits(&p, 4, &year) ||
		    !literal(&p, " ") || !clock_parse(&p, &tm) || !literal(&p, " GMT"))
			return false;
	} else if (comma != NULL) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; two-digit years per §5.6.7 */
		p = comma + 1;
		if (!literal(&p, " ") || !digits(&p, 2, &tm.tm_mday) || !literal(&p, "-") ||
		    !month_parse(&p, &tm) || !literal(&p, "-") || !digits(&p, 2, &year) ||
		    !literal(&p, " ") || !clock_parse(&p, &tm) || !literal(&p, " GMT"))
			return false;
		year += year < 70 ? 2000 : 1900;
	} else {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		if (strlen(p) < 4)
			return false;
		p += 3;
		if (!literal(&p, " ") || !month_parse(&p, &tm) || !literal(&p, " "))
			return false;
		if (*p == ' ') {
			p++;
			if (!digits(&p, 1, &tm.tm_mday))
				return false;
		} else if (!digits(&p, 2, &tm.tm_mday)) {
			return false;
		}
		if (!literal(&p, " ") || !clock_parse(&p, &tm) || !literal(&p, " ") || !digits(&p, 4, &year))
			return false;
	}
	if (*p != '\0' || tm.tm_mday < 1 || tm.tm_mday > 31 || year < 1970)
		return false;
	tm.tm_year = year - 1900;
	*out = timegm(&tm);
	return *out != (time_t)-1;
}

int httpd_http_date_parse(const char *s, time_t *out)
{
	return s != NULL && http_date_parse(s, out) ? 0 : -1;
}
