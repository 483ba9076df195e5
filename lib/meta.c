/*
 * meta.c -- the metadata store: one LMDB environment in <root>/meta/.
 *
 * The only file that includes lmdb.h. What lives here is small and
 * transactional (the topic catalog) or a hint that can be rebuilt from the
 * segments (indexes, recovery checkpoints); DESIGN.md section 5.
 *
 * The environment is opened with MDB_NOTLS because the threads of one
 * process share it and a read transaction may begin on one thread and end on
 * another. Write transactions are serialised by LMDB, across processes too.
 *
 * Format (version 1). Keys are big-endian so that LMDB's bytewise order is
 * numeric order; values are little-endian, and every value is checked for
 * its size before use.
 *
 *   topics        key   topic name, 1-249 bytes, no NUL
 *                 value u32 format version (1), u32 topic id, i32 partitions,
 *                       then the topic config text (config.c); or format 2,
 *                       once ulog_topic_alter has changed the settings:
 *                       the same with u32 settings version (>= 1) before
 *                       the text (never-altered topics stay readable by
 *                       builds that know format 1 only)
 *   seq           key   "topic_id"
 *                 value u32 the next topic id (ids start at 1)
 *   offset_index  key   u32 topic id, u32 partition, u64 offset
 *                 value i64 segment base, i64 position, i64 max timestamp
 *   time_index    key   u32 topic id, u32 partition, u64 timestamp ^ 2^63
 *                       (flipping the sign bit makes signed order bytewise)
 *                 value i64 offset, i64 segment base, i64 position
 *   recovery      key   u32 topic id, u32 partition
 *                 value i64 offset, i64 segment base, i64 position,
 *                       i64 greatest timestamp written before the offset
 *                       (or a larger one)
 *   groups        key   group name, 1-249 bytes, then a NUL byte, u32 topic id,
 *                       u32 partition
 *                 value u32 format version (1), u32 zero, i64 committed offset,
 *                       i64 commit time (ms since the epoch)
 *   partitions    key   u32 topic id, u32 partition
 *                 value u32 format version (1), u32 zero, i64 log start
 *                       offset (records below it are gone), i64 bytes
 *                       reclaimed by retention, i64 when retention last
 *                       removed something (ms since the epoch, 0: never)
 *   segments      created empty, reserved
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TOPIC_FORMAT  1
#define TOPIC_FORMAT2 2      /* with a settings version */
#define TOPIC_HDR     12
#define TOPIC_HDR2    16
#define PKEY          8      /* topic id, partition */
#define IKEY          16     /* topic id, partition, offset or timestamp */
#define IVAL          24     /* three i64 */
#define CPVAL         32     /* checkpoint: four i64 */
#define MAX_PARTITIONS 10000
#define GROUP_FORMAT  1
#define GVAL          24     /* u32 version, u32 zero, i64 offset, i64 time */
#define PART_FORMAT   1      /* log_start, reclaimed, cleaned_ms */
#define PVAL          32     /* u32 version, u32 zero, three i64 */
#define PART_FORMAT2  2      /* and cleaned_end, swap_from, swap_to, horizon,
                                rewritten (compaction) */
#define PVAL2         72

struct ulog__meta {
    MDB_env *env;
    MDB_dbi  topics, seq, offidx, timeidx, recovery, groups, partitions, segments;
    /* One environment per directory per process: LMDB forbids opening the
     * same one twice in a process (closing either copy would drop the
     * other's file locks). Handles on the same root share it. */
    ulog__meta *next;
    dev_t       dev;
    ino_t       ino;
    pid_t       pid;        /* a child after fork must open its own */
    int         refs;
    int         lockfd;     /* lock.mdb, open as long as env: see alloc_lockfile */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ulog__meta     *registry;

/* ---------------------------------------------------------------- bytes */

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++, u >>= 8)
        p[i] = (uint8_t)u;
}

static int64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static uint64_t ts_key(int64_t ts)
{
    return (uint64_t)ts ^ UINT64_C(0x8000000000000000);
}

/* Partitions are >= 0, so the next partition's prefix never wraps. */
static void make_key(uint8_t *k, uint32_t topic, uint32_t partition, uint64_t x)
{
    put_be32(k, topic);
    put_be32(k + 4, partition);
    put_be64(k + 8, x);
}

static void put_val3(uint8_t v[IVAL], int64_t a, int64_t b, int64_t c)
{
    put_le64(v, a);
    put_le64(v + 8, b);
    put_le64(v + 16, c);
}

/* ---------------------------------------------------------------- errors */

static int meta_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:          return 0;
    case MDB_NOTFOUND:         return ULOG_ENOENT;
    case MDB_KEYEXIST:         return ULOG_EEXIST;
    case MDB_MAP_FULL:
    case MDB_MAP_RESIZED:
    case MDB_DBS_FULL:
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:        return ULOG_ELIMIT;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:          return ULOG_EVERSION;
    case MDB_PAGE_NOTFOUND:
    case MDB_CORRUPTED:
    case MDB_INCOMPATIBLE:     return ULOG_ECORRUPT;
    case MDB_BAD_VALSIZE:      return ULOG_EINVAL;
    default:
        /* LMDB's own codes are negative; positive ones are errno values. */
        return rc > 0 ? ulog__errno_to_err(rc) : ULOG_EIO;
    }
}

static int txn_begin(ulog__meta *m, bool write, MDB_txn **txn)
{
    return meta_err(mdb_txn_begin(m->env, NULL, write ? 0 : MDB_RDONLY, txn));
}

/* Ends a write transaction: commits when every step succeeded (rc == 0),
 * aborts otherwise, so no path leaks a transaction. */
static int txn_end(MDB_txn *txn, int rc)
{
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    MDB_env *env = mdb_txn_env(txn);
    rc = mdb_txn_commit(txn);
    /* LMDB reports a short write as EIO; on a full filesystem that is
     * ENOSPC, which callers can act on (free space, retry). */
    const char *path;
    struct statvfs vs;
    if (rc == EIO && mdb_env_get_path(env, &path) == 0 && statvfs(path, &vs) == 0 &&
        vs.f_bavail == 0)
        rc = ENOSPC;
    return meta_err(rc);
}

/* ---------------------------------------------------------------- open */

static int sync_dir(const char *path)
{
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    if (fsync(fd) != 0)
        rc = ulog__errno_to_err(errno);
    close(fd);
    return rc;
}

/* Creates <root>/meta; a new directory entry is only durable once its
 * parent directory is synced. */
static int make_dir(const char *root, const char *path, int dir_mode)
{
    if (mkdir(path, (mode_t)dir_mode) != 0)
        return errno == EEXIST ? 0 : ulog__errno_to_err(errno);
    return sync_dir(root);
}

static int open_dbs(ulog__meta *m)
{
    const struct { const char *name; MDB_dbi *dbi; } dbs[] = {
        { "topics", &m->topics },         { "seq", &m->seq },
        { "offset_index", &m->offidx },   { "time_index", &m->timeidx },
        { "recovery", &m->recovery },     { "groups", &m->groups },
        { "partitions", &m->partitions }, { "segments", &m->segments },
    };
    MDB_txn *txn;
    int rc = txn_begin(m, true, &txn);

    for (size_t i = 0; rc == 0 && i < sizeof dbs / sizeof dbs[0]; i++)
        rc = meta_err(mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi));
    return rc ? rc : txn_end(txn, 0);
}

/*
 * LMDB maps its lock file shared and writes through the mapping: a page
 * that is a hole when the filesystem is full faults (SIGBUS) instead of
 * failing. Allocating the blocks first makes a full disk ULOG_ENOSPC.
 * Before mdb_env_open (whole false): the first page, LMDB's header, which it
 * writes while it opens (it then extends the file itself for the reader
 * table); after it: the whole file, the reader slots a later transaction
 * may touch. That second descriptor stays open (in *keep) until the
 * environment is closed: closing any descriptor of lock.mdb drops every
 * fcntl lock the process holds on it, LMDB's own included (lmdb.h's
 * caveats), and the next process to open the environment would then take
 * itself for the only user and reinitialise the lock file -- the writer
 * mutex, the reader table -- under the live ones (two writers at once
 * corrupted data.mdb within seconds in the kill torture).
 */
static int alloc_lockfile(const char *dir, int file_mode, bool whole, int *keep)
{
    char *lock = malloc(strlen(dir) + sizeof "/lock.mdb");
    if (!lock)
        return ULOG_ENOMEM;
    sprintf(lock, "%s/lock.mdb", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)file_mode);
    free(lock);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = ulog__errno_to_err(errno);
    } else {
        off_t len = whole ? st.st_size : 4096;
        if ((whole || st.st_size < 4096) && len > 0 && fallocate(fd, 0, 0, len) != 0 &&
            errno != EOPNOTSUPP && errno != ENOSYS)
            rc = ulog__errno_to_err(errno);
    }
    if (keep && rc == 0)
        *keep = fd;
    else
        close(fd);
    return rc;
}

int ulog__meta_open(const char *root, int file_mode, int dir_mode, ulog__meta **out)
{
    /* Virtual address space only; the file grows as pages are used. */
    const size_t map_size = sizeof(size_t) >= 8 ? (size_t)4 << 30 : (size_t)1 << 30;
    ulog__meta *m;
    char *path;
    int rc;

    if (!root || !out)
        return ULOG_EINVAL;
    if (!(path = malloc(strlen(root) + sizeof "/meta")))
        return ULOG_ENOMEM;
    sprintf(path, "%s/meta", root);
    if ((rc = make_dir(root, path, dir_mode)) != 0) {
        free(path);
        return rc;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        free(path);
        return ulog__errno_to_err(errno);
    }
    pthread_mutex_lock(&registry_lock);
    for (m = registry; m; m = m->next)
        if (m->dev == st.st_dev && m->ino == st.st_ino && m->pid == getpid()) {
            m->refs++;
            pthread_mutex_unlock(&registry_lock);
            free(path);
            *out = m;
            return 0;
        }
    if (!(m = calloc(1, sizeof *m))) {
        pthread_mutex_unlock(&registry_lock);
        free(path);
        return ULOG_ENOMEM;
    }
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->pid = getpid();
    m->refs = 1;
    m->lockfd = -1;
    rc = meta_err(mdb_env_create(&m->env));
    if (rc == 0)
        rc = meta_err(mdb_env_set_maxdbs(m->env, 16));
    if (rc == 0)
        rc = meta_err(mdb_env_set_mapsize(m->env, map_size));
    if (rc == 0)
        rc = meta_err(mdb_env_set_maxreaders(m->env, 1024));
    if (rc == 0)
        rc = alloc_lockfile(path, file_mode, false, NULL);
    if (rc == 0)
        rc = meta_err(mdb_env_open(m->env, path, MDB_NOTLS, (mdb_mode_t)file_mode));
    if (rc == 0)
        rc = alloc_lockfile(path, file_mode, true, &m->lockfd);
    if (rc == 0) {
        ulog__meta_reader_check(m);
        rc = open_dbs(m);
    }
    /* LMDB creates data.mdb without syncing its directory: until meta/ is
     * synced, a power cut can take the whole file -- the catalog, groups,
     * checkpoints -- however durable its commits were. Every process syncs
     * it once per environment it opens, after open_dbs committed (so the
     * entry never becomes durable before the file's first meta pages), and
     * before anything it commits can be acknowledged: also a process that
     * found a data.mdb another process created and may not have synced yet. */
    if (rc == 0)
        rc = sync_dir(path);
    free(path);
    if (rc) {
        if (m->env)
            mdb_env_close(m->env);
        if (m->lockfd >= 0)
            close(m->lockfd);
        free(m);
    } else {
        m->next = registry;
        registry = m;
        *out = m;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void ulog__meta_close(ulog__meta *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (ulog__meta **pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    mdb_env_close(m->env);
    if (m->lockfd >= 0)
        close(m->lockfd);
    free(m);
}

/* A process killed inside a read transaction leaves a slot that pins old
 * pages forever; this frees the slots of dead processes. */
void ulog__meta_reader_check(ulog__meta *m)
{
    int dead;

    if (m)
        mdb_reader_check(m->env, &dead);
}

/* ---------------------------------------------------------------- topics */

static int topic_decode(const MDB_val *v, ulog__topic_rec *out)
{
    const uint8_t *p = v->mv_data;
    ulog__topic_rec t;

    if (v->mv_size < 4)
        return ULOG_ECORRUPT;
    uint32_t format = get_le32(p);
    if (format != TOPIC_FORMAT && format != TOPIC_FORMAT2)
        return ULOG_EVERSION;
    size_t hdr = format == TOPIC_FORMAT ? TOPIC_HDR : TOPIC_HDR2;
    if (v->mv_size < hdr)
        return ULOG_ECORRUPT;
    t.id = get_le32(p + 4);
    t.partitions = (int32_t)get_le32(p + 8);
    t.cfg_version = format == TOPIC_FORMAT ? 0 : get_le32(p + 12);
    if (t.partitions < 1 || t.partitions > MAX_PARTITIONS ||
        (format == TOPIC_FORMAT2 && t.cfg_version == 0) ||
        ulog__topic_cfg_decode((const char *)p + hdr, v->mv_size - hdr, &t.cfg) != 0)
        return ULOG_ECORRUPT;
    *out = t;
    return 0;
}

int ulog__meta_topic_get(ulog__meta *m, const char *name, ulog__topic_rec *out)
{
    MDB_txn *txn;
    MDB_val k, v;
    int rc;

    if (!m || !out || !ulog__name_valid(name))
        return ULOG_EINVAL;
    k.mv_size = strlen(name);
    k.mv_data = (void *)name;
    if ((rc = txn_begin(m, false, &txn)) != 0)
        return rc;
    rc = meta_err(mdb_get(txn, m->topics, &k, &v));
    if (rc == 0)
        rc = topic_decode(&v, out);
    mdb_txn_abort(txn);
    return rc;
}

/* Takes the next topic id from "seq". Ids are never reused, so stale index
 * entries of a deleted topic can never be mistaken for a new topic's. */
static int next_id(ulog__meta *m, MDB_txn *txn, uint32_t *id)
{
    uint8_t buf[4];
    MDB_val k = { 8, "topic_id" }, v;
    int rc = mdb_get(txn, m->seq, &k, &v);

    if (rc == MDB_NOTFOUND) {
        *id = 1;
    } else if (rc != 0) {
        return meta_err(rc);
    } else if (v.mv_size != 4) {
        return ULOG_ECORRUPT;
    } else {
        *id = get_le32(v.mv_data);
        if (*id == 0)
            return ULOG_ECORRUPT;
        if (*id == UINT32_MAX)
            return ULOG_ELIMIT;
    }
    put_le32(buf, *id + 1);
    v.mv_size = 4;
    v.mv_data = buf;
    return meta_err(mdb_put(txn, m->seq, &k, &v, 0));
}

int ulog__meta_topic_add(ulog__meta *m, const char *name, int32_t partitions,
                         const ulog__topic_cfg *cfg, ulog__meta_step_fn *prepare, void *arg,
                         uint32_t *id_out)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint32_t id = 0;
    char *text;
    size_t tlen;
    int rc;

    if (!m || !cfg || !ulog__name_valid(name) || partitions < 1 ||
        partitions > MAX_PARTITIONS)
        return ULOG_EINVAL;
    if ((rc = ulog__topic_cfg_encode(cfg, &text, &tlen)) != 0)
        return rc;
    if ((rc = txn_begin(m, true, &txn)) != 0) {
        free(text);
        return rc;
    }
    k.mv_size = strlen(name);
    k.mv_data = (void *)name;
    rc = meta_err(mdb_get(txn, m->topics, &k, &v));
    rc = rc == 0 ? ULOG_EEXIST : rc == ULOG_ENOENT ? 0 : rc;
    if (rc == 0)
        rc = next_id(m, txn, &id);
    if (rc == 0 && prepare)
        rc = prepare(arg);
    if (rc == 0) {
        v.mv_size = TOPIC_HDR + tlen;
        rc = meta_err(mdb_put(txn, m->topics, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE));
    }
    if (rc == 0) {
        uint8_t *p = v.mv_data;
        put_le32(p, TOPIC_FORMAT);
        put_le32(p + 4, id);
        put_le32(p + 8, (uint32_t)partitions);
        memcpy(p + TOPIC_HDR, text, tlen);
    }
    free(text);
    if ((rc = txn_end(txn, rc)) == 0 && id_out)
        *id_out = id;
    return rc;
}

int ulog__meta_topic_list(ulog__meta *m, ulog_strlist **out)
{
    ulog_strlist *list = NULL;
    MDB_cursor *cur = NULL;
    MDB_txn *txn;
    MDB_stat st;
    MDB_val k, v;
    size_t n = 0;
    int rc;

    if (!m || !out)
        return ULOG_EINVAL;
    if ((rc = txn_begin(m, false, &txn)) != 0)
        return rc;
    rc = meta_err(mdb_stat(txn, m->topics, &st));
    if (rc == 0)
        rc = ulog__strlist_new(st.ms_entries, &list);
    if (rc == 0)
        rc = meta_err(mdb_cursor_open(txn, m->topics, &cur));
    /* LMDB keeps keys in bytewise order, which is the sorted order the API
     * promises for ASCII names. */
    while (rc == 0) {
        char name[250];
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);

        if (mrc == MDB_NOTFOUND) {
            if (n != st.ms_entries)
                rc = ULOG_ECORRUPT;
            break;
        }
        if (mrc != 0)
            rc = meta_err(mrc);
        else if (n == st.ms_entries || k.mv_size == 0 || k.mv_size >= sizeof name)
            rc = ULOG_ECORRUPT;
        else {
            memcpy(name, k.mv_data, k.mv_size);
            name[k.mv_size] = '\0';
            /* A NUL inside the key would pass for the shorter name before it. */
            rc = strlen(name) == k.mv_size && ulog__name_valid(name)
                     ? ulog__strlist_set(list, n++, name)
                     : ULOG_ECORRUPT;
        }
    }
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc) {
        ulog_strlist_free(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* Reads topic `name` in txn and checks that its id is `id`. */
static int topic_get_id(ulog__meta *m, MDB_txn *txn, const char *name, uint32_t id,
                        ulog__topic_rec *out)
{
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = meta_err(mdb_get(txn, m->topics, &k, &v));
    if (rc == 0)
        rc = topic_decode(&v, out);
    return rc == 0 && out->id != id ? ULOG_ENOENT : rc;
}

int ulog__meta_topic_set_cfg(ulog__meta *m, const char *name, uint32_t id,
                             ulog__meta_cfg_fn *edit, void *arg, uint32_t *version_out)
{
    ulog__topic_rec t;
    MDB_txn *txn;
    char *text = NULL;
    size_t tlen = 0;
    int rc;

    if (!m || !edit || !ulog__name_valid(name))
        return ULOG_EINVAL;
    if ((rc = txn_begin(m, true, &txn)) != 0)
        return rc;
    /* Edited inside the transaction: concurrent alters of different
     * settings both take effect. */
    rc = topic_get_id(m, txn, name, id, &t);
    if (rc == 0 && t.cfg_version == UINT32_MAX)
        rc = ULOG_ELIMIT;
    if (rc == 0)
        rc = edit(&t.cfg, arg);
    if (rc == 0)
        rc = ulog__topic_cfg_encode(&t.cfg, &text, &tlen);
    MDB_val k = { strlen(name), (void *)name }, v = { TOPIC_HDR2 + tlen, NULL };
    if (rc == 0)
        rc = meta_err(mdb_put(txn, m->topics, &k, &v, MDB_RESERVE));
    if (rc == 0) {
        uint8_t *p = v.mv_data;
        put_le32(p, TOPIC_FORMAT2);
        put_le32(p + 4, id);
        put_le32(p + 8, (uint32_t)t.partitions);
        put_le32(p + 12, t.cfg_version + 1);
        memcpy(p + TOPIC_HDR2, text, tlen);
    }
    free(text);
    if ((rc = txn_end(txn, rc)) == 0 && version_out)
        *version_out = t.cfg_version + 1;
    return rc;
}

/* Deletes every key of `dbi` that starts with the `plen` bytes of prefix.
 * After mdb_cursor_del the cursor stands on the next key, which MDB_NEXT
 * then returns (as in delete_from). */
static int delete_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t plen)
{
    MDB_cursor *cur;
    MDB_val k = { plen, (void *)prefix }, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return meta_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : meta_err(rc);
}

static bool group_key_parse(const MDB_val *k, char name[ULOG__NAME_MAX + 1],
                            uint32_t *topic, uint32_t *partition);

int ulog__meta_topic_delete(ulog__meta *m, const char *name, uint32_t id,
                            ulog__meta_step_fn *unlink_dir, void *arg)
{
    ulog__topic_rec t;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc;

    if (!m || !ulog__name_valid(name))
        return ULOG_EINVAL;
    if ((rc = txn_begin(m, true, &txn)) != 0)
        return rc;
    rc = topic_get_id(m, txn, name, id, &t);
    if (rc == 0 && unlink_dir)
        rc = unlink_dir(arg);
    if (rc == 0) {
        MDB_val k = { strlen(name), (void *)name };
        rc = meta_err(mdb_del(txn, m->topics, &k, NULL));
    }
    uint8_t prefix[4];
    put_be32(prefix, id);
    if (rc == 0)
        rc = delete_prefix(txn, m->offidx, prefix, 4);
    if (rc == 0)
        rc = delete_prefix(txn, m->timeidx, prefix, 4);
    if (rc == 0)
        rc = delete_prefix(txn, m->recovery, prefix, 4);
    if (rc == 0)
        rc = delete_prefix(txn, m->partitions, prefix, 4);
    /* Group entries are keyed by group name first: walk them all. */
    if (rc == 0)
        rc = meta_err(mdb_cursor_open(txn, m->groups, &cur));
    MDB_val k, v;
    int mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && mrc == 0) {
        char g[ULOG__NAME_MAX + 1];
        uint32_t topic, part;
        if (!group_key_parse(&k, g, &topic, &part)) {
            rc = ULOG_ECORRUPT;
            break;
        }
        if (topic == id) {
            if ((rc = meta_err(mdb_cursor_del(cur, 0))) != 0)
                break;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = meta_err(mrc);
    if (cur)
        mdb_cursor_close(cur);
    return txn_end(txn, rc);
}

/* ---------------------------------------------------------------- indexes */

/* Positions cur on the greatest key below `key` (or equal to it, when
 * inclusive) and returns it only if it belongs to the partition `prefix`;
 * ULOG_ENOENT otherwise. Keys of every partition share one database, so the
 * prefix check is what keeps a neighbour's entries out. */
static int floor_get(MDB_cursor *cur, const uint8_t key[IKEY], bool inclusive,
                     const uint8_t prefix[PKEY], MDB_val *k, MDB_val *v)
{
    int rc;

    k->mv_size = IKEY;
    k->mv_data = (void *)key;
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0) {
        if (!inclusive || k->mv_size != IKEY || memcmp(k->mv_data, key, IKEY) != 0)
            rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    }
    if (rc)
        return meta_err(rc);
    if (k->mv_size != IKEY)
        return ULOG_ECORRUPT;
    if (memcmp(k->mv_data, prefix, PKEY) != 0)
        return ULOG_ENOENT;
    return v->mv_size == IVAL ? 0 : ULOG_ECORRUPT;
}

/* The greatest timestamp in the time index of a partition. */
static int time_last(MDB_cursor *cur, uint32_t topic, int32_t partition, int64_t *ts)
{
    uint8_t key[IKEY], prefix[IKEY];
    MDB_val k, v;
    int rc;

    make_key(key, topic, (uint32_t)partition + 1, 0);
    make_key(prefix, topic, (uint32_t)partition, 0);
    if ((rc = floor_get(cur, key, false, prefix, &k, &v)) == 0)
        *ts = (int64_t)(get_be64((const uint8_t *)k.mv_data + PKEY) ^ ts_key(0));
    return rc;
}

static int flush_entry(ulog__meta *m, MDB_txn *txn, MDB_cursor *tcur,
                       const ulog__index_entry *e)
{
    uint8_t key[IKEY], val[IVAL];
    MDB_val k = { IKEY, key }, v = { IVAL, val };
    int64_t last;
    int rc;

    make_key(key, e->topic_id, (uint32_t)e->partition, (uint64_t)e->offset);
    put_val3(val, e->segment, e->pos, e->max_timestamp);
    if ((rc = meta_err(mdb_put(txn, m->offidx, &k, &v, 0))) != 0)
        return rc;
    if (e->max_timestamp == INT64_MIN)
        return 0;
    /* Only a strictly greater timestamp makes a new entry, so the time
     * index stays monotonic and a floor lookup on it is a valid start. */
    rc = time_last(tcur, e->topic_id, e->partition, &last);
    if (rc == 0 && e->max_timestamp <= last)
        return 0;
    if (rc != 0 && rc != ULOG_ENOENT)
        return rc;
    make_key(key, e->topic_id, (uint32_t)e->partition, ts_key(e->max_timestamp));
    put_val3(val, e->offset, e->segment, e->pos);
    k.mv_data = key;
    v.mv_data = val;
    return meta_err(mdb_put(txn, m->timeidx, &k, &v, 0));
}

int ulog__meta_flush(ulog__meta *m, const ulog__index_entry *e, size_t ne,
                     const ulog__checkpoint *cp, size_t ncp,
                     ulog__meta_keep_fn *keep, void *arg)
{
    MDB_cursor *tcur = NULL;
    MDB_txn *txn;
    int rc;

    if (!m || (ne && !e) || (ncp && !cp))
        return ULOG_EINVAL;
    for (size_t i = 0; i < ne; i++)
        if (e[i].partition < 0 || e[i].offset < 0)
            return ULOG_EINVAL;
    for (size_t i = 0; i < ncp; i++)
        if (cp[i].partition < 0 || cp[i].offset < 0)
            return ULOG_EINVAL;
    if (ne == 0 && ncp == 0)
        return 0;
    if ((rc = txn_begin(m, true, &txn)) != 0)
        return rc;
    rc = meta_err(mdb_cursor_open(txn, m->timeidx, &tcur));
    /* keep() is asked inside the transaction: a topic deleted before it
     * began is seen as deleted, and one deleted after it removes what this
     * one writes. */
    for (size_t i = 0; rc == 0 && i < ne; i++)
        if (!keep || keep(e[i].topic_id, arg))
            rc = flush_entry(m, txn, tcur, &e[i]);
    for (size_t i = 0; rc == 0 && i < ncp; i++) {
        if (keep && !keep(cp[i].topic_id, arg))
            continue;
        uint8_t key[PKEY], val[CPVAL];
        MDB_val k = { PKEY, key }, v = { CPVAL, val };
        put_be32(key, cp[i].topic_id);
        put_be32(key + 4, (uint32_t)cp[i].partition);
        put_val3(val, cp[i].offset, cp[i].segment, cp[i].pos);
        put_le64(val + IVAL, cp[i].max_timestamp);
        rc = meta_err(mdb_put(txn, m->recovery, &k, &v, 0));
    }
    if (tcur)
        mdb_cursor_close(tcur);
    return txn_end(txn, rc);
}

/* Runs a floor lookup on `dbi` in a read transaction. */
static int floor_read(ulog__meta *m, MDB_dbi dbi, const uint8_t key[IKEY], bool inclusive,
                      uint8_t kout[IKEY], uint8_t vout[IVAL])
{
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc;

    if ((rc = txn_begin(m, false, &txn)) != 0)
        return rc;
    if ((rc = meta_err(mdb_cursor_open(txn, dbi, &cur))) == 0) {
        rc = floor_get(cur, key, inclusive, key, &k, &v);
        if (rc == 0) {
            memcpy(kout, k.mv_data, IKEY);
            memcpy(vout, v.mv_data, IVAL);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

int ulog__meta_index_floor(ulog__meta *m, uint32_t topic_id, int32_t partition,
                           int64_t offset, ulog__index_entry *out)
{
    uint8_t key[IKEY], k[IKEY], v[IVAL];
    int rc;

    if (!m || !out || partition < 0 || offset < 0)
        return ULOG_EINVAL;
    make_key(key, topic_id, (uint32_t)partition, (uint64_t)offset);
    if ((rc = floor_read(m, m->offidx, key, true, k, v)) != 0)
        return rc;
    out->topic_id = topic_id;
    out->partition = partition;
    out->offset = (int64_t)get_be64(k + PKEY);
    out->segment = get_le64(v);
    out->pos = get_le64(v + 8);
    out->max_timestamp = get_le64(v + 16);
    return 0;
}

int ulog__meta_time_floor(ulog__meta *m, uint32_t topic_id, int32_t partition,
                          int64_t ts, ulog__index_entry *out)
{
    uint8_t key[IKEY], k[IKEY], v[IVAL];
    int rc;

    if (!m || !out || partition < 0)
        return ULOG_EINVAL;
    make_key(key, topic_id, (uint32_t)partition, ts_key(ts));
    if ((rc = floor_read(m, m->timeidx, key, false, k, v)) != 0)
        return rc;
    out->topic_id = topic_id;
    out->partition = partition;
    out->offset = get_le64(v);
    out->segment = get_le64(v + 8);
    out->pos = get_le64(v + 16);
    out->max_timestamp = (int64_t)(get_be64(k + PKEY) ^ ts_key(0));
    return 0;
}

/* ---------------------------------------------------------------- truncate */

/* Walks the partition's keys and deletes those whose entry's offset is in
 * [from, to) (the value's offset for the time index, the key's for the
 * offset index, whose walk starts at `from` and stops at `to`). After
 * mdb_cursor_del the cursor already stands on the next key, and MDB_NEXT
 * returns that key rather than skipping it. */
static int delete_range(MDB_txn *txn, MDB_dbi dbi, uint32_t topic, int32_t partition,
                        int64_t from, int64_t to, bool by_value)
{
    uint8_t key[IKEY];
    MDB_cursor *cur;
    MDB_val k = { IKEY, key }, v;
    int rc, err = 0;

    make_key(key, topic, (uint32_t)partition, by_value ? 0 : (uint64_t)from);
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return meta_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != IKEY || v.mv_size != IVAL) {
            err = ULOG_ECORRUPT;
            break;
        }
        if (memcmp(k.mv_data, key, PKEY) != 0)
            break;
        int64_t off = by_value ? get_le64(v.mv_data)
                               : (int64_t)get_be64((const uint8_t *)k.mv_data + PKEY);
        if (!by_value && off >= to)
            break;
        if (off >= from && off < to && (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (err)
        return err;
    return rc == MDB_NOTFOUND ? 0 : meta_err(rc);
}

int ulog__meta_truncate(ulog__meta *m, uint32_t topic_id, int32_t partition, int64_t from)
{
    uint8_t key[PKEY];
    MDB_val k = { PKEY, key }, v;
    MDB_txn *txn;
    int rc;

    if (!m || partition < 0 || from < 0)
        return ULOG_EINVAL;
    if ((rc = txn_begin(m, true, &txn)) != 0)
        return rc;
    rc = delete_range(txn, m->offidx, topic_id, partition, from, INT64_MAX, false);
    /* Time entries are keyed by timestamp, so their offsets are only in the
     * values: scan the partition's entries. The index is sparse, and
     * truncation is rare (recovery, a failed fsync). */
    if (rc == 0)
        rc = delete_range(txn, m->timeidx, topic_id, partition, from, INT64_MAX, true);
    if (rc == 0) {
        put_be32(key, topic_id);
        put_be32(key + 4, (uint32_t)partition);
        rc = meta_err(mdb_get(txn, m->recovery, &k, &v));
        if (rc == ULOG_ENOENT)
            rc = 0;
        else if (rc == 0 && v.mv_size != CPVAL)
            rc = ULOG_ECORRUPT;
        /* A checkpoint past `from` vouches for bytes that are gone; without
         * one, recovery scans from the start, which is always correct. */
        else if (rc == 0 && get_le64(v.mv_data) > from)
            rc = meta_err(mdb_del(txn, m->recovery, &k, NULL));
    }
    return txn_end(txn, rc);
}

/* ---------------------------------------------------------------- partitions */

static int part_state_read(ulog__meta *m, MDB_txn *txn, const uint8_t key[PKEY],
                           ulog__part_state *out)
{
    MDB_val k = { PKEY, (void *)key }, v;
    int rc = meta_err(mdb_get(txn, m->partitions, &k, &v));
    if (rc)
        return rc;
    const uint8_t *p = v.mv_data;
    if (v.mv_size < 4)
        return ULOG_ECORRUPT;
    uint32_t format = get_le32(p);
    if (format != PART_FORMAT && format != PART_FORMAT2)
        return ULOG_EVERSION;
    if (v.mv_size != (format == PART_FORMAT ? PVAL : PVAL2))
        return ULOG_ECORRUPT;
    *out = (ulog__part_state){ get_le64(p + 8), get_le64(p + 16), get_le64(p + 24), 0, -1, -1,
                               0, 0 };
    if (format == PART_FORMAT2) {
        out->cleaned_end = get_le64(p + 32);
        out->swap_from = get_le64(p + 40);
        out->swap_to = get_le64(p + 48);
        out->horizon = get_le64(p + 56);
        out->rewritten = get_le64(p + 64);
    }
    bool bad_swap = out->swap_from < 0 ? out->swap_from != -1 || out->swap_to != -1
                                       : out->swap_to <= out->swap_from;
    return out->log_start < 0 || out->reclaimed < 0 || out->cleaned_end < 0 || bad_swap ||
                   out->horizon < 0 || out->rewritten < 0
               ? ULOG_ECORRUPT : 0;
}

/* Format 1 while compaction has left nothing to record (what 0.2's first
 * builds wrote and read), else format 2. */
static int part_state_put(ulog__meta *m, MDB_txn *txn, const uint8_t key[PKEY],
                          const ulog__part_state *st)
{
    uint8_t val[PVAL2] = { 0 };
    bool v1 = st->cleaned_end == 0 && st->swap_from < 0 && st->horizon == 0 &&
              st->rewritten == 0;
    MDB_val k = { PKEY, (void *)key }, v = { v1 ? PVAL : PVAL2, val };
    put_le32(val, v1 ? PART_FORMAT : PART_FORMAT2);
    put_le64(val + 8, st->log_start);
    put_le64(val + 16, st->reclaimed);
    put_le64(val + 24, st->cleaned_ms);
    put_le64(val + 32, st->cleaned_end);
    put_le64(val + 40, st->swap_from);
    put_le64(val + 48, st->swap_to);
    put_le64(val + 56, st->horizon);
    put_le64(val + 64, st->rewritten);
    return meta_err(mdb_put(txn, m->partitions, &k, &v, 0));
}

int ulog__meta_part_state_get(ulog__meta *m, uint32_t topic_id, int32_t partition,
                              ulog__part_state *out)
{
    uint8_t key[PKEY];
    MDB_txn *txn;
    if (!m || !out || partition < 0)
        return ULOG_EINVAL;
    put_be32(key, topic_id);
    put_be32(key + 4, (uint32_t)partition);
    int rc = txn_begin(m, false, &txn);
    if (rc)
        return rc;
    rc = part_state_read(m, txn, key, out);
    mdb_txn_abort(txn);
    return rc;
}

/* Deletes the partition's offset-index keys below `below`, and its time
 * entries whose offset is below it (the time index is monotonic in offset
 * too, so the walk stops at the first one kept). */
static int drop_index_below(ulog__meta *m, MDB_txn *txn, uint32_t topic, int32_t partition,
                            int64_t below)
{
    uint8_t key[IKEY];
    MDB_dbi dbis[2] = { m->offidx, m->timeidx };
    for (int d = 0; d < 2; d++) {
        MDB_cursor *cur;
        MDB_val k = { IKEY, key }, v;
        int rc = mdb_cursor_open(txn, dbis[d], &cur);
        if (rc)
            return meta_err(rc);
        make_key(key, topic, (uint32_t)partition, 0);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != IKEY || v.mv_size != IVAL || memcmp(k.mv_data, key, PKEY) != 0)
                break;
            int64_t off = d == 0 ? (int64_t)get_be64((const uint8_t *)k.mv_data + PKEY)
                                 : get_le64(v.mv_data);
            if (off >= below)
                break;
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
        }
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return meta_err(rc);
    }
    return 0;
}

static int part_state_write(ulog__meta *m, uint32_t topic_id, int32_t partition,
                            int64_t log_start, bool exact, int64_t reclaimed, int64_t now_ms,
                            ulog__part_state *out);

int ulog__meta_part_state_set_start(ulog__meta *m, uint32_t topic_id, int32_t partition,
                                    int64_t start)
{
    return part_state_write(m, topic_id, partition, start, true, 0, 0, NULL);
}

int ulog__meta_part_state_advance(ulog__meta *m, uint32_t topic_id, int32_t partition,
                                  int64_t log_start, int64_t reclaimed, int64_t now_ms,
                                  ulog__part_state *out)
{
    return part_state_write(m, topic_id, partition, log_start, false, reclaimed, now_ms, out);
}

/* Begins a write transaction on a partition's state: *st holds it (the
 * defaults when it has none). */
static int part_state_begin(ulog__meta *m, uint32_t topic_id, int32_t partition,
                            uint8_t key[PKEY], MDB_txn **txn, ulog__part_state *st)
{
    *st = (ulog__part_state){ 0, 0, 0, 0, -1, -1, 0, 0 };
    put_be32(key, topic_id);
    put_be32(key + 4, (uint32_t)partition);
    int rc = txn_begin(m, true, txn);
    if (rc)
        return rc;
    rc = part_state_read(m, *txn, key, st);
    if (rc == ULOG_ENOENT)
        rc = 0;
    if (rc)
        mdb_txn_abort(*txn);
    return rc;
}

static int part_state_write(ulog__meta *m, uint32_t topic_id, int32_t partition,
                            int64_t log_start, bool exact, int64_t reclaimed, int64_t now_ms,
                            ulog__part_state *out)
{
    uint8_t key[PKEY];
    MDB_txn *txn;
    ulog__part_state st;
    if (!m || partition < 0 || log_start < 0 || reclaimed < 0)
        return ULOG_EINVAL;
    int rc = part_state_begin(m, topic_id, partition, key, &txn, &st);
    if (rc)
        return rc;
    if (exact || log_start > st.log_start)
        st.log_start = log_start;
    st.reclaimed += reclaimed;
    if (reclaimed > 0)
        st.cleaned_ms = now_ms;
    rc = part_state_put(m, txn, key, &st);
    /* Hints below the log start only cost space now. */
    if (rc == 0)
        rc = drop_index_below(m, txn, topic_id, partition, st.log_start);
    if ((rc = txn_end(txn, rc)) == 0 && out)
        *out = st;
    return rc;
}

/* Deletes the offset-index entries for offsets in [from, to) and the time
 * entries they made (keyed by their running maximum, pointing at their
 * offset): a walk of the range, not of the partition's whole time index. A
 * time entry whose offset entry was overwritten since stays; it is a hint,
 * verified before use. */
static int drop_range_entries(ulog__meta *m, MDB_txn *txn, uint32_t topic, int32_t partition,
                              int64_t from, int64_t to)
{
    uint8_t key[IKEY];
    MDB_cursor *cur;
    MDB_val k = { IKEY, key }, v;
    make_key(key, topic, (uint32_t)partition, (uint64_t)from);
    int rc = mdb_cursor_open(txn, m->offidx, &cur);
    if (rc)
        return meta_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != IKEY || v.mv_size != IVAL || memcmp(k.mv_data, key, PKEY) != 0 ||
            (int64_t)get_be64((const uint8_t *)k.mv_data + PKEY) >= to)
            break;
        int64_t ts = get_le64((const uint8_t *)v.mv_data + 16);
        if (ts != INT64_MIN) {
            uint8_t tk[IKEY];
            MDB_val tkey = { IKEY, tk }, tval;
            make_key(tk, topic, (uint32_t)partition, ts_key(ts));
            int r = mdb_get(txn, m->timeidx, &tkey, &tval);
            if (r == 0 && tval.mv_size == IVAL) {
                int64_t off = get_le64(tval.mv_data);
                if (off >= from && off < to)
                    r = mdb_del(txn, m->timeidx, &tkey, NULL);
            }
            if (r != 0 && r != MDB_NOTFOUND) {
                rc = r;
                break;
            }
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : meta_err(rc);
}

int ulog__meta_compact_begin(ulog__meta *m, uint32_t topic_id, int32_t partition,
                             int64_t from, int64_t to, const ulog__index_entry *e, size_t n)
{
    uint8_t key[PKEY];
    MDB_txn *txn;
    ulog__part_state st;
    if (!m || partition < 0 || from < 0 || to <= from || (n && !e))
        return ULOG_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (e[i].offset < from || e[i].offset >= to || (i && e[i].offset <= e[i - 1].offset))
            return ULOG_EINVAL;
    int rc = part_state_begin(m, topic_id, partition, key, &txn, &st);
    if (rc)
        return rc;
    st.swap_from = from;
    st.swap_to = to;
    rc = part_state_put(m, txn, key, &st);
    if (rc == 0)
        rc = drop_range_entries(m, txn, topic_id, partition, from, to);
    /* Time entries only where the running maximum grows (flush_entry's
     * rule within the range): each is valid on its own, whatever the
     * entries around the range hold. */
    int64_t last = INT64_MIN;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const ulog__index_entry *x = &e[i];
        uint8_t k2[IKEY], v2[IVAL];
        MDB_val k = { IKEY, k2 }, v = { IVAL, v2 };
        make_key(k2, topic_id, (uint32_t)partition, (uint64_t)x->offset);
        put_val3(v2, x->segment, x->pos, x->max_timestamp);
        rc = meta_err(mdb_put(txn, m->offidx, &k, &v, 0));
        if (rc == 0 && x->max_timestamp != INT64_MIN && x->max_timestamp > last) {
            last = x->max_timestamp;
            make_key(k2, topic_id, (uint32_t)partition, ts_key(x->max_timestamp));
            put_val3(v2, x->offset, x->segment, x->pos);
            rc = meta_err(mdb_put(txn, m->timeidx, &k, &v, 0));
        }
    }
    return txn_end(txn, rc);
}

int ulog__meta_compact_end(ulog__meta *m, uint32_t topic_id, int32_t partition,
                           int64_t cleaned_end, int64_t rewritten, int64_t reclaimed,
                           int64_t now_ms, int64_t horizon)
{
    uint8_t key[PKEY];
    MDB_txn *txn;
    ulog__part_state st;
    if (!m || partition < 0 || cleaned_end < 0 || rewritten < 0 || reclaimed < 0 ||
        horizon < -1)
        return ULOG_EINVAL;
    int rc = part_state_begin(m, topic_id, partition, key, &txn, &st);
    if (rc)
        return rc;
    st.swap_from = st.swap_to = -1;
    if (horizon >= 0)
        st.horizon = horizon;
    if (cleaned_end > st.cleaned_end)
        st.cleaned_end = cleaned_end;
    if (rewritten > st.rewritten)
        st.rewritten = rewritten;
    st.reclaimed += reclaimed;
    if (reclaimed > 0)
        st.cleaned_ms = now_ms;
    return txn_end(txn, part_state_put(m, txn, key, &st));
}

int ulog__meta_raise_rewritten(ulog__meta *m, uint32_t topic_id, int32_t partition, int64_t to)
{
    uint8_t key[PKEY];
    MDB_txn *txn;
    ulog__part_state st;
    if (!m || partition < 0 || to < 0)
        return ULOG_EINVAL;
    int rc = part_state_begin(m, topic_id, partition, key, &txn, &st);
    if (rc)
        return rc;
    if (to <= st.rewritten) {
        mdb_txn_abort(txn);
        return 0;
    }
    st.rewritten = to;
    return txn_end(txn, part_state_put(m, txn, key, &st));
}

/* ---------------------------------------------------------------- checkpoints */

int ulog__meta_checkpoint_get(ulog__meta *m, uint32_t topic_id, int32_t partition,
                              ulog__checkpoint *out)
{
    uint8_t key[PKEY];
    MDB_val k = { PKEY, key }, v;
    MDB_txn *txn;
    int rc;

    if (!m || !out || partition < 0)
        return ULOG_EINVAL;
    put_be32(key, topic_id);
    put_be32(key + 4, (uint32_t)partition);
    if ((rc = txn_begin(m, false, &txn)) != 0)
        return rc;
    rc = meta_err(mdb_get(txn, m->recovery, &k, &v));
    if (rc == 0 && v.mv_size != CPVAL)
        rc = ULOG_ECORRUPT;
    if (rc == 0) {
        out->topic_id = topic_id;
        out->partition = partition;
        out->offset = get_le64(v.mv_data);
        out->segment = get_le64((const uint8_t *)v.mv_data + 8);
        out->pos = get_le64((const uint8_t *)v.mv_data + 16);
        out->max_timestamp = get_le64((const uint8_t *)v.mv_data + 24);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* ---------------------------------------------------------------- groups */

/* Key of (group, topic, partition); returns its length. */
static size_t group_key(uint8_t k[ULOG__NAME_MAX + 9], const char *group, uint32_t topic,
                        uint32_t partition)
{
    size_t n = strlen(group);
    memcpy(k, group, n);
    k[n] = 0;
    put_be32(k + n + 1, topic);
    put_be32(k + n + 5, partition);
    return n + 9;
}

/* Splits a stored key; false when it is not one this version writes. */
static bool group_key_parse(const MDB_val *k, char name[ULOG__NAME_MAX + 1],
                            uint32_t *topic, uint32_t *partition)
{
    const uint8_t *b = k->mv_data;
    if (k->mv_size < 10 || k->mv_size > ULOG__NAME_MAX + 9 || b[k->mv_size - 9] != 0)
        return false;
    size_t n = k->mv_size - 9;
    memcpy(name, b, n);
    name[n] = '\0';
    if (strlen(name) != n || !ulog__name_valid(name))
        return false;
    *topic = get_be32(b + n + 1);
    *partition = get_be32(b + n + 5);
    return true;
}

static bool group_val_parse(const MDB_val *v, int64_t *offset, int64_t *time_ms)
{
    if (v->mv_size != GVAL || get_le32(v->mv_data) != GROUP_FORMAT)
        return false;
    *offset = get_le64((const uint8_t *)v->mv_data + 8);
    *time_ms = get_le64((const uint8_t *)v->mv_data + 16);
    return *offset >= 0;
}

int ulog__meta_group_commit(ulog__meta *m, const char *group, const char *topic,
                            uint32_t topic_id, const ulog_offset *offs, size_t n,
                            int64_t now_ms)
{
    MDB_txn *txn;
    ulog__topic_rec t;
    int rc = txn_begin(m, true, &txn);
    if (rc)
        return rc;
    /* A deleted topic's offsets went with it; none may come back. */
    rc = topic_get_id(m, txn, topic, topic_id, &t);
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t key[ULOG__NAME_MAX + 9], val[GVAL] = { 0 };
        MDB_val k = { group_key(key, group, topic_id, (uint32_t)offs[i].partition), key };
        MDB_val v = { GVAL, val };
        put_le32(val, GROUP_FORMAT);
        put_le64(val + 8, offs[i].offset);
        put_le64(val + 16, now_ms);
        rc = meta_err(mdb_put(txn, m->groups, &k, &v, 0));
    }
    return txn_end(txn, rc);
}

int ulog__meta_group_get(ulog__meta *m, const char *group, uint32_t topic_id,
                         int32_t partitions, int64_t *offsets)
{
    MDB_txn *txn;
    int rc = txn_begin(m, false, &txn);
    if (rc)
        return rc;
    for (int32_t i = 0; i < partitions && !rc; i++) {
        uint8_t key[ULOG__NAME_MAX + 9];
        MDB_val k = { group_key(key, group, topic_id, (uint32_t)i), key }, v;
        int64_t t;
        int mrc = mdb_get(txn, m->groups, &k, &v);
        offsets[i] = -1;
        if (mrc == MDB_NOTFOUND)
            continue;
        rc = meta_err(mrc);
        if (!rc && !group_val_parse(&v, &offsets[i], &t))
            rc = ULOG_ECORRUPT;
    }
    mdb_txn_abort(txn);
    return rc;
}

/*
 * Walks the groups database: every entry of `group`, or of every group
 * (group NULL), in key order, calling fn until it returns non-zero. With
 * `del`, the walk runs in a write transaction and deletes each entry it
 * visits. ULOG_ENOENT when a named group has no entry.
 */
typedef ulog__group_fn group_fn;

static int group_walk(ulog__meta *m, const char *group, bool del, group_fn *fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = txn_begin(m, del, &txn);
    if (rc)
        return rc;
    uint8_t key[ULOG__NAME_MAX + 9];
    size_t plen = group ? strlen(group) + 1 : 0;      /* the name and its NUL */
    MDB_val k = { plen, key }, v;
    if (group)
        memcpy(key, group, plen);
    bool any = false;
    rc = meta_err(mdb_cursor_open(txn, m->groups, &cur));
    int mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, group ? MDB_SET_RANGE : MDB_FIRST);
    while (!rc && mrc == 0) {
        char name[ULOG__NAME_MAX + 1];
        uint32_t topic, part;
        int64_t off, t;
        if (group && (k.mv_size < plen || memcmp(k.mv_data, group, plen) != 0))
            break;
        if (!group_key_parse(&k, name, &topic, &part) || !group_val_parse(&v, &off, &t)) {
            rc = ULOG_ECORRUPT;
            break;
        }
        any = true;
        if (fn && (rc = fn(arg, name, topic, part, off, t)) != 0)
            break;
        if (del && (rc = meta_err(mdb_cursor_del(cur, 0))) != 0)
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (!rc && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = meta_err(mrc);
    if (!rc && group && !any)
        rc = ULOG_ENOENT;
    if (cur)
        mdb_cursor_close(cur);
    if (del)
        return txn_end(txn, rc);
    mdb_txn_abort(txn);
    return rc;
}

int ulog__meta_group_walk(ulog__meta *m, ulog__group_fn *fn, void *arg)
{
    return group_walk(m, NULL, false, fn, arg);
}

int ulog__meta_group_delete(ulog__meta *m, const char *group)
{
    return group_walk(m, group, true, NULL, NULL);
}

struct entries {
    ulog__group_entry *v;
    size_t n, cap;
};

static int add_entry(void *arg, const char *group, uint32_t topic, uint32_t partition,
                     int64_t offset, int64_t time_ms)
{
    (void)group;
    struct entries *e = arg;
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 16;
        ulog__group_entry *v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return ULOG_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = (ulog__group_entry){ topic, (int32_t)partition, offset, time_ms };
    return 0;
}

int ulog__meta_group_entries(ulog__meta *m, const char *group, ulog__group_entry **out,
                             size_t *count)
{
    struct entries e = { NULL, 0, 0 };
    int rc = group_walk(m, group, false, add_entry, &e);
    if (rc) {
        free(e.v);
        return rc;
    }
    *out = e.v;
    *count = e.n;
    return 0;
}

#define GROUPS_CHANGED 1      /* the fill pass found more names than counted */

struct names {
    ulog_strlist *list;       /* NULL: counting pass */
    size_t n;
    char last[ULOG__NAME_MAX + 1];
};

static int add_name(void *arg, const char *group, uint32_t topic, uint32_t partition,
                    int64_t offset, int64_t time_ms)
{
    (void)topic, (void)partition, (void)offset, (void)time_ms;
    struct names *nm = arg;
    if (nm->n > 0 && strcmp(nm->last, group) == 0)
        return 0;
    snprintf(nm->last, sizeof nm->last, "%s", group);
    if (nm->list) {
        if (nm->n >= ulog_strlist_count(nm->list))
            return GROUPS_CHANGED;
        int rc = ulog__strlist_set(nm->list, nm->n, group);
        if (rc)
            return rc;
    }
    nm->n++;
    return 0;
}

int ulog__meta_group_list(ulog__meta *m, ulog_strlist **out)
{
    /* Two passes (count, fill); a group added in between is retried. */
    for (int attempt = 0; attempt < 8; attempt++) {
        struct names nm = { NULL, 0, "" };
        int rc = group_walk(m, NULL, false, add_name, &nm);
        if (rc)
            return rc;
        size_t want = nm.n;
        if ((rc = ulog__strlist_new(want, &nm.list)) != 0)
            return rc;
        nm.n = 0;
        rc = group_walk(m, NULL, false, add_name, &nm);
        if (rc == 0 && nm.n == want) {
            *out = nm.list;
            return 0;
        }
        ulog_strlist_free(nm.list);
        if (rc && rc != GROUPS_CHANGED)
            return rc;
    }
    return ULOG_EIO;
}

int ulog__meta_topic_name(ulog__meta *m, uint32_t id, char name[ULOG__NAME_MAX + 1])
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = txn_begin(m, false, &txn);
    if (rc)
        return rc;
    rc = meta_err(mdb_cursor_open(txn, m->topics, &cur));
    int mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (rc = rc ? rc : ULOG_ENOENT; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        ulog__topic_rec t;
        if (k.mv_size == 0 || k.mv_size > ULOG__NAME_MAX || topic_decode(&v, &t) != 0 ||
            t.id != id)
            continue;
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        rc = 0;
        break;
    }
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}
