/*
 * topic_admin.c -- changing and deleting topics: ulog_topic_alter,
 * ulog_topic_delete, and the sweep of deletes a crash cut short.
 *
 * Settings live in the catalog; each process keeps the copy it read and
 * compares a version in partition 0's head (cfg_gen) on every append and
 * flusher pass. An alter writes the catalog first and raises cfg_gen
 * after, and every open raises cfg_gen to the catalog's version, so an
 * alter whose process died in between is still found.
 *
 * A delete runs in steps that any process may repeat:
 *   1. every partition's head is marked deleted, under its writer lock:
 *      from here appends and polls in every process fail with ULOG_ENOENT;
 *   2. in one catalog transaction, checked against the topic's id, the
 *      directory topics/NAME is renamed to topics/~ID (no topic name has a
 *      '~'; ids are never reused) and the catalog entry, its index
 *      entries, checkpoints and group offsets are removed;
 *   3. the renamed tree is removed.
 * A crash after 1 leaves marked heads on a topic the catalog still holds:
 * the next process to touch it sees the mark and does 2 and 3. A crash
 * inside 2 leaves the catalog whole and the directory renamed; after 2,
 * only the renamed tree is left: the sweep at ulog_open finishes either
 * (the id is in the name). Heads live in the page cache, so after a reboot
 * a topic still whole in the catalog is alive again, as if the delete had
 * not started: it never returned. Because topic creation makes its
 * directories inside its catalog transaction too, a directory under a
 * topic's own name never holds a deleted topic's records.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The name a deleted topic's directory goes by: '~' and its id. */
#define TOMB_LEN 12

static void tomb_name(char out[TOMB_LEN], uint32_t id)
{
    snprintf(out, TOMB_LEN, "~%u", (unsigned)id);
}

/* ---------------------------------------------------------------- alter */

struct alter_args {
    const ulog_config *cfg;
    char               msg[256];
};

static int alter_edit(ulog__topic_cfg *tc, void *arg)
{
    struct alter_args *a = arg;
    return ulog__config_topic_alter(tc, a->cfg, tc, a->msg, sizeof a->msg);
}

int ulog_topic_alter(ulog *log, const char *topic, const ulog_config *cfg)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !cfg)
        return ulog__fail(log, ULOG_EINVAL, "topic_alter: NULL topic or config");
    ulog__topic *t;
    int err = ulog__topic_get(log, topic, &t);
    if (err)
        return err;
    struct alter_args a = { cfg, "" };
    uint32_t version;
    err = ulog__meta_topic_set_cfg(log->meta, topic, t->id, alter_edit, &a, &version);
    if (err)
        return ulog__fail(log, err, "topic %s: %s", topic, a.msg[0] ? a.msg : ulog_strerror(err));
    ulog__cfg_gen_raise(t->parts[0].h, version);
    ulog__topic_refresh(t);
    return 0;
}

/* ---------------------------------------------------------------- delete */

/* Removes directory `name` under dirfd and everything in it; a missing
 * entry is not an error (another process may be removing it too). */
static int remove_tree(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : ulog__errno_to_err(errno);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return ulog__errno_to_err(e);
    }
    int err = 0;
    struct dirent *de;
    while (!err && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        bool dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            dir = fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (dir)
            err = remove_tree(fd, de->d_name);
        else if (unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT)
            err = ulog__errno_to_err(errno);
    }
    closedir(d);
    if (!err && unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        err = ulog__errno_to_err(errno);
    return err;
}

struct unlink_args {
    ulog       *log;
    const char *name;
    const char *tomb;
    bool        renamed;
};

/* Step 2's rename, inside the catalog transaction. A directory already
 * gone was renamed by a delete that died before its transaction ended. */
static int unlink_step(void *arg)
{
    struct unlink_args *a = arg;
    if (renameat(a->log->topicsfd, a->name, a->log->topicsfd, a->tomb) != 0)
        return errno == ENOENT ? 0 : ulog__errno_to_err(errno);
    a->renamed = true;
    return ulog__fsync_dir(a->log->topicsfd);
}

int ulog__topic_finish_delete(ulog *log, const char *name, uint32_t id)
{
    char tomb[TOMB_LEN];
    tomb_name(tomb, id);
    struct unlink_args a = { log, name, tomb, false };
    int err = ulog__meta_topic_delete(log->meta, name, id, unlink_step, &a);
    if (err && err != ULOG_ENOENT) {
        /* The transaction was lost after the rename: the catalog still
         * has the topic, so its directory goes back (the heads stay
         * marked; a later call finishes). */
        if (a.renamed && renameat(log->topicsfd, tomb, log->topicsfd, name) == 0)
            ulog__fsync_dir(log->topicsfd);
        return err;
    }
    /* ENOENT: the catalog has no topic `name` with this id (any more), so
     * a tree by this tomb name is left over either way. */
    err = remove_tree(log->topicsfd, tomb);
    return err ? err : ulog__fsync_dir(log->topicsfd);
}

int ulog_topic_delete(ulog *log, const char *topic)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !ulog__name_valid(topic))
        return ulog__fail(log, ULOG_EINVAL,
                          "topic name must be 1-249 bytes of [A-Za-z0-9._-], not . or ..");
    ulog__topic *t;
    uint32_t id;
    int err = ulog__topic_get(log, topic, &t);
    if (err == 0) {
        for (int32_t i = 0; i < t->partitions; i++)
            ulog__part_mark_deleted(&t->parts[i]);
        id = t->id;
    } else {
        /* ENOENT while the catalog has it: marked deleted, or its
         * directory renamed by a delete that died in its transaction (or
         * whose finish failed). Anything else that keeps the topic from
         * opening is reported, not deleted over: processes that have it
         * open could not be told to stop. */
        ulog__topic_rec rec;
        if (err != ULOG_ENOENT || ulog__meta_topic_get(log->meta, topic, &rec) != 0)
            return err;
        id = rec.id;
        t = NULL;
    }
    err = ulog__topic_finish_delete(log, topic, id);
    if (t) {
        pthread_rwlock_wrlock(&log->tlock);
        ulog__topic_retire(log, t);
        pthread_rwlock_unlock(&log->tlock);
    }
    return err ? ulog__fail(log, err, "topic %s: deleting: %s", topic, ulog_strerror(err)) : 0;
}

/* Parses ~ID exactly as tomb_name writes it; false for anything else. */
static bool tomb_parse(const char *s, uint32_t *id)
{
    char *end, again[TOMB_LEN];
    if (s[0] != '~' || s[1] < '1' || s[1] > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(s + 1, &end, 10);
    if (*end || errno || v > UINT32_MAX)
        return false;
    tomb_name(again, (uint32_t)v);
    *id = (uint32_t)v;
    return strcmp(again, s) == 0;
}

void ulog__topics_sweep(ulog *log)
{
    int fd = openat(log->topicsfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;             /* best effort: the next open tries again */
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char name[ULOG__NAME_MAX + 1];
        uint32_t id;
        if (!tomb_parse(de->d_name, &id))
            continue;
        /* Still in the catalog: the delete died inside its transaction. */
        if (ulog__meta_topic_name(log->meta, id, name) == 0)
            ulog__topic_finish_delete(log, name, id);
        else if (remove_tree(log->topicsfd, de->d_name) == 0)
            ulog__fsync_dir(log->topicsfd);
    }
    closedir(d);
}
