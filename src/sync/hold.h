/*
 * Locks that weft takes for itself: a future's, a queue's, a process's, a
 * pool's. Their holders never wait long, and the code after the acquire
 * counts on holding the lock; so in an async task (weft/async.h) such an
 * acquire is not cancelled: a cancellation that arrives meanwhile is kept
 * for the task's next wait. Returns what weft_lock_acquire does, but never
 * -ECANCELED (0, or -EOWNERDEAD for a shared lock).
 */
#ifndef WEFT_SRC_SYNC_HOLD_H
#define WEFT_SRC_SYNC_HOLD_H

#include <weft/sync.h>

int weft__lock_hold_at(weft_lock_t *lock, const weft_site_t *site);
#define weft__lock_hold(lock) weft__lock_hold_at((lock), WEFT_SITE)

#endif /* WEFT_SRC_SYNC_HOLD_H */
