/* Test helper: build DNS messages byte by byte (RFC 1035 4.1). */
#ifndef MXFWD_TEST_DNSPKT_H
#define MXFWD_TEST_DNSPKT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    unsigned char b[8192];
    size_t n;
    size_t rdlen_at; /* where the open record's RDLENGTH goes */
} dnspkt_t;

static inline void dnspkt_u8(dnspkt_t *p, unsigned v)
{
    p->b[p->n++] = (unsigned char)v;
}

static inline void dnspkt_u16(dnspkt_t *p, unsigned v)
{
    dnspkt_u8(p, (v >> 8) & 0xff);
    dnspkt_u8(p, v & 0xff);
}

static inline void dnspkt_u32(dnspkt_t *p, uint32_t v)
{
    dnspkt_u16(p, v >> 16);
    dnspkt_u16(p, v & 0xffff);
}

/* A name in labels; "" is the root.  A name ending in '@' is followed by
 * a compression pointer to offset ptr instead of the root. */
static inline void dnspkt_name_ptr(dnspkt_t *p, const char *name, int ptr)
{
    const char *s = name;

    while (*s != '\0') {
        const char *dot = strchr(s, '.');
        size_t len = dot != NULL ? (size_t)(dot - s) : strlen(s);
        dnspkt_u8(p, (unsigned)len);
        memcpy(p->b + p->n, s, len);
        p->n += len;
        s += len;
        if (*s == '.')
            s++;
    }
    if (ptr >= 0)
        dnspkt_u16(p, 0xc000 | (unsigned)ptr);
    else
        dnspkt_u8(p, 0);
}

static inline void dnspkt_name(dnspkt_t *p, const char *name)
{
    dnspkt_name_ptr(p, name, -1);
}

/* Header (QR, RD, RA set) and the question. */
static inline void dnspkt_start(dnspkt_t *p, int rcode, const char *qname, unsigned qtype,
                                unsigned an, unsigned ns)
{
    p->n = 0;
    dnspkt_u16(p, 0x1234);
    dnspkt_u16(p, 0x8180 | (unsigned)rcode);
    dnspkt_u16(p, 1);
    dnspkt_u16(p, an);
    dnspkt_u16(p, ns);
    dnspkt_u16(p, 0);
    dnspkt_name(p, qname);
    dnspkt_u16(p, qtype);
    dnspkt_u16(p, 1);
}

/* Offset of the question name, for compression pointers. */
#define DNSPKT_QNAME 12

/* A record's fixed part; its RDATA follows, then dnspkt_end_rr(). */
static inline void dnspkt_rr(dnspkt_t *p, const char *owner, int owner_ptr, unsigned type,
                             uint32_t ttl)
{
    if (owner != NULL)
        dnspkt_name_ptr(p, owner, owner_ptr);
    else
        dnspkt_u16(p, 0xc000 | (unsigned)owner_ptr);
    dnspkt_u16(p, type);
    dnspkt_u16(p, 1);
    dnspkt_u32(p, ttl);
    p->rdlen_at = p->n;
    dnspkt_u16(p, 0);
}

static inline void dnspkt_end_rr(dnspkt_t *p)
{
    size_t len = p->n - p->rdlen_at - 2;

    p->b[p->rdlen_at] = (unsigned char)(len >> 8);
    p->b[p->rdlen_at + 1] = (unsigned char)(len & 0xff);
}

static inline void dnspkt_bytes(dnspkt_t *p, const void *data, size_t len)
{
    memcpy(p->b + p->n, data, len);
    p->n += len;
}

/* A TXT character-string. */
static inline void dnspkt_string(dnspkt_t *p, const char *s)
{
    dnspkt_u8(p, (unsigned)strlen(s));
    dnspkt_bytes(p, s, strlen(s));
}

#endif
