/*
 * retention.c -- Kafka's cleanup.policy=delete: segment.ms rolls, deleting
 * the oldest segments by retention.ms and retention.bytes, DeleteRecords,
 * and the runs that apply them (ulog_clean, and the background run).
 *
 * A partition's log start offset (its low watermark) is kept in two places:
 * the head's `low`, which readers check, and the catalog's partition state,
 * which survives a reboot. Moving it is the commit point of a deletion: the
 * catalog first (durable), then the head, then the files, oldest first. A
 * crash after the catalog write leaves files wholly below the log start,
 * which the next open removes before it scans (ulog__part_open). Readers
 * need no lock: a cursor keeps its mapping of a removed segment, and one
 * that would go on below the log start gets ULOG_EOFFSET (reader.c), which
 * a subscription turns into its auto.offset.reset.
 *
 * Only closed segments go (never the active one), and only those whose
 * records are all committed. retention.ms looks at the largest timestamp in
 * a segment or before it: the offset index's running maximum at the last
 * entry in the segment, plus the headers of the batches after it (at most
 * index.interval.bytes of them), so a check costs no scan of the segment.
 * As Kafka's, the test stops at the first segment that must stay.
 *
 * The background run happens in the cleaner thread of every open handle
 * (ulog.c), every retention.check.ms, over the topics that handle has open;
 * an flock on meta/clean.lock lets one process at a time do it.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLEAN_LOCK "meta/clean.lock"

typedef struct clean_run {
    ulog_clean_cb      *cb;
    void               *arg;
    ulog_clean_progress pr;
    int64_t             now_ms;
    int                 flags;      /* ULOG_CLEAN_RETENTION | ULOG_CLEAN_COMPACT */
    bool                forced;     /* ulog_clean: compact whatever is dirty */
} clean_run;

/* ---------------------------------------------------------------- time */

/* The largest timestamp of any record up to the end of segment `seg`
 * (whose successor starts at `next`), given *running for the segments
 * before it; INT64_MAX when it cannot be known (a hint that does not name
 * a batch there and a segment whose batches do not parse to its end): such
 * a segment is kept. */
static int max_ts_through(ulog__part *p, int64_t seg, int64_t next, int64_t *running)
{
    ulog__index_entry e;
    int64_t m;
    bool whole = false;
    int err = 0;
    /* The index entry is a hint: used only if its batch is there. */
    if (ulog__meta_index_floor(p->topic->log->meta, p->topic->id, p->id, next - 1, &e) == 0 &&
        e.segment == seg && e.pos >= 0 && e.offset >= seg &&
        (err = ulog__seg_max_ts(p->dirfd, seg, e.pos, e.offset, &m, &whole)) == 0 && whole) {
        if (e.max_timestamp > *running)
            *running = e.max_timestamp;
    } else if (err || (err = ulog__seg_max_ts(p->dirfd, seg, 0, seg, &m, &whole)) != 0) {
        return err;
    }
    if (!whole)
        m = INT64_MAX;
    if (m > *running)
        *running = m;
    return 0;
}

/* ---------------------------------------------------------------- one partition */

/* Makes `low` the log start: catalog, head, then the files below it. */
static int move_log_start(ulog__part *p, int64_t low, clean_run *run)
{
    ulog__topic *t = p->topic;
    int64_t segs = 0, bytes = 0;
    /* Count first: the catalog records the bytes this deletion reclaims. */
    int64_t *v;
    size_t n;
    int err = ulog__seg_list(p->dirfd, &v, &n);
    if (err)
        return err;
    for (size_t i = 0; i + 1 < n && v[i + 1] <= low; i++)
        bytes += ulog__seg_size(p->dirfd, v[i]);
    free(v);
    err = ulog__meta_part_state_advance(t->log->meta, t->id, p->id, low, bytes, run->now_ms,
                                        NULL);
    if (err)
        return err;
    ulog__head_raise_low(p->h, low);
    err = ulog__seg_drop_below(p->dirfd, low, &segs, &bytes);
    run->pr.segments_deleted += segs;
    run->pr.bytes_reclaimed += bytes;
    return err;
}

/* What retention would do to one partition. */
typedef struct plan {
    int64_t *v;           /* segment bases, ascending */
    int64_t *size;        /* their sizes */
    size_t   n;
    size_t   k_low;       /* leading segments wholly below the log start */
    size_t   k_policy;    /* leading segments retention.ms or retention.bytes
                             would delete, consumers aside */
} plan;

static void plan_free(plan *pl)
{
    free(pl->v);
    free(pl->size);
}

static size_t segs_below(const plan *pl, int64_t offset)
{
    return ulog__segs_below(pl->v, pl->n, offset);
}

/* synced_bound: keep the segment that holds the durable end (a clean,
 * which syncs first); false for a report of what a clean would do. */
static int plan_partition(ulog__part *p, const ulog__topic_cfg *c, int64_t now_ms,
                          bool synced_bound, plan *pl)
{
    ulog__head *h = p->h;
    memset(pl, 0, sizeof *pl);
    int err = ulog__seg_list_sizes(p->dirfd, &pl->v, &pl->size, &pl->n);
    if (err)
        return err;
    int64_t total = 0;
    for (size_t i = 0; i < pl->n; i++)
        total += pl->size[i];
    /* A preallocated active segment's file size is not its data: the
     * write end is. */
    ulog__pos wend;
    if ((err = ulog__part_write_end(p, &wend)) != 0) {
        plan_free(pl);
        return err;
    }
    if (pl->n && wend.segment == pl->v[pl->n - 1] && wend.pos < pl->size[pl->n - 1]) {
        total -= pl->size[pl->n - 1] - wend.pos;
        pl->size[pl->n - 1] = wend.pos;
    }
    pl->k_low = segs_below(pl, __atomic_load_n(&h->low, __ATOMIC_ACQUIRE));
    /* Only segments whose every record is committed, and before the one
     * holding the durable end: an fsync failure cuts back to it, and the
     * repair at the next open rewrites from it, so its file must stay. */
    size_t k_max = segs_below(pl, __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE)), k = 0;
    ulog__pos synced;
    if (synced_bound && (err = ulog__part_synced_wait(p, &synced)) != 0) {
        plan_free(pl);
        return err;
    }
    if (synced_bound && segs_below(pl, synced.segment) < k_max)
        k_max = segs_below(pl, synced.segment);
    /* cleanup.policy=compact alone: retention.ms and retention.bytes do
     * not apply (Kafka's rule); DeleteRecords still does. */
    bool deletes = ulog__cleanup_deletes(c);
    if (deletes && c->retention_bytes >= 0)
        while (k < k_max && total - pl->size[k] >= c->retention_bytes)
            total -= pl->size[k++];
    if (deletes && c->retention_ms >= 0) {
        int64_t cutoff = now_ms - c->retention_ms, running = INT64_MIN;
        for (size_t i = 0; i < k_max; i++) {
            if ((err = max_ts_through(p, pl->v[i], pl->v[i + 1], &running)) != 0 ||
                running >= cutoff)
                break;
            if (i + 1 > k)
                k = i + 1;
        }
    }
    pl->k_policy = k;
    if (err)
        plan_free(pl);
    return err;
}

/* ---------------------------------------------------------------- consumers */

/* The consumer groups retention.groups names, with their offsets for one
 * partition: -1 for a named group that has committed none. */
typedef struct pin {
    char    group[ULOG__NAME_MAX + 1];
    int64_t committed;
} pin;

typedef struct pin_list {
    pin     *v;
    size_t   n, cap;
    uint32_t topic;
    int32_t  partition;
} pin_list;

static int pin_add(pin_list *l, const char *group, int64_t committed)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        pin *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return ULOG_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n].group, sizeof l->v[l->n].group, "%s", group);
    l->v[l->n++].committed = committed;
    return 0;
}

static int pin_every(void *arg, const char *group, uint32_t topic, uint32_t partition,
                     int64_t offset, int64_t time_ms)
{
    pin_list *l = arg;
    (void)time_ms;
    return topic == l->topic && (int32_t)partition == l->partition ? pin_add(l, group, offset)
                                                                    : 0;
}

static int pins_of(ulog__part *p, const ulog__topic_cfg *c, pin_list *l)
{
    ulog__meta *m = p->topic->log->meta;
    *l = (pin_list){ .topic = p->topic->id, .partition = p->id };
    if (strcmp(c->retention_groups, "*") == 0)
        return ulog__meta_group_walk(m, pin_every, l);
    int err = 0;
    for (const char *g = c->retention_groups; *g && !err;) {
        const char *comma = strchr(g, ',');
        size_t len = comma ? (size_t)(comma - g) : strlen(g);
        char name[ULOG__NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)len, g);
        int64_t *offs = calloc((size_t)p->topic->partitions, sizeof *offs);
        if (!offs)
            err = ULOG_ENOMEM;
        else if ((err = ulog__meta_group_get(m, name, p->topic->id, p->topic->partitions,
                                              offs)) == 0)
            err = pin_add(l, name, offs[p->id]);
        free(offs);
        g = comma ? comma + 1 : g + len;
    }
    return err;
}

/* The lowest offset a pinning group still needs (INT64_MAX: none). */
static int64_t pins_floor(const pin_list *l, int64_t low)
{
    int64_t f = INT64_MAX;
    for (size_t i = 0; i < l->n; i++) {
        int64_t c = l->v[i].committed < 0 ? low : l->v[i].committed;
        if (c < f)
            f = c;
    }
    return f;
}

/* ---------------------------------------------------------------- one partition */

static int retain(ulog__part *p, const ulog__topic_cfg *c, clean_run *run);

static int clean_partition(ulog__part *p, clean_run *run)
{
    const ulog__topic_cfg *c = ulog__cfg(p->topic);
    bool rolled;
    int err = 0;
    if (c->segment_ms > 0 && run->now_ms - c->segment_ms > 0)
        err = ulog__part_roll_if_older(p, run->now_ms - c->segment_ms, &rolled);
    /* A deletion cut short after its catalog write: the head catches up.
     * Then a sync, so that the durable end is in the active segment and
     * every closed one may go (flush.policy none or interval would keep
     * the last closed one until their own next sync). */
    if (!err)
        err = ulog__part_catch_up_low(p);
    if (!err)
        err = ulog__part_sync_background(p);
    /* A compaction swap a crash cut short (whatever the policy is now):
     * until it is finished the merged file and the old segments after it
     * overlap, and a deletion would take the merged file for one below
     * the next old segment. */
    if (!err)
        err = ulog__compact_finish(p);
    if (!err && (run->flags & ULOG_CLEAN_RETENTION))
        err = retain(p, c, run);
    if (!err && (run->flags & ULOG_CLEAN_COMPACT) && ulog__cleanup_compacts(c))
        err = ulog__compact_partition(p, run->now_ms, run->forced, &run->pr);
    return err;
}

/* retention.ms, retention.bytes and DeleteRecords' leftovers. */
static int retain(ulog__part *p, const ulog__topic_cfg *c, clean_run *run)
{
    plan pl;
    int err = plan_partition(p, c, run->now_ms, true, &pl);
    if (err)
        return err;
    size_t k = pl.k_policy;
    if (k > pl.k_low && c->retention_groups[0]) {
        pin_list l;
        err = pins_of(p, c, &l);
        size_t kp = segs_below(&pl, pins_floor(&l, __atomic_load_n(&p->h->low,
                                                                    __ATOMIC_ACQUIRE)));
        if (kp < k)
            k = kp;
        free(l.v);
    }
    if (k < pl.k_low)
        k = pl.k_low;
    int64_t low = __atomic_load_n(&p->h->low, __ATOMIC_ACQUIRE);
    int64_t to = k > 0 && pl.v[k] > low ? pl.v[k] : low;
    plan_free(&pl);
    if (!err && k > 0)
        err = move_log_start(p, to, run);
    return err;
}

static int clean_topic(ulog__topic *t, clean_run *run)
{
    int err = 0;
    for (int32_t i = 0; i < t->partitions && !err; i++) {
        if (ulog__topic_deleted(t))
            return ULOG_ENOENT;
        run->pr.topic = t->name;
        run->pr.partition = i;
        if (run->cb && (err = run->cb(&run->pr, run->arg)) != 0)
            return err;
        err = clean_partition(&t->parts[i], run);
        if (err)
            err = ulog__fail(t->log, err, "topic %s partition %d: retention: %s", t->name,
                             (int)i, ulog_strerror(err));
        run->pr.partitions_done++;
        if (!err && run->cb)
            err = run->cb(&run->pr, run->arg);
    }
    return err;
}

/* ---------------------------------------------------------------- runs */

/* The root's clean lock (one run at a time across processes); -1 when
 * another holds it and `wait` is false. */
static int clean_lock(ulog *log, bool wait, int *fd_out)
{
    int fd = openat(log->rootfd, CLEAN_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, log->cfg.file_mode);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        if (errno == EINTR)
            continue;
        int err = errno == EWOULDBLOCK ? ULOG_ETIMEDOUT : ulog__errno_to_err(errno);
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* The open topics of log (they are never freed before ulog_close, so the
 * list stays valid without the table lock). Caller frees *out. */
static int open_topics(ulog *log, ulog__topic ***out, size_t *n)
{
    size_t cap = 16, cnt = 0;
    ulog__topic **v = malloc(cap * sizeof *v);
    if (!v)
        return ULOG_ENOMEM;
    pthread_rwlock_rdlock(&log->tlock);
    for (unsigned b = 0; b < ULOG__TOPIC_BUCKETS; b++)
        for (ulog__topic *t = log->buckets[b]; t; t = t->hnext) {
            if (cnt == cap) {
                ulog__topic **v2 = realloc(v, 2 * cap * sizeof *v);
                if (!v2) {
                    pthread_rwlock_unlock(&log->tlock);
                    free(v);
                    return ULOG_ENOMEM;
                }
                v = v2;
                cap *= 2;
            }
            v[cnt++] = t;
        }
    pthread_rwlock_unlock(&log->tlock);
    *out = v;
    *n = cnt;
    return 0;
}

void ulog__retention_background(ulog *log)
{
    int lockfd;
    if (clean_lock(log, false, &lockfd) != 0)
        return;                     /* another process runs it */
    ulog__topic **v;
    size_t n;
    if (open_topics(log, &v, &n) == 0) {
        clean_run run = { .pr = { .struct_size = sizeof run.pr }, .now_ms = ulog__now_ms(),
                          .flags = ULOG_CLEAN_RETENTION | ULOG_CLEAN_COMPACT };
        for (size_t i = 0; i < n; i++)
            run.pr.partitions_total += v[i]->partitions;
        for (size_t i = 0; i < n && !ulog__closing(log); i++)
            if (!ulog__topic_deleted(v[i]))
                clean_topic(v[i], &run);    /* a failure is in ulog_errmsg; go on */
        free(v);
    }
    close(lockfd);
}

int ulog_clean(ulog *log, const char *topic, int flags, ulog_clean_cb *cb, void *arg)
{
    if (!log)
        return ULOG_EINVAL;
    if (flags <= 0 || (flags & ~(ULOG_CLEAN_RETENTION | ULOG_CLEAN_COMPACT)))
        return ulog__fail(log, ULOG_EINVAL, "clean: flags must be ULOG_CLEAN_RETENTION, "
                                            "ULOG_CLEAN_COMPACT or both");
    ulog_strlist *names = NULL;
    int err = topic ? 0 : ulog_topic_list(log, &names);
    if (err)
        return err;
    size_t n = topic ? 1 : ulog_strlist_count(names);
    ulog__topic **v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        ulog_strlist_free(names);
        return ulog__fail(log, ULOG_ENOMEM, "clean: out of memory");
    }
    clean_run run = { .cb = cb, .arg = arg, .pr = { .struct_size = sizeof run.pr },
                      .flags = flags, .forced = true };
    for (size_t i = 0; i < n && !err; i++) {
        err = ulog__topic_get(log, topic ? topic : ulog_strlist_get(names, i), &v[i]);
        /* Deleted since the listing: nothing to clean. */
        if (err == ULOG_ENOENT && !topic) {
            err = 0;
            v[i] = NULL;
            continue;
        }
        if (!err)
            run.pr.partitions_total += v[i]->partitions;
    }
    int lockfd = -1;
    if (!err)
        err = clean_lock(log, true, &lockfd);
    run.now_ms = ulog__now_ms();
    for (size_t i = 0; i < n && !err; i++)
        if (v[i])
            err = clean_topic(v[i], &run);
    if (lockfd >= 0)
        close(lockfd);
    free(v);
    ulog_strlist_free(names);
    return err;
}

int ulog_delete_records(ulog *log, const char *topic, int32_t partition, int64_t offset)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic)
        return ulog__fail(log, ULOG_EINVAL, "delete_records: NULL topic");
    ulog__part *p;
    int err = ulog__part_get(log, topic, partition, &p);
    if (err)
        return err;
    int64_t high = __atomic_load_n(&p->h->committed, __ATOMIC_ACQUIRE);
    if (offset < 0 || offset > high)
        return ulog__fail(log, ULOG_EOFFSET,
                          "topic %s partition %d: offset %lld is not in [0, %lld]", topic,
                          (int)partition, (long long)offset, (long long)high);
    if (offset <= __atomic_load_n(&p->h->low, __ATOMIC_ACQUIRE))
        return 0;
    /* Durable up to offset first: a log start past the durable end would
     * outlive a power cut that takes the records below it, and then hide
     * the ones written again at those offsets. */
    clean_run run = { .pr = { .struct_size = sizeof run.pr }, .now_ms = ulog__now_ms() };
    /* One at a time with retention and compaction runs, in every process:
     * a compaction renames a merged file over its group's first segment,
     * which a deletion that listed the segments before that could take
     * for one wholly below the new log start. */
    int lockfd = -1;
    err = clean_lock(log, true, &lockfd);
    if (!err)
        err = ulog__part_sync_background(p);
    if (!err)
        err = ulog__compact_finish(p);      /* see clean_partition */
    if (!err)
        err = move_log_start(p, offset, &run);
    if (lockfd >= 0)
        close(lockfd);
    return err ? ulog__fail(log, err, "topic %s partition %d: delete_records: %s", topic,
                            (int)partition, ulog_strerror(err))
               : 0;
}

int ulog_partition_start_at(ulog *log, const char *topic, int32_t partition, int64_t offset)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic)
        return ulog__fail(log, ULOG_EINVAL, "partition_start_at: NULL topic");
    ulog__part *p;
    int err = ulog__part_get(log, topic, partition, &p);
    if (err)
        return err;
    /* Room above it for a batch's offsets: the end never overflows. */
    if (offset < 0 || offset > INT64_MAX - INT32_MAX - 1)
        return ulog__fail(log, ULOG_EOFFSET, "topic %s partition %d: start_at %lld: out of "
                          "range", topic, (int)partition, (long long)offset);
    /* Under the clean lock, as ulog_delete_records: a compaction renames
     * files the removal below must not take for old ones. */
    clean_run run = { .pr = { .struct_size = sizeof run.pr }, .now_ms = ulog__now_ms() };
    int lockfd = -1;
    err = clean_lock(log, true, &lockfd);
    if (!err)
        err = ulog__compact_finish(p);
    if (!err)
        err = ulog__part_start_at(p, offset, run.now_ms);
    /* At the end: the records below go as DeleteRecords takes them (after
     * a sync, so that offset is committed), and the end stays. */
    if (err == 1 && (err = ulog__part_sync_background(p)) == 0)
        err = move_log_start(p, offset, &run);
    if (lockfd >= 0)
        close(lockfd);
    return err;
}

/* ---------------------------------------------------------------- pins report */

struct ulog_pins {
    ulog_pin *v;
    size_t    n, cap;
    char    (*names)[ULOG__NAME_MAX + 1];
};

void ulog_pins_free(ulog_pins *pins)
{
    if (!pins)
        return;
    free(pins->v);
    free(pins->names);
    free(pins);
}

size_t ulog_pins_count(const ulog_pins *pins)
{
    return pins ? pins->n : 0;
}

int ulog_pins_get(const ulog_pins *pins, size_t i, ulog_pin *out)
{
    if (!pins || !out || i >= pins->n || out->struct_size < sizeof *out)
        return ULOG_EINVAL;
    *out = pins->v[i];
    out->group = pins->names[i];
    return 0;
}

static int pins_push(ulog_pins *r, const char *group, int32_t partition, int64_t committed,
                     int64_t bytes)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        ulog_pin *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return ULOG_ENOMEM;
        r->v = v;
        char (*nm)[ULOG__NAME_MAX + 1] = realloc(r->names, cap * sizeof *nm);
        if (!nm)
            return ULOG_ENOMEM;
        r->names = nm;
        r->cap = cap;
    }
    snprintf(r->names[r->n], sizeof r->names[r->n], "%s", group);
    r->v[r->n++] = (ulog_pin){ sizeof(ulog_pin), NULL, partition, committed, bytes };
    return 0;
}

/* Bytes of the segments [from, to) of a plan. */
static int64_t plan_bytes(const plan *pl, size_t from, size_t to)
{
    int64_t b = 0;
    for (size_t i = from; i < to; i++)
        b += pl->size[i];
    return b;
}

int ulog_retention_pins(ulog *log, const char *topic, ulog_pins **out)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !out)
        return ulog__fail(log, ULOG_EINVAL, "retention_pins: NULL topic or out");
    *out = NULL;
    ulog__topic *t;
    int err = ulog__topic_get(log, topic, &t);
    if (err)
        return err;
    ulog_pins *r = calloc(1, sizeof *r);
    if (!r)
        return ulog__fail(log, ULOG_ENOMEM, "retention_pins: out of memory");
    const ulog__topic_cfg *c = ulog__cfg(t);
    int64_t now = ulog__now_ms();
    for (int32_t k = 0; k < t->partitions && !err && c->retention_groups[0]; k++) {
        ulog__part *p = &t->parts[k];
        plan pl;
        if ((err = plan_partition(p, c, now, false, &pl)) != 0)
            break;
        pin_list l;
        err = pins_of(p, c, &l);
        int64_t low = __atomic_load_n(&p->h->low, __ATOMIC_ACQUIRE);
        for (size_t i = 0; i < l.n && !err; i++) {
            /* What the policy would delete that this group still needs. */
            size_t kg = segs_below(&pl, l.v[i].committed < 0 ? low : l.v[i].committed);
            if (kg < pl.k_low)
                kg = pl.k_low;
            err = pins_push(r, l.v[i].group, k, l.v[i].committed,
                            kg < pl.k_policy ? plan_bytes(&pl, kg, pl.k_policy) : 0);
        }
        free(l.v);
        plan_free(&pl);
    }
    if (err) {
        ulog_pins_free(r);
        return ulog__fail(log, err, "topic %s: retention pins: %s", topic, ulog_strerror(err));
    }
    *out = r;
    return 0;
}
