#!/bin/sh
# Every dynamic symbol libweft.so defines must be a public weft_ function:
# internals (weft__*) and helpers stay hidden.
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$syms" ] || { echo "no symbols exported from $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^weft_[a-z]' || true)
internal=$(printf '%s\n' "$syms" | grep '^weft__' || true)
if [ -n "$bad$internal" ]; then
    echo "unexpected exported symbols:"; printf '%s\n' $bad $internal; exit 1
fi
echo "ok: $(printf '%s\n' "$syms" | wc -l) symbols, all weft_"
