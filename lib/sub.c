/*
 * sub.c -- subscriptions: one cursor per partition of a topic, polled in
 * turn, sleeping on the topic's bell (a futex in partition 0's head) when
 * nothing is committed, so that any process's append wakes them.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct ulog_sub {
    ulog          *log;
    ulog__topic   *t;
    ulog__cursor  *cur;
    int32_t        n;
    int32_t        rr;          /* partition polled next */
    ulog__rec      rec;         /* the record last returned (msg->internal) */
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

int ulog_subscribe(ulog *log, const char *topic, const char *group, const ulog_config *cfg,
                   ulog_sub **out)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !out)
        return ulog__fail(log, ULOG_EINVAL, "subscribe: NULL topic or out");
    *out = NULL;
    if (group && !ulog__name_valid(group))
        return ulog__fail(log, ULOG_EINVAL, "invalid group name");
    if (group)
        return ulog__fail(log, ULOG_ENOTSUP, "consumer groups arrive in 0.2");
    ulog__sub_cfg sc;
    char msg[256];
    int err = ulog__config_sub(cfg, &sc, msg, sizeof msg);
    if (err)
        return ulog__fail(log, err, "subscribe: %s", msg);
    ulog__topic *t;
    if ((err = ulog__topic_get(log, topic, &t)) != 0)
        return err;
    ulog_sub *s = calloc(1, sizeof *s);
    if (!s || !(s->cur = calloc((size_t)t->partitions, sizeof *s->cur))) {
        free(s);
        return ulog__fail(log, ULOG_ENOMEM, "subscribe: out of memory");
    }
    s->log = log;
    s->t = t;
    s->n = t->partitions;
    s->evfd = -1;
    for (int32_t i = 0; i < s->n; i++)
        ulog__cursor_init(&s->cur[i], &t->parts[i]);
    for (int32_t i = 0; i < s->n && !err; i++) {
        ulog__head *h = t->parts[i].h;
        int64_t start = sc.reset == ULOG__RESET_LATEST
                            ? __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE)
                            : __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
        err = ulog__cursor_seek(&s->cur[i], start);
    }
    if (err) {
        ulog_sub_close(s);
        return err;
    }
    *out = s;
    return 0;
}

static void fill_msg(ulog_sub *s, int32_t k, int64_t off, int64_t ts, ulog_msg *msg)
{
    msg->topic = s->t->name;
    msg->partition = k;
    msg->offset = off;
    msg->timestamp = ts;
    msg->key = s->rec.key;
    msg->key_len = s->rec.key_len;
    msg->value = s->rec.value;
    msg->value_len = s->rec.value_len;
    msg->header_count = s->rec.header_count;
    msg->internal = &s->rec;
}

/* One round over the partitions, starting where the last one left off.
 * A partition keeps the turn for the rest of its open batch: fair by
 * batch, and the common case (more records in this batch) is one call. */
static int poll_once(ulog_sub *s, ulog_msg *msg)
{
    int32_t k = s->rr;
    for (int32_t i = 0; i < s->n; i++) {
        ulog__cursor *c = &s->cur[k];
        int64_t off, ts;
        int err = ulog__cursor_next(c, &s->rec, &off, &ts);
        if (err == 0) {
            if (!(c->in_batch && c->left > 0) && ++k == s->n)
                k = 0;
            s->rr = k;
            fill_msg(s, c - s->cur, off, ts, msg);
            return 0;
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


/* Everything but the next record of the open batch: other partitions,
 * waiting. Kept out of ulog_poll so the per-record path stays small. */
__attribute__((noinline))
static int poll_slow(ulog_sub *s, int timeout_ms, ulog_msg *msg)
{
    int err = poll_once(s, msg);
    if (err != ULOG_ETIMEDOUT)
        return err;
    ulog__head *bell = s->t->parts[0].h;
    int64_t deadline = timeout_ms > 0 ? ulog__mono_ms() + timeout_ms : 0;
    for (;;) {
        /* Register as a sleeper before reading the bell and looking again
         * (see ulog__bell_ring for why this order cannot miss a wake-up). */
        __atomic_add_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
        uint32_t seen = __atomic_load_n(&bell->bell, __ATOMIC_SEQ_CST);
        drain_fd(s);
        err = poll_once(s, msg);
        int left = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : (int)(deadline - ulog__mono_ms());
        if (err == ULOG_ETIMEDOUT && left != 0 && !(timeout_ms > 0 && left <= 0))
            ulog__bell_wait(bell, seen, left);
        __atomic_sub_fetch(&bell->bell_waiters, 1, __ATOMIC_SEQ_CST);
        if (err != ULOG_ETIMEDOUT || timeout_ms == 0 || (timeout_ms > 0 && left <= 0))
            return err;
    }
}

int ulog_poll(ulog_sub *s, int timeout_ms, ulog_msg *msg)
{
    if (!s || !msg)
        return ULOG_EINVAL;
    /* The common case, more records in the batch being read, goes
     * straight to that partition's cursor. */
    int32_t k = s->rr;
    ulog__cursor *c = &s->cur[k];
    int64_t off, ts;
    if (c->in_batch && ulog__cursor_take(c, &s->rec, &off, &ts) == 0) {
        if (c->left == 0 && ++s->rr == s->n)
            s->rr = 0;
        fill_msg(s, k, off, ts, msg);
        return 0;
    }
    return poll_slow(s, timeout_ms, msg);
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

int ulog_commit(ulog_sub *s)
{
    if (!s)
        return ULOG_EINVAL;
    return sub_fail(s, ULOG_EINVAL, "commit: the subscription has no group");
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
    free(s);
}
