/*
 * crypt.c -- encryption at rest (libsodium): the keys a handle was given,
 * and record values sealed with XChaCha20-Poly1305 under them.
 *
 * A sealed value, in place of the value in the record:
 *
 *   version (1 byte, 1) | key id (4, big-endian) | nonce (24) |
 *   ciphertext (as long as the value) | tag (16)
 *
 * The associated data binds it to its place: a domain tag, the topic name
 * (with its length), the partition, the key id, and the record's key (null
 * and empty told apart). A value moved to another record key, partition or
 * topic fails to open like a changed byte. Not covered: a whole record
 * repeated or reordered within its partition (offsets are given after
 * sealing, under the writer lock); in transit the batch MAC covers that.
 * Record keys, headers and timestamps stay in the clear: the partitioner
 * and compaction need the keys.
 *
 * Nonces: 16 random bytes per thread and process, then a 64-bit counter.
 * No system call per record, and no nonce twice across threads, processes
 * or a fork (a fork handler makes the child draw again), where random
 * nonces would ask the kernel for 24 bytes per record.
 */
#include "internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(ULOG_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(ULOG_SEAL_OVERHEAD == 1 + 4 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                         crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "sealed value framing");

#define SEAL_VERSION 1
#define NONCE_AT     5
#define CIPHER_AT    (NONCE_AT + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)

static const char DOMAIN[] = "ulog sealed value 1";

typedef struct ulog__key {
    struct ulog__key *next;
    char             *topic;
    uint32_t          id;
    uint8_t          *key;      /* sodium_malloc'd: locked, guarded, wiped */
} ulog__key;

/* ---------------------------------------------------------------- keyring */

static ulog__key *find_key(ulog *log, const char *topic, uint32_t id)
{
    for (ulog__key *k = log->keys; k; k = k->next)
        if (k->id == id && strcmp(k->topic, topic) == 0)
            return k;
    return NULL;
}

static void key_free(ulog__key *k)
{
    sodium_free(k->key);
    free(k->topic);
    free(k);
}

int ulog_key_add(ulog *log, const char *topic, uint32_t key_id, const uint8_t *key,
                 size_t key_len)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic || !ulog__name_valid(topic))
        return ulog__fail(log, ULOG_EINVAL, "key_add: bad topic name");
    if (!key || key_len != ULOG_KEY_BYTES)
        return ulog__fail(log, ULOG_EINVAL, "key_add: a key is %d bytes", ULOG_KEY_BYTES);
    int err = ulog__sodium();
    if (err)
        return ulog__fail(log, err, "key_add: libsodium cannot be initialised");
    ulog__key *k = calloc(1, sizeof *k);
    if (k) {
        k->topic = strdup(topic);
        k->key = sodium_malloc(ULOG_KEY_BYTES);
        k->id = key_id;
    }
    if (!k || !k->topic || !k->key) {
        if (k)
            key_free(k);
        return ulog__fail(log, ULOG_ENOMEM, "key_add: out of memory");
    }
    memcpy(k->key, key, ULOG_KEY_BYTES);
    pthread_rwlock_wrlock(&log->klock);
    ulog__key *old = find_key(log, topic, key_id);
    if (!old) {
        k->next = log->keys;
        log->keys = k;
    }
    bool same = old && sodium_memcmp(old->key, key, ULOG_KEY_BYTES) == 0;
    pthread_rwlock_unlock(&log->klock);
    if (!old)
        return 0;
    key_free(k);
    return same ? 0 : ulog__fail(log, ULOG_EEXIST, "topic %s: another key has id %u", topic,
                                 (unsigned)key_id);
}

int ulog_key_remove(ulog *log, const char *topic, uint32_t key_id)
{
    if (!log)
        return ULOG_EINVAL;
    if (!topic)
        return ulog__fail(log, ULOG_EINVAL, "key_remove: NULL topic");
    pthread_rwlock_wrlock(&log->klock);
    ulog__key **pp = &log->keys;
    while (*pp && ((*pp)->id != key_id || strcmp((*pp)->topic, topic) != 0))
        pp = &(*pp)->next;
    ulog__key *k = *pp;
    if (k)
        *pp = k->next;
    pthread_rwlock_unlock(&log->klock);
    if (!k)
        return ulog__fail(log, ULOG_ENOENT, "topic %s: no key %u", topic, (unsigned)key_id);
    key_free(k);
    return 0;
}

void ulog__wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

void ulog__keys_free(ulog *log)
{
    while (log->keys) {
        ulog__key *k = log->keys;
        log->keys = k->next;
        key_free(k);
    }
}

bool ulog__key_copy(ulog *log, const char *topic, uint32_t id, uint8_t *out)
{
    pthread_rwlock_rdlock(&log->klock);
    ulog__key *k = find_key(log, topic, id);
    if (k)
        memcpy(out, k->key, ULOG_KEY_BYTES);
    pthread_rwlock_unlock(&log->klock);
    return k != NULL;
}

/* ---------------------------------------------------------------- sealing */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The associated data, hashed to a fixed size so that a long record key
 * costs no allocation: BLAKE2b-256 over the domain, the topic, the
 * partition, the key id and the record key. */
static void aad_of(uint8_t out[32], const char *topic, int32_t partition, uint32_t key_id,
                   const void *key, size_t key_len)
{
    crypto_generichash_state st;
    uint8_t n[9];
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)DOMAIN, sizeof DOMAIN);
    size_t tl = strlen(topic);
    be32(n, (uint32_t)tl);
    crypto_generichash_update(&st, n, 4);
    crypto_generichash_update(&st, (const uint8_t *)topic, tl);
    be32(n, (uint32_t)partition);
    be32(n + 4, key_id);
    n[8] = key ? 1 : 0;
    crypto_generichash_update(&st, n, 9);
    if (key)
        crypto_generichash_update(&st, key, key_len);
    crypto_generichash_final(&st, out, 32);
}

/* A forked child draws new prefixes: fork_gen moves in it (a getpid()
 * per record was a system call, a tenth of a seal). */
static unsigned fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void in_child(void)
{
    fork_gen++;
}

static void atfork_start(void)
{
    pthread_atfork(NULL, NULL, in_child);
}

static __thread struct {
    unsigned gen;           /* fork_gen when drawn; 0: never */
    uint8_t  prefix[16];
    uint64_t counter;
} nonce_state;

static void next_nonce(uint8_t *out)
{
    pthread_once(&atfork_once, atfork_start);
    if (nonce_state.gen != fork_gen) {
        randombytes_buf(nonce_state.prefix, sizeof nonce_state.prefix);
        nonce_state.counter = 0;
        nonce_state.gen = fork_gen;
    }
    memcpy(out, nonce_state.prefix, 16);
    uint64_t c = nonce_state.counter++;
    for (int i = 0; i < 8; i++, c >>= 8)
        out[16 + i] = (uint8_t)c;
}

void ulog__seal(const uint8_t *key, const char *topic, int32_t partition, uint32_t key_id,
                const ulog_record *rec, uint8_t *out)
{
    uint8_t aad[32];
    out[0] = SEAL_VERSION;
    be32(out + 1, key_id);
    next_nonce(out + NONCE_AT);
    aad_of(aad, topic, partition, key_id, rec->key, rec->key_len);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + CIPHER_AT, NULL, rec->value,
                                               rec->value_len, aad, sizeof aad, NULL,
                                               out + NONCE_AT, key);
}

bool ulog__sealed_framing(const void *value, size_t len)
{
    return len >= ULOG_SEAL_OVERHEAD && ((const uint8_t *)value)[0] == SEAL_VERSION;
}

int ulog__unseal(ulog *log, const char *topic, int32_t partition, const void *key,
                 size_t key_len, const uint8_t *sealed, size_t sealed_len, uint8_t *out,
                 uint32_t *key_id)
{
    if (!ulog__sealed_framing(sealed, sealed_len))
        return ULOG_EAUTH;
    int err = ulog__sodium();
    if (err)
        return err;
    uint32_t id = (uint32_t)sealed[1] << 24 | (uint32_t)sealed[2] << 16 |
                  (uint32_t)sealed[3] << 8 | sealed[4];
    *key_id = id;
    uint8_t k[ULOG_KEY_BYTES], aad[32];
    if (!ulog__key_copy(log, topic, id, k))
        return ULOG_ENOKEY;
    aad_of(aad, topic, partition, id, key, key_len);
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, sealed + CIPHER_AT,
                                                        sealed_len - CIPHER_AT, aad, sizeof aad,
                                                        sealed + NONCE_AT, k);
    sodium_memzero(k, sizeof k);
    return rc == 0 ? 0 : ULOG_EAUTH;
}
