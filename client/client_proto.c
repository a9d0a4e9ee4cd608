#include "client_proto.h"

#include <string.h>

#include "addr.h"
#include "str.h"
#include "xtext.h"

static bool client_proto_digit(char c)
{
    return c >= '0' && c <= '9';
}

void client_reply_init(client_reply_t *r, bool ehlo)
{
    r->code = 0;
    r->dsn[0] = '\0';
    r->text[0] = '\0';
    r->len = 0;
    r->nlines = 0;
    r->ehlo = ehlo;
    r->ext = 0;
    r->size_limit = 0;
}

/* Length of an enhanced status code of class cls at the start of s[0..n)
 * ("5.1.1", followed by a space or the end), or 0. */
static size_t client_proto_dsn_len(const char *s, size_t n, char cls)
{
    size_t i = 0;

    if (n < 5 || s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < n && i - start < 4 && client_proto_digit(s[i]))
            i++;
        if (i == start || i - start > 3)
            return 0;
        if (part == 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && s[i] != ' ')
        return 0;
    return i;
}

/* Append s[0..n) to the reply text, printable, cut to fit. */
static void client_proto_text_append(client_reply_t *r, const char *s, size_t n)
{
    size_t room = sizeof(r->text) - 1;
    size_t i = 0;

    while (i < n && r->len < room) {
        unsigned char c = (unsigned char)s[i];
        size_t k;

        if (c >= 0x20 && c < 0x7f) {
            r->text[r->len++] = (char)c;
            i++;
        } else if (c >= 0x80 && (k = str_utf8_len(s + i, n - i)) > 0) {
            if (r->len + k > room)
                break; /* never half a character */
            memcpy(r->text + r->len, s + i, k);
            r->len += k;
            i += k;
        } else {
            r->text[r->len++] = '?';
            i++;
        }
    }
    r->text[r->len] = '\0';
}

/* One line without its line end. */
static int client_proto_reply_line(client_reply_t *r, const char *line, size_t len)
{
    const char *t;
    size_t tlen, dlen;
    bool last;

    if (len < 3 || line[0] < '2' || line[0] > '5' || !client_proto_digit(line[1]) ||
        !client_proto_digit(line[2]))
        return CLIENT_REPLY_EBAD;
    if (len == 3 || line[3] == ' ')
        last = true;
    else if (line[3] == '-')
        last = false;
    else
        return CLIENT_REPLY_EBAD;
    if (r->nlines >= CLIENT_REPLY_LINES_MAX)
        return CLIENT_REPLY_ELONG;
    r->nlines++;

    t = len > 4 ? line + 4 : line + len;
    tlen = len > 4 ? len - 4 : 0;
    /* Postfix allows spaces between the code and the status code. */
    while (tlen > 0 && *t == ' ') {
        t++;
        tlen--;
    }
    if ((dlen = client_proto_dsn_len(t, tlen, line[0])) > 0 && dlen < sizeof(r->dsn)) {
        memcpy(r->dsn, t, dlen);
        r->dsn[dlen] = '\0';
    }
    if (r->ehlo && r->nlines > 1 && len > 4)
        r->ext |= client_ehlo_keyword(line + 4, len - 4, &r->size_limit);

    if (r->len > 0)
        client_proto_text_append(r, " ", 1);
    client_proto_text_append(r, line, len);
    if (!last)
        return CLIENT_REPLY_MORE;
    r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    /* A status code whose class is not the reply's is no status code. */
    if (r->dsn[0] != '\0' && r->dsn[0] != line[0])
        r->dsn[0] = '\0';
    return CLIENT_REPLY_DONE;
}

int client_reply_parse(client_reply_t *r, const char *p, size_t n, size_t *used)
{
    size_t pos = 0;

    *used = 0;
    while (pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        size_t len;
        int rc;

        if (nl == NULL)
            break;
        len = (size_t)(nl - (p + pos));
        if (len > 0 && p[pos + len - 1] == '\r')
            len--;
        rc = client_proto_reply_line(r, p + pos, len);
        pos = (size_t)(nl - p) + 1;
        if (rc != CLIENT_REPLY_MORE) {
            *used = pos;
            return rc;
        }
    }
    *used = pos;
    return CLIENT_REPLY_MORE;
}

const char *client_reply_dsn(const client_reply_t *r)
{
    if (r->dsn[0] != '\0')
        return r->dsn;
    switch (r->code / 100) {
    case 2:
        return "2.0.0";
    case 4:
        return "4.0.0";
    default:
        return "5.0.0";
    }
}

void client_reply_host(const client_reply_t *r, char *dst, size_t size)
{
    const char *s = r->len > 4 ? r->text + 4 : "";
    size_t n = strcspn(s, " ");

    if (size == 0)
        return;
    if (n >= size)
        n = size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

unsigned client_ehlo_keyword(const char *line, size_t len, uint64_t *size_limit)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {
        {"PIPELINING", CLIENT_EXT_PIPELINING},
        {"SIZE", CLIENT_EXT_SIZE},
        {"8BITMIME", CLIENT_EXT_8BITMIME},
        {"SMTPUTF8", CLIENT_EXT_SMTPUTF8},
        {"STARTTLS", CLIENT_EXT_STARTTLS},
        {"ENHANCEDSTATUSCODES", CLIENT_EXT_ENHANCEDSTATUSCODES},
        {"DSN", CLIENT_EXT_DSN},
    };
    size_t wlen = 0;

    while (wlen < len && line[wlen] != ' ')
        wlen++;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!str_eq_ci_n(line, wlen, words[i].word))
            continue;
        if (words[i].bit == CLIENT_EXT_SIZE) {
            uint64_t v = 0;
            size_t k = wlen;
            while (k < len && line[k] == ' ')
                k++;
            /* RFC 1870: a limit of 0, or none, means no fixed limit. */
            for (; k < len && client_proto_digit(line[k]); k++) {
                if (v > (UINT64_MAX - 9) / 10) {
                    v = 0;
                    break;
                }
                v = v * 10 + (uint64_t)(line[k] - '0');
            }
            if (k < len && line[k] != ' ')
                v = 0;
            *size_limit = v;
        }
        return words[i].bit;
    }
    return 0;
}

int client_mail_cmd(buf_t *out, const char *sender, const client_mail_params_t *p)
{
    size_t mark = out->len;
    int rc = buf_printf(out, "MAIL FROM:<%s>", sender);

    if (rc == 0 && p->size > 0)
        rc = buf_printf(out, " SIZE=%llu", (unsigned long long)p->size);
    if (rc == 0 && p->body_8bitmime)
        rc = buf_puts(out, " BODY=8BITMIME");
    if (rc == 0 && p->smtputf8)
        rc = buf_puts(out, " SMTPUTF8");
    if (rc == 0 && p->ret != 0)
        rc = buf_puts(out, p->ret == DELIVERY_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if (rc == 0 && p->envid != NULL && p->envid[0] != '\0') {
        rc = buf_puts(out, " ENVID=");
        if (rc == 0)
            rc = xtext_encode(out, p->envid, strlen(p->envid));
    }
    if (rc == 0)
        rc = buf_puts(out, "\r\n");
    if (rc != 0 && out->len > mark)
        out->len = mark; /* all or nothing */
    return rc;
}

int client_rcpt_cmd(buf_t *out, const char *addr, const client_rcpt_params_t *p)
{
    size_t mark = out->len;
    const char *semi;
    int rc = buf_printf(out, "RCPT TO:<%s>", addr);

    if (rc == 0 && p != NULL && p->notify != 0)
        rc = buf_printf(out, " NOTIFY=%s%s%s%s", (p->notify & DELIVERY_NOTIFY_NEVER) ? "NEVER" : "",
                        (p->notify & DELIVERY_NOTIFY_SUCCESS) ? "SUCCESS" : "",
                        (p->notify & DELIVERY_NOTIFY_FAILURE)
                            ? ((p->notify & DELIVERY_NOTIFY_SUCCESS) ? ",FAILURE" : "FAILURE")
                            : "",
                        (p->notify & DELIVERY_NOTIFY_DELAY)
                            ? ((p->notify & (DELIVERY_NOTIFY_SUCCESS | DELIVERY_NOTIFY_FAILURE))
                                   ? ",DELAY"
                                   : "DELAY")
                            : "");
    /* The type as it came, the address xtext-encoded (RFC 3461 4.2). */
    if (rc == 0 && p != NULL && p->orcpt != NULL && (semi = strchr(p->orcpt, ';')) != NULL) {
        rc = buf_printf(out, " ORCPT=%.*s", (int)(semi + 1 - p->orcpt), p->orcpt);
        if (rc == 0)
            rc = xtext_encode(out, semi + 1, strlen(semi + 1));
    }
    if (rc == 0)
        rc = buf_puts(out, "\r\n");
    if (rc != 0 && out->len > mark)
        out->len = mark;
    return rc;
}

bool client_addr_ok(const char *addr, bool null_ok)
{
    addr_t a;

    if (addr[0] == '\0')
        return null_ok;
    /* As the session took it: a long sender a bounce goes back to. */
    return addr_parse_input(addr, strlen(addr), &a) == 0;
}

void client_stuff_init(client_stuff_t *st)
{
    st->bol = true;
    st->cr = false;
}

int client_stuff(client_stuff_t *st, const char *in, size_t n, buf_t *out)
{
    char *dst, *d;

    if (n == 0)
        return 0;
    if ((dst = buf_reserve(out, CLIENT_STUFF_ROOM(n))) == NULL)
        return BUF_EFULL;
    d = dst;
    while (n > 0) {
        const char *lf;
        size_t seg;
        bool cr_before;

        if (st->bol && in[0] == '.')
            *d++ = '.';
        st->bol = false;
        if ((lf = memchr(in, '\n', n)) == NULL) {
            memcpy(d, in, n);
            d += n;
            st->cr = in[n - 1] == '\r';
            break;
        }
        seg = (size_t)(lf - in);
        memcpy(d, in, seg);
        d += seg;
        cr_before = seg > 0 ? in[seg - 1] == '\r' : st->cr;
        if (!cr_before)
            *d++ = '\r';
        *d++ = '\n';
        st->bol = true;
        st->cr = false;
        in += seg + 1;
        n -= seg + 1;
    }
    buf_commit(out, (size_t)(d - dst));
    return 0;
}

int client_stuff_end(client_stuff_t *st, buf_t *out)
{
    const char *end = st->bol ? ".\r\n" : st->cr ? "\n.\r\n" : "\r\n.\r\n";
    int rc = buf_puts(out, end);

    if (rc == 0) {
        st->bol = true;
        st->cr = false;
    }
    return rc;
}
