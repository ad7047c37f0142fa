#!/bin/sh
# The async layer on aarch64, emulated: cross-compile with Debian's
# gcc-aarch64-linux-gnu and run the context and task tests under
# qemu-user-static (installed here if missing), on one loop and in M:N
# mode (the *_mn tests and test_mn: qemu runs guest threads as host
# threads, so tasks really move between threads, which is where a thread
# pointer kept across a switch would show). What the emulated run
# leaves out, and why:
#   - the other test programs: they start child processes that exec,
#     which qemu-user cannot do without binfmt_misc;
#   - running out of vm.max_map_count: qemu's own mappings count against
#     the same limit, so the process fails elsewhere first.
# qemu accepts MADV_GUARD_INSTALL and ignores it; the stack probe notices
# and uses mprotect'ed guards, which the guard tests check.
# Last, the context switch alone in a binary guarded by Branch Target
# Identification (tests/bti_ctx.c), which qemu's -cpu max enforces.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/aarch64
missing=""
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu"
command -v qemu-aarch64-static >/dev/null 2>&1 || missing="$missing qemu-user-static"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
fi
cmake -S "$root" -B "$build" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
        -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER= \
        -DCMAKE_CROSSCOMPILING_EMULATOR=qemu-aarch64-static -DCMAKE_BUILD_TYPE=Release \
        -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
programs="test_ctx test_async test_async_cancel test_async_scope test_async_threads test_mn"
cmake --build "$build" -j "$(nproc)" --target $programs
QEMU_LD_PREFIX=/usr/aarch64-linux-gnu ctest --test-dir "$build" --output-on-failure \
    -j "$(nproc)" -R "^($(echo $programs | tr ' ' '|'))(_mn)?\." -E "running_out_of_mappings"
bti=$build/bti_ctx
aarch64-linux-gnu-gcc -std=c11 -O2 -static -nostdlib -ffreestanding -fno-stack-protector \
    -mbranch-protection=standard -Wl,-z,force-bti -I"$root/include" -I"$root/src" \
    "$root/tests/bti_ctx.c" "$root/src/async/ctx.c" -o "$bti"
qemu-aarch64-static -cpu max "$bti"
