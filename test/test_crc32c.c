/* test_crc32c.c -- CRC-32C against RFC 3720 B.4, and the two paths
 * against each other. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f)
{
    uint8_t b[32];

    memset(b, 0, sizeof b);
    cr_expect_eq(f(0, b, 32), 0x8A9136AAu, "32 zeros");
    memset(b, 0xff, sizeof b);
    cr_expect_eq(f(0, b, 32), 0x62A8AB43u, "32 x 0xff");
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    cr_expect_eq(f(0, b, 32), 0x46DD794Eu, "0..31");
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    cr_expect_eq(f(0, b, 32), 0x113FDB5Cu, "31..0");
    cr_expect_eq(f(0, "123456789", 9), 0xE3069283u, "123456789");
    cr_expect_eq(f(0, NULL, 0), 0u, "empty");
    cr_expect_eq(f(0x12345678u, b, 0), 0x12345678u, "empty keeps the seed");
}

/* xorshift64*: reproducible data without libc's rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

Test(crc32c, sw_vectors)
{
    check_vectors(ulog__crc32c_sw);
}

Test(crc32c, hw_vectors)
{
    if (!ulog__crc32c_hw_available()) {
        cr_log_info("no CRC-32C instruction on this CPU: hw path skipped");
        return;
    }
    check_vectors(ulog__crc32c_hw);
}

Test(crc32c, dispatch_vectors)
{
    check_vectors(ulog__crc32c);
}

/* Every length from 0 to 300 at every alignment 0..15: both paths, one shot
 * and split at a random point, must agree. */
Test(crc32c, sw_hw_agree)
{
    static uint8_t buf[16 + 4096];
    bool hw = ulog__crc32c_hw_available();

    if (!hw)
        cr_log_info("no CRC-32C instruction on this CPU: comparing sw with itself");
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 300; len++) {
            const uint8_t *p = buf + align;
            uint32_t sw = ulog__crc32c_sw(0, p, len);
            size_t cut = len ? rnd() % (len + 1) : 0;
            uint32_t sw2 = ulog__crc32c_sw(ulog__crc32c_sw(0, p, cut), p + cut, len - cut);
            cr_assert_eq(sw, sw2, "sw chained, align %zu len %zu cut %zu", align, len, cut);
            if (hw) {
                uint32_t h1 = ulog__crc32c_hw(0, p, len);
                uint32_t h2 = ulog__crc32c_hw(ulog__crc32c_hw(0, p, cut), p + cut, len - cut);
                cr_assert_eq(sw, h1, "hw, align %zu len %zu", align, len);
                cr_assert_eq(sw, h2, "hw chained, align %zu len %zu cut %zu", align, len, cut);
            }
            cr_assert_eq(ulog__crc32c(0, p, len), sw);
        }
}

/* Random lengths up to 4 KiB at random offsets, chained over random pieces
 * and mixing the paths piece by piece. */
Test(crc32c, random_chained)
{
    static uint8_t buf[8192];
    bool hw = ulog__crc32c_hw_available();

    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    for (int iter = 0; iter < 2000; iter++) {
        size_t off = rnd() % 4096, len = rnd() % 4097;
        const uint8_t *p = buf + off;
        uint32_t whole = ulog__crc32c_sw(0, p, len);
        uint32_t c = 0;
        size_t done = 0;

        while (done < len) {
            size_t piece = 1 + rnd() % (len - done);
            c = (hw && (rnd() & 1)) ? ulog__crc32c_hw(c, p + done, piece)
                                    : ulog__crc32c_sw(c, p + done, piece);
            done += piece;
        }
        cr_assert_eq(c, whole, "off %zu len %zu", off, len);
        if (hw)
            cr_assert_eq(ulog__crc32c_hw(0, p, len), whole, "off %zu len %zu", off, len);
    }
}

/* The hardware path takes one chain, unaligned, below 128 bytes; from there
 * it aligns to 8 bytes and runs three chains over blocks of 3 x 2048,
 * 3 x 256 and 3 x 32 bytes, combining them. Lengths just around every
 * multiple of those chunk sizes, at every 8-byte alignment, must match the
 * table path. */
Test(crc32c, hw_block_thresholds)
{
    static const size_t chunks[] = { 96, 768, 6144 };
    static uint8_t buf[8 + 4 * 6144 + 64];
    bool hw = ulog__crc32c_hw_available();

    if (!hw) {
        cr_log_info("no CRC-32C instruction on this CPU: hw path skipped");
        return;
    }
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
        for (size_t k = 1; k <= 4; k++)
            for (size_t d = 0; d <= 18; d++) {
                size_t len = k * chunks[c] + d - 9;
                for (size_t align = 0; align < 8; align++) {
                    const uint8_t *p = buf + align;
                    uint32_t sw = ulog__crc32c_sw(0x5a5a5a5au, p, len);
                    cr_assert_eq(ulog__crc32c_hw(0x5a5a5a5au, p, len), sw,
                                 "len %zu align %zu", len, align);
                }
            }
    /* Every combination of the three chunk sizes plus a tail. */
    for (size_t big = 0; big <= 2; big++)
        for (size_t mid = 0; mid <= 7; mid++)
            for (size_t small = 0; small <= 7; small++)
                for (size_t tail = 0; tail < 96; tail += 13) {
                    size_t len = big * 6144 + mid * 768 + small * 96 + tail;
                    uint32_t sw = ulog__crc32c_sw(0, buf + 3, len);
                    cr_assert_eq(ulog__crc32c_hw(0, buf + 3, len), sw, "len %zu", len);
                }
}

/* Long buffers, including runs of zeros and ones (where a wrong shift
 * constant could cancel out), split at random points. */
Test(crc32c, hw_long_buffers)
{
    size_t n = (1 << 20) + 77;
    uint8_t *buf = malloc(n);
    bool hw = ulog__crc32c_hw_available();

    cr_assert_not_null(buf);
    for (int pattern = 0; pattern < 3; pattern++) {
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern == 0 ? 0 : pattern == 1 ? 0xff : (uint8_t)rnd();
        for (int iter = 0; iter < 8; iter++) {
            size_t off = rnd() % 64, len = n - off - rnd() % 4096;
            uint32_t sw = ulog__crc32c_sw(0, buf + off, len);
            size_t cut = rnd() % (len + 1);
            cr_assert_eq(ulog__crc32c(0, buf + off, len), sw, "pattern %d len %zu", pattern, len);
            cr_assert_eq(ulog__crc32c(ulog__crc32c(0, buf + off, cut), buf + off + cut, len - cut),
                         sw, "pattern %d len %zu cut %zu", pattern, len, cut);
            if (hw)
                cr_assert_eq(ulog__crc32c_hw(0, buf + off, len), sw);
        }
    }
    /* 16 KiB of zeros (chunks of every size): a known answer computed
     * bit by bit, independently of both table and instruction. */
    memset(buf, 0, n);
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < 16384; i++)
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    cr_assert_eq(ulog__crc32c(0, buf, 16384), ~c, "16 KiB of zeros");
    free(buf);
}

/* ulog__crc32c() folds 256 bytes a step with 512-bit carry-less multiplies
 * from 256 bytes on when the CPU can (ulog__crc32c_hw() never does): lengths
 * around multiples of 256 at every alignment to a cache line, one shot and
 * chained, against the table path. */
Test(crc32c, dispatch_fold_thresholds)
{
    static uint8_t buf[64 + 8 * 256 + 64];

    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    for (size_t k = 1; k <= 8; k++)
        for (size_t d = 0; d <= 20; d++) {
            size_t len = k * 256 + d - 10;
            for (size_t align = 0; align < 64; align++) {
                const uint8_t *p = buf + align;
                uint32_t sw = ulog__crc32c_sw(0xdeadbeefu, p, len);
                size_t cut = rnd() % (len + 1);
                cr_assert_eq(ulog__crc32c(0xdeadbeefu, p, len), sw, "len %zu align %zu", len, align);
                cr_assert_eq(ulog__crc32c(ulog__crc32c(0xdeadbeefu, p, cut), p + cut, len - cut), sw,
                             "len %zu align %zu cut %zu", len, align, cut);
            }
        }
}
