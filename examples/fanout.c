/*
 * fanout.c -- one producer, three independent consumer groups, each in its
 * own process, all sharing one log directory.
 *
 * The story: a shop appends its order events to a topic "orders". Three
 * services read them, each at its own pace, each remembering its place with
 * a consumer group:
 *
 *   notifications    sends a confirmation per order: fast; commits with
 *                    ulog_commit_async() (a lost commit only means a few
 *                    confirmations are looked at again after a restart)
 *   billing          charges each order: fast; commits with ulog_commit(),
 *                    which returns once the offsets are on disk
 *   recommendations  updates a model per order: deliberately slow (2 ms per
 *                    order); commits with ulog_commit()
 *
 * What it shows: the producer never waits for a consumer, and the slow
 * group holds back nobody: the producer finishes and the two fast groups
 * have read everything while recommendations still lags far behind
 * (ulog_group_describe() shows each group's committed offsets and lag);
 * then recommendations catches up on its own.
 *
 * The program (the parent process) creates the topic, starts the three
 * consumers and then the producer with fork(); every child opens the log
 * directory itself, as separate programs would. Each consumer reads until
 * it has seen all NORDERS orders and reports to the parent through a pipe
 * how many distinct orders it saw and how many twice. The program exits 0
 * when every group saw every order exactly once and ends with lag 0, and 1
 * otherwise (or when any call fails, or a process does not finish within
 * 60 s).
 *
 * Build against an installed ulog:  cc fanout.c $(pkg-config --cflags --libs ulog)
 * Run:                              ./fanout [DIR]
 * Without DIR it works in a new temporary directory and removes it.
 */
#include <ulog.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC       "orders"
#define PARTITIONS  3
#define NORDERS     1000
#define BATCHES     20          /* the producer appends NORDERS in this many calls */
#define BATCH_GAP_MS 10         /* ... this far apart, as orders would trickle in */
#define COMMIT_EVERY 50
#define DEADLINE_S  60

enum { NOTIFICATIONS, BILLING, RECOMMENDATIONS, NGROUPS };

static const struct consumer {
    const char *group;
    int         us_per_order;   /* simulated work per order */
    int         async_commit;
} CONSUMERS[NGROUPS] = {
    [NOTIFICATIONS]   = { "notifications",   0,    1 },
    [BILLING]         = { "billing",         20,   0 },
    [RECOMMENDATIONS] = { "recommendations", 2000, 0 },
};

static const char *g_dir;

/* ------------------------------------------------------------ helpers */

static void fail(ulog *log, int err, const char *who, const char *what)
{
    char msg[512] = "";
    if (log)
        ulog_errmsg(log, msg, sizeof msg);
    fprintf(stderr, "fanout: %s: %s failed: %s (%s)%s%s\n", who, what, ulog_errname(err),
            ulog_strerror(err), msg[0] ? ": " : "", msg);
}

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

static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes, waiting at most until `deadline` (now_ms()). */
static int read_full(int fd, void *buf, size_t len, double deadline)
{
    char *p = buf;
    while (len > 0) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* rm -rf for the temporary directory (plain POSIX, no nftw). */
static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return -1;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

/* ------------------------------------------------------------ the producer */

/* Appends NORDERS order events, key = customer id (all orders of a customer
 * land in one partition), value = a small JSON document. Reports the time
 * it took and the time spent inside ulog_append through `out`. */
static int producer_main(int out)
{
    ulog *log;
    int err = ulog_open(g_dir, NULL, &log);
    if (err) {
        fail(NULL, err, "producer", "ulog_open");
        return 1;
    }
    static char keys[NORDERS][16], json[NORDERS][96];
    static ulog_record rec[NORDERS];
    for (int i = 0; i < NORDERS; i++) {
        int cust = 1000 + (i * 7919) % 250;
        int cents = 499 + (i * 104729) % 9000;
        snprintf(keys[i], sizeof keys[i], "cust-%d", cust);
        snprintf(json[i], sizeof json[i], "{\"order_id\":%d,\"customer\":\"cust-%d\",\"total\":%d.%02d}",
                 i + 1, cust, cents / 100, cents % 100);
        rec[i] = (ulog_record){ .key = keys[i], .key_len = strlen(keys[i]), .value = json[i],
                                .value_len = strlen(json[i]),
                                .timestamp = ULOG_TIMESTAMP_NOW,
                                .partition = ULOG_PARTITION_ANY };
    }
    double t0 = now_ms(), in_append = 0;
    for (int b = 0; b < BATCHES; b++) {
        int from = b * NORDERS / BATCHES, to = (b + 1) * NORDERS / BATCHES;
        double t = now_ms();
        if ((err = ulog_append(log, TOPIC, &rec[from], (size_t)(to - from))) != 0) {
            fail(log, err, "producer", "ulog_append");
            ulog_close(log);
            return 1;
        }
        in_append += now_ms() - t;
        if (b + 1 < BATCHES)
            sleep_us(BATCH_GAP_MS * 1000L);
    }
    double times[2] = { now_ms() - t0, in_append };
    ulog_close(log);
    return write_full(out, times, sizeof times) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ a consumer */

typedef struct report {
    int    unique;              /* distinct orders seen */
    int    duplicates;          /* orders seen more than once */
    int    commits;
    int    async_failed;        /* asynchronous commits that reported an error */
    double ms;                  /* from subscribing to the last order */
} report;

static void on_commit(ulog_sub *sub, int err, void *arg)
{
    (void)sub;
    if (err)
        ((report *)arg)->async_failed++;
}

/* The order id in a value such as {"order_id":17,...}; -1 if none. */
static int order_id(const void *value, size_t len)
{
    char buf[128];
    if (!value || len >= sizeof buf)
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';
    const char *p = strstr(buf, "\"order_id\":");
    return p ? atoi(p + strlen("\"order_id\":")) : -1;
}

static int consumer_main(const struct consumer *c, int out)
{
    ulog *log;
    int err = ulog_open(g_dir, NULL, &log);
    if (err) {
        fail(NULL, err, c->group, "ulog_open");
        return 1;
    }
    /* A new group starts at the beginning of each partition; a group that
     * has committed before starts where it left off. */
    ulog_config *cfg = ulog_config_new();
    char eb[256] = "";
    if (!cfg || ulog_config_set(cfg, "auto.offset.reset", "earliest", eb, sizeof eb) != 0) {
        fprintf(stderr, "fanout: %s: config: %s\n", c->group, eb);
        return 1;
    }
    ulog_sub *sub;
    err = ulog_subscribe(log, TOPIC, c->group, cfg, &sub);
    ulog_config_free(cfg);
    if (err) {
        fail(log, err, c->group, "ulog_subscribe");
        ulog_close(log);
        return 1;
    }
    if (write_full(out, "r", 1) != 0)           /* ready */
        return 1;

    static unsigned char seen[NORDERS + 1];
    report r = { 0 };
    double t0 = now_ms();
    while (r.unique < NORDERS) {
        ulog_msg m;
        err = ulog_poll(sub, 1000, &m);
        if (err == ULOG_ETIMEDOUT)
            continue;
        if (err) {
            fail(log, err, c->group, "ulog_poll");
            break;
        }
        int id = order_id(m.value, m.value_len);
        if (id < 1 || id > NORDERS) {
            fprintf(stderr, "fanout: %s: unexpected record at partition %d offset %lld\n",
                    c->group, (int)m.partition, (long long)m.offset);
            err = 1;
            break;
        }
        if (seen[id]++)
            r.duplicates++;
        else
            r.unique++;
        if (c->us_per_order)
            sleep_us(c->us_per_order);          /* the work */
        if (r.unique % COMMIT_EVERY == 0 || r.unique == NORDERS) {
            err = c->async_commit ? ulog_commit_async(sub, on_commit, &r) : ulog_commit(sub);
            if (err) {
                fail(log, err, c->group, "commit");
                break;
            }
            r.commits++;
        }
    }
    r.ms = now_ms() - t0;
    /* Closing waits for the asynchronous commits (their callbacks run first). */
    ulog_sub_close(sub);
    ulog_close(log);
    if (err)
        return 1;
    return write_full(out, &r, sizeof r) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ the program */

typedef struct child {
    pid_t pid;
    int   fd;                   /* read end of its pipe */
} child;

static int start(child *ch, int (*fn)(const struct consumer *, int), const struct consumer *c)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    ch->pid = fork();
    if (ch->pid < 0)
        return -1;
    if (ch->pid == 0) {
        close(p[0]);
        alarm(DEADLINE_S);      /* whatever happens, no child outlives the deadline */
        _exit(fn(c, p[1]));
    }
    close(p[1]);
    ch->fd = p[0];
    return 0;
}

static int run_producer(const struct consumer *c, int out)
{
    (void)c;
    return producer_main(out);
}

/* Waits for a child to exit; 0 if it exited 0. */
static int reap(child *ch, const char *name)
{
    int st;
    while (waitpid(ch->pid, &st, 0) < 0 && errno == EINTR)
        ;
    ch->pid = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "fanout: %s %s %d\n", name, WIFEXITED(st) ? "exited with" : "died of signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -1;
}

/* Prints a group's committed offsets and lag per partition; returns its
 * total lag, or -1 on failure (a group without a commit lags everything). */
static long long show_group(ulog *log, const char *group)
{
    ulog_group_desc *d;
    int err = ulog_group_describe(log, group, &d);
    if (err == ULOG_ENOENT) {
        printf("  %-16s no commit yet\n", group);
        return NORDERS;
    }
    if (err) {
        fail(log, err, "fanout", "ulog_group_describe");
        return -1;
    }
    long long lag = 0, committed = 0;
    char parts[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
        ulog_group_lag g = ULOG_GROUP_LAG_INIT;
        if ((err = ulog_group_desc_get(d, i, &g)) != 0) {
            fail(log, err, "fanout", "ulog_group_desc_get");
            ulog_group_desc_free(d);
            return -1;
        }
        lag += g.lag;
        committed += g.committed;
        int n = snprintf(parts + used, sizeof parts - used, "  p%d %lld/%lld", (int)g.partition,
                         (long long)g.committed, (long long)g.high);
        if (n > 0 && (size_t)n < sizeof parts - used)
            used += (size_t)n;
    }
    ulog_group_desc_free(d);
    printf("  %-16s committed %4lld, lag %4lld   (committed/high:%s)\n", group, committed, lag,
           parts);
    return lag;
}

int main(int argc, char **argv)
{
    char tmp[512] = "";
    if (argc > 1) {
        g_dir = argv[1];
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/ulog-fanout-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) {
            perror("fanout: mkdtemp");
            return 1;
        }
        g_dir = tmp;
    }
    printf("ulog %s fanout, log directory %s\n", ulog_version_string(), g_dir);

    ulog *log;
    int err = ulog_open(g_dir, NULL, &log);
    if (err) {
        fail(NULL, err, "fanout", "ulog_open");
        return 1;
    }
    if ((err = ulog_topic_create(log, TOPIC, PARTITIONS, NULL)) != 0) {
        if (err == ULOG_EEXIST)
            fprintf(stderr, "fanout: %s already has a topic \"%s\"; pass a new directory\n",
                    g_dir, TOPIC);
        fail(log, err, "fanout", "ulog_topic_create");
        ulog_close(log);
        return 1;
    }
    printf("created topic \"%s\" with %d partitions\n", TOPIC, PARTITIONS);

    int bad = 0;
    double deadline = now_ms() + DEADLINE_S * 1000.0;
    child cons[NGROUPS], prod = { 0, -1 };
    for (int i = 0; i < NGROUPS; i++)
        cons[i] = (child){ 0, -1 };

    printf("\n== Starting three consumer processes, one group each\n");
    for (int i = 0; i < NGROUPS && !bad; i++) {
        char c;
        if (start(&cons[i], consumer_main, &CONSUMERS[i]) != 0 ||
            read_full(cons[i].fd, &c, 1, deadline) != 0) {
            fprintf(stderr, "fanout: consumer %s did not start\n", CONSUMERS[i].group);
            bad = 1;
            break;
        }
        printf("  %-16s subscribed: %4d us of work per order, commits every %d with %s\n",
               CONSUMERS[i].group, CONSUMERS[i].us_per_order, COMMIT_EVERY,
               CONSUMERS[i].async_commit ? "ulog_commit_async" : "ulog_commit");
    }

    double t0 = now_ms();
    if (!bad) {
        printf("\n== Producer process: %d orders in %d appends, %d ms apart\n", NORDERS, BATCHES,
               BATCH_GAP_MS);
        double times[2];
        if (start(&prod, run_producer, NULL) != 0 ||
            read_full(prod.fd, times, sizeof times, deadline) != 0 || reap(&prod, "producer")) {
            fprintf(stderr, "fanout: the producer failed\n");
            bad = 1;
        } else {
            printf("  producer done after %.0f ms, %.1f ms of it inside ulog_append: it never "
                   "waits for a consumer\n", times[0], times[1]);
        }
    }

    /* The fast groups finish while recommendations is still far behind. */
    report rep[NGROUPS];
    int finished[NGROUPS] = { 0 };
    if (!bad) {
        printf("\n== Waiting for the fast groups\n");
        for (int i = NOTIFICATIONS; i <= BILLING && !bad; i++) {
            if (read_full(cons[i].fd, &rep[i], sizeof rep[i], deadline) != 0 ||
                reap(&cons[i], CONSUMERS[i].group)) {
                fprintf(stderr, "fanout: %s did not finish\n", CONSUMERS[i].group);
                bad = 1;
                break;
            }
            finished[i] = 1;
            printf("  %-16s read all %d orders %.0f ms after the producer started\n",
                   CONSUMERS[i].group, rep[i].unique, now_ms() - t0);
        }
    }
    if (!bad) {
        printf("\n== Groups now (ulog_group_describe)\n");
        for (int i = 0; i < NGROUPS; i++) {
            long long lag = show_group(log, CONSUMERS[i].group);
            if (lag < 0 || (i != RECOMMENDATIONS && lag != 0))
                bad = 1;
            if (i == RECOMMENDATIONS && lag > 0)
                printf("  -> recommendations still has %lld orders to go, and held back "
                       "neither the producer nor the other groups\n", lag);
        }
    }

    if (!bad) {
        printf("\n== Waiting for recommendations to catch up\n");
        if (read_full(cons[RECOMMENDATIONS].fd, &rep[RECOMMENDATIONS], sizeof rep[0],
                      deadline) != 0 || reap(&cons[RECOMMENDATIONS], "recommendations")) {
            fprintf(stderr, "fanout: recommendations did not finish\n");
            bad = 1;
        } else {
            finished[RECOMMENDATIONS] = 1;
            printf("  %-16s read all %d orders %.0f ms after the producer started\n",
                   "recommendations", rep[RECOMMENDATIONS].unique, now_ms() - t0);
        }
    }

    if (!bad) {
        printf("\n== Groups at the end\n");
        for (int i = 0; i < NGROUPS; i++)
            if (show_group(log, CONSUMERS[i].group) != 0)
                bad = 1;
        printf("\n== Per group: distinct orders, duplicates, commits\n");
        for (int i = 0; i < NGROUPS; i++) {
            const report *r = &rep[i];
            printf("  %-16s %d of %d, %d duplicates, %d commits%s\n", CONSUMERS[i].group,
                   r->unique, NORDERS, r->duplicates, r->commits,
                   r->async_failed ? " (some asynchronous commits failed)" : "");
            if (!finished[i] || r->unique != NORDERS || r->duplicates || r->async_failed)
                bad = 1;
        }
    }

    /* Whatever went wrong, no child is left behind. */
    for (int i = 0; i < NGROUPS; i++)
        if (cons[i].pid > 0) {
            kill(cons[i].pid, SIGKILL);
            waitpid(cons[i].pid, NULL, 0);
        }
    if (prod.pid > 0) {
        kill(prod.pid, SIGKILL);
        waitpid(prod.pid, NULL, 0);
    }
    for (int i = 0; i < NGROUPS; i++)
        if (cons[i].fd >= 0)
            close(cons[i].fd);
    if (prod.fd >= 0)
        close(prod.fd);
    ulog_close(log);
    if (tmp[0] && remove_tree(tmp) != 0)
        fprintf(stderr, "fanout: could not remove %s\n", tmp);
    printf("\n%s\n", bad ? "FAILED" : "done: every group read every order exactly once");
    return bad;
}
