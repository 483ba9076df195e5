/* test_meta.c -- the LMDB metadata store: catalog, indexes, checkpoints;
 * and the error names of errors.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char root[256];
static ulog__meta *m;
static ulog__topic_cfg tc;

static void setup(void)
{
    make_tmpdir(root, sizeof root, "meta");
    cr_assert_eq(ulog__config_topic(NULL, &tc, NULL, 0), 0);
    cr_assert_eq(ulog__meta_open(root, 0640, 0750, &m), 0);
}

static void teardown(void)
{
    ulog__meta_close(m);
    rm_rf(root);
}

TestSuite(meta, .init = setup, .fini = teardown);

static void reopen(void)
{
    ulog__meta_close(m);
    m = NULL;
    cr_assert_eq(ulog__meta_open(root, 0640, 0750, &m), 0);
}

static ulog__index_entry entry(uint32_t t, int32_t p, int64_t off, int64_t ts)
{
    ulog__index_entry e = { t, p, off, off / 100 * 100, off * 10, ts };
    return e;
}

/* ---------------------------------------------------------------- open */

Test(meta, open_creates_dir_with_mode)
{
    char meta[300];
    struct stat st;

    snprintf(meta, sizeof meta, "%s/meta", root);
    cr_assert_eq(stat(meta, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
    cr_expect_eq(st.st_mode & 0700, 0700);
    reopen();
    reopen();
}

Test(meta, open_errors)
{
    ulog__meta *m2 = NULL;
    char missing[300];

    cr_expect_eq(ulog__meta_open(NULL, 0640, 0750, &m2), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_open(root, 0640, 0750, NULL), ULOG_EINVAL);
    snprintf(missing, sizeof missing, "%s/no/such/dir", root);
    cr_expect_eq(ulog__meta_open(missing, 0640, 0750, &m2), ULOG_ENOENT);
    cr_expect_null(m2);
    ulog__meta_close(NULL);
    ulog__meta_reader_check(m);
    ulog__meta_reader_check(NULL);
}

/* ---------------------------------------------------------------- topics */

Test(meta, topic_add_get)
{
    ulog__topic_rec r;
    uint32_t id1 = 0, id2 = 0, id3 = 0;
    ulog__topic_cfg custom = tc;

    custom.segment_bytes = 8192;
    custom.flush_policy = ULOG__FLUSH_INTERVAL;
    custom.log_append_time = true;
    cr_expect_eq(ulog__meta_topic_get(m, "orders", &r), ULOG_ENOENT);
    cr_assert_eq(ulog__meta_topic_add(m, "orders", 3, &custom, NULL, NULL, &id1), 0);
    cr_assert_eq(ulog__meta_topic_add(m, "events", 1, &tc, NULL, NULL, &id2), 0);
    cr_expect_neq(id1, id2);
    cr_expect_neq(id1, 0u);
    cr_expect_eq(ulog__meta_topic_add(m, "orders", 5, &tc, NULL, NULL, &id3), ULOG_EEXIST);
    cr_expect_eq(id3, 0u, "id untouched on failure");

    reopen();
    cr_assert_eq(ulog__meta_topic_get(m, "orders", &r), 0);
    cr_expect_eq(r.id, id1);
    cr_expect_eq(r.partitions, 3);
    cr_expect_eq(r.cfg.segment_bytes, 8192);
    cr_expect_eq(r.cfg.flush_policy, ULOG__FLUSH_INTERVAL);
    cr_expect(r.cfg.log_append_time);
    cr_assert_eq(ulog__meta_topic_get(m, "events", &r), 0);
    cr_expect_eq(r.id, id2);
    cr_expect_eq(r.partitions, 1);

    /* A failed add does not burn an id; ids are never reused. */
    cr_assert_eq(ulog__meta_topic_add(m, "third", 1, &tc, NULL, NULL, &id3), 0);
    cr_expect(id3 != id1 && id3 != id2);
}

Test(meta, topic_ids_unique)
{
    uint32_t ids[50];
    char name[16];

    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "t%d", i);
        cr_assert_eq(ulog__meta_topic_add(m, name, 1, &tc, NULL, NULL, &ids[i]), 0);
        for (int j = 0; j < i; j++)
            cr_assert_neq(ids[i], ids[j]);
        if (i == 25)
            reopen();
    }
}

Test(meta, topic_add_invalid)
{
    ulog__topic_cfg bad = tc;
    ulog__topic_rec r;
    uint32_t id;

    cr_expect_eq(ulog__meta_topic_add(m, "../x", 1, &tc, NULL, NULL, &id), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_add(m, "", 1, &tc, NULL, NULL, &id), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_add(m, NULL, 1, &tc, NULL, NULL, &id), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_add(m, "a", 0, &tc, NULL, NULL, &id), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_add(m, "a", 10001, &tc, NULL, NULL, &id), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_add(m, "a", 10000, &tc, NULL, NULL, &id), 0);
    cr_expect_eq(ulog__meta_topic_add(m, "b", 1, NULL, NULL, NULL, &id), ULOG_EINVAL);
    bad.segment_bytes = 1;
    cr_expect_eq(ulog__meta_topic_add(m, "b", 1, &bad, NULL, NULL, &id), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_add(m, "c", 1, &tc, NULL, NULL, NULL), 0, "id_out optional");
    cr_expect_eq(ulog__meta_topic_get(m, "b", &r), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_topic_get(m, "..", &r), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_topic_get(m, "a", NULL), ULOG_EINVAL);
}

Test(meta, topic_list_sorted)
{
    static const char *names[] = { "zeta", "Alpha", "beta", "_x", "alpha", "0" };
    static const char *sorted[] = { "0", "Alpha", "_x", "alpha", "beta", "zeta" };
    ulog_strlist *l;

    cr_assert_eq(ulog__meta_topic_list(m, &l), 0);
    cr_expect_eq(ulog_strlist_count(l), 0u);
    cr_expect_null(ulog_strlist_get(l, 0));
    ulog_strlist_free(l);

    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(ulog__meta_topic_add(m, names[i], 1, &tc, NULL, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_topic_list(m, &l), 0);
    cr_assert_eq(ulog_strlist_count(l), 6u);
    for (size_t i = 0; i < 6; i++)
        cr_expect_str_eq(ulog_strlist_get(l, i), sorted[i]);
    cr_expect_null(ulog_strlist_get(l, 6));
    ulog_strlist_free(l);
    ulog_strlist_free(NULL);
    cr_expect_eq(ulog_strlist_count(NULL), 0u);
    cr_expect_null(ulog_strlist_get(NULL, 0));
}

/* ---------------------------------------------------------------- offset index */

Test(meta, index_floor)
{
    ulog__index_entry e[] = {
        entry(1, 0, 0, 10), entry(1, 0, 100, 20), entry(1, 0, 200, 30),
        entry(1, 1, 50, 5), entry(2, 0, 1000, 5), entry(1, 0, 300, 40),
    };
    ulog__index_entry out;

    cr_assert_eq(ulog__meta_flush(m, e, 6, NULL, 0, NULL, NULL), 0);
    reopen();

    cr_assert_eq(ulog__meta_index_floor(m, 1, 0, 100, &out), 0, "exact");
    cr_expect_eq(out.offset, 100);
    cr_expect_eq(out.segment, 100);
    cr_expect_eq(out.pos, 1000);
    cr_expect_eq(out.max_timestamp, 20);
    cr_expect_eq(out.topic_id, 1u);
    cr_expect_eq(out.partition, 0);

    cr_assert_eq(ulog__meta_index_floor(m, 1, 0, 199, &out), 0, "between");
    cr_expect_eq(out.offset, 100);
    cr_assert_eq(ulog__meta_index_floor(m, 1, 0, 0, &out), 0);
    cr_expect_eq(out.offset, 0);
    cr_assert_eq(ulog__meta_index_floor(m, 1, 0, INT64_MAX, &out), 0, "past the last");
    cr_expect_eq(out.offset, 300);

    /* Partition 1 starts at 50: nothing of partition 0 may answer for it. */
    cr_expect_eq(ulog__meta_index_floor(m, 1, 1, 49, &out), ULOG_ENOENT, "below first");
    cr_assert_eq(ulog__meta_index_floor(m, 1, 1, 10000, &out), 0);
    cr_expect_eq(out.offset, 50);
    cr_expect_eq(out.partition, 1);
    /* Partition 2 and topic 3 are empty; neighbours on both sides exist. */
    cr_expect_eq(ulog__meta_index_floor(m, 1, 2, 10000, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_index_floor(m, 2, 0, 999, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_index_floor(m, 3, 0, 10000, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_index_floor(m, 0, 0, 10000, &out), ULOG_ENOENT);

    cr_expect_eq(ulog__meta_index_floor(m, 1, -1, 0, &out), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_index_floor(m, 1, 0, -1, &out), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_index_floor(m, 1, 0, 0, NULL), ULOG_EINVAL);
}

Test(meta, index_overwrite_and_big_keys)
{
    ulog__index_entry e = { UINT32_MAX, INT32_MAX, INT64_MAX, INT64_MAX, INT64_MAX, 1 }, out;

    cr_assert_eq(ulog__meta_flush(m, &e, 1, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_index_floor(m, UINT32_MAX, INT32_MAX, INT64_MAX, &out), 0);
    cr_expect_eq(out.offset, INT64_MAX);
    cr_expect_eq(out.segment, INT64_MAX);
    cr_expect_eq(out.pos, INT64_MAX);
    e.pos = 7;
    cr_assert_eq(ulog__meta_flush(m, &e, 1, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_index_floor(m, UINT32_MAX, INT32_MAX, INT64_MAX, &out), 0);
    cr_expect_eq(out.pos, 7);
}

Test(meta, flush_invalid_is_atomic)
{
    ulog__index_entry e[] = { entry(1, 0, 10, 1), entry(1, -1, 20, 2) }, out;
    ulog__checkpoint cp = { 1, 0, -5, 0, 0, 0 };

    cr_expect_eq(ulog__meta_flush(m, e, 2, NULL, 0, NULL, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_index_floor(m, 1, 0, 10, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_flush(m, e, 1, &cp, 1, NULL, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_index_floor(m, 1, 0, 10, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_flush(m, NULL, 1, NULL, 0, NULL, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_flush(m, NULL, 0, NULL, 0, NULL, NULL), 0);
    cr_expect_eq(ulog__meta_flush(NULL, e, 1, NULL, 0, NULL, NULL), ULOG_EINVAL);
}

/* ---------------------------------------------------------------- time index */

Test(meta, time_floor_signed)
{
    ulog__index_entry e[] = {
        entry(1, 0, 0, -1000), entry(1, 0, 10, -1), entry(1, 0, 20, 0),
        entry(1, 0, 30, 1), entry(1, 0, 40, 5000),
        entry(1, 1, 0, -2000),   /* another partition, earlier in time */
    };
    ulog__index_entry out;

    cr_assert_eq(ulog__meta_flush(m, e, 6, NULL, 0, NULL, NULL), 0);

    cr_expect_eq(ulog__meta_time_floor(m, 1, 0, -1000, &out), ULOG_ENOENT, "strictly below");
    cr_expect_eq(ulog__meta_time_floor(m, 1, 0, INT64_MIN, &out), ULOG_ENOENT);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, -999, &out), 0);
    cr_expect_eq(out.max_timestamp, -1000);
    cr_expect_eq(out.offset, 0);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 0, &out), 0);
    cr_expect_eq(out.max_timestamp, -1);
    cr_expect_eq(out.offset, 10);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 1, &out), 0);
    cr_expect_eq(out.max_timestamp, 0);
    cr_expect_eq(out.offset, 20);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 4999, &out), 0);
    cr_expect_eq(out.max_timestamp, 1);
    cr_expect_eq(out.offset, 30);
    cr_expect_eq(out.segment, 0);
    cr_expect_eq(out.pos, 300);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, INT64_MAX, &out), 0);
    cr_expect_eq(out.max_timestamp, 5000);
    cr_expect_eq(out.offset, 40);
    cr_expect_eq(out.topic_id, 1u);
    cr_expect_eq(out.partition, 0);

    cr_expect_eq(ulog__meta_time_floor(m, 1, 1, -2000, &out), ULOG_ENOENT);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 1, INT64_MAX, &out), 0);
    cr_expect_eq(out.max_timestamp, -2000);
    cr_expect_eq(out.partition, 1);
    cr_expect_eq(ulog__meta_time_floor(m, 1, 2, INT64_MAX, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_time_floor(m, 0, 0, INT64_MAX, &out), ULOG_ENOENT);
    cr_expect_eq(ulog__meta_time_floor(m, 1, -1, 0, &out), ULOG_EINVAL);
}

Test(meta, time_index_monotonic)
{
    /* Only strictly growing timestamps make entries, within one flush and
     * across flushes; INT64_MIN makes none. */
    ulog__index_entry a[] = {
        entry(1, 0, 0, 100), entry(1, 0, 10, 100), entry(1, 0, 20, 50),
        entry(1, 0, 30, INT64_MIN), entry(1, 0, 40, 200),
    };
    ulog__index_entry b[] = { entry(1, 0, 50, 150), entry(1, 0, 60, 200), entry(1, 0, 70, 201) };
    ulog__index_entry out;

    cr_assert_eq(ulog__meta_flush(m, a, 5, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 101, &out), 0);
    cr_expect_eq(out.offset, 0, "the first entry with timestamp 100 stays");
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 201, &out), 0);
    cr_expect_eq(out.offset, 40);

    reopen();
    cr_assert_eq(ulog__meta_flush(m, b, 3, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 201, &out), 0);
    cr_expect_eq(out.offset, 40, "150 and the repeated 200 were not stored");
    cr_assert_eq(ulog__meta_time_floor(m, 1, 0, 202, &out), 0);
    cr_expect_eq(out.offset, 70);

    /* The offset index has every entry, with or without a timestamp. */
    cr_assert_eq(ulog__meta_index_floor(m, 1, 0, 30, &out), 0);
    cr_expect_eq(out.offset, 30);
    cr_expect_eq(out.max_timestamp, INT64_MIN);

    /* A higher partition's newer entries do not hide this one's last. */
    ulog__index_entry c = entry(1, 1, 0, 10);
    cr_assert_eq(ulog__meta_flush(m, &c, 1, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 1, 11, &out), 0);
    cr_expect_eq(out.offset, 0);
}

/* ---------------------------------------------------------------- truncate */

static int count_index(uint32_t t, int32_t p, int64_t upto)
{
    ulog__index_entry out;
    int n = 0;

    for (int64_t off = upto; ulog__meta_index_floor(m, t, p, off, &out) == 0; n++) {
        if (out.offset > off)
            return -1;   /* a floor above its target: fail, don't loop */
        off = out.offset - 1;
    }
    return n;
}

Test(meta, truncate)
{
    /* Enough entries to span several LMDB pages, and neighbours on both
     * sides that must survive. */
    enum { N = 3000 };
    ulog__index_entry *e = calloc(N + 2, sizeof *e), out;
    ulog__checkpoint cp = { 1, 1, 2500 * 10, 7, 8, 99 }, got;

    cr_assert_not_null(e);
    for (int i = 0; i < N; i++)
        e[i] = entry(1, 1, (int64_t)i * 10, (int64_t)i * 3 - 4000);
    e[N] = entry(1, 0, 5, 1);
    e[N + 1] = entry(1, 2, 5, 1);
    cr_assert_eq(ulog__meta_flush(m, e, N + 2, &cp, 1, NULL, NULL), 0);
    cr_expect_eq(count_index(1, 1, INT64_MAX), N);

    cr_assert_eq(ulog__meta_truncate(m, 1, 1, 1005), 0);
    cr_expect_eq(count_index(1, 1, INT64_MAX), 101, "offsets 0..1000 remain");
    cr_assert_eq(ulog__meta_index_floor(m, 1, 1, INT64_MAX, &out), 0);
    cr_expect_eq(out.offset, 1000);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 1, INT64_MAX, &out), 0);
    cr_expect_eq(out.offset, 1000);
    cr_expect_eq(out.max_timestamp, 100 * 3 - 4000);
    cr_expect_eq(ulog__meta_checkpoint_get(m, 1, 1, &got), ULOG_ENOENT,
                 "checkpoint past the cut is dropped");
    cr_expect_eq(count_index(1, 0, INT64_MAX), 1);
    cr_expect_eq(count_index(1, 2, INT64_MAX), 1);
    cr_expect_eq(ulog__meta_time_floor(m, 1, 2, INT64_MAX, &out), 0);

    /* Cutting exactly at an entry removes it. */
    cr_assert_eq(ulog__meta_truncate(m, 1, 1, 1000), 0);
    cr_assert_eq(ulog__meta_index_floor(m, 1, 1, INT64_MAX, &out), 0);
    cr_expect_eq(out.offset, 990);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 1, INT64_MAX, &out), 0);
    cr_expect_eq(out.offset, 990);

    /* New entries after a cut may carry earlier timestamps again. */
    ulog__index_entry again = entry(1, 1, 1000, 99 * 3 - 4000 + 1);
    cr_assert_eq(ulog__meta_flush(m, &again, 1, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_time_floor(m, 1, 1, INT64_MAX, &out), 0);
    cr_expect_eq(out.offset, 1000);

    cr_assert_eq(ulog__meta_truncate(m, 1, 1, 0), 0);
    cr_expect_eq(count_index(1, 1, INT64_MAX), 0);
    cr_expect_eq(ulog__meta_time_floor(m, 1, 1, INT64_MAX, &out), ULOG_ENOENT);
    cr_expect_eq(count_index(1, 0, INT64_MAX), 1);
    cr_expect_eq(count_index(1, 2, INT64_MAX), 1);

    cr_assert_eq(ulog__meta_truncate(m, 9, 9, 0), 0, "nothing to delete is fine");
    cr_expect_eq(ulog__meta_truncate(m, 1, -1, 0), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_truncate(m, 1, 0, -1), ULOG_EINVAL);
    free(e);
}

/* ---------------------------------------------------------------- checkpoints */

Test(meta, checkpoints)
{
    ulog__checkpoint a = { 4, 2, 1000, 900, 4096, -7 }, b = { 4, 3, 5, 0, 61, INT64_MAX }, got;

    cr_expect_eq(ulog__meta_checkpoint_get(m, 4, 2, &got), ULOG_ENOENT);
    cr_assert_eq(ulog__meta_flush(m, NULL, 0, &a, 1, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_flush(m, NULL, 0, &b, 1, NULL, NULL), 0);
    reopen();
    cr_assert_eq(ulog__meta_checkpoint_get(m, 4, 2, &got), 0);
    cr_expect_eq(got.topic_id, 4u);
    cr_expect_eq(got.partition, 2);
    cr_expect_eq(got.offset, 1000);
    cr_expect_eq(got.segment, 900);
    cr_expect_eq(got.pos, 4096);
    cr_expect_eq(got.max_timestamp, -7);
    cr_assert_eq(ulog__meta_checkpoint_get(m, 4, 3, &got), 0);
    cr_expect_eq(got.max_timestamp, INT64_MAX);

    a.offset = 2000;
    a.pos = 8192;
    cr_assert_eq(ulog__meta_flush(m, NULL, 0, &a, 1, NULL, NULL), 0);
    cr_assert_eq(ulog__meta_checkpoint_get(m, 4, 2, &got), 0);
    cr_expect_eq(got.offset, 2000, "overwritten");
    cr_expect_eq(got.pos, 8192);

    /* A cut at or past the checkpoint keeps it. */
    cr_assert_eq(ulog__meta_truncate(m, 4, 2, 2000), 0);
    cr_expect_eq(ulog__meta_checkpoint_get(m, 4, 2, &got), 0);
    cr_assert_eq(ulog__meta_truncate(m, 4, 2, 1999), 0);
    cr_expect_eq(ulog__meta_checkpoint_get(m, 4, 2, &got), ULOG_ENOENT);
    cr_assert_eq(ulog__meta_checkpoint_get(m, 4, 3, &got), 0, "neighbour kept");
    cr_expect_eq(got.offset, 5);

    cr_expect_eq(ulog__meta_checkpoint_get(m, 4, -1, &got), ULOG_EINVAL);
    cr_expect_eq(ulog__meta_checkpoint_get(m, 4, 3, NULL), ULOG_EINVAL);
}

/* ---------------------------------------------------------------- errors.c */

Test(errors, names_and_messages)
{
    static const struct { int code; const char *name; } codes[] = {
        { ULOG_OK, "ULOG_OK" }, { ULOG_EINVAL, "ULOG_EINVAL" },
        { ULOG_ENOENT, "ULOG_ENOENT" }, { ULOG_EEXIST, "ULOG_EEXIST" },
        { ULOG_ETIMEDOUT, "ULOG_ETIMEDOUT" }, { ULOG_EOFFSET, "ULOG_EOFFSET" },
        { ULOG_ETOOBIG, "ULOG_ETOOBIG" }, { ULOG_ECORRUPT, "ULOG_ECORRUPT" },
        { ULOG_EIO, "ULOG_EIO" }, { ULOG_ENOSPC, "ULOG_ENOSPC" },
        { ULOG_ENOMEM, "ULOG_ENOMEM" }, { ULOG_EVERSION, "ULOG_EVERSION" },
        { ULOG_ENOTSUP, "ULOG_ENOTSUP" }, { ULOG_EACCES, "ULOG_EACCES" },
        { ULOG_EPOISONED, "ULOG_EPOISONED" }, { ULOG_ELIMIT, "ULOG_ELIMIT" },
        { ULOG_ECONFLICT, "ULOG_ECONFLICT" }, { ULOG_EAUTH, "ULOG_EAUTH" },
        { ULOG_ENOKEY, "ULOG_ENOKEY" },
    };
    enum { N = sizeof codes / sizeof codes[0] };

    for (int i = 0; i < N; i++) {
        cr_expect_str_eq(ulog_errname(codes[i].code), codes[i].name);
        cr_expect_str_neq(ulog_strerror(codes[i].code), "unknown error");
        for (int j = 0; j < i; j++) {
            cr_expect_neq(codes[i].code, codes[j].code);
            cr_expect_str_neq(ulog_errname(codes[i].code), ulog_errname(codes[j].code));
            cr_expect_str_neq(ulog_strerror(codes[i].code), ulog_strerror(codes[j].code));
        }
    }
    static const int unknown[] = { 1, 42, -19, -100, INT32_MIN, INT32_MAX, -30798 };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_expect_str_eq(ulog_errname(unknown[i]), "ULOG_UNKNOWN");
        cr_expect_str_eq(ulog_strerror(unknown[i]), "unknown error");
    }
}

Test(errors, errno_and_version)
{
    cr_expect_eq(ulog__errno_to_err(ENOSPC), ULOG_ENOSPC);
    cr_expect_eq(ulog__errno_to_err(EDQUOT), ULOG_ENOSPC);
    cr_expect_eq(ulog__errno_to_err(ENOMEM), ULOG_ENOMEM);
    cr_expect_eq(ulog__errno_to_err(EACCES), ULOG_EACCES);
    cr_expect_eq(ulog__errno_to_err(EPERM), ULOG_EACCES);
    cr_expect_eq(ulog__errno_to_err(EROFS), ULOG_EACCES);
    cr_expect_eq(ulog__errno_to_err(ENOENT), ULOG_ENOENT);
    cr_expect_eq(ulog__errno_to_err(EEXIST), ULOG_EEXIST);
    cr_expect_eq(ulog__errno_to_err(EMFILE), ULOG_ELIMIT);
    cr_expect_eq(ulog__errno_to_err(ENFILE), ULOG_ELIMIT);
    cr_expect_eq(ulog__errno_to_err(EFBIG), ULOG_ELIMIT);
    cr_expect_eq(ulog__errno_to_err(EINVAL), ULOG_EINVAL);
    cr_expect_eq(ulog__errno_to_err(EIO), ULOG_EIO);
    cr_expect_eq(ulog__errno_to_err(EBADF), ULOG_EIO);
    cr_expect_eq(ulog__errno_to_err(0), ULOG_EIO);

    cr_expect_str_eq(ulog_version_string(), ULOG_VERSION_STRING);
    cr_expect_eq(ulog_version_number(), ULOG_VERSION_NUMBER);
}

/* ---------------------------------------------------------------- sharing */

/* Two handles on one root in one process share the environment: closing
 * one must leave the other working (LMDB forbids a second open). */
Test(meta, same_root_shared_in_process)
{
    ulog__meta *m2 = NULL;
    ulog__checkpoint a = { 9, 0, 10, 0, 100, 5 }, got;

    cr_assert_eq(ulog__meta_open(root, 0640, 0750, &m2), 0);
    cr_expect_eq(m2, m, "the same root gives the same environment");
    cr_assert_eq(ulog__meta_flush(m2, NULL, 0, &a, 1, NULL, NULL), 0);
    ulog__meta_close(m2);
    cr_assert_eq(ulog__meta_checkpoint_get(m, 9, 0, &got), 0);
    cr_expect_eq(got.pos, 100);
}
