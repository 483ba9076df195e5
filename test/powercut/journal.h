/*
 * journal.h -- the record format the power-cut shim (shim.c) appends to its
 * journal and the driver (model.c) replays.
 *
 * The journal is one file, <POWERCUT_JOURNAL>/journal, opened O_APPEND by
 * every process that runs under the shim; each record goes out in one
 * writev(2), so records of concurrent threads never interleave. A record is
 * a pc_rec header, `len` payload bytes, and a pc_tail. A record cut short
 * by the SIGKILL (or anything after one) fails the tail check and ends the
 * replay: what it describes had not been reported back to anyone yet.
 *
 * Ordering: `seq` comes from one counter (<POWERCUT_JOURNAL>/seq, mapped
 * shared) for every thread and process under the shim; records start at 1
 * (0 means "none" in `ref`). A completed operation takes its number
 * after the system call returned; a sync takes its number BEFORE the call,
 * so a sync covers exactly the operations that had completed before it
 * started (a write racing with the fsync counts as not covered -- one of
 * the outcomes a real kernel allows). The driver replays records in seq
 * order, not in file order.
 *
 * Only files and directories under POWERCUT_ROOT are journaled.
 */
#ifndef POWERCUT_JOURNAL_H
#define POWERCUT_JOURNAL_H

#include <stdint.h>

#define PC_MAGIC      0x314a4350u   /* "PCJ1" */
#define PC_TAIL_MAGIC 0x4c494154u   /* "TAIL" */

enum pc_type {
    /* A successful open of a file or directory under the root. oid = seq:
     * later records name the open file description by it. oflags: the open
     * flags; ref: its PC_BEGIN (O_CREAT or O_TRUNC), else 0. payload: the
     * canonical path (readlink of /proc/self/fd/N). */
    PC_OPEN = 1,
    PC_MKDIR,        /* payload: path (these four: ref = their PC_BEGIN) */
    PC_UNLINK,       /* payload: path */
    PC_RMDIR,        /* payload: path */
    PC_RENAME,       /* payload: old path, NUL, new path */
    /* A write about to be issued: oid, off (-1: O_APPEND, unknown), n =
     * bytes asked, flags PC_F_DSYNC when the descriptor has O_DSYNC/O_SYNC
     * or the call RWF_DSYNC/RWF_SYNC. payload: the bytes. */
    PC_WRITE_BEGIN,
    /* The write returned: ref = seq of its BEGIN, off = where it landed,
     * n = bytes written (-1: it failed, nothing happened). A BEGIN without
     * an END was in flight at the kill. */
    PC_WRITE_END,
    PC_TRUNC,        /* oid, n = new size; ref = its PC_BEGIN */
    PC_TRUNC_PATH,   /* truncate(2): n = new size; payload: path; ref */
    PC_FALLOC,       /* oid, off, n = len, flags = fallocate mode; ref */
    /* fsync/fdatasync that succeeded. seq: taken before the call. flags:
     * PC_SYNC_FSYNC or PC_SYNC_FDATASYNC. For a directory it makes its
     * entries durable, for a file its data and size. */
    PC_FSYNC,
    PC_FSYNC_FAILED, /* for the statistics only */
    PC_SYNC_RANGE,   /* sync_file_range: no durability promise; counted */
    PC_SYNC_ALL,     /* sync(2)/syncfs(2): everything; seq before the call */
    PC_MMAP_WRITE,   /* oid: a shared writable mapping of the file */
    PC_MSYNC,        /* oid: msync of such a mapping */
    PC_UNMODELED,    /* a write path the model does not know; payload: name */
    /* Before a call that changes names or sizes (an open with O_CREAT or
     * O_TRUNC, mkdir, unlink, rmdir, rename, ftruncate, truncate,
     * fallocate): ref = the record type its completion will have, and the
     * fields and payload that record will carry. The completion names it
     * in its own `ref`; a failed call is closed by PC_FAILED. One that is
     * never closed was in flight at the kill: it may or may not have
     * happened. (Writes have their own BEGIN/END.) */
    PC_BEGIN,
    PC_FAILED,       /* ref = seq of the PC_BEGIN of a call that failed */
    PC_TYPE_MAX
};

#define PC_F_DSYNC   1u
#define PC_F_DIR     2u              /* PC_OPEN: the object is a directory */

#define PC_SYNC_FSYNC     1u
#define PC_SYNC_FDATASYNC 2u

typedef struct pc_rec {
    uint32_t magic;
    uint16_t type;
    uint16_t flags;
    uint32_t len;        /* payload bytes after the header */
    uint32_t pid;
    uint64_t seq;
    uint64_t oid;
    uint64_t ref;
    int64_t  off;
    int64_t  n;
    uint64_t ino;
    uint32_t oflags;     /* PC_OPEN: open(2) flags */
    uint32_t pad;
} pc_rec;

typedef struct pc_tail {
    uint32_t magic;
    uint32_t seq_lo;     /* low bits of the record's seq */
} pc_tail;

_Static_assert(sizeof(pc_rec) == 72, "pc_rec layout");

#endif
