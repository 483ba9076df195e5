/*
 * signup-fanout.c -- one event, three services, each in its own process and
 * at its own pace, none of them known to the producer.
 *
 * The idea (Kafka's fan-out through consumer groups): the signup service
 * appends one event per new user to the topic "signups" and is done; it
 * does not call the services that care about signups, nor wait for them.
 * Each of those services subscribes with a consumer group of its own, so
 * each reads every signup and keeps its own place (committed offsets) in
 * the log:
 *
 *   notifications    sends a welcome email: fast; commits with
 *                    ulog_commit_async() (after a crash it may resend a few
 *                    emails: that is the price of not waiting for the disk)
 *   billing          opens a trial account: fast; commits with ulog_commit(),
 *                    which returns once the offsets are on disk
 *   recommendations  builds a first profile: slow (3 ms per signup); commits
 *                    with ulog_commit()
 *
 * A slow service does not slow anyone down: the producer finishes while
 * recommendations is still far behind (ulog_group_describe() shows each
 * group's lag), and the fast services are done long before it catches up.
 * Adding a fourth service later takes a new group, not a change to the
 * signup service.
 *
 * The run: this process creates the topic and forks the three services
 * (each child opens the log itself, as separate programs would, and reports
 * to this process through a pipe when it is done), then appends the signups
 * itself. The program exits 0 only if each group saw every signup exactly
 * once, in order within each partition, and ends with lag 0, and if the
 * producer was done while recommendations still lagged; 1 otherwise, or if
 * anything fails or takes longer than 60 s.
 *
 * Usage: signup-fanout DIR    (a new, empty directory)
 * Build against an installed ulog:  cc signup-fanout.c $(pkg-config --cflags --libs ulog)
 */
#include <ulog.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC        "signups"
#define PARTITIONS   3
#define NSIGNUPS     100
#define BATCHES      5          /* the signups arrive in this many appends ... */
#define GAP_MS       10         /* ... this far apart */
#define COMMIT_EVERY 10
#define DEADLINE_S   60

enum { NOTIFICATIONS, BILLING, RECOMMENDATIONS, NSERVICES };

static const struct service {
    const char *group, *work;
    int         us_per_signup;  /* simulated work */
    int         async_commit;
} SERVICES[NSERVICES] = {
    [NOTIFICATIONS]   = { "notifications",   "sends a welcome email",     0, 1 },
    [BILLING]         = { "billing",         "opens a trial account",   300, 0 },
    [RECOMMENDATIONS] = { "recommendations", "builds a first profile", 3000, 0 },
};

static const char *g_dir;

/* ------------------------------------------------------------ helpers */

static int fail(ulog *log, int err, const char *who, const char *what)
{
    char detail[512];
    ulog_errmsg(log, detail, sizeof detail);    /* log NULL: why ulog_open() failed */
    fprintf(stderr, "signup-fanout: %s: %s failed: %s (%s)%s%s\n", who, what, ulog_errname(err),
            ulog_strerror(err), detail[0] ? ": " : "", detail);
    return 1;
}

/* CLOCK_MONOTONIC is one clock for every process of the machine. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Reads exactly len bytes from a pipe, giving up at `deadline` (now_ms()). */
static int read_exact(int fd, void *buf, size_t len, double deadline)
{
    char *p = buf;
    while (len > 0) {
        int left = (int)(deadline - now_ms());
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll(&pfd, 1, left > 0 ? left : 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------ a service */

/* What a service tells the parent when it is done. */
typedef struct report {
    int    unique;              /* distinct signups seen */
    int    duplicates;          /* signups seen more than once */
    int    out_of_order;        /* within a partition: an offset skipped or repeated, or
                                   a signup older than the one before it */
    int    commits;
    int    async_failed;        /* asynchronous commits that reported an error */
    double done_ms;             /* now_ms() when it had seen every signup */
} report;

static void on_commit(ulog_sub *sub, int err, void *arg)
{
    (void)sub;
    if (err)
        ((report *)arg)->async_failed++;
}

/* The signup number in a key such as "user-0042"; -1 if it has none. */
static int signup_number(const ulog_msg *m)
{
    char key[16];
    if (!m->key || m->key_len < 6 || m->key_len >= sizeof key)
        return -1;
    memcpy(key, m->key, m->key_len);
    key[m->key_len] = '\0';
    char *end;
    long n = strtol(key + 5, &end, 10);
    return strncmp(key, "user-", 5) == 0 && *end == '\0' && n >= 1 && n <= NSIGNUPS ? (int)n : -1;
}

static int service_main(const struct service *s, int out)
{
    ulog *log;
    int err = ulog_open(g_dir, NULL, &log);
    if (err)
        return fail(NULL, err, s->group, "ulog_open");

    /* A new group starts at the oldest record; one that has committed
     * before would resume where it left off. */
    ulog_sub *sub = NULL;
    ulog_config *cfg = ulog_config_new();
    char eb[256] = "";
    if (!cfg)
        err = ULOG_ENOMEM;
    else if ((err = ulog_config_set(cfg, "auto.offset.reset", "earliest", eb, sizeof eb)) != 0)
        fprintf(stderr, "signup-fanout: %s: %s\n", s->group, eb);
    else
        err = ulog_subscribe(log, TOPIC, s->group, cfg, &sub);
    ulog_config_free(cfg);
    if (err)
        fail(log, err, s->group, "subscribing");
    if (err || write(out, "r", 1) != 1) {   /* "ready" */
        ulog_sub_close(sub);
        ulog_close(log);
        return 1;
    }

    static unsigned char seen[NSIGNUPS + 1];
    int64_t last[PARTITIONS];               /* per partition: last offset, */
    int last_n[PARTITIONS];                 /* and last signup number seen */
    for (int p = 0; p < PARTITIONS; p++) {
        last[p] = -1;
        last_n[p] = 0;
    }
    report r;
    memset(&r, 0, sizeof r);                /* padding included: it goes down a pipe */
    while (r.unique < NSIGNUPS) {
        ulog_msg m;
        err = ulog_poll(sub, 1000, &m);
        if (err == ULOG_ETIMEDOUT)
            continue;
        if (err) {
            fail(log, err, s->group, "ulog_poll");
            break;
        }
        int n = signup_number(&m);
        if (n < 0 || m.partition < 0 || m.partition >= PARTITIONS) {
            fprintf(stderr, "signup-fanout: %s: unexpected record at partition %d offset %lld\n",
                    s->group, (int)m.partition, (long long)m.offset);
            err = 1;
            break;
        }
        /* Within a partition, records come one after the other in offset
         * order, which is the order they were appended in; across
         * partitions there is no order. */
        if ((last[m.partition] >= 0 && m.offset != last[m.partition] + 1) ||
            n <= last_n[m.partition])
            r.out_of_order++;
        last[m.partition] = m.offset;
        last_n[m.partition] = n;
        if (seen[n]++)
            r.duplicates++;
        else
            r.unique++;
        if (s->us_per_signup)
            sleep_us(s->us_per_signup);     /* the work */
        if (r.unique % COMMIT_EVERY == 0 || r.unique == NSIGNUPS) {
            err = s->async_commit ? ulog_commit_async(sub, on_commit, &r) : ulog_commit(sub);
            if (err) {
                fail(log, err, s->group, "commit");
                break;
            }
            r.commits++;
        }
    }
    r.done_ms = now_ms();
    ulog_sub_close(sub);                    /* waits for asynchronous commits */
    ulog_close(log);
    if (err)
        return 1;
    return write(out, &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1;
}

/* ------------------------------------------------------------ the signup service */

static ulog *g_log;

/* Appends NSIGNUPS signups in BATCHES calls, as users arrive: key = user
 * id (spread over the partitions by Kafka's murmur2), value = JSON. */
static int produce(double *in_append, double *slowest)
{
    static char key[NSIGNUPS][16], value[NSIGNUPS][96];
    static ulog_record rec[NSIGNUPS];
    for (int i = 0; i < NSIGNUPS; i++) {
        snprintf(key[i], sizeof key[i], "user-%04d", i + 1);
        snprintf(value[i], sizeof value[i], "{\"user\":\"user-%04d\",\"email\":"
                 "\"user-%04d@example.com\",\"plan\":\"%s\"}", i + 1, i + 1,
                 i % 4 ? "free" : "pro");
        rec[i] = (ulog_record){ .key = key[i], .key_len = strlen(key[i]), .value = value[i],
                                .value_len = strlen(value[i]), .timestamp = ULOG_TIMESTAMP_NOW,
                                .partition = ULOG_PARTITION_ANY };
    }
    *in_append = *slowest = 0;
    for (int b = 0; b < BATCHES; b++) {
        int from = b * NSIGNUPS / BATCHES, to = (b + 1) * NSIGNUPS / BATCHES;
        double t = now_ms();
        int err = ulog_append(g_log, TOPIC, &rec[from], (size_t)(to - from));
        if (err)
            return fail(g_log, err, "signups", "ulog_append");
        t = now_ms() - t;
        *in_append += t;
        if (t > *slowest)
            *slowest = t;
        if (b + 1 < BATCHES)
            sleep_us(GAP_MS * 1000L);
    }
    return 0;
}

/* A group's total committed offset and lag over the partitions
 * (ulog_group_describe); returns the lag, or -1 on failure. */
static long long group_lag(const char *group, long long *committed)
{
    ulog_group_desc *d;
    *committed = 0;
    int err = ulog_group_describe(g_log, group, &d);
    if (err == ULOG_ENOENT)
        return NSIGNUPS;                    /* no commit yet: everything to go */
    if (err)
        return fail(g_log, err, "signups", "ulog_group_describe"), -1;
    long long lag = 0;
    for (size_t i = 0; i < ulog_group_desc_count(d) && lag >= 0; i++) {
        ulog_group_lag g = ULOG_GROUP_LAG_INIT;
        if ((err = ulog_group_desc_get(d, i, &g)) != 0) {
            fail(g_log, err, "signups", "ulog_group_desc_get");
            lag = -1;
        } else {
            lag += g.lag;
            *committed += g.committed;
        }
    }
    ulog_group_desc_free(d);
    return lag;
}

typedef struct child {
    pid_t pid;
    int   fd;                   /* the read end of its pipe */
} child;

static int start_service(child *c, const struct service *s)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    c->pid = fork();
    if (c->pid == 0) {
        close(p[0]);
        alarm(DEADLINE_S);                  /* no child outlives the deadline */
        int rc = service_main(s, p[1]);
        fflush(NULL);
        _exit(rc);
    }
    close(p[1]);
    c->fd = p[0];
    return c->pid > 0 ? 0 : -1;
}

static int run(child *kids)
{
    double deadline = now_ms() + DEADLINE_S * 1000.0;
    report rep[NSERVICES];

    printf("\n== Three services subscribe, each in its own process with its own group\n");
    for (int i = 0; i < NSERVICES; i++)
        if (start_service(&kids[i], &SERVICES[i]) != 0) {
            perror("signup-fanout: starting a service");
            return 1;
        }
    for (int i = 0; i < NSERVICES; i++) {
        const struct service *s = &SERVICES[i];
        char ready;
        if (read_exact(kids[i].fd, &ready, 1, deadline) != 0) {
            fprintf(stderr, "signup-fanout: %s did not start\n", s->group);
            return 1;
        }
        printf("  %-16s %-23s %4d us per signup, %s every %d\n", s->group, s->work,
               s->us_per_signup, s->async_commit ? "ulog_commit_async" : "ulog_commit",
               COMMIT_EVERY);
    }

    printf("\n== The signup service appends %d signups in %d calls, %d ms apart\n", NSIGNUPS,
           BATCHES, GAP_MS);
    double in_append, slowest, t0 = now_ms();
    if (produce(&in_append, &slowest) != 0)
        return 1;
    printf("  done in %.0f ms, %.1f ms of it in ulog_append (slowest call %.1f ms)\n",
           now_ms() - t0, in_append, slowest);
    printf("  the groups at that moment (ulog_group_describe):\n");
    long long lag[NSERVICES], committed;
    for (int i = 0; i < NSERVICES; i++) {
        if ((lag[i] = group_lag(SERVICES[i].group, &committed)) < 0)
            return 1;
        printf("    %-16s committed %3lld, lag %3lld\n", SERVICES[i].group, committed, lag[i]);
    }
    /* Reliable, not luck: recommendations needs 3 ms per signup, so it is
     * still busy with the last batch (20 signups, 60 ms) when the last
     * append returns, however fast or slow the appends were. */
    if (lag[RECOMMENDATIONS] == 0) {
        fprintf(stderr, "signup-fanout: recommendations kept up with the producer: "
                        "this run shows nothing\n");
        return 1;
    }
    printf("  -> the producer did not wait for recommendations, %lld signups behind\n",
           lag[RECOMMENDATIONS]);

    printf("\n== Each service finishes at its own pace\n");
    for (int i = 0; i < NSERVICES; i++) {
        int st;
        if (read_exact(kids[i].fd, &rep[i], sizeof rep[i], deadline) != 0 ||
            waitpid(kids[i].pid, &st, 0) != kids[i].pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0) {
            fprintf(stderr, "signup-fanout: %s failed\n", SERVICES[i].group);
            return 1;
        }
        kids[i].pid = 0;
        printf("  %-16s had read every signup %4.0f ms after the first append\n",
               SERVICES[i].group, rep[i].done_ms - t0);
    }

    printf("\n== Check: every signup exactly once, in order per partition, lag 0\n");
    int bad = 0;
    for (int i = 0; i < NSERVICES; i++) {
        const report *r = &rep[i];
        long long end_lag = group_lag(SERVICES[i].group, &committed);
        printf("  %-16s %d of %d, %d duplicates, %d out of order, %d commits, lag %lld%s\n",
               SERVICES[i].group, r->unique, NSIGNUPS, r->duplicates, r->out_of_order,
               r->commits, end_lag, r->async_failed ? ", some asynchronous commits failed" : "");
        if (end_lag != 0 || r->unique != NSIGNUPS || r->duplicates || r->out_of_order ||
            r->async_failed)
            bad = 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: signup-fanout DIR\n");
        return 2;
    }
    g_dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ulog %s signup-fanout, log directory %s\n", ulog_version_string(), g_dir);

    int err = ulog_open(g_dir, NULL, &g_log);
    if (err)
        return fail(NULL, err, "signups", "ulog_open");
    if ((err = ulog_topic_create(g_log, TOPIC, PARTITIONS, NULL)) != 0) {
        if (err == ULOG_EEXIST)
            fprintf(stderr, "signup-fanout: %s already has a topic \"%s\"; pass a new "
                            "directory\n", g_dir, TOPIC);
        fail(g_log, err, "signups", "ulog_topic_create");
        ulog_close(g_log);
        return 1;
    }
    printf("created topic \"%s\" with %d partitions\n", TOPIC, PARTITIONS);

    child kids[NSERVICES];
    for (int i = 0; i < NSERVICES; i++)
        kids[i] = (child){ 0, -1 };
    int rc = run(kids);

    /* Whatever went wrong, no child is left behind. */
    for (int i = 0; i < NSERVICES; i++) {
        if (kids[i].pid > 0) {
            kill(kids[i].pid, SIGKILL);
            waitpid(kids[i].pid, NULL, 0);
        }
        if (kids[i].fd >= 0)
            close(kids[i].fd);
    }
    ulog_close(g_log);
    printf("\n%s\n", rc ? "FAILED" : "done: each group read every signup exactly once");
    return rc;
}
