/*
 * kafka_mirror.c -- ulog to Apache Kafka and back, through librdkafka (see
 * kafka_mirror.h for what each direction guarantees).
 *
 * The batches the hook hands over are decoded with the library's own
 * decoder (lib/internal.h, as `ulog dump` does): they were verified when
 * read, so every record decodes.
 */
#include "kafka_mirror.h"

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void say(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* A librdkafka configuration: the given settings, then `extra`. */
static rd_kafka_conf_t *make_conf(const char *brokers, const char *const *settings,
                                  const char *const *extra, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[256];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof e) != RD_KAFKA_CONF_OK)
        goto bad;
    for (int pass = 0; pass < 2; pass++)
        for (const char *const *s = pass ? extra : settings; s && *s; s++) {
            char name[128];
            const char *eq = strchr(*s, '=');
            if (!eq || (size_t)(eq - *s) >= sizeof name) {
                snprintf(e, sizeof e, "%s: not name=value", *s);
                goto bad;
            }
            memcpy(name, *s, (size_t)(eq - *s));
            name[eq - *s] = '\0';
            if (rd_kafka_conf_set(conf, name, eq + 1, e, sizeof e) != RD_KAFKA_CONF_OK)
                goto bad;
        }
    return conf;
bad:
    say(err, errlen, "librdkafka configuration: %s", e);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ================================================================ to Kafka */

struct kafka_to {
    ulog_hook  *hook;
    rd_kafka_t *rk;
    char       *ktopic;
    int64_t     count;         /* (a) records acknowledged by Kafka */
    int         failed;        /* delivery reports with an error, this batch */
    /* The records of a batch Kafka took before one failed (their reports
     * come in order: one partition, idempotent producer), so that the batch,
     * shipped again, does not produce them again. */
    int32_t     done_part;
    int64_t     done_base;
    int32_t     done;
};

/* Delivery reports, served by rd_kafka_poll() in the hook's thread. */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka_to *k = opaque;
    if (m->err) {
        k->failed++;
    } else {
        __atomic_add_fetch(&k->count, 1, __ATOMIC_RELAXED);
        if (!k->failed)
            k->done++;
    }
}

/* One record of the batch to Kafka; 0 or -1. */
static int produce(kafka_to *k, int32_t partition, const ulog__rec *r, int64_t ts)
{
    rd_kafka_headers_t *hs = NULL;
    if (r->header_count) {
        hs = rd_kafka_headers_new(r->header_count);
        for (size_t i = 0; i < r->header_count; i++) {
            ulog_header h;
            if (ulog__rec_header(r, i, &h) != 0) {
                rd_kafka_headers_destroy(hs);
                return -1;
            }
            rd_kafka_header_add(hs, h.key, (ssize_t)h.key_len, h.value,
                                h.value ? (ssize_t)h.value_len : 0);
        }
    }
    for (;;) {
        /* A NULL key or value is a null one in Kafka too; an empty one
         * keeps its (non-NULL) pointer. */
        rd_kafka_resp_err_t e = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(k->ktopic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(r->key, r->key_len), RD_KAFKA_V_VALUE((void *)r->value, r->value_len),
            RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;               /* the headers are librdkafka's now */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (hs)
                rd_kafka_headers_destroy(hs);
            return -1;
        }
        rd_kafka_poll(k->rk, 100);
    }
}

/* The hook's callback: every record of the batch, acknowledged by Kafka. */
static int ship_to_kafka(const ulog_batch *b, void *arg)
{
    kafka_to *k = arg;
    ulog__batch_hdr bh;
    if (ulog__batch_parse_header(b->data, b->len, &bh) != 0)
        return -1;
    const uint8_t *p = (const uint8_t *)b->data + ULOG__BATCH_HEADER_SIZE;
    const uint8_t *end = (const uint8_t *)b->data + b->len;
    /* The same batch again after a failure: skip what Kafka took. */
    int32_t skip = k->done_part == b->partition && k->done_base == b->base_offset ? k->done : 0;
    k->done_part = b->partition;
    k->done_base = b->base_offset;
    k->done = skip;
    k->failed = 0;
    int rc = 0;
    for (int32_t i = 0; i < bh.record_count && rc == 0; i++) {
        ulog__rec r;
        if (ulog__rec_decode(p, end, &r) != 0)
            return -1;
        int64_t ts = (bh.attributes & ULOG__ATTR_LOG_APPEND_TIME)
                         ? bh.max_timestamp
                         : (int64_t)((uint64_t)bh.base_timestamp + (uint64_t)r.timestamp_delta);
        if (i >= skip && (rc = produce(k, b->partition, &r, ts)) != 0)
            k->failed++;        /* nothing after it may count as taken */
        p = r.end;
    }
    /* Until Kafka has answered for each record (the producer retries a
     * broker that is down until message.timeout.ms). */
    while (rd_kafka_outq_len(k->rk) > 0)
        rd_kafka_poll(k->rk, 50);
    if (rc == 0 && k->failed == 0) {
        k->done_part = -1;
        return 0;
    }
    return -1;
}

int kafka_to_start(ulog *log, const char *topic, const char *brokers, const char *ktopic,
                   const char *name, const char *const *extra, char *err, size_t errlen,
                   kafka_to **out)
{
    static const char *const settings[] = {
        "enable.idempotence=true", "linger.ms=2", NULL
    };
    kafka_to *k = calloc(1, sizeof *k);
    if (k)
        k->done_part = -1;
    if (!k || !(k->ktopic = strdup(ktopic))) {
        free(k);
        return ULOG_ENOMEM;
    }
    rd_kafka_conf_t *conf = make_conf(brokers, settings, extra, err, errlen);
    if (!conf) {
        free(k->ktopic);
        free(k);
        return ULOG_EINVAL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    rd_kafka_conf_set_opaque(conf, k);
    char e[512];
    if (!(k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e))) {
        say(err, errlen, "librdkafka producer: %s", e);
        rd_kafka_conf_destroy(conf);
        free(k->ktopic);
        free(k);
        return ULOG_EINVAL;
    }
    int rc = ulog_hook_start(log, topic, name, 0, ship_to_kafka, k, &k->hook);
    if (rc) {
        ulog_errmsg(log, e, sizeof e);
        say(err, errlen, "the replication hook: %s", e);
        rd_kafka_destroy(k->rk);
        free(k->ktopic);
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int64_t kafka_to_count(const kafka_to *k)
{
    return __atomic_load_n(&k->count, __ATOMIC_RELAXED);
}

int kafka_to_stop(kafka_to *k)
{
    if (!k)
        return 0;
    int rc = ulog_hook_stop(k->hook);
    rd_kafka_flush(k->rk, 10000);
    rd_kafka_destroy(k->rk);
    free(k->ktopic);
    free(k);
    return rc;
}

/* ================================================================ from Kafka */

/* The Kafka topic's partition count, from its metadata. */
static int kafka_partitions(rd_kafka_t *rk, const char *ktopic, char *err, size_t errlen)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, ktopic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    for (int tries = 0; tries < 50 && n < 0; tries++) {
        if (rd_kafka_metadata(rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
    }
    rd_kafka_topic_destroy(t);
    if (n < 0)
        say(err, errlen, "Kafka topic %s: no metadata", ktopic);
    return n;
}

/* One Kafka message into the ulog topic, at its offset. */
static int append_message(ulog *log, const char *topic, const rd_kafka_message_t *m,
                          char *err, size_t errlen)
{
    /* Only at its offset: if another writer moved the end, nothing is
     * appended (a record at the wrong offset would make a restart skip
     * messages it never stored). */
    int64_t lo, hi;
    int rc = ulog_watermarks(log, topic, m->partition, &lo, &hi);
    if (!rc && hi != m->offset) {
        say(err, errlen, "Kafka %d@%lld: topic %s partition %d ends at %lld: something else "
            "appends to it", (int)m->partition, (long long)m->offset, topic, (int)m->partition,
            (long long)hi);
        return ULOG_ECONFLICT;
    }
    rd_kafka_headers_t *hs = NULL;
    ulog_header *hd = NULL;
    size_t nh = 0;
    if (!rc && rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t cnt = rd_kafka_header_cnt(hs);
        const char *name;
        const void *val;
        size_t size;
        if (cnt && !(hd = malloc(cnt * sizeof *hd)))
            return ULOG_ENOMEM;
        while (nh < cnt && rd_kafka_header_get_all(hs, nh, &name, &val, &size) ==
                               RD_KAFKA_RESP_ERR_NO_ERROR) {
            hd[nh] = (ulog_header){ name, strlen(name), val, val ? size : 0 };
            nh++;
        }
    }
    if (rc) {
        free(hd);
        return rc;
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    ulog_record r = { .key = m->key, .key_len = m->key ? m->key_len : 0,
                      .value = m->payload, .value_len = m->payload ? m->len : 0,
                      .headers = nh ? hd : NULL, .header_count = nh,
                      .timestamp = ts >= 0 ? ts : ULOG_TIMESTAMP_NOW,
                      .partition = m->partition };
    rc = ulog_append(log, topic, &r, 1);
    free(hd);
    if (rc) {
        char e[256];
        ulog_errmsg(log, e, sizeof e);
        say(err, errlen, "appending Kafka %d@%lld: %s", (int)m->partition,
            (long long)m->offset, e);
        return rc;
    }
    if (r.offset != m->offset) {
        say(err, errlen, "Kafka %d@%lld went to offset %lld: something else appends to "
            "topic %s", (int)m->partition, (long long)m->offset, (long long)r.offset, topic);
        return ULOG_ECONFLICT;
    }
    return 0;
}

int kafka_from_run(ulog *log, const char *topic, const char *brokers, const char *ktopic,
                   const char *const *extra, volatile int *stop, int idle_ms, int64_t *count,
                   char *err, size_t errlen)
{
    static const char *const settings[] = {
        "group.id=ulog-mirror", "enable.auto.commit=false", "enable.partition.eof=false",
        NULL
    };
    *count = 0;
    rd_kafka_conf_t *conf = make_conf(brokers, settings, extra, err, errlen);
    if (!conf)
        return ULOG_EINVAL;
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) {
        say(err, errlen, "librdkafka consumer: %s", e);
        rd_kafka_conf_destroy(conf);
        return ULOG_EINVAL;
    }
    int rc = 0;
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    int n = kafka_partitions(rk, ktopic, err, errlen);
    if (n < 0)
        rc = ULOG_ENOENT;
    else if ((rc = ulog_topic_describe(log, topic, &info, NULL)) != 0)
        say(err, errlen, "ulog topic %s: %s", topic, ulog_strerror(rc));
    else if (info.partitions < n) {
        say(err, errlen, "ulog topic %s has %d partitions, Kafka topic %s %d", topic,
            (int)info.partitions, ktopic, n);
        rc = ULOG_EINVAL;
    }
    int64_t *next = rc ? NULL : calloc((size_t)n, sizeof *next);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    /* From where each ulog partition ends: its offsets are Kafka's. */
    for (int p = 0; next && p < n && !rc; p++) {
        int64_t lo;
        rc = ulog_watermarks(log, topic, p, &lo, &next[p]);
        rd_kafka_topic_partition_list_add(parts, ktopic, p)->offset = next[p];
    }
    if (!rc && !next)
        rc = ULOG_ENOMEM;
    if (!rc && rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        say(err, errlen, "assigning Kafka topic %s", ktopic);
        rc = ULOG_EIO;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    int64_t idle_since = ulog__mono_ms();
    while (!rc && !*stop && (idle_ms < 0 || ulog__mono_ms() - idle_since < idle_ms)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            /* Brokers going away and coming back are the client's to
             * retry; only a fatal error ends the mirror. */
            if (rd_kafka_fatal_error(rk, e, sizeof e) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                say(err, errlen, "Kafka: %s", e);
                rc = ULOG_EIO;
            }
        } else if (m->partition < 0 || m->partition >= n || m->offset < next[m->partition]) {
            /* Delivered again: stored already. */
        } else if (m->offset > next[m->partition]) {
            say(err, errlen, "Kafka topic %s partition %d skips from offset %lld to %lld "
                "(compaction or transactions): its offsets cannot be kept", ktopic,
                (int)m->partition, (long long)next[m->partition], (long long)m->offset);
            rc = ULOG_EOFFSET;
        } else if ((rc = append_message(log, topic, m, err, errlen)) == 0) {
            next[m->partition]++;
            (*count)++;
            idle_since = ulog__mono_ms();
        }
        rd_kafka_message_destroy(m);
    }
    free(next);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
