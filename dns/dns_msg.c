#include "dns_msg.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

/* RFC 1035 4.1 */
#define MSG_HEADER 12
#define MSG_RR_CNAME 5
#define MSG_RR_SOA 6
#define MSG_CLASS_IN 1
#define MSG_RCODE_NOERROR 0
#define MSG_RCODE_SERVFAIL 2
#define MSG_RCODE_NXDOMAIN 3
#define MSG_RCODE_REFUSED 5

/* ares_expand_name() writes "\DDD" for octets outside the printable set,
 * so a 255-octet wire name can take up to four times as many characters. */
#define MSG_NAME_BUF 1024

typedef struct {
    const unsigned char *buf; /* the whole message (compression pointers) */
    size_t len;
    size_t off; /* read position */
    size_t end; /* where the current section or RDATA ends */
} msg_t;

typedef struct {
    uint16_t type;
    uint16_t class;
    uint32_t ttl;
    size_t rdata; /* offset */
    uint16_t rdlen;
} msg_rr_t;

/* Records collected for the result, grown as they are found. */
typedef struct {
    dns_type_t type;
    void *items;
    size_t n, cap;
    size_t bytes;
} msg_builder_t;

static int dns_msg_u16(msg_t *m, uint16_t *v)
{
    if (m->end - m->off < 2)
        return -1;
    *v = (uint16_t)(m->buf[m->off] << 8 | m->buf[m->off + 1]);
    m->off += 2;
    return 0;
}

static int dns_msg_u32(msg_t *m, uint32_t *v)
{
    if (m->end - m->off < 4)
        return -1;
    *v = (uint32_t)m->buf[m->off] << 24 | (uint32_t)m->buf[m->off + 1] << 16 |
         (uint32_t)m->buf[m->off + 2] << 8 | m->buf[m->off + 3];
    m->off += 4;
    return 0;
}

/* Step over a name in place (its compression pointer is not followed). */
static int dns_msg_skip_name(msg_t *m)
{
    while (m->off < m->end) {
        unsigned char c = m->buf[m->off];
        if (c == 0) {
            m->off++;
            return 0;
        }
        if ((c & 0xc0) == 0xc0) {
            if (m->end - m->off < 2)
                return -1;
            m->off += 2;
            return 0;
        }
        if ((c & 0xc0) != 0) /* 0x40 and 0x80: extended label types, obsolete */
            return -1;
        m->off += 1 + (size_t)c;
    }
    return -1;
}

/* Decompress the name at m->off into out[MSG_NAME_BUF], lowercased, and
 * step over it.  The name's in-place part must end before m->end. */
static int dns_msg_name(msg_t *m, char *out)
{
    char *s = NULL;
    long enclen = 0;
    int rc = -1;

    if (m->off >= m->end)
        return -1;
    if (ares_expand_name(m->buf + m->off, m->buf, (int)m->len, &s, &enclen) != ARES_SUCCESS)
        return -1;
    if (enclen <= 0 || (size_t)enclen > m->end - m->off || str_lcpy(out, s, MSG_NAME_BUF) < 0)
        goto fail;
    str_lower(out);
    m->off += (size_t)enclen;
    rc = 0;
fail:
    ares_free_string(s);
    return rc;
}

/* The fixed part of a resource record after its owner name. */
static int dns_msg_rr(msg_t *m, msg_rr_t *rr)
{
    if (dns_msg_u16(m, &rr->type) < 0 || dns_msg_u16(m, &rr->class) < 0 ||
        dns_msg_u32(m, &rr->ttl) < 0 || dns_msg_u16(m, &rr->rdlen) < 0 ||
        rr->rdlen > m->end - m->off)
        return -1;
    /* RFC 2181 8: a TTL with the top bit set is read as zero. */
    if (rr->ttl > INT32_MAX)
        rr->ttl = 0;
    rr->rdata = m->off;
    m->off += rr->rdlen;
    return 0;
}

static size_t dns_msg_elem_size(dns_type_t type)
{
    switch (type) {
    case DNS_T_MX:
        return sizeof(dns_mx_t);
    case DNS_T_TXT:
        return sizeof(dns_txt_t);
    case DNS_T_PTR:
        return sizeof(char *);
    case DNS_T_A:
    case DNS_T_AAAA:
        return sizeof(dns_addr_t);
    }
    return 0;
}

static void *dns_msg_builder_add(msg_builder_t *b)
{
    size_t size = dns_msg_elem_size(b->type);

    if (b->n == b->cap)
        b->items = xgrow(b->items, &b->cap, b->n + 1, size);
    b->bytes += size;
    return (char *)b->items + b->n++ * size;
}

/* Decode one record's RDATA, of the builder's type, into the builder. */
static int dns_msg_rdata(const msg_t *whole, const msg_rr_t *rr, msg_builder_t *b)
{
    msg_t m = {whole->buf, whole->len, rr->rdata, rr->rdata + rr->rdlen};
    char name[MSG_NAME_BUF];

    switch (b->type) {
    case DNS_T_A:
    case DNS_T_AAAA: {
        dns_addr_t *a;
        size_t want = b->type == DNS_T_A ? sizeof(a->in.v4) : sizeof(a->in.v6);
        if (rr->rdlen != want)
            return -1;
        a = dns_msg_builder_add(b);
        memset(a, 0, sizeof(*a));
        a->family = b->type == DNS_T_A ? AF_INET : AF_INET6;
        memcpy(&a->in, m.buf + m.off, want);
        return 0;
    }
    case DNS_T_MX: {
        uint16_t pref;
        dns_mx_t *mx;
        if (dns_msg_u16(&m, &pref) < 0 || dns_msg_name(&m, name) < 0)
            return -1;
        mx = dns_msg_builder_add(b);
        mx->pref = pref;
        mx->host = xstrdup(name);
        b->bytes += strlen(name) + 1;
        return 0;
    }
    case DNS_T_PTR: {
        char **ptr;
        if (dns_msg_name(&m, name) < 0)
            return -1;
        ptr = dns_msg_builder_add(b);
        *ptr = xstrdup(name);
        b->bytes += strlen(name) + 1;
        return 0;
    }
    case DNS_T_TXT: {
        /* One or more <length><octets> strings, joined (RFC 7208 3.3,
         * RFC 6376 3.6.2.2). */
        char *text = xmalloc((size_t)rr->rdlen + 1);
        size_t len = 0;
        dns_txt_t *t;
        while (m.off < m.end) {
            size_t n = m.buf[m.off++];
            if (n > m.end - m.off) {
                free(text);
                return -1;
            }
            memcpy(text + len, m.buf + m.off, n);
            len += n;
            m.off += n;
        }
        text[len] = '\0';
        t = dns_msg_builder_add(b);
        t->text = text;
        t->len = len;
        b->bytes += (size_t)rr->rdlen + 1;
        return 0;
    }
    }
    return -1;
}

/* The negative-caching TTL from the SOA in the authority section: 0 when
 * there is none (RFC 2308 5: such answers are not cached). */
static uint32_t dns_msg_negative_ttl(msg_t *m, uint16_t nscount)
{
    for (uint16_t i = 0; i < nscount; i++) {
        msg_rr_t rr;
        if (dns_msg_skip_name(m) < 0 || dns_msg_rr(m, &rr) < 0)
            return 0;
        if (rr.type == MSG_RR_SOA && rr.class == MSG_CLASS_IN) {
            msg_t soa = {m->buf, m->len, rr.rdata, rr.rdata + rr.rdlen};
            uint32_t serial, refresh, retry, expire, minimum;
            if (dns_msg_skip_name(&soa) < 0 || dns_msg_skip_name(&soa) < 0 ||
                dns_msg_u32(&soa, &serial) < 0 || dns_msg_u32(&soa, &refresh) < 0 ||
                dns_msg_u32(&soa, &retry) < 0 || dns_msg_u32(&soa, &expire) < 0 ||
                dns_msg_u32(&soa, &minimum) < 0)
                return 0;
            if (minimum > INT32_MAX)
                minimum = 0;
            return rr.ttl < minimum ? rr.ttl : minimum;
        }
    }
    return 0;
}

static void dns_msg_items_free(dns_type_t type, void *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (type == DNS_T_MX)
            free(((dns_mx_t *)items)[i].host);
        else if (type == DNS_T_TXT)
            free(((dns_txt_t *)items)[i].text);
        else if (type == DNS_T_PTR)
            free(((char **)items)[i]);
    }
    free(items);
}

int dns_msg_parse(const unsigned char *abuf, size_t alen, const char *name, dns_type_t type,
                  dns_result_t **res, uint32_t *ttl)
{
    msg_t m = {abuf, alen, 0, alen};
    msg_builder_t b = {.type = type};
    uint16_t id, flags, qdcount, ancount, nscount, arcount;
    char cur[MSG_NAME_BUF], owner[MSG_NAME_BUF];
    uint32_t min_ttl = UINT32_MAX;
    unsigned chain = 0;
    int rcode;

    *res = NULL;
    *ttl = 0;
    if (dns_msg_elem_size(type) == 0)
        return DNS_EINVAL;
    if (alen < MSG_HEADER || dns_msg_u16(&m, &id) < 0 || dns_msg_u16(&m, &flags) < 0 ||
        dns_msg_u16(&m, &qdcount) < 0 || dns_msg_u16(&m, &ancount) < 0 ||
        dns_msg_u16(&m, &nscount) < 0 || dns_msg_u16(&m, &arcount) < 0)
        return DNS_EBADRESP;
    rcode = flags & 0x0f;
    if (rcode == MSG_RCODE_SERVFAIL)
        return DNS_ESERVFAIL;
    if (rcode == MSG_RCODE_REFUSED)
        return DNS_EREFUSED;
    if (rcode != MSG_RCODE_NOERROR && rcode != MSG_RCODE_NXDOMAIN)
        return DNS_EFAIL;

    for (uint16_t i = 0; i < qdcount; i++) {
        if (dns_msg_skip_name(&m) < 0 || m.end - m.off < 4)
            return DNS_EBADRESP;
        m.off += 4;
    }

    /* Follow the CNAME chain from the name asked about and take the
     * records of the type at its end.  Servers list the chain in order
     * (RFC 1034 4.3.2); c-ares' own parsers rely on that too. */
    if (str_lcpy(cur, name, sizeof(cur)) < 0)
        return DNS_EBADNAME;
    for (uint16_t i = 0; i < ancount; i++) {
        msg_rr_t rr;
        if (dns_msg_name(&m, owner) < 0 || dns_msg_rr(&m, &rr) < 0)
            goto bad;
        if (rr.class != MSG_CLASS_IN || strcmp(owner, cur) != 0)
            continue;
        if (rr.type == MSG_RR_CNAME) {
            msg_t target = {m.buf, m.len, rr.rdata, rr.rdata + rr.rdlen};
            if (++chain > DNS_MSG_CNAME_MAX || dns_msg_name(&target, cur) < 0)
                goto bad;
        } else if (rr.type == (uint16_t)type) {
            if (dns_msg_rdata(&m, &rr, &b) < 0)
                goto bad;
        } else {
            continue;
        }
        if (rr.ttl < min_ttl)
            min_ttl = rr.ttl;
    }

    if (rcode == MSG_RCODE_NXDOMAIN || b.n == 0) {
        dns_msg_items_free(type, b.items, b.n);
        *ttl = dns_msg_negative_ttl(&m, nscount);
        return rcode == MSG_RCODE_NXDOMAIN ? DNS_ENXDOMAIN : DNS_ENODATA;
    }
    *res = dns_msg_result_new(type, 0);
    (*res)->n = b.n;
    (*res)->u.mx = b.items;
    (*res)->bytes += b.bytes;
    *ttl = min_ttl;
    return 0;

bad:
    dns_msg_items_free(type, b.items, b.n);
    return DNS_EBADRESP;
}

int dns_msg_name_norm(const char *name, char *out)
{
    size_t len = strlen(name), label = 0;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return DNS_EBADNAME;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0)
                return DNS_EBADNAME;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return DNS_EBADNAME;
        } else {
            return DNS_EBADNAME;
        }
        out[i] = str_lower_c(c);
    }
    if (label == 0) /* "a.b.." */
        return DNS_EBADNAME;
    out[len] = '\0';
    return 0;
}

int dns_msg_ptr_name(const struct sockaddr *sa, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b;
    size_t pos = 0;

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        b = sin6->sin6_addr.s6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            if (size < 32 * 2 + sizeof("ip6.arpa"))
                return DNS_EINVAL;
            for (int i = 15; i >= 0; i--) {
                out[pos++] = hex[b[i] & 0x0f];
                out[pos++] = '.';
                out[pos++] = hex[b[i] >> 4];
                out[pos++] = '.';
            }
            memcpy(out + pos, "ip6.arpa", sizeof("ip6.arpa"));
            return 0;
        }
        b += 12; /* ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket */
    } else if (sa->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else {
        return DNS_EINVAL;
    }
    return str_fmt(out, size, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]) < 0 ? DNS_EINVAL
                                                                                      : 0;
}

dns_result_t *dns_msg_result_new(dns_type_t type, size_t n)
{
    dns_result_t *res = xcalloc(1, sizeof(*res));

    res->type = type;
    res->refs = 1;
    res->n = n;
    res->bytes = sizeof(*res) + n * dns_msg_elem_size(type);
    if (n > 0)
        res->u.mx = xcalloc(n, dns_msg_elem_size(type));
    return res;
}

int dns_msg_literal(const char *name, dns_type_t type, dns_result_t **res)
{
    dns_addr_t a;

    *res = NULL;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, name, &a.in.v4) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, name, &a.in.v6) == 1)
        a.family = AF_INET6;
    else
        return DNS_EBADNAME;
    if ((type == DNS_T_A) != (a.family == AF_INET))
        return DNS_ENODATA;
    *res = dns_msg_result_new(type, 1);
    (*res)->u.addr[0] = a;
    return 0;
}

dns_result_t *dns_msg_result_ref(dns_result_t *res)
{
    res->refs++;
    return res;
}

void dns_msg_result_unref(dns_result_t *res)
{
    if (res == NULL || --res->refs > 0)
        return;
    dns_msg_items_free(res->type, res->u.mx, res->n);
    free(res);
}
