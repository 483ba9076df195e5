/*
 * topic.c -- topics: creation, the per-process table of open topics, the
 * partitioner, and ulog_append (records -> one batch per partition).
 */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PARTITIONS 10000
/* topic_open: the name changed hands while it was being opened (positive:
 * never a ULOG_E* code). */
#define TOPIC_CHANGED  1
#define MAX_RECORDS    (1u << 20)

static unsigned bucket_of(const char *name)
{
    uint32_t h = 2166136261u;                       /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % ULOG__TOPIC_BUCKETS;
}

static ulog__topic *find(ulog *log, const char *name)
{
    for (ulog__topic *t = log->buckets[bucket_of(name)]; t; t = t->hnext)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

void ulog__topic_free(ulog__topic *t)
{
    if (!t)
        return;
    if (t->parts)
        for (int32_t i = 0; i < t->partitions; i++)
            ulog__part_close(&t->parts[i]);
    free(t->parts);
    for (ulog__cfg_node *c = t->cfg, *o; c; c = o) {
        o = c->older;
        free(c);
    }
    pthread_mutex_destroy(&t->cfg_lock);
    free(t);
}

/* Raises the head's settings version to at least v (never lowers it: a
 * process may have read an older catalog record than another). */
void ulog__cfg_gen_raise(ulog__head *h, uint32_t v)
{
    uint32_t cur = __atomic_load_n(&h->cfg_gen, __ATOMIC_ACQUIRE);
    while ((int32_t)(v - cur) > 0 &&
           !__atomic_compare_exchange_n(&h->cfg_gen, &cur, v, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
        ;
}

void ulog__topic_refresh(ulog__topic *t)
{
    ulog__head *h = t->parts[0].h;
    if (__atomic_load_n(&h->cfg_gen, __ATOMIC_ACQUIRE) ==
        __atomic_load_n(&t->cfg_seen, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&t->cfg_lock);
    uint32_t gen = __atomic_load_n(&h->cfg_gen, __ATOMIC_ACQUIRE);
    ulog__topic_rec rec;
    ulog__cfg_node *n;
    /* A failed read keeps the old settings and tries again next time. */
    if (gen != t->cfg_seen && ulog__meta_topic_get(t->log->meta, t->name, &rec) == 0 &&
        rec.id == t->id && (n = malloc(sizeof *n)) != NULL) {
        n->cfg = rec.cfg;
        n->older = t->cfg;
        __atomic_store_n(&t->cfg, n, __ATOMIC_RELEASE);
        __atomic_store_n(&t->cfg_seen, gen, __ATOMIC_RELAXED);
        ulog__cfg_gen_raise(h, rec.cfg_version);
    }
    pthread_mutex_unlock(&t->cfg_lock);
}

static int topic_open(ulog *log, const char *name, ulog__topic **out)
{
    ulog__topic_rec rec;
    int err = ulog__meta_topic_get(log->meta, name, &rec);
    if (err)
        return ulog__fail(log, err, "topic %s: %s", name, ulog_strerror(err));
    ulog__topic *t = calloc(1, sizeof *t);
    if (!t || !(t->parts = calloc((size_t)rec.partitions, sizeof *t->parts)) ||
        !(t->cfg = calloc(1, sizeof *t->cfg))) {
        if (t)
            free(t->parts);
        free(t);
        return ulog__fail(log, ULOG_ENOMEM, "topic %s: out of memory", name);
    }
    pthread_mutex_init(&t->cfg_lock, NULL);
    t->log = log;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->id = rec.id;
    t->partitions = rec.partitions;
    t->cfg->cfg = rec.cfg;
    t->cfg_seen = rec.cfg_version;
    for (int32_t i = 0; i < t->partitions; i++) {
        err = ulog__part_open(t, i, &t->parts[i]);
        if (err) {
            for (int32_t j = i; j < t->partitions; j++)
                t->parts[j].dirfd = t->parts[j].wfd = t->parts[j].sfd = t->parts[j].headfd = -1;
            ulog__topic_free(t);
            return err;
        }
    }
    /* The directories are opened by name: a delete and a create of the
     * same name between the catalog read and here would leave this id on
     * another topic's files. The catalog says whether they are still its. */
    ulog__topic_rec now;
    err = ulog__meta_topic_get(log->meta, name, &now);
    if (!err && (now.id != rec.id || now.partitions != rec.partitions))
        err = TOPIC_CHANGED;
    if (err) {
        ulog__topic_free(t);
        return err == TOPIC_CHANGED ? err : ulog__fail(log, err, "topic %s: %s", name,
                                                      ulog_strerror(err));
    }
    /* An alter whose process died before it bumped the heads is found
     * here by the next process to open the topic. */
    ulog__cfg_gen_raise(t->parts[0].h, rec.cfg_version);
    *out = t;
    return 0;
}

void ulog__topic_retire(ulog *log, ulog__topic *t)
{
    for (ulog__topic **pp = &log->buckets[bucket_of(t->name)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == t) {
            *pp = t->hnext;
            t->hnext = log->retired;
            log->retired = t;
            for (int32_t i = 0; i < t->partitions; i++)
                ulog__part_release_files(&t->parts[i]);
            return;
        }
    }
}

int ulog__topic_get(ulog *log, const char *name, ulog__topic **out)
{
    pthread_rwlock_rdlock(&log->tlock);
    ulog__topic *t = find(log, name);
    pthread_rwlock_unlock(&log->tlock);
    if (t && !ulog__topic_deleted(t)) {
        ulog__topic_refresh(t);
        *out = t;
        return 0;
    }
    if (!ulog__name_valid(name))
        return ulog__fail(log, ULOG_EINVAL, "invalid topic name");
    int err = 0;
    for (int tries = 0;; tries++) {
        uint32_t dead = 0;
        pthread_rwlock_wrlock(&log->tlock);
        t = find(log, name);
        /* Deleted (here or by another process): the name may hold a new
         * topic by now, which the catalog tells. */
        if (t && ulog__topic_deleted(t)) {
            ulog__topic_retire(log, t);
            dead = t->id;
            t = NULL;
        } else if (!t && (err = topic_open(log, name, &t)) == 0) {
            if (ulog__topic_deleted(t)) {
                dead = t->id;
                ulog__topic_free(t);
                t = NULL;
                err = ulog__fail(log, ULOG_ENOENT, "topic %s: deleted", name);
            } else {
                unsigned b = bucket_of(name);
                t->hnext = log->buckets[b];
                log->buckets[b] = t;
            }
        }
        pthread_rwlock_unlock(&log->tlock);
        /* A deleter that died after marking left the rest to whoever comes
         * next; done outside the table lock, as removing files takes time. */
        if (dead)
            ulog__topic_finish_delete(log, name, dead);
        if (t) {
            *out = t;
            return 0;
        }
        /* Retired: open what the name holds now. EAGAIN: the name changed
         * hands while it was being opened. */
        if ((dead && !err) || (err == TOPIC_CHANGED && tries < 8))
            continue;
        return err == TOPIC_CHANGED
                   ? ulog__fail(log, ULOG_EIO, "topic %s: deleted and created again "
                                               "while being opened, repeatedly", name)
                   : err;
    }
}

static void free_chain(ulog__topic *t)
{
    while (t) {
        ulog__topic *n = t->hnext;
        ulog__topic_free(t);
        t = n;
    }
}

void ulog__topics_close(ulog *log)
{
    for (unsigned b = 0; b < ULOG__TOPIC_BUCKETS; b++) {
        free_chain(log->buckets[b]);
        log->buckets[b] = NULL;
    }
    free_chain(log->retired);
    log->retired = NULL;
}

/* mkdir that tolerates an existing directory (a create that crashed, or a
 * concurrent create in another process), then opens it. */
static int mkdir_open(int at, const char *name, int mode, int *fd)
{
    if (mkdirat(at, name, (mode_t)mode) != 0 && errno != EEXIST)
        return ulog__errno_to_err(errno);
    *fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *fd < 0 ? ulog__errno_to_err(errno) : 0;
}

/* Directories and first segments, all durable, before the catalog entry
 * that makes the topic visible. */
static int make_dirs(ulog *log, const char *name, int32_t partitions, int64_t prealloc)
{
    int tfd, err = mkdir_open(log->topicsfd, name, log->cfg.dir_mode, &tfd);
    if (err)
        return err;
    for (int32_t i = 0; i < partitions && !err; i++) {
        char pname[16];
        snprintf(pname, sizeof pname, "%d", (int)i);
        int pfd;
        err = mkdir_open(tfd, pname, log->cfg.dir_mode, &pfd);
        if (err)
            break;
        int64_t *v;
        size_t n;
        err = ulog__seg_list(pfd, &v, &n);
        if (!err) {
            free(v);
            int sfd;
            if (n == 0 && (err = ulog__seg_create(pfd, 0, log->cfg.file_mode, prealloc,
                                                  &sfd)) == 0)
                close(sfd);
        }
        close(pfd);
    }
    if (!err)
        err = ulog__fsync_dir(tfd);
    close(tfd);
    return err ? err : ulog__fsync_dir(log->topicsfd);
}

struct make_args {
    ulog       *log;
    const char *name;
    int32_t     partitions;
    int64_t     prealloc;
    bool        dirs_failed;
};

static int make_step(void *arg)
{
    struct make_args *a = arg;
    int err = make_dirs(a->log, a->name, a->partitions, a->prealloc);
    a->dirs_failed = err != 0;
    return err;
}

int ulog_topic_create(ulog *log, const char *topic, int32_t partitions, const ulog_config *cfg)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !ulog__name_valid(topic))
        return ulog__fail(log, ULOG_EINVAL,
                          "topic name must be 1-249 bytes of [A-Za-z0-9._-], not . or ..");
    if (partitions < 1 || partitions > MAX_PARTITIONS)
        return ulog__fail(log, ULOG_EINVAL, "partitions must be 1 to %d", MAX_PARTITIONS);
    ulog__topic_cfg tc;
    char msg[256];
    int err = ulog__config_topic(cfg, &tc, msg, sizeof msg);
    if (err)
        return ulog__fail(log, err, "topic %s: %s", topic, msg);
    /* The directories are made inside the catalog transaction: a delete
     * (which renames a topic's directory in its own) cannot move them away
     * between their making and the topic's entry. */
    struct make_args a = { log, topic, partitions, tc.preallocate ? tc.segment_bytes : 0,
                           false };
    uint32_t id;
    err = ulog__meta_topic_add(log->meta, topic, partitions, &tc, make_step, &a, &id);
    if (err == ULOG_EEXIST)
        return ulog__fail(log, err, "topic %s exists", topic);
    if (err)
        return ulog__fail(log, err, "topic %s: %s%s", topic,
                          a.dirs_failed ? "creating directories: " : "", ulog_strerror(err));
    return 0;
}

int ulog_topic_list(ulog *log, ulog_strlist **out)
{
    if (!log || !out)
        return ULOG_EINVAL;
    int err = ulog__meta_topic_list(log->meta, out);
    return err ? ulog__fail(log, err, "listing topics: %s", ulog_strerror(err)) : 0;
}

int ulog_topic_describe(ulog *log, const char *topic, ulog_topic_info *info,
                        ulog_config **cfg_out)
{
    if (!log || !topic || !info || info->struct_size < sizeof(ulog_topic_info))
        return log ? ulog__fail(log, ULOG_EINVAL, "topic_describe: bad arguments") : ULOG_EINVAL;
    if (!ulog__name_valid(topic))
        return ulog__fail(log, ULOG_EINVAL, "invalid topic name");
    ulog__topic_rec rec;
    int err = ulog__meta_topic_get(log->meta, topic, &rec);
    if (err)
        return ulog__fail(log, err, "topic %s: %s", topic, ulog_strerror(err));
    if (cfg_out && (err = ulog__topic_cfg_export(&rec.cfg, cfg_out)) != 0)
        return ulog__fail(log, err, "topic %s: %s", topic, ulog_strerror(err));
    info->partitions = rec.partitions;
    info->id = rec.id;
    return 0;
}

/* The partition of one record: explicit, by key, or round-robin. */
static int32_t choose(ulog__topic *t, const ulog_record *r)
{
    if (r->partition != ULOG_PARTITION_ANY)
        return r->partition;
    if (t->partitions == 1)
        return 0;
    if (r->key)
        return (int32_t)((uint32_t)ulog__murmur2(r->key, r->key_len) & 0x7fffffffu) %
               t->partitions;
    return (int32_t)(__atomic_fetch_add(&t->rr, 1, __ATOMIC_RELAXED) % (uint32_t)t->partitions);
}

/* Whether r is a record without headers that check_record() accepts: the
 * common kind, tested with few branches. */
static inline bool plain_record_ok(const ulog__topic *t, bool compacts, const ulog_record *r)
{
    return r->header_count == 0 &&
           ((uint32_t)r->partition < (uint32_t)t->partitions ||
            r->partition == ULOG_PARTITION_ANY) &&
           (r->key ? true : r->key_len == 0 && !compacts) &&
           (r->value || r->value_len == 0) &&
           (r->timestamp >= 0 || r->timestamp == ULOG_TIMESTAMP_NOW) &&
           (r->key_len | r->value_len) <= INT32_MAX;
}

/* cfg: the settings this append reads. Called for the records
 * plain_record_ok() does not pass at once. */
static int check_record(ulog *log, const ulog__topic *t, const ulog__topic_cfg *cfg,
                        const ulog_record *r, size_t i)
{
    const char *why = NULL;
    if (r->partition != ULOG_PARTITION_ANY && (r->partition < 0 || r->partition >= t->partitions))
        why = "partition out of range";
    else if ((!r->key && r->key_len) || (!r->value && r->value_len))
        why = "NULL key or value with a non-zero length";
    else if (!r->key && ulog__cleanup_compacts(cfg))
        /* Compaction keeps the latest record per key: a record without
         * one could never be cleaned up. An empty key is a key. */
        return ulog__fail(log, ULOG_EINVAL, "topic %s record %zu: a compacted topic "
                          "(cleanup.policy=%s) needs a key on every record (Kafka's rule)",
                          t->name, i, cfg->cleanup_policy == ULOG__CLEANUP_COMPACT ?
                          "compact" : "compact,delete");
    else if (!r->headers && r->header_count)
        why = "NULL headers with a non-zero header_count";
    else if (r->timestamp != ULOG_TIMESTAMP_NOW && r->timestamp < 0)
        why = "negative timestamp";
    else if (r->key_len > INT32_MAX || r->value_len > INT32_MAX || r->header_count > INT32_MAX)
        return ulog__fail(log, ULOG_ETOOBIG, "topic %s record %zu: too large", t->name, i);
    for (size_t k = 0; !why && k < r->header_count; k++) {
        const ulog_header *hd = &r->headers[k];
        if (!hd->key)
            why = "header with a NULL key";
        else if (!hd->value && hd->value_len)
            why = "header with a NULL value and a non-zero length";
        else if (hd->key_len > INT32_MAX || hd->value_len > INT32_MAX)
            return ulog__fail(log, ULOG_ETOOBIG, "topic %s record %zu: header too large",
                              t->name, i);
    }
    return why ? ulog__fail(log, ULOG_EINVAL, "topic %s record %zu: %s", t->name, i, why) : 0;
}

/* One partition's share of an append. */
typedef struct group {
    int32_t  part;
    size_t   first, n;      /* range in scratch->idx */
    size_t   size;          /* encoded batch */
    ulog__written at;       /* where it went, once written */
} group;

/* Per-thread scratch space, so that appends do not allocate once warm. */
typedef struct scratch {
    uint8_t  *buf;
    size_t    buf_cap;
    uint32_t *idx;       /* records grouped by partition */
    int32_t  *part;      /* each record's partition */
    size_t    rec_cap;
    group    *groups;    /* one per partition that gets records */
    size_t   *cnt;       /* counting sort, partitions + 1 */
    size_t    part_cap;
    ulog_record *sealed;     /* an encrypted topic's records, values sealed */
    size_t    sealed_cap;
    uint8_t  *sbuf;          /* ... and those values */
    size_t    sbuf_cap;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    scratch *s = p;
    free(s->buf);
    free(s->idx);
    free(s->part);
    free(s->groups);
    free(s->cnt);
    free(s->sealed);
    free(s->sbuf);
    free(s);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

/* Grows array p to n elements; false (p unchanged) when out of memory.
 * Needs a `void *tmp` in scope. */
#define GROW(p, n) ((tmp = realloc((p), (n) * sizeof *(p))) != NULL ? ((p) = tmp, true) : false)

static scratch *scratch_get(size_t nrec, size_t nparts, size_t bytes)
{
    pthread_once(&scratch_once, scratch_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    void *tmp;
    if (nrec > s->rec_cap) {
        if (!GROW(s->idx, nrec) || !GROW(s->part, nrec))
            return NULL;
        s->rec_cap = nrec;
    }
    if (nparts > s->part_cap) {
        if (!GROW(s->groups, nparts) || !GROW(s->cnt, nparts + 1))
            return NULL;
        s->part_cap = nparts;
    }
    if (bytes > s->buf_cap) {
        if (!GROW(s->buf, bytes))
            return NULL;
        s->buf_cap = bytes;
    }
    return s;
}

/* An encrypted topic: copies of the records with their values sealed
 * under the topic's current key, into s->sealed (see crypt.c). Sealing
 * needs the partition (it is bound into the value), so it comes after the
 * partitions are chosen. */
static int seal_records(ulog *log, const ulog__topic *t, const ulog__topic_cfg *cfg,
                        const ulog_record *records, size_t count, scratch *s)
{
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
        if (records[i].value && records[i].value_len > INT32_MAX - ULOG_SEAL_OVERHEAD)
            return ulog__fail(log, ULOG_ETOOBIG, "topic %s record %zu: too large", t->name, i);
        if (records[i].value)
            bytes += records[i].value_len + ULOG_SEAL_OVERHEAD;
    }
    void *tmp;
    if (count > s->sealed_cap) {
        if (!GROW(s->sealed, count))
            return ulog__fail(log, ULOG_ENOMEM, "append: out of memory");
        s->sealed_cap = count;
    }
    if (bytes > s->sbuf_cap) {
        if (!GROW(s->sbuf, bytes))
            return ulog__fail(log, ULOG_ENOMEM, "append: out of memory");
        s->sbuf_cap = bytes;
    }
    uint8_t *at = s->sbuf, key[ULOG_KEY_BYTES];
    uint32_t key_id = (uint32_t)cfg->encryption_key_id;
    int err = ulog__sodium();
    if (err)
        return ulog__fail(log, err, "topic %s: libsodium cannot be initialised", t->name);
    if (!ulog__key_copy(log, t->name, key_id, key))
        return ulog__fail(log, ULOG_ENOKEY, "topic %s: no key %u to seal with (ulog_key_add)",
                          t->name, (unsigned)key_id);
    for (size_t i = 0; i < count; i++) {
        ulog_record *r = &s->sealed[i];
        *r = records[i];
        if (!r->value)
            continue;           /* a tombstone stays one */
        ulog__seal(key, t->name, t->partitions == 1 ? 0 : s->part[i], key_id, &records[i], at);
        r->value = at;
        r->value_len += ULOG_SEAL_OVERHEAD;
        at += r->value_len;
    }
    ulog__wipe(key, sizeof key);
    return 0;
}

/* Groups the records by partition, keeping their order (counting sort);
 * returns the number of groups. With one partition idx is not needed. */
static size_t group_records(scratch *s, size_t count, int32_t partitions, bool single)
{
    if (single) {
        s->groups[0] = (group){ .part = s->part[0], .first = 0, .n = count };
        return 1;
    }
    size_t *cnt = s->cnt, ngroups = 0;
    memset(cnt, 0, ((size_t)partitions + 1) * sizeof *cnt);
    for (size_t i = 0; i < count; i++)
        cnt[s->part[i] + 1]++;
    for (int32_t p = 0; p < partitions; p++)
        cnt[p + 1] += cnt[p];
    for (int32_t p = 0; p < partitions; p++)
        if (cnt[p + 1] > cnt[p])
            s->groups[ngroups++] = (group){ .part = p, .first = cnt[p],
                                            .n = cnt[p + 1] - cnt[p] };
    for (size_t i = 0; i < count; i++)
        s->idx[cnt[s->part[i]]++] = (uint32_t)i;
    return ngroups;
}

int ulog_append(ulog *log, const char *topic, ulog_record *records, size_t count)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !records || count == 0 || count > MAX_RECORDS)
        return ulog__fail(log, ULOG_EINVAL, "append: NULL topic or records, or count not 1..%u",
                          MAX_RECORDS);
    ulog__topic *t;
    int err = ulog__topic_get(log, topic, &t);
    if (err)
        return err;
    scratch *s = scratch_get(count, (size_t)t->partitions, 0);
    if (!s)
        return ulog__fail(log, ULOG_ENOMEM, "append: out of memory");
    /* One reading of the settings for the whole call. */
    const ulog__topic_cfg *cfg = ulog__cfg(t);
    /* One pass: validate every record (before anything is written) and
     * choose its partition. */
    bool single = true, compacts = ulog__cleanup_compacts(cfg);
    for (size_t i = 0; i < count; i++)
        if (!plain_record_ok(t, compacts, &records[i]) &&
            (err = check_record(log, t, cfg, &records[i], i)) != 0)
            return err;
    if (t->partitions == 1) {
        s->part[0] = 0;
    } else {
        for (size_t i = 0; i < count; i++) {
            s->part[i] = choose(t, &records[i]);
            single = single && s->part[i] == s->part[0];
        }
    }
    /* What goes into the batches: the records, or their sealed copies. */
    const ulog_record *recs = records;
    if (cfg->encryption_key_id >= 0) {
        if ((err = seal_records(log, t, cfg, records, count, s)) != 0)
            return err;
        recs = s->sealed;
    }
    int64_t now = ulog__now_ms();
    size_t ngroups = group_records(s, count, t->partitions, single);
    group *groups = s->groups;

    /* Sizes first: a batch that is too big fails the call before anything
     * is written. A bound from the lengths alone is enough unless it is
     * past the limit; only then is the batch sized exactly. */
    size_t maxsize = 0;
    for (size_t g = 0; g < ngroups; g++) {
        ulog__batch_src src = { recs, single ? NULL : s->idx + groups[g].first, groups[g].n };
        groups[g].size = ulog__batch_bound(&src);
        if (groups[g].size > (size_t)cfg->max_message_bytes)
            groups[g].size = ulog__batch_size(&src, now);
        if (groups[g].size == 0 || groups[g].size > (size_t)cfg->max_message_bytes)
            return ulog__fail(log, ULOG_ETOOBIG,
                              "topic %s partition %d: batch of %zu bytes exceeds "
                              "max.message.bytes %lld", t->name, (int)groups[g].part,
                              groups[g].size, (long long)cfg->max_message_bytes);
        if (groups[g].size > maxsize)
            maxsize = groups[g].size;
    }
    if (!scratch_get(count, (size_t)t->partitions, maxsize))
        return ulog__fail(log, ULOG_ENOMEM, "append: out of memory");

    /* Write every partition's batch, then wait for durability: the
     * fdatasyncs of different partitions overlap with other writers. */
    size_t written = 0;
    for (; written < ngroups; written++) {
        group *gr = &groups[written];
        ulog__batch_src src = { recs, single ? NULL : s->idx + gr->first, gr->n };
        int64_t max_ts;
        gr->size = ulog__batch_encode(s->buf, gr->size, &src, now, cfg->log_append_time,
                                      &max_ts);
        err = ulog__part_write(&t->parts[gr->part], cfg, s->buf, gr->size, (uint32_t)gr->n,
                               max_ts, -1, &gr->at);
        if (err)
            break;
    }
    bool always = cfg->flush_policy == ULOG__FLUSH_ALWAYS;
    for (size_t g = 0; g < ngroups; g++) {
        int serr = g >= written ? 0 : always ? ulog__part_sync(&t->parts[groups[g].part],
                                                               &groups[g].at) : 0;
        if (serr && !err)
            err = serr;
        /* Offsets of the records stored; -1 for the others. */
        bool stored = g < written && !serr;
        for (size_t k = 0; k < groups[g].n; k++) {
            size_t i = single ? k : s->idx[groups[g].first + k];
            if (stored)
                records[i].partition = groups[g].part;
            records[i].offset = stored ? groups[g].at.base + (int64_t)k : -1;
        }
    }
    /* replication.sync: also shipped by the acknowledging hook. A timeout
     * leaves the records stored, their offsets written back. */
    for (size_t g = 0; !err && cfg->replication_sync && g < written; g++)
        err = ulog__part_wait_replicated(&t->parts[groups[g].part], groups[g].at.end,
                                         cfg->replication_timeout_ms);
    return err;
}

int ulog__part_get(ulog *log, const char *topic, int32_t partition, ulog__part **out)
{
    ulog__topic *t;
    int err = ulog__topic_get(log, topic, &t);
    if (err)
        return err;
    if (partition < 0 || partition >= t->partitions)
        return ulog__fail(log, ULOG_EINVAL, "topic %s: no partition %d", topic, (int)partition);
    *out = &t->parts[partition];
    return 0;
}

int ulog_watermarks(ulog *log, const char *topic, int32_t partition, int64_t *low, int64_t *high)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !low || !high)
        return ulog__fail(log, ULOG_EINVAL, "watermarks: NULL argument");
    ulog__part *p;
    int err = ulog__part_get(log, topic, partition, &p);
    if (err)
        return err;
    ulog__head *h = p->h;
    *low = __atomic_load_n(&h->low, __ATOMIC_ACQUIRE);
    *high = __atomic_load_n(&h->committed, __ATOMIC_ACQUIRE);
    return 0;
}

int ulog_partition_describe(ulog *log, const char *topic, int32_t partition,
                            ulog_partition_info *info)
{
    if (!log)
        return ULOG_EINVAL;
    /* 0.1's struct ended at `bytes`; the fields since are filled only
     * for a caller that has them. */
    size_t v01 = offsetof(ulog_partition_info, bytes) + sizeof info->bytes;
    if (!info || info->struct_size < v01)
        return ulog__fail(log, ULOG_EINVAL, "partition_describe: bad info struct");
    if (!topic)
        return ulog__fail(log, ULOG_EINVAL, "partition_describe: NULL topic");
    ulog__part *p;
    int err = ulog__part_get(log, topic, partition, &p);
    if (err)
        return err;
    ulog__topic *t = p->topic;
    info->low = __atomic_load_n(&p->h->low, __ATOMIC_ACQUIRE);
    info->high = __atomic_load_n(&p->h->committed, __ATOMIC_ACQUIRE);
    int64_t *v, *sizes, bytes = 0;
    size_t n;
    if ((err = ulog__seg_list_sizes(p->dirfd, &v, &sizes, &n)) != 0)
        return ulog__fail(log, err, "topic %s partition %d: listing segments", topic,
                          (int)partition);
    bool died;
    ulog__pos wend = { -1, -1, -1 };
    if (ulog__mutex_lock(&p->h->wlock, &died) == 0) {
        wend = p->h->wend;
        ulog__mutex_unlock(&p->h->wlock);
        info->write_end = wend.offset;
    }
    /* The active segment's file may run ahead of its data (zeros a
     * synced topic's writer sized it with): its bytes end at the write end. */
    if (n && wend.segment == v[n - 1] && wend.pos < sizes[n - 1])
        sizes[n - 1] = wend.pos;
    for (size_t i = 0; i < n; i++)
        bytes += sizes[i];
    info->segments = (int64_t)n;
    info->bytes = bytes;
    if (info->struct_size >= offsetof(ulog_partition_info, dirty_bytes) + sizeof info->dirty_bytes) {
        ulog__part_state ps = { 0, 0, 0, 0, -1, -1, 0, 0 };
        err = ulog__meta_part_state_get(log->meta, t->id, partition, &ps);
        if (err && err != ULOG_ENOENT) {
            free(v);
            free(sizes);
            return ulog__fail(log, err, "topic %s partition %d: reading its state", topic,
                              (int)partition);
        }
        info->reclaimed = ps.reclaimed;
        info->cleaned_ms = ps.cleaned_ms;
        info->cleaned_end = ps.cleaned_end;
        info->clean_bytes = info->dirty_bytes = 0;
        for (size_t i = 0; i + 1 < n; i++)      /* closed segments */
            *(v[i + 1] <= ps.cleaned_end ? &info->clean_bytes : &info->dirty_bytes) += sizes[i];
    }
    if (info->struct_size >= sizeof *info)
        info->replicated = __atomic_load_n(&p->h->replicated, __ATOMIC_ACQUIRE);
    free(v);
    free(sizes);
    return 0;
}
