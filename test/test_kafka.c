/* test_kafka.c -- the Kafka mirror (tools/kafka_mirror.c) against
 * librdkafka's mock cluster, started here on 127.0.0.1: every record
 * reaches the same Kafka partition once and in order with its key, value,
 * headers and timestamp, also while a broker is down mid-stream and across
 * a restart; and a Kafka topic comes back into ulog at the same offsets,
 * each message once across restarts. */
#include "testutil.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>

#include "../tools/kafka_mirror.h"

static char dir[4096];
SCRATCH_SUITE(kafka, dir);

#define PARTS 3

/* The mock cluster: three brokers in this process, on 127.0.0.1. */
typedef struct cluster {
    rd_kafka_t              *rk;
    rd_kafka_mock_cluster_t *mc;
    const char              *brokers;
} cluster;

static void cluster_start(cluster *c, const char *ktopic)
{
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", e, sizeof e);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    cr_assert_not_null(c->rk, "%s", e);
    c->mc = rd_kafka_mock_cluster_new(c->rk, 3);
    cr_assert_not_null(c->mc);
    c->brokers = rd_kafka_mock_cluster_bootstraps(c->mc);
    cr_assert_eq(rd_kafka_mock_topic_create(c->mc, ktopic, PARTS, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
    /* One partition leader per broker, so that taking one down stops one
     * partition. */
    for (int p = 0; p < PARTS; p++)
        rd_kafka_mock_partition_set_leader(c->mc, ktopic, p, p + 1);
}

static void cluster_stop(cluster *c)
{
    rd_kafka_mock_cluster_destroy(c->mc);
    rd_kafka_destroy(c->rk);
}

/* Quiet librdkafka clients for the mirror. */
static const char *const QUIET[] = { "log_level=0", NULL };

/* ------------------------------------------------------------ records */

/* Record n: key null every 5th, empty every 7th; value null every 11th;
 * headers on every 3rd; its own timestamp. */
static void record(int n, ulog_record *r, char *key, char *val, ulog_header *hd)
{
    memset(r, 0, sizeof *r);
    snprintf(key, 16, "k%d", n % 13);
    int vl = snprintf(val, 32, "value %d", n);
    r->key = n % 5 == 0 ? NULL : key;
    r->key_len = n % 5 == 0 || n % 7 == 0 ? 0 : strlen(key);
    r->value = n % 11 == 0 ? NULL : val;
    r->value_len = n % 11 == 0 ? 0 : (size_t)vl;
    hd[0] = (ulog_header){ "n", 1, val, (size_t)vl };
    hd[1] = (ulog_header){ "empty", 5, NULL, 0 };
    r->headers = n % 3 == 0 ? hd : NULL;
    r->header_count = n % 3 == 0 ? 2 : 0;
    r->timestamp = 1700000000000 + n;
    r->partition = n % PARTS;
}

static void append_n(ulog *log, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char key[16], val[32];
        ulog_header hd[2];
        ulog_record r;
        record(i, &r, key, val, hd);
        append_ok(log, "t", &r, 1);
    }
}

/* Jepsen-style counts of a Kafka topic read whole against records
 * 0..total-1: each once, in order within its partition, at the offset its
 * ulog copy has, with every field. */
/* A client of the test's own on the mock cluster: quiet, and with the
 * setting name=value (a consumer's group, a producer's idempotence). */
static rd_kafka_t *test_client(cluster *c, rd_kafka_type_t type, const char *name,
                               const char *value)
{
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", c->brokers, e, sizeof e),
                 RD_KAFKA_CONF_OK, "%s", e);
    cr_assert_eq(rd_kafka_conf_set(conf, name, value, e, sizeof e), RD_KAFKA_CONF_OK, "%s", e);
    rd_kafka_conf_set(conf, "log_level", "0", e, sizeof e);
    rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof e);
    cr_assert_not_null(rk, "%s", e);
    return rk;
}

typedef struct counts {
    int lost, duplicated, out_of_order, differing, read;
} counts;

static counts read_kafka(cluster *c, const char *ktopic, int total)
{
    rd_kafka_t *rk = test_client(c, RD_KAFKA_CONSUMER, "group.id", "test-reader");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTS);
    for (int p = 0; p < PARTS; p++)
        rd_kafka_topic_partition_list_add(l, ktopic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    counts k = { 0 };
    /* last: the greatest record seen first so far in each partition; a
     * record seen again (a batch shipped again after a crash) is a
     * duplicate, not out of order. */
    int *seen = calloc((size_t)total, sizeof *seen), last[PARTS] = { -1, -1, -1 };
    int64_t quiet = mono_ns();
    while (mono_ns() - quiet < 2000000000LL) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        quiet = mono_ns();
        k.read++;
        int n = -1;
        /* The value says which record; a null value: the header, else the
         * timestamp. */
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        n = (int)(ts - 1700000000000);
        if (n < 0 || n >= total) {
            k.differing++;
        } else {
            char key[16], val[32];
            ulog_header hd[2];
            ulog_record r;
            record(n, &r, key, val, hd);
            if (seen[n]++) {
                k.duplicated++;
            } else {
                if (n < last[m->partition])
                    k.out_of_order++;
                last[m->partition] = n;
            }
            bool same = m->partition == r.partition && (m->key == NULL) == (r.key == NULL) &&
                        (m->key ? m->key_len : 0) == r.key_len &&
                        (!r.key_len || memcmp(m->key, r.key, r.key_len) == 0) &&
                        (m->payload == NULL) == (r.value == NULL) &&
                        (m->payload ? m->len : 0) == r.value_len &&
                        (!r.value_len || memcmp(m->payload, r.value, r.value_len) == 0) &&
                        tt == RD_KAFKA_TIMESTAMP_CREATE_TIME;
            rd_kafka_headers_t *hs = NULL;
            size_t nh = rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR
                            ? rd_kafka_header_cnt(hs) : 0;
            same = same && nh == r.header_count;
            for (size_t i = 0; same && i < nh; i++) {
                const char *name;
                const void *v;
                size_t sz;
                rd_kafka_header_get_all(hs, i, &name, &v, &sz);
                same = strcmp(name, r.headers[i].key) == 0 &&
                       (v == NULL) == (r.headers[i].value == NULL) &&
                       sz == r.headers[i].value_len &&
                       (!sz || memcmp(v, r.headers[i].value, sz) == 0);
            }
            if (!same)
                k.differing++;
        }
        rd_kafka_message_destroy(m);
    }
    for (int n = 0; n < total; n++)
        if (!seen[n])
            k.lost++;
    free(seen);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return k;
}

static void show(counts k)
{
    cr_log_info("Kafka read %d messages: lost %d, duplicated %d, out of order %d, differing %d",
                k.read, k.lost, k.duplicated, k.out_of_order, k.differing);
}

static void expect_clean(counts k, int total)
{
    show(k);
    cr_expect_eq(k.lost, 0, "lost");
    cr_expect_eq(k.duplicated, 0, "duplicated");
    cr_expect_eq(k.out_of_order, 0, "out of order");
    cr_expect_eq(k.differing, 0, "differing");
    cr_expect_eq(k.read, total);
}

static void wait_count(kafka_to *m, int64_t want)
{
    int64_t t0 = mono_ns();
    while (kafka_to_count(m) < want) {
        cr_assert_lt(mono_ns() - t0, 60000000000LL, "mirrored %lld of %lld",
                     (long long)kafka_to_count(m), (long long)want);
        sleep_ms(10);
    }
}

static ulog *open_log(void)
{
    return open_with_topic(dir, NULL, "t", PARTS, cfg_of("flush.policy", "none", NULL));
}

Test(kafka, to_kafka_keeps_every_field_and_resumes, .timeout = 120)
{
    cluster c;
    cluster_start(&c, "kt");
    ulog *log = open_log();
    append_n(log, 0, 200);
    kafka_to *m;
    char err[512] = "";
    int rc = kafka_to_start(log, "t", c.brokers, "kt", "mirror", QUIET, err, sizeof err, &m);
    cr_assert_eq(rc, 0, "%s: %s", ulog_errname(rc), err);
    append_n(log, 200, 100);
    wait_count(m, 300);
    cr_assert_eq(kafka_to_stop(m), 0);
    /* Stopped: its position is stored; a new mirror ships only the rest. */
    append_n(log, 300, 50);
    rc = kafka_to_start(log, "t", c.brokers, "kt", "mirror", QUIET, err, sizeof err, &m);
    cr_assert_eq(rc, 0, "%s", err);
    wait_count(m, 50);
    sleep_ms(200);
    cr_expect_eq(kafka_to_count(m), 50, "shipped again what was shipped");
    cr_assert_eq(kafka_to_stop(m), 0);
    expect_clean(read_kafka(&c, "kt", 350), 350);
    ulog_close(log);
    cluster_stop(&c);
}

typedef struct feeder {
    ulog *log;
    int   from, n;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    for (int i = f->from; i < f->from + f->n; i += 10) {
        append_n(f->log, i, 10);
        sleep_ms(5);
    }
    return NULL;
}

Test(kafka, a_broker_down_mid_stream_loses_and_duplicates_nothing, .timeout = 120)
{
    cluster c;
    cluster_start(&c, "kt");
    ulog *log = open_log();
    kafka_to *m;
    char err[512] = "";
    int rc = kafka_to_start(log, "t", c.brokers, "kt", "mirror", QUIET, err, sizeof err, &m);
    cr_assert_eq(rc, 0, "%s", err);
    feeder f = { log, 0, 600 };
    pthread_t thr;
    cr_assert_eq(pthread_create(&thr, NULL, feed, &f), 0);
    wait_count(m, 100);
    /* Broker 2 leads partition 1: down for a while, mid-stream. */
    cr_assert_eq(rd_kafka_mock_broker_set_down(c.mc, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t at = kafka_to_count(m);
    sleep_ms(1500);
    int64_t during = kafka_to_count(m) - at;
    cr_assert_eq(rd_kafka_mock_broker_set_up(c.mc, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    pthread_join(thr, NULL);
    wait_count(m, 600);
    cr_assert_eq(kafka_to_stop(m), 0);
    cr_log_info("%lld records acknowledged while broker 2 was down", (long long)during);
    expect_clean(read_kafka(&c, "kt", 600), 600);
    ulog_close(log);
    cluster_stop(&c);
}

/* The hook's lag over every partition (-1: no position stored yet). */
static int64_t lag_of(ulog *log)
{
    ulog_group_desc *d;
    int64_t lag = 0;
    if (ulog_group_describe(log, "mirror", &d) != 0)
        return -1;
    if (ulog_group_desc_count(d) < PARTS)
        lag = -1;
    for (size_t i = 0; lag >= 0 && i < ulog_group_desc_count(d); i++) {
        ulog_group_lag e = ULOG_GROUP_LAG_INIT;
        cr_assert_eq(ulog_group_desc_get(d, i, &e), 0);
        lag += e.lag;
    }
    ulog_group_desc_free(d);
    return lag;
}

/* A mirror process killed at random moments, three times, then one that
 * finishes: nothing lost, out of order or changed in Kafka; what was
 * shipped but not yet stored when a mirror died comes again (at least once),
 * at most 64 batches per partition and kill. */
Test(kafka, killed_mirrors_lose_nothing, .timeout = 120)
{
    cluster c;
    cluster_start(&c, "kt");
    ulog *log = open_log();
    append_n(log, 0, 1500);
    ulog_close(log);
    uint64_t seed = (uint64_t)mono_ns();
    for (int round = 0; round < 3; round++) {
        fflush(NULL);
        pid_t pid = quiet_fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            child_watchdog(60);
            ulog *l;
            kafka_to *m;
            if (ulog_open(dir, NULL, &l) ||
                kafka_to_start(l, "t", c.brokers, "kt", "mirror", QUIET, NULL, 0, &m))
                _exit(2);
            for (;;)
                sleep_ms(1000);
        }
        sleep_us(200000 + (int64_t)(mix64(seed + (uint64_t)round) % 400000));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        cr_assert(WIFSIGNALED(st), "the mirror exited by itself: %d", WEXITSTATUS(st));
    }
    log = open_at(dir, NULL);
    kafka_to *m;
    char err[512] = "";
    int rc = kafka_to_start(log, "t", c.brokers, "kt", "mirror", QUIET, err, sizeof err, &m);
    cr_assert_eq(rc, 0, "%s", err);
    int64_t t0 = mono_ns();
    while (lag_of(log) != 0) {
        cr_assert_lt(mono_ns() - t0, 60000000000LL, "the mirror does not catch up");
        sleep_ms(20);
    }
    cr_assert_eq(kafka_to_stop(m), 0);
    counts k = read_kafka(&c, "kt", 1500);
    show(k);
    cr_expect_eq(k.lost, 0, "lost");
    cr_expect_eq(k.out_of_order, 0, "out of order");
    cr_expect_eq(k.differing, 0, "differing");
    cr_expect_leq(k.duplicated, 3 * 64 * PARTS, "more shipped again than unstored batches");
    ulog_close(log);
    cluster_stop(&c);
}

/* A producer of the test's own into Kafka: records from..from+n-1. */
static void produce_kafka(cluster *c, const char *ktopic, int from, int n)
{
    rd_kafka_t *rk = test_client(c, RD_KAFKA_PRODUCER, "enable.idempotence", "true");
    for (int i = from; i < from + n; i++) {
        char key[16], val[32];
        ulog_header hd[2];
        ulog_record r;
        record(i, &r, key, val, hd);
        rd_kafka_headers_t *hs = NULL;
        if (r.header_count) {
            hs = rd_kafka_headers_new(2);
            for (size_t k = 0; k < r.header_count; k++)
                rd_kafka_header_add(hs, r.headers[k].key, (ssize_t)r.headers[k].key_len,
                                    r.headers[k].value, (ssize_t)r.headers[k].value_len);
        }
        cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(ktopic),
                                       RD_KAFKA_V_PARTITION(r.partition),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_KEY(r.key, r.key_len),
                                       RD_KAFKA_V_VALUE((void *)r.value, r.value_len),
                                       RD_KAFKA_V_TIMESTAMP(r.timestamp),
                                       RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    cr_assert_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* The local topic against records 0..total-1, by offset: record n is the
 * (n / PARTS)-th of partition n % PARTS. */
static void expect_local(ulog *log, int total)
{
    ulog_sub *s = sub_earliest(log, "t");
    ulog_msg m;
    int got = 0;
    while (ulog_poll(s, 0, &m) == 0) {
        int n = (int)(m.offset * PARTS + m.partition);
        char key[16], val[32];
        ulog_header hd[2];
        ulog_record r;
        record(n, &r, key, val, hd);
        cr_assert_lt(n, total, "record %d@%lld too many", (int)m.partition, (long long)m.offset);
        cr_assert_eq(m.timestamp, r.timestamp, "record %d", n);
        cr_assert_eq(m.key == NULL, r.key == NULL, "record %d key", n);
        cr_assert_eq(m.key_len, r.key_len);
        cr_assert_eq(m.value == NULL, r.value == NULL, "record %d value", n);
        cr_assert_eq(m.value_len, r.value_len);
        cr_assert(!r.value_len || memcmp(m.value, r.value, r.value_len) == 0);
        cr_assert_eq(m.header_count, r.header_count, "record %d headers", n);
        for (size_t i = 0; i < m.header_count; i++) {
            ulog_header h;
            cr_assert_eq(ulog_msg_header(&m, i, &h), 0);
            cr_assert_eq(h.key_len, r.headers[i].key_len);
            cr_assert_eq(h.value == NULL, r.headers[i].value == NULL, "record %d header %zu", n,
                         i);
        }
        got++;
    }
    cr_assert_eq(got, total);
    ulog_sub_close(s);
}

Test(kafka, from_kafka_keeps_offsets_and_stores_each_once, .timeout = 120)
{
    cluster c;
    cluster_start(&c, "kin");
    ulog *log = open_log();
    produce_kafka(&c, "kin", 0, 150);
    volatile int stop = 0;
    int64_t n = 0;
    char err[512] = "";
    int rc = kafka_from_run(log, "t", c.brokers, "kin", QUIET, &stop, 1500, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", ulog_errname(rc), err);
    cr_expect_eq(n, 150);
    expect_local(log, 150);
    /* Again: everything below the ends is skipped, the rest comes. */
    produce_kafka(&c, "kin", 150, 60);
    rc = kafka_from_run(log, "t", c.brokers, "kin", QUIET, &stop, 1500, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(n, 60);
    expect_local(log, 210);
    /* A topic the ulog side cannot hold: more partitions. */
    rd_kafka_mock_topic_create(c.mc, "wide", PARTS + 1, 1);
    rc = kafka_from_run(log, "t", c.brokers, "wide", QUIET, &stop, 500, &n, err, sizeof err);
    cr_expect_eq(rc, ULOG_EINVAL, "%s", ulog_errname(rc));
    cr_expect_neq(strstr(err, "partitions"), NULL, "%s", err);
    ulog_close(log);
    cluster_stop(&c);
}

/* Offsets a Kafka topic skips (compaction, transaction markers, aborted
 * transactions). librdkafka 2.0's mock cluster makes none (it neither
 * compacts nor writes transaction markers), so the sequences are given to
 * kafka_from_store, the step kafka_from_run takes with each message. */
static const struct { int32_t part; int64_t offset; } GAPPY[] = {
    { 0, 5 }, { 1, 0 }, { 0, 6 }, { 1, 1 }, { 0, 9 }, { 2, 0 }, { 1, 2 }, { 0, 10 },
    { 1, 7 }, { 0, 400 }, { 2, 1 }, { 0, 401 }, { 2, 3 }, { 1, 8 }, { 0, 100000 },
};
#define NGAPPY (sizeof GAPPY / sizeof GAPPY[0])

static void expect_gappy(ulog *log)
{
    int64_t want_lo[PARTS] = { 5, 0, 0 }, want_hi[PARTS] = { 100001, 9, 4 };
    for (int p = 0; p < PARTS; p++) {
        int64_t lo, hi;
        watermarks(log, "t", p, &lo, &hi);
        cr_expect(lo == want_lo[p] && hi == want_hi[p], "partition %d: [%lld, %lld)", p,
                  (long long)lo, (long long)hi);
    }
    ulog_sub *s = sub_earliest(log, "t");
    ulog_msg m;
    size_t next[PARTS] = { 0 }, got = 0;
    int rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        /* The i-th record of a partition is its i-th in GAPPY. */
        size_t i = 0;
        for (size_t seen = 0; i < NGAPPY; i++)
            if (GAPPY[i].part == m.partition && seen++ == next[m.partition])
                break;
        cr_assert_lt(i, NGAPPY, "a record too many in partition %d", (int)m.partition);
        next[m.partition]++;
        char key[16], val[32];
        ulog_header hd[2];
        ulog_record r;
        record((int)i, &r, key, val, hd);
        cr_expect_eq(m.offset, GAPPY[i].offset, "record %zu", i);
        cr_expect_eq(m.timestamp, r.timestamp, "record %zu", i);
        cr_expect_eq(m.key == NULL, r.key == NULL, "record %zu", i);
        cr_expect(m.value_len == r.value_len && (m.value == NULL) == (r.value == NULL) &&
                      (!r.value_len || memcmp(m.value, r.value, r.value_len) == 0),
                  "record %zu's value", i);
        cr_expect_eq(m.header_count, r.header_count, "record %zu", i);
        got++;
    }
    cr_expect_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    cr_expect_eq(got, NGAPPY);
    ulog_sub_close(s);
}

/* Every record at its Kafka offset, with every field, a partition whose
 * first offsets Kafka no longer has starting at its first record; into an
 * encrypted topic too (the records that follow a gap are sealed by the
 * mirror); again after a reboot (heads gone), the gaps being durable.
 * Bad steps change nothing. */
Test(kafka, from_kafka_keeps_offsets_across_gaps)
{
    for (int enc = 0; enc < 2; enc++) {
        char root[4200];
        snprintf(root, sizeof root, "%s/gaps-%d", dir, enc);
        static const uint8_t key[ULOG_KEY_BYTES] = { 7, 1, 2 };
        ulog *log = open_with_topic(root, NULL, "t", PARTS,
                                    enc ? cfg_of("encryption.key.id", "3", NULL) : NULL);
        if (enc)
            cr_assert_eq(ulog_key_add(log, "t", 3, key, sizeof key), 0);
        int64_t next[PARTS] = { 0 };
        char err[512] = "";
        for (size_t i = 0; i < NGAPPY; i++) {
            char k[16], val[32];
            ulog_header hd[2];
            ulog_record r;
            record((int)i, &r, k, val, hd);
            r.partition = GAPPY[i].part;
            int rc = kafka_from_store(log, "t", &r, GAPPY[i].offset, &next[r.partition], err,
                                      sizeof err);
            cr_assert_eq(rc, 0, "step %zu: %s: %s", i, ulog_errname(rc), err);
            cr_assert_eq(next[r.partition], GAPPY[i].offset + 1);
        }
        expect_gappy(log);

        /* Below the end; more than one batch can span; another writer. */
        char k[16], val[32];
        ulog_header hd[2];
        ulog_record r;
        record(0, &r, k, val, hd);
        r.partition = 1;
        cr_expect_eq(kafka_from_store(log, "t", &r, 3, &next[1], err, sizeof err),
                     ULOG_EINVAL);
        cr_expect_eq(kafka_from_store(log, "t", &r, next[1] + INT32_MAX + 5LL, &next[1], err,
                                      sizeof err), ULOG_EOFFSET);
        cr_expect_neq(strstr(err, "skips"), NULL, "%s", err);
        /* A mirror that takes a partition for never written, which
         * something else wrote meanwhile: not started afresh. */
        int64_t fresh = 0;
        cr_expect_eq(kafka_from_store(log, "t", &r, next[1] + 3, &fresh, err, sizeof err),
                     ULOG_ECONFLICT);
        int64_t stale = next[1] - 1;
        cr_expect_eq(kafka_from_store(log, "t", &r, next[1] + 3, &stale, err, sizeof err),
                     ULOG_ECONFLICT);
        cr_expect_neq(strstr(err, "something else appends"), NULL, "%s", err);
        expect_gappy(log);

        ulog_close(log);
        delete_heads(root, "t", PARTS, false);
        log = open_at(root, NULL);
        if (enc)
            cr_assert_eq(ulog_key_add(log, "t", 3, key, sizeof key), 0);
        expect_gappy(log);
        cr_expect_eq(ulog_verify(log, "t", NULL, NULL, NULL), 0);
        ulog_close(log);
    }
}

/* A position Kafka no longer has (its retention passed it, or the topic is
 * a new one): the mirror stops with ULOG_EOFFSET and stores nothing
 * in that partition, rather than jump to another offset and leave messages
 * out. */
Test(kafka, from_kafka_stops_where_kafka_no_longer_has_its_position, .timeout = 120)
{
    cluster c;
    cluster_start(&c, "kshort");
    ulog *log = open_log();
    for (int i = 0; i < 40; i++) {
        ulog_record r = { .value = "x", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = 0 };
        append_ok(log, "t", &r, 1);
    }
    produce_kafka(&c, "kshort", 0, 9);
    volatile int stop = 0;
    int64_t n = -1;
    char err[512] = "";
    int rc = kafka_from_run(log, "t", c.brokers, "kshort", QUIET, &stop, 3000, &n, err,
                            sizeof err);
    cr_expect_eq(rc, ULOG_EOFFSET, "%s: %s", ulog_errname(rc), err);
    cr_expect_neq(strstr(err, "no longer has offset 40"), NULL, "%s", err);
    int64_t lo, hi;
    watermarks(log, "t", 0, &lo, &hi);
    cr_expect_eq(hi, 40);
    ulog_close(log);
    cluster_stop(&c);
}

/* Not a target, a figure for the notes: records/s shipped to the mock
 * cluster against local appends of the same records, in the same run. */
Test(kafka, throughput_next_to_local_appends, .timeout = 120)
{
    cluster c;
    cluster_start(&c, "kt");
    ulog *log = open_log();
    enum { N = 20000, B = 100 };
    static ulog_record r[B];
    static char keys[B][16], vals[B][32];
    static ulog_header hd[B][2];
    int64_t t0 = mono_ns();
    for (int i = 0; i < N; i += B) {
        for (int k = 0; k < B; k++) {
            record(i + k, &r[k], keys[k], vals[k], hd[k]);
            r[k].partition = 0;
        }
        append_ok(log, "t", r, B);
    }
    double local = N / ((double)(mono_ns() - t0) / 1e9);
    kafka_to *m;
    char err[512] = "";
    t0 = mono_ns();
    int rc = kafka_to_start(log, "t", c.brokers, "kt", "mirror", QUIET, err, sizeof err, &m);
    cr_assert_eq(rc, 0, "%s", err);
    wait_count(m, N);
    double mirrored = N / ((double)(mono_ns() - t0) / 1e9);
    cr_assert_eq(kafka_to_stop(m), 0);
    cr_log_info("mirror to Kafka (mock cluster, batches of %d): %.0f records/s; local appends "
                "of the same batches (flush.policy none): %.0f records/s (%.3fx)", B, mirrored,
                local, mirrored / local);
    ulog_close(log);
    cluster_stop(&c);
}
