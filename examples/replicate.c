/*
 * replicate.c -- a follower log kept byte for byte in step with a leader,
 * over TCP on 127.0.0.1, while both sides are killed at random.
 *
 * The idea (Kafka's replication, with acks=all): a service appends to its
 * leader log with replication.sync=true, so that an append returns only once
 * a follower on another machine holds the records durably. The leader runs
 * the replication hook with ULOG_HOOK_ACKS; its ship callback sends each
 * batch, as stored, to the follower, which applies it with ulog_append_raw()
 * and answers. Nothing of the batch is rewritten on the way, so the
 * follower's log is the leader's, byte for byte.
 *
 * Four processes:
 *   producer  appends numbered records to the leader; an append that
 *             returns 0 is acknowledged (the follower has it), and the
 *             producer reports its number to this process through a pipe
 *   shipper   the leader's replication hook; ship() connects when it must,
 *             sends the batch and waits for the follower's answer
 *   follower  listens on 127.0.0.1, applies each batch it is sent with
 *             ulog_append_raw() (flush.policy always) and answers with the
 *             result
 *   this one  kills the shipper or the follower with SIGKILL at random
 *             moments, starts it again, and checks at the end
 *
 * Each batch on the wire is authenticated: the shipper signs it with
 * ulog_batch_mac() under a key the two sides share, and the follower
 * applies only batches whose MAC verifies (ulog_batch_mac_verify()), so it
 * takes batches from its leader and from no one else; the run also sends
 * one forged batch, which must be refused.
 *
 * Since a batch may be shipped again after a kill (the hook's delivery is
 * at least once), ulog_append_raw() ignoring a batch it already holds is
 * what keeps every record once in the follower.
 *
 * The checks, Jepsen-style counts that must all be 0: acknowledged records
 * missing from the follower (lost), records the follower holds twice
 * (duplicated), follower offsets that skip (gaps), follower records that
 * differ from the leader's at the same offset (inconsistent), and batches
 * that differ from the leader's byte for byte. The program exits 0 only if
 * they are all 0 and the follower caught up; 1 otherwise.
 *
 * It also measures, in the same run and without kills, appends acknowledged
 * by the follower against plain local appends with flush.policy=always.
 *
 * Usage: replicate DIR [KILLS]   (DIR: a new, empty directory; KILLS: how
 *                                 many times to kill a side, default 6)
 * Build against an installed ulog:  cc replicate.c $(pkg-config --cflags --libs ulog)
 */
#include <ulog.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC      "events"
#define PARTITIONS 3
#define DEADLINE_S 120
#define MEASURE_N  300          /* records per side of the throughput phase */

/* The key leader and follower share; in a real deployment it comes from a
 * secrets store, never from the log. */
static const uint8_t KEY[ULOG_MAC_KEY_BYTES] = "replicate.c example key, 32 b!";

static char g_leader[4096], g_follower[4096], g_portfile[4200];
/* The write end of the pipe whose end of file stops the producer: no other
 * child may hold it. */
static int g_stop_w = -1;

/* ------------------------------------------------------------ helpers */

static int fail(ulog *log, int err, const char *who, const char *what)
{
    char detail[512];
    ulog_errmsg(log, detail, sizeof detail);
    fprintf(stderr, "replicate: %s: %s failed: %s%s%s\n", who, what, ulog_errname(err),
            detail[0] ? ": " : "", detail);
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Writes or reads exactly len bytes; -1 on an error or end of file. A read
 * gives up after timeout_ms without data (-1: never). */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    while (len > 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll(&pfd, 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Big-endian integers on the wire. */
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------ the wire
 *
 * A frame: u32 length of the batch, u32 partition, u32 and u32 base offset
 * (high, low), the MAC, the batch. The answer: u32, the ulog_append_raw()
 * result (0 or a negative code). */
#define FRAME_HEAD (16 + ULOG_MAC_BYTES)

static void frame_head(uint8_t *h, const ulog_batch *b, const uint8_t *mac)
{
    put_u32(h, (uint32_t)b->len);
    put_u32(h + 4, (uint32_t)b->partition);
    put_u32(h + 8, (uint32_t)((uint64_t)b->base_offset >> 32));
    put_u32(h + 12, (uint32_t)b->base_offset);
    memcpy(h + 16, mac, ULOG_MAC_BYTES);
}

/* ------------------------------------------------------------ follower */

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0) {
        perror("replicate: follower: listen");
        exit(1);
    }
    return fd;
}

/* Serves one connection until it closes. */
static void serve(ulog *log, int c)
{
    static uint8_t batch[1 << 20];
    uint8_t head[FRAME_HEAD], ans[4];
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (read_all(c, head, sizeof head, -1) == 0) {
        uint32_t len = get_u32(head);
        int32_t part = (int32_t)get_u32(head + 4);
        int64_t base = (int64_t)((uint64_t)get_u32(head + 8) << 32 | get_u32(head + 12));
        if (len > sizeof batch || read_all(c, batch, len, 10000) != 0)
            return;
        /* Only batches signed by the leader, for this very place. */
        int rc = ulog_batch_mac_verify(KEY, TOPIC, part, base, batch, len, head + 16);
        if (rc == 0)
            rc = ulog_append_raw(log, TOPIC, part, base, batch, len);
        put_u32(ans, (uint32_t)rc);
        if (write_all(c, ans, sizeof ans) != 0)
            return;
    }
}

static void follower_main(void)
{
    ulog *log;
    int err = ulog_open(g_follower, NULL, &log);
    if (err)
        exit(fail(NULL, err, "follower", "ulog_open"));
    /* The port of the first run, kept in a file, so the shipper finds a
     * restarted follower where it was. */
    int port = 0;
    FILE *f = fopen(g_portfile, "r");
    if (f) {
        if (fscanf(f, "%d", &port) != 1)
            port = 0;
        fclose(f);
    }
    int s = listen_on(port);
    if (!port) {
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        getsockname(s, (struct sockaddr *)&a, &al);
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp", g_portfile);
        f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
            rename(tmp, g_portfile) != 0) {
            perror("replicate: follower: port file");
            exit(1);
        }
    }
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            perror("replicate: follower: accept");
            exit(1);
        }
        serve(log, c);
        close(c);
    }
}

/* ------------------------------------------------------------ shipper */

typedef struct link {
    int fd;                     /* -1: not connected */
} link_t;

static int connect_follower(void)
{
    FILE *f = fopen(g_portfile, "r");
    int port = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;
    if (fd < 0 || !port || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The hook's callback: 0 once the follower holds the batch. */
static int ship(const ulog_batch *b, void *arg)
{
    link_t *l = arg;
    uint8_t head[FRAME_HEAD], mac[ULOG_MAC_BYTES], ans[4];
    if (l->fd < 0 && (l->fd = connect_follower()) < 0)
        return -1;
    if (ulog_batch_mac(KEY, TOPIC, b->partition, b->base_offset, b->data, b->len, mac) != 0)
        return -1;
    frame_head(head, b, mac);
    if (write_all(l->fd, head, sizeof head) == 0 && write_all(l->fd, b->data, b->len) == 0 &&
        read_all(l->fd, ans, sizeof ans, 10000) == 0) {
        int rc = (int32_t)get_u32(ans);
        if (rc != 0)
            fprintf(stderr, "replicate: shipper: the follower refused %d@%lld: %s\n",
                    (int)b->partition, (long long)b->base_offset, ulog_errname(rc));
        return rc == 0 ? 0 : -1;
    }
    close(l->fd);           /* the follower went away: reconnect next time */
    l->fd = -1;
    return -1;
}

static void shipper_main(void)
{
    ulog *log;
    ulog_hook *hook;
    link_t l = { -1 };
    int err = ulog_open(g_leader, NULL, &log);
    if (!err)
        err = ulog_hook_start(log, TOPIC, "follower", ULOG_HOOK_ACKS, ship, &l, &hook);
    if (err)
        exit(fail(log, err, "shipper", "starting the hook"));
    for (;;)
        pause();            /* until killed */
}

/* ------------------------------------------------------------ producer */

/* Appends records numbered from `first` until `stop` goes readable (this
 * process closes it) or `count` are done; writes each acknowledged number
 * to `acks`. */
static void producer_main(int first, int count, int acks, int stop)
{
    ulog *log;
    int err = ulog_open(g_leader, NULL, &log);
    if (err)
        exit(fail(NULL, err, "producer", "ulog_open"));
    for (int n = first; n < first + count; n++) {
        struct pollfd pfd = { .fd = stop, .events = POLLIN };
        if (stop >= 0 && poll(&pfd, 1, 0) > 0)
            break;
        char key[16], val[32];
        snprintf(key, sizeof key, "user-%d", n % 17);
        int vl = snprintf(val, sizeof val, "event %d", n);
        ulog_record r = { .key = key, .key_len = strlen(key), .value = val,
                          .value_len = (size_t)vl, .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = ULOG_PARTITION_ANY };
        err = ulog_append(log, TOPIC, &r, 1);
        if (err == 0) {
            if (write(acks, &n, sizeof n) != (ssize_t)sizeof n)
                exit(1);
        } else if (err != ULOG_ETIMEDOUT) {
            /* ETIMEDOUT: stored but not acknowledged (the follower was
             * down); the record still reaches it later. */
            exit(fail(log, err, "producer", "ulog_append"));
        }
    }
    ulog_close(log);
    exit(0);
}

/* ------------------------------------------------------------ parent */

static pid_t spawn(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (g_stop_w >= 0)
            close(g_stop_w);
        fn();
        exit(0);
    }
    if (pid < 0) {
        perror("replicate: fork");
        exit(1);
    }
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static int64_t high_of(ulog *log, int32_t p)
{
    int64_t lo, hi;
    return ulog_watermarks(log, TOPIC, p, &lo, &hi) == 0 ? hi : -1;
}

/* Waits until the follower holds all the leader holds. */
static int caught_up(ulog *lead, ulog *foll, double deadline)
{
    for (;;) {
        int32_t p = 0;
        while (p < PARTITIONS && high_of(foll, p) >= high_of(lead, p))
            p++;
        if (p == PARTITIONS)
            return 0;
        if (now_ms() > deadline)
            return -1;
        sleep_ms(10);
    }
}

/* The counts the run must end with all 0. */
typedef struct counts {
    long lost, duplicated, gaps, inconsistent, batches_differ;
    long batches, records, acked;
} counts;

/* Compares the logs batch by batch and record by record. */
static int check(ulog *lead, ulog *foll, const unsigned char *acked, int nums, counts *c)
{
    ulog_config *cfg = ulog_config_new();
    ulog_sub *a, *b;
    int err = ulog_config_set(cfg, "auto.offset.reset", "earliest", NULL, 0);
    if (!err)
        err = ulog_subscribe(lead, TOPIC, NULL, cfg, &a);
    if (!err && (err = ulog_subscribe(foll, TOPIC, NULL, cfg, &b)) != 0)
        ulog_sub_close(a);
    ulog_config_free(cfg);
    if (err)
        return fail(lead, err, "check", "subscribing");
    unsigned char *seen = calloc((size_t)nums, 1);
    int64_t next[PARTITIONS] = { 0 };
    ulog_msg m, lm;
    /* Every record of the follower: once, no gaps, as in the leader. */
    while ((err = ulog_poll(b, 0, &m)) == 0) {
        int n;
        if (sscanf((const char *)m.value, "event %d", &n) != 1 || n < 0 || n >= nums) {
            c->inconsistent++;
            continue;
        }
        if (seen[n]++)
            c->duplicated++;
        if (m.offset != next[m.partition])
            c->gaps++;
        next[m.partition] = m.offset + 1;
        c->records++;
        if (ulog_seek(a, m.partition, m.offset) != 0 || ulog_poll(a, 0, &lm) != 0 ||
            lm.offset != m.offset || lm.partition != m.partition ||
            lm.value_len != m.value_len || memcmp(lm.value, m.value, m.value_len) != 0 ||
            lm.timestamp != m.timestamp)
            c->inconsistent++;
    }
    for (int n = 0; n < nums; n++)
        if (acked[n]) {
            c->acked++;
            if (!seen[n])
                c->lost++;
        }
    free(seen);
    /* Byte for byte, batch by batch. */
    ulog_batch ba = ULOG_BATCH_INIT, bb = ULOG_BATCH_INIT;
    for (int32_t p = 0; p < PARTITIONS; p++) {
        ulog_seek(a, p, 0);
        ulog_seek(b, p, 0);
    }
    while (ulog_poll_batch(b, 0, &bb) == 0) {
        ulog_seek(a, bb.partition, bb.base_offset);
        c->batches++;
        while (ulog_poll_batch(a, 0, &ba) == 0 && ba.partition != bb.partition)
            ;
        if (ba.partition != bb.partition || ba.base_offset != bb.base_offset ||
            ba.len != bb.len || memcmp(ba.data, bb.data, ba.len) != 0)
            c->batches_differ++;
    }
    ulog_sub_close(a);
    ulog_sub_close(b);
    return 0;
}

/* The forged batch: a valid batch, signed with another key. */
static int forged_refused(ulog *lead)
{
    ulog_config *cfg = ulog_config_new();
    ulog_sub *s;
    ulog_batch b = ULOG_BATCH_INIT;
    ulog_config_set(cfg, "auto.offset.reset", "earliest", NULL, 0);
    int err = ulog_subscribe(lead, TOPIC, NULL, cfg, &s);
    ulog_config_free(cfg);
    if (err || ulog_poll_batch(s, 0, &b) != 0)
        return 0;
    uint8_t other[ULOG_MAC_BYTES], wrong_key[ULOG_MAC_KEY_BYTES] = { 1 };
    uint8_t head[FRAME_HEAD], ans[4];
    ulog_batch_mac(wrong_key, TOPIC, b.partition, b.base_offset, b.data, b.len, other);
    frame_head(head, &b, other);
    int fd = connect_follower(), rc = 1;
    if (fd >= 0 && write_all(fd, head, sizeof head) == 0 && write_all(fd, b.data, b.len) == 0 &&
        read_all(fd, ans, sizeof ans, 10000) == 0)
        rc = (int32_t)get_u32(ans);
    if (fd >= 0)
        close(fd);
    ulog_sub_close(s);
    printf("a batch signed with another key: %s\n", rc == 1 ? "no answer" : ulog_errname(rc));
    return rc == ULOG_EAUTH;
}

static int make_topic(const char *root, ulog_config *cfg)
{
    ulog *log;
    int err = ulog_open(root, NULL, &log);
    if (!err)
        err = ulog_topic_create(log, TOPIC, PARTITIONS, cfg);
    if (err)
        return fail(log, err, root, "creating the topic");
    ulog_close(log);
    return 0;
}

/* Appends n records one at a time to a new topic of the leader root with
 * flush.policy always and no replication: the local rate to compare with. */
static double local_rate(int n)
{
    ulog *log;
    ulog_config *cfg = ulog_config_new();
    ulog_config_set(cfg, "flush.policy", "always", NULL, 0);
    int err = ulog_open(g_leader, NULL, &log);
    if (!err)
        err = ulog_topic_create(log, "local", PARTITIONS, cfg);
    ulog_config_free(cfg);
    if (err)
        return -1;
    double t0 = now_ms();
    for (int i = 0; i < n && !err; i++) {
        ulog_record r = { .value = "event", .value_len = 5, .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = ULOG_PARTITION_ANY };
        err = ulog_append(log, "local", &r, 1);
    }
    double ms = now_ms() - t0;
    ulog_close(log);
    return err ? -1 : n / (ms / 1000);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: replicate DIR [KILLS]\n");
        return 2;
    }
    int kills = argc == 3 ? atoi(argv[2]) : 6;
    double deadline = now_ms() + DEADLINE_S * 1000.0;
    snprintf(g_leader, sizeof g_leader, "%s/leader", argv[1]);
    snprintf(g_follower, sizeof g_follower, "%s/follower", argv[1]);
    snprintf(g_portfile, sizeof g_portfile, "%s/follower.port", argv[1]);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    /* Both sides hold the topic with the same partitions; the leader's
     * appends wait for the follower (a second at most, then they report
     * ULOG_ETIMEDOUT and the producer does not count them). */
    ulog_config *lc = ulog_config_new(), *fc = ulog_config_new();
    ulog_config_set(lc, "flush.policy", "always", NULL, 0);
    ulog_config_set(lc, "replication.sync", "true", NULL, 0);
    ulog_config_set(lc, "replication.timeout.ms", "1000", NULL, 0);
    ulog_config_set(fc, "flush.policy", "always", NULL, 0);
    if (make_topic(g_leader, lc) || make_topic(g_follower, fc))
        return 1;
    ulog_config_free(lc);
    ulog_config_free(fc);

    pid_t follower = spawn(follower_main);
    while (access(g_portfile, R_OK) != 0 && now_ms() < deadline)
        sleep_ms(5);
    pid_t shipper = spawn(shipper_main);

    /* Throughput first, without kills: acknowledged appends against plain
     * local ones, in the same run. */
    int acks[2], stop[2];
    if (pipe(acks) != 0 || pipe(stop) != 0)
        return 1;
    double t0 = now_ms();
    fflush(NULL);
    pid_t producer = fork();
    if (producer == 0) {
        close(acks[0]);
        close(stop[1]);
        producer_main(0, MEASURE_N, acks[1], -1);
    }
    int status;
    waitpid(producer, &status, 0);
    double synced_rate = MEASURE_N / ((now_ms() - t0) / 1000);
    double local = local_rate(MEASURE_N);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    printf("appends acknowledged by the follower: %.0f records/s; "
           "plain local appends (flush.policy always): %.0f records/s (%.2fx)\n",
           synced_rate, local, local > 0 ? synced_rate / local : 0);

    /* Then the kills, while the producer appends. */
    int nums = MEASURE_N + 1000000;
    fflush(NULL);
    producer = fork();
    if (producer == 0) {
        close(acks[0]);
        close(stop[1]);
        producer_main(MEASURE_N, 1000000, acks[1], stop[0]);
    }
    close(acks[1]);
    close(stop[0]);
    g_stop_w = stop[1];
    int killed[2] = { 0, 0 };
    for (int k = 0; k < kills; k++) {
        sleep_ms(50 + (long)(rand_r(&seed) % 250));
        int side = rand_r(&seed) % 2;
        reap(side ? shipper : follower);
        killed[side]++;
        sleep_ms((long)(rand_r(&seed) % 200));
        if (side)
            shipper = spawn(shipper_main);
        else
            follower = spawn(follower_main);
    }
    close(stop[1]);             /* the producer stops */
    g_stop_w = -1;
    waitpid(producer, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;

    /* Which numbers were acknowledged. */
    unsigned char *acked = calloc((size_t)nums, 1);
    int n;
    while (read(acks[0], &n, sizeof n) == (ssize_t)sizeof n)
        if (n >= 0 && n < nums)
            acked[n] = 1;

    ulog *lead, *foll;
    int err = ulog_open(g_leader, NULL, &lead);
    if (!err)
        err = ulog_open(g_follower, NULL, &foll);
    if (err)
        return fail(NULL, err, "check", "ulog_open");
    int behind = caught_up(lead, foll, deadline);
    reap(shipper);              /* the follower serves one connection at a time */
    int forged = forged_refused(lead);
    reap(follower);
    counts c = { 0 };
    if (check(lead, foll, acked, nums, &c))
        return 1;
    free(acked);
    ulog_close(lead);
    ulog_close(foll);

    printf("killed the follower %d times and the shipper %d times while appending\n",
           killed[0], killed[1]);
    printf("follower: %ld records in %ld batches; %ld appends acknowledged\n",
           c.records, c.batches, c.acked);
    printf("lost %ld, duplicated %ld, gaps %ld, inconsistent %ld, batches not byte-identical %ld\n",
           c.lost, c.duplicated, c.gaps, c.inconsistent, c.batches_differ);
    if (behind)
        fprintf(stderr, "replicate: the follower did not catch up within %d s\n", DEADLINE_S);
    if (!forged)
        fprintf(stderr, "replicate: the follower took a batch signed with another key\n");
    int ok = !behind && forged && c.records > 0 && c.acked > 0 && !c.lost && !c.duplicated &&
             !c.gaps && !c.inconsistent && !c.batches_differ;
    printf("%s\n", ok ? "done: the follower holds every acknowledged record once, byte for byte"
                      : "FAILED");
    return ok ? 0 : 1;
}
