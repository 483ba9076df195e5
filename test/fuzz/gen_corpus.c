/* gen_corpus.c -- writes the seed corpora of the fuzz targets:
 *
 *   gen_corpus DIR      makes DIR/batch, DIR/recover, DIR/meta, DIR/config
 *                       and writes seed-* files into them
 *
 * `make fuzz-corpus` runs it on test/fuzz/corpus. The seeds are made by the
 * library's own encoders (ulog__batch_encode, ulog__topic_cfg_encode) with
 * fixed timestamps, so the output is the same on every run; files named
 * other than seed-* (crashers kept as regression inputs, inputs worth
 * keeping from fuzzing runs) are left alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define T0 1700000000000LL

static const char *outdir;
static int failed;

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, int64_t v)
{
    put_le32(p, (uint32_t)(uint64_t)v);
    put_le32(p + 4, (uint32_t)((uint64_t)v >> 32));
}

/* A growable byte buffer. */
typedef struct buf {
    uint8_t *p;
    size_t   n, cap;
} buf;

static void add(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            perror("gen_corpus");
            exit(1);
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void add_u8(buf *b, uint8_t v)
{
    add(b, &v, 1);
}

static void add_be16(buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    add(b, x, 2);
}

static void add_str(buf *b, const char *s)
{
    add(b, s, strlen(s));
}

static void write_seed(const char *target, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: mkdir %s: %s\n", path, strerror(errno));
        failed = 1;
        return;
    }
    snprintf(path, sizeof path, "%s/%s/seed-%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
        failed = 1;
    }
}

static void write_buf(const char *target, const char *name, const buf *b)
{
    write_seed(target, name, b->p, b->n);
}

/* ---------------------------------------------------------------- batches */

/* Record shapes, chosen by `kind`: keys, null and empty keys and values,
 * headers (with a null and an empty value), big values (2-byte lengths),
 * timestamps out of order. */
static uint8_t big[400];
static ulog_header hdrs[4] = {
    { "trace", 5, "abc", 3 },
    { "empty", 5, "", 0 },
    { "null", 4, NULL, 0 },
    { "", 0, "k-less", 6 },
};

static void make_rec(ulog_record *r, int kind, int i)
{
    static char keys[64][16];
    memset(r, 0, sizeof *r);
    snprintf(keys[i % 64], sizeof keys[0], "key-%d", i);
    r->timestamp = T0 + i * 7;
    r->partition = 0;
    switch (kind % 6) {
    case 0:
        r->key = keys[i % 64];
        r->key_len = strlen(keys[i % 64]);
        r->value = "value";
        r->value_len = 5;
        break;
    case 1:                                 /* null key, empty value */
        r->value = "";
        r->value_len = 0;
        break;
    case 2:                                 /* empty key, null value */
        r->key = "";
        r->key_len = 0;
        break;
    case 3:                                 /* headers */
        r->key = keys[i % 64];
        r->key_len = strlen(keys[i % 64]);
        r->value = "v";
        r->value_len = 1;
        r->headers = hdrs;
        r->header_count = 1 + (size_t)(i % 4);
        break;
    case 4:                                 /* a 2-byte length */
        r->value = big;
        r->value_len = 150 + (size_t)i;
        break;
    case 5:                                 /* time going backwards */
        r->key = "k";
        r->key_len = 1;
        r->value = "late";
        r->value_len = 4;
        r->timestamp = T0 - 1000 * i;
        break;
    }
}

/* A batch of n records of the given kinds (kind + i for record i when
 * mixed) at base offset `base`; caller frees *out. */
static size_t make_batch(uint8_t **out, int kind, bool mixed, size_t n, int64_t base, bool lat)
{
    ulog_record recs[64];
    for (size_t i = 0; i < n; i++)
        make_rec(&recs[i], mixed ? kind + (int)i : kind, (int)i);
    ulog__batch_src src = { recs, NULL, n };
    size_t size = ulog__batch_size(&src, T0);
    uint8_t *b = malloc(size);
    if (!b)
        exit(1);
    ulog__batch_encode(b, size, &src, T0, lat, NULL);
    ulog__batch_set_base_offset(b, base);
    *out = b;
    return size;
}

static void fix_crc(uint8_t *b, size_t frame)
{
    put_be32(b + 17, ulog__crc32c(0, b + 21, frame - 21));
}

static void gen_batch(void)
{
    static const struct { const char *name; int kind; bool mixed; size_t n; bool lat; } v[] = {
        { "one", 0, false, 1, false },        { "keys", 0, false, 5, false },
        { "null-key-empty-value", 1, false, 3, false },
        { "empty-key-null-value", 2, false, 3, false },
        { "headers", 3, false, 4, false },    { "big-values", 4, false, 2, false },
        { "time-backwards", 5, false, 4, false },
        { "mixed", 0, true, 12, false },      { "log-append-time", 0, true, 6, true },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t *b;
        size_t n = make_batch(&b, v[i].kind, v[i].mixed, v[i].n, 0, v[i].lat);
        for (int mode = 0; mode < 4; mode++) {
            /* All shapes as whole batches; the CRC-fixing and record modes
             * on a few. */
            if (mode && (int)(i % 3) != mode - 1 && strcmp(v[i].name, "mixed") != 0)
                continue;
            buf s = { 0 };
            add_u8(&s, (uint8_t)mode);
            if (mode == 3)
                add(&s, b + ULOG__BATCH_HEADER_SIZE, n - ULOG__BATCH_HEADER_SIZE);
            else
                add(&s, b, n);
            char name[64];
            snprintf(name, sizeof name, "m%d-%s", mode, v[i].name);
            write_buf("batch", name, &s);
            free(s.p);
        }
        free(b);
    }

    /* Hand-made headers: no records, a compressed codec, a base offset. */
    uint8_t *b;
    size_t n = make_batch(&b, 0, false, 1, 0, false);
    uint8_t h[ULOG__BATCH_HEADER_SIZE + 1];
    h[0] = 0;
    memcpy(h + 1, b, ULOG__BATCH_HEADER_SIZE);
    put_be32(h + 1 + 8, ULOG__BATCH_HEADER_SIZE - ULOG__BATCH_LOG_OVERHEAD);
    put_be32(h + 1 + 23, 0);
    put_be32(h + 1 + 57, 0);
    fix_crc(h + 1, ULOG__BATCH_HEADER_SIZE);
    write_seed("batch", "m0-no-records", h, sizeof h);

    buf s = { 0 };
    add_u8(&s, 0);
    add(&s, b, n);
    s.p[1 + 22] |= 1;                       /* gzip */
    fix_crc(s.p + 1, n);
    write_buf("batch", "m0-compressed", &s);
    s.p[1 + 22] &= (uint8_t)~1;
    put_be64(s.p + 1, 1234567);
    fix_crc(s.p + 1, n);
    write_buf("batch", "m0-base-offset", &s);
    s.n = 0;
    add_u8(&s, 0);
    add(&s, b, n - 3);                      /* torn */
    write_buf("batch", "m0-torn", &s);
    free(s.p);
    free(b);
}

/* ---------------------------------------------------------------- segments */

/* A segment's bytes: `nb` batches of 1-3 records from offset `base`. */
static void make_segment(buf *seg, int64_t base, size_t nb, int kind0, int64_t *next)
{
    int64_t off = base;
    for (size_t i = 0; i < nb; i++) {
        uint8_t *b;
        size_t cnt = 1 + i % 3;
        size_t n = make_batch(&b, kind0 + (int)i, true, cnt, off, i % 4 == 3);
        add(seg, b, n);
        free(b);
        off += (int64_t)cnt;
    }
    if (next)
        *next = off;
}

static void gen_recover(void)
{
    buf seg = { 0 }, s = { 0 };
    int64_t next;
    make_segment(&seg, 0, 5, 0, &next);

    /* One whole segment; torn; garbage and zero tails. */
    add_u8(&s, 0x00);
    add_be16(&s, 0);
    add(&s, seg.p, seg.n);
    write_buf("recover", "one-segment", &s);
    s.n -= 7;
    write_buf("recover", "torn-tail", &s);
    s.n += 7;
    add_str(&s, "garbage after the last batch");
    write_buf("recover", "garbage-tail", &s);
    s.n -= strlen("garbage after the last batch");
    static const uint8_t zeros[100];
    add(&s, zeros, sizeof zeros);
    write_buf("recover", "zero-tail", &s);

    /* A flipped bit in the third batch. */
    s.n = 0;
    add_u8(&s, 0x00);
    add_be16(&s, 0);
    add(&s, seg.p, seg.n);
    s.p[3 + seg.n / 2] ^= 0x10;
    write_buf("recover", "flipped-bit", &s);

    /* Two and three segments, each starting where the previous ended. */
    buf seg2 = { 0 }, seg3 = { 0 };
    int64_t next2, next3;
    make_segment(&seg2, next, 3, 2, &next2);
    make_segment(&seg3, next2, 2, 4, &next3);
    s.n = 0;
    add_u8(&s, 0x01);
    add_be16(&s, 0);
    add_be16(&s, (uint16_t)seg.n);
    add_be16(&s, (uint16_t)(next - 0 - 1));
    add(&s, seg.p, seg.n);
    add(&s, seg2.p, seg2.n);
    write_buf("recover", "two-segments", &s);

    s.n = 0;
    add_u8(&s, 0x02);
    add_be16(&s, 0);
    add_be16(&s, (uint16_t)seg.n);
    add_be16(&s, (uint16_t)(next - 1));
    add_be16(&s, (uint16_t)seg2.n);
    add_be16(&s, (uint16_t)(next2 - next - 1));
    add(&s, seg.p, seg.n);
    add(&s, seg2.p, seg2.n);
    add(&s, seg3.p, seg3.n);
    write_buf("recover", "three-segments", &s);

    /* A gap between segments, and a first segment with zeros after its
     * batches (a preallocated segment left untrimmed). */
    s.n = 0;
    add_u8(&s, 0x01);
    add_be16(&s, 0);
    add_be16(&s, (uint16_t)seg.n);
    add_be16(&s, (uint16_t)(next + 3));
    add(&s, seg.p, seg.n);
    add(&s, seg2.p, seg2.n);
    write_buf("recover", "gap-between-segments", &s);

    s.n = 0;
    add_u8(&s, 0x01);
    add_be16(&s, 0);
    add_be16(&s, (uint16_t)(seg.n + 64));
    add_be16(&s, (uint16_t)(next - 1));
    add(&s, seg.p, seg.n);
    add(&s, zeros, 64);
    add(&s, seg2.p, seg2.n);
    write_buf("recover", "untrimmed-zeros-before-next-segment", &s);

    /* A segment that does not start at offset 0. */
    buf seg9 = { 0 };
    make_segment(&seg9, 900, 3, 1, NULL);
    s.n = 0;
    add_u8(&s, 0x00);
    add_be16(&s, 900);
    add(&s, seg9.p, seg9.n);
    write_buf("recover", "base-900", &s);

    /* Checkpoints: at the second batch; past the end; hostile raw values. */
    uint8_t *b;
    size_t first = make_batch(&b, 0, true, 1, 0, false);
    free(b);
    s.n = 0;
    add_u8(&s, 0x04);
    add_be16(&s, 0);
    add_u8(&s, 0);
    add_be16(&s, (uint16_t)first);
    add_be16(&s, 1);
    add(&s, seg.p, seg.n);
    write_buf("recover", "checkpoint", &s);

    s.n = 0;
    add_u8(&s, 0x04);
    add_be16(&s, 0);
    add_u8(&s, 0);
    add_be16(&s, (uint16_t)(seg.n + 100));
    add_be16(&s, 40);
    add(&s, seg.p, seg.n);
    write_buf("recover", "checkpoint-past-end", &s);

    s.n = 0;
    add_u8(&s, 0x0c);
    add_be16(&s, 0);
    uint8_t raw[24];
    put_be64(raw, 0);
    put_be64(raw + 8, (uint64_t)-5);
    put_be64(raw + 16, (uint64_t)INT64_MAX);
    add(&s, raw, sizeof raw);
    add(&s, seg.p, seg.n);
    write_buf("recover", "checkpoint-hostile", &s);

    /* No segment at all, without and with a checkpoint. */
    s.n = 0;
    add_u8(&s, 0x10);
    write_buf("recover", "empty-directory", &s);
    s.n = 0;
    add_u8(&s, 0x14);
    add_be16(&s, 0);
    add_u8(&s, 0);
    add_be16(&s, 0);
    add_be16(&s, 77);
    write_buf("recover", "empty-directory-checkpoint", &s);

    free(seg.p);
    free(seg2.p);
    free(seg3.p);
    free(seg9.p);
    free(s.p);
}

/* ---------------------------------------------------------------- meta */

enum { DB_TOPICS, DB_GROUPS, DB_RECOVERY, DB_OFFIDX, DB_TIMEIDX, DB_SEQ };

static void add_ent(buf *s, int db, const void *k, size_t kl, const void *v, size_t vl)
{
    add_u8(s, (uint8_t)db);
    add_u8(s, (uint8_t)kl);
    add(s, k, kl);
    add_be16(s, (uint16_t)vl);
    add(s, v, vl);
}

static uint32_t cfg_version = 1;    /* format 2's settings version */

static void add_topic(buf *s, const char *name, uint32_t fmt, uint32_t id, int32_t parts,
                      const ulog__topic_cfg *tc)
{
    char *text;
    size_t tl;
    if (ulog__topic_cfg_encode(tc, &text, &tl) != 0)
        exit(1);
    uint8_t v[512];
    size_t hdr = fmt == 2 ? 16 : 12;    /* format 2: a settings version */
    put_le32(v, fmt);
    put_le32(v + 4, id);
    put_le32(v + 8, (uint32_t)parts);
    if (fmt == 2)
        put_le32(v + 12, cfg_version);
    memcpy(v + hdr, text, tl);
    add_ent(s, DB_TOPICS, name, strlen(name), v, hdr + tl);
    free(text);
}

static void add_group(buf *s, const char *g, uint32_t topic, uint32_t part, int64_t off)
{
    uint8_t k[300], v[24] = { 0 };
    size_t n = strlen(g);
    memcpy(k, g, n);
    k[n] = 0;
    put_be32(k + n + 1, topic);
    put_be32(k + n + 5, part);
    put_le32(v, 1);
    put_le64(v + 8, off);
    put_le64(v + 16, T0);
    add_ent(s, DB_GROUPS, k, n + 9, v, sizeof v);
}

static void add_index(buf *s, int db, uint32_t topic, uint32_t part, uint64_t x, int64_t a,
                      int64_t b, int64_t c)
{
    uint8_t k[16], v[24];
    put_be32(k, topic);
    put_be32(k + 4, part);
    put_be64(k + 8, x);
    put_le64(v, a);
    put_le64(v + 8, b);
    put_le64(v + 16, c);
    add_ent(s, db, k, sizeof k, v, sizeof v);
}

static void gen_meta(void)
{
    ulog__topic_cfg def, lat;
    if (ulog__config_topic(NULL, &def, NULL, 0) != 0)
        exit(1);
    lat = def;
    lat.log_append_time = true;
    lat.flush_policy = ULOG__FLUSH_NONE;
    lat.segment_bytes = 4096;

    buf s = { 0 };
    add_topic(&s, "orders", 1, 1, 3, &def);
    write_buf("meta", "topic", &s);
    add_topic(&s, "events.v2", 1, 2, 1, &lat);
    add_topic(&s, "z_last-topic", 1, 7, 10000, &def);
    write_buf("meta", "topics", &s);

    s.n = 0;
    add_topic(&s, "altered", 2, 3, 1, &lat);
    cfg_version = 0;                    /* never written: corrupt */
    add_topic(&s, "zero-version", 2, 5, 1, &def);
    cfg_version = 1;
    write_buf("meta", "topic-format-2", &s);
    s.n = 0;
    add_topic(&s, "future", 3, 3, 1, &def);
    write_buf("meta", "topic-format-3", &s);
    s.n = 0;
    add_topic(&s, "zero-parts", 1, 4, 0, &def);
    write_buf("meta", "topic-no-partitions", &s);
    s.n = 0;
    add_ent(&s, DB_TOPICS, "short", 5, "\1\0\0\0\1\0", 6);
    add_ent(&s, DB_TOPICS, "bad/name", 8, "\1\0\0\0\1\0\0\0\1\0\0\0", 12);
    write_buf("meta", "topic-short-and-bad-name", &s);

    s.n = 0;
    add_topic(&s, "orders", 1, 1, 3, &def);
    add_group(&s, "billing", 1, 0, 10);
    add_group(&s, "billing", 1, 1, 0);
    add_group(&s, "billing", 1, 2, 99);
    add_group(&s, "audit", 1, 0, 5);
    add_group(&s, "audit", 9, 0, 5);
    write_buf("meta", "groups", &s);
    add_group(&s, "neg", 1, 0, -1);
    write_buf("meta", "group-negative-offset", &s);

    s.n = 0;
    uint8_t k[8], v[32];
    put_be32(k, 1);
    put_be32(k + 4, 0);
    put_le64(v, 42);
    put_le64(v + 8, 0);
    put_le64(v + 16, 4242);
    put_le64(v + 24, T0);
    add_ent(&s, DB_RECOVERY, k, 8, v, 32);
    put_be32(k + 4, 1);
    add_ent(&s, DB_RECOVERY, k, 8, v, 24);
    write_buf("meta", "checkpoints", &s);

    s.n = 0;
    add_index(&s, DB_OFFIDX, 1, 0, 0, 0, 0, T0);
    add_index(&s, DB_OFFIDX, 1, 0, 40, 0, 4096, T0 + 40);
    add_index(&s, DB_OFFIDX, 1, 0, 90, 90, 0, T0 + 90);
    add_index(&s, DB_OFFIDX, 1, 1, 5, 0, 512, T0);
    add_index(&s, DB_TIMEIDX, 1, 0, (uint64_t)T0 ^ (1ULL << 63), 0, 0, 0);
    add_index(&s, DB_TIMEIDX, 1, 0, (uint64_t)(T0 + 40) ^ (1ULL << 63), 40, 0, 4096);
    add_ent(&s, DB_RECOVERY, k, 8, v, 32);
    write_buf("meta", "indexes", &s);
    add_ent(&s, DB_OFFIDX, "\0\0\0\1\0\0\0\0\0\0\0\0\0\0\0\x30", 16, "short", 5);
    write_buf("meta", "index-bad-value", &s);

    s.n = 0;
    add_ent(&s, DB_SEQ, "topic_id", 8, "\x05\0\0\0", 4);
    write_buf("meta", "seq", &s);
    free(s.p);
}

/* ---------------------------------------------------------------- config */

static void gen_config(void)
{
    ulog__topic_cfg def;
    if (ulog__config_topic(NULL, &def, NULL, 0) != 0)
        exit(1);
    char *text;
    size_t tl;
    buf s = { 0 };
    if (ulog__topic_cfg_encode(&def, &text, &tl) != 0)
        exit(1);
    add_u8(&s, 0);
    add(&s, text, tl);
    write_buf("config", "text-defaults", &s);
    free(text);

    ulog__topic_cfg c = def;
    c.log_append_time = true;
    c.preallocate = true;
    c.flush_policy = ULOG__FLUSH_INTERVAL;
    c.flush_ms = 250;
    c.segment_bytes = 4096;
    c.cleanup_policy = ULOG__CLEANUP_COMPACT_DELETE;
    c.delete_retention_ms = 0;
    c.min_compaction_lag_ms = 1000;
    c.min_cleanable_dirty_ppm = 50000;
    if (ulog__topic_cfg_encode(&c, &text, &tl) != 0)
        exit(1);
    s.n = 0;
    add_u8(&s, 0);
    add(&s, text, tl);
    write_buf("config", "text-all-changed", &s);
    free(text);

    static const char *const texts[] = {
        "segment.bytes=8192\n",                   /* the rest default */
        "",                                       /* all default */
        "flush.policy=none\nflush.policy=none\n", /* twice */
        "file.mode=0640\n",                       /* not a topic setting */
        "segment.bytes=4096",                     /* no final newline */
        "max.message.bytes=00000000000000000064\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[32];
        s.n = 0;
        add_u8(&s, 0);
        add_str(&s, texts[i]);
        snprintf(name, sizeof name, "text-%zu", i);
        write_buf("config", name, &s);
    }

    static const char *const names[] = { "orders", ".", "..", "...", "a-b_c.D9", "bad/name", "" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char name[32];
        s.n = 0;
        add_u8(&s, 1);
        add_str(&s, names[i]);
        snprintf(name, sizeof name, "name-%zu", i);
        write_buf("config", name, &s);
    }
    s.n = 0;
    add_u8(&s, 1);
    for (int i = 0; i < 249; i++)
        add_u8(&s, 'n');
    write_buf("config", "name-249", &s);
    add_u8(&s, 'n');
    write_buf("config", "name-250", &s);

    static const char *const sets[] = {
        "file.mode=0640", "dir.mode=750", "index.flush.ms=100", "segment.bytes=1073741824",
        "max.message.bytes=64", "flush.policy=interval", "flush.ms=3600000",
        "index.interval.bytes=512", "message.timestamp.type=LogAppendTime",
        "preallocate=true", "auto.offset.reset=earliest", "poll.spin.us=100000",
        "poll.spin.us=-1", "segment.bytes=4095", "no.such.setting=1", "flush.policy",
        "cleanup.policy=delete,compact", "min.cleanable.dirty.ratio=1",
        "min.cleanable.dirty.ratio=.05", "min.cleanable.dirty.ratio=0.1234567",
        "delete.retention.ms=0", "min.compaction.lag.ms=-1",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char name[32];
        s.n = 0;
        add_u8(&s, 2);
        add_u8(&s, (uint8_t)(i * 7));         /* error buffer size */
        add_str(&s, sets[i]);
        snprintf(name, sizeof name, "set-%zu", i);
        write_buf("config", name, &s);
    }
    free(s.p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: mkdir %s: %s\n", outdir, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 131 + 7);
    gen_batch();
    gen_recover();
    gen_meta();
    gen_config();
    return failed;
}
