/*
 * check.c -- the torture's independent checker.
 *
 *   check recover DIR PARTS reboot|keep|defer PROBE_INC
 *   check final   DIR PARTS reboot PROBE_INC
 *
 * It reads the segment files itself -- its own CRC-32C and its own
 * RecordBatch v2 decoder, nothing of lib/ (it is built with <ulog.h> on its
 * include path and nothing else) -- and reads the log a second time through
 * the public API to compare. Every worker is dead when it runs.
 *
 * recover: the step between two epochs. For each partition it decodes the
 * last segment and notes the bytes after its last valid batch (a torn
 * tail). reboot: it deletes the heads (a reboot makes them stale, so the
 * recovery scan runs instead of the write-mark repair); keep: it leaves
 * them. Either way it opens the log, appends one probe record to each
 * partition (acknowledged like any other, logged in logs/probe-0.log; the
 * append is what runs the write-mark repair of a dead writer's tail) and
 * closes it; then it decodes the same files again: every torn tail must be
 * gone. defer: it only notes the torn tails in logs/pending-torn.log; the
 * next step finds them cut by a writer's repair, or still there. One line
 * per step goes to logs/recover-stats.log.
 *
 * final: a reboot step, then the whole log: every segment decoded and
 * verified, the API's reading compared with it, the workers' logs replayed
 * against it. Prints the table; exits 1 when a count that must be 0 is not,
 * or when no torn tail was ever cut.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "common.h"
#include "ulog.h"

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "check: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

/* ================================================================ CRC-32C */

/* Castagnoli, reflected polynomial 0x82F63B78, slicing by 8. */
static uint32_t crc_tab[8][256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
            crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^
            crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    return c ^ 0xffffffffu;
}

/* ================================================================ decoder */

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* A zigzag varint of at most maxbytes bytes; false when malformed. */
static bool varint(const uint8_t **pp, const uint8_t *end, int maxbytes, int64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t u = 0;
    for (int i = 0; i < maxbytes; i++) {
        if (p >= end)
            return false;
        uint8_t b = *p++;
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            *pp = p;
            return true;
        }
    }
    return false;
}

/* One record as found in a batch. */
typedef struct found {
    int64_t  offset;
    uint64_t id;
    bool     ok;        /* value, key and header are those of id */
} found;

typedef struct batch_info {
    int64_t  base;
    int64_t  next;      /* base + lastOffsetDelta + 1 */
    size_t   frame;
    uint32_t crc;
} batch_info;

/* Whether a record's key and headers are those its id implies. */
static bool rec_ok(uint64_t id, const uint8_t *key, int64_t klen, int64_t nh,
                   const uint8_t *hk, int64_t hkl, const uint8_t *hv, int64_t hvl)
{
    if (key_null(id)) {
        if (klen != -1)
            return false;
    } else {
        char k[17];
        key_fill(k, id);
        if (klen != 16 || memcmp(k, key, 16) != 0)
            return false;
    }
    if (nh != (int64_t)has_header(id))
        return false;
    if (nh == 1 && (hkl != 3 || memcmp(hk, HEADER_KEY, 3) != 0 || hvl != 8 ||
                    memcmp(hv, &id, 8) != 0))
        return false;
    return true;
}

/*
 * An encrypted run's value, opened here from the format ulog_key_add(3)
 * gives, not through the library: version 1 | key id (4, big-endian) |
 * nonce (24) | ciphertext | tag (16), XChaCha20-Poly1305 with associated
 * data BLAKE2b-256(domain NUL | topic length (4) | topic | partition (4) |
 * key id (4) | 1 and the key, or 0 for a null key). False when v is not a
 * value sealed with the torture's key; then the bytes are taken as they are
 * (a run without encryption), and a sealed value that does not open is no
 * torture record.
 */
static bool open_sealed(int part, const uint8_t *key, int64_t klen, const uint8_t *v, size_t n,
                        uint8_t **out, size_t *outlen)
{
    static const char domain[] = "ulog sealed value 1";
    if (n < 45 || v[0] != 1 || be(v + 1, 4) != TORTURE_KEY_ID || sodium_init() < 0)
        return false;
    uint8_t aad[32], w[9];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof aad);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain);
    for (int i = 0; i < 4; i++)
        w[i] = (uint8_t)(strlen(TOPIC) >> (24 - 8 * i));
    crypto_generichash_update(&st, w, 4);
    crypto_generichash_update(&st, (const uint8_t *)TOPIC, strlen(TOPIC));
    for (int i = 0; i < 4; i++) {
        w[i] = (uint8_t)((uint32_t)part >> (24 - 8 * i));
        w[4 + i] = (uint8_t)((uint32_t)TORTURE_KEY_ID >> (24 - 8 * i));
    }
    w[8] = klen >= 0;
    crypto_generichash_update(&st, w, 9);
    if (klen > 0)
        crypto_generichash_update(&st, key, (size_t)klen);
    crypto_generichash_final(&st, aad, sizeof aad);
    static uint8_t *buf;
    static size_t cap;
    if (n - 45 + 1 > cap) {
        cap = n - 45 + 1;
        buf = xrealloc(buf, cap);
    }
    unsigned long long len;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(buf, &len, NULL, v + 29, n - 29, aad,
                                                   sizeof aad, v + 5, TORTURE_KEY) != 0)
        return false;
    *out = buf;
    *outlen = (size_t)len;
    return true;
}

/*
 * Decodes and verifies the batch at b (avail bytes there): Kafka RecordBatch
 * v2 as the format defines it (big-endian; CRC-32C over attributes to the
 * end; records of zigzag varints). Returns 0 when valid, 1 when the bytes
 * end before the frame does, -1 when invalid. Records go to *recs (grown)
 * when recs is not NULL.
 */
static int batch_decode(int part, const uint8_t *b, size_t avail, batch_info *bi, found **recs,
                        size_t *nrecs, size_t *caprecs)
{
    if (avail < 12)
        return 1;
    int64_t len = (int32_t)be(b + 8, 4);
    if (len < 49)
        return -1;
    if ((uint64_t)len + 12 > avail)
        return 1;
    size_t frame = (size_t)len + 12;
    const uint8_t *end = b + frame;
    if (b[16] != 2)
        return -1;
    uint32_t crc = (uint32_t)be(b + 17, 4);
    if (crc32c(b + 21, frame - 21) != crc)
        return -1;
    int16_t attr = (int16_t)be(b + 21, 2);
    int32_t last_delta = (int32_t)be(b + 23, 4);
    int32_t count = (int32_t)be(b + 57, 4);
    int64_t base = (int64_t)be(b, 8);
    if ((attr & 7) != 0 || count <= 0 || last_delta != count - 1 || base < 0)
        return -1;
    const uint8_t *p = b + 61;
    for (int32_t i = 0; i < count; i++) {
        int64_t rlen, tsd, od, klen, vlen, nh, hkl = 0, hvl = 0;
        const uint8_t *key = NULL, *val = NULL, *hk = NULL, *hv = NULL;
        if (!varint(&p, end, 5, &rlen) || rlen < 1 || rlen > end - p)
            return -1;
        const uint8_t *rend = p + rlen;
        p++;    /* attributes */
        if (!varint(&p, rend, 10, &tsd) || !varint(&p, rend, 5, &od) || od != i ||
            !varint(&p, rend, 5, &klen) || klen < -1 || klen > rend - p)
            return -1;
        if (klen >= 0) {
            key = p;
            p += klen;
        }
        if (!varint(&p, rend, 5, &vlen) || vlen < -1 || vlen > rend - p)
            return -1;
        if (vlen >= 0) {
            val = p;
            p += vlen;
        }
        if (!varint(&p, rend, 5, &nh) || nh < 0)
            return -1;
        for (int64_t h = 0; h < nh; h++) {
            int64_t kl, vl;
            if (!varint(&p, rend, 5, &kl) || kl < 0 || kl > rend - p)
                return -1;
            const uint8_t *kp = p;
            p += kl;
            if (!varint(&p, rend, 5, &vl) || vl < -1 || vl > rend - p)
                return -1;
            const uint8_t *vp = vl >= 0 ? p : NULL;
            if (vl > 0)
                p += vl;
            if (h == 0) {
                hk = kp;
                hkl = kl;
                hv = vp;
                hvl = vl;
            }
        }
        if (p != rend)
            return -1;
        if (recs) {
            if (*nrecs == *caprecs) {
                *caprecs = *caprecs ? 2 * *caprecs : 1024;
                *recs = xrealloc(*recs, *caprecs * sizeof **recs);
            }
            found *f = &(*recs)[(*nrecs)++];
            f->offset = base + i;
            f->id = 0;
            uint8_t *opened;
            size_t olen;
            if (vlen >= 0 && open_sealed(part, key, klen, val, (size_t)vlen, &opened, &olen)) {
                val = opened;
                vlen = (int64_t)olen;
            }
            f->ok = vlen >= 0 && value_ok(val, (size_t)vlen, &f->id) &&
                    rec_ok(f->id, key, klen, nh, hk, hkl, hv, hvl);
        }
    }
    if (p != end)
        return -1;
    bi->base = base;
    bi->next = base + count;
    bi->frame = frame;
    bi->crc = crc;
    return 0;
}

/* ================================================================ files */

static char base_dir[1024];
static int  parts;

static void part_dir(char *out, size_t n, int p)
{
    snprintf(out, n, "%s/ulog/topics/%s/%d", base_dir, TOPIC, p);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Segment bases of partition p, sorted. */
static int64_t *list_segments(int p, size_t *n)
{
    char dir[PATH_MAX];
    part_dir(dir, sizeof dir, p);
    DIR *d = opendir(dir);
    if (!d)
        die("opendir %s: %s", dir, strerror(errno));
    size_t cap = 64, k = 0;
    int64_t *v = xmalloc(cap * sizeof *v);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        if (strlen(s) != 24 || strcmp(s + 20, ".log") != 0)
            continue;
        int64_t b = 0;
        bool digits = true;
        for (int i = 0; i < 20; i++) {
            if (s[i] < '0' || s[i] > '9')
                digits = false;
            else
                b = b * 10 + (s[i] - '0');
        }
        if (!digits)
            continue;
        if (k == cap)
            v = xrealloc(v, (cap *= 2) * sizeof *v);
        v[k++] = b;
    }
    closedir(d);
    qsort(v, k, sizeof *v, cmp_i64);
    *n = k;
    return v;
}

/* A whole segment file; NULL (and *exists false) when it is not there. */
static uint8_t *read_segment(int p, int64_t base, size_t *size, bool *exists)
{
    char path[PATH_MAX + 32], dir[PATH_MAX];
    part_dir(dir, sizeof dir, p);
    snprintf(path, sizeof path, "%s/%020lld.log", dir, (long long)base);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *exists = fd >= 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;
        die("open %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        die("fstat %s: %s", path, strerror(errno));
    uint8_t *buf = xmalloc((size_t)sb.st_size);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("read %s: %s", path, r < 0 ? strerror(errno) : "short");
        got += (size_t)r;
    }
    close(fd);
    *size = got;
    return buf;
}

/* What one segment holds: its valid batches from the start, then the rest. */
typedef struct seg_scan {
    bool        exists;
    size_t      size, valid_end;    /* size: to the last byte that is not 0 */
    int64_t     next;           /* offset after the last valid batch */
    size_t      nb;
    batch_info *b;              /* the valid batches, with their positions */
    size_t     *pos;
} seg_scan;

static void seg_scan_free(seg_scan *s)
{
    free(s->b);
    free(s->pos);
    memset(s, 0, sizeof *s);
}

static void scan_segment(int p, int64_t base, seg_scan *s, found **recs, size_t *nrecs,
                         size_t *caprecs)
{
    memset(s, 0, sizeof *s);
    uint8_t *buf = read_segment(p, base, &s->size, &s->exists);
    if (!s->exists)
        return;
    size_t cap = 0, pos = 0;
    int64_t next = base;
    while (pos < s->size) {
        batch_info bi;
        size_t keep = recs ? *nrecs : 0;
        if (batch_decode(p, buf + pos, s->size - pos, &bi, recs, nrecs, caprecs) != 0 ||
            bi.base != next) {
            if (recs)
                *nrecs = keep;
            break;
        }
        if (s->nb == cap) {
            cap = cap ? 2 * cap : 64;
            s->b = xrealloc(s->b, cap * sizeof *s->b);
            s->pos = xrealloc(s->pos, cap * sizeof *s->pos);
        }
        s->b[s->nb] = bi;
        s->pos[s->nb++] = pos;
        pos += bi.frame;
        next = bi.next;
    }
    s->valid_end = pos;
    s->next = next;
    /* Zeros after the last batch are no torn tail: a flush.policy always
     * writer sizes its segment ahead of the data, and the roll or the
     * recovery scan cuts them. A torn tail is what is not zero. */
    while (s->size > pos && buf[s->size - 1] == 0)
        s->size--;
    free(buf);
}

/* ================================================================ recover */

typedef struct rstats {
    int     torn_repair, torn_scan, torn_writer, uncut, unpub, probe_fail;
    int64_t torn_bytes;
} rstats;

/* A torn tail left for the workers of the next epoch to repair. */
typedef struct pending {
    int     p;
    int64_t seg;
    int64_t valid_end, size;
} pending;

#define PENDING_FILE "pending-torn.log"

/* Tails a `defer` step left: cut since (by a writer's repair, or removed
 * with their segment) or still there (then this step's scan sees them). */
static void resolve_pending(rstats *rs)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/%s", base_dir, PENDING_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    pending e;
    while (read(fd, &e, sizeof e) == (ssize_t)sizeof e) {
        seg_scan s;
        scan_segment(e.p, e.seg, &s, NULL, NULL, NULL);
        size_t upto = (size_t)e.size < s.size ? (size_t)e.size : s.size;
        if (!s.exists || s.valid_end >= upto) {
            rs->torn_writer++;
            rs->torn_bytes += e.size - e.valid_end;
        }
        seg_scan_free(&s);
    }
    close(fd);
    unlink(path);
}

static int append_line(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append_line(const char *name, const char *fmt, ...)
{
    char path[PATH_MAX + 64], l[LINE];
    snprintf(path, sizeof path, "%s/logs/%s", base_dir, name);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l, sizeof l, fmt, ap);
    va_end(ap);
    line_pad(l, n);
    write_lines(fd, l, LINE);
    close(fd);
    return 0;
}

static ulog *open_log(void)
{
    char root[PATH_MAX + 8];
    snprintf(root, sizeof root, "%s/ulog", base_dir);
    ulog *log;
    int rc = ulog_open(root, NULL, &log);
    if (!rc)
        rc = ulog_key_add(log, TOPIC, TORTURE_KEY_ID, TORTURE_KEY, sizeof TORTURE_KEY);
    if (rc)
        die("ulog_open %s: %s", root, ulog_strerror(rc));
    return log;
}

static void write_stats(bool reboot, const rstats *rs)
{
    append_line("recover-stats.log", "T r%d s%d m%d d%d b%lld u%d w%d f%d", reboot,
                rs->torn_scan, rs->torn_repair, rs->torn_writer, (long long)rs->torn_bytes,
                rs->uncut, rs->unpub, rs->probe_fail);
}

/* defer: note the torn tails, touch nothing; the next epoch's writers
 * repair them (the driver starts some of them to be killed in the cut). */
static int defer(rstats *rs)
{
    memset(rs, 0, sizeof *rs);
    resolve_pending(rs);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/%s", base_dir, PENDING_FILE);
    int fd = -1, n = 0;
    for (int p = 0; p < parts; p++) {
        size_t k;
        int64_t *v = list_segments(p, &k);
        if (k == 0)
            die("partition %d has no segment", p);
        seg_scan s;
        scan_segment(p, v[k - 1], &s, NULL, NULL, NULL);
        if (s.size > s.valid_end) {
            if (fd < 0 && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
                die("open %s: %s", path, strerror(errno));
            pending e = { p, v[k - 1], (int64_t)s.valid_end, (int64_t)s.size };
            if (write(fd, &e, sizeof e) != (ssize_t)sizeof e)
                die("write %s", path);
            n++;
        }
        seg_scan_free(&s);
        free(v);
    }
    if (fd >= 0)
        close(fd);
    write_stats(false, rs);
    return n ? 3 : 0;       /* 3: tails left for the writers */
}

static void recover(bool reboot, uint32_t probe_inc, rstats *rs)
{
    memset(rs, 0, sizeof *rs);
    resolve_pending(rs);
    int64_t last[MAX_PARTS];
    seg_scan pre[MAX_PARTS];
    for (int p = 0; p < parts; p++) {
        size_t n;
        int64_t *v = list_segments(p, &n);
        if (n == 0)
            die("partition %d has no segment", p);
        last[p] = v[n - 1];
        free(v);
        scan_segment(p, last[p], &pre[p], NULL, NULL, NULL);
    }
    if (reboot)
        for (int p = 0; p < parts; p++) {
            char path[PATH_MAX + 8];
            part_dir(path, sizeof path - 8, p);
            strcat(path, "/head");
            if (unlink(path) != 0 && errno != ENOENT)
                die("unlink %s: %s", path, strerror(errno));
        }

    /* Open (the recovery scan runs here after a "reboot"), then a probe
     * append per partition (the write-mark repair runs here otherwise). */
    ulog *log = open_log();
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/probe-0.log", base_dir);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    uint8_t *val = xmalloc(MAX_VALUE);
    for (int p = 0; p < parts; p++) {
        int64_t lo, hi;
        int rc = ulog_watermarks(log, TOPIC, p, &lo, &hi);
        if (rc)
            die("ulog_watermarks p%d: %s", p, ulog_strerror(rc));
        uint64_t id = rec_id(PROBE_SLOT, probe_inc, (uint32_t)p);
        size_t len = value_len(id);
        value_fill(val, id, len);
        char key[17];
        key_fill(key, id);
        ulog_header h = { HEADER_KEY, 3, &id, 8 };
        ulog_record r = { .key = key_null(id) ? NULL : key, .key_len = key_null(id) ? 0 : 16,
                          .value = val, .value_len = len,
                          .headers = has_header(id) ? &h : NULL,
                          .header_count = has_header(id), .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = p };
        rc = ulog_append(log, TOPIC, &r, 1);
        char l[LINE];
        int n = rc == 0 ? snprintf(l, sizeof l, "A %016llx p%03d o%012lld",
                                   (unsigned long long)id, p, (long long)r.offset)
                        : snprintf(l, sizeof l, "F %016llx e%04d", (unsigned long long)id, -rc);
        line_pad(l, n);
        write_lines(fd, l, LINE);
        if (rc) {
            char msg[256];
            ulog_errmsg(log, msg, sizeof msg);
            fprintf(stderr, "check: probe append to p%d: %s (%s)\n", p, ulog_errname(rc), msg);
            rs->probe_fail++;
        }
    }
    close(fd);
    free(val);
    ulog_close(log);

    for (int p = 0; p < parts; p++) {
        seg_scan post;
        scan_segment(p, last[p], &post, NULL, NULL, NULL);
        size_t tail = pre[p].size - pre[p].valid_end;
        /* Gone: the file was removed or no longer holds those bytes as they
         * were (cut, then maybe written over by valid batches). */
        bool left = post.exists && post.size > post.valid_end;
        if (tail > 0) {
            if (!left) {
                if (reboot)
                    rs->torn_scan++;
                else
                    rs->torn_repair++;
                rs->torn_bytes += (int64_t)tail;
            }
        }
        if (left) {
            rs->uncut++;
            fprintf(stderr, "check: p%d segment %lld: %zu bytes after its last valid batch "
                    "remain after recovery (%s)\n", p, (long long)last[p],
                    post.size - post.valid_end, reboot ? "scan" : "repair");
        }
        /* Whole batches that were there and are not any more (a write never
         * published, cut by the repair). */
        for (size_t i = 0; i < pre[p].nb; i++) {
            bool kept = false;
            for (size_t j = 0; j < post.nb && !kept; j++)
                kept = post.pos[j] == pre[p].pos[i] && post.b[j].crc == pre[p].b[i].crc;
            if (!kept)
                rs->unpub++;
        }
        seg_scan_free(&post);
        /* And the partition's last segment now ends at its last batch. */
        size_t n;
        int64_t *v = list_segments(p, &n);
        if (n && v[n - 1] != last[p]) {
            scan_segment(p, v[n - 1], &post, NULL, NULL, NULL);
            if (post.size > post.valid_end) {
                rs->uncut++;
                fprintf(stderr, "check: p%d: new last segment %lld has %zu bytes after its "
                        "last valid batch\n", p, (long long)v[n - 1],
                        post.size - post.valid_end);
            }
            seg_scan_free(&post);
        }
        free(v);
        seg_scan_free(&pre[p]);
    }
    write_stats(reboot, rs);
}

/* ================================================================ final */

typedef struct part_log {
    int64_t   end;          /* offset after the last record */
    uint64_t *id;           /* id at each offset (0: damaged) */
    bool     *ok;
} part_log;

static part_log plog[MAX_PARTS];

/* The table's counts. */
static struct {
    int64_t lost, dup, gap, nonmono, g1a, g1a_log, precommitted, ahead, lost_commit;
    int64_t damaged_log, damaged_read, corrupt, api_diff, order, uncut, unexpected;
    int64_t torn_scan, torn_repair, torn_writer, torn_bytes, unpub, recover_runs, reboots;
    int64_t probe_fail;
    int64_t records, acked, failed, polled, readers_runs, commits, commit_runs, expected_err;
    int64_t bytes, segments;
} t;

static int printed;
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    if (printed++ >= 40)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "check: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void decode_all(void)
{
    for (int p = 0; p < parts; p++) {
        size_t n;
        int64_t *v = list_segments(p, &n);
        found *recs = NULL;
        size_t nrecs = 0, cap = 0;
        int64_t next = n ? v[0] : 0;
        if (n && v[0] != 0) {
            t.corrupt++;
            report("p%d: first segment is %lld, not 0", p, (long long)v[0]);
        }
        for (size_t i = 0; i < n; i++) {
            if (v[i] != next) {
                t.corrupt++;
                report("p%d: segment %lld follows one that ends at offset %lld", p,
                       (long long)v[i], (long long)next);
            }
            seg_scan s;
            scan_segment(p, v[i], &s, &recs, &nrecs, &cap);
            t.bytes += (int64_t)s.size;
            t.segments++;
            if (s.size > s.valid_end) {
                t.corrupt++;
                report("p%d segment %lld: %zu bytes at %zu are no valid batch (%s)", p,
                       (long long)v[i], s.size - s.valid_end, s.valid_end,
                       i + 1 < n ? "not the last segment" : "the last segment");
            }
            next = s.next;
            seg_scan_free(&s);
        }
        free(v);
        part_log *pl = &plog[p];
        pl->end = next;
        pl->id = calloc((size_t)next + 1, sizeof *pl->id);
        pl->ok = calloc((size_t)next + 1, sizeof *pl->ok);
        if (!pl->id || !pl->ok)
            die("out of memory");
        for (size_t i = 0; i < nrecs; i++) {
            if (recs[i].offset < 0 || recs[i].offset >= next)
                die("decoder: offset %lld outside [0, %lld)", (long long)recs[i].offset,
                    (long long)next);
            pl->id[recs[i].offset] = recs[i].ok ? recs[i].id : 0;
            pl->ok[recs[i].offset] = recs[i].ok;
            if (!recs[i].ok) {
                t.damaged_log++;
                report("p%d/%lld: a record that is no torture record", p,
                       (long long)recs[i].offset);
            }
        }
        t.records += next;
        free(recs);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t *all_ids;
static size_t    n_ids;
static uint64_t *failed_ids;
static size_t    n_failed, cap_failed;

static bool in_sorted(const uint64_t *v, size_t n, uint64_t id)
{
    return n && bsearch(&id, v, n, sizeof *v, cmp_u64) != NULL;
}

static void check_dups_and_order(void)
{
    size_t total = 0;
    for (int p = 0; p < parts; p++)
        total += (size_t)plog[p].end;
    all_ids = xmalloc(total * sizeof *all_ids);
    for (int p = 0; p < parts; p++) {
        /* Each writer incarnation appends one call after another: within a
         * partition its records are in sequence order. */
        for (int64_t o = 0; o < plog[p].end; o++) {
            if (!plog[p].ok[o])
                continue;
            uint64_t id = plog[p].id[o];
            all_ids[n_ids++] = id;
        }
    }
    for (int p = 0; p < parts; p++) {
        /* last seq per (slot, inc): a small open-addressing table */
        size_t cap = 1 << 16;
        uint64_t *keys = calloc(cap, sizeof *keys);
        uint32_t *seqs = calloc(cap, sizeof *seqs);
        if (!keys || !seqs)
            die("out of memory");
        for (int64_t o = 0; o < plog[p].end; o++) {
            if (!plog[p].ok[o])
                continue;
            uint64_t id = plog[p].id[o];
            uint64_t k = (id >> 32) + 1;
            size_t h = (size_t)mix64(k) & (cap - 1);
            while (keys[h] && keys[h] != k)
                h = (h + 1) & (cap - 1);
            if (keys[h] && id_seq(id) <= seqs[h]) {
                t.order++;
                report("p%d/%lld: %016llx after seq %u of the same writer run", p, (long long)o,
                       (unsigned long long)id, seqs[h]);
            }
            keys[h] = k;
            seqs[h] = id_seq(id);
        }
        free(keys);
        free(seqs);
    }
    qsort(all_ids, n_ids, sizeof *all_ids, cmp_u64);
    for (size_t i = 1; i < n_ids; i++)
        if (all_ids[i] == all_ids[i - 1]) {
            t.dup++;
            report("record %016llx is in the log more than once", (unsigned long long)all_ids[i]);
        }
}

/* Through the public API: the same records, the same ends, and the group. */
static void check_api(void)
{
    ulog *log = open_log();
    ulog_config *sc = ulog_config_new();
    char eb[128];
    if (!sc || ulog_config_set(sc, "auto.offset.reset", "earliest", eb, sizeof eb) != 0)
        die("config: %s", eb);
    ulog_sub *s;
    int rc = ulog_subscribe(log, TOPIC, NULL, sc, &s);
    ulog_config_free(sc);
    if (rc)
        die("ulog_subscribe: %s", ulog_strerror(rc));
    int64_t next[MAX_PARTS] = { 0 }, high[MAX_PARTS];
    for (int p = 0; p < parts; p++) {
        int64_t lo;
        if ((rc = ulog_watermarks(log, TOPIC, p, &lo, &high[p])) != 0)
            die("ulog_watermarks: %s", ulog_strerror(rc));
        if (lo != 0 || high[p] != plog[p].end) {
            t.api_diff++;
            report("p%d: the API says [%lld, %lld), the files hold [0, %lld)", p, (long long)lo,
                   (long long)high[p], (long long)plog[p].end);
        }
    }
    ulog_msg m;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        int p = m.partition;
        if (p < 0 || p >= parts) {
            t.api_diff++;
            continue;
        }
        uint64_t id = 0;
        bool ok = value_ok(m.value, m.value_len, &id);
        if (m.offset != next[p] || m.offset >= plog[p].end || !ok || plog[p].id[m.offset] != id) {
            t.api_diff++;
            report("p%d/%lld (expected %lld): the API gives %016llx (%s), the files %016llx", p,
                   (long long)m.offset, (long long)next[p], (unsigned long long)id,
                   ok ? "intact" : "damaged",
                   m.offset >= 0 && m.offset < plog[p].end
                       ? (unsigned long long)plog[p].id[m.offset] : 0ULL);
        }
        next[p] = m.offset + 1;
    }
    if (rc != ULOG_ETIMEDOUT) {
        t.api_diff++;
        char msg[256];
        ulog_errmsg(log, msg, sizeof msg);
        report("final API read: %s (%s)", ulog_errname(rc), msg);
    }
    for (int p = 0; p < parts; p++)
        if (next[p] != plog[p].end) {
            t.api_diff++;
            report("p%d: the API read up to %lld of %lld", p, (long long)next[p],
                   (long long)plog[p].end);
        }
    ulog_sub_close(s);
    ulog_group_desc *d;
    if ((rc = ulog_group_describe(log, GROUP, &d)) == 0) {
        for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
            ulog_group_lag g = ULOG_GROUP_LAG_INIT;
            if (ulog_group_desc_get(d, i, &g) != 0 || strcmp(g.topic, TOPIC) != 0)
                continue;
            if (g.partition >= 0 && g.partition < parts && g.committed > plog[g.partition].end) {
                t.ahead++;
                report("group: p%d committed %lld, the log ends at %lld", (int)g.partition,
                       (long long)g.committed, (long long)plog[g.partition].end);
            }
        }
        ulog_group_desc_free(d);
    } else if (rc != ULOG_ENOENT) {
        report("ulog_group_describe: %s", ulog_errname(rc));
        t.unexpected++;
    }
    ulog_close(log);
}

/* ---------------------------------------------------------------- logs */

static char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *len = 0;
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        die("fstat %s", path);
    char *b = xmalloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, b + got, (size_t)sb.st_size - got);
        if (r <= 0)
            die("read %s", path);
        got += (size_t)r;
    }
    b[got] = 0;
    close(fd);
    *len = got - got % LINE;
    return b;
}

typedef void line_fn(const char *l, const char *file);

/* Calls fn for every line of every logs/<prefix>-*.log. */
static void each_line(const char *prefix, line_fn *fn)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/logs", base_dir);
    DIR *d = opendir(dir);
    if (!d)
        die("opendir %s", dir);
    struct dirent *de;
    size_t pl = strlen(prefix);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, pl) != 0 || de->d_name[pl] != '-' ||
            !strstr(de->d_name, ".log"))
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *b = read_all(path, &len);
        for (size_t o = 0; o < len; o += LINE) {
            char l[LINE];
            memcpy(l, b + o, LINE);
            l[LINE - 1] = 0;
            fn(l, de->d_name);
        }
        free(b);
    }
    closedir(d);
}

static void collect_failed(const char *l, const char *file)
{
    (void)file;
    unsigned long long id;
    int e;
    if (l[0] == 'F' && sscanf(l, "F %llx e%d", &id, &e) == 2) {
        if (n_failed == cap_failed)
            failed_ids = xrealloc(failed_ids, (cap_failed = cap_failed ? 2 * cap_failed : 1024) *
                                                  sizeof *failed_ids);
        failed_ids[n_failed++] = id;
        t.failed++;
    }
}

static void check_ack(const char *l, const char *file)
{
    unsigned long long id;
    int p, e;
    long long off;
    if (l[0] == 'A') {
        if (sscanf(l, "A %llx p%d o%lld", &id, &p, &off) != 3 || p < 0 || p >= parts) {
            t.unexpected++;
            report("%s: bad line '%s'", file, l);
            return;
        }
        t.acked++;
        if (off < 0 || off >= plog[p].end || plog[p].id[off] != id) {
            t.lost++;
            report("%s: %016llx acknowledged at p%d/%lld; the log holds %016llx there%s", file,
                   id, p, off,
                   off >= 0 && off < plog[p].end ? (unsigned long long)plog[p].id[off] : 0ULL,
                   off >= plog[p].end ? " (past its end)" : "");
        }
    } else if (l[0] == 'F') {
        if (sscanf(l, "F %llx e%d", &id, &e) == 2 && in_sorted(all_ids, n_ids, id)) {
            t.g1a_log++;
            report("%s: %016llx failed (error -%d) but is in the log", file, id, e);
        }
    } else if (l[0] == 'X') {
        t.unexpected++;
        report("%s: %s", file, l);
    } else if (l[0] == 'x') {
        t.expected_err++;
    } else {
        t.unexpected++;
        report("%s: bad line '%s'", file, l);
    }
}

/* A reader's or committer's file, replayed run by run. */
static struct rstate {
    char     file[300];
    uint32_t inc;
    bool     is_committer;
    int64_t  expect[MAX_PARTS];     /* next offset to be polled; -1 unknown */
    /* group commits: the last that returned, and one begun but not returned */
    int64_t  done[MAX_PARTS];
    int64_t  fl[MAX_PARTS];
    int64_t  start[MAX_PARTS];
    uint32_t fl_n;
    int      fl_parts;
    bool     inflight;
    int      s_seen;                /* S lines of this run so far */
    bool     started;
} rs;

static void run_start(uint32_t inc)
{
    rs.inc = inc;
    rs.s_seen = 0;
    rs.started = true;
    for (int p = 0; p < parts; p++)
        rs.expect[p] = -1;
}

static bool digits(const char *l, int from, int n, long long *v)
{
    long long x = 0;
    for (int i = from; i < from + n; i++) {
        if (l[i] < '0' || l[i] > '9')
            return false;
        x = x * 10 + (l[i] - '0');
    }
    *v = x;
    return true;
}

/* "R 000123 p001 o000000012345 0123456789abcdef": by position (there are
 * millions), sscanf when the widths differ. */
static bool parse_rec(const char *l, unsigned *inc, int *p, long long *off,
                      unsigned long long *id)
{
    long long a, b;
    if (l[8] == ' ' && l[9] == 'p' && l[13] == ' ' && l[14] == 'o' && l[27] == ' ' &&
        digits(l, 2, 6, &a) && digits(l, 10, 3, &b) && digits(l, 15, 12, off)) {
        unsigned long long x = 0;
        int i = 28;
        for (; i < 44; i++) {
            char c = l[i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                break;
            x = x << 4 | (unsigned)d;
        }
        if (i == 44 && l[44] == ' ') {
            *inc = (unsigned)a;
            *p = (int)b;
            *id = x;
            return true;
        }
    }
    return sscanf(l + 2, "%u p%d o%lld %llx", inc, p, off, id) == 4;
}

static void reader_line(const char *l, const char *file)
{
    unsigned inc, n;
    int p, e;
    long long a, b, c;
    unsigned long long id;
    if (strcmp(rs.file, file) != 0) {
        memset(&rs, 0, sizeof rs);
        snprintf(rs.file, sizeof rs.file, "%s", file);
        rs.is_committer = strncmp(file, "committer", 9) == 0;
        for (int q = 0; q < parts; q++)
            rs.done[q] = 0;     /* no commit yet: earliest, which is 0 */
    }
    switch (l[0]) {
    case 'G':
        if (sscanf(l, "G %u p%d c%lld l%lld h%lld", &inc, &p, &a, &b, &c) != 5 || p < 0 ||
            p >= parts)
            goto bad;
        if (a > c) {
            t.ahead++;
            report("%s run %u: group committed p%d/%lld, beyond the log end %lld", file, inc, p,
                   a, c);
        }
        return;
    case 'S':
        if (sscanf(l, "S %u p%d o%lld", &inc, &p, &a) != 3 || p < 0 || p >= parts)
            goto bad;
        if (!rs.started || inc != rs.inc) {
            run_start(inc);
            if (rs.is_committer)
                t.commit_runs++;
            else
                t.readers_runs++;
        }
        if (rs.is_committer && rs.s_seen < parts) {
            /* The run's start: where the group's last commit left it (or
             * the commit in flight when the last run was killed). */
            rs.start[p] = a;
            if (++rs.s_seen == parts) {
                bool at_done = true, at_fl = rs.inflight;
                for (int q = 0; q < parts; q++) {
                    at_done &= rs.start[q] == rs.done[q];
                    at_fl &= rs.start[q] == rs.fl[q];
                }
                if (at_fl)
                    memcpy(rs.done, rs.fl, sizeof rs.done);
                for (int q = 0; q < parts && !at_done && !at_fl; q++) {
                    int64_t hi = rs.done[q];
                    if (rs.inflight && rs.fl[q] > hi)
                        hi = rs.fl[q];
                    if (rs.start[q] > hi) {
                        t.gap++;
                        report("%s run %u: the group resumes p%d at %lld, past its last "
                               "commit %lld%s", file, inc, q, (long long)rs.start[q],
                               (long long)rs.done[q], rs.inflight ? " and the one in flight" : "");
                    } else if (rs.start[q] != rs.done[q] &&
                               (!rs.inflight || rs.start[q] != rs.fl[q])) {
                        t.lost_commit++;
                        report("%s run %u: the group resumes p%d at %lld; its last commit that "
                               "returned says %lld", file, inc, q, (long long)rs.start[q],
                               (long long)rs.done[q]);
                    }
                }
                if (!at_done && !at_fl)
                    memcpy(rs.done, rs.start, sizeof rs.done);
                rs.inflight = false;
            }
        }
        rs.expect[p] = a;
        return;
    case 'R':
    case 'D':
        if (!parse_rec(l, &inc, &p, &a, &id) || p < 0 || p >= parts)
            goto bad;
        if (!rs.started || inc != rs.inc) {
            /* Records of a run whose start positions were not logged. */
            run_start(inc);
        }
        t.polled++;
        if (l[0] == 'D') {
            t.damaged_read++;
            report("%s run %u: damaged record polled at p%d/%lld", file, inc, p, a);
        }
        if (rs.expect[p] >= 0 && a != rs.expect[p]) {
            if (a > rs.expect[p]) {
                t.gap++;
                report("%s run %u: p%d polled %lld, expected %lld (skip)", file, inc, p, a,
                       (long long)rs.expect[p]);
            } else {
                t.nonmono++;
                report("%s run %u: p%d polled %lld, expected %lld (backwards or repeated)",
                       file, inc, p, a, (long long)rs.expect[p]);
            }
        }
        rs.expect[p] = a + 1;
        if (l[0] == 'R' && in_sorted(failed_ids, n_failed, id)) {
            t.g1a++;
            report("%s run %u: polled %016llx at p%d/%lld, a record whose append failed", file,
                   inc, id, p, a);
        }
        if (l[0] == 'R' && (a >= plog[p].end || plog[p].id[a] != id)) {
            t.precommitted++;
            report("%s run %u: polled %016llx at p%d/%lld; the log holds %016llx there%s", file,
                   inc, id, p, a, a < plog[p].end ? (unsigned long long)plog[p].id[a] : 0ULL,
                   a >= plog[p].end ? " (past its end)" : "");
        }
        return;
    case 'c':
        if (sscanf(l, "c %u n%u p%d o%lld", &inc, &n, &p, &a) != 4 || p < 0 || p >= parts)
            goto bad;
        if (p == 0 || n != rs.fl_n) {
            rs.fl_n = n;
            rs.fl_parts = 0;
        }
        rs.fl[p] = a;
        if (++rs.fl_parts == parts)
            rs.inflight = true;     /* complete: ulog_commit was called */
        return;
    case 'C':
        if (sscanf(l, "C %u n%u", &inc, &n) != 2)
            goto bad;
        if (!rs.inflight || n != rs.fl_n)
            goto bad;
        memcpy(rs.done, rs.fl, sizeof rs.done);
        rs.inflight = false;
        t.commits++;
        return;
    case 'E':
        /* A failed commit stored nothing or everything: either may follow. */
        if (sscanf(l, "E %u n%u e%d", &inc, &n, &e) != 3)
            goto bad;
        t.unexpected++;
        report("%s: %s", file, l);
        return;
    case 'X':
        t.unexpected++;
        report("%s: %s", file, l);
        return;
    case 'x':
        t.expected_err++;
        return;
    }
bad:
    t.unexpected++;
    report("%s: unexpected line '%s'", file, l);
}

static void read_recover_stats(void)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/logs/recover-stats.log", base_dir);
    size_t len;
    char *b = read_all(path, &len);
    for (size_t o = 0; o < len; o += LINE) {
        int r, s, m, d, u, w, f;
        long long bytes;
        if (sscanf(b + o, "T r%d s%d m%d d%d b%lld u%d w%d f%d", &r, &s, &m, &d, &bytes, &u,
                   &w, &f) != 8)
            continue;
        t.recover_runs++;
        t.reboots += r;
        t.torn_scan += s;
        t.torn_repair += m;
        t.torn_writer += d;
        t.torn_bytes += bytes;
        t.uncut += u;
        t.unpub += w;
        t.probe_fail += f;
    }
    free(b);
}

static int print_table(void)
{
    struct { const char *name; int64_t v; } must0[] = {
        { "lost-write (acknowledged, then gone)", t.lost },
        { "duplicate (a record twice in the log)", t.dup },
        { "gap / poll-skip", t.gap },
        { "nonmonotonic-poll", t.nonmono },
        { "G1a (a reader saw a failed write)", t.g1a },
        { "failed write present in the log", t.g1a_log },
        { "precommitted-read (seen, not in the log)", t.precommitted },
        { "committed-offset-ahead (group > log end)", t.ahead },
        { "lost group commit (resumed before it)", t.lost_commit },
        { "damaged record (in the log or polled)", t.damaged_log + t.damaged_read },
        { "corrupt segment bytes (independent decode)", t.corrupt },
        { "API read differs from the independent decode", t.api_diff },
        { "writer order broken within a partition", t.order },
        { "torn tail left after recovery", t.uncut },
        { "unexpected errors (API calls, probe appends)", t.unexpected + t.probe_fail },
    };
    int bad = 0;
    printf("\n+--------------------------------------------------+-----------+\n");
    printf("| ulog kill torture: check (must be 0)             |     count |\n");
    printf("+--------------------------------------------------+-----------+\n");
    for (size_t i = 0; i < sizeof must0 / sizeof must0[0]; i++) {
        printf("| %-48s | %9lld |%s\n", must0[i].name, (long long)must0[i].v,
               must0[i].v ? "  <-- FAIL" : "");
        bad += must0[i].v != 0;
    }
    printf("+--------------------------------------------------+-----------+\n");
    int64_t torn = t.torn_scan + t.torn_repair + t.torn_writer;
    printf("| torn tails cut by recovery (must be > 0)         | %9lld |%s\n", (long long)torn,
           torn ? "" : "  <-- FAIL");
    printf("|   by the recovery scan (after a reboot)          | %9lld |\n", (long long)t.torn_scan);
    printf("|   by the write-mark repair, at the next open     | %9lld |\n",
           (long long)t.torn_repair);
    printf("|   by the write-mark repair, in a live writer     | %9lld |\n",
           (long long)t.torn_writer);
    printf("|   bytes cut                                      | %9lld |\n", (long long)t.torn_bytes);
    printf("| unpublished whole batches cut by the repair      | %9lld |\n", (long long)t.unpub);
    printf("+--------------------------------------------------+-----------+\n");
    printf("| records in the log                               | %9lld |\n", (long long)t.records);
    printf("| segments in the log                              | %9lld |\n", (long long)t.segments);
    printf("| MiB in the log                                   | %9lld |\n",
           (long long)(t.bytes >> 20));
    printf("| records acknowledged (writers and probes)        | %9lld |\n", (long long)t.acked);
    printf("| records whose append failed (G1a candidates)     | %9lld |\n", (long long)t.failed);
    printf("| records polled (readers and the group)           | %9lld |\n", (long long)t.polled);
    printf("| reader runs / group committer runs               | %4lld/%4lld |\n",
           (long long)t.readers_runs, (long long)t.commit_runs);
    printf("| group commits that returned                      | %9lld |\n", (long long)t.commits);
    printf("| recover steps (of them after a reboot)           | %4lld/%4lld |\n",
           (long long)t.recover_runs, (long long)t.reboots);
    printf("| errors in fault-injected runs (expected)         | %9lld |\n",
           (long long)t.expected_err);
    printf("+--------------------------------------------------+-----------+\n");
    bad += torn == 0;
    printf("check: %s\n", bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}

static void phase(const char *name)
{
    static struct timespec t0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (name)
        fprintf(stderr, "check: %s: %.2f s\n", name,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    t0 = t1;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "recover") != 0 && strcmp(argv[1], "final") != 0))
        die("usage: check recover|final DIR PARTS reboot|keep|defer PROBE_INC");
    crc_init();
    snprintf(base_dir, sizeof base_dir, "%s", argv[2]);
    parts = atoi(argv[3]);
    if (parts < 1 || parts > MAX_PARTS)
        die("bad PARTS");
    bool reboot = strcmp(argv[4], "reboot") == 0;
    uint32_t probe_inc = (uint32_t)strtoul(argv[5], NULL, 10);
    rstats r;
    if (strcmp(argv[4], "defer") == 0 && strcmp(argv[1], "recover") == 0)
        return defer(&r);
    recover(reboot, probe_inc, &r);
    if (strcmp(argv[1], "recover") == 0)
        return 0;

    phase(NULL);
    decode_all();
    phase("decode");
    check_dups_and_order();
    phase("dups");
    check_api();
    phase("api");
    each_line("writer", collect_failed);
    each_line("probe", collect_failed);
    qsort(failed_ids, n_failed, sizeof *failed_ids, cmp_u64);
    each_line("writer", check_ack);
    each_line("probe", check_ack);
    memset(&rs, 0, sizeof rs);
    each_line("reader", reader_line);
    memset(&rs, 0, sizeof rs);
    each_line("committer", reader_line);
    phase("readers");
    read_recover_stats();
    return print_table();
}
