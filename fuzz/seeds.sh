#!/usr/bin/env bash
# Regenerates the committed seed corpus (corpus/<target>/seed-*): small valid
# inputs the fuzzers start from, made with the real `logbus` CLI (a ring of 4
# blocks of 4 KiB with records of every field kind, a trace context and a
# registered service) and by hand. Run from anywhere after
# `cargo build -p logbus-cli`; LOGBUS_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")"
LOGBUS=${LOGBUS_BIN:-../target/debug/logbus}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ring=$tmp/ring
"$LOGBUS" create "$ring" --size 16K --block-size 4K
cp "$ring" "$tmp/empty-ring"
"$LOGBUS" emit "$ring" -l warn -t app::db --service shop \
    -f rows=3 -f ratio=0.5 -f ok=true -f big=18446744073709551615 -f neg=-7 -f user:=ann \
    --traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \
    'query done in 3 ms'
printf 'line one\nline "two" \xc3\xa9\n\x01ctl\n' | "$LOGBUS" emit "$ring" -l debug -t stdin
"$LOGBUS" emit "$ring" -l 24 "$(head -c 3000 /dev/zero | tr '\0' x)"

mkdir -p corpus/{record_decode,ring_file,collector_config,traceparent,ffi_record}
cp "$tmp/empty-ring" corpus/ring_file/seed-empty
cp "$ring" corpus/ring_file/seed-records
# The ring after a drain: committed blocks, moved cursors.
cp "$ring" "$tmp/drained"
"$LOGBUS" drain "$tmp/drained" > /dev/null
cp "$tmp/drained" corpus/ring_file/seed-drained

# Blocks 1 and 2 of the ring (sequence numbers start at 1; the data starts at
# 4096 + 64 * 512 + 4 * 128), each after its sequence number (4 bytes,
# little-endian), as record_decode reads them.
data=$((4096 + 64 * 512 + 4 * 128))
for seq in 1 2; do
    { printf "\\x0$seq\\x00\\x00\\x00"; tail -c +$((data + seq * 4096 + 1)) "$ring" | head -c 4096; } \
        > corpus/record_decode/seed-block$seq
done

sed -n '/^\/\/! ```toml$/,/^\/\/! ```$/p' ../crates/logbus-collector/src/config/mod.rs \
    | sed -e '1d' -e '$d' -e 's/^\/\/! \{0,1\}//' > corpus/collector_config/seed-doc.toml
cp ../crates/logbus-python/examples/collector.toml corpus/collector_config/seed-example.toml
printf '[ring]\ndir = "/dev/shm/logbus.d"\n\n[[sinks]]\nname = "n"\ntype = "null"\nmin_level = 13\nmax_level = "critical"\n' \
    > corpus/collector_config/seed-ring-dir.toml

printf '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' > corpus/traceparent/seed-sampled
printf '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00' > corpus/traceparent/seed-upper
printf '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra' > corpus/traceparent/seed-v1

# severity, shape, fields, time (8), span byte, target piece, message piece,
# then per field: kind, key piece, value (a piece for strings, else 8 bytes).
printf '\x09\x18\x03\x00\x00\x00\x00\x00\x00\x00\x00\x07\x07app::db\x05hello\x00\x04user\x03ann\x01\x01n\x2a\x00\x00\x00\x00\x00\x00\x00\x04\x02ok\x01\x00\x00\x00\x00\x00\x00\x00' \
    > corpus/ffi_record/seed-fields
printf '\x11\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x00\x03t\xffx\x06m\x00s\xc3\xa9\xe2' > corpus/ffi_record/seed-bytes
printf '\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01x' > corpus/ffi_record/seed-nulls
