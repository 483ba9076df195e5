/* test_batch.c -- RecordBatch v2: varints, round trips, the golden bytes
 * that pin the format, and rejection of damaged or hostile batches. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---------------------------------------------------------------- helpers */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

/* Recomputes the CRC, so a test reaches the checks behind it. */
static void fix_crc(uint8_t *b, size_t frame)
{
    be32(b + 17, ulog__crc32c(0, b + 21, frame - 21));
}

static size_t encode(uint8_t *buf, size_t cap, const ulog_record *recs, size_t n,
                     int64_t now, bool lat, int64_t *max_ts)
{
    ulog__batch_src src = { recs, NULL, n };
    size_t sz = ulog__batch_size(&src, now);
    cr_assert(sz >= ULOG__BATCH_HEADER_SIZE && sz <= cap, "size %zu", sz);
    cr_assert_eq(ulog__batch_encode(buf, sz, &src, now, lat, max_ts), sz);
    return sz;
}

/* Verifies the batch and decodes its records into out[]. */
static size_t decode_all(const uint8_t *buf, size_t sz, ulog__batch_hdr *h,
                         ulog__rec *out, size_t cap)
{
    cr_assert_eq(ulog__batch_verify(buf, sz, h), 0);
    cr_assert_eq((size_t)h->batch_length + 12, sz);
    const uint8_t *p = buf + ULOG__BATCH_HEADER_SIZE, *end = buf + sz;
    size_t n = 0;
    while (p < end) {
        cr_assert_lt(n, cap);
        cr_assert_eq(ulog__rec_decode(p, end, &out[n]), 0);
        p = out[n++].end;
    }
    cr_assert_eq(n, (size_t)h->record_count);
    return n;
}

static void expect_bytes(const void *got, size_t got_len, const void *want, size_t want_len)
{
    cr_assert_eq(got_len, want_len);
    if (want_len)
        cr_assert_eq(memcmp(got, want, want_len), 0);
}

/* ---------------------------------------------------------------- varints */

static void roundtrip(int64_t v, size_t want_len)
{
    uint8_t b[16];
    int64_t back = 0;
    size_t n = ulog__varint_put(b, v);

    cr_assert_eq(n, ulog__varint_len(v), "len of %lld", (long long)v);
    if (want_len)
        cr_assert_eq(n, want_len, "%lld: %zu bytes, want %zu", (long long)v, n, want_len);
    cr_assert_eq(ulog__varint_get(b, b + n, &back), n);
    cr_assert_eq(back, v);
    /* One byte short is an error, never a read past the end. */
    cr_assert_eq(ulog__varint_get(b, b + n - 1, &back), 0);
}

Test(varint, roundtrip_boundaries)
{
    roundtrip(0, 1);
    roundtrip(1, 1);
    roundtrip(-1, 1);
    roundtrip(INT32_MAX, 5);
    roundtrip(INT32_MIN, 5);
    roundtrip(INT64_MAX, 10);
    roundtrip(INT64_MIN, 10);
    /* zigzag(v) needs 7k bits exactly at v = 2^(7k-1) - 1 and -2^(7k-1). */
    for (int k = 1; k <= 9; k++) {
        int64_t edge = (int64_t)1 << (7 * k - 1);
        roundtrip(edge - 1, (size_t)k);
        roundtrip(edge, (size_t)k + 1);
        roundtrip(-edge, (size_t)k);
        roundtrip(-edge - 1, (size_t)k + 1);
    }
    for (int64_t v = -70000; v <= 70000; v++)
        roundtrip(v, 0);
}

Test(varint, known_encodings)
{
    static const struct { int64_t v; uint8_t b[10]; size_t n; } t[] = {
        { 0, { 0x00 }, 1 },
        { -1, { 0x01 }, 1 },
        { 1, { 0x02 }, 1 },
        { 63, { 0x7e }, 1 },
        { -64, { 0x7f }, 1 },
        { 64, { 0x80, 0x01 }, 2 },
        { 300, { 0xd8, 0x04 }, 2 },
        { INT32_MAX, { 0xfe, 0xff, 0xff, 0xff, 0x0f }, 5 },
        { INT32_MIN, { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5 },
        { INT64_MAX, { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
        { INT64_MIN, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t b[10];
        cr_assert_eq(ulog__varint_put(b, t[i].v), t[i].n);
        cr_assert_eq(memcmp(b, t[i].b, t[i].n), 0, "encoding of %lld", (long long)t[i].v);
    }
}

Test(varint, rejects)
{
    int64_t v;
    static const uint8_t cont[] = { 0x80, 0x80, 0x80 };
    static const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                      0x80, 0x80, 0x00 };
    static const uint8_t tenth_big[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0x02 };

    cr_expect_eq(ulog__varint_get(cont, cont, &v), 0, "empty");
    cr_expect_eq(ulog__varint_get(cont, cont + sizeof cont, &v), 0, "unterminated");
    cr_expect_eq(ulog__varint_get(eleven, eleven + sizeof eleven, &v), 0, "11 bytes");
    cr_expect_eq(ulog__varint_get(tenth_big, tenth_big + sizeof tenth_big, &v), 0,
                 "bits past 64");
    /* A padded (non-minimal) encoding still decodes, as in Kafka. */
    static const uint8_t padded[] = { 0x82, 0x00 };
    cr_expect_eq(ulog__varint_get(padded, padded + 2, &v), 2);
    cr_expect_eq(v, 1);
}

/* ---------------------------------------------------------------- golden */

/* Two records, derived by hand from the layout at the top of batch.c:
 *   record 0: ts 1000, key "k", value "v1", header h = "x"
 *   record 1: ts 1300, null key, empty value, header n = null
 * baseOffset patched to 42 afterwards. */
static const uint8_t golden[86] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,  /* baseOffset 42 */
    0x00, 0x00, 0x00, 0x4a,                          /* batchLength 74 = 86 - 12 */
    0xff, 0xff, 0xff, 0xff,                          /* partitionLeaderEpoch -1 */
    0x02,                                            /* magic */
    0xc5, 0x1b, 0x5c, 0xce,                          /* CRC-32C of bytes 21..85 */
    0x00, 0x00,                                      /* attributes */
    0x00, 0x00, 0x00, 0x01,                          /* lastOffsetDelta 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8,  /* baseTimestamp 1000 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x14,  /* maxTimestamp 1300 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  /* producerId -1 */
    0xff, 0xff,                                      /* producerEpoch -1 */
    0xff, 0xff, 0xff, 0xff,                          /* baseSequence -1 */
    0x00, 0x00, 0x00, 0x02,                          /* recordCount 2 */
    /* record 0 */
    0x1a,                                            /* length 13 */
    0x00,                                            /* attributes */
    0x00,                                            /* timestampDelta 0 */
    0x00,                                            /* offsetDelta 0 */
    0x02, 'k',                                       /* key, 1 byte */
    0x04, 'v', '1',                                  /* value, 2 bytes */
    0x02,                                            /* 1 header */
    0x02, 'h', 0x02, 'x',                            /* "h" = "x" */
    /* record 1 */
    0x14,                                            /* length 10 */
    0x00,                                            /* attributes */
    0xd8, 0x04,                                      /* timestampDelta 300 */
    0x02,                                            /* offsetDelta 1 */
    0x01,                                            /* key null (-1) */
    0x00,                                            /* value empty (0) */
    0x02,                                            /* 1 header */
    0x02, 'n', 0x01,                                 /* "n" = null */
};

static const ulog_header golden_h0[] = { { "h", 1, "x", 1 } };
static const ulog_header golden_h1[] = { { "n", 1, NULL, 0 } };

static void golden_records(ulog_record r[2])
{
    memset(r, 0, 2 * sizeof *r);
    r[0] = (ulog_record){ .key = "k", .key_len = 1, .value = "v1", .value_len = 2,
                          .headers = golden_h0, .header_count = 1, .timestamp = 1000 };
    r[1] = (ulog_record){ .key = NULL, .value = "", .value_len = 0,
                          .headers = golden_h1, .header_count = 1, .timestamp = 1300 };
}

Test(batch, golden_encode)
{
    ulog_record r[2];
    uint8_t buf[256];
    int64_t max_ts = 0;

    golden_records(r);
    size_t sz = encode(buf, sizeof buf, r, 2, 999999, false, &max_ts);
    ulog__batch_set_base_offset(buf, 42);
    cr_assert_eq(max_ts, 1300);
    cr_assert_eq(sz, sizeof golden);
    for (size_t i = 0; i < sz; i++)
        cr_assert_eq(buf[i], golden[i], "byte %zu: 0x%02x, want 0x%02x", i, buf[i], golden[i]);
}

Test(batch, golden_decode)
{
    ulog__batch_hdr h;
    ulog__rec rec[4];
    ulog_header hd;
    size_t frame = 0;

    cr_assert_eq(ulog__batch_frame_size(golden, 12, &frame), 0);
    cr_assert_eq(frame, 86);
    cr_assert_eq(decode_all(golden, sizeof golden, &h, rec, 4), 2);
    cr_expect_eq(h.base_offset, 42);
    cr_expect_eq(h.batch_length, 74);
    cr_expect_eq(h.leader_epoch, -1);
    cr_expect_eq(h.magic, 2);
    cr_expect_eq(h.crc, 0xc51b5cceu);
    cr_expect_eq(h.attributes, 0);
    cr_expect_eq(h.last_offset_delta, 1);
    cr_expect_eq(h.base_timestamp, 1000);
    cr_expect_eq(h.max_timestamp, 1300);
    cr_expect_eq(h.producer_id, -1);
    cr_expect_eq(h.producer_epoch, -1);
    cr_expect_eq(h.base_sequence, -1);
    cr_expect_eq(h.record_count, 2);

    cr_expect_eq(rec[0].offset_delta, 0);
    cr_expect_eq(rec[0].timestamp_delta, 0);
    expect_bytes(rec[0].key, rec[0].key_len, "k", 1);
    expect_bytes(rec[0].value, rec[0].value_len, "v1", 2);
    cr_assert_eq(rec[0].header_count, 1);
    cr_assert_eq(ulog__rec_header(&rec[0], 0, &hd), 0);
    expect_bytes(hd.key, hd.key_len, "h", 1);
    expect_bytes(hd.value, hd.value_len, "x", 1);
    /* Zero copy: the key points into the batch. */
    cr_expect_eq((const uint8_t *)hd.key, golden + 72);

    cr_expect_eq(rec[1].offset_delta, 1);
    cr_expect_eq(rec[1].timestamp_delta, 300);
    cr_expect_null(rec[1].key);
    cr_expect_not_null(rec[1].value);
    cr_expect_eq(rec[1].value_len, 0);
    cr_assert_eq(ulog__rec_header(&rec[1], 0, &hd), 0);
    expect_bytes(hd.key, hd.key_len, "n", 1);
    cr_expect_null(hd.value);
    cr_expect_eq(ulog__rec_header(&rec[1], 1, &hd), ULOG_EINVAL);
    cr_expect_eq(rec[1].end, golden + sizeof golden);
}

/* ---------------------------------------------------------------- round trips */

Test(batch, roundtrip_mixed)
{
    static const ulog_header hs[] = {
        { "a", 1, "1", 1 },
        { "", 0, "empty key is fine", 17 },
        { "nul\0key", 7, NULL, 0 },
        { "e", 1, "", 0 },
    };
    static uint8_t big[5000];
    ulog_record r[6];
    uint8_t buf[16384];
    ulog__rec rec[8];
    ulog__batch_hdr h;
    int64_t max_ts;

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    memset(r, 0, sizeof r);
    r[0] = (ulog_record){ .key = "key", .key_len = 3, .value = "value", .value_len = 5,
                          .headers = hs, .header_count = 4, .timestamp = 5000 };
    r[1] = (ulog_record){ .key = "", .key_len = 0, .value = NULL, .timestamp = 4000 };
    r[2] = (ulog_record){ .key = NULL, .value = big, .value_len = sizeof big,
                          .timestamp = ULOG_TIMESTAMP_NOW };
    r[3] = (ulog_record){ .key = big, .key_len = 200, .value = "", .value_len = 0,
                          .timestamp = INT64_MAX };
    r[4] = (ulog_record){ .key = NULL, .value = NULL, .timestamp = 0 };
    r[5] = (ulog_record){ .key = "k", .key_len = 1, .value = "v", .value_len = 1,
                          .headers = hs + 2, .header_count = 1, .timestamp = 5000 };

    size_t sz = encode(buf, sizeof buf, r, 6, 7000, false, &max_ts);
    cr_assert_eq(max_ts, INT64_MAX);
    cr_assert_eq(decode_all(buf, sz, &h, rec, 8), 6);
    cr_expect_eq(h.base_timestamp, 5000);
    cr_expect_eq(h.max_timestamp, INT64_MAX);
    cr_expect_eq(h.last_offset_delta, 5);
    cr_expect_eq(h.base_offset, 0);

    for (size_t i = 0; i < 6; i++) {
        int64_t ts = r[i].timestamp == ULOG_TIMESTAMP_NOW ? 7000 : r[i].timestamp;
        cr_expect_eq(rec[i].offset_delta, (int64_t)i);
        cr_expect_eq((int64_t)((uint64_t)h.base_timestamp + (uint64_t)rec[i].timestamp_delta), ts);
        if (r[i].key)
            expect_bytes(rec[i].key, rec[i].key_len, r[i].key, r[i].key_len);
        else
            cr_expect_null(rec[i].key);
        if (r[i].value)
            expect_bytes(rec[i].value, rec[i].value_len, r[i].value, r[i].value_len);
        else
            cr_expect_null(rec[i].value);
        cr_assert_eq(rec[i].header_count, r[i].header_count);
        for (size_t j = 0; j < r[i].header_count; j++) {
            ulog_header hd;
            cr_assert_eq(ulog__rec_header(&rec[i], j, &hd), 0);
            expect_bytes(hd.key, hd.key_len, r[i].headers[j].key, r[i].headers[j].key_len);
            if (r[i].headers[j].value)
                expect_bytes(hd.value, hd.value_len, r[i].headers[j].value,
                             r[i].headers[j].value_len);
            else
                cr_expect_null(hd.value);
        }
    }
    cr_expect_not_null(rec[1].key, "empty key is not null");
    cr_expect_eq(rec[1].key_len, 0);
    cr_expect_not_null(rec[3].value, "empty value is not null");

    /* baseOffset is outside the CRC: patching it keeps the batch valid. */
    ulog__batch_set_base_offset(buf, 123456789012345);
    cr_assert_eq(ulog__batch_verify(buf, sz, &h), 0);
    cr_expect_eq(h.base_offset, 123456789012345);
}

Test(batch, index_selects_records)
{
    ulog_record r[4];
    static const uint32_t idx[] = { 3, 1 };
    uint8_t buf[512];
    ulog__rec rec[4];
    ulog__batch_hdr h;

    memset(r, 0, sizeof r);
    for (int i = 0; i < 4; i++) {
        static const char *vals[] = { "zero", "one", "two", "three" };
        r[i].value = vals[i];
        r[i].value_len = strlen(vals[i]);
        r[i].timestamp = 100 + i;
    }
    ulog__batch_src src = { r, idx, 2 };
    size_t sz = ulog__batch_size(&src, 0);
    cr_assert(sz > 0 && sz <= sizeof buf);
    ulog__batch_encode(buf, sz, &src, 0, false, NULL);
    cr_assert_eq(decode_all(buf, sz, &h, rec, 4), 2);
    expect_bytes(rec[0].value, rec[0].value_len, "three", 5);
    expect_bytes(rec[1].value, rec[1].value_len, "one", 3);
    cr_expect_eq(h.base_timestamp, 103);
    cr_expect_eq(h.max_timestamp, 103);
    cr_expect_eq(rec[1].timestamp_delta, -2);
}

/* LogAppendTime: the flag, and the append time as maxTimestamp, which Kafka
 * gives every record of such a batch. The size does not depend on it. */
Test(batch, log_append_time)
{
    ulog_record r[2];
    uint8_t a[256], b[256];
    ulog__batch_hdr h;
    int64_t max_ts;

    memset(r, 0, sizeof r);
    r[0] = (ulog_record){ .value = "x", .value_len = 1, .timestamp = 10 };
    r[1] = (ulog_record){ .value = "y", .value_len = 1, .timestamp = 5000000 };
    size_t sa = encode(a, sizeof a, r, 2, 777, true, &max_ts);
    size_t sb = encode(b, sizeof b, r, 2, 777, false, NULL);
    cr_assert_eq(sa, sb);
    cr_expect_eq(max_ts, 777);
    cr_assert_eq(ulog__batch_verify(a, sa, &h), 0);
    cr_expect_eq(h.attributes, ULOG__ATTR_LOG_APPEND_TIME);
    cr_expect_eq(h.max_timestamp, 777);
    cr_assert_eq(ulog__batch_verify(b, sb, &h), 0);
    cr_expect_eq(h.attributes, 0);
    cr_expect_eq(h.max_timestamp, 5000000);
}

Test(batch, timestamp_now)
{
    ulog_record r[2];
    uint8_t buf[256];
    ulog__batch_hdr h;
    ulog__rec rec[2];
    int64_t max_ts;

    memset(r, 0, sizeof r);
    r[0] = (ulog_record){ .value = "x", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW };
    r[1] = (ulog_record){ .value = "y", .value_len = 1, .timestamp = 1 };
    size_t sz = encode(buf, sizeof buf, r, 2, 1700000000000, false, &max_ts);
    cr_assert_eq(decode_all(buf, sz, &h, rec, 2), 2);
    cr_expect_eq(h.base_timestamp, 1700000000000);
    cr_expect_eq(h.max_timestamp, 1700000000000);
    cr_expect_eq(max_ts, 1700000000000);
    cr_expect_eq(rec[1].timestamp_delta, 1 - 1700000000000);
}

/* A timestamp span that overflows int64 wraps; it must not be UB (ubsan). */
Test(batch, extreme_timestamps)
{
    ulog_record r[2];
    uint8_t buf[256];
    ulog__batch_hdr h;
    ulog__rec rec[2];

    memset(r, 0, sizeof r);
    r[0].timestamp = INT64_MIN + 1;
    r[1].timestamp = INT64_MAX;
    size_t sz = encode(buf, sizeof buf, r, 2, 0, false, NULL);
    cr_assert_eq(decode_all(buf, sz, &h, rec, 2), 2);
    cr_expect_eq((int64_t)((uint64_t)h.base_timestamp + (uint64_t)rec[1].timestamp_delta),
                 INT64_MAX);
}

Test(batch, size_limits)
{
    ulog_record r;
    ulog__batch_src src = { &r, NULL, 0 };

    memset(&r, 0, sizeof r);
    cr_expect_eq(ulog__batch_size(&src, 0), 0, "no records");
    cr_expect_eq(ulog__batch_size(NULL, 0), 0);
    src.n = 1;
    cr_expect_eq(ulog__batch_size(&src, 0), 61 + 7, "one empty record");
    /* The size is computed, never read: a fake pointer is fine. */
    r.value = "";
    r.value_len = (size_t)INT32_MAX;
    cr_expect_eq(ulog__batch_size(&src, 0), 0, "value too big");
    /* 61 header + 5 length + 4 (attributes, deltas, key) + 5 value length
     * + value + 1 header count: the largest value that fits is 2^31 - 77. */
    r.value_len = (size_t)INT32_MAX - 76;
    cr_expect_eq(ulog__batch_size(&src, 0), (size_t)INT32_MAX);
    r.value_len++;
    cr_expect_eq(ulog__batch_size(&src, 0), 0, "batch too big");
    r.value_len = SIZE_MAX;
    cr_expect_eq(ulog__batch_size(&src, 0), 0);

    /* The bound: never below the size, past INT32_MAX saturated. */
    src.n = 0;
    cr_expect_eq(ulog__batch_bound(&src), 0, "no records");
    cr_expect_eq(ulog__batch_bound(NULL), 0);
    src.n = 1;
    r.value_len = 0;
    cr_expect_geq(ulog__batch_bound(&src), 61 + 7);
    r.value_len = (size_t)INT32_MAX - 76;
    cr_expect_eq(ulog__batch_bound(&src), (size_t)INT32_MAX + 1, "fits, but the bound does not");
    r.value_len = SIZE_MAX;
    cr_expect_eq(ulog__batch_bound(&src), (size_t)INT32_MAX + 1);
    ulog_header hd = { "k", 1, "", SIZE_MAX - 1 };
    r.value_len = 0;
    r.headers = &hd;
    r.header_count = 1;
    cr_expect_eq(ulog__batch_bound(&src), (size_t)INT32_MAX + 1, "header value too big");
    r.header_count = SIZE_MAX;
    cr_expect_eq(ulog__batch_bound(&src), (size_t)INT32_MAX + 1, "too many headers");
}

/* ---------------------------------------------------------------- rejects */

Test(batch, frame_size)
{
    uint8_t b[12] = { 0 };
    size_t f;

    cr_expect_eq(ulog__batch_frame_size(b, 11, &f), ULOG_ECORRUPT);
    be32(b + 8, 48);
    cr_expect_eq(ulog__batch_frame_size(b, 12, &f), ULOG_ECORRUPT);
    be32(b + 8, 49);
    cr_expect_eq(ulog__batch_frame_size(b, 12, &f), 0);
    cr_expect_eq(f, 61);
    be32(b + 8, INT32_MAX - 12);
    cr_expect_eq(ulog__batch_frame_size(b, 12, &f), 0);
    cr_expect_eq(f, (size_t)INT32_MAX);
    be32(b + 8, INT32_MAX - 11);
    cr_expect_eq(ulog__batch_frame_size(b, 12, &f), ULOG_ECORRUPT);
    be32(b + 8, 0xffffffffu);
    cr_expect_eq(ulog__batch_frame_size(b, 12, &f), ULOG_ECORRUPT);
}

Test(batch, truncation)
{
    ulog__batch_hdr h;
    uint8_t b[sizeof golden];

    /* Every short buffer: the frame is not all there. */
    for (size_t len = 0; len < sizeof golden; len++)
        cr_assert_neq(ulog__batch_verify(golden, len, &h), 0, "avail %zu", len);
    /* Every shortened frame with batchLength and CRC made consistent: the
     * records themselves no longer fit. */
    for (size_t len = 61; len < sizeof golden; len++) {
        memcpy(b, golden, len);
        be32(b + 8, (uint32_t)(len - 12));
        fix_crc(b, len);
        cr_assert_eq(ulog__batch_verify(b, len, &h), ULOG_ECORRUPT, "frame %zu", len);
    }
}

Test(batch, bit_flips)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    /* baseOffset (0-7) and partitionLeaderEpoch (12-15) are outside the CRC
     * by design: Kafka stamps both after the batch is checksummed. A flip in
     * batchLength is caught by the frame bounds or, failing that, the CRC;
     * one in magic by the magic check. */
    for (size_t i = 8; i < sizeof golden; i++) {
        if (i >= 12 && i <= 15)
            continue;
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, golden, sizeof b);
            b[i] ^= (uint8_t)(1u << bit);
            cr_assert_neq(ulog__batch_verify(b, sizeof b, &h), 0, "byte %zu bit %d", i, bit);
        }
    }
}

/* Flips behind a recomputed CRC reach the record decoder: any outcome but a
 * crash or an out-of-bounds read (asan) is fine, and a batch that verifies
 * must decode completely. */
Test(batch, flips_behind_crc)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    for (size_t i = 21; i < sizeof golden; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, golden, sizeof b);
            b[i] ^= (uint8_t)(1u << bit);
            fix_crc(b, sizeof b);
            int rc = ulog__batch_verify(b, sizeof b, &h);
            cr_assert(rc == 0 || rc == ULOG_ECORRUPT || rc == ULOG_ENOTSUP);
            if (rc)
                continue;
            const uint8_t *p = b + 61;
            for (int32_t k = 0; k < h.record_count; k++) {
                ulog__rec r;
                ulog_header hd;
                cr_assert_eq(ulog__rec_decode(p, b + sizeof b, &r), 0);
                for (size_t j = 0; j < r.header_count; j++)
                    cr_assert_eq(ulog__rec_header(&r, j, &hd), 0);
                p = r.end;
            }
        }
}

/* A mini fuzzer: random valid batches, then a few random byte changes,
 * insertions or deletions behind a fixed-up batchLength and CRC. The decoder
 * must never crash or read out of bounds (run it under asan), and whatever
 * verifies must decode completely. */
static uint64_t fz_state = 0x243F6A8885A308D3ull;
static uint64_t fz(void)
{
    fz_state ^= fz_state << 13;
    fz_state ^= fz_state >> 7;
    fz_state ^= fz_state << 17;
    return fz_state;
}

/* What a reader does with the batch at b: ulog__batch_check(), then
 * records one by one until the count or the first error. verify = check +
 * the record walk, so check fails exactly where verify does before the walk
 * and passes wherever verify does. The frame is copied to a buffer of its
 * exact size, so that asan sees any read past it. */
static void lazy_decode(const uint8_t *b, size_t len, int verify_rc)
{
    uint8_t *e = malloc(len);
    ulog__batch_hdr h;

    cr_assert_not_null(e);
    memcpy(e, b, len);
    int rc = ulog__batch_check(e, len, &h);
    if (rc)
        cr_assert_eq(verify_rc, rc, "check %d, verify %d", rc, verify_rc);
    else
        cr_assert(verify_rc == 0 || verify_rc == ULOG_ECORRUPT, "verify %d", verify_rc);
    if (rc == 0) {
        const uint8_t *p = e + ULOG__BATCH_HEADER_SIZE, *end = e + len;
        int32_t k;
        for (k = 0; k < h.record_count; k++) {
            ulog__rec r;
            ulog_header hd;
            if (ulog__rec_decode(p, end, &r) != 0)
                break;
            cr_assert(r.end > p && r.end <= end);
            for (size_t j = 0; j < r.header_count; j++)
                cr_assert_eq(ulog__rec_header(&r, j, &hd), 0);
            p = r.end;
        }
        if (verify_rc == 0)
            cr_assert(k == h.record_count && p == end, "a verified batch decodes lazily");
    }
    free(e);
}

Test(batch, mutated_batches)
{
    static const uint8_t bytes[16] = "0123456789abcdef";
    uint8_t buf[1024], b[1100];
    int valid = 0, iters = 50000;

    for (int iter = 0; iter < iters; iter++) {
        ulog_record r[4];
        ulog_header hs[4][3];
        size_t n = 1 + fz() % 4;

        memset(r, 0, sizeof r);
        for (size_t i = 0; i < n; i++) {
            r[i].key = (fz() & 3) ? bytes : NULL;
            r[i].key_len = fz() % 16;
            r[i].value = (fz() & 3) ? bytes : NULL;
            r[i].value_len = fz() % 16;
            r[i].timestamp = (int64_t)(fz() % 100000);
            r[i].header_count = fz() % 4;
            r[i].headers = hs[i];
            for (size_t j = 0; j < r[i].header_count; j++)
                hs[i][j] = (ulog_header){ (const char *)bytes, fz() % 4,
                                          (fz() & 1) ? bytes : NULL, fz() % 4 };
        }
        size_t len = encode(buf, sizeof buf, r, n, 0, false, NULL);
        cr_assert_eq(ulog__batch_verify(buf, len, &(ulog__batch_hdr){ 0 }), 0);

        memcpy(b, buf, len);
        for (int m = (int)(fz() % 4); m > 0; m--) {
            size_t at = 21 + fz() % (len - 21);
            switch (fz() % 3) {
            case 0:                                 /* overwrite */
                b[at] = (uint8_t)((fz() & 1) ? fz() % 8 : fz());
                break;
            case 1:                                 /* insert */
                memmove(b + at + 1, b + at, len - at);
                b[at] = (uint8_t)(fz() % 8);
                len++;
                break;
            default:                                /* delete */
                if (len > 62) {
                    memmove(b + at, b + at + 1, len - at - 1);
                    len--;
                }
            }
        }
        be32(b + 8, (uint32_t)(len - 12));
        fix_crc(b, len);

        ulog__batch_hdr h;
        int rc = ulog__batch_verify(b, len, &h);
        cr_assert(rc == 0 || rc == ULOG_ECORRUPT || rc == ULOG_ENOTSUP, "rc %d", rc);
        lazy_decode(b, len, rc);
        if (rc)
            continue;
        valid++;
        const uint8_t *p = b + 61;
        for (int32_t k = 0; k < h.record_count; k++) {
            ulog__rec rec;
            ulog_header hd;
            cr_assert_eq(ulog__rec_decode(p, b + len, &rec), 0);
            for (size_t j = 0; j < rec.header_count; j++)
                cr_assert_eq(ulog__rec_header(&rec, j, &hd), 0);
            p = rec.end;
        }
        cr_assert_eq(p, b + len);
    }
    /* The mutations must reach the accepting paths too. */
    cr_log_info("%d of %d mutated batches verified", valid, iters);
    cr_expect_gt(valid, iters / 20);
}

Test(batch, wrong_magic)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    for (int m = 0; m < 256; m++) {
        if (m == 2)
            continue;
        memcpy(b, golden, sizeof b);
        b[16] = (uint8_t)m;
        cr_assert_eq(ulog__batch_verify(b, sizeof b, &h), ULOG_ECORRUPT, "magic %d", m);
        cr_assert_eq(ulog__batch_parse_header(b, sizeof b, &h), ULOG_ECORRUPT);
    }
}

/* ulog__batch_verify or ulog__batch_check. */
typedef int (*batch_fn)(const uint8_t *buf, size_t avail, ulog__batch_hdr *h);

/* fn's verdicts on golden with compression codec `codec` in its attributes:
 * with the CRC fixed (*fixed), then with the CRC broken again (*broken). */
static void codec_verdicts(batch_fn fn, int codec, int *fixed, int *broken)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    memcpy(b, golden, sizeof b);
    b[22] = (uint8_t)codec;
    fix_crc(b, sizeof b);
    *fixed = fn(b, sizeof b, &h);
    b[18] ^= 1;
    *broken = fn(b, sizeof b, &h);
}

Test(batch, compression_not_supported)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    for (int codec = 1; codec <= 7; codec++) {
        int fixed, broken;
        codec_verdicts(ulog__batch_verify, codec, &fixed, &broken);
        cr_assert_eq(fixed, ULOG_ENOTSUP, "codec %d", codec);
        /* Without a matching CRC it is damage, not an unknown codec. */
        cr_assert_eq(broken, ULOG_ECORRUPT);
    }
    /* Other attribute bits are not a codec. */
    memcpy(b, golden, sizeof b);
    b[22] = ULOG__ATTR_LOG_APPEND_TIME | ULOG__ATTR_TRANSACTIONAL;
    fix_crc(b, sizeof b);
    cr_assert_eq(ulog__batch_verify(b, sizeof b, &h), 0);
}

/* Rewrites golden's header field at off (4 bytes), fixes the CRC and
 * returns fn's verdict. */
static int golden_with32(batch_fn fn, size_t off, uint32_t v)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    memcpy(b, golden, sizeof b);
    be32(b + off, v);
    fix_crc(b, sizeof b);
    return fn(b, sizeof b, &h);
}

static int verify_with32(size_t off, uint32_t v)
{
    return golden_with32(ulog__batch_verify, off, v);
}

Test(batch, count_and_delta_mismatch)
{
    cr_expect_eq(verify_with32(57, 1), ULOG_ECORRUPT, "count 1 of 2");
    cr_expect_eq(verify_with32(57, 3), ULOG_ECORRUPT, "count 3 of 2");
    cr_expect_eq(verify_with32(57, 0), ULOG_ECORRUPT, "count 0 of 2");
    cr_expect_eq(verify_with32(57, 0xffffffffu), ULOG_ECORRUPT, "count -1");
    cr_expect_eq(verify_with32(57, 0x7fffffffu), ULOG_ECORRUPT, "count huge");
    cr_expect_eq(verify_with32(23, 0), ULOG_ECORRUPT, "lastOffsetDelta 0");
    cr_expect_eq(verify_with32(23, 2), ULOG_ECORRUPT, "lastOffsetDelta 2");
    cr_expect_eq(verify_with32(23, 0xffffffffu), ULOG_ECORRUPT, "lastOffsetDelta -1");
}

/* golden with base offsets fn must refuse (-1, and one whose last offset
 * wraps) and the largest it must accept. */
static void expect_base_offset_rules(batch_fn fn)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    memcpy(b, golden, sizeof b);
    ulog__batch_set_base_offset(b, -1);
    cr_expect_eq(fn(b, sizeof b, &h), ULOG_ECORRUPT);
    ulog__batch_set_base_offset(b, INT64_MAX);
    cr_expect_eq(fn(b, sizeof b, &h), ULOG_ECORRUPT, "last offset wraps");
    ulog__batch_set_base_offset(b, INT64_MAX - 1);
    cr_expect_eq(fn(b, sizeof b, &h), 0);
}

Test(batch, base_offset_sanity)
{
    expect_base_offset_rules(ulog__batch_verify);
}

Test(batch, batch_length_vs_avail)
{
    uint8_t b[sizeof golden + 16];
    ulog__batch_hdr h;

    /* Trailing bytes after the frame are the next batch's business. */
    memset(b, 0xee, sizeof b);
    memcpy(b, golden, sizeof golden);
    cr_expect_eq(ulog__batch_verify(b, sizeof b, &h), 0);
    /* A batchLength past the buffer. */
    be32(b + 8, 74 + 17);
    cr_expect_eq(ulog__batch_verify(b, sizeof b, &h), ULOG_ECORRUPT);
    be32(b + 8, 0x7fffffffu);
    cr_expect_eq(ulog__batch_verify(b, sizeof b, &h), ULOG_ECORRUPT);
    be32(b + 8, 48);
    cr_expect_eq(ulog__batch_verify(b, sizeof b, &h), ULOG_ECORRUPT);
}

/* Builds a frame around hand-written record bytes, with a valid CRC. */
static size_t frame_of(uint8_t *b, const uint8_t *recs, size_t len, uint32_t count,
                       uint32_t last_delta)
{
    memcpy(b, golden, 61);
    memcpy(b + 61, recs, len);
    be32(b + 8, (uint32_t)(61 + len - 12));
    be32(b + 23, last_delta);
    be32(b + 57, count);
    fix_crc(b, 61 + len);
    return 61 + len;
}

static int verify_recs(const uint8_t *recs, size_t len, uint32_t count, uint32_t last)
{
    uint8_t b[256];
    ulog__batch_hdr h;
    return ulog__batch_verify(b, frame_of(b, recs, len, count, last), &h);
}

Test(batch, hostile_records)
{
    /* A well-formed one-record body, as a baseline: no key, no value. */
    static const uint8_t ok[] = { 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 };
    cr_assert_eq(verify_recs(ok, sizeof ok, 1, 0), 0);

    static const uint8_t key_too_long[] = { 0x0e, 0x00, 0x00, 0x00, 0x08, 'a', 0x01, 0x00 };
    cr_expect_eq(verify_recs(key_too_long, sizeof key_too_long, 1, 0), ULOG_ECORRUPT);
    static const uint8_t key_neg2[] = { 0x0c, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00 };
    cr_expect_eq(verify_recs(key_neg2, sizeof key_neg2, 1, 0), ULOG_ECORRUPT);
    static const uint8_t value_neg5[] = { 0x0c, 0x00, 0x00, 0x00, 0x01, 0x09, 0x00 };
    cr_expect_eq(verify_recs(value_neg5, sizeof value_neg5, 1, 0), ULOG_ECORRUPT);
    /* Key length INT32_MAX. */
    static const uint8_t key_huge[] = { 0x14, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f,
                                        0x01, 0x00 };
    cr_expect_eq(verify_recs(key_huge, sizeof key_huge, 1, 0), ULOG_ECORRUPT);
    /* Key length past int32 (a varlong where a varint belongs). */
    static const uint8_t key_64[] = { 0x14, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x20,
                                      0x01, 0x00 };
    cr_expect_eq(verify_recs(key_64, sizeof key_64, 1, 0), ULOG_ECORRUPT);
    /* A 32-bit varint longer than 5 bytes, even if its value is small:
     * Kafka's reader refuses it. Key length 1 in 6 bytes. */
    static const uint8_t key_6b[] = { 0x18, 0x00, 0x00, 0x00, 0x82, 0x80, 0x80, 0x80, 0x80,
                                      0x00, 'a', 0x01, 0x00 };
    cr_expect_eq(verify_recs(key_6b, sizeof key_6b, 1, 0), ULOG_ECORRUPT);
    static const uint8_t key_5b[] = { 0x16, 0x00, 0x00, 0x00, 0x82, 0x80, 0x80, 0x80,
                                      0x00, 'a', 0x01, 0x00 };
    cr_expect_eq(verify_recs(key_5b, sizeof key_5b, 1, 0), 0, "5 bytes is fine");
    /* Record length past the batch, and longer than its contents. */
    static const uint8_t rec_long[] = { 0x0e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 };
    cr_expect_eq(verify_recs(rec_long, sizeof rec_long, 1, 0), ULOG_ECORRUPT);
    static const uint8_t rec_slack[] = { 0x0e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00 };
    cr_expect_eq(verify_recs(rec_slack, sizeof rec_slack, 1, 0), ULOG_ECORRUPT);
    /* Record length shorter than its contents. */
    static const uint8_t rec_short[] = { 0x0a, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 };
    cr_expect_eq(verify_recs(rec_short, sizeof rec_short, 1, 0), ULOG_ECORRUPT);
    static const uint8_t rec_neg[] = { 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 };
    cr_expect_eq(verify_recs(rec_neg, sizeof rec_neg, 1, 0), ULOG_ECORRUPT);
    static const uint8_t rec_zero[] = { 0x00 };
    cr_expect_eq(verify_recs(rec_zero, sizeof rec_zero, 1, 0), ULOG_ECORRUPT);
    /* Header count larger than the headers present; negative. */
    static const uint8_t hc_big[] = { 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x7e };
    cr_expect_eq(verify_recs(hc_big, sizeof hc_big, 1, 0), ULOG_ECORRUPT);
    static const uint8_t hc_neg[] = { 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01 };
    cr_expect_eq(verify_recs(hc_neg, sizeof hc_neg, 1, 0), ULOG_ECORRUPT);
    /* A null header key; a header value that runs past the record. */
    static const uint8_t hk_null[] = { 0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x01, 0x01 };
    cr_expect_eq(verify_recs(hk_null, sizeof hk_null, 1, 0), ULOG_ECORRUPT);
    static const uint8_t hv_long[] = { 0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x04, 'x' };
    cr_expect_eq(verify_recs(hv_long, sizeof hv_long, 1, 0), ULOG_ECORRUPT);
    /* A good header: empty key, null value. */
    static const uint8_t h_ok[] = { 0x10, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x01 };
    cr_expect_eq(verify_recs(h_ok, sizeof h_ok, 1, 0), 0);
    /* Unterminated varint for the timestamp delta. */
    static const uint8_t ts_open[] = { 0x0c, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80 };
    cr_expect_eq(verify_recs(ts_open, sizeof ts_open, 1, 0), ULOG_ECORRUPT);
}

Test(batch, offset_deltas)
{
    /* Two empty records with offset deltas a, b. */
#define TWO(a, b) { 0x0c, 0x00, 0x00, a, 0x01, 0x01, 0x00, 0x0c, 0x00, 0x00, b, 0x01, 0x01, 0x00 }
    static const uint8_t inc[] = TWO(0x00, 0x02);       /* 0, 1 */
    static const uint8_t gap[] = TWO(0x00, 0x06);       /* 0, 3 */
    static const uint8_t same[] = TWO(0x02, 0x02);      /* 1, 1 */
    static const uint8_t dec[] = TWO(0x04, 0x02);       /* 2, 1 */
    static const uint8_t neg[] = TWO(0x01, 0x02);       /* -1, 1 */
#undef TWO
    cr_expect_eq(verify_recs(inc, sizeof inc, 2, 1), 0);
    /* No gaps inside a batch while there is no compaction: recordCount
     * must be lastOffsetDelta + 1 and the deltas consecutive. */
    cr_expect_eq(verify_recs(gap, sizeof gap, 2, 3), ULOG_ECORRUPT, "a gap");
    cr_expect_eq(verify_recs(gap, sizeof gap, 2, 1), ULOG_ECORRUPT);
    cr_expect_eq(verify_recs(same, sizeof same, 2, 1), ULOG_ECORRUPT);
    cr_expect_eq(verify_recs(dec, sizeof dec, 2, 1), ULOG_ECORRUPT);
    cr_expect_eq(verify_recs(neg, sizeof neg, 2, 1), ULOG_ECORRUPT);
}

Test(batch, rec_decode_bounds)
{
    ulog__rec r;
    ulog_header hd;
    const uint8_t *rec1 = golden + 61 + 14;

    cr_expect_eq(ulog__rec_decode(golden + 61, golden + 61, &r), ULOG_ECORRUPT);
    cr_expect_eq(ulog__rec_decode(golden + 62, golden + 61, &r), ULOG_ECORRUPT);
    for (const uint8_t *end = rec1; end < golden + sizeof golden; end++)
        cr_expect_eq(ulog__rec_decode(rec1, end, &r), ULOG_ECORRUPT);
    cr_assert_eq(ulog__rec_decode(rec1, golden + sizeof golden, &r), 0);
    cr_expect_eq(ulog__rec_header(&r, 1, &hd), ULOG_EINVAL);
    cr_expect_eq(ulog__rec_header(NULL, 0, &hd), ULOG_EINVAL);
    cr_expect_eq(ulog__rec_header(&r, 0, NULL), ULOG_EINVAL);
    /* A tampered ulog__rec still cannot read outside its record. */
    r.header_count = 5;
    cr_expect_eq(ulog__rec_header(&r, 3, &hd), ULOG_ECORRUPT);
}

Test(batch, parse_header)
{
    ulog__batch_hdr h;

    cr_expect_eq(ulog__batch_parse_header(golden, 60, &h), ULOG_ECORRUPT);
    cr_assert_eq(ulog__batch_parse_header(golden, 61, &h), 0);
    cr_expect_eq(h.record_count, 2);
    cr_expect_eq(h.max_timestamp, 1300);
}

/* ---------------------------------------------------------------- check */

Test(batch, check_golden)
{
    ulog__batch_hdr h;

    cr_assert_eq(ulog__batch_check(golden, sizeof golden, &h), 0);
    cr_expect_eq(h.record_count, 2);
    cr_expect_eq(h.last_offset_delta, 1);
    cr_expect_eq(h.base_offset, 42);
    for (size_t len = 0; len < sizeof golden; len++)
        cr_assert_eq(ulog__batch_check(golden, len, &h), ULOG_ECORRUPT, "avail %zu", len);
}

/* Every single-bit flip in what the CRC covers, and in the CRC itself. */
Test(batch, check_crc_flips)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    for (size_t i = 17; i < sizeof golden; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, golden, sizeof b);
            b[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(ulog__batch_check(b, sizeof b, &h), ULOG_ECORRUPT,
                         "byte %zu bit %d", i, bit);
        }
}

static int check_with32(size_t off, uint32_t v)
{
    return golden_with32(ulog__batch_check, off, v);
}

/* Damage to the record structure behind a good CRC. check compares
 * recordCount with lastOffsetDelta (ulog writes no gaps); only verify walks
 * the records. */
Test(batch, check_vs_verify)
{
    cr_expect_eq(check_with32(57, 1), ULOG_ECORRUPT, "count 1 of 2");
    cr_expect_eq(check_with32(57, 3), ULOG_ECORRUPT, "count 3 of 2");
    cr_expect_eq(check_with32(23, 0), ULOG_ECORRUPT, "lastOffsetDelta 0");
    cr_expect_eq(check_with32(23, 7), ULOG_ECORRUPT, "lastOffsetDelta 7");
    cr_expect_eq(check_with32(57, 0), ULOG_ECORRUPT, "count 0");
    cr_expect_eq(verify_with32(57, 3), ULOG_ECORRUPT);
    cr_expect_eq(verify_with32(23, 7), ULOG_ECORRUPT);
    /* And those it checks itself. */
    cr_expect_eq(check_with32(57, 0xffffffffu), ULOG_ECORRUPT, "count -1");
    cr_expect_eq(check_with32(23, 0xffffffffu), ULOG_ECORRUPT, "lastOffsetDelta -1");

    /* Record bytes: a key length that runs past the record, a record length
     * past the batch, trailing garbage, offset deltas out of order. */
    static const uint8_t key_too_long[] = { 0x0e, 0x00, 0x00, 0x00, 0x08, 'a', 0x01, 0x00 };
    static const uint8_t rec_long[] = { 0x0e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 };
    static const uint8_t slack[] = { 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00 };
    static const uint8_t dec[] = { 0x0c, 0x00, 0x00, 0x04, 0x01, 0x01, 0x00,
                                   0x0c, 0x00, 0x00, 0x02, 0x01, 0x01, 0x00 };
    static const struct { const uint8_t *r; size_t len; uint32_t count, last; } bad[] = {
        { key_too_long, sizeof key_too_long, 1, 0 },
        { rec_long, sizeof rec_long, 1, 0 },
        { slack, sizeof slack, 1, 0 },
        { dec, sizeof dec, 2, 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t b[256];
        ulog__batch_hdr h;
        size_t len = frame_of(b, bad[i].r, bad[i].len, bad[i].count, bad[i].last);
        cr_expect_eq(ulog__batch_check(b, len, &h), 0, "case %zu", i);
        cr_expect_eq(ulog__batch_verify(b, len, &h), ULOG_ECORRUPT, "case %zu", i);
    }
    /* The golden batch with one record's key length bumped. */
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;
    memcpy(b, golden, sizeof b);
    b[65] = 0x04;                                   /* record 0 key length 2 */
    fix_crc(b, sizeof b);
    cr_expect_eq(ulog__batch_check(b, sizeof b, &h), 0);
    cr_expect_eq(ulog__batch_verify(b, sizeof b, &h), ULOG_ECORRUPT);
    ulog__rec r;
    cr_expect_eq(ulog__rec_decode(b + 61, b + sizeof b, &r), ULOG_ECORRUPT);
}

Test(batch, check_header_rules)
{
    uint8_t b[sizeof golden];
    ulog__batch_hdr h;

    for (int codec = 1; codec <= 7; codec++) {
        int fixed, broken;
        codec_verdicts(ulog__batch_check, codec, &fixed, &broken);
        cr_expect_eq(fixed, ULOG_ENOTSUP, "codec %d", codec);
        cr_expect_eq(broken, ULOG_ECORRUPT);
    }
    memcpy(b, golden, sizeof b);
    b[16] = 1;
    cr_expect_eq(ulog__batch_check(b, sizeof b, &h), ULOG_ECORRUPT, "magic 1");
    expect_base_offset_rules(ulog__batch_check);
    memcpy(b, golden, sizeof b);
    be32(b + 8, 74 + 1);
    cr_expect_eq(ulog__batch_check(b, sizeof b, &h), ULOG_ECORRUPT, "frame past avail");
    cr_expect_eq(ulog__batch_check(NULL, 100, &h), ULOG_ECORRUPT);
}

/* ---------------------------------------------------------------- reference */

/* An encoder written straight from the layout at the top of batch.c, as
 * slowly and plainly as possible: the library's must give the same bytes. */
static size_t ref_varint(uint8_t *p, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
    size_t n = 0;
    do {
        uint8_t byte = (uint8_t)(u & 0x7f);
        u >>= 7;
        p[n++] = (uint8_t)(byte | (u ? 0x80 : 0));
    } while (u);
    return n;
}

static size_t ref_bytes(uint8_t *p, const void *ptr, size_t len)
{
    if (!ptr)
        return ref_varint(p, -1);
    size_t n = ref_varint(p, (int64_t)len);
    memcpy(p + n, ptr, len);
    return n + len;
}

static void ref_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static size_t ref_encode(uint8_t *out, const ulog_record *recs, const uint32_t *idx,
                         size_t n, int64_t now, bool lat)
{
    static uint8_t body[1 << 16];
    size_t pos = 61;
    int64_t base = 0, max = 0;

    for (size_t i = 0; i < n; i++) {
        const ulog_record *r = &recs[idx ? idx[i] : i];
        int64_t ts = r->timestamp == ULOG_TIMESTAMP_NOW ? now : r->timestamp;
        if (i == 0)
            base = max = ts;
        if (ts > max)
            max = ts;
        size_t bl = 0;
        body[bl++] = 0;
        bl += ref_varint(body + bl, (int64_t)((uint64_t)ts - (uint64_t)base));
        bl += ref_varint(body + bl, (int64_t)i);
        bl += ref_bytes(body + bl, r->key, r->key_len);
        bl += ref_bytes(body + bl, r->value, r->value_len);
        bl += ref_varint(body + bl, (int64_t)r->header_count);
        for (size_t j = 0; j < r->header_count; j++) {
            const ulog_header *h = &r->headers[j];
            bl += ref_bytes(body + bl, h->key ? h->key : "", h->key ? h->key_len : 0);
            bl += ref_bytes(body + bl, h->value, h->value_len);
        }
        cr_assert_lt(bl, sizeof body);
        cr_assert_lt(pos + 5 + bl, (size_t)1 << 20);
        pos += ref_varint(out + pos, (int64_t)bl);
        memcpy(out + pos, body, bl);
        pos += bl;
    }
    ref_be(out + 0, 0, 8);
    ref_be(out + 8, pos - 12, 4);
    ref_be(out + 12, UINT32_MAX, 4);
    out[16] = 2;
    ref_be(out + 21, lat ? 0x08 : 0, 2);
    ref_be(out + 23, n - 1, 4);
    ref_be(out + 27, (uint64_t)base, 8);
    ref_be(out + 35, (uint64_t)(lat ? now : max), 8);
    ref_be(out + 43, UINT64_MAX, 8);
    ref_be(out + 51, UINT16_MAX, 2);
    ref_be(out + 53, UINT32_MAX, 4);
    ref_be(out + 57, n, 4);
    ref_be(out + 17, ulog__crc32c_sw(0, out + 21, pos - 21), 4);
    return pos;
}

/* Encodes recs both ways and compares, then decodes. */
static void same_as_ref(const ulog_record *recs, const uint32_t *idx, size_t n,
                        int64_t now, bool lat)
{
    static uint8_t want[1 << 20], got[1 << 20];
    ulog__batch_src src = { recs, idx, n };
    size_t wl = ref_encode(want, recs, idx, n, now, lat);
    size_t gl = ulog__batch_size(&src, now);
    size_t cap = ulog__batch_bound(&src);
    ulog__batch_hdr h;

    cr_assert_eq(gl, wl, "size %zu, reference %zu", gl, wl);
    /* Appends encode into room for the bound, and learn the size after. */
    cr_assert(cap >= wl && cap <= sizeof got, "bound %zu, size %zu", cap, wl);
    memset(got, 0xa5, cap);
    cr_assert_eq(ulog__batch_encode(got, cap, &src, now, lat, NULL), wl);
    for (size_t i = 0; i < wl; i++)
        cr_assert_eq(got[i], want[i], "byte %zu of %zu: 0x%02x, want 0x%02x", i, wl,
                     got[i], want[i]);
    cr_assert_eq(ulog__batch_verify(got, gl, &h), 0);
    lazy_decode(got, gl, 0);
}

/* Record lengths around the points where the length varint grows (bodies of
 * 63/64 and 8191/8192 bytes), which the encoder computes from the key, value
 * and header bytes, in every shape of record. */
Test(batch, reference_length_boundaries)
{
    static uint8_t val[20000];
    static const ulog_header hs[] = {
        { "k1", 2, "v1", 2 }, { NULL, 9, NULL, 4 }, { "", 0, "x", 1 },
    };
    static const size_t around[] = { 64, 8192 };

    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)(i * 31);
    for (int shape = 0; shape < 6; shape++)
        for (size_t a = 0; a < 2; a++)
            for (size_t vl = around[a] - 50; vl <= around[a] + 10; vl++) {
                ulog_record r[3];
                memset(r, 0, sizeof r);
                for (int k = 0; k < 3; k++) {
                    r[k].value = val;
                    r[k].value_len = vl;
                    r[k].timestamp = 1000 + k * (shape & 1 ? 100000 : 1);
                    if (shape >= 2) {
                        r[k].key = val + 7;
                        r[k].key_len = (size_t)(shape * 3);
                    } else {
                        r[k].key_len = 12345;   /* ignored: null key */
                    }
                    if (shape >= 4) {
                        r[k].headers = hs;
                        r[k].header_count = (size_t)(shape - 3);
                    }
                }
                same_as_ref(r, NULL, 3, 0, false);
            }
}

/* Random batches: null and empty keys and values, garbage lengths behind
 * NULL pointers, headers, ULOG_TIMESTAMP_NOW and extreme timestamps, index
 * selections, batches long enough for 2-byte offset deltas. */
Test(batch, reference_random)
{
    static uint8_t bytes[70000];
    static ulog_record recs[300];
    static ulog_header hs[300][4];
    static uint32_t idx[300];
    static const int64_t tss[] = { 0, 1, -1, 63, 64, 8191, 8192, 1700000000000,
                                   INT64_MAX, INT64_MIN + 1, ULOG_TIMESTAMP_NOW };

    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)fz();
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = iter % 50 == 0 ? 60 + fz() % 200 : 1 + fz() % 8;
        size_t maxlen = n > 8 ? 20 : (fz() & 7) == 0 ? 9000 : (fz() & 1) ? 200 : 20;

        memset(recs, 0, sizeof recs);
        for (size_t i = 0; i < n; i++) {
            ulog_record *r = &recs[i];
            r->key = (fz() % 4) ? bytes + fz() % 1000 : NULL;
            r->key_len = fz() % (maxlen + 1);
            r->value = (fz() % 8) ? bytes + fz() % 1000 : NULL;
            r->value_len = fz() % (maxlen + 1);
            r->timestamp = (fz() & 1) ? tss[fz() % (sizeof tss / sizeof tss[0])]
                                      : 1700000000000 + (int64_t)(fz() % 100000);
            r->header_count = (fz() & 3) ? 0 : fz() % 5;
            r->headers = hs[i];
            for (size_t j = 0; j < r->header_count; j++)
                hs[i][j] = (ulog_header){ (fz() % 5) ? (const char *)bytes + fz() % 100 : NULL,
                                          fz() % 70, (fz() % 3) ? bytes : NULL,
                                          fz() % (maxlen + 1) };
            idx[i] = (uint32_t)(n - 1 - i);
        }
        same_as_ref(recs, (fz() & 1) ? idx : NULL, n, 1700000000000 + iter, (fz() & 3) == 0);
    }
}

/* Every truncation of records whose varints take 2 and more bytes, in a
 * buffer of exactly the truncated size (asan: no read past it). */
Test(batch, decode_truncated_exact)
{
    static uint8_t val[9000];
    static const ulog_header hs[] = { { "content-type", 12, "application/json", 16 },
                                      { "h", 1, NULL, 0 } };
    ulog_record r[2];
    static uint8_t buf[20000];
    ulog__batch_hdr h;

    memset(r, 0, sizeof r);
    r[0] = (ulog_record){ .key = val, .key_len = 100, .value = val, .value_len = 8500,
                          .headers = hs, .header_count = 2, .timestamp = 5 };
    r[1] = (ulog_record){ .key = NULL, .value = val, .value_len = 100,
                          .headers = hs, .header_count = 1, .timestamp = 1000000 };
    size_t sz = encode(buf, sizeof buf, r, 2, 0, false, NULL);
    cr_assert_eq(ulog__batch_verify(buf, sz, &h), 0);
    ulog__rec rec;
    cr_assert_eq(ulog__rec_decode(buf + 61, buf + sz, &rec), 0);
    const uint8_t *second = rec.end;
    size_t lens[2] = { (size_t)(second - (buf + 61)), (size_t)(buf + sz - second) };
    const uint8_t *starts[2] = { buf + 61, second };

    for (int k = 0; k < 2; k++)
        for (size_t cut = 0; cut <= lens[k]; cut++) {
            uint8_t *e = malloc(cut ? cut : 1);
            cr_assert_not_null(e);
            memcpy(e, starts[k], cut);
            int rc = ulog__rec_decode(e, e + cut, &rec);
            if (cut == lens[k]) {
                cr_assert_eq(rc, 0);
                cr_assert_eq(rec.end, e + cut);
                cr_assert_eq(rec.value_len, k ? 100u : 8500u);
            } else {
                cr_assert_eq(rc, ULOG_ECORRUPT, "record %d cut at %zu of %zu", k, cut, lens[k]);
            }
            free(e);
        }
}

/* ---------------------------------------------------------------- decoder vs reference
 *
 * ulog__rec_decode() has a fast path for the usual shapes of record and a
 * general one for the rest. Both must agree with a plain reading of the
 * format: records built field by field, with varints of every width
 * (non-minimal ones included), lengths that lie by a little, negative and
 * null lengths, then cut short, padded or mutated, each in a buffer of its
 * exact size (asan: no read past it). */

static uint64_t dx_state = 0x9E3779B97F4A7C15ull;
static uint64_t dx_rand(void)
{
    dx_state ^= dx_state << 13;
    dx_state ^= dx_state >> 7;
    dx_state ^= dx_state << 17;
    return dx_state;
}

/* The reference varint reader: at most max bytes, all before end; the tenth
 * byte of a varlong holds bit 63 only. Returns bytes used, 0 on error. */
static size_t dx_get(const uint8_t *p, const uint8_t *end, size_t max, uint64_t *out)
{
    uint64_t u = 0;

    for (size_t i = 0; i < max && i < (size_t)(end - p); i++) {
        u |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (i == 9 && p[i] > 1)
                return 0;
            *out = u;
            return i + 1;
        }
    }
    return 0;
}

static int64_t dx_unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* A 32-bit varint: <= 5 bytes, zigzagged value within uint32. */
static bool dx_varint(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    size_t n = dx_get(*p, end, 5, &u);
    if (!n || u > UINT32_MAX)
        return false;
    *v = dx_unzigzag(u);
    *p += n;
    return true;
}

static bool dx_field(const uint8_t **p, const uint8_t *end, const uint8_t **ptr, size_t *len)
{
    int64_t l;
    if (!dx_varint(p, end, &l) || l < -1 || l > end - *p)
        return false;
    *ptr = l < 0 ? NULL : *p;
    *len = l < 0 ? 0 : (size_t)l;
    *p += l < 0 ? 0 : l;
    return true;
}

static int dx_decode(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    int64_t v;
    uint64_t u;
    size_t n;

    if (!dx_varint(&p, end, &v) || v < 0 || v > end - p)
        return ULOG_ECORRUPT;
    const uint8_t *rend = p + v;
    if (p == rend)
        return ULOG_ECORRUPT;
    p++;                                            /* attributes */
    if (!(n = dx_get(p, rend, 10, &u)))
        return ULOG_ECORRUPT;
    p += n;
    r->timestamp_delta = dx_unzigzag(u);
    if (!dx_varint(&p, rend, &r->offset_delta) ||
        !dx_field(&p, rend, &r->key, &r->key_len) ||
        !dx_field(&p, rend, &r->value, &r->value_len) ||
        !dx_varint(&p, rend, &v) || v < 0)
        return ULOG_ECORRUPT;
    r->header_count = (size_t)v;
    r->headers = p;
    for (int64_t i = 0; i < v; i++) {
        const uint8_t *k, *val;
        size_t kl, vl;
        if (!dx_field(&p, rend, &k, &kl) || !k || !dx_field(&p, rend, &val, &vl))
            return ULOG_ECORRUPT;
    }
    if (p != rend)
        return ULOG_ECORRUPT;
    r->end = rend;
    return 0;
}

/* Writes zigzag(v) in w bytes (w >= its minimal width; more is a
 * non-minimal encoding that readers accept up to the field's maximum). */
static size_t dx_put(uint8_t *p, int64_t v, size_t w)
{
    uint64_t u = (uint64_t)v << 1 ^ (0 - ((uint64_t)v >> 63));
    size_t n = 0;

    do {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    } while (u);
    while (n < w)
        p[n++] = 0x80;
    p[n - 1] &= 0x7f;
    return n;
}

/* Usually the minimal width, sometimes one to four bytes more. */
static size_t dx_width(void)
{
    uint64_t x = dx_rand() % 16;
    return x < 12 ? 0 : (size_t)(x - 10);
}

/* A length that is usually right and sometimes off by a little, or -1. */
static int64_t dx_lie(int64_t len)
{
    switch (dx_rand() % 24) {
    case 0: return len + 1;
    case 1: return len - 1;
    case 2: return len + 2 + (int64_t)(dx_rand() % 8);
    case 3: return -2 - (int64_t)(dx_rand() % 3);
    default: return len;
    }
}

static size_t dx_bytes(uint8_t *p, bool null, size_t len)
{
    size_t n = dx_put(p, null ? -1 : dx_lie((int64_t)len), dx_width());
    if (!null)
        for (size_t i = 0; i < len; i++)
            p[n++] = (uint8_t)dx_rand();
    return n;
}

static size_t dx_len(void)
{
    switch (dx_rand() % 8) {
    case 0: return 0;
    case 1: return 60 + dx_rand() % 10;             /* around the 2-byte length */
    case 2: return 100 + dx_rand() % 200;
    case 3: return dx_rand() % 2 ? 8190 + dx_rand() % 4 : 1000;
    default: return dx_rand() % 20;
    }
}

/* One record into out; returns its size. */
static size_t dx_record(uint8_t *out)
{
    static uint8_t body[1 << 15];
    static const int64_t deltas[] = { 0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8193,
                                      INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN };
    size_t n = 0;

    body[n++] = (uint8_t)(dx_rand() % 8 ? 0 : dx_rand());
    n += dx_put(body + n, dx_rand() % 2 ? deltas[dx_rand() % 14] : (int64_t)(dx_rand() % 200),
                dx_width());
    n += dx_put(body + n, dx_rand() % 4 ? (int64_t)(dx_rand() % 300) : deltas[dx_rand() % 14],
                dx_width());
    n += dx_bytes(body + n, dx_rand() % 3 == 0, dx_len());
    n += dx_bytes(body + n, dx_rand() % 5 == 0, dx_len());
    int64_t hc = dx_rand() % 2 ? 0 : (int64_t)(dx_rand() % 4);
    n += dx_put(body + n, dx_rand() % 32 ? hc : dx_lie(hc) + (dx_rand() % 2 ? 64 : 0), dx_width());
    for (int64_t i = 0; i < hc; i++) {
        n += dx_bytes(body + n, dx_rand() % 16 == 0, dx_rand() % 8 ? dx_rand() % 12 : 70);
        n += dx_bytes(body + n, dx_rand() % 4 == 0, dx_rand() % 4 ? dx_rand() % 20 : 100);
    }
    size_t len = dx_put(out, dx_rand() % 16 ? (int64_t)n : dx_lie((int64_t)n), dx_width());
    memcpy(out + len, body, n);
    return len + n;
}

static void dx_compare(const uint8_t *rec, size_t len, uint64_t iter)
{
    uint8_t *e = malloc(len ? len : 1);
    ulog__rec got, want;

    cr_assert_not_null(e);
    memcpy(e, rec, len);
    memset(&got, 0xa5, sizeof got);
    memset(&want, 0x5a, sizeof want);
    int rc = ulog__rec_decode(e, e + len, &got);
    int wrc = dx_decode(e, e + len, &want);
    cr_assert_eq(rc, wrc, "iteration %llu: rc %d, reference %d", (unsigned long long)iter, rc, wrc);
    if (rc == 0) {
        cr_assert_eq(got.timestamp_delta, want.timestamp_delta, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.offset_delta, want.offset_delta, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.key, want.key, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.key_len, want.key_len, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.value, want.value, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.value_len, want.value_len, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.header_count, want.header_count, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.headers, want.headers, "iteration %llu", (unsigned long long)iter);
        cr_assert_eq(got.end, want.end, "iteration %llu", (unsigned long long)iter);
        for (size_t j = 0; j < got.header_count; j++) {
            ulog_header hd;
            cr_assert_eq(ulog__rec_header(&got, j, &hd), 0);
        }
    }
    free(e);
}

Test(batch, rec_decode_vs_reference)
{
    static uint8_t rec[1 << 16];
    int ok = 0, iters = 60000;

    for (int iter = 0; iter < iters; iter++) {
        size_t len = dx_record(rec);
        /* Trailing bytes (the next record), a cut, or a few mutations. */
        switch (dx_rand() % 6) {
        case 0:
            for (size_t k = dx_rand() % 9; k > 0; k--)
                rec[len++] = (uint8_t)dx_rand();
            break;
        case 1:
            len = dx_rand() % (len + 1);
            break;
        case 2:
            for (int m = 1 + (int)(dx_rand() % 3); m > 0; m--)
                rec[dx_rand() % len] = (uint8_t)(dx_rand() % 2 ? dx_rand() : dx_rand() % 8);
            break;
        default:
            break;
        }
        uint8_t *e = malloc(len ? len : 1);
        ulog__rec r;
        cr_assert_not_null(e);
        memcpy(e, rec, len);
        ok += dx_decode(e, e + len, &r) == 0;
        free(e);
        dx_compare(rec, len, (uint64_t)iter);
    }
    cr_log_info("%d of %d records decoded", ok, iters);
    cr_expect_gt(ok, iters / 3);
}

/* Small records, every byte value in each position of a few templates, in
 * buffers of every size around them: the fast path's first reads (length,
 * attributes, deltas, key length) and the shortest records it takes. */
Test(batch, rec_decode_small_exhaustive)
{
    static const uint8_t tmpl[][12] = {
        { 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 },                   /* 6-byte body */
        { 0x0c, 0x00, 0x00, 0x80, 0x01, 0x01, 0x00 },                   /* 2-byte delta, short */
        { 0x0a, 0x00, 0x00, 0x00, 0x01, 0x81 },                         /* 5-byte body */
        { 0x0e, 0x00, 0x00, 0x80, 0x01, 0x01, 0x01, 0x00 },             /* 2-byte offset delta */
        { 0x0e, 0x00, 0x80, 0x01, 0x00, 0x01, 0x01, 0x00 },             /* 2-byte ts delta */
        { 0x0e, 0x00, 0x00, 0x00, 0x02, 'k', 0x01, 0x00 },              /* 1-byte key */
        { 0x0e, 0x00, 0x00, 0x00, 0x01, 0x02, 'v', 0x00 },              /* 1-byte value */
        { 0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 'v', 0x02, 0x00 },        /* header too few bytes */
        { 0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x01 },       /* null header value */
        { 0x14, 0x00, 0x81, 0x00, 0x80, 0x00, 0x01, 0x01, 0x00, 0x00 }, /* non-minimal */
        { 0x8c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00 },             /* non-minimal length */
    };
    static const size_t lens[] = { 7, 7, 6, 8, 8, 8, 8, 9, 9, 10, 8 };
    uint8_t b[16];
    uint64_t iter = 0;

    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
        for (size_t i = 0; i < lens[t]; i++)
            for (int v = 0; v < 256; v++)
                for (size_t size = 1; size <= lens[t] + 2; size++) {
                    memset(b, 0, sizeof b);
                    memcpy(b, tmpl[t], lens[t]);
                    b[i] = (uint8_t)v;
                    dx_compare(b, size, iter++);
                }
}
