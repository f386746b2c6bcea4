#!/usr/bin/env bash
# The shell producer of the chaos harness (logbus-chaos; tests/src/chaos/):
#
#   producer.sh LOGBUS RING LEDGER NAME SEED MAX_MSG UNTIL_MS
#
# One `logbus emit` per record, at a random pace, until the wall clock passes
# UNTIL_MS. Messages follow tests/src/chaos/token.rs (thread 0). Its ledger
# (tests/src/chaos/ledger.rs, read_shell) gets "SEQ LEVEL" before each emit
# and "SEQ ok" or "SEQ err" after it, appended, so that it survives SIGKILL.
set -u
logbus=$1 ring=$2 ledger=$3 name=$4 seed=$5 max_msg=$6 until_ms=$7
RANDOM=$seed
levels=(trace debug info warn error fatal)
seq=0
while (( $(date +%s%3N) < until_ms )); do
    level=$(( RANDOM % 6 ))
    if (( RANDOM % 10 == 0 )); then len=$(( 200 + RANDOM % (max_msg - 200) )); else len=$(( 30 + RANDOM % 170 )); fi
    head="chaos:$name:0:$seq:$len:"
    pad=$(( len - ${#head} ))
    letters=abcdefghijklmnopqrstuvwxyz
    letter=${letters:$(( seq % 26 )):1}
    msg=$head
    if (( pad > 0 )); then
        printf -v fill '%*s' "$pad" ''
        msg+=${fill// /$letter}
    fi
    args=(--level "${levels[$level]}" --target chaos::shell --field "producer:=$name" --field "seq=$seq" --service "$name")
    if (( RANDOM % 3 == 0 )); then
        args+=(--trace-id "$(printf '%08x%08x%08x%08x' $(( RANDOM + 1 )) $RANDOM $RANDOM $seq)" --span-id "$(printf '%08x%08x' $(( RANDOM + 1 )) $seq)")
    fi
    echo "$seq $level" >> "$ledger"
    if "$logbus" emit "${args[@]}" "$ring" "$msg"; then
        echo "$seq ok" >> "$ledger"
    else
        echo "$seq err" >> "$ledger"
    fi
    seq=$(( seq + 1 ))
    if (( RANDOM % 20 == 0 )); then sleep "0.$(( RANDOM % 9 ))"; fi
done
