/*
 * test_cuts.c -- cuts of a partition's tail (an fsync failure, a writer or a
 * sync leader killed midway) as the other parties see them: readers holding
 * mappings of the cut files, waiters of the group commit, index and
 * checkpoint hints in LMDB, and a child of fork() closing its parent's
 * handle. Each test is a review finding (e1..e9) made deterministic.
 *
 * Two tools make the moments exact:
 *   - the fdatasync hook (ulog__fdatasync) runs an action inside the sync of
 *     a batch -- written, not committed -- and then fails the sync (the
 *     fsync-failure cut follows) or lets it go on;
 *   - a child is stopped at a chosen point of the write or of the cut, then
 *     SIGKILLed. No debugger: a thread of the child takes its partition's
 *     index-buffer lock (ulog__part.ilock, private to that process) and keeps
 *     it. The write path takes that lock in index_note(), after its pwrite
 *     and before it clears the write mark; the cut takes it in
 *     index_truncate(), after the files were cut, the write end moved back
 *     and the generation bumped. The child blocks there for good, the parent
 *     sees the head change and kills it: the state of a kill at that point.
 *   - where the kill point lies between two plain stores, no lock or system
 *     call marks it: the state is arranged by hand in the head (struct
 *     ulog__head, mapped with head_map_at()) from a real kill nearby.
 *
 * Two tests show defects still there when they were written (they fail
 * until fixed): e3_checkpoint_at_end_of_file_with_a_wrong_offset and
 * e9_waiter_of_a_batch_cut_by_a_repair_fails; see their comments.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testchild.h"
#include "testutil.h"

#define TOPIC "t"
#define TS    1700000000000LL   /* every record's timestamp unless a test says */

static char root[256];

/* ---------------------------------------------------------------- hook */

/* Armed: the next ulog__fdatasync call runs hook_action, then fails with
 * hook_errno (0: does the real fdatasync). One call only. */
static void (*hook_action)(void);
static int hook_errno;
static int hook_armed;

static int hook_fdatasync(int fd)
{
    if (__atomic_exchange_n(&hook_armed, 0, __ATOMIC_SEQ_CST)) {
        if (hook_action)
            hook_action();
        if (hook_errno) {
            errno = hook_errno;
            return -1;
        }
    }
    return fdatasync(fd);
}

static void arm_sync(void (*action)(void), int err)
{
    hook_action = action;
    hook_errno = err;
    __atomic_store_n(&hook_armed, 1, __ATOMIC_SEQ_CST);
}

/* ---------------------------------------------------------------- children */

static void cuts_init(void)
{
    make_tmpdir(root, sizeof root, "cuts");
    ulog__fdatasync = hook_fdatasync;
}

/* Also after a failed assertion: no child outlives its test. */
static void cuts_fini(void)
{
    kill_all_kids();
    ulog__fdatasync = fdatasync;
    if (root[0])
        rm_rf(root);
}

TestSuite(cuts, .init = cuts_init, .fini = cuts_fini, .timeout = 30);

/* Forks a child running fn (which must not return: it is stopped and
 * killed, or _exits with a code saying where it failed). */
static pid_t spawn_noreturn(void (*fn)(void))
{
    pid_t pid = fork_kid();
    if (pid == 0) {
        fn();
        _exit(99);
    }
    return pid;
}

static void check_alive(pid_t pid, const char *what)
{
    int st;
    if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
        forget(pid);
        cr_assert_fail("the child ended (%s %d) before %s", WIFSIGNALED(st) ? "signal" : "exit",
                       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), what);
    }
}

static void kill_kid(pid_t pid)
{
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    forget(pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "the child ended by itself (status %#x) before it was killed", st);
}

/* Waits (5 s at most) for cond, failing if child `pid` (0: none) ends. */
#define WAIT_FOR(cond, pid, what)                                                         \
    do {                                                                                  \
        int64_t t0_ = mono_ns();                                                          \
        while (!(cond)) {                                                                 \
            check_alive(pid, what);                                                       \
            cr_assert_lt(mono_ns() - t0_, 5000000000LL, "timed out waiting for %s", what); \
            usleep(200);                                                                  \
        }                                                                                 \
    } while (0)

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)

/* In a child: its own handle (no index flushes: hints stay where the test
 * put them) and its partition 0 of TOPIC. */
static ulog *kid_open(void)
{
    ulog_config *c = cfg_try("index.flush.ms", "60000", NULL);
    ulog *log = NULL;
    if (!c || ulog_open(root, c, &log) != 0)
        _exit(20);
    ulog_config_free(c);
    return log;
}

static ulog__part *kid_part(ulog *log)
{
    ulog__topic *t;
    if (ulog__topic_get(log, TOPIC, &t) != 0)
        _exit(21);
    return &t->parts[0];
}

static int ilock_held;

static void *ilock_keeper(void *arg)
{
    pthread_mutex_lock(&((ulog__part *)arg)->ilock);
    __atomic_store_n(&ilock_held, 1, __ATOMIC_SEQ_CST);
    for (;;)
        pause();
    return NULL;
}

/* From now on, this process stops for good at its next index_note() or
 * index_truncate() on p. */
static void kid_hold_ilock(ulog__part *p)
{
    pthread_t th;
    if (pthread_create(&th, NULL, ilock_keeper, p) != 0)
        _exit(22);
    while (!__atomic_load_n(&ilock_held, __ATOMIC_SEQ_CST))
        usleep(100);
}

/* ---------------------------------------------------------------- records */

/* One record of len bytes of `fill` to partition 0 of TOPIC. */
static int append_fill(ulog *log, char fill, size_t len, int64_t ts, int64_t *off)
{
    char *v = malloc(len);
    if (!v)
        return ULOG_ENOMEM;
    memset(v, fill, len);
    ulog_record r = { .value = v, .value_len = len, .timestamp = ts, .partition = 0 };
    int rc = ulog_append(log, TOPIC, &r, 1);
    if (off)
        *off = r.offset;
    free(v);
    return rc;
}

/* The same, which must succeed; returns the offset. */
static int64_t append_one(ulog *log, char fill, size_t len)
{
    int64_t off = -1;
    int rc = append_fill(log, fill, len, TS, &off);
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "append '%c': %s (%s)", fill, ulog_errname(rc), msg);
    return off;
}

/* The value length that makes a one-record batch exactly `size` bytes. */
static size_t value_len_for_batch(size_t size)
{
    for (size_t len = size - 100; len < size; len++) {
        ulog_record r = { .value = "", .value_len = len, .timestamp = TS, .partition = 0 };
        ulog__batch_src src = { &r, NULL, 1 };
        if (ulog__batch_size(&src, TS) == size)
            return len;
    }
    cr_assert_fail("no one-record batch of %zu bytes", size);
    return 0;
}

static void expect_msg(const ulog_msg *m, int64_t off, char fill, size_t len, const char *what)
{
    const char *v = m->value;
    cr_assert_eq(m->offset, off, "%s: offset %lld, expected %lld", what, (long long)m->offset,
                 (long long)off);
    cr_assert(v && m->value_len > 0, "%s: empty value at offset %lld", what, (long long)off);
    cr_assert(v[0] == fill && m->value_len == len && v[len - 1] == fill,
              "%s: offset %lld holds '%c' x %zu, expected '%c' x %zu (the record of an append "
              "that was not acknowledged there)",
              what, (long long)off, v[0], m->value_len, fill, len);
}

/* Where segment `base`'s batches end (an always topic's file runs ahead
 * of them); -1 when there is no such segment. */
static int64_t seg_size(int64_t base)
{
    char path[600];
    struct stat st;
    seg_path(path, sizeof path, root, TOPIC, 0, base);
    return stat(path, &st) == 0 ? seg_data_bytes(path) : -1;
}

/* ---------------------------------------------------------------- faults */

/* A read past the end of a cut file is SIGBUS, a wild hint SIGSEGV: either
 * fails the test with its name instead of crashing the worker. */
static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;
static struct sigaction fault_old_bus, fault_old_segv;

static void on_fault(int sig)
{
    fault_sig = sig;
    siglongjmp(fault_jmp, 1);
}

static void fault_arm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &fault_old_bus);
    sigaction(SIGSEGV, &sa, &fault_old_segv);
}

static void fault_disarm(void)
{
    sigaction(SIGBUS, &fault_old_bus, NULL);
    sigaction(SIGSEGV, &fault_old_segv, NULL);
}

/* Runs stmt; a SIGBUS or SIGSEGV inside fails the test. Results of stmt go
 * to static (or volatile) variables: locals may not survive the jump. */
#define NO_FAULT(what, stmt)                                                              \
    do {                                                                                  \
        fault_arm();                                                                      \
        if (sigsetjmp(fault_jmp, 1) == 0) {                                               \
            stmt;                                                                         \
            fault_disarm();                                                               \
        } else {                                                                          \
            fault_disarm();                                                               \
            cr_assert_fail("%s: killed by %s", what, strsignal(fault_sig));               \
        }                                                                                 \
    } while (0)

static int poll_rc;

static int poll_safe(ulog_sub *s, int timeout_ms, ulog_msg *m)
{
    NO_FAULT("ulog_poll", poll_rc = ulog_poll(s, timeout_ms, m));
    return poll_rc;
}

/* The partition holds exactly one record per char of fills, from offset 0,
 * each made of that char. */
static void expect_log(ulog *log, const char *fills)
{
    ulog_sub *s = sub_earliest(log, TOPIC);
    size_t n = strlen(fills);
    for (size_t i = 0; i < n; i++) {
        ulog_msg m;
        int rc = poll_safe(s, 0, &m);
        char msg[512];
        ulog_errmsg(log, msg, sizeof msg);
        cr_assert_eq(rc, 0, "reading offset %zu of \"%s\": %s (%s)", i, fills, ulog_errname(rc),
                     msg);
        const char *v = m.value;
        cr_assert_eq(m.offset, (int64_t)i, "offsets dense");
        cr_assert(v && m.value_len > 0 && v[0] == fills[i] && v[m.value_len - 1] == fills[i],
                  "offset %zu holds '%c', expected '%c' (log should be \"%s\")", i,
                  v && m.value_len ? v[0] : '?', fills[i], fills);
    }
    ulog_msg m;
    int rc = poll_safe(s, 0, &m);
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "after \"%s\": %s, offset %lld", fills, ulog_errname(rc),
                 rc == 0 ? (long long)m.offset : -1LL);
    ulog_sub_close(s);
}

static ulog_config *no_index_flush(void)
{
    return cfg_of("index.flush.ms", "60000", NULL);
}

/* Shared with hook actions and threads. */
static ulog *g_log;
static ulog_sub *g_sub;
static int g_rc;
static int64_t g_off;

typedef struct appender {
    ulog   *log;
    char    fill;
    size_t  len;
    int64_t ts;
    int     rc;
    int64_t off;
} appender;

static void *appender_main(void *arg)
{
    appender *a = arg;
    a->rc = append_fill(a->log, a->fill, a->len, a->ts, &a->off);
    return NULL;
}

/* ================================================================ e1 */

static void subscribe_latest(void)
{
    g_rc = ulog_subscribe(g_log, TOPIC, NULL, NULL, &g_sub);
}

/* e1: B rolls segment 1 and its fdatasync fails; a reader that mapped
 * segment 1 meanwhile kept the removed file and delivered B, never
 * committed, in place of C, acknowledged at the same offset in a new
 * segment 1. */
Test(cuts, e1_fsync_failure_after_roll_reader_sees_the_acked_record)
{
    ulog *log = open_with_topic(root, no_index_flush(), TOPIC, 1,
                                cfg_of("segment.bytes", "4096", NULL));
    cr_assert_eq(append_one(log, 'A', 3000), 0);

    /* While B's sync runs, a reader subscribes at the high watermark (1):
     * it maps segment 1, which holds B. Then the sync fails. */
    g_log = log;
    arm_sync(subscribe_latest, EIO);
    int64_t off;
    cr_assert_eq(append_fill(log, 'B', 3000, TS, &off), ULOG_EIO);
    cr_assert_eq(g_rc, 0, "subscribe during the sync: %s", ulog_errname(g_rc));
    cr_assert_eq(seg_size(1), -1, "the cut removed segment 1");

    cr_assert_eq(append_one(log, 'C', 3000), 1);
    cr_assert_eq(seg_size(0), 3070);
    cr_assert_gt(seg_size(1), 0, "C rolled a new segment 1");
    ulog_msg m;
    int rc = poll_safe(g_sub, 1000, &m);
    cr_assert_eq(rc, 0, "poll: %s", ulog_errname(rc));
    expect_msg(&m, 1, 'C', 3000, "reader after the cut and the roll");
    ulog_sub_close(g_sub);
    expect_log(log, "AC");
    ulog_close(log);
}

/* ================================================================ e2 */

static char g_fill;
static size_t g_len;

static void poll_now(void)
{
    ulog_msg m;
    g_rc = ulog_poll(g_sub, 0, &m);
    if (g_rc == 0) {
        g_off = m.offset;
        g_fill = ((const char *)m.value)[0];
        g_len = m.value_len;
    }
}

/* e2: a reader refreshes the segment's size while B (uncommitted) is in
 * it; B's fdatasync fails and the cut truncates the file to one page;
 * C rolls to segment 1. The reader, trusting its stale size, read the
 * batch "after" A past the end of the file: SIGBUS. */
Test(cuts, e2_fsync_failure_cut_then_roll_reader_stale_size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t alen = value_len_for_batch(page);
    ulog *log = open_with_topic(root, no_index_flush(), TOPIC, 1,
                                cfg_of("segment.bytes", "16384", NULL));
    g_sub = sub_earliest(log, TOPIC);
    cr_assert_eq(append_one(log, 'A', alen), 0);
    cr_assert_eq(seg_size(0), (int64_t)page, "A fills exactly one page");

    /* During B's sync the reader delivers A, seeing B's bytes in the
     * file size. Then the sync fails and B is cut. */
    arm_sync(poll_now, EIO);
    cr_assert_eq(append_fill(log, 'B', 8000, TS, NULL), ULOG_EIO);
    cr_assert_eq(g_rc, 0, "poll during the sync: %s", ulog_errname(g_rc));
    cr_assert(g_off == 0 && g_fill == 'A' && g_len == alen, "the reader got A first");
    cr_assert_eq(seg_size(0), (int64_t)page, "B was cut");

    cr_assert_eq(append_one(log, 'C', 13000), 1);
    cr_assert_gt(seg_size(1), 0, "C rolled to segment 1");
    ulog_msg m;
    int rc = poll_safe(g_sub, 1000, &m);
    cr_assert_eq(rc, 0, "poll: %s", ulog_errname(rc));
    expect_msg(&m, 1, 'C', 13000, "reader after the cut and the roll");
    ulog_sub_close(g_sub);
    ulog_close(log);
}

/* ================================================================ e7b, e8 */

static char kid_fill;
static size_t kid_len;

/* A writer that stops for good right after the pwrite of its batch, with
 * the write mark still set: as a writer SIGKILLed there. */
static void stuck_writer(void)
{
    ulog *log = kid_open();
    kid_hold_ilock(kid_part(log));
    append_fill(log, kid_fill, kid_len, TS, NULL);
    _exit(23);
}

/* e8: no I/O error at all. A writer is killed after writing B into
 * segment 0; a reader refreshed its size meanwhile; the next writer's
 * repair cuts B and C rolls to segment 1. The reader's stale size made it
 * read past the end of the file: SIGBUS. */
Test(cuts, e8_dead_writer_cut_then_roll_reader_stale_size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t alen = value_len_for_batch(page);
    ulog *log = open_with_topic(root, no_index_flush(), TOPIC, 1,
                                cfg_of("segment.bytes", "16384", "index.interval.bytes", "512",
                                       NULL));
    ulog_sub *s = sub_earliest(log, TOPIC);
    cr_assert_eq(append_one(log, 'A', alen), 0);
    cr_assert_eq(seg_size(0), (int64_t)page);
    ulog__head *h = head_map_at(root, TOPIC, 0);

    kid_fill = 'B';
    kid_len = 8000;
    pid_t pid = spawn_noreturn(stuck_writer);
    WAIT_FOR(LOAD(h->wend.offset) == 2 && LOAD(h->marked) == 1, pid, "the writer's pwrite");
    cr_assert_gt(seg_size(0), (int64_t)page + 8000, "B's bytes are in segment 0");

    ulog_msg m;
    cr_assert_eq(poll_safe(s, 0, &m), 0);
    expect_msg(&m, 0, 'A', alen, "first record");
    kill_kid(pid);

    cr_assert_eq(append_one(log, 'C', 13000), 1, "the repair cut B");
    cr_assert_eq(seg_size(0), (int64_t)page);
    cr_assert_gt(seg_size(1), 0, "C rolled to segment 1");
    int rc = poll_safe(s, 1000, &m);
    cr_assert_eq(rc, 0, "poll: %s", ulog_errname(rc));
    expect_msg(&m, 1, 'C', 13000, "reader after the repair and the roll");
    ulog_sub_close(s);
    head_unmap(h);
    ulog_close(log);
}

/* e7b: a writer is killed after rolling segment 1 and writing B into it; a
 * reader (another handle: no index hint) subscribes at the high watermark
 * and maps segment 1. The repair removes it and C rolls a new one: the
 * reader delivered the dead writer's B at C's offset. */
Test(cuts, e7b_dead_writer_after_roll_reader_sees_the_acked_record)
{
    ulog *log = open_with_topic(root, no_index_flush(), TOPIC, 1,
                                cfg_of("segment.bytes", "4096", NULL));
    cr_assert_eq(append_one(log, 'A', 3000), 0);
    ulog__head *h = head_map_at(root, TOPIC, 0);

    kid_fill = 'B';
    kid_len = 3000;
    pid_t pid = spawn_noreturn(stuck_writer);
    WAIT_FOR(LOAD(h->wend.offset) == 2 && LOAD(h->wend.segment) == 1 && LOAD(h->marked) == 1,
             pid, "the writer's pwrite into segment 1");
    ulog *rd = open_at(root, no_index_flush());
    ulog_sub *s = NULL;
    cr_assert_eq(ulog_subscribe(rd, TOPIC, NULL, NULL, &s), 0);
    kill_kid(pid);

    cr_assert_eq(append_one(log, 'C', 3000), 1, "the repair cut B");
    ulog_msg m;
    int rc = poll_safe(s, 1000, &m);
    cr_assert_eq(rc, 0, "poll: %s", ulog_errname(rc));
    expect_msg(&m, 1, 'C', 3000, "reader after the repair and the roll");
    ulog_sub_close(s);
    ulog_close(rd);
    expect_log(log, "AC");
    head_unmap(h);
    ulog_close(log);
}

/* ================================================================ e3 */

static uint32_t topic_id(ulog *log)
{
    ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log, TOPIC, &ti, NULL), 0);
    return ti.id;
}

/* A log holding A and B (two batches); returns the topic id and, in
 * *a_end, where B starts. Closed again. */
static uint32_t make_ab(int64_t *a_end)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, NULL);
    cr_assert_eq(append_one(log, 'A', 100), 0);
    if (a_end)
        *a_end = seg_size(0);
    cr_assert_eq(append_one(log, 'B', 100), 1);
    uint32_t id = topic_id(log);
    ulog_close(log);
    return id;
}

static ulog_sub *e3_sub;

/* e3: an index entry in LMDB whose position is outside the segment
 * (negative, or so large that pos + 12 overflows): the reader took it to
 * its mapping and crashed (SIGSEGV) in ulog_subscribe / ulog_seek. (-1
 * happened not to crash: the byte before a mapping is often mapped.) */
Test(cuts, e3_hostile_offset_index_entry)
{
    uint32_t id = make_ab(NULL);
    static const int64_t bad_pos[] = { -((int64_t)1 << 40), INT64_MAX - 4, -1 };
    for (size_t i = 0; i < sizeof bad_pos / sizeof bad_pos[0]; i++) {
        /* A fresh handle: the partition opens after the entry is there. */
        ulog *log = open_at(root, NULL);
        ulog__index_entry e = { id, 0, 0, 0, bad_pos[i], INT64_MIN };
        cr_assert_eq(ulog__meta_flush(log->meta, &e, 1, NULL, 0, NULL, NULL), 0);
        /* At the high watermark (2): the entry for offset 0 is its floor. */
        NO_FAULT("ulog_subscribe with a hostile index entry",
                 g_rc = ulog_subscribe(log, TOPIC, NULL, NULL, &e3_sub));
        cr_assert_eq(g_rc, 0, "subscribe, entry pos %lld: %s", (long long)bad_pos[i],
                     ulog_errname(g_rc));
        NO_FAULT("ulog_seek with a hostile index entry", g_rc = ulog_seek(e3_sub, 0, 0));
        cr_assert_eq(g_rc, 0, "seek(0), entry pos %lld: %s", (long long)bad_pos[i],
                     ulog_errname(g_rc));
        ulog_msg m;
        cr_assert_eq(poll_safe(e3_sub, 0, &m), 0);
        expect_msg(&m, 0, 'A', 100, "after seek(0)");
        ulog_sub_close(e3_sub);
        expect_log(log, "AB");
        ulog_close(log);
    }
}

/* e3, the time index: an entry with a hostile position, used by
 * ulog_seek_time. */
Test(cuts, e3_hostile_time_index_entry)
{
    uint32_t id = make_ab(NULL);
    ulog *log = open_at(root, NULL);
    ulog_sub *s = sub_earliest(log, TOPIC);
    /* max_timestamp above every record's: a new time-index key, and the
     * floor for any seek to a later time. */
    ulog__index_entry e = { id, 0, 0, 0, -((int64_t)1 << 40), TS + 1000 };
    cr_assert_eq(ulog__meta_flush(log->meta, &e, 1, NULL, 0, NULL, NULL), 0);
    g_sub = s;
    NO_FAULT("ulog_seek_time with a hostile time index entry",
             g_rc = ulog_seek_time(g_sub, 0, TS + 5000));
    cr_assert_eq(g_rc, 0, "seek_time: %s", ulog_errname(g_rc));
    int64_t pos = -1;
    cr_assert_eq(ulog_position(s, 0, &pos), 0);
    cr_assert_eq(pos, 2, "no record at or after the time: the high watermark");
    NO_FAULT("ulog_seek_time (to the first record)", g_rc = ulog_seek_time(g_sub, 0, TS));
    cr_assert_eq(g_rc, 0);
    ulog_msg m;
    cr_assert_eq(poll_safe(s, 0, &m), 0);
    expect_msg(&m, 0, 'A', 100, "after seek_time");
    ulog_sub_close(s);
    ulog_close(log);
}

static int64_t wm_lo, wm_hi;

/* e3, the recovery checkpoint: a hostile position made the recovery scan
 * read outside its mapping (SIGSEGV); one inside a batch, or at a batch
 * boundary with the wrong offset, made it cut durable records. A
 * checkpoint is a hint: recovery must verify the segment from its start
 * instead. */
Test(cuts, e3_hostile_checkpoint)
{
    int64_t a_end;
    uint32_t id = make_ab(&a_end);
    struct { int64_t offset, pos; const char *what; } bad[] = {
        { 0, -((int64_t)1 << 40), "a negative position" },
        { 1, 5, "a position inside batch A" },
        { 7, a_end, "batch B's position with the wrong offset" },
        { 2, a_end, "batch B's position with B's end offset" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* Not opened in this handle: closing it writes no checkpoint. */
        ulog *log = open_at(root, NULL);
        ulog__checkpoint cp = { id, 0, bad[i].offset, 0, bad[i].pos, 0 };
        cr_assert_eq(ulog__meta_flush(log->meta, NULL, 0, &cp, 1, NULL, NULL), 0);
        ulog_close(log);
        delete_heads(root, TOPIC, 1, false);    /* as after a reboot */

        log = open_at(root, NULL);
        NO_FAULT("recovery from a hostile checkpoint",
                 g_rc = ulog_watermarks(log, TOPIC, 0, &wm_lo, &wm_hi));
        cr_assert_eq(g_rc, 0, "checkpoint with %s: %s", bad[i].what, ulog_errname(g_rc));
        cr_assert(wm_lo == 0 && wm_hi == 2, "checkpoint with %s: watermarks [%lld, %lld)",
                  bad[i].what, (long long)wm_lo, (long long)wm_hi);
        expect_log(log, "AB");
        ulog_close(log);
        cr_assert_gt(seg_size(0), a_end, "checkpoint with %s: B is still there", bad[i].what);
    }
}

/* e3, the checkpoint's offset where nothing follows it: at the end of the
 * file no batch is there to contradict it. Too high, the high watermark
 * names offsets that do not exist (readers get ULOG_ECORRUPT) and appends
 * skip them; too low, the next append reuses an offset already in the
 * file and readers never deliver it. Still failing when written: recovery
 * trusts the offset of a checkpoint at the end of its segment. */
Test(cuts, e3_checkpoint_at_end_of_file_with_a_wrong_offset)
{
    uint32_t id = make_ab(NULL);
    int64_t b_end = seg_size(0);
    static const int64_t bad_offset[] = { 7, 1 };
    for (size_t i = 0; i < sizeof bad_offset / sizeof bad_offset[0]; i++) {
        ulog *log = open_at(root, NULL);
        ulog__checkpoint cp = { id, 0, bad_offset[i], 0, b_end, 0 };
        cr_assert_eq(ulog__meta_flush(log->meta, NULL, 0, &cp, 1, NULL, NULL), 0);
        ulog_close(log);
        delete_heads(root, TOPIC, 1, false);

        log = open_at(root, NULL);
        watermarks(log, TOPIC, 0, &wm_lo, &wm_hi);
        cr_assert(wm_lo == 0 && wm_hi == 2,
                  "checkpoint (offset %lld, end of file): watermarks [%lld, %lld) for a "
                  "file holding offsets 0 and 1",
                  (long long)bad_offset[i], (long long)wm_lo, (long long)wm_hi);
        expect_log(log, "AB");
        ulog_close(log);
    }
}

/* ================================================================ e4 */

static ulog__head *g_head;
static appender g_b;
static pthread_t g_bth;
static int64_t g_pos, g_lo, g_hi;

/* Inside the sync of offset 1: offset 2 is written too (by a thread that
 * then waits for the sync), and the reader seeks by time. */
static void seek_time_during_sync(void)
{
    g_b = (appender){ g_log, 'C', 700, TS + 1001, -1, -1 };
    if (pthread_create(&g_bth, NULL, appender_main, &g_b) != 0)
        abort();
    int64_t t0 = mono_ns();
    while (LOAD(g_head->wend.offset) < 3 && mono_ns() - t0 < 5000000000LL)
        usleep(200);
    g_rc = ulog_seek_time(g_sub, 0, TS + 5000);
    ulog_position(g_sub, 0, &g_pos);
    ulog_watermarks(g_log, TOPIC, 0, &g_lo, &g_hi);
}

/* e4: index entries are noted when a batch is written, before it is
 * committed. seek_time took such an entry and left the position past the
 * high watermark. */
Test(cuts, e4_seek_time_ignores_uncommitted_hints)
{
    ulog *log = open_with_topic(root, no_index_flush(), TOPIC, 1,
                                cfg_of("index.interval.bytes", "512", NULL));
    cr_assert_eq(append_fill(log, 'A', 700, TS + 100, NULL), 0);
    g_log = log;
    g_head = head_map_at(root, TOPIC, 0);
    cr_assert_eq(ulog_subscribe(log, TOPIC, NULL, NULL, &g_sub), 0);

    arm_sync(seek_time_during_sync, 0);
    int64_t off;
    cr_assert_eq(append_fill(log, 'B', 700, TS + 1000, &off), 0);
    cr_assert_eq(off, 1);
    pthread_join(g_bth, NULL);
    cr_assert_eq(g_b.rc, 0);
    cr_assert_eq(g_b.off, 2);

    cr_assert_eq(g_rc, 0, "seek_time: %s", ulog_errname(g_rc));
    cr_assert_eq(g_hi, 1, "only A was committed during the sync");
    cr_assert_leq(g_pos, g_hi, "seek_time put the position at %lld, past the high watermark %lld",
                  (long long)g_pos, (long long)g_hi);
    cr_assert_eq(g_pos, 1);
    ulog_sub_close(g_sub);
    head_unmap(g_head);
    ulog_close(log);
}

/* ================================================================ e5, e9 */

static int up[2], down[2];
static ulog__part *kid_p;

/* Inside the leader's fdatasync: says so, waits for the parent's go, then
 * arranges to stop in the cut, and the sync fails. */
static void leader_paused(void)
{
    char c = 'h';
    if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
        _exit(24);
    kid_hold_ilock(kid_p);
}

/* A sync leader whose fdatasync fails and who stops in the cut, after the
 * files were cut and the write end moved back, before anything else. */
static void failing_leader(void)
{
    ulog *log = kid_open();
    kid_p = kid_part(log);
    arm_sync(leader_paused, EIO);
    append_fill(log, 'L', 50, TS, NULL);
    _exit(25);
}

static void make_pipes(void)
{
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
}

static void wait_up(pid_t pid)
{
    struct pollfd pf = { up[0], POLLIN, 0 };
    int64_t t0 = mono_ns();
    while (poll(&pf, 1, 10) == 0) {
        check_alive(pid, "the leader's fdatasync");
        cr_assert_lt(mono_ns() - t0, 5000000000LL, "the leader never synced");
    }
    char c;
    cr_assert_eq(read(up[0], &c, 1), 1);
}

static void send_down(void)
{
    char c = 'g';
    cr_assert_eq(write(down[1], &c, 1), 1);
}

/* e5: a sync leader's fdatasync fails and it is killed in the cut, after
 * the truncation and before the write end is moved back (arranged: killed
 * just after, then the three head fields the cut sets after truncating
 * are put back). Nothing told the next writer to finish the cut: it wrote
 * past the end of the file, leaving a hole readers fail on, at an offset
 * past the durable end. */
Test(cuts, e5_leader_killed_in_the_cut_next_writer_repairs)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, NULL);
    cr_assert_eq(append_one(log, 'A', 50), 0);
    int64_t a_end = seg_size(0);
    ulog_close(log);
    ulog__head *h = head_map_at(root, TOPIC, 0);

    make_pipes();
    pid_t pid = spawn_noreturn(failing_leader);
    wait_up(pid);
    /* The leader's batch is written; the head as the cut will find it. */
    ulog__pos wend = h->wend;
    int64_t index_pos = h->index_pos;
    uint32_t gen = LOAD(h->gen);
    cr_assert_eq(wend.offset, 2);
    send_down();
    WAIT_FOR(LOAD(h->gen) != gen, pid, "the cut");
    kill_kid(pid);
    cr_assert_eq(seg_size(0), a_end, "the leader cut its batch from the file");
    /* Killed right after the truncation instead: the write end not moved
     * back yet, no new generation. */
    h->wend = wend;
    h->index_pos = index_pos;
    __atomic_store_n(&h->gen, gen, __ATOMIC_SEQ_CST);

    log = open_at(root, NULL);
    int64_t off = -1;
    int rc = append_fill(log, 'C', 50, TS, &off);
    cr_assert_eq(rc, 0, "append after the dead leader: %s", ulog_errname(rc));
    cr_assert_eq(off, 1, "C went to offset %lld: the cut offsets were skipped", (long long)off);
    cr_assert_eq(seg_size(0), 2 * a_end, "C follows A, no hole");
    int64_t lo, hi;
    watermarks(log, TOPIC, 0, &lo, &hi);
    cr_assert_eq(hi, 2);
    expect_log(log, "AC");
    ulog_close(log);
    head_unmap(h);
}

/* e9: a sync leader's fdatasync fails and it is killed in the cut (here:
 * after it, before anything else), which also cut a waiter's batch. The
 * waiter never learnt: it spun as a leader syncing nothing, and once
 * others had appended past its offset it was acknowledged -- with
 * someone else's record at its offset. */
Test(cuts, e9_waiter_of_a_batch_cut_by_a_dead_leader_fails)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, NULL);
    cr_assert_eq(append_one(log, 'A', 50), 0);
    ulog__head *h = head_map_at(root, TOPIC, 0);

    make_pipes();
    pid_t pid = spawn_noreturn(failing_leader);
    wait_up(pid);
    /* The waiter writes offset 2 and waits for the leader's sync. */
    appender w = { log, 'W', 50, TS, -1, -1 };
    pthread_t wth;
    cr_assert_eq(pthread_create(&wth, NULL, appender_main, &w), 0);
    WAIT_FOR(LOAD(h->wend.offset) == 3 && LOAD(h->sync_waiters) > 0, pid, "the waiter");
    uint32_t gen = LOAD(h->gen);
    send_down();
    WAIT_FOR(LOAD(h->gen) != gen, pid, "the cut");
    kill_kid(pid);

    /* Others append over the cut offsets. */
    cr_assert_eq(append_one(log, 'X', 50), 1);
    cr_assert_eq(append_one(log, 'Y', 50), 2);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    int jr = pthread_timedjoin_np(wth, NULL, &dl);
    cr_assert_eq(jr, 0, "the waiter is still in ulog_append 5 s later (spinning)");
    cr_assert_eq(w.rc, ULOG_EIO,
                 "the waiter's batch was cut, yet its append returned %s with offset %lld "
                 "(which holds another append's record)",
                 ulog_errname(w.rc), (long long)w.off);
    cr_assert_eq(w.off, -1);
    expect_log(log, "AXY");
    head_unmap(h);
    ulog_close(log);
}

/* A sync leader whose fdatasync fails and who dies in fail_rule() right
 * after setting the write mark, before publishing the failure epoch: the
 * first statements of fail_rule() are done here by hand, under the same
 * locks (slock, then wlock), and the child stops until it is killed. */
static void leader_marked(void)
{
    char c = 'h';
    if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
        _exit(26);
    ulog__head *h = kid_p->h;
    bool died;
    if (ulog__mutex_lock(&h->wlock, &died) != 0)
        _exit(27);
    h->mark = ulog__head_synced(h);
    __atomic_store_n(&h->marked, 1, __ATOMIC_RELEASE);
    for (;;)
        pause();
}

static void marking_leader(void)
{
    ulog *log = kid_open();
    kid_p = kid_part(log);
    arm_sync(leader_marked, EIO);
    append_fill(log, 'L', 50, TS, NULL);
    _exit(28);
}

static int report[2];

/* An appender in its own process; reports its rc and offset. */
static void waiter_proc(void)
{
    ulog *log = kid_open();
    int64_t r[2] = { 0, -1 };
    r[0] = append_fill(log, 'W', 50, TS, &r[1]);
    if (write(report[1], r, sizeof r) != (ssize_t)sizeof r)
        _exit(29);
    for (;;)
        pause();
}

/* e9, the kill one step earlier: the leader dies with the mark set and the
 * epoch not yet published (fail_rule() sets `marked`, then fail_at and
 * fail_epoch: plain stores, a SIGKILL can fall between them). The next
 * writer's repair finishes the cut -- which also cuts the waiter's batch
 * -- and the offsets are appended again. A waiter that looks only after
 * that (it was descheduled: here, SIGSTOPped) must still learn that its
 * batch was cut. It does not: its check of the write end only works if it
 * syncs before anyone else commits past it, and nothing else tells it.
 * Still failing when written; repair() publishing every cut as a failure
 * epoch (fail_at = mark.offset) would close it. */
Test(cuts, e9_waiter_of_a_batch_cut_by_a_repair_fails)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, NULL);
    cr_assert_eq(append_one(log, 'A', 50), 0);
    ulog__head *h = head_map_at(root, TOPIC, 0);

    make_pipes();
    cr_assert_eq(pipe(report), 0);
    pid_t lpid = spawn_noreturn(marking_leader);
    wait_up(lpid);
    pid_t wpid = spawn_noreturn(waiter_proc);
    WAIT_FOR(LOAD(h->wend.offset) == 3 && LOAD(h->sync_waiters) > 0, wpid, "the waiter");
    cr_assert_eq(kill(wpid, SIGSTOP), 0);
    send_down();
    WAIT_FOR(LOAD(h->marked) == 1, lpid, "the mark");
    kill_kid(lpid);

    cr_assert_eq(append_one(log, 'X', 50), 1);
    cr_assert_eq(append_one(log, 'Y', 50), 2);
    cr_assert_eq(kill(wpid, SIGCONT), 0);
    struct pollfd pf = { report[0], POLLIN, 0 };
    cr_assert_eq(poll(&pf, 1, 5000), 1, "the waiter is still in ulog_append 5 s later");
    int64_t r[2];
    cr_assert_eq(read(report[0], r, sizeof r), (ssize_t)sizeof r);
    kill_kid(wpid);
    cr_assert_eq(r[0], ULOG_EIO,
                 "the waiter's batch was cut, yet its append returned %s with offset %lld "
                 "(which holds another append's record)",
                 ulog_errname((int)r[0]), (long long)r[1]);
    expect_log(log, "AXY");
    head_unmap(h);
    ulog_close(log);
}

/* ================================================================ e6 */

static void close_inherited(void)
{
    child_watchdog(20);      /* a hang must not outlive the test */
    ulog_close(g_log);
    ulog *own = NULL;
    if (ulog_open(root, NULL, &own) != 0)
        _exit(30);
    ulog_record r = { .value = "K", .value_len = 1, .timestamp = TS, .partition = 0 };
    if (ulog_append(own, TOPIC, &r, 1) != 0 || r.offset != 1)
        _exit(31);
    ulog_close(own);
    _exit(0);
}

/* e6: a child of fork() closing the handle it inherited (the usual cleanup
 * before exec or exit) hung in ulog_close: it joined a flusher thread that
 * exists only in the parent. */
Test(cuts, e6_child_closes_inherited_handle)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, NULL);
    cr_assert_eq(append_one(log, 'A', 1), 0);
    g_log = log;
    pid_t pid = spawn_noreturn(close_inherited);
    int st = 0;
    int64_t t0 = mono_ns();
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        cr_assert_lt(mono_ns() - t0, 5000000000LL,
                     "the child's ulog_close of the inherited handle hung");
        usleep(1000);
    }
    cr_assert_eq(r, pid);
    forget(pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "child: %s %d (30: open, 31: append after closing the inherited handle)",
              WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    /* The parent's handle is untouched. */
    cr_assert_eq(append_one(log, 'B', 1), 2);
    expect_log(log, "AKB");
    ulog_close(log);
}

/* ================================================================ layout */

/* A head in use in this boot by a build with another head layout (another
 * version, a 32-bit process) must not be reinitialised under that build's
 * feet; once nobody uses it, it is replaced (an upgrade without a reboot).
 * A user holds the head file open with a shared flock, as this build
 * does: the test plays the other build's process. */
Test(cuts, head_of_another_layout_in_use_is_refused)
{
    ulog *log = open_with_topic(root, NULL, TOPIC, 1, NULL);
    cr_assert_eq(append_one(log, 'A', 1), 0);
    ulog_close(log);
    char path[600];
    part_dir(path, sizeof path, root, TOPIC, 0);
    strncat(path, "/head", sizeof path - strlen(path) - 1);
    int other = open(path, O_RDWR | O_CLOEXEC);
    cr_assert_geq(other, 0);
    cr_assert_eq(flock(other, LOCK_SH), 0);
    ulog__head *h = head_map_at(root, TOPIC, 0);
    uint32_t layout = h->layout;
    h->layout = layout ^ 0x10000;       /* another size of pthread_mutex_t */

    log = open_at(root, NULL);
    int64_t lo, hi;
    int rc = ulog_watermarks(log, TOPIC, 0, &lo, &hi);
    cr_assert_eq(rc, ULOG_EVERSION, "got %s", ulog_errname(rc));
    cr_assert_eq(h->layout, layout ^ 0x10000, "the other build's head was reinitialised");
    ulog_close(log);

    close(other);                       /* the other build's process is gone */
    log = open_at(root, NULL);
    expect_log(log, "A");
    cr_assert_eq(h->layout, layout, "an unused head of another layout is replaced");
    ulog_close(log);
    head_unmap(h);
}
