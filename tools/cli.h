/*
 * cli.h -- what the files of the `ulog` command-line tool share: error
 * reporting, option parsing helpers, a growable byte buffer, JSON, tables.
 *
 * Exit statuses: 0 success, 1 failure (the log said no, or found a
 * problem), 2 usage error. Every command returns one of them.
 */
#ifndef ULOG_CLI_H
#define ULOG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <ulog.h>

#define EXIT_USAGE 2

/* The log root (-d DIR, else $ULOG_DIR; NULL: not given) and -v. */
extern const char *cli_dir;
extern int cli_verbose;

/* -k TOPIC:ID:FILE: a key every handle cli_open() opens is given. FILE holds
 * the ULOG_KEY_BYTES bytes, raw or as hex (a newline after either is fine).
 * Returns 0, or the exit status of a bad spec or file (reported). */
int cli_add_key(const char *spec);

/* "ulog: <context>: <strerror> (<ERRNAME>: <detail>)" on stderr; returns 1.
 * The detail is ulog_errmsg(log, ...): log NULL gives the thread's last. */
int cli_fail(ulog *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "ulog: <message>" on stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "ulog <cmd>: <message>" and a pointer to --help on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reports the option getopt_long() just refused; c is what it returned
 * ('?' or ':'; option strings start with ':'). Returns 2. */
int cli_bad_option(const char *cmd, int c, char **argv);
/* Prints `usage` on stdout (for --help) and returns 0. */
int cli_help(const char *usage);

/* Opens the log root. `create`: a missing root is made (topics create);
 * otherwise it must already be a log root, so that a mistyped -d never
 * leaves a new, empty log behind. Returns 0, or the exit status after
 * reporting the failure. */
int cli_open(ulog **out, bool create);

/* Parses a whole decimal integer in [min, max]; false on anything else. */
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Milliseconds since the epoch, and a monotonic clock in nanoseconds. */
int64_t cli_now_ms(void);
uint64_t cli_mono_ns(void);
/* "2026-11-22T07:40:01.123Z" (UTC) into buf (at least 32 bytes). */
void cli_format_time(int64_t ms, char *buf, size_t len);

/* A growable byte buffer. Exits the process when out of memory: the tool
 * has nothing useful to do without it. */
typedef struct cli_buf {
    char  *p;
    size_t len, cap;
} cli_buf;
void cli_buf_reserve(cli_buf *b, size_t more);
void cli_buf_add(cli_buf *b, const void *p, size_t n);
void cli_buf_free(cli_buf *b);
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);

/* A table printed with aligned columns: add the header row first. */
typedef struct cli_table {
    char  **cells;
    size_t  ncells, cap, ncols;
} cli_table;
void cli_table_init(cli_table *t, size_t ncols);
void cli_table_add(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_table_print(cli_table *t, FILE *f, const char *indent);   /* and frees it */

/* ---------------------------------------------------------------- json.c */

/* Writes bytes as a JSON string (quotes included): valid UTF-8 as it is,
 * control characters escaped, and every byte that is not part of valid
 * UTF-8 as \u00XX, which json_string() reads back as that single byte. */
void json_write_string(FILE *f, const void *p, size_t n);

/* A strict reader over one JSON text held in memory. On failure the
 * functions return false and leave a message in err. */
typedef struct json_reader {
    const char *p, *end;
    char        err[128];
} json_reader;
void json_init(json_reader *j, const void *p, size_t n);
/* Skips white space; the next character, or 0 at the end. */
char json_peek(json_reader *j);
/* Consumes `c` (after white space) or fails. */
bool json_expect(json_reader *j, char c);
/* Consumes the literal `null` if it comes next. */
bool json_null(json_reader *j);
/* Decodes a string, appending its bytes to out. \u0000-\u00ff stand for one
 * byte each (so that json_write_string output round-trips), other code
 * points (surrogate pairs joined) become UTF-8. */
bool json_string(json_reader *j, cli_buf *out);
/* An integer (no fraction, no exponent) within int64. */
bool json_int(json_reader *j, int64_t *out);
/* Only white space is left. */
bool json_end(json_reader *j);

/* ---------------------------------------------------------------- commands */

int cmd_topics(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_groups(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_perf(int argc, char **argv);
int cmd_mirror(int argc, char **argv);

/* Looks `name` up in a NULL-terminated list of subcommands; -1 if absent. */
int cli_subcommand(const char *name, const char *const *names);

#endif /* ULOG_CLI_H */
