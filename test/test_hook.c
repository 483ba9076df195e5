/* test_hook.c -- the replication hook: every committed batch shipped in
 * order, at least once across stops and kills, retried after a failed ship;
 * the acknowledging hook's replica watermark, replication.sync appends and
 * read.replicated subscriptions. */
#include "testutil.h"

#include <pthread.h>

static char dir[4096];
SCRATCH_SUITE(hook, dir);

static char lead_dir[4200], foll_dir[4200];

/* What a ship callback does: applies the batch to `to`, counts calls, and
 * fails (returns -1) while `refuse` is set. */
typedef struct shipper {
    ulog    *to;
    int      calls;        /* (a) */
    int      refuse;       /* (a) batches still to refuse */
    int      hold;         /* (a) while set, refuse everything */
    int64_t  last_base[4]; /* per partition: base of the last batch shipped */
    int      out_of_order; /* (a) a partition's batches came back in time */
    int      errors;       /* (a) append_raw failures */
} shipper;

static int ship(const ulog_batch *b, void *arg)
{
    shipper *s = arg;
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->hold, __ATOMIC_SEQ_CST))
        return -1;
    if (__atomic_load_n(&s->refuse, __ATOMIC_SEQ_CST) > 0) {
        __atomic_sub_fetch(&s->refuse, 1, __ATOMIC_SEQ_CST);
        return -1;
    }
    if (b->base_offset < s->last_base[b->partition])
        __atomic_add_fetch(&s->out_of_order, 1, __ATOMIC_SEQ_CST);
    s->last_base[b->partition] = b->base_offset;
    if (!s->to)
        return 0;
    int rc = ulog_append_raw(s->to, "t", b->partition, b->base_offset, b->data, b->len);
    if (rc)
        __atomic_add_fetch(&s->errors, 1, __ATOMIC_SEQ_CST);
    return rc;
}

static void paths(void)
{
    snprintf(lead_dir, sizeof lead_dir, "%s/leader", dir);
    snprintf(foll_dir, sizeof foll_dir, "%s/follower", dir);
}

static void add(ulog *log, int32_t part, int n, int tag)
{
    for (int i = 0; i < n; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "r%d-%d-%d", tag, (int)part, i);
        ulog_record r[2] = {
            { .key = "k", .key_len = 1, .value = v, .value_len = (size_t)len,
              .timestamp = ULOG_TIMESTAMP_NOW, .partition = part },
            { .key = "k", .key_len = 1, .value = "second", .value_len = 6,
              .timestamp = ULOG_TIMESTAMP_NOW, .partition = part },
        };
        append_ok(log, "t", r, 2);
    }
}

static int64_t high_of(ulog *log, int32_t part)
{
    int64_t lo, hi;
    watermarks(log, "t", part, &lo, &hi);
    return hi;
}

static int64_t replicated_of(ulog *log, int32_t part)
{
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", part, &pi), 0);
    return pi.replicated;
}

/* The hook "mirror"'s stored position in partition part (-1: none). */
static int64_t stored_of(ulog *log, int32_t part)
{
    ulog_group_desc *d;
    int64_t at = -1;
    if (ulog_group_describe(log, "mirror", &d) != 0)
        return -1;
    for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
        ulog_group_lag e = ULOG_GROUP_LAG_INIT;
        if (ulog_group_desc_get(d, i, &e) == 0 && e.partition == part)
            at = e.committed;
    }
    ulog_group_desc_free(d);
    return at;
}

/* Waits until the follower's partitions reach the leader's high marks. */
static void wait_caught_up(ulog *lead, ulog *foll, int32_t parts)
{
    int64_t t0 = mono_ns();
    for (int32_t p = 0; p < parts; p++)
        while (high_of(foll, p) < high_of(lead, p)) {
            cr_assert_lt(mono_ns() - t0, 20000000000LL, "the follower does not catch up");
            sleep_ms(5);
        }
}

/* Every record of both, the same. */
static void expect_same(ulog *lead, ulog *foll)
{
    ulog_sub *a = sub_earliest(lead, "t"), *b = sub_earliest(foll, "t");
    ulog_msg ma, mb;
    int n = 0;
    while (ulog_poll(a, 0, &ma) == 0) {
        cr_assert_eq(ulog_poll(b, 0, &mb), 0, "record %d missing in the follower", n);
        cr_assert_eq(ma.partition, mb.partition);
        cr_assert_eq(ma.offset, mb.offset);
        cr_assert_eq(ma.timestamp, mb.timestamp);
        cr_assert_eq(ma.value_len, mb.value_len);
        cr_assert_eq(memcmp(ma.value, mb.value, ma.value_len), 0);
        n++;
    }
    cr_assert_eq(ulog_poll(b, 0, &mb), ULOG_ETIMEDOUT, "the follower has more");
    cr_assert_gt(n, 0);
    ulog_sub_close(a);
    ulog_sub_close(b);
}

static void open_pair(ulog **lead, ulog **foll, ulog_config *lead_topic_cfg)
{
    paths();
    *lead = open_with_topic(lead_dir, NULL, "t", 2, lead_topic_cfg);
    *foll = open_with_topic(foll_dir, NULL, "t", 2, cfg_of("flush.policy", "none", NULL));
}

Test(hook, ships_everything_in_order_and_resumes)
{
    ulog *lead, *foll;
    open_pair(&lead, &foll, cfg_of("flush.policy", "none", NULL));
    add(lead, 0, 50, 1);
    add(lead, 1, 20, 1);
    shipper sh = { .to = foll };
    ulog_hook *h;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", 0, ship, &sh, &h), 0);
    add(lead, 0, 30, 2);              /* while it runs */
    wait_caught_up(lead, foll, 2);
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(sh.out_of_order, 0);
    cr_expect_eq(sh.errors, 0);
    cr_expect_eq(sh.calls, 100, "one call per batch, each once");
    expect_same(lead, foll);

    /* The position was stored: a new hook ships only what came since. */
    add(lead, 1, 5, 3);
    sh.calls = 0;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", 0, ship, &sh, &h), 0);
    wait_caught_up(lead, foll, 2);
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(sh.calls, 5);
    expect_same(lead, foll);

    /* Its lag, as a group's. */
    ulog_group_desc *d;
    cr_assert_eq(ulog_group_describe(lead, "mirror", &d), 0);
    cr_assert_eq(ulog_group_desc_count(d), 2);
    for (size_t i = 0; i < 2; i++) {
        ulog_group_lag e = ULOG_GROUP_LAG_INIT;
        cr_assert_eq(ulog_group_desc_get(d, i, &e), 0);
        cr_expect_eq(e.lag, 0);
    }
    ulog_group_desc_free(d);
    ulog_close(lead);
    ulog_close(foll);
}

Test(hook, a_failed_ship_comes_again)
{
    ulog *lead, *foll;
    open_pair(&lead, &foll, cfg_of("flush.policy", "none", NULL));
    add(lead, 0, 10, 1);
    shipper sh = { .to = foll, .refuse = 3 };
    ulog_hook *h;
    int64_t t0 = mono_ns();
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", 0, ship, &sh, &h), 0);
    wait_caught_up(lead, foll, 2);
    int64_t took = mono_ns() - t0;
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(sh.calls, 10 + 3, "the refused batch thrice more");
    cr_expect_eq(sh.out_of_order, 0);
    /* Pauses of 100, 200 and 400 ms between the tries. */
    cr_expect_geq(took, 650000000LL, "retried after %.0f ms", (double)took / 1e6);
    expect_same(lead, foll);
    ulog_close(lead);
    ulog_close(foll);
}

/* A process shipping with a hook is killed at random moments; a new hook
 * goes on from the stored position. Batches shipped but not stored come
 * again, and the follower, applying them with ulog_append_raw, ends with
 * every record once. */
Test(hook, kill_and_resume_at_least_once, .timeout = 120)
{
    paths();
    ulog *lead = open_with_topic(lead_dir, NULL, "t", 2, cfg_of("flush.policy", "none", NULL));
    ulog *foll = open_with_topic(foll_dir, NULL, "t", 2, cfg_of("flush.policy", "always", NULL));
    ulog_close(foll);
    add(lead, 0, 300, 1);
    add(lead, 1, 300, 1);
    uint64_t seed = (uint64_t)mono_ns();
    int kills = 0;
    for (int round = 0; round < 8; round++) {
        pid_t pid = quiet_fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            child_watchdog(60);
            ulog *l = NULL, *f = NULL;
            if (ulog_open(lead_dir, NULL, &l) || ulog_open(foll_dir, NULL, &f))
                _exit(2);
            shipper sh = { .to = f };
            ulog_hook *h;
            if (ulog_hook_start(l, "t", "mirror", 0, ship, &sh, &h))
                _exit(3);
            for (;;)
                sleep_ms(1000);
        }
        if (round == 0) {
            /* Once, after the child stored a position: the last hook
             * must then go on from it, not from the start. */
            int64_t t0 = mono_ns();
            while (stored_of(lead, 0) <= 0) {
                cr_assert_lt(mono_ns() - t0, 30000000000LL, "the child stores nothing");
                sleep_ms(2);
            }
        } else {
            sleep_us((int64_t)(mix64(seed + (uint64_t)round) % 100000));
        }
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        cr_assert(WIFSIGNALED(st), "the child exited by itself: %d", WEXITSTATUS(st));
        kills++;
        add(lead, round % 2, 150, round + 2);
    }
    foll = open_at(foll_dir, NULL);
    shipper sh = { .to = foll };
    ulog_hook *h;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", 0, ship, &sh, &h), 0);
    wait_caught_up(lead, foll, 2);
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(sh.errors, 0, "a batch shipped again was refused");
    expect_same(lead, foll);
    cr_expect_lt(sh.calls, 1800, "the last hook shipped everything again");
    cr_log_info("%d kills; the last hook made %d calls of 1800 batches", kills, sh.calls);
    ulog_close(lead);
    ulog_close(foll);
}

Test(hook, acks_move_the_replica_watermark)
{
    ulog *lead, *foll;
    open_pair(&lead, &foll, cfg_of("flush.policy", "none", NULL));
    add(lead, 0, 5, 1);
    cr_expect_eq(replicated_of(lead, 0), 0);
    shipper sh = { .to = foll };
    ulog_hook *h;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", ULOG_HOOK_ACKS, ship, &sh, &h), 0);
    wait_caught_up(lead, foll, 2);
    int64_t t0 = mono_ns();
    while (replicated_of(lead, 0) < 10) {
        cr_assert_lt(mono_ns() - t0, 10000000000LL, "the watermark does not move");
        sleep_ms(5);
    }
    cr_expect_eq(replicated_of(lead, 0), 10);

    /* Only one hook may acknowledge; others may ship. */
    ulog_hook *h2;
    shipper other = { 0 };
    cr_expect_eq(ulog_hook_start(lead, "t", "second", ULOG_HOOK_ACKS, ship, &other, &h2),
                 ULOG_EEXIST);
    cr_assert_eq(ulog_hook_start(lead, "t", "second", 0, ship, &other, &h2), 0);
    pid_t pid = quiet_fork();
    if (pid == 0) {
        child_watchdog(20);
        ulog *l;
        ulog_hook *hc;
        if (ulog_open(lead_dir, NULL, &l))
            _exit(2);
        _exit(ulog_hook_start(l, "t", "third", ULOG_HOOK_ACKS, ship, &other, &hc) ==
              ULOG_EEXIST ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "another process started a second acknowledging hook");
    cr_assert_eq(ulog_hook_stop(h2), 0);

    /* read.replicated stops at the watermark: hold the shipping back. */
    __atomic_store_n(&sh.hold, 1, __ATOMIC_SEQ_CST);
    ulog_config *rc = cfg_of("auto.offset.reset", "earliest", "read.replicated", "true", NULL);
    ulog_sub *held, *plain = sub_earliest(lead, "t");
    cr_assert_eq(ulog_subscribe(lead, "t", NULL, rc, &held), 0);
    ulog_config_free(rc);
    add(lead, 0, 3, 2);
    ulog_msg m;
    int seen = 0;
    while (ulog_poll(held, 0, &m) == 0)
        seen++;
    cr_expect_eq(seen, 10, "read.replicated sees what was shipped, no more");
    seen = 0;
    while (ulog_poll(plain, 0, &m) == 0)
        seen++;
    cr_expect_eq(seen, 16);
    /* Released: a blocked read.replicated poll wakes when they are shipped. */
    __atomic_store_n(&sh.hold, 0, __ATOMIC_SEQ_CST);
    int rcode = ulog_poll(held, 10000, &m);
    cr_assert_eq(rcode, 0, "%s", ulog_errname(rcode));
    cr_expect_eq(m.offset, 10);
    ulog_sub_close(held);
    ulog_sub_close(plain);
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(replicated_of(lead, 0), 16);
    ulog_close(lead);
    ulog_close(foll);
}

typedef struct appender {
    ulog   *log;
    int     rc;
    int64_t offset;
} appender;

static void *append_main(void *arg)
{
    appender *a = arg;
    ulog_record r = { .value = "sync", .value_len = 4, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 1 };
    a->rc = ulog_append(a->log, "t", &r, 1);
    a->offset = r.offset;
    return NULL;
}

Test(hook, sync_appends_wait_for_the_acknowledging_hook)
{
    ulog *lead, *foll;
    open_pair(&lead, &foll, cfg_of("flush.policy", "none", "replication.sync", "true",
                                   "replication.timeout.ms", "300", NULL));
    /* No hook: stored, offsets given, but not acknowledged in time. */
    ulog_record r = { .value = "x", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 0 };
    int64_t t0 = mono_ns();
    cr_assert_eq(ulog_append(lead, "t", &r, 1), ULOG_ETIMEDOUT);
    cr_expect_geq(mono_ns() - t0, 290000000LL);
    cr_expect_eq(r.offset, 0, "the record is stored");
    cr_expect_eq(high_of(lead, 0), 1);
    char msg[512];
    ulog_errmsg(lead, msg, sizeof msg);
    cr_expect_neq(strstr(msg, "replication.timeout.ms"), NULL, "%s", msg);

    /* Time enough for the hook's pauses between refused tries. */
    ulog_config *alter = cfg_of("replication.timeout.ms", "20000", NULL);
    cr_assert_eq(ulog_topic_alter(lead, "t", alter), 0);
    ulog_config_free(alter);
    shipper sh = { .to = foll, .hold = 1 };
    ulog_hook *h;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", ULOG_HOOK_ACKS, ship, &sh, &h), 0);
    appender a = { lead, -99, -1 };
    pthread_t thr;
    cr_assert_eq(pthread_create(&thr, NULL, append_main, &a), 0);
    sleep_ms(100);
    cr_expect_eq(__atomic_load_n(&a.rc, __ATOMIC_SEQ_CST), -99,
                 "the append returned before its batch was shipped");
    __atomic_store_n(&sh.hold, 0, __ATOMIC_SEQ_CST);
    pthread_join(thr, NULL);
    cr_assert_eq(a.rc, 0, "%s", ulog_errname(a.rc));
    cr_expect_geq(replicated_of(lead, 1), a.offset + 1);
    cr_expect_geq(high_of(foll, 1), a.offset + 1, "on the follower when the append returns");
    cr_assert_eq(ulog_hook_stop(h), 0);
    ulog_close(lead);
    ulog_close(foll);
}

Test(hook, bad_arguments_and_a_deleted_topic)
{
    ulog *lead, *foll;
    open_pair(&lead, &foll, NULL);
    shipper sh = { 0 };
    ulog_hook *h;
    cr_expect_eq(ulog_hook_start(NULL, "t", "m", 0, ship, &sh, &h), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, NULL, "m", 0, ship, &sh, &h), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, "t", NULL, 0, ship, &sh, &h), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, "t", "m", 0, NULL, &sh, &h), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, "t", "m", 0, ship, &sh, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, "t", "m", 0x2, ship, &sh, &h), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, "t", "bad/name", 0, ship, &sh, &h), ULOG_EINVAL);
    cr_expect_eq(ulog_hook_start(lead, "nosuch", "m", 0, ship, &sh, &h), ULOG_ENOENT);
    cr_expect_eq(ulog_hook_stop(NULL), 0);

    cr_assert_eq(ulog_hook_start(lead, "t", "m", 0, ship, &sh, &h), 0);
    cr_assert_eq(ulog_topic_delete(lead, "t"), 0);
    sleep_ms(300);
    cr_expect_eq(ulog_hook_stop(h), ULOG_ENOENT);
    ulog_close(lead);
    ulog_close(foll);
}

/* A ship callback that takes every batch until call `block_at`, where it
 * waits until released. */
typedef struct gate {
    int calls;                  /* (a) */
    int block_at;
    int open;                   /* (a) */
} gate;

static int gated_ship(const ulog_batch *b, void *arg)
{
    gate *g = arg;
    int n = __atomic_add_fetch(&g->calls, 1, __ATOMIC_SEQ_CST);
    while (n >= g->block_at && !__atomic_load_n(&g->open, __ATOMIC_SEQ_CST))
        sleep_ms(2);
    (void)b;
    return 0;
}

static void wait_calls(gate *g, int n)
{
    int64_t t0 = mono_ns();
    while (__atomic_load_n(&g->calls, __ATOMIC_SEQ_CST) < n) {
        cr_assert_lt(mono_ns() - t0, 20000000000LL, "the hook does not ship");
        sleep_ms(2);
    }
}

/* Positions are stored every 64 batches, not only every 100 ms: blocked in
 * its 70th ship, well within 100 ms of its first, the hook has stored 64. */
Test(hook, stores_every_64_batches)
{
    paths();
    ulog *lead = open_with_topic(lead_dir, NULL, "t", 1, cfg_of("flush.policy", "none", NULL));
    for (int i = 0; i < 100; i++) {
        ulog_record r = { .value = "x", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = 0 };
        append_ok(lead, "t", &r, 1);
    }
    gate g = { .block_at = 70 };
    ulog_hook *h;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", 0, gated_ship, &g, &h), 0);
    wait_calls(&g, 70);
    cr_expect_geq(stored_of(lead, 0), 64, "stored %lld", (long long)stored_of(lead, 0));
    __atomic_store_n(&g.open, 1, __ATOMIC_SEQ_CST);
    wait_calls(&g, 100);
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(stored_of(lead, 0), 100);
    ulog_close(lead);
}

/* The log start moved past a position not yet stored (DeleteRecords while
 * the hook was shipping): the store goes on from the new start instead of
 * failing for ever, and the hook reaches the end. */
Test(hook, goes_on_when_the_log_start_passes_its_position)
{
    paths();
    ulog *lead = open_with_topic(lead_dir, NULL, "t", 1,
                                 cfg_of("flush.policy", "none", "segment.bytes", "4096", NULL));
    for (int i = 0; i < 300; i++) {
        ulog_record r = { .value = "0123456789abcdef0123456789abcdef", .value_len = 32,
                          .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 };
        append_ok(lead, "t", &r, 1);
    }
    gate g = { .block_at = 5 };
    ulog_hook *h;
    cr_assert_eq(ulog_hook_start(lead, "t", "mirror", 0, gated_ship, &g, &h), 0);
    wait_calls(&g, 5);
    /* Everything after what it is shipping: the next store comes when it
     * has caught up, with nothing left to ship past the start. */
    int rc = ulog_delete_records(lead, "t", 0, 300);
    cr_assert_eq(rc, 0, "%s", ulog_errname(rc));
    __atomic_store_n(&g.open, 1, __ATOMIC_SEQ_CST);
    int64_t t0 = mono_ns();
    while (stored_of(lead, 0) < 300) {
        cr_assert_lt(mono_ns() - t0, 20000000000LL, "stuck at %lld", (long long)stored_of(lead, 0));
        sleep_ms(10);
    }
    cr_assert_eq(ulog_hook_stop(h), 0);
    cr_expect_eq(g.calls, 5, "shipped what was deleted");
    ulog_close(lead);
}
