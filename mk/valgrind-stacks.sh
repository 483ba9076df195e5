#!/usr/bin/env bash
# mk/valgrind-stacks.sh SECONDS TAG -- for check-valgrind: if after SECONDS
# a process run under valgrind whose command line contains TAG (the
# example's scratch directory) is still running, print every thread's stack
# of each such process (valgrind's gdbserver, through vgdb), so that a hang
# seen once says where it was. The caller kills this script when the
# example ends first.
secs=$1 tag=$2
sleep "$secs"
for p in $(pgrep -f -- "$tag"); do
    case $(cat /proc/$p/comm 2>/dev/null) in memcheck*) ;; *) continue ;; esac
    echo "== still running after ${secs}s: pid $p: $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)"
    timeout 30 vgdb --pid="$p" v.info scheduler 2>&1
done
