/*
 * sub.c -- subscriptions: one cursor per partition of a topic, polled in
 * turn, sleeping on the topic's bell (a futex in partition 0's head) when
 * nothing is committed, so that any process's append wakes them; and their
 * group commits, synchronous or handed to a committer thread.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* An asynchronous commit: positions taken at the call, stored by the
 * committer thread, reported back to the subscription's thread. */
typedef struct commit_job {
    struct commit_job *next;
    ulog_commit_cb    *cb;
    void              *arg;
    int                err;
    ulog_offset        offs[];
} commit_job;

struct ulog_sub {
    ulog          *log;
    ulog__topic   *t;
    ulog__cursor  *cur;
    int32_t        n;
    int32_t        rr;          /* partition polled next */
    uint32_t       done;        /* (a) finished async commits await delivery */
    ulog__rec      rec;         /* the record last returned (msg->internal) */
    char          *group;       /* NULL: none */
    int            spin_us;     /* poll.spin.us */
    int            reset;       /* auto.offset.reset (enum ulog__reset) */
    bool           sealed;      /* an encrypted topic: values are opened */
    uint8_t       *open;        /* ... into this (msg->value points here) */
    size_t         open_cap;
    /* Async commits: `queue` -> committer thread -> `finished`, FIFO. */
    pthread_mutex_t clock;
    pthread_cond_t  ccond;
    commit_job     *queue, **queue_tail;
    commit_job     *finished, **finished_tail;
    int             inflight;   /* queued or being stored */
    bool            committer_started, committer_stop;
    pthread_t       committer;
    /* ulog_sub_fd: an eventfd written by a thread that sleeps on the bell. */
    int            evfd;
    pthread_t      thr;
    bool           thr_started;
    uint32_t       stop;        /* (a) */
};

static int sub_fail(ulog_sub *s, int err, const char *what)
{
    return ulog__fail(s->log, err, "topic %s: %s", s->t->name, what);
}

/* Where partition k starts: the group's committed offset when it is still
 * in the log, else per the reset policy. */
static int start_offset(ulog_sub *s, const ulog__sub_cfg *sc, int32_t k, int64_t committed,
                        int64_t *out)
{
    ulog__head *h = s->t->parts[k].h;
    int64_t low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
    int64_t high = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
    if (committed >= low && committed <= high) {
        *out = committed;
        return 0;
    }
    /* Latest, with read.replicated: the replica watermark (Kafka's high
     * watermark), when it is in the log. */
    int64_t end = ulog__cursor_end(&s->cur[k]);
    switch (sc->reset) {
    case ULOG__RESET_LATEST:   *out = end >= low ? end : low; return 0;
    case ULOG__RESET_EARLIEST: *out = low;  return 0;
    default:
        if (!s->group) {
            *out = low;
            return 0;
        }
        if (committed < 0)
            return ulog__fail(s->log, ULOG_EOFFSET,
                              "group %s has no committed offset for topic %s partition %d "
                              "and auto.offset.reset is none",
                              s->group, s->t->name, (int)k);
        return ulog__fail(s->log, ULOG_EOFFSET,
                          "group %s: committed offset %lld of topic %s partition %d is "
                          "outside [%lld, %lld] and auto.offset.reset is none",
                          s->group, (long long)committed, s->t->name, (int)k,
                          (long long)low, (long long)high);
    }
}

int ulog_subscribe(ulog *log, const char *topic, const char *group, const ulog_config *cfg,
                   ulog_sub **out)
{
    if (out)
        *out = NULL;
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !out)
        return ulog__fail(log, ULOG_EINVAL, "subscribe: NULL topic or out");
    if (group && !ulog__name_valid(group))
        return ulog__fail(log, ULOG_EINVAL, "invalid group name");
    ulog__sub_cfg sc;
    char msg[256];
    int err = ulog__config_sub(cfg, &sc, msg, sizeof msg);
    if (err)
        return ulog__fail(log, err, "subscribe: %s", msg);
    ulog__topic *t;
    if ((err = ulog__topic_get(log, topic, &t)) != 0)
        return err;
    ulog_sub *s = calloc(1, sizeof *s);
    int64_t *committed = s ? malloc((size_t)t->partitions * sizeof *committed) : NULL;
    if (!s || !committed || !(s->cur = calloc((size_t)t->partitions, sizeof *s->cur)) ||
        (group && !(s->group = strdup(group)))) {
        if (s)
            free(s->cur);
        free(committed);
        free(s);
        return ulog__fail(log, ULOG_ENOMEM, "subscribe: out of memory");
    }
    s->log = log;
    s->t = t;
    s->n = t->partitions;
    s->evfd = -1;
    s->spin_us = sc.spin_us;
    s->reset = sc.reset;
    s->sealed = ulog__cfg(t)->encryption_key_id >= 0;
    pthread_mutex_init(&s->clock, NULL);
    pthread_cond_init(&s->ccond, NULL);
    s->queue_tail = &s->queue;
    s->finished_tail = &s->finished;
    for (int32_t i = 0; i < s->n; i++) {
        ulog__cursor_init(&s->cur[i], &t->parts[i]);
        s->cur[i].replicated_only = sc.read_replicated;
        committed[i] = -1;
    }
    if (group && (err = ulog__meta_group_get(log->meta, group, t->id, s->n, committed)) != 0)
        ulog__fail(log, err, "group %s: reading committed offsets", group);
    for (int32_t i = 0; i < s->n && !err; i++) {
        /* Retention may move the log start past `start` before the seek:
         * then choose again (it only moves up). */
        for (int tries = 0; tries < 100; tries++) {
            int64_t start = 0;
            err = start_offset(s, &sc, i, committed[i], &start);
            if (!err)
                err = ulog__cursor_seek(&s->cur[i], start);
            if (err != ULOG_EOFFSET ||
                start >= __atomic_load_n(&t->parts[i].h->low, __ATOMIC_ACQUIRE))
                break;
        }
    }
    free(committed);
    if (err) {
        ulog_sub_close(s);
        return err;
    }
    *out = s;
    return 0;
}

/* r: the record just decoded, s->rec or (ulog_poll's fast path) a local
 * copy, which keeps the fields in registers: read back from s->rec, two
 * of them took one 16-byte load that waited for the two 8-byte stores
 * behind it (a failed store forward, a quarter of ulog_poll's time). */
static inline void fill_msg(ulog_sub *s, int32_t k, int64_t off, int64_t ts,
                            const ulog__rec *r, ulog_msg *msg)
{
    msg->topic = s->t->name;
    msg->partition = k;
    msg->offset = off;
    msg->timestamp = ts;
    msg->key = r->key;
    msg->key_len = r->key_len;
    msg->value = r->value;
    msg->value_len = r->value_len;
    msg->header_count = r->header_count;
    /* What ulog_msg_header() reads. */
    s->rec.headers = r->headers;
    s->rec.header_count = r->header_count;
    s->rec.end = r->end;
    msg->internal = &s->rec;
}

/* An encrypted topic's value, opened into the subscription's buffer (its
 * last plaintext wiped when it grows). On failure partition k goes back to
 * the record, which reports again on its next turn (the other partitions
 * get theirs first, as after a bad batch): never a skip. */
__attribute__((noinline))
static int open_value(ulog_sub *s, int32_t k, ulog_msg *msg)
{
    if (!msg->value)
        return 0;                       /* a tombstone */
    size_t n = msg->value_len > ULOG_SEAL_OVERHEAD ? msg->value_len - ULOG_SEAL_OVERHEAD : 0;
    int err = 0;
    if (n >= s->open_cap) {
        size_t cap = s->open_cap ? s->open_cap : 256;
        while (cap <= n)
            cap *= 2;
        if (s->open)
            explicit_bzero(s->open, s->open_cap);
        free(s->open);
        s->open_cap = 0;
        if ((s->open = malloc(cap)) != NULL)
            s->open_cap = cap;
        else
            err = ULOG_ENOMEM;
    }
    uint32_t id = 0;
    if (!err)
        err = ulog__unseal(s->log, s->t->name, k, msg->key, msg->key_len, msg->value,
                           msg->value_len, s->open, &id);
    if (!err) {
        msg->value = s->open;
        msg->value_len = n;
        return 0;
    }
    ulog__cursor_rewind(&s->cur[k], msg->offset);
    s->rr = k + 1 == s->n ? 0 : k + 1;
    msg->value = NULL;                  /* not the sealed bytes, even by mistake */
    msg->value_len = 0;
    const char *why = err == ULOG_ENOKEY ? "no key of its id was given (ulog_key_add)"
                      : err == ULOG_EAUTH ? "the value does not open: a wrong key, or changed "
                                            "bytes"
                                          : ulog_strerror(err);
    ulog__fail(s->log, err, "topic %s partition %d offset %lld: key id %u: %s", s->t->name,
               (int)k, (long long)msg->offset, (unsigned)id, why);
    return err;
}

/* The batch holding c's position, whole, into b (partition: the caller). */
static int take_batch(ulog__cursor *c, ulog_batch *b)
{
    const uint8_t *frame;
    size_t len;
    int err = ulog__cursor_next_frame(c, &frame, &len);
    if (err)
        return err;
    b->base_offset = c->bh.base_offset;
    b->last_offset = c->bh.base_offset + c->bh.last_offset_delta;
    b->record_count = c->bh.record_count;
    b->max_timestamp = c->bh.max_timestamp;
    b->data = frame;
    b->len = len;
    return 0;
}

/* One round over the partitions, starting where the last one left off.
 * A partition keeps the turn for the rest of its open batch: fair by
 * batch, and the common case (more records in this batch) is one call. */
/* A position that fell below the log start (retention, DeleteRecords)
 * moves as auto.offset.reset says; none leaves it, and the poll reports
 * ULOG_EOFFSET. */
static int next_or_reset(ulog_sub *s, ulog__cursor *c, int64_t *off, int64_t *ts,
                         ulog_batch *b)
{
    int err = b ? take_batch(c, b) : ulog__cursor_next(c, &s->rec, off, ts);
    /* Another process may move the log start again between the reset and
     * the read: look again (it only moves up, with the files it removes). */
    for (int tries = 0; err == ULOG_EOFFSET && s->reset != ULOG__RESET_NONE && tries < 1000;
         tries++) {
        ulog__head *h = c->p->h;
        int64_t low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE), end = ulog__cursor_end(c);
        int64_t to = s->reset == ULOG__RESET_EARLIEST || end < low ? low : end;
        err = ulog__cursor_seek(c, to);
        if (!err)
            err = b ? take_batch(c, b) : ulog__cursor_next(c, &s->rec, off, ts);
    }
    return err;
}

/* One round over the partitions for a record into msg, or (msg NULL) a
 * whole batch into b. */
static int poll_once(ulog_sub *s, ulog_msg *msg, ulog_batch *b)
{
    int32_t k = s->rr;
    for (int32_t i = 0; i < s->n; i++) {
        ulog__cursor *c = &s->cur[k];
        int64_t off, ts;
        int err = next_or_reset(s, c, &off, &ts, msg ? NULL : b);
        if (err == 0) {
            if (!(c->in_batch && c->left > 0) && ++k == s->n)
                k = 0;
            s->rr = k;
            if (!msg) {
                b->partition = (int32_t)(c - s->cur);
                return 0;
            }
            fill_msg(s, c - s->cur, off, ts, &s->rec, msg);
            return s->sealed ? open_value(s, (int32_t)(c - s->cur), msg) : 0;
        }
        if (++k == s->n)
            k = 0;
        if (err != ULOG_ETIMEDOUT) {
            /* The bad partition stays where it is (it reports again on
             * its next turn), but the others get their turns. */
            s->rr = k;
            return err;
        }
    }
    return ULOG_ETIMEDOUT;
}

static void drain_fd(ulog_sub *s)
{
    uint64_t v;
    if (s->evfd >= 0)
        while (read(s->evfd, &v, sizeof v) < 0 && errno == EINTR)
            ;
}


static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* poll.spin.us: watches the bell until it moves, for at most spin_ns.
 * Not registered as a sleeper, so writers skip the futex wake meanwhile. */
static void spin_for_bell(ulog__head *bell, int64_t spin_ns)
{
    uint32_t seen = __atomic_load_n(&bell->bell, __ATOMIC_ACQUIRE);
    int64_t until = ulog__mono_ns() + spin_ns;
    do {
        for (int i = 0; i < 64; i++) {
            if (__atomic_load_n(&bell->bell, __ATOMIC_ACQUIRE) != seen)
                return;
            cpu_relax();
        }
    } while (ulog__mono_ns() < until);
}

static void deliver_commits(ulog_sub *s);

/* Everything but the next record of the open batch: other partitions,
 * waiting. Kept out of ulog_poll so the per-record path stays small. */
__attribute__((noinline))
static int poll_slow(ulog_sub *s, int timeout_ms, ulog_msg *msg, ulog_batch *b)
{
    /* A deleted topic's files go: nothing more is read from them, and a
     * read that failed because they went reports the deletion. */
    if (ulog__topic_deleted(s->t))
        return sub_fail(s, ULOG_ENOENT, "the topic was deleted");
    int err = poll_once(s, msg, b);
    if (err != ULOG_ETIMEDOUT)
        return err && ulog__topic_deleted(s->t)
                   ? sub_fail(s, ULOG_ENOENT, "the topic was deleted") : err;
    ulog__head *bell = s->t->parts[0].h;
    int64_t deadline = timeout_ms > 0 ? ulog__mono_ns() + (int64_t)timeout_ms * 1000000 : 0;
    for (;;) {
        /* left: -1 forever, 0 one look (which also drains the descriptor) */
        int64_t left = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : deadline - ulog__mono_ns();
        if (timeout_ms > 0 && left <= 0)
            left = 0;
        if (s->spin_us > 0 && left != 0) {
            int64_t spin = (int64_t)s->spin_us * 1000;
            spin_for_bell(bell, left >= 0 && left < spin ? left : spin);
            if (timeout_ms > 0 && (left = deadline - ulog__mono_ns()) <= 0)
                left = 0;           /* one last look, no sleep */
        }
        /* Register as a sleeper before reading the bell and looking again
         * (see ulog__bell_ring for why this order cannot miss a wake-up). */
        __atomic_add_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
        uint32_t seen = __atomic_load_n(&bell->bell, __ATOMIC_SEQ_CST);
        drain_fd(s);
        err = poll_once(s, msg, b);
        if (err == ULOG_ETIMEDOUT && left != 0)
            ulog__futex_wait_ns(&bell->bell, seen, left);
        __atomic_sub_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
        if (err != 0 && ulog__topic_deleted(s->t))
            return sub_fail(s, ULOG_ENOENT, "the topic was deleted");
        if (err != ULOG_ETIMEDOUT || left == 0)
            return err;
    }
}

int ulog_poll(ulog_sub *s, int timeout_ms, ulog_msg *msg)
{
    if (!s || !msg)
        return ULOG_EINVAL;
    if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
        deliver_commits(s);
    /* The common case, more records in the batch being read, goes
     * straight to that partition's cursor. */
    int32_t k = s->rr;
    ulog__cursor *c = &s->cur[k];
    int64_t off, ts;
    ulog__rec r;
    if (c->in_batch && ulog__cursor_take(c, &r, &off, &ts) == 0) {
        if (c->left == 0 && ++s->rr == s->n)
            s->rr = 0;
        fill_msg(s, k, off, ts, &r, msg);
        return s->sealed ? open_value(s, k, msg) : 0;
    }
    return poll_slow(s, timeout_ms, msg, NULL);
}

int ulog_poll_batch(ulog_sub *s, int timeout_ms, ulog_batch *out)
{
    if (!s)
        return ULOG_EINVAL;
    if (!out || out->struct_size < sizeof(ulog_batch))
        return sub_fail(s, ULOG_EINVAL, "poll_batch: NULL or too small ulog_batch");
    if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
        deliver_commits(s);
    return poll_slow(s, timeout_ms, NULL, out);
}

int ulog_msg_header(const ulog_msg *msg, size_t index, ulog_header *out)
{
    if (!msg || !out || !msg->internal || index >= msg->header_count)
        return ULOG_EINVAL;
    return ulog__rec_header(msg->internal, index, out);
}

static int check_part(ulog_sub *s, int32_t partition)
{
    if (partition == ULOG_PARTITION_ANY || (partition >= 0 && partition < s->n))
        return 0;
    return sub_fail(s, ULOG_EINVAL, "no such partition");
}

static int seek_one(ulog_sub *s, int32_t k, int64_t offset)
{
    ulog__head *h = s->t->parts[k].h;
    int64_t low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
    int64_t high = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
    if (offset < low || offset > high)
        return ulog__fail(s->log, ULOG_EOFFSET,
                          "topic %s partition %d: offset %lld outside [%lld, %lld]",
                          s->t->name, (int)k, (long long)offset, (long long)low,
                          (long long)high);
    return ulog__cursor_seek(&s->cur[k], offset);
}

int ulog_seek(ulog_sub *s, int32_t partition, int64_t offset)
{
    if (!s)
        return ULOG_EINVAL;
    int err = check_part(s, partition);
    if (err)
        return err;
    if (partition != ULOG_PARTITION_ANY)
        return seek_one(s, partition, offset);
    /* Every partition, or none: check all ranges first. */
    for (int32_t k = 0; k < s->n; k++) {
        ulog__head *h = s->t->parts[k].h;
        if (offset < __atomic_load_n(&h->low, __ATOMIC_ACQUIRE) ||
            offset > __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE))
            return seek_one(s, k, offset);
    }
    for (int32_t k = 0; k < s->n && !err; k++)
        err = seek_one(s, k, offset);
    return err;
}

int ulog_seek_time(ulog_sub *s, int32_t partition, int64_t timestamp_ms)
{
    if (!s)
        return ULOG_EINVAL;
    int err = check_part(s, partition);
    if (err)
        return err;
    for (int32_t k = 0; k < s->n && !err; k++) {
        if (partition != ULOG_PARTITION_ANY && k != partition)
            continue;
        int64_t found;
        err = ulog__cursor_seek_time(&s->cur[k], timestamp_ms, &found);
    }
    return err;
}

int ulog_position(ulog_sub *s, int32_t partition, int64_t *offset)
{
    if (!s || !offset || partition < 0 || partition >= s->n)
        return s ? sub_fail(s, ULOG_EINVAL, "position: bad partition or NULL") : ULOG_EINVAL;
    *offset = s->cur[partition].next;
    return 0;
}

/* ---------------------------------------------------------------- commits */

static int need_group(ulog_sub *s, const char *call)
{
    if (s->group)
        return 0;
    return sub_fail(s, ULOG_EINVAL, call);
}

static void positions(ulog_sub *s, ulog_offset *offs)
{
    for (int32_t k = 0; k < s->n; k++)
        offs[k] = (ulog_offset){ k, s->cur[k].next };
}

static int store(ulog_sub *s, const ulog_offset *offs, size_t n)
{
    int err = ulog__meta_group_commit(s->log->meta, s->group, s->t->name, s->t->id, offs, n,
                                      ulog__now_ms());
    if (err)
        sub_fail(s, err, "storing the group's committed offsets");
    return err;
}

/* Runs the callbacks of finished async commits, in call order, in the
 * subscription's thread. */
static void deliver_commits(ulog_sub *s)
{
    pthread_mutex_lock(&s->clock);
    commit_job *j = s->finished;
    s->finished = NULL;
    s->finished_tail = &s->finished;
    __atomic_store_n(&s->done, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->clock);
    while (j) {
        commit_job *next = j->next;
        if (j->cb)
            j->cb(s, j->err, j->arg);
        free(j);
        j = next;
    }
}

/* Waits until every async commit queued so far is stored, then delivers. */
static void drain_commits(ulog_sub *s)
{
    pthread_mutex_lock(&s->clock);
    while (s->inflight > 0)
        pthread_cond_wait(&s->ccond, &s->clock);
    pthread_mutex_unlock(&s->clock);
    deliver_commits(s);
}

/* The committer: stores queued jobs in order. Jobs queued together are
 * stored in one transaction, the last one's positions (each job holds every
 * partition, so the last supersedes the rest); all get its outcome. */
static void *committer_main(void *arg)
{
    ulog_sub *s = arg;
    pthread_mutex_lock(&s->clock);
    for (;;) {
        while (!s->queue && !s->committer_stop)
            pthread_cond_wait(&s->ccond, &s->clock);
        if (!s->queue)
            break;
        commit_job *first = s->queue, *last = first;
        int n = 1;
        while (last->next) {
            last = last->next;
            n++;
        }
        s->queue = NULL;
        s->queue_tail = &s->queue;
        pthread_mutex_unlock(&s->clock);
        int err = store(s, last->offs, (size_t)s->n);
        pthread_mutex_lock(&s->clock);
        for (commit_job *j = first; j; j = j->next)
            j->err = err;
        *s->finished_tail = first;
        s->finished_tail = &last->next;
        s->inflight -= n;
        __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&s->ccond);
    }
    pthread_mutex_unlock(&s->clock);
    return NULL;
}

int ulog_commit(ulog_sub *s)
{
    if (!s)
        return ULOG_EINVAL;
    int err = need_group(s, "commit: the subscription has no group");
    if (err)
        return err;
    drain_commits(s);
    ulog_offset *offs = malloc((size_t)s->n * sizeof *offs);
    if (!offs)
        return sub_fail(s, ULOG_ENOMEM, "commit: out of memory");
    positions(s, offs);
    err = store(s, offs, (size_t)s->n);
    free(offs);
    return err;
}

int ulog_commit_offsets(ulog_sub *s, const ulog_offset *offs, size_t count)
{
    if (!s)
        return ULOG_EINVAL;
    int err = need_group(s, "commit_offsets: the subscription has no group");
    if (err)
        return err;
    if (!offs || count == 0 || count > (size_t)s->n)
        return sub_fail(s, ULOG_EINVAL, "commit_offsets: NULL, none or too many offsets");
    for (size_t i = 0; i < count; i++) {
        int32_t k = offs[i].partition;
        if (k < 0 || k >= s->n)
            return sub_fail(s, ULOG_EINVAL, "commit_offsets: no such partition");
        for (size_t j = 0; j < i; j++)
            if (offs[j].partition == k)
                return sub_fail(s, ULOG_EINVAL, "commit_offsets: partition given twice");
        ulog__head *h = s->t->parts[k].h;
        int64_t low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
        int64_t high = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
        if (offs[i].offset < low || offs[i].offset > high)
            return ulog__fail(s->log, ULOG_EOFFSET,
                              "commit_offsets: topic %s partition %d: offset %lld outside "
                              "[%lld, %lld]", s->t->name, (int)k, (long long)offs[i].offset,
                              (long long)low, (long long)high);
    }
    drain_commits(s);
    return store(s, offs, count);
}

int ulog_commit_async(ulog_sub *s, ulog_commit_cb *cb, void *arg)
{
    if (!s)
        return ULOG_EINVAL;
    int err = need_group(s, "commit_async: the subscription has no group");
    if (err)
        return err;
    deliver_commits(s);
    commit_job *j = malloc(sizeof *j + (size_t)s->n * sizeof j->offs[0]);
    if (!j)
        return sub_fail(s, ULOG_ENOMEM, "commit_async: out of memory");
    j->next = NULL;
    j->cb = cb;
    j->arg = arg;
    j->err = 0;
    positions(s, j->offs);
    pthread_mutex_lock(&s->clock);
    if (!s->committer_started) {
        if (pthread_create(&s->committer, NULL, committer_main, s) != 0) {
            pthread_mutex_unlock(&s->clock);
            free(j);
            return sub_fail(s, ULOG_ENOMEM, "commit_async: starting the committer thread");
        }
        s->committer_started = true;
    }
    *s->queue_tail = j;
    s->queue_tail = &j->next;
    s->inflight++;
    pthread_cond_broadcast(&s->ccond);
    pthread_mutex_unlock(&s->clock);
    return 0;
}

/* Turns bell changes into eventfd readiness for poll/epoll loops. */
static void *fd_main(void *arg)
{
    ulog_sub *s = arg;
    ulog__head *bell = s->t->parts[0].h;
    uint32_t last = __atomic_load_n(&bell->bell, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        __atomic_add_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
        uint32_t b = __atomic_load_n(&bell->bell, __ATOMIC_SEQ_CST);
        if (b == last && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
            ulog__bell_wait(bell, b, 1000);
        __atomic_sub_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
        b = __atomic_load_n(&bell->bell, __ATOMIC_SEQ_CST);
        if (b != last) {
            uint64_t one = 1;
            last = b;
            while (write(s->evfd, &one, sizeof one) < 0 && errno == EINTR)
                ;
        }
    }
    return NULL;
}

int ulog_sub_fd(ulog_sub *s)
{
    if (!s)
        return ULOG_EINVAL;
    if (s->evfd >= 0)
        return s->evfd;
    s->evfd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);   /* readable at first */
    if (s->evfd < 0)
        return sub_fail(s, ulog__errno_to_err(errno), "eventfd");
    if (pthread_create(&s->thr, NULL, fd_main, s) != 0) {
        close(s->evfd);
        s->evfd = -1;
        return sub_fail(s, ULOG_ENOMEM, "starting the descriptor thread");
    }
    s->thr_started = true;
    return s->evfd;
}

void ulog_sub_close(ulog_sub *s)
{
    if (!s)
        return;
    if (s->committer_started) {
        /* A callback may queue another commit: drain until none is left. */
        for (;;) {
            drain_commits(s);
            pthread_mutex_lock(&s->clock);
            bool more = s->inflight > 0 || s->finished;
            pthread_mutex_unlock(&s->clock);
            if (!more)
                break;
        }
        pthread_mutex_lock(&s->clock);
        s->committer_stop = true;
        pthread_cond_broadcast(&s->ccond);
        pthread_mutex_unlock(&s->clock);
        pthread_join(s->committer, NULL);
    }
    pthread_mutex_destroy(&s->clock);
    pthread_cond_destroy(&s->ccond);
    free(s->group);
    if (s->thr_started) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
        /* Ring rather than only wake: a wake that lands between the
         * thread's stop check and its futex wait would be lost, a changed
         * bell is not (other sleepers just look once more). */
        ulog__bell_ring(s->t->parts[0].h);
        ulog__bell_wake_all(s->t->parts[0].h);
        pthread_join(s->thr, NULL);
    }
    if (s->evfd >= 0)
        close(s->evfd);
    if (s->cur)
        for (int32_t i = 0; i < s->n; i++)
            ulog__cursor_close(&s->cur[i]);
    free(s->cur);
    if (s->open)
        explicit_bzero(s->open, s->open_cap);
    free(s->open);
    free(s);
}
