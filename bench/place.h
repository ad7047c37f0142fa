/*
 * Placement of a case's threads on CPUs (weft-bench --place); the design is
 * at the top of place.c.
 */
#ifndef WEFT_BENCH_PLACE_H
#define WEFT_BENCH_PLACE_H

#include <stdbool.h>

enum bench_place { BENCH_PLACE_NONE, BENCH_PLACE_ONE, BENCH_PLACE_SPREAD };

/* The placement called NAME ("one" or "spread"), or -1. */
int bench_place_parse(const char *name);

/* The placement's name, "" for none. */
const char *bench_place_name(enum bench_place p);

/* The CPUs the process may use, as learnt before any pinning: up to MAX of
 * them into OUT; returns how many. */
int bench_place_cpus(int *out, int max);

/* Take placement P from now on: pins the calling (main) thread. */
void bench_place_setup(enum bench_place p);

/* Before each measured call: the next thread started is its first. */
void bench_place_restart(void);

/* Around starting a baseline program: with OPEN the calling thread may run
 * on every CPU of the placement, so the program inherits them; without, it
 * is pinned again. */
void bench_place_open_to_all(bool open);

#endif
