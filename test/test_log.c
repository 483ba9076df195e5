/* test_log.c -- the log end to end through the public API: append and read
 * back, segment rolls, seeks by offset and by time, reopening, concurrent
 * durable appends, the interval policy, and waking readers. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static char root[256];

SCRATCH_SUITE(log, root);

/* The log at root, with index.flush.ms set when it is not NULL. */
static ulog *open_log(const char *index_flush_ms)
{
    return open_at(root, index_flush_ms ? cfg_of("index.flush.ms", index_flush_ms, NULL) : NULL);
}

static int64_t position(ulog_sub *s, int32_t p)
{
    int64_t off = -42;
    int rc = ulog_position(s, p, &off);
    cr_assert_eq(rc, 0, "ulog_position: %s", ulog_errname(rc));
    return off;
}

/* Deterministic bytes from a seed. */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            w = mix64(seed * 0x100000001b3ULL + i / 8);
        p[i] = (uint8_t)(w >> (8 * (i % 8)));
    }
}

static bool bytes_are(const void *p, size_t n, uint64_t seed)
{
    static uint8_t tmp[32768];
    cr_assert_leq(n, sizeof tmp);
    fill(tmp, n, seed);
    return n == 0 || memcmp(p, tmp, n) == 0;
}

/* A small PRNG for choices that need not be reproducible from an offset. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state += 0x9e3779b97f4a7c15ULL;
    return mix64(rng_state);
}

#define T0 1700000000000LL

/* Records whose value is the 8-byte offset they are expected at (little
 * endian) followed by `pad` bytes derived from it. */
static size_t offset_value(uint8_t *buf, int64_t off, size_t pad)
{
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)off >> (8 * i));
    fill(buf + 8, pad, (uint64_t)off);
    return 8 + pad;
}

static int64_t value_offset(const ulog_msg *m)
{
    cr_assert_geq(m->value_len, 8);
    const uint8_t *v = m->value;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)v[i] << (8 * i);
    cr_assert(bytes_are(v + 8, m->value_len - 8, x), "value padding of offset %lld",
              (long long)x);
    return (int64_t)x;
}

/* ------------------------------------------------ (a) a million records */

enum { KIND_NULL, KIND_EMPTY, KIND_BYTES };

typedef struct gen_hdr {
    size_t klen;
    int    vkind;
    size_t vlen;
} gen_hdr;

typedef struct gen_rec {
    int      kkind;
    size_t   klen;
    uint64_t kseed;
    int      vkind;
    size_t   vlen;
    size_t   nh;
    gen_hdr  h[3];
    int64_t  ts;
    int32_t  part;      /* explicit, or ULOG_PARTITION_ANY */
} gen_rec;

#define NPART_A 4

/* Everything about record number `seq` of the big test. */
static void gen(uint64_t seq, gen_rec *g)
{
    uint64_t a = mix64(seq * 2 + 1), b = mix64(seq * 2 + 2);
    memset(g, 0, sizeof *g);
    switch (a % 8) {
    case 0: g->kkind = KIND_NULL; break;
    case 1: g->kkind = KIND_EMPTY; break;
    default: {
        uint64_t keyid = (a >> 3) % 5000;   /* keys repeat */
        g->kkind = KIND_BYTES;
        g->klen = 1 + keyid % 24;
        g->kseed = keyid * 31 + 7;
    }
    }
    switch ((a >> 16) % 16) {
    case 0: g->vkind = KIND_NULL; break;
    case 1: g->vkind = KIND_EMPTY; break;
    default: g->vkind = KIND_BYTES; g->vlen = 1 + (a >> 20) % 100; break;
    }
    g->nh = (a >> 28) % 4;
    for (size_t j = 0; j < g->nh; j++) {
        g->h[j].klen = (b >> (j * 8)) % 6;             /* 0..5: empty keys too */
        switch ((b >> (24 + j * 4)) % 4) {
        case 0: g->h[j].vkind = KIND_NULL; break;
        case 1: g->h[j].vkind = KIND_EMPTY; break;
        default: g->h[j].vkind = KIND_BYTES; g->h[j].vlen = 1 + (b >> (40 + j * 6)) % 20;
        }
    }
    g->ts = (a >> 36) % 50 == 0 ? 0 : T0 + (int64_t)((b >> 20) % 100000000);
    g->part = (a >> 44) & 1 ? (int32_t)((a >> 45) % NPART_A) : ULOG_PARTITION_ANY;
}

static uint64_t vseed(uint64_t seq) { return seq * 1000003 + 1; }
static uint64_t hkseed(uint64_t seq, size_t j) { return seq * 8 + j + (1ULL << 60); }
static uint64_t hvseed(uint64_t seq, size_t j) { return seq * 8 + j + (2ULL << 60); }

/* Builds record `seq` into r, its bytes into *arena, its headers into *hp. */
static void materialize(uint64_t seq, ulog_record *r, uint8_t **arena, ulog_header **hp)
{
    gen_rec g;
    gen(seq, &g);
    memset(r, 0, sizeof *r);
    if (g.kkind == KIND_EMPTY) {
        r->key = "";
    } else if (g.kkind == KIND_BYTES) {
        fill(*arena, g.klen, g.kseed);
        r->key = *arena;
        r->key_len = g.klen;
        *arena += g.klen;
    }
    if (g.vkind == KIND_EMPTY) {
        r->value = "";
    } else if (g.vkind == KIND_BYTES) {
        fill(*arena, g.vlen, vseed(seq));
        r->value = *arena;
        r->value_len = g.vlen;
        *arena += g.vlen;
    }
    r->headers = g.nh ? *hp : NULL;
    r->header_count = g.nh;
    for (size_t j = 0; j < g.nh; j++) {
        ulog_header *h = &(*hp)[j];
        fill(*arena, g.h[j].klen, hkseed(seq, j));
        h->key = (const char *)*arena;
        h->key_len = g.h[j].klen;
        *arena += g.h[j].klen;
        h->value = NULL;
        h->value_len = 0;
        if (g.h[j].vkind == KIND_EMPTY) {
            h->value = "";
        } else if (g.h[j].vkind == KIND_BYTES) {
            fill(*arena, g.h[j].vlen, hvseed(seq, j));
            h->value = *arena;
            h->value_len = g.h[j].vlen;
            *arena += g.h[j].vlen;
        }
    }
    *hp += g.nh;
    r->timestamp = g.ts;
    r->partition = g.part;
    r->offset = -7;
}

/* Checks a polled message against record `seq`. */
static void verify_msg(const ulog_msg *m, uint64_t seq)
{
    gen_rec g;
    gen(seq, &g);
    cr_assert_eq(m->timestamp, g.ts, "seq %llu: timestamp %lld != %lld",
                 (unsigned long long)seq, (long long)m->timestamp, (long long)g.ts);
    if (g.kkind == KIND_NULL) {
        cr_assert_null(m->key, "seq %llu: key must be null", (unsigned long long)seq);
        cr_assert_eq(m->key_len, 0);
    } else {
        cr_assert_not_null(m->key, "seq %llu: key must not be null", (unsigned long long)seq);
        cr_assert_eq(m->key_len, g.klen, "seq %llu: key_len", (unsigned long long)seq);
        cr_assert(bytes_are(m->key, g.klen, g.kseed), "seq %llu: key bytes",
                  (unsigned long long)seq);
    }
    if (g.vkind == KIND_NULL) {
        cr_assert_null(m->value, "seq %llu: value must be null", (unsigned long long)seq);
        cr_assert_eq(m->value_len, 0);
    } else {
        cr_assert_not_null(m->value, "seq %llu: value must not be null",
                           (unsigned long long)seq);
        cr_assert_eq(m->value_len, g.vlen, "seq %llu: value_len %zu != %zu",
                     (unsigned long long)seq, m->value_len, g.vlen);
        cr_assert(bytes_are(m->value, g.vlen, vseed(seq)), "seq %llu: value bytes",
                  (unsigned long long)seq);
    }
    cr_assert_eq(m->header_count, g.nh, "seq %llu: header_count", (unsigned long long)seq);
    for (size_t j = 0; j < g.nh; j++) {
        ulog_header h;
        memset(&h, 0xa5, sizeof h);
        cr_assert_eq(ulog_msg_header(m, j, &h), 0);
        cr_assert_eq(h.key_len, g.h[j].klen);
        cr_assert_not_null(h.key);
        cr_assert(bytes_are(h.key, h.key_len, hkseed(seq, j)));
        if (g.h[j].vkind == KIND_NULL) {
            cr_assert_null(h.value, "seq %llu header %zu: value must be null",
                           (unsigned long long)seq, j);
            cr_assert_eq(h.value_len, 0);
        } else {
            cr_assert_not_null(h.value, "seq %llu header %zu: value must not be null",
                               (unsigned long long)seq, j);
            cr_assert_eq(h.value_len, g.h[j].vlen);
            cr_assert(bytes_are(h.value, h.value_len, hvseed(seq, j)));
        }
    }
    ulog_header h;
    cr_assert_eq(ulog_msg_header(m, g.nh, &h), ULOG_EINVAL);
}

#define A_TOTAL 1000000

Test(log, million_records_roundtrip, .timeout = 150)
{
    ulog *log = open_log(NULL);
    create_topic(log, "big", NPART_A,
                 cfg_of("segment.bytes", "1048576", "flush.policy", "none", NULL));

    uint32_t *seq_of[NPART_A];
    int64_t count[NPART_A] = { 0 };
    for (int p = 0; p < NPART_A; p++) {
        seq_of[p] = malloc(A_TOTAL * sizeof *seq_of[p]);
        cr_assert_not_null(seq_of[p]);
    }
    enum { MAXB = 500 };
    ulog_record *recs = malloc(MAXB * sizeof *recs);
    ulog_header *hdrs = malloc(MAXB * 3 * sizeof *hdrs);
    uint8_t *arena0 = malloc(MAXB * 512);
    cr_assert(recs && hdrs && arena0);

    rng_state = 12345;
    uint64_t seq = 0;
    int64_t keyed = 0, appends = 0;
    while (seq < A_TOTAL) {
        size_t n = 1 + rnd() % MAXB;
        if (n > A_TOTAL - seq)
            n = A_TOTAL - seq;
        uint8_t *arena = arena0;
        ulog_header *hp = hdrs;
        for (size_t i = 0; i < n; i++)
            materialize(seq + i, &recs[i], &arena, &hp);
        append_ok(log, "big", recs, n);
        appends++;
        for (size_t i = 0; i < n; i++) {
            const ulog_record *r = &recs[i];
            gen_rec g;
            gen(seq + i, &g);
            cr_assert(r->partition >= 0 && r->partition < NPART_A, "seq %llu: partition %d",
                      (unsigned long long)(seq + i), (int)r->partition);
            if (g.part != ULOG_PARTITION_ANY) {
                cr_assert_eq(r->partition, g.part);
            } else if (g.kkind != KIND_NULL) {
                int32_t want = (int32_t)(((uint32_t)ulog__murmur2(r->key, r->key_len) &
                                          0x7fffffffu) % NPART_A);
                cr_assert_eq(r->partition, want, "seq %llu: keyed record on %d, murmur2 says %d",
                             (unsigned long long)(seq + i), (int)r->partition, (int)want);
                keyed++;
            }
            /* One writer: each partition's offsets continue densely, in
             * record order. */
            cr_assert_eq(r->offset, count[r->partition],
                         "seq %llu: offset %lld, expected %lld in partition %d",
                         (unsigned long long)(seq + i), (long long)r->offset,
                         (long long)count[r->partition], (int)r->partition);
            seq_of[r->partition][count[r->partition]++] = (uint32_t)(seq + i);
        }
        seq += n;
    }
    cr_log_info("million: %lld appends, %lld keyed records placed by murmur2",
                (long long)appends, (long long)keyed);
    cr_assert_gt(keyed, A_TOTAL / 4);

    for (int p = 0; p < NPART_A; p++) {
        int64_t lo, hi;
        watermarks(log, "big", p, &lo, &hi);
        cr_assert_eq(lo, 0);
        cr_assert_eq(hi, count[p], "partition %d: high %lld, appended %lld", p,
                     (long long)hi, (long long)count[p]);
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log, "big", p, &pi), 0);
        cr_assert_eq(pi.high, count[p]);
        cr_assert_eq(pi.write_end, count[p]);
        cr_assert_gt(pi.segments, 10, "partition %d has only %lld segments", p,
                     (long long)pi.segments);
    }

    ulog_sub *s = sub_earliest(log, "big");
    int64_t next[NPART_A] = { 0 };
    int64_t got = 0;
    ulog_msg m;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert(m.partition >= 0 && m.partition < NPART_A);
        cr_assert_str_eq(m.topic, "big");
        cr_assert_eq(m.offset, next[m.partition], "partition %d: offset %lld, expected %lld",
                     (int)m.partition, (long long)m.offset, (long long)next[m.partition]);
        cr_assert_lt(m.offset, count[m.partition]);
        verify_msg(&m, seq_of[m.partition][m.offset]);
        next[m.partition]++;
        got++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "poll: %s", ulog_errname(rc));
    cr_assert_eq(got, A_TOTAL);
    for (int p = 0; p < NPART_A; p++)
        cr_assert_eq(next[p], count[p]);
    ulog_sub_close(s);
    ulog_close(log);
    for (int p = 0; p < NPART_A; p++)
        free(seq_of[p]);
    free(recs);
    free(hdrs);
    free(arena0);
}

/* ------------------------------------------------ (b) segment boundaries */

#define SEG_BYTES 4096
#define SEG_MAXMSG 20000

/* Appends one batch of n records whose encoded size is `size` (records
 * valued by offset_value; the last one's padding is solved for). Varint
 * widths make a few sizes unreachable: with exact false the next reachable
 * size is used. Returns the size. */
static size_t append_sized(ulog *log, const char *topic, int32_t part, size_t n, size_t size,
                           int64_t first, bool exact)
{
    static uint8_t bufs[64][SEG_MAXMSG];
    ulog_record r[64];
    cr_assert_leq(n, 64);
    cr_assert_geq(n, 1);
    for (size_t i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].value = bufs[i];
        r[i].value_len = offset_value(bufs[i], first + (int64_t)i, 4);
        r[i].timestamp = T0 + first + (int64_t)i;
        r[i].partition = part;
    }
    ulog__batch_src src = { r, NULL, n };
    size_t s;
    for (size_t pad = 0;; pad++) {
        cr_assert_lt(pad + 8, SEG_MAXMSG, "no padding gives a batch of %zu bytes", size);
        r[n - 1].value_len = offset_value(bufs[n - 1], first + (int64_t)n - 1, pad);
        s = ulog__batch_size(&src, 0);
        if (s >= size)
            break;
    }
    if (exact)
        cr_assert_eq(s, size, "a %zu-record batch cannot be %zu bytes", n, size);
    append_ok(log, topic, r, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(r[i].offset, first + (int64_t)i);
    return s;
}

/* A new log with topic `topic`: 4096-byte segments, max.message.bytes
 * SEG_MAXMSG, flush.policy none. */
static ulog *open_seg_topic(const char *topic, int32_t parts)
{
    char v[32];
    snprintf(v, sizeof v, "%d", SEG_MAXMSG);
    return open_with_topic(root, NULL, topic, parts,
                           cfg_of("segment.bytes", "4096", "max.message.bytes", v,
                                  "flush.policy", "none", NULL));
}

typedef struct seg_model {
    int64_t base[256];
    int64_t size[256];
    int     n;
    int64_t next;
} seg_model;

/* The roll rule: a batch that would take a non-empty segment past
 * segment.bytes starts a new segment; a batch larger than segment.bytes
 * therefore sits alone. */
static void model_add(seg_model *m, size_t nrec, size_t size)
{
    if (m->n == 0 || (m->size[m->n - 1] > 0 && m->size[m->n - 1] + (int64_t)size > SEG_BYTES)) {
        cr_assert_lt(m->n, 256);
        m->base[m->n] = m->next;
        m->size[m->n] = 0;
        m->n++;
    }
    m->size[m->n - 1] += (int64_t)size;
    m->next += (int64_t)nrec;
}

static void check_segments(const char *topic, int32_t part, const seg_model *m)
{
    char dir[512];
    part_dir(dir, sizeof dir, root, topic, part);
    for (int i = 0; i < m->n; i++) {
        char path[600];
        struct stat st;
        seg_path(path, sizeof path, root, topic, part, m->base[i]);
        cr_assert_eq(stat(path, &st), 0, "segment %s missing", path);
        cr_assert_eq(st.st_size, m->size[i], "segment %s: %lld bytes, expected %lld", path,
                     (long long)st.st_size, (long long)m->size[i]);
    }
    /* And no other segment. */
    int segs = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (is_segment_name(de->d_name))
            segs++;
    closedir(d);
    cr_assert_eq(segs, m->n, "%d segment files, expected %d", segs, m->n);
}

static void read_all_offsets(ulog *log, const char *topic, int64_t n)
{
    ulog_sub *s = sub_earliest(log, topic);
    ulog_msg m;
    for (int64_t i = 0; i < n; i++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, 0, "poll at %lld of %lld: %s", (long long)i, (long long)n,
                     ulog_errname(rc));
        cr_assert_eq(m.offset, i);
        cr_assert_eq(value_offset(&m), i);
        cr_assert_eq(m.timestamp, T0 + i);
    }
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    ulog_sub_close(s);
}

Test(log, segment_roll_boundaries, .timeout = 60)
{
    ulog *log = open_seg_topic("seg", 1);
    seg_model m = { .n = 0 };
    /* The first segment exists before anything is written. */
    model_add(&m, 0, 0);
    struct { size_t nrec, size; } plan[] = {
        { 1, 1024 }, { 1, 1024 }, { 1, 1024 }, { 1, 1024 },  /* fill segment 0 exactly */
        { 3, 4096 },                                         /* exactly one segment */
        { 5, 10000 },                                        /* bigger than a segment */
        { 1, 200 },                                          /* rolls after the big one */
        { 2, 3896 },                                         /* fills it exactly */
        { 1, 4097 },                                         /* one byte too big: alone */
        { 1, 4096 },                                         /* rolls again, exact */
        { 1, 100 },
        { 7, SEG_MAXMSG },                                   /* max.message.bytes exactly */
        { 1, 100 }, { 1, 3995 },                             /* one byte short of full */
        { 1, 1 + ULOG__BATCH_HEADER_SIZE + 8 + 7 },          /* does not fit: rolls */
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        size_t size = plan[i].size;
        if (i == sizeof plan / sizeof plan[0] - 1) {
            /* Smallest batch this record shape allows. */
            ulog_record r = { .value = "01234567", .value_len = 8, .timestamp = T0 + m.next };
            ulog__batch_src src = { &r, NULL, 1 };
            size = ulog__batch_size(&src, 0);
        }
        append_sized(log, "seg", 0, plan[i].nrec, size, m.next, true);
        model_add(&m, plan[i].nrec, size);
    }
    /* Random sizes across many boundaries. */
    rng_state = 777;
    for (int i = 0; i < 120; i++) {
        size_t n = 1 + rnd() % 6;
        size_t lo = 61 + n * 24;
        size_t size = lo + rnd() % (i % 10 == 9 ? 9000 : 2500);
        size = append_sized(log, "seg", 0, n, size, m.next, false);
        model_add(&m, n, size);
    }
    check_segments("seg", 0, &m);
    cr_log_info("segment boundaries: %d segments, %lld records", m.n, (long long)m.next);

    int64_t lo, hi;
    watermarks(log, "seg", 0, &lo, &hi);
    cr_assert_eq(lo, 0);
    cr_assert_eq(hi, m.next);
    read_all_offsets(log, "seg", m.next);

    /* Seeks onto and just before every boundary. */
    ulog_sub *s = sub_earliest(log, "seg");
    ulog_msg msg;
    for (int i = 1; i < m.n; i++) {
        int64_t b = m.base[i];
        cr_assert_eq(ulog_seek(s, 0, b - 1), 0);
        cr_assert_eq(ulog_poll(s, 0, &msg), 0);
        cr_assert_eq(msg.offset, b - 1);
        cr_assert_eq(value_offset(&msg), b - 1);
        cr_assert_eq(ulog_poll(s, 0, &msg), 0, "crossing into segment %lld", (long long)b);
        cr_assert_eq(msg.offset, b);
        cr_assert_eq(value_offset(&msg), b);
        cr_assert_eq(ulog_seek(s, 0, b), 0);
        cr_assert_eq(ulog_poll(s, 0, &msg), 0);
        cr_assert_eq(msg.offset, b);
    }
    ulog_sub_close(s);

    /* After a reopen, the same layout and the same records. */
    ulog_close(log);
    log = open_log(NULL);
    check_segments("seg", 0, &m);
    read_all_offsets(log, "seg", m.next);
    /* And appending continues in the last segment or rolls, by the rule. */
    append_sized(log, "seg", 0, 2, 3000, m.next, true);
    model_add(&m, 2, 3000);
    append_sized(log, "seg", 0, 2, 3000, m.next, true);
    model_add(&m, 2, 3000);
    check_segments("seg", 0, &m);
    read_all_offsets(log, "seg", m.next);
    ulog_close(log);
}

Test(log, too_big_changes_nothing)
{
    ulog *log = open_seg_topic("tb", 2);
    static uint8_t big[SEG_MAXMSG + 100];
    memset(big, 'x', sizeof big);
    ulog_record ok[3];
    for (int i = 0; i < 3; i++)
        ok[i] = (ulog_record){ .value = "abc", .value_len = 3, .timestamp = T0,
                               .partition = i % 2 };
    append_ok(log, "tb", ok, 3);

    ulog_partition_info before[2], after[2];
    for (int p = 0; p < 2; p++) {
        before[p] = (ulog_partition_info)ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log, "tb", p, &before[p]), 0);
    }
    /* One record over the limit. */
    ulog_record r1 = { .value = big, .value_len = SEG_MAXMSG, .timestamp = T0, .partition = 0 };
    cr_assert_eq(ulog_append(log, "tb", &r1, 1), ULOG_ETOOBIG);
    /* Records that fit one by one but not together. */
    ulog_record many[8];
    for (int i = 0; i < 8; i++)
        many[i] = (ulog_record){ .value = big, .value_len = SEG_MAXMSG / 6, .timestamp = T0,
                                 .partition = 1 };
    cr_assert_eq(ulog_append(log, "tb", many, 8), ULOG_ETOOBIG);
    /* Partition 0's batch fits, partition 1's does not: nothing anywhere. */
    for (int i = 0; i < 8; i++)
        many[i].partition = i == 0 ? 0 : 1;
    cr_assert_eq(ulog_append(log, "tb", many, 8), ULOG_ETOOBIG);
    for (int p = 0; p < 2; p++) {
        after[p] = (ulog_partition_info)ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log, "tb", p, &after[p]), 0);
        cr_assert_eq(after[p].high, before[p].high, "partition %d high moved", p);
        cr_assert_eq(after[p].write_end, before[p].write_end);
        cr_assert_eq(after[p].segments, before[p].segments);
        cr_assert_eq(after[p].bytes, before[p].bytes, "partition %d bytes moved", p);
    }
    /* The log still works, and holds just the first three records. */
    append_ok(log, "tb", ok, 3);
    cr_assert_eq(ok[0].offset, 2);
    cr_assert_eq(ok[1].offset, 1);
    ulog_sub *s = sub_earliest(log, "tb");
    ulog_msg m;
    int n = 0;
    while (ulog_poll(s, 0, &m) == 0) {
        cr_assert_eq(m.value_len, 3);
        n++;
    }
    cr_assert_eq(n, 6);
    ulog_sub_close(s);
    ulog_close(log);
}

/* ------------------------------------------------ (c) seek by offset */

#define BIG_N 200000

static void fill_offsets(ulog *log, const char *topic, int64_t n)
{
    enum { MAXB = 300 };
    static uint8_t vals[MAXB][64];
    ulog_record r[MAXB];
    int64_t next = 0;
    rng_state = 99;
    while (next < n) {
        size_t b = 1 + rnd() % MAXB;
        if ((int64_t)b > n - next)
            b = (size_t)(n - next);
        for (size_t i = 0; i < b; i++) {
            int64_t off = next + (int64_t)i;
            r[i] = (ulog_record){ .value = vals[i],
                                  .value_len = offset_value(vals[i], off, (size_t)(off % 20)),
                                  .timestamp = T0 + off, .partition = 0 };
        }
        append_ok(log, topic, r, b);
        cr_assert_eq(r[0].offset, next);
        next += (int64_t)b;
    }
}

static void seek_checks(ulog *log, const char *topic)
{
    int64_t lo, hi;
    watermarks(log, topic, 0, &lo, &hi);
    cr_assert_eq(lo, 0);
    cr_assert_eq(hi, BIG_N);
    ulog_sub *s = sub_earliest(log, topic);
    ulog_msg m;
    for (int64_t off = 0; off < BIG_N; off += 1000) {
        for (int64_t k = off; k <= off + 1 && k < BIG_N; k++) {
            int rc = ulog_seek(s, 0, k);
            cr_assert_eq(rc, 0, "seek %lld: %s", (long long)k, ulog_errname(rc));
            cr_assert_eq(position(s, 0), k);
            rc = ulog_poll(s, 0, &m);
            cr_assert_eq(rc, 0, "poll after seek %lld: %s", (long long)k, ulog_errname(rc));
            cr_assert_eq(m.offset, k, "seek %lld gave offset %lld", (long long)k,
                         (long long)m.offset);
            cr_assert_eq(value_offset(&m), k);
            cr_assert_eq(m.timestamp, T0 + k);
            cr_assert_eq(position(s, 0), k + 1);
        }
    }
    /* Random targets, backwards and forwards. */
    rng_state = 4242;
    for (int i = 0; i < 500; i++) {
        int64_t k = (int64_t)(rnd() % BIG_N);
        cr_assert_eq(ulog_seek(s, ULOG_PARTITION_ANY, k), 0);
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
        cr_assert_eq(m.offset, k);
        cr_assert_eq(value_offset(&m), k);
    }
    /* The last record, then the high watermark. */
    cr_assert_eq(ulog_seek(s, 0, BIG_N - 1), 0);
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, BIG_N - 1);
    cr_assert_eq(ulog_seek(s, 0, BIG_N), 0);
    cr_assert_eq(position(s, 0), BIG_N);
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    /* Out of range: error, position unchanged. */
    cr_assert_eq(ulog_seek(s, 0, 5000), 0);
    cr_assert_eq(ulog_seek(s, 0, -1), ULOG_EOFFSET);
    cr_assert_eq(position(s, 0), 5000);
    cr_assert_eq(ulog_seek(s, 0, BIG_N + 1), ULOG_EOFFSET);
    cr_assert_eq(position(s, 0), 5000);
    cr_assert_eq(ulog_seek(s, 0, INT64_MAX), ULOG_EOFFSET);
    cr_assert_eq(ulog_seek(s, 0, INT64_MIN), ULOG_EOFFSET);
    cr_assert_eq(ulog_seek(s, ULOG_PARTITION_ANY, BIG_N + 1), ULOG_EOFFSET);
    cr_assert_eq(position(s, 0), 5000);
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, 5000);
    ulog_sub_close(s);
}

Test(log, seek_every_thousandth, .timeout = 90)
{
    /* A long index flush interval: before the reopen the seeks use this
     * process's unflushed index entries, after it LMDB's. */
    ulog *log = open_log("60000");
    create_topic(log, "seek", 1, cfg_of("segment.bytes", "1048576", "flush.policy", "none",
                                         NULL));
    fill_offsets(log, "seek", BIG_N);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "seek", 0, &pi), 0);
    cr_assert_gt(pi.segments, 2);
    seek_checks(log, "seek");
    ulog_close(log);
    log = open_log(NULL);
    seek_checks(log, "seek");
    ulog_close(log);
}

/* ------------------------------------------------ (d) seek by time */

#define TS_N 30000

static int64_t mono_ts(int64_t i)
{
    return T0 + (i / 3) * 10;     /* runs of three equal stamps, gaps of 10 */
}

static int64_t *rand_ts;          /* partition 1's stamps, by offset */

static void seek_time_expect(ulog_sub *s, int32_t part, int64_t t, int64_t want, int64_t high)
{
    int rc = ulog_seek_time(s, part, t);
    cr_assert_eq(rc, 0, "seek_time p%d %lld: %s", (int)part, (long long)t, ulog_errname(rc));
    int64_t got = position(s, part);
    cr_assert_eq(got, want, "seek_time p%d T=%lld: position %lld, expected %lld", (int)part,
                 (long long)t, (long long)got, (long long)want);
    ulog_msg m;
    rc = ulog_poll(s, 0, &m);
    if (want == high) {
        cr_assert_eq(rc, ULOG_ETIMEDOUT);
        return;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(m.partition, part);
    cr_assert_eq(m.offset, want);
    cr_assert_eq(value_offset(&m), want);
    cr_assert_geq(m.timestamp, t);
}

static int64_t brute_first(int64_t t)
{
    for (int64_t i = 0; i < TS_N; i++)
        if (rand_ts[i] >= t)
            return i;
    return TS_N;
}

static void seek_time_checks(ulog *log)
{
    ulog_sub *s = sub_earliest(log, "time");
    /* Partition 0, monotonic: keep partition 1 at its end so polls only
     * return partition 0. */
    cr_assert_eq(ulog_seek(s, 1, TS_N), 0);
    seek_time_expect(s, 0, 0, 0, TS_N);
    seek_time_expect(s, 0, T0 - 1000, 0, TS_N);
    seek_time_expect(s, 0, T0 - 1, 0, TS_N);
    for (int64_t k = 0; k <= TS_N / 3 + 1; k += (k < 200 ? 1 : 7)) {
        int64_t exact = T0 + k * 10;
        int64_t want = 3 * k < TS_N ? 3 * k : TS_N;
        seek_time_expect(s, 0, exact, want, TS_N);
        seek_time_expect(s, 0, exact - 5, want, TS_N);      /* between stamps */
        seek_time_expect(s, 0, exact - 9, want, TS_N);
        int64_t after = 3 * (k + 1) < TS_N ? 3 * (k + 1) : TS_N;
        seek_time_expect(s, 0, exact + 1, after, TS_N);
    }
    seek_time_expect(s, 0, mono_ts(TS_N - 1), TS_N - 3, TS_N);
    seek_time_expect(s, 0, mono_ts(TS_N - 1) + 1, TS_N, TS_N);   /* after the last */
    seek_time_expect(s, 0, INT64_MAX, TS_N, TS_N);

    /* Partition 1, random stamps: against a scan. */
    cr_assert_eq(ulog_seek(s, 0, TS_N), 0);
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    for (int64_t i = 0; i < TS_N; i++) {
        if (rand_ts[i] < mn)
            mn = rand_ts[i];
        if (rand_ts[i] > mx)
            mx = rand_ts[i];
    }
    seek_time_expect(s, 1, mn - 1, 0, TS_N);
    seek_time_expect(s, 1, mn, brute_first(mn), TS_N);
    seek_time_expect(s, 1, mx, brute_first(mx), TS_N);
    seek_time_expect(s, 1, mx + 1, TS_N, TS_N);
    rng_state = 31337;
    for (int i = 0; i < 1500; i++) {
        int64_t t = i % 2 ? rand_ts[rnd() % TS_N] + (int64_t)(rnd() % 3) - 1
                          : mn - 5 + (int64_t)(rnd() % (uint64_t)(mx - mn + 10));
        seek_time_expect(s, 1, t, brute_first(t), TS_N);
    }

    /* Every partition at once. */
    int64_t t = T0 + 5000;
    cr_assert_eq(ulog_seek_time(s, ULOG_PARTITION_ANY, t), 0);
    cr_assert_eq(position(s, 0), 3 * 500);
    cr_assert_eq(position(s, 1), brute_first(t));
    ulog_sub_close(s);
}

Test(log, seek_time, .timeout = 90)
{
    ulog *log = open_log("60000");
    create_topic(log, "time", 2, cfg_of("segment.bytes", "65536", "flush.policy", "none",
                                         "index.interval.bytes", "512", NULL));
    rand_ts = malloc(TS_N * sizeof *rand_ts);
    cr_assert_not_null(rand_ts);
    rng_state = 5;
    for (int64_t i = 0; i < TS_N; i++)
        rand_ts[i] = T0 + (int64_t)(rnd() % 2000000);
    enum { MAXB = 40 };
    static uint8_t vals[MAXB][32];
    ulog_record r[MAXB];
    for (int32_t p = 0; p < 2; p++) {
        int64_t next = 0;
        while (next < TS_N) {
            size_t b = 1 + rnd() % MAXB;
            if ((int64_t)b > TS_N - next)
                b = (size_t)(TS_N - next);
            for (size_t i = 0; i < b; i++) {
                int64_t off = next + (int64_t)i;
                r[i] = (ulog_record){ .value = vals[i],
                                      .value_len = offset_value(vals[i], off, 8),
                                      .timestamp = p == 0 ? mono_ts(off) : rand_ts[off],
                                      .partition = p };
            }
            append_ok(log, "time", r, b);
            cr_assert_eq(r[0].offset, next);
            next += (int64_t)b;
        }
    }
    seek_time_checks(log);          /* unflushed index entries */
    ulog_close(log);
    log = open_log(NULL);
    seek_time_checks(log);          /* LMDB's index */
    ulog_close(log);
    free(rand_ts);
}

/* ------------------------------------------------ (e) reopen and continue */

static size_t pv_value(uint8_t *buf, int32_t p, int64_t off)
{
    return offset_value(buf, off, (size_t)(p * 3 + off % 11));
}

Test(log, reopen_and_continue, .timeout = 60)
{
    ulog *log = open_log(NULL);
    create_topic(log, "re", 2, cfg_of("segment.bytes", "4096", NULL));   /* always */
    ulog_close(log);
    int64_t count[2] = { 0, 0 };
    rng_state = 8;
    for (int cycle = 0; cycle < 6; cycle++) {
        log = open_log(NULL);
        for (int32_t p = 0; p < 2; p++) {
            int64_t lo, hi;
            watermarks(log, "re", p, &lo, &hi);
            cr_assert_eq(lo, 0);
            cr_assert_eq(hi, count[p], "cycle %d partition %d: high %lld, expected %lld",
                         cycle, (int)p, (long long)hi, (long long)count[p]);
        }
        for (int a = 0; a < 8; a++) {
            static uint8_t vals[40][64];
            ulog_record r[40];
            size_t n = 1 + rnd() % 40;
            int64_t next[2] = { count[0], count[1] };
            for (size_t i = 0; i < n; i++) {
                int32_t p = (int32_t)(rnd() % 2);
                r[i] = (ulog_record){ .value = vals[i],
                                      .value_len = pv_value(vals[i], p, next[p]),
                                      .timestamp = T0 + next[p], .partition = p };
                next[p]++;
            }
            append_ok(log, "re", r, n);
            for (size_t i = 0; i < n; i++) {
                cr_assert_eq(r[i].offset, count[r[i].partition]);
                count[r[i].partition]++;
            }
        }
        ulog_close(log);
    }
    log = open_log(NULL);
    ulog_sub *s = sub_earliest(log, "re");
    ulog_msg m;
    int64_t next[2] = { 0, 0 };
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.offset, next[m.partition]);
        cr_assert_eq(value_offset(&m), m.offset);
        cr_assert_eq(m.value_len, 8 + (size_t)(m.partition * 3 + m.offset % 11));
        cr_assert_eq(m.timestamp, T0 + m.offset);
        next[m.partition]++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT);
    cr_assert_eq(next[0], count[0]);
    cr_assert_eq(next[1], count[1]);
    for (int32_t p = 0; p < 2; p++) {
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log, "re", p, &pi), 0);
        cr_assert_gt(pi.segments, 1);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

/* ------------------------------------------------ (f) group commit */

#define GC_THREADS 8
#define GC_APPENDS 40
#define GC_MAXB    10

typedef struct gc_rec {
    int32_t part;
    int64_t off;
} gc_rec;

typedef struct gc_arg {
    ulog   *log;
    int     id;
    int     err;
    int     nrec;
    gc_rec  rec[GC_APPENDS * GC_MAXB];
} gc_arg;

static void gc_value(uint8_t buf[16], int thread, int seq)
{
    memset(buf, 0, 16);
    memcpy(buf, &thread, sizeof thread);
    memcpy(buf + 4, &seq, sizeof seq);
    uint64_t c = mix64((uint64_t)thread << 32 | (uint32_t)seq);
    memcpy(buf + 8, &c, sizeof c);
}

static void *gc_main(void *p)
{
    gc_arg *a = p;
    uint64_t st = (uint64_t)a->id * 1000 + 1;
    for (int k = 0; k < GC_APPENDS && !a->err; k++) {
        uint8_t vals[GC_MAXB][16];
        char keys[GC_MAXB][16];
        ulog_record r[GC_MAXB];
        st = mix64(st);
        size_t n = 1 + st % GC_MAXB;
        for (size_t i = 0; i < n; i++) {
            int seq = a->nrec + (int)i;
            gc_value(vals[i], a->id, seq);
            r[i] = (ulog_record){ .value = vals[i], .value_len = 16, .timestamp = T0 + seq };
            st = mix64(st);
            if (st & 1) {
                r[i].partition = (int32_t)((st >> 1) % 2);
            } else {
                int kl = snprintf(keys[i], sizeof keys[i], "k%d-%d", a->id, (int)(st >> 8) % 7);
                r[i].key = keys[i];
                r[i].key_len = (size_t)kl;
                r[i].partition = ULOG_PARTITION_ANY;
            }
        }
        a->err = ulog_append(a->log, "gc", r, n);
        if (a->err)
            break;
        for (size_t i = 0; i < n; i++)
            a->rec[a->nrec + (int)i] = (gc_rec){ r[i].partition, r[i].offset };
        a->nrec += (int)n;
    }
    return NULL;
}

Test(log, group_commit_eight_threads, .timeout = 120)
{
    ulog *log = open_log(NULL);
    create_topic(log, "gc", 2, cfg_of("flush.policy", "always", "segment.bytes", "16384",
                                       NULL));
    static gc_arg args[GC_THREADS];
    pthread_t th[GC_THREADS];
    int64_t t0 = mono_ns();
    for (int i = 0; i < GC_THREADS; i++) {
        args[i] = (gc_arg){ .log = log, .id = i };
        cr_assert_eq(pthread_create(&th[i], NULL, gc_main, &args[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < GC_THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].err, 0, "thread %d: %s", i, ulog_errname(args[i].err));
        total += args[i].nrec;
    }
    cr_log_info("group commit: %d records in %d appends by %d threads, %.0f ms", total,
                GC_THREADS * GC_APPENDS, GC_THREADS, (double)(mono_ns() - t0) / 1e6);

    int64_t hi[2];
    for (int32_t p = 0; p < 2; p++) {
        int64_t lo;
        watermarks(log, "gc", p, &lo, &hi[p]);
    }
    cr_assert_eq(hi[0] + hi[1], total);
    /* Where each (thread, seq) landed, by the append's written-back offset. */
    int *owner[2];
    for (int p = 0; p < 2; p++) {
        owner[p] = malloc((size_t)(hi[p] + 1) * sizeof *owner[p]);
        for (int64_t i = 0; i < hi[p]; i++)
            owner[p][i] = -1;
    }
    for (int t = 0; t < GC_THREADS; t++)
        for (int k = 0; k < args[t].nrec; k++) {
            gc_rec g = args[t].rec[k];
            cr_assert(g.part == 0 || g.part == 1);
            cr_assert(g.off >= 0 && g.off < hi[g.part]);
            cr_assert_eq(owner[g.part][g.off], -1, "offset %lld of partition %d given twice",
                         (long long)g.off, (int)g.part);
            owner[g.part][g.off] = t << 16 | k;
        }
    ulog_sub *s = sub_earliest(log, "gc");
    ulog_msg m;
    int64_t next[2] = { 0, 0 };
    int last_seq[2][GC_THREADS];
    memset(last_seq, 0xff, sizeof last_seq);
    int seen = 0;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        int32_t p = m.partition;
        cr_assert_eq(m.offset, next[p]);
        next[p]++;
        cr_assert_eq(m.value_len, 16);
        int thread, seq;
        memcpy(&thread, m.value, 4);
        memcpy(&seq, (const uint8_t *)m.value + 4, 4);
        cr_assert(thread >= 0 && thread < GC_THREADS);
        uint8_t want[16];
        gc_value(want, thread, seq);
        cr_assert_eq(memcmp(m.value, want, 16), 0);
        cr_assert_eq(owner[p][m.offset], thread << 16 | seq,
                     "partition %d offset %lld holds thread %d seq %d, append said otherwise",
                     (int)p, (long long)m.offset, thread, seq);
        cr_assert_gt(seq, last_seq[p][thread], "thread %d: seq %d after %d in partition %d",
                     thread, seq, last_seq[p][thread], (int)p);
        last_seq[p][thread] = seq;
        cr_assert_eq(m.timestamp, T0 + seq);
        seen++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT);
    cr_assert_eq(seen, total);
    ulog_sub_close(s);
    ulog_close(log);

    /* Everything acknowledged is still there after a reopen. */
    log = open_log(NULL);
    for (int32_t p = 0; p < 2; p++) {
        int64_t lo, h2;
        watermarks(log, "gc", p, &lo, &h2);
        cr_assert_eq(h2, hi[p]);
    }
    ulog_close(log);
    free(owner[0]);
    free(owner[1]);
}

/* ------------------------------------------------ (g) interval policy */

static void read_interval(ulog *log, int64_t n)
{
    ulog_sub *s = sub_earliest(log, "iv");
    ulog_msg m;
    for (int64_t i = 0; i < n; i++) {
        cr_assert_eq(ulog_poll(s, 0, &m), 0, "record %lld of %lld", (long long)i, (long long)n);
        cr_assert_eq(m.offset, i);
        cr_assert_eq(value_offset(&m), i);
    }
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    ulog_sub_close(s);
}

Test(log, interval_policy, .timeout = 60)
{
    ulog *log = open_log("20");
    create_topic(log, "iv", 1, cfg_of("flush.policy", "interval", "flush.ms", "50",
                                       "segment.bytes", "8192", NULL));
    ulog_config *c = cfg_of("auto.offset.reset", "latest", NULL);
    ulog_sub *live;
    cr_assert_eq(ulog_subscribe(log, "iv", NULL, c, &live), 0);
    ulog_config_free(c);
    int64_t n = 0;
    for (int k = 0; k < 200; k++) {
        uint8_t vals[5][32];
        ulog_record r[5];
        size_t b = 1 + (size_t)k % 5;
        for (size_t i = 0; i < b; i++)
            r[i] = (ulog_record){ .value = vals[i],
                                  .value_len = offset_value(vals[i], n + (int64_t)i, 10),
                                  .timestamp = T0, .partition = 0 };
        append_ok(log, "iv", r, b);
        cr_assert_eq(r[0].offset, n);
        n += (int64_t)b;
        /* Visible as soon as the append returns. */
        int64_t lo, hi;
        watermarks(log, "iv", 0, &lo, &hi);
        cr_assert_eq(hi, n);
        for (size_t i = 0; i < b; i++) {
            ulog_msg m;
            int prc = ulog_poll(live, 0, &m);
            char msg[512];
            ulog_errmsg(log, msg, sizeof msg);
            cr_assert_eq(prc, 0, "poll right after the append of offset %lld: %s (%s)",
                         (long long)r[i].offset, ulog_errname(prc), msg);
            cr_assert_eq(m.offset, r[i].offset);
        }
        if (k % 50 == 49)
            sleep_ms(60);           /* let interval syncs happen */
    }
    ulog_sub_close(live);
    read_interval(log, n);
    ulog_close(log);

    log = open_log(NULL);
    read_interval(log, n);
    ulog_close(log);
    /* Through the recovery scan, as after a reboot. */
    delete_heads(root, "iv", 1, false);
    log = open_log(NULL);
    int64_t lo, hi;
    watermarks(log, "iv", 0, &lo, &hi);
    cr_assert_eq(hi, n);
    read_interval(log, n);
    ulog_close(log);
}

/* ------------------------------------------------ (h) waking readers */

typedef struct waker {
    ulog   *log;
    int     delay_ms;
    int32_t part;
    int     err;
} waker;

static void *waker_main(void *p)
{
    waker *w = p;
    sleep_ms(w->delay_ms);
    ulog_record r = { .value = "wake", .value_len = 4, .timestamp = T0, .partition = w->part };
    w->err = ulog_append(w->log, "wk", &r, 1);
    return NULL;
}

/* A new log with topic "wk": 2 partitions, flush.policy none. */
static ulog *open_wk(void)
{
    return open_with_topic(root, NULL, "wk", 2, cfg_of("flush.policy", "none", NULL));
}

static ulog_sub *sub_latest(ulog *log)
{
    ulog_sub *s = NULL;
    cr_assert_eq(ulog_subscribe(log, "wk", NULL, NULL, &s), 0);   /* default: latest */
    return s;
}

Test(log, sub_fd_readable_after_append, .timeout = 30)
{
    ulog *log = open_wk();
    ulog_sub *s = sub_latest(log);
    int fd = ulog_sub_fd(s);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ulog_sub_fd(s), fd, "the descriptor is owned by the subscription: same one");
    ulog_msg m;
    /* The documented loop: poll with timeout 0 until ULOG_ETIMEDOUT ... */
    while (ulog_poll(s, 0, &m) == 0)
        ;
    for (int round = 0; round < 3; round++) {
        waker w = { log, 50, (int32_t)(round % 2), -99 };
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, waker_main, &w), 0);
        /* ... then wait on the descriptor. */
        int got = 0;
        int64_t t0 = mono_ns();
        while (!got && mono_ns() - t0 < 5000000000LL) {
            struct pollfd pfd = { fd, POLLIN, 0 };
            int rc = poll(&pfd, 1, 5000);
            cr_assert_geq(rc, 0);
            if (rc == 0)
                break;
            cr_assert(pfd.revents & POLLIN);
            int prc;
            while ((prc = ulog_poll(s, 0, &m)) == 0) {
                cr_assert_eq(m.value_len, 4);
                cr_assert_eq(memcmp(m.value, "wake", 4), 0);
                cr_assert_eq(m.partition, w.part);
                got++;
            }
            cr_assert_eq(prc, ULOG_ETIMEDOUT);
        }
        pthread_join(th, NULL);
        cr_assert_eq(w.err, 0);
        cr_assert_eq(got, 1, "round %d: the descriptor did not report the append", round);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

typedef struct blocked {
    ulog_sub *s;
    int       rc;
    ulog_msg  m;
    int64_t   woke_ns;
} blocked;

static void *blocked_main(void *p)
{
    blocked *b = p;
    b->rc = ulog_poll(b->s, -1, &b->m);
    b->woke_ns = mono_ns();
    return NULL;
}

Test(log, blocked_poll_wakes, .timeout = 30)
{
    ulog *log = open_wk();
    for (int round = 0; round < 4; round++) {
        ulog_sub *s = sub_latest(log);
        blocked b = { s, -99, { 0 }, 0 };
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, blocked_main, &b), 0);
        sleep_ms(100);
        cr_assert_eq(__atomic_load_n(&b.rc, __ATOMIC_SEQ_CST), -99,
                     "ulog_poll(-1) returned with nothing appended");
        /* Partition 1 too: the wake-up is topic-wide. */
        ulog_record r = { .value = "wake", .value_len = 4, .timestamp = T0,
                          .partition = round % 2 };
        int64_t t0 = mono_ns();
        append_ok(log, "wk", &r, 1);
        pthread_join(th, NULL);
        cr_assert_eq(b.rc, 0);
        cr_assert_eq(b.m.partition, r.partition);
        cr_assert_eq(b.m.offset, r.offset);
        cr_assert_eq(b.m.value_len, 4);
        cr_log_info("blocked poll woke %.2f ms after the append",
                    (double)(b.woke_ns - t0) / 1e6);
        ulog_sub_close(s);
    }
    ulog_close(log);
}

Test(log, poll_timeout_idle, .timeout = 30)
{
    ulog *log = open_wk();
    ulog_sub *s = sub_latest(log);
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        int64_t t0 = mono_ns();
        int rc = ulog_poll(s, 100, &m);
        int64_t el = mono_ns() - t0;
        cr_assert_eq(rc, ULOG_ETIMEDOUT);
        cr_assert_geq(el, 99000000LL, "ulog_poll(100) returned after %.2f ms", (double)el / 1e6);
        cr_assert_lt(el, 2000000000LL, "ulog_poll(100) took %.2f ms", (double)el / 1e6);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* A signal runs its handler and the wait goes on (the documented rule): the
 * poll neither returns early nor reports an error. */
Test(log, signal_does_not_end_a_poll, .timeout = 30)
{
    ulog *log = open_wk();
    ulog_sub *s = sub_latest(log);
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    blocked b = { s, -99, { 0 }, 0 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, blocked_main, &b), 0);
    for (int i = 0; i < 5; i++) {
        sleep_ms(40);
        cr_assert_eq(pthread_kill(th, SIGUSR1), 0);
    }
    sleep_ms(40);
    cr_assert_eq(__atomic_load_n(&b.rc, __ATOMIC_SEQ_CST), -99,
                 "ulog_poll(-1) returned %s on a signal", ulog_errname(b.rc));
    ulog_record r = { .value = "wake", .value_len = 4, .timestamp = T0, .partition = 0 };
    append_ok(log, "wk", &r, 1);
    pthread_join(th, NULL);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(b.m.offset, r.offset);
    ulog_sub_close(s);
    ulog_close(log);
}
