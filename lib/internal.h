/*
 * internal.h -- declarations shared between the files of lib/. Not installed.
 *
 * Layers (lib/README.md): format (crc32c, batch) -> storage (segment, head,
 * recover, meta) -> log (partition, topic, config) -> API (sub, ulog).
 * Lower layers never call upward.
 */
#ifndef ULOG_INTERNAL_H
#define ULOG_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <dirent.h>
#include "ulog.h"

#define ULOG__HIDDEN __attribute__((visibility("hidden")))

/* ================================================================ crc32c.c */

/* CRC-32C (Castagnoli), as Kafka and RFC 3720 use it: reflected polynomial
 * 0x82F63B78, initial value ~0, final xor ~0. `crc` is the value of a previous
 * call (0 to start), so ulog__crc32c(ulog__crc32c(0,a,n),b,m) == crc of a||b.
 * Picks the fastest path the CPU has: AVX-512 VPCLMULQDQ folding for long
 * buffers, else three interleaved SSE4.2 crc32 streams, else tables. */
uint32_t ulog__crc32c(uint32_t crc, const void *buf, size_t len) ULOG__HIDDEN;
/* The two paths, exposed for tests. _hw is only valid when
 * ulog__crc32c_hw_available() is true. */
uint32_t ulog__crc32c_sw(uint32_t crc, const void *buf, size_t len) ULOG__HIDDEN;
uint32_t ulog__crc32c_hw(uint32_t crc, const void *buf, size_t len) ULOG__HIDDEN;
bool     ulog__crc32c_hw_available(void) ULOG__HIDDEN;

/* ================================================================ batch.c */

/* Kafka RecordBatch v2; byte layout at the top of batch.c. */
#define ULOG__BATCH_HEADER_SIZE   61   /* baseOffset .. recordCount */
#define ULOG__BATCH_LOG_OVERHEAD  12   /* baseOffset + batchLength */
#define ULOG__BATCH_MAGIC         2
#define ULOG__ATTR_COMPRESSION    0x07
#define ULOG__ATTR_LOG_APPEND_TIME 0x08
#define ULOG__ATTR_TRANSACTIONAL  0x10
#define ULOG__ATTR_CONTROL        0x20
#define ULOG__ATTR_DELETE_HORIZON 0x40   /* baseTimestamp is the batch's delete
                                            horizon (Kafka's KIP-534) */

typedef struct ulog__batch_hdr {
    int64_t  base_offset;
    int32_t  batch_length;      /* bytes after the batchLength field */
    int32_t  leader_epoch;
    int8_t   magic;
    uint32_t crc;
    int16_t  attributes;
    int32_t  last_offset_delta;
    int64_t  base_timestamp;
    int64_t  max_timestamp;
    int64_t  producer_id;
    int16_t  producer_epoch;
    int32_t  base_sequence;
    int32_t  record_count;
} ulog__batch_hdr;

/* One decoded record; pointers borrow the batch bytes. */
typedef struct ulog__rec {
    int64_t        offset_delta;
    int64_t        timestamp_delta;
    const uint8_t *key;          /* NULL: null key */
    size_t         key_len;
    const uint8_t *value;        /* NULL: null value */
    size_t         value_len;
    size_t         header_count;
    const uint8_t *headers;      /* first header's bytes */
    const uint8_t *end;          /* one past this record */
} ulog__rec;

/* The records of one batch for the encoder: recs[idx[i]] for i < n, or
 * recs[i] when idx is NULL. */
typedef struct ulog__batch_src {
    const ulog_record *recs;
    const uint32_t    *idx;
    size_t             n;
} ulog__batch_src;

/* Exact encoded size of the batch (header + records), or 0 when it would
 * exceed INT32_MAX or n == 0. */
size_t ulog__batch_size(const ulog__batch_src *src, int64_t now_ms) ULOG__HIDDEN;
/* An upper bound of that size, from the records' lengths alone (a cheap
 * pass): INT32_MAX + 1 when it would exceed INT32_MAX, 0 when n == 0. The
 * length of a NULL key or value counts too (a looser bound). */
size_t ulog__batch_bound(const ulog__batch_src *src) ULOG__HIDDEN;
/* Encodes the batch into buf, which has room for `cap` bytes, at least
 * ulog__batch_size() (ulog__batch_bound() is enough), and returns its size
 * (0 when n == 0): baseOffset 0,
 * partitionLeaderEpoch -1, producerId -1, producerEpoch -1, baseSequence -1,
 * offsetDelta i for the i-th record. Records whose timestamp is
 * ULOG_TIMESTAMP_NOW get now_ms. With log_append_time the batch is stamped
 * as a Kafka broker does it: record deltas keep their create times (so the
 * size does not depend on the flag), maxTimestamp is now_ms and attribute
 * bit 3 is set; readers then take maxTimestamp as every record's time.
 * Computes the CRC. Writes the batch's max timestamp to *max_ts when not
 * NULL. */
size_t ulog__batch_encode(uint8_t *buf, size_t cap, const ulog__batch_src *src,
                          int64_t now_ms, bool log_append_time,
                          int64_t *max_ts) ULOG__HIDDEN;
/* Writes the header h describes (batch_length, magic and crc are derived)
 * in front of the records already in buf[61, size), and the CRC: for
 * batches rewritten by compaction. */
void ulog__batch_seal(uint8_t *buf, size_t size, const ulog__batch_hdr *h) ULOG__HIDDEN;
/* Patch baseOffset and partitionLeaderEpoch (neither is covered by the
 * CRC), under the writer lock. */
void ulog__batch_set_base_offset(uint8_t *buf, int64_t base_offset) ULOG__HIDDEN;
void ulog__batch_set_leader_epoch(uint8_t *buf, uint32_t epoch) ULOG__HIDDEN;

/* Reads the 12-byte log overhead at buf: returns the whole frame size
 * (12 + batchLength) in *frame, or ULOG_ECORRUPT when batchLength is outside
 * [49, INT32_MAX-12]. avail < 12: ULOG_ECORRUPT. */
int ulog__batch_frame_size(const uint8_t *buf, size_t avail, size_t *frame) ULOG__HIDDEN;
/* Parses and fully verifies the batch at buf (the whole frame must be in
 * [buf, buf+avail)): length bounds, magic 2, CRC-32C, compression codec 0
 * (else ULOG_ENOTSUP), and every record decodes, fits exactly, count matches,
 * offset deltas run 0, 1, 2, ... to lastOffsetDelta = recordCount - 1, as
 * an append writes them.
 * Returns 0 or ULOG_ECORRUPT / ULOG_ENOTSUP. Fills *h. */
int ulog__batch_verify(const uint8_t *buf, size_t avail, ulog__batch_hdr *h) ULOG__HIDDEN;
/* The same for a batch compaction may have rewritten (below the head's
 * `compacted`): offset deltas only increase, within [0, lastOffsetDelta],
 * and recordCount may be anything from 0 to lastOffsetDelta + 1. */
int ulog__batch_verify_gaps(const uint8_t *buf, size_t avail, ulog__batch_hdr *h) ULOG__HIDDEN;
/* Verifies what readers need before decoding records lazily: frame within
 * avail, length bounds, magic 2, codec 0 (else ULOG_ENOTSUP), CRC-32C,
 * non-negative baseOffset and lastOffsetDelta without overflow of
 * baseOffset+lastOffsetDelta, recordCount = lastOffsetDelta + 1 (or, in
 * the _gaps variant, 0 <= recordCount <= lastOffsetDelta + 1). Does not walk the records:
 * ulog__rec_decode checks each record's bounds as the reader goes. */
int ulog__batch_check(const uint8_t *buf, size_t avail, ulog__batch_hdr *h) ULOG__HIDDEN;
int ulog__batch_check_gaps(const uint8_t *buf, size_t avail, ulog__batch_hdr *h) ULOG__HIDDEN;
/* Parses the 61-byte header without verifying the CRC or the records (it
 * does reject a bad batchLength and a magic other than 2, since the fields
 * are elsewhere in other versions). */
int ulog__batch_parse_header(const uint8_t *buf, size_t avail, ulog__batch_hdr *h) ULOG__HIDDEN;
/* First record of a verified batch starts at buf + ULOG__BATCH_HEADER_SIZE.
 * Decodes the record at p (bounded by end) into *r. ULOG_ECORRUPT on any
 * bounds or varint error. r->end is where the next record starts. */
int ulog__rec_decode(const uint8_t *p, const uint8_t *end, ulog__rec *r) ULOG__HIDDEN;
/* The same, inline: ulog__rec_decode_fast() (the per-record path). */
#include "rec_decode.h"
/* The index-th header of a record (index < r->header_count). */
int ulog__rec_header(const ulog__rec *r, size_t index, ulog_header *out) ULOG__HIDDEN;

/* Varints (zigzag), exposed for tests. Return bytes used/written; 0 on error.
 * A buffer of 10 bytes always suffices for writing. */
size_t ulog__varint_put(uint8_t *p, int64_t v) ULOG__HIDDEN;
size_t ulog__varint_get(const uint8_t *p, const uint8_t *end, int64_t *v) ULOG__HIDDEN;
size_t ulog__varint_len(int64_t v) ULOG__HIDDEN;

/* ================================================================ partitioner.c */

/* Kafka's murmur2 (the Java client's), as a signed 32-bit value. */
int32_t ulog__murmur2(const void *key, size_t len) ULOG__HIDDEN;

/* ================================================================ config.c */

/* Where a setting applies. */
enum { ULOG__SCOPE_LOG = 1, ULOG__SCOPE_TOPIC = 2, ULOG__SCOPE_SUB = 4 };

enum ulog__flush { ULOG__FLUSH_NONE, ULOG__FLUSH_INTERVAL, ULOG__FLUSH_ALWAYS };
enum ulog__reset { ULOG__RESET_LATEST, ULOG__RESET_EARLIEST, ULOG__RESET_NONE };

#define ULOG__GROUPS_MAX 1023   /* longest retention.groups value */

/* A topic's settings, parsed. */
typedef struct ulog__topic_cfg {
    int64_t segment_bytes;
    int64_t max_message_bytes;
    int     flush_policy;             /* enum ulog__flush */
    int64_t flush_ms;
    int64_t index_interval_bytes;
    bool    log_append_time;
    bool    preallocate;              /* allocate segment.bytes at creation */
    int64_t retention_ms;             /* -1: keep forever */
    int64_t retention_bytes;          /* -1: no bound */
    int64_t segment_ms;
    /* retention.groups: "" none, "*" every group, or names joined by commas */
    char    retention_groups[ULOG__GROUPS_MAX + 1];
    int     cleanup_policy;           /* enum ulog__cleanup */
    int64_t delete_retention_ms;      /* how long compaction keeps tombstones */
    int64_t min_compaction_lag_ms;    /* records younger than this stay as written */
    int32_t min_cleanable_dirty_ppm;  /* min.cleanable.dirty.ratio, in millionths */
    bool    replication_sync;         /* appends wait for the acknowledging hook */
    int64_t replication_timeout_ms;   /* ... this long at most */
    int64_t encryption_key_id;        /* -1: values stored as given */
} ulog__topic_cfg;

/* cleanup.policy. Choice i of the setting parses to i, so this order is the
 * table's in config.c. */
enum ulog__cleanup { ULOG__CLEANUP_DELETE, ULOG__CLEANUP_COMPACT, ULOG__CLEANUP_COMPACT_DELETE };

/* Whether retention.ms / retention.bytes delete old segments: with
 * cleanup.policy=compact alone they do not, as in Kafka. */
static inline bool ulog__cleanup_deletes(const ulog__topic_cfg *c)
{
    return c->cleanup_policy == ULOG__CLEANUP_DELETE ||
           c->cleanup_policy == ULOG__CLEANUP_COMPACT_DELETE;
}

/* Whether the topic is compacted (keeps the latest record per key), which
 * also means every record needs a key. */
static inline bool ulog__cleanup_compacts(const ulog__topic_cfg *c)
{
    return c->cleanup_policy == ULOG__CLEANUP_COMPACT ||
           c->cleanup_policy == ULOG__CLEANUP_COMPACT_DELETE;
}

typedef struct ulog__log_cfg {
    int     file_mode;
    int     dir_mode;
    int64_t index_flush_ms;
    int64_t retention_check_ms;
} ulog__log_cfg;

typedef struct ulog__sub_cfg {
    int reset;                        /* enum ulog__reset */
    int spin_us;                      /* poll.spin.us */
    bool read_replicated;             /* poll stops at the replica watermark */
} ulog__sub_cfg;

/* Each parses the names of its scope from cfg (NULL: defaults) into *out.
 * A name of another scope is ULOG_EINVAL with a message in errbuf. */
int ulog__config_log(const ulog_config *cfg, ulog__log_cfg *out,
                     char *errbuf, size_t len) ULOG__HIDDEN;
int ulog__config_topic(const ulog_config *cfg, ulog__topic_cfg *out,
                       char *errbuf, size_t len) ULOG__HIDDEN;
/* The settings of base with those of cfg (topic scope only) applied. */
int ulog__config_topic_alter(const ulog__topic_cfg *base, const ulog_config *cfg,
                             ulog__topic_cfg *out, char *errbuf, size_t len) ULOG__HIDDEN;
int ulog__config_sub(const ulog_config *cfg, ulog__sub_cfg *out,
                     char *errbuf, size_t len) ULOG__HIDDEN;
/* Topic settings to and from the text stored in LMDB: "name=value\n" lines,
 * every topic setting present. *text: caller frees with free(). Decoding
 * rejects unknown names and bad values with ULOG_ECORRUPT. */
int ulog__topic_cfg_encode(const ulog__topic_cfg *tc, char **text, size_t *len) ULOG__HIDDEN;
int ulog__topic_cfg_decode(const char *text, size_t len, ulog__topic_cfg *out) ULOG__HIDDEN;
/* A ulog_config holding every topic setting of tc. */
int ulog__topic_cfg_export(const ulog__topic_cfg *tc, ulog_config **out) ULOG__HIDDEN;

/* ================================================================ names.c */

/* Topic and group names: 1-249 bytes of [A-Za-z0-9._-], not "." or "..".
 * Checked before any path is built. */
#define ULOG__NAME_MAX 249     /* longest topic or group name */
bool ulog__name_valid(const char *name) ULOG__HIDDEN;

/* ================================================================ meta.c */

typedef struct ulog__meta ulog__meta;

typedef struct ulog__topic_rec {
    uint32_t        id;
    int32_t         partitions;
    uint32_t        cfg_version;    /* 0 until ulog_topic_alter */
    ulog__topic_cfg cfg;
} ulog__topic_rec;

/* One entry of the sparse offset index: offset -> (segment base, position). */
typedef struct ulog__index_entry {
    uint32_t topic_id;
    int32_t  partition;
    int64_t  offset;          /* base offset of the batch at `pos` */
    int64_t  segment;         /* base offset of the segment */
    int64_t  pos;             /* byte position in the segment */
    int64_t  max_timestamp;   /* max timestamp of all records up to and
                                 including this batch; INT64_MIN: no time
                                 index entry */
} ulog__index_entry;

/* Recovery checkpoint: every byte below (segment, pos) is durable and valid,
 * and `offset` is the next offset after them. */
typedef struct ulog__checkpoint {
    uint32_t topic_id;
    int32_t  partition;
    int64_t  offset;
    int64_t  segment;
    int64_t  pos;
    int64_t  max_timestamp;   /* >= every timestamp below offset: restarts
                                 the time index's running max after a reboot */
} ulog__checkpoint;

int  ulog__meta_open(const char *root, int file_mode, int dir_mode,
                     ulog__meta **out) ULOG__HIDDEN;
void ulog__meta_close(ulog__meta *m) ULOG__HIDDEN;
/* Clears reader slots of dead processes (mdb_reader_check). */
void ulog__meta_reader_check(ulog__meta *m) ULOG__HIDDEN;

/* ULOG_ENOENT when absent. */
int ulog__meta_topic_get(ulog__meta *m, const char *name, ulog__topic_rec *out) ULOG__HIDDEN;
/* A step run inside a catalog write transaction, which serialises it with
 * every other catalog change in every process; non-zero aborts. */
typedef int ulog__meta_step_fn(void *arg);
/* Adds a topic with a fresh id; ULOG_EEXIST if the name is taken. prepare
 * (may be NULL) runs once the name is known to be free, before the add. */
int ulog__meta_topic_add(ulog__meta *m, const char *name, int32_t partitions,
                         const ulog__topic_cfg *cfg, ulog__meta_step_fn *prepare,
                         void *arg, uint32_t *id_out) ULOG__HIDDEN;
int ulog__meta_topic_list(ulog__meta *m, ulog_strlist **out) ULOG__HIDDEN;
/* Edits the settings of topic `name` in place, if its id is `id` (else
 * ULOG_ENOENT), inside the write transaction; non-zero aborts.
 * *version_out: the record's new settings version. */
typedef int ulog__meta_cfg_fn(ulog__topic_cfg *cfg, void *arg);
int ulog__meta_topic_set_cfg(ulog__meta *m, const char *name, uint32_t id,
                             ulog__meta_cfg_fn *edit, void *arg,
                             uint32_t *version_out) ULOG__HIDDEN;
/* Removes topic `name` if its id is `id` (else ULOG_ENOENT), with its index
 * entries, checkpoints and every group's committed offsets for it;
 * unlink_dir (may be NULL) runs once the id is checked, before the removal. */
int ulog__meta_topic_delete(ulog__meta *m, const char *name, uint32_t id,
                            ulog__meta_step_fn *unlink_dir, void *arg) ULOG__HIDDEN;

/* Writes index entries (offset index, and time index where max_timestamp
 * grows past the last stored entry of that partition) and checkpoints in one
 * write transaction. An entry with an existing key overwrites it. */
typedef bool ulog__meta_keep_fn(uint32_t topic_id, void *arg);
int ulog__meta_flush(ulog__meta *m, const ulog__index_entry *e, size_t ne,
                     const ulog__checkpoint *cp, size_t ncp,
                     ulog__meta_keep_fn *keep, void *arg) ULOG__HIDDEN;
/* The index entry with the greatest offset <= `offset`; ULOG_ENOENT if none. */
int ulog__meta_index_floor(ulog__meta *m, uint32_t topic_id, int32_t partition,
                           int64_t offset, ulog__index_entry *out) ULOG__HIDDEN;
/* The time-index entry with the greatest max_timestamp < ts (the scan for the
 * first record with timestamp >= ts may start at its offset); ULOG_ENOENT if
 * none (start at the beginning). */
int ulog__meta_time_floor(ulog__meta *m, uint32_t topic_id, int32_t partition,
                          int64_t ts, ulog__index_entry *out) ULOG__HIDDEN;
/* Deletes offset- and time-index entries with offset >= from (after a
 * truncation), and drops the checkpoint if it is past `from`. */
int ulog__meta_truncate(ulog__meta *m, uint32_t topic_id, int32_t partition,
                        int64_t from) ULOG__HIDDEN;
/* A partition's lasting state beyond its segments. */
typedef struct ulog__part_state {
    int64_t log_start;     /* records below it are gone (retention, DeleteRecords) */
    int64_t reclaimed;     /* bytes retention and compaction removed, ever */
    int64_t cleaned_ms;    /* when either last removed something; 0: never */
    int64_t cleaned_end;   /* compaction: below it every key's latest record is
                              the only one (the clean part); 0: never compacted */
    int64_t swap_from;     /* a compaction swap under way: segments [swap_from,
                              swap_to) are being replaced by swap_from.cleaned */
    int64_t swap_to;       /* (-1, -1: none) */
    int64_t horizon;       /* the earliest delete horizon of a batch holding
                              tombstones in the clean part; 0: none */
    int64_t rewritten;     /* batches below it may be ones compaction
                              rewrote, with gaps */
} ulog__part_state;
/* ULOG_ENOENT when the partition has none (log start 0, nothing reclaimed). */
int ulog__meta_part_state_get(ulog__meta *m, uint32_t topic_id, int32_t partition,
                              ulog__part_state *out) ULOG__HIDDEN;
/* Raises the log start to log_start (never lowers it), adds `reclaimed`
 * bytes (then cleaned_ms = now_ms), and drops index entries below the log
 * start, in one transaction; *out (may be NULL): the state written. */
int ulog__meta_part_state_advance(ulog__meta *m, uint32_t topic_id, int32_t partition,
                                  int64_t log_start, int64_t reclaimed, int64_t now_ms,
                                  ulog__part_state *out) ULOG__HIDDEN;
/* Sets the log start to exactly `start` (the open that found the log
 * shorter than the log start after a power cut). */
int ulog__meta_part_state_set_start(ulog__meta *m, uint32_t topic_id, int32_t partition,
                                    int64_t start) ULOG__HIDDEN;
/* Compaction's swap, its commit point (compact.c): records the swap of
 * segments [from, to) and replaces the partition's index entries for
 * offsets in [from, to) by e[0..n) (ascending), in one transaction. */
int ulog__meta_compact_begin(ulog__meta *m, uint32_t topic_id, int32_t partition,
                             int64_t from, int64_t to, const ulog__index_entry *e,
                             size_t n) ULOG__HIDDEN;
/* Ends the swap: clears it, raises cleaned_end and rewritten, adds
 * `reclaimed` bytes (cleaned_ms = now_ms when > 0), and sets the earliest
 * tombstone delete horizon (0: none; -1: leave it). */
int ulog__meta_compact_end(ulog__meta *m, uint32_t topic_id, int32_t partition,
                           int64_t cleaned_end, int64_t rewritten, int64_t reclaimed,
                           int64_t now_ms, int64_t horizon) ULOG__HIDDEN;
/* Raises rewritten to `to` (never lowers it): ulog_append_raw, before it
 * writes a batch with gaps that ends there. */
int ulog__meta_raise_rewritten(ulog__meta *m, uint32_t topic_id, int32_t partition,
                               int64_t to) ULOG__HIDDEN;
/* ULOG_ENOENT when the partition has none. */
int ulog__meta_checkpoint_get(ulog__meta *m, uint32_t topic_id, int32_t partition,
                              ulog__checkpoint *out) ULOG__HIDDEN;

/* A group's committed offset for one partition. */
typedef struct ulog__group_entry {
    uint32_t topic_id;
    int32_t  partition;
    int64_t  offset;
    int64_t  time_ms;
} ulog__group_entry;

/* Stores offsets[i] for (group, topic, offsets[i].partition), all or none;
 * ULOG_ENOENT when the catalog no longer has the topic by that name and id. */
int ulog__meta_group_commit(ulog__meta *m, const char *group, const char *topic,
                            uint32_t topic_id,
                            const ulog_offset *offsets, size_t n, int64_t now_ms) ULOG__HIDDEN;
/* offsets[i]: the committed offset of partition i, -1 for none. */
int ulog__meta_group_get(ulog__meta *m, const char *group, uint32_t topic_id,
                         int32_t partitions, int64_t *offsets) ULOG__HIDDEN;
/* Every entry of a group in (topic id, partition) order; caller frees *out.
 * ULOG_ENOENT when the group has none. */
int ulog__meta_group_entries(ulog__meta *m, const char *group, ulog__group_entry **out,
                             size_t *count) ULOG__HIDDEN;
/* Calls fn with every committed offset of every group, in key order, until
 * it returns non-zero (which is returned). */
typedef int ulog__group_fn(void *arg, const char *group, uint32_t topic, uint32_t partition,
                           int64_t offset, int64_t time_ms);
int ulog__meta_group_walk(ulog__meta *m, ulog__group_fn *fn, void *arg) ULOG__HIDDEN;
/* ULOG_ENOENT when the group has no entry. */
int ulog__meta_group_delete(ulog__meta *m, const char *group) ULOG__HIDDEN;
int ulog__meta_group_list(ulog__meta *m, ulog_strlist **out) ULOG__HIDDEN;
/* The name of topic `id` (a scan of the catalog); ULOG_ENOENT if none. */
int ulog__meta_topic_name(ulog__meta *m, uint32_t id, char name[ULOG__NAME_MAX + 1]) ULOG__HIDDEN;

/* ================================================================ strlist */

int ulog__strlist_new(size_t count, ulog_strlist **out) ULOG__HIDDEN;
/* Copies s into slot i. */
int ulog__strlist_set(ulog_strlist *l, size_t i, const char *s) ULOG__HIDDEN;

/* ================================================================ errors */

/* errno -> ULOG_E*. */
int ulog__errno_to_err(int e) ULOG__HIDDEN;

/* ================================================================ segment.c */

/* Segment files "<20-digit base offset>.log" in a partition directory. */
#define ULOG__SEG_NAME_LEN 24

void ulog__seg_name(char out[ULOG__SEG_NAME_LEN + 1], int64_t base) ULOG__HIDDEN;
/* Creates (or empties a leftover of) segment `base`, allocates `prealloc`
 * bytes of zeros in it when > 0 (where the filesystem can), and makes it
 * durable: fsync of the file, then of the directory, before returning. */
int ulog__seg_create(int dirfd, int64_t base, int mode, int64_t prealloc,
                     int *fd_out) ULOG__HIDDEN;
/* Cuts a closed segment's file to `size` (a preallocated or torn tail past
 * its last batch) and makes that durable. */
int ulog__seg_trim(int fd, int64_t size) ULOG__HIDDEN;
int ulog__seg_open(int dirfd, int64_t base, bool writable, int *fd_out) ULOG__HIDDEN;
/* Base offsets of the segment files, sorted ascending. Caller frees *bases. */
int ulog__seg_list(int dirfd, int64_t **bases, size_t *n) ULOG__HIDDEN;
/* Opens directory dirfd for reading with an open file description of its
 * own (readdir positions are not shared). */
int ulog__dir_open(int dirfd, DIR **out) ULOG__HIDDEN;
/* Smallest segment base > after; ULOG_ENOENT when none. */
int ulog__seg_next(int dirfd, int64_t after, int64_t *base) ULOG__HIDDEN;
/* Largest segment base <= offset; ULOG_ENOENT when none. */
int ulog__seg_floor(int dirfd, int64_t offset, int64_t *base) ULOG__HIDDEN;
/* The size of segment `base`'s file; 0 when it cannot be read (gone). */
int64_t ulog__seg_size(int dirfd, int64_t base) ULOG__HIDDEN;
/* The largest batch maxTimestamp from `pos` to the end of segment `seg`,
 * where the batch at pos must start at offset `at` (-1: any). Headers only.
 * *whole is false when the walk did not end exactly at the end of the file,
 * or the batch at pos is not the one expected: then what follows is
 * unknown. */
int ulog__seg_max_ts(int dirfd, int64_t seg, int64_t pos, int64_t at, int64_t *out,
                     bool *whole) ULOG__HIDDEN;
/* ulog__seg_list, and each segment's size in *sizes. Caller frees both. */
int ulog__seg_list_sizes(int dirfd, int64_t **bases, int64_t **sizes,
                         size_t *n) ULOG__HIDDEN;
/* How many leading segments of bases[0..n) lie wholly below `offset`
 * (each one's successor starts at or below it): never the last, active one. */
size_t ulog__segs_below(const int64_t *bases, size_t n, int64_t offset) ULOG__HIDDEN;
/* Removes the segments that lie wholly below `offset` (those whose next
 * segment starts at or below it), oldest first, then syncs the directory;
 * counts what it removed. A segment already gone is skipped. */
int ulog__seg_drop_below(int dirfd, int64_t offset, int64_t *segments,
                         int64_t *bytes) ULOG__HIDDEN;
/* Writes all of buf at pos, retrying short writes and EINTR. */
int ulog__pwrite_all(int fd, const void *buf, size_t len, int64_t pos) ULOG__HIDDEN;
int ulog__fsync_dir(int dirfd) ULOG__HIDDEN;

/* A read-only mapping of a segment. Bytes are only touched below `size`,
 * the file size last seen, so a mapping never faults. */
typedef struct ulog__map {
    int            fd;
    int64_t        base;
    const uint8_t *addr;
    size_t         len;     /* mapped length (>= size) */
    int64_t        size;    /* file size at the last refresh */
    uint64_t       ino;     /* the file: compaction puts a new one under */
    uint64_t       dev;     /*   an old name */
} ulog__map;
#define ULOG__MAP_INIT { -1, -1, NULL, 0, 0, 0, 0 }
int  ulog__map_open(int dirfd, int64_t base, size_t reserve, ulog__map *m) ULOG__HIDDEN;
/* Re-reads the file size, remapping if it outgrew the mapping. */
int  ulog__map_refresh(ulog__map *m) ULOG__HIDDEN;
void ulog__map_close(ulog__map *m) ULOG__HIDDEN;

/* fdatasync as the library calls it. A test swaps it to inject failures
 * (the fsync-failure rule cannot be tested otherwise). */
extern int (*ulog__fdatasync)(int fd) ULOG__HIDDEN;

/* ================================================================ head.c */

#include <pthread.h>
#include <sys/types.h>

/* A position in the log: next offset, and where its batch starts. */
typedef struct ulog__pos {
    int64_t offset;
    int64_t segment;
    int64_t pos;
} ulog__pos;

#define ULOG__HEAD_MAGIC   0x44414548474f4c55ULL   /* "ULOGHEAD" */
#define ULOG__HEAD_VERSION 4
#define ULOG__HEAD_SIZE    4096
#define ULOG__FAIL_RING    16

/*
 * `head`: the state of one partition, in a small file every process maps
 * shared. It lives in the page cache: it survives a process crash, not a
 * reboot, hence the boot id. Fields marked (w) change only under `wlock`,
 * (s) only under `slock`; (a) are read and written with atomics. Lock order:
 * slock before wlock.
 */
typedef struct ulog__head {
    uint64_t magic;
    uint32_t version;
    uint32_t layout;          /* sizes of this struct and of the mutex type */
    char     boot_id[40];
    uint32_t ready;           /* (a) 1 once initialised for boot_id */
    uint32_t poisoned;        /* (a) appends refused until recovery */
    pthread_mutex_t wlock;    /* writer lock: robust, process-shared */
    pthread_mutex_t slock;    /* sync-leader lock: robust, process-shared */
    ulog__pos wend;           /* (w) write end: next offset and its place */
    ulog__pos mark;           /* (w) write end before the write in flight */
    uint32_t  marked;         /* (w,a) a write is in flight past `mark` */
    uint32_t  gen;            /* (w,a) bumped when segments are cut, so
                                 processes drop descriptors of removed files */
    int64_t   index_pos;      /* (w) position of the last index entry in
                                 wend.segment, -1 for none yet */
    int64_t   max_ts;         /* (w) greatest timestamp written so far */
    int64_t   committed;      /* (a) readers see offsets below this */
    int64_t   low;            /* (a) first offset held */
    int64_t   compacted;      /* (a) batches below it may be ones compaction
                                 rewrote, with gaps; only raised */
    int64_t   replicated;     /* (a) replica watermark: the acknowledging
                                 hook has shipped the offsets below it; only
                                 raised, from 0 when the head is made */
    uint32_t  bell;           /* (a) futex word: bumped on every publish; the
                                 topic's bell is partition 0's */
    uint32_t  bell_waiters;   /* (a) sleepers on bell */
    uint32_t  synced_cur;     /* (a) which of synced[] is current */
    uint32_t  fail_epoch;     /* (a) bumped by every fsync-failure cut */
    uint32_t  sync_seq;       /* (a) futex word: bumped when a sync leader
                                 finishes, so followers sleep, not queue */
    uint32_t  sync_waiters;   /* (a) sleepers on sync_seq */
    uint32_t  sync_busy;      /* (a) appenders busy when the last sync ended */
    uint32_t  gather_timer;   /* (a) an appender times the current gather */
    uint32_t  deleted;        /* (a) the topic was deleted: appends and polls
                                 fail with ULOG_ENOENT (set under wlock) */
    uint32_t  cfg_gen;        /* (a) the topic's settings version: bumped past
                                 the catalog's by ulog_topic_alter */
    uint64_t  batches;        /* (a) batches written, ever (wraps) */
    uint64_t  sync_batches;   /* (a) `batches` when the last sync snapshotted */
    ulog__pos synced[2];      /* (s) durable end, double-buffered so a
                                 crash mid-update leaves one whole */
    int64_t   fail_at[ULOG__FAIL_RING]; /* (w) offset cut back to at failure e */
    int32_t   fail_err[ULOG__FAIL_RING]; /* (w) its error (ULOG_EIO, ULOG_ENOSPC) */
} ulog__head;

typedef struct ulog__scan_result {
    ulog__pos end;          /* first byte after the last whole valid batch */
    int64_t   low;          /* base of the first segment */
    int64_t   cut_bytes;    /* bytes removed from the tail */
    int64_t   cut_segments; /* whole segment files removed */
    int64_t   max_timestamp;
    int64_t   compacted;    /* given to head_init (the catalog's `rewritten`) */
} ulog__scan_result;

int  ulog__boot_id(char out[40]) ULOG__HIDDEN;
/* Maps the head file of a partition directory, creating it if absent;
 * *fd_out holds a shared flock on it until the caller closes it, and
 * *alone says whether no other process had it open (every user holds such
 * a lock). The caller holds the partition's open lock. */
int  ulog__head_map(int dirfd, int file_mode, ulog__head **out, int *fd_out,
                    bool *alone) ULOG__HIDDEN;
void ulog__head_unmap(ulog__head *h) ULOG__HIDDEN;
/* True when h was initialised in this boot with this build's layout. */
bool ulog__head_valid(const ulog__head *h, const char boot_id[40]) ULOG__HIDDEN;
/* True when h is in use in this boot by a build with another head layout
 * (another version, or a 32-bit process): it must not be reinitialised
 * under that process's feet. */
bool ulog__head_foreign(const ulog__head *h, const char boot_id[40]) ULOG__HIDDEN;
/* (Re)initialises h from a recovery scan. Caller holds the file lock. */
int  ulog__head_init(ulog__head *h, const char boot_id[40],
                     const ulog__scan_result *scan) ULOG__HIDDEN;
/* Locks a robust mutex; *owner_died tells the caller to repair. */
int  ulog__mutex_lock(pthread_mutex_t *m, bool *owner_died) ULOG__HIDDEN;
void ulog__mutex_unlock(pthread_mutex_t *m) ULOG__HIDDEN;
/* The durable end (the current synced[] slot). */
ulog__pos ulog__head_synced(const ulog__head *h) ULOG__HIDDEN;
/* Stores a new durable end (caller holds slock). */
void ulog__head_set_synced(ulog__head *h, const ulog__pos *p) ULOG__HIDDEN;
/* Bumps the bell and wakes its sleepers. */
void ulog__bell_ring(ulog__head *bellh) ULOG__HIDDEN;
/* Sleeps until the bell differs from `seen` or timeout_ms passes (-1:
 * forever). Spurious returns are allowed. */
void ulog__bell_wait(ulog__head *bellh, uint32_t seen, int timeout_ms) ULOG__HIDDEN;
/* Wakes every sleeper without publishing (shutdown). */
void ulog__bell_wake_all(ulog__head *bellh) ULOG__HIDDEN;
/* Futex primitives on any 32-bit word of a head (spurious wakes allowed). */
void ulog__futex_wait(uint32_t *word, uint32_t seen, int timeout_ms) ULOG__HIDDEN;
/* Sleeps while *word == seen, at most timeout_ns (< 0: no limit). */
void ulog__futex_wait_ns(uint32_t *word, uint32_t seen, int64_t timeout_ns) ULOG__HIDDEN;
/* The same by polling with backoff: what systems without a futex use. */
void ulog__poll_wait_ns(uint32_t *word, uint32_t seen, int64_t timeout_ns) ULOG__HIDDEN;
void ulog__futex_wake_all(uint32_t *word) ULOG__HIDDEN;
/* Tries a robust mutex: 0 (locked; *owner_died as for ulog__mutex_lock),
 * or ULOG_ETIMEDOUT when another holder has it. */
int  ulog__mutex_trylock(pthread_mutex_t *m, bool *owner_died) ULOG__HIDDEN;

/* ================================================================ recover.c */


/* Scans a partition directory from `from` (a checkpoint; NULL: the first
 * segment), verifying every batch (those below `compacted` as compaction may
 * have rewritten them), truncates at the first invalid byte and removes
 * later segments, makes the cut durable, and reports the end. Creates
 * segment 0 in an empty directory. */
int ulog__recover_scan(int dirfd, const ulog__pos *from, int64_t compacted, int file_mode,
                       ulog__scan_result *out) ULOG__HIDDEN;
/* Cuts the partition back to `to`: truncates segment to->segment at to->pos,
 * removes every later segment, fsyncs. */
int ulog__recover_cut(int dirfd, const ulog__pos *to) ULOG__HIDDEN;

/* ================================================================ fs */
/* True for filesystem magic numbers of network filesystems (statfs f_type). */
bool ulog__fs_is_network(int64_t f_type) ULOG__HIDDEN;
int64_t ulog__now_ms(void) ULOG__HIDDEN;     /* wall clock: record timestamps */
int64_t ulog__mono_ns(void) ULOG__HIDDEN;
int64_t ulog__mono_ms(void) ULOG__HIDDEN;    /* monotonic: intervals, deadlines */

/* ================================================================ partition.c */

typedef struct ulog__topic ulog__topic;

/* A partition as one process sees it. */
typedef struct ulog__part {
    ulog__topic *topic;
    int32_t      id;
    int          dirfd;
    int          headfd;      /* holds a shared flock: "in use" */
    ulog__head  *h;
    ulog__head  *bell;        /* partition 0's head: the topic's bell */
    /* Descriptors of the segment being written / synced, keyed by segment
     * and head generation. Used under h->wlock / h->slock only. */
    int          wfd;
    int64_t      wfd_seg;
    uint32_t     wfd_gen;
    int64_t      wfd_sized;   /* no sizing ahead below this (0: unknown) */
    bool         no_fallocate;  /* the filesystem cannot: files grow by writes */
    int          sfd;
    int64_t      sfd_seg;
    uint32_t     sfd_gen;
    /* Index entries waiting for the flusher (ilock). */
    pthread_mutex_t    ilock;
    bool               ilock_ok;
    ulog__index_entry *ibuf;
    size_t             icount, icap;
    int64_t      truncated_from;  /* (ilock) index entries >= this are stale; -1 none */
    /* Flusher state (flusher thread only). */
    int64_t      cp_written;      /* offset of the last checkpoint written */
    bool         appended;        /* (a) this process wrote here, so its
                                     flusher keeps the checkpoint: readers
                                     never take LMDB's write lock */
    int64_t      last_sync_ms;
} ulog__part;

/* A topic's settings as one process last read them. ulog_topic_alter
 * replaces them whole: threads that loaded the old pointer keep reading
 * consistent settings, so nodes are freed only with the topic. */
typedef struct ulog__cfg_node {
    ulog__topic_cfg        cfg;
    struct ulog__cfg_node *older;
} ulog__cfg_node;

struct ulog__topic {
    ulog__topic     *hnext;       /* hash chain in the log handle (tlock) */
    ulog            *log;
    char             name[256];
    uint32_t         id;
    int32_t          partitions;
    ulog__cfg_node  *cfg;         /* (a) current settings: use ulog__cfg() */
    uint32_t         cfg_seen;    /* (cfg_lock) head cfg_gen when last read */
    pthread_mutex_t  cfg_lock;
    uint32_t         rr;          /* (a) round-robin for null keys */
    ulog__part      *parts;
};

/* The topic's current settings; consistent as a whole. */
static inline const ulog__topic_cfg *ulog__cfg(const ulog__topic *t)
{
    return &__atomic_load_n(&t->cfg, __ATOMIC_ACQUIRE)->cfg;
}
/* Whether the topic was deleted (by any process). */
static inline bool ulog__topic_deleted(const ulog__topic *t)
{
    return __atomic_load_n(&t->parts[0].h->deleted, __ATOMIC_ACQUIRE) != 0;
}
/* Rereads the settings when another process (or thread) altered them. */
void ulog__topic_refresh(ulog__topic *t) ULOG__HIDDEN;
/* Frees a topic of the table and everything it holds. */
void ulog__topic_free(ulog__topic *t) ULOG__HIDDEN;
/* Takes t out of the table (it stays valid, for subscriptions that hold
 * it, until ulog_close). Caller holds tlock for writing. */
void ulog__topic_retire(ulog *log, ulog__topic *t) ULOG__HIDDEN;
/* Rolls the active segment if it holds batches and its first batch's
 * timestamp is below before_ms (segment.ms), so retention can delete it;
 * *rolled says whether it did. */
int  ulog__part_roll_if_older(ulog__part *p, int64_t before_ms, bool *rolled) ULOG__HIDDEN;
/* A deletion whose process died between its catalog write and the head
 * (this boot): raises the head's low to the catalog's log start. */
int  ulog__part_catch_up_low(ulog__part *p) ULOG__HIDDEN;
/* Empties the partition and makes offset (past its write end) its log
 * start and next offset: ulog_partition_start_at. ULOG_EOFFSET below the
 * write end; 1, doing nothing, at the write end (the caller moves the log
 * start there as DeleteRecords does). */
int  ulog__part_start_at(ulog__part *p, int64_t offset, int64_t now_ms) ULOG__HIDDEN;
/* Tests: called after each step of a start_at (1: the new segment made,
 * 2: the catalog committed, 3: the head moved), to crash there. */
extern void (*ulog__start_at_step)(int step) ULOG__HIDDEN;
/* The write end (under the writer lock, briefly). */
int  ulog__part_write_end(ulog__part *p, ulog__pos *out) ULOG__HIDDEN;
/* The durable end, waiting for a sync in progress. */
int  ulog__part_synced_wait(ulog__part *p, ulog__pos *out) ULOG__HIDDEN;
/* Raises h->low to at least low. */
void ulog__head_raise_low(ulog__head *h, int64_t low) ULOG__HIDDEN;
/* Raises h->compacted, the bound below which batches may have gaps, to at
 * least to. */
void ulog__head_raise_compacted(ulog__head *h, int64_t to) ULOG__HIDDEN;
/* Closes the segment descriptors a deleted partition's writers kept, so
 * its disk space goes with its readers' mappings (under the locks that
 * guard them). */
void ulog__part_release_files(ulog__part *p) ULOG__HIDDEN;
/* Marks a partition deleted under its writer lock and wakes its sleepers. */
void ulog__part_mark_deleted(ulog__part *p) ULOG__HIDDEN;
/* Raises the head's settings version to at least v. */
void ulog__cfg_gen_raise(ulog__head *h, uint32_t v) ULOG__HIDDEN;
/* Steps 2 and 3 of a delete (topic_admin.c), for topic `name` with id
 * `id`; 0 also when it is already done. */
int  ulog__topic_finish_delete(ulog *log, const char *name, uint32_t id) ULOG__HIDDEN;
/* retention.c: one background retention run over the open topics, unless
 * another process is doing one. */
void ulog__retention_background(ulog *log) ULOG__HIDDEN;
/* Finishes what deletes cut short by a crash left in topics/. */
void ulog__topics_sweep(ulog *log) ULOG__HIDDEN;
/* compact.c: compacts partition p (its topic's cleanup.policy compacts),
 * when its dirty ratio reaches min.cleanable.dirty.ratio or, `forced`,
 * whenever it has a dirty part; adds to pr's counts (may be NULL). Caller
 * holds the root's clean lock. */
int  ulog__compact_partition(ulog__part *p, int64_t now_ms, bool forced,
                             ulog_clean_progress *pr) ULOG__HIDDEN;
/* Finishes a compaction swap a crash cut short and removes stray
 * *.cleaned files (at the start of every run, and before a recovery scan). */
int  ulog__compact_finish(ulog__part *p) ULOG__HIDDEN;
/* Tests: called after each step (1 to 5) of every compaction swap. */
extern void (*ulog__compact_step)(int step) ULOG__HIDDEN;
/* The bytes compaction's key map may take (128 MiB; tests lower it). */
extern size_t ulog__compact_map_limit ULOG__HIDDEN;

/* Opens partition `id` of t: maps its head, recovering first when the head
 * is not valid for this boot. */
int  ulog__part_open(ulog__topic *t, int32_t id, ulog__part *p) ULOG__HIDDEN;
void ulog__part_close(ulog__part *p) ULOG__HIDDEN;
/* Where ulog__part_write put a batch. A batch written at the same place
 * after an fsync-failure cut carries a later epoch (its
 * partitionLeaderEpoch), so these fields identify it for good. */
typedef struct ulog__written {
    int64_t  base, end;         /* its offsets: [base, end) */
    int64_t  segment, pos;      /* its segment and position in it */
    uint32_t epoch;             /* the failure epoch it was written in */
    uint32_t stored_epoch;      /* its partitionLeaderEpoch: `epoch`, or
                                   what a raw batch brought */
} ulog__written;

/* Writes one encoded batch (baseOffset and partitionLeaderEpoch are patched
 * here) covering noff offsets and publishes it under the settings c (the
 * caller's one reading of them); *out says where it went. With
 * flush.policy always the batch is not committed yet: call ulog__part_sync.
 * ULOG_ENOENT once the topic is deleted.
 * raw_base >= 0: a batch from another log (ulog_append_raw), written as it
 * is, only at raw_base == the write end; else ULOG_EOFFSET, nothing
 * written, and out->base is the write end. */
int  ulog__part_write(ulog__part *p, const ulog__topic_cfg *c, uint8_t *buf, size_t size,
                      uint32_t noff, int64_t max_ts, int64_t raw_base,
                      ulog__written *out) ULOG__HIDDEN;
/* Group commit: returns once the batch `w` is durable and committed (one
 * fdatasync serves every waiter), or the error that lost it. */
int  ulog__part_sync(ulog__part *p, const ulog__written *w) ULOG__HIDDEN;
/* Raises the replica watermark to `to` (never lowers it) and rings the
 * topic's bell, waking readers and appenders that wait for it. */
void ulog__part_raise_replicated(ulog__part *p, int64_t to) ULOG__HIDDEN;
/* Waits until the replica watermark reaches `end`: 0, ULOG_ETIMEDOUT after
 * timeout_ms, ULOG_ENOENT once the topic is deleted. */
int  ulog__part_wait_replicated(ulog__part *p, int64_t end, int64_t timeout_ms) ULOG__HIDDEN;
/* Background sync for none/interval topics; a failure poisons. */
int  ulog__part_sync_background(ulog__part *p) ULOG__HIDDEN;
/* The durable end, read consistently; false when a sync leader is busy. */
bool ulog__part_synced(ulog__part *p, ulog__pos *out) ULOG__HIDDEN;
/* Whether a background sync of this none/interval partition is due. */
int  ulog__part_flush_due(ulog__part *p, int64_t now_ms) ULOG__HIDDEN;
/* Moves the buffered index entries to out (capacity cap); returns count. */
size_t ulog__part_take_index(ulog__part *p, ulog__index_entry *out, size_t cap,
                             int64_t *truncated_from) ULOG__HIDDEN;
/* Bytes a reader should reserve when mapping a segment of this topic. */
size_t ulog__part_map_reserve(const ulog__part *p) ULOG__HIDDEN;

/* ================================================================ topic.c */

/* The topic named `name`, opened on first use (ULOG_ENOENT if it does not
 * exist). Topics stay open until the handle closes. */
int  ulog__topic_get(ulog *log, const char *name, ulog__topic **out) ULOG__HIDDEN;
/* Partition `partition` of topic `topic`; ULOG_EINVAL when out of range. */
int  ulog__part_get(ulog *log, const char *topic, int32_t partition,
                    ulog__part **out) ULOG__HIDDEN;
void ulog__topics_close(ulog *log) ULOG__HIDDEN;

/* ================================================================ ulog.c */

#define ULOG__TOPIC_BUCKETS 256

struct ulog {
    char            *root;
    int              rootfd;
    int              topicsfd;
    ulog__meta      *meta;
    ulog__log_cfg    cfg;
    char             boot_id[40];
    pthread_rwlock_t tlock;                 /* the topic table */
    ulog__topic     *buckets[ULOG__TOPIC_BUCKETS];
    ulog__topic     *retired;               /* deleted topics (tlock) */
    uint64_t         serial;                /* names it in ulog__fail's records */
    /* The flusher: index entries, checkpoints, background syncs. */
    pthread_t        flusher;
    pthread_mutex_t  fpass;                 /* one ulog__flush_pass at a time */
    /* A pass's buffers (fpass), kept between passes: an idle pass, ten a
     * second, allocates nothing. */
    ulog__index_entry *fentries;
    size_t             fentries_cap;
    ulog__checkpoint  *fcps;
    size_t             fcps_cap;
    pthread_mutex_t  flock;
    pthread_cond_t   fcond;
    bool             stop;                  /* (flock; read atomically) */
    bool             flusher_started;
    /* The cleaner: retention and compaction every retention.check.ms, in
     * a thread of its own: a compaction can take long, and index flushes,
     * interval syncs and checkpoints must not wait for it. */
    pthread_t        cleaner;
    pthread_cond_t   ccond;                 /* (flock) */
    bool             cleaner_started;
    pid_t            pid;                   /* the process that opened it */
    /* Encryption keys (crypt.c), given by the application (klock). */
    pthread_rwlock_t klock;
    struct ulog__key *keys;
};

/* Records the detail of a failure for ulog_errmsg() in the calling thread
 * (log may be NULL); returns err. */
int  ulog__fail(ulog *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))) ULOG__HIDDEN;
/* Whether ulog_close has begun: long background work gives up. */
bool ulog__closing(ulog *log) ULOG__HIDDEN;
/* Wakes the flusher early (index buffer filling up). */
void ulog__flusher_kick(ulog *log) ULOG__HIDDEN;
/* Runs one flusher pass: index entries, checkpoints, due syncs. */
int  ulog__flush_pass(ulog *log, bool final) ULOG__HIDDEN;

/* ================================================================ auth.c */

/* 0 once libsodium is initialised (ULOG_ENOTSUP if it cannot be). */
int ulog__sodium(void) ULOG__HIDDEN;

/* ================================================================ crypt.c */

/* Copies the key `id` of topic into out (ULOG_KEY_BYTES; the caller wipes
 * it with sodium_memzero): a key removed meanwhile is not freed under a
 * running seal. False when the handle has no such key. */
bool ulog__key_copy(ulog *log, const char *topic, uint32_t id, uint8_t *out) ULOG__HIDDEN;
/* Wipes n bytes so that the compiler keeps the stores. */
void ulog__wipe(void *p, size_t n) ULOG__HIDDEN;
/* Seals rec's value (of topic's partition) under `key`, the key of
 * `key_id`, into out (value_len + ULOG_SEAL_OVERHEAD bytes); rec's key goes
 * into the associated data. libsodium is initialised (ulog__sodium). */
void ulog__seal(const uint8_t *key, const char *topic, int32_t partition, uint32_t key_id,
                const ulog_record *rec, uint8_t *out) ULOG__HIDDEN;
/* Opens a sealed value (of a record with key `key`, key_len; NULL: null
 * key) into out (room for sealed_len - ULOG_SEAL_OVERHEAD bytes).
 * 0, ULOG_ENOKEY (*key_id set), ULOG_EAUTH (not a sealed value, or it does
 * not open). */
int ulog__unseal(ulog *log, const char *topic, int32_t partition, const void *key,
                 size_t key_len, const uint8_t *sealed, size_t sealed_len, uint8_t *out,
                 uint32_t *key_id) ULOG__HIDDEN;
/* Whether a stored value is framed as a sealed one (says nothing of
 * whether it opens). */
bool ulog__sealed_framing(const void *value, size_t len) ULOG__HIDDEN;
/* Frees every key (ulog_close). */
void ulog__keys_free(ulog *log) ULOG__HIDDEN;

/* ================================================================ reader.c */

/* A read position in one partition. Zero copy: records point into the
 * segment mapping and stay valid until the cursor moves to another segment
 * or is closed. */
typedef struct ulog__cursor {
    ulog__part     *p;
    ulog__map       map;         /* current segment */
    int64_t         pos;         /* next batch to open, in map */
    int64_t         next;        /* next offset to deliver */
    int64_t         expect;      /* base offset the batch at pos must have */
    bool            in_batch;
    int64_t         bpos;        /* start of the open batch */
    ulog__batch_hdr bh;
    const uint8_t  *rp, *bend;   /* next record, end of the open batch */
    int32_t         left;        /* records not yet decoded */
    int64_t         prev_delta;  /* offset delta of the last record decoded */
    uint32_t        gen;         /* h->gen when the segment was mapped */
    bool            refloored;   /* looked for `expect` in a merged segment */
    bool            gaps;        /* the open batch may have gaps (compacted) */
    bool            replicated_only; /* read.replicated: stop at the replica
                                        watermark */
} ulog__cursor;

void ulog__cursor_init(ulog__cursor *c, ulog__part *p) ULOG__HIDDEN;
void ulog__cursor_close(ulog__cursor *c) ULOG__HIDDEN;
/* Where c's reading ends for now: the committed end, or with
 * replicated_only the replica watermark when that is lower. */
int64_t ulog__cursor_end(const ulog__cursor *c) ULOG__HIDDEN;
/* Positions the cursor so that the next record is `offset` (in [low, high],
 * checked by the caller): index lookup plus a bounded scan on next(). */
int  ulog__cursor_seek(ulog__cursor *c, int64_t offset) ULOG__HIDDEN;
/* Positions at the first record with timestamp >= ts, or at the high
 * watermark; *found gets the offset. */
int  ulog__cursor_seek_time(ulog__cursor *c, int64_t ts, int64_t *found) ULOG__HIDDEN;
/* Reopens the batch a record was just taken from so that record `offset`
 * comes next (no I/O: cannot fail). */
void ulog__cursor_rewind(ulog__cursor *c, int64_t offset) ULOG__HIDDEN;
/* The next record of the open batch at or after c->next: 0, ULOG_ETIMEDOUT
 * when the batch has no more, or ULOG_ECORRUPT (the cursor then stays
 * before the bad record). Small on purpose: it is the per-record path. */
static inline int ulog__cursor_take(ulog__cursor *c, ulog__rec *r, int64_t *offset, int64_t *timestamp)
{
    while (c->left > 0) {
        /* Deltas run 0, 1, 2, ... to lastOffsetDelta, as an append writes
         * them; in a batch compaction rewrote they only increase, within
         * its range. The last record ends the batch. */
        if (ulog__rec_decode_fast(c->rp, c->bend, r) != 0 ||
            (c->gaps ? r->offset_delta <= c->prev_delta ||
                           r->offset_delta > c->bh.last_offset_delta
                     : r->offset_delta != c->prev_delta + 1 ||
                           (c->left == 1 && r->offset_delta != c->bh.last_offset_delta)) ||
            (c->left == 1 && r->end != c->bend))
            return ULOG_ECORRUPT;
        c->prev_delta = r->offset_delta;
        c->rp = r->end;
        c->left--;
        int64_t off = c->bh.base_offset + r->offset_delta;
        if (off < c->next)
            continue;
        c->next = off + 1;
        *offset = off;
        *timestamp = (c->bh.attributes & ULOG__ATTR_LOG_APPEND_TIME)
                         ? c->bh.max_timestamp
                         : (int64_t)((uint64_t)c->bh.base_timestamp +
                                     (uint64_t)r->timestamp_delta); /* no UB on hostile input */
        return 0;
    }
    return ULOG_ETIMEDOUT;
}

/* The batch holding the position, whole, as stored (its header in c->bh),
 * and the position moves past it: 0, ULOG_ETIMEDOUT when there is none
 * yet, or an error. The frame borrows the mapping, like a record. */
int  ulog__cursor_next_frame(ulog__cursor *c, const uint8_t **frame, size_t *len) ULOG__HIDDEN;
/* The next committed record: 0, ULOG_ETIMEDOUT when there is none yet, or
 * an error (the cursor does not move past a bad batch). */
int  ulog__cursor_next(ulog__cursor *c, ulog__rec *r, int64_t *offset,
                       int64_t *timestamp) ULOG__HIDDEN;

#endif
