/*
 * The spool's file format: encoding envelopes and state updates, loading a
 * message file back, and the start-up scan.  See spool_int.h for the
 * layout and docs/spool.md for the reasoning.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

/* ---- Names ---- */

/* n upper-case hex digits at s (queue ids, segment numbers). */
static bool spool_hex(const char *s, int n, uint64_t *out)
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

spool__name_t spool__classify(const char *name, uint64_t *id)
{
    size_t len = strlen(name);

    if (len < SPOOL_ID_LEN || !spool_hex(name, SPOOL_ID_LEN, id))
        return SPOOL__NAME_OTHER;
    if (len == SPOOL_ID_LEN)
        return SPOOL__NAME_MSG;
    if (strcmp(name + SPOOL_ID_LEN, SPOOL__TMP_SUFFIX) == 0)
        return SPOOL__NAME_TMP;
    if (strcmp(name + SPOOL_ID_LEN, SPOOL__CORRUPT_SUFFIX) == 0)
        return SPOOL__NAME_CORRUPT;
    return SPOOL__NAME_OTHER;
}

/* v as n upper-case hex digits and a NUL into out[n + 1]. */
static void spool_format_hex(uint64_t v, int n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";

    for (int i = n - 1; i >= 0; i--) {
        out[i] = hex[v & 0xf];
        v >>= 4;
    }
    out[n] = '\0';
}

void spool__format_id(uint64_t id, char out[SPOOL_ID_SIZE])
{
    spool_format_hex(id, SPOOL_ID_LEN, out);
}

void spool__seg_name(uint64_t seq, char out[SPOOL__JSEQ_LEN + 1])
{
    spool_format_hex(seq, SPOOL__JSEQ_LEN, out);
}

static int spool_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int spool__list(int dirfd, char ***names, size_t *n)
{
    DIR *d = NULL;
    struct dirent *de;
    char **v = NULL;
    size_t nv = 0, cap = 0;
    int fd, err;

    /* fdopendir() takes over the descriptor: give it a copy. */
    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        err = -errno;
        close(fd);
        return err;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (nv == cap)
            v = xgrow(v, &cap, nv + 1, sizeof(*v));
        v[nv++] = xstrdup(de->d_name);
        errno = 0;
    }
    err = -errno;
    closedir(d);
    if (err != 0) {
        for (size_t i = 0; i < nv; i++)
            free(v[i]);
        free(v);
        return err;
    }
    if (nv > 1)
        qsort(v, nv, sizeof(*v), spool_cmp_names);
    *names = v;
    *n = nv;
    return 0;
}

/* ---- Encoding ---- */

void spool__put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t spool_be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The buffers here have no cap that matters (SIZE_MAX): appends cannot fail. */
static void spool_put(buf_t *b, const void *p, size_t n)
{
    if (buf_append(b, p, n) != 0)
        abort();
}

static void spool_put_u8(buf_t *b, unsigned v)
{
    unsigned char c = (unsigned char)v;

    spool_put(b, &c, 1);
}

static void spool_put_u32(buf_t *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    spool_put(b, p, 4);
}

static void spool_put_u64(buf_t *b, uint64_t v)
{
    unsigned char p[8];

    spool__put_be64(p, v);
    spool_put(b, p, 8);
}

/* A string inside a payload: 4-byte length, bytes. */
static void spool_put_str(buf_t *b, const char *s)
{
    size_t n = strlen(s);

    spool_put_u32(b, (uint32_t)n);
    spool_put(b, s, n);
}

static void spool_put_rec(buf_t *b, int type, const void *p, size_t n)
{
    spool_put_u8(b, (unsigned)type);
    spool_put_u64(b, n);
    spool_put(b, p, n);
}

static void spool_put_rec_str(buf_t *b, int type, const char *s)
{
    spool_put_rec(b, type, s, strlen(s));
}

void spool__put_header(buf_t *b, uint64_t body_len)
{
    spool_put(b, SPOOL__MAGIC, SPOOL__MAGIC_LEN);
    spool_put_u8(b, SPOOL__REC_BODY);
    spool_put_u64(b, body_len);
}

static const char *spool_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static bool spool_str_ok(const char *s)
{
    return s == NULL || strlen(s) <= SPOOL_STR_MAX;
}

static int spool_check_env(const spool_envelope_t *env)
{
    if (env->sender == NULL || env->srs_sender == NULL || env->nrcpts == 0 ||
        env->nrcpts > UINT32_MAX || env->prepend_len > SPOOL_PREPEND_MAX ||
        (env->prepend_len > 0 && env->prepend == NULL))
        return SPOOL_EINVAL;
    if (!spool_str_ok(env->client) || !spool_str_ok(env->helo) || !spool_str_ok(env->sender) ||
        !spool_str_ok(env->srs_sender))
        return SPOOL_EINVAL;
    for (size_t i = 0; i < env->nrcpts; i++) {
        const spool_env_rcpt_t *r = &env->rcpts[i];

        if (r->addr == NULL || r->addr[0] == '\0' || !spool_str_ok(r->addr) ||
            !spool_str_ok(r->orig))
            return SPOOL_EINVAL;
    }
    return 0;
}

int spool__encode_trailer(buf_t *b, const char *id, int64_t arrival_us,
                          const spool_envelope_t *env)
{
    buf_t r;
    int err = spool_check_env(env);

    if (err != 0)
        return err;
    spool_put_rec_str(b, SPOOL__REC_ID, id);
    spool_put_u8(b, SPOOL__REC_TIME);
    spool_put_u64(b, 8);
    spool_put_u64(b, (uint64_t)arrival_us);
    spool_put_rec_str(b, SPOOL__REC_CLIENT, spool_or_empty(env->client));
    spool_put_rec_str(b, SPOOL__REC_HELO, spool_or_empty(env->helo));
    spool_put_rec_str(b, SPOOL__REC_SENDER, env->sender);
    spool_put_rec_str(b, SPOOL__REC_SRS, env->srs_sender);
    spool_put_u8(b, SPOOL__REC_FLAGS);
    spool_put_u64(b, 4);
    spool_put_u32(b, env->flags);
    spool_put_rec(b, SPOOL__REC_PREPEND, env->prepend, env->prepend_len);
    buf_init(&r, SIZE_MAX);
    for (size_t i = 0; i < env->nrcpts; i++) {
        buf_reset(&r);
        spool_put_str(&r, env->rcpts[i].addr);
        spool_put_str(&r, spool_or_empty(env->rcpts[i].orig));
        spool_put_rec(b, SPOOL__REC_RCPT, buf_ptr(&r), buf_used(&r));
    }
    buf_free(&r);
    spool_put_rec(b, SPOOL__REC_END, NULL, 0);
    return 0;
}

/*
 * CRC-32C (Castagnoli), eight bytes a round with eight tables (2 KiB of
 * them per table, made once).  It tells a whole record from a torn one on
 * file systems that may show zeros or stale bytes after a crash
 * mid-append: update records, and journal records of whole messages, so
 * it is computed on the pass's thread and has to be quick.
 */
static uint32_t spool_crc_table[8][256];
static pthread_once_t spool_crc_once = PTHREAD_ONCE_INIT;

static void spool_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;

        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        spool_crc_table[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            spool_crc_table[t][i] = (spool_crc_table[t - 1][i] >> 8) ^
                                    spool_crc_table[0][spool_crc_table[t - 1][i] & 0xff];
}

uint32_t spool__crc32c(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t crc = 0xffffffffu;

    pthread_once(&spool_crc_once, spool_crc_init);
    for (; n >= 8; s += 8, n -= 8) {
        uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
                             (uint32_t)s[3] << 24);

        crc = spool_crc_table[7][lo & 0xff] ^ spool_crc_table[6][(lo >> 8) & 0xff] ^
              spool_crc_table[5][(lo >> 16) & 0xff] ^ spool_crc_table[4][lo >> 24] ^
              spool_crc_table[3][s[4]] ^ spool_crc_table[2][s[5]] ^ spool_crc_table[1][s[6]] ^
              spool_crc_table[0][s[7]];
    }
    while (n--)
        crc = (crc >> 8) ^ spool_crc_table[0][(crc ^ *s++) & 0xff];
    return ~crc;
}

int spool__check_updates(const spool_msg_t *msg, const spool_update_t *u, size_t n)
{
    if (n == 0 || n > msg->nrcpts)
        return SPOOL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (u[i].index >= msg->nrcpts || (unsigned)u[i].state > SPOOL_RCPT_BOUNCED ||
            !spool_str_ok(u[i].reply) || !spool_str_ok(u[i].relay))
            return SPOOL_EINVAL;
    return 0;
}

/*
 * U payload: count (4), then per recipient: index (4), state (1),
 * attempts (4), next attempt (8), flags (1: remote reply), reply, relay;
 * then the CRC-32C of the record from its type byte to here (4).
 */
void spool__encode_update(buf_t *b, const spool_update_t *u, size_t n)
{
    size_t start = buf_used(b);
    buf_t p;

    buf_init(&p, SIZE_MAX);
    spool_put_u32(&p, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        spool_put_u32(&p, (uint32_t)u[i].index);
        spool_put_u8(&p, (unsigned)u[i].state);
        spool_put_u32(&p, u[i].attempts);
        spool_put_u64(&p, (uint64_t)u[i].next_attempt);
        spool_put_u8(&p, u[i].remote_reply ? 1 : 0);
        spool_put_str(&p, spool_or_empty(u[i].reply));
        spool_put_str(&p, spool_or_empty(u[i].relay));
    }
    spool_put_u8(b, SPOOL__REC_UPDATE);
    spool_put_u64(b, buf_used(&p) + 4);
    spool_put(b, buf_ptr(&p), buf_used(&p));
    spool_put_u32(b, spool__crc32c(buf_ptr(b) + start, buf_used(b) - start));
    buf_free(&p);
}

/* ---- Messages in memory ---- */

void spool__apply(spool_msg_t *msg, const spool_update_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        spool_rcpt_t *r = &msg->rcpts[u[i].index];

        r->state = u[i].state;
        r->attempts = u[i].attempts;
        r->next_attempt = u[i].next_attempt;
        r->remote_reply = u[i].remote_reply;
        free(r->reply);
        r->reply = xstrdup(spool_or_empty(u[i].reply));
        free(r->relay);
        r->relay = xstrdup(spool_or_empty(u[i].relay));
    }
}

char *spool__path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = xmalloc(n);

    if (str_fmt(p, n, "%s/%s", dir, name) != 0)
        abort();
    return p;
}

static spool_msg_t *spool_msg_alloc(const char *dir, const char *id)
{
    spool_msg_t *m = xcalloc(1, sizeof(*m));

    str_lcpy(m->id, id, sizeof(m->id));
    m->path = spool__path(dir, id);
    m->body_offset = SPOOL__BODY_OFFSET;
    return m;
}

static void spool_rcpt_init(spool_rcpt_t *r, char *addr, char *orig)
{
    memset(r, 0, sizeof(*r));
    r->addr = addr;
    r->orig = orig;
    r->state = SPOOL_RCPT_PENDING;
    r->reply = xstrdup("");
    r->relay = xstrdup("");
}

spool_msg_t *spool__msg_new(const char *dir, const char *id, int64_t arrival_us,
                            uint64_t body_len, const spool_envelope_t *env)
{
    spool_msg_t *m = spool_msg_alloc(dir, id);

    m->arrival_us = arrival_us;
    m->client = xstrdup(spool_or_empty(env->client));
    m->helo = xstrdup(spool_or_empty(env->helo));
    m->sender = xstrdup(env->sender);
    m->srs_sender = xstrdup(env->srs_sender);
    m->flags = env->flags;
    m->prepend = xmemdup(env->prepend_len ? env->prepend : "", env->prepend_len);
    m->prepend_len = env->prepend_len;
    m->body_length = body_len;
    m->rcpts = xcalloc(env->nrcpts, sizeof(*m->rcpts));
    m->nrcpts = env->nrcpts;
    for (size_t i = 0; i < env->nrcpts; i++)
        spool_rcpt_init(&m->rcpts[i], xstrdup(env->rcpts[i].addr),
                        xstrdup(spool_or_empty(env->rcpts[i].orig)));
    return m;
}

void spool_msg_free(spool_msg_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nrcpts; i++) {
        free(m->rcpts[i].addr);
        free(m->rcpts[i].orig);
        free(m->rcpts[i].reply);
        free(m->rcpts[i].relay);
    }
    free(m->rcpts);
    free(m->client);
    free(m->helo);
    free(m->sender);
    free(m->srs_sender);
    free(m->prepend);
    free(m->path);
    free(m->body);
    free(m);
}

void spool_msg_drop_body(spool_msg_t *m)
{
    free(m->body);
    m->body = NULL;
}

uint64_t spool_msg_size(const spool_msg_t *m)
{
    return m->prepend_len + m->body_length;
}

bool spool_msg_done(const spool_msg_t *m)
{
    for (size_t i = 0; i < m->nrcpts; i++)
        if (!spool_rcpt_final(m->rcpts[i].state))
            return false;
    return true;
}

/* ---- Decoding ---- */

typedef struct {
    const unsigned char *p;
    size_t n;
} spool_cur_t;

static bool spool_get(spool_cur_t *c, size_t n, const unsigned char **out)
{
    if (c->n < n)
        return false;
    *out = c->p;
    c->p += n;
    c->n -= n;
    return true;
}

static bool spool_get_int(spool_cur_t *c, int bytes, uint64_t *v)
{
    const unsigned char *p;

    if (!spool_get(c, (size_t)bytes, &p))
        return false;
    *v = spool_be(p, bytes);
    return true;
}

/* A string of the whole remaining cursor or length-prefixed; no NULs. */
static char *spool_str_of(const unsigned char *p, size_t n)
{
    if (n > SPOOL_STR_MAX || memchr(p, '\0', n) != NULL)
        return NULL;
    return xstrndup((const char *)p, n);
}

static char *spool_get_str(spool_cur_t *c)
{
    uint64_t n;
    const unsigned char *p;

    if (!spool_get_int(c, 4, &n) || !spool_get(c, n, &p))
        return NULL;
    return spool_str_of(p, n);
}

/* Replace *dst with the payload as a string; false when it is not one. */
static bool spool_set_str(char **dst, const unsigned char *p, size_t n)
{
    char *s = spool_str_of(p, n);

    if (s == NULL)
        return false;
    free(*dst);
    *dst = s;
    return true;
}

static bool spool_add_rcpt(spool_msg_t *m, size_t *cap, const unsigned char *p, size_t n)
{
    spool_cur_t c = {p, n};
    char *addr = spool_get_str(&c);
    char *orig = addr != NULL ? spool_get_str(&c) : NULL;

    if (addr == NULL || orig == NULL || addr[0] == '\0' || c.n != 0) {
        free(addr);
        free(orig);
        return false;
    }
    if (m->nrcpts == *cap)
        m->rcpts = xgrow(m->rcpts, cap, m->nrcpts + 1, sizeof(*m->rcpts));
    spool_rcpt_init(&m->rcpts[m->nrcpts++], addr, orig);
    return true;
}

/* One envelope record into m.  false: not a valid record of its type. */
static bool spool_envelope_rec(spool_msg_t *m, size_t *cap, int type, const unsigned char *p,
                               size_t n)
{
    uint64_t v;

    switch (type) {
    case SPOOL__REC_ID:
        if (n != SPOOL_ID_LEN)
            return false;
        if (m->id[0] == '\0') { /* a journal record: the image names it */
            uint64_t id;
            char name[SPOOL_ID_SIZE];

            memcpy(name, p, n);
            name[n] = '\0';
            if (spool__classify(name, &id) != SPOOL__NAME_MSG)
                return false;
            memcpy(m->id, name, sizeof(name));
            return true;
        }
        return memcmp(p, m->id, n) == 0;
    case SPOOL__REC_TIME:
        if (n != 8)
            return false;
        m->arrival_us = (int64_t)spool_be(p, 8);
        return true;
    case SPOOL__REC_CLIENT:
        return spool_set_str(&m->client, p, n);
    case SPOOL__REC_HELO:
        return spool_set_str(&m->helo, p, n);
    case SPOOL__REC_SENDER:
        return spool_set_str(&m->sender, p, n);
    case SPOOL__REC_SRS:
        return spool_set_str(&m->srs_sender, p, n);
    case SPOOL__REC_FLAGS:
        if (n != 4)
            return false;
        v = spool_be(p, 4);
        m->flags = (unsigned)v;
        return true;
    case SPOOL__REC_PREPEND:
        if (n > SPOOL_PREPEND_MAX)
            return false;
        free(m->prepend);
        m->prepend = xmemdup(n ? (const char *)p : "", n);
        m->prepend_len = n;
        return true;
    case SPOOL__REC_RCPT:
        return spool_add_rcpt(m, cap, p, n);
    default:
        return false;
    }
}

static void spool_update_free(spool_update_t *u, size_t n)
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
static bool spool_update_rec(spool_msg_t *m, const unsigned char *rec, const unsigned char *p,
                             size_t n)
{
    spool_cur_t c;
    spool_update_t *u = NULL;
    uint64_t count, v;
    size_t got = 0;
    bool ok = false;

    if (n < 8 || spool__crc32c(rec, SPOOL__REC_HDR + n - 4) != spool_be(p + n - 4, 4))
        return false;
    c.p = p;
    c.n = n - 4;
    if (!spool_get_int(&c, 4, &count) || count == 0 || count > m->nrcpts)
        return false;
    u = xcalloc(count, sizeof(*u));
    for (; got < count; got++) {
        spool_update_t *e = &u[got];

        if (!spool_get_int(&c, 4, &v) || v >= m->nrcpts)
            goto fail;
        e->index = v;
        if (!spool_get_int(&c, 1, &v) || v > SPOOL_RCPT_BOUNCED)
            goto fail;
        e->state = (spool_rcpt_state_t)v;
        if (!spool_get_int(&c, 4, &v))
            goto fail;
        e->attempts = (uint32_t)v;
        if (!spool_get_int(&c, 8, &v))
            goto fail;
        e->next_attempt = (int64_t)v;
        if (!spool_get_int(&c, 1, &v) || v > 1)
            goto fail;
        e->remote_reply = v == 1;
        if ((e->reply = spool_get_str(&c)) == NULL || (e->relay = spool_get_str(&c)) == NULL)
            goto fail;
    }
    if (c.n != 0)
        goto fail;
    spool__apply(m, u, count);
    ok = true;
fail:
    spool_update_free(u, count); /* calloc'ed: entries not reached are NULL */
    return ok;
}

int spool__read_at(int fd, void *p, size_t n, uint64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = pread(fd, (char *)p + done, n - done, (off_t)(off + done));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return SPOOL_EPARTIAL;
        done += (size_t)r;
    }
    return 0;
}

#define SPOOL_SEEN(type) (1u << ((type) - 'A'))
#define SPOOL_REQUIRED                                                                   \
    (SPOOL_SEEN(SPOOL__REC_ID) | SPOOL_SEEN(SPOOL__REC_TIME) | SPOOL_SEEN(SPOOL__REC_SENDER) | \
     SPOOL_SEEN(SPOOL__REC_SRS) | SPOOL_SEEN(SPOOL__REC_RCPT))

/*
 * Parse the records after the body: the envelope up to END (a file that
 * ends first is partial), then updates, stopping at the first torn one.
 * *valid is how many trailer bytes are whole records.
 */
static int spool_parse_trailer(spool_msg_t *m, const unsigned char *t, size_t n, size_t *valid)
{
    spool_cur_t c = {t, n};
    size_t cap = 0;
    unsigned seen = 0;
    bool end = false;

    while (c.n > 0) {
        const unsigned char *rec = c.p, *payload;
        int type = rec[0];
        uint64_t len;

        if (c.n < SPOOL__REC_HDR || (len = spool_be(rec + 1, 8)) > c.n - SPOOL__REC_HDR) {
            if (!end)
                return SPOOL_EPARTIAL;
            break;
        }
        c.p += SPOOL__REC_HDR;
        c.n -= SPOOL__REC_HDR;
        spool_get(&c, len, &payload);
        if (end) {
            if (type != SPOOL__REC_UPDATE || !spool_update_rec(m, rec, payload, len))
                break;
        } else if (type == SPOOL__REC_END) {
            if (len != 0 || (seen & SPOOL_REQUIRED) != SPOOL_REQUIRED)
                return SPOOL_ECORRUPT;
            end = true;
        } else {
            if (!spool_envelope_rec(m, &cap, type, payload, len))
                return SPOOL_ECORRUPT;
            seen |= SPOOL_SEEN(type);
        }
        *valid = (size_t)(c.p - t);
    }
    if (!end)
        return SPOOL_EPARTIAL;
    if (m->client == NULL)
        m->client = xstrdup("");
    if (m->helo == NULL)
        m->helo = xstrdup("");
    if (m->prepend == NULL)
        m->prepend = xstrdup("");
    return 0;
}

int spool__load(int dirfd, const char *dir, const char *name, const spool_io_t *io,
                spool_msg_t **out)
{
    unsigned char head[SPOOL__BODY_OFFSET];
    unsigned char *trailer = NULL;
    spool_msg_t *m = NULL;
    struct stat st;
    uint64_t body_len, body_end, tlen;
    size_t valid = 0;
    int fd, err;

    *out = NULL;
    fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        goto fail;
    }
    err = SPOOL_EPARTIAL;
    if ((uint64_t)st.st_size < SPOOL__BODY_OFFSET)
        goto fail;
    if ((err = spool__read_at(fd, head, sizeof(head), 0)) != 0)
        goto fail;
    err = SPOOL_ECORRUPT;
    if (memcmp(head, SPOOL__MAGIC, SPOOL__MAGIC_LEN) != 0 ||
        head[SPOOL__MAGIC_LEN] != SPOOL__REC_BODY)
        goto fail;
    body_len = spool_be(head + SPOOL__MAGIC_LEN + 1, 8);
    err = SPOOL_EPARTIAL;
    if (body_len > (uint64_t)st.st_size - SPOOL__BODY_OFFSET)
        goto fail;
    body_end = SPOOL__BODY_OFFSET + body_len;
    tlen = (uint64_t)st.st_size - body_end;
    err = SPOOL_ECORRUPT;
    if (tlen > SPOOL__TRAILER_MAX)
        goto fail;
    trailer = xmalloc(tlen ? tlen : 1);
    if ((err = spool__read_at(fd, trailer, tlen, body_end)) != 0)
        goto fail;

    m = spool_msg_alloc(dir, name);
    m->body_length = body_len;
    if ((err = spool_parse_trailer(m, trailer, tlen, &valid)) != 0)
        goto fail;
    if (valid < tlen) {
        /* A torn update from a crash mid-append: cut it off, so the next
         * append does not land behind garbage. */
        if (ftruncate(fd, (off_t)(body_end + valid)) != 0 || io->fsync(fd) != 0) {
            err = -errno;
            goto fail;
        }
    }
    *out = m;
    m = NULL;
    err = 0;
fail:
    spool_msg_free(m);
    free(trailer);
    close(fd);
    return err;
}

int spool__parse_image(const char *path, uint64_t base, const unsigned char *p, size_t n,
                       spool_msg_t **out)
{
    spool_msg_t *m;
    uint64_t body_len;
    size_t valid = 0;
    int err;

    *out = NULL;
    if (n < SPOOL__BODY_OFFSET)
        return SPOOL_EPARTIAL;
    if (memcmp(p, SPOOL__MAGIC, SPOOL__MAGIC_LEN) != 0 || p[SPOOL__MAGIC_LEN] != SPOOL__REC_BODY)
        return SPOOL_ECORRUPT;
    body_len = spool_be(p + SPOOL__MAGIC_LEN + 1, 8);
    if (body_len > n - SPOOL__BODY_OFFSET)
        return SPOOL_EPARTIAL;
    m = xcalloc(1, sizeof(*m));
    m->path = xstrdup(path);
    m->body_offset = base + SPOOL__BODY_OFFSET;
    m->body_length = body_len;
    err = spool_parse_trailer(m, p + SPOOL__BODY_OFFSET + body_len,
                              n - SPOOL__BODY_OFFSET - (size_t)body_len, &valid);
    if (err != 0) {
        spool_msg_free(m);
        return err;
    }
    *out = m;
    return 0;
}

void spool__jrec_seal(unsigned char *rec, uint32_t len)
{
    rec[0] = SPOOL__J_QUEUED;
    for (int i = 0; i < 4; i++)
        rec[5 + i] = (unsigned char)(len >> (24 - 8 * i));

    uint32_t crc = spool__crc32c(rec + 5, 4 + (size_t)len);

    for (int i = 0; i < 4; i++)
        rec[1 + i] = (unsigned char)(crc >> (24 - 8 * i));
}

int spool__pwrite_all(const spool_io_t *io, int fd, const void *p, size_t n, uint64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = io->pwrite(fd, (const char *)p + done, n - done, (off_t)(off + done));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno ? -errno : -EIO;
        if (r == 0)
            return -EIO;
        done += (size_t)r;
    }
    return 0;
}

/* ---- Start-up scan ---- */

static void spool_problem(const spool_scan_ops_t *ops, void *arg, const char *name, int err)
{
    if (ops->problem != NULL)
        ops->problem(arg, name, err);
}

/* Messages of the journal, to hand over in id order with the files', and
 * the ids its records say were removed. */
typedef struct {
    spool_msg_t **v;
    size_t n, cap, next;
    char **gone;
    size_t ngone, gone_cap;
    /* Records still M whose id has a file: the file wins if it loads
     * (the record is then marked F), the record if it does not. */
    spool_msg_t **moved;
    size_t nmoved, moved_cap;
} spool_jmsgs_t;

static int spool_cmp_msgs(const void *a, const void *b)
{
    return strcmp((*(spool_msg_t *const *)a)->id, (*(spool_msg_t *const *)b)->id);
}

static bool spool_has_name(char **names, size_t n, const char *name)
{
    return bsearch(&name, names, n, sizeof(*names), spool_cmp_names) != NULL;
}

bool spool__seq_name(const char *name, uint64_t *seq)
{
    return strlen(name) == SPOOL__JSEQ_LEN && spool_hex(name, SPOOL__JSEQ_LEN, seq) &&
           *seq != 0 && *seq <= SPOOL__JSEQ_MAX;
}

/*
 * Read one segment: every record still queued becomes a message, unless
 * the message has a file of its own (names: the spool directory's), which
 * then holds its state.  Records are read up to the first that is torn
 * (cut short, or failing its CRC): a commit lane's pass appends after the
 * last one's fdatasync, and a segment takes no appends after a failed
 * pass, so what follows was never acknowledged.  0, or -errno.
 */
static int spool_scan_segment(spool_t *s, const char *name, uint64_t seq, char **names,
                              size_t n, spool_jmsgs_t *out, const spool_scan_ops_t *ops,
                              void *arg)
{
    unsigned char *data = NULL;
    spool_seg_t *g;
    struct stat st;
    size_t size, pos = SPOOL__JMAGIC_LEN;
    unsigned live = 0;
    int fd, err;

    fd = openat(s->jdirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > SIZE_MAX / 2) {
        err = -errno;
        close(fd);
        return err ? err : -EFBIG;
    }
    size = (size_t)st.st_size;
    if (size > SPOOL__JMAGIC_LEN + SPOOL__JSEG_MAX) {
        /* Never written so long by the spool: kept for the admin. */
        g = spool__seg_add(s, seq, fd);
        g->full = true;
        g->dir_synced = true;
        g->live = 1;
        spool_problem(ops, arg, name, SPOOL_ECORRUPT);
        return 0;
    }
    data = xmalloc(size ? size : 1);
    if ((err = spool__read_at(fd, data, size, 0)) != 0) {
        free(data);
        close(fd);
        return err == SPOOL_EPARTIAL ? -EIO : err;
    }
    g = spool__seg_add(s, seq, fd);
    g->full = true;
    g->dir_synced = true;
    g->size = size;
    /* A segment made just before a crash may not even have its magic. */
    if (size >= SPOOL__JMAGIC_LEN && memcmp(data, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN) != 0) {
        spool_problem(ops, arg, name, SPOOL_ECORRUPT);
        live++; /* kept for the admin */
        pos = size;
    }
    while (pos + SPOOL__JREC_HDR <= size) {
        const unsigned char *rec = data + pos;
        uint64_t len = spool_be(rec + 5, 4), id;
        spool_msg_t *m = NULL;

        if (len > size - pos - SPOOL__JREC_HDR ||
            spool__crc32c(rec + 5, 4 + (size_t)len) != spool_be(rec + 1, 4) ||
            (rec[0] != SPOOL__J_QUEUED && rec[0] != SPOOL__J_REMOVED &&
             rec[0] != SPOOL__J_MOVED && rec[0] != SPOOL__J_FAILED))
            break;
        if (spool__parse_image(g->path, pos + SPOOL__JREC_HDR, rec + SPOOL__JREC_HDR,
                               (size_t)len, &m) != 0) {
            /* Whole by its CRC, yet not a message: keep the segment for
             * the admin if it may be one still queued. */
            if (rec[0] == SPOOL__J_QUEUED) {
                spool_problem(ops, arg, name, SPOOL_ECORRUPT);
                live++;
            }
            pos += SPOOL__JREC_HDR + (size_t)len;
            continue;
        }
        /* Every id the journal names stays taken, as the files' do. */
        if (spool__classify(m->id, &id) == SPOOL__NAME_MSG && id > s->last_id)
            s->last_id = id;
        if (rec[0] == SPOOL__J_QUEUED && spool_has_name(names, n, m->id)) {
            /* Moved, and the crash came before the record said so: the
             * file has the message and its state, if it loads (the file
             * loop decides, spool_scan_moved()). */
            m->jseq = seq;
            m->joff = pos;
            m->jlen = len;
            if (out->nmoved == out->moved_cap)
                out->moved = xgrow(out->moved, &out->moved_cap, out->nmoved + 1,
                                   sizeof(*out->moved));
            out->moved[out->nmoved++] = m;
            m = NULL;
        } else if (rec[0] == SPOOL__J_QUEUED) {
            m->jseq = seq;
            m->joff = pos;
            m->jlen = len;
            if (out->n == out->cap)
                out->v = xgrow(out->v, &out->cap, out->n + 1, sizeof(*out->v));
            out->v[out->n++] = m;
            m = NULL;
            live++;
        } else if (rec[0] == SPOOL__J_REMOVED) {
            /* A file of its id is a move's that was taken back without
             * its unlink reaching the disk: stale. */
            if (out->ngone == out->gone_cap)
                out->gone = xgrow(out->gone, &out->gone_cap, out->ngone + 1, sizeof(*out->gone));
            out->gone[out->ngone++] = xstrdup(m->id);
        }
        /* X: never acknowledged.  F: the message's file has it (or had
         * it, and it was removed since). */
        spool_msg_free(m);
        pos += SPOOL__JREC_HDR + (size_t)len;
    }
    free(data);
    g->live = live;
    return 0;
}

/* The journal's segments, oldest first. */
static int spool_scan_journal(spool_t *s, char **names, size_t n, spool_jmsgs_t *out,
                              const spool_scan_ops_t *ops, void *arg)
{
    char **segs = NULL;
    size_t nsegs = 0;
    int err = 0;

    if (s->jdirfd < 0)
        return 0;
    if ((err = spool__list(s->jdirfd, &segs, &nsegs)) != 0)
        return err;
    for (size_t i = 0; i < nsegs; i++) {
        uint64_t seq;

        if (err == 0 && spool__seq_name(segs[i], &seq)) {
            if (seq > s->jseq)
                s->jseq = seq;
            err = spool_scan_segment(s, segs[i], seq, names, n, out, ops, arg);
        }
        free(segs[i]);
    }
    free(segs);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), spool_cmp_msgs);
    if (out->ngone > 1)
        qsort(out->gone, out->ngone, sizeof(*out->gone), spool_cmp_names);
    if (out->nmoved > 1)
        qsort(out->moved, out->nmoved, sizeof(*out->moved), spool_cmp_msgs);
    return err;
}

/* The journal copy of the message whose file is name, or NULL. */
static spool_msg_t *spool_scan_moved(spool_jmsgs_t *j, const char *name)
{
    for (size_t lo = 0, hi = j->nmoved; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = j->moved[mid] != NULL ? strcmp(j->moved[mid]->id, name) : -1;

        if (c == 0) {
            spool_msg_t *m = j->moved[mid];

            j->moved[mid] = NULL;
            return m;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Remove the segments with nothing queued, last: their D records say
 * which files are stale, so they go only once those files' removal is
 * durable.
 */
static int spool_scan_drop_segments(spool_t *s)
{
    bool changed = false;

    for (spool_seg_t *g = s->segs, *next; g != NULL; g = next) {
        char name[SPOOL__JSEQ_LEN + 1];

        next = g->next;
        if (g->live > 0)
            continue;
        spool__seg_name(g->seq, name);
        if (unlinkat(s->jdirfd, name, 0) == 0)
            changed = true;
        spool__seg_free(s, g);
    }
    if (changed && s->io.fsync(s->jdirfd) != 0)
        return errno ? -errno : -EIO;
    return 0;
}

static bool spool_jmsgs_gone(const spool_jmsgs_t *j, const char *id)
{
    return j->ngone > 0 && spool_has_name(j->gone, j->ngone, id);
}

static void spool_jmsgs_free(spool_jmsgs_t *j)
{
    for (size_t i = j->next; i < j->n; i++)
        spool_msg_free(j->v[i]);
    free(j->v);
    for (size_t i = 0; i < j->nmoved; i++)
        spool_msg_free(j->moved[i]);
    free(j->moved);
    for (size_t i = 0; i < j->ngone; i++)
        free(j->gone[i]);
    free(j->gone);
}

/* Hand over the journal's messages whose ids sort before name (all: NULL). */
static void spool_jmsgs_until(spool_jmsgs_t *j, const char *name, const spool_scan_ops_t *ops,
                              void *arg)
{
    while (j->next < j->n && (name == NULL || strcmp(j->v[j->next]->id, name) < 0))
        ops->message(arg, j->v[j->next++]);
}

/*
 * The journal record of a message that also has a file: marked F and
 * synced when the file loaded (or once the file is removed the record
 * would bring the message back; a scan that cannot say so fails), kept
 * queued in its segment when the file did not.
 */
static int spool_scan_settle(spool_t *s, const spool_msg_t *copy, bool file_loaded)
{
    spool_seg_t *g = spool__seg_find(s, copy->jseq);
    char moved = SPOOL__J_MOVED;
    int err;

    if (g == NULL)
        return 0;
    if (!file_loaded) {
        g->live++;
        return 0;
    }
    if ((err = spool__pwrite_all(&s->io, g->fd, &moved, 1, copy->joff)) != 0 ||
        s->io.fsync(g->fd) != 0) {
        g->live++; /* not dropped, whatever happens next */
        return err != 0 ? err : errno ? -errno : -EIO;
    }
    return 0;
}

int spool_scan(spool_t *s, const spool_scan_ops_t *ops, void *arg)
{
    spool_jmsgs_t jm = {0};
    char **names = NULL;
    size_t n = 0;
    bool changed = false;
    int err;

    if (s->scanned || s->used)
        return SPOOL_EBUSY;
    if ((err = spool__list(s->dirfd, &names, &n)) != 0)
        return err;
    s->scanned = true; /* once, even if it fails */
    if ((err = spool_scan_journal(s, names, n, &jm, ops, arg)) != 0) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        spool_jmsgs_free(&jm);
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        char quarantine[SPOOL_ID_LEN + sizeof(SPOOL__CORRUPT_SUFFIX)];
        spool_msg_t *m = NULL, *jm_copy;
        uint64_t id;
        int r;

        switch (spool__classify(names[i], &id)) {
        case SPOOL__NAME_TMP:
            /* A writer's file that never reached the rename: the client
             * was never told 250, so it is dropped. */
            if (unlinkat(s->dirfd, names[i], 0) == 0 || errno == ENOENT) {
                changed = true;
                spool_problem(ops, arg, names[i], SPOOL_EPARTIAL);
            }
            break;
        case SPOOL__NAME_MSG:
            spool_jmsgs_until(&jm, names[i], ops, arg);
            if (spool_jmsgs_gone(&jm, names[i])) {
                if (unlinkat(s->dirfd, names[i], 0) == 0)
                    changed = true;
                break;
            }
            r = spool__load(s->dirfd, s->dir, names[i], &s->io, &m);
            jm_copy = spool_scan_moved(&jm, names[i]);
            if (jm_copy != NULL && (err = spool_scan_settle(s, jm_copy, r == 0)) != 0) {
                spool_msg_free(jm_copy);
                spool_msg_free(m);
                for (size_t k = i; k < n; k++)
                    free(names[k]);
                free(names);
                spool_jmsgs_free(&jm);
                return err;
            }
            if (r == 0) {
                ops->message(arg, m);
            } else if (r == SPOOL_EPARTIAL) {
                if (unlinkat(s->dirfd, names[i], 0) == 0)
                    changed = true;
                spool_problem(ops, arg, names[i], r);
            } else if (r == SPOOL_ECORRUPT) {
                str_fmt(quarantine, sizeof(quarantine), "%s%s", names[i],
                        SPOOL__CORRUPT_SUFFIX);
                if (renameat(s->dirfd, names[i], s->dirfd, quarantine) == 0)
                    changed = true;
                spool_problem(ops, arg, names[i], r);
            } else {
                spool_problem(ops, arg, names[i], r);
            }
            /* A file that is not the message: its journal record is. */
            if (jm_copy != NULL && (r == SPOOL_EPARTIAL || r == SPOOL_ECORRUPT)) {
                ops->message(arg, jm_copy);
                jm_copy = NULL;
            }
            spool_msg_free(jm_copy);
            break;
        default:
            break;
        }
        free(names[i]);
    }
    free(names);
    spool_jmsgs_until(&jm, NULL, ops, arg);
    spool_jmsgs_free(&jm);
    /* The removals need not be durable (a crash replays them), but
     * settle the directory before new files come, and before the
     * journal's empty segments, whose D records mark stale files, go. */
    if (changed && s->io.fsync(s->dirfd) != 0)
        return -errno;
    return s->jdirfd >= 0 ? spool_scan_drop_segments(s) : 0;
}
