/*
 * shim.c -- LD_PRELOAD shim for the power-cut simulation (test only).
 *
 * Interposes the calls that change files or make them durable and journals
 * them (journal.h) for every file and directory under POWERCUT_ROOT:
 *
 *   open open64 openat openat64 __open_2 __open64_2 __openat_2
 *   __openat64_2 creat creat64                     -> PC_OPEN (+O_TRUNC)
 *   write writev pwrite pwrite64 pwritev pwritev64 pwritev2
 *   pwritev64v2                                    -> PC_WRITE_BEGIN/END
 *     (O_DSYNC/O_SYNC descriptors and RWF_DSYNC/RWF_SYNC mark the write
 *      durable on return)
 *   ftruncate ftruncate64 truncate truncate64      -> PC_TRUNC(_PATH)
 *   fallocate fallocate64 posix_fallocate(64)      -> PC_FALLOC
 *   fsync fdatasync                                -> PC_FSYNC
 *   sync_file_range                                -> PC_SYNC_RANGE (not a sync)
 *   sync syncfs                                    -> PC_SYNC_ALL
 *   mkdir mkdirat unlink unlinkat rmdir rename renameat renameat2
 *   mmap mmap64 (shared + writable) msync          -> PC_MMAP_WRITE, PC_MSYNC
 *   close closedir dup dup2 dup3 fcntl(F_DUPFD*)   -> the descriptor table
 *   copy_file_range sendfile                       -> PC_UNMODELED
 *
 * Environment: POWERCUT_JOURNAL (directory for the journal; unset: the shim
 * does nothing), POWERCUT_ROOT (canonical path of the tree to watch), and
 * POWERCUT_BOOT_ID: opening /proc/sys/kernel/random/boot_id gives this text
 * instead, so the `head` files the workload leaves carry a boot id that the
 * verifying process (not under the shim) does not have -- as after a reboot.
 *
 * The shim only records. Which bytes are durable is derived from the
 * journal by the driver (model.c); the shim's own I/O goes through raw
 * system calls so that it never journals itself.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x2
#endif
#ifndef RWF_SYNC
#define RWF_SYNC 0x4
#endif

#define EXPORT __attribute__((visibility("default")))

/* glibc's fortify entry points and LFS names have no prototype here. */
EXPORT int __open_2(const char *path, int flags);
EXPORT int __open64_2(const char *path, int flags);
EXPORT int __openat_2(int dirfd, const char *path, int flags);
EXPORT int __openat64_2(int dirfd, const char *path, int flags);
EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags);

/* ---------------------------------------------------------------- state */

#define MAXFD 65536
#define FD_TRACKED 1u
#define FD_DSYNC   2u
#define FD_DIR     4u
#define FD_APPEND  8u

typedef struct fdent {
    uint64_t oid;
    uint32_t flags;
} fdent;

static fdent     fds[MAXFD];
static bool      active;
static int       jfd = -1;
static uint64_t *seqp;             /* <journal>/seq, mapped: one order for all */
static char      root[PATH_MAX];
static size_t    rootlen;
static char      bootid_path[PATH_MAX];
static const char BOOT_ID[] = "/proc/sys/kernel/random/boot_id";

/* Writable shared mappings of tracked files, for msync. */
#define MAXMAP 256
static struct { uintptr_t a; size_t len; uint64_t oid; } maps[MAXMAP];
static int maps_lock;

#define REAL(name) \
    static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* 1, 2, ...: 0 is "none" in the records' ref fields. */
static uint64_t next_seq(void)
{
    return __atomic_add_fetch(seqp, 1, __ATOMIC_SEQ_CST);
}

static long sys_writev(int fd, const struct iovec *iov, int n)
{
    return syscall(SYS_writev, fd, iov, n);
}

__attribute__((constructor)) static void shim_init(void)
{
    const char *dir = getenv("POWERCUT_JOURNAL");
    const char *r = getenv("POWERCUT_ROOT");
    if (!dir || !*dir || !r || !*r)
        return;
    snprintf(root, sizeof root, "%s", r);
    rootlen = strlen(root);
    while (rootlen > 1 && root[rootlen - 1] == '/')
        root[--rootlen] = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/journal", dir);
    jfd = (int)syscall(SYS_openat, AT_FDCWD, path,
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (jfd < 0)
        return;
    /* Out of the way of the descriptors the program expects. */
    int hi = (int)syscall(SYS_fcntl, jfd, F_DUPFD_CLOEXEC, 1000);
    if (hi >= 0) {
        syscall(SYS_close, jfd);
        jfd = hi;
    }
    /* The counter is a file so that every process under the shim -- forked
     * or exec'd -- numbers its records in one order. */
    snprintf(path, sizeof path, "%s/seq", dir);
    int sfd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (sfd < 0 || syscall(SYS_ftruncate, sfd, 4096) != 0)
        return;
    void *a = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    syscall(SYS_close, sfd);
    if (a == MAP_FAILED)
        return;
    seqp = a;
    const char *bid = getenv("POWERCUT_BOOT_ID");
    if (bid && *bid) {
        snprintf(bootid_path, sizeof bootid_path, "%s/boot_id", dir);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, bootid_path,
                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[128];
            int n = snprintf(line, sizeof line, "%s\n", bid);
            struct iovec v = { line, (size_t)n };
            sys_writev(fd, &v, 1);
            syscall(SYS_close, fd);
        } else {
            bootid_path[0] = 0;
        }
    }
    active = true;
}

/* Appends one record; the payload is the header's `len` bytes of data[]. */
static void emit(pc_rec *h, const struct iovec *data, int ndata)
{
    h->magic = PC_MAGIC;
    h->pid = (uint32_t)getpid();
    pc_tail t = { PC_TAIL_MAGIC, (uint32_t)h->seq };
    struct iovec small[64];
    struct iovec *iov = small;
    uint8_t *copy = NULL;
    int n = 0;
    if (ndata + 2 <= 64) {
        iov[n++] = (struct iovec){ h, sizeof *h };
        for (int i = 0; i < ndata; i++)
            iov[n++] = data[i];
    } else {
        /* Too many pieces for one writev: one buffer keeps it one write. */
        copy = malloc(h->len ? h->len : 1);
        if (!copy)
            return;
        size_t at = 0;
        for (int i = 0; i < ndata; i++) {
            memcpy(copy + at, data[i].iov_base, data[i].iov_len);
            at += data[i].iov_len;
        }
        iov[n++] = (struct iovec){ h, sizeof *h };
        iov[n++] = (struct iovec){ copy, h->len };
    }
    iov[n++] = (struct iovec){ &t, sizeof t };
    sys_writev(jfd, iov, n);
    free(copy);
}

static void emit_path(pc_rec *h, const char *p1, const char *p2)
{
    struct iovec v[3];
    int n = 0;
    v[n++] = (struct iovec){ (void *)p1, strlen(p1) };
    if (p2) {
        v[n++] = (struct iovec){ (void *)"", 1 };
        v[n++] = (struct iovec){ (void *)p2, strlen(p2) };
    }
    h->len = 0;
    for (int i = 0; i < n; i++)
        h->len += (uint32_t)v[i].iov_len;
    emit(h, v, n);
}

/* Journals a call about to change names or sizes; returns its seq. */
static uint64_t begin(uint16_t type, uint64_t oid, int64_t off, int64_t n, uint32_t oflags,
                      uint16_t flags, const char *p1, const char *p2)
{
    pc_rec h = { .type = PC_BEGIN, .seq = next_seq(), .ref = type, .oid = oid, .off = off,
                 .n = n, .oflags = oflags, .flags = flags };
    if (p1)
        emit_path(&h, p1, p2);
    else
        emit(&h, NULL, 0);
    return h.seq;
}

/* Closes the BEGIN of a call that failed: it did not happen. */
static void failed(uint64_t b)
{
    if (!b)
        return;
    pc_rec h = { .type = PC_FAILED, .seq = next_seq(), .ref = b };
    emit(&h, NULL, 0);
}

static bool under_root(const char *p)
{
    return strncmp(p, root, rootlen) == 0 && (p[rootlen] == 0 || p[rootlen] == '/');
}

static bool fd_path(int fd, char *out, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, size - 1);
    if (n <= 0)
        return false;
    out[n] = 0;
    return true;
}

/* The absolute path `name` names relative to dirfd (not resolved further:
 * the callers watched here pass plain names). */
static bool at_path(int dirfd, const char *name, char *out, size_t size)
{
    if (name[0] == '/') {
        snprintf(out, size, "%s", name);
        return true;
    }
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return false;
    } else if (!fd_path(dirfd, base, sizeof base)) {
        return false;
    }
    if (strcmp(name, ".") == 0)
        snprintf(out, size, "%s", base);
    else if (snprintf(out, size, "%s/%s", base, name) >= (int)size)
        return false;
    return true;
}

static fdent *ent(int fd)
{
    return fd >= 0 && fd < MAXFD ? &fds[fd] : NULL;
}

static bool tracked(int fd)
{
    fdent *e = ent(fd);
    return active && e && (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & FD_TRACKED);
}

static void untrack(int fd)
{
    fdent *e = ent(fd);
    if (e)
        __atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
}

/* After a successful open: journal it when it is under the root. b: its
 * PC_BEGIN, or 0. */
static void opened(int fd, int flags, uint64_t b)
{
    if (!active || fd < 0)
        return;
    fdent *e = ent(fd);
    char path[PATH_MAX];
    struct stat st;
    if (!e || !fd_path(fd, path, sizeof path) || !under_root(path) || fstat(fd, &st) != 0) {
        untrack(fd);
        failed(b);     /* not one the model follows after all */
        return;
    }
    uint32_t f = FD_TRACKED;
    if (flags & (O_DSYNC | O_SYNC))
        f |= FD_DSYNC;
    if (flags & O_APPEND)
        f |= FD_APPEND;
    if (S_ISDIR(st.st_mode))
        f |= FD_DIR;
    pc_rec h = { .type = PC_OPEN, .seq = next_seq(), .ref = b };
    h.oid = h.seq;
    h.ino = (uint64_t)st.st_ino;
    h.oflags = (uint32_t)flags;
    h.flags = S_ISDIR(st.st_mode) ? PC_F_DIR : 0;
    e->oid = h.oid;
    __atomic_store_n(&e->flags, f, __ATOMIC_RELEASE);
    emit_path(&h, path, NULL);
}

/* The fake boot id: what ulog reads to tell a reboot. */
static const char *redirect(const char *path)
{
    if (active && bootid_path[0] && strcmp(path, BOOT_ID) == 0)
        return bootid_path;
    return path;
}

/* ---------------------------------------------------------------- open */

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    path = redirect(path);
    uint64_t b = 0;
    char abs[PATH_MAX];
    if (active && (flags & (O_CREAT | O_TRUNC)) && at_path(dirfd, path, abs, sizeof abs) &&
        under_root(abs))
        b = begin(PC_OPEN, 0, 0, 0, (uint32_t)flags, 0, abs, NULL);
    int fd = (int)syscall(SYS_openat, dirfd, path, flags, mode);
    int e = errno;
    if (fd >= 0)
        opened(fd, flags, b);
    else
        failed(b);
    errno = e;
    return fd;
}

static mode_t va_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = va_mode(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags, m);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = va_mode(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, m);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = va_mode(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags, m);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = va_mode(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags | O_LARGEFILE, m);
}

EXPORT int __open_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags | O_LARGEFILE, 0);
}

EXPORT int creat(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC | O_LARGEFILE, mode);
}

/* ---------------------------------------------------------------- close, dup */

EXPORT int close(int fd)
{
    REAL(close);
    untrack(fd);     /* first: the number may be reused the moment it closes */
    return real_close(fd);
}

EXPORT int closedir(DIR *d)
{
    REAL(closedir);
    untrack(dirfd(d));
    return real_closedir(d);
}

static void copy_ent(int from, int to)
{
    fdent *a = ent(from), *b = ent(to);
    if (!b)
        return;
    if (a && (a->flags & FD_TRACKED)) {
        b->oid = a->oid;
        __atomic_store_n(&b->flags, a->flags, __ATOMIC_RELEASE);
    } else {
        untrack(to);
    }
}

EXPORT int dup(int fd)
{
    REAL(dup);
    int r = real_dup(fd);
    if (r >= 0)
        copy_ent(fd, r);
    return r;
}

EXPORT int dup2(int fd, int to)
{
    REAL(dup2);
    int r = real_dup2(fd, to);
    if (r >= 0)
        copy_ent(fd, r);
    return r;
}

EXPORT int dup3(int fd, int to, int flags)
{
    REAL(dup3);
    int r = real_dup3(fd, to, flags);
    if (r >= 0)
        copy_ent(fd, r);
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    REAL(fcntl);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = real_fcntl(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        copy_ent(fd, r);
    return r;
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl(fd, cmd, arg);
}

/* ---------------------------------------------------------------- writes */

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* Journals a write about to happen; returns its seq. off < 0: the
 * descriptor's position (looked up here) or O_APPEND. */
static uint64_t write_begin(int fd, const struct iovec *iov, int cnt, int64_t off, bool dsync)
{
    fdent *e = ent(fd);
    pc_rec h = { .type = PC_WRITE_BEGIN, .seq = next_seq(), .oid = e->oid, .off = off };
    size_t n = iov_total(iov, cnt);
    h.n = (int64_t)n;
    h.len = (uint32_t)n;
    h.flags = dsync || (e->flags & FD_DSYNC) ? PC_F_DSYNC : 0;
    emit(&h, iov, cnt);
    return h.seq;
}

static void write_end(int fd, uint64_t begin, int64_t off, ssize_t r)
{
    fdent *e = ent(fd);
    pc_rec h = { .type = PC_WRITE_END, .seq = next_seq(), .oid = e->oid, .ref = begin,
                 .off = off, .n = r };
    emit(&h, NULL, 0);
}

static off_t cur_pos(int fd)
{
    return (off_t)syscall(SYS_lseek, fd, 0, SEEK_CUR);
}

/* write/writev: at the descriptor's position, or at the end (O_APPEND),
 * which is known only afterwards. */
static ssize_t stream_write(int fd, const struct iovec *iov, int cnt,
                            ssize_t (*call)(int, const struct iovec *, int))
{
    int e;
    bool app = ent(fd)->flags & FD_APPEND;
    off_t before = app ? -1 : cur_pos(fd);
    uint64_t b = write_begin(fd, iov, cnt, before, false);
    ssize_t r = call(fd, iov, cnt);
    e = errno;
    int64_t off = before;
    if (r >= 0 && app)
        off = (int64_t)cur_pos(fd) - r;
    write_end(fd, b, off, r);
    errno = e;
    return r;
}

static ssize_t writev_sys(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev);
    return real_writev(fd, iov, cnt);
}

static ssize_t write_sys(int fd, const struct iovec *iov, int cnt)
{
    (void)cnt;
    REAL(write);
    return real_write(fd, iov[0].iov_base, iov[0].iov_len);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    if (!tracked(fd)) {
        REAL(write);
        return real_write(fd, buf, n);
    }
    struct iovec v = { (void *)buf, n };
    return stream_write(fd, &v, 1, write_sys);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (!tracked(fd) || cnt <= 0) {
        REAL(writev);
        return real_writev(fd, iov, cnt);
    }
    return stream_write(fd, iov, cnt, writev_sys);
}

/* Positional writes: the offset is known before the call. */
#define POSITIONAL(call_expr, iov, cnt, off, dsync)                  \
    do {                                                            \
        uint64_t b_ = write_begin(fd, iov, cnt, (int64_t)(off), dsync); \
        ssize_t r_ = (call_expr);                                   \
        int e_ = errno;                                             \
        write_end(fd, b_, (int64_t)(off), r_);                      \
        errno = e_;                                                 \
        return r_;                                                  \
    } while (0)

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite);
    if (!tracked(fd))
        return real_pwrite(fd, buf, n, off);
    struct iovec v = { (void *)buf, n };
    POSITIONAL(real_pwrite(fd, buf, n, off), &v, 1, off, false);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64);
    if (!tracked(fd))
        return real_pwrite64(fd, buf, n, off);
    struct iovec v = { (void *)buf, n };
    POSITIONAL(real_pwrite64(fd, buf, n, off), &v, 1, off, false);
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev);
    if (!tracked(fd) || cnt <= 0)
        return real_pwritev(fd, iov, cnt, off);
    POSITIONAL(real_pwritev(fd, iov, cnt, off), iov, cnt, off, false);
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev64);
    if (!tracked(fd) || cnt <= 0)
        return real_pwritev64(fd, iov, cnt, off);
    POSITIONAL(real_pwritev64(fd, iov, cnt, off), iov, cnt, off, false);
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    REAL(pwritev2);
    if (!tracked(fd) || cnt <= 0)
        return real_pwritev2(fd, iov, cnt, off, flags);
    if (off == -1) {
        /* -1: the descriptor's position, like writev. */
        off_t before = cur_pos(fd);
        uint64_t b = write_begin(fd, iov, cnt, before, flags & (RWF_DSYNC | RWF_SYNC));
        ssize_t r = real_pwritev2(fd, iov, cnt, off, flags);
        int e = errno;
        write_end(fd, b, before, r);
        errno = e;
        return r;
    }
    POSITIONAL(real_pwritev2(fd, iov, cnt, off, flags), iov, cnt, off,
               flags & (RWF_DSYNC | RWF_SYNC));
}

EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return pwritev2(fd, iov, cnt, off, flags);
}

EXPORT ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t len,
                               unsigned flags)
{
    REAL(copy_file_range);
    if (tracked(out)) {
        pc_rec h = { .type = PC_UNMODELED, .seq = next_seq(), .oid = ent(out)->oid };
        emit_path(&h, "copy_file_range", NULL);
    }
    return real_copy_file_range(in, inoff, out, outoff, len, flags);
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    REAL(sendfile);
    if (tracked(out)) {
        pc_rec h = { .type = PC_UNMODELED, .seq = next_seq(), .oid = ent(out)->oid };
        emit_path(&h, "sendfile", NULL);
    }
    return real_sendfile(out, in, off, count);
}

/* ---------------------------------------------------------------- sizes */

/* A size change of a tracked descriptor: BEGIN, the call, then the record
 * or FAILED. rc: the call's result, 0 for success. */
#define SIZE_CALL(TYPE_, MODE_, OFF_, LEN_, CALL_, OK_)                               \
    do {                                                                              \
        if (!tracked(fd))                                                             \
            return (CALL_);                                                           \
        uint64_t oid_ = ent(fd)->oid;                                                 \
        uint64_t b_ = begin(TYPE_, oid_, (int64_t)(OFF_), (int64_t)(LEN_), 0,         \
                            (uint16_t)(MODE_), NULL, NULL);                           \
        __typeof__(CALL_) r_ = (CALL_);                                               \
        int e_ = errno;                                                               \
        if (OK_) {                                                                    \
            pc_rec h_ = { .type = TYPE_, .seq = next_seq(), .oid = oid_, .ref = b_,   \
                          .off = (int64_t)(OFF_), .n = (int64_t)(LEN_),               \
                          .flags = (uint16_t)(MODE_) };                               \
            emit(&h_, NULL, 0);                                                       \
        } else {                                                                      \
            failed(b_);                                                               \
        }                                                                             \
        errno = e_;                                                                   \
        return r_;                                                                    \
    } while (0)

EXPORT int ftruncate(int fd, off_t len)
{
    REAL(ftruncate);
    SIZE_CALL(PC_TRUNC, 0, 0, len, real_ftruncate(fd, len), r_ == 0);
}

EXPORT int ftruncate64(int fd, off_t len)
{
    REAL(ftruncate64);
    SIZE_CALL(PC_TRUNC, 0, 0, len, real_ftruncate64(fd, len), r_ == 0);
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate);
    SIZE_CALL(PC_FALLOC, mode, off, len, real_fallocate(fd, mode, off, len), r_ == 0);
}

EXPORT int fallocate64(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate64);
    SIZE_CALL(PC_FALLOC, mode, off, len, real_fallocate64(fd, mode, off, len), r_ == 0);
}

/* posix_fallocate returns the error instead of setting errno. */
EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
    REAL(posix_fallocate);
    SIZE_CALL(PC_FALLOC, 0, off, len, real_posix_fallocate(fd, off, len), r_ == 0);
}

EXPORT int posix_fallocate64(int fd, off_t off, off_t len)
{
    REAL(posix_fallocate64);
    SIZE_CALL(PC_FALLOC, 0, off, len, real_posix_fallocate64(fd, off, len), r_ == 0);
}

static int path_trunc(const char *path, off_t len, int (*call)(const char *, off_t))
{
    char abs[PATH_MAX];
    uint64_t b = 0;
    if (active && at_path(AT_FDCWD, path, abs, sizeof abs) && under_root(abs))
        b = begin(PC_TRUNC_PATH, 0, 0, (int64_t)len, 0, 0, abs, NULL);
    int r = call(path, len);
    int e = errno;
    if (b && r == 0) {
        pc_rec h = { .type = PC_TRUNC_PATH, .seq = next_seq(), .ref = b, .n = (int64_t)len };
        emit_path(&h, abs, NULL);
    } else {
        failed(b);
    }
    errno = e;
    return r;
}

EXPORT int truncate(const char *path, off_t len)
{
    REAL(truncate);
    return path_trunc(path, len, real_truncate);
}

EXPORT int truncate64(const char *path, off_t len)
{
    REAL(truncate64);
    return path_trunc(path, len, real_truncate64);
}

/* ---------------------------------------------------------------- syncs */

static int do_sync(int fd, int (*call)(int), uint16_t kind)
{
    if (!tracked(fd))
        return call(fd);
    uint64_t s = next_seq();        /* before: covers what completed before */
    int r = call(fd);
    int e = errno;
    pc_rec h = { .type = r == 0 ? PC_FSYNC : PC_FSYNC_FAILED, .seq = s, .oid = ent(fd)->oid,
                 .flags = kind };
    emit(&h, NULL, 0);
    errno = e;
    return r;
}

EXPORT int fsync(int fd)
{
    REAL(fsync);
    return do_sync(fd, real_fsync, PC_SYNC_FSYNC);
}

EXPORT int fdatasync(int fd)
{
    REAL(fdatasync);
    return do_sync(fd, real_fdatasync, PC_SYNC_FDATASYNC);
}

EXPORT int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    REAL(sync_file_range);
    int r = real_sync_file_range(fd, off, n, flags);
    if (tracked(fd)) {
        int e = errno;
        pc_rec h = { .type = PC_SYNC_RANGE, .seq = next_seq(), .oid = ent(fd)->oid,
                     .off = (int64_t)off, .n = (int64_t)n };
        emit(&h, NULL, 0);
        errno = e;
    }
    return r;
}

EXPORT void sync(void)
{
    REAL(sync);
    uint64_t s = active ? next_seq() : 0;
    real_sync();
    if (active) {
        pc_rec h = { .type = PC_SYNC_ALL, .seq = s };
        emit(&h, NULL, 0);
    }
}

EXPORT int syncfs(int fd)
{
    REAL(syncfs);
    uint64_t s = active ? next_seq() : 0;
    int r = real_syncfs(fd);
    if (active && r == 0) {
        int e = errno;
        pc_rec h = { .type = PC_SYNC_ALL, .seq = s };
        emit(&h, NULL, 0);
        errno = e;
    }
    return r;
}

/* ---------------------------------------------------------------- mmap */

static void mapped(void *a, size_t len, int prot, int flags, int fd)
{
    if (a == MAP_FAILED || !tracked(fd) || !(prot & PROT_WRITE) || !(flags & MAP_SHARED))
        return;
    int e = errno;
    uint64_t oid = ent(fd)->oid;
    while (__atomic_exchange_n(&maps_lock, 1, __ATOMIC_ACQUIRE))
        ;
    for (int i = 0; i < MAXMAP; i++)
        if (maps[i].len == 0) {
            maps[i].a = (uintptr_t)a;
            maps[i].len = len;
            maps[i].oid = oid;
            break;
        }
    __atomic_store_n(&maps_lock, 0, __ATOMIC_RELEASE);
    pc_rec h = { .type = PC_MMAP_WRITE, .seq = next_seq(), .oid = oid, .n = (int64_t)len };
    emit(&h, NULL, 0);
    errno = e;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    REAL(mmap);
    void *a = real_mmap(addr, len, prot, flags, fd, off);
    mapped(a, len, prot, flags, fd);
    return a;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    REAL(mmap64);
    void *a = real_mmap64(addr, len, prot, flags, fd, off);
    mapped(a, len, prot, flags, fd);
    return a;
}

EXPORT int munmap(void *addr, size_t len)
{
    REAL(munmap);
    if (active) {
        while (__atomic_exchange_n(&maps_lock, 1, __ATOMIC_ACQUIRE))
            ;
        for (int i = 0; i < MAXMAP; i++)
            if (maps[i].len && maps[i].a == (uintptr_t)addr)
                maps[i].len = 0;
        __atomic_store_n(&maps_lock, 0, __ATOMIC_RELEASE);
    }
    return real_munmap(addr, len);
}

EXPORT int msync(void *addr, size_t len, int flags)
{
    REAL(msync);
    int r = real_msync(addr, len, flags);
    if (active) {
        int e = errno;
        uint64_t oid = 0;
        while (__atomic_exchange_n(&maps_lock, 1, __ATOMIC_ACQUIRE))
            ;
        for (int i = 0; i < MAXMAP; i++)
            if (maps[i].len && (uintptr_t)addr < maps[i].a + maps[i].len &&
                (uintptr_t)addr + len > maps[i].a)
                oid = maps[i].oid;
        __atomic_store_n(&maps_lock, 0, __ATOMIC_RELEASE);
        if (oid) {
            pc_rec h = { .type = PC_MSYNC, .seq = next_seq(), .oid = oid, .n = r };
            emit(&h, NULL, 0);
        }
        errno = e;
    }
    return r;
}

/* ---------------------------------------------------------------- names */

static bool watched(const char *p1, const char *p2)
{
    return under_root(p1) || (p2 && under_root(p2));
}

/* After a namespace call under the root: its record (seq after it
 * returned), or FAILED. */
static void journal_name(uint16_t type, uint64_t b, int r, const char *p1, const char *p2)
{
    if (!b)
        return;
    int e = errno;
    if (r == 0) {
        pc_rec h = { .type = type, .seq = next_seq(), .ref = b };
        emit_path(&h, p1, p2);
    } else {
        failed(b);
    }
    errno = e;
}

EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
    REAL(mkdirat);
    char abs[PATH_MAX];
    uint64_t b = 0;
    if (active && at_path(dirfd, path, abs, sizeof abs) && watched(abs, NULL))
        b = begin(PC_MKDIR, 0, 0, 0, 0, 0, abs, NULL);
    int r = real_mkdirat(dirfd, path, mode);
    journal_name(PC_MKDIR, b, r, abs, NULL);
    return r;
}

EXPORT int mkdir(const char *path, mode_t mode)
{
    return mkdirat(AT_FDCWD, path, mode);
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
    REAL(unlinkat);
    char abs[PATH_MAX];
    uint16_t type = flags & AT_REMOVEDIR ? PC_RMDIR : PC_UNLINK;
    uint64_t b = 0;
    if (active && at_path(dirfd, path, abs, sizeof abs) && watched(abs, NULL))
        b = begin(type, 0, 0, 0, 0, 0, abs, NULL);
    int r = real_unlinkat(dirfd, path, flags);
    journal_name(type, b, r, abs, NULL);
    return r;
}

EXPORT int unlink(const char *path)
{
    return unlinkat(AT_FDCWD, path, 0);
}

EXPORT int rmdir(const char *path)
{
    return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

EXPORT int renameat2(int od, const char *op, int nd, const char *np, unsigned int flags)
{
    char a[PATH_MAX], b[PATH_MAX];
    uint64_t bg = 0;
    if (active && at_path(od, op, a, sizeof a) && at_path(nd, np, b, sizeof b) && watched(a, b))
        bg = begin(PC_RENAME, 0, 0, 0, flags, 0, a, b);
    int r = (int)syscall(SYS_renameat2, od, op, nd, np, flags);
    journal_name(PC_RENAME, bg, r, a, b);
    if (r == 0 && bg && (flags & RENAME_EXCHANGE)) {
        int e = errno;
        pc_rec h = { .type = PC_UNMODELED, .seq = next_seq() };
        emit_path(&h, "renameat2(RENAME_EXCHANGE)", NULL);
        errno = e;
    }
    return r;
}

EXPORT int renameat(int od, const char *op, int nd, const char *np)
{
    return renameat2(od, op, nd, np, 0);
}

EXPORT int rename(const char *op, const char *np)
{
    return renameat2(AT_FDCWD, op, AT_FDCWD, np, 0);
}
