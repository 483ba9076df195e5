/* test_crash.c -- writers killed at random moments lose nothing they were
 * told was committed.
 *
 * Each round forks a child that appends to a 2-partition topic with
 * flush.policy always (batches of 1..20 records, small segments so that
 * rolls happen) and, after every successful ulog_append, reports what was
 * acknowledged through a pipe. The parent SIGKILLs it after a random delay
 * (sometimes at once, before or while it opens the log), then opens the log
 * itself and checks that every acknowledged record is where the append said,
 * with its content, exactly once, and that each partition is dense.
 *
 * The same log directory is used by every round, so each round starts from
 * whatever the previous kill left: a valid head with the write mark or a
 * robust mutex owned by a dead process (the repair path). Every 20th round
 * the head files are deleted as well, which is how a test makes the
 * partitions look as they would after a reboot (the head is only trusted
 * for the boot id it was written in): the recovery scan runs instead.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define PARTS         2
#define MAX_BATCH     20
#define MAX_PAD       600
#define ACK_MAGIC     0x41434b31u   /* "ACK1" */
#define ERR_MAGIC     0x45525231u   /* "ERR1" */
#define READY_MAGIC   0x52445931u   /* "RDY1": the log is open */

static char root[256];
/* This run's parameters (the child inherits them through fork). */
static size_t max_pad;

SCRATCH_SUITE(crash, root);

/* A record's value: its id, the partition it was sent to, and padding
 * derived from the id, so any record found in the log can be checked. */
static size_t make_value(uint8_t *buf, uint64_t id, int32_t part)
{
    size_t pad = (size_t)(mix64(id) % max_pad);
    memcpy(buf, &id, 8);
    memcpy(buf + 8, &part, 4);
    for (size_t i = 0; i < pad; i++)
        buf[12 + i] = (uint8_t)mix64(id * 7919 + i);
    return 12 + pad;
}

static bool value_ok(const void *v, size_t len, uint64_t *id, int32_t *part)
{
    static uint8_t want[12 + MAX_PAD];
    if (!v || len < 12)
        return false;
    memcpy(id, v, 8);
    memcpy(part, (const uint8_t *)v + 8, 4);
    size_t n = make_value(want, *id, *part);
    return n == len && memcmp(want, v, len) == 0;
}

typedef struct ack {
    int32_t  part;
    int32_t  zero;
    int64_t  off;
    uint64_t id;
} ack;

typedef struct msg_hdr {
    uint32_t magic;
    uint32_t n;         /* acks that follow; for ERR_MAGIC: -error code */
} msg_hdr;

_Static_assert(sizeof(msg_hdr) + MAX_BATCH * sizeof(ack) <= PIPE_BUF,
               "one report is one atomic pipe write");

static void child_report(int fd, const void *buf, size_t len)
{
    if (!write_full(fd, buf, len))
        _exit(5);
}

static void child_fail(int fd, int rc)
{
    msg_hdr h = { ERR_MAGIC, (uint32_t)-rc };
    child_report(fd, &h, sizeof h);
    _exit(6);
}

/* An encrypted topic's key, given to every handle (writer and checker). */
static bool encrypted;
static const uint8_t KEY[ULOG_KEY_BYTES] = "crash test key, 32 bytes long!!";

static int give_key(ulog *log)
{
    return encrypted ? ulog_key_add(log, "c", 7, KEY, sizeof KEY) : 0;
}

/* The writer: appends until killed. Never returns. */
static void child_main(int round, int fd)
{
    /* Frequent LMDB flushes, so some kills land in a write transaction. */
    ulog_config *lc = cfg_try("index.flush.ms", "5", NULL);
    if (!lc)
        child_fail(fd, ULOG_ENOMEM);
    ulog *log = NULL;
    int rc = ulog_open(root, lc, &log);
    if (!rc)
        rc = give_key(log);
    if (rc)
        child_fail(fd, rc);
    msg_hdr ready = { READY_MAGIC, 0 };
    child_report(fd, &ready, sizeof ready);
    uint64_t rng = (uint64_t)round * 1000003 + 17;
    uint64_t counter = 0;
    static uint8_t vals[MAX_BATCH][12 + MAX_PAD];
    char keys[MAX_BATCH][24];
    for (;;) {
        ulog_record r[MAX_BATCH];
        rng = mix64(rng);
        size_t n = 1 + rng % MAX_BATCH;
        for (size_t i = 0; i < n; i++) {
            uint64_t id = (uint64_t)round << 32 | counter++;
            rng = mix64(rng);
            int32_t part = (int32_t)(rng % PARTS);
            r[i] = (ulog_record){ .value = vals[i], .value_len = make_value(vals[i], id, part),
                                  .timestamp = 1700000000000LL + (int64_t)round,
                                  .partition = part };
            if (rng & 2) {
                r[i].key = keys[i];
                r[i].key_len = (size_t)snprintf(keys[i], sizeof keys[i], "%llu",
                                                (unsigned long long)id);
            }
        }
        rc = ulog_append(log, "c", r, n);
        if (rc)
            child_fail(fd, rc);
        struct {
            msg_hdr h;
            ack     a[MAX_BATCH];
        } m;
        m.h = (msg_hdr){ ACK_MAGIC, (uint32_t)n };
        for (size_t i = 0; i < n; i++) {
            uint64_t id;
            memcpy(&id, vals[i], 8);
            m.a[i] = (ack){ r[i].partition, 0, r[i].offset, id };
        }
        child_report(fd, &m, sizeof m.h + n * sizeof m.a[0]);
    }
}

typedef struct acks {
    ack   *a;
    size_t n, cap;
} acks;

/* Reads every report of a dead child; returns its number of appends. */
static int read_reports(int fd, acks *all, int round)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert_geq(r, 0, "read: %s", strerror(errno));
        if (r == 0)
            break;
        len += (size_t)r;
    }
    int appends = 0;
    size_t pos = 0;
    while (pos < len) {
        msg_hdr h;
        cr_assert_geq(len - pos, sizeof h, "round %d: torn report", round);
        memcpy(&h, buf + pos, sizeof h);
        pos += sizeof h;
        cr_assert_neq(h.magic, ERR_MAGIC, "round %d: the writer failed: %s", round,
                      ulog_errname(-(int)h.n));
        if (h.magic == READY_MAGIC)
            continue;
        cr_assert_eq(h.magic, ACK_MAGIC, "round %d: bad report", round);
        cr_assert(h.n >= 1 && h.n <= MAX_BATCH);
        cr_assert_geq(len - pos, h.n * sizeof(ack), "round %d: torn report", round);
        for (uint32_t i = 0; i < h.n; i++) {
            if (all->n == all->cap) {
                all->cap = all->cap ? 2 * all->cap : 4096;
                all->a = realloc(all->a, all->cap * sizeof *all->a);
                cr_assert_not_null(all->a);
            }
            memcpy(&all->a[all->n++], buf + pos, sizeof(ack));
            pos += sizeof(ack);
        }
        appends++;
    }
    free(buf);
    return appends;
}

/* Opens the log and checks it against every acknowledgement so far.
 * Returns the number of records in the log. */
static int64_t verify(const acks *all, int round, int64_t *segments)
{
    ulog *log = NULL;
    int rc = ulog_open(root, NULL, &log);
    cr_assert_eq(rc, 0, "round %d: ulog_open: %s", round, ulog_errname(rc));
    cr_assert_eq(give_key(log), 0);
    int64_t high[PARTS];
    uint64_t *id_at[PARTS];
    for (int p = 0; p < PARTS; p++) {
        int64_t lo;
        rc = ulog_watermarks(log, "c", p, &lo, &high[p]);
        cr_assert_eq(rc, 0, "round %d: watermarks: %s", round, ulog_errname(rc));
        cr_assert_eq(lo, 0);
        id_at[p] = malloc((size_t)(high[p] + 1) * sizeof *id_at[p]);
        cr_assert_not_null(id_at[p]);
    }
    ulog_config *c = cfg_of("auto.offset.reset", "earliest", NULL);
    ulog_sub *s = NULL;
    rc = ulog_subscribe(log, "c", NULL, c, &s);
    ulog_config_free(c);
    cr_assert_eq(rc, 0, "round %d: subscribe: %s", round, ulog_errname(rc));
    int64_t next[PARTS] = { 0 };
    uint64_t last_id[PARTS] = { 0 };
    bool any[PARTS] = { false };
    ulog_msg m;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        int32_t p = m.partition;
        cr_assert(p >= 0 && p < PARTS);
        cr_assert_eq(m.offset, next[p], "round %d partition %d: offset %lld after %lld", round,
                     (int)p, (long long)m.offset, (long long)next[p] - 1);
        cr_assert_lt(m.offset, high[p]);
        uint64_t id;
        int32_t vp;
        cr_assert(value_ok(m.value, m.value_len, &id, &vp),
                  "round %d partition %d offset %lld: damaged value", round, (int)p,
                  (long long)m.offset);
        cr_assert_eq(vp, p, "round %d: record %llx sent to partition %d found in %d", round,
                     (unsigned long long)id, (int)vp, (int)p);
        /* Ids grow with every append of every round: a repeat or a
         * reordering shows here. */
        cr_assert(!any[p] || id > last_id[p],
                  "round %d partition %d offset %lld: id %llx after %llx (duplicate or "
                  "reordered)", round, (int)p, (long long)m.offset, (unsigned long long)id,
                  (unsigned long long)last_id[p]);
        any[p] = true;
        last_id[p] = id;
        id_at[p][m.offset] = id;
        next[p]++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "round %d: poll: %s", round, ulog_errname(rc));
    int64_t total = 0;
    for (int p = 0; p < PARTS; p++) {
        cr_assert_eq(next[p], high[p], "round %d partition %d: read %lld of %lld", round, p,
                     (long long)next[p], (long long)high[p]);
        total += high[p];
    }
    for (size_t i = 0; i < all->n; i++) {
        const ack *a = &all->a[i];
        cr_assert(a->part >= 0 && a->part < PARTS);
        cr_assert(a->off >= 0 && a->off < high[a->part],
                  "round %d: acknowledged record %llx at partition %d offset %lld is gone "
                  "(high %lld)", round, (unsigned long long)a->id, (int)a->part,
                  (long long)a->off, (long long)high[a->part]);
        cr_assert_eq(id_at[a->part][a->off], a->id,
                     "round %d: partition %d offset %lld holds %llx, acknowledged %llx", round,
                     (int)a->part, (long long)a->off,
                     (unsigned long long)id_at[a->part][a->off], (unsigned long long)a->id);
    }
    *segments = 0;
    for (int p = 0; p < PARTS; p++) {
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log, "c", p, &pi), 0);
        *segments += pi.segments;
        free(id_at[p]);
    }
    ulog_sub_close(s);
    ulog_close(log);
    return total;
}

static void run(const char *policy, const char *segment_bytes, const char *prealloc,
                int rounds, long max_delay_us, size_t pad)
{
    max_pad = pad;
    ulog_close(open_with_topic(root, NULL, "c", PARTS,
                               cfg_of("flush.policy", policy, "segment.bytes", segment_bytes,
                                      "preallocate", prealloc, "encryption.key.id",
                                      encrypted ? "7" : "-1", NULL)));

    acks all = { NULL, 0, 0 };
    uint64_t rng = 0x5eed;
    int early = 0, recoveries = 0;
    int64_t appends = 0, records = 0, segments = 0;
    int64_t t0 = mono_ns();
    for (int round = 1; round <= rounds; round++) {
        int pfd[2];
        cr_assert_eq(pipe(pfd), 0);
        fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
        pid_t pid = quiet_fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(pfd[0]);
            child_main(round, pfd[1]);
        }
        close(pfd[1]);
        rng = mix64(rng);
        /* One round in eight: kill at once, wherever the child is (often
         * still opening the log). Otherwise 0..max_delay_us after it has
         * opened the log, so that most kills land among appends. */
        bool now = rng % 8 == 0;
        long us = now ? 0 : (long)((rng >> 8) % (uint64_t)max_delay_us);
        if (!now) {
            msg_hdr h;
            ssize_t r;
            while ((r = read(pfd[0], &h, sizeof h)) < 0 && errno == EINTR)
                ;
            cr_assert_eq(r, (ssize_t)sizeof h, "round %d: the writer died before opening", round);
            cr_assert_neq(h.magic, ERR_MAGIC, "round %d: ulog_open in the writer: %s", round,
                          ulog_errname(-(int)h.n));
            cr_assert_eq(h.magic, READY_MAGIC);
        }
        if (us) {
            struct timespec ts = { 0, us * 1000 };
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        cr_assert_eq(kill(pid, SIGKILL), 0);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        int a = read_reports(pfd[0], &all, round);
        close(pfd[0]);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "round %d: the writer ended by itself (status 0x%x)", round, st);
        if (a == 0)
            early++;
        appends += a;
        if (round % 20 == 0) {
            delete_heads(root, "c", PARTS, true);
            recoveries++;
        }
        records = verify(&all, round, &segments);
    }
    cr_assert_gt(all.n, (size_t)rounds, "too few acknowledged records to mean anything");
    cr_log_info("crash (flush.policy %s%s): %d rounds (%d killed before any ack, %d with heads "
                "deleted), %lld acked appends, %zu acked records, %lld records verified in the "
                "final log, %lld segments, %.1f s", policy, encrypted ? ", encrypted" : "", rounds,
                early, recoveries, (long long)appends,
                all.n, (long long)records, (long long)segments,
                (double)(mono_ns() - t0) / 1e9);
    free(all.a);
}

/* The brief's case: durable appends, a kill 0..30 ms into the appending. */
Test(crash, sigkill_during_appends, .timeout = 170)
{
    run("always", "65536", "false", 200, 30000, MAX_PAD);
}

/* Without fdatasync a writer spends its time encoding and writing, often
 * holding the writer lock (and, with small segments, creating segments,
 * which is fsynced under the lock): kills land mid-write far more often, and
 * the next writer must cut the dead one's unpublished bytes (the write
 * mark). Acked records must survive a process crash under every policy. */
Test(crash, sigkill_during_appends_flush_none, .timeout = 170)
{
    run("none", "16384", "false", 150, 4000, 100);
}

/* Preallocated segments: kills land between allocating, writing, and the
 * trim of a closed segment at each roll; recovery must find every end by
 * its batches (the allocated zeros are not data). */
Test(crash, sigkill_during_appends_preallocated, .timeout = 170)
{
    run("always", "16384", "true", 120, 20000, 100);
}

/* An encrypted topic (encryption.key.id): the same kills, and every
 * acknowledged record must also open with its key. */
Test(crash, sigkill_during_appends_encrypted, .timeout = 170)
{
    encrypted = true;
    run("always", "16384", "false", 120, 20000, 100);
}
