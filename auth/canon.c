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
