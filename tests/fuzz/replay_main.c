/*
 * replay_main.c: a main() for the fuzz targets when built without libFuzzer
 * (gcc, or clang without -fsanitize=fuzzer). Each argument is a file or a
 * directory of files; every file is fed once to LLVMFuzzerTestOneInput, so
 * the checked-in corpus (seeds and past crashes) runs under ctest as a
 * regression test. Exit status is 0 when every input ran, 1 when an input
 * could not be read; a broken property aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read path whole into a malloc'd buffer. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	int rc = 1;

	if (!f) {
		perror(path);
		return 1;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *nbuf = realloc(buf, ncap);

			if (!nbuf)
				goto out;
			buf = nbuf;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		perror(path);
		goto out;
	}
	LLVMFuzzerTestOneInput(buf, len);
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int run_path(const char *path, unsigned *count)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (stat(path, &st) != 0) {
		perror(path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (!d) {
		perror(path);
		return 1;
	}
	for (;;) {
		char *child;

		de = readdir(d);
		if (!de)
			break;
		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&child, "%s/%s", path, de->d_name) < 0) {
			rc = 1;
			break;
		}
		rc |= run_path(child, count);
		free(child);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++)
		rc |= run_path(argv[i], &count);
	printf("%s: %u inputs replayed\n", argv[0], count);
	if (count == 0)
		return 1;
	return rc;
}
