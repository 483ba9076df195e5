/*
 * dump.c -- `ulog dump SEGMENT_FILE`: the batches of one segment file, as
 * they are on disk, without opening a log (a segment copied off a broken
 * machine will do).
 *
 * The one command that reads the format itself: it uses the library's own
 * decoder from lib/internal.h (linked from libulog.a), so what it calls ok
 * is exactly what a reader accepts. The frame layout is at the top of
 * lib/batch.c.
 */
#include "cli.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: ulog dump [--records] SEGMENT_FILE\n"
    "\n"
    "Lists the batches of a segment file (topics/TOPIC/PARTITION/*.log under a\n"
    "log root; no log root needed): position, first and last offset, record\n"
    "count, base and max timestamps, size, magic, attributes and whether the\n"
    "batch verifies (CRC-32C and every record), then a summary line.\n"
    "  --records   also list each record: offset, timestamp, key and value\n"
    "              sizes (-1: null), header count\n"
    "Exit status 1 if a batch is bad, offsets are not contiguous, or the file\n"
    "ends in a torn (partial) batch.\n";

enum { OPT_RECORDS = 256 };

typedef struct dump_stats {
    int64_t     batches, bad, records, first, last, problems;
    const char *end;            /* NULL: a clean end; else what went wrong */
} dump_stats;

/* Offset the file name promises for the first batch ("%020lld.log"), or -1. */
static int64_t name_base(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int64_t v;
    char digits[21];
    if (strlen(base) != 24 || strcmp(base + 20, ".log") != 0)
        return -1;
    memcpy(digits, base, 20);
    digits[20] = '\0';
    return cli_parse_i64(digits, 0, INT64_MAX, &v) ? v : -1;
}

static void list_records(const uint8_t *p, size_t frame, const ulog__batch_hdr *h)
{
    const uint8_t *r = p + ULOG__BATCH_HEADER_SIZE, *end = p + frame;
    bool append_time = h->attributes & ULOG__ATTR_LOG_APPEND_TIME;
    for (int32_t i = 0; i < h->record_count; i++) {
        ulog__rec rec;
        if (ulog__rec_decode(r, end, &rec) != 0)
            return;             /* cannot happen: the batch verified */
        printf("    offset %lld  timestamp %lld  key %lld  value %lld  headers %zu\n",
               (long long)(h->base_offset + rec.offset_delta),
               (long long)(append_time ? h->max_timestamp : h->base_timestamp + rec.timestamp_delta),
               rec.key ? (long long)rec.key_len : -1LL, rec.value ? (long long)rec.value_len : -1LL,
               rec.header_count);
        r = rec.end;
    }
}

/* Walks the frames; sets st->end when the file does not end cleanly. */
static void walk(const uint8_t *a, int64_t size, bool records, int64_t next, dump_stats *st)
{
    static const uint8_t zeros[ULOG__BATCH_LOG_OVERHEAD];
    printf("%10s %12s %12s %6s %14s %14s %8s %5s %6s  %s\n", "POSITION", "BASE-OFFSET",
           "LAST-OFFSET", "COUNT", "BASE-TIME", "MAX-TIME", "SIZE", "MAGIC", "ATTR", "STATUS");
    int64_t pos = 0;
    while (pos < size) {
        const uint8_t *p = a + pos;
        size_t avail = (size_t)(size - pos), frame;
        if (avail >= sizeof zeros && memcmp(p, zeros, sizeof zeros) == 0) {
            /* The unused end of a segment allocated or sized ahead of its
             * data: fine if zero throughout. */
            size_t i = sizeof zeros;
            while (i < avail && p[i] == 0)
                i++;
            if (i == avail) {
                printf("%10lld  %zu zero bytes to the end of the file (allocated ahead, unused)\n",
                       (long long)pos, avail);
                return;
            }
            printf("%10lld  zero batch length, but data follows at position %lld: torn tail\n",
                   (long long)pos, (long long)(pos + (int64_t)i));
            st->end = "torn tail";
            return;
        }
        if (avail < ULOG__BATCH_LOG_OVERHEAD) {
            printf("%10lld  torn tail: %zu bytes, less than a batch header\n", (long long)pos, avail);
            st->end = "torn tail";
            return;
        }
        if (ulog__batch_frame_size(p, avail, &frame) != 0) {
            printf("%10lld  BAD batch length: the rest of the file (%zu bytes) cannot be read\n",
                   (long long)pos, avail);
            st->bad++;
            st->end = "unreadable rest";
            return;
        }
        if (frame > avail) {
            printf("%10lld  torn tail: a batch of %zu bytes, the file holds %zu of them\n",
                   (long long)pos, frame, avail);
            st->end = "torn tail";
            return;
        }
        ulog__batch_hdr h;
        st->batches++;
        if (ulog__batch_parse_header(p, frame, &h) != 0) {
            printf("%10lld %12s %12s %6s %14s %14s %8zu %5d %6s  BAD (magic)\n", (long long)pos,
                   "-", "-", "-", "-", "-", frame, (int)(int8_t)p[16], "-");
            st->bad++;
            pos += (int64_t)frame;
            next = -1;
            continue;
        }
        /* A file alone does not say which batches compaction rewrote: any
         * batch may have gaps. */
        int vr = ulog__batch_verify_gaps(p, frame, &h);
        bool crc_ok = ulog__crc32c(0, p + 21, frame - 21) == h.crc;
        const char *status = vr == 0 ? "ok" : !crc_ok ? "BAD (crc)"
                           : vr == ULOG_ENOTSUP ? "unsupported (compressed)" : "BAD (records)";
        int64_t last = h.base_offset + h.last_offset_delta;
        printf("%10lld %12lld %12lld %6d %14lld %14lld %8zu %5d 0x%04x  %s", (long long)pos,
               (long long)h.base_offset, (long long)last, (int)h.record_count,
               (long long)h.base_timestamp, (long long)h.max_timestamp, frame, (int)h.magic,
               (unsigned)(uint16_t)h.attributes, status);
        if (next >= 0 && h.base_offset != next) {
            printf("; offset gap: expected %lld", (long long)next);
            st->problems++;
        }
        putchar('\n');
        if (vr != 0) {
            st->bad++;
        } else {
            if (records)
                list_records(p, frame, &h);
            if (st->records == 0)
                st->first = h.base_offset;
            st->records += h.record_count;
            st->last = last;
        }
        next = last + 1;
        pos += (int64_t)frame;
    }
}

int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "records", no_argument, NULL, OPT_RECORDS },
        { NULL, 0, NULL, 0 },
    };
    bool records = false;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_RECORDS: records = true; break;
        case 'h': return cli_help(USAGE);
        default: return cli_bad_option("dump", c, argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("dump", "want exactly one SEGMENT_FILE");
    const char *path = argv[optind];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return cli_error("dump %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cli_error("dump %s: not a regular file", path);
    }
    const uint8_t *a = NULL;
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return cli_error("dump %s: mmap: %s", path, strerror(e));
        }
        a = m;
    }
    close(fd);
    dump_stats ds = { 0 };
    printf("%s: %lld bytes\n", path, (long long)st.st_size);
    walk(a, st.st_size, records, name_base(path), &ds);
    if (ds.records)
        printf("%lld batches, %lld bad, %lld records (offsets %lld..%lld)", (long long)ds.batches,
               (long long)ds.bad, (long long)ds.records, (long long)ds.first, (long long)ds.last);
    else
        printf("%lld batches, %lld bad, 0 records", (long long)ds.batches, (long long)ds.bad);
    printf(", %s\n", ds.end ? ds.end : "clean end");
    if (a)
        munmap((void *)a, (size_t)st.st_size);
    if (ds.bad || ds.problems || ds.end) {
        fflush(stdout);
        return cli_error("dump %s: %lld bad batch%s%s%s%s", path, (long long)ds.bad,
                         ds.bad == 1 ? "" : "es", ds.problems ? ", offsets not contiguous" : "",
                         ds.end ? ", " : "", ds.end ? ds.end : "");
    }
    return 0;
}
