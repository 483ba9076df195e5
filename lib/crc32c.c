/*
 * crc32c.c -- CRC-32C (Castagnoli), the checksum of Kafka RecordBatch v2.
 *
 * Reflected polynomial 0x82F63B78, initial value ~0, final xor ~0 (RFC 3720
 * B.4). The public value of one call is the seed of the next, so a buffer may
 * be checksummed in pieces.
 *
 * Three paths, same result:
 *   - x86_64 with SSE4.2 (ulog__crc32c_hw): the crc32 instruction, 8 bytes at
 *     a time, chosen at run time because distribution builds target the
 *     baseline ISA. From 128 bytes on, and when the CPU has PCLMULQDQ (all
 *     SSE4.2 CPUs but the first, Nehalem), three independent chains over
 *     adjacent blocks, joined with carry-less multiplies: about three times
 *     the single chain, which waits out the instruction's latency (see
 *     crc_long()). From 256 bytes on, CPUs with AVX-512 and VPCLMULQDQ
 *     (Ice Lake, Zen 4 and later) fold 256 bytes a step with 512-bit
 *     carry-less multiplies instead, about four times faster again (see
 *     crc_wide()); ulog__crc32c() takes that path, ulog__crc32c_hw() never,
 *     so that the tests reach both.
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
#include <immintrin.h>

/* What the CPU has, asked once: __builtin_cpu_supports() is not free. A race
 * only makes two threads compute the same answer. */
enum { CPU_KNOWN = 1, CPU_SSE42 = 2, CPU_PCLMUL = 4, CPU_WIDE = 8 };

static int cpu_features(void)
{
    static int cached;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        __builtin_cpu_init();
        v = CPU_KNOWN;
        if (__builtin_cpu_supports("sse4.2"))
            v |= CPU_SSE42;
        if (__builtin_cpu_supports("pclmul"))
            v |= CPU_PCLMUL;
        /* The OS saving the zmm registers is part of what avx512f means
         * here (libgcc and compiler-rt check XCR0). */
        if ((v & CPU_SSE42) && (v & CPU_PCLMUL) && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("vpclmulqdq"))
            v |= CPU_WIDE;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* One dependency chain: the crc32 instruction has a latency of 3 cycles and
 * a throughput of 1, so this runs at a third of what the unit can do. Works
 * on the raw register (no pre/post inversion). */
__attribute__((target("sse4.2")))
static inline uint64_t crc_1way(uint64_t c, const uint8_t *p, size_t len)
{
    for (; len >= 8; p += 8, len -= 8)
        c = _mm_crc32_u64(c, load64(p));
    if (len & 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = _mm_crc32_u32((uint32_t)c, w);
        p += 4;
    }
    if (len & 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        c = _mm_crc32_u16((uint32_t)c, w);
        p += 2;
    }
    if (len & 1)
        c = _mm_crc32_u8((uint32_t)c, *p);
    return c;
}

/*
 * Three chains over three adjacent blocks A|B|C of n bytes each, then one
 * CRC. The raw register is linear: crc(r, A|B|C) = shift(crc(r, A), 2n) ^
 * shift(crc(0, B), n) ^ crc(0, C), where shift(r, n) = r * x^(8n) mod P is
 * what n zero bytes do to a register.
 *
 * The shift is a carry-less multiply and a reduction. For reflected 32-bit
 * a and k, clmul(a, k) read as a 64-bit reflected word is x * a(x) * k(x),
 * and crc32_u64(0, w) is w(x) * x^32 mod P; so with k = x^(8n - 33) mod P,
 * crc32_u64(0, clmul(a, k)) = a(x) * x^(8n) mod P. The constants below are
 * x^(8n - 33) mod P and x^(16n - 33) mod P, reflected (bit 31 = x^0), made
 * by starting at 0x80000000 and multiplying by x that many times:
 * r = (r >> 1) ^ (0x82F63B78 & -(r & 1)).
 */
__attribute__((target("sse4.2,pclmul")))
static inline uint64_t crc_shift_xor(uint64_t a, uint32_t ka, uint64_t b, uint32_t kb)
{
    __m128i pa = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)a),
                                      _mm_cvtsi32_si128((int)ka), 0x00);
    __m128i pb = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)b),
                                      _mm_cvtsi32_si128((int)kb), 0x00);
    return _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(_mm_xor_si128(pa, pb)));
}

/* Consumes 3n-byte chunks while len allows; n is a constant after inlining. */
__attribute__((target("sse4.2,pclmul"), always_inline))
static inline uint64_t crc_3way(uint64_t c, const uint8_t **pp, size_t *lenp, size_t n,
                                uint32_t k2n, uint32_t kn)
{
    const uint8_t *p = *pp;
    size_t len = *lenp;

    for (; len >= 3 * n; len -= 3 * n) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *end = p + n;
        do {
            c  = _mm_crc32_u64(c,  load64(p));
            c1 = _mm_crc32_u64(c1, load64(p + n));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * n));
            p += 8;
        } while (p < end);
        c = crc_shift_xor(c, k2n, c1, kn) ^ c2;
        p += 2 * n;
    }
    *pp = p;
    *lenp = len;
    return c;
}

/* Block sizes (bytes per chain) and their constants: 3 x 2 KiB chunks for
 * the bulk, then 3 x 256 and 3 x 32 for what is left; below 96 bytes, one
 * chain. The gain of a chunk must pay for the combine (two clmuls and a
 * crc32, about 10 cycles of latency that the next chunk's chains hide). */
#define CRC3_BIG       2048
#define CRC3_BIG_K2N   0x82f89c77u
#define CRC3_BIG_KN    0xa51b6135u
#define CRC3_MID       256
#define CRC3_MID_K2N   0xdd7e3b0cu
#define CRC3_MID_KN    0xb9e02b86u
#define CRC3_SMALL     32
#define CRC3_SMALL_K2N 0x9e4addf8u
#define CRC3_SMALL_KN  0xba4fc28eu

__attribute__((target("sse4.2,pclmul")))
static uint64_t crc_long(uint64_t c, const uint8_t *p, size_t len)
{
    c = crc_3way(c, &p, &len, CRC3_BIG, CRC3_BIG_K2N, CRC3_BIG_KN);
    c = crc_3way(c, &p, &len, CRC3_MID, CRC3_MID_K2N, CRC3_MID_KN);
    c = crc_3way(c, &p, &len, CRC3_SMALL, CRC3_SMALL_K2N, CRC3_SMALL_KN);
    return crc_1way(c, p, len);
}

/*
 * Long buffers on CPUs with VPCLMULQDQ (Ice Lake, Zen 4 and later): folding,
 * the other way to compute a CRC with carry-less multiplies, at about four
 * times the three chains. Four 512-bit accumulators hold 256 bytes of the
 * message; each step multiplies every 128-bit lane forward by 256 bytes (mod
 * P) and xors in the next 256 bytes. With A the accumulator and R the bytes
 * not yet consumed, A * x^(8|R|) + R stays congruent to the message mod P,
 * so the CRC of the bytes of A followed by R (from a zero register) is the
 * CRC of the message. The initial register is xored into the first 4 bytes,
 * which has the same effect as starting from it. At the end the four
 * accumulators are folded into one, its four lanes into one, and the
 * crc32 instruction takes the last 16 bytes and the rest.
 *
 * A lane holds L (its first 8 bytes, the higher powers) and H: L * x^64 + H.
 * clmul(L, k) read as a 128-bit reflected value is x * L * k(x), and a 32-bit
 * reflected k in the low half of a 64-bit lane stands for x^32 * k(x). So
 * moving the lane forward by n bytes takes k = x^(8n + 31) mod P against L
 * and x^(8n - 33) mod P against H, made as above.
 */
#define FOLD256_L 0xdcb17aa4u   /* x^2079 mod P */
#define FOLD256_H 0xb9e02b86u   /* x^2015 */
#define FOLD192_L 0xa87ab8a8u   /* x^1567 */
#define FOLD192_H 0xab7aff2au   /* x^1503 */
#define FOLD128_L 0x6992cea2u   /* x^1055 */
#define FOLD128_H 0x0d3b6092u   /* x^991 */
#define FOLD64_L  0x740eef02u   /* x^543 */
#define FOLD64_H  0x9e4addf8u   /* x^479 */
#define FOLD48_L  0x1c291d04u   /* x^415 */
#define FOLD48_H  0xddc0152bu   /* x^351 */
#define FOLD32_L  0x3da6d0cbu   /* x^287 */
#define FOLD32_H  0xba4fc28eu   /* x^223 */
#define FOLD16_L  0xf20c0dfeu   /* x^159 */
#define FOLD16_H  0x493c7d27u   /* x^95 */
#define WIDE_MIN  256           /* what crc_wide() needs; pays from there */

/* The same pair of constants in every lane. */
#define FOLD_K(n) _mm512_set_epi64(FOLD##n##_H, FOLD##n##_L, FOLD##n##_H, FOLD##n##_L, \
                                   FOLD##n##_H, FOLD##n##_L, FOLD##n##_H, FOLD##n##_L)

/* Every lane of acc multiplied forward by k's distance. */
__attribute__((target("avx512f,vpclmulqdq")))
static inline __m512i fold_fwd(__m512i acc, __m512i k)
{
    return _mm512_xor_si512(_mm512_clmulepi64_epi128(acc, k, 0x00),
                            _mm512_clmulepi64_epi128(acc, k, 0x11));
}

/* len >= 256. */
__attribute__((target("avx512f,vpclmulqdq,sse4.2")))
static uint64_t crc_wide(uint64_t c, const uint8_t *p, size_t len)
{
    const __m512i k = FOLD_K(256);
    __m512i z0 = _mm512_loadu_si512((const void *)p);
    __m512i z1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i z2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i z3 = _mm512_loadu_si512((const void *)(p + 192));

    z0 = _mm512_xor_si512(z0, _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, (long long)(uint32_t)c));
    for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
        z0 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z0, k, 0x00),
                                       _mm512_clmulepi64_epi128(z0, k, 0x11),
                                       _mm512_loadu_si512((const void *)p), 0x96);
        z1 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z1, k, 0x00),
                                       _mm512_clmulepi64_epi128(z1, k, 0x11),
                                       _mm512_loadu_si512((const void *)(p + 64)), 0x96);
        z2 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z2, k, 0x00),
                                       _mm512_clmulepi64_epi128(z2, k, 0x11),
                                       _mm512_loadu_si512((const void *)(p + 128)), 0x96);
        z3 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z3, k, 0x00),
                                       _mm512_clmulepi64_epi128(z3, k, 0x11),
                                       _mm512_loadu_si512((const void *)(p + 192)), 0x96);
    }
    /* 256 bytes -> 64: z0, z1, z2 forward by 192, 128, 64 bytes onto z3. */
    __m512i z = _mm512_ternarylogic_epi64(fold_fwd(z0, FOLD_K(192)), fold_fwd(z1, FOLD_K(128)),
                                          fold_fwd(z2, FOLD_K(64)), 0x96);
    z = _mm512_xor_si512(z, z3);
    /* 64 bytes -> 16: lanes 0, 1, 2 forward by 48, 32, 16 bytes onto lane 3. */
    __m512i t = fold_fwd(z, _mm512_set_epi64(0, 0, FOLD16_H, FOLD16_L, FOLD32_H, FOLD32_L,
                                             FOLD48_H, FOLD48_L));
    __m128i x = _mm_xor_si128(_mm_xor_si128(_mm512_extracti32x4_epi32(t, 0),
                                            _mm512_extracti32x4_epi32(t, 1)),
                              _mm_xor_si128(_mm512_extracti32x4_epi32(t, 2),
                                            _mm512_extracti32x4_epi32(z, 3)));
    c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
    /* crc_long()'s clmuls are SSE-encoded: leave no dirty upper halves. */
    _mm256_zeroupper();
    return crc_long(c, p, len);
}

/* ulog__crc32c_hw() from SHORT_MAX bytes on: aligned, so that the 8-byte
 * loads never straddle a cache line, then three chains where they pay. */
#define SHORT_MAX 128

__attribute__((target("sse4.2"), noinline))
static uint32_t crc32c_hw_long(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = ~crc;

    for (; (uintptr_t)p & 7; len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    if (cpu_features() & CPU_PCLMUL)
        c = crc_long(c, p, len);
    else
        c = crc_1way(c, p, len);
    return ~(uint32_t)c;
}

/* The crc32 instruction: one chain, or three where they pay. Short buffers
 * take one chain, unaligned (a split load costs less than aligning), in a
 * leaf function. */
__attribute__((target("sse4.2")))
uint32_t ulog__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    if (len >= SHORT_MAX)
        return crc32c_hw_long(crc, buf, len);
    return ~(uint32_t)crc_1way(~crc, buf, len);
}

/* Folding, for len >= WIDE_MIN when wide_available(). */
__attribute__((target("sse4.2")))
static uint32_t crc32c_wide(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;

    for (; len > WIDE_MIN && ((uintptr_t)p & 7); len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)crc_wide(c, p, len);
}

static bool wide_available(void)
{
    return (cpu_features() & CPU_WIDE) != 0;
}

bool ulog__crc32c_hw_available(void)
{
    return (cpu_features() & CPU_SSE42) != 0;
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

#if !defined(__x86_64__)
/* Folding is x86-only for now. */
#define WIDE_MIN SIZE_MAX
static inline bool wide_available(void)
{
    return false;
}

static inline uint32_t crc32c_wide(uint32_t crc, const void *buf, size_t len)
{
    return ulog__crc32c_sw(crc, buf, len);
}
#endif

uint32_t ulog__crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (len >= WIDE_MIN && wide_available())
        return crc32c_wide(crc, buf, len);
    if (ulog__crc32c_hw_available())
        return ulog__crc32c_hw(crc, buf, len);
    return ulog__crc32c_sw(crc, buf, len);
}
