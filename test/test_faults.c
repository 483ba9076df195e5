/*
 * test_faults.c -- I/O faults: every system call of the write, sync, open,
 * roll, cut, read and repair paths failing at the k-th call, once or from
 * then on; a fault in the clean-up of another; EINTR and short writes;
 * fdatasync failing in the group-commit leader with several threads and
 * several processes; a real full disk (a tmpfs and a loop-mounted ext4 of
 * the test's own).
 *
 * How the faults get in: this program is linked with -Wl,--wrap for the
 * calls listed in mk/faults.mk (pwrite, pread, fsync, ftruncate, fallocate,
 * open, openat, mkdirat, unlinkat, mmap; malloc & co. only to count blocks),
 * so that libulog.a's calls to them land in the __wrap_* functions below;
 * fdatasync goes through the library's own hook, ulog__fdatasync. Each call
 * is counted per kind in memory shared with forked children, and an armed
 * fault fails calls [at, at + count) of one kind (count LONG_MAX: from then
 * on). Syncs are not passed on to the disk (`fast`): a model of the disk
 * stands in for it (below, "the disk"): a failed sync loses the file's
 * unsynced bytes for good, as DESIGN.md section 4 assumes Linux does, and a
 * simulated power cut at the end of each case zeroes every lost or unsynced
 * byte before recovery reads the log back.
 *
 * What every fault must leave true:
 *   - the call returns 0 or a clear ULOG_E* code for the fault injected;
 *   - nothing crashes, nothing leaks (every block the library allocates is
 *     counted: each case must end with as many as it began with);
 *   - no record whose append failed (offset -1) is ever read (G1a), not in
 *     the same handle, not after a reopen, not after a power cut and
 *     recovery;
 *   - every record acknowledged (offset >= 0) is read back, at its offset,
 *     exactly once, after reopening and after a power cut and recovery;
 *   - once the fault clears the log works again: an append and a read in the
 *     same handle (for a poisoned partition: after the reopen that repairs
 *     it, as DESIGN.md section 4 says), and a subscription that was reading
 *     through the fault goes on with no gap and no duplicate.
 *
 * The sweeps run on a tmpfs of their own when this process may mount one
 * (root, in a private mount namespace: the mount goes away with the
 * process), otherwise where TMPDIR is. The full-disk tests need that mount
 * and are skipped without it, saying why; skipped is not passed.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ================================================================ the wraps */

ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
int     __real_fsync(int fd);
int     __real_ftruncate(int fd, off_t len);
int     __real_fallocate(int fd, int mode, off_t off, off_t len);
int     __real_open(const char *path, int flags, ...);
int     __real_openat(int dfd, const char *path, int flags, ...);
int     __real_mkdirat(int dfd, const char *path, mode_t mode);
int     __real_unlinkat(int dfd, const char *path, int flags);
void   *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void   *__real_malloc(size_t n);
void   *__real_calloc(size_t n, size_t size);
void   *__real_realloc(void *p, size_t n);
char   *__real_strdup(const char *s);
void    __real_free(void *p);

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
int     __wrap_fsync(int fd);
int     __wrap_ftruncate(int fd, off_t len);
int     __wrap_fallocate(int fd, int mode, off_t off, off_t len);
int     __wrap_open(const char *path, int flags, ...);
int     __wrap_openat(int dfd, const char *path, int flags, ...);
int     __wrap_mkdirat(int dfd, const char *path, mode_t mode);
int     __wrap_unlinkat(int dfd, const char *path, int flags);
void   *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void   *__wrap_malloc(size_t n);
void   *__wrap_calloc(size_t n, size_t size);
void   *__wrap_realloc(void *p, size_t n);
char   *__wrap_strdup(const char *s);
void    __wrap_free(void *p);

/* The kinds of calls counted and failed. */
enum {
    F_PWRITE, F_PREAD, F_FSYNC, F_FSYNC_DIR, F_FDATASYNC, F_FTRUNCATE, F_FALLOCATE,
    F_OPEN, F_MKDIR, F_UNLINK, F_MMAP, F_NKINDS
};
static const char *const kind_name[F_NKINDS] = {
    "pwrite", "pread", "fsync", "fsync(dir)", "fdatasync", "ftruncate", "fallocate",
    "open", "mkdirat", "unlinkat", "mmap",
};

/* How an armed call fails. */
enum {
    M_FAIL,        /* -1 with `err` */
    M_EINTR,       /* every other call: -1 with EINTR, nothing done (the caller
                      must retry) */
    M_SHORT,       /* pwrite: writes 1..7 bytes and says so (must be retried) */
    M_TORN,        /* pwrite: the first armed call writes half and says so,
                      the next ones fail with `err` -- a disk filling up */
};

/* A fault: calls [at, at + count) of `kind` fail (count LONG_MAX: from then
 * on), counted from `base`. The second fault of a test waits for the first
 * to fire (base -1 until then) and counts from there: a fault in the
 * clean-up of another. */
typedef struct fault {
    int  kind, mode, err;
    long at, count;
    long base;
} fault;

typedef struct fstate {
    long  calls[F_NKINDS];    /* (a) calls so far, per kind */
    fault f[2];
    int   nf;                 /* armed faults; 0: none */
    long  injected;           /* (a) calls failed (or shortened) so far */
    long  injected2;          /* (a) of them, by the second fault */
    int   fast;               /* syncs are not passed on to the disk */
    int   sync_us;            /* fast: each fdatasync takes this long */
    int   hold;               /* the next fdatasync waits for `release` */
    int   held, release;
    char  path_has[64];       /* open/openat: only paths containing this count */
} fstate;

/* Shared with forked children: one count for every process of a test. */
static fstate *F;
/* The test's own system calls go straight through. */
static _Thread_local int bypass;

static void faults_reset(void)
{
    memset(F, 0, sizeof *F);
    F->fast = 1;
}

static void arm_faults(const fault *f, int n)
{
    __atomic_store_n(&F->nf, 0, __ATOMIC_SEQ_CST);
    for (int k = 0; k < F_NKINDS; k++)
        __atomic_store_n(&F->calls[k], 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&F->injected, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&F->injected2, 0, __ATOMIC_SEQ_CST);
    for (int i = 0; i < n; i++) {
        F->f[i] = f[i];
        F->f[i].base = i == 0 ? 0 : -1;
    }
    __atomic_store_n(&F->nf, n, __ATOMIC_SEQ_CST);
}

static void arm(int kind, int mode, int err, long at, long count)
{
    fault f = { kind, mode, err, at, count, 0 };
    arm_faults(&f, 1);
}

static void disarm(void)
{
    __atomic_store_n(&F->nf, 0, __ATOMIC_SEQ_CST);
    F->path_has[0] = 0;
}

/* Counts a call of `kind`; returns the fault it is to fail by (and in *idx
 * its index among that fault's calls), or NULL. */
static const fault *hit(int kind, long *idx)
{
    if (!F || bypass)
        return NULL;
    long n = __atomic_fetch_add(&F->calls[kind], 1, __ATOMIC_SEQ_CST);
    int nf = __atomic_load_n(&F->nf, __ATOMIC_SEQ_CST);
    for (int i = 0; i < nf; i++) {
        fault *f = &F->f[i];
        long base = __atomic_load_n(&f->base, __ATOMIC_SEQ_CST);
        if (f->kind != kind || base < 0 || n < base + f->at || n - base - f->at >= f->count)
            continue;
        __atomic_add_fetch(&F->injected, 1, __ATOMIC_SEQ_CST);
        if (i == 1)
            __atomic_add_fetch(&F->injected2, 1, __ATOMIC_SEQ_CST);
        /* The first firing starts the second fault's count: its call 0 is
         * the next call of its kind. */
        if (i == 0 && nf > 1) {
            long none = -1;
            __atomic_compare_exchange_n(&F->f[1].base, &none,
                                        __atomic_load_n(&F->calls[F->f[1].kind],
                                                        __ATOMIC_SEQ_CST),
                                        false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        }
        if (idx)
            *idx = n - base - f->at;
        return f;
    }
    return NULL;
}

static long calls_of(int kind)
{
    return __atomic_load_n(&F->calls[kind], __ATOMIC_SEQ_CST);
}

static int fail_with(int err)
{
    errno = err;
    return -1;
}

/* ---------------------------------------------------------------- the disk */

/*
 * What a failed sync does to data, as DESIGN.md section 4 assumes of Linux:
 * the dirty pages it could not write are marked clean -- lost -- and a later
 * sync that "succeeds" does not bring them back; only writing them again
 * does. Kept per file (inode): the lowest byte written since the last
 * successful sync, and the ranges lost. power_cut() then makes every segment
 * file what a power cut at that moment would leave: lost and unsynced bytes
 * read as zeros. (Zeros are one of the things a power cut can leave; the
 * recovery scan treats them as a torn tail.) Directory entries and LMDB are
 * not modelled. In-process: used by the single-process sweeps only.
 */
#define DISK_FILES 256
#define DISK_LOST  8

typedef struct dfile {
    bool    used;
    dev_t   dev;
    ino_t   ino;
    int64_t dirty_lo;                 /* INT64_MAX: nothing unsynced */
    int     nlost;
    int64_t lost[DISK_LOST][2];       /* [lo, hi) */
} dfile;

static dfile disk[DISK_FILES];
static pthread_mutex_t disk_lock = PTHREAD_MUTEX_INITIALIZER;
static int disk_on;                   /* (a) the model is kept */
static int disk_overflow;             /* (a) a table ran out: the test fails */

static void disk_reset(bool on)
{
    pthread_mutex_lock(&disk_lock);
    memset(disk, 0, sizeof disk);
    __atomic_store_n(&disk_overflow, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&disk_on, on, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&disk_lock);
}

/* The file of fd (under disk_lock); NULL for anything but a regular file.
 * A file first seen is taken as durable. */
static dfile *disk_file(int fd, int64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    *size = st.st_size;
    dfile *freeslot = NULL;
    for (int i = 0; i < DISK_FILES; i++) {
        if (disk[i].used && disk[i].dev == st.st_dev && disk[i].ino == st.st_ino)
            return &disk[i];
        if (!disk[i].used && !freeslot)
            freeslot = &disk[i];
    }
    if (!freeslot) {
        __atomic_store_n(&disk_overflow, 1, __ATOMIC_SEQ_CST);
        return NULL;
    }
    *freeslot = (dfile){ true, st.st_dev, st.st_ino, INT64_MAX, 0, { { 0 } } };
    return freeslot;
}

static void lost_add(dfile *f, int64_t lo, int64_t hi)
{
    if (lo >= hi)
        return;
    if (f->nlost == DISK_LOST) {
        __atomic_store_n(&disk_overflow, 1, __ATOMIC_SEQ_CST);
        return;
    }
    f->lost[f->nlost][0] = lo;
    f->lost[f->nlost][1] = hi;
    f->nlost++;
}

/* Takes [lo, hi) out of the lost ranges (written again, or cut off). */
static void lost_remove(dfile *f, int64_t lo, int64_t hi)
{
    int64_t keep[2 * DISK_LOST][2];
    int n = 0;
    for (int i = 0; i < f->nlost; i++) {
        int64_t a = f->lost[i][0], b = f->lost[i][1];
        if (b <= lo || a >= hi) {
            keep[n][0] = a, keep[n][1] = b, n++;
            continue;
        }
        if (a < lo)
            keep[n][0] = a, keep[n][1] = lo, n++;
        if (b > hi)
            keep[n][0] = hi, keep[n][1] = b, n++;
    }
    f->nlost = 0;
    for (int i = 0; i < n; i++)
        lost_add(f, keep[i][0], keep[i][1]);
}

enum { D_WRITE, D_SYNC_OK, D_SYNC_FAILED, D_TRUNCATE, D_CREATE };

static void disk_event(int fd, int what, int64_t a, int64_t b)
{
    if (!__atomic_load_n(&disk_on, __ATOMIC_SEQ_CST) || bypass)
        return;
    pthread_mutex_lock(&disk_lock);
    int64_t size;
    dfile *f = disk_file(fd, &size);
    if (f) {
        switch (what) {
        case D_WRITE:
            lost_remove(f, a, b);
            if (a < f->dirty_lo)
                f->dirty_lo = a;
            break;
        case D_SYNC_OK:
            f->dirty_lo = INT64_MAX;
            break;
        case D_SYNC_FAILED:
            if (f->dirty_lo < size)
                lost_add(f, f->dirty_lo, size);
            f->dirty_lo = INT64_MAX;
            break;
        case D_TRUNCATE:
            lost_remove(f, a, INT64_MAX);
            break;
        case D_CREATE:
            f->nlost = 0;
            f->dirty_lo = INT64_MAX;
            break;
        }
    }
    pthread_mutex_unlock(&disk_lock);
}

static int64_t zeroed_bytes;

static void zero_range(int fd, int64_t lo, int64_t hi)
{
    static const uint8_t zeros[4096];
    for (int64_t pos = lo; pos < hi;) {
        size_t n = hi - pos < (int64_t)sizeof zeros ? (size_t)(hi - pos) : sizeof zeros;
        ssize_t w = __real_pwrite(fd, zeros, n, (off_t)pos);
        cr_assert_gt(w, 0, "power cut: pwrite: %s", strerror(errno));
        pos += w;
        zeroed_bytes += w;
    }
}

static int power_cut_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    size_t len = strlen(path);
    if (flag != FTW_F || !S_ISREG(sb->st_mode) || len < 4 || strcmp(path + len - 4, ".log"))
        return 0;
    for (int i = 0; i < DISK_FILES; i++) {
        dfile *f = &disk[i];
        if (!f->used || f->dev != sb->st_dev || f->ino != sb->st_ino)
            continue;
        int fd = __real_open(path, O_RDWR | O_CLOEXEC);
        cr_assert_geq(fd, 0, "power cut: %s: %s", path, strerror(errno));
        for (int k = 0; k < f->nlost; k++)
            if (f->lost[k][0] < sb->st_size)
                zero_range(fd, f->lost[k][0],
                           f->lost[k][1] < sb->st_size ? f->lost[k][1] : sb->st_size);
        if (f->dirty_lo < sb->st_size)
            zero_range(fd, f->dirty_lo, sb->st_size);
        close(fd);
    }
    return 0;
}

/* A power cut now: no process may have the log open. Returns the bytes
 * that read as zeros afterwards. */
static int64_t power_cut(const char *dir)
{
    cr_assert_eq(__atomic_load_n(&disk_overflow, __ATOMIC_SEQ_CST), 0,
                 "the disk model ran out of room");
    zeroed_bytes = 0;
    pthread_mutex_lock(&disk_lock);
    nftw(dir, power_cut_one, 16, FTW_PHYS);
    pthread_mutex_unlock(&disk_lock);
    disk_reset(__atomic_load_n(&disk_on, __ATOMIC_SEQ_CST));
    return zeroed_bytes;
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    long i;
    const fault *f = hit(F_PWRITE, &i);
    if (f) {
        switch (f->mode) {
        case M_EINTR:
            if (i % 2 == 0)
                return fail_with(EINTR);   /* every other call: the retry goes through */
            break;
        case M_SHORT:
            n = n < 7 ? n : 1 + (size_t)(off % 7);
            break;
        case M_TORN:
            if (i == 0 && n > 1) {
                n /= 2;
                break;
            }
            return fail_with(f->err);
        default:
            return fail_with(f->err);
        }
    }
    ssize_t w = __real_pwrite(fd, buf, n, off);
    if (w > 0)
        disk_event(fd, D_WRITE, (int64_t)off, (int64_t)off + w);
    return w;
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
    long i;
    const fault *f = hit(F_PREAD, &i);
    if (f && f->mode == M_EINTR && i % 2 == 0)
        return fail_with(EINTR);
    if (f && f->mode != M_EINTR)
        return fail_with(f->err);
    return __real_pread(fd, buf, n, off);
}

int __wrap_fsync(int fd)
{
    struct stat st;
    bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    const fault *f = hit(dir ? F_FSYNC_DIR : F_FSYNC, NULL);
    if (f) {
        disk_event(fd, D_SYNC_FAILED, 0, 0);
        return fail_with(f->err);
    }
    int rc = F && F->fast && !bypass ? 0 : __real_fsync(fd);
    disk_event(fd, rc == 0 ? D_SYNC_OK : D_SYNC_FAILED, 0, 0);
    return rc;
}

/* Installed as ulog__fdatasync. */
static int fake_fdatasync(int fd)
{
    if (F && __atomic_exchange_n(&F->hold, 0, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&F->held, 1, __ATOMIC_SEQ_CST);
        while (!__atomic_load_n(&F->release, __ATOMIC_SEQ_CST))
            usleep(100);
    }
    const fault *f = hit(F_FDATASYNC, NULL);
    if (f && F->sync_us)
        usleep((useconds_t)F->sync_us);   /* failing takes a disk as long */
    if (f) {
        disk_event(fd, D_SYNC_FAILED, 0, 0);
        return fail_with(f->err);
    }
    int rc = F && F->fast && !bypass ? 0 : fdatasync(fd);
    if (F && F->fast && F->sync_us)
        usleep((useconds_t)F->sync_us);   /* a disk: appenders gather meanwhile */
    disk_event(fd, rc == 0 ? D_SYNC_OK : D_SYNC_FAILED, 0, 0);
    return rc;
}

int __wrap_ftruncate(int fd, off_t len)
{
    const fault *f = hit(F_FTRUNCATE, NULL);
    if (f)
        return fail_with(f->err);
    int rc = __real_ftruncate(fd, len);
    if (rc == 0)
        disk_event(fd, D_TRUNCATE, (int64_t)len, 0);
    return rc;
}

int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
    const fault *f = hit(F_FALLOCATE, NULL);
    return f ? fail_with(f->err) : __real_fallocate(fd, mode, off, len);
}

static bool path_counts(const char *path)
{
    return !F || !F->path_has[0] || (path && strstr(path, F->path_has));
}

static mode_t mode_arg(int flags, va_list ap)
{
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
        return (mode_t)va_arg(ap, int);
    return 0;
}

int __wrap_open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const fault *f = path_counts(path) ? hit(F_OPEN, NULL) : NULL;
    if (f)
        return fail_with(f->err);
    int fd = __real_open(path, flags, mode);
    if (fd >= 0 && (flags & O_TRUNC))
        disk_event(fd, D_CREATE, 0, 0);
    return fd;
}

int __wrap_openat(int dfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    const fault *f = path_counts(path) ? hit(F_OPEN, NULL) : NULL;
    if (f)
        return fail_with(f->err);
    int fd = __real_openat(dfd, path, flags, mode);
    if (fd >= 0 && (flags & O_TRUNC))
        disk_event(fd, D_CREATE, 0, 0);
    return fd;
}

int __wrap_mkdirat(int dfd, const char *path, mode_t mode)
{
    const fault *f = hit(F_MKDIR, NULL);
    return f ? fail_with(f->err) : __real_mkdirat(dfd, path, mode);
}

int __wrap_unlinkat(int dfd, const char *path, int flags)
{
    const fault *f = hit(F_UNLINK, NULL);
    return f ? fail_with(f->err) : __real_unlinkat(dfd, path, flags);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    const fault *f = fd >= 0 ? hit(F_MMAP, NULL) : NULL;
    if (f) {
        errno = f->err;
        return MAP_FAILED;
    }
    return __real_mmap(addr, len, prot, flags, fd, off);
}

/*
 * Leaks: the library's allocations are counted too (not failed: that is
 * test_alloc.c), every block allocated and not yet freed, so that a case
 * can check it left none behind -- in every build, whatever LeakSanitizer's
 * suppressions hide.
 */
static long live;

static void *counted(void *p)
{
    if (p)
        __atomic_add_fetch(&live, 1, __ATOMIC_SEQ_CST);
    return p;
}

void *__wrap_malloc(size_t n)
{
    return counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    return counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    void *q = __real_realloc(p, n);
    if (!p)
        counted(q);
    else if (!q && n == 0)
        __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
    return q;
}

char *__wrap_strdup(const char *s)
{
    return counted(__real_strdup(s));
}

void __wrap_free(void *p)
{
    if (p)
        __atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
    __real_free(p);
}

static long live_now(void)
{
    return __atomic_load_n(&live, __ATOMIC_SEQ_CST);
}

/* ================================================================ suite */

static char root[256];
static bool root_mounted;

/* This process's own mount namespace, with no propagation to the host, so
 * that a mount made here goes away with the process whatever happens to
 * it. 0, or -1 with the reason in why. */
static int private_namespace(char *why, size_t n)
{
    static int done;            /* 1 done, -1 failed */
    static char reason[160];
    if (!done) {
        if (unshare(CLONE_NEWNS) != 0)
            snprintf(reason, sizeof reason, "unshare(CLONE_NEWNS): %s", strerror(errno));
        else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            snprintf(reason, sizeof reason, "mount --make-rprivate /: %s", strerror(errno));
        done = reason[0] ? -1 : 1;
    }
    snprintf(why, n, "%s", reason);
    return done == 1 ? 0 : -1;
}

/* Mounts a tmpfs of `size` at dir: 0, or -1 with the reason in why. */
static int mount_tmpfs(const char *dir, const char *size, char *why, size_t n)
{
    if (private_namespace(why, n) != 0)
        return -1;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s,mode=0700", size);
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
        snprintf(why, n, "mount -t tmpfs -o %s: %s", opts, strerror(errno));
        return -1;
    }
    return 0;
}

static void faults_init(void)
{
    make_tmpdir(root, sizeof root, "faults");
    F = mmap(NULL, sizeof *F, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(F, MAP_FAILED);
    faults_reset();
    ulog__fdatasync = fake_fdatasync;
    /* The sweeps open thousands of logs, and LMDB syncs each of its
     * commits for real: on a tmpfs of their own (when this process may
     * mount one) that costs nothing. Elsewhere they run where TMPDIR is. */
    char why[200];
    root_mounted = mount_tmpfs(root, "512m", why, sizeof why) == 0;
    /* This thread's append scratch lasts as long as the thread: made here,
     * once, it is not taken for a leak of the first case that appends. */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/warm", root);
    ulog *log = open_with_topic(dir, NULL, "w", 1, NULL);
    ulog_record r = { .value = "w", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = ULOG_PARTITION_ANY };
    append_ok(log, "w", &r, 1);
    ulog_close(log);
    rm_rf(dir);
}

static void faults_fini(void)
{
    ulog__fdatasync = fdatasync;
    if (F && F != MAP_FAILED) {
        disarm();
        munmap(F, sizeof *F);
        F = NULL;
    }
    if (root_mounted)
        umount2(root, MNT_DETACH);
    root_mounted = false;
    if (root[0])
        rm_rf(root);
    root[0] = 0;
}

/* Skips the test, saying why on stderr too (Criterion prints a skip's
 * reason only with --verbose). A skip does not run the suite's .fini:
 * clean up first. */
#define SKIP(...)                                                             \
    do {                                                                      \
        char why_[512];                                                       \
        snprintf(why_, sizeof why_, __VA_ARGS__);                             \
        fprintf(stderr, "test_faults: %s: SKIPPED: %s\n",                     \
                criterion_current_test->name, why_);                          \
        faults_fini();                                                        \
        cr_skip_test("%s", why_);                                             \
    } while (0)

TestSuite(faults, .init = faults_init, .fini = faults_fini, .timeout = 120);

/* The ULOG_E* code an injected errno must surface as. */
static int code_of(int err)
{
    return ulog__errno_to_err(err);
}

static bool known_code(int rc)
{
    return rc <= 0 && strcmp(ulog_errname(rc), "ULOG_UNKNOWN") != 0;
}

static void errmsg_of(ulog *log, char *buf, size_t n)
{
    if (log)
        ulog_errmsg(log, buf, n);
    else
        snprintf(buf, n, "(no handle)");
}

/* ================================================================ records */

#define NP       2       /* partitions of the sweep's topic */
#define MAXCALLS 64
#define VAL_LEN  700     /* 5 batches to a 4096-byte segment: rolls often */

/* Value of the record of append call `call` for partition `part`: a header
 * naming both, then bytes derived from them, so a read-back proves the
 * content too. */
static size_t make_val(uint8_t *buf, int call, int part)
{
    int n = snprintf((char *)buf, VAL_LEN, "c%05d p%d |", call, part);
    for (size_t i = (size_t)n; i < VAL_LEN; i++)
        buf[i] = (uint8_t)mix64((uint64_t)call * 1000003u + (uint64_t)part * 7919u + i);
    return VAL_LEN;
}

/* The (call, part) of a value, -1 when it is not one make_val made. */
static int parse_val(const void *v, size_t len, int *call, int *part)
{
    uint8_t want[VAL_LEN];
    char head[16];
    if (!v || len != VAL_LEN)
        return -1;
    memcpy(head, v, 12);
    head[12] = 0;
    if (sscanf(head, "c%05d p%d |", call, part) != 2 || *call < 0 || *call >= MAXCALLS ||
        *part < 0 || *part >= NP)
        return -1;
    make_val(want, *call, *part);
    return memcmp(want, v, VAL_LEN) == 0 ? 0 : -1;
}

/* What the test knows of the topic: each record's acknowledged offset, -1
 * when its append failed (or was not made). */
typedef struct model {
    int     ncalls;
    int64_t off[MAXCALLS][NP];
} model;

static void model_init(model *m)
{
    m->ncalls = 0;
    for (int c = 0; c < MAXCALLS; c++)
        for (int p = 0; p < NP; p++)
            m->off[c][p] = -1;
}

/* One ulog_append of NP records, one per partition. */
static int append_call(ulog *log, const char *topic, model *m)
{
    cr_assert_lt(m->ncalls, MAXCALLS);
    int c = m->ncalls++;
    static uint8_t vals[NP][VAL_LEN];
    ulog_record r[NP];
    memset(r, 0, sizeof r);
    for (int p = 0; p < NP; p++) {
        r[p].value = vals[p];
        r[p].value_len = make_val(vals[p], c, p);
        r[p].timestamp = 1700000000000LL + c;
        r[p].partition = p;
        r[p].offset = -1;     /* calls that fail early leave it alone */
    }
    int rc = ulog_append(log, topic, r, NP);
    for (int p = 0; p < NP; p++) {
        m->off[c][p] = r[p].offset;
        if (rc == 0)
            cr_assert_geq(r[p].offset, 0, "append returned 0 but record %d has offset -1", p);
    }
    return rc;
}

static int acked_in(const model *m, int p)
{
    int n = 0;
    for (int c = 0; c < m->ncalls; c++)
        n += m->off[c][p] >= 0;
    return n;
}

/* A reader's progress: the next offset it must see in each partition. */
typedef struct progress {
    int64_t next[NP];
} progress;

/* Checks one message against the model: a record whose append failed must
 * never be read (G1a), and offsets come dense and in order. */
static void check_msg(const model *m, progress *pg, const ulog_msg *msg, const char *what)
{
    int c, p;
    cr_assert_eq(parse_val(msg->value, msg->value_len, &c, &p), 0,
                 "%s: partition %d offset %lld: a value this test did not write", what,
                 (int)msg->partition, (long long)msg->offset);
    cr_assert_eq(p, msg->partition, "%s: record of partition %d read in %d", what, p,
                 (int)msg->partition);
    cr_assert_lt(c, m->ncalls, "%s: record of call %d never made", what, c);
    cr_assert_eq(m->off[c][p], msg->offset,
                 "%s: record of call %d partition %d read at offset %lld, its append %s", what,
                 c, p, (long long)msg->offset,
                 m->off[c][p] < 0 ? "FAILED (G1a)" : "gave another offset");
    cr_assert_eq(msg->offset, pg->next[p], "%s: partition %d: offset %lld read, %lld expected",
                 what, p, (long long)msg->offset, (long long)pg->next[p]);
    pg->next[p]++;
}

/* Polls s until it has nothing more (0) or an error (returned). */
static int drain(ulog_sub *s, const model *m, progress *pg, const char *what)
{
    ulog_msg msg;
    int rc;
    for (int guard = 0; guard < 100000; guard++) {
        rc = ulog_poll(s, 0, &msg);
        if (rc == ULOG_ETIMEDOUT)
            return 0;
        if (rc)
            return rc;
        check_msg(m, pg, &msg, what);
    }
    cr_assert_fail("%s: the subscription never caught up", what);
    return 0;
}

/* Every acknowledged record, nothing else, each once at its offset. */
static void check_exact(ulog *log, const char *topic, const model *m, const char *what)
{
    ulog_sub *s = sub_earliest(log, topic);
    progress pg = { { 0 } };
    int rc = drain(s, m, &pg, what);
    char msg[512];
    errmsg_of(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "%s: reading back: %s (%s)", what, ulog_errname(rc), msg);
    ulog_sub_close(s);
    for (int p = 0; p < NP; p++)
        cr_assert_eq(pg.next[p], acked_in(m, p),
                     "%s: partition %d holds %lld records, %d were acknowledged", what, p,
                     (long long)pg.next[p], acked_in(m, p));
}

/* The sweeps of an encrypted topic (sweep_cfg.sealed): its key id in the
 * topic's settings, its key given to every handle that opens the log. */
static bool g_sealed;
static const uint8_t SWEEP_KEY[ULOG_KEY_BYTES] = "fault sweep key, 32 bytes long.";

static ulog_config *topic_cfg(const char *policy, bool prealloc)
{
    return cfg_of("flush.policy", policy, "flush.ms", "1", "segment.bytes", "4096",
                  "preallocate", prealloc ? "true" : "false",
                  "encryption.key.id", g_sealed ? "5" : "-1", NULL);
}

static ulog *keyed(ulog *log)
{
    if (log && g_sealed)
        cr_assert_eq(ulog_key_add(log, "t", 5, SWEEP_KEY, sizeof SWEEP_KEY), 0);
    return log;
}

/* The sweep's log config: the flusher stays asleep, the workload runs its
 * passes itself (ulog__flush_pass) so that background syncs, index entries
 * and checkpoints happen at the same calls every run. */
static ulog_config *quiet_log_cfg(void)
{
    return cfg_of("index.flush.ms", "60000", NULL);
}

static bool poisoned(ulog *log, const char *topic, int p)
{
    ulog__topic *t;
    if (ulog__topic_get(log, topic, &t) != 0)
        return false;
    return __atomic_load_n(&t->parts[p].h->poisoned, __ATOMIC_ACQUIRE) != 0;
}

/* ================================================================ the sweep */

/*
 * One case: under the armed fault, open a fresh log, create a topic of NP
 * partitions, and make NCALLS appends of one record per partition with a
 * subscription reading along; then, the fault cleared, go on in the same
 * handle, reopen, and recover (heads deleted). The invariants of the file's
 * comment are checked at each step.
 */
#define NCALLS 14

typedef struct sweep_cfg {
    const char *name;
    const char *policy;
    bool        prealloc;
    bool        sealed;     /* the topic is encrypted */
} sweep_cfg;

typedef struct outcome {
    long injected;       /* calls the fault hit */
    int  errors;         /* calls that returned an error under the fault */
    int  poisoned;       /* same-handle appends refused as poisoned after it */
    int  open_failed;    /* ulog_open itself failed */
    int64_t zeroed;      /* bytes a power cut at the end zeroed */
} outcome;

/* The end of every sweep scenario, once the fault is gone: the reopened
 * log holds exactly what was acknowledged and takes one more append, which
 * a sync covers (none: the background one); then a power cut and recovery
 * keep every acknowledged record, and no block is leaked. Closes log. */
static void reopened_then_power_cut(ulog *log, const char *dir, const char *label, model *m,
                                    outcome *out, long live0)
{
    char what[300];
    snprintf(what, sizeof what, "%s, reopened", label);
    check_exact(log, "t", m, what);
    int rc = append_call(log, "t", m);
    char msg[512];
    errmsg_of(log, msg, sizeof msg);
    cr_assert_eq(rc, 0, "%s: append: %s (%s)", what, ulog_errname(rc), msg);
    check_exact(log, "t", m, what);
    cr_assert_eq(ulog__flush_pass(log, true), 0);
    ulog_close(log);

    out->zeroed = power_cut(dir);
    delete_heads(dir, "t", NP, true);
    log = keyed(open_at(dir, NULL));
    snprintf(what, sizeof what, "%s, after a power cut", label);
    check_exact(log, "t", m, what);
    ulog_close(log);
    disk_reset(false);
    cr_assert_eq(live_now(), live0, "%s: %ld blocks leaked", label, live_now() - live0);
}


/* rc of `call` under a fault that injects errno `err`. */
static void expect_rc2(int rc, int err, int err2, bool topic_missing, const char *call,
                       ulog *log, const char *label, outcome *out)
{
    if (getenv("ULOG_FAULTS_TRACE")) {   /* every call's result, for debugging */
        char m2[512];
        errmsg_of(log, m2, sizeof m2);
        fprintf(stderr, "%s: %s -> %s (%s)\n", label, call, ulog_errname(rc), rc ? m2 : "");
    }
    if (rc == 0)
        return;
    out->errors++;
    char msg[512];
    errmsg_of(log, msg, sizeof msg);
    cr_assert(known_code(rc), "%s: %s: %d is not a ULOG_E* code (%s)", label, call, rc, msg);
    for (int i = 0; i < 2; i++) {
        int e = i ? err2 : err;
        if (rc == code_of(e) || (e == ENOMEM && rc == ULOG_ELIMIT))
            return;
    }
    if (rc == ULOG_EPOISONED || (topic_missing && rc == ULOG_ENOENT))
        return;
    cr_assert_fail("%s: %s: %s, expected %s for the injected %s (%s)", label, call,
                   ulog_errname(rc), ulog_errname(code_of(err)), strerror(err), msg);
}

static ulog_sub *subscribe_earliest(ulog *log, const char *topic, int *rc)
{
    ulog_config *c = cfg_of("auto.offset.reset", "earliest", NULL);
    ulog_sub *s = NULL;
    *rc = ulog_subscribe(log, topic, NULL, c, &s);
    ulog_config_free(c);
    return *rc ? NULL : s;
}

/* "pwrite EIO at call 3 and on" */
static int fault_label(char *buf, size_t n, const fault *f)
{
    return snprintf(buf, n, "%s %s%s at call %ld%s", kind_name[f->kind],
                    f->mode == M_TORN ? "short then " : "", strerror(f->err), f->at,
                    f->count == LONG_MAX ? " and on" : "");
}

static void case_label(char *buf, size_t n, const sweep_cfg *sc, const fault *fs, int nf)
{
    int k = snprintf(buf, n, "[%s] ", sc->name);
    k += fault_label(buf + k, n - (size_t)k, &fs[0]);
    if (nf > 1) {
        k += snprintf(buf + k, n - (size_t)k, ", then ");
        fault_label(buf + k, n - (size_t)k, &fs[1]);
    }
}

static void run_case(const sweep_cfg *sc, const fault *fs, int nf, outcome *out)
{
    char dir[320], label[240];
    snprintf(dir, sizeof dir, "%s/case", root);
    case_label(label, sizeof label, sc, fs, nf);
    /* A call may fail with either fault's error. */
    int err = fs[0].err, err2 = nf > 1 ? fs[1].err : fs[0].err;
    cr_assert_eq(rm_rf(dir), 0);
    memset(out, 0, sizeof *out);
    model m;
    model_init(&m);
    progress pg = { { 0 } };
    ulog_sub *s = NULL;
    bool created = false;
    int rc;
    long live0 = live_now();

    /* A: under the fault. */
    disk_reset(true);
    arm_faults(fs, nf);
    ulog *log = NULL;
    ulog_config *lc = quiet_log_cfg();
    rc = ulog_open(dir, lc, &log);
    ulog_config_free(lc);
    keyed(log);
    expect_rc2(rc, err, err2, false, "ulog_open", log, label, out);
    if (rc) {
        cr_assert_null(log, "%s: a failed ulog_open left a handle", label);
        out->open_failed = 1;
    } else {
        ulog_config *c = topic_cfg(sc->policy, sc->prealloc);
        rc = ulog_topic_create(log, "t", NP, c);
        ulog_config_free(c);
        expect_rc2(rc, err, err2, false, "ulog_topic_create", log, label, out);
        created = rc == 0;
        s = subscribe_earliest(log, "t", &rc);
        expect_rc2(rc, err, err2, !created, "ulog_subscribe", log, label, out);
        for (int i = 0; i < NCALLS; i++) {
            rc = append_call(log, "t", &m);
            expect_rc2(rc, err, err2, !created, "ulog_append", log, label, out);
            /* What the flusher does: background syncs (none), index
             * entries, checkpoints; every third call, so that a fault
             * also meets unsynced records. */
            if (i % 3 == 2)
                cr_assert(known_code(ulog__flush_pass(log, true)));
            if (s) {
                rc = drain(s, &m, &pg, label);
                expect_rc2(rc, err, err2, false, "ulog_poll", log, label, out);
            }
        }
    }
    disarm();
    out->injected = __atomic_load_n(&F->injected, __ATOMIC_SEQ_CST);

    /* B: the fault has cleared; the same handle goes on. */
    char what[300];
    if (log) {
        if (!created) {
            ulog_config *c = topic_cfg(sc->policy, sc->prealloc);
            rc = ulog_topic_create(log, "t", NP, c);
            ulog_config_free(c);
            cr_assert(rc == 0 || rc == ULOG_EEXIST, "%s: topic_create after the fault: %s",
                      label, ulog_errname(rc));
        }
        rc = append_call(log, "t", &m);
        if (rc == ULOG_EPOISONED) {
            /* Allowed only for a partition the fault poisoned. */
            bool any = false;
            for (int p = 0; p < NP; p++)
                any = any || poisoned(log, "t", p);
            cr_assert(any, "%s: ULOG_EPOISONED but no partition is poisoned", label);
            out->poisoned++;
        } else {
            char msg[512];
            errmsg_of(log, msg, sizeof msg);
            cr_assert_eq(rc, 0, "%s: append after the fault cleared: %s (%s)", label,
                         ulog_errname(rc), msg);
        }
        if (!s) {
            s = subscribe_earliest(log, "t", &rc);
            cr_assert_eq(rc, 0, "%s: subscribe after the fault: %s", label, ulog_errname(rc));
        }
        snprintf(what, sizeof what, "%s, reading on after it", label);
        rc = drain(s, &m, &pg, what);
        char msg[512];
        errmsg_of(log, msg, sizeof msg);
        cr_assert_eq(rc, 0, "%s: %s (%s)", what, ulog_errname(rc), msg);
        for (int p = 0; p < NP; p++)
            cr_assert_eq(pg.next[p], acked_in(&m, p),
                         "%s: partition %d: the reader saw %lld records, %d acknowledged",
                         what, p, (long long)pg.next[p], acked_in(&m, p));
        ulog_sub_close(s);
        snprintf(what, sizeof what, "%s, same handle", label);
        check_exact(log, "t", &m, what);
        ulog_close(log);
    }

    /* C: reopened (a poisoned partition is repaired here). */
    log = keyed(open_at(dir, NULL));
    ulog_config *tc = topic_cfg(sc->policy, sc->prealloc);
    rc = ulog_topic_create(log, "t", NP, tc);
    ulog_config_free(tc);
    cr_assert(rc == 0 || rc == ULOG_EEXIST);
    reopened_then_power_cut(log, dir, label, &m, out, live0);
}

/* The faults swept, each at every call of its kind the workload makes. */
static const struct {
    int kind, mode, err;
} sweep_faults[] = {
    { F_PWRITE, M_FAIL, EIO },      { F_PWRITE, M_FAIL, ENOSPC },
    { F_PWRITE, M_TORN, ENOSPC },   { F_FDATASYNC, M_FAIL, EIO },
    { F_FDATASYNC, M_FAIL, ENOSPC },{ F_FSYNC, M_FAIL, EIO },
    { F_FSYNC_DIR, M_FAIL, EIO },   { F_FTRUNCATE, M_FAIL, EIO },
    { F_FALLOCATE, M_FAIL, ENOSPC },{ F_OPEN, M_FAIL, EMFILE },
    { F_OPEN, M_FAIL, EIO },        { F_MKDIR, M_FAIL, ENOSPC },
    { F_UNLINK, M_FAIL, EIO },      { F_MMAP, M_FAIL, ENOMEM },
    { F_PREAD, M_FAIL, EIO },
};
#define NSWEEP (sizeof sweep_faults / sizeof sweep_faults[0])

/* How many calls of each kind the fault-free workload makes (the verify
 * steps after it included: a fault that never fires is harmless). */
static void dry_run(const sweep_cfg *sc, long counts[F_NKINDS])
{
    /* A fault that can never fire, to count the calls of phase A only. */
    char dir[320];
    snprintf(dir, sizeof dir, "%s/case", root);
    cr_assert_eq(rm_rf(dir), 0);
    model m;
    model_init(&m);
    arm(F_PREAD, M_FAIL, EIO, LONG_MAX / 2, 1);   /* counts, never fires */
    ulog *log = keyed(open_at(dir, quiet_log_cfg()));
    create_topic(log, "t", NP, topic_cfg(sc->policy, sc->prealloc));
    expect_setting(log, "t", "encryption.key.id", g_sealed ? "5" : "-1");
    int rc;
    ulog_sub *s = subscribe_earliest(log, "t", &rc);
    cr_assert_eq(rc, 0);
    progress pg = { { 0 } };
    for (int i = 0; i < NCALLS; i++) {
        cr_assert_eq(append_call(log, "t", &m), 0);
        if (i % 3 == 2)
            cr_assert_eq(ulog__flush_pass(log, true), 0);
        cr_assert_eq(drain(s, &m, &pg, "dry run"), 0);
    }
    for (int k = 0; k < F_NKINDS; k++)
        counts[k] = calls_of(k);
    disarm();
    ulog_sub_close(s);
    ulog_close(log);
}

static void sweep(const sweep_cfg *sc, bool from_then_on)
{
    g_sealed = sc->sealed;
    long counts[F_NKINDS];
    dry_run(sc, counts);
    char line[512];
    int n = 0;
    for (int k = 0; k < F_NKINDS; k++)
        n += snprintf(line + n, sizeof line - (size_t)n, " %s %ld", kind_name[k], counts[k]);
    cr_log_info("[%s] calls made by the workload:%s", sc->name, line);
    long cases = 0, errors = 0, injected = 0, poisoned = 0, open_failed = 0;
    for (size_t f = 0; f < NSWEEP; f++) {
        int kind = sweep_faults[f].kind;
        for (long at = 0; at < counts[kind]; at++) {
            outcome out;
            long count = from_then_on ? LONG_MAX : sweep_faults[f].mode == M_TORN ? 2 : 1;
            fault fl = { kind, sweep_faults[f].mode, sweep_faults[f].err, at, count, 0 };
            run_case(sc, &fl, 1, &out);
            cr_assert_gt(out.injected, 0, "[%s] %s at %ld: the fault never fired", sc->name,
                         kind_name[kind], at);
            cases++;
            errors += out.errors > 0;
            injected += out.injected;
            poisoned += out.poisoned;
            open_failed += out.open_failed;
        }
    }
    cr_log_info("[%s] %s: %ld cases, %ld calls failed by the fault, %ld cases with a call "
                "returning an error, %ld where ulog_open failed, %ld left a partition "
                "poisoned until reopened", sc->name, from_then_on ? "from then on" : "once",
                cases, injected, errors, open_failed, poisoned);
}

static const sweep_cfg cfg_always = { "always", "always", false, false };
static const sweep_cfg cfg_prealloc = { "always+preallocate", "always", true, false };
static const sweep_cfg cfg_none = { "none", "none", false, false };
static const sweep_cfg cfg_none_prealloc = { "none+preallocate", "none", true, false };
static const sweep_cfg cfg_sealed = { "always+encrypted", "always", false, true };

Test(faults, sweep_always_once) { sweep(&cfg_always, false); }
Test(faults, sweep_always_from_then_on) { sweep(&cfg_always, true); }
Test(faults, sweep_prealloc_once) { sweep(&cfg_prealloc, false); }
Test(faults, sweep_prealloc_from_then_on) { sweep(&cfg_prealloc, true); }
Test(faults, sweep_none_once) { sweep(&cfg_none, false); }
Test(faults, sweep_none_from_then_on) { sweep(&cfg_none, true); }
Test(faults, sweep_none_prealloc_once) { sweep(&cfg_none_prealloc, false); }
Test(faults, sweep_none_prealloc_from_then_on) { sweep(&cfg_none_prealloc, true); }
/* An encrypted topic (encryption.key.id): every read also opens values. */
Test(faults, sweep_encrypted_once) { sweep(&cfg_sealed, false); }
Test(faults, sweep_encrypted_from_then_on) { sweep(&cfg_sealed, true); }

/* ================================================================ faults in the clean-up */

/*
 * A fault, then another while the library cleans up after the first: the
 * cut of an fsync failure (list, open, ftruncate, fsync, unlink, fsync of
 * the directory), the undo of a failed write, a background sync that
 * poisons. The second fault hits the j-th call of its kind after the first
 * fired, once or from then on. A cut that cannot be made must poison the
 * partition (appends refused until a reopen repairs it), never leave a
 * failed batch readable or lose an acknowledged one.
 */
static void sweep_compound(const sweep_cfg *sc)
{
    long counts[F_NKINDS];
    dry_run(sc, counts);
    /* Early and late in the workload. */
    const fault first[] = {
        { F_FDATASYNC, M_FAIL, EIO, counts[F_FDATASYNC] / 4, 1, 0 },
        { F_FDATASYNC, M_FAIL, ENOSPC, counts[F_FDATASYNC] * 3 / 4, 1, 0 },
        { F_PWRITE, M_FAIL, EIO, counts[F_PWRITE] / 4, 1, 0 },
        { F_PWRITE, M_TORN, ENOSPC, counts[F_PWRITE] * 3 / 4, 2, 0 },
    };
    static const struct {
        int kind, err;
    } second[] = {
        { F_OPEN, EMFILE },   { F_FTRUNCATE, EIO }, { F_FSYNC, EIO },  { F_FSYNC_DIR, EIO },
        { F_UNLINK, EIO },    { F_FDATASYNC, EIO }, { F_PWRITE, EIO }, { F_MMAP, ENOMEM },
    };
    long cases = 0, second_fired = 0, poisoned = 0;
    for (size_t a = 0; a < sizeof first / sizeof first[0]; a++)
        for (size_t b = 0; b < sizeof second / sizeof second[0]; b++)
            for (long j = 0; j < 4; j++)
                for (int on = 0; on < 2; on++) {
                    fault fs[2] = { first[a],
                                    { second[b].kind, M_FAIL, second[b].err, j,
                                      on ? LONG_MAX : 1, 0 } };
                    outcome out;
                    run_case(sc, fs, 2, &out);
                    cr_assert_gt(out.injected, 0, "the first fault never fired");
                    cases++;
                    second_fired += __atomic_load_n(&F->injected2, __ATOMIC_SEQ_CST) > 0;
                    poisoned += out.poisoned;
                }
    cr_log_info("[%s] %ld cases of a fault in the clean-up of another: the second fault "
                "fired in %ld, %ld left a partition poisoned until reopened",
                sc->name, cases, second_fired, poisoned);
}

Test(faults, cleanup_always) { sweep_compound(&cfg_always); }
Test(faults, cleanup_prealloc) { sweep_compound(&cfg_prealloc); }
Test(faults, cleanup_none) { sweep_compound(&cfg_none); }
Test(faults, cleanup_none_prealloc) { sweep_compound(&cfg_none_prealloc); }

/* ================================================================ recovery under faults */

/*
 * The same invariants when the fault hits the repair of a partition: the
 * recovery scan of a crashed one (heads gone, a torn batch at the end of
 * partition 0, a stray segment after the end of partition 1: the scan
 * truncates one and removes the other), or the repair of a poisoned one
 * (none: a background fdatasync failed; the next open verifies, rewrites and
 * syncs the unsynced tail). Under the fault: open, two appends (which open
 * the topic, hence recover it), a read, a close.
 */
enum { DMG_CRASH, DMG_POISON };

static void append_bytes(const char *path, const void *buf, size_t n)
{
    int fd = __real_open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    close(fd);
}

static int64_t last_segment(const char *dir, int part)
{
    char pd[400];
    part_dir(pd, sizeof pd, dir, "t", part);
    int dfd = __real_open(pd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dfd, 0);
    int64_t *v;
    size_t n;
    cr_assert_eq(ulog__seg_list(dfd, &v, &n), 0);
    close(dfd);
    cr_assert_gt(n, 0);
    int64_t last = v[n - 1];
    free(v);
    return last;
}

static void damage(const sweep_cfg *sc, int dmg, const char *dir, model *m)
{
    cr_assert_eq(rm_rf(dir), 0);
    model_init(m);
    disk_reset(true);
    ulog *log = keyed(open_at(dir, quiet_log_cfg()));
    create_topic(log, "t", NP, topic_cfg(sc->policy, sc->prealloc));
    for (int i = 0; i < 8; i++)
        cr_assert_eq(append_call(log, "t", m), 0);
    cr_assert_eq(ulog__flush_pass(log, true), 0);
    if (dmg == DMG_POISON) {
        for (int i = 0; i < 2; i++)
            cr_assert_eq(append_call(log, "t", m), 0);
        arm(F_FDATASYNC, M_FAIL, EIO, 0, 1);
        ulog__flush_pass(log, true);
        disarm();
        cr_assert(poisoned(log, "t", 0), "the failed background sync poisons");
        ulog_close(log);
        return;
    }
    ulog_close(log);
    /* A crash: a batch torn in half at the end of partition 0, a stray
     * segment after the end of partition 1, heads gone as after a reboot. */
    char path[600];
    int64_t last = last_segment(dir, 0);
    seg_path(path, sizeof path, dir, "t", 0, last);
    uint8_t buf[VAL_LEN];
    int fd = __real_open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_eq(pread(fd, buf, 200, 0), 200);     /* the start of its first batch */
    close(fd);
    append_bytes(path, buf, 200);
    seg_path(path, sizeof path, dir, "t", 1, 1000000);
    fd = __real_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, 200), 200);
    close(fd);
    delete_heads(dir, "t", NP, false);
    disk_reset(true);       /* what is on disk now is what a reboot finds */
}

/* Calls of each kind the faulted part of the last case made. */
static long recovery_counts[F_NKINDS];

static void recovery_case(const sweep_cfg *sc, int dmg, const fault *f, outcome *out)
{
    char dir[320], label[240];
    snprintf(dir, sizeof dir, "%s/case", root);
    int k = snprintf(label, sizeof label, "[%s, %s] ", sc->name,
                     dmg == DMG_CRASH ? "recovering a crash" : "repairing a poisoned partition");
    fault_label(label + k, sizeof label - (size_t)k, f);
    memset(out, 0, sizeof *out);
    model m;
    damage(sc, dmg, dir, &m);
    long live0 = live_now();

    arm_faults(f, 1);
    ulog *log = NULL;
    ulog_config *lc = quiet_log_cfg();
    int rc = ulog_open(dir, lc, &log);
    ulog_config_free(lc);
    keyed(log);
    expect_rc2(rc, f->err, f->err, false, "ulog_open", log, label, out);
    if (log) {
        for (int i = 0; i < 2; i++) {
            rc = append_call(log, "t", &m);
            expect_rc2(rc, f->err, f->err, false, "ulog_append", log, label, out);
        }
        ulog_sub *s = subscribe_earliest(log, "t", &rc);
        expect_rc2(rc, f->err, f->err, false, "ulog_subscribe", log, label, out);
        if (s) {
            progress pg = { { 0 } };
            rc = drain(s, &m, &pg, label);
            expect_rc2(rc, f->err, f->err, false, "ulog_poll", log, label, out);
            ulog_sub_close(s);
        }
        cr_assert(known_code(ulog__flush_pass(log, true)));
        ulog_close(log);
    }
    disarm();
    out->injected = __atomic_load_n(&F->injected, __ATOMIC_SEQ_CST);
    for (int i = 0; i < F_NKINDS; i++)
        recovery_counts[i] = calls_of(i);

    log = keyed(open_at(dir, NULL));
    reopened_then_power_cut(log, dir, label, &m, out, live0);
}

static void sweep_recovery(const sweep_cfg *sc, int dmg)
{
    /* Count the calls of the faulted part with a fault that never fires. */
    fault never = { F_PREAD, M_FAIL, EIO, LONG_MAX / 2, 1, 0 };
    outcome out;
    recovery_case(sc, dmg, &never, &out);
    long counts[F_NKINDS];
    memcpy(counts, recovery_counts, sizeof counts);
    long cases = 0, errors = 0;
    for (size_t i = 0; i < NSWEEP; i++)
        for (long at = 0; at < counts[sweep_faults[i].kind]; at++)
            for (int on = 0; on < 2; on++) {
                fault f = { sweep_faults[i].kind, sweep_faults[i].mode, sweep_faults[i].err, at,
                            on ? LONG_MAX : sweep_faults[i].mode == M_TORN ? 2 : 1, 0 };
                recovery_case(sc, dmg, &f, &out);
                cr_assert_gt(out.injected, 0, "the fault never fired");
                cases++;
                errors += out.errors > 0;
            }
    cr_log_info("[%s] %s: %ld cases where the fault fired, %ld with a call returning an error",
                sc->name, dmg == DMG_CRASH ? "recovering a crash" : "repairing a poisoned partition",
                cases, errors);
}

Test(faults, recovery_always) { sweep_recovery(&cfg_always, DMG_CRASH); }
Test(faults, recovery_none_prealloc) { sweep_recovery(&cfg_none_prealloc, DMG_CRASH); }
Test(faults, repair_poisoned_none) { sweep_recovery(&cfg_none, DMG_POISON); }

/* ================================================================ the boot id */

/*
 * A head is trusted while its boot id is this boot's. A process that cannot
 * read /proc/sys/kernel/random/boot_id for a passing reason (out of
 * descriptors) must fail its ulog_open, not make up another boot id: with
 * one, it would take every head for a stale one and rebuild it from a scan
 * while other handles use it -- their durable end, poisoned flag and locks
 * with it.
 */
Test(faults, boot_id_unreadable_fails_open)
{
    char dir[320];
    snprintf(dir, sizeof dir, "%s/bootid", root);
    ulog *a = open_with_topic(dir, NULL, "t", NP, topic_cfg("always", false));
    model m;
    model_init(&m);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(append_call(a, "t", &m), 0);
    ulog__head *h = head_map_at(dir, "t", 0);
    uint32_t gen = h->gen;

    for (int e = 0; e < 3; e++) {
        static const int errs[] = { EMFILE, ENFILE, ENOMEM };
        snprintf(F->path_has, sizeof F->path_has, "boot_id");
        arm(F_OPEN, M_FAIL, errs[e], 0, 1);
        ulog *b = NULL;
        int rc = ulog_open(dir, NULL, &b);
        long fired = __atomic_load_n(&F->injected, __ATOMIC_SEQ_CST);
        disarm();
        cr_assert_eq(fired, 1, "ulog_open reads the boot id");
        cr_assert_eq(rc, code_of(errs[e]), "ulog_open without its boot id (%s): %s",
                     strerror(errs[e]), ulog_errname(rc));
        cr_assert_null(b);
    }
    /* A's partitions were not rebuilt under it, and it goes on. */
    cr_assert_eq(h->gen, gen);
    cr_assert_eq(memcmp(h->boot_id, a->boot_id, sizeof h->boot_id), 0);
    cr_assert_eq(append_call(a, "t", &m), 0);
    check_exact(a, "t", &m, "after the failed opens");
    ulog *b = keyed(open_at(dir, NULL));
    check_exact(b, "t", &m, "another handle");
    ulog_close(b);
    head_unmap(h);
    ulog_close(a);
}

/* ================================================================ group commit */

/*
 * fdatasync fails at its k-th call -- once, or from then on -- while several
 * threads, or several processes of two threads each, append to one `always`
 * partition: the failure lands in whichever appender is the sync leader,
 * and every waiter (in any process) whose batch the cut took fails with the
 * leader's error; the others succeed. Afterwards every acknowledged record
 * is in the log exactly once, no failed one is, and the log goes on.
 */
#define GC_PROCS   3
#define GC_THREADS 2
#define GC_PER     25
#define GC_WORKERS (GC_PROCS * GC_THREADS)

typedef struct gc_shared {
    int8_t ok[GC_WORKERS][GC_PER];   /* 1 acked, 0 failed, -1 not done */
    int    bad_rc[GC_WORKERS];        /* an unexpected return code, or 0 */
    char   bad_msg[GC_WORKERS][256];  /* its ulog_errmsg */
} gc_shared;

static gc_shared *G;
static int gc_expect;               /* the ULOG_E* code of the injected errno */

typedef struct gc_worker {
    ulog *log;
    int   id;
} gc_worker;

static void *gc_main(void *arg)
{
    gc_worker *w = arg;
    char buf[32];
    for (int i = 0; i < GC_PER; i++) {
        snprintf(buf, sizeof buf, "w%d-%d", w->id, i);
        ulog_record r = { .value = buf, .value_len = strlen(buf),
                          .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0, .offset = -1 };
        int rc = ulog_append(w->log, "g", &r, 1);
        if (rc != 0 && rc != gc_expect && !G->bad_rc[w->id]) {
            G->bad_rc[w->id] = rc;
            ulog_errmsg(w->log, G->bad_msg[w->id], sizeof G->bad_msg[w->id]);
        }
        if ((rc == 0) != (r.offset >= 0) && !G->bad_rc[w->id])
            G->bad_rc[w->id] = 1;     /* the offset must say the same */
        G->ok[w->id][i] = rc == 0;
    }
    return NULL;
}

/* Runs `threads` appenders on log in this process. */
static void gc_run_threads(ulog *log, int first, int threads)
{
    pthread_t th[GC_WORKERS];
    gc_worker w[GC_WORKERS];
    for (int t = 0; t < threads; t++) {
        w[t] = (gc_worker){ log, first + t };
        if (pthread_create(&th[t], NULL, gc_main, &w[t]) != 0)
            abort();
    }
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
}

/* Reads the partition back against G: acked records once each, failed
 * ones never, offsets dense. Returns the number of records. */
static int gc_check(ulog *log, const char *what)
{
    ulog_sub *s = sub_earliest(log, "g");
    static char seen[GC_WORKERS][GC_PER];
    memset(seen, 0, sizeof seen);
    ulog_msg msg;
    int rc, n = 0, extra = 0;
    while ((rc = ulog_poll(s, 0, &msg)) == 0) {
        cr_assert_eq(msg.offset, (int64_t)n, "%s: offsets dense", what);
        n++;
        int wid, i;
        char buf[32];
        snprintf(buf, sizeof buf, "%.*s", (int)msg.value_len, (const char *)msg.value);
        if (strcmp(buf, "after") == 0) {
            extra++;
            continue;
        }
        cr_assert_eq(sscanf(buf, "w%d-%d", &wid, &i), 2, "%s: value %s", what, buf);
        cr_assert(wid >= 0 && wid < GC_WORKERS && i >= 0 && i < GC_PER);
        cr_assert_eq(seen[wid][i], 0, "%s: %s read twice", what, buf);
        seen[wid][i] = 1;
        cr_assert_eq(G->ok[wid][i], 1, "%s: %s is read, but its append failed (G1a)", what, buf);
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s: %s", what, ulog_errname(rc));
    ulog_sub_close(s);
    for (int w = 0; w < GC_WORKERS; w++)
        for (int i = 0; i < GC_PER; i++)
            if (G->ok[w][i] == 1)
                cr_assert_eq(seen[w][i], 1, "%s: w%d-%d acknowledged but lost", what, w, i);
    return n - extra;
}

/* One case; procs 0: GC_WORKERS threads in this process. */
static void gc_case(int procs, long at, long count, int err, long *acked_out, long *failed_out,
                    long *syncs_out)
{
    char dir[320];
    snprintf(dir, sizeof dir, "%s/gc", root);
    cr_assert_eq(rm_rf(dir), 0);
    ulog *log = open_with_topic(dir, NULL, "g", 1,
                                cfg_of("flush.policy", "always", "segment.bytes", "8192", NULL));
    ulog_close(log);        /* no handle crosses a fork */
    memset(G, -1, sizeof G->ok);
    memset(G->bad_rc, 0, sizeof G->bad_rc);
    long live0 = live_now();
    gc_expect = code_of(err);
    F->sync_us = 300;
    arm(F_FDATASYNC, M_FAIL, err, at, count);
    if (procs == 0) {
        log = keyed(open_at(dir, NULL));
        gc_run_threads(log, 0, GC_WORKERS);
        ulog_close(log);
    } else {
        pid_t pid[GC_PROCS];
        fflush(NULL);
        for (int p = 0; p < procs; p++) {
            pid[p] = quiet_fork();
            cr_assert_geq(pid[p], 0, "fork: %s", strerror(errno));
            if (pid[p] == 0) {
                ulog *cl = NULL;
                if (ulog_open(dir, NULL, &cl) != 0)
                    _exit(2);
                gc_run_threads(cl, p * GC_THREADS, GC_THREADS);
                ulog_close(cl);
                _exit(0);
            }
        }
        for (int p = 0; p < procs; p++) {
            int st;
            cr_assert_eq(waitpid(pid[p], &st, 0), pid[p]);
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "appending process %d ended with status %#x", p, st);
        }
    }
    long fired = __atomic_load_n(&F->injected, __ATOMIC_SEQ_CST);
    *syncs_out = calls_of(F_FDATASYNC);
    disarm();
    F->sync_us = 0;
    for (int w = 0; w < GC_WORKERS; w++)
        cr_assert_eq(G->bad_rc[w], 0, "fdatasync %s at call %ld%s: appender %d: %s (%s), "
                     "expected %s", strerror(err), at, count == LONG_MAX ? " and on" : "", w,
                     ulog_errname(G->bad_rc[w]), G->bad_msg[w], ulog_errname(code_of(err)));
    long acked = 0, failed = 0;
    for (int w = 0; w < GC_WORKERS; w++)
        for (int i = 0; i < GC_PER; i++) {
            cr_assert_neq(G->ok[w][i], -1);
            acked += G->ok[w][i] == 1;
            failed += G->ok[w][i] == 0;
        }
    if (fired)
        cr_assert_gt(failed, 0, "fdatasync %ld failed and no append did", at);
    else
        cr_assert_eq(failed, 0);

    char what[128];
    snprintf(what, sizeof what, "%s, fdatasync %s at call %ld%s", procs ? "processes" : "threads",
             strerror(err), at, count == LONG_MAX ? " and on" : "");
    log = keyed(open_at(dir, NULL));
    cr_assert_eq(gc_check(log, what), acked);
    /* The fault has cleared: the log goes on. */
    ulog_record r = { .value = "after", .value_len = 5, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 0 };
    append_ok(log, "g", &r, 1);
    cr_assert_eq(r.offset, acked);
    cr_assert_eq(gc_check(log, what), acked);
    ulog_close(log);
    /* And after recovery nothing comes back and nothing is missing. */
    delete_heads(dir, "g", 1, false);
    log = keyed(open_at(dir, NULL));
    cr_assert_eq(gc_check(log, what), acked);
    ulog_close(log);
    *acked_out = acked;
    *failed_out = failed;
    cr_assert_eq(live_now(), live0, "%s: %ld blocks leaked", what, live_now() - live0);
}

static void gc_sweep(int procs)
{
    G = mmap(NULL, sizeof *G, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(G, MAP_FAILED);
    long acked, failed, syncs, total_failed = 0, cases = 0;
    gc_case(procs, LONG_MAX / 2, 1, EIO, &acked, &failed, &syncs);    /* counts the syncs */
    long k_max = syncs < 24 ? syncs : 24;
    cr_log_info("group commit, %s: %ld fdatasyncs for %d appends without a fault",
                procs ? "3 processes x 2 threads" : "6 threads", syncs, GC_WORKERS * GC_PER);
    for (long at = 0; at < k_max; at++)
        for (int on = 0; on < 2; on++) {
            int err = at % 2 ? ENOSPC : EIO;
            gc_case(procs, at, on ? LONG_MAX : 1, err, &acked, &failed, &syncs);
            total_failed += failed;
            cases++;
        }
    cr_log_info("group commit, %s: %ld cases (k = 0..%ld, once and from then on), %ld appends "
                "failed in all", procs ? "processes" : "threads", cases, k_max - 1, total_failed);
    munmap(G, sizeof *G);
}

Test(faults, group_commit_threads) { gc_sweep(0); }
Test(faults, group_commit_processes) { gc_sweep(GC_PROCS); }

/* ================================================================ EINTR, short writes */

/*
 * pwrite returning EINTR (every other call) or short counts (1..7 bytes a
 * call): both must be retried until the whole batch is written, so every
 * append succeeds and every record reads back intact -- in the same handle,
 * reopened, and recovered. The same for the repair's pread/pwrite of a
 * poisoned partition.
 */
Test(faults, pwrite_eintr_and_short_writes_are_retried)
{
    static const int modes[] = { M_EINTR, M_SHORT };
    const sweep_cfg *cfgs[] = { &cfg_always, &cfg_none, &cfg_prealloc };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++)
        for (size_t k = 0; k < 2; k++) {
            fault f = { F_PWRITE, modes[k], EIO, 0, LONG_MAX, 0 };
            outcome out;
            run_case(cfgs[c], &f, 1, &out);
            cr_assert_eq(out.errors, 0, "[%s] %s: no call may fail", cfgs[c]->name,
                         modes[k] == M_EINTR ? "EINTR" : "short writes");
            cr_assert_gt(out.injected, 20);
            cr_log_info("[%s] pwrite %s: %ld calls %s, every append succeeded",
                        cfgs[c]->name, modes[k] == M_EINTR ? "EINTR" : "short",
                        modes[k] == M_EINTR ? (out.injected + 1) / 2 : out.injected,
                        modes[k] == M_EINTR ? "interrupted" : "cut short");
        }
    /* The repair of a poisoned partition reads and rewrites the tail. */
    for (size_t k = 0; k < 2; k++) {
        fault f = { F_PWRITE, modes[k], EIO, 0, LONG_MAX, 0 };
        fault r = { F_PREAD, M_EINTR, EIO, 0, LONG_MAX, 0 };
        outcome out;
        recovery_case(&cfg_none, DMG_POISON, k ? &f : &r, &out);
        cr_assert_eq(out.errors, 0, "repair under %s: no call may fail",
                     k ? "short writes" : "pread EINTR");
        cr_assert_gt(out.injected, 0);
    }
}

/* ================================================================ a real full disk */

/*
 * No injection: a small filesystem of the test's own fills up for real --
 * a 2 MiB tmpfs, and an ext4 image loop-mounted -- while a topic is
 * appended to until the appends keep failing. Every append returns 0 or
 * ULOG_ENOSPC; the log then holds exactly the records acknowledged; once a
 * file is deleted (space again) the same handle appends and reads; and the
 * acknowledged records are all there after a reopen and after recovery.
 * Mounting needs root (CAP_SYS_ADMIN): without it these tests are skipped,
 * saying why, and are not counted as passing.
 */
#define FULL_MAX 20000

static int64_t full_off[FULL_MAX];  /* offset acknowledged, -1 failed */

static size_t full_val(uint8_t *buf, size_t cap, int i, size_t lo, size_t hi)
{
    size_t n = lo + (size_t)(mix64((uint64_t)i) % (hi - lo + 1));
    cr_assert_leq(n, cap);
    int h = snprintf((char *)buf, n, "d%06d|", i);
    for (size_t k = (size_t)h; k < n; k++)
        buf[k] = (uint8_t)mix64((uint64_t)i * 131u + k);
    return n;
}

/* The log holds the acknowledged records of 0..n-1, and nothing else. */
static void full_check(ulog *log, int n, size_t lo, size_t hi, const char *what)
{
    ulog_sub *s = sub_earliest(log, "d");
    ulog_msg msg;
    int rc, seen = 0;
    static uint8_t want[8192];
    while ((rc = ulog_poll(s, 0, &msg)) == 0) {
        int i = -1;
        char head[16];
        snprintf(head, sizeof head, "%.*s", msg.value_len < 8 ? (int)msg.value_len : 8,
                 (const char *)msg.value);
        cr_assert_eq(sscanf(head, "d%06d|", &i), 1, "%s: offset %lld: not a record of this test",
                     what, (long long)msg.offset);
        cr_assert(i >= 0 && i < n, "%s: record %d never appended", what, i);
        cr_assert_eq(full_off[i], msg.offset, "%s: record %d read at offset %lld, %s", what, i,
                     (long long)msg.offset,
                     full_off[i] < 0 ? "its append FAILED (G1a)" : "acknowledged at another");
        size_t len = full_val(want, sizeof want, i, lo, hi);
        cr_assert(msg.value_len == len && memcmp(msg.value, want, len) == 0,
                  "%s: record %d: content differs", what, i);
        cr_assert_eq(msg.offset, (int64_t)seen, "%s: offsets dense", what);
        seen++;
    }
    char m[512];
    ulog_errmsg(log, m, sizeof m);
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s: reading: %s (%s)", what, ulog_errname(rc), m);
    ulog_sub_close(s);
    int acked = 0;
    for (int i = 0; i < n; i++)
        acked += full_off[i] >= 0;
    cr_assert_eq(seen, acked, "%s: %d records read, %d acknowledged", what, seen, acked);
}

static int full_append(ulog *log, int i, size_t lo, size_t hi)
{
    static uint8_t buf[8192];
    ulog_record r = { .value = buf, .value_len = full_val(buf, sizeof buf, i, lo, hi),
                      .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0, .offset = -1 };
    int rc = ulog_append(log, "d", &r, 1);
    cr_assert_eq(rc == 0, r.offset >= 0);
    full_off[i] = r.offset;
    return rc;
}

/* Fills the filesystem at mnt through a topic of flush.policy `policy`. */
static void fill_disk(const char *mnt, const char *fs, const char *policy, size_t filler_bytes,
                      size_t lo, size_t hi)
{
    char dir[400], filler[400], what[200];
    snprintf(dir, sizeof dir, "%s/log-%s", mnt, policy);
    snprintf(filler, sizeof filler, "%s/filler-%s", mnt, policy);
    faults_reset();
    F->fast = 0;                      /* real syncs: the filesystem decides */
    disk_reset(false);
    long live0 = live_now();

    /* Room that a delete gives back later. */
    int fd = __real_open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "%s: %s", filler, strerror(errno));
    static uint8_t junk[65536];
    memset(junk, 0x5a, sizeof junk);
    for (size_t done = 0; done < filler_bytes; done += sizeof junk)
        cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk, "filler: %s",
                     strerror(errno));
    cr_assert_eq(__real_fsync(fd), 0);
    close(fd);

    ulog *log = open_with_topic(dir, NULL, "d", 1,
                                cfg_of("flush.policy", policy, "segment.bytes", "262144", NULL));
    /* A topic whose partitions are first opened (their heads made) when
     * the disk is full. */
    create_topic(log, "y", 3, NULL);
    int n = 0, failed = 0, run = 0, first_fail = -1;
    while (run < 25 && n < FULL_MAX) {
        int rc = full_append(log, n, lo, hi);
        if (rc) {
            char m[512];
            ulog_errmsg(log, m, sizeof m);
            cr_assert(rc == ULOG_ENOSPC || (rc == ULOG_EPOISONED && poisoned(log, "d", 0)),
                      "%s, %s: append %d on a full disk: %s (%s)", fs, policy, n,
                      ulog_errname(rc), m);
            failed++;
            if (first_fail < 0)
                first_fail = n;
        }
        run = rc ? run + 1 : 0;
        n++;
    }
    cr_assert_gt(failed, 0, "%s: the disk never filled in %d appends", fs, n);
    snprintf(what, sizeof what, "%s, %s, disk full", fs, policy);
    full_check(log, n, lo, hi, what);

    /* The calls that write elsewhere (directories, LMDB) on the full disk:
     * a clean error or success, and nothing half made that breaks them
     * later. */
    ulog_record yr = { .value = "y", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                       .partition = 2 };
    int rc = ulog_append(log, "y", &yr, 1);
    cr_assert(rc == 0 || rc == ULOG_ENOSPC, "%s: first append to another topic: %s", what,
              ulog_errname(rc));
    bool y_acked = rc == 0;
    rc = ulog_topic_create(log, "x", 4, NULL);
    char cm[512];
    ulog_errmsg(log, cm, sizeof cm);
    cr_assert(rc == 0 || rc == ULOG_ENOSPC, "%s: topic_create: %s (%s)", what, ulog_errname(rc),
              cm);
    bool x_made = rc == 0;
    char dir2[420];
    snprintf(dir2, sizeof dir2, "%s-2", dir);
    ulog *log2 = NULL;
    rc = ulog_open(dir2, NULL, &log2);
    cr_assert(rc == 0 || rc == ULOG_ENOSPC, "%s: open of a new root: %s", what, ulog_errname(rc));
    ulog_close(log2);
    ulog_sub *gs = NULL;
    ulog_config *gc = cfg_of("auto.offset.reset", "earliest", NULL);
    cr_assert_eq(ulog_subscribe(log, "d", "grp", gc, &gs), 0);
    ulog_config_free(gc);
    ulog_msg gm;
    cr_assert_eq(ulog_poll(gs, 0, &gm), 0);
    rc = ulog_commit(gs);
    cr_assert(rc == 0 || rc == ULOG_ENOSPC, "%s: commit: %s", what, ulog_errname(rc));

    /* Space again: the same handle goes on. */
    cr_assert_eq(unlink(filler), 0);
    rc = ulog_topic_create(log, "x", 4, NULL);
    cr_assert(rc == (x_made ? ULOG_EEXIST : 0), "%s: topic_create with space: %s", what,
              ulog_errname(rc));
    ulog_record xr = { .value = "x", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                       .partition = ULOG_PARTITION_ANY };
    append_ok(log, "x", &xr, 1);
    append_ok(log, "y", &yr, 1);
    int64_t ylo, yhi;
    watermarks(log, "y", 2, &ylo, &yhi);
    cr_assert_eq(yhi, y_acked ? 2 : 1);
    cr_assert_eq(ulog_commit(gs), 0, "%s: commit with space", what);
    ulog_sub_close(gs);
    log2 = open_at(dir2, NULL);
    ulog_close(log2);
    cr_assert_eq(rm_rf(dir2), 0);
    bool was_poisoned = poisoned(log, "d", 0);
    for (int k = 0; k < 5; k++) {
        rc = full_append(log, n++, lo, hi);
        cr_assert(rc == 0 || (was_poisoned && rc == ULOG_EPOISONED),
                  "%s, %s: append after space came back: %s", fs, policy, ulog_errname(rc));
    }
    snprintf(what, sizeof what, "%s, %s, space again", fs, policy);
    full_check(log, n, lo, hi, what);
    ulog_close(log);

    log = keyed(open_at(dir, NULL));
    snprintf(what, sizeof what, "%s, %s, reopened", fs, policy);
    full_check(log, n, lo, hi, what);
    cr_assert_eq(full_append(log, n++, lo, hi), 0, "%s: append after reopening", what);
    full_check(log, n, lo, hi, what);
    ulog_close(log);
    delete_heads(dir, "d", 1, false);
    log = keyed(open_at(dir, NULL));
    snprintf(what, sizeof what, "%s, %s, recovered", fs, policy);
    full_check(log, n, lo, hi, what);
    ulog_close(log);
    int acked = 0;
    for (int i = 0; i < n; i++)
        acked += full_off[i] >= 0;
    cr_log_info("%s, flush.policy %s: the disk filled at append %d; %d of %d appends "
                "failed with it, %d acknowledged, all read back", fs, policy, first_fail, failed,
                n, acked);
    cr_assert_eq(rm_rf(dir), 0);
    cr_assert_eq(live_now(), live0, "%s, %s: %ld blocks leaked", fs, policy, live_now() - live0);
}

static void unmount(const char *mnt)
{
    if (umount2(mnt, 0) != 0)
        cr_assert_eq(umount2(mnt, MNT_DETACH), 0, "umount %s: %s", mnt, strerror(errno));
}

Test(faults, full_tmpfs)
{
    char mnt[320], why[256];
    snprintf(mnt, sizeof mnt, "%s/tmpfs", root);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    if (mount_tmpfs(mnt, "2m", why, sizeof why) != 0)
        SKIP("a real full disk needs a filesystem of the test's own, and %s (root or "
             "CAP_SYS_ADMIN needed): NOT TESTED", why);
    fill_disk(mnt, "tmpfs 2 MiB", "always", 256 << 10, 700, 1300);
    fill_disk(mnt, "tmpfs 2 MiB", "none", 256 << 10, 700, 1300);
    unmount(mnt);
}

Test(faults, full_ext4_loop)
{
    char mnt[320], img[320], cmd[1024], why[256];
    snprintf(mnt, sizeof mnt, "%s/ext4", root);
    snprintf(img, sizeof img, "%s/ext4.img", root);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    if (private_namespace(why, sizeof why) != 0)
        SKIP("a real full disk needs a filesystem of the test's own, and %s (root or "
             "CAP_SYS_ADMIN needed): NOT TESTED", why);
    int fd = __real_open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(__real_ftruncate(fd, 6 << 20), 0);
    close(fd);
    snprintf(cmd, sizeof cmd,
             "PATH=\"$PATH:/sbin:/usr/sbin\" mkfs.ext4 -q -F -m 0 -b 1024 -O ^has_journal "
             "'%s' >/dev/null 2>&1", img);
    fflush(NULL);
    int st = system(cmd);
    if (st != 0)
        SKIP("mkfs.ext4 failed or is not installed (status %#x): a loop-mounted ext4 cannot "
             "be made here: NOT TESTED", st);
    snprintf(cmd, sizeof cmd, "PATH=\"$PATH:/sbin:/usr/sbin\" mount -t ext4 -o loop '%s' '%s' "
             ">/dev/null 2>&1", img, mnt);
    st = system(cmd);
    if (st != 0)
        SKIP("mount -o loop of an ext4 image failed (status %#x; no loop devices, or not "
             "root): NOT TESTED", st);
    fill_disk(mnt, "ext4 6 MiB (loop)", "always", 512 << 10, 2500, 4500);
    fill_disk(mnt, "ext4 6 MiB (loop)", "none", 512 << 10, 2500, 4500);
    unmount(mnt);
}

/* ================================================================ the ring laps */

/*
 * The failure ring in the head holds the last ULOG__FAIL_RING (16) cuts. An
 * appender that is not scheduled while more than 16 syncs fail finds the
 * slot of the first cut after its write reused. It once reported its batch
 * lost even when a sync another appender led had committed it before those
 * failures: the record was readable although its append failed (G1a), and
 * a client that retried wrote it twice. Now it finds its batch by place and
 * epoch (partitionLeaderEpoch) and returns 0.
 *
 * Made deterministic: a child appends while the parent leads a sync that is
 * held open, so the child waits as a follower; the child is stopped
 * (SIGSTOP); the parent's next sync commits the child's batch; 17 syncs
 * fail; the child goes on.
 */
typedef struct lap_shared {
    int go, rc;
    int64_t offset;
} lap_shared;

static void *lap_leader(void *arg)
{
    ulog_record r = { .value = "p1", .value_len = 2, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 0 };
    return (void *)(intptr_t)ulog_append(arg, "r", &r, 1);
}

/* The scenario above; with `committed` false the parent's first failed sync
 * cuts the child's batch instead, and a later append puts another batch at
 * its place (same base offset, later epoch): the child must report it lost. */
static void ring_lap(const char *name, bool committed)
{
    char dir[320];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    ulog *log = open_with_topic(dir, NULL, "r", 1, cfg_of("flush.policy", "always", NULL));
    ulog_close(log);
    lap_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                          -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    sh->rc = 1;
    fflush(NULL);
    pid_t kid = quiet_fork();
    cr_assert_geq(kid, 0);
    if (kid == 0) {
        ulog *cl = NULL;
        if (ulog_open(dir, NULL, &cl) != 0)
            _exit(2);
        while (!__atomic_load_n(&sh->go, __ATOMIC_SEQ_CST))
            usleep(100);
        ulog_record r = { .value = "c", .value_len = 1, .timestamp = ULOG_TIMESTAMP_NOW,
                          .partition = 0, .offset = -1 };
        sh->rc = ulog_append(cl, "r", &r, 1);
        sh->offset = r.offset;
        ulog_close(cl);
        _exit(0);
    }
    log = keyed(open_at(dir, NULL));
    int64_t lo, hi;
    watermarks(log, "r", 0, &lo, &hi);         /* opens the partition */
    ulog__head *h = head_map_at(dir, "r", 0);
    /* 1. The parent leads a sync that stays open. */
    F->release = 0;
    F->held = 0;
    F->hold = 1;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, lap_leader, log), 0);
    while (!__atomic_load_n(&F->held, __ATOMIC_SEQ_CST))
        usleep(100);
    /* 2. The child writes its batch and waits as a follower; stopped. */
    __atomic_store_n(&sh->go, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&h->wend.offset, __ATOMIC_SEQ_CST) < 2)
        usleep(100);
    usleep(20000);
    cr_assert_eq(kill(kid, SIGSTOP), 0);
    int st;
    cr_assert_eq(waitpid(kid, &st, WUNTRACED), kid);
    cr_assert(WIFSTOPPED(st));
    /* 3. The held sync ends (it covers the parent's batch only); the next
     *    one commits the child's, or fails and cuts it. */
    __atomic_store_n(&F->release, 1, __ATOMIC_SEQ_CST);
    void *rv;
    pthread_join(t, &rv);
    cr_assert_eq((int)(intptr_t)rv, 0);
    ulog_record r = { .value = "p2", .value_len = 2, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 0 };
    if (committed) {
        append_ok(log, "r", &r, 1);
        watermarks(log, "r", 0, &lo, &hi);
        cr_assert_eq(hi, 3, "the child's batch is committed");
    }
    /* 4. 17 syncs fail, more than the ring holds. */
    arm(F_FDATASYNC, M_FAIL, EIO, 0, LONG_MAX);
    for (int i = 0; i < ULOG__FAIL_RING + 1; i++) {
        r.offset = -1;
        cr_assert_eq(ulog_append(log, "r", &r, 1), ULOG_EIO);
    }
    disarm();
    if (!committed) {
        /* Another batch takes the child's place, at its base offset. */
        append_ok(log, "r", &r, 1);
        cr_assert_eq(r.offset, 1);
        append_ok(log, "r", &r, 1);
        watermarks(log, "r", 0, &lo, &hi);
        cr_assert_eq(hi, 3);
    }
    /* 5. The child goes on. */
    cr_assert_eq(kill(kid, SIGCONT), 0);
    cr_assert_eq(waitpid(kid, &st, 0), kid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ulog_sub *s = sub_earliest(log, "r");
    ulog_msg m;
    bool child_visible = false;
    while (ulog_poll(s, 0, &m) == 0)
        child_visible = child_visible || (m.value_len == 1 && *(const char *)m.value == 'c');
    ulog_sub_close(s);
    if (committed) {
        cr_assert(child_visible, "the child's record is in the log");
        cr_assert_eq(sh->rc, 0, "the child's append returned %s though its record is "
                     "committed and readable at offset 1 (G1a)", ulog_errname(sh->rc));
        cr_assert_eq(sh->offset, 1);
    } else {
        cr_assert(!child_visible, "the child's cut record is readable");
        cr_assert_eq(sh->rc, ULOG_EIO, "the child's append of a cut batch returned %s",
                     ulog_errname(sh->rc));
        cr_assert_eq(sh->offset, -1);
    }
    head_unmap(h);
    munmap(sh, sizeof *sh);
    ulog_close(log);
}

Test(faults, committed_batch_found_after_the_ring_laps)
{
    ring_lap("lap-kept", true);
}

Test(faults, cut_batch_reported_lost_after_the_ring_laps)
{
    ring_lap("lap-cut", false);
}
