/*
 * replay.c -- time travel: rebuild a service's state as it was at any
 * moment, by replaying the log of its changes.
 *
 * The idea (Kafka's event sourcing): a service does not only overwrite rows
 * in a table; it appends every change to a topic, and its state is what
 * replaying the topic gives. The log is the source of truth, the table a
 * cache of it. Anyone who opens the directory can replay the log again, up
 * to any point in time, without asking the service -- which is how one
 * recovers from a bad deploy: its wrong writes are in the log, but so is
 * everything before them.
 *
 * The story: a payments service appends ledger entries to the topic
 * "ledger" (key = account, value = "deposit 2500", "withdraw 1200" or
 * "fee 250", amounts in cents; explicit timestamps). At 10:00 release v2.4
 * goes live and charges fees 100 times too high. Instead of patching
 * balances by hand, we rebuild them as they were just before 10:00:
 *
 *   1. by time: ulog_seek_time() moves each partition to its first record
 *      at or after 10:00 (Kafka's offsetsForTimes); that position is the
 *      cut. Replay each partition from its start up to its cut.
 *   2. by offset: the service took a snapshot at 09:30 (balances plus, per
 *      partition, the offset the snapshot covers up to). Load it, ulog_seek()
 *      each partition to that offset and replay only the rest, up to the
 *      same cut. This is how a service restarts without replaying all of
 *      history.
 *
 * Both must equal the balances computed here from the good entries alone;
 * the program checks that and exits 1 otherwise.
 *
 * Usage:
 *   replay DIR                     the scenario above, in a new, empty DIR
 *   replay DIR --at TIMESTAMP_MS   balances of DIR's "ledger" as of a time: each
 *                                  partition up to its first record stamped at
 *                                  or after TIMESTAMP_MS (ms since the epoch)
 *   replay DIR --offset N          balances from the records at offsets < N
 *                                  of each partition
 * For example, after `replay /tmp/l`, `replay /tmp/l --at 1767261600000`
 * prints the balances before the deploy again.
 *
 * Build against an installed ulog:  cc replay.c $(pkg-config --cflags --libs ulog)
 */
#include <ulog.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC        "ledger"
#define PARTITIONS   2
#define MAX_PARTS    64         /* for --at/--offset on someone else's topic */
#define MAX_ACCOUNTS 64

#define T0       1767258000000LL            /* 2026-01-01T09:00:00Z, in ms */
#define MINUTE   (60 * 1000LL)
#define DEPLOY   (T0 + 60 * MINUTE)         /* 10:00: release v2.4 goes live */
#define SNAPSHOT (T0 + 30 * MINUTE)         /* 09:30: the service's last snapshot */

/* The ledger, in the order the service wrote it. */
static const struct entry {
    int64_t     at;
    const char *account, *op;
    long long   cents;
} LEDGER[] = {
    { T0 +  0 * MINUTE, "alice", "deposit",  120000 },
    { T0 +  4 * MINUTE, "bob",   "deposit",   80000 },
    { T0 +  9 * MINUTE, "carol", "deposit",  250000 },
    { T0 + 14 * MINUTE, "alice", "withdraw",  20000 },
    { T0 + 21 * MINUTE, "dave",  "deposit",   40000 },
    { T0 + 26 * MINUTE, "bob",   "fee",         250 },
    { T0 + 33 * MINUTE, "carol", "withdraw",  75000 },
    { T0 + 41 * MINUTE, "alice", "fee",         250 },
    { T0 + 47 * MINUTE, "dave",  "withdraw",  15000 },
    { T0 + 52 * MINUTE, "bob",   "deposit",   12500 },
    { T0 + 58 * MINUTE, "carol", "fee",         250 },
    /* release v2.4: the same monthly fee, 100 times too high */
    { DEPLOY + 0 * MINUTE, "dave",  "fee", 25000 },
    { DEPLOY + 3 * MINUTE, "alice", "fee", 25000 },
    { DEPLOY + 6 * MINUTE, "bob",   "fee", 25000 },
    { DEPLOY + 9 * MINUTE, "carol", "fee", 25000 },
};
#define NLEDGER (sizeof LEDGER / sizeof LEDGER[0])

static ulog *g_log;

/* Prints what failed with the error's name, text and the handle's detail. */
static int fail(int err, const char *what)
{
    char detail[512];
    ulog_errmsg(g_log, detail, sizeof detail);  /* g_log NULL: why ulog_open() failed */
    fprintf(stderr, "replay: %s failed: %s (%s)%s%s\n", what, ulog_errname(err),
            ulog_strerror(err), detail[0] ? ": " : "", detail);
    return 1;
}

/* ------------------------------------------------------------ the state */

/* The service's state: a balance per account, and per partition the
 * offset the next record to apply has (what the state covers). */
typedef struct book {
    int       n;
    char      account[MAX_ACCOUNTS][32];
    long long cents[MAX_ACCOUNTS];
    int32_t   nparts;
    int64_t   next[MAX_PARTS];
} book;

/* Adds delta to an account's balance; accounts are kept sorted by name. */
static int book_add(book *b, const char *account, size_t len, long long delta)
{
    char name[sizeof b->account[0]];
    if (len >= sizeof name)
        return -1;
    memcpy(name, account, len);
    name[len] = '\0';
    int i = 0;
    while (i < b->n && strcmp(b->account[i], name) < 0)
        i++;
    if (i == b->n || strcmp(b->account[i], name) != 0) {
        if (b->n == MAX_ACCOUNTS)
            return -1;
        memmove(b->account[i + 1], b->account[i], (size_t)(b->n - i) * sizeof b->account[0]);
        memmove(&b->cents[i + 1], &b->cents[i], (size_t)(b->n - i) * sizeof b->cents[0]);
        strcpy(b->account[i], name);
        b->cents[i] = 0;
        b->n++;
    }
    b->cents[i] += delta;
    return 0;
}

/* The signed amount of an entry: deposits add, withdrawals and fees take. */
static int amount(const char *op, long long cents, long long *delta)
{
    if (strcmp(op, "deposit") == 0)
        *delta = cents;
    else if (strcmp(op, "withdraw") == 0 || strcmp(op, "fee") == 0)
        *delta = -cents;
    else
        return -1;
    return 0;
}

/* Applies one record of the log ("fee 250", key "alice") to the book. */
static int apply(book *b, const ulog_msg *m)
{
    char text[64], op[16];
    long long cents, delta;
    if (m->key && m->value && m->value_len < sizeof text) {
        memcpy(text, m->value, m->value_len);
        text[m->value_len] = '\0';
        if (sscanf(text, "%15s %lld", op, &cents) == 2 && amount(op, cents, &delta) == 0 &&
            book_add(b, m->key, m->key_len, delta) == 0)
            return 0;
    }
    fprintf(stderr, "replay: partition %d offset %lld is not a ledger entry\n",
            (int)m->partition, (long long)m->offset);
    return -1;
}

static int book_equal(const book *a, const book *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->account[i], b->account[i]) != 0 || a->cents[i] != b->cents[i])
            return 0;
    return 1;
}

static void book_print(const book *b)
{
    printf("   ");
    for (int i = 0; i < b->n; i++) {
        long long c = b->cents[i] < 0 ? -b->cents[i] : b->cents[i];
        printf(" %s %s%lld.%02lld", b->account[i], b->cents[i] < 0 ? "-" : "", c / 100, c % 100);
    }
    printf("%s\n", b->n ? "" : " (no accounts)");
}

/* "2026-01-01T10:00:00.000Z" */
static void fmt_time(char *out, size_t len, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char date[32];
    if (ms < 0 || !gmtime_r(&secs, &tm) || !strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(out, len, "%lld ms", (long long)ms);
    else
        snprintf(out, len, "%s.%03dZ", date, (int)(ms % 1000));
}

/* ------------------------------------------------------------ replaying */

/* Where each partition is cut at time t: the offset of its first record
 * with a timestamp >= t (its high watermark if none). */
static int cut_at_time(ulog_sub *sub, int32_t nparts, int64_t t, int64_t *end)
{
    int err = ulog_seek_time(sub, ULOG_PARTITION_ANY, t);
    if (err)
        return fail(err, "ulog_seek_time");
    for (int32_t p = 0; p < nparts; p++)
        if ((err = ulog_position(sub, p, &end[p])) != 0)
            return fail(err, "ulog_position");
    return 0;
}

/* Replays into b each partition from b->next[p] (ulog_seek) up to, not
 * including, offset end[p]. */
static int replay(ulog_sub *sub, book *b, const int64_t *end)
{
    int err, left = 0;
    for (int32_t p = 0; p < b->nparts; p++) {
        if ((err = ulog_seek(sub, p, b->next[p])) != 0)
            return fail(err, "ulog_seek");
        if (b->next[p] < end[p])
            left++;
    }
    while (left > 0) {
        ulog_msg m;
        /* Everything below end[] is committed: the wait never runs out. */
        if ((err = ulog_poll(sub, 1000, &m)) != 0)
            return fail(err, "ulog_poll");
        int32_t p = m.partition;
        if (m.offset >= end[p])
            continue;                   /* past this partition's cut */
        if (apply(b, &m) != 0)
            return 1;
        b->next[p] = m.offset + 1;
        if (b->next[p] >= end[p])
            left--;
    }
    return 0;
}

/* An empty book starting at the low watermark of every partition. */
static int book_init(book *b, int32_t nparts)
{
    memset(b, 0, sizeof *b);
    b->nparts = nparts;
    for (int32_t p = 0; p < nparts; p++) {
        int64_t high;
        int err = ulog_watermarks(g_log, TOPIC, p, &b->next[p], &high);
        if (err)
            return fail(err, "ulog_watermarks");
    }
    return 0;
}

static void print_cut(const char *what, int32_t nparts, const int64_t *at)
{
    printf("    %s", what);
    for (int32_t p = 0; p < nparts; p++)
        printf(" partition %d at offset %lld%s", (int)p, (long long)at[p],
               p + 1 < nparts ? "," : "\n");
}

/* ------------------------------------------------------------ the scenario */

static int append_ledger(void)
{
    for (size_t i = 0; i < NLEDGER; i++) {
        char value[64];
        snprintf(value, sizeof value, "%s %lld", LEDGER[i].op, LEDGER[i].cents);
        ulog_record r = {
            .key = LEDGER[i].account, .key_len = strlen(LEDGER[i].account),
            .value = value, .value_len = strlen(value),
            .timestamp = LEDGER[i].at,              /* when it happened */
            .partition = ULOG_PARTITION_ANY,        /* by key: an account stays in order */
        };
        int err = ulog_append(g_log, TOPIC, &r, 1);
        if (err)
            return fail(err, "ulog_append");
    }
    return 0;
}

static int scenario(ulog_sub *sub, const char *dir)
{
    int64_t end[MAX_PARTS], high[MAX_PARTS];
    book now, by_time, snapshot, by_offset, expected;

    memset(&expected, 0, sizeof expected);
    int good = 0, bad = 0;
    for (size_t i = 0; i < NLEDGER; i++) {
        long long delta;
        if (LEDGER[i].at >= DEPLOY) {
            bad++;
            continue;
        }
        good++;
        if (amount(LEDGER[i].op, LEDGER[i].cents, &delta) != 0 ||
            book_add(&expected, LEDGER[i].account, strlen(LEDGER[i].account), delta) != 0)
            return 1;
    }
    if (append_ledger() != 0)
        return 1;
    printf("appended %d ledger entries from 09:00 (release v2.3) and %d from 10:00\n"
           "(release v2.4, which charges fees 100 times too high), key = account\n", good, bad);

    printf("\n== Balances now, replaying every record: the bad deploy shows\n");
    if (book_init(&now, PARTITIONS) != 0)
        return 1;
    for (int32_t p = 0; p < PARTITIONS; p++) {
        int64_t low;
        int err = ulog_watermarks(g_log, TOPIC, p, &low, &high[p]);
        if (err)
            return fail(err, "ulog_watermarks");
    }
    if (replay(sub, &now, high) != 0)
        return 1;
    book_print(&now);

    char when[40];
    fmt_time(when, sizeof when, DEPLOY);
    printf("\n== As of %s (%lld), by time: ulog_seek_time finds the cut\n", when,
           (long long)DEPLOY);
    if (book_init(&by_time, PARTITIONS) != 0 || cut_at_time(sub, PARTITIONS, DEPLOY, end) != 0 ||
        replay(sub, &by_time, end) != 0)
        return 1;
    print_cut("cut:", PARTITIONS, end);
    book_print(&by_time);

    /* The snapshot the service saved at 09:30: its balances then, and where
     * in each partition they stop (made here by replaying up to 09:30). */
    printf("\n== The same, by offset: from the 09:30 snapshot, ulog_seek to where it ends\n");
    int64_t snap_end[MAX_PARTS];
    if (book_init(&snapshot, PARTITIONS) != 0 ||
        cut_at_time(sub, PARTITIONS, SNAPSHOT, snap_end) != 0 ||
        replay(sub, &snapshot, snap_end) != 0)
        return 1;
    print_cut("snapshot position:", PARTITIONS, snapshot.next);
    book_print(&snapshot);
    by_offset = snapshot;               /* load the snapshot, replay the rest */
    if (replay(sub, &by_offset, end) != 0)
        return 1;
    print_cut("ulog_seek there, replay up to the cut:", PARTITIONS, end);
    book_print(&by_offset);

    printf("\n== Expected: the entries before the deploy, summed without the log\n");
    book_print(&expected);
    if (!book_equal(&by_time, &expected) || !book_equal(&by_offset, &expected)) {
        fprintf(stderr, "replay: a rebuilt state differs from the expected one\n");
        return 1;
    }
    if (book_equal(&now, &expected)) {
        fprintf(stderr, "replay: the bad deploy left no trace\n");
        return 1;
    }
    printf("\ndone: both rebuilds match the expected balances. Now try\n"
           "  replay %s --at %lld   (or any other time, in ms since the epoch)\n"
           "  replay %s --offset 3\n", dir, (long long)DEPLOY, dir);
    return 0;
}

/* ------------------------------------------------------------ an existing log */

/* --at T: cut each partition at time T; --offset N: at offset N. */
static int as_of(ulog_sub *sub, int32_t nparts, int by_time, long long n)
{
    book b;
    int64_t end[MAX_PARTS];
    if (nparts > MAX_PARTS) {
        fprintf(stderr, "replay: more than %d partitions\n", MAX_PARTS);
        return 1;
    }
    if (book_init(&b, nparts) != 0)
        return 1;
    if (by_time) {
        char when[40];
        fmt_time(when, sizeof when, n);
        printf("balances in \"%s\" as of %s\n", TOPIC, when);
        if (cut_at_time(sub, nparts, n, end) != 0)
            return 1;
    } else {
        printf("balances in \"%s\" from the records at offsets < %lld\n", TOPIC, n);
        for (int32_t p = 0; p < nparts; p++) {
            int64_t low, high;
            int err = ulog_watermarks(g_log, TOPIC, p, &low, &high);
            if (err)
                return fail(err, "ulog_watermarks");
            end[p] = n < low ? low : n > high ? high : n;
        }
    }
    if (replay(sub, &b, end) != 0)
        return 1;
    print_cut("cut:", nparts, end);
    book_print(&b);
    return 0;
}

int main(int argc, char **argv)
{
    long long n = 0;
    char *rest = NULL;
    if (argc == 4)
        n = strtoll(argv[3], &rest, 10);
    if (argc != 2 && !(argc == 4 && (strcmp(argv[2], "--at") == 0 ||
                                      strcmp(argv[2], "--offset") == 0) &&
                       argv[3][0] != '\0' && *rest == '\0' && n >= 0)) {
        fprintf(stderr, "usage: replay DIR [--at TIMESTAMP_MS | --offset N]\n");
        return 2;
    }
    int err = ulog_open(argv[1], NULL, &g_log);
    if (err)
        return fail(err, "ulog_open");

    int rc = 0;
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    if (argc == 2) {
        printf("ulog %s replay, log directory %s\n", ulog_version_string(), argv[1]);
        err = ulog_topic_create(g_log, TOPIC, PARTITIONS, NULL);
        if (err == ULOG_EEXIST)
            fprintf(stderr, "replay: %s already has a \"%s\": pass an empty directory, "
                            "or --at/--offset to replay it\n", argv[1], TOPIC);
        if (err)
            rc = fail(err, "ulog_topic_create");
    } else if ((err = ulog_topic_describe(g_log, TOPIC, &info, NULL)) != 0) {
        if (err == ULOG_ENOENT)
            fprintf(stderr, "replay: no \"%s\" in %s: run `replay DIR` on an empty "
                            "directory first\n", TOPIC, argv[1]);
        rc = fail(err, "ulog_topic_describe");
    }
    /* One subscription serves every replay: each starts with ulog_seek. */
    ulog_sub *sub = NULL;
    if (rc == 0 && (err = ulog_subscribe(g_log, TOPIC, NULL, NULL, &sub)) != 0)
        rc = fail(err, "ulog_subscribe");
    if (rc == 0)
        rc = argc == 2 ? scenario(sub, argv[1])
                       : as_of(sub, info.partitions, strcmp(argv[2], "--at") == 0, n);
    ulog_sub_close(sub);
    ulog_close(g_log);
    return rc;
}
