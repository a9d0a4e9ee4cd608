/* Unit tests for smtpd/milter_edit.c: a header section split into fields as
 * a receiver reads it, edited as filters ask, and what the edit gives: the
 * fields on top, a new section (docs/milter.md, "Header changes"). */
#include <criterion/criterion.h>
#include <string.h>

#include "milter_edit.h"

static const char head[] = "From: A <a@origin.test>\r\n"
                           "Subject: hello\r\n"
                           "Received: one\r\n\tfolded\r\n"
                           "Received: two\r\n";

static void split(const milter_edit_t *e, const char *want_top, const char *want_section,
                  bool rewritten)
{
    buf_t top, section;

    buf_init(&top, 1 << 20);
    buf_init(&section, 1 << 20);
    cr_assert_eq(milter_edit_split(e, &top, &section), rewritten);
    cr_assert_eq(buf_used(&top), strlen(want_top), "top: %.*s", (int)buf_used(&top),
                 buf_ptr(&top));
    cr_assert_eq(memcmp(buf_ptr(&top) ? buf_ptr(&top) : "", want_top, strlen(want_top)), 0);
    cr_assert_eq(buf_used(&section), strlen(want_section), "section: %.*s",
                 (int)buf_used(&section), buf_ptr(&section));
    cr_assert_eq(memcmp(buf_ptr(&section) ? buf_ptr(&section) : "", want_section,
                        strlen(want_section)),
                 0);
    buf_free(&top);
    buf_free(&section);
}

Test(milter_edit, fields_as_a_receiver_reads_them)
{
    static const char odd[] = "From: a@b\r\n.\r\nSubject: not a field now\r\n";
    milter_edit_t e;
    buf_t name, value;

    milter_edit_init(&e, head, sizeof(head) - 1);
    cr_assert_eq(e.n, 4);
    cr_assert_eq(e.section_len, sizeof(head) - 1);
    buf_init(&name, 1024);
    buf_init(&value, 1024);
    milter_edit_name_value(&e.f[2], false, &name, &value);
    cr_assert_str_eq(buf_ptr(&name), "Received");
    cr_assert_str_eq(buf_ptr(&value), "one\n\tfolded", "line breaks as LF");
    milter_edit_name_value(&e.f[1], true, &name, &value);
    cr_assert_str_eq(buf_ptr(&value), " hello", "the leading space kept (HDR_LEADSPC)");
    milter_edit_free(&e);
    /* A line that is no field ends the section. */
    milter_edit_init(&e, odd, sizeof(odd) - 1);
    cr_assert_eq(e.n, 1);
    cr_assert_eq(e.section_len, strlen("From: a@b\r\n"));
    milter_edit_free(&e);
    /* White space before the colon, a name as written. */
    milter_edit_init(&e, "Subject : x\r\n", 13);
    milter_edit_name_value(&e.f[0], false, &name, &value);
    cr_assert_str_eq(buf_ptr(&name), "Subject");
    milter_edit_free(&e);
    /* A field cut off by the end is not one. */
    milter_edit_init(&e, "From: a@b\r\nSubject: cut", 23);
    cr_assert_eq(e.n, 1);
    milter_edit_free(&e);
    buf_free(&name);
    buf_free(&value);
}

Test(milter_edit, inserts_on_top_leave_the_section_alone)
{
    milter_edit_t e;

    milter_edit_init(&e, head, sizeof(head) - 1);
    split(&e, "", "", false);
    milter_edit_insert(&e, 0, "Authentication-Results", "mx; dkim=pass", false);
    milter_edit_insert(&e, 0, "X-First", " lead", true);
    cr_assert(e.changed);
    split(&e, "X-First: lead\r\nAuthentication-Results: mx; dkim=pass\r\n", "", false);
    milter_edit_free(&e);
}

Test(milter_edit, other_edits_make_a_new_section)
{
    milter_edit_t e;

    milter_edit_init(&e, head, sizeof(head) - 1);
    milter_edit_insert(&e, 0, "X-Top", "t", false);
    milter_edit_add(&e, "X-Spam-Status", "No, score=1.0", false);
    milter_edit_change(&e, 2, "received", "", false);     /* the second Received goes */
    milter_edit_change(&e, 1, "Subject", "[tag] hello", false);
    milter_edit_insert(&e, 99, "X-Last", "l", false);     /* past the end: at the end */
    milter_edit_change(&e, 3, "Received", "new", false);  /* past the last: added */
    split(&e, "X-Top: t\r\n",
          "From: A <a@origin.test>\r\nSubject: [tag] hello\r\nReceived: one\r\n\tfolded\r\n"
          "X-Spam-Status: No, score=1.0\r\nX-Last: l\r\nReceived: new\r\n",
          true);
    milter_edit_free(&e);
    /* Deleting a field that is not there changes nothing. */
    milter_edit_init(&e, head, sizeof(head) - 1);
    milter_edit_change(&e, 1, "X-None", "", false);
    cr_assert(!e.changed);
    milter_edit_free(&e);
}

Test(milter_edit, values_become_header_lines)
{
    milter_edit_t e;

    milter_edit_init(&e, head, sizeof(head) - 1);
    /* LF and CRLF become CRLF, a bare CR goes, a line that would start a
     * field of its own is made a continuation, the last line end goes. */
    milter_edit_add(&e, "X-Multi", "a\nb\r\n c\rd\nInjected: yes\n", false);
    milter_edit_add(&e, "X-Empty", "", false);
    split(&e, "",
          "From: A <a@origin.test>\r\nSubject: hello\r\nReceived: one\r\n\tfolded\r\n"
          "Received: two\r\nX-Multi: a\r\n\tb\r\n cd\r\n\tInjected: yes\r\nX-Empty:\r\n",
          true);
    milter_edit_free(&e);
}
