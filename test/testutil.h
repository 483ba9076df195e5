/* testutil.h -- helpers shared by the test programs.
 *
 * Header only: every test/test_*.c is compiled and linked alone, so each
 * helper here is static inline (an unused one costs nothing and draws no
 * -Wunused-function). The helpers that check something fail the calling test
 * through Criterion's cr_assert; cfg_try() is the one meant for a forked
 * child, where no Criterion assertion may run.
 */
#ifndef ULOG_TESTUTIL_H
#define ULOG_TESTUTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---------------------------------------------------------------- scratch */

/* Makes a fresh directory $TMPDIR/ulog-test-<name>-XXXXXX (/tmp when TMPDIR
 * is unset or empty) and leaves its path in dir. */
static inline void make_tmpdir(char *dir, size_t size, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    int len = snprintf(dir, size, "%s/ulog-test-%s-XXXXXX", tmp, name);
    cr_assert(len > 0 && (size_t)len < size, "scratch path too long under %s", tmp);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static inline int rm_rf_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

/* Removes path and everything below it, without following links. Returns 0
 * when path is gone afterwards (as `rm -rf` would), -1 when it is not. */
static inline int rm_rf(const char *path)
{
    struct stat st;
    nftw(path, rm_rf_one, 16, FTW_DEPTH | FTW_PHYS);
    return lstat(path, &st) == 0 ? -1 : 0;
}

/* Declares Criterion suite `suite` in which every test runs with a fresh
 * scratch directory, its path in `dir` (a char array): made by
 * make_tmpdir(dir, sizeof dir, "<suite>") before the test, removed with all
 * it holds after it. */
#define SCRATCH_SUITE(suite, dir)                                                    \
    static void suite##_scratch_init(void)                                           \
    {                                                                                \
        make_tmpdir(dir, sizeof dir, #suite);                                        \
    }                                                                                \
    static void suite##_scratch_fini(void)                                           \
    {                                                                                \
        if (dir[0])                                                                  \
            rm_rf(dir);                                                              \
    }                                                                                \
    TestSuite(suite, .init = suite##_scratch_init, .fini = suite##_scratch_fini)

/* ---------------------------------------------------------------- configs */

/* Sets the NULL-terminated name/value pairs on c. With must, a refused pair
 * fails the test (with ulog's message); without, it returns the error. */
static inline int cfg_set_pairs(ulog_config *c, bool must, const char *name, va_list ap)
{
    for (const char *n = name; n; n = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        char err[256] = "";
        int rc = ulog_config_set(c, n, v, err, sizeof err);
        if (must)
            cr_assert_eq(rc, 0, "%s=%s: %s", n, v, err);
        else if (rc)
            return rc;
    }
    return 0;
}

/* A config from name/value pairs, NULL-terminated; any failure (allocation
 * or a refused pair) fails the test. */
static inline ulog_config *cfg_of(const char *name, ...)
{
    ulog_config *c = ulog_config_new();
    cr_assert_not_null(c);
    va_list ap;
    va_start(ap, name);
    cfg_set_pairs(c, true, name, ap);
    va_end(ap);
    return c;
}

/* The same without assertions, for a forked child: NULL when the config
 * cannot be allocated or a pair is refused. */
static inline ulog_config *cfg_try(const char *name, ...)
{
    ulog_config *c = ulog_config_new();
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, name);
    int rc = cfg_set_pairs(c, false, name, ap);
    va_end(ap);
    if (rc) {
        ulog_config_free(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- a log */

/* Opens the log at dir with log config c (NULL: defaults; freed here). */
static inline ulog *open_at(const char *dir, ulog_config *c)
{
    ulog *log = NULL;
    int rc = ulog_open(dir, c, &log);
    ulog_config_free(c);
    cr_assert_eq(rc, 0, "ulog_open %s: %s", dir, ulog_errname(rc));
    cr_assert_not_null(log);
    return log;
}

/* Creates topic `name` with topic config c (NULL: defaults; freed here). */
static inline void create_topic(ulog *log, const char *name, int32_t parts, ulog_config *c)
{
    int rc = ulog_topic_create(log, name, parts, c);
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "ulog_topic_create %s: %s (%s)", name, ulog_errname(rc), msg);
    ulog_config_free(c);
}

/* open_at() then create_topic(): a log at dir holding a new topic. */
static inline ulog *open_with_topic(const char *dir, ulog_config *log_cfg, const char *topic,
                                    int32_t parts, ulog_config *topic_cfg)
{
    ulog *log = open_at(dir, log_cfg);
    create_topic(log, topic, parts, topic_cfg);
    return log;
}

/* A subscription to every partition of topic, from the earliest offset. */
static inline ulog_sub *sub_earliest(ulog *log, const char *topic)
{
    ulog_config *c = cfg_of("auto.offset.reset", "earliest", NULL);
    ulog_sub *s = NULL;
    int rc = ulog_subscribe(log, topic, NULL, c, &s);
    ulog_config_free(c);
    cr_assert_eq(rc, 0, "ulog_subscribe %s: %s", topic, ulog_errname(rc));
    cr_assert_not_null(s);
    return s;
}

static inline void watermarks(ulog *log, const char *topic, int32_t p, int64_t *lo, int64_t *hi)
{
    int rc = ulog_watermarks(log, topic, p, lo, hi);
    cr_assert_eq(rc, 0, "ulog_watermarks %s/%d: %s", topic, (int)p, ulog_errname(rc));
}

/* Checks that ulog_topic_describe gives topic's setting `name` as want. */
static inline void expect_setting(ulog *log, const char *topic, const char *name,
                                  const char *want)
{
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    ulog_config *c = NULL;
    cr_assert_eq(ulog_topic_describe(log, topic, &info, &c), 0);
    char buf[32] = "";
    cr_assert_eq(ulog_config_get(c, name, buf, sizeof buf), 0, "%s not in the description", name);
    cr_expect_str_eq(buf, want, "%s", name);
    ulog_config_free(c);
}

/* ---------------------------------------------------------------- on disk */

/* <dir>/topics/<topic>/<part>: a partition's directory. */
static inline void part_dir(char *out, size_t n, const char *dir, const char *topic, int32_t part)
{
    snprintf(out, n, "%s/topics/%s/%d", dir, topic, (int)part);
}

/* A partition's segment file with base offset `base`. */
static inline void seg_path(char *out, size_t n, const char *dir, const char *topic,
                            int32_t part, int64_t base)
{
    snprintf(out, n, "%s/topics/%s/%d/%020lld.log", dir, topic, (int)part, (long long)base);
}

/* Where the batches of a segment file end: its size, unless its writer
 * sized it ahead (zeros follow the last batch). */
static inline int64_t seg_data_bytes(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    int64_t pos = 0;
    uint8_t hdr[12];
    size_t frame;
    while (fread(hdr, 1, sizeof hdr, f) == sizeof hdr &&
           ulog__batch_frame_size(hdr, sizeof hdr, &frame) == 0) {
        pos += (int64_t)frame;
        cr_assert_eq(fseek(f, pos, SEEK_SET), 0);
    }
    fclose(f);
    return pos;
}

/* Whether a directory entry is a segment file: 20 digits and ".log". */
static inline bool is_segment_name(const char *name)
{
    return strlen(name) == 24 && strcmp(name + 20, ".log") == 0;
}

/* Deletes the `head` file of partitions 0..parts-1 of topic, which makes the
 * next open run the recovery scan, as after a reboot (the head is trusted
 * only for the boot id it was written in). With missing_ok a head that is
 * not there is fine; otherwise it fails the test. */
static inline void delete_heads(const char *dir, const char *topic, int32_t parts,
                                bool missing_ok)
{
    for (int32_t p = 0; p < parts; p++) {
        char path[4600];
        snprintf(path, sizeof path, "%s/topics/%s/%d/head", dir, topic, (int)p);
        cr_assert(unlink(path) == 0 || (missing_ok && errno == ENOENT), "unlink %s: %s", path,
                  strerror(errno));
    }
}

/* Maps the `head` file of a partition: struct ulog__head (lib/internal.h),
 * the state every process shares. For watching it from a test, or for
 * arranging by hand the state a process killed at some point leaves (do
 * that while no process uses the partition). A plain shared mapping: it
 * holds none of the library's locks on the file. The file must exist (the
 * partition was opened once). Unmap with head_unmap(). */
static inline ulog__head *head_map_at(const char *dir, const char *topic, int32_t part)
{
    char path[4600];
    part_dir(path, sizeof path, dir, topic, part);
    strncat(path, "/head", sizeof path - strlen(path) - 1);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(st.st_size, ULOG__HEAD_SIZE, "%s: %lld bytes", path, (long long)st.st_size);
    void *a = mmap(NULL, ULOG__HEAD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    cr_assert_neq(a, MAP_FAILED, "mmap %s: %s", path, strerror(e));
    return a;
}

static inline void head_unmap(ulog__head *h)
{
    if (h)
        munmap(h, ULOG__HEAD_SIZE);
}

/* ---------------------------------------------------------------- misc */

/* splitmix64's finaliser: deterministic, well-mixed test data. */
/* Copies a file, and a directory tree (regular files only). */
static inline void copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY);
    cr_assert_geq(in, 0, "%s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    cr_assert_geq(out, 0, "%s: %s", dst, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    cr_assert_eq(n, 0);
    close(in);
    close(out);
}

static inline void copy_tree(const char *src, const char *dst)
{
    cr_assert_eq(mkdir(dst, 0750), 0, "mkdir %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char s[600], t[600];
        snprintf(s, sizeof s, "%s/%s", src, de->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, de->d_name);
        struct stat st;
        cr_assert_eq(lstat(s, &st), 0);
        if (S_ISDIR(st.st_mode))
            copy_tree(s, t);
        else if (S_ISREG(st.st_mode))
            copy_file(s, t);
    }
    closedir(d);
}

/* ulog_append that fails the test with the handle's message. */
static inline void append_ok(ulog *log, const char *topic, ulog_record *r, size_t n)
{
    int rc = ulog_append(log, topic, r, n);
    if (rc) {
        char msg[512];
        ulog_errmsg(log, msg, sizeof msg);
        cr_assert_fail("ulog_append(%s, %zu records): %s (%s)", topic, n, ulog_errname(rc), msg);
    }
}

static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_us(int64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline void sleep_ms(int64_t ms)
{
    sleep_us(ms * 1000);
}

/* Wall-clock time in ms since the epoch, as record timestamps count it. */
static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes within timeout_ms in all. False on EOF, error or
 * timeout. For both sides. */
static inline bool read_within(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
    while (len > 0) {
        int64_t left = (end - mono_ns()) / 1000000;
        if (left < 0)
            return false;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        ssize_t r = read(fd, p, len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

/* Writes all len bytes, again after EINTR. False on error (errno says
 * which) or a write of nothing. For both sides. */
static inline bool write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* ---------------------------------------------------------------- fork */

/* Whether every other thread of this process sleeps in a system call that
 * is never made holding an allocator lock: waiting for an event, a child,
 * a futex or a timer. Used only by the forking parent. */
static inline bool others_asleep(void)
{
    static const long idle[] = { 0 /* read */, 7 /* poll */, 23 /* select */,
                                 35 /* nanosleep */, 61 /* wait4 */, 202 /* futex */,
                                 230 /* clock_nanosleep */, 232 /* epoll_wait */,
                                 247 /* waitid */, 270 /* pselect6 */, 271 /* ppoll */,
                                 281 /* epoll_pwait */, 441 /* epoll_pwait2 */ };
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return true;        /* nothing to go by */
    pid_t me = gettid();
    bool asleep = true;
    struct dirent *de;
    while (asleep && (de = readdir(d)) != NULL) {
        long tid = strtol(de->d_name, NULL, 10);
        if (tid <= 0 || tid == me)
            continue;
        char path[64], buf[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;       /* the thread ended */
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        char *end = buf;
        long nr = n > 0 ? strtol(buf, &end, 10) : -1;
        asleep = false;     /* "running", or blocked outside a system call */
        for (size_t i = 0; n > 0 && end != buf && i < sizeof idle / sizeof idle[0]; i++)
            asleep |= nr == idle[i];
    }
    closedir(d);
    return asleep;
}

/*
 * fork() for the tests. fork() copies only the calling thread, and a lock
 * another thread held at that moment stays held in the child for good.
 * glibc's malloc guards its own, but AddressSanitizer's allocator before
 * LLVM 18 (Debian 12's) does not: a child forked while another thread of
 * the parent was inside malloc hangs at its first allocation from the same
 * size class. The other threads here are Criterion's messaging thread
 * (busy for a moment after every assertion) and the flushers of the logs
 * the parent has open. So wait, a second at most, until all of them sleep
 * in a system call, and then fork.
 */
static inline pid_t quiet_fork(void)
{
    for (int i = 0; i < 2000 && !others_asleep(); i++)
        sleep_us(500);
    return fork();
}

/* ---------------------------------------------------------------- watchdog */

/* SIGALRM handler of child_watchdog(): before the child dies, gdb prints
 * every thread's stack, so that a hang seen once in CI says where it was.
 * Only async-signal-safe calls (fork, execvp, waitpid, write). */
static inline void watchdog_fire(int sig)
{
    (void)sig;
    char pid[24], *q = pid + sizeof pid;
    *--q = '\0';
    for (unsigned long v = (unsigned long)getpid(); v || q == pid + sizeof pid - 1; v /= 10)
        *--q = (char)('0' + v % 10);
    static const char msg[] = "watchdog: a child hung; its threads (if gdb is here):\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing to do: the stacks are a courtesy */
    }
    pid_t g = fork();
    if (g == 0) {
        dup2(2, 1);
        char *argv[] = { "gdb", "-nx", "-batch", "-p", q, "-ex", "thread apply all bt",
                         NULL };
        execvp("gdb", argv);
        _exit(127);
    }
    if (g > 0)
        while (waitpid(g, NULL, 0) < 0 && errno == EINTR)
            ;
    signal(SIGALRM, SIG_DFL);
    raise(SIGALRM);     /* the parent still sees a death by SIGALRM */
}

/* For a forked child, instead of alarm(seconds): after that long it dies by
 * SIGALRM as with alarm(), having printed its threads' stacks. 0 disarms. */
static inline void child_watchdog(unsigned seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_fire;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

#endif
