/*
 * milter_edit - a message's header section as milters see it and change
 * it (docs/milter.md, "Header changes").
 *
 * The section is split into fields; a filter's add, insert, change and
 * delete requests edit that list in the order they come, each index
 * counted in the list as it stands then (as Sendmail and Postfix apply
 * them).  The result has two parts (milter_edit_split()): the new fields
 * above all of the message's own, which go on top of the message (above
 * this hop's trace fields, as above Postfix's Received:), and the rest,
 * which is a new section only when it is not the message's own fields as
 * they came: it then replaces them, and they stay in the spool, skipped
 * (docs/spool.md, "K").
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

/*
 * The result: the fields put above the message's own (before all of
 * them) appended to top; and when the rest is not the message's own
 * fields as they came, the rest appended to section and true (it
 * replaces the message's section_len bytes of fields).
 */
bool milter_edit_split(const milter_edit_t *e, buf_t *top, buf_t *section);

#endif
