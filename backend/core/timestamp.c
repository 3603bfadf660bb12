/*
 * timestamp.c: ISO 8601 timestamps as ARM sends them, and as the mount
 * shows them (timestamp.h).
 *
 * ARM spells one instant many ways ("2025-05-26T06:50:23.0185023+00:00",
 * "...Z", no offset at all); the job JSON reader (azure/order.c) and the
 * errors-file blocks (rules/) both need it as a time_t, so the parser
 * lives here below both. Pure functions, no allocation.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "databoxfs/timestamp.h"

/* Read exactly n digits at *p into *v; advance *p. */
static bool read_digits(const char **p, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*v = x;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

time_t dbx_parse_time(const char *s)
{
	struct tm tm;
	int year, mon, day, hour, min, sec, off_h = 0, off_m = 0, sign = 0;
	const char *p = s;
	time_t t;

	if (!s)
		return -1;
	if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 2, &mon) || *p++ != '-' ||
	    !read_digits(&p, 2, &day))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (!read_digits(&p, 2, &hour) || *p++ != ':' || !read_digits(&p, 2, &min) || *p++ != ':' ||
	    !read_digits(&p, 2, &sec))
		return -1;
	if (*p == '.' || *p == ',') {
		/* Fractional seconds (ARM sends 7 digits): dropped, time_t has whole seconds. */
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (!read_digits(&p, 2, &off_h))
			return -1;
		if (*p == ':')
			p++;
		if (!read_digits(&p, 2, &off_m))
			return -1;
		if (off_h > 23 || off_m > 59)
			return -1;
	}
	/* No offset at all: ARM means UTC. */
	if (*p != '\0')
		return -1;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
	    min > 59 || sec > 60)
		return -1;
	if (sec == 60)
		sec = 59; /* a leap second: the last representable second */

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* local = UTC + offset, so UTC = local - offset. */
	return t - (time_t)sign * ((time_t)off_h * 3600 + (time_t)off_m * 60);
}

void dbx_format_time(time_t t, char out[DBX_TIME_STR_MAX])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, DBX_TIME_STR_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, DBX_TIME_STR_MAX, "%lld", (long long)t);
}
