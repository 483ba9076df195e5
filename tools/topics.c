/*
 * topics.c -- `ulog topics create|list|describe|alter|delete|clean|delete-records`.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: ulog topics create NAME [-p PARTITIONS] [-c NAME=VALUE]...\n"
    "       ulog topics list\n"
    "       ulog topics describe [NAME...]\n"
    "       ulog topics alter NAME -c NAME=VALUE...\n"
    "       ulog topics delete [--if-exists] NAME...\n"
    "       ulog topics clean [--retention|--compact] [NAME...]\n"
    "       ulog topics delete-records NAME -p PARTITION -o OFFSET|end\n"
    "\n"
    "  create    make a topic: -p partitions (default 1), -c a topic setting\n"
    "            by its Kafka name (segment.bytes, max.message.bytes,\n"
    "            flush.policy, flush.ms, index.interval.bytes,\n"
    "            message.timestamp.type, preallocate, retention.ms,\n"
    "            retention.bytes, segment.ms, retention.groups, cleanup.policy,\n"
    "            delete.retention.ms, min.compaction.lag.ms,\n"
    "            min.cleanable.dirty.ratio, replication.sync,\n"
    "            replication.timeout.ms); repeatable\n"
    "  list      topic names, one a line\n"
    "  describe  partitions, every setting, and per partition the low and high\n"
    "            watermarks, write end, segment files and bytes, the bytes\n"
    "            retention and compaction have reclaimed and when they last\n"
    "            did, where compaction's clean part ends and the dirty ratio\n"
    "            (compacted topics), and which consumer groups hold retention\n"
    "            back by how many bytes (retention.groups) (default: all)\n"
    "  alter     change the settings given with -c (repeatable); the others\n"
    "            keep their values; processes using the topic follow at once\n"
    "  delete    delete topics with their records and group offsets; with\n"
    "            --if-exists a missing topic is not an error\n"
    "  clean     apply retention now (retention.ms, retention.bytes,\n"
    "            segment.ms) to the topics named (default: all): delete the\n"
    "            oldest whole segments past them; and compaction (topics whose\n"
    "            cleanup.policy compacts): keep the latest record of each key;\n"
    "            --retention or --compact does only that one; a progress bar\n"
    "            goes to stderr when it is a terminal, a summary line to stdout\n"
    "  delete-records  move the log start offset of one partition up to\n"
    "            OFFSET (at most the high watermark; end: to it): the records\n"
    "            below are gone for every reader; prints the new start\n"
    "Options of every subcommand: -d DIR, --help.\n";

enum { OPT_IF_EXISTS = 256, OPT_RETENTION, OPT_COMPACT };

static const struct option LONGOPTS[] = {
    { "help", no_argument, NULL, 'h' },
    { "if-exists", no_argument, NULL, OPT_IF_EXISTS },
    { "retention", no_argument, NULL, OPT_RETENTION },
    { "compact", no_argument, NULL, OPT_COMPACT },
    { NULL, 0, NULL, 0 },
};

/* The options of create and alter: -d, -c NAME=VALUE into cfg (*nset
 * counts them), and -p into *parts when parts is not NULL. -1 for --help. */
static int setting_options(const char *cmd, int argc, char **argv, ulog_config *cfg,
                           int *nset, int64_t *parts)
{
    int c, rc = 0;
    while (rc == 0 &&
           (c = getopt_long(argc, argv, parts ? ":d:p:c:" : ":d:c:", LONGOPTS, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 1, 10000, parts))
                rc = cli_usage_error(cmd, "-p: not a partition count in 1..10000: %s", optarg);
            break;
        case 'c': {
            char *eq = strchr(optarg, '='), err[256];
            if (!eq) {
                rc = cli_usage_error(cmd, "-c wants NAME=VALUE, not %s", optarg);
                break;
            }
            *eq = '\0';
            int e = ulog_config_set(cfg, optarg, eq + 1, err, sizeof err);
            if (e)
                rc = e == ULOG_EINVAL ? cli_usage_error(cmd, "-c %s: %s", optarg, err)
                                      : cli_fail(NULL, e, "%s: -c %s", cmd, optarg);
            (*nset)++;
            break;
        }
        case 'h': return -1;
        default: rc = cli_bad_option(cmd, c, argv);
        }
    }
    return rc;
}

static int create(int argc, char **argv)
{
    int64_t parts = 1;
    int nset = 0;
    ulog_config *cfg = ulog_config_new();
    if (!cfg)
        return cli_fail(NULL, ULOG_ENOMEM, "topics create");
    int rc = setting_options("topics create", argc, argv, cfg, &nset, &parts);
    if (rc < 0) {
        ulog_config_free(cfg);
        return cli_help(USAGE);
    }
    if (rc == 0 && optind + 1 != argc)
        rc = cli_usage_error("topics create", "want exactly one topic NAME");
    ulog *log = NULL;
    if (rc == 0)
        rc = cli_open(&log, true);
    if (rc == 0) {
        const char *name = argv[optind];
        int err = ulog_topic_create(log, name, (int32_t)parts, cfg);
        if (err)
            rc = cli_fail(log, err, "topics create %s", name);
        else
            printf("created topic %s with %lld partition%s\n", name, (long long)parts,
                   parts == 1 ? "" : "s");
    }
    ulog_config_free(cfg);
    ulog_close(log);
    return rc;
}

static int alter(int argc, char **argv)
{
    int nset = 0;
    ulog_config *cfg = ulog_config_new();
    if (!cfg)
        return cli_fail(NULL, ULOG_ENOMEM, "topics alter");
    int rc = setting_options("topics alter", argc, argv, cfg, &nset, NULL);
    if (rc < 0) {
        ulog_config_free(cfg);
        return cli_help(USAGE);
    }
    if (rc == 0 && optind + 1 != argc)
        rc = cli_usage_error("topics alter", "want exactly one topic NAME");
    if (rc == 0 && nset == 0)
        rc = cli_usage_error("topics alter", "nothing to change: give -c NAME=VALUE");
    ulog *log = NULL;
    if (rc == 0)
        rc = cli_open(&log, false);
    if (rc == 0) {
        const char *name = argv[optind];
        int err = ulog_topic_alter(log, name, cfg);
        if (err)
            rc = cli_fail(log, err, "topics alter %s", name);
        else
            printf("altered topic %s: %d setting%s\n", name, nset, nset == 1 ? "" : "s");
    }
    ulog_config_free(cfg);
    ulog_close(log);
    return rc;
}

static int delete(int argc, char **argv)
{
    bool if_exists = false;
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":d:", LONGOPTS, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case OPT_IF_EXISTS: if_exists = true; break;
        case 'h': return cli_help(USAGE);
        default: rc = cli_bad_option("topics delete", c, argv);
        }
    }
    if (rc == 0 && optind == argc)
        rc = cli_usage_error("topics delete", "want a topic NAME");
    ulog *log = NULL;
    if (rc == 0)
        rc = cli_open(&log, false);
    for (int i = optind; rc == 0 && i < argc; i++) {
        int err = ulog_topic_delete(log, argv[i]);
        if (err == 0)
            printf("deleted topic %s\n", argv[i]);
        else if (!(err == ULOG_ENOENT && if_exists))
            rc = cli_fail(log, err, "topics delete %s", argv[i]);
    }
    ulog_close(log);
    return rc;
}

/* Options of list, describe and clean: -d and --help only. */
static int plain_options(const char *cmd, int argc, char **argv)
{
    int c;
    while ((c = getopt_long(argc, argv, ":d:", LONGOPTS, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'h': return -1;
        default: return cli_bad_option(cmd, c, argv);
        }
    }
    return 0;
}

static int list(int argc, char **argv)
{
    int rc = plain_options("topics list", argc, argv);
    if (rc)
        return rc < 0 ? cli_help(USAGE) : rc;
    if (optind != argc)
        return cli_usage_error("topics list", "unexpected argument %s", argv[optind]);
    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    ulog_strlist *names;
    int err = ulog_topic_list(log, &names);
    if (err) {
        rc = cli_fail(log, err, "topics list");
    } else {
        for (size_t i = 0; i < ulog_strlist_count(names); i++)
            puts(ulog_strlist_get(names, i));
        ulog_strlist_free(names);
    }
    ulog_close(log);
    return rc;
}

/* The consumer groups retention.groups names, and what each holds back;
 * nothing when the topic names none. */
static int describe_pins(ulog *log, const char *name)
{
    ulog_pins *pins;
    int err = ulog_retention_pins(log, name, &pins);
    if (err)
        return cli_fail(log, err, "topics describe %s: retention pins", name);
    if (ulog_pins_count(pins) > 0) {
        cli_table t;
        cli_table_init(&t, 4);
        const char *head[] = { "HELD-BY-GROUP", "PARTITION", "COMMITTED", "HELD-BYTES" };
        for (int i = 0; i < 4; i++)
            cli_table_add(&t, "%s", head[i]);
        for (size_t i = 0; i < ulog_pins_count(pins); i++) {
            ulog_pin pn = ULOG_PIN_INIT;
            if (ulog_pins_get(pins, i, &pn) != 0)
                continue;
            cli_table_add(&t, "%s", pn.group);
            cli_table_add(&t, "%d", (int)pn.partition);
            if (pn.committed < 0)
                cli_table_add(&t, "-");
            else
                cli_table_add(&t, "%lld", (long long)pn.committed);
            cli_table_add(&t, "%lld", (long long)pn.bytes);
        }
        cli_table_print(&t, stdout, "  ");
    }
    ulog_pins_free(pins);
    return 0;
}

static int describe_one(ulog *log, const char *name)
{
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    ulog_config *cfg;
    int err = ulog_topic_describe(log, name, &info, &cfg);
    if (err)
        return cli_fail(log, err, "topics describe %s", name);
    printf("topic %s: %d partition%s (id %u)\n", name, (int)info.partitions,
           info.partitions == 1 ? "" : "s", (unsigned)info.id);
    ulog_strlist *names;
    if ((err = ulog_config_names(cfg, &names)) != 0) {
        ulog_config_free(cfg);
        return cli_fail(log, err, "topics describe %s: config", name);
    }
    cli_table t;
    cli_table_init(&t, 2);
    for (size_t i = 0; i < ulog_strlist_count(names); i++) {
        char value[64];
        const char *n = ulog_strlist_get(names, i);
        if (ulog_config_get(cfg, n, value, sizeof value) != 0)
            snprintf(value, sizeof value, "?");
        cli_table_add(&t, "%s", n);
        cli_table_add(&t, "%s", value);
    }
    cli_table_print(&t, stdout, "  ");
    ulog_strlist_free(names);
    char policy[32] = "";
    ulog_config_get(cfg, "cleanup.policy", policy, sizeof policy);
    bool compacts = strstr(policy, "compact") != NULL;
    ulog_config_free(cfg);

    cli_table_init(&t, 10);
    const char *head[] = { "PARTITION", "LOW", "HIGH", "WRITE-END", "SEGMENTS", "BYTES",
                           "RECLAIMED", "CLEANED", "CLEAN-END", "DIRTY" };
    for (int i = 0; i < 10; i++)
        cli_table_add(&t, "%s", head[i]);
    int rc = 0;
    for (int32_t p = 0; p < info.partitions; p++) {
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        if ((err = ulog_partition_describe(log, name, p, &pi)) != 0) {
            rc = cli_fail(log, err, "topics describe %s: partition %d", name, (int)p);
            break;
        }
        cli_table_add(&t, "%d", (int)p);
        cli_table_add(&t, "%lld", (long long)pi.low);
        cli_table_add(&t, "%lld", (long long)pi.high);
        cli_table_add(&t, "%lld", (long long)pi.write_end);
        cli_table_add(&t, "%lld", (long long)pi.segments);
        cli_table_add(&t, "%lld", (long long)pi.bytes);
        cli_table_add(&t, "%lld", (long long)pi.reclaimed);
        char when[40] = "-";
        if (pi.cleaned_ms != 0)
            cli_format_time(pi.cleaned_ms, when, sizeof when);
        cli_table_add(&t, "%s", when);
        /* The dirty ratio min.cleanable.dirty.ratio is compared with. */
        int64_t closed = pi.clean_bytes + pi.dirty_bytes;
        if (compacts) {
            cli_table_add(&t, "%lld", (long long)pi.cleaned_end);
            cli_table_add(&t, "%.2f", closed ? (double)pi.dirty_bytes / (double)closed : 0.0);
        } else {
            cli_table_add(&t, "-");
            cli_table_add(&t, "-");
        }
    }
    cli_table_print(&t, stdout, "  ");
    return rc ? rc : describe_pins(log, name);
}

static int describe(int argc, char **argv)
{
    int rc = plain_options("topics describe", argc, argv);
    if (rc)
        return rc < 0 ? cli_help(USAGE) : rc;
    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    ulog_strlist *all = NULL;
    if (optind == argc) {
        int err = ulog_topic_list(log, &all);
        if (err) {
            rc = cli_fail(log, err, "topics describe");
            ulog_close(log);
            return rc;
        }
    }
    size_t n = all ? ulog_strlist_count(all) : (size_t)(argc - optind);
    for (size_t i = 0; i < n; i++) {
        if (i)
            putchar('\n');
        int r = describe_one(log, all ? ulog_strlist_get(all, i) : argv[optind + (int)i]);
        if (r)
            rc = r;
    }
    ulog_strlist_free(all);
    ulog_close(log);
    return rc;
}

/* ---------------------------------------------------------------- clean */

typedef struct clean_state {
    bool    tty;
    bool    drawn;                  /* a bar is on the line: clear it before text */
    int64_t total;                  /* partitions of every call; 0: the call's own */
    int64_t partitions, segments, bytes;    /* totals of the calls finished */
    ulog_clean_progress last;       /* the latest report of the call running */
} clean_state;

static void clear_clean_bar(clean_state *cs)
{
    if (cs->drawn)
        fputs("\r\033[K", stderr);
    cs->drawn = false;
}

static int on_clean(const ulog_clean_progress *in, void *arg)
{
    clean_state *cs = arg;
    cs->last = *in;
    if (cs->tty) {
        const int width = 30;
        int64_t done = cs->partitions + in->partitions_done;
        int64_t total = cs->total ? cs->total : in->partitions_total;
        double f = total > 0 ? (double)done / (double)total : 1;
        int fill = (int)(f * width);        /* full only when done */
        fprintf(stderr, "\r[%.*s%*s] %3d%%  %lld/%lld partitions  %lld segments, %lld bytes  %s/%d",
                fill, "##############################", width - fill, "", (int)(f * 100),
                (long long)done, (long long)total, (long long)(cs->segments + in->segments_deleted),
                (long long)(cs->bytes + in->bytes_reclaimed), in->topic ? in->topic : "",
                (int)in->partition);
        fputs("\033[K", stderr);
        cs->drawn = true;
    }
    return 0;
}

static int clean(int argc, char **argv)
{
    int c, rc = 0, flags = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":d:", LONGOPTS, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'h': return cli_help(USAGE);
        case OPT_RETENTION: flags |= ULOG_CLEAN_RETENTION; break;
        case OPT_COMPACT: flags |= ULOG_CLEAN_COMPACT; break;
        default: return cli_bad_option("topics clean", c, argv);
        }
    }
    if (!flags)
        flags = ULOG_CLEAN_RETENTION | ULOG_CLEAN_COMPACT;
    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    clean_state cs = { .tty = isatty(2) };
    /* Every name first: a mistyped one fails before anything is deleted. */
    for (int i = optind; i < argc; i++) {
        ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
        int err = ulog_topic_describe(log, argv[i], &info, NULL);
        if (err) {
            rc = cli_fail(log, err, "topics clean %s", argv[i]);
            ulog_close(log);
            return rc;
        }
        cs.total += info.partitions;
    }
    int calls = optind < argc ? argc - optind : 1;
    for (int i = 0; rc == 0 && i < calls; i++) {
        const char *name = optind < argc ? argv[optind + i] : NULL;   /* NULL: every topic */
        cs.last = (ulog_clean_progress){ .struct_size = sizeof cs.last };
        int err = ulog_clean(log, name, flags, on_clean, &cs);
        cs.partitions += cs.last.partitions_done;
        cs.segments += cs.last.segments_deleted;
        cs.bytes += cs.last.bytes_reclaimed;
        if (err) {
            clear_clean_bar(&cs);
            rc = cli_fail(log, err, "topics clean%s%s", name ? " " : "", name ? name : "");
        }
    }
    clear_clean_bar(&cs);
    /* Even after a failure: what was deleted is gone, and the user should know. */
    printf("cleaned %lld partition%s: %lld segment%s deleted, %lld bytes reclaimed\n",
           (long long)cs.partitions, cs.partitions == 1 ? "" : "s", (long long)cs.segments,
           cs.segments == 1 ? "" : "s", (long long)cs.bytes);
    ulog_close(log);
    return rc;
}

static int delete_records(int argc, char **argv)
{
    const char *cmd = "topics delete-records";
    int64_t part = -1, offset = -1;
    bool to_end = false;
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":d:p:o:", LONGOPTS, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &part))
                rc = cli_usage_error(cmd, "-p: not a partition number: %s", optarg);
            break;
        case 'o':
            to_end = strcmp(optarg, "end") == 0;
            if (!to_end && !cli_parse_i64(optarg, 0, INT64_MAX, &offset))
                rc = cli_usage_error(cmd, "-o: want an offset N >= 0 or end, not %s", optarg);
            break;
        case 'h': return cli_help(USAGE);
        default: rc = cli_bad_option(cmd, c, argv);
        }
    }
    if (rc)
        return rc;
    if (optind + 1 != argc)
        return cli_usage_error(cmd, "want exactly one topic NAME");
    if (part < 0)
        return cli_usage_error(cmd, "give the partition: -p PARTITION");
    if (offset < 0 && !to_end)
        return cli_usage_error(cmd, "give the new log start offset: -o OFFSET or -o end");
    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    const char *name = argv[optind];
    int err = 0;
    if (to_end) {
        int64_t low;
        err = ulog_watermarks(log, name, (int32_t)part, &low, &offset);
    }
    if (err == 0)
        err = ulog_delete_records(log, name, (int32_t)part, offset);
    ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
    if (err == 0)
        err = ulog_partition_describe(log, name, (int32_t)part, &pi);
    if (err)
        rc = to_end ? cli_fail(log, err, "%s %s partition %d to the end", cmd, name, (int)part)
                    : cli_fail(log, err, "%s %s partition %d offset %lld", cmd, name, (int)part,
                               (long long)offset);
    else
        printf("topic %s partition %d: log start offset now %lld\n", name, (int)part,
               (long long)pi.low);
    ulog_close(log);
    return rc;
}

int cmd_topics(int argc, char **argv)
{
    static const char *const SUB[] = { "create", "list", "describe", "alter", "delete",
                                       "clean", "delete-records", "--help", "-h", NULL };
    if (argc < 2)
        return cli_usage_error("topics", "want a subcommand: create, list, describe, alter, "
                                         "delete, clean or delete-records");
    switch (cli_subcommand(argv[1], SUB)) {
    case 0: return create(argc - 1, argv + 1);
    case 1: return list(argc - 1, argv + 1);
    case 2: return describe(argc - 1, argv + 1);
    case 3: return alter(argc - 1, argv + 1);
    case 4: return delete(argc - 1, argv + 1);
    case 5: return clean(argc - 1, argv + 1);
    case 6: return delete_records(argc - 1, argv + 1);
    case 7: case 8: return cli_help(USAGE);
    default: return cli_usage_error("topics", "unknown subcommand '%s'", argv[1]);
    }
}
