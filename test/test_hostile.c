/* test_hostile.c -- hostile input (issue 4, item 7): topic and group names,
 * config values and damaged segments, each table entry with the result the
 * public API must give for it.
 *
 * Names. The documented rule (ulog.h) is 1-249 bytes of [A-Za-z0-9._-], not
 * "." or "..", for topics and groups alike; nothing else is rejected, so
 * Windows' reserved names, names that look like ulog's own files and names
 * made of dots are accepted. A name is a C string: bytes after its NUL are
 * never part of it. The log root sits five directories below the scratch
 * directory, so a traversal that escaped the root by up to six levels would
 * still show in the tree compared before and after every rejected call.
 *
 * Configs. Every scope (log, topic, subscription) gets at least 50 hostile
 * values with the code ulog_config_set() must return; after a failure the
 * config must read back exactly as before. A name of another scope is
 * accepted by the setter and refused by the call of this scope.
 *
 * Damaged segments. A template log: session 1 appends 12 batches of 3
 * records (offsets 0..35, two segments of segment.bytes 8192, flush.policy
 * none) and closes, which writes the recovery checkpoint; session 2, a child
 * process, appends T1 (offsets 36, 37) and T2 (38..40, about 3.7 KB, so it
 * spans a page) and exits without closing, as a crashed writer would: T1 and
 * T2 lie past the checkpoint. Each case copies the template, damages one
 * batch, and checks the outcome in a forked child (a crash then fails that
 * case alone, with the signal in its message), in one of four modes:
 *
 *   head kept, batch 3 damaged  the `head` files stay valid (same boot), so
 *                               no recovery scan runs and every batch is
 *                               below the committed end: ulog_poll must
 *                               report the damage (ULOG_ECORRUPT, or
 *                               ULOG_ENOTSUP for a compressed batch) and stop
 *                               there -- every record it returned before is
 *                               the one appended at that offset, none is
 *                               skipped, and polling again gives the same.
 *   heads deleted, batch 3      recovery runs, but from the checkpoint in
 *                               the second segment: the damage in the first
 *                               is below it and must still be reported by
 *                               ulog_poll, never cut or skipped.
 *   head kept, T2 damaged       as the first mode, for the last batch of the
 *                               active segment (the head counts it as
 *                               committed).
 *   heads deleted, T2 damaged   the torn tail: recovery cuts T2 silently; the
 *                               high watermark is then exactly T2's base
 *                               (the end of the last whole batch), the
 *                               segment ends where T2 began, every record
 *                               below reads back intact and appending
 *                               continues at the cut.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ================================================================ shared */

/* A set of relative paths under a directory, sorted. */
typedef struct pathset {
    char  **v;
    size_t  n, cap;
} pathset;

static void ps_add(pathset *s, const char *p)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        cr_assert_not_null(s->v);
    }
    s->v[s->n] = strdup(p);
    cr_assert_not_null(s->v[s->n]);
    s->n++;
}

static void ps_walk(pathset *s, const char *top, const char *rel)
{
    char dir[8192];
    snprintf(dir, sizeof dir, "%s%s%s", top, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char r[8192], full[8192];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= (int)sizeof r ||
            snprintf(full, sizeof full, "%s/%s", top, r) >= (int)sizeof full)
            cr_assert_fail("path too long under %s", top);
        ps_add(s, r);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
            ps_walk(s, top, r);
    }
    closedir(d);
}

static int ps_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ps_take(pathset *s, const char *top)
{
    memset(s, 0, sizeof *s);
    ps_walk(s, top, "");
    if (s->n)
        qsort(s->v, s->n, sizeof *s->v, ps_cmp);
}

static void ps_free(pathset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Lists what `after` has more ("+path") and less ("-path") than `before`
 * into out; returns the number of differences. Paths under `allowed` (a
 * prefix; NULL: none) added are not counted. */
static size_t ps_diff(const pathset *before, const pathset *after, const char *allowed,
                      char *out, size_t n)
{
    size_t i = 0, j = 0, diffs = 0;
    out[0] = 0;
    while (i < before->n || j < after->n) {
        int c = i == before->n ? 1 : j == after->n ? -1 : strcmp(before->v[i], after->v[j]);
        const char *p = c < 0 ? before->v[i] : after->v[j];
        if (c == 0) {
            i++, j++;
            continue;
        }
        if (c > 0 && allowed && strncmp(p, allowed, strlen(allowed)) == 0) {
            j++;
            continue;
        }
        size_t len = strlen(out);
        if (len + 80 < n)
            snprintf(out + len, n - len, "%s%c%.60s", diffs ? " " : "", c < 0 ? '-' : '+', p);
        diffs++;
        if (c < 0)
            i++;
        else
            j++;
    }
    return diffs;
}

/* A strlist as "a|b|c"; "<error X>" when the call fails. */
static void join_list(int rc, ulog_strlist *l, char *out, size_t n)
{
    out[0] = 0;
    if (rc) {
        snprintf(out, n, "<error %s>", ulog_errname(rc));
        return;
    }
    for (size_t i = 0; i < ulog_strlist_count(l); i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", i ? "|" : "", ulog_strlist_get(l, i));
    }
    ulog_strlist_free(l);
}

static void topic_names(ulog *l, char *out, size_t n)
{
    ulog_strlist *list = NULL;
    int rc = ulog_topic_list(l, &list);
    join_list(rc, list, out, n);
}

static void group_names(ulog *l, char *out, size_t n)
{
    ulog_strlist *list = NULL;
    int rc = ulog_group_list(l, &list);
    join_list(rc, list, out, n);
}

/* Whether list (from ulog_strlist) holds s exactly once. */
static int list_count(ulog_strlist *l, const char *s)
{
    int k = 0;
    for (size_t i = 0; i < ulog_strlist_count(l); i++)
        k += strcmp(ulog_strlist_get(l, i), s) == 0;
    return k;
}

/* ================================================================ names */

typedef struct name_case {
    const char *what;
    const char *lit;        /* bytes (may hold NULs); NULL with rep_n 0: the NULL pointer */
    size_t      lit_len;
    char        rep;        /* rep_n copies of rep come first */
    size_t      rep_n;
    bool        ok;         /* accepted, as the C string the buffer starts with */
} name_case;

#define NM(what, lit, ok) { what, lit, sizeof(lit) - 1, 0, 0, ok }
#define REP(what, c, n, lit, ok) { what, lit, sizeof(lit) - 1, c, n, ok }

static const name_case names_table[] = {
    /* ---- rejected: not 1-249 bytes of [A-Za-z0-9._-], or "." or ".." */
    NM("empty", "", false),
    NM("dot", ".", false),
    NM("dot dot", "..", false),
    NM("slash", "/", false),
    NM("two slashes", "//", false),
    NM("a/b", "a/b", false),
    NM("trailing slash", "a/", false),
    NM("leading slash", "/a", false),
    NM("../x", "../x", false),
    NM("../../x", "../../x", false),
    NM("six levels up", "../../../../../../x", false),
    NM("./x", "./x", false),
    NM("x/..", "x/..", false),
    NM("x/../../y", "x/../../y", false),
    NM("/etc/passwd", "/etc/passwd", false),
    NM("backslash", "a\\b", false),
    NM("Windows traversal", "..\\..\\x", false),
    NM("drive letter", "C:\\x", false),
    NM("colon (NTFS stream)", "a:b", false),
    NM("NUL first, traversal after it", "\0../../x", false),
    NM("newline at the end", "a\n", false),
    NM("newline alone", "\n", false),
    NM("CR LF", "a\r\n", false),
    NM("tab", "\t", false),
    NM("SOH", "a\x01", false),
    NM("DEL", "\x7f", false),
    NM("ANSI escape", "\x1b[31mred", false),
    NM("backspace", "a\b", false),
    NM("leading space", " a", false),
    NM("trailing space", "a ", false),
    NM("inner space", "a b", false),
    NM("no-break space", "a\xc2\xa0" "b", false),
    NM("UTF-8 e-acute", "caf\xc3\xa9", false),
    NM("overlong dot dot (C0 AE C0 AE)", "\xc0\xae\xc0\xae", false),
    NM("overlong slash (C0 AF)", "a\xc0\xaf" "b", false),
    NM("3-byte overlong slash", "a\xe0\x80\xaf" "b", false),
    NM("4-byte overlong slash", "a\xf0\x80\x80\xaf" "b", false),
    NM("overlong NUL (C0 80)", "a\xc0\x80" "b", false),
    NM("right-to-left mark", "a\xe2\x80\x8f" "b", false),
    NM("right-to-left override", "\xe2\x80\xae" "gpj.exe", false),
    NM("byte order mark", "\xef\xbb\xbf" "bom", false),
    NM("zero-width space", "a\xe2\x80\x8b" "b", false),
    NM("fullwidth solidus", "a\xef\xbc\x8f" "b", false),
    NM("lone surrogate", "\xed\xa0\x80", false),
    NM("invalid bytes FF FE", "\xff\xfe", false),
    NM("lone continuation byte", "\x80", false),
    NM("format string %s%n", "%s%s%s%s%n", false),
    NM("format string %x", "%x%x%x", false),
    NM("percent-encoded ../", "%2e%2e%2f", false),
    NM("shell $(...)", "$(id)", false),
    NM("shell backticks", "`id`", false),
    NM("shell ;", "a;rm", false),
    NM("pipe", "a|b", false),
    NM("ampersand", "a&b", false),
    NM("redirect >", "a>b", false),
    NM("redirect <", "a<b", false),
    NM("glob *", "*", false),
    NM("glob ?", "a?", false),
    NM("glob []", "[a]", false),
    NM("braces", "{a,b}", false),
    NM("tilde", "~", false),
    NM("~root", "~root", false),
    NM("single quote", "a'b", false),
    NM("double quote", "a\"b", false),
    NM("equals", "a=b", false),
    NM("comma", "a,b", false),
    NM("plus", "a+b", false),
    NM("at", "a@b", false),
    NM("hash", "a#b", false),
    NM("exclamation mark", "a!b", false),
    REP("250 bytes", 'a', 250, "", false),
    REP("251 bytes", 'a', 251, "", false),
    REP("1000 bytes", 'a', 1000, "", false),
    REP("65536 bytes", 'a', 65536, "", false),
    REP("248 bytes and a slash", 'a', 248, "/", false),
    REP("249 bytes and a UTF-8 letter", 'a', 249, "\xc3\xa9", false),
    REP("250 dots", '.', 250, "", false),
    REP("250 bytes, NUL, more bytes", 'a', 250, "\0b", false),
    { "the NULL pointer", NULL, 0, 0, 0, false },
    /* ---- accepted: the rule allows these */
    NM("one letter", "a", true),
    NM("three dots", "...", true),
    NM("leading dot", ".a", true),
    NM("trailing dot", "a.", true),
    NM("dot dot prefix", "..a", true),
    NM("dot dot suffix", "a..", true),
    NM("inner dots", "a..b", true),
    NM("hyphen alone", "-", true),
    NM("option-like -rf", "-rf", true),
    NM("option-like --help", "--help", true),
    NM("underscore alone", "_", true),
    NM("digit alone", "0", true),
    NM("Windows reserved CON", "CON", true),
    NM("Windows reserved nul", "nul", true),
    NM("Windows reserved COM1", "COM1", true),
    NM("Windows reserved LPT1.txt", "LPT1.txt", true),
    NM("Windows reserved aux", "aux", true),
    NM("like a segment file", "00000000000000000000.log", true),
    NM("like the topics directory", "topics", true),
    NM("like the meta directory", "meta", true),
    NM("like a head file", "head", true),
    NM("every kind of byte", "A-z_0.9", true),
    NM("NUL, then a traversal", "ok\0/../../escape", true),
    NM("NUL, then a newline", "ok2\0\n", true),
    REP("249 bytes", 'x', 249, "", true),
    REP("249 dots", '.', 249, "", true),
    REP("249 bytes, NUL, a traversal", 'y', 249, "\0zzzz/../../../x", true),
};
#define NNAMES (sizeof names_table / sizeof names_table[0])

/* The name as a caller would pass it: a heap buffer holding the bytes, the
 * NUL, and more bytes after it ("/../x"), so that nothing past the NUL may
 * count. NULL for the NULL case. */
static char *name_build(const name_case *c)
{
    if (!c->lit && !c->rep_n)
        return NULL;
    size_t n = c->rep_n + c->lit_len;
    char *b = malloc(n + 1 + 8);
    cr_assert_not_null(b);
    memset(b, c->rep, c->rep_n);
    memcpy(b + c->rep_n, c->lit, c->lit_len);
    b[n] = 0;
    memcpy(b + n + 1, "/../x/", 7);
    return b;
}

/* A printable form of a name for messages (four calls may share one
 * message: the buffers rotate). */
static const char *shown(const char *s)
{
    static char bufs[4][96];
    static unsigned turn;
    char *buf = bufs[turn++ % 4];
    const size_t cap = sizeof bufs[0];
    if (!s)
        return "(NULL)";
    size_t k = 0, len = strlen(s);
    for (size_t i = 0; s[i] && k + 5 < cap - 24; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            buf[k++] = (char)c;
        else
            k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
    }
    if (len > 40 && k + 5 >= cap - 24)
        snprintf(buf + k, cap - k, "...(%zu bytes)", len);
    else
        buf[k] = 0;
    return buf;
}

/* base/1/2/3/4/r is the log root; base is what is compared. */
static char nbase[256], nroot[400];
static ulog *nlog;

static const char *const pre_groups[] = { "pre", "pre.", "pre-x", "pre.x", "pre_" };

static void names_init(void)
{
    make_tmpdir(nbase, sizeof nbase, "hostile-names");
    char d[400];
    const char *steps[] = { "/1", "/1/2", "/1/2/3", "/1/2/3/4" };
    for (int i = 0; i < 4; i++) {
        snprintf(d, sizeof d, "%s%s", nbase, steps[i]);
        cr_assert_eq(mkdir(d, 0750), 0, "mkdir %s: %s", d, strerror(errno));
    }
    snprintf(nroot, sizeof nroot, "%s/1/2/3/4/r", nbase);
    nlog = open_with_topic(nroot, NULL, "t", 2, cfg_of("flush.policy", "none", NULL));
    for (int32_t p = 0; p < 2; p++) {
        ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1, .partition = p };
        append_ok(nlog, "t", &r, 1);
    }
    /* Groups whose names extend each other: deleting or describing one of
     * the table's names must not touch them. */
    for (size_t i = 0; i < sizeof pre_groups / sizeof pre_groups[0]; i++)
        cr_assert_eq(ulog_group_reset(nlog, pre_groups[i], "t", ULOG_PARTITION_ANY,
                                      ULOG_RESET_EARLIEST, 0), 0);
}

static void names_fini(void)
{
    ulog_close(nlog);
    nlog = NULL;
    if (nbase[0])
        rm_rf(nbase);
}

TestSuite(hostile_names, .init = names_init, .fini = names_fini);

typedef struct nsnap {
    pathset tree;
    char    topics[32768];
    char    groups[32768];
} nsnap;

static nsnap snap_a, snap_b;

static void nsnap_take(nsnap *s)
{
    ps_take(&s->tree, nbase);
    topic_names(nlog, s->topics, sizeof s->topics);
    group_names(nlog, s->groups, sizeof s->groups);
}

/* Expects the tree, the topic list and the group list of now to be those
 * of before; paths under `allowed` may have been added. */
static void nsnap_expect_same(nsnap *before, const char *allowed, const char *what)
{
    nsnap_take(&snap_b);
    char d[1024];
    size_t n = ps_diff(&before->tree, &snap_b.tree, allowed, d, sizeof d);
    cr_expect_eq(n, 0, "%s: the tree changed: %s", what, d);
    cr_expect_str_eq(snap_b.topics, before->topics, "%s: the topic list changed", what);
    cr_expect_str_eq(snap_b.groups, before->groups, "%s: the group list changed", what);
    ps_free(&snap_b.tree);
}

static int count_cases(bool ok)
{
    int n = 0;
    for (size_t i = 0; i < NNAMES; i++)
        n += names_table[i].ok == ok;
    return n;
}

Test(hostile_names, topic_names_rejected, .timeout = 120)
{
    cr_assert_geq(count_cases(false), 50, "at least 50 hostile names");
    ulog_config *tc = cfg_of("flush.policy", "none", NULL);
    int cases = 0;
    for (size_t i = 0; i < NNAMES; i++) {
        const name_case *c = &names_table[i];
        if (c->ok)
            continue;
        char *n = name_build(c);
        char what[160];
        snprintf(what, sizeof what, "topic name #%zu (%s) \"%s\"", i, c->what, shown(n));
        nsnap_take(&snap_a);

        ulog_record r = { .value = "v", .value_len = 1, .timestamp = 1,
                          .partition = ULOG_PARTITION_ANY };
        ulog_sub *s = (ulog_sub *)1;
        int64_t lo = -7, hi = -7;
        ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        int rc;
        rc = ulog_topic_create(nlog, n, 1, NULL);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_topic_create gave %s", what, ulog_errname(rc));
        rc = ulog_topic_create(nlog, n, 3, tc);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_topic_create with a config gave %s", what,
                     ulog_errname(rc));
        rc = ulog_subscribe(nlog, n, NULL, NULL, &s);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_subscribe gave %s", what, ulog_errname(rc));
        cr_expect_null(s, "%s: *out not cleared", what);
        if (rc == 0)
            ulog_sub_close(s);
        s = (ulog_sub *)1;
        rc = ulog_subscribe(nlog, n, "g", NULL, &s);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_subscribe with a group gave %s", what,
                     ulog_errname(rc));
        if (rc == 0)
            ulog_sub_close(s);
        rc = ulog_append(nlog, n, &r, 1);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_append gave %s", what, ulog_errname(rc));
        rc = ulog_watermarks(nlog, n, 0, &lo, &hi);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_watermarks gave %s", what, ulog_errname(rc));
        rc = ulog_topic_describe(nlog, n, &ti, NULL);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_topic_describe gave %s", what, ulog_errname(rc));
        rc = ulog_partition_describe(nlog, n, 0, &pi);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_partition_describe gave %s", what,
                     ulog_errname(rc));
        rc = ulog_group_reset(nlog, "g", n, ULOG_PARTITION_ANY, ULOG_RESET_EARLIEST, 0);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_group_reset (every partition) gave %s", what,
                     ulog_errname(rc));
        rc = ulog_group_reset(nlog, "g", n, 0, ULOG_RESET_OFFSET, 0);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_group_reset (partition 0) gave %s", what,
                     ulog_errname(rc));

        nsnap_expect_same(&snap_a, NULL, what);
        ps_free(&snap_a.tree);
        free(n);
        cases++;
    }
    ulog_config_free(tc);
    cr_log_info("%d rejected topic names, each through 10 calls", cases);
}

/* Whether group g has an entry for topic/partition; its committed offset
 * in *committed. */
static bool group_entry(const char *g, const char *topic, int32_t part, int64_t *committed)
{
    ulog_group_desc *d = NULL;
    if (ulog_group_describe(nlog, g, &d) != 0)
        return false;
    bool found = false;
    for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
        ulog_group_lag e = ULOG_GROUP_LAG_INIT;
        if (ulog_group_desc_get(d, i, &e) == 0 && strcmp(e.topic, topic) == 0 &&
            e.partition == part) {
            *committed = e.committed;
            found = true;
        }
    }
    ulog_group_desc_free(d);
    return found;
}

Test(hostile_names, topic_names_accepted, .timeout = 120)
{
    cr_assert_geq(count_cases(true), 20);
    int cases = 0;
    for (size_t i = 0; i < NNAMES; i++) {
        const name_case *c = &names_table[i];
        if (!c->ok)
            continue;
        char *n = name_build(c);
        const char *name = n;           /* the C string: up to the first NUL */
        char what[160], rel[600], allowed[600];
        snprintf(what, sizeof what, "topic name #%zu (%s) \"%s\"", i, c->what, shown(name));
        snprintf(rel, sizeof rel, "1/2/3/4/r/topics/%s", name);
        cr_assert_lt(snprintf(allowed, sizeof allowed, "%s/", rel), (int)sizeof allowed);
        nsnap_take(&snap_a);

        ulog_config *tc = cfg_of("flush.policy", "none", NULL);
        int rc = ulog_topic_create(nlog, n, 1, tc);
        ulog_config_free(tc);
        cr_expect_eq(rc, 0, "%s: ulog_topic_create gave %s", what, ulog_errname(rc));
        if (rc) {
            ps_free(&snap_a.tree);
            free(n);
            continue;
        }
        /* Exactly topics/<name>, its partition directory and first segment. */
        pathset now;
        ps_take(&now, nbase);
        char d[1024];
        pathset want = { 0 };
        for (size_t k = 0; k < snap_a.tree.n; k++)
            ps_add(&want, snap_a.tree.v[k]);
        char p0[700], s0[800];
        snprintf(p0, sizeof p0, "%s/0", rel);
        snprintf(s0, sizeof s0, "%s/0/00000000000000000000.log", rel);
        ps_add(&want, rel);
        ps_add(&want, p0);
        ps_add(&want, s0);
        qsort(want.v, want.n, sizeof *want.v, ps_cmp);
        size_t nd = ps_diff(&want, &now, NULL, d, sizeof d);
        cr_expect_eq(nd, 0, "%s: the tree after ulog_topic_create differs from the expected "
                     "directory: %s", what, d);
        ps_free(&want);
        ps_free(&now);

        ulog_strlist *list = NULL;
        cr_expect_eq(ulog_topic_list(nlog, &list), 0);
        cr_expect_eq(list_count(list, name), 1, "%s: not listed once", what);
        ulog_strlist_free(list);
        rc = ulog_topic_create(nlog, name, 1, NULL);
        cr_expect_eq(rc, ULOG_EEXIST, "%s: created twice: %s", what, ulog_errname(rc));

        uint8_t val[8];
        memcpy(val, &i, sizeof val < sizeof i ? sizeof val : sizeof i);
        ulog_record r = { .key = "k", .key_len = 1, .value = val, .value_len = sizeof val,
                          .timestamp = 1234, .partition = ULOG_PARTITION_ANY };
        rc = ulog_append(nlog, n, &r, 1);
        cr_expect_eq(rc, 0, "%s: ulog_append gave %s", what, ulog_errname(rc));
        cr_expect_eq(r.offset, 0, "%s: offset %lld", what, (long long)r.offset);
        int64_t lo = -1, hi = -1;
        rc = ulog_watermarks(nlog, n, 0, &lo, &hi);
        cr_expect(rc == 0 && lo == 0 && hi == 1, "%s: ulog_watermarks: %s [%lld, %lld)", what,
                  ulog_errname(rc), (long long)lo, (long long)hi);
        ulog_sub *s = NULL;
        ulog_config *sc = cfg_of("auto.offset.reset", "earliest", NULL);
        rc = ulog_subscribe(nlog, n, NULL, sc, &s);
        ulog_config_free(sc);
        cr_expect_eq(rc, 0, "%s: ulog_subscribe gave %s", what, ulog_errname(rc));
        if (rc == 0) {
            ulog_msg m;
            rc = ulog_poll(s, 0, &m);
            cr_expect(rc == 0 && m.offset == 0 && m.value_len == sizeof val &&
                      memcmp(m.value, val, sizeof val) == 0 && strcmp(m.topic, name) == 0,
                      "%s: the record did not read back (%s)", what, ulog_errname(rc));
            cr_expect_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
            ulog_sub_close(s);
        }
        rc = ulog_group_reset(nlog, "gt", n, 0, ULOG_RESET_LATEST, 0);
        cr_expect_eq(rc, 0, "%s: ulog_group_reset gave %s", what, ulog_errname(rc));
        int64_t committed = -1;
        cr_expect(group_entry("gt", name, 0, &committed) && committed == 1,
                  "%s: the group reset is not described (committed %lld)", what,
                  (long long)committed);

        /* Everything else it made is inside topics/<name>/. */
        nsnap_take(&snap_b);
        nd = ps_diff(&snap_a.tree, &snap_b.tree, allowed, d, sizeof d);
        ps_free(&snap_b.tree);
        cr_expect_eq(nd, 1, "%s: made more than topics/<name>: %s", what, d);
        ps_free(&snap_a.tree);
        free(n);
        cases++;
    }
    cr_log_info("%d accepted edge topic names", cases);
}

Test(hostile_names, group_names_rejected, .timeout = 120)
{
    cr_assert_geq(count_cases(false), 50, "at least 50 hostile names");
    int cases = 0;
    for (size_t i = 0; i < NNAMES; i++) {
        const name_case *c = &names_table[i];
        if (c->ok)
            continue;
        char *g = name_build(c);
        char what[160];
        snprintf(what, sizeof what, "group name #%zu (%s) \"%s\"", i, c->what, shown(g));
        nsnap_take(&snap_a);

        ulog_sub *s = (ulog_sub *)1;
        int rc = ulog_subscribe(nlog, "t", g, NULL, &s);
        if (g) {
            cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_subscribe gave %s", what, ulog_errname(rc));
            cr_expect_null(s, "%s: *out not cleared", what);
        } else {
            /* Documented: no group. */
            cr_expect_eq(rc, 0, "%s: ulog_subscribe without a group gave %s", what,
                         ulog_errname(rc));
            if (rc == 0)
                cr_expect_eq(ulog_commit(s), ULOG_EINVAL, "commit without a group");
        }
        if (rc == 0)
            ulog_sub_close(s);
        ulog_group_desc *d = (ulog_group_desc *)1;
        rc = ulog_group_describe(nlog, g, &d);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_group_describe gave %s", what, ulog_errname(rc));
        cr_expect_null(d, "%s: *out not cleared", what);
        if (rc == 0)
            ulog_group_desc_free(d);
        rc = ulog_group_delete(nlog, g);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_group_delete gave %s", what, ulog_errname(rc));
        rc = ulog_group_reset(nlog, g, "t", ULOG_PARTITION_ANY, ULOG_RESET_EARLIEST, 0);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_group_reset (every partition) gave %s", what,
                     ulog_errname(rc));
        rc = ulog_group_reset(nlog, g, "t", 1, ULOG_RESET_OFFSET, 0);
        cr_expect_eq(rc, ULOG_EINVAL, "%s: ulog_group_reset (partition 1) gave %s", what,
                     ulog_errname(rc));

        nsnap_expect_same(&snap_a, NULL, what);
        ps_free(&snap_a.tree);
        free(g);
        cases++;
    }
    cr_log_info("%d rejected group names, each through 5 calls", cases);
}

Test(hostile_names, group_names_accepted, .timeout = 120)
{
    ulog_config *sc = cfg_of("auto.offset.reset", "earliest", NULL);
    int cases = 0;
    for (size_t i = 0; i < NNAMES; i++) {
        const name_case *c = &names_table[i];
        if (!c->ok)
            continue;
        char *g = name_build(c);
        const char *name = g;
        char what[160];
        snprintf(what, sizeof what, "group name #%zu (%s) \"%s\"", i, c->what, shown(name));
        nsnap_take(&snap_a);

        ulog_group_desc *d = (ulog_group_desc *)1;
        int rc = ulog_group_describe(nlog, g, &d);
        cr_expect_eq(rc, ULOG_ENOENT, "%s: describe before any commit: %s", what,
                     ulog_errname(rc));
        cr_expect_eq(ulog_group_delete(nlog, g), ULOG_ENOENT, "%s: delete before any commit",
                     what);

        ulog_sub *s = NULL;
        rc = ulog_subscribe(nlog, "t", g, sc, &s);
        cr_expect_eq(rc, 0, "%s: ulog_subscribe gave %s", what, ulog_errname(rc));
        if (rc) {
            ps_free(&snap_a.tree);
            free(g);
            continue;
        }
        ulog_msg m;
        int got = 0;
        while (ulog_poll(s, 0, &m) == 0)
            got++;
        cr_expect_eq(got, 2, "%s: read %d records", what, got);
        rc = ulog_commit(s);
        cr_expect_eq(rc, 0, "%s: ulog_commit gave %s", what, ulog_errname(rc));
        ulog_sub_close(s);

        ulog_strlist *list = NULL;
        cr_expect_eq(ulog_group_list(nlog, &list), 0);
        cr_expect_eq(list_count(list, name), 1, "%s: not listed once", what);
        size_t before = snap_a.groups[0] ? 1 : 0;
        for (const char *q = snap_a.groups; *q; q++)
            before += *q == '|';
        cr_expect_eq(ulog_strlist_count(list), before + 1, "%s: %zu groups listed, expected %zu",
                     what, ulog_strlist_count(list), before + 1);
        ulog_strlist_free(list);
        int64_t committed = -1;
        cr_expect(group_entry(name, "t", 0, &committed) && committed == 1,
                  "%s: committed offset of partition 0: %lld", what, (long long)committed);
        d = NULL;
        cr_expect_eq(ulog_group_describe(nlog, name, &d), 0);
        cr_expect_eq(ulog_group_desc_count(d), 2, "%s: %zu entries, expected 2 (the pre-made "
                     "groups must not show)", what, ulog_group_desc_count(d));
        ulog_group_desc_free(d);
        rc = ulog_group_reset(nlog, g, "t", 0, ULOG_RESET_EARLIEST, 0);
        cr_expect_eq(rc, 0, "%s: ulog_group_reset gave %s", what, ulog_errname(rc));
        cr_expect(group_entry(name, "t", 0, &committed) && committed == 0,
                  "%s: after the reset: %lld", what, (long long)committed);
        rc = ulog_group_delete(nlog, g);
        cr_expect_eq(rc, 0, "%s: ulog_group_delete gave %s", what, ulog_errname(rc));
        cr_expect_eq(ulog_group_delete(nlog, g), ULOG_ENOENT, "%s: deleted twice", what);
        d = (ulog_group_desc *)1;
        cr_expect_eq(ulog_group_describe(nlog, g, &d), ULOG_ENOENT, "%s: described after "
                     "delete", what);

        /* Groups live in LMDB: no file appears or goes; the group list is
         * back to before, the pre-made groups with it. */
        nsnap_expect_same(&snap_a, NULL, what);
        ps_free(&snap_a.tree);
        free(g);
        cases++;
    }
    ulog_config_free(sc);
    char gl[32768];
    group_names(nlog, gl, sizeof gl);
    cr_expect_str_eq(gl, "pre|pre-x|pre.|pre.x|pre_", "the pre-made groups");
    cr_log_info("%d accepted edge group names", cases);
}

/* ================================================================ configs */

static const char *const all_settings[] = {
    "file.mode", "dir.mode", "index.flush.ms",
    "segment.bytes", "max.message.bytes", "flush.policy", "flush.ms", "index.interval.bytes",
    "message.timestamp.type", "preallocate",
    "auto.offset.reset", "poll.spin.us",
};
#define NSETTINGS (sizeof all_settings / sizeof all_settings[0])

/* Every setting as ulog_config_get() reads it ("-" when not set). */
typedef struct cfg_dump {
    char v[NSETTINGS][64];
} cfg_dump;

static void dump_cfg(const ulog_config *c, cfg_dump *d)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        int rc = ulog_config_get(c, all_settings[i], d->v[i], sizeof d->v[i]);
        if (rc == ULOG_ENOENT)
            snprintf(d->v[i], sizeof d->v[i], "-");
        else if (rc)
            snprintf(d->v[i], sizeof d->v[i], "<%s>", ulog_errname(rc));
    }
}

/* The first setting that differs between a and b other than `except`, or
 * NULL. */
static const char *dump_diff(const cfg_dump *a, const cfg_dump *b, const char *except)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if ((!except || strcmp(except, all_settings[i]) != 0) && strcmp(a->v[i], b->v[i]) != 0)
            return all_settings[i];
    return NULL;
}

enum { SCOPE_LOG, SCOPE_TOPIC, SCOPE_SUB };
enum { G_NONE, G_ZEROS, G_NINES, G_JUNK, G_LONG_NAME };

typedef struct cfg_case {
    const char *name, *value;   /* NULL: the NULL pointer */
    int         gen;            /* G_ZEROS: 5000 '0' before value; G_NINES: 5000 '9';
                                   G_JUNK: 5000 'x' after value; G_LONG_NAME: 5000 'a'
                                   before name */
    int         rc;             /* of ulog_config_set */
    const char *canon;          /* rc 0: what ulog_config_get then gives */
    int         apply;          /* rc 0: the result of the call of the scope */
} cfg_case;

#define OK(n, v, canon) { n, v, G_NONE, 0, canon, 0 }
#define BAD(n, v) { n, v, G_NONE, ULOG_EINVAL, NULL, 0 }
/* Another scope's setting: the setter takes it, the call refuses it. */
#define XS(n, v, canon) { n, v, G_NONE, 0, canon, ULOG_EINVAL }
#define GEN(g, n, v, rc, canon) { n, v, g, rc, canon, 0 }

static const cfg_case log_cases[] = {
    /* file.mode: octal, 0..0777, owner read and write */
    OK("file.mode", "0640", "0640"),
    OK("file.mode", "640", "0640"),
    OK("file.mode", "0600", "0600"),
    OK("file.mode", "0777", "0777"),
    OK("file.mode", "000000600", "0600"),
    OK("file.mode", "0644\0junk", "0644"),
    BAD("file.mode", "0"),
    BAD("file.mode", "0400"),
    BAD("file.mode", "0200"),
    BAD("file.mode", "0500"),
    BAD("file.mode", "420"),
    BAD("file.mode", "01777"),
    BAD("file.mode", "04755"),
    BAD("file.mode", "0800"),
    BAD("file.mode", "0x1a4"),
    BAD("file.mode", "0o640"),
    BAD("file.mode", "+0640"),
    BAD("file.mode", "-0640"),
    BAD("file.mode", " 0640"),
    BAD("file.mode", "0640 "),
    BAD("file.mode", "0640\n"),
    BAD("file.mode", ""),
    BAD("file.mode", "rw-r-----"),
    BAD("file.mode", "0644.0"),
    BAD("file.mode", "9223372036854775808"),
    BAD("file.mode", "7777777777777777777777777"),
    BAD("file.mode", NULL),
    GEN(G_ZEROS, "file.mode", "600", 0, "0600"),
    GEN(G_NINES, "file.mode", "", ULOG_EINVAL, NULL),
    /* dir.mode: octal, 0..0777, owner read, write and search */
    OK("dir.mode", "0750", "0750"),
    OK("dir.mode", "700", "0700"),
    OK("dir.mode", "0777", "0777"),
    BAD("dir.mode", "0600"),
    BAD("dir.mode", "0640"),
    BAD("dir.mode", "0300"),
    BAD("dir.mode", "0500"),
    BAD("dir.mode", "1777"),
    BAD("dir.mode", "0x1ed"),
    BAD("dir.mode", ""),
    BAD("dir.mode", "drwx"),
    BAD("dir.mode", "-1"),
    BAD("dir.mode", "0750x"),
    BAD("dir.mode", "07 50"),
    BAD("dir.mode", "0750\t"),
    /* index.flush.ms: 1..60000 */
    OK("index.flush.ms", "1", "1"),
    OK("index.flush.ms", "60000", "60000"),
    OK("index.flush.ms", "0100", "100"),
    OK("index.flush.ms", "100\0", "100"),
    BAD("index.flush.ms", "0"),
    BAD("index.flush.ms", "60001"),
    BAD("index.flush.ms", "-1"),
    BAD("index.flush.ms", "-0"),
    BAD("index.flush.ms", "+100"),
    BAD("index.flush.ms", "1e3"),
    BAD("index.flush.ms", "100.0"),
    BAD("index.flush.ms", "100ms"),
    BAD("index.flush.ms", " 100"),
    BAD("index.flush.ms", "100 "),
    BAD("index.flush.ms", "0x64"),
    BAD("index.flush.ms", "9223372036854775807"),
    BAD("index.flush.ms", "9223372036854775808"),
    BAD("index.flush.ms", "18446744073709551616"),
    BAD("index.flush.ms", "99999999999999999999999999999"),
    BAD("index.flush.ms", ""),
    BAD("index.flush.ms", "\xd9\xa1\xd9\xa0\xd9\xa0"),     /* Arabic-Indic 100 */
    BAD("index.flush.ms", "\xef\xbc\x91\xef\xbc\x90\xef\xbc\x90"), /* fullwidth 100 */
    BAD("index.flush.ms", "%d"),
    BAD("index.flush.ms", "NaN"),
    BAD("index.flush.ms", "inf"),
    GEN(G_ZEROS, "index.flush.ms", "100", 0, "100"),
    GEN(G_NINES, "index.flush.ms", "", ULOG_EINVAL, NULL),
    GEN(G_JUNK, "index.flush.ms", "100", ULOG_EINVAL, NULL),
    /* unknown names */
    BAD("", "0640"),
    BAD("file_mode", "0640"),
    BAD("FILE.MODE", "0640"),
    BAD("File.Mode", "0640"),
    BAD("file.mode ", "0640"),
    BAD(" file.mode", "0640"),
    BAD("file.mode\n", "0640"),
    BAD("file.mode=0640", "0640"),
    OK("file.mode\0junk", "0644", "0644"),
    BAD("log.dirs", "/tmp"),
    BAD("%s%s%n", "1"),
    BAD(NULL, "0640"),
    GEN(G_LONG_NAME, "file.mode", "0640", ULOG_EINVAL, NULL),
    /* other scopes' names: taken by the setter, refused by ulog_open */
    XS("flush.policy", "none", "none"),
    XS("segment.bytes", "4096", "4096"),
    XS("preallocate", "true", "true"),
    XS("auto.offset.reset", "earliest", "earliest"),
    XS("poll.spin.us", "0", "0"),
};

static const cfg_case topic_cases[] = {
    /* segment.bytes: 4096..2^30 */
    OK("segment.bytes", "4096", "4096"),
    OK("segment.bytes", "1073741824", "1073741824"),
    OK("segment.bytes", "00004096", "4096"),
    BAD("segment.bytes", "4095"),
    BAD("segment.bytes", "1073741825"),
    BAD("segment.bytes", "0"),
    BAD("segment.bytes", "-4096"),
    BAD("segment.bytes", "4k"),
    BAD("segment.bytes", "4KB"),
    BAD("segment.bytes", "0x1000"),
    BAD("segment.bytes", "1_000_000"),
    BAD("segment.bytes", "1,000,000"),
    BAD("segment.bytes", "2147483648"),
    BAD("segment.bytes", "4294967296"),
    BAD("segment.bytes", "9223372036854775808"),
    BAD("segment.bytes", "4096.5"),
    GEN(G_ZEROS, "segment.bytes", "4096", 0, "4096"),
    GEN(G_NINES, "segment.bytes", "", ULOG_EINVAL, NULL),
    GEN(G_JUNK, "segment.bytes", "4096", ULOG_EINVAL, NULL),
    /* max.message.bytes: 64..2^30-1 */
    OK("max.message.bytes", "64", "64"),
    OK("max.message.bytes", "1073741823", "1073741823"),
    BAD("max.message.bytes", "63"),
    BAD("max.message.bytes", "1073741824"),
    BAD("max.message.bytes", "-1"),
    BAD("max.message.bytes", ""),
    BAD("max.message.bytes", "1048588 "),
    BAD("max.message.bytes", NULL),
    /* flush.policy: none | interval | always, exactly */
    OK("flush.policy", "none", "none"),
    OK("flush.policy", "interval", "interval"),
    OK("flush.policy", "always", "always"),
    OK("flush.policy", "always\0junk", "always"),
    BAD("flush.policy", "None"),
    BAD("flush.policy", "NONE"),
    BAD("flush.policy", "Always"),
    BAD("flush.policy", " always"),
    BAD("flush.policy", "always "),
    BAD("flush.policy", "always\n"),
    BAD("flush.policy", "alway"),
    BAD("flush.policy", "alwaysx"),
    BAD("flush.policy", "0"),
    BAD("flush.policy", "2"),
    BAD("flush.policy", ""),
    BAD("flush.policy", "none,always"),
    BAD("flush.policy", "\xc3\xa1lways"),
    GEN(G_JUNK, "flush.policy", "none", ULOG_EINVAL, NULL),
    /* flush.ms: 1..3600000 */
    OK("flush.ms", "1", "1"),
    OK("flush.ms", "3600000", "3600000"),
    BAD("flush.ms", "0"),
    BAD("flush.ms", "3600001"),
    BAD("flush.ms", "-1"),
    BAD("flush.ms", "1s"),
    /* index.interval.bytes: 512..2^24 */
    OK("index.interval.bytes", "512", "512"),
    OK("index.interval.bytes", "16777216", "16777216"),
    BAD("index.interval.bytes", "511"),
    BAD("index.interval.bytes", "16777217"),
    BAD("index.interval.bytes", "4096\r"),
    /* message.timestamp.type: CreateTime | LogAppendTime, case and all */
    OK("message.timestamp.type", "CreateTime", "CreateTime"),
    OK("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
    BAD("message.timestamp.type", "createtime"),
    BAD("message.timestamp.type", "CREATETIME"),
    BAD("message.timestamp.type", "Createtime"),
    BAD("message.timestamp.type", "logappendtime"),
    BAD("message.timestamp.type", "create_time"),
    BAD("message.timestamp.type", "0"),
    BAD("message.timestamp.type", "1"),
    BAD("message.timestamp.type", ""),
    /* preallocate: true | false */
    OK("preallocate", "true", "true"),
    OK("preallocate", "false", "false"),
    BAD("preallocate", "True"),
    BAD("preallocate", "TRUE"),
    BAD("preallocate", "1"),
    BAD("preallocate", "0"),
    BAD("preallocate", "yes"),
    BAD("preallocate", "on"),
    BAD("preallocate", ""),
    /* retention.ms, retention.bytes: -1 (unlimited) | 0..2^62 */
    OK("retention.ms", "1000", "1000"),
    OK("retention.ms", "-1", "-1"),
    OK("retention.ms", "0", "0"),
    OK("retention.bytes", "4611686018427387904", "4611686018427387904"),
    BAD("retention.ms", "-2"),
    BAD("retention.ms", "-1 "),
    BAD("retention.ms", "- 1"),
    BAD("retention.ms", "-0"),
    BAD("retention.ms", "-"),
    BAD("retention.ms", "4611686018427387905"),
    BAD("retention.bytes", "-9223372036854775808"),
    BAD("retention.bytes", "1e9"),
    /* segment.ms: 1..2^62 */
    OK("segment.ms", "1", "1"),
    BAD("segment.ms", "0"),
    BAD("segment.ms", "-1"),
    /* cleanup.policy and compaction's settings */
    OK("cleanup.policy", "compact", "compact"),
    OK("cleanup.policy", "delete,compact", "compact,delete"),
    BAD("cleanup.policy", "Compact"),
    BAD("cleanup.policy", "compact,"),
    BAD("cleanup.policy", "compact,compact"),
    OK("min.cleanable.dirty.ratio", "0.50", "0.5"),
    BAD("min.cleanable.dirty.ratio", "1.0000001"),
    BAD("min.cleanable.dirty.ratio", "-0"),
    BAD("min.cleanable.dirty.ratio", "5e-1"),
    BAD("delete.retention.ms", "-1"),
    /* unknown names, Kafka's included */
    BAD("retention.msec", "1000"),
    BAD("compression.type", "zstd"),
    BAD("segment.byte", "4096"),
    BAD("segment.bytes.", "4096"),
    BAD("Segment.Bytes", "4096"),
    BAD("segment.bytes\t", "4096"),
    BAD(NULL, NULL),
    GEN(G_LONG_NAME, "segment.bytes", "4096", ULOG_EINVAL, NULL),
    /* other scopes' names: taken by the setter, refused by ulog_topic_create */
    XS("file.mode", "0640", "0640"),
    XS("index.flush.ms", "100", "100"),
    XS("auto.offset.reset", "earliest", "earliest"),
    XS("poll.spin.us", "10", "10"),
};

static const cfg_case sub_cases[] = {
    /* auto.offset.reset: earliest | latest | none, exactly */
    OK("auto.offset.reset", "earliest", "earliest"),
    OK("auto.offset.reset", "latest", "latest"),
    OK("auto.offset.reset", "none", "none"),
    OK("auto.offset.reset", "latest\0junk", "latest"),
    BAD("auto.offset.reset", "Earliest"),
    BAD("auto.offset.reset", "EARLIEST"),
    BAD("auto.offset.reset", "Latest"),
    BAD("auto.offset.reset", "smallest"),
    BAD("auto.offset.reset", "largest"),
    BAD("auto.offset.reset", "beginning"),
    BAD("auto.offset.reset", "end"),
    BAD("auto.offset.reset", "earliest "),
    BAD("auto.offset.reset", " latest"),
    BAD("auto.offset.reset", "earliest\n"),
    BAD("auto.offset.reset", "none\t"),
    BAD("auto.offset.reset", ""),
    BAD("auto.offset.reset", "0"),
    BAD("auto.offset.reset", "-1"),
    BAD("auto.offset.reset", "%s"),
    BAD("auto.offset.reset", "\xef\xbd\x85\xef\xbd\x81\xef\xbd\x92\xef\xbd\x8c\xef\xbd\x89"
                             "\xef\xbd\x85\xef\xbd\x93\xef\xbd\x94"),  /* fullwidth */
    BAD("auto.offset.reset", NULL),
    GEN(G_JUNK, "auto.offset.reset", "earliest", ULOG_EINVAL, NULL),
    /* poll.spin.us: 0..100000 */
    OK("poll.spin.us", "0", "0"),
    OK("poll.spin.us", "100000", "100000"),
    OK("poll.spin.us", "00", "0"),
    OK("poll.spin.us", "010", "10"),
    BAD("poll.spin.us", "100001"),
    BAD("poll.spin.us", "-1"),
    BAD("poll.spin.us", "-0"),
    BAD("poll.spin.us", "+0"),
    BAD("poll.spin.us", " 0"),
    BAD("poll.spin.us", "0 "),
    BAD("poll.spin.us", "1e5"),
    BAD("poll.spin.us", "0x10"),
    BAD("poll.spin.us", "9223372036854775808"),
    BAD("poll.spin.us", "18446744073709551615"),
    BAD("poll.spin.us", ""),
    BAD("poll.spin.us", "100us"),
    BAD("poll.spin.us", "1.5"),
    BAD("poll.spin.us", "\xe2\x88\x9e"),   /* infinity sign */
    GEN(G_NINES, "poll.spin.us", "", ULOG_EINVAL, NULL),
    GEN(G_ZEROS, "poll.spin.us", "7", 0, "7"),
    /* unknown names, Kafka consumer settings included */
    BAD("auto.offset", "earliest"),
    BAD("auto.offset.reset.", "earliest"),
    BAD("AUTO.OFFSET.RESET", "earliest"),
    BAD("auto_offset_reset", "earliest"),
    BAD("group.id", "g"),
    BAD("enable.auto.commit", "true"),
    BAD("poll_spin_us", "0"),
    BAD("", ""),
    BAD(NULL, "earliest"),
    GEN(G_LONG_NAME, "poll.spin.us", "0", ULOG_EINVAL, NULL),
    /* other scopes' names: taken by the setter, refused by ulog_subscribe */
    XS("segment.bytes", "4096", "4096"),
    XS("flush.policy", "none", "none"),
    XS("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
    XS("file.mode", "0640", "0640"),
    XS("index.flush.ms", "100", "100"),
};

/* Builds the name and value of c (heap copies, or NULL). */
static void cfg_case_build(const cfg_case *c, char **name, char **value)
{
    *name = NULL;
    *value = NULL;
    if (c->name) {
        size_t extra = c->gen == G_LONG_NAME ? 5000 : 0;
        *name = malloc(extra + strlen(c->name) + 1);
        cr_assert_not_null(*name);
        memset(*name, 'a', extra);
        strcpy(*name + extra, c->name);
    }
    if (c->value) {
        size_t extra = c->gen == G_ZEROS || c->gen == G_NINES || c->gen == G_JUNK ? 5000 : 0;
        *value = malloc(extra + strlen(c->value) + 1);
        cr_assert_not_null(*value);
        if (c->gen == G_JUNK) {
            strcpy(*value, c->value);
            memset(*value + strlen(c->value), 'x', extra);
            (*value)[strlen(c->value) + extra] = 0;
        } else {
            memset(*value, c->gen == G_NINES ? '9' : '0', extra);
            strcpy(*value + extra, c->value);
        }
    }
}

/* A config holding a baseline of valid settings of the scope. */
static ulog_config *baseline(int scope)
{
    switch (scope) {
    case SCOPE_LOG:
        return cfg_of("index.flush.ms", "250", "dir.mode", "0750", NULL);
    case SCOPE_TOPIC:
        return cfg_of("flush.policy", "none", "segment.bytes", "65536", NULL);
    default:
        return cfg_of("auto.offset.reset", "earliest", NULL);
    }
}

static char cfg_dir[256];
SCRATCH_SUITE(hostile_config, cfg_dir);

/* The call of the scope, with c: ulog_open of a new directory, a new topic,
 * or a subscription. Returns its result after checking that a refused call
 * made nothing and that an accepted topic has the setting. */
static int apply_scope(int scope, ulog *log, const ulog_config *c, int k, const char *name,
                       const char *canon, const char *what)
{
    int rc;
    char path[400];
    struct stat st;
    switch (scope) {
    case SCOPE_LOG: {
        snprintf(path, sizeof path, "%s/open-%d", cfg_dir, k);
        ulog *l = (ulog *)1;
        rc = ulog_open(path, c, &l);
        if (rc == 0) {
            ulog_close(l);
            rm_rf(path);
        } else {
            cr_expect_null(l, "%s: *out not cleared", what);
            cr_expect_neq(stat(path, &st), 0, "%s: a refused ulog_open made %s", what, path);
        }
        return rc;
    }
    case SCOPE_TOPIC: {
        char topic[32];
        snprintf(topic, sizeof topic, "c%d", k);
        rc = ulog_topic_create(log, topic, 1, c);
        ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
        ulog_config *eff = NULL;
        int drc = ulog_topic_describe(log, topic, &ti, &eff);
        if (rc == 0) {
            char v[64] = "";
            cr_expect_eq(drc, 0, "%s: describe", what);
            if (drc == 0 && canon) {
                cr_expect_eq(ulog_config_get(eff, name, v, sizeof v), 0);
                cr_expect_str_eq(v, canon, "%s: the topic's %s is %s", what, name, v);
            }
        } else {
            cr_expect_eq(drc, ULOG_ENOENT, "%s: a refused create left a topic", what);
            snprintf(path, sizeof path, "%s/log/topics/%s", cfg_dir, topic);
            cr_expect_neq(stat(path, &st), 0, "%s: a refused create made %s", what, path);
        }
        ulog_config_free(eff);
        return rc;
    }
    default: {
        ulog_sub *s = (ulog_sub *)1;
        rc = ulog_subscribe(log, "t", NULL, c, &s);
        if (rc == 0)
            ulog_sub_close(s);
        else
            cr_expect_null(s, "%s: *out not cleared", what);
        return rc;
    }
    }
}

static void run_cfg_cases(int scope, const cfg_case *cases, size_t n)
{
    static const char *const scope_names[] = { "log", "topic", "subscription" };
    char lp[300];
    snprintf(lp, sizeof lp, "%s/log", cfg_dir);
    ulog *log = NULL;
    if (scope != SCOPE_LOG)
        log = open_with_topic(lp, NULL, "t", 1, cfg_of("flush.policy", "none", NULL));
    int failed_sets = 0, applied = 0;
    for (size_t i = 0; i < n; i++) {
        const cfg_case *c = &cases[i];
        char *name, *value;
        cfg_case_build(c, &name, &value);
        char what[200];
        snprintf(what, sizeof what, "%s scope #%zu: %s = \"%s\"", scope_names[scope], i,
                 c->gen == G_LONG_NAME ? "(5000 a's + name)" : shown(name),
                 c->gen == G_ZEROS ? "(5000 zeros + value)" : c->gen == G_NINES
                 ? "(5000 nines)" : c->gen == G_JUNK ? "(value + 5000 x's)" : shown(value));

        ulog_config *cfg = baseline(scope);
        cfg_dump before, after;
        dump_cfg(cfg, &before);
        char err[256];
        memset(err, 0, sizeof err);
        int rc = ulog_config_set(cfg, name, value, err, sizeof err);
        cr_expect_eq(rc, c->rc, "%s: ulog_config_set gave %s, expected %s (%s)", what,
                     ulog_errname(rc), ulog_errname(c->rc), err);
        dump_cfg(cfg, &after);
        if (rc != 0) {
            const char *d = dump_diff(&before, &after, NULL);
            cr_expect_null(d, "%s: a failed set changed %s", what, d);
            cr_expect_gt(strlen(err), 0, "%s: no message in errbuf", what);
            /* The message is truncated to the buffer given, and nothing
             * past it is written; no buffer at all is fine. */
            char small[32];
            memset(small, 0x5a, sizeof small);
            cr_expect_eq(ulog_config_set(cfg, name, value, small, 8), rc, "%s: again", what);
            cr_expect(memchr(small, 0, 8) != NULL, "%s: errbuf of 8 not terminated", what);
            for (size_t k = 8; k < sizeof small; k++)
                cr_expect_eq((unsigned char)small[k], 0x5a, "%s: wrote past errbuf_len", what);
            memset(small, 0x5a, sizeof small);
            cr_expect_eq(ulog_config_set(cfg, name, value, small, 0), rc);
            cr_expect_eq((unsigned char)small[0], 0x5a, "%s: errbuf_len 0 written", what);
            cr_expect_eq(ulog_config_set(cfg, name, value, NULL, 100), rc);
            dump_cfg(cfg, &after);
            d = dump_diff(&before, &after, NULL);
            cr_expect_null(d, "%s: the failed sets changed %s", what, d);
            failed_sets++;
        } else {
            const char *d = dump_diff(&before, &after, name);
            cr_expect_null(d, "%s: setting it changed %s too", what, d);
            if (c->canon) {
                char v[64] = "";
                cr_expect_eq(ulog_config_get(cfg, name, v, sizeof v), 0);
                cr_expect_str_eq(v, c->canon, "%s: reads back as \"%s\"", what, v);
            }
            int arc = apply_scope(scope, log, cfg, (int)i, name, c->canon, what);
            cr_expect_eq(arc, c->apply, "%s: the %s call gave %s, expected %s", what,
                         scope_names[scope], ulog_errname(arc), ulog_errname(c->apply));
            applied++;
        }
        ulog_config_free(cfg);
        free(name);
        free(value);
    }
    ulog_close(log);
    cr_log_info("%s scope: %zu cases, %d refused by the setter, %d passed to the call",
                scope_names[scope], n, failed_sets, applied);
}

Test(hostile_config, log_scope, .timeout = 120)
{
    size_t n = sizeof log_cases / sizeof log_cases[0];
    cr_assert_geq(n, 50);
    run_cfg_cases(SCOPE_LOG, log_cases, n);
}

Test(hostile_config, topic_scope, .timeout = 120)
{
    size_t n = sizeof topic_cases / sizeof topic_cases[0];
    cr_assert_geq(n, 50);
    run_cfg_cases(SCOPE_TOPIC, topic_cases, n);
}

Test(hostile_config, subscription_scope, .timeout = 120)
{
    size_t n = sizeof sub_cases / sizeof sub_cases[0];
    cr_assert_geq(n, 50);
    run_cfg_cases(SCOPE_SUB, sub_cases, n);
}

/* The typed setter: the same ranges, and enums are not numbers. */
Test(hostile_config, set_int)
{
    static const struct {
        const char *name;
        int64_t v;
        int rc;
        const char *canon;
    } cases[] = {
        { "file.mode", 0640, 0, "0640" },
        { "file.mode", 0400, ULOG_EINVAL, NULL },
        { "file.mode", 0, ULOG_EINVAL, NULL },
        { "file.mode", 01000 | 0600, ULOG_EINVAL, NULL },
        { "file.mode", -1, ULOG_EINVAL, NULL },
        { "file.mode", INT64_MIN, ULOG_EINVAL, NULL },
        { "dir.mode", 0700, 0, "0700" },
        { "dir.mode", 0600, ULOG_EINVAL, NULL },
        { "index.flush.ms", 0, ULOG_EINVAL, NULL },
        { "index.flush.ms", 1, 0, "1" },
        { "index.flush.ms", 60000, 0, "60000" },
        { "index.flush.ms", 60001, ULOG_EINVAL, NULL },
        { "index.flush.ms", INT64_MAX, ULOG_EINVAL, NULL },
        { "segment.bytes", 4095, ULOG_EINVAL, NULL },
        { "segment.bytes", 4096, 0, "4096" },
        { "segment.bytes", 1 << 30, 0, "1073741824" },
        { "segment.bytes", (1 << 30) + 1, ULOG_EINVAL, NULL },
        { "segment.bytes", INT64_MIN, ULOG_EINVAL, NULL },
        { "segment.bytes", (int64_t)1 << 32 | 4096, ULOG_EINVAL, NULL },
        { "max.message.bytes", 63, ULOG_EINVAL, NULL },
        { "flush.ms", -3600000, ULOG_EINVAL, NULL },
        { "index.interval.bytes", 511, ULOG_EINVAL, NULL },
        { "flush.policy", 0, ULOG_EINVAL, NULL },
        { "flush.policy", 2, ULOG_EINVAL, NULL },
        { "preallocate", 1, ULOG_EINVAL, NULL },
        { "message.timestamp.type", 0, ULOG_EINVAL, NULL },
        { "auto.offset.reset", 1, ULOG_EINVAL, NULL },
        { "poll.spin.us", -1, ULOG_EINVAL, NULL },
        { "poll.spin.us", 0, 0, "0" },
        { "poll.spin.us", 100000, 0, "100000" },
        { "poll.spin.us", 100001, ULOG_EINVAL, NULL },
        { "poll.spin.us", INT64_MAX, ULOG_EINVAL, NULL },
        { "no.such.setting", 1, ULOG_EINVAL, NULL },
        { "", 1, ULOG_EINVAL, NULL },
        { NULL, 1, ULOG_EINVAL, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ulog_config *cfg = cfg_of("flush.policy", "interval", "poll.spin.us", "5", NULL);
        cfg_dump before, after;
        dump_cfg(cfg, &before);
        char err[256] = "";
        int rc = ulog_config_set_int(cfg, cases[i].name, cases[i].v, err, sizeof err);
        cr_expect_eq(rc, cases[i].rc, "set_int #%zu %s = %lld: %s, expected %s", i,
                     shown(cases[i].name), (long long)cases[i].v, ulog_errname(rc),
                     ulog_errname(cases[i].rc));
        dump_cfg(cfg, &after);
        const char *d = dump_diff(&before, &after, rc ? NULL : cases[i].name);
        cr_expect_null(d, "set_int #%zu: %s changed", i, d);
        if (rc == 0 && cases[i].canon) {
            char v[64] = "";
            cr_expect_eq(ulog_config_get(cfg, cases[i].name, v, sizeof v), 0);
            cr_expect_str_eq(v, cases[i].canon, "set_int #%zu", i);
        }
        if (rc)
            cr_expect_gt(strlen(err), 0, "set_int #%zu: no message", i);
        ulog_config_free(cfg);
    }
}

/* ================================================================ segments */

#define CT0        1700000000000LL
#define S1_BATCHES 12       /* session 1: batches of 3 records, offsets 0..35 */
#define T1_BASE    36       /* session 2: T1 = 36, 37 */
#define T2_BASE    38       /*            T2 = 38, 39, 40 */
#define END_OFF    41
#define MID_IDX    3        /* the batch damaged below the checkpoint: 9..11 */
#define T1_IDX     12
#define T2_IDX     13

static size_t vlen_of(int64_t off)
{
    return off >= T2_BASE ? 1450 + (size_t)(off % 53) : 40 + (size_t)((off * 37) % 400);
}

/* The record at offset `off`: everything derived from the offset. */
typedef struct recbuf {
    char        key[32];
    uint8_t     val[1600];
    char        hval[32];
    ulog_header h[2];
} recbuf;

static void make_rec(ulog_record *r, recbuf *b, int64_t off)
{
    memset(r, 0, sizeof *r);
    if (off % 4 != 3) {
        r->key = b->key;
        r->key_len = (size_t)snprintf(b->key, sizeof b->key, "key-%lld", (long long)off);
    }
    size_t n = vlen_of(off);
    for (size_t i = 0; i < n; i++)
        b->val[i] = i < 8 ? (uint8_t)((uint64_t)off >> (8 * i))
                          : (uint8_t)mix64((uint64_t)off * 100000 + i);
    r->value = b->val;
    r->value_len = n;
    size_t nh = 0;
    if (off % 2 == 0) {
        int len = snprintf(b->hval, sizeof b->hval, "%lld", (long long)off);
        b->h[nh++] = (ulog_header){ "h", 1, b->hval, (size_t)len };
    }
    if (off % 5 == 0)
        b->h[nh++] = (ulog_header){ "null", 4, NULL, 0 };
    r->headers = nh ? b->h : NULL;
    r->header_count = nh;
    r->timestamp = CT0 + off * 3;
    r->partition = 0;
}

/* Appends [first, first + n) as one batch; 0 or an error (no assertions:
 * children use it). */
static int append_range(ulog *log, int64_t first, size_t n)
{
    recbuf b[4];
    ulog_record r[4];
    if (n > 4)
        return ULOG_EINVAL;
    for (size_t i = 0; i < n; i++)
        make_rec(&r[i], &b[i], first + (int64_t)i);
    int rc = ulog_append(log, "t", r, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (r[i].offset != first + (int64_t)i)
            return ULOG_ECORRUPT;
    return 0;
}

/* Whether m is exactly the record appended at `off`; why says what differs. */
static bool msg_matches(const ulog_msg *m, int64_t off, char *why, size_t n)
{
    recbuf b;
    ulog_record r;
    make_rec(&r, &b, off);
    if (m->partition != 0 || m->offset != off)
        return snprintf(why, n, "partition %d offset %lld", (int)m->partition,
                        (long long)m->offset), false;
    if (m->timestamp != r.timestamp)
        return snprintf(why, n, "timestamp %lld, appended %lld", (long long)m->timestamp,
                        (long long)r.timestamp), false;
    if (m->key_len != r.key_len || (r.key ? !m->key || memcmp(m->key, r.key, r.key_len) != 0
                                          : m->key != NULL))
        return snprintf(why, n, "key differs (%zu bytes, appended %zu)", m->key_len,
                        r.key_len), false;
    if (m->value_len != r.value_len || !m->value || memcmp(m->value, r.value, r.value_len) != 0)
        return snprintf(why, n, "value differs (%zu bytes, appended %zu)", m->value_len,
                        r.value_len), false;
    if (m->header_count != r.header_count)
        return snprintf(why, n, "%zu headers, appended %zu", m->header_count,
                        r.header_count), false;
    for (size_t k = 0; k < r.header_count; k++) {
        ulog_header h;
        const ulog_header *w = &r.headers[k];
        if (ulog_msg_header(m, k, &h) != 0 || h.key_len != w->key_len ||
            memcmp(h.key, w->key, w->key_len) != 0 || h.value_len != w->value_len ||
            (w->value ? !h.value || memcmp(h.value, w->value, w->value_len) != 0 : h.value != NULL))
            return snprintf(why, n, "header %zu differs", k), false;
    }
    return true;
}

/* ---------------------------------------------------------------- files */

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    int64_t sz = file_size(path);
    cr_assert_geq(sz, 0, "%s missing", path);
    uint8_t *b = malloc((size_t)sz + 1);
    cr_assert_not_null(b);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(pread(fd, b, (size_t)sz, 0), sz);
    close(fd);
    *len = (size_t)sz;
    return b;
}

static void write_file(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(pwrite(fd, b, len, 0), (ssize_t)len);
    close(fd);
}

/* ---------------------------------------------------------------- layout */

typedef struct bloc {
    int64_t seg, pos, size, base;
    int32_t count;
} bloc;

typedef struct layout {
    bloc    b[64];
    int     n;
    int64_t segs[16];
    int     nsegs;
} layout;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every batch of partition 0 of "t", each verified. */
static void read_layout(const char *dir, layout *l)
{
    char pd[600];
    part_dir(pd, sizeof pd, dir, "t", 0);
    DIR *d = opendir(pd);
    cr_assert_not_null(d);
    struct dirent *de;
    l->n = l->nsegs = 0;
    while ((de = readdir(d)) != NULL)
        if (is_segment_name(de->d_name)) {
            cr_assert_lt(l->nsegs, 16);
            l->segs[l->nsegs++] = strtoll(de->d_name, NULL, 10);
        }
    closedir(d);
    qsort(l->segs, (size_t)l->nsegs, sizeof l->segs[0], cmp_i64);
    for (int i = 0; i < l->nsegs; i++) {
        char sp[700];
        seg_path(sp, sizeof sp, dir, "t", 0, l->segs[i]);
        size_t len;
        uint8_t *buf = slurp(sp, &len);
        for (size_t pos = 0; pos < len;) {
            size_t frame;
            ulog__batch_hdr h;
            cr_assert_eq(ulog__batch_frame_size(buf + pos, len - pos, &frame), 0);
            cr_assert_eq(ulog__batch_verify(buf + pos, len - pos, &h), 0);
            cr_assert_lt(l->n, 64);
            l->b[l->n++] = (bloc){ l->segs[i], (int64_t)pos, (int64_t)frame, h.base_offset,
                                   h.record_count };
            pos += frame;
        }
        free(buf);
    }
}

static char seg_root[256];
SCRATCH_SUITE(hostile_segments, seg_root);

/* The template (see the top of the file) in tpl; its layout in *l. */
static void build_template(const char *tpl, layout *l)
{
    ulog *log = open_at(tpl, cfg_of("index.flush.ms", "60000", NULL));
    create_topic(log, "t", 1, cfg_of("segment.bytes", "8192", "flush.policy", "none", NULL));
    for (int i = 0; i < S1_BATCHES; i++) {
        int rc = append_range(log, i * 3, 3);
        cr_assert_eq(rc, 0, "session 1 batch %d: %s", i, ulog_errname(rc));
    }
    ulog_close(log);            /* writes the checkpoint: offset 36 */
    fflush(NULL);
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        ulog_config *lc = cfg_try("index.flush.ms", "60000", NULL);
        ulog *l2 = NULL;
        if (!lc || ulog_open(tpl, lc, &l2) != 0)
            _exit(2);
        if (append_range(l2, T1_BASE, 2) != 0 || append_range(l2, T2_BASE, 3) != 0)
            _exit(3);
        _exit(0);               /* no ulog_close: T1 and T2 stay past the checkpoint */
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "session 2 failed: status %d", st);

    read_layout(tpl, l);
    /* What the cases rely on. */
    cr_assert_eq(l->n, S1_BATCHES + 2, "%d batches", l->n);
    const bloc *mid = &l->b[MID_IDX], *last1 = &l->b[S1_BATCHES - 1];
    const bloc *t1 = &l->b[T1_IDX], *t2 = &l->b[T2_IDX];
    cr_assert_eq(mid->base, MID_IDX * 3);
    cr_assert_eq(t1->base, T1_BASE);
    cr_assert_eq(t2->base, T2_BASE);
    cr_assert_eq(mid->seg, l->segs[0], "batch 3 must be in the first segment");
    cr_assert_eq(l->b[MID_IDX - 1].seg, mid->seg);
    cr_assert_neq(last1->seg, mid->seg, "the checkpoint must be in a later segment");
    cr_assert(t1->seg == last1->seg && t2->seg == last1->seg && t2->pos > 0,
              "T1 and T2 must follow session 1 in its last segment");
    cr_assert_eq(t2->seg, l->segs[l->nsegs - 1]);
    cr_assert_gt(t2->size, 4096, "T2 must span a page");
    cr_log_info("template: %d segments; batch 3 at %lld+%lld (%lld bytes); T1 at %lld+%lld; "
                "T2 at %lld+%lld (%lld bytes)", l->nsegs, (long long)mid->seg,
                (long long)mid->pos, (long long)mid->size, (long long)t1->seg,
                (long long)t1->pos, (long long)t2->seg, (long long)t2->pos, (long long)t2->size);
}

/* ---------------------------------------------------------------- damage */

/* Field offsets in the batch header (lib/batch.c). */
enum {
    F_BASE = 0, F_LEN = 8, F_EPOCH = 12, F_MAGIC = 16, F_CRC = 17, F_ATTR = 21,
    F_LAST = 23, F_BASETS = 27, F_MAXTS = 35, F_PID = 43, F_PEPOCH = 51, F_BSEQ = 53,
    F_COUNT = 57, F_RECS = 61
};
#define OFF_HALF 100000     /* .off: the middle of the batch */

enum mkind {
    M_FLIP,             /* flip bit `val` of byte `off` */
    M_SET,              /* the big-endian `width`-byte field at `off` := val */
    M_ADD,              /* ... += val */
    M_BASE_PREV,        /* baseOffset := the previous batch's */
    M_TRUNC,            /* the file ends at byte `off` of the batch */
    M_ZERO,             /* the batch zeroed */
    M_RANDOM,           /* the batch overwritten with random bytes */
    M_PREV_INSTEAD,     /* the batch replaced by a copy of the one before */
    M_PREV_BEFORE,      /* a copy of the one before inserted ahead of it */
    M_SELF_AFTER,       /* a copy of it inserted after it */
    M_GARBAGE_AFTER,    /* 100 random bytes after the end of the file */
    M_ZEROS_AFTER,      /* 4096 zeros after the end of the file */
    M_REC1,             /* record 1 of 3 replaced by `rec` (CRC fixed) */
    M_EXTRA_REC,        /* a 4th record past recordCount 3 (CRC fixed) */
    M_SWAP12,           /* records 1 and 2 swapped (CRC fixed) */
    M_EMPTY,            /* no records, recordCount 0, lastOffsetDelta val (CRC fixed) */
};

enum { T_CUT = 1, T_WHOLE = 2 };
#define MM_MID 1u       /* batch 3: head kept, and heads deleted */
#define MM_KT  2u       /* T2, head kept */
#define MM_DT  4u       /* T2, heads deleted: the torn tail */

typedef struct mut {
    const char    *what;
    int            kind;
    int            off;         /* byte of the batch; < 0: from its end; OFF_HALF */
    int            width;       /* M_SET, M_ADD: 1, 2, 4 or 8 */
    int64_t        val;
    bool           fix;         /* recompute the CRC: a forged batch, not a flipped bit */
    const uint8_t *rec;         /* M_REC1 */
    size_t         nrec;
    int            krc;         /* below the committed end: what ulog_poll gives (0: the
                                   damage is harmless, every record reads back) ... */
    int            kat;         /* ... and at which offset, relative to the batch base */
    int            tail;        /* in the torn tail: T_CUT (high = its base) or T_WHOLE */
    unsigned       modes;       /* 0: every mode */
} mut;

#define EC(at) .krc = ULOG_ECORRUPT, .kat = (at)
#define ENS .krc = ULOG_ENOTSUP, .kat = 0
#define HARMLESS .krc = 0, .kat = 0
#define CUT .tail = T_CUT
#define WHOLE .tail = T_WHOLE
#define FLIPB(w, o, b) .what = w, .kind = M_FLIP, .off = (o), .val = (b)
#define SETF(w, o, wd, v, f) .what = w, .kind = M_SET, .off = (o), .width = (wd), .val = (v), .fix = (f)
#define ADDF(w, o, wd, v, f) .what = w, .kind = M_ADD, .off = (o), .width = (wd), .val = (v), .fix = (f)
#define TRUNCB(w, o) { .what = w, .kind = M_TRUNC, .off = (o), EC(0), CUT }
#define RECB(w, arr) { .what = w, .kind = M_REC1, .rec = arr, .nrec = sizeof arr, .fix = true, \
                       EC(1), CUT }

/* Bad records. A good record 1 would be 0c | 00 00 02 01 01 00: length 6,
 * attributes, timestampDelta 0, offsetDelta 1, null key, null value, no
 * headers (zigzag varints). */
static const uint8_t R_LEN6[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 2, 1, 1, 0 };
static const uint8_t R_LEN_NEG[] = { 0x03, 0, 0, 2, 1, 1, 0 };
static const uint8_t R_LEN_PAST[] = { 0xd0, 0x0f, 0, 0, 2, 1, 1, 0 };
static const uint8_t R_LEN0[] = { 0x00 };
static const uint8_t R_ATTR_ONLY[] = { 0x02, 0 };
static const uint8_t R_TS11[] = { 0x20, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                  0x80, 0x01, 2, 1, 1, 0 };
static const uint8_t R_TS_BIT64[] = { 0x1e, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0x02, 2, 1, 1, 0 };
static const uint8_t R_OD6[] = { 0x16, 0, 0, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 1, 0 };
static const uint8_t R_OD_2P32[] = { 0x14, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 1, 0 };
static const uint8_t R_OD_SAME[] = { 0x0c, 0, 0, 0, 1, 1, 0 };
static const uint8_t R_OD_BACK[] = { 0x0c, 0, 0, 1, 1, 1, 0 };
static const uint8_t R_OD_PAST[] = { 0x0c, 0, 0, 0x0a, 1, 1, 0 };
static const uint8_t R_KEY_NEG2[] = { 0x0c, 0, 0, 2, 3, 1, 0 };
static const uint8_t R_KEY_HUGE[] = { 0x14, 0, 0, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1, 0 };
static const uint8_t R_KEY_6B[] = { 0x16, 0, 0, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 0 };
static const uint8_t R_KEY_PAST[] = { 0x10, 0, 0, 2, 0x14, 'a', 'b', 1, 0 };
static const uint8_t R_VAL_NEG3[] = { 0x0c, 0, 0, 2, 1, 5, 0 };
static const uint8_t R_VAL_PAST[] = { 0x0c, 0, 0, 2, 1, 0x7e, 0 };
static const uint8_t R_VAL_HUGE[] = { 0x14, 0, 0, 2, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0 };
static const uint8_t R_VAL_6B[] = { 0x16, 0, 0, 2, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0 };
static const uint8_t R_HDR_NEG[] = { 0x0c, 0, 0, 2, 1, 1, 1 };
static const uint8_t R_HDR_HUGE[] = { 0x14, 0, 0, 2, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f };
static const uint8_t R_HDR_NULLKEY[] = { 0x10, 0, 0, 2, 1, 1, 2, 1, 1 };
static const uint8_t R_HDR_KEY_PAST[] = { 0x10, 0, 0, 2, 1, 1, 2, 0x28, 'a' };
static const uint8_t R_HDR_VAL_NEG[] = { 0x12, 0, 0, 2, 1, 1, 2, 2, 'k', 3 };
static const uint8_t R_HDR_MISSING[] = { 0x12, 0, 0, 2, 1, 1, 4, 2, 'k', 1 };
static const uint8_t R_TRAIL[] = { 0x0e, 0, 0, 2, 1, 1, 0, 0 };

static const mut muts[] = {
    /* ---- baseOffset: outside the CRC */
    { FLIPB("baseOffset bit 63 flipped (negative)", F_BASE, 7), EC(0), CUT },
    { FLIPB("baseOffset bit 0 flipped (9 -> 8, 38 -> 39)", F_BASE + 7, 0), EC(0), CUT },
    { FLIPB("baseOffset bit 32 flipped", F_BASE + 3, 0), EC(0), CUT },
    { FLIPB("baseOffset bit 8 flipped (+256)", F_BASE + 6, 0), EC(0), CUT },
    { ADDF("baseOffset + 1 (a gap before the batch)", F_BASE, 8, 1, false), EC(0), CUT },
    { ADDF("baseOffset - 1 (overlaps the batch before by one offset)", F_BASE, 8, -1, false),
      EC(0), CUT },
    { ADDF("baseOffset - 2 (overlaps by two)", F_BASE, 8, -2, false), EC(0), CUT },
    { .what = "baseOffset = the previous batch's (decreasing)", .kind = M_BASE_PREV, EC(0), CUT },
    { SETF("baseOffset = 0", F_BASE, 8, 0, false), EC(0), CUT },
    { SETF("baseOffset = INT64_MAX", F_BASE, 8, INT64_MAX, false), EC(0), CUT },
    { SETF("baseOffset = -1", F_BASE, 8, -1, false), EC(0), CUT },
    /* ---- batchLength: outside the CRC */
    { FLIPB("batchLength bit 0 flipped", F_LEN + 3, 0), EC(0), CUT },
    { FLIPB("batchLength bit 12 flipped (+4096)", F_LEN + 2, 4), EC(0), CUT },
    { FLIPB("batchLength bit 31 flipped (>= 2^31)", F_LEN, 7), EC(0), CUT },
    { ADDF("batchLength + 1", F_LEN, 4, 1, false), EC(0), CUT },
    { ADDF("batchLength - 1", F_LEN, 4, -1, false), EC(0), CUT },
    { SETF("batchLength 0", F_LEN, 4, 0, false), EC(0), CUT },
    { SETF("batchLength 48 (below the 49-byte minimum)", F_LEN, 4, 48, false), EC(0), CUT },
    { SETF("batchLength 49 (the header alone)", F_LEN, 4, 49, false), EC(0), CUT },
    { SETF("batchLength 1 MiB (past the end of the file)", F_LEN, 4, 1 << 20, false), EC(0),
      CUT },
    { SETF("batchLength 2^31-13 (the largest allowed)", F_LEN, 4, INT32_MAX - 12, false), EC(0),
      CUT },
    { SETF("batchLength 2^31", F_LEN, 4, 0x80000000LL, false), EC(0), CUT },
    { SETF("batchLength 2^32-1", F_LEN, 4, 0xffffffffLL, false), EC(0), CUT },
    /* ---- partitionLeaderEpoch: outside the CRC and unused, so harmless */
    { FLIPB("partitionLeaderEpoch bit 31 flipped", F_EPOCH, 7), HARMLESS, WHOLE },
    { FLIPB("partitionLeaderEpoch bit 0 flipped", F_EPOCH + 3, 0), HARMLESS, WHOLE },
    { SETF("partitionLeaderEpoch = 0", F_EPOCH, 4, 0, false), HARMLESS, WHOLE },
    /* ---- magic: outside the CRC */
    { SETF("magic 0", F_MAGIC, 1, 0, false), EC(0), CUT },
    { SETF("magic 1", F_MAGIC, 1, 1, false), EC(0), CUT },
    { SETF("magic 3", F_MAGIC, 1, 3, false), EC(0), CUT },
    { SETF("magic 255", F_MAGIC, 1, 255, false), EC(0), CUT },
    { FLIPB("magic bit 2 flipped (6)", F_MAGIC, 2), EC(0), CUT },
    /* ---- crc */
    { FLIPB("crc bit 31 flipped", F_CRC, 7), EC(0), CUT },
    { FLIPB("crc bit 16 flipped", F_CRC + 1, 0), EC(0), CUT },
    { FLIPB("crc bit 11 flipped", F_CRC + 2, 3), EC(0), CUT },
    { FLIPB("crc bit 0 flipped", F_CRC + 3, 0), EC(0), CUT },
    { SETF("crc = 0", F_CRC, 4, 0, false), EC(0), CUT },
    /* ---- attributes, flipped (the CRC then fails) */
    { FLIPB("attributes bit 0 flipped (gzip)", F_ATTR + 1, 0), EC(0), CUT },
    { FLIPB("attributes bit 1 flipped (snappy)", F_ATTR + 1, 1), EC(0), CUT },
    { FLIPB("attributes bit 2 flipped (lz4)", F_ATTR + 1, 2), EC(0), CUT },
    { FLIPB("attributes bit 3 flipped (LogAppendTime)", F_ATTR + 1, 3), EC(0), CUT },
    { FLIPB("attributes bit 4 flipped (transactional)", F_ATTR + 1, 4), EC(0), CUT },
    { FLIPB("attributes bit 5 flipped (control)", F_ATTR + 1, 5), EC(0), CUT },
    { FLIPB("attributes bit 6 flipped (delete horizon)", F_ATTR + 1, 6), EC(0), CUT },
    { FLIPB("attributes bit 15 flipped", F_ATTR, 7), EC(0), CUT },
    /* ---- attributes, forged with a valid CRC: compression ulog does not read */
    { SETF("codec 1 (gzip), CRC fixed", F_ATTR, 2, 1, true), ENS, CUT },
    { SETF("codec 2 (snappy), CRC fixed", F_ATTR, 2, 2, true), ENS, CUT },
    { SETF("codec 3 (lz4), CRC fixed", F_ATTR, 2, 3, true), ENS, CUT },
    { SETF("codec 4 (zstd), CRC fixed", F_ATTR, 2, 4, true), ENS, CUT },
    { SETF("codec 7 (undefined), CRC fixed", F_ATTR, 2, 7, true), ENS, CUT },
    { SETF("codec 1 with LogAppendTime, CRC fixed", F_ATTR, 2, 9, true), ENS, CUT },
    /* ---- lastOffsetDelta: recordCount must be lastOffsetDelta + 1 (ulog writes
     * no gaps), so a forged one fails at the batch, before any record */
    { FLIPB("lastOffsetDelta bit 0 flipped", F_LAST + 3, 0), EC(0), CUT },
    { FLIPB("lastOffsetDelta bit 31 flipped", F_LAST, 7), EC(0), CUT },
    { ADDF("lastOffsetDelta + 1, CRC fixed", F_LAST, 4, 1, true), EC(0), CUT },
    { ADDF("lastOffsetDelta - 1, CRC fixed", F_LAST, 4, -1, true), EC(0), CUT },
    { SETF("lastOffsetDelta -1, CRC fixed", F_LAST, 4, 0xffffffffLL, true), EC(0), CUT },
    { SETF("lastOffsetDelta INT32_MAX, CRC fixed", F_LAST, 4, INT32_MAX, true), EC(0), CUT },
    /* ---- timestamps and producer fields: inside the CRC */
    { FLIPB("baseTimestamp bit 0 flipped", F_BASETS + 7, 0), EC(0), CUT },
    { FLIPB("baseTimestamp bit 63 flipped", F_BASETS, 7), EC(0), CUT },
    { FLIPB("maxTimestamp bit 0 flipped", F_MAXTS + 7, 0), EC(0), CUT },
    { FLIPB("maxTimestamp bit 63 flipped", F_MAXTS, 7), EC(0), CUT },
    { FLIPB("producerId bit 0 flipped", F_PID + 7, 0), EC(0), CUT },
    { FLIPB("producerId bit 63 flipped", F_PID, 7), EC(0), CUT },
    { FLIPB("producerEpoch bit 0 flipped", F_PEPOCH + 1, 0), EC(0), CUT },
    { FLIPB("baseSequence bit 0 flipped", F_BSEQ + 3, 0), EC(0), CUT },
    /* ---- recordCount */
    { FLIPB("recordCount bit 0 flipped", F_COUNT + 3, 0), EC(0), CUT },
    { ADDF("recordCount + 1 (4 for 3 records), CRC fixed", F_COUNT, 4, 1, true), EC(0), CUT },
    { ADDF("recordCount - 1 (2 for 3 records), CRC fixed", F_COUNT, 4, -1, true), EC(0), CUT },
    { SETF("recordCount 0 for 3 records, CRC fixed", F_COUNT, 4, 0, true), EC(0), CUT },
    { SETF("recordCount -1, CRC fixed", F_COUNT, 4, 0xffffffffLL, true), EC(0), CUT },
    { SETF("recordCount INT32_MAX, CRC fixed", F_COUNT, 4, INT32_MAX, true), EC(0), CUT },
    /* ---- record bytes, flipped */
    { FLIPB("first record's length bit 1 flipped", F_RECS, 1), EC(0), CUT },
    { FLIPB("a bit in the middle of the records", OFF_HALF, 3), EC(0), CUT },
    { FLIPB("the batch's last bit", -1, 0), EC(0), CUT },
    /* ---- truncations, in every region */
    TRUNCB("truncated at its first byte (the batch gone)", 0),
    TRUNCB("truncated in baseOffset", 4),
    TRUNCB("truncated after baseOffset", 8),
    TRUNCB("truncated in batchLength", 10),
    TRUNCB("truncated in batchLength's last byte", 11),
    TRUNCB("truncated after batchLength", 12),
    TRUNCB("truncated in partitionLeaderEpoch", 14),
    TRUNCB("truncated before magic", 16),
    TRUNCB("truncated after magic", 17),
    TRUNCB("truncated in crc", 19),
    TRUNCB("truncated after crc", 21),
    TRUNCB("truncated after attributes", 23),
    TRUNCB("truncated after lastOffsetDelta", 27),
    TRUNCB("truncated after baseTimestamp", 35),
    TRUNCB("truncated after maxTimestamp", 43),
    TRUNCB("truncated after producerId", 51),
    TRUNCB("truncated after producerEpoch", 53),
    TRUNCB("truncated after baseSequence", 57),
    TRUNCB("truncated in recordCount", 60),
    TRUNCB("truncated after the header", 61),
    TRUNCB("truncated one byte into the records", 62),
    TRUNCB("truncated in the middle of the records", OFF_HALF),
    TRUNCB("truncated one byte short", -1),
    /* ---- the whole batch */
    { .what = "batch zeroed", .kind = M_ZERO, EC(0), CUT },
    { .what = "batch overwritten with random bytes", .kind = M_RANDOM, EC(0), CUT },
    /* ---- consecutive batches whose offsets do not follow */
    { .what = "replaced by a copy of the batch before it", .kind = M_PREV_INSTEAD, EC(0), CUT },
    { .what = "a stale copy of the batch before it inserted ahead of it",
      .kind = M_PREV_BEFORE, EC(0), CUT },
    { .what = "written twice (a stale copy right after it)", .kind = M_SELF_AFTER, EC(3),
      WHOLE, .modes = MM_MID | MM_DT },
    { .what = "written twice, the copy past the committed end", .kind = M_SELF_AFTER,
      HARMLESS, .modes = MM_KT },
    { .what = "100 random bytes after the end of the file", .kind = M_GARBAGE_AFTER, HARMLESS,
      WHOLE, .modes = MM_KT | MM_DT },
    { .what = "4096 zero bytes after the end of the file", .kind = M_ZEROS_AFTER, HARMLESS,
      WHOLE, .modes = MM_KT | MM_DT },
    /* ---- forged records (CRC fixed): record 1 of 3 replaced */
    RECB("record length: a 6-byte varint", R_LEN6),
    RECB("record length -2", R_LEN_NEG),
    RECB("record length past the end of the batch", R_LEN_PAST),
    RECB("record length 0 (no attributes)", R_LEN0),
    RECB("record of attributes alone", R_ATTR_ONLY),
    RECB("timestampDelta: an 11-byte varlong", R_TS11),
    RECB("timestampDelta: a 10-byte varlong past 64 bits", R_TS_BIT64),
    RECB("offsetDelta: a 6-byte varint", R_OD6),
    RECB("offsetDelta 2^32 (past 32 bits)", R_OD_2P32),
    RECB("offsetDelta repeats the one before (0)", R_OD_SAME),
    RECB("offsetDelta -1", R_OD_BACK),
    RECB("offsetDelta 5, past lastOffsetDelta 2", R_OD_PAST),
    RECB("key length -2", R_KEY_NEG2),
    RECB("key length INT32_MAX", R_KEY_HUGE),
    RECB("key length: a 6-byte varint", R_KEY_6B),
    RECB("key runs past the record", R_KEY_PAST),
    RECB("value length -3", R_VAL_NEG3),
    RECB("value runs past the record", R_VAL_PAST),
    RECB("value length INT32_MAX", R_VAL_HUGE),
    RECB("value length: a 6-byte varint", R_VAL_6B),
    RECB("header count -1", R_HDR_NEG),
    RECB("header count INT32_MAX", R_HDR_HUGE),
    RECB("header with a null key", R_HDR_NULLKEY),
    RECB("header key runs past the record", R_HDR_KEY_PAST),
    RECB("header value length -2", R_HDR_VAL_NEG),
    RECB("header count 2, one header", R_HDR_MISSING),
    RECB("a byte after the last field of the record", R_TRAIL),
    /* ---- forged record sections (CRC fixed) */
    { .what = "a 4th record past recordCount 3", .kind = M_EXTRA_REC, EC(2), CUT },
    { .what = "records 1 and 2 swapped (offset deltas 0, 2, 1)", .kind = M_SWAP12, EC(1), CUT },
    { .what = "no records: recordCount 0, lastOffsetDelta 0", .kind = M_EMPTY, .val = 0, EC(0),
      CUT },
    { .what = "no records: recordCount 0, lastOffsetDelta 2 (as Kafka's compaction leaves)",
      .kind = M_EMPTY, .val = 2, EC(0), CUT },
};
#define NMUTS (sizeof muts / sizeof muts[0])

/* Damage to T1 in the torn tail: the cut goes there, and the intact T2
 * after it goes too. */
static const mut t1_muts[] = {
    { FLIPB("T1 (the batch before the last, past the checkpoint): crc bit flipped", F_CRC, 0),
      EC(0), CUT },
    { .what = "T1 truncated in its header (T2 gone with it)", .kind = M_TRUNC, .off = 30, EC(0),
      CUT },
    { ADDF("T1 baseOffset + 1", F_BASE, 8, 1, false), EC(0), CUT },
    { .what = "T1 zeroed", .kind = M_ZERO, EC(0), CUT },
};

static void put_be(uint8_t *p, int width, uint64_t v)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v = v << 8 | p[i];
    return v;
}

static void fix_crc(uint8_t *b, size_t frame)
{
    put_be(b + F_CRC, 4, ulog__crc32c(0, b + F_ATTR, frame - F_ATTR));
}

/* Replaces [at, at + del) of *buf by ins[0, nins). */
static void splice_bytes(uint8_t **buf, size_t *len, size_t at, size_t del, const uint8_t *ins,
                         size_t nins)
{
    uint8_t *nb = malloc(*len - del + nins + 1);
    cr_assert_not_null(nb);
    memcpy(nb, *buf, at);
    memcpy(nb + at, ins, nins);
    memcpy(nb + at + nins, *buf + at + del, *len - at - del);
    free(*buf);
    *buf = nb;
    *len = *len - del + nins;
}

/* The batch vb (size s) with its records rebuilt as m says. */
static uint8_t *forge(const uint8_t *vb, size_t s, const mut *m, size_t *out_n)
{
    size_t at[5], p = ULOG__BATCH_HEADER_SIZE;
    int k = 0;
    while (p < s && k < 4) {
        int64_t len;
        size_t w = ulog__varint_get(vb + p, vb + s, &len);
        cr_assert(w > 0 && len >= 0);
        at[k++] = p;
        p += w + (size_t)len;
    }
    cr_assert(k == 3 && p == s, "the victim must hold 3 records");
    at[3] = s;
    uint8_t *o = malloc(s + 64 + m->nrec);
    cr_assert_not_null(o);
    size_t n = ULOG__BATCH_HEADER_SIZE;
    memcpy(o, vb, n);
    int32_t count = 3, last = 2;
#define CP(i) (memcpy(o + n, vb + at[i], at[(i) + 1] - at[i]), n += at[(i) + 1] - at[i])
    switch (m->kind) {
    case M_REC1:
        CP(0);
        memcpy(o + n, m->rec, m->nrec);
        n += m->nrec;
        CP(2);
        break;
    case M_EXTRA_REC: {
        static const uint8_t extra[] = { 0x0c, 0, 0, 6, 1, 1, 0 };   /* offsetDelta 3 */
        CP(0);
        CP(1);
        CP(2);
        memcpy(o + n, extra, sizeof extra);
        n += sizeof extra;
        break;
    }
    case M_SWAP12:
        CP(0);
        CP(2);
        CP(1);
        break;
    case M_EMPTY:
        count = 0;
        last = (int32_t)m->val;
        break;
    }
#undef CP
    put_be(o + F_LEN, 4, n - ULOG__BATCH_LOG_OVERHEAD);
    put_be(o + F_COUNT, 4, (uint32_t)count);
    put_be(o + F_LAST, 4, (uint32_t)last);
    fix_crc(o, n);
    *out_n = n;
    return o;
}

/* Damages batch vi of the copy at cd; returns its segment's new size. */
static int64_t apply_mut(const char *cd, const layout *l, int vi, const mut *m)
{
    const bloc *v = &l->b[vi], *pv = &l->b[vi - 1];
    char sp[700];
    seg_path(sp, sizeof sp, cd, "t", 0, v->seg);
    size_t len;
    uint8_t *buf = slurp(sp, &len);
    size_t P = (size_t)v->pos, S = (size_t)v->size;
    size_t off = m->off == OFF_HALF ? S / 2 : m->off < 0 ? S - (size_t)-m->off : (size_t)m->off;
    uint8_t *b = buf + P, *copy;
    switch (m->kind) {
    case M_FLIP:
        b[off] ^= (uint8_t)(1u << m->val);
        break;
    case M_SET:
    case M_ADD:
        put_be(b + off, m->width,
               m->kind == M_SET ? (uint64_t)m->val
                                : get_be(b + off, m->width) + (uint64_t)m->val);
        if (m->fix)
            fix_crc(b, S);
        break;
    case M_BASE_PREV:
        put_be(b + F_BASE, 8, (uint64_t)pv->base);
        break;
    case M_TRUNC:
        len = P + off;
        break;
    case M_ZERO:
        memset(b, 0, S);
        break;
    case M_RANDOM:
        for (size_t i = 0; i < S; i++)
            b[i] = (uint8_t)mix64(i * 7919 + 17);
        break;
    case M_PREV_INSTEAD:
    case M_PREV_BEFORE:
        cr_assert_eq(pv->seg, v->seg);
        copy = malloc((size_t)pv->size);
        cr_assert_not_null(copy);
        memcpy(copy, buf + pv->pos, (size_t)pv->size);
        splice_bytes(&buf, &len, P, m->kind == M_PREV_INSTEAD ? S : 0, copy, (size_t)pv->size);
        free(copy);
        break;
    case M_SELF_AFTER:
        copy = malloc(S);
        cr_assert_not_null(copy);
        memcpy(copy, b, S);
        splice_bytes(&buf, &len, P + S, 0, copy, S);
        free(copy);
        break;
    case M_GARBAGE_AFTER:
    case M_ZEROS_AFTER: {
        size_t n = m->kind == M_GARBAGE_AFTER ? 100 : 4096;
        uint8_t *g = calloc(1, n);
        cr_assert_not_null(g);
        if (m->kind == M_GARBAGE_AFTER)
            for (size_t i = 0; i < n; i++)
                g[i] = (uint8_t)mix64(i + 4242);
        splice_bytes(&buf, &len, len, 0, g, n);
        free(g);
        break;
    }
    default: {
        size_t n;
        uint8_t *f = forge(b, S, m, &n);
        splice_bytes(&buf, &len, P, S, f, n);
        free(f);
        break;
    }
    }
    write_file(sp, buf, len);
    free(buf);
    return (int64_t)len;
}

/* ---------------------------------------------------------------- checks */

/* The verdict of a case child: a shared page. Its second half notes the
 * step the child is at, for a child that crashes. */
#define VERDICT_SIZE 4096
static char *verdict;

static void verdict_map(void)
{
    void *p = mmap(NULL, VERDICT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    verdict = p;
}

__attribute__((format(printf, 1, 2)))
static int no(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(verdict, VERDICT_SIZE / 2, fmt, ap);
    va_end(ap);
    return -1;
}

__attribute__((format(printf, 1, 2)))
static void step(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(verdict + VERDICT_SIZE / 2, VERDICT_SIZE / 2, fmt, ap);
    va_end(ap);
}

enum mode { KEEP_MID, DROP_MID, KEEP_TAIL, DROP_TAIL };
static const char *const mode_names[] = {
    "head kept, batch 3 (below the committed end)",
    "heads deleted, batch 3 (below the recovery checkpoint)",
    "head kept, T2 (the last batch, committed)",
    "heads deleted, T2 (the torn tail)",
};

typedef struct job {
    const char *dir;
    const mut  *m;
    bloc        v;              /* the damaged batch, as it was */
    int64_t     vseg_size;      /* its segment's size after the damage */
    int64_t     want_high;      /* torn tail: the high watermark after recovery ... */
    int64_t     want_size;      /* ... and its segment's size */
} job;

static ulog_sub *sub_from_start(ulog *log, int *rc)
{
    ulog_config *c = cfg_try("auto.offset.reset", "earliest", NULL);
    ulog_sub *s = NULL;
    *rc = c ? ulog_subscribe(log, "t", NULL, c, &s) : ULOG_ENOMEM;
    ulog_config_free(c);
    return s;
}

/* Polls from where s is; checks every record returned against the one
 * appended at its offset, with no offset skipped. Returns the code that
 * ended it (0 when a record was wrong: *bad then says which); *next is the
 * offset after the last good record. */
static int poll_all(ulog_sub *s, int64_t *next, char *bad, size_t n)
{
    ulog_msg m;
    char why[200];
    bad[0] = 0;
    for (;;) {
        step("ulog_poll after reading offsets [0, %lld)", (long long)*next);
        int rc = ulog_poll(s, 0, &m);
        if (rc)
            return rc;
        if (m.offset != *next) {
            snprintf(bad, n, "ulog_poll returned offset %lld where %lld was next: records "
                     "skipped silently", (long long)m.offset, (long long)*next);
            return 0;
        }
        if (!msg_matches(&m, *next, why, sizeof why)) {
            snprintf(bad, n, "offset %lld: %s -- an altered record returned",
                     (long long)*next, why);
            return 0;
        }
        if (++*next > END_OFF + 1) {
            snprintf(bad, n, "more records than were appended");
            return 0;
        }
    }
}

/* Below the committed end: ulog_poll reports the damage where the table
 * says, returns nothing altered, skips nothing, and nothing is cut. */
static int check_below(const job *j)
{
    const mut *m = j->m;
    ulog *log = NULL;
    step("ulog_open");
    int rc = ulog_open(j->dir, NULL, &log);
    if (rc)
        return no("ulog_open: %s", ulog_errname(rc));
    int64_t lo = -1, hi = -1;
    step("ulog_watermarks");
    rc = ulog_watermarks(log, "t", 0, &lo, &hi);
    if (rc || lo != 0 || hi != END_OFF)
        return no("ulog_watermarks: %s [%lld, %lld), expected [0, %d): the committed end "
                  "moved", ulog_errname(rc), (long long)lo, (long long)hi, END_OFF);
    ulog_sub *s = sub_from_start(log, &rc);
    if (rc)
        return no("ulog_subscribe: %s", ulog_errname(rc));
    int64_t next = 0;
    char bad[300];
    rc = poll_all(s, &next, bad, sizeof bad);
    if (bad[0])
        return no("%s", bad);
    int want = m->krc ? m->krc : ULOG_ETIMEDOUT;
    int64_t want_at = m->krc ? j->v.base + m->kat : END_OFF;
    if (rc != want || next != want_at) {
        char msg[512];
        ulog_errmsg(log, msg, sizeof msg);
        return no("expected %s at offset %lld; got %s after reading offsets [0, %lld)%s "
                  "(errmsg: %s)", ulog_errname(want), (long long)want_at, ulog_errname(rc),
                  (long long)next, rc == ULOG_ETIMEDOUT && next == END_OFF
                  ? ": every offset read back, the damage went unnoticed" : "", msg);
    }
    if (m->krc) {
        int64_t pos = -1;
        if (ulog_position(s, 0, &pos) != 0 || pos != next)
            return no("position %lld after %s at %lld: it moved", (long long)pos,
                      ulog_errname(rc), (long long)next);
        ulog_msg msg;
        step("ulog_poll again at the damage");
        int rc2 = ulog_poll(s, 0, &msg);
        if (rc2 != rc || ulog_position(s, 0, &pos) != 0 || pos != next)
            return no("polling again gave %s at position %lld (first %s at %lld)",
                      ulog_errname(rc2), (long long)pos, ulog_errname(rc), (long long)next);
    }
    char sp[700];
    seg_path(sp, sizeof sp, j->dir, "t", 0, j->v.seg);
    if (file_size(sp) != j->vseg_size)
        return no("segment %lld is %lld bytes, was %lld: cut below the committed end",
                  (long long)j->v.seg, (long long)file_size(sp), (long long)j->vseg_size);
    step("ulog_close");
    ulog_sub_close(s);
    ulog_close(log);
    return 0;
}

/* The torn tail: recovery cut it silently, exactly at the damaged batch
 * (or kept everything when the damage is harmless or past the last batch);
 * what is left reads back and appending continues at the cut. */
static int check_tail(const job *j)
{
    ulog *log = NULL;
    step("ulog_open (recovery)");
    int rc = ulog_open(j->dir, NULL, &log);
    if (rc)
        return no("ulog_open: %s", ulog_errname(rc));
    int64_t lo = -1, hi = -1;
    step("ulog_watermarks (recovery)");
    rc = ulog_watermarks(log, "t", 0, &lo, &hi);
    if (rc)
        return no("ulog_watermarks: %s", ulog_errname(rc));
    char sp[700];
    seg_path(sp, sizeof sp, j->dir, "t", 0, j->v.seg);
    int64_t sz = file_size(sp);
    ulog_sub *s = sub_from_start(log, &rc);
    if (rc)
        return no("ulog_subscribe: %s", ulog_errname(rc));
    int64_t next = 0;
    char bad[300];
    int prc = poll_all(s, &next, bad, sizeof bad);
    if (bad[0])
        return no("after recovery (high %lld): %s", (long long)hi, bad);
    if (lo != 0 || hi != j->want_high || sz != j->want_size || prc != ULOG_ETIMEDOUT ||
        next != hi)
        return no("expected [0, %lld) and a %lld-byte segment; got [%lld, %lld), %lld bytes, "
                  "and ulog_poll read [0, %lld) then %s", (long long)j->want_high,
                  (long long)j->want_size, (long long)lo, (long long)hi, (long long)sz,
                  (long long)next, ulog_errname(prc));
    step("append after recovery");
    rc = append_range(log, hi, 1);
    if (rc)
        return no("append at %lld after recovery: %s", (long long)hi, ulog_errname(rc));
    prc = poll_all(s, &next, bad, sizeof bad);
    if (bad[0] || prc != ULOG_ETIMEDOUT || next != hi + 1)
        return no("the record appended after recovery: %s %s", bad, ulog_errname(prc));
    step("ulog_close");
    ulog_sub_close(s);
    ulog_close(log);
    return 0;
}

/* Runs check in a child; false with the reason in why when it fails or
 * dies. */
static bool in_child(int (*check)(const job *), const job *j, char *why, size_t n)
{
    memset(verdict, 0, VERDICT_SIZE);
    fflush(NULL);
    pid_t pid = quiet_fork();
    if (pid < 0) {
        snprintf(why, n, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0)
        _exit(check(j) == 0 ? 0 : 1);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st)) {
        snprintf(why, n, "the process died of signal %d (%s) during %s", WTERMSIG(st),
                 strsignal(WTERMSIG(st)), verdict + VERDICT_SIZE / 2);
        return false;
    }
    if (WEXITSTATUS(st) != 0) {
        if (verdict[0])
            snprintf(why, n, "%s", verdict);
        else
            snprintf(why, n, "the process exited %d without a verdict during %s (a sanitizer "
                     "report? see stderr)", WEXITSTATUS(st), verdict + VERDICT_SIZE / 2);
        return false;
    }
    return true;
}

static bool run_case(const char *tpl, const layout *l, const mut *m, enum mode mode, int vi,
                     int k, char *why, size_t n)
{
    char cd[300];
    snprintf(cd, sizeof cd, "%s/case-%d", seg_root, k);
    copy_tree(tpl, cd);
    job j = { .dir = cd, .m = m, .v = l->b[vi] };
    j.vseg_size = apply_mut(cd, l, vi, m);
    if (mode == DROP_MID || mode == DROP_TAIL)
        delete_heads(cd, "t", 1, false);
    const bloc *t2 = &l->b[T2_IDX];
    j.want_high = m->tail == T_CUT ? j.v.base : END_OFF;
    j.want_size = m->tail == T_CUT ? j.v.pos : t2->pos + t2->size;
    bool ok = in_child(mode == DROP_TAIL ? check_tail : check_below, &j, why, n);
    rm_rf(cd);
    return ok;
}

static void run_mode(enum mode mode)
{
    verdict_map();
    char tpl[300];
    snprintf(tpl, sizeof tpl, "%s/template", seg_root);
    layout l;
    build_template(tpl, &l);
    unsigned bit = mode == KEEP_TAIL ? MM_KT : mode == DROP_TAIL ? MM_DT : MM_MID;
    int vi = mode == KEEP_MID || mode == DROP_MID ? MID_IDX : T2_IDX;
    int cases = 0, failed = 0;
    int64_t t0 = mono_ns();
    for (size_t i = 0; i < NMUTS; i++) {
        const mut *m = &muts[i];
        if (m->modes && !(m->modes & bit))
            continue;
        char why[2048];
        bool ok = run_case(tpl, &l, m, mode, vi, cases, why, sizeof why);
        cr_expect(ok, "[%s] %s: %s", mode_names[mode], m->what, why);
        cases++;
        failed += !ok;
    }
    if (mode == DROP_TAIL)
        for (size_t i = 0; i < sizeof t1_muts / sizeof t1_muts[0]; i++) {
            char why[2048];
            bool ok = run_case(tpl, &l, &t1_muts[i], mode, T1_IDX, cases, why, sizeof why);
            cr_expect(ok, "[%s] %s: %s", mode_names[mode], t1_muts[i].what, why);
            cases++;
            failed += !ok;
        }
    cr_log_info("[%s] %d cases, %d failed, %.0f ms", mode_names[mode], cases, failed,
                (double)(mono_ns() - t0) / 1e6);
}

Test(hostile_segments, below_committed_head_kept, .timeout = 300)
{
    run_mode(KEEP_MID);
}

Test(hostile_segments, below_checkpoint_heads_deleted, .timeout = 300)
{
    run_mode(DROP_MID);
}

Test(hostile_segments, last_batch_head_kept, .timeout = 300)
{
    run_mode(KEEP_TAIL);
}

Test(hostile_segments, torn_tail_heads_deleted, .timeout = 300)
{
    run_mode(DROP_TAIL);
}
