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

/* Width of r's length varint, known without sizing every field: the body
 * is its key, value and header bytes plus 6 + 2 * headers to 31 + 10 *
 * headers bytes of attributes and varints, and when both ends need the same
 * width (all but a few sizes near 64, 8192, ...) that is the width. 0: not
 * known this way. ulog__batch_size() has checked that everything fits. */
static inline size_t len_width(const ulog_record *r)
{
    uint64_t bytes = (r->key ? r->key_len : 0) + (r->value ? r->value_len : 0);

    for (size_t j = 0; j < r->header_count; j++)
        bytes += hkey_len(&r->headers[j]) +
                 (r->headers[j].value ? r->headers[j].value_len : 0);
    uint64_t lo = bytes + 6 + 2 * (uint64_t)r->header_count;
    uint64_t hi = bytes + 31 + 10 * (uint64_t)r->header_count;
    size_t w = uvarint_len(lo << 1);
    return w == uvarint_len(hi << 1) ? w : 0;
}

/* Writes the varint of u in exactly w bytes; w is uvarint_len(u). */
static inline void put_uvarint_w(uint8_t *p, uint64_t u, size_t w)
{
    for (size_t k = 1; k < w; k++) {
        *p++ = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    *p = (uint8_t)u;
}

/* With log_append_time the records keep their deltas (so the size does not
 * depend on the flag) and maxTimestamp carries the append time: Kafka's
 * rule is that every record of a LogAppendTime batch has maxTimestamp as its
 * timestamp, and a Kafka broker stamps batches the same way.
 *
 * Each record's body is written after room for its length varint, whose
 * width len_width() predicts, and the length filled in behind it; only when
 * the width is not clear is the body sized first. */
__attribute__((always_inline))
static inline uint8_t *batch_encode_loop(uint8_t *p, const ulog_record *recs,
                                         const uint32_t *idx, size_t n, int64_t now_ms,
                                         int64_t base_ts, int64_t *max)
{
    for (size_t i = 0; i < n; i++) {
        const ulog_record *r = &recs[idx ? idx[i] : i];
        int64_t ts = rec_ts(r, now_ms);
        int64_t ts_d = ts_delta(ts, base_ts);
        size_t w = len_width(r);
        uint8_t *lp = p;

        if (ts > *max)
            *max = ts;
        if (w)
            p += w;
        else
            p = put_uvarint(p, rec_body_size(r, ts_d, i) << 1);
        uint8_t *body = p;
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
        if (w) {
            assert(uvarint_len((uint64_t)(p - body) << 1) == w);
            put_uvarint_w(lp, (uint64_t)(p - body) << 1, w);
        }
    }
    return p;
}

void ulog__batch_encode(uint8_t *buf, size_t size, const ulog__batch_src *src,
                        int64_t now_ms, bool log_append_time, int64_t *max_ts)
{
    if (!src || src->n == 0 || size < ULOG__BATCH_HEADER_SIZE)
        return;

    int64_t base_ts = rec_ts(src_rec(src, 0), now_ms);
    int64_t max = base_ts;
    uint8_t *p = buf + ULOG__BATCH_HEADER_SIZE;

    if (src->idx)
        p = batch_encode_loop(p, src->recs, src->idx, src->n, now_ms, base_ts, &max);
    else
        p = batch_encode_loop(p, src->recs, NULL, src->n, now_ms, base_ts, &max);
    assert(p == buf + size);
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
 * readers above. rec_decode() below comes here whenever its fast path meets
 * anything unusual, so this alone decides what is corrupt. */
__attribute__((noinline, cold))
static int rec_decode_slow(const uint8_t *p, const uint8_t *end, ulog__rec *r)
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

/* The smallest record body: attributes, timestamp and offset deltas, key and
 * value lengths -1 and a header count of 0, one byte each. */
#define MIN_BODY 6

/* A varint of one or two bytes at *pp, both of which the caller knows to be
 * readable. false: it is longer (and *pp is left alone). Values < 2^14 fit
 * any varint, 32-bit or not. */
static inline bool uvarint2(const uint8_t **pp, uint32_t *u)
{
    const uint8_t *p = *pp;
    uint32_t b0 = p[0];

    if (__builtin_expect(b0 < 0x80, 1)) {
        *u = b0;
        *pp = p + 1;
        return true;
    }
    uint32_t b1 = p[1];
    if (b1 >= 0x80)
        return false;
    *u = (b0 & 0x7f) | b1 << 7;
    *pp = p + 2;
    return true;
}

/* The same with only *pp < end known. */
static inline bool uvarint2_end(const uint8_t **pp, const uint8_t *end, uint32_t *u)
{
    const uint8_t *p = *pp;
    uint32_t b0 = p[0];

    if (__builtin_expect(b0 < 0x80, 1)) {
        *u = b0;
        *pp = p + 1;
        return true;
    }
    return end - p >= 2 && uvarint2(pp, u);
}

/* A varint of one or two bytes at rend[*k], where k < 0; false when it is
 * longer or does not end before rend. */
static inline bool uvarint2_back(const uint8_t *rend, ptrdiff_t *k, uint32_t *u)
{
    uint32_t b0 = rend[*k];

    if (__builtin_expect(b0 < 0x80, 1)) {
        *u = b0;
        *k += 1;
        return true;
    }
    if (*k > -2)
        return false;
    uint32_t b1 = rend[*k + 1];
    if (b1 >= 0x80)
        return false;
    *u = (b0 & 0x7f) | b1 << 7;
    *k += 2;
    return true;
}

static inline int64_t unzigzag32(uint32_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* unzigzag(b & 0x7f) for every byte b: 0, -1, 1, -2, ... twice over.
 * unzigzag() of a 2-byte varint b0 b1 is then unzigzag_lo[b0] ^ b1 << 6:
 * b0 holds the sign and the low 6 bits, and xor with the sign mask that
 * the table entry carries in its high bits flips b1's bits as needed. */
static const int8_t unzigzag_lo[256] = {
#define UZ2(i) (int8_t)((i) >> 1), (int8_t)(-((i) >> 1) - 1)
#define UZ8(i) UZ2(i), UZ2((i) + 2), UZ2((i) + 4), UZ2((i) + 6)
#define UZ32(i) UZ8(i), UZ8((i) + 8), UZ8((i) + 16), UZ8((i) + 24)
    UZ32(0), UZ32(32), UZ32(64), UZ32(96), UZ32(0), UZ32(32), UZ32(64), UZ32(96)
#undef UZ32
#undef UZ8
#undef UZ2
};

static inline int64_t unzigzag2(uint8_t b0, uint8_t b1)
{
    return unzigzag_lo[b0] ^ (int64_t)b1 << 6;
}

/* The fast path for what records nearly always are: every varint one or two
 * bytes, fewer than 64 headers. It does every check the slow path does, on
 * fewer and cheaper reads: a byte is read only where it is known to lie in
 * [p, rend), rend is checked against end once, and each length against what
 * is left of the record. It never decides that a record is corrupt: on
 * anything it does not handle, or any doubt, it hands the whole record to
 * rec_decode_slow(), which gives the verdict, so the two cannot disagree.
 * (Like the slow path it may leave *r half written when it fails.) */
__attribute__((always_inline))
static inline int rec_decode(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    const uint8_t *const start = p;
    uint32_t u;

    /* The record length, then the whole record within [p, end). At least
     * 1 + MIN_BODY bytes, so that both bytes of a 2-byte length are there.
     * A 2-byte length is one of at least 64 unless its second byte is 0,
     * which goes the slow way. */
    if (__builtin_expect(!p || end - p < 1 + MIN_BODY, 0))
        goto slow;
    u = p[0];
    if (u & 1)                                      /* negative */
        goto slow;
    if (u < 0x80) {
        if (u < 2 * MIN_BODY)
            goto slow;
        p++;
        u >>= 1;
    } else {
        uint32_t b1m1 = p[1] - 1u;
        if (b1m1 >= 0x7f)
            goto slow;
        u = (u >> 1) + (b1m1 << 6);                 /* (u & 0x7f | b1 << 7) >> 1 */
        p += 2;
    }
    size_t n = u;
    if (n > (size_t)(end - p))
        goto slow;
    const uint8_t *const rend = p + n;
    /* Within [start, rend) the slow path decides as it would within
     * [start, end), and end need not be kept. */
    end = rend;

    /* Attributes (ignored), the timestamp and offset deltas and the key
     * length. Bytes 1 to 4 of the body are there (n >= MIN_BODY) and say at
     * once whether these take the usual 1, 1 and 1 bytes, or 1, 2 and 1. */
    const uint8_t *const q = p;
    uint32_t w = (uint32_t)q[1] | (uint32_t)q[2] << 8 | (uint32_t)q[3] << 16 |
                 (uint32_t)q[4] << 24;
    if ((w & 0x808080) == 0) {
        /* At most 4 of n >= 6 bytes: 2 are left. */
        r->timestamp_delta = unzigzag_lo[q[1]];
        r->offset_delta = unzigzag_lo[q[2]];
        u = q[3];
        p = q + 4;
    } else if ((w & 0x80808080) == 0x8000 && n >= MIN_BODY + 1) {
        /* 5 of n >= 7. */
        r->timestamp_delta = unzigzag_lo[q[1]];
        r->offset_delta = unzigzag2(q[2], q[3]);
        u = q[4];
        p = q + 5;
    } else {
        /* Two varints of up to 2 bytes end by q + 5 at the latest, so
         * p < rend after them. */
        p = q + 1;
        if (!uvarint2(&p, &u))
            goto slow;
        r->timestamp_delta = unzigzag32(u);
        if (!uvarint2(&p, &u))
            goto slow;
        r->offset_delta = unzigzag32(u);
        if (!uvarint2_end(&p, rend, &u) || rend - p < 2)
            goto slow;
    }

    /* The key. At least 2 bytes must remain after it, for the value length
     * and the header count; without one they do. */
    if (u != 1) {                                   /* 1: -1, null */
        if ((u & 1) || (ptrdiff_t)(u >> 1) > rend - p - 2)
            goto slow;
        r->key = p;
        r->key_len = u >> 1;
        p += u >> 1;
    } else {
        r->key = NULL;
        r->key_len = 0;
    }

    /* The value length; both of its bytes can be read. */
    if (!uvarint2(&p, &u))
        goto slow;
    r->end = rend;

    /* What most records end with: the value, up to the last byte, and that
     * is a header count of 0 (rend[-1] is in the record: p > q). u == 2 *
     * left - 2 also says that the length is not negative. */
    ptrdiff_t left = rend - p;
    if (rend[-1] == 0 && (ptrdiff_t)u == 2 * left - 2) {
        r->value = p;
        r->value_len = (size_t)left - 1;
        r->header_count = 0;
        r->headers = rend;
        return 0;
    }

    /* The value; then at least 1 byte, for the header count. */
    if (u != 1) {
        if ((u & 1) || (ptrdiff_t)(u >> 1) > left - 1)
            goto slow;
        r->value = p;
        r->value_len = u >> 1;
        p += u >> 1;
    } else {
        if (left < 1)
            goto slow;
        r->value = NULL;
        r->value_len = 0;
    }

    /* The header count, one byte: 0 to 63. */
    u = *p++;
    r->headers = p;
    r->header_count = u >> 1;
    if (u & 0x81)
        goto slow;
    /* Each header: a key length (not negative, not null), the key, a value
     * length, the value. Positions are counted back from rend: rend[k],
     * k < 0, is in the record. A value that runs past rend leaves k > 0,
     * which the next header's k > -2 or the final k != 0 turns away before
     * anything more is read. */
    ptrdiff_t k = p - rend;
    for (u >>= 1; u; u--) {
        uint32_t hu;
        if (k > -2 || !uvarint2_back(rend, &k, &hu) || (hu & 1))
            goto slow;
        k += hu >> 1;
        if (k >= 0 || !uvarint2_back(rend, &k, &hu))
            goto slow;
        if (hu != 1) {                              /* 1: -1, null */
            if (hu & 1)
                goto slow;
            k += hu >> 1;
        }
    }
    if (k != 0)
        goto slow;
    return 0;

slow:
    return rec_decode_slow(start, end, r);
}

int ulog__rec_decode(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    return rec_decode(p, end, r);
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
        if (rec_decode(p, end, &r) || (gaps ? r.offset_delta <= prev : r.offset_delta != prev + 1) ||
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
