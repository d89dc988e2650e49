/*
 * curl_thread.c - one libcurl easy handle per thread and per user (see
 * curl_priv.h), kept from one call to the next: the handle's connection
 * cache, its buffers and its options' storage are made once per thread
 * rather than once per call (a fresh handle cost a socketpair, two
 * close and four fcntl per gateway call, besides its allocations).
 *
 * The handles hang off one thread-specific key, whose destructor cleans
 * them up when the thread ends.  After fork() a child finds its thread's
 * handles were made by another process (the pid kept beside them): they
 * are abandoned, never used nor cleaned up, because their sockets are
 * the parent's too and two processes writing one TLS session would
 * corrupt it.  What the users keep beside a handle (priv) holds no
 * socket and is freed in either case.
 *
 * A thread that ends hands its forward handle (set up, reset, its priv
 * with it) to a short list of spares, which the next thread to need one
 * takes rather than making its own: the gateway runs a thread per
 * stream, and each would otherwise make (and clean up) a handle.  The
 * spares of another process (we were forked) are abandoned the same way.
 *
 * Invariants protected: a handle is used by one thread at a time, and
 * only in the process that made it.
 */
#include "curl_priv.h"
#include "client_priv.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* This thread's handles, and the process that made them. */
struct curl_thread {
    uint32_t pid;
    struct gr_curl_slot slot[GR_CURL_USERS];
};

/* Spare handles per user, kept by ended threads; at most this many. */
#define SPARE_MAX 64

static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;
static bool start_ok;

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gr_curl_slot spare[GR_CURL_USERS][SPARE_MAX];
static size_t spares[GR_CURL_USERS];
static uint32_t spare_pid;          /* the process the spares are of */

/* Empty one slot; its handle is cleaned up only when `ours`. */
static void
slot_clear(struct gr_curl_slot *s, bool ours)
{
    if (ours && s->h != NULL)
        curl_easy_cleanup(s->h);
    if (s->priv != NULL && s->priv_free != NULL)
        s->priv_free(s->priv);
    s->h = NULL;
    s->priv = NULL;
    s->priv_free = NULL;
}

/* With spare_lock held: forget the spares of another process. */
static void
spares_check_pid(uint32_t pid)
{
    size_t j;
    int i;

    if (spare_pid == pid)
        return;
    for (i = 0; i < GR_CURL_USERS; i++) {
        for (j = 0; j < spares[i]; j++)
            slot_clear(&spare[i][j], false);
        spares[i] = 0;
    }
    spare_pid = pid;
}

/* Keep a set-up handle of an ending thread as a spare: true if kept. */
static bool
spare_put(int who, struct gr_curl_slot *s, uint32_t pid)
{
    bool kept = false;

    /* http.c reads the environment's proxies once per thread (its
     * promise): its handles are not handed on. */
    if (who != GR_CURL_FORWARD || s->h == NULL || s->priv == NULL)
        return false;
    pthread_mutex_lock(&spare_lock);
    spares_check_pid(pid);
    if (spares[who] < SPARE_MAX) {
        spare[who][spares[who]++] = *s;
        kept = true;
    }
    pthread_mutex_unlock(&spare_lock);
    return kept;
}

/* Take a spare handle into an empty slot: true if there was one. */
static bool
spare_take(int who, struct gr_curl_slot *s, uint32_t pid)
{
    bool got = false;

    pthread_mutex_lock(&spare_lock);
    spares_check_pid(pid);
    if (spares[who] > 0) {
        *s = spare[who][--spares[who]];
        got = true;
    }
    pthread_mutex_unlock(&spare_lock);
    return got;
}

static void
thread_free(void *p)
{
    struct curl_thread *t = p;
    uint32_t pid = gr_self_pid();
    bool ours = t->pid == pid;
    int i;

    for (i = 0; i < GR_CURL_USERS; i++)
        if (!ours || !spare_put(i, &t->slot[i], pid))
            slot_clear(&t->slot[i], ours);
    free(t);
}

/* fork(): no other thread holds spare_lock across it. */
static void
spare_lock_take(void)
{
    pthread_mutex_lock(&spare_lock);
}

static void
spare_lock_give(void)
{
    pthread_mutex_unlock(&spare_lock);
}

static void
start(void)
{
    start_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
               pthread_key_create(&thread_key, thread_free) == 0 &&
               pthread_atfork(spare_lock_take, spare_lock_give,
                              spare_lock_give) == 0;
}

bool
gr_curl_start(void)
{
    pthread_once(&start_once, start);
    return start_ok;
}

/* This thread's record, made on first use, renewed after a fork. */
static struct curl_thread *
this_thread(void)
{
    struct curl_thread *t = pthread_getspecific(thread_key);
    uint32_t pid = gr_self_pid();
    int i;

    if (t != NULL && t->pid != pid) {
        /* Forked: the parent's handles are left alone (see the top). */
        for (i = 0; i < GR_CURL_USERS; i++)
            slot_clear(&t->slot[i], false);
        t->pid = pid;
    }
    if (t != NULL)
        return t;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    t->pid = pid;
    if (pthread_setspecific(thread_key, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

struct gr_curl_slot *
gr_curl_slot(enum gr_curl_user who)
{
    struct curl_thread *t;
    struct gr_curl_slot *s;

    if (!gr_curl_start() || (t = this_thread()) == NULL)
        return NULL;
    s = &t->slot[who];
    if (s->h == NULL && !spare_take(who, s, t->pid)) {
        if ((s->h = curl_easy_init()) == NULL)
            return NULL;
    }
    return s;
}

void
gr_curl_drop(enum gr_curl_user who)
{
    struct curl_thread *t;

    if (gr_curl_start() && (t = pthread_getspecific(thread_key)) != NULL)
        slot_clear(&t->slot[who], t->pid == gr_self_pid());
}
