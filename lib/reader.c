/*
 * reader.c -- reading a partition: a cursor over the segment mappings that
 * walks batches below the committed end, verifying each batch once (CRC
 * included) before handing out records that point into the mapping.
 *
 * A reader never touches bytes past the file size it last saw, and every
 * byte below `committed` was written before `committed` moved, so a mapping
 * never faults. The segment after the current one is found by listing the
 * directory once per segment boundary.
 */
#include "internal.h"

#include <string.h>

void ulog__cursor_init(ulog__cursor *c, ulog__part *p)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->map = (ulog__map)ULOG__MAP_INIT;
}

void ulog__cursor_close(ulog__cursor *c)
{
    ulog__map_close(&c->map);
}

static bool below_low(const ulog__cursor *c, int64_t offset)
{
    return offset < __atomic_load_n(&c->p->h->low, __ATOMIC_ACQUIRE);
}

static int fail(ulog__cursor *c, int err, const char *what)
{
    ulog__part *p = c->p;
    return ulog__fail(p->topic->log, err, "topic %s partition %d segment %lld pos %lld: %s",
                      p->topic->name, (int)p->id, (long long)c->map.base, (long long)c->pos,
                      what);
}

/*
 * Maps segment `base`, or keeps the mapping if it is of that segment and no
 * cut happened since (h->gen). A cut (a dead writer's tail, an fsync
 * failure) can truncate bytes this mapping's size still counts, or replace
 * a removed segment by a new file of the same name: after one, the file is
 * opened again by name and its size read anew. gen is loaded before the
 * size, so a size read after a cut is never paired with the old gen.
 */
static int map_segment(ulog__cursor *c, int64_t base)
{
    uint32_t gen = __atomic_load_n(&c->p->h->gen, __ATOMIC_ACQUIRE);
    if (c->map.addr && c->map.base == base && c->gen == gen)
        return 0;
    int err = ulog__map_open(c->p->dirfd, base, ulog__part_map_reserve(c->p), &c->map);
    if (err)
        return fail(c, err, "mapping segment");
    c->gen = gen;
    return 0;
}

/* Whether the batch at (seg, pos) exists, verifies, and starts at offset. */
static bool batch_at(ulog__cursor *c, int64_t seg, int64_t pos, int64_t offset)
{
    /* Hints come from LMDB: never trust them with the mapping. */
    if (seg < 0 || pos < 0 || pos > INT64_MAX - ULOG__BATCH_LOG_OVERHEAD || offset < 0 ||
        map_segment(c, seg) != 0)
        return false;
    if (pos + ULOG__BATCH_LOG_OVERHEAD > c->map.size && ulog__map_refresh(&c->map) != 0)
        return false;
    size_t frame;
    ulog__batch_hdr h;
    if (pos + ULOG__BATCH_LOG_OVERHEAD > c->map.size ||
        ulog__batch_frame_size(c->map.addr + pos, (size_t)(c->map.size - pos), &frame) != 0 ||
        pos + (int64_t)frame > c->map.size ||
        (offset < __atomic_load_n(&c->p->h->compacted, __ATOMIC_ACQUIRE)
             ? ulog__batch_verify_gaps(c->map.addr + pos, frame, &h)
             : ulog__batch_verify(c->map.addr + pos, frame, &h)) != 0)
        return false;
    return h.base_offset == offset;
}

/* Best index hint at or below `offset`: LMDB, or this process's entries
 * not flushed yet. */
/* Only batches below the committed end may be touched: an entry noted at
 * write time can name a batch that is not committed yet, or never will be. */
static bool hint_usable(const ulog__cursor *c, const ulog__index_entry *e)
{
    return e->offset >= __atomic_load_n(&c->p->h->low, __ATOMIC_ACQUIRE) &&
           e->offset < __atomic_load_n(&c->p->h->committed, __ATOMIC_ACQUIRE);
}

static bool index_hint(ulog__cursor *c, int64_t offset, ulog__index_entry *best)
{
    ulog__part *p = c->p;
    bool have = ulog__meta_index_floor(p->topic->log->meta, p->topic->id, p->id, offset,
                                       best) == 0 && hint_usable(c, best);
    pthread_mutex_lock(&p->ilock);
    for (size_t i = 0; i < p->icount; i++)
        if (p->ibuf[i].offset <= offset && hint_usable(c, &p->ibuf[i]) &&
            (!have || p->ibuf[i].offset > best->offset)) {
            *best = p->ibuf[i];
            have = true;
        }
    pthread_mutex_unlock(&p->ilock);
    return have;
}

/* Starts the scan at (seg, pos) whose batch begins at or before `offset`,
 * trying the index first. An entry can be stale (cut by a recovery in
 * another process): it is only used if the batch it names is there. */
static int start_at(ulog__cursor *c, int64_t offset, const ulog__index_entry *hint)
{
    c->in_batch = false;
    c->refloored = false;
    if (hint && batch_at(c, hint->segment, hint->pos, hint->offset)) {
        c->pos = hint->pos;
        c->expect = hint->offset;
        return 0;
    }
    int64_t seg;
    int err = ulog__seg_floor(c->p->dirfd, offset, &seg);
    if (err)
        return fail(c, err == ULOG_ENOENT ? ULOG_EOFFSET : err, "no segment holds the offset");
    if ((err = map_segment(c, seg)) != 0)
        return err;
    c->pos = 0;
    c->expect = seg;
    return 0;
}

/* A file that went between listing and mapping, below the log start, was
 * deleted by retention: the position fell out of the log. */
static int gone_below_low(ulog__cursor *c, int err, int64_t offset)
{
    if ((err == ULOG_ENOENT || err == ULOG_ECORRUPT) && below_low(c, offset))
        return fail(c, ULOG_EOFFSET, "the position is below the log start");
    return err;
}

int ulog__cursor_seek(ulog__cursor *c, int64_t offset)
{
    ulog__index_entry e;
    bool have = index_hint(c, offset, &e);
    int err = gone_below_low(c, start_at(c, offset, have ? &e : NULL), offset);
    if (!err)
        c->next = offset;
    return err;
}

/* Opens the batch at c->pos, moving to the next segment at the end of
 * this one. Caller checked that c->next is below the committed end. */
static int open_batch(ulog__cursor *c)
{
    for (;;) {
        if (c->map.addr && c->gen != __atomic_load_n(&c->p->h->gen, __ATOMIC_ACQUIRE)) {
            /* A cut since this segment was mapped: reopen it by name; if
             * the cut removed it, find the offset again -- also when the
             * name now holds another file (a compaction merged segments
             * into it), where the position means other bytes. */
            int64_t base = c->map.base, pos = c->pos;
            uint64_t ino = c->map.ino, dev = c->map.dev;
            ulog__map_close(&c->map);
            if (map_segment(c, base) == 0) {
                if (c->map.ino == ino && c->map.dev == dev)
                    c->pos = pos;
                else
                    ulog__map_close(&c->map);
            }
        }
        if (!c->map.addr) {
            int err = start_at(c, c->next, NULL);
            if (err)
                return err;
        }
        if (c->pos + ULOG__BATCH_LOG_OVERHEAD > c->map.size) {
            int err = ulog__map_refresh(&c->map);
            if (err)
                return fail(c, err, "reading segment size");
        }
        if (c->pos >= c->map.size) {
            /* The committed record is not in this segment: a later one
             * was rolled, and exists (it was created durably first).
             * Segments are contiguous, so it is named by the next offset:
             * open it by name, and list the directory (O(segments) per
             * boundary, quadratic over a long read) only when there is
             * no such file. */
            uint32_t gen = __atomic_load_n(&c->p->h->gen, __ATOMIC_ACQUIRE);
            if (c->expect > c->map.base &&
                ulog__map_open(c->p->dirfd, c->expect, ulog__part_map_reserve(c->p),
                               &c->map) == 0) {
                c->gen = gen;
                c->pos = 0;
                continue;
            }
            int64_t seg;
            int err = ulog__seg_next(c->p->dirfd, c->map.base, &seg);
            /* Retention deleted what follows while this segment was read:
             * the position fell below the log start. */
            if ((err == ULOG_ENOENT || (!err && seg != c->expect)) && below_low(c, c->expect))
                return fail(c, ULOG_EOFFSET, "the records after this segment were deleted");
            /* Compaction merges segments into the file named by the first
             * one's offset (a new file under an old name), and this may be
             * the old one: look once more, from the start of the file that
             * now holds `expect`, skipping what is before the position. */
            int64_t fl;
            if ((err || seg != c->expect) && !c->refloored &&
                ulog__seg_floor(c->p->dirfd, c->expect, &fl) == 0) {
                c->refloored = true;
                ulog__map_close(&c->map);
                if ((err = map_segment(c, fl)) != 0)
                    return err;
                c->pos = 0;
                c->expect = fl;
                continue;
            }
            if (err)
                return fail(c, err == ULOG_ENOENT ? ULOG_ECORRUPT : err,
                            "committed records missing: no next segment");
            /* The next segment must start where this one ended. */
            if (seg != c->expect)
                return fail(c, ULOG_ECORRUPT, "records missing between segments");
            if ((err = map_segment(c, seg)) != 0)
                return err;
            c->pos = 0;
            continue;
        }
        size_t frame;
        const uint8_t *b = c->map.addr + c->pos;
        size_t avail = (size_t)(c->map.size - c->pos);
        if (ulog__batch_frame_size(b, avail, &frame) != 0)
            return fail(c, ULOG_ECORRUPT, "bad batch length");
        if (frame > avail) {
            int err = ulog__map_refresh(&c->map);
            if (err)
                return fail(c, err, "reading segment size");
            b = c->map.addr + c->pos;
            avail = (size_t)(c->map.size - c->pos);
            if (frame > avail)
                return fail(c, ULOG_ECORRUPT, "batch runs past the end of its segment");
        }
        /* The CRC proves the bytes are the ones written; the records'
         * structure is checked as they are decoded (one pass, not two).
         * Below the head's `compacted`, a batch may be one compaction
         * rewrote, with records missing from its range. */
        bool gaps = c->expect < __atomic_load_n(&c->p->h->compacted, __ATOMIC_ACQUIRE);
        int err = gaps ? ulog__batch_check_gaps(b, frame, &c->bh)
                       : ulog__batch_check(b, frame, &c->bh);
        if (err)
            return fail(c, err, err == ULOG_ENOTSUP ? "compressed batch" : "batch failed verification");
        /* baseOffset is outside the CRC: each batch must start where the
         * one before it ended (or where the segment's name or a verified
         * index entry says), or a flipped bit would renumber records. */
        if (c->bh.base_offset != c->expect)
            return fail(c, ULOG_ECORRUPT, "batch offsets do not follow on");
        int64_t last = c->bh.base_offset + c->bh.last_offset_delta;
        /* Batches end at the committed end, never across it. */
        if (last >= __atomic_load_n(&c->p->h->committed, __ATOMIC_ACQUIRE))
            return fail(c, ULOG_ECORRUPT, "batch runs past the committed end");
        /* read.replicated: a batch the hook has not shipped whole yet
         * waits (a watermark set by hand may fall inside one). */
        if (c->replicated_only && last >= ulog__cursor_end(c))
            return ULOG_ETIMEDOUT;
        if (c->bh.record_count == 0 && frame != ULOG__BATCH_HEADER_SIZE)
            return fail(c, ULOG_ECORRUPT, "bytes after the last record");
        c->expect = last + 1;
        if (last < c->next) {           /* before the position: skip */
            c->pos += (int64_t)frame;
            continue;
        }
        c->in_batch = true;
        c->gaps = gaps;
        c->refloored = false;
        c->bpos = c->pos;
        c->rp = b + ULOG__BATCH_HEADER_SIZE;
        c->bend = b + frame;
        c->left = c->bh.record_count;
        c->prev_delta = -1;
        c->pos += (int64_t)frame;
        return 0;
    }
}

int64_t ulog__cursor_end(const ulog__cursor *c)
{
    int64_t end = __atomic_load_n(&c->p->h->committed, __ATOMIC_ACQUIRE);
    if (c->replicated_only) {
        int64_t r = __atomic_load_n(&c->p->h->replicated, __ATOMIC_ACQUIRE);
        if (r < end)
            end = r;
    }
    return end;
}

/* Leaves the open batch (if any) and opens the one holding the position:
 * 0, ULOG_ETIMEDOUT at the committed end, or an error. */
static int next_batch(ulog__cursor *c)
{
    /* Past the batch's last offset, also when compaction removed the
     * records at its end: the position never rests in a gap. */
    if (c->in_batch && c->next < c->expect)
        c->next = c->expect;
    c->in_batch = false;
    if (c->next >= ulog__cursor_end(c))
        return ULOG_ETIMEDOUT;
    /* Records below the log start are gone for every reader, even those
     * whose segment is still mapped. */
    if (below_low(c, c->next))
        return fail(c, ULOG_EOFFSET, "the position is below the log start");
    int err = open_batch(c);
    return err ? gone_below_low(c, err, c->next) : 0;
}

__attribute__((noinline))
static int next_slow(ulog__cursor *c, ulog__rec *r, int64_t *offset, int64_t *timestamp)
{
    for (;;) {
        int err = c->in_batch ? ulog__cursor_take(c, r, offset, timestamp) : ULOG_ETIMEDOUT;
        if (err != ULOG_ETIMEDOUT)
            return err == ULOG_ECORRUPT ? fail(c, err, "bad record") : 0;
        if ((err = next_batch(c)) != 0)
            return err;
    }
}

int ulog__cursor_next_frame(ulog__cursor *c, const uint8_t **frame, size_t *len)
{
    /* An open batch with records left goes whole, those before the
     * position included; one taken to its end is left behind. */
    if (!(c->in_batch && c->left > 0)) {
        int err = next_batch(c);
        if (err)
            return err;
    }
    *frame = c->map.addr + c->bpos;
    *len = (size_t)(c->bend - *frame);
    c->left = 0;
    c->in_batch = false;
    c->next = c->expect;
    return 0;
}

int ulog__cursor_next(ulog__cursor *c, ulog__rec *r, int64_t *offset, int64_t *timestamp)
{
    if (c->in_batch && ulog__cursor_take(c, r, offset, timestamp) == 0)
        return 0;
    return next_slow(c, r, offset, timestamp);
}

/* Greatest time-index hint whose max timestamp is below ts. */
static bool time_hint(ulog__cursor *c, int64_t ts, ulog__index_entry *best)
{
    ulog__part *p = c->p;
    bool have = ulog__meta_time_floor(p->topic->log->meta, p->topic->id, p->id, ts, best) == 0 &&
                hint_usable(c, best);
    pthread_mutex_lock(&p->ilock);
    for (size_t i = 0; i < p->icount; i++)
        if (p->ibuf[i].max_timestamp < ts && hint_usable(c, &p->ibuf[i]) &&
            (!have || p->ibuf[i].offset > best->offset)) {
            *best = p->ibuf[i];
            have = true;
        }
    pthread_mutex_unlock(&p->ilock);
    return have;
}

/* Reopens the batch just read from so that record `offset` of it comes
 * next: no I/O, so it cannot fail. */
void ulog__cursor_rewind(ulog__cursor *c, int64_t offset)
{
    c->in_batch = false;
    c->pos = c->bpos;
    c->expect = c->bh.base_offset;
    c->next = offset;
}

/*
 * A time-index entry (M, o) says every record up to the end of the batch
 * at o has a timestamp <= M. Starting at the last entry with M < ts, the
 * first record with timestamp >= ts lies before the next entry's batch
 * ends: the scan is bounded by one index interval.
 */
int ulog__cursor_seek_time(ulog__cursor *c, int64_t ts, int64_t *found)
{
    ulog__index_entry e;
    int64_t low = __atomic_load_n(&c->p->h->low, __ATOMIC_ACQUIRE);
    int err;
    if (time_hint(c, ts, &e)) {
        if ((err = start_at(c, e.offset, &e)) != 0)
            return err;
        c->next = e.offset;
    } else if ((err = ulog__cursor_seek(c, low)) != 0) {
        return err;
    }
    for (;;) {
        ulog__rec r;
        int64_t off, rts;
        err = ulog__cursor_next(c, &r, &off, &rts);
        if (err == ULOG_ETIMEDOUT) {
            *found = c->next;
            return 0;
        }
        if (err)
            return err;
        if (rts >= ts) {
            ulog__cursor_rewind(c, off);
            *found = off;
            return 0;
        }
    }
}
