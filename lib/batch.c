/*
 * batch.c -- Kafka RecordBatch v2 ("magic 2"): encoder, decoder, verifier.
 *
 * A segment file is a plain concatenation of these frames, byte for byte as
 * Kafka writes them, so it can be handed to Kafka tooling unchanged.
 *
 * ---------------------------------------------------------------- the frame
 *
 * Fixed-width integers are big-endian, two's complement. Offsets are from the
 * start of the frame.
 *
 *   off size field                 value ulog writes
 *    0   8  baseOffset  int64      offset of the first record; patched last
 *    8   4  batchLength int32      bytes that follow this field (frame - 12)
 *   12   4  partitionLeaderEpoch   the partition's failure epoch when the
 *                                  batch was written (patched last, like
 *                                  baseOffset); Kafka's leader epoch, with
 *                                  the same job: a batch written after a
 *                                  truncation carries a higher one
 *   16   1  magic       int8       2
 *   17   4  crc         uint32     CRC-32C of bytes 21 .. end of frame
 *   21   2  attributes  int16      bits 0-2 compression codec (0 = none; the
 *                                  only one ulog reads), bit 3 timestamp type
 *                                  (1 = LogAppendTime), bit 4 transactional,
 *                                  bit 5 control batch, bit 6 delete horizon
 *                                  set; ulog writes 0 or 0x08
 *   23   4  lastOffsetDelta int32  offsetDelta of the last record (count - 1);
 *                                  after compaction the last offset of the
 *                                  batch's range, whose records may be fewer
 *   27   8  baseTimestamp int64    timestamp of the first record
 *   35   8  maxTimestamp  int64    greatest record timestamp; with
 *                                  LogAppendTime the append time, which
 *                                  then is every record's timestamp
 *   43   8  producerId    int64    -1 (no idempotent producer)
 *   51   2  producerEpoch int16    -1
 *   53   4  baseSequence  int32    -1
 *   57   4  recordCount   int32    number of records that follow
 *   61      records, back to back, to the end of the frame
 *
 * baseOffset, batchLength, partitionLeaderEpoch and magic sit outside the
 * CRC: a writer can checksum the batch before it knows the offset, and a
 * reader must check magic before it knows where the CRC is.
 *
 * ---------------------------------------------------------------- a record
 *
 *   length          varint   bytes of the record after this field
 *   attributes      int8     0 (unused in v2)
 *   timestampDelta  varlong  timestamp - baseTimestamp
 *   offsetDelta     varint   offset - baseOffset
 *   keyLength       varint   -1: null key (no bytes follow)
 *   key             bytes
 *   valueLength     varint   -1: null value (no bytes follow)
 *   value           bytes
 *   headerCount     varint
 *   headers, each:
 *     keyLength     varint   >= 0: a header key is never null
 *     key           bytes
 *     valueLength   varint   -1: null value
 *     value         bytes
 *
 * Varints are Protocol Buffers' zigzag varints: n is mapped to
 * (n << 1) ^ (n >> 63), so small magnitudes of either sign are small, then
 * written 7 bits at a time, least significant group first, with the high bit
 * of each byte set when another byte follows. A varint carries a 32-bit value
 * (at most 5 bytes), a varlong a 64-bit one (at most 10). Any length other
 * than -1 that is negative is corrupt, as is one that runs past the record.
 */
#include "internal.h"

#include <assert.h>
#include <string.h>

enum {
    OFF_BASE_OFFSET = 0,  OFF_LENGTH = 8,      OFF_EPOCH = 12,
    OFF_MAGIC = 16,       OFF_CRC = 17,        OFF_ATTR = 21,
    OFF_LAST_DELTA = 23,  OFF_BASE_TS = 27,    OFF_MAX_TS = 35,
    OFF_PRODUCER_ID = 43, OFF_PRODUCER_EPOCH = 51,
    OFF_BASE_SEQ = 53,    OFF_COUNT = 57
};

#define MIN_BATCH_LENGTH (ULOG__BATCH_HEADER_SIZE - ULOG__BATCH_LOG_OVERHEAD)
#define MAX_BATCH_LENGTH (INT32_MAX - ULOG__BATCH_LOG_OVERHEAD)

/* ---------------------------------------------------------------- bytes */

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8  | (uint32_t)p[3];
}

static inline uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* ---------------------------------------------------------------- varints
 *
 * The hot paths use the static inline helpers below; the exported
 * ulog__varint_* wrappers are for tests. Encoding works on the zigzagged
 * value u; decoding returns the position after the varint, NULL on error. */

static inline uint64_t zigzag(int64_t v)
{
    return (uint64_t)v << 1 ^ (0 - ((uint64_t)v >> 63));
}

static inline int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1 ^ (0 - (u & 1)));
}

/* ceil(bits / 7) for bits = significant bits of u (at least 1), as
 * (9 * bits + 64) / 64, exact for 1 <= bits <= 64. With top = bits - 1
 * (one bsr instruction): (9 * top + 73) / 64. */
static inline size_t uvarint_len(uint64_t u)
{
    unsigned top = 63u ^ (unsigned)__builtin_clzll(u | 1);
    return (9u * top + 73u) >> 6;
}

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t u)
{
    /* Most varints of a batch (deltas, lengths of small records) take one
     * or two bytes: written without the loop. */
    if (__builtin_expect(u < 0x80, 1)) {
        *p = (uint8_t)u;
        return p + 1;
    }
    if (u < 0x4000) {
        p[0] = (uint8_t)(u | 0x80);
        p[1] = (uint8_t)(u >> 7);
        return p + 2;
    }
    while (u >= 0x80) {
        *p++ = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    *p++ = (uint8_t)u;
    return p;
}

/* Up to max bytes (5 for a 32-bit varint, 10 for a varlong) in [p, end).
 * The tenth byte of a varlong holds bit 63 only; more would not fit. */
__attribute__((noinline))
static const uint8_t *get_uvarint_slow(const uint8_t *p, const uint8_t *end,
                                       uint64_t *out, size_t max)
{
    size_t avail = p && end > p ? (size_t)(end - p) : 0;
    uint64_t u = 0;

    if (avail > max)
        avail = max;
    for (size_t i = 0; i < avail; i++) {
        uint8_t b = p[i];
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i == 9 && b > 1)
                return NULL;
            *out = u;
            return p + i + 1;
        }
    }
    return NULL;
}

/* Fast paths for the 1- and 2-byte varints that most lengths and deltas
 * are; everything else, and anything near the end, goes the slow way. */
static inline const uint8_t *get_uvarint(const uint8_t *p, const uint8_t *end,
                                         uint64_t *u, size_t max)
{
    if (__builtin_expect(p < end, 1)) {
        uint8_t b0 = p[0];
        if (__builtin_expect(b0 < 0x80, 1)) {
            *u = b0;
            return p + 1;
        }
        if (end - p >= 2 && p[1] < 0x80) {
            *u = (uint64_t)(b0 & 0x7f) | (uint64_t)p[1] << 7;
            return p + 2;
        }
    }
    return get_uvarint_slow(p, end, u, max);
}

/* A varlong: up to 10 bytes, any int64. */
static inline const uint8_t *get_varlong(const uint8_t *p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    if (!(p = get_uvarint(p, end, &u, 10)))
        return NULL;
    *v = unzigzag(u);
    return p;
}

/* A 32-bit varint, as Kafka reads it: at most 5 bytes, value in int32 (the
 * zigzagged value in uint32). */
static inline const uint8_t *get_varint32(const uint8_t *p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    if (!(p = get_uvarint(p, end, &u, 5)) || u > UINT32_MAX)
        return NULL;
    *v = unzigzag(u);
    return p;
}

size_t ulog__varint_len(int64_t v)
{
    return uvarint_len(zigzag(v));
}

size_t ulog__varint_put(uint8_t *p, int64_t v)
{
    return (size_t)(put_uvarint(p, zigzag(v)) - p);
}

size_t ulog__varint_get(const uint8_t *p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    const uint8_t *q = get_uvarint_slow(p, end, &u, 10);

    if (!q)
        return 0;
    *v = unzigzag(u);
    return (size_t)(q - p);
}

/* ---------------------------------------------------------------- encode */

/* Sizes above this make the batch unencodable (batchLength is an int32). */
#define SIZE_LIMIT ((uint64_t)INT32_MAX)

static inline const ulog_record *src_rec(const ulog__batch_src *s, size_t i)
{
    return &s->recs[s->idx ? s->idx[i] : i];
}

static inline int64_t rec_ts(const ulog_record *r, int64_t now_ms)
{
    return r->timestamp == ULOG_TIMESTAMP_NOW ? now_ms : r->timestamp;
}

/* Wrapping subtraction: out-of-range timestamps are the caller's problem,
 * but must not be undefined behaviour here. */
static inline int64_t ts_delta(int64_t ts, int64_t base)
{
    return (int64_t)((uint64_t)ts - (uint64_t)base);
}

/* uvarint_len() for values that are nearly always < 128 (deltas). */
static inline size_t uvarint_len_small(uint64_t u)
{
    return __builtin_expect(u < 0x80, 1) ? 1 : uvarint_len(u);
}

/* Encoded size of a nullable byte string with its length prefix;
 * > SIZE_LIMIT when it cannot be encoded. */
static inline uint64_t field_size(const void *ptr, size_t len)
{
    if (!ptr)
        return 1;                                   /* varint -1 */
    if (len > SIZE_LIMIT)
        return SIZE_LIMIT + 1;
    return uvarint_len((uint64_t)len << 1) + (uint64_t)len;
}

/* A NULL header key is written as the empty key: Kafka has no null one. */
static inline size_t hkey_len(const ulog_header *h)
{
    return h->key ? h->key_len : 0;
}

/* Bytes of the headers of r (count varint included); > SIZE_LIMIT when too
 * big. Every term is <= SIZE_LIMIT + 1, so the sums cannot wrap. */
static uint64_t headers_size(const ulog_record *r)
{
    if (r->header_count > SIZE_LIMIT)
        return SIZE_LIMIT + 1;
    uint64_t n = uvarint_len((uint64_t)r->header_count << 1);
    for (size_t i = 0; i < r->header_count && n <= SIZE_LIMIT; i++) {
        const ulog_header *h = &r->headers[i];
        n += field_size("", hkey_len(h));
        n += field_size(h->value, h->value_len);
    }
    return n;
}

/* Bytes of record r after its length varint; > SIZE_LIMIT when too big.
 * od is the offset delta (< 2^31: the count of a batch). */
static inline uint64_t rec_body_size(const ulog_record *r, int64_t ts_d, size_t od)
{
    uint64_t n = 1 + uvarint_len_small(zigzag(ts_d)) + uvarint_len_small((uint64_t)od << 1);

    n += field_size(r->key, r->key_len);
    n += field_size(r->value, r->value_len);
    n += r->header_count ? headers_size(r) : 1;
    return n;
}

/* The loops below come in two copies, with and without an index, so that
 * neither tests for it per record. */
__attribute__((always_inline))
static inline uint64_t batch_size_loop(const ulog_record *recs, const uint32_t *idx, size_t n,
                                       int64_t now_ms, int64_t base_ts)
{
    uint64_t total = ULOG__BATCH_HEADER_SIZE;

    for (size_t i = 0; i < n; i++) {
        const ulog_record *r = &recs[idx ? idx[i] : i];
        /* Every term of a body is <= SIZE_LIMIT + 1: no sum can wrap, and
         * one too big shows in the total. */
        uint64_t body = rec_body_size(r, ts_delta(rec_ts(r, now_ms), base_ts), i);
        total += uvarint_len(body << 1) + body;
        if (total > SIZE_LIMIT)
            return 0;
    }
    return total;
}

size_t ulog__batch_size(const ulog__batch_src *src, int64_t now_ms)
{
    if (!src || src->n == 0 || src->n > SIZE_LIMIT)
        return 0;

    int64_t base_ts = rec_ts(src_rec(src, 0), now_ms);
    if (src->idx)
        return (size_t)batch_size_loop(src->recs, src->idx, src->n, now_ms, base_ts);
    return (size_t)batch_size_loop(src->recs, NULL, src->n, now_ms, base_ts);
}

/* memcpy() for the short keys and header fields that records are full of:
 * a call to the library's memcpy costs more than the copy itself. Copies
 * exactly n bytes, as overlapping fixed-size moves. */
static inline void copy_bytes(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n > 32) {
        memcpy(d, s, n);
    } else if (n >= 16) {
        uint8_t a[16], b[16];
        memcpy(a, s, 16);
        memcpy(b, s + n - 16, 16);
        memcpy(d, a, 16);
        memcpy(d + n - 16, b, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

static inline uint8_t *put_field(uint8_t *p, const void *ptr, size_t len)
{
    if (!ptr) {
        *p = 0x01;                                  /* varint -1 */
        return p + 1;
    }
    p = put_uvarint(p, (uint64_t)len << 1);
    copy_bytes(p, ptr, len);
    return p + len;
}

/* Bytes a record can take beyond its key, value and header bytes: length
 * (5), attributes (1), timestampDelta (10), offsetDelta (5), key and value
 * lengths (5 each), header count (5); and each header's two lengths. */
#define REC_OVERHEAD_MAX    36u
#define HEADER_OVERHEAD_MAX 10u

__attribute__((always_inline))
static inline uint64_t batch_bound_loop(const ulog_record *recs, const uint32_t *idx, size_t n)
{
    uint64_t total = ULOG__BATCH_HEADER_SIZE + (uint64_t)n * REC_OVERHEAD_MAX;

    for (size_t i = 0; i < n && total <= SIZE_LIMIT; i++) {
        const ulog_record *r = &recs[idx ? idx[i] : i];
        if ((r->key_len | r->value_len) > SIZE_LIMIT)
            return SIZE_LIMIT + 1;
        total += (uint64_t)r->key_len + r->value_len;
        if (__builtin_expect(r->header_count != 0, 0)) {
            if (r->header_count > SIZE_LIMIT)
                return SIZE_LIMIT + 1;
            total += (uint64_t)r->header_count * HEADER_OVERHEAD_MAX;
            for (size_t j = 0; j < r->header_count && total <= SIZE_LIMIT; j++) {
                const ulog_header *h = &r->headers[j];
                if ((hkey_len(h) | h->value_len) > SIZE_LIMIT)
                    return SIZE_LIMIT + 1;
                total += (uint64_t)hkey_len(h) + h->value_len;
            }
        }
    }
    return total;
}

size_t ulog__batch_bound(const ulog__batch_src *src)
{
    if (!src || src->n == 0 || src->n > SIZE_LIMIT)
        return 0;
    uint64_t b = src->idx ? batch_bound_loop(src->recs, src->idx, src->n)
                          : batch_bound_loop(src->recs, NULL, src->n);
    return b > SIZE_LIMIT ? SIZE_LIMIT + 1 : (size_t)b;
}

/* A record without headers, the common kind: its body is sized exactly
 * from the two varints and two fields, and written after its length. */
static inline uint8_t *put_plain_record(uint8_t *p, const ulog_record *r, uint64_t zts, size_t i)
{
    uint64_t od = (uint64_t)i << 1;
    uint64_t body = 2 + uvarint_len_small(zts) + uvarint_len_small(od) +
                    field_size(r->key, r->key_len) + field_size(r->value, r->value_len);

    p = put_uvarint(p, body << 1);
    *p++ = 0;                                       /* attributes */
    p = put_uvarint(p, zts);
    p = put_uvarint(p, od);
    p = put_field(p, r->key, r->key_len);
    p = put_field(p, r->value, r->value_len);
    *p++ = 0;                                       /* no headers */
    return p;
}

/* With log_append_time the records keep their deltas (so the size does not
 * depend on the flag) and maxTimestamp carries the append time: Kafka's
 * rule is that every record of a LogAppendTime batch has maxTimestamp as its
 * timestamp, and a Kafka broker stamps batches the same way. */
__attribute__((always_inline))
static inline uint8_t *batch_encode_loop(uint8_t *p, const ulog_record *recs,
                                         const uint32_t *idx, size_t n, int64_t now_ms,
                                         int64_t base_ts, int64_t *max)
{
    for (size_t i = 0; i < n; i++) {
        const ulog_record *r = &recs[idx ? idx[i] : i];
        int64_t ts = rec_ts(r, now_ms);
        int64_t ts_d = ts_delta(ts, base_ts);

        if (ts > *max)
            *max = ts;
        if (__builtin_expect(r->header_count == 0, 1)) {
            p = put_plain_record(p, r, zigzag(ts_d), i);
            continue;
        }
        p = put_uvarint(p, rec_body_size(r, ts_d, i) << 1);
        *p++ = 0;                                   /* attributes */
        p = put_uvarint(p, zigzag(ts_d));
        p = put_uvarint(p, (uint64_t)i << 1);
        p = put_field(p, r->key, r->key_len);
        p = put_field(p, r->value, r->value_len);
        p = put_uvarint(p, (uint64_t)r->header_count << 1);
        for (size_t j = 0; j < r->header_count; j++) {
            const ulog_header *h = &r->headers[j];
            p = put_field(p, h->key ? h->key : "", hkey_len(h));
            p = put_field(p, h->value, h->value_len);
        }
    }
    return p;
}

size_t ulog__batch_encode(uint8_t *buf, size_t cap, const ulog__batch_src *src,
                          int64_t now_ms, bool log_append_time, int64_t *max_ts)
{
    if (!src || src->n == 0 || cap < ULOG__BATCH_HEADER_SIZE)
        return 0;

    int64_t base_ts = rec_ts(src_rec(src, 0), now_ms);
    int64_t max = base_ts;
    uint8_t *p = buf + ULOG__BATCH_HEADER_SIZE;

    if (src->idx)
        p = batch_encode_loop(p, src->recs, src->idx, src->n, now_ms, base_ts, &max);
    else
        p = batch_encode_loop(p, src->recs, NULL, src->n, now_ms, base_ts, &max);
    size_t size = (size_t)(p - buf);
    assert(size <= cap);
    if (log_append_time)
        max = now_ms;

    put64(buf + OFF_BASE_OFFSET, 0);
    put32(buf + OFF_LENGTH, (uint32_t)(size - ULOG__BATCH_LOG_OVERHEAD));
    put32(buf + OFF_EPOCH, UINT32_MAX);             /* -1 */
    buf[OFF_MAGIC] = ULOG__BATCH_MAGIC;
    put16(buf + OFF_ATTR, log_append_time ? ULOG__ATTR_LOG_APPEND_TIME : 0);
    put32(buf + OFF_LAST_DELTA, (uint32_t)(src->n - 1));
    put64(buf + OFF_BASE_TS, (uint64_t)base_ts);
    put64(buf + OFF_MAX_TS, (uint64_t)max);
    put64(buf + OFF_PRODUCER_ID, UINT64_MAX);       /* -1 */
    put16(buf + OFF_PRODUCER_EPOCH, UINT16_MAX);    /* -1 */
    put32(buf + OFF_BASE_SEQ, UINT32_MAX);          /* -1 */
    put32(buf + OFF_COUNT, (uint32_t)src->n);
    put32(buf + OFF_CRC, ulog__crc32c(0, buf + OFF_ATTR, size - OFF_ATTR));
    if (max_ts)
        *max_ts = max;
    return size;
}

void ulog__batch_seal(uint8_t *buf, size_t size, const ulog__batch_hdr *h)
{
    put64(buf + OFF_BASE_OFFSET, (uint64_t)h->base_offset);
    put32(buf + OFF_LENGTH, (uint32_t)(size - ULOG__BATCH_LOG_OVERHEAD));
    put32(buf + OFF_EPOCH, (uint32_t)h->leader_epoch);
    buf[OFF_MAGIC] = ULOG__BATCH_MAGIC;
    put16(buf + OFF_ATTR, (uint16_t)h->attributes);
    put32(buf + OFF_LAST_DELTA, (uint32_t)h->last_offset_delta);
    put64(buf + OFF_BASE_TS, (uint64_t)h->base_timestamp);
    put64(buf + OFF_MAX_TS, (uint64_t)h->max_timestamp);
    put64(buf + OFF_PRODUCER_ID, (uint64_t)h->producer_id);
    put16(buf + OFF_PRODUCER_EPOCH, (uint16_t)h->producer_epoch);
    put32(buf + OFF_BASE_SEQ, (uint32_t)h->base_sequence);
    put32(buf + OFF_COUNT, (uint32_t)h->record_count);
    put32(buf + OFF_CRC, ulog__crc32c(0, buf + OFF_ATTR, size - OFF_ATTR));
}

void ulog__batch_set_base_offset(uint8_t *buf, int64_t base_offset)
{
    put64(buf + OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void ulog__batch_set_leader_epoch(uint8_t *buf, uint32_t epoch)
{
    put32(buf + OFF_EPOCH, epoch);
}

/* ---------------------------------------------------------------- decode */

int ulog__batch_frame_size(const uint8_t *buf, size_t avail, size_t *frame)
{
    if (!buf || avail < ULOG__BATCH_LOG_OVERHEAD)
        return ULOG_ECORRUPT;
    int32_t len = (int32_t)get32(buf + OFF_LENGTH);
    if (len < MIN_BATCH_LENGTH || len > MAX_BATCH_LENGTH)
        return ULOG_ECORRUPT;
    *frame = ULOG__BATCH_LOG_OVERHEAD + (size_t)len;
    return 0;
}

/* Also rejects a batchLength out of range and a magic other than 2: with
 * another magic the fields are not where this reads them. */
int ulog__batch_parse_header(const uint8_t *buf, size_t avail, ulog__batch_hdr *h)
{
    if (!buf || avail < ULOG__BATCH_HEADER_SIZE)
        return ULOG_ECORRUPT;
    h->base_offset       = (int64_t)get64(buf + OFF_BASE_OFFSET);
    h->batch_length      = (int32_t)get32(buf + OFF_LENGTH);
    h->leader_epoch      = (int32_t)get32(buf + OFF_EPOCH);
    h->magic             = (int8_t)buf[OFF_MAGIC];
    h->crc               = get32(buf + OFF_CRC);
    h->attributes        = (int16_t)get16(buf + OFF_ATTR);
    h->last_offset_delta = (int32_t)get32(buf + OFF_LAST_DELTA);
    h->base_timestamp    = (int64_t)get64(buf + OFF_BASE_TS);
    h->max_timestamp     = (int64_t)get64(buf + OFF_MAX_TS);
    h->producer_id       = (int64_t)get64(buf + OFF_PRODUCER_ID);
    h->producer_epoch    = (int16_t)get16(buf + OFF_PRODUCER_EPOCH);
    h->base_sequence     = (int32_t)get32(buf + OFF_BASE_SEQ);
    h->record_count      = (int32_t)get32(buf + OFF_COUNT);
    if (h->batch_length < MIN_BATCH_LENGTH || h->batch_length > MAX_BATCH_LENGTH ||
        h->magic != ULOG__BATCH_MAGIC)
        return ULOG_ECORRUPT;
    return 0;
}

/* A nullable byte string at p, bounded by end. Length -1 gives NULL; an
 * empty string gives a non-NULL pointer. Returns the position after it, NULL
 * when it is corrupt. */
static inline const uint8_t *get_field(const uint8_t *p, const uint8_t *end,
                                       const uint8_t **ptr, size_t *len)
{
    int64_t l;

    if (!(p = get_varint32(p, end, &l)))
        return NULL;
    if (l < 0) {
        if (l != -1)
            return NULL;
        *ptr = NULL;
        *len = 0;
        return p;
    }
    if ((uint64_t)l > (size_t)(end - p))
        return NULL;
    *ptr = p;
    *len = (size_t)l;
    return p + l;
}

/* The headers of a record: count pairs, a key never null. */
static const uint8_t *skip_headers(const uint8_t *p, const uint8_t *end, int64_t count)
{
    /* Each takes >= 2 bytes, so a huge count fails fast. */
    for (int64_t i = 0; i < count && p; i++) {
        const uint8_t *k, *val;
        size_t kl, vl;
        if (!(p = get_field(p, end, &k, &kl)) || !k)
            return NULL;
        p = get_field(p, end, &val, &vl);
    }
    return p;
}

/* The reference decoder: every field through the general, bounds-checked
 * readers above. ulog__rec_decode_fast() (rec_decode.h) comes here whenever its fast path meets
 * anything unusual, so this alone decides what is corrupt. */
__attribute__((noinline, cold))
int ulog__rec_decode_slow(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    int64_t v;

    if (!p || !end || p >= end)
        return ULOG_ECORRUPT;
    if (!(p = get_varint32(p, end, &v)) || v < 0 || (uint64_t)v > (size_t)(end - p))
        return ULOG_ECORRUPT;
    const uint8_t *rend = p + v;

    if (p == rend)                                  /* attributes */
        return ULOG_ECORRUPT;
    p++;
    if (!(p = get_varlong(p, rend, &r->timestamp_delta)) ||
        !(p = get_varint32(p, rend, &r->offset_delta)) ||
        !(p = get_field(p, rend, &r->key, &r->key_len)) ||
        !(p = get_field(p, rend, &r->value, &r->value_len)) ||
        !(p = get_varint32(p, rend, &v)) || v < 0)
        return ULOG_ECORRUPT;
    r->header_count = (size_t)v;
    r->headers = p;
    /* Walk the headers now so that ulog__rec_header() only meets bytes that
     * are known good. */
    if (v && !(p = skip_headers(p, rend, v)))
        return ULOG_ECORRUPT;
    if (p != rend)
        return ULOG_ECORRUPT;
    r->end = rend;
    return 0;
}

/* unzigzag(b & 0x7f) for every byte b: 0, -1, 1, -2, ... twice over (see
 * rec_decode.h). */
const int8_t ulog__unzigzag_lo[256] = {
#define UZ2(i) (int8_t)((i) >> 1), (int8_t)(-((i) >> 1) - 1)
#define UZ8(i) UZ2(i), UZ2((i) + 2), UZ2((i) + 4), UZ2((i) + 6)
#define UZ32(i) UZ8(i), UZ8((i) + 8), UZ8((i) + 16), UZ8((i) + 24)
    UZ32(0), UZ32(32), UZ32(64), UZ32(96), UZ32(0), UZ32(32), UZ32(64), UZ32(96)
#undef UZ32
#undef UZ8
#undef UZ2
};

int ulog__rec_decode(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    return ulog__rec_decode_fast(p, end, r);
}

int ulog__rec_header(const ulog__rec *r, size_t index, ulog_header *out)
{
    if (!r || !out || index >= r->header_count)
        return ULOG_EINVAL;

    const uint8_t *p = r->headers, *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;

    for (size_t i = 0; i <= index; i++) {
        if (!(p = get_field(p, r->end, &k, &kl)) || !k ||
            !(p = get_field(p, r->end, &v, &vl)))
            return ULOG_ECORRUPT;
    }
    out->key = (const char *)k;
    out->key_len = kl;
    out->value = v;
    out->value_len = vl;
    return 0;
}

/* gaps: the batch may be one compaction rewrote (records missing from its
 * range, even all of them); otherwise it must be as an append writes it. */
static int check(const uint8_t *buf, size_t avail, ulog__batch_hdr *h, bool gaps)
{
    int rc = ulog__batch_parse_header(buf, avail, h);
    if (rc)
        return rc;

    size_t frame = ULOG__BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
    if (frame > avail)
        return ULOG_ECORRUPT;
    if (ulog__crc32c(0, buf + OFF_ATTR, frame - OFF_ATTR) != h->crc)
        return ULOG_ECORRUPT;
    /* Only now is the codec trustworthy enough to report as unsupported. */
    if (h->attributes & ULOG__ATTR_COMPRESSION)
        return ULOG_ENOTSUP;
    /* baseOffset is outside the CRC; keep offset arithmetic from wrapping.
     * An append writes lastOffsetDelta + 1 >= 1 records; compaction keeps
     * the batch's range and drops records from it, down to none. */
    if (h->base_offset < 0 || h->last_offset_delta < 0 ||
        h->base_offset > INT64_MAX - h->last_offset_delta)
        return ULOG_ECORRUPT;
    if (gaps ? h->record_count < 0 || h->record_count - 1 > h->last_offset_delta
             : h->record_count < 1 || h->last_offset_delta != h->record_count - 1)
        return ULOG_ECORRUPT;
    return 0;
}

static int verify(const uint8_t *buf, size_t avail, ulog__batch_hdr *h, bool gaps)
{
    int rc = check(buf, avail, h, gaps);
    if (rc)
        return rc;

    const uint8_t *p = buf + ULOG__BATCH_HEADER_SIZE;
    const uint8_t *end = buf + ULOG__BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
    int64_t prev = -1;
    ulog__rec r;

    /* Offset deltas run 0, 1, 2, ...; with gaps they only increase, within
     * the batch's range. */
    for (int32_t i = 0; i < h->record_count; i++) {
        if (ulog__rec_decode_fast(p, end, &r) || (gaps ? r.offset_delta <= prev : r.offset_delta != prev + 1) ||
            r.offset_delta > h->last_offset_delta)
            return ULOG_ECORRUPT;
        prev = r.offset_delta;
        p = r.end;
    }
    if (p != end || (!gaps && prev != h->last_offset_delta))
        return ULOG_ECORRUPT;
    return 0;
}

int ulog__batch_check(const uint8_t *buf, size_t avail, ulog__batch_hdr *h)
{
    return check(buf, avail, h, false);
}

int ulog__batch_check_gaps(const uint8_t *buf, size_t avail, ulog__batch_hdr *h)
{
    return check(buf, avail, h, true);
}

int ulog__batch_verify(const uint8_t *buf, size_t avail, ulog__batch_hdr *h)
{
    return verify(buf, avail, h, false);
}

int ulog__batch_verify_gaps(const uint8_t *buf, size_t avail, ulog__batch_hdr *h)
{
    return verify(buf, avail, h, true);
}
