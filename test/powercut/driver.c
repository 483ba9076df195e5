/*
 * driver.c -- power-cut simulation (issue 4, item 2).
 *
 * Each run:
 *   1. starts a workload process (this program, --worker) under the shim
 *      (shim.c, LD_PRELOAD) on a fresh root: it opens the log, creates
 *      topic "a" (2 partitions, flush.policy always, small segments, some
 *      runs preallocated, half of them encrypted: encryption.key.id with
 *      A_KEY, which every handle is given) and topic "b" (interval), then
 *      two threads append
 *      to "a" (sharing fdatasyncs: ulog's group commit), one to "b", and
 *      one consumer of "a" in group "g" commits its positions (ulog_commit,
 *      ulog_commit_async, ulog_commit_offsets). Every acknowledgement (an
 *      append or a commit that returned 0) goes to the driver through a
 *      pipe, after the call returned;
 *   2. SIGKILLs it at a random moment (one run in eight: anywhere from its
 *      start, often while it creates the log; otherwise 1..max ms into the
 *      appends);
 *   3. replays the shim's journal (model.c), checks the model against the
 *      real tree the workload left, and builds crash images from it, kinds
 *      1-4 (model.h), in fresh directories. Directory entries never fsynced
 *      are not in an image. The `head` files (page cache only) are left out,
 *      kept as the model has them (never synced: empty), replaced by
 *      garbage, or replaced by the real head the killed process left -- a
 *      head that claims more than the durable bytes, with the workload's
 *      boot id, which the shim faked: the boot id check must send every one
 *      of them to recovery. LMDB's lock.mdb gets the same treatment;
 *   4. verifies each image in a forked process (not under the shim): reads
 *      the recovery checkpoints and group offsets from the image's LMDB
 *      before ulog touches it (none may be ahead of the durable bytes: the
 *      valid batches of the synced-only image), then ulog_open, subscribe
 *      and poll everything -- no error may come back; every acknowledged
 *      record of "a" is there, where its append said, once; records are
 *      dense, intact, never duplicated; no durable record is cut; the group
 *      subscription starts where the last acknowledged commit (or a later
 *      one) left it; every head was rebuilt for this boot; a second open
 *      agrees with the first.
 *
 * Usage: driver --shim PATH [--images N] [--per-run K] [--seed S]
 *               [--scratch DIR] [--max-delay-ms MS] [--keep N] [-v]
 * Exit status 0 only when every image recovered with nothing lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <ftw.h>

#include "internal.h"
#include "model.h"

#define PARTS_A    2
#define PARTS_B    1
#define MAX_BATCH  8
#define MAX_PAD    200
#define GROUP      "g"

/* ---------------------------------------------------------------- utilities */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
    *s = mix64(*s);
    return *s;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "powercut: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* A record's value: its id, its partition, padding derived from the id. */
static size_t make_value(uint8_t *buf, uint64_t id, int32_t part)
{
    size_t pad = (size_t)(mix64(id) % MAX_PAD);
    memcpy(buf, &id, 8);
    memcpy(buf + 8, &part, 4);
    for (size_t i = 0; i < pad; i++)
        buf[12 + i] = (uint8_t)mix64(id * 7919 + i);
    return 12 + pad;
}

static bool value_ok(const void *v, size_t len, uint64_t *id, int32_t *part)
{
    uint8_t want[12 + MAX_PAD];
    if (!v || len < 12)
        return false;
    memcpy(id, v, 8);
    memcpy(part, (const uint8_t *)v + 8, 4);
    size_t n = make_value(want, *id, *part);
    return n == len && memcmp(want, v, len) == 0;
}

/* ---------------------------------------------------------------- messages */

#define MSG_MAGIC 0x47534d50u   /* "PMSG" */
enum { M_OPENED = 1, M_TOPIC_A, M_TOPIC_B, M_READY, M_ACK_A, M_ACK_B, M_COMMIT, M_ERR };

typedef struct msg_hdr {
    uint32_t magic;
    uint16_t type;
    uint16_t n;          /* acks that follow */
} msg_hdr;

typedef struct ack {
    int32_t  part;
    int32_t  zero;
    int64_t  off;
    uint64_t id;
} ack;

typedef struct commit_msg {
    int64_t off[PARTS_A];
    int32_t how;         /* 0 ulog_commit, 1 async, 2 ulog_commit_offsets */
    int32_t zero;
} commit_msg;

typedef struct err_msg {
    int32_t rc;
    char    what[252];
} err_msg;

_Static_assert(sizeof(msg_hdr) + MAX_BATCH * sizeof(ack) <= PIPE_BUF, "atomic pipe writes");
_Static_assert(sizeof(msg_hdr) + sizeof(err_msg) <= PIPE_BUF, "atomic pipe writes");

/* ---------------------------------------------------------------- worker */

static int      w_fd;
static ulog    *w_log;
static uint64_t w_seed;

static void w_send(uint16_t type, const void *body, size_t len, uint16_t n)
{
    uint8_t buf[PIPE_BUF];
    msg_hdr h = { MSG_MAGIC, type, n };
    memcpy(buf, &h, sizeof h);
    if (len)
        memcpy(buf + sizeof h, body, len);
    size_t total = sizeof h + len, done = 0;
    while (done < total) {
        ssize_t w = write(w_fd, buf + done, total - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(5);
        done += (size_t)w;
    }
}

static void w_fail(const char *what, int rc)
{
    err_msg e = { .rc = rc };
    char detail[200] = "";
    if (w_log)
        ulog_errmsg(w_log, detail, sizeof detail);
    snprintf(e.what, sizeof e.what, "%s: %s (%s)", what, ulog_errname(rc), detail);
    w_send(M_ERR, &e, sizeof e, 0);
    _exit(6);
}

/* Topic "a"'s key in the runs that encrypt it. */
static const uint8_t A_KEY[ULOG_KEY_BYTES] = "power cut test key of 32 bytes.";

static ulog_config *w_cfg(const char *name, ...)
{
    ulog_config *c = ulog_config_new();
    if (!c)
        w_fail("config", ULOG_ENOMEM);
    va_list ap;
    va_start(ap, name);
    for (const char *n = name; n; n = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        char err[128];
        int rc = ulog_config_set(c, n, v, err, sizeof err);
        if (rc)
            w_fail(err, rc);
    }
    va_end(ap);
    return c;
}

typedef struct appender {
    const char *topic;
    int         parts;
    uint64_t    tag;        /* high bits of the ids */
    uint16_t    ack_type;
    int         nap_us;
} appender;

static void *w_append(void *arg)
{
    appender *a = arg;
    uint64_t rng = w_seed ^ a->tag, counter = 0;
    static __thread uint8_t vals[MAX_BATCH][12 + MAX_PAD];
    char keys[MAX_BATCH][24];
    for (;;) {
        ulog_record r[MAX_BATCH];
        size_t n = 1 + rnd(&rng) % MAX_BATCH;
        for (size_t i = 0; i < n; i++) {
            uint64_t id = a->tag << 40 | counter++;
            int32_t part = (int32_t)(rnd(&rng) % (uint64_t)a->parts);
            r[i] = (ulog_record){ .value = vals[i], .value_len = make_value(vals[i], id, part),
                                  .timestamp = ULOG_TIMESTAMP_NOW, .partition = part };
            if (rng & 8) {
                r[i].key = keys[i];
                r[i].key_len = (size_t)snprintf(keys[i], sizeof keys[i], "%llu",
                                                (unsigned long long)id);
            }
        }
        int rc = ulog_append(w_log, a->topic, r, n);
        if (rc)
            w_fail("ulog_append", rc);
        ack acks[MAX_BATCH];
        for (size_t i = 0; i < n; i++) {
            uint64_t id;
            memcpy(&id, vals[i], 8);
            acks[i] = (ack){ r[i].partition, 0, r[i].offset, id };
        }
        w_send(a->ack_type, acks, n * sizeof acks[0], (uint16_t)n);
        if (a->nap_us)
            usleep((useconds_t)a->nap_us);
    }
    return NULL;
}

static void w_commit_done(ulog_sub *sub, int err, void *arg)
{
    (void)sub;
    commit_msg *c = arg;
    if (err)
        w_fail("ulog_commit_async", err);
    w_send(M_COMMIT, c, sizeof *c, 0);
    free(c);
}

static void *w_consume(void *arg)
{
    (void)arg;
    ulog_config *c = w_cfg("auto.offset.reset", "earliest", NULL);
    ulog_sub *sub;
    int rc = ulog_subscribe(w_log, "a", GROUP, c, &sub);
    ulog_config_free(c);
    if (rc)
        w_fail("ulog_subscribe", rc);
    uint64_t rng = w_seed ^ 0xc0ffee;
    int polled = 0, every = 1 + (int)(rnd(&rng) % 16);
    for (;;) {
        ulog_msg m;
        rc = ulog_poll(sub, 5, &m);
        if (rc == 0)
            polled++;
        else if (rc != ULOG_ETIMEDOUT)
            w_fail("ulog_poll", rc);
        if (polled < every && !(rc == ULOG_ETIMEDOUT && polled > 0))
            continue;
        commit_msg cm = { .how = (int32_t)(rnd(&rng) % 3) };
        for (int32_t p = 0; p < PARTS_A; p++)
            if ((rc = ulog_position(sub, p, &cm.off[p])) != 0)
                w_fail("ulog_position", rc);
        if (cm.how == 0) {
            if ((rc = ulog_commit(sub)) != 0)
                w_fail("ulog_commit", rc);
            w_send(M_COMMIT, &cm, sizeof cm, 0);
        } else if (cm.how == 1) {
            commit_msg *heap = malloc(sizeof *heap);
            if (!heap)
                w_fail("malloc", ULOG_ENOMEM);
            *heap = cm;
            if ((rc = ulog_commit_async(sub, w_commit_done, heap)) != 0)
                w_fail("ulog_commit_async", rc);
        } else {
            ulog_offset o[PARTS_A];
            for (int32_t p = 0; p < PARTS_A; p++)
                o[p] = (ulog_offset){ p, cm.off[p] };
            if ((rc = ulog_commit_offsets(sub, o, PARTS_A)) != 0)
                w_fail("ulog_commit_offsets", rc);
            w_send(M_COMMIT, &cm, sizeof cm, 0);
        }
        polled = 0;
        every = 1 + (int)(rnd(&rng) % 16);
    }
    return NULL;
}

static int worker_main(const char *root, uint64_t seed, int fd)
{
    w_fd = fd;
    w_seed = seed;
    uint64_t rng = seed;
    char flush_ms[16];
    snprintf(flush_ms, sizeof flush_ms, "%d", 2 + (int)(rnd(&rng) % 19));
    ulog_config *lc = w_cfg("index.flush.ms", flush_ms, NULL);
    int rc = ulog_open(root, lc, &w_log);
    ulog_config_free(lc);
    if (!rc)
        rc = ulog_key_add(w_log, "a", 1, A_KEY, sizeof A_KEY);
    if (rc)
        w_fail("ulog_open", rc);
    w_send(M_OPENED, NULL, 0, 0);

    static const char *const seg[] = { "4096", "8192", "16384" };
    const char *segbytes = seg[rnd(&rng) % 3];
    const char *prealloc = rnd(&rng) % 4 == 0 ? "true" : "false";
    const char *key_id = rnd(&rng) % 2 == 0 ? "1" : "-1";
    ulog_config *tc = w_cfg("flush.policy", "always", "segment.bytes", segbytes,
                            "preallocate", prealloc, "index.interval.bytes", "512",
                            "encryption.key.id", key_id, NULL);
    if ((rc = ulog_topic_create(w_log, "a", PARTS_A, tc)) != 0)
        w_fail("ulog_topic_create a", rc);
    ulog_config_free(tc);
    w_send(M_TOPIC_A, NULL, 0, key_id[0] == '1');
    tc = w_cfg("flush.policy", "interval", "flush.ms", "5", "segment.bytes", "8192", NULL);
    if ((rc = ulog_topic_create(w_log, "b", PARTS_B, tc)) != 0)
        w_fail("ulog_topic_create b", rc);
    ulog_config_free(tc);
    w_send(M_TOPIC_B, NULL, 0, 0);

    static appender apps[] = {
        { "a", PARTS_A, 1, M_ACK_A, 0 },
        { "a", PARTS_A, 2, M_ACK_A, 0 },
        { "b", PARTS_B, 3, M_ACK_B, 300 },
    };
    pthread_t t;
    for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++)
        if (pthread_create(&t, NULL, w_append, &apps[i]) != 0)
            w_fail("pthread_create", ULOG_ENOMEM);
    if (pthread_create(&t, NULL, w_consume, NULL) != 0)
        w_fail("pthread_create", ULOG_ENOMEM);
    w_send(M_READY, NULL, 0, 0);
    for (;;)
        pause();
    return 0;
}

/* ---------------------------------------------------------------- run state */

typedef struct acks {
    ack   *v;
    size_t n, cap;
} acks;

static void acks_add(acks *a, const ack *x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4096;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            die("out of memory");
    }
    a->v[a->n++] = *x;
}

typedef struct boundary {
    int64_t segment, pos, offset;
} boundary;

/* The durable chain of one partition: valid batches of the synced-only image. */
typedef struct durable {
    int64_t   end;          /* next offset after the last durable valid batch */
    boundary *b;
    size_t    nb, cap;
} durable;

typedef struct run {
    bool     opened, topic_a, topic_b, ready;
    bool     encrypted_a;
    acks     a, b;
    int64_t  commit[PARTS_A];   /* last acknowledged commit, -1: none */
    int64_t  commits;
    bool     worker_error;
    char     worker_msg[300];
    durable  dur_a[PARTS_A], dur_b[PARTS_B];
    char     boot_id[40];       /* this boot's, as ulog reads it */
} run;

/* Parses whole messages from buf[*pos..len). */
static void parse_msgs(run *r, const uint8_t *buf, size_t len, size_t *pos)
{
    while (len - *pos >= sizeof(msg_hdr)) {
        msg_hdr h;
        memcpy(&h, buf + *pos, sizeof h);
        size_t body = 0;
        if (h.magic != MSG_MAGIC) {
            r->worker_error = true;
            snprintf(r->worker_msg, sizeof r->worker_msg, "bad message from the worker");
            *pos = len;
            return;
        }
        switch (h.type) {
        case M_ACK_A: case M_ACK_B: body = h.n * sizeof(ack); break;
        case M_COMMIT: body = sizeof(commit_msg); break;
        case M_ERR: body = sizeof(err_msg); break;
        default: body = 0; break;
        }
        if (len - *pos < sizeof h + body)
            return;
        const uint8_t *p = buf + *pos + sizeof h;
        switch (h.type) {
        case M_OPENED: r->opened = true; break;
        case M_TOPIC_A: r->topic_a = true; r->encrypted_a = h.n == 1; break;
        case M_TOPIC_B: r->topic_b = true; break;
        case M_READY: r->ready = true; break;
        case M_ACK_A:
        case M_ACK_B:
            for (uint16_t i = 0; i < h.n; i++) {
                ack a;
                memcpy(&a, p + i * sizeof a, sizeof a);
                acks_add(h.type == M_ACK_A ? &r->a : &r->b, &a);
            }
            break;
        case M_COMMIT: {
            commit_msg c;
            memcpy(&c, p, sizeof c);
            for (int i = 0; i < PARTS_A; i++)
                r->commit[i] = c.off[i];
            r->commits++;
            break;
        }
        case M_ERR: {
            err_msg e;
            memcpy(&e, p, sizeof e);
            e.what[sizeof e.what - 1] = 0;
            r->worker_error = true;
            snprintf(r->worker_msg, sizeof r->worker_msg, "worker: %s", e.what);
            break;
        }
        default:
            r->worker_error = true;
            snprintf(r->worker_msg, sizeof r->worker_msg, "unknown message %u", h.type);
            break;
        }
        *pos += sizeof h + body;
    }
}

/* ---------------------------------------------------------------- durable scan */

static bool read_whole(const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    uint8_t *b = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (b && got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *out = b;
    *len = got;
    return b != NULL;
}

static void add_boundary(durable *d, int64_t seg, int64_t pos, int64_t off)
{
    if (d->nb == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->b = realloc(d->b, d->cap * sizeof *d->b);
        if (!d->b)
            die("out of memory");
    }
    d->b[d->nb++] = (boundary){ seg, pos, off };
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The valid batches of a partition directory, from its first segment, by
 * recovery's rules (recover.c): verified frames, dense offsets, a zero
 * length ends a segment that is not the last, and the next segment must
 * start where the previous one ended. */
static void scan_durable(const char *dir, durable *d)
{
    d->end = 0;
    d->nb = 0;
    int64_t bases[4096];
    size_t n = 0;
    DIR *dd = opendir(dir);
    if (!dd)
        return;
    struct dirent *de;
    while ((de = readdir(dd)) != NULL && n < 4096) {
        const char *s = de->d_name;
        if (strlen(s) != 24 || strcmp(s + 20, ".log") != 0)
            continue;
        bases[n++] = strtoll(s, NULL, 10);
    }
    closedir(dd);
    qsort(bases, n, sizeof bases[0], cmp_i64);
    if (n == 0)
        return;
    int64_t next = bases[0];
    d->end = next;
    for (size_t i = 0; i < n; i++) {
        if (bases[i] != next)
            break;
        char p[4096];
        snprintf(p, sizeof p, "%s/%020lld.log", dir, (long long)bases[i]);
        uint8_t *a;
        size_t size;
        if (!read_whole(p, &a, &size))
            break;
        add_boundary(d, bases[i], 0, next);
        size_t pos = 0;
        bool whole = true, last = i + 1 == n;
        static const uint8_t zeros[ULOG__BATCH_LOG_OVERHEAD];
        while (pos < size) {
            size_t frame, avail = size - pos;
            ulog__batch_hdr h;
            if (!last && avail >= sizeof zeros && memcmp(a + pos, zeros, sizeof zeros) == 0)
                break;
            if (ulog__batch_frame_size(a + pos, avail, &frame) != 0 || frame > avail ||
                ulog__batch_verify(a + pos, frame, &h) != 0 || h.base_offset != next) {
                whole = false;
                break;
            }
            next = h.base_offset + h.last_offset_delta + 1;
            pos += frame;
            add_boundary(d, bases[i], (int64_t)pos, next);
        }
        free(a);
        d->end = next;
        if (!whole)
            break;
    }
}

static bool is_boundary(const durable *d, int64_t seg, int64_t pos, int64_t off)
{
    for (size_t i = 0; i < d->nb; i++)
        if (d->b[i].segment == seg && d->b[i].pos == pos && d->b[i].offset == off)
            return true;
    return false;
}

/* ---------------------------------------------------------------- verifier */

typedef struct vres {
    int32_t opened;            /* ulog_open and every topic opened */
    int32_t failed;            /* any check failed */
    int32_t crashed;           /* set by the parent */
    int32_t corrupt;           /* ULOG_ECORRUPT from any call */
    int64_t lost_acked;        /* acknowledged records of "a" missing or wrong */
    int64_t cp_ahead;          /* checkpoints past the durable bytes */
    int64_t cp_not_boundary;   /* checkpoints at no durable batch boundary */
    int64_t group_ahead;       /* committed group offsets past the durable bytes */
    int64_t commits_lost;      /* acknowledged commits not in the image */
    int64_t durable_cut;       /* durable records recovery removed */
    int64_t stale_heads;       /* heads not rebuilt for this boot */
    int64_t records;           /* records read */
    char    msg[400];
} vres;

static void vfail(vres *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vfail(vres *v, const char *fmt, ...)
{
    if (!v->failed++) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->msg, sizeof v->msg, fmt, ap);
        va_end(ap);
    }
}

/* LMDB as the power cut left it, before ulog_open may change anything. */
static void check_meta(const char *img, const run *r, vres *v, bool exists[2])
{
    ulog__meta *m;
    int rc = ulog__meta_open(img, 0640, 0750, &m);
    exists[0] = exists[1] = false;
    if (rc) {
        if (rc == ULOG_ECORRUPT)
            v->corrupt++;
        vfail(v, "LMDB of the image: %s", ulog_errname(rc));
        return;
    }
    static const char *const names[2] = { "a", "b" };
    for (int t = 0; t < 2; t++) {
        ulog__topic_rec tr;
        rc = ulog__meta_topic_get(m, names[t], &tr);
        if (rc == ULOG_ENOENT) {
            if (t == 0 ? r->topic_a : r->topic_b) {
                vfail(v, "topic %s was acknowledged but is not in the image", names[t]);
                if (t == 0)
                    v->lost_acked += (int64_t)r->a.n;
            }
            continue;
        }
        if (rc) {
            vfail(v, "topic %s in LMDB: %s", names[t], ulog_errname(rc));
            continue;
        }
        exists[t] = true;
        int parts = t == 0 ? PARTS_A : PARTS_B;
        const durable *dur = t == 0 ? r->dur_a : r->dur_b;
        for (int p = 0; p < parts; p++) {
            ulog__checkpoint cp;
            rc = ulog__meta_checkpoint_get(m, tr.id, p, &cp);
            if (rc == ULOG_ENOENT)
                continue;
            if (rc) {
                vfail(v, "checkpoint %s/%d: %s", names[t], p, ulog_errname(rc));
                continue;
            }
            if (cp.offset > dur[p].end) {
                v->cp_ahead++;
                vfail(v, "checkpoint of %s/%d at offset %lld (segment %lld pos %lld), durable "
                      "bytes end at offset %lld", names[t], p, (long long)cp.offset,
                      (long long)cp.segment, (long long)cp.pos, (long long)dur[p].end);
            } else if (!is_boundary(&dur[p], cp.segment, cp.pos, cp.offset)) {
                v->cp_not_boundary++;
                vfail(v, "checkpoint of %s/%d (offset %lld segment %lld pos %lld) names no "
                      "durable batch boundary", names[t], p, (long long)cp.offset,
                      (long long)cp.segment, (long long)cp.pos);
            }
        }
        if (t != 0)
            continue;
        int64_t offs[PARTS_A];
        rc = ulog__meta_group_get(m, GROUP, tr.id, PARTS_A, offs);
        if (rc) {
            vfail(v, "group offsets: %s", ulog_errname(rc));
            continue;
        }
        for (int p = 0; p < PARTS_A; p++) {
            if (offs[p] > dur[p].end) {
                v->group_ahead++;
                vfail(v, "group offset of a/%d is %lld, durable bytes end at offset %lld", p,
                      (long long)offs[p], (long long)dur[p].end);
            }
            if (r->commit[p] >= 0 && offs[p] < r->commit[p]) {
                v->commits_lost++;
                vfail(v, "group offset of a/%d is %lld, a commit of %lld was acknowledged", p,
                      (long long)offs[p], (long long)r->commit[p]);
            }
        }
    }
    ulog__meta_close(m);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Reads every record of a topic; checks density, contents, duplicates,
 * durability and (for "a") every acknowledgement. */
static void check_topic(ulog *log, const char *topic, int parts, const acks *ak,
                        const durable *dur, vres *v, int64_t high_out[])
{
    int64_t high[4], next[4] = { 0 };
    uint64_t *id_at[4] = { NULL };
    for (int p = 0; p < parts; p++) {
        int64_t lo;
        int rc = ulog_watermarks(log, topic, p, &lo, &high[p]);
        if (rc) {
            vfail(v, "watermarks %s/%d: %s", topic, p, ulog_errname(rc));
            return;
        }
        high_out[p] = high[p];
        if (lo != 0)
            vfail(v, "%s/%d: low watermark %lld", topic, p, (long long)lo);
        if (high[p] < dur[p].end) {
            v->durable_cut += dur[p].end - (high[p] > 0 ? high[p] : 0);
            vfail(v, "%s/%d: recovered to offset %lld, the durable bytes hold %lld", topic, p,
                  (long long)high[p], (long long)dur[p].end);
        }
        id_at[p] = calloc((size_t)high[p] + 1, sizeof *id_at[p]);
    }
    ulog_config *c = ulog_config_new();
    ulog_config_set(c, "auto.offset.reset", "earliest", NULL, 0);
    ulog_sub *s;
    int rc = ulog_subscribe(log, topic, NULL, c, &s);
    ulog_config_free(c);
    if (rc) {
        if (rc == ULOG_ECORRUPT)
            v->corrupt++;
        vfail(v, "subscribe %s: %s", topic, ulog_errname(rc));
        goto out;
    }
    ulog_msg m;
    size_t nids = 0, capids = 1024;
    uint64_t *ids = malloc(capids * sizeof *ids);
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        int32_t p = m.partition, vp;
        uint64_t id;
        v->records++;
        if (p < 0 || p >= parts || m.offset != next[p] || m.offset >= high[p]) {
            vfail(v, "%s/%d: offset %lld out of order (expected %lld)", topic, (int)p,
                  (long long)m.offset, p >= 0 && p < parts ? (long long)next[p] : -1LL);
            break;
        }
        next[p]++;
        if (!value_ok(m.value, m.value_len, &id, &vp) || vp != p) {
            vfail(v, "%s/%d offset %lld: damaged record", topic, (int)p, (long long)m.offset);
            continue;
        }
        id_at[p][m.offset] = id;
        if (nids == capids)
            ids = realloc(ids, (capids *= 2) * sizeof *ids);
        ids[nids++] = id;
    }
    if (rc != ULOG_ETIMEDOUT && rc != 0) {
        if (rc == ULOG_ECORRUPT)
            v->corrupt++;
        char em[200];
        ulog_errmsg(log, em, sizeof em);
        vfail(v, "poll %s: %s (%s)", topic, ulog_errname(rc), em);
    }
    for (int p = 0; p < parts; p++)
        if (next[p] != high[p])
            vfail(v, "%s/%d: read %lld records of %lld", topic, p, (long long)next[p],
                  (long long)high[p]);
    qsort(ids, nids, sizeof *ids, cmp_u64);
    for (size_t i = 1; i < nids; i++)
        if (ids[i] == ids[i - 1]) {
            vfail(v, "%s: record %llx is in the log twice", topic, (unsigned long long)ids[i]);
            break;
        }
    free(ids);
    ulog_sub_close(s);
    for (size_t i = 0; ak && i < ak->n; i++) {
        const ack *a = &ak->v[i];
        if (a->part < 0 || a->part >= parts || a->off < 0 || a->off >= high[a->part] ||
            id_at[a->part][a->off] != a->id) {
            if (!v->lost_acked)
                vfail(v, "acknowledged record %llx at %s/%d offset %lld is %s",
                      (unsigned long long)a->id, topic, (int)a->part, (long long)a->off,
                      a->off >= high[a->part] ? "gone" : "not there");
            v->lost_acked++;
        }
    }
out:
    for (int p = 0; p < parts; p++)
        free(id_at[p]);
}

static void check_heads(const char *img, const char *topic, int parts, const run *r, vres *v)
{
    for (int p = 0; p < parts; p++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/topics/%s/%d/head", img, topic, p);
        uint8_t *a;
        size_t len;
        if (!read_whole(path, &a, &len) || len < sizeof(ulog__head)) {
            free(a);
            v->stale_heads++;
            vfail(v, "%s: no head after open", path);
            continue;
        }
        ulog__head h;
        memcpy(&h, a, sizeof h);
        free(a);
        if (h.ready != 1 || memcmp(h.boot_id, r->boot_id, 40) != 0) {
            v->stale_heads++;
            vfail(v, "%s: head not rebuilt for this boot", path);
        }
    }
}

static void verify_image(const char *img, const run *r, vres *v)
{
    bool exists[2];
    check_meta(img, r, v, exists);
    ulog *log;
    int rc = ulog_open(img, NULL, &log);
    if (rc) {
        if (rc == ULOG_ECORRUPT)
            v->corrupt++;
        vfail(v, "ulog_open: %s", ulog_errname(rc));
        return;
    }
    if ((rc = ulog_key_add(log, "a", 1, A_KEY, sizeof A_KEY)) != 0) {
        vfail(v, "ulog_key_add: %s", ulog_errname(rc));
        ulog_close(log);
        return;
    }
    int64_t high_a[PARTS_A] = { 0 }, high_b[PARTS_B] = { 0 };
    v->opened = 1;
    if (exists[0])
        check_topic(log, "a", PARTS_A, &r->a, r->dur_a, v, high_a);
    if (exists[1])
        check_topic(log, "b", PARTS_B, NULL, r->dur_b, v, high_b);
    if (exists[0]) {
        /* A subscription of the group starts at the committed offsets:
         * with auto.offset.reset none, one past the log fails. */
        int64_t offs[PARTS_A];
        ulog_topic_info ti = ULOG_TOPIC_INFO_INIT;
        bool all = ulog_topic_describe(log, "a", &ti, NULL) == 0;
        ulog__meta *m = log->meta;
        all = all && ulog__meta_group_get(m, GROUP, ti.id, PARTS_A, offs) == 0;
        for (int p = 0; all && p < PARTS_A; p++)
            all = offs[p] >= 0;
        if (all) {
            ulog_config *c = ulog_config_new();
            ulog_config_set(c, "auto.offset.reset", "none", NULL, 0);
            ulog_sub *s;
            rc = ulog_subscribe(log, "a", GROUP, c, &s);
            ulog_config_free(c);
            if (rc) {
                if (rc == ULOG_EOFFSET)
                    v->group_ahead++;
                vfail(v, "subscribe a in group %s: %s", GROUP, ulog_errname(rc));
            } else {
                for (int p = 0; p < PARTS_A; p++) {
                    int64_t pos = -1;
                    ulog_position(s, p, &pos);
                    if (pos != offs[p])
                        vfail(v, "group subscription of a/%d starts at %lld, committed %lld", p,
                              (long long)pos, (long long)offs[p]);
                }
                ulog_sub_close(s);
            }
        }
        check_heads(img, "a", PARTS_A, r, v);
    }
    if (exists[1])
        check_heads(img, "b", PARTS_B, r, v);
    ulog_close(log);
    /* Recovered once, the log must open the same again (heads now valid). */
    if ((rc = ulog_open(img, NULL, &log)) != 0) {
        vfail(v, "second ulog_open: %s", ulog_errname(rc));
        return;
    }
    for (int t = 0; t < 2; t++) {
        if (!exists[t])
            continue;
        int parts = t == 0 ? PARTS_A : PARTS_B;
        for (int p = 0; p < parts; p++) {
            int64_t lo, hi;
            rc = ulog_watermarks(log, t == 0 ? "a" : "b", p, &lo, &hi);
            int64_t want = t == 0 ? high_a[p] : high_b[p];
            if (rc || hi != want)
                vfail(v, "second open: %s/%d high %lld, first open %lld (%s)",
                      t == 0 ? "a" : "b", p, (long long)hi, (long long)want, ulog_errname(rc));
        }
    }
    ulog_close(log);
}

/* Runs verify_image in a child; a crash or a hang is a failure too. */
static void verify_forked(const char *img, const run *r, vres *v)
{
    memset(v, 0, sizeof *v);
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        alarm(120);
        vres mine;
        memset(&mine, 0, sizeof mine);
        verify_image(img, r, &mine);
        ssize_t w = write(pfd[1], &mine, sizeof mine);
        _exit(w == (ssize_t)sizeof mine ? 0 : 3);
    }
    close(pfd[1]);
    size_t got = 0;
    while (got < sizeof *v) {
        ssize_t n = read(pfd[0], (char *)v + got, sizeof *v - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof *v || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        memset(v, 0, sizeof *v);
        v->crashed = 1;
        v->failed = 1;
        snprintf(v->msg, sizeof v->msg, "verifier died (%s %d)",
                 WIFSIGNALED(st) ? "signal" : "exit",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
}

/* ---------------------------------------------------------------- volatile files */

enum { V_ABSENT, V_MODEL, V_GARBAGE, V_STALE, V_KINDS };
static const char *const vnames[V_KINDS] = { "absent", "as synced (empty)", "garbage",
                                             "stale (from the killed process)" };

static void write_bytes(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        die("%s: %s", path, strerror(errno));
    if (n && write(fd, b, n) != (ssize_t)n)
        die("%s: short write", path);
    close(fd);
}

/* Replaces a volatile file of the image per mode. */
static void set_volatile(const char *img, const char *real_root, const char *rel, int mode,
                         uint64_t *rng)
{
    char path[4096], real[4096];
    if (snprintf(path, sizeof path, "%s/%s", img, rel) >= (int)sizeof path ||
        snprintf(real, sizeof real, "%s/%s", real_root, rel) >= (int)sizeof real)
        die("%s: path too long", rel);
    bool is_head = strcmp(strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel, "head") == 0;
    uint8_t *a = NULL;
    size_t len = 0;
    switch (mode) {
    case V_ABSENT:
        unlink(path);
        return;
    case V_MODEL:
        return;
    case V_STALE:
        if (read_whole(real, &a, &len) && len > 0) {
            write_bytes(path, a, len);
            free(a);
            return;
        }
        free(a);
        /* nothing to copy: garbage instead */
        __attribute__((fallthrough));
    default: {
        size_t n = rnd(rng) % 4 ? 4096 : 1 + rnd(rng) % 8192;
        a = malloc(n);
        for (size_t i = 0; i < n; i++)
            a[i] = (uint8_t)rnd(rng);
        /* Half the garbage heads look valid but for the boot id. */
        if (is_head && n >= sizeof(ulog__head) && rnd(rng) % 2) {
            uint8_t *realh;
            size_t rl;
            if (read_whole(real, &realh, &rl) && rl >= sizeof(ulog__head)) {
                ulog__head h;
                memcpy(&h, realh, sizeof h);
                for (size_t i = 0; i < sizeof h.boot_id; i++)
                    h.boot_id[i] = (char)('a' + rnd(rng) % 26);
                h.ready = 1;
                memcpy(a, &h, offsetof(ulog__head, wlock));
            }
            free(realh);
        }
        write_bytes(path, a, n);
        free(a);
        return;
    }
    }
}

/* ---------------------------------------------------------------- driver */

typedef struct totals {
    int64_t built[5], recovered[5], lost[5], cp_ahead[5], group_ahead[5];
    int64_t corrupt, cp_not_boundary, commits_lost, durable_cut, stale_heads, crashed;
    int64_t head_modes[V_KINDS];
    int64_t runs, early_kills, worker_errors, model_problems, selfcheck_bad, encrypted;
    int64_t acked_a, acked_b, commits, records_read, failures;
    int64_t files_pending, files_damaged, unsynced_kept, unsynced_dropped;
    int64_t lmdb_pending, lmdb_damaged;
    pc_stats js;
} totals;

static void add_stats(pc_stats *t, const pc_stats *s)
{
    t->records += s->records;
    t->torn_tail += s->torn_tail > 0;
    t->opens += s->opens;
    t->writes += s->writes;
    t->dsync_writes += s->dsync_writes;
    t->inflight_writes += s->inflight_writes;
    t->inflight_calls += s->inflight_calls;
    t->failed_writes += s->failed_writes;
    t->file_syncs += s->file_syncs;
    t->dir_syncs += s->dir_syncs;
    t->failed_syncs += s->failed_syncs;
    t->sync_ranges += s->sync_ranges;
    t->sync_alls += s->sync_alls;
    t->truncs += s->truncs;
    t->fallocs += s->fallocs;
    t->creates += s->creates;
    t->mkdirs += s->mkdirs;
    t->unlinks += s->unlinks;
    t->renames += s->renames;
    t->mmap_writes += s->mmap_writes;
    t->msyncs_of_mapped += s->msyncs_of_mapped;
    t->unmodeled += s->unmodeled;
    t->inconsistencies += s->inconsistencies;
}

typedef struct opts {
    const char *shim;
    const char *scratch;
    int64_t     images;
    int         per_run;
    uint64_t    seed;
    int         max_delay_ms;
    int         keep;
    int         verbose;
} opts;

static char self_exe[PATH_MAX];

/* Starts the worker under the shim; returns its pid, *rfd the ack pipe. */
static pid_t start_worker(const opts *o, const char *root, const char *journal,
                          uint64_t seed, const char *fake_boot, int *rfd)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    fcntl(pfd[0], F_SETPIPE_SZ, 1 << 20);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        setenv("LD_PRELOAD", o->shim, 1);
        setenv("POWERCUT_JOURNAL", journal, 1);
        setenv("POWERCUT_ROOT", root, 1);
        setenv("POWERCUT_BOOT_ID", fake_boot, 1);
#if defined(__SANITIZE_ADDRESS__)
        /* The shim comes before the sanitizer runtime in the link order. */
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
#endif
        char fdarg[16], seedarg[32];
        snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
        snprintf(seedarg, sizeof seedarg, "%llu", (unsigned long long)seed);
        execl(self_exe, self_exe, "--worker", root, seedarg, fdarg, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    *rfd = pfd[0];
    return pid;
}

/* Reads acknowledgements until the kill moment, kills, reads the rest. */
static void run_worker(const opts *o, run *r, pid_t pid, int fd, uint64_t *rng, bool *early)
{
    size_t cap = 1 << 16, len = 0, pos = 0;
    uint8_t *buf = malloc(cap);
    int64_t t0 = now_ms(), kill_at;
    *early = rnd(rng) % 8 == 0;
    /* Early: anywhere in the first 100 ms (opening, creating topics).
     * Otherwise 1..max ms after the appenders started. */
    kill_at = *early ? t0 + (int64_t)(rnd(rng) % 100) : -1;
    bool killed = false, eof = false;
    while (!eof) {
        int64_t now = now_ms();
        if (!killed && r->ready && kill_at < 0)
            kill_at = now + 1 + (int64_t)(rnd(rng) % (uint64_t)o->max_delay_ms);
        if (!killed && kill_at >= 0 && now >= kill_at) {
            kill(pid, SIGKILL);
            killed = true;
        }
        if (!killed && now - t0 > 20000) {        /* never got ready */
            kill(pid, SIGKILL);
            killed = true;
            r->worker_error = true;
            snprintf(r->worker_msg, sizeof r->worker_msg, "worker not ready after 20 s");
        }
        int timeout = killed ? 1000 : kill_at >= 0 ? (int)(kill_at - now) : 100;
        struct pollfd p = { fd, POLLIN, 0 };
        int pr = poll(&p, 1, timeout < 0 ? 0 : timeout);
        if (pr < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        if (pr <= 0)
            continue;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof = true;
            break;
        }
        len += (size_t)n;
        parse_msgs(r, buf, len, &pos);
    }
    parse_msgs(r, buf, len, &pos);
    free(buf);
    close(fd);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!killed || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        r->worker_error = true;
        if (!r->worker_msg[0])
            snprintf(r->worker_msg, sizeof r->worker_msg, "worker ended by itself (status 0x%x)",
                     st);
    }
}

static const char *const kind_names[5] = {
    "", "synced bytes only", "+ prefix of unsynced tail", "+ garbage in unsynced tail",
    "+ zeroed page in unsynced tail",
};

static void print_table(const totals *t, const opts *o, double secs)
{
    int64_t built = 0, rec = 0, lost = 0, cpa = 0, ga = 0;
    printf("\npower-cut simulation: %lld runs, seed %llu, %.1f s\n", (long long)t->runs,
           (unsigned long long)o->seed, secs);
    printf("  %-34s %7s %10s %12s %10s %12s\n", "image kind", "built", "recovered",
           "lost-acked", "cp-ahead", "group-ahead");
    for (int k = 1; k <= 4; k++) {
        printf("  %d %-32s %7lld %10lld %12lld %10lld %12lld\n", k, kind_names[k],
               (long long)t->built[k], (long long)t->recovered[k], (long long)t->lost[k],
               (long long)t->cp_ahead[k], (long long)t->group_ahead[k]);
        built += t->built[k];
        rec += t->recovered[k];
        lost += t->lost[k];
        cpa += t->cp_ahead[k];
        ga += t->group_ahead[k];
    }
    printf("  %-34s %7lld %10lld %12lld %10lld %12lld\n", "total", (long long)built,
           (long long)rec, (long long)lost, (long long)cpa, (long long)ga);
    printf("  other checks: ECORRUPT %lld, checkpoints at no durable boundary %lld, acked "
           "commits lost %lld, durable records cut %lld, heads not rebuilt %lld, verifier "
           "crashes %lld\n", (long long)t->corrupt, (long long)t->cp_not_boundary,
           (long long)t->commits_lost, (long long)t->durable_cut, (long long)t->stale_heads,
           (long long)t->crashed);
    printf("  head files: ");
    for (int i = 0; i < V_KINDS; i++)
        printf("%s%s %lld", i ? ", " : "", vnames[i], (long long)t->head_modes[i]);
    printf("\n  workload: %lld runs (%lld killed early, %lld with \"a\" encrypted), acked %lld "
           "records of \"a\" (always), %lld of \"b\" (interval), %lld group commits; %lld "
           "records read back\n",
           (long long)t->runs, (long long)t->early_kills, (long long)t->encrypted,
           (long long)t->acked_a,
           (long long)t->acked_b, (long long)t->commits, (long long)t->records_read);
    printf("  images: %lld files had unsynced operations, %lld damaged; unsynced bytes kept "
           "%lld, dropped %lld; %lld images with unsynced LMDB pages (%lld of them damaged)\n",
           (long long)t->files_pending, (long long)t->files_damaged,
           (long long)t->unsynced_kept, (long long)t->unsynced_dropped,
           (long long)t->lmdb_pending, (long long)t->lmdb_damaged);
    const pc_stats *s = &t->js;
    printf("  journal: %llu records (%llu runs with a record torn by the kill), %llu writes "
           "(%llu O_DSYNC, %llu in flight at the kill), %llu other calls in flight,\n"
           "    %llu file syncs, %llu directory syncs, %llu creates, %llu mkdirs, %llu unlinks, "
           "%llu renames, %llu truncates, %llu fallocates,\n"
           "    %llu shared writable maps, %llu msyncs of them, %llu sync_file_range, "
           "%llu unmodeled calls\n",
           (unsigned long long)s->records, (unsigned long long)s->torn_tail,
           (unsigned long long)s->writes,
           (unsigned long long)s->dsync_writes, (unsigned long long)s->inflight_writes,
           (unsigned long long)s->inflight_calls,
           (unsigned long long)s->file_syncs, (unsigned long long)s->dir_syncs,
           (unsigned long long)s->creates, (unsigned long long)s->mkdirs,
           (unsigned long long)s->unlinks, (unsigned long long)s->renames,
           (unsigned long long)s->truncs, (unsigned long long)s->fallocs,
           (unsigned long long)s->mmap_writes, (unsigned long long)s->msyncs_of_mapped,
           (unsigned long long)s->sync_ranges, (unsigned long long)s->unmodeled);
    printf("  model: %lld journal inconsistencies, %lld runs where the model and the real "
           "tree differ, %lld workload errors\n", (long long)t->model_problems,
           (long long)t->selfcheck_bad, (long long)t->worker_errors);
    printf("%s: %lld of %lld images recovered, %lld failures\n",
           t->failures ? "FAIL" : "PASS", (long long)rec, (long long)built,
           (long long)t->failures);
}

static void usage(void)
{
    fprintf(stderr, "usage: driver --shim PATH [--images N] [--per-run K] [--seed S] "
                    "[--scratch DIR] [--max-delay-ms MS] [--keep N] [-v]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--worker") == 0)
        return worker_main(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));

    opts o = { .images = 1000, .per_run = 10, .max_delay_ms = 300, .keep = 3,
               .scratch = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp" };
    o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0) {
            o.verbose++;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--shim") == 0)
            o.shim = v;
        else if (strcmp(a, "--images") == 0)
            o.images = atoll(v);
        else if (strcmp(a, "--per-run") == 0)
            o.per_run = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            o.seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--scratch") == 0)
            o.scratch = v;
        else if (strcmp(a, "--max-delay-ms") == 0)
            o.max_delay_ms = atoi(v);
        else if (strcmp(a, "--keep") == 0)
            o.keep = atoi(v);
        else
            usage();
    }
    if (!o.shim || o.images < 1 || o.per_run < 1 || o.max_delay_ms < 1)
        usage();
    char shim[PATH_MAX];
    if (!realpath(o.shim, shim))
        die("%s: %s", o.shim, strerror(errno));
    o.shim = shim;
    ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (sl <= 0)
        die("/proc/self/exe: %s", strerror(errno));
    self_exe[sl] = 0;

    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s/powercut.XXXXXX", o.scratch);
    if (!mkdtemp(base))
        die("mkdtemp %s: %s", base, strerror(errno));
    char rbase[PATH_MAX];
    if (!realpath(base, rbase))
        die("%s: %s", base, strerror(errno));

    totals t;
    memset(&t, 0, sizeof t);
    uint64_t rng = o.seed;
    int64_t t0 = now_ms();
    int kept = 0;
    int64_t runs = (o.images + o.per_run - 1) / o.per_run;
    int64_t images_left = o.images;
    printf("power-cut simulation: %lld images, %d per run, seed %llu, scratch %s\n",
           (long long)o.images, o.per_run, (unsigned long long)o.seed, rbase);
    fflush(stdout);
    for (int64_t ri = 0; ri < runs; ri++) {
        run r;
        memset(&r, 0, sizeof r);
        for (int p = 0; p < PARTS_A; p++)
            r.commit[p] = -1;
        ulog__boot_id(r.boot_id);
        char dir[PATH_MAX], root[PATH_MAX], journal[PATH_MAX + 16], img[PATH_MAX + 16],
             dur[PATH_MAX + 16];
        if (snprintf(dir, sizeof dir, "%s/run-%lld", rbase, (long long)ri) >= (int)sizeof dir ||
            snprintf(root, sizeof root, "%s/root", dir) >= (int)sizeof root ||
            snprintf(journal, sizeof journal, "%s/journal", dir) >= (int)sizeof journal ||
            snprintf(img, sizeof img, "%s/image", dir) >= (int)sizeof img ||
            snprintf(dur, sizeof dur, "%s/durable", dir) >= (int)sizeof dur)
            die("%s: path too long", rbase);
        if (mkdir(dir, 0750) != 0 || mkdir(root, 0750) != 0 || mkdir(journal, 0750) != 0)
            die("%s: %s", dir, strerror(errno));
        uint64_t wseed = rnd(&rng);
        char fake_boot[40];
        snprintf(fake_boot, sizeof fake_boot, "powercut-%016llx", (unsigned long long)wseed);
        int fd;
        pid_t pid = start_worker(&o, root, journal, wseed, fake_boot, &fd);
        bool early;
        run_worker(&o, &r, pid, fd, &rng, &early);
        t.runs++;
        t.early_kills += early;
        t.encrypted += r.encrypted_a;
        t.acked_a += (int64_t)r.a.n;
        t.acked_b += (int64_t)r.b.n;
        t.commits += r.commits;
        bool run_failed = false;
        if (r.worker_error) {
            t.worker_errors++;
            t.failures++;
            run_failed = true;
            printf("run %lld: %s\n", (long long)ri, r.worker_msg);
        }

        pc_model *m = pc_model_load(journal, root);
        if (!m)
            die("%s: cannot read the journal", journal);
        const pc_stats *js = pc_model_stats(m);
        add_stats(&t.js, js);
        if (js->inconsistencies || js->unmodeled || js->msyncs_of_mapped) {
            t.model_problems++;
            t.failures++;
            run_failed = true;
            printf("run %lld: journal: %llu inconsistencies (%s), %llu unmodeled calls, %llu "
                   "msyncs\n", (long long)ri, (unsigned long long)js->inconsistencies,
                   js->first_problem, (unsigned long long)js->unmodeled,
                   (unsigned long long)js->msyncs_of_mapped);
        }
        char msg[512];
        if (pc_model_selfcheck(m, root, msg, sizeof msg) != 0) {
            t.selfcheck_bad++;
            t.failures++;
            run_failed = true;
            printf("run %lld: model differs from the real tree: %s\n", (long long)ri, msg);
        }

        /* The durable bytes: the synced-only image, scanned. */
        if (mkdir(dur, 0750) != 0)
            die("%s: %s", dur, strerror(errno));
        pc_image di = { .kind = 1, .seed = 0 };
        if (pc_model_build(m, dur, &di) != 0)
            die("building %s: %s", dur, strerror(errno));
        pc_image_clear(&di);
        for (int p = 0; p < PARTS_A; p++) {
            char pd[PATH_MAX + 64];
            snprintf(pd, sizeof pd, "%s/topics/a/%d", dur, p);
            scan_durable(pd, &r.dur_a[p]);
        }
        for (int p = 0; p < PARTS_B; p++) {
            char pd[PATH_MAX + 64];
            snprintf(pd, sizeof pd, "%s/topics/b/%d", dur, p);
            scan_durable(pd, &r.dur_b[p]);
        }
        rm_rf(dur);

        int k_images = images_left < o.per_run ? (int)images_left : o.per_run;
        images_left -= k_images;
        for (int i = 0; i < k_images; i++) {
            int kind = 1 + i % 4;
            pc_image im = { .kind = kind, .seed = rnd(&rng), .watch = "data.mdb" };
            if (mkdir(img, 0750) != 0)
                die("%s: %s", img, strerror(errno));
            if (pc_model_build(m, img, &im) != 0)
                die("building %s: %s", img, strerror(errno));
            int head_mode = (int)((ri + i / 4 + (i % 4)) % V_KINDS);
            int lock_mode = (int)(rnd(&rng) % V_KINDS);
            for (int v = 0; v < im.nvolatile; v++) {
                const char *rel = im.volatile_paths[v];
                bool head = strcmp(strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel, "head") == 0;
                set_volatile(img, root, rel, head ? head_mode : lock_mode, &rng);
            }
            t.head_modes[head_mode]++;
            t.files_pending += im.files_pending;
            t.files_damaged += im.files_damaged;
            t.unsynced_kept += im.unsynced_kept;
            t.unsynced_dropped += im.unsynced_dropped;
            t.lmdb_pending += im.watch_pending > 0;
            t.lmdb_damaged += im.watch_damaged > 0;
            pc_image_clear(&im);

            vres v;
            verify_forked(img, &r, &v);
            t.built[kind]++;
            t.lost[kind] += v.lost_acked;
            t.cp_ahead[kind] += v.cp_ahead;
            t.group_ahead[kind] += v.group_ahead;
            t.corrupt += v.corrupt;
            t.cp_not_boundary += v.cp_not_boundary;
            t.commits_lost += v.commits_lost;
            t.durable_cut += v.durable_cut;
            t.stale_heads += v.stale_heads;
            t.crashed += v.crashed;
            t.records_read += v.records;
            if (v.opened && !v.failed) {
                t.recovered[kind]++;
                rm_rf(img);
            } else {
                t.failures++;
                if (t.failures <= 20)
                    printf("run %lld image %d (kind %d, head %s): %s\n", (long long)ri, i, kind,
                           vnames[head_mode], v.msg);
                if (!run_failed && kept < o.keep) {
                    char keep_as[PATH_MAX + 64];
                    snprintf(keep_as, sizeof keep_as, "%s/image-%d", dir, i);
                    rename(img, keep_as);
                } else {
                    rm_rf(img);
                }
                run_failed = true;
            }
        }
        if (o.verbose)
            printf("run %lld: %s kill, acked %zu+%zu records, %lld commits, journal %llu "
                   "records\n", (long long)ri, early ? "early" : "late", r.a.n, r.b.n,
                   (long long)r.commits, (unsigned long long)js->records);
        pc_model_free(m);
        if (run_failed && kept < o.keep) {
            kept++;
            printf("  kept %s (root: what the killed process left; journal; failing image)\n",
                   dir);
        } else {
            rm_rf(dir);
        }
        for (int p = 0; p < PARTS_A; p++)
            free(r.dur_a[p].b);
        for (int p = 0; p < PARTS_B; p++)
            free(r.dur_b[p].b);
        free(r.a.v);
        free(r.b.v);
        if ((ri + 1) % 10 == 0 || ri + 1 == runs) {
            printf("  %lld/%lld runs, %lld images, %lld failures, %.0f s\n", (long long)ri + 1,
                   (long long)runs, (long long)(o.images - images_left), (long long)t.failures,
                   (double)(now_ms() - t0) / 1000);
            fflush(stdout);
        }
    }
    if (!kept)
        rmdir(rbase);
    print_table(&t, &o, (double)(now_ms() - t0) / 1000);
    return t.failures ? 1 : 0;
}
