/*
 * ulog.c -- the `ulog` command-line tool: global options and dispatch.
 *
 * Modeled on kcat and Kafka's console tools. Each command lives in its own
 * file and parses its own options with getopt_long(); -d DIR and -v are
 * accepted before the command (and -d after it too, for convenience).
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: ulog [-d DIR] [-v] COMMAND [ARGS...]\n"
    "       ulog --version | --help\n"
    "\n"
    "Commands (each takes --help):\n"
    "  topics create|list|describe|alter|delete\n"
    "                                manage topics\n"
    "  topics clean|delete-records   apply retention, delete old records\n"
    "  produce TOPIC                 append records read from stdin\n"
    "  consume TOPIC                 print records\n"
    "  groups list|describe|reset|delete\n"
    "                                consumer groups and their lag\n"
    "  dump SEGMENT_FILE             list the batches of a segment file\n"
    "  verify [TOPIC]                check every committed record\n"
    "  perf produce|consume|latency  measure throughput and latency\n"
    "\n"
    "Options:\n"
    "  -d DIR      the log root (default: $ULOG_DIR)\n"
    "  -k TOPIC:ID:FILE\n"
    "              the key of id ID for the encrypted topic TOPIC, in FILE (32\n"
    "              bytes, raw or hex); repeat for more keys\n"
    "  -v          verbose: summaries on stderr\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

typedef int command_fn(int argc, char **argv);

static const struct {
    const char *name;
    command_fn *fn;
} COMMANDS[] = {
    { "topics", cmd_topics },   { "produce", cmd_produce }, { "consume", cmd_consume },
    { "groups", cmd_groups },   { "dump", cmd_dump },       { "verify", cmd_verify },
    { "perf", cmd_perf },       { "mirror", cmd_mirror },
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    cli_dir = getenv("ULOG_DIR");
    opterr = 0;
    int c;
    /* '+': stop at the command; its options are its own. */
    while ((c = getopt_long(argc, argv, "+:d:k:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'k': {
            int rc = cli_add_key(optarg);
            if (rc)
                return rc;
            break;
        }
        case 'v': cli_verbose = 1; break;
        case 'h': return cli_help(USAGE);
        case 'V':
            printf("ulog %s (library %s)\n", ULOG_VERSION_STRING, ulog_version_string());
            return 0;
        default: return cli_bad_option(NULL, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error(NULL, "no command given");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(argv[optind], COMMANDS[i].name) == 0) {
            char **cargv = argv + optind;
            int cargc = argc - optind;
            optind = 0;    /* glibc: 0 re-initialises getopt for the command */
            int rc = COMMANDS[i].fn(cargc, cargv);
            if (fflush(stdout) != 0 && rc == 0)
                rc = cli_error("writing the output failed");
            return rc;
        }
    }
    return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
}
