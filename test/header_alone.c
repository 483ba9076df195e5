/*
 * header_alone.c -- proves that <ulog.h> stands on its own.
 *
 * `make check` compiles this file (never links or runs it) as C99 with
 * -pedantic and as C++11, with warnings as errors. It includes nothing but
 * the public header, so the header must pull in what it uses itself, and it
 * touches enough of the declarations that a syntax slip, a missing extern
 * "C", or a duplicated error code shows up here.
 *
 * Copyright (c) 2026 the ulog authors. MIT licence, see COPYING.
 */
#include <ulog.h>

/* The version macros are usable in #if and agree with each other. */
#if ULOG_VERSION_NUMBER != \
    ULOG_VERSION_MAJOR * 10000 + ULOG_VERSION_MINOR * 100 + ULOG_VERSION_PATCH
#error "ULOG_VERSION_NUMBER disagrees with ULOG_VERSION_MAJOR/MINOR/PATCH"
#endif

/* A negative array size fails the compile: a poor man's static assert that
 * works in C99 and C++11 alike. */
typedef char header_alone_ok_codes_negative[(ULOG_EINVAL < 0 && ULOG_ELIMIT < 0) ? 1 : -1];
typedef char header_alone_ok_any_partition[(ULOG_PARTITION_ANY == -1) ? 1 : -1];

#ifdef __cplusplus
extern "C" {
#endif
int header_alone_error_class(int err);
int header_alone_use(const char *dir);
#ifdef __cplusplus
}
#endif

/* Duplicate case labels do not compile, so this also checks that the error
 * codes are distinct. */
int header_alone_error_class(int err)
{
    switch (err) {
    case ULOG_OK:
        return 0;
    case ULOG_EINVAL:
    case ULOG_ENOENT:
    case ULOG_EEXIST:
    case ULOG_EOFFSET:
    case ULOG_ETOOBIG:
        return 1;                               /* the caller's mistake */
    case ULOG_ETIMEDOUT:
        return 2;                               /* try again */
    case ULOG_ECORRUPT:
    case ULOG_EIO:
    case ULOG_ENOSPC:
    case ULOG_ENOMEM:
    case ULOG_EVERSION:
    case ULOG_ENOTSUP:
    case ULOG_EACCES:
    case ULOG_EPOISONED:
    case ULOG_ELIMIT:
        return 3;                               /* the environment */
    case ULOG_ECONFLICT:
    case ULOG_EAUTH:
        return 4;                               /* another log's bytes */
    default:
        return -1;
    }
}

static int header_alone_ship(const ulog_batch *batch, void *arg)
{
    static const uint8_t key[ULOG_MAC_KEY_BYTES] = { 1 };
    uint8_t mac[ULOG_MAC_BYTES];
    (void)arg;
    if (ulog_batch_mac(key, "events", batch->partition, batch->base_offset, batch->data,
                       batch->len, mac) != 0)
        return -1;
    return ulog_batch_mac_verify(key, "events", batch->partition, batch->base_offset,
                                 batch->data, batch->len, mac);
}

/* Opens a log, appends one record with a header, reads it back. Compiled
 * only: the point is that each call and struct is declared as used. */
int header_alone_use(const char *dir)
{
    ulog *log = NULL;
    ulog_sub *sub = NULL;
    ulog_config *cfg = ulog_config_new();
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    ulog_partition_info pinfo = ULOG_PARTITION_INFO_INIT;
    ulog_header hdr;
    ulog_record rec;
    ulog_msg msg;
    ulog_batch batch = ULOG_BATCH_INIT;
    char errbuf[128];
    int64_t low = 0, high = 0;
    int rc;

    if (cfg == NULL)
        return ULOG_ENOMEM;
    rc = ulog_config_set(cfg, "auto.offset.reset", "earliest", errbuf, sizeof errbuf);
    if (rc == 0)
        rc = ulog_open(dir, NULL, &log);
    if (rc == 0)
        rc = ulog_topic_create(log, "events", 1, NULL);

    hdr.key = "trace";
    hdr.key_len = 5;
    hdr.value = "abc";
    hdr.value_len = 3;
    rec.key = "k";
    rec.key_len = 1;
    rec.value = "v";
    rec.value_len = 1;
    rec.headers = &hdr;
    rec.header_count = 1;
    rec.timestamp = ULOG_TIMESTAMP_NOW;
    rec.partition = ULOG_PARTITION_ANY;
    rec.offset = -1;
    if (rc == 0)
        rc = ulog_append(log, "events", &rec, 1);
    if (rc == 0)
        rc = ulog_watermarks(log, "events", rec.partition, &low, &high);
    if (rc == 0)
        rc = ulog_topic_describe(log, "events", &info, NULL);
    if (rc == 0)
        rc = ulog_partition_describe(log, "events", 0, &pinfo);
    if (rc == 0)
        rc = ulog_subscribe(log, "events", NULL, cfg, &sub);
    if (rc == 0)
        rc = ulog_seek(sub, ULOG_PARTITION_ANY, low);
    if (rc == 0)
        rc = ulog_poll(sub, 100, &msg);
    if (rc == 0 && msg.header_count > 0)
        rc = ulog_msg_header(&msg, 0, &hdr);
    if (rc == 0)
        rc = ulog_seek(sub, ULOG_PARTITION_ANY, low);
    if (rc == 0)
        rc = ulog_poll_batch(sub, 100, &batch);
    if (rc == 0)
        rc = ulog_append_raw(log, "events", batch.partition, batch.base_offset, batch.data,
                             batch.len);
    if (rc == 0) {
        ulog_hook *hook = NULL;
        rc = ulog_hook_start(log, "events", "replica", ULOG_HOOK_ACKS, header_alone_ship, NULL,
                             &hook);
        if (rc == 0)
            rc = ulog_hook_stop(hook);
    }
    if (rc != 0 && log != NULL)
        (void)ulog_errmsg(log, errbuf, sizeof errbuf);

    ulog_sub_close(sub);
    ulog_close(log);
    ulog_config_free(cfg);
    (void)ulog_strerror(rc);
    (void)ulog_errname(rc);
    return rc;
}
