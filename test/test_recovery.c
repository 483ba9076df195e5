/* test_recovery.c -- torn tails and damaged batches.
 *
 * On-disk layout: <root>/topics/<topic>/<partition>/<20-digit base>.log
 * segments, plus `head`, a small file every process maps shared. `head` lives
 * in the page cache and is trusted while its boot id matches the running
 * kernel's; after a reboot it is not, and opening the partition runs the
 * recovery scan (from the last LMDB checkpoint, verifying every batch and
 * cutting at the first invalid byte). These tests cannot reboot, so they
 * force that scan the only way a test can: by deleting the partition's `head`
 * file while no process has the log open. A missing head is an invalid head.
 *
 * The damaged logs are made by a child process that appends and exits
 * without ulog_close(), as a crashed writer would: its last batches are then
 * past the recovery checkpoint (index.flush.ms is long, so no checkpoint is
 * written while it runs), which is exactly the tail a real crash can tear.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static char root[256];

SCRATCH_SUITE(recovery, root);

#define T0 1700000000000LL

/* The record at offset `off`: everything derived from the offset. */
typedef struct recbuf {
    char    key[32];
    uint8_t val[512];
    char    hval[32];
    ulog_header h;
} recbuf;

static size_t pad_of(int64_t off, size_t big)
{
    return big ? big : (size_t)(off % 13);
}

static void make_rec(ulog_record *r, recbuf *b, int64_t off, size_t big)
{
    memset(r, 0, sizeof *r);
    if (off % 3) {
        r->key = b->key;
        r->key_len = (size_t)snprintf(b->key, sizeof b->key, "key-%lld", (long long)off);
    }
    size_t n = 8 + pad_of(off, big);
    for (size_t i = 0; i < n; i++)
        b->val[i] = i < 8 ? (uint8_t)((uint64_t)off >> (8 * i)) : (uint8_t)mix64((uint64_t)off * 1000 + i);
    r->value = b->val;
    r->value_len = n;
    if (off % 2 == 0) {
        b->h.key = "h";
        b->h.key_len = 1;
        b->h.value = b->hval;
        b->h.value_len = (size_t)snprintf(b->hval, sizeof b->hval, "%lld", (long long)off);
        r->headers = &b->h;
        r->header_count = 1;
    }
    r->timestamp = T0 + off;
    r->partition = 0;
}

static void check_msg(const ulog_msg *m, int64_t off, size_t big)
{
    recbuf b;
    ulog_record r;
    make_rec(&r, &b, off, big);
    cr_assert_eq(m->offset, off);
    cr_assert_eq(m->timestamp, r.timestamp, "offset %lld: timestamp", (long long)off);
    cr_assert_eq(m->key_len, r.key_len);
    if (r.key)
        cr_assert(m->key && memcmp(m->key, r.key, r.key_len) == 0, "offset %lld: key",
                  (long long)off);
    else
        cr_assert_null(m->key, "offset %lld: key must be null", (long long)off);
    cr_assert_eq(m->value_len, r.value_len, "offset %lld: value_len", (long long)off);
    cr_assert(memcmp(m->value, r.value, r.value_len) == 0, "offset %lld: value", (long long)off);
    cr_assert_eq(m->header_count, r.header_count);
    if (r.header_count) {
        ulog_header h;
        cr_assert_eq(ulog_msg_header(m, 0, &h), 0);
        cr_assert_eq(h.key_len, 1);
        cr_assert_eq(h.value_len, r.headers[0].value_len);
        cr_assert(memcmp(h.value, r.headers[0].value, h.value_len) == 0);
    }
}

/* Appends records [first, first + n) as one batch; 0 or an error code. */
static int append_range(ulog *log, const char *topic, int64_t first, size_t n, size_t big)
{
    recbuf b[32];
    ulog_record r[32];
    if (n > 32)
        return ULOG_EINVAL;
    for (size_t i = 0; i < n; i++)
        make_rec(&r[i], &b[i], first + (int64_t)i, big);
    int rc = ulog_append(log, topic, r, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (r[i].offset != first + (int64_t)i)
            return ULOG_ECORRUPT;
    return 0;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

/* Reads the whole file. Caller frees. */
static uint8_t *slurp(const char *path, size_t *len)
{
    int64_t sz = file_size(path);
    cr_assert_geq(sz, 0, "%s missing", path);
    uint8_t *b = malloc((size_t)sz + 1);
    cr_assert_not_null(b);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, b, (size_t)sz, 0), sz);
    close(fd);
    *len = (size_t)sz;
    return b;
}

static void write_at(const char *path, const void *buf, size_t n, int64_t pos)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(pwrite(fd, buf, n, (off_t)pos), (ssize_t)n);
    close(fd);
}

static void flip_bit(const char *path, int64_t pos, int bit)
{
    uint8_t c;
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &c, 1, (off_t)pos), 1);
    c ^= (uint8_t)(1u << bit);
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)pos), 1);
    close(fd);
}

/* One batch as found on disk. */
typedef struct batch_loc {
    int64_t seg;        /* segment base */
    int64_t pos;        /* byte position in the segment */
    int64_t size;       /* frame size */
    int64_t base;       /* base offset */
    int32_t count;
} batch_loc;

typedef struct layout {
    batch_loc b[256];
    int       n;
    int64_t   segs[16];
    int       nsegs;
} layout;

/* Walks every segment of partition 0, checking each batch. */
static void read_layout(const char *dir, const char *topic, layout *l)
{
    char pd[600];
    part_dir(pd, sizeof pd, dir, topic, 0);
    DIR *d = opendir(pd);
    cr_assert_not_null(d);
    struct dirent *de;
    l->n = l->nsegs = 0;
    while ((de = readdir(d)) != NULL) {
        if (!is_segment_name(de->d_name))
            continue;
        cr_assert_lt(l->nsegs, 16);
        l->segs[l->nsegs++] = strtoll(de->d_name, NULL, 10);
    }
    closedir(d);
    for (int i = 0; i < l->nsegs; i++)         /* sort */
        for (int j = i + 1; j < l->nsegs; j++)
            if (l->segs[j] < l->segs[i]) {
                int64_t t = l->segs[i];
                l->segs[i] = l->segs[j];
                l->segs[j] = t;
            }
    for (int i = 0; i < l->nsegs; i++) {
        char sp[700];
        seg_path(sp, sizeof sp, dir, topic, 0, l->segs[i]);
        size_t len;
        uint8_t *buf = slurp(sp, &len);
        /* The writer died with its file sized ahead: zeros follow. */
        len = (size_t)seg_data_bytes(sp);
        size_t pos = 0;
        while (pos < len) {
            size_t frame;
            ulog__batch_hdr h;
            cr_assert_eq(ulog__batch_frame_size(buf + pos, len - pos, &frame), 0);
            cr_assert_eq(ulog__batch_verify(buf + pos, len - pos, &h), 0);
            cr_assert_lt(l->n, 256);
            l->b[l->n++] = (batch_loc){ l->segs[i], (int64_t)pos, (int64_t)frame,
                                        h.base_offset, h.record_count };
            pos += frame;
        }
        free(buf);
    }
}

/*
 * The template: a child process appends batches of the given sizes to topic
 * "t" (one partition, flush.policy always), closing and reopening the log
 * after `close_after` batches, and exits without closing after the rest.
 * `big` > 0 gives every record that much padding (to fill segments).
 */
static void make_template(const char *dir, const char *segment_bytes, const size_t *sizes,
                          int nbatches, int close_after, size_t big)
{
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        ulog_config *lc = cfg_try("index.flush.ms", "60000", NULL);
        ulog_config *tc = cfg_try("segment.bytes", segment_bytes, "flush.policy", "always", NULL);
        ulog *log = NULL;
        if (!lc || !tc || ulog_open(dir, lc, &log) != 0 || ulog_topic_create(log, "t", 1, tc) != 0)
            _exit(2);
        int64_t next = 0;
        for (int i = 0; i < nbatches; i++) {
            if (i == close_after) {
                ulog_close(log);
                if (ulog_open(dir, lc, &log) != 0)
                    _exit(3);
            }
            if (append_range(log, "t", next, sizes[i], big) != 0)
                _exit(4);
            next += (int64_t)sizes[i];
        }
        _exit(0);       /* no ulog_close: a crash */
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "template child failed: status %d", st);
    delete_heads(dir, "t", 1, false);
}

static const size_t small_plan[] = { 3, 1, 5, 2, 2, 4, 3 };
#define SMALL_N 7
#define SMALL_RECORDS 20

/* Polls records [from, to) from s, checking each against make_rec(), and
 * then finds nothing more. */
static void expect_records(ulog_sub *s, int64_t from, int64_t to, size_t big, const char *what)
{
    ulog_msg m;
    for (int64_t i = from; i < to; i++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, 0, "%s: poll %lld: %s", what, (long long)i, ulog_errname(rc));
        check_msg(&m, i, big);
    }
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT, "%s: a record past %lld", what,
                 (long long)to);
}

/*
 * Opens the damaged copy and checks: high watermark `high`; segment `seg`
 * cut to `seg_size` bytes and nothing after it; every record below `high`
 * intact; appending continues at `high`.
 */
static void check_recovered(const char *dir, int64_t high, int64_t seg, int64_t seg_size,
                            size_t big, const char *what)
{
    ulog *log = open_at(dir, NULL);
    int64_t lo = -1, hi = -1;
    int rc = ulog_watermarks(log, "t", 0, &lo, &hi);
    cr_assert_eq(rc, 0, "%s: watermarks: %s", what, ulog_errname(rc));
    cr_assert_eq(lo, 0, "%s: low %lld", what, (long long)lo);
    cr_assert_eq(hi, high, "%s: high %lld, expected %lld", what, (long long)hi, (long long)high);
    char sp[700];
    seg_path(sp, sizeof sp, dir, "t", 0, seg);
    layout l;
    read_layout(dir, "t", &l);
    if (seg_size == 0 && seg > 0 && file_size(sp) < 0) {
        /* An emptied segment after another may go altogether. */
        cr_assert_lt(l.segs[l.nsegs - 1], seg, "%s: a segment after %lld survived", what,
                     (long long)seg);
    } else {
        cr_assert_eq(file_size(sp), seg_size, "%s: segment %lld is %lld bytes, expected %lld",
                     what, (long long)seg, (long long)file_size(sp), (long long)seg_size);
        cr_assert_eq(l.segs[l.nsegs - 1], seg, "%s: a segment after %lld survived", what,
                     (long long)seg);
    }

    ulog_sub *s = sub_earliest(log, "t");
    expect_records(s, 0, high, big, what);
    rc = append_range(log, "t", high, 2, big);
    cr_assert_eq(rc, 0, "%s: append after recovery: %s", what, ulog_errname(rc));
    expect_records(s, high, high + 2, big, what);
    ulog_sub_close(s);
    ulog_close(log);
}

/* Where the cases' template lives: root/template. */
static void template_path(char *out, size_t n)
{
    snprintf(out, n, "%s/template", root);
}

/* Makes the template (see make_template), named in tpl, and returns its
 * last batch; *l gets its whole layout. */
static batch_loc template_at(char *tpl, size_t n, const char *segment_bytes,
                             const size_t *sizes, int nbatches, int close_after, size_t big,
                             layout *l)
{
    template_path(tpl, n);
    make_template(tpl, segment_bytes, sizes, nbatches, close_after, big);
    read_layout(tpl, "t", l);
    return l->n ? l->b[l->n - 1] : (batch_loc){ 0, 0, 0, 0, 0 };
}

/* The template most cases damage: small_plan, closed and reopened once. */
static batch_loc small_template(char *tpl, size_t n, layout *l)
{
    return template_at(tpl, n, "1048576", small_plan, SMALL_N, 4, 0, l);
}

/* Case i: a fresh copy of the template tpl in cd, and in sp the path of
 * that copy's segment `seg` (to damage). */
static void new_case(char *cd, size_t ncd, char *sp, size_t nsp, const char *tpl, int i,
                     int64_t seg)
{
    snprintf(cd, ncd, "%s/case-%d", root, i);
    copy_tree(tpl, cd);
    seg_path(sp, nsp, cd, "t", 0, seg);
}

/* An empty file at path (a segment a writer created and never wrote). */
static void touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0640);
    cr_assert_geq(fd, 0);
    close(fd);
}

/* ------------------------------------------------ cuts */

/* Every cut position in the last batch; with `sample`, every one in its
 * header and its last bytes and every 16th in between. */
static void cut_cases(const char *segment_bytes, const size_t *plan, int nplan, int close_after,
                      size_t big, bool sample)
{
    char tpl[300];
    layout l;
    batch_loc last = template_at(tpl, sizeof tpl, segment_bytes, plan, nplan, close_after, big,
                                 &l);
    cr_assert_eq(l.n, nplan);
    int64_t t0 = mono_ns();
    int cases = 0;
    for (int64_t cut = last.pos; cut < last.pos + last.size; cut++) {
        int64_t in = cut - last.pos;
        if (sample && in > ULOG__BATCH_HEADER_SIZE + 8 && in < last.size - 4 && in % 16)
            continue;
        char cd[300], sp[700], what[64];
        new_case(cd, sizeof cd, sp, sizeof sp, tpl, cases, last.seg);
        cr_assert_eq(truncate(sp, (off_t)cut), 0);
        snprintf(what, sizeof what, "cut at %lld of [%lld, %lld)", (long long)cut,
                 (long long)last.pos, (long long)(last.pos + last.size));
        check_recovered(cd, last.base, last.seg, last.pos, big, what);
        rm_rf(cd);
        cases++;
    }
    cr_log_info("%d cuts of a %lld-byte last batch at segment %lld pos %lld, %.0f ms", cases,
                (long long)last.size, (long long)last.seg, (long long)last.pos,
                (double)(mono_ns() - t0) / 1e6);
}

Test(recovery, every_cut_in_last_batch, .timeout = 120)
{
    cut_cases("1048576", small_plan, SMALL_N, 4, 0, false);
}

/* The last batch is the first of a freshly rolled segment. */
Test(recovery, every_cut_in_last_batch_after_roll, .timeout = 120)
{
    /* One-record batches of about 390 bytes: ten fill a 4096-byte segment,
     * the eleventh rolls. */
    static const size_t plan[11] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    char tpl[300];
    cut_cases("4096", plan, 11, 5, 300, true);
    template_path(tpl, sizeof tpl);
    layout l;
    read_layout(tpl, "t", &l);
    cr_assert_eq(l.nsegs, 2, "the plan must roll exactly once");
    cr_assert_eq(l.b[l.n - 1].pos, 0, "the last batch must start its segment");
}

/* ------------------------------------------------ flipped bits */

Test(recovery, flipped_bit_in_last_batch, .timeout = 120)
{
    char tpl[300];
    layout l;
    batch_loc last = small_template(tpl, sizeof tpl, &l);
    int cases = 0;
    for (int64_t i = 0; i < last.size; i++) {
        /* partitionLeaderEpoch (bytes 12..15) is outside Kafka's CRC and
         * carries no meaning here: a flip there is not detectable. */
        if (i >= 12 && i < 16)
            continue;
        char cd[300], sp[700], what[96];
        new_case(cd, sizeof cd, sp, sizeof sp, tpl, cases, last.seg);
        int bit = (int)(i % 8);
        flip_bit(sp, last.pos + i, bit);
        snprintf(what, sizeof what, "bit %d of byte %lld of the last batch (%s)", bit,
                 (long long)i,
                 i < 8 ? "baseOffset" : i < 12 ? "batchLength" : i == 16 ? "magic"
                 : i < 21 ? "crc" : i < ULOG__BATCH_HEADER_SIZE ? "header" : "records");
        check_recovered(cd, last.base, last.seg, last.pos, 0, what);
        rm_rf(cd);
        cases++;
    }
    cr_log_info("%d bit flips in the last batch", cases);
}

/* ------------------------------------------------ garbage and zeros */

typedef enum { G_RANDOM, G_ZEROS, G_DUP_LAST, G_NEXT_BAD_CRC, G_ZERO_LAST } garbage;

Test(recovery, garbage_and_zero_tails, .timeout = 120)
{
    char tpl[300];
    layout l;
    batch_loc last = small_template(tpl, sizeof tpl, &l);
    int64_t end = last.pos + last.size;
    static const size_t lens[] = { 1, 11, 12, 13, 61, 100, 4096, 70000 };
    int cases = 0;
    for (garbage g = G_RANDOM; g <= G_ZERO_LAST; g++) {
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            if ((g == G_DUP_LAST || g == G_NEXT_BAD_CRC || g == G_ZERO_LAST) && k > 0)
                break;
            char cd[300], sp[700], what[96];
            new_case(cd, sizeof cd, sp, sizeof sp, tpl, cases, last.seg);
            size_t blen;
            uint8_t *seg = slurp(sp, &blen);
            int64_t high = SMALL_RECORDS, keep = end;
            switch (g) {
            case G_RANDOM: {
                uint8_t *b = malloc(lens[k]);
                for (size_t i = 0; i < lens[k]; i++)
                    b[i] = (uint8_t)mix64(k * 100000 + i);
                write_at(sp, b, lens[k], end);
                free(b);
                snprintf(what, sizeof what, "%zu random bytes appended", lens[k]);
                break;
            }
            case G_ZEROS: {
                uint8_t *b = calloc(1, lens[k]);
                write_at(sp, b, lens[k], end);
                free(b);
                snprintf(what, sizeof what, "%zu zero bytes appended", lens[k]);
                break;
            }
            case G_DUP_LAST:
                /* A whole valid batch again, with a stale baseOffset. */
                write_at(sp, seg + last.pos, (size_t)last.size, end);
                snprintf(what, sizeof what, "last batch written twice");
                break;
            case G_NEXT_BAD_CRC: {
                /* The right next baseOffset, a bad CRC. */
                uint8_t *b = malloc((size_t)last.size);
                memcpy(b, seg + last.pos, (size_t)last.size);
                ulog__batch_set_base_offset(b, SMALL_RECORDS);
                b[ULOG__BATCH_HEADER_SIZE + 3] ^= 0x40;
                write_at(sp, b, (size_t)last.size, end);
                free(b);
                snprintf(what, sizeof what, "next batch with a bad CRC appended");
                break;
            }
            case G_ZERO_LAST: {
                /* The file grew but the last batch's data never landed. */
                uint8_t *b = calloc(1, (size_t)last.size);
                write_at(sp, b, (size_t)last.size, last.pos);
                free(b);
                high = last.base;
                keep = last.pos;
                snprintf(what, sizeof what, "last batch zeroed");
                break;
            }
            }
            free(seg);
            check_recovered(cd, high, last.seg, keep, 0, what);
            rm_rf(cd);
            cases++;
        }
    }
    cr_log_info("%d garbage/zero tail cases", cases);
}

/* ------------------------------------------------ leftover segments */

Test(recovery, leftover_empty_segment_past_end, .timeout = 60)
{
    char tpl[300];
    layout l;
    batch_loc last = small_template(tpl, sizeof tpl, &l);
    int64_t end = last.pos + last.size;

    /* 1. An empty segment whose base is past the end (a writer rolled,
     *    then the tail before the roll was lost): removed. */
    {
        char cd[300], ep[700];
        new_case(cd, sizeof cd, ep, sizeof ep, tpl, 1, SMALL_RECORDS + 5);
        touch(ep);
        check_recovered(cd, SMALL_RECORDS, last.seg, end, 0, "empty segment past the end");
        cr_assert_eq(file_size(ep), -1, "the leftover segment %s was not removed", ep);
        rm_rf(cd);
    }
    /* 2. The realistic crash after a roll: the last batch of segment 0 is
     *    torn and the new, empty segment named after the old end exists. */
    {
        char cd[300], sp[700], ep[700];
        new_case(cd, sizeof cd, sp, sizeof sp, tpl, 2, last.seg);
        cr_assert_eq(truncate(sp, (off_t)(last.pos + last.size / 2)), 0);
        seg_path(ep, sizeof ep, cd, "t", 0, SMALL_RECORDS);
        touch(ep);
        check_recovered(cd, last.base, last.seg, last.pos, 0,
                        "torn tail plus an empty segment after it");
        cr_assert_eq(file_size(ep), -1, "the leftover segment %s was not removed", ep);
        rm_rf(cd);
    }
    /* 3. An empty segment named exactly after the end: nothing is lost
     *    either way; whether it is removed or becomes the active segment,
     *    the log must read and append correctly (checked across a reopen). */
    {
        char cd[300], ep[700];
        new_case(cd, sizeof cd, ep, sizeof ep, tpl, 3, SMALL_RECORDS);
        touch(ep);
        ulog *log = open_at(cd, NULL);
        int64_t lo, hi;
        watermarks(log, "t", 0, &lo, &hi);
        cr_assert_eq(hi, SMALL_RECORDS);
        cr_assert_eq(append_range(log, "t", SMALL_RECORDS, 3, 0), 0);
        ulog_close(log);
        delete_heads(cd, "t", 1, false);
        log = open_at(cd, NULL);
        watermarks(log, "t", 0, &lo, &hi);
        cr_assert_eq(hi, SMALL_RECORDS + 3);
        ulog_sub *s = sub_earliest(log, "t");
        expect_records(s, 0, SMALL_RECORDS + 3, 0, "empty segment at the end");
        ulog_sub_close(s);
        ulog_close(log);
        rm_rf(cd);
    }
}

/* ------------------------------------------------ corruption below the end */

Test(recovery, corrupt_batch_below_committed_end, .timeout = 60)
{
    ulog *log = open_with_topic(root, NULL, "t", 1, cfg_of("flush.policy", "none", NULL));
    for (int i = 0; i < 10; i++)
        cr_assert_eq(append_range(log, "t", i * 3, 3, 0), 0);
    ulog_close(log);

    layout l;
    read_layout(root, "t", &l);
    cr_assert_eq(l.n, 10);
    batch_loc bad = l.b[5];
    char sp[700];
    seg_path(sp, sizeof sp, root, "t", 0, bad.seg);
    int64_t size_before = file_size(sp);
    /* A byte in the middle of batch 5's records. The head stays: it is
     * valid, so no recovery scan runs and the damage is below the
     * committed end. */
    flip_bit(sp, bad.pos + bad.size / 2 + 3, 2);

    log = open_at(root, NULL);
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_assert_eq(hi, 30, "the committed end must not move: %lld", (long long)hi);
    cr_assert_eq(file_size(sp), size_before, "nothing may be cut below the committed end");
    ulog_sub *s = sub_earliest(log, "t");
    ulog_msg m;
    for (int64_t i = 0; i < bad.base; i++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, 0, "poll %lld: %s", (long long)i, ulog_errname(rc));
        check_msg(&m, i, 0);
    }
    for (int k = 0; k < 3; k++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, ULOG_ECORRUPT, "poll #%d at the bad batch: %s", k, ulog_errname(rc));
        int64_t pos;
        cr_assert_eq(ulog_position(s, 0, &pos), 0);
        cr_assert_eq(pos, bad.base, "the position moved past the bad batch: %lld",
                     (long long)pos);
    }
    /* A waiting poll reports it too, at once. */
    int64_t t0 = mono_ns();
    cr_assert_eq(ulog_poll(s, 2000, &m), ULOG_ECORRUPT);
    cr_assert_lt(mono_ns() - t0, 1000000000LL);
    /* Seeking back re-reads the good records, then hits it again. */
    cr_assert_eq(ulog_seek(s, 0, bad.base - 1), 0);
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    check_msg(&m, bad.base - 1, 0);
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ECORRUPT);
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_log_info("corruption reported as: %s", msg);
    ulog_sub_close(s);
    ulog_close(log);
}

/* ------------------------------------------------ reopen cost */

#define COST_N 200000

Test(recovery, reopen_big_partition, .timeout = 120)
{
    ulog *log = open_with_topic(root, NULL, "t", 1,
                                cfg_of("flush.policy", "none", "segment.bytes", "4194304", NULL));
    for (int64_t off = 0; off < COST_N; off += 32)
        cr_assert_eq(append_range(log, "t", off, 32, 0), 0);
    ulog_close(log);

    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            delete_heads(root, "t", 1, false);     /* as after a reboot: from the checkpoint */
        int64_t t0 = mono_ns();
        log = open_at(root, NULL);
        int64_t lo, hi;
        watermarks(log, "t", 0, &lo, &hi);
        int64_t el = mono_ns() - t0;
        cr_assert_eq(lo, 0);
        cr_assert_eq(hi, COST_N);
        cr_log_info("open + watermarks of a %d-record partition (%s): %.2f ms", COST_N,
                    pass ? "head deleted: recovery from the checkpoint" : "valid head",
                    (double)el / 1e6);
        ulog_sub *s = sub_earliest(log, "t");
        ulog_msg m;
        cr_assert_eq(ulog_seek(s, 0, COST_N - 1), 0);
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
        check_msg(&m, COST_N - 1, 0);
        cr_assert_eq(ulog_seek(s, 0, COST_N / 2), 0);
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
        check_msg(&m, COST_N / 2, 0);
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
        check_msg(&m, COST_N / 2 + 1, 0);
        ulog_sub_close(s);
        ulog_close(log);
    }
}
