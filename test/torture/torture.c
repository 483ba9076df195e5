/*
 * torture.c -- the kill torture: writers, readers and a group committer
 * share one log directory while they are SIGKILLed over and over, and an
 * independent checker (check.c) then proves that nothing acknowledged was
 * lost, nothing was seen twice or out of order, and nothing was seen that
 * was not committed.
 *
 *   torture --dir D --seconds S [--seed N] [--min-kills N] [--checker PATH]
 *           [--writers 3] [--readers 2] [--committers 1] [--parts 3]
 *           [--segment-bytes 32768] [--faults 0|1]
 *   torture worker writer|reader|committer SLOT INC D PARTS [faults]
 *
 * The driver creates a topic of PARTS partitions (flush.policy always, a
 * small segment.bytes so that segments roll every few dozen appends), then
 * runs epochs of 5 to 12 s. In an epoch every slot runs a worker that the
 * driver restarts whenever it dies, and each worker is started with a kill
 * plan:
 *   - strace: run under `strace -f -e inject=SYSCALL:signal=KILL:when=K`:
 *     the K-th call of SYSCALL dies before it runs. Each role has its list
 *     (pwrite64, fdatasync, futex, fsync, ftruncate, flock, fcntl, openat,
 *     writev, unlinkat, rename for writers; fewer for readers and the
 *     committer), and K sweeps a sequence per (role, syscall) up to about
 *     the calls a worker makes in a second or two. pwrite64 hits the
 *     segment write with the write mark set and LMDB's page writes;
 *     fdatasync the group-commit leader (holding slock) and LMDB commits;
 *     fsync and openat the segment roll; flock the head's initialisation;
 *     futex waits and wakes, the gathering appenders' sleeps on sync_seq among
 *     them. A plan whose call never comes ends with a random kill.
 *   - random: SIGKILL at a random time (one in eight during ulog_open);
 *   - holder (writers): after a random delay the driver watches the heads
 *     (mapped read-only) and kills the worker the moment it owns the
 *     writer lock with a big batch half written (it is told to write big
 *     records meanwhile: a torn tail for a live writer to repair), or the
 *     moment it owns the sync lock (the group-commit leader);
 *   - eio (writers, --faults 1): strace makes the K-th fdatasync fail with
 *     EIO, so that appends fail (the checker's G1a count means something);
 *     half of them also die at the first ftruncate, inside the fail rule's
 *     cut; later a random kill;
 *   - repair (writers, after a deferred step, below): die at the first
 *     ftruncate or unlinkat, that is inside the repair of the torn tail
 *     the last epoch left;
 *   - none: runs to the end of the epoch.
 * An epoch ends by killing every worker, first one caught with a big batch
 * half written if it can (the writers are told to write big records). Then
 * the checker's step between epochs, one of three: `reboot` deletes the
 * heads (what a reboot does to them: the recovery scan runs at the next
 * open), `keep` leaves them (the write-mark repair runs at the checker's
 * probe append), `defer` only notes the torn tails for the next epoch's
 * writers to repair. Each counts the torn tails that were cut. After the
 * last epoch the checker's `final` step does a reboot step and verifies
 * everything; its table is the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"
#include "internal.h"
#include "ulog.h"

/* ================================================================ shared */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "torture: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* ================================================================ workers */

/* The control file: the driver's flags, the workers' pids. */
static volatile uint8_t *control;

typedef struct wctx {
    int      fd;            /* the worker's log file */
    uint32_t inc;
    bool     faults;        /* errors may be injected into this one */
    char     buf[64 * LINE];
    size_t   n;             /* bytes buffered */
    int64_t  last_flush;
} wctx;

static void w_flush(wctx *w)
{
    if (w->n)
        write_lines(w->fd, w->buf, w->n);
    w->n = 0;
    w->last_flush = mono_ns();
}

static void w_line(wctx *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void w_line(wctx *w, const char *fmt, ...)
{
    if (w->n + LINE > sizeof w->buf)
        w_flush(w);
    char *l = w->buf + w->n;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l, LINE, fmt, ap);
    va_end(ap);
    line_pad(l, n);
    w->n += LINE;
}

/* An unexpected error: 'X' (counted by the checker), or 'x' when faults
 * are injected into this process (expected). Written at once. */
static void w_error(wctx *w, int err, const char *what)
{
    w_line(w, "%c %06u e%04d %s", w->faults ? 'x' : 'X', w->inc, -err, what);
    w_flush(w);
}

static int open_log_file(const char *base, const char *name, uint32_t slot)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/logs/%s-%u.log", base, name, slot);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    return fd;
}

static ulog *w_open(wctx *w, const char *base, const ulog_config *cfg)
{
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/ulog", base);
    ulog *log;
    int rc = ulog_open(root, cfg, &log);
    if (!rc)
        rc = ulog_key_add(log, TOPIC, TORTURE_KEY_ID, TORTURE_KEY, sizeof TORTURE_KEY);
    if (rc) {
        w_error(w, rc, "ulog_open");
        _exit(3);
    }
    return log;
}

static int worker_writer(const char *base, uint32_t slot, uint32_t inc, int parts, bool faults)
{
    wctx w = { .fd = open_log_file(base, "writer", slot), .inc = inc, .faults = faults };
    uint64_t rng = mix64(((uint64_t)slot << 32) ^ inc ^ 0x77);
    ulog_config *lc = ulog_config_new();
    char eb[128];
    /* Frequent index flushes and checkpoints: more LMDB transactions for
     * the kills to land in. */
    if (!lc || ulog_config_set_int(lc, "index.flush.ms", 5 + (int64_t)(rng % 200), eb,
                                   sizeof eb) != 0)
        die("config: %s", eb);
    ulog *log = w_open(&w, base, lc);
    ulog_config_free(lc);
    uint8_t *buf = malloc(MAX_BATCH_BYTES + MAX_VALUE);
    if (!buf)
        die("out of memory");
    const volatile uint8_t *ctl = control;
    int failures = 0;
    for (uint32_t seq = 0;; ) {
        rng = mix64(rng);
        int mode = (int)(rng % 10);
        size_t n = 1 + (size_t)((rng >> 8) % 6);
        if ((rng >> 24) % 2 == 0)
            sleep_us((int64_t)((rng >> 32) % 2000));   /* not always flat out */
        if (ctl[CTL_BIG] || ctl[CTL_BIG_SLOT + slot]) {
            /* One big record: a pwrite long enough to be caught half done. */
            while (!is_big(rec_id(slot, inc, seq)))
                seq++;
            n = 1;
        }
        int32_t p0 = (int32_t)((rng >> 16) % (uint64_t)parts);
        ulog_record recs[8];
        ulog_header hdr[8];
        char keys[8][17];
        uint64_t ids[8];
        size_t used = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t id = rec_id(slot, inc, seq + (uint32_t)i);
            size_t len = value_len(id);
            if (i > 0 && used + len > MAX_BATCH_BYTES) {
                n = i;
                break;
            }
            ids[i] = id;
            value_fill(buf + used, id, len);
            key_fill(keys[i], id);
            hdr[i] = (ulog_header){ HEADER_KEY, 3, &ids[i], 8 };
            recs[i] = (ulog_record){
                .key = key_null(id) ? NULL : keys[i], .key_len = key_null(id) ? 0 : 16,
                .value = buf + used, .value_len = len,
                .headers = has_header(id) ? &hdr[i] : NULL, .header_count = has_header(id),
                .timestamp = ULOG_TIMESTAMP_NOW,
                .partition = mode < 6 ? p0 : mode < 9 ? ULOG_PARTITION_ANY
                                                      : (int32_t)((p0 + (int32_t)i) % parts),
            };
            used += len;
        }
        int rc = ulog_append(log, TOPIC, recs, n);
        for (size_t i = 0; i < n; i++) {
            if (recs[i].offset >= 0)
                w_line(&w, "A %016llx p%03d o%012lld", (unsigned long long)ids[i],
                       (int)recs[i].partition, (long long)recs[i].offset);
            else
                w_line(&w, "F %016llx e%04d", (unsigned long long)ids[i], rc ? -rc : 999);
        }
        w_flush(&w);
        seq += (uint32_t)n;
        if (rc == 0) {
            failures = 0;
            continue;
        }
        /* EIO / ENOSPC: an fdatasync failed (injected); the batch was cut,
         * the log goes on. Anything else is a defect. */
        if (rc != ULOG_EIO && rc != ULOG_ENOSPC)
            w_error(&w, rc, "ulog_append");
        if (++failures > 50) {
            w_error(&w, rc, "ulog_append: 50 failures in a row");
            _exit(3);
        }
        if (rc == ULOG_EPOISONED)
            _exit(4);   /* reopened by the next incarnation */
    }
}

static void commit_now(wctx *w, ulog_sub *s, int parts, uint32_t *commits)
{
    ++*commits;
    w_flush(w);
    for (int32_t p = 0; p < parts; p++) {
        int64_t pos;
        int rc = ulog_position(s, p, &pos);
        if (rc) {
            w_error(w, rc, "ulog_position");
            _exit(3);
        }
        w_line(w, "c %06u n%08u p%03d o%012lld", w->inc, *commits, (int)p, (long long)pos);
    }
    w_flush(w);     /* one write: the commit's positions, whole */
    int rc = ulog_commit(s);
    if (rc)
        w_line(w, "E %06u n%08u e%04d", w->inc, *commits, -rc);
    else
        w_line(w, "C %06u n%08u", w->inc, *commits);
    w_flush(w);
}

static void log_positions(wctx *w, ulog_sub *s, int parts)
{
    for (int32_t p = 0; p < parts; p++) {
        int64_t pos;
        int rc = ulog_position(s, p, &pos);
        if (rc) {
            w_error(w, rc, "ulog_position");
            _exit(3);
        }
        w_line(w, "S %06u p%03d o%012lld", w->inc, (int)p, (long long)pos);
    }
}

static int worker_reader(const char *base, uint32_t slot, uint32_t inc, int parts,
                         bool committer)
{
    wctx w = { .fd = open_log_file(base, committer ? "committer" : "reader", slot),
               .inc = inc };
    uint64_t rng = mix64(((uint64_t)slot << 32) ^ inc ^ (committer ? 0xc0 : 0x33));
    ulog *log = w_open(&w, base, NULL);
    if (committer) {
        /* What the group holds before this incarnation subscribes: a
         * committed offset must never be past the partition's end. */
        int64_t committed[MAX_PARTS];
        for (int p = 0; p < parts; p++)
            committed[p] = -1;
        ulog_group_desc *d;
        int rc = ulog_group_describe(log, GROUP, &d);
        if (rc == 0) {
            for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
                ulog_group_lag g = ULOG_GROUP_LAG_INIT;
                if (ulog_group_desc_get(d, i, &g) == 0 && strcmp(g.topic, TOPIC) == 0 &&
                    g.partition >= 0 && g.partition < parts)
                    committed[g.partition] = g.committed;
            }
            ulog_group_desc_free(d);
        } else if (rc != ULOG_ENOENT) {
            w_error(&w, rc, "ulog_group_describe");
        }
        for (int32_t p = 0; p < parts; p++) {
            int64_t lo, hi;
            rc = ulog_watermarks(log, TOPIC, p, &lo, &hi);
            if (rc) {
                w_error(&w, rc, "ulog_watermarks");
                _exit(3);
            }
            w_line(&w, "G %06u p%03d c%012lld l%012lld h%012lld", inc, (int)p,
                   (long long)committed[p], (long long)lo, (long long)hi);
        }
    }
    ulog_config *sc = ulog_config_new();
    char eb[128];
    if (!sc || ulog_config_set(sc, "auto.offset.reset", "earliest", eb, sizeof eb) != 0)
        die("config: %s", eb);
    ulog_sub *s;
    int rc = ulog_subscribe(log, TOPIC, committer ? GROUP : NULL, sc, &s);
    ulog_config_free(sc);
    if (rc) {
        w_error(&w, rc, "ulog_subscribe");
        _exit(3);
    }
    if (!committer) {
        /* Mostly near the end (the live case), sometimes from the start
         * or the end. */
        for (int32_t p = 0; p < parts; p++) {
            int64_t lo, hi;
            rng = mix64(rng);
            if ((rc = ulog_watermarks(log, TOPIC, p, &lo, &hi)) != 0) {
                w_error(&w, rc, "ulog_watermarks");
                _exit(3);
            }
            /* Catch-up is bounded: every record polled is a log line. */
            int64_t back = rng % 10 == 0 ? 20000 : 500;
            int64_t at = rng % 10 < 3 && rng % 10 > 0 ? hi : hi - (int64_t)((rng >> 8) % back);
            if (at < lo)
                at = lo;
            if ((rc = ulog_seek(s, p, at)) != 0) {
                w_error(&w, rc, "ulog_seek");
                _exit(3);
            }
        }
    }
    log_positions(&w, s, parts);
    w_flush(&w);
    uint32_t commits = 0;
    int64_t since = 0, every = 20 + (int64_t)(rng % 400), polled = 0;
    int64_t reseek = 2000 + (int64_t)((rng >> 12) % 20000);
    int errors = 0;
    for (;;) {
        ulog_msg m;
        rc = ulog_poll(s, 100, &m);
        if (rc == 0) {
            uint64_t id = 0;
            bool ok = value_ok(m.value, m.value_len, &id);
            if (ok && key_null(id)) {
                ok = m.key == NULL;
            } else if (ok) {
                char k[17];
                key_fill(k, id);
                ok = m.key && m.key_len == 16 && memcmp(k, m.key, 16) == 0;
            }
            if (ok && m.header_count != (size_t)has_header(id))
                ok = false;
            if (ok && m.header_count) {
                ulog_header h;
                ok = ulog_msg_header(&m, 0, &h) == 0 && h.key_len == 3 &&
                     memcmp(h.key, HEADER_KEY, 3) == 0 && h.value_len == 8 &&
                     memcmp(h.value, &id, 8) == 0;
            }
            w_line(&w, "%c %06u p%03d o%012lld %016llx", ok ? 'R' : 'D', inc,
                   (int)m.partition, (long long)m.offset, (unsigned long long)id);
            polled++;
            if (committer && ++since >= every) {
                commit_now(&w, s, parts, &commits);
                since = 0;
                rng = mix64(rng);
                every = 1 + (int64_t)(rng % 500);
            }
            if (!committer && polled % reseek == 0) {
                /* Seek one partition elsewhere while the writers go on. */
                rng = mix64(rng);
                int32_t p = (int32_t)(rng % (uint64_t)parts);
                int64_t lo, hi;
                if ((rc = ulog_watermarks(log, TOPIC, p, &lo, &hi)) == 0 && hi > lo) {
                    int64_t at = hi - (int64_t)((rng >> 8) % 2000);
                    if (at < lo)
                        at = lo;
                    if ((rc = ulog_seek(s, p, at)) == 0)
                        w_line(&w, "S %06u p%03d o%012lld", inc, (int)p, (long long)at);
                }
                if (rc)
                    w_error(&w, rc, "reseek");
            }
            if (w.n >= 32 * LINE || mono_ns() - w.last_flush > 20000000)
                w_flush(&w);
            continue;
        }
        w_flush(&w);
        if (rc == ULOG_ETIMEDOUT) {
            if (committer && since > 0) {
                commit_now(&w, s, parts, &commits);
                since = 0;
            }
            continue;
        }
        w_error(&w, rc, "ulog_poll");
        if (++errors > 100)
            _exit(3);
        sleep_us(10000);
    }
}

static void control_map(const char *base, int role, uint32_t slot)
{
    char cpath[1100];
    snprintf(cpath, sizeof cpath, "%s/control", base);
    int cfd = open(cpath, O_RDWR | O_CLOEXEC);
    void *a = cfd >= 0 ? mmap(NULL, CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0)
                       : MAP_FAILED;
    if (a == MAP_FAILED)
        die("map %s: %s", cpath, strerror(errno));
    close(cfd);
    control = a;
    if (role >= 0)
        __atomic_store_n((int32_t *)(control + CTL_PID + 4 * (role * 32 + (int)slot)),
                         (int32_t)getpid(), __ATOMIC_SEQ_CST);
}

static int worker_main(int argc, char **argv)
{
    if (argc < 7)
        die("usage: torture worker writer|reader|committer SLOT INC DIR PARTS [faults]");
    const char *role = argv[2];
    uint32_t slot = (uint32_t)strtoul(argv[3], NULL, 10);
    uint32_t inc = (uint32_t)strtoul(argv[4], NULL, 10);
    const char *base = argv[5];
    int parts = atoi(argv[6]);
    bool faults = argc > 7 && strcmp(argv[7], "faults") == 0;
    if (parts < 1 || parts > MAX_PARTS)
        die("bad PARTS");
    if (slot >= 32)
        die("bad SLOT");
    if (strcmp(role, "writer") == 0) {
        control_map(base, 0, slot);
        return worker_writer(base, slot, inc, parts, faults);
    }
    if (strcmp(role, "reader") == 0) {
        control_map(base, 1, slot);
        return worker_reader(base, slot, inc, parts, false);
    }
    if (strcmp(role, "committer") == 0) {
        control_map(base, 2, slot);
        return worker_reader(base, slot, inc, parts, true);
    }
    die("unknown role %s", role);
}

/* ================================================================ driver */

enum role { R_WRITER, R_READER, R_COMMITTER, R_COUNT };
static const char *const role_name[R_COUNT] = { "writer", "reader", "committer" };

enum plan { P_NONE, P_RANDOM, P_STRACE, P_HOLDER, P_EIO, P_REPAIR };

/* How a worker died. */
enum death {
    D_INJECTED,         /* strace's SIGKILL at the K-th call */
    D_RANDOM,           /* the driver's SIGKILL at a random time */
    D_HOLDER_WRITE,     /* the driver's SIGKILL, worker owning wlock mid-write */
    D_HOLDER_SYNC,      /* the driver's SIGKILL, worker owning slock */
    D_HOLDER_MISS,      /* hunted, not caught holding: killed anyway */
    D_EPOCH_TORN,       /* epoch end: caught with a large batch half written */
    D_EPOCH,            /* epoch end */
    D_COUNT
};
static const char *const death_name[D_COUNT] = {
    "strace inject (K-th call)", "random time", "holding wlock mid-write",
    "holding slock (sync leader)", "hunted, not caught holding", "epoch end, batch half written",
    "epoch end",
};

/* The syscalls swept under strace, per role, each with the largest K of
 * its sweep: about the calls a worker makes in a second or two of its
 * life (measured with strace -c). ftruncate and unlinkat come only in a
 * cut (the repair of a dead writer's tail), rename never (ulog renames
 * nothing): their K stays small. */
typedef struct sysk {
    const char *name;
    int         kmax;
} sysk;
static const sysk sys_writer[] = {
    { "pwrite64", 400 }, { "fdatasync", 300 }, { "futex", 400 }, { "fsync", 30 },
    { "ftruncate", 3 },  { "flock", 12 },      { "fcntl", 20 },  { "openat", 150 },
    { "writev", 20 },    { "unlinkat", 3 },    { "rename", 3 },
};
static const sysk sys_reader[] = {
    { "futex", 200 }, { "flock", 12 }, { "fcntl", 8 }, { "openat", 300 }, { "mmap", 300 },
};
static const sysk sys_committer[] = {
    { "pwrite64", 40 }, { "fdatasync", 20 }, { "writev", 10 }, { "futex", 400 },
    { "flock", 12 },    { "fcntl", 4 },      { "openat", 30 },  { "rename", 3 },
};
#define NSYS_MAX 11
static const sysk *const sys_of[R_COUNT] = { sys_writer, sys_reader, sys_committer };
static const int nsys_of[R_COUNT] = {
    (int)(sizeof sys_writer / sizeof sys_writer[0]),
    (int)(sizeof sys_reader / sizeof sys_reader[0]),
    (int)(sizeof sys_committer / sizeof sys_committer[0]),
};

/* The K sweep: every value up to the syscall's largest in turn, per
 * (role, syscall). */
static const int k_seq[] = { 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 28, 33, 40, 48,
                             57, 68, 80, 95, 110, 130, 160, 190, 230, 280, 340, 400 };
#define NK ((int)(sizeof k_seq / sizeof k_seq[0]))

typedef struct slot {
    enum role role;
    uint32_t  idx;          /* slot number within the role (writer: the id slot) */
    pid_t     pid;          /* the child: strace or the worker */
    bool      running;
    uint32_t  inc;
    enum plan plan;
    int       sys, k;
    int64_t   t_start, t_kill, t_hunt_end;
    bool      hunting;
    bool      killed;       /* the driver sent the SIGKILL */
    enum death why;
    int64_t   restart_at;
    const char *force_sys;  /* next start: strace, this syscall, K = 1 */
    bool      forced;
} slot;

typedef struct stats {
    int64_t deaths[D_COUNT];
    int64_t inj[R_COUNT][NSYS_MAX];          /* injected kills that fired */
    int64_t inj_tries[R_COUNT][NSYS_MAX];    /* plans started */
    int     kmin[R_COUNT][NSYS_MAX], kmax[R_COUNT][NSYS_MAX];
    int64_t eio_runs, starts, exits, crashes, strace_fail;
    int64_t held_wlock, held_slock;         /* deaths that left a head mutex owned */
    int64_t live_torn;                      /* holder kills with a big batch half written */
    int64_t eio_cut, eio_cut_fired;         /* EIO runs also killed in the fail rule's cut */
    int64_t epochs, reboots, defers, defer_torn, forced, forced_fired;
} stats;

static struct {
    char base[1024];
    char self[PATH_MAX];
    char checker[PATH_MAX];
    int  seconds, parts, writers, readers, committers, segment_bytes, min_kills;
    bool faults;
    int  encrypt;       /* -1: by the seed */
    uint64_t seed;
} opt;

static slot    *slots;
static int      nslots;
static stats    st;
static uint32_t next_inc = 1;
static uint64_t rng_state;
static int      ksweep[R_COUNT][NSYS_MAX];
static int      sysrot[R_COUNT];
static bool     have_strace;
static volatile sig_atomic_t stop_flag;

static uint64_t rnd(void)
{
    rng_state = mix64(rng_state);
    return rng_state;
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------- heads */

typedef struct headmap {
    ulog__head *h;
    char        dir[PATH_MAX];
} headmap;
static headmap heads[MAX_PARTS];

static void heads_unmap(void)
{
    for (int p = 0; p < opt.parts; p++) {
        if (heads[p].h)
            munmap(heads[p].h, ULOG__HEAD_SIZE);
        heads[p].h = NULL;
    }
}

/* Read-only and without the head's flock: the driver is no user of the
 * partition (a deleted head must still look unused). */
static void heads_map(void)
{
    heads_unmap();
    for (int p = 0; p < opt.parts; p++) {
        snprintf(heads[p].dir, sizeof heads[p].dir, "%s/ulog/topics/%s/%d", opt.base, TOPIC, p);
        char path[PATH_MAX + 8];
        snprintf(path, sizeof path, "%s/head", heads[p].dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat sb;
        if (fstat(fd, &sb) == 0 && sb.st_size >= ULOG__HEAD_SIZE) {
            void *a = mmap(NULL, ULOG__HEAD_SIZE, PROT_READ, MAP_SHARED, fd, 0);
            if (a != MAP_FAILED)
                heads[p].h = a;
        }
        close(fd);
    }
}

/* The pid the slot's worker stored (0: none yet). */
static pid_t worker_pid(const slot *s)
{
    return __atomic_load_n((int32_t *)(control + CTL_PID + 4 * ((int)s->role * 32 + (int)s->idx)),
                           __ATOMIC_SEQ_CST);
}

static pid_t owner_of(pthread_mutex_t *m)
{
    return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
}

/* A write in flight in partition p by thread `tid`: bytes written past the
 * mark so far, and the frame size the batch header there claims (0 if not
 * readable yet). Returns false when there is none. */
static bool write_in_flight(int p, pid_t tid, int64_t *written, int64_t *frame)
{
    ulog__head *h = heads[p].h;
    if (!h || owner_of(&h->wlock) != tid || !__atomic_load_n(&h->marked, __ATOMIC_ACQUIRE))
        return false;
    /* The write goes to the write end, which moves only after it. */
    int64_t seg = __atomic_load_n(&h->wend.segment, __ATOMIC_ACQUIRE);
    int64_t pos = __atomic_load_n(&h->wend.pos, __ATOMIC_ACQUIRE);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%020lld.log", heads[p].dir, (long long)seg);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat sb;
    uint8_t hdr[12];
    *frame = 0;
    *written = fstat(fd, &sb) == 0 ? sb.st_size - pos : 0;
    if (*written >= 12 && pread(fd, hdr, 12, pos) == 12) {
        uint32_t len = (uint32_t)hdr[8] << 24 | (uint32_t)hdr[9] << 16 |
                       (uint32_t)hdr[10] << 8 | hdr[11];
        *frame = 12 + (int64_t)len;
        if (len == 0)
            *written = 0;               /* nothing of the batch yet */
        else if (*written > *frame)
            *written = *frame;
        /* flush.policy always sizes the file ahead of the data: a write in
         * flight has filled a prefix of the zeros. Where the bytes turn to
         * zeros for good, by halving (64-byte chunks: a batch's data has no
         * such runs of zeros). */
        int64_t lo = 12, hi = *written;     /* lo: written; hi: not past it */
        while (len && hi - lo > 64) {
            int64_t mid = lo + (hi - lo) / 2;
            uint8_t chunk[64], any = 0;
            ssize_t n = pread(fd, chunk, sizeof chunk, pos + mid);
            for (ssize_t i = 0; i < n; i++)
                any |= chunk[i];
            if (any)
                lo = mid;
            else
                hi = mid;
        }
        if (len)
            *written = hi;
    }
    close(fd);
    return *written > 0;
}

/* ---------------------------------------------------------------- spawning */

static void spawn(slot *s)
{
    s->inc = next_inc++;
    s->killed = false;
    s->hunting = false;
    s->t_start = mono_ns();
    int64_t now = s->t_start;
    /* The plan. */
    uint64_t r = rnd() % 100;
    s->forced = s->force_sys != NULL;
    s->force_sys = NULL;
    if (s->forced)
        s->plan = P_REPAIR;
    else if (s->role == R_WRITER && opt.faults && r < 4)
        s->plan = P_EIO;
    else if (r < 50)
        s->plan = P_STRACE;
    else if (r < 80 || (r < 95 && s->role != R_WRITER))
        s->plan = P_RANDOM;
    else if (r < 95)
        s->plan = P_HOLDER;
    else
        s->plan = P_NONE;
    s->t_kill = INT64_MAX;
    switch (s->plan) {
    case P_RANDOM:
        /* Now and then during ulog_open itself. */
        s->t_kill = now + (rnd() % 8 == 0 ? rnd_range(0, 30) : rnd_range(30, 1500)) * 1000000;
        break;
    case P_STRACE: {
        int n = nsys_of[s->role], nk = 0;
        s->sys = sysrot[s->role]++ % n;
        while (nk < NK && k_seq[nk] <= sys_of[s->role][s->sys].kmax)
            nk++;
        s->k = k_seq[ksweep[s->role][s->sys]++ % nk];
        s->t_kill = now + rnd_range(1500, 3000) * 1000000LL;   /* if the call never comes */
        st.inj_tries[s->role][s->sys]++;
        break;
    }
    case P_EIO:
        s->k = (int)rnd_range(1, 60);
        s->t_kill = now + rnd_range(1000, 3000) * 1000000LL;
        st.eio_runs++;
        /* Half of them die in the fail rule's cut that follows. */
        s->sys = (int)(rnd() % 2);
        st.eio_cut += s->sys;
        break;
    case P_REPAIR:
        s->t_kill = now + rnd_range(1500, 3000) * 1000000LL;
        st.forced++;
        break;
    case P_HOLDER:
        s->t_kill = now + rnd_range(50, 1200) * 1000000;
        s->t_hunt_end = s->t_kill + 700 * 1000000LL;
        s->sys = (int)(rnd() % 2);
        break;
    case P_NONE:
        break;
    }
    char slot_s[16], inc_s[16], parts_s[16], kspec[96], trace[64];
    snprintf(slot_s, sizeof slot_s, "%u", s->idx);
    snprintf(inc_s, sizeof inc_s, "%u", s->inc);
    snprintf(parts_s, sizeof parts_s, "%d", opt.parts);
    const char *argv[32];
    int a = 0;
    if (s->plan == P_STRACE || s->plan == P_EIO || s->plan == P_REPAIR) {
        argv[a++] = "strace";
        argv[a++] = "-f";
        argv[a++] = "-qqq";
        argv[a++] = "-o";
        argv[a++] = "/dev/null";
        argv[a++] = "-e";
        argv[a++] = trace;
        argv[a++] = "-e";
        argv[a++] = kspec;
        if (s->plan == P_STRACE) {
            const char *sys = sys_of[s->role][s->sys].name;
            snprintf(trace, sizeof trace, "trace=%s", sys);
            snprintf(kspec, sizeof kspec, "inject=%s:signal=KILL:when=%d", sys, s->k);
        } else if (s->plan == P_EIO) {
            snprintf(trace, sizeof trace, "trace=fdatasync%s", s->sys ? ",ftruncate" : "");
            snprintf(kspec, sizeof kspec, "inject=fdatasync:error=EIO:when=%d", s->k);
            if (s->sys) {
                argv[a++] = "-e";
                argv[a++] = "inject=ftruncate:signal=KILL:when=1";
            }
        } else {
            /* The repair of the tail a deferred step left: die at the
             * first truncate or unlink of the cut. */
            snprintf(trace, sizeof trace, "trace=ftruncate,unlinkat");
            snprintf(kspec, sizeof kspec, "inject=ftruncate:signal=KILL:when=1");
            argv[a++] = "-e";
            argv[a++] = "inject=unlinkat:signal=KILL:when=1";
        }
        argv[a++] = "--";
    }
    argv[a++] = opt.self;
    argv[a++] = "worker";
    argv[a++] = role_name[s->role];
    argv[a++] = slot_s;
    argv[a++] = inc_s;
    argv[a++] = opt.base;
    argv[a++] = parts_s;
    if (s->plan == P_EIO)
        argv[a++] = "faults";
    argv[a] = NULL;
    char errpath[PATH_MAX];
    snprintf(errpath, sizeof errpath, "%s/logs/stderr-%s-%u.txt", opt.base, role_name[s->role],
             s->idx);
    __atomic_store_n((int32_t *)(control + CTL_PID + 4 * ((int)s->role * 32 + (int)s->idx)), 0,
                     __ATOMIC_SEQ_CST);
    if (s->role == R_WRITER)
        control[CTL_BIG_SLOT + s->idx] = 0;
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(errpath, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], (char **)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    s->pid = pid;
    s->running = true;
    st.starts++;
}

static void kill_slot(slot *s, enum death why)
{
    if (!s->running || s->killed)
        return;
    s->killed = true;
    s->why = why;
    kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
}

/* Reaps one child; false when none was ready. */
static bool reap(bool block)
{
    int status;
    pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
    if (pid <= 0)
        return false;
    slot *s = NULL;
    for (int i = 0; i < nslots; i++)
        if (slots[i].running && slots[i].pid == pid)
            s = &slots[i];
    if (!s)
        return true;    /* a checker run */
    kill(-pid, SIGKILL);    /* strace's tracee, if strace went first */
    s->running = false;
    s->restart_at = mono_ns() + rnd_range(0, 20) * 1000000;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        /* Did it die owning a head mutex? (glibc keeps the owner's tid in
         * the mutex until the next locker takes it over.) */
        pid_t wp = worker_pid(s);
        for (int p = 0; wp > 0 && p < opt.parts; p++) {
            if (!heads[p].h)
                continue;
            st.held_wlock += owner_of(&heads[p].h->wlock) == wp;
            st.held_slock += owner_of(&heads[p].h->slock) == wp;
        }
        if (s->killed) {
            st.deaths[s->why]++;
        } else if (s->plan == P_REPAIR || s->plan == P_EIO) {
            st.deaths[D_INJECTED]++;
            st.forced_fired += s->plan == P_REPAIR;
            st.eio_cut_fired += s->plan == P_EIO;
        } else if (s->plan == P_STRACE) {
            st.deaths[D_INJECTED]++;
            int r = s->role, y = s->sys;
            if (st.inj[r][y] == 0 || s->k < st.kmin[r][y])
                st.kmin[r][y] = s->k;
            if (s->k > st.kmax[r][y])
                st.kmax[r][y] = s->k;
            st.inj[r][y]++;
        } else {
            st.crashes++;
            fprintf(stderr, "torture: %s %u (incarnation %u): SIGKILL from nobody\n",
                    role_name[s->role], s->idx, s->inc);
        }
    } else if (WIFSIGNALED(status)) {
        st.crashes++;
        fprintf(stderr, "torture: %s %u (incarnation %u) died of signal %d (see logs/stderr-*)\n",
                role_name[s->role], s->idx, s->inc, WTERMSIG(status));
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 127 || (code == 1 && (s->plan == P_STRACE || s->plan == P_EIO)))
            st.strace_fail++;
        st.exits++;
        if (!s->killed && s->plan != P_EIO)
            fprintf(stderr, "torture: %s %u (incarnation %u) exited with %d (see "
                    "logs/stderr-%s-%u.txt and its log)\n", role_name[s->role], s->idx, s->inc,
                    code, role_name[s->role], s->idx);
    }
    return true;
}

static void kill_all(enum death why)
{
    for (int i = 0; i < nslots; i++)
        kill_slot(&slots[i], why);
    for (int i = 0; i < nslots; i++)
        while (slots[i].running)
            if (!reap(true))
                break;
}

/* Epoch end: first, for up to 300 ms, look for a writer with a large batch
 * half written and kill it then (a torn tail for recovery to cut). */
static void kill_all_torn(void)
{
    control[CTL_BIG] = 1;
    int64_t until = mono_ns() + 300000000;
    while (mono_ns() < until) {
        bool hit = false;
        for (int i = 0; i < nslots && !hit; i++) {
            slot *s = &slots[i];
            if (s->role != R_WRITER || !s->running || s->killed)
                continue;
            for (int p = 0; p < opt.parts && !hit; p++) {
                int64_t written, frame;
                if (write_in_flight(p, worker_pid(s), &written, &frame) && frame > 65536 &&
                    written < frame) {
                    kill_slot(s, D_EPOCH_TORN);
                    hit = true;
                }
            }
        }
        if (hit)
            break;
        sched_yield();
    }
    kill_all(D_EPOCH);
    control[CTL_BIG] = 0;
}

/* Hunting, two kinds (s->sys). 0: kill s once it owns wlock with a write
 * in flight: for 200 ms only a big one caught half written (the slot is
 * told to write big records meanwhile), then any. 1: kill it once it owns
 * slock (the group-commit leader, in its fdatasync), or
 * after 300 ms with a write in flight. */
static void hunt(slot *s, int64_t now)
{
    int64_t t = now - s->t_kill;
    pid_t wp = worker_pid(s);
    if (s->sys == 0)
        control[CTL_BIG_SLOT + s->idx] = t < 200000000;
    for (int p = 0; p < opt.parts && wp > 0; p++) {
        ulog__head *h = heads[p].h;
        if (s->sys == 1 && h && owner_of(&h->slock) == wp) {
            kill_slot(s, D_HOLDER_SYNC);
            break;
        }
        int64_t written, frame;
        if (write_in_flight(p, wp, &written, &frame)) {
            bool torn = frame > 65536 && written < frame;
            if ((s->sys == 0 && torn) || t > (s->sys == 0 ? 200000000 : 300000000)) {
                kill_slot(s, D_HOLDER_WRITE);
                st.live_torn += torn;
                break;
            }
        }
    }
    if (!s->killed && now >= s->t_hunt_end)
        kill_slot(s, D_HOLDER_MISS);
    if (s->killed)
        control[CTL_BIG_SLOT + s->idx] = 0;
}

/* ---------------------------------------------------------------- checker */

static int run_checker(const char *mode, const char *how, uint32_t probe_inc, int timeout_s)
{
    char parts_s[16], inc_s[16];
    snprintf(parts_s, sizeof parts_s, "%d", opt.parts);
    snprintf(inc_s, sizeof inc_s, "%u", probe_inc);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execl(opt.checker, opt.checker, mode, opt.base, parts_s, how, inc_s, (char *)NULL);
        fprintf(stderr, "torture: exec %s: %s\n", opt.checker, strerror(errno));
        _exit(127);
    }
    int64_t until = mono_ns() + (int64_t)timeout_s * 1000000000;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (mono_ns() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "torture: checker %s did not finish in %d s\n", mode, timeout_s);
            return 124;
        }
        sleep_us(5000);
    }
}

/* ---------------------------------------------------------------- main */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: torture --dir D --seconds S [--seed N] [--min-kills N] "
                    "[--checker PATH] [--writers N] [--readers N] [--committers N] "
                    "[--parts N] [--segment-bytes N] [--faults 0|1] [--encrypt 0|1]\n");
    exit(2);
}

static void setup_log(void)
{
    char cmd[PATH_MAX + 32], path[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", opt.base);
    if (system(cmd) != 0)
        die("%s failed", cmd);
    snprintf(path, sizeof path, "%s/logs", opt.base);
    if (mkdir(opt.base, 0755) != 0 || mkdir(path, 0755) != 0)
        die("mkdir %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/control", opt.base);
    int cfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (cfd < 0 || ftruncate(cfd, CONTROL_SIZE) != 0)
        die("%s: %s", path, strerror(errno));
    close(cfd);
    control_map(opt.base, -1, 0);
    snprintf(path, sizeof path, "%s/ulog", opt.base);
    ulog *log;
    int rc = ulog_open(path, NULL, &log);
    if (rc)
        die("ulog_open %s: %s", path, ulog_strerror(rc));
    ulog_config *tc = ulog_config_new();
    char eb[128];
    if (!tc || ulog_config_set_int(tc, "segment.bytes", opt.segment_bytes, eb, sizeof eb) ||
        ulog_config_set(tc, "flush.policy", "always", eb, sizeof eb) ||
        ulog_config_set_int(tc, "max.message.bytes", MAX_MESSAGE_BYTES, eb, sizeof eb) ||
        (opt.encrypt && ulog_config_set_int(tc, "encryption.key.id", TORTURE_KEY_ID, eb,
                                            sizeof eb)))
        die("topic config: %s", eb);
    if ((rc = ulog_topic_create(log, TOPIC, opt.parts, tc)) != 0)
        die("ulog_topic_create: %s", ulog_strerror(rc));
    ulog_config_free(tc);
    ulog_close(log);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "worker") == 0)
        return worker_main(argc, argv);
    opt.seconds = 60;
    opt.parts = 3;
    opt.writers = 3;
    opt.readers = 2;
    opt.committers = 1;
    opt.segment_bytes = 32768;
    opt.min_kills = -1;
    opt.faults = true;
    opt.seed = (uint64_t)time(NULL);
    opt.encrypt = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--dir") == 0)
            snprintf(opt.base, sizeof opt.base, "%s", v);
        else if (strcmp(a, "--seconds") == 0)
            opt.seconds = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            opt.seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--min-kills") == 0)
            opt.min_kills = atoi(v);
        else if (strcmp(a, "--checker") == 0)
            snprintf(opt.checker, sizeof opt.checker, "%s", v);
        else if (strcmp(a, "--writers") == 0)
            opt.writers = atoi(v);
        else if (strcmp(a, "--readers") == 0)
            opt.readers = atoi(v);
        else if (strcmp(a, "--committers") == 0)
            opt.committers = atoi(v);
        else if (strcmp(a, "--parts") == 0)
            opt.parts = atoi(v);
        else if (strcmp(a, "--segment-bytes") == 0)
            opt.segment_bytes = atoi(v);
        else if (strcmp(a, "--faults") == 0)
            opt.faults = atoi(v) != 0;
        else if (strcmp(a, "--encrypt") == 0)
            opt.encrypt = atoi(v) != 0;
        else
            usage();
    }
    if (!opt.base[0] || opt.seconds < 10 || opt.parts < 1 || opt.parts > MAX_PARTS ||
        opt.writers < 1 || opt.writers > 32 || opt.readers < 0 || opt.committers < 0 ||
        opt.readers + opt.committers > 32)
        usage();
    if (opt.min_kills < 0)
        opt.min_kills = opt.seconds * 3;
    if (opt.encrypt < 0)
        opt.encrypt = (int)(opt.seed & 1);
    ssize_t n = readlink("/proc/self/exe", opt.self, sizeof opt.self - 1);
    if (n <= 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    opt.self[n] = 0;
    if (!opt.checker[0]) {
        snprintf(opt.checker, sizeof opt.checker, "%s", opt.self);
        char *sl = strrchr(opt.checker, '/');
        snprintf(sl + 1, sizeof opt.checker - (size_t)(sl + 1 - opt.checker), "check");
    }
    if (access(opt.checker, X_OK) != 0)
        die("checker %s: %s", opt.checker, strerror(errno));
    have_strace = system("strace -V >/dev/null 2>&1") == 0;
    if (!have_strace)
        die("strace is not installed (Debian package strace); the syscall sweep needs it");
    rng_state = opt.seed;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    setup_log();
    nslots = opt.writers + opt.readers + opt.committers;
    slots = calloc((size_t)nslots, sizeof *slots);
    for (int i = 0; i < nslots; i++) {
        slots[i].role = i < opt.writers ? R_WRITER
                        : i < opt.writers + opt.readers ? R_READER : R_COMMITTER;
        slots[i].idx = (uint32_t)(i < opt.writers ? i
                                  : i < opt.writers + opt.readers ? i - opt.writers
                                                                  : i - opt.writers - opt.readers);
    }
    printf("torture: %s, %d s, seed %llu: %d writers, %d readers, %d group committers, "
           "%d partitions, segment.bytes %d, flush.policy always%s%s\n", opt.base,
           opt.seconds, (unsigned long long)opt.seed, opt.writers, opt.readers, opt.committers,
           opt.parts, opt.segment_bytes, opt.encrypt ? ", values encrypted" : "",
           opt.faults ? ", EIO injected into some fdatasyncs" : "");
    fflush(stdout);

    int64_t t0 = mono_ns();
    /* The final check takes a while (it replays every line the workers
     * logged): it gets a sixth of the time, 10 to 45 s. */
    int64_t reserve = opt.seconds / 6 < 10 ? 10 : opt.seconds / 6 > 45 ? 45 : opt.seconds / 6;
    int64_t churn_end = t0 + (opt.seconds - reserve) * 1000000000LL;
    int rc = 0;
    /* The heads exist once the checker's probe has opened every partition. */
    if (run_checker("recover", "keep", next_inc++, 120) != 0)
        die("the first recover step failed");
    while (!stop_flag && mono_ns() < churn_end) {
        st.epochs++;
        heads_map();
        int64_t epoch_end = mono_ns() + rnd_range(5000, 12000) * 1000000LL;
        if (epoch_end > churn_end)
            epoch_end = churn_end;
        for (int i = 0; i < nslots; i++)
            spawn(&slots[i]);
        while (!stop_flag) {
            int64_t now = mono_ns();
            if (now >= epoch_end)
                break;
            while (reap(false)) {
            }
            bool hunting = false;
            for (int i = 0; i < nslots; i++) {
                slot *s = &slots[i];
                if (!s->running) {
                    if (now >= s->restart_at)
                        spawn(s);
                    continue;
                }
                if (s->killed || now < s->t_kill)
                    continue;
                if (s->plan == P_HOLDER) {
                    hunting = true;
                    hunt(s, now);
                } else {
                    kill_slot(s, D_RANDOM);
                }
            }
            if (hunting)
                sched_yield();
            else
                sleep_us(1000);
        }
        kill_all_torn();
        heads_unmap();
        /* Reboot: the recovery scan cuts. Keep: the checker's probe append
         * makes the write-mark repair cut. Defer: the tails stay for the
         * next epoch's writers to repair, and the first writers started
         * then die in that repair's cut (ftruncate, unlinkat). */
        uint64_t how = rnd() % 10;
        st.reboots += how < 4;
        st.defers += how >= 7;
        int crc = run_checker("recover", how < 4 ? "reboot" : how < 7 ? "keep" : "defer",
                              next_inc++, 120);
        if (crc == 3) {
            st.defer_torn++;
            for (int i = 0; i < nslots; i++)
                if (slots[i].role == R_WRITER)
                    slots[i].force_sys = "cut";
            crc = 0;
        }
        int64_t k = 0;
        for (int d = 0; d < D_COUNT; d++)
            k += st.deaths[d];
        printf("torture: %5.1f s: epoch %lld done, %lld kill points so far, recover step: %s\n",
               (double)(mono_ns() - t0) / 1e9, (long long)st.epochs, (long long)k,
               how < 4 ? "reboot" : how < 7 ? "probe" : "deferred");
        fflush(stdout);
        if (crc != 0) {
            fprintf(stderr, "torture: recover step after epoch %lld failed (%d)\n",
                    (long long)st.epochs, crc);
            rc = 1;
            break;
        }
    }
    double churn_s = (double)(mono_ns() - t0) / 1e9;

    int64_t kills = 0;
    for (int d = 0; d < D_COUNT; d++)
        kills += st.deaths[d];
    printf("\ntorture: %.1f s of churn, %lld epochs, %lld worker starts\n", churn_s,
           (long long)st.epochs, (long long)st.starts);
    printf("recover steps between epochs: %lld reboots (heads deleted: the recovery scan), "
           "%lld deferred (the writers repair), the rest the probe's repair\n",
           (long long)st.reboots, (long long)st.defers);
    printf("deferred with torn tails: %lld; writers then started to die in the repair's "
           "cut (first ftruncate or unlinkat): %lld, of which fired: %lld\n",
           (long long)st.defer_torn, (long long)st.forced, (long long)st.forced_fired);
    printf("kill points: %lld\n", (long long)kills);
    for (int d = 0; d < D_COUNT; d++)
        printf("  %-34s %6lld\n", death_name[d], (long long)st.deaths[d]);
    printf("strace sweep (injected SIGKILL at the K-th call; fired/started, K range that fired):\n");
    for (int r = 0; r < R_COUNT; r++) {
        printf("  %-10s", role_name[r]);
        for (int y = 0; y < nsys_of[r]; y++) {
            if (st.inj[r][y])
                printf(" %s %lld/%lld K%d-%d;", sys_of[r][y].name, (long long)st.inj[r][y],
                       (long long)st.inj_tries[r][y], st.kmin[r][y], st.kmax[r][y]);
            else
                printf(" %s 0/%lld;", sys_of[r][y].name, (long long)st.inj_tries[r][y]);
        }
        printf("\n");
    }
    printf("  (ftruncate and unlinkat come only in a cut: see the repair and fail-rule plans "
           "below; rename never: ulog and LMDB rename nothing)\n");
    printf("deaths that left a head's robust mutex owned by the dead worker (seen at reaping, "
           "before the next locker): wlock %lld, slock %lld\n", (long long)st.held_wlock,
           (long long)st.held_slock);
    printf("writer runs with EIO injected into an fdatasync: %lld; of them also killed at "
           "the fail rule's ftruncate: %lld planned, %lld fired\n", (long long)st.eio_runs,
           (long long)st.eio_cut, (long long)st.eio_cut_fired);
    printf("hunted writers killed with a big batch half written (torn tail for a live "
           "writer's repair): %lld\n", (long long)st.live_torn);
    printf("workers that exited: %lld; died of another signal or an unexplained SIGKILL: %lld; "
           "strace failures: %lld\n", (long long)st.exits, (long long)st.crashes,
           (long long)st.strace_fail);
    fflush(stdout);

    if (stop_flag) {
        fprintf(stderr, "torture: interrupted\n");
        return 130;
    }
    int64_t t1 = mono_ns();
    int frc = run_checker("final", "reboot", next_inc++, 600);
    double total_s = (double)(mono_ns() - t0) / 1e9;
    printf("torture: final check took %.1f s; total run %.1f s\n", (double)(mono_ns() - t1) / 1e9,
           total_s);
    if (frc != 0)
        rc = 1;
    if (kills < opt.min_kills) {
        printf("torture: FAIL: %lld kill points, fewer than the %d required\n", (long long)kills,
               opt.min_kills);
        rc = 1;
    }
    if (st.crashes) {
        printf("torture: FAIL: %lld workers crashed (signal other than the torture's SIGKILL)\n",
               (long long)st.crashes);
        rc = 1;
    }
    printf("torture: %s\n", rc ? "FAIL" : "PASS");
    return rc;
}
