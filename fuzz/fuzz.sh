#!/usr/bin/env bash
# make fuzz: builds the libFuzzer harnesses in fuzz/Sources (FUSION_FUZZ=1, -sanitize=fuzzer,address)
# and runs each for FUZZ_SECONDS, FUZZ_JOBS at a time, printing exec counts; exits 1 on any crash.
# Not a corpus manager: new inputs go to .build-fuzz/corpus, the committed seeds stay as they are.
set -uo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
SECONDS_EACH=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-2}
TARGETS=${FUZZ_TARGETS:-safetensors png wav metadata tokenizer recipe corpus}
BUILD=.build-fuzz
declare -A PRODUCT=([safetensors]=FuzzSafetensors [png]=FuzzPNG [wav]=FuzzWAV
                    [metadata]=FuzzMetadata [tokenizer]=FuzzTokenizer [recipe]=FuzzRecipe [corpus]=FuzzCorpus)

# 1. Build each harness as a dynamic library, then link it into an executable: libFuzzer supplies main
#    (a SwiftPM executable target would define its own).
mkdir -p $BUILD
for t in $TARGETS; do
    p=${PRODUCT[$t]:-}
    [ -n "$p" ] || { echo "fuzz: unknown target '$t' (known: ${!PRODUCT[*]})" >&2; exit 2; }
    echo "fuzz: building $p"
    if ! FUSION_FUZZ=1 $SWIFT build -c release --build-path $BUILD -Xswiftc -sanitize=fuzzer,address \
            --product "$p" > "$BUILD/build-$t.log" 2>&1; then
        grep -E "error:" "$BUILD/build-$t.log" | head -20 >&2
        echo "fuzz: building $p failed (full log: $BUILD/build-$t.log)" >&2; exit 1
    fi
    rm -f "$BUILD/fuzz-$t"
    if ! ${SWIFTC:-swiftc} -sanitize=fuzzer,address -parse-as-library fuzz/empty.swift -L $BUILD/release -l"$p" \
            -Xlinker -rpath -Xlinker "$PWD/$BUILD/release" -o "$BUILD/fuzz-$t" > "$BUILD/link-$t.log" 2>&1; then
        grep -v "Cannot export local symbol" "$BUILD/link-$t.log" | head -20 >&2   # ASan's harmless gold warnings
        echo "fuzz: linking fuzz-$t failed" >&2; exit 1
    fi
done

# 2. Run them, JOBS at a time. The first corpus folder (writable) collects new inputs; the second
#    holds the committed seeds.
run() {
    local t=$1
    mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t"
    LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
        "$BUILD/fuzz-$t" "$BUILD/corpus/$t" "fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t/" > "$BUILD/fuzz-$t.log" 2>&1
    echo $? > "$BUILD/fuzz-$t.rc"
}
echo "fuzz: running $TARGETS for ${SECONDS_EACH}s each, $JOBS at a time (logs: $BUILD/fuzz-<target>.log)"
running=0
for t in $TARGETS; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

# 3. Report.
failed=0
for t in $TARGETS; do
    rc=$(cat "$BUILD/fuzz-$t.rc")
    execs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$BUILD/fuzz-$t.log" | grep -o "[0-9]*$")
    rate=$(grep -o "stat::average_exec_per_sec: *[0-9]*" "$BUILD/fuzz-$t.log" | grep -o "[0-9]*$")
    cov=$(grep -o "cov: [0-9]*" "$BUILD/fuzz-$t.log" | tail -1)
    if [ "$rc" = 0 ]; then
        printf "fuzz: %-12s ok     %10s execs (%s/s), %s\n" "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}"
    else
        failed=1
        printf "fuzz: %-12s FAILED (exit %s) after %s execs; crash input in %s\n" "$t" "$rc" "${execs:-?}" "$BUILD/crashes/$t/"
        grep -m1 -E "Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY" "$BUILD/fuzz-$t.log" | sed 's/^/    /'
        echo "    reproduce: $BUILD/fuzz-$t $BUILD/crashes/$t/<file>"
    fi
done
exit $failed
