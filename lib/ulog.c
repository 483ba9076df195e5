/*
 * ulog.c -- the log handle: open/close, the per-handle error detail, the
 * filesystem check, the flusher thread that keeps LMDB writes (index
 * entries, recovery checkpoints) and background syncs off the append path,
 * and the cleaner thread that runs retention and compaction.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

int64_t ulog__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ulog__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ulog__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Network and cluster filesystems: their locking, mmap coherence and fsync
 * semantics do not give what sharing a log needs (statfs(2) magic numbers). */
bool ulog__fs_is_network(int64_t f_type)
{
    static const uint32_t net[] = {
        0x6969,     /* NFS */
        0x517B,     /* SMB */
        0xFF534D42, /* CIFS */
        0xFE534D42, /* SMB2 */
        0x01021997, /* 9P (v9fs) */
        0x65735546, /* FUSE (sshfs, s3fs, ...) */
        0x00C36400, /* Ceph */
        0x5346414F, /* AFS */
        0x6B414653, /* kAFS */
        0x73757245, /* Coda */
        0x564C,     /* NCP */
        0x0BD00BD0, /* Lustre */
        0x01161970, /* GFS2 */
        0x7461636F, /* OCFS2 */
        0x47504653, /* GPFS */
        0x013111A8, /* IBRIX */
        0xAAD7AAEA, /* PanFS */
    };
    for (size_t i = 0; i < sizeof net / sizeof net[0]; i++)
        if ((uint32_t)f_type == net[i])
            return true;
    return false;
}

/* The detail of the last failure, per thread like errno: another thread's
 * failure never overwrites it, and it outlives a handle that failed to open.
 * `serial` names the handle it belongs to (0: none); addresses are reused,
 * serials are not. */
static __thread struct {
    uint64_t serial;
    char     msg[512];
} last_failure;

static uint64_t next_serial;

int ulog__fail(ulog *log, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_failure.msg, sizeof last_failure.msg, fmt, ap);
    va_end(ap);
    last_failure.serial = log ? log->serial : 0;
    return err;
}

size_t ulog_errmsg(ulog *log, char *buf, size_t buf_len)
{
    const char *msg = !log || log->serial == last_failure.serial ? last_failure.msg : "";
    if (buf && buf_len)
        snprintf(buf, buf_len, "%s", msg);
    return strlen(msg);
}

/* ---------------------------------------------------------------- flusher */

#define FLUSH_BATCH 4096

/* One pass: take every open partition's index entries and durable end,
 * write them in one LMDB transaction, and run due background syncs. */
static int flush_pass_locked(ulog *log, bool final);

/* The flusher and ulog_close (and tests) may run passes: one at a time,
 * since a pass owns the partitions' checkpoint and sync bookkeeping. */
int ulog__flush_pass(ulog *log, bool final)
{
    pthread_mutex_lock(&log->fpass);
    int err = flush_pass_locked(log, final);
    pthread_mutex_unlock(&log->fpass);
    return err;
}

/* The flush's keep(): entries of a topic deleted meanwhile are dropped.
 * They come topic by topic, so the last answer is kept. */
typedef struct live_cache {
    ulog        *log;
    ulog__topic *last;
} live_cache;

static bool topic_live(uint32_t topic_id, void *arg)
{
    live_cache *c = arg;
    if (!c->last || c->last->id != topic_id) {
        c->last = NULL;
        for (unsigned b = 0; b < ULOG__TOPIC_BUCKETS && !c->last; b++)
            for (ulog__topic *t = c->log->buckets[b]; t && !c->last; t = t->hnext)
                if (t->id == topic_id)
                    c->last = t;
    }
    return c->last && !ulog__topic_deleted(c->last);
}

/* buf (capacity *cap elements of `size` bytes) with room for `need`,
 * doubling; NULL when out of memory, and then buf stays as it was. */
static void *grow(void *buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return buf;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *b = realloc(buf, n * size);
    if (b)
        *cap = n;
    return b;
}

static int flush_pass_locked(ulog *log, bool final)
{
    size_t ne = 0, ncp = 0;
    int err = 0;
    int64_t now = ulog__mono_ms();
    pthread_rwlock_rdlock(&log->tlock);
    for (unsigned b = 0; b < ULOG__TOPIC_BUCKETS; b++) {
        for (ulog__topic *t = log->buckets[b]; t; t = t->hnext) {
            if (ulog__topic_deleted(t))
                continue;
            ulog__topic_refresh(t);
            for (int32_t i = 0; i < t->partitions; i++) {
                ulog__part *p = &t->parts[i];
                if (final ? ulog__cfg(t)->flush_policy != ULOG__FLUSH_ALWAYS
                          : ulog__part_flush_due(p, now))
                    ulog__part_sync_background(p);
                int64_t cut;
                for (;;) {
                    ulog__index_entry *ent = grow(log->fentries, &log->fentries_cap,
                                                  ne + FLUSH_BATCH, sizeof *ent);
                    if (!ent)
                        break;      /* the rest waits for the next pass */
                    log->fentries = ent;
                    size_t cap = log->fentries_cap;
                    size_t got = ulog__part_take_index(p, log->fentries + ne, cap - ne, &cut);
                    if (cut >= 0)
                        ulog__meta_truncate(log->meta, t->id, i, cut);
                    ne += got;
                    if (ne < cap)
                        break;
                }
                ulog__pos s;
                if (__atomic_load_n(&p->appended, __ATOMIC_RELAXED) &&
                    ulog__part_synced(p, &s) && s.offset != p->cp_written) {
                    ulog__checkpoint *c = grow(log->fcps, &log->fcps_cap, ncp + 1, sizeof *c);
                    if (!c)
                        continue;
                    log->fcps = c;
                    /* Read without the writer lock: it only grows, and a
                     * larger value is safe (see ulog__checkpoint). */
                    c[ncp++] = (ulog__checkpoint){ t->id, i, s.offset, s.segment, s.pos,
                                                   __atomic_load_n(&p->h->max_ts,
                                                                   __ATOMIC_RELAXED) };
                    p->cp_written = s.offset;
                }
            }
        }
    }
    if (ne || ncp)
        err = ulog__meta_flush(log->meta, log->fentries, ne, log->fcps, ncp, topic_live,
                               &(live_cache){ log, NULL });
    pthread_rwlock_unlock(&log->tlock);
    return err;
}

/* Sleeps on `cond` for ms, under flock; false once the handle is closing. */
static bool nap(ulog *log, pthread_cond_t *cond, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);    /* the conds wait on it */
    int64_t ns = ts.tv_nsec + ms * 1000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    if (!log->stop)
        pthread_cond_timedwait(cond, &log->flock, &ts);
    return !log->stop;
}

static void *cleaner_main(void *arg)
{
    ulog *log = arg;
    pthread_mutex_lock(&log->flock);
    while (nap(log, &log->ccond, log->cfg.retention_check_ms)) {
        pthread_mutex_unlock(&log->flock);
        ulog__retention_background(log);
        pthread_mutex_lock(&log->flock);
    }
    pthread_mutex_unlock(&log->flock);
    return NULL;
}

bool ulog__closing(ulog *log)
{
    return __atomic_load_n(&log->stop, __ATOMIC_ACQUIRE);
}

static void *flusher_main(void *arg)
{
    ulog *log = arg;
    int64_t last_reader_check = ulog__mono_ms();
    pthread_mutex_lock(&log->flock);
    while (nap(log, &log->fcond, log->cfg.index_flush_ms)) {
        pthread_mutex_unlock(&log->flock);
        int err = ulog__flush_pass(log, false);
        if (err)
            ulog__fail(log, err, "background flush: %s", ulog_strerror(err));
        /* Readers killed inside an LMDB read transaction pin pages until
         * their slot is cleared. */
        int64_t now = ulog__mono_ms();
        if (now - last_reader_check > 10000) {
            ulog__meta_reader_check(log->meta);
            last_reader_check = now;
        }
        pthread_mutex_lock(&log->flock);
    }
    pthread_mutex_unlock(&log->flock);
    return NULL;
}

void ulog__flusher_kick(ulog *log)
{
    pthread_mutex_lock(&log->flock);
    pthread_cond_signal(&log->fcond);
    pthread_mutex_unlock(&log->flock);
}

/* ---------------------------------------------------------------- open */

static int open_dirs(ulog *log, const char *dir)
{
    if (mkdir(dir, (mode_t)log->cfg.dir_mode) != 0 && errno != EEXIST)
        return ulog__fail(log, ulog__errno_to_err(errno), "%s: %s", dir, strerror(errno));
    log->rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->rootfd < 0)
        return ulog__fail(log, ulog__errno_to_err(errno), "%s: %s", dir, strerror(errno));
    struct statfs sf;
    if (fstatfs(log->rootfd, &sf) != 0)
        return ulog__fail(log, ulog__errno_to_err(errno), "%s: statfs: %s", dir, strerror(errno));
    if (ulog__fs_is_network((int64_t)sf.f_type))
        return ulog__fail(log, ULOG_ENOTSUP,
                          "%s: network filesystem (type 0x%llx): ulog needs a local "
                          "filesystem for shared logs", dir, (unsigned long long)sf.f_type);
    if (mkdirat(log->rootfd, "topics", (mode_t)log->cfg.dir_mode) == 0) {
        if (fsync(log->rootfd) != 0)
            return ulog__fail(log, ulog__errno_to_err(errno), "%s: fsync: %s", dir,
                              strerror(errno));
    } else if (errno != EEXIST) {
        return ulog__fail(log, ulog__errno_to_err(errno), "%s/topics: %s", dir, strerror(errno));
    }
    log->topicsfd = openat(log->rootfd, "topics", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->topicsfd < 0)
        return ulog__fail(log, ulog__errno_to_err(errno), "%s/topics: %s", dir, strerror(errno));
    return 0;
}

int ulog_open(const char *dir, const ulog_config *cfg, ulog **out)
{
    if (!dir || !*dir || !out)
        return ULOG_EINVAL;
    *out = NULL;
    ulog *log = calloc(1, sizeof *log);
    if (!log)
        return ULOG_ENOMEM;
    log->rootfd = log->topicsfd = -1;
    log->pid = getpid();
    log->serial = __atomic_add_fetch(&next_serial, 1, __ATOMIC_RELAXED);
    pthread_mutex_init(&log->fpass, NULL);
    pthread_mutex_init(&log->flock, NULL);
    /* A step of the wall clock must not stall index flushes and syncs. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log->fcond, &ca);
    pthread_cond_init(&log->ccond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlock_init(&log->tlock, NULL);
    pthread_rwlock_init(&log->klock, NULL);
    char msg[256];
    int err = ulog__config_log(cfg, &log->cfg, msg, sizeof msg);
    if (err)
        ulog__fail(log, err, "%s", msg);
    if (!err && !(log->root = strdup(dir)))
        err = ULOG_ENOMEM;
    if (!err)
        err = open_dirs(log, dir);
    if (!err)
        err = ulog__boot_id(log->boot_id);
    if (!err && (err = ulog__meta_open(dir, log->cfg.file_mode, log->cfg.dir_mode,
                                       &log->meta)) != 0)
        ulog__fail(log, err, "%s/meta: %s", dir, ulog_strerror(err));
    if (!err)
        ulog__topics_sweep(log);
    if (!err) {
        if (pthread_create(&log->flusher, NULL, flusher_main, log) != 0)
            err = ULOG_ENOMEM;
        else
            log->flusher_started = true;
    }
    if (!err) {
        if (pthread_create(&log->cleaner, NULL, cleaner_main, log) != 0)
            err = ULOG_ENOMEM;
        else
            log->cleaner_started = true;
    }
    if (err) {
        ulog_close(log);
        return err;
    }
    *out = log;
    return 0;
}

void ulog_close(ulog *log)
{
    if (!log)
        return;
    if (log->pid != getpid()) {
        /* A child after fork closing its parent's handle: the flusher
         * thread is not in this process, and closing LMDB's descriptors
         * here would drop this process's own locks on those files. Let
         * the memory go with the process. */
        return;
    }
    /* A compaction under way in the cleaner sees `stop` and gives up (its
     * next run, in any process, starts over). */
    pthread_mutex_lock(&log->flock);
    __atomic_store_n(&log->stop, true, __ATOMIC_RELEASE);
    pthread_cond_signal(&log->fcond);
    pthread_cond_signal(&log->ccond);
    pthread_mutex_unlock(&log->flock);
    if (log->flusher_started)
        pthread_join(log->flusher, NULL);
    if (log->cleaner_started)
        pthread_join(log->cleaner, NULL);
    if (log->meta) {
        ulog__flush_pass(log, true);
        ulog__topics_close(log);
        ulog__meta_close(log->meta);
    }
    if (log->topicsfd >= 0)
        close(log->topicsfd);
    if (log->rootfd >= 0)
        close(log->rootfd);
    free(log->root);
    ulog__keys_free(log);
    pthread_rwlock_destroy(&log->klock);
    pthread_rwlock_destroy(&log->tlock);
    pthread_cond_destroy(&log->fcond);
    pthread_cond_destroy(&log->ccond);
    pthread_mutex_destroy(&log->flock);
    pthread_mutex_destroy(&log->fpass);
    free(log->fentries);
    free(log->fcps);
    free(log);
}
