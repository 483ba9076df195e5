/*
 * errors.c -- error names and messages, version, errno translation.
 */
#include "internal.h"

#include <errno.h>

/* Indexed by -code. Names are part of the ABI in spirit: bindings derive
 * exception classes from them, so they never change. */
static const struct {
    const char *name;
    const char *msg;
} errtab[] = {
    { "ULOG_OK",        "success" },
    { "ULOG_EINVAL",    "invalid argument, name or config value" },
    { "ULOG_ENOENT",    "no such topic, partition or log root" },
    { "ULOG_EEXIST",    "topic already exists" },
    { "ULOG_ETIMEDOUT", "timed out" },
    { "ULOG_EOFFSET",   "offset out of range" },
    { "ULOG_ETOOBIG",   "record or batch too large" },
    { "ULOG_ECORRUPT",  "stored data failed verification" },
    { "ULOG_EIO",       "I/O error" },
    { "ULOG_ENOSPC",    "no space left on device" },
    { "ULOG_ENOMEM",    "out of memory" },
    { "ULOG_EVERSION",  "on-disk data of an unknown format version" },
    { "ULOG_ENOTSUP",   "operation not supported" },
    { "ULOG_EACCES",    "permission denied" },
    { "ULOG_EPOISONED", "partition refuses appends after a durability failure" },
    { "ULOG_ELIMIT",    "a system limit was reached" },
    { "ULOG_ECONFLICT", "other bytes are stored at that offset" },
    { "ULOG_EAUTH",     "authentication failed: wrong key or changed bytes" },
    { "ULOG_ENOKEY",    "no key of that id was given" },
};

#define NERR ((int)(sizeof errtab / sizeof errtab[0]))

const char *ulog_strerror(int err)
{
    return err <= 0 && err > -NERR ? errtab[-err].msg : "unknown error";
}

const char *ulog_errname(int err)
{
    return err <= 0 && err > -NERR ? errtab[-err].name : "ULOG_UNKNOWN";
}

const char *ulog_version_string(void)
{
    return ULOG_VERSION_STRING;
}

int ulog_version_number(void)
{
    return ULOG_VERSION_NUMBER;
}

int ulog__errno_to_err(int e)
{
    switch (e) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return ULOG_ENOSPC;
    case ENOMEM: return ULOG_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS:  return ULOG_EACCES;
    case ENOENT: return ULOG_ENOENT;
    case EEXIST: return ULOG_EEXIST;
    case EMFILE:
    case ENFILE:
    case EFBIG:  return ULOG_ELIMIT;
    case EINVAL: return ULOG_EINVAL;
    default:     return ULOG_EIO;
    }
}
