/*
 * srs_store - the envelope store: the senders too long for an SRS address,
 * each kept under its key (srs_key()) for the bounces that come back to
 * SRS0=HHHH=TT=-=KEY@srs_domain (docs/srs.md, "Long senders").
 *
 * envelope_store names one of two kinds behind this one interface:
 *   PATH                      an embedded LMDB file, written on the spool's
 *                             commit pass (srs_store_sync()), read on
 *                             libuv's pool, swept of old entries there;
 *   redis://HOST:PORT[/DB]    a Redis several hosts share, through hiredis
 *   unix:/PATH                on the loop; its entries expire by TTL.
 * An entry lives `expiry` seconds after it was last written.
 *
 * No handle of the store keeps its loop running: a caller that waits for
 * an answer with nothing else on the loop keeps a timer of its own.
 *
 * Threads: the loop thread, except srs_store_sync().  Errors are -errno or
 * SRS_STORE_E* (their own band, docs/development.md); srs_store_strerror()
 * words both.  An async call that returns an error never calls its
 * callback.  The store copies what it is given; nothing here logs.
 */
#ifndef MXFWD_SRS_STORE_H
#define MXFWD_SRS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "srs.h"

/* The srs_store band of error codes (docs/development.md, "Error codes"). */
#define SRS_STORE_EBASE (-25000)
#define SRS_STORE_ENOTFOUND (SRS_STORE_EBASE - 1) /* no entry under the key, or it expired */
#define SRS_STORE_EDOWN (SRS_STORE_EBASE - 2)     /* Redis is not connected (or went away) */
#define SRS_STORE_EREDIS (SRS_STORE_EBASE - 3)    /* Redis answered with an error */
#define SRS_STORE_ELMDB (SRS_STORE_EBASE - 4)     /* the LMDB file failed (not a system error) */
#define SRS_STORE_ELOCATION (SRS_STORE_EBASE - 5) /* envelope_store is no path nor Redis URL */
#define SRS_STORE_EFULL (SRS_STORE_EBASE - 6)     /* the LMDB file is at its size limit */
#define SRS_STORE_ETIMEOUT (SRS_STORE_EBASE - 7)  /* Redis did not answer in time */
#define SRS_STORE_ECLOSED (SRS_STORE_EBASE - 8)   /* the store is closing */
#define SRS_STORE_ESYNC (SRS_STORE_EBASE - 9)     /* the LMDB file could not be written durably */

typedef enum { SRS_STORE_EMBEDDED, SRS_STORE_REDIS } srs_store_kind_t;

/* envelope_store, taken apart. */
typedef struct {
    srs_store_kind_t kind;
    char path[512]; /* the LMDB file, or Redis's Unix socket; "" for TCP */
    char host[64];  /* Redis over TCP: an IP address */
    uint16_t port;
    unsigned db;
} srs_store_location_t;

/* Parse envelope_store's value: 0, or SRS_STORE_ELOCATION with a reason
 * in why.  A path is taken as it is (the caller makes it absolute). */
int srs_store_location(const char *text, srs_store_location_t *out, char *why, size_t why_size);

typedef struct srs_store srs_store_t;

typedef struct {
    const char *location;     /* envelope_store */
    uint64_t expiry;          /* seconds an entry lives after it was written */
    uint64_t max_size;        /* the LMDB file's limit in bytes; 0: DEFAULT_ENVELOPE_STORE_SIZE */
    time_t (*now)(void *arg); /* NULL: time(2) */
    void *now_arg;
    bool no_sweep; /* embedded: no sweeps (a command's short use) */
} srs_store_options_t;

/*
 * Open the store on loop: the LMDB file is created if missing (mode 0600,
 * its directory must exist); Redis is connected to in the background,
 * and again, with backoff, whenever the connection is lost.  0 and *out,
 * or an error with the reason in why.
 */
int srs_store_open(uv_loop_t *loop, const srs_store_options_t *opts, srs_store_t **out, char *why,
                   size_t why_size);
/* Requests still out fail with SRS_STORE_ECLOSED; done(arg) (may be NULL)
 * once the store is freed, after its handles are closed. */
void srs_store_close(srs_store_t *st, void (*done)(void *arg), void *arg);
srs_store_kind_t srs_store_kind(const srs_store_t *st);

/* ---- writing ---- */

/* srs_store_put() answered: durable at the next srs_store_sync(). */
#define SRS_STORE_AT_SYNC 1
/* srs_store_put() answered: the callback tells. */
#define SRS_STORE_PENDING 2

typedef void (*srs_store_done_cb)(void *arg, int status);

/*
 * Keep sender under key (SRS_KEY_LEN characters), to expire `expiry`
 * seconds from now.  Embedded: SRS_STORE_AT_SYNC, the entry is written and
 * made durable by the next srs_store_sync() (an entry that lives long
 * enough already is not written again).  Redis: SRS_STORE_PENDING, and
 * cb(arg, 0) once Redis has it, or an error (SRS_STORE_EDOWN at once when
 * not connected).
 */
int srs_store_put(srs_store_t *st, const char *key, const char *sender, srs_store_done_cb cb,
                  void *arg);

/*
 * Embedded: write, durably, every entry srs_store_put() has taken so far;
 * on any thread, one call at a time (the spool's commit pass, through its
 * before_ack hook).  0, or SRS_STORE_EFULL or SRS_STORE_ESYNC (always of
 * this band, so a commit's status says whose failure it was), and then
 * those entries stay for the next call.  Redis: 0.
 */
int srs_store_sync(void *st);

/* ---- reading ---- */

/* status 0 and the sender (valid during the call), or an error:
 * SRS_STORE_ENOTFOUND for an unknown or expired key. */
typedef void (*srs_store_get_cb)(void *arg, int status, const char *sender);

/* Look key up: 0 and cb later, or an error. */
int srs_store_get(srs_store_t *st, const char *key, srs_store_get_cb cb, void *arg);

/* ---- the background ---- */

/* Embedded: start one sweep now, unless one is running (it also runs by
 * itself every DEFAULT_ENVELOPE_STORE_SWEEP seconds); done(arg, removed)
 * (may be NULL) when it has gone over every entry.  Redis: nothing. */
void srs_store_sweep(srs_store_t *st, void (*done)(void *arg, uint64_t removed), void *arg);

typedef struct {
    uint64_t entries; /* entries now (Redis: keys of its DB) */
    uint64_t bytes;   /* the file's pages in use (Redis: used_memory) */
    uint64_t written; /* entries written by this process */
    uint64_t expired; /* entries the sweeps removed */
    uint64_t up;      /* 1: usable (Redis: connected; embedded: always) */
} srs_store_stats_t;

/* What the store holds: embedded, read now; Redis, as of its last poll. */
void srs_store_stats(srs_store_t *st, srs_store_stats_t *out);

const char *srs_store_strerror(int err);

#endif
