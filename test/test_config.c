/* test_config.c -- settings by name: validation, scopes, defaults, and the
 * topic config text stored in LMDB. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static ulog_config *cfg;
static char err[256];

static void setup(void)
{
    cfg = ulog_config_new();
    cr_assert_not_null(cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    ulog_config_free(cfg);
}

TestSuite(config, .init = setup, .fini = teardown);

static void expect_ok(const char *name, const char *value, const char *canon)
{
    char buf[64];

    cr_expect_eq(ulog_config_set(cfg, name, value, err, sizeof err), 0,
                 "%s=%s rejected: %s", name, value, err);
    cr_expect_eq(ulog_config_get(cfg, name, buf, sizeof buf), 0);
    cr_expect_str_eq(buf, canon, "%s=%s reads back as %s", name, value, buf);
}

static void expect_bad(const char *name, const char *value)
{
    char before[64], after[64];
    int had = ulog_config_get(cfg, name, before, sizeof before);

    err[0] = '\0';
    cr_expect_eq(ulog_config_set(cfg, name, value, err, sizeof err), ULOG_EINVAL,
                 "%s=\"%s\" accepted", name, value);
    cr_expect_neq(err[0], '\0', "no message for %s=\"%s\"", name, value);
    cr_expect_eq(ulog_config_get(cfg, name, after, sizeof after), had,
                 "%s changed by a failed set", name);
    if (had == 0)
        cr_expect_str_eq(after, before);
}

/* Integer settings: bounds, one past them, and junk. */
static const struct {
    const char *name, *min, *max, *below, *above;
} ints[] = {
    { "index.flush.ms", "1", "60000", "0", "60001" },
    { "segment.bytes", "4096", "1073741824", "4095", "1073741825" },
    { "max.message.bytes", "64", "1073741823", "63", "1073741824" },
    { "flush.ms", "1", "3600000", "0", "3600001" },
    { "index.interval.bytes", "512", "16777216", "511", "16777217" },
    { "retention.check.ms", "100", "86400000", "99", "86400001" },
    { "segment.ms", "1", "4611686018427387904", "0", "4611686018427387905" },
    { "delete.retention.ms", "0", "4611686018427387904", "-1", "4611686018427387905" },
    { "min.compaction.lag.ms", "0", "4611686018427387904", "-1", "4611686018427387905" },
};

/* Settings where -1 means "unlimited": -1 is their minimum, nothing below. */
static const struct {
    const char *name, *max, *above;
} unlimited[] = {
    { "retention.ms", "4611686018427387904", "4611686018427387905" },
    { "retention.bytes", "4611686018427387904", "4611686018427387905" },
};

static const char *junk[] = {
    "", " ", " 100", "100 ", "1e3", "0x100", "+100", "-1", "100k", "abc",
    "99999999999999999999", "9223372036854775808", "1.5", "1,000", "\t1",
};

Test(config, integers)
{
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        expect_ok(ints[i].name, ints[i].min, ints[i].min);
        expect_ok(ints[i].name, ints[i].max, ints[i].max);
        expect_bad(ints[i].name, ints[i].below);
        expect_bad(ints[i].name, ints[i].above);
        for (size_t j = 0; j < sizeof junk / sizeof junk[0]; j++)
            expect_bad(ints[i].name, junk[j]);
    }
    static const char *not_minus_one[] = { "-2", "-0", "--1", "-1 ", " -1", "-01", "-" };
    for (size_t i = 0; i < sizeof unlimited / sizeof unlimited[0]; i++) {
        expect_ok(unlimited[i].name, "-1", "-1");
        expect_ok(unlimited[i].name, "0", "0");
        expect_ok(unlimited[i].name, unlimited[i].max, unlimited[i].max);
        expect_bad(unlimited[i].name, unlimited[i].above);
        for (size_t j = 0; j < sizeof not_minus_one / sizeof not_minus_one[0]; j++)
            expect_bad(unlimited[i].name, not_minus_one[j]);
        for (size_t j = 0; j < sizeof junk / sizeof junk[0]; j++)
            if (strcmp(junk[j], "-1") != 0)
                expect_bad(unlimited[i].name, junk[j]);
        cr_expect_eq(ulog_config_set_int(cfg, unlimited[i].name, -1, err, sizeof err), 0);
        cr_expect_eq(ulog_config_set_int(cfg, unlimited[i].name, -2, err, sizeof err),
                     ULOG_EINVAL);
    }
}

Test(config, integer_message)
{
    ulog_config_set(cfg, "segment.bytes", "12", err, sizeof err);
    cr_expect_str_eq(err, "segment.bytes: must be an integer from 4096 to 1073741824");
}

Test(config, leading_zeros_are_decimal)
{
    expect_ok("flush.ms", "0100", "100");
}

Test(config, set_int)
{
    char buf[32];

    cr_expect_eq(ulog_config_set_int(cfg, "segment.bytes", 4096, err, sizeof err), 0);
    cr_expect_eq(ulog_config_get(cfg, "segment.bytes", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "4096");
    cr_expect_eq(ulog_config_set_int(cfg, "segment.bytes", 4095, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(cfg, "segment.bytes", -4096, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(cfg, "segment.bytes", INT64_MIN, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(cfg, "segment.bytes", INT64_MAX, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(cfg, "segment.bytes", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "4096", "failed set_int left the value alone");

    cr_expect_eq(ulog_config_set_int(cfg, "file.mode", 0600, err, sizeof err), 0);
    cr_expect_eq(ulog_config_get(cfg, "file.mode", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "0600");
    cr_expect_eq(ulog_config_set_int(cfg, "dir.mode", 0755, err, sizeof err), 0);
    cr_expect_eq(ulog_config_get(cfg, "dir.mode", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "0755");
    cr_expect_eq(ulog_config_set_int(cfg, "file.mode", 01600, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(cfg, "file.mode", -1, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(cfg, "dir.mode", 0600, err, sizeof err), ULOG_EINVAL);

    /* Enum settings take names, not their internal numbers. */
    cr_expect_eq(ulog_config_set_int(cfg, "flush.policy", 0, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(cfg, "flush.policy", buf, sizeof buf), ULOG_ENOENT);
    cr_expect_eq(ulog_config_set_int(cfg, "no.such", 1, err, sizeof err), ULOG_EINVAL);
}

Test(config, modes)
{
    expect_ok("file.mode", "0640", "0640");
    expect_ok("file.mode", "0600", "0600");
    expect_ok("file.mode", "0777", "0777");
    expect_ok("file.mode", "644", "0644");
    expect_ok("dir.mode", "0700", "0700");
    expect_ok("dir.mode", "0750", "0750");
    expect_ok("dir.mode", "00777", "0777");

    static const char *bad_file[] = {
        "0400", "0200", "0000", "0", "0477", "01640", "1000", "0778", "0648",
        "0o640", "0x1a0", "", " 0640", "0640 ", "-0640", "rw-r-----",
    };
    for (size_t i = 0; i < sizeof bad_file / sizeof bad_file[0]; i++)
        expect_bad("file.mode", bad_file[i]);
    static const char *bad_dir[] = { "0600", "0640", "0500", "0300", "02750", "0800" };
    for (size_t i = 0; i < sizeof bad_dir / sizeof bad_dir[0]; i++)
        expect_bad("dir.mode", bad_dir[i]);
}

Test(config, enums)
{
    expect_ok("flush.policy", "none", "none");
    expect_ok("flush.policy", "interval", "interval");
    expect_ok("flush.policy", "always", "always");
    expect_ok("message.timestamp.type", "CreateTime", "CreateTime");
    expect_ok("message.timestamp.type", "LogAppendTime", "LogAppendTime");
    expect_ok("auto.offset.reset", "earliest", "earliest");
    expect_ok("auto.offset.reset", "latest", "latest");
    expect_ok("auto.offset.reset", "none", "none");

    static const struct { const char *name, *value; } bad[] = {
        { "flush.policy", "" }, { "flush.policy", "Always" }, { "flush.policy", "always " },
        { "flush.policy", "0" }, { "flush.policy", "2" }, { "flush.policy", "never" },
        { "message.timestamp.type", "createtime" }, { "message.timestamp.type", "Create" },
        { "auto.offset.reset", "smallest" }, { "auto.offset.reset", "EARLIEST" },
        { "auto.offset.reset", "error" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(bad[i].name, bad[i].value);

    ulog_config_set(cfg, "flush.policy", "x", err, sizeof err);
    cr_expect_str_eq(err, "flush.policy: must be one of none, interval, always");
}

Test(config, unknown_names)
{
    static const char *names[] = {
        "", "segment", "Segment.bytes", "segment.bytes ", "retention.msec",
        "segment.bytes\n", "file_mode", "auto.offset.reset.x",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        err[0] = '\0';
        cr_expect_eq(ulog_config_set(cfg, names[i], "1", err, sizeof err), ULOG_EINVAL);
        cr_expect_neq(err[0], '\0');
    }
    cr_expect_eq(ulog_config_get(cfg, "retention.msec", err, sizeof err), ULOG_ENOENT);
    cr_expect_eq(ulog_config_get(cfg, "retention.ms", err, sizeof err), ULOG_ENOENT,
                 "a known name that was not set");
}

Test(config, null_arguments)
{
    char buf[16];

    cr_expect_eq(ulog_config_set(NULL, "flush.ms", "1", err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set(cfg, NULL, "1", err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set(cfg, "flush.ms", NULL, err, sizeof err), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(NULL, "flush.ms", 1, NULL, 0), ULOG_EINVAL);
    /* No errbuf is fine, and a zero length must not be written to. */
    cr_expect_eq(ulog_config_set(cfg, "flush.ms", "0", NULL, 0), ULOG_EINVAL);
    err[0] = 'Z';
    cr_expect_eq(ulog_config_set(cfg, "flush.ms", "0", err, 0), ULOG_EINVAL);
    cr_expect_eq(err[0], 'Z');
    cr_expect_eq(ulog_config_get(NULL, "flush.ms", buf, sizeof buf), ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(cfg, NULL, buf, sizeof buf), ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(cfg, "flush.ms", NULL, 0), ULOG_EINVAL);
    ulog_config_free(NULL);
}

Test(config, small_errbuf_truncates)
{
    char small[8];

    memset(small, 'X', sizeof small);
    ulog_config_set(cfg, "segment.bytes", "1", small, sizeof small);
    cr_expect_eq(small[7], '\0');
    cr_expect_eq(strncmp(small, "segment", 7), 0);
}

Test(config, get_buffer_size)
{
    char buf[16];

    cr_expect_eq(ulog_config_get(cfg, "flush.ms", buf, sizeof buf), ULOG_ENOENT);
    expect_ok("flush.ms", "3600000", "3600000");
    cr_expect_eq(ulog_config_get(cfg, "flush.ms", buf, 7), ULOG_EINVAL, "no room for NUL");
    cr_expect_eq(ulog_config_get(cfg, "flush.ms", buf, 8), 0);
    cr_expect_str_eq(buf, "3600000");
    expect_ok("flush.ms", "5", "5");   /* overwrite */
}

Test(config, defaults)
{
    ulog__log_cfg lc;
    ulog__topic_cfg tc;
    ulog__sub_cfg sc;

    cr_assert_eq(ulog__config_log(NULL, &lc, err, sizeof err), 0);
    cr_expect_eq(lc.file_mode, 0640);
    cr_expect_eq(lc.dir_mode, 0750);
    cr_expect_eq(lc.index_flush_ms, 100);
    cr_expect_eq(lc.retention_check_ms, 300000);
    cr_assert_eq(ulog__config_topic(cfg, &tc, err, sizeof err), 0);
    cr_expect_eq(tc.retention_ms, -1, "a library deletes nothing unasked");
    cr_expect_eq(tc.retention_bytes, -1);
    cr_expect_eq(tc.segment_ms, 604800000);
    cr_expect_eq(tc.segment_bytes, 1 << 30);
    cr_expect_eq(tc.max_message_bytes, 1048588);
    cr_expect_eq(tc.flush_policy, ULOG__FLUSH_ALWAYS);
    cr_expect_eq(tc.flush_ms, 1000);
    cr_expect_eq(tc.index_interval_bytes, 4096);
    cr_expect_not(tc.log_append_time);
    cr_expect_eq(tc.cleanup_policy, ULOG__CLEANUP_DELETE);
    cr_expect_eq(tc.delete_retention_ms, 86400000, "Kafka's: one day");
    cr_expect_eq(tc.min_compaction_lag_ms, 0);
    cr_expect_eq(tc.min_cleanable_dirty_ppm, 500000, "Kafka's 0.5");
    cr_assert_eq(ulog__config_sub(NULL, &sc, err, sizeof err), 0);
    cr_expect_eq(sc.reset, ULOG__RESET_LATEST);
}

Test(config, scopes_apply)
{
    ulog__log_cfg lc;
    ulog__topic_cfg tc;
    ulog__sub_cfg sc;
    ulog_config *log = ulog_config_new(), *sub = ulog_config_new();

    ulog_config_set(log, "file.mode", "0600", NULL, 0);
    ulog_config_set(log, "dir.mode", "0700", NULL, 0);
    ulog_config_set(log, "index.flush.ms", "7", NULL, 0);
    cr_assert_eq(ulog__config_log(log, &lc, err, sizeof err), 0);
    cr_expect_eq(lc.file_mode, 0600);
    cr_expect_eq(lc.dir_mode, 0700);
    cr_expect_eq(lc.index_flush_ms, 7);

    ulog_config_set(cfg, "segment.bytes", "8192", NULL, 0);
    ulog_config_set(cfg, "max.message.bytes", "100", NULL, 0);
    ulog_config_set(cfg, "flush.policy", "interval", NULL, 0);
    ulog_config_set(cfg, "flush.ms", "50", NULL, 0);
    ulog_config_set(cfg, "index.interval.bytes", "1024", NULL, 0);
    ulog_config_set(cfg, "message.timestamp.type", "LogAppendTime", NULL, 0);
    cr_assert_eq(ulog__config_topic(cfg, &tc, err, sizeof err), 0);
    cr_expect_eq(tc.segment_bytes, 8192);
    cr_expect_eq(tc.max_message_bytes, 100);
    cr_expect_eq(tc.flush_policy, ULOG__FLUSH_INTERVAL);
    cr_expect_eq(tc.flush_ms, 50);
    cr_expect_eq(tc.index_interval_bytes, 1024);
    cr_expect(tc.log_append_time);

    ulog_config_set(sub, "auto.offset.reset", "earliest", NULL, 0);
    cr_assert_eq(ulog__config_sub(sub, &sc, err, sizeof err), 0);
    cr_expect_eq(sc.reset, ULOG__RESET_EARLIEST);
    ulog_config_set(sub, "auto.offset.reset", "none", NULL, 0);
    cr_assert_eq(ulog__config_sub(sub, &sc, err, sizeof err), 0);
    cr_expect_eq(sc.reset, ULOG__RESET_NONE);

    ulog_config_free(log);
    ulog_config_free(sub);
}

Test(config, wrong_scope)
{
    ulog__log_cfg lc = { 1, 2, 3, 4 };
    ulog__topic_cfg tc;
    ulog__sub_cfg sc;

    ulog_config_set(cfg, "segment.bytes", "8192", NULL, 0);
    cr_expect_eq(ulog__config_log(cfg, &lc, err, sizeof err), ULOG_EINVAL);
    cr_expect_str_eq(err, "segment.bytes does not apply to the log");
    cr_expect_eq(lc.file_mode, 1, "output untouched on error");
    cr_expect_eq(ulog__config_sub(cfg, &sc, err, sizeof err), ULOG_EINVAL);
    cr_expect_str_eq(err, "segment.bytes does not apply to a subscription");

    ulog_config *c2 = ulog_config_new();
    ulog_config_set(c2, "auto.offset.reset", "earliest", NULL, 0);
    cr_expect_eq(ulog__config_topic(c2, &tc, err, sizeof err), ULOG_EINVAL);
    cr_expect_str_eq(err, "auto.offset.reset does not apply to a topic");
    ulog_config_set(c2, "file.mode", "0600", NULL, 0);
    cr_expect_eq(ulog__config_sub(c2, &sc, err, sizeof err), ULOG_EINVAL);
    cr_expect_str_eq(err, "file.mode does not apply to a subscription");
    ulog_config_free(c2);

    cr_expect_eq(ulog__config_topic(cfg, NULL, err, sizeof err), ULOG_EINVAL);
}

static ulog__topic_cfg custom(void)
{
    ulog__topic_cfg tc = {
        .segment_bytes = 4096, .max_message_bytes = 64,
        .flush_policy = ULOG__FLUSH_NONE, .flush_ms = 3600000,
        .index_interval_bytes = 16777216, .log_append_time = true,
        .preallocate = true, .retention_ms = 0, .retention_bytes = 4096,
        .segment_ms = 60000, .retention_groups = "billing,audit",
        .cleanup_policy = ULOG__CLEANUP_COMPACT_DELETE, .delete_retention_ms = 0,
        .min_compaction_lag_ms = 4611686018427387904, .min_cleanable_dirty_ppm = 50000,
        .replication_sync = true, .replication_timeout_ms = 1, .encryption_key_id = 7,
    };
    return tc;
}

static void expect_same(const ulog__topic_cfg *a, const ulog__topic_cfg *b)
{
    cr_expect_eq(a->segment_bytes, b->segment_bytes);
    cr_expect_eq(a->max_message_bytes, b->max_message_bytes);
    cr_expect_eq(a->flush_policy, b->flush_policy);
    cr_expect_eq(a->flush_ms, b->flush_ms);
    cr_expect_eq(a->index_interval_bytes, b->index_interval_bytes);
    cr_expect_eq(a->log_append_time, b->log_append_time);
    cr_expect_eq(a->preallocate, b->preallocate);
    cr_expect_eq(a->retention_ms, b->retention_ms);
    cr_expect_eq(a->retention_bytes, b->retention_bytes);
    cr_expect_eq(a->segment_ms, b->segment_ms);
    cr_expect_str_eq(a->retention_groups, b->retention_groups);
    cr_expect_eq(a->cleanup_policy, b->cleanup_policy);
    cr_expect_eq(a->delete_retention_ms, b->delete_retention_ms);
    cr_expect_eq(a->min_compaction_lag_ms, b->min_compaction_lag_ms);
    cr_expect_eq(a->min_cleanable_dirty_ppm, b->min_cleanable_dirty_ppm);
    cr_expect_eq(a->replication_sync, b->replication_sync);
    cr_expect_eq(a->replication_timeout_ms, b->replication_timeout_ms);
    cr_expect_eq(a->encryption_key_id, b->encryption_key_id);
}

Test(config, encode_decode_round_trip)
{
    ulog__topic_cfg in[2], out;
    char *text;
    size_t len;

    cr_assert_eq(ulog__config_topic(NULL, &in[0], NULL, 0), 0);
    in[1] = custom();
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ulog__topic_cfg_encode(&in[i], &text, &len), 0);
        cr_expect_eq(strlen(text), len);
        cr_expect_eq(text[len - 1], '\n');
        cr_assert_eq(ulog__topic_cfg_decode(text, len, &out), 0);
        expect_same(&in[i], &out);
        free(text);
    }
}

Test(config, encode_text)
{
    ulog__topic_cfg tc = custom();
    char *text;
    size_t len;

    cr_assert_eq(ulog__topic_cfg_encode(&tc, &text, &len), 0);
    cr_expect_str_eq(text,
        "segment.bytes=4096\n"
        "max.message.bytes=64\n"
        "flush.policy=none\n"
        "flush.ms=3600000\n"
        "index.interval.bytes=16777216\n"
        "message.timestamp.type=LogAppendTime\n"
        "preallocate=true\n"
        "retention.ms=0\n"
        "retention.bytes=4096\n"
        "segment.ms=60000\n"
        "retention.groups=billing,audit\n"
        "cleanup.policy=compact,delete\n"
        "delete.retention.ms=0\n"
        "min.compaction.lag.ms=4611686018427387904\n"
        "min.cleanable.dirty.ratio=0.05\n"
        "replication.sync=true\n"
        "replication.timeout.ms=1\n"
        "encryption.key.id=7\n");
    free(text);

    /* Settings since 0.2 are left out at their defaults, so that 0.1
     * (which refuses names it does not know) reads topics not using them. */
    cr_assert_eq(ulog__config_topic(NULL, &tc, NULL, 0), 0);
    cr_assert_eq(ulog__topic_cfg_encode(&tc, &text, &len), 0);
    cr_expect_null(strstr(text, "retention"), "%s", text);
    cr_expect_null(strstr(text, "encryption"), "%s", text);
    cr_expect_null(strstr(text, "segment.ms"), "%s", text);
    free(text);
    tc = custom();

    tc.segment_bytes = 1;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
    tc = custom();
    tc.flush_policy = 7;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
    /* Values no setting takes are a caller bug, never stored. */
    tc = custom();
    tc.cleanup_policy = 3;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
    tc = custom();
    tc.delete_retention_ms = -1;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
    tc = custom();
    tc.min_compaction_lag_ms = -1;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
    tc = custom();
    tc.min_cleanable_dirty_ppm = 1000001;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
    tc.min_cleanable_dirty_ppm = -1;
    cr_expect_eq(ulog__topic_cfg_encode(&tc, &text, &len), ULOG_EINVAL);
}

Test(config, decode_fills_absent_with_defaults)
{
    ulog__topic_cfg tc, def;
    const char *t = "flush.ms=5\n";

    cr_assert_eq(ulog__config_topic(NULL, &def, NULL, 0), 0);
    cr_assert_eq(ulog__topic_cfg_decode(t, strlen(t), &tc), 0);
    def.flush_ms = 5;
    expect_same(&tc, &def);
    cr_assert_eq(ulog__topic_cfg_decode("", 0, &tc), 0);
}

Test(config, decode_rejects_junk)
{
    static const char *bad[] = {
        "segment.bytes=4096",                  /* no final newline */
        "segment.bytes=4096\nflush.ms=5",
        "segment.bytes\n",
        "=4096\n",
        "segment.bytes=\n",
        "segment.bytes=4095\n",
        "segment.bytes=abc\n",
        "segment.bytes= 4096\n",
        "segment.bytes =4096\n",
        "segment.bytes=4096\nsegment.bytes=4096\n",   /* duplicate */
        "retention.msec=1000\n",              /* unknown */
        "retention.ms=-2\n",
        "retention.groups=,a\n",
        "retention.groups=a b\n",
        "cleanup.policy=compacted\n",
        "cleanup.policy=compact, delete\n",
        "cleanup.policy=2\n",
        "delete.retention.ms=-1\n",
        "min.compaction.lag.ms=-1\n",
        "min.cleanable.dirty.ratio=1.5\n",
        "min.cleanable.dirty.ratio=0.1234567\n",
        "min.cleanable.dirty.ratio=500000\n",
        "min.cleanable.dirty.ratio=\n",
        "file.mode=0640\n",                    /* not a topic setting */
        "auto.offset.reset=earliest\n",
        "flush.policy=sometimes\n",
        "\n",
        "segment.bytes=4096\r\n",
        "segment.bytes=4096=4096\n",
        "segment.bytes=409600000000000000000000000000000000000\n",
        "a-very-long-name-that-does-not-fit-in-any-buffer-at-all=1\n",
    };
    ulog__topic_cfg tc = custom(), keep = tc;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(ulog__topic_cfg_decode(bad[i], strlen(bad[i]), &tc), ULOG_ECORRUPT,
                     "accepted junk #%zu", i);
    /* A NUL inside the text must not cut a name or value short. */
    static const char nul_name[] = "flush.ms\0x=5\n";
    static const char nul_val[] = "flush.ms=5\0junk\n";
    cr_expect_eq(ulog__topic_cfg_decode(nul_name, sizeof nul_name - 1, &tc), ULOG_ECORRUPT);
    cr_expect_eq(ulog__topic_cfg_decode(nul_val, sizeof nul_val - 1, &tc), ULOG_ECORRUPT);
    /* Only len bytes count: a valid prefix cut mid-line is corrupt. */
    cr_expect_eq(ulog__topic_cfg_decode("flush.ms=5\n", 10, &tc), ULOG_ECORRUPT);
    expect_same(&tc, &keep);
}

Test(config, export)
{
    ulog__topic_cfg tc = custom(), back;
    ulog_config *out;
    char buf[32];

    cr_assert_eq(ulog__topic_cfg_export(&tc, &out), 0);
    cr_expect_eq(ulog_config_get(out, "flush.policy", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "none");
    cr_expect_eq(ulog_config_get(out, "message.timestamp.type", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "LogAppendTime");
    cr_expect_eq(ulog_config_get(out, "file.mode", buf, sizeof buf), ULOG_ENOENT);
    cr_assert_eq(ulog__config_topic(out, &back, err, sizeof err), 0);
    expect_same(&tc, &back);
    ulog_config_free(out);
}

Test(config, preallocate)
{
    ulog_config *c = ulog_config_new();
    char msg[128], buf[16];
    ulog__topic_cfg tc;

    cr_assert_eq(ulog__config_topic(NULL, &tc, msg, sizeof msg), 0);
    cr_expect_eq(tc.preallocate, false, "off unless asked for");
    cr_assert_eq(ulog_config_set(c, "preallocate", "true", msg, sizeof msg), 0);
    cr_assert_eq(ulog__config_topic(c, &tc, msg, sizeof msg), 0);
    cr_expect_eq(tc.preallocate, true);
    cr_expect_eq(ulog_config_set(c, "preallocate", "yes", msg, sizeof msg), ULOG_EINVAL);
    cr_assert_eq(ulog_config_get(c, "preallocate", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "true", "a refused value changes nothing");
    cr_expect_eq(ulog__config_sub(c, &(ulog__sub_cfg){ 0 }, msg, sizeof msg), ULOG_EINVAL,
                 "a topic setting does not apply to a subscription");
    ulog_config_free(c);
}

Test(config, names_lists_what_is_set)
{
    ulog_strlist *l = (ulog_strlist *)1;
    cr_assert_eq(ulog_config_names(NULL, &l), ULOG_EINVAL);
    cr_assert_eq(ulog_config_names(cfg, NULL), ULOG_EINVAL);
    cr_assert_eq(ulog_config_names(cfg, &l), 0);
    cr_assert_eq(ulog_strlist_count(l), 0);
    ulog_strlist_free(l);
    cr_assert_eq(ulog_config_set(cfg, "poll.spin.us", "5", err, sizeof err), 0);
    cr_assert_eq(ulog_config_set(cfg, "segment.bytes", "4096", err, sizeof err), 0);
    cr_assert_eq(ulog_config_names(cfg, &l), 0);
    cr_assert_eq(ulog_strlist_count(l), 2);
    cr_assert_str_eq(ulog_strlist_get(l, 0), "segment.bytes");
    cr_assert_str_eq(ulog_strlist_get(l, 1), "poll.spin.us");
    ulog_strlist_free(l);

    /* A topic's effective config names every topic setting, each readable. */
    ulog__topic_cfg tc;
    ulog_config *all = NULL;
    cr_assert_eq(ulog__config_topic(NULL, &tc, err, sizeof err), 0);
    cr_assert_eq(ulog__topic_cfg_export(&tc, &all), 0);
    cr_assert_eq(ulog_config_names(all, &l), 0);
    cr_assert_eq(ulog_strlist_count(l), 18);
    for (size_t i = 0; i < ulog_strlist_count(l); i++) {
        char v[32];
        cr_assert_eq(ulog_config_get(all, ulog_strlist_get(l, i), v, sizeof v), 0);
    }
    ulog_strlist_free(l);
    ulog_config_free(all);
}

/* ---------------------------------------------------------------- compaction settings */

Test(config, cleanup_policy)
{
    expect_ok("cleanup.policy", "delete", "delete");
    expect_ok("cleanup.policy", "compact", "compact");
    expect_ok("cleanup.policy", "compact,delete", "compact,delete");
    expect_ok("cleanup.policy", "delete,compact", "compact,delete");

    static const char *bad[] = {
        "", "Compact", "DELETE", "compact ", " compact", "compact,", ",compact",
        "compact, delete", "delete, compact", "compact;delete", "compact,compact",
        "delete,delete", "compact,delete,compact", "compact,delete,", "0", "1", "2",
        "none", "compacted",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad("cleanup.policy", bad[i]);
    ulog_config_set(cfg, "cleanup.policy", "x", err, sizeof err);
    cr_expect_str_eq(err, "cleanup.policy: must be delete, compact, or compact,delete "
                     "(delete,compact is the same)");
    cr_expect_eq(ulog_config_set_int(cfg, "cleanup.policy", 1, err, sizeof err), ULOG_EINVAL);

    static const struct {
        const char *value;
        int policy;
        bool deletes, compacts;
    } apply[] = {
        { "delete", ULOG__CLEANUP_DELETE, true, false },
        { "compact", ULOG__CLEANUP_COMPACT, false, true },
        { "compact,delete", ULOG__CLEANUP_COMPACT_DELETE, true, true },
        { "delete,compact", ULOG__CLEANUP_COMPACT_DELETE, true, true },
    };
    for (size_t i = 0; i < sizeof apply / sizeof apply[0]; i++) {
        ulog__topic_cfg tc;
        cr_assert_eq(ulog_config_set(cfg, "cleanup.policy", apply[i].value, err, sizeof err), 0);
        cr_assert_eq(ulog__config_topic(cfg, &tc, err, sizeof err), 0);
        cr_expect_eq(tc.cleanup_policy, apply[i].policy, "%s", apply[i].value);
        cr_expect_eq(ulog__cleanup_deletes(&tc), apply[i].deletes, "%s", apply[i].value);
        cr_expect_eq(ulog__cleanup_compacts(&tc), apply[i].compacts, "%s", apply[i].value);
    }
    ulog__topic_cfg def;
    cr_assert_eq(ulog__config_topic(NULL, &def, err, sizeof err), 0);
    cr_expect(ulog__cleanup_deletes(&def), "the default deletes");
    cr_expect_not(ulog__cleanup_compacts(&def), "and does not compact");
}

Test(config, compaction_times)
{
    ulog__topic_cfg tc;

    expect_ok("delete.retention.ms", "0", "0");
    expect_ok("delete.retention.ms", "3600000", "3600000");
    expect_ok("min.compaction.lag.ms", "0", "0");
    expect_ok("min.compaction.lag.ms", "60000", "60000");
    cr_assert_eq(ulog__config_topic(cfg, &tc, err, sizeof err), 0);
    cr_expect_eq(tc.delete_retention_ms, 3600000);
    cr_expect_eq(tc.min_compaction_lag_ms, 60000);
    cr_expect_eq(ulog_config_set_int(cfg, "delete.retention.ms", 5, err, sizeof err), 0);
    cr_expect_eq(ulog_config_set_int(cfg, "min.compaction.lag.ms", 7, err, sizeof err), 0);
    cr_assert_eq(ulog__config_topic(cfg, &tc, err, sizeof err), 0);
    cr_expect_eq(tc.delete_retention_ms, 5);
    cr_expect_eq(tc.min_compaction_lag_ms, 7);
    cr_expect_eq(ulog_config_set_int(cfg, "delete.retention.ms", -1, err, sizeof err),
                 ULOG_EINVAL, "no \"unlimited\" -1 here");
    cr_expect_eq(ulog_config_set_int(cfg, "min.compaction.lag.ms", -1, err, sizeof err),
                 ULOG_EINVAL);
    ulog_config_set(cfg, "delete.retention.ms", "-1", err, sizeof err);
    cr_expect_str_eq(err, "delete.retention.ms: must be an integer from 0 to 4611686018427387904");
}

/* min.cleanable.dirty.ratio: text in, millionths held, shortest decimal out. */
Test(config, ratio_parsing)
{
    static const struct {
        const char *in, *canon;
        int32_t ppm;
    } ok[] = {
        { "0", "0", 0 }, { "1", "1", 1000000 }, { "0.5", "0.5", 500000 },
        { "0.25", "0.25", 250000 }, { "1.0", "1", 1000000 }, { ".5", "0.5", 500000 },
        { "0.05", "0.05", 50000 }, { "0.123456", "0.123456", 123456 },
        { "0.000001", "0.000001", 1 }, { "0.999999", "0.999999", 999999 },
        { "1.000000", "1", 1000000 }, { "0.500000", "0.5", 500000 }, { "0.0", "0", 0 },
        { "00.5", "0.5", 500000 }, { "01", "1", 1000000 }, { ".000001", "0.000001", 1 },
        { "0.10", "0.1", 100000 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ulog__topic_cfg tc;
        expect_ok("min.cleanable.dirty.ratio", ok[i].in, ok[i].canon);
        cr_assert_eq(ulog__config_topic(cfg, &tc, err, sizeof err), 0);
        cr_expect_eq(tc.min_cleanable_dirty_ppm, ok[i].ppm, "%s", ok[i].in);
    }

    static const char *bad[] = {
        "", ".", "5.", "1.", "0.", "-0", "-0.5", "+0.5", "+1", "0.5e0", "5e-1", "1e0",
        " 0.5", "0.5 ", "0 .5", "0. 5", "0,5", "1.5", "2", "10", "1.000001", "1.1",
        "0.1234567", "0.0000001", "1.0000000", "0.5000000", "0x1", "0..5", "0.5.",
        ".5.5", "abc", "inf", "nan", "99999999999999999999", "0.5\n", "50%", "1/2",
        "9223372036854775807", "00000000000000000002",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad("min.cleanable.dirty.ratio", bad[i]);
    ulog_config_set(cfg, "min.cleanable.dirty.ratio", "2", err, sizeof err);
    cr_expect_str_eq(err, "min.cleanable.dirty.ratio: must be a decimal number from 0 to 1 "
                     "with at most 6 digits after the point, such as 0.5");
}

Test(config, ratio_is_not_an_integer)
{
    char buf[32];

    cr_expect_eq(ulog_config_set_int(cfg, "min.cleanable.dirty.ratio", 1, err, sizeof err),
                 ULOG_EINVAL);
    cr_expect(strstr(err, "min.cleanable.dirty.ratio") && strstr(err, "ulog_config_set"),
              "message: %s", err);
    cr_expect_eq(ulog_config_set_int(cfg, "min.cleanable.dirty.ratio", 0, err, sizeof err),
                 ULOG_EINVAL);
    cr_expect_eq(ulog_config_set_int(cfg, "min.cleanable.dirty.ratio", 500000, err, sizeof err),
                 ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(cfg, "min.cleanable.dirty.ratio", buf, sizeof buf), ULOG_ENOENT);
    expect_ok("min.cleanable.dirty.ratio", "0.5", "0.5");
    cr_expect_eq(ulog_config_set_int(cfg, "min.cleanable.dirty.ratio", 1, err, sizeof err),
                 ULOG_EINVAL);
    cr_expect_eq(ulog_config_get(cfg, "min.cleanable.dirty.ratio", buf, sizeof buf), 0);
    cr_expect_str_eq(buf, "0.5", "a refused set_int left the value alone");
}

/* Every value the library prints reads back as itself, and is the
 * shortest decimal: no trailing zero after the point, "0" and "1" bare. */
Test(config, ratio_prints_shortest_and_reads_back)
{
    ulog__topic_cfg tc;
    cr_assert_eq(ulog__config_topic(NULL, &tc, err, sizeof err), 0);
    for (int32_t ppm = 0; ppm <= 1000000;
         ppm += ppm < 1000 || ppm >= 999000 ? 1 : 997) {
        ulog_config *out;
        char text[32], back[32];
        ulog__topic_cfg again;
        tc.min_cleanable_dirty_ppm = ppm;
        cr_assert_eq(ulog__topic_cfg_export(&tc, &out), 0);
        cr_assert_eq(ulog_config_get(out, "min.cleanable.dirty.ratio", text, sizeof text), 0);
        ulog_config_free(out);
        size_t n = strlen(text);
        if (ppm == 0 || ppm == 1000000)
            cr_assert_str_eq(text, ppm ? "1" : "0");
        else
            cr_assert(n >= 3 && n <= 8 && strncmp(text, "0.", 2) == 0 && text[n - 1] != '0',
                      "%d millionths print as %s", (int)ppm, text);
        cr_assert_eq(ulog_config_set(cfg, "min.cleanable.dirty.ratio", text, err, sizeof err), 0,
                     "%s: %s", text, err);
        cr_assert_eq(ulog_config_get(cfg, "min.cleanable.dirty.ratio", back, sizeof back), 0);
        cr_assert_str_eq(back, text);
        cr_assert_eq(ulog__config_topic(cfg, &again, err, sizeof err), 0);
        cr_assert_eq(again.min_cleanable_dirty_ppm, ppm, "%s", text);
    }
}

/* The 0.1 topic settings: the only names a 0.1 build can read. */
static bool is_01_name(const char *name, size_t len)
{
    static const char *const names[] = {
        "segment.bytes", "max.message.bytes", "flush.policy", "flush.ms",
        "index.interval.bytes", "message.timestamp.type", "preallocate",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return true;
    return false;
}

/* The lines of text whose name 0.1 does not know, joined. */
static void new_lines(const char *text, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        cr_assert_not_null(nl);
        size_t name_len = strcspn(p, "=");
        if (!is_01_name(p, name_len))
            snprintf(out + strlen(out), size - strlen(out), "%.*s", (int)(nl - p + 1), p);
    }
}

/* Compaction's settings are written only when not at their default, so
 * that 0.1 reads every topic that does not use them; each one alone
 * writes just its own line, in canonical form. */
Test(config, compaction_settings_stored_only_when_used)
{
    static const struct {
        const char *name, *value, *line;
    } one[] = {
        { "cleanup.policy", "compact", "cleanup.policy=compact\n" },
        { "cleanup.policy", "delete,compact", "cleanup.policy=compact,delete\n" },
        { "delete.retention.ms", "0", "delete.retention.ms=0\n" },
        { "min.compaction.lag.ms", "1", "min.compaction.lag.ms=1\n" },
        { "min.cleanable.dirty.ratio", ".25", "min.cleanable.dirty.ratio=0.25\n" },
        { "min.cleanable.dirty.ratio", "1", "min.cleanable.dirty.ratio=1\n" },
        /* Set explicitly to the default: still nothing a 0.1 build lacks. */
        { "cleanup.policy", "delete", "" },
        { "delete.retention.ms", "86400000", "" },
        { "min.compaction.lag.ms", "0", "" },
        { "min.cleanable.dirty.ratio", "0.500", "" },
    };
    char extra[512];
    char *text;
    size_t len;
    ulog__topic_cfg tc, back;

    cr_assert_eq(ulog__config_topic(NULL, &tc, err, sizeof err), 0);
    cr_assert_eq(ulog__topic_cfg_encode(&tc, &text, &len), 0);
    new_lines(text, extra, sizeof extra);
    cr_expect_str_eq(extra, "", "a topic with every default writes names 0.1 lacks");
    cr_expect_null(strstr(text, "cleanup"), "%s", text);
    cr_expect_null(strstr(text, "compaction"), "%s", text);
    cr_expect_null(strstr(text, "ratio"), "%s", text);
    free(text);

    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        ulog_config *c = ulog_config_new();
        cr_assert_eq(ulog_config_set(c, one[i].name, one[i].value, err, sizeof err), 0);
        cr_assert_eq(ulog__config_topic(c, &tc, err, sizeof err), 0);
        cr_assert_eq(ulog__topic_cfg_encode(&tc, &text, &len), 0);
        new_lines(text, extra, sizeof extra);
        cr_expect_str_eq(extra, one[i].line, "%s=%s", one[i].name, one[i].value);
        cr_assert_eq(ulog__topic_cfg_decode(text, len, &back), 0);
        expect_same(&tc, &back);
        free(text);
        ulog_config_free(c);
    }
}

Test(config, compaction_settings_decode)
{
    const char *t = "cleanup.policy=delete,compact\nmin.cleanable.dirty.ratio=.5\n"
                    "delete.retention.ms=7\nmin.compaction.lag.ms=0\n";
    ulog__topic_cfg tc;
    char *text;
    size_t len;

    cr_assert_eq(ulog__topic_cfg_decode(t, strlen(t), &tc), 0);
    cr_expect_eq(tc.cleanup_policy, ULOG__CLEANUP_COMPACT_DELETE);
    cr_expect_eq(tc.min_cleanable_dirty_ppm, 500000);
    cr_expect_eq(tc.delete_retention_ms, 7);
    cr_expect_eq(tc.min_compaction_lag_ms, 0);
    cr_assert_eq(ulog__topic_cfg_encode(&tc, &text, &len), 0);
    cr_expect_not_null(strstr(text, "\ncleanup.policy=compact,delete\n"), "%s", text);
    cr_expect_not_null(strstr(text, "\ndelete.retention.ms=7\n"), "%s", text);
    cr_expect_null(strstr(text, "ratio"), "0.5 is the default: %s", text);
    cr_expect_null(strstr(text, "lag"), "0 is the default: %s", text);
    free(text);
}

/* An alter changes the compaction settings it names and nothing else. */
Test(config, compaction_settings_alter)
{
    ulog__topic_cfg base = custom(), out;

    ulog_config_set(cfg, "cleanup.policy", "compact", NULL, 0);
    ulog_config_set(cfg, "min.cleanable.dirty.ratio", "0.9", NULL, 0);
    cr_assert_eq(ulog__config_topic_alter(&base, cfg, &out, err, sizeof err), 0);
    cr_expect_eq(out.cleanup_policy, ULOG__CLEANUP_COMPACT);
    cr_expect_eq(out.min_cleanable_dirty_ppm, 900000);
    out.cleanup_policy = base.cleanup_policy;
    out.min_cleanable_dirty_ppm = base.min_cleanable_dirty_ppm;
    expect_same(&out, &base);

    ulog_config *c = ulog_config_new();
    ulog_config_set(c, "delete.retention.ms", "1", NULL, 0);
    ulog_config_set(c, "min.compaction.lag.ms", "2", NULL, 0);
    ulog_config_set(c, "cleanup.policy", "delete", NULL, 0);
    cr_assert_eq(ulog__config_topic_alter(&base, c, &out, err, sizeof err), 0);
    cr_expect_eq(out.delete_retention_ms, 1);
    cr_expect_eq(out.min_compaction_lag_ms, 2);
    cr_expect_eq(out.cleanup_policy, ULOG__CLEANUP_DELETE);
    cr_expect_eq(out.min_cleanable_dirty_ppm, base.min_cleanable_dirty_ppm);
    ulog_config_free(c);
}
