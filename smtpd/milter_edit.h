/*
 * milter_edit - a message's header section as milters see it and change
 * it (docs/milter.md, "Header changes").
 *
 * The section is split into fields; a filter's add, insert, change and
 * delete requests edit that list in the order they come, each index
 * counted in the list as it stands then (as Sendmail and Postfix apply
 * them).  The result is either new fields above the message's own, all
 * of them untouched (milter_edit_top(): they go on top, the message is
 * sent as it came), or a whole new section (milter_edit_write(): it
 * replaces the message's own, which stays in the spool and is skipped,
 * docs/spool.md "K").
 *
 * Pure: the section's bytes are borrowed (they must outlive the edit),
 * fields made by edits are owned.  Values from a filter are made into
 * header lines here: LF or CRLF line ends become CRLF, a bare CR goes,
 * and every line after the first starts with white space, so no value
 * can start a field of its own.
 */
#ifndef MXFWD_MILTER_EDIT_H
#define MXFWD_MILTER_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct {
    const char *ptr; /* the field, its final CRLF included */
    size_t len;
    char *own;       /* ptr's memory when an edit made the field */
    long orig;       /* its place among the message's own fields; -1: made by an edit */
} milter_edit_field_t;

typedef struct {
    milter_edit_field_t *f;
    size_t n, cap;
    size_t norig;       /* the message's own fields */
    size_t section_len; /* their bytes: what a rewritten section replaces */
    bool changed;       /* some edit was made */
} milter_edit_t;

/*
 * The fields of the header section at p[0..n) (the bytes before the empty
 * line, or the whole message when it has none), as a receiver reads them:
 * the section ends at the first line that is neither a field nor a
 * continuation, or at a field cut off by the end of p.
 */
void milter_edit_init(milter_edit_t *e, const char *p, size_t n);
void milter_edit_free(milter_edit_t *e);

/*
 * Field i's name (white space before the colon dropped) and value, as a
 * filter is given them: the value's line breaks as LF, its leading white
 * space dropped unless leadspc (SMFIP_HDR_LEADSPC).  Both NUL-terminated
 * in name and value (reset first).
 */
void milter_edit_name_value(const milter_edit_field_t *f, bool leadspc, buf_t *name,
                            buf_t *value);

/* The requests (leadspc: the value carries its own leading space).
 * add: after the last field; insert: before field index (0: on top;
 * past the end: after the last); change: the index-th field named name
 * (1-based; a value of "" deletes it; past the last such field: added
 * as add does). */
void milter_edit_add(milter_edit_t *e, const char *name, const char *value, bool leadspc);
void milter_edit_insert(milter_edit_t *e, uint32_t index, const char *name, const char *value,
                        bool leadspc);
void milter_edit_change(milter_edit_t *e, uint32_t index, const char *name, const char *value,
                        bool leadspc);

/* When every edit only put fields above the message's own, which are all
 * there as they came: true and those fields appended to top. */
bool milter_edit_top(const milter_edit_t *e, buf_t *top);
/* The whole edited section (each field with its CRLF), appended to out. */
void milter_edit_write(const milter_edit_t *e, buf_t *out);

#endif
