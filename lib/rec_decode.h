/*
 * rec_decode.h -- the fast path of the record decoder (batch.c has the
 * reference one and the format), in a header so that the reader's
 * per-record step, ulog__cursor_take(), inlines it: a call per record was
 * a tenth of a replay's time.
 *
 * Included by internal.h only.
 */
#ifndef ULOG_REC_DECODE_H
#define ULOG_REC_DECODE_H

/* The reference decoder: decides every record the fast path does not. */
int ulog__rec_decode_slow(const uint8_t *p, const uint8_t *end, ulog__rec *r) ULOG__HIDDEN;

/* The smallest record body: attributes, timestamp and offset deltas, key and
 * value lengths -1 and a header count of 0, one byte each. */
#define ULOG__MIN_BODY 6

/* A varint of one or two bytes at *pp, both of which the caller knows to be
 * readable. false: it is longer (and *pp is left alone). Values < 2^14 fit
 * any varint, 32-bit or not. */
static inline bool ulog__uvarint2(const uint8_t **pp, uint32_t *u)
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
static inline bool ulog__uvarint2_end(const uint8_t **pp, const uint8_t *end, uint32_t *u)
{
    const uint8_t *p = *pp;
    uint32_t b0 = p[0];

    if (__builtin_expect(b0 < 0x80, 1)) {
        *u = b0;
        *pp = p + 1;
        return true;
    }
    return end - p >= 2 && ulog__uvarint2(pp, u);
}

/* A varint of one or two bytes at rend[*k], where k < 0; false when it is
 * longer or does not end before rend. */
static inline bool ulog__uvarint2_back(const uint8_t *rend, ptrdiff_t *k, uint32_t *u)
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

static inline int64_t ulog__unzigzag32(uint32_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* unzigzag(b & 0x7f) for every byte b: 0, -1, 1, -2, ... twice over.
 * unzigzag() of a 2-byte varint b0 b1 is then ulog__unzigzag_lo[b0] ^ b1 << 6:
 * b0 holds the sign and the low 6 bits, and xor with the sign mask that
 * the table entry carries in its high bits flips b1's bits as needed. */
extern const int8_t ulog__unzigzag_lo[256] ULOG__HIDDEN;

static inline int64_t ulog__unzigzag2(uint8_t b0, uint8_t b1)
{
    return ulog__unzigzag_lo[b0] ^ (int64_t)b1 << 6;
}

/* The fast path for what records nearly always are: every varint one or two
 * bytes, fewer than 64 headers. It does every check the slow path does, on
 * fewer and cheaper reads: a byte is read only where it is known to lie in
 * [p, rend), rend is checked against end once, and each length against what
 * is left of the record. It never decides that a record is corrupt: on
 * anything it does not handle, or any doubt, it hands the whole record to
 * ulog__rec_decode_slow(), which gives the verdict, so the two cannot disagree.
 * (Like the slow path it may leave *r half written when it fails.) */
__attribute__((always_inline))
static inline int ulog__rec_decode_fast(const uint8_t *p, const uint8_t *end, ulog__rec *r)
{
    const uint8_t *const start = p;
    uint32_t u;

    /* The record length, then the whole record within [p, end). At least
     * 1 + ULOG__MIN_BODY bytes, so that both bytes of a 2-byte length are there.
     * A 2-byte length is one of at least 64 unless its second byte is 0,
     * which goes the slow way. */
    if (__builtin_expect(!p || end - p < 1 + ULOG__MIN_BODY, 0))
        goto slow;
    u = p[0];
    if (u & 1)                                      /* negative */
        goto slow;
    if (u < 0x80) {
        if (u < 2 * ULOG__MIN_BODY)
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
     * length. Bytes 1 to 4 of the body are there (n >= ULOG__MIN_BODY) and say at
     * once whether these take the usual 1, 1 and 1 bytes, or 1, 2 and 1. */
    const uint8_t *const q = p;
    uint32_t w = (uint32_t)q[1] | (uint32_t)q[2] << 8 | (uint32_t)q[3] << 16 |
                 (uint32_t)q[4] << 24;
    if ((w & 0x808080) == 0) {
        /* At most 4 of n >= 6 bytes: 2 are left. */
        r->timestamp_delta = ulog__unzigzag_lo[q[1]];
        r->offset_delta = ulog__unzigzag_lo[q[2]];
        u = q[3];
        p = q + 4;
    } else if ((w & 0x80808080) == 0x8000 && n >= ULOG__MIN_BODY + 1) {
        /* 5 of n >= 7. */
        r->timestamp_delta = ulog__unzigzag_lo[q[1]];
        r->offset_delta = ulog__unzigzag2(q[2], q[3]);
        u = q[4];
        p = q + 5;
    } else {
        /* Two varints of up to 2 bytes end by q + 5 at the latest, so
         * p < rend after them. */
        p = q + 1;
        if (!ulog__uvarint2(&p, &u))
            goto slow;
        r->timestamp_delta = ulog__unzigzag32(u);
        if (!ulog__uvarint2(&p, &u))
            goto slow;
        r->offset_delta = ulog__unzigzag32(u);
        if (!ulog__uvarint2_end(&p, rend, &u) || rend - p < 2)
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
    if (!ulog__uvarint2(&p, &u))
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
        if (k > -2 || !ulog__uvarint2_back(rend, &k, &hu) || (hu & 1))
            goto slow;
        k += hu >> 1;
        if (k >= 0 || !ulog__uvarint2_back(rend, &k, &hu))
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

slow:;
    /* Through a copy, so that *r does not escape: a caller's local record
     * can then live in registers (see fill_msg() in sub.c). */
    ulog__rec t = { 0 };
    int err = ulog__rec_decode_slow(start, end, &t);
    *r = t;
    return err;
}

#endif
