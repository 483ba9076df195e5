/*
 * verify.c -- ulog_verify(): read every committed record of a topic (or of
 * the whole root) the way a subscriber does, and report what fails.
 *
 * The walk is the reader's own cursor, so what verify accepts is exactly
 * what ulog_poll() will deliver: each batch's frame, magic, codec and CRC,
 * offset continuity across batches and segments, and every record's bounds
 * and offset delta. A corrupt batch hides where the next one starts, so
 * after one the check goes on at the next segment, and the offsets in
 * between are reported as not verified.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Progress reports at most this often, in records. */
#define PROGRESS_EVERY 65536

typedef struct run {
    ulog_verify_cb   *cb;
    void             *arg;
    ulog_verify_info *info;
    int               stop;       /* a callback's non-zero answer */
} run;

static int report(run *r)
{
    if (r->cb && !r->stop)
        r->stop = r->cb(r->info, r->arg);
    return r->stop;
}

/* Reports the failure `err` at offset `at` of the partition; the check goes
 * on at `resume`, and the offsets passed over count as done. */
static int problem(run *r, int err, int64_t at, int64_t resume)
{
    ulog_verify_info *in = r->info;
    char detail[512];
    ulog_errmsg(NULL, detail, sizeof detail);
    in->records_done += resume - at;
    in->corrupt++;
    in->error = err;
    in->offset = at;
    in->resume = resume;
    in->detail = detail;
    int stop = report(r);
    in->error = 0;
    in->offset = in->resume = -1;
    in->detail = NULL;
    return stop;
}

/* Verifies [low, high) of one partition. */
static int verify_part(run *r, ulog__part *p, int64_t low, int64_t high)
{
    ulog_verify_info *in = r->info;
    ulog__cursor c;
    ulog__cursor_init(&c, p);
    int64_t at = low, since = 0;
    int err = low < high ? ulog__cursor_seek(&c, low) : 0;
    while (at < high && !r->stop) {
        ulog__rec rec;
        int64_t off, ts;
        if (!err)
            err = ulog__cursor_next(&c, &rec, &off, &ts);
        if (!err) {
            in->records_done++;
            at = off + 1;
            if (++since == PROGRESS_EVERY) {
                since = 0;
                report(r);
            }
            continue;
        }
        /* Retention moved the log start past the check: what is gone is
         * not a problem; go on from the new start. */
        if (err == ULOG_EOFFSET) {
            int64_t lo = __atomic_load_n(&p->h->low, __ATOMIC_ACQUIRE);
            if (lo > at) {
                in->records_done += (lo < high ? lo : high) - at;
                at = lo;
                err = at < high ? ulog__cursor_seek(&c, at) : 0;
                continue;
            }
        }
        /* The cursor reports committed records it cannot reach (a cut
         * file) as ULOG_ECORRUPT: below `committed` it never waits. */
        if (err != ULOG_ECORRUPT && err != ULOG_ENOTSUP && err != ULOG_EIO)
            break;
        /* Go on at the next segment, if it starts before high. */
        int64_t next;
        int serr = ulog__seg_next(p->dirfd, c.map.base, &next);
        int64_t resume = serr == 0 && next > at && next < high ? next : high;
        problem(r, err, at, resume);
        at = resume;
        err = at < high ? ulog__cursor_seek(&c, at) : 0;
    }
    ulog__cursor_close(&c);
    return err == ULOG_ECORRUPT || err == ULOG_ENOTSUP || err == ULOG_EIO ? 0 : err;
}

/* The partitions of `topics`, in order, with their watermarks. */
typedef struct target {
    ulog__topic *t;
    int32_t      part;
    int64_t      low, high;
} target;

int ulog_verify(ulog *log, const char *topic, ulog_verify_cb *cb, void *arg,
                ulog_verify_info *out)
{
    if (!log)
        return ULOG_EINVAL;
    if (out && out->struct_size < sizeof *out)
        return ulog__fail(log, ULOG_EINVAL, "verify: bad info struct");
    ulog_strlist *names = NULL;
    int err = topic ? 0 : ulog_topic_list(log, &names);
    if (err)
        return err;
    size_t ntopics = topic ? 1 : ulog_strlist_count(names);
    target *tg = NULL;
    size_t n = 0, cap = 0;
    ulog_verify_info info = { .struct_size = sizeof info, .offset = -1, .resume = -1 };
    for (size_t i = 0; !err && i < ntopics; i++) {
        const char *name = topic ? topic : ulog_strlist_get(names, i);
        ulog__topic *t;
        if ((err = ulog__topic_get(log, name, &t)) != 0)
            break;
        for (int32_t k = 0; !err && k < t->partitions; k++) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                target *m = realloc(tg, ncap * sizeof *tg);
                if (!m) {
                    err = ulog__fail(log, ULOG_ENOMEM, "verify: out of memory");
                    break;
                }
                tg = m;
                cap = ncap;
            }
            tg[n] = (target){ t, k, 0, 0 };
            err = ulog_watermarks(log, name, k, &tg[n].low, &tg[n].high);
            if (!err)
                info.records_total += tg[n].high - tg[n].low;
            n++;
        }
    }
    run r = { cb, arg, &info, 0 };
    for (size_t i = 0; !err && i < n && !r.stop; i++) {
        info.topic = tg[i].t->name;
        info.partition = tg[i].part;
        info.partitions_done = (int64_t)i;
        if (!report(&r))
            err = verify_part(&r, &tg[i].t->parts[tg[i].part], tg[i].low, tg[i].high);
    }
    if (!err && !r.stop) {
        info.partitions_done = (int64_t)n;
        report(&r);
    }
    free(tg);
    ulog_strlist_free(names);
    if (out) {
        size_t size = out->struct_size;
        *out = info;
        out->struct_size = size;
        out->topic = NULL;
    }
    if (err)
        return err;
    if (r.stop)
        return r.stop;
    return info.corrupt ? ULOG_ECORRUPT : 0;
}
