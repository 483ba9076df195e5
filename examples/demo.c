/*
 * demo.c -- a tour of ulog: append events to a partitioned topic, then read
 * them back three ways.
 *
 * What it shows:
 *   1. ulog_open() on a directory (argv[1], or ./demo-log) and
 *      ulog_topic_create() of "orders" with 3 partitions.
 *   2. ulog_append() of 20 order events: key = customer id (so every order
 *      of a customer lands in the same partition, by Kafka's murmur2
 *      partitioner), value = a small JSON document, a "source" header, and
 *      explicit timestamps one second apart. The first events are appended
 *      one call each, as they would arrive; the rest in one call, which
 *      stores one atomic batch per partition. ulog writes back the
 *      partition and offset each record got.
 *   3. Replays:
 *      (a) every partition from its beginning (subscribe with
 *          auto.offset.reset=earliest, poll until nothing is left);
 *      (b) partition 0 only, from a chosen offset (subscribe at the end,
 *          then ulog_seek() partition 0 back);
 *      (c) every partition from a point in time (ulog_seek_time(), Kafka's
 *          offsetsForTimes).
 *
 * Every call's result is checked; on failure the demo prints the error's
 * name and the handle's detailed message, and exits 1.
 *
 * Build against an installed ulog:  cc demo.c $(pkg-config --cflags --libs ulog)
 * Run:                              ./demo [DIR]
 */
#include <ulog.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC      "orders"
#define PARTITIONS 3

/* 2026-01-01T09:00:00Z in milliseconds since the epoch: the first event's
 * timestamp. Fixed, so every run prints the same times. */
#define BASE_TIME_MS 1767258000000LL

static ulog *g_log;

static void fail(int err, const char *what)
{
    char msg[512] = "";
    if (g_log)
        ulog_errmsg(g_log, msg, sizeof msg);
    fprintf(stderr, "demo: %s failed: %s (%s)%s%s\n", what, ulog_errname(err),
            ulog_strerror(err), msg[0] ? ": " : "", msg);
    if (g_log)
        ulog_close(g_log);
    exit(1);
}

/* ------------------------------------------------------------ the events */

typedef struct order {
    const char *customer;   /* the record key */
    const char *source;     /* the "source" header */
    const char *item;
    int         qty;
    int         cents;      /* unit price */
} order;

static const order ORDERS[] = {
    { "cust-1042", "web", "espresso beans 1kg",   1, 2490 },
    { "cust-2077", "app", "oat milk 6-pack",      2,  899 },
    { "cust-1042", "web", "paper filters x100",   3,  450 },
    { "cust-3150", "app", "burr grinder",         1, 8900 },
    { "cust-4409", "web", "ceramic mug",          4, 1200 },
    { "cust-2077", "app", "decaf beans 500g",     1, 1350 },
    { "cust-5521", "web", "gooseneck kettle",     1, 4500 },
    { "cust-3150", "app", "descaler",             2,  799 },
    { "cust-1042", "app", "travel tumbler",       1, 2200 },
    { "cust-6613", "web", "cold brew jar",        1, 2750 },
    { "cust-4409", "web", "espresso beans 1kg",   2, 2490 },
    { "cust-5521", "app", "milk frother",         1, 3900 },
    { "cust-6613", "app", "paper filters x100",   1,  450 },
    { "cust-2077", "web", "ceramic mug",          2, 1200 },
    { "cust-7788", "web", "burr grinder",         1, 8900 },
    { "cust-3150", "web", "oat milk 6-pack",      1,  899 },
    { "cust-7788", "app", "espresso beans 1kg",   3, 2490 },
    { "cust-1042", "web", "descaler",             1,  799 },
    { "cust-5521", "app", "cold brew jar",        2, 2750 },
    { "cust-4409", "app", "travel tumbler",       1, 2200 },
};
#define NORDERS (sizeof ORDERS / sizeof ORDERS[0])
#define ONE_BY_ONE 12           /* events appended one call each; the rest in one call */

/* ------------------------------------------------------------ printing */

/* "2026-01-01T09:00:03.000Z" */
static void fmt_time(char *out, size_t len, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        secs -= 1;
        frac += 1000;
    }
    struct tm tm;
    char date[32];
    if (!gmtime_r(&secs, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, len, "%lld ms", (long long)ms);
        return;
    }
    snprintf(out, len, "%s.%03dZ", date, frac);
}

/* Prints bytes as text, escaping anything unprintable; NULL as (null). */
static void put_bytes(const void *p, size_t len)
{
    if (!p) {
        fputs("(null)", stdout);
        return;
    }
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f)
            putchar(b[i]);
        else
            printf("\\x%02x", b[i]);
    }
}

static void print_msg(const ulog_msg *m)
{
    char when[40];
    fmt_time(when, sizeof when, m->timestamp);
    printf("  p%d @%-2lld  %s  key=", (int)m->partition, (long long)m->offset, when);
    put_bytes(m->key, m->key_len);
    printf("  value=");
    put_bytes(m->value, m->value_len);
    for (size_t i = 0; i < m->header_count; i++) {
        ulog_header h;
        int err = ulog_msg_header(m, i, &h);
        if (err)
            fail(err, "ulog_msg_header");
        printf("  [");
        put_bytes(h.key, h.key_len);
        printf(": ");
        put_bytes(h.value, h.value_len);
        printf("]");
    }
    printf("\n");
}

/* Polls without waiting until nothing is left; returns how many it printed. */
static int drain(ulog_sub *sub)
{
    int n = 0;
    for (;;) {
        ulog_msg m;
        int err = ulog_poll(sub, 0, &m);
        if (err == ULOG_ETIMEDOUT)
            return n;
        if (err)
            fail(err, "ulog_poll");
        print_msg(&m);
        n++;
    }
}

static void section(const char *title)
{
    printf("\n== %s\n", title);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./demo-log";
    int err;

    printf("ulog %s demo, log directory %s\n", ulog_version_string(), dir);

    if ((err = ulog_open(dir, NULL, &g_log)) != 0)
        fail(err, "ulog_open");

    /* Defaults apply (flush.policy always: an append returns once its batch
     * is on disk), so the topic needs no config. */
    err = ulog_topic_create(g_log, TOPIC, PARTITIONS, NULL);
    if (err == ULOG_EEXIST)
        fprintf(stderr, "demo: %s already has a topic \"%s\" (from an earlier run?); "
                        "remove the directory or pass a new one\n", dir, TOPIC);
    if (err)
        fail(err, "ulog_topic_create");
    printf("created topic \"%s\" with %d partitions\n", TOPIC, PARTITIONS);

    /* Build the records. They borrow these buffers for the append only. */
    static char json[NORDERS][160];
    static ulog_header hdr[NORDERS];
    ulog_record rec[NORDERS];
    memset(rec, 0, sizeof rec);
    for (size_t i = 0; i < NORDERS; i++) {
        const order *o = &ORDERS[i];
        int total = o->qty * o->cents;
        snprintf(json[i], sizeof json[i],
                 "{\"order_id\":\"ord-%04zu\",\"item\":\"%s\",\"qty\":%d,\"total\":%d.%02d}",
                 1001 + i, o->item, o->qty, total / 100, total % 100);
        hdr[i] = (ulog_header){ "source", strlen("source"), o->source, strlen(o->source) };
        rec[i].key = o->customer;
        rec[i].key_len = strlen(o->customer);
        rec[i].value = json[i];
        rec[i].value_len = strlen(json[i]);
        rec[i].headers = &hdr[i];
        rec[i].header_count = 1;
        rec[i].timestamp = BASE_TIME_MS + (int64_t)i * 1000;
        rec[i].partition = ULOG_PARTITION_ANY;      /* by key */
    }

    section("Appending 20 order events (key = customer id)");
    for (size_t i = 0; i < ONE_BY_ONE; i++)
        if ((err = ulog_append(g_log, TOPIC, &rec[i], 1)) != 0)
            fail(err, "ulog_append");
    /* The rest in one call: one atomic batch per partition they go to. */
    if ((err = ulog_append(g_log, TOPIC, &rec[ONE_BY_ONE], NORDERS - ONE_BY_ONE)) != 0)
        fail(err, "ulog_append (batch)");
    for (size_t i = 0; i < NORDERS; i++) {
        char when[40];
        fmt_time(when, sizeof when, rec[i].timestamp);
        printf("  %-9s -> partition %d offset %-2lld  %s  %s%s\n", ORDERS[i].customer,
               (int)rec[i].partition, (long long)rec[i].offset, when, json[i],
               i == ONE_BY_ONE ? "   <- batch call starts here" : "");
    }

    printf("\npartitions now:\n");
    for (int32_t p = 0; p < PARTITIONS; p++) {
        ulog_partition_info info = ULOG_PARTITION_INFO_INIT;
        if ((err = ulog_partition_describe(g_log, TOPIC, p, &info)) != 0)
            fail(err, "ulog_partition_describe");
        printf("  partition %d: offsets [%lld, %lld), %lld bytes in %lld segment(s)\n",
               (int)p, (long long)info.low, (long long)info.high, (long long)info.bytes,
               (long long)info.segments);
    }

    /* (a) Everything, from the start of every partition. Records come in
     * offset order within a partition; partitions are interleaved. */
    section("(a) Replay from the beginning of every partition");
    ulog_config *earliest = ulog_config_new();
    if (!earliest)
        fail(ULOG_ENOMEM, "ulog_config_new");
    char eb[256] = "";
    if ((err = ulog_config_set(earliest, "auto.offset.reset", "earliest", eb, sizeof eb)) != 0) {
        fprintf(stderr, "demo: auto.offset.reset: %s\n", eb);
        fail(err, "ulog_config_set");
    }
    ulog_sub *sub;
    if ((err = ulog_subscribe(g_log, TOPIC, NULL, earliest, &sub)) != 0)
        fail(err, "ulog_subscribe");
    ulog_config_free(earliest);
    printf("  (%d records)\n", drain(sub));
    ulog_sub_close(sub);

    /* (b) Partition 0 only, from a chosen offset: a default subscription
     * starts at the end of every partition ("latest"); seek partition 0
     * back to the middle of what it holds. */
    int64_t low, high;
    if ((err = ulog_watermarks(g_log, TOPIC, 0, &low, &high)) != 0)
        fail(err, "ulog_watermarks");
    int64_t from = low + (high - low) / 2;
    char title[128];
    snprintf(title, sizeof title,
             "(b) Replay partition 0 from offset %lld (it holds [%lld, %lld)) with ulog_seek",
             (long long)from, (long long)low, (long long)high);
    section(title);
    if ((err = ulog_subscribe(g_log, TOPIC, NULL, NULL, &sub)) != 0)
        fail(err, "ulog_subscribe");
    if ((err = ulog_seek(sub, 0, from)) != 0)
        fail(err, "ulog_seek");
    printf("  (%d records)\n", drain(sub));
    ulog_sub_close(sub);

    /* (c) Every partition from a point in time: each partition moves to its
     * first record with a timestamp >= T. */
    int64_t t = BASE_TIME_MS + 14 * 1000;
    char when[40];
    fmt_time(when, sizeof when, t);
    snprintf(title, sizeof title,
             "(c) Replay all partitions from time %s with ulog_seek_time", when);
    section(title);
    if ((err = ulog_subscribe(g_log, TOPIC, NULL, NULL, &sub)) != 0)
        fail(err, "ulog_subscribe");
    if ((err = ulog_seek_time(sub, ULOG_PARTITION_ANY, t)) != 0)
        fail(err, "ulog_seek_time");
    for (int32_t p = 0; p < PARTITIONS; p++) {
        int64_t pos;
        if ((err = ulog_position(sub, p, &pos)) != 0)
            fail(err, "ulog_position");
        printf("  partition %d starts at offset %lld\n", (int)p, (long long)pos);
    }
    printf("  (%d records)\n", drain(sub));
    ulog_sub_close(sub);

    ulog_close(g_log);
    printf("\ndone\n");
    return 0;
}
