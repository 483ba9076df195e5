/*
 * produce.c -- `ulog produce TOPIC`: one record per line (or NUL-terminated
 * record, or JSON object) of stdin.
 *
 * Records are gathered into one ulog_append() call of up to -b records
 * (one atomic batch per partition), but a record never waits for company:
 * when stdin has nothing more ready right now, the gathered records are
 * appended before the tool blocks on the next read. So an interactive or
 * trickling producer sees each line committed at once, and a bulk one gets
 * large batches. stdin is read with read(2), not stdio, so that "nothing
 * ready" (poll with timeout 0) is never fooled by a stdio buffer.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: ulog produce TOPIC [-p PARTITION] [-K SEP] [-H KEY=VALUE]...\n"
    "                          [--json] [-z] [-b BATCH] [--flush always|interval|none] [-v]\n"
    "\n"
    "Appends one record per line of stdin (the newline is not part of it; a\n"
    "last line without one still counts).\n"
    "  -p N        partition N (default: by key, round-robin for null keys)\n"
    "  -K SEP      the key is what comes before the first SEP, the value what\n"
    "              follows; a line without SEP has a null key, which a\n"
    "              compacted topic (cleanup.policy=compact) refuses\n"
    "  -H K=V      add header K with value V to every record (repeatable)\n"
    "  --json      each line is a JSON object: {\"key\":..., \"value\":...,\n"
    "              \"headers\":{\"k\":\"v\",...}, \"partition\":N, \"timestamp\":MS};\n"
    "              every field optional, key/value/header values may be null,\n"
    "              \"topic\" and \"offset\" (as consume --json writes) are ignored;\n"
    "              \\u0000-\\u00ff stand for single bytes\n"
    "  -z          records end with a NUL byte instead of a newline\n"
    "  -b N        at most N records per append (default 100); fewer when\n"
    "              stdin pauses, or max.message.bytes would be exceeded\n"
    "  --flush P   refuse to run unless the topic's flush.policy is at least\n"
    "              as strong as P (none < interval < always): a check, so that\n"
    "              \"durable\" is never silently false; it changes nothing\n"
    "  -v          print a summary line on stderr\n"
    "Stops at the first bad record; those before it are appended.\n";

enum { OPT_JSON = 256, OPT_FLUSH };

/* A gathered record; its bytes are in the arena (offsets, since the arena
 * moves as it grows). Length -1: null. */
typedef struct pend {
    size_t   key, val, hdr, nhdr;
    int64_t  key_len, val_len, ts;
    int32_t  part;
} pend;

typedef struct phdr {
    size_t  key, key_len, val;
    int64_t val_len;
} phdr;

typedef struct producer {
    ulog       *log;
    const char *topic;
    int32_t     partitions, part;      /* part: -p, or ULOG_PARTITION_ANY */
    const char *sep;                   /* -K */
    size_t      sep_len;
    char      **hdr_args;              /* -H K=V, as given */
    int         nhdr_args;
    bool        json;
    size_t      max_batch, budget;     /* records, and bytes per append */
    cli_buf     arena;
    pend       *recs;
    phdr       *hdrs;
    size_t      n, cap, nh, hcap, bytes;
    ulog_record *out;                  /* built at each append */
    ulog_header *outh;
    int64_t     records, appends, total_bytes, lineno;
    char        cleanup[32];           /* the topic's cleanup.policy */
} producer;

static const char *policy_names[] = { "none", "interval", "always", NULL };

static size_t add_bytes(producer *pr, const void *p, int64_t len)
{
    size_t at = pr->arena.len;
    if (len > 0)
        cli_buf_add(&pr->arena, p, (size_t)len);
    return at;
}

static void add_header(producer *pr, const void *k, size_t klen, const void *v, int64_t vlen)
{
    if (pr->nh == pr->hcap) {
        pr->hcap = pr->hcap ? pr->hcap * 2 : 64;
        pr->hdrs = cli_xrealloc(pr->hdrs, pr->hcap * sizeof *pr->hdrs);
    }
    phdr *h = &pr->hdrs[pr->nh++];
    h->key_len = klen;
    h->key = add_bytes(pr, k, (int64_t)klen);
    h->val_len = vlen;
    h->val = add_bytes(pr, v, vlen);
    pr->bytes += klen + (vlen > 0 ? (size_t)vlen : 0) + 10;
}

/* Starts a record (its key and value go to the arena); headers follow. */
static pend *add_record(producer *pr, const void *k, int64_t klen, const void *v, int64_t vlen)
{
    if (pr->n == pr->cap) {
        pr->cap = pr->cap ? pr->cap * 2 : 128;
        pr->recs = cli_xrealloc(pr->recs, pr->cap * sizeof *pr->recs);
    }
    pend *r = &pr->recs[pr->n++];
    r->key_len = klen;
    r->key = add_bytes(pr, k, klen);
    r->val_len = vlen;
    r->val = add_bytes(pr, v, vlen);
    r->ts = ULOG_TIMESTAMP_NOW;
    r->part = pr->part;
    r->hdr = pr->nh;
    r->nhdr = 0;
    /* Worst-case record overhead in a batch: length, attributes, deltas,
     * key and value lengths, header count. */
    pr->bytes += (klen > 0 ? (size_t)klen : 0) + (vlen > 0 ? (size_t)vlen : 0) + 40;
    for (int i = 0; i < pr->nhdr_args; i++) {
        const char *a = pr->hdr_args[i], *eq = strchr(a, '=');
        add_header(pr, a, (size_t)(eq - a), eq + 1, (int64_t)strlen(eq + 1));
    }
    r->nhdr = pr->nh - r->hdr;
    return r;
}

/* Appends the gathered records in one call. */
static int append(producer *pr)
{
    if (pr->n == 0)
        return 0;
    pr->out = cli_xrealloc(pr->out, pr->n * sizeof *pr->out);
    pr->outh = cli_xrealloc(pr->outh, (pr->nh ? pr->nh : 1) * sizeof *pr->outh);
    const char *a = pr->arena.p;
    for (size_t i = 0; i < pr->nh; i++) {
        phdr *h = &pr->hdrs[i];
        pr->outh[i] = (ulog_header){ a + h->key, h->key_len,
                                     h->val_len < 0 ? NULL : a + h->val,
                                     h->val_len < 0 ? 0 : (size_t)h->val_len };
    }
    int64_t bytes = 0;
    for (size_t i = 0; i < pr->n; i++) {
        pend *r = &pr->recs[i];
        /* An empty key or value must not be NULL (that means null). */
        pr->out[i] = (ulog_record){
            .key = r->key_len < 0 ? NULL : a ? a + r->key : "",
            .key_len = r->key_len < 0 ? 0 : (size_t)r->key_len,
            .value = r->val_len < 0 ? NULL : a ? a + r->val : "",
            .value_len = r->val_len < 0 ? 0 : (size_t)r->val_len,
            .headers = r->nhdr ? pr->outh + r->hdr : NULL,
            .header_count = r->nhdr,
            .timestamp = r->ts,
            .partition = r->part,
        };
        bytes += (int64_t)(pr->out[i].key_len + pr->out[i].value_len);
    }
    int err = ulog_append(pr->log, pr->topic, pr->out, pr->n);
    if (err)
        return cli_fail(pr->log, err, "produce %s: appending records %lld..%lld of the input",
                        pr->topic, (long long)pr->records + 1, (long long)(pr->records + (int64_t)pr->n));
    pr->records += (int64_t)pr->n;
    pr->total_bytes += bytes;
    pr->appends++;
    pr->n = pr->nh = pr->bytes = 0;
    pr->arena.len = 0;
    return 0;
}

/* A compacted topic refuses null keys. ulog_append would refuse the whole
 * batch, with the records before this one, so the tool says it here. */
static int check_key(producer *pr, bool null_key)
{
    if (!null_key || strncmp(pr->cleanup, "compact", 7) != 0)
        return 0;
    return cli_error("produce %s: record %lld: no key, and the topic is compacted "
                     "(cleanup.policy=%s): every record needs one", pr->topic,
                     (long long)pr->lineno, pr->cleanup);
}

static int check_partition(producer *pr, int64_t p, const char *where)
{
    if (p >= 0 && p < pr->partitions)
        return 0;
    return cli_error("produce %s: %s: no partition %lld (the topic has %d)", pr->topic, where,
                     (long long)p, (int)pr->partitions);
}

static int json_record(producer *pr, const char *p, size_t len)
{
    json_reader j;
    json_init(&j, p, len);
    cli_buf key = { 0 }, val = { 0 }, hk = { 0 }, hv = { 0 };
    bool key_null = true, val_null = true, ok = json_expect(&j, '{');
    unsigned seen = 0;
    int64_t ts = ULOG_TIMESTAMP_NOW, part = pr->part, ignored;
    /* Header key/value pairs as offsets into hk/hv (they may move). */
    size_t nh = 0, hcap = 0;
    struct { size_t k, klen, v; int64_t vlen; } *h = NULL;
    if (ok && json_peek(&j) == '}')
        j.p++;
    else
        for (bool more = ok; more;) {
            cli_buf name = { 0 };
            ok = json_string(&j, &name) && json_expect(&j, ':');
            static const char *const FIELDS[] = { "key", "value", "headers", "partition",
                                                  "timestamp", "topic", "offset", NULL };
            cli_buf_add(&name, "", 1);
            int f = ok ? cli_subcommand(name.p, FIELDS) : -1;
            if (ok && f < 0)
                snprintf(j.err, sizeof j.err, "unknown field \"%.60s\"", name.p);
            else if (ok && (seen & 1u << f))
                snprintf(j.err, sizeof j.err, "field \"%s\" given twice", name.p);
            cli_buf_free(&name);
            if (!ok || f < 0 || (seen & 1u << f)) {
                ok = false;
                break;
            }
            seen |= 1u << f;
            switch (f) {
            case 0: key_null = json_null(&j); ok = key_null || json_string(&j, &key); break;
            case 1: val_null = json_null(&j); ok = val_null || json_string(&j, &val); break;
            case 2:
                if (json_null(&j))
                    break;
                if (!(ok = json_expect(&j, '{')))
                    break;
                if (json_peek(&j) == '}') {
                    j.p++;
                    break;
                }
                /* Repeated header keys are allowed: Kafka headers are a list. */
                for (bool hmore = true; ok && hmore;) {
                    if (nh == hcap) {
                        hcap = hcap ? hcap * 2 : 8;
                        h = cli_xrealloc(h, hcap * sizeof *h);
                    }
                    h[nh].k = hk.len;
                    h[nh].v = hv.len;
                    ok = json_string(&j, &hk) && json_expect(&j, ':');
                    h[nh].klen = hk.len - h[nh].k;
                    bool vnull = ok && json_null(&j);
                    ok = ok && (vnull || json_string(&j, &hv));
                    h[nh].vlen = vnull ? -1 : (int64_t)(hv.len - h[nh].v);
                    nh++;
                    char c = ok ? json_peek(&j) : 0;
                    if (ok && c != ',' && c != '}') {
                        snprintf(j.err, sizeof j.err, "expected ',' or '}' in headers");
                        ok = false;
                    }
                    if (ok)
                        j.p++;
                    hmore = c == ',';
                }
                break;
            case 3: ok = json_int(&j, &part); break;
            case 4:
                ok = json_int(&j, &ts);
                if (ok && ts < 0) {
                    snprintf(j.err, sizeof j.err, "negative timestamp");
                    ok = false;
                }
                break;
            case 5: { cli_buf ign = { 0 }; ok = json_string(&j, &ign); cli_buf_free(&ign); break; }
            case 6: ok = json_int(&j, &ignored); break;
            }
            if (!ok)
                break;
            char c = json_peek(&j);
            if (c != ',' && c != '}') {
                snprintf(j.err, sizeof j.err, "expected ',' or '}'");
                ok = false;
                break;
            }
            j.p++;
            more = c == ',';
        }
    ok = ok && json_end(&j);
    int rc = 0;
    if (!ok)
        rc = cli_error("produce %s: record %lld: bad JSON: %s", pr->topic, (long long)pr->lineno,
                       j.err[0] ? j.err : "syntax error");
    else if (part != ULOG_PARTITION_ANY) {
        char where[32];
        snprintf(where, sizeof where, "record %lld", (long long)pr->lineno);
        rc = check_partition(pr, part, where);
    }
    if (rc == 0)
        rc = check_key(pr, key_null);
    if (rc == 0) {
        pend *r = add_record(pr, key.p, key_null ? -1 : (int64_t)key.len, val.p,
                             val_null ? -1 : (int64_t)val.len);
        r->ts = ts;
        r->part = (int32_t)part;
        for (size_t i = 0; i < nh; i++)
            add_header(pr, hk.p ? hk.p + h[i].k : "", h[i].klen,
                       h[i].vlen > 0 ? hv.p + h[i].v : "", h[i].vlen);
        r->nhdr = pr->nh - r->hdr;
    }
    free(h);
    cli_buf_free(&key);
    cli_buf_free(&val);
    cli_buf_free(&hk);
    cli_buf_free(&hv);
    return rc;
}

/* One record of input (without its terminator). */
static int take(producer *pr, const char *p, size_t len)
{
    pr->lineno++;
    /* Make room first if this record could push the batch past the limit. */
    if (pr->n && pr->bytes + len + 40 + (size_t)pr->nhdr_args * 10 > pr->budget) {
        int rc = append(pr);
        if (rc)
            return rc;
    }
    if (pr->json)
        return json_record(pr, p, len);
    const char *sep = pr->sep ? memmem(p, len, pr->sep, pr->sep_len) : NULL;
    if (sep) {
        add_record(pr, p, sep - p, sep + pr->sep_len,
                   (int64_t)(len - (size_t)(sep - p) - pr->sep_len));
        return 0;
    }
    if (check_key(pr, true) != 0)
        return 1;
    add_record(pr, NULL, -1, p, (int64_t)len);
    return 0;
}

static bool input_ready(void)
{
    struct pollfd pfd = { .fd = 0, .events = POLLIN };
    return poll(&pfd, 1, 0) > 0;
}

static int run(producer *pr, char delim)
{
    cli_buf in = { 0 };
    size_t start = 0;
    int rc = 0;
    bool eof = false;
    while (rc == 0) {
        char *nl;
        while (rc == 0 && in.len > start &&
               (nl = memchr(in.p + start, delim, in.len - start)) != NULL) {
            rc = take(pr, in.p + start, (size_t)(nl - (in.p + start)));
            start = (size_t)(nl - in.p) + 1;
            if (rc == 0 && pr->n >= pr->max_batch)
                rc = append(pr);
        }
        if (rc || eof)
            break;
        if (start) {
            memmove(in.p, in.p + start, in.len - start);
            in.len -= start;
            start = 0;
        }
        /* Nothing more to read right now: do not make these records wait. */
        if (pr->n && !input_ready() && (rc = append(pr)) != 0)
            break;
        cli_buf_reserve(&in, 65536);
        ssize_t r = read(0, in.p + in.len, in.cap - in.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cli_error("produce %s: reading stdin: %s", pr->topic, strerror(errno));
            break;
        }
        if (r == 0) {
            eof = true;
            if (in.len > start)                 /* a last record without terminator */
                rc = take(pr, in.p + start, in.len - start);
            start = in.len;
        }
        in.len += (size_t)r;
    }
    /* Records read before a bad one are appended, as the usage says. */
    int arc = append(pr);
    cli_buf_free(&in);
    return rc ? rc : arc;
}

int cmd_produce(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "json", no_argument, NULL, OPT_JSON },
        { "flush", required_argument, NULL, OPT_FLUSH },
        { NULL, 0, NULL, 0 },
    };
    producer pr = { .part = ULOG_PARTITION_ANY, .max_batch = 100 };
    char delim = '\n';
    int64_t v, want_flush = -1;
    int c, rc = 0;
    pr.hdr_args = cli_xmalloc((size_t)argc * sizeof *pr.hdr_args);
    while (rc == 0 && (c = getopt_long(argc, argv, ":d:p:K:H:zb:v", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': cli_dir = optarg; break;
        case 'p':
            if (!cli_parse_i64(optarg, 0, INT32_MAX, &v))
                rc = cli_usage_error("produce", "-p: not a partition number: %s", optarg);
            pr.part = (int32_t)v;
            break;
        case 'K':
            if (!*optarg)
                rc = cli_usage_error("produce", "-K: the separator is empty");
            pr.sep = optarg;
            pr.sep_len = strlen(optarg);
            break;
        case 'H':
            if (!strchr(optarg, '='))
                rc = cli_usage_error("produce", "-H wants KEY=VALUE, not %s", optarg);
            pr.hdr_args[pr.nhdr_args++] = optarg;
            break;
        case 'z': delim = '\0'; break;
        case 'b':
            if (!cli_parse_i64(optarg, 1, 1 << 20, &v))
                rc = cli_usage_error("produce", "-b: not a batch size in 1..1048576: %s", optarg);
            pr.max_batch = (size_t)v;
            break;
        case 'v': cli_verbose = 1; break;
        case OPT_JSON: pr.json = true; break;
        case OPT_FLUSH:
            if ((want_flush = cli_subcommand(optarg, policy_names)) < 0)
                rc = cli_usage_error("produce", "--flush: want always, interval or none, not %s", optarg);
            break;
        case 'h': free(pr.hdr_args); return cli_help(USAGE);
        default: rc = cli_bad_option("produce", c, argv);
        }
    }
    if (rc == 0 && optind + 1 != argc)
        rc = cli_usage_error("produce", "want exactly one TOPIC");
    if (rc == 0 && pr.json && pr.sep)
        rc = cli_usage_error("produce", "-K and --json do not go together");
    if (rc == 0)
        rc = cli_open(&pr.log, false);
    if (rc) {
        free(pr.hdr_args);
        return rc;
    }
    pr.topic = argv[optind];
    ulog_topic_info info = ULOG_TOPIC_INFO_INIT;
    ulog_config *cfg = NULL;
    char policy[32] = "", maxmsg[32] = "";
    int err = ulog_topic_describe(pr.log, pr.topic, &info, &cfg);
    if (err) {
        rc = cli_fail(pr.log, err, "produce %s", pr.topic);
    } else {
        ulog_config_get(cfg, "flush.policy", policy, sizeof policy);
        ulog_config_get(cfg, "max.message.bytes", maxmsg, sizeof maxmsg);
        ulog_config_get(cfg, "cleanup.policy", pr.cleanup, sizeof pr.cleanup);
        ulog_config_free(cfg);
        pr.partitions = info.partitions;
        if (!cli_parse_i64(maxmsg, 64, INT32_MAX, &v))
            v = 1048588;
        pr.budget = (size_t)v - 61;            /* minus the batch header */
        if (want_flush >= 0 && cli_subcommand(policy, policy_names) < want_flush)
            rc = cli_error("produce %s: --flush %s asked, but the topic's flush.policy is %s: "
                           "appends would not be that durable", pr.topic,
                           policy_names[want_flush], policy);
        else if (pr.part != ULOG_PARTITION_ANY)
            rc = check_partition(&pr, pr.part, "-p");
    }
    if (rc == 0)
        rc = run(&pr, delim);
    if (cli_verbose)
        fprintf(stderr, "ulog: produce %s: %lld records (%lld bytes of keys and values) in %lld appends, "
                "flush.policy %s\n", pr.topic, (long long)pr.records, (long long)pr.total_bytes,
                (long long)pr.appends, policy);
    ulog_close(pr.log);
    cli_buf_free(&pr.arena);
    free(pr.recs);
    free(pr.hdrs);
    free(pr.out);
    free(pr.outh);
    free(pr.hdr_args);
    return rc;
}
