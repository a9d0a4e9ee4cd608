/*
 * tagval - the "tag=value" list syntax of DKIM signatures and key records
 * (RFC 6376 3.2), which DMARC records borrow (RFC 7489 6.3).
 *
 * tagval_parse() splits s[0..len) into tags without copying: every name and
 * value points into the caller's bytes, which must outlive the list.
 * Values have their surrounding white space (including header folding)
 * removed; white space inside a value is kept, callers that need it gone
 * (base64, header lists) strip it themselves.
 *
 * Strict mode is DKIM's: any malformed tag-spec, a duplicate tag or more
 * than TAGVAL_MAX tags fails the whole list.  Lenient mode is DMARC's
 * ("syntax errors in the remainder of the record SHOULD be ... ignored
 * outright"): malformed tag-specs and repeats of a tag are skipped.
 */
#ifndef MXFWD_TAGVAL_H
#define MXFWD_TAGVAL_H

#include <stdbool.h>
#include <stddef.h>

#define TAGVAL_MAX 32

/* The tagval band of error codes (docs/development.md, "Error codes"). */
#define TAGVAL_EBASE (-16000)
#define TAGVAL_ESYNTAX (TAGVAL_EBASE - 1) /* a tag-spec is not name=value */
#define TAGVAL_EDUP (TAGVAL_EBASE - 2)    /* the same tag twice */
#define TAGVAL_EMANY (TAGVAL_EBASE - 3)   /* more than TAGVAL_MAX tags */

typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* trimmed */
    size_t value_len;
    /* Offsets in the input of everything after '=' up to the ';' or the
     * end: the span DKIM blanks out of "b=" (RFC 6376 3.7). */
    size_t raw_start, raw_end;
} tagval_tag_t;

typedef struct {
    tagval_tag_t tag[TAGVAL_MAX];
    size_t n;
} tagval_list_t;

int tagval_parse(const char *s, size_t len, bool lenient, tagval_list_t *out);

/* The tag called name (case-sensitive, as RFC 6376 3.2 says), or NULL. */
const tagval_tag_t *tagval_get(const tagval_list_t *list, const char *name);

/* Whether the tag's value equals word exactly / ignoring ASCII case. */
bool tagval_is(const tagval_tag_t *tag, const char *word);
bool tagval_is_ci(const tagval_tag_t *tag, const char *word);

/* Copy value into dst[size] without any white space (base64 and colon
 * lists may be folded).  Returns the length, or -1 when it did not fit. */
int tagval_copy_nows(const tagval_tag_t *tag, char *dst, size_t size);

const char *tagval_strerror(int err);

#endif
