#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "str.h"
#include "xtext.h"

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets, CRLF included. */
#define PROTO_REPLY_LINE_MAX 512

proto_line_status_t proto_next_line(const char *p, size_t len, size_t max, proto_line_t *out)
{
    size_t scan = len < max ? len : max;
    const char *lf = memchr(p, '\n', scan);
    size_t n;

    out->text = p;
    out->len = 0;
    out->consumed = 0;
    if (lf == NULL) {
        if (len < max)
            return PROTO_LINE_PARTIAL;
        out->consumed = max;
        return PROTO_LINE_LONG;
    }
    n = (size_t)(lf - p);
    out->consumed = n + 1;
    if (n == 0 || p[n - 1] != '\r') {
        out->len = n;
        return PROTO_LINE_BARE;
    }
    out->len = n - 1;
    /* A CR inside the line is as bare as a lone LF. */
    return memchr(p, '\r', n - 1) == NULL ? PROTO_LINE_OK : PROTO_LINE_BARE;
}

size_t proto_skip_line(const char *p, size_t len, bool *done)
{
    const char *lf = memchr(p, '\n', len);

    *done = lf != NULL;
    return lf != NULL ? (size_t)(lf - p) + 1 : len;
}

static const char *const proto_verbs[PROTO_NVERBS] = {
    [PROTO_UNKNOWN] = "unknown", [PROTO_EHLO] = "EHLO",         [PROTO_HELO] = "HELO",
    [PROTO_MAIL] = "MAIL",       [PROTO_RCPT] = "RCPT",         [PROTO_DATA] = "DATA",
    [PROTO_BDAT] = "BDAT",       [PROTO_RSET] = "RSET",         [PROTO_NOOP] = "NOOP",
    [PROTO_QUIT] = "QUIT",       [PROTO_HELP] = "HELP",         [PROTO_VRFY] = "VRFY",
    [PROTO_EXPN] = "EXPN",       [PROTO_STARTTLS] = "STARTTLS", [PROTO_AUTH] = "AUTH",
    [PROTO_ETRN] = "ETRN",       [PROTO_TURN] = "TURN",         [PROTO_HTTP] = "HTTP",
};

/* Requests a web client sends first: a browser or proxy probe, not mail. */
static const char *const proto_http_methods[] = {"GET", "POST",    "HEAD",
                                                 "PUT", "CONNECT", "OPTIONS"};

const char *proto_verb_name(proto_verb_t verb)
{
    return verb < PROTO_NVERBS ? proto_verbs[verb] : "unknown";
}

void proto_parse_command(const char *line, size_t len, proto_cmd_t *out)
{
    const char *space = memchr(line, ' ', len);
    size_t vlen = space != NULL ? (size_t)(space - line) : len;
    const char *arg = line + vlen;
    size_t alen = len - vlen;

    out->verb = PROTO_UNKNOWN;
    for (int v = PROTO_UNKNOWN + 1; v < PROTO_NVERBS; v++) {
        if (v != PROTO_HTTP && str_eq_ci_n(line, vlen, proto_verbs[v])) {
            out->verb = (proto_verb_t)v;
            break;
        }
    }
    if (out->verb == PROTO_UNKNOWN)
        for (size_t i = 0; i < sizeof(proto_http_methods) / sizeof(proto_http_methods[0]); i++)
            if (vlen == strlen(proto_http_methods[i]) &&
                memcmp(line, proto_http_methods[i], vlen) == 0)
                out->verb = PROTO_HTTP;
    while (alen > 0 && *arg == ' ') {
        arg++;
        alen--;
    }
    while (alen > 0 && (arg[alen - 1] == ' ' || arg[alen - 1] == '\t'))
        alen--;
    out->arg = arg;
    out->arg_len = alen;
}

/* "@a.example,@b.example:" before the mailbox (RFC 5321 4.1.2 A-d-l). */
static int proto_source_route(const char *s, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        if (i - start < 2 || s[start] != '@' || addr_domain_check(s + start + 1, i - start - 1) < 0)
            return PROTO_EADDR;
        start = i + 1;
    }
    return 0;
}

/* The "<...>" path at s[0..len); *used gets the bytes up to the '>'. */
static int proto_parse_path(const char *s, size_t len, size_t *used, proto_path_t *out)
{
    bool in_quote = false;
    size_t close = 0;
    const char *inner;
    size_t inner_len;

    memset(out, 0, sizeof(*out));
    if (len == 0 || s[0] != '<')
        return PROTO_ESYNTAX;
    for (size_t i = 1; i < len; i++) {
        if (in_quote && s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '"') {
            in_quote = !in_quote;
        } else if (s[i] == '>' && !in_quote) {
            close = i;
            break;
        }
    }
    if (close == 0)
        return PROTO_ESYNTAX;
    *used = close + 1;
    inner = s + 1;
    inner_len = close - 1;
    if (inner_len > 0 && inner[0] == '@') {
        const char *colon = memchr(inner, ':', inner_len);
        if (colon == NULL || proto_source_route(inner, (size_t)(colon - inner)) < 0)
            return PROTO_EADDR;
        out->source_route = true;
        inner_len -= (size_t)(colon + 1 - inner);
        inner = colon + 1;
        if (inner_len == 0)
            return PROTO_EADDR;
    }
    out->addr = inner;
    out->addr_len = inner_len;
    if (inner_len == 0)
        return 0;
    /* Local parts over 64 octets are taken (RFC 5321 4.5.3.1 asks not to
     * limit them): whatever the command line holds, up to ADDR_INPUT_MAX. */
    if (addr_parse_input(inner, inner_len, &out->parsed) == 0)
        return 0;
    if (!out->source_route && str_eq_ci_n(inner, inner_len, "postmaster")) {
        out->postmaster = true;
        return 0;
    }
    return PROTO_EADDR;
}

/* "FROM:" or "TO:", then optional spaces (a common client slip), then the
 * path; returns the bytes after the path through *rest. */
static int proto_parse_prefix_path(const char *arg, size_t len, const char *prefix,
                                   proto_path_t *path, const char **rest, size_t *rest_len)
{
    size_t plen = strlen(prefix), used = 0;
    int rc;

    if (len < plen || str_ncasecmp(arg, prefix, plen) != 0)
        return PROTO_ESYNTAX;
    arg += plen;
    len -= plen;
    while (len > 0 && *arg == ' ') {
        arg++;
        len--;
    }
    if ((rc = proto_parse_path(arg, len, &used, path)) < 0)
        return rc;
    *rest = arg + used;
    *rest_len = len - used;
    /* Parameters are separated from the path by a space. */
    if (*rest_len > 0 && **rest != ' ')
        return PROTO_ESYNTAX;
    return 0;
}

/* Next "KEYWORD[=value]" of the parameter list; false at its end. */
static bool proto_next_param(const char **p, size_t *len, const char **kw, size_t *kw_len,
                             const char **val, size_t *val_len, int *err)
{
    const char *s = *p, *end;
    size_t n = *len, tok;

    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    if (n == 0)
        return false;
    end = memchr(s, ' ', n);
    tok = end != NULL ? (size_t)(end - s) : n;
    *p = s + tok;
    *len = n - tok;
    *kw = s;
    *val = memchr(s, '=', tok);
    *kw_len = *val != NULL ? (size_t)(*val - s) : tok;
    if (*val != NULL) {
        (*val)++;
        *val_len = tok - *kw_len - 1;
    } else {
        *val_len = 0;
    }
    /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
    *err = 0;
    if (*kw_len == 0 || (*kw)[0] == '-')
        *err = PROTO_ESYNTAX;
    for (size_t i = 0; i < *kw_len; i++) {
        char c = (*kw)[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            *err = PROTO_ESYNTAX;
    }
    /* esmtp-value = 1*(%d33-60 / %d62-126) */
    if (*val != NULL && *val_len == 0)
        *err = PROTO_EVALUE;
    for (size_t i = 0; *val != NULL && i < *val_len; i++) {
        unsigned char c = (unsigned char)(*val)[i];
        if (c < 33 || c > 126 || c == '=')
            *err = PROTO_EVALUE;
    }
    return true;
}

static int proto_parse_size(const char *v, size_t n, uint64_t *out)
{
    uint64_t size = 0;

    if (n == 0 || n > 20)
        return PROTO_EVALUE;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return PROTO_EVALUE;
        /* Saturate: a declared size beyond any limit is refused as too big. */
        size = size > (UINT64_MAX - 9) / 10 ? UINT64_MAX : size * 10 + (uint64_t)(v[i] - '0');
    }
    *out = size;
    return 0;
}

/* Printable ASCII, space included: what may go into a header field. */
static bool proto_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

int proto_parse_mail(const char *arg, size_t len, proto_mail_t *out)
{
    const char *rest, *kw, *val;
    size_t rest_len, kw_len, val_len;
    int rc, err;

    memset(out, 0, sizeof(*out));
    if ((rc = proto_parse_prefix_path(arg, len, "FROM:", &out->path, &rest, &rest_len)) < 0)
        return rc;
    if (out->path.postmaster)
        return PROTO_EADDR;
    while (proto_next_param(&rest, &rest_len, &kw, &kw_len, &val, &val_len, &err)) {
        if (err < 0)
            return err;
        if (str_eq_ci_n(kw, kw_len, "SIZE")) {
            if (out->has_size || val == NULL || proto_parse_size(val, val_len, &out->size) < 0)
                return PROTO_EVALUE;
            out->has_size = true;
        } else if (str_eq_ci_n(kw, kw_len, "BODY")) {
            if (out->body != PROTO_BODY_NONE || val == NULL)
                return PROTO_EVALUE;
            if (str_eq_ci_n(val, val_len, "7BIT"))
                out->body = PROTO_BODY_7BIT;
            else if (str_eq_ci_n(val, val_len, "8BITMIME"))
                out->body = PROTO_BODY_8BITMIME;
            else
                return PROTO_EPARAM; /* BINARYMIME is not offered */
        } else if (str_eq_ci_n(kw, kw_len, "SMTPUTF8")) {
            if (out->smtputf8 || val != NULL)
                return PROTO_EVALUE;
            out->smtputf8 = true;
        } else if (str_eq_ci_n(kw, kw_len, "RET")) {
            if (out->ret != PROTO_RET_NONE || val == NULL)
                return PROTO_EVALUE;
            if (str_eq_ci_n(val, val_len, "FULL"))
                out->ret = PROTO_RET_FULL;
            else if (str_eq_ci_n(val, val_len, "HDRS"))
                out->ret = PROTO_RET_HDRS;
            else
                return PROTO_EVALUE;
        } else if (str_eq_ci_n(kw, kw_len, "ENVID")) {
            /* It goes into DSN header fields: printable ASCII only. */
            if (out->envid[0] != '\0' || val == NULL ||
                xtext_decode(val, val_len, out->envid, sizeof(out->envid)) <= 0 ||
                !proto_printable(out->envid))
                return PROTO_EVALUE;
        } else {
            return PROTO_EPARAM;
        }
    }
    return 0;
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static int proto_parse_notify(const char *val, size_t len, unsigned *out)
{
    size_t i = 0;

    *out = 0;
    while (i < len) {
        const char *comma = memchr(val + i, ',', len - i);
        size_t n = comma != NULL ? (size_t)(comma - (val + i)) : len - i;
        unsigned bit = str_eq_ci_n(val + i, n, "NEVER")     ? PROTO_NOTIFY_NEVER
                       : str_eq_ci_n(val + i, n, "SUCCESS") ? PROTO_NOTIFY_SUCCESS
                       : str_eq_ci_n(val + i, n, "FAILURE") ? PROTO_NOTIFY_FAILURE
                       : str_eq_ci_n(val + i, n, "DELAY")   ? PROTO_NOTIFY_DELAY
                                                            : 0;

        if (bit == 0 || (*out & bit) != 0)
            return PROTO_EVALUE;
        *out |= bit;
        i += n + (comma != NULL);
        if (comma != NULL && i == len)
            return PROTO_EVALUE;
    }
    /* NEVER stands alone. */
    if (*out == 0 || ((*out & PROTO_NOTIFY_NEVER) && *out != PROTO_NOTIFY_NEVER))
        return PROTO_EVALUE;
    return 0;
}

/* ORCPT=addr-type;xtext: the type an atom, the address printable once
 * decoded (UTF-8 allowed: RFC 6533's utf-8 type). */
static int proto_parse_orcpt(const char *val, size_t len, char *dst, size_t size)
{
    const char *semi = memchr(val, ';', len);
    size_t tlen = semi != NULL ? (size_t)(semi - val) : 0;
    long n;

    if (semi == NULL || tlen == 0 || tlen + 1 >= size)
        return PROTO_EVALUE;
    for (size_t i = 0; i < tlen; i++)
        if (!((val[i] >= 'a' && val[i] <= 'z') || (val[i] >= 'A' && val[i] <= 'Z') ||
              (val[i] >= '0' && val[i] <= '9') || val[i] == '-'))
            return PROTO_EVALUE;
    memcpy(dst, val, tlen + 1);
    n = xtext_decode(semi + 1, len - tlen - 1, dst + tlen + 1, size - tlen - 1);
    if (n <= 0 || str_has_ctl(dst + tlen + 1, (size_t)n))
        return PROTO_EVALUE;
    return 0;
}

void proto_notify_str(unsigned notify, char *dst, size_t size)
{
    snprintf(dst, size, "%s%s%s%s", (notify & PROTO_NOTIFY_NEVER) ? "NEVER" : "",
             (notify & PROTO_NOTIFY_SUCCESS) ? "SUCCESS," : "",
             (notify & PROTO_NOTIFY_FAILURE) ? "FAILURE," : "",
             (notify & PROTO_NOTIFY_DELAY) ? "DELAY," : "");
    if (dst[0] != '\0' && dst[strlen(dst) - 1] == ',')
        dst[strlen(dst) - 1] = '\0';
}

int proto_parse_rcpt(const char *arg, size_t len, proto_path_t *out, proto_rcpt_dsn_t *dsn)
{
    const char *rest, *kw, *val;
    size_t rest_len, kw_len, val_len;
    int rc, err;

    memset(dsn, 0, sizeof(*dsn));
    if ((rc = proto_parse_prefix_path(arg, len, "TO:", out, &rest, &rest_len)) < 0)
        return rc;
    if (out->addr_len == 0)
        return PROTO_ENULLRCPT;
    while (proto_next_param(&rest, &rest_len, &kw, &kw_len, &val, &val_len, &err)) {
        if (err < 0)
            return err;
        if (str_eq_ci_n(kw, kw_len, "NOTIFY")) {
            if (dsn->notify != 0 || val == NULL ||
                proto_parse_notify(val, val_len, &dsn->notify) < 0)
                return PROTO_EVALUE;
        } else if (str_eq_ci_n(kw, kw_len, "ORCPT")) {
            if (dsn->orcpt[0] != '\0' || val == NULL ||
                proto_parse_orcpt(val, val_len, dsn->orcpt, sizeof(dsn->orcpt)) < 0)
                return PROTO_EVALUE;
        } else {
            return PROTO_EPARAM;
        }
    }
    return 0;
}

const char *proto_strerror(int err)
{
    switch (err) {
    case PROTO_ESYNTAX:
        return "Syntax error in parameters or arguments";
    case PROTO_EADDR:
        return "Bad address syntax";
    case PROTO_EPARAM:
        return "Parameter not supported";
    case PROTO_EVALUE:
        return "Bad parameter value";
    case PROTO_ENULLRCPT:
        return "Null recipient not allowed";
    }
    return "Syntax error";
}

bool proto_helo_valid(const char *arg, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)arg[i] <= ' ' || (unsigned char)arg[i] >= 0x7f)
            return false;
    return true;
}

/* One reply line; text[0..n) is cut to fit 512 octets. */
static int proto_reply_line(buf_t *out, int code, const char *esc, const char *text, size_t n,
                            bool last)
{
    char head[32];
    int hlen = snprintf(head, sizeof(head), "%03d%c%s%s", code % 1000, last ? ' ' : '-',
                        esc != NULL ? esc : "", esc != NULL ? " " : "");
    char *dst;

    if (hlen < 0 || (size_t)hlen >= sizeof(head))
        return BUF_EFULL;
    if (n > PROTO_REPLY_LINE_MAX - 2 - (size_t)hlen)
        n = PROTO_REPLY_LINE_MAX - 2 - (size_t)hlen;
    if ((dst = buf_reserve(out, (size_t)hlen + n + 2)) == NULL)
        return BUF_EFULL;
    memcpy(dst, head, (size_t)hlen);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        dst[hlen + (int)i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    memcpy(dst + hlen + n, "\r\n", 2);
    buf_commit(out, (size_t)hlen + n + 2);
    return 0;
}

int proto_reply(buf_t *out, int code, const char *esc, const char *text)
{
    const char *line = text;

    for (;;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (proto_reply_line(out, code, esc, line, n, nl == NULL) < 0)
            return BUF_EFULL;
        if (nl == NULL)
            return 0;
        line = nl + 1;
    }
}

int proto_replyf(buf_t *out, int code, const char *esc, const char *fmt, ...)
{
    char text[PROTO_REPLY_LINE_MAX * 4];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return proto_reply(out, code, esc, text);
}

const char *proto_with(bool esmtp, bool tls, bool smtputf8)
{
    if (smtputf8)
        return tls ? "UTF8SMTPS" : "UTF8SMTP";
    if (!esmtp)
        return tls ? "SMTPS" : "SMTP";
    return tls ? "ESMTPS" : "ESMTP";
}

int proto_received(buf_t *out, const proto_received_t *r)
{
    char date[STR_DATE_SIZE];
    int rc;

    str_date(r->now, date, sizeof(date));
    rc = buf_printf(out, "Received: from %s (%s [%s%s])\r\n", r->helo != NULL ? r->helo : "unknown",
                    r->client_ptr, strchr(r->client_ip, ':') != NULL ? "IPv6:" : "", r->client_ip);
    if (rc == 0 && r->tls_version != NULL)
        rc = buf_printf(out, "\t(using %s with cipher %s (%d/%d bits))\r\n", r->tls_version,
                        r->tls_cipher, r->tls_bits, r->tls_bits);
    if (rc == 0)
        rc =
            buf_printf(out, "\tby %s (mxfwd) with %s id %s", r->hostname, r->protocol, r->queue_id);
    /* "for" only with one recipient: more would disclose the others. */
    if (rc == 0 && r->rcpt != NULL)
        rc = buf_printf(out, "\r\n\tfor <%s>", r->rcpt);
    if (rc == 0)
        rc = buf_printf(out, "; %s\r\n", date);
    return rc;
}
