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

/* What the ulog topic's settings say about the records appended to it. */
typedef struct dest {
    bool    log_append_time;
    int64_t key_id;             /* encryption.key.id; -1: plain */
} dest;

static int read_dest(ulog *log, const char *topic, dest *d)
{
    ulog_config *cfg;
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    int rc = ulog_topic_describe(log, topic, &info, &cfg);
    if (rc)
        return rc;
    char v[32];
    rc = ulog_config_get(cfg, "message.timestamp.type", v, sizeof v);
    d->log_append_time = rc == 0 && strcmp(v, "LogAppendTime") == 0;
    if (!rc)
        rc = ulog_config_get(cfg, "encryption.key.id", v, sizeof v);
    d->key_id = rc ? -1 : strtoll(v, NULL, 10);
    ulog_config_free(cfg);
    return rc;
}

/* Record r (Kafka's message at offset m_off) stored at the end of one batch
 * that covers every offset from `at` (the ulog partition's end) to m_off:
 * the Kafka topic has no messages in between (compaction took them, or
 * they were transaction markers or aborted), and a batch compaction
 * rewrote looks the same. ulog_append_raw stores it, so offsets stay
 * Kafka's. The record is encoded as ulog_append would (sealed on an
 * encrypted topic), then given its offset delta. */
static int append_across_gap(ulog *log, const char *topic, ulog_record *r, int64_t at,
                             int64_t m_off, char *err, size_t errlen)
{
    int64_t now = ulog__now_ms(), max_ts;
    uint8_t key[ULOG_KEY_BYTES], *sealed = NULL;
    dest dd, *d = &dd;
    int rc = read_dest(log, topic, d);
    if (rc) {
        say(err, errlen, "ulog topic %s: %s", topic, ulog_strerror(rc));
        return rc;
    }
    if (d->key_id >= 0 && r->value) {
        if (!ulog__key_copy(log, topic, (uint32_t)d->key_id, key)) {
            say(err, errlen, "topic %s: no key %lld to seal with (-k)", topic,
                (long long)d->key_id);
            return ULOG_ENOKEY;
        }
        rc = r->value_len > INT32_MAX - ULOG_SEAL_OVERHEAD ? ULOG_ETOOBIG
             : !(sealed = malloc(r->value_len + ULOG_SEAL_OVERHEAD)) ? ULOG_ENOMEM : 0;
        if (rc) {
            ulog__wipe(key, sizeof key);
            say(err, errlen, "Kafka %d@%lld: %s", (int)r->partition, (long long)m_off,
                ulog_strerror(rc));
            return rc;
        }
        ulog__seal(key, topic, r->partition, (uint32_t)d->key_id, r, sealed);
        ulog__wipe(key, sizeof key);
    }
    /* The caller's record stays as it was. */
    ulog_record one_rec = *r;
    if (sealed) {
        one_rec.value = sealed;
        one_rec.value_len += ULOG_SEAL_OVERHEAD;
    }
    ulog__batch_src src = { .recs = &one_rec, .idx = NULL, .n = 1 };
    size_t cap = ulog__batch_bound(&src);
    int64_t gap = m_off - at;
    /* Room for the record's offset delta, which grows from 1 byte to at
     * most 10, and its length, which may grow by 1. */
    uint8_t *one = cap <= INT32_MAX ? malloc(cap) : NULL, *b = one ? malloc(cap + 12) : NULL;
    size_t len = b ? ulog__batch_encode(one, cap, &src, now, d->log_append_time, &max_ts) : 0;
    rc = len ? 0 : cap > INT32_MAX ? ULOG_ETOOBIG : ULOG_ENOMEM;
    if (rc)
        say(err, errlen, "Kafka %d@%lld: %s", (int)r->partition, (long long)m_off,
            ulog_strerror(rc));
    if (!rc) {
        /* The encoded record: length, attributes, timestamp delta, offset
         * delta 0, then the rest, which is kept. */
        ulog__batch_hdr h;
        ulog__batch_parse_header(one, len, &h);
        const uint8_t *p = one + ULOG__BATCH_HEADER_SIZE, *end = one + len;
        int64_t rlen, tsd, od;
        p += ulog__varint_get(p, end, &rlen);
        p += 1;
        p += ulog__varint_get(p, end, &tsd);
        p += ulog__varint_get(p, end, &od);
        size_t tail = (size_t)(end - p);
        int64_t body = 1 + (int64_t)ulog__varint_len(tsd) + (int64_t)ulog__varint_len(gap) +
                       (int64_t)tail;
        uint8_t *w = b + ULOG__BATCH_HEADER_SIZE;
        w += ulog__varint_put(w, body);
        *w++ = 0;
        w += ulog__varint_put(w, tsd);
        w += ulog__varint_put(w, gap);
        memcpy(w, p, tail);
        w += tail;
        h.base_offset = at;
        h.last_offset_delta = (int32_t)gap;
        ulog__batch_seal(b, (size_t)(w - b), &h);
        rc = ulog_append_raw(log, topic, r->partition, at, b, (size_t)(w - b));
        if (rc) {
            char e[256];
            ulog_errmsg(log, e, sizeof e);
            say(err, errlen, "storing Kafka %d@%lld after the gap from %lld: %s",
                (int)r->partition, (long long)m_off, (long long)at, e);
        }
    }
    free(one);
    free(b);
    free(sealed);
    return rc;
}

/* Record m, at Kafka offset `offset`, lies past *next, the ulog partition's end: the first message
 * of a partition never written starts it at m's offset (Kafka's log start
 * moved past 0, or its first offsets went to compaction); otherwise the
 * offsets between go into m's batch (append_across_gap), which can span at
 * most INT32_MAX of them. */
static int before_gap(ulog *log, const char *topic, const ulog_record *m, int64_t offset,
                      int64_t *next, char *err, size_t errlen)
{
    if (*next == 0) {
        int rc = ulog_partition_start_at(log, topic, m->partition, offset);
        if (rc) {
            char e[256];
            ulog_errmsg(log, e, sizeof e);
            say(err, errlen, "starting partition %d at Kafka's offset %lld: %s",
                (int)m->partition, (long long)offset, e);
            return rc;
        }
        *next = offset;
        return 0;
    }
    if (offset - *next > INT32_MAX - 1) {
        say(err, errlen, "Kafka partition %d skips from offset %lld to %lld: more than one "
            "batch can span", (int)m->partition, (long long)*next, (long long)offset);
        return ULOG_EOFFSET;
    }
    return 0;
}

int kafka_from_store(ulog *log, const char *topic, ulog_record *r, int64_t offset,
                     int64_t *next, char *err, size_t errlen)
{
    int rc = 0;
    if (offset < *next) {
        say(err, errlen, "Kafka %d@%lld: below the partition's end, %lld", (int)r->partition,
            (long long)offset, (long long)*next);
        return ULOG_EINVAL;
    }
    /* Only at the end the mirror left: if another writer moved it, nothing
     * is appended (a record at the wrong offset would make a restart skip
     * messages it never stored), and no partition is started afresh (its
     * records would go). */
    int64_t lo, hi;
    if ((rc = ulog_watermarks(log, topic, r->partition, &lo, &hi)) != 0) {
        say(err, errlen, "ulog topic %s partition %d: %s", topic, (int)r->partition,
            ulog_strerror(rc));
        return rc;
    }
    if (hi != *next) {
        say(err, errlen, "Kafka %d@%lld: topic %s partition %d ends at %lld, not %lld: "
            "something else appends to it", (int)r->partition, (long long)offset, topic,
            (int)r->partition, (long long)hi, (long long)*next);
        return ULOG_ECONFLICT;
    }
    if (offset > *next && (rc = before_gap(log, topic, r, offset, next, err, errlen)) != 0)
        return rc;
    if (offset > *next) {
        rc = append_across_gap(log, topic, r, *next, offset, err, errlen);
    } else if ((rc = ulog_append(log, topic, r, 1)) != 0) {
        char e[256];
        ulog_errmsg(log, e, sizeof e);
        say(err, errlen, "appending Kafka %d@%lld: %s", (int)r->partition, (long long)offset,
            e);
    } else if (r->offset != offset) {
        say(err, errlen, "Kafka %d@%lld went to offset %lld: something else appends to "
            "topic %s", (int)r->partition, (long long)offset, (long long)r->offset, topic);
        rc = ULOG_ECONFLICT;
    }
    if (!rc)
        *next = offset + 1;
    return rc;
}

/* One Kafka message into the ulog topic (kafka_from_store), its headers
 * taken out of librdkafka's list. */
static int store_message(ulog *log, const char *topic, const rd_kafka_message_t *m,
                         int64_t *next, char *err, size_t errlen)
{
    rd_kafka_headers_t *hs = NULL;
    ulog_header *hd = NULL;
    size_t nh = 0;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
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
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    ulog_record r = { .key = m->key, .key_len = m->key ? m->key_len : 0,
                      .value = m->payload, .value_len = m->payload ? m->len : 0,
                      .headers = nh ? hd : NULL, .header_count = nh,
                      .timestamp = ts >= 0 ? ts : ULOG_TIMESTAMP_NOW,
                      .partition = m->partition };
    int rc = kafka_from_store(log, topic, &r, m->offset, next, err, errlen);
    free(hd);
    return rc;
}

int kafka_from_run(ulog *log, const char *topic, const char *brokers, const char *ktopic,
                   const char *const *extra, volatile int *stop, int idle_ms, int64_t *count,
                   char *err, size_t errlen)
{
    static const char *const settings[] = {
        "group.id=ulog-mirror", "enable.auto.commit=false", "enable.partition.eof=false",
        /* An offset Kafka no longer has is an error, not a silent jump. */
        "auto.offset.reset=error", NULL
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
        /* A partition never written starts where Kafka's begins. */
        rd_kafka_topic_partition_list_add(parts, ktopic, p)->offset =
            next[p] == 0 ? RD_KAFKA_OFFSET_BEGINNING : next[p];
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
            } else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                say(err, errlen, "Kafka topic %s partition %d no longer has offset %lld, "
                    "where the mirror goes on (retention deleted it before it was mirrored, "
                    "or the topic is another one): %s", ktopic, (int)m->partition,
                    (long long)(m->partition >= 0 && m->partition < n ? next[m->partition]
                                                                      : -1),
                    rd_kafka_message_errstr(m));
                rc = ULOG_EOFFSET;
            }
        } else if (m->partition < 0 || m->partition >= n || m->offset < next[m->partition]) {
            /* Delivered again: stored already. */
        } else if ((rc = store_message(log, topic, m, &next[m->partition], err,
                                       errlen)) == 0) {
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
