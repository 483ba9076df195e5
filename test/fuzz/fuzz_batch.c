/* fuzz_batch.c -- the RecordBatch v2 decoder of lib/batch.c.
 *
 * Input: one mode byte, then the bytes. The mode's low two bits say what is
 * done to the bytes before they are decoded:
 *
 *   0  nothing: a batch as it would sit in a segment. Almost every mutation
 *      of a valid batch breaks its CRC, which is the point: whatever is
 *      accepted must carry a CRC-32C that matches its bytes.
 *   1  the CRC is recomputed over the frame that batchLength names, so that
 *      mutations reach the record decoder.
 *   2  batchLength is set to the whole input and the CRC recomputed.
 *   3  the bytes are a run of records (no batch header) for ulog__rec_decode
 *      alone, plus the varint codec.
 *
 * The rules are ulog's (batch.c): Kafka's format, plus what ulog writes and
 * nothing else reads -- at least one record, offset deltas 0, 1, 2, ...
 * (no compaction yet), lastOffsetDelta = recordCount - 1. The model below
 * states them again; keep it in step with ulog__batch_check/_verify.
 *
 * The checks, for modes 0-2:
 *   - ulog__batch_frame_size, _parse_header, _check and _verify each agree
 *     with a model written here from the format's description (batch.c's
 *     top comment), verdict and fields;
 *   - what _check accepts has a CRC that ulog__crc32c_sw (the table path,
 *     independent of the instruction path _check uses) computes over bytes
 *     21 .. end of frame, and a frame within the input;
 *   - what _verify accepts walks with ulog__rec_decode record by record,
 *     every pointer inside its record and the record inside the frame, and
 *     every header readable by ulog__rec_header;
 *   - its records, encoded again by ulog__batch_encode, give a batch that
 *     verifies and decodes to the same keys, values, headers and timestamps.
 * For every record decoded in any mode, ulog__rec_decode (fast path and slow
 * path) and the reference decoder below agree on the verdict and on every
 * field.
 */
#include "fuzz.h"

#define HDR ULOG__BATCH_HEADER_SIZE
#define OVERHEAD ULOG__BATCH_LOG_OVERHEAD
#define MAX_RECS 4096            /* re-encoded at most */
#define MAX_HDRS 16384           /* headers over all records, re-encoded at most */

/* ---------------------------------------------------------------- reference */

/* Zigzag varint of at most `max` bytes (5: a varint, whose zigzagged value
 * must fit 32 bits; 10: a varlong, whose tenth byte holds bit 63 only). */
static const uint8_t *ref_varint(const uint8_t *p, const uint8_t *end, int max, int64_t *out)
{
    uint64_t u = 0;
    for (int i = 0; i < max; i++) {
        if (p >= end)
            return NULL;
        uint8_t b = *p++;
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i == 9 && b > 1)
                return NULL;
            if (max == 5 && u > UINT32_MAX)
                return NULL;
            *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return p;
        }
    }
    return NULL;
}

/* Length-prefixed bytes; -1 is null when `nullable`, any other negative
 * length and any that runs past `end` is corrupt. */
static const uint8_t *ref_bytes(const uint8_t *p, const uint8_t *end, bool nullable,
                                const uint8_t **ptr, size_t *len)
{
    int64_t l;
    if (!(p = ref_varint(p, end, 5, &l)))
        return NULL;
    if (l == -1 && nullable) {
        *ptr = NULL;
        *len = 0;
        return p;
    }
    if (l < 0 || l > end - p)
        return NULL;
    *ptr = p;
    *len = (size_t)l;
    return p + l;
}

/* One record at p, bounded by end, exactly as batch.c's top comment says. */
static bool ref_rec(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    int64_t len, v;
    if (!(p = ref_varint(p, end, 5, &len)) || len < 0 || len > end - p)
        return false;
    const uint8_t *rend = p + len;
    if (p == rend)
        return false;
    p++;                                            /* attributes: any */
    if (!(p = ref_varint(p, rend, 10, &r->timestamp_delta)) ||
        !(p = ref_varint(p, rend, 5, &r->offset_delta)) ||
        !(p = ref_bytes(p, rend, true, &r->key, &r->key_len)) ||
        !(p = ref_bytes(p, rend, true, &r->value, &r->value_len)) ||
        !(p = ref_varint(p, rend, 5, &v)) || v < 0)
        return false;
    r->header_count = (size_t)v;
    r->headers = p;
    for (int64_t i = 0; i < v; i++) {
        const uint8_t *k, *hv;
        size_t kl, vl;
        if (!(p = ref_bytes(p, rend, false, &k, &kl)) ||
            !(p = ref_bytes(p, rend, true, &hv, &vl)))
            return false;
    }
    if (p != rend)
        return false;
    r->end = rend;
    return true;
}

/* ulog__rec_decode against the reference at p; returns the verdict. */
static bool decode_both(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    ulog__rec ref;
    memset(r, 0, sizeof *r);
    int rc = ulog__rec_decode(p, end, r);
    bool ok = ref_rec(p, end, &ref);
    FUZZ_CHECK((rc == 0) == ok, "rec_decode says %d, the reference %s (record at %p, %td bytes)",
               rc, ok ? "valid" : "corrupt", (const void *)p, end - p);
    if (!ok)
        return false;
    FUZZ_CHECK(r->timestamp_delta == ref.timestamp_delta, "timestamp delta %lld vs %lld",
               (long long)r->timestamp_delta, (long long)ref.timestamp_delta);
    FUZZ_CHECK(r->offset_delta == ref.offset_delta, "offset delta %lld vs %lld",
               (long long)r->offset_delta, (long long)ref.offset_delta);
    FUZZ_CHECK(r->key == ref.key && r->key_len == ref.key_len, "key");
    FUZZ_CHECK(r->value == ref.value && r->value_len == ref.value_len, "value");
    FUZZ_CHECK(r->header_count == ref.header_count, "header count %zu vs %zu", r->header_count,
               ref.header_count);
    FUZZ_CHECK(r->header_count == 0 || r->headers == ref.headers, "headers start");
    FUZZ_CHECK(r->end == ref.end, "record end");

    /* Every borrowed pointer lies inside the record. */
    FUZZ_CHECK(r->end > p && r->end <= end, "record end outside its bounds");
    FUZZ_CHECK(!r->key || (r->key > p && r->key + r->key_len <= r->end), "key outside record");
    FUZZ_CHECK(!r->value || (r->value > p && r->value + r->value_len <= r->end),
               "value outside record");
    for (size_t i = 0; i < r->header_count; i++) {
        ulog_header h;
        FUZZ_CHECK(ulog__rec_header(r, i, &h) == 0, "header %zu of a valid record", i);
        const uint8_t *k = (const uint8_t *)h.key, *v = h.value;
        FUZZ_CHECK(k && k >= r->headers && k + h.key_len <= r->end, "header %zu key", i);
        FUZZ_CHECK(!v || (v > k && v + h.value_len <= r->end), "header %zu value", i);
    }
    ulog_header h;
    FUZZ_CHECK(ulog__rec_header(r, r->header_count, &h) == ULOG_EINVAL,
               "header index past the count");
    return true;
}

/* ---------------------------------------------------------------- headers */

static void expect_header(const uint8_t *b, const ulog__batch_hdr *h)
{
    FUZZ_CHECK(h->base_offset == (int64_t)fz_be64(b), "baseOffset");
    FUZZ_CHECK(h->batch_length == (int32_t)fz_be32(b + 8), "batchLength");
    FUZZ_CHECK(h->leader_epoch == (int32_t)fz_be32(b + 12), "partitionLeaderEpoch");
    FUZZ_CHECK(h->magic == (int8_t)b[16], "magic");
    FUZZ_CHECK(h->crc == fz_be32(b + 17), "crc");
    FUZZ_CHECK(h->attributes == (int16_t)fz_be16(b + 21), "attributes");
    FUZZ_CHECK(h->last_offset_delta == (int32_t)fz_be32(b + 23), "lastOffsetDelta");
    FUZZ_CHECK(h->base_timestamp == (int64_t)fz_be64(b + 27), "baseTimestamp");
    FUZZ_CHECK(h->max_timestamp == (int64_t)fz_be64(b + 35), "maxTimestamp");
    FUZZ_CHECK(h->producer_id == (int64_t)fz_be64(b + 43), "producerId");
    FUZZ_CHECK(h->producer_epoch == (int16_t)fz_be16(b + 51), "producerEpoch");
    FUZZ_CHECK(h->base_sequence == (int32_t)fz_be32(b + 53), "baseSequence");
    FUZZ_CHECK(h->record_count == (int32_t)fz_be32(b + 57), "recordCount");
}

/* ---------------------------------------------------------------- re-encode */

static bool same_bytes(const void *a, size_t al, const void *b, size_t bl)
{
    if (!a || !b)
        return !a && !b && al == 0 && bl == 0;
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* The records of a verified batch, encoded again, must verify and decode to
 * the same content. */
static void reencode(const uint8_t *b, const ulog__batch_hdr *h)
{
    size_t n = (size_t)h->record_count;
    if (n == 0 || n > MAX_RECS)
        return;
    const uint8_t *p = b + HDR, *end = b + OVERHEAD + (size_t)h->batch_length;
    ulog_record *recs = calloc(n, sizeof *recs);
    ulog__rec *orig = calloc(n, sizeof *orig);
    size_t total_hdrs = 0;
    FUZZ_CHECK(recs && orig, "out of memory");
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(ulog__rec_decode(p, end, &orig[i]) == 0, "record %zu of a verified batch", i);
        total_hdrs += orig[i].header_count;
        p = orig[i].end;
    }
    if (total_hdrs > MAX_HDRS) {
        free(recs);
        free(orig);
        return;
    }
    ulog_header *hdrs = calloc(total_hdrs ? total_hdrs : 1, sizeof *hdrs);
    FUZZ_CHECK(hdrs, "out of memory");
    size_t hi = 0;
    for (size_t i = 0; i < n; i++) {
        const ulog__rec *r = &orig[i];
        recs[i].key = r->key;
        recs[i].key_len = r->key_len;
        recs[i].value = r->value;
        recs[i].value_len = r->value_len;
        /* Wrapping, as the reader computes it. ULOG_TIMESTAMP_NOW can come
         * out: now_ms below is that same value, so it encodes as itself. */
        recs[i].timestamp = (int64_t)((uint64_t)h->base_timestamp + (uint64_t)r->timestamp_delta);
        recs[i].headers = hdrs + hi;
        recs[i].header_count = r->header_count;
        for (size_t j = 0; j < r->header_count; j++)
            FUZZ_CHECK(ulog__rec_header(r, j, &hdrs[hi++]) == 0, "header");
    }

    ulog__batch_src src = { recs, NULL, n };
    bool lat = (h->attributes & ULOG__ATTR_LOG_APPEND_TIME) != 0;
    size_t size = ulog__batch_size(&src, ULOG_TIMESTAMP_NOW);
    FUZZ_CHECK(size >= HDR, "batch_size %zu for %zu decoded records", size, n);
    uint8_t *nb = malloc(size);
    FUZZ_CHECK(nb, "out of memory");
    int64_t max_ts = 0;
    ulog__batch_encode(nb, size, &src, ULOG_TIMESTAMP_NOW, lat, &max_ts);
    ulog__batch_set_base_offset(nb, h->base_offset);

    ulog__batch_hdr nh;
    int rc = ulog__batch_verify(nb, size, &nh);
    FUZZ_CHECK(rc == 0, "re-encoded batch fails verification: %d", rc);
    FUZZ_CHECK(nh.record_count == h->record_count && nh.last_offset_delta == (int32_t)(n - 1) &&
               nh.base_offset == h->base_offset && nh.batch_length == (int32_t)(size - OVERHEAD),
               "re-encoded header");
    FUZZ_CHECK(nh.max_timestamp == max_ts, "re-encoded maxTimestamp");
    FUZZ_CHECK(((nh.attributes & ULOG__ATTR_LOG_APPEND_TIME) != 0) == lat, "timestamp type");
    p = nb + HDR;
    hi = 0;
    for (size_t i = 0; i < n; i++) {
        ulog__rec r;
        FUZZ_CHECK(decode_both(p, nb + size, &r), "re-encoded record %zu", i);
        FUZZ_CHECK(r.offset_delta == (int64_t)i, "re-encoded offset delta");
        FUZZ_CHECK((int64_t)((uint64_t)nh.base_timestamp + (uint64_t)r.timestamp_delta) ==
                       recs[i].timestamp,
                   "record %zu: timestamp", i);
        FUZZ_CHECK(same_bytes(r.key, r.key_len, recs[i].key, recs[i].key_len), "record %zu: key",
                   i);
        FUZZ_CHECK(same_bytes(r.value, r.value_len, recs[i].value, recs[i].value_len),
                   "record %zu: value", i);
        FUZZ_CHECK(r.header_count == recs[i].header_count, "record %zu: header count", i);
        for (size_t j = 0; j < r.header_count; j++) {
            ulog_header x;
            FUZZ_CHECK(ulog__rec_header(&r, j, &x) == 0, "re-encoded header");
            FUZZ_CHECK(same_bytes(x.key, x.key_len, hdrs[hi].key, hdrs[hi].key_len) &&
                           same_bytes(x.value, x.value_len, hdrs[hi].value, hdrs[hi].value_len),
                       "record %zu header %zu", i, j);
            hi++;
        }
        p = r.end;
    }
    FUZZ_CHECK(p == nb + size, "re-encoded batch: bytes after the last record");
    free(nb);
    free(hdrs);
    free(recs);
    free(orig);
}

/* ---------------------------------------------------------------- a batch */

static void check_batch(const uint8_t *b, size_t n)
{
    /* ulog__batch_frame_size */
    size_t frame = 0;
    int32_t len = n >= OVERHEAD ? (int32_t)fz_be32(b + 8) : 0;
    bool len_ok = n >= OVERHEAD && len >= HDR - OVERHEAD && len <= INT32_MAX - OVERHEAD;
    int frc = ulog__batch_frame_size(b, n, &frame);
    FUZZ_CHECK((frc == 0) == len_ok, "frame_size says %d for batchLength %d", frc, (int)len);
    if (frc == 0)
        FUZZ_CHECK(frame == OVERHEAD + (size_t)len, "frame %zu", frame);

    /* ulog__batch_parse_header */
    ulog__batch_hdr ph;
    bool ph_ok = n >= HDR && len_ok && b[16] == ULOG__BATCH_MAGIC;
    int prc = ulog__batch_parse_header(b, n, &ph);
    FUZZ_CHECK((prc == 0) == ph_ok, "parse_header says %d", prc);
    if (n >= HDR)
        expect_header(b, &ph);

    /* ulog__batch_check, against the model */
    ulog__batch_hdr ch;
    int crc_rc = ulog__batch_check(b, n, &ch);
    int model = ULOG_ECORRUPT;
    if (ph_ok && frame <= n) {
        int16_t attr = (int16_t)fz_be16(b + 21);
        int64_t base = (int64_t)fz_be64(b);
        int32_t lod = (int32_t)fz_be32(b + 23), count = (int32_t)fz_be32(b + 57);
        if (ulog__crc32c_sw(0, b + 21, frame - 21) != fz_be32(b + 17))
            model = ULOG_ECORRUPT;
        else if (attr & ULOG__ATTR_COMPRESSION)
            model = ULOG_ENOTSUP;
        else if (base < 0 || count < 1 || lod != count - 1 || base > INT64_MAX - lod)
            model = ULOG_ECORRUPT;
        else
            model = 0;
    }
    FUZZ_CHECK(crc_rc == model, "batch_check says %d, the model %d", crc_rc, model);
    if (crc_rc == 0) {
        expect_header(b, &ch);
        /* Accepted bytes carry their own CRC, computed by the other path. */
        FUZZ_CHECK(ulog__crc32c(0, b + 21, frame - 21) == ch.crc, "accepted with a wrong CRC");
    }

    /* ulog__batch_verify: _check, then every record, against the model */
    ulog__batch_hdr vh;
    int vrc = ulog__batch_verify(b, n, &vh);
    if (crc_rc != 0) {
        FUZZ_CHECK(vrc == crc_rc, "verify says %d where check says %d", vrc, crc_rc);
        return;
    }
    const uint8_t *p = b + HDR, *end = b + frame;
    int64_t prev = -1;
    bool walk_ok = true;
    for (int32_t i = 0; i < ch.record_count && walk_ok; i++) {
        ulog__rec r;
        if (!decode_both(p, end, &r) || r.offset_delta != prev + 1) {
            walk_ok = false;
            break;
        }
        prev = r.offset_delta;
        p = r.end;
    }
    walk_ok = walk_ok && p == end && prev == ch.last_offset_delta;
    FUZZ_CHECK((vrc == 0) == walk_ok, "verify says %d, the record walk %s", vrc,
               walk_ok ? "valid" : "corrupt");
    if (vrc != 0)
        return;
    expect_header(b, &vh);
    reencode(b, &vh);
}

/* Mode 3: a run of records, and the varint codec on the same bytes. */
static void check_records(const uint8_t *b, size_t n)
{
    const uint8_t *p = b, *end = b + n;
    ulog__rec r;
    while (p < end && decode_both(p, end, &r))
        p = r.end;

    int64_t v, ref;
    size_t used = ulog__varint_get(b, end, &v);
    const uint8_t *q = ref_varint(b, end, 10, &ref);
    FUZZ_CHECK((used != 0) == (q != NULL), "varint_get says %zu", used);
    if (used) {
        FUZZ_CHECK(v == ref && b + used == q, "varint value");
        uint8_t enc[10];
        size_t w = ulog__varint_put(enc, v);
        FUZZ_CHECK(w == ulog__varint_len(v) && w <= used && w >= 1 && w <= 10, "varint width");
        int64_t back;
        FUZZ_CHECK(ulog__varint_get(enc, enc + w, &back) == w && back == v, "varint roundtrip");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] & 3;
    size_t n = size - 1;
    uint8_t *b = fz_dup(data + 1, n);

    if (mode == 3) {
        check_records(b, n);
        free(b);
        return 0;
    }
    if (mode == 2 && n >= HDR && n - OVERHEAD <= (size_t)INT32_MAX)
        fz_put_be32(b + 8, (uint32_t)(n - OVERHEAD));
    if (mode >= 1 && n >= HDR) {
        size_t frame;
        if (ulog__batch_frame_size(b, n, &frame) == 0 && frame <= n)
            fz_put_be32(b + 17, ulog__crc32c_sw(0, b + 21, frame - 21));
    }
    check_batch(b, n);
    /* The same frame alone in an exact buffer: nothing may read past it. */
    size_t frame;
    if (ulog__batch_frame_size(b, n, &frame) == 0 && frame < n) {
        uint8_t *f = fz_dup(b, frame);
        check_batch(f, frame);
        free(f);
    }
    free(b);
    return 0;
}
