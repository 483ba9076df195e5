/*
 * verify.c -- `ulog verify [TOPIC]`: ulog_verify() with a progress bar (on
 * a terminal) and a line per problem.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: ulog verify [TOPIC]\n"
    "\n"
    "Reads every committed record of TOPIC (default: of every topic) as a\n"
    "consumer would -- batch frames, CRC-32C, offset continuity, record bounds\n"
    "-- and reports each problem: topic, partition, the offsets it could not\n"
    "verify and why. Changes nothing. A progress bar goes to stderr when it is\n"
    "a terminal; a summary line always goes to stdout.\n"
    "Exit status 1 if anything failed to verify.\n";

typedef struct progress {
    bool    tty;
    bool    drawn;          /* a bar is on the line: clear it before text */
    int64_t skipped;        /* records reported as not verified */
} progress;

static void clear_bar(progress *pg)
{
    if (pg->drawn)
        fputs("\r\033[K", stderr);
    pg->drawn = false;
}

static int on_verify(const ulog_verify_info *in, void *arg)
{
    progress *pg = arg;
    if (in->error) {
        clear_bar(pg);
        pg->skipped += in->resume - in->offset;
        /* stdout, with the summary: it is the command's result. */
        fflush(stdout);
        printf("problem: topic %s partition %d: offsets %lld..%lld not verified: %s (%s)%s%s\n",
               in->topic ? in->topic : "?", (int)in->partition, (long long)in->offset,
               (long long)in->resume - 1, ulog_strerror(in->error), ulog_errname(in->error),
               in->detail && *in->detail ? ": " : "", in->detail ? in->detail : "");
        fflush(stdout);
    }
    if (pg->tty) {
        const int width = 30;
        double f = in->records_total > 0 ? (double)in->records_done / (double)in->records_total : 1;
        int fill = (int)(f * width);        /* full only when done */
        fprintf(stderr, "\r[%.*s%*s] %3d%%  %lld/%lld records  %s/%d",
                fill, "##############################", width - fill, "", (int)(f * 100),
                (long long)in->records_done, (long long)in->records_total,
                in->topic ? in->topic : "", (int)in->partition);
        fputs("\033[K", stderr);
        pg->drawn = true;
    }
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, rc;
    while ((c = getopt_long(argc, argv, ":d:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'h': return cli_help(USAGE);
        default: return cli_bad_option("verify", c, argv);
        }
    }
    if (argc - optind > 1)
        return cli_usage_error("verify", "want at most one TOPIC");
    const char *topic = optind < argc ? argv[optind] : NULL;
    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    progress pg = { .tty = isatty(2) };
    ulog_verify_info info = { .struct_size = sizeof info };
    int err = ulog_verify(log, topic, on_verify, &pg, &info);
    clear_bar(&pg);
    if (err && err != ULOG_ECORRUPT) {
        rc = cli_fail(log, err, "verify%s%s", topic ? " " : "", topic ? topic : "");
    } else {
        printf("verified %lld partition%s, %lld records: %lld problem%s\n",
               (long long)info.partitions_done, info.partitions_done == 1 ? "" : "s",
               (long long)(info.records_done - pg.skipped), (long long)info.corrupt,
               info.corrupt == 1 ? "" : "s");
        rc = info.corrupt ? 1 : 0;
    }
    ulog_close(log);
    return rc;
}
