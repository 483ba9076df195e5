/*
 * bench_codec.c -- the RecordBatch codec alone, in memory: no files, no
 * locks, no system calls in the timed loops.
 *
 *   crc32c        GB/s on 64 B, 1 KiB, 16 KiB and 1 MiB buffers (one warm
 *                 buffer, called again and again) of ulog__crc32c (what the
 *                 library uses: 512-bit folding where the CPU has it),
 *                 ulog__crc32c_hw (the crc32 instruction, 1 or 3 chains)
 *                 and ulog__crc32c_sw (tables)
 *   encode        ulog__batch_size + ulog__batch_encode (CRC included) of
 *                 batches of 100 records: 100 B and 1,000 B values, null
 *                 key and no headers, or a 16-byte key and 2 headers
 *   verify        ulog__batch_verify of the same batches (CRC + record walk:
 *                 what the recovery scan does)
 *   check+decode  ulog__batch_check then ulog__rec_decode of every record
 *                 (what a reader does per batch)
 *   decode        ulog__rec_decode of every record alone (no CRC)
 *
 * Noise: shared machines. Every case runs ROUNDS rounds of at least
 * ROUND_S seconds and the best round counts. Whole run: a few seconds.
 *
 * Usage: bench_codec [DIR]   (DIR is ignored: `make bench` passes a scratch
 * directory to every benchmark). Exit 0, or 1 if the codec misbehaves.
 */
#include "internal.h"

#define BENCH_NAME "bench_codec"
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS   20
#define ROUND_S  0.01          /* minimum seconds per round */
#define NRECS    100           /* records per batch */

/* Keeps results alive so the compiler cannot drop the work. */
static volatile uint64_t g_sink;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_codec: %s\n", what);
    exit(1);
}

/* Runs fn(arg) in a loop, doubling the count until a round takes ROUND_S,
 * then ROUNDS such rounds; returns the best seconds per call. */
static double best_per_call(void (*fn)(void *), void *arg)
{
    long iters = 1;
    double best = 1e30;

    for (;;) {
        double t0 = now_s();
        for (long i = 0; i < iters; i++)
            fn(arg);
        double dt = now_s() - t0;
        if (dt >= ROUND_S)
            break;
        iters *= dt > ROUND_S / 16 ? 2 : 8;
    }
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_s();
        for (long i = 0; i < iters; i++)
            fn(arg);
        double per = (now_s() - t0) / (double)iters;
        if (per < best)
            best = per;
    }
    return best;
}

/* ------------------------------------------------------------ crc32c */

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

struct crc_case {
    crc_fn         fn;
    const uint8_t *buf;
    size_t         len;
};

static void crc_once(void *arg)
{
    const struct crc_case *c = arg;
    g_sink += c->fn(0, c->buf, c->len);
}

static void bench_crc(void)
{
    static const size_t sizes[] = { 64, 1024, 16384, 1 << 20 };
    uint8_t *buf = aligned_alloc(64, (1 << 20) + 64);
    bool hw = ulog__crc32c_hw_available();

    if (!buf)
        die("out of memory");
    for (size_t i = 0; i < (1 << 20) + 64; i++)
        buf[i] = (uint8_t)rnd();
    uint32_t want = ulog__crc32c_sw(0, buf + 1, 1 << 20);
    if (ulog__crc32c(0, buf + 1, 1 << 20) != want ||
        (hw && ulog__crc32c_hw(0, buf + 1, 1 << 20) != want))
        die("crc32c: the paths disagree");

    printf("crc32c (GB/s, buffer 64-byte aligned)%s\n",
           hw ? "" : "   [no CRC-32C instruction: no hw column]");
    printf("  %-10s %10s %10s %10s\n", "size", "crc32c", "hw", "sw");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct crc_case d = { ulog__crc32c, buf, sizes[i] };
        struct crc_case h = { ulog__crc32c_hw, buf, sizes[i] };
        struct crc_case s = { ulog__crc32c_sw, buf, sizes[i] };
        double td = best_per_call(crc_once, &d);
        double th = hw ? best_per_call(crc_once, &h) : 0;
        double ts = best_per_call(crc_once, &s);
        char hs[32];
        if (hw)
            snprintf(hs, sizeof hs, "%10.2f", (double)sizes[i] / th / 1e9);
        else
            snprintf(hs, sizeof hs, "%10s", "-");
        printf("  %-10zu %10.2f %s %10.2f\n", sizes[i], (double)sizes[i] / td / 1e9, hs,
               (double)sizes[i] / ts / 1e9);
    }
    free(buf);
}

/* ------------------------------------------------------------ batches */

struct batch_case {
    const char        *name;
    size_t             value_len;
    bool               keyed;           /* 16-byte key and 2 headers */
    ulog_record        recs[NRECS];
    ulog_header        hdrs[NRECS][2];
    uint8_t           *values;          /* NRECS * value_len */
    uint8_t           *keys;            /* NRECS * 16 */
    uint8_t           *buf;             /* the encoded batch */
    size_t             size;
};

static void case_init(struct batch_case *c)
{
    static const char *hkeys[2] = { "content-type", "trace-id" };

    c->values = malloc(NRECS * c->value_len);
    c->keys = malloc(NRECS * 16);
    if (!c->values || !c->keys)
        die("out of memory");
    for (size_t i = 0; i < NRECS * c->value_len; i++)
        c->values[i] = (uint8_t)rnd();
    for (size_t i = 0; i < NRECS * 16; i++)
        c->keys[i] = (uint8_t)('a' + rnd() % 26);
    memset(c->recs, 0, sizeof c->recs);
    for (size_t i = 0; i < NRECS; i++) {
        ulog_record *r = &c->recs[i];
        r->value = c->values + i * c->value_len;
        r->value_len = c->value_len;
        /* A few milliseconds apart, as a burst of appends would be. */
        r->timestamp = 1700000000000 + (int64_t)(i / 10);
        if (c->keyed) {
            r->key = c->keys + i * 16;
            r->key_len = 16;
            c->hdrs[i][0] = (ulog_header){ hkeys[0], strlen(hkeys[0]),
                                           "application/json", 16 };
            c->hdrs[i][1] = (ulog_header){ hkeys[1], strlen(hkeys[1]),
                                           c->keys + i * 16, 16 };
            r->headers = c->hdrs[i];
            r->header_count = 2;
        }
    }
    ulog__batch_src src = { c->recs, NULL, NRECS };
    c->size = ulog__batch_size(&src, 0);
    c->buf = malloc(c->size);
    if (!c->size || !c->buf)
        die("batch size");
    ulog__batch_encode(c->buf, c->size, &src, 0, false, NULL);
}

static void encode_once(void *arg)
{
    struct batch_case *c = arg;
    ulog__batch_src src = { c->recs, NULL, NRECS };
    int64_t max_ts;
    size_t sz = ulog__batch_size(&src, 0);

    ulog__batch_encode(c->buf, sz, &src, 0, false, &max_ts);
    g_sink += sz + (uint64_t)c->buf[17];
}

static void verify_once(void *arg)
{
    struct batch_case *c = arg;
    ulog__batch_hdr h;

    if (ulog__batch_verify(c->buf, c->size, &h) != 0)
        die("verify failed");
    g_sink += (uint64_t)h.record_count;
}

/* What a reader touches: every record's fields, not the bytes behind them. */
static uint64_t decode_records(const uint8_t *p, const uint8_t *end, int32_t count)
{
    uint64_t acc = 0;
    ulog__rec r;

    for (int32_t i = 0; i < count; i++) {
        if (ulog__rec_decode(p, end, &r) != 0)
            die("decode failed");
        acc += (uint64_t)r.offset_delta + (uint64_t)r.timestamp_delta +
               r.key_len + r.value_len + r.header_count;
        p = r.end;
    }
    return acc;
}

static void check_decode_once(void *arg)
{
    struct batch_case *c = arg;
    ulog__batch_hdr h;

    if (ulog__batch_check(c->buf, c->size, &h) != 0)
        die("check failed");
    g_sink += decode_records(c->buf + ULOG__BATCH_HEADER_SIZE, c->buf + c->size,
                             h.record_count);
}

static void decode_once(void *arg)
{
    struct batch_case *c = arg;
    g_sink += decode_records(c->buf + ULOG__BATCH_HEADER_SIZE, c->buf + c->size, NRECS);
}

static void report(const char *what, double per_batch, size_t bytes)
{
    printf("  %-14s %8.2f M rec/s %8.1f ns/rec %9.0f ns/batch %7.2f GB/s\n", what,
           NRECS / per_batch / 1e6, per_batch * 1e9 / NRECS, per_batch * 1e9,
           (double)bytes / per_batch / 1e9);
}

static void bench_batches(void)
{
    static struct batch_case cases[] = {
        { .name = "100 B values, null key, no headers", .value_len = 100 },
        { .name = "100 B values, 16 B key, 2 headers", .value_len = 100, .keyed = true },
        { .name = "1000 B values, null key, no headers", .value_len = 1000 },
        { .name = "1000 B values, 16 B key, 2 headers", .value_len = 1000, .keyed = true },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct batch_case *c = &cases[i];
        case_init(c);
        printf("\nbatches of %d records, %s (%zu bytes a batch)\n", NRECS, c->name, c->size);
        report("encode", best_per_call(encode_once, c), c->size);
        report("verify", best_per_call(verify_once, c), c->size);
        report("check+decode", best_per_call(check_decode_once, c), c->size);
        report("decode", best_per_call(decode_once, c), c->size);
        free(c->values);
        free(c->keys);
        free(c->buf);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (!wanted("codec"))
        return 0;                   /* `make bench ONLY=...` picked another group */
    double t0 = now_s();

    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_crc();
    bench_batches();
    printf("\nbench_codec: %.1f s\n", now_s() - t0);
    return 0;
}
