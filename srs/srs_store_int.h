/*
 * srs_store_int - what the envelope store's files share: the store
 * structure and each kind's functions (srs_store__lmdb_*, _redis_*).
 * Only srs_store*.c include this.
 */
#ifndef MXFWD_SRS_STORE_INT_H
#define MXFWD_SRS_STORE_INT_H

#include "srs_store.h"

typedef struct srs_store_lmdb srs_store_lmdb_t;
typedef struct srs_store_redis srs_store_redis_t;

struct srs_store {
    uv_loop_t *loop;
    srs_store_kind_t kind;
    uint64_t expiry;
    time_t (*now)(void *arg);
    void *now_arg;
    srs_store_lmdb_t *lmdb;   /* SRS_STORE_EMBEDDED */
    srs_store_redis_t *redis; /* SRS_STORE_REDIS */
    void (*closed)(void *arg);
    void *closed_arg;
};

/* The store's clock. */
time_t srs_store__now(const srs_store_t *st);
/* Free the store and tell whoever closed it (the kind's last handle is
 * closed). */
void srs_store__free(srs_store_t *st);

/* srs_store_lmdb.c */
/* sweep: the background sweep runs (not for a command's short use). */
int srs_store__lmdb_open(srs_store_t *st, const char *path, uint64_t max_size, bool sweep,
                         char *why, size_t why_size);
void srs_store__lmdb_close(srs_store_t *st);
int srs_store__lmdb_put(srs_store_t *st, const char *key, const char *sender);
int srs_store__lmdb_sync(srs_store_t *st);
int srs_store__lmdb_get(srs_store_t *st, const char *key, srs_store_get_cb cb, void *arg);
void srs_store__lmdb_sweep(srs_store_t *st, void (*done)(void *arg, uint64_t removed), void *arg);
void srs_store__lmdb_stats(srs_store_t *st, srs_store_stats_t *out);

/* srs_store_redis.c */
int srs_store__redis_open(srs_store_t *st, const srs_store_location_t *loc, char *why,
                          size_t why_size);
void srs_store__redis_close(srs_store_t *st);
int srs_store__redis_put(srs_store_t *st, const char *key, const char *sender, srs_store_done_cb cb,
                         void *arg);
int srs_store__redis_get(srs_store_t *st, const char *key, srs_store_get_cb cb, void *arg);
void srs_store__redis_stats(srs_store_t *st, srs_store_stats_t *out);

#endif
