#!/bin/sh
# WEFT_GUARD and WEFT_WITH as a user's compiler sees them, with each C
# compiler at hand (the build's, gcc, clang): every form compiles without a
# warning under strict flags (two guards on a line, nested, in loops and
# switch blocks, beside names like the guard's fields).
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
flags="-std=c11 -c -I$include -Wall -Wextra -Wpedantic -Wshadow -Wvla -Werror"
tried=""
for cc in "$build_cc" gcc clang; do
    command -v "$cc" >/dev/null 2>&1 || continue
    case " $tried " in *" $(command -v "$cc") "*) continue ;; esac
    tried="$tried $(command -v "$cc")"
    # shellcheck disable=SC2086
    $cc $flags "$tmp/good.c" -o "$tmp/good.o" || { echo "$cc: the guard forms do not compile cleanly"; exit 1; }
    echo "ok: $cc"
done
