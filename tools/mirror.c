/*
 * mirror.c -- `ulog mirror to-kafka|from-kafka`: a ulog topic into Apache
 * Kafka, or a Kafka topic into ulog (kafka_mirror.c does the work).
 */
#include "cli.h"
#include "kafka_mirror.h"

#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: ulog mirror to-kafka TOPIC --brokers HOST:PORT[,...] [--kafka-topic NAME]\n"
    "                            [--name HOOK] [-X NAME=VALUE]...\n"
    "       ulog mirror from-kafka KAFKA-TOPIC --brokers HOST:PORT[,...] [--topic NAME]\n"
    "                            [--exit-idle MS] [-X NAME=VALUE]...\n"
    "\n"
    "  to-kafka    ships every record of TOPIC, as it is committed, to the same\n"
    "              partition of the Kafka topic (default: the same name) with the\n"
    "              idempotent producer: keys, values, headers and timestamps kept.\n"
    "              Its position is the consumer group HOOK's (default\n"
    "              mirror.TOPIC): a restart goes on from there; batches shipped\n"
    "              but not yet stored when it stopped by a crash go again.\n"
    "  from-kafka  appends every message of the Kafka topic to the same partition\n"
    "              of the ulog topic (default: the same name; it must exist) at\n"
    "              the same offset, from where each ulog partition ends; offsets\n"
    "              Kafka skips (compaction, transactions) are skipped here too. A\n"
    "              position Kafka no longer has stops it. --exit-idle: stop\n"
    "              once no message came for MS milliseconds.\n"
    "  -X          a librdkafka setting (security.protocol, sasl.*, ...)\n"
    "Runs until interrupted (SIGINT, SIGTERM); says how many records it moved.\n";

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int cmd_mirror(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "brokers", required_argument, NULL, 'b' },
        { "kafka-topic", required_argument, NULL, 'k' },
        { "topic", required_argument, NULL, 't' },
        { "name", required_argument, NULL, 'n' },
        { "exit-idle", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *brokers = NULL, *ktopic = NULL, *topic = NULL, *name = NULL;
    const char *extra[33] = { NULL };
    int nextra = 0, idle_ms = -1, c, rc;
    int64_t v;
    while ((c = getopt_long(argc, argv, ":d:X:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'b': brokers = optarg; break;
        case 'k': ktopic = optarg; break;
        case 't': topic = optarg; break;
        case 'n': name = optarg; break;
        case 'i':
            if (!cli_parse_i64(optarg, 0, 86400000, &v))
                return cli_usage_error("mirror", "--exit-idle wants milliseconds");
            idle_ms = (int)v;
            break;
        case 'X':
            if (nextra == 32 || !strchr(optarg, '='))
                return cli_usage_error("mirror", "-X wants NAME=VALUE (at most 32)");
            extra[nextra++] = optarg;
            break;
        case 'h': return cli_help(USAGE);
        default: return cli_bad_option("mirror", c, argv);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("mirror", "want to-kafka TOPIC or from-kafka KAFKA-TOPIC");
    const char *dir = argv[optind], *what = argv[optind + 1];
    bool to = strcmp(dir, "to-kafka") == 0;
    if (!to && strcmp(dir, "from-kafka") != 0)
        return cli_usage_error("mirror", "unknown direction %s", dir);
    if (!brokers)
        return cli_usage_error("mirror", "--brokers is required");
    if (to ? topic != NULL || idle_ms >= 0 : ktopic != NULL || name != NULL)
        return cli_usage_error("mirror", "an option of the other direction");
    ulog *log;
    if ((rc = cli_open(&log, false)) != 0)
        return rc;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char err[512] = "", hook[300];
    int64_t count = 0;
    if (to) {
        if (!name) {
            snprintf(hook, sizeof hook, "mirror.%s", what);
            name = hook;
        }
        kafka_to *m;
        rc = kafka_to_start(log, what, brokers, ktopic ? ktopic : what, name, extra, err,
                            sizeof err, &m);
        if (!rc) {
            while (!g_stop)
                sleep(1);       /* a signal ends it early; pause() could miss one */
            count = kafka_to_count(m);
            rc = kafka_to_stop(m);
        }
    } else {
        rc = kafka_from_run(log, topic ? topic : what, brokers, what, extra,
                            (volatile int *)&g_stop, idle_ms, &count, err, sizeof err);
    }
    if (rc) {
        cli_error("mirror %s %s: %s (%s)%s%s", dir, what, ulog_strerror(rc), ulog_errname(rc),
                  err[0] ? ": " : "", err);
        ulog_close(log);
        return 1;
    }
    printf("mirrored %lld records %s Kafka\n", (long long)count, to ? "to" : "from");
    ulog_close(log);
    return 0;
}
