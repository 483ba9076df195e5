"""test_ulog.py -- tests of the ctypes binding (examples/python/ulog.py).

Run from this directory:  ULOG_LIBRARY=../../build/libulog.so python3 -m unittest -v
(`make check-python` does exactly that). Standard library only.
"""
import glob
import os
import select
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Run straight from a source tree: default to the library `make` built.
if "ULOG_LIBRARY" not in os.environ and os.path.exists(os.path.join(ROOT, "build/libulog.so")):
    os.environ["ULOG_LIBRARY"] = os.path.join(ROOT, "build/libulog.so")
sys.path.insert(0, HERE)
import ulog  # noqa: E402

# Every kind of record the format distinguishes: null vs empty key and
# value, binary bytes with NULs, str, headers with null and empty values,
# repeated header keys, explicit timestamps.
RECORDS = [
    {"key": b"k1", "value": b"v1", "headers": [("h1", b"x"), ("h2", None)], "timestamp": 1000},
    {"key": None, "value": b"no key", "timestamp": 2000},
    {"key": b"tombstone", "value": None, "timestamp": 3000},
    {"key": b"", "value": b"", "headers": [(b"", b"")], "timestamp": 4000},
    {"key": b"\x00bin\xff", "value": bytes(range(256)), "timestamp": 5000},
    {"key": "str key", "value": "caf\u00e9", "headers": [("dup", "a"), ("dup", "b")],
     "timestamp": 6000},
    b"plain value",
]


def as_bytes(v):
    return v.encode() if isinstance(v, str) else v


def expected(rec):
    """What poll must return for one of RECORDS: (key, value, headers)."""
    if not isinstance(rec, dict):
        return None, rec, []
    return (as_bytes(rec.get("key")), as_bytes(rec.get("value")),
            [(as_bytes(k), as_bytes(v)) for k, v in rec.get("headers", [])])


class LogTest(unittest.TestCase):
    """Each test gets a fresh log root in its own temporary directory."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.log = ulog.Log(self.dir)
        self.addCleanup(self.log.close)

    def filled(self, topic="t", partitions=1, n=10, **config):
        """A topic with n records per partition, timestamps 1000, 2000, ..."""
        self.log.create_topic(topic, partitions, config=config)
        for p in range(partitions):
            self.log.append(topic, [{"value": b"p%d-%d" % (p, i), "partition": p,
                                     "timestamp": 1000 * (i + 1)} for i in range(n)])
        return topic

    def drain(self, sub):
        return [(m.partition, m.offset, m.value) for m in sub]


class RoundTrip(LogTest):
    def test_append_and_poll_back_exactly(self):
        self.log.create_topic("t")
        results = self.log.append("t", RECORDS)
        self.assertEqual(results, [(0, i) for i in range(len(RECORDS))])
        self.assertEqual(self.log.watermarks("t", 0), (0, len(RECORDS)))
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            for i, rec in enumerate(RECORDS):
                msg = sub.poll(1000)
                self.assertIsNotNone(msg, "record %d missing" % i)
                self.assertEqual((msg.topic, msg.partition, msg.offset), ("t", 0, i))
                self.assertEqual((msg.key, msg.value, msg.headers), expected(rec))
                if isinstance(rec, dict):
                    self.assertEqual(msg.timestamp, rec["timestamp"])
            now_ms = time.time() * 1000
            self.assertLess(abs(msg.timestamp - now_ms), 60000)   # TIMESTAMP_NOW
            self.assertIsNone(sub.poll(0))

    def test_batches_shipped_to_another_log(self):
        self.log.create_topic("t", 2)
        self.log.append("t", [dict(r, partition=0) if isinstance(r, dict)
                              else {"value": r, "partition": 0} for r in RECORDS])
        self.log.append("t", [{"value": b"x%d" % i, "partition": 1} for i in range(3)])
        self.log.append("t", [{"value": b"y%d" % i, "partition": 1} for i in range(2)])
        with tempfile.TemporaryDirectory() as other, ulog.Log(other) as follower:
            follower.create_topic("t", 2)
            follower.create_topic("u", 2)
            with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
                batches = []
                while True:
                    b = sub.poll_batch(0)
                    if b is None:
                        break
                    batches.append(b)
                    follower.append_raw("t", b)
                    follower.append_raw("t", b)          # again: a no-op
            self.assertEqual(sorted((b.partition, b.base_offset, b.last_offset)
                                    for b in batches), [(0, 0, 6), (1, 0, 2), (1, 3, 4)])
            self.assertEqual(follower.watermarks("t", 0), (0, len(RECORDS)))
            self.assertEqual(follower.watermarks("t", 1), (0, 5))
            later = [b for b in batches if b.base_offset == 3][0]
            with self.assertRaises(ulog.ULOG_EOFFSET):    # a gap
                follower.append_raw("u", later)
            with self.assertRaises(ulog.ULOG_ECONFLICT):  # other bytes at offset 3
                follower.append_raw("t", later._replace(partition=0))
            flipped = bytearray(batches[0].data)
            flipped[-1] ^= 1
            with self.assertRaises(ulog.ULOG_ECORRUPT):
                follower.append_raw("t", batches[0]._replace(data=bytes(flipped)))
            with self.log.subscribe("t", auto_offset_reset="earliest") as a, \
                    follower.subscribe("t", auto_offset_reset="earliest") as b:
                self.assertEqual(sorted(a), sorted(b))

    def test_batch_macs(self):
        self.log.create_topic("t")
        self.log.append("t", [b"a", b"b"])
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            b = sub.poll_batch(0)
        key = bytes(range(32))
        mac = ulog.batch_mac(key, "t", b)
        ulog.batch_mac_verify(key, "t", b, mac)
        with self.assertRaises(ulog.ULOG_EAUTH):
            ulog.batch_mac_verify(key, "t", b._replace(base_offset=1), mac)
        with self.assertRaises(ulog.ULOG_EAUTH):
            ulog.batch_mac_verify(bytes(32), "t", b, mac)
        with self.assertRaises(ulog.ULOG_EINVAL):
            ulog.batch_mac(b"short", "t", b)

    def test_encrypted_topic(self):
        key = bytes(range(ulog.KEY_BYTES))
        self.log.create_topic("s", encryption_key_id=4)
        with self.assertRaises(ulog.ULOG_ENOKEY):
            self.log.append("s", [b"secret"])
        self.log.key_add("s", 4, key)
        self.log.append("s", [b"secret", None])
        with ulog.Log(self.dir) as other:
            with other.subscribe("s", auto_offset_reset="earliest") as sub:
                with self.assertRaises(ulog.ULOG_ENOKEY):
                    sub.poll(0)
                other.key_add("s", 4, bytes(32))
                with self.assertRaises(ulog.ULOG_EAUTH):
                    sub.poll(0)
                other.key_remove("s", 4)
                other.key_add("s", 4, key)
                self.assertEqual(sub.poll(0).value, b"secret")
                self.assertIsNone(sub.poll(0).value)
        with self.assertRaises(ulog.ULOG_EINVAL):
            self.log.key_add("s", -1, key)
        with self.assertRaises(ulog.ULOG_EINVAL):
            self.log.key_add("s", 1, b"short")

    def test_hook_ships_and_acknowledges(self):
        self.log.create_topic("t", 2, flush_policy="none")
        with tempfile.TemporaryDirectory() as other, ulog.Log(other) as follower:
            follower.create_topic("t", 2)
            failed = []

            def ship(batch):
                if not failed:            # the first try fails: it comes again
                    failed.append(batch.base_offset)
                    return False
                follower.append_raw("t", batch)
                return True
            hook = self.log.start_hook("t", "mirror", ship, acks=True)
            res = self.log.append("t", [{"value": b"v%d" % i, "partition": i % 2}
                                        for i in range(6)])
            deadline = time.time() + 20
            while follower.watermarks("t", 0)[1] < 3 or follower.watermarks("t", 1)[1] < 3:
                self.assertLess(time.time(), deadline)
                time.sleep(0.01)
            while self.log.describe_partition("t", 0).replicated < 3:
                self.assertLess(time.time(), deadline)
                time.sleep(0.01)
            hook.stop()
            self.assertEqual(failed, [0])
            self.assertEqual(len(res), 6)
            with self.assertRaises(ulog.ULOG_EEXIST):
                h1 = self.log.start_hook("t", "a", ship, acks=True)
                h2 = self.log.start_hook("t", "b", ship, acks=True)
            h1.stop()

    def test_partitions_keys_and_iteration(self):
        self.log.create_topic("t", 4)
        res = self.log.append("t", [{"key": "same", "value": str(i)} for i in range(5)]
                              + [{"value": b"pinned", "partition": 3}])
        self.assertEqual(len({p for p, _ in res[:5]}), 1)      # one key, one partition
        self.assertEqual([o for _, o in res[:5]], [0, 1, 2, 3, 4])
        self.assertEqual(res[5][0], 3)
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            got = sorted(self.drain(sub))
        self.assertEqual(got, sorted((p, o, b"pinned" if i == 5 else str(i).encode())
                                     for i, (p, o) in enumerate(res)))

    def test_latest_sees_only_new_records(self):
        self.filled(n=3)
        with self.log.subscribe("t") as sub:                  # default: latest
            self.assertEqual(sub.position(0), 3)
            self.assertIsNone(sub.poll(0))
            self.log.append("t", [b"new"])
            self.assertEqual(self.drain(sub), [(0, 3, b"new")])

    def test_topics_and_describe(self):
        self.log.create_topic("b", 2, config={"segment.bytes": 4096}, flush_policy="none")
        self.log.create_topic("a")
        self.assertEqual(self.log.topics(), ["a", "b"])
        info = self.log.describe_topic("b")
        self.assertEqual((info.name, info.partitions), ("b", 2))
        self.assertEqual(info.config["segment.bytes"], 4096)
        self.assertEqual(info.config["flush.policy"], "none")
        self.assertEqual(info.config["max.message.bytes"], 1048588)
        self.assertEqual(set(info.config), {
            "segment.bytes", "max.message.bytes", "flush.policy", "flush.ms",
            "index.interval.bytes", "message.timestamp.type", "preallocate",
            "retention.ms", "retention.bytes", "segment.ms", "retention.groups",
            "cleanup.policy", "delete.retention.ms", "min.compaction.lag.ms",
            "min.cleanable.dirty.ratio", "replication.sync", "replication.timeout.ms",
            "encryption.key.id"})
        self.assertEqual((info.config["retention.ms"], info.config["retention.bytes"],
                          info.config["segment.ms"], info.config["retention.groups"]),
                         (-1, -1, 604800000, ""))
        self.log.append("b", [{"value": b"x" * 100, "partition": 0}] * 3
                        + [{"value": b"y", "partition": 1}])
        part = self.log.describe_partition("b", 0)
        self.assertEqual((part.low, part.high, part.write_end, part.segments), (0, 3, 3, 1))
        self.assertEqual((part.reclaimed, part.cleaned_ms), (0, 0))
        self.assertGreater(part.bytes, 300)
        self.assertRegex(ulog.version(), r"^\d+\.\d+\.\d+$")
        header = os.path.join(ROOT, "include/ulog.h")
        if os.path.exists(header):                            # the library we test
            with open(header) as f:
                self.assertIn('#define ULOG_VERSION_STRING "%s"' % ulog.version(), f.read())

    def test_alter_and_delete(self):
        self.log.create_topic("c", flush_policy="none")
        self.log.alter_topic("c", max_message_bytes=200)
        self.assertEqual(self.log.describe_topic("c").config["max.message.bytes"], 200)
        self.assertEqual(self.log.describe_topic("c").config["flush.policy"], "none")
        with self.assertRaises(ulog.ULOG_ETOOBIG):
            self.log.append("c", [{"value": b"z" * 300}])
        with self.assertRaises(ulog.ULOG_EINVAL):
            self.log.alter_topic("c", auto_offset_reset="earliest")
        self.log.append("c", [{"value": b"old"}])
        self.log.delete_topic("c")
        self.assertEqual(self.log.topics(), [])
        with self.assertRaises(ulog.ULOG_ENOENT):
            self.log.delete_topic("c")
        self.log.create_topic("c")
        self.assertEqual(self.log.describe_partition("c", 0).high, 0)

    def test_compacted_topic_needs_keys(self):
        self.log.create_topic("k", cleanup_policy="delete,compact")
        config = self.log.describe_topic("k").config
        self.assertEqual((config["cleanup.policy"], config["delete.retention.ms"],
                          config["min.compaction.lag.ms"], config["min.cleanable.dirty.ratio"]),
                         ("compact,delete", 86400000, 0, 0.5))
        with self.assertRaises(ulog.ULOG_EINVAL) as cm:
            self.log.append("k", [{"key": "a", "value": "1"}, {"value": "no key"}])
        self.assertIn("record 1: a compacted topic", cm.exception.message)
        self.assertEqual(self.log.watermarks("k", 0), (0, 0))
        self.log.append("k", [{"key": "", "value": "empty key"}, {"key": "a", "value": None}])
        self.assertEqual(self.log.watermarks("k", 0), (0, 2))
        # A ratio takes a number or its text, and comes back as float.
        self.log.alter_topic("k", cleanup_policy="delete", min_cleanable_dirty_ratio=1)
        self.assertEqual(self.log.describe_topic("k").config["min.cleanable.dirty.ratio"], 1.0)
        self.log.alter_topic("k", min_cleanable_dirty_ratio=0.25)
        self.assertEqual(self.log.describe_topic("k").config["min.cleanable.dirty.ratio"], 0.25)
        self.log.alter_topic("k", min_cleanable_dirty_ratio=".05")
        self.assertEqual(self.log.describe_topic("k").config["min.cleanable.dirty.ratio"], 0.05)
        self.assertRaises(ulog.ULOG_EINVAL, self.log.alter_topic, "k",
                          min_cleanable_dirty_ratio=1.5)
        self.log.append("k", [{"value": "no key, delete policy"}])
        self.assertEqual(self.log.watermarks("k", 0), (0, 3))

    def test_compaction_keeps_the_latest_value_per_key(self):
        self.log.create_topic("c", cleanup_policy="compact", segment_bytes=4096)
        for i in range(600):                # ten keys, sixty values each
            self.log.append("c", [{"key": "k%d" % (i % 10), "value": "v%d" % i}])
        before = self.log.describe_partition("c", 0)
        self.assertEqual(before.cleaned_end, 0)
        self.assertGreater(before.dirty_bytes, 0)
        result = self.log.clean("c", flags=ulog.CLEAN_COMPACT)
        self.assertGreater(result.bytes_reclaimed, 0)
        after = self.log.describe_partition("c", 0)
        self.assertGreater(after.cleaned_end, 0)
        self.assertEqual(after.dirty_bytes, 0)
        self.assertEqual(after.reclaimed, result.bytes_reclaimed)
        self.assertLess(after.bytes, before.bytes)
        latest, offsets = {}, []
        with self.log.subscribe("c", auto_offset_reset="earliest") as sub:
            for m in sub:
                latest[m.key] = m.value
                offsets.append(m.offset)
        self.assertEqual(latest, {b"k%d" % k: b"v%d" % (590 + k) for k in range(10)})
        self.assertEqual(offsets, sorted(set(offsets)))
        self.assertLess(len(offsets), 600)
        self.assertEqual(self.log.watermarks("c", 0), (0, 600))


class Seeking(LogTest):
    def test_verify_finds_a_flipped_byte(self):
        self.log.create_topic("v", 1, segment_bytes=4096)
        for i in range(300):               # a batch each: several segments
            self.log.append("v", [b"r%03d" % i * 10])
        clean = self.log.verify()
        self.assertEqual((clean.records, clean.partitions, clean.problems), (300, 1, []))
        seg = sorted(glob.glob(os.path.join(self.dir, "topics", "v", "0", "*.log")))[1]
        with open(seg, "r+b") as f:        # a byte in the first batch's records
            f.seek(80)
            b = f.read(1)
            f.seek(80)
            f.write(bytes([b[0] ^ 0x20]))
        bad = self.log.verify("v")
        self.assertEqual(len(bad.problems), 1)
        p = bad.problems[0]
        self.assertEqual((p.topic, p.partition, p.error), ("v", 0, "ULOG_ECORRUPT"))
        self.assertEqual(p.offset, int(os.path.basename(seg)[:20]))
        self.assertIn("segment", p.detail)
        self.assertRaises(ulog.ULOG_ENOENT, self.log.verify, "nosuch")

    def test_seek_and_position(self):
        self.filled(partitions=2, n=10)
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            sub.seek(1, 7)
            self.assertEqual((sub.position(0), sub.position(1)), (0, 7))
            sub.seek(0, 10)                                   # the high watermark
            self.assertEqual(self.drain(sub), [(1, 7, b"p1-7"), (1, 8, b"p1-8"), (1, 9, b"p1-9")])
            sub.seek(None, 4)                                 # every partition
            got = self.drain(sub)
            self.assertEqual(sorted(got), [(p, o, b"p%d-%d" % (p, o))
                                           for p in (0, 1) for o in range(4, 10)])

    def test_seek_time(self):
        self.filled(n=10)                                     # timestamps 1000..10000
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            sub.seek_time(0, 2500)
            self.assertEqual(sub.poll(0).timestamp, 3000)
            sub.seek_time(None, 7000)
            self.assertEqual(sub.position(0), 6)
            sub.seek_time(0, 99999)                           # none that late: the end
            self.assertEqual(sub.position(0), 10)
            self.assertIsNone(sub.poll(0))
            sub.seek_time(0, 0)
            self.assertEqual(len(self.drain(sub)), 10)


class Retention(LogTest):
    def segmented(self, topic="r", n=200, timestamp=None, **config):
        """A topic of 4 KiB segments holding n batches of one 100-byte record:
        about 24 batches to a segment."""
        self.log.create_topic(topic, segment_bytes=4096, flush_policy="none", **config)
        for i in range(n):
            self.log.append(topic, [{"value": b"%03d" % i + b"x" * 97, "timestamp": timestamp}])
        return topic

    def test_defaults_keep_everything(self):
        self.segmented()
        before = self.log.describe_partition("r", 0)
        self.assertGreater(before.segments, 4)
        res = self.log.clean()
        self.assertEqual(res, (1, 0, 0))
        after = self.log.describe_partition("r", 0)
        self.assertEqual(after, before)
        self.assertEqual((after.low, after.reclaimed, after.cleaned_ms), (0, 0, 0))

    def test_retention_bytes(self):
        self.segmented(retention_bytes=8192)
        self.assertEqual(self.log.describe_topic("r").config["retention.bytes"], 8192)
        before = self.log.describe_partition("r", 0)
        self.assertGreater(before.segments, 4)
        self.assertEqual((before.low, before.high, before.reclaimed), (0, 200, 0))
        self.log.reset_group("strict", "r", "earliest")          # committed: 0
        with self.log.subscribe("r", "strict", auto_offset_reset="none") as strict, \
                self.log.subscribe("r", auto_offset_reset="earliest") as lenient:
            self.assertEqual((strict.position(0), lenient.position(0)), (0, 0))
            seen = []
            res = self.log.clean("r", progress=seen.append)
            after = self.log.describe_partition("r", 0)
            self.assertEqual(res.partitions, 1)
            self.assertGreater(res.segments_deleted, 0)
            self.assertEqual(res.segments_deleted, before.segments - after.segments)
            self.assertEqual(res.bytes_reclaimed, before.bytes - after.bytes)
            self.assertEqual(after.reclaimed, res.bytes_reclaimed)
            self.assertLess(abs(after.cleaned_ms - time.time() * 1000), 60000)
            self.assertGreater(after.low, 0)
            self.assertEqual(after.high, 200)
            self.assertLessEqual(after.bytes, 8192 + 4096)
            self.assertEqual(self.log.watermarks("r", 0), (after.low, 200))
            # At the start and at the end of the one partition.
            self.assertEqual([(p.topic, p.partition, p.partitions_done, p.partitions_total)
                              for p in seen], [("r", 0, 0, 1), ("r", 0, 1, 1)])
            self.assertEqual((seen[-1].segments_deleted, seen[-1].bytes_reclaimed),
                             (res.segments_deleted, res.bytes_reclaimed))
            # Below the log start: "earliest" goes on there, "none" fails.
            msg = lenient.poll(0)
            self.assertEqual((msg.offset, msg.value[:3]), (after.low, b"%03d" % after.low))
            with self.assertRaises(ulog.ULOG_EOFFSET):
                strict.poll(0)
            strict.seek(0, after.low)
            self.assertEqual(strict.poll(0).offset, after.low)
        self.assertEqual(self.log.clean("r"), (1, 0, 0))         # nothing more to do
        self.assertEqual(self.log.describe_partition("r", 0).reclaimed, res.bytes_reclaimed)
        self.assertEqual(self.log.verify("r").records, 200 - after.low)

    def test_retention_ms_rolls_an_idle_segment(self):
        self.segmented("old", timestamp=1000)                   # records from 1970
        self.segmented("new", retention_ms=86400000)            # records from now
        self.assertEqual(self.log.clean().segments_deleted, 0)  # retention.ms -1: kept
        self.assertEqual(self.log.watermarks("old", 0), (0, 200))
        self.log.alter_topic("old", retention_ms=86400000)
        self.assertEqual(self.log.describe_topic("old").config["retention.ms"], 86400000)
        res = self.log.clean()
        self.assertEqual(res.partitions, 2)
        # The active segment is older than segment.ms (7 days): it is rolled,
        # so that every record of "old" goes; "new" keeps everything.
        self.assertEqual(self.log.watermarks("old", 0), (200, 200))
        self.assertEqual(self.log.watermarks("new", 0), (0, 200))
        old = self.log.describe_partition("old", 0)
        self.assertEqual(old.reclaimed, res.bytes_reclaimed)
        self.assertGreater(old.reclaimed, 200 * 100)
        self.assertEqual(self.log.describe_partition("new", 0).reclaimed, 0)
        self.assertEqual(self.log.append("old", [b"after"]), [(0, 200)])  # never reused
        with self.log.subscribe("old", auto_offset_reset="earliest") as sub:
            self.assertEqual(self.drain(sub), [(0, 200, b"after")])

    def bases(self, topic="r"):
        """The base offsets of the partition's segment files, ascending."""
        return sorted(int(os.path.basename(f)[:20]) for f in
                      glob.glob(os.path.join(self.dir, "topics", topic, "0", "*.log")))

    def test_retention_groups_keep_what_a_group_has_not_read(self):
        # retention.bytes=0 alone would delete every closed segment.
        self.segmented(retention_bytes=0, retention_groups="slow")
        self.assertEqual(self.log.describe_topic("r").config["retention.groups"], "slow")
        closed = sum(os.path.getsize(os.path.join(self.dir, "topics", "r", "0", "%020d.log" % b))
                     for b in self.bases()[:-1])
        self.assertGreater(len(self.bases()), 4)
        # No commit yet: slow holds the whole partition.
        self.assertEqual(self.log.retention_pins("r"), [ulog.Pin("slow", 0, -1, closed)])
        self.assertEqual(self.log.clean("r").segments_deleted, 0)
        self.assertEqual(self.log.watermarks("r", 0), (0, 200))
        # slow reads up to 100 and commits: what is below its segment goes.
        with self.log.subscribe("r", "slow", auto_offset_reset="earliest") as sub:
            self.assertEqual([sub.poll(0).offset for _ in range(100)][-1], 99)
            sub.commit()
        holding = max(b for b in self.bases() if b <= 100)
        self.assertGreater(holding, 0)
        res = self.log.clean("r")
        self.assertGreater(res.segments_deleted, 0)
        self.assertEqual(self.log.watermarks("r", 0), (holding, 200))
        self.assertEqual(self.bases()[0], holding)
        pins = self.log.retention_pins("r")
        self.assertEqual([(p.group, p.partition, p.committed) for p in pins], [("slow", 0, 100)])
        self.assertGreater(pins[0].bytes, 0)
        self.assertEqual(pins[0].bytes, sum(
            os.path.getsize(os.path.join(self.dir, "topics", "r", "0", "%020d.log" % b))
            for b in self.bases()[:-1]))
        self.assertEqual(self.log.clean("r").segments_deleted, 0)     # held, still
        # A group the setting does not name holds nothing; "" holds nothing.
        self.log.reset_group("other", "r", "offset", holding)
        self.log.alter_topic("r", retention_groups="")
        self.assertEqual(self.log.retention_pins("r"), [])
        self.assertGreater(self.log.clean("r").segments_deleted, 0)
        low = self.log.watermarks("r", 0)[0]
        self.assertGreater(low, 100)
        self.assertEqual(self.bases(), [low])                         # the active one
        # A long list (over the 32 bytes any other value fits in) reads back.
        many = ",".join("group-%03d" % i for i in range(80))
        self.log.alter_topic("r", retention_groups=many)
        self.assertEqual(self.log.describe_topic("r").config["retention.groups"], many)
        pins = self.log.retention_pins("r")
        self.assertEqual([p.group for p in pins], many.split(","))
        self.assertEqual({(p.committed, p.bytes) for p in pins}, {(-1, 0)})
        self.assertRaises(ulog.ULOG_EINVAL, self.log.alter_topic, "r", retention_groups=",a")
        self.assertRaises(ulog.ULOG_ENOENT, self.log.retention_pins, "nosuch")

    def test_clean_errors_and_stopping(self):
        self.log.create_topic("a", 3)
        self.assertRaises(ulog.ULOG_ENOENT, self.log.clean, "nosuch")
        self.assertRaises(ulog.ULOG_EINVAL, self.log.clean, "bad/name")
        cb = ulog._CLEAN_CB(lambda p, arg: 0)
        self.assertEqual(ulog._lib.ulog_clean(self.log._handle, b"a", 0, cb, None),
                         ulog._CODE["ULOG_EINVAL"])                # flags

        class Stop(Exception):
            pass

        calls = []

        def stop(p):
            calls.append(p)
            raise Stop()

        with self.assertRaises(Stop):
            self.log.clean("a", progress=stop)
        self.assertEqual([(p.partitions_done, p.partitions_total) for p in calls], [(0, 3)])
        self.assertEqual(self.log.clean("a").partitions, 3)       # a stop leaves no mark

    def test_delete_records(self):
        self.filled(partitions=2, n=10)
        self.log.reset_group("g", "t", "earliest")
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            self.assertEqual(self.log.delete_records("t", 1, 4), 4)
            self.assertEqual(self.log.watermarks("t", 1), (4, 10))
            self.assertEqual(self.log.watermarks("t", 0), (0, 10))   # the other one kept
            self.assertEqual(self.log.delete_records("t", 1, 2), 4)  # backwards: no-op
            got = self.drain(sub)
        self.assertEqual(sorted(o for p, o, _ in got if p == 1), list(range(4, 10)))
        self.assertEqual(sorted(o for p, o, _ in got if p == 0), list(range(10)))
        # The group's committed 0 fell out of partition 1: its lag counts from low.
        lag = {e.partition: e for e in self.log.describe_group("g")}
        self.assertEqual((lag[1].committed, lag[1].low, lag[1].lag), (0, 4, 6))
        self.assertEqual(lag[0].lag, 10)
        with self.log.subscribe("t", "g", auto_offset_reset="earliest") as sub:
            self.assertEqual((sub.position(0), sub.position(1)), (0, 4))
        for bad in (11, -1):
            with self.assertRaises(ulog.ULOG_EOFFSET):
                self.log.delete_records("t", 0, bad)
        self.assertEqual(self.log.watermarks("t", 0), (0, 10))
        self.assertRaises(ulog.ULOG_ENOENT, self.log.delete_records, "nosuch", 0, 0)
        self.assertRaises(ulog.UlogError, self.log.delete_records, "t", 2, 0)
        self.assertEqual(self.log.delete_records("t", 0, 10), 10)  # up to high: all
        self.assertEqual(self.log.describe_partition("t", 0)[:2], (10, 10))
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            self.assertEqual({p for p, _, _ in self.drain(sub)}, {1})
        self.assertRaises(ulog.ULOG_EOFFSET, self.log.partition_start_at, "t", 1, 9)
        self.log.partition_start_at("t", 1, 50)          # a follower's fresh start
        self.assertEqual(self.log.watermarks("t", 1), (50, 50))
        self.assertEqual(self.log.watermarks("t", 0), (10, 10))
        self.assertEqual(self.log.append("t", [{"value": b"z", "partition": 0}]), [(0, 10)])


class Groups(LogTest):
    def test_commit_then_resume(self):
        self.filled(n=5)
        with self.log.subscribe("t", "g", auto_offset_reset="earliest") as sub:
            self.assertEqual([sub.poll(0).offset for _ in range(3)], [0, 1, 2])
            sub.commit()
            sub.poll(0)                                       # polled, not committed
        self.assertEqual(self.log.groups(), ["g"])
        lag = self.log.describe_group("g")
        self.assertEqual([(e.topic, e.partition, e.committed, e.high, e.lag) for e in lag],
                         [("t", 0, 3, 5, 2)])
        # A new subscription of the group, in a new handle, resumes at 3.
        with ulog.Log(self.dir) as other, other.subscribe("t", "g") as sub:
            self.assertEqual(self.drain(sub), [(0, 3, b"p0-3"), (0, 4, b"p0-4")])

    def test_commit_offsets(self):
        self.filled(partitions=2, n=5)
        with self.log.subscribe("t", "g", auto_offset_reset="earliest") as sub:
            sub.commit_offsets({0: 4, 1: 1})
            self.assertEqual((sub.position(0), sub.position(1)), (0, 0))   # not moved
            with self.assertRaises(ulog.ULOG_EOFFSET):
                sub.commit_offsets({0: 2, 1: 6})                           # 6 > high
        self.assertEqual([e.committed for e in self.log.describe_group("g")], [4, 1])
        with self.log.subscribe("t", "g") as sub:
            self.assertEqual((sub.position(0), sub.position(1)), (4, 1))

    def test_commit_async_calls_back(self):
        self.filled(n=3)
        outcomes = []
        with self.log.subscribe("t", "g", auto_offset_reset="earliest") as sub:
            self.drain(sub)
            sub.commit_async(outcomes.append)
        self.assertEqual(outcomes, [None])                    # ran by close at the latest
        self.assertEqual(self.log.describe_group("g")[0].committed, 3)

    def test_reset_and_delete(self):
        self.filled(partitions=2, n=4)
        self.log.reset_group("g", "t", "latest")
        self.assertEqual([e.committed for e in self.log.describe_group("g")], [4, 4])
        self.log.reset_group("g", "t", "offset", 2, partition=1)
        self.log.reset_group("g", "t", "time", 2000, partition=0)
        self.assertEqual([e.committed for e in self.log.describe_group("g")], [1, 2])
        self.log.delete_group("g")
        self.assertEqual(self.log.groups(), [])
        with self.assertRaises(ulog.ULOG_ENOENT):
            self.log.delete_group("g")


class Errors(LogTest):
    def test_classes_come_from_errname(self):
        self.assertTrue(issubclass(ulog.ULOG_ENOENT, ulog.UlogError))
        for name in ("ULOG_EINVAL", "ULOG_ENOENT", "ULOG_EEXIST", "ULOG_ETIMEDOUT",
                     "ULOG_EOFFSET", "ULOG_ELIMIT"):
            cls = getattr(ulog, name)
            self.assertEqual(cls.__name__, name)
            self.assertEqual(ulog._lib.ulog_errname(ulog._CODE[name]).decode(), name)
        self.assertEqual(ulog._CODE["ULOG_EINVAL"], -1)
        self.assertEqual(ulog._CODE["ULOG_EOFFSET"], -5)

    def test_every_exported_function_is_declared(self):
        path = os.path.join(ROOT, "test/exported-symbols.txt")
        if not os.path.exists(path):
            self.skipTest("not in a source tree")
        with open(path) as f:
            exported = set(f.read().split())
        self.assertEqual(exported, set(ulog._SIGNATURES))
        for name in exported:
            self.assertIsNotNone(getattr(ulog._lib, name).argtypes, name)

    def test_unknown_topic(self):
        with self.assertRaises(ulog.ULOG_ENOENT) as cm:
            self.log.append("nope", [b"x"])
        e = cm.exception
        self.assertEqual((e.code, e.name), (-2, "ULOG_ENOENT"))
        self.assertIn("nope", str(e))                         # detail from ulog_errmsg
        self.assertEqual(e.results, [(-1, -1)])
        for call in (lambda: self.log.subscribe("nope"), lambda: self.log.watermarks("nope", 0),
                     lambda: self.log.describe_topic("nope")):
            self.assertRaises(ulog.ULOG_ENOENT, call)
        self.assertEqual(self.log.topics(), [])

    def test_bad_partition_changes_nothing(self):
        self.filled(partitions=2, n=3)
        for p in (2, -2, 1 << 31):
            with self.assertRaises(ulog.ULOG_EINVAL):
                self.log.append("t", [{"value": b"ok", "partition": 0},
                                      {"value": b"bad", "partition": p}])
        self.assertEqual([self.log.watermarks("t", p) for p in (0, 1)], [(0, 3), (0, 3)])
        self.assertRaises(ulog.ULOG_EINVAL, self.log.watermarks, "t", 2)
        self.assertRaises(ulog.ULOG_EINVAL, self.log.append, "t", [{"value": b"x",
                                                                      "timestamp": -5}])

    def test_seek_out_of_range_changes_nothing(self):
        self.filled(n=5)
        with self.log.subscribe("t", auto_offset_reset="earliest") as sub:
            sub.seek(0, 2)
            for off in (6, -1):
                with self.assertRaises(ulog.ULOG_EOFFSET) as cm:
                    sub.seek(0, off)
                self.assertIn("outside [0, 5]", cm.exception.message)
            self.assertEqual(sub.position(0), 2)
            self.assertRaises(ulog.ULOG_EINVAL, sub.seek, 1, 0)
            self.assertRaises(ulog.ULOG_EINVAL, sub.position, 1)
            self.assertRaises(ulog.ULOG_EINVAL, sub.commit)   # no group
            self.assertEqual(sub.poll(0).offset, 2)

    def test_bad_config_changes_nothing(self):
        with self.assertRaises(ulog.ULOG_EINVAL) as cm:
            self.log.create_topic("t", config={"segment.bytes": 100})
        self.assertIn("segment.bytes", cm.exception.message)  # from the config errbuf
        self.assertRaises(ulog.ULOG_EINVAL, self.log.create_topic, "t", flush_policy="sometimes")
        self.assertRaises(ulog.ULOG_EINVAL, self.log.create_topic, "t", no_such_setting=1)
        self.assertRaises(ulog.ULOG_EINVAL, self.log.create_topic, "t", auto_offset_reset="latest")
        self.assertRaises(ulog.ULOG_EINVAL, self.log.create_topic, "t", 0)
        self.assertRaises(ulog.ULOG_EINVAL, self.log.create_topic, "bad/name")
        self.assertEqual(self.log.topics(), [])
        self.log.create_topic("t", 2)
        self.assertRaises(ulog.ULOG_EEXIST, self.log.create_topic, "t", 3)
        self.assertEqual(self.log.describe_topic("t").partitions, 2)
        self.assertRaises(ulog.ULOG_EINVAL, self.log.subscribe, "t", "bad group")
        self.assertRaises(ulog.ULOG_EINVAL, ulog.Log, self.dir, index_flush_ms=0)
        # A failed open has no handle: its detail comes from ulog_errmsg(NULL).
        with self.assertRaises(ulog.ULOG_EINVAL) as cm:
            ulog.Log(self.dir, segment_bytes=4096)
        self.assertIn("segment.bytes", cm.exception.message)

    def test_none_reset_without_commit(self):
        self.filled(n=2)
        with self.assertRaises(ulog.ULOG_EOFFSET):
            self.log.subscribe("t", "g", auto_offset_reset="none")


CHILD = """
import sys, time, ulog
time.sleep(0.3)          # let the parent block in select() first
with ulog.Log(sys.argv[1]) as log:
    print(log.append("t", [{"key": "from", "value": "child"}]))
"""


class Wakeup(LogTest):
    def test_fileno_select_wakes_on_append_by_another_process(self):
        self.log.create_topic("t")
        with self.log.subscribe("t") as sub:
            fd = sub.fileno()
            self.assertEqual(sub.fileno(), fd)
            self.assertIsNone(sub.poll(0))                    # drained: wait on fd now
            self.assertEqual(select.select([fd], [], [], 0.1)[0], [])
            env = dict(os.environ, PYTHONPATH=HERE)
            child = subprocess.Popen([sys.executable, "-c", CHILD, self.dir], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.addCleanup(child.wait)
            start = time.monotonic()
            ready = select.select([sub], [], [], 30)[0]       # select() calls fileno()
            waited = time.monotonic() - start
            out, err = child.communicate(timeout=30)
            self.assertEqual(child.returncode, 0, err.decode())
            self.assertEqual(out.decode().strip(), "[(0, 0)]")
            self.assertEqual(ready, [sub])
            self.assertGreater(waited, 0.1)                   # it really waited
            msg = sub.poll(0)
            self.assertEqual((msg.offset, msg.key, msg.value), (0, b"from", b"child"))
            self.assertIsNone(sub.poll(0))


class Lifetime(LogTest):
    def test_close_closes_subscriptions(self):
        self.filled(n=1)
        sub = self.log.subscribe("t", auto_offset_reset="earliest")
        self.log.close()
        self.assertRaises(ValueError, sub.poll, 0)
        self.assertRaises(ValueError, self.log.topics)


if __name__ == "__main__":
    unittest.main()
