"""ulog.py -- a Python binding of libulog through ctypes alone.

It shows that the C ABI of include/ulog.h can be bound without a compiler:
every call is declared below with its argtypes and restype, the frozen
structs are mirrored field for field, and the exception classes are made at
import time from ulog_errname(), so a new error code needs no change here.

    import ulog
    with ulog.Log("/tmp/log") as log:
        log.create_topic("orders", 3, config={"segment.bytes": 1 << 20})
        log.append("orders", [{"key": "order-1", "value": "created"}])
        with log.subscribe("orders", "billing", auto_offset_reset="earliest") as sub:
            for msg in sub:              # stops when caught up
                print(msg.offset, msg.value)
            sub.commit()

The library comes from $ULOG_LIBRARY if set, else ctypes.util.find_library.
Keys, values and header values are given as bytes or str (UTF-8), None for
null, and come back as bytes copies (None for null). Config names are the C
library's ("segment.bytes"); as keyword arguments, "_" stands for ".".
"""
import collections
import ctypes
import ctypes.util
import itertools
import os
import traceback
from ctypes import POINTER, Structure, byref, c_char_p, c_int, c_int32, c_int64, \
    c_size_t, c_uint32, c_void_p

# ----------------------------------------------------------------- loading

_path = os.environ.get("ULOG_LIBRARY") or ctypes.util.find_library("ulog")
if not _path:
    raise ImportError("libulog not found: build it with `make` and set ULOG_LIBRARY "
                      "to build/libulog.so, or install it (`make install`)")
try:
    _lib = ctypes.CDLL(_path)  # CDLL releases the GIL during every call
except OSError as e:
    raise ImportError("cannot load libulog (%s): %s" % (_path, e)) from e

# ----------------------------------------------------------------- the ABI

# Values that exist only as macros in ulog.h; the header promises they never
# change, so a binding may copy them.
PARTITION_ANY = -1             # ULOG_PARTITION_ANY
TIMESTAMP_NOW = -(1 << 63)     # ULOG_TIMESTAMP_NOW (INT64_MIN)
_RESET = {"earliest": 0, "latest": 1, "offset": 2, "time": 3}   # ULOG_RESET_*
CLEAN_RETENTION = 1            # ULOG_CLEAN_RETENTION
CLEAN_COMPACT = 2              # ULOG_CLEAN_COMPACT
HOOK_ACKS = 1                  # ULOG_HOOK_ACKS


class _Header(Structure):      # ulog_header (frozen)
    _fields_ = [("key", c_void_p), ("key_len", c_size_t),
                ("value", c_void_p), ("value_len", c_size_t)]


class _Record(Structure):      # ulog_record (frozen)
    _fields_ = [("key", c_void_p), ("key_len", c_size_t),
                ("value", c_void_p), ("value_len", c_size_t),
                ("headers", POINTER(_Header)), ("header_count", c_size_t),
                ("timestamp", c_int64), ("partition", c_int32), ("offset", c_int64)]


class _Msg(Structure):         # ulog_msg (frozen)
    _fields_ = [("topic", c_char_p), ("partition", c_int32), ("offset", c_int64),
                ("timestamp", c_int64), ("key", c_void_p), ("key_len", c_size_t),
                ("value", c_void_p), ("value_len", c_size_t),
                ("header_count", c_size_t), ("internal", c_void_p)]


class _Offset(Structure):      # ulog_offset (frozen)
    _fields_ = [("partition", c_int32), ("offset", c_int64)]


# Info structs that may grow: struct_size first, set to our own size.
class _TopicInfo(Structure):
    _fields_ = [("struct_size", c_size_t), ("partitions", c_int32), ("id", c_uint32)]


class _PartitionInfo(Structure):
    _fields_ = [("struct_size", c_size_t), ("low", c_int64), ("high", c_int64),
                ("write_end", c_int64), ("segments", c_int64), ("bytes", c_int64),
                ("reclaimed", c_int64), ("cleaned_ms", c_int64),      # since 0.2
                ("cleaned_end", c_int64), ("clean_bytes", c_int64), ("dirty_bytes", c_int64),
                ("replicated", c_int64)]                                # since 0.3


class _GroupLag(Structure):
    _fields_ = [("struct_size", c_size_t), ("topic", c_char_p), ("partition", c_int32),
                ("committed", c_int64), ("low", c_int64), ("high", c_int64),
                ("lag", c_int64), ("commit_time", c_int64)]


class _VerifyInfo(Structure):
    _fields_ = [("struct_size", c_size_t), ("topic", c_char_p), ("partition", c_int32),
                ("partitions_done", c_int64), ("records_done", c_int64),
                ("records_total", c_int64), ("corrupt", c_int64), ("error", c_int),
                ("offset", c_int64), ("resume", c_int64), ("detail", c_char_p)]


class _Batch(Structure):
    _fields_ = [("struct_size", c_size_t), ("partition", c_int32), ("base_offset", c_int64),
                ("last_offset", c_int64), ("record_count", c_int32),
                ("max_timestamp", c_int64), ("data", c_void_p), ("len", c_size_t)]


class _Pin(Structure):
    _fields_ = [("struct_size", c_size_t), ("group", c_char_p), ("partition", c_int32),
                ("committed", c_int64), ("bytes", c_int64)]


class _CleanProgress(Structure):
    _fields_ = [("struct_size", c_size_t), ("topic", c_char_p), ("partition", c_int32),
                ("partitions_done", c_int64), ("partitions_total", c_int64),
                ("segments_deleted", c_int64), ("bytes_reclaimed", c_int64)]


_COMMIT_CB = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_void_p)   # ulog_commit_cb
_VERIFY_CB = ctypes.CFUNCTYPE(c_int, POINTER(_VerifyInfo), c_void_p)   # ulog_verify_cb
_CLEAN_CB = ctypes.CFUNCTYPE(c_int, POINTER(_CleanProgress), c_void_p)   # ulog_clean_cb
_SHIP_FN = ctypes.CFUNCTYPE(c_int, POINTER(_Batch), c_void_p)             # ulog_ship_fn
_PP = POINTER(c_void_p)        # an out-parameter for an opaque handle

# Every exported function, with its signature. Handles are opaque: c_void_p.
_SIGNATURES = {
    "ulog_strerror": (c_char_p, [c_int]),
    "ulog_errname": (c_char_p, [c_int]),
    "ulog_version_string": (c_char_p, []),
    "ulog_version_number": (c_int, []),
    "ulog_config_new": (c_void_p, []),
    "ulog_config_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "ulog_config_set_int": (c_int, [c_void_p, c_char_p, c_int64, c_char_p, c_size_t]),
    "ulog_config_get": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "ulog_config_names": (c_int, [c_void_p, _PP]),
    "ulog_config_free": (None, [c_void_p]),
    "ulog_open": (c_int, [c_char_p, c_void_p, _PP]),
    "ulog_close": (None, [c_void_p]),
    "ulog_errmsg": (c_size_t, [c_void_p, c_char_p, c_size_t]),
    "ulog_topic_create": (c_int, [c_void_p, c_char_p, c_int32, c_void_p]),
    "ulog_strlist_count": (c_size_t, [c_void_p]),
    "ulog_strlist_get": (c_char_p, [c_void_p, c_size_t]),
    "ulog_strlist_free": (None, [c_void_p]),
    "ulog_topic_list": (c_int, [c_void_p, _PP]),
    "ulog_topic_describe": (c_int, [c_void_p, c_char_p, POINTER(_TopicInfo), _PP]),
    "ulog_topic_alter": (c_int, [c_void_p, c_char_p, c_void_p]),
    "ulog_topic_delete": (c_int, [c_void_p, c_char_p]),
    "ulog_partition_describe": (c_int, [c_void_p, c_char_p, c_int32, POINTER(_PartitionInfo)]),
    "ulog_append": (c_int, [c_void_p, c_char_p, POINTER(_Record), c_size_t]),
    "ulog_append_raw": (c_int, [c_void_p, c_char_p, c_int32, c_int64, c_char_p, c_size_t]),
    "ulog_watermarks": (c_int, [c_void_p, c_char_p, c_int32, POINTER(c_int64), POINTER(c_int64)]),
    "ulog_msg_header": (c_int, [POINTER(_Msg), c_size_t, POINTER(_Header)]),
    "ulog_subscribe": (c_int, [c_void_p, c_char_p, c_char_p, c_void_p, _PP]),
    "ulog_poll": (c_int, [c_void_p, c_int, POINTER(_Msg)]),
    "ulog_poll_batch": (c_int, [c_void_p, c_int, POINTER(_Batch)]),
    "ulog_hook_start": (c_int, [c_void_p, c_char_p, c_char_p, ctypes.c_uint, _SHIP_FN, c_void_p,
                                _PP]),
    "ulog_hook_stop": (c_int, [c_void_p]),
    "ulog_batch_mac": (c_int, [c_char_p, c_char_p, c_int32, c_int64, c_char_p, c_size_t,
                               c_char_p]),
    "ulog_batch_mac_verify": (c_int, [c_char_p, c_char_p, c_int32, c_int64, c_char_p,
                                      c_size_t, c_char_p]),
    "ulog_key_add": (c_int, [c_void_p, c_char_p, ctypes.c_uint32, c_char_p, c_size_t]),
    "ulog_key_remove": (c_int, [c_void_p, c_char_p, ctypes.c_uint32]),
    "ulog_seek": (c_int, [c_void_p, c_int32, c_int64]),
    "ulog_seek_time": (c_int, [c_void_p, c_int32, c_int64]),
    "ulog_position": (c_int, [c_void_p, c_int32, POINTER(c_int64)]),
    "ulog_commit": (c_int, [c_void_p]),
    "ulog_commit_offsets": (c_int, [c_void_p, POINTER(_Offset), c_size_t]),
    "ulog_commit_async": (c_int, [c_void_p, _COMMIT_CB, c_void_p]),
    "ulog_sub_fd": (c_int, [c_void_p]),
    "ulog_sub_close": (None, [c_void_p]),
    "ulog_group_list": (c_int, [c_void_p, _PP]),
    "ulog_group_describe": (c_int, [c_void_p, c_char_p, _PP]),
    "ulog_group_desc_count": (c_size_t, [c_void_p]),
    "ulog_group_desc_get": (c_int, [c_void_p, c_size_t, POINTER(_GroupLag)]),
    "ulog_group_desc_free": (None, [c_void_p]),
    "ulog_group_delete": (c_int, [c_void_p, c_char_p]),
    "ulog_group_reset": (c_int, [c_void_p, c_char_p, c_char_p, c_int32, c_int, c_int64]),
    "ulog_verify": (c_int, [c_void_p, c_char_p, _VERIFY_CB, c_void_p, POINTER(_VerifyInfo)]),
    "ulog_clean": (c_int, [c_void_p, c_char_p, c_int, _CLEAN_CB, c_void_p]),
    "ulog_delete_records": (c_int, [c_void_p, c_char_p, c_int32, c_int64]),
    "ulog_partition_start_at": (c_int, [c_void_p, c_char_p, c_int32, c_int64]),
    "ulog_retention_pins": (c_int, [c_void_p, c_char_p, _PP]),
    "ulog_pins_count": (c_size_t, [c_void_p]),
    "ulog_pins_get": (c_int, [c_void_p, c_size_t, POINTER(_Pin)]),
    "ulog_pins_free": (None, [c_void_p]),
}
for _name, (_res, _args) in _SIGNATURES.items():
    _f = getattr(_lib, _name)
    _f.restype, _f.argtypes = _res, _args

# ----------------------------------------------------------------- errors


class UlogError(Exception):
    """A failed ulog call. code: the ULOG_E* value; name: ulog_errname(code);
    message: the detail from ulog_errmsg(), else ulog_strerror(code)."""

    def __init__(self, code, name, message):
        super().__init__(code, name, message)
        self.code, self.name, self.message = code, name, message

    def __str__(self):
        return "%s: %s" % (self.name, self.message)


# One subclass per code, named by ulog_errname(): ULOG_EINVAL, ULOG_ENOENT...
# Codes are -1, -2, ... and ulog_errname() says "ULOG_UNKNOWN" past the last.
_ERRORS, _CODE = {}, {}
for _code in range(-1, -1000, -1):
    _name = _lib.ulog_errname(_code).decode()
    if _name == "ULOG_UNKNOWN":
        break
    _cls = type(_name, (UlogError,), {"__module__": __name__,
                                      "__doc__": _lib.ulog_strerror(_code).decode()})
    globals()[_name] = _ERRORS[_code] = _cls
    _CODE[_name] = _code
_EINVAL, _ENOENT, _ETIMEDOUT = (_CODE[n] for n in ("ULOG_EINVAL", "ULOG_ENOENT",
                                                    "ULOG_ETIMEDOUT"))


_NO_HANDLE = object()   # _error(): read ulog_errmsg(NULL), the thread's last


def _error(code, handle=None, detail=None):
    """The exception for code, with the handle's ulog_errmsg() as detail."""
    if handle is _NO_HANDLE:
        handle = None
    elif not handle:
        detail = detail or ""
    if detail is None:
        buf = ctypes.create_string_buffer(512)
        n = _lib.ulog_errmsg(handle, buf, len(buf))
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            _lib.ulog_errmsg(handle, buf, len(buf))
        detail = buf.value.decode(errors="replace")
    detail = detail or _lib.ulog_strerror(code).decode()
    return _ERRORS.get(code, UlogError)(code, _lib.ulog_errname(code).decode(), detail)


def _check(rc, handle=None):
    """Returns rc when it is not negative, else raises its exception."""
    if rc < 0:
        raise _error(rc, handle)
    return rc


def _int(v, bits, what, unsigned=False):
    # ctypes would silently wrap an out-of-range int: refuse it like C would.
    lo, hi = (0, 1 << bits) if unsigned else (-(1 << (bits - 1)), 1 << (bits - 1))
    if not isinstance(v, int) or not lo <= v < hi:
        raise _error(_EINVAL, detail="%s must be a%s %d-bit integer, not %r"
                     % (what, "n unsigned" if unsigned else "", bits, v))
    return v


def _bytes(v, what):
    """bytes (or str as UTF-8) for the C side; None stays None (null)."""
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise TypeError("%s must be bytes, str or None, not %s" % (what, type(v).__name__))


def _addr(b):
    # Address of a bytes object's buffer (no copy); the caller keeps b alive.
    return None if b is None else ctypes.cast(c_char_p(b), c_void_p).value


def _copy(ptr, n):
    return None if ptr is None else ctypes.string_at(ptr, n)


def _strlist(h):
    try:
        return [_lib.ulog_strlist_get(h, i).decode() for i in range(_lib.ulog_strlist_count(h))]
    finally:
        _lib.ulog_strlist_free(h)


# Settings that are decimal numbers: the library takes them as text only
# ("0.5"), and describe_topic gives them as float.
_RATIOS = {"min.cleanable.dirty.ratio"}


class _Config:
    """A ulog_config built from {name: value}; None when there is nothing."""

    def __init__(self, config, kwargs):
        self.h = None
        items = dict(config or {})
        items.update((k.replace("_", "."), v) for k, v in kwargs.items())
        if not items:
            return
        self.h = _lib.ulog_config_new() or _check(_CODE["ULOG_ENOMEM"])
        err = ctypes.create_string_buffer(256)
        for name, value in items.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            if name in _RATIOS:
                value = str(value)          # 1 -> "1", 0.25 -> "0.25"
            if isinstance(value, int):
                rc = _lib.ulog_config_set_int(self.h, name.encode(), _int(value, 64, name),
                                              err, len(err))
            else:
                rc = _lib.ulog_config_set(self.h, name.encode(), str(value).encode(),
                                          err, len(err))
            if rc < 0:
                self.close()
                raise _error(rc, detail=err.value.decode(errors="replace"))

    def close(self):
        _lib.ulog_config_free(self.h)
        self.h = None

    def __enter__(self):
        return self.h

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------- results

Message = collections.namedtuple(
    "Message", "topic partition offset timestamp key value headers")
TopicInfo = collections.namedtuple("TopicInfo", "name partitions id config")
# ulog_poll_batch: one stored batch, whole; data is its bytes (a copy), which
# Log.append_raw() applies to another log.
Batch = collections.namedtuple(
    "Batch", "partition base_offset last_offset record_count max_timestamp data")
# reclaimed: bytes retention, compaction and delete_records() removed, ever;
# cleaned_ms: when one last removed something (ms since the epoch, 0: never);
# cleaned_end: compaction's clean part ends there; clean_bytes, dirty_bytes:
# the closed segments' bytes below and from it (their ratio is the dirty ratio).
PartitionInfo = collections.namedtuple(
    "PartitionInfo", "low high write_end segments bytes reclaimed cleaned_ms cleaned_end "
    "clean_bytes dirty_bytes replicated")
# ulog_verify: one unreadable stretch [offset, resume) of a partition, and the totals.
Problem = collections.namedtuple("Problem", "topic partition error offset resume detail")
VerifyResult = collections.namedtuple("VerifyResult", "records partitions problems")
# ulog_clean: what the progress callable gets (counts so far in this call), and the totals.
CleanProgress = collections.namedtuple(
    "CleanProgress", "topic partition partitions_done partitions_total segments_deleted "
    "bytes_reclaimed")
CleanResult = collections.namedtuple("CleanResult", "partitions segments_deleted bytes_reclaimed")
# ulog_retention_pins: a group retention.groups names holds back `bytes` of a
# partition (committed -1: it has no commit there, and holds all of it).
Pin = collections.namedtuple("Pin", "group partition committed bytes")
GroupLag = collections.namedtuple(
    "GroupLag", "topic partition committed low high lag commit_time")

# ulog_commit_async callbacks: one C trampoline for the life of the module
# (a CFUNCTYPE object must outlive every call into it); arg is a token.
_pending = {}
_tokens = itertools.count(1)


@_COMMIT_CB
def _commit_done(_sub, err, token):
    callback, log = _pending.pop(token)
    if callback is not None:
        callback(_error(err, log._h) if err else None)


def version():
    """Version of the libulog actually loaded, e.g. "0.3.0"."""
    return _lib.ulog_version_string().decode()

# ----------------------------------------------------------------- Log


class _Closing:
    """with-statement support: close() on the way out."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Log(_Closing):
    """An open log root (ulog_open). Thread-safe, like the C handle."""

    def __init__(self, path, config=None, **kwargs):
        self._h, self._subs, self._hooks, self._pid = None, set(), set(), os.getpid()
        h = c_void_p()
        with _Config(config, kwargs) as cfg:
            rc = _lib.ulog_open(os.fsencode(path), cfg, byref(h))
        if rc < 0:   # no handle: ulog_errmsg(NULL) has this thread's last detail
            raise _error(rc, _NO_HANDLE)
        self._h = h.value

    @property
    def _handle(self):
        if self._h is None:
            raise ValueError("the log is closed")
        if os.getpid() != self._pid:     # ulog.h: a forked child opens its own
            raise RuntimeError("a Log cannot be used across fork(); open another")
        return self._h

    def close(self):
        """Stops its hooks, closes every subscription of this Log, then the log."""
        for hook in list(self._hooks):
            hook.stop()
        for sub in list(self._subs):
            sub.close()
        if self._h is not None:
            _lib.ulog_close(self._h)
            self._h = None

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            self.close()

    def create_topic(self, name, partitions=1, config=None, **kwargs):
        with _Config(config, kwargs) as cfg:
            _check(_lib.ulog_topic_create(self._handle, name.encode(),
                                          _int(partitions, 32, "partitions"), cfg), self._h)

    def alter_topic(self, name, config=None, **kwargs):
        """Changes the settings given (a dict and/or keywords, dots as
        underscores); the others keep their values."""
        with _Config(config, kwargs) as cfg:
            _check(_lib.ulog_topic_alter(self._handle, name.encode(), cfg), self._h)

    def delete_topic(self, name):
        _check(_lib.ulog_topic_delete(self._handle, name.encode()), self._h)

    def topics(self):
        out = c_void_p()
        _check(_lib.ulog_topic_list(self._handle, byref(out)), self._h)
        return _strlist(out)

    def describe_topic(self, name):
        """TopicInfo(name, partitions, id, config): config holds every topic
        setting (decimal ones as int, min.cleanable.dirty.ratio as float)."""
        info, cfg = _TopicInfo(ctypes.sizeof(_TopicInfo)), c_void_p()
        _check(_lib.ulog_topic_describe(self._handle, name.encode(), byref(info), byref(cfg)),
               self._h)
        try:
            names = c_void_p()
            _check(_lib.ulog_config_names(cfg, byref(names)))
            # 1024 bytes hold any value (32 any but retention.groups's)
            config, buf = {}, ctypes.create_string_buffer(1024)
            for setting in _strlist(names):
                _check(_lib.ulog_config_get(cfg, setting.encode(), buf, len(buf)))
                v = buf.value.decode()
                digits = v[1:] if v[:1] == "-" else v           # retention.ms: -1
                if setting in _RATIOS:
                    config[setting] = float(v)
                else:
                    config[setting] = int(v) if digits.isdigit() and (
                        digits[:1] != "0" or digits == v == "0") else v
        finally:
            _lib.ulog_config_free(cfg)
        return TopicInfo(name, info.partitions, info.id, config)

    def describe_partition(self, topic, partition):
        info = _PartitionInfo(ctypes.sizeof(_PartitionInfo))
        _check(_lib.ulog_partition_describe(self._handle, topic.encode(),
                                            _int(partition, 32, "partition"), byref(info)),
               self._h)
        return PartitionInfo(info.low, info.high, info.write_end, info.segments, info.bytes,
                             info.reclaimed, info.cleaned_ms, info.cleaned_end,
                             info.clean_bytes, info.dirty_bytes, info.replicated)

    def clean(self, topic=None, progress=None, flags=CLEAN_RETENTION):
        """Applies retention (retention.ms, retention.bytes, segment.ms; held
        back by retention.groups), compaction (flags CLEAN_COMPACT: topics
        whose cleanup.policy compacts keep the latest record per key), or
        both (CLEAN_RETENTION | CLEAN_COMPACT) to topic (None: every topic)
        now, as ulog_clean does; returns
        CleanResult(partitions, segments_deleted, bytes_reclaimed).
        progress, if given, is called with a CleanProgress at the start and
        end of every partition; an exception it raises stops the run after
        the partition at hand and comes out of clean()."""
        last, raised = [None], []

        def seen(p, _arg):
            if raised:
                return 1
            i = p.contents
            last[0] = (i.partitions_done, i.segments_deleted, i.bytes_reclaimed)
            if progress is not None:
                try:
                    progress(CleanProgress(i.topic.decode() if i.topic else None, i.partition,
                                           i.partitions_done, i.partitions_total,
                                           i.segments_deleted, i.bytes_reclaimed))
                except BaseException as e:      # KeyboardInterrupt too: stop, re-raise
                    raised.append(e)
                    return 1
            return 0

        cb = _CLEAN_CB(seen)           # kept alive for the call
        rc = _lib.ulog_clean(self._handle, None if topic is None else topic.encode(),
                             flags, cb, None)
        if raised:
            raise raised[0]
        _check(rc, self._h)
        return CleanResult(*(last[0] or (0, 0, 0)))

    def delete_records(self, topic, partition, offset):
        """Moves the partition's log start offset up to offset (at most its
        high watermark; lower than it now: no change), as Kafka's
        DeleteRecords; the records below are gone for every reader. Returns
        the log start offset after the call."""
        part = _int(partition, 32, "partition")
        _check(_lib.ulog_delete_records(self._handle, topic.encode(), part,
                                        _int(offset, 64, "offset")), self._h)
        return self.watermarks(topic, part)[0]

    def partition_start_at(self, topic, partition, offset):
        """Empties the partition and makes offset, at or past its end, its
        log start and next offset: a follower's first step when its leader's
        log start is past the follower's end. Returns nothing."""
        _check(_lib.ulog_partition_start_at(self._handle, topic.encode(),
                                            _int(partition, 32, "partition"),
                                            _int(offset, 64, "offset")), self._h)

    def retention_pins(self, topic):
        """[Pin(group, partition, committed, bytes)]: the consumer groups the
        topic's retention.groups names, one entry per group and partition,
        with the bytes retention.ms / retention.bytes would delete now but
        for that group. Empty when the topic has no retention.groups."""
        pins = c_void_p()
        _check(_lib.ulog_retention_pins(self._handle, topic.encode(), byref(pins)), self._h)
        try:
            out = []
            for i in range(_lib.ulog_pins_count(pins)):
                e = _Pin(ctypes.sizeof(_Pin))
                _check(_lib.ulog_pins_get(pins, i, byref(e)))
                out.append(Pin(e.group.decode(), e.partition, e.committed, e.bytes))
            return out
        finally:
            _lib.ulog_pins_free(pins)

    def verify(self, topic=None):
        """Checks every committed record (of one topic, or all) as ulog_verify
        does; returns VerifyResult(records, partitions, [Problem...]). Never
        raises for corruption: the problems are the answer."""
        problems = []

        def seen(info, _arg):
            i = info.contents
            if i.error:
                problems.append(Problem(i.topic.decode(), i.partition,
                                        _lib.ulog_errname(i.error).decode(),
                                        i.offset, i.resume, i.detail.decode(errors="replace")))
            return 0

        cb = _VERIFY_CB(seen)          # kept alive for the call
        out = _VerifyInfo(ctypes.sizeof(_VerifyInfo))
        rc = _lib.ulog_verify(self._handle, None if topic is None else topic.encode(),
                              cb, None, byref(out))
        if rc < 0 and rc != _CODE["ULOG_ECORRUPT"]:
            _check(rc, self._h)
        return VerifyResult(out.records_done, out.partitions_done, problems)

    def watermarks(self, topic, partition):
        """(low, high): readers see offsets [low, high)."""
        low, high = c_int64(), c_int64()
        _check(_lib.ulog_watermarks(self._handle, topic.encode(),
                                    _int(partition, 32, "partition"), byref(low),
                                    byref(high)), self._h)
        return low.value, high.value

    def append(self, topic, records):
        """Appends records (a list; each a value, or a dict with any of value,
        key, headers=[(key, value)], partition, timestamp in ms) as one call:
        one atomic batch per partition. Returns [(partition, offset)], one per
        record. On failure the exception's `results` holds the same list
        (offset -1: not appended)."""
        records = [r if isinstance(r, dict) else {"value": r} for r in records]
        arr, keep = (_Record * len(records))(), []
        for i, (rec, r) in enumerate(zip(arr, records)):
            unknown = set(r) - {"value", "key", "headers", "partition", "timestamp"}
            if unknown:
                raise TypeError("record %d: unknown fields %s" % (i, sorted(unknown)))
            key, value = _bytes(r.get("key"), "key"), _bytes(r.get("value"), "value")
            keep += [key, value]
            rec.key, rec.key_len = _addr(key), len(key or b"")
            rec.value, rec.value_len = _addr(value), len(value or b"")
            headers = list(r.get("headers") or ())
            if headers:
                harr = (_Header * len(headers))()
                for h, (hk, hv) in zip(harr, headers):
                    hk, hv = _bytes(hk, "header key") or b"", _bytes(hv, "header value")
                    keep += [hk, hv]
                    h.key, h.key_len = _addr(hk), len(hk)
                    h.value, h.value_len = _addr(hv), len(hv or b"")
                rec.headers, rec.header_count = harr, len(headers)
            ts, part = r.get("timestamp"), r.get("partition")
            rec.timestamp = TIMESTAMP_NOW if ts is None else _int(ts, 64, "timestamp")
            rec.partition = PARTITION_ANY if part is None else _int(part, 32, "partition")
            rec.offset = -1
        rc = _lib.ulog_append(self._handle, topic.encode(), arr, len(records))
        results = [(rec.partition, rec.offset) for rec in arr]
        if rc < 0:
            exc = _error(rc, self._h)
            exc.results = results
            raise exc
        return results

    def key_add(self, topic, key_id, key):
        """Gives this handle the key (KEY_BYTES bytes) of key_id for an
        encrypted topic (one created with encryption.key.id). The same key
        again is fine; another key under that id raises ULOG_EEXIST."""
        key = _bytes(key, "key")
        _check(_lib.ulog_key_add(self._handle, topic.encode(), _int(key_id, 32, "key_id", True),
                                 key, len(key)), self._h)

    def key_remove(self, topic, key_id):
        """Forgets (and wipes) a key; ULOG_ENOENT when there is none."""
        _check(_lib.ulog_key_remove(self._handle, topic.encode(),
                                    _int(key_id, 32, "key_id", True)), self._h)

    def append_raw(self, topic, batch):
        """Applies a Batch another log stored (Subscription.poll_batch there)
        at its base offset: same bytes, offsets and timestamps. Doing it again
        is a no-op; other bytes at that offset raise ULOG_ECONFLICT, a batch
        past the end ULOG_EOFFSET."""
        _check(_lib.ulog_append_raw(self._handle, topic.encode(),
                                    _int(batch.partition, 32, "partition"),
                                    _int(batch.base_offset, 64, "base_offset"),
                                    _bytes(batch.data, "data"), len(batch.data)), self._h)

    def start_hook(self, topic, name, ship, acks=False):
        """Starts the replication hook: ship(Batch) is called, in a thread of
        the library, with every committed batch of topic from where the
        hook `name` (a consumer group) last got to; True once it is safely
        elsewhere, anything else (or an exception) to get it again after a
        pause. acks: this hook's position is the replica watermark. Returns
        a Hook; stop() it before closing the Log."""
        def trampoline(b, _arg):
            b = b.contents
            try:
                ok = ship(Batch(b.partition, b.base_offset, b.last_offset, b.record_count,
                                b.max_timestamp, _copy(b.data, b.len)))
            except Exception:      # noqa: BLE001 -- a failed ship is retried
                traceback.print_exc()
                ok = False
            return 0 if ok is True else -1
        fn = _SHIP_FN(trampoline)
        out = c_void_p()
        _check(_lib.ulog_hook_start(self._handle, topic.encode(), name.encode(),
                                    HOOK_ACKS if acks else 0, fn, None, byref(out)), self._h)
        hook = Hook(self, out.value, fn)
        self._hooks.add(hook)
        return hook

    def subscribe(self, topic, group=None, config=None, **kwargs):
        """A Subscription to every partition of topic, at the group's committed
        offsets (group None: none), else per auto.offset.reset."""
        out = c_void_p()
        with _Config(config, kwargs) as cfg:
            _check(_lib.ulog_subscribe(self._handle, topic.encode(),
                                       None if group is None else group.encode(), cfg,
                                       byref(out)), self._h)
        sub = Subscription(self, out.value, topic, group)
        self._subs.add(sub)
        return sub

    def groups(self):
        out = c_void_p()
        _check(_lib.ulog_group_list(self._handle, byref(out)), self._h)
        return _strlist(out)

    def describe_group(self, group):
        """[GroupLag] for every partition the group has committed."""
        desc = c_void_p()
        _check(_lib.ulog_group_describe(self._handle, group.encode(), byref(desc)), self._h)
        try:
            out = []
            for i in range(_lib.ulog_group_desc_count(desc)):
                e = _GroupLag(ctypes.sizeof(_GroupLag))
                _check(_lib.ulog_group_desc_get(desc, i, byref(e)))
                out.append(GroupLag(e.topic.decode(), e.partition, e.committed, e.low,
                                    e.high, e.lag, e.commit_time))
            return out
        finally:
            _lib.ulog_group_desc_free(desc)

    def reset_group(self, group, topic, to="earliest", value=0, partition=None):
        """Moves the group's committed offsets: to "earliest", "latest",
        "offset" (value) or "time" (value in ms); partition None: all."""
        if to not in _RESET:
            raise _error(_EINVAL, detail="reset_group: `to` must be one of " + ", ".join(_RESET))
        part = PARTITION_ANY if partition is None else _int(partition, 32, "partition")
        _check(_lib.ulog_group_reset(self._handle, group.encode(), topic.encode(), part,
                                     _RESET[to], _int(value, 64, "value")), self._h)

    def delete_group(self, group):
        _check(_lib.ulog_group_delete(self._handle, group.encode()), self._h)

# ----------------------------------------------------------------- batch MACs

MAC_KEY_BYTES = 32             # ULOG_MAC_KEY_BYTES
KEY_BYTES = 32                 # ULOG_KEY_BYTES: Log.key_add
SEAL_OVERHEAD = 45             # ULOG_SEAL_OVERHEAD
MAC_BYTES = 32                 # ULOG_MAC_BYTES


def _mac_args(key, topic, batch):
    key = _bytes(key, "key")
    if key is None or len(key) != MAC_KEY_BYTES:
        raise _error(_EINVAL, detail="a MAC key is %d bytes" % MAC_KEY_BYTES)
    return (key, topic.encode(), _int(batch.partition, 32, "partition"),
            _int(batch.base_offset, 64, "base_offset"), _bytes(batch.data, "data"),
            len(batch.data))


def batch_mac(key, topic, batch):
    """The MAC (HMAC-SHA-512-256) of a Batch for its place in topic, under a
    32-byte key the sender and the receiver share."""
    mac = ctypes.create_string_buffer(MAC_BYTES)
    _check(_lib.ulog_batch_mac(*_mac_args(key, topic, batch), mac))
    return mac.raw


def batch_mac_verify(key, topic, batch, mac):
    """Raises ULOG_EAUTH unless mac is the Batch's MAC for its place."""
    mac = _bytes(mac, "mac")
    if mac is None or len(mac) != MAC_BYTES:
        raise _error(_EINVAL, detail="a MAC is %d bytes" % MAC_BYTES)
    _check(_lib.ulog_batch_mac_verify(*_mac_args(key, topic, batch), mac))

# ----------------------------------------------------------------- Hook


class Hook:
    """A running replication hook (ulog_hook_start)."""

    def __init__(self, log, handle, fn):
        self._log, self._h, self._fn = log, handle, fn    # fn: kept alive while it runs

    def stop(self):
        """Stops it and stores its position; raises the error that last kept
        it from reading or storing (say ULOG_ENOENT: the topic was deleted)."""
        if self._h is not None:
            rc = _lib.ulog_hook_stop(self._h)
            self._h = None
            self._log._hooks.discard(self)
            _check(rc)

# ----------------------------------------------------------------- Subscription


class Subscription(_Closing):
    """A subscription (ulog_subscribe); use it from one thread at a time."""

    def __init__(self, log, handle, topic, group):
        self._log, self._h, self.topic, self.group = log, handle, topic, group
        self._msg = _Msg()

    @property
    def _handle(self):
        if self._h is None:
            raise ValueError("the subscription is closed")
        self._log._handle            # the Log must be open, and ours
        return self._h

    def close(self):
        """Closes it (waits for asynchronous commits; does not commit)."""
        if self._h is not None:
            _lib.ulog_sub_close(self._h)
            self._h = None
            self._log._subs.discard(self)

    def _check(self, rc):
        return _check(rc, self._log._h)

    def poll(self, timeout_ms=-1):
        """The next Message, or None if none came within timeout_ms (0: do not
        wait; negative or None: wait forever, in slices so that Ctrl-C works)."""
        forever = timeout_ms is None or timeout_ms < 0
        while True:
            wait = 250 if forever else _int(timeout_ms, 32, "timeout_ms")
            rc = _lib.ulog_poll(self._handle, wait, byref(self._msg))
            if rc != _ETIMEDOUT:
                break
            if not forever:
                return None
        self._check(rc)
        m = self._msg   # borrowed until the next call: copy everything now
        headers = []
        for i in range(m.header_count):
            h = _Header()
            _check(_lib.ulog_msg_header(byref(m), i, byref(h)))
            headers.append((_copy(h.key, h.key_len) or b"", _copy(h.value, h.value_len)))
        return Message(m.topic.decode(), m.partition, m.offset, m.timestamp,
                       _copy(m.key, m.key_len), _copy(m.value, m.value_len), headers)

    def poll_batch(self, timeout_ms=-1):
        """The next stored Batch of any partition, whole, or None if none came
        within timeout_ms (as for poll)."""
        forever = timeout_ms is None or timeout_ms < 0
        b = _Batch(ctypes.sizeof(_Batch))
        while True:
            wait = 250 if forever else _int(timeout_ms, 32, "timeout_ms")
            rc = _lib.ulog_poll_batch(self._handle, wait, byref(b))
            if rc != _ETIMEDOUT:
                break
            if not forever:
                return None
        self._check(rc)
        return Batch(b.partition, b.base_offset, b.last_offset, b.record_count,
                     b.max_timestamp, _copy(b.data, b.len))

    def messages(self, timeout_ms=0):
        """Yields messages until a poll(timeout_ms) times out."""
        while True:
            msg = self.poll(timeout_ms)
            if msg is None:
                return
            yield msg

    def __iter__(self):
        """Every message available now: iteration stops when caught up."""
        return self.messages(0)

    def _part(self, partition):
        return PARTITION_ANY if partition is None else _int(partition, 32, "partition")

    def seek(self, partition, offset):
        """Next poll from partition (None: every one) returns `offset`."""
        self._check(_lib.ulog_seek(self._handle, self._part(partition),
                                   _int(offset, 64, "offset")))

    def seek_time(self, partition, timestamp_ms):
        """To the first record with timestamp >= timestamp_ms (else the end)."""
        self._check(_lib.ulog_seek_time(self._handle, self._part(partition),
                                        _int(timestamp_ms, 64, "timestamp_ms")))

    def position(self, partition):
        off = c_int64()
        self._check(_lib.ulog_position(self._handle, _int(partition, 32, "partition"),
                                       byref(off)))
        return off.value

    def commit(self):
        """Durably stores every partition's position for the group."""
        self._check(_lib.ulog_commit(self._handle))

    def commit_offsets(self, offsets):
        """Durably stores {partition: next offset to read}, all or none."""
        arr = (_Offset * len(offsets))(*[(_int(p, 32, "partition"), _int(o, 64, "offset"))
                                         for p, o in offsets.items()])
        self._check(_lib.ulog_commit_offsets(self._handle, arr, len(arr)))

    def commit_async(self, callback=None):
        """commit() without waiting; callback(None or UlogError) runs inside a
        later poll/commit/close of this subscription. An exception it raises
        is printed by ctypes and otherwise ignored."""
        token = next(_tokens)
        _pending[token] = (callback, self._log)
        rc = _lib.ulog_commit_async(self._handle, _commit_done, token)
        if rc < 0:
            del _pending[token]
            self._check(rc)

    def fileno(self):
        """A descriptor that turns readable when records may be waiting (for
        select/poll/selectors); poll(0) until None before waiting again."""
        return self._check(_lib.ulog_sub_fd(self._handle))
