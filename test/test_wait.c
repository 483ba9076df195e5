/* test_wait.c -- the two ways ulog sleeps on a word in shared memory: the
 * futex (Linux) and polling with backoff (systems without one; compiled
 * everywhere so it is tested here too). Both must wake when the word
 * changes, honour the timeout, and cost next to no CPU while they wait. */
#include "testutil.h"

#include <pthread.h>

typedef void wait_fn(uint32_t *word, uint32_t seen, int64_t timeout_ns);

static wait_fn *const waits[] = { ulog__futex_wait_ns, ulog__poll_wait_ns };
static const char *const names[] = { "futex", "poll" };

struct bump {
    uint32_t *word;
    int64_t after_ns;
};

static void *bump_main(void *arg)
{
    struct bump *b = arg;
    struct timespec ts = { (time_t)(b->after_ns / 1000000000), (long)(b->after_ns % 1000000000) };
    nanosleep(&ts, NULL);
    __atomic_add_fetch(b->word, 1, __ATOMIC_SEQ_CST);
    ulog__futex_wake_all(b->word);
    return NULL;
}

static int64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

Test(wait, returns_at_once_when_the_word_moved)
{
    for (int i = 0; i < 2; i++) {
        uint32_t w = 5;
        int64_t t0 = mono_ns();
        waits[i](&w, 4, 5000000000LL);
        cr_assert_lt(mono_ns() - t0, 100000000LL, "%s waited on a word that had moved", names[i]);
    }
}

Test(wait, wakes_when_another_thread_changes_the_word)
{
    for (int i = 0; i < 2; i++) {
        /* After a long sleep (the poller's naps have grown to their
         * largest), the change must still be seen within a few naps. */
        uint32_t w = 0;
        struct bump b = { &w, 300000000LL };
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, bump_main, &b), 0);
        int64_t t0 = mono_ns();
        while (__atomic_load_n(&w, __ATOMIC_SEQ_CST) == 0 && mono_ns() - t0 < 5000000000LL)
            waits[i](&w, 0, -1 /* no limit: the bump must end it */);
        int64_t el = mono_ns() - t0;
        pthread_join(th, NULL);
        cr_assert_eq(w, 1u);
        cr_assert_geq(el, 290000000LL, "%s returned before the change: %lld ns", names[i],
                      (long long)el);
        cr_assert_lt(el, 300000000LL + 60000000LL, "%s noticed the change after %lld ns",
                     names[i], (long long)el);
    }
}

Test(wait, honours_the_timeout_and_stays_idle)
{
    for (int i = 0; i < 2; i++) {
        uint32_t w = 7;
        int64_t c0 = cpu_ns(), t0 = mono_ns();
        /* Spurious futex returns are allowed: loop like the library does. */
        while (mono_ns() - t0 < 1000000000LL)
            waits[i](&w, 7, 1000000000LL - (mono_ns() - t0));
        int64_t el = mono_ns() - t0, cpu = cpu_ns() - c0;
        cr_assert_geq(el, 1000000000LL);
        cr_assert_lt(el, 1100000000LL, "%s overslept: %lld ns", names[i], (long long)el);
        /* Under 1% of a core (ThreadSanitizer's own work gets 2%). */
#if defined(__SANITIZE_THREAD__)
        const int64_t budget = 20000000LL;
#else
        const int64_t budget = 10000000LL;
#endif
        cr_assert_lt(cpu, budget, "%s used %lld ns of CPU in a 1 s wait", names[i],
                     (long long)cpu);
    }
}

Test(wait, zero_timeout_does_not_sleep)
{
    for (int i = 0; i < 2; i++) {
        uint32_t w = 1;
        int64_t t0 = mono_ns();
        waits[i](&w, 1, 0);
        cr_assert_lt(mono_ns() - t0, 50000000LL, "%s slept with timeout 0", names[i]);
    }
}
