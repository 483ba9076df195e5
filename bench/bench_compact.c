/* bench_compact.c -- compaction (cleanup.policy=compact), against
 * baselines measured in the same run:
 *
 *   compact   MB/s of segment bytes a compaction goes through (map the
 *             dirty keys, rewrite), next to a plain read(2) of the same
 *             files right before it (warm page cache for both);
 *   append    the rate of one appender (batches of 10 records of 100 B)
 *             while a compaction of the same topic runs, as a ratio to its
 *             rate in the second just before (target: >= 0.8), for
 *             flush.policy none and always.
 *
 * The log: one partition, NREC records of 100 B under NKEYS keys
 * (uniform), segment.bytes 16 MiB. Each round builds it afresh.
 * Usage: bench_compact DIR (make bench passes a fresh one).
 */
#define BENCH_NAME "bench_compact"
#include "benchutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>

#define NREC   1000000
#define NKEYS  50000
#define VSIZE  100
#define ROUNDS 3

static const char *g_root;
static unsigned    g_seq;

static ulog *open_topic(char *dir, size_t len, const char *policy)
{
    snprintf(dir, len, "%s/r%u", g_root, g_seq++);
    ulog *log;
    int err = ulog_open(dir, NULL, &log);
    if (err)
        die_ulog(NULL, err, "ulog_open");
    ulog_config *c = ulog_config_new();
    char eb[256];
    if (!c || ulog_config_set(c, "cleanup.policy", "compact", eb, sizeof eb) ||
        ulog_config_set(c, "segment.bytes", "16777216", eb, sizeof eb) ||
        ulog_config_set(c, "flush.policy", policy, eb, sizeof eb))
        die_ulog(NULL, ULOG_EINVAL, "topic config");
    if ((err = ulog_topic_create(log, "c", 1, c)) != 0)
        die_ulog(log, err, "ulog_topic_create");
    ulog_config_free(c);
    return log;
}

/* Appends n records starting at sequence number `seq`, 100 to a batch. */
static void fill(ulog *log, uint64_t n)
{
    static uint8_t val[VSIZE];
    fill_random(val, sizeof val);
    ulog_record r[100];
    char keys[100][16];
    for (uint64_t done = 0; done < n;) {
        size_t k = 0;
        for (; k < 100 && done < n; k++, done++) {
            snprintf(keys[k], sizeof keys[k], "key-%llu",
                     (unsigned long long)((done * 2654435761u) % NKEYS));
            r[k] = (ulog_record){ .key = keys[k], .key_len = strlen(keys[k]), .value = val,
                                  .value_len = VSIZE, .partition = 0,
                                  .timestamp = ULOG_TIMESTAMP_NOW };
        }
        int err = ulog_append(log, "c", r, k);
        if (err)
            die_ulog(log, err, "ulog_append");
    }
}

/* Reads every segment file of the partition with read(2); returns bytes. */
static uint64_t g_sink;
static int64_t plain_read(const char *dir)
{
    char pd[600];
    snprintf(pd, sizeof pd, "%s/topics/c/0", dir);
    DIR *d = opendir(pd);
    if (!d)
        die_sys("opendir", pd);
    static uint8_t buf[1 << 20];
    int64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 4, ".log") != 0)
            continue;
        char path[900];
        snprintf(path, sizeof path, "%s/%s", pd, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die_sys("open", path);
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            total += n;
            for (ssize_t i = 0; i < n; i += 64)
                g_sink += buf[i];
        }
        close(fd);
    }
    closedir(d);
    return total;
}

static void compact_once(ulog *log)
{
    int err = ulog_clean(log, "c", ULOG_CLEAN_COMPACT, NULL, NULL);
    if (err)
        die_ulog(log, err, "ulog_clean");
}

/* ------------------------------------------------------------ throughput */

static void case_throughput(void)
{
    double plain[ROUNDS], comp[ROUNDS];
    int64_t bytes = 0, after = 0;
    for (int r = 0; r < ROUNDS; r++) {
        char dir[512];
        ulog *log = open_topic(dir, sizeof dir, "none");
        fill(log, NREC);
        double t0 = now_s();
        bytes = plain_read(dir);
        double t1 = now_s();
        compact_once(log);
        double t2 = now_s();
        after = plain_read(dir);
        plain[r] = (double)bytes / 1e6 / (t1 - t0);
        comp[r] = (double)bytes / 1e6 / (t2 - t1);
        printf("  round %d: plain read %.0f MB/s, compaction %.0f MB/s\n", r + 1, plain[r],
               comp[r]);
        ulog_close(log);
        rm_rf(dir);
    }
    qsort(plain, ROUNDS, sizeof plain[0], cmp_double);
    qsort(comp, ROUNDS, sizeof comp[0], cmp_double);
    printf("compact %lld MB (%d records, %d keys) -> %lld MB: compaction %.0f MB/s, "
           "plain read %.0f MB/s (medians): %.2fx\n",
           (long long)(bytes >> 20), NREC, NKEYS, (long long)(after >> 20), comp[ROUNDS / 2],
           plain[ROUNDS / 2], comp[ROUNDS / 2] / plain[ROUNDS / 2]);
}

/* ------------------------------------------------------------ appends */

typedef struct appender {
    ulog    *log;
    volatile int stop;
    uint64_t count;             /* records appended (atomic) */
} appender;

static void *append_main(void *arg)
{
    appender *a = arg;
    static uint8_t val[VSIZE];
    ulog_record r[10];
    char keys[10][16];
    uint64_t seq = 0;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        for (int k = 0; k < 10; k++, seq++) {
            snprintf(keys[k], sizeof keys[k], "new-%llu", (unsigned long long)(seq % NKEYS));
            r[k] = (ulog_record){ .key = keys[k], .key_len = strlen(keys[k]), .value = val,
                                  .value_len = VSIZE, .partition = 0,
                                  .timestamp = ULOG_TIMESTAMP_NOW };
        }
        int err = ulog_append(a->log, "c", r, 10);
        if (err)
            die_ulog(a->log, err, "ulog_append (during compaction)");
        __atomic_add_fetch(&a->count, 10, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void case_appends(const char *policy)
{
    double ratio[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        char dir[512];
        ulog *log = open_topic(dir, sizeof dir, policy);
        fill(log, NREC);
        appender a = { log, 0, 0 };
        pthread_t th;
        if (pthread_create(&th, NULL, append_main, &a) != 0)
            die_sys("pthread_create", NULL);
        sleep_s(0.2);                           /* warm up */
        uint64_t c0 = __atomic_load_n(&a.count, __ATOMIC_RELAXED);
        double t0 = now_s();
        sleep_s(1.0);
        uint64_t c1 = __atomic_load_n(&a.count, __ATOMIC_RELAXED);
        double t1 = now_s();
        compact_once(log);
        uint64_t c2 = __atomic_load_n(&a.count, __ATOMIC_RELAXED);
        double t2 = now_s();
        __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        double before = (double)(c1 - c0) / (t1 - t0), during = (double)(c2 - c1) / (t2 - t1);
        ratio[r] = during / before;
        char b[32], d[32];
        fmt_rate(b, sizeof b, before);
        fmt_rate(d, sizeof d, during);
        printf("  round %d (%s): %s appends/s before, %s during a %.2f s compaction: %.2fx\n",
               r + 1, policy, b, d, t2 - t1, ratio[r]);
        ulog_close(log);
        rm_rf(dir);
    }
    qsort(ratio, ROUNDS, sizeof ratio[0], cmp_double);
    printf("append during compaction, flush.policy %-6s %.2fx the rate before "
           "(median; target >= 0.8)%s\n", policy, ratio[ROUNDS / 2],
           ratio[ROUNDS / 2] >= 0.8 ? "" : "  BELOW TARGET");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_compact DIR\n");
        return 2;
    }
    if (!wanted("compact"))
        return 0;
    g_root = argv[1];
    print_loadavg("before");
    case_throughput();
    case_appends("none");
    case_appends("always");
    print_loadavg("after");
    return g_sink == 42 ? 1 : 0;
}
