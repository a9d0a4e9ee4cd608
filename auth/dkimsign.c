#include "dkimsign.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "str.h"

/* ARC's limit on instances (RFC 8617 4.2.1). */
#define DKIMSIGN_INSTANCE_MAX 50

const char *const dkimsign_usual_names[DKIMSIGN_USUAL_NNAMES] = {
    "From",        "To",          "Cc",
    "Subject",     "Date",        "Message-ID",
    "Reply-To",    "In-Reply-To", "References",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "List-Id",     "List-Unsubscribe", "List-Unsubscribe-Post",
    "Sender",
};

const char *dkimsign_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case DKIMSIGN_EINVAL:
        return "invalid signing parameters";
    case DKIMSIGN_ECRYPTO:
        return "hashing or signing failed";
    case BUF_EFULL:
        return "signature does not fit";
    }
    return "unknown error";
}

/* ---- the body hash ---- */

/* Where the hasher is: the header section's states, then the body. */
enum {
    DKIMSIGN_LINE_START, /* at the start of a header line */
    DKIMSIGN_IN_LINE,    /* inside a header line */
    DKIMSIGN_CR_START,   /* a CR at a line's start: an empty line if LF follows */
    DKIMSIGN_CR_IN_LINE, /* a CR inside a line: its end if LF follows */
    DKIMSIGN_IN_BODY,
};

static void dkimsign_body_out(void *arg, const char *p, size_t n)
{
    EVP_DigestUpdate(arg, p, n);
}

int dkimsign_body_init(dkimsign_body_t *b)
{
    memset(b, 0, sizeof(*b));
    b->md = EVP_MD_CTX_new();
    if (b->md == NULL || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(b->md);
        b->md = NULL;
        ERR_clear_error();
        return DKIMSIGN_ECRYPTO;
    }
    canon_body_init(&b->canon, CANON_RELAXED, dkimsign_body_out, b->md);
    b->state = DKIMSIGN_LINE_START;
    return 0;
}

void dkimsign_body_feed(dkimsign_body_t *b, const char *p, size_t n)
{
    size_t i = 0;

    /* As dkim.c reads it: only CRLF ends a line, and the first line with
     * nothing before its CRLF ends the header section. */
    while (i < n && b->state != DKIMSIGN_IN_BODY) {
        char c = p[i++];

        switch (b->state) {
        case DKIMSIGN_LINE_START:
            b->state = c == '\r' ? DKIMSIGN_CR_START : DKIMSIGN_IN_LINE;
            break;
        case DKIMSIGN_IN_LINE: {
            const char *cr = memchr(p + i - 1, '\r', n - i + 1);

            if (cr == NULL) {
                i = n;
            } else {
                i = (size_t)(cr - p) + 1;
                b->state = DKIMSIGN_CR_IN_LINE;
            }
            break;
        }
        case DKIMSIGN_CR_START:
            b->state = c == '\n' ? DKIMSIGN_IN_BODY
                       : c == '\r' ? DKIMSIGN_CR_IN_LINE
                                   : DKIMSIGN_IN_LINE;
            break;
        case DKIMSIGN_CR_IN_LINE:
            b->state = c == '\n' ? DKIMSIGN_LINE_START
                       : c == '\r' ? DKIMSIGN_CR_IN_LINE
                                   : DKIMSIGN_IN_LINE;
            break;
        }
    }
    if (b->state == DKIMSIGN_IN_BODY && i < n && b->md != NULL)
        canon_body_update(&b->canon, p + i, n - i);
}

int dkimsign_body_final(dkimsign_body_t *b, unsigned char bh[32])
{
    unsigned int len = 0;
    int rc = DKIMSIGN_ECRYPTO;

    if (b->md == NULL)
        goto done;
    canon_body_final(&b->canon);
    if (EVP_DigestFinal_ex(b->md, bh, &len) == 1 && len == 32)
        rc = 0;
    EVP_MD_CTX_free(b->md);
    b->md = NULL;
done:
    ERR_clear_error();
    return rc;
}

void dkimsign_body_free(dkimsign_body_t *b)
{
    EVP_MD_CTX_free(b->md);
    b->md = NULL;
}

/* ---- writing a folded field ---- */

typedef struct {
    buf_t *out;
    size_t col;
    int rc;
} dkimsign_writer_t;

static void dkimsign_put(dkimsign_writer_t *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = buf_append(w->out, s, n);
    w->col += n;
}

/* A token, after a space (or right after the previous one), on a new
 * folded line when it would pass the width. */
static void dkimsign_token(dkimsign_writer_t *w, const char *s, size_t n, bool space)
{
    if (w->col + (space ? 1 : 0) + n > DKIMSIGN_WIDTH && w->col > 1) {
        dkimsign_put(w, "\r\n ", 3);
        w->col = 1;
    } else if (space) {
        dkimsign_put(w, " ", 1);
    }
    dkimsign_put(w, s, n);
}

static void dkimsign_tag(dkimsign_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void dkimsign_tag(dkimsign_writer_t *w, const char *fmt, ...)
{
    char tmp[400];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        w->rc = BUF_EFULL;
        return;
    }
    dkimsign_token(w, tmp, (size_t)n, true);
}

/* Base64 that may be cut anywhere: as much as fits on each line. */
static void dkimsign_b64(dkimsign_writer_t *w, const char *s, size_t n)
{
    while (n > 0) {
        size_t room = w->col < DKIMSIGN_WIDTH ? DKIMSIGN_WIDTH - w->col : 0;

        if (room == 0) {
            dkimsign_put(w, "\r\n ", 3);
            w->col = 1;
            continue;
        }
        if (room > n)
            room = n;
        dkimsign_put(w, s, room);
        s += room;
        n -= room;
    }
}

/* ---- the signature ---- */

static const char *dkimsign_field_name(dkimsig_kind_t kind)
{
    return kind == DKIMSIG_SEAL  ? "ARC-Seal:"
           : kind == DKIMSIG_AMS ? "ARC-Message-Signature:"
                                 : "DKIM-Signature:";
}

/* The names h= lists: each name of the list present in fields, once per
 * instance, and From once more than it occurs (listed or not: RFC 6376
 * 5.4 requires it).  The count, or -1 when a name may not be signed or
 * there are too many. */
static int dkimsign_hnames(const dkimsign_t *p, const canon_field_t *fields, size_t nfields,
                           const char **h)
{
    static const char *const from[] = {"From"};
    const char *const *names = p->names ? p->names : dkimsign_usual_names;
    size_t nnames = p->names ? p->nnames : DKIMSIGN_USUAL_NNAMES, nh = 0;
    bool from_listed = false;

    for (size_t k = 0; k < nnames; k++)
        from_listed = from_listed || str_eq_ci(names[k], "From");
    if (!from_listed) { /* From first, as the usual set has it */
        dkimsign_t with_from = *p;
        int n;

        with_from.names = from;
        with_from.nnames = 1;
        if ((n = dkimsign_hnames(&with_from, fields, nfields, h)) < 0)
            return -1;
        nh = (size_t)n;
    }
    for (size_t k = 0; k < nnames; k++) {
        size_t count = 0;
        bool seen = false;

        if (p->kind == DKIMSIG_AMS &&
            (str_eq_ci(names[k], "ARC-Seal") || str_eq_ci(names[k], "Authentication-Results")))
            return -1;
        for (size_t j = 0; j < k && !seen; j++)
            seen = str_eq_ci(names[j], names[k]);
        if (seen || names[k][0] == '\0' || strchr(names[k], ':') != NULL)
            continue;
        for (size_t f = 0; f < nfields; f++)
            if (str_eq_ci_n(fields[f].ptr, canon_name_len(fields[f].ptr, fields[f].len), names[k]))
                count++;
        if (str_eq_ci(names[k], "From"))
            count++; /* oversigned: no From can be added */
        for (; count > 0; count--) {
            if (nh == DKIMSIG_HNAMES_MAX)
                return -1;
            h[nh++] = names[k];
        }
    }
    return (int)nh;
}

/* The field up to "b=" into w: the tags of the kind, in the usual order. */
static void dkimsign_head(dkimsign_writer_t *w, const dkimsign_t *p, const char *domain,
                          const char *selector, const char *const *h, size_t nh,
                          const unsigned char *bh)
{
    static const char *const cv[] = {"none", "pass", "fail"};
    const char *name = dkimsign_field_name(p->kind);
    char bh64[48];

    dkimsign_put(w, name, strlen(name));
    if (p->kind == DKIMSIG_DKIM)
        dkimsign_tag(w, "v=1;");
    else
        dkimsign_tag(w, "i=%u;", p->instance); /* first: RFC 8617 4.1.2 */
    dkimsign_tag(w, "a=%s;", dkimsig_alg_name(dkimkey_alg(p->key)));
    if (p->kind == DKIMSIG_SEAL)
        dkimsign_tag(w, "cv=%s;", cv[p->cv]);
    else
        dkimsign_tag(w, "c=relaxed/relaxed;");
    dkimsign_tag(w, "d=%s;", domain);
    dkimsign_tag(w, "s=%s;", selector);
    dkimsign_tag(w, "t=%llu;", (unsigned long long)p->time);
    if (p->kind != DKIMSIG_SEAL) {
        /* h= may fold after any colon (RFC 6376 3.5, sig-h-tag). */
        for (size_t k = 0; k < nh; k++) {
            char tmp[300];
            int n = snprintf(tmp, sizeof(tmp), "%s%s%s", k == 0 ? "h=" : "", h[k],
                             k + 1 < nh ? ":" : ";");

            if (n < 0 || (size_t)n >= sizeof(tmp))
                w->rc = BUF_EFULL;
            else
                dkimsign_token(w, tmp, (size_t)n, k == 0);
        }
        EVP_EncodeBlock((unsigned char *)bh64, bh, 32);
        dkimsign_tag(w, "bh=%s;", bh64);
    }
    dkimsign_tag(w, "b=");
}

/* What the signature covers: the selected (DKIM, AMS) or given (seal)
 * fields with their CRLFs, then its own field with b= empty, without. */
static int dkimsign_data(const dkimsign_t *p, const canon_field_t *fields, size_t nfields,
                         const char *const *h, size_t nh, const char *own, size_t own_len,
                         buf_t *data)
{
    int rc = 0;

    if (p->kind == DKIMSIG_SEAL) {
        for (size_t f = 0; f < nfields && rc == 0; f++)
            rc = canon_header(CANON_RELAXED, fields[f].ptr, fields[f].len, true, data);
    } else {
        rc = canon_select(CANON_RELAXED, fields, nfields, h, nh, data);
    }
    if (rc == 0)
        rc = canon_header(CANON_RELAXED, own, own_len, false, data);
    return rc < 0 ? BUF_EFULL : 0;
}

int dkimsign_sign(const dkimsign_t *p, const canon_field_t *fields, size_t nfields,
                  const unsigned char *bh, buf_t *out)
{
    const char *h[DKIMSIG_HNAMES_MAX];
    char domain[DKIMSIG_DOMAIN_MAX], selector[DKIMSIG_SELECTOR_MAX], b64[DKIMKEY_SIG_MAX * 4 / 3 + 4];
    unsigned char sig[DKIMKEY_SIG_MAX];
    size_t before = buf_used(out), sig_len, total = 64;
    dkimsign_writer_t w = {.out = out, .col = 0, .rc = 0};
    buf_t data;
    int nh = 0, rc = DKIMSIGN_EINVAL;

    buf_init(&data, 0);
    if (p->key == NULL || p->domain == NULL || p->selector == NULL ||
        addr_dns_name(p->domain, strlen(p->domain), domain, sizeof(domain)) < 0 ||
        addr_dns_name(p->selector, strlen(p->selector), selector, sizeof(selector)) < 0 ||
        (p->kind != DKIMSIG_DKIM &&
         (p->instance < 1 || p->instance > DKIMSIGN_INSTANCE_MAX)) ||
        (p->kind != DKIMSIG_SEAL && bh == NULL) || (unsigned)p->cv > DKIM_CV_FAIL)
        goto done;
    if (p->kind != DKIMSIG_SEAL && (nh = dkimsign_hnames(p, fields, nfields, h)) < 0)
        goto done;
    dkimsign_head(&w, p, domain, selector, h, (size_t)nh, bh);
    if ((rc = w.rc) < 0)
        goto done;
    for (size_t f = 0; f < nfields; f++)
        total += fields[f].len + 3;
    buf_free(&data);
    buf_init(&data, total + buf_used(out) - before);
    rc = dkimsign_data(p, fields, nfields, h, (size_t)nh, buf_ptr(out) + before,
                       buf_used(out) - before, &data);
    if (rc < 0)
        goto done;
    rc = DKIMSIGN_ECRYPTO;
    if (dkimkey_sign(p->key, buf_used(&data) ? buf_ptr(&data) : "", buf_used(&data), sig,
                     &sig_len) < 0)
        goto done;
    dkimsign_b64(&w, b64, (size_t)EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len));
    dkimsign_put(&w, "\r\n", 2);
    rc = w.rc;
done:
    if (rc < 0)
        out->len = out->off + before; /* nothing half-written */
    buf_free(&data);
    return rc;
}
