/*
 * topics.c -- `ulog topics create|list|describe|alter|delete`.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static const char USAGE[] =
    "usage: ulog topics create NAME [-p PARTITIONS] [-c NAME=VALUE]...\n"
    "       ulog topics list\n"
    "       ulog topics describe [NAME...]\n"
    "       ulog topics alter NAME -c NAME=VALUE...\n"
    "       ulog topics delete [--if-exists] NAME...\n"
    "\n"
    "  create    make a topic: -p partitions (default 1), -c a topic setting\n"
    "            by its Kafka name (segment.bytes, max.message.bytes,\n"
    "            flush.policy, flush.ms, index.interval.bytes,\n"
    "            message.timestamp.type, preallocate); repeatable\n"
    "  list      topic names, one a line\n"
    "  describe  partitions, every setting, and per partition the low and high\n"
    "            watermarks, write end, segment files and bytes (default: all)\n"
    "  alter     change the settings given with -c (repeatable); the others\n"
    "            keep their values; processes using the topic follow at once\n"
    "  delete    delete topics with their records and group offsets; with\n"
    "            --if-exists a missing topic is not an error\n"
    "Options of every subcommand: -d DIR, --help.\n";

enum { OPT_IF_EXISTS = 256 };

static const struct option LONGOPTS[] = {
    { "help", no_argument, NULL, 'h' },
    { "if-exists", no_argument, NULL, OPT_IF_EXISTS },
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

/* Options of list and describe: -d and --help only. */
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
    ulog_config_free(cfg);

    cli_table_init(&t, 6);
    const char *head[] = { "PARTITION", "LOW", "HIGH", "WRITE-END", "SEGMENTS", "BYTES" };
    for (int i = 0; i < 6; i++)
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
    }
    cli_table_print(&t, stdout, "  ");
    return rc;
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

int cmd_topics(int argc, char **argv)
{
    static const char *const SUB[] = { "create", "list", "describe", "alter", "delete",
                                       "--help", "-h", NULL };
    if (argc < 2)
        return cli_usage_error("topics",
                               "want a subcommand: create, list, describe, alter or delete");
    switch (cli_subcommand(argv[1], SUB)) {
    case 0: return create(argc - 1, argv + 1);
    case 1: return list(argc - 1, argv + 1);
    case 2: return describe(argc - 1, argv + 1);
    case 3: return alter(argc - 1, argv + 1);
    case 4: return delete(argc - 1, argv + 1);
    case 5: case 6: return cli_help(USAGE);
    default: return cli_usage_error("topics", "unknown subcommand '%s'", argv[1]);
    }
}
