/*
 * testdir - temporary directories for tests: made under $TMPDIR (or /tmp),
 * listed, and removed with everything in them.
 */
#ifndef MXFWD_TEST_TESTDIR_H
#define MXFWD_TEST_TESTDIR_H

#include <stddef.h>

/* mkdtemp() of $TMPDIR/PREFIX-XXXXXX into dir[size].  0, or -1. */
int test_dir_make(const char *prefix, char *dir, size_t size);
/* The names in dir (not "." ones), sorted, joined by spaces, into
 * out[size]; returns out ("" for an empty or missing directory). */
const char *test_dir_listing(const char *dir, char *out, size_t size);
/*
 * What a spool directory holds, as test_dir_listing() lists it: its file
 * names (not the journal directory) and the queue ids of the messages
 * queued in its commit journal (records in state M whose id has no file),
 * read here independently of spool/.
 */
const char *test_spool_listing(const char *dir, char *out, size_t size);
/* The bytes of the files directly in dir (0 for a missing one): how a
 * spool's journal segments grow. */
long long test_dir_bytes(const char *dir);
/* Remove dir and everything below it. */
void test_dir_remove(const char *dir);

#endif
