/*
 * tail.c -- follow a topic like `tail -f`, from an event loop.
 *
 * The idea: a reader of a log needs no broker and no callback from the
 * writer. It starts wherever it likes (here: the last N records of each
 * partition) and then waits for new records; the writers, in any process,
 * never know it is there. ulog_sub_fd() gives the subscription a file
 * descriptor that becomes readable when records may be waiting, so a
 * program whose main loop is poll(2), epoll or libuv can follow a topic
 * next to its sockets, pipes and timers instead of blocking a thread in
 * ulog_poll(). The loop is:
 *
 *     for (;;) {
 *         while (ulog_poll(sub, 0, &msg) == 0)    take every record waiting,
 *             print(&msg);                        without blocking, until
 *                                                 ULOG_ETIMEDOUT;
 *         poll(fds, nfds, -1);                    then sleep on the fds
 *     }
 *
 * The descriptor may wake the loop when nothing is new (it says "may be
 * waiting"): then the inner loop simply finds nothing. Here the other
 * descriptor in the poll set is a pipe that the SIGINT handler writes to,
 * so Ctrl-C ends the loop cleanly.
 *
 * Usage:
 *   tail DIR                   a demo in a new, empty DIR: writes a few lines
 *                              of history to the topic "access-log", starts
 *                              a writer process that appends more, a little
 *                              apart, and follows them from the last 2
 *                              lines of history; checks it got exactly the
 *                              expected lines, in order, within 30 s
 *   tail DIR TOPIC [-n N]      follows TOPIC of an existing log until Ctrl-C,
 *                              starting at the last N records (default 10)
 *                              of each partition
 * Build against an installed ulog:  cc tail.c $(pkg-config --cflags --libs ulog)
 */
#include <ulog.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEMO_TOPIC  "access-log"
#define DEMO_LAST   2           /* the demo starts at the last 2 lines of history */
#define DEMO_GAP_MS 30          /* between the writer's appends */
#define DEMO_WAIT_S 30

static const char *const HISTORY[] = {
    "GET /             200   4 ms",
    "GET /style.css    200   1 ms",
    "POST /login       302  18 ms",
    "GET /account      200   9 ms",
    "GET /favicon.ico  404   1 ms",
};
static const char *const LIVE[] = {
    "GET /orders       200  12 ms",
    "POST /orders      201  35 ms",
    "GET /orders/17    200   7 ms",
    "DELETE /orders/17 204  11 ms",
    "GET /logout       302   2 ms",
    "GET /             200   3 ms",
};
#define NHISTORY (int)(sizeof HISTORY / sizeof HISTORY[0])
#define NLIVE    (int)(sizeof LIVE / sizeof LIVE[0])

static ulog *g_log;

static int fail(ulog *log, int err, const char *what)
{
    char detail[512];
    ulog_errmsg(log, detail, sizeof detail);    /* log NULL: why ulog_open() failed */
    fprintf(stderr, "tail: %s failed: %s (%s)%s%s\n", what, ulog_errname(err),
            ulog_strerror(err), detail[0] ? ": " : "", detail);
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ Ctrl-C */

/* The handler only writes a byte to a pipe; the loop sees the pipe turn
 * readable in poll(2), like any other event. */
static int g_sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t r = write(g_sig_pipe[1], "x", 1);   /* non-blocking: never hangs */
    (void)r;
    errno = saved;
}

static int catch_signals(void)
{
    if (pipe(g_sig_pipe) != 0 || fcntl(g_sig_pipe[1], F_SETFL, O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ following */

/* Prints bytes, escaping what is not printable ASCII. */
static void put_bytes(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] >= 0x20 && b[i] < 0x7f)
            putchar(b[i]);
        else
            printf("\\x%02x", b[i]);
}

static void print_record(const ulog_msg *m)
{
    printf("p%d@%-4lld ", (int)m->partition, (long long)m->offset);
    if (m->key) {
        putchar('[');
        put_bytes(m->key, m->key_len);
        printf("] ");
    }
    if (m->value)
        put_bytes(m->value, m->value_len);
    else
        printf("(null)");
    putchar('\n');
}

/* Moves every partition to its last n records (all it has if fewer). */
static int seek_last(ulog_sub *sub, const char *topic, int32_t partitions, long long n)
{
    for (int32_t p = 0; p < partitions; p++) {
        int64_t low, high;
        int err = ulog_watermarks(g_log, topic, p, &low, &high);
        if (err)
            return fail(g_log, err, "ulog_watermarks");
        int64_t from = high - low > n ? high - n : low;
        if ((err = ulog_seek(sub, p, from)) != 0)
            return fail(g_log, err, "ulog_seek");
    }
    return 0;
}

/* The event loop. Prints records until Ctrl-C or, when `expect` is not
 * NULL, until it has seen the nexpect lines in it (in that order), failing
 * if they do not all come within DEMO_WAIT_S. */
static int follow(ulog_sub *sub, const char *const *expect, int nexpect)
{
    int fd = ulog_sub_fd(sub);
    if (fd < 0)
        return fail(g_log, fd, "ulog_sub_fd");
    double deadline = now_ms() + DEMO_WAIT_S * 1000.0;
    int seen = 0, wakeups = 0;
    for (;;) {
        /* Everything waiting now, without blocking. */
        ulog_msg m;
        int err;
        while ((err = ulog_poll(sub, 0, &m)) == 0) {
            print_record(&m);
            if (expect && (seen == nexpect || !m.value || m.value_len != strlen(expect[seen]) ||
                           memcmp(m.value, expect[seen], m.value_len) != 0)) {
                fprintf(stderr, "tail: expected \"%s\"\n", seen < nexpect ? expect[seen] : "");
                return 1;
            }
            seen++;
        }
        if (err != ULOG_ETIMEDOUT)
            return fail(g_log, err, "ulog_poll");
        if (expect && seen == nexpect) {
            printf("(%d lines, %d wake-ups from poll(2))\n", seen, wakeups);
            return 0;
        }

        /* Then sleep until the log or the signal pipe has something. */
        struct pollfd fds[2] = {
            { .fd = fd, .events = POLLIN },
            { .fd = g_sig_pipe[0], .events = POLLIN },
        };
        int timeout = -1;
        if (expect) {
            timeout = (int)(deadline - now_ms());
            if (timeout < 0)
                timeout = 0;
        }
        int rc = poll(fds, 2, timeout);
        if (rc < 0 && errno == EINTR)
            continue;                       /* the handler ran: the pipe says so */
        if (rc < 0) {
            perror("tail: poll");
            return 1;
        }
        if (rc == 0) {
            fprintf(stderr, "tail: only %d of %d lines after %d s\n", seen, nexpect,
                    DEMO_WAIT_S);
            return 1;
        }
        if (fds[1].revents) {
            printf("(interrupted)\n");
            return expect ? 1 : 0;
        }
        wakeups++;
    }
}

/* ------------------------------------------------------------ the demo */

static int append_line(ulog *log, const char *line)
{
    ulog_record r = { .value = line, .value_len = strlen(line),
                      .timestamp = ULOG_TIMESTAMP_NOW, .partition = ULOG_PARTITION_ANY };
    int err = ulog_append(log, DEMO_TOPIC, &r, 1);
    return err ? fail(log, err, "ulog_append") : 0;
}

/* The writer process: its own handle (a child must not use its parent's),
 * one line every DEMO_GAP_MS. */
static int writer_main(const char *dir)
{
    ulog *log;
    int err = ulog_open(dir, NULL, &log);
    if (err)
        return fail(NULL, err, "writer: ulog_open");
    int rc = 0;
    for (int i = 0; i < NLIVE && rc == 0; i++) {
        struct timespec gap = { 0, DEMO_GAP_MS * 1000000L };
        nanosleep(&gap, NULL);
        rc = append_line(log, LIVE[i]);
    }
    ulog_close(log);
    return rc;
}

static int demo(const char *dir, ulog_sub **sub)
{
    int err = ulog_topic_create(g_log, DEMO_TOPIC, 1, NULL);
    if (err == ULOG_EEXIST)
        fprintf(stderr, "tail: %s already has a topic \"%s\"; pass a new directory, or "
                        "a topic to follow\n", dir, DEMO_TOPIC);
    if (err)
        return fail(g_log, err, "ulog_topic_create");
    for (int i = 0; i < NHISTORY; i++)
        if (append_line(g_log, HISTORY[i]) != 0)
            return 1;
    printf("wrote %d lines of history to \"%s\"; now following it from the last %d\n"
           "while a writer process appends %d more, %d ms apart (like tail -n %d -f):\n",
           NHISTORY, DEMO_TOPIC, DEMO_LAST, NLIVE, DEMO_GAP_MS, DEMO_LAST);

    if ((err = ulog_subscribe(g_log, DEMO_TOPIC, NULL, NULL, sub)) != 0)
        return fail(g_log, err, "ulog_subscribe");
    if (seek_last(*sub, DEMO_TOPIC, 1, DEMO_LAST) != 0)
        return 1;

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("tail: fork");
        return 1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        alarm(DEMO_WAIT_S * 2);             /* never outlive the demo */
        int rc = writer_main(dir);
        fflush(NULL);
        _exit(rc);
    }

    /* What `tail` must print: the last lines of history, then the new ones. */
    const char *expect[DEMO_LAST + NLIVE];
    for (int i = 0; i < DEMO_LAST; i++)
        expect[i] = HISTORY[NHISTORY - DEMO_LAST + i];
    for (int i = 0; i < NLIVE; i++)
        expect[DEMO_LAST + i] = LIVE[i];
    int rc = follow(*sub, expect, DEMO_LAST + NLIVE);

    int st;
    if (rc != 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "tail: the writer process failed\n");
        rc = 1;
    }
    if (rc == 0)
        printf("done: every line arrived, in order\n");
    return rc;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    long long n = 10;
    if (argc == 5 && strcmp(argv[3], "-n") == 0) {
        char *end;
        n = strtoll(argv[4], &end, 10);
        if (argv[4][0] == '\0' || *end != '\0' || n < 0)
            argc = 0;                       /* usage */
    }
    if (argc != 2 && argc != 3 && argc != 5) {
        fprintf(stderr, "usage: tail DIR [TOPIC [-n N]]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);       /* each line as soon as it comes */
    if (catch_signals() != 0) {
        perror("tail: signal pipe");
        return 1;
    }
    int err = ulog_open(argv[1], NULL, &g_log);
    if (err)
        return fail(NULL, err, "ulog_open");

    int rc;
    ulog_sub *sub = NULL;
    if (argc == 2) {
        printf("ulog %s tail, log directory %s\n", ulog_version_string(), argv[1]);
        rc = demo(argv[1], &sub);
    } else {
        const char *topic = argv[2];
        ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
        if ((err = ulog_topic_describe(g_log, topic, &info, NULL)) != 0)
            rc = fail(g_log, err, "ulog_topic_describe");
        else if ((err = ulog_subscribe(g_log, topic, NULL, NULL, &sub)) != 0)
            rc = fail(g_log, err, "ulog_subscribe");
        else if ((rc = seek_last(sub, topic, info.partitions, n)) == 0)
            rc = follow(sub, NULL, 0);
    }
    ulog_sub_close(sub);
    ulog_close(g_log);
    close(g_sig_pipe[0]);
    close(g_sig_pipe[1]);
    return rc;
}
