/*
 * segment.c -- segment files: naming, durable creation, listing, writing,
 * read-only mappings. POSIX only; knows nothing of batches.
 *
 * A segment is named by the offset of its first batch, 20 decimal digits and
 * ".log" (Kafka's naming), so a sorted directory listing is the log's order.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int (*ulog__fdatasync)(int fd) = fdatasync;

void ulog__seg_name(char out[ULOG__SEG_NAME_LEN + 1], int64_t base)
{
    snprintf(out, ULOG__SEG_NAME_LEN + 1, "%020lld.log", (long long)base);
}

/* Parses a segment file name; false for anything else in the directory. */
static bool seg_parse(const char *name, int64_t *base)
{
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (INT64_MAX - (name[i] - '0')) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    if (strcmp(name + 20, ".log") != 0)
        return false;
    *base = v;
    return true;
}

int ulog__fsync_dir(int dirfd)
{
    return fsync(dirfd) == 0 ? 0 : ulog__errno_to_err(errno);
}

/*
 * The new file and its directory entry are both fsynced before the caller
 * may put anything acknowledged in it: otherwise a power cut can lose the
 * whole segment even though fdatasync on its data succeeded.
 * O_TRUNC: a file of that name can only be the leftover of a writer that
 * died between creating it and publishing into it.
 */
int ulog__seg_create(int dirfd, int64_t base, int mode, int64_t prealloc, int *fd_out)
{
    char name[ULOG__SEG_NAME_LEN + 1];
    ulog__seg_name(name, base);
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    /* Preallocated: fdatasync'd writes into allocated blocks skip the
     * block allocation and size update of an append (measured 1.32x the
     * sync rate on ext4). A filesystem that cannot is just not faster. */
    if (prealloc > 0 && fallocate(fd, 0, 0, (off_t)prealloc) != 0 &&
        errno != EOPNOTSUPP && errno != ENOSYS) {
        int err = ulog__errno_to_err(errno);
        close(fd);
        unlinkat(dirfd, name, 0);
        return err;
    }
    if (fsync(fd) != 0 || fsync(dirfd) != 0) {
        int err = ulog__errno_to_err(errno);
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

int ulog__seg_trim(int fd, int64_t size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return ulog__errno_to_err(errno);
    if (st.st_size > size && (ftruncate(fd, (off_t)size) != 0 || fsync(fd) != 0))
        return ulog__errno_to_err(errno);
    return 0;
}

int ulog__seg_open(int dirfd, int64_t base, bool writable, int *fd_out)
{
    char name[ULOG__SEG_NAME_LEN + 1];
    ulog__seg_name(name, base);
    int fd = openat(dirfd, name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    *fd_out = fd;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int ulog__dir_open(int dirfd, DIR **out)
{
    /* Its own open file description: a dup() would share the directory
     * offset with every thread listing the same partition at once, and
     * each would read a part of the listing. */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    if (!(*out = fdopendir(fd))) {
        close(fd);
        return ulog__errno_to_err(errno);
    }
    return 0;
}

int ulog__seg_list(int dirfd, int64_t **bases, size_t *n)
{
    DIR *d;
    int err = ulog__dir_open(dirfd, &d);
    if (err)
        return err;
    size_t cap = 16, cnt = 0;
    int64_t *v = malloc(cap * sizeof *v);
    err = v ? 0 : ULOG_ENOMEM;
    struct dirent *de;
    while (!err && (errno = 0, de = readdir(d)) != NULL) {
        int64_t b;
        if (!seg_parse(de->d_name, &b))
            continue;
        if (cnt == cap) {
            int64_t *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                err = ULOG_ENOMEM;
                break;
            }
            v = nv;
            cap *= 2;
        }
        v[cnt++] = b;
    }
    if (!err && errno)
        err = ulog__errno_to_err(errno);
    closedir(d);
    if (err) {
        free(v);
        return err;
    }
    qsort(v, cnt, sizeof *v, cmp_i64);
    *bases = v;
    *n = cnt;
    return 0;
}

int ulog__seg_next(int dirfd, int64_t after, int64_t *base)
{
    int64_t *v;
    size_t n;
    int err = ulog__seg_list(dirfd, &v, &n);
    if (err)
        return err;
    err = ULOG_ENOENT;
    for (size_t i = 0; i < n; i++)
        if (v[i] > after) {
            *base = v[i];
            err = 0;
            break;
        }
    free(v);
    return err;
}

int ulog__seg_floor(int dirfd, int64_t offset, int64_t *base)
{
    int64_t *v;
    size_t n;
    int err = ulog__seg_list(dirfd, &v, &n);
    if (err)
        return err;
    err = ULOG_ENOENT;
    for (size_t i = 0; i < n && v[i] <= offset; i++) {
        *base = v[i];
        err = 0;
    }
    free(v);
    return err;
}

int64_t ulog__seg_size(int dirfd, int64_t base)
{
    char name[ULOG__SEG_NAME_LEN + 1];
    struct stat st;
    ulog__seg_name(name, base);
    return fstatat(dirfd, name, &st, 0) == 0 ? st.st_size : 0;
}

int ulog__seg_list_sizes(int dirfd, int64_t **bases, int64_t **sizes, size_t *n)
{
    int err = ulog__seg_list(dirfd, bases, n);
    if (err)
        return err;
    if (!(*sizes = malloc((*n ? *n : 1) * sizeof **sizes))) {
        free(*bases);
        return ULOG_ENOMEM;
    }
    for (size_t i = 0; i < *n; i++)
        (*sizes)[i] = ulog__seg_size(dirfd, (*bases)[i]);
    return 0;
}

size_t ulog__segs_below(const int64_t *bases, size_t n, int64_t offset)
{
    size_t k = 0;
    while (k + 1 < n && bases[k + 1] <= offset)
        k++;
    return k;
}

int ulog__seg_max_ts(int dirfd, int64_t seg, int64_t pos, int64_t at, int64_t *out,
                     bool *whole)
{
    int fd = -1;
    int err = ulog__seg_open(dirfd, seg, false, &fd);
    if (err)
        return err;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = ulog__errno_to_err(errno);
        close(fd);
        return err;
    }
    *out = INT64_MIN;
    *whole = false;
    for (;;) {
        if (pos == st.st_size) {
            *whole = true;
            break;
        }
        uint8_t hdr[ULOG__BATCH_HEADER_SIZE];
        ulog__batch_hdr h;
        if (pos + ULOG__BATCH_HEADER_SIZE > st.st_size ||
            pread(fd, hdr, sizeof hdr, pos) != (ssize_t)sizeof hdr ||
            ulog__batch_parse_header(hdr, sizeof hdr, &h) != 0 || h.batch_length <= 0 ||
            (at >= 0 && h.base_offset != at))
            break;
        at = -1;
        if (h.max_timestamp > *out)
            *out = h.max_timestamp;
        pos += ULOG__BATCH_LOG_OVERHEAD + (int64_t)h.batch_length;
    }
    close(fd);
    return 0;
}

int ulog__seg_drop_below(int dirfd, int64_t offset, int64_t *segments, int64_t *bytes)
{
    int64_t *v;
    size_t n;
    *segments = *bytes = 0;
    int err = ulog__seg_list(dirfd, &v, &n);
    if (err)
        return err;
    /* Oldest first, so that what a crash leaves is a suffix. */
    for (size_t i = 0; i + 1 < n && v[i + 1] <= offset && !err; i++) {
        char name[ULOG__SEG_NAME_LEN + 1];
        struct stat st;
        ulog__seg_name(name, v[i]);
        if (fstatat(dirfd, name, &st, 0) != 0) {
            if (errno != ENOENT)
                err = ulog__errno_to_err(errno);
            continue;               /* another process got there first */
        }
        if (unlinkat(dirfd, name, 0) == 0) {
            (*segments)++;
            *bytes += st.st_size;
        } else if (errno != ENOENT) {
            err = ulog__errno_to_err(errno);
        }
    }
    free(v);
    int serr = *segments ? ulog__fsync_dir(dirfd) : 0;
    return err ? err : serr;
}

int ulog__pwrite_all(int fd, const void *buf, size_t len, int64_t pos)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)pos);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ulog__errno_to_err(errno);
        }
        if (w == 0)
            return ULOG_EIO;
        p += w;
        len -= (size_t)w;
        pos += w;
    }
    return 0;
}

static size_t page_round(int64_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return ((size_t)n + pg - 1) / pg * pg;
}

/* Maps at least `reserve` bytes (the most a segment may grow to) so that a
 * growing active segment rarely needs a remap. Pages past the end of file
 * are never touched: readers stay below `size`. */
static int map_at(ulog__map *m, size_t want)
{
    if (want == 0)
        want = page_round(1);
    void *a = mmap(NULL, want, PROT_READ, MAP_SHARED, m->fd, 0);
    if (a == MAP_FAILED)
        return errno == ENOMEM ? ULOG_ELIMIT : ulog__errno_to_err(errno);
    if (m->addr)
        munmap((void *)m->addr, m->len);
    m->addr = a;
    m->len = want;
    return 0;
}

int ulog__map_open(int dirfd, int64_t base, size_t reserve, ulog__map *m)
{
    ulog__map nm = ULOG__MAP_INIT;
    int err = ulog__seg_open(dirfd, base, false, &nm.fd);
    if (err)
        return err;
    nm.base = base;
    struct stat st;
    if (fstat(nm.fd, &st) != 0) {
        err = ulog__errno_to_err(errno);
        close(nm.fd);
        return err;
    }
    nm.size = st.st_size;
    nm.ino = (uint64_t)st.st_ino;
    nm.dev = (uint64_t)st.st_dev;
    size_t want = page_round(st.st_size > (int64_t)reserve ? st.st_size : (int64_t)reserve);
    err = map_at(&nm, want);
    if (err) {
        close(nm.fd);
        return err;
    }
    ulog__map_close(m);
    *m = nm;
    return 0;
}

int ulog__map_refresh(ulog__map *m)
{
    /* lseek, not fstat: asking for the size alone does not make the
     * writer's next write update the inode's timestamps (kernels with
     * fine-grained ones). Readers ask on every batch past the known size,
     * rather than trust the head's write end, so a file truncated behind
     * the head's back gives ULOG_ECORRUPT, never SIGBUS. */
    off_t size = lseek(m->fd, 0, SEEK_END);
    if (size < 0)
        return ulog__errno_to_err(errno);
    if ((size_t)size > m->len) {
        int err = map_at(m, page_round(size) * 2);
        if (err)
            return err;
    }
    m->size = size;
    return 0;
}

void ulog__map_close(ulog__map *m)
{
    if (m->addr)
        munmap((void *)m->addr, m->len);
    if (m->fd >= 0)
        close(m->fd);
    *m = (ulog__map)ULOG__MAP_INIT;
}
