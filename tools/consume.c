/*
 * consume.c -- `ulog consume TOPIC`: print records, kcat style.
 *
 * Where it starts: -o (every partition, or the -p one), else the group's
 * committed offsets (-G), else the beginning. With -G the positions are
 * committed as it goes (asynchronously, every COMMIT_EVERY records and
 * whenever it has caught up) and synchronously at exit, so a later
 * `consume -G` resumes right after the last record printed. With -p only
 * that partition's offset is committed: the group's other partitions are
 * none of this consumer's business.
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: ulog consume TOPIC [-o OFFSET] [-G GROUP] [-p PARTITION] [-c COUNT]\n"
    "                          [-f | -e] [-F FORMAT | --json]\n"
    "\n"
    "  -o WHERE    where each partition starts: beginning, end, an offset N,\n"
    "              -N (the last N records of each partition) or @MS (the first\n"
    "              record with timestamp >= MS, ms since the epoch); default:\n"
    "              the group's committed offsets with -G (earliest where it\n"
    "              has none), else beginning\n"
    "  -G GROUP    consume as GROUP, committing positions as it goes and at exit\n"
    "  -p N        only partition N\n"
    "  -c COUNT    exit after COUNT records\n"
    "  -f          follow: wait for new records until SIGINT or SIGTERM\n"
    "  -e          exit at the end of the log (the default without -f)\n"
    "  -F FORMAT   output format (default \"%s\\n\"): %t topic, %p partition,\n"
    "              %o offset, %T timestamp, %k key, %s value, %h headers\n"
    "              (k=v,k=v), %K and %S key and value length (-1: null), %%;\n"
    "              escapes \\n \\t \\\\\n"
    "  --json      one JSON object per record: topic, partition, offset,\n"
    "              timestamp, key, value, headers (null for null; bytes that\n"
    "              are not UTF-8 as \\u00XX)\n";

enum { OPT_JSON = 256 };
#define COMMIT_EVERY 1000

typedef enum { FROM_DEFAULT, FROM_BEGINNING, FROM_END, FROM_OFFSET, FROM_TAIL, FROM_TIME } from_kind;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* Checks a -F format; NULL if fine, else what is wrong. */
static const char *format_check(const char *f)
{
    for (; *f; f++) {
        if (*f == '%' && (!f[1] || !strchr("tpoTkshKS%", f[1])))
            return "unknown %-directive (want %t %p %o %T %k %s %h %K %S %%)";
        if (*f == '\\' && (!f[1] || !strchr("nt\\", f[1])))
            return "unknown escape (want \\n \\t \\\\)";
        if (*f == '%' || *f == '\\')
            f++;
    }
    return NULL;
}

static int print_headers(const ulog_msg *m, bool json)
{
    for (size_t i = 0; i < m->header_count; i++) {
        ulog_header h;
        int err = ulog_msg_header(m, i, &h);
        if (err)
            return err;
        if (json) {
            fputs(i ? "," : "", stdout);
            json_write_string(stdout, h.key, h.key_len);
            putchar(':');
            if (h.value)
                json_write_string(stdout, h.value, h.value_len);
            else
                fputs("null", stdout);
        } else {
            /* A null value prints as the bare key, an empty one as "k=". */
            fputs(i ? "," : "", stdout);
            fwrite(h.key, 1, h.key_len, stdout);
            if (h.value) {
                putchar('=');
                fwrite(h.value, 1, h.value_len, stdout);
            }
        }
    }
    return 0;
}

static int print_format(const char *f, const ulog_msg *m)
{
    for (; *f; f++) {
        if (*f == '\\') {
            f++;
            putchar(*f == 'n' ? '\n' : *f == 't' ? '\t' : '\\');
            continue;
        }
        if (*f != '%') {
            putchar(*f);
            continue;
        }
        int err = 0;
        switch (*++f) {
        case 't': fputs(m->topic, stdout); break;
        case 'p': printf("%d", (int)m->partition); break;
        case 'o': printf("%lld", (long long)m->offset); break;
        case 'T': printf("%lld", (long long)m->timestamp); break;
        case 'k': if (m->key) fwrite(m->key, 1, m->key_len, stdout); break;
        case 's': if (m->value) fwrite(m->value, 1, m->value_len, stdout); break;
        case 'K': printf("%lld", m->key ? (long long)m->key_len : -1LL); break;
        case 'S': printf("%lld", m->value ? (long long)m->value_len : -1LL); break;
        case 'h': err = print_headers(m, false); break;
        default: putchar('%');
        }
        if (err)
            return err;
    }
    return 0;
}

static int print_json(const ulog_msg *m)
{
    fputs("{\"topic\":", stdout);
    json_write_string(stdout, m->topic, strlen(m->topic));
    printf(",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":", (int)m->partition,
           (long long)m->offset, (long long)m->timestamp);
    if (m->key)
        json_write_string(stdout, m->key, m->key_len);
    else
        fputs("null", stdout);
    fputs(",\"value\":", stdout);
    if (m->value)
        json_write_string(stdout, m->value, m->value_len);
    else
        fputs("null", stdout);
    fputs(",\"headers\":{", stdout);
    int err = print_headers(m, true);
    fputs("}}\n", stdout);
    return err;
}

/* Moves partition p to where -o says. */
static int seek_one(ulog *log, ulog_sub *sub, const char *topic, int32_t p, from_kind from, int64_t arg)
{
    int64_t low, high;
    int err = ulog_watermarks(log, topic, p, &low, &high);
    if (err)
        return cli_fail(log, err, "consume %s: partition %d", topic, (int)p);
    switch (from) {
    case FROM_BEGINNING: err = ulog_seek(sub, p, low); break;
    case FROM_END:       err = ulog_seek(sub, p, high); break;
    case FROM_OFFSET:    err = ulog_seek(sub, p, arg); break;
    case FROM_TAIL:      err = ulog_seek(sub, p, high - arg > low ? high - arg : low); break;
    case FROM_TIME:      err = ulog_seek_time(sub, p, arg); break;
    case FROM_DEFAULT:   break;
    }
    if (err)
        return cli_fail(log, err, "consume %s: partition %d: seek", topic, (int)p);
    return 0;
}

static void on_commit(ulog_sub *sub, int err, void *arg)
{
    (void)sub;
    int *failed = arg;
    if (err && !*failed) {
        *failed = err;
        cli_fail(NULL, err, "consume: asynchronous commit");
    }
}

typedef struct consumer {
    ulog       *log;
    ulog_sub   *sub;
    const char *topic, *group, *format;
    int32_t     part;           /* -p, or ULOG_PARTITION_ANY */
    bool        json, follow;
    int64_t     count;          /* -c, or -1 */
    int64_t     printed, uncommitted;
    int         commit_failed;
} consumer;

/* Commits the positions: all of them, or only the -p partition's. */
static int commit(consumer *c, bool sync)
{
    if (!c->group || (!c->uncommitted && !sync))
        return 0;
    c->uncommitted = 0;
    int err;
    if (c->part != ULOG_PARTITION_ANY) {
        ulog_offset o = { c->part, 0 };
        err = ulog_position(c->sub, c->part, &o.offset);
        if (!err)
            err = ulog_commit_offsets(c->sub, &o, 1);
    } else {
        err = sync ? ulog_commit(c->sub) : ulog_commit_async(c->sub, on_commit, &c->commit_failed);
    }
    if (err)
        return cli_fail(c->log, err, "consume %s: commit for group %s", c->topic, c->group);
    return c->commit_failed ? 1 : 0;
}

static int loop(consumer *c)
{
    int rc = 0;
    while (rc == 0 && !stop_signal && c->printed != c->count) {
        ulog_msg m;
        int err = ulog_poll(c->sub, c->follow ? 200 : 0, &m);
        if (err == ULOG_ETIMEDOUT) {
            if (!c->follow)
                break;
            fflush(stdout);                 /* caught up: show what came */
            rc = commit(c, false);
            continue;
        }
        if (err)
            return cli_fail(c->log, err, "consume %s", c->topic);
        if (c->part != ULOG_PARTITION_ANY && m.partition != c->part)
            continue;
        err = c->json ? print_json(&m) : print_format(c->format, &m);
        if (err)
            return cli_fail(c->log, err, "consume %s: partition %d offset %lld: headers", c->topic,
                            (int)m.partition, (long long)m.offset);
        c->printed++;
        if (++c->uncommitted >= COMMIT_EVERY)
            rc = commit(c, false);
    }
    return rc;
}

int cmd_consume(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "json", no_argument, NULL, OPT_JSON },
        { NULL, 0, NULL, 0 },
    };
    consumer cs = { .part = ULOG_PARTITION_ANY, .count = -1, .format = "%s\\n" };
    from_kind from = FROM_DEFAULT;
    int64_t arg = 0, v;
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":d:o:G:p:c:feF:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'o':
            if (strcmp(optarg, "beginning") == 0)
                from = FROM_BEGINNING;
            else if (strcmp(optarg, "end") == 0)
                from = FROM_END;
            else if (optarg[0] == '@' && cli_parse_i64(optarg + 1, 0, INT64_MAX, &arg))
                from = FROM_TIME;
            else if (optarg[0] == '-' && cli_parse_i64(optarg + 1, 1, INT64_MAX, &arg))
                from = FROM_TAIL;
            else if (cli_parse_i64(optarg, 0, INT64_MAX, &arg))
                from = FROM_OFFSET;
            else
                rc = cli_usage_error("consume", "-o: want beginning, end, N, -N or @MS, not %s", optarg);
            break;
        case 'G': cs.group = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &v))
                rc = cli_usage_error("consume", "-p: not a partition number: %s", optarg);
            cs.part = (int32_t)v;
            break;
        case 'c':
            if (!cli_parse_i64(optarg, 0, INT64_MAX, &cs.count))
                rc = cli_usage_error("consume", "-c: not a count: %s", optarg);
            break;
        case 'f': cs.follow = true; break;
        case 'e': cs.follow = false; break;
        case 'F': cs.format = optarg; break;
        case OPT_JSON: cs.json = true; break;
        case 'h': return cli_help(USAGE);
        default: rc = cli_bad_option("consume", c, argv);
        }
    }
    const char *bad = rc ? NULL : format_check(cs.format);
    if (bad)
        rc = cli_usage_error("consume", "-F %s: %s", cs.format, bad);
    if (rc == 0 && optind + 1 != argc)
        rc = cli_usage_error("consume", "want exactly one TOPIC");
    if (rc == 0)
        rc = cli_open(&cs.log, false);
    if (rc)
        return rc;
    cs.topic = argv[optind];

    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    char err_text[256];
    ulog_config *cfg = ulog_config_new();
    int err = cfg ? ulog_topic_describe(cs.log, cs.topic, &info, NULL) : ULOG_ENOMEM;
    if (!err && cs.part != ULOG_PARTITION_ANY && cs.part >= info.partitions) {
        rc = cli_error("consume %s: no partition %d (the topic has %d)", cs.topic, (int)cs.part,
                       (int)info.partitions);
        goto out;
    }
    /* Partitions -o does not place, or the group never committed, start at
     * the beginning: a console consumer's user wants to see the records. */
    if (!err)
        err = ulog_config_set(cfg, "auto.offset.reset", "earliest", err_text, sizeof err_text);
    if (!err)
        err = ulog_subscribe(cs.log, cs.topic, cs.group, cfg, &cs.sub);
    if (err) {
        rc = cli_fail(cs.log, err, "consume %s%s%s", cs.topic, cs.group ? " as group " : "",
                      cs.group ? cs.group : "");
        goto out;
    }
    for (int32_t p = 0; rc == 0 && p < info.partitions; p++) {
        if (cs.part != ULOG_PARTITION_ANY && p != cs.part)
            rc = seek_one(cs.log, cs.sub, cs.topic, p, FROM_END, 0);  /* not read */
        else if (from != FROM_DEFAULT)
            rc = seek_one(cs.log, cs.sub, cs.topic, p, from, arg);
    }
    if (rc == 0) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = loop(&cs);
        int crc = commit(&cs, true);
        if (rc == 0)
            rc = crc;
    }
    if (cli_verbose)
        fprintf(stderr, "ulog: consume %s: %lld records%s%s\n", cs.topic, (long long)cs.printed,
                stop_signal ? ", stopped by a signal" : "", cs.group ? ", positions committed" : "");
out:
    ulog_sub_close(cs.sub);
    ulog_config_free(cfg);
    ulog_close(cs.log);
    return rc;
}
