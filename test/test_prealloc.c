/*
 * test_prealloc.c -- preallocated segments (topic setting "preallocate"):
 * the active segment is allocated to segment.bytes when it is created,
 * closed segments are trimmed to their last batch before the next one takes
 * writes, live readers follow rolls, and recovery after a reboot finds the
 * end by validating batches, not by file size. Also the same for flush.policy
 * always, whose active segment is sized ahead of its data a MiB at a time.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "testutil.h"

static char root[256];
SCRATCH_SUITE(prealloc, root);

#define SEG 65536

static ulog *open_prealloc(const char *policy)
{
    return open_with_topic(root, NULL, "p", 1,
                           cfg_of("preallocate", "true", "segment.bytes", "65536",
                                  "flush.policy", policy, NULL));
}

static int64_t file_size(int64_t base)
{
    char path[700];
    struct stat st;
    seg_path(path, sizeof path, root, "p", 0, base);
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

/* Where the last batch of segment `base` ends. */
static int64_t data_end(int64_t base)
{
    char path[700];
    seg_path(path, sizeof path, root, "p", 0, base);
    return seg_data_bytes(path);
}

static void append_n(ulog *log, int64_t first, int n)
{
    for (int i = 0; i < n; i++) {
        char v[200];
        snprintf(v, sizeof v, "%0150lld", (long long)(first + i));
        ulog_record r = { .value = v, .value_len = strlen(v),
                          .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 };
        int rc = ulog_append(log, "p", &r, 1);
        cr_assert_eq(rc, 0, "append: %s", ulog_errname(rc));
        cr_assert_eq(r.offset, first + i);
    }
}

/* Polls everything; checks it is exactly values 0..n-1 in offset order. */
static void expect_all(ulog *log, int64_t n)
{
    ulog_sub *s = sub_earliest(log, "p");
    ulog_msg m;
    int64_t k = 0;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        char want[200];
        snprintf(want, sizeof want, "%0150lld", (long long)k);
        cr_assert_eq(m.offset, k);
        cr_assert_eq(m.value_len, strlen(want));
        cr_assert_eq(memcmp(m.value, want, m.value_len), 0, "value at %lld", (long long)k);
        k++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "poll: %s", ulog_errname(rc));
    cr_assert_eq(k, n);
    ulog_sub_close(s);
}

Test(prealloc, active_allocated_closed_trimmed)
{
    ulog *log = open_prealloc("always");
    cr_expect_eq(file_size(0), SEG, "a new segment is allocated to segment.bytes");
    append_n(log, 0, 1200);             /* ~220 KB: several rolls */
    ulog_partition_info info = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "p", 0, &info), 0);
    cr_assert_geq(info.segments, 3);

    char pd[600];
    part_dir(pd, sizeof pd, root, "p", 0);
    int64_t bases[64];
    int nb = 0;
    DIR *d = opendir(pd);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (is_segment_name(de->d_name))
            bases[nb++] = strtoll(de->d_name, NULL, 10);
    closedir(d);
    int64_t last = 0;
    for (int i = 0; i < nb; i++)
        if (bases[i] > last)
            last = bases[i];
    for (int i = 0; i < nb; i++) {
        if (bases[i] == last)
            cr_expect_eq(file_size(bases[i]), SEG, "the active segment stays allocated");
        else
            cr_expect_eq(file_size(bases[i]), data_end(bases[i]),
                         "closed segment %lld trimmed to its last batch", (long long)bases[i]);
    }
    expect_all(log, 1200);
    ulog_close(log);
}

/* A reader polling while the writer rolls: it must move on at each trim
 * and never read the zeros of the allocated tail as data. */
Test(prealloc, live_reader_follows_rolls)
{
    ulog *log = open_prealloc("none");
    ulog_sub *s = sub_earliest(log, "p");
    int64_t k = 0;
    for (int round = 0; round < 40; round++) {
        append_n(log, round * 50, 50);
        ulog_msg m;
        int rc;
        while ((rc = ulog_poll(s, 0, &m)) == 0) {
            cr_assert_eq(m.offset, k, "offset order");
            k++;
        }
        cr_assert_eq(rc, ULOG_ETIMEDOUT, "poll: %s", ulog_errname(rc));
        cr_assert_eq(k, (round + 1) * 50);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

/* After a reboot the active segment's allocated zeros are not data: the
 * scan ends at the last batch, and appends continue right after it. */
Test(prealloc, reboot_recovery_finds_the_end_by_batches)
{
    ulog *log = open_prealloc("always");
    append_n(log, 0, 700);
    ulog_close(log);
    delete_heads(root, "p", 1, false);
    log = open_at(root, NULL);
    int64_t lo, hi;
    watermarks(log, "p", 0, &lo, &hi);
    cr_assert_eq(hi, 700);
    append_n(log, 700, 300);
    expect_all(log, 1000);
    ulog_close(log);
    delete_heads(root, "p", 1, false);
    log = open_at(root, NULL);
    expect_all(log, 1000);
    ulog_close(log);
}

/* An always topic without preallocate: its active segment is sized ahead
 * of the data, 256 KiB at a time, so that a synced append does not also
 * write the inode; the bytes a partition reports are its data, and a
 * reopen, a recovery and a roll each leave the records as they were. */
#define AHEAD (256 << 10)

static int64_t round_up(int64_t n)
{
    return (n + AHEAD - 1) / AHEAD * AHEAD;
}

static ulog *open_synced(const char *policy, const char *segment_bytes)
{
    return open_with_topic(root, NULL, "p", 1,
                           cfg_of("segment.bytes", segment_bytes, "flush.policy", policy,
                                  NULL));
}

static int64_t described_bytes(ulog *log)
{
    ulog_partition_info info = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "p", 0, &info), 0);
    return info.bytes;
}

Test(prealloc, always_segment_sized_ahead_of_its_data)
{
    ulog *log = open_synced("always", "1073741824");
    append_n(log, 0, 1);
    cr_expect_eq(file_size(0), AHEAD, "sized ahead at the first append");
    cr_expect_eq(described_bytes(log), data_end(0), "bytes: the data, not the zeros");
    append_n(log, 1, 6999);             /* ~1.2 MB */
    cr_expect_gt(data_end(0), 4 * AHEAD);
    cr_expect_eq(file_size(0), round_up(data_end(0)), "sized again each time it is full");
    cr_expect_eq(described_bytes(log), data_end(0));
    ulog_close(log);

    log = open_at(root, NULL);          /* head trusted: nothing to cut */
    expect_all(log, 7000);
    append_n(log, 7000, 10);
    ulog_close(log);

    delete_heads(root, "p", 1, false);  /* a reboot: the scan ends at the zeros */
    log = open_at(root, NULL);
    int64_t lo, hi;
    watermarks(log, "p", 0, &lo, &hi);
    cr_assert_eq(hi, 7010);
    cr_expect_eq(file_size(0), data_end(0), "recovery cut the zeros like a torn tail");
    append_n(log, 7010, 10);
    cr_expect_eq(file_size(0), round_up(data_end(0)), "and the next append sized it again");
    expect_all(log, 7020);
    ulog_close(log);
}

Test(prealloc, sized_ahead_segments_are_trimmed_at_the_roll)
{
    ulog *log = open_synced("always", "65536");
    append_n(log, 0, 1200);             /* ~220 KB: several rolls */
    char pd[600];
    part_dir(pd, sizeof pd, root, "p", 0);
    int64_t last = -1, closed = 0;
    DIR *d = opendir(pd);
    struct dirent *de;
    int64_t bases[64];
    int nb = 0;
    while ((de = readdir(d)) != NULL)
        if (is_segment_name(de->d_name) && nb < 64)
            bases[nb++] = strtoll(de->d_name, NULL, 10);
    closedir(d);
    for (int i = 0; i < nb; i++)
        if (bases[i] > last)
            last = bases[i];
    for (int i = 0; i < nb; i++) {
        if (bases[i] == last) {
            cr_expect_eq(file_size(last), SEG, "sized to segment.bytes, not past it");
        } else {
            cr_expect_eq(file_size(bases[i]), data_end(bases[i]),
                         "closed segment %lld trimmed", (long long)bases[i]);
            closed++;
        }
    }
    cr_expect_geq(closed, 2);
    expect_all(log, 1200);
    ulog_close(log);
}

/* Without syncs there is nothing to gain: the file is its data. */
Test(prealloc, none_topics_grow_with_their_data)
{
    ulog *log = open_synced("none", "1073741824");
    append_n(log, 0, 100);
    cr_expect_eq(file_size(0), data_end(0));
    ulog_close(log);
}

/* preallocate=true: the first segment keeps its allocation through the
 * partition's first open (which, with a new head, runs the recovery scan
 * that cuts zeros in the last segment) -- it used to end up growing with
 * each write like any other. */
Test(prealloc, first_segment_allocated_when_written)
{
    ulog *log = open_prealloc("always");
    append_n(log, 0, 10);
    cr_expect_eq(file_size(0), SEG);
    cr_expect_eq(described_bytes(log), data_end(0));
    expect_all(log, 10);
    ulog_close(log);
}
