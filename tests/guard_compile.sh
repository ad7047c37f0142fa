#!/bin/sh
# WEFT_GUARD and WEFT_WITH as a user's compiler sees them, with each C
# compiler at hand (the build's, gcc, clang): every form compiles without a
# warning under strict flags (two guards on a line, nested, in loops and
# switch blocks, beside names like the guard's fields), and a jump into a
# statement guard's scope from before it (a goto past it, a later case
# label) does not compile, since its release would run on a guard that was
# never set up.
set -eu
include=$1 build_cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/good.c" <<'C'
#include <weft/sync.h>
static weft_lock_t l, m;
static weft_rlock_t r;
static weft_rwlock_t rw;
static weft_sem_t sem;
int forms(int x);
int forms(int x)
{
    int g = 1, obj = 2, site = 3, once = 4, rc = 5;
    WEFT_GUARD(&r); WEFT_GUARD(&r);
    WEFT_GUARD_RC(&l, a); WEFT_GUARD_RC(&m, b);
    WEFT_WITH (&sem) {
        WEFT_WITH_READ (&rw) {
            WEFT_GUARD(&r);
            x += g + obj + site + once + rc + a + b;
        }
    }
    for (int i = 0; i < x; i++) {
        WEFT_GUARD(&r);
        if (i == 1)
            continue;
        if (i == 2)
            break;
    }
    switch (x) {
    case 0: {
        WEFT_GUARD_WRITE_RC(&rw, w);
        return w;
    }
    case 1:
        WEFT_WITH (&r)
            return 1;
        break;
    default:
        break;
    }
again:
    if (x-- > 10) {
        WEFT_GUARD_READ(&rw);
        goto again;
    }
    return x;
}
C
cat > "$tmp/goto.c" <<'C'
#include <weft/sync.h>
static weft_lock_t l;
int early(int fail);
int early(int fail)
{
    int rc = 0;
    if (fail)
        goto out;
    WEFT_GUARD(&l);
    rc = 1;
out:
    return rc;
}
C
cat > "$tmp/switch.c" <<'C'
#include <weft/sync.h>
static weft_lock_t l;
int pick(int x);
int pick(int x)
{
    switch (x) {
    case 0:
        x++;
        WEFT_GUARD_RC(&l, rc);
        return rc;
    case 1:
        return 2;
    }
    return 0;
}
C
flags="-std=c11 -c -I$include -Wall -Wextra -Wpedantic -Wshadow -Wvla -Werror"
tried=""
for cc in "$build_cc" gcc clang; do
    command -v "$cc" >/dev/null 2>&1 || continue
    case " $tried " in *" $(command -v "$cc") "*) continue ;; esac
    tried="$tried $(command -v "$cc")"
    # shellcheck disable=SC2086
    $cc $flags "$tmp/good.c" -o "$tmp/good.o" || { echo "$cc: the guard forms do not compile cleanly"; exit 1; }
    for bad in goto switch; do
        # shellcheck disable=SC2086
        if $cc $flags "$tmp/$bad.c" -o "$tmp/$bad.o" 2>"$tmp/log"; then
            echo "$cc: a jump into a guard's scope ($bad.c) compiles"
            exit 1
        fi
    done
    echo "ok: $cc"
done
