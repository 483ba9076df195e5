/* test_retention.c -- ulog_clean (retention.ms, retention.bytes, segment.ms,
 * the background run) and ulog_delete_records.
 *
 * Time: topics with 4096-byte segments hold records appended with explicit
 * CreateTime timestamps, two hours old, then fresh ones; with retention.ms
 * one hour, ulog_clean deletes exactly the leading closed segments whose
 * records (and every record before them) are older, never the active one;
 * low is then the base offset of the first segment file left, every record
 * from low on reads back whole and in order, partition_describe counts the
 * bytes (reclaimed) and the time (cleaned_ms), the progress callback sees
 * every partition and stops the run with its non-zero value (after the
 * partition at hand, also when it returns it at that partition's start);
 * topic NULL cleans every topic of the root.
 * Size: retention.bytes deletes the oldest closed segments while the
 * partition is larger than it by at least the segment's size, no more.
 * segment.ms: an idle active segment whose first record is old is rolled
 * (and then deleted by retention.ms), a fresh one is not.
 * Background: retention.check.ms=100 advances low with no ulog_clean call.
 * Readers: a subscriber in another process reading slowly while this one
 * appends and cleans never sees an offset go back or repeat and ends at the
 * high watermark; one in a group with auto.offset.reset=none that fell
 * below low gets ULOG_EOFFSET; a subscriber in the middle of a deleted
 * segment finishes its batch, then follows its auto.offset.reset
 * (earliest, latest, none). Lagging earliest subscribers racing another
 * process that appends and deletes as fast as it can, and cleans in two
 * processes at once, never get an error from ulog_poll.
 * ulog_delete_records: low moves mid-segment for every reader, durably
 * (close, reopen, lost heads); backwards is a no-op; bad input changes
 * nothing.
 * Crashes: a retention run cut short between persisting the new log start
 * and unlinking the files (every file, the newer ones, or only the oldest
 * still there) leaves low where it was after a reboot-style recovery; the
 * old records never come back, appends continue at the right offset, and
 * the next clean removes the leftovers.
 * Bad input: flags, names, config values and scopes.
 *
 * Children (forked, with testchild.h) open their own handle, run under
 * child_watchdog(), report failures through a pipe and their exit status;
 * only the parent asserts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "testchild.h"
#include "testutil.h"

/* ================================================================ scaffolding */

static char root[256];      /* the test's scratch directory */
static char logdir[300];    /* root/log: the ulog root */
static char savedir[300];   /* root/save: copies of segment files */

static void ret_init(void)
{
    make_tmpdir(root, sizeof root, "retention");
    snprintf(logdir, sizeof logdir, "%s/log", root);
    snprintf(savedir, sizeof savedir, "%s/save", root);
    cr_assert_eq(mkdir(savedir, 0750), 0, "mkdir %s: %s", savedir, strerror(errno));
    children_init();
}

/* Also after a failed assertion: no child outlives its test. */
static void ret_fini(void)
{
    children_fini();
    if (root[0])
        rm_rf(root);
}

TestSuite(retention, .init = ret_init, .fini = ret_fini, .timeout = 30);

#define HOUR_MS  3600000LL
#define SEG      "4096"

/* ================================================================ records */

/* A record's value is derived from its partition and offset, so any record
 * read can be checked whole: "p<part> o<offset> " then 100..163 bytes in all. */
#define VMAX 200

static size_t make_val(uint8_t buf[VMAX], int32_t part, int64_t off)
{
    uint64_t seed = mix64(((uint64_t)(uint32_t)part << 48) ^ (uint64_t)off);
    size_t len = 100 + (size_t)(seed % 64);
    int n = snprintf((char *)buf, VMAX, "p%d o%lld ", (int)part, (long long)off);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (uint8_t)('a' + mix64(seed + i) % 26);
    return len;
}

/* Whether m is the whole record make_val made for its partition and offset. */
static bool msg_ok(const ulog_msg *m, int32_t part)
{
    uint8_t want[VMAX];
    if (m->partition != part || !m->value)
        return false;
    size_t n = make_val(want, part, m->offset);
    return m->value_len == n && memcmp(m->value, want, n) == 0;
}

/* Appends n records to partition `part`, per_batch to an ulog_append call
 * (one batch), all with timestamp ts (ms since the epoch); checks each got
 * the next offset. Returns the first offset. ts_log (may be NULL) gets the
 * timestamp of each offset. */
static int64_t put(ulog *log, const char *topic, int32_t part, int64_t n, int per_batch,
                   int64_t ts, int64_t *ts_log)
{
    static uint8_t v[64][VMAX];
    ulog_record r[64];
    cr_assert(per_batch >= 1 && per_batch <= 64);
    int64_t lo, hi;
    watermarks(log, topic, part, &lo, &hi);
    for (int64_t done = 0; done < n;) {
        int k = n - done < per_batch ? (int)(n - done) : per_batch;
        for (int i = 0; i < k; i++)
            r[i] = (ulog_record){ .value = v[i],
                                  .value_len = make_val(v[i], part, hi + done + i),
                                  .timestamp = ts, .partition = part };
        append_ok(log, topic, r, (size_t)k);
        for (int i = 0; i < k; i++) {
            cr_assert_eq(r[i].offset, hi + done + i, "append: offset %lld, expected %lld",
                         (long long)r[i].offset, (long long)(hi + done + i));
            if (ts_log)
                ts_log[hi + done + i] = ts;
        }
        done += k;
    }
    return hi;
}

/* ================================================================ on disk */

#define MAX_SEGS 1024

typedef struct segs {
    size_t  n;
    int64_t base[MAX_SEGS];
    int64_t size[MAX_SEGS];
} segs;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment files of a partition, by base offset, with their sizes. */
static void list_segs(segs *s, const char *topic, int32_t part)
{
    char pd[600];
    part_dir(pd, sizeof pd, logdir, topic, part);
    DIR *d = opendir(pd);
    cr_assert_not_null(d, "opendir %s: %s", pd, strerror(errno));
    s->n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_segment_name(de->d_name))
            continue;
        cr_assert_lt(s->n, (size_t)MAX_SEGS);
        s->base[s->n++] = strtoll(de->d_name, NULL, 10);
    }
    closedir(d);
    qsort(s->base, s->n, sizeof s->base[0], cmp_i64);
    for (size_t i = 0; i < s->n; i++) {
        char p[700];
        struct stat st;
        seg_path(p, sizeof p, logdir, topic, part, s->base[i]);
        cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, strerror(errno));
        s->size[i] = st.st_size;
    }
}

/* Index of the segment holding offset off: the last base <= off. */
static size_t seg_of(const segs *s, int64_t off)
{
    cr_assert_gt(s->n, 0);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->base[i] <= off)
            k = i;
    return k;
}

static int64_t bytes_of(const segs *s, size_t from, size_t to)
{
    int64_t b = 0;
    for (size_t i = from; i < to; i++)
        b += s->size[i];
    return b;
}

/* After the files before[0..k) were deleted: exactly before[k..] is left. */
static void expect_suffix(const segs *before, size_t k, const char *topic, int32_t part)
{
    segs after;
    list_segs(&after, topic, part);
    cr_assert_eq(after.n, before->n - k, "%s/%d: %zu segment files left, expected %zu (of %zu)",
                 topic, (int)part, after.n, before->n - k, before->n);
    for (size_t i = 0; i < after.n; i++)
        cr_assert_eq(after.base[i], before->base[k + i],
                     "%s/%d: file %zu left has base %lld, expected %lld", topic, (int)part, i,
                     (long long)after.base[i], (long long)before->base[k + i]);
}

static bool seg_exists(const char *topic, int32_t part, int64_t base)
{
    char p[700];
    struct stat st;
    seg_path(p, sizeof p, logdir, topic, part, base);
    return stat(p, &st) == 0;
}

static ulog_partition_info describe(ulog *log, const char *topic, int32_t part)
{
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    int rc = ulog_partition_describe(log, topic, part, &pi);
    cr_assert_eq(rc, 0, "partition_describe %s/%d: %s", topic, (int)part, ulog_errname(rc));
    return pi;
}

static int64_t low_of(ulog *log, const char *topic, int32_t part)
{
    int64_t lo, hi;
    watermarks(log, topic, part, &lo, &hi);
    return lo;
}

static int64_t high_of(ulog *log, const char *topic, int32_t part)
{
    int64_t lo, hi;
    watermarks(log, topic, part, &lo, &hi);
    return hi;
}

/* Checks the watermarks and partition_describe agree on low == want. */
static void expect_low(ulog *log, const char *topic, int32_t part, int64_t want)
{
    int64_t lo, hi;
    watermarks(log, topic, part, &lo, &hi);
    cr_assert_eq(lo, want, "%s/%d: low %lld, expected %lld", topic, (int)part, (long long)lo,
                 (long long)want);
    ulog_partition_info pi = describe(log, topic, part);
    cr_assert_eq(pi.low, want, "%s/%d: partition_describe.low %lld, expected %lld", topic,
                 (int)part, (long long)pi.low, (long long)want);
}

/* A subscription to every partition of topic, with a group (or NULL) and
 * the given auto.offset.reset. */
static ulog_sub *sub_with(ulog *log, const char *topic, const char *group, const char *reset)
{
    ulog_config *c = cfg_of("auto.offset.reset", reset, NULL);
    ulog_sub *s = NULL;
    int rc = ulog_subscribe(log, topic, group, c, &s);
    ulog_config_free(c);
    cr_assert_eq(rc, 0, "ulog_subscribe %s group %s reset %s: %s", topic,
                 group ? group : "(none)", reset, ulog_errname(rc));
    return s;
}

/* Reads partition `part` of a one-partition topic from the earliest offset:
 * it must start exactly at lo, go densely up to hi - 1, every record whole,
 * with the timestamp ts_log says (when not NULL), then time out. */
static void read_back(ulog *log, const char *topic, int32_t part, int64_t lo, int64_t hi,
                      const int64_t *ts_log)
{
    ulog_sub *s = sub_earliest(log, topic);
    ulog_msg m;
    int64_t want = lo;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.partition, part);
        cr_assert_eq(m.offset, want, "%s: read offset %lld, expected %lld (low %lld)", topic,
                     (long long)m.offset, (long long)want, (long long)lo);
        cr_assert(msg_ok(&m, part), "%s: record at offset %lld is not what was appended",
                  topic, (long long)m.offset);
        if (ts_log)
            cr_assert_eq(m.timestamp, ts_log[m.offset], "%s: offset %lld: timestamp %lld, not %lld",
                         topic, (long long)m.offset, (long long)m.timestamp,
                         (long long)ts_log[m.offset]);
        want++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s: poll at %lld: %s", topic, (long long)want,
                 ulog_errname(rc));
    cr_assert_eq(want, hi, "%s: read up to %lld, high is %lld", topic, (long long)want,
                 (long long)hi);
    /* Below low is out of range for a seek; low itself is fine, and a seek
     * by a time before every record lands on low, never below. */
    if (lo > 0)
        cr_assert_eq(ulog_seek(s, part, lo - 1), ULOG_EOFFSET, "seek to low - 1");
    cr_assert_eq(ulog_seek(s, part, lo), 0, "seek to low");
    cr_assert_eq(ulog_seek_time(s, part, 0), 0);
    int64_t pos = -1;
    cr_assert_eq(ulog_position(s, part, &pos), 0);
    cr_assert_eq(pos, lo, "seek_time(0) went to %lld, low is %lld", (long long)pos,
                 (long long)lo);
    ulog_sub_close(s);
}

static ulog_config *topic_cfg(const char *name, ...)
{
    ulog_config *c = cfg_of("segment.bytes", SEG, "flush.policy", "none", NULL);
    va_list ap;
    va_start(ap, name);
    cfg_set_pairs(c, true, name, ap);
    va_end(ap);
    return c;
}

static void alter(ulog *log, const char *topic, ulog_config *c)
{
    int rc = ulog_topic_alter(log, topic, c);
    ulog_config_free(c);
    cr_assert_eq(rc, 0, "ulog_topic_alter %s: %s", topic, ulog_errname(rc));
}

/* Appends n records with timestamp ts to partition `part` of "t", one per
 * batch, then lists its segment files into before: at least min_segs.
 * Returns the high watermark. */
static int64_t fill(ulog *log, int32_t part, int64_t n, int64_t ts, int64_t *ts_log,
                    segs *before, size_t min_segs)
{
    put(log, "t", part, n, 1, ts, ts_log);
    list_segs(before, "t", part);
    cr_assert_geq(before->n, min_segs, "setup: %lld records fill only %zu segments",
                  (long long)n, before->n);
    return high_of(log, "t", part);
}

/* The offset `into` records past the base of segment i of s, still inside
 * that segment. */
static int64_t inside_seg(const segs *s, size_t i, int64_t into)
{
    int64_t off = s->base[i] + into;
    cr_assert_lt(off, s->base[i + 1], "setup: segment %zu holds %lld records or fewer", i,
                 (long long)into);
    return off;
}

/* ================================================================ progress */

typedef struct cbrec {
    int     calls;
    int     stop_at;       /* return stop_val from this call (1-based); 0: never */
    int     stop_val;
    int     calls_after_stop;
    int64_t total, done, segs_deleted, bytes;
    int32_t parts[64];     /* the partition of each call */
    char    topics[64][32];
    char    bad[256];      /* the first inconsistency seen, "" for none */
} cbrec;

static int clean_cb(const ulog_clean_progress *p, void *arg)
{
    cbrec *r = arg;
    int i = r->calls++;
    if (r->stop_at && i >= r->stop_at)
        r->calls_after_stop++;
    if (!r->bad[0]) {
        if (p->struct_size < sizeof *p)
            snprintf(r->bad, sizeof r->bad, "call %d: struct_size %zu", i, p->struct_size);
        else if (!p->topic)
            snprintf(r->bad, sizeof r->bad, "call %d: NULL topic", i);
        else if (p->partitions_done < r->done || p->partitions_done > p->partitions_total)
            snprintf(r->bad, sizeof r->bad, "call %d: partitions_done %lld after %lld, of %lld",
                     i, (long long)p->partitions_done, (long long)r->done,
                     (long long)p->partitions_total);
        else if (i > 0 && p->partitions_total != r->total)
            snprintf(r->bad, sizeof r->bad, "call %d: partitions_total %lld then %lld", i,
                     (long long)r->total, (long long)p->partitions_total);
        else if (p->segments_deleted < r->segs_deleted || p->bytes_reclaimed < r->bytes)
            snprintf(r->bad, sizeof r->bad, "call %d: segments %lld bytes %lld after %lld %lld",
                     i, (long long)p->segments_deleted, (long long)p->bytes_reclaimed,
                     (long long)r->segs_deleted, (long long)r->bytes);
    }
    if (i < 64) {
        r->parts[i] = p->partition;
        snprintf(r->topics[i], sizeof r->topics[i], "%s", p->topic ? p->topic : "(null)");
    }
    r->total = p->partitions_total;
    r->done = p->partitions_done;
    r->segs_deleted = p->segments_deleted;
    r->bytes = p->bytes_reclaimed;
    return r->stop_at && i + 1 == r->stop_at ? r->stop_val : 0;
}

static void clean_ok(ulog *log, const char *topic, cbrec *rec)
{
    int rc = ulog_clean(log, topic, ULOG_CLEAN_RETENTION, rec ? clean_cb : NULL, rec);
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "ulog_clean %s: %s (%d) %s", topic ? topic : "(all)", ulog_errname(rc),
                 rc, msg);
    if (rec)
        cr_assert_str_empty(rec->bad, "progress: %s", rec->bad);
}

/* ================================================================ retention.ms */

/* `old` records two hours old, then `fresh` ones, one per batch, into a
 * topic with 4096-byte segments: returns the first fresh offset; ts_log
 * gets every timestamp. */
static int64_t old_then_fresh(ulog *log, const char *topic, int32_t part, int64_t old,
                              int64_t fresh, int64_t *ts_log)
{
    put(log, topic, part, old, 1, now_ms() - 2 * HOUR_MS, ts_log);
    return put(log, topic, part, fresh, 1, now_ms(), ts_log);
}

/* old_then_fresh(), then the partition's segment files into before.
 * Returns k, the index there of the segment holding the first fresh
 * record, which must be at least min_k: segments 0..k-1 hold old records
 * only. */
static size_t old_segments(ulog *log, const char *topic, int32_t part, int64_t old,
                           int64_t fresh, int64_t *ts_log, segs *before, size_t min_k)
{
    int64_t first = old_then_fresh(log, topic, part, old, fresh, ts_log);
    list_segs(before, topic, part);
    size_t k = seg_of(before, first);
    cr_assert_geq(k, min_k, "setup: only %zu segments before the first fresh record", k);
    return k;
}

Test(retention, time_deletes_exactly_the_old_leading_segments)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.ms", "3600000", NULL));
    segs before;
    size_t k = old_segments(log, "t", 0, 150, 40, ts, &before, 3);
    int64_t high = high_of(log, "t", 0);
    cr_assert_lt(k + 1, before.n, "setup: the first fresh record is in the active segment");
    ulog_partition_info pb = describe(log, "t", 0);
    cr_assert_eq(pb.low, 0);
    cr_assert_eq(pb.segments, (int64_t)before.n);
    cr_assert_eq(pb.reclaimed, 0, "reclaimed %lld before any clean", (long long)pb.reclaimed);
    cr_assert_eq(pb.cleaned_ms, 0, "cleaned_ms %lld before any clean", (long long)pb.cleaned_ms);

    cbrec rec = { 0 };
    int64_t t0 = now_ms();
    clean_ok(log, "t", &rec);
    int64_t t1 = now_ms();

    expect_suffix(&before, k, "t", 0);
    expect_low(log, "t", 0, before.base[k]);
    cr_assert_eq(high_of(log, "t", 0), high, "high moved");
    int64_t gone = bytes_of(&before, 0, k);
    ulog_partition_info pa = describe(log, "t", 0);
    cr_expect_eq(pa.segments, (int64_t)(before.n - k));
    cr_expect_eq(pa.bytes, pb.bytes - gone, "bytes %lld, expected %lld - %lld",
                 (long long)pa.bytes, (long long)pb.bytes, (long long)gone);
    cr_expect_eq(pa.reclaimed, gone, "reclaimed %lld, deleted files held %lld bytes",
                 (long long)pa.reclaimed, (long long)gone);
    cr_expect(pa.cleaned_ms >= t0 - 1 && pa.cleaned_ms <= t1 + 1,
              "cleaned_ms %lld, the call ran in [%lld, %lld]", (long long)pa.cleaned_ms,
              (long long)t0, (long long)t1);
    /* The callback: start and end of the one partition, with the totals. */
    cr_expect_eq(rec.calls, 2, "callback called %d times for 1 partition", rec.calls);
    cr_expect_eq(rec.total, 1);
    cr_expect_eq(rec.done, 1, "partitions_done %lld at the end", (long long)rec.done);
    cr_expect_eq(rec.segs_deleted, (int64_t)k, "segments_deleted %lld, expected %zu",
                 (long long)rec.segs_deleted, k);
    cr_expect_eq(rec.bytes, gone, "bytes_reclaimed %lld, expected %lld", (long long)rec.bytes,
                 (long long)gone);
    cr_expect_str_eq(rec.topics[0], "t");
    cr_expect_eq(rec.parts[0], 0);
    read_back(log, "t", 0, before.base[k], high, ts);

    /* Again: nothing more to delete; the counters stay. */
    sleep_ms(5);
    cbrec rec2 = { 0 };
    clean_ok(log, "t", &rec2);
    expect_suffix(&before, k, "t", 0);
    ulog_partition_info pc = describe(log, "t", 0);
    cr_expect_eq(pc.reclaimed, pa.reclaimed);
    cr_expect_eq(pc.cleaned_ms, pa.cleaned_ms, "cleaned_ms moved on a run that deleted nothing");
    cr_expect_eq(rec2.segs_deleted, 0);
    cr_expect_eq(rec2.bytes, 0);

    /* Appends go on at high. */
    cr_assert_eq(put(log, "t", 0, 3, 1, now_ms(), ts), high);
    read_back(log, "t", 0, before.base[k], high + 3, ts);
    ulog_close(log);

    /* Durable: another handle sees the same low. */
    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, before.base[k]);
    read_back(log, "t", 0, before.base[k], high + 3, ts);
    ulog_close(log);
}

/* A topic nobody configured loses nothing; retention.ms set later with
 * ulog_topic_alter applies at the next clean. */
Test(retention, default_keeps_everything_and_alter_turns_it_on)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg(NULL));
    segs before;
    size_t k = old_segments(log, "t", 0, 120, 30, ts, &before, 2);
    int64_t high = high_of(log, "t", 0);
    clean_ok(log, "t", NULL);
    expect_suffix(&before, 0, "t", 0);
    expect_low(log, "t", 0, 0);
    ulog_partition_info pi = describe(log, "t", 0);
    cr_expect_eq(pi.reclaimed, 0);
    cr_expect_eq(pi.cleaned_ms, 0);

    alter(log, "t", cfg_of("retention.ms", "3600000", NULL));
    clean_ok(log, "t", NULL);
    expect_suffix(&before, k, "t", 0);
    expect_low(log, "t", 0, before.base[k]);
    read_back(log, "t", 0, before.base[k], high, ts);

    /* Back to -1: nothing more goes, even what is older still. */
    alter(log, "t", cfg_of("retention.ms", "-1", "retention.bytes", "-1", NULL));
    put(log, "t", 0, 60, 1, now_ms() - 2 * HOUR_MS, ts);
    segs mid;
    list_segs(&mid, "t", 0);
    clean_ok(log, "t", NULL);
    expect_suffix(&mid, 0, "t", 0);
    expect_low(log, "t", 0, before.base[k]);
    ulog_close(log);
}

Test(retention, time_never_deletes_the_active_segment)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.ms", "3600000", NULL));
    segs before;
    int64_t high = fill(log, 0, 100, now_ms() - 2 * HOUR_MS, ts, &before, 3);   /* all old */
    clean_ok(log, "t", NULL);
    expect_suffix(&before, before.n - 1, "t", 0);
    expect_low(log, "t", 0, before.base[before.n - 1]);
    read_back(log, "t", 0, before.base[before.n - 1], high, ts);
    /* The active segment goes on taking appends. */
    cr_assert_eq(put(log, "t", 0, 2, 1, now_ms(), ts), high);
    read_back(log, "t", 0, before.base[before.n - 1], high + 2, ts);
    ulog_close(log);
}

/* "every record in them is older than retention.ms, by the largest
 * timestamp in the segment or before it": old records after a fresh one
 * stay with it. */
Test(retention, time_judges_by_the_largest_timestamp_so_far)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.ms", "3600000", NULL));
    int64_t old = now_ms() - 2 * HOUR_MS;
    put(log, "t", 0, 60, 1, old, ts);
    int64_t fresh = put(log, "t", 0, 1, 1, now_ms(), ts);
    put(log, "t", 0, 90, 1, old, ts);
    int64_t high = high_of(log, "t", 0);
    segs before;
    list_segs(&before, "t", 0);
    size_t k = seg_of(&before, fresh);
    cr_assert_geq(k, 2);
    cr_assert_geq(before.n - k, 4, "setup: too few old segments after the fresh record");
    clean_ok(log, "t", NULL);
    expect_suffix(&before, k, "t", 0);
    expect_low(log, "t", 0, before.base[k]);
    read_back(log, "t", 0, before.base[k], high, ts);
    ulog_close(log);
}

/* The callback sees every partition; a non-zero return stops the run after
 * the partition at hand, and ulog_clean returns it. */
Test(retention, progress_callback_and_stop)
{
    enum { P = 3 };
    static int64_t ts[P][1000];
    ulog *log = open_with_topic(logdir, NULL, "t", P, topic_cfg("retention.ms", "3600000", NULL));
    segs before[P];
    size_t k[P];
    for (int32_t p = 0; p < P; p++)
        k[p] = old_segments(log, "t", p, 80 + 10 * p, 20, ts[p], &before[p], 2);
    /* Stop at the end of the first partition (its second call). */
    cbrec rec = { .stop_at = 2, .stop_val = 7 };
    int rc = ulog_clean(log, "t", ULOG_CLEAN_RETENTION, clean_cb, &rec);
    cr_assert_eq(rc, 7, "ulog_clean returned %d (%s), the callback 7", rc, ulog_errname(rc));
    cr_assert_str_empty(rec.bad, "progress: %s", rec.bad);
    cr_assert_eq(rec.calls, 2, "callback called %d times", rec.calls);
    cr_assert_eq(rec.calls_after_stop, 0);
    cr_assert_eq(rec.total, P);
    cr_assert_eq(rec.parts[0], rec.parts[1], "calls 1 and 2 for partitions %d and %d",
                 (int)rec.parts[0], (int)rec.parts[1]);
    int32_t first = rec.parts[0];
    cr_assert(first >= 0 && first < P, "partition %d", (int)first);
    for (int32_t p = 0; p < P; p++) {
        if (p == first) {
            expect_suffix(&before[p], k[p], "t", p);
            expect_low(log, "t", p, before[p].base[k[p]]);
        } else {
            expect_suffix(&before[p], 0, "t", p);
            expect_low(log, "t", p, 0);
        }
    }
    cr_expect_eq(rec.segs_deleted, (int64_t)k[first]);

    /* The rest, to the end, with the totals in the last call. */
    cbrec all = { 0 };
    clean_ok(log, "t", &all);
    cr_expect_eq(all.calls, 2 * P, "callback called %d times for %d partitions", all.calls, P);
    cr_expect_eq(all.total, P);
    cr_expect_eq(all.done, P, "partitions_done %lld in the last call", (long long)all.done);
    int64_t segs_want = 0, bytes_want = 0;
    bool seen[P] = { false };
    for (int i = 0; i < all.calls && i < 64; i++) {
        cr_expect_str_eq(all.topics[i], "t");
        if (all.parts[i] >= 0 && all.parts[i] < P)
            seen[all.parts[i]] = true;
    }
    for (int32_t p = 0; p < P; p++) {
        cr_expect(seen[p], "no callback for partition %d", (int)p);
        expect_suffix(&before[p], k[p], "t", p);
        expect_low(log, "t", p, before[p].base[k[p]]);
        if (p != first) {
            segs_want += (int64_t)k[p];
            bytes_want += bytes_of(&before[p], 0, k[p]);
        }
        ulog_partition_info pi = describe(log, "t", p);
        cr_expect_eq(pi.reclaimed, bytes_of(&before[p], 0, k[p]), "partition %d: reclaimed %lld",
                     (int)p, (long long)pi.reclaimed);
    }
    cr_expect_eq(all.segs_deleted, segs_want, "segments_deleted %lld, expected %lld",
                 (long long)all.segs_deleted, (long long)segs_want);
    cr_expect_eq(all.bytes, bytes_want, "bytes_reclaimed %lld, expected %lld",
                 (long long)all.bytes, (long long)bytes_want);
    ulog_close(log);
}

/* A non-zero return at the start of a partition: "stops the run after the
 * partition at hand", so that partition is still cleaned, no other is. */
Test(retention, progress_stop_at_a_partition_start)
{
    enum { P = 3 };
    ulog *log = open_with_topic(logdir, NULL, "t", P, topic_cfg("retention.bytes", "0", NULL));
    segs before[P];
    for (int32_t p = 0; p < P; p++)
        fill(log, p, 60, now_ms(), NULL, &before[p], 3);
    cbrec rec = { .stop_at = 1, .stop_val = -1000 };
    int rc = ulog_clean(log, "t", ULOG_CLEAN_RETENTION, clean_cb, &rec);
    cr_assert_eq(rc, -1000, "ulog_clean returned %d, the callback -1000", rc);
    cr_assert_str_empty(rec.bad, "progress: %s", rec.bad);
    int32_t first = rec.parts[0];
    cr_assert(first >= 0 && first < P, "partition %d", (int)first);
    for (int32_t p = 0; p < P; p++)
        if (p != first) {
            expect_suffix(&before[p], 0, "t", p);
            expect_low(log, "t", p, 0);
        }
    /* The run stops at once: no call after the one that said stop, and
     * the partition whose start it was is left as it is. */
    cr_expect_eq(rec.calls, 1, "%d callbacks", rec.calls);
    expect_suffix(&before[first], 0, "t", first);
    expect_low(log, "t", first, 0);
    ulog_close(log);
}

/* topic NULL: every topic of the root, also those this handle never opened. */
Test(retention, null_topic_cleans_every_topic)
{
    static int64_t ts[3][1000];
    ulog *log = open_at(logdir, NULL);
    create_topic(log, "a", 2, topic_cfg("retention.ms", "3600000", NULL));
    create_topic(log, "b", 1, topic_cfg("retention.bytes", "0", NULL));
    create_topic(log, "keep", 1, topic_cfg(NULL));
    segs sa[2], sb, sk;
    size_t ka[2];
    for (int32_t p = 0; p < 2; p++)
        ka[p] = old_segments(log, "a", p, 70, 20, ts[p], &sa[p], 2);
    put(log, "b", 0, 80, 1, now_ms(), ts[2]);
    list_segs(&sb, "b", 0);
    cr_assert_geq(sb.n, 3);
    put(log, "keep", 0, 80, 1, now_ms() - 2 * HOUR_MS, NULL);
    list_segs(&sk, "keep", 0);
    cr_assert_geq(sk.n, 3);
    ulog_close(log);

    log = open_at(logdir, NULL);
    cbrec rec = { 0 };
    clean_ok(log, NULL, &rec);
    cr_expect_eq(rec.total, 4, "partitions_total %lld for 4 partitions in 3 topics",
                 (long long)rec.total);
    cr_expect_eq(rec.calls, 8);
    for (int32_t p = 0; p < 2; p++) {
        expect_suffix(&sa[p], ka[p], "a", p);
        expect_low(log, "a", p, sa[p].base[ka[p]]);
    }
    expect_suffix(&sb, sb.n - 1, "b", 0);
    expect_low(log, "b", 0, sb.base[sb.n - 1]);
    expect_suffix(&sk, 0, "keep", 0);
    expect_low(log, "keep", 0, 0);
    cr_expect_eq(rec.segs_deleted, (int64_t)(ka[0] + ka[1] + sb.n - 1));
    ulog_close(log);
}

/* ================================================================ retention.bytes */

/* The segments retention.bytes deletes from `s`: the oldest closed ones
 * while the partition is larger than rb by at least the segment's size. */
static size_t bytes_rule(const segs *s, int64_t rb)
{
    int64_t total = bytes_of(s, 0, s->n);
    size_t k = 0;
    while (k + 1 < s->n && total - s->size[k] >= rb)
        total -= s->size[k++];
    return k;
}

Test(retention, bytes_keeps_the_partition_under_retention_bytes)
{
    const int64_t rb = 10000;
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.bytes", "10000", NULL));
    segs before;   /* fresh records: retention.ms plays no part */
    int64_t high = fill(log, 0, 250, now_ms(), NULL, &before, 6);
    size_t k = bytes_rule(&before, rb);
    cr_assert_geq(k, 3);
    ulog_partition_info pb = describe(log, "t", 0);
    cr_assert_eq(pb.bytes, bytes_of(&before, 0, before.n));
    clean_ok(log, "t", NULL);
    expect_suffix(&before, k, "t", 0);
    expect_low(log, "t", 0, before.base[k]);
    ulog_partition_info pa = describe(log, "t", 0);
    /* What the header promises, said directly. */
    segs after;
    list_segs(&after, "t", 0);
    cr_assert(after.n == 1 || pa.bytes - after.size[0] < rb,
              "%zu segments, %lld bytes, the first %lld: one more could have gone", after.n,
              (long long)pa.bytes, (long long)after.size[0]);
    cr_assert_geq(pa.bytes, rb, "%lld bytes left: deleted below retention.bytes %lld",
                  (long long)pa.bytes, (long long)rb);
    cr_expect_eq(pa.reclaimed, bytes_of(&before, 0, k));
    read_back(log, "t", 0, before.base[k], high, NULL);

    /* More appends, more cleans: it stays within the rule each time. */
    for (int round = 0; round < 3; round++) {
        put(log, "t", 0, 40, 1, now_ms(), NULL);
        list_segs(&before, "t", 0);
        k = bytes_rule(&before, rb);
        clean_ok(log, "t", NULL);
        expect_suffix(&before, k, "t", 0);
        expect_low(log, "t", 0, before.base[k]);
    }

    /* retention.bytes 0: every closed segment goes, the active one stays. */
    alter(log, "t", cfg_of("retention.bytes", "0", NULL));
    list_segs(&before, "t", 0);
    cr_assert_geq(before.n, 2);
    clean_ok(log, "t", NULL);
    expect_suffix(&before, before.n - 1, "t", 0);
    expect_low(log, "t", 0, before.base[before.n - 1]);
    read_back(log, "t", 0, before.base[before.n - 1], high_of(log, "t", 0), NULL);
    ulog_close(log);
}

/* ================================================================ segment.ms */

/* segment.ms one hour, with retention.ms one hour too or not; the default
 * segment.bytes. */
static ulog_config *seg_ms_cfg(bool with_retention_ms)
{
    if (with_retention_ms)
        return cfg_of("flush.policy", "none", "segment.ms", "3600000", "retention.ms", "3600000",
                      NULL);
    return cfg_of("flush.policy", "none", "segment.ms", "3600000", NULL);
}

/* An idle active segment whose first record is older than segment.ms is
 * rolled by ulog_clean; retention.ms then deletes it. */
Test(retention, segment_ms_rolls_an_idle_old_segment)
{
    static int64_t ts[100];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, seg_ms_cfg(false));
    put(log, "t", 0, 5, 1, now_ms() - 2 * HOUR_MS, ts);
    segs s;
    list_segs(&s, "t", 0);
    cr_assert_eq(s.n, 1);
    clean_ok(log, "t", NULL);
    /* Rolled, not deleted (retention.ms is -1): the next record opens
     * segment 5. */
    expect_low(log, "t", 0, 0);
    cr_assert(seg_exists("t", 0, 0));
    cr_assert_eq(put(log, "t", 0, 1, 1, now_ms(), ts), 5);
    cr_assert(seg_exists("t", 0, 5), "the old active segment was not rolled by ulog_clean");
    read_back(log, "t", 0, 0, 6, ts);

    alter(log, "t", cfg_of("retention.ms", "3600000", NULL));
    clean_ok(log, "t", NULL);
    cr_assert(!seg_exists("t", 0, 0), "the rolled old segment was not deleted");
    expect_low(log, "t", 0, 5);
    read_back(log, "t", 0, 5, 6, ts);
    ulog_close(log);
}

/* With retention.ms too, one run rolls the idle segment and deletes it. */
Test(retention, segment_ms_and_retention_ms_empty_an_idle_partition)
{
    static int64_t ts[100];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, seg_ms_cfg(true));
    put(log, "t", 0, 5, 1, now_ms() - 2 * HOUR_MS, ts);
    cbrec rec = { 0 };
    clean_ok(log, "t", &rec);
    expect_low(log, "t", 0, 5);
    cr_assert_eq(high_of(log, "t", 0), 5);
    cr_assert(!seg_exists("t", 0, 0), "segment 0 still there");
    cr_expect_eq(rec.segs_deleted, 1);
    read_back(log, "t", 0, 5, 5, ts);
    cr_assert_eq(put(log, "t", 0, 2, 1, now_ms(), ts), 5);
    read_back(log, "t", 0, 5, 7, ts);
    ulog_close(log);
    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, 5);
    read_back(log, "t", 0, 5, 7, ts);
    ulog_close(log);
}

/* A fresh active segment is not rolled; one whose first record is old is,
 * even when later records are fresh, and retention.ms keeps it (its
 * largest timestamp is fresh). */
Test(retention, segment_ms_leaves_a_fresh_segment_alone)
{
    static int64_t ts[100];
    ulog *log = open_with_topic(logdir, NULL, "fresh", 1, seg_ms_cfg(true));
    create_topic(log, "mixed", 1, seg_ms_cfg(true));
    put(log, "fresh", 0, 5, 1, now_ms(), ts);
    put(log, "mixed", 0, 1, 1, now_ms() - 2 * HOUR_MS, NULL);
    put(log, "mixed", 0, 4, 1, now_ms(), NULL);
    clean_ok(log, "fresh", NULL);
    clean_ok(log, "mixed", NULL);
    cr_assert_eq(put(log, "fresh", 0, 1, 1, now_ms(), ts), 5);
    segs s;
    list_segs(&s, "fresh", 0);
    cr_assert_eq(s.n, 1, "a fresh active segment was rolled: %zu segments", s.n);
    expect_low(log, "fresh", 0, 0);
    read_back(log, "fresh", 0, 0, 6, ts);

    cr_assert_eq(put(log, "mixed", 0, 1, 1, now_ms(), NULL), 5);
    cr_assert(seg_exists("mixed", 0, 5), "an active segment with an old first record was not rolled");
    cr_assert(seg_exists("mixed", 0, 0), "a segment with fresh records was deleted");
    expect_low(log, "mixed", 0, 0);
    read_back(log, "mixed", 0, 0, 6, NULL);
    ulog_close(log);
}

/* ================================================================ background */

Test(retention, background_run_moves_low_without_ulog_clean)
{
    static int64_t ts[1000];
    int64_t t0 = now_ms();
    ulog *log = open_with_topic(logdir, cfg_of("retention.check.ms", "100", NULL), "t", 1,
                                topic_cfg("retention.ms", "3600000", NULL));
    /* The background run may have deleted some already; the segment of the
     * first fresh record stays and is where low must end up. */
    segs s;
    size_t k = old_segments(log, "t", 0, 120, 30, ts, &s, 0);
    int64_t high = high_of(log, "t", 0);
    int64_t want = s.base[k];
    cr_assert_gt(want, 0);
    int64_t lo = 0;
    for (int64_t end = mono_ns() + 5000000000LL; mono_ns() < end;) {
        lo = low_of(log, "t", 0);
        if (lo >= want)
            break;
        sleep_ms(20);
    }
    cr_assert_eq(lo, want, "after 5 s with retention.check.ms=100, low is %lld, expected %lld",
                 (long long)lo, (long long)want);
    /* The head moves before the files go (catalog, head, then unlinks):
     * the run in the flusher thread may still be unlinking. */
    for (int64_t end = mono_ns() + 5000000000LL; mono_ns() < end;) {
        segs now;
        list_segs(&now, "t", 0);
        if (now.n == s.n - k)
            break;
        sleep_ms(20);
    }
    expect_suffix(&s, k, "t", 0);
    /* And it deletes no more than that on its next runs. */
    sleep_ms(350);
    expect_low(log, "t", 0, want);
    expect_suffix(&s, k, "t", 0);
    ulog_partition_info pi = describe(log, "t", 0);
    cr_expect_geq(pi.reclaimed, bytes_of(&s, 0, k));
    cr_expect_gt(pi.reclaimed, 0);
    cr_expect(pi.cleaned_ms >= t0 - 1 && pi.cleaned_ms <= now_ms() + 1, "cleaned_ms %lld",
              (long long)pi.cleaned_ms);
    read_back(log, "t", 0, want, high, ts);
    ulog_close(log);
}

/* ================================================================ readers in other processes */

typedef struct rd_args {
    int ready[2];   /* child -> parent: positioned after record 0 */
    int go[2];      /* parent -> child: low has passed it */
    int fin[2];     /* parent -> child: the final high watermark */
    int rep[2];     /* child -> parent: struct rd_report */
} rd_args;

typedef struct rd_report {
    int64_t reads, gaps, last;
} rd_report;

/* The child's side of the start: says it is ready, then waits for the
 * parent's go (len bytes into go). */
static void ready_then_go(rd_args *a, void *go, size_t len)
{
    int64_t zero = 0;
    write_all(a->ready[1], &zero, 8, "ready");
    CCHECK(read_within(a->go[0], go, len, 15000), "no go from the parent");
}

/* Reads from the earliest offset, slowly, while the parent appends and
 * cleans: offsets only go up; a gap only over records that are gone. */
static void slow_reader(void *arg)
{
    rd_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = child_sub(log, "t", NULL, "earliest");
    ulog_msg m;
    int rc = ulog_poll(s, 5000, &m);
    CCHECK(rc == 0, "first poll: %s", ulog_errname(rc));
    CCHECK(m.offset == 0 && msg_ok(&m, 0), "first record: offset %lld", (long long)m.offset);
    rd_report rep = { 1, 0, 0 };
    char c;
    ready_then_go(a, &c, 1);
    int64_t fin = -1;
    for (;;) {
        if (fin < 0) {
            struct pollfd pfd = { a->fin[0], POLLIN, 0 };
            if (poll(&pfd, 1, 0) == 1)
                CCHECK(read_within(a->fin[0], &fin, 8, 1000), "reading the final high");
        }
        if (fin >= 0 && rep.last + 1 >= fin)
            break;
        rc = ulog_poll(s, 100, &m);
        if (rc == ULOG_ETIMEDOUT)
            continue;
        CCHECK(rc == 0, "poll after offset %lld: %s", (long long)rep.last, ulog_errname(rc));
        int64_t lo, hi;
        CCHECK(ulog_watermarks(log, "t", 0, &lo, &hi) == 0, "watermarks");
        CCHECK(m.offset > rep.last, "offset %lld after %lld: went back or repeated",
               (long long)m.offset, (long long)rep.last);
        if (m.offset != rep.last + 1) {
            CCHECK(rep.last + 1 < lo && m.offset <= lo,
                   "jumped from %lld to %lld, but low is %lld: records skipped that are there",
                   (long long)rep.last, (long long)m.offset, (long long)lo);
            rep.gaps++;
        }
        CCHECK(msg_ok(&m, 0), "record at offset %lld is not what was appended",
               (long long)m.offset);
        rep.last = m.offset;
        rep.reads++;
        sleep_ms(1);
    }
    CCHECK(rep.last + 1 == fin, "read up to %lld, final high %lld", (long long)rep.last,
           (long long)fin);
    write_all(a->rep[1], &rep, sizeof rep, "report");
    ulog_sub_close(s);
    ulog_close(log);
}

/* Forks fn(a) (its watchdog: 25 s) and waits for its word that it is
 * ready. After the fork the parent keeps only the ends it uses, so a child
 * that dies shows as EOF at once rather than as a timeout. */
static pid_t start_child(void (*fn)(void *), rd_args *a, const char *what)
{
    make_pipe(a->ready);
    make_pipe(a->go);
    make_pipe(a->fin);
    make_pipe(a->rep);
    pid_t pid = spawn(fn, a, 25);
    close(a->ready[1]);
    close(a->go[0]);
    close(a->fin[0]);
    close(a->rep[1]);
    int64_t x;
    parent_read(a->ready[0], &x, 8, 10000, what);
    return pid;
}

/* Creates topic "t" (one partition, topic_cfg() settings c) in a new log
 * holding n fresh records, and closes the log: no handle across the fork. */
static void make_t(ulog_config *c, int64_t n)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, c);
    put(log, "t", 0, n, 1, now_ms(), NULL);
    ulog_close(log);
}

/* The next record a subscriber (number j) read after offset *last: offsets
 * only go up, and skip only records below low, which are gone (*gaps
 * counts the skips); the record is whole. */
static void expect_next(ulog *log, const ulog_msg *m, int j, int64_t *last, int64_t *gaps)
{
    int64_t lo = low_of(log, "t", 0);
    cr_assert_gt(m->offset, *last, "subscriber %d: offset %lld after %lld", j,
                 (long long)m->offset, (long long)*last);
    if (m->offset != *last + 1) {
        cr_assert(*last + 1 < lo && m->offset <= lo,
                  "subscriber %d jumped from %lld to %lld, low %lld", j, (long long)*last,
                  (long long)m->offset, (long long)lo);
        (*gaps)++;
    }
    cr_assert(msg_ok(m, 0), "record %lld is not what was appended", (long long)m->offset);
    *last = m->offset;
}

Test(retention, reader_in_another_process_never_goes_back)
{
    make_t(topic_cfg("retention.bytes", "8192", NULL), 20);
    rd_args a;
    pid_t pid = start_child(slow_reader, &a, "the reader to start");
    ulog *log = open_at(logdir, NULL);
    for (int round = 0; round < 15; round++) {
        put(log, "t", 0, 100, 1, now_ms(), NULL);
        clean_ok(log, "t", NULL);
        if (round == 0) {
            cr_assert_gt(low_of(log, "t", 0), 1, "the first clean left the reader's segment");
            char c = 'g';
            parent_write(a.go[1], &c, 1, "go");
        }
        sleep_ms(3);
    }
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_assert_gt(lo, 1000);
    parent_write(a.fin[1], &hi, 8, "final high");
    join_ok(pid, 20000, "slow reader");
    rd_report rep;
    parent_read(a.rep[0], &rep, sizeof rep, 1000, "the reader's report");
    cr_expect_eq(rep.last, hi - 1);
    cr_expect_geq(rep.gaps, 1, "the reader never jumped, though it sat below low");
    cr_expect_lt(rep.reads, hi, "the reader read %lld records of %lld: none were deleted?",
                 (long long)rep.reads, (long long)hi);
    ulog_close(log);
}

/* A group subscriber with auto.offset.reset=none that fell below low gets
 * ULOG_EOFFSET from ulog_poll, until it seeks. */
static void none_reader(void *arg)
{
    rd_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = child_sub(log, "t", "g", "none");
    ulog_msg m;
    int rc = ulog_poll(s, 5000, &m);
    CCHECK(rc == 0 && m.offset == 0 && msg_ok(&m, 0), "first poll: %s, offset %lld",
           ulog_errname(rc), rc == 0 ? (long long)m.offset : -1LL);
    char c;
    ready_then_go(a, &c, 1);
    rc = ulog_poll(s, 0, &m);
    CCHECK(rc == ULOG_EOFFSET, "poll below low: %s (offset %lld if a record), expected ULOG_EOFFSET",
           ulog_errname(rc), rc == 0 ? (long long)m.offset : -1LL);
    rc = ulog_poll(s, 50, &m);
    CCHECK(rc == ULOG_EOFFSET, "second poll below low: %s, expected ULOG_EOFFSET",
           ulog_errname(rc));
    int64_t lo, hi;
    CCHECK(ulog_watermarks(log, "t", 0, &lo, &hi) == 0, "watermarks");
    CCHECK(lo > 1, "low %lld", (long long)lo);
    rc = ulog_seek(s, 0, lo - 1);
    CCHECK(rc == ULOG_EOFFSET, "seek to low - 1: %s", ulog_errname(rc));
    rc = ulog_seek(s, 0, lo);
    CCHECK(rc == 0, "seek to low %lld: %s", (long long)lo, ulog_errname(rc));
    rc = ulog_poll(s, 1000, &m);
    CCHECK(rc == 0 && m.offset == lo && msg_ok(&m, 0), "poll after the seek to %lld: %s",
           (long long)lo, ulog_errname(rc));
    ulog_sub_close(s);   /* no commit: the group stays at 0 */
    ulog_close(log);
}

Test(retention, group_reader_with_reset_none_gets_eoffset)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.bytes", "8192", NULL));
    put(log, "t", 0, 20, 1, now_ms(), NULL);
    cr_assert_eq(ulog_group_reset(log, "g", "t", 0, ULOG_RESET_EARLIEST, 0), 0);
    ulog_close(log);
    rd_args a;
    pid_t pid = start_child(none_reader, &a, "the reader to start");
    log = open_at(logdir, NULL);
    put(log, "t", 0, 200, 1, now_ms(), NULL);
    clean_ok(log, "t", NULL);
    cr_assert_gt(low_of(log, "t", 0), 1);
    char c = 'g';
    parent_write(a.go[1], &c, 1, "go");
    join_ok(pid, 20000, "reader with auto.offset.reset=none");

    /* The group's committed 0 is below low: none refuses, earliest starts
     * at low. */
    ulog_config *cn = cfg_of("auto.offset.reset", "none", NULL);
    ulog_sub *s = NULL;
    cr_expect_eq(ulog_subscribe(log, "t", "g", cn, &s), ULOG_EOFFSET);
    ulog_config_free(cn);
    if (s)
        ulog_sub_close(s);
    s = sub_with(log, "t", "g", "earliest");
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, low_of(log, "t", 0));
    ulog_sub_close(s);
    ulog_close(log);
}

/* Another process cleans in a loop while this one appends, cleans and reads,
 * with the background run on in both: the partition stays whole. */
static void clean_loop(void *arg)
{
    rd_args *a = arg;
    ulog_config *c = cfg_try("retention.check.ms", "100", NULL);
    CCHECK(c, "config");
    ulog *log = child_open(logdir, c);
    ulog_config_free(c);
    int64_t runs = 0, last_lo = 0;
    write_all(a->ready[1], &runs, 8, "ready");
    for (;;) {
        struct pollfd pfd = { a->go[0], POLLIN, 0 };
        if (poll(&pfd, 1, 0) == 1)
            break;
        int rc = ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL);
        CCHECK(rc == 0, "ulog_clean: %s", ulog_errname(rc));
        int64_t lo, hi;
        CCHECK(ulog_watermarks(log, "t", 0, &lo, &hi) == 0, "watermarks");
        CCHECK(lo >= last_lo && lo <= hi, "low %lld after %lld, high %lld", (long long)lo,
               (long long)last_lo, (long long)hi);
        last_lo = lo;
        runs++;
        sleep_ms(1);
    }
    write_all(a->rep[1], &runs, 8, "report");
    ulog_close(log);
}

Test(retention, cleaning_in_two_processes_while_appending_and_reading)
{
    const int64_t rb = 8192;
    make_t(topic_cfg("retention.bytes", "8192", NULL), 0);
    rd_args a;
    pid_t pid = start_child(clean_loop, &a, "the cleaner to start");
    ulog *log = open_at(logdir, cfg_of("retention.check.ms", "100", NULL));
    put(log, "t", 0, 1, 1, now_ms(), NULL);
    ulog_sub *s = sub_earliest(log, "t");
    int64_t last = -1, gaps = 0;
    ulog_msg m;
    for (int i = 0; i < 3000; i++) {
        put(log, "t", 0, 1, 1, now_ms(), NULL);
        if (i % 250 == 0)
            clean_ok(log, "t", NULL);
        if (i % 3 == 0)
            continue;   /* the reader falls behind now and then */
        int64_t lo0 = low_of(log, "t", 0);
        int rc = ulog_poll(s, 0, &m);
        if (rc == ULOG_ETIMEDOUT)
            continue;
        char msg[512] = "";
        if (rc)
            ulog_errmsg(log, msg, sizeof msg);
        cr_assert_eq(rc, 0, "auto.offset.reset=earliest, poll after offset %lld (low %lld before "
                     "the poll, %lld after): %s (%s)", (long long)last, (long long)lo0,
                     (long long)low_of(log, "t", 0), ulog_errname(rc), msg);
        expect_next(log, &m, 0, &last, &gaps);
    }
    char c = 's';
    parent_write(a.go[1], &c, 1, "stop");
    join_ok(pid, 10000, "cleaner");
    int64_t runs = 0;
    parent_read(a.rep[0], &runs, 8, 1000, "the cleaner's report");
    cr_expect_gt(runs, 0);
    cr_expect_gt(gaps, 0, "the reader never fell below low");
    ulog_sub_close(s);

    clean_ok(log, "t", NULL);
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_assert_eq(hi, 3001);
    segs after;
    list_segs(&after, "t", 0);
    cr_assert_eq(after.base[0], lo, "first file %lld, low %lld", (long long)after.base[0],
                 (long long)lo);
    int64_t total = bytes_of(&after, 0, after.n);
    cr_assert(after.n == 1 || total - after.size[0] < rb, "%zu files, %lld bytes, first %lld",
              after.n, (long long)total, (long long)after.size[0]);
    cr_assert_geq(total, rb);
    read_back(log, "t", 0, lo, hi, NULL);
    cr_expect_eq(ulog_verify(log, "t", NULL, NULL, NULL), 0);
    ulog_close(log);
}

/* Appends one record at a time and cleans after each (retention.bytes 0:
 * every roll is followed by a deletion), until told to stop or 1.5 s. */
static void fast_cleaner(void *arg)
{
    rd_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    int64_t n = 0;
    char c;
    ready_then_go(a, &c, 1);
    static uint8_t v[VMAX];
    for (int64_t end = mono_ns() + 1500000000LL; mono_ns() < end; n++) {
        struct pollfd pfd = { a->fin[0], POLLIN, 0 };
        if (poll(&pfd, 1, 0) == 1)
            break;
        int64_t lo, hi;
        CCHECK(ulog_watermarks(log, "t", 0, &lo, &hi) == 0, "watermarks");
        ulog_record r = { .value = v, .value_len = make_val(v, 0, hi), .timestamp = now_ms(),
                          .partition = 0 };
        int rc = ulog_append(log, "t", &r, 1);
        CCHECK(rc == 0 && r.offset == hi, "append: %s, offset %lld, expected %lld",
               ulog_errname(rc), (long long)r.offset, (long long)hi);
        rc = ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL);
        CCHECK(rc == 0, "ulog_clean: %s", ulog_errname(rc));
    }
    write_all(a->rep[1], &n, 8, "report");
    ulog_close(log);
}

/* Lagging earliest subscribers while another process appends and deletes
 * as fast as it can: each jump to low races the next deletion; a poll must
 * never fail with ULOG_EOFFSET (that is auto.offset.reset=none's answer). */
Test(retention, earliest_readers_race_a_fast_cleaner)
{
    enum { N = 16 };
    make_t(topic_cfg("retention.bytes", "0", NULL), 1);
    rd_args a;
    pid_t pid = start_child(fast_cleaner, &a, "the cleaner to start");
    ulog *log = open_at(logdir, NULL);
    ulog_sub *s[N];
    int64_t last[N], gaps = 0;
    for (int j = 0; j < N; j++) {
        s[j] = sub_earliest(log, "t");
        last[j] = -1;
    }
    char c = 'g';
    parent_write(a.go[1], &c, 1, "go");
    ulog_msg m;
    bool done = false;
    for (int64_t end = mono_ns() + 3000000000LL; !done && mono_ns() < end;) {
        struct pollfd pfd = { a.rep[0], POLLIN, 0 };
        done = poll(&pfd, 1, 0) == 1;   /* the cleaner's report: it stopped */
        for (int j = 0; j < N; j++) {
            int rc = ulog_poll(s[j], 0, &m);
            if (rc == ULOG_ETIMEDOUT)
                continue;
            char msg[512] = "";
            if (rc)
                ulog_errmsg(log, msg, sizeof msg);
            cr_assert_eq(rc, 0, "subscriber %d (earliest), poll after offset %lld: %s (%s)", j,
                         (long long)last[j], ulog_errname(rc), msg);
            expect_next(log, &m, j, &last[j], &gaps);
        }
        /* One record per subscriber per 2 ms: the cleaner, a record and a
         * deletion per sync, outruns them, so they fall below low. */
        sleep_us(2000);
    }
    join_ok(pid, 10000, "appender and cleaner");
    int64_t n = 0;
    parent_read(a.rep[0], &n, 8, 1000, "the cleaner's report");
    cr_expect_gt(gaps, 0, "no subscriber ever fell below low");
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_assert_eq(hi, n + 1);
    for (int j = 0; j < N; j++) {
        int rc;
        while ((rc = ulog_poll(s[j], 0, &m)) == 0) {
            cr_assert_gt(m.offset, last[j]);
            cr_assert(m.offset == last[j] + 1 || m.offset == lo);
            last[j] = m.offset;
        }
        cr_assert_eq(rc, ULOG_ETIMEDOUT, "subscriber %d at the end: %s", j, ulog_errname(rc));
        cr_assert_eq(last[j], hi - 1);
        ulog_sub_close(s[j]);
    }
    ulog_close(log);
}

/* ================================================================ readers in this process */


/* Into an empty one-partition topic: offsets 0..19 in batches of 10, all in
 * segment 0; s reads 0..4 (mid-batch, mid-segment); then 600 more records
 * and a clean (retention.bytes) that deletes segment 0. Returns low. */
static int64_t read_into_a_segment_then_delete_it(ulog *log, ulog_sub *s)
{
    put(log, "t", 0, 20, 10, now_ms(), NULL);
    segs s0;
    list_segs(&s0, "t", 0);
    cr_assert_eq(s0.n, 1, "setup: 20 records fill %zu segments", s0.n);
    ulog_msg m;
    for (int64_t i = 0; i < 5; i++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, 0, "poll %lld: %s", (long long)i, ulog_errname(rc));
        cr_assert_eq(m.offset, i);
        cr_assert(msg_ok(&m, 0));
    }
    put(log, "t", 0, 600, 10, now_ms(), NULL);
    clean_ok(log, "t", NULL);
    cr_assert(!seg_exists("t", 0, 0), "segment 0 was not deleted");
    int64_t lo = low_of(log, "t", 0);
    cr_assert_gt(lo, 20);
    return lo;
}

/* Offsets after 4 in the batch being read (0..9) may still come; nothing
 * else below low. Returns the last offset read. */
static int64_t finish_batch(ulog_sub *s, int *rc)
{
    int64_t last = 4;
    ulog_msg m;
    while ((*rc = ulog_poll(s, 0, &m)) == 0 && m.offset == last + 1 && m.offset <= 9) {
        cr_assert(msg_ok(&m, 0), "record %lld of the deleted segment is not what was appended",
                  (long long)m.offset);
        last = m.offset;
    }
    if (*rc == 0) {
        cr_assert(msg_ok(&m, 0), "record at %lld is not what was appended", (long long)m.offset);
        return -m.offset - 1;   /* a record past the batch: the caller judges it */
    }
    return last;
}

Test(retention, reader_in_a_deleted_segment_continues_at_low)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.bytes", "8192", NULL));
    ulog_sub *s = sub_earliest(log, "t");
    int64_t lo = read_into_a_segment_then_delete_it(log, s);
    int64_t hi = high_of(log, "t", 0);
    int rc;
    int64_t r = finish_batch(s, &rc);
    cr_assert_eq(rc, 0, "after the deleted batch: %s, expected the record at low %lld",
                 ulog_errname(rc), (long long)lo);
    cr_assert(r < 0);
    int64_t last = -r - 1;
    cr_assert_eq(last, lo, "after the deleted batch: offset %lld, low is %lld", (long long)last,
                 (long long)lo);
    ulog_msg m;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.offset, last + 1);
        cr_assert(msg_ok(&m, 0));
        last = m.offset;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "poll after %lld: %s", (long long)last, ulog_errname(rc));
    cr_assert_eq(last, hi - 1);
    ulog_sub_close(s);
    ulog_close(log);
}

Test(retention, reader_in_a_deleted_segment_with_reset_none)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.bytes", "8192", NULL));
    cr_assert_eq(ulog_group_reset(log, "g", "t", 0, ULOG_RESET_EARLIEST, 0), 0);
    ulog_sub *s = sub_with(log, "t", "g", "none");
    int64_t lo = read_into_a_segment_then_delete_it(log, s);
    int rc;
    int64_t r = finish_batch(s, &rc);
    cr_assert_geq(r, 4, "a record at %lld below low %lld, past the batch being read",
                  (long long)(-r - 1), (long long)lo);
    cr_assert_eq(rc, ULOG_EOFFSET, "after the deleted batch: %s, expected ULOG_EOFFSET",
                 ulog_errname(rc));
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 10, &m), ULOG_EOFFSET, "a second poll");
    cr_assert_eq(ulog_seek(s, 0, lo), 0);
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, lo);
    cr_assert(msg_ok(&m, 0));
    ulog_sub_close(s);
    ulog_close(log);
}

/* auto.offset.reset=latest: below low, the subscription moves to high. */
Test(retention, reader_in_a_deleted_segment_with_reset_latest)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.bytes", "8192", NULL));
    ulog_sub *s = sub_with(log, "t", NULL, "latest");   /* at 0: the topic is empty */
    read_into_a_segment_then_delete_it(log, s);
    int64_t hi = high_of(log, "t", 0);
    int rc;
    int64_t r = finish_batch(s, &rc);
    cr_assert_geq(r, 4, "a record at %lld, expected none until high %lld", (long long)(-r - 1),
                  (long long)hi);
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "after the deleted batch: %s", ulog_errname(rc));
    int64_t pos = -1;
    cr_assert_eq(ulog_position(s, 0, &pos), 0);
    cr_assert_eq(pos, hi, "position %lld, high %lld", (long long)pos, (long long)hi);
    put(log, "t", 0, 1, 1, now_ms(), NULL);
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, hi);
    ulog_sub_close(s);
    ulog_close(log);
}

/* ================================================================ ulog_delete_records */

Test(retention, delete_records_moves_low_mid_segment)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg(NULL));
    segs before;
    int64_t high = fill(log, 0, 120, now_ms(), ts, &before, 5);
    int64_t off = inside_seg(&before, 1, 3);
    ulog_sub *live = sub_earliest(log, "t");
    ulog_msg m;
    cr_assert_eq(ulog_poll(live, 0, &m), 0);
    cr_assert_eq(m.offset, 0);

    cr_assert_eq(ulog_delete_records(log, "t", 0, off), 0);
    expect_low(log, "t", 0, off);
    cr_assert_eq(high_of(log, "t", 0), high);
    /* Segment 0 is wholly below: gone now; segment 1 holds off: kept. */
    expect_suffix(&before, 1, "t", 0);
    ulog_partition_info pi = describe(log, "t", 0);
    cr_expect_eq(pi.reclaimed, before.size[0], "reclaimed %lld, segment 0 held %lld",
                 (long long)pi.reclaimed, (long long)before.size[0]);
    /* At once for the live subscription below it (earliest: to off). */
    int rc = ulog_poll(live, 0, &m);
    cr_assert_eq(rc, 0, "%s", ulog_errname(rc));
    cr_assert_eq(m.offset, off, "the live subscription read %lld after 0, low is %lld",
                 (long long)m.offset, (long long)off);
    cr_assert(msg_ok(&m, 0));
    ulog_sub_close(live);
    /* A new one starts exactly at off; below it a seek is out of range. */
    read_back(log, "t", 0, off, high, ts);

    /* Backwards, or to where it is: no-ops. */
    cr_assert_eq(ulog_delete_records(log, "t", 0, off - 2), 0);
    cr_assert_eq(ulog_delete_records(log, "t", 0, 0), 0);
    cr_assert_eq(ulog_delete_records(log, "t", 0, off), 0);
    expect_low(log, "t", 0, off);
    expect_suffix(&before, 1, "t", 0);
    /* Above high or negative: ULOG_EOFFSET, nothing changes. */
    cr_assert_eq(ulog_delete_records(log, "t", 0, high + 1), ULOG_EOFFSET);
    cr_assert_eq(ulog_delete_records(log, "t", 0, INT64_MAX), ULOG_EOFFSET);
    cr_assert_eq(ulog_delete_records(log, "t", 0, -1), ULOG_EOFFSET);
    expect_low(log, "t", 0, off);
    expect_suffix(&before, 1, "t", 0);
    cr_assert_eq(high_of(log, "t", 0), high);

    /* Groups: an offset below low is out of range, earliest is off. */
    cr_assert_eq(ulog_group_reset(log, "g", "t", 0, ULOG_RESET_OFFSET, off - 1), ULOG_EOFFSET);
    cr_assert_eq(ulog_group_reset(log, "g", "t", 0, ULOG_RESET_EARLIEST, 0), 0);
    ulog_sub *g = sub_with(log, "t", "g", "none");
    cr_assert_eq(ulog_poll(g, 0, &m), 0);
    cr_assert_eq(m.offset, off);
    ulog_sub_close(g);

    /* Within the same segment: no file goes. */
    cr_assert_eq(ulog_delete_records(log, "t", 0, off + 2), 0);
    expect_low(log, "t", 0, off + 2);
    expect_suffix(&before, 1, "t", 0);
    /* To a segment's base: every segment below goes. */
    cr_assert_eq(ulog_delete_records(log, "t", 0, before.base[3]), 0);
    expect_low(log, "t", 0, before.base[3]);
    expect_suffix(&before, 3, "t", 0);
    pi = describe(log, "t", 0);
    cr_expect_eq(pi.reclaimed, bytes_of(&before, 0, 3));
    read_back(log, "t", 0, before.base[3], high, ts);
    ulog_close(log);
}

Test(retention, delete_records_bad_input_changes_nothing)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 2, topic_cfg(NULL));
    put(log, "t", 0, 20, 1, now_ms(), NULL);
    cr_expect_eq(ulog_delete_records(NULL, "t", 0, 5), ULOG_EINVAL);
    cr_expect_eq(ulog_delete_records(log, NULL, 0, 5), ULOG_EINVAL);
    cr_expect_eq(ulog_delete_records(log, "t", 2, 5), ULOG_EINVAL);
    cr_expect_eq(ulog_delete_records(log, "t", -1, 5), ULOG_EINVAL);
    cr_expect_eq(ulog_delete_records(log, "t", ULOG_PARTITION_ANY, 5), ULOG_EINVAL);
    cr_expect_eq(ulog_delete_records(log, "../t", 0, 5), ULOG_EINVAL);
    cr_expect_eq(ulog_delete_records(log, "nope", 0, 5), ULOG_ENOENT);
    cr_expect_eq(ulog_delete_records(log, "t", 0, 21), ULOG_EOFFSET);
    cr_expect_eq(ulog_delete_records(log, "t", 0, -5), ULOG_EOFFSET);
    cr_expect_eq(ulog_delete_records(log, "t", 1, 1), ULOG_EOFFSET);   /* empty */
    expect_low(log, "t", 0, 0);
    expect_low(log, "t", 1, 0);
    cr_expect_eq(high_of(log, "t", 0), 20);
    read_back(log, "t", 0, 0, 20, NULL);
    ulog_partition_info pi = describe(log, "t", 0);
    cr_expect_eq(pi.reclaimed, 0);
    /* The empty partition to its high (0): fine, nothing to do. */
    cr_expect_eq(ulog_delete_records(log, "t", 1, 0), 0);
    expect_low(log, "t", 1, 0);
    ulog_close(log);
}

/* Up to the high watermark: nothing left to read, appends go on. */
Test(retention, delete_records_to_high)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg(NULL));
    put(log, "t", 0, 50, 1, now_ms(), NULL);
    cr_assert_eq(ulog_delete_records(log, "t", 0, 50), 0);
    expect_low(log, "t", 0, 50);
    read_back(log, "t", 0, 50, 50, NULL);
    cr_assert_eq(put(log, "t", 0, 3, 1, now_ms(), NULL), 50);
    read_back(log, "t", 0, 50, 53, NULL);
    ulog_close(log);
    delete_heads(logdir, "t", 1, false);
    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, 50);
    cr_assert_eq(high_of(log, "t", 0), 53);
    read_back(log, "t", 0, 50, 53, NULL);
    ulog_close(log);
}

Test(retention, delete_records_survives_reopen_and_lost_heads)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg(NULL));
    segs before;
    int64_t high = fill(log, 0, 120, now_ms(), ts, &before, 4);
    int64_t off = inside_seg(&before, 2, 5);
    cr_assert_eq(ulog_delete_records(log, "t", 0, off), 0);
    int64_t reclaimed = describe(log, "t", 0).reclaimed;
    cr_expect_eq(reclaimed, bytes_of(&before, 0, 2));
    ulog_close(log);

    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, off);
    cr_assert_eq(high_of(log, "t", 0), high);
    read_back(log, "t", 0, off, high, ts);
    cr_expect_eq(describe(log, "t", 0).reclaimed, reclaimed, "reclaimed after a reopen");
    ulog_close(log);

    /* As after a reboot: the recovery scan must not take low from the
     * first segment file (base before.base[2] < off). */
    delete_heads(logdir, "t", 1, false);
    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, off);
    cr_assert_eq(high_of(log, "t", 0), high);
    read_back(log, "t", 0, off, high, ts);
    cr_expect_eq(describe(log, "t", 0).reclaimed, reclaimed, "reclaimed after lost heads");
    cr_expect_eq(ulog_verify(log, "t", NULL, NULL, NULL), 0);
    cr_assert_eq(put(log, "t", 0, 2, 1, now_ms(), ts), high);
    read_back(log, "t", 0, off, high + 2, ts);
    ulog_close(log);
}

/* Reads record 0, then (told the new low) must read from it on. */
static void delrec_reader(void *arg)
{
    rd_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = child_sub(log, "t", NULL, "earliest");
    ulog_msg m;
    int rc = ulog_poll(s, 5000, &m);
    CCHECK(rc == 0 && m.offset == 0, "first poll: %s", ulog_errname(rc));
    int64_t off;
    ready_then_go(a, &off, 8);
    int64_t lo, hi;
    CCHECK(ulog_watermarks(log, "t", 0, &lo, &hi) == 0 && lo == off,
           "low here %lld, the other process moved it to %lld", (long long)lo, (long long)off);
    int64_t want = off;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        CCHECK(m.offset == want && msg_ok(&m, 0), "read %lld, expected %lld", (long long)m.offset,
               (long long)want);
        want++;
    }
    CCHECK(rc == ULOG_ETIMEDOUT && want == hi, "%s at %lld, high %lld", ulog_errname(rc),
           (long long)want, (long long)hi);
    ulog_sub_close(s);
    ulog_close(log);
}

Test(retention, delete_records_reaches_a_reader_in_another_process)
{
    make_t(topic_cfg(NULL), 100);
    rd_args a;
    pid_t pid = start_child(delrec_reader, &a, "the reader to start");
    ulog *log = open_at(logdir, NULL);
    segs s;
    list_segs(&s, "t", 0);
    cr_assert_geq(s.n, 3);
    int64_t off = s.base[1] + 2;
    cr_assert_eq(ulog_delete_records(log, "t", 0, off), 0);
    parent_write(a.go[1], &off, 8, "the new low");
    join_ok(pid, 20000, "reader in another process");
    ulog_close(log);
}

/* ================================================================ crash safety */

/* A retention run persists the new log start, then unlinks the files below
 * it, oldest first. Cut short: every file still there (CUT_ALL), or the
 * older ones gone and the newer ones left (CUT_NEWER); or, as the unlinks
 * may reach the disk in any order, only the oldest one left (CUT_OLDEST, a
 * gap). After a reboot-style recovery (heads gone) low stays, the old
 * records stay gone, appends go on at high, and the next clean removes the
 * leftovers. */
enum cut { CUT_ALL, CUT_NEWER, CUT_OLDEST };

static void cut_short(enum cut cut)
{
    static int64_t ts[1000];
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.ms", "3600000", NULL));
    segs before;
    size_t k = old_segments(log, "t", 0, 150, 40, ts, &before, 3);
    int64_t high = high_of(log, "t", 0);
    char src[700], dst[700];
    for (size_t i = 0; i < k; i++) {
        seg_path(src, sizeof src, logdir, "t", 0, before.base[i]);
        snprintf(dst, sizeof dst, "%s/%020lld.log", savedir, (long long)before.base[i]);
        copy_file(src, dst);
    }
    clean_ok(log, "t", NULL);
    expect_suffix(&before, k, "t", 0);
    int64_t low = before.base[k];
    expect_low(log, "t", 0, low);
    ulog_close(log);

    size_t from = cut == CUT_NEWER ? k / 2 : 0, to = cut == CUT_OLDEST ? 1 : k;
    for (size_t i = from; i < to; i++) {
        snprintf(src, sizeof src, "%s/%020lld.log", savedir, (long long)before.base[i]);
        seg_path(dst, sizeof dst, logdir, "t", 0, before.base[i]);
        copy_file(src, dst);
    }
    delete_heads(logdir, "t", 1, false);

    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, low);
    cr_assert_eq(high_of(log, "t", 0), high);
    read_back(log, "t", 0, low, high, ts);
    cr_expect_eq(ulog_verify(log, "t", NULL, NULL, NULL), 0,
                 "ulog_verify with files left below low");
    cr_assert_eq(put(log, "t", 0, 2, 1, now_ms(), ts), high);
    read_back(log, "t", 0, low, high + 2, ts);

    clean_ok(log, "t", NULL);
    expect_low(log, "t", 0, low);
    segs after;
    list_segs(&after, "t", 0);
    cr_assert_gt(after.n, 0);
    cr_expect_eq(after.base[0], low, "after a clean, the first file has base %lld, low is %lld",
                 (long long)after.base[0], (long long)low);
    read_back(log, "t", 0, low, high + 2, ts);
    ulog_close(log);

    delete_heads(logdir, "t", 1, false);
    log = open_at(logdir, NULL);
    expect_low(log, "t", 0, low);
    cr_assert_eq(high_of(log, "t", 0), high + 2);
    ulog_close(log);
}

Test(retention, crash_before_any_file_was_unlinked)
{
    cut_short(CUT_ALL);
}

Test(retention, crash_after_the_older_files_were_unlinked)
{
    cut_short(CUT_NEWER);
}

Test(retention, crash_left_only_the_oldest_file)
{
    cut_short(CUT_OLDEST);
}

/* ================================================================ bad input */

Test(retention, clean_bad_input_changes_nothing)
{
    ulog *log = open_with_topic(logdir, NULL, "t", 1, topic_cfg("retention.bytes", "0", NULL));
    segs before;
    fill(log, 0, 80, now_ms(), NULL, &before, 3);
    cbrec rec = { 0 };
    const int bad_flags[] = { 0, 4, 7, -1, ULOG_CLEAN_RETENTION | 0x100, INT32_MIN };
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        cr_expect_eq(ulog_clean(log, "t", bad_flags[i], clean_cb, &rec), ULOG_EINVAL,
                     "flags %d", bad_flags[i]);
        cr_expect_eq(ulog_clean(log, NULL, bad_flags[i], clean_cb, &rec), ULOG_EINVAL,
                     "topic NULL, flags %d", bad_flags[i]);
    }
    cr_expect_eq(ulog_clean(NULL, "t", ULOG_CLEAN_RETENTION, clean_cb, &rec), ULOG_EINVAL);
    cr_expect_eq(ulog_clean(log, "nope", ULOG_CLEAN_RETENTION, clean_cb, &rec), ULOG_ENOENT);
    cr_expect_eq(ulog_clean(log, "../t", ULOG_CLEAN_RETENTION, clean_cb, &rec), ULOG_EINVAL);
    cr_expect_eq(rec.calls, 0, "the callback ran %d times for refused calls", rec.calls);
    expect_suffix(&before, 0, "t", 0);
    expect_low(log, "t", 0, 0);
    /* And the same call with the right flag does the work. */
    clean_ok(log, "t", NULL);
    expect_suffix(&before, before.n - 1, "t", 0);
    ulog_close(log);
}

static void expect_refused(const char *name, const char *value)
{
    ulog_config *c = ulog_config_new();
    cr_assert_not_null(c);
    char err[256] = "";
    cr_expect_eq(ulog_config_set(c, name, value, err, sizeof err), ULOG_EINVAL, "%s=%s accepted",
                 name, value);
    char buf[32];
    cr_expect_eq(ulog_config_get(c, name, buf, sizeof buf), ULOG_ENOENT,
                 "%s=%s refused but stored", name, value);
    ulog_config_free(c);
}

static void expect_accepted(const char *name, const char *value)
{
    ulog_config *c = ulog_config_new();
    cr_assert_not_null(c);
    char err[256] = "";
    cr_expect_eq(ulog_config_set(c, name, value, err, sizeof err), 0, "%s=%s: %s", name, value,
                 err);
    char buf[32] = "";
    cr_expect_eq(ulog_config_get(c, name, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, value);
    ulog_config_free(c);
}

Test(retention, config_values_and_scopes)
{
    expect_refused("retention.ms", "-2");
    expect_refused("retention.ms", "abc");
    expect_refused("retention.ms", "12abc");
    expect_refused("retention.ms", "4611686018427387905");
    expect_refused("retention.bytes", "abc");
    expect_refused("retention.bytes", "-2");
    expect_refused("segment.ms", "0");
    expect_refused("segment.ms", "-1");
    expect_refused("retention.check.ms", "99");
    expect_refused("retention.check.ms", "86400001");
    expect_refused("retention.check.ms", "-1");
    expect_accepted("retention.ms", "-1");
    expect_accepted("retention.ms", "0");
    expect_accepted("retention.ms", "4611686018427387904");
    expect_accepted("retention.bytes", "-1");
    expect_accepted("retention.bytes", "0");
    expect_accepted("segment.ms", "1");
    expect_accepted("retention.check.ms", "100");
    expect_accepted("retention.check.ms", "86400000");

    /* A refused value leaves the one set before. */
    ulog_config *c = cfg_of("retention.ms", "5000", NULL);
    char err[128], buf[32] = "";
    cr_expect_eq(ulog_config_set_int(c, "retention.ms", -2, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set(c, "retention.bytes", "abc", err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(c, "retention.ms", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "5000");
    ulog_config_free(c);

    /* Each setting in its own scope. */
    ulog *log = NULL;
    c = cfg_of("retention.ms", "1000", NULL);
    cr_expect_eq(ulog_open(logdir, c, &log), ULOG_EINVAL, "ulog_open took a topic setting");
    ulog_config_free(c);
    if (log)
        ulog_close(log);
    log = open_at(logdir, cfg_of("retention.check.ms", "1000", NULL));
    c = cfg_of("retention.check.ms", "1000", NULL);
    cr_expect_eq(ulog_topic_create(log, "x", 1, c), ULOG_EINVAL,
                 "ulog_topic_create took a log setting");
    ulog_config_free(c);

    /* Defaults, and alter. */
    create_topic(log, "t", 1, NULL);
    expect_setting(log, "t", "retention.ms", "-1");
    expect_setting(log, "t", "retention.bytes", "-1");
    expect_setting(log, "t", "segment.ms", "604800000");
    alter(log, "t", cfg_of("retention.ms", "86400000", "retention.bytes", "1048576", NULL));
    expect_setting(log, "t", "retention.ms", "86400000");
    expect_setting(log, "t", "retention.bytes", "1048576");
    expect_setting(log, "t", "segment.ms", "604800000");
    ulog_close(log);
}
