/*
 * partition.c -- the append path of one partition: the writer lock, segment
 * rolls, the write mark, publishing, group commit, the fsync-failure rule,
 * and the buffered index entries.
 *
 * A write, under h->wlock:
 *   1. repair if the previous holder died mid-write (mark set);
 *   2. roll to a new segment when this batch would pass segment.bytes (the
 *      new file and its directory entry are fsynced first);
 *   3. record the mark (the write end before this write), set `marked`;
 *   4. patch baseOffset, pwrite at the end position;
 *   5. advance the write end, note an index entry, clear `marked`;
 *   6. none/interval: committed = write end, ring the bell.
 * flush.policy always then goes through ulog__part_sync: one process at a
 * time (h->slock) fdatasyncs everything written so far, for every waiter in
 * every process, and moves `committed`.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define INDEX_BUF_CAP 8192
/* none: sync in the background this often, only so that a recovery after
 * a reboot has a recent checkpoint to start from. */
#define NONE_SYNC_MS 10000

size_t ulog__part_map_reserve(const ulog__part *p)
{
    const ulog__topic_cfg *c = ulog__cfg(p->topic);
    return (size_t)(c->segment_bytes + c->max_message_bytes);
}

static int part_fail(ulog__part *p, int err, const char *what)
{
    return ulog__fail(p->topic->log, err, "topic %s partition %d: %s: %s",
                      p->topic->name, (int)p->id, what, ulog_strerror(err));
}

/* Takes the file lock that serialises head initialisation across
 * processes; the writer lock itself lives in the head. */
static int file_lock(int dirfd, int mode, int *fd_out)
{
    int fd = openat(dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int err = ulog__errno_to_err(errno);
            close(fd);
            return err;
        }
    }
    *fd_out = fd;
    return 0;
}

static int unpoison(ulog__part *p);

int ulog__part_open(ulog__topic *t, int32_t id, ulog__part *p)
{
    ulog *log = t->log;
    memset(p, 0, sizeof *p);
    p->topic = t;
    p->id = id;
    p->dirfd = p->wfd = p->sfd = p->headfd = -1;
    p->truncated_from = -1;
    p->cp_written = -1;
    p->last_sync_ms = ulog__mono_ms();
    if (pthread_mutex_init(&p->ilock, NULL) != 0)
        return ULOG_ENOMEM;
    p->ilock_ok = true;

    char rel[300];
    snprintf(rel, sizeof rel, "%s/%d", t->name, (int)id);
    int err = 0, lockfd = -1;
    bool alone = false;
    p->dirfd = openat(log->topicsfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* Missing while the catalog lists it: a delete has renamed it. */
    if (p->dirfd < 0)
        err = ulog__errno_to_err(errno);
    if (!err)
        err = file_lock(p->dirfd, log->cfg.file_mode, &lockfd);
    if (!err)
        err = ulog__head_map(p->dirfd, log->cfg.file_mode, &p->h, &p->headfd, &alone);
    if (!err)   /* before anything below can ring it */
        p->bell = id == 0 ? p->h : t->parts[0].h;
    /* Another build's head: replace it only when nobody uses it. */
    if (!err && ulog__head_foreign(p->h, log->boot_id) && !alone)
        err = ULOG_EVERSION;
    if (!err && !ulog__head_valid(p->h, log->boot_id)) {
        ulog__checkpoint cp;
        ulog__pos from, *fromp = NULL;
        int cerr = ulog__meta_checkpoint_get(log->meta, t->id, id, &cp);
        ulog__index_entry e;
        if (cerr == 0) {
            /* The checkpoint picks the segment; the scan starts at the last
             * index entry below it, so that the offset it claims is derived
             * again from verified batches (LMDB holds hints, not truth).
             * A bad entry makes the scan verify the segment from its start. */
            from = (ulog__pos){ cp.segment, cp.segment, 0 };
            if (cp.offset > 0 &&
                ulog__meta_index_floor(log->meta, t->id, id, cp.offset - 1, &e) == 0 &&
                e.segment == cp.segment && e.pos >= 0 && e.pos <= cp.pos)
                from = (ulog__pos){ e.offset, e.segment, e.pos };
            fromp = &from;
        } else if (cerr != ULOG_ENOENT) {
            err = cerr;
        }
        /* Segments wholly below the log start are gone already for
         * readers: a retention run or DeleteRecords cut short by a crash
         * left them (maybe with a gap: unlinks are not ordered on disk
         * without a journal). They go before the scan, which would take a
         * gap for a torn log and cut everything after it. */
        /* A compaction swap cut short after its commit point: the old
         * segments it replaces overlap the new file until it is finished,
         * and the scan would take the overlap for a torn log. */
        if (!err)
            err = ulog__compact_finish(p);
        ulog__part_state ps = { 0, 0, 0, 0, -1, -1, 0, 0 };
        int serr = ulog__meta_part_state_get(log->meta, t->id, id, &ps);
        if (serr && serr != ULOG_ENOENT && !err)
            err = serr;
        int64_t dropped, dropped_bytes;
        if (!err && ps.log_start > 0)
            err = ulog__seg_drop_below(p->dirfd, ps.log_start, &dropped, &dropped_bytes);
        ulog__scan_result scan;
        if (!err)
            err = ulog__recover_scan(p->dirfd, fromp, ps.rewritten, log->cfg.file_mode,
                                     &scan);
        /* The log start may lie inside the first segment (DeleteRecords).
         * Past the end it cannot stay: offsets from the end on will be
         * given again (a power cut took records that were not durable). */
        if (!err && ps.log_start > scan.end.offset)
            err = ulog__meta_part_state_set_start(log->meta, t->id, id, scan.end.offset);
        if (!err && ps.log_start > scan.low)
            scan.low = ps.log_start < scan.end.offset ? ps.log_start : scan.end.offset;
        if (!err && fromp && cp.max_timestamp > scan.max_timestamp)
            scan.max_timestamp = cp.max_timestamp;
        /* Index entries past the new end would point at bytes that are
         * gone or will hold other batches. */
        if (!err)
            err = ulog__meta_truncate(log->meta, t->id, id, scan.end.offset);
        scan.compacted = ps.rewritten;
        if (!err)
            err = ulog__head_init(p->h, log->boot_id, &scan);
    }
    /* Sleeper counts left by processes killed while asleep would make
     * every publish pay a futex wake; with no other user they are 0. */
    if (!err && alone) {
        __atomic_store_n(&p->h->bell_waiters, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&p->h->sync_waiters, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&p->h->gather_timer, 0, __ATOMIC_SEQ_CST);
    }
    if (lockfd >= 0)
        close(lockfd);      /* releases the flock */
    if (!err)
        err = ulog__part_catch_up_low(p);
    if (!err && __atomic_load_n(&p->h->poisoned, __ATOMIC_ACQUIRE))
        err = unpoison(p);
    if (err) {
        ulog__fail(log, err, "topic %s partition %d: open: %s", t->name, (int)id,
                   ulog_strerror(err));
        ulog__part_close(p);
    }
    return err;
}

void ulog__part_close(ulog__part *p)
{
    if (p->wfd >= 0)
        close(p->wfd);
    if (p->sfd >= 0)
        close(p->sfd);
    if (p->dirfd >= 0)
        close(p->dirfd);
    ulog__head_unmap(p->h);
    if (p->headfd >= 0)
        close(p->headfd);
    free(p->ibuf);
    if (p->ilock_ok)
        pthread_mutex_destroy(&p->ilock);
    memset(p, 0, sizeof *p);
    p->dirfd = p->wfd = p->sfd = p->headfd = -1;
}

/* A descriptor for segment `seg` of the current generation, cached. */
static int seg_fd(ulog__part *p, int *fd, int64_t *fd_seg, uint32_t *fd_gen, int64_t seg)
{
    uint32_t gen = __atomic_load_n(&p->h->gen, __ATOMIC_ACQUIRE);
    if (*fd >= 0 && *fd_seg == seg && *fd_gen == gen)
        return 0;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    int err = ulog__seg_open(p->dirfd, seg, true, fd);
    if (err)
        return err;
    *fd_seg = seg;
    *fd_gen = gen;
    return 0;
}

/* Drops buffered index entries at or past `from` and tells the flusher to
 * delete the stored ones. */
static void index_truncate(ulog__part *p, int64_t from)
{
    pthread_mutex_lock(&p->ilock);
    size_t k = 0;
    for (size_t i = 0; i < p->icount; i++)
        if (p->ibuf[i].offset < from)
            p->ibuf[k++] = p->ibuf[i];
    p->icount = k;
    if (p->truncated_from < 0 || from < p->truncated_from)
        p->truncated_from = from;
    pthread_mutex_unlock(&p->ilock);
}

/* Cuts the partition back to `to` (under wlock): files, write end, and a
 * new generation so every process reopens its descriptors. */
static int cut_to(ulog__part *p, const ulog__pos *to)
{
    ulog__head *h = p->h;
    int err = ulog__recover_cut(p->dirfd, to);
    if (err)
        return err;
    h->wend = *to;
    h->index_pos = -1;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELEASE);
    index_truncate(p, to->offset);
    return 0;
}

/* Records a cut back to `offset` as failure epoch e+1 (under wlock). */
static void publish_cut(ulog__head *h, int64_t offset, int err)
{
    uint32_t e = __atomic_load_n(&h->fail_epoch, __ATOMIC_ACQUIRE);
    /* Atomic: waiters read the ring without a lock (lost_since). Release,
     * so that a waiter that reads a slot's new value also sees the epoch
     * that reused the slot. */
    __atomic_store_n(&h->fail_at[(e + 1) % ULOG__FAIL_RING], offset, __ATOMIC_RELEASE);
    __atomic_store_n(&h->fail_err[(e + 1) % ULOG__FAIL_RING], err, __ATOMIC_RELEASE);
    __atomic_store_n(&h->fail_epoch, e + 1, __ATOMIC_RELEASE);
}

static void start_at_locked(ulog__part *p, int64_t offset);

/* The previous holder of wlock died with a write in flight: nothing past
 * the mark was published, so cut it off. Or it died in a start_at past
 * its commit point (the catalog's log start beyond the mark, which
 * nothing else can do): that is finished instead. */
static int repair(ulog__part *p)
{
    ulog__head *h = p->h;
    if (!__atomic_load_n(&h->marked, __ATOMIC_ACQUIRE))
        return 0;
    ulog__part_state ps;
    int err = ulog__meta_part_state_get(p->topic->log->meta, p->topic->id, p->id, &ps);
    if (err && err != ULOG_ENOENT)
        return part_fail(p, err, "reading the log start for a dead writer's repair");
    if (!err && ps.log_start > h->mark.offset) {
        start_at_locked(p, ps.log_start);
        return 0;
    }
    /* Every cut is published as a failure before a byte goes: a dead
     * fsync-failure leader may not have published its own, and a waiter
     * whose batch is past the mark must learn it was cut (for a dead
     * writer's own mark no waiter is past it, so this fails no one). */
    publish_cut(h, h->mark.offset, ULOG_EIO);
    err = cut_to(p, &h->mark);
    if (err) {
        __atomic_store_n(&h->poisoned, 1, __ATOMIC_RELEASE);
        return part_fail(p, err, "cutting a dead writer's partial write");
    }
    __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
    return 0;
}

static int wlock(ulog__part *p)
{
    bool died;
    int err = ulog__mutex_lock(&p->h->wlock, &died);
    if (err)
        return part_fail(p, err, "writer lock");
    err = repair(p);
    if (err)
        ulog__mutex_unlock(&p->h->wlock);
    return err;
}

static void index_note(ulog__part *p, int64_t offset, int64_t seg, int64_t pos)
{
    ulog__head *h = p->h;
    if (h->index_pos >= 0 && pos - h->index_pos < ulog__cfg(p->topic)->index_interval_bytes)
        return;
    h->index_pos = pos;
    bool kick = false;
    pthread_mutex_lock(&p->ilock);
    /* Grown on demand: most partitions of a process never write. */
    if (p->icount == p->icap && p->icap < INDEX_BUF_CAP) {
        size_t cap = p->icap ? 2 * p->icap : 64;
        ulog__index_entry *nb = realloc(p->ibuf, cap * sizeof *nb);
        if (nb) {
            p->ibuf = nb;
            p->icap = cap;
        }
    }
    if (p->icount < p->icap) {
        p->ibuf[p->icount++] = (ulog__index_entry){
            .topic_id = p->topic->id, .partition = p->id, .offset = offset,
            .segment = seg, .pos = pos, .max_timestamp = h->max_ts };
        kick = p->icount == INDEX_BUF_CAP / 2;
    }
    /* A full buffer drops the entry: the index is a hint, a missing entry
     * costs a longer scan, never a wrong answer. */
    pthread_mutex_unlock(&p->ilock);
    if (kick)
        ulog__flusher_kick(p->topic->log);
}


/* The roll's trim and the undo's cut fsync a segment outside the sync path
 * (under wlock). When one fails, bytes written before the mark and not yet
 * synced are undefined, as after a failed sync, and a later fdatasync may
 * "succeed" without them: poisoned, the durable end stays put (sync_locked)
 * and the next open rewrites from it (section 4). With nothing unsynced
 * below the mark nothing can be lost, and the next holder's repair retries
 * the cut as before. */
static void poison_if_unsynced(ulog__head *h)
{
    if (ulog__head_synced(h).offset < h->mark.offset)
        __atomic_store_n(&h->poisoned, 1, __ATOMIC_RELEASE);
}

/*
 * An fdatasync that also grows the file writes the inode as well as the
 * data: under flush.policy always, every append. So an always topic's
 * active segment is sized ahead of its data, SIZE_AHEAD bytes at a time
 * (a preallocating topic's to segment.bytes at once), and its appends land
 * inside the file: measured 1.5x the fdatasync'd appends per second of a
 * file that grows with each write, as fast as a segment preallocated
 * whole. The zeros past the write end are cut by the roll and by recovery,
 * like a torn tail; readers never look past the committed end.
 * A fallocate that fails costs only the speed: the write grows the file
 * itself (and reports a full disk itself). On a full disk it may have
 * taken the last free blocks for zeros, which other partitions and the
 * catalog need more: the file goes back to its data, and no sizing is
 * tried again for another SIZE_AHEAD bytes. Caller holds wlock; wfd is open.
 */
#define SIZE_AHEAD (256 << 10)

static void size_ahead(ulog__part *p, const ulog__topic_cfg *c, int64_t need)
{
    if (need <= p->wfd_sized || p->no_fallocate ||
        (!c->preallocate && c->flush_policy != ULOG__FLUSH_ALWAYS))
        return;
    int64_t to = c->preallocate ? c->segment_bytes
                                : (need + SIZE_AHEAD - 1) / SIZE_AHEAD * SIZE_AHEAD;
    if (to > c->segment_bytes)
        to = c->segment_bytes;
    if (to < need)
        to = need;
    if (fallocate(p->wfd, 0, 0, (off_t)to) == 0) {
        p->wfd_sized = to;
    } else if (errno == EOPNOTSUPP || errno == ENOSYS) {
        p->no_fallocate = true;
    } else {
        if (ftruncate(p->wfd, (off_t)p->h->wend.pos) != 0) {
            /* Zeros past the data: the roll or recovery cuts them. */
        }
        p->wfd_sized = need + SIZE_AHEAD;
    }
}

/* Starts a new segment at the write end (caller holds wlock, and the
 * current segment holds batches). The closed segment ends at its last
 * batch (a preallocated or torn tail is cut, durably) before anything goes
 * into the next: readers and recovery find a segment's end by its size.
 * The new generation makes readers read that size again. */
static int roll_locked(ulog__part *p, const ulog__topic_cfg *c)
{
    ulog__head *h = p->h;
    int fd;
    int err = seg_fd(p, &p->wfd, &p->wfd_seg, &p->wfd_gen, h->wend.segment);
    if (!err && (err = ulog__seg_trim(p->wfd, h->wend.pos)) != 0)
        poison_if_unsynced(h);
    if (!err)
        err = ulog__seg_create(p->dirfd, h->wend.offset, p->topic->log->cfg.file_mode,
                               c->preallocate ? c->segment_bytes : 0, &fd);
    if (err)
        return err;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELEASE);
    if (p->wfd >= 0)
        close(p->wfd);
    p->wfd = fd;
    p->wfd_seg = h->wend.offset;
    p->wfd_gen = __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
    p->wfd_sized = 0;
    h->wend.segment = h->wend.offset;
    h->wend.pos = 0;
    h->index_pos = -1;
    return 0;
}

int ulog__part_roll_if_older(ulog__part *p, int64_t before_ms, bool *rolled)
{
    ulog__head *h = p->h;
    *rolled = false;
    int err = wlock(p);
    if (err)
        return err;
    if (__atomic_load_n(&h->deleted, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE) || h->wend.pos == 0) {
        ulog__mutex_unlock(&h->wlock);
        return 0;
    }
    /* The first batch's timestamp dates the segment, as in Kafka. */
    uint8_t hdr[ULOG__BATCH_HEADER_SIZE];
    ulog__batch_hdr bh;
    err = seg_fd(p, &p->wfd, &p->wfd_seg, &p->wfd_gen, h->wend.segment);
    if (!err && (pread(p->wfd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
                 ulog__batch_parse_header(hdr, sizeof hdr, &bh) != 0))
        err = ULOG_ECORRUPT;
    if (!err && bh.base_timestamp < before_ms) {
        h->mark = h->wend;
        __atomic_store_n(&h->marked, 1, __ATOMIC_RELEASE);
        err = roll_locked(p, ulog__cfg(p->topic));
        /* Nothing was written past the mark: a failed roll leaves the
         * files as they were, or a segment the next roll reuses. */
        __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
        *rolled = err == 0;
    }
    ulog__mutex_unlock(&h->wlock);
    return err ? part_fail(p, err, "rolling an idle segment") : 0;
}

static void raise_to(int64_t *v, int64_t to)
{
    int64_t cur = __atomic_load_n(v, __ATOMIC_ACQUIRE);
    while (to > cur && !__atomic_compare_exchange_n(v, &cur, to, false, __ATOMIC_ACQ_REL,
                                                     __ATOMIC_ACQUIRE))
        ;
}

/* The head's side of a start_at, past its commit point (under wlock):
 * the partition is the empty segment `offset`. Every process reopens its
 * descriptors (gen); the files below go afterwards, oldest first. */
static void start_at_locked(ulog__part *p, int64_t offset)
{
    ulog__head *h = p->h;
    h->wend = (ulog__pos){ offset, offset, 0 };
    h->mark = h->wend;
    h->index_pos = -1;
    __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELEASE);
    /* Low first: a reader that sees the new committed end must not walk
     * from the old segments into the new one. */
    ulog__head_raise_low(h, offset);
    __atomic_store_n(&h->committed, offset, __ATOMIC_RELEASE);
    /* The new segment and its entry are durable (step 2). A repair holds
     * no slock, but no sync leader can have taken its snapshot since the
     * dead holder's: each takes wlock, and so runs this repair, first. */
    ulog__head_set_synced(h, &h->wend);
    /* Nothing below offset exists to wait for shipping. */
    raise_to(&h->replicated, offset);
    __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
    /* What this process noted is all below the log start now. */
    pthread_mutex_lock(&p->ilock);
    p->icount = 0;
    pthread_mutex_unlock(&p->ilock);
}

int ulog__part_catch_up_low(ulog__part *p)
{
    ulog__part_state ps;
    int err = ulog__meta_part_state_get(p->topic->log->meta, p->topic->id, p->id, &ps);
    if (err)
        return err == ULOG_ENOENT ? 0 : err;
    int64_t c = __atomic_load_n(&p->h->committed, __ATOMIC_ACQUIRE);
    ulog__head_raise_low(p->h, ps.log_start < c ? ps.log_start : c);
    return 0;
}

void ulog__head_raise_low(ulog__head *h, int64_t low)
{
    raise_to(&h->low, low);
}

void ulog__head_raise_compacted(ulog__head *h, int64_t to)
{
    raise_to(&h->compacted, to);
}

int ulog__part_write(ulog__part *p, const ulog__topic_cfg *c, uint8_t *buf, size_t size,
                     uint32_t noff, int64_t max_ts, int64_t raw_base, ulog__written *out)
{
    ulog__head *h = p->h;
    int err = wlock(p);
    if (err)
        return err;
    if (__atomic_load_n(&h->deleted, __ATOMIC_ACQUIRE)) {
        ulog__mutex_unlock(&h->wlock);
        return part_fail(p, ULOG_ENOENT, "append: the topic was deleted");
    }
    if (__atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE)) {
        ulog__mutex_unlock(&h->wlock);
        return part_fail(p, ULOG_EPOISONED, "append");
    }
    if (raw_base >= 0 && raw_base != h->wend.offset) {
        out->base = h->wend.offset;
        ulog__mutex_unlock(&h->wlock);
        return ULOG_EOFFSET;
    }
    h->mark = h->wend;
    __atomic_store_n(&h->marked, 1, __ATOMIC_RELEASE);

    if (h->wend.pos > 0 && h->wend.pos + (int64_t)size > c->segment_bytes &&
        (err = roll_locked(p, c)) != 0)
        goto undo;
    int64_t was = p->wfd_seg;
    uint32_t was_gen = p->wfd_gen;
    err = seg_fd(p, &p->wfd, &p->wfd_seg, &p->wfd_gen, h->wend.segment);
    if (err)
        goto undo;
    if (p->wfd_seg != was || p->wfd_gen != was_gen)
        p->wfd_sized = 0;       /* another file, or cut since */
    size_ahead(p, c, h->wend.pos + (int64_t)size);
    /* fail_epoch moves only under wlock. */
    uint32_t epoch = __atomic_load_n(&h->fail_epoch, __ATOMIC_ACQUIRE);
    uint32_t stored_epoch = epoch;
    int64_t base = h->wend.offset;
    if (raw_base < 0) {
        ulog__batch_set_base_offset(buf, base);
        ulog__batch_set_leader_epoch(buf, epoch);
    } else {
        ulog__batch_hdr bh;
        ulog__batch_parse_header(buf, size, &bh);     /* verified by the caller */
        stored_epoch = (uint32_t)bh.leader_epoch;
    }
    err = ulog__pwrite_all(p->wfd, buf, size, h->wend.pos);
    if (err)
        goto undo;
    int64_t pos = h->wend.pos;
    h->wend.offset = base + noff;
    h->wend.pos += (int64_t)size;
    if (max_ts > h->max_ts)
        __atomic_store_n(&h->max_ts, max_ts, __ATOMIC_RELAXED);  /* the flusher reads it */
    index_note(p, base, h->wend.segment, pos);
    __atomic_add_fetch(&h->batches, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
    if (!p->appended)
        __atomic_store_n(&p->appended, true, __ATOMIC_RELAXED);
    bool publish = c->flush_policy != ULOG__FLUSH_ALWAYS;
    if (publish)
        __atomic_store_n(&h->committed, h->wend.offset, __ATOMIC_RELEASE);
    *out = (ulog__written){ .base = base, .end = h->wend.offset,
                            .segment = h->wend.segment, .pos = pos, .epoch = epoch,
                            .stored_epoch = stored_epoch };
    ulog__mutex_unlock(&h->wlock);
    /* After the unlock: the wake (a system call when someone sleeps) need
     * not hold up the next writer. */
    if (publish)
        ulog__bell_ring(p->bell);
    return 0;

undo:
    /* Nothing of this write was published: cut back to the mark. A failed
     * cut leaves `marked` set, so the next holder tries again. */
    if (cut_to(p, &h->mark) == 0)
        __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
    else
        poison_if_unsynced(h);
    ulog__mutex_unlock(&h->wlock);
    return part_fail(p, err, "write");
}

/* Whether batch w, now committed, is still the one at its place: a batch
 * written there after a cut has another base or a later epoch. 0 if it is,
 * else the error that lost it (`err`, or the read's). */
static int still_there(ulog__part *p, const ulog__written *w, int err)
{
    uint8_t hdr[ULOG__BATCH_HEADER_SIZE];
    int fd;
    int rerr = ulog__seg_open(p->dirfd, w->segment, false, &fd);
    if (rerr)
        return rerr == ULOG_ENOENT ? err : rerr;
    ssize_t n = pread(fd, hdr, sizeof hdr, w->pos);
    close(fd);
    if (n < 0)
        return ulog__errno_to_err(errno);
    ulog__batch_hdr bh;
    if (n != (ssize_t)sizeof hdr || ulog__batch_parse_header(hdr, sizeof hdr, &bh) != 0)
        return err;
    return bh.base_offset == w->base && (uint32_t)bh.leader_epoch == w->stored_epoch ? 0 : err;
}

/* Whether batch w was cut by an fsync failure since it was written: 0, or
 * the failure's error. */
static int lost_since(ulog__part *p, const ulog__written *w)
{
    const ulog__head *h = p->h;
    uint32_t now = __atomic_load_n(&h->fail_epoch, __ATOMIC_ACQUIRE);
    if (now == w->epoch)
        return 0;
    /* Slot k is reused by the cut FAIL_RING after it, whose leader finds
     * fail_epoch at epoch + FAIL_RING and writes the slot before it
     * publishes: from then on the slot cannot be trusted. */
    uint32_t k = (w->epoch + 1) % ULOG__FAIL_RING;
    int64_t at = 0;
    int32_t err = 0;
    if (now - w->epoch < ULOG__FAIL_RING) {
        /* Acquire, pairing with publish_cut's release stores: a value
         * from a reused slot shows as an epoch that has moved on. */
        at = __atomic_load_n(&h->fail_at[k], __ATOMIC_ACQUIRE);
        err = __atomic_load_n(&h->fail_err[k], __ATOMIC_ACQUIRE);
        now = __atomic_load_n(&h->fail_epoch, __ATOMIC_ACQUIRE);
    }
    if (now - w->epoch >= ULOG__FAIL_RING) {
        /* The ring has lapped (this appender slept through FAIL_RING cuts).
         * Every cut is at the durable end, so if the first one after the
         * write kept the batch, it was durable and is committed now (the
         * failed leaders since repaired `committed` if one died); then the
         * batch at its place tells by its epoch. */
        int e = __atomic_load_n(&h->fail_err[now % ULOG__FAIL_RING], __ATOMIC_RELAXED);
        if (!e)
            e = ULOG_EIO;
        if (__atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) < w->end)
            return e;
        return still_there(p, w, e);
    }
    /* The first cut after the write decides: it kept offsets below it. */
    return w->end > at ? (err ? err : ULOG_EIO) : 0;
}

static void sunlock(ulog__part *p);

void ulog__part_release_files(ulog__part *p)
{
    bool died;
    if (ulog__mutex_lock(&p->h->slock, &died) == 0) {
        if (p->sfd >= 0)
            close(p->sfd);
        p->sfd = -1;
        sunlock(p);
    }
    if (ulog__mutex_lock(&p->h->wlock, &died) == 0) {
        if (p->wfd >= 0)
            close(p->wfd);
        p->wfd = -1;
        ulog__mutex_unlock(&p->h->wlock);
    }
}

void ulog__part_mark_deleted(ulog__part *p)
{
    bool died;
    /* Under wlock: once it is set no write is in flight or to come. A
     * dead holder's tail needs no repair; the files are going. */
    int err = ulog__mutex_lock(&p->h->wlock, &died);
    __atomic_store_n(&p->h->deleted, 1, __ATOMIC_RELEASE);
    if (!err)
        ulog__mutex_unlock(&p->h->wlock);
    ulog__bell_ring(p->bell);
}

/* A leader died after making bytes durable but maybe before moving
 * `committed`: what synced[] says is durable may be committed. */
static void slock_repair(ulog__part *p)
{
    ulog__pos s = ulog__head_synced(p->h);
    int64_t c = __atomic_load_n(&p->h->committed, __ATOMIC_ACQUIRE);
    if (s.offset > c && ulog__cfg(p->topic)->flush_policy == ULOG__FLUSH_ALWAYS) {
        __atomic_store_n(&p->h->committed, s.offset, __ATOMIC_RELEASE);
        ulog__bell_ring(p->bell);
    }
}

static int slock(ulog__part *p)
{
    bool died;
    int err = ulog__mutex_lock(&p->h->slock, &died);
    if (err)
        return part_fail(p, err, "sync lock");
    if (died)
        slock_repair(p);
    return 0;
}

/* Ends a leadership: followers sleeping on sync_seq look again. */
static void sunlock(ulog__part *p)
{
    ulog__head *h = p->h;
    /* Unlock first: a follower that reads the new sync_seq must then find
     * slock free, or a later leader's sunlock is still to come. */
    ulog__mutex_unlock(&h->slock);
    __atomic_add_fetch(&h->sync_seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&h->sync_waiters, __ATOMIC_SEQ_CST) != 0)
        ulog__futex_wake_all(&h->sync_seq);
}

/* fdatasyncs every segment from the durable end up to `to`. */
static int sync_range(ulog__part *p, const ulog__pos *from, const ulog__pos *to)
{
    if (from->segment != to->segment) {
        int64_t *v;
        size_t n;
        int err = ulog__seg_list(p->dirfd, &v, &n);
        if (err)
            return err;
        for (size_t i = 0; i < n && !err; i++) {
            if (v[i] < from->segment || v[i] >= to->segment)
                continue;
            int fd;
            err = ulog__seg_open(p->dirfd, v[i], true, &fd);
            if (!err) {
                if (ulog__fdatasync(fd) != 0)
                    err = ulog__errno_to_err(errno);
                close(fd);
            }
        }
        free(v);
        if (err)
            return err;
    }
    int err = seg_fd(p, &p->sfd, &p->sfd_seg, &p->sfd_gen, to->segment);
    if (!err && ulog__fdatasync(p->sfd) != 0)
        err = ulog__errno_to_err(errno);
    return err;
}

/*
 * The fsync-failure rule (DESIGN.md section 4). After a failed fsync Linux
 * may have dropped the dirty pages' error and marked them clean, so a retry
 * can "succeed" with the data gone. Everything after the durable end is
 * therefore undefined: cut it off, record the failure in the head so that
 * every waiter (in any process) whose batch was cut reports an error, and
 * carry on from the durable end. Called under slock.
 */
static int fail_rule(ulog__part *p, int sync_err)
{
    ulog__head *h = p->h;
    int err = wlock(p);
    if (err)
        return err;
    ulog__pos to = ulog__head_synced(h);
    /* Readers may have seen batches past the durable end, published when
     * the topic's flush.policy was not always (an alter, or a process that
     * has not reread the settings yet): those are never cut. The partition
     * is poisoned instead, as a failed background sync poisons it, and the
     * next open keeps what verifies. */
    if (__atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) > to.offset) {
        __atomic_store_n(&h->poisoned, 1, __ATOMIC_RELEASE);
        ulog__mutex_unlock(&h->wlock);
        return part_fail(p, sync_err, "fdatasync failed past records readers may have seen; "
                                      "partition poisoned");
    }
    /* Order matters for a leader killed midway: the mark makes the next
     * writer finish the cut (repair), and the epoch is published before
     * any byte goes, so no waiter can take a later commit for its own. */
    h->mark = to;
    __atomic_store_n(&h->marked, 1, __ATOMIC_RELEASE);
    publish_cut(h, to.offset, sync_err);
    err = cut_to(p, &to);
    if (err)
        __atomic_store_n(&h->poisoned, 1, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
    ulog__mutex_unlock(&h->wlock);
    ulog__bell_ring(p->bell);
    return part_fail(p, sync_err, err ? "fdatasync failed and the cut failed too"
                                      : "fdatasync failed; unsynced batches cut");
}

/*
 * Appenders released by a sync come back within microseconds with their
 * next batch. Had the first of them synced at once it would cover only
 * itself, and the rest would wait a whole fdatasync more -- with several
 * appenders they settle into two groups taking turns, half a group per
 * fdatasync. So an appender leads a sync only once as many batches have
 * landed since the last snapshot as there were appenders then (the last
 * sync's batches plus those written while it ran); until then it sleeps
 * on sync_seq. The appender whose batch completes that count leads at
 * once, so nobody has to be woken to start the sync. A lone appender never
 * waits; one that stops appending costs the others one wait of
 * MAX_GATHER_NS, after which the count has dropped. Only batch counts are
 * used, so a process killed anywhere leaves nothing behind that skews them.
 */
#define MAX_GATHER_NS 200000
#define SYNC_WAIT_NS  50000000   /* sleep before looking at slock again */

static bool gathered(ulog__head *h)
{
    return __atomic_load_n(&h->batches, __ATOMIC_SEQ_CST) -
               __atomic_load_n(&h->sync_batches, __ATOMIC_RELAXED) >=
           __atomic_load_n(&h->sync_busy, __ATOMIC_RELAXED);
}

/* Makes everything written so far durable (caller holds slock). Returns
 * the sync error, after applying `on_fail`. */
static int sync_locked(ulog__part *p, bool always, int64_t *synced_to)
{
    ulog__head *h = p->h;
    int err = wlock(p);
    if (err)
        return err;
    ulog__pos to = h->wend;
    uint64_t batches = h->batches;
    ulog__mutex_unlock(&h->wlock);
    /* The next gather has its own timer. */
    __atomic_store_n(&h->gather_timer, 0, __ATOMIC_SEQ_CST);
    *synced_to = to.offset;
    ulog__pos from = ulog__head_synced(h);
    if (to.offset == from.offset && to.segment == from.segment && to.pos == from.pos)
        goto commit;
    /* Poisoned: an fsync failed, and a later one may "succeed" with the
     * failed pages dropped. The durable end stays where it was, so that
     * the repair at the next open rewrites from there (section 4). Looked
     * at again after the sync: the poisoning may have come meanwhile. */
    if (__atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE))
        return part_fail(p, ULOG_EPOISONED, "sync");
    err = sync_range(p, &from, &to);
    if (err) {
        if (always)
            return fail_rule(p, err);
        __atomic_store_n(&h->poisoned, 1, __ATOMIC_RELEASE);
        return part_fail(p, err, "background fdatasync failed; partition poisoned");
    }
    if (__atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE))
        return part_fail(p, ULOG_EPOISONED, "sync");
    ulog__head_set_synced(h, &to);
    if (always) {
        /* Appenders now busy: this sync's batches and those since. */
        uint64_t busy = __atomic_load_n(&h->batches, __ATOMIC_SEQ_CST) -
                        __atomic_load_n(&h->sync_batches, __ATOMIC_RELAXED);
        __atomic_store_n(&h->sync_batches, batches, __ATOMIC_RELAXED);
        __atomic_store_n(&h->sync_busy, busy > 1000 ? 1000u : (uint32_t)busy,
                         __ATOMIC_RELAXED);
    }
commit:;
    /* What is durable is committed, whoever synced it: under flush.policy
     * always a background sync (a clean's, DeleteRecords') may cover an
     * appender's batch, which then finds nothing left to sync -- it must
     * find it committed. (Under none and interval, committed is past it
     * already.) */
    int64_t c = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
    if (to.offset > c) {
        __atomic_store_n(&h->committed, to.offset, __ATOMIC_RELEASE);
        ulog__bell_ring(p->bell);
    }
    return 0;
}

/*
 * Group commit. An appender whose batch is not yet durable leads a sync of
 * everything written so far, for everyone, once the group has gathered (see
 * above) and no sync is running; the others sleep on sync_seq until a
 * leader is done and look again -- they do not queue on slock one by one
 * just to learn they were covered. The sleep has a timeout because a leader
 * that dies never bumps sync_seq (its successor repairs through
 * EOWNERDEAD).
 */
int ulog__part_sync(ulog__part *p, const ulog__written *w)
{
    ulog__head *h = p->h;
    int64_t t0 = ulog__mono_ns();
    bool timer = false;     /* this appender times the gather */
    for (;;) {
        int lost = lost_since(p, w);
        if (lost)
            return part_fail(p, lost, "batch lost to an fdatasync failure");
        if (__atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) >= w->end)
            return 0;
        uint32_t seen = __atomic_load_n(&h->sync_seq, __ATOMIC_SEQ_CST);
        /* Until a sync ends; past SYNC_WAIT_NS the timer died, or a
         * leader did: lead. */
        int64_t wait_ns = SYNC_WAIT_NS, now = ulog__mono_ns();
        bool lead = gathered(h) || now - t0 >= SYNC_WAIT_NS;
        if (!lead && !timer)
            timer = __atomic_exchange_n(&h->gather_timer, 1, __ATOMIC_SEQ_CST) == 0;
        if (!lead && timer) {
            wait_ns = t0 + MAX_GATHER_NS - now;
            lead = wait_ns <= 0;
        }
        int err = ULOG_ETIMEDOUT;
        bool died = false;
        if (lead) {
            /* A claim left standing would keep the next gather untimed
             * (its appenders would sleep SYNC_WAIT_NS) if this batch goes
             * in a sync already running. */
            if (timer)
                __atomic_store_n(&h->gather_timer, 0, __ATOMIC_SEQ_CST);
            err = ulog__mutex_trylock(&h->slock, &died);
            wait_ns = SYNC_WAIT_NS;
            timer = false;
        }
        if (err == ULOG_ETIMEDOUT) {
            __atomic_add_fetch(&h->sync_waiters, 1, __ATOMIC_SEQ_CST);
            ulog__futex_wait_ns(&h->sync_seq, seen, wait_ns);
            __atomic_sub_fetch(&h->sync_waiters, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if (err)
            return part_fail(p, err, "sync lock");
        if (died)
            slock_repair(p);
        /* The leader before us may have covered this batch already. */
        int64_t synced_to = INT64_MAX;
        if (!lost_since(p, w) &&
            __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) < w->end)
            err = sync_locked(p, true, &synced_to);
        sunlock(p);
        /* Our batch was written before we got here: a write end below it
         * means it was cut, however that happened. */
        if (!err && synced_to < w->end)
            return part_fail(p, ULOG_EIO, "batch cut before it was synced");
        /* A failed sync may still have left this batch durable: it is lost
         * only if the cut was below it. */
        if (err && (lost_since(p, w) ||
                    __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) < w->end))
            return err;
    }
}

void ulog__part_raise_replicated(ulog__part *p, int64_t to)
{
    int64_t cur = __atomic_load_n(&p->h->replicated, __ATOMIC_ACQUIRE);
    while (to > cur && !__atomic_compare_exchange_n(&p->h->replicated, &cur, to, false,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
    if (to > cur)
        ulog__bell_ring(p->bell);
}

int ulog__part_wait_replicated(ulog__part *p, int64_t end, int64_t timeout_ms)
{
    ulog__head *h = p->h, *bell = p->bell;
    int64_t deadline = ulog__mono_ms() + timeout_ms;
    int err = 0;
    /* The bell's protocol (ulog__bell_ring): a sleeper counts itself
     * before it reads the bell and looks again. */
    __atomic_add_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t seen = __atomic_load_n(&bell->bell, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&h->replicated, __ATOMIC_ACQUIRE) >= end)
            break;
        if (__atomic_load_n(&h->deleted, __ATOMIC_ACQUIRE)) {
            err = ULOG_ENOENT;
            break;
        }
        int64_t left = deadline - ulog__mono_ms();
        if (left <= 0) {
            err = ULOG_ETIMEDOUT;
            break;
        }
        ulog__bell_wait(bell, seen, left > INT32_MAX ? INT32_MAX : (int)left);
    }
    __atomic_sub_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
    if (err == ULOG_ETIMEDOUT)
        return part_fail(p, err, "the acknowledging hook did not ship the batch within "
                                 "replication.timeout.ms (it is stored here)");
    return err ? part_fail(p, err, "the topic was deleted") : 0;
}

int ulog__part_sync_background(ulog__part *p)
{
    int err = slock(p);
    if (err)
        return err;
    int64_t synced_to;
    err = sync_locked(p, false, &synced_to);
    sunlock(p);
    return err;
}

/*
 * Empties the partition and makes `offset` (past its write end) its
 * log start and next offset. Crash-safe in this order, under slock and
 * wlock, the mark set at the old write end:
 *   1. everything written so far is made durable and committed (what
 *      goes was stored; an appender racing the call may see its records
 *      go with the rest, as with DeleteRecords);
 *   2. the empty segment `offset` is created, file and directory fsynced;
 *   3. commit point: the catalog's log start becomes `offset`;
 *   4. the head: write end, committed end, low, durable end;
 *   5. the segments below go.
 * Before 3 a crash leaves segment `offset` past a gap, which the recovery
 * scan cuts, or (this boot) the repair of the mark. After 3 the next open
 * drops the segments below the log start before it scans and finds the
 * empty one; this boot, the repair finishes 4.
 */
void (*ulog__start_at_step)(int step);

static void start_at_step(int step)
{
    if (ulog__start_at_step)
        ulog__start_at_step(step);
}

int ulog__part_start_at(ulog__part *p, int64_t offset, int64_t now_ms)
{
    ulog__head *h = p->h;
    int err = slock(p);
    if (err)
        return err;
    int64_t synced_to;
    if ((err = sync_locked(p, false, &synced_to)) != 0 || (err = wlock(p)) != 0) {
        sunlock(p);
        return err;
    }
    if (__atomic_load_n(&h->deleted, __ATOMIC_ACQUIRE))
        err = ULOG_ENOENT;
    else if (__atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE))
        err = ULOG_EPOISONED;
    else if (offset < h->wend.offset)
        err = ulog__fail(p->topic->log, ULOG_EOFFSET,
                         "topic %s partition %d: start_at %lld: below the end, %lld",
                         p->topic->name, (int)p->id, (long long)offset,
                         (long long)h->wend.offset);
    /* At the write end: what DeleteRecords does, the caller's. (A new
     * segment there, past its commit point, would look to a repair like
     * a write that died at the same offset.) */
    bool at_end = !err && offset == h->wend.offset;
    if (err || at_end) {
        ulog__mutex_unlock(&h->wlock);
        sunlock(p);
        return at_end ? 1 : err == ULOG_EOFFSET ? err : part_fail(p, err, "start_at");
    }
    /* The bytes this reclaims, for the catalog's count. */
    int64_t *v, bytes = 0;
    size_t n;
    if ((err = ulog__seg_list(p->dirfd, &v, &n)) == 0) {
        for (size_t i = 0; i < n; i++)
            bytes += v[i] == h->wend.segment ? h->wend.pos : ulog__seg_size(p->dirfd, v[i]);
        free(v);
    }
    h->mark = h->wend;
    __atomic_store_n(&h->marked, 1, __ATOMIC_RELEASE);
    int fd = -1;
    if (!err)
        err = ulog__seg_create(p->dirfd, offset, p->topic->log->cfg.file_mode, 0, &fd);
    if (fd >= 0)
        close(fd);
    if (!err)
        start_at_step(1);
    if (!err)
        err = ulog__meta_part_state_advance(p->topic->log->meta, p->topic->id, p->id, offset,
                                            bytes, now_ms, NULL);
    if (!err)
        start_at_step(2);
    if (err) {
        /* Before the commit point: back to the mark, which takes away a
         * segment `offset` past it. */
        if (cut_to(p, &h->mark) == 0)
            __atomic_store_n(&h->marked, 0, __ATOMIC_RELEASE);
        ulog__mutex_unlock(&h->wlock);
        sunlock(p);
        return part_fail(p, err, "start_at");
    }
    start_at_locked(p, offset);
    ulog__mutex_unlock(&h->wlock);
    sunlock(p);
    start_at_step(3);
    int64_t segs, dropped;
    err = ulog__seg_drop_below(p->dirfd, offset, &segs, &dropped);
    ulog__bell_ring(p->bell);
    return err ? part_fail(p, err, "start_at: removing the segments below") : 0;
}

size_t ulog__part_take_index(ulog__part *p, ulog__index_entry *out, size_t cap,
                             int64_t *truncated_from)
{
    pthread_mutex_lock(&p->ilock);
    size_t n = p->icount < cap ? p->icount : cap;
    if (n) {            /* ibuf is NULL until the first entry */
        memcpy(out, p->ibuf, n * sizeof *out);
        memmove(p->ibuf, p->ibuf + n, (p->icount - n) * sizeof *out);
        p->icount -= n;
    }
    *truncated_from = p->truncated_from;
    p->truncated_from = -1;
    pthread_mutex_unlock(&p->ilock);
    return n;
}

int ulog__part_flush_due(ulog__part *p, int64_t now_ms)
{
    const ulog__topic_cfg *c = ulog__cfg(p->topic);
    if (c->flush_policy == ULOG__FLUSH_ALWAYS)
        return 0;
    int64_t every = c->flush_policy == ULOG__FLUSH_INTERVAL ? c->flush_ms : NONE_SYNC_MS;
    if (now_ms - p->last_sync_ms < every)
        return 0;
    ulog__pos s = ulog__head_synced(p->h);
    if (__atomic_load_n(&p->h->committed, __ATOMIC_ACQUIRE) <= s.offset)
        return 0;
    p->last_sync_ms = now_ms;
    return 1;
}

/* Reads back [from, end of file) of segment `seg` and writes the same bytes
 * again: after a failed fsync the kernel may hold them as clean pages that
 * will never reach the disk, and only a new write makes them dirty. */
static int rewrite_tail(ulog__part *p, int64_t seg, int64_t from)
{
    int fd, err = ulog__seg_open(p->dirfd, seg, true, &fd);
    if (err)
        return err;
    uint8_t buf[65536];
    for (int64_t pos = from;;) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? ulog__errno_to_err(errno) : 0;
            break;
        }
        if ((err = ulog__pwrite_all(fd, buf, (size_t)n, pos)) != 0)
            break;
        pos += n;
    }
    if (!err && ulog__fdatasync(fd) != 0)
        err = ulog__errno_to_err(errno);
    close(fd);
    return err;
}

/*
 * A poisoned partition (a background fsync failed, or a cut failed) is
 * repaired when a process opens it again: verify the unsynced tail batch by
 * batch (cutting at the first bad byte), rewrite and sync it. Only then may
 * appends go on. Offsets readers saw past a cut are reported in errmsg.
 */
static int unpoison(ulog__part *p)
{
    ulog__head *h = p->h;
    int err = slock(p);
    if (err)
        return err;
    if ((err = wlock(p)) != 0) {
        ulog__mutex_unlock(&h->slock);
        return err;
    }
    if (__atomic_load_n(&h->poisoned, __ATOMIC_ACQUIRE)) {
        ulog__pos from = ulog__head_synced(h);
        ulog__scan_result scan;
        /* Nothing past the durable end published (flush.policy always:
         * its waiters were failed): it goes. Otherwise readers may have
         * seen it: keep what verifies. Decided by the head, not the
         * settings, which an alter may have changed since. */
        if (__atomic_load_n(&h->committed, __ATOMIC_ACQUIRE) <= from.offset &&
            (err = ulog__recover_cut(p->dirfd, &from)) != 0)
            goto out;
        err = ulog__recover_scan(p->dirfd, &from,
                                 __atomic_load_n(&h->compacted, __ATOMIC_ACQUIRE),
                                 p->topic->log->cfg.file_mode, &scan);
        for (int64_t seg = from.segment; !err && seg >= 0;) {
            err = rewrite_tail(p, seg, seg == from.segment ? from.pos : 0);
            int64_t nx;
            seg = !err && ulog__seg_next(p->dirfd, seg, &nx) == 0 ? nx : -1;
        }
        if (!err) {
            int64_t c = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
            if (c > scan.end.offset)
                ulog__fail(p->topic->log, ULOG_EIO,
                           "topic %s partition %d: offsets %lld..%lld lost to a failed fsync",
                           p->topic->name, (int)p->id, (long long)scan.end.offset,
                           (long long)c - 1);
            h->wend = scan.end;
            h->index_pos = -1;
            __atomic_add_fetch(&h->gen, 1, __ATOMIC_RELEASE);
            index_truncate(p, scan.end.offset);
            ulog__head_set_synced(h, &scan.end);
            __atomic_store_n(&h->committed, scan.end.offset, __ATOMIC_RELEASE);
            /* The offsets past the end will hold other records: the
             * replica watermark must not count them as shipped. */
            if (__atomic_load_n(&h->replicated, __ATOMIC_ACQUIRE) > scan.end.offset)
                __atomic_store_n(&h->replicated, scan.end.offset, __ATOMIC_RELEASE);
            __atomic_store_n(&h->poisoned, 0, __ATOMIC_RELEASE);
        }
    }
out:
    ulog__mutex_unlock(&h->wlock);
    sunlock(p);
    return err ? part_fail(p, err, "repairing a poisoned partition") : 0;
}

/* The durable end for a checkpoint. synced[] is only consistent under
 * slock (its double buffer guards against a dying writer, not against a
 * reader racing two updates), so take slock briefly; when a leader holds
 * it, skip: the next flush pass will try again. */
int ulog__part_write_end(ulog__part *p, ulog__pos *out)
{
    int err = wlock(p);
    if (err)
        return err;
    *out = p->h->wend;
    ulog__mutex_unlock(&p->h->wlock);
    return 0;
}

int ulog__part_synced_wait(ulog__part *p, ulog__pos *out)
{
    int err = slock(p);
    if (err)
        return err;
    *out = ulog__head_synced(p->h);
    sunlock(p);
    return 0;
}

bool ulog__part_synced(ulog__part *p, ulog__pos *out)
{
    bool died;
    if (ulog__mutex_trylock(&p->h->slock, &died) != 0)
        return false;
    if (died)
        slock_repair(p);
    *out = ulog__head_synced(p->h);
    sunlock(p);
    return true;
}
