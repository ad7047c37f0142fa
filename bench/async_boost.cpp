/*
 * The Boost.Context baseline of the async suite's switch_boost case: two
 * raw contexts passing control back and forth with jump_fcontext, the
 * primitive under Boost's fibers and coroutines (callcc, fiber and
 * Boost.Coroutine2 add their own bookkeeping on top of it). This is Boost
 * at its fastest: no scheduler, no allocation, a stack carved from a buffer
 * made once, and each jump saving only the callee-saved registers. weft's
 * side goes through its scheduler, so the ratio is the price of the
 * scheduler (ready queue, task states) over the bare switch.
 */
#include "async_boost.h"

#include "bench.h"

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>

namespace bctx = boost::context::detail;

namespace
{

alignas(64) char stack[64 * 1024];

// The other side: jump back to whoever jumped here, forever. It never
// returns (a context function that returns ends the process); the next call
// of bench_boost_switch makes a fresh context on the same buffer.
void bounce(bctx::transfer_t t)
{
    for (;;)
        t = bctx::jump_fcontext(t.fctx, nullptr);
}

} // namespace

double bench_boost_switch(long iters)
{
    bctx::fcontext_t other = bctx::make_fcontext(stack + sizeof stack, sizeof stack, bounce);
    long rounds = (iters + 1) / 2; // two switches each: there and back
    double t0 = bench_now();
    for (long i = 0; i < rounds; i++)
        other = bctx::jump_fcontext(other, nullptr).fctx;
    double secs = bench_now() - t0;
    bench_sink(&other);
    return secs * (double)iters / (double)(2 * rounds);
}
