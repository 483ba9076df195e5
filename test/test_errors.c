/* test_errors.c -- bad input gets a clear error code and changes nothing. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* base/ holds the log root base/r, so that a name escaping the root by one
 * or two levels would still show up inside base/. */
static char base[256];
static char root[300];
static ulog *log_;

static void setup(void)
{
    make_tmpdir(base, sizeof base, "errors");
    snprintf(root, sizeof root, "%s/r", base);
    log_ = open_with_topic(root, NULL, "t", 4,
                           cfg_of("flush.policy", "none", "max.message.bytes", "1000", NULL));
    ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1, .partition = 0 };
    cr_assert_eq(ulog_append(log_, "t", &r, 1), 0);
}

static void teardown(void)
{
    ulog_close(log_);
    log_ = NULL;
    if (base[0])
        rm_rf(base);
}

TestSuite(errors, .init = setup, .fini = teardown);

static const char *last_msg(void)
{
    static char msg[512];
    ulog_errmsg(log_, msg, sizeof msg);
    return msg;
}

/* Names in a directory, sorted and joined with spaces. */
static void listing(const char *dir, char *out, size_t n)
{
    char *names[64];
    int k = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        cr_assert_lt(k, 64);
        names[k++] = strdup(de->d_name);
    }
    closedir(d);
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        if (i)
            strncat(out, " ", n - strlen(out) - 1);
        strncat(out, names[i], n - strlen(out) - 1);
        free(names[i]);
    }
}

typedef struct state {
    int64_t high[4];
    int64_t bytes[4];
    char    base_ls[512], root_ls[512], topics_ls[512];
} state;

static void snapshot(state *s)
{
    for (int p = 0; p < 4; p++) {
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log_, "t", p, &pi), 0);
        s->high[p] = pi.high;
        s->bytes[p] = pi.bytes;
    }
    char d[400];
    listing(base, s->base_ls, sizeof s->base_ls);
    listing(root, s->root_ls, sizeof s->root_ls);
    snprintf(d, sizeof d, "%s/topics", root);
    listing(d, s->topics_ls, sizeof s->topics_ls);
}

static void unchanged(const state *before, const char *what)
{
    state now;
    snapshot(&now);
    for (int p = 0; p < 4; p++) {
        cr_assert_eq(now.high[p], before->high[p], "%s: partition %d high moved", what, p);
        cr_assert_eq(now.bytes[p], before->bytes[p], "%s: partition %d bytes moved", what, p);
    }
    cr_assert_str_eq(now.base_ls, before->base_ls, "%s: created something next to the root",
                     what);
    cr_assert_str_eq(now.root_ls, before->root_ls, "%s: created something in the root", what);
    cr_assert_str_eq(now.topics_ls, before->topics_ls, "%s: created a topic directory", what);
}

/* ------------------------------------------------ NULL everywhere */

Test(errors, null_handles_and_pointers)
{
    state s0;
    snapshot(&s0);
    ulog *l = (ulog *)1;
    ulog_sub *sub = (ulog_sub *)1;
    ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1, .partition = 0 };
    ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    ulog_strlist *list = (ulog_strlist *)1;
    ulog_msg m;
    ulog_header h;
    int64_t a, b;
    char buf[64];

    /* No-ops. */
    ulog_close(NULL);
    ulog_sub_close(NULL);
    ulog_config_free(NULL);
    ulog_strlist_free(NULL);

    cr_assert_eq(ulog_open(NULL, NULL, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_open("", NULL, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_open(root, NULL, NULL), ULOG_EINVAL);
    (void)buf;

    cr_assert_eq(ulog_topic_create(NULL, "x", 1, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_topic_create(log_, NULL, 1, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_topic_list(NULL, &list), ULOG_EINVAL);
    cr_assert_eq(ulog_topic_list(log_, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_topic_describe(NULL, "t", &ti, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_topic_describe(log_, NULL, &ti, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_topic_describe(log_, "t", NULL, NULL), ULOG_EINVAL);
    ulog_topic_info small = { 0, 0, 0 };
    cr_assert_eq(ulog_topic_describe(log_, "t", &small, NULL), ULOG_EINVAL,
                 "struct_size 0 must be refused");
    cr_assert_eq(ulog_partition_describe(NULL, "t", 0, &pi), ULOG_EINVAL);
    cr_assert_eq(ulog_partition_describe(log_, NULL, 0, &pi), ULOG_EINVAL);
    cr_assert_eq(ulog_partition_describe(log_, "t", 0, NULL), ULOG_EINVAL);
    ulog_partition_info psmall = ULOG_PARTITION_INFO_INIT;
    psmall.struct_size = 0;
    cr_assert_eq(ulog_partition_describe(log_, "t", 0, &psmall), ULOG_EINVAL);
    /* 0.1's struct (up to `bytes`) is still accepted; the fields since are
     * not written. */
    ulog_partition_info p01 = ULOG_PARTITION_INFO_INIT;
    p01.struct_size = offsetof(ulog_partition_info, bytes) + sizeof p01.bytes;
    p01.reclaimed = p01.cleaned_ms = -42;
    cr_assert_eq(ulog_partition_describe(log_, "t", 0, &p01), 0);
    cr_expect_eq(p01.reclaimed, -42);
    cr_expect_eq(p01.cleaned_ms, -42);
    p01.struct_size -= 1;
    cr_assert_eq(ulog_partition_describe(log_, "t", 0, &p01), ULOG_EINVAL);

    cr_assert_eq(ulog_strlist_count(NULL), 0);
    cr_assert_null(ulog_strlist_get(NULL, 0));

    cr_assert_eq(ulog_append(NULL, "t", &r, 1), ULOG_EINVAL);
    cr_assert_eq(ulog_append(log_, NULL, &r, 1), ULOG_EINVAL);
    cr_assert_eq(ulog_append(log_, "t", NULL, 1), ULOG_EINVAL);
    cr_assert_eq(ulog_append(log_, "t", &r, 0), ULOG_EINVAL);
    cr_assert_eq(ulog_watermarks(NULL, "t", 0, &a, &b), ULOG_EINVAL);
    cr_assert_eq(ulog_watermarks(log_, NULL, 0, &a, &b), ULOG_EINVAL);
    cr_assert_eq(ulog_watermarks(log_, "t", 0, NULL, &b), ULOG_EINVAL);
    cr_assert_eq(ulog_watermarks(log_, "t", 0, &a, NULL), ULOG_EINVAL);

    cr_assert_eq(ulog_subscribe(NULL, "t", NULL, NULL, &sub), ULOG_EINVAL);
    cr_assert_eq(ulog_subscribe(log_, NULL, NULL, NULL, &sub), ULOG_EINVAL);
    cr_assert_eq(ulog_subscribe(log_, "t", NULL, NULL, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_poll(NULL, 0, &m), ULOG_EINVAL);
    cr_assert_eq(ulog_seek(NULL, 0, 0), ULOG_EINVAL);
    cr_assert_eq(ulog_seek_time(NULL, 0, 0), ULOG_EINVAL);
    cr_assert_eq(ulog_position(NULL, 0, &a), ULOG_EINVAL);
    cr_assert_eq(ulog_commit(NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_sub_fd(NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_msg_header(NULL, 0, &h), ULOG_EINVAL);

    /* With a live subscription, NULL out-pointers. */
    sub = sub_earliest(log_, "t");
    cr_assert_eq(ulog_poll(sub, 0, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_position(sub, 0, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_poll(sub, 0, &m), 0);
    cr_assert_eq(ulog_msg_header(&m, 0, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_msg_header(&m, 0, &h), ULOG_EINVAL, "no headers: index 0 is out of range");
    cr_assert_eq(ulog_commit(sub), ULOG_EINVAL, "commit without a group");
    ulog_sub_close(sub);

    ulog_config *cfg = ulog_config_new();
    cr_assert_eq(ulog_config_set(NULL, "flush.policy", "none", buf, sizeof buf), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set(cfg, NULL, "none", buf, sizeof buf), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set(cfg, "flush.policy", NULL, buf, sizeof buf), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set_int(NULL, "segment.bytes", 4096, NULL, 0), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set_int(cfg, NULL, 4096, NULL, 0), ULOG_EINVAL);
    cr_assert_eq(ulog_config_get(NULL, "flush.policy", buf, sizeof buf), ULOG_EINVAL);
    cr_assert_eq(ulog_config_get(cfg, NULL, buf, sizeof buf), ULOG_EINVAL);
    cr_assert_eq(ulog_config_get(cfg, "flush.policy", NULL, 8), ULOG_EINVAL);
    cr_assert_eq(ulog_config_get(cfg, "flush.policy", buf, sizeof buf), ULOG_ENOENT,
                 "nothing was set");
    ulog_config_free(cfg);

    unchanged(&s0, "NULL arguments");
}

/* ------------------------------------------------ topics and partitions */

Test(errors, unknown_topic)
{
    state s0;
    snapshot(&s0);
    ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1,
                      .partition = ULOG_PARTITION_ANY };
    int64_t a, b;
    ulog_sub *sub = (ulog_sub *)1;
    ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_append(log_, "nope", &r, 1), ULOG_ENOENT);
    cr_assert_eq(ulog_watermarks(log_, "nope", 0, &a, &b), ULOG_ENOENT);
    cr_assert_eq(ulog_subscribe(log_, "nope", NULL, NULL, &sub), ULOG_ENOENT);
    cr_assert_null(sub, "*out is cleared on failure");
    cr_assert_eq(ulog_topic_describe(log_, "nope", &ti, NULL), ULOG_ENOENT);
    cr_assert_eq(ulog_partition_describe(log_, "nope", 0, &pi), ULOG_ENOENT);
    cr_assert_neq(strstr(last_msg(), "nope"), NULL, "errmsg names the topic: \"%s\"",
                  last_msg());
    unchanged(&s0, "unknown topic");
}

Test(errors, bad_partition)
{
    state s0;
    snapshot(&s0);
    int64_t a, b;
    static const int32_t bad[] = { 4, 5, -2, -100, INT32_MAX, INT32_MIN };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ulog_record r[2] = {
            { .value = "ok", .value_len = 2, .timestamp = 1, .partition = 0 },
            { .value = "v", .value_len = 1, .timestamp = 1, .partition = bad[i] },
        };
        cr_assert_eq(ulog_append(log_, "t", r, 2), ULOG_EINVAL, "partition %d", (int)bad[i]);
        cr_assert_eq(ulog_watermarks(log_, "t", bad[i], &a, &b), ULOG_EINVAL);
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_partition_describe(log_, "t", bad[i], &pi), ULOG_EINVAL);
    }
    ulog_sub *sub;
    cr_assert_eq(ulog_subscribe(log_, "t", NULL, NULL, &sub), 0);
    int64_t pos;
    cr_assert_eq(ulog_position(sub, 0, &pos), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(ulog_seek(sub, bad[i], 0), ULOG_EINVAL);
        cr_assert_eq(ulog_seek_time(sub, bad[i], 0), ULOG_EINVAL);
        cr_assert_eq(ulog_position(sub, bad[i], &a), ULOG_EINVAL);
    }
    cr_assert_eq(ulog_position(sub, ULOG_PARTITION_ANY, &a), ULOG_EINVAL,
                 "a position is per partition");
    cr_assert_eq(ulog_position(sub, 0, &a), 0);
    cr_assert_eq(a, pos, "failed seeks moved the position");
    ulog_sub_close(sub);
    unchanged(&s0, "bad partition");
}

Test(errors, partition_count)
{
    state s0;
    snapshot(&s0);
    static const int32_t bad[] = { 0, -1, 10001, INT32_MAX, INT32_MIN };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(ulog_topic_create(log_, "p", bad[i], NULL), ULOG_EINVAL, "%d partitions",
                     (int)bad[i]);
    unchanged(&s0, "bad partition counts");
    ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
    cr_assert_eq(ulog_topic_describe(log_, "p", &ti, NULL), ULOG_ENOENT);
}

Test(errors, hostile_topic_names)
{
    char n250[251], n249[250];
    memset(n250, 'a', 250);
    n250[250] = 0;
    memset(n249, 'b', 249);
    n249[249] = 0;
    const char *bad[] = {
        "../x", "../../x", "a/b", "/abs", "./x", ".", "..", "", n250,
        "a\nb", "a\x01" "b", "\x7f", "tab\there", "sp ace", "caf\xc3\xa9", "a\\b", "a:b",
        "x*", "%s%n", "\xff",
    };
    state s0;
    snapshot(&s0);
    ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1, .partition = 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t a, b;
        ulog_sub *sub = NULL;
        ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        cr_assert_eq(ulog_topic_create(log_, bad[i], 1, NULL), ULOG_EINVAL, "create #%zu", i);
        cr_assert_eq(ulog_append(log_, bad[i], &r, 1), ULOG_EINVAL, "append #%zu", i);
        cr_assert_eq(ulog_watermarks(log_, bad[i], 0, &a, &b), ULOG_EINVAL, "watermarks #%zu", i);
        cr_assert_eq(ulog_subscribe(log_, bad[i], NULL, NULL, &sub), ULOG_EINVAL,
                     "subscribe #%zu", i);
        cr_assert_eq(ulog_topic_describe(log_, bad[i], &ti, NULL), ULOG_EINVAL,
                     "describe #%zu", i);
        cr_assert_eq(ulog_partition_describe(log_, bad[i], 0, &pi), ULOG_EINVAL,
                     "partition_describe #%zu", i);
    }
    unchanged(&s0, "hostile topic names");
    ulog_strlist *list;
    cr_assert_eq(ulog_topic_list(log_, &list), 0);
    cr_assert_eq(ulog_strlist_count(list), 1);
    cr_assert_str_eq(ulog_strlist_get(list, 0), "t");
    ulog_strlist_free(list);

    /* The limits themselves are fine: 249 bytes, dots that are not . or .. */
    cr_assert_eq(ulog_topic_create(log_, n249, 1, NULL), 0);
    cr_assert_eq(ulog_topic_create(log_, "...", 1, NULL), 0);
    cr_assert_eq(ulog_topic_create(log_, ".a", 1, NULL), 0);
    cr_assert_eq(ulog_topic_create(log_, "A-z_0.9", 1, NULL), 0);
}

Test(errors, existing_topic)
{
    ulog_config *c = cfg_of("segment.bytes", "8192", NULL);
    cr_assert_eq(ulog_topic_create(log_, "t", 4, NULL), ULOG_EEXIST);
    cr_assert_eq(ulog_topic_create(log_, "t", 2, c), ULOG_EEXIST);
    ulog_config_free(c);
    ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
    ulog_config *out = NULL;
    cr_assert_eq(ulog_topic_describe(log_, "t", &ti, &out), 0);
    cr_assert_eq(ti.partitions, 4);
    char v[32];
    cr_assert_eq(ulog_config_get(out, "segment.bytes", v, sizeof v), 0);
    cr_assert_str_eq(v, "1073741824", "the existing topic's config changed");
    cr_assert_eq(ulog_config_get(out, "max.message.bytes", v, sizeof v), 0);
    cr_assert_str_eq(v, "1000");
    ulog_config_free(out);
    int64_t a, b;
    cr_assert_eq(ulog_watermarks(log_, "t", 0, &a, &b), 0);
    cr_assert_eq(b, 1);
}

/* ------------------------------------------------ records */

Test(errors, bad_records_change_nothing)
{
    state s0;
    snapshot(&s0);
    ulog_header nullkey = { NULL, 0, "v", 1 };
    ulog_header nullkey_len = { NULL, 3, "v", 1 };
    ulog_header nullval_len = { "k", 1, NULL, 4 };
    ulog_record good = { .key = "k", .key_len = 1, .value = "v", .value_len = 1,
                         .timestamp = 5, .partition = 1 };
    struct {
        const char *what;
        ulog_record r;
    } bad[] = {
        { "timestamp -2", { .value = "v", .value_len = 1, .timestamp = -2 } },
        { "timestamp INT64_MIN+1", { .value = "v", .value_len = 1, .timestamp = INT64_MIN + 1 } },
        { "NULL key, key_len 3", { .key = NULL, .key_len = 3, .value = "v", .value_len = 1,
                                   .timestamp = 1 } },
        { "NULL value, value_len 3", { .value = NULL, .value_len = 3, .timestamp = 1 } },
        { "NULL headers, header_count 1", { .value = "v", .value_len = 1, .headers = NULL,
                                            .header_count = 1, .timestamp = 1 } },
        { "header with a NULL key", { .value = "v", .value_len = 1, .headers = &nullkey,
                                      .header_count = 1, .timestamp = 1 } },
        { "header with a NULL key and a length", { .value = "v", .value_len = 1,
                                                   .headers = &nullkey_len, .header_count = 1,
                                                   .timestamp = 1 } },
        { "header with a NULL value and a length", { .value = "v", .value_len = 1,
                                                     .headers = &nullval_len, .header_count = 1,
                                                     .timestamp = 1 } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int32_t part = ULOG_PARTITION_ANY; part < 4; part++) {
            /* Alone, and after good records for other partitions. */
            ulog_record r[3] = { good, good, bad[i].r };
            r[0].partition = 2;
            r[2].partition = part;
            cr_assert_eq(ulog_append(log_, "t", &r[2], 1), ULOG_EINVAL, "%s (partition %d)",
                         bad[i].what, (int)part);
            cr_assert_eq(ulog_append(log_, "t", r, 3), ULOG_EINVAL, "%s in a batch",
                         bad[i].what);
        }
        unchanged(&s0, bad[i].what);
    }
}

/* ulog.h: a negative timestamp other than ULOG_TIMESTAMP_NOW is refused,
 * -1 (Kafka's old "no timestamp") and INT64_MIN + 1 included, and nothing is
 * appended. */
Test(errors, negative_timestamp_refused)
{
    static const int64_t bad[] = { -1, -2, INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        state s0;
        snapshot(&s0);
        ulog_record r = { .value = "v", .value_len = 1, .timestamp = bad[i], .partition = 3 };
        int rc = ulog_append(log_, "t", &r, 1);
        cr_assert_eq(rc, ULOG_EINVAL, "timestamp %lld: got %s", (long long)bad[i],
                     ulog_errname(rc));
        unchanged(&s0, "negative timestamp");
    }
}

Test(errors, too_big_changes_nothing)
{
    state s0;
    snapshot(&s0);
    static uint8_t big[2000];
    ulog_record r = { .value = big, .value_len = sizeof big, .timestamp = 1, .partition = 0 };
    cr_assert_eq(ulog_append(log_, "t", &r, 1), ULOG_ETOOBIG);
    ulog_header h = { "k", 1, big, sizeof big };
    ulog_record rh = { .value = "v", .value_len = 1, .headers = &h, .header_count = 1,
                       .timestamp = 1, .partition = 1 };
    cr_assert_eq(ulog_append(log_, "t", &rh, 1), ULOG_ETOOBIG, "a big header counts");
    ulog_record rk = { .key = big, .key_len = sizeof big, .value = "v", .value_len = 1,
                       .timestamp = 1, .partition = ULOG_PARTITION_ANY };
    cr_assert_eq(ulog_append(log_, "t", &rk, 1), ULOG_ETOOBIG, "a big key counts");
    ulog_record pair[2] = {
        { .value = "v", .value_len = 1, .timestamp = 1, .partition = 2 },
        { .value = big, .value_len = sizeof big, .timestamp = 1, .partition = 3 },
    };
    cr_assert_eq(ulog_append(log_, "t", pair, 2), ULOG_ETOOBIG);
    unchanged(&s0, "too big");
    cr_assert_neq(strstr(last_msg(), "max.message.bytes"), NULL, "errmsg: \"%s\"", last_msg());
}

Test(errors, too_many_records)
{
    state s0;
    snapshot(&s0);
    size_t n = (1u << 20) + 1;
    ulog_record *r = calloc(n, sizeof *r);   /* untouched pages: cheap */
    cr_assert_not_null(r);
    cr_assert_eq(ulog_append(log_, "t", r, n), ULOG_EINVAL, "more than 2^20 records");
    free(r);
    unchanged(&s0, "too many records");
}

/* ------------------------------------------------ configs */

Test(errors, config_scope)
{
    state s0;
    snapshot(&s0);
    /* A subscription setting for a topic. */
    ulog_config *c = cfg_of("auto.offset.reset", "earliest", NULL);
    cr_assert_eq(ulog_topic_create(log_, "x", 1, c), ULOG_EINVAL);
    cr_assert_neq(strstr(last_msg(), "auto.offset.reset"), NULL, "errmsg: \"%s\"", last_msg());
    ulog_config_free(c);
    /* A log setting for a topic. */
    c = cfg_of("index.flush.ms", "50", NULL);
    cr_assert_eq(ulog_topic_create(log_, "x", 1, c), ULOG_EINVAL);
    cr_assert_neq(strstr(last_msg(), "index.flush.ms"), NULL, "errmsg: \"%s\"", last_msg());
    ulog_config_free(c);
    /* A topic setting for a subscription. */
    c = cfg_of("segment.bytes", "4096", NULL);
    ulog_sub *sub = (ulog_sub *)1;
    cr_assert_eq(ulog_subscribe(log_, "t", NULL, c, &sub), ULOG_EINVAL);
    cr_assert_null(sub);
    cr_assert_neq(strstr(last_msg(), "segment.bytes"), NULL, "errmsg: \"%s\"", last_msg());
    ulog_config_free(c);
    c = cfg_of("file.mode", "0600", NULL);
    cr_assert_eq(ulog_subscribe(log_, "t", NULL, c, &sub), ULOG_EINVAL);
    cr_assert_neq(strstr(last_msg(), "file.mode"), NULL, "errmsg: \"%s\"", last_msg());
    ulog_config_free(c);
    unchanged(&s0, "config scope");

    /* A topic or subscription setting for the log: refused, nothing made. */
    char other[400];
    snprintf(other, sizeof other, "%s/other", base);
    const char *names[] = { "flush.policy", "auto.offset.reset" };
    const char *vals[] = { "none", "earliest" };
    for (int i = 0; i < 2; i++) {
        c = cfg_of(names[i], vals[i], NULL);
        ulog *l = (ulog *)1;
        cr_assert_eq(ulog_open(other, c, &l), ULOG_EINVAL, "%s passed to ulog_open", names[i]);
        cr_assert_null(l, "*out is cleared on failure");
        ulog_config_free(c);
        struct stat st;
        cr_assert_eq(stat(other, &st), -1, "ulog_open made %s despite a bad config", other);
    }
}

Test(errors, unknown_config_name)
{
    ulog_config *c = ulog_config_new();
    char err[256] = "";
    cr_assert_eq(ulog_config_set(c, "no.such.setting", "1", err, sizeof err), ULOG_EINVAL);
    cr_assert_neq(strstr(err, "no.such.setting"), NULL, "errbuf: \"%s\"", err);
    cr_assert_eq(ulog_config_set_int(c, "segment.byte", 4096, err, sizeof err), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set(c, "", "1", err, sizeof err), ULOG_EINVAL);
    cr_assert_eq(ulog_config_set(c, "Segment.Bytes", "4096", err, sizeof err), ULOG_EINVAL);
    char v[32];
    cr_assert_eq(ulog_config_get(c, "no.such.setting", v, sizeof v), ULOG_ENOENT);
    /* A failed set leaves the config as it was: still usable, still empty. */
    cr_assert_eq(ulog_topic_create(log_, "cfg", 1, c), 0);
    ulog_config_free(c);
}

/* ------------------------------------------------ opening */

Test(errors, open_regular_file)
{
    char path[400];
    snprintf(path, sizeof path, "%s/file", base);
    int fd = open(path, O_CREAT | O_WRONLY, 0640);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "data", 4), 4);
    close(fd);
    ulog *l = (ulog *)1;
    int rc = ulog_open(path, NULL, &l);
    cr_assert_lt(rc, 0, "ulog_open on a regular file must fail");
    cr_assert_null(l);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_size, 4, "the file was changed");
    /* Below a regular file, too. */
    char below[500];
    snprintf(below, sizeof below, "%s/sub", path);
    l = (ulog *)1;
    cr_assert_lt(ulog_open(below, NULL, &l), 0);
    cr_assert_null(l);
}

/* ------------------------------------------------ groups */

Test(errors, groups)
{
    state s0;
    snapshot(&s0);
    /* A group subscription reads the group's offsets; it stores nothing. */
    ulog_sub *sub = NULL;
    cr_assert_eq(ulog_subscribe(log_, "t", "g1", NULL, &sub), 0);
    cr_assert_not_null(sub);
    ulog_sub_close(sub);
    const char *bad[] = { "", "../g", "a/b", ".", "..", "g\n", "g h" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sub = (ulog_sub *)1;
        cr_assert_eq(ulog_subscribe(log_, "t", bad[i], NULL, &sub), ULOG_EINVAL, "group #%zu",
                     i);
        cr_assert_null(sub);
    }
    unchanged(&s0, "groups");
}

/* ------------------------------------------------ error names */

Test(errors, names_and_messages)
{
#define E(x) { x, #x }
    static const struct {
        int code;
        const char *name;
    } codes[] = {
        E(ULOG_OK), E(ULOG_EINVAL), E(ULOG_ENOENT), E(ULOG_EEXIST), E(ULOG_ETIMEDOUT),
        E(ULOG_EOFFSET), E(ULOG_ETOOBIG), E(ULOG_ECORRUPT), E(ULOG_EIO), E(ULOG_ENOSPC),
        E(ULOG_ENOMEM), E(ULOG_EVERSION), E(ULOG_ENOTSUP), E(ULOG_EACCES), E(ULOG_EPOISONED),
        E(ULOG_ELIMIT), E(ULOG_ECONFLICT), E(ULOG_EAUTH), E(ULOG_ENOKEY),
    };
#undef E
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(codes[i].code, -(int)i, "codes are 0, -1, -2, ... without gaps");
        const char *name = ulog_errname(codes[i].code);
        const char *msg = ulog_strerror(codes[i].code);
        cr_assert_not_null(name);
        cr_assert_not_null(msg);
        cr_assert_str_eq(name, codes[i].name);
        cr_assert_gt(strlen(msg), 0);
        for (size_t j = 0; j < i; j++) {
            cr_assert_str_neq(name, ulog_errname(codes[j].code));
            cr_assert_str_neq(msg, ulog_strerror(codes[j].code), "%s and %s share a message",
                              codes[i].name, codes[j].name);
        }
    }
    static const int unknown[] = { 1, 42, -19, -1000, INT32_MIN, INT32_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_assert_str_eq(ulog_errname(unknown[i]), "ULOG_UNKNOWN");
        const char *msg = ulog_strerror(unknown[i]);
        cr_assert_not_null(msg);
        for (size_t j = 0; j < n; j++)
            cr_assert_str_neq(msg, ulog_strerror(codes[j].code));
    }
}

/* ------------------------------------------------ filesystems */

Test(errors, network_filesystems)
{
    static const struct {
        int64_t magic;
        bool network;
        const char *name;
    } fs[] = {
        { 0x6969, true, "NFS" },
        { 0xFF534D42, true, "CIFS" },
        { 0x01021997, true, "9P" },
        { 0x65735546, true, "FUSE" },
        { 0x517B, true, "SMB" },
        { 0xFE534D42, true, "SMB2" },
        /* statfs' f_type is a signed long: CIFS's magic may arrive negative. */
        { (int64_t)(int32_t)0xFF534D42, true, "CIFS, sign-extended" },
        { 0xEF53, false, "ext4" },
        { 0x01021994, false, "tmpfs" },
        { 0x58465342, false, "xfs" },
        { 0x9123683E, false, "btrfs" },
        { 0x794C7630, false, "overlayfs" },
        { 0, false, "zero" },
    };
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        cr_assert_eq(ulog__fs_is_network(fs[i].magic), fs[i].network, "%s", fs[i].name);
}

/* The detail of a failure is the calling thread's, like errno: a failed
 * ulog_open leaves it for ulog_errmsg(NULL), another thread's failure on
 * the same handle does not overwrite it, and another handle sees none. */
static void *fail_in_thread(void *arg)
{
    (void)arg;
    ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1, .partition = 99 };
    return (void *)(intptr_t)ulog_append(log_, "t", &r, 1);
}

Test(errors, messages_are_per_thread)
{
    char file[320], buf[512];
    snprintf(file, sizeof file, "%s/plain-file", base);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    ulog *l = (ulog *)1;
    cr_assert_neq(ulog_open(file, NULL, &l), 0);
    cr_assert_null(l);
    size_t n = ulog_errmsg(NULL, buf, sizeof buf);
    cr_assert_gt(n, 0, "a failed ulog_open leaves its detail");
    cr_assert_not_null(strstr(buf, "plain-file"), "detail: %s", buf);

    ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1, .partition = 0 };
    cr_assert_eq(ulog_append(log_, "nosuch", &r, 1), ULOG_ENOENT);
    cr_assert_not_null(strstr(last_msg(), "nosuch"), "detail: %s", last_msg());
    pthread_t t;
    void *rv;
    cr_assert_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, &rv), 0);
    cr_assert_eq((int)(intptr_t)rv, ULOG_EINVAL);
    cr_assert_not_null(strstr(last_msg(), "nosuch"),
                       "another thread's failure overwrote this one's: %s", last_msg());

    ulog *other = open_at(root, NULL);
    cr_assert_eq(ulog_errmsg(other, buf, sizeof buf), 0, "another handle's message: %s", buf);
    ulog_close(other);
}
