/*
 * Thread-local values (weft_local_t): Python's threading.local for C.
 *
 * Why not pthread keys directly: there are only PTHREAD_KEYS_MAX (1024) of
 * them, while a Python program makes as many local() objects as it likes, and
 * a weft thread must run its destructors before join returns (pthread runs
 * key destructors after the thread function, too late for that guarantee).
 *
 * Design. A global table of slots, each with a destructor and a generation,
 * under a mutex (touched only when a local is first used or destroyed, and
 * when a thread exits with values to destroy). A weft_local_t caches its key:
 * slot index + 1 in the low 32 bits, the slot's generation in the high ones,
 * 0 while unregistered, so WEFT_LOCAL_INIT needs no constructor call. Each
 * thread has a block of (generation, value) pairs indexed by slot, reached
 * through an initial-exec TLS pointer: a get is a few loads and no lock.
 * Destroying a local bumps its slot's generation, so values left behind by it
 * are never returned or destroyed under a later local that reuses the slot.
 *
 * Exit. weft threads call weft__locals_exit() before they are marked done;
 * for all other threads (and for values set by late destructors), one pthread
 * key, set whenever a block is created, calls it at thread exit. Destructors
 * that set values again get up to four rounds, as pthread allows.
 */
#include "thread/thread_int.h"

#include <stdlib.h>
#include <string.h>

#define DESTRUCTOR_ROUNDS 4

struct slot {
    void (*dtor)(void *value);
    uint32_t gen;
    bool used;
};

struct entry {
    uint32_t gen;
    void *value;
};

struct block {
    uint32_t cap;
    struct entry entries[];
};

static pthread_mutex_t slots_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static uint32_t nslots;
static pthread_key_t exit_key;
static _Thread_local struct block *tls_block WEFT__TLS_FAST;

static uint64_t load_key(const weft_local_t *local)
{
    return __atomic_load_n(&local->key, __ATOMIC_ACQUIRE);
}

static uint64_t make_key(uint32_t index, uint32_t gen)
{
    return (uint64_t)gen << 32 | (index + 1);
}

/* Find or make a free slot for `local`; slots_mutex held. */
static int register_locked(weft_local_t *local)
{
    uint32_t i = 0;
    while (i < nslots && slots[i].used)
        i++;
    if (i == nslots) {
        if (nslots == UINT32_MAX - 1)
            return -ENOMEM;
        uint32_t grown = nslots ? nslots * 2 : 16;
        struct slot *s = weft__calloc(grown, sizeof *s);
        if (!s)
            return -ENOMEM;
        if (nslots)
            memcpy(s, slots, nslots * sizeof *s);
        for (uint32_t j = nslots; j < grown; j++)
            s[j].gen = 1;
        free(slots);
        slots = s;
        nslots = grown;
    }
    slots[i].used = true;
    slots[i].dtor = local->dtor;
    __atomic_store_n(&local->key, make_key(i, slots[i].gen), __ATOMIC_RELEASE);
    return 0;
}

static int ensure_key(weft_local_t *local, uint64_t *key)
{
    *key = load_key(local);
    if (*key)
        return 0;
    pthread_mutex_lock(&slots_mutex);
    int rc = 0;
    if (local->key == 0)
        rc = register_locked(local);
    *key = local->key;
    pthread_mutex_unlock(&slots_mutex);
    return rc;
}

int weft_local_init(weft_local_t *local, void (*dtor)(void *value))
{
    if (!local)
        return -EINVAL;
    local->dtor = dtor;
    local->key = 0;
    return 0;
}

int weft_local_destroy(weft_local_t *local)
{
    if (!local)
        return -EINVAL;
    pthread_mutex_lock(&slots_mutex);
    uint64_t key = local->key;
    uint32_t index = (uint32_t)key - 1, gen = (uint32_t)(key >> 32);
    if (key && slots[index].used && slots[index].gen == gen) {
        slots[index].used = false;
        slots[index].gen = gen + 1 ? gen + 1 : 1;
    }
    __atomic_store_n(&local->key, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&slots_mutex);
    return 0;
}

void *weft_local_get(weft_local_t *local)
{
    if (!local)
        return NULL;
    uint64_t key = load_key(local);
    struct block *b = tls_block;
    uint32_t index = (uint32_t)key - 1;
    if (!key || !b || index >= b->cap || b->entries[index].gen != (uint32_t)(key >> 32))
        return NULL;
    return b->entries[index].value;
}

/* Make the calling thread's block hold at least index + 1 entries. */
static int grow_block(uint32_t index)
{
    struct block *old = tls_block;
    uint32_t cap = old ? old->cap : 0;
    if (index < cap)
        return 0;
    uint32_t grown = cap * 2 > index + 1 ? cap * 2 : index + 8;
    struct block *b = weft__calloc(1, sizeof *b + grown * sizeof(struct entry));
    if (!b)
        return -ENOMEM;
    b->cap = grown;
    if (old) {
        memcpy(b->entries, old->entries, cap * sizeof(struct entry));
        free(old);
    } else {
        /* Any non-NULL value makes pthread call weft__locals_exit at exit. */
        pthread_setspecific(exit_key, &exit_key);
    }
    tls_block = b;
    return 0;
}

int weft_local_set(weft_local_t *local, void *value)
{
    if (!local)
        return -EINVAL;
    uint64_t key;
    int rc = ensure_key(local, &key);
    uint32_t index = (uint32_t)key - 1;
    if (rc == 0)
        rc = grow_block(index);
    if (rc == 0)
        tls_block->entries[index] = (struct entry){(uint32_t)(key >> 32), value};
    return rc;
}

/* The destructor of a value stored under (index, gen), or NULL if the local
 * it was set through has been destroyed since. */
static void (*live_dtor(uint32_t index, uint32_t gen))(void *)
{
    pthread_mutex_lock(&slots_mutex);
    void (*dtor)(void *) = slots[index].used && slots[index].gen == gen ? slots[index].dtor : NULL;
    pthread_mutex_unlock(&slots_mutex);
    return dtor;
}

/* One pass over the block; returns whether any destructor ran. The block is
 * re-read every step because a destructor may set values and grow it. */
static bool destroy_round(void)
{
    bool ran = false;
    for (uint32_t i = 0; tls_block && i < tls_block->cap; i++) {
        struct entry e = tls_block->entries[i];
        if (!e.value)
            continue;
        tls_block->entries[i].value = NULL;
        void (*dtor)(void *) = live_dtor(i, e.gen);
        if (dtor) {
            dtor(e.value);
            ran = true;
        }
    }
    return ran;
}

void weft__locals_exit(void)
{
    for (int round = 0; round < DESTRUCTOR_ROUNDS && tls_block; round++)
        if (!destroy_round())
            break;
    free(tls_block);
    tls_block = NULL;
}

static void exit_key_dtor(void *unused)
{
    WEFT__UNUSED(unused);
    weft__locals_exit();
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&slots_mutex);
}

static void fork_release(void)
{
    pthread_mutex_unlock(&slots_mutex);
}

WEFT__CONSTRUCTOR static void locals_init(void)
{
    if (pthread_key_create(&exit_key, exit_key_dtor) != 0 ||
        pthread_atfork(fork_prepare, fork_release, fork_release) != 0)
        abort();
}
