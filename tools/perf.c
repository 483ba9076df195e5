/*
 * perf.c -- `ulog perf produce|consume|latency`, after Kafka's
 * kafka-producer-perf-test and kafka-consumer-perf-test.
 *
 * The topic must exist: a benchmark that quietly made its own topic would
 * measure settings nobody chose (flush.policy above all).
 */
#include "cli.h"

#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: ulog perf produce TOPIC --records N --record-size S [--batch B] [--threads T]\n"
    "       ulog perf consume TOPIC --records N\n"
    "       ulog perf latency TOPIC --records N [--record-size S]\n"
    "\n"
    "  produce   appends N records of S bytes (null key, spread round-robin)\n"
    "            in calls of B records (default 1) from T threads (default 1);\n"
    "            prints records/s, MB/s and the latency of ulog_append calls\n"
    "            (p50, p95, p99, p99.9, max)\n"
    "  consume   reads up to N records from the beginning (fewer if the topic\n"
    "            holds fewer); prints records/s and MB/s of keys and values\n"
    "  latency   appends N records of S bytes (default 100, at least 16) one at\n"
    "            a time while another thread polls them; prints the append to\n"
    "            poll latency percentiles\n"
    "The topic must exist (ulog topics create). MB is 2^20 bytes.\n";

enum { OPT_RECORDS = 256, OPT_SIZE, OPT_BATCH, OPT_THREADS };

typedef struct perf_args {
    ulog       *log;
    const char *topic;
    int64_t     records, size, batch, threads;
} perf_args;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the latencies (ns) and prints the percentiles in ms. */
static void print_percentiles(const char *what, uint64_t *ns, size_t n)
{
    if (n == 0)
        return;
    qsort(ns, n, sizeof *ns, cmp_u64);
    static const double P[] = { 0.50, 0.95, 0.99, 0.999 };
    static const char *const NAME[] = { "p50", "p95", "p99", "p99.9" };
    printf("%s (ms):", what);
    for (int i = 0; i < 4; i++) {
        size_t k = (size_t)(P[i] * (double)n + 0.999999);     /* nearest rank */
        printf(" %s %.3f", NAME[i], (double)ns[k ? k - 1 : 0] / 1e6);
    }
    printf(" max %.3f\n", (double)ns[n - 1] / 1e6);
}

/* ---------------------------------------------------------------- produce */

typedef struct producer_thread {
    perf_args *a;
    int64_t    records;          /* this thread's share */
    uint64_t  *lat;              /* one per call */
    size_t     calls;
    int        err;
    pthread_t  tid;
} producer_thread;

static void *produce_thread(void *arg)
{
    producer_thread *t = arg;
    perf_args *a = t->a;
    char *value = cli_xmalloc((size_t)a->size);
    for (int64_t i = 0; i < a->size; i++)
        value[i] = (char)('a' + i % 26);
    ulog_record *recs = cli_xmalloc((size_t)a->batch * sizeof *recs);
    for (int64_t done = 0; done < t->records && !t->err;) {
        size_t n = (size_t)(t->records - done < a->batch ? t->records - done : a->batch);
        for (size_t i = 0; i < n; i++)
            recs[i] = (ulog_record){ .value = value, .value_len = (size_t)a->size,
                                     .timestamp = ULOG_TIMESTAMP_NOW,
                                     .partition = ULOG_PARTITION_ANY };
        uint64_t t0 = cli_mono_ns();
        t->err = ulog_append(a->log, a->topic, recs, n);
        t->lat[t->calls++] = cli_mono_ns() - t0;
        done += (int64_t)n;
    }
    if (t->err)      /* the detail is per thread: take it here */
        cli_fail(a->log, t->err, "perf produce %s", a->topic);
    free(recs);
    free(value);
    return NULL;
}

static int perf_produce(perf_args *a)
{
    producer_thread *th = cli_xmalloc((size_t)a->threads * sizeof *th);
    size_t calls = 0;
    uint64_t t0 = cli_mono_ns();
    int64_t started = 0;
    for (int64_t i = 0; i < a->threads; i++) {
        int64_t share = a->records / a->threads + (i < a->records % a->threads);
        th[i] = (producer_thread){ .a = a, .records = share };
        th[i].lat = cli_xmalloc((size_t)(share / a->batch + 1) * sizeof *th[i].lat);
        if (pthread_create(&th[i].tid, NULL, produce_thread, &th[i]) != 0) {
            free(th[i].lat);
            break;
        }
        started++;
    }
    int rc = started == a->threads ? 0 : cli_error("perf produce: cannot start a thread");
    for (int64_t i = 0; i < started; i++) {
        pthread_join(th[i].tid, NULL);
        calls += th[i].calls;
        if (th[i].err)
            rc = 1;
    }
    double secs = (double)(cli_mono_ns() - t0) / 1e9;
    uint64_t *lat = cli_xmalloc((calls ? calls : 1) * sizeof *lat);
    size_t k = 0;
    for (int64_t i = 0; i < started; i++) {
        memcpy(lat + k, th[i].lat, th[i].calls * sizeof *lat);
        k += th[i].calls;
        free(th[i].lat);
    }
    if (rc == 0) {
        double mb = (double)a->records * (double)a->size / (1 << 20);
        printf("%lld records of %lld bytes in %zu appends by %lld thread%s in %.3f s: "
               "%.1f records/s, %.2f MB/s\n", (long long)a->records, (long long)a->size, calls,
               (long long)a->threads, a->threads == 1 ? "" : "s", secs,
               (double)a->records / secs, mb / secs);
        char what[64];
        snprintf(what, sizeof what, "append latency per call of up to %lld", (long long)a->batch);
        print_percentiles(what, lat, calls);
    }
    free(lat);
    free(th);
    return rc;
}

/* ---------------------------------------------------------------- consume */

static int subscribe(perf_args *a, const char *reset, ulog_sub **sub)
{
    char err_text[256];
    ulog_config *cfg = ulog_config_new();
    int err = cfg ? ulog_config_set(cfg, "auto.offset.reset", reset, err_text, sizeof err_text)
                  : ULOG_ENOMEM;
    if (!err)
        err = ulog_subscribe(a->log, a->topic, NULL, cfg, sub);
    ulog_config_free(cfg);
    return err ? cli_fail(a->log, err, "perf: subscribe to %s", a->topic) : 0;
}

static int perf_consume(perf_args *a)
{
    ulog_sub *sub;
    int rc = subscribe(a, "earliest", &sub);
    if (rc)
        return rc;
    int64_t n = 0, bytes = 0;
    uint64_t t0 = cli_mono_ns();
    while (n < a->records) {
        ulog_msg m;
        int err = ulog_poll(sub, 0, &m);
        if (err == ULOG_ETIMEDOUT)
            break;                              /* the end of the log */
        if (err) {
            rc = cli_fail(a->log, err, "perf consume %s", a->topic);
            break;
        }
        n++;
        bytes += (int64_t)(m.key_len + m.value_len);
    }
    double secs = (double)(cli_mono_ns() - t0) / 1e9;
    ulog_sub_close(sub);
    if (rc == 0)
        printf("%lld records (%lld bytes of keys and values) in %.3f s: %.1f records/s, %.2f MB/s%s\n",
               (long long)n, (long long)bytes, secs, secs > 0 ? (double)n / secs : 0.0,
               secs > 0 ? (double)bytes / (1 << 20) / secs : 0.0,
               n < a->records ? " (the end of the log came first)" : "");
    return rc;
}

/* ---------------------------------------------------------------- latency */

/* Each record's value starts with this and the monotonic send time, so the
 * consumer ignores records of anyone else producing meanwhile. */
static const char MAGIC[8] = "ulogperf";

typedef struct latency_consumer {
    perf_args *a;
    ulog_sub  *sub;
    uint64_t  *lat;
    size_t     n;
    int        err;
} latency_consumer;

static void *latency_thread(void *arg)
{
    latency_consumer *c = arg;
    while ((int64_t)c->n < c->a->records) {
        ulog_msg m;
        /* A producer that failed sends nothing more: do not wait forever. */
        int err = ulog_poll(c->sub, 10000, &m);
        if (err) {
            c->err = err;
            cli_fail(c->a->log, err, "perf latency %s: poll", c->a->topic);
            break;
        }
        uint64_t now = cli_mono_ns(), sent;
        if (m.value_len < 16 || memcmp(m.value, MAGIC, 8) != 0)
            continue;
        memcpy(&sent, (const char *)m.value + 8, 8);
        c->lat[c->n++] = now - sent;
    }
    return NULL;
}

static int perf_latency(perf_args *a)
{
    latency_consumer c = { .a = a };
    int rc = subscribe(a, "latest", &c.sub);     /* before the first append */
    if (rc)
        return rc;
    c.lat = cli_xmalloc((size_t)a->records * sizeof *c.lat);
    pthread_t tid;
    if (pthread_create(&tid, NULL, latency_thread, &c) != 0) {
        ulog_sub_close(c.sub);
        free(c.lat);
        return cli_error("perf latency: cannot start a thread");
    }
    char *value = cli_xmalloc((size_t)a->size);
    memset(value, 'x', (size_t)a->size);
    memcpy(value, MAGIC, 8);
    uint64_t t0 = cli_mono_ns();
    for (int64_t i = 0; i < a->records && rc == 0; i++) {
        uint64_t now = cli_mono_ns();
        memcpy(value + 8, &now, 8);
        ulog_record r = { .value = value, .value_len = (size_t)a->size,
                          .timestamp = ULOG_TIMESTAMP_NOW, .partition = ULOG_PARTITION_ANY };
        int err = ulog_append(a->log, a->topic, &r, 1);
        if (err)
            rc = cli_fail(a->log, err, "perf latency %s: append", a->topic);
    }
    pthread_join(tid, NULL);
    double secs = (double)(cli_mono_ns() - t0) / 1e9;
    if (rc == 0 && c.err)
        rc = 1;
    if (rc == 0) {
        printf("%lld records of %lld bytes, appended one at a time and polled by another "
               "thread, in %.3f s\n", (long long)a->records, (long long)a->size, secs);
        print_percentiles("end-to-end latency, append to poll", c.lat, c.n);
    }
    ulog_sub_close(c.sub);
    free(c.lat);
    free(value);
    return rc;
}

/* ---------------------------------------------------------------- main */

int cmd_perf(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "records", required_argument, NULL, OPT_RECORDS },
        { "record-size", required_argument, NULL, OPT_SIZE },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "threads", required_argument, NULL, OPT_THREADS },
        { NULL, 0, NULL, 0 },
    };
    static const char *const SUB[] = { "produce", "consume", "latency", "--help", "-h", NULL };
    if (argc < 2)
        return cli_usage_error("perf", "want a subcommand: produce, consume or latency");
    int sub = cli_subcommand(argv[1], SUB);
    if (sub < 0)
        return cli_usage_error("perf", "unknown subcommand '%s'", argv[1]);
    if (sub >= 3)
        return cli_help(USAGE);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "perf %s", SUB[sub]);
    argc--;
    argv++;
    perf_args a = { .records = -1, .size = -1, .batch = 1, .threads = 1 };
    int c;
    while ((c = getopt_long(argc, argv, ":d:", longopts, NULL)) != -1) {
        int64_t *dst = NULL, max = INT32_MAX;
        switch (c) {
        case 'd': cli_dir = optarg; continue;
        case 'h': return cli_help(USAGE);
        case OPT_RECORDS: dst = &a.records; max = INT64_MAX / 2; break;
        case OPT_SIZE: dst = &a.size; max = 1 << 30; break;
        case OPT_BATCH: dst = &a.batch; max = 1 << 20; break;
        case OPT_THREADS: dst = &a.threads; max = 256; break;
        default: return cli_bad_option(cmd, c, argv);
        }
        if (!cli_parse_i64(optarg, 1, max, dst))
            return cli_usage_error(cmd, "%s: not a number in 1..%lld: %s", argv[optind - 1],
                                   (long long)max, optarg);
    }
    if (optind + 1 != argc)
        return cli_usage_error(cmd, "want exactly one TOPIC");
    if (a.records < 0)
        return cli_usage_error(cmd, "--records N is required");
    if (sub == 0 && a.size < 0)
        return cli_usage_error(cmd, "--record-size S is required");
    if (sub != 0 && (a.batch != 1 || a.threads != 1))
        return cli_usage_error(cmd, "--batch and --threads are options of perf produce");
    if (sub == 1 && a.size >= 0)
        return cli_usage_error(cmd, "--record-size is not an option of perf consume");
    if (sub == 2 && a.size < 0)
        a.size = 100;
    if (sub == 2 && a.size < 16)
        return cli_usage_error(cmd, "--record-size: at least 16 bytes (magic and send time)");
    a.topic = argv[optind];
    int rc = cli_open(&a.log, false);
    if (rc)
        return rc;
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    int err = ulog_topic_describe(a.log, a.topic, &info, NULL);
    if (err)
        rc = cli_fail(a.log, err, "%s %s", cmd, a.topic);
    else
        rc = sub == 0 ? perf_produce(&a) : sub == 1 ? perf_consume(&a) : perf_latency(&a);
    ulog_close(a.log);
    return rc;
}
