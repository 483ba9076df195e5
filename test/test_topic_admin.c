/* test_topic_admin.c -- ulog_topic_alter and ulog_topic_delete.
 *
 * Alter: settings merge (the ones named change, the rest stay), bad input
 * changes nothing, appends in this process and in another one follow the
 * new settings, and an alter whose process died between the catalog write
 * and the head bump is found by the next process to open the topic.
 *
 * Delete: everything of the topic goes (records, catalog entry, index
 * rows, group offsets, files); the name is free at once for a new topic
 * starting at offset 0; another process's appender and its blocked poll
 * get ULOG_ENOENT; deletes cut short after each of their steps are
 * finished by the next process (or ulog_open) that comes along.
 *
 * Compaction settings: they alter, persist and describe like the others,
 * and a topic whose cleanup.policy compacts refuses a null key (all of the
 * call, naming the record) from the append after the alter on.
 *
 * Children report through their exit status: 0 is success, anything else
 * names the check that failed (the parent prints it).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char dir[256];
SCRATCH_SUITE(admin, dir);

static int append_one(ulog *log, const char *topic, const char *value, size_t len)
{
    ulog_record r = { .value = value, .value_len = len, .partition = ULOG_PARTITION_ANY,
                      .timestamp = ULOG_TIMESTAMP_NOW };
    return ulog_append(log, topic, &r, 1);
}

static int wait_child(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "child died by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

/* Counts the records a fresh subscription reads from the start. */
static int64_t count_records(ulog *log, const char *topic)
{
    ulog_sub *s = sub_earliest(log, topic);
    ulog_msg m;
    int64_t n = 0;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0)
        n++;
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    ulog_sub_close(s);
    return n;
}

/* ================================================================ alter */

Test(admin, alter_changes_only_the_named_settings)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 2, cfg_of("flush.policy", "none", "segment.bytes", "65536", NULL));
    ulog_config *c = cfg_of("max.message.bytes", "2000", "flush.ms", "77", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    expect_setting(log, "t", "max.message.bytes", "2000");
    expect_setting(log, "t", "flush.ms", "77");
    expect_setting(log, "t", "flush.policy", "none");
    expect_setting(log, "t", "segment.bytes", "65536");
    /* A second alter of another setting keeps the first's. */
    c = cfg_of("flush.policy", "always", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    expect_setting(log, "t", "flush.policy", "always");
    expect_setting(log, "t", "max.message.bytes", "2000");
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    cr_expect_eq(info.partitions, 2);
    ulog_close(log);
    /* Durable: a new handle reads the same. */
    log = open_at(dir, NULL);
    expect_setting(log, "t", "max.message.bytes", "2000");
    expect_setting(log, "t", "flush.policy", "always");
    ulog_close(log);
}

Test(admin, alter_refuses_bad_input_and_changes_nothing)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    /* A subscription setting is not a topic setting. */
    ulog_config *c = cfg_of("max.message.bytes", "2000", "auto.offset.reset", "earliest", NULL);
    cr_expect_eq(ulog_topic_alter(log, "t", c), ULOG_EINVAL);
    char msg[256];
    ulog_errmsg(log, msg, sizeof msg);
    cr_expect(strstr(msg, "auto.offset.reset") != NULL, "message: %s", msg);
    expect_setting(log, "t", "max.message.bytes", "1048588");
    cr_expect_eq(ulog_topic_alter(log, "nope", c), ULOG_ENOENT);
    cr_expect_eq(ulog_topic_alter(log, "../t", c), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_alter(log, NULL, c), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_alter(log, "t", NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_alter(NULL, "t", c), ULOG_EINVAL);
    ulog_config_free(c);
    /* A log setting neither. */
    c = cfg_of("file.mode", "0600", NULL);
    cr_expect_eq(ulog_topic_alter(log, "t", c), ULOG_EINVAL);
    ulog_config_free(c);
    expect_setting(log, "t", "max.message.bytes", "1048588");
    ulog_close(log);
}

Test(admin, alter_applies_to_the_next_append_here)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, cfg_of("flush.policy", "none", "segment.bytes", "1048576", NULL));
    char big[3000];
    memset(big, 'x', sizeof big);
    cr_assert_eq(append_one(log, "t", big, sizeof big), 0);
    ulog_config *c = cfg_of("max.message.bytes", "1000", "segment.bytes", "4096", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    cr_expect_eq(append_one(log, "t", big, sizeof big), ULOG_ETOOBIG);
    /* segment.bytes from the next segment on: 4096-byte segments roll now. */
    for (int i = 0; i < 40; i++)
        cr_assert_eq(append_one(log, "t", big, 500), 0);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_expect_geq(pi.segments, 4, "%lld segments", (long long)pi.segments);
    cr_expect_eq(count_records(log, "t"), 41);
    ulog_close(log);
}

/* A child appends a 3000-byte record, waits for the alter (a byte on
 * `go`) and must then get ULOG_ETOOBIG for the same record. */
Test(admin, alter_reaches_another_process)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, cfg_of("flush.policy", "none", NULL));
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_watchdog(20);
        ulog *cl;
        char big[3000] = { 0 }, b = 1;
        if (ulog_open(dir, NULL, &cl) != 0)
            _exit(10);
        if (append_one(cl, "t", big, sizeof big) != 0)
            _exit(11);
        if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(12);
        /* The alter is done: this append must see it. */
        int rc = append_one(cl, "t", big, sizeof big);
        ulog_close(cl);
        _exit(rc == ULOG_ETOOBIG ? 0 : 13);
    }
    char b;
    cr_assert_eq(read(ready[0], &b, 1), 1);
    ulog_config *c = cfg_of("max.message.bytes", "1000", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    cr_assert_eq(write(go[1], &b, 1), 1);
    cr_expect_eq(wait_child(pid), 0, "the other process appended under the old settings");
    ulog_close(log);
}

/* The alterer died after its catalog write, before bumping the heads:
 * written here with the internal call, heads left alone. */
static int set_max_1000(ulog__topic_cfg *tc, void *arg)
{
    (void)arg;
    tc->max_message_bytes = 1000;
    return 0;
}

Test(admin, alter_cut_short_is_found_by_the_next_open)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, cfg_of("flush.policy", "none", NULL));
    char big[3000] = { 0 };
    cr_assert_eq(append_one(log, "t", big, sizeof big), 0);
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    uint32_t v;
    cr_assert_eq(ulog__meta_topic_set_cfg(log->meta, "t", info.id, set_max_1000, NULL, &v), 0);
    cr_assert_eq(v, 1);
    /* Nothing told this process yet. */
    cr_expect_eq(append_one(log, "t", big, sizeof big), 0);
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_watchdog(20);
        ulog *cl;
        if (ulog_open(dir, NULL, &cl) != 0)
            _exit(10);
        /* Opening the topic raises the head to the catalog's version. */
        int rc = append_one(cl, "t", big, sizeof big);
        ulog_close(cl);
        _exit(rc == ULOG_ETOOBIG ? 0 : 11);
    }
    cr_assert_eq(wait_child(pid), 0);
    cr_expect_eq(append_one(log, "t", big, sizeof big), ULOG_ETOOBIG,
                 "the open in the other process did not pass the change on");
    ulog_close(log);
}

/* Two threads altering different settings at once: neither change is lost
 * (each alter edits the stored settings inside its transaction). */
typedef struct alter_arg {
    ulog       *log;
    const char *name;
    int         rounds;
    int         failures;
} alter_arg;

static void *alter_loop(void *p)
{
    alter_arg *a = p;
    for (int i = 0; i < a->rounds; i++) {
        ulog_config *c = ulog_config_new();
        char v[16];
        snprintf(v, sizeof v, "%d", 1000 + i);
        if (!c || ulog_config_set(c, a->name, v, NULL, 0) != 0 ||
            ulog_topic_alter(a->log, "t", c) != 0)
            a->failures++;
        ulog_config_free(c);
    }
    return NULL;
}

Test(admin, concurrent_alters_of_different_settings_both_stick)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    alter_arg a = { log, "flush.ms", 200, 0 }, b = { log, "index.interval.bytes", 200, 0 };
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, alter_loop, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, alter_loop, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_expect_eq(a.failures + b.failures, 0);
    expect_setting(log, "t", "flush.ms", "1199");
    expect_setting(log, "t", "index.interval.bytes", "1199");
    ulog_close(log);
}

/* ================================================================ compaction */

/* The compaction settings alter like any other, are stored, and
 * ulog_topic_describe lists them. */
Test(admin, alter_compaction_settings)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    expect_setting(log, "t", "cleanup.policy", "delete");
    expect_setting(log, "t", "delete.retention.ms", "86400000");
    expect_setting(log, "t", "min.compaction.lag.ms", "0");
    expect_setting(log, "t", "min.cleanable.dirty.ratio", "0.5");
    ulog_config *c = cfg_of("cleanup.policy", "delete,compact", "delete.retention.ms", "1000",
                            "min.compaction.lag.ms", "2000", "min.cleanable.dirty.ratio", ".05",
                            NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    ulog_close(log);
    log = open_at(dir, NULL);
    expect_setting(log, "t", "cleanup.policy", "compact,delete");
    expect_setting(log, "t", "delete.retention.ms", "1000");
    expect_setting(log, "t", "min.compaction.lag.ms", "2000");
    expect_setting(log, "t", "min.cleanable.dirty.ratio", "0.05");
    c = cfg_of("min.cleanable.dirty.ratio", "1", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    expect_setting(log, "t", "min.cleanable.dirty.ratio", "1");
    expect_setting(log, "t", "cleanup.policy", "compact,delete");
    ulog_close(log);
}

/* The records of one append: keys "k0", "k1", ..., value "v". */
static void keyed_records(ulog_record *r, size_t n)
{
    static const char keys[][4] = { "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7" };
    cr_assert_leq(n, sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < n; i++)
        r[i] = (ulog_record){ .key = keys[i], .key_len = 2, .value = "v", .value_len = 1,
                              .partition = ULOG_PARTITION_ANY,
                              .timestamp = ULOG_TIMESTAMP_NOW };
}

/* The sum of the high watermarks of topic's `parts` partitions. */
static int64_t total_high(ulog *log, const char *topic, int32_t parts)
{
    int64_t sum = 0, lo, hi;
    for (int32_t p = 0; p < parts; p++) {
        watermarks(log, topic, p, &lo, &hi);
        sum += hi;
    }
    return sum;
}

static void expect_errmsg(ulog *log, const char *want)
{
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_expect_str_eq(msg, want);
}

Test(admin, compacted_topic_refuses_a_null_key)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "c", 2, cfg_of("cleanup.policy", "compact", NULL));
    ulog_record r[5];
    keyed_records(r, 5);
    r[3].key = NULL;
    r[3].key_len = 0;
    cr_expect_eq(ulog_append(log, "c", r, 5), ULOG_EINVAL);
    expect_errmsg(log, "topic c record 3: a compacted topic (cleanup.policy=compact) needs a "
                       "key on every record (Kafka's rule)");
    cr_expect_eq(total_high(log, "c", 2), 0, "records of a refused call were appended");
    /* A null value (a tombstone) with a key is what compaction is for. */
    r[3].key = "k3";
    r[3].key_len = 2;
    r[3].value = NULL;
    r[3].value_len = 0;
    append_ok(log, "c", r, 5);
    cr_expect_eq(total_high(log, "c", 2), 5);
    /* An empty key is a key; null is not, wherever it is in the call. */
    r[0].key = "";
    r[0].key_len = 0;
    append_ok(log, "c", r, 1);
    r[0].key = NULL;
    cr_expect_eq(ulog_append(log, "c", r, 5), ULOG_EINVAL);
    expect_errmsg(log, "topic c record 0: a compacted topic (cleanup.policy=compact) needs a "
                       "key on every record (Kafka's rule)");
    keyed_records(r, 5);
    r[4].key = NULL;
    r[4].key_len = 0;
    r[4].partition = 1;
    cr_expect_eq(ulog_append(log, "c", r, 5), ULOG_EINVAL, "an explicit partition needs a key too");
    expect_errmsg(log, "topic c record 4: a compacted topic (cleanup.policy=compact) needs a "
                       "key on every record (Kafka's rule)");
    cr_expect_eq(total_high(log, "c", 2), 6);
    ulog_close(log);
}

Test(admin, compact_delete_topic_refuses_a_null_key)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "cd", 1, cfg_of("cleanup.policy", "delete,compact", NULL));
    ulog_record r[2];
    keyed_records(r, 2);
    r[1].key = NULL;
    r[1].key_len = 0;
    cr_expect_eq(ulog_append(log, "cd", r, 2), ULOG_EINVAL);
    expect_errmsg(log, "topic cd record 1: a compacted topic (cleanup.policy=compact,delete) "
                       "needs a key on every record (Kafka's rule)");
    cr_expect_eq(total_high(log, "cd", 1), 0);
    ulog_close(log);
}

Test(admin, delete_policy_topic_takes_null_keys)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "d", 1, cfg_of("cleanup.policy", "delete", NULL));
    create_topic(log, "plain", 1, NULL);
    cr_expect_eq(append_one(log, "d", "x", 1), 0);
    cr_expect_eq(append_one(log, "plain", "x", 1), 0);
    cr_expect_eq(total_high(log, "d", 1) + total_high(log, "plain", 1), 2);
    ulog_close(log);
}

/* After an alter to compact, the next append with a null key is refused,
 * in this handle and in another one that had the topic open; the null-key
 * records already there stay. Back to delete, null keys are fine again. */
Test(admin, alter_to_compact_refuses_null_keys_from_then_on)
{
    ulog *log = open_at(dir, NULL), *other = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    cr_assert_eq(append_one(log, "t", "old", 3), 0);
    cr_assert_eq(append_one(other, "t", "old", 3), 0);
    ulog_config *c = cfg_of("cleanup.policy", "compact", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    cr_expect_eq(append_one(log, "t", "new", 3), ULOG_EINVAL);
    expect_errmsg(log, "topic t record 0: a compacted topic (cleanup.policy=compact) needs a "
                       "key on every record (Kafka's rule)");
    cr_expect_eq(append_one(other, "t", "new", 3), ULOG_EINVAL,
                 "another handle appended a null key under the old policy");
    cr_expect_eq(total_high(log, "t", 1), 2);
    cr_expect_eq(count_records(log, "t"), 2, "the null-key records already there stay");
    ulog_record r[1];
    keyed_records(r, 1);
    append_ok(other, "t", r, 1);
    cr_expect_eq(total_high(log, "t", 1), 3);
    ulog_close(other);
    ulog_close(log);

    log = open_at(dir, NULL);
    cr_expect_eq(append_one(log, "t", "new", 3), ULOG_EINVAL, "the policy is stored");
    c = cfg_of("cleanup.policy", "delete", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    cr_expect_eq(append_one(log, "t", "new", 3), 0);
    cr_expect_eq(total_high(log, "t", 1), 4);
    ulog_close(log);
}

/* ================================================================ delete */

static bool path_exists(const char *rel)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return stat(p, &st) == 0;
}

/* Entries of dir/topics, besides . and .. */
static int topics_entries(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/topics", dir);
    DIR *d = opendir(p);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static size_t topic_count(ulog *log)
{
    ulog_strlist *l;
    cr_assert_eq(ulog_topic_list(log, &l), 0);
    size_t n = ulog_strlist_count(l);
    ulog_strlist_free(l);
    return n;
}

Test(admin, delete_removes_everything_and_frees_the_name)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 3, cfg_of("flush.policy", "none", "segment.bytes", "8192",
                                     "index.interval.bytes", "512", NULL));
    create_topic(log, "other", 1, NULL);
    char v[200] = { 0 };
    for (int i = 0; i < 600; i++)
        cr_assert_eq(append_one(log, "t", v, sizeof v), 0);
    cr_assert_eq(append_one(log, "other", "keep", 4), 0);
    ulog_sub *s;
    ulog_config *sc = cfg_of("auto.offset.reset", "earliest", NULL);
    cr_assert_eq(ulog_subscribe(log, "t", "g", sc, &s), 0);
    ulog_config_free(sc);
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 1000, &m), 0);
    cr_assert_eq(ulog_commit(s), 0);
    ulog_sub_close(s);
    cr_assert_eq(ulog__flush_pass(log, false), 0);
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    ulog__index_entry e;
    cr_assert_eq(ulog__meta_index_floor(log->meta, info.id, 0, INT64_MAX, &e), 0,
                 "no index entries to see go");

    cr_assert_eq(ulog_topic_delete(log, "t"), 0);
    cr_expect_eq(topic_count(log), 1);
    cr_expect_eq(ulog_topic_describe(log, "t", &info, NULL), ULOG_ENOENT);
    cr_expect_eq(append_one(log, "t", v, sizeof v), ULOG_ENOENT);
    cr_expect(!path_exists("topics/t"));
    cr_expect_eq(topics_entries(), 1, "leftovers in topics/");
    for (int32_t p = 0; p < 3; p++) {
        ulog__checkpoint cp;
        cr_expect_eq(ulog__meta_index_floor(log->meta, info.id, p, INT64_MAX, &e), ULOG_ENOENT);
        cr_expect_eq(ulog__meta_checkpoint_get(log->meta, info.id, p, &cp), ULOG_ENOENT);
    }
    ulog_group_desc *gd = NULL;
    cr_expect_eq(ulog_group_describe(log, "g", &gd), ULOG_ENOENT, "group offsets left");
    ulog_group_desc_free(gd);
    cr_expect_eq(count_records(log, "other"), 1);
    cr_expect_eq(ulog_topic_delete(log, "t"), ULOG_ENOENT);

    /* The name again: a new topic, offsets from 0, no old record. */
    create_topic(log, "t", 1, NULL);
    ulog_record r = { .value = "new", .value_len = 3, .partition = ULOG_PARTITION_ANY,
                      .timestamp = ULOG_TIMESTAMP_NOW };
    cr_assert_eq(ulog_append(log, "t", &r, 1), 0);
    cr_expect_eq(r.offset, 0);
    cr_expect_eq(count_records(log, "t"), 1);
    ulog_close(log);
    /* And after a reopen. */
    log = open_at(dir, NULL);
    cr_expect_eq(count_records(log, "t"), 1);
    cr_expect_eq(topic_count(log), 2);
    ulog_close(log);
}

Test(admin, delete_refuses_bad_names)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    cr_expect_eq(ulog_topic_delete(log, "../t"), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_delete(log, ""), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_delete(log, "~1"), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_delete(log, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_delete(NULL, "t"), ULOG_EINVAL);
    cr_expect_eq(ulog_topic_delete(log, "none"), ULOG_ENOENT);
    cr_expect_eq(topic_count(log), 1);
    ulog_close(log);
}

/* Forks a process that subscribes to `topic` from its end, writes a byte
 * to ready_fd, and polls (sleeping when there is nothing) until a poll
 * fails: it exits 0 when that is ULOG_ENOENT saying the topic was deleted,
 * 22 when it is another error, 23 for ENOENT without the message. */
static pid_t fork_poller(const char *topic, int ready_fd)
{
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid)
        return pid;
    child_watchdog(30);
    ulog *cl;
    ulog_sub *s;
    ulog_msg m;
    char b = 1;
    if (ulog_open(dir, NULL, &cl) != 0 || ulog_subscribe(cl, topic, NULL, NULL, &s) != 0)
        _exit(20);
    if (write(ready_fd, &b, 1) != 1)
        _exit(21);
    int rc;
    while ((rc = ulog_poll(s, -1, &m)) == 0)
        ;
    char msg[200];
    ulog_errmsg(cl, msg, sizeof msg);
    ulog_sub_close(s);
    ulog_close(cl);
    _exit(rc != ULOG_ENOENT ? 22 : strstr(msg, "deleted") ? 0 : 23);
}

/* Another process appends (flush.policy always) and blocks in ulog_poll;
 * the delete must stop both with ULOG_ENOENT, and none of its appends may
 * show up in the topic created under the same name afterwards. */
Test(admin, delete_stops_another_process)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 2, NULL);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t app = quiet_fork();
    cr_assert_geq(app, 0);
    if (app == 0) {
        child_watchdog(30);
        ulog *cl;
        char b = 1;
        if (ulog_open(dir, NULL, &cl) != 0)
            _exit(10);
        if (append_one(cl, "t", "x", 1) != 0 || write(ready[1], &b, 1) != 1)
            _exit(11);
        int rc;
        while ((rc = append_one(cl, "t", "x", 1)) == 0)
            ;
        ulog_close(cl);
        _exit(rc == ULOG_ENOENT ? 0 : 12);
    }
    pid_t rd = fork_poller("t", ready[1]);
    char b;
    cr_assert_eq(read(ready[0], &b, 1), 1);
    cr_assert_eq(read(ready[0], &b, 1), 1);
    usleep(50000);
    cr_assert_eq(ulog_topic_delete(log, "t"), 0);
    cr_expect_eq(wait_child(app), 0, "appender");
    int st = wait_child(rd);
    cr_expect_eq(st, 0, "blocked poll: exit %d", st);
    create_topic(log, "t", 2, NULL);
    cr_expect_eq(count_records(log, "t"), 0);
    ulog_close(log);
}

/* A subscription in this process reading when the delete comes. */
Test(admin, delete_ends_a_subscription_here)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, cfg_of("flush.policy", "none", NULL));
    for (int i = 0; i < 10; i++)
        cr_assert_eq(append_one(log, "t", "x", 1), 0);
    ulog_sub *s;
    ulog_config *sc = cfg_of("auto.offset.reset", "earliest", NULL);
    cr_assert_eq(ulog_subscribe(log, "t", "g", sc, &s), 0);
    ulog_config_free(sc);
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(ulog_topic_delete(log, "t"), 0);
    int rc;
    int n = 0;
    while ((rc = ulog_poll(s, 0, &m)) == 0)
        n++;
    cr_expect_eq(rc, ULOG_ENOENT, "%s", ulog_errname(rc));
    cr_expect_eq(n, 0, "%d records read from a deleted topic", n);
    cr_expect_eq(ulog_commit(s), ULOG_ENOENT);
    ulog_sub_close(s);
    ulog_close(log);
}

/* Step 1 only (heads marked), as when the deleter dies right after it:
 * the next process to touch the topic finishes the delete. */
Test(admin, delete_cut_after_marking_is_finished_by_the_next_user)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 2, NULL);
    cr_assert_eq(append_one(log, "t", "x", 1), 0);
    ulog__topic *t;
    cr_assert_eq(ulog__topic_get(log, "t", &t), 0);
    for (int32_t i = 0; i < t->partitions; i++)
        ulog__part_mark_deleted(&t->parts[i]);
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_watchdog(20);
        ulog *cl;
        if (ulog_open(dir, NULL, &cl) != 0)
            _exit(10);
        int rc = append_one(cl, "t", "x", 1);
        ulog_close(cl);
        _exit(rc == ULOG_ENOENT ? 0 : 11);
    }
    cr_expect_eq(wait_child(pid), 0);
    cr_expect_eq(topic_count(log), 0);
    cr_expect(!path_exists("topics/t"));
    cr_expect_eq(topics_entries(), 0);
    ulog_close(log);
}

/* Renames topics/<topic> to topics/~<id>, as a delete does inside its
 * catalog transaction. */
static void rename_to_tomb(const char *topic, uint32_t id)
{
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/topics/%s", dir, topic);
    snprintf(to, sizeof to, "%s/topics/~%u", dir, (unsigned)id);
    cr_assert_eq(rename(from, to), 0, "%s: %s", from, strerror(errno));
}

/* Inside step 2: the directory renamed, the catalog transaction lost.
 * ulog_open's sweep finishes it. */
Test(admin, delete_cut_inside_its_transaction_is_finished_at_open)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 2, NULL);
    cr_assert_eq(append_one(log, "t", "x", 1), 0);
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    ulog_close(log);
    rename_to_tomb("t", info.id);
    log = open_at(dir, NULL);
    cr_expect_eq(topic_count(log), 0);
    cr_expect_eq(topics_entries(), 0);
    create_topic(log, "t", 1, NULL);
    cr_expect_eq(count_records(log, "t"), 0);
    ulog_close(log);
}

/* The same, but the topic is deleted again by hand before any reopen: the
 * call finishes the delete it finds half done. */
Test(admin, delete_again_finishes_a_half_done_delete)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    rename_to_tomb("t", info.id);
    cr_expect_eq(ulog_topic_delete(log, "t"), 0);
    cr_expect_eq(topic_count(log), 0);
    cr_expect_eq(topics_entries(), 0);
    ulog_close(log);
}

/* After step 2: only the renamed tree is left. The sweep removes it and
 * nothing else. */
Test(admin, leftover_tree_of_a_finished_delete_is_swept_at_open)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, NULL);
    cr_assert_eq(append_one(log, "t", "x", 1), 0);
    ulog_close(log);
    char p[600];
    snprintf(p, sizeof p, "%s/topics/~999", dir);
    cr_assert_eq(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/topics/~999/0", dir);
    cr_assert_eq(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/topics/~999/0/00000000000000000000.log", dir);
    int fd = open(p, O_WRONLY | O_CREAT, 0640);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "old", 3), 3);
    close(fd);
    /* Not a name the sweep may touch. */
    snprintf(p, sizeof p, "%s/topics/~01", dir);
    cr_assert_eq(mkdir(p, 0750), 0);
    log = open_at(dir, NULL);
    cr_expect(!path_exists("topics/~999"));
    cr_expect(path_exists("topics/~01"));
    cr_expect_eq(count_records(log, "t"), 1);
    ulog_close(log);
}

/* A poll asleep on a topic nobody appends to wakes on the delete. */
Test(admin, delete_wakes_a_blocked_poll)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "q", 3, NULL);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork_poller("q", ready[1]);
    char b;
    cr_assert_eq(read(ready[0], &b, 1), 1);
    usleep(100000);                 /* asleep in the futex by now */
    cr_assert_eq(ulog_topic_delete(log, "q"), 0);
    cr_expect_eq(wait_child(pid), 0);
    ulog_close(log);
}

/* Deletes `topic` in another process, then creates it again there with
 * `parts` partitions unless parts is 0. */
static void delete_elsewhere(const char *topic, int32_t parts)
{
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_watchdog(20);
        ulog *cl;
        if (ulog_open(dir, NULL, &cl) != 0)
            _exit(10);
        int rc = ulog_topic_delete(cl, topic);
        if (rc == 0 && parts)
            rc = ulog_topic_create(cl, topic, parts, NULL);
        ulog_close(cl);
        _exit(rc == 0 ? 0 : 11);
    }
    cr_assert_eq(wait_child(pid), 0);
}

/* Index entries another process buffered for a topic deleted meanwhile
 * must not come back with its next flush (the flush checks, inside its
 * catalog transaction, that the topic still stands). */
Test(admin, flush_after_a_delete_elsewhere_writes_no_rows)
{
    ulog *log = open_at(dir, cfg_of("index.flush.ms", "60000", NULL));
    create_topic(log, "t", 1, cfg_of("flush.policy", "none", "index.interval.bytes", "512",
                                     NULL));
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    char v[300] = { 0 };
    for (int i = 0; i < 50; i++)
        cr_assert_eq(append_one(log, "t", v, sizeof v), 0);
    ulog__topic *t;
    cr_assert_eq(ulog__topic_get(log, "t", &t), 0);
    cr_assert_gt(t->parts[0].icount, 10, "no index entries waiting");
    delete_elsewhere("t", 0);
    cr_assert_eq(ulog__flush_pass(log, false), 0);
    ulog__index_entry e;
    ulog__checkpoint cp;
    cr_expect_eq(ulog__meta_index_floor(log->meta, info.id, 0, INT64_MAX, &e), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_checkpoint_get(log->meta, info.id, 0, &cp), ULOG_ENOENT);
    ulog_close(log);
}

/* Another process deletes the topic and creates it again with another
 * partition count while this one has it open: this process's next append
 * goes to the new topic, whole. */
Test(admin, recreated_with_other_partitions_under_an_open_handle)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 3, NULL);
    cr_assert_eq(append_one(log, "t", "old", 3), 0);
    delete_elsewhere("t", 1);
    ulog_record r = { .value = "new", .value_len = 3, .partition = ULOG_PARTITION_ANY,
                      .timestamp = ULOG_TIMESTAMP_NOW };
    cr_assert_eq(ulog_append(log, "t", &r, 1), 0);
    cr_expect_eq(r.partition, 0);
    cr_expect_eq(r.offset, 0);
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, "t", &info, NULL), 0);
    cr_expect_eq(info.partitions, 1);
    r.partition = 2;
    cr_expect_eq(ulog_append(log, "t", &r, 1), ULOG_EINVAL, "partition 2 of the old topic");
    cr_expect_eq(count_records(log, "t"), 1);
    ulog_close(log);
}

/* flush.policy none, then always: an fdatasync failure must not cut the
 * records published under none (readers have seen them): the partition is
 * poisoned instead, and a reopen keeps them. */
static int fail_fdatasync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

Test(admin, policy_change_then_sync_failure_keeps_seen_records)
{
    ulog *log = open_at(dir, NULL);
    create_topic(log, "t", 1, cfg_of("flush.policy", "none", NULL));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(append_one(log, "t", "seen", 4), 0);
    ulog_config *c = cfg_of("flush.policy", "always", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    int (*saved)(int) = ulog__fdatasync;
    ulog__fdatasync = fail_fdatasync;
    int rc = append_one(log, "t", "new", 3);
    ulog__fdatasync = saved;
    cr_expect(rc == ULOG_EIO || rc == ULOG_EPOISONED, "%s", ulog_errname(rc));
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_expect_geq(hi, 3, "published records cut: high %lld", (long long)hi);
    ulog_close(log);
    log = open_at(dir, NULL);
    cr_expect_geq(count_records(log, "t"), 3);
    cr_expect_eq(append_one(log, "t", "after", 5), 0);
    ulog_close(log);
}
