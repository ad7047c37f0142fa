// The public headers must compile as C++ (extern "C", no C-only constructs).
#include <weft.h>

// Registration at file scope, with its semicolon, is clean under -Wpedantic.
static int registered(const void *, size_t)
{
    return 0;
}
WEFT_PROCESS_REGISTER(registered);

int main()
{
    weft_local_t local = WEFT_LOCAL_INIT(nullptr);
    weft_thread_t *self = weft_thread_current();
    return weft_strerror(-EINVAL) != nullptr && self != nullptr && weft_local_get(&local) == nullptr
               ? 0
               : 1;
}
