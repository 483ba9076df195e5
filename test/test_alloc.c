/*
 * test_alloc.c -- allocation failures: for each operation, the k-th
 * allocation it makes fails, for every k up to the number it makes (once,
 * and from then on). The operation must return ULOG_ENOMEM (or succeed, where
 * the allocation was optional: an index hint), crash nothing, leak nothing,
 * leave nothing half done that a reader could see, and succeed when retried
 * without the fault.
 *
 * How: this program is linked with -Wl,--wrap for the calls listed in
 * mk/faults.mk, so that libulog.a's calls to malloc, calloc, realloc,
 * strdup and free, to pthread_create and fdopendir (which allocate), and to
 * LMDB's allocating calls (mdb_env_create, mdb_txn_begin, mdb_cursor_open,
 * mdb_put, mdb_txn_commit, which fail with ENOMEM when LMDB cannot
 * allocate) land in the __wrap_* functions below. Counting is per thread:
 * each operation runs in a thread of its own, armed, so that the library's
 * background threads do not shift the count, and per-thread caches (the
 * append scratch) are freed when it ends.
 *
 * Leaks: every block allocated through the wraps and not freed is counted
 * (`live`); after each case, its handles closed, the count must be back
 * where it was (the plain build checks this too; the SANITIZE=1 build also
 * runs LeakSanitizer).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ================================================================ the wraps */

/* LMDB's types, opaque here: the test does not include lmdb.h. */
typedef struct MDB_env    MDB_env;
typedef struct MDB_txn    MDB_txn;
typedef struct MDB_cursor MDB_cursor;
typedef struct MDB_val    MDB_val;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void  __real_free(void *p);
int   __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
DIR  *__real_fdopendir(int fd);
int   __real_mdb_env_create(MDB_env **env);
int   __real_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn);
int   __real_mdb_cursor_open(MDB_txn *txn, unsigned dbi, MDB_cursor **cur);
int   __real_mdb_put(MDB_txn *txn, unsigned dbi, MDB_val *k, MDB_val *v, unsigned flags);
int   __real_mdb_txn_commit(MDB_txn *txn);
void  mdb_txn_abort(MDB_txn *txn);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void  __wrap_free(void *p);
int   __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
DIR  *__wrap_fdopendir(int fd);
int   __wrap_mdb_env_create(MDB_env **env);
int   __wrap_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn);
int   __wrap_mdb_cursor_open(MDB_txn *txn, unsigned dbi, MDB_cursor **cur);
int   __wrap_mdb_put(MDB_txn *txn, unsigned dbi, MDB_val *k, MDB_val *v, unsigned flags);
int   __wrap_mdb_txn_commit(MDB_txn *txn);

/* Per thread: armed, this thread's allocations are counted, and those with
 * index in [fail_at, fail_at + fail_count) fail. */
static _Thread_local bool armed;
static _Thread_local long counted, fail_at = -1, fail_count, failed;
/* Blocks allocated through the wraps and not yet freed, every thread. */
static long live;

static bool fail_now(void)
{
    if (!armed)
        return false;
    long n = counted++;
    if (fail_at >= 0 && n >= fail_at && n - fail_at < fail_count) {
        failed++;
        return true;
    }
    return false;
}

static void *counted_block(void *p)
{
    if (p)
        __atomic_add_fetch(&live, 1, __ATOMIC_SEQ_CST);
    return p;
}

void *__wrap_malloc(size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted_block(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted_block(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;      /* p stays valid, as after a real failure */
    }
    void *q = __real_realloc(p, n);
    if (!p)
        counted_block(q);
    else if (!q && n == 0)
        __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
    return q;
}

char *__wrap_strdup(const char *s)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return counted_block(__real_strdup(s));
}

void __wrap_free(void *p)
{
    if (p)
        __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
    __real_free(p);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (fail_now())
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

DIR *__wrap_fdopendir(int fd)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_fdopendir(fd);
}

int __wrap_mdb_env_create(MDB_env **env)
{
    return fail_now() ? ENOMEM : __real_mdb_env_create(env);
}

int __wrap_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn)
{
    return fail_now() ? ENOMEM : __real_mdb_txn_begin(env, parent, flags, txn);
}

int __wrap_mdb_cursor_open(MDB_txn *txn, unsigned dbi, MDB_cursor **cur)
{
    return fail_now() ? ENOMEM : __real_mdb_cursor_open(txn, dbi, cur);
}

int __wrap_mdb_put(MDB_txn *txn, unsigned dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    return fail_now() ? ENOMEM : __real_mdb_put(txn, dbi, k, v, flags);
}

/* A commit that fails has freed its transaction, as LMDB's does. */
int __wrap_mdb_txn_commit(MDB_txn *txn)
{
    if (fail_now()) {
        mdb_txn_abort(txn);
        return ENOMEM;
    }
    return __real_mdb_txn_commit(txn);
}

static long live_now(void)
{
    return __atomic_load_n(&live, __ATOMIC_SEQ_CST);
}

/* ================================================================ the driver */

static char root[256];

SCRATCH_SUITE(alloc, root);

/*
 * An operation under test. setup (unarmed) makes the state it starts from;
 * run (armed, in a thread of its own) is the operation, returning its code;
 * failed (unarmed) checks what a failed run left -- out-parameters cleared,
 * nothing visible -- and frees what it must; verify (unarmed) checks what a
 * successful run did and frees it; teardown closes what setup opened.
 */
typedef struct op {
    const char *name;
    void (*setup)(void *ctx);
    int  (*run)(void *ctx);
    void (*failed)(void *ctx, int rc);
    void (*verify)(void *ctx);
    void (*teardown)(void *ctx);
} op;

typedef struct job {
    const op *o;
    void     *ctx;
    long      fail_at, fail_count;
    int       rc;
    long      counted, failed;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    counted = failed = 0;
    fail_at = j->fail_at;
    fail_count = j->fail_count;
    armed = true;
    j->rc = j->o->run(j->ctx);
    armed = false;
    j->counted = counted;
    j->failed = failed;
    return NULL;
}

/* Runs o->run in a new thread with allocations [at, at + count) failing
 * (at -1: none). */
static job run_op(const op *o, void *ctx, long at, long count)
{
    job j = { o, ctx, at, count, 0, 0, 0 };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, job_main, &j), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    return j;
}

static void sweep(const op *o, void *ctx)
{
    /* Once without counting: this thread's own lasting allocations (its
     * append scratch, made by a setup that appends) are made here. */
    o->setup(ctx);
    cr_assert_eq(run_op(o, ctx, -1, 0).rc, 0);
    o->verify(ctx);
    o->teardown(ctx);

    /* Fault-free: count the allocations. */
    long before = live_now();
    o->setup(ctx);
    job j = run_op(o, ctx, -1, 0);
    cr_assert_eq(j.rc, 0, "%s without a fault: %s", o->name, ulog_errname(j.rc));
    o->verify(ctx);
    o->teardown(ctx);
    cr_assert_eq(live_now(), before, "%s: %ld blocks leaked without a fault", o->name,
                 live_now() - before);
    long n = j.counted;
    cr_assert_gt(n, 0, "%s allocates nothing?", o->name);

    long enomem = 0, optional = 0;
    for (int on = 0; on < 2; on++)
        for (long k = 0; k < n; k++) {
            before = live_now();
            o->setup(ctx);
            j = run_op(o, ctx, k, on ? LONG_MAX : 1);
            cr_assert(j.rc == 0 || j.rc == ULOG_ENOMEM,
                      "%s, allocation %ld of %ld failing%s: %s, not ULOG_ENOMEM", o->name, k, n,
                      on ? " and on" : "", ulog_errname(j.rc));
            if (j.rc) {
                enomem++;
                o->failed(ctx, j.rc);
                /* Retried without the fault, it succeeds. */
                job r = run_op(o, ctx, -1, 0);
                cr_assert_eq(r.rc, 0, "%s, retried after allocation %ld failed%s: %s", o->name,
                             k, on ? " and on" : "", ulog_errname(r.rc));
            } else {
                /* An allocation it could do without (an index hint, a
                 * buffer it grows later): it succeeded all the same. */
                optional++;
            }
            o->verify(ctx);
            o->teardown(ctx);
            cr_assert_eq(live_now(), before, "%s, allocation %ld failing%s: %ld blocks leaked",
                         o->name, k, on ? " and on" : "", live_now() - before);
        }
    cr_log_info("%s: %ld allocations; failing each (once, and from then on): %ld times "
                "ULOG_ENOMEM then success on retry, %ld times success without it", o->name, n,
                enomem, optional);
    cr_assert_gt(enomem, 0);
}

/* ================================================================ helpers */

#define T0 1700000000000LL

static ulog_config *quiet(void)
{
    /* The flusher sleeps through a case: its own allocations (in another
     * thread, not counted) do not come and go while `live` is compared. */
    return cfg_of("index.flush.ms", "60000", NULL);
}

/* The cases of an encrypted topic (g_sealed): its key id in the topic's
 * settings, its key given to every handle (outside the counted calls). */
static bool g_sealed;
static const uint8_t ALLOC_KEY[ULOG_KEY_BYTES] = "allocation test key, 32 bytes!!";

static ulog *keyed(ulog *log)
{
    if (g_sealed)
        cr_assert_eq(ulog_key_add(log, "t", 2, ALLOC_KEY, sizeof ALLOC_KEY), 0);
    return log;
}

static ulog *open_quiet(const char *dir)
{
    return keyed(open_at(dir, quiet()));
}

static void case_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", root, name);
}

/* Appends values "r<i>" for i in [from, to) to partition i % parts. */
static void fill(ulog *log, const char *topic, int parts, int from, int to)
{
    for (int i = from; i < to; i++) {
        char v[32];
        snprintf(v, sizeof v, "r%d", i);
        ulog_record r = { .value = v, .value_len = strlen(v), .timestamp = T0 + i,
                          .partition = i % parts };
        append_ok(log, topic, &r, 1);
    }
}

/* Every record of topic, as values, partition by partition; *n the count. */
static int read_all(ulog *log, const char *topic, int parts, int *vals, int cap)
{
    ulog_sub *s = sub_earliest(log, topic);
    ulog_msg m;
    int rc, n = 0;
    int64_t next[16] = { 0 };
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_lt(n, cap);
        cr_assert(m.partition >= 0 && m.partition < parts);
        cr_assert_eq(m.offset, next[m.partition]++, "offsets dense");
        char buf[32];
        snprintf(buf, sizeof buf, "%.*s", (int)m.value_len, (const char *)m.value);
        cr_assert_eq(sscanf(buf, "r%d", &vals[n]), 1, "value %s", buf);
        cr_assert_eq(vals[n] % parts, m.partition);
        n++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    ulog_sub_close(s);
    return n;
}

/* The topic holds exactly r0..r(n-1), each in its partition, in order. */
static void expect_records(ulog *log, const char *topic, int parts, int n)
{
    int vals[512];
    int got = read_all(log, topic, parts, vals, 512);
    cr_assert_eq(got, n, "%d records, %d expected", got, n);
    int last[16];
    for (int p = 0; p < parts; p++)
        last[p] = p - parts;
    for (int i = 0; i < got; i++) {
        int p = vals[i] % parts;
        cr_assert_eq(vals[i], last[p] + parts, "r%d after r%d", vals[i], last[p]);
        last[p] = vals[i];
    }
}

/* Pads values so that a few fill a 4096-byte segment (polls cross segment
 * boundaries, which lists the directory and maps files). */
static void fill_big(ulog *log, const char *topic, int parts, int from, int to)
{
    for (int i = from; i < to; i++) {
        char v[320];
        int n = snprintf(v, sizeof v, "r%d|", i);
        memset(v + n, 'x', sizeof v - (size_t)n);
        ulog_record r = { .value = v, .value_len = sizeof v, .timestamp = T0 + i,
                          .partition = i % parts };
        append_ok(log, topic, &r, 1);
    }
}

static ulog_config *small_segments(void)
{
    return cfg_of("segment.bytes", "4096", "flush.policy", "always", "encryption.key.id",
                  g_sealed ? "2" : "-1", NULL);
}

/* ================================================================ ulog_open */

typedef struct open_ctx {
    char         dir[300];
    ulog_config *cfg;
    ulog        *log;
    bool         crashed;     /* recovery: a torn tail to repair */
    int64_t      hi;
} open_ctx;

static void open_setup(void *arg)
{
    open_ctx *c = arg;
    case_dir(c->dir, sizeof c->dir, c->crashed ? "recover" : "open");
    cr_assert_eq(rm_rf(c->dir), 0);
    c->log = NULL;
    c->cfg = quiet();
    if (!c->crashed)
        return;
    /* A partition a crash left with a torn batch at its end (and heads
     * gone, as after a reboot): the first use of the topic recovers it. */
    ulog *log = keyed(open_with_topic(c->dir, quiet(), "t", 2, small_segments()));
    fill_big(log, "t", 2, 0, 20);
    ulog_close(log);
    char pd[400];
    part_dir(pd, sizeof pd, c->dir, "t", 0);
    int dfd = open(pd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dfd, 0);
    int64_t *v;
    size_t n;
    cr_assert_eq(ulog__seg_list(dfd, &v, &n), 0);
    close(dfd);
    char seg[600];
    seg_path(seg, sizeof seg, c->dir, "t", 0, v[n - 1]);
    free(v);
    uint8_t head[100];
    int fd = open(seg, O_RDWR | O_CLOEXEC);
    cr_assert_eq(pread(fd, head, sizeof head, 0), (ssize_t)sizeof head);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(pwrite(fd, head, sizeof head, st.st_size), (ssize_t)sizeof head);
    close(fd);
    delete_heads(c->dir, "t", 2, false);
}

static int open_run(void *arg)
{
    open_ctx *c = arg;
    int rc = ulog_open(c->dir, c->cfg, &c->log);
    if (rc || !c->crashed)
        return rc;
    int64_t lo;
    return ulog_watermarks(c->log, "t", 0, &lo, &c->hi);
}

static void open_failed(void *arg, int rc)
{
    open_ctx *c = arg;
    (void)rc;
    if (!c->crashed)
        cr_assert_null(c->log, "a failed ulog_open left a handle");
    ulog_close(c->log);       /* the recovery failed, not the open */
    c->log = NULL;
}

static void open_verify(void *arg)
{
    open_ctx *c = arg;
    cr_assert_not_null(c->log);
    if (c->crashed) {
        cr_assert_eq(c->hi, 10, "the torn batch is cut, the 10 records before it stay");
        expect_records(c->log, "t", 2, 20);
        fill_big(c->log, "t", 2, 20, 24);
        expect_records(c->log, "t", 2, 24);
    } else {
        create_topic(c->log, "t", 1, NULL);
        fill(c->log, "t", 1, 0, 3);
        expect_records(c->log, "t", 1, 3);
    }
    ulog_close(c->log);
    c->log = NULL;
}

static void open_teardown(void *arg)
{
    open_ctx *c = arg;
    ulog_config_free(c->cfg);
    rm_rf(c->dir);
}

static const op op_open = { "ulog_open", open_setup, open_run, open_failed, open_verify,
                            open_teardown };
static const op op_recover = { "ulog_open + recovery of a torn partition", open_setup, open_run,
                               open_failed, open_verify, open_teardown };

Test(alloc, open)
{
    open_ctx c = { .crashed = false };
    sweep(&op_open, &c);
}

Test(alloc, open_and_recover_torn_tail)
{
    open_ctx c = { .crashed = true };
    sweep(&op_recover, &c);
}

/* ================================================================ ulog_topic_create */

typedef struct log_ctx {
    char         dir[300];
    ulog        *log;
    ulog_config *cfg;
    ulog_record  recs[8];
    char         vals[8][32];
    int          nrec;
    ulog_sub    *sub;
    ulog_group_desc *desc;
    int64_t      pos[4];
    int          delivered[512];
    int          ndelivered;
    int          callbacks, cb_err;
} log_ctx;

static void create_setup(void *arg)
{
    log_ctx *c = arg;
    case_dir(c->dir, sizeof c->dir, "create");
    cr_assert_eq(rm_rf(c->dir), 0);
    c->log = open_quiet(c->dir);
    c->cfg = small_segments();
}

static int create_run(void *arg)
{
    log_ctx *c = arg;
    return ulog_topic_create(c->log, "t", 3, c->cfg);
}

static void create_failed(void *arg, int rc)
{
    log_ctx *c = arg;
    (void)rc;
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(c->log, "t", &info, NULL), ULOG_ENOENT,
                 "a failed topic_create made the topic");
}

static void create_verify(void *arg)
{
    log_ctx *c = arg;
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(c->log, "t", &info, NULL), 0);
    cr_assert_eq(info.partitions, 3);
    cr_assert_eq(ulog_topic_create(c->log, "t", 3, c->cfg), ULOG_EEXIST);
    fill(c->log, "t", 3, 0, 9);
    expect_records(c->log, "t", 3, 9);
}

static void log_teardown(void *arg)
{
    log_ctx *c = arg;
    ulog_sub_close(c->sub);
    c->sub = NULL;
    ulog_close(c->log);
    c->log = NULL;
    ulog_config_free(c->cfg);
    c->cfg = NULL;
    rm_rf(c->dir);
}

static const op op_create = { "ulog_topic_create", create_setup, create_run, create_failed,
                              create_verify, log_teardown };

Test(alloc, topic_create)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_create, &c);
}

/* ================================================================ ulog_append */

/* The first append of a handle to a topic of 3 partitions (which opens
 * the topic and its partitions), from a thread that never appended (its
 * scratch buffers are made), records for every partition. */
static void append_setup_common(log_ctx *c, bool warm)
{
    case_dir(c->dir, sizeof c->dir, "append");
    cr_assert_eq(rm_rf(c->dir), 0);
    ulog *log = keyed(open_with_topic(c->dir, quiet(), "t", 3, small_segments()));
    ulog_close(log);
    c->log = open_quiet(c->dir);
    int first = 0;
    if (warm) {
        fill(c->log, "t", 3, 0, 3);     /* the topic is open in this handle */
        first = 3;
    }
    c->nrec = 5;
    for (int i = 0; i < c->nrec; i++) {
        snprintf(c->vals[i], sizeof c->vals[i], "r%d", first + i);
        c->recs[i] = (ulog_record){ .value = c->vals[i], .value_len = strlen(c->vals[i]),
                                    .timestamp = T0, .partition = (first + i) % 3,
                                    .offset = -1 };
    }
    c->pos[0] = first;
}

static void append_setup(void *arg)
{
    append_setup_common(arg, false);
}

static void append_setup_warm(void *arg)
{
    append_setup_common(arg, true);
}

static int append_run(void *arg)
{
    log_ctx *c = arg;
    return ulog_append(c->log, "t", c->recs, (size_t)c->nrec);
}

static void append_failed(void *arg, int rc)
{
    log_ctx *c = arg;
    (void)rc;
    for (int i = 0; i < c->nrec; i++)
        cr_assert_eq(c->recs[i].offset, -1, "record %d of a failed append has an offset", i);
    expect_records(c->log, "t", 3, (int)c->pos[0]);   /* nothing of it is visible */
}

static void append_verify(void *arg)
{
    log_ctx *c = arg;
    for (int i = 0; i < c->nrec; i++)
        cr_assert_geq(c->recs[i].offset, 0);
    expect_records(c->log, "t", 3, (int)c->pos[0] + c->nrec);
    /* And the index hints the append noted (or dropped) mislead no seek. */
    ulog_sub *s = sub_earliest(c->log, "t");
    for (int p = 0; p < 3; p++)
        cr_assert_eq(ulog_seek(s, p, 1), 0);
    ulog_msg m;
    int n = 0;
    while (ulog_poll(s, 0, &m) == 0) {
        cr_assert_geq(m.offset, 1);
        n++;
    }
    cr_assert_eq(n, (int)c->pos[0] + c->nrec - 3);
    ulog_sub_close(s);
}

static const op op_append = { "ulog_append (first in a handle and a thread)", append_setup,
                              append_run, append_failed, append_verify, log_teardown };
static const op op_append_warm = { "ulog_append (topic open, new thread)", append_setup_warm,
                                   append_run, append_failed, append_verify, log_teardown };

Test(alloc, append)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_append, &c);
}

Test(alloc, append_warm)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_append_warm, &c);
}

/* An encrypted topic: the values are sealed into buffers of the thread. */
Test(alloc, append_encrypted)
{
    g_sealed = true;
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_append, &c);
}

/* ================================================================ subscribe, poll, commit */

/* 40 records over 2 partitions of small segments; group "g" committed
 * after 7 records; a fresh handle (the topic not open in it). */
static void sub_setup_common(log_ctx *c, const char *name, bool fresh_handle)
{
    case_dir(c->dir, sizeof c->dir, name);
    cr_assert_eq(rm_rf(c->dir), 0);
    ulog *log = keyed(open_with_topic(c->dir, quiet(), "t", 2, small_segments()));
    fill_big(log, "t", 2, 0, 40);
    ulog_config *sc = cfg_of("auto.offset.reset", "earliest", NULL);
    ulog_sub *s;
    cr_assert_eq(ulog_subscribe(log, "t", "g", sc, &s), 0);
    ulog_msg m;
    for (int i = 0; i < 7; i++)
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(ulog_commit(s), 0);
    for (int p = 0; p < 2; p++)
        cr_assert_eq(ulog_position(s, p, &c->pos[p]), 0);
    ulog_sub_close(s);
    if (fresh_handle) {
        ulog_close(log);
        log = open_quiet(c->dir);
    }
    c->log = log;
    c->cfg = sc;
    c->sub = NULL;
    c->ndelivered = 0;
    c->callbacks = 0;
    c->cb_err = 0;
}

static void subscribe_setup(void *arg)
{
    sub_setup_common(arg, "subscribe", true);
}

static int subscribe_run(void *arg)
{
    log_ctx *c = arg;
    return ulog_subscribe(c->log, "t", "g", c->cfg, &c->sub);
}

static void subscribe_failed(void *arg, int rc)
{
    log_ctx *c = arg;
    (void)rc;
    cr_assert_null(c->sub, "a failed subscribe left a subscription");
}

static void subscribe_verify(void *arg)
{
    log_ctx *c = arg;
    cr_assert_not_null(c->sub);
    for (int p = 0; p < 2; p++) {
        int64_t pos;
        cr_assert_eq(ulog_position(c->sub, p, &pos), 0);
        cr_assert_eq(pos, c->pos[p], "partition %d starts at the group's offset", p);
    }
    ulog_msg m;
    int n = 0;
    while (ulog_poll(c->sub, 0, &m) == 0)
        n++;
    cr_assert_eq(n, 40 - 7);
    ulog_sub_close(c->sub);
    c->sub = NULL;
}

static const op op_subscribe = { "ulog_subscribe (group, topic not open yet)", subscribe_setup,
                                 subscribe_run, subscribe_failed, subscribe_verify,
                                 log_teardown };

Test(alloc, subscribe)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_subscribe, &c);
}

/* Polls everything from the group's offsets, across several segments per
 * partition; a failed poll is polled again (the retry) and must go on
 * where it stopped: no record skipped, none twice. */
static void poll_setup(void *arg)
{
    log_ctx *c = arg;
    sub_setup_common(c, "poll", true);
    cr_assert_eq(ulog_subscribe(c->log, "t", "g", c->cfg, &c->sub), 0);
}

static int poll_run(void *arg)
{
    log_ctx *c = arg;
    ulog_msg m;
    int rc;
    while ((rc = ulog_poll(c->sub, 0, &m)) == 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%.*s", 8, (const char *)m.value);
        if (c->ndelivered < 512 && sscanf(buf, "r%d", &c->delivered[c->ndelivered]) == 1)
            c->ndelivered++;
        else
            return -1000;     /* not a record of this test */
    }
    return rc == ULOG_ETIMEDOUT ? 0 : rc;
}

static void poll_verify(void *arg)
{
    log_ctx *c = arg;
    cr_assert_eq(c->ndelivered, 40 - 7, "%d records delivered, 33 expected", c->ndelivered);
    int64_t next[2] = { c->pos[0], c->pos[1] };
    for (int i = 0; i < c->ndelivered; i++) {
        int v = c->delivered[i], p = v % 2;
        cr_assert_eq(v / 2, next[p], "partition %d: r%d delivered, offset %lld expected", p, v,
                     (long long)next[p]);
        next[p]++;
    }
}

static const op op_poll = { "ulog_poll (across segments)", poll_setup, poll_run, NULL,
                            poll_verify, log_teardown };

/* A poll that failed: its retry goes on where it stopped (poll_verify
 * then finds any record skipped or delivered twice). */
static void poll_failed(void *arg, int rc)
{
    (void)arg;
    (void)rc;
}

/* An encrypted topic's values are opened into a buffer of the
 * subscription, made at its first poll and grown for a larger value: with
 * that allocation failing the poll fails, and stays at its record. */
static const op op_poll_sealed = { "ulog_poll (encrypted: values opened into a buffer)",
                                   poll_setup, poll_run, poll_failed, poll_verify,
                                   log_teardown };

/* ulog_poll allocates nothing -- not at a segment boundary either (the
 * next segment is opened by name): so with every allocation failing it
 * still delivers every record, in order, once. */
Test(alloc, poll)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    poll_setup(&c);           /* this thread's append scratch, made once */
    log_teardown(&c);
    memset(&c, 0, sizeof c);
    long before = live_now();
    poll_setup(&c);
    job j = run_op(&op_poll, &c, 0, LONG_MAX);
    cr_assert_eq(j.rc, 0, "ulog_poll with no memory: %s", ulog_errname(j.rc));
    cr_assert_eq(j.counted, 0, "ulog_poll allocated (%ld times)", j.counted);
    poll_verify(&c);
    log_teardown(&c);
    cr_assert_eq(live_now(), before, "%ld blocks leaked", live_now() - before);
    cr_log_info("ulog_poll: 33 records over 4 segments read with every allocation failing: "
                "it makes none");
}

Test(alloc, poll_encrypted)
{
    g_sealed = true;
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_poll_sealed, &c);
}

/* ulog_commit after reading 11 more records than the group's offsets. */
static void commit_setup(void *arg)
{
    log_ctx *c = arg;
    sub_setup_common(c, "commit", false);
    cr_assert_eq(ulog_subscribe(c->log, "t", "g", c->cfg, &c->sub), 0);
    ulog_msg m;
    for (int i = 0; i < 11; i++)
        cr_assert_eq(ulog_poll(c->sub, 0, &m), 0);
    for (int p = 0; p < 2; p++)
        cr_assert_eq(ulog_position(c->sub, p, &c->pos[2 + p]), 0);
}

static int commit_run(void *arg)
{
    log_ctx *c = arg;
    return ulog_commit(c->sub);
}

/* The group's committed offsets are want[0..1]. */
static void expect_committed(ulog *log, const int64_t *want)
{
    ulog_group_desc *d;
    cr_assert_eq(ulog_group_describe(log, "g", &d), 0);
    cr_assert_eq(ulog_group_desc_count(d), 2);
    for (size_t i = 0; i < 2; i++) {
        ulog_group_lag g = { .struct_size = sizeof g };
        cr_assert_eq(ulog_group_desc_get(d, i, &g), 0);
        cr_assert_eq(g.committed, want[g.partition], "partition %d: committed %lld, not %lld",
                     (int)g.partition, (long long)g.committed, (long long)want[g.partition]);
    }
    ulog_group_desc_free(d);
}

static void commit_failed(void *arg, int rc)
{
    log_ctx *c = arg;
    (void)rc;
    expect_committed(c->log, c->pos);     /* all or nothing: still the old ones */
}

static void commit_verify(void *arg)
{
    log_ctx *c = arg;
    expect_committed(c->log, c->pos + 2);
}

static const op op_commit = { "ulog_commit", commit_setup, commit_run, commit_failed,
                              commit_verify, log_teardown };

Test(alloc, commit)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_commit, &c);
}

static void commit_cb(ulog_sub *s, int err, void *arg)
{
    (void)s;
    log_ctx *c = arg;
    c->callbacks++;
    c->cb_err = err;
}

static int commit_async_run(void *arg)
{
    log_ctx *c = arg;
    return ulog_commit_async(c->sub, commit_cb, c);
}

static void commit_async_failed(void *arg, int rc)
{
    log_ctx *c = arg;
    (void)rc;
    cr_assert_eq(ulog_commit(c->sub), 0);     /* drains: no callback is due */
    cr_assert_eq(c->callbacks, 0, "a failed commit_async called back");
    /* That commit stored the positions; take them back for the retry. */
    ulog_offset offs[2] = { { 0, c->pos[0] }, { 1, c->pos[1] } };
    cr_assert_eq(ulog_commit_offsets(c->sub, offs, 2), 0);
}

static void commit_async_verify(void *arg)
{
    log_ctx *c = arg;
    ulog_sub_close(c->sub);           /* waits for the committer, runs the callback */
    c->sub = NULL;
    cr_assert_eq(c->callbacks, 1);
    cr_assert_eq(c->cb_err, 0, "%s", ulog_errname(c->cb_err));
    expect_committed(c->log, c->pos + 2);
}

static const op op_commit_async = { "ulog_commit_async", commit_setup, commit_async_run,
                                    commit_async_failed, commit_async_verify, log_teardown };

Test(alloc, commit_async)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_commit_async, &c);
}

/* ================================================================ groups, lists */

/* Group "g" has offsets in topic "t" (2 partitions); a fresh handle. */
static void describe_setup(void *arg)
{
    log_ctx *c = arg;
    sub_setup_common(c, "describe", true);
    c->desc = NULL;
}

static int describe_run(void *arg)
{
    log_ctx *c = arg;
    return ulog_group_describe(c->log, "g", &c->desc);
}

static void describe_failed(void *arg, int rc)
{
    log_ctx *c = arg;
    (void)rc;
    cr_assert_null(c->desc, "a failed group_describe handed out a description");
}

static void describe_verify(void *arg)
{
    log_ctx *c = arg;
    cr_assert_not_null(c->desc);
    cr_assert_eq(ulog_group_desc_count(c->desc), 2);
    for (size_t i = 0; i < 2; i++) {
        ulog_group_lag g = { .struct_size = sizeof g };
        cr_assert_eq(ulog_group_desc_get(c->desc, i, &g), 0);
        cr_assert_str_eq(g.topic, "t");
        cr_assert_eq(g.partition, (int32_t)i);
        cr_assert_eq(g.committed, c->pos[i]);
        cr_assert_eq(g.high, 20);
        cr_assert_eq(g.lag, 20 - c->pos[i]);
    }
    ulog_group_desc_free(c->desc);
    c->desc = NULL;
}

static const op op_describe = { "ulog_group_describe (topic not open yet)", describe_setup,
                                describe_run, describe_failed, describe_verify, log_teardown };

Test(alloc, group_describe)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_describe, &c);
}

/* ulog_topic_list and ulog_group_list hand out string lists. */
static ulog_strlist *list_out;

static void lists_setup(void *arg)
{
    log_ctx *c = arg;
    sub_setup_common(c, "lists", true);
    create_topic(c->log, "u", 1, NULL);
    list_out = NULL;
}

static int lists_run(void *arg)
{
    log_ctx *c = arg;
    ulog_strlist *t = NULL, *g = NULL;
    int rc = ulog_topic_list(c->log, &t);
    if (!rc)
        rc = ulog_group_list(c->log, &g);
    if (rc) {
        ulog_strlist_free(t);
        return rc;
    }
    /* Both lists, as one: the topics then the groups. */
    cr_assert_eq(ulog_strlist_count(t), 2);
    cr_assert_eq(ulog_strlist_count(g), 1);
    cr_assert_str_eq(ulog_strlist_get(t, 0), "t");
    cr_assert_str_eq(ulog_strlist_get(t, 1), "u");
    cr_assert_str_eq(ulog_strlist_get(g, 0), "g");
    ulog_strlist_free(t);
    list_out = g;
    return 0;
}

static void lists_failed(void *arg, int rc)
{
    (void)arg;
    (void)rc;
    cr_assert_null(list_out);
}

static void lists_verify(void *arg)
{
    (void)arg;
    cr_assert_not_null(list_out);
    ulog_strlist_free(list_out);
    list_out = NULL;
}

static const op op_lists = { "ulog_topic_list + ulog_group_list", lists_setup, lists_run,
                             lists_failed, lists_verify, log_teardown };

Test(alloc, lists)
{
    log_ctx c;
    memset(&c, 0, sizeof c);
    sweep(&op_lists, &c);
}
