/*
 * srs_store_lmdb.c - the embedded envelope store: one LMDB file
 * (docs/srs.md, "The envelope store").
 *
 * The loop thread never touches the file.  srs_store_put() only notes the
 * entry in memory; the spool's commit pass, which runs before the 250s of
 * its messages go out, writes the entries noted so far in one LMDB
 * transaction and commits it, synced, on its own thread (srs_store_sync()).
 * Lookups and the sweep of expired entries run on libuv's pool, the sweep
 * a batch at a time, so that neither the loop nor a commit pass waits long
 * for the file's one writer lock.
 *
 * An entry: the key (SRS_KEY_LEN characters) -> the time it expires (8
 * bytes, big-endian unix seconds) and the sender's bytes.
 */
#include "srs_store_int.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "htab.h"
#include "xalloc.h"

typedef struct srs_store_lmdb_entry {
    struct srs_store_lmdb_entry *next;
    char key[SRS_KEY_SIZE];
    int64_t expires;
    size_t len;
    char sender[];
} srs_store_lmdb_entry_t;

struct srs_store_lmdb {
    MDB_env *env;
    MDB_dbi dbi;

    /* The entries put() took and sync() has not written: the loop adds,
     * the commit pass takes them all. */
    pthread_mutex_t mu;
    srs_store_lmdb_entry_t *pending;
    htab_t *pending_keys; /* key -> its entry in pending */
    uint64_t written;     /* under mu */

    /* Loop thread only. */
    uv_timer_t timer; /* sweeps, every DEFAULT_ENVELOPE_STORE_SWEEP seconds */
    unsigned works;   /* pool jobs out */
    bool closing;
    bool timer_closed;
    bool sweeping;
    bool cursor_set; /* the sweep goes on from cursor */
    char cursor[SRS_KEY_SIZE];
    uint64_t removed; /* by the sweep under way */
    uint64_t expired; /* by every sweep */
    void (*sweep_done)(void *arg, uint64_t removed);
    void *sweep_arg;
};

/* An LMDB error as a store error: system errors as -errno. */
static int srs_store_lmdb_err(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_MAP_FULL)
        return SRS_STORE_EFULL;
    if (rc > 0)
        return -rc;
    return SRS_STORE_ELMDB;
}

static void srs_store_lmdb_put_be64(unsigned char *p, int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        p[i] = (unsigned char)(v & 0xff);
}

static int64_t srs_store_lmdb_get_be64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* The time an entry's value says it expires; 0 for a value too short. */
static int64_t srs_store_lmdb_expires(const MDB_val *v)
{
    return v->mv_size >= 8 ? srs_store_lmdb_get_be64(v->mv_data) : 0;
}

static void srs_store_lmdb_timer_cb(uv_timer_t *t)
{
    srs_store__lmdb_sweep(t->data, NULL, NULL);
}

int srs_store__lmdb_open(srs_store_t *st, const char *path, uint64_t max_size, bool sweep,
                         char *why, size_t why_size)
{
    srs_store_lmdb_t *l = xcalloc(1, sizeof(*l));
    MDB_txn *txn = NULL;
    int rc;

    /* MDB_NOTLS: a read transaction belongs to no thread (the pool's
     * threads take turns); every commit is synced (no MDB_NOSYNC): the
     * spool waits for it on its own thread. */
    if ((rc = mdb_env_create(&l->env)) != 0 || (rc = mdb_env_set_mapsize(l->env, max_size)) != 0 ||
        (rc = mdb_env_open(l->env, path, MDB_NOSUBDIR | MDB_NOTLS, 0600)) != 0 ||
        (rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &l->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        snprintf(why, why_size, "%s: %s", path, mdb_strerror(rc));
        if (txn != NULL && rc != 0)
            mdb_txn_abort(txn);
        mdb_env_close(l->env);
        free(l);
        return srs_store_lmdb_err(rc);
    }
    pthread_mutex_init(&l->mu, NULL);
    l->pending_keys = htab_new(64);
    uv_timer_init(st->loop, &l->timer);
    l->timer.data = st;
    st->lmdb = l;
    if (!sweep)
        return 0;
    /* The timer alone keeps no loop running; the first sweep at once:
     * what expired while mxfwd was down goes first. */
    uv_unref((uv_handle_t *)&l->timer);
    uv_timer_start(&l->timer, srs_store_lmdb_timer_cb, DEFAULT_ENVELOPE_STORE_SWEEP * 1000,
                   DEFAULT_ENVELOPE_STORE_SWEEP * 1000);
    srs_store__lmdb_sweep(st, NULL, NULL);
    return 0;
}

static void srs_store_lmdb_free_list(srs_store_lmdb_entry_t *e)
{
    while (e != NULL) {
        srs_store_lmdb_entry_t *next = e->next;
        free(e);
        e = next;
    }
}

/* The timer is closed and no job is out: the file closes. */
static void srs_store_lmdb_finish(srs_store_t *st)
{
    srs_store_lmdb_t *l = st->lmdb;

    mdb_env_close(l->env);
    srs_store_lmdb_free_list(l->pending);
    htab_free(l->pending_keys, NULL);
    pthread_mutex_destroy(&l->mu);
    free(l);
    st->lmdb = NULL;
    srs_store__free(st);
}

static void srs_store_lmdb_timer_closed(uv_handle_t *h)
{
    srs_store_t *st = h->data;

    st->lmdb->timer_closed = true;
    if (st->lmdb->works == 0)
        srs_store_lmdb_finish(st);
}

void srs_store__lmdb_close(srs_store_t *st)
{
    st->lmdb->closing = true;
    uv_close((uv_handle_t *)&st->lmdb->timer, srs_store_lmdb_timer_closed);
}

/* A pool job ended: the last one of a closing store frees it. */
static void srs_store_lmdb_job_done(srs_store_t *st)
{
    srs_store_lmdb_t *l = st->lmdb;

    if (--l->works == 0 && l->timer_closed)
        srs_store_lmdb_finish(st);
}

/* Under mu: e joins pending, unless its key is there already (then the
 * later expiry wins and e is freed). */
static void srs_store_lmdb_note(srs_store_lmdb_t *l, srs_store_lmdb_entry_t *e)
{
    srs_store_lmdb_entry_t *old = htab_get(l->pending_keys, e->key, SRS_KEY_LEN);

    if (old != NULL) {
        if (e->expires > old->expires)
            old->expires = e->expires;
        free(e);
        return;
    }
    htab_put(l->pending_keys, e->key, SRS_KEY_LEN, e);
    e->next = l->pending;
    l->pending = e;
}

int srs_store__lmdb_put(srs_store_t *st, const char *key, const char *sender)
{
    srs_store_lmdb_t *l = st->lmdb;
    size_t len = strlen(sender);
    srs_store_lmdb_entry_t *e;

    if (l->closing)
        return SRS_STORE_ECLOSED;
    e = xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->key, key, SRS_KEY_LEN);
    e->expires = (int64_t)srs_store__now(st) + (int64_t)st->expiry;
    e->len = len;
    memcpy(e->sender, sender, len);
    pthread_mutex_lock(&l->mu);
    srs_store_lmdb_note(l, e);
    pthread_mutex_unlock(&l->mu);
    return SRS_STORE_AT_SYNC;
}

/* In txn: write e unless the file has it already with enough time left
 * (docs/srs.md: a busy sender is written once a day); *n counts what is
 * written.  0 or an LMDB error. */
static int srs_store_lmdb_write(srs_store_lmdb_t *l, MDB_txn *txn, const srs_store_lmdb_entry_t *e,
                                uint64_t *n)
{
    MDB_val k = {SRS_KEY_LEN, (void *)e->key}, v;
    unsigned char *p;
    int rc = mdb_get(txn, l->dbi, &k, &v);

    if (rc == 0 && srs_store_lmdb_expires(&v) >= e->expires - DEFAULT_ENVELOPE_STORE_REFRESH &&
        v.mv_size == 8 + e->len && memcmp((char *)v.mv_data + 8, e->sender, e->len) == 0)
        return 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    v.mv_size = 8 + e->len;
    if ((rc = mdb_put(txn, l->dbi, &k, &v, MDB_RESERVE)) != 0)
        return rc;
    p = v.mv_data;
    srs_store_lmdb_put_be64(p, e->expires);
    memcpy(p + 8, e->sender, e->len);
    (*n)++;
    return 0;
}

int srs_store__lmdb_sync(srs_store_t *st)
{
    srs_store_lmdb_t *l = st->lmdb;
    srs_store_lmdb_entry_t *list, *e, *next;
    MDB_txn *txn = NULL;
    uint64_t n = 0;
    int rc;

    pthread_mutex_lock(&l->mu);
    list = l->pending;
    l->pending = NULL;
    htab_free(l->pending_keys, NULL);
    l->pending_keys = htab_new(64);
    pthread_mutex_unlock(&l->mu);
    if (list == NULL)
        return 0;
    if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
        goto fail;
    for (e = list; e != NULL; e = e->next)
        if ((rc = srs_store_lmdb_write(l, txn, e, &n)) != 0)
            goto fail;
    /* Nothing new (a sender seen today): no commit, no sync. */
    if (n == 0)
        mdb_txn_abort(txn);
    else if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto fail;
    }
    srs_store_lmdb_free_list(list);
    pthread_mutex_lock(&l->mu);
    l->written += n;
    pthread_mutex_unlock(&l->mu);
    return 0;

fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    /* Back to pending: the next pass tries them again. */
    pthread_mutex_lock(&l->mu);
    for (e = list; e != NULL; e = next) {
        next = e->next;
        srs_store_lmdb_note(l, e);
    }
    pthread_mutex_unlock(&l->mu);
    return rc == MDB_MAP_FULL ? SRS_STORE_EFULL : SRS_STORE_ESYNC;
}

/* ---- lookups ---- */

typedef struct {
    uv_work_t req; /* first: the request is the job */
    srs_store_t *st;
    char key[SRS_KEY_SIZE];
    int64_t now;
    int status;
    char *sender;
    srs_store_get_cb cb;
    void *arg;
} srs_store_lmdb_get_t;

static void srs_store_lmdb_get_work(uv_work_t *req)
{
    srs_store_lmdb_get_t *g = (srs_store_lmdb_get_t *)req;
    srs_store_lmdb_t *l = g->st->lmdb;
    srs_store_lmdb_entry_t *e;
    MDB_val k = {SRS_KEY_LEN, g->key}, v;
    MDB_txn *txn = NULL;
    int rc;

    /* Not durable yet, but the key names this sender and no other. */
    pthread_mutex_lock(&l->mu);
    if ((e = htab_get(l->pending_keys, g->key, SRS_KEY_LEN)) != NULL)
        g->sender = xstrndup(e->sender, e->len);
    pthread_mutex_unlock(&l->mu);
    if (g->sender != NULL)
        return;
    if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0) {
        g->status = srs_store_lmdb_err(rc);
        return;
    }
    rc = mdb_get(txn, l->dbi, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && (v.mv_size < 8 || srs_store_lmdb_expires(&v) <= g->now)))
        g->status = SRS_STORE_ENOTFOUND;
    else if (rc != 0)
        g->status = srs_store_lmdb_err(rc);
    else
        g->sender = xstrndup((char *)v.mv_data + 8, v.mv_size - 8);
    mdb_txn_abort(txn);
}

static void srs_store_lmdb_get_done(uv_work_t *req, int status)
{
    srs_store_lmdb_get_t *g = (srs_store_lmdb_get_t *)req;
    srs_store_t *st = g->st;

    (void)status; /* never cancelled */
    if (st->lmdb->closing)
        g->status = SRS_STORE_ECLOSED;
    g->cb(g->arg, g->status, g->status == 0 ? g->sender : NULL);
    free(g->sender);
    free(g);
    srs_store_lmdb_job_done(st);
}

int srs_store__lmdb_get(srs_store_t *st, const char *key, srs_store_get_cb cb, void *arg)
{
    srs_store_lmdb_get_t *g;

    if (st->lmdb->closing)
        return SRS_STORE_ECLOSED;
    g = xcalloc(1, sizeof(*g));
    g->st = st;
    memcpy(g->key, key, SRS_KEY_LEN);
    g->now = (int64_t)srs_store__now(st);
    g->cb = cb;
    g->arg = arg;
    st->lmdb->works++;
    uv_queue_work(st->loop, &g->req, srs_store_lmdb_get_work, srs_store_lmdb_get_done);
    return 0;
}

/* ---- the sweep ---- */

typedef struct {
    uv_work_t req; /* first: the request is the job */
    srs_store_t *st;
    int64_t now;
    bool from_cursor;
    char from[SRS_KEY_SIZE];
    /* results */
    bool more; /* next holds where the next batch starts */
    char next[SRS_KEY_SIZE];
    uint64_t removed;
    int status;
} srs_store_lmdb_sweep_t;

/* Keys of expired entries among the next batch, read without the writer
 * lock; then removed in one write transaction, each checked again. */
static void srs_store_lmdb_sweep_work(uv_work_t *req)
{
    srs_store_lmdb_sweep_t *w = (srs_store_lmdb_sweep_t *)req;
    srs_store_lmdb_t *l = w->st->lmdb;
    char(*keys)[SRS_KEY_LEN] = xcalloc(DEFAULT_ENVELOPE_STORE_BATCH, SRS_KEY_LEN);
    MDB_val k = {SRS_KEY_LEN, w->from}, v;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    size_t nkeys = 0, seen = 0;
    int rc;

    if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_cursor_open(txn, l->dbi, &cur)) != 0)
        goto done;
    rc = mdb_cursor_get(cur, &k, &v, w->from_cursor ? MDB_SET_RANGE : MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (seen++ == DEFAULT_ENVELOPE_STORE_BATCH) {
            w->more = k.mv_size == SRS_KEY_LEN;
            if (w->more)
                memcpy(w->next, k.mv_data, SRS_KEY_LEN);
            break;
        }
        if (k.mv_size == SRS_KEY_LEN && srs_store_lmdb_expires(&v) <= w->now)
            memcpy(keys[nkeys++], k.mv_data, SRS_KEY_LEN);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    txn = NULL;
    if (rc != 0 || nkeys == 0)
        goto done;
    if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
        goto done;
    for (size_t i = 0; i < nkeys && rc == 0; i++) {
        k = (MDB_val){SRS_KEY_LEN, keys[i]};
        rc = mdb_get(txn, l->dbi, &k, &v);
        if (rc == 0 && srs_store_lmdb_expires(&v) <= w->now) {
            rc = mdb_del(txn, l->dbi, &k, NULL);
            w->removed += rc == 0;
        } else if (rc == MDB_NOTFOUND || rc == 0) {
            rc = 0; /* written again since */
        }
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        w->removed = 0;
done:
    w->status = srs_store_lmdb_err(rc);
    free(keys);
}

static void srs_store_lmdb_sweep_start(srs_store_t *st);

static void srs_store_lmdb_sweep_done(uv_work_t *req, int status)
{
    srs_store_lmdb_sweep_t *w = (srs_store_lmdb_sweep_t *)req;
    srs_store_t *st = w->st;
    srs_store_lmdb_t *l = st->lmdb;
    void (*done)(void *arg, uint64_t removed);

    (void)status; /* never cancelled */
    l->removed += w->removed;
    l->expired += w->removed;
    l->cursor_set = w->status == 0 && w->more;
    if (l->cursor_set)
        memcpy(l->cursor, w->next, SRS_KEY_SIZE);
    free(w);
    if (l->cursor_set && !l->closing) {
        l->works--;
        srs_store_lmdb_sweep_start(st);
        return;
    }
    /* Over every entry (or failed: the next sweep starts again). */
    l->sweeping = false;
    done = l->sweep_done;
    l->sweep_done = NULL;
    if (done != NULL)
        done(l->sweep_arg, l->removed);
    srs_store_lmdb_job_done(st);
}

/* The next batch of the sweep under way, on the pool. */
static void srs_store_lmdb_sweep_start(srs_store_t *st)
{
    srs_store_lmdb_t *l = st->lmdb;
    srs_store_lmdb_sweep_t *w = xcalloc(1, sizeof(*w));

    w->st = st;
    w->now = (int64_t)srs_store__now(st);
    w->from_cursor = l->cursor_set;
    memcpy(w->from, l->cursor, SRS_KEY_SIZE);
    l->works++;
    uv_queue_work(st->loop, &w->req, srs_store_lmdb_sweep_work, srs_store_lmdb_sweep_done);
}

void srs_store__lmdb_sweep(srs_store_t *st, void (*done)(void *arg, uint64_t removed), void *arg)
{
    srs_store_lmdb_t *l = st->lmdb;

    if (l->sweeping || l->closing) {
        if (done != NULL)
            done(arg, 0);
        return;
    }
    l->sweeping = true;
    l->removed = 0;
    l->cursor_set = false;
    l->sweep_done = done;
    l->sweep_arg = arg;
    srs_store_lmdb_sweep_start(st);
}

void srs_store__lmdb_stats(srs_store_t *st, srs_store_stats_t *out)
{
    srs_store_lmdb_t *l = st->lmdb;
    MDB_txn *txn = NULL;
    MDB_envinfo info;
    MDB_stat ms;

    out->up = 1;
    out->expired = l->expired;
    pthread_mutex_lock(&l->mu);
    out->written = l->written;
    pthread_mutex_unlock(&l->mu);
    if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    if (mdb_stat(txn, l->dbi, &ms) == 0 && mdb_env_info(l->env, &info) == 0) {
        out->entries = ms.ms_entries;
        out->bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
    }
    mdb_txn_abort(txn);
}
