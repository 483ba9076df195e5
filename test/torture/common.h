/* common.h -- what the torture driver (torture.c) and its checker (check.c)
 * agree on: how a record is named and filled, and the lines the workers log.
 *
 * Nothing here knows how ulog stores a record: the checker decodes the
 * segment files itself, and only needs to recognise the records it finds.
 *
 * A record id is 64 bits: slot (8) | incarnation (24) | sequence (32). The
 * slot is the writer slot (PROBE_SLOT for the checker's own probe appends),
 * the incarnation is unique per process started by the driver, the sequence
 * counts the records that incarnation tried to append. Every byte of a
 * record (its value length, value, key, header) is a function of its id, so
 * any record found anywhere can be verified on its own.
 *
 * Log lines are LINE bytes, space padded, ending in '\n': a write() of whole
 * lines is cut by a SIGKILL (if at all) at a page boundary, which is a line
 * boundary, so a reader of the file sees whole lines only.
 */
#ifndef TORTURE_COMMON_H
#define TORTURE_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC       "torture"
#define GROUP       "torture-group"
#define PROBE_SLOT  250u
#define LINE        64
#define MAX_PARTS   16
/* Values: mostly 16..315 bytes; one record in BIG_EVERY is 256 KiB..1 MiB,
 * so that a pwrite takes long enough to be cut by a kill. A writer that is
 * told to (the driver's control file, at the end of an epoch) skips ahead
 * to the next sequence number whose record is big. */
#define BIG_EVERY   8000
#define BIG_MIN     (256 * 1024)
#define BIG_SPAN    (768 * 1024)
#define MAX_VALUE   (BIG_MIN + BIG_SPAN)
#define MAX_BATCH_BYTES (3 * 1024 * 1024)
#define MAX_MESSAGE_BYTES (4 * 1024 * 1024)

/* Runs with an encrypted topic (--encrypt 1, or an odd seed) seal values
 * under this key, which every handle of the run is given (a topic that is
 * not encrypted does not use it). */
static const uint8_t TORTURE_KEY[32] = "torture key: 32 bytes, no more.";
#define TORTURE_KEY_ID 1

#define HEADER_KEY  "tid"

static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline uint64_t rec_id(uint32_t slot, uint32_t inc, uint32_t seq)
{
    return ((uint64_t)(slot & 0xff) << 56) | ((uint64_t)(inc & 0xffffff) << 32) | seq;
}
static inline uint32_t id_slot(uint64_t id) { return (uint32_t)(id >> 56); }
static inline uint32_t id_inc(uint64_t id) { return (uint32_t)(id >> 32) & 0xffffff; }
static inline uint32_t id_seq(uint64_t id) { return (uint32_t)id; }

static inline size_t value_len(uint64_t id)
{
    uint64_t r = mix64(id ^ 0x5a5a);
    if (r % BIG_EVERY == 0)
        return BIG_MIN + (size_t)((r >> 20) % BIG_SPAN);
    return 16 + (size_t)((r >> 8) % 300);
}

static inline bool is_big(uint64_t id) { return value_len(id) >= BIG_MIN; }

/* The control file the driver shares with the writers. */
#define CONTROL_SIZE 4096
enum { CTL_BIG = 0 };       /* byte: every writer writes big records now */
#define CTL_BIG_SLOT 1      /* byte CTL_BIG_SLOT + slot: that writer does */
/* int32 at CTL_PID + 4 * (role * 32 + slot): the pid of the slot's worker
 * (under strace the driver does not know it otherwise). */
#define CTL_PID 64

/* The value: id (8 bytes, little-endian), length (4), then bytes of
 * mix64(id, chunk). */
static inline void value_fill(uint8_t *buf, uint64_t id, size_t len)
{
    uint32_t l32 = (uint32_t)len;
    memcpy(buf, &id, 8);
    memcpy(buf + 8, &l32, 4);
    for (size_t i = 12, k = 0; i < len; i += 8, k++) {
        uint64_t w = mix64(id * 0x2545f4914f6cdd1dULL + k);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(buf + i, &w, n);
    }
}

/* Whether v is the value of some record; its id in *id. */
static inline bool value_ok(const void *v, size_t len, uint64_t *id)
{
    if (!v || len < 12)
        return false;
    const uint8_t *b = v;
    uint32_t l32;
    memcpy(id, b, 8);
    memcpy(&l32, b + 8, 4);
    if (l32 != len || value_len(*id) != len)
        return false;
    for (size_t i = 12, k = 0; i < len; i += 8, k++) {
        uint64_t w = mix64(*id * 0x2545f4914f6cdd1dULL + k);
        size_t n = len - i < 8 ? len - i : 8;
        if (memcmp(b + i, &w, n) != 0)
            return false;
    }
    return true;
}

/* Key: null for a quarter of the ids, else the id in hex (16 bytes). */
static inline bool key_null(uint64_t id) { return (mix64(id ^ 0x6b6b) >> 40) % 4 == 0; }
static inline void key_fill(char out[17], uint64_t id)
{
    snprintf(out, 17, "%016llx", (unsigned long long)id);
}
/* One header "tid" = the id (8 bytes) on a fifth of the records. */
static inline bool has_header(uint64_t id) { return (mix64(id ^ 0x6868) >> 50) % 5 == 0; }

/* ---------------------------------------------------------------- lines
 *
 * writer-<slot>.log, probe.log:
 *   A <id> p<part> o<offset>       appended, acknowledged (after the call)
 *   F <id> e<err>                  the call failed for this record
 * reader-<slot>.log, committer-<slot>.log:
 *   S <inc> p<part> o<pos>         the next record polled from part is pos
 *   R <inc> p<part> o<off> <id>    polled (value verified: 'D' if damaged)
 *   G <inc> p<part> c<committed> l<low> h<high>   the group before subscribe
 *   c <inc> n<commit> p<part> o<pos>   commit begun (all parts, one write)
 *   C <inc> n<commit>              commit returned 0
 *   E <inc> n<commit> e<err>       commit failed
 *   X <inc> e<err> <what>          an unexpected error from a ulog call
 */
static inline void line_pad(char *l, int n)
{
    if (n < 0)
        n = 0;
    if (n > LINE - 1)
        n = LINE - 1;
    memset(l + n, ' ', (size_t)(LINE - 1 - n));
    l[LINE - 1] = '\n';
}

/* Writes all of buf to an O_APPEND descriptor; exits on failure. */
static inline void write_lines(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(70);
        p += w;
        len -= (size_t)w;
    }
}

#endif
