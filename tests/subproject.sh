#!/bin/sh
# weft as another project's subdirectory (add_subdirectory, as FetchContent
# does it), on a machine without a C++ compiler: the parent's build makes
# only weft's libraries (no tests, examples or benchmarks, no -Werror), and
# a program of the parent's links and runs.
set -eu
src=$1 cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/app"
cat > "$tmp/app/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(app C)
add_subdirectory("$src" weft)
add_executable(app app.c)
target_link_libraries(app PRIVATE weft::weft)
CM
cat > "$tmp/app/app.c" <<'C'
#include <weft.h>
int main(void)
{
    weft_lock_t lock = WEFT_LOCK_INIT;
    WEFT_GUARD(&lock);
    return weft_lock_locked(&lock) == 1 ? 0 : 1;
}
C
CXX=/nonexistent/c++ cmake -S "$tmp/app" -B "$tmp/build" -DCMAKE_C_COMPILER="$cc" >"$tmp/log" 2>&1 ||
    { cat "$tmp/log"; exit 1; }
targets=$(cmake --build "$tmp/build" --target help)
for unwanted in test_base weft-bench lock_with; do
    if echo "$targets" | grep -q "$unwanted"; then
        echo "the parent's build has weft's $unwanted"
        exit 1
    fi
done
grep -q WEFT_WERROR:BOOL=OFF "$tmp/build/CMakeCache.txt"
cmake --build "$tmp/build" --target app -j 2 >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
"$tmp/build/app"
echo "ok: a C-only parent project builds weft's libraries alone and runs its program"
