/*
 * address-book.c -- a service keeps its own copy of another service's data,
 * fed by the log, and never calls that service.
 *
 * The idea (Kafka's decoupling through a changelog topic): the address
 * service owns the addresses and publishes every change to the topic
 * "addresses": key = person id, value = the address, and a null value (a
 * tombstone) when a person is removed. The greeting-card service needs
 * addresses too, but instead of asking the address service for each card it
 * keeps a local copy, built by replaying the topic and then kept current by
 * following it. The address service may be down, slow or redeployed: the
 * card service still has every address, and the address service does not
 * even know it exists.
 *
 * The card service reads with a consumer group, "greeting-cards". On its
 * first start the group has no committed offset, so it replays the topic
 * from the beginning (auto.offset.reset=earliest). It saves its copy to a
 * file, then commits; after a restart it loads the file and resumes from
 * the committed offsets, reading only what it missed. If it stops between
 * saving and committing, it reads a few changes again after the restart:
 * harmless, as applying "person-3 lives at X" twice gives the same copy.
 *
 * The run: this process is the address service; the card service is a
 * child process (fork, then its own ulog_open: a child must not use its
 * parent's handle). The card service starts and rebuilds its copy; the
 * address service changes addresses and the card service picks them up live;
 * the card service stops, more changes happen, it restarts and resumes where
 * its group left off. The program checks that the copy equals the address
 * service's own table. Last, years pass: thousands of moves later the topic
 * is compacted (it is created with cleanup.policy=compact, as Kafka's
 * changelog topics are, so that it keeps every person's latest address
 * however long it runs), and a new service, address labels, builds its own
 * copy from it, reading a small fraction of the history. The program exits
 * 1 if a copy is wrong, if the compacted log still holds more than a quarter
 * of the history, if anything fails, or if a service does not answer within
 * 30 s.
 *
 * Usage: address-book DIR    (a new, empty directory; the card service keeps
 *                             its copy in DIR/greeting-cards.copy, where a
 *                             real one would use a directory of its own)
 * Build against an installed ulog:  cc address-book.c $(pkg-config --cflags --libs ulog)
 */
#include <ulog.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC       "addresses"
#define PARTITIONS  2
#define HISTORY     3000        /* moves in the last act, before compaction */
#define DEADLINE_S  30
#define MAX_PEOPLE  32

/* ------------------------------------------------------------ an address book */

/* Person id -> address, sorted by id. Both services use it: the address
 * service for its source of truth, the card service for its copy. */
typedef struct book {
    int  n;
    char id[MAX_PEOPLE][16];
    char addr[MAX_PEOPLE][96];
} book;

/* Sets (addr not NULL) or removes (addr NULL) a person's address. */
static int book_set(book *b, const char *id, size_t id_len, const char *addr, size_t addr_len)
{
    char key[sizeof b->id[0]];
    if (id_len >= sizeof key || addr_len >= sizeof b->addr[0])
        return -1;
    memcpy(key, id, id_len);
    key[id_len] = '\0';
    int i = 0;
    while (i < b->n && strcmp(b->id[i], key) < 0)
        i++;
    int found = i < b->n && strcmp(b->id[i], key) == 0;
    if (!addr) {                                    /* a tombstone */
        if (found) {
            b->n--;
            memmove(b->id[i], b->id[i + 1], (size_t)(b->n - i) * sizeof b->id[0]);
            memmove(b->addr[i], b->addr[i + 1], (size_t)(b->n - i) * sizeof b->addr[0]);
        }
        return 0;
    }
    if (!found) {
        if (b->n == MAX_PEOPLE)
            return -1;
        memmove(b->id[i + 1], b->id[i], (size_t)(b->n - i) * sizeof b->id[0]);
        memmove(b->addr[i + 1], b->addr[i], (size_t)(b->n - i) * sizeof b->addr[0]);
        strcpy(b->id[i], key);
        b->n++;
    }
    memcpy(b->addr[i], addr, addr_len);
    b->addr[i][addr_len] = '\0';
    return 0;
}

static int book_equal(const book *a, const book *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->id[i], b->id[i]) != 0 || strcmp(a->addr[i], b->addr[i]) != 0)
            return 0;
    return 1;
}

/* The card service's copy on disk: one "id<TAB>address" line per person.
 * Saved to a temporary file and renamed over the old one, so a crash leaves
 * the old copy or the new one, never half of one. */
static int book_save(const book *b, const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    for (int i = 0; i < b->n; i++)
        fprintf(f, "%s\t%s\n", b->id[i], b->addr[i]);
    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0)
        return -1;
    return 0;
}

/* Loads a saved copy; no file yet means an empty book. */
static int book_load(book *b, const char *path)
{
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[256];
    int bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
        bad = !tab || !nl || book_set(b, line, (size_t)(tab - line), tab + 1,
                                      (size_t)(nl - tab - 1)) != 0;
    }
    bad |= ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------ helpers */

static const char *g_dir;
static const char *g_group = "greeting-cards";  /* the card service's group */
static char g_copy_path[4096];                  /* and its copy */

static int fail(ulog *log, int err, const char *who, const char *what)
{
    char detail[512];
    ulog_errmsg(log, detail, sizeof detail);    /* log NULL: why ulog_open() failed */
    fprintf(stderr, "address-book: %s: %s failed: %s (%s)%s%s\n", who, what, ulog_errname(err),
            ulog_strerror(err), detail[0] ? ": " : "", detail);
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Waits for fd to become readable, at most until deadline (now_ms()). */
static int wait_readable(int fd, double deadline)
{
    for (;;) {
        int left = (int)(deadline - now_ms());
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll(&pfd, 1, left > 0 ? left : 0);
        if (rc > 0)
            return 0;
        if (rc == 0 || errno != EINTR)
            return -1;
    }
}

/* What the card service tells the address service's process (the demo's
 * driver, not part of the design): it is ready, or it applied a live change. */
typedef struct note {
    int  kind;                  /* 'r' ready (count: changes read to catch up), 'c' change */
    int  count;
} note;

/* ------------------------------------------------------------ the card service */

/* Applies one change of the topic to the copy. */
static int apply(book *copy, const ulog_msg *m)
{
    if (m->key && book_set(copy, m->key, m->key_len, m->value, m->value_len) == 0)
        return 0;
    fprintf(stderr, "address-book: cards: bad record at partition %d offset %lld\n",
            (int)m->partition, (long long)m->offset);
    return -1;
}

/* Saves the copy, then commits the group's positions: the commit says
 * "the saved copy includes everything before these offsets". */
static int save_and_commit(ulog *log, ulog_sub *sub, const book *copy)
{
    if (book_save(copy, g_copy_path) != 0) {
        perror("address-book: cards: saving the copy");
        return 1;
    }
    int err = ulog_commit(sub);
    return err ? fail(log, err, "cards", "ulog_commit") : 0;
}

static int send_note(int fd, char kind, int count)
{
    note n = { kind, count };
    return write(fd, &n, sizeof n) == (ssize_t)sizeof n ? 0 : 1;
}

/* The greeting-card service: rebuild or resume, then follow until the
 * driver writes to cmd_fd. */
static int card_service(int cmd_fd, int note_fd)
{
    ulog *log;
    int err = ulog_open(g_dir, NULL, &log);
    if (err)
        return fail(NULL, err, "cards", "ulog_open");
    int rc = 1;
    ulog_sub *sub = NULL;
    book copy;
    if (book_load(&copy, g_copy_path) != 0) {
        fprintf(stderr, "address-book: cards: cannot read %s\n", g_copy_path);
        goto out;
    }
    int loaded = copy.n;

    /* With no committed offset (first start), begin at the oldest record. */
    ulog_config *cfg = ulog_config_new();
    char eb[256] = "";
    if (!cfg) {
        fail(log, ULOG_ENOMEM, "cards", "ulog_config_new");
        goto out;
    }
    if ((err = ulog_config_set(cfg, "auto.offset.reset", "earliest", eb, sizeof eb)) != 0) {
        fprintf(stderr, "address-book: cards: %s\n", eb);
        ulog_config_free(cfg);
        goto out;
    }
    err = ulog_subscribe(log, TOPIC, g_group, cfg, &sub);
    ulog_config_free(cfg);
    if (err) {
        fail(log, err, "cards", "ulog_subscribe");
        goto out;
    }
    char where[128] = "";
    for (int32_t p = 0; p < PARTITIONS; p++) {
        int64_t pos;
        if ((err = ulog_position(sub, p, &pos)) != 0) {
            fail(log, err, "cards", "ulog_position");
            goto out;
        }
        size_t used = strlen(where);
        snprintf(where + used, sizeof where - used, " p%d@%lld", (int)p, (long long)pos);
    }

    /* Catch up: everything up to now, without waiting. */
    int caught_up = 0;
    ulog_msg m;
    while ((err = ulog_poll(sub, 0, &m)) == 0) {
        if (apply(&copy, &m) != 0)
            goto out;
        caught_up++;
    }
    if (err != ULOG_ETIMEDOUT) {
        fail(log, err, "cards", "ulog_poll");
        goto out;
    }
    if (save_and_commit(log, sub, &copy) != 0)
        goto out;
    printf("  [cards]   copy on disk: %d addresses; read from%s: %d changes; copy now: "
           "%d addresses\n", loaded, where, caught_up, copy.n);
    if (send_note(note_fd, 'r', caught_up) != 0)
        goto out;

    /* Follow: apply each change as it comes. Stop when the driver says so,
     * once caught up. */
    for (;;) {
        err = ulog_poll(sub, 50, &m);
        if (err == ULOG_ETIMEDOUT) {
            struct pollfd pfd = { .fd = cmd_fd, .events = POLLIN };
            if (poll(&pfd, 1, 0) > 0)
                break;
            continue;
        }
        if (err) {
            fail(log, err, "cards", "ulog_poll");
            goto out;
        }
        if (apply(&copy, &m) != 0 || save_and_commit(log, sub, &copy) != 0)
            goto out;
        printf("  [cards]   live: %.*s %s%.*s\n", (int)m.key_len, (const char *)m.key,
               m.value ? "-> " : "removed", (int)m.value_len, m.value ? (const char *)m.value : "");
        if (send_note(note_fd, 'c', 1) != 0)
            goto out;
    }
    printf("  [cards]   stopping\n");
    rc = 0;
out:
    ulog_sub_close(sub);
    ulog_close(log);
    return rc;
}

/* ------------------------------------------------------------ the address service */

static ulog *g_log;
static book  g_truth;           /* the address service's own table */

/* Changes an address (addr NULL: removes the person) and publishes it. */
static int publish(const char *id, const char *addr, int quiet)
{
    ulog_record r = {
        .key = id, .key_len = strlen(id),
        .value = addr, .value_len = addr ? strlen(addr) : 0,   /* NULL: a tombstone */
        .timestamp = ULOG_TIMESTAMP_NOW,
        .partition = ULOG_PARTITION_ANY,    /* by key: one person's changes stay in order */
    };
    int err = ulog_append(g_log, TOPIC, &r, 1);
    if (err)
        return fail(g_log, err, "address", "ulog_append");
    if (book_set(&g_truth, id, strlen(id), addr, addr ? strlen(addr) : 0) != 0)
        return 1;
    if (!quiet)
        printf("  [address] %s %s%s\n", id, addr ? "-> " : "removed", addr ? addr : "");
    return 0;
}

typedef struct card_proc {
    pid_t pid;
    int   cmd_fd, note_fd;      /* our ends of its two pipes */
} card_proc;

static int card_start(card_proc *c)
{
    int cmd[2], notes[2];
    if (pipe(cmd) != 0)
        return -1;
    if (pipe(notes) != 0) {
        close(cmd[0]);
        close(cmd[1]);
        return -1;
    }
    fflush(NULL);
    c->pid = fork();
    if (c->pid == 0) {                      /* the card service's process */
        close(cmd[1]);
        close(notes[0]);
        alarm(DEADLINE_S);                  /* never outlive the demo */
        int rc = card_service(cmd[0], notes[1]);
        fflush(NULL);
        _exit(rc);
    }
    close(cmd[0]);
    close(notes[1]);
    c->cmd_fd = cmd[1];
    c->note_fd = notes[0];
    if (c->pid < 0) {
        close(c->cmd_fd);
        close(c->note_fd);
        return -1;
    }
    return 0;
}

/* Waits for the card service's next note; it must be of the given kind. */
static int card_expect(card_proc *c, char kind, int *count)
{
    note n;
    if (wait_readable(c->note_fd, now_ms() + DEADLINE_S * 1000.0) != 0 ||
        read(c->note_fd, &n, sizeof n) != (ssize_t)sizeof n || n.kind != kind) {
        fprintf(stderr, "address-book: no word from the card service\n");
        return -1;
    }
    if (count)
        *count = n.count;
    return 0;
}

/* Tells the card service to stop and waits for it; kills it on failure. */
static int card_stop(card_proc *c, int kill_it)
{
    int st = 0, ok;
    if (kill_it)
        kill(c->pid, SIGKILL);
    else if (write(c->cmd_fd, "q", 1) != 1)
        kill(c->pid, SIGKILL);
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(c->cmd_fd);
    close(c->note_fd);
    ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok && !kill_it)
        fprintf(stderr, "address-book: the card service failed\n");
    return ok ? 0 : -1;
}

/* Prints the group's committed offsets (ulog_group_describe). */
static int show_group(void)
{
    ulog_group_desc *d;
    int err = ulog_group_describe(g_log, g_group, &d);
    if (err)
        return fail(g_log, err, "address", "ulog_group_describe");
    printf("  group \"%s\" committed:", g_group);
    for (size_t i = 0; i < ulog_group_desc_count(d); i++) {
        ulog_group_lag g = ULOG_GROUP_LAG_INIT;
        if ((err = ulog_group_desc_get(d, i, &g)) != 0) {
            ulog_group_desc_free(d);
            return fail(g_log, err, "address", "ulog_group_desc_get");
        }
        printf(" p%d@%lld", (int)g.partition, (long long)g.committed);
    }
    printf("\n");
    ulog_group_desc_free(d);
    return 0;
}

/* Bytes of the topic's segment files, all partitions; -1 on failure. */
static int64_t topic_bytes(void)
{
    int64_t sum = 0;
    for (int32_t p = 0; p < PARTITIONS; p++) {
        ulog_partition_info pi = ULOG_PARTITION_INFO_INIT;
        int err = ulog_partition_describe(g_log, TOPIC, p, &pi);
        if (err) {
            fail(g_log, err, "address", "ulog_partition_describe");
            return -1;
        }
        sum += pi.bytes;
    }
    return sum;
}

/* Years of moves: HISTORY changes of address among the people in the
 * book, published 100 to an append. */
static int publish_history(void)
{
    static const char *const streets[] = { "Elm Street", "Oak Avenue", "Mill Lane",
                                           "Station Road", "Church Street", "Park Road" };
    for (int done = 0; done < HISTORY;) {
        ulog_record r[100];
        char id[100][16], addr[100][96];
        int n = 0;
        for (; n < 100 && done < HISTORY; n++, done++) {
            int who = done % g_truth.n;
            const char *name = g_truth.addr[who], *comma = strchr(name, ',');
            snprintf(id[n], sizeof id[n], "%s", g_truth.id[who]);
            snprintf(addr[n], sizeof addr[n], "%.*s, %d %s", (int)(comma ? comma - name : 0),
                     name, 1 + done / 7, streets[done % 6]);
            r[n] = (ulog_record){ .key = id[n], .key_len = strlen(id[n]), .value = addr[n],
                                  .value_len = strlen(addr[n]),
                                  .timestamp = ULOG_TIMESTAMP_NOW,
                                  .partition = ULOG_PARTITION_ANY };
        }
        int err = ulog_append(g_log, TOPIC, r, (size_t)n);
        if (err)
            return fail(g_log, err, "address", "ulog_append");
        for (int i = 0; i < n; i++)
            if (book_set(&g_truth, id[i], strlen(id[i]), addr[i], strlen(addr[i])) != 0)
                return 1;
    }
    return 0;
}

/* The last act: the topic is compacted (cleanup.policy=compact), so a
 * service that starts years later reads each person's latest address, not
 * the whole history. */
static int years_later(void)
{
    printf("\n== Years later: %d more moves; compaction keeps each person's latest "
           "address\n", HISTORY);
    if (publish_history() != 0)
        return 1;
    int64_t before = topic_bytes();
    int err = ulog_clean(g_log, TOPIC, ULOG_CLEAN_COMPACT, NULL, NULL);
    if (err)
        return fail(g_log, err, "address", "ulog_clean");
    int64_t after = topic_bytes();
    if (before < 0 || after < 0)
        return 1;
    printf("  [address] the topic: %lld bytes before compaction, %lld after\n",
           (long long)before, (long long)after);

    printf("\n== A new service, address labels, builds its copy from the compacted log\n");
    g_group = "address-labels";
    snprintf(g_copy_path, sizeof g_copy_path, "%s/address-labels.copy", g_dir);
    card_proc labels;
    int n;
    if (card_start(&labels) != 0) {
        perror("address-book: starting the label service");
        return 1;
    }
    if (card_expect(&labels, 'r', &n) != 0) {
        card_stop(&labels, 1);
        return 1;
    }
    if (card_stop(&labels, 0) != 0)
        return 1;
    int changes = 7 + 4 + 1 + HISTORY;
    printf("  [labels]  rebuilt from %d records; the history holds %d changes\n", n, changes);
    book copy;
    if (book_load(&copy, g_copy_path) != 0 || !book_equal(&copy, &g_truth)) {
        fprintf(stderr, "address-book: the label service's copy differs from the source of "
                        "truth\n");
        return 1;
    }
    if (n * 4 > changes) {
        fprintf(stderr, "address-book: the compacted log still held %d of %d changes\n", n,
                changes);
        return 1;
    }
    printf("\ndone: the label service's copy (%d addresses) equals the table too\n", copy.n);
    return 0;
}

/* The demo, step by step; returns 0 when the copy ends up right. */
static int run(void)
{
    card_proc card;
    int n;

    printf("\n== The address service publishes its address book\n");
    if (publish("person-1", "Ada Lovelace, 12 St James's Square, London", 1) ||
        publish("person-2", "Alan Turing, 2 Adlington Road, Wilmslow", 1) ||
        publish("person-3", "Grace Hopper, 45 Water Street, Arlington", 1) ||
        publish("person-4", "Edsger Dijkstra, Plataanstraat 5, Nuenen", 1) ||
        publish("person-5", "Barbara Liskov, 8 Brattle Street, Cambridge", 1) ||
        publish("person-2", "Alan Turing, Hollymeade, Wilmslow", 1) ||
        publish("person-4", NULL, 1))
        return 1;
    printf("  [address] 7 changes: 5 people, then person-2 moved and person-4 was "
           "removed (a tombstone)\n");

    printf("\n== The card service starts and rebuilds its copy from the log\n");
    if (card_start(&card) != 0) {
        perror("address-book: starting the card service");
        return 1;
    }
    if (card_expect(&card, 'r', &n) != 0 || n != 7)
        goto killed;

    printf("\n== The address service changes addresses; the card service follows live\n");
    if (publish("person-3", "Grace Hopper, 1 Navy Yard, Washington", 0) ||
        card_expect(&card, 'c', NULL) != 0 ||
        publish("person-6", "Donald Knuth, 1 Sand Hill Road, Stanford", 0) ||
        card_expect(&card, 'c', NULL) != 0)
        goto killed;

    printf("\n== The card service stops; changes go on without it\n");
    if (card_stop(&card, 0) != 0 || show_group() != 0)
        return 1;
    if (publish("person-1", "Ada Lovelace, Ockham Park, Surrey", 0) ||
        publish("person-5", NULL, 0))
        return 1;

    printf("\n== The card service restarts: its file, then the group's committed offsets\n");
    if (card_start(&card) != 0) {
        perror("address-book: starting the card service");
        return 1;
    }
    if (card_expect(&card, 'r', &n) != 0)
        goto killed;
    if (n != 2) {
        fprintf(stderr, "address-book: the card service read %d changes after its restart, "
                        "not the 2 it missed\n", n);
        goto killed;
    }
    if (publish("person-2", "Alan Turing, 78 High Street, Hampton", 0) ||
        card_expect(&card, 'c', NULL) != 0)
        goto killed;
    if (card_stop(&card, 0) != 0)
        return 1;

    printf("\n== Check: the card service's copy against the address service's table\n");
    book copy;
    if (book_load(&copy, g_copy_path) != 0) {
        fprintf(stderr, "address-book: cannot read %s\n", g_copy_path);
        return 1;
    }
    for (int i = 0; i < copy.n; i++)
        printf("  %s  %s\n", copy.id[i], copy.addr[i]);
    if (!book_equal(&copy, &g_truth)) {
        fprintf(stderr, "address-book: the copy differs from the source of truth\n");
        return 1;
    }
    printf("\nthe copy (%d addresses) equals the address service's table\n", copy.n);
    return years_later();

killed:
    card_stop(&card, 1);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: address-book DIR\n");
        return 2;
    }
    g_dir = argv[1];
    if (snprintf(g_copy_path, sizeof g_copy_path, "%s/greeting-cards.copy", g_dir) >=
        (int)sizeof g_copy_path - 4) {                /* room for ".tmp" */
        fprintf(stderr, "address-book: directory name too long\n");
        return 2;
    }
    /* Line by line, so the two processes' lines come out in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ulog %s address-book, log directory %s\n", ulog_version_string(), g_dir);

    int err = ulog_open(g_dir, NULL, &g_log);
    if (err)
        return fail(NULL, err, "address", "ulog_open");
    /* A changelog: compacted, as Kafka's changelog topics are, so that it
     * keeps every person's latest address however long it runs. Small
     * segments, so that the demo's history fills several. */
    ulog_config *tc = ulog_config_new();
    char eb[256] = "";
    if (!tc || ulog_config_set(tc, "cleanup.policy", "compact", eb, sizeof eb) != 0 ||
        ulog_config_set(tc, "segment.bytes", "8192", eb, sizeof eb) != 0) {
        fprintf(stderr, "address-book: topic config: %s\n", tc ? eb : "out of memory");
        ulog_config_free(tc);
        ulog_close(g_log);
        return 1;
    }
    err = ulog_topic_create(g_log, TOPIC, PARTITIONS, tc);
    ulog_config_free(tc);
    if (err == ULOG_EEXIST)
        fprintf(stderr, "address-book: %s already has a topic \"%s\"; pass a new directory\n",
                g_dir, TOPIC);
    int rc = err ? fail(g_log, err, "address", "ulog_topic_create") : run();
    ulog_close(g_log);
    return rc;
}
