/* test_raw.c -- whole batches out (ulog_poll_batch) and in (ulog_append_raw):
 * a follower fed a leader's batches holds the leader's bytes and records;
 * applying is idempotent, refuses gaps, conflicts and bad batches and
 * changes nothing then. */
#include "testutil.h"

static char dir[4096];
SCRATCH_SUITE(raw, dir);

static char lead_dir[4200], foll_dir[4200];

static ulog *open_pair(ulog **foll, ulog_config *topic_cfg_lead, ulog_config *topic_cfg_foll)
{
    snprintf(lead_dir, sizeof lead_dir, "%s/leader", dir);
    snprintf(foll_dir, sizeof foll_dir, "%s/follower", dir);
    *foll = open_with_topic(foll_dir, NULL, "t", 2, topic_cfg_foll);
    return open_with_topic(lead_dir, NULL, "t", 2, topic_cfg_lead);
}

/* Appends n records to partition part in batches of up to 7: keys, null
 * and empty values, headers, explicit timestamps. */
static void fill(ulog *log, int32_t part, int n, int seed)
{
    char keys[7][16], vals[7][64];
    ulog_header hd[2] = { { "h", 1, "v", 1 }, { "trace", 5, NULL, 0 } };
    for (int i = 0; i < n;) {
        ulog_record r[7];
        int k = 0;
        for (; k < 7 && i < n; k++, i++) {
            memset(&r[k], 0, sizeof r[k]);
            snprintf(keys[k], sizeof keys[k], "k%d", (i * 7 + seed) % 13);
            int vl = snprintf(vals[k], sizeof vals[k], "value %d of seed %d", i, seed);
            r[k].key = keys[k];
            r[k].key_len = strlen(keys[k]);
            r[k].value = i % 11 == 5 ? NULL : vals[k];
            r[k].value_len = i % 11 == 5 ? 0 : (size_t)(i % 11 == 6 ? 0 : vl);
            r[k].headers = i % 3 ? hd : NULL;
            r[k].header_count = i % 3 ? 2 : 0;
            r[k].timestamp = 1700000000000 + i * 10 + seed;
            r[k].partition = part;
        }
        append_ok(log, "t", r, (size_t)k);
    }
}

/* Ships every batch of the leader's topic to the follower; returns how many. */
static int ship_all(ulog *lead, ulog *foll)
{
    ulog_sub *s = sub_earliest(lead, "t");
    ulog_batch b = ULOG_BATCH_INIT;
    int n = 0, rc;
    while ((rc = ulog_poll_batch(s, 0, &b)) == 0) {
        char msg[512];
        rc = ulog_append_raw(foll, "t", b.partition, b.base_offset, b.data, b.len);
        ulog_errmsg(foll, msg, sizeof msg);
        cr_assert_eq(rc, 0, "append_raw %d@%lld: %s (%s)", (int)b.partition,
                     (long long)b.base_offset, ulog_errname(rc), msg);
        n++;
    }
    cr_assert_eq(rc, ULOG_ETIMEDOUT, "poll_batch: %s", ulog_errname(rc));
    ulog_sub_close(s);
    return n;
}

/* The bytes of every segment of a partition, in offset order. */
static size_t part_bytes(const char *root, int32_t part, uint8_t **out)
{
    char pd[4300];
    part_dir(pd, sizeof pd, root, "t", part);
    DIR *d = opendir(pd);
    cr_assert_not_null(d, "%s", pd);
    char *names[256];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (is_segment_name(e->d_name)) {
            cr_assert_lt(n, 256);
            names[n++] = strdup(e->d_name);
        }
    closedir(d);
    /* Names are 20-digit offsets: byte order is offset order. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *x = names[j];
            names[j] = names[j - 1];
            names[j - 1] = x;
        }
    size_t len = 0;
    uint8_t *buf = NULL;
    for (size_t i = 0; i < n; i++) {
        char p[4600];
        snprintf(p, sizeof p, "%s/%s", pd, names[i]);
        int fd = open(p, O_RDONLY);
        cr_assert_geq(fd, 0);
        /* The batches, not the zeros an always topic's file runs ahead. */
        size_t size = (size_t)seg_data_bytes(p);
        buf = realloc(buf, len + size + 1);
        cr_assert_eq(read(fd, buf + len, size), (ssize_t)size);
        len += size;
        close(fd);
        free(names[i]);
    }
    *out = buf;
    return len;
}

static void expect_same_bytes(int32_t part)
{
    uint8_t *a, *b;
    size_t la = part_bytes(lead_dir, part, &a), lb = part_bytes(foll_dir, part, &b);
    cr_assert_gt(la, 0);
    cr_assert_eq(lb, la, "partition %d: follower %zu bytes, leader %zu", (int)part, lb, la);
    cr_assert_eq(memcmp(a, b, la), 0, "partition %d: the bytes differ", (int)part);
    free(a);
    free(b);
}

/* Every record of both logs, field by field. */
static void expect_same_records(ulog *lead, ulog *foll)
{
    ulog_sub *a = sub_earliest(lead, "t"), *b = sub_earliest(foll, "t");
    ulog_msg ma, mb;
    int n = 0, ra, rb;
    while ((ra = ulog_poll(a, 0, &ma)) == 0) {
        cr_assert_eq(rb = ulog_poll(b, 0, &mb), 0, "record %d: %s", n, ulog_errname(rb));
        cr_assert_eq(ma.partition, mb.partition);
        cr_assert_eq(ma.offset, mb.offset);
        cr_assert_eq(ma.timestamp, mb.timestamp);
        cr_assert_eq(ma.key_len, mb.key_len);
        cr_assert_eq(memcmp(ma.key, mb.key, ma.key_len), 0);
        cr_assert_eq(ma.value == NULL, mb.value == NULL);
        cr_assert_eq(ma.value_len, mb.value_len);
        cr_assert(ma.value_len == 0 || memcmp(ma.value, mb.value, ma.value_len) == 0);
        cr_assert_eq(ma.header_count, mb.header_count);
        for (size_t h = 0; h < ma.header_count; h++) {
            ulog_header ha, hb;
            cr_assert_eq(ulog_msg_header(&ma, h, &ha), 0);
            cr_assert_eq(ulog_msg_header(&mb, h, &hb), 0);
            cr_assert_eq(ha.key_len, hb.key_len);
            cr_assert_eq(ha.value == NULL, hb.value == NULL);
        }
        n++;
    }
    cr_assert_eq(ra, ULOG_ETIMEDOUT);
    cr_assert_eq(ulog_poll(b, 0, &mb), ULOG_ETIMEDOUT, "the follower has more");
    cr_assert_gt(n, 0);
    ulog_sub_close(a);
    ulog_sub_close(b);
}

static void expect_high(ulog *log, int32_t part, int64_t want)
{
    int64_t lo, hi;
    watermarks(log, "t", part, &lo, &hi);
    cr_assert_eq(hi, want, "partition %d: high %lld, want %lld", (int)part, (long long)hi,
                 (long long)want);
}

Test(raw, follower_holds_the_leaders_bytes_and_records)
{
    ulog *foll;
    /* Small segments on both sides, different sizes: rolls at other places
     * do not change the bytes of the log. */
    ulog *lead = open_pair(&foll, cfg_of("segment.bytes", "4096", NULL),
                           cfg_of("segment.bytes", "5000", NULL));
    fill(lead, 0, 600, 1);
    fill(lead, 1, 45, 2);
    int n = ship_all(lead, foll);
    cr_assert_eq(n, 86 + 7, "batches shipped");
    expect_same_bytes(0);
    expect_same_bytes(1);
    expect_same_records(lead, foll);
    expect_high(foll, 0, 600);
    expect_high(foll, 1, 45);

    /* More later, shipped from where the follower is: both stay equal. */
    fill(lead, 0, 20, 3);
    ulog_sub *s = sub_earliest(lead, "t");
    cr_assert_eq(ulog_seek(s, 0, 600), 0);
    cr_assert_eq(ulog_seek(s, 1, 45), 0);
    ulog_batch b = ULOG_BATCH_INIT;
    int k = 0;
    while (ulog_poll_batch(s, 0, &b) == 0) {
        cr_assert_eq(ulog_append_raw(foll, "t", b.partition, b.base_offset, b.data, b.len), 0);
        k++;
    }
    cr_assert_eq(k, 3);
    ulog_sub_close(s);
    expect_same_bytes(0);
    expect_same_records(lead, foll);
    ulog_close(lead);
    ulog_close(foll);

    /* And after both reopen. */
    lead = open_at(lead_dir, NULL);
    foll = open_at(foll_dir, NULL);
    expect_same_records(lead, foll);
    ulog_close(lead);
    ulog_close(foll);
}

Test(raw, poll_batch_fields_and_position)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, NULL);
    fill(lead, 0, 20, 1);          /* batches [0,7) [7,14) [14,20) */
    ulog_sub *s = sub_earliest(lead, "t");
    ulog_batch b = ULOG_BATCH_INIT;
    cr_assert_eq(ulog_poll_batch(s, 0, &b), 0);
    cr_expect_eq(b.partition, 0);
    cr_expect_eq(b.base_offset, 0);
    cr_expect_eq(b.last_offset, 6);
    cr_expect_eq(b.record_count, 7);
    cr_expect_eq(b.max_timestamp, 1700000000000 + 6 * 10 + 1);
    ulog__batch_hdr h;
    cr_assert_eq(ulog__batch_verify(b.data, b.len, &h), 0, "a whole, valid batch");
    cr_expect_eq((size_t)h.batch_length + 12, b.len);
    int64_t pos;
    cr_assert_eq(ulog_position(s, 0, &pos), 0);
    cr_expect_eq(pos, 7, "the position moves past the batch");

    /* Inside a batch, after records taken one at a time: the whole batch. */
    ulog_msg m;
    cr_assert_eq(ulog_poll(s, 0, &m), 0);
    cr_assert_eq(m.offset, 7);
    cr_assert_eq(ulog_poll_batch(s, 0, &b), 0);
    cr_expect_eq(b.base_offset, 7, "the batch holding the position, whole");
    cr_assert_eq(ulog_seek(s, 0, 16), 0);
    cr_assert_eq(ulog_poll_batch(s, 0, &b), 0);
    cr_expect_eq(b.base_offset, 14);
    cr_expect_eq(b.last_offset, 19);
    cr_assert_eq(ulog_poll(s, 0, &m), ULOG_ETIMEDOUT, "nothing after the last batch");
    cr_assert_eq(ulog_poll_batch(s, 0, &b), ULOG_ETIMEDOUT);
    cr_assert_eq(ulog_poll_batch(s, 30, &b), ULOG_ETIMEDOUT);

    ulog_batch small = ULOG_BATCH_INIT;
    small.struct_size = sizeof small - 1;
    cr_expect_eq(ulog_poll_batch(s, 0, &small), ULOG_EINVAL);
    cr_expect_eq(ulog_poll_batch(s, 0, NULL), ULOG_EINVAL);
    cr_expect_eq(ulog_poll_batch(NULL, 0, &b), ULOG_EINVAL);
    ulog_sub_close(s);
    ulog_close(lead);
    ulog_close(foll);
}

static void *append_later(void *arg)
{
    sleep_ms(100);
    fill(arg, 1, 3, 9);
    return NULL;
}

Test(raw, poll_batch_waits_for_one)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, NULL);
    ulog_sub *s = sub_earliest(lead, "t");
    pthread_t thr;
    cr_assert_eq(pthread_create(&thr, NULL, append_later, lead), 0);
    ulog_batch b = ULOG_BATCH_INIT;
    int rc = ulog_poll_batch(s, 10000, &b);
    cr_assert_eq(rc, 0, "%s", ulog_errname(rc));
    cr_expect_eq(b.partition, 1);
    cr_expect_eq(b.record_count, 3);
    pthread_join(thr, NULL);
    ulog_sub_close(s);
    ulog_close(lead);
    ulog_close(foll);
}

/* The batches of partition 0 of the leader, copied out. */
typedef struct shipped {
    uint8_t *data[128];
    size_t   len[128];
    int64_t  base[128];
    int      n;
} shipped;

static void take_batches(ulog *lead, shipped *out)
{
    ulog_sub *s = sub_earliest(lead, "t");
    ulog_batch b = ULOG_BATCH_INIT;
    out->n = 0;
    while (ulog_poll_batch(s, 0, &b) == 0) {
        if (b.partition != 0)
            continue;
        cr_assert_lt(out->n, 128);
        out->data[out->n] = malloc(b.len);
        memcpy(out->data[out->n], b.data, b.len);
        out->len[out->n] = b.len;
        out->base[out->n] = b.base_offset;
        out->n++;
    }
    ulog_sub_close(s);
}

static void free_batches(shipped *sh)
{
    for (int i = 0; i < sh->n; i++)
        free(sh->data[i]);
}

static int apply(ulog *foll, shipped *sh, int i)
{
    return ulog_append_raw(foll, "t", 0, sh->base[i], sh->data[i], sh->len[i]);
}

Test(raw, idempotent_gaps_and_conflicts)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, NULL);
    fill(lead, 0, 30, 1);          /* 5 batches: 0 7 14 21 28 */
    shipped sh;
    take_batches(lead, &sh);
    cr_assert_eq(sh.n, 5);

    /* A gap: the follower is empty, the batch starts at 7. */
    cr_expect_eq(apply(foll, &sh, 1), ULOG_EOFFSET);
    char msg[512];
    ulog_errmsg(foll, msg, sizeof msg);
    cr_expect_neq(strstr(msg, "gap"), NULL, "%s", msg);
    expect_high(foll, 0, 0);

    cr_assert_eq(apply(foll, &sh, 0), 0);
    cr_assert_eq(apply(foll, &sh, 1), 0);
    expect_high(foll, 0, 14);
    /* Again, and an earlier one again: nothing changes. */
    cr_expect_eq(apply(foll, &sh, 1), 0);
    cr_expect_eq(apply(foll, &sh, 0), 0);
    expect_high(foll, 0, 14);
    cr_expect_eq(apply(foll, &sh, 3), ULOG_EOFFSET, "a gap of one batch");

    /* Other bytes at a stored offset: a batch of another leader. */
    ulog_record r = { .key = "x", .key_len = 1, .value = "other", .value_len = 5,
                      .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 };
    ulog *other = open_with_topic(dir, NULL, "t", 1, NULL);
    for (int i = 0; i < 7; i++)
        append_ok(other, "t", &r, 1);
    append_ok(other, "t", (ulog_record[]){ r, r, r, r, r, r, r }, 7);
    ulog_sub *os = sub_earliest(other, "t");
    ulog_batch ob = ULOG_BATCH_INIT;
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ulog_poll_batch(os, 0, &ob), 0);
    cr_assert_eq(ob.base_offset, 7);
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 7, ob.data, ob.len), ULOG_ECONFLICT);
    /* A batch of the other log that starts inside a stored batch. */
    cr_assert_eq(ulog_seek(os, 0, 3), 0);
    cr_assert_eq(ulog_poll_batch(os, 0, &ob), 0);
    cr_assert_eq(ob.base_offset, 3);
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 3, ob.data, ob.len), ULOG_ECONFLICT);
    ulog_sub_close(os);
    ulog_close(other);
    expect_high(foll, 0, 14);

    /* The rest still goes on, and the follower equals the leader. */
    for (int i = 2; i < 5; i++)
        cr_assert_eq(apply(foll, &sh, i), 0);
    fill(lead, 1, 1, 1);
    ulog_sub *s = sub_earliest(lead, "t");
    ulog_batch b = ULOG_BATCH_INIT;
    while (ulog_poll_batch(s, 0, &b) == 0)
        if (b.partition == 1)
            cr_assert_eq(ulog_append_raw(foll, "t", 1, b.base_offset, b.data, b.len), 0);
    ulog_sub_close(s);
    expect_same_bytes(0);
    expect_same_records(lead, foll);
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

/* Bad input of every kind: a clear error, and the follower unchanged. */
Test(raw, bad_batches_change_nothing)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, cfg_of("max.message.bytes", "200", NULL));
    fill(lead, 0, 1, 1);
    fill(lead, 0, 14, 2);
    shipped sh;
    take_batches(lead, &sh);
    cr_assert_eq(sh.n, 3);
    uint8_t *b0 = sh.data[0];
    size_t l0 = sh.len[0];
    uint8_t buf[4096];
    cr_assert_lt(l0, sizeof buf);

    cr_expect_eq(ulog_append_raw(NULL, "t", 0, 0, b0, l0), ULOG_EINVAL);
    cr_expect_eq(ulog_append_raw(foll, NULL, 0, 0, b0, l0), ULOG_EINVAL);
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 0, NULL, l0), ULOG_EINVAL);
    cr_expect_eq(ulog_append_raw(foll, "t", 0, -1, b0, l0), ULOG_EINVAL);
    cr_expect_eq(ulog_append_raw(foll, "t", 2, 0, b0, l0), ULOG_EINVAL, "no partition 2");
    cr_expect_eq(ulog_append_raw(foll, "nosuch", 0, 0, b0, l0), ULOG_ENOENT);
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 5, b0, l0), ULOG_EINVAL, "not its baseOffset");
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 0, b0, 0), ULOG_ECORRUPT);
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 0, b0, l0 - 1), ULOG_ECORRUPT, "cut short");
    memcpy(buf, b0, l0);
    buf[l0] = 0;
    cr_expect_eq(ulog_append_raw(foll, "t", 0, 0, buf, l0 + 1), ULOG_ECORRUPT, "a byte more");
    /* Every bit of the batch but those of baseOffset and
     * partitionLeaderEpoch, which the CRC does not cover. */
    for (size_t i = 16 * 8; i < l0 * 8; i++) {
        memcpy(buf, b0, l0);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        int rc = ulog_append_raw(foll, "t", 0, 0, buf, l0);
        cr_assert(rc == ULOG_ECORRUPT || rc == ULOG_ENOTSUP || rc == ULOG_EINVAL,
                  "bit %zu flipped: %s", i, ulog_errname(rc));
    }
    /* Offsets that would run past INT64_MAX (baseOffset is outside the
     * CRC): refused before anything is looked up or written. */
    memcpy(buf, b0, l0);
    int64_t top = INT64_MAX;            /* batch 0 holds one record: its end overflows */
    for (int k = 0; k < 8; k++)
        buf[k] = (uint8_t)((uint64_t)top >> (56 - 8 * k));
    cr_expect_eq(ulog_append_raw(foll, "t", 0, top, buf, l0), ULOG_EOFFSET, "at INT64_MAX");
    char msg[512];
    ulog_errmsg(foll, msg, sizeof msg);
    cr_expect_neq(strstr(msg, "past the largest"), NULL, "%s", msg);
    /* Compressed, transactional, control: refused once the CRC is right. */
    static const uint16_t attrs[] = { 0x01, 0x10, 0x20 };
    for (size_t a = 0; a < 3; a++) {
        memcpy(buf, b0, l0);
        buf[22] |= (uint8_t)attrs[a];
        uint32_t crc = ulog__crc32c(0, buf + 21, l0 - 21);
        buf[17] = (uint8_t)(crc >> 24);
        buf[18] = (uint8_t)(crc >> 16);
        buf[19] = (uint8_t)(crc >> 8);
        buf[20] = (uint8_t)crc;
        cr_expect_eq(ulog_append_raw(foll, "t", 0, 0, buf, l0), ULOG_ENOTSUP,
                     "attributes 0x%x", attrs[a]);
    }
    /* Larger than the follower's max.message.bytes. */
    cr_assert_gt(sh.len[1], 200);
    cr_assert_eq(apply(foll, &sh, 0), 0);
    cr_expect_eq(apply(foll, &sh, 1), ULOG_ETOOBIG);
    expect_high(foll, 0, 1);
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

Test(raw, compacted_topic_needs_keys)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, cfg_of("cleanup.policy", "compact", NULL));
    ulog_record r = { .key = NULL, .value = "v", .value_len = 1,
                      .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 };
    append_ok(lead, "t", &r, 1);
    fill(lead, 0, 3, 1);
    shipped sh;
    take_batches(lead, &sh);
    cr_assert_eq(sh.n, 2);
    cr_expect_eq(apply(foll, &sh, 0), ULOG_EINVAL, "a null key on a compacted topic");
    expect_high(foll, 0, 0);
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

/* flush.policy always on the follower: committed (readable) on return. */
Test(raw, always_commits_before_returning)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, cfg_of("flush.policy", "always", NULL));
    fill(lead, 0, 21, 1);
    shipped sh;
    take_batches(lead, &sh);
    for (int i = 0; i < sh.n; i++) {
        cr_assert_eq(apply(foll, &sh, i), 0);
        expect_high(foll, 0, sh.base[i] + 7);
        cr_assert_eq(apply(foll, &sh, i), 0, "again");
    }
    expect_same_bytes(0);
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

Test(raw, below_the_log_start)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, cfg_of("segment.bytes", "4096", NULL));
    fill(lead, 0, 600, 1);
    shipped sh;
    take_batches(lead, &sh);
    for (int i = 0; i < sh.n; i++)
        cr_assert_eq(apply(foll, &sh, i), 0);
    int rc = ulog_delete_records(foll, "t", 0, 300);
    cr_assert_eq(rc, 0, "%s", ulog_errname(rc));
    cr_expect_eq(apply(foll, &sh, 0), ULOG_EOFFSET, "below the log start");
    cr_expect_eq(apply(foll, &sh, sh.n - 1), 0, "at the end: still the same bytes");
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

/* Batches compaction rewrote skip offsets. A follower takes them as they
 * are, gaps and all, whether its own topic is compacted or not; after a
 * recovery scan (its head gone, as after a reboot) it still has every one:
 * the bound below which gaps are read as such was made durable first. */
Test(raw, compacted_history_is_copied)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, cfg_of("cleanup.policy", "compact", "segment.bytes", "4096",
                                         NULL),
                           NULL);
    for (int i = 0; i < 400; i++) {
        char key[8], val[32];
        snprintf(key, sizeof key, "k%d", i % 4);
        int vl = snprintf(val, sizeof val, "value %d", i);
        ulog_record r[2] = {
            { .key = key, .key_len = strlen(key), .value = val, .value_len = (size_t)vl,
              .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 },
            { .key = "k9", .key_len = 2, .value = val, .value_len = (size_t)vl,
              .timestamp = ULOG_TIMESTAMP_NOW, .partition = 0 },
        };
        append_ok(lead, "t", r, 2);
    }
    int rc = ulog_clean(lead, "t", ULOG_CLEAN_COMPACT, NULL, NULL);
    cr_assert_eq(rc, 0, "%s", ulog_errname(rc));
    shipped sh;
    take_batches(lead, &sh);
    int gapped = 0, last_gapped = -1;
    for (int i = 0; i < sh.n; i++) {
        ulog__batch_hdr h;
        cr_assert_eq(ulog__batch_parse_header(sh.data[i], sh.len[i], &h), 0);
        if (h.record_count < h.last_offset_delta + 1) {
            gapped++;
            last_gapped = i;
        }
    }
    cr_assert_gt(gapped, 0, "compaction left no batch with fewer records than offsets");
    /* One that would leave a gap is refused and moves no bound: the
     * catalog's, which a recovery would use, stays where it was too. */
    cr_assert_gt(last_gapped, 0);
    cr_expect_eq(apply(foll, &sh, last_gapped), ULOG_EOFFSET);
    ulog__head *fh = head_map_at(foll_dir, "t", 0);
    cr_expect_eq(__atomic_load_n(&fh->compacted, __ATOMIC_ACQUIRE), 0);
    head_unmap(fh);
    ulog__topic_rec rec;
    ulog__part_state ps;
    cr_assert_eq(ulog__meta_topic_get(foll->meta, "t", &rec), 0);
    rc = ulog__meta_part_state_get(foll->meta, rec.id, 0, &ps);
    cr_expect(rc == ULOG_ENOENT || (rc == 0 && ps.rewritten == 0), "rewritten moved");
    for (int i = 0; i < sh.n; i++) {
        char msg[512];
        rc = apply(foll, &sh, i);
        ulog_errmsg(foll, msg, sizeof msg);
        cr_assert_eq(rc, 0, "batch %d: %s (%s)", i, ulog_errname(rc), msg);
        cr_assert_eq(apply(foll, &sh, i), 0, "batch %d again", i);
    }
    expect_high(foll, 0, 800);
    expect_same_bytes(0);
    expect_same_records(lead, foll);

    ulog_close(foll);
    delete_heads(foll_dir, "t", 2, NULL);
    foll = open_at(foll_dir, NULL);
    expect_high(foll, 0, 800);
    expect_same_bytes(0);
    expect_same_records(lead, foll);
    rc = ulog_verify(foll, "t", NULL, NULL, NULL);
    cr_expect_eq(rc, 0, "verify: %s", ulog_errname(rc));
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

/* ---------------------------------------------------------------- start_at */

static void expect_low_high(ulog *log, int32_t part, int64_t lo_want, int64_t hi_want)
{
    int64_t lo, hi;
    watermarks(log, "t", part, &lo, &hi);
    cr_assert(lo == lo_want && hi == hi_want, "partition %d: [%lld, %lld), want [%lld, %lld)",
              (int)part, (long long)lo, (long long)hi, (long long)lo_want, (long long)hi_want);
}

/* The segment files of a partition. */
static int count_segments(const char *root, int32_t part)
{
    char pd[4300];
    part_dir(pd, sizeof pd, root, "t", part);
    DIR *d = opendir(pd);
    cr_assert_not_null(d, "%s", pd);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += is_segment_name(e->d_name);
    closedir(d);
    return n;
}

/* As after a power cut that also lost the catalog's checkpoint: every
 * segment is scanned again. */
static ulog *reboot(const char *root, ulog *log)
{
    ulog_close(log);
    delete_heads(root, "t", 2, false);
    log = open_at(root, NULL);
    ulog__topic_rec rec;
    cr_assert_eq(ulog__meta_topic_get(log->meta, "t", &rec), 0);
    cr_assert_eq(ulog__meta_truncate(log->meta, rec.id, 0, 0), 0);
    ulog_close(log);
    return open_at(root, NULL);
}

/* A leader whose log start DeleteRecords moved past 0: an empty follower
 * cannot take its first batch, starts where it begins, and then holds
 * what the leader holds, across a reboot too. */
Test(raw, follower_starts_at_the_leaders_log_start)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, cfg_of("segment.bytes", "4096", NULL), NULL);
    fill(lead, 0, 700, 1);
    /* 301 = 43 batches of 7: where a batch begins. */
    cr_assert_eq(ulog_delete_records(lead, "t", 0, 301), 0);
    shipped sh;
    take_batches(lead, &sh);
    cr_assert_eq(sh.base[0], 301);
    cr_expect_eq(apply(foll, &sh, 0), ULOG_EOFFSET, "a gap before it");
    expect_low_high(foll, 0, 0, 0);
    int rc = ulog_partition_start_at(foll, "t", 0, sh.base[0]);
    cr_assert_eq(rc, 0, "start_at: %s", ulog_errname(rc));
    expect_low_high(foll, 0, 301, 301);
    for (int i = 0; i < sh.n; i++)
        cr_assert_eq(apply(foll, &sh, i), 0, "batch %d", i);
    expect_low_high(foll, 0, 301, 700);
    expect_same_records(lead, foll);
    foll = reboot(foll_dir, foll);
    expect_low_high(foll, 0, 301, 700);
    expect_same_records(lead, foll);
    cr_expect_eq(ulog_verify(foll, "t", NULL, NULL, NULL), 0);
    free_batches(&sh);
    ulog_close(lead);
    ulog_close(foll);
}

/* Bad calls change nothing; a good one takes every record of the
 * partition (only), readers and appenders go on from the new start, and
 * so does a reopen after a reboot. */
Test(raw, start_at_empties_the_partition)
{
    snprintf(lead_dir, sizeof lead_dir, "%s/one", dir);
    ulog *log = open_with_topic(lead_dir, NULL, "t", 2, cfg_of("segment.bytes", "4096", NULL));
    fill(log, 0, 300, 1);
    fill(log, 1, 10, 2);
    ulog_sub *old = sub_earliest(log, "t");
    cr_assert_eq(ulog_seek(old, 0, 50), 0);

    cr_expect_eq(ulog_partition_start_at(NULL, "t", 0, 400), ULOG_EINVAL);
    cr_expect_eq(ulog_partition_start_at(log, NULL, 0, 400), ULOG_EINVAL);
    cr_expect_eq(ulog_partition_start_at(log, "nosuch", 0, 400), ULOG_ENOENT);
    cr_expect_eq(ulog_partition_start_at(log, "t", 2, 400), ULOG_EINVAL);
    cr_expect_eq(ulog_partition_start_at(log, "t", -1, 400), ULOG_EINVAL);
    cr_expect_eq(ulog_partition_start_at(log, "t", 0, -1), ULOG_EOFFSET);
    cr_expect_eq(ulog_partition_start_at(log, "t", 0, 299), ULOG_EOFFSET, "below the end");
    char msg[512];
    ulog_errmsg(log, msg, sizeof msg);
    cr_expect_neq(strstr(msg, "below the end"), NULL, "%s", msg);
    cr_expect_eq(ulog_partition_start_at(log, "t", 0, INT64_MAX), ULOG_EOFFSET,
                 "no room for a batch above it");
    expect_low_high(log, 0, 0, 300);
    int segs = count_segments(lead_dir, 0);
    cr_assert_gt(segs, 2);

    cr_assert_eq(ulog_partition_start_at(log, "t", 0, 1000), 0);
    expect_low_high(log, 0, 1000, 1000);
    expect_low_high(log, 1, 0, 10);
    cr_expect_eq(count_segments(lead_dir, 0), 1, "the old segments are gone");
    cr_expect_eq(ulog_partition_start_at(log, "t", 0, 1000), 0, "again: nothing to do");
    expect_low_high(log, 0, 1000, 1000);
    /* At the end of a partition with records: they go, the end stays. */
    cr_assert_eq(ulog_partition_start_at(log, "t", 1, 10), 0);
    expect_low_high(log, 1, 10, 10);
    fill(log, 1, 1, 5);
    expect_low_high(log, 1, 10, 11);

    fill(log, 0, 5, 3);
    expect_low_high(log, 0, 1000, 1005);
    /* The subscription at 50 follows its auto.offset.reset (earliest). */
    ulog_msg m;
    int n0 = 0, rc;
    while ((rc = ulog_poll(old, 0, &m)) == 0)
        if (m.partition == 0) {
            cr_assert_eq(m.offset, 1000 + n0, "offset %lld", (long long)m.offset);
            n0++;
        }
    cr_assert_eq(rc, ULOG_ETIMEDOUT);
    cr_expect_eq(n0, 5);
    ulog_sub_close(old);

    log = reboot(lead_dir, log);
    expect_low_high(log, 0, 1000, 1005);
    expect_low_high(log, 1, 10, 11);
    fill(log, 0, 2, 4);
    expect_low_high(log, 0, 1000, 1007);
    cr_expect_eq(ulog_verify(log, "t", NULL, NULL, NULL), 0);
    ulog_close(log);
}

static int crash_at;

static void crash_step(int step)
{
    if (step == crash_at)
        kill(getpid(), SIGKILL);
}

/* A process killed after each step of a start_at. Before the catalog
 * commits, the partition is as it was; after, it is empty at the new
 * start, whether the next process finds the head (this boot: the next
 * writer repairs it) or not (a reboot: the open does). Either way the
 * appends after land where the partition ends, and a reboot after that
 * keeps them. */
Test(raw, start_at_killed_at_every_step, .timeout = 120)
{
    for (int reboot_first = 0; reboot_first < 2; reboot_first++)
        for (int step = 1; step <= 3; step++) {
            snprintf(lead_dir, sizeof lead_dir, "%s/kill-%d-%d", dir, reboot_first, step);
            ulog *log = open_with_topic(lead_dir, NULL, "t", 2,
                                        cfg_of("segment.bytes", "4096", NULL));
            fill(log, 0, 300, 1);
            ulog_close(log);
            pid_t pid = quiet_fork();
            cr_assert_geq(pid, 0);
            if (pid == 0) {
                child_watchdog(60);
                ulog *cl;
                crash_at = step;
                ulog__start_at_step = crash_step;
                if (ulog_open(lead_dir, NULL, &cl) != 0)
                    _exit(10);
                ulog_partition_start_at(cl, "t", 0, 1000);
                _exit(11);          /* the step never came */
            }
            int st;
            cr_assert_eq(waitpid(pid, &st, 0), pid);
            cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "step %d: the child was not killed there (status %d)", step, st);
            log = open_at(lead_dir, NULL);
            if (reboot_first)
                log = reboot(lead_dir, log);
            /* The next writer repairs a dead one's start_at first. */
            fill(log, 0, 3, 2);
            int64_t lo, hi;
            watermarks(log, "t", 0, &lo, &hi);
            if (step == 1)
                cr_expect(lo == 0 && hi == 303, "step 1: [%lld, %lld), want [0, 303)",
                          (long long)lo, (long long)hi);
            else
                cr_expect(lo == 1000 && hi == 1003, "step %d: [%lld, %lld), want [1000, 1003)",
                          step, (long long)lo, (long long)hi);
            int64_t want_lo = lo, want_hi = hi;
            log = reboot(lead_dir, log);
            expect_low_high(log, 0, want_lo, want_hi);
            ulog_sub *s = sub_earliest(log, "t");
            ulog_msg m;
            int64_t next = want_lo;
            while (ulog_poll(s, 0, &m) == 0)
                if (m.partition == 0)
                    cr_assert_eq(m.offset, next++, "step %d", step);
            cr_expect_eq(next, want_hi, "step %d: read up to %lld", step, (long long)next);
            ulog_sub_close(s);
            cr_expect_eq(count_segments(lead_dir, 0), step == 1 ? 4 : 1,
                         "step %d: %d segments", step, count_segments(lead_dir, 0));
            cr_expect_eq(ulog_verify(log, "t", NULL, NULL, NULL), 0, "step %d: verify", step);
            ulog_close(log);
        }
}

/* A caller built against 0.2 passes the smaller ulog_partition_info: the
 * fields it has are filled, the byte after them is left alone. */
Test(raw, partition_info_of_an_older_size)
{
    ulog *foll;
    ulog *lead = open_pair(&foll, NULL, NULL);
    fill(lead, 0, 10, 1);
    union {
        ulog_partition_info pi;
        uint8_t bytes[sizeof(ulog_partition_info)];
    } u;
    memset(&u, 0xa5, sizeof u);
    u.pi.struct_size = offsetof(ulog_partition_info, replicated);
    cr_assert_eq(ulog_partition_describe(lead, "t", 0, &u.pi), 0);
    cr_expect_eq(u.pi.high, 10);
    cr_expect_eq(u.pi.dirty_bytes, 0, "a 0.2 field is filled");
    for (size_t i = offsetof(ulog_partition_info, replicated); i < sizeof u; i++)
        cr_assert_eq(u.bytes[i], 0xa5, "byte %zu past the caller's struct written", i);
    ulog_close(lead);
    ulog_close(foll);
}
