/*
 * test_fsync.c -- the fsync-failure rule (doc/DESIGN.md section 4).
 *
 * fdatasync is swapped through ulog__fdatasync to fail on chosen calls.
 * always: a failed sync cuts everything after the durable end, fails the
 * appends it cut (in every waiting thread), shows none of them to readers,
 * and the log goes on. none/interval: a failed background sync poisons the
 * partition until it is reopened, which verifies, rewrites and syncs the
 * tail.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char root[256];
static int fail_errno = EIO;
static int fail_from = -1, fail_count = 0;   /* fail calls [from, from+count) */
static int calls;

static int fake_fdatasync(int fd)
{
    int n = __atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST);
    if (fail_from >= 0 && n >= fail_from && n < fail_from + fail_count) {
        errno = fail_errno;
        return -1;
    }
    return fdatasync(fd);
}

static void setup(void)
{
    make_tmpdir(root, sizeof root, "fsync");
    ulog__fdatasync = fake_fdatasync;
    calls = 0;
    fail_from = -1;
}

static void teardown(void)
{
    ulog__fdatasync = fdatasync;
    cr_expect_eq(rm_rf(root), 0, "%s is still there", root);
}

TestSuite(fsync, .init = setup, .fini = teardown, .timeout = 60);

static ulog *open_log(const char *policy)
{
    ulog *log = open_at(root, NULL);
    ulog_config *c = cfg_of("flush.policy", policy, "flush.ms", "1", NULL);
    int rc = ulog_topic_create(log, "f", 1, c);
    cr_assert(rc == 0 || rc == ULOG_EEXIST);
    ulog_config_free(c);
    return log;
}

static int append_value(ulog *log, long v, int64_t *offset)
{
    char buf[32];
    snprintf(buf, sizeof buf, "v%ld", v);
    ulog_record r = { .value = buf, .value_len = strlen(buf),
                      .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 };
    int rc = ulog_append(log, "f", &r, 1);
    if (offset)
        *offset = r.offset;
    return rc;
}

/* Every value in the partition, in offset order; *n gets the count. */
static long *read_all(ulog *log, size_t *n)
{
    ulog_sub *s = sub_earliest(log, "f");
    size_t cap = 1024, k = 0;
    long *v = malloc(cap * sizeof *v);
    ulog_msg m;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.offset, (int64_t)k, "offsets dense");
        if (k == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        char buf[32];
        snprintf(buf, sizeof buf, "%.*s", (int)m.value_len, (const char *)m.value);
        v[k++] = strtol(buf + 1, NULL, 10);
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT);
    ulog_sub_close(s);
    *n = k;
    return v;
}

/* The partition holds exactly the values want[0..n), in offset order. */
static void expect_values(ulog *log, const long *want, size_t n, const char *what)
{
    size_t got;
    long *v = read_all(log, &got);
    cr_assert_eq(got, n, "%s: %zu records, expected %zu", what, got, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(v[i], want[i], "%s: offset %zu", what, i);
    free(v);
}

Test(fsync, always_failure_cuts_and_log_goes_on)
{
    ulog *log = open_log("always");
    for (long i = 0; i < 10; i++)
        cr_assert_eq(append_value(log, i, NULL), 0);
    int64_t lo, hi;
    watermarks(log, "f", 0, &lo, &hi);
    cr_assert_eq(hi, 10);

    fail_errno = EIO;
    fail_from = calls;
    fail_count = 1;
    int64_t off = 0;
    cr_assert_eq(append_value(log, 100, &off), ULOG_EIO);
    cr_expect_eq(off, -1, "a failed record gets offset -1");
    watermarks(log, "f", 0, &lo, &hi);
    cr_assert_eq(hi, 10, "nothing after the durable end is visible");

    /* The fault clears: the cut offsets are reused by the next append. */
    cr_assert_eq(append_value(log, 11, &off), 0);
    cr_assert_eq(off, 10);
    fail_errno = ENOSPC;
    fail_from = calls;
    cr_assert_eq(append_value(log, 101, NULL), ULOG_ENOSPC);
    cr_assert_eq(append_value(log, 12, &off), 0);
    cr_assert_eq(off, 11);

    static const long want[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12 };
    expect_values(log, want, sizeof want / sizeof want[0], "after the failed syncs");
    ulog_close(log);

    /* And after a reboot-style recovery (heads gone) nothing comes back. */
    delete_heads(root, "f", 1, false);
    log = open_log("always");
    expect_values(log, want, sizeof want / sizeof want[0], "after recovery");
    ulog_close(log);
}

/* Several threads appending while syncs fail now and then: every append
 * that returned 0 is in the log exactly once, no failed one is. */
#define THREADS 4
#define PER_THREAD 300

typedef struct worker {
    ulog *log;
    int   id;
    int   ok[PER_THREAD];     /* 1 acked, 0 failed */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        int rc = append_value(w->log, (long)w->id * 100000 + i, NULL);
        cr_assert(rc == 0 || rc == ULOG_EIO, "append: %s", ulog_errname(rc));
        w->ok[i] = rc == 0;
    }
    return NULL;
}

Test(fsync, always_failures_with_concurrent_appenders)
{
    ulog *log = open_log("always");
    fail_errno = EIO;
    fail_from = 20;
    fail_count = 3;
    worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t].log = log;
        w[t].id = t;
        cr_assert_eq(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    size_t n, failed = 0, acked = 0;
    long *v = read_all(log, &n);
    char *seen = calloc(THREADS * 100000, 1);
    for (size_t i = 0; i < n; i++) {
        long t = v[i] / 100000, k = v[i] % 100000;
        cr_assert(t >= 0 && t < THREADS && k < PER_THREAD);
        cr_assert_eq(seen[v[i]], 0, "value %ld twice", v[i]);
        seen[v[i]] = 1;
        cr_assert_eq(w[t].ok[k], 1, "value %ld visible but its append failed (G1a)", v[i]);
    }
    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < PER_THREAD; k++) {
            if (w[t].ok[k]) {
                acked++;
                cr_assert_eq(seen[t * 100000 + k], 1, "acked value %d/%d lost", t, k);
            } else {
                failed++;
            }
        }
    cr_assert_gt(failed, 0, "the injected failures failed some appends");
    cr_assert_eq(acked, n);
    cr_log_info("%zu acked, %zu failed, %d fdatasync calls", acked, failed, calls);
    free(seen);
    free(v);
    ulog_close(log);
}

/* none/interval records are visible before they are synced, so a failed
 * background sync cannot cut them: the partition is poisoned until a
 * reopen repairs it, and nothing readers saw is lost. */
Test(fsync, interval_failure_poisons_until_reopen)
{
    ulog *log = open_log("interval");
    for (long i = 0; i < 5; i++)
        cr_assert_eq(append_value(log, i, NULL), 0);
    fail_errno = EIO;
    fail_from = calls;
    fail_count = 1000000;
    int rc = 0;
    for (int tries = 0; tries < 500 && rc == 0; tries++) {
        usleep(2000);       /* flush.ms is 1: the flusher syncs soon */
        rc = append_value(log, 5 + tries, NULL);
    }
    cr_assert_eq(rc, ULOG_EPOISONED, "got %s", ulog_errname(rc));
    size_t n0;
    long *v0 = read_all(log, &n0);
    ulog_close(log);

    fail_from = -1;
    log = open_log("interval");
    expect_values(log, v0, n0, "the repair kept every record readers saw");
    int64_t off;
    cr_assert_eq(append_value(log, 999, &off), 0, "appends work again after reopen");
    cr_assert_eq(off, (int64_t)n0);
    free(v0);
    ulog_close(log);
}
