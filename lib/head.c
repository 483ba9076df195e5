/*
 * head.c -- the shared state of a partition: the `head` file every process
 * maps, its two robust process-shared mutexes, and the futex bell.
 *
 * Why robust mutexes and not flock: taking an uncontended mutex in shared
 * memory is one atomic instruction, flock is two system calls per append.
 * Robustness gives flock's one essential property: when a holder dies, the
 * next locker gets EOWNERDEAD instead of waiting forever, and repairs (the
 * write mark says what the dead writer was doing).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

_Static_assert(sizeof(ulog__head) <= ULOG__HEAD_SIZE, "head fits its file");

#define HEAD_LAYOUT ((uint32_t)sizeof(ulog__head) | ((uint32_t)sizeof(pthread_mutex_t) << 16))

int ulog__boot_id(char out[40])
{
    memset(out, 0, 40);
#ifdef __linux__
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    /* Only where the file cannot be there at all does the stand-in below
     * take its place. A passing failure (out of descriptors, say) must not:
     * the stand-in differs from every other process's boot id, so each head
     * would look stale, be rebuilt from a scan under its users' feet, and
     * lose its durable end and poisoned flag. */
    if (fd < 0 && errno != ENOENT && errno != EACCES && errno != EPERM)
        return ulog__errno_to_err(errno);
    if (fd >= 0) {
        ssize_t n;
        while ((n = read(fd, out, 39)) < 0 && errno == EINTR)
            ;
        int e = errno;
        close(fd);
        if (n < 0)
            return ulog__errno_to_err(e);
        if (n > 0) {
            while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
                out[--n] = 0;
            return 0;
        }
    }
#endif
    /* No boot id: the boot time stands in for it. */
    struct timespec now, up;
    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_MONOTONIC, &up);
    long long boot = (long long)(now.tv_sec - up.tv_sec);
    /* Rounded: the two clocks are not read at the same instant. */
    snprintf(out, 40, "t%lld", boot / 10);
    return 0;
}

/* The head file stays open with a shared flock for as long as the
 * partition is open: it tells whether any other process uses the head.
 * That is asked once, here, before this process takes its own shared lock:
 * a held lock cannot be probed, since converting it is not atomic, and a
 * LOCK_EX | LOCK_NB conversion that fails has already dropped the shared
 * lock it started from (Linux); the process would then use the head with
 * no lock, and the next opener would find it unused and reset the sleeper
 * counts under a sleeper (its wake-ups lost: seen with the replication
 * example). The caller holds the partition's open lock, so no other opener
 * probes between the exclusive lock and its downgrade. */
int ulog__head_map(int dirfd, int file_mode, ulog__head **out, int *fd_out, bool *alone)
{
    int fd = openat(dirfd, "head", O_RDWR | O_CREAT | O_CLOEXEC, file_mode);
    if (fd < 0)
        return ulog__errno_to_err(errno);
    struct stat st;
    int err = 0;
    *alone = flock(fd, LOCK_EX | LOCK_NB) == 0;
    while (flock(fd, LOCK_SH) != 0 && !err)
        if (errno != EINTR)
            err = ulog__errno_to_err(errno);
    if (!err && fstat(fd, &st) != 0)
        err = ulog__errno_to_err(errno);
    /* A page of a shared mapping that is a hole when the filesystem is
     * full faults (SIGBUS) at first touch instead of failing: allocate the
     * blocks first, so that a full disk is ULOG_ENOSPC here. */
    else if (!err && st.st_size <= ULOG__HEAD_SIZE && fallocate(fd, 0, 0, ULOG__HEAD_SIZE) != 0 &&
             errno != EOPNOTSUPP && errno != ENOSYS)
        err = ulog__errno_to_err(errno);
    else if (!err && st.st_size != ULOG__HEAD_SIZE && fstat(fd, &st) == 0 &&
             st.st_size != ULOG__HEAD_SIZE && ftruncate(fd, ULOG__HEAD_SIZE) != 0)
        err = ulog__errno_to_err(errno);
    void *a = MAP_FAILED;
    if (!err) {
        a = mmap(NULL, ULOG__HEAD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (a == MAP_FAILED)
            err = ulog__errno_to_err(errno);
    }
    if (err) {
        close(fd);
        return err;
    }
    *out = a;
    *fd_out = fd;
    return 0;
}

void ulog__head_unmap(ulog__head *h)
{
    if (h)
        munmap(h, ULOG__HEAD_SIZE);
}

bool ulog__head_foreign(const ulog__head *h, const char boot_id[40])
{
    return __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) == 1 &&
           memcmp(h->boot_id, boot_id, 40) == 0 &&
           (h->magic != ULOG__HEAD_MAGIC || h->version != ULOG__HEAD_VERSION ||
            h->layout != HEAD_LAYOUT);
}

bool ulog__head_valid(const ulog__head *h, const char boot_id[40])
{
    return __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) == 1 &&
           h->magic == ULOG__HEAD_MAGIC && h->version == ULOG__HEAD_VERSION &&
           h->layout == HEAD_LAYOUT && memcmp(h->boot_id, boot_id, 40) == 0;
}

static int robust_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return ULOG_ENOMEM;
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc ? ULOG_ENOTSUP : 0;
}

/*
 * Only called with the partition's file lock held and when no process of
 * this boot can be using the head (it was not valid for this boot), so
 * plain stores are safe; `ready` is written last, with release order.
 */
int ulog__head_init(ulog__head *h, const char boot_id[40], const ulog__scan_result *scan)
{
    __atomic_store_n(&h->ready, 0, __ATOMIC_RELEASE);
    memset(h, 0, sizeof *h);
    int err = robust_init(&h->wlock);
    if (!err)
        err = robust_init(&h->slock);
    if (err)
        return err;
    h->magic = ULOG__HEAD_MAGIC;
    h->version = ULOG__HEAD_VERSION;
    h->layout = HEAD_LAYOUT;
    memcpy(h->boot_id, boot_id, 40);
    h->wend = scan->end;
    h->mark = scan->end;
    h->index_pos = -1;
    h->max_ts = scan->max_timestamp;
    h->committed = scan->end.offset;
    h->low = scan->low;
    h->compacted = scan->compacted;
    h->synced[0] = scan->end;
    /* Everything recovery kept was read back from the device. */
    __atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
    return 0;
}

int ulog__mutex_lock(pthread_mutex_t *m, bool *owner_died)
{
    *owner_died = false;
    int rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        *owner_died = true;
        return 0;
    }
    return rc == 0 ? 0 : ULOG_EIO;
}

int ulog__mutex_trylock(pthread_mutex_t *m, bool *owner_died)
{
    *owner_died = false;
    int rc = pthread_mutex_trylock(m);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        *owner_died = true;
        return 0;
    }
    if (rc == EBUSY)
        return ULOG_ETIMEDOUT;
    return rc == 0 ? 0 : ULOG_EIO;
}

void ulog__mutex_unlock(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
}

ulog__pos ulog__head_synced(const ulog__head *h)
{
    uint32_t cur = __atomic_load_n(&h->synced_cur, __ATOMIC_ACQUIRE);
    return h->synced[cur & 1];
}

/* The slot not in use is written whole, then made current by one atomic
 * store: a holder that dies in between leaves the old slot current. */
void ulog__head_set_synced(ulog__head *h, const ulog__pos *p)
{
    uint32_t cur = __atomic_load_n(&h->synced_cur, __ATOMIC_ACQUIRE);
    h->synced[(cur + 1) & 1] = *p;
    __atomic_store_n(&h->synced_cur, (cur + 1) & 1, __ATOMIC_RELEASE);
}

#ifdef __linux__
static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE: waiters and wakers are in different processes. */
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}
#endif

/*
 * Ordering: the publisher stores `committed` and then bumps `bell` (seq_cst)
 * and reads `bell_waiters`; a sleeper increments `bell_waiters` (seq_cst)
 * before it reads `bell` and checks for records. Either the publisher sees
 * the sleeper and wakes it, or the sleeper sees the new bell value and the
 * futex returns at once.
 */
void ulog__bell_ring(ulog__head *bh)
{
    __atomic_add_fetch(&bh->bell, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&bh->bell_waiters, __ATOMIC_SEQ_CST) != 0)
        ulog__bell_wake_all(bh);
}

void ulog__bell_wake_all(ulog__head *bh)
{
    ulog__futex_wake_all(&bh->bell);
}

void ulog__bell_wait(ulog__head *bh, uint32_t seen, int timeout_ms)
{
    ulog__futex_wait(&bh->bell, seen, timeout_ms);
}

void ulog__futex_wake_all(uint32_t *word)
{
#ifdef __linux__
    futex(word, FUTEX_WAKE, INT_MAX, NULL);
#else
    (void)word;
#endif
}

void ulog__futex_wait(uint32_t *word, uint32_t seen, int timeout_ms)
{
    ulog__futex_wait_ns(word, seen, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000);
}

/* Without a futex: polls the word, sleeping a little longer each time
 * (50 us doubling up to 5 ms), so a long wait costs next to no CPU and a
 * short one is still noticed quickly. Compiled everywhere so that Linux
 * tests exercise it too. */
void ulog__poll_wait_ns(uint32_t *word, uint32_t seen, int64_t timeout_ns)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long nap = 50000;
    while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == seen) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t spent = (int64_t)(now.tv_sec - t0.tv_sec) * 1000000000 +
                        (now.tv_nsec - t0.tv_nsec);
        if (timeout_ns >= 0 && spent >= timeout_ns)
            break;
        long d = timeout_ns >= 0 && timeout_ns - spent < nap ? (long)(timeout_ns - spent) : nap;
        struct timespec ts = { 0, d };
        nanosleep(&ts, NULL);
        if (nap < 5000000)
            nap *= 2;
    }
}

void ulog__futex_wait_ns(uint32_t *word, uint32_t seen, int64_t timeout_ns)
{
    if (timeout_ns == 0)
        return;
#ifdef __linux__
    struct timespec ts, *tsp = NULL;
    if (timeout_ns > 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    futex(word, FUTEX_WAIT, seen, tsp);
#else
    ulog__poll_wait_ns(word, seen, timeout_ns);
#endif
}
