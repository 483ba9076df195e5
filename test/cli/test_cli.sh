#!/bin/sh
# test_cli.sh -- end-to-end test of the `ulog` command-line tool.
#
#   sh test/cli/test_cli.sh path/to/ulog
#
# Every command runs against a fresh log root under $TMPDIR and its output
# is compared with what it must be, exactly where the output is
# deterministic. Prints one line per failed check and a summary; exit
# status 1 if any check failed. (make check-cli runs it.)

set -u
U=${1:?usage: test_cli.sh path/to/ulog}
T=$(mktemp -d "${TMPDIR:-/tmp}/cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
export ULOG_DIR="$T/root"
checks=0
fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# run CMD...: stdout to $T/out, stderr to $T/err, exit status in $rc.
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }

# expect NAME STATUS: the last run exited with STATUS.
expect() {
    checks=$((checks + 1))
    if [ "$rc" != "$2" ]; then
        fail "$1: exit status $rc, want $2"
        sed 's/^/    stderr: /' "$T/err" >&2
        return 1
    fi
}

# same NAME: the last run's stdout is exactly $T/exp.
same() {
    checks=$((checks + 1))
    if ! cmp -s "$T/out" "$T/exp"; then
        fail "$1: output differs (- want, + got)"
        diff -u "$T/exp" "$T/out" | sed 's/^/    /' >&2
    fi
}

# has NAME FILE PATTERN: FILE has a line matching the basic regex PATTERN.
has() {
    checks=$((checks + 1))
    grep -q -- "$3" "$2" || { fail "$1: no line matching '$3' in $(basename "$2"):"; sed 's/^/    /' "$2" >&2; }
}

# ok NAME CMD...: CMD succeeds (status 0).
ok() { name=$1; shift; run "$@"; expect "$name" 0; }

# ---------------------------------------------------------------- help, usage

ok "--version" "$U" --version
has "--version" "$T/out" '^ulog [0-9][0-9.]* (library [0-9.]*)$'
for c in "" "topics" "topics create" "topics list" "topics describe" "topics alter" \
         "topics delete" "topics clean" "topics delete-records" "produce" "consume" \
         "groups" "groups list" "groups describe" "groups reset" "groups delete" "dump" \
         "verify" "perf" "perf produce" "perf consume" "perf latency" "mirror"; do
    # shellcheck disable=SC2086
    ok "ulog $c --help" "$U" $c --help
    has "ulog $c --help" "$T/out" '^usage: ulog'
done

usage_error() {
    name=$1; shift
    run "$@"
    expect "usage error: $name" 2 && has "usage error: $name" "$T/err" '^ulog.*: .*'
}
usage_error "no command" "$U"
usage_error "unknown command" "$U" frobnicate
usage_error "consume without topic" "$U" consume
usage_error "mirror without direction" "$U" mirror
usage_error "mirror, unknown direction" "$U" mirror sideways t --brokers 127.0.0.1:9
usage_error "mirror without brokers" "$U" mirror to-kafka t
usage_error "mirror to-kafka with --topic" "$U" mirror to-kafka t --brokers 127.0.0.1:9 --topic u
usage_error "mirror from-kafka with --name" "$U" mirror from-kafka t --brokers 127.0.0.1:9 --name h
usage_error "mirror bad -X" "$U" mirror to-kafka t --brokers 127.0.0.1:9 -X nothing
usage_error "unknown option" "$U" consume t -x
usage_error "missing argument" "$U" consume t -o
usage_error "bad -o" "$U" consume t -o sometime
usage_error "bad -F" "$U" consume t -F '%q'
usage_error "bad -p" "$U" produce t -p abc
usage_error "bad -H" "$U" produce t -H novalue
usage_error "bad --flush" "$U" produce t --flush sometimes
usage_error "reset without --to" "$U" groups reset g t
usage_error "two --to" "$U" groups reset g t --to-earliest --to-latest
usage_error "bad config" "$U" topics create t -c segment.bytes=12
usage_error "unknown config" "$U" topics create t -c no.such.setting=1
usage_error "perf without --records" "$U" perf produce t --record-size 10
usage_error "alter without -c" "$U" topics alter t
usage_error "alter with -p" "$U" topics alter t -p 3 -c flush.ms=5
usage_error "alter bad value" "$U" topics alter t -c flush.policy=sometimes
usage_error "delete without name" "$U" topics delete
usage_error "bad retention.ms" "$U" topics create t -c retention.ms=-2
usage_error "bad segment.ms" "$U" topics create t -c segment.ms=0
usage_error "clean: unknown option" "$U" topics clean -x
usage_error "delete-records without name" "$U" topics delete-records -p 0 -o 5
usage_error "delete-records, two names" "$U" topics delete-records t u -p 0 -o 5
usage_error "delete-records without -p" "$U" topics delete-records t -o 5
usage_error "delete-records without -o" "$U" topics delete-records t -p 0
usage_error "delete-records bad -p" "$U" topics delete-records t -p x -o 5
usage_error "delete-records negative -o" "$U" topics delete-records t -p 0 -o -3
usage_error "delete-records bad -o" "$U" topics delete-records t -p 0 -o start
usage_error "no log root" env -u ULOG_DIR "$U" topics list
run "$U" -d "$T/nowhere" topics list
expect "not a log root" 1 && has "not a log root" "$T/err" 'not a log root'
checks=$((checks + 1)); [ ! -e "$T/nowhere" ] || fail "a mistyped -d made a directory"

# ---------------------------------------------------------------- topics

ok "topics create orders" "$U" topics create orders -p 3
printf 'created topic orders with 3 partitions\n' > "$T/exp"; same "topics create orders"
ok "topics create events" "$U" topics create events -c flush.policy=none -c segment.bytes=4096
ok "topics create timed" "$U" -d "$ULOG_DIR" topics create timed
run "$U" topics create orders
expect "topics create existing" 1 && has "topics create existing" "$T/err" 'ULOG_EEXIST'
ok "topics list" "$U" topics list
printf 'events\norders\ntimed\n' > "$T/exp"; same "topics list"

# ---------------------------------------------------------------- produce, consume

printf 'k1:v1\nk2:v:with:colons\nno separator\n\nk3:\nlast:no newline' > "$T/in"
ok "produce -K -H" sh -c '"$0" produce events -K : -H src=cli -H trace=7 <"$1"' "$U" "$T/in"
[ -s "$T/out" ] && fail "produce printed on stdout without -v"
ok "consume -F" "$U" consume events -F '%t %p %o k=%k(%K) v=%s(%S) h=%h\n'
cat > "$T/exp" <<'EOF'
events 0 0 k=k1(2) v=v1(2) h=src=cli,trace=7
events 0 1 k=k2(2) v=v:with:colons(13) h=src=cli,trace=7
events 0 2 k=(-1) v=no separator(12) h=src=cli,trace=7
events 0 3 k=(-1) v=(0) h=src=cli,trace=7
events 0 4 k=k3(2) v=(0) h=src=cli,trace=7
events 0 5 k=last(4) v=no newline(10) h=src=cli,trace=7
EOF
same "consume -F"
ok "consume default format" "$U" consume events -c 3
printf 'v1\nv:with:colons\nno separator\n' > "$T/exp"; same "consume default format"
ok "consume -F escapes" "$U" consume events -o 4 -F '%o\t%k\\%%\n'
printf '4\tk3\\%%\n5\tlast\\%%\n' > "$T/exp"; same "consume -F escapes"

# JSON in, JSON out: nulls, headers (null value, repeated key), a fixed
# timestamp, a byte that is not UTF-8, UTF-8, escapes.
cat > "$T/in" <<'EOF'
{"key":"a","value":"x\"y\\z\n","headers":{"h":"1","n":null,"h":"2"},"timestamp":1000}
{"key":null,"value":null,"timestamp":2000}
{ "value" : "caf\u00c3\u00a9 \u00ff \u0001 é €", "timestamp" : 3000, "partition" : 0 }
EOF
ok "produce --json" sh -c '"$0" produce events --json <"$1"' "$U" "$T/in"
ok "consume --json" "$U" consume events -o 6 --json
cat > "$T/exp" <<'EOF'
{"topic":"events","partition":0,"offset":6,"timestamp":1000,"key":"a","value":"x\"y\\z\n","headers":{"h":"1","n":null,"h":"2"}}
{"topic":"events","partition":0,"offset":7,"timestamp":2000,"key":null,"value":null,"headers":{}}
{"topic":"events","partition":0,"offset":8,"timestamp":3000,"key":null,"value":"café \u00ff \u0001 é €","headers":{}}
EOF
same "consume --json"
ok "consume %h with null header" "$U" consume events -o 6 -c 1 -F '%h|%K|%S\n'
printf 'h=1,n,h=2|1|6\n' > "$T/exp"; same "consume %h with null header"
for bad in '{"key":1}' '{"key":"a",}' '{"key":"a"} x' '{"kex":"a"}' '{"key":"a","key":"b"}' \
           '{"value":"\ud800"}' '{"timestamp":1.5}' '{"partition":3}' '["a"]'; do
    run sh -c 'printf "%s\n" "$1" | "$0" produce events --json' "$U" "$bad"
    expect "produce --json $bad" 1 && has "produce --json $bad" "$T/err" 'record 1: '
done

# -z: NUL-terminated records; an empty one in the middle, none after the last.
ok "produce -z" sh -c 'printf "x\0line\nbreak\0\0z" | "$0" produce events -z' "$U"
ok "consume -z records" "$U" consume events -o 9 -F '%o:%S:%s|'
printf '9:1:x|10:10:line\nbreak|11:0:|12:1:z|' > "$T/exp"; same "consume -z records"

# consume --json | produce --json copies every record exactly.
ok "create copy" "$U" topics create copy
ok "json round trip" sh -c '"$0" consume events --json | "$0" produce copy --json' "$U"
"$U" consume events -F '%o %T %K %k %S %s %h\n' > "$T/exp"
ok "consume copy" "$U" consume copy -F '%o %T %K %k %S %s %h\n'
same "json round trip"

# Keys spread over partitions as the Java client's murmur2 puts them.
ok "produce by key" sh -c 'printf "a:1\nb:2\nc:3\nd:4\n" | "$0" produce orders -K :' "$U"
ok "consume orders" "$U" consume orders -F '%k %p %o\n'
sort "$T/out" > "$T/sorted"; mv "$T/sorted" "$T/out"
printf 'a 1 0\nb 2 0\nc 1 1\nd 2 1\n' > "$T/exp"; same "partition by key"
ok "consume -p" "$U" consume orders -p 1 -F '%k\n'
printf 'a\nc\n' > "$T/exp"; same "consume -p"
ok "produce -p" sh -c 'echo e:5 | "$0" produce orders -K : -p 2' "$U"
ok "consume -p 2" "$U" consume orders -p 2 -F '%k %o\n'
printf 'b 0\nd 1\ne 2\n' > "$T/exp"; same "produce -p"

# Where to start: an offset, the last N, the end, a time.
printf '%s\n' '{"value":"t1","timestamp":1000}' '{"value":"t2","timestamp":2000}' \
              '{"value":"t3","timestamp":3000}' > "$T/in"
ok "produce timed" sh -c '"$0" produce timed --json <"$1"' "$U" "$T/in"
ok "consume -o 1" "$U" consume timed -o 1;     printf 't2\nt3\n' > "$T/exp"; same "consume -o 1"
ok "consume -o -1" "$U" consume timed -o -1;   printf 't3\n' > "$T/exp";     same "consume -o -1"
ok "consume -o -9" "$U" consume timed -o -9;   printf 't1\nt2\nt3\n' > "$T/exp"; same "consume -o -9"
ok "consume -o end" "$U" consume timed -o end; : > "$T/exp"; same "consume -o end"
ok "consume -o @2000" "$U" consume timed -o @2000; printf 't2\nt3\n' > "$T/exp"; same "consume -o @2000"
ok "consume -o @2500" "$U" consume timed -o @2500 -F '%o %T %s\n'
printf '2 3000 t3\n' > "$T/exp"; same "consume -o @2500"
ok "consume -o @9999" "$U" consume timed -o @9999; : > "$T/exp"; same "consume -o @9999"
ok "consume -o beginning -c 1" "$U" consume timed -o beginning -c 1; printf 't1\n' > "$T/exp"; same "-c 1"
run "$U" consume timed -o 7
expect "consume -o past the end" 1 && has "consume -o past the end" "$T/err" 'ULOG_EOFFSET'

# A record never waits for the batch to fill: the first line is committed
# while the producer still waits for the second.
ok "produce does not hold records back" sh -c '
    { echo first; sleep 1; "$0" consume timed -o -1 >"$1"; echo second; } | "$0" produce timed -b 100' \
    "$U" "$T/mid"
printf 'first\n' > "$T/exp"; cp "$T/mid" "$T/out"; same "produce does not hold records back"

# --flush: a check of the topic's policy, never a silent downgrade.
run sh -c 'echo x | "$0" produce events --flush always' "$U"
expect "--flush always on a none topic" 1 && has "--flush always" "$T/err" 'flush.policy is none'
ok "--flush interval on an always topic" sh -c 'echo x | "$0" produce timed --flush interval -v' "$U"
has "produce -v" "$T/err" 'timed: 1 records .* in 1 appends, flush.policy always'

# ---------------------------------------------------------------- groups

ok "consume -G -c 3" "$U" consume timed -G billing -c 3
printf 't1\nt2\nt3\n' > "$T/exp"; same "consume -G -c 3"
ok "consume -G resumes" "$U" consume timed -G billing -c 1
printf 'first\n' > "$T/exp"; same "consume -G resumes"
ok "groups list" "$U" groups list
printf 'billing\n' > "$T/exp"; same "groups list"
ok "groups describe" "$U" groups describe billing
has "groups describe header" "$T/out" '^GROUP  *TOPIC  *PARTITION  *COMMITTED  *LOW  *HIGH  *LAG  *COMMIT-TIME$'
has "groups describe lag" "$T/out" '^billing  *timed  *0  *4  *0  *6  *2  *20[0-9-]*T[0-9:.]*Z$'
ok "groups reset --to-earliest" "$U" groups reset billing timed --to-earliest
has "groups reset --to-earliest" "$T/out" '^billing  *timed  *0  *0  *0  *6  *6 '
ok "consume after reset" "$U" consume timed -G billing -c 1
printf 't1\n' > "$T/exp"; same "consume after reset"
ok "groups reset --to-offset" "$U" groups reset billing timed --to-offset 5 -p 0
has "groups reset --to-offset" "$T/out" '^billing  *timed  *0  *5 '
ok "groups reset --to-datetime" "$U" groups reset billing timed --to-datetime 2000
has "groups reset --to-datetime" "$T/out" '^billing  *timed  *0  *1 '
ok "groups reset --to-latest" "$U" groups reset billing timed --to-latest
has "groups reset --to-latest" "$T/out" '^billing  *timed  *0  *6  *0  *6  *0 '
run "$U" groups reset billing timed --to-offset 99
expect "groups reset out of range" 1 && has "groups reset out of range" "$T/err" 'ULOG_EOFFSET'
ok "groups delete" "$U" groups delete billing
ok "groups list after delete" "$U" groups list
: > "$T/exp"; same "groups list after delete"
run "$U" groups describe billing
expect "groups describe deleted" 1 && has "groups describe deleted" "$T/err" 'ULOG_ENOENT'

# -p with -G commits only that partition.
ok "consume -G -p" "$U" consume orders -G one -p 1
ok "describe -G -p" "$U" groups describe one
checks=$((checks + 1))
[ "$(grep -c '^one ' "$T/out")" = 1 ] || fail "consume -G -p committed other partitions"
has "describe -G -p" "$T/out" '^one  *orders  *1  *2 '

# -f follows until SIGTERM, then commits and exits 0. The group starts at
# the end (a reset), so "live" is the one record it prints however late
# the consumer gets going.
ok "groups reset a new group" "$U" groups reset tail timed --to-latest
"$U" consume timed -f -G tail >"$T/follow" 2>"$T/follow.err" &
pid=$!
sleep 0.3
echo live | "$U" produce timed
i=0
while ! grep -q live "$T/follow" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid
wait $pid
rc=$?
cp "$T/follow.err" "$T/err"
expect "consume -f ends on SIGTERM" 0
printf 'live\n' > "$T/exp"; cp "$T/follow" "$T/out"; same "consume -f"
ok "consume -f committed" "$U" groups describe tail
has "consume -f committed" "$T/out" '^tail  *timed  *0  *7  *0  *7  *0 '

# ---------------------------------------------------------------- errors

for c in "consume nosuch" "produce nosuch" "topics describe nosuch" "verify nosuch" \
         "perf consume nosuch --records 1" "topics clean nosuch" \
         "topics delete-records nosuch -p 0 -o 0" "topics delete-records nosuch -p 0 -o end"; do
    # shellcheck disable=SC2086
    run "$U" $c </dev/null
    expect "$c" 1 && has "$c" "$T/err" '^ulog: .*nosuch.*: .* (ULOG_ENOENT'
done

# ---------------------------------------------------------------- encryption

head -c 32 /dev/urandom > "$T/key1"
od -An -v -tx1 "$T/key1" | tr -d ' \n' > "$T/key1.hex"; echo >> "$T/key1.hex"
head -c 32 /dev/urandom > "$T/key2"
ok "topics create encrypted" "$U" topics create sealed -c encryption.key.id=1
printf 'a:secret one\nb:secret two\n' > "$T/in"
run sh -c '"$0" produce sealed -K : <"$1"' "$U" "$T/in"
expect "produce without the key" 1 && has "produce without the key" "$T/err" 'ULOG_ENOKEY'
ok "produce with -k" sh -c '"$0" -k sealed:1:"$2" produce sealed -K : <"$1"' "$U" "$T/in" "$T/key1"
checks=$((checks + 1))
grep -rq 'secret one' "$ULOG_DIR/topics/sealed" && fail "an encrypted value is in a segment in the clear"
ok "consume with the key in hex" "$U" -k "sealed:1:$T/key1.hex" consume sealed -e -F '%k=%s\n'
printf 'a=secret one\nb=secret two\n' > "$T/exp"; same "consume with the key in hex"
run "$U" consume sealed -e
expect "consume without the key" 1 && has "consume without the key" "$T/err" 'ULOG_ENOKEY'
run "$U" -k "sealed:1:$T/key2" consume sealed -e
expect "consume with a wrong key" 1 && has "consume with a wrong key" "$T/err" 'ULOG_EAUTH'
run "$U" -k "sealed:x:$T/key1" consume sealed -e
expect "-k with a bad id" 2
run "$U" -k "sealed:1" consume sealed -e
expect "-k without a file" 2
printf 'short' > "$T/shortkey"
run "$U" -k "sealed:1:$T/shortkey" consume sealed -e
expect "-k with a short key" 1 && has "-k with a short key" "$T/err" 'a key is 32 bytes'
# A raw key may end in a newline byte; it is not taken for a line end.
printf '0123456789abcdef0123456789abcde\n' > "$T/key3"
ok "alter to key 3" "$U" topics alter sealed -c encryption.key.id=3
ok "produce with a raw key ending in a newline" sh -c \
    'echo third | "$0" -k sealed:3:"$1" produce sealed' "$U" "$T/key3"
ok "consume with both keys" "$U" -k "sealed:1:$T/key1" -k "sealed:3:$T/key3" consume sealed -e
printf 'secret one\nsecret two\nthird\n' > "$T/exp"; same "consume with both keys"
run "$U" topics alter sealed -c encryption.key.id=-1
expect "alter encryption off" 1 && has "alter encryption off" "$T/err" 'from its creation'
ok "topics delete sealed" "$U" topics delete sealed

# ---------------------------------------------------------------- dump

seg="$ULOG_DIR/topics/timed/0/00000000000000000000.log"
ok "dump" "$U" dump "$seg"
has "dump header" "$T/out" 'POSITION *BASE-OFFSET *LAST-OFFSET *COUNT'
has "dump first batch" "$T/out" '^ *0  *0  *2  *3  *1000  *3000  *[0-9]*  *2 0x0000  ok$'
has "dump summary" "$T/out" '^[0-9]* batches, 0 bad, 7 records (offsets 0\.\.6), clean end$'
ok "dump --records" "$U" dump --records "$seg"
has "dump --records" "$T/out" '^    offset 2  timestamp 3000  key -1  value 2  headers 0$'
checks=$((checks + 1))
[ "$(grep -c '^    offset ' "$T/out")" = 7 ] || fail "dump --records: not 7 record lines"
cp "$seg" "$T/bad.log"
printf 'X' | dd of="$T/bad.log" bs=1 seek=70 conv=notrunc 2>/dev/null
run "$U" dump "$T/bad.log"
expect "dump of a flipped byte" 1 && has "dump of a flipped byte" "$T/out" ' 0  *0  *2  *3 .*BAD (crc)$'
has "dump of a flipped byte: summary" "$T/out" ' 1 bad,'
# Where the batches end: the file may run on in zeros (an always topic's
# active segment is sized ahead), which dump reports as unused.
run "$U" dump "$seg"
size=$(sed -n 's/^ *\([0-9]*\)  [0-9]* zero bytes to the end of the file.*/\1/p' "$T/out")
[ -n "$size" ] || size=$(wc -c < "$seg")
head -c $((size - 5)) "$seg" > "$T/torn.log"
run "$U" dump "$T/torn.log"
expect "dump of a torn file" 1 && has "dump of a torn file" "$T/out" 'torn tail'
run "$U" dump "$T/nonexistent.log"
expect "dump of a missing file" 1

# ---------------------------------------------------------------- verify

ok "verify" "$U" verify
has "verify" "$T/out" '^verified 6 partitions, [0-9]* records: 0 problems$'
ok "verify TOPIC" "$U" verify timed
printf 'verified 1 partition, 7 records: 0 problems\n' > "$T/exp"; same "verify TOPIC"
cp -R "$ULOG_DIR" "$T/broken"
printf 'X' | dd of="$T/broken/topics/timed/0/00000000000000000000.log" bs=1 seek=70 conv=notrunc 2>/dev/null
run "$U" -d "$T/broken" verify
expect "verify a corrupt copy" 1
has "verify a corrupt copy: problem" "$T/out" '^problem: topic timed partition 0: offsets 0\.\.[0-9]* not verified: .*ULOG_ECORRUPT'
has "verify a corrupt copy: summary" "$T/out" '^verified 6 partitions, [0-9]* records: 1 problem$'

# ---------------------------------------------------------------- alter, delete

ok "topics alter" "$U" topics alter events -c max.message.bytes=300 -c flush.ms=250
printf 'altered topic events: 2 settings\n' > "$T/exp"; same "topics alter"
ok "describe after alter" "$U" topics describe events
has "alter: changed" "$T/out" '^  max.message.bytes  *300$'
has "alter: changed too" "$T/out" '^  flush.ms  *250$'
has "alter: kept" "$T/out" '^  segment.bytes  *4096$'
big=$(printf '%0400d' 0)
run sh -c "echo $big | \"$U\" produce events"
expect "produce past the altered max.message.bytes" 1 && has "altered limit" "$T/err" 'ULOG_ETOOBIG'
run "$U" topics alter events -c auto.offset.reset=earliest
expect "alter: not a topic setting" 1 && has "alter: not a topic setting" "$T/err" 'does not apply to a topic'
run "$U" topics alter nosuch -c flush.ms=5
expect "alter: no such topic" 1 && has "alter: no such topic" "$T/err" 'ULOG_ENOENT'

ok "create doomed" "$U" topics create doomed -p 2
printf 'a\nb\nc\n' | "$U" produce doomed
ok "consume doomed by group" "$U" consume doomed -G dg -o beginning -e
ok "topics delete" "$U" topics delete doomed
printf 'deleted topic doomed\n' > "$T/exp"; same "topics delete"
ok "list after delete" "$U" topics list
checks=$((checks + 1)); grep -qx doomed "$T/out" && fail "deleted topic still listed"
checks=$((checks + 1)); [ ! -e "$ULOG_DIR/topics/doomed" ] || fail "deleted topic's directory left"
run "$U" groups describe dg
expect "group offsets of a deleted topic go" 1
run "$U" topics delete doomed
expect "delete twice" 1 && has "delete twice" "$T/err" 'ULOG_ENOENT'
ok "delete --if-exists" "$U" topics delete --if-exists doomed
ok "recreate doomed" "$U" topics create doomed
ok "recreated is empty" "$U" consume doomed -o beginning -e
: > "$T/exp"; same "recreated is empty"

# ---------------------------------------------------------------- retention

# row TOPIC P: "LOW HIGH SEGMENTS BYTES RECLAIMED CLEANED CLEAN-END DIRTY" of
# partition P, from the table of topics describe.
row() {
    "$U" topics describe "$1" |
        awk -v p="$2" 'NF == 10 && $1 == p { print $2, $3, $5, $6, $7, $8, $9, $10 }'
}
# is NAME CONDITION...: a check that `test CONDITION` holds.
is() {
    name=$1; shift
    checks=$((checks + 1))
    [ "$@" ] || fail "$name: [ $* ] does not hold"
}

ok "create retained" "$U" topics create retained -c segment.bytes=4096 -c retention.bytes=8192 \
    -c flush.policy=none
ok "describe retained" "$U" topics describe retained
has "retention.bytes set" "$T/out" '^  retention.bytes  *8192$'
has "retention.ms defaults to -1" "$T/out" '^  retention.ms  *-1$'
has "segment.ms defaults to 7 days" "$T/out" '^  segment.ms  *604800000$'
has "describe: columns" "$T/out" \
    '^  PARTITION  *LOW  *HIGH  *WRITE-END  *SEGMENTS  *BYTES  *RECLAIMED  *CLEANED  *CLEAN-END  *DIRTY$'
has "describe: never cleaned" "$T/out" '^  0  *0  *0  *0  *[0-9]*  *0  *0  *-  *-  *-$'
# 300 records of 101 bytes, 5 to a batch: about 6 batches to a 4 KiB segment.
awk 'BEGIN { for (i = 0; i < 300; i++) printf "r%03d-%096d\n", i, 0 }' > "$T/in"
ok "produce many segments" sh -c '"$0" produce retained -b 5 <"$1"' "$U" "$T/in"
ok "groups reset before clean" "$U" groups reset below retained --to-earliest
# shellcheck disable=SC2046
set -- $(row retained 0)
low0=${1:-x} high0=${2:-x} segs0=${3:-0} bytes0=${4:-0}
is "before clean: low" "$low0" = 0
is "before clean: high" "$high0" = 300
is "before clean: many segments" "$segs0" -gt 5

ok "topics clean" "$U" topics clean retained
has "topics clean: summary" "$T/out" \
    '^cleaned 1 partition: [1-9][0-9]* segments\{0,1\} deleted, [1-9][0-9]* bytes reclaimed$'
checks=$((checks + 1)); [ -s "$T/err" ] && fail "topics clean wrote on stderr, not a terminal"
deleted=$(sed -n 's/^cleaned .*: \([0-9]*\) segments* deleted, .*/\1/p' "$T/out")
freed=$(sed -n 's/^cleaned .* \([0-9]*\) bytes reclaimed$/\1/p' "$T/out")
# shellcheck disable=SC2046
set -- $(row retained 0)
low1=${1:-0} high1=${2:-x} segs1=${3:-x} bytes1=${4:-x} reclaimed1=${5:-x} cleaned1=${6:-x}
is "after clean: low moved up" "$low1" -gt 0
is "after clean: high" "$high1" = 300
is "after clean: fewer segments" "$segs1" -lt "$segs0"
is "after clean: segments deleted as reported" $((segs0 - segs1)) = "${deleted:-x}"
is "after clean: fewer bytes" "$bytes1" -lt "$bytes0"
is "after clean: at most retention.bytes and a segment left" "$bytes1" -le $((8192 + 2 * 4096))
is "after clean: RECLAIMED as reported" "$reclaimed1" = "${freed:-y}"
printf '%s\n' "$cleaned1" > "$T/cleaned"
has "after clean: CLEANED is a time" "$T/cleaned" '^20[0-9-]*T[0-9:.]*Z$'
n=0 first=
for f in "$ULOG_DIR"/topics/retained/0/*.log; do      # in name order: oldest first
    [ -e "$f" ] || continue
    n=$((n + 1))
    [ -n "$first" ] || first=$(basename "$f")
done
is "after clean: segment files as described" "$n" = "$segs1"
is "after clean: the first segment file starts at LOW" "$first" = "$(printf '%020d.log' "$low1")"
ok "consume after clean" "$U" consume retained -o beginning -e -c 1 -F '%o\n'
printf '%s\n' "$low1" > "$T/exp"; same "consume -o beginning starts at LOW"
ok "consume -G below the log start" "$U" consume retained -G below -c 1 -F '%o\n'
same "a group below the log start resumes at LOW"
ok "verify after clean" "$U" verify retained
printf 'verified 1 partition, %d records: 0 problems\n' $((300 - low1)) > "$T/exp"
same "verify after clean"
ok "topics clean again" "$U" topics clean retained
printf 'cleaned 1 partition: 0 segments deleted, 0 bytes reclaimed\n' > "$T/exp"
same "topics clean again: nothing left to delete"
ok "topics clean, every topic" "$U" topics clean
has "topics clean, every topic" "$T/out" \
    '^cleaned [1-9][0-9]* partitions: 0 segments deleted, 0 bytes reclaimed$'
ok "other topics keep every record" "$U" consume timed -o beginning -e -c 1
printf 't1\n' > "$T/exp"; same "other topics keep every record"
run "$U" topics clean retained nosuch
expect "topics clean with a missing topic" 1 && has "topics clean with a missing topic" "$T/err" \
    '^ulog: topics clean nosuch: .*(ULOG_ENOENT'
checks=$((checks + 1)); [ -s "$T/out" ] && fail "topics clean of a missing topic cleaned the others"
if script -qc true /dev/null >/dev/null 2>&1; then
    # On a terminal: a progress bar, then the summary on a clean line.
    ok "topics clean on a terminal" script -qc "\"$U\" topics clean retained" /dev/null </dev/null
    has "progress bar" "$T/out" '\[#*\] 100%  1/1 partitions  0 segments, 0 bytes  retained/0'
    tr '\r' '\n' < "$T/out" > "$T/lines"
    has "summary after the bar" "$T/lines" '^.*cleaned 1 partition: 0 segments deleted'
fi

target=$((low1 + 7))
ok "delete-records" "$U" topics delete-records retained -p 0 -o $target
printf 'topic retained partition 0: log start offset now %d\n' $target > "$T/exp"
same "delete-records"
is "delete-records: LOW" "$(row retained 0 | cut -d' ' -f1)" = $target
ok "consume from the new log start" "$U" consume retained -o beginning -e -F '%o\n'
awk -v a=$target 'BEGIN { for (i = a; i < 300; i++) print i }' > "$T/exp"
same "consume -o beginning -e starts at the new log start"
ok "delete-records backwards" "$U" topics delete-records retained -p 0 -o 1
printf 'topic retained partition 0: log start offset now %d\n' $target > "$T/exp"
same "delete-records backwards changes nothing"
run "$U" topics delete-records retained -p 0 -o 301
expect "delete-records past the end" 1 && has "delete-records past the end" "$T/err" 'ULOG_EOFFSET'
run "$U" topics delete-records retained -p 1 -o 0
expect "delete-records of a partition the topic lacks" 1
ok "delete-records to the end" "$U" topics delete-records retained -p 0 -o end
printf 'topic retained partition 0: log start offset now 300\n' > "$T/exp"
same "delete-records to the end"
ok "consume an emptied partition" "$U" consume retained -o beginning -e
: > "$T/exp"; same "consume an emptied partition"
ok "produce after delete-records" sh -c 'echo again | "$0" produce retained' "$U"
ok "offsets are not reused" "$U" consume retained -o beginning -e -F '%o %s\n'
printf '300 again\n' > "$T/exp"; same "offsets are not reused"

# retention.groups: retention.bytes=0 alone would delete every closed
# segment; the groups named keep what they have not committed past.
ok "create held" "$U" topics create held -c segment.bytes=4096 -c retention.bytes=0 \
    -c flush.policy=none -c retention.groups=a,b
usage_error "bad retention.groups" "$U" topics create held2 -c retention.groups=,a
usage_error "alter bad retention.groups" "$U" topics alter held -c retention.groups=a,,b
awk 'BEGIN { for (i = 0; i < 300; i++) printf "r%03d-%096d\n", i, 0 }' > "$T/in"
ok "produce held" sh -c '"$0" produce held -b 5 <"$1"' "$U" "$T/in"
ok "groups reset a" "$U" groups reset a held --to-offset 100
ok "describe held" "$U" topics describe held
has "retention.groups set" "$T/out" '^  retention.groups  *a,b$'
has "HELD-BY columns" "$T/out" '^  HELD-BY-GROUP  *PARTITION  *COMMITTED  *HELD-BYTES$'
has "HELD-BY a" "$T/out" '^  a  *0  *100  *[1-9][0-9]*$'
has "HELD-BY b, no commit" "$T/out" '^  b  *0  *-  *[1-9][0-9]*$'
is "HELD-BY: one row per group" "$(sed -n '/HELD-BY-GROUP/,$p' "$T/out" | grep -c .)" = 3
ok "topics clean held, b has no commit" "$U" topics clean held
printf 'cleaned 1 partition: 0 segments deleted, 0 bytes reclaimed\n' > "$T/exp"
same "a group with no commit holds everything"
is "held: LOW stays 0" "$(row held 0 | cut -d' ' -f1)" = 0
ok "groups reset b" "$U" groups reset b held --to-offset 200
ok "topics clean held, a at 100" "$U" topics clean held
has "topics clean held: deleted" "$T/out" '^cleaned 1 partition: [1-9][0-9]* segments\{0,1\} deleted'
lowh=$(row held 0 | cut -d' ' -f1)
is "held: LOW moved up" "${lowh:-0}" -gt 0
is "held: LOW at or below a's offset" "${lowh:-999}" -le 100
first=
for f in "$ULOG_DIR"/topics/held/0/*.log; do [ -n "$first" ] || first=$(basename "$f"); done
is "held: the first segment file starts at LOW" "$first" = "$(printf '%020d.log' "${lowh:-0}")"
ok "consume -G a after clean" "$U" consume held -G a -c 1 -F '%o\n'
printf '100\n' > "$T/exp"; same "a resumes where it left off"
ok "describe held after clean" "$U" topics describe held
has "HELD-BY b committed" "$T/out" '^  b  *0  *200  *[0-9]*$'
ok "alter retention.groups empty" "$U" topics alter held -c retention.groups=
ok "describe held, no groups" "$U" topics describe held
checks=$((checks + 1))
grep -q HELD-BY "$T/out" && fail "a topic without retention.groups prints a HELD-BY table"
ok "topics clean held, no groups" "$U" topics clean held
lowh=$(row held 0 | cut -d' ' -f1)
is "held: without groups LOW passes a's offset" "${lowh:-0}" -gt 100

# ---------------------------------------------------------------- cleanup.policy

# A compacted topic needs a key on every record: produce stops at the
# first line without one, after appending the lines before it.
ok "create compacted" "$U" topics create compacted -c cleanup.policy=delete,compact
usage_error "bad cleanup.policy" "$U" topics create compacted2 -c cleanup.policy=compacted
usage_error "bad min.cleanable.dirty.ratio" "$U" topics create compacted2 \
    -c min.cleanable.dirty.ratio=1.5
ok "describe compacted" "$U" topics describe compacted
has "cleanup.policy, canonical" "$T/out" '^  cleanup.policy  *compact,delete$'
has "delete.retention.ms default" "$T/out" '^  delete.retention.ms  *86400000$'
has "min.compaction.lag.ms default" "$T/out" '^  min.compaction.lag.ms  *0$'
has "min.cleanable.dirty.ratio default" "$T/out" '^  min.cleanable.dirty.ratio  *0\.5$'
printf 'a:1\nb:2\nnokey\nc:3\n' > "$T/in"
run sh -c '"$0" produce compacted -K : <"$1"' "$U" "$T/in"
expect "produce a null key to a compacted topic" 1 &&
    has "null key: which record" "$T/err" 'record 3: no key.*(cleanup.policy=compact,delete)'
run sh -c 'echo "{\"value\":\"v\"}" | "$0" produce compacted --json' "$U"
expect "produce --json without a key to a compacted topic" 1 &&
    has "--json null key: which record" "$T/err" 'record 1: no key'
ok "produce an empty key" sh -c 'echo ":empty" | "$0" produce compacted -K :' "$U"
ok "consume compacted" "$U" consume compacted -o beginning -e -F '%k=%s\n'
printf 'a=1\nb=2\n=empty\n' > "$T/exp"
same "the records before the keyless one, then the empty key"
ok "alter to delete" "$U" topics alter compacted -c cleanup.policy=delete \
    -c min.cleanable.dirty.ratio=.25
ok "produce a null key once deleting" sh -c 'echo nokey | "$0" produce compacted' "$U"
ok "describe compacted after alter" "$U" topics describe compacted
has "cleanup.policy altered" "$T/out" '^  cleanup.policy  *delete$'
has "min.cleanable.dirty.ratio, canonical" "$T/out" '^  min.cleanable.dirty.ratio  *0\.25$'

# Compaction: 400 changes of 8 keys over many small segments; a clean keeps
# the latest value of each key (and what the active segment holds).
ok "create changelog" "$U" topics create changelog -c cleanup.policy=compact \
    -c segment.bytes=4096
awk 'BEGIN { for (i = 0; i < 400; i++) printf "k%d:v%03d-%080d\n", i % 8, i, 0 }' > "$T/in"
ok "produce changes" sh -c '"$0" produce changelog -K : <"$1"' "$U" "$T/in"
# shellcheck disable=SC2046
set -- $(row changelog 0)
cbytes0=${4:-0}
is "before compaction: never compacted" "${7:-x}" = 0
is "before compaction: all dirty" "${8:-x}" = 1.00
ok "topics clean --retention leaves a compacted topic" "$U" topics clean --retention changelog
has "--retention: nothing reclaimed" "$T/out" \
    '^cleaned 1 partition: 0 segments deleted, 0 bytes reclaimed$'
ok "topics clean --compact" "$U" topics clean --compact changelog
has "--compact: bytes reclaimed" "$T/out" '^cleaned 1 partition: .*, [1-9][0-9]* bytes reclaimed$'
# shellcheck disable=SC2046
set -- $(row changelog 0)
is "after compaction: high" "${2:-x}" = 400
is "after compaction: fewer bytes" "${4:-0}" -lt "$cbytes0"
is "after compaction: clean part" "${7:-0}" -gt 0
is "after compaction: nothing dirty" "${8:-x}" = 0.00
ok "consume compacted changelog" "$U" consume changelog -o beginning -e -F '%k=%s\n'
awk -F= '{ v[$1] = $2 } END { for (k in v) print k "=" v[k] }' "$T/out" | sort > "$T/got"
awk -F: '{ v[$1] = $2 } END { for (k in v) print k "=" v[k] }' "$T/in" | sort > "$T/exp"
checks=$((checks + 1)); cmp -s "$T/got" "$T/exp" || fail "compaction: latest values differ"
lines=$(wc -l < "$T/out")
is "compaction: fewer records read" "$lines" -lt 400
ok "verify compacted" "$U" verify changelog
usage_error "clean: unknown option" "$U" topics clean --compacted changelog

# ---------------------------------------------------------------- perf

ok "create bench" "$U" topics create bench -p 2 -c flush.policy=none
ok "perf produce" "$U" perf produce bench --records 2000 --record-size 64 --batch 10 --threads 2
has "perf produce" "$T/out" '^2000 records of 64 bytes in 200 appends by 2 threads in .* records/s, .* MB/s$'
has "perf produce latency" "$T/out" 'p50 [0-9.]* p95 [0-9.]* p99 [0-9.]* p99.9 [0-9.]* max [0-9.]*$'
ok "perf consume" "$U" perf consume bench --records 1500
has "perf consume" "$T/out" '^1500 records (96000 bytes of keys and values) in .* records/s, .* MB/s$'
ok "perf latency" "$U" perf latency bench --records 200
has "perf latency" "$T/out" '^end-to-end latency, append to poll (ms): p50 [0-9.]* .* max [0-9.]*$'
ok "verify after perf" "$U" verify bench

# ---------------------------------------------------------------- mirror

# To Kafka, end to end through the tool: librdkafka's own mock cluster
# (test.mock.num.brokers, in the tool's process, on 127.0.0.1) stands in for
# the brokers; test_kafka checks what arrives there.
# From Kafka, back through the tool: librdkafka logs the mock cluster's
# address (at its default log level), and a second `ulog mirror` reads the
# Kafka topic from there into another ulog topic while the first one runs.
ok "create mirrored" "$U" topics create mirrored -p 2 -c flush.policy=none
printf 'a\nb\nc\nd\ne\n' | "$U" produce mirrored
printf 'k:f\nk:g\n' | "$U" produce mirrored -K :
"$U" mirror to-kafka mirrored --brokers 127.0.0.1:1 -X test.mock.num.brokers=1 \
    >"$T/mirror.out" 2>"$T/mirror.err" &
mpid=$!
lag=x
for _ in $(seq 1 150); do
    sleep 0.2
    lag=$("$U" groups describe mirror.mirrored 2>/dev/null | awk 'NR > 1 { l += $7; n++ } END { if (n == 2) print l }')
    [ "$lag" = 0 ] && break
done
mock=$(sed -n 's/.*replaced with \([0-9.:,]*\).*/\1/p' "$T/mirror.err" | head -n 1)
checks=$((checks + 1)); [ -n "$mock" ] || fail "no mock cluster address in: $(cat "$T/mirror.err")"
# The mock cluster made the Kafka topic with its default of 4 partitions.
ok "create back" "$U" topics create back -p 4
ok "mirror from-kafka" "$U" mirror from-kafka mirrored --topic back --brokers "$mock" \
    --exit-idle 3000 -X log_level=0
has "mirror from-kafka" "$T/out" '^mirrored 7 records from Kafka$'
ok "consume mirrored" "$U" consume mirrored -F '%p %o %k %s\n'
sort "$T/out" > "$T/exp"
ok "consume back" "$U" consume back -F '%p %o %k %s\n'
sort "$T/out" > "$T/out.sorted" && mv "$T/out.sorted" "$T/out"
same "from-kafka: the same records at the same offsets"
ok "mirror from-kafka again" "$U" mirror from-kafka mirrored --topic back --brokers "$mock" \
    --exit-idle 2000 -X log_level=0
has "mirror from-kafka again" "$T/out" '^mirrored 0 records from Kafka$'
run "$U" mirror from-kafka mirrored --topic nosuch --brokers "$mock" --exit-idle 500 \
    -X log_level=0
expect "mirror from-kafka: no such topic" 1 && has "from-kafka: no such topic" "$T/err" 'ULOG_ENOENT'
kill -TERM "$mpid"
wait "$mpid"
rc=$?
checks=$((checks + 1)); [ "$lag" = 0 ] || fail "mirror to-kafka: the hook's lag is '$lag', not 0"
checks=$((checks + 1)); [ "$rc" = 0 ] || fail "mirror to-kafka exited $rc: $(cat "$T/mirror.err")"
checks=$((checks + 1)); grep -qx 'mirrored 7 records to Kafka' "$T/mirror.out" ||
    fail "mirror to-kafka said: $(cat "$T/mirror.out")"
run "$U" mirror to-kafka nosuch --brokers 127.0.0.1:1 -X test.mock.num.brokers=1
expect "mirror to-kafka: no such topic" 1 && has "mirror: no such topic" "$T/err" 'ULOG_ENOENT'
run "$U" mirror to-kafka mirrored --brokers 127.0.0.1:1 -X no.such.setting=1
expect "mirror to-kafka: bad librdkafka setting" 1 && has "mirror: bad setting" "$T/err" 'no.such.setting'

echo "test_cli.sh: $checks checks, $fails failed"
[ "$fails" = 0 ]
