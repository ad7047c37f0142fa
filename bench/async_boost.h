/* The Boost.Context side of the async suite, in C++ (bench/async_boost.cpp),
 * behind a C ABI so that async.c registers it like any other baseline. */
#ifndef WEFT_BENCH_ASYNC_BOOST_H
#define WEFT_BENCH_ASYNC_BOOST_H

#ifdef __cplusplus
extern "C" {
#endif

/* `iters` switches between two fcontexts ping-ponging: the seconds taken. */
double bench_boost_switch(long iters);

#ifdef __cplusplus
}
#endif

#endif
