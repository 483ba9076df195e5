/*
 * crc32c.c -- CRC-32C (Castagnoli), the checksum of Kafka RecordBatch v2.
 *
 * Reflected polynomial 0x82F63B78, initial value ~0, final xor ~0 (RFC 3720
 * B.4). The public value of one call is the seed of the next, so a buffer may
 * be checksummed in pieces.
 *
 * Three paths, same result:
 *   - x86_64 with SSE4.2: the crc32 instruction, 8 bytes at a time, chosen at
 *     run time because distribution builds target the baseline ISA.
 *   - little-endian AArch64 built with the CRC extension (__ARM_FEATURE_CRC32):
 *     the crc32c instructions; the compiler flag already guarantees the CPU
 *     has them.
 *   - everywhere else: slicing-by-8 tables (8 KiB), built once on first use.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

/* ---------------------------------------------------------------- portable */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_tab_once = PTHREAD_ONCE_INIT;

/* crc_tab[0] is the classic byte-at-a-time table; crc_tab[k][b] is the CRC of
 * byte b followed by k zero bytes, so eight table lookups fold in eight bytes
 * at once. */
static void crc_tab_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_tab[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++) {
            uint32_t c = crc_tab[k - 1][b];
            crc_tab[k][b] = (c >> 8) ^ crc_tab[0][c & 0xff];
        }
}

/* Little-endian load: the reflected CRC consumes the lowest byte first, on
 * any host byte order. Compilers turn this into one load on x86 and ARM. */
static inline uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0]       | (uint64_t)p[1] << 8  |
           (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

uint32_t ulog__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    pthread_once(&crc_tab_once, crc_tab_init);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w = load_le64(p) ^ c;
        c = crc_tab[7][w & 0xff]         ^ crc_tab[6][(w >> 8) & 0xff]  ^
            crc_tab[5][(w >> 16) & 0xff] ^ crc_tab[4][(w >> 24) & 0xff] ^
            crc_tab[3][(w >> 32) & 0xff] ^ crc_tab[2][(w >> 40) & 0xff] ^
            crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
    }
    while (len--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

/* ---------------------------------------------------------------- hardware */

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
uint32_t ulog__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;

    /* Align so the 8-byte loads never straddle a cache line. */
    for (; len && ((uintptr_t)p & 7); len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/* __builtin_cpu_supports() is not free; ask once. A race only makes two
 * threads compute the same answer. */
bool ulog__crc32c_hw_available(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32) && \
      __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_acle.h>

uint32_t ulog__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    for (; len && ((uintptr_t)p & 7); len--)
        c = __crc32cb(c, *p++);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __crc32cd(c, w);
    }
    while (len--)
        c = __crc32cb(c, *p++);
    return ~c;
}

bool ulog__crc32c_hw_available(void)
{
    return true;
}

#else

uint32_t ulog__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return ulog__crc32c_sw(crc, buf, len);
}

bool ulog__crc32c_hw_available(void)
{
    return false;
}

#endif

uint32_t ulog__crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (ulog__crc32c_hw_available())
        return ulog__crc32c_hw(crc, buf, len);
    return ulog__crc32c_sw(crc, buf, len);
}
