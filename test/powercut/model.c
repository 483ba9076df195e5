/*
 * model.c -- replays a shim journal and builds crash images (model.h).
 */
#include "model.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096

enum { OP_WRITE, OP_TRUNC, OP_EXTEND };

typedef struct op {
    int            type;
    bool           dsync;
    bool           inflight;
    int64_t        off, len;   /* OP_TRUNC: len is the new size; OP_EXTEND:
                                  the size becomes at least off + len */
    const uint8_t *data;       /* OP_WRITE: len bytes, in the journal */
} op;

typedef struct buf {
    uint8_t *p;
    size_t   size, cap;
} buf;

typedef struct obj obj;
typedef struct dent {
    char *name;
    obj  *o;
} dent;
typedef struct dir {
    dent  *v;
    size_t n, cap;
} dir;

struct obj {
    bool     is_dir;
    bool     mmapw;       /* mapped shared and writable: a volatile file */
    uint64_t ino;
    char    *name;        /* the name it was created with */
    buf      d;           /* durable contents */
    op      *p;           /* pending operations since the last sync */
    size_t   np, pcap;
    dir      vol, dur;    /* directory entries: current, durable */
};

typedef struct rec {
    pc_rec         h;
    const uint8_t *payload;
    bool           ended;   /* WRITE_BEGIN: its END was seen */
} rec;

typedef struct oidmap {
    uint64_t oid;
    obj     *o;
} oidmap;

/* A name change in flight at the kill (it may or may not have happened). */
typedef struct flying {
    uint16_t type;       /* PC_OPEN (O_CREAT), PC_MKDIR, PC_UNLINK, PC_RMDIR, PC_RENAME */
    char    *path, *path2;
} flying;

struct pc_model {
    char    *root;
    size_t   rootlen;
    uint8_t *j;
    size_t   jlen;
    obj    **objs;
    size_t   nobj, cobj;
    obj     *rootobj;
    oidmap  *oids;
    size_t   noid, coid;
    flying  *fly;
    size_t   nfly;
    pc_stats st;
};

/* ---------------------------------------------------------------- helpers */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "powercut: out of memory\n");
        abort();
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "powercut: out of memory\n");
        abort();
    }
    return d;
}

static void problem(pc_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(pc_model *m, const char *fmt, ...)
{
    if (m->st.inconsistencies++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->st.first_problem, sizeof m->st.first_problem, fmt, ap);
        va_end(ap);
    }
}

static uint64_t mix(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return n ? mix(s) % n : 0;
}

static void buf_resize(buf *b, size_t n)
{
    if (n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < n)
            c *= 2;
        b->p = xrealloc(b->p, c);
        b->cap = c;
    }
    if (n > b->size)
        memset(b->p + b->size, 0, n - b->size);
    b->size = n;
}

static void buf_copy(buf *dst, const buf *src)
{
    dst->size = 0;
    buf_resize(dst, src->size);
    if (src->size)
        memcpy(dst->p, src->p, src->size);
}

/* Applies o to b; a write only its first `part` bytes (part < 0: all). */
static void op_apply(buf *b, const op *o, int64_t part)
{
    switch (o->type) {
    case OP_WRITE: {
        int64_t n = part < 0 || part > o->len ? o->len : part;
        if (n <= 0)
            return;
        if ((size_t)(o->off + n) > b->size)
            buf_resize(b, (size_t)(o->off + n));
        memcpy(b->p + o->off, o->data, (size_t)n);
        return;
    }
    case OP_TRUNC:
        if ((size_t)o->len < b->size)
            b->size = (size_t)o->len;
        else
            buf_resize(b, (size_t)o->len);
        return;
    case OP_EXTEND:
        if ((size_t)(o->off + o->len) > b->size)
            buf_resize(b, (size_t)(o->off + o->len));
        return;
    }
}

/* ---------------------------------------------------------------- dirs */

static ssize_t dir_find(const dir *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

static void dir_set(dir *d, const char *name, obj *o)
{
    ssize_t i = dir_find(d, name);
    if (i >= 0) {
        d->v[i].o = o;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 8;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n++] = (dent){ xstrdup(name), o };
}

static bool dir_del(dir *d, const char *name)
{
    ssize_t i = dir_find(d, name);
    if (i < 0)
        return false;
    free(d->v[i].name);
    d->v[i] = d->v[--d->n];
    return true;
}

static void dir_free(dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].name);
    free(d->v);
    *d = (dir){ 0 };
}

static void dir_copy(dir *dst, const dir *src)
{
    dir_free(dst);
    for (size_t i = 0; i < src->n; i++)
        dir_set(dst, src->v[i].name, src->v[i].o);
}

/* ---------------------------------------------------------------- objects */

static obj *obj_new(pc_model *m, bool is_dir, const char *name, uint64_t ino)
{
    obj *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    o->is_dir = is_dir;
    o->ino = ino;
    o->name = xstrdup(name);
    if (m->nobj == m->cobj) {
        m->cobj = m->cobj ? 2 * m->cobj : 64;
        m->objs = xrealloc(m->objs, m->cobj * sizeof *m->objs);
    }
    m->objs[m->nobj++] = o;
    return o;
}

static void pend(obj *o, op x)
{
    if (o->np == o->pcap) {
        o->pcap = o->pcap ? 2 * o->pcap : 16;
        o->p = xrealloc(o->p, o->pcap * sizeof *o->p);
    }
    o->p[o->np++] = x;
}

/* Everything pending becomes durable (fsync/fdatasync of the file). */
static void file_sync(obj *o)
{
    for (size_t i = 0; i < o->np; i++)
        op_apply(&o->d, &o->p[i], -1);
    o->np = 0;
}

/* A write that is durable when it returns (O_DSYNC): its bytes go to D.
 * Earlier pending writes must not later overwrite them, so they lose the
 * overlap. (Pending size changes are made durable first: an O_DSYNC write
 * carries the size it needs, and no watched program mixes the two.) */
static void dsync_write(obj *o, const op *w)
{
    bool sizes = false;
    for (size_t i = 0; i < o->np; i++)
        sizes |= o->p[i].type != OP_WRITE;
    if (sizes) {
        file_sync(o);
    } else {
        int64_t a = w->off, b = w->off + w->len;
        for (size_t i = 0; i < o->np; i++) {
            op *p = &o->p[i];
            int64_t pa = p->off, pb = p->off + p->len;
            if (pb <= a || pa >= b)
                continue;
            op right = *p;
            bool has_right = pb > b;
            if (has_right) {
                right.data = p->data + (b - pa);
                right.off = b;
                right.len = pb - b;
            }
            if (pa < a) {
                p->len = a - pa;
                if (has_right) {
                    /* keeps order: the right piece goes at the end, which
                     * is fine since the pieces do not overlap each other */
                    pend(o, right);
                    p = &o->p[i];
                }
            } else if (has_right) {
                *p = right;
            } else {
                p->len = 0;     /* wholly overwritten: a no-op */
            }
        }
    }
    op_apply(&o->d, w, -1);
}

static int cmp_oid(const void *a, const void *b)
{
    uint64_t x = ((const oidmap *)a)->oid, y = ((const oidmap *)b)->oid;
    return (x > y) - (x < y);
}

static obj *by_oid(pc_model *m, uint64_t oid)
{
    oidmap key = { oid, NULL };
    oidmap *e = bsearch(&key, m->oids, m->noid, sizeof *m->oids, cmp_oid);
    return e ? e->o : NULL;
}

static void add_oid(pc_model *m, uint64_t oid, obj *o)
{
    if (m->noid == m->coid) {
        m->coid = m->coid ? 2 * m->coid : 256;
        m->oids = xrealloc(m->oids, m->coid * sizeof *m->oids);
    }
    /* Replayed in seq order and oid == seq of the OPEN: stays sorted. */
    m->oids[m->noid++] = (oidmap){ oid, o };
}

/* Resolves `path` (absolute, under the root) in the current namespace.
 * Returns the object or NULL; *parent and base[] get the directory and the
 * last name (parent NULL: the path is the root or its parent is unknown). */
static obj *resolve(pc_model *m, const char *path, obj **parent, char *base, size_t blen)
{
    *parent = NULL;
    base[0] = 0;
    if (strncmp(path, m->root, m->rootlen) != 0 ||
        (path[m->rootlen] != 0 && path[m->rootlen] != '/'))
        return NULL;
    const char *p = path + m->rootlen;
    obj *cur = m->rootobj;
    while (*p == '/')
        p++;
    if (!*p)
        return cur;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n >= blen)
            return NULL;
        memcpy(base, p, n);
        base[n] = 0;
        while (e && *e == '/')
            e++;
        if (!e || !*e) {
            if (!cur || !cur->is_dir)
                return NULL;
            *parent = cur;
            ssize_t i = dir_find(&cur->vol, base);
            return i >= 0 ? cur->vol.v[i].o : NULL;
        }
        if (!cur || !cur->is_dir)
            return NULL;
        ssize_t i = dir_find(&cur->vol, base);
        cur = i >= 0 ? cur->vol.v[i].o : NULL;
        if (!cur)
            return NULL;
        p = e;
    }
}

/* ---------------------------------------------------------------- replay */

static int cmp_rec(const void *a, const void *b)
{
    uint64_t x = ((const rec *)a)->h.seq, y = ((const rec *)b)->h.seq;
    return (x > y) - (x < y);
}

static rec *find_rec(rec *v, size_t n, uint64_t seq)
{
    rec key;
    key.h.seq = seq;
    return bsearch(&key, v, n, sizeof *v, cmp_rec);
}

static void replay_one(pc_model *m, rec *r, rec *all, size_t nall)
{
    const pc_rec *h = &r->h;
    char path[4096], base[256];
    obj *parent, *o;
    size_t plen = h->len < sizeof path - 1 ? h->len : sizeof path - 1;
    switch (h->type) {
    case PC_OPEN:
    case PC_MKDIR:
    case PC_UNLINK:
    case PC_RMDIR:
    case PC_TRUNC_PATH:
        memcpy(path, r->payload, plen);
        path[plen] = 0;
        break;
    default:
        break;
    }
    m->st.records++;
    if (h->ref && h->type != PC_WRITE_END && h->type != PC_BEGIN) {
        rec *b = find_rec(all, nall, h->ref);
        if (!b || b->h.type != PC_BEGIN)
            problem(m, "record %llu closes no call", (unsigned long long)h->seq);
        else
            b->ended = true;
    }
    switch (h->type) {
    case PC_BEGIN:
    case PC_FAILED:
        return;     /* bookkeeping: see pc_model_load */
    case PC_OPEN:
        m->st.opens++;
        o = resolve(m, path, &parent, base, sizeof base);
        if (!o) {
            if (!parent || !(h->oflags & O_CREAT) || (h->flags & PC_F_DIR)) {
                problem(m, "open of %s, which the model does not have", path);
                return;
            }
            o = obj_new(m, false, base, h->ino);
            dir_set(&parent->vol, base, o);
            m->st.creates++;
        } else {
            if (o->ino == 0)
                o->ino = h->ino;
            if (o->ino != h->ino)
                problem(m, "open of %s: inode %llu, the model has %llu", path,
                        (unsigned long long)h->ino, (unsigned long long)o->ino);
            if (o->is_dir != !!(h->flags & PC_F_DIR))
                problem(m, "open of %s: file/directory mismatch", path);
        }
        if ((h->oflags & O_TRUNC) && !o->is_dir)
            pend(o, (op){ .type = OP_TRUNC, .len = 0 });
        add_oid(m, h->oid, o);
        return;
    case PC_MKDIR:
        m->st.mkdirs++;
        o = resolve(m, path, &parent, base, sizeof base);
        if (o || !parent) {
            problem(m, "mkdir %s: %s", path, o ? "exists in the model" : "no parent");
            return;
        }
        dir_set(&parent->vol, base, obj_new(m, true, base, 0));
        return;
    case PC_UNLINK:
    case PC_RMDIR:
        m->st.unlinks++;
        o = resolve(m, path, &parent, base, sizeof base);
        if (!o || !parent || o->is_dir != (h->type == PC_RMDIR)) {
            problem(m, "unlink/rmdir %s: not in the model", path);
            return;
        }
        dir_del(&parent->vol, base);
        return;
    case PC_RENAME: {
        m->st.renames++;
        const char *nul = memchr(r->payload, 0, h->len);
        if (!nul) {
            problem(m, "bad rename record");
            return;
        }
        char to[4096], tbase[256];
        size_t n1 = (size_t)(nul - (const char *)r->payload);
        size_t n2 = h->len - n1 - 1;
        if (n1 >= sizeof path || n2 >= sizeof to) {
            problem(m, "rename: path too long");
            return;
        }
        memcpy(path, r->payload, n1);
        path[n1] = 0;
        memcpy(to, nul + 1, n2);
        to[n2] = 0;
        obj *tparent;
        o = resolve(m, path, &parent, base, sizeof base);
        resolve(m, to, &tparent, tbase, sizeof tbase);
        if (!o || !parent || !tparent) {
            problem(m, "rename %s -> %s: not in the model", path, to);
            return;
        }
        dir_del(&parent->vol, base);
        dir_set(&tparent->vol, tbase, o);
        return;
    }
    case PC_WRITE_BEGIN:
        return;     /* takes effect at its END */
    case PC_WRITE_END: {
        rec *b = find_rec(all, nall, h->ref);
        if (!b || b->h.type != PC_WRITE_BEGIN) {
            problem(m, "write end without its begin");
            return;
        }
        b->ended = true;
        o = by_oid(m, h->oid);
        if (!o || o->is_dir) {
            problem(m, "write to an unknown open file");
            return;
        }
        if (h->n < 0) {
            m->st.failed_writes++;
            return;
        }
        if (h->off < 0) {
            problem(m, "write at an unknown position");
            return;
        }
        op w = { .type = OP_WRITE, .off = h->off, .len = h->n, .data = b->payload,
                 .dsync = (b->h.flags & PC_F_DSYNC) != 0 };
        m->st.writes++;
        if (w.dsync) {
            m->st.dsync_writes++;
            dsync_write(o, &w);
        } else {
            pend(o, w);
        }
        return;
    }
    case PC_TRUNC:
    case PC_TRUNC_PATH:
        m->st.truncs++;
        o = h->type == PC_TRUNC ? by_oid(m, h->oid) : resolve(m, path, &parent, base, sizeof base);
        if (!o || o->is_dir) {
            problem(m, "truncate of an unknown file");
            return;
        }
        pend(o, (op){ .type = OP_TRUNC, .len = h->n });
        return;
    case PC_FALLOC:
        m->st.fallocs++;
        o = by_oid(m, h->oid);
        if (!o || o->is_dir) {
            problem(m, "fallocate of an unknown file");
            return;
        }
        if (h->flags == 0)
            pend(o, (op){ .type = OP_EXTEND, .off = h->off, .len = h->n });
        else if (h->flags != 1 /* FALLOC_FL_KEEP_SIZE: no visible change */)
            m->st.unmodeled++;
        return;
    case PC_FSYNC:
        o = by_oid(m, h->oid);
        if (!o) {
            problem(m, "fsync of an unknown open file");
            return;
        }
        if (o->is_dir) {
            m->st.dir_syncs++;
            dir_copy(&o->dur, &o->vol);
        } else {
            m->st.file_syncs++;
            file_sync(o);
        }
        return;
    case PC_FSYNC_FAILED:
        m->st.failed_syncs++;
        return;
    case PC_SYNC_RANGE:
        m->st.sync_ranges++;
        return;
    case PC_SYNC_ALL:
        m->st.sync_alls++;
        for (size_t i = 0; i < m->nobj; i++) {
            if (m->objs[i]->is_dir)
                dir_copy(&m->objs[i]->dur, &m->objs[i]->vol);
            else
                file_sync(m->objs[i]);
        }
        return;
    case PC_MMAP_WRITE:
        m->st.mmap_writes++;
        if ((o = by_oid(m, h->oid)) != NULL)
            o->mmapw = true;
        return;
    case PC_MSYNC:
        m->st.msyncs_of_mapped++;
        return;
    case PC_UNMODELED:
        m->st.unmodeled++;
        return;
    default:
        problem(m, "unknown record type %u", (unsigned)h->type);
        return;
    }
}

static void in_flight(pc_model *m, const rec *r)
{
    const pc_rec *h = &r->h;
    char path[4096], base[256];
    obj *parent, *o = NULL;
    size_t n1 = h->len, n2 = 0;
    const uint8_t *nul = memchr(r->payload, 0, h->len);
    if (nul) {
        n1 = (size_t)(nul - r->payload);
        n2 = h->len - n1 - 1;
    }
    if (n1 >= sizeof path || n2 >= sizeof path) {
        problem(m, "in-flight call: path too long");
        return;
    }
    memcpy(path, r->payload, n1);
    path[n1] = 0;
    m->st.inflight_calls++;
    switch (h->ref) {
    case PC_TRUNC:
    case PC_FALLOC:
        o = by_oid(m, h->oid);
        break;
    case PC_TRUNC_PATH:
    case PC_OPEN:
        o = resolve(m, path, &parent, base, sizeof base);
        break;
    default:
        break;
    }
    if (o && o->is_dir)
        o = NULL;
    switch (h->ref) {
    case PC_TRUNC:
    case PC_TRUNC_PATH:
        if (o)
            pend(o, (op){ .type = OP_TRUNC, .len = h->n, .inflight = true });
        return;
    case PC_FALLOC:
        if (o && h->flags == 0)
            pend(o, (op){ .type = OP_EXTEND, .off = h->off, .len = h->n, .inflight = true });
        return;
    case PC_OPEN:
        if (o && (h->oflags & O_TRUNC))
            pend(o, (op){ .type = OP_TRUNC, .len = 0, .inflight = true });
        if (o || !(h->oflags & O_CREAT))
            return;
        break;      /* a create: a name change */
    case PC_MKDIR:
    case PC_UNLINK:
    case PC_RMDIR:
    case PC_RENAME:
        break;
    default:
        problem(m, "in-flight call of unknown type %llu", (unsigned long long)h->ref);
        return;
    }
    m->fly = xrealloc(m->fly, (m->nfly + 1) * sizeof *m->fly);
    flying *f = &m->fly[m->nfly++];
    f->type = (uint16_t)h->ref;
    f->path = xstrdup(path);
    f->path2 = NULL;
    if (nul) {
        f->path2 = xrealloc(NULL, n2 + 1);
        memcpy(f->path2, nul + 1, n2);
        f->path2[n2] = 0;
    }
}

pc_model *pc_model_load(const char *journal_dir, const char *root)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/journal", journal_dir);
    pc_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->root = xstrdup(root);
    m->rootlen = strlen(root);
    m->rootobj = obj_new(m, true, "", 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 && errno == ENOENT) {
        return m;       /* killed before the first record */
    }
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        pc_model_free(m);
        return NULL;
    }
    m->jlen = (size_t)st.st_size;
    m->j = xrealloc(NULL, m->jlen);
    size_t got = 0;
    while (got < m->jlen) {
        ssize_t r = read(fd, m->j + got, m->jlen - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    m->jlen = got;

    /* Split into records; stop at the first one that is not whole. */
    rec *v = NULL;
    size_t n = 0, cap = 0, pos = 0;
    while (pos + sizeof(pc_rec) + sizeof(pc_tail) <= m->jlen) {
        rec r = { .ended = false };
        memcpy(&r.h, m->j + pos, sizeof r.h);
        if (r.h.magic != PC_MAGIC || r.h.type == 0 || r.h.type >= PC_TYPE_MAX ||
            r.h.len > m->jlen - pos - sizeof(pc_rec) - sizeof(pc_tail))
            break;
        pc_tail t;
        memcpy(&t, m->j + pos + sizeof(pc_rec) + r.h.len, sizeof t);
        if (t.magic != PC_TAIL_MAGIC || t.seq_lo != (uint32_t)r.h.seq)
            break;
        r.payload = m->j + pos + sizeof(pc_rec);
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n++] = r;
        pos += sizeof(pc_rec) + r.h.len + sizeof(pc_tail);
    }
    m->st.torn_tail = m->jlen - pos;
    qsort(v, n, sizeof *v, cmp_rec);
    for (size_t i = 0; i < n; i++)
        replay_one(m, &v[i], v, n);
    /* Writes issued but never returned: in flight at the kill, so pending,
     * whatever syncs completed meanwhile. */
    for (size_t i = 0; i < n; i++) {
        if (v[i].h.type != PC_WRITE_BEGIN || v[i].ended)
            continue;
        obj *o = by_oid(m, v[i].h.oid);
        if (!o || o->is_dir || v[i].h.off < 0)
            continue;
        m->st.inflight_writes++;
        pend(o, (op){ .type = OP_WRITE, .off = v[i].h.off, .len = v[i].h.n,
                      .data = v[i].payload, .dsync = (v[i].h.flags & PC_F_DSYNC) != 0,
                      .inflight = true });
    }
    /* Other calls in flight: a size change is pending like a write; a name
     * change is not durable either way (no directory sync can follow it),
     * so it only matters for the comparison with the real tree. */
    for (size_t i = 0; i < n; i++)
        if (v[i].h.type == PC_BEGIN && !v[i].ended)
            in_flight(m, &v[i]);
    free(v);
    return m;
}

void pc_model_free(pc_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nobj; i++) {
        obj *o = m->objs[i];
        free(o->name);
        free(o->d.p);
        free(o->p);
        dir_free(&o->vol);
        dir_free(&o->dur);
        free(o);
    }
    free(m->objs);
    free(m->oids);
    for (size_t i = 0; i < m->nfly; i++) {
        free(m->fly[i].path);
        free(m->fly[i].path2);
    }
    free(m->fly);
    free(m->j);
    free(m->root);
    free(m);
}

const pc_stats *pc_model_stats(const pc_model *m)
{
    return &m->st;
}

/* ---------------------------------------------------------------- self-check */

static bool is_volatile(const obj *o)
{
    return o->mmapw || strcmp(o->name, "head") == 0 || strcmp(o->name, "lock.mdb") == 0;
}

static bool read_file(const char *path, buf *out)
{
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    buf_resize(out, (size_t)st.st_size);
    size_t got = 0;
    while (got < out->size) {
        ssize_t r = pread(fd, out->p + got, out->size - got, (off_t)got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    out->size = got;
    return true;
}

/* Whether real == c outside the bytes an in-flight write covers. */
static bool same_but_inflight(const obj *o, const buf *real, const buf *c)
{
    if (real->size != c->size)
        return false;
    for (size_t i = 0; i < real->size; i++) {
        if (real->p[i] == c->p[i])
            continue;
        bool in = false;
        for (size_t k = 0; k < o->np && !in; k++)
            in = o->p[k].inflight && o->p[k].type == OP_WRITE && (int64_t)i >= o->p[k].off &&
                 (int64_t)i < o->p[k].off + o->p[k].len;
        if (!in)
            return false;
    }
    return true;
}

/* Whether the real file is the model's current contents with any subset of
 * the calls in flight at the kill applied (a write possibly in part). */
static bool content_ok(const obj *o, const buf *real)
{
    size_t fly[8], nf = 0;
    for (size_t k = 0; k < o->np; k++)
        if (o->p[k].inflight && nf < 8)
            fly[nf++] = k;
    buf c = { 0 };
    bool ok = false;
    for (unsigned mask = 0; !ok && mask < (1u << nf); mask++) {
        buf_copy(&c, &o->d);
        for (size_t k = 0, f = 0; k < o->np; k++) {
            if (f < nf && fly[f] == k) {
                if (mask & (1u << f))
                    op_apply(&c, &o->p[k], -1);
                f++;
            } else if (!o->p[k].inflight) {
                op_apply(&c, &o->p[k], -1);
            }
        }
        ok = (real->size == c.size && (c.size == 0 || memcmp(real->p, c.p, c.size) == 0)) ||
             same_but_inflight(o, real, &c);
    }
    free(c.p);
    return ok;
}

/* Whether a name change in flight explains `path` being there (present)
 * or missing (!present) in the real tree. */
static bool flying_explains(const pc_model *m, const char *path, bool present)
{
    for (size_t i = 0; i < m->nfly; i++) {
        const flying *f = &m->fly[i];
        if (present && (f->type == PC_OPEN || f->type == PC_MKDIR) && strcmp(f->path, path) == 0)
            return true;
        if (present && f->type == PC_RENAME && f->path2 && strcmp(f->path2, path) == 0)
            return true;
        if (!present && (f->type == PC_UNLINK || f->type == PC_RMDIR || f->type == PC_RENAME) &&
            strcmp(f->path, path) == 0)
            return true;
    }
    return false;
}

static int check_dir(const pc_model *m, const obj *d, const char *real, char *msg, size_t len)
{
    int bad = 0;
    char p[4096];
    for (size_t i = 0; i < d->vol.n; i++) {
        const obj *o = d->vol.v[i].o;
        if (snprintf(p, sizeof p, "%s/%s", real, d->vol.v[i].name) >= (int)sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) != 0 || !!S_ISDIR(st.st_mode) != o->is_dir) {
            bool gone = errno == ENOENT;
            if (gone && flying_explains(m, p, false))
                continue;
            if (!bad++ && msg)
                snprintf(msg, len, "%s: %s", p, gone ? "missing" : "type differs");
            continue;
        }
        if (o->is_dir) {
            bad += check_dir(m, o, p, bad ? NULL : msg, len);
            continue;
        }
        if (is_volatile(o))
            continue;
        buf r = { 0 };
        bool ok = read_file(p, &r) && content_ok(o, &r);
        if (!ok && !bad++ && msg)
            snprintf(msg, len, "%s: contents differ from the model (real %zu bytes, durable "
                     "%zu, %zu pending operations)", p, r.size, o->d.size, o->np);
        free(r.p);
    }
    /* And nothing the model does not know. */
    DIR *dd = opendir(real);
    if (!dd) {
        if (!bad++ && msg)
            snprintf(msg, len, "%s: cannot list", real);
        return bad;
    }
    struct dirent *de;
    while ((de = readdir(dd)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            dir_find(&d->vol, de->d_name) >= 0)
            continue;
        if (snprintf(p, sizeof p, "%s/%s", real, de->d_name) < (int)sizeof p &&
            flying_explains(m, p, true))
            continue;
        if (!bad++ && msg)
            snprintf(msg, len, "%s/%s: not in the model", real, de->d_name);
    }
    closedir(dd);
    return bad;
}

int pc_model_selfcheck(const pc_model *m, const char *real_root, char *msg, size_t len)
{
    if (msg && len)
        msg[0] = 0;
    return check_dir(m, m->rootobj, real_root, msg, len);
}

/* ---------------------------------------------------------------- images */

typedef struct fileref {
    const obj *o;
    char      *rel;
    buf        content;
} fileref;

typedef struct walk {
    fileref *v;
    size_t   n, cap;
} walk;

static int write_all(const char *path, const buf *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < b->size) {
        ssize_t w = write(fd, b->p + done, b->size - done);
        if (w <= 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    return close(fd);
}

/* Collects the durable tree: directories are made at once, files listed. */
static int collect(const obj *d, const char *dest, const char *rel, walk *w)
{
    for (size_t i = 0; i < d->dur.n; i++) {
        const obj *o = d->dur.v[i].o;
        char r[4096], p[4096];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", d->dur.v[i].name) >=
                (int)sizeof r ||
            snprintf(p, sizeof p, "%s/%s", dest, r) >= (int)sizeof p) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (o->is_dir) {
            if (mkdir(p, 0750) != 0 && errno != EEXIST)
                return -1;
            if (collect(o, dest, r, w) != 0)
                return -1;
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 32;
            w->v = xrealloc(w->v, w->cap * sizeof *w->v);
        }
        w->v[w->n++] = (fileref){ o, xstrdup(r), { 0 } };
    }
    return 0;
}

/* Whether o's pending op k may be damaged (kinds 3, 4). */
static bool damageable(const op *x)
{
    return x->type == OP_WRITE && !x->dsync && x->len > 0;
}

/* Kind 2's base: a prefix of P, the operation after it applied in part. */
static void apply_prefix(const obj *o, buf *b, uint64_t *rng, pc_image *img)
{
    size_t k;
    switch (below(rng, 4)) {
    case 0:  k = 0; break;
    case 1:  k = o->np; break;
    default: k = (size_t)below(rng, o->np + 1); break;
    }
    for (size_t i = 0; i < o->np; i++) {
        const op *x = &o->p[i];
        int64_t n = x->type == OP_WRITE ? x->len : 0;
        if (i < k) {
            op_apply(b, x, -1);
            img->unsynced_kept += n;
        } else if (i == k) {
            int64_t part;
            if (x->type != OP_WRITE)
                part = below(rng, 2) ? -1 : 0;
            else if (x->dsync)
                part = below(rng, 2) ? x->len : 0;
            else {
                part = (int64_t)below(rng, (uint64_t)x->len + 1);
                if (below(rng, 2)) {
                    /* torn at a page boundary of the file */
                    int64_t end = (x->off + part) / PAGE * PAGE;
                    part = end > x->off ? end - x->off : 0;
                }
            }
            if (x->type != OP_WRITE) {
                if (part)
                    op_apply(b, x, -1);
            } else {
                op_apply(b, x, part);
                img->unsynced_kept += part;
                img->unsynced_dropped += n - part;
            }
        } else {
            img->unsynced_dropped += n;
        }
    }
}

static void damage(const obj *o, buf *b, int kind, uint64_t *rng)
{
    size_t cand = 0;
    for (size_t i = 0; i < o->np; i++)
        cand += damageable(&o->p[i]);
    int times = kind == 3 ? 1 + (int)below(rng, 3) : 1;
    for (int t = 0; t < times; t++) {
        size_t pick = (size_t)below(rng, cand), i = 0;
        for (;; i++)
            if (damageable(&o->p[i]) && pick-- == 0)
                break;
        const op *x = &o->p[i];
        int64_t a, e;
        if (kind == 3) {
            int64_t len = 1 + (int64_t)below(rng, (uint64_t)(x->len < 8192 ? x->len : 8192));
            a = x->off + (int64_t)below(rng, (uint64_t)(x->len - len + 1));
            e = a + len;
        } else {
            int64_t at = x->off + (int64_t)below(rng, (uint64_t)x->len);
            int64_t pg = at / PAGE * PAGE;
            a = pg > x->off ? pg : x->off;
            e = pg + PAGE < x->off + x->len ? pg + PAGE : x->off + x->len;
        }
        if ((size_t)e > b->size)
            buf_resize(b, (size_t)e);
        for (int64_t k = a; k < e; k++)
            b->p[k] = kind == 3 ? (uint8_t)mix(rng) : 0;
    }
}

int pc_model_build(const pc_model *m, const char *dest, pc_image *img)
{
    uint64_t rng = img->seed * 0x2545F4914F6CDD1DULL + 1;
    walk w = { 0 };
    img->files = img->files_pending = img->files_damaged = 0;
    img->watch_pending = img->watch_damaged = 0;
    img->unsynced_kept = img->unsynced_dropped = 0;
    img->volatile_paths = NULL;
    img->nvolatile = 0;
    int rc = collect(m->rootobj, dest, "", &w);
    /* Contents: D, then per kind. */
    size_t *eligible = xrealloc(NULL, (w.n + 1) * sizeof *eligible);
    size_t ne = 0;
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        const obj *o = w.v[i].o;
        buf *b = &w.v[i].content;
        buf_copy(b, &o->d);
        if (is_volatile(o) || o->np == 0)
            continue;
        img->files_pending++;
        if (img->watch && strcmp(o->name, img->watch) == 0)
            img->watch_pending++;
        if (img->kind >= 2)
            apply_prefix(o, b, &rng, img);
        else
            for (size_t k = 0; k < o->np; k++)
                img->unsynced_dropped += o->p[k].type == OP_WRITE ? o->p[k].len : 0;
        bool any = false;
        for (size_t k = 0; k < o->np && !any; k++)
            any = damageable(&o->p[k]);
        if (any)
            eligible[ne++] = i;
    }
    if (rc == 0 && img->kind >= 3 && ne > 0) {
        /* Each eligible file with probability 1/2, at least one. */
        size_t forced = (size_t)below(&rng, ne);
        for (size_t k = 0; k < ne; k++) {
            if (k != forced && below(&rng, 2))
                continue;
            fileref *f = &w.v[eligible[k]];
            damage(f->o, &f->content, img->kind, &rng);
            img->files_damaged++;
            if (img->watch && strcmp(f->o->name, img->watch) == 0)
                img->watch_damaged++;
        }
    }
    free(eligible);
    for (size_t i = 0; rc == 0 && i < w.n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dest, w.v[i].rel);
        rc = write_all(p, &w.v[i].content);
        img->files++;
        if (rc == 0 && is_volatile(w.v[i].o)) {
            img->volatile_paths = xrealloc(img->volatile_paths,
                                           (size_t)(img->nvolatile + 2) * sizeof(char *));
            img->volatile_paths[img->nvolatile++] = xstrdup(w.v[i].rel);
            img->volatile_paths[img->nvolatile] = NULL;
        }
    }
    for (size_t i = 0; i < w.n; i++) {
        free(w.v[i].rel);
        free(w.v[i].content.p);
    }
    free(w.v);
    return rc;
}

void pc_image_clear(pc_image *img)
{
    for (int i = 0; i < img->nvolatile; i++)
        free(img->volatile_paths[i]);
    free(img->volatile_paths);
    img->volatile_paths = NULL;
    img->nvolatile = 0;
}
