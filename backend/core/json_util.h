/*
 * json_util.h: the JSON accessor that several backend files share, internal
 * to backend/ (not an interface of include/databoxfs).
 *
 * Input comes from the network, so a value of the wrong type reads as
 * absent. Only accessors live here: what a document means stays with the
 * file that reads it (job JSON in order.c, list and error envelopes in
 * arm.c, token answers in the cred_*.c sources).
 */
#ifndef DATABOXFS_BACKEND_JSON_UTIL_H
#define DATABOXFS_BACKEND_JSON_UTIL_H

struct json_object;

/*
 * The string value of member key of o: NULL when o is NULL or not an
 * object, or the member is absent, null or not a string. Borrowed from o.
 */
const char *dbx_json_str(struct json_object *o, const char *key);

#endif
