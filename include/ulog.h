/*
 * ulog.h -- the public interface of ulog, an embeddable unified log.
 *
 * ulog gives a process Kafka's log semantics without a broker: topics split
 * into partitions, records addressed by dense 64-bit offsets, replay from any
 * offset or point in time, and a crash-safe on-disk format (Kafka RecordBatch
 * v2, byte for byte). Every process that opens the same directory shares the
 * same topics.
 *
 * Conventions (they hold for every call below):
 *   - Every fallible call returns int: 0 on success, a negative ULOG_E* code
 *     on failure. Bad input returns an error and changes nothing.
 *   - A `ulog` handle is thread-safe. A `ulog_sub` belongs to one thread at a
 *     time. A `ulog_config` is not synchronised: do not modify one that another
 *     thread is reading.
 *   - Ownership is stated per call: "caller owns; free with ulog_x_free()"
 *     or "borrowed; valid until ...". Never free() memory ulog hands out.
 *   - After fork(), a child must not use handles it inherited; it opens its
 *     own. ulog_close() on an inherited handle returns without doing
 *     anything (the parent's threads and locks are not the child's).
 *   - Records, messages and headers are frozen structs (arrays of them cross
 *     the ABI, so their stride is part of it); they grow only through new
 *     _v2 calls. Info structs that may grow start with `struct_size` and have
 *     an _INIT macro.
 *
 * Copyright (c) 2026 the ulog authors. MIT licence, see COPYING.
 */
#ifndef ULOG_H
#define ULOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version: the one place it is defined. The Makefile reads these lines. */
#define ULOG_VERSION_MAJOR 0
#define ULOG_VERSION_MINOR 5
#define ULOG_VERSION_PATCH 0
#define ULOG_VERSION_NUMBER \
    (ULOG_VERSION_MAJOR * 10000 + ULOG_VERSION_MINOR * 100 + ULOG_VERSION_PATCH)
#define ULOG_VERSION_STRING "0.5.0"

#if defined(_WIN32)
#define ULOG_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define ULOG_API __attribute__((visibility("default")))
#else
#define ULOG_API
#endif

/* ---------------------------------------------------------------- errors */

/* Every value #defined in this header is part of the ABI and never changes:
 * a binding that cannot read macros may copy the numbers. */

/* Error codes: negative, consecutive from -1, never renumbered or reused
 * (ulog_errname() names each, and gives "ULOG_UNKNOWN" past the last). */
#define ULOG_OK          0
#define ULOG_EINVAL     (-1)  /* bad argument, name or config value */
#define ULOG_ENOENT     (-2)  /* no such topic, partition or log root */
#define ULOG_EEXIST     (-3)  /* topic already exists */
#define ULOG_ETIMEDOUT  (-4)  /* nothing arrived before the timeout */
#define ULOG_EOFFSET    (-5)  /* offset out of range */
#define ULOG_ETOOBIG    (-6)  /* record or batch larger than max.message.bytes */
#define ULOG_ECORRUPT   (-7)  /* a stored batch failed verification */
#define ULOG_EIO        (-8)  /* I/O error; for appends: not committed */
#define ULOG_ENOSPC     (-9)  /* no space left; for appends: not committed */
#define ULOG_ENOMEM     (-10) /* out of memory */
#define ULOG_EVERSION   (-11) /* on-disk data of an unknown format version */
#define ULOG_ENOTSUP    (-12) /* unsupported: filesystem, compression codec, ... */
#define ULOG_EACCES     (-13) /* permission denied */
#define ULOG_EPOISONED  (-14) /* partition refuses appends after a durability
                                 failure until the log is reopened */
#define ULOG_ELIMIT     (-15) /* a system limit was hit (files, map size) */
#define ULOG_ECONFLICT  (-16) /* other bytes are stored at that offset */
#define ULOG_EAUTH      (-17) /* authentication failed: a wrong key, or bytes
                                 changed since they were signed or sealed */
#define ULOG_ENOKEY     (-18) /* no key of that id was given (ulog_key_add) */

/* Message for an error code. Static text, never NULL; unknown codes get a
 * generic text. Thread-safe. Since 0.1. */
ULOG_API const char *ulog_strerror(int err);
/* Stable name of an error code ("ULOG_ETIMEDOUT"), for bindings' exception
 * classes; "ULOG_UNKNOWN" for codes it does not know. Static, never NULL.
 * Since 0.1. */
ULOG_API const char *ulog_errname(int err);

/* Version of the library actually linked. Static, never NULL. Since 0.1. */
ULOG_API const char *ulog_version_string(void);
ULOG_API int ulog_version_number(void);

/* ---------------------------------------------------------------- config */

typedef struct ulog        ulog;         /* an open log root; thread-safe */
typedef struct ulog_sub    ulog_sub;     /* a subscription; one thread at a time */
typedef struct ulog_config ulog_config;  /* settings by name */
/* A list of strings. Caller owns; free with ulog_strlist_free(). */
typedef struct ulog_strlist ulog_strlist;

/*
 * Settings by name, Kafka's names where one exists. Each name belongs to the
 * call that uses it; passing a config with a name that does not apply there
 * fails with ULOG_EINVAL and a message in ulog_errmsg().
 *
 * Log (ulog_open):
 *   file.mode            octal mode of files created    default 0640
 *   dir.mode             octal mode of directories      default 0750
 *   index.flush.ms       how often buffered index entries and recovery
 *                        checkpoints are written to LMDB; 1..60000, default 100
 *   retention.check.ms   how often the background retention run looks at
 *                        every open topic; 100..86400000, default 300000
 *                        (Kafka's log.retention.check.interval.ms)
 * Topic (ulog_topic_create, ulog_topic_alter):
 *   segment.bytes        segment roll size; 4096..2^30, default 2^30
 *   max.message.bytes    largest batch (all records of one partition in one
 *                        ulog_append); 64..2^30-1, default 1048588
 *   flush.policy         none | interval | always, default always
 *   flush.ms             interval policy: sync at most this long after a
 *                        write; 1..3600000, default 1000
 *   index.interval.bytes bytes between offset/time index entries; 512..2^24,
 *                        default 4096
 *   message.timestamp.type CreateTime | LogAppendTime, default CreateTime
 *   preallocate          true | false, default false: allocate each new
 *                        segment to segment.bytes up front (fdatasync'd
 *                        appends then skip block allocation; costs the
 *                        disk space of a full segment per partition)
 *   retention.ms         -1 | 0..2^62, default -1 (keep forever; Kafka's
 *                        default is 7 days, but a library deletes nothing
 *                        it was not asked to): closed segments whose
 *                        records are all older than this go (ulog_clean)
 *   retention.bytes      -1 | 0..2^62, default -1: the oldest closed
 *                        segments go while a partition is larger than this
 *   segment.ms           1..2^62, default 604800000 (7 days): an active
 *                        segment whose first record is older than this is
 *                        rolled, even idle, so retention can delete it
 *   retention.groups     "" (default) | * | group names joined by commas
 *                        (1023 bytes at most): retention.ms and
 *                        retention.bytes never delete a record these
 *                        consumer groups (*: every group with an offset
 *                        committed for the topic) have not committed past;
 *                        a named group with no commit for a partition holds
 *                        all of it. ulog_retention_pins() says who holds
 *                        how much. DeleteRecords is not held back.
 *   cleanup.policy       delete | compact | compact,delete (delete,compact
 *                        is the same), default delete. compact keeps the
 *                        latest record per key (so ulog_append refuses a
 *                        record with a null key); compact alone turns
 *                        retention.ms and retention.bytes off, as in Kafka
 *   delete.retention.ms  0..2^62, default 86400000 (1 day): how long
 *                        compaction keeps a tombstone (a null value),
 *                        counted from the compaction that first kept it
 *   min.compaction.lag.ms 0..2^62, default 0: compaction leaves records
 *                        younger than this as written
 *   min.cleanable.dirty.ratio  text "0" to "1" with at most 6 decimals
 *                        (ulog_config_set only), default 0.5: compact a
 *                        partition once this share of it is not compacted
 *   replication.sync     false | true, default false: an append returns only
 *                        once the acknowledging hook (ULOG_HOOK_ACKS) has
 *                        shipped its batches
 *   replication.timeout.ms 1..86400000, default 30000: how long such an
 *                        append waits; then ULOG_ETIMEDOUT, the records
 *                        stored (their offsets written back) but not shipped
 *   encryption.key.id    -1..2^31-1, default -1 (not encrypted): the id of
 *                        the key that seals appended values (see
 *                        ulog_key_add); set when the topic is created, and
 *                        changed later (key rotation) but never to or from
 *                        -1: a topic is encrypted from its creation or never
 * Subscription (ulog_subscribe):
 *   auto.offset.reset    where to start a partition the group has no usable
 *                        committed offset for (none committed, or it fell out
 *                        of the log): earliest | latest | none (ULOG_EOFFSET),
 *                        default latest
 *   poll.spin.us         0..100000, default 0: before ulog_poll() sleeps, it
 *                        spins this long watching for a commit. Cuts wake-up
 *                        latency to a few microseconds when a core is free,
 *                        at the price of that core: a subscriber whose
 *                        records arrive less than poll.spin.us apart keeps
 *                        one core 100% busy; an idle one spins poll.spin.us
 *                        per timeout it waits out.
 *   read.replicated      false | true, default false: read only below the
 *                        replica watermark (what the acknowledging hook has
 *                        shipped; Kafka's high watermark); latest starts
 *                        there
 */

/* A new, empty config. Caller owns; free with ulog_config_free(). NULL only
 * when out of memory. Since 0.1. */
ULOG_API ulog_config *ulog_config_new(void);
/* Sets `name` to `value` after checking the name is known and the value valid
 * for it. On ULOG_EINVAL a message goes to errbuf (if errbuf_len > 0) and the
 * config is unchanged. ULOG_ENOMEM possible. Since 0.1. */
ULOG_API int ulog_config_set(ulog_config *cfg, const char *name,
                             const char *value, char *errbuf, size_t errbuf_len);
/* Typed setter for integer settings; same rules as ulog_config_set().
 * Refuses enums, retention.groups and min.cleanable.dirty.ratio (text). */
ULOG_API int ulog_config_set_int(ulog_config *cfg, const char *name,
                                 int64_t value, char *errbuf, size_t errbuf_len);
/* Copies the value of `name` into buf (NUL-terminated; 32 bytes hold any
 * value but retention.groups's, which takes up to 1024). ULOG_ENOENT if not
 * set, ULOG_EINVAL if buf is too small or arguments are NULL. Since 0.1. */
ULOG_API int ulog_config_get(const ulog_config *cfg, const char *name,
                             char *buf, size_t buf_len);
/* Names of the settings cfg holds, in a fixed order. Caller owns *out.
 * Errors: ULOG_EINVAL (NULL), ULOG_ENOMEM. Since 0.2. */
ULOG_API int ulog_config_names(const ulog_config *cfg, ulog_strlist **out);
/* Frees cfg. NULL is a no-op. Since 0.1. */
ULOG_API void ulog_config_free(ulog_config *cfg);

/* ---------------------------------------------------------------- log */

/*
 * Opens (creating if needed) the log rooted at directory `dir`. Many
 * processes may open the same root at once. cfg may be NULL. Refuses a root
 * on a network filesystem (NFS, SMB/CIFS, 9p, FUSE, ...) with ULOG_ENOTSUP.
 * Cost: O(1); partitions are opened on first use.
 * Errors: ULOG_EINVAL, ULOG_ENOTSUP, ULOG_EACCES, ULOG_EIO, ULOG_ENOMEM,
 * ULOG_EVERSION. Caller owns *out; free with ulog_close(). Since 0.1.
 */
ULOG_API int  ulog_open(const char *dir, const ulog_config *cfg, ulog **out);
/* Flushes buffered index entries and checkpoints, and frees the handle. Close
 * every subscription first. NULL is a no-op. Since 0.1. */
ULOG_API void ulog_close(ulog *log);

/* Copies the detail (path, topic, offset) of the calling thread's last
 * failed call on `log` or on one of its subscriptions into buf,
 * NUL-terminated and truncated to buf_len; "" when that failure was on
 * another handle, or gave no detail. Returns the length of the full message.
 * log NULL: the calling thread's last failure on any handle, which is how to
 * read why ulog_open() failed. Each thread keeps its own message, like
 * errno: other threads' failures never overwrite it. Since 0.1 (per thread:
 * 0.2). */
ULOG_API size_t ulog_errmsg(ulog *log, char *buf, size_t buf_len);

/* ---------------------------------------------------------------- topics */

/*
 * Creates a topic with `partitions` partitions (1..10000) and per-topic
 * settings from cfg (may be NULL). The name is 1-249 bytes of
 * [A-Za-z0-9._-], not "." or "..". Durable when it returns.
 * Errors: ULOG_EINVAL (name, partitions, config), ULOG_EEXIST, ULOG_EIO,
 * ULOG_ENOSPC, ULOG_ENOMEM. Thread-safe. Since 0.1.
 */
ULOG_API int  ulog_topic_create(ulog *log, const char *topic, int32_t partitions,
                                const ulog_config *cfg);

/* A list of strings (declared above). */
ULOG_API size_t      ulog_strlist_count(const ulog_strlist *list);
/* Borrowed; valid until ulog_strlist_free(). NULL when i is out of range. */
ULOG_API const char *ulog_strlist_get(const ulog_strlist *list, size_t i);
ULOG_API void        ulog_strlist_free(ulog_strlist *list); /* NULL: no-op */

/* Names of all topics, sorted. Caller owns *out. Since 0.1. */
ULOG_API int ulog_topic_list(ulog *log, ulog_strlist **out);

typedef struct ulog_topic_info {
    size_t   struct_size;   /* set by the caller: sizeof(ulog_topic_info) */
    int32_t  partitions;
    uint32_t id;            /* stable internal id */
} ulog_topic_info;
#define ULOG_TOPIC_INFO_INIT { sizeof(ulog_topic_info), 0, 0 }

/* Describes a topic: its partition count and (if cfg_out is not NULL) its
 * full effective config, every setting present. Caller owns *cfg_out; free
 * with ulog_config_free(). Errors: ULOG_EINVAL, ULOG_ENOENT. Since 0.1. */
ULOG_API int ulog_topic_describe(ulog *log, const char *topic,
                                 ulog_topic_info *info, ulog_config **cfg_out);

/*
 * Changes the topic settings cfg holds; the others keep their values. Durable
 * when it returns, and seen by every process with the topic open at its next
 * ulog_append() (its background flushes within index.flush.ms): an append
 * reads the settings once, so none runs under a mix. segment.bytes and
 * preallocate apply from the next segment on. Checks every name and value
 * before anything changes. Errors: ULOG_EINVAL (a name that is not a topic
 * setting, a bad value, NULL), ULOG_ENOENT, ULOG_EIO, ULOG_ENOMEM.
 * Thread-safe. Since 0.2.
 */
ULOG_API int ulog_topic_alter(ulog *log, const char *topic, const ulog_config *cfg);

/*
 * Deletes a topic: its records, indexes and every group's committed offsets
 * for it. From the moment it starts, appends to it fail with ULOG_ENOENT in
 * every process, and so does ulog_poll() on its subscriptions (close them);
 * an append already past that point completes. Durable when it returns; the
 * name can be created again at once, as a new topic whose offsets start at 0.
 * A delete cut short by a crash is finished by the next process that opens
 * the root or touches the topic. Errors: ULOG_EINVAL, ULOG_ENOENT, ULOG_EIO,
 * ULOG_ENOMEM. Thread-safe. Since 0.2.
 */
ULOG_API int ulog_topic_delete(ulog *log, const char *topic);

typedef struct ulog_partition_info {
    size_t  struct_size;    /* set by the caller: sizeof(ulog_partition_info) */
    int64_t low;            /* first offset held (the log start offset) */
    int64_t high;           /* next offset to be committed (high watermark) */
    int64_t write_end;      /* next offset to be assigned (>= high) */
    int64_t segments;       /* number of segment files */
    int64_t bytes;          /* bytes in segment files */
    /* Since 0.2 (filled when struct_size covers them): */
    int64_t reclaimed;      /* bytes retention, compaction and
                               ulog_delete_records() have removed, ever */
    int64_t cleaned_ms;     /* when one of them last removed bytes, ms
                               since the epoch; 0 for never */
    int64_t cleaned_end;    /* compaction: below this offset every key has
                               only its latest record; 0 for never */
    int64_t clean_bytes;    /* bytes of the segments below cleaned_end */
    int64_t dirty_bytes;    /* bytes of the closed segments from cleaned_end
                               on: dirty / (clean + dirty) is the dirty ratio
                               min.cleanable.dirty.ratio is compared with */
    /* Since 0.3: */
    int64_t replicated;     /* replica watermark: the acknowledging hook
                               (ULOG_HOOK_ACKS) has shipped the offsets
                               below it */
} ulog_partition_info;
#define ULOG_PARTITION_INFO_INIT { sizeof(ulog_partition_info), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/* Describes one partition. A struct_size of an older version's struct is
 * accepted; the fields it lacks are then not written.
 * Errors: ULOG_EINVAL, ULOG_ENOENT. Since 0.1. */
ULOG_API int ulog_partition_describe(ulog *log, const char *topic,
                                     int32_t partition, ulog_partition_info *info);

/* What ulog_verify() has checked, and what it found. */
typedef struct ulog_verify_info {
    size_t      struct_size;     /* set by the caller: sizeof(ulog_verify_info) */
    const char *topic;           /* the partition being checked (borrowed, */
    int32_t     partition;       /*   valid during the callback only) */
    int64_t     partitions_done; /* partitions finished */
    int64_t     records_done;    /* records checked (or passed over) so far */
    int64_t     records_total;   /* records to check: the sum of high - low */
    int64_t     corrupt;         /* problems found so far */
    /* Set only in the callback that reports a problem (error 0: progress): */
    int         error;           /* ULOG_ECORRUPT, ULOG_ENOTSUP or ULOG_EIO */
    int64_t     offset;          /* the first offset that could not be read */
    int64_t     resume;          /* where the check went on (the next segment's
                                    first offset, or the high watermark):
                                    [offset, resume) is not verified */
    const char *detail;          /* what failed, and where (segment file, position) */
} ulog_verify_info;

/* Called with progress (at every partition and every 65536 records), with
 * each problem found, and once at the end; a non-zero return stops the
 * check, and ulog_verify() returns that value. */
typedef int ulog_verify_cb(const ulog_verify_info *info, void *arg);

/*
 * Reads every committed record of `topic` (NULL: of every topic) as a
 * subscriber would -- batch frames, CRC-32C, offset continuity, record
 * bounds -- up to the high watermarks at the start of the call, and reports
 * what fails through cb (may be NULL). After a corrupt batch it goes on at
 * the next segment. Never changes the log. *out (may be NULL; struct_size
 * set by the caller) gets the totals.
 * Returns 0 when everything verified, ULOG_ECORRUPT when a problem was
 * found, or ULOG_EINVAL, ULOG_ENOENT, ULOG_ENOMEM, ULOG_EIO. Thread-safe.
 * Since 0.2.
 */
ULOG_API int ulog_verify(ulog *log, const char *topic, ulog_verify_cb *cb, void *arg,
                         ulog_verify_info *out);

/* ---------------------------------------------------------------- retention */

/* What ulog_clean() is doing. */
typedef struct ulog_clean_progress {
    size_t      struct_size;      /* sizeof(ulog_clean_progress) */
    const char *topic;            /* the partition at hand (borrowed, valid */
    int32_t     partition;        /*   during the callback only) */
    int64_t     partitions_done;  /* partitions finished */
    int64_t     partitions_total; /* partitions to go through */
    int64_t     segments_deleted; /* so far, in this call */
    int64_t     bytes_reclaimed;  /* so far, in this call */
} ulog_clean_progress;

/* Called at the start and end of every partition; a non-zero return stops
 * the run at once (a partition whose start it was is left as it is), and
 * ulog_clean() returns that value. */
typedef int ulog_clean_cb(const ulog_clean_progress *progress, void *arg);

#define ULOG_CLEAN_RETENTION 1   /* retention.ms, retention.bytes, segment.ms */
#define ULOG_CLEAN_COMPACT   2   /* cleanup.policy=compact: the latest record per key
                                    (since 0.2) */

/*
 * Applies the cleanup settings of `topic` (NULL: of every topic) now,
 * rather than at the next background run: with ULOG_CLEAN_RETENTION, rolls
 * an active segment older than segment.ms that holds records, then deletes
 * the oldest closed segments, whole, while every record in them is older
 * than retention.ms (by the largest timestamp in the segment or before it)
 * or while the partition is larger than retention.bytes by at least the
 * segment's size. The active segment is never deleted. The log start
 * offset (a partition's low watermark) moves to the first record kept;
 * subscriptions below it follow their auto.offset.reset (none: ulog_poll()
 * fails with ULOG_EOFFSET), and one reading a deleted segment finishes its
 * batch safely. Every process with the root open also runs this in the
 * background every retention.check.ms over the topics it has open, one
 * process at a time per root. (retention.ms and retention.bytes apply only
 * when cleanup.policy includes delete, as in Kafka.)
 * With ULOG_CLEAN_COMPACT, on topics whose cleanup.policy includes compact,
 * rewrites the closed segments (past min.compaction.lag.ms) keeping the
 * latest record of each key, and tombstones (null values) until
 * delete.retention.ms after the compaction that first kept them; offsets never
 * change, so readers see gaps. The background run does this only once a
 * partition's dirty ratio reaches min.cleanable.dirty.ratio; this call
 * whenever there is anything new to compact. Appenders and readers are
 * never blocked, and a crash at any point loses no key's latest record.
 * Both flags may be given.
 * cb (may be NULL) gets progress. Errors: ULOG_EINVAL (flags), ULOG_ENOENT,
 * ULOG_EIO, ULOG_ENOMEM, ULOG_ELIMIT (compaction: the keys of one batch
 * need more than 128 MiB), or cb's non-zero value. Thread-safe. Since 0.2.
 */
ULOG_API int ulog_clean(ulog *log, const char *topic, int flags, ulog_clean_cb *cb,
                        void *arg);

/*
 * Kafka's DeleteRecords: moves the log start offset of one partition to
 * `offset` (at most its high watermark), durably. Records below it are gone
 * for every reader at once, though their bytes go only with the whole
 * segments below it (now), and the segment holding `offset` (when retention
 * deletes it). Moving it backwards is a no-op. Errors: ULOG_EINVAL,
 * ULOG_ENOENT, ULOG_EOFFSET (offset above the high watermark, or negative),
 * ULOG_EIO. Thread-safe. Since 0.2.
 */
ULOG_API int ulog_delete_records(ulog *log, const char *topic, int32_t partition,
                                 int64_t offset);

/*
 * Empties one partition and makes `offset`, at or past its end, both its
 * log start and its next offset, durably: what a follower does before it
 * copies a leader whose log start retention or ulog_delete_records() has
 * moved past the follower's end (Kafka's follower, truncating fully and
 * starting at the leader's log start). Every record of the partition goes,
 * for every reader at once, and its segments with them (at its end, as
 * ulog_delete_records() takes them). Errors, with nothing changed:
 * ULOG_EINVAL, ULOG_ENOENT, ULOG_EOFFSET (offset below the partition's
 * end, negative, or too close to INT64_MAX for a batch above it),
 * ULOG_EPOISONED; ULOG_EIO or ULOG_ENOSPC (a failed sync poisons the
 * partition, as a background sync's failure does; after the commit point,
 * the start has happened and leftover segments go at the next reboot).
 * Thread-safe. Since 0.5.
 */
ULOG_API int ulog_partition_start_at(ulog *log, const char *topic, int32_t partition,
                                     int64_t offset);

/* A consumer group that retention.groups names, and what it holds back in
 * one partition. */
typedef struct ulog_pin {
    size_t      struct_size;  /* set by the caller: sizeof(ulog_pin) */
    const char *group;        /* borrowed from the list */
    int32_t     partition;
    int64_t     committed;    /* its committed offset; -1: none (it holds
                                 the whole partition) */
    int64_t     bytes;        /* bytes retention.ms / retention.bytes would
                                 delete now but for this group */
} ulog_pin;
#define ULOG_PIN_INIT { sizeof(ulog_pin), NULL, 0, 0, 0 }

typedef struct ulog_pins ulog_pins;

/*
 * Which groups hold back retention in `topic` (see retention.groups), and
 * how many bytes each: one entry per group and partition, by partition,
 * empty when the topic has no retention.groups. A byte held by two groups
 * counts for both. Caller owns *out; free with ulog_pins_free(). Errors:
 * ULOG_EINVAL, ULOG_ENOENT, ULOG_EIO, ULOG_ENOMEM. Since 0.2.
 */
ULOG_API int    ulog_retention_pins(ulog *log, const char *topic, ulog_pins **out);
ULOG_API size_t ulog_pins_count(const ulog_pins *pins);
/* Fills *out (its struct_size set by the caller) with entry i. Errors:
 * ULOG_EINVAL (NULL, i out of range, struct_size too small). */
ULOG_API int    ulog_pins_get(const ulog_pins *pins, size_t i, ulog_pin *out);
ULOG_API void   ulog_pins_free(ulog_pins *pins);      /* NULL: no-op */

/* ---------------------------------------------------------------- append */

typedef struct ulog_header {
    const char *key;   size_t key_len;              /* key may hold any bytes */
    const void *value; size_t value_len;            /* value NULL: null value */
} ulog_header;

#define ULOG_PARTITION_ANY   (-1)  /* by key (Kafka's murmur2), round-robin for null keys */
#define ULOG_TIMESTAMP_NOW   INT64_MIN

typedef struct ulog_record {
    const void *key;   size_t key_len;              /* key NULL: null key */
    const void *value; size_t value_len;            /* value NULL: null value (tombstone) */
    const ulog_header *headers; size_t header_count;
    int64_t timestamp;                              /* ms since epoch, or ULOG_TIMESTAMP_NOW */
    int32_t partition;                              /* in: a partition or ULOG_PARTITION_ANY; out: the one used */
    int64_t offset;                                 /* out: the offset assigned */
} ulog_record;

/*
 * Appends count records (1..2^20) to a topic. The records that go to one
 * partition form one atomic batch: after any crash either all of them are in
 * the log or none. Records with partition ULOG_PARTITION_ANY go by
 * murmur2(key) like the Java Kafka client, or round-robin for null keys.
 * Writes back each record's partition and offset. Returns once the batches are
 * committed under the topic's flush.policy (always: after fdatasync, shared
 * with concurrent appenders).
 * Errors, with nothing appended: ULOG_EINVAL (NULL arguments, bad partition,
 * a negative timestamp other than ULOG_TIMESTAMP_NOW), ULOG_ENOENT (no such topic), ULOG_ETOOBIG (a batch larger
 * than max.message.bytes). When records go to several partitions, a failure
 * in one (ULOG_EIO, ULOG_ENOSPC, ULOG_EPOISONED) leaves the batches of
 * partitions appended before it committed; their records have offset >= 0,
 * the others offset -1.
 * Borrows the records for the call only. Thread-safe. Since 0.1.
 */
ULOG_API int ulog_append(ulog *log, const char *topic, ulog_record *records, size_t count);

/*
 * Applies one batch that another log stored (from ulog_poll_batch() there)
 * to partition `partition` at base_offset, keeping its bytes, offsets and
 * timestamps: the receiving side of replication. data must hold exactly
 * one whole Kafka RecordBatch v2 whose baseOffset is base_offset; it is
 * verified (CRC, magic, every record) before anything is written.
 * Idempotent: when the partition already holds this batch at base_offset,
 * byte for byte, the call does nothing and returns 0 (a batch shipped
 * twice). Returns once the batch is committed under the topic's
 * flush.policy, like ulog_append().
 * Errors, with nothing written: ULOG_EINVAL (NULL, base_offset not the
 * batch's, bad partition), ULOG_ENOENT, ULOG_ECORRUPT (not one whole valid
 * batch), ULOG_ENOTSUP (compressed, transactional or control batches),
 * ULOG_ETOOBIG (larger than max.message.bytes), ULOG_EOFFSET (base_offset
 * is past the end of the partition, which would leave a gap, or below its
 * log start), ULOG_ECONFLICT (other bytes are stored at base_offset, or it
 * is not where a stored batch begins), and those of ulog_append()
 * (ULOG_ETIMEDOUT with replication.sync: stored, not shipped in time).
 * Batches whose records skip offsets (compaction rewrote them) are taken
 * as they are, since 0.5. A follower of a leader whose log start is past
 * the follower's end calls ulog_partition_start_at() first. Thread-safe.
 * Since 0.3.
 */
ULOG_API int ulog_append_raw(ulog *log, const char *topic, int32_t partition,
                             int64_t base_offset, const void *data, size_t len);


/* Lowest available and next-to-be-committed offsets of a partition: readers
 * see [*low, *high). Errors: ULOG_EINVAL, ULOG_ENOENT. Since 0.1. */
ULOG_API int ulog_watermarks(ulog *log, const char *topic, int32_t partition,
                             int64_t *low, int64_t *high);

/* ---------------------------------------------------------------- read */

typedef struct ulog_msg {                           /* borrowed: valid until the next call on the subscription */
    const char *topic;
    int32_t     partition;
    int64_t     offset;
    int64_t     timestamp;
    const void *key;   size_t key_len;              /* key NULL: null key */
    const void *value; size_t value_len;            /* value NULL: null value */
    size_t      header_count;
    const void *internal;                           /* for ulog_msg_header(); do not touch */
} ulog_msg;

/* The index-th header of msg (in the order they were appended). Borrowed;
 * valid as long as msg. Errors: ULOG_EINVAL (NULL, index out of range),
 * ULOG_ECORRUPT. Since 0.1. */
ULOG_API int ulog_msg_header(const ulog_msg *msg, size_t index, ulog_header *out);

/*
 * Subscribes to every partition of a topic. With a group (a name by the
 * topic-name rules: 1-249 bytes of [A-Za-z0-9._-], not "." or ".."), each
 * partition starts at the group's committed offset; a partition with none,
 * or whose committed offset is no longer in [low, high], starts per
 * "auto.offset.reset" in cfg (default latest), and with "none" the call
 * fails with ULOG_EOFFSET. group NULL: no committed offsets; the
 * subscription starts per "auto.offset.reset" ("none" then means earliest).
 * Any number of subscriptions, in any processes, may share a group; each
 * reads every partition (there is no partition assignment) and the last
 * commit wins.
 * Errors: ULOG_EINVAL (bad config name or value, bad group name),
 * ULOG_ENOENT, ULOG_EOFFSET, ULOG_ENOMEM, ULOG_EIO.
 * Caller owns *out; free with ulog_sub_close() before ulog_close().
 * Since 0.1 (groups: 0.2).
 */
ULOG_API int  ulog_subscribe(ulog *log, const char *topic, const char *group,
                             const ulog_config *cfg, ulog_sub **out);
/*
 * Returns the next committed record of any partition in *msg (zero copy:
 * borrowed; valid until the next call on this subscription). Waits up to
 * timeout_ms (0: do not wait, -1: forever) for one to arrive.
 * Returns 0, ULOG_ETIMEDOUT, ULOG_ECORRUPT (a stored batch failed
 * verification: the position does not move past it), ULOG_EOFFSET (the
 * position fell below the log start), ULOG_EIO, ULOG_EINVAL; for an
 * encrypted topic also ULOG_ENOKEY and ULOG_EAUTH (see ulog_key_add: the
 * position does not move past the record, and msg gets no value).
 */
ULOG_API int  ulog_poll(ulog_sub *sub, int timeout_ms, ulog_msg *msg);

/* One stored batch, whole: what replication ships (ulog_poll_batch()) and
 * applies (ulog_append_raw()). */
typedef struct ulog_batch {
    size_t      struct_size;    /* set by the caller: sizeof(ulog_batch) */
    int32_t     partition;
    int64_t     base_offset;    /* first offset the batch covers */
    int64_t     last_offset;    /* last offset it covers (compaction may have
                                   removed records in between) */
    int32_t     record_count;
    int64_t     max_timestamp;  /* the batch's maxTimestamp */
    const void *data;           /* the frame as stored: Kafka RecordBatch v2 */
    size_t      len;            /* bytes of data */
} ulog_batch;
#define ULOG_BATCH_INIT { sizeof(ulog_batch), 0, 0, 0, 0, 0, NULL, 0 }

/*
 * Like ulog_poll(), but returns the next committed batch of any partition
 * whole, byte for byte as stored, in *out (borrowed like a message: valid
 * until the next call on this subscription), and moves that partition's
 * position past it. A batch is never split: when the position is inside
 * one (a seek, or records taken with ulog_poll()), the whole batch comes,
 * with records before the position. The CRC has been checked; the records
 * are not decoded. Same waiting and errors as ulog_poll(), and ULOG_EINVAL
 * when out->struct_size is too small. Since 0.3.
 */
ULOG_API int  ulog_poll_batch(ulog_sub *sub, int timeout_ms, ulog_batch *out);

/*
 * Authenticating shipped batches: a MAC (HMAC-SHA-512-256, libsodium's
 * crypto_auth) over a batch and its place -- topic, partition, base offset
 * -- under a key of ULOG_MAC_KEY_BYTES random bytes the shipper and the
 * receiver share (crypto_auth_keygen() makes one). A receiver that applies
 * only batches whose MAC verifies takes them from holders of the key only,
 * and only at the place they were signed for: a batch replayed at another
 * offset or partition fails. The key never goes into the log.
 * ulog_batch_mac() writes the MAC to mac; ulog_batch_mac_verify() returns 0
 * when mac is right, ULOG_EAUTH when it is not (compared in constant time).
 * Both: ULOG_EINVAL for NULL arguments (data may be NULL when len is 0).
 * Thread-safe. Since 0.3.
 */
#define ULOG_MAC_KEY_BYTES 32
#define ULOG_MAC_BYTES     32
ULOG_API int ulog_batch_mac(const uint8_t *key, const char *topic, int32_t partition,
                            int64_t base_offset, const void *data, size_t len, uint8_t *mac);
ULOG_API int ulog_batch_mac_verify(const uint8_t *key, const char *topic, int32_t partition,
                                   int64_t base_offset, const void *data, size_t len,
                                   const uint8_t *mac);

/*
 * Encryption at rest. A topic created with the setting encryption.key.id
 * (0..2^31-1) stores every record value sealed with XChaCha20-Poly1305
 * (libsodium) under the key of that id: ULOG_KEY_BYTES random bytes the
 * application gives each handle with ulog_key_add() and keeps itself --
 * keys are never written to the log. Appends seal with the topic's
 * current key id (ulog_topic_alter() changes it: key rotation); reads open
 * each value with the key id it was sealed with, so old keys stay needed
 * while their records are kept. Keys, headers and timestamps stay in the
 * clear, and null values stay null (tombstones). A value costs
 * ULOG_SEAL_OVERHEAD bytes more on disk.
 * ulog_key_add(): the key of `key_id` for `topic` (a topic that need not
 * exist yet), held in locked memory until ulog_key_remove() or
 * ulog_close(). 0, also when the same key is there already; ULOG_EEXIST
 * when another key has that id; ULOG_EINVAL for a bad name, a NULL key or
 * key_len other than ULOG_KEY_BYTES; ULOG_ENOMEM.
 * ulog_key_remove(): 0, or ULOG_ENOENT when there is no such key.
 * Appends to an encrypted topic without its current key fail with
 * ULOG_ENOKEY and store nothing. ulog_poll() of a value whose key was not
 * given returns ULOG_ENOKEY; of a value that does not open (a wrong key
 * under that id, a changed byte, a value moved to another key, partition
 * or topic) ULOG_EAUTH -- never the bytes. Either way the subscription
 * stays at that record: add the key, or seek past it.
 * ulog_poll_batch() hands out batches as stored (sealed): replication
 * copies them as they are, and a follower reads them with the same keys.
 * Thread-safe. Since 0.4.
 */
#define ULOG_KEY_BYTES     32
#define ULOG_SEAL_OVERHEAD 45
ULOG_API int ulog_key_add(ulog *log, const char *topic, uint32_t key_id, const uint8_t *key,
                          size_t key_len);
ULOG_API int ulog_key_remove(ulog *log, const char *topic, uint32_t key_id);

/*
 * The replication hook. ulog_hook_start() starts a thread that hands every
 * committed batch of a topic, from where the hook last got to, to
 * ship(batch, arg): whole batches, as ulog_poll_batch() gives them, in
 * offset order within each partition. ship returns 0 once the batch is
 * safely elsewhere; the hook's position then moves past it. Any other
 * value: the same batch comes again, after a pause (100 ms, doubling up
 * to 5 s while it keeps failing).
 * The position is stored as the committed offsets of the consumer group
 * `name` (a group name no consumer uses; ulog groups describe shows the
 * hook's lag), after ship returned 0: delivery is at least once. After a
 * crash, batches shipped since the last stored position come again (at
 * most 64 batches or 100 ms of them per partition); ulog_append_raw()
 * makes applying them again harmless.
 * With ULOG_HOOK_ACKS in flags, what this hook has shipped is also the
 * replica watermark of each partition (ulog_partition_info.replicated),
 * which replication.sync appends wait for and read.replicated
 * subscriptions stop at. One hook per topic may acknowledge, in all
 * processes together: another gets ULOG_EEXIST. The watermark is kept in
 * the partition's shared head; when the log is opened anew after a reboot
 * it starts at 0 until the acknowledging hook starts again.
 * ship runs in the hook's thread, never two at once; it must not call
 * ulog_hook_stop() on its own hook. Errors: ULOG_EINVAL, ULOG_ENOENT,
 * ULOG_EEXIST, ULOG_ENOMEM, and those of ulog_subscribe(). Thread-safe.
 * Since 0.3.
 */
typedef struct ulog_hook ulog_hook;
typedef int ulog_ship_fn(const ulog_batch *batch, void *arg);
#define ULOG_HOOK_ACKS 0x1u
ULOG_API int ulog_hook_start(ulog *log, const char *topic, const char *name, unsigned flags,
                             ulog_ship_fn *ship, void *arg, ulog_hook **out);
/* Stops the hook's thread (after the ship call under way, if any), stores
 * its position and frees it; NULL is a no-op. Returns 0, or the error that
 * last kept it from reading or storing its position (ULOG_ECORRUPT,
 * ULOG_EIO, ULOG_ENOENT when the topic was deleted...). Call it before
 * ulog_close(). Since 0.3. */
ULOG_API int ulog_hook_stop(ulog_hook *hook);
/* Moves partition `partition` (or every partition: ULOG_PARTITION_ANY) so that
 * the next record polled from it is `offset` (on a compacted topic, the first
 * record kept at or after it: compaction leaves gaps). offset may equal the high
 * watermark. Cost: O(log n) metadata lookup plus at most one index interval of
 * scanning. Errors: ULOG_EINVAL, ULOG_EOFFSET (outside [low, high]; the
 * position is unchanged), ULOG_ECORRUPT, ULOG_EIO. Since 0.1. */
ULOG_API int  ulog_seek(ulog_sub *sub, int32_t partition, int64_t offset);
/* Moves to the first record whose timestamp is >= timestamp_ms (Kafka's
 * offsetsForTimes); to the high watermark when there is none. Same errors as
 * ulog_seek(). Since 0.1. */
ULOG_API int  ulog_seek_time(ulog_sub *sub, int32_t partition, int64_t timestamp_ms);
/* The offset the next record polled from `partition` will have. Since 0.1. */
ULOG_API int  ulog_position(ulog_sub *sub, int32_t partition, int64_t *offset);
/*
 * Durably stores, for the subscription's group, the position (the offset of
 * the next record to poll) of every partition: a subscriber of the group
 * that starts later resumes right after the last record polled before the
 * commit. Committed offsets never expire; they go only with
 * ulog_group_delete() or change with ulog_group_reset().
 * Errors: ULOG_EINVAL (no group), ULOG_EIO, ULOG_ENOSPC, ULOG_ELIMIT.
 * Since 0.1 (groups: 0.2).
 */
ULOG_API int  ulog_commit(ulog_sub *sub);

/* A partition and an offset. Frozen (arrays of it cross the ABI). */
typedef struct ulog_offset {
    int32_t partition;
    int64_t offset;
} ulog_offset;

/* Durably stores the given offsets (each the next offset the group should
 * read in that partition; any value in [low, high] of the partition) for
 * the subscription's group, all or none. Does not move the subscription.
 * Errors: ULOG_EINVAL (no group, NULL, count 0, a bad or repeated
 * partition), ULOG_EOFFSET (an offset outside [low, high]; nothing stored),
 * ULOG_EIO, ULOG_ENOSPC. Since 0.2. */
ULOG_API int  ulog_commit_offsets(ulog_sub *sub, const ulog_offset *offsets, size_t count);

/* Called with the outcome of an asynchronous commit (0 or a ULOG_E* code). */
typedef void ulog_commit_cb(ulog_sub *sub, int err, void *arg);

/*
 * ulog_commit() without waiting: takes the positions now and returns; a
 * thread of the subscription (started on first use) stores them durably, in
 * call order. cb (may be
 * NULL) is then called with the outcome from inside a later ulog_poll(),
 * ulog_commit(), ulog_commit_offsets(), ulog_commit_async() or
 * ulog_sub_close() on this subscription, so in the subscription's own
 * thread; it may queue another asynchronous commit, nothing else on `sub`.
 * ulog_commit(), ulog_commit_offsets() and ulog_sub_close() first wait for
 * every asynchronous commit before them.
 * Errors (nothing queued): ULOG_EINVAL (no group), ULOG_ENOMEM. Since 0.2.
 */
ULOG_API int  ulog_commit_async(ulog_sub *sub, ulog_commit_cb *cb, void *arg);
/* A file descriptor that becomes readable when records may be waiting, for
 * poll/epoll loops; poll with timeout 0 until ULOG_ETIMEDOUT, then wait on the
 * descriptor again. Owned by the subscription. Returns the descriptor or a
 * negative error. Since 0.1. */
ULOG_API int  ulog_sub_fd(ulog_sub *sub);
/* Closes a subscription, after waiting for its asynchronous commits (their
 * callbacks run first). Does not commit. NULL is a no-op. Since 0.1. */
ULOG_API void ulog_sub_close(ulog_sub *sub);

/* ---------------------------------------------------------------- groups */

/* Names of every group with a committed offset, sorted. Caller owns *out.
 * Errors: ULOG_EINVAL, ULOG_EIO, ULOG_ENOMEM. Since 0.2. */
ULOG_API int ulog_group_list(ulog *log, ulog_strlist **out);

/* One partition a group has committed an offset for. */
typedef struct ulog_group_lag {
    size_t      struct_size;  /* set by the caller: sizeof(ulog_group_lag) */
    const char *topic;        /* borrowed from the description */
    int32_t     partition;
    int64_t     committed;    /* next offset the group reads */
    int64_t     low, high;    /* the partition's watermarks now */
    int64_t     lag;          /* records the group has still to read: high
                                 minus the committed offset (minus low if
                                 that fell out of the log; 0 if above high) */
    int64_t     commit_time;  /* when it was committed, ms since the epoch */
} ulog_group_lag;
#define ULOG_GROUP_LAG_INIT { sizeof(ulog_group_lag), NULL, 0, 0, 0, 0, 0, 0 }

typedef struct ulog_group_desc ulog_group_desc;
/* Describes a group: every partition it has committed, by topic name then
 * partition, with its lag. Caller owns *out; free with
 * ulog_group_desc_free(). Errors: ULOG_EINVAL (bad name), ULOG_ENOENT (no
 * such group), ULOG_EIO, ULOG_ENOMEM. Since 0.2. */
ULOG_API int    ulog_group_describe(ulog *log, const char *group, ulog_group_desc **out);
ULOG_API size_t ulog_group_desc_count(const ulog_group_desc *desc);
/* Fills *out (its struct_size set by the caller) with entry i. Errors:
 * ULOG_EINVAL (NULL, i out of range, struct_size too small). */
ULOG_API int    ulog_group_desc_get(const ulog_group_desc *desc, size_t i, ulog_group_lag *out);
ULOG_API void   ulog_group_desc_free(ulog_group_desc *desc);      /* NULL: no-op */

/* Deletes every committed offset of a group. Live subscriptions of the group
 * keep their positions; their next commit creates the group again.
 * Errors: ULOG_EINVAL, ULOG_ENOENT (no such group), ULOG_EIO. Since 0.2. */
ULOG_API int ulog_group_delete(ulog *log, const char *group);

/* Where ulog_group_reset() moves a group's committed offsets. */
#define ULOG_RESET_EARLIEST 0     /* to the partition's low watermark */
#define ULOG_RESET_LATEST   1     /* to its high watermark */
#define ULOG_RESET_OFFSET   2     /* to `value`, which must be in [low, high] */
#define ULOG_RESET_TIME     3     /* to the first record with timestamp >= `value`
                                     (ms since the epoch), else high */

/*
 * Sets the committed offset of a group for one partition of a topic, or for
 * every partition (ULOG_PARTITION_ANY), all or none, creating the group if
 * needed. Like Kafka's kafka-consumer-groups --reset-offsets, meant for a
 * group with no live subscriptions: live ones keep their positions and
 * overwrite the reset at their next commit.
 * Errors: ULOG_EINVAL (bad name, partition or `how`), ULOG_ENOENT (no such
 * topic), ULOG_EOFFSET (RESET_OFFSET outside [low, high]), ULOG_EIO.
 * Since 0.2.
 */
ULOG_API int ulog_group_reset(ulog *log, const char *group, const char *topic,
                              int32_t partition, int how, int64_t value);

#ifdef __cplusplus
}
#endif
#endif /* ULOG_H */
