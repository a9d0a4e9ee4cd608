/*
 * anvil - per-client event rates, in memory (the connection, message and
 * recipient rate limits of docs/smtp.md, after Postfix's anvil(8)).
 *
 * Each client address has a count per kind of event in a fixed window
 * (a minute for the limits), started by its first event: the count is
 * what the window has seen so far, this event included.  Entries whose
 * windows are all over are dropped as the table is swept, once a window
 * at most, so the table holds the clients of the last minutes only.
 *
 * Time is the caller's (milliseconds of any monotonic clock), so tests
 * run the windows without waiting.  Loop thread only; owns its memory.
 */
#ifndef MXFWD_ANVIL_H
#define MXFWD_ANVIL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ANVIL_CONNECTIONS,
    ANVIL_MESSAGES,
    ANVIL_RECIPIENTS,
    ANVIL_NKINDS
} anvil_kind_t;

typedef struct anvil anvil_t;

anvil_t *anvil_new(uint64_t window_ms);
void anvil_free(anvil_t *a);

/* One event of kind from client (its address as text) at now_ms: the
 * events of that kind in the client's current window, this one
 * included. */
unsigned anvil_count(anvil_t *a, const char *client, anvil_kind_t kind, uint64_t now_ms);

/* Clients in the table (for tests). */
size_t anvil_clients(const anvil_t *a);

#endif
