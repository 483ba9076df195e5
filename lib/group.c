/*
 * group.c -- consumer groups seen from outside a subscription: listing,
 * describing (committed offsets and lag), deleting and resetting. The
 * offsets themselves live in LMDB (meta.c); subscriptions commit them
 * (sub.c).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ulog_group_desc {
    size_t          n;
    ulog_group_lag *v;
    char           *names;    /* topic names the entries point into */
};

static int bad_group(ulog *log, const char *group)
{
    if (ulog__name_valid(group))
        return 0;
    return ulog__fail(log, ULOG_EINVAL, "invalid group name");
}

int ulog_group_list(ulog *log, ulog_strlist **out)
{
    if (!log || !out)
        return log ? ulog__fail(log, ULOG_EINVAL, "group_list: NULL out") : ULOG_EINVAL;
    int err = ulog__meta_group_list(log->meta, out);
    return err ? ulog__fail(log, err, "listing groups") : 0;
}

static int64_t lag_of(int64_t committed, int64_t low, int64_t high)
{
    if (committed > high)
        return 0;
    return high - (committed < low ? low : committed);
}

static int by_topic_partition(const void *a, const void *b)
{
    const ulog_group_lag *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

int ulog_group_describe(ulog *log, const char *group, ulog_group_desc **out)
{
    if (!log)
        return ULOG_EINVAL;
    if (!out)
        return ulog__fail(log, ULOG_EINVAL, "group_describe: NULL out");
    *out = NULL;
    int err = bad_group(log, group);
    if (err)
        return err;
    ulog__group_entry *e;
    size_t n;
    if ((err = ulog__meta_group_entries(log->meta, group, &e, &n)) != 0)
        return ulog__fail(log, err, "group %s: %s", group,
                          err == ULOG_ENOENT ? "no such group" : "reading its offsets");
    ulog_group_desc *d = calloc(1, sizeof *d);
    if (!d || !(d->v = calloc(n, sizeof *d->v)) ||
        !(d->names = malloc(n * (ULOG__NAME_MAX + 1)))) {
        ulog_group_desc_free(d);
        free(e);
        return ulog__fail(log, ULOG_ENOMEM, "group_describe: out of memory");
    }
    /* Entries come in topic id order: one catalog lookup per topic. */
    ulog__topic *t = NULL;
    uint32_t tid = 0;
    for (size_t i = 0; i < n && !err; i++) {
        char *name = d->names + d->n * (ULOG__NAME_MAX + 1);
        if (!t || e[i].topic_id != tid) {
            t = NULL;
            tid = e[i].topic_id;
            err = ulog__meta_topic_name(log->meta, tid, name);
            if (err == ULOG_ENOENT) {   /* a topic that is gone: nothing to describe */
                err = 0;
                continue;
            }
            if (!err)
                err = ulog__topic_get(log, name, &t);
            /* Deleted meanwhile (maybe created again: another topic). */
            if (err == ULOG_ENOENT || (!err && t->id != tid)) {
                err = 0;
                t = NULL;
                continue;
            }
        }
        if (err || !t || e[i].partition < 0 || e[i].partition >= t->partitions)
            continue;
        ulog__head *h = t->parts[e[i].partition].h;
        ulog_group_lag *g = &d->v[d->n++];
        g->struct_size = sizeof *g;
        g->topic = t->name;
        g->partition = e[i].partition;
        g->committed = e[i].offset;
        g->low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
        g->high = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
        g->lag = lag_of(g->committed, g->low, g->high);
        g->commit_time = e[i].time_ms;
    }
    free(e);
    if (err) {
        ulog_group_desc_free(d);
        return ulog__fail(log, err, "group %s: describing", group);
    }
    /* topic points at the topic table, which lives as long as the handle;
     * the description must not depend on that, so copy the names. */
    for (size_t i = 0; i < d->n; i++) {
        char *name = d->names + i * (ULOG__NAME_MAX + 1);
        snprintf(name, ULOG__NAME_MAX + 1, "%s", d->v[i].topic);
        d->v[i].topic = name;
    }
    qsort(d->v, d->n, sizeof *d->v, by_topic_partition);
    *out = d;
    return 0;
}

size_t ulog_group_desc_count(const ulog_group_desc *d)
{
    return d ? d->n : 0;
}

int ulog_group_desc_get(const ulog_group_desc *d, size_t i, ulog_group_lag *out)
{
    if (!d || !out || i >= d->n || out->struct_size < sizeof *out)
        return ULOG_EINVAL;
    *out = d->v[i];
    return 0;
}

void ulog_group_desc_free(ulog_group_desc *d)
{
    if (!d)
        return;
    free(d->v);
    free(d->names);
    free(d);
}

int ulog_group_delete(ulog *log, const char *group)
{
    if (!log)
        return ULOG_EINVAL;
    int err = bad_group(log, group);
    if (err)
        return err;
    err = ulog__meta_group_delete(log->meta, group);
    return err ? ulog__fail(log, err, "group %s: %s", group,
                            err == ULOG_ENOENT ? "no such group" : "deleting")
               : 0;
}

/* The offset `how` names for partition k. */
static int reset_target(ulog *log, ulog__topic *t, int32_t k, int how, int64_t value,
                        int64_t *out)
{
    ulog__head *h = t->parts[k].h;
    int64_t low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
    int64_t high = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
    switch (how) {
    case ULOG_RESET_EARLIEST:
        *out = low;
        return 0;
    case ULOG_RESET_LATEST:
        *out = high;
        return 0;
    case ULOG_RESET_OFFSET:
        if (value < low || value > high)
            return ulog__fail(log, ULOG_EOFFSET,
                              "group reset: topic %s partition %d: offset %lld outside "
                              "[%lld, %lld]", t->name, (int)k, (long long)value,
                              (long long)low, (long long)high);
        *out = value;
        return 0;
    default: {                                  /* ULOG_RESET_TIME */
        ulog__cursor c;
        ulog__cursor_init(&c, &t->parts[k]);
        int err = ulog__cursor_seek_time(&c, value, out);
        ulog__cursor_close(&c);
        return err;
    }
    }
}

int ulog_group_reset(ulog *log, const char *group, const char *topic, int32_t partition,
                     int how, int64_t value)
{
    if (!log)
        return ULOG_EINVAL;
    int err = bad_group(log, group);
    if (err)
        return err;
    if (!topic)
        return ulog__fail(log, ULOG_EINVAL, "group reset: NULL topic");
    if (how < ULOG_RESET_EARLIEST || how > ULOG_RESET_TIME)
        return ulog__fail(log, ULOG_EINVAL, "group reset: unknown kind %d", how);
    ulog__topic *t;
    if ((err = ulog__topic_get(log, topic, &t)) != 0)
        return err;
    if (partition != ULOG_PARTITION_ANY && (partition < 0 || partition >= t->partitions))
        return ulog__fail(log, ULOG_EINVAL, "group reset: topic %s has no partition %d",
                          t->name, (int)partition);
    int32_t first = partition == ULOG_PARTITION_ANY ? 0 : partition;
    int32_t end = partition == ULOG_PARTITION_ANY ? t->partitions : partition + 1;
    ulog_offset *offs = malloc((size_t)(end - first) * sizeof *offs);
    if (!offs)
        return ulog__fail(log, ULOG_ENOMEM, "group reset: out of memory");
    for (int32_t k = first; k < end && !err; k++) {
        offs[k - first].partition = k;
        err = reset_target(log, t, k, how, value, &offs[k - first].offset);
    }
    if (!err && (err = ulog__meta_group_commit(log->meta, group, t->name, t->id, offs,
                                                (size_t)(end - first), ulog__now_ms())) != 0)
        ulog__fail(log, err, "group %s: storing the reset", group);
    free(offs);
    return err;
}
