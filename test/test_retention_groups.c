/* test_retention_groups.c -- retention that knows its consumers.
 *
 * retention.groups names consumer groups (or * for every group with a
 * commit on the topic) whose uncommitted records retention.ms and
 * retention.bytes must keep; ulog_retention_pins() says which group holds
 * how many bytes. Each test builds a partition of small segments
 * (segment.bytes 4096, 200-byte records: 18 to a segment) under
 * retention.bytes=0, which alone would delete every closed segment, and
 * checks that the low watermark stops where the groups say.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char dir[256];
SCRATCH_SUITE(rgroups, dir);

#define RECORDS 200

static void fill(ulog *log, const char *topic, int32_t part, int n)
{
    char v[200] = { 0 };
    for (int i = 0; i < n; i++) {
        ulog_record r = { .value = v, .value_len = sizeof v, .partition = part,
                          .timestamp = ULOG_TIMESTAMP_NOW };
        cr_assert_eq(ulog_append(log, topic, &r, 1), 0);
    }
}

/* A log with topic "t" of `parts` partitions holding RECORDS records each,
 * which retention.bytes=0 alone would cut down to the active segment. */
static ulog *setup(int32_t parts, const char *groups)
{
    ulog *log = open_at(dir, NULL);
    ulog_config *c = cfg_of("segment.bytes", "4096", "flush.policy", "none",
                            "retention.bytes", "0", NULL);
    if (groups)
        cr_assert_eq(ulog_config_set(c, "retention.groups", groups, NULL, 0), 0);
    create_topic(log, "t", parts, c);
    for (int32_t p = 0; p < parts; p++)
        fill(log, "t", p, RECORDS);
    return log;
}

static void commit_at(ulog *log, const char *group, int32_t part, int64_t offset)
{
    cr_assert_eq(ulog_group_reset(log, group, "t", part, ULOG_RESET_OFFSET, offset), 0);
}

static int64_t low_of(ulog *log, int32_t part)
{
    int64_t lo, hi;
    watermarks(log, "t", part, &lo, &hi);
    return lo;
}

/* The base of the segment holding `offset` in partition part. */
static int64_t seg_of(int32_t part, int64_t offset)
{
    char pd[600];
    part_dir(pd, sizeof pd, dir, "t", part);
    int fd = open(pd, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    int64_t base;
    cr_assert_eq(ulog__seg_floor(fd, offset, &base), 0);
    close(fd);
    return base;
}

/* Bytes of the closed segments (all but the last) of partition part whose
 * base is at least `from`: what retention.bytes=0 would delete from there. */
static int64_t closed_bytes_from(int32_t part, int64_t from)
{
    char pd[600];
    part_dir(pd, sizeof pd, dir, "t", part);
    int fd = open(pd, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    int64_t *v, total = 0;
    size_t n;
    cr_assert_eq(ulog__seg_list(fd, &v, &n), 0);
    for (size_t i = 0; i + 1 < n; i++) {
        char name[ULOG__SEG_NAME_LEN + 1];
        struct stat st;
        ulog__seg_name(name, v[i]);
        cr_assert_eq(fstatat(fd, name, &st, 0), 0);
        if (v[i] >= from)
            total += st.st_size;
    }
    free(v);
    close(fd);
    return total;
}

static void clean(ulog *log)
{
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);
}

Test(rgroups, setting_values)
{
    static const char *ok[] = { "", "*", "billing", "a,b", "a.b-c_d,e" };
    static const char *bad[] = { ",a", "a,", "a,,b", "a b", "*,a", "a/b", ".", "a,..", " a" };
    ulog_config *c = ulog_config_new();
    cr_assert_not_null(c);
    char buf[1100];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_expect_eq(ulog_config_set(c, "retention.groups", ok[i], NULL, 0), 0, "%s", ok[i]);
        cr_assert_eq(ulog_config_get(c, "retention.groups", buf, sizeof buf), 0);
        cr_expect_str_eq(buf, ok[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        cr_expect_eq(ulog_config_set(c, "retention.groups", bad[i], err, sizeof err),
                     ULOG_EINVAL, "%s", bad[i]);
        cr_expect_neq(err[0], '\0');
    }
    /* 1023 bytes at most. */
    char longv[1100];
    memset(longv, 'g', sizeof longv);
    for (size_t i = 200; i < sizeof longv; i += 201)
        longv[i] = ',';
    longv[1023] = '\0';
    if (longv[1022] == ',')
        longv[1022] = 'g';
    cr_expect_eq(ulog_config_set(c, "retention.groups", longv, NULL, 0), 0);
    longv[1023] = 'g';
    longv[1024] = '\0';
    cr_expect_eq(ulog_config_set(c, "retention.groups", longv, NULL, 0), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(c, "retention.groups", 1, NULL, 0), ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(c, "retention.groups", buf, 4), ULOG_EINVAL, "buffer too small");
    ulog_config_free(c);

    /* Stored and read back with the topic. */
    ulog *log = setup(1, "billing,audit");
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    ulog_config *d = NULL;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, &d), 0);
    cr_assert_eq(ulog_config_get(d, "retention.groups", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "billing,audit");
    ulog_config_free(d);
    ulog_close(log);
}

Test(rgroups, a_named_group_holds_its_uncommitted_records)
{
    ulog *log = setup(1, "billing");
    commit_at(log, "billing", 0, 70);
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, 70), "low %lld", (long long)low_of(log, 0));
    /* It moves on: so does retention. */
    commit_at(log, "billing", 0, 150);
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, 150));
    ulog_close(log);
}

Test(rgroups, a_named_group_with_no_commit_holds_everything)
{
    ulog *log = setup(2, "billing,audit");
    commit_at(log, "billing", 0, 150);
    commit_at(log, "billing", 1, 150);
    commit_at(log, "audit", 1, 100);    /* audit has nothing on partition 0 */
    clean(log);
    cr_expect_eq(low_of(log, 0), 0);
    cr_expect_eq(low_of(log, 1), seg_of(1, 100));
    ulog_close(log);
}

Test(rgroups, star_takes_every_group_of_the_topic)
{
    ulog *log = setup(1, "*");
    create_topic(log, "other", 1, NULL);
    fill(log, "other", 0, 3);
    /* A group with commits on another topic only does not count. */
    cr_assert_eq(ulog_group_reset(log, "elsewhere", "other", 0, ULOG_RESET_OFFSET, 0), 0);
    commit_at(log, "fast", 0, 180);
    commit_at(log, "slow", 0, 60);
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, 60));
    cr_assert_eq(ulog_group_delete(log, "slow"), 0);
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, 180));
    ulog_close(log);
}

Test(rgroups, star_with_no_group_deletes_as_usual)
{
    ulog *log = setup(1, "*");
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, RECORDS - 1));
    ulog_close(log);
}

Test(rgroups, pins_report_who_holds_how_much)
{
    ulog *log = setup(2, "slow,fast,idle");
    commit_at(log, "slow", 0, 20);
    commit_at(log, "fast", 0, 150);
    commit_at(log, "slow", 1, 150);
    commit_at(log, "fast", 1, 150);
    /* What would go without the groups: every closed segment. */
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    ulog_pins *pins = NULL;
    cr_assert_eq(ulog_retention_pins(log, "t", &pins), 0);
    cr_assert_eq(ulog_pins_count(pins), 6, "3 groups x 2 partitions");
    int64_t by[2][3] = { { -1, -1, -1 }, { -1, -1, -1 } };
    for (size_t i = 0; i < ulog_pins_count(pins); i++) {
        ulog_pin pn = ULOG_PIN_INIT;
        cr_assert_eq(ulog_pins_get(pins, i, &pn), 0);
        int g = strcmp(pn.group, "slow") == 0 ? 0 : strcmp(pn.group, "fast") == 0 ? 1 : 2;
        cr_assert(pn.partition == 0 || pn.partition == 1);
        by[pn.partition][g] = pn.bytes;
        if (g == 2)
            cr_expect_eq(pn.committed, -1);
    }
    ulog_pin bad = ULOG_PIN_INIT;
    cr_expect_eq(ulog_pins_get(pins, 6, &bad), ULOG_EINVAL);
    bad.struct_size = 1;
    cr_expect_eq(ulog_pins_get(pins, 0, &bad), ULOG_EINVAL);
    ulog_pins_free(pins);
    /* Each holds the closed segments from the one with its offset on;
     * idle (no commit) all of them. */
    cr_expect_eq(by[0][0], closed_bytes_from(0, seg_of(0, 20)));
    cr_expect_eq(by[0][1], closed_bytes_from(0, seg_of(0, 150)));
    cr_expect_eq(by[0][2], closed_bytes_from(0, 0));
    cr_expect_gt(by[0][0], by[0][1]);
    cr_expect_gt(by[0][1], 0);
    cr_expect_eq(by[1][0], closed_bytes_from(1, seg_of(1, 150)));
    cr_expect_eq(by[1][1], by[1][0]);
    cr_expect_eq(by[1][2], closed_bytes_from(1, 0));
    /* Without idle, partition 0 goes as far as slow lets it. */
    ulog_config *c = cfg_of("retention.groups", "slow,fast", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, 20));
    cr_expect_eq(low_of(log, 1), seg_of(1, 150));
    /* The report follows the deletion and the setting. */
    cr_assert_eq(ulog_retention_pins(log, "t", &pins), 0);
    cr_expect_eq(ulog_pins_count(pins), 4);
    for (size_t i = 0; i < ulog_pins_count(pins); i++) {
        ulog_pin pn = ULOG_PIN_INIT;
        cr_assert_eq(ulog_pins_get(pins, i, &pn), 0);
        cr_expect_eq(pn.bytes, closed_bytes_from(pn.partition, seg_of(pn.partition,
                                                                        pn.committed)),
                     "%s partition %d", pn.group, (int)pn.partition);
    }
    ulog_pins_free(pins);
    ulog_close(log);
}

Test(rgroups, no_setting_no_pins_and_bad_calls)
{
    ulog *log = setup(1, NULL);
    ulog_pins *pins = (ulog_pins *)1;
    cr_assert_eq(ulog_retention_pins(log, "t", &pins), 0);
    cr_expect_eq(ulog_pins_count(pins), 0);
    ulog_pins_free(pins);
    cr_expect_eq(ulog_retention_pins(log, "nope", &pins), ULOG_ENOENT);
    cr_expect_eq(ulog_retention_pins(log, NULL, &pins), ULOG_EINVAL);
    cr_expect_eq(ulog_retention_pins(log, "t", NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_retention_pins(NULL, "t", &pins), ULOG_EINVAL);
    cr_expect_eq(ulog_pins_count(NULL), 0);
    ulog_pins_free(NULL);
    ulog_close(log);
}

Test(rgroups, delete_records_is_not_held_back)
{
    ulog *log = setup(1, "billing");
    cr_assert_eq(ulog_delete_records(log, "t", 0, 120), 0);
    cr_expect_eq(low_of(log, 0), 120);
    clean(log);
    cr_expect_eq(low_of(log, 0), 120, "the group holds nothing below the log start");
    ulog_close(log);
}

/* A commit made by another process counts at the next run. */
Test(rgroups, a_commit_from_another_process_counts)
{
    ulog *log = setup(1, "billing");
    commit_at(log, "billing", 0, 10);
    clean(log);
    cr_assert_eq(low_of(log, 0), seg_of(0, 10));
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_watchdog(20);
        ulog *cl;
        ulog_sub *s;
        ulog_msg m;
        ulog_config *sc = cfg_try("auto.offset.reset", "earliest", NULL);
        if (!sc || ulog_open(dir, NULL, &cl) != 0 ||
            ulog_subscribe(cl, "t", "billing", sc, &s) != 0)
            _exit(10);
        for (int i = 0; i < 100; i++)
            if (ulog_poll(s, 1000, &m) != 0)
                _exit(11);
        int rc = ulog_commit(s);
        ulog_sub_close(s);
        ulog_config_free(sc);
        ulog_close(cl);
        _exit(rc == 0 ? 0 : 12);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    clean(log);
    cr_expect_eq(low_of(log, 0), seg_of(0, 110));
    ulog_close(log);
}
