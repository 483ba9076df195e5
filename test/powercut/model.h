/*
 * model.h -- what a power cut leaves: replays a shim journal (journal.h)
 * into a model of the watched tree and builds crash images from it.
 *
 * The model, per object (file or directory; an object outlives its names):
 *   file: the durable bytes D (content and size as of its last successful
 *         fsync/fdatasync, plus every O_DSYNC write), and the pending
 *         operations P since (writes, truncations, allocations), in order;
 *   dir:  the current entries and the durable entries (as of the last fsync
 *         of the directory). A name created, renamed or removed after the
 *         last fsync of its directory is not durable: the image has the
 *         directory as it was at that fsync.
 *
 * Image kinds (every file with pending operations, independently):
 *   1  D only: the synced bytes;
 *   2  D plus a random prefix of P (the last operation applied in part);
 *   3  as 2, plus garbage over part of the bytes P wrote (applied or not);
 *   4  as 2, plus one zeroed page within the bytes P wrote.
 * A write issued with O_DSYNC and still in flight at the kill is all or
 * nothing (a 120-byte LMDB meta update within one sector); no kind damages
 * it. Damage never touches a byte that is durable and not rewritten.
 *
 * "Volatile" files -- mapped shared and writable (a ulog `head`, LMDB's
 * lock.mdb), whose contents live in the page cache -- get D like any file;
 * the caller replaces or removes them afterwards (pc_image.volatile_paths).
 */
#ifndef POWERCUT_MODEL_H
#define POWERCUT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pc_model pc_model;

typedef struct pc_stats {
    uint64_t records;           /* journal records replayed */
    uint64_t torn_tail;         /* bytes after the last whole record */
    uint64_t opens, writes, dsync_writes, inflight_writes, failed_writes;
    uint64_t inflight_calls;    /* other calls begun, not finished at the kill */
    uint64_t file_syncs, dir_syncs, failed_syncs, sync_ranges, sync_alls;
    uint64_t truncs, fallocs, creates, mkdirs, unlinks, renames;
    uint64_t mmap_writes, msyncs_of_mapped, unmodeled;
    uint64_t inconsistencies;   /* the journal contradicts the model */
    char     first_problem[512];
} pc_stats;

/* Reads and replays <journal_dir>/journal for the tree `root` (canonical
 * path; the directory existed, empty and durable, before the journal
 * started). NULL when the journal cannot be read. */
pc_model *pc_model_load(const char *journal_dir, const char *root);
void      pc_model_free(pc_model *m);
const pc_stats *pc_model_stats(const pc_model *m);

/* Compares the model's current state (page cache: D plus P) with the real
 * tree after the kill: every name, type, and the contents of every file
 * but volatile ones. A call in flight at the kill may or may not have
 * happened (a write in part); nothing else may differ. Returns
 * the number of differences; the first goes to msg. */
int pc_model_selfcheck(const pc_model *m, const char *real_root, char *msg, size_t len);

typedef struct pc_image {
    int      kind;             /* 1..4 */
    uint64_t seed;
    /* out */
    int      files;            /* regular files written */
    int      files_pending;    /* files that had pending operations */
    int      files_damaged;    /* kinds 3, 4: files given garbage / zeros */
    int64_t  unsynced_kept;    /* bytes of P applied */
    int64_t  unsynced_dropped; /* bytes of P not applied */
    const char *watch;         /* in: a file name to report on (NULL: none) */
    int      watch_pending;    /* files of that name with pending operations */
    int      watch_damaged;    /* ... given garbage or zeros */
    char   **volatile_paths;   /* relative paths of volatile files written; NULL-ended */
    int      nvolatile;
} pc_image;

/* Builds an image of kind img->kind in the empty directory `dest`, which
 * stands for the root. Returns 0 or -1 (errno). */
int  pc_model_build(const pc_model *m, const char *dest, pc_image *img);
void pc_image_clear(pc_image *img);

#endif
