// The public headers must compile as C++ (extern "C", no C-only constructs).
#include <weft.h>

int main()
{
    weft_local_t local = WEFT_LOCAL_INIT(nullptr);
    weft_thread_t *self = weft_thread_current();
    return weft_strerror(-EINVAL) != nullptr && self != nullptr && weft_local_get(&local) == nullptr
               ? 0
               : 1;
}
