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
 * The background run happens in the flusher thread of every open handle,
 * every retention.check.ms, over the topics that handle has open; an flock
 * on meta/clean.lock lets one process at a time do it.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
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
} clean_run;

/* ---------------------------------------------------------------- time */

/* The largest timestamp of the batches from `pos` to the end of segment
 * `seg` (INT64_MIN for none). Headers only; a batch that does not parse
 * ends the walk (the part after it is not committed, or not whole). */
static int max_ts_from(ulog__part *p, int64_t seg, int64_t pos, int64_t *out)
{
    int fd;
    int err = ulog__seg_open(p->dirfd, seg, false, &fd);
    if (err)
        return err;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = ulog__errno_to_err(errno);
        close(fd);
        return err;
    }
    *out = INT64_MIN;
    while (pos + ULOG__BATCH_HEADER_SIZE <= st.st_size) {
        uint8_t hdr[ULOG__BATCH_HEADER_SIZE];
        ulog__batch_hdr h;
        if (pread(fd, hdr, sizeof hdr, pos) != (ssize_t)sizeof hdr ||
            ulog__batch_parse_header(hdr, sizeof hdr, &h) != 0 || h.batch_length <= 0)
            break;
        if (h.max_timestamp > *out)
            *out = h.max_timestamp;
        pos += ULOG__BATCH_LOG_OVERHEAD + (int64_t)h.batch_length;
    }
    close(fd);
    return 0;
}

/* The largest timestamp of any record up to the end of segment v[i]
 * (whose successor starts at `next`), given *running for the segments
 * before it. */
static int max_ts_through(ulog__part *p, int64_t seg, int64_t next, int64_t *running)
{
    ulog__index_entry e;
    int64_t from = 0, m = INT64_MIN;
    if (ulog__meta_index_floor(p->topic->log->meta, p->topic->id, p->id, next - 1, &e) == 0 &&
        e.segment == seg && e.pos >= 0) {
        from = e.pos;
        if (e.max_timestamp > *running)
            *running = e.max_timestamp;
    }
    int err = max_ts_from(p, seg, from, &m);
    if (!err && m > *running)
        *running = m;
    return err;
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
    for (size_t i = 0; i + 1 < n && v[i + 1] <= low; i++) {
        char name[ULOG__SEG_NAME_LEN + 1];
        struct stat st;
        ulog__seg_name(name, v[i]);
        if (fstatat(p->dirfd, name, &st, 0) == 0)
            bytes += st.st_size;
    }
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

static int clean_partition(ulog__part *p, clean_run *run)
{
    const ulog__topic_cfg *c = ulog__cfg(p->topic);
    ulog__head *h = p->h;
    bool rolled;
    int err = 0;
    if (c->segment_ms > 0 && run->now_ms - c->segment_ms > 0)
        err = ulog__part_roll_if_older(p, run->now_ms - c->segment_ms, &rolled);
    int64_t *v;
    size_t n;
    if (err || (err = ulog__seg_list(p->dirfd, &v, &n)) != 0)
        return err;
    int64_t low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
    int64_t committed = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
    /* k: segments v[0..k) go. Never the last (active) one, and only
     * segments whose every record is committed. Below the log start
     * (DeleteRecords) they go whatever the settings. */
    size_t k = 0;
    while (k + 1 < n && v[k + 1] <= low)
        k++;
    if (c->retention_bytes >= 0) {
        int64_t total = 0, *size = calloc(n, sizeof *size);
        if (!size) {
            free(v);
            return ULOG_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            char name[ULOG__SEG_NAME_LEN + 1];
            struct stat st;
            ulog__seg_name(name, v[i]);
            size[i] = fstatat(p->dirfd, name, &st, 0) == 0 ? st.st_size : 0;
            total += size[i];
        }
        size_t kb = 0;
        while (kb + 1 < n && v[kb + 1] <= committed && total - size[kb] >= c->retention_bytes)
            total -= size[kb++];
        if (kb > k)
            k = kb;
        free(size);
    }
    if (c->retention_ms >= 0) {
        int64_t cutoff = run->now_ms - c->retention_ms, running = INT64_MIN;
        for (size_t i = 0; i + 1 < n && v[i + 1] <= committed; i++) {
            if ((err = max_ts_through(p, v[i], v[i + 1], &running)) != 0 || running >= cutoff)
                break;
            if (i + 1 > k)
                k = i + 1;
        }
    }
    int64_t to = k > 0 && v[k] > low ? v[k] : low;
    free(v);
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
        clean_run run = { .pr = { .struct_size = sizeof run.pr }, .now_ms = ulog__now_ms() };
        for (size_t i = 0; i < n; i++)
            run.pr.partitions_total += v[i]->partitions;
        for (size_t i = 0; i < n; i++)
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
    if (flags != ULOG_CLEAN_RETENTION)
        return ulog__fail(log, ULOG_EINVAL, "clean: flags must be ULOG_CLEAN_RETENTION");
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
    clean_run run = { .cb = cb, .arg = arg, .pr = { .struct_size = sizeof run.pr } };
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
    clean_run run = { .pr = { .struct_size = sizeof run.pr }, .now_ms = ulog__now_ms() };
    err = move_log_start(p, offset, &run);
    return err ? ulog__fail(log, err, "topic %s partition %d: delete_records: %s", topic,
                            (int)partition, ulog_strerror(err))
               : 0;
}
