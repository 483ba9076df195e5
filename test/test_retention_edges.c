/* test_retention_edges.c -- retention at the edges a review found:
 *
 *   - a log start in the catalog past what a power cut left (DeleteRecords
 *     past the durable end) is brought down to the end at the next open,
 *     so offsets given again are not hidden;
 *   - a deletion cut short between its catalog write and the head (same
 *     boot) is caught up by the next clean and the next open;
 *   - an idle roll under flush.policy always: the clean syncs before it
 *     plans, so the rolled segment (which held the durable end) can go in
 *     the same run;
 *   - a preallocated active segment counts by its data for retention.bytes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char dir[256];
SCRATCH_SUITE(redges, dir);

static void append_n(ulog *log, int n, size_t size, int64_t ts)
{
    char *v = calloc(1, size);
    cr_assert_not_null(v);
    for (int i = 0; i < n; i++) {
        ulog_record r = { .value = v, .value_len = size, .partition = 0, .timestamp = ts };
        cr_assert_eq(ulog_append(log, "t", &r, 1), 0);
    }
    free(v);
}

static int64_t low_of(ulog *log)
{
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    return lo;
}

static int64_t high_of(ulog *log)
{
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    return hi;
}

static uint32_t topic_id(ulog *log)
{
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    return info.id;
}

Test(redges, log_start_past_the_end_comes_down_at_open)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1, cfg_of("flush.policy", "none", NULL));
    append_n(log, 50, 10, ULOG_TIMESTAMP_NOW);
    uint32_t id = topic_id(log);
    ulog_close(log);
    /* What a power cut after a DeleteRecords(100) of unsynced records
     * would leave: a catalog log start of 100 over 50 records. */
    log = open_at(dir, NULL);
    cr_assert_eq(ulog__meta_part_state_advance(log->meta, id, 0, 100, 0, 0, NULL), 0);
    ulog_close(log);
    delete_heads(dir, "t", 1, false);
    log = open_at(dir, NULL);
    cr_expect_eq(low_of(log), 50);
    append_n(log, 60, 10, ULOG_TIMESTAMP_NOW);       /* offsets 50..109 */
    ulog_close(log);
    delete_heads(dir, "t", 1, false);                /* the next reboot */
    log = open_at(dir, NULL);
    cr_expect_eq(low_of(log), 50, "the stale log start came back and hid offsets 50..99");
    cr_expect_eq(high_of(log), 110);
    ulog_sub *s = sub_earliest(log, "t");
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_expect_eq(m.offset, 50);
    ulog_sub_close(s);
    ulog_close(log);
}

Test(redges, delete_records_syncs_first)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1, cfg_of("flush.policy", "none", NULL));
    append_n(log, 30, 10, ULOG_TIMESTAMP_NOW);
    ulog__topic *t;
    cr_assert_eq(ulog__topic_get(log, "t", &t), 0);
    cr_assert_lt(ulog__head_synced(t->parts[0].h).offset, 30, "already synced: no test");
    cr_assert_eq(ulog_delete_records(log, "t", 0, 20), 0);
    cr_expect_geq(ulog__head_synced(t->parts[0].h).offset, 20,
                  "a log start past the durable end");
    ulog_close(log);
}

Test(redges, a_catalog_only_deletion_is_caught_up)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1, cfg_of("flush.policy", "none",
                                                          "segment.bytes", "4096", NULL));
    append_n(log, 100, 200, ULOG_TIMESTAMP_NOW);
    uint32_t id = topic_id(log);
    /* The deleter died after its catalog write, before the head. */
    cr_assert_eq(ulog__meta_part_state_advance(log->meta, id, 0, 60, 0, 0, NULL), 0);
    cr_assert_eq(low_of(log), 0);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);
    cr_expect_eq(low_of(log), 60);
    ulog_close(log);
    /* And by an open in the same boot (the head stays valid). */
    log = open_at(dir, NULL);
    cr_assert_eq(ulog__meta_part_state_advance(log->meta, id, 0, 70, 0, 0, NULL), 0);
    ulog_close(log);
    log = open_at(dir, NULL);
    cr_expect_eq(low_of(log), 70);
    ulog_close(log);
}

Test(redges, idle_roll_under_always_lets_the_segment_go_at_once)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1,
                                cfg_of("flush.policy", "always", "segment.ms", "3600000",
                                       "retention.ms", "3600000", NULL));
    int64_t old = ulog__now_ms() - 7200000;
    append_n(log, 5, 100, old);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);
    cr_expect_eq(low_of(log), 5, "the rolled segment stayed");
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_expect_eq(pi.segments, 1);
    /* The partition goes on: appends, and a sync failure's cut, work. */
    append_n(log, 3, 100, ULOG_TIMESTAMP_NOW);
    cr_expect_eq(high_of(log), 8);
    ulog_close(log);
    log = open_at(dir, NULL);
    cr_expect_eq(low_of(log), 5);
    cr_expect_eq(high_of(log), 8);
    ulog_close(log);
}

Test(redges, preallocated_active_segment_counts_by_its_data)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1,
                                cfg_of("flush.policy", "none", "preallocate", "true",
                                       "segment.bytes", "65536", "retention.bytes", "100000",
                                       NULL));
    /* About 148 KB: two full segments and an active one with ~18 KB. */
    append_n(log, 148, 1000 - 70, ULOG_TIMESTAMP_NOW);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_assert_eq(pi.segments, 3, "%lld segments", (long long)pi.segments);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);
    cr_expect_eq(low_of(log), 0, "deleted as if the active segment were full");
    ulog_close(log);
}

/* A clean syncs the partition in the background (so that the durable end
 * is in the active segment); on a flush.policy always topic that sync must
 * also commit what it made durable, or an appender whose batch it covered
 * finds nothing left to sync and nothing committed, and waits for ever
 * (it spun in ulog__part_sync under bench_compact). */
typedef struct spin_args {
    ulog *log;
    int   appends;
    volatile int done;
} spin_args;

static void *spin_appender(void *arg)
{
    spin_args *a = arg;
    for (int i = 0; i < a->appends; i++) {
        ulog_record r = { .value = "x", .value_len = 1, .partition = 0,
                          .timestamp = ULOG_TIMESTAMP_NOW };
        if (ulog_append(a->log, "t", &r, 1) != 0)
            break;
    }
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

Test(redges, a_clean_during_always_appends_commits_what_it_syncs, .timeout = 60)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1, cfg_of("flush.policy", "always", NULL));
    spin_args a = { log, 300, 0 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, spin_appender, &a), 0);
    int64_t deadline = now_ms() + 20000;
    while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE) && now_ms() < deadline)
        cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);
    cr_assert(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE),
              "an appender is stuck: high %lld", (long long)high_of(log));
    pthread_join(th, NULL);
    cr_expect_eq(high_of(log), 300);
    ulog_close(log);
}
