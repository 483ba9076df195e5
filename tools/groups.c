/*
 * groups.c -- `ulog groups list|describe|reset|delete`, after Kafka's
 * kafka-consumer-groups.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static const char USAGE[] =
    "usage: ulog groups list\n"
    "       ulog groups describe GROUP\n"
    "       ulog groups reset GROUP TOPIC --to-earliest | --to-latest |\n"
    "                         --to-offset N | --to-datetime MS  [-p PARTITION]\n"
    "       ulog groups delete GROUP\n"
    "\n"
    "  list      groups with committed offsets, one a line\n"
    "  describe  per topic and partition: the committed offset, the low and\n"
    "            high watermarks, the lag and when it was committed\n"
    "  reset     set the group's committed offsets for TOPIC (every partition,\n"
    "            or -p's) to the start, the end, offset N, or the first record\n"
    "            at or after MS (ms since the epoch); then describes the group.\n"
    "            Meant for a group nobody is consuming with right now\n"
    "  delete    forget every committed offset of the group\n"
    "Options of every subcommand: -d DIR, --help.\n";

enum { OPT_EARLIEST = 256, OPT_LATEST, OPT_OFFSET, OPT_DATETIME };

static const struct option LONGOPTS[] = {
    { "help", no_argument, NULL, 'h' },
    { "to-earliest", no_argument, NULL, OPT_EARLIEST },
    { "to-latest", no_argument, NULL, OPT_LATEST },
    { "to-offset", required_argument, NULL, OPT_OFFSET },
    { "to-datetime", required_argument, NULL, OPT_DATETIME },
    { NULL, 0, NULL, 0 },
};

/* Prints the group's table; `topic` non-NULL: only that topic's rows. */
static int describe_table(ulog *log, const char *group, const char *topic)
{
    ulog_group_desc *d;
    int err = ulog_group_describe(log, group, &d);
    if (err)
        return cli_fail(log, err, "groups describe %s", group);
    cli_table t;
    cli_table_init(&t, 8);
    const char *head[] = { "GROUP", "TOPIC", "PARTITION", "COMMITTED", "LOW", "HIGH", "LAG",
                           "COMMIT-TIME" };
    for (int i = 0; i < 8; i++)
        cli_table_add(&t, "%s", head[i]);
    for (size_t i = 0; !err && i < ulog_group_desc_count(d); i++) {
        ulog_group_lag g = ULOG_GROUP_LAG_INIT;
        if ((err = ulog_group_desc_get(d, i, &g)) != 0)
            break;
        if (topic && strcmp(topic, g.topic) != 0)
            continue;
        char when[40];
        cli_format_time(g.commit_time, when, sizeof when);
        cli_table_add(&t, "%s", group);
        cli_table_add(&t, "%s", g.topic);
        cli_table_add(&t, "%d", (int)g.partition);
        cli_table_add(&t, "%lld", (long long)g.committed);
        cli_table_add(&t, "%lld", (long long)g.low);
        cli_table_add(&t, "%lld", (long long)g.high);
        cli_table_add(&t, "%lld", (long long)g.lag);
        cli_table_add(&t, "%s", when);
    }
    cli_table_print(&t, stdout, "");
    ulog_group_desc_free(d);
    return err ? cli_fail(log, err, "groups describe %s", group) : 0;
}

int cmd_groups(int argc, char **argv)
{
    static const char *const SUB[] = { "list", "describe", "reset", "delete", "--help", "-h", NULL };
    if (argc < 2)
        return cli_usage_error("groups", "want a subcommand: list, describe, reset or delete");
    int sub = cli_subcommand(argv[1], SUB);
    if (sub < 0)
        return cli_usage_error("groups", "unknown subcommand '%s'", argv[1]);
    if (sub >= 4)
        return cli_help(USAGE);
    static const int NARGS[] = { 0, 1, 2, 1 };
    char cmd[32];
    snprintf(cmd, sizeof cmd, "groups %s", SUB[sub]);
    argc--;
    argv++;

    int how = -1, c, rc = 0;
    int64_t value = 0, v;
    int32_t part = ULOG_PARTITION_ANY;
    while (rc == 0 && (c = getopt_long(argc, argv, sub == 2 ? ":d:p:" : ":d:", LONGOPTS, NULL)) != -1) {
        int h = -1;
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &v))
                rc = cli_usage_error(cmd, "-p: not a partition number: %s", optarg);
            part = (int32_t)v;
            break;
        case 'h': return cli_help(USAGE);
        case OPT_EARLIEST: h = ULOG_RESET_EARLIEST; break;
        case OPT_LATEST: h = ULOG_RESET_LATEST; break;
        case OPT_OFFSET: case OPT_DATETIME:
            h = c == OPT_OFFSET ? ULOG_RESET_OFFSET : ULOG_RESET_TIME;
            if (!cli_parse_i64(optarg, 0, INT64_MAX, &value))
                rc = cli_usage_error(cmd, "%s: not a non-negative number: %s", argv[optind - 1], optarg);
            break;
        default: rc = cli_bad_option(cmd, c, argv);
        }
        if (rc == 0 && h >= 0) {
            if (sub != 2)
                rc = cli_usage_error(cmd, "%s is an option of groups reset", argv[optind - 1]);
            else if (how >= 0)
                rc = cli_usage_error(cmd, "give one of --to-earliest, --to-latest, --to-offset, --to-datetime");
            how = h;
        }
    }
    if (rc)
        return rc;
    if (argc - optind != NARGS[sub])
        return cli_usage_error(cmd, "want %s", sub == 0 ? "no arguments" : sub == 2 ? "GROUP TOPIC" : "GROUP");
    if (sub == 2 && how < 0)
        return cli_usage_error(cmd, "give one of --to-earliest, --to-latest, --to-offset, --to-datetime");

    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    int err = 0;
    const char *group = argv[optind];
    switch (sub) {
    case 0: {
        ulog_strlist *names;
        if ((err = ulog_group_list(log, &names)) != 0) {
            rc = cli_fail(log, err, "groups list");
            break;
        }
        for (size_t i = 0; i < ulog_strlist_count(names); i++)
            puts(ulog_strlist_get(names, i));
        ulog_strlist_free(names);
        break;
    }
    case 1:
        rc = describe_table(log, group, NULL);
        break;
    case 2:
        err = ulog_group_reset(log, group, argv[optind + 1], part, how, value);
        if (err)
            rc = cli_fail(log, err, "groups reset %s %s", group, argv[optind + 1]);
        else
            rc = describe_table(log, group, argv[optind + 1]);
        break;
    case 3:
        if ((err = ulog_group_delete(log, group)) != 0)
            rc = cli_fail(log, err, "groups delete %s", group);
        else
            printf("deleted group %s\n", group);
        break;
    }
    ulog_close(log);
    return rc;
}
