/*
 * curl_thread.c - one libcurl easy handle per thread and per user (see
 * curl_priv.h), kept from one call to the next: the handle's connection
 * cache, its buffers and its options' storage are made once per thread
 * rather than once per call (a fresh handle costs a socketpair, two
 * close and four fcntl, and some thirty allocations).
 *
 * The handles hang off one thread-specific key, whose destructor cleans
 * them up when the thread ends.  After fork() a child finds its thread's
 * handles were made by another process (the pid kept beside them): they
 * are abandoned, never used nor cleaned up, because their sockets are
 * the parent's too and two processes writing one TLS session would
 * corrupt it.  What the users keep beside a handle (priv) holds no
 * socket and is freed in either case.
 *
 * Invariants protected: a handle is used only by the thread and the
 * process that made it.
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

static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;
static bool start_ok;

/* Empty one slot; its handle is cleaned up only when `ours`. */
static void
slot_clear(struct gr_curl_slot *s, bool ours)
{
    if (ours && s->h != NULL)
        curl_easy_cleanup(s->h);
    if (s->priv != NULL && s->priv_free != NULL)
        s->priv_free(s->priv);
    s->h = NULL;
    s->fresh = false;
    s->priv = NULL;
    s->priv_free = NULL;
}

static void
thread_free(void *p)
{
    struct curl_thread *t = p;
    bool ours = t->pid == gr_self_pid();
    int i;

    for (i = 0; i < GR_CURL_USERS; i++)
        slot_clear(&t->slot[i], ours);
    free(t);
}

static void
start(void)
{
    start_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
               pthread_key_create(&thread_key, thread_free) == 0;
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
    s->fresh = false;
    if (s->h == NULL) {
        if ((s->h = curl_easy_init()) == NULL)
            return NULL;
        s->fresh = true;
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
