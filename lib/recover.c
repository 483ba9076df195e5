/*
 * recover.c -- finding the true end of a partition after a crash.
 *
 * Used when `head` cannot be trusted (first open after a reboot, or a head
 * file that is new or damaged). Scans from the last recovery checkpoint (all
 * bytes below it were durable when it was written), verifies every batch --
 * length bounds, magic, CRC-32C, records, offset continuity -- and cuts the
 * partition at the first byte that fails. Cost: the bytes after the
 * checkpoint, not the size of the log.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int remove_after(int dirfd, const int64_t *v, size_t n, int64_t seg, int64_t *removed)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= seg)
            continue;
        char name[ULOG__SEG_NAME_LEN + 1];
        ulog__seg_name(name, v[i]);
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            return ulog__errno_to_err(errno);
        (*removed)++;
    }
    return 0;
}

/* Truncates `seg` at `pos` and removes every later segment, durably. */
static int cut(int dirfd, const int64_t *v, size_t n, int64_t seg, int64_t pos,
               ulog__scan_result *out)
{
    int fd, err = ulog__seg_open(dirfd, seg, true, &fd);
    if (err)
        return err;
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_size > pos && ftruncate(fd, pos) != 0) ||
        fsync(fd) != 0) {
        err = ulog__errno_to_err(errno);
        close(fd);
        return err;
    }
    close(fd);
    if (st.st_size > pos)
        out->cut_bytes += st.st_size - pos;
    err = remove_after(dirfd, v, n, seg, &out->cut_segments);
    return err ? err : ulog__fsync_dir(dirfd);
}

int ulog__recover_cut(int dirfd, const ulog__pos *to)
{
    int64_t *v;
    size_t n;
    int err = ulog__seg_list(dirfd, &v, &n);
    if (err)
        return err;
    ulog__scan_result dummy = { 0 };
    err = cut(dirfd, v, n, to->segment, to->pos, &dummy);
    free(v);
    return err;
}

/* Walks the batches of one segment from *pos; stops at its end or at the
 * first invalid batch. Returns true when the whole rest was valid. */
static bool scan_segment(const uint8_t *a, int64_t size, bool last, int64_t compacted,
                         int64_t *pos, int64_t *next, int64_t *max_ts)
{
    static const uint8_t zeros[ULOG__BATCH_LOG_OVERHEAD];
    while (*pos < size) {
        size_t frame;
        ulog__batch_hdr h;
        const uint8_t *p = a + *pos;
        size_t avail = (size_t)(size - *pos);
        /* A zero length ends a segment's data (the rest of a preallocated
         * segment a crash left untrimmed); whether what follows is right is
         * the next segment's check. In the last segment the zeros are cut
         * like any torn tail, so its file ends at its last batch. */
        if (!last && avail >= sizeof zeros && memcmp(p, zeros, sizeof zeros) == 0)
            return true;
        if (ulog__batch_frame_size(p, avail, &frame) != 0 || frame > avail ||
            (*next < compacted ? ulog__batch_verify_gaps(p, frame, &h)
                               : ulog__batch_verify(p, frame, &h)) != 0 ||
            h.base_offset != *next)
            return false;
        *next = h.base_offset + h.last_offset_delta + 1;
        if (h.max_timestamp > *max_ts)
            *max_ts = h.max_timestamp;
        *pos += (int64_t)frame;
    }
    return true;
}

int ulog__recover_scan(int dirfd, const ulog__pos *from, int64_t compacted, int file_mode,
                       ulog__scan_result *out)
{
    int64_t *v;
    size_t n;
    int err = ulog__seg_list(dirfd, &v, &n);
    if (err)
        return err;
    *out = (ulog__scan_result){ .max_timestamp = INT64_MIN };
    if (n == 0) {
        free(v);
        int64_t base = from ? from->offset : 0;
        int fd;
        err = ulog__seg_create(dirfd, base, file_mode, 0, &fd);
        if (err)
            return err;
        close(fd);
        out->end = (ulog__pos){ base, base, 0 };
        out->low = base;
        return 0;
    }
    out->low = v[0];

    size_t i = 0;
    int64_t pos = 0, next = v[0];
    bool at_checkpoint = false;
    if (from && from->pos >= 0 && from->offset >= from->segment) {
        for (size_t j = 0; j < n; j++)
            if (v[j] == from->segment) {
                i = j;
                pos = from->pos;
                next = from->offset;
                at_checkpoint = true;
            }
    }
    for (;;) {
        int fd;
        err = ulog__seg_open(dirfd, v[i], false, &fd);
        if (err)
            break;
        struct stat st;
        if (fstat(fd, &st) != 0) {
            err = ulog__errno_to_err(errno);
            close(fd);
            break;
        }
        bool whole = true;
        if (st.st_size > pos) {
            void *a = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
            if (a == MAP_FAILED) {
                err = ulog__errno_to_err(errno);
                close(fd);
                break;
            }
            int64_t start = pos;
            whole = scan_segment(a, st.st_size, i + 1 == n, compacted, &pos, &next,
                                 &out->max_timestamp);
            munmap(a, (size_t)st.st_size);
            if (at_checkpoint && pos == start && (!whole || start > 0 || next != v[i])) {
                /* The checkpoint does not name a batch boundary here, or
                 * no batch follows it to confirm its offset (LMDB is a
                 * hint, not the truth): verify the segment from its start
                 * instead of cutting durable data. */
                close(fd);
                at_checkpoint = false;
                pos = 0;
                next = v[i];
                continue;
            }
            at_checkpoint = false;
        } else if (st.st_size < pos || (at_checkpoint && (pos > 0 || next != v[i]))) {
            /* A checkpoint past the end of its file, or at its end, where
             * no batch follows to confirm the offset it claims (at a
             * segment's start only the segment's base can be right):
             * trust nothing of it and verify the segment from its start. */
            close(fd);
            at_checkpoint = false;
            pos = 0;
            next = v[i];
            continue;
        }
        close(fd);
        /* The next segment must start exactly where this one ended. */
        bool last = i + 1 == n;
        if (!whole || (!last && v[i + 1] != next)) {
            err = cut(dirfd, v, n, v[i], pos, out);
            out->end = (ulog__pos){ next, v[i], pos };
            break;
        }
        if (last) {
            out->end = (ulog__pos){ next, v[i], pos };
            break;
        }
        if (pos < st.st_size) {
            /* Zeros ended this segment's data before its end (a
             * preallocated tail a crash left untrimmed): cut them, as the
             * roll would have, since readers walk a segment to its size. */
            int wfd;
            err = ulog__seg_open(dirfd, v[i], true, &wfd);
            if (!err) {
                err = ulog__seg_trim(wfd, pos);
                close(wfd);
            }
            if (err)
                break;
            out->cut_bytes += st.st_size - pos;
        }
        i++;
        pos = 0;
    }
    free(v);
    return err;
}
