/* test_verify.c -- ulog_verify(): a clean root verifies, damage below the
 * committed end is found and located, the check goes on past it, and the
 * log is never changed. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char root[256];

static void setup(void)
{
    make_tmpdir(root, sizeof root, "verify");
}

static void teardown(void)
{
    if (root[0])
        rm_rf(root);
}

TestSuite(verify, .init = setup, .fini = teardown);

/* What the callback saw. */
typedef struct seen {
    int     calls, problems, stop_after;
    int64_t offset[8], resume[8];
    int     error[8];
    char    detail[8][512];
    int64_t last_done, last_total, last_parts;
} seen;

static int on_verify(const ulog_verify_info *in, void *arg)
{
    seen *s = arg;
    s->calls++;
    cr_assert_leq(in->records_done, in->records_total);
    cr_assert_geq(in->records_done, s->last_done, "progress went backwards");
    s->last_done = in->records_done;
    s->last_total = in->records_total;
    s->last_parts = in->partitions_done;
    if (in->error) {
        cr_assert_lt(s->problems, 8);
        s->offset[s->problems] = in->offset;
        s->resume[s->problems] = in->resume;
        s->error[s->problems] = in->error;
        snprintf(s->detail[s->problems], sizeof s->detail[0], "%s", in->detail);
        s->problems++;
    } else {
        cr_assert_null(in->detail);
    }
    return s->stop_after && s->calls >= s->stop_after ? 7 : 0;
}

/* One record per batch, 40-byte values, 4 KiB segments: ~80 per segment. */
static ulog *filled(const char *topic, int32_t parts, int n)
{
    ulog *log = open_with_topic(root, NULL, topic, parts,
                                cfg_of("segment.bytes", "4096", "flush.policy", "none", NULL));
    char v[40];
    for (int i = 0; i < n; i++) {
        memset(v, 'a' + i % 26, sizeof v);
        ulog_record r = { .key = &i, .key_len = sizeof i, .value = v, .value_len = sizeof v,
                          .timestamp = 1000 + i, .partition = i % parts };
        append_ok(log, topic, &r, 1);
    }
    return log;
}

/* Sorted segment base offsets of a partition. */
static size_t segments(const char *topic, int32_t part, int64_t *out, size_t cap)
{
    char dir[512];
    part_dir(dir, sizeof dir, root, topic, part);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (is_segment_name(de->d_name)) {
            cr_assert_lt(n, cap);
            out[n++] = strtoll(de->d_name, NULL, 10);
        }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x20;
    cr_assert_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

Test(verify, clean_root)
{
    ulog *log = filled("a", 3, 600);
    create_topic(log, "b", 2, cfg_of("segment.bytes", "4096", NULL));
    create_topic(log, "empty", 1, NULL);
    ulog_record r = { .value = "x", .value_len = 1, .timestamp = 5, .partition = 1 };
    append_ok(log, "b", &r, 1);

    seen s = { 0 };
    ulog_verify_info in = { .struct_size = sizeof in };
    cr_assert_eq(ulog_verify(log, NULL, on_verify, &s, &in), 0);
    cr_assert_eq(in.records_total, 601);
    cr_assert_eq(in.records_done, 601);
    cr_assert_eq(in.partitions_done, 6);
    cr_assert_eq(in.corrupt, 0);
    cr_assert_eq(s.problems, 0);
    cr_assert_eq(s.last_parts, 6, "the last report comes at the end");
    cr_assert_geq(s.calls, 7, "one report per partition and one at the end");

    /* One topic; no callback, no info. */
    cr_assert_eq(ulog_verify(log, "a", NULL, NULL, NULL), 0);
    ulog_verify_info one = { .struct_size = sizeof one };
    cr_assert_eq(ulog_verify(log, "b", NULL, NULL, &one), 0);
    cr_assert_eq(one.records_total, 1);
    cr_assert_eq(one.partitions_done, 2);
    ulog_close(log);
}

Test(verify, damage_is_found_located_and_passed)
{
    ulog *log = filled("t", 1, 1000);
    int64_t seg[64];
    size_t nseg = segments("t", 0, seg, 64);
    cr_assert_geq(nseg, 5);
    ulog_close(log);

    /* A byte inside the first batch of the third segment (in its value). */
    char path[512];
    seg_path(path, sizeof path, root, "t", 0, seg[2]);
    flip_byte(path, ULOG__BATCH_HEADER_SIZE + 30);
    struct stat before;
    cr_assert_eq(stat(path, &before), 0);

    log = open_at(root, NULL);
    seen s = { 0 };
    ulog_verify_info in = { .struct_size = sizeof in };
    cr_assert_eq(ulog_verify(log, "t", on_verify, &s, &in), ULOG_ECORRUPT);
    cr_assert_eq(s.problems, 1);
    cr_assert_eq(s.error[0], ULOG_ECORRUPT);
    cr_assert_eq(s.offset[0], seg[2]);
    cr_assert_eq(s.resume[0], seg[3], "the check goes on at the next segment");
    cr_assert_not_null(strstr(s.detail[0], "segment"), "detail: %s", s.detail[0]);
    cr_assert_eq(in.corrupt, 1);
    cr_assert_eq(in.records_done, 1000, "every offset is checked or passed over");

    /* Nothing changed: the file and the watermarks are as they were. */
    struct stat after;
    cr_assert_eq(stat(path, &after), 0);
    cr_assert_eq(after.st_size, before.st_size);
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_assert_eq(hi, 1000);

    /* Damage in the last segment: the rest up to high is not verified. */
    seg_path(path, sizeof path, root, "t", 0, seg[nseg - 1]);
    flip_byte(path, ULOG__BATCH_HEADER_SIZE + 30);
    memset(&s, 0, sizeof s);
    cr_assert_eq(ulog_verify(log, NULL, on_verify, &s, &in), ULOG_ECORRUPT);
    cr_assert_eq(s.problems, 2);
    cr_assert_eq(s.offset[1], seg[nseg - 1]);
    cr_assert_eq(s.resume[1], 1000);
    ulog_close(log);
}

Test(verify, truncated_middle_segment)
{
    ulog *log = filled("t", 1, 600);
    int64_t seg[64];
    size_t nseg = segments("t", 0, seg, 64);
    cr_assert_geq(nseg, 3);
    ulog_close(log);
    char path[512];
    seg_path(path, sizeof path, root, "t", 0, seg[1]);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size / 2), 0);

    log = open_at(root, NULL);
    seen s = { 0 };
    cr_assert_eq(ulog_verify(log, "t", on_verify, &s, NULL), ULOG_ECORRUPT);
    cr_assert_eq(s.problems, 1);
    cr_assert_gt(s.offset[0], seg[1]);
    cr_assert_lt(s.offset[0], seg[2], "found where the cut file ends");
    cr_assert_eq(s.resume[0], seg[2]);
    cr_assert_eq(s.last_done, s.last_total, "the missing offsets count as passed over");
    ulog_close(log);
}

Test(verify, callback_stops_it)
{
    ulog *log = filled("t", 2, 10);
    seen s = { .stop_after = 1 };
    cr_assert_eq(ulog_verify(log, NULL, on_verify, &s, NULL), 7);
    cr_assert_eq(s.calls, 1);
    ulog_close(log);
}

Test(verify, bad_arguments)
{
    ulog *log = filled("t", 1, 3);
    ulog_verify_info small = { .struct_size = sizeof small - 1 };
    cr_assert_eq(ulog_verify(NULL, NULL, NULL, NULL, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_verify(log, NULL, NULL, NULL, &small), ULOG_EINVAL);
    cr_assert_eq(ulog_verify(log, "nosuch", NULL, NULL, NULL), ULOG_ENOENT);
    cr_assert_eq(ulog_verify(log, "bad/name", NULL, NULL, NULL), ULOG_EINVAL);
    ulog_close(log);
}

Test(verify, truncated_last_segment)
{
    ulog *log = filled("t", 1, 300);
    int64_t seg[64];
    size_t nseg = segments("t", 0, seg, 64);
    cr_assert_geq(nseg, 2);
    ulog_close(log);
    char path[512];
    seg_path(path, sizeof path, root, "t", 0, seg[nseg - 1]);
    cr_assert_eq(truncate(path, 0), 0);

    /* The head is still valid for this boot, so the open does not scan:
     * committed records are missing, and verify says which. */
    log = open_at(root, NULL);
    seen s = { 0 };
    ulog_verify_info in = { .struct_size = sizeof in };
    cr_assert_eq(ulog_verify(log, "t", on_verify, &s, &in), ULOG_ECORRUPT);
    cr_assert_eq(s.problems, 1);
    cr_assert_eq(s.offset[0], seg[nseg - 1]);
    cr_assert_eq(s.resume[0], 300);
    cr_assert_not_null(strstr(s.detail[0], "committed records missing"), "detail: %s", s.detail[0]);
    cr_assert_eq(in.records_done, 300);
    ulog_close(log);
}
