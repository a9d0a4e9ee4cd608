/*
 * The spool's record format, pure: encoding envelopes, state updates and
 * journal record headers, CRC-32C, and parsing a message image (or a
 * file's head and trailer) back into a spool_msg_t, which is made and
 * freed here.  No I/O; see spool_record.h for the layout and
 * docs/spool.md for the reasoning.
 */
#include "spool_record.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

/* ---- Numbers and names ---- */

bool spool_record_hex(const char *s, int n, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v = v << 4 | (uint64_t)(c - 'A' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}

void spool_record_format_hex(uint64_t v, int n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";

    for (int i = n - 1; i >= 0; i--) {
        out[i] = hex[v & 0xf];
        v >>= 4;
    }
    out[n] = '\0';
}

void spool_record_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t spool_record_be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- Encoding ---- */

/* The buffers here have no cap that matters (SIZE_MAX): appends cannot fail. */
static void spool_record_put(buf_t *b, const void *p, size_t n)
{
    if (buf_append(b, p, n) != 0)
        abort();
}

static void spool_record_put_u8(buf_t *b, unsigned v)
{
    unsigned char c = (unsigned char)v;

    spool_record_put(b, &c, 1);
}

static void spool_record_put_u32(buf_t *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    spool_record_put(b, p, 4);
}

static void spool_record_put_u64(buf_t *b, uint64_t v)
{
    unsigned char p[8];

    spool_record_put_be64(p, v);
    spool_record_put(b, p, 8);
}

/* A string inside a payload: 4-byte length, bytes. */
static void spool_record_put_str(buf_t *b, const char *s)
{
    size_t n = strlen(s);

    spool_record_put_u32(b, (uint32_t)n);
    spool_record_put(b, s, n);
}

static void spool_record_put_rec(buf_t *b, int type, const void *p, size_t n)
{
    spool_record_put_u8(b, (unsigned)type);
    spool_record_put_u64(b, n);
    spool_record_put(b, p, n);
}

static void spool_record_put_rec_str(buf_t *b, int type, const char *s)
{
    spool_record_put_rec(b, type, s, strlen(s));
}

void spool_record_put_header(buf_t *b, uint64_t body_len)
{
    spool_record_put(b, SPOOL__MAGIC, SPOOL__MAGIC_LEN);
    spool_record_put_u8(b, SPOOL__REC_BODY);
    spool_record_put_u64(b, body_len);
}

static const char *spool_record_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static bool spool_record_str_ok(const char *s)
{
    return s == NULL || strlen(s) <= SPOOL_STR_MAX;
}

static int spool_record_check_env(const spool_envelope_t *env)
{
    if (env->sender == NULL || env->srs_sender == NULL || env->nrcpts == 0 ||
        env->nrcpts > UINT32_MAX || env->prepend_len > SPOOL_PREPEND_MAX ||
        (env->prepend_len > 0 && env->prepend == NULL))
        return SPOOL_EINVAL;
    if (!spool_record_str_ok(env->client) || !spool_record_str_ok(env->helo) ||
        !spool_record_str_ok(env->sender) || !spool_record_str_ok(env->srs_sender))
        return SPOOL_EINVAL;
    if (env->ret > SPOOL_RET_HDRS ||
        (env->envid != NULL && strlen(env->envid) > SPOOL_ENVID_MAX))
        return SPOOL_EINVAL;
    for (size_t i = 0; i < env->nrcpts; i++) {
        const spool_env_rcpt_t *r = &env->rcpts[i];

        if (r->addr == NULL || r->addr[0] == '\0' || !spool_record_str_ok(r->addr) ||
            !spool_record_str_ok(r->orig) || !spool_record_str_ok(r->orcpt) || r->notify > 0xf)
            return SPOOL_EINVAL;
    }
    return 0;
}

int spool_record_encode_trailer(buf_t *b, const char *id, int64_t arrival_us,
                                const spool_envelope_t *env)
{
    buf_t r;
    int err = spool_record_check_env(env);

    if (err != 0)
        return err;
    spool_record_put_rec_str(b, SPOOL__REC_ID, id);
    spool_record_put_u8(b, SPOOL__REC_TIME);
    spool_record_put_u64(b, 8);
    spool_record_put_u64(b, (uint64_t)arrival_us);
    spool_record_put_rec_str(b, SPOOL__REC_CLIENT, spool_record_or_empty(env->client));
    spool_record_put_rec_str(b, SPOOL__REC_HELO, spool_record_or_empty(env->helo));
    spool_record_put_rec_str(b, SPOOL__REC_SENDER, env->sender);
    spool_record_put_rec_str(b, SPOOL__REC_SRS, env->srs_sender);
    spool_record_put_u8(b, SPOOL__REC_FLAGS);
    spool_record_put_u64(b, 4);
    spool_record_put_u32(b, env->flags);
    spool_record_put_rec(b, SPOOL__REC_PREPEND, env->prepend, env->prepend_len);
    if (env->body_skip > 0) {
        /* Only when there is one: older spools never have it. */
        spool_record_put_u8(b, SPOOL__REC_SKIP);
        spool_record_put_u64(b, 8);
        spool_record_put_u64(b, env->body_skip);
    }
    buf_init(&r, SIZE_MAX);
    if (env->ret != 0 || (env->envid != NULL && env->envid[0] != '\0')) {
        /* Only when MAIL had them: older spools never have it. */
        spool_record_put_u8(&r, env->ret);
        spool_record_put_str(&r, spool_record_or_empty(env->envid));
        spool_record_put_rec(b, SPOOL__REC_DSN, buf_ptr(&r), buf_used(&r));
    }
    for (size_t i = 0; i < env->nrcpts; i++) {
        const spool_env_rcpt_t *e = &env->rcpts[i];

        buf_reset(&r);
        spool_record_put_str(&r, e->addr);
        spool_record_put_str(&r, spool_record_or_empty(e->orig));
        spool_record_put_rec(b, SPOOL__REC_RCPT, buf_ptr(&r), buf_used(&r));
        if (e->notify != 0 || (e->orcpt != NULL && e->orcpt[0] != '\0')) {
            buf_reset(&r);
            spool_record_put_u32(&r, (uint32_t)i);
            spool_record_put_u8(&r, e->notify);
            spool_record_put_str(&r, spool_record_or_empty(e->orcpt));
            spool_record_put_rec(b, SPOOL__REC_RCPT_DSN, buf_ptr(&r), buf_used(&r));
        }
    }
    buf_free(&r);
    spool_record_put_rec(b, SPOOL__REC_END, NULL, 0);
    return 0;
}

/*
 * CRC-32C (Castagnoli).  It tells a whole record from a torn one on file
 * systems that may show zeros or stale bytes after a crash mid-append:
 * update records, and journal records of whole messages (up to 256 KiB),
 * so it is computed on the pass's thread and has to be quick.  On x86-64
 * with SSE4.2 (every x86-64 CPU since 2008) the processor's crc32
 * instruction does it, eight bytes at a time, about ten times faster than
 * the portable way: eight bytes a round with eight tables (2 KiB each,
 * made once).  Both give the same values (tests/unit/test_spool_record.c).
 */
static uint32_t spool_record_crc_table[8][256];
static pthread_once_t spool_record_crc_once = PTHREAD_ONCE_INIT;
typedef uint32_t spool_record_crc_fn_t(const void *p, size_t n);
static spool_record_crc_fn_t *spool_record_crc_fn;
static void spool_record_crc_init(void);

uint32_t spool_record_crc32c_portable(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t crc = 0xffffffffu;

    pthread_once(&spool_record_crc_once, spool_record_crc_init);
    for (; n >= 8; s += 8, n -= 8) {
        uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
                             (uint32_t)s[3] << 24);

        crc = spool_record_crc_table[7][lo & 0xff] ^ spool_record_crc_table[6][(lo >> 8) & 0xff] ^
              spool_record_crc_table[5][(lo >> 16) & 0xff] ^ spool_record_crc_table[4][lo >> 24] ^
              spool_record_crc_table[3][s[4]] ^ spool_record_crc_table[2][s[5]] ^
              spool_record_crc_table[1][s[6]] ^ spool_record_crc_table[0][s[7]];
    }
    while (n--)
        crc = (crc >> 8) ^ spool_record_crc_table[0][(crc ^ *s++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t spool_record_crc32c_sse42(const void *p,
                                                                             size_t n)
{
    const unsigned char *s = p;
    uint64_t crc = 0xffffffffu;

    for (; n >= 8; s += 8, n -= 8) {
        uint64_t v;

        memcpy(&v, s, sizeof(v));
        crc = __builtin_ia32_crc32di(crc, v);
    }
    while (n--)
        crc = __builtin_ia32_crc32qi((uint32_t)crc, *s++);
    return ~(uint32_t)crc;
}
#endif

static void spool_record_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;

        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        spool_record_crc_table[0][i] = crc;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            spool_record_crc_table[t][i] =
                (spool_record_crc_table[t - 1][i] >> 8) ^
                spool_record_crc_table[0][spool_record_crc_table[t - 1][i] & 0xff];
    spool_record_crc_fn = spool_record_crc32c_portable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("sse4.2"))
        spool_record_crc_fn = spool_record_crc32c_sse42;
#endif
}

uint32_t spool_record_crc32c(const void *p, size_t n)
{
    pthread_once(&spool_record_crc_once, spool_record_crc_init);
    return spool_record_crc_fn(p, n);
}

int spool_record_check_updates(const spool_msg_t *msg, const spool_update_t *u, size_t n)
{
    if (n == 0 || n > msg->nrcpts)
        return SPOOL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (u[i].index >= msg->nrcpts || (unsigned)u[i].state > SPOOL_RCPT_HELD ||
            !spool_record_str_ok(u[i].reply) || !spool_record_str_ok(u[i].relay))
            return SPOOL_EINVAL;
    return 0;
}

/*
 * U payload: count (4), then per recipient: index (4), state (1),
 * attempts (4), next attempt (8), flags (1: remote reply), reply, relay;
 * then the CRC-32C of the record from its type byte to here (4).
 */
void spool_record_encode_update(buf_t *b, const spool_update_t *u, size_t n)
{
    size_t start = buf_used(b);
    buf_t p;

    buf_init(&p, SIZE_MAX);
    spool_record_put_u32(&p, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        spool_record_put_u32(&p, (uint32_t)u[i].index);
        spool_record_put_u8(&p, (unsigned)u[i].state);
        spool_record_put_u32(&p, u[i].attempts);
        spool_record_put_u64(&p, (uint64_t)u[i].next_attempt);
        spool_record_put_u8(&p, u[i].remote_reply ? 1 : 0);
        spool_record_put_str(&p, spool_record_or_empty(u[i].reply));
        spool_record_put_str(&p, spool_record_or_empty(u[i].relay));
    }
    spool_record_put_u8(b, SPOOL__REC_UPDATE);
    spool_record_put_u64(b, buf_used(&p) + 4);
    spool_record_put(b, buf_ptr(&p), buf_used(&p));
    spool_record_put_u32(b, spool_record_crc32c(buf_ptr(b) + start, buf_used(b) - start));
    buf_free(&p);
}

/* ---- Messages in memory ---- */

void spool_record_apply(spool_msg_t *msg, const spool_update_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        spool_rcpt_t *r = &msg->rcpts[u[i].index];

        r->state = u[i].state;
        r->attempts = u[i].attempts;
        r->next_attempt = u[i].next_attempt;
        r->remote_reply = u[i].remote_reply;
        free(r->reply);
        r->reply = xstrdup(spool_record_or_empty(u[i].reply));
        free(r->relay);
        r->relay = xstrdup(spool_record_or_empty(u[i].relay));
    }
}

spool_msg_t *spool_record_msg_alloc(char *path, const char *id, uint64_t body_offset)
{
    spool_msg_t *m = xcalloc(1, sizeof(*m));

    str_lcpy(m->id, id, sizeof(m->id));
    m->path = path;
    m->body_offset = body_offset;
    return m;
}

static void spool_record_rcpt_init(spool_rcpt_t *r, char *addr, char *orig)
{
    memset(r, 0, sizeof(*r));
    r->addr = addr;
    r->orig = orig;
    r->state = SPOOL_RCPT_PENDING;
    r->reply = xstrdup("");
    r->relay = xstrdup("");
    r->orcpt = xstrdup("");
}

/* A message that arrived held: its recipients wait for a release, until
 * a state record says otherwise. */
static void spool_record_arrived(spool_msg_t *m)
{
    for (size_t i = 0; i < m->nrcpts && (m->flags & SPOOL_F_HELD); i++)
        m->rcpts[i].state = SPOOL_RCPT_HELD;
}

spool_msg_t *spool_record_msg_new(char *path, const char *id, int64_t arrival_us, uint64_t body_len,
                                  const spool_envelope_t *env)
{
    spool_msg_t *m = spool_record_msg_alloc(path, id, SPOOL__BODY_OFFSET);

    m->arrival_us = arrival_us;
    m->client = xstrdup(spool_record_or_empty(env->client));
    m->helo = xstrdup(spool_record_or_empty(env->helo));
    m->sender = xstrdup(env->sender);
    m->srs_sender = xstrdup(env->srs_sender);
    m->flags = env->flags;
    m->ret = env->ret;
    m->envid = xstrdup(spool_record_or_empty(env->envid));
    m->prepend = xmemdup(env->prepend_len ? env->prepend : "", env->prepend_len);
    m->prepend_len = env->prepend_len;
    m->body_length = body_len;
    m->body_skip = env->body_skip;
    m->rcpts = xcalloc(env->nrcpts, sizeof(*m->rcpts));
    m->nrcpts = env->nrcpts;
    for (size_t i = 0; i < env->nrcpts; i++) {
        spool_record_rcpt_init(&m->rcpts[i], xstrdup(env->rcpts[i].addr),
                               xstrdup(spool_record_or_empty(env->rcpts[i].orig)));
        m->rcpts[i].notify = env->rcpts[i].notify;
        free(m->rcpts[i].orcpt);
        m->rcpts[i].orcpt = xstrdup(spool_record_or_empty(env->rcpts[i].orcpt));
    }
    spool_record_arrived(m);
    return m;
}

/* ---- Decoding ---- */

typedef struct {
    const unsigned char *p;
    size_t n;
} spool_record_cur_t;

static bool spool_record_get(spool_record_cur_t *c, size_t n, const unsigned char **out)
{
    if (c->n < n)
        return false;
    *out = c->p;
    c->p += n;
    c->n -= n;
    return true;
}

static bool spool_record_get_int(spool_record_cur_t *c, int bytes, uint64_t *v)
{
    const unsigned char *p;

    if (!spool_record_get(c, (size_t)bytes, &p))
        return false;
    *v = spool_record_be(p, bytes);
    return true;
}

/* A string of the whole remaining cursor or length-prefixed; no NULs. */
static char *spool_record_str_of(const unsigned char *p, size_t n)
{
    if (n > SPOOL_STR_MAX || memchr(p, '\0', n) != NULL)
        return NULL;
    return xstrndup((const char *)p, n);
}

static char *spool_record_get_str(spool_record_cur_t *c)
{
    uint64_t n;
    const unsigned char *p;

    if (!spool_record_get_int(c, 4, &n) || !spool_record_get(c, n, &p))
        return NULL;
    return spool_record_str_of(p, n);
}

/* Replace *dst with the payload as a string; false when it is not one. */
static bool spool_record_set_str(char **dst, const unsigned char *p, size_t n)
{
    char *s = spool_record_str_of(p, n);

    if (s == NULL)
        return false;
    free(*dst);
    *dst = s;
    return true;
}

static bool spool_record_add_rcpt(spool_msg_t *m, size_t *cap, const unsigned char *p, size_t n)
{
    spool_record_cur_t c = {p, n};
    char *addr = spool_record_get_str(&c);
    char *orig = addr != NULL ? spool_record_get_str(&c) : NULL;

    if (addr == NULL || orig == NULL || addr[0] == '\0' || c.n != 0) {
        free(addr);
        free(orig);
        return false;
    }
    if (m->nrcpts == *cap)
        m->rcpts = xgrow(m->rcpts, cap, m->nrcpts + 1, sizeof(*m->rcpts));
    spool_record_rcpt_init(&m->rcpts[m->nrcpts++], addr, orig);
    return true;
}

/* N: RET= (1 byte), ENVID= (string). */
static bool spool_record_dsn(spool_msg_t *m, const unsigned char *p, size_t n)
{
    spool_record_cur_t c = {p, n};
    uint64_t ret;
    char *envid;

    if (!spool_record_get_int(&c, 1, &ret) || ret > SPOOL_RET_HDRS ||
        (envid = spool_record_get_str(&c)) == NULL)
        return false;
    if (c.n != 0 || strlen(envid) > SPOOL_ENVID_MAX) {
        free(envid);
        return false;
    }
    m->ret = (unsigned)ret;
    free(m->envid);
    m->envid = envid;
    return true;
}

/* O: index (4), NOTIFY= (1), ORCPT= (string) of a recipient before it. */
static bool spool_record_rcpt_dsn(spool_msg_t *m, const unsigned char *p, size_t n)
{
    spool_record_cur_t c = {p, n};
    uint64_t idx, notify;
    char *orcpt;

    if (!spool_record_get_int(&c, 4, &idx) || idx >= m->nrcpts ||
        !spool_record_get_int(&c, 1, &notify) || notify > 0xf ||
        (orcpt = spool_record_get_str(&c)) == NULL)
        return false;
    if (c.n != 0) {
        free(orcpt);
        return false;
    }
    m->rcpts[idx].notify = (unsigned)notify;
    free(m->rcpts[idx].orcpt);
    m->rcpts[idx].orcpt = orcpt;
    return true;
}

/* One envelope record into m.  false: not a valid record of its type. */
static bool spool_record_envelope(spool_msg_t *m, size_t *cap, int type, const unsigned char *p,
                                  size_t n)
{
    uint64_t v;

    switch (type) {
    case SPOOL__REC_ID:
        if (n != SPOOL_ID_LEN)
            return false;
        if (m->id[0] == '\0') { /* a journal record: the image names it */
            uint64_t id;

            if (!spool_record_hex((const char *)p, SPOOL_ID_LEN, &id))
                return false;
            memcpy(m->id, p, n);
            m->id[n] = '\0';
            return true;
        }
        return memcmp(p, m->id, n) == 0;
    case SPOOL__REC_TIME:
        if (n != 8)
            return false;
        m->arrival_us = (int64_t)spool_record_be(p, 8);
        return true;
    case SPOOL__REC_CLIENT:
        return spool_record_set_str(&m->client, p, n);
    case SPOOL__REC_HELO:
        return spool_record_set_str(&m->helo, p, n);
    case SPOOL__REC_SENDER:
        return spool_record_set_str(&m->sender, p, n);
    case SPOOL__REC_SRS:
        return spool_record_set_str(&m->srs_sender, p, n);
    case SPOOL__REC_FLAGS:
        if (n != 4)
            return false;
        v = spool_record_be(p, 4);
        m->flags = (unsigned)v;
        return true;
    case SPOOL__REC_PREPEND:
        if (n > SPOOL_PREPEND_MAX)
            return false;
        free(m->prepend);
        m->prepend = xmemdup(n ? (const char *)p : "", n);
        m->prepend_len = n;
        return true;
    case SPOOL__REC_SKIP:
        if (n != 8)
            return false;
        m->body_skip = spool_record_be(p, 8);
        return true;
    case SPOOL__REC_RCPT:
        return spool_record_add_rcpt(m, cap, p, n);
    case SPOOL__REC_DSN:
        return spool_record_dsn(m, p, n);
    case SPOOL__REC_RCPT_DSN:
        return spool_record_rcpt_dsn(m, p, n);
    default:
        return false;
    }
}

static void spool_record_update_free(spool_update_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)u[i].reply);
        free((char *)u[i].relay);
    }
    free(u);
}

/*
 * One U record (header at rec, payload p[0..n)) applied to m, all of it
 * or nothing.  false: torn or not a valid update.
 */
static bool spool_record_update(spool_msg_t *m, const unsigned char *rec, const unsigned char *p,
                                size_t n)
{
    spool_record_cur_t c;
    spool_update_t *u = NULL;
    uint64_t count, v;
    size_t got = 0;
    bool ok = false;

    if (n < 8 || spool_record_crc32c(rec, SPOOL__REC_HDR + n - 4) != spool_record_be(p + n - 4, 4))
        return false;
    c.p = p;
    c.n = n - 4;
    if (!spool_record_get_int(&c, 4, &count) || count == 0 || count > m->nrcpts)
        return false;
    u = xcalloc(count, sizeof(*u));
    for (; got < count; got++) {
        spool_update_t *e = &u[got];

        if (!spool_record_get_int(&c, 4, &v) || v >= m->nrcpts)
            goto fail;
        e->index = v;
        if (!spool_record_get_int(&c, 1, &v) || v > SPOOL_RCPT_HELD)
            goto fail;
        e->state = (spool_rcpt_state_t)v;
        if (!spool_record_get_int(&c, 4, &v))
            goto fail;
        e->attempts = (uint32_t)v;
        if (!spool_record_get_int(&c, 8, &v))
            goto fail;
        e->next_attempt = (int64_t)v;
        if (!spool_record_get_int(&c, 1, &v) || v > 1)
            goto fail;
        e->remote_reply = v == 1;
        if ((e->reply = spool_record_get_str(&c)) == NULL ||
            (e->relay = spool_record_get_str(&c)) == NULL)
            goto fail;
    }
    if (c.n != 0)
        goto fail;
    spool_record_apply(m, u, count);
    ok = true;
fail:
    spool_record_update_free(u, count); /* calloc'ed: entries not reached are NULL */
    return ok;
}

#define SPOOL_RECORD_SEEN(type) (1u << ((type) - 'A'))
#define SPOOL_RECORD_REQUIRED                                                                      \
    (SPOOL_RECORD_SEEN(SPOOL__REC_ID) | SPOOL_RECORD_SEEN(SPOOL__REC_TIME) |                       \
     SPOOL_RECORD_SEEN(SPOOL__REC_SENDER) | SPOOL_RECORD_SEEN(SPOOL__REC_SRS) |                    \
     SPOOL_RECORD_SEEN(SPOOL__REC_RCPT))

int spool_record_parse_trailer(spool_msg_t *m, const unsigned char *t, size_t n, size_t *valid)
{
    spool_record_cur_t c = {t, n};
    size_t cap = 0;
    unsigned seen = 0;
    bool end = false;

    while (c.n > 0) {
        const unsigned char *rec = c.p, *payload;
        int type = rec[0];
        uint64_t len;

        if (c.n < SPOOL__REC_HDR || (len = spool_record_be(rec + 1, 8)) > c.n - SPOOL__REC_HDR) {
            if (!end)
                return SPOOL_EPARTIAL;
            break;
        }
        c.p += SPOOL__REC_HDR;
        c.n -= SPOOL__REC_HDR;
        spool_record_get(&c, len, &payload);
        if (end) {
            if (type != SPOOL__REC_UPDATE || !spool_record_update(m, rec, payload, len))
                break;
        } else if (type == SPOOL__REC_END) {
            if (len != 0 || (seen & SPOOL_RECORD_REQUIRED) != SPOOL_RECORD_REQUIRED)
                return SPOOL_ECORRUPT;
            end = true;
            spool_record_arrived(m);
        } else {
            if (!spool_record_envelope(m, &cap, type, payload, len))
                return SPOOL_ECORRUPT;
            seen |= SPOOL_RECORD_SEEN(type);
        }
        *valid = (size_t)(c.p - t);
    }
    if (!end)
        return SPOOL_EPARTIAL;
    if (m->body_skip > m->body_length)
        return SPOOL_ECORRUPT;
    /* The array grew by doubling: a queued message keeps only what it
     * holds (a whole queue is read back at start). */
    if (cap > m->nrcpts)
        m->rcpts = xrealloc(m->rcpts, m->nrcpts * sizeof(*m->rcpts));
    if (m->client == NULL)
        m->client = xstrdup("");
    if (m->helo == NULL)
        m->helo = xstrdup("");
    if (m->prepend == NULL)
        m->prepend = xstrdup("");
    if (m->envid == NULL)
        m->envid = xstrdup("");
    return 0;
}

int spool_record_parse_head(const unsigned char *head, uint64_t size, uint64_t *body_len)
{
    if (size < SPOOL__BODY_OFFSET)
        return SPOOL_EPARTIAL;
    if (memcmp(head, SPOOL__MAGIC, SPOOL__MAGIC_LEN) != 0 ||
        head[SPOOL__MAGIC_LEN] != SPOOL__REC_BODY)
        return SPOOL_ECORRUPT;
    *body_len = spool_record_be(head + SPOOL__MAGIC_LEN + 1, 8);
    if (*body_len > size - SPOOL__BODY_OFFSET)
        return SPOOL_EPARTIAL;
    return 0;
}

int spool_record_parse_image(const char *path, uint64_t base, const unsigned char *p, size_t n,
                             spool_msg_t **out)
{
    spool_msg_t *m;
    uint64_t body_len;
    size_t valid = 0;
    int err;

    *out = NULL;
    if ((err = spool_record_parse_head(p, n, &body_len)) != 0)
        return err;
    m = spool_record_msg_alloc(xstrdup(path), "", base + SPOOL__BODY_OFFSET);
    m->body_length = body_len;
    err = spool_record_parse_trailer(m, p + SPOOL__BODY_OFFSET + body_len,
                                     n - SPOOL__BODY_OFFSET - (size_t)body_len, &valid);
    if (err != 0) {
        spool_msg_free(m);
        return err;
    }
    *out = m;
    return 0;
}

/* ---- Journal records ---- */

void spool_record_jrec_seal(unsigned char *rec, uint32_t len)
{
    rec[0] = SPOOL__J_QUEUED;
    for (int i = 0; i < 4; i++)
        rec[5 + i] = (unsigned char)(len >> (24 - 8 * i));

    uint32_t crc = spool_record_crc32c(rec + 5, 4 + (size_t)len);

    for (int i = 0; i < 4; i++)
        rec[1 + i] = (unsigned char)(crc >> (24 - 8 * i));
}

int spool_record_jrec_frame(const unsigned char *p, size_t n, size_t *len)
{
    uint64_t v;

    if (n < SPOOL__JREC_HDR || (v = spool_record_be(p + 5, 4)) > n - SPOOL__JREC_HDR)
        return SPOOL_EPARTIAL;
    if (spool_record_crc32c(p + 5, 4 + (size_t)v) != spool_record_be(p + 1, 4))
        return SPOOL_ECORRUPT;
    *len = (size_t)v;
    return 0;
}

bool spool_record_jstate_known(int state)
{
    return state == SPOOL__J_QUEUED || state == SPOOL__J_REMOVED || state == SPOOL__J_MOVED ||
           state == SPOOL__J_FAILED;
}

int spool_record_jrec_parse(const unsigned char *p, size_t n, int *state, size_t *len)
{
    size_t v;
    int err;

    if ((err = spool_record_jrec_frame(p, n, &v)) != 0)
        return err;
    if (!spool_record_jstate_known(p[0]))
        return SPOOL_ECORRUPT;
    *state = p[0];
    *len = v;
    return 0;
}
