/* test_compact.c -- log compaction (cleanup.policy=compact) against a model.
 *
 * The model is every record appended, by offset. After a compaction the
 * log read from its start must hold, for every key, the model's latest
 * record of that key at the same offset (values compared byte for byte),
 * every record read must be one the model holds at that offset, offsets
 * must increase, records after the cleanable part must all still be there,
 * and the partition must have become smaller.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char dir[256];
SCRATCH_SUITE(compact, dir);

#define MAXREC 20000
#define KEYS   64
#define TS0    INT64_C(1700000000000)   /* record o has timestamp TS0 + 10 o */

/* The model: what was appended at each offset. */
typedef struct mrec {
    int  key;          /* -1: null key */
    bool tomb;         /* null value */
    char value[32];
} mrec;

static mrec model[MAXREC];
static int64_t nmodel;

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
    rng = mix64(rng + 0x9e3779b97f4a7c15u);
    return rng;
}

/* Appends `n` records in batches of 1 to 5, keys from KEYS, tombstones
 * one time in `tomb_every` (0: none). */
static void append_random(ulog *log, const char *topic, int n, int tomb_every)
{
    while (n > 0) {
        int k = 1 + (int)(next_rand() % 5);
        if (k > n)
            k = n;
        ulog_record r[5];
        char keys[5][16];
        for (int i = 0; i < k; i++) {
            mrec *m = &model[nmodel + i];
            m->key = (int)(next_rand() % KEYS);
            m->tomb = tomb_every && next_rand() % (uint64_t)tomb_every == 0;
            snprintf(m->value, sizeof m->value, "v%lld-%llu", (long long)(nmodel + i),
                     (unsigned long long)(next_rand() % 100000));
            snprintf(keys[i], sizeof keys[i], "k%d", m->key);
            r[i] = (ulog_record){ .key = keys[i], .key_len = strlen(keys[i]),
                                  .value = m->tomb ? NULL : m->value,
                                  .value_len = m->tomb ? 0 : strlen(m->value),
                                  .partition = 0, .timestamp = TS0 + 10 * (nmodel + i) };
        }
        cr_assert_eq(ulog_append(log, topic, r, (size_t)k), 0);
        for (int i = 0; i < k; i++)
            cr_assert_eq(r[i].offset, nmodel + i);
        nmodel += k;
        n -= k;
    }
}

/* The model's latest offset of key k; -1 when it has none. */
static int64_t latest_of(int k)
{
    int64_t latest = -1;
    for (int64_t o = 0; o < nmodel; o++)
        if (model[o].key == k)
            latest = o;
    return latest;
}

/* A log at root with topic "t" of one partition, cleanup.policy=compact,
 * segment.bytes 4096 and, when name is not NULL, name=value; an empty
 * model. */
static ulog *compacted_log(const char *root, const char *name, const char *value)
{
    nmodel = 0;
    return open_with_topic(root, NULL, "t", 1,
                           cfg_of("cleanup.policy", "compact", "segment.bytes", "4096", name,
                                  value, NULL));
}

/* Reads the whole partition and checks it against the model; returns the
 * number of records read. */
static int64_t check_against_model(ulog *log, const char *topic, int64_t keep_from)
{
    ulog_sub *s = sub_earliest(log, topic);
    int64_t last_seen[KEYS];
    for (int i = 0; i < KEYS; i++)
        last_seen[i] = -1;
    int64_t prev = -1, n = 0, tail = 0;
    ulog_msg m;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_gt(m.offset, prev, "offset %lld after %lld", (long long)m.offset,
                     (long long)prev);
        cr_assert_lt(m.offset, nmodel);
        const mrec *x = &model[m.offset];
        char key[16];
        snprintf(key, sizeof key, "k%d", x->key);
        cr_assert(m.key && m.key_len == strlen(key) && memcmp(m.key, key, m.key_len) == 0,
                  "offset %lld: not the key appended there", (long long)m.offset);
        if (x->tomb)
            cr_assert_null(m.value, "offset %lld: a tombstone read back with a value",
                           (long long)m.offset);
        else
            cr_assert(m.value && m.value_len == strlen(x->value) &&
                          memcmp(m.value, x->value, m.value_len) == 0,
                      "offset %lld: not the value appended there", (long long)m.offset);
        if (x->key < KEYS)
            last_seen[x->key] = m.offset;
        if (m.offset >= keep_from)
            tail++;
        prev = m.offset;
        n++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    ulog_sub_close(s);
    /* Every key's latest record is there (tombstones too: kept for
     * delete.retention.ms). */
    for (int k = 0; k < KEYS; k++) {
        int64_t latest = latest_of(k);
        cr_assert_eq(last_seen[k], latest, "key k%d: latest read %lld, appended %lld", k,
                     (long long)last_seen[k], (long long)latest);
    }
    /* Nothing at or past keep_from (not cleanable) went. */
    cr_assert_eq(tail, nmodel - keep_from, "records past the cleanable part lost");
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The segment bases of partition 0 of "t" under root, ascending. */
static int seg_bases(const char *root, int64_t *v, int cap)
{
    char pd[600];
    part_dir(pd, sizeof pd, root, "t", 0);
    DIR *d = opendir(pd);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (is_segment_name(de->d_name) && n < cap)
            v[n++] = atoll(de->d_name);
    closedir(d);
    qsort(v, (size_t)n, sizeof v[0], cmp_i64);
    return n;
}

/* The bytes of the partition's batches (not the zeros past them). */
static int64_t dir_bytes(const char *root, const char *topic)
{
    char pd[600];
    part_dir(pd, sizeof pd, root, topic, 0);
    DIR *d = opendir(pd);
    cr_assert_not_null(d);
    int64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_segment_name(de->d_name))
            continue;
        char path[900];
        snprintf(path, sizeof path, "%s/%s", pd, de->d_name);
        sum += seg_data_bytes(path);
    }
    closedir(d);
    return sum;
}

static int64_t active_base(const char *root, const char *topic)
{
    (void)topic;        /* always "t" */
    int64_t v[1024];
    int n = seg_bases(root, v, 1024);
    return n ? v[n - 1] : -1;
}

Test(compact, latest_per_key_survives_and_offsets_stay)
{
    ulog *log = compacted_log(dir, NULL, NULL);
    append_random(log, "t", 3000, 10);
    int64_t before = dir_bytes(dir, "t");
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    int64_t after = dir_bytes(dir, "t");
    /* (The run may roll the active segment: its records are years old by
     * their timestamps, past segment.ms.) */
    int64_t active = active_base(dir, "t");
    cr_expect_lt(after, before / 2, "%lld bytes before, %lld after", (long long)before,
                 (long long)after);
    int64_t n = check_against_model(log, "t", active);
    cr_expect_lt(n, nmodel / 2);
    /* Appends go on at the next offset, and a second run changes nothing
     * a reader can tell. */
    append_random(log, "t", 500, 10);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    check_against_model(log, "t", active_base(dir, "t"));
    ulog_close(log);
    /* And after a reopen with recovery (the heads gone, as after a reboot). */
    delete_heads(dir, "t", 1, false);
    log = open_at(dir, NULL);
    check_against_model(log, "t", active_base(dir, "t"));
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_expect_eq(hi, nmodel);
    ulog_close(log);
}

/* ---------------------------------------------------------------- crashes */

static int crash_at;

static void crash_step(int step)
{
    if (step == crash_at)
        raise(SIGKILL);
}

/* A root whose partition 0 of "t" has a compacted part and dirty records
 * after it, so that the next run merges small cleaned segments (a group of
 * several files) and rewrites dirty ones. */
static void make_twice_dirty(const char *root)
{
    ulog *log = open_with_topic(root, NULL, "t", 1,
                                cfg_of("cleanup.policy", "compact", "segment.bytes", "4096",
                                       "flush.policy", "none", NULL));
    nmodel = 0;
    append_random(log, "t", 3000, 10);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    append_random(log, "t", 3000, 10);
    ulog_close(log);
}

static bool no_cleaned_files(const char *root)
{
    char pd[600];
    snprintf(pd, sizeof pd, "%s/topics/t/0", root);
    DIR *d = opendir(pd);
    cr_assert_not_null(d);
    bool none = true;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".cleaned"))
            none = false;
    closedir(d);
    return none;
}

/* kill -9 after each step of a swap (1: the new file written, 2: the
 * catalog's commit, 3: renamed over the first segment, 4: the others
 * unlinked, 5: the catalog's end), then read with the head valid (another
 * process carries on) and after a reboot (recovery at open). Either way
 * every key's latest record is there, nothing is read twice or foreign,
 * and the next run leaves no *.cleaned file. */
Test(compact, kill_at_every_step_of_a_swap, .timeout = 240)
{
    char root[400];
    for (int step = 1; step <= 5; step++)
        for (int reboot = 0; reboot < 2; reboot++) {
            snprintf(root, sizeof root, "%s/s%d-%d", dir, step, reboot);
            make_twice_dirty(root);
            pid_t pid = quiet_fork();
            cr_assert_geq(pid, 0);
            if (pid == 0) {
                child_watchdog(60);
                ulog *cl;
                crash_at = step;
                ulog__compact_step = crash_step;
                if (ulog_open(root, NULL, &cl) != 0)
                    _exit(10);
                ulog_clean(cl, "t", ULOG_CLEAN_COMPACT, NULL, NULL);
                _exit(11);          /* the step never came */
            }
            int st;
            cr_assert_eq(waitpid(pid, &st, 0), pid);
            cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "step %d: the child was not killed there (status %d)", step, st);
            ulog *log;
            if (reboot) {
                /* As after a power cut that also lost the checkpoint: the
                 * recovery scan then goes over every segment. */
                delete_heads(root, "t", 1, false);
                log = open_at(root, NULL);
                ulog__topic_rec rec;
                cr_assert_eq(ulog__meta_topic_get(log->meta, "t", &rec), 0);
                cr_assert_eq(ulog__meta_truncate(log->meta, rec.id, 0, 0), 0);
            } else {
                log = open_at(root, NULL);
            }
            int64_t active = active_base(root, "t");
            check_against_model(log, "t", active);
            cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
            check_against_model(log, "t", active_base(root, "t"));
            cr_expect(no_cleaned_files(root), "step %d: a .cleaned file left", step);
            ulog_verify_info vi;
            memset(&vi, 0, sizeof vi);
            vi.struct_size = sizeof vi;
            cr_expect_eq(ulog_verify(log, "t", NULL, NULL, &vi), 0, "step %d: verify", step);
            ulog_close(log);
        }
}

/* ---------------------------------------------------------------- readers */

static int up[2], down[2];

static void pause_step(int step)
{
    char c = (char)('0' + step);
    if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
        _exit(20);
}

/* Reads up to n records into the running check: offsets must increase,
 * each record must be the one appended at its offset; last[] gets each
 * key's last offset read. Returns the number read. */
static int64_t read_some(ulog_sub *s, int64_t n, int64_t *prev, int64_t last[KEYS])
{
    int64_t got = 0;
    ulog_msg m;
    while (got < n && ulog_poll(s, 0, &m) == 0) {
        cr_assert_gt(m.offset, *prev, "offset %lld read after %lld", (long long)m.offset,
                     (long long)*prev);
        const mrec *x = &model[m.offset];
        cr_assert(x->tomb ? m.value == NULL
                          : m.value && m.value_len == strlen(x->value) &&
                                memcmp(m.value, x->value, m.value_len) == 0,
                  "offset %lld: not the record appended there", (long long)m.offset);
        if (x->key < KEYS)
            last[x->key] = m.offset;
        *prev = m.offset;
        got++;
    }
    return got;
}

/* A subscriber in this process reads while another process compacts,
 * stopped after each step of each swap: no record twice, none foreign,
 * and every key's latest record read last for that key. */
Test(compact, a_reader_across_the_swaps, .timeout = 120)
{
    char root[400];
    snprintf(root, sizeof root, "%s/r", dir);
    make_twice_dirty(root);
    ulog *log = open_at(root, NULL);
    ulog_sub *s = sub_earliest(log, "t");
    int64_t prev = -1, last[KEYS];
    for (int k = 0; k < KEYS; k++)
        last[k] = -1;
    read_some(s, 100, &prev, last);
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        child_watchdog(60);
        ulog *cl;
        ulog__compact_step = pause_step;
        if (ulog_open(root, NULL, &cl) != 0)
            _exit(10);
        int rc = ulog_clean(cl, "t", ULOG_CLEAN_COMPACT, NULL, NULL);
        ulog_close(cl);
        _exit(rc == 0 ? 0 : 11);
    }
    close(up[1]);
    close(down[0]);
    char c;
    int steps = 0;
    while (read(up[0], &c, 1) == 1) {
        read_some(s, 40, &prev, last);
        steps++;
        cr_assert_eq(write(down[1], &c, 1), 1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the compacting child failed: %d", st);
    cr_expect_geq(steps, 10, "only %d steps: not enough swaps to read across", steps);
    read_some(s, INT64_MAX, &prev, last);
    for (int k = 0; k < KEYS; k++) {
        int64_t latest = latest_of(k);
        cr_expect_eq(last[k], latest, "key k%d: last read %lld, latest %lld", k,
                     (long long)last[k], (long long)latest);
    }
    close(up[0]);
    close(down[1]);
    ulog_sub_close(s);
    ulog_close(log);
}

/* The segment after the one a reader has just finished is merged away
 * (into the file named by the reader's segment, which the reader still
 * has mapped in its old form): the reader finds its next offset in the
 * new file and goes on without a gap or a repeat. */
Test(compact, a_reader_whose_next_segment_was_merged_away)
{
    char root[400];
    snprintf(root, sizeof root, "%s/m", dir);
    make_twice_dirty(root);
    int64_t v[256];
    int nv = seg_bases(root, v, 256);
    ulog *log = open_at(root, NULL);
    ulog_sub *s = sub_earliest(log, "t");
    int64_t prev = -1, last[KEYS];
    for (int k = 0; k < KEYS; k++)
        last[k] = -1;
    /* Every record below `second`, and no more, where `second` follows a
     * (compacted, small) segment that holds records: a probe counts them. */
    int64_t second = -1, in_first = 0;
    for (int i = 0; i + 2 < nv && second < 0; i++) {
        ulog_sub *probe = sub_earliest(log, "t");
        ulog_msg m;
        int64_t below = 0, inside = 0;
        while (ulog_poll(probe, 0, &m) == 0 && m.offset < v[i + 1]) {
            below++;
            inside += m.offset >= v[i];
        }
        ulog_sub_close(probe);
        if (inside > 0) {
            second = v[i + 1];
            in_first = below;
        }
    }
    cr_assert_gt(second, 0, "no segment with records before two others");
    cr_assert_eq(read_some(s, in_first, &prev, last), in_first);
    cr_assert_lt(prev, second);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    char pd[600], path[800];
    part_dir(pd, sizeof pd, root, "t", 0);
    snprintf(path, sizeof path, "%s/%020lld.log", pd, (long long)second);
    cr_assert_neq(access(path, F_OK), 0, "the second segment was not merged away");
    read_some(s, INT64_MAX, &prev, last);
    for (int k = 0; k < KEYS; k++) {
        int64_t latest = latest_of(k);
        cr_expect_eq(last[k], latest, "key k%d: last read %lld, latest %lld", k,
                     (long long)last[k], (long long)latest);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

/* ---------------------------------------------------------------- settings */

/* The offsets a fresh subscription reads from the start, in order. */
static int64_t read_offsets(ulog *log, const char *topic, int64_t *out, int64_t cap)
{
    ulog_sub *s = sub_earliest(log, topic);
    ulog_msg m;
    int64_t n = 0;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_lt(n, cap);
        out[n++] = m.offset;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    ulog_sub_close(s);
    return n;
}

static int64_t kept[MAXREC];

/* A seek to any offset lands on the first record kept at or after it; a
 * seek to a time on the first kept record at or after that time. */
Test(compact, seeks_land_on_the_next_record_kept)
{
    ulog *log = compacted_log(dir, "index.interval.bytes", "512");
    append_random(log, "t", 3000, 10);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    int64_t n = read_offsets(log, "t", kept, MAXREC);
    cr_assert_lt(n, nmodel / 2);
    ulog_sub *s = sub_earliest(log, "t");
    for (int i = 0; i < 300; i++) {
        int64_t o = (int64_t)(next_rand() % (uint64_t)nmodel);
        int64_t want = -1;
        for (int64_t j = 0; j < n && want < 0; j++)
            if (kept[j] >= o)
                want = kept[j];
        ulog_msg m;
        cr_assert_eq(ulog_seek(s, 0, o), 0);
        cr_assert_eq(ulog_poll(s, 0, &m), 0, "after a seek to %lld", (long long)o);
        cr_assert_eq(m.offset, want, "seek to %lld read %lld, first kept %lld", (long long)o,
                     (long long)m.offset, (long long)want);
        cr_assert_eq(ulog_seek_time(s, 0, TS0 + 10 * o - 5), 0);
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
        cr_assert_eq(m.offset, want, "seek to time of %lld read %lld, first kept %lld",
                     (long long)o, (long long)m.offset, (long long)want);
        cr_assert_eq(m.timestamp, TS0 + 10 * m.offset);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

/* Tombstones in the cleaned part below `active`, among the n offsets read. */
static int64_t tombs_in(const int64_t *offs, int64_t n, int64_t active)
{
    int64_t t = 0;
    for (int64_t i = 0; i < n; i++)
        t += offs[i] < active && model[offs[i]].tomb;
    return t;
}

/* A tombstone stays until delete.retention.ms after the compaction that
 * first kept it (its batch's delete horizon, Kafka's KIP-534), and goes
 * at the first run after that -- a run due for it alone, with nothing
 * dirty: then a key whose latest record is a tombstone has none left. */
Test(compact, tombstones_go_after_delete_retention_ms)
{
    ulog *log = compacted_log(dir, "delete.retention.ms", "2000");
    append_random(log, "t", 3000, 4);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    int64_t active = active_base(dir, "t");
    int64_t n = read_offsets(log, "t", kept, MAXREC);
    int64_t first = tombs_in(kept, n, active);
    cr_expect_gt(first, 0, "the first compaction dropped its tombstones at once");
    /* Within delete.retention.ms: a second run keeps them. */
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    n = read_offsets(log, "t", kept, MAXREC);
    cr_expect_eq(tombs_in(kept, n, active), first, "tombstones went before their horizon");
    sleep_ms(2100);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    n = read_offsets(log, "t", kept, MAXREC);
    cr_expect_eq(tombs_in(kept, n, active), 0, "%lld tombstones left after their horizon",
                 (long long)tombs_in(kept, n, active));
    for (int k = 0; k < KEYS; k++) {
        int64_t latest = latest_of(k);
        bool found = false;
        for (int64_t i = 0; i < n; i++)
            found |= kept[i] == latest;
        if (latest >= 0 && (!model[latest].tomb || latest >= active))
            cr_expect(found, "key k%d: latest record %lld gone", k, (long long)latest);
        else if (latest >= 0)
            cr_expect(!found, "key k%d: its tombstone %lld kept", k, (long long)latest);
        for (int64_t i = 0; model[latest].tomb && latest < active && i < n; i++)
            cr_expect(model[kept[i]].key != k, "key k%d: record %lld of a deleted key kept",
                      k, (long long)kept[i]);
    }
    ulog_close(log);
}

/* min.compaction.lag.ms keeps young segments as written; records with a
 * null key (appended before the topic became compacted) are all kept. */
Test(compact, lag_and_null_keys)
{
    ulog *log = open_with_topic(dir, NULL, "t", 1, cfg_of("segment.bytes", "4096", NULL));
    nmodel = 0;
    append_random(log, "t", 1000, 0);
    int64_t nulls = 0;
    for (int i = 0; i < 200; i++) {
        ulog_record r = { .value = "x", .value_len = 1, .partition = 0,
                          .timestamp = TS0 + 10 * nmodel };
        cr_assert_eq(ulog_append(log, "t", &r, 1), 0);
        model[nmodel] = (mrec){ .key = -1, .tomb = false, .value = "x" };
        nmodel++;
        nulls++;
    }
    append_random(log, "t", 1000, 0);
    /* Young records (by their timestamps, TS0 + 10 o: years ago, so any
     * lag under that is past): a lag of 100 years keeps everything. */
    ulog_config *c = cfg_of("cleanup.policy", "compact", "min.compaction.lag.ms",
                            "3153600000000", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    int64_t before = dir_bytes(dir, "t");
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    cr_expect_eq(dir_bytes(dir, "t"), before, "a segment younger than the lag was compacted");
    c = cfg_of("min.compaction.lag.ms", "0", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    cr_expect_lt(dir_bytes(dir, "t"), before);
    int64_t n = read_offsets(log, "t", kept, MAXREC), got = 0;
    for (int64_t i = 0; i < n; i++)
        got += model[kept[i]].key < 0;
    cr_expect_eq(got, nulls, "%lld of %lld null-key records kept", (long long)got,
                 (long long)nulls);
    ulog_close(log);
}

/* A run that is not forced (the background's) waits for the dirty ratio. */
Test(compact, the_background_waits_for_the_dirty_ratio)
{
    ulog *log = compacted_log(dir, "min.cleanable.dirty.ratio", "0.9");
    append_random(log, "t", 3000, 10);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    append_random(log, "t", 300, 10);
    ulog__part *p;
    cr_assert_eq(ulog__part_get(log, "t", 0, &p), 0);
    int64_t before = dir_bytes(dir, "t");
    cr_assert_eq(ulog__part_sync_background(p), 0);
    cr_assert_eq(ulog__compact_partition(p, ulog__now_ms(), false, NULL), 0);
    cr_expect_eq(dir_bytes(dir, "t"), before, "compacted below the dirty ratio");
    ulog_config *c = cfg_of("min.cleanable.dirty.ratio", "0.01", NULL);
    cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
    ulog_config_free(c);
    cr_assert_eq(ulog__compact_partition(p, ulog__now_ms(), false, NULL), 0);
    cr_expect_lt(dir_bytes(dir, "t"), before, "not compacted above the dirty ratio");
    check_against_model(log, "t", active_base(dir, "t"));
    ulog_close(log);
}

/* ---------------------------------------------------------------- format */

/* A batch of records at offset deltas d[0..n) (value "x", no key) in a
 * range of last + 1 offsets, sealed as compaction writes it. */
static size_t gapped_batch(uint8_t *buf, const int *d, int n, int last)
{
    size_t len = ULOG__BATCH_HEADER_SIZE;
    for (int i = 0; i < n; i++) {
        uint8_t body[32];
        size_t b = 0;
        body[b++] = 0;                                   /* attributes */
        b += ulog__varint_put(body + b, 0);              /* timestampDelta */
        b += ulog__varint_put(body + b, d[i]);           /* offsetDelta */
        b += ulog__varint_put(body + b, -1);             /* null key */
        b += ulog__varint_put(body + b, 1);              /* value "x" */
        body[b++] = 'x';
        b += ulog__varint_put(body + b, 0);              /* no headers */
        len += ulog__varint_put(buf + len, (int64_t)b);
        memcpy(buf + len, body, b);
        len += b;
    }
    ulog__batch_hdr h = { .base_offset = 100, .leader_epoch = -1, .last_offset_delta = last,
                          .base_timestamp = TS0, .max_timestamp = TS0, .producer_id = -1,
                          .producer_epoch = -1, .base_sequence = -1, .record_count = n };
    ulog__batch_seal(buf, len, &h);
    return len;
}

Test(compact, batches_with_gaps_verify_and_bad_ones_do_not)
{
    uint8_t buf[1024];
    ulog__batch_hdr h;
    static const int gaps[] = { 0, 3, 7 }, same[] = { 0, 3, 3 }, back[] = { 0, 5, 2 },
                     past[] = { 0, 10 };
    size_t n = gapped_batch(buf, gaps, 3, 9);
    cr_expect_eq(ulog__batch_verify_gaps(buf, n, &h), 0, "records at 0, 3, 7 of 0..9");
    /* Outside the compacted part the same batch is corrupt. */
    cr_expect_eq(ulog__batch_verify(buf, n, &h), ULOG_ECORRUPT);
    cr_expect_eq(ulog__batch_check(buf, n, &h), ULOG_ECORRUPT);
    cr_expect_eq(ulog__batch_check_gaps(buf, n, &h), 0);
    cr_expect_eq(h.record_count, 3);
    n = gapped_batch(buf, NULL, 0, 5);
    cr_expect_eq(ulog__batch_verify_gaps(buf, n, &h), 0, "an empty batch spanning 0..5");
    n = gapped_batch(buf, same, 3, 9);
    cr_expect_eq(ulog__batch_verify_gaps(buf, n, &h), ULOG_ECORRUPT, "a repeated offset");
    n = gapped_batch(buf, back, 3, 9);
    cr_expect_eq(ulog__batch_verify_gaps(buf, n, &h), ULOG_ECORRUPT, "offsets going back");
    n = gapped_batch(buf, past, 2, 9);
    cr_expect_eq(ulog__batch_verify_gaps(buf, n, &h), ULOG_ECORRUPT, "an offset past the range");
    n = gapped_batch(buf, gaps, 3, 1);
    cr_expect_eq(ulog__batch_verify_gaps(buf, n, &h), ULOG_ECORRUPT,
                 "more records than offsets in the range");
}

/* ulog_partition_describe: where the clean part ends, its bytes and the
 * dirty bytes after it, and the bytes compaction saved in `reclaimed`. */
Test(compact, describe_reports_clean_and_dirty_bytes)
{
    ulog *log = compacted_log(dir, NULL, NULL);
    append_random(log, "t", 2000, 10);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_expect_eq(pi.cleaned_end, 0);
    cr_expect_eq(pi.clean_bytes, 0);
    cr_expect_gt(pi.dirty_bytes, 0);
    cr_expect_eq(pi.reclaimed, 0);
    int64_t total = pi.bytes;
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_expect_eq(pi.cleaned_end, active_base(dir, "t"), "cleaned_end %lld, active %lld",
                 (long long)pi.cleaned_end, (long long)active_base(dir, "t"));
    cr_expect_gt(pi.clean_bytes, 0);
    cr_expect_eq(pi.dirty_bytes, 0);
    cr_expect_eq(pi.reclaimed, total - pi.bytes, "reclaimed %lld, shrank by %lld",
                 (long long)pi.reclaimed, (long long)(total - pi.bytes));
    cr_expect_gt(pi.cleaned_ms, 0);
    append_random(log, "t", 1000, 10);
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_expect_gt(pi.dirty_bytes, 0);
    ulog_close(log);
}

/* The background run (every retention.check.ms) compacts by itself. */
Test(compact, the_background_run_compacts)
{
    ulog *log = open_with_topic(dir, cfg_of("retention.check.ms", "100", NULL), "t", 1,
                                cfg_of("cleanup.policy", "compact", "segment.bytes", "4096",
                                       NULL));
    nmodel = 0;
    append_random(log, "t", 2000, 10);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    int64_t deadline = now_ms() + 20000;
    do {
        sleep_ms(50);
        cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    } while (pi.cleaned_end == 0 && now_ms() < deadline);
    cr_assert_gt(pi.cleaned_end, 0, "no background compaction in 20 s");
    check_against_model(log, "t", active_base(dir, "t"));
    ulog_close(log);
}

/* ---------------------------------------------------------------- review */

/* A map that fills up inside a segment ends the dirty part at a batch; the
 * next run goes on from there. Each run keeps every key's latest record,
 * and runs until nothing is dirty compact the whole log. */
Test(compact, a_full_map_ends_the_dirty_part_inside_a_segment)
{
    size_t saved = ulog__compact_map_limit;
    ulog__compact_map_limit = 100 << 10;    /* about 750 keys */
    ulog *log = open_with_topic(dir, NULL, "t", 1,
                                cfg_of("cleanup.policy", "compact", "segment.bytes", "65536",
                                       NULL));
    nmodel = 0;
    /* Keys from a wider set than KEYS: each record its own key for the
     * first 1000, so a segment's keys do not fit. */
    for (int i = 0; i < 1000; i++) {
        mrec *x = &model[nmodel];
        char key[32];
        *x = (mrec){ .key = KEYS + i, .tomb = false };
        snprintf(key, sizeof key, "k%d", x->key);
        snprintf(x->value, sizeof x->value, "w%d", i);
        ulog_record r = { .key = key, .key_len = strlen(key), .value = x->value,
                          .value_len = strlen(x->value), .partition = 0,
                          .timestamp = TS0 + 10 * nmodel };
        cr_assert_eq(ulog_append(log, "t", &r, 1), 0);
        nmodel++;
    }
    append_random(log, "t", 2000, 10);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    int64_t ends[8];
    int runs = 0;
    do {
        cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0, "%s",
                     ulog_errname(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL)));
        cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
        ends[runs++] = pi.cleaned_end;
    } while (pi.dirty_bytes > 0 && runs < 8);
    cr_expect_gt(runs, 1, "one run compacted it all: the map never filled");
    for (int i = 1; i < runs; i++)
        cr_expect_gt(ends[i], ends[i - 1], "run %d did not move cleaned_end", i + 1);
    cr_expect_eq(pi.dirty_bytes, 0, "still dirty after %d runs", runs);
    ulog__compact_map_limit = saved;
    /* Every u-key kept (each written once), every k-key's latest. */
    int64_t n = read_offsets(log, "t", kept, MAXREC), unique = 0;
    for (int64_t i = 0; i < n; i++)
        unique += kept[i] < 1000;
    cr_expect_eq(unique, 1000);
    check_against_model(log, "t", active_base(dir, "t"));
    ulog_close(log);
}

/* A swap cut short after its rename (the head still valid: no reboot):
 * retention and DeleteRecords finish it before they look at the segments,
 * or they take the merged file for one wholly below the old segment after
 * it and delete it. */
Test(compact, an_unfinished_swap_is_finished_before_a_deletion, .timeout = 60)
{
    char root[400];
    for (int via = 0; via < 2; via++) {
        snprintf(root, sizeof root, "%s/u%d", dir, via);
        make_twice_dirty(root);
        pid_t pid = quiet_fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            child_watchdog(30);
            ulog *cl;
            crash_at = 3;
            ulog__compact_step = crash_step;
            if (ulog_open(root, NULL, &cl) != 0)
                _exit(10);
            ulog_clean(cl, "t", ULOG_CLEAN_COMPACT, NULL, NULL);
            _exit(11);
        }
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %d", st);
        /* The segment files now: the merged one first, then the old ones
         * of its group that it overlaps. */
        char pd[600], path[900];
        part_dir(pd, sizeof pd, root, "t", 0);
        int64_t v[256];
        int nv = seg_bases(root, v, 256);
        cr_assert_gt(nv, 2);
        ulog *log = open_at(root, NULL);
        int64_t lo, hi;
        if (via == 0) {
            /* DeleteRecords into the second file: the first is wholly below
             * it by the listing, but holds the whole merged group. */
            cr_assert_eq(ulog_delete_records(log, "t", 0, v[1] + 1), 0);
        } else {
            /* Retention that deletes exactly the first file. */
            ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
            cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
            struct stat fst;
            snprintf(path, sizeof path, "%s/%020lld.log", pd, (long long)v[0]);
            cr_assert_eq(stat(path, &fst), 0);
            char bytes[32];
            snprintf(bytes, sizeof bytes, "%lld", (long long)(pi.bytes - fst.st_size));
            ulog_config *c = cfg_of("cleanup.policy", "compact,delete", "retention.bytes",
                                    bytes, NULL);
            cr_assert_eq(ulog_topic_alter(log, "t", c), 0);
            ulog_config_free(c);
            cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);
        }
        /* And the next compaction run (which finishes any swap left). */
        cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
        watermarks(log, "t", 0, &lo, &hi);
        /* Every key's latest record at or past the log start is readable. */
        ulog_sub *s = sub_earliest(log, "t");
        int64_t prev = -1, last[KEYS];
        for (int k = 0; k < KEYS; k++)
            last[k] = -1;
        read_some(s, INT64_MAX, &prev, last);
        ulog_position(s, 0, &prev);
        cr_expect_eq(prev, hi, "via %s: the read stopped at %lld of [%lld, %lld)",
                     via ? "retention" : "DeleteRecords", (long long)prev, (long long)lo,
                     (long long)hi);
        for (int k = 0; k < KEYS; k++) {
            int64_t latest = latest_of(k);
            if (latest >= lo)
                cr_expect_eq(last[k], latest, "via %s: key k%d: last read %lld, latest %lld",
                             via ? "retention" : "DeleteRecords", k, (long long)last[k],
                             (long long)latest);
        }
        ulog_sub_close(s);
        ulog_close(log);
    }
}

/* A reader inside a group's first segment when the swap puts a new file
 * under its name, then a roll (which makes readers reopen their segment by
 * name): it finds its offset again in the new file, rather than reading
 * other bytes at its old position. Three small segments (rolled by
 * segment.ms: the records are years old) merge into the first one's name,
 * a file larger than the first was. */
Test(compact, a_reader_reopening_a_replaced_segment_by_name)
{
    ulog *log = compacted_log(dir, "segment.bytes", "1048576");
    for (int seg = 0; seg < 3; seg++) {
        ulog_record r[10];
        char keys[10][8];
        for (int i = 0; i < 10; i++) {
            mrec *x = &model[nmodel + i];
            *x = (mrec){ .key = 10 * seg + i, .tomb = false };
            snprintf(x->value, sizeof x->value, "s%d-%d", seg, i);
            snprintf(keys[i], sizeof keys[i], "k%d", x->key);
            r[i] = (ulog_record){ .key = keys[i], .key_len = strlen(keys[i]), .value = x->value,
                                  .value_len = strlen(x->value), .partition = 0,
                                  .timestamp = TS0 + 10 * (nmodel + i) };
        }
        cr_assert_eq(ulog_append(log, "t", r, 10), 0);
        nmodel += 10;
        cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);  /* rolls */
    }
    ulog_sub *s = sub_earliest(log, "t");
    int64_t prev = -1, last[KEYS];
    for (int k = 0; k < KEYS; k++)
        last[k] = -1;
    read_some(s, 3, &prev, last);              /* inside the first segment */
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    char pd[600], path[900];
    part_dir(pd, sizeof pd, dir, "t", 0);
    snprintf(path, sizeof path, "%s/%020lld.log", pd, 10LL);
    cr_assert_neq(access(path, F_OK), 0, "the segments were not merged");
    append_random(log, "t", 5, 0);
    cr_assert_eq(ulog_clean(log, "t", ULOG_CLEAN_RETENTION, NULL, NULL), 0);  /* rolls */
    read_some(s, INT64_MAX, &prev, last);
    int64_t lo, hi, pos;
    watermarks(log, "t", 0, &lo, &hi);
    cr_assert_eq(ulog_position(s, 0, &pos), 0);
    cr_expect_eq(pos, hi, "the reader stopped at %lld of %lld", (long long)pos, (long long)hi);
    for (int k = 0; k < KEYS; k++)
        cr_expect_eq(last[k], latest_of(k), "key k%d", k);
    ulog_sub_close(s);
    ulog_close(log);
}

/* A closed segment that does not verify: the run fails with ULOG_ECORRUPT
 * and changes nothing -- no file rewritten, none left behind, the catalog's
 * clean part where it was. */
Test(compact, a_corrupt_segment_stops_the_run_and_changes_nothing)
{
    ulog *log = compacted_log(dir, NULL, NULL);
    append_random(log, "t", 2000, 10);
    int64_t v[256];
    int nv = seg_bases(dir, v, 256);
    cr_assert_gt(nv, 3);
    char pd[600], path[900];
    part_dir(pd, sizeof pd, dir, "t", 0);
    snprintf(path, sizeof path, "%s/%020lld.log", pd, (long long)v[2]);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 200, SEEK_SET), 0);
    int ch = fgetc(f);
    cr_assert_eq(fseek(f, 200, SEEK_SET), 0);
    fputc(ch ^ 0x20, f);
    fclose(f);
    int64_t before = dir_bytes(dir, "t");
    int rc = ulog_clean(log, "t", ULOG_CLEAN_COMPACT, NULL, NULL);
    cr_expect_eq(rc, ULOG_ECORRUPT, "%s", ulog_errname(rc));
    cr_expect_eq(dir_bytes(dir, "t"), before);
    /* The same files (and perhaps a new active one: the run rolls first). */
    int64_t w[256];
    int nw = seg_bases(dir, w, 256);
    cr_expect(nw >= nv && memcmp(v, w, (size_t)nv * sizeof v[0]) == 0, "segment files changed");
    cr_expect(no_cleaned_files(dir), "a .cleaned file left");
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "t", 0, &pi), 0);
    cr_expect_eq(pi.cleaned_end, 0);
    cr_expect_eq(pi.reclaimed, 0);
    ulog_close(log);
}
