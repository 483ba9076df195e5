/* test_crypt.c -- encryption at rest: a topic with encryption.key.id stores
 * its values sealed (XChaCha20-Poly1305) under keys the application gives
 * each handle; without the key a read is ULOG_ENOKEY, with a wrong key or
 * a changed byte ULOG_EAUTH, never the bytes, and the subscription stays
 * at that record. */
#include "testutil.h"

#include <sodium.h>

static char root[256];
SCRATCH_SUITE(crypt, root);

static const uint8_t K1[ULOG_KEY_BYTES] = "first key of 32 bytes, for tests";
static const uint8_t K2[ULOG_KEY_BYTES] = "second key, also 32 bytes long!";

#define SECRET "the-plaintext-marker"

static ulog *open_encrypted(const char *dir, int32_t parts, const char *more_name,
                            const char *more_value)
{
    ulog *log = open_with_topic(dir, NULL, "s", parts,
                                cfg_of("encryption.key.id", "1", more_name, more_value, NULL));
    cr_assert_eq(ulog_key_add(log, "s", 1, K1, sizeof K1), 0);
    return log;
}

/* Record i: a key for most (null for i % 5 == 0, empty for i % 5 == 1), a
 * value carrying the marker and i (null for i % 7 == 3, empty for
 * i % 7 == 4, 70 KB for i == 10), a header for the even ones. */
typedef struct rec {
    char key[32], val[128], hv[16];
    uint8_t *big;
    ulog_header h;
    ulog_record r;
} rec;

static void make(rec *b, int i, int32_t partition)
{
    memset(b, 0, sizeof *b);
    ulog_record *r = &b->r;
    if (i % 5 == 1) {
        r->key = "";
    } else if (i % 5 != 0) {
        r->key = b->key;
        r->key_len = (size_t)snprintf(b->key, sizeof b->key, "k%d", i % 4);
    }
    if (i == 10) {
        b->big = malloc(70000);
        for (size_t j = 0; j < 70000; j++)
            b->big[j] = (uint8_t)(j * 31 + 7);
        memcpy(b->big, SECRET, strlen(SECRET));
        r->value = b->big;
        r->value_len = 70000;
    } else if (i % 7 == 4) {
        r->value = "";
    } else if (i % 7 != 3) {
        r->value = b->val;
        r->value_len = (size_t)snprintf(b->val, sizeof b->val, SECRET " %d", i);
    }
    if (i % 2 == 0) {
        b->h = (ulog_header){ .key = "h", .key_len = 1, .value = b->hv,
                              .value_len = (size_t)snprintf(b->hv, sizeof b->hv, "%d", i) };
        r->headers = &b->h;
        r->header_count = 1;
    }
    r->timestamp = 1700000000000LL + i;
    r->partition = partition;
}

static void expect_rec(const ulog_msg *m, int i)
{
    rec b;
    make(&b, i, 0);
    const ulog_record *r = &b.r;
    cr_expect_eq(m->timestamp, r->timestamp, "record %d: timestamp", i);
    cr_expect_eq(m->key == NULL, r->key == NULL, "record %d: null key", i);
    cr_expect(m->key_len == r->key_len && (!r->key_len || !memcmp(m->key, r->key, r->key_len)),
              "record %d: key", i);
    cr_expect_eq(m->value == NULL, r->value == NULL, "record %d: null value", i);
    cr_expect(m->value_len == r->value_len &&
                  (!r->value_len || !memcmp(m->value, r->value, r->value_len)),
              "record %d: value (%zu bytes, want %zu)", i, m->value_len, r->value_len);
    cr_expect_eq(m->header_count, r->header_count, "record %d: headers", i);
    free(b.big);
}

static void append_recs(ulog *log, int from, int to, int32_t partition)
{
    for (int i = from; i < to; i++) {
        rec b;
        make(&b, i, partition);
        int rc = ulog_append(log, "s", &b.r, 1);
        cr_assert_eq(rc, 0, "append %d: %s", i, ulog_errname(rc));
        free(b.big);
    }
}

/* Records first..first+n-1 (n <= 16) in one call: one batch of partition 0. */
static void append_batch(ulog *log, int first, int n)
{
    rec b[16];
    ulog_record r[16];
    for (int i = 0; i < n; i++) {
        make(&b[i], first + i, 0);
        r[i] = b[i].r;
    }
    append_ok(log, "s", r, (size_t)n);
    for (int i = 0; i < n; i++)
        free(b[i].big);
}

static bool file_has(const char *path, const void *needle, size_t n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)len + 1);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    bool found = memmem(b, (size_t)len, needle, n) != NULL;
    free(b);
    return found;
}

static ulog_sub *from_start(ulog *log)
{
    return sub_earliest(log, "s");
}

Test(crypt, values_round_trip_and_are_not_stored_in_the_clear)
{
    ulog *log = open_encrypted(root, 1, NULL, NULL);
    append_recs(log, 0, 30, 0);
    ulog_sub *s = from_start(log);
    ulog_msg m;
    for (int i = 0; i < 30; i++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, 0, "poll %d: %s", i, ulog_errname(rc));
        cr_assert_eq(m.offset, i);
        expect_rec(&m, i);
    }
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT);
    ulog_sub_close(s);
    ulog_close(log);
    char sp[700];
    seg_path(sp, sizeof sp, root, "s", 0, 0);
    cr_expect(!file_has(sp, SECRET, strlen(SECRET)), "a value is in the segment in the clear");
    cr_expect(file_has(sp, "k3", 2), "keys stay in the clear (compaction needs them)");
    cr_expect(!file_has(sp, K1, sizeof K1), "the key is in the segment");
    /* Nor anywhere else under the root (LMDB keeps the setting, not the key). */
    char mp[700];
    snprintf(mp, sizeof mp, "%s/meta/data.mdb", root);
    cr_expect(!file_has(mp, K1, sizeof K1), "the key is in the catalog");
    cr_expect(file_has(mp, "encryption.key.id=1", 19), "the catalog holds the key id");
}

Test(crypt, a_sealed_value_costs_the_overhead_and_counts_against_max_message_bytes)
{
    ulog *log = open_encrypted(root, 1, "max.message.bytes", "1000");
    char v[1000];
    memset(v, 'x', sizeof v);
    /* 900 bytes fit in the clear; sealed (+45) plus the batch's 61 and the
     * record's framing they do not. */
    ulog_record r = { .value = v, .value_len = 900, .timestamp = ULOG_TIMESTAMP_NOW,
                      .partition = 0 };
    cr_expect_eq(ulog_append(log, "s", &r, 1), ULOG_ETOOBIG);
    r.value_len = 850;
    cr_assert_eq(ulog_append(log, "s", &r, 1), 0);
    ulog_partition_info info = ULOG_PARTITION_INFO_INIT;
    cr_assert_eq(ulog_partition_describe(log, "s", 0, &info), 0);
    cr_expect_gt(info.bytes, 850 + ULOG_SEAL_OVERHEAD + 61);
    cr_expect_lt(info.bytes, 850 + ULOG_SEAL_OVERHEAD + 61 + 16);
    ulog_close(log);
}

Test(crypt, appends_without_the_key_fail_and_store_nothing)
{
    ulog *log = open_with_topic(root, NULL, "s", 2, cfg_of("encryption.key.id", "1", NULL));
    rec b;
    make(&b, 2, ULOG_PARTITION_ANY);
    cr_assert_eq(ulog_append(log, "s", &b.r, 1), ULOG_ENOKEY);
    char msg[256];
    ulog_errmsg(log, msg, sizeof msg);
    cr_expect(strstr(msg, "no key 1") != NULL, "message: %s", msg);
    /* Another id's key is no help. */
    cr_assert_eq(ulog_key_add(log, "s", 2, K2, sizeof K2), 0);
    cr_assert_eq(ulog_append(log, "s", &b.r, 1), ULOG_ENOKEY);
    for (int32_t p = 0; p < 2; p++) {
        int64_t lo, hi;
        watermarks(log, "s", p, &lo, &hi);
        cr_expect_eq(hi, 0, "partition %d got a record", (int)p);
    }
    cr_assert_eq(ulog_key_add(log, "s", 1, K1, sizeof K1), 0);
    cr_assert_eq(ulog_append(log, "s", &b.r, 1), 0);
    cr_expect_eq(b.r.offset, 0);
    ulog_close(log);
}

Test(crypt, reads_without_the_key_give_ENOKEY_and_stay_there)
{
    ulog *w = open_encrypted(root, 3, NULL, NULL);
    for (int i = 0; i < 12; i++) {
        rec b;
        make(&b, i, i % 3);
        append_ok(w, "s", &b.r, 1);
        free(b.big);
    }
    ulog *r = open_at(root, NULL);
    ulog_sub *s = from_start(r);
    ulog_msg m;
    for (int k = 0; k < 3; k++)
        cr_expect_eq(ulog_poll(s, 0, &m), ULOG_ENOKEY, "try %d", k);
    char msg[256];
    ulog_errmsg(r, msg, sizeof msg);
    cr_expect(strstr(msg, "key id 1") != NULL, "message: %s", msg);
    cr_assert_eq(ulog_key_add(r, "s", 1, K1, sizeof K1), 0);
    /* Nothing was skipped: every record of every partition, in order. */
    int64_t next[3] = { 0, 0, 0 };
    int got = 0, rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        cr_assert_eq(m.offset, next[m.partition]++, "partition %d", (int)m.partition);
        expect_rec(&m, (int)m.offset * 3 + m.partition);
        got++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    cr_expect_eq(got, 12);
    ulog_sub_close(s);
    ulog_close(r);
    ulog_close(w);
}

Test(crypt, a_wrong_key_gives_EAUTH)
{
    ulog *w = open_encrypted(root, 1, NULL, NULL);
    append_recs(w, 0, 3, 0);
    ulog *r = open_at(root, NULL);
    cr_assert_eq(ulog_key_add(r, "s", 1, K2, sizeof K2), 0);
    ulog_sub *s = from_start(r);
    ulog_msg m;
    cr_expect_eq(ulog_poll(s, 0, &m), ULOG_EAUTH);
    cr_expect(m.value == NULL && m.value_len == 0, "a value that did not open is not handed out");
    cr_expect_eq(ulog_poll(s, 0, &m), ULOG_EAUTH, "still at the record");
    cr_assert_eq(ulog_key_remove(r, "s", 1), 0);
    cr_expect_eq(ulog_poll(s, 0, &m), ULOG_ENOKEY);
    cr_assert_eq(ulog_key_add(r, "s", 1, K1, sizeof K1), 0);
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_expect_eq(m.offset, 0);
    expect_rec(&m, 0);
    ulog_sub_close(s);
    ulog_close(r);
    ulog_close(w);
}

/* ------------------------------------------------------------ tampering */

static void fix_crc(uint8_t *b, size_t frame)
{
    uint32_t c = ulog__crc32c(0, b + 21, frame - 21);
    b[17] = (uint8_t)(c >> 24);
    b[18] = (uint8_t)(c >> 16);
    b[19] = (uint8_t)(c >> 8);
    b[20] = (uint8_t)c;
}

/* Reads segment 0 of topic s in dir whole. */
static uint8_t *slurp_seg(const char *dir, size_t *len)
{
    char sp[700];
    seg_path(sp, sizeof sp, dir, "s", 0, 0);
    *len = (size_t)seg_data_bytes(sp);
    uint8_t *b = malloc(*len);
    FILE *f = fopen(sp, "rb");
    cr_assert_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void write_seg(const char *dir, const uint8_t *b, size_t len)
{
    char sp[700];
    seg_path(sp, sizeof sp, dir, "s", 0, 0);
    FILE *f = fopen(sp, "r+b");
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* The start of the frame holding byte `at`. */
static size_t frame_of(const uint8_t *b, size_t len, size_t at, size_t *frame)
{
    size_t pos = 0;
    for (;;) {
        cr_assert_eq(ulog__batch_frame_size(b + pos, len - pos, frame), 0);
        if (at < pos + *frame)
            return pos;
        pos += *frame;
    }
}

/* Where record i's value starts, in a segment of one batch. */
static size_t value_at(const uint8_t *b, size_t len, int i)
{
    const uint8_t *p = b + ULOG__BATCH_HEADER_SIZE;
    ulog__rec r;
    for (int k = 0; k <= i; k++) {
        cr_assert_eq(ulog__rec_decode(p, b + len, &r), 0);
        p = r.end;
    }
    cr_assert_not_null(r.value);
    return (size_t)((const uint8_t *)r.value - b);
}

/* Copies the log in `root` to a fresh directory, changes it with `how`
 * (given the segment and where the sealed values of records 5 and 6
 * start), fixes the batch's CRC so that only the seal can tell, and polls
 * it: records 0..4 come, then `want`, again and again. */
static void tamper(int case_no, void (*how)(uint8_t *b, size_t at, size_t at6), int want,
                   const char *what)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s-t%d", root, case_no);
    copy_tree(root, dir);
    delete_heads(dir, "s", 1, true);
    size_t len;
    uint8_t *b = slurp_seg(dir, &len);
    size_t at = value_at(b, len, 5), at6 = value_at(b, len, 6);
    cr_assert_eq(b[at], 1, "a sealed value starts with its version");
    size_t frame, start = frame_of(b, len, at, &frame);
    how(b, at, at6);
    fix_crc(b + start, frame);
    write_seg(dir, b, len);
    free(b);
    ulog *log = open_at(dir, NULL);
    cr_assert_eq(ulog_key_add(log, "s", 1, K1, sizeof K1), 0);
    ulog_sub *s = from_start(log);
    ulog_msg m;
    for (int i = 0; i < 5; i++) {
        int rc = ulog_poll(s, 0, &m);
        cr_assert_eq(rc, 0, "%s: record %d: %s", what, i, ulog_errname(rc));
        cr_assert_eq(m.offset, i);
    }
    for (int k = 0; k < 2; k++) {
        int rc = ulog_poll(s, 0, &m);
        cr_expect_eq(rc, want, "%s: try %d gave %s", what, k, ulog_errname(rc));
    }
    ulog_sub_close(s);
    ulog_close(log);
    rm_rf(dir);
}

static void flip_cipher(uint8_t *b, size_t at, size_t at6)
{
    (void)at6;
    b[at + 5 + 24 + 3] ^= 0x01;
}

static void flip_tag(uint8_t *b, size_t at, size_t at6)
{
    (void)at6;
    /* SECRET " 5": the tag follows its bytes. */
    b[at + 5 + 24 + strlen(SECRET " 5") + 15] ^= 0x80;
}

static void flip_nonce(uint8_t *b, size_t at, size_t at6)
{
    (void)at6;
    b[at + 5 + 10] ^= 0x04;
}

static void other_key_id(uint8_t *b, size_t at, size_t at6)
{
    (void)at6;
    b[at + 4] = 9;
}

static void bad_version(uint8_t *b, size_t at, size_t at6)
{
    (void)at6;
    b[at] = 2;
}

/* Record 5's value and record 6's are the same length (SECRET " 5" and
 * " 6") under other record keys (null and empty): swapped, neither opens. */
static void swap_values(uint8_t *b, size_t at, size_t other)
{
    size_t n = ULOG_SEAL_OVERHEAD + strlen(SECRET " 5");
    uint8_t tmp[128];
    memcpy(tmp, b + at, n);
    memcpy(b + at, b + other, n);
    memcpy(b + other, tmp, n);
}

Test(crypt, a_changed_byte_gives_EAUTH_never_the_bytes)
{
    ulog *log = open_encrypted(root, 1, NULL, NULL);
    /* One batch of records 0..9 (record 3's value is null, record 4's
     * empty: the sealed ones are 0, 1, 2, 4, 5, 6, ...). */
    append_batch(log, 0, 10);
    ulog_close(log);
    tamper(1, flip_cipher, ULOG_EAUTH, "a ciphertext bit");
    tamper(2, flip_tag, ULOG_EAUTH, "a tag bit");
    tamper(3, flip_nonce, ULOG_EAUTH, "a nonce bit");
    tamper(4, other_key_id, ULOG_ENOKEY, "the key id");
    tamper(5, bad_version, ULOG_EAUTH, "the version byte");
    tamper(6, swap_values, ULOG_EAUTH, "two values swapped between record keys");
}

/* ------------------------------------------------------------ the rest */

Test(crypt, key_rotation_by_key_id)
{
    ulog *log = open_encrypted(root, 1, NULL, NULL);
    append_recs(log, 0, 5, 0);
    ulog_config *c = cfg_of("encryption.key.id", "2", NULL);
    cr_assert_eq(ulog_topic_alter(log, "s", c), 0);
    ulog_config_free(c);
    rec b;
    make(&b, 5, 0);
    cr_expect_eq(ulog_append(log, "s", &b.r, 1), ULOG_ENOKEY, "key 2 not given yet");
    cr_assert_eq(ulog_key_add(log, "s", 2, K2, sizeof K2), 0);
    append_recs(log, 5, 10, 0);
    ulog_close(log);

    /* Both keys: everything. Key 2 alone: the old records are ENOKEY,
     * and after a seek past them the new ones open. */
    log = open_at(root, NULL);
    cr_assert_eq(ulog_key_add(log, "s", 2, K2, sizeof K2), 0);
    ulog_sub *s = from_start(log);
    ulog_msg m;
    cr_expect_eq(ulog_poll(s, 0, &m), ULOG_ENOKEY);
    cr_assert_eq(ulog_seek(s, 0, 5), 0);
    for (int i = 5; i < 10; i++) {
        cr_assert_eq(ulog_poll(s, 0, &m), 0);
        expect_rec(&m, i);
    }
    cr_assert_eq(ulog_key_add(log, "s", 1, K1, sizeof K1), 0);
    cr_assert_eq(ulog_seek(s, 0, 0), 0);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(ulog_poll(s, 0, &m), 0, "record %d", i);
        expect_rec(&m, i);
    }
    ulog_sub_close(s);
    ulog_close(log);
}

Test(crypt, a_topic_is_encrypted_from_its_creation_or_never)
{
    ulog *log = open_encrypted(root, 1, NULL, NULL);
    create_topic(log, "plain", 1, NULL);
    char msg[256];
    ulog_config *c = cfg_of("encryption.key.id", "-1", NULL);
    cr_expect_eq(ulog_topic_alter(log, "s", c), ULOG_EINVAL);
    ulog_errmsg(log, msg, sizeof msg);
    cr_expect(strstr(msg, "from its creation") != NULL, "message: %s", msg);
    ulog_config_free(c);
    c = cfg_of("encryption.key.id", "3", NULL);
    cr_expect_eq(ulog_topic_alter(log, "plain", c), ULOG_EINVAL);
    ulog_config_free(c);
    expect_setting(log, "s", "encryption.key.id", "1");
    expect_setting(log, "plain", "encryption.key.id", "-1");
    ulog_config *bad = ulog_config_new();
    cr_expect_eq(ulog_config_set(bad, "encryption.key.id", "-2", NULL, 0), ULOG_EINVAL);
    cr_expect_eq(ulog_config_set(bad, "encryption.key.id", "2147483648", NULL, 0), ULOG_EINVAL);
    ulog_config_free(bad);
    ulog_close(log);
}

Test(crypt, key_add_and_remove_check_their_arguments)
{
    ulog *log = open_at(root, NULL);
    cr_expect_eq(ulog_key_add(NULL, "s", 1, K1, sizeof K1), ULOG_EINVAL);
    cr_expect_eq(ulog_key_add(log, NULL, 1, K1, sizeof K1), ULOG_EINVAL);
    cr_expect_eq(ulog_key_add(log, "../x", 1, K1, sizeof K1), ULOG_EINVAL);
    cr_expect_eq(ulog_key_add(log, "s", 1, NULL, sizeof K1), ULOG_EINVAL);
    cr_expect_eq(ulog_key_add(log, "s", 1, K1, 16), ULOG_EINVAL);
    cr_expect_eq(ulog_key_add(log, "s", 1, K1, sizeof K1), 0, "a topic not made yet is fine");
    cr_expect_eq(ulog_key_add(log, "s", 1, K1, sizeof K1), 0, "the same key again");
    cr_expect_eq(ulog_key_add(log, "s", 1, K2, sizeof K2), ULOG_EEXIST);
    cr_expect_eq(ulog_key_add(log, "t", 1, K2, sizeof K2), 0, "ids are per topic");
    cr_expect_eq(ulog_key_remove(log, "s", 2), ULOG_ENOENT);
    cr_expect_eq(ulog_key_remove(log, NULL, 1), ULOG_EINVAL);
    cr_expect_eq(ulog_key_remove(log, "s", 1), 0);
    cr_expect_eq(ulog_key_remove(log, "s", 1), ULOG_ENOENT);
    cr_expect_eq(ulog_key_add(log, "s", 1, K2, sizeof K2), 0, "a removed id can come back");
    cr_expect_str_eq(ulog_errname(ULOG_ENOKEY), "ULOG_ENOKEY");
    ulog_close(log);
}

/* Replication copies sealed batches as they are: the follower reads them
 * with the same keys, and without them gets ULOG_ENOKEY. */
Test(crypt, replicated_batches_stay_sealed)
{
    ulog *lead = open_encrypted(root, 1, NULL, NULL);
    append_recs(lead, 0, 20, 0);
    char fdir[400];
    snprintf(fdir, sizeof fdir, "%s/follower", root);
    ulog *foll = open_with_topic(fdir, NULL, "s", 1, cfg_of("encryption.key.id", "1", NULL));
    ulog_sub *s = from_start(lead);
    ulog_batch bt = ULOG_BATCH_INIT;
    int rc;
    while ((rc = ulog_poll_batch(s, 0, &bt)) == 0)
        cr_assert_eq(ulog_append_raw(foll, "s", bt.partition, bt.base_offset, bt.data, bt.len), 0);
    cr_assert_eq(rc, ULOG_ETIMEDOUT);
    ulog_sub_close(s);
    ulog_sub *fs = from_start(foll);
    ulog_msg m;
    cr_expect_eq(ulog_poll(fs, 0, &m), ULOG_ENOKEY);
    cr_assert_eq(ulog_key_add(foll, "s", 1, K1, sizeof K1), 0);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(ulog_poll(fs, 0, &m), 0, "record %d", i);
        expect_rec(&m, i);
    }
    ulog_sub_close(fs);
    ulog_close(foll);
    ulog_close(lead);
}

/* An encrypted topic takes sealed values only: a batch of a plain topic is
 * refused whole, and nothing is stored. */
Test(crypt, replicated_plain_values_are_refused)
{
    char pdir[400];
    snprintf(pdir, sizeof pdir, "%s/plain", root);
    ulog *plain = open_with_topic(pdir, NULL, "s", 1, NULL);
    append_batch(plain, 20, 3);
    ulog_sub *s = from_start(plain);
    ulog_batch bt = ULOG_BATCH_INIT;
    cr_assert_eq(ulog_poll_batch(s, 0, &bt), 0);
    ulog *enc = open_encrypted(root, 1, NULL, NULL);
    cr_expect_eq(ulog_append_raw(enc, "s", 0, 0, bt.data, bt.len), ULOG_EINVAL);
    char msg[256];
    ulog_errmsg(enc, msg, sizeof msg);
    cr_expect(strstr(msg, "not sealed") != NULL, "message: %s", msg);
    int64_t lo, hi;
    watermarks(enc, "s", 0, &lo, &hi);
    cr_expect_eq(hi, 0);
    ulog_sub_close(s);
    ulog_close(enc);
    ulog_close(plain);
}

/* A batch whose first record does not open: once the key is there, the
 * whole batch comes, that record first (nothing of it skipped). */
Test(crypt, a_record_that_failed_comes_with_the_rest_of_its_batch)
{
    ulog *w = open_encrypted(root, 1, NULL, NULL);
    append_batch(w, 0, 8);
    ulog *rd = open_at(root, NULL);
    ulog_sub *s = NULL;
    ulog_config *c = cfg_of("auto.offset.reset", "earliest", NULL);
    cr_assert_eq(ulog_subscribe(rd, "s", "readers", c, &s), 0);
    ulog_config_free(c);
    ulog_msg m;
    cr_expect_eq(ulog_poll(s, 0, &m), ULOG_ENOKEY);
    cr_assert_eq(ulog_commit(s), 0);
    int64_t pos;
    cr_assert_eq(ulog_position(s, 0, &pos), 0);
    cr_expect_eq(pos, 0, "the failed record is not passed");
    cr_assert_eq(ulog_key_add(rd, "s", 1, K1, sizeof K1), 0);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(ulog_poll(s, 0, &m), 0, "record %d", i);
        cr_assert_eq(m.offset, i);
        expect_rec(&m, i);
    }
    ulog_sub_close(s);
    ulog_close(rd);
    ulog_close(w);
}

/* Compaction rewrites batches around the values: they still open. */
Test(crypt, compaction_keeps_values_opening)
{
    ulog *log = open_encrypted(root, 1, "segment.bytes", "4096");
    char v[64];
    for (int i = 0; i < 400; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i % 10);
        snprintf(v, sizeof v, SECRET " %d", i);
        ulog_record r = { .key = k, .key_len = strlen(k), .value = v, .value_len = strlen(v),
                          .timestamp = 1700000000000LL + i, .partition = 0 };
        append_ok(log, "s", &r, 1);
    }
    ulog_config *c = cfg_of("cleanup.policy", "compact", NULL);
    cr_assert_eq(ulog_topic_alter(log, "s", c), 0);
    ulog_config_free(c);
    cr_assert_eq(ulog_clean(log, "s", ULOG_CLEAN_COMPACT, NULL, NULL), 0);
    ulog_sub *s = from_start(log);
    ulog_msg m;
    int got = 0, rc;
    while ((rc = ulog_poll(s, 0, &m)) == 0) {
        snprintf(v, sizeof v, SECRET " %lld", (long long)m.offset);
        cr_assert(m.value_len == strlen(v) && memcmp(m.value, v, m.value_len) == 0,
                  "offset %lld", (long long)m.offset);
        got++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "%s", ulog_errname(rc));
    cr_expect_lt(got, 400, "compaction removed nothing");
    cr_expect_geq(got, 10);
    ulog_sub_close(s);
    ulog_close(log);
}

/* A forked child seals with nonces of its own: the parent's thread state
 * (prefix and counter) is not reused after fork. */
Test(crypt, no_nonce_twice_across_a_fork)
{
    ulog *log = open_encrypted(root, 1, NULL, NULL);
    append_recs(log, 0, 1, 0);      /* the parent's nonce state exists */
    pid_t pid = quiet_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        ulog *c = NULL;
        int rc = ulog_open(root, NULL, &c);
        if (!rc)
            rc = ulog_key_add(c, "s", 1, K1, sizeof K1);
        for (int i = 1; !rc && i < 6; i++) {
            rec b;
            make(&b, i, 0);
            rc = ulog_append(c, "s", &b.r, 1);
            free(b.big);
        }
        ulog_close(c);
        _exit(rc ? 1 : 0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    append_recs(log, 6, 11, 0);
    ulog_close(log);
    /* Every sealed value's nonce differs from every other's. */
    size_t len;
    uint8_t *b = slurp_seg(root, &len);
    static const uint8_t hdr[5] = { 1, 0, 0, 0, 1 };
    uint8_t nonces[32][24];
    int n = 0;
    for (size_t i = 0; i + 5 + 24 <= len && n < 32; i++)
        if (memcmp(b + i, hdr, 5) == 0) {
            memcpy(nonces[n++], b + i + 5, 24);
            i += 5 + 24;
        }
    free(b);
    cr_assert_geq(n, 8);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            cr_assert_neq(memcmp(nonces[i], nonces[j], 24), 0, "nonces %d and %d", i, j);
}
