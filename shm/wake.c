/*
 * wake.c - futex sleep and wake on the header's wake word.
 *
 * The futex is not private: sleepers and wakers are different processes
 * sharing the mapping.  A lost wake-up is harmless because every sleep
 * has a timeout no longer than the earliest instant room may come.
 */
#include "wake.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint32_t
gr_shm_wake_seen(const struct gr_shm *t)
{
    /* acquire: whatever freed room before the bump is visible after */
    return atomic_load_explicit(&t->hdr->wake, memory_order_acquire);
}

void
gr_shm_sleep(const struct gr_shm *t, uint32_t seen, int64_t timeout_ns)
{
    struct timespec ts;

    if (timeout_ns <= 0)
        return;
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    /* seq_cst: in one total order with the waker's bump and its read of
     * sleepers, so either it sees us or we (the kernel) see its bump */
    atomic_fetch_add_explicit(&t->hdr->sleepers, 1, memory_order_seq_cst);
    if (t->writable)
        syscall(SYS_futex, &t->hdr->wake, FUTEX_WAIT, seen, &ts, NULL, 0);
    else
        nanosleep(&ts, NULL);
    /* relaxed: only makes the waker's syscall unnecessary */
    atomic_fetch_sub_explicit(&t->hdr->sleepers, 1, memory_order_relaxed);
}

void
gr_shm_wake_all(const struct gr_shm *t)
{
    /* seq_cst: pairs with the sleeper's seq_cst increment (and releases
     * what freed room to the acquire in gr_shm_wake_seen()) */
    atomic_fetch_add_explicit(&t->hdr->wake, 1, memory_order_seq_cst);
    /* seq_cst: see above */
    if (atomic_load_explicit(&t->hdr->sleepers, memory_order_seq_cst) > 0)
        syscall(SYS_futex, &t->hdr->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
