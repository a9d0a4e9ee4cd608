/* Unit tests for smtpd/table.c: matching order, nesting, loops, bad lines. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "table.h"
#include "xalloc.h"

static table_t *load_ok(const char *text)
{
    collect_t d = {0};
    table_t *t = NULL;
    int rc = table_parse("fw", text, strlen(text), collect_message, &d, &t);

    cr_assert_eq(rc, 0, "unexpected error: %s", d.n ? d.msg[0] : "?");
    return t;
}

static int load_bad(const char *text, collect_t *d)
{
    table_t *t = (table_t *)1;
    int rc = table_parse("fw", text, strlen(text), collect_message, d, &t);

    cr_assert_null(t);
    cr_assert_eq(rc, d->n);
    return rc;
}

/* The destinations of addr joined with spaces, or a word for the result. */
static const char *resolve(const table_t *t, const char *addr)
{
    static char out[4096];
    table_dests_t dests;
    size_t used = 0;

    switch (table_lookup(t, addr, strlen(addr), &dests)) {
    case TABLE_UNKNOWN_USER:
        return "unknown";
    case TABLE_RELAY_DENIED:
        return "relay";
    case TABLE_BAD_ADDRESS:
        return "bad";
    case TABLE_FOUND:
        break;
    }
    if (dests.action == TABLE_DISCARD)
        return "DISCARD";
    if (dests.action == TABLE_REJECT) {
        snprintf(out, sizeof(out), "REJECT %s %s", dests.esc, dests.text);
        return out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < dests.n; i++)
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", i ? " " : "",
                                 dests.addr[i]);
    return out;
}

static const char sample[] = "# alias                  destinations (commas or spaces)\n"
                             "alice@alias.test         alice@example.com\n"
                             "team@alias.test          a@example.com, b@example.org\n"
                             "@alias.test              owner@example.com      # catch-all\n";

Test(table, sample_from_the_spec)
{
    table_t *t = load_ok(sample);

    cr_assert_eq(table_count(t), 3);
    cr_assert_str_eq(resolve(t, "alice@alias.test"), "alice@example.com");
    cr_assert_str_eq(resolve(t, "team@alias.test"), "a@example.com b@example.org");
    cr_assert_str_eq(resolve(t, "anyone@alias.test"), "owner@example.com");
    cr_assert_str_eq(resolve(t, "alice@example.com"), "relay");
    cr_assert(table_has_domain(t, "ALIAS.test", 10));
    cr_assert(!table_has_domain(t, "example.com", 11));
    table_unref(t);
}

Test(table, domains_each_once_in_file_order)
{
    table_t *t = load_ok("a@B.test x@example.com\n"
                         "a@a.test x@example.com\n"
                         "@b.test y@example.com\n"
                         "c@c.test b@b.test\n"
                         "b@A.test z@example.com\n");
    const char *d, *want[] = {"b.test", "a.test", "c.test"};
    size_t pos = 0, n = 0;

    while (table_next_domain(t, &pos, &d)) {
        cr_assert_lt(n, 3);
        cr_assert_str_eq(d, want[n]);
        n++;
    }
    cr_assert_eq(n, 3);
    cr_assert(!table_next_domain(t, &pos, &d));
    table_unref(t);
}

Test(table, matching_order_exact_subaddress_catchall)
{
    table_t *t = load_ok("alice@alias.test alice@example.com\n"
                         "alice+work@alias.test work@example.com\n"
                         "@alias.test catchall@example.com\n"
                         "bob@strict.test bob@example.com\n");

    cr_assert_str_eq(resolve(t, "alice+work@alias.test"), "work@example.com");
    cr_assert_str_eq(resolve(t, "alice+home@alias.test"), "alice@example.com");
    cr_assert_str_eq(resolve(t, "alice+a+b@alias.test"), "alice@example.com");
    cr_assert_str_eq(resolve(t, "nobody+x@alias.test"), "catchall@example.com");
    cr_assert_str_eq(resolve(t, "+x@alias.test"), "catchall@example.com");
    cr_assert_str_eq(resolve(t, "bob+tag@strict.test"), "bob@example.com");
    cr_assert_str_eq(resolve(t, "carol@strict.test"), "unknown");
    cr_assert_str_eq(resolve(t, "carol+bob@strict.test"), "unknown");
    table_unref(t);
}

Test(table, case_folding)
{
    table_t *t = load_ok("Alice@Alias.TEST Alice.Smith@Example.com\n");

    cr_assert_str_eq(resolve(t, "alice@alias.test"), "Alice.Smith@Example.com");
    cr_assert_str_eq(resolve(t, "ALICE@ALIAS.TEST"), "Alice.Smith@Example.com");
    cr_assert_str_eq(resolve(t, "aLiCe+TaG@aLiAs.TeSt"), "Alice.Smith@Example.com");
    table_unref(t);
}

Test(table, separators_comments_continuations)
{
    table_t *t = load_ok("list@alias.test a@x.example,b@x.example  c@x.example,,\td@x.example\n"
                         "   e@x.example # continued\n"
                         "\n"
                         "# a comment does not end the entry\n"
                         "\tf@x.example\n"
                         "other@alias.test g@x.example\r\n");

    cr_assert_str_eq(resolve(t, "list@alias.test"),
                     "a@x.example b@x.example c@x.example d@x.example e@x.example f@x.example");
    cr_assert_str_eq(resolve(t, "other@alias.test"), "g@x.example");
    table_unref(t);
}

Test(table, nested_aliases_expand_and_deduplicate)
{
    table_t *t = load_ok("team@alias.test alice@alias.test, bob@alias.test, boss@example.com\n"
                         "alice@alias.test alice@example.com\n"
                         "bob@alias.test bob@example.com, BOSS@example.com\n"
                         "all@alias.test team@alias.test ops@alias.test\n"
                         "ops@other.test alice+ops@alias.test\n"
                         "ops@alias.test ops@other.test\n");

    cr_assert_str_eq(resolve(t, "team@alias.test"),
                     "alice@example.com bob@example.com BOSS@example.com");
    cr_assert_str_eq(resolve(t, "all@alias.test"),
                     "alice@example.com bob@example.com BOSS@example.com");
    cr_assert_str_eq(resolve(t, "ops@alias.test"), "alice@example.com");
    table_unref(t);
}

Test(table, nested_through_catchall)
{
    table_t *t = load_ok("@alias.test postmaster@alias.test\n"
                         "postmaster@alias.test admin@example.com\n");

    cr_assert_str_eq(resolve(t, "whoever@alias.test"), "admin@example.com");
    table_unref(t);
}

static char *chain(int depth)
{
    size_t cap = 64 * (size_t)(depth + 1);
    char *text = xmalloc(cap);
    size_t used = 0;

    for (int i = 0; i < depth - 1; i++)
        used += (size_t)snprintf(text + used, cap - used, "a%d@alias.test a%d@alias.test\n", i,
                                 i + 1);
    snprintf(text + used, cap - used, "a%d@alias.test end@example.com\n", depth - 1);
    return text;
}

Test(table, ten_levels_allowed_eleven_refused)
{
    char *ten = chain(10), *eleven = chain(11);
    table_t *t = load_ok(ten);
    collect_t d = {0};

    cr_assert_str_eq(resolve(t, "a0@alias.test"), "end@example.com");
    table_unref(t);
    load_bad(eleven, &d);
    cr_assert_eq(d.n, 1, "%d errors: %s", d.n, d.msg[0]);
    cr_assert(collect_has(&d, "fw:1: ", "more than 10 levels"));
    free(ten);
    free(eleven);
}

Test(table, loops_are_errors_naming_the_cycle)
{
    collect_t d = {0};

    load_bad("a@alias.test b@alias.test\n"
             "b@alias.test c@alias.test\n"
             "c@alias.test a@alias.test\n"
             "self@alias.test self@alias.test, x@example.com\n",
             &d);
    cr_assert_eq(d.n, 2, "%d errors", d.n);
    cr_assert(collect_has(&d, "fw:3: ", "alias loop: a@alias.test -> b@alias.test -> c@alias.test -> a@alias.test"));
    cr_assert(collect_has(&d, "fw:4: ", "alias loop: self@alias.test -> self@alias.test"));
}

Test(table, catchall_loop)
{
    collect_t d = {0};

    load_bad("@alias.test owner@alias.test\n", &d);
    cr_assert_eq(d.n, 1);
    cr_assert(collect_has(&d, "fw:1: ", "alias loop"));
}

Test(table, each_kind_of_bad_line)
{
    collect_t d = {0};
    int n = load_bad("good@alias.test good@example.com\n"        /* 1 */
                     "nodest@alias.test\n"                       /* 2 no destinations */
                     "bad alias@alias.test x@example.com\n"      /* 3 'bad' no @ */
                     "x@alias.test not-an-address\n"             /* 4 bad destination */
                     "good@ALIAS.test dup@example.com\n"         /* 5 duplicate */
                     "user%host@alias.test x@example.com\n"      /* 6 relay trick */
                     "y@alias.test y@-bad-.example\n"            /* 7 bad domain */
                     "z@[192.0.2.1] z@example.com\n"             /* 8 literal alias */
                     "w@alias.test missing@alias.test\n"         /* 9 no such alias */
                     "\x01@alias.test a@example.com\n",          /* 10 control char */
                     &d);

    cr_assert_eq(n, 9, "%d errors", n);
    cr_assert(collect_has(&d, "fw:2: ", "has no destinations"));
    cr_assert(collect_has(&d, "fw:3: ", "bad alias 'bad'"));
    cr_assert(collect_has(&d, "fw:4: ", "bad destination 'not-an-address'"));
    cr_assert(collect_has(&d, "fw:5: ", "duplicate alias good@ALIAS.test (first on line 1)"));
    cr_assert(collect_has(&d, "fw:6: ", "hide another address"));
    cr_assert(collect_has(&d, "fw:7: ", "bad domain"));
    cr_assert(collect_has(&d, "fw:8: ", "bad alias"));
    cr_assert(collect_has(&d, "fw:10: ", "control character"));
    /* In the same pass as the rest. */
    cr_assert(collect_has(&d, "fw:9: ", "matches no alias"));
}

Test(table, continuation_without_entry)
{
    collect_t d = {0};

    load_bad("  orphan@example.com\n", &d);
    cr_assert_eq(d.n, 1);
    cr_assert(collect_has(&d, "fw:1: ", "continuation"));
}

Test(table, relay_tricks_and_bad_input_at_lookup)
{
    table_t *t = load_ok(sample);

    cr_assert_str_eq(resolve(t, "user%example.com@alias.test"), "relay");
    cr_assert_str_eq(resolve(t, "example.com!user@alias.test"), "relay");
    cr_assert_str_eq(resolve(t, "\"user@example.com\"@alias.test"), "relay");
    cr_assert_str_eq(resolve(t, "@alias.test"), "bad");
    cr_assert_str_eq(resolve(t, ""), "bad");
    cr_assert_str_eq(resolve(t, "alice"), "bad");
    table_unref(t);
}

Test(table, reference_counting)
{
    table_t *t = load_ok(sample);

    table_ref(t);
    table_unref(t);
    cr_assert_str_eq(resolve(t, "alice@alias.test"), "alice@example.com");
    table_unref(t);
}

Test(table, huge_table_from_file)
{
    char path[] = "/tmp/mxfwd-table-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    collect_t d = {0};
    table_t *t = NULL;
    char addr[64], want[64];

    cr_assert_not_null(f);
    for (int i = 0; i < 100000; i++)
        fprintf(f, "user%d@d%d.alias.test dest%d@example.com, group%d@alias%d.test\n", i, i % 100,
                i, i % 10, i % 10);
    for (int i = 0; i < 10; i++)
        fprintf(f, "group%d@alias%d.test g%d@example.org\n", i, i, i);
    fclose(f);
    cr_assert_eq(table_load(path, collect_message, &d, &t), 0, "%s", d.n ? d.msg[0] : "");
    unlink(path);
    cr_assert_eq(table_count(t), 100010);
    for (int i = 0; i < 100000; i += 997) {
        snprintf(addr, sizeof(addr), "USER%d+x@D%d.alias.test", i, i % 100);
        snprintf(want, sizeof(want), "dest%d@example.com g%d@example.org", i, i % 10);
        cr_assert_str_eq(resolve(t, addr), want);
    }
    cr_assert_str_eq(resolve(t, "user1@d2.alias.test"), "unknown");
    table_unref(t);
}

Test(table, missing_file)
{
    collect_t d = {0};
    table_t *t = NULL;

    cr_assert_eq(table_load("/nonexistent/forwards", collect_message, &d, &t), 1);
    cr_assert(collect_has(&d, "/nonexistent/forwards: ", "No such file"));
}

/* Every error in one pass: a bad line does not hide a loop or a dangling
 * destination further on (docs/forward-table.md). */
Test(table, every_error_in_one_pass)
{
    collect_t d = {0};

    load_bad("bad-alias         x@example.com\n"
             "a@alias.test      b@alias.test\n"
             "b@alias.test      a@alias.test\n"
             "c@alias.test      nobody@alias.test\n"
             "d@alias.test      not an address\n",
             &d);
    cr_assert(collect_has(&d, "fw:1: ", ""));
    cr_assert(collect_has(&d, "fw:3: ", "alias loop: a@alias.test -> b@alias.test -> a@alias.test"));
    cr_assert(collect_has(&d, "fw:4: ", "matches no alias"));
    cr_assert(collect_has(&d, "fw:5: ", ""));
}

Test(table, a_byte_order_mark_is_skipped)
{
    table_t *t = load_ok("\xEF\xBB\xBF"
                         "alice@alias.test  alice@example.com\n");

    cr_assert_str_eq(resolve(t, "alice@alias.test"), "alice@example.com");
    table_unref(t);
}

Test(table, reject_and_discard_are_exceptions_under_a_catch_all)
{
    table_t *t = load_ok("@alias.test            owner@example.com\n"
                         "old@alias.test          REJECT This address is no longer in use, sorry\n"
                         "gone@alias.test         reject\n"
                         "moved@alias.test        REJECT 5.1.6 Moved; write to new@example.org\n"
                         "noise@alias.test        DISCARD   # newsletters nobody reads\n"
                         "x@alias.test            a@example.com\n");
    table_dests_t d;

    cr_assert_str_eq(resolve(t, "old@alias.test"),
                     "REJECT 5.7.1 This address is no longer in use, sorry");
    cr_assert_str_eq(resolve(t, "gone@alias.test"), "REJECT 5.7.1 Recipient address rejected");
    cr_assert_str_eq(resolve(t, "Moved@Alias.test"),
                     "REJECT 5.1.6 Moved; write to new@example.org");
    cr_assert_str_eq(resolve(t, "noise+tag@alias.test"), "DISCARD");
    cr_assert_str_eq(resolve(t, "anyone@alias.test"), "owner@example.com");
    /* The entry that matched, and its line. */
    cr_assert_eq(table_lookup(t, "noise@alias.test", 16, &d), TABLE_FOUND);
    cr_assert_str_eq(d.key, "noise@alias.test");
    cr_assert_eq(d.line, 5);
    cr_assert_eq(table_lookup(t, "who@alias.test", 14, &d), TABLE_FOUND);
    cr_assert_str_eq(d.key, "@alias.test");
    cr_assert_eq(d.line, 1);
    table_unref(t);
}

Test(table, an_action_is_the_whole_entry)
{
    collect_t d = {0};

    cr_assert_eq(load_bad("a@alias.test x@example.com REJECT\n"
                          "b@alias.test DISCARD now\n"
                          "c@alias.test REJECT\n"
                          "  y@example.com\n"
                          "d@alias.test REJECT caf\xc3\xa9\n"
                          "e@alias.test old@alias.test\n"
                          "old@alias.test DISCARD\n",
                          &d),
                 5);
    cr_assert_str_eq(d.msg[0], "fw:1: REJECT for a@alias.test must be its only destination, on "
                               "the alias's line");
    cr_assert_str_eq(d.msg[1], "fw:2: DISCARD for b@alias.test takes no text or destinations: "
                               "'now'");
    cr_assert_str_eq(d.msg[2], "fw:4: REJECT for c@alias.test must be its only destination, on "
                               "the alias's line");
    cr_assert_str_eq(d.msg[3], "fw:5: REJECT text for d@alias.test must be ASCII and at most 200 "
                               "octets");
    cr_assert_str_eq(d.msg[4], "fw:6: destination old@alias.test of e@alias.test is discarded by "
                               "the entry on line 7");
}
