/*
 * auth.c -- libsodium: the MAC of a shipped batch (replication between logs
 * that share a key). With crypt.c, the only files that include sodium.h.
 *
 * The MAC is HMAC-SHA-512-256 (crypto_auth) over a domain tag, the topic
 * name (with its length, so that names cannot run into what follows), the
 * partition, the base offset and the batch bytes: it binds the batch to its
 * place, so a batch replayed elsewhere in a topic fails.
 */
#include "internal.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

_Static_assert(ULOG_MAC_KEY_BYTES == crypto_auth_hmacsha512256_KEYBYTES, "MAC key size");
_Static_assert(ULOG_MAC_BYTES == crypto_auth_hmacsha512256_BYTES, "MAC size");

static const char DOMAIN[] = "ulog batch mac 1";

/* Big-endian, as in the batch format. */
static void be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void sodium_start(void)
{
    sodium_ok = sodium_init() >= 0;
}

/* 0 when libsodium can be used. */
int ulog__sodium(void)
{
    pthread_once(&sodium_once, sodium_start);
    return sodium_ok ? 0 : ULOG_ENOTSUP;
}

static int compute(const uint8_t *key, const char *topic, int32_t partition, int64_t base,
                   const void *data, size_t len, uint8_t *mac)
{
    if (!key || !topic || (!data && len) || !mac)
        return ULOG_EINVAL;
    int err = ulog__sodium();
    if (err)
        return err;
    uint8_t place[4 + 4 + 8];
    size_t tl = strlen(topic);
    be(place, tl, 4);
    be(place + 4, (uint32_t)partition, 4);
    be(place + 8, (uint64_t)base, 8);
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, key, ULOG_MAC_KEY_BYTES);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)DOMAIN, sizeof DOMAIN);
    crypto_auth_hmacsha512256_update(&st, place, 4);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)topic, tl);
    crypto_auth_hmacsha512256_update(&st, place + 4, sizeof place - 4);
    if (len)
        crypto_auth_hmacsha512256_update(&st, data, len);
    crypto_auth_hmacsha512256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    return 0;
}

int ulog_batch_mac(const uint8_t *key, const char *topic, int32_t partition, int64_t base_offset,
                   const void *data, size_t len, uint8_t *mac)
{
    return compute(key, topic, partition, base_offset, data, len, mac);
}

int ulog_batch_mac_verify(const uint8_t *key, const char *topic, int32_t partition,
                          int64_t base_offset, const void *data, size_t len, const uint8_t *mac)
{
    uint8_t want[ULOG_MAC_BYTES];
    if (!mac)
        return ULOG_EINVAL;
    int err = compute(key, topic, partition, base_offset, data, len, want);
    if (!err && sodium_memcmp(want, mac, ULOG_MAC_BYTES) != 0)
        err = ULOG_EAUTH;
    sodium_memzero(want, sizeof want);
    return err;
}
