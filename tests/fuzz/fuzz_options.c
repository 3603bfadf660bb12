/*
 * fuzz_options.c: libFuzzer target over the mount's command line: the
 * option table and key function of fs/main.c (fuse_opt_parse) and the
 * checks of every value (check_options: seconds, cloud, api_version,
 * cafile, connect_to's HOST:PORT:TO_HOST:TO_PORT, subscription lists).
 *
 * fs/main.c is compiled into this file, its main() renamed and its stderr
 * sent to /dev/null, so the very code a mount runs is what is fuzzed;
 * nothing is mounted (fuse_main is never reached). An input is the
 * argument list, one argument a line, after argv[0].
 *
 * Properties checked beyond "no crash, no sanitizer report, no leak": an
 * accepted command line has one mountpoint, a known cloud, a timeout of
 * more than 0 ms and, for each connect_to, four fields with ports of at
 * most five digits; the mountpoint is passed on to libfuse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_log.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int databoxfs_main(int argc, char *argv[]);

/* fs/main.c's messages go here: the fuzzer's output stays readable. */
static FILE *fuzz_quiet;

static FILE *quiet_stream(void)
{
	if (!fuzz_quiet)
		fuzz_quiet = fopen("/dev/null", "w");
	if (!fuzz_quiet)
		abort();
	return fuzz_quiet;
}

#undef stderr
#define stderr quiet_stream()
#define main   databoxfs_main
#include "../../fs/main.c"
#undef main
#undef stderr

#define TARGET	 "fuzz_options"
#define MAX_ARGS 32

static void must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "%s: property broken: %s\n", TARGET, what);
		abort();
	}
}

static void no_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
}

/*
 * The fields of a connect_to value, read as curl reads one: a host field
 * that starts with '[' runs to its ']' (an IPv6 address), any other field
 * to the next ':'. -1 when a '[' is not closed.
 */
static int connect_to_fields(const char *s)
{
	int fields = 1;

	for (const char *p = s;; p++) {
		if (*p == '[' && (p == s || p[-1] == ':')) {
			p = strchr(p, ']');
			if (!p)
				return -1;
			continue;
		}
		if (*p == '\0')
			break;
		fields += *p == ':';
	}
	return fields;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	struct fuse_args args;
	struct options o = {0};
	struct settings s = {0};
	char *p;

	if (!copy)
		abort();
	fuse_set_log_func(no_log);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = (char *)"databoxfs";
	for (p = copy; argc <= MAX_ARGS;) {
		char *nl = strchr(p, '\n');

		argv[argc++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	argv[argc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&args, &o, option_spec, opt_key) == 0 && !o.show_help &&
	    !o.show_version && check_options(&o, &args, "databoxfs", &s)) {
		bool has_mountpoint = false;

		must(o.mountpoints == 1 || o.mountpoints == 2, "one mountpoint (and a source)");
		must(s.cloud != NULL, "a known cloud");
		must(s.timeout_ms > 0 && s.lro_ms > 0, "a timeout and a poll interval above 0");
		for (size_t i = 0; i < o.n_connect_to; i++)
			must(connect_to_fields(o.connect_to[i]) == 4, "connect_to has four fields");
		for (int i = 0; i < args.argc; i++)
			has_mountpoint |= strcmp(args.argv[i], o.nonopt[o.mountpoints - 1]) == 0;
		must(has_mountpoint, "the mountpoint goes to libfuse");
		for (size_t i = 0; s.subs && s.subs[i]; i++)
			must(s.subs[i][0] && !strchr(s.subs[i], ':') && !strchr(s.subs[i], '/'),
			     "a subscription ID has no ':' or '/'");
	}
	free_strv(s.subs);
	options_free(&o);
	fuse_opt_free_args(&args);
	free(copy);
	return 0;
}
