/* fuzz_recover.c -- the recovery scan of lib/recover.c on arbitrary segment
 * files.
 *
 * Input:
 *   byte 0       flags: bits 0-1 segments - 1 (1 to 4 files); bit 2 scan
 *                from a checkpoint; bit 3 the checkpoint's values are raw
 *                (hostile) int64s; bit 4 no segment file at all
 *   bytes 1-2    base offset of the first segment (big-endian u16)
 *   per further segment: u16 length of the previous segment's bytes, u16
 *                its base minus the previous base, minus 1
 *   checkpoint   (bit 2) u8 segment index, u16 position, u16 offset minus
 *                that segment's base; or (bits 2 and 3) u64 segment, u64
 *                position, u64 offset
 *   the rest     the segments' bytes, back to back (the last takes what is
 *                left)
 * The files go into an empty directory, then ulog__recover_scan runs on it.
 *
 * What must hold afterwards:
 *   - the scan succeeds; low is the first segment's base;
 *   - an end at the first byte of a segment has the segment's base as its
 *     offset, whatever a checkpoint claimed;
 *   - the segments up to end.segment are left, in order, with their bytes
 *     unchanged up to their new size; every later one is gone, and
 *     cut_segments counts them; end.segment's file holds exactly end.pos
 *     bytes, no more than it had, and cut_bytes is what the files lost;
 *   - without a checkpoint, what is left is whole valid batches and nothing
 *     else: every segment, from its first byte to its last, is batches that
 *     ulog__batch_verify accepts with base offsets that follow on from the
 *     segment's own base (so each segment's base is where the previous one
 *     ended), ending at end.offset; max_timestamp is their greatest
 *     maxTimestamp. (A reader walks segments by their size: a byte after
 *     the last batch of a segment stops it.)
 *   - a second scan from the same start finds the same end and cuts
 *     nothing.
 */
#include "fuzz.h"

#define MAX_SEGS 4

typedef struct seg {
    int64_t        base;
    const uint8_t *bytes;
    size_t         len;
} seg;

static void write_file(int dirfd, int64_t base, const uint8_t *p, size_t n)
{
    char name[ULOG__SEG_NAME_LEN + 1];
    ulog__seg_name(name, base);
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    FUZZ_CHECK(fd >= 0, "create %s: %s", name, strerror(errno));
    FUZZ_CHECK(n == 0 || ulog__pwrite_all(fd, p, n, 0) == 0, "write %s", name);
    close(fd);
}

/* The file of segment `base` as it is now: malloc'd bytes, or NULL with
 * *len = -1 when it does not exist. */
static uint8_t *read_file(int dirfd, int64_t base, int64_t *len)
{
    char name[ULOG__SEG_NAME_LEN + 1];
    ulog__seg_name(name, base);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        FUZZ_CHECK(errno == ENOENT, "open %s: %s", name, strerror(errno));
        *len = -1;
        return NULL;
    }
    struct stat st;
    FUZZ_CHECK(fstat(fd, &st) == 0, "fstat");
    uint8_t *b = malloc(st.st_size ? (size_t)st.st_size : 1);
    FUZZ_CHECK(b, "out of memory");
    FUZZ_CHECK(pread(fd, b, (size_t)st.st_size, 0) == st.st_size, "read %s", name);
    close(fd);
    *len = st.st_size;
    return b;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d, "opendir");
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = { data, size };
    uint8_t flags = fz_u8(&in);
    size_t nseg = (flags & 0x10) ? 0 : 1 + (flags & 3);
    seg segs[MAX_SEGS];
    size_t lens[MAX_SEGS] = { 0 };

    int64_t base = fz_u16(&in);
    for (size_t i = 0; i < nseg; i++) {
        segs[i].base = base;
        if (i + 1 < nseg) {
            lens[i] = fz_u16(&in);
            base += 1 + (int64_t)fz_u16(&in);
        }
    }
    ulog__pos from, *fromp = NULL;
    if (flags & 4) {
        if (flags & 8) {
            from.segment = (int64_t)fz_u64(&in);
            from.pos = (int64_t)fz_u64(&in);
            from.offset = (int64_t)fz_u64(&in);
        } else {
            uint8_t idx = fz_u8(&in);
            int64_t sb = nseg ? segs[idx % nseg].base : 0;
            from.segment = sb;
            from.pos = fz_u16(&in);
            from.offset = sb + fz_u16(&in);
        }
        fromp = &from;
    }
    for (size_t i = 0; i < nseg; i++) {
        size_t n = i + 1 < nseg ? (lens[i] < in.n ? lens[i] : in.n) : in.n;
        segs[i].bytes = in.p;
        segs[i].len = n;
        in.p += n;
        in.n -= n;
    }

    const char *dir = fz_scratch();
    fz_empty_dir(dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(dfd >= 0, "open %s", dir);
    for (size_t i = 0; i < nseg; i++)
        write_file(dfd, segs[i].base, segs[i].bytes, segs[i].len);

    ulog__scan_result res;
    int rc = ulog__recover_scan(dfd, fromp, 0, 0640, &res);
    FUZZ_CHECK(rc == 0, "recover_scan: %d", rc);

    if (nseg == 0) {
        int64_t b0 = fromp ? from.offset : 0;
        FUZZ_CHECK(res.end.offset == b0 && res.end.segment == b0 && res.end.pos == 0 &&
                       res.low == b0,
                   "empty directory");
        if (b0 >= 0) {
            int64_t len;
            free(read_file(dfd, b0, &len));
            FUZZ_CHECK(len == 0, "the empty directory's new segment");
        }
        close(dfd);
        return 0;
    }

    FUZZ_CHECK(res.low == segs[0].base, "low %lld", (long long)res.low);
    size_t k = nseg;
    for (size_t i = 0; i < nseg; i++)
        if (segs[i].base == res.end.segment)
            k = i;
    FUZZ_CHECK(k < nseg, "end.segment %lld is no segment", (long long)res.end.segment);
    FUZZ_CHECK(res.cut_segments == (int64_t)(nseg - 1 - k), "cut_segments %lld, %zu removed",
               (long long)res.cut_segments, nseg - 1 - k);
    FUZZ_CHECK(res.end.pos >= 0 && (size_t)res.end.pos <= segs[k].len, "end.pos %lld of %zu",
               (long long)res.end.pos, segs[k].len);
    /* Whatever a checkpoint claims: at a segment's first byte, the next
     * offset is the one the segment is named after. */
    FUZZ_CHECK(res.end.pos > 0 || res.end.offset == res.end.segment,
               "end at the start of segment %lld claims offset %lld",
               (long long)res.end.segment, (long long)res.end.offset);
    FUZZ_CHECK(count_files(dir) == k + 1, "%zu files left, want %zu", count_files(dir), k + 1);

    int64_t next = segs[0].base, max_ts = INT64_MIN, cut = 0;
    for (size_t i = 0; i <= k; i++) {
        int64_t len;
        uint8_t *b = read_file(dfd, segs[i].base, &len);
        FUZZ_CHECK(b, "segment %zu was removed", i);
        cut += (int64_t)segs[i].len - len;
        FUZZ_CHECK(len <= (int64_t)segs[i].len && (i < k || len == res.end.pos),
                   "segment %zu: %lld bytes (had %zu, end.pos %lld)", i, (long long)len,
                   segs[i].len, (long long)res.end.pos);
        FUZZ_CHECK(len == 0 || memcmp(b, segs[i].bytes, (size_t)len) == 0,
                   "segment %zu: bytes changed", i);
        if (!fromp) {
            FUZZ_CHECK(next == segs[i].base, "segment %zu starts at %lld, the previous ended at %lld",
                       i, (long long)segs[i].base, (long long)next);
            int64_t pos = 0;
            while (pos < len) {
                size_t frame;
                ulog__batch_hdr h;
                FUZZ_CHECK(ulog__batch_frame_size(b + pos, (size_t)(len - pos), &frame) == 0 &&
                               frame <= (size_t)(len - pos),
                           "segment %zu pos %lld: no whole batch", i, (long long)pos);
                FUZZ_CHECK(ulog__batch_verify(b + pos, frame, &h) == 0,
                           "segment %zu pos %lld: batch does not verify", i, (long long)pos);
                FUZZ_CHECK(h.base_offset == next, "segment %zu pos %lld: offset %lld, want %lld",
                           i, (long long)pos, (long long)h.base_offset, (long long)next);
                next = h.base_offset + h.last_offset_delta + 1;
                if (h.max_timestamp > max_ts)
                    max_ts = h.max_timestamp;
                pos += (int64_t)frame;
            }
        }
        free(b);
    }
    FUZZ_CHECK(res.cut_bytes == cut, "cut_bytes %lld, %lld bytes were cut",
               (long long)res.cut_bytes, (long long)cut);
    if (!fromp) {
        FUZZ_CHECK(next == res.end.offset, "end.offset %lld, batches end at %lld",
                   (long long)res.end.offset, (long long)next);
        FUZZ_CHECK(max_ts == res.max_timestamp, "max_timestamp");
    }

    /* Idempotent: what one scan leaves, the next accepts whole. */
    ulog__scan_result again;
    rc = ulog__recover_scan(dfd, fromp, 0, 0640, &again);
    FUZZ_CHECK(rc == 0, "second recover_scan: %d", rc);
    FUZZ_CHECK(again.end.offset == res.end.offset && again.end.segment == res.end.segment &&
                   again.end.pos == res.end.pos,
               "second scan ends at (%lld, %lld, %lld), the first at (%lld, %lld, %lld)",
               (long long)again.end.offset, (long long)again.end.segment,
               (long long)again.end.pos, (long long)res.end.offset,
               (long long)res.end.segment, (long long)res.end.pos);
    FUZZ_CHECK(again.cut_bytes == 0 && again.cut_segments == 0, "second scan cut more");
    close(dfd);
    return 0;
}
