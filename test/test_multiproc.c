/* test_multiproc.c -- several processes sharing one log directory.
 *
 * Every test forks children that open the root themselves (ulog_open in the
 * child; no handle crosses a fork) and report back through pipes, files and
 * their exit status; only the parent asserts. Every wait is bounded: each
 * child runs under child_watchdog() (a hang becomes a SIGALRM death the parent
 * reports) and the parent waits with deadlines, so a library bug fails a
 * test instead of hanging CI. The suite's fini kills any child left over.
 *
 *   a  3 writers and 3 readers, 4 partitions, 200,000 keyed records in
 *      batches of 1..50, small segments: every reader sees every record
 *      exactly once, offsets dense, each writer's records in order within
 *      each partition.
 *   b  the same under 50+ random SIGKILLs of writers and readers: readers
 *      in groups resume from their commits, writers from their acks;
 *      at-least-once delivery with duplicates only from the last commit.
 *   c  a subscriber blocked in ulog_poll wakes on another process's append.
 *   d  an idle subscriber (ulog_poll, or a thread in poll(2) on
 *      ulog_sub_fd) uses almost no CPU.
 *   e  ulog_sub_fd becomes readable on another process's append.
 *   f  ulog_seek and ulog_seek_time while another process appends.
 *   g  writers killed at random moments, some while holding a partition's
 *      writer lock: every later append completes within a bound.
 *   fanout: a consumer group whose process is stopped does not hold back
 *      the producer or the other groups, and catches up after SIGCONT.
 *
 * Record format (a, b, g): the value is an 8-byte id (writer, incarnation,
 * sequence number) followed by 0..MAX_PAD bytes derived from the id, the
 * key is derived from the id too, so any record read can be checked whole.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testchild.h"
#include "testutil.h"

/* ================================================================ scaffolding */

static char root[256];          /* the test's scratch directory */
static char logdir[300];        /* root/log: the ulog root */

static void mp_init(void)
{
    make_tmpdir(root, sizeof root, "multiproc");
    snprintf(logdir, sizeof logdir, "%s/log", root);
    children_init();
}

/* Also after a failed assertion: no child outlives its test. */
static void mp_fini(void)
{
    children_fini();
    if (root[0])
        rm_rf(root);
}

TestSuite(multiproc, .init = mp_init, .fini = mp_fini, .timeout = 120);

/* Creates topic `topic` in a fresh log at logdir and closes the log: the
 * parent holds no handle while it forks. */
static void make_topic(const char *topic, int32_t parts, ulog_config *topic_cfg)
{
    ulog_close(open_with_topic(logdir, NULL, topic, parts, topic_cfg));
}

/* ================================================================ records */

#define PARTS     4             /* partitions of the topics of a and b */
#define MAX_BATCH 50
#define MAX_PAD   100

/* writer (8 bits) | incarnation (24 bits) | sequence number (32 bits) */
static uint64_t rec_id(uint32_t w, uint32_t inc, uint32_t seq)
{
    return (uint64_t)w << 56 | (uint64_t)(inc & 0xffffff) << 32 | seq;
}
static uint32_t id_writer(uint64_t id) { return (uint32_t)(id >> 56); }
static uint32_t id_inc(uint64_t id) { return (uint32_t)(id >> 32) & 0xffffff; }
static uint32_t id_seq(uint64_t id) { return (uint32_t)id; }

/* Writer BIG_WRITER's records are large (g's victims: their appends roll
 * segments often and spend long under the writer lock). */
#define BIG_WRITER 9
#define MAX_VALUE  (8 + 4000)

static size_t make_value(uint8_t buf[MAX_VALUE], uint64_t id)
{
    size_t pad = id_writer(id) == BIG_WRITER ? 1000 + (size_t)(mix64(id) % 3001)
                                             : (size_t)(mix64(id) % (MAX_PAD + 1));
    memcpy(buf, &id, 8);
    uint64_t x = 0;
    for (size_t i = 0; i < pad; i++) {
        if (i % 8 == 0)
            x = mix64(id ^ (i * 0x100000001ULL));
        buf[8 + i] = (uint8_t)(x >> (8 * (i % 8)));
    }
    return 8 + pad;
}

/* 1000 keys: records spread over the partitions by Kafka's murmur2. */
static size_t make_key(char buf[16], uint64_t id)
{
    return (size_t)snprintf(buf, 16, "k%03u", (unsigned)(mix64(id ^ 0x6b6579) % 1000));
}

/* Whether m is a whole record made by make_value/make_key; its id in *id. */
static bool msg_ok(const ulog_msg *m, uint64_t *id)
{
    static uint8_t want[MAX_VALUE];
    char k[16];
    if (!m->value || m->value_len < 8 || m->value_len > MAX_VALUE || !m->key)
        return false;
    memcpy(id, m->value, 8);
    size_t n = make_value(want, *id);
    size_t kn = make_key(k, *id);
    return n == m->value_len && memcmp(want, m->value, n) == 0 && kn == m->key_len &&
           memcmp(k, m->key, kn) == 0;
}

typedef struct batch {
    ulog_record r[MAX_BATCH];
    uint8_t     v[MAX_BATCH][MAX_VALUE];
    char        k[MAX_BATCH][16];
} batch;

/* n records of writer w, incarnation inc, sequence numbers seq0.., keyed. */
static void batch_fill(batch *b, uint32_t w, uint32_t inc, uint32_t seq0, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t id = rec_id(w, inc, seq0 + (uint32_t)i);
        b->r[i] = (ulog_record){ .key = b->k[i], .key_len = make_key(b->k[i], id),
                                 .value = b->v[i], .value_len = make_value(b->v[i], id),
                                 .timestamp = ULOG_TIMESTAMP_NOW,
                                 .partition = ULOG_PARTITION_ANY };
    }
}

/* Checks the partitions and offsets an append wrote back: the records of
 * one partition are one batch (consecutive offsets, in call order) after
 * this writer's earlier records there. */
static void check_offsets(const batch *b, size_t n, int32_t parts, int64_t last[])
{
    int64_t in_batch[PARTS];
    for (int p = 0; p < parts; p++)
        in_batch[p] = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t p = b->r[i].partition;
        int64_t off = b->r[i].offset;
        CCHECK(p >= 0 && p < parts, "append wrote back partition %d", (int)p);
        if (in_batch[p] >= 0)
            CCHECK(off == in_batch[p] + 1, "partition %d: offsets %lld then %lld in one batch",
                   (int)p, (long long)in_batch[p], (long long)off);
        else
            CCHECK(off > last[p], "partition %d: offset %lld after this writer's %lld", (int)p,
                   (long long)off, (long long)last[p]);
        in_batch[p] = last[p] = off;
    }
}

static uint32_t quota_of(uint32_t total, int writers, int w)
{
    return total / (uint32_t)writers + ((uint32_t)w < total % (uint32_t)writers ? 1 : 0);
}

/* Checks the group's committed offsets: every partition of topic, at high. */
static void expect_group_at_end(ulog *log, const char *group, const char *topic, int32_t parts)
{
    ulog_group_desc *d = NULL;
    int rc = ulog_group_describe(log, group, &d);
    cr_assert_eq(rc, 0, "ulog_group_describe %s: %s", group, ulog_errname(rc));
    size_t n = ulog_group_desc_count(d);
    cr_assert_eq(n, (size_t)parts, "group %s: %zu entries, expected %d", group, n, (int)parts);
    for (size_t i = 0; i < n; i++) {
        ulog_group_lag g = ULOG_GROUP_LAG_INIT;
        cr_assert_eq(ulog_group_desc_get(d, i, &g), 0);
        cr_assert_str_eq(g.topic, topic);
        cr_assert_eq(g.partition, (int32_t)i, "group %s: entry %zu is partition %d", group, i,
                     (int)g.partition);
        int64_t lo, hi;
        watermarks(log, topic, g.partition, &lo, &hi);
        cr_assert_eq(g.high, hi, "group %s p%d: high %lld, watermark %lld", group,
                     (int)g.partition, (long long)g.high, (long long)hi);
        cr_assert_eq(g.committed, hi, "group %s p%d: committed %lld, high %lld", group,
                     (int)g.partition, (long long)g.committed, (long long)hi);
        cr_assert_eq(g.lag, 0, "group %s p%d: lag %lld", group, (int)g.partition,
                     (long long)g.lag);
    }
    ulog_group_desc_free(d);
}

/* ================================================================ a */

#define A_TOPIC   "mp"
#define A_WRITERS 3
#define A_READERS 3
#define A_TOTAL   200000u

typedef struct a_args {
    int         id;
    const char *group;       /* readers: NULL or their own group */
    int         go[2];       /* start barrier: children read until EOF */
    int         rep;         /* readers: the report pipe */
} a_args;

typedef struct a_report {
    int32_t id;
    int32_t commits;
    int64_t records, timeouts, ns;
    int64_t high[PARTS];
} a_report;

static void wait_go(int go[2])
{
    close(go[1]);
    char c;
    ssize_t r;
    while ((r = read(go[0], &c, 1)) < 0 && errno == EINTR)
        ;
    CCHECK(r == 0, "start barrier: %zd", r);
    close(go[0]);
}

static void a_writer(void *arg)
{
    a_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    wait_go(a->go);
    static batch b;
    uint32_t quota = quota_of(A_TOTAL, A_WRITERS, a->id);
    uint64_t rng = mix64(0xa11ce + (uint64_t)a->id);
    int64_t last[PARTS] = { -1, -1, -1, -1 };
    for (uint32_t seq = 0; seq < quota;) {
        rng = mix64(rng);
        size_t n = 1 + rng % MAX_BATCH;
        if (n > quota - seq)
            n = quota - seq;
        batch_fill(&b, (uint32_t)a->id, 0, seq, n);
        int rc = ulog_append(log, A_TOPIC, b.r, n);
        CCHECK(rc == 0, "writer %d: ulog_append at seq %u: %s", a->id, seq, ulog_errname(rc));
        check_offsets(&b, n, PARTS, last);
        seq += (uint32_t)n;
    }
    ulog_close(log);
}

static void a_reader(void *arg)
{
    a_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = child_sub(log, A_TOPIC, a->group, "earliest");
    wait_go(a->go);
    uint32_t quota[A_WRITERS];
    uint8_t *seen[A_WRITERS];
    int64_t last[A_WRITERS][PARTS];
    for (int w = 0; w < A_WRITERS; w++) {
        quota[w] = quota_of(A_TOTAL, A_WRITERS, w);
        seen[w] = calloc(quota[w], 1);
        CCHECK(seen[w], "out of memory");
        for (int p = 0; p < PARTS; p++)
            last[w][p] = -1;
    }
    int64_t next[PARTS] = { 0 };
    a_report rep = { .id = a->id };
    int64_t t0 = mono_ns();
    ulog_msg m;
    int rc;
    while (rep.records < (int64_t)A_TOTAL) {
        rc = ulog_poll(s, 1000, &m);
        if (rc == ULOG_ETIMEDOUT) {
            rep.timeouts++;
            continue;
        }
        CCHECK(rc == 0, "reader %d: ulog_poll after %lld records: %s", a->id,
               (long long)rep.records, ulog_errname(rc));
        int32_t p = m.partition;
        CCHECK(p >= 0 && p < PARTS, "reader %d: partition %d", a->id, (int)p);
        CCHECK(m.offset == next[p], "reader %d: partition %d gave offset %lld, expected %lld",
               a->id, (int)p, (long long)m.offset, (long long)next[p]);
        next[p]++;
        uint64_t id;
        CCHECK(msg_ok(&m, &id), "reader %d: partition %d offset %lld: damaged record "
               "(value %zu bytes, key %zu bytes)", a->id, (int)p, (long long)m.offset,
               m.value_len, m.key_len);
        uint32_t w = id_writer(id), seq = id_seq(id);
        CCHECK(w < A_WRITERS && id_inc(id) == 0 && seq < quota[w],
               "reader %d: p%d/%lld: unknown record %llx", a->id, (int)p, (long long)m.offset,
               (unsigned long long)id);
        CCHECK(!seen[w][seq], "reader %d: writer %u seq %u seen twice (again at p%d/%lld)",
               a->id, w, seq, (int)p, (long long)m.offset);
        seen[w][seq] = 1;
        CCHECK((int64_t)seq > last[w][p], "reader %d: partition %d offset %lld: writer %u seq %u "
               "after its seq %lld (out of order)", a->id, (int)p, (long long)m.offset, w, seq,
               (long long)last[w][p]);
        last[w][p] = seq;
        rep.records++;
        if (a->group && rep.records % 25000 == 0) {
            rc = ulog_commit(s);
            CCHECK(rc == 0, "reader %d: ulog_commit: %s", a->id, ulog_errname(rc));
            rep.commits++;
        }
    }
    rep.ns = mono_ns() - t0;
    /* Every writer is done once all records have been seen: nothing more. */
    rc = ulog_poll(s, 0, &m);
    CCHECK(rc == ULOG_ETIMEDOUT, "reader %d: after all %u records ulog_poll gave %s (p%d/%lld)",
           a->id, A_TOTAL, ulog_errname(rc), rc == 0 ? (int)m.partition : -1,
           rc == 0 ? (long long)m.offset : -1LL);
    for (int p = 0; p < PARTS; p++) {
        int64_t lo, pos;
        rc = ulog_watermarks(log, A_TOPIC, p, &lo, &rep.high[p]);
        CCHECK(rc == 0, "ulog_watermarks: %s", ulog_errname(rc));
        rc = ulog_position(s, p, &pos);
        CCHECK(rc == 0 && pos == rep.high[p], "reader %d: partition %d position %lld, high %lld",
               a->id, p, (long long)pos, (long long)rep.high[p]);
    }
    if (a->group) {
        rc = ulog_commit(s);
        CCHECK(rc == 0, "reader %d: ulog_commit: %s", a->id, ulog_errname(rc));
        rep.commits++;
    }
    write_all(a->rep, &rep, sizeof rep, "report");
    for (int w = 0; w < A_WRITERS; w++)
        free(seen[w]);
    ulog_sub_close(s);
    ulog_close(log);
}

Test(multiproc, a_three_writers_three_readers, .timeout = 150)
{
    make_topic(A_TOPIC, PARTS, cfg_of("flush.policy", "none", "segment.bytes", "524288", NULL));
    static const char *groups[A_READERS] = { NULL, "a-reader-1", "a-reader-2" };
    int go[2], rep[2];
    make_pipe(go);
    make_pipe(rep);
    a_args args[A_READERS + A_WRITERS];
    pid_t pids[A_READERS + A_WRITERS];
    for (int i = 0; i < A_READERS + A_WRITERS; i++) {
        bool reader = i < A_READERS;
        args[i] = (a_args){ reader ? i : i - A_READERS, reader ? groups[i] : NULL,
                            { go[0], go[1] }, rep[1] };
        pids[i] = spawn(reader ? a_reader : a_writer, &args[i], 140);
    }
    close(rep[1]);
    rep[1] = -1;
    int64_t t0 = mono_ns();
    close_pair(go);                                 /* go */
    for (int i = A_READERS; i < A_READERS + A_WRITERS; i++)
        join_ok(pids[i], 130000, "writer");
    double write_s = (double)(mono_ns() - t0) / 1e9;
    for (int i = 0; i < A_READERS; i++)
        join_ok(pids[i], 130000, "reader");
    double all_s = (double)(mono_ns() - t0) / 1e9;

    int64_t high[PARTS];
    ulog *log = open_at(logdir, NULL);
    int64_t sum = 0;
    for (int p = 0; p < PARTS; p++) {
        int64_t lo;
        watermarks(log, A_TOPIC, p, &lo, &high[p]);
        cr_assert_eq(lo, 0);
        cr_assert_gt(high[p], 0, "partition %d got no records", p);
        sum += high[p];
    }
    cr_assert_eq(sum, (int64_t)A_TOTAL);
    int64_t segs = 0;
    for (int p = 0; p < PARTS; p++) {
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log, A_TOPIC, p, &pi), 0);
        segs += pi.segments;
    }
    cr_assert_geq(segs, 2 * PARTS, "segments rolled too little to mean anything: %lld",
                  (long long)segs);
    for (int i = 0; i < A_READERS; i++) {
        a_report r;
        parent_read(rep[0], &r, sizeof r, 1000, "reader report");
        cr_assert_eq(r.records, (int64_t)A_TOTAL);
        for (int p = 0; p < PARTS; p++)
            cr_assert_eq(r.high[p], high[p]);
        cr_log_info("multiproc a: reader %d (group %s) read %lld records in %.2f s, %lld waits "
                    "timed out, %d commits", r.id, groups[r.id] ? groups[r.id] : "none",
                    (long long)r.records, (double)r.ns / 1e9, (long long)r.timeouts, r.commits);
    }
    for (int i = 0; i < A_READERS; i++)
        if (groups[i])
            expect_group_at_end(log, groups[i], A_TOPIC, PARTS);
    ulog_close(log);
    close_pair(rep);
    cr_log_info("multiproc a: %u records by %d writers in %.2f s, all read by %d readers after "
                "%.2f s, %lld segments", A_TOTAL, A_WRITERS, write_s, A_READERS, all_s,
                (long long)segs);
}

/* ================================================================ b */

/*
 * Writers and readers SIGKILLed at random moments, and restarted.
 *
 * A writer slot's incarnation k appends records (slot, k, seq) and, after
 * each ulog_append returns, appends an ack {k, first seq, count} to its
 * slot's ack file (O_APPEND, 16-byte entries, before the next append). A
 * restarted writer continues at the sequence number after its last ack,
 * under a new incarnation number, so a record written but never acked (the
 * kill came between the append and its ack) stays distinct from its retry:
 * every id appears at most once in the log, and each sequence number of a
 * writer is acked exactly once.
 *
 * A reader slot subscribes in its own group and writes what it does to its
 * slot's file of 32-byte entries (buffered, flushed before each commit):
 * START (its positions after subscribing), REC (each record polled),
 * CBEGIN (the positions about to be committed, flushed before
 * ulog_commit), CDONE (after ulog_commit returned), END (done: every
 * partition read to its high watermark once the writers are all gone).
 * A write cut short by SIGKILL only loses a tail, and a restarted child
 * cuts its file to whole entries first.
 *
 * The parent then reads the final log and replays each reader's file:
 * every run starts exactly at the group's last commit (or at the commit
 * that was in flight when the previous run was killed: it may or may not
 * have landed), reads each partition densely from there, and everything
 * polled matches the log at that offset. So duplicates are exactly the
 * records at or after the last commit before a kill, nothing is skipped,
 * and together the runs cover every partition to its high watermark, which
 * holds every acked record.
 */

#define B_TOPIC     "kb"
#define B_WRITERS   3
#define B_READERS   3
#define B_TOTAL     200000u
#define B_MIN_KILLS 50
#define B_MAX_KILLS 100
#define B_PACE_US   1000        /* writers sleep this long after each append */
#define ACK_MAGIC   0x41434b00u

typedef struct b_ack {
    uint32_t magic;             /* ACK_MAGIC | slot */
    uint32_t inc;
    uint32_t seq;
    uint32_t n;
} b_ack;

enum { RL_START = 1, RL_POS, RL_REC, RL_CBEGIN, RL_CDONE, RL_END };

typedef struct rl_entry {
    uint32_t type;
    uint32_t a;                 /* START: incarnation; POS, REC: partition; CBEGIN, CDONE: commit number */
    int64_t  b;                 /* POS: position; REC: offset */
    int64_t  c;                 /* REC: record id */
    int64_t  d;
} rl_entry;

_Static_assert(sizeof(b_ack) == 16 && sizeof(rl_entry) == 32, "entries divide a page");

typedef struct b_args {
    int      slot;
    uint32_t inc;
} b_args;

static void slot_path(char *out, size_t n, const char *what, int slot)
{
    snprintf(out, n, "%s/%s-%d", root, what, slot);
}

/* Opens a child's own entry file for appending, cut to whole entries. */
static int open_entries(const char *path, size_t entry, off_t *size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    CCHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    CCHECK(fstat(fd, &st) == 0, "fstat %s: %s", path, strerror(errno));
    *size = st.st_size - st.st_size % (off_t)entry;
    if (*size != st.st_size)
        CCHECK(ftruncate(fd, *size) == 0, "ftruncate %s: %s", path, strerror(errno));
    return fd;
}

static void b_writer(void *arg)
{
    b_args *a = arg;
    char path[400];
    slot_path(path, sizeof path, "acks", a->slot);
    off_t size;
    int fd = open_entries(path, sizeof(b_ack), &size);
    uint32_t next = 0, quota = quota_of(B_TOTAL, B_WRITERS, a->slot);
    for (off_t pos = 0; pos < size; pos += (off_t)sizeof(b_ack)) {
        b_ack k;
        CCHECK(pread(fd, &k, sizeof k, pos) == (ssize_t)sizeof k, "pread %s", path);
        CCHECK(k.magic == (ACK_MAGIC | (uint32_t)a->slot) && k.seq == next && k.n >= 1 &&
               k.n <= MAX_BATCH && k.inc < a->inc, "writer %d: bad ack at %lld of %s",
               a->slot, (long long)pos, path);
        next += k.n;
    }
    ulog *log = child_open(logdir, NULL);
    static batch b;
    uint64_t rng = mix64(((uint64_t)a->slot << 32) + a->inc);
    int64_t last[PARTS] = { -1, -1, -1, -1 };
    while (next < quota) {
        rng = mix64(rng);
        size_t n = 1 + rng % MAX_BATCH;
        if (n > quota - next)
            n = quota - next;
        batch_fill(&b, (uint32_t)a->slot, a->inc, next, n);
        int rc = ulog_append(log, B_TOPIC, b.r, n);
        CCHECK(rc == 0, "writer %d incarnation %u: ulog_append: %s", a->slot, a->inc,
               ulog_errname(rc));
        check_offsets(&b, n, PARTS, last);
        b_ack k = { ACK_MAGIC | (uint32_t)a->slot, a->inc, next, (uint32_t)n };
        write_all(fd, &k, sizeof k, "ack");
        next += (uint32_t)n;
        sleep_us(B_PACE_US);
    }
    ulog_close(log);
    close(fd);
}

typedef struct rl_buf {
    int      fd;
    size_t   n;
    rl_entry e[128];            /* one page */
} rl_buf;

static void rl_flush(rl_buf *b)
{
    write_all(b->fd, b->e, b->n * sizeof b->e[0], "reader file");
    b->n = 0;
}

static void rl_put(rl_buf *b, uint32_t type, uint32_t a, int64_t x, int64_t y)
{
    if (b->n == sizeof b->e / sizeof b->e[0])
        rl_flush(b);
    b->e[b->n++] = (rl_entry){ type, a, x, y, 0 };
}

/* A START or CBEGIN entry followed by the subscription's positions. */
static void rl_positions(rl_buf *b, ulog_sub *s, uint32_t type, uint32_t a)
{
    rl_put(b, type, a, 0, 0);
    for (int32_t p = 0; p < PARTS; p++) {
        int64_t pos;
        int rc = ulog_position(s, p, &pos);
        CCHECK(rc == 0, "ulog_position: %s", ulog_errname(rc));
        rl_put(b, RL_POS, (uint32_t)p, pos, 0);
    }
}

static void b_commit(rl_buf *b, ulog_sub *s, uint32_t *commits)
{
    rl_positions(b, s, RL_CBEGIN, ++*commits);
    rl_flush(b);
    int rc = ulog_commit(s);
    CCHECK(rc == 0, "ulog_commit: %s", ulog_errname(rc));
    rl_put(b, RL_CDONE, *commits, 0, 0);
    rl_flush(b);
}

static void b_reader(void *arg)
{
    b_args *a = arg;
    char path[400], done[400], group[32];
    slot_path(path, sizeof path, "reader", a->slot);
    snprintf(done, sizeof done, "%s/writers-done", root);
    snprintf(group, sizeof group, "b-reader-%d", a->slot);
    off_t size;
    rl_buf b = { .fd = open_entries(path, sizeof(rl_entry), &size) };
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = child_sub(log, B_TOPIC, group, "earliest");
    rl_positions(&b, s, RL_START, a->inc);
    rl_flush(&b);
    uint64_t rng = mix64(((uint64_t)a->slot << 32) + a->inc + 99);
    int64_t every = 50 + (int64_t)(rng % 1000), since = 0;
    uint32_t commits = 0;
    for (;;) {
        ulog_msg m;
        int rc = ulog_poll(s, 50, &m);
        if (rc == 0) {
            uint64_t id;
            CCHECK(msg_ok(&m, &id), "reader %d: p%d/%lld: damaged record (value %zu bytes)",
                   a->slot, (int)m.partition, (long long)m.offset, m.value_len);
            rl_put(&b, RL_REC, (uint32_t)m.partition, m.offset, (int64_t)id);
            if (++since >= every) {
                b_commit(&b, s, &commits);
                since = 0;
            }
            continue;
        }
        CCHECK(rc == ULOG_ETIMEDOUT, "reader %d: ulog_poll: %s", a->slot, ulog_errname(rc));
        if (access(done, F_OK) != 0)
            continue;
        /* No writer is left: done when every partition is read up to its
         * high watermark. */
        bool all = true;
        for (int32_t p = 0; p < PARTS; p++) {
            int64_t lo, hi, pos;
            CCHECK(ulog_watermarks(log, B_TOPIC, p, &lo, &hi) == 0, "ulog_watermarks");
            CCHECK(ulog_position(s, p, &pos) == 0, "ulog_position");
            CCHECK(pos <= hi, "reader %d: p%d position %lld above high %lld", a->slot, (int)p,
                   (long long)pos, (long long)hi);
            all &= pos == hi;
        }
        if (all)
            break;
    }
    b_commit(&b, s, &commits);
    rl_put(&b, RL_END, 0, 0, 0);
    rl_flush(&b);
    ulog_sub_close(s);
    ulog_close(log);
    close(b.fd);
}

typedef struct b_stats {
    int     runs, torn, commits, landed, lost;
    int64_t redelivered;
} b_stats;

static void fmt_pos(char *out, size_t n, const int64_t pos[PARTS])
{
    snprintf(out, n, "[%lld %lld %lld %lld]", (long long)pos[0], (long long)pos[1],
             (long long)pos[2], (long long)pos[3]);
}

static void *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    void *buf = malloc((size_t)st.st_size + 1);
    cr_assert_not_null(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, (char *)buf + got, (size_t)st.st_size - got);
        cr_assert_gt(r, 0, "read %s: %s", path, strerror(errno));
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

/* Replays reader slot's file against the final log (id_at, high). */
static void b_check_reader(int slot, uint64_t *const id_at[PARTS], const int64_t high[PARTS],
                           b_stats *st)
{
    char path[400];
    slot_path(path, sizeof path, "reader", slot);
    size_t len;
    rl_entry *e = read_file(path, &len);
    size_t n = len / sizeof *e;
    int64_t done_pos[PARTS] = { 0 };    /* the group's commit; none: earliest, 0 */
    int64_t fl_pos[PARTS];              /* a commit in flight */
    bool inflight = false;
    uint32_t fl_seq = 0;
    int64_t covered[PARTS] = { 0 };     /* offsets below are seen */
    int64_t next[PARTS] = { 0 };
    bool live = false, ended = false;
    char s1[128], s2[128], s3[128];
    for (size_t i = 0; i < n;) {
        const rl_entry *x = &e[i];
        if (x->type == RL_START || x->type == RL_CBEGIN) {
            int64_t pos[PARTS];
            size_t k = 0;
            while (k < PARTS && i + 1 + k < n && e[i + 1 + k].type == RL_POS &&
                   e[i + 1 + k].a == k) {
                pos[k] = e[i + 1 + k].b;
                k++;
            }
            if (k < PARTS) {
                /* Cut short by the kill: never acted on. Only the next run
                 * (or nothing) may follow. */
                cr_assert(i + 1 + k == n || e[i + 1 + k].type == RL_START,
                          "reader %d entry %zu: a torn group inside a run", slot, i);
                st->torn++;
                live = false;
                i += 1 + k;
                continue;
            }
            fmt_pos(s1, sizeof s1, pos);
            fmt_pos(s2, sizeof s2, done_pos);
            if (x->type == RL_START) {
                st->runs++;
                bool at_done = memcmp(pos, done_pos, sizeof pos) == 0;
                bool at_fl = inflight && memcmp(pos, fl_pos, sizeof pos) == 0;
                if (inflight)
                    fmt_pos(s3, sizeof s3, fl_pos);
                cr_assert(at_done || at_fl,
                          "reader %d run %u started at %s; the group's last commit was %s%s%s",
                          slot, x->a, s1, s2, inflight ? ", the one in flight at the kill " : "",
                          inflight ? s3 : "");
                if (inflight) {
                    if (at_fl) {
                        memcpy(done_pos, fl_pos, sizeof pos);
                        st->landed++;
                    } else {
                        st->lost++;
                    }
                    inflight = false;
                }
                for (int p = 0; p < PARTS; p++) {
                    cr_assert_leq(pos[p], covered[p], "reader %d run %u: p%d starts at %lld, "
                                  "beyond what it has seen (%lld): records skipped", slot, x->a,
                                  p, (long long)pos[p], (long long)covered[p]);
                    st->redelivered += covered[p] - pos[p];
                }
                memcpy(next, pos, sizeof pos);
                live = true;
                ended = false;
            } else {
                cr_assert(live && !inflight, "reader %d entry %zu: commit out of place", slot, i);
                fmt_pos(s2, sizeof s2, next);
                cr_assert(memcmp(pos, next, sizeof pos) == 0,
                          "reader %d: commits %s but has read up to %s", slot, s1, s2);
                memcpy(fl_pos, pos, sizeof pos);
                fl_seq = x->a;
                inflight = true;
            }
            i += 1 + PARTS;
            continue;
        }
        cr_assert(live, "reader %d entry %zu (type %u) outside a run", slot, i, x->type);
        switch (x->type) {
        case RL_REC: {
            int32_t p = (int32_t)x->a;
            cr_assert(p >= 0 && p < PARTS);
            cr_assert_eq(x->b, next[p], "reader %d: p%d offset %lld polled after %lld (skip or "
                         "repeat within one run)", slot, (int)p, (long long)x->b,
                         (long long)next[p] - 1);
            cr_assert_lt(x->b, high[p], "reader %d: p%d offset %lld beyond the log (%lld)", slot,
                         (int)p, (long long)x->b, (long long)high[p]);
            cr_assert_eq((uint64_t)x->c, id_at[p][x->b], "reader %d: p%d/%lld polled as %llx, "
                         "the log holds %llx", slot, (int)p, (long long)x->b,
                         (unsigned long long)x->c, (unsigned long long)id_at[p][x->b]);
            if (x->b == covered[p])
                covered[p]++;
            next[p]++;
            break;
        }
        case RL_CDONE:
            cr_assert(inflight && x->a == fl_seq, "reader %d entry %zu: commit %u done, not begun",
                      slot, i, x->a);
            memcpy(done_pos, fl_pos, sizeof done_pos);
            inflight = false;
            st->commits++;
            break;
        case RL_END:
            cr_assert(!inflight);
            for (int p = 0; p < PARTS; p++)
                cr_assert_eq(next[p], high[p], "reader %d ended at p%d/%lld, high %lld", slot, p,
                             (long long)next[p], (long long)high[p]);
            ended = true;
            break;
        default:
            cr_assert_fail("reader %d entry %zu: type %u", slot, i, x->type);
        }
        i++;
    }
    cr_assert(ended, "reader %d: its last run did not end", slot);
    for (int p = 0; p < PARTS; p++)
        cr_assert_eq(covered[p], high[p], "reader %d: p%d seen up to %lld of %lld", slot, p,
                     (long long)covered[p], (long long)high[p]);
    free(e);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct b_child {
    pid_t    pid;
    uint32_t inc;
    bool     done;
    b_args   args;
} b_child;

static void b_start(b_child *c, bool reader)
{
    c->args.inc = c->inc;
    c->pid = spawn(reader ? b_reader : b_writer, &c->args, 140);
}

Test(multiproc, b_sigkill_writers_and_readers, .timeout = 170)
{
    make_topic(B_TOPIC, PARTS, cfg_of("flush.policy", "none", "segment.bytes", "524288", NULL));
    b_child ch[B_WRITERS + B_READERS];
    memset(ch, 0, sizeof ch);
    for (int i = 0; i < B_WRITERS + B_READERS; i++) {
        ch[i].args.slot = i < B_WRITERS ? i : i - B_WRITERS;
        b_start(&ch[i], i >= B_WRITERS);
    }
    uint64_t rng = 0xb0b;
    int kills = 0, wkills = 0, rkills = 0;
    bool flagged = false;
    int64_t t0 = mono_ns(), next_kill = t0 + 5000000, writers_ns = 0;
    for (;;) {
        bool all = true, writers = true;
        for (int i = 0; i < B_WRITERS + B_READERS; i++) {
            int st;
            if (!ch[i].done && waitpid(ch[i].pid, &st, WNOHANG) == ch[i].pid) {
                expect_ok(ch[i].pid, st, i < B_WRITERS ? "writer" : "reader");
                ch[i].done = true;
            }
            all &= ch[i].done;
            if (i < B_WRITERS)
                writers &= ch[i].done;
        }
        if (all)
            break;
        cr_assert_lt(mono_ns() - t0, 150000000000LL, "b: not done after 150 s");
        if (writers && !flagged) {
            /* Readers finish once they have read everything after this. */
            char done[400];
            snprintf(done, sizeof done, "%s/writers-done", root);
            int fd = open(done, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            cr_assert_geq(fd, 0);
            close(fd);
            flagged = true;
            writers_ns = mono_ns() - t0;
        }
        if (kills < B_MAX_KILLS && mono_ns() >= next_kill) {
            rng = mix64(rng);
            int live[B_WRITERS + B_READERS], nl = 0;
            for (int i = 0; i < B_WRITERS + B_READERS; i++)
                if (!ch[i].done)
                    live[nl++] = i;
            int i = live[rng % (uint64_t)nl];
            int st;
            kill(ch[i].pid, SIGKILL);
            cr_assert_eq(waitpid(ch[i].pid, &st, 0), ch[i].pid);
            if (WIFEXITED(st)) {            /* it finished just before */
                expect_ok(ch[i].pid, st, i < B_WRITERS ? "writer" : "reader");
                ch[i].done = true;
            } else {
                forget(ch[i].pid);
                cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status 0x%x\n%s",
                          st, child_errors());
                kills++;
                if (i < B_WRITERS)
                    wkills++;
                else
                    rkills++;
                ch[i].inc++;
                b_start(&ch[i], i >= B_WRITERS);
            }
            next_kill = mono_ns() + (int64_t)(5 + (rng >> 8) % 36) * 1000000;
        }
        sleep_us(500);
    }
    double run_s = (double)(mono_ns() - t0) / 1e9;
    cr_assert_geq(kills, B_MIN_KILLS, "only %d kills (%d writers, %d readers)", kills, wkills,
                  rkills);
    cr_assert_geq(wkills, 10, "only %d writer kills", wkills);
    cr_assert_geq(rkills, 10, "only %d reader kills", rkills);

    /* The final log: every record whole, each id once, each writer's
     * records in order within each partition. */
    ulog *log = open_at(logdir, NULL);
    ulog_sub *s = sub_earliest(log, B_TOPIC);
    int64_t high[PARTS], total = 0;
    uint64_t *id_at[PARTS];
    for (int p = 0; p < PARTS; p++) {
        int64_t lo;
        watermarks(log, B_TOPIC, p, &lo, &high[p]);
        cr_assert_eq(lo, 0);
        id_at[p] = malloc((size_t)(high[p] + 1) * sizeof *id_at[p]);
        cr_assert_not_null(id_at[p]);
        total += high[p];
    }
    uint64_t *ids = malloc((size_t)(total + 1) * sizeof *ids);
    cr_assert_not_null(ids);
    int64_t next[PARTS] = { 0 }, nids = 0;
    int64_t last[B_WRITERS][PARTS];
    for (int w = 0; w < B_WRITERS; w++)
        for (int p = 0; p < PARTS; p++)
            last[w][p] = -1;
    ulog_msg m;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        int32_t p = m.partition;
        cr_assert(p >= 0 && p < PARTS);
        cr_assert_eq(m.offset, next[p]);
        cr_assert_lt(m.offset, high[p]);
        uint64_t id;
        cr_assert(msg_ok(&m, &id), "p%d/%lld: damaged record", (int)p, (long long)m.offset);
        uint32_t w = id_writer(id);
        cr_assert(w < B_WRITERS && id_inc(id) <= ch[w].inc, "p%d/%lld: unknown id %llx", (int)p,
                  (long long)m.offset, (unsigned long long)id);
        cr_assert_gt((int64_t)id, last[w][p], "p%d/%lld: writer %u's %llx after its %llx "
                     "(order)", (int)p, (long long)m.offset, w, (unsigned long long)id,
                     (unsigned long long)last[w][p]);
        last[w][p] = (int64_t)id;
        id_at[p][m.offset] = id;
        ids[nids++] = id;
        next[p]++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "final read: %s", ulog_errname(rc));
    cr_assert_eq(nids, total);
    qsort(ids, (size_t)nids, sizeof *ids, cmp_u64);
    for (int64_t i = 1; i < nids; i++)
        cr_assert_neq(ids[i], ids[i - 1], "record %llx is in the log twice",
                      (unsigned long long)ids[i]);

    /* Every ack, each sequence number once, in the log. */
    int64_t acked = 0;
    for (int w = 0; w < B_WRITERS; w++) {
        char path[400];
        slot_path(path, sizeof path, "acks", w);
        size_t len;
        b_ack *k = read_file(path, &len);
        uint32_t seq = 0;
        for (size_t j = 0; j < len / sizeof *k; j++) {
            cr_assert_eq(k[j].magic, ACK_MAGIC | (uint32_t)w);
            cr_assert_eq(k[j].seq, seq, "writer %d: ack of seq %u after %u", w, k[j].seq, seq);
            for (uint32_t q = 0; q < k[j].n; q++) {
                uint64_t id = rec_id((uint32_t)w, k[j].inc, seq + q);
                cr_assert_not_null(bsearch(&id, ids, (size_t)nids, sizeof *ids, cmp_u64),
                                   "acked record %llx (writer %d run %u seq %u) is not in the "
                                   "log", (unsigned long long)id, w, k[j].inc, seq + q);
            }
            seq += k[j].n;
        }
        cr_assert_eq(seq, quota_of(B_TOTAL, B_WRITERS, w), "writer %d acked %u records", w,
                     seq);
        acked += seq;
        free(k);
    }
    cr_assert_eq(acked, (int64_t)B_TOTAL);

    b_stats st[B_READERS];
    memset(st, 0, sizeof st);
    for (int r = 0; r < B_READERS; r++) {
        b_check_reader(r, id_at, high, &st[r]);
        char group[32];
        snprintf(group, sizeof group, "b-reader-%d", r);
        expect_group_at_end(log, group, B_TOPIC, PARTS);
    }
    ulog_sub_close(s);
    ulog_close(log);
    for (int p = 0; p < PARTS; p++)
        free(id_at[p]);
    free(ids);
    cr_log_info("multiproc b: %d kills (%d of writers, %d of readers) in %.2f s (writers done "
                "after %.2f s); %lld records in the log, %lld acked, %lld written but not acked",
                kills, wkills, rkills, run_s, (double)writers_ns / 1e9, (long long)total,
                (long long)acked, (long long)(total - acked));
    for (int r = 0; r < B_READERS; r++)
        cr_log_info("multiproc b: reader %d: %d runs, %d commits, %d commits in flight at a kill "
                    "(%d landed, %d not), %d torn entry groups, %lld records delivered again",
                    r, st[r].runs, st[r].commits, st[r].landed + st[r].lost, st[r].landed,
                    st[r].lost, st[r].torn, (long long)st[r].redelivered);
}

/* ================================================================ c, d, e */

#define W_TOPIC "wake"

/* Blocked ulog_poll in one process, append in another. */
typedef struct c_args {
    int ready;                  /* write end: "about to wait" */
    int rep;                    /* write end: reports */
    int timeout_ms;
    int rounds;
} c_args;

typedef struct c_report {
    int32_t rc, partition;
    int64_t offset, t_start, t_end;
    size_t  value_len;
    char    value[8];
} c_report;

static void c_waiter(void *arg)
{
    c_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = NULL;
    int rc = ulog_subscribe(log, W_TOPIC, NULL, NULL, &s);         /* latest */
    CCHECK(rc == 0, "ulog_subscribe: %s", ulog_errname(rc));
    ulog_msg m;
    rc = ulog_poll(s, 0, &m);
    CCHECK(rc == ULOG_ETIMEDOUT, "ulog_poll(0) on an empty topic: %s", ulog_errname(rc));
    for (int i = 0; i < a->rounds; i++) {
        write_all(a->ready, "r", 1, "ready");
        c_report r = { 0 };
        r.t_start = mono_ns();
        r.rc = ulog_poll(s, a->timeout_ms, &m);
        r.t_end = mono_ns();
        if (r.rc == 0) {
            r.partition = m.partition;
            r.offset = m.offset;
            r.value_len = m.value_len;
            memcpy(r.value, m.value, m.value_len < 8 ? m.value_len : 8);
        }
        write_all(a->rep, &r, sizeof r, "report");
    }
    ulog_sub_close(s);
    ulog_close(log);
}

Test(multiproc, c_blocked_poll_wakes_on_other_process_append, .timeout = 60)
{
    make_topic(W_TOPIC, 2, cfg_of("flush.policy", "none", NULL));
    static const int timeouts[] = { -1, 10000 };
    for (int v = 0; v < 2; v++) {
        int ready[2], rep[2];
        make_pipe(ready);
        make_pipe(rep);
        c_args a = { ready[1], rep[1], timeouts[v], 3 };
        pid_t pid = spawn(c_waiter, &a, 50);
        close(ready[1]);
        close(rep[1]);
        ready[1] = rep[1] = -1;
        ulog *log = open_at(logdir, NULL);
        for (int i = 0; i < a.rounds; i++) {
            char c;
            parent_read(ready[0], &c, 1, 10000, "ready from the waiter");
            sleep_us(200000);
            ulog_record r = { .value = "wake", .value_len = 4, .timestamp = ULOG_TIMESTAMP_NOW,
                              .partition = i % 2 };
            int64_t t_app = mono_ns();
            int rc = ulog_append(log, W_TOPIC, &r, 1);
            cr_assert_eq(rc, 0, "ulog_append: %s", ulog_errname(rc));
            c_report rp;
            parent_read(rep[0], &rp, sizeof rp, 15000, "the waiter's report");
            cr_assert_eq(rp.rc, 0, "timeout %d round %d: ulog_poll gave %s after %.1f ms",
                         timeouts[v], i, ulog_errname(rp.rc), (double)(rp.t_end - rp.t_start) / 1e6);
            cr_assert_eq(rp.partition, r.partition);
            cr_assert_eq(rp.offset, r.offset);
            cr_assert(rp.value_len == 4 && memcmp(rp.value, "wake", 4) == 0);
            double blocked_ms = (double)(t_app - rp.t_start) / 1e6;
            double wake_ms = (double)(rp.t_end - t_app) / 1e6;
            cr_assert_geq(blocked_ms, 100.0, "the waiter was not blocked long before the "
                          "append (%.1f ms)", blocked_ms);
            cr_assert_lt(wake_ms, 2000.0, "timeout %d: woke %.1f ms after the append",
                         timeouts[v], wake_ms);
            cr_log_info("multiproc c: ulog_poll(%d) blocked %.0f ms in another process, returned "
                        "the record %.2f ms after the append", timeouts[v], blocked_ms, wake_ms);
        }
        ulog_close(log);
        join_ok(pid, 10000, "waiter");
        close_pair(ready);
        close_pair(rep);
    }
}

/* Idle subscribers. */
typedef struct d_args {
    bool use_fd;                /* a thread in poll(2) on ulog_sub_fd, not ulog_poll */
    int  rep;
} d_args;

typedef struct d_report {
    int32_t rc;                 /* ulog_poll's result, or poll(2)'s */
    int32_t revents;
    int64_t wall_ns, cpu_ns, rusage_us;
} d_report;

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t rusage_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

typedef struct fd_waiter {
    int fd, rc, revents;
} fd_waiter;

static void *fd_wait_main(void *arg)
{
    fd_waiter *w = arg;
    struct pollfd pfd = { w->fd, POLLIN, 0 };
    w->rc = poll(&pfd, 1, 2000);
    w->revents = pfd.revents;
    return NULL;
}

static void d_idle(void *arg)
{
    d_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = NULL;
    int rc = ulog_subscribe(log, W_TOPIC, NULL, NULL, &s);
    CCHECK(rc == 0, "ulog_subscribe: %s", ulog_errname(rc));
    int fd = -1;
    if (a->use_fd) {
        fd = ulog_sub_fd(s);
        CCHECK(fd >= 0, "ulog_sub_fd: %s", ulog_errname(fd));
    }
    ulog_msg m;
    while ((rc = ulog_poll(s, 0, &m)) == 0)
        ;
    CCHECK(rc == ULOG_ETIMEDOUT, "ulog_poll: %s", ulog_errname(rc));
    sleep_us(100000);           /* let the library's threads settle */
    d_report r = { 0 };
    int64_t c0 = cpu_ns(), u0 = rusage_us(), t0 = mono_ns();
    if (a->use_fd) {
        fd_waiter w = { fd, -1, 0 };
        pthread_t th;
        CCHECK(pthread_create(&th, NULL, fd_wait_main, &w) == 0, "pthread_create");
        pthread_join(th, NULL);
        r.rc = w.rc;
        r.revents = w.revents;
    } else {
        r.rc = ulog_poll(s, 2000, &m);
    }
    r.wall_ns = mono_ns() - t0;
    r.cpu_ns = cpu_ns() - c0;
    r.rusage_us = rusage_us() - u0;
    write_all(a->rep, &r, sizeof r, "report");
    ulog_sub_close(s);
    ulog_close(log);
}

Test(multiproc, d_idle_subscriber_uses_no_cpu, .timeout = 60)
{
    make_topic(W_TOPIC, 2, cfg_of("flush.policy", "none", NULL));
    ulog *log = open_at(logdir, NULL);
    ulog_record r = { .value = "old", .value_len = 3, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 1 };
    cr_assert_eq(ulog_append(log, W_TOPIC, &r, 1), 0);
    ulog_close(log);
    int rep[2][2];
    d_args a[2];
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        make_pipe(rep[i]);
        a[i] = (d_args){ i == 1, rep[i][1] };
        pid[i] = spawn(d_idle, &a[i], 30);
    }
    for (int i = 0; i < 2; i++) {
        const char *what = i ? "a thread in poll(2) on ulog_sub_fd" : "ulog_poll(2000)";
        join_ok(pid[i], 20000, what);
        d_report d;
        parent_read(rep[i][0], &d, sizeof d, 1000, "report");
        close_pair(rep[i]);
        if (i == 0)
            cr_assert_eq(d.rc, ULOG_ETIMEDOUT, "%s: %s", what, ulog_errname(d.rc));
        else
            cr_assert_eq(d.rc, 0, "%s: poll gave %d (revents 0x%x) with nothing appended", what,
                         d.rc, d.revents);
        cr_assert_geq(d.wall_ns, 1990000000LL, "%s: returned after %.1f ms", what,
                      (double)d.wall_ns / 1e6);
        cr_assert_lt(d.cpu_ns, 20000000LL, "%s: %.2f ms of CPU in %.0f ms idle", what,
                     (double)d.cpu_ns / 1e6, (double)d.wall_ns / 1e6);
        cr_assert_lt(d.rusage_us, 20000LL, "%s: %.2f ms of CPU (getrusage) idle", what,
                     (double)d.rusage_us / 1e3);
        cr_log_info("multiproc d: %s idle %.0f ms: %.3f ms CPU (getrusage %.3f ms)", what,
                    (double)d.wall_ns / 1e6, (double)d.cpu_ns / 1e6, (double)d.rusage_us / 1e3);
    }
}

/* ulog_sub_fd readable on another process's append. */
typedef struct e_report {
    int32_t got, spurious, partition, pad;
    int64_t offset, t_wait, t_ready;
} e_report;

static void e_waiter(void *arg)
{
    c_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = NULL;
    int rc = ulog_subscribe(log, W_TOPIC, NULL, NULL, &s);
    CCHECK(rc == 0, "ulog_subscribe: %s", ulog_errname(rc));
    int fd = ulog_sub_fd(s);
    CCHECK(fd >= 0, "ulog_sub_fd: %s", ulog_errname(fd));
    ulog_msg m;
    while ((rc = ulog_poll(s, 0, &m)) == 0)
        ;
    CCHECK(rc == ULOG_ETIMEDOUT, "ulog_poll: %s", ulog_errname(rc));
    for (int i = 0; i < a->rounds; i++) {
        e_report r = { 0 };
        write_all(a->ready, "r", 1, "ready");
        r.t_wait = mono_ns();
        while (r.got == 0 && mono_ns() - r.t_wait < 5000000000LL) {
            struct pollfd pfd = { fd, POLLIN, 0 };
            rc = poll(&pfd, 1, 5000);
            if (rc < 0 && errno == EINTR)
                continue;
            CCHECK(rc >= 0, "poll: %s", strerror(errno));
            if (rc == 0)
                break;
            CCHECK(pfd.revents & POLLIN, "revents 0x%x", pfd.revents);
            r.t_ready = mono_ns();
            /* The documented loop: poll with timeout 0 until ULOG_ETIMEDOUT. */
            while ((rc = ulog_poll(s, 0, &m)) == 0) {
                if (r.got++ == 0) {
                    r.partition = m.partition;
                    r.offset = m.offset;
                }
            }
            CCHECK(rc == ULOG_ETIMEDOUT, "ulog_poll: %s", ulog_errname(rc));
            if (r.got == 0)
                r.spurious++;
        }
        write_all(a->rep, &r, sizeof r, "report");
    }
    ulog_sub_close(s);
    ulog_close(log);
}

Test(multiproc, e_sub_fd_readable_on_other_process_append, .timeout = 60)
{
    make_topic(W_TOPIC, 2, cfg_of("flush.policy", "none", NULL));
    int ready[2], rep[2];
    make_pipe(ready);
    make_pipe(rep);
    c_args a = { ready[1], rep[1], 0, 4 };
    pid_t pid = spawn(e_waiter, &a, 50);
    close(ready[1]);
    close(rep[1]);
    ready[1] = rep[1] = -1;
    ulog *log = open_at(logdir, NULL);
    int spurious = 0;
    for (int i = 0; i < a.rounds; i++) {
        char c;
        parent_read(ready[0], &c, 1, 10000, "ready from the waiter");
        sleep_us(200000);
        ulog_record r = { .value = "ring", .value_len = 4, .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = i % 2 };
        int64_t t_app = mono_ns();
        cr_assert_eq(ulog_append(log, W_TOPIC, &r, 1), 0);
        e_report e;
        parent_read(rep[0], &e, sizeof e, 15000, "the waiter's report");
        cr_assert_eq(e.got, 1, "round %d: the descriptor gave %d records (%d wake-ups with none)",
                     i, e.got, e.spurious);
        cr_assert_eq(e.partition, r.partition);
        cr_assert_eq(e.offset, r.offset);
        double blocked_ms = (double)(t_app - e.t_wait) / 1e6;
        double ready_ms = (double)(e.t_ready - t_app) / 1e6;
        cr_assert_geq(blocked_ms, 100.0, "the waiter was not waiting before the append");
        cr_assert_geq(ready_ms, 0.0, "readable before the append");
        /* Tighter than c's bound: the library's descriptor thread looks at
         * the bell at least once a second on its own, so 2 s would not
         * notice a lost wake-up. */
        cr_assert_lt(ready_ms, 500.0, "readable %.1f ms after the append", ready_ms);
        spurious += e.spurious;
        cr_log_info("multiproc e: ulog_sub_fd readable %.2f ms after another process's append",
                    ready_ms);
    }
    ulog_close(log);
    join_ok(pid, 10000, "waiter");
    close_pair(ready);
    close_pair(rep);
    if (spurious)
        cr_log_info("multiproc e: %d wake-ups of the descriptor found nothing", spurious);
}

/* ================================================================ f */

#define F_TOPIC "seek"
#define F_PARTS 2
#define F_T0    1767225600000LL  /* 2026-01-01T00:00:00Z */

/* Record at (p, off): timestamp F_T0 + 10 * off, value (p, off) + padding. */
static size_t f_value(uint8_t buf[16 + 64], int32_t p, int64_t off)
{
    uint64_t x = mix64((uint64_t)off * 2 + (uint64_t)p);
    size_t pad = (size_t)(x % 65);
    memcpy(buf, &p, 4);
    memset(buf + 4, 0, 4);
    memcpy(buf + 8, &off, 8);
    for (size_t i = 0; i < pad; i++)
        buf[16 + i] = (uint8_t)mix64(x + i);
    return 16 + pad;
}

static void f_writer(void *arg)
{
    int ready = *(int *)arg;
    ulog *log = child_open(logdir, NULL);
    int64_t next[F_PARTS];
    for (int p = 0; p < F_PARTS; p++) {
        int64_t lo;
        CCHECK(ulog_watermarks(log, F_TOPIC, p, &lo, &next[p]) == 0, "watermarks");
    }
    static uint8_t v[10][16 + 64];
    uint64_t rng = 0xf00d;
    bool told = false;
    for (int64_t total = 0; total < 2000000;) {
        rng = mix64(rng);
        int32_t p = (int32_t)(rng % F_PARTS);
        size_t n = 1 + (rng >> 8) % 10;
        ulog_record r[10];
        for (size_t i = 0; i < n; i++) {
            int64_t off = next[p] + (int64_t)i;
            r[i] = (ulog_record){ .value = v[i], .value_len = f_value(v[i], p, off),
                                  .timestamp = F_T0 + 10 * off, .partition = p };
        }
        int rc = ulog_append(log, F_TOPIC, r, n);
        CCHECK(rc == 0, "ulog_append: %s", ulog_errname(rc));
        for (size_t i = 0; i < n; i++)
            CCHECK(r[i].offset == next[p] + (int64_t)i, "the only writer got offset %lld, "
                   "expected %lld", (long long)r[i].offset, (long long)next[p] + (long long)i);
        next[p] += (int64_t)n;
        total += (int64_t)n;
        if (!told && next[0] >= 1000 && next[1] >= 1000) {
            write_all(ready, "r", 1, "ready");
            told = true;
        }
        sleep_us(100);
    }
    ulog_close(log);
}

/* Polls up to k records without waiting and checks each against exp[],
 * the offset the next record of each partition must have. */
static int f_poll_check(ulog_sub *s, int k, int64_t exp[F_PARTS])
{
    int got = 0;
    for (int i = 0; i < k; i++) {
        ulog_msg m;
        int rc = ulog_poll(s, 0, &m);
        if (rc == ULOG_ETIMEDOUT)
            break;
        cr_assert_eq(rc, 0, "ulog_poll: %s", ulog_errname(rc));
        int32_t p = m.partition;
        cr_assert(p >= 0 && p < F_PARTS);
        cr_assert_eq(m.offset, exp[p], "p%d: polled offset %lld, expected %lld", (int)p,
                     (long long)m.offset, (long long)exp[p]);
        uint8_t want[16 + 64];
        size_t n = f_value(want, p, m.offset);
        cr_assert(m.value_len == n && memcmp(m.value, want, n) == 0, "p%d/%lld: wrong value",
                  (int)p, (long long)m.offset);
        cr_assert_eq(m.timestamp, F_T0 + 10 * m.offset);
        exp[p]++;
        got++;
    }
    return got;
}

static int64_t high_of(ulog *log, const char *topic, int32_t p)
{
    int64_t lo, hi;
    watermarks(log, topic, p, &lo, &hi);
    return hi;
}

static int64_t f_high(ulog *log, int32_t p)
{
    return high_of(log, F_TOPIC, p);
}

Test(multiproc, f_seek_while_another_process_appends, .timeout = 90)
{
    make_topic(F_TOPIC, F_PARTS, cfg_of("flush.policy", "none", "segment.bytes", "65536", NULL));
    int ready[2];
    make_pipe(ready);
    pid_t pid = spawn(f_writer, &ready[1], 80);
    close(ready[1]);
    ready[1] = -1;
    char c;
    parent_read(ready[0], &c, 1, 20000, "the writer's first records");
    close_pair(ready);
    ulog *log = open_at(logdir, NULL);
    ulog_sub *s = sub_earliest(log, F_TOPIC);
    int64_t exp[F_PARTS] = { 0, 0 };
    uint64_t rng = 0x5eec;
    int ops = 0, seeks = 0, time_seeks = 0, past_high = 0, polled = 0, at_high = 0;
    int64_t t0 = mono_ns();
    while (ops < 400 || mono_ns() - t0 < 1500000000LL) {
        cr_assert_lt(mono_ns() - t0, 60000000000LL);
        rng = mix64(rng);
        int32_t p = (int32_t)(rng % F_PARTS);
        int op = (int)((rng >> 8) % 6);
        int rc;
        if (op <= 1) {                          /* to an offset of one partition */
            int64_t hi = f_high(log, p);
            int64_t off = (rng >> 16) % 8 == 0 ? hi : (int64_t)((rng >> 16) % (uint64_t)(hi + 1));
            at_high += off == hi;
            rc = ulog_seek(s, p, off);
            cr_assert_eq(rc, 0, "ulog_seek p%d %lld (high %lld): %s", (int)p, (long long)off,
                         (long long)hi, ulog_errname(rc));
            exp[p] = off;
            seeks++;
        } else if (op == 2) {                   /* every partition to one offset */
            int64_t hi = f_high(log, 0) < f_high(log, 1) ? f_high(log, 0) : f_high(log, 1);
            int64_t off = (int64_t)((rng >> 16) % (uint64_t)(hi + 1));
            rc = ulog_seek(s, ULOG_PARTITION_ANY, off);
            cr_assert_eq(rc, 0, "ulog_seek any %lld: %s", (long long)off, ulog_errname(rc));
            exp[0] = exp[1] = off;
            seeks++;
        } else if (op <= 4) {                   /* by time, one partition or all */
            bool any = op == 4;
            int64_t before[F_PARTS], after[F_PARTS];
            for (int q = 0; q < F_PARTS; q++)
                before[q] = f_high(log, q);
            int64_t span = (before[p] + 200) * 10;
            int64_t ts = F_T0 - 1000 + (int64_t)((rng >> 16) % (uint64_t)(span + 1000));
            rc = ulog_seek_time(s, any ? ULOG_PARTITION_ANY : p, ts);
            cr_assert_eq(rc, 0, "ulog_seek_time %lld: %s", (long long)ts, ulog_errname(rc));
            for (int q = 0; q < F_PARTS; q++) {
                if (!any && q != p)
                    continue;
                after[q] = f_high(log, q);
                /* The first offset whose timestamp is >= ts. */
                int64_t target = ts <= F_T0 ? 0 : (ts - F_T0 + 9) / 10;
                int64_t pos;
                cr_assert_eq(ulog_position(s, q, &pos), 0);
                if (target < before[q])
                    cr_assert_eq(pos, target, "seek_time p%d %lld: at %lld, expected %lld", q,
                                 (long long)ts, (long long)pos, (long long)target);
                else
                    cr_assert(pos >= before[q] && pos <= target && pos <= after[q],
                              "seek_time p%d past the end (%lld): at %lld, high was %lld..%lld",
                              q, (long long)target, (long long)pos, (long long)before[q],
                              (long long)after[q]);
                exp[q] = pos;
            }
            time_seeks++;
        } else {                                /* beyond the end: refused, unchanged */
            int64_t pos;
            rc = ulog_seek(s, p, f_high(log, p) + 1000000000);
            cr_assert_eq(rc, ULOG_EOFFSET, "ulog_seek past the end: %s", ulog_errname(rc));
            cr_assert_eq(ulog_position(s, p, &pos), 0);
            cr_assert_eq(pos, exp[p], "a refused seek moved p%d from %lld to %lld", (int)p,
                         (long long)exp[p], (long long)pos);
            past_high++;
        }
        polled += f_poll_check(s, (int)((rng >> 40) % 40), exp);
        ops++;
    }
    /* Read on to the end while the writer goes on. */
    for (int i = 0; i < 50; i++)
        polled += f_poll_check(s, 1000, exp);
    ulog_sub_close(s);
    ulog_close(log);
    kill_running(pid, "writer");
    cr_log_info("multiproc f: %d operations in %.2f s while another process appended: %d seeks "
                "(%d to the high watermark), %d by time, %d refused past the end, %d records "
                "polled and checked", ops, (double)(mono_ns() - t0) / 1e9, seeks, at_high,
                time_seeks, past_high, polled);
}

/* ================================================================ g */

/*
 * A steady appender S appends small batches to both partitions all along,
 * with alarm(G_BOUND_S) re-armed before every append: an append that does
 * not return within the bound kills it (SIGALRM), which fails the test. In
 * between, victims append large batches and are SIGKILLed at random
 * moments (flush none, small segments: a victim spends most of its time
 * under a writer lock, writing or rolling); and every fifth round a
 * victim takes a partition's writer lock itself (the robust mutex in the
 * partition's head) and is killed holding it, while S waits on it. After
 * each kill a probe process must append to both partitions within the
 * bound. Finally the log must be whole: dense, every record intact, every
 * acknowledged record of S and the probes present.
 */

#define G_TOPIC   "locks"
#define G_PARTS   2
#define G_ROUNDS  60
#define G_BOUND_S 10
#define G_S       0            /* writer ids in record ids */
#define G_VICTIM  BIG_WRITER
#define G_PROBE   2

typedef struct g_args {
    int round;
    int ready;                  /* write end */
    int stop;                   /* S: read end; EOF means stop */
    int stop_w;                 /* S: the write end, closed in S */
    int rep;                    /* S: report */
} g_args;

typedef struct g_report {
    int64_t appends, records, max_ns;
} g_report;

static void g_steady(void *arg)
{
    g_args *a = arg;
    close(a->stop_w);
    ulog *log = child_open(logdir, NULL);
    char path[400];
    slot_path(path, sizeof path, "g-acks", 0);
    off_t size;
    int fd = open_entries(path, sizeof(b_ack), &size);
    write_all(a->ready, "r", 1, "ready");
    static batch b;
    g_report r = { 0 };
    uint32_t seq = 0;
    uint64_t rng = 0x57ead;
    for (;;) {
        char c;
        ssize_t n = read(a->stop, &c, 1);
        if (n == 0)
            break;
        rng = mix64(rng);
        size_t k = 1 + rng % 8;
        batch_fill(&b, G_S, 0, seq, k);
        for (size_t i = 0; i < k; i++)
            b.r[i].partition = (int32_t)((seq + i) % G_PARTS);
        alarm(G_BOUND_S);
        int64_t t = mono_ns();
        int rc = ulog_append(log, G_TOPIC, b.r, k);
        t = mono_ns() - t;
        alarm(0);
        CCHECK(rc == 0, "steady appender: ulog_append: %s", ulog_errname(rc));
        b_ack ack = { ACK_MAGIC, 0, seq, (uint32_t)k };
        write_all(fd, &ack, sizeof ack, "ack");
        seq += (uint32_t)k;
        r.appends++;
        r.records += (int64_t)k;
        if (t > r.max_ns)
            r.max_ns = t;
        sleep_us(200);
    }
    write_all(a->rep, &r, sizeof r, "report");
    ulog_close(log);
    close(fd);
}

static void g_victim(void *arg)
{
    g_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    write_all(a->ready, "r", 1, "ready");
    static batch b;
    for (uint32_t seq = 0;; seq += MAX_BATCH) {
        batch_fill(&b, G_VICTIM, (uint32_t)a->round, seq, MAX_BATCH);
        for (size_t i = 0; i < MAX_BATCH; i++)
            b.r[i].partition = (int32_t)((seq / MAX_BATCH + (i >= MAX_BATCH / 2)) % G_PARTS);
        int rc = ulog_append(log, G_TOPIC, b.r, MAX_BATCH);
        CCHECK(rc == 0, "victim: ulog_append: %s", ulog_errname(rc));
    }
}

/* Takes partition (round / 5 % 2)'s writer lock directly and holds it
 * until killed. A previous holder may have died: then the lock comes
 * with EOWNERDEAD and is left as it is, unrepaired, for the next locker. */
static void g_holder(void *arg)
{
    g_args *a = arg;
    char path[600];
    snprintf(path, sizeof path, "%s/topics/%s/%d/head", logdir, G_TOPIC, (a->round / 5) % 2);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    CCHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    ulog__head *h = mmap(NULL, ULOG__HEAD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CCHECK(h != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
    int rc = pthread_mutex_lock(&h->wlock);
    CCHECK(rc == 0 || rc == EOWNERDEAD, "pthread_mutex_lock: %s", strerror(rc));
    write_all(a->ready, "r", 1, "ready");
    for (;;)
        pause();
}

static void g_probe(void *arg)
{
    g_args *a = arg;
    alarm(G_BOUND_S);
    ulog *log = child_open(logdir, NULL);
    static batch b;
    batch_fill(&b, G_PROBE, (uint32_t)a->round, 0, G_PARTS);
    for (int32_t p = 0; p < G_PARTS; p++)
        b.r[p].partition = p;
    int rc = ulog_append(log, G_TOPIC, b.r, G_PARTS);
    CCHECK(rc == 0, "probe %d: ulog_append: %s", a->round, ulog_errname(rc));
    ulog_close(log);
}

/* Whether partition p's writer lock is owned by the (dead) thread `tid`:
 * glibc keeps the owner's thread id in the mutex. Informational only. */
static bool g_owned_by(ulog__head *h, pid_t tid)
{
    return __atomic_load_n(&h->wlock.__data.__owner, __ATOMIC_RELAXED) == tid;
}

Test(multiproc, g_writers_killed_holding_the_lock_block_nobody, .timeout = 120)
{
    /* Round 0's probe record in each partition: the heads exist. */
    ulog *log = open_with_topic(logdir, NULL, G_TOPIC, G_PARTS,
                                cfg_of("flush.policy", "none", "segment.bytes", "262144", NULL));
    static batch b0;
    batch_fill(&b0, G_PROBE, 0, 0, G_PARTS);
    for (int32_t p = 0; p < G_PARTS; p++)
        b0.r[p].partition = p;
    cr_assert_eq(ulog_append(log, G_TOPIC, b0.r, G_PARTS), 0);
    ulog_close(log);
    ulog__head *h[G_PARTS];
    for (int p = 0; p < G_PARTS; p++)
        h[p] = head_map_at(logdir, G_TOPIC, p);
    int ready[2], stop[2], rep[2];
    make_pipe(ready);
    make_pipe(stop);
    make_pipe(rep);
    cr_assert_eq(fcntl(stop[0], F_SETFL, O_NONBLOCK), 0);
    g_args sa = { 0, ready[1], stop[0], stop[1], rep[1] };
    pid_t steady = spawn(g_steady, &sa, 110);
    close(stop[0]);
    stop[0] = -1;
    char c;
    parent_read(ready[0], &c, 1, 10000, "ready from the steady appender");
    /* A victim killed at once may have said "ready" already: each round
     * drains what is left before its own victim starts. */
    cr_assert_eq(fcntl(ready[0], F_SETFL, O_NONBLOCK), 0);
    uint64_t rng = 0x10c4;
    int holders = 0, victims = 0, in_lock = 0;
    int64_t t0 = mono_ns(), worst_probe = 0;
    for (int round = 1; round <= G_ROUNDS; round++) {
        while (read(ready[0], &c, 1) == 1)
            ;
        g_args va = { round, ready[1], -1, -1, -1 };
        bool holder = round % 5 == 0;
        rng = mix64(rng);
        pid_t v = spawn(holder ? g_holder : g_victim, &va, 60);
        if (holder || rng % 8 != 0) {       /* else: kill at once, wherever it is */
            parent_read(ready[0], &c, 1, 10000, "ready from a victim");
            sleep_us(holder ? 200000 : (int64_t)((rng >> 8) % 15000));
        }
        check_running(steady, "the steady appender");
        int st;
        kill(v, SIGKILL);
        waitpid(v, &st, 0);
        forget(v);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            char s[160];
            status_text(s, sizeof s, st);
            cr_assert_fail("round %d: the victim %s\n%s", round, s, child_errors());
        }
        for (int p = 0; p < G_PARTS; p++)
            in_lock += g_owned_by(h[p], v);
        holders += holder;
        victims += !holder;
        /* A fresh process appends to both partitions within the bound. */
        g_args pa = { round, -1, -1, -1, -1 };
        int64_t t = mono_ns();
        join_ok(spawn(g_probe, &pa, G_BOUND_S + 5), (G_BOUND_S + 10) * 1000,
                "a probe appending after a kill");
        t = mono_ns() - t;
        if (t > worst_probe)
            worst_probe = t;
    }
    check_running(steady, "the steady appender");
    close(stop[1]);                             /* stop */
    stop[1] = -1;
    join_ok(steady, 20000, "the steady appender");
    g_report sr;
    parent_read(rep[0], &sr, sizeof sr, 1000, "the steady appender's report");
    close_pair(ready);
    close_pair(rep);
    for (int p = 0; p < G_PARTS; p++)
        head_unmap(h[p]);

    /* The log is whole and holds every acknowledged record. */
    log = open_at(logdir, NULL);
    ulog_sub *s = sub_earliest(log, G_TOPIC);
    int64_t next[G_PARTS] = { 0 }, records = 0, total = 0;
    uint64_t *ids = NULL;
    size_t cap = 0;
    ulog_msg m;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        int32_t p = m.partition;
        cr_assert(p >= 0 && p < G_PARTS);
        cr_assert_eq(m.offset, next[p]);
        next[p]++;
        uint64_t id;
        cr_assert(msg_ok(&m, &id), "p%d/%lld: damaged record", (int)p, (long long)m.offset);
        if ((size_t)records == cap) {
            cap = cap ? 2 * cap : 65536;
            ids = realloc(ids, cap * sizeof *ids);
            cr_assert_not_null(ids);
        }
        ids[records++] = id;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "final read: %s", ulog_errname(rc));
    for (int p = 0; p < G_PARTS; p++)
        total += high_of(log, G_TOPIC, p);
    cr_assert_eq(records, total);
    qsort(ids, (size_t)records, sizeof *ids, cmp_u64);
    for (int64_t i = 1; i < records; i++)
        cr_assert_neq(ids[i], ids[i - 1], "record %llx twice", (unsigned long long)ids[i]);
    char path[400];
    slot_path(path, sizeof path, "g-acks", 0);
    size_t len;
    b_ack *k = read_file(path, &len);
    int64_t acked = 0;
    for (size_t j = 0; j < len / sizeof *k; j++)
        for (uint32_t q = 0; q < k[j].n; q++) {
            uint64_t id = rec_id(G_S, 0, k[j].seq + q);
            cr_assert_not_null(bsearch(&id, ids, (size_t)records, sizeof *ids, cmp_u64),
                               "acked record %u of the steady appender is missing", k[j].seq + q);
            acked++;
        }
    cr_assert_eq(acked, sr.records);
    for (int round = 0; round <= G_ROUNDS; round++)
        for (uint32_t q = 0; q < G_PARTS; q++) {
            uint64_t id = rec_id(G_PROBE, (uint32_t)round, q);
            cr_assert_not_null(bsearch(&id, ids, (size_t)records, sizeof *ids, cmp_u64),
                               "probe %d's record %u is missing", round, q);
        }
    free(k);
    free(ids);
    ulog_sub_close(s);
    ulog_close(log);
    cr_log_info("multiproc g: %d victims killed at random moments, %d killed holding a writer "
                "lock on purpose, %d still owning one when reaped (a lower bound); steady appender: %lld appends, "
                "slowest %.1f ms; slowest probe (fork, open, append) %.1f ms; %.2f s",
                victims, holders, in_lock, (long long)sr.appends, (double)sr.max_ns / 1e6,
                (double)worst_probe / 1e6, (double)(mono_ns() - t0) / 1e9);
}

/* ================================================================ fanout */

/*
 * One producer, three groups. The slow group's process stops itself
 * (SIGSTOP) at a quiet point, right after a commit: the producer then
 * appends the rest and both fast groups read everything while it stays
 * stopped; after SIGCONT it catches up. (It stops itself rather than being
 * stopped at a random moment because a process stopped inside an LMDB
 * write transaction -- its commit, or its flusher writing a checkpoint --
 * holds LMDB's single writer lock: that would stall every other group's
 * commits, which is a property of the store, not of this test. Its log is
 * opened with a 60 s index.flush.ms for the same reason.)
 */

#define O_TOPIC     "orders"
#define O_PARTS     3
#define O_N         3000
#define O_FIRST     400         /* appended before the slow group stops */
#define O_STOP_AT   300         /* records the slow group reads before it stops */

typedef struct o_args {
    const char *group;
    bool        slow;
    int         ready;          /* write end */
    int         rep;            /* write end */
    int         go;             /* producer: read end, one byte per phase */
} o_args;

typedef struct o_report {
    int64_t unique, dups, commits, ns;
} o_report;

static void o_consumer(void *arg)
{
    o_args *a = arg;
    ulog_config *lc = a->slow ? cfg_try("index.flush.ms", "60000", NULL) : NULL;
    CCHECK(!a->slow || lc, "config");
    ulog *log = child_open(logdir, lc);
    ulog_config_free(lc);
    ulog_sub *s = child_sub(log, O_TOPIC, a->group, "earliest");
    write_all(a->ready, "r", 1, "ready");
    static uint8_t seen[O_N];
    o_report r = { 0 };
    int64_t t0 = mono_ns();
    bool stopped = false;
    int rc;
    ulog_msg m;
    while (r.unique < O_N) {
        rc = ulog_poll(s, 1000, &m);
        if (rc == ULOG_ETIMEDOUT)
            continue;
        CCHECK(rc == 0, "%s: ulog_poll: %s", a->group, ulog_errname(rc));
        uint32_t order;
        CCHECK(m.value_len == 4, "%s: value of %zu bytes", a->group, m.value_len);
        memcpy(&order, m.value, 4);
        CCHECK(order < O_N, "%s: order %u", a->group, order);
        if (seen[order]++)
            r.dups++;
        else
            r.unique++;
        if (r.unique % 100 == 0 || r.unique == O_N) {
            rc = ulog_commit(s);
            CCHECK(rc == 0, "%s: ulog_commit: %s", a->group, ulog_errname(rc));
            r.commits++;
        }
        if (a->slow) {
            sleep_us(100);
            if (!stopped && r.unique == O_STOP_AT) {
                write_all(a->rep, "s", 1, "stopping");
                stopped = true;
                raise(SIGSTOP);
            }
        }
    }
    r.ns = mono_ns() - t0;
    rc = ulog_poll(s, 0, &m);
    CCHECK(rc == ULOG_ETIMEDOUT, "%s: a record beyond the %d orders (%s)", a->group, O_N,
           ulog_errname(rc));
    write_all(a->rep, &r, sizeof r, "report");
    ulog_sub_close(s);
    ulog_close(log);
}

static void o_append_range(ulog *log, uint32_t from, uint32_t to)
{
    static uint32_t v[MAX_BATCH];
    static char keys[MAX_BATCH][16];
    uint64_t rng = from;
    while (from < to) {
        rng = mix64(rng);
        size_t n = 1 + rng % MAX_BATCH;
        if (n > to - from)
            n = to - from;
        ulog_record r[MAX_BATCH];
        for (size_t i = 0; i < n; i++) {
            v[i] = from + (uint32_t)i;
            int kl = snprintf(keys[i], sizeof keys[i], "cust-%u", (unsigned)(mix64(v[i]) % 500));
            r[i] = (ulog_record){ .key = keys[i], .key_len = (size_t)kl, .value = &v[i],
                                  .value_len = 4, .timestamp = ULOG_TIMESTAMP_NOW,
                                  .partition = ULOG_PARTITION_ANY };
        }
        int rc = ulog_append(log, O_TOPIC, r, n);
        CCHECK(rc == 0, "producer: ulog_append: %s", ulog_errname(rc));
        from += (uint32_t)n;
    }
}

static void o_producer(void *arg)
{
    o_args *a = arg;
    ulog *log = child_open(logdir, NULL);
    char c;
    CCHECK(read_within(a->go, &c, 1, 30000), "producer: no go for phase 1");
    o_append_range(log, 0, O_FIRST);
    write_all(a->rep, "1", 1, "phase 1 done");
    CCHECK(read_within(a->go, &c, 1, 30000), "producer: no go for phase 2");
    int64_t t0 = mono_ns();
    o_append_range(log, O_FIRST, O_N);
    int64_t ns = mono_ns() - t0;
    write_all(a->rep, &ns, sizeof ns, "phase 2 time");
    ulog_close(log);
}

/* Total committed offset and lag of a group over the topic's partitions. */
static void o_group(ulog *log, const char *group, int64_t *committed, int64_t *lag)
{
    ulog_group_desc *d = NULL;
    int rc = ulog_group_describe(log, group, &d);
    cr_assert_eq(rc, 0, "ulog_group_describe %s: %s", group, ulog_errname(rc));
    *committed = *lag = 0;
    for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
        ulog_group_lag g = ULOG_GROUP_LAG_INIT;
        cr_assert_eq(ulog_group_desc_get(d, i, &g), 0);
        cr_assert_str_eq(g.topic, O_TOPIC);
        *committed += g.committed;
        *lag += g.lag;
    }
    ulog_group_desc_free(d);
}

Test(multiproc, fanout_stopped_group_holds_back_nobody, .timeout = 90)
{
    make_topic(O_TOPIC, O_PARTS, cfg_of("flush.policy", "none", NULL));
    static const char *groups[3] = { "notifications", "billing", "recommendations" };
    int ready[2], rep[3][2], prep[2], go[2];
    make_pipe(ready);
    make_pipe(prep);
    make_pipe(go);
    o_args ca[3];
    pid_t cons[3];
    for (int i = 0; i < 3; i++) {
        make_pipe(rep[i]);
        ca[i] = (o_args){ groups[i], i == 2, ready[1], rep[i][1], -1 };
        cons[i] = spawn(o_consumer, &ca[i], 80);
    }
    o_args pa = { NULL, false, -1, prep[1], go[0] };
    pid_t prod = spawn(o_producer, &pa, 80);
    for (int i = 0; i < 3; i++) {
        char c;
        parent_read(ready[0], &c, 1, 10000, "a consumer ready");
    }
    char c;
    cr_assert_eq(write(go[1], "1", 1), 1);
    parent_read(prep[0], &c, 1, 20000, "the producer's first phase");
    /* The slow group stops itself after O_STOP_AT records. */
    parent_read(rep[2][0], &c, 1, 20000, "the slow group stopping");
    pid_t slow = cons[2];
    int64_t t_stop = mono_ns();
    for (;;) {
        int st;
        pid_t r = waitpid(slow, &st, WUNTRACED | WNOHANG);
        if (r == slow) {
            cr_assert(WIFSTOPPED(st), "the slow consumer ended instead of stopping\n%s",
                      child_errors());
            break;
        }
        cr_assert_lt(mono_ns() - t_stop, 10000000000LL, "the slow consumer did not stop");
        sleep_us(1000);
    }
    /* While it is stopped: the producer appends the rest, the fast groups
     * read everything. */
    cr_assert_eq(write(go[1], "2", 1), 1);
    int64_t prod_ns;
    parent_read(prep[0], &prod_ns, sizeof prod_ns, 30000, "the producer's second phase");
    join_ok(prod, 10000, "producer");
    for (int i = 0; i < 2; i++) {
        join_ok(cons[i], 30000, groups[i]);
        o_report r;
        parent_read(rep[i][0], &r, sizeof r, 1000, "a fast group's report");
        cr_assert_eq(r.unique, O_N);
        cr_assert_eq(r.dups, 0, "%s saw %lld duplicates", groups[i], (long long)r.dups);
    }
    int st;
    cr_assert_eq(waitpid(slow, &st, WNOHANG), 0, "the slow consumer is not stopped any more");
    ulog *log = open_at(logdir, NULL);
    int64_t committed, lag;
    for (int i = 0; i < 2; i++) {
        o_group(log, groups[i], &committed, &lag);
        cr_assert_eq(committed, O_N, "%s committed %lld", groups[i], (long long)committed);
        cr_assert_eq(lag, 0, "%s lags %lld", groups[i], (long long)lag);
    }
    o_group(log, groups[2], &committed, &lag);
    cr_assert_eq(committed, O_STOP_AT, "the stopped group committed %lld", (long long)committed);
    cr_assert_eq(lag, O_N - O_STOP_AT, "the stopped group lags %lld", (long long)lag);
    double stopped_s = (double)(mono_ns() - t_stop) / 1e9;
    /* Resume it: it catches up. */
    cr_assert_eq(kill(slow, SIGCONT), 0);
    join_ok(slow, 60000, groups[2]);
    o_report r;
    parent_read(rep[2][0], &r, sizeof r, 1000, "the slow group's report");
    cr_assert_eq(r.unique, O_N);
    cr_assert_eq(r.dups, 0, "the slow group saw %lld duplicates", (long long)r.dups);
    for (int i = 0; i < 3; i++)
        expect_group_at_end(log, groups[i], O_TOPIC, O_PARTS);
    ulog_close(log);
    for (int i = 0; i < 3; i++)
        close_pair(rep[i]);
    close_pair(ready);
    close_pair(prep);
    close_pair(go);
    cr_log_info("multiproc fanout: with recommendations stopped for %.2f s, the producer appended "
                "%d orders in %.1f ms and both fast groups read all %d; recommendations then "
                "caught up", stopped_s, O_N - O_FIRST, (double)prod_ns / 1e6, O_N);
}

/* ================================================================ sleepers */

/* A process that opened a partition after another held it used to lose its
 * shared lock on the head (a failed LOCK_EX | LOCK_NB conversion drops the
 * lock it converts). When the first process left, the next opener found the
 * head unused and reset the sleeper count under a sleeping poller, whose
 * wake-ups were then lost. */
static void sl_holder(void *arg)
{
    int *fds = arg;             /* [0]: told to leave; [1]: says it is open */
    ulog *log = child_open(logdir, NULL);
    int64_t lo, hi;
    CCHECK(ulog_watermarks(log, "sl", 0, &lo, &hi) == 0, "watermarks");
    write_all(fds[1], "o", 1, "open");
    char c;
    CCHECK(read(fds[0], &c, 1) == 1, "read");
    ulog_close(log);
}

static void sl_sleeper(void *arg)
{
    int *fds = arg;             /* [1]: says it polls, then how it ended */
    ulog *log = child_open(logdir, NULL);
    ulog_sub *s = child_sub(log, "sl", NULL, "latest");
    write_all(fds[1], "p", 1, "polling");
    ulog_msg m;
    int rc = ulog_poll(s, 20000, &m);
    CCHECK(rc == 0, "the poll was not woken by the append: %s", ulog_errname(rc));
    write_all(fds[1], "w", 1, "woken");
    ulog_sub_close(s);
    ulog_close(log);
}

Test(multiproc, a_sleeper_is_woken_after_other_openers_come_and_go, .timeout = 60)
{
    make_topic("sl", 1, NULL);
    int go[2], said[2], woke[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(said), 0);
    cr_assert_eq(pipe(woke), 0);
    /* The first holder, then the sleeper opens while it holds the head. */
    pid_t holder = spawn(sl_holder, (int[2]){ go[0], said[1] }, 30);
    char c;
    cr_assert(read_within(said[0], &c, 1, 10000), "the holder did not open");
    pid_t sleeper = spawn(sl_sleeper, (int[2]){ -1, woke[1] }, 30);
    cr_assert(read_within(woke[0], &c, 1, 10000) && c == 'p', "the sleeper did not poll");
    sleep_ms(100);
    /* The holder leaves; a new process opens and appends. */
    cr_assert_eq(write(go[1], "x", 1), 1);
    join_ok(holder, 10000, "holder");
    ulog *log = open_at(logdir, NULL);
    ulog_record r = { .value = "wake", .value_len = 4, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 0 };
    int64_t t0 = mono_ns();
    append_ok(log, "sl", &r, 1);
    cr_assert(read_within(woke[0], &c, 1, 5000) && c == 'w',
              "the sleeper was not woken within 5 s of the append\n%s", child_errors());
    cr_log_info("woken %.2f ms after the append", (double)(mono_ns() - t0) / 1e6);
    join_ok(sleeper, 10000, "sleeper");
    ulog_close(log);
    close_pair(go);
    close_pair(said);
    close_pair(woke);
}
