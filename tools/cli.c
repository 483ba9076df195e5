/*
 * cli.c -- helpers shared by the commands of the `ulog` tool.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *cli_dir;
int cli_verbose;

#define MAX_KEYS 16

static struct {
    char     topic[256];
    uint32_t id;
    uint8_t  key[ULOG_KEY_BYTES];
} keys[MAX_KEYS];
static int nkeys;

/* ---------------------------------------------------------------- errors */

int cli_fail(ulog *log, int err, const char *fmt, ...)
{
    char detail[512];
    ulog_errmsg(log, detail, sizeof detail);
    va_list ap;
    va_start(ap, fmt);
    fputs("ulog: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    /* The name as well as the text: it is what scripts and bug reports grep. */
    fprintf(stderr, ": %s (%s%s%s)\n", ulog_strerror(err), ulog_errname(err),
            detail[0] ? ": " : "", detail);
    return 1;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ulog: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ulog%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ulog%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    /* Option strings start with ':', so a missing argument comes back as
     * ':' and an unknown option as '?'; optopt is 0 for long options. */
    if (c == ':')
        return cli_usage_error(cmd, "option %s needs an argument", argv[optind - 1]);
    if (optopt)
        return cli_usage_error(cmd, "unknown option -%c", optopt);
    return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
}

int cli_help(const char *usage)
{
    fputs(usage, stdout);
    return 0;
}

int cli_subcommand(const char *name, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- log */

int cli_open(ulog **out, bool create)
{
    if (!cli_dir || !*cli_dir)
        return cli_usage_error(NULL, "no log root: give -d DIR or set ULOG_DIR");
    if (!create) {
        /* ulog_open() would make a new log in any directory; a reader or
         * writer of an existing log wants to hear about a typo instead. */
        char meta[4096];
        struct stat st;
        snprintf(meta, sizeof meta, "%s/meta", cli_dir);
        if (stat(meta, &st) != 0)
            return cli_error("%s: not a log root (%s; 'ulog topics create' makes one)",
                             cli_dir, strerror(errno));
    }
    int err = ulog_open(cli_dir, NULL, out);
    if (err)
        return cli_fail(NULL, err, "open %s", cli_dir);
    for (int i = 0; i < nkeys; i++) {
        if ((err = ulog_key_add(*out, keys[i].topic, keys[i].id, keys[i].key,
                                ULOG_KEY_BYTES)) != 0) {
            cli_fail(*out, err, "key %u of topic %s", (unsigned)keys[i].id, keys[i].topic);
            ulog_close(*out);
            *out = NULL;
            return 1;
        }
    }
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int cli_add_key(const char *spec)
{
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    int64_t id;
    char idtext[16];
    if (!c1 || !c2 || c1 == spec || (size_t)(c1 - spec) >= sizeof keys[0].topic ||
        (size_t)(c2 - c1 - 1) >= sizeof idtext || !c2[1])
        return cli_usage_error(NULL, "-k %s: expected TOPIC:ID:FILE", spec);
    memcpy(idtext, c1 + 1, (size_t)(c2 - c1 - 1));
    idtext[c2 - c1 - 1] = '\0';
    if (!cli_parse_i64(idtext, 0, UINT32_MAX, &id))
        return cli_usage_error(NULL, "-k %s: the key id is 0..4294967295", spec);
    if (nkeys == MAX_KEYS)
        return cli_usage_error(NULL, "-k: at most %d keys", MAX_KEYS);
    FILE *f = fopen(c2 + 1, "rb");
    if (!f)
        return cli_error("-k: %s: %s", c2 + 1, strerror(errno));
    uint8_t buf[2 * ULOG_KEY_BYTES + 3];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* A raw key may end in a newline byte: only hex has one stripped. */
    while (n > ULOG_KEY_BYTES && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    uint8_t *key = keys[nkeys].key;
    bool ok = n == ULOG_KEY_BYTES;
    if (ok) {
        memcpy(key, buf, n);
    } else if (n == 2 * ULOG_KEY_BYTES) {
        ok = true;
        for (size_t i = 0; ok && i < ULOG_KEY_BYTES; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            key[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    memset(buf, 0, sizeof buf);
    if (!ok)
        return cli_error("-k: %s: a key is %d bytes, or %d hex digits", c2 + 1, ULOG_KEY_BYTES,
                         2 * ULOG_KEY_BYTES);
    memcpy(keys[nkeys].topic, spec, (size_t)(c1 - spec));
    keys[nkeys].topic[c1 - spec] = '\0';
    keys[nkeys].id = (uint32_t)id;
    nkeys++;
    return 0;
}

/* ---------------------------------------------------------------- values */

bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t cli_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cli_format_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&s, &tm)) {
        snprintf(buf, len, "%lld", (long long)ms);
        return;
    }
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

/* ---------------------------------------------------------------- memory */

void *cli_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("ulog: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

void *cli_xmalloc(size_t n)
{
    return cli_xrealloc(NULL, n);
}

void cli_buf_reserve(cli_buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    b->p = cli_xrealloc(b->p, cap);
    b->cap = cap;
}

void cli_buf_add(cli_buf *b, const void *p, size_t n)
{
    cli_buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void cli_buf_free(cli_buf *b)
{
    free(b->p);
    *b = (cli_buf){ 0 };
}

/* ---------------------------------------------------------------- tables */

void cli_table_init(cli_table *t, size_t ncols)
{
    *t = (cli_table){ .ncols = ncols };
}

void cli_table_add(cli_table *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s;
    if (vasprintf(&s, fmt, ap) < 0) {
        fputs("ulog: out of memory\n", stderr);
        exit(1);
    }
    va_end(ap);
    if (t->ncells == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->cells = cli_xrealloc(t->cells, t->cap * sizeof *t->cells);
    }
    t->cells[t->ncells++] = s;
}

void cli_table_print(cli_table *t, FILE *f, const char *indent)
{
    size_t width[16] = { 0 };
    for (size_t i = 0; i < t->ncells; i++) {
        size_t n = strlen(t->cells[i]);
        if (n > width[i % t->ncols])
            width[i % t->ncols] = n;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t col = i % t->ncols, pad = 0;
        if (col == 0)
            fputs(indent, f);
        /* Padding only before a cell that has text: no trailing blanks. */
        bool last = col + 1 == t->ncols || i + 1 == t->ncells;
        for (size_t j = i + 1; !last && j < t->ncells && j % t->ncols != 0; j++)
            if (t->cells[j][0]) {
                pad = width[col] - strlen(t->cells[i]) + 2;
                break;
            }
        fprintf(f, "%s%*s%s", t->cells[i], (int)pad, "", last ? "\n" : "");
        free(t->cells[i]);
    }
    free(t->cells);
    *t = (cli_table){ 0 };
}
