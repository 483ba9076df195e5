/*
 * hook.c -- the replication hook: a thread that hands every committed batch
 * of a topic to the application's ship callback, and stores how far it got
 * as a consumer group's committed offsets (at least once). The hook that
 * acknowledges (ULOG_HOOK_ACKS) also moves each partition's replica
 * watermark, which replication.sync appends wait for and read.replicated
 * subscriptions stop at; one per topic, held by an exclusive flock on the
 * topic directory's `hook.acks` file, which dies with its process.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* Positions are stored after this many shipped batches, or this long after
 * the first one not stored, or when the hook has caught up. */
#define STORE_BATCHES 64
#define STORE_MS      100
/* Pauses after a failure: from BACKOFF_MIN, doubling, to BACKOFF_MAX. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* How long a poll waits before the thread looks at `stop` again. */
#define POLL_MS 100

struct ulog_hook {
    ulog          *log;
    ulog__topic   *t;
    ulog_sub      *sub;
    ulog_ship_fn  *ship;
    void          *arg;
    bool           acks;
    int            lockfd;     /* -1 unless acks */
    int64_t       *pending;    /* per partition: position shipped, not stored (-1) */
    ulog_offset   *offs;       /* store()'s list, one per partition */
    int            npending;   /* batches shipped and not stored */
    int64_t        first_pending_ms;
    int            err;        /* the last failure, 0 after a success */
    pthread_t      thr;
    pthread_mutex_t mu;
    pthread_cond_t  cv;        /* (mu) stop requested */
    bool           stop;       /* (mu) */
};

static bool stopping(ulog_hook *h)
{
    pthread_mutex_lock(&h->mu);
    bool s = h->stop;
    pthread_mutex_unlock(&h->mu);
    return s;
}

/* Sleeps ms, or until stop is asked for. */
static void pause_ms(ulog_hook *h, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);      /* the condition's clock (hook_start) */
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&h->mu);
    while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&h->mu);
}

/* Stores the pending positions durably. */
static int store(ulog_hook *h)
{
    if (h->npending == 0)
        return 0;
    int32_t n = h->t->partitions;
    ulog_offset *offs = h->offs;
    size_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (h->pending[i] < 0)
            continue;
        /* Retention or DeleteRecords may have moved the log start past
         * it (the subscription moved on from there too): what was below
         * is gone for everyone, and a commit below the start is refused. */
        int64_t low = __atomic_load_n(&h->t->parts[i].h->low, __ATOMIC_ACQUIRE);
        offs[k++] = (ulog_offset){ i, h->pending[i] > low ? h->pending[i] : low };
    }
    int err = ulog_commit_offsets(h->sub, offs, k);
    if (!err) {
        for (size_t i = 0; i < k; i++)
            h->pending[offs[i].partition] = -1;
        h->npending = 0;
    }
    return err;
}

/* After a failure: a pause that doubles while failures go on. err: what
 * ulog_hook_stop() will report (0 for a ship the application refused). */
static void back_off(ulog_hook *h, int *backoff, int err)
{
    if (err)
        h->err = err;
    pause_ms(h, *backoff);
    *backoff = *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff * 2;
}

/* Puts partition `part` back to `base` (a batch ship refused), so that the
 * batch comes again; never past it: a seek that fails is tried again. A
 * start moved past base by retention is where the partition goes on. */
static bool seek_back(ulog_hook *h, int32_t part, int64_t base, int *backoff)
{
    while (!stopping(h)) {
        int64_t low = __atomic_load_n(&h->t->parts[part].h->low, __ATOMIC_ACQUIRE);
        int err = ulog_seek(h->sub, part, base > low ? base : low);
        if (err == 0)
            return true;
        if (err != ULOG_EOFFSET)
            back_off(h, backoff, err);
    }
    return false;
}

static void *hook_main(void *arg)
{
    ulog_hook *h = arg;
    int backoff = BACKOFF_MIN_MS, err;
    while (!stopping(h)) {
        /* A failed store is tried again here, while shipping goes on
         * (the positions only move up). */
        if (h->npending && (h->npending >= STORE_BATCHES ||
                            ulog__mono_ms() - h->first_pending_ms >= STORE_MS) &&
            (err = store(h)) != 0)
            back_off(h, &backoff, err);
        ulog_batch b = ULOG_BATCH_INIT;
        err = ulog_poll_batch(h->sub, h->npending ? 0 : POLL_MS, &b);
        if (err == ULOG_ETIMEDOUT) {
            /* Caught up: store now, so that a restart ships little again. */
            if ((err = store(h)) != 0)
                back_off(h, &backoff, err);
            continue;
        }
        if (err) {
            /* A bad batch, an I/O error: the position stays, and the poll
             * is tried again later. A deleted topic ends the hook. */
            if (err == ULOG_ENOENT) {
                h->err = err;
                break;
            }
            back_off(h, &backoff, err);
            continue;
        }
        if (h->ship(&b, h->arg) != 0) {
            /* Not shipped: the same batch again, after a pause. */
            if (!seek_back(h, b.partition, b.base_offset, &backoff))
                break;
            back_off(h, &backoff, 0);
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        h->err = 0;
        /* Shipped: the watermark may move before the position is stored.
         * It lives in the head, which a reboot resets; the hook then
         * raises it to the stored position only, which is lower if
         * anything: the watermark may hide shipped records for a while,
         * never show unshipped ones. */
        if (h->acks)
            ulog__part_raise_replicated(&h->t->parts[b.partition], b.last_offset + 1);
        if (h->npending++ == 0)
            h->first_pending_ms = ulog__mono_ms();
        h->pending[b.partition] = b.last_offset + 1;
    }
    if ((err = store(h)) != 0)
        h->err = err;
    return NULL;
}

/* The acknowledging hook's lock: <root>/topics/<topic>/hook.acks. */
static int lock_acks(ulog *log, const char *topic, int *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hook.acks", topic);
    int fd = openat(log->topicsfd, path, O_RDWR | O_CREAT | O_CLOEXEC, log->cfg.file_mode);
    if (fd < 0)
        return ulog__fail(log, ulog__errno_to_err(errno), "hook: %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return ulog__fail(log, ULOG_EEXIST, "hook: topic %s: another hook acknowledges "
                              "it (ULOG_HOOK_ACKS), in this or another process", topic);
        return ulog__fail(log, ulog__errno_to_err(e), "hook: %s: %s", path, strerror(e));
    }
    *out = fd;
    return 0;
}

static void hook_free(ulog_hook *h)
{
    ulog_sub_close(h->sub);
    if (h->lockfd >= 0)
        close(h->lockfd);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->pending);
    free(h->offs);
    free(h);
}

int ulog_hook_start(ulog *log, const char *topic, const char *name, unsigned flags,
                    ulog_ship_fn *ship, void *arg, ulog_hook **out)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !name || !ship || !out || (flags & ~ULOG_HOOK_ACKS))
        return ulog__fail(log, ULOG_EINVAL, "hook: NULL argument or unknown flags");
    ulog__topic *t;
    int err = ulog__topic_get(log, topic, &t);
    if (err)
        return err;
    ulog_hook *h = calloc(1, sizeof *h);
    if (!h || !(h->pending = malloc((size_t)t->partitions * sizeof *h->pending)) ||
        !(h->offs = calloc((size_t)t->partitions, sizeof *h->offs))) {
        if (h)
            free(h->pending);
        free(h);
        return ulog__fail(log, ULOG_ENOMEM, "hook: out of memory");
    }
    for (int32_t i = 0; i < t->partitions; i++)
        h->pending[i] = -1;
    h->log = log;
    h->t = t;
    h->ship = ship;
    h->arg = arg;
    h->acks = flags & ULOG_HOOK_ACKS;
    h->lockfd = -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* From the stored position, or the log start when there is none. The
     * group name is checked here, before any lock file is made. */
    ulog_config *cfg = ulog_config_new();
    if (!cfg) {
        hook_free(h);
        return ulog__fail(log, ULOG_ENOMEM, "hook: out of memory");
    }
    ulog_config_set(cfg, "auto.offset.reset", "earliest", NULL, 0);
    err = ulog_subscribe(log, topic, name, cfg, &h->sub);
    ulog_config_free(cfg);
    if (!err && h->acks)
        err = lock_acks(log, t->name, &h->lockfd);
    if (err) {
        hook_free(h);
        return err;
    }
    /* Where the acknowledging hook starts was shipped before: after a
     * reboot the watermark starts at 0 and comes back to it here. */
    for (int32_t i = 0; h->acks && i < t->partitions; i++) {
        int64_t pos;
        if (ulog_position(h->sub, i, &pos) == 0)
            ulog__part_raise_replicated(&t->parts[i], pos);
    }
    if ((err = pthread_create(&h->thr, NULL, hook_main, h)) != 0) {
        hook_free(h);
        return ulog__fail(log, ULOG_ENOMEM, "hook: starting its thread: %s", strerror(err));
    }
    *out = h;
    return 0;
}

int ulog_hook_stop(ulog_hook *h)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thr, NULL);
    int err = h->err;
    hook_free(h);
    return err;
}
