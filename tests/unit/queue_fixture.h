/*
 * The queue tests' fixture (queue_fixture.c), shared by test_queue.c and
 * test_queue_admin.c: a real spool in a temporary directory on a real
 * libuv loop, a scripted delivery implementation (no network), and an
 * injected clock and random source, so that retries and expiry run
 * without waiting.  TestSuite(queue, .init = setup, .fini = teardown).
 */
#ifndef MXFWD_TEST_QUEUE_FIXTURE_H
#define MXFWD_TEST_QUEUE_FIXTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dsn.h"
#include "fake_delivery.h"
#include "queue.h"
#include "spool.h"
#include "stats.h"

#define S INT64_C(1000000)
#define T0 (INT64_C(1795800000) * S) /* Fri, 27 Nov 2026 17:20:00 +0000 */
#define QUEUE_FIXTURE_DIR_SIZE 300

/* The spool directory, the loop, the injected clock (now_us) and random
 * value (rnd), the scripted delivery, the queue and its registry. */
extern char sdir[QUEUE_FIXTURE_DIR_SIZE];
extern uv_loop_t loop;
extern int64_t now_us;
extern uint32_t rnd;
extern fake_t fake;
extern stats_t *stats;
extern spool_t *spool;
extern queue_t *q;
/* The retry schedule (two steps) and the lifetime, in seconds. */
extern uint64_t schedule[];
extern uint64_t lifetime;
/* The spool's writes fail, its syncs wait, while these are set. */
extern atomic_bool fail_writes;
extern atomic_bool hold_syncs;
/* queue_options_t's, for the next open_all(). */
extern size_t body_memory;
extern uint64_t delay_warning;
extern bool hide_destinations;
extern unsigned max_jobs, max_dom_jobs;
/* RET=, ENVID= and the envelope flags of the next submit(). */
extern unsigned next_ret;
extern const char *next_envid;
extern unsigned submit_flags;
/* The message submit() commits, and the headers put on top of it. */
extern const char body[];
extern const size_t body_size;
extern const char prepend[];
extern const size_t prepend_size;

void setup(void);
void teardown(void);
/* The spool and the queue over it, opened and closed (a restart between). */
void open_all(void);
void close_all(void);
void restart(void);
/* Run the loop until pred() holds, or everything in flight is done; move
 * the clock on by secs and run what became due. */
void run_until(bool (*pred)(void));
void settle(void);
void advance(int64_t secs);
bool committed(void);
/* Commit a message from sender to rcpts[0..n) and hand it to the queue:
 * its queue id. */
const char *submit(const char *sender, const spool_env_rcpt_t *rcpts, size_t n);
/* `mxfwd queue` in one line per recipient; the log so far. */
const char *listing(void);
char *log_text(void);
/* The jobs delivery got for addr, and the last of them. */
size_t jobs_to(const char *addr);
const fake_record_t *last_job_to(const char *addr);

/* What queue_list() says about recipient addr. */
typedef struct {
    const char *addr;
    char state[16];
    int64_t next;
    uint32_t attempts;
    char reply[512];
    bool found;
} rcpt_view_t;
rcpt_view_t view(const char *addr);

#endif
