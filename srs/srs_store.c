/*
 * srs_store.c - the envelope store's front: envelope_store's syntax, the
 * calls handed to the kind that serves them, the words of the errors.
 */
#include "srs_store_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "str.h"
#include "xalloc.h"

/* "HOST:PORT[/DB]" after redis://: HOST an IPv4 address or [IPv6]. */
static int srs_store_redis_url(const char *rest, srs_store_location_t *out, char *why,
                               size_t why_size)
{
    const char *colon, *slash, *host = rest, *host_end;
    unsigned char bin[16];
    char *end;
    unsigned long v;

    if (rest[0] == '[') {
        host = rest + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            goto bad;
        colon = host_end + 1;
    } else {
        colon = strchr(rest, ':');
        if (colon == NULL)
            goto bad;
        host_end = colon;
    }
    if ((size_t)(host_end - host) >= sizeof(out->host) || host_end == host)
        goto bad;
    memcpy(out->host, host, (size_t)(host_end - host));
    out->host[host_end - host] = '\0';
    if (inet_pton(rest[0] == '[' ? AF_INET6 : AF_INET, out->host, bin) != 1) {
        snprintf(why, why_size,
                 "'%s' is not an IP address (a host name would be looked up "
                 "on the event loop at each connection)",
                 out->host);
        return SRS_STORE_ELOCATION;
    }
    errno = 0;
    v = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || v == 0 || v > 65535 || colon[1] == '-' || colon[1] == '+')
        goto bad;
    out->port = (uint16_t)v;
    slash = end;
    if (*slash == '/') {
        v = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || v > 65535 || slash[1] == '-' || slash[1] == '+')
            goto bad;
        out->db = (unsigned)v;
    } else if (*slash != '\0') {
        goto bad;
    }
    return 0;
bad:
    snprintf(why, why_size, "expected redis://HOST:PORT[/DB] with HOST an IP address");
    return SRS_STORE_ELOCATION;
}

int srs_store_location(const char *text, srs_store_location_t *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(text, "redis://", 8) == 0) {
        out->kind = SRS_STORE_REDIS;
        return srs_store_redis_url(text + 8, out, why, why_size);
    }
    if (strncmp(text, "unix:", 5) == 0) {
        out->kind = SRS_STORE_REDIS;
        if (text[5] != '/' || strlen(text + 5) >= sizeof(out->path)) {
            snprintf(why, why_size, "expected unix:/PATH, the absolute path of Redis's socket");
            return SRS_STORE_ELOCATION;
        }
        str_lcpy(out->path, text + 5, sizeof(out->path));
        return 0;
    }
    out->kind = SRS_STORE_EMBEDDED;
    if (text[0] == '\0' || strlen(text) >= sizeof(out->path) || strstr(text, "://") != NULL) {
        snprintf(why, why_size, "expected a file path, redis://HOST:PORT[/DB] or unix:/PATH");
        return SRS_STORE_ELOCATION;
    }
    str_lcpy(out->path, text, sizeof(out->path));
    return 0;
}

int srs_store_open(uv_loop_t *loop, const srs_store_options_t *opts, srs_store_t **out, char *why,
                   size_t why_size)
{
    srs_store_location_t loc;
    srs_store_t *st;
    int rc;

    *out = NULL;
    if ((rc = srs_store_location(opts->location, &loc, why, why_size)) < 0)
        return rc;
    st = xcalloc(1, sizeof(*st));
    st->loop = loop;
    st->kind = loc.kind;
    st->expiry = opts->expiry;
    st->now = opts->now;
    st->now_arg = opts->now_arg;
    if (loc.kind == SRS_STORE_EMBEDDED)
        rc = srs_store__lmdb_open(st, loc.path,
                                  opts->max_size ? opts->max_size : DEFAULT_ENVELOPE_STORE_SIZE,
                                  !opts->no_sweep, why, why_size);
    else
        rc = srs_store__redis_open(st, &loc, why, why_size);
    if (rc < 0) {
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void srs_store_close(srs_store_t *st, void (*done)(void *arg), void *arg)
{
    if (st == NULL) {
        if (done != NULL)
            done(arg);
        return;
    }
    st->closed = done;
    st->closed_arg = arg;
    if (st->kind == SRS_STORE_EMBEDDED)
        srs_store__lmdb_close(st);
    else
        srs_store__redis_close(st);
}

void srs_store__free(srs_store_t *st)
{
    void (*done)(void *arg) = st->closed;
    void *arg = st->closed_arg;

    free(st);
    if (done != NULL)
        done(arg);
}

time_t srs_store__now(const srs_store_t *st)
{
    return st->now != NULL ? st->now(st->now_arg) : time(NULL);
}

srs_store_kind_t srs_store_kind(const srs_store_t *st)
{
    return st->kind;
}

int srs_store_put(srs_store_t *st, const char *key, const char *sender, srs_store_done_cb cb,
                  void *arg)
{
    if (st->kind == SRS_STORE_EMBEDDED)
        return srs_store__lmdb_put(st, key, sender);
    return srs_store__redis_put(st, key, sender, cb, arg);
}

int srs_store_sync(void *arg)
{
    srs_store_t *st = arg;

    return st->kind == SRS_STORE_EMBEDDED ? srs_store__lmdb_sync(st) : 0;
}

int srs_store_get(srs_store_t *st, const char *key, srs_store_get_cb cb, void *arg)
{
    if (st->kind == SRS_STORE_EMBEDDED)
        return srs_store__lmdb_get(st, key, cb, arg);
    return srs_store__redis_get(st, key, cb, arg);
}

void srs_store_sweep(srs_store_t *st, void (*done)(void *arg, uint64_t removed), void *arg)
{
    if (st->kind == SRS_STORE_EMBEDDED)
        srs_store__lmdb_sweep(st, done, arg);
    else if (done != NULL)
        done(arg, 0);
}

void srs_store_stats(srs_store_t *st, srs_store_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (st->kind == SRS_STORE_EMBEDDED)
        srs_store__lmdb_stats(st, out);
    else
        srs_store__redis_stats(st, out);
}

const char *srs_store_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SRS_STORE_ENOTFOUND:
        return "no entry under this key: unknown, or expired";
    case SRS_STORE_EDOWN:
        return "the Redis server is not reachable";
    case SRS_STORE_EREDIS:
        return "the Redis server answered with an error";
    case SRS_STORE_ELMDB:
        return "the envelope store's LMDB file failed";
    case SRS_STORE_ELOCATION:
        return "envelope_store is not a path, redis://HOST:PORT[/DB] or unix:/PATH";
    case SRS_STORE_EFULL:
        return "the envelope store's file is full (envelope_store_size)";
    case SRS_STORE_ETIMEOUT:
        return "the Redis server did not answer in time";
    case SRS_STORE_ECLOSED:
        return "the envelope store is closing";
    case SRS_STORE_ESYNC:
        return "the envelope store's file could not be written durably";
    }
    if (err < 0 && err > -1000)
        return strerror(-err);
    return "unknown envelope store error";
}
