/* fuzz_config.c -- the text parsers of lib/config.c and lib/names.c.
 *
 * Input: one mode byte (mod 3), then the text.
 *
 *   0  ulog__topic_cfg_decode, the topic config text stored in LMDB.
 *      Checked against a model built on the public setter: the text is
 *      "name=value\n" lines, each name a topic setting at most once, each
 *      value one that ulog_config_set accepts for that name (within the
 *      decoder's buffer sizes); what it decodes to is what
 *      ulog__config_topic makes of the same settings. An accepted text
 *      re-encodes (ulog__topic_cfg_encode) to a canonical text that decodes
 *      to the same config and encodes to itself again.
 *   1  ulog__name_valid on the text up to its first NUL, against the rule
 *      written out here: 1-249 bytes of [A-Za-z0-9._-], not "." or "..".
 *   2  ulog_config_set(name, value), the text split at its first '=' (the
 *      first byte sets the error buffer's size, 0-63). Accepted: the value
 *      reads back (ulog_config_get) in a canonical form that is accepted
 *      again and reads back the same; integers also through
 *      ulog_config_set_int (a ratio such as min.cleanable.dirty.ratio=1
 *      prints like one, but takes text only); exactly one of the three
 *      scopes takes the config. Refused: the message fits the buffer,
 *      NUL-terminated.
 */
#include "fuzz.h"

#define NAME_BUF 32       /* the decoder's name buffer (config.c) */
#define VALUE_BUF 24      /* and its value buffer, VALUE_MAX */

/* A NUL-terminated malloc'd copy of [p, p+n); NULL if it holds a NUL. */
static char *cstr(const char *p, size_t n)
{
    if (memchr(p, 0, n))
        return NULL;
    char *s = malloc(n + 1);
    FUZZ_CHECK(s, "out of memory");
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* ---------------------------------------------------------------- mode 0 */

/* 0 with *out set, or ULOG_ECORRUPT: what the decoder must say. */
static int decode_model(const char *t, size_t len, ulog__topic_cfg *out)
{
    ulog_config *all = ulog_config_new();
    FUZZ_CHECK(all, "out of memory");
    int rc = 0;
    size_t i = 0;
    while (i < len && !rc) {
        const char *line = t + i, *nl = memchr(line, '\n', len - i), *eq;
        if (!nl || !(eq = memchr(line, '=', (size_t)(nl - line)))) {
            rc = ULOG_ECORRUPT;
            break;
        }
        size_t nlen = (size_t)(eq - line), vlen = (size_t)(nl - eq - 1);
        char *name = nlen < NAME_BUF ? cstr(line, nlen) : NULL;
        char *val = vlen < VALUE_BUF ? cstr(eq + 1, vlen) : NULL;
        char buf[64];
        ulog_config *one = ulog_config_new();
        ulog__topic_cfg tc;
        FUZZ_CHECK(one, "out of memory");
        /* Known, of topic scope, not seen before, and a valid value. */
        if (!name || !val || ulog_config_get(all, name, buf, sizeof buf) != ULOG_ENOENT ||
            ulog_config_set(one, name, val, NULL, 0) != 0 ||
            ulog__config_topic(one, &tc, NULL, 0) != 0 ||
            ulog_config_set(all, name, val, NULL, 0) != 0)
            rc = ULOG_ECORRUPT;
        ulog_config_free(one);
        free(name);
        free(val);
        i += (size_t)(nl - line) + 1;
    }
    if (!rc)
        FUZZ_CHECK(ulog__config_topic(all, out, NULL, 0) == 0, "topic settings apply");
    ulog_config_free(all);
    return rc;
}

static void check_topic_text(const char *t, size_t len)
{
    ulog__topic_cfg got, want;
    int rc = ulog__topic_cfg_decode(t, len, &got);
    int mrc = decode_model(t, len, &want);
    FUZZ_CHECK(rc == mrc, "topic_cfg_decode says %d, the model %d", rc, mrc);
    if (rc)
        return;
    FUZZ_CHECK(cfg_equal(&got, &want), "decoded config differs from the model's");

    char *text;
    size_t tl;
    FUZZ_CHECK(ulog__topic_cfg_encode(&got, &text, &tl) == 0, "accepted config encodes");
    ulog__topic_cfg again;
    FUZZ_CHECK(ulog__topic_cfg_decode(text, tl, &again) == 0 && cfg_equal(&again, &got),
               "canonical text decodes to the same config");
    char *text2;
    size_t tl2;
    FUZZ_CHECK(ulog__topic_cfg_encode(&again, &text2, &tl2) == 0 && tl2 == tl &&
                   memcmp(text, text2, tl) == 0,
               "canonical text is a fixed point");
    ulog_config *exp;
    ulog__topic_cfg viaexp;
    FUZZ_CHECK(ulog__topic_cfg_export(&got, &exp) == 0, "export");
    FUZZ_CHECK(ulog__config_topic(exp, &viaexp, NULL, 0) == 0 && cfg_equal(&viaexp, &got),
               "exported config applies to the same");
    ulog_config_free(exp);
    free(text);
    free(text2);
}

/* ---------------------------------------------------------------- mode 1 */

static bool name_model(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
            return false;
    return true;
}

/* ---------------------------------------------------------------- mode 2 */

static void check_set(const uint8_t *p, size_t n)
{
    if (n < 1)
        return;
    size_t elen = p[0] % 64;
    p++, n--;
    const uint8_t *eq = memchr(p, '=', n);
    size_t nl = eq ? (size_t)(eq - p) : n;
    char *name = malloc(nl + 1), *value = malloc(n - nl + 1);
    FUZZ_CHECK(name && value, "out of memory");
    memcpy(name, p, nl);
    name[nl] = 0;
    size_t vl = eq ? n - nl - 1 : 0;
    if (vl)
        memcpy(value, eq + 1, vl);
    value[vl] = 0;
    char *err = malloc(elen ? elen : 1);
    FUZZ_CHECK(err, "out of memory");
    if (elen)
        memset(err, 'x', elen);

    ulog_config *c = ulog_config_new();
    FUZZ_CHECK(c, "out of memory");
    int rc = ulog_config_set(c, name, value, elen ? err : NULL, elen);
    if (rc) {
        FUZZ_CHECK(rc == ULOG_EINVAL, "config_set: %d", rc);
        FUZZ_CHECK(elen == 0 || memchr(err, 0, elen), "error message not terminated");
        char buf[64];
        FUZZ_CHECK(ulog_config_get(c, name, buf, sizeof buf) == ULOG_ENOENT,
                   "a refused value is not set");
    } else {
        char canon[64], back[64];
        FUZZ_CHECK(ulog_config_get(c, name, canon, sizeof canon) == 0, "get after set");
        ulog_config *c2 = ulog_config_new();
        FUZZ_CHECK(c2, "out of memory");
        FUZZ_CHECK(ulog_config_set(c2, name, canon, NULL, 0) == 0, "canonical %s=%s refused",
                   name, canon);
        FUZZ_CHECK(ulog_config_get(c2, name, back, sizeof back) == 0 && strcmp(canon, back) == 0,
                   "canonical form is a fixed point");
        char *endp;
        errno = 0;
        long long v = strtoll(canon, &endp, 10);
        if (canon[0] >= '0' && canon[0] <= '9' && *endp == 0 && errno == 0 && canon[0] != '0' &&
            strcmp(name, "min.cleanable.dirty.ratio") != 0) {
            ulog_config *c3 = ulog_config_new();
            FUZZ_CHECK(c3, "out of memory");
            FUZZ_CHECK(ulog_config_set_int(c3, name, v, NULL, 0) == 0, "set_int %s=%lld", name, v);
            FUZZ_CHECK(ulog_config_get(c3, name, back, sizeof back) == 0 &&
                           strcmp(canon, back) == 0,
                       "set_int reads back");
            ulog_config_free(c3);
        }
        ulog_config_free(c2);
        /* One setting: exactly one scope takes it. */
        ulog__log_cfg lc;
        ulog__topic_cfg tc;
        ulog__sub_cfg sc;
        int ok = (ulog__config_log(c, &lc, NULL, 0) == 0) + (ulog__config_topic(c, &tc, NULL, 0) == 0) +
                 (ulog__config_sub(c, &sc, NULL, 0) == 0);
        FUZZ_CHECK(ok == 1, "%s is taken by %d scopes", name, ok);
    }
    ulog_config_free(c);
    free(err);
    free(name);
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 3;
    size_t n = size - 1;
    char *t = (char *)fz_dup(data + 1, n);

    if (mode == 0) {
        check_topic_text(t, n);
    } else if (mode == 1) {
        char *s = malloc(n + 1);
        FUZZ_CHECK(s, "out of memory");
        memcpy(s, t, n);
        s[n] = 0;
        bool want = name_model(s);
        FUZZ_CHECK(ulog__name_valid(s) == want, "name_valid(\"%s\") must be %d", s, want);
        free(s);
    } else {
        check_set((const uint8_t *)t, n);
    }
    free(t);
    return 0;
}
