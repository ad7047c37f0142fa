#!/bin/sh
# Every dynamic symbol libweft.so defines must be a public weft_ function:
# internals (weft__*) and helpers stay hidden. The ThreadSanitizer entry
# points it calls (src/base/tsan.h) must stay weak references: defined,
# they would be exported; strong, a program without TSan could not load it.
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$syms" ] || { echo "no symbols exported from $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^weft_[a-z]' || true)
internal=$(printf '%s\n' "$syms" | grep '^weft__' || true)
if [ -n "$bad$internal" ]; then
    echo "unexpected exported symbols:"; printf '%s\n' $bad $internal; exit 1
fi
annotations='^__tsan_(acquire|release|mutex_(pre|post)_(lock|unlock))$'
strong=$(nm -D --undefined-only "$lib" | awk -v re="$annotations" '$1 != "w" && $2 ~ re {print $2}')
if [ -n "$strong" ]; then
    echo "TSan entry points referenced strongly:"; printf '%s\n' $strong; exit 1
fi
echo "ok: $(printf '%s\n' "$syms" | wc -l) symbols, all weft_"
