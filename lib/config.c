/*
 * config.c -- settings by name: validation, defaults, and the topic config
 * text stored in LMDB.
 *
 * The set of names is fixed by this table, so a ulog_config is a bitmask plus
 * one parsed value per known setting: a value is validated once, when it is
 * set, and every later reader sees a number. ulog_config_get() prints values
 * in canonical form (decimal, modes as four octal digits "0640", enum names,
 * ratios as the shortest decimal: "0.5", "1").
 *
 * Topic config text (the tail of a "topics" value in LMDB, see meta.c):
 * "name=value\n" lines, ASCII, one per topic setting, in table order. Decoding
 * is strict (unknown names, duplicates, bad values, a missing final newline
 * are corruption) except that an absent setting takes its default, so a
 * setting added in a later version can be read from an older record.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* K_GROUPS: a list of consumer group names (text, not a number): its v[]
 * is 1 when the list is not empty, the names are in the config's `groups`.
 * K_RATIO: a decimal number from 0 to 1, held in millionths so that it
 * stays exact (no floating point: the stored text must print back the same). */
enum kind { K_INT, K_FILE_MODE, K_DIR_MODE, K_ENUM, K_GROUPS, K_RATIO };

enum {
    S_FILE_MODE, S_DIR_MODE, S_INDEX_FLUSH_MS, S_RETENTION_CHECK_MS,
    S_SEGMENT_BYTES, S_MAX_MESSAGE_BYTES, S_FLUSH_POLICY, S_FLUSH_MS,
    S_INDEX_INTERVAL_BYTES, S_TIMESTAMP_TYPE, S_PREALLOCATE,
    S_RETENTION_MS, S_RETENTION_BYTES, S_SEGMENT_MS, S_RETENTION_GROUPS,
    S_CLEANUP_POLICY, S_DELETE_RETENTION_MS, S_MIN_COMPACTION_LAG_MS, S_MIN_CLEANABLE_DIRTY,
    S_REPLICATION_SYNC, S_REPLICATION_TIMEOUT_MS, S_ENCRYPTION_KEY_ID,
    S_AUTO_OFFSET_RESET,
    S_POLL_SPIN_US, S_READ_REPLICATED,
    NSET
};

/* A config's `set` and the decoder's `seen` are 32-bit masks. */
_Static_assert(NSET <= 32, "more settings than bits in a mask");

/* Choice i parses to i, so these orders follow enum ulog__flush,
 * enum ulog__reset and enum ulog__cleanup; timestamp type 1 means
 * log_append_time. */
static const char *const flush_choices[] = { "none", "interval", "always", NULL };
static const char *const cleanup_choices[] = { "delete", "compact", "compact,delete", NULL };
static const char *const tstype_choices[] = { "CreateTime", "LogAppendTime", NULL };
static const char *const reset_choices[] = { "latest", "earliest", "none", NULL };
static const char *const bool_choices[] = { "false", "true", NULL };

/* Settings added after 0.1 are written into the topic text only when they
 * differ from their default, so that 0.1 can still read a topic that does
 * not use them (it refuses names it does not know). */
#define MAX_SPAN (INT64_C(1) << 62)

/* A ratio of 1, in the millionths K_RATIO holds. */
#define RATIO_ONE 1000000

static const struct setting {
    const char *name;
    int scope;
    enum kind kind;
    int64_t min, max, def;
    const char *const *choices;
    bool since_02;
} settings[NSET] = {
    [S_FILE_MODE]            = { "file.mode", ULOG__SCOPE_LOG, K_FILE_MODE, 0, 0777, 0640, NULL, false },
    [S_DIR_MODE]             = { "dir.mode", ULOG__SCOPE_LOG, K_DIR_MODE, 0, 0777, 0750, NULL, false },
    [S_INDEX_FLUSH_MS]       = { "index.flush.ms", ULOG__SCOPE_LOG, K_INT, 1, 60000, 100, NULL, false },
    [S_RETENTION_CHECK_MS]   = { "retention.check.ms", ULOG__SCOPE_LOG, K_INT, 100, 86400000, 300000, NULL, false },
    [S_SEGMENT_BYTES]        = { "segment.bytes", ULOG__SCOPE_TOPIC, K_INT, 4096, 1 << 30, 1 << 30, NULL, false },
    [S_MAX_MESSAGE_BYTES]    = { "max.message.bytes", ULOG__SCOPE_TOPIC, K_INT, 64, (1 << 30) - 1, 1048588, NULL, false },
    [S_FLUSH_POLICY]         = { "flush.policy", ULOG__SCOPE_TOPIC, K_ENUM, 0, 2, ULOG__FLUSH_ALWAYS, flush_choices, false },
    [S_FLUSH_MS]             = { "flush.ms", ULOG__SCOPE_TOPIC, K_INT, 1, 3600000, 1000, NULL, false },
    [S_INDEX_INTERVAL_BYTES] = { "index.interval.bytes", ULOG__SCOPE_TOPIC, K_INT, 512, 1 << 24, 4096, NULL, false },
    [S_TIMESTAMP_TYPE]       = { "message.timestamp.type", ULOG__SCOPE_TOPIC, K_ENUM, 0, 1, 0, tstype_choices, false },
    [S_PREALLOCATE]          = { "preallocate", ULOG__SCOPE_TOPIC, K_ENUM, 0, 1, 0, bool_choices, false },
    [S_RETENTION_MS]         = { "retention.ms", ULOG__SCOPE_TOPIC, K_INT, -1, MAX_SPAN, -1, NULL, true },
    [S_RETENTION_BYTES]      = { "retention.bytes", ULOG__SCOPE_TOPIC, K_INT, -1, MAX_SPAN, -1, NULL, true },
    [S_SEGMENT_MS]           = { "segment.ms", ULOG__SCOPE_TOPIC, K_INT, 1, MAX_SPAN, 604800000, NULL, true },
    [S_RETENTION_GROUPS]     = { "retention.groups", ULOG__SCOPE_TOPIC, K_GROUPS, 0, 1, 0, NULL, true },
    [S_CLEANUP_POLICY]       = { "cleanup.policy", ULOG__SCOPE_TOPIC, K_ENUM, 0, 2,
                                 ULOG__CLEANUP_DELETE, cleanup_choices, true },
    [S_DELETE_RETENTION_MS]  = { "delete.retention.ms", ULOG__SCOPE_TOPIC, K_INT, 0, MAX_SPAN,
                                 86400000, NULL, true },
    [S_MIN_COMPACTION_LAG_MS] = { "min.compaction.lag.ms", ULOG__SCOPE_TOPIC, K_INT,
                                  0, MAX_SPAN, 0, NULL, true },
    [S_MIN_CLEANABLE_DIRTY]  = { "min.cleanable.dirty.ratio", ULOG__SCOPE_TOPIC, K_RATIO,
                                 0, RATIO_ONE, RATIO_ONE / 2, NULL, true },
    [S_REPLICATION_SYNC]     = { "replication.sync", ULOG__SCOPE_TOPIC, K_ENUM, 0, 1, 0,
                                 bool_choices, true },
    [S_REPLICATION_TIMEOUT_MS] = { "replication.timeout.ms", ULOG__SCOPE_TOPIC, K_INT,
                                   1, 86400000, 30000, NULL, true },
    [S_ENCRYPTION_KEY_ID]    = { "encryption.key.id", ULOG__SCOPE_TOPIC, K_INT, -1, INT32_MAX, -1,
                                 NULL, true },
    [S_AUTO_OFFSET_RESET]    = { "auto.offset.reset", ULOG__SCOPE_SUB, K_ENUM, 0, 2, ULOG__RESET_LATEST, reset_choices, false },
    [S_POLL_SPIN_US]         = { "poll.spin.us", ULOG__SCOPE_SUB, K_INT, 0, 100000, 0, NULL, false },
    [S_READ_REPLICATED]      = { "read.replicated", ULOG__SCOPE_SUB, K_ENUM, 0, 1, 0, bool_choices,
                                 false },
};

struct ulog_config {
    uint32_t set;              /* bit i: settings[i] has a value */
    int64_t  v[NSET];
    char     groups[ULOG__GROUPS_MAX + 1];   /* retention.groups */
};


__attribute__((format(printf, 3, 4)))
static int fail(char *errbuf, size_t len, const char *fmt, ...)
{
    if (errbuf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, len, fmt, ap);
        va_end(ap);
    }
    return ULOG_EINVAL;
}

static int find(const char *name)
{
    for (int i = 0; name && i < NSET; i++)
        if (strcmp(name, settings[i].name) == 0)
            return i;
    return -1;
}

/* Unsigned digits only: no sign, no spaces, no prefix, no trailing bytes.
 * The one negative value any setting takes is -1 ("unlimited"), matched
 * whole in parse_value. */
static bool parse_digits(const char *s, int base, int64_t *out)
{
    int64_t v = 0;

    if (!*s)
        return false;
    for (; *s; s++) {
        int d = *s - '0';
        if (d < 0 || d >= base || v > (INT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

static bool in_range(const struct setting *st, int64_t v)
{
    if (v < st->min || v > st->max)
        return false;
    /* The library must be able to reopen what it creates. */
    if (st->kind == K_FILE_MODE)
        return (v & 0600) == 0600;
    if (st->kind == K_DIR_MODE)
        return (v & 0700) == 0700;
    return true;
}

/* "" (none), "*" (every group), or group names joined by commas. */
static bool groups_valid(const char *s)
{
    if (strcmp(s, "*") == 0 || !*s)
        return true;
    if (strlen(s) > ULOG__GROUPS_MAX)
        return false;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[ULOG__NAME_MAX + 1];
        if (n == 0 || n > ULOG__NAME_MAX)
            return false;
        memcpy(name, p, n);
        name[n] = '\0';
        if (!ulog__name_valid(name))
            return false;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

/* A ratio in millionths: [digits]['.' 1 to 6 digits], with at least one
 * digit, so "0", "1", "0.5", ".5" (as Kafka and strtod read it) and
 * "1.000000". A '.' needs digits after it: "5." looks cut short. No sign,
 * exponent or spaces, and no seventh decimal (rounding it would silently
 * store another value). The caller checks the range. */
static bool parse_ratio(const char *s, int64_t *out)
{
    int64_t whole = 0, frac = 0, scale = RATIO_ONE;
    bool digits = false;

    for (; *s >= '0' && *s <= '9'; s++, digits = true)
        if ((whole = whole * 10 + (*s - '0')) > 1)   /* out of range: stop before overflow */
            return false;
    if (*s == '.') {
        if (!*++s)
            return false;
        for (; *s >= '0' && *s <= '9'; s++, digits = true) {
            if (scale == 1)
                return false;
            scale /= 10;
            frac += (*s - '0') * scale;
        }
    }
    if (*s || !digits)
        return false;
    *out = whole * RATIO_ONE + frac;
    return true;
}

static bool parse_value(const struct setting *st, const char *s, int64_t *out)
{
    int64_t v;

    if (st->kind == K_GROUPS) {
        *out = *s != '\0';
        return groups_valid(s);
    }
    if (st->kind == K_RATIO) {
        if (!parse_ratio(s, &v) || !in_range(st, v))
            return false;
        *out = v;
        return true;
    }
    if (st->kind == K_ENUM) {
        /* Kafka takes cleanup.policy's two policies in either order. */
        if (st->choices == cleanup_choices && strcmp(s, "delete,compact") == 0)
            s = "compact,delete";
        for (int i = 0; st->choices[i]; i++)
            if (strcmp(s, st->choices[i]) == 0) {
                *out = i;
                return true;
            }
        return false;
    }
    if (st->min == -1 && strcmp(s, "-1") == 0)
        v = -1;
    else if (!parse_digits(s, st->kind == K_INT ? 10 : 8, &v))
        return false;
    if (!in_range(st, v))
        return false;
    *out = v;
    return true;
}

/* Longest value of any kind, with its NUL. */
#define TEXT_MAX (ULOG__GROUPS_MAX + 1)

/* The shortest decimal of a ratio in millionths: "0", "1", "0.05". */
static void format_ratio(int64_t v, char buf[TEXT_MAX])
{
    if (v % RATIO_ONE == 0) {
        snprintf(buf, TEXT_MAX, "%" PRId64, v / RATIO_ONE);
        return;
    }
    int n = snprintf(buf, TEXT_MAX, "%" PRId64 ".%06" PRId64, v / RATIO_ONE, v % RATIO_ONE);
    while (buf[n - 1] == '0')
        buf[--n] = '\0';
}

/* str: the K_GROUPS text (unused for other kinds). */
static void format_value(const struct setting *st, int64_t v, const char *str,
                         char buf[TEXT_MAX])
{
    if (st->kind == K_RATIO)
        format_ratio(v, buf);
    else if (st->kind == K_ENUM)
        snprintf(buf, TEXT_MAX, "%s", st->choices[v]);
    else if (st->kind == K_INT)
        snprintf(buf, TEXT_MAX, "%" PRId64, v);
    else if (st->kind == K_GROUPS)
        snprintf(buf, TEXT_MAX, "%s", str);
    else
        snprintf(buf, TEXT_MAX, "0%03o", (unsigned)v);
}

static int bad_value(const struct setting *st, char *errbuf, size_t len)
{
    char list[64] = "";

    switch (st->kind) {
    case K_INT:
        return fail(errbuf, len, "%s: must be an integer from %" PRId64 " to %" PRId64,
                    st->name, st->min, st->max);
    case K_FILE_MODE:
        return fail(errbuf, len, "%s: must be an octal mode from 0 to 0777 "
                    "that includes owner read and write (0600)", st->name);
    case K_DIR_MODE:
        return fail(errbuf, len, "%s: must be an octal mode from 0 to 0777 "
                    "that includes owner read, write and search (0700)", st->name);
    case K_ENUM:
        /* Its third choice holds a comma, which a list joined by ", "
         * would blur. */
        if (st->choices == cleanup_choices)
            return fail(errbuf, len, "%s: must be delete, compact, or compact,delete "
                        "(delete,compact is the same)", st->name);
        for (int i = 0; st->choices[i]; i++) {
            if (i)
                strcat(list, ", ");
            strcat(list, st->choices[i]);
        }
        return fail(errbuf, len, "%s: must be one of %s", st->name, list);
    case K_GROUPS:
        return fail(errbuf, len, "%s: must be empty, * (every group), or consumer group "
                    "names joined by commas, %d bytes at most", st->name, ULOG__GROUPS_MAX);
    case K_RATIO:
        return fail(errbuf, len, "%s: must be a decimal number from 0 to 1 with at most "
                    "6 digits after the point, such as 0.5", st->name);
    }
    return ULOG_EINVAL;
}

static int unknown(const char *name, char *errbuf, size_t len)
{
    return fail(errbuf, len, "unknown setting \"%s\"", name);
}

/* ---------------------------------------------------------------- public */

ulog_config *ulog_config_new(void)
{
    return calloc(1, sizeof(ulog_config));
}

void ulog_config_free(ulog_config *cfg)
{
    free(cfg);
}

int ulog_config_set(ulog_config *cfg, const char *name, const char *value,
                    char *errbuf, size_t errbuf_len)
{
    int i;
    int64_t v;

    if (!cfg || !name || !value)
        return fail(errbuf, errbuf_len, "config, name and value must not be NULL");
    if ((i = find(name)) < 0)
        return unknown(name, errbuf, errbuf_len);
    if (!parse_value(&settings[i], value, &v))
        return bad_value(&settings[i], errbuf, errbuf_len);
    if (settings[i].kind == K_GROUPS)
        snprintf(cfg->groups, sizeof cfg->groups, "%s", value);
    cfg->set |= 1u << i;
    cfg->v[i] = v;
    return 0;
}

int ulog_config_set_int(ulog_config *cfg, const char *name, int64_t value,
                        char *errbuf, size_t errbuf_len)
{
    int i;

    if (!cfg || !name)
        return fail(errbuf, errbuf_len, "config and name must not be NULL");
    if ((i = find(name)) < 0)
        return unknown(name, errbuf, errbuf_len);
    /* A number here would be read as the ratio itself (1 would pass, 0.5
     * cannot be said), so ratios are text only. */
    if (settings[i].kind == K_RATIO)
        return fail(errbuf, errbuf_len, "%s: a decimal number from 0 to 1, set as text "
                    "with ulog_config_set (such as \"0.5\"), not as an integer", name);
    /* An enum's index is not a value callers should rely on. */
    if (settings[i].kind == K_ENUM || settings[i].kind == K_GROUPS ||
        !in_range(&settings[i], value))
        return bad_value(&settings[i], errbuf, errbuf_len);
    cfg->set |= 1u << i;
    cfg->v[i] = value;
    return 0;
}

int ulog_config_get(const ulog_config *cfg, const char *name, char *buf, size_t buf_len)
{
    char val[TEXT_MAX];
    int i;

    if (!cfg || !name || !buf)
        return ULOG_EINVAL;
    if ((i = find(name)) < 0 || !(cfg->set & (1u << i)))
        return ULOG_ENOENT;
    format_value(&settings[i], cfg->v[i], cfg->groups, val);
    if (strlen(val) >= buf_len)
        return ULOG_EINVAL;
    memcpy(buf, val, strlen(val) + 1);
    return 0;
}

int ulog_config_names(const ulog_config *cfg, ulog_strlist **out)
{
    if (!cfg || !out)
        return ULOG_EINVAL;
    *out = NULL;
    size_t n = 0;
    for (int i = 0; i < NSET; i++)
        n += (cfg->set >> i) & 1;
    ulog_strlist *l;
    int err = ulog__strlist_new(n, &l);
    for (int i = 0, k = 0; !err && i < NSET; i++)
        if (cfg->set & (1u << i))
            err = ulog__strlist_set(l, (size_t)k++, settings[i].name);
    if (err) {
        ulog_strlist_free(l);
        return err;
    }
    *out = l;
    return 0;
}

/* ---------------------------------------------------------------- scopes */

/* str: the K_GROUPS text. */
typedef void (*apply_fn)(void *out, int id, int64_t v, const char *str);

static const char *scope_noun(int scope)
{
    return scope == ULOG__SCOPE_LOG ? "the log" :
           scope == ULOG__SCOPE_TOPIC ? "a topic" : "a subscription";
}

/* Defaults first, then cfg; a name of another scope is an error rather than
 * silently ignored, because it is almost always a config passed to the wrong
 * call. */
/* Applies cfg's settings of `scope` to out, after the defaults when
 * `defaults` (else over what out holds). */
static int apply_scope(const ulog_config *cfg, int scope, void *out, apply_fn apply,
                       bool defaults, char *errbuf, size_t len)
{
    for (int i = 0; defaults && i < NSET; i++)
        if (settings[i].scope == scope)
            apply(out, i, settings[i].def, "");
    for (int i = 0; cfg && i < NSET; i++) {
        if (!(cfg->set & (1u << i)))
            continue;
        if (settings[i].scope != scope)
            return fail(errbuf, len, "%s does not apply to %s",
                        settings[i].name, scope_noun(scope));
        apply(out, i, cfg->v[i], cfg->groups);
    }
    return 0;
}

static void apply_log(void *out, int id, int64_t v, const char *str)
{
    (void)str;
    ulog__log_cfg *lc = out;

    switch (id) {
    case S_FILE_MODE:      lc->file_mode = (int)v; break;
    case S_DIR_MODE:       lc->dir_mode = (int)v; break;
    case S_INDEX_FLUSH_MS: lc->index_flush_ms = v; break;
    case S_RETENTION_CHECK_MS: lc->retention_check_ms = v; break;
    }
}

static void apply_topic(void *out, int id, int64_t v, const char *str)
{
    ulog__topic_cfg *tc = out;

    switch (id) {
    case S_SEGMENT_BYTES:        tc->segment_bytes = v; break;
    case S_MAX_MESSAGE_BYTES:    tc->max_message_bytes = v; break;
    case S_FLUSH_POLICY:         tc->flush_policy = (int)v; break;
    case S_FLUSH_MS:             tc->flush_ms = v; break;
    case S_INDEX_INTERVAL_BYTES: tc->index_interval_bytes = v; break;
    case S_TIMESTAMP_TYPE:       tc->log_append_time = v == 1; break;
    case S_PREALLOCATE:          tc->preallocate = v == 1; break;
    case S_RETENTION_MS:         tc->retention_ms = v; break;
    case S_RETENTION_BYTES:      tc->retention_bytes = v; break;
    case S_SEGMENT_MS:           tc->segment_ms = v; break;
    case S_RETENTION_GROUPS:
        snprintf(tc->retention_groups, sizeof tc->retention_groups, "%s", str);
        break;
    case S_CLEANUP_POLICY:        tc->cleanup_policy = (int)v; break;
    case S_DELETE_RETENTION_MS:   tc->delete_retention_ms = v; break;
    case S_MIN_COMPACTION_LAG_MS: tc->min_compaction_lag_ms = v; break;
    case S_MIN_CLEANABLE_DIRTY:   tc->min_cleanable_dirty_ppm = (int32_t)v; break;
    case S_REPLICATION_SYNC:      tc->replication_sync = v == 1; break;
    case S_REPLICATION_TIMEOUT_MS: tc->replication_timeout_ms = v; break;
    case S_ENCRYPTION_KEY_ID:     tc->encryption_key_id = v; break;
    }
}

static void apply_sub(void *out, int id, int64_t v, const char *str)
{
    (void)str;
    ulog__sub_cfg *sc = out;

    if (id == S_AUTO_OFFSET_RESET)
        sc->reset = (int)v;
    else if (id == S_POLL_SPIN_US)
        sc->spin_us = (int)v;
    else if (id == S_READ_REPLICATED)
        sc->read_replicated = v == 1;
}

int ulog__config_log(const ulog_config *cfg, ulog__log_cfg *out, char *errbuf, size_t len)
{
    ulog__log_cfg lc = {0};
    int rc;

    if (!out)
        return ULOG_EINVAL;
    if ((rc = apply_scope(cfg, ULOG__SCOPE_LOG, &lc, apply_log, true, errbuf, len)) == 0)
        *out = lc;
    return rc;
}

int ulog__config_topic(const ulog_config *cfg, ulog__topic_cfg *out, char *errbuf, size_t len)
{
    ulog__topic_cfg tc = {0};
    int rc;

    if (!out)
        return ULOG_EINVAL;
    if ((rc = apply_scope(cfg, ULOG__SCOPE_TOPIC, &tc, apply_topic, true, errbuf, len)) == 0)
        *out = tc;
    return rc;
}

int ulog__config_topic_alter(const ulog__topic_cfg *base, const ulog_config *cfg,
                             ulog__topic_cfg *out, char *errbuf, size_t len)
{
    ulog__topic_cfg tc = *base;
    int rc = apply_scope(cfg, ULOG__SCOPE_TOPIC, &tc, apply_topic, false, errbuf, len);
    /* Readers open values by the topic's setting, not by guessing from the
     * bytes: a topic holds sealed values only, or plain ones only. */
    if (rc == 0 && (tc.encryption_key_id < 0) != (base->encryption_key_id < 0))
        return fail(errbuf, len, "encryption.key.id: a topic is encrypted from its creation "
                                 "or never; only the key id can change");
    if (rc == 0)
        *out = tc;
    return rc;
}

int ulog__config_sub(const ulog_config *cfg, ulog__sub_cfg *out, char *errbuf, size_t len)
{
    ulog__sub_cfg sc = {0};
    int rc;

    if (!out)
        return ULOG_EINVAL;
    if ((rc = apply_scope(cfg, ULOG__SCOPE_SUB, &sc, apply_sub, true, errbuf, len)) == 0)
        *out = sc;
    return rc;
}

/* ---------------------------------------------------------------- topic text */

/* The values of every topic setting of tc, by setting id. False when tc
 * holds a value no setting accepts (a caller bug; never stored). */
static bool topic_values(const ulog__topic_cfg *tc, int64_t v[NSET])
{
    v[S_SEGMENT_BYTES] = tc->segment_bytes;
    v[S_MAX_MESSAGE_BYTES] = tc->max_message_bytes;
    v[S_FLUSH_POLICY] = tc->flush_policy;
    v[S_FLUSH_MS] = tc->flush_ms;
    v[S_INDEX_INTERVAL_BYTES] = tc->index_interval_bytes;
    v[S_TIMESTAMP_TYPE] = tc->log_append_time ? 1 : 0;
    v[S_PREALLOCATE] = tc->preallocate ? 1 : 0;
    v[S_RETENTION_MS] = tc->retention_ms;
    v[S_RETENTION_BYTES] = tc->retention_bytes;
    v[S_SEGMENT_MS] = tc->segment_ms;
    v[S_RETENTION_GROUPS] = tc->retention_groups[0] != '\0';
    v[S_CLEANUP_POLICY] = tc->cleanup_policy;
    v[S_DELETE_RETENTION_MS] = tc->delete_retention_ms;
    v[S_MIN_COMPACTION_LAG_MS] = tc->min_compaction_lag_ms;
    v[S_MIN_CLEANABLE_DIRTY] = tc->min_cleanable_dirty_ppm;
    v[S_REPLICATION_SYNC] = tc->replication_sync ? 1 : 0;
    v[S_REPLICATION_TIMEOUT_MS] = tc->replication_timeout_ms;
    v[S_ENCRYPTION_KEY_ID] = tc->encryption_key_id;
    if (!groups_valid(tc->retention_groups))
        return false;
    for (int i = 0; i < NSET; i++)
        if (settings[i].scope == ULOG__SCOPE_TOPIC && !in_range(&settings[i], v[i]))
            return false;
    return true;
}

int ulog__topic_cfg_encode(const ulog__topic_cfg *tc, char **text, size_t *len)
{
    int64_t v[NSET];
    char val[TEXT_MAX], *buf;
    size_t n = 0, cap = 1;

    if (!tc || !text || !len || !topic_values(tc, v))
        return ULOG_EINVAL;
    for (int i = 0; i < NSET; i++)
        if (settings[i].scope == ULOG__SCOPE_TOPIC)
            cap += strlen(settings[i].name) + TEXT_MAX + 2;
    if (!(buf = malloc(cap)))
        return ULOG_ENOMEM;
    for (int i = 0; i < NSET; i++) {
        if (settings[i].scope != ULOG__SCOPE_TOPIC ||
            (settings[i].since_02 && v[i] == settings[i].def))
            continue;
        format_value(&settings[i], v[i], tc->retention_groups, val);
        n += (size_t)snprintf(buf + n, cap - n, "%s=%s\n", settings[i].name, val);
    }
    *text = buf;
    *len = n;
    return 0;
}

/* Copies [p, p+n) into a NUL-terminated buf; false if it does not fit or
 * holds a NUL (which would make strcmp see a shorter string). */
static bool take(char *buf, size_t size, const char *p, size_t n)
{
    if (n >= size || memchr(p, '\0', n))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return true;
}

int ulog__topic_cfg_decode(const char *text, size_t len, ulog__topic_cfg *out)
{
    ulog__topic_cfg tc = {0};
    uint32_t seen = 0;
    size_t i = 0;

    if (!out || (!text && len))
        return ULOG_EINVAL;
    apply_scope(NULL, ULOG__SCOPE_TOPIC, &tc, apply_topic, true, NULL, 0);
    while (i < len) {
        const char *line = text + i, *nl, *eq;
        char name[32], val[TEXT_MAX];
        int64_t v;
        int id;

        if (!(nl = memchr(line, '\n', len - i)) ||
            !(eq = memchr(line, '=', (size_t)(nl - line))) ||
            !take(name, sizeof name, line, (size_t)(eq - line)) ||
            !take(val, sizeof val, eq + 1, (size_t)(nl - eq - 1)))
            return ULOG_ECORRUPT;
        id = find(name);
        if (id < 0 || settings[id].scope != ULOG__SCOPE_TOPIC ||
            (seen & (1u << id)) || !parse_value(&settings[id], val, &v))
            return ULOG_ECORRUPT;
        seen |= 1u << id;
        apply_topic(&tc, id, v, val);
        i += (size_t)(nl - line) + 1;
    }
    *out = tc;
    return 0;
}

int ulog__topic_cfg_export(const ulog__topic_cfg *tc, ulog_config **out)
{
    int64_t v[NSET];
    ulog_config *cfg;

    if (!tc || !out || !topic_values(tc, v))
        return ULOG_EINVAL;
    if (!(cfg = ulog_config_new()))
        return ULOG_ENOMEM;
    for (int i = 0; i < NSET; i++)
        if (settings[i].scope == ULOG__SCOPE_TOPIC) {
            cfg->set |= 1u << i;
            cfg->v[i] = v[i];
        }
    snprintf(cfg->groups, sizeof cfg->groups, "%s", tc->retention_groups);
    *out = cfg;
    return 0;
}
