/* fuzz_meta.c -- the value and key decoders of lib/meta.c, on whatever an
 * LMDB environment may hold.
 *
 * Those decoders are static; they are reached here through the narrowest
 * hidden calls that use them: ulog__meta_topic_get (topic records, and the
 * topic config text inside them), _topic_list, _topic_name, _group_entries,
 * _group_list, _group_get (group keys and values), _checkpoint_get,
 * _index_floor, _time_floor and _truncate.
 *
 * Input: a run of entries, each
 *   u8 database (mod 6: topics, groups, recovery, offset_index, time_index,
 *   seq), u8 key length, the key, u16 value length (mod 1024), the value.
 * They are put, raw, into a fresh environment (by LMDB directly: this file
 * is the only one outside lib/meta.c that includes lmdb.h, because its job
 * is to write what ulog never would), which is closed before
 * ulog__meta_open opens it: LMDB forbids two handles on one environment in
 * a process.
 *
 * Each call's result is compared with a model computed here from the
 * entries (kept sorted as LMDB sorts keys): what it must accept, reject as
 * corrupt, or not find, and every value it returns.
 */
#include <lmdb.h>

#include "fuzz.h"

enum { DB_TOPICS, DB_GROUPS, DB_RECOVERY, DB_OFFIDX, DB_TIMEIDX, DB_SEQ, NDB };
static const char *const db_names[NDB] = { "topics", "groups", "recovery",
                                           "offset_index", "time_index", "seq" };

#define MAX_ENT 64

typedef struct ent {
    const uint8_t *k;
    size_t         kl;
    const uint8_t *v;
    size_t         vl;
} ent;

typedef struct db {
    ent    e[MAX_ENT];
    size_t n;
} db;

/* LMDB's default order: bytewise, a prefix first. */
static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Inserts or overwrites, keeping the entries sorted. */
static void db_put(db *d, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    size_t i = 0;
    while (i < d->n && key_cmp(d->e[i].k, d->e[i].kl, k, kl) < 0)
        i++;
    if (i < d->n && key_cmp(d->e[i].k, d->e[i].kl, k, kl) == 0) {
        d->e[i].v = v;
        d->e[i].vl = vl;
        return;
    }
    memmove(&d->e[i + 1], &d->e[i], (d->n - i) * sizeof d->e[0]);
    d->e[i] = (ent){ k, kl, v, vl };
    d->n++;
}

static const ent *db_get(const db *d, const uint8_t *k, size_t kl)
{
    for (size_t i = 0; i < d->n; i++)
        if (key_cmp(d->e[i].k, d->e[i].kl, k, kl) == 0)
            return &d->e[i];
    return NULL;
}

/* The greatest entry below key (or equal to it when inclusive). */
static const ent *db_floor(const db *d, const uint8_t *k, size_t kl, bool inclusive)
{
    const ent *best = NULL;
    for (size_t i = 0; i < d->n; i++) {
        int c = key_cmp(d->e[i].k, d->e[i].kl, k, kl);
        if (c < 0 || (inclusive && c == 0))
            best = &d->e[i];
    }
    return best;
}

/* ---------------------------------------------------------------- models */

static bool name_ok(const uint8_t *k, size_t kl)
{
    char name[ULOG__NAME_MAX + 1];
    if (kl == 0 || kl > ULOG__NAME_MAX || memchr(k, 0, kl))
        return false;
    memcpy(name, k, kl);
    name[kl] = 0;
    return ulog__name_valid(name);
}

static void be_key(uint8_t *k, uint32_t a, uint32_t b, uint64_t c)
{
    fz_put_be32(k, a);
    fz_put_be32(k + 4, b);
    fz_put_be64(k + 8, c);
}

/* A topic value: 0 with *t filled, or the error topic_get must give. */
static int topic_model(const ent *e, ulog__topic_rec *t)
{
    if (e->vl < 4)
        return ULOG_ECORRUPT;
    uint32_t format = fz_le32(e->v);
    if (format != 1 && format != 2)         /* 2: with a settings version */
        return ULOG_EVERSION;
    size_t hdr = format == 1 ? 12 : 16;
    if (e->vl < hdr)
        return ULOG_ECORRUPT;
    t->id = fz_le32(e->v + 4);
    t->partitions = (int32_t)fz_le32(e->v + 8);
    t->cfg_version = format == 1 ? 0 : fz_le32(e->v + 12);
    if (t->partitions < 1 || t->partitions > 10000 || (format == 2 && t->cfg_version == 0) ||
        ulog__topic_cfg_decode((const char *)e->v + hdr, e->vl - hdr, &t->cfg) != 0)
        return ULOG_ECORRUPT;
    return 0;
}

/* A group key as this version writes it: name, NUL, u32, u32. */
static bool gkey_ok(const ent *e, size_t *nl)
{
    if (e->kl < 10 || e->kl > ULOG__NAME_MAX + 9 || e->k[e->kl - 9] != 0)
        return false;
    *nl = e->kl - 9;
    return name_ok(e->k, *nl);
}

static bool gval_ok(const ent *e)
{
    return e->vl == 24 && fz_le32(e->v) == 1 && fz_le64(e->v + 8) >= 0;
}

/* ---------------------------------------------------------------- checks */

static void check_topics(ulog__meta *m, const db *d)
{
    /* topic_list: every key a valid name, or ECORRUPT. */
    bool all_ok = true;
    for (size_t i = 0; i < d->n; i++)
        all_ok = all_ok && name_ok(d->e[i].k, d->e[i].kl);
    ulog_strlist *list = NULL;
    int rc = ulog__meta_topic_list(m, &list);
    FUZZ_CHECK(rc == (all_ok ? 0 : ULOG_ECORRUPT), "topic_list: %d", rc);
    if (rc == 0) {
        FUZZ_CHECK(ulog_strlist_count(list) == d->n, "topic_list count");
        for (size_t i = 0; i < d->n; i++) {
            const char *s = ulog_strlist_get(list, i);
            FUZZ_CHECK(s && strlen(s) == d->e[i].kl && memcmp(s, d->e[i].k, d->e[i].kl) == 0,
                       "topic_list[%zu]", i);
        }
        ulog_strlist_free(list);
    }

    /* topic_get on every valid name. */
    for (size_t i = 0; i < d->n; i++) {
        const ent *e = &d->e[i];
        if (!name_ok(e->k, e->kl))
            continue;
        char name[ULOG__NAME_MAX + 1];
        memcpy(name, e->k, e->kl);
        name[e->kl] = 0;
        ulog__topic_rec want, got;
        int mrc = topic_model(e, &want);
        rc = ulog__meta_topic_get(m, name, &got);
        FUZZ_CHECK(rc == mrc, "topic_get %s: %d, the model %d", name, rc, mrc);
        if (rc)
            continue;
        FUZZ_CHECK(got.id == want.id && got.partitions == want.partitions &&
                       got.cfg_version == want.cfg_version && cfg_equal(&got.cfg, &want.cfg),
                   "topic_get %s: fields", name);
        /* What is accepted is a config ulog can write back. */
        char *text;
        size_t tl;
        FUZZ_CHECK(ulog__topic_cfg_encode(&got.cfg, &text, &tl) == 0, "accepted config encodes");
        free(text);
    }
    ulog__topic_rec none;
    if (!db_get(d, (const uint8_t *)"no-such-topic.", 14))
        FUZZ_CHECK(ulog__meta_topic_get(m, "no-such-topic.", &none) == ULOG_ENOENT,
                   "topic_get of an absent name");

    /* topic_name: the first key (in order) of 1-249 bytes whose value
     * decodes with that id. */
    uint32_t ids[MAX_ENT + 3];
    size_t nid = 0;
    ids[nid++] = 0;
    ids[nid++] = 1;
    ids[nid++] = 2;
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].vl >= 8)
            ids[nid++] = fz_le32(d->e[i].v + 4);
    for (size_t j = 0; j < nid; j++) {
        const ent *want = NULL;
        for (size_t i = 0; i < d->n && !want; i++) {
            ulog__topic_rec t;
            if (d->e[i].kl > 0 && d->e[i].kl <= ULOG__NAME_MAX &&
                topic_model(&d->e[i], &t) == 0 && t.id == ids[j])
                want = &d->e[i];
        }
        char name[ULOG__NAME_MAX + 1];
        rc = ulog__meta_topic_name(m, ids[j], name);
        FUZZ_CHECK(rc == (want ? 0 : ULOG_ENOENT), "topic_name %u: %d", ids[j], rc);
        if (want)
            FUZZ_CHECK(memcmp(name, want->k, want->kl) == 0 && name[want->kl] == 0,
                       "topic_name %u: name", ids[j]);
    }
}

static void check_groups(ulog__meta *m, const db *d)
{
    /* group_list: every entry parses, or ECORRUPT; names in order, once. */
    bool all_ok = true;
    size_t nl = 0;
    for (size_t i = 0; i < d->n; i++)
        all_ok = all_ok && gkey_ok(&d->e[i], &nl) && gval_ok(&d->e[i]);
    ulog_strlist *list = NULL;
    int rc = ulog__meta_group_list(m, &list);
    FUZZ_CHECK(rc == (all_ok ? 0 : ULOG_ECORRUPT), "group_list: %d", rc);
    if (rc == 0) {
        size_t j = 0;
        for (size_t i = 0; i < d->n; i++) {
            gkey_ok(&d->e[i], &nl);
            if (i > 0 && d->e[i - 1].kl - 9 == nl && memcmp(d->e[i - 1].k, d->e[i].k, nl) == 0)
                continue;
            const char *s = ulog_strlist_get(list, j++);
            FUZZ_CHECK(s && strlen(s) == nl && memcmp(s, d->e[i].k, nl) == 0,
                       "group_list[%zu]", j - 1);
        }
        FUZZ_CHECK(ulog_strlist_count(list) == j, "group_list count");
        ulog_strlist_free(list);
    }

    /* group_entries and group_get for each name that a key starts with. */
    for (size_t i = 0; i < d->n; i++) {
        const ent *e = &d->e[i];
        const uint8_t *z = memchr(e->k, 0, e->kl);
        size_t gl = z ? (size_t)(z - e->k) : e->kl;
        if (!name_ok(e->k, gl))
            continue;
        char g[ULOG__NAME_MAX + 1];
        memcpy(g, e->k, gl);
        g[gl] = 0;

        /* The model: entries whose key starts with the name and its NUL,
         * in order; any that does not parse makes the call fail. */
        ulog__group_entry want[MAX_ENT];
        size_t nw = 0;
        int mrc = 0;
        for (size_t j = 0; j < d->n && !mrc; j++) {
            const ent *x = &d->e[j];
            if (x->kl < gl + 1 || memcmp(x->k, g, gl + 1) != 0)
                continue;
            size_t xl;
            if (!gkey_ok(x, &xl) || !gval_ok(x)) {
                mrc = ULOG_ECORRUPT;
                break;
            }
            want[nw++] = (ulog__group_entry){ fz_be32(x->k + xl + 1),
                                              (int32_t)fz_be32(x->k + xl + 5),
                                              fz_le64(x->v + 8), fz_le64(x->v + 16) };
        }
        if (!mrc && nw == 0)
            mrc = ULOG_ENOENT;
        ulog__group_entry *got = NULL;
        size_t ng = 0;
        rc = ulog__meta_group_entries(m, g, &got, &ng);
        FUZZ_CHECK(rc == mrc, "group_entries %s: %d, the model %d", g, rc, mrc);
        if (rc == 0) {
            FUZZ_CHECK(ng == nw, "group_entries %s: %zu entries, want %zu", g, ng, nw);
            for (size_t j = 0; j < ng; j++)
                FUZZ_CHECK(got[j].topic_id == want[j].topic_id &&
                               got[j].partition == want[j].partition &&
                               got[j].offset == want[j].offset && got[j].time_ms == want[j].time_ms,
                           "group_entries %s [%zu]", g, j);
            free(got);
        }

        /* group_get: exact keys (name, NUL, topic, partition i). */
        if (e->kl != gl + 9)
            continue;
        uint32_t topic = fz_be32(e->k + gl + 1);
        int64_t offs[4];
        int grc = 0;
        int64_t wo[4];
        for (uint32_t p = 0; p < 4; p++) {
            uint8_t key[ULOG__NAME_MAX + 9];
            memcpy(key, g, gl);
            key[gl] = 0;
            fz_put_be32(key + gl + 1, topic);
            fz_put_be32(key + gl + 5, p);
            const ent *x = db_get(d, key, gl + 9);
            wo[p] = -1;
            if (!x)
                continue;
            if (!gval_ok(x) && !grc)
                grc = ULOG_ECORRUPT;
            wo[p] = x->vl == 24 ? fz_le64(x->v + 8) : -1;
        }
        rc = ulog__meta_group_get(m, g, topic, 4, offs);
        FUZZ_CHECK(rc == grc, "group_get %s: %d, the model %d", g, rc, grc);
        for (int p = 0; rc == 0 && p < 4; p++)
            FUZZ_CHECK(offs[p] == wo[p], "group_get %s partition %d", g, p);
    }
}

static void check_recovery(ulog__meta *m, const db *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const ent *e = &d->e[i];
        if (e->kl != 8)
            continue;
        uint32_t topic = fz_be32(e->k);
        int32_t part = (int32_t)fz_be32(e->k + 4);
        ulog__checkpoint cp;
        int rc = ulog__meta_checkpoint_get(m, topic, part, &cp);
        int want = part < 0 ? ULOG_EINVAL : e->vl == 32 ? 0 : ULOG_ECORRUPT;
        FUZZ_CHECK(rc == want, "checkpoint_get: %d, want %d", rc, want);
        if (rc == 0)
            FUZZ_CHECK(cp.topic_id == topic && cp.partition == part &&
                           cp.offset == fz_le64(e->v) && cp.segment == fz_le64(e->v + 8) &&
                           cp.pos == fz_le64(e->v + 16) && cp.max_timestamp == fz_le64(e->v + 24),
                       "checkpoint fields");
    }
}

/* The model of meta.c's floor lookups. */
static int floor_model(const db *d, const uint8_t key[16], bool inclusive, const ent **out)
{
    const ent *e = db_floor(d, key, 16, inclusive);
    if (!e)
        return ULOG_ENOENT;
    if (e->kl != 16)
        return ULOG_ECORRUPT;
    if (memcmp(e->k, key, 8) != 0)
        return ULOG_ENOENT;
    *out = e;
    return e->vl == 24 ? 0 : ULOG_ECORRUPT;
}

static void check_indexes(ulog__meta *m, const db *off, const db *tim)
{
    for (int which = 0; which < 2; which++) {
        const db *d = which ? tim : off;
        for (size_t i = 0; i < d->n; i++) {
            const ent *e = &d->e[i];
            if (e->kl < 8)
                continue;
            uint32_t topic = fz_be32(e->k);
            int32_t part = (int32_t)fz_be32(e->k + 4);
            uint64_t x = e->kl >= 16 ? fz_be64(e->k + 8) : 0;
            /* Look up the entry's own key, and one past it. */
            for (uint64_t dx = 0; dx < 2; dx++) {
                uint8_t key[16];
                ulog__index_entry got;
                const ent *w = NULL;
                int rc, mrc;
                if (!which) {
                    int64_t o = (int64_t)(x + dx);
                    be_key(key, topic, (uint32_t)part, (uint64_t)o);
                    mrc = part < 0 || o < 0 ? ULOG_EINVAL : floor_model(d, key, true, &w);
                    rc = ulog__meta_index_floor(m, topic, part, o, &got);
                    FUZZ_CHECK(rc == mrc, "index_floor: %d, the model %d", rc, mrc);
                    if (rc == 0)
                        FUZZ_CHECK(got.offset == (int64_t)fz_be64(w->k + 8) &&
                                       got.segment == fz_le64(w->v) && got.pos == fz_le64(w->v + 8) &&
                                       got.max_timestamp == fz_le64(w->v + 16),
                                   "index_floor fields");
                } else {
                    int64_t ts = (int64_t)((x + dx) ^ (1ULL << 63));
                    be_key(key, topic, (uint32_t)part, x + dx);
                    mrc = part < 0 ? ULOG_EINVAL : floor_model(d, key, false, &w);
                    rc = ulog__meta_time_floor(m, topic, part, ts, &got);
                    FUZZ_CHECK(rc == mrc, "time_floor: %d, the model %d", rc, mrc);
                    if (rc == 0)
                        FUZZ_CHECK(got.max_timestamp ==
                                           (int64_t)(fz_be64(w->k + 8) ^ (1ULL << 63)) &&
                                       got.offset == fz_le64(w->v) &&
                                       got.segment == fz_le64(w->v + 8) && got.pos == fz_le64(w->v + 16),
                                   "time_floor fields");
                }
            }
        }
    }
}

/* Last, as it writes: truncating a partition named by an index key. */
static void check_truncate(ulog__meta *m, const db *off)
{
    if (off->n == 0 || off->e[0].kl < 16)
        return;
    const ent *e = &off->e[0];
    uint32_t topic = fz_be32(e->k);
    int32_t part = (int32_t)fz_be32(e->k + 4);
    int64_t from = (int64_t)fz_be64(e->k + 8);
    int rc = ulog__meta_truncate(m, topic, part, from);
    if (part < 0 || from < 0) {
        FUZZ_CHECK(rc == ULOG_EINVAL, "truncate of a bad partition or offset: %d", rc);
        return;
    }
    FUZZ_CHECK(rc == 0 || rc == ULOG_ECORRUPT, "truncate: %d", rc);
    if (rc)
        return;
    ulog__index_entry got;
    rc = ulog__meta_index_floor(m, topic, part, INT64_MAX, &got);
    FUZZ_CHECK(rc == ULOG_ENOENT || rc == ULOG_ECORRUPT || (rc == 0 && got.offset < from),
               "an index entry at or past the truncation survived: %d", rc);
    ulog__checkpoint cp;
    rc = ulog__meta_checkpoint_get(m, topic, part, &cp);
    FUZZ_CHECK(rc == ULOG_ENOENT || (rc == 0 && cp.offset <= from),
               "a checkpoint past the truncation survived: %d", rc);
}

/* ---------------------------------------------------------------- main */

static void must(int rc, const char *what)
{
    FUZZ_CHECK(rc == 0, "%s: %s", what, mdb_strerror(rc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[600], metadir[700];
    if (!root[0]) {
        snprintf(root, sizeof root, "%s/root", fz_scratch());
        snprintf(metadir, sizeof metadir, "%s/meta", root);
        FUZZ_CHECK(mkdir(root, 0750) == 0 && mkdir(metadir, 0750) == 0, "mkdir %s: %s",
                   metadir, strerror(errno));
    }
    fz_empty_dir(metadir);

    static db dbs[NDB];
    memset(dbs, 0, sizeof dbs);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi[NDB];
    must(mdb_env_create(&env), "mdb_env_create");
    must(mdb_env_set_maxdbs(env, 16), "maxdbs");
    must(mdb_env_set_mapsize(env, 1 << 24), "mapsize");
    must(mdb_env_open(env, metadir, MDB_NOSYNC, 0640), "mdb_env_open");
    must(mdb_txn_begin(env, NULL, 0, &txn), "txn");
    for (int i = 0; i < NDB; i++)
        must(mdb_dbi_open(txn, db_names[i], MDB_CREATE, &dbi[i]), "dbi_open");

    fz_in in = { data, size };
    size_t total = 0;
    while (in.n > 0 && total < MAX_ENT) {
        int which = fz_u8(&in) % NDB;
        size_t kl = fz_u8(&in);
        kl = kl < in.n ? kl : in.n;
        const uint8_t *k = in.p;
        in.p += kl;
        in.n -= kl;
        size_t vl = fz_u16(&in) % 1024;
        vl = vl < in.n ? vl : in.n;
        const uint8_t *v = in.p;
        in.p += vl;
        in.n -= vl;
        if (kl == 0 || dbs[which].n == MAX_ENT)
            continue;
        MDB_val mk = { kl, (void *)k }, mv = { vl, (void *)v };
        must(mdb_put(txn, dbi[which], &mk, &mv, 0), "mdb_put");
        db_put(&dbs[which], k, kl, v, vl);
        total++;
    }
    must(mdb_txn_commit(txn), "commit");
    mdb_env_close(env);

    ulog__meta *m;
    int rc = ulog__meta_open(root, 0640, 0750, &m);
    FUZZ_CHECK(rc == 0, "meta_open: %d", rc);
    check_topics(m, &dbs[DB_TOPICS]);
    check_groups(m, &dbs[DB_GROUPS]);
    check_recovery(m, &dbs[DB_RECOVERY]);
    check_indexes(m, &dbs[DB_OFFIDX], &dbs[DB_TIMEIDX]);
    check_truncate(m, &dbs[DB_OFFIDX]);
    ulog__meta_close(m);
    return 0;
}
