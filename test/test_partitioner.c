/* test_partitioner.c -- murmur2 against the Java Kafka client's values. */
#include <criterion/criterion.h>
#include <string.h>

#include "internal.h"

static int32_t m2(const char *s)
{
    return ulog__murmur2(s, strlen(s));
}

/* org.apache.kafka.common.utils.UtilsTest#testMurmur2 */
Test(murmur2, kafka_utils_test)
{
    cr_expect_eq(m2("21"), -973932308);
    cr_expect_eq(m2("foobar"), -790332482);
    cr_expect_eq(m2("a-little-bit-long-string"), -985981536);
    cr_expect_eq(m2("a-little-bit-longer-string"), -1486304829);
    cr_expect_eq(m2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
    cr_expect_eq(m2("abc"), 479470107);
}

/* Bytes >= 0x80 exercise Java's (b & 0xff). The first value is from the JVM
 * client; the others from kafkajs' Java-compatible murmur2. */
Test(murmur2, binary_key)
{
    static const uint8_t k[] = { 12, 42, 56, 24, 109, 111 };
    static const uint8_t hi5[] = { 0xff, 0x80, 0xfe, 0x81, 0x90 };
    static const uint8_t hi7[] = { 0xff, 0xfe, 0xfd, 0xfc, 0x80, 0x81, 0x82 };
    uint8_t buf[16];

    cr_expect_eq(ulog__murmur2(k, sizeof k), 274204207);
    cr_expect_eq(ulog__murmur2(hi5, sizeof hi5), 234866925);
    cr_expect_eq(ulog__murmur2(hi7, sizeof hi7), -1449165224);
    /* The buffer's alignment does not matter. */
    memcpy(buf + 1, hi7, sizeof hi7);
    cr_expect_eq(ulog__murmur2(buf + 1, sizeof hi7), -1449165224);
}

/* Empty key: only the final mix of the seed (librdkafka and kafkajs agree). */
Test(murmur2, empty_key)
{
    cr_expect_eq(ulog__murmur2("", 0), 0x106e08d9);
    cr_expect_eq(ulog__murmur2(NULL, 0), 0x106e08d9);
}
