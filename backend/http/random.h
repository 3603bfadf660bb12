/*
 * http/random.h: the random bytes behind request ids (http/http.c) and the
 * production clock's jitter (http/clock.c). Internal to backend/http.
 */
#ifndef DATABOXFS_HTTP_RANDOM_H
#define DATABOXFS_HTTP_RANDOM_H

#include <stddef.h>

/* Fill buf with len random bytes: getrandom(2), else OpenSSL's generator; aborts without either. */
void dbx_random_bytes(void *buf, size_t len);

#endif
