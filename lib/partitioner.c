/*
 * partitioner.c -- murmur2 exactly as the Java Kafka client computes it
 * (Utils.murmur2), so a key lands on the same partition number as it would
 * with a Java producer (partition = (murmur2(key) & 0x7fffffff) % count).
 *
 * Java's int arithmetic wraps and its >>> is a logical shift, which is what
 * uint32_t does in C; the result is reinterpreted as a signed int at the end.
 * Bytes are read little-endian whatever the host, as Java's code does.
 */
#include "internal.h"

#define M2_SEED 0x9747b28cu
#define M2_M    0x5bd1e995u
#define M2_R    24

int32_t ulog__murmur2(const void *key, size_t len)
{
    const uint8_t *p = key;
    /* Java hashes a byte[]; its length is an int. */
    uint32_t h = M2_SEED ^ (uint32_t)len;
    size_t i = 0;

    for (; len - i >= 4; i += 4) {
        uint32_t k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
                     (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
        k *= M2_M;
        k ^= k >> M2_R;
        k *= M2_M;
        h *= M2_M;
        h ^= k;
    }
    switch (len - i) {
    case 3: h ^= (uint32_t)p[i + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)p[i + 1] << 8;  /* fall through */
    case 1: h ^= p[i];
            h *= M2_M;
    }
    h ^= h >> 13;
    h *= M2_M;
    h ^= h >> 15;
    return (int32_t)h;
}
