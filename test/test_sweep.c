/* test_sweep.c -- every single-bit flip and every truncation of a small
 * segment, read back through the library.
 *
 * One partition holds a few batches of varied records (keys, empty and null
 * keys and values, headers with empty and null values, a value long enough
 * for a two-byte length, timestamps that go backwards). The log is closed,
 * its files kept. Then, for each alteration of the segment file:
 *
 *   recovery  the partition's head is deleted, as after a reboot
 *             (testutil.h's delete_heads), so that opening the log runs the
 *             recovery scan. It must cut at the start of the altered batch
 *             -- the high watermark is that batch's base offset -- and a
 *             subscriber from the earliest offset must get exactly the
 *             records before it, each equal to the one appended.
 *   reader    the head is left valid, so nothing is scanned and the
 *             committed end still counts the altered batch: the reader's
 *             own checks are all there is. It must deliver the records
 *             before the altered batch, each equal to the one appended, and
 *             then stop with an error (ULOG_ECORRUPT) at that batch.
 *
 * The only bytes of a batch that may change without consequence are its
 * partitionLeaderEpoch (bytes 12-15): Kafka's format leaves it outside the
 * CRC, ulog writes -1 there and reads nothing from it, so records are the
 * same whatever it holds. Everything else is the CRC-covered part (bytes 21
 * on), the CRC itself, the magic byte, batchLength (which moves the CRC's
 * range) and baseOffset (which recovery checks against the previous
 * batch's end).
 *
 * Between alterations the files the library may have changed are put back
 * (segment, head, LMDB's data file), so every case starts from the same
 * state. TMPDIR holds the scratch directory.
 *
 * Last, two segment states the recovery fuzzer (test/fuzz/fuzz_recover.c)
 * found mishandled, through the public calls.
 */
#include <criterion/criterion.h>
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

static char root[256];

SCRATCH_SUITE(sweep, root);

#define TOPIC "sweep"
#define T0 1700000000000LL

/* ---------------------------------------------------------------- the log */

static char big[70];                                 /* a 2-byte length */
static const ulog_header hdr_a[] = { { "h1", 2, "v1", 2 }, { "h2", 2, NULL, 0 } };
static const ulog_header hdr_b[] = { { "trace", 5, "", 0 } };

static ulog_record recs0[] = {
    { .key = "k0", .key_len = 2, .value = "hello", .value_len = 5, .timestamp = T0 },
    { .key = NULL, .value = "", .value_len = 0, .timestamp = T0 + 1 },
};
static ulog_record recs1[] = {
    { .key = "", .key_len = 0, .value = NULL, .headers = hdr_a, .header_count = 2,
      .timestamp = T0 + 5 },
};
static ulog_record recs2[] = {
    { .key = "user-7", .key_len = 6, .value = "x", .value_len = 1, .headers = hdr_b,
      .header_count = 1, .timestamp = T0 + 9 },
    { .key = NULL, .value = NULL, .timestamp = T0 + 2 },           /* backwards */
    { .key = "k", .key_len = 1, .value = "v", .value_len = 1, .timestamp = T0 + 9 },
};
static ulog_record recs3[] = {
    { .key = "big", .key_len = 3, .value = big, .value_len = sizeof big, .timestamp = T0 + 20 },
};
static ulog_record recs4[] = {
    { .key = "last", .key_len = 4, .value = "end", .value_len = 3, .timestamp = T0 + 21 },
    { .key = "last", .key_len = 4, .value = "", .value_len = 0, .headers = hdr_a,
      .header_count = 1, .timestamp = T0 + 22 },
};

static struct {
    ulog_record *r;
    size_t       n;
} appends[] = {
    { recs0, 2 }, { recs1, 1 }, { recs2, 3 }, { recs3, 1 }, { recs4, 2 },
};
#define NBATCH (sizeof appends / sizeof appends[0])
#define NREC 9

static const ulog_record *by_offset[NREC];

/* Where each batch sits in the segment, and the offset it starts at. */
static struct {
    int64_t start, end, base;
} layout[NBATCH];

/* The pristine files. */
typedef struct file {
    char    path[600];
    uint8_t *bytes;
    size_t  len;
} file;
static file seg, head, lmdb;

static void snapshot(file *f, const char *path)
{
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    f->len = (size_t)st.st_size;
    f->bytes = malloc(f->len ? f->len : 1);
    cr_assert_not_null(f->bytes);
    cr_assert_eq(pread(fd, f->bytes, f->len, 0), (ssize_t)f->len, "read %s", path);
    close(fd);
}

/* Writes `len` bytes of `bytes` as the whole of f's file. */
static void put_file(const file *f, const uint8_t *bytes, size_t len)
{
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    cr_assert_geq(fd, 0, "open %s: %s", f->path, strerror(errno));
    cr_assert(len == 0 || ulog__pwrite_all(fd, bytes, len, 0) == 0, "write %s", f->path);
    close(fd);
}

/* Appends the batches to a fresh log, closes it, and keeps its files. */
static void build_log(void)
{
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, cfg_of("flush.policy", "none", NULL));
    int64_t off = 0;
    for (size_t b = 0; b < NBATCH; b++) {
        for (size_t i = 0; i < appends[b].n; i++)
            appends[b].r[i].partition = 0;
        append_ok(log, TOPIC, appends[b].r, appends[b].n);
        for (size_t i = 0; i < appends[b].n; i++) {
            cr_assert_eq(appends[b].r[i].offset, off);
            by_offset[off++] = &appends[b].r[i];
        }
    }
    cr_assert_eq(off, NREC);
    ulog_close(log);

    char path[600];
    seg_path(path, sizeof path, root, TOPIC, 0, 0);
    snapshot(&seg, path);
    part_dir(path, sizeof path, root, TOPIC, 0);
    strncat(path, "/head", sizeof path - strlen(path) - 1);
    snapshot(&head, path);
    snprintf(path, sizeof path, "%s/meta/data.mdb", root);
    snapshot(&lmdb, path);

    /* The batches, back to back, from the segment's start to its end. */
    int64_t pos = 0;
    for (size_t b = 0; b < NBATCH; b++) {
        size_t frame;
        ulog__batch_hdr h;
        cr_assert_eq(ulog__batch_frame_size(seg.bytes + pos, seg.len - (size_t)pos, &frame), 0);
        cr_assert_eq(ulog__batch_verify(seg.bytes + pos, frame, &h), 0);
        layout[b].start = pos;
        layout[b].end = pos + (int64_t)frame;
        layout[b].base = h.base_offset;
        pos += (int64_t)frame;
    }
    cr_assert_eq(pos, (int64_t)seg.len, "the segment holds exactly the batches appended");
}

static size_t batch_of(int64_t pos)
{
    for (size_t b = 0; b < NBATCH; b++)
        if (pos >= layout[b].start && pos < layout[b].end)
            return b;
    cr_assert_fail("position %lld outside the batches", (long long)pos);
    return 0;
}

/* ---------------------------------------------------------------- reading */

static bool same(const void *a, size_t al, const void *b, size_t bl)
{
    if (!a || !b)
        return !a && !b;
    return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

/* Whether msg is, field by field, the record appended at its offset. */
static bool is_original(const ulog_msg *m)
{
    if (m->offset < 0 || m->offset >= NREC || m->partition != 0)
        return false;
    const ulog_record *r = by_offset[m->offset];
    if (m->timestamp != r->timestamp || !same(m->key, m->key_len, r->key, r->key_len) ||
        !same(m->value, m->value_len, r->value, r->value_len) ||
        m->header_count != r->header_count)
        return false;
    for (size_t i = 0; i < r->header_count; i++) {
        ulog_header h;
        if (ulog_msg_header(m, i, &h) != 0 ||
            !same(h.key, h.key_len, r->headers[i].key, r->headers[i].key_len) ||
            !same(h.value, h.value_len, r->headers[i].value, r->headers[i].value_len))
            return false;
    }
    return true;
}

typedef struct outcome {
    int64_t hi;        /* high watermark after opening */
    int64_t read;      /* records delivered: offsets 0 .. read-1 */
    int     rc;        /* how the reading stopped: ULOG_ETIMEDOUT or an error */
} outcome;

/* Puts the files back with the segment given, opens the log (after
 * deleting the head when `recover`), and reads everything from the
 * earliest offset. Fails the test on any delivered record that is not the
 * original at its offset, or out of order. */
static outcome open_and_read(const uint8_t *bytes, size_t len, bool recover, const char *what)
{
    put_file(&seg, bytes, len);
    put_file(&lmdb, lmdb.bytes, lmdb.len);
    if (recover)
        delete_heads(root, TOPIC, 1, true);
    else
        put_file(&head, head.bytes, head.len);

    outcome o = { -1, 0, 0 };
    ulog *log = open_at(root, NULL);
    int64_t lo;
    watermarks(log, TOPIC, 0, &lo, &o.hi);
    cr_assert_eq(lo, 0, "%s: low watermark %lld", what, (long long)lo);
    ulog_sub *s = sub_earliest(log, TOPIC);
    ulog_msg m;
    while ((o.rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.offset, o.read, "%s: offset %lld delivered where %lld was due", what,
                     (long long)m.offset, (long long)o.read);
        cr_assert(is_original(&m), "%s: the record delivered at offset %lld is not the one "
                  "appended there", what, (long long)m.offset);
        o.read++;
        cr_assert_leq(o.read, NREC, "%s: more records than were appended", what);
    }
    ulog_sub_close(s);
    ulog_close(log);
    return o;
}

/* Records in the batches that end at or before `pos`. */
static int64_t records_before(int64_t pos)
{
    int64_t n = 0;
    for (size_t b = 0; b < NBATCH; b++)
        if (layout[b].end <= pos)
            n = layout[b].base + (int64_t)appends[b].n;
    return n;
}

/* ---------------------------------------------------------------- flips */

static bool in_epoch(int64_t pos)
{
    int64_t rel = pos - layout[batch_of(pos)].start;
    return rel >= 12 && rel < 16;
}

/* Flips bit `bit` of every byte in [from, to) of the segment, one at a
 * time, and checks the outcome. */
static void sweep_flips(bool recover, int64_t from, int64_t to)
{
    uint8_t *b = malloc(seg.len);
    cr_assert_not_null(b);
    for (int64_t pos = from; pos < to; pos++) {
        size_t k = batch_of(pos);
        for (int bit = 0; bit < 8; bit++) {
            char what[96];
            snprintf(what, sizeof what, "%s, bit %d of byte %lld (batch %zu, its byte %lld)",
                     recover ? "recovery" : "reader", bit, (long long)pos, k,
                     (long long)(pos - layout[k].start));
            memcpy(b, seg.bytes, seg.len);
            b[pos] ^= (uint8_t)(1u << bit);
            outcome o = open_and_read(b, seg.len, recover, what);
            if (in_epoch(pos)) {
                cr_assert(o.hi == NREC && o.read == NREC && o.rc == ULOG_ETIMEDOUT,
                          "%s: the leader epoch changes no record, yet hi %lld, read %lld (%s)",
                          what, (long long)o.hi, (long long)o.read, ulog_errname(o.rc));
            } else if (recover) {
                cr_assert(o.hi == layout[k].base && o.read == layout[k].base &&
                              o.rc == ULOG_ETIMEDOUT,
                          "%s: recovery must cut at offset %lld; hi %lld, read %lld (%s)", what,
                          (long long)layout[k].base, (long long)o.hi, (long long)o.read,
                          ulog_errname(o.rc));
            } else {
                cr_assert(o.hi == NREC, "%s: hi %lld", what, (long long)o.hi);
                cr_assert(o.read == layout[k].base && o.rc != ULOG_ETIMEDOUT && o.rc != 0,
                          "%s: the reader must stop with an error at offset %lld; read %lld (%s)",
                          what, (long long)layout[k].base, (long long)o.read, ulog_errname(o.rc));
            }
        }
    }
    free(b);
}

/* Split in halves so that Criterion's two jobs share the work. */
Test(sweep, bit_flips_recovery_first_half, .timeout = 600)
{
    build_log();
    sweep_flips(true, 0, (int64_t)seg.len / 2);
}

Test(sweep, bit_flips_recovery_second_half, .timeout = 600)
{
    build_log();
    sweep_flips(true, (int64_t)seg.len / 2, (int64_t)seg.len);
}

Test(sweep, bit_flips_reader_first_half, .timeout = 600)
{
    build_log();
    sweep_flips(false, 0, (int64_t)seg.len / 2);
}

Test(sweep, bit_flips_reader_second_half, .timeout = 600)
{
    build_log();
    sweep_flips(false, (int64_t)seg.len / 2, (int64_t)seg.len);
}

/* ---------------------------------------------------------------- cuts */

/* Every length short of the whole file: recovery keeps the whole batches
 * below it and cuts the file there; the reader with the old head stops
 * with an error where the bytes end. */
Test(sweep, truncations, .timeout = 600)
{
    build_log();
    for (size_t len = 0; len < seg.len; len++) {
        int64_t want = records_before((int64_t)len);
        char what[64];
        snprintf(what, sizeof what, "recovery, segment cut to %zu bytes", len);
        outcome o = open_and_read(seg.bytes, len, true, what);
        cr_assert(o.hi == want && o.read == want && o.rc == ULOG_ETIMEDOUT,
                  "%s: want %lld records; hi %lld, read %lld (%s)", what, (long long)want,
                  (long long)o.hi, (long long)o.read, ulog_errname(o.rc));
        struct stat st;
        cr_assert_eq(stat(seg.path, &st), 0);
        int64_t keep = 0;
        for (size_t b = 0; b < NBATCH; b++)
            if (layout[b].end <= (int64_t)len)
                keep = layout[b].end;
        cr_assert_eq(st.st_size, keep, "%s: file is %lld bytes, the whole batches %lld", what,
                     (long long)st.st_size, (long long)keep);

        snprintf(what, sizeof what, "reader, segment cut to %zu bytes", len);
        o = open_and_read(seg.bytes, len, false, what);
        cr_assert(o.read == want && o.rc != ULOG_ETIMEDOUT && o.rc != 0,
                  "%s: want %lld records then an error; read %lld (%s)", what, (long long)want,
                  (long long)o.read, ulog_errname(o.rc));
    }
}

/* ---------------------------------------------------------------- found by fuzzing */

/* A writer that dies without ulog_close(): no checkpoint past what it wrote
 * (index.flush.ms is long), as after a crash. */
static void append_and_die(const char *topic_cfg_name, const char *topic_cfg_value, int n,
                           size_t value_len)
{
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        ulog_config *lc = cfg_try("index.flush.ms", "60000", NULL);
        ulog_config *tc = cfg_try("segment.bytes", "4096", "flush.policy", "none",
                                  topic_cfg_name, topic_cfg_value, NULL);
        ulog *log;
        if (!lc || !tc || ulog_open(root, lc, &log) != 0 ||
            ulog_topic_create(log, TOPIC, 1, tc) != 0)
            _exit(1);
        char *v = calloc(1, value_len);
        for (int i = 0; v && i < n; i++) {
            ulog_record r = { .value = v, .value_len = value_len, .timestamp = T0 + i,
                              .partition = 0 };
            if (ulog_append(log, TOPIC, &r, 1) != 0)
                _exit(2);
        }
        _exit(v ? 0 : 3);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer child: status %d", st);
}

/* Reads every record from the earliest offset: how many, and how it ended. */
static int64_t read_all(ulog *log, int *rc)
{
    ulog_sub *s = sub_earliest(log, TOPIC);
    ulog_msg m;
    int64_t n = 0;
    while ((*rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.offset, n);
        n++;
    }
    ulog_sub_close(s);
    return n;
}

/* A segment closed by a roll always ends at its last batch (the roll trims
 * a preallocated tail before it creates the next segment). Recovery meets
 * one that does not -- zeros after its batches, say a preallocated segment
 * whose trim a crash or an older version did not make -- and treats the
 * zeros as the end of its data, rightly, but left them in the file:
 * readers, which walk a segment to its size, then stopped there with
 * ULOG_ECORRUPT and never reached the later segments. Recovery now cuts
 * them as the roll would have. */
Test(sweep, untrimmed_zeros_before_the_next_segment, .timeout = 60)
{
    append_and_die("preallocate", "true", 10, 1000);    /* 3 per 4 KiB segment */
    char path[600];
    seg_path(path, sizeof path, root, TOPIC, 0, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    int64_t trimmed = st.st_size;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    static const char zeros[300];
    cr_assert_eq(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    delete_heads(root, TOPIC, 1, false);

    ulog *log = open_at(root, NULL);
    int64_t lo, hi;
    watermarks(log, TOPIC, 0, &lo, &hi);
    cr_assert(lo == 0 && hi == 10, "watermarks [%lld, %lld)", (long long)lo, (long long)hi);
    int rc;
    int64_t n = read_all(log, &rc);
    char msg[256];
    ulog_errmsg(log, msg, sizeof msg);
    cr_assert(n == 10 && rc == ULOG_ETIMEDOUT, "read %lld of 10 records, then %s (%s)",
              (long long)n, ulog_errname(rc), msg);
    ulog_close(log);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, trimmed, "the zeros are cut: %lld bytes, want %lld",
                 (long long)st.st_size, (long long)trimmed);
}

/* Recovery starts at the last index entry below the checkpoint, and takes
 * the offset that entry claims as verified by the batch it names. An entry
 * at the very end of the file names no batch, so nothing confirmed it: a
 * stale one (offset 1 where the file holds offsets 0 and 1) made recovery
 * end at offset 1, hiding record 1, and the next append reused offset 1.
 * Recovery now verifies such a segment from its start. */
Test(sweep, stale_index_entry_at_the_end_of_the_file, .timeout = 60)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, cfg_of("flush.policy", "none", NULL));
    for (int i = 0; i < 2; i++) {
        ulog_record r = { .value = i ? "B" : "A", .value_len = 1, .timestamp = T0 + i,
                          .partition = 0 };
        append_ok(log, TOPIC, &r, 1);
    }
    ulog_close(log);
    char path[600];
    seg_path(path, sizeof path, root, TOPIC, 0, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);

    log = open_at(root, NULL);     /* the topic is not opened: no checkpoint at close */
    ulog__topic_rec tr;
    cr_assert_eq(ulog__meta_topic_get(log->meta, TOPIC, &tr), 0);
    ulog__index_entry e = { tr.id, 0, 1, 0, st.st_size, T0 + 1 };
    ulog__checkpoint cp = { tr.id, 0, 2, 0, st.st_size, T0 + 1 };
    cr_assert_eq(ulog__meta_flush(log->meta, &e, 1, &cp, 1, NULL, NULL), 0);
    ulog_close(log);
    delete_heads(root, TOPIC, 1, false);

    log = open_at(root, NULL);
    int64_t lo, hi;
    watermarks(log, TOPIC, 0, &lo, &hi);
    cr_assert(lo == 0 && hi == 2, "watermarks [%lld, %lld) for a file holding offsets 0 and 1",
              (long long)lo, (long long)hi);
    ulog_record r = { .value = "C", .value_len = 1, .timestamp = T0 + 2, .partition = 0 };
    append_ok(log, TOPIC, &r, 1);
    cr_assert_eq(r.offset, 2);
    int rc;
    cr_assert_eq(read_all(log, &rc), 3);
    cr_assert_eq(rc, ULOG_ETIMEDOUT);
    ulog_close(log);
}
