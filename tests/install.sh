#!/bin/sh
# Install the build into a scratch prefix and build a small consumer three
# ways: pkg-config with the shared library, the static archive, and CMake's
# find_package(weft). Each consumer starts and joins a thread.
set -eu
src=$1 build=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pcdir=$(dirname "$(find "$tmp/prefix" -name weft.pc)")
libdir=$(dirname "$pcdir")

cat > "$tmp/use.c" <<'C'
#include <weft.h>
#include <stdio.h>
static void *hello(void *arg) { return arg; }
int main(void)
{
    weft_thread_t *t;
    void *res = NULL;
    if (weft_thread_new(&t, hello, (void *)"joined", NULL) || weft_thread_start(t) ||
        weft_thread_join(t, WEFT_FOREVER, &res) || weft_thread_free(t))
        return 1;
    printf("%s\n", (const char *)res);
    return 0;
}
C

export PKG_CONFIG_PATH="$pcdir"
# shellcheck disable=SC2046
"$cc" -Wall -Werror "$tmp/use.c" $(pkg-config --cflags --libs weft) -o "$tmp/use_shared"
LD_LIBRARY_PATH="$libdir" "$tmp/use_shared" | grep -q joined
readelf -d "$tmp/use_shared" | grep -q 'libweft.so.0'

# shellcheck disable=SC2046
"$cc" -Wall -Werror "$tmp/use.c" $(pkg-config --cflags weft) "$libdir/libweft.a" -pthread \
    -o "$tmp/use_static"
"$tmp/use_static" | grep -q joined

mkdir "$tmp/cmake"
cp "$tmp/use.c" "$tmp/cmake/use.c"
cat > "$tmp/cmake/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(use_weft C)
find_package(weft 0.1 REQUIRED)
add_executable(use use.c)
target_link_libraries(use PRIVATE weft::weft)
add_executable(use_static use.c)
target_link_libraries(use_static PRIVATE weft::static)
CM
cmake -S "$tmp/cmake" -B "$tmp/cmake/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$tmp/cmake/build" >/dev/null
"$tmp/cmake/build/use" | grep -q joined
"$tmp/cmake/build/use_static" | grep -q joined
echo "ok: pkg-config (shared and static) and find_package(weft) consumers run"
