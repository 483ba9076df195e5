/* testchild.h -- scaffolding for the test programs that fork children.
 *
 * Header only, like testutil.h (which it includes): every helper is static
 * inline. The children of a test open the log themselves (no handle crosses
 * a fork), run under child_watchdog() (a hang becomes a SIGALRM death the
 * parent reports, after gdb has printed the child's stacks), and report
 * failures through a pipe and their exit status; only the parent asserts.
 *
 * The state is this header's, one per test program: kids[], the children
 * forked and not yet reaped, and errp, the pipe children write failure
 * messages into. The suite's init calls children_init() and its fini
 * children_fini(), which also after a failed assertion kills and reaps every
 * child left over: no child outlives its test.
 *
 * Child side (no Criterion assertion may run there): child_fail(), CCHECK(),
 * write_all(), child_open(), child_sub().
 * Parent side: spawn() (fork_kid() for a child with rules of its own),
 * join_ok() or its parts wait_child() and expect_ok(), check_running(),
 * kill_running(), parent_read(), parent_write(), child_errors(), and the
 * pipes: make_pipe(), close_pair().
 */
#ifndef ULOG_TESTCHILD_H
#define ULOG_TESTCHILD_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* ---------------------------------------------------------------- state */

#define MAX_KIDS 32
static pid_t kids[MAX_KIDS];
/* Children write failure messages here (one write each, <= PIPE_BUF, so
 * messages never interleave); both ends non-blocking. */
static int errp[2] = { -1, -1 };

/* For the suite's init: makes errp. */
static inline void children_init(void)
{
    cr_assert_eq(pipe2(errp, O_CLOEXEC | O_NONBLOCK), 0, "pipe2: %s", strerror(errno));
    fcntl(errp[1], F_SETPIPE_SZ, 1 << 20);
}

/* SIGKILLs and reaps every child in kids[]. */
static inline void kill_all_kids(void)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
}

/* For the suite's fini: kill_all_kids(), then closes errp. */
static inline void children_fini(void)
{
    kill_all_kids();
    for (int i = 0; i < 2; i++)
        if (errp[i] >= 0) {
            close(errp[i]);
            errp[i] = -1;
        }
}

/* ---------------------------------------------------------------- child side */

/* Writes "[child PID] message\n" to errp in one write and exits 3. */
static inline void child_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void child_fail(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "[child %d] ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    buf[len++] = '\n';
    ssize_t w = write(errp[1], buf, len);
    (void)w;
    _exit(3);
}

/* The child's assertion: child_fail(printf arguments) unless cond. */
#define CCHECK(cond, ...)              \
    do {                               \
        if (!(cond))                   \
            child_fail(__VA_ARGS__);   \
    } while (0)

/* Writes all of buf to fd; a failure fails the child, naming `what`. */
static inline void write_all(int fd, const void *buf, size_t len, const char *what)
{
    CCHECK(write_full(fd, buf, len), "write (%s): %s", what, strerror(errno));
}

/* Opens the log at dir with config cfg (NULL: defaults; not freed). */
static inline ulog *child_open(const char *dir, const ulog_config *cfg)
{
    ulog *log = NULL;
    int rc = ulog_open(dir, cfg, &log);
    CCHECK(rc == 0, "ulog_open %s: %s", dir, ulog_errname(rc));
    return log;
}

/* A subscription to every partition of topic, in group (or NULL), with
 * auto.offset.reset `reset` ("earliest": from the earliest offset or the
 * group's commit). */
static inline ulog_sub *child_sub(ulog *log, const char *topic, const char *group,
                                  const char *reset)
{
    ulog_config *c = cfg_try("auto.offset.reset", reset, NULL);
    CCHECK(c, "config");
    ulog_sub *s = NULL;
    int rc = ulog_subscribe(log, topic, group, c, &s);
    ulog_config_free(c);
    CCHECK(rc == 0, "ulog_subscribe %s group %s reset %s: %s", topic,
           group ? group : "(none)", reset, ulog_errname(rc));
    return s;
}

/* ---------------------------------------------------------------- parent side */

/* fork() with the bookkeeping: in the parent the child is entered in kids[]
 * (a full table fails the test) and its pid returned; the child gets 0. */
static inline pid_t fork_kid(void)
{
    int slot = 0;
    while (slot < MAX_KIDS && kids[slot] > 0)
        slot++;
    cr_assert_lt(slot, MAX_KIDS, "too many children");
    fflush(NULL);
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid > 0)
        kids[slot] = pid;
    return pid;
}

/* Takes a reaped child out of kids[]. */
static inline void forget(pid_t pid)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (kids[i] == pid)
            kids[i] = 0;
}

/* Forks a child that runs fn(arg) and exits 0 when it returns. After
 * watchdog_s seconds the child dies by SIGALRM: a hang becomes a failure. */
static inline pid_t spawn(void (*fn)(void *), void *arg, unsigned watchdog_s)
{
    pid_t pid = fork_kid();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        child_watchdog(watchdog_s);
        fn(arg);
        _exit(0);
    }
    return pid;
}

/* Whatever the children have reported as failures so far. */
static inline const char *child_errors(void)
{
    static char buf[16384];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(errp[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0 || (n += (size_t)r) >= sizeof buf - 1)
            break;
    }
    buf[n] = '\0';
    return n ? buf : "(no message from the child)";
}

/* How a child ended, from its wait status, in words. */
static inline void status_text(char *out, size_t n, int st)
{
    if (WIFEXITED(st))
        snprintf(out, n, "exited with %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, n, "died of signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
                 WTERMSIG(st) == SIGALRM ? ": its watchdog fired, it hung" : "");
    else
        snprintf(out, n, "status 0x%x", st);
}

/* Fails the test unless the (reaped) child exited 0. */
static inline void expect_ok(pid_t pid, int st, const char *what)
{
    forget(pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    char s[160];
    status_text(s, sizeof s, st);
    cr_assert_fail("%s (pid %d) %s\n%s", what, (int)pid, s, child_errors());
}

/* Waits up to timeout_ms for the child to end and returns its status; on
 * timeout kills it and fails the test. */
static inline int wait_child(pid_t pid, int timeout_ms, const char *what)
{
    int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            forget(pid);
            return st;
        }
        cr_assert(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        if (mono_ns() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            forget(pid);
            cr_assert_fail("%s (pid %d) still running after %d ms\n%s", what, (int)pid,
                           timeout_ms, child_errors());
        }
        sleep_us(1000);
    }
}

/* Waits up to timeout_ms for the child; fails the test unless it exited 0. */
static inline void join_ok(pid_t pid, int timeout_ms, const char *what)
{
    expect_ok(pid, wait_child(pid, timeout_ms, what), what);
}

/* Fails the test if the child has ended already (it should be running). */
static inline void check_running(pid_t pid, const char *what)
{
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
        forget(pid);
        char s[160];
        status_text(s, sizeof s, st);
        cr_assert_fail("%s (pid %d) ended early: %s\n%s", what, (int)pid, s, child_errors());
    }
}

/* SIGKILLs a child that should still be running and reaps it. */
static inline void kill_running(pid_t pid, const char *what)
{
    check_running(pid, what);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    forget(pid);
}

static inline void make_pipe(int p[2])
{
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
}

static inline void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

/* Reads len bytes a child sends within timeout_ms, or fails the test with
 * what the children reported. */
static inline void parent_read(int fd, void *buf, size_t len, int timeout_ms, const char *what)
{
    cr_assert(read_within(fd, buf, len, timeout_ms), "waited %d ms in vain for %s\n%s",
              timeout_ms, what, child_errors());
}

/* Writes all of buf to a child, or fails the test with what the children
 * reported. */
static inline void parent_write(int fd, const void *buf, size_t len, const char *what)
{
    cr_assert(write_full(fd, buf, len), "write (%s): %s\n%s", what, strerror(errno),
              child_errors());
}

#endif
