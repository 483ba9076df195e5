/* test_replicate.c -- the socket replication example (examples/replicate.c)
 * with many kills of either side: it exits 0 only when its Jepsen-style
 * counts (acknowledged records lost, records duplicated, offset gaps,
 * records or batches differing from the leader's) are all 0, the follower
 * caught up and a forged batch was refused. Run here with more kills than
 * `make check` gives the example, twice. */
#include "testutil.h"

#include <libgen.h>

static char dir[4096];
SCRATCH_SUITE(replicate, dir);

/* BUILD/examples/replicate, next to this program, BUILD/test/test_replicate. */
static void example_path(char *out, size_t n)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(len, 0);
    self[len] = '\0';
    snprintf(out, n, "%s/../examples/replicate", dirname(self));
    cr_assert_eq(access(out, X_OK), 0, "%s: build the examples first (make check does)", out);
}

static void run(int round, const char *kills)
{
    char exe[4200], sub[4200], out[4300];
    example_path(exe, sizeof exe);
    snprintf(sub, sizeof sub, "%s/run%d", dir, round);
    snprintf(out, sizeof out, "%s/run%d.out", dir, round);
    cr_assert_eq(mkdir(sub, 0750), 0);
    fflush(NULL);
    pid_t pid = quiet_fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execl(exe, exe, sub, kills, (char *)NULL);
        _exit(127);
    }
    int st;
    int64_t t0 = mono_ns();
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (mono_ns() - t0 > 150000000000LL) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cr_assert_fail("the example ran for more than 150 s");
        }
        sleep_ms(20);
    }
    char text[8192] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    cr_log_info("%s", text);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the example failed:\n%s", text);
    cr_assert_neq(strstr(text, "lost 0, duplicated 0, gaps 0, inconsistent 0, "
                               "batches not byte-identical 0"), NULL, "%s", text);
    cr_assert_neq(strstr(text, "a batch signed with another key: ULOG_EAUTH"), NULL, "%s", text);
}

Test(replicate, twenty_kills_twice, .timeout = 320)
{
    run(0, "20");
    run(1, "20");
}
