/*
 * milter_proto.c - milter packets as bytes (docs/milter.md): framing,
 * the MTA's commands, the filter's replies and its reply texts.
 */
#include "milter_proto.h"

#include <stdio.h>
#include <string.h>

#define MILTER_PROTO_NAME_MAX 256

static uint32_t milter_proto_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void milter_proto_put32(buf_t *b, uint32_t v)
{
    unsigned char u[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    buf_append(b, u, 4);
}

milter_frame_t milter_proto_frame(const char *p, size_t n, size_t max, size_t *len)
{
    uint32_t v;

    if (n < 4)
        return MILTER_FRAME_PARTIAL;
    v = milter_proto_be32(p);
    if (v == 0 || v > max)
        return MILTER_FRAME_BAD;
    if (n - 4 < v)
        return MILTER_FRAME_PARTIAL;
    *len = v;
    return MILTER_FRAME_OK;
}

/* ---- encoding ---- */

void milter_proto_put(buf_t *b, int cmd, const void *data, size_t n)
{
    char c = (char)cmd;

    milter_proto_put32(b, (uint32_t)(n + 1));
    buf_append(b, &c, 1);
    if (n > 0)
        buf_append(b, data, n);
}

void milter_proto_optneg(buf_t *b, uint32_t version, uint32_t actions, uint32_t protocol)
{
    char c = MILTER_C_OPTNEG;

    milter_proto_put32(b, 13);
    buf_append(b, &c, 1);
    milter_proto_put32(b, version);
    milter_proto_put32(b, actions);
    milter_proto_put32(b, protocol);
}

void milter_proto_strings(buf_t *b, int cmd, const char *const *s, size_t n)
{
    size_t len = 0;
    char c = (char)cmd;

    for (size_t i = 0; i < n; i++)
        len += strlen(s[i]) + 1;
    milter_proto_put32(b, (uint32_t)(len + 1));
    buf_append(b, &c, 1);
    for (size_t i = 0; i < n; i++)
        buf_append(b, s[i], strlen(s[i]) + 1);
}

void milter_proto_macros(buf_t *b, int stage, const char *const *nv, size_t n)
{
    size_t len = 1;
    char c = MILTER_C_MACRO, st = (char)stage;

    for (size_t i = 0; i < 2 * n; i++)
        len += strlen(nv[i]) + 1;
    milter_proto_put32(b, (uint32_t)(len + 1));
    buf_append(b, &c, 1);
    buf_append(b, &st, 1);
    for (size_t i = 0; i < 2 * n; i++)
        buf_append(b, nv[i], strlen(nv[i]) + 1);
}

void milter_proto_connect(buf_t *b, const char *host, int family, uint16_t port, const char *addr)
{
    size_t len = strlen(host) + 1 + 1;
    char c = MILTER_C_CONNECT, f = (char)family;
    unsigned char pt[2] = {(unsigned char)(port >> 8), (unsigned char)port};

    if (family != 'U')
        len += 2 + strlen(addr) + 1;
    milter_proto_put32(b, (uint32_t)(len + 1));
    buf_append(b, &c, 1);
    buf_append(b, host, strlen(host) + 1);
    buf_append(b, &f, 1);
    if (family != 'U') {
        buf_append(b, pt, 2);
        buf_append(b, addr, strlen(addr) + 1);
    }
}

/* ---- decoding ---- */

typedef struct {
    const char *p;
    size_t n;
} milter_proto_cur_t;

/* The NUL-terminated string at the cursor, or NULL when there is none. */
static const char *milter_proto_str(milter_proto_cur_t *c)
{
    const char *s = c->p, *nul = c->n > 0 ? memchr(c->p, '\0', c->n) : NULL;

    if (nul == NULL)
        return NULL;
    c->n -= (size_t)(nul - c->p) + 1;
    c->p = nul + 1;
    return s;
}

static bool milter_proto_u32(milter_proto_cur_t *c, uint32_t *v)
{
    if (c->n < 4)
        return false;
    *v = milter_proto_be32(c->p);
    c->p += 4;
    c->n -= 4;
    return true;
}

/* The negotiation reply: version, actions, steps, then the macro lists a
 * filter may ask for (stage, names). */
static int milter_proto_optneg_reply(milter_proto_cur_t *c, milter_reply_t *r)
{
    if (!milter_proto_u32(c, &r->version) || !milter_proto_u32(c, &r->actions) ||
        !milter_proto_u32(c, &r->protocol))
        return MILTER_EPROTO;
    while (c->n > 0) {
        uint32_t stage;
        const char *list;

        if (!milter_proto_u32(c, &stage) || (list = milter_proto_str(c)) == NULL)
            return MILTER_EPROTO;
        if (stage < MILTER_STAGES)
            r->symlist[stage] = list;
    }
    return 0;
}

int milter_proto_decode(const char *p, size_t n, milter_reply_t *r)
{
    milter_proto_cur_t c = {p + 1, n > 0 ? n - 1 : 0};

    memset(r, 0, sizeof(*r));
    if (n == 0)
        return MILTER_EPROTO;
    r->type = (unsigned char)p[0];
    switch (r->type) {
    case MILTER_R_ACCEPT:
    case MILTER_R_CONTINUE:
    case MILTER_R_DISCARD:
    case MILTER_R_CONN_FAIL:
    case MILTER_R_PROGRESS:
    case MILTER_R_REJECT:
    case MILTER_R_SKIP:
    case MILTER_R_TEMPFAIL:
        return c.n == 0 ? 0 : MILTER_EPROTO;
    case MILTER_R_OPTNEG:
        return milter_proto_optneg_reply(&c, r);
    case MILTER_R_REPLYCODE:
    case MILTER_R_QUARANTINE:
        r->text = milter_proto_str(&c);
        break;
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER:
        if (!milter_proto_u32(&c, &r->index))
            return MILTER_EPROTO;
        /* fall through */
    case MILTER_R_ADDHEADER:
        r->name = milter_proto_str(&c);
        r->value = milter_proto_str(&c);
        if (r->value == NULL)
            return MILTER_EPROTO;
        break;
    case MILTER_R_ADDRCPT:
    case MILTER_R_DELRCPT:
        r->addr = milter_proto_str(&c);
        break;
    case MILTER_R_ADDRCPT_PAR:
    case MILTER_R_CHGFROM:
        r->addr = milter_proto_str(&c);
        if (r->addr != NULL && c.n > 0 && (r->args = milter_proto_str(&c)) == NULL)
            return MILTER_EPROTO;
        if (r->args != NULL && r->args[0] == '\0')
            r->args = NULL;
        break;
    case MILTER_R_REPLBODY:
        r->body = c.p;
        r->body_len = c.n;
        return 0;
    default:
        return MILTER_EPROTO;
    }
    /* Every string present, and nothing after the last. */
    if ((r->text == NULL && r->name == NULL && r->addr == NULL) || c.n != 0)
        return MILTER_EPROTO;
    return 0;
}

/* ---- reply texts ---- */

/* "D.DDD.DDD" of class cls at s[0..n): its length, or 0. */
static size_t milter_proto_esc_len(const char *s, size_t n, char cls)
{
    size_t i = 0, digits;

    if (n < 5 || s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        for (digits = 0; i < n && s[i] >= '0' && s[i] <= '9' && digits < 3; i++)
            digits++;
        if (digits == 0)
            return 0;
        if (part == 0 && (i >= n || s[i++] != '.'))
            return 0;
    }
    return i == n || s[i] == ' ' ? i : 0;
}

int milter_proto_reply_text(const char *s, int *code, char esc[16], char *text, size_t size)
{
    size_t used = 0;
    int first = 0;

    esc[0] = '\0';
    if (size == 0)
        return MILTER_EPROTO;
    text[0] = '\0';
    for (;;) {
        const char *eol = strchr(s, '\n');
        size_t n = eol != NULL ? (size_t)(eol - s) : strlen(s), k, e;
        int c;
        char sep;

        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n < 3 || s[0] < '4' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' ||
            s[2] > '9')
            return MILTER_EPROTO;
        c = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        if (first != 0 && c != first)
            return MILTER_EPROTO;
        first = c;
        sep = n > 3 ? s[3] : ' ';
        /* Only the last line has a space (or nothing) after its code. */
        if ((sep != ' ' && sep != '-') || (sep == '-') != (eol != NULL && eol[1] != '\0'))
            return MILTER_EPROTO;
        k = n > 3 ? 4 : 3;
        e = milter_proto_esc_len(s + k, n - k, s[0]);
        if (e > 0 && e < 16) {
            if (esc[0] == '\0')
                snprintf(esc, 16, "%.*s", (int)e, s + k);
            k += e;
            if (k < n)
                k++;
        }
        if (used > 0 && used + 1 < size)
            text[used++] = '\n';
        for (; k < n && used + 1 < size; k++)
            text[used++] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
        text[used] = '\0';
        if (eol == NULL || eol[1] == '\0')
            break;
        s = eol + 1;
    }
    *code = first;
    return 0;
}

bool milter_proto_header_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > MILTER_PROTO_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 33 || (unsigned char)name[i] > 126 || name[i] == ':')
            return false;
    return true;
}

const char *milter_proto_reply_name(int type)
{
    switch (type) {
    case MILTER_R_ADDRCPT:
    case MILTER_R_ADDRCPT_PAR:
        return "add recipient";
    case MILTER_R_DELRCPT:
        return "delete recipient";
    case MILTER_R_ACCEPT:
        return "accept";
    case MILTER_R_REPLBODY:
        return "replace body";
    case MILTER_R_CONTINUE:
        return "continue";
    case MILTER_R_DISCARD:
        return "discard";
    case MILTER_R_CHGFROM:
        return "change sender";
    case MILTER_R_CONN_FAIL:
        return "connection failure";
    case MILTER_R_ADDHEADER:
        return "add header";
    case MILTER_R_INSHEADER:
        return "insert header";
    case MILTER_R_CHGHEADER:
        return "change header";
    case MILTER_R_OPTNEG:
        return "negotiation";
    case MILTER_R_PROGRESS:
        return "progress";
    case MILTER_R_QUARANTINE:
        return "quarantine";
    case MILTER_R_REJECT:
        return "reject";
    case MILTER_R_SKIP:
        return "skip";
    case MILTER_R_TEMPFAIL:
        return "tempfail";
    case MILTER_R_REPLYCODE:
        return "reply code";
    }
    return "unknown";
}

const char *milter_proto_strerror(int err)
{
    switch (err) {
    case MILTER_EPROTO:
        return "malformed or unexpected packet";
    case MILTER_ETOOBIG:
        return "packet too long";
    case MILTER_ETIMEOUT:
        return "timed out";
    case MILTER_ECLOSED:
        return "connection closed by the filter";
    case MILTER_ENEGOTIATE:
        return "negotiation failed";
    case MILTER_ECONNECT:
        return "cannot connect";
    }
    return "unknown milter error";
}
