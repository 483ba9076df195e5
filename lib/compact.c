/*
 * compact.c -- Kafka's cleanup.policy=compact: the closed segments of a
 * partition are rewritten keeping the latest record of each key.
 *
 * A run over one partition (under the root's clean lock, see retention.c):
 *   1. a swap a crashed run left is finished (the catalog says which), and
 *      stray *.cleaned files go;
 *   2. the dirty part: closed segments whose records are all committed,
 *      before the segment holding the durable end, from the end of the
 *      clean part (the catalog's cleaned_end) on, up to the first segment
 *      with a record newer than min.compaction.lag.ms. A background run
 *      goes on only when dirty bytes / (clean + dirty bytes) reaches
 *      min.cleanable.dirty.ratio, ulog_clean's when there is any; either
 *      also when tombstones' delete horizon has passed;
 *   3. every key of the dirty part is mapped to its latest offset. Keys are
 *      kept whole, not hashed: a collision could never cost a latest value.
 *      Past MAP_LIMIT bytes the dirty part ends at that batch;
 *   4. the log from its start to the end of the dirty part is rewritten, in
 *      groups of consecutive segments of at most segment.bytes, each group
 *      into one file named by its first segment.
 *
 * Offsets never change. A rewritten batch holds what is kept of one or
 * more consecutive original batches and spans all of their offsets, so
 * batches still tile the offsets with no gap between them (which readers
 * and recovery go on checking) and gaps appear only inside batches; a
 * group that keeps nothing is one empty batch. Batches are merged only
 * when both use CreateTime: a LogAppendTime batch's time is its own.
 *
 * Kept: a record whose key the map does not have (its latest version is
 * in the clean part, already alone) or maps to its own offset, and every
 * record with a null key (written before the topic was compacted: it has
 * no later version to lose to). A kept tombstone (null value) goes at the
 * first run after its batch's delete horizon: the run that first keeps it
 * sets that to now + delete.retention.ms (Kafka's KIP-534: attribute bit
 * 6, baseTimestamp the horizon), and batches with different horizons never
 * merge, so no tombstone waits for another's.
 *
 * A map past MAP_LIMIT ends the dirty part at a batch (map_end), inside a
 * segment if need be; what follows is kept as written, and the next run
 * goes on from there.
 *
 * The swap of a group [from, to) whose first segment is S:
 *   1. S.cleaned is written and fdatasynced; directory fsync;
 *   2. commit point: one catalog transaction records the swap and replaces
 *      the index entries for [from, to);
 *   3. S.cleaned is renamed over S; directory fsync;
 *   4. the group's other segments are unlinked; directory fsync;
 *   5. a catalog transaction clears the swap and raises cleaned_end.
 * A crash before 2 leaves a stray S.cleaned, which goes. After 2 the swap
 * is finished by the next run or by the next open that recovers the
 * partition (ulog__compact_finish, before its scan: between 3 and 4 the old
 * segments overlap the new S). Never is a key's latest record in neither
 * the old files nor the new one.
 *
 * Readers take no lock. A mapping of a replaced file stays valid, so a
 * reader inside one reads on, consistently, from the old records; between 3
 * and 4 one that reaches the old segments after S reads them too. One that
 * finds the next segment gone looks for its offset in the file that now
 * holds it (reader.c). Appenders never touch closed segments.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Kafka's default dedupe buffer (log.cleaner.dedupe.buffer.size). */
size_t ulog__compact_map_limit = (size_t)128 << 20;
#define MAP_LIMIT ulog__compact_map_limit

void (*ulog__compact_step)(int step);

/* A run given up because the handle is closing (only the background's). */
#define CLOSING (-1000)

static void step_done(int step)
{
    if (ulog__compact_step)
        ulog__compact_step(step);
}

static void cleaned_name(char *out, size_t n, int64_t base)
{
    snprintf(out, n, "%020lld.cleaned", (long long)base);
}

/* ---------------------------------------------------------------- key map */

typedef struct slot {
    uint64_t hash;
    int64_t  offset;        /* -1: empty */
    size_t   key;           /* into keys */
    size_t   len;
} slot;

typedef struct keymap {
    slot    *slots;
    size_t   cap, n;        /* cap: a power of two */
    uint8_t *keys;
    size_t   used, kcap;
} keymap;

static uint64_t key_hash(const uint8_t *k, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;       /* FNV-1a, 64 bits */
    for (size_t i = 0; i < len; i++)
        h = (h ^ k[i]) * 0x100000001b3u;
    return h ^ (h >> 29);
}

static void map_free(keymap *m)
{
    free(m->slots);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static size_t map_bytes(const keymap *m)
{
    return m->cap * sizeof(slot) + m->kcap;
}

static slot *map_find(const keymap *m, uint64_t h, const uint8_t *k, size_t len)
{
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot *s = &m->slots[i];
        if (s->offset < 0 || (s->hash == h && s->len == len &&
                              memcmp(m->keys + s->key, k, len) == 0))
            return s;
    }
}

static int map_grow(keymap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    slot *v = malloc(cap * sizeof *v);
    if (!v)
        return ULOG_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        v[i].offset = -1;
    keymap nm = *m;
    nm.slots = v;
    nm.cap = cap;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].offset >= 0)
            *map_find(&nm, m->slots[i].hash, m->keys + m->slots[i].key, m->slots[i].len) =
                m->slots[i];
    free(m->slots);
    *m = nm;
    return 0;
}

/* Maps key -> offset (the later offset wins; they come in order).
 * ULOG_ELIMIT past MAP_LIMIT bytes. */
static int map_put(keymap *m, const uint8_t *k, size_t len, int64_t offset)
{
    uint64_t h = key_hash(k, len);
    if (m->cap) {
        slot *s = map_find(m, h, k, len);
        if (s->offset >= 0) {
            s->offset = offset;
            return 0;
        }
    }
    if ((m->n + 1) * 4 > m->cap * 3) {          /* load <= 3/4 */
        if (m->cap && map_bytes(m) + m->cap * sizeof(slot) > MAP_LIMIT)
            return ULOG_ELIMIT;
        int err = map_grow(m);
        if (err)
            return err;
    }
    if (m->used + len > m->kcap) {
        size_t kcap = m->kcap ? m->kcap : 65536;
        while (kcap < m->used + len)
            kcap *= 2;
        if (map_bytes(m) - m->kcap + kcap > MAP_LIMIT)
            return ULOG_ELIMIT;
        uint8_t *keys = realloc(m->keys, kcap);
        if (!keys)
            return ULOG_ENOMEM;
        m->keys = keys;
        m->kcap = kcap;
    }
    memcpy(m->keys + m->used, k, len);
    *map_find(m, h, k, len) = (slot){ h, offset, m->used, len };
    m->used += len;
    m->n++;
    return 0;
}

/* The latest offset of key k; -1 when the map does not have it. */
static int64_t map_get(const keymap *m, const uint8_t *k, size_t len)
{
    return m->cap ? map_find(m, key_hash(k, len), k, len)->offset : -1;
}

/* ---------------------------------------------------------------- walking a segment */

/* Batches of one mapped segment, each verified (CRC and records) before
 * its records are looked at. */
typedef struct walk {
    ulog__map       map;
    int64_t         compacted;  /* below it, batches may have gaps */
    int64_t         pos;
    ulog__batch_hdr h;
    const uint8_t  *b;          /* the batch */
    size_t          frame;
} walk;

static int walk_open(ulog__part *p, int64_t base, walk *w)
{
    memset(w, 0, sizeof *w);
    w->map = (ulog__map)ULOG__MAP_INIT;
    w->compacted = __atomic_load_n(&p->h->compacted, __ATOMIC_ACQUIRE);
    return ulog__map_open(p->dirfd, base, 0, &w->map);
}

/* The next batch: 0, ULOG_ETIMEDOUT at the end, ULOG_ECORRUPT. */
static int walk_next(walk *w)
{
    if (w->pos == w->map.size)
        return ULOG_ETIMEDOUT;
    const uint8_t *b = w->map.addr + w->pos;
    size_t avail = (size_t)(w->map.size - w->pos);
    ulog__batch_hdr h;
    if (ulog__batch_frame_size(b, avail, &w->frame) != 0 || w->frame > avail ||
        ulog__batch_parse_header(b, w->frame, &h) != 0 ||
        (h.base_offset < w->compacted ? ulog__batch_verify_gaps(b, w->frame, &w->h)
                                      : ulog__batch_verify(b, w->frame, &w->h)) != 0)
        return ULOG_ECORRUPT;
    w->b = b;
    w->pos += (int64_t)w->frame;
    return 0;
}

/* ---------------------------------------------------------------- the plan */

typedef struct cplan {
    int64_t *v, *size;          /* segments, their sizes */
    size_t   n;
    size_t   first;             /* the segment holding the log start */
    size_t   dirty;             /* first dirty segment */
    size_t   end;               /* one past the last cleanable one */
    int64_t  map_end;           /* the map's keys are those below it: v[end], or
                                   a batch inside segment end - 1 */
    int64_t  low;
    ulog__part_state st;
} cplan;

static void cplan_free(cplan *pl)
{
    free(pl->v);
    free(pl->size);
}

static size_t below(const cplan *pl, int64_t offset)
{
    return ulog__segs_below(pl->v, pl->n, offset);
}

static int plan_compaction(ulog__part *p, cplan *pl)
{
    ulog__topic *t = p->topic;
    memset(pl, 0, sizeof *pl);
    int err = ulog__meta_part_state_get(t->log->meta, t->id, p->id, &pl->st);
    if (err == ULOG_ENOENT) {
        pl->st = (ulog__part_state){ 0, 0, 0, 0, -1, -1, 0, 0 };
        err = 0;
    }
    if (!err)
        err = ulog__seg_list_sizes(p->dirfd, &pl->v, &pl->size, &pl->n);
    if (err)
        return err;
    pl->low = __atomic_load_n(&p->h->low, __ATOMIC_ACQUIRE);
    pl->first = below(pl, pl->low);
    /* Closed, every record committed, before the segment holding the
     * durable end (an fsync failure cuts back to it). */
    ulog__pos synced;
    if ((err = ulog__part_synced_wait(p, &synced)) != 0) {
        cplan_free(pl);
        return err;
    }
    pl->end = below(pl, __atomic_load_n(&p->h->committed, __ATOMIC_ACQUIRE));
    if (below(pl, synced.segment) < pl->end)
        pl->end = below(pl, synced.segment);
    /* The dirty part starts in the segment holding cleaned_end (a map that
     * filled up may have ended it inside one). */
    pl->dirty = pl->first;
    while (pl->dirty < pl->end && pl->v[pl->dirty + 1] <= pl->st.cleaned_end)
        pl->dirty++;
    return 0;
}

/* min.compaction.lag.ms: the dirty part stops at the first segment holding
 * a record that is not old enough. */
static int apply_lag(ulog__part *p, const ulog__topic_cfg *c, int64_t now_ms, cplan *pl)
{
    if (c->min_compaction_lag_ms <= 0)
        return 0;
    for (size_t i = pl->dirty; i < pl->end; i++) {
        /* Headers only (the batches are verified when they are mapped);
         * a segment whose headers do not parse to its end counts as young. */
        int64_t m;
        bool whole;
        int err = ulog__seg_max_ts(p->dirfd, pl->v[i], 0, pl->v[i], &m, &whole);
        if (err)
            return err;
        if (!whole || m > now_ms - c->min_compaction_lag_ms) {
            pl->end = i;
            break;
        }
    }
    return 0;
}

static int64_t bytes_of(const cplan *pl, size_t from, size_t to)
{
    int64_t sum = 0;
    for (size_t i = from; i < to; i++)
        sum += pl->size[i];
    return sum;
}

/* ---------------------------------------------------------------- the map */

/* Maps the keys of the dirty segments; a map that would outgrow MAP_LIMIT
 * ends the dirty part at the last segment mapped whole. */
static int build_map(ulog__part *p, cplan *pl, keymap *m)
{
    pl->map_end = pl->v[pl->end];
    for (size_t i = pl->dirty; i < pl->end; i++) {
        walk w;
        int err = walk_open(p, pl->v[i], &w);
        while (!err && (err = walk_next(&w)) == 0) {
            const uint8_t *r = w.b + ULOG__BATCH_HEADER_SIZE;
            ulog__rec rec;
            int64_t base = w.h.base_offset;
            if (ulog__closing(p->topic->log)) {
                err = CLOSING;
                break;
            }
            if (base + w.h.last_offset_delta < pl->st.cleaned_end)
                continue;                   /* clean already */
            for (int32_t k = 0; !err && k < w.h.record_count; k++, r = rec.end)
                if ((err = ulog__rec_decode(r, w.b + w.frame, &rec)) == 0 && rec.key)
                    err = map_put(m, rec.key, rec.key_len, base + rec.offset_delta);
            /* Full: the dirty part ends before this batch. What of it is
             * in the map only says that later records exist, and records
             * from map_end on are all kept. */
            if (err == ULOG_ELIMIT && base > pl->st.cleaned_end && base > pl->v[pl->dirty]) {
                pl->map_end = base;
                pl->end = i + 1;
                err = ULOG_ETIMEDOUT;
                i = pl->end;
            }
        }
        ulog__map_close(&w.map);
        if (err != ULOG_ETIMEDOUT)
            return err;
    }
    return 0;
}

/* ---------------------------------------------------------------- writing */

/* The output batch being assembled: records in buf[61, len). */
typedef struct obatch {
    uint8_t        *buf;
    size_t          len, cap;
    ulog__batch_hdr h;
    bool            open;       /* a range is started (records or not) */
    int64_t         end;        /* one past the range's last offset */
    int64_t         horizon;    /* its tombstones' delete horizon; -1: none */
} obatch;

typedef struct out {
    ulog__part *p;
    int         fd;
    int64_t     seg;            /* the group's first segment: the file's name */
    int64_t     pos;            /* bytes written */
    int64_t     since_index;    /* bytes since the last index entry */
    int64_t     running;        /* greatest timestamp so far, from the log start */
    obatch      b;
    ulog__index_entry *e;       /* index entries for the swap */
    size_t      ne, ecap;
    int64_t     cap;            /* max bytes of a batch (max.message.bytes) */
    int64_t     dropped;        /* records dropped */
    int64_t     stamped;        /* batches given their first delete horizon */
    int64_t     horizon;        /* earliest delete horizon written (0: none) */
} out;

static int out_reserve(obatch *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *buf = realloc(b->buf, cap);
    if (!buf)
        return ULOG_ENOMEM;
    b->buf = buf;
    b->cap = cap;
    return 0;
}

static int note_index(out *o, int64_t offset, int64_t pos)
{
    if (o->ne == o->ecap) {
        size_t cap = o->ecap ? 2 * o->ecap : 64;
        ulog__index_entry *e = realloc(o->e, cap * sizeof *e);
        if (!e)
            return ULOG_ENOMEM;
        o->e = e;
        o->ecap = cap;
    }
    ulog__part *p = o->p;
    o->e[o->ne++] = (ulog__index_entry){ p->topic->id, p->id, offset, o->seg, pos, o->running };
    o->since_index = 0;
    return 0;
}

/* Writes the assembled batch out and starts none. */
static int flush_batch(out *o)
{
    obatch *b = &o->b;
    if (!b->open)
        return 0;
    if (b->h.record_count == 0) {        /* a range that kept nothing */
        b->h.attributes = 0;
        b->h.base_timestamp = b->h.max_timestamp = -1;
    } else if (b->horizon >= 0) {
        b->h.attributes |= ULOG__ATTR_DELETE_HORIZON;
        if (o->horizon == 0 || b->horizon < o->horizon)
            o->horizon = b->horizon;
    }
    b->h.last_offset_delta = (int32_t)(b->end - 1 - b->h.base_offset);
    b->h.producer_id = -1;
    b->h.producer_epoch = -1;
    b->h.base_sequence = -1;
    ulog__batch_seal(b->buf, b->len, &b->h);
    int err = ulog__pwrite_all(o->fd, b->buf, b->len, o->pos);
    if (err)
        return err;
    if (b->h.record_count > 0 && b->h.max_timestamp > o->running)
        o->running = b->h.max_timestamp;
    if ((o->pos == 0 || o->since_index >= ulog__cfg(o->p->topic)->index_interval_bytes) &&
        (err = note_index(o, b->h.base_offset, o->pos)) != 0)
        return err;
    o->pos += (int64_t)b->len;
    o->since_index += (int64_t)b->len;
    b->open = false;
    b->len = 0;
    return 0;
}

static int start_batch(out *o, int64_t base, int64_t horizon)
{
    obatch *b = &o->b;
    b->len = 0;
    int err = out_reserve(b, ULOG__BATCH_HEADER_SIZE);
    if (err)
        return err;
    memset(&b->h, 0, sizeof b->h);
    b->h.base_offset = base;
    b->h.leader_epoch = -1;
    b->len = ULOG__BATCH_HEADER_SIZE;
    b->open = true;
    b->end = base;
    b->horizon = horizon;
    return 0;
}

/* Position of a record's key length field: after length, attributes,
 * timestampDelta and offsetDelta, which the record is rewritten with. */
static const uint8_t *rec_tail(const uint8_t *r, const uint8_t *end)
{
    int64_t v;
    size_t n = ulog__varint_get(r, end, &v);
    if (!n || (r += n) >= end)
        return NULL;
    r++;                                /* attributes */
    for (int i = 0; i < 2; i++) {
        if (!(n = ulog__varint_get(r, end, &v)))
            return NULL;
        r += n;
    }
    return r;
}

/* Appends record `rec` (at r, of the input batch ih) at `offset`. */
static int add_record(out *o, const ulog__batch_hdr *ih, const uint8_t *r,
                      const ulog__rec *rec, int64_t offset)
{
    obatch *b = &o->b;
    const uint8_t *tail = rec_tail(r, rec->end);
    if (!tail)
        return ULOG_ECORRUPT;
    /* The record's own time, also under a delete horizon (Kafka's
     * KIP-534: baseTimestamp is then the horizon, deltas from it). */
    int64_t ts = (int64_t)((uint64_t)ih->base_timestamp + (uint64_t)rec->timestamp_delta);
    if (b->h.record_count == 0) {
        b->h.base_timestamp = b->horizon >= 0 ? b->horizon : ts;
        b->h.max_timestamp = ts;
        b->h.attributes = ih->attributes & ULOG__ATTR_LOG_APPEND_TIME;
    }
    if (ih->attributes & ULOG__ATTR_LOG_APPEND_TIME)
        b->h.max_timestamp = ih->max_timestamp;
    else if (ts > b->h.max_timestamp)
        b->h.max_timestamp = ts;
    b->h.leader_epoch = ih->leader_epoch;     /* the latest of those merged */
    int64_t tsd = (int64_t)((uint64_t)ts - (uint64_t)b->h.base_timestamp);
    int64_t od = offset - b->h.base_offset;
    size_t tlen = (size_t)(rec->end - tail);
    int64_t body = 1 + (int64_t)ulog__varint_len(tsd) + (int64_t)ulog__varint_len(od) +
                   (int64_t)tlen;
    int err = out_reserve(b, 10 + (size_t)body);
    if (err)
        return err;
    uint8_t *w = b->buf + b->len;
    w += ulog__varint_put(w, body);
    *w++ = 0;
    w += ulog__varint_put(w, tsd);
    w += ulog__varint_put(w, od);
    memcpy(w, tail, tlen);
    w += tlen;
    b->len = (size_t)(w - b->buf);
    b->h.record_count++;
    return 0;
}

/* Whether records kept from input batch ih may join the open batch. */
/* Whether records kept from input batch ih (kept_bytes of them; horizon:
 * the delete horizon their tombstones need, -1 for none) may join the open
 * batch. A batch has one horizon, set before its first record, and tombstones
 * never wait for another batch's later one. */
static bool joins(out *o, const ulog__batch_hdr *ih, size_t kept_bytes, int64_t horizon)
{
    obatch *b = &o->b;
    if (!b->open)
        return false;
    int64_t last = ih->base_offset + ih->last_offset_delta;
    if (last - b->h.base_offset > INT32_MAX)
        return false;
    if (kept_bytes == 0)
        return true;
    if (b->h.record_count == 0) {        /* a range with no record yet */
        b->horizon = horizon;
        return true;
    }
    if ((b->h.attributes | ih->attributes) & ULOG__ATTR_LOG_APPEND_TIME)
        return false;
    if (horizon >= 0 && horizon != b->horizon)
        return false;
    return (int64_t)(b->len + kept_bytes) <= o->cap;
}

typedef struct keep_rule {
    const keymap *map;
    int64_t       low;
    int64_t       map_end;
    int64_t       now_ms;
    int64_t       delete_retention_ms;
} keep_rule;

/* drop_tombs: the record's batch has a delete horizon that has passed. */
static bool keep(const keep_rule *k, const ulog__rec *rec, int64_t offset, bool drop_tombs)
{
    if (offset < k->low)
        return false;
    if (!rec->key || offset >= k->map_end)  /* past the map: as written */
        return true;
    int64_t latest = map_get(k->map, rec->key, rec->key_len);
    if (latest >= 0 && offset < latest)
        return false;
    return rec->value || !drop_tombs;
}

/* Rewrites one input batch into o. */
static int rewrite_batch(out *o, const walk *w, const keep_rule *k)
{
    const ulog__batch_hdr *ih = &w->h;
    const uint8_t *end = w->b + w->frame;
    /* Tombstones are kept until delete.retention.ms after the compaction
     * that first kept them: that run gives their batch a delete horizon,
     * later runs drop them once it has passed (Kafka's KIP-534). */
    int64_t in_horizon = ih->attributes & ULOG__ATTR_DELETE_HORIZON ? ih->base_timestamp : -1;
    bool drop_tombs = in_horizon >= 0 && in_horizon <= k->now_ms;
    /* First pass: how many bytes are kept, for the join decision. */
    size_t kept = 0;
    bool tombs = false;
    const uint8_t *r = w->b + ULOG__BATCH_HEADER_SIZE;
    ulog__rec rec;
    for (int32_t i = 0; i < ih->record_count; i++, r = rec.end) {
        if (ulog__rec_decode(r, end, &rec) != 0)
            return ULOG_ECORRUPT;
        if (keep(k, &rec, ih->base_offset + rec.offset_delta, drop_tombs)) {
            kept += (size_t)(rec.end - r) + 10;
            tombs |= rec.key && !rec.value;
        } else {
            o->dropped++;
        }
    }
    int64_t horizon = !tombs ? -1 : in_horizon >= 0 ? in_horizon
                                                     : k->now_ms + k->delete_retention_ms;
    if (tombs && in_horizon < 0)
        o->stamped++;
    int err = 0;
    if (!joins(o, ih, kept, horizon)) {
        /* An open range with no records yet takes this batch's records;
         * otherwise the open batch is written and a new one starts. */
        if ((err = flush_batch(o)) != 0 ||
            (err = start_batch(o, ih->base_offset, horizon)) != 0)
            return err;
    }
    r = w->b + ULOG__BATCH_HEADER_SIZE;
    for (int32_t i = 0; !err && i < ih->record_count; i++, r = rec.end) {
        int64_t off;
        if (ulog__rec_decode(r, end, &rec) != 0)
            return ULOG_ECORRUPT;
        off = ih->base_offset + rec.offset_delta;
        if (keep(k, &rec, off, drop_tombs))
            err = add_record(o, ih, r, &rec, off);
    }
    o->b.end = ih->base_offset + ih->last_offset_delta + 1;
    return err;
}

/* ---------------------------------------------------------------- the swap */

/* Steps 3 to 5 of a swap recorded in the catalog as [from, to). */
static int finish_swap(ulog__part *p, int64_t from, int64_t to, int64_t cleaned_end,
                       int64_t reclaimed, int64_t now_ms)
{
    char tmp[64], name[ULOG__SEG_NAME_LEN + 1];
    ulog__head_raise_compacted(p->h, to);   /* before readers can see the new file */
    cleaned_name(tmp, sizeof tmp, from);
    ulog__seg_name(name, from);
    if (renameat(p->dirfd, tmp, p->dirfd, name) != 0 && errno != ENOENT)
        return ulog__errno_to_err(errno);
    int err = ulog__fsync_dir(p->dirfd);
    if (err)
        return err;
    step_done(3);
    int64_t *v;
    size_t n;
    if ((err = ulog__seg_list(p->dirfd, &v, &n)) != 0)
        return err;
    for (size_t i = 0; i < n && !err; i++) {
        if (v[i] <= from || v[i] >= to)
            continue;
        ulog__seg_name(name, v[i]);
        if (unlinkat(p->dirfd, name, 0) != 0 && errno != ENOENT)
            err = ulog__errno_to_err(errno);
    }
    free(v);
    if (!err)
        err = ulog__fsync_dir(p->dirfd);
    if (err)
        return err;
    step_done(4);
    ulog__topic *t = p->topic;
    err = ulog__meta_compact_end(t->log->meta, t->id, p->id, cleaned_end, to, reclaimed,
                                 now_ms, -1);
    if (!err)
        step_done(5);
    return err;
}

/* Removes every *.cleaned file (a run that died before its commit point;
 * its first segment may be gone since). */
static int drop_strays(ulog__part *p)
{
    DIR *d;
    int err = ulog__dir_open(p->dirfd, &d);
    if (err)
        return err;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 8 && strcmp(de->d_name + len - 8, ".cleaned") == 0 &&
            unlinkat(p->dirfd, de->d_name, 0) != 0 && errno != ENOENT)
            err = ulog__errno_to_err(errno);
    }
    closedir(d);
    return err;
}

int ulog__compact_finish(ulog__part *p)
{
    ulog__topic *t = p->topic;
    ulog__part_state st;
    int err = ulog__meta_part_state_get(t->log->meta, t->id, p->id, &st);
    if (err == ULOG_ENOENT)
        return drop_strays(p);
    if (!err && st.swap_from >= 0)
        err = finish_swap(p, st.swap_from, st.swap_to, 0, 0, 0);
    return err ? err : drop_strays(p);
}

/* Rewrites segments [i, j) of the plan as one file and swaps it in. */
static int compact_group(ulog__part *p, const cplan *pl, size_t i, size_t j, out *o,
                         const keymap *m, int64_t now_ms, ulog_clean_progress *pr)
{
    const ulog__topic_cfg *c = ulog__cfg(p->topic);
    ulog__topic *t = p->topic;
    char tmp[64];
    cleaned_name(tmp, sizeof tmp, pl->v[i]);
    int fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    (mode_t)t->log->cfg.file_mode);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    o->fd = fd;
    o->seg = pl->v[i];
    o->pos = 0;
    o->since_index = 0;
    o->ne = 0;
    o->dropped = o->stamped = 0;
    o->b.open = false;
    int64_t in_bytes = 0, next = pl->v[i];   /* where the next batch must start */
    keep_rule k = { m, pl->low, pl->map_end, now_ms, c->delete_retention_ms };
    int err = 0;
    for (size_t s = i; s < j && !err; s++) {
        walk w;
        if ((err = walk_open(p, pl->v[s], &w)) != 0)
            break;
        in_bytes += w.map.size;
        /* The batches must follow on, as readers check: a rewrite spans
         * the offsets it was given, so a hole would become a silent gap. */
        while (!err && (err = walk_next(&w)) == 0) {
            if (ulog__closing(t->log))
                err = CLOSING;
            else if (w.h.base_offset != next)
                err = ULOG_ECORRUPT;
            else if ((err = rewrite_batch(o, &w, &k)) == 0)
                next = w.h.base_offset + w.h.last_offset_delta + 1;
        }
        if (err == ULOG_ETIMEDOUT)
            err = next == pl->v[s + 1] ? 0 : ULOG_ECORRUPT;
        ulog__map_close(&w.map);
    }
    if (!err && !o->b.open) {            /* no batch at all: nothing to do */
        close(fd);
        unlinkat(p->dirfd, tmp, 0);
        return 0;
    }
    if (!err)
        err = flush_batch(o);
    if (!err && ulog__fdatasync(fd) != 0)
        err = ulog__errno_to_err(errno);
    close(fd);
    /* Nothing dropped from a single segment, no tombstone given a horizon:
     * no swap. */
    if (!err && o->dropped == 0 && o->stamped == 0 && j == i + 1) {
        unlinkat(p->dirfd, tmp, 0);
        return 0;
    }
    if (!err)
        err = ulog__fsync_dir(p->dirfd);
    if (!err)
        step_done(1);
    int64_t to = pl->v[j];
    if (!err)
        err = ulog__meta_compact_begin(t->log->meta, t->id, p->id, pl->v[i], to, o->e, o->ne);
    if (err) {
        unlinkat(p->dirfd, tmp, 0);
        return err;
    }
    step_done(2);
    int64_t saved = in_bytes - o->pos;
    /* Everything below the group's end (or the map's) was compacted
     * against the keys after it. */
    err = finish_swap(p, pl->v[i], to, to < pl->map_end ? to : pl->map_end,
                      saved > 0 ? saved : 0, now_ms);
    if (!err && pr) {
        pr->segments_deleted += (int64_t)(j - i - 1);
        pr->bytes_reclaimed += saved > 0 ? saved : 0;
    }
    return err;
}

int ulog__compact_partition(ulog__part *p, int64_t now_ms, bool forced,
                            ulog_clean_progress *pr)
{
    const ulog__topic_cfg *c = ulog__cfg(p->topic);
    int err = ulog__compact_finish(p);
    if (err)
        return err;
    cplan pl;
    if ((err = plan_compaction(p, &pl)) != 0)
        return err;
    /* Due: a dirty ratio of at least min.cleanable.dirty.ratio (any dirty
     * part when forced), or tombstones whose delete horizon has passed. */
    int64_t clean = bytes_of(&pl, pl.first, pl.dirty), dirty = bytes_of(&pl, pl.dirty, pl.end);
    bool tombs_due = pl.st.horizon > 0 && pl.st.horizon <= now_ms;
    bool due = tombs_due || (dirty > 0 && (forced || (double)dirty * 1e6 >=
                                           (double)c->min_cleanable_dirty_ppm *
                                               (double)(clean + dirty)));
    if (due)
        err = apply_lag(p, c, now_ms, &pl);
    if (err || !due || (pl.dirty >= pl.end && !tombs_due) || pl.first >= pl.end) {
        cplan_free(&pl);
        return err;
    }
    keymap m = { 0 };
    err = build_map(p, &pl, &m);
    out o = { .p = p, .fd = -1, .running = INT64_MIN, .cap = c->max_message_bytes };
    for (size_t i = pl.first; !err && i < pl.end;) {
        size_t j = i + 1;
        int64_t sum = pl.size[i];
        while (j < pl.end && sum + pl.size[j] <= c->segment_bytes)
            sum += pl.size[j++];
        err = compact_group(p, &pl, i, j, &o, &m, now_ms, pr);
        i = j;
    }
    /* The clean part's earliest tombstone horizon, for the run that will
     * drop them (groups that needed no swap counted too). */
    ulog__topic *t = p->topic;
    if (!err)
        err = ulog__meta_compact_end(t->log->meta, t->id, p->id, pl.map_end, 0, 0, now_ms,
                                     o.horizon);
    free(o.b.buf);
    free(o.e);
    map_free(&m);
    cplan_free(&pl);
    return err;
}
