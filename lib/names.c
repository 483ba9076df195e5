/*
 * names.c -- topic and group names, checked before any path is built.
 */
#include "internal.h"

/* Kafka's rule. The byte whitelist rules out '/', NUL, control bytes and
 * non-ASCII (no Unicode normalisation surprises); "." and ".." are the only
 * whitelisted names that would still walk the directory tree. */
bool ulog__name_valid(const char *name)
{
    size_t n = 0;

    if (!name)
        return false;
    for (; name[n]; n++) {
        unsigned char c = (unsigned char)name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok || n >= 249)
            return false;
    }
    if (n == 0)
        return false;
    return !(name[0] == '.' && (n == 1 || (n == 2 && name[1] == '.')));
}
