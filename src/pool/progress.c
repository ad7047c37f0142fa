/*
 * weft_progress_bar (weft/pool.h): a tqdm-like line on stderr,
 *
 *     label:  45%|#########           | 4500/10000 [00:02<00:03, 2003.1 it/s]
 *
 * redrawn in place with a carriage return, at most ten times a second
 * (calls in between cost a clock read and a compare), and for good with a
 * newline when done reaches total. Nothing is drawn unless stderr is a
 * terminal, so logs and pipes stay clean. A call with a smaller `done` or
 * another `total` than the last starts a new bar. Calls from several
 * workers at once are serialised by a mutex, taken only to draw.
 *
 * Also the ordered reports the maps make (report.h).
 */
#include "pool/report.h"
#include "sync/hold.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WIDTH         20
#define REDRAW_NS     100000000LL /* 10 a second */
#define NS_PER_SECOND 1e9

static pthread_mutex_t bar_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t started, last_draw;
static size_t last_done, last_total;

/* mm:ss, or h:mm:ss past an hour (under 100 hours). */
static void clock_text(char out[16], double seconds)
{
    int s = seconds < 0 || seconds > 359999 ? 0 : (int)seconds;
    if (s >= 3600)
        snprintf(out, 16, "%d:%02d:%02d", s / 3600 % 100, s / 60 % 60, s % 60);
    else
        snprintf(out, 16, "%02d:%02d", s / 60 % 60, s % 60);
}

static void draw(size_t done, size_t total, const char *label, int64_t now)
{
    double elapsed = (double)(now - started) / NS_PER_SECOND;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double frac = total ? (double)done / (double)total : 1;
    char bar[WIDTH + 1], spent[16], left[16];
    int filled = (int)(frac * WIDTH);
    memset(bar, '#', (size_t)filled);
    memset(bar + filled, ' ', (size_t)(WIDTH - filled));
    bar[WIDTH] = 0;
    clock_text(spent, elapsed);
    clock_text(left, rate > 0 ? (double)(total - done) / rate : 0);
    fprintf(stderr, "\r%s%s%3d%%|%s| %zu/%zu [%s<%s, %.1f it/s]%s", label ? label : "",
            label ? ": " : "", (int)(frac * 100), bar, done, total, spent, left, rate,
            done >= total ? "\n" : "");
    fflush(stderr);
}

void weft_progress_bar(size_t done, size_t total, void *arg)
{
    if (!isatty(STDERR_FILENO))
        return;
    int64_t now = weft__now_ns();
    pthread_mutex_lock(&bar_lock);
    if (done < last_done || total != last_total || !started) { /* a new bar */
        started = now;
        last_draw = now; /* the first draw comes with a rate worth showing */
    }
    last_done = done;
    last_total = total;
    if (done >= total || now - last_draw >= REDRAW_NS) {
        last_draw = now;
        draw(done, total, arg, now);
    }
    pthread_mutex_unlock(&bar_lock);
}

WEFT__CONSTRUCTOR static void progress_init(void)
{
    weft__fork_guard(&bar_lock, WEFT__RANK_PROGRESS, NULL);
}

void weft__report_init(weft__report_t *r, weft_progress_fn fn, void *arg, size_t total)
{
    *r = (weft__report_t){fn, arg, total, 0, WEFT_LOCK_INIT, 0};
}

void weft__report_add(weft__report_t *r, size_t n)
{
    if (!r->fn)
        return;
    size_t done = atomic_fetch_add(&r->done, n) + n;
    weft__lock_hold(&r->lock);
    if (done > r->shown) {
        r->shown = done;
        r->fn(done, r->total, r->arg);
    }
    weft_lock_release(&r->lock);
}
