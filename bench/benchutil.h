/* benchutil.h -- helpers shared by the benchmark programs.
 *
 * Header only: every program in bench/ is compiled and linked alone, so each
 * helper here is static inline (an unused one costs nothing and draws no
 * -Wunused-function). A program defines BENCH_NAME (its name, a string
 * literal) before including this header: the die_* helpers start their
 * message with it, followed by "[pid]" where the program also defines
 * BENCH_TAG_PID (one that forks, so that a line says which process wrote
 * it). The die_* helpers write the message as one line to stderr and exit 1.
 */
#ifndef ULOG_BENCHUTIL_H
#define ULOG_BENCHUTIL_H

#ifndef BENCH_NAME
#error "define BENCH_NAME (the program's name) before including benchutil.h"
#endif

#include <ulog.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- errors */

/* "BENCH_NAME: " or, with BENCH_TAG_PID, "BENCH_NAME[pid]: " into buf. */
static inline const char *bench_tag(char *buf, size_t size)
{
#ifdef BENCH_TAG_PID
    snprintf(buf, size, "%s[%d]: ", BENCH_NAME, (int)getpid());
#else
    snprintf(buf, size, "%s: ", BENCH_NAME);
#endif
    return buf;
}

/* "<tag>what path: strerror(errno)"; path may be NULL. */
static inline void die_sys(const char *what, const char *path)
{
    int err = errno;
    char tag[64];
    fprintf(stderr, "%s%s %s: %s\n", bench_tag(tag, sizeof tag), what, path ? path : "",
            strerror(err));
    exit(1);
}

/* "<tag>what: ULOG_E... (text)", then ": " and log's last error message when
 * log is not NULL and has one. */
static inline void die_ulog(ulog *log, int err, const char *what)
{
    char msg[512] = "";
    if (log)
        ulog_errmsg(log, msg, sizeof msg);
    char tag[64];
    fprintf(stderr, "%s%s: %s (%s)%s%s\n", bench_tag(tag, sizeof tag), what,
            ulog_errname(err), ulog_strerror(err), msg[0] ? ": " : "", msg);
    exit(1);
}

/* ---------------------------------------------------------------- time */

/* CLOCK_MONOTONIC in seconds. */
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps s seconds, again after a signal for what is left. */
static inline void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------- setup */

/* Whether group runs: `make bench ONLY=group` sets ONLY to pick one group
 * (of one program); unset or empty, every group runs. */
static inline bool wanted(const char *group)
{
    const char *only = getenv("ONLY");
    return !only || !*only || strcmp(only, group) == 0;
}

/* Fills buf with incompressible bytes, the same ones every run (xorshift64
 * from a fixed seed). */
static inline void fill_random(uint8_t *buf, size_t len)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

static inline int rm_rf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        die_sys("remove", path);
    return 0;
}

/* Removes path and everything below it, without following links; a path
 * that is not there is no error, anything else that fails is fatal. */
static inline void rm_rf(const char *path)
{
    if (nftw(path, rm_rf_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        die_sys("removing", path);
}

/* ---------------------------------------------------------------- output */

/* A rate as "1.23M", "45.6k" or "789". */
static inline void fmt_rate(char *out, size_t len, double v)
{
    if (v >= 1e6)
        snprintf(out, len, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, len, "%.1fk", v / 1e3);
    else
        snprintf(out, len, "%.0f", v);
}

/* qsort comparison of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* "load average <when>: 1.00 0.50 0.25" on stdout, if the system says. */
static inline void print_loadavg(const char *when)
{
    double la[3];
    if (getloadavg(la, 3) == 3)
        printf("load average %s: %.2f %.2f %.2f\n", when, la[0], la[1], la[2]);
}

#endif
