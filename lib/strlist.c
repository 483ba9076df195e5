/*
 * strlist.c -- the list of strings handed to callers (topic names, ...).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct ulog_strlist {
    size_t count;
    char **s;          /* count slots; NULL until set */
};

int ulog__strlist_new(size_t count, ulog_strlist **out)
{
    ulog_strlist *l;

    if (!out)
        return ULOG_EINVAL;
    l = calloc(1, sizeof *l);
    if (!l)
        return ULOG_ENOMEM;
    /* calloc(0) may return NULL; keep one slot so NULL always means ENOMEM. */
    l->s = calloc(count ? count : 1, sizeof *l->s);
    if (!l->s) {
        free(l);
        return ULOG_ENOMEM;
    }
    l->count = count;
    *out = l;
    return 0;
}

int ulog__strlist_set(ulog_strlist *l, size_t i, const char *s)
{
    char *copy;
    size_t n;

    if (!l || !s || i >= l->count)
        return ULOG_EINVAL;
    n = strlen(s) + 1;
    copy = malloc(n);
    if (!copy)
        return ULOG_ENOMEM;
    memcpy(copy, s, n);
    free(l->s[i]);
    l->s[i] = copy;
    return 0;
}

size_t ulog_strlist_count(const ulog_strlist *list)
{
    return list ? list->count : 0;
}

const char *ulog_strlist_get(const ulog_strlist *list, size_t i)
{
    return list && i < list->count ? list->s[i] : NULL;
}

void ulog_strlist_free(ulog_strlist *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->s[i]);
    free(list->s);
    free(list);
}
