/* fuzz.h -- shared by the fuzz targets of test/fuzz/.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput() and nothing else
 * with external linkage. It is linked two ways (mk/fuzz.mk):
 *
 *   - with clang's libFuzzer (-fsanitize=fuzzer,address,undefined), which
 *     supplies main() and mutates inputs: `make fuzz`;
 *   - with replay.c's main() under the normal compiler (gcc, plus ASan and
 *     UBSan with SANITIZE=1), which runs every file of the committed corpus
 *     once: `make fuzz-replay`, fast enough for CI.
 *
 * A broken property calls FUZZ_CHECK, which prints where and why and aborts:
 * libFuzzer then saves the input as a crash-* artifact, and a replay exits
 * non-zero. Header only, every helper static inline.
 */
#ifndef ULOG_FUZZ_H
#define ULOG_FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__,    \
                    #cond);                                                          \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            if (getenv("ULOG_FUZZ_INPUT"))                                           \
                fprintf(stderr, "input: %s\n", getenv("ULOG_FUZZ_INPUT"));           \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* Whether two topic settings are the same, field by field. */
static inline bool cfg_equal(const ulog__topic_cfg *a, const ulog__topic_cfg *b)
{
    return a->segment_bytes == b->segment_bytes && a->max_message_bytes == b->max_message_bytes &&
           a->flush_policy == b->flush_policy && a->flush_ms == b->flush_ms &&
           a->index_interval_bytes == b->index_interval_bytes &&
           a->log_append_time == b->log_append_time && a->preallocate == b->preallocate &&
           a->retention_ms == b->retention_ms && a->retention_bytes == b->retention_bytes &&
           a->segment_ms == b->segment_ms &&
           strcmp(a->retention_groups, b->retention_groups) == 0 &&
           a->cleanup_policy == b->cleanup_policy &&
           a->delete_retention_ms == b->delete_retention_ms &&
           a->min_compaction_lag_ms == b->min_compaction_lag_ms &&
           a->min_cleanable_dirty_ppm == b->min_cleanable_dirty_ppm;
}

/* ---------------------------------------------------------------- bytes */

static inline uint16_t fz_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t fz_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t fz_be64(const uint8_t *p)
{
    return (uint64_t)fz_be32(p) << 32 | fz_be32(p + 4);
}

static inline void fz_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void fz_put_be64(uint8_t *p, uint64_t v)
{
    fz_put_be32(p, (uint32_t)(v >> 32));
    fz_put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t fz_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline int64_t fz_le64(const uint8_t *p)
{
    return (int64_t)((uint64_t)fz_le32(p + 4) << 32 | fz_le32(p));
}

/* A byte reader over the fuzzer's input: reads past the end give zeros,
 * so every input means something. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(fz_in *in)
{
    uint16_t hi = fz_u8(in);
    return (uint16_t)(hi << 8 | fz_u8(in));
}

static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fz_u8(in);
    return v;
}

/* An exact-size heap copy of [p, p+n), so that ASan sees any read past its
 * end (libFuzzer's own buffer is exact too; a replay's file buffer is this). */
static inline uint8_t *fz_dup(const uint8_t *p, size_t n)
{
    uint8_t *b = calloc(1, n ? n : 1);
    FUZZ_CHECK(b != NULL, "out of memory");
    if (n)
        memcpy(b, p, n);
    return b;
}

/* ---------------------------------------------------------------- scratch */

static inline int fz_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static char fz_scratch_path[512];

static inline void fz_scratch_remove(void)
{
    if (fz_scratch_path[0])
        nftw(fz_scratch_path, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline bool fz_dir_usable(const char *d)
{
    return d && *d && access(d, W_OK | X_OK) == 0;
}

/* A scratch directory for this process, made on first use and removed at
 * exit: under $ULOG_FUZZ_TMPDIR, else /dev/shm (the targets that touch files
 * fsync on every input, which costs nothing on tmpfs), else $TMPDIR, else
 * /tmp. */
static inline const char *fz_scratch(void)
{
    if (fz_scratch_path[0])
        return fz_scratch_path;
    const char *cands[] = { getenv("ULOG_FUZZ_TMPDIR"), "/dev/shm", getenv("TMPDIR"), "/tmp" };
    const char *base = "/tmp";
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (fz_dir_usable(cands[i])) {
            base = cands[i];
            break;
        }
    int len = snprintf(fz_scratch_path, sizeof fz_scratch_path, "%s/ulog-fuzz-XXXXXX", base);
    FUZZ_CHECK(len > 0 && (size_t)len < sizeof fz_scratch_path, "scratch path too long");
    FUZZ_CHECK(mkdtemp(fz_scratch_path) != NULL, "mkdtemp %s: %s", fz_scratch_path,
               strerror(errno));
    atexit(fz_scratch_remove);
    return fz_scratch_path;
}

/* Removes every entry of directory `dir` (not below: flat directories). */
static inline void fz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL, "opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        FUZZ_CHECK(unlinkat(dirfd(d), e->d_name, 0) == 0, "unlink %s/%s: %s", dir,
                   e->d_name, strerror(errno));
    }
    closedir(d);
}

#endif
