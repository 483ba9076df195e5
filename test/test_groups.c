/* test_groups.c -- consumer groups through the public API: resuming after
 * ulog_commit (also across ulog_close/ulog_open and across processes),
 * auto.offset.reset for partitions without a committed offset,
 * ulog_commit_offsets, ulog_commit_async and its callbacks, listing,
 * describing, deleting and resetting groups, hostile group names, and the
 * poll.spin.us setting. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static char root[256];

SCRATCH_SUITE(groups, root);

#define MAXP 8
#define T0   1700000000000LL

static ulog *open_log(void)
{
    return open_at(root, NULL);
}

/* A topic that does not sync: these tests are about groups, not durability. */
static void make_topic(ulog *log, const char *name, int32_t parts)
{
    create_topic(log, name, parts, cfg_of("flush.policy", "none", NULL));
}

static void put64(uint8_t *b, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get64(const void *p)
{
    const uint8_t *b = p;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)b[i] << (8 * i);
    return x;
}

/* The value of the record at (partition, offset) for records appended to an
 * explicit partition. */
static uint64_t tag_of(int32_t p, int64_t off)
{
    return ((uint64_t)(uint32_t)p << 32) | (uint64_t)off;
}

/* Appends n records to partition p, in batches of up to 8; their values are
 * tag_of(p, offset) and their timestamps ts[i] (ts NULL: now). Checks the
 * offsets they get. */
static void append_part_ts(ulog *log, const char *topic, int32_t p, int n, const int64_t *ts)
{
    int64_t lo, hi;
    watermarks(log, topic, p, &lo, &hi);
    for (int done = 0; done < n;) {
        enum { B = 8 };
        ulog_record r[B];
        uint8_t v[B][8];
        int b = n - done < B ? n - done : B;
        for (int i = 0; i < b; i++) {
            put64(v[i], tag_of(p, hi + done + i));
            r[i] = (ulog_record){ .value = v[i], .value_len = 8,
                                  .timestamp = ts ? ts[done + i] : ULOG_TIMESTAMP_NOW,
                                  .partition = p };
        }
        append_ok(log, topic, r, (size_t)b);
        for (int i = 0; i < b; i++) {
            cr_assert_eq(r[i].partition, p);
            cr_assert_eq(r[i].offset, hi + done + i);
        }
        done += b;
    }
}

static void append_part(ulog *log, const char *topic, int32_t p, int n)
{
    append_part_ts(log, topic, p, n, NULL);
}

/* n records to each of partitions 0..parts-1, five per partition in turn, so
 * that a subscriber reads the partitions interleaved. */
static void append_each(ulog *log, const char *topic, int32_t parts, int n)
{
    for (int done = 0; done < n; done += 5)
        for (int32_t p = 0; p < parts; p++)
            append_part(log, topic, p, n - done < 5 ? n - done : 5);
}

static int64_t high_of(ulog *log, const char *topic, int32_t p)
{
    int64_t lo, hi;
    watermarks(log, topic, p, &lo, &hi);
    return hi;
}

static ulog_config *reset_cfg(const char *reset)
{
    return reset ? cfg_of("auto.offset.reset", reset, NULL) : NULL;
}

/* ulog_subscribe with auto.offset.reset = reset (NULL: no config). */
static int try_sub(ulog *log, const char *topic, const char *group, const char *reset,
                   ulog_sub **out)
{
    ulog_config *c = reset_cfg(reset);
    int rc = ulog_subscribe(log, topic, group, c, out);
    ulog_config_free(c);
    return rc;
}

static ulog_sub *sub_group(ulog *log, const char *topic, const char *group, const char *reset)
{
    ulog_sub *s = NULL;
    int rc = try_sub(log, topic, group, reset, &s);
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "ulog_subscribe(%s, %s, reset %s): %s (%s)", topic,
                 group ? group : "NULL", reset ? reset : "default", ulog_errname(rc), msg);
    cr_assert_not_null(s);
    return s;
}

static int64_t position(ulog_sub *s, int32_t p)
{
    int64_t off = -42;
    int rc = ulog_position(s, p, &off);
    cr_assert_eq(rc, 0, "ulog_position(%d): %s", (int)p, ulog_errname(rc));
    return off;
}

static void commit_ok(ulog_sub *s)
{
    int rc = ulog_commit(s);
    cr_assert_eq(rc, 0, "ulog_commit: %s", ulog_errname(rc));
}

static void commit_offsets_ok(ulog_sub *s, const ulog_offset *o, size_t n)
{
    int rc = ulog_commit_offsets(s, o, n);
    cr_assert_eq(rc, 0, "ulog_commit_offsets: %s", ulog_errname(rc));
}

static void reset_ok(ulog *log, const char *group, const char *topic, int32_t p, int how,
                     int64_t value)
{
    int rc = ulog_group_reset(log, group, topic, p, how, value);
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "ulog_group_reset(%s, %s, %d, how %d, %lld): %s (%s)", group, topic,
                 (int)p, how, (long long)value, ulog_errname(rc), msg);
}

/* ------------------------------------------------ reading what is expected */

/* seq_at[p][off]: the sequence number of the keyed record at (p, off). */
#define KEYED_N 1000
#define KEYED_P 4
static int64_t seq_at[KEYED_P][KEYED_N];

/* What a subscriber must read next: per partition, the next offset; every
 * record exactly once, in offset order per partition. */
typedef struct track {
    int32_t n;
    bool    keyed;          /* values are seq_at[][], else tag_of(p, off) */
    int64_t next[MAXP];
    long    got;
} track;

/* Starts at the subscription's positions. */
static track track_from(ulog_sub *s, int32_t n, bool keyed)
{
    track t = { .n = n, .keyed = keyed };
    cr_assert_leq(n, MAXP);
    for (int32_t p = 0; p < n; p++)
        t.next[p] = position(s, p);
    return t;
}

static void check_msg(track *t, const ulog_msg *m)
{
    cr_assert(m->partition >= 0 && m->partition < t->n, "partition %d", (int)m->partition);
    int32_t p = m->partition;
    cr_assert_eq(m->offset, t->next[p], "partition %d: polled offset %lld, expected %lld",
                 (int)p, (long long)m->offset, (long long)t->next[p]);
    cr_assert_eq(m->value_len, 8, "partition %d offset %lld: value of %zu bytes", (int)p,
                 (long long)m->offset, m->value_len);
    uint64_t v = get64(m->value);
    if (t->keyed) {
        cr_assert_lt(m->offset, KEYED_N);
        cr_assert_eq((int64_t)v, seq_at[p][m->offset], "partition %d offset %lld: seq %lld",
                     (int)p, (long long)m->offset, (long long)v);
    } else {
        cr_assert_eq(v, tag_of(p, m->offset), "partition %d offset %lld: wrong record", (int)p,
                     (long long)m->offset);
    }
    t->next[p]++;
    t->got++;
}

/* Polls exactly count records, all already committed. */
/* The call a commit callback runs inside (see commit_async_callbacks). */

/* The call a commit callback runs inside (see commit_async_callbacks). */
static const char *in_call;

static void poll_expect(ulog_sub *s, track *t, long count)
{
    for (long i = 0; i < count; i++) {
        ulog_msg m;
        in_call = "ulog_poll";
        int rc = ulog_poll(s, 1000, &m);
        in_call = NULL;
        cr_assert_eq(rc, 0, "poll %ld of %ld: %s", i + 1, count, ulog_errname(rc));
        check_msg(t, &m);
    }
}

/* Polls until caught up; returns the number of records read. */
static long drain(ulog_sub *s, track *t)
{
    long n = 0;
    for (;;) {
        ulog_msg m;
        in_call = "ulog_poll";
        int rc = ulog_poll(s, 0, &m);
        in_call = NULL;
        if (rc == ULOG_ETIMEDOUT)
            return n;
        cr_assert_eq(rc, 0, "poll: %s", ulog_errname(rc));
        check_msg(t, &m);
        n++;
    }
}

/* ------------------------------------------------ group descriptions */

typedef struct gent {
    char    topic[256];
    int32_t partition;
    int64_t committed, low, high, lag, commit_time;
} gent;

typedef struct gsnap {
    size_t n;
    gent   e[16];
} gsnap;

/* ulog_group_describe into *g, checking what holds for every description:
 * entries sorted by topic name then partition, each once, and the lag rule. */
static int describe(ulog *log, const char *group, gsnap *g)
{
    ulog_group_desc *d = NULL;
    memset(g, 0, sizeof *g);
    int rc = ulog_group_describe(log, group, &d);
    if (rc)
        return rc;
    cr_assert_not_null(d);
    g->n = ulog_group_desc_count(d);
    cr_assert_leq(g->n, 16);
    for (size_t i = 0; i < g->n; i++) {
        ulog_group_lag l = ULOG_GROUP_LAG_INIT;
        rc = ulog_group_desc_get(d, i, &l);
        cr_assert_eq(rc, 0, "ulog_group_desc_get(%zu): %s", i, ulog_errname(rc));
        cr_assert_not_null(l.topic);
        gent *e = &g->e[i];
        cr_assert_lt(strlen(l.topic), sizeof e->topic);
        strcpy(e->topic, l.topic);
        e->partition = l.partition;
        e->committed = l.committed;
        e->low = l.low;
        e->high = l.high;
        e->lag = l.lag;
        e->commit_time = l.commit_time;
        cr_assert_leq(e->low, e->high);
        int64_t want = e->committed < e->low    ? e->high - e->low
                       : e->committed > e->high ? 0
                                                : e->high - e->committed;
        cr_assert_eq(e->lag, want, "%s/%d: lag %lld with committed %lld in [%lld, %lld]",
                     e->topic, (int)e->partition, (long long)e->lag, (long long)e->committed,
                     (long long)e->low, (long long)e->high);
        if (i > 0) {
            const gent *prev = &g->e[i - 1];
            int c = strcmp(prev->topic, e->topic);
            cr_assert(c < 0 || (c == 0 && prev->partition < e->partition),
                      "group %s: entry %zu (%s/%d) after (%s/%d)", group, i, e->topic,
                      (int)e->partition, prev->topic, (int)prev->partition);
        }
    }
    ulog_group_desc_free(d);
    return 0;
}

static void describe_ok(ulog *log, const char *group, gsnap *g)
{
    int rc = describe(log, group, g);
    cr_assert_eq(rc, 0, "ulog_group_describe(%s): %s", group, ulog_errname(rc));
}

static const gent *entry_of(const gsnap *g, const char *topic, int32_t p)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->e[i].topic, topic) == 0 && g->e[i].partition == p)
            return &g->e[i];
    return NULL;
}

/* The committed offset of (topic, p) in g; -1 when g has none. */
static int64_t committed_of(const gsnap *g, const char *topic, int32_t p)
{
    const gent *e = entry_of(g, topic, p);
    return e ? e->committed : -1;
}

/* The same entries, committed offsets and commit times. */
static void assert_same_commits(const gsnap *a, const gsnap *b, const char *what)
{
    cr_assert_eq(a->n, b->n, "%s: %zu entries, were %zu", what, b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_str_eq(a->e[i].topic, b->e[i].topic, "%s", what);
        cr_assert_eq(a->e[i].partition, b->e[i].partition, "%s", what);
        cr_assert_eq(a->e[i].committed, b->e[i].committed, "%s: %s/%d committed %lld, was %lld",
                     what, a->e[i].topic, (int)a->e[i].partition, (long long)b->e[i].committed,
                     (long long)a->e[i].committed);
        cr_assert_eq(a->e[i].commit_time, b->e[i].commit_time, "%s: commit time changed", what);
    }
}

/* The group list joined with commas, checking strlist_get past the end. */
static void groups_str(ulog *log, char *buf, size_t size)
{
    ulog_strlist *l = NULL;
    int rc = ulog_group_list(log, &l);
    cr_assert_eq(rc, 0, "ulog_group_list: %s", ulog_errname(rc));
    cr_assert_not_null(l);
    size_t n = ulog_strlist_count(l), used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name = ulog_strlist_get(l, i);
        cr_assert_not_null(name);
        int w = snprintf(buf + used, size - used, "%s%s", i ? "," : "", name);
        cr_assert(w >= 0 && (size_t)w < size - used);
        used += (size_t)w;
    }
    cr_assert_null(ulog_strlist_get(l, n));
    ulog_strlist_free(l);
}

static void assert_groups(ulog *log, const char *want)
{
    char buf[4096];
    groups_str(log, buf, sizeof buf);
    cr_assert_str_eq(buf, want, "group list \"%s\", expected \"%s\"", buf, want);
}

/* ------------------------------------------------ callbacks */

typedef struct cb_call {
    ulog_sub   *sub;
    int         err;
    void       *arg;
    const char *where;
} cb_call;

static cb_call cb_calls[32];
static int     cb_n;

static void record_cb(ulog_sub *sub, int err, void *arg)
{
    if (cb_n < 32)
        cb_calls[cb_n] = (cb_call){ sub, err, arg, in_call };
    cb_n++;
}

static int poll_in(ulog_sub *s, int timeout_ms, ulog_msg *m)
{
    in_call = "ulog_poll";
    int rc = ulog_poll(s, timeout_ms, m);
    in_call = NULL;
    return rc;
}

static int commit_in(ulog_sub *s)
{
    in_call = "ulog_commit";
    int rc = ulog_commit(s);
    in_call = NULL;
    return rc;
}

static int async_in(ulog_sub *s, ulog_commit_cb *cb, void *arg)
{
    in_call = "ulog_commit_async";
    int rc = ulog_commit_async(s, cb, arg);
    in_call = NULL;
    return rc;
}

static void close_in(ulog_sub *s)
{
    in_call = "ulog_sub_close";
    ulog_sub_close(s);
    in_call = NULL;
}

/* Callback i ran for sub with arg, err 0, inside one of the calls allowed. */
static void assert_cb(int i, ulog_sub *sub, void *arg)
{
    cr_assert_lt(i, cb_n);
    const cb_call *c = &cb_calls[i];
    cr_assert_eq(c->sub, sub, "callback %d: sub %p, expected %p", i, (void *)c->sub, (void *)sub);
    cr_assert_eq(c->err, 0, "callback %d: err %s", i, ulog_errname(c->err));
    cr_assert_eq(c->arg, arg, "callback %d: arg %p, expected %p (out of order?)", i, c->arg, arg);
    cr_assert_not_null(c->where, "callback %d ran outside any ulog call on the subscription", i);
}

/* ------------------------------------------------ resuming after commit */

/* 1000 keyed records over 4 partitions, ten per ulog_append call. */
static void append_keyed(ulog *log, const char *topic)
{
    int64_t count[KEYED_P] = { 0 };
    for (int base = 0; base < KEYED_N; base += 10) {
        ulog_record r[10];
        char keys[10][16];
        uint8_t vals[10][8];
        for (int i = 0; i < 10; i++) {
            int seq = base + i;
            int klen = snprintf(keys[i], sizeof keys[i], "key-%d", (int)(mix64((uint64_t)seq) % 97));
            put64(vals[i], (uint64_t)seq);
            r[i] = (ulog_record){ .key = keys[i], .key_len = (size_t)klen, .value = vals[i],
                                  .value_len = 8, .timestamp = ULOG_TIMESTAMP_NOW,
                                  .partition = ULOG_PARTITION_ANY };
        }
        append_ok(log, topic, r, 10);
        for (int i = 0; i < 10; i++) {
            int32_t p = r[i].partition;
            cr_assert(p >= 0 && p < KEYED_P, "partition %d", (int)p);
            cr_assert_eq(r[i].offset, count[p]);
            seq_at[p][count[p]++] = base + i;
        }
    }
}

/* A new subscription of group g must start at want[] and read exactly the
 * records from there to the end, each once. */
static void assert_resumes(ulog *log, const char *topic, const char *group, const char *reset,
                           const int64_t *want, int32_t parts, bool keyed)
{
    ulog_sub *s = sub_group(log, topic, group, reset);
    long expect = 0;
    for (int32_t p = 0; p < parts; p++) {
        cr_assert_eq(position(s, p), want[p], "group %s (reset %s) partition %d starts at %lld, not %lld",
                     group, reset ? reset : "default", (int)p, (long long)position(s, p),
                     (long long)want[p]);
        expect += high_of(log, topic, p) - want[p];
    }
    track t = track_from(s, parts, keyed);
    cr_assert_eq(drain(s, &t), expect);
    for (int32_t p = 0; p < parts; p++)
        cr_assert_eq(t.next[p], high_of(log, topic, p));
    ulog_sub_close(s);
}

Test(groups, resume_after_commit_every_partition, .timeout = 60)
{
    ulog *log = open_log();
    make_topic(log, "orders", KEYED_P);
    append_keyed(log, "orders");
    int64_t high[KEYED_P], total = 0;
    for (int32_t p = 0; p < KEYED_P; p++) {
        high[p] = high_of(log, "orders", p);
        cr_assert_gt(high[p], 0);
        total += high[p];
    }
    cr_assert_eq(total, KEYED_N);

    ulog_sub *s = sub_group(log, "orders", "svc", "earliest");
    track t = track_from(s, KEYED_P, true);
    for (int32_t p = 0; p < KEYED_P; p++)
        cr_assert_eq(t.next[p], 0);
    poll_expect(s, &t, 300);
    int64_t committed[KEYED_P];
    for (int32_t p = 0; p < KEYED_P; p++) {
        committed[p] = position(s, p);
        cr_assert_eq(committed[p], t.next[p]);
        /* Every partition is mid-way: the test means something on each. */
        cr_assert(committed[p] > 0 && committed[p] < high[p],
                  "partition %d at %lld of %lld", (int)p, (long long)committed[p],
                  (long long)high[p]);
    }
    commit_ok(s);
    poll_expect(s, &t, 200);                /* read, never committed */
    ulog_sub_close(s);

    /* The committed offsets win over any auto.offset.reset. */
    assert_resumes(log, "orders", "svc", "latest", committed, KEYED_P, true);
    assert_resumes(log, "orders", "svc", "earliest", committed, KEYED_P, true);
    assert_resumes(log, "orders", "svc", "none", committed, KEYED_P, true);
    assert_resumes(log, "orders", "svc", NULL, committed, KEYED_P, true);

    /* The same after closing and reopening the root. */
    ulog_close(log);
    log = open_log();
    assert_resumes(log, "orders", "svc", NULL, committed, KEYED_P, true);
    assert_resumes(log, "orders", "svc", "earliest", committed, KEYED_P, true);

    /* Resume, read 100 more, commit again: the next one resumes there. */
    s = sub_group(log, "orders", "svc", "latest");
    t = track_from(s, KEYED_P, true);
    poll_expect(s, &t, 100);
    commit_ok(s);
    ulog_sub_close(s);
    int64_t again[KEYED_P];
    memcpy(again, t.next, sizeof again);
    ulog_close(log);
    log = open_log();
    assert_resumes(log, "orders", "svc", "none", again, KEYED_P, true);
    ulog_close(log);
}

Test(groups, groups_are_separate_and_last_commit_wins, .timeout = 30)
{
    ulog *log = open_log();
    make_topic(log, "t", 2);
    append_each(log, "t", 2, 50);

    ulog_sub *a = sub_group(log, "t", "g1", "earliest");
    track ta = track_from(a, 2, false);
    poll_expect(a, &ta, 30);
    commit_ok(a);

    ulog_sub *b = sub_group(log, "t", "g2", "earliest");
    track tb = track_from(b, 2, false);
    poll_expect(b, &tb, 60);
    commit_ok(b);

    /* A second live subscription of g1 starts at g1's commit... */
    ulog_sub *c = sub_group(log, "t", "g1", "earliest");
    for (int32_t p = 0; p < 2; p++)
        cr_assert_eq(position(c, p), ta.next[p]);
    track tc = track_from(c, 2, false);
    poll_expect(c, &tc, 40);
    commit_ok(c);                           /* ...and its commit wins */
    gsnap g;
    describe_ok(log, "g1", &g);
    cr_assert_eq(g.n, 2);
    for (int32_t p = 0; p < 2; p++)
        cr_assert_eq(committed_of(&g, "t", p), tc.next[p]);

    commit_ok(a);                           /* until a commits again */
    ulog_sub_close(a);
    ulog_sub_close(b);
    ulog_sub_close(c);
    assert_resumes(log, "t", "g1", "earliest", ta.next, 2, false);
    assert_resumes(log, "t", "g2", "earliest", tb.next, 2, false);
    ulog_close(log);
}

Test(groups, commit_stores_every_partition_and_seeks)
{
    ulog *log = open_log();
    make_topic(log, "t", 3);
    append_each(log, "t", 3, 10);
    make_topic(log, "empty", 2);

    /* Nothing polled: the start positions (latest) of every partition. */
    ulog_sub *s = sub_group(log, "t", "s", "latest");
    commit_ok(s);
    gsnap g;
    describe_ok(log, "s", &g);
    cr_assert_eq(g.n, 3);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(committed_of(&g, "t", p), 10);

    /* A seek moves the position; the commit stores it. */
    cr_assert_eq(ulog_seek(s, 1, 3), 0);
    commit_ok(s);
    describe_ok(log, "s", &g);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(committed_of(&g, "t", 0), 10);
    cr_assert_eq(committed_of(&g, "t", 1), 3);
    cr_assert_eq(committed_of(&g, "t", 2), 10);
    cr_assert_eq(entry_of(&g, "t", 1)->lag, 7);
    ulog_sub_close(s);
    int64_t want[3] = { 10, 3, 10 };
    assert_resumes(log, "t", "s", "earliest", want, 3, false);

    /* Partitions holding nothing commit offset 0. */
    s = sub_group(log, "empty", "e", "earliest");
    commit_ok(s);
    ulog_sub_close(s);
    describe_ok(log, "e", &g);
    cr_assert_eq(g.n, 2);
    for (int32_t p = 0; p < 2; p++) {
        const gent *e = entry_of(&g, "empty", p);
        cr_assert_not_null(e);
        cr_assert_eq(e->committed, 0);
        cr_assert_eq(e->low, 0);
        cr_assert_eq(e->high, 0);
        cr_assert_eq(e->lag, 0);
    }
    /* ...which a subscription with "none" takes; records appended later are
     * read from 0. */
    append_part(log, "empty", 1, 3);
    int64_t zero[2] = { 0, 0 };
    assert_resumes(log, "empty", "e", "none", zero, 2, false);
    ulog_close(log);
}

Test(groups, cross_process_commit, .timeout = 30)
{
    ulog *log = open_log();
    make_topic(log, "xp", 2);
    append_each(log, "xp", 2, 20);
    ulog_close(log);

    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* No Criterion assertions here. */
        ulog *l = NULL;
        ulog_sub *s = NULL;
        ulog_config *c = cfg_try("auto.offset.reset", "earliest", NULL);
        if (!c || ulog_open(root, NULL, &l) != 0)
            _exit(2);
        if (ulog_subscribe(l, "xp", "px", c, &s) != 0)
            _exit(3);
        for (int i = 0; i < 13; i++) {
            ulog_msg m;
            if (ulog_poll(s, 1000, &m) != 0)
                _exit(4);
        }
        if (ulog_commit(s) != 0)
            _exit(5);
        ulog_sub_close(s);
        ulog_close(l);
        ulog_config_free(c);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);

    log = open_log();
    assert_groups(log, "px");
    gsnap g;
    describe_ok(log, "px", &g);
    cr_assert_eq(g.n, 2);
    int64_t want[2];
    for (int32_t p = 0; p < 2; p++) {
        want[p] = committed_of(&g, "xp", p);
        cr_assert(want[p] >= 0 && want[p] <= 20);
    }
    cr_assert_eq(want[0] + want[1], 13);
    assert_resumes(log, "xp", "px", "none", want, 2, false);
    ulog_close(log);
}

/* ------------------------------------------------ auto.offset.reset */

Test(groups, auto_offset_reset_without_commits)
{
    ulog *log = open_log();
    make_topic(log, "t", 3);
    append_each(log, "t", 3, 5);

    /* earliest */
    ulog_sub *s = sub_group(log, "t", "fresh-e", "earliest");
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), 0);
    track t = track_from(s, 3, false);
    cr_assert_eq(drain(s, &t), 15);
    ulog_sub_close(s);

    /* latest: only what is appended afterwards */
    s = sub_group(log, "t", "fresh-l", "latest");
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), 5);
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    append_part(log, "t", 1, 1);
    cr_assert_eq(ulog_poll(s, 1000, &m), 0);
    cr_assert_eq(m.partition, 1);
    cr_assert_eq(m.offset, 5);
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    ulog_sub_close(s);

    /* no config: latest */
    s = sub_group(log, "t", "fresh-d", NULL);
    cr_assert_eq(position(s, 0), 5);
    cr_assert_eq(position(s, 1), 6);
    cr_assert_eq(position(s, 2), 5);
    ulog_sub_close(s);

    /* none: refused, *out NULL */
    s = (ulog_sub *)&m;                     /* any non-NULL value */
    cr_assert_eq(try_sub(log, "t", "fresh-n", "none", &s), ULOG_EOFFSET);
    cr_assert_null(s);

    /* None of these subscriptions committed: no group exists. */
    assert_groups(log, "");
    cr_assert_eq(describe(log, "fresh-e", &(gsnap){ 0 }), ULOG_ENOENT);

    /* Without a group, "none" means earliest. */
    s = sub_group(log, "t", NULL, "none");
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), 0);
    ulog_sub_close(s);

    /* A group committed for partition 1 only: the others follow the policy
     * ("none" fails for them). */
    s = sub_group(log, "t", "part", "earliest");
    ulog_offset one = { 1, 2 };
    commit_offsets_ok(s, &one, 1);
    ulog_sub_close(s);
    s = (ulog_sub *)&m;
    cr_assert_eq(try_sub(log, "t", "part", "none", &s), ULOG_EOFFSET);
    cr_assert_null(s);
    s = sub_group(log, "t", "part", "earliest");
    cr_assert_eq(position(s, 0), 0);
    cr_assert_eq(position(s, 1), 2);
    cr_assert_eq(position(s, 2), 0);
    ulog_sub_close(s);
    s = sub_group(log, "t", "part", "latest");
    cr_assert_eq(position(s, 0), 5);
    cr_assert_eq(position(s, 1), 2);
    cr_assert_eq(position(s, 2), 5);
    ulog_sub_close(s);

    /* Every partition committed: "none" is fine. */
    s = sub_group(log, "t", "part", "earliest");
    ulog_offset all[3] = { { 0, 4 }, { 1, 6 }, { 2, 0 } };
    commit_offsets_ok(s, all, 3);
    ulog_sub_close(s);
    int64_t want[3] = { 4, 6, 0 };
    assert_resumes(log, "t", "part", "none", want, 3, false);

    /* An empty topic and "none" with no commit: still refused. */
    make_topic(log, "void", 1);
    s = (ulog_sub *)&m;
    cr_assert_eq(try_sub(log, "void", "fresh-v", "none", &s), ULOG_EOFFSET);
    cr_assert_null(s);
    assert_groups(log, "part");
    ulog_close(log);
}

/* ------------------------------------------------ ulog_commit_offsets */

Test(groups, commit_without_group)
{
    ulog *log = open_log();
    make_topic(log, "t", 2);
    append_each(log, "t", 2, 5);
    ulog_sub *s = sub_earliest(log, "t");
    cb_n = 0;
    cr_assert_eq(ulog_commit(s), ULOG_EINVAL);
    ulog_offset o = { 0, 1 };
    cr_assert_eq(ulog_commit_offsets(s, &o, 1), ULOG_EINVAL);
    cr_assert_eq(async_in(s, record_cb, &o), ULOG_EINVAL);
    track t = track_from(s, 2, false);
    cr_assert_eq(drain(s, &t), 10);
    close_in(s);
    cr_assert_eq(cb_n, 0, "a refused ulog_commit_async called its callback");
    assert_groups(log, "");

    cr_assert_eq(ulog_commit(NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_commit_offsets(NULL, &o, 1), ULOG_EINVAL);
    cr_assert_eq(ulog_commit_async(NULL, NULL, NULL), ULOG_EINVAL);
    ulog_close(log);
}

Test(groups, commit_offsets)
{
    ulog *log = open_log();
    make_topic(log, "t", 3);
    append_each(log, "t", 3, 30);

    ulog_sub *s = sub_group(log, "t", "co", "earliest");
    track t = track_from(s, 3, false);
    poll_expect(s, &t, 7);
    int64_t pos[3];
    for (int32_t p = 0; p < 3; p++)
        pos[p] = position(s, p);

    ulog_offset o[2] = { { 2, 30 }, { 0, 10 } };   /* any order; high is allowed */
    commit_offsets_ok(s, o, 2);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), pos[p], "ulog_commit_offsets moved partition %d", (int)p);
    /* The subscription reads on from its own position. */
    poll_expect(s, &t, 5);

    gsnap g;
    describe_ok(log, "co", &g);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.e[0].topic, "t");
    cr_assert_eq(g.e[0].partition, 0);
    cr_assert_eq(g.e[0].committed, 10);
    cr_assert_eq(g.e[0].low, 0);
    cr_assert_eq(g.e[0].high, 30);
    cr_assert_eq(g.e[0].lag, 20);
    cr_assert_eq(g.e[1].partition, 2);
    cr_assert_eq(g.e[1].committed, 30);
    cr_assert_eq(g.e[1].lag, 0);

    /* All or none: each bad call stores nothing. */
    gsnap before = g;
    ulog_offset out_hi[2] = { { 0, 5 }, { 1, 31 } };
    cr_assert_eq(ulog_commit_offsets(s, out_hi, 2), ULOG_EOFFSET);
    ulog_offset out_lo[2] = { { 0, 5 }, { 1, -1 } };
    cr_assert_eq(ulog_commit_offsets(s, out_lo, 2), ULOG_EOFFSET);
    ulog_offset out_far[1] = { { 1, INT64_MAX } };
    cr_assert_eq(ulog_commit_offsets(s, out_far, 1), ULOG_EOFFSET);
    ulog_offset out_min[1] = { { 1, INT64_MIN } };
    cr_assert_eq(ulog_commit_offsets(s, out_min, 1), ULOG_EOFFSET);
    ulog_offset repeated[3] = { { 0, 5 }, { 1, 6 }, { 0, 6 } };
    cr_assert_eq(ulog_commit_offsets(s, repeated, 3), ULOG_EINVAL);
    ulog_offset bad_p[2] = { { 1, 5 }, { 3, 5 } };
    cr_assert_eq(ulog_commit_offsets(s, bad_p, 2), ULOG_EINVAL);
    ulog_offset neg_p[2] = { { 1, 5 }, { -2, 5 } };
    cr_assert_eq(ulog_commit_offsets(s, neg_p, 2), ULOG_EINVAL);
    ulog_offset big_p[1] = { { INT32_MAX, 5 } };
    cr_assert_eq(ulog_commit_offsets(s, big_p, 1), ULOG_EINVAL);
    ulog_offset ok1[1] = { { 1, 5 } };
    cr_assert_eq(ulog_commit_offsets(s, ok1, 0), ULOG_EINVAL);
    cr_assert_eq(ulog_commit_offsets(s, NULL, 1), ULOG_EINVAL);
    cr_assert_eq(ulog_commit_offsets(s, NULL, 0), ULOG_EINVAL);
    describe_ok(log, "co", &g);
    assert_same_commits(&before, &g, "after refused ulog_commit_offsets");
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), t.next[p]);

    /* A new subscription starts at the stored offsets; partition 1 has none. */
    int64_t want_e[3] = { 10, 0, 30 };
    assert_resumes(log, "t", "co", "earliest", want_e, 3, false);
    int64_t want_l[3] = { 10, 30, 30 };
    assert_resumes(log, "t", "co", "latest", want_l, 3, false);

    /* ulog_commit stores every partition; commit_offsets then changes only
     * the partitions it names. */
    commit_ok(s);
    ulog_offset one[1] = { { 1, 2 } };
    commit_offsets_ok(s, one, 1);
    describe_ok(log, "co", &g);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(committed_of(&g, "t", 0), t.next[0]);
    cr_assert_eq(committed_of(&g, "t", 1), 2);
    cr_assert_eq(committed_of(&g, "t", 2), t.next[2]);
    ulog_sub_close(s);

    /* A refused call on a group that has no commits creates nothing. */
    s = sub_group(log, "t", "fresh", "earliest");
    cr_assert_eq(ulog_commit_offsets(s, out_hi, 2), ULOG_EOFFSET);
    cr_assert_eq(ulog_commit_offsets(s, repeated, 3), ULOG_EINVAL);
    ulog_sub_close(s);
    assert_groups(log, "co");
    cr_assert_eq(describe(log, "fresh", &g), ULOG_ENOENT);
    ulog_close(log);
}

/* ------------------------------------------------ ulog_commit_async */

Test(groups, commit_async_callbacks, .timeout = 30)
{
    ulog *log = open_log();
    make_topic(log, "t", 2);
    append_each(log, "t", 2, 40);
    cb_n = 0;
    int args[6];

    ulog_sub *s = sub_group(log, "t", "cb", "earliest");
    track t = track_from(s, 2, false);
    for (int k = 0; k < 3; k++) {
        poll_expect(s, &t, 10);
        cr_assert_eq(async_in(s, record_cb, &args[k]), 0);
        /* Never from inside the call that queued it. */
        cr_assert_leq(cb_n, k, "callback %d ran inside its own ulog_commit_async", k);
    }
    /* Later ulog_poll calls deliver them. */
    int64_t deadline = mono_ns() + 5000000000LL;
    while (cb_n < 3 && mono_ns() < deadline) {
        ulog_msg m;
        int rc = poll_in(s, 10, &m);
        if (rc == 0)
            check_msg(&t, &m);
        else
            cr_assert_eq(rc, ULOG_ETIMEDOUT, "poll: %s", ulog_errname(rc));
    }
    cr_assert_eq(cb_n, 3, "%d callbacks after 5 s of polling", cb_n);
    for (int k = 0; k < 3; k++)
        assert_cb(k, s, &args[k]);

    /* ulog_commit waits for the asynchronous commit before it. */
    cr_assert_eq(async_in(s, record_cb, &args[3]), 0);
    cr_assert_leq(cb_n, 3);
    cr_assert_eq(commit_in(s), 0);
    /* ulog_sub_close runs every remaining callback. */
    cr_assert_eq(async_in(s, record_cb, &args[4]), 0);
    cr_assert_eq(async_in(s, NULL, NULL), 0);           /* no callback: fine */
    cr_assert_eq(async_in(s, record_cb, &args[5]), 0);
    close_in(s);
    cr_assert_eq(cb_n, 6, "%d callbacks after ulog_sub_close", cb_n);
    for (int k = 0; k < 6; k++)
        assert_cb(k, s, &args[k]);

    /* And none afterwards, from other subscriptions. */
    ulog_sub *s2 = sub_group(log, "t", "cb", "earliest");
    commit_ok(s2);
    ulog_sub_close(s2);
    cr_assert_eq(cb_n, 6);
    ulog_close(log);
}

Test(groups, commit_async_stores_the_snapshot, .timeout = 30)
{
    ulog *log = open_log();
    make_topic(log, "t", 3);
    append_each(log, "t", 3, 100);
    cb_n = 0;
    int arg = 0;

    /* Positions are taken at the call; polling on does not change them. */
    ulog_sub *s = sub_group(log, "t", "snap", "earliest");
    track t = track_from(s, 3, false);
    poll_expect(s, &t, 50);
    int64_t snap[3];
    memcpy(snap, t.next, sizeof snap);
    cr_assert_eq(async_in(s, record_cb, &arg), 0);
    poll_expect(s, &t, 100);
    close_in(s);                                        /* no commit */
    cr_assert_eq(cb_n, 1);
    assert_cb(0, s, &arg);

    gsnap g;
    describe_ok(log, "snap", &g);
    cr_assert_eq(g.n, 3);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(committed_of(&g, "t", p), snap[p], "partition %d: %lld, snapshot %lld",
                     (int)p, (long long)committed_of(&g, "t", p), (long long)snap[p]);
    assert_resumes(log, "t", "snap", "latest", snap, 3, false);

    /* Several in a row are stored in call order: the last one stays. */
    s = sub_group(log, "t", "order", "earliest");
    t = track_from(s, 3, false);
    for (int k = 0; k < 8; k++) {
        poll_expect(s, &t, 7);
        cr_assert_eq(async_in(s, k % 2 ? NULL : record_cb, &arg), 0);
    }
    memcpy(snap, t.next, sizeof snap);
    poll_expect(s, &t, 20);
    close_in(s);
    cr_assert_eq(cb_n, 1 + 4);
    assert_resumes(log, "t", "order", "earliest", snap, 3, false);

    /* An asynchronous commit followed by ulog_commit: the later one stays. */
    s = sub_group(log, "t", "mixed", "earliest");
    t = track_from(s, 3, false);
    poll_expect(s, &t, 30);
    cr_assert_eq(async_in(s, record_cb, &arg), 0);
    poll_expect(s, &t, 30);
    memcpy(snap, t.next, sizeof snap);
    cr_assert_eq(commit_in(s), 0);
    poll_expect(s, &t, 30);
    close_in(s);
    cr_assert_eq(cb_n, 6);
    assert_resumes(log, "t", "mixed", "earliest", snap, 3, false);

    /* And the same after reopening. */
    ulog_close(log);
    log = open_log();
    assert_resumes(log, "t", "mixed", "none", snap, 3, false);
    ulog_close(log);
}

/* ------------------------------------------------ list and describe */

Test(groups, group_list)
{
    ulog *log = open_log();
    assert_groups(log, "");
    make_topic(log, "gl", 1);
    append_part(log, "gl", 0, 3);

    /* Subscribing is not committing. */
    ulog_sub *s = sub_group(log, "gl", "zeta", "earliest");
    ulog_sub_close(s);
    assert_groups(log, "");

    s = sub_group(log, "gl", "beta", "earliest");
    commit_ok(s);
    ulog_sub_close(s);
    s = sub_group(log, "gl", "alpha", "earliest");
    ulog_offset o = { 0, 1 };
    commit_offsets_ok(s, &o, 1);
    ulog_sub_close(s);
    reset_ok(log, "Gamma", "gl", 0, ULOG_RESET_LATEST, 0);
    s = sub_group(log, "gl", "alpha.2", "earliest");
    cr_assert_eq(ulog_commit_async(s, NULL, NULL), 0);
    ulog_sub_close(s);
    s = sub_group(log, "gl", "a-b_c", "earliest");
    commit_ok(s);
    commit_ok(s);                           /* twice: listed once */
    ulog_sub_close(s);
    s = sub_group(log, "gl", "zeta", "earliest");
    commit_ok(s);
    ulog_sub_close(s);

    /* Byte order; "alpha" before "alpha.2". */
    assert_groups(log, "Gamma,a-b_c,alpha,alpha.2,beta,zeta");
    ulog_close(log);
    log = open_log();
    assert_groups(log, "Gamma,a-b_c,alpha,alpha.2,beta,zeta");

    ulog_strlist *l = NULL;
    cr_assert_eq(ulog_group_list(NULL, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_group_list(log, NULL), ULOG_EINVAL);
    ulog_close(log);
}

Test(groups, describe_several_topics)
{
    ulog *log = open_log();
    /* Created in the opposite order of their names. */
    make_topic(log, "beta", 3);
    make_topic(log, "alpha", 2);
    append_part(log, "alpha", 0, 10);
    append_part(log, "alpha", 1, 20);
    append_part(log, "beta", 0, 5);
    append_part(log, "beta", 2, 7);

    int64_t t_before = now_ms();
    ulog_sub *s = sub_group(log, "beta", "d", "earliest");
    track t = track_from(s, 3, false);
    cr_assert_eq(drain(s, &t), 12);
    commit_ok(s);
    ulog_sub_close(s);
    s = sub_group(log, "alpha", "d", "earliest");
    ulog_offset o[2] = { { 1, 4 }, { 0, 3 } };
    commit_offsets_ok(s, o, 2);
    ulog_sub_close(s);
    int64_t t_after = now_ms();
    append_part(log, "alpha", 0, 5);        /* the lag follows the high watermark */

    gsnap g;
    describe_ok(log, "d", &g);
    cr_assert_eq(g.n, 5);
    static const struct {
        const char *topic;
        int32_t p;
        int64_t committed, high, lag;
    } want[5] = {
        { "alpha", 0, 3, 15, 12 }, { "alpha", 1, 4, 20, 16 },
        { "beta", 0, 5, 5, 0 },    { "beta", 1, 0, 0, 0 },    { "beta", 2, 7, 7, 0 },
    };
    for (size_t i = 0; i < 5; i++) {
        const gent *e = &g.e[i];
        cr_assert_str_eq(e->topic, want[i].topic, "entry %zu", i);
        cr_assert_eq(e->partition, want[i].p, "entry %zu", i);
        cr_assert_eq(e->committed, want[i].committed, "entry %zu", i);
        cr_assert_eq(e->low, 0, "entry %zu", i);
        cr_assert_eq(e->high, want[i].high, "entry %zu", i);
        cr_assert_eq(e->lag, want[i].lag, "entry %zu", i);
        cr_assert(e->commit_time >= t_before - 2000 && e->commit_time <= t_after + 2000,
                  "entry %zu: commit time %lld, now %lld", i, (long long)e->commit_time,
                  (long long)t_after);
    }

    /* ulog_group_desc_get's argument checks. */
    ulog_group_desc *d = NULL;
    cr_assert_eq(ulog_group_describe(log, "d", &d), 0);
    cr_assert_not_null(d);
    cr_assert_eq(ulog_group_desc_count(d), 5);
    ulog_group_lag l = ULOG_GROUP_LAG_INIT;
    l.struct_size = sizeof l - 1;
    cr_assert_eq(ulog_group_desc_get(d, 0, &l), ULOG_EINVAL);
    l.struct_size = 0;
    cr_assert_eq(ulog_group_desc_get(d, 0, &l), ULOG_EINVAL);
    l.struct_size = sizeof l;
    cr_assert_eq(ulog_group_desc_get(d, 5, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_group_desc_get(d, SIZE_MAX, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_group_desc_get(d, 0, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_group_desc_get(NULL, 0, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_group_desc_get(d, 4, &l), 0);
    cr_assert_str_eq(l.topic, "beta");
    cr_assert_eq(l.partition, 2);
    cr_assert_eq(l.committed, 7);
    ulog_group_desc_free(d);
    ulog_group_desc_free(NULL);

    /* Unknown groups, bad arguments. */
    cr_assert_eq(describe(log, "nope", &g), ULOG_ENOENT);
    cr_assert_eq(describe(log, "D", &g), ULOG_ENOENT);      /* names are case-sensitive */
    d = NULL;
    cr_assert_eq(ulog_group_describe(NULL, "d", &d), ULOG_EINVAL);
    cr_assert_eq(ulog_group_describe(log, "d", NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_group_describe(log, NULL, &d), ULOG_EINVAL);
    ulog_close(log);
}

/* ------------------------------------------------ delete */

Test(groups, group_delete)
{
    ulog *log = open_log();
    make_topic(log, "t", 2);
    append_each(log, "t", 2, 10);

    ulog_sub *s = sub_group(log, "t", "keep", "earliest");
    ulog_offset k[2] = { { 0, 2 }, { 1, 3 } };
    commit_offsets_ok(s, k, 2);
    ulog_sub_close(s);
    gsnap keep;
    describe_ok(log, "keep", &keep);

    s = sub_group(log, "t", "del", "earliest");
    ulog_offset o[2] = { { 0, 4 }, { 1, 6 } };
    commit_offsets_ok(s, o, 2);
    ulog_sub_close(s);
    assert_groups(log, "del,keep");

    cr_assert_eq(ulog_group_delete(log, "del"), 0);
    assert_groups(log, "keep");
    gsnap g;
    cr_assert_eq(describe(log, "del", &g), ULOG_ENOENT);
    describe_ok(log, "keep", &g);
    assert_same_commits(&keep, &g, "the other group after a delete");
    cr_assert_eq(ulog_group_delete(log, "del"), ULOG_ENOENT);
    cr_assert_eq(ulog_group_delete(log, "never"), ULOG_ENOENT);
    cr_assert_eq(ulog_group_delete(log, "Keep"), ULOG_ENOENT);
    cr_assert_eq(ulog_group_delete(NULL, "keep"), ULOG_EINVAL);
    cr_assert_eq(ulog_group_delete(log, NULL), ULOG_EINVAL);

    /* A new subscription follows auto.offset.reset again. */
    int64_t zero[2] = { 0, 0 }, ten[2] = { 10, 10 };
    assert_resumes(log, "t", "del", "earliest", zero, 2, false);
    assert_resumes(log, "t", "del", "latest", ten, 2, false);
    s = (ulog_sub *)&g;
    cr_assert_eq(try_sub(log, "t", "del", "none", &s), ULOG_EOFFSET);
    cr_assert_null(s);

    /* Deleted for good: after reopening too. */
    ulog_close(log);
    log = open_log();
    assert_groups(log, "keep");
    cr_assert_eq(describe(log, "del", &g), ULOG_ENOENT);

    /* A live subscription keeps its position; its next commit creates the
     * group again. */
    s = sub_group(log, "t", "live", "earliest");
    track t = track_from(s, 2, false);
    poll_expect(s, &t, 5);
    commit_ok(s);
    poll_expect(s, &t, 4);
    assert_groups(log, "keep,live");
    cr_assert_eq(ulog_group_delete(log, "live"), 0);
    assert_groups(log, "keep");
    for (int32_t p = 0; p < 2; p++)
        cr_assert_eq(position(s, p), t.next[p]);
    poll_expect(s, &t, 1);
    commit_ok(s);
    assert_groups(log, "keep,live");
    describe_ok(log, "live", &g);
    cr_assert_eq(g.n, 2);
    for (int32_t p = 0; p < 2; p++)
        cr_assert_eq(committed_of(&g, "t", p), t.next[p]);
    ulog_sub_close(s);
    ulog_close(log);
}

/* ------------------------------------------------ reset */

Test(groups, reset_earliest_latest_offset)
{
    ulog *log = open_log();
    make_topic(log, "ro", 2);
    append_part(log, "ro", 0, 10);
    append_part(log, "ro", 1, 6);
    gsnap g;

    reset_ok(log, "rg", "ro", ULOG_PARTITION_ANY, ULOG_RESET_LATEST, 0);
    describe_ok(log, "rg", &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(committed_of(&g, "ro", 0), 10);
    cr_assert_eq(committed_of(&g, "ro", 1), 6);
    cr_assert_eq(g.e[0].lag, 0);
    cr_assert_eq(g.e[1].lag, 0);

    reset_ok(log, "rg", "ro", 1, ULOG_RESET_EARLIEST, 0);
    describe_ok(log, "rg", &g);
    cr_assert_eq(committed_of(&g, "ro", 0), 10);
    cr_assert_eq(committed_of(&g, "ro", 1), 0);
    cr_assert_eq(entry_of(&g, "ro", 1)->lag, 6);

    reset_ok(log, "rg", "ro", 0, ULOG_RESET_OFFSET, 3);
    describe_ok(log, "rg", &g);
    cr_assert_eq(committed_of(&g, "ro", 0), 3);
    cr_assert_eq(committed_of(&g, "ro", 1), 0);
    cr_assert_eq(entry_of(&g, "ro", 0)->lag, 7);

    reset_ok(log, "rg", "ro", ULOG_PARTITION_ANY, ULOG_RESET_OFFSET, 4);
    describe_ok(log, "rg", &g);
    cr_assert_eq(committed_of(&g, "ro", 0), 4);
    cr_assert_eq(committed_of(&g, "ro", 1), 4);

    /* Out of range: refused, nothing changes (all or none for ANY). */
    gsnap before = g;
    cr_assert_eq(ulog_group_reset(log, "rg", "ro", ULOG_PARTITION_ANY, ULOG_RESET_OFFSET, 8),
                 ULOG_EOFFSET);                 /* fine for 0, not for 1 */
    cr_assert_eq(ulog_group_reset(log, "rg", "ro", 1, ULOG_RESET_OFFSET, 7), ULOG_EOFFSET);
    cr_assert_eq(ulog_group_reset(log, "rg", "ro", 1, ULOG_RESET_OFFSET, -1), ULOG_EOFFSET);
    cr_assert_eq(ulog_group_reset(log, "rg", "ro", 0, ULOG_RESET_OFFSET, 11), ULOG_EOFFSET);
    cr_assert_eq(ulog_group_reset(log, "rg", "ro", 0, ULOG_RESET_OFFSET, INT64_MAX),
                 ULOG_EOFFSET);
    cr_assert_eq(ulog_group_reset(log, "rg", "ro", 0, ULOG_RESET_OFFSET, INT64_MIN),
                 ULOG_EOFFSET);
    describe_ok(log, "rg", &g);
    assert_same_commits(&before, &g, "after refused resets");

    /* The ends of the range are fine. */
    reset_ok(log, "rg", "ro", 0, ULOG_RESET_OFFSET, 10);
    reset_ok(log, "rg", "ro", 1, ULOG_RESET_OFFSET, 0);
    describe_ok(log, "rg", &g);
    cr_assert_eq(committed_of(&g, "ro", 0), 10);
    cr_assert_eq(committed_of(&g, "ro", 1), 0);

    /* LATEST follows new appends; EARLIEST is low. */
    append_part(log, "ro", 1, 4);
    reset_ok(log, "rg", "ro", 1, ULOG_RESET_LATEST, 0);
    reset_ok(log, "rg", "ro", 0, ULOG_RESET_EARLIEST, 0);
    describe_ok(log, "rg", &g);
    cr_assert_eq(committed_of(&g, "ro", 0), 0);
    cr_assert_eq(committed_of(&g, "ro", 1), 10);

    /* A subscription opened now starts there. */
    int64_t want[2] = { 0, 10 };
    assert_resumes(log, "ro", "rg", "none", want, 2, false);
    reset_ok(log, "rg", "ro", ULOG_PARTITION_ANY, ULOG_RESET_OFFSET, 5);
    int64_t five[2] = { 5, 5 };
    assert_resumes(log, "ro", "rg", "latest", five, 2, false);
    ulog_close(log);
}

Test(groups, reset_time)
{
    ulog *log = open_log();
    make_topic(log, "tt", 3);
    int64_t ts0[20], ts1[20], ts2[15];
    for (int i = 0; i < 20; i++) {
        ts0[i] = T0 + 10 * i;                   /* distinct */
        ts1[i] = T0 + 10 * (i / 2);             /* pairs */
    }
    for (int i = 0; i < 15; i++)
        ts2[i] = T0 + 5 + 10 * i;
    append_part_ts(log, "tt", 0, 20, ts0);
    append_part_ts(log, "tt", 1, 20, ts1);
    append_part_ts(log, "tt", 2, 15, ts2);

    static const struct {
        int64_t t;
        int64_t want[3];
    } cases[] = {
        { T0 + 55, { 6, 12, 5 } },
        { T0 + 50, { 5, 10, 5 } },              /* equal timestamps count */
        { T0 + 51, { 6, 12, 5 } },
        { T0 + 45, { 5, 10, 4 } },
        { T0, { 0, 0, 0 } },
        { T0 - 100000, { 0, 0, 0 } },
        { 0, { 0, 0, 0 } },
        { T0 + 90, { 9, 18, 9 } },
        { T0 + 91, { 10, 20, 9 } },             /* after all of partition 1: high */
        { T0 + 145, { 15, 20, 14 } },
        { T0 + 190, { 19, 20, 15 } },           /* after all of partition 2: high */
        { T0 + 191, { 20, 20, 15 } },           /* after everything: high */
        { T0 + 100000000, { 20, 20, 15 } },
    };
    gsnap g;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        reset_ok(log, "tg", "tt", ULOG_PARTITION_ANY, ULOG_RESET_TIME, cases[c].t);
        describe_ok(log, "tg", &g);
        cr_assert_eq(g.n, 3);
        for (int32_t p = 0; p < 3; p++)
            cr_assert_eq(committed_of(&g, "tt", p), cases[c].want[p],
                         "time T0%+lld partition %d: %lld, expected %lld",
                         (long long)(cases[c].t - T0), (int)p,
                         (long long)committed_of(&g, "tt", p), (long long)cases[c].want[p]);
    }

    /* One partition at a time: the others stay. */
    reset_ok(log, "tg", "tt", ULOG_PARTITION_ANY, ULOG_RESET_TIME, T0 + 55);
    reset_ok(log, "tg", "tt", 0, ULOG_RESET_TIME, T0 + 50);
    describe_ok(log, "tg", &g);
    cr_assert_eq(committed_of(&g, "tt", 0), 5);
    cr_assert_eq(committed_of(&g, "tt", 1), 12);
    cr_assert_eq(committed_of(&g, "tt", 2), 5);
    reset_ok(log, "tg", "tt", 2, ULOG_RESET_TIME, T0 + 1000);
    describe_ok(log, "tg", &g);
    cr_assert_eq(committed_of(&g, "tt", 0), 5);
    cr_assert_eq(committed_of(&g, "tt", 1), 12);
    cr_assert_eq(committed_of(&g, "tt", 2), 15);
    cr_assert_eq(entry_of(&g, "tt", 2)->lag, 0);

    /* A subscription opened after the reset reads from the first record at
     * or after the time. */
    reset_ok(log, "tg", "tt", ULOG_PARTITION_ANY, ULOG_RESET_TIME, T0 + 55);
    ulog_sub *s = sub_group(log, "tt", "tg", "none");
    int64_t want[3] = { 6, 12, 5 };
    bool first[3] = { true, true, true };
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), want[p]);
    track t = track_from(s, 3, false);
    for (;;) {
        ulog_msg m;
        int rc = ulog_poll(s, 0, &m);
        if (rc == ULOG_ETIMEDOUT)
            break;
        cr_assert_eq(rc, 0);
        check_msg(&t, &m);
        cr_assert_geq(m.timestamp, T0 + 55);
        if (first[m.partition]) {
            first[m.partition] = false;
            cr_assert_eq(m.offset, want[m.partition]);
        }
    }
    cr_assert_eq(t.got, (20 - 6) + (20 - 12) + (15 - 5));
    ulog_sub_close(s);

    /* The same after reopening (the time index from LMDB). */
    ulog_close(log);
    log = open_log();
    reset_ok(log, "tg2", "tt", ULOG_PARTITION_ANY, ULOG_RESET_TIME, T0 + 45);
    describe_ok(log, "tg2", &g);
    cr_assert_eq(committed_of(&g, "tt", 0), 5);
    cr_assert_eq(committed_of(&g, "tt", 1), 10);
    cr_assert_eq(committed_of(&g, "tt", 2), 4);
    ulog_close(log);
}

Test(groups, reset_errors_change_nothing)
{
    ulog *log = open_log();
    make_topic(log, "ro", 2);
    append_each(log, "ro", 2, 10);
    reset_ok(log, "re", "ro", ULOG_PARTITION_ANY, ULOG_RESET_OFFSET, 3);
    gsnap before, g;
    describe_ok(log, "re", &before);
    cr_assert_eq(before.n, 2);

    const char *groups[2] = { "re", "re2" };    /* existing, and new */
    for (int i = 0; i < 2; i++) {
        const char *gr = groups[i];
        cr_assert_eq(ulog_group_reset(log, gr, "nosuch", ULOG_PARTITION_ANY, ULOG_RESET_EARLIEST, 0),
                     ULOG_ENOENT);
        cr_assert_eq(ulog_group_reset(log, gr, "nosuch", 0, ULOG_RESET_OFFSET, 0), ULOG_ENOENT);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", 2, ULOG_RESET_EARLIEST, 0), ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", -2, ULOG_RESET_EARLIEST, 0), ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", INT32_MAX, ULOG_RESET_LATEST, 0),
                     ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", INT32_MIN, ULOG_RESET_LATEST, 0),
                     ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", 0, 4, 0), ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", 0, -1, 0), ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", ULOG_PARTITION_ANY, 99, 0), ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", 0, ULOG_RESET_OFFSET, 11), ULOG_EOFFSET);
        cr_assert_eq(ulog_group_reset(log, gr, "ro", ULOG_PARTITION_ANY, ULOG_RESET_OFFSET, -1),
                     ULOG_EOFFSET);
        cr_assert_eq(ulog_group_reset(log, gr, NULL, 0, ULOG_RESET_EARLIEST, 0), ULOG_EINVAL);
        cr_assert_eq(ulog_group_reset(NULL, gr, "ro", 0, ULOG_RESET_EARLIEST, 0), ULOG_EINVAL);
    }
    cr_assert_eq(ulog_group_reset(log, NULL, "ro", 0, ULOG_RESET_EARLIEST, 0), ULOG_EINVAL);
    describe_ok(log, "re", &g);
    assert_same_commits(&before, &g, "after refused resets");
    assert_groups(log, "re");
    cr_assert_eq(describe(log, "re2", &g), ULOG_ENOENT);
    ulog_close(log);
}

Test(groups, reset_creates_group_and_live_subscriptions_keep_positions)
{
    ulog *log = open_log();
    make_topic(log, "t", 3);
    append_each(log, "t", 3, 10);
    make_topic(log, "u", 1);
    append_part(log, "u", 0, 4);

    /* One partition: a group with one entry. */
    reset_ok(log, "one", "t", 1, ULOG_RESET_OFFSET, 7);
    assert_groups(log, "one");
    gsnap g;
    describe_ok(log, "one", &g);
    cr_assert_eq(g.n, 1);
    cr_assert_str_eq(g.e[0].topic, "t");
    cr_assert_eq(g.e[0].partition, 1);
    cr_assert_eq(g.e[0].committed, 7);
    cr_assert_eq(g.e[0].lag, 3);
    int64_t t0 = now_ms();
    cr_assert(g.e[0].commit_time > t0 - 5000 && g.e[0].commit_time <= t0 + 1000,
              "commit time %lld, now %lld", (long long)g.e[0].commit_time, (long long)t0);
    int64_t want1[3] = { 0, 7, 0 };
    assert_resumes(log, "t", "one", "earliest", want1, 3, false);

    /* Every partition; a second topic adds to the group. */
    reset_ok(log, "all", "t", ULOG_PARTITION_ANY, ULOG_RESET_EARLIEST, 0);
    reset_ok(log, "all", "u", ULOG_PARTITION_ANY, ULOG_RESET_OFFSET, 2);
    assert_groups(log, "all,one");
    describe_ok(log, "all", &g);
    cr_assert_eq(g.n, 4);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(committed_of(&g, "t", p), 0);
    cr_assert_eq(committed_of(&g, "u", 0), 2);
    cr_assert_str_eq(g.e[3].topic, "u");
    int64_t zero[3] = { 0, 0, 0 }, two[1] = { 2 };
    assert_resumes(log, "t", "all", "none", zero, 3, false);
    assert_resumes(log, "u", "all", "latest", two, 1, false);

    /* A live subscription keeps its position and overwrites the reset at
     * its next commit. */
    ulog_sub *s = sub_group(log, "t", "live", "earliest");
    track t = track_from(s, 3, false);
    poll_expect(s, &t, 12);
    commit_ok(s);
    reset_ok(log, "live", "t", ULOG_PARTITION_ANY, ULOG_RESET_EARLIEST, 0);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(position(s, p), t.next[p]);
    describe_ok(log, "live", &g);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(committed_of(&g, "t", p), 0);
    poll_expect(s, &t, 3);
    commit_ok(s);
    describe_ok(log, "live", &g);
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(committed_of(&g, "t", p), t.next[p]);
    ulog_sub_close(s);
    ulog_close(log);
}

/* ------------------------------------------------ never expire */

Test(groups, committed_offsets_never_expire, .timeout = 30)
{
    ulog *log = open_log();
    make_topic(log, "ne", 2);
    append_each(log, "ne", 2, 30);
    ulog_sub *s = sub_group(log, "ne", "keeper", "earliest");
    track t = track_from(s, 2, false);
    poll_expect(s, &t, 25);
    commit_ok(s);
    ulog_sub_close(s);
    int64_t want[2] = { t.next[0], t.next[1] };
    gsnap before, g;
    describe_ok(log, "keeper", &before);
    cr_assert_eq(before.n, 2);

    ulog_close(log);
    log = open_log();
    describe_ok(log, "keeper", &g);
    assert_same_commits(&before, &g, "after reopening");

    /* More appends change the lag, not the committed offsets. */
    append_each(log, "ne", 2, 500);
    describe_ok(log, "keeper", &g);
    assert_same_commits(&before, &g, "after 1000 more records");
    for (int32_t p = 0; p < 2; p++) {
        const gent *e = entry_of(&g, "ne", p);
        cr_assert_eq(e->high, 530);
        cr_assert_eq(e->lag, 530 - want[p]);
    }

    /* A second handle on the same root sees the same. */
    ulog *log2 = open_log();
    describe_ok(log2, "keeper", &g);
    assert_same_commits(&before, &g, "through a second handle");
    assert_resumes(log2, "ne", "keeper", "latest", want, 2, false);
    ulog_close(log2);

    sleep_ms(1100);
    ulog_close(log);
    log = open_log();
    describe_ok(log, "keeper", &g);
    assert_same_commits(&before, &g, "a second later");
    assert_groups(log, "keeper");
    assert_resumes(log, "ne", "keeper", "none", want, 2, false);
    ulog_close(log);
}

/* ------------------------------------------------ names */

/* Every path below root, sorted, joined by newlines. */
static char  *tree_buf;
static size_t tree_len, tree_cap;

static int tree_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    size_t n = strlen(p) + 1;
    if (tree_len + n + 1 > tree_cap) {
        tree_cap = (tree_len + n + 1) * 2;
        tree_buf = realloc(tree_buf, tree_cap);
        if (!tree_buf)
            return 1;
    }
    memcpy(tree_buf + tree_len, p, n);
    tree_len += n;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *tree_of(const char *dir)
{
    tree_buf = NULL;
    tree_len = tree_cap = 0;
    cr_assert_eq(nftw(dir, tree_one, 16, FTW_PHYS), 0);
    cr_assert_not_null(tree_buf);
    size_t n = 0;
    for (size_t i = 0; i < tree_len; i += strlen(tree_buf + i) + 1)
        n++;
    const char **v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    n = 0;
    for (size_t i = 0; i < tree_len; i += strlen(tree_buf + i) + 1)
        v[n++] = tree_buf + i;
    qsort(v, n, sizeof *v, cmp_str);
    char *out = malloc(tree_len + 1);
    cr_assert_not_null(out);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy(out + used, v[i], l);
        out[used + l] = '\n';
        used += l + 1;
    }
    out[used] = '\0';
    free(v);
    free(tree_buf);
    tree_buf = NULL;
    return out;
}

Test(groups, hostile_group_names)
{
    ulog *log = open_log();
    make_topic(log, "t", 2);
    append_each(log, "t", 2, 3);
    ulog_sub *s = sub_earliest(log, "t");
    ulog_sub_close(s);
    ulog_close(log);
    char *tree_before = tree_of(root);
    log = open_log();

    char a250[251], nul300[300];
    memset(a250, 'a', 250);
    a250[250] = '\0';
    /* 300 bytes: 260 'a's, a NUL, then "../x" and more behind it. */
    memset(nul300, 'a', sizeof nul300);
    nul300[260] = '\0';
    memcpy(nul300 + 261, "../x", 4);
    nul300[299] = '\0';
    const char *bad[] = {
        "", ".", "..", "a/b", "../x", "/abs", "x/..", a250, nul300,
        "a b", " ", "a\n", "\n", "a\\b", "a:b", "a*b", "a?b", "\xc3\xa9",
        "caf\xc3\xa9", "%s%n", "a\tb", "a\x7f", "a\x01", "a\"b", "a'b", "a$b",
        "a,b", "a;b", "a|b", "a~", "a+b", "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *n = bad[i];
        s = (ulog_sub *)&s;
        cr_assert_eq(try_sub(log, "t", n, "earliest", &s), ULOG_EINVAL, "subscribe \"%s\"", n);
        cr_assert_null(s, "subscribe \"%s\": *out set", n);
        ulog_group_desc *d = NULL;
        cr_assert_eq(ulog_group_describe(log, n, &d), ULOG_EINVAL, "describe \"%s\"", n);
        cr_assert_eq(ulog_group_delete(log, n), ULOG_EINVAL, "delete \"%s\"", n);
        cr_assert_eq(ulog_group_reset(log, n, "t", ULOG_PARTITION_ANY, ULOG_RESET_EARLIEST, 0),
                     ULOG_EINVAL, "reset \"%s\"", n);
        cr_assert_eq(ulog_group_reset(log, n, "t", 0, ULOG_RESET_OFFSET, 1), ULOG_EINVAL,
                     "reset \"%s\"", n);
    }
    assert_groups(log, "");
    ulog_close(log);
    char *tree_after = tree_of(root);
    cr_assert_str_eq(tree_after, tree_before, "files appeared or went:\n%s\nwere\n%s", tree_after,
                     tree_before);
    free(tree_before);
    free(tree_after);
}

Test(groups, edge_group_names)
{
    ulog *log = open_log();
    make_topic(log, "t", 1);
    append_part(log, "t", 0, 5);

    char a249[250];
    memset(a249, 'a', 249);
    a249[249] = '\0';
    const char *good[] = { a249, "A", "...", ".x", "x.", "_", "-", "0", "t", "A.b_c-9" };
    size_t n = sizeof good / sizeof good[0];
    for (size_t i = 0; i < n; i++) {
        ulog_sub *s = sub_group(log, "t", good[i], "earliest");
        ulog_msg m;
        cr_assert_eq(ulog_poll(s, 1000, &m), 0);
        commit_ok(s);
        ulog_sub_close(s);
        gsnap g;
        describe_ok(log, good[i], &g);
        cr_assert_eq(g.n, 1);
        cr_assert_eq(g.e[0].committed, 1, "group \"%s\"", good[i]);
        reset_ok(log, good[i], "t", 0, ULOG_RESET_OFFSET, 3);
        int64_t want[1] = { 3 };
        assert_resumes(log, "t", good[i], "none", want, 1, false);
    }
    char list[4096];
    groups_str(log, list, sizeof list);
    char want_list[4096];
    snprintf(want_list, sizeof want_list, "-,...,.x,0,A,A.b_c-9,_,%s,t,x.", a249);
    cr_assert_str_eq(list, want_list);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ulog_group_delete(log, good[i]), 0, "delete \"%s\"", good[i]);
    assert_groups(log, "");
    ulog_close(log);
}

/* ------------------------------------------------ poll.spin.us */

Test(groups, poll_spin_us_config)
{
    ulog_config *c = ulog_config_new();
    cr_assert_not_null(c);
    char err[256], buf[64];
    const char *ok[] = { "0", "1", "200", "99999", "100000" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(ulog_config_set(c, "poll.spin.us", ok[i], err, sizeof err), 0, "%s: %s",
                     ok[i], err);
        cr_assert_eq(ulog_config_get(c, "poll.spin.us", buf, sizeof buf), 0);
        cr_assert_str_eq(buf, ok[i]);
    }
    const char *bad[] = { "-1", "100001", "1000000", "", "abc", "1e3", "200us", "-0x1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(ulog_config_set(c, "poll.spin.us", bad[i], err, sizeof err), ULOG_EINVAL,
                     "poll.spin.us=\"%s\" accepted", bad[i]);
        cr_assert_neq(err[0], '\0');
        cr_assert_eq(ulog_config_get(c, "poll.spin.us", buf, sizeof buf), 0);
        cr_assert_str_eq(buf, "100000", "a refused set changed the value");
    }
    cr_assert_eq(ulog_config_set_int(c, "poll.spin.us", 0, err, sizeof err), 0);
    cr_assert_eq(ulog_config_set_int(c, "poll.spin.us", 100000, err, sizeof err), 0);
    cr_assert_eq(ulog_config_set_int(c, "poll.spin.us", -1, err, sizeof err), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set_int(c, "poll.spin.us", 100001, err, sizeof err), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set_int(c, "poll.spin.us", INT64_MAX, err, sizeof err), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set_int(c, "poll.spin.us", INT64_MIN, err, sizeof err), ULOG_EINVAL);
    cr_assert_eq(ulog_config_get(c, "poll.spin.us", buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "100000");

    /* A subscription setting: refused by ulog_open and ulog_topic_create. */
    ulog *log = NULL;
    cr_assert_eq(ulog_open(root, c, &log), ULOG_EINVAL);
    log = open_log();
    cr_assert_eq(ulog_topic_create(log, "t", 1, c), ULOG_EINVAL);
    make_topic(log, "t", 1);
    ulog_sub *s = NULL;
    cr_assert_eq(ulog_subscribe(log, "t", "spin", c, &s), 0);
    ulog_sub_close(s);
    ulog_config_free(c);
    ulog_close(log);
}

typedef struct late_append {
    ulog *log;
    int   delay_ms;
} late_append;

static void *late_append_main(void *arg)
{
    late_append *a = arg;
    sleep_ms(a->delay_ms);
    uint8_t v[8];
    put64(v, tag_of(1, 3));
    ulog_record r = { .value = v, .value_len = 8, .timestamp = ULOG_TIMESTAMP_NOW, .partition = 1 };
    int rc = ulog_append(a->log, "spin", &r, 1);
    return (void *)(intptr_t)(rc == 0 && r.offset == 3 ? 0 : 1);
}

Test(groups, poll_spin_us_receives_and_times_out, .timeout = 30)
{
    ulog *log = open_log();
    make_topic(log, "spin", 2);
    append_part(log, "spin", 0, 3);
    append_part(log, "spin", 1, 3);

    ulog_sub *s = NULL;
    ulog_config *c = cfg_of("auto.offset.reset", "earliest", "poll.spin.us", "200", NULL);
    cr_assert_eq(ulog_subscribe(log, "spin", "sg", c, &s), 0);
    ulog_config_free(c);
    track t = track_from(s, 2, false);
    poll_expect(s, &t, 6);

    /* Times out after the timeout, not before. */
    for (int i = 0; i < 3; i++) {
        ulog_msg m;
        int64_t t0 = mono_ns();
        cr_assert_eq(ulog_poll(s, 50, &m), ULOG_ETIMEDOUT);
        int64_t el = (mono_ns() - t0) / 1000000;
        cr_assert_geq(el, 50, "ulog_poll(50 ms) returned after %lld ms", (long long)el);
        cr_assert_lt(el, 2000, "ulog_poll(50 ms) returned after %lld ms", (long long)el);
    }

    /* Wakes for a record appended while it waits. */
    late_append la = { log, 30 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, late_append_main, &la), 0);
    ulog_msg m;
    int64_t t0 = mono_ns();
    int rc = ulog_poll(s, 5000, &m);
    int64_t el = (mono_ns() - t0) / 1000000;
    void *ret;
    pthread_join(th, &ret);
    cr_assert_null(ret, "the late append failed");
    cr_assert_eq(rc, 0, "poll: %s", ulog_errname(rc));
    check_msg(&t, &m);
    cr_assert_eq(m.partition, 1);
    cr_assert_eq(m.offset, 3);
    cr_assert_lt(el, 4000, "woke after %lld ms", (long long)el);

    /* Groups work as usual with spinning. */
    commit_ok(s);
    ulog_sub_close(s);
    int64_t want[2] = { 3, 4 };
    assert_resumes(log, "spin", "sg", "none", want, 2, false);

    /* A long spin: timeout 0 does not wait, and the timeout bounds the spin
     * (the best of three, against scheduling noise). */
    c = cfg_of("auto.offset.reset", "latest", "poll.spin.us", "100000", NULL);
    cr_assert_eq(ulog_subscribe(log, "spin", NULL, c, &s), 0);
    ulog_config_free(c);
    int64_t best0 = INT64_MAX, best50 = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        t0 = mono_ns();
        cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
        el = mono_ns() - t0;
        best0 = el < best0 ? el : best0;
        t0 = mono_ns();
        cr_assert_eq(ulog_poll(s, 50, &m), ULOG_ETIMEDOUT);
        el = mono_ns() - t0;
        cr_assert_geq(el / 1000000, 50, "ulog_poll(50 ms) returned after %lld ms",
                      (long long)(el / 1000000));
        best50 = el < best50 ? el : best50;
    }
    cr_assert_lt(best0 / 1000000, 50, "ulog_poll(timeout 0) took %lld ms with a 100 ms spin",
                 (long long)(best0 / 1000000));
    cr_assert_lt(best50 / 1000000, 100, "ulog_poll(timeout 50) took %lld ms with a 100 ms spin",
                 (long long)(best50 / 1000000));
    ulog_sub_close(s);
    ulog_close(log);
}

/* The oldest segment is removed while no process has the log open (what
 * retention will do): a group whose committed offset was in it follows
 * auto.offset.reset, or gets ULOG_EOFFSET with none. */
Test(groups, committed_offset_fell_out_of_the_log, .timeout = 30)
{
    ulog *log = open_log();
    create_topic(log, "old", 1,
                 cfg_of("flush.policy", "none", "segment.bytes", "4096", NULL));
    append_part(log, "old", 0, 600);
    int64_t high = high_of(log, "old", 0);
    cr_assert_eq(ulog_group_reset(log, "g", "old", 0, ULOG_RESET_EARLIEST, 0), 0);
    ulog_close(log);

    /* The two lowest segment bases. */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/topics/old/0", root);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int64_t b0 = INT64_MAX, b1 = INT64_MAX;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!is_segment_name(e->d_name))
            continue;
        int64_t b = strtoll(e->d_name, NULL, 10);
        if (b < b0) {
            b1 = b0;
            b0 = b;
        } else if (b < b1) {
            b1 = b;
        }
    }
    closedir(d);
    cr_assert_eq(b0, 0);
    cr_assert(b1 > 0 && b1 < high, "want at least two segments, got %lld", (long long)b1);
    char seg[700];
    seg_path(seg, sizeof seg, root, "old", 0, b0);
    cr_assert_eq(unlink(seg), 0);
    delete_heads(root, "old", 1, false);

    log = open_log();
    int64_t lo, hi;
    watermarks(log, "old", 0, &lo, &hi);
    cr_assert_eq(lo, b1);
    cr_assert_eq(hi, high);

    ulog_sub *s = (ulog_sub *)1;
    cr_assert_eq(try_sub(log, "old", "g", "none", &s), ULOG_EOFFSET);
    cr_assert_null(s);
    s = sub_group(log, "old", "g", "earliest");
    cr_assert_eq(position(s, 0), b1);
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, b1);
    ulog_sub_close(s);
    s = sub_group(log, "old", "g", "latest");
    cr_assert_eq(position(s, 0), high);
    ulog_sub_close(s);

    /* The stored offset itself is left alone; its lag counts from low. */
    ulog_group_desc *gd = NULL;
    cr_assert_eq(ulog_group_describe(log, "g", &gd), 0);
    cr_assert_eq(ulog_group_desc_count(gd), 1);
    ulog_group_lag g = ULOG_GROUP_LAG_INIT;
    cr_assert_eq(ulog_group_desc_get(gd, 0, &g), 0);
    cr_assert_eq(g.committed, 0);
    cr_assert_eq(g.low, b1);
    cr_assert_eq(g.lag, high - b1);
    ulog_group_desc_free(gd);
    ulog_close(log);
}
