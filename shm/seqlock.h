/*
 * seqlock.h - the one seqlock of the table, for state only the router
 * writes (names, keys, the choice array).
 *
 * The router makes the counter odd, writes, makes it even.  A reader
 * copies between two reads of the counter and keeps the copy only if the
 * counter was even and unchanged.  Readers never block on the router:
 * they spin GR_SEQ_TRIES times, then nap GR_SEQ_NAPS times
 * GR_SEQ_NAP_NS (20 ms in all) for a writer that was descheduled in
 * the middle of its few stores (more runnable threads than cores), and
 * then give up (a router killed mid-write leaves the counter odd until
 * the next router repairs it), and say so: gr_shm_seq_read() is the one
 * reader loop, and a caller whose read failed shows nothing of the torn
 * copy.  A read that meets no writer never naps.
 *
 * No fences (ThreadSanitizer does not model them): the router's data
 * stores are releases, so a reader that sees new data also sees the odd
 * counter that came before it; the reader's data loads are acquires, so
 * its second read of the counter cannot move above them.  On x86 both
 * are plain moves.
 */
#ifndef GR_SHM_SEQLOCK_H
#define GR_SHM_SEQLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GR_SEQ_TRIES 64
#define GR_SEQ_NAPS 40
#define GR_SEQ_NAP_NS 500000L

static inline uint32_t
gr_shm_seq_read_begin(const _Atomic uint32_t *seq)
{
    /* acquire: pairs with the release in gr_shm_seq_write_end() */
    return atomic_load_explicit(seq, memory_order_acquire);
}

static inline bool
gr_shm_seq_read_ok(const _Atomic uint32_t *seq, uint32_t begin)
{
    /* relaxed: ordered after the data loads, which were acquires */
    return (begin & 1u) == 0 &&
           atomic_load_explicit(seq, memory_order_relaxed) == begin;
}

/*
 * The one bounded seqlock reader: call copy(arg) between two reads of
 * *seq until a copy is clean: GR_SEQ_TRIES tries at once, then
 * GR_SEQ_NAPS more with a nap before each (see the top).  true: the copy
 * is consistent; false: every try saw a writer (a router killed
 * mid-write leaves the counter odd), and the caller must treat what copy
 * left behind as torn - show "torn/unavailable", never the bytes.  copy
 * reads the guarded data with gr_shm_seq_copy_out()/_str() or acquire
 * loads (see the top) and must not act on what it reads: it may run
 * again.
 */
static inline bool
gr_shm_seq_read(const _Atomic uint32_t *seq, void (*copy)(void *arg),
                void *arg)
{
    int tries;

    /* The counter is only read (C17's atomic_load takes a const object,
     * as gcc and clang do in C11 mode). */
    for (tries = 0; tries < GR_SEQ_TRIES + GR_SEQ_NAPS; tries++) {
        uint32_t begin;

        if (tries >= GR_SEQ_TRIES) {
            struct timespec nap = {0, GR_SEQ_NAP_NS};

            (void)nanosleep(&nap, NULL);
        }
        begin = gr_shm_seq_read_begin(seq);
        if (begin & 1u)
            continue;
        copy(arg);
        if (gr_shm_seq_read_ok(seq, begin))
            return true;
    }
    return false;
}

static inline void
gr_shm_seq_write_begin(_Atomic uint32_t *seq)
{
    /* relaxed: only the router writes seq */
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);

    /* relaxed: the data stores that follow are releases, which keep this
     * odd value before them */
    atomic_store_explicit(seq, (s | 1u), memory_order_relaxed);
}

static inline void
gr_shm_seq_write_end(_Atomic uint32_t *seq)
{
    /* relaxed: only the router writes seq */
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);

    /* release: pairs with the acquire in gr_shm_seq_read_begin() */
    atomic_store_explicit(seq, (s | 1u) + 1u, memory_order_release);
}

/* Copy n bytes that a seqlock guards (racy by design, so atomic; acquire
 * so that the reader's re-read of the counter stays after them). */
static inline void
gr_shm_seq_copy_out(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    size_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t v = __atomic_load_n((const uint64_t *)(s + i),
                                     __ATOMIC_ACQUIRE);
        __builtin_memcpy(d + i, &v, 8);
    }
    for (; i < n; i++)
        d[i] = __atomic_load_n(s + i, __ATOMIC_ACQUIRE);
}

/*
 * Copy a NUL-terminated string of at most n bytes (n a multiple of 8, src
 * 8-byte aligned) that a seqlock guards, stopping after the word that
 * holds its NUL.  dst always ends with a NUL.
 */
static inline void
gr_shm_seq_copy_str(char *dst, const char *src, size_t n)
{
    size_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t v = __atomic_load_n((const uint64_t *)(src + i),
                                     __ATOMIC_ACQUIRE);

        __builtin_memcpy(dst + i, &v, 8);
        /* a zero byte in v: the string ended in this word */
        if ((v - UINT64_C(0x0101010101010101)) & ~v &
            UINT64_C(0x8080808080808080))
            return;
    }
    dst[n - 1] = '\0';
}

static inline void
gr_shm_seq_copy_in(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    size_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t v;

        __builtin_memcpy(&v, s + i, 8);
        __atomic_store_n((uint64_t *)(d + i), v, __ATOMIC_RELEASE);
    }
    for (; i < n; i++)
        __atomic_store_n(d + i, s[i], __ATOMIC_RELEASE);
}

#endif
