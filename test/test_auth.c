/* test_auth.c -- the MAC of a shipped batch: it verifies under its key and
 * place, and fails for another key, topic, partition or offset, and for any
 * flipped bit of the batch or of the MAC. */
#include "testutil.h"

#include <sodium.h>

static const uint8_t KEY[ULOG_MAC_KEY_BYTES] = "0123456789abcdef0123456789abcde";

/* The MAC computed here from its definition (lib/auth.c): HMAC-SHA-512-256
 * over the domain tag, the topic's length and name, the partition and the
 * base offset (big-endian), and the bytes. */
static void reference(const char *topic, int32_t part, int64_t base, const uint8_t *d,
                      size_t len, uint8_t out[32])
{
    static const char domain[] = "ulog batch mac 1";
    uint8_t msg[4096];
    size_t n = 0, tl = strlen(topic);
    memcpy(msg, domain, sizeof domain);
    n += sizeof domain;
    for (int i = 3; i >= 0; i--)
        msg[n++] = (uint8_t)(tl >> (8 * i));
    memcpy(msg + n, topic, tl);
    n += tl;
    for (int i = 3; i >= 0; i--)
        msg[n++] = (uint8_t)((uint32_t)part >> (8 * i));
    for (int i = 7; i >= 0; i--)
        msg[n++] = (uint8_t)((uint64_t)base >> (8 * i));
    memcpy(msg + n, d, len);
    n += len;
    cr_assert_eq(sodium_init() >= 0, 1);
    crypto_auth_hmacsha512256(out, msg, n, KEY);
}

Test(auth, matches_its_definition_and_verifies)
{
    uint8_t data[300], mac[ULOG_MAC_BYTES], want[32];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    cr_assert_eq(ulog_batch_mac(KEY, "events", 3, 1234567890123, data, sizeof data, mac), 0);
    reference("events", 3, 1234567890123, data, sizeof data, want);
    cr_assert_eq(memcmp(mac, want, 32), 0, "not HMAC-SHA-512-256 of the documented message");
    cr_expect_eq(ulog_batch_mac_verify(KEY, "events", 3, 1234567890123, data, sizeof data, mac),
                 0);
    /* Empty data is allowed, NULL then too. */
    cr_assert_eq(ulog_batch_mac(KEY, "t", 0, 0, NULL, 0, mac), 0);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "t", 0, 0, NULL, 0, mac), 0);
}

Test(auth, every_change_fails)
{
    uint8_t data[200], mac[ULOG_MAC_BYTES], key2[ULOG_MAC_KEY_BYTES];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i ^ 0x5a);
    cr_assert_eq(ulog_batch_mac(KEY, "events", 1, 77, data, sizeof data, mac), 0);
    memcpy(key2, KEY, sizeof key2);
    key2[31] ^= 1;
    cr_expect_eq(ulog_batch_mac_verify(key2, "events", 1, 77, data, sizeof data, mac), ULOG_EAUTH);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "events2", 1, 77, data, sizeof data, mac), ULOG_EAUTH);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "event", 1, 77, data, sizeof data, mac), ULOG_EAUTH);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "events", 0, 77, data, sizeof data, mac), ULOG_EAUTH);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "events", 1, 78, data, sizeof data, mac), ULOG_EAUTH);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "events", 1, 77, data, sizeof data - 1, mac),
                 ULOG_EAUTH);
    for (size_t bit = 0; bit < sizeof data * 8; bit++) {
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(ulog_batch_mac_verify(KEY, "events", 1, 77, data, sizeof data, mac),
                     ULOG_EAUTH, "data bit %zu", bit);
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < ULOG_MAC_BYTES * 8; bit++) {
        mac[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(ulog_batch_mac_verify(KEY, "events", 1, 77, data, sizeof data, mac),
                     ULOG_EAUTH, "MAC bit %zu", bit);
        mac[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    cr_expect_eq(ulog_batch_mac_verify(KEY, "events", 1, 77, data, sizeof data, mac), 0);
}

Test(auth, bad_arguments)
{
    uint8_t d[4] = { 0 }, mac[ULOG_MAC_BYTES];
    cr_expect_eq(ulog_batch_mac(NULL, "t", 0, 0, d, 4, mac), ULOG_EINVAL);
    cr_expect_eq(ulog_batch_mac(KEY, NULL, 0, 0, d, 4, mac), ULOG_EINVAL);
    cr_expect_eq(ulog_batch_mac(KEY, "t", 0, 0, NULL, 4, mac), ULOG_EINVAL);
    cr_expect_eq(ulog_batch_mac(KEY, "t", 0, 0, d, 4, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_batch_mac_verify(KEY, "t", 0, 0, d, 4, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_batch_mac_verify(NULL, "t", 0, 0, d, 4, mac), ULOG_EINVAL);
}
