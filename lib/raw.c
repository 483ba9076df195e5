/*
 * raw.c -- whole batches from another log: ulog_append_raw, the receiving
 * side of replication (the sending side is ulog_poll_batch, in sub.c).
 *
 * A batch keeps its bytes: its offsets, timestamps and partitionLeaderEpoch
 * are the ones it was stored with, so a follower's log is the leader's
 * byte for byte. It goes in only at the partition's write end, which makes
 * the call idempotent for a shipper that sends a batch again (at least
 * once): a batch that starts below the write end must be the one stored
 * there, the same bytes, and is then not written again.
 *
 * A batch whose records skip offsets (one compaction rewrote, or one made
 * from a Kafka topic whose offsets have gaps) is taken as well: batches
 * still tile the offsets, and the partition's bound below which readers
 * and recovery accept gaps is raised over it first, durably.
 */
#include "internal.h"

#include <string.h>

static int raw_fail(ulog *log, const char *topic, int32_t partition, int err, const char *what)
{
    return ulog__fail(log, err, "append_raw: topic %s partition %d: %s", topic, (int)partition,
                      what);
}

/* Verifies that data is one whole batch this log can store and read, with
 * baseOffset base; *gaps: its records skip offsets (compaction rewrote it,
 * or a Kafka topic's offsets had gaps). */
static int check_batch(ulog *log, const char *topic, int32_t partition,
                       const ulog__topic_cfg *cfg, const uint8_t *data, size_t len,
                       int64_t base, ulog__batch_hdr *h, bool *gaps)
{
    size_t frame;
    *gaps = false;
    if (ulog__batch_frame_size(data, len, &frame) != 0 || frame != len)
        return raw_fail(log, topic, partition, ULOG_ECORRUPT, "not one whole batch");
    int err = ulog__batch_verify(data, len, h);
    *gaps = err == ULOG_ECORRUPT && ulog__batch_verify_gaps(data, len, h) == 0;
    if (*gaps)
        err = 0;
    if (err == ULOG_ENOTSUP)
        return raw_fail(log, topic, partition, err, "a compressed batch");
    if (err)
        return raw_fail(log, topic, partition, err, "the batch failed verification");
    if (h->attributes & (ULOG__ATTR_TRANSACTIONAL | ULOG__ATTR_CONTROL))
        return raw_fail(log, topic, partition, ULOG_ENOTSUP,
                        "a transactional or control batch");
    if (h->base_offset != base)
        return raw_fail(log, topic, partition, ULOG_EINVAL,
                        "base_offset is not the batch's baseOffset");
    if (len > (size_t)cfg->max_message_bytes)
        return raw_fail(log, topic, partition, ULOG_ETOOBIG, "larger than max.message.bytes");
    /* What ulog_append() refuses, this refuses too; and an encrypted topic
     * takes sealed values only (its readers open every value), which it
     * can tell by their framing, not by their keys: a follower may not
     * have them. */
    bool compacts = ulog__cleanup_compacts(cfg), sealed = cfg->encryption_key_id >= 0;
    const uint8_t *p = data + ULOG__BATCH_HEADER_SIZE, *end = data + len;
    for (int32_t i = 0; (compacts || sealed) && i < h->record_count; i++) {
        ulog__rec r;
        ulog__rec_decode(p, end, &r);               /* verified above */
        if (compacts && !r.key)
            return raw_fail(log, topic, partition, ULOG_EINVAL,
                            "a record without a key, on a compacted topic");
        if (sealed && r.value && !ulog__sealed_framing(r.value, r.value_len))
            return raw_fail(log, topic, partition, ULOG_EINVAL,
                            "a value that is not sealed, on an encrypted topic (the "
                            "leader's topic must be encrypted too)");
        p = r.end;
    }
    return 0;
}

/* The batch at base is below the write end: 0 if the partition holds
 * these very bytes there, else ULOG_ECONFLICT (or a read error). */
static int compare_stored(ulog__part *p, int64_t base, const uint8_t *data, size_t len)
{
    ulog__head *h = p->h;
    /* Written but not yet committed (flush.policy always, its sync still
     * to come): readers stop at the committed end, so sync it first. */
    int err = 0;
    if (__atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) <= base &&
        (err = ulog__part_sync_background(p)) != 0)
        return err;
    if (base < __atomic_load_n(&h->low, __ATOMIC_ACQUIRE))
        return ULOG_EOFFSET;
    ulog__cursor c;
    ulog__cursor_init(&c, p);
    const uint8_t *frame;
    size_t flen;
    err = ulog__cursor_seek(&c, base);
    if (!err)
        err = ulog__cursor_next_frame(&c, &frame, &flen);
    if (!err && (c.bh.base_offset != base || flen != len || memcmp(frame, data, len) != 0))
        err = ULOG_ECONFLICT;
    ulog__cursor_close(&c);
    return err;
}

int ulog_append_raw(ulog *log, const char *topic, int32_t partition, int64_t base_offset,
                    const void *data, size_t len)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !data || base_offset < 0)
        return ulog__fail(log, ULOG_EINVAL, "append_raw: NULL argument or negative offset");
    ulog__part *p;
    int err = ulog__part_get(log, topic, partition, &p);
    if (err)
        return err;
    /* One reading of the settings for the whole call. */
    const ulog__topic_cfg *cfg = ulog__cfg(p->topic);
    ulog__batch_hdr h;
    bool gaps;
    if ((err = check_batch(log, topic, partition, cfg, data, len, base_offset, &h, &gaps)) != 0)
        return err;
    uint32_t noff = (uint32_t)h.last_offset_delta + 1;
    if (base_offset > INT64_MAX - noff)
        return raw_fail(log, topic, partition, ULOG_EOFFSET, "offsets past the largest");
    /* Batches with gaps are read as such only below the partition's
     * `rewritten` bound (the catalog's, for recovery; the head's, for
     * readers). Both cover this one before it is written: a recovery that
     * did not know would cut it, and all after it, as torn. Only for a
     * batch that goes at the write end: one that would leave a gap, or
     * that is stored already, moves no bound. */
    bool raise = gaps && base_offset + noff > __atomic_load_n(&p->h->compacted,
                                                              __ATOMIC_ACQUIRE);
    ulog__pos wend = { 0, 0, 0 };
    if (raise && (err = ulog__part_write_end(p, &wend)) != 0)
        return err;
    if (raise && base_offset == wend.offset) {
        err = ulog__meta_raise_rewritten(log->meta, p->topic->id, p->id, base_offset + noff);
        if (err)
            return raw_fail(log, topic, partition, err, "recording a batch with gaps");
        ulog__head_raise_compacted(p->h, base_offset + noff);
    }

    /* The batch is not ours to patch: the write takes a copy of the
     * pointer, never writes through it (raw_base >= 0). */
    ulog__written w;
    err = ulog__part_write(p, cfg, (uint8_t *)(uintptr_t)data, len, noff, h.max_timestamp,
                           base_offset, &w);
    if (err == ULOG_EOFFSET) {
        if (base_offset > w.base)
            return ulog__fail(log, ULOG_EOFFSET, "append_raw: topic %s partition %d: offset "
                              "%lld would leave a gap: the partition ends at %lld",
                              topic, (int)partition, (long long)base_offset,
                              (long long)w.base);
        err = compare_stored(p, base_offset, data, len);
        if (err == ULOG_ECONFLICT)
            return raw_fail(log, topic, partition, err, "other bytes are stored at that "
                            "offset, or no stored batch begins there");
        if (err == ULOG_EOFFSET)
            return raw_fail(log, topic, partition, err, "below the log start");
        /* Stored already; a first try may have timed out waiting for the
         * hook (replication.sync): this one waits as that one did. */
        if (!err && cfg->replication_sync)
            err = ulog__part_wait_replicated(p, base_offset + noff, cfg->replication_timeout_ms);
        return err;
    }
    if (err)
        return err;
    if (cfg->flush_policy == ULOG__FLUSH_ALWAYS)
        err = ulog__part_sync(p, &w);
    if (!err && cfg->replication_sync)
        err = ulog__part_wait_replicated(p, w.end, cfg->replication_timeout_ms);
    return err;
}
