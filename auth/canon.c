#include "canon.h"

#include <string.h>

#include "str.h"

static bool canon_is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

int canon_header(canon_t type, const char *field, size_t len, bool crlf, buf_t *out)
{
    const char *colon;
    size_t name_len, i;
    bool space = false, started = false;
    char *dst;

    if (type == CANON_SIMPLE) {
        if (buf_append(out, field, len) < 0)
            return BUF_EFULL;
        return crlf ? buf_append(out, "\r\n", 2) : 0;
    }

    colon = memchr(field, ':', len);
    if (colon == NULL) /* not a header field; nothing selects it */
        return 0;
    name_len = (size_t)(colon - field);
    while (name_len > 0 && canon_is_wsp(field[name_len - 1]))
        name_len--;
    /* The value can only shrink: reserve the raw length plus ":" CRLF. */
    dst = buf_reserve(out, len + 3);
    if (dst == NULL)
        return BUF_EFULL;
    for (i = 0; i < name_len; i++)
        dst[i] = str_lower_c(field[i]);
    dst[i++] = ':';
    for (const char *p = colon + 1; p < field + len; p++) {
        if (*p == '\r' || *p == '\n') /* unfolding */
            continue;
        if (canon_is_wsp(*p)) {
            space = true;
            continue;
        }
        if (space && started)
            dst[i++] = ' ';
        space = false;
        started = true;
        dst[i++] = *p;
    }
    if (crlf) {
        dst[i++] = '\r';
        dst[i++] = '\n';
    }
    buf_commit(out, i);
    return 0;
}

bool canon_is_field_start(const char *line, size_t len)
{
    size_t i = 0;

    while (i < len && (unsigned char)line[i] > 32 && (unsigned char)line[i] < 127 && line[i] != ':')
        i++;
    if (i == 0)
        return false;
    while (i < len && canon_is_wsp(line[i]))
        i++;
    return i < len && line[i] == ':';
}

size_t canon_name_len(const char *field, size_t len)
{
    const char *colon = memchr(field, ':', len);
    size_t n;

    if (colon == NULL)
        return 0;
    n = (size_t)(colon - field);
    while (n > 0 && canon_is_wsp(field[n - 1]))
        n--;
    return n;
}

int canon_select(canon_t type, const canon_field_t *fields, size_t nfields,
                 const char *const *names, size_t nnames, buf_t *out)
{
    /* Where the search for each name stopped: the next instance of the
     * same name is looked for above it (python3-dkim's lastindex, without
     * a flag per field). */
    size_t next[CANON_SELECT_MAX];
    int rc = 0;

    if (nnames > CANON_SELECT_MAX)
        return -1;
    for (size_t k = 0; k < nnames && rc == 0; k++) {
        size_t f = nfields;

        for (size_t j = k; j-- > 0;) {
            if (str_eq_ci(names[j], names[k])) {
                f = next[j];
                break;
            }
        }
        while (f > 0) {
            f--;
            if (str_eq_ci_n(fields[f].ptr, canon_name_len(fields[f].ptr, fields[f].len),
                            names[k])) {
                rc = canon_header(type, fields[f].ptr, fields[f].len, true, out);
                break;
            }
        }
        next[k] = f;
    }
    return rc;
}

int canon_header_blank(canon_t type, const char *field, size_t len, size_t b_start, size_t b_end,
                       buf_t *out)
{
    buf_t self;
    int rc = BUF_EFULL;

    buf_init(&self, len);
    if (buf_append(&self, field, b_start) == 0 &&
        buf_append(&self, field + b_end, len - b_end) == 0)
        rc = canon_header(type, buf_used(&self) ? buf_ptr(&self) : "", buf_used(&self), false, out);
    buf_free(&self);
    return rc;
}

void canon_body_init(canon_body_t *c, canon_t type, canon_out_fn out, void *arg)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->out = out;
    c->arg = arg;
}

static void canon_pay_owed(canon_body_t *c)
{
    static const char crlfs[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
    const uint64_t per = (sizeof(crlfs) - 1) / 2;

    while (c->crlf_owed > 0) {
        uint64_t k = c->crlf_owed < per ? c->crlf_owed : per;

        c->out(c->arg, crlfs, (size_t)k * 2);
        c->crlf_owed -= k;
    }
    if (c->wsp_owed) {
        c->out(c->arg, " ", 1);
        c->wsp_owed = false;
    }
}

/* Text that is neither white space (for relaxed) nor a line end. */
static void canon_text(canon_body_t *c, const char *p, size_t n)
{
    canon_pay_owed(c);
    c->out(c->arg, p, n);
    c->any = true;
}

void canon_body_update(canon_body_t *c, const char *p, size_t n)
{
    const bool relaxed = c->type == CANON_RELAXED;
    size_t i = 0;

    while (i < n) {
        char ch = p[i];

        if (c->cr) {
            c->cr = false;
            if (ch == '\n') {
                c->wsp_owed = false; /* relaxed: white space at line end goes */
                c->crlf_owed++;
                i++;
                continue;
            }
            canon_text(c, "\r", 1); /* a bare CR is text */
        }
        if (ch == '\r') {
            c->cr = true;
            i++;
        } else if (relaxed && canon_is_wsp(ch)) {
            c->wsp_owed = true;
            i++;
        } else {
            size_t j = i + 1;

            while (j < n && p[j] != '\r' && !(relaxed && canon_is_wsp(p[j])))
                j++;
            canon_text(c, p + i, j - i);
            i = j;
        }
    }
}

void canon_body_final(canon_body_t *c)
{
    if (c->cr) {
        c->cr = false;
        canon_text(c, "\r", 1);
    }
    c->wsp_owed = false;
    if (c->any)
        c->out(c->arg, "\r\n", 2);
    else if (c->type == CANON_SIMPLE)
        c->out(c->arg, "\r\n", 2);
    c->crlf_owed = 0;
}
