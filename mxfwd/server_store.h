/*
 * server_store - the daemon's envelope store (srs/srs_store.h) and the
 * spool's wiring around it.  The store is opened after the privilege drop
 * when long senders go there (srs_long_senders = store), or when an
 * embedded file or a Redis is there to answer bounces to keyed addresses
 * made before; its figures go to the stats registry.  The spool's
 * blocking work runs on libuv's pool, and its commit passes sync the store
 * before their 250s (before_ack; docs/srs.md, "Durability").
 */
#ifndef MXFWD_SERVER_STORE_H
#define MXFWD_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "queue.h"
#include "spool.h"
#include "srs_store.h"
#include "stats.h"

/* The store, or NULL when none is needed; a store that cannot be opened is
 * fatal.  Its gauges and counters go to registry. */
srs_store_t *server_store_open(uv_loop_t *loop, const config_t *cfg, stats_t *registry);

/* Whether the store is a file: its directory into dir (to be made). */
bool server_store_dir(const config_t *cfg, char *dir, size_t size);

/* The spool's executor on loop's thread pool, and its before_ack hook on
 * the store st (NULL: none). */
void server_store_spool_options(uv_loop_t *loop, srs_store_t *st, spool_options_t *sopts);

/*
 * The entries of the keyed SRS senders of the messages the spool took
 * back at start (queue), put again and made durable in one commit, so that
 * their bounces find them: the store's commit runs beside the journal's
 * (docs/spool.md, "Group commit"), and a crash between the two syncs
 * leaves a message whose key the store never got (no 250 went out for it,
 * but the spool forwards it all the same).  An entry already there is not
 * written again.  Embedded store only (Redis's put is awaited before the
 * commit).  How many messages have keyed senders.
 */
size_t server_store_restore(srs_store_t *st, queue_t *queue);

/* Once nothing can use it (the loop has ended): its figures keep their
 * last values, its handles close (run the loop again). */
void server_store_close(srs_store_t *st, stats_t *registry);

#endif
