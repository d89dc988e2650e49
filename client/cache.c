/*
 * cache.c - the shared response cache: one LMDB environment in the
 * directory the router publishes in the table's extras, shared by every
 * process of the host (the library's callers and gemroute-gateway), and
 * kept across restarts.  LMDB is wrapped here and nowhere else.
 *
 * Why LMDB: many readers in many processes at once, without a lock
 * (readers see a snapshot; one writer at a time), copy-free reads from a
 * memory map, crash-safe by design (copy-on-write B+tree, two meta
 * pages), bounded in size by its map, and one small well-kept C library
 * in Debian (liblmdb-dev).  SQLite would serialise writers through file
 * locks and copy every read; a hand-made shm hash table would need its
 * own eviction, persistence and crash repair.
 *
 * An entry: key = two 64-bit hashes of "model\nmethod\ncanonical body";
 * value = expiry (unix s), the full key's length and bytes, the answer.
 * A hit compares the full key, so a hash collision is a miss, never a
 * wrong answer.  When the map is full, expired entries go first, then a
 * quarter of the rest in hash order (random order: no LRU bookkeeping on
 * the read path).
 *
 * Invariant protected: the directory is used only if it is a real
 * directory (not a link) owned by this user with no access for anyone
 * else (answers may be confidential), created 0700 when missing; and an
 * environment LMDB finds damaged is refused.  A refusal turns the cache
 * off for this process (checked again every REFUSE_RETRY_NS), with a
 * sentence on the handle: calls go on, uncached.
 */
#include "json_priv.h"
#include "store_priv.h"
#include "seqlock.h"
#include "clock.h"

#include <errno.h>
#include <json.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REFUSE_RETRY_NS (INT64_C(10) * GR_NS_PER_S)
#define MAX_READERS 1024
#define HDR_LEN 12                  /* int64 expiry + uint32 key length */
#define CLAIM_MAX_MS INT64_C(120000)   /* the longest wait on a claim */
#define WAIT_STEP_NS 2000000L          /* a waiter looks again after */

/* One environment per process (LMDB: never two on one file in one
 * process), reopened in a child after fork() and when the path moves. */
static pthread_rwlock_t env_lock = PTHREAD_RWLOCK_INITIALIZER;
static MDB_env *env;
static MDB_dbi dbi;
static uint32_t env_pid;
static char env_path[GR_SHM_URL_MAX];
/* Why the cache is off for this process, under refused_lock (written by
 * threads that hold env_lock for reading, too). */
static pthread_mutex_t refused_lock = PTHREAD_MUTEX_INITIALIZER;
static char refused[1024];          /* "" = it is not off */
static int64_t refused_at;          /* CLOCK_MONOTONIC ns */
static bool broken;                 /* the open environment failed */

struct cache_read {
    const struct gr_shm_extra *x;
    struct gr_cache_cfg *c;
};

/* One try at the cache settings, under the extras' seq. */
static void
copy_cache_settings(void *arg)
{
    const struct cache_read *r = arg;

    gr_shm_seq_copy_out(&r->c->flags, &r->x->flags, sizeof(r->c->flags));
    gr_shm_seq_copy_out(&r->c->max_bytes, &r->x->max_bytes,
                        sizeof(r->c->max_bytes));
    gr_shm_seq_copy_out(&r->c->ttl_s, &r->x->ttl_s, sizeof(r->c->ttl_s));
    gr_shm_seq_copy_out(r->c->path, r->x->cache_path, sizeof(r->c->path));
}

bool
gr_cache_settings(const struct gr *g, struct gr_cache_cfg *c)
{
    struct cache_read r = {g->t.extra, c};

    if (r.x == NULL || !gr_shm_seq_read(&r.x->seq, copy_cache_settings, &r))
        return false;
    c->path[sizeof(c->path) - 1] = '\0';
    /* untrusted: a path that is not absolute is no cache */
    return (c->flags & GR_CACHE_ON) && c->path[0] == '/' && c->ttl_s > 0 &&
           c->max_bytes >= (1u << 20);
}

/* ---- the canonical form of a JSON text -------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    bool bad;
};

static void
put(struct buf *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->bad = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static int
by_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
canon(struct buf *b, struct json_object *o, int depth)
{
    const char *s;
    size_t i, n;

    if (depth > GR_JSON_MAX_DEPTH) {
        b->bad = true;
        return;
    }
    switch (json_object_get_type(o)) {
    case json_type_object: {
        char **keys;
        struct json_object_iter it;

        n = (size_t)json_object_object_length(o);
        keys = calloc(n ? n : 1, sizeof(*keys));
        if (keys == NULL) {
            b->bad = true;
            return;
        }
        i = 0;
        json_object_object_foreachC(o, it)
            if (i < n)
                keys[i++] = it.key;
        qsort(keys, i, sizeof(*keys), by_key);
        put(b, "{", 1);
        for (n = 0; n < i; n++) {
            struct json_object *v = NULL;

            if (n > 0)
                put(b, ",", 1);
            {
                struct json_object *k = json_object_new_string(keys[n]);

                if (k == NULL) {
                    b->bad = true;
                    break;
                }
                s = json_object_to_json_string_ext(k,
                                                   JSON_C_TO_STRING_PLAIN);
                put(b, s, strlen(s));
                json_object_put(k);
            }
            put(b, ":", 1);
            json_object_object_get_ex(o, keys[n], &v);
            canon(b, v, depth + 1);
        }
        put(b, "}", 1);
        free(keys);
        return;
    }
    case json_type_array:
        n = json_object_array_length(o);
        put(b, "[", 1);
        for (i = 0; i < n; i++) {
            if (i > 0)
                put(b, ",", 1);
            canon(b, json_object_array_get_idx(o, i), depth + 1);
        }
        put(b, "]", 1);
        return;
    default:
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        put(b, s, strlen(s));
        return;
    }
}

char *
gr_cache_canon(const char *s, size_t len, size_t *out_len)
{
    struct json_object *o;
    struct buf b = {0};

    /* The key is the whole body: nothing may follow the value. */
    if ((o = gr_json_parse(s, len, 0, GR_JSON_EXACT, NULL)) == NULL)
        return NULL;
    canon(&b, o, 0);
    json_object_put(o);
    if (b.bad || b.p == NULL) {
        free(b.p);
        return NULL;
    }
    *out_len = b.len;
    return b.p;
}

/* ---- the environment -------------------------------------------------- */

static uint64_t
hash64(const char *p, size_t n, uint64_t h)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

static void
refuse(struct gr *g, const char *fmt, const char *path, const char *why)
{
    char p[GR_SHM_URL_MAX], w[128];

    /* bounded copies: the sentence always fits */
    snprintf(p, sizeof(p), "%.*s", (int)sizeof(p) - 1, path);
    snprintf(w, sizeof(w), "%.*s", (int)sizeof(w) - 1, why);
    pthread_mutex_lock(&refused_lock);
    snprintf(refused, sizeof(refused), fmt, p, w);
    refused_at = gr_shm_now_mono();
    gr_seterr(g, "%.250s", refused);
    pthread_mutex_unlock(&refused_lock);
}

/* May the directory at path hold the cache?  Made 0700 if missing. */
static bool
dir_ok(struct gr *g, const char *path)
{
    struct stat st;
    char why[96];

    if (lstat(path, &st) != 0 && errno == ENOENT &&
        mkdir(path, 0700) != 0 && errno != EEXIST) {
        refuse(g, "gemroute: cache directory %s cannot be made (%s): the "
               "cache is off, calls go through uncached", path,
               strerror(errno));
        return false;
    }
    if (lstat(path, &st) != 0) {
        refuse(g, "gemroute: cache directory %s: %s: the cache is off, "
               "calls go through uncached", path, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        refuse(g, "gemroute: cache directory %s is not a directory%s: the "
               "cache is off, calls go through uncached", path,
               S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
        return false;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, sizeof(why), "%u", (unsigned)st.st_uid);
        refuse(g, "gemroute: cache directory %s belongs to uid %s, not to "
               "this user: refused (answers may be confidential); the "
               "cache is off, calls go through uncached", path, why);
        return false;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(why, sizeof(why), "%04o", (unsigned)(st.st_mode & 07777));
        refuse(g, "gemroute: cache directory %s has mode %s, open to "
               "others: refused (it must be 0700); the cache is off, "
               "calls go through uncached", path, why);
        return false;
    }
    return true;
}

/* Open the environment for c (env_lock held for writing). */
static int
open_env(struct gr *g, const struct gr_cache_cfg *c)
{
    MDB_txn *txn = NULL;
    int dead, rc;

    if (env != NULL && env_pid == gr_self_pid())
        mdb_env_close(env);
    /* After fork() the parent's environment is not ours to close. */
    env = NULL;
    snprintf(env_path, sizeof(env_path), "%s", c->path);
    env_pid = gr_self_pid();
    pthread_mutex_lock(&refused_lock);
    refused[0] = '\0';
    broken = false;
    pthread_mutex_unlock(&refused_lock);
    if (!dir_ok(g, c->path))
        return -1;
    if ((rc = mdb_env_create(&env)) != 0)
        goto fail;
    (void)mdb_env_set_maxreaders(env, MAX_READERS);
    if ((rc = mdb_env_set_mapsize(env, (size_t)c->max_bytes)) != 0)
        goto fail;
    /* NOTLS: a read transaction may be used by another thread of a
     * pool; NOMETASYNC: an OS crash loses at most the last store. */
    rc = mdb_env_open(env, c->path, MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc != 0)
        goto fail;
    (void)mdb_reader_check(env, &dead);
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0) {
        if (txn != NULL && rc != 0)
            mdb_txn_abort(txn);
        goto fail;
    }
    return 0;
fail:
    if (env != NULL)
        mdb_env_close(env);
    env = NULL;
    refuse(g, "gemroute: cache %s cannot be used (%s): damaged or not an "
           "LMDB cache? the cache is off, calls go through uncached; "
           "remove the directory to start afresh", c->path,
           mdb_strerror(rc));
    return -1;
}

/* Is the cache off for this process at c's path, since less than
 * REFUSE_RETRY_NS?  (env_lock held, either way.) */
static bool
off_now(const struct gr_cache_cfg *c)
{
    bool off;

    pthread_mutex_lock(&refused_lock);
    off = refused[0] != '\0' && env_pid == gr_self_pid() &&
          strcmp(env_path, c->path) == 0 &&
          gr_shm_now_mono() - refused_at < REFUSE_RETRY_NS;
    pthread_mutex_unlock(&refused_lock);
    return off;
}

/* Is the open environment the one for c, and not found damaged?
 * (env_lock held, either way.) */
static bool
usable(const struct gr_cache_cfg *c)
{
    bool b;

    pthread_mutex_lock(&refused_lock);
    b = broken;
    pthread_mutex_unlock(&refused_lock);
    return env != NULL && !b && env_pid == gr_self_pid() &&
           strcmp(env_path, c->path) == 0;
}

/* Take env_lock for reading with an environment for c; -1: no cache. */
static int
enter(struct gr *g, const struct gr_cache_cfg *c)
{
    pthread_rwlock_rdlock(&env_lock);
    if (usable(c))
        return 0;
    if (off_now(c)) {
        pthread_rwlock_unlock(&env_lock);
        return -1;
    }
    pthread_rwlock_unlock(&env_lock);
    /* Reopen with no transaction of this process under way. */
    pthread_rwlock_wrlock(&env_lock);
    if (!usable(c) && !off_now(c))
        (void)open_env(g, c);
    pthread_rwlock_unlock(&env_lock);
    pthread_rwlock_rdlock(&env_lock);
    if (!usable(c)) {
        pthread_rwlock_unlock(&env_lock);
        return -1;
    }
    return 0;
}

/* A damaged environment found while in use: off for this process until
 * REFUSE_RETRY_NS passed, then opened afresh. */
static void
damaged(struct gr *g, int rc)
{
    if (rc != MDB_CORRUPTED && rc != MDB_PANIC && rc != MDB_INVALID &&
        rc != MDB_PAGE_NOTFOUND)
        return;
    pthread_mutex_lock(&refused_lock);
    snprintf(refused, sizeof(refused), "gemroute: cache %.255s is damaged "
             "(%s): the cache is off, calls go through uncached; remove "
             "the directory to start afresh", env_path, mdb_strerror(rc));
    refused_at = gr_shm_now_mono();
    broken = true;
    gr_seterr(g, "%.250s", refused);
    pthread_mutex_unlock(&refused_lock);
}

static void
key_of(const char *key, size_t klen, uint64_t h[2])
{
    h[0] = hash64(key, klen, UINT64_C(0xcbf29ce484222325));
    h[1] = hash64(key, klen, UINT64_C(0x84222325cbf29ce4) ^ klen);
}

static int64_t
now_ms(void)
{
    return gr_shm_now_wall() / 1000000;
}

enum look { L_NONE, L_ANSWER, L_PENDING };

/* What v holds for key: an answer (copied to *body), a live claim, or
 * nothing usable (absent, expired, another key with the same hash). */
static enum look
look(const MDB_val *v, const char *key, size_t klen, char **body,
     size_t *len)
{
    int64_t exp, now = now_ms();
    uint32_t kl;
    size_t n;

    if (v->mv_size < HDR_LEN)
        return L_NONE;
    memcpy(&exp, v->mv_data, 8);
    memcpy(&kl, (char *)v->mv_data + 8, 4);
    if (kl != klen || v->mv_size < HDR_LEN + (size_t)kl ||
        memcmp((char *)v->mv_data + HDR_LEN, key, klen) != 0)
        return L_NONE;
    if (exp < 0)
        return -exp > now ? L_PENDING : L_NONE;
    if (exp <= now)
        return L_NONE;
    n = v->mv_size - HDR_LEN - kl;
    *body = malloc(n + 1);
    if (*body == NULL)
        return L_NONE;
    memcpy(*body, (char *)v->mv_data + HDR_LEN + kl, n);
    (*body)[n] = '\0';
    *len = n;
    return L_ANSWER;
}

static int
begin(MDB_txn **txn, unsigned flags)
{
    int rc = mdb_txn_begin(env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED) {
        (void)mdb_env_set_mapsize(env, 0);  /* another process grew it */
        rc = mdb_txn_begin(env, NULL, flags, txn);
    }
    return rc;
}

static int
store(const char *key, size_t klen, const uint64_t h[2], const char *body,
      size_t len, int64_t exp)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint32_t kl = (uint32_t)klen;
    uint64_t hk[2] = {h[0], h[1]};  /* LMDB's MDB_val is not const */
    int rc;

    k.mv_data = hk;
    k.mv_size = sizeof(hk);
    v.mv_size = HDR_LEN + klen + len;
    if ((rc = begin(&txn, 0)) != 0)
        return rc;
    rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    memcpy(v.mv_data, &exp, 8);
    memcpy((char *)v.mv_data + 8, &kl, 4);
    memcpy((char *)v.mv_data + HDR_LEN, key, klen);
    if (len > 0)
        memcpy((char *)v.mv_data + HDR_LEN + klen, body, len);
    return mdb_txn_commit(txn);
}

/*
 * In one write transaction: the answer if one came meanwhile (1), a
 * live claim of another process (2), or our claim, until claim_ms from
 * now, written (0).  < 0: an LMDB error.
 */
static int
claim(const char *key, size_t klen, const uint64_t h[2], int64_t claim_ms,
      char **body, size_t *len)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint32_t kl = (uint32_t)klen;
    int64_t exp = -(now_ms() + claim_ms);
    enum look l = L_NONE;
    uint64_t hk[2] = {h[0], h[1]};  /* LMDB's MDB_val is not const */
    int rc;

    k.mv_data = hk;
    k.mv_size = sizeof(hk);
    if ((rc = begin(&txn, 0)) != 0)
        return rc;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0)
        l = look(&v, key, klen, body, len);
    else if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return rc;
    }
    if (l != L_NONE) {
        mdb_txn_abort(txn);
        return l == L_ANSWER ? 1 : 2;
    }
    v.mv_size = HDR_LEN + klen;
    rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    memcpy(v.mv_data, &exp, 8);
    memcpy((char *)v.mv_data + 8, &kl, 4);
    memcpy((char *)v.mv_data + HDR_LEN, key, klen);
    return mdb_txn_commit(txn);
}

int
gr_cache_get(struct gr *g, const struct gr_cache_cfg *c, const char *key,
             size_t klen, int64_t until_ns, bool *claimed, char **body,
             size_t *len)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    uint64_t h[2];
    int64_t claim_ms;
    enum look l;
    int rc;

    *claimed = false;
    if (enter(g, c) != 0)
        return -1;
    key_of(key, klen, h);
    k.mv_data = h;
    k.mv_size = sizeof(h);
    claim_ms = (until_ns - gr_shm_now_mono()) / 1000000;
    if (claim_ms < 1000)
        claim_ms = 1000;
    if (claim_ms > CLAIM_MAX_MS)
        claim_ms = CLAIM_MAX_MS;
    for (;;) {
        l = L_NONE;
        rc = begin(&txn, MDB_RDONLY);
        if (rc != 0)
            break;
        rc = mdb_get(txn, dbi, &k, &v);
        if (rc == 0)
            l = look(&v, key, klen, body, len);
        mdb_txn_abort(txn);
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
        rc = 0;
        if (l == L_ANSWER) {
            pthread_rwlock_unlock(&env_lock);
            return 1;
        }
        if (l == L_NONE) {
            /* Ask to be the one process that calls upstream. */
            rc = claim(key, klen, h, claim_ms, body, len);
            if (rc == 0 || rc == 1) {
                *claimed = rc == 0;
                pthread_rwlock_unlock(&env_lock);
                return rc;
            }
            if (rc != 2)
                break;
            rc = 0;
        }
        /* Another process is calling for this very request: wait for
         * its answer, until our own deadline. */
        if (gr_shm_now_mono() >= until_ns)
            break;
        {
            struct timespec ts = {0, WAIT_STEP_NS};

            nanosleep(&ts, NULL);
        }
    }
    if (rc != 0)
        damaged(g, rc);
    pthread_rwlock_unlock(&env_lock);
    return rc != 0 ? -1 : 0;
}

/* Make room: expired entries and claims, then a quarter of the rest. */
static int
evict(void)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat ms;
    int64_t now = now_ms(), exp = 0;
    size_t gone = 0, quota;
    int rc;

    if ((rc = begin(&txn, 0)) != 0)
        return rc;
    if ((rc = mdb_stat(txn, dbi, &ms)) != 0 ||
        (rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        if (v.mv_size >= 8)
            memcpy(&exp, v.mv_data, 8);
        if (v.mv_size < 8 || (exp >= 0 && exp <= now) ||
            (exp < 0 && -exp <= now)) {
            (void)mdb_cursor_del(cur, 0);
            gone++;
        }
    }
    quota = ms.ms_entries / 4 + 1;
    if (gone < quota) {
        gone = 0;
        while (gone < quota &&
               mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0) {
            (void)mdb_cursor_del(cur, 0);
            gone++;
        }
    }
    mdb_cursor_close(cur);
    return mdb_txn_commit(txn);
}

int
gr_cache_put(struct gr *g, const struct gr_cache_cfg *c, const char *key,
             size_t klen, const char *body, size_t len)
{
    uint64_t h[2];
    int64_t exp = now_ms() + c->ttl_s * 1000;
    int rc;

    /* An entry must fit in a quarter of the map. */
    if (klen > UINT32_MAX || len + klen > c->max_bytes / 4)
        return -1;
    if (enter(g, c) != 0)
        return -1;
    key_of(key, klen, h);
    rc = store(key, klen, h, body, len, exp);
    if (rc == MDB_MAP_FULL) {
        int dead;

        /* A process killed inside a read transaction keeps old pages
         * from reuse until its reader slot is cleared. */
        (void)mdb_reader_check(env, &dead);
        if (evict() == 0)
            rc = store(key, klen, h, body, len, exp);
    }
    if (rc != 0)
        damaged(g, rc);
    pthread_rwlock_unlock(&env_lock);
    return rc == 0 ? 0 : -1;
}

void
gr_cache_unclaim(struct gr *g, const struct gr_cache_cfg *c,
                 const char *key, size_t klen)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint64_t h[2];
    int64_t exp;

    if (enter(g, c) != 0)
        return;
    key_of(key, klen, h);
    k.mv_data = h;
    k.mv_size = sizeof(h);
    if (begin(&txn, 0) == 0) {
        /* Only a claim goes: an answer stored meanwhile stays. */
        if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size >= HDR_LEN &&
            (memcpy(&exp, v.mv_data, 8), exp < 0))
            (void)mdb_del(txn, dbi, &k, NULL);
        (void)mdb_txn_commit(txn);
    }
    pthread_rwlock_unlock(&env_lock);
}

/* ---- for gemroute cache stats|clear ----------------------------------- */

int
gr_cache_info(struct gr *g, struct gr_cache_info *out)
{
    struct gr_cache_cfg c;
    MDB_txn *txn;
    MDB_stat ms;
    MDB_envinfo ei;
    const struct gr_shm_extra *x;

    if (g == NULL || out == NULL)
        return GR_EINVAL;
    memset(out, 0, sizeof(*out));
    x = g->t.extra;
    if (x != NULL) {
        /* relaxed: totals for display */
        out->hits = atomic_load_explicit(&x->cache_hits,
                                         memory_order_relaxed);
        out->misses = atomic_load_explicit(&x->cache_misses,
                                           memory_order_relaxed);
        out->stores = atomic_load_explicit(&x->cache_stores,
                                           memory_order_relaxed);
        out->errors = atomic_load_explicit(&x->cache_errors,
                                           memory_order_relaxed);
    }
    if (!gr_cache_settings(g, &c))
        return GR_OK;
    out->on = true;
    snprintf(out->path, sizeof(out->path), "%s", c.path);
    out->max_bytes = c.max_bytes;
    out->ttl_s = c.ttl_s;
    if (enter(g, &c) != 0) {
        pthread_mutex_lock(&refused_lock);
        snprintf(out->refused, sizeof(out->refused), "%.*s",
                 (int)sizeof(out->refused) - 1, refused);
        pthread_mutex_unlock(&refused_lock);
        return GR_OK;
    }
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_stat(txn, dbi, &ms) == 0) {
            out->entries = ms.ms_entries;
            out->bytes_used = (uint64_t)ms.ms_psize *
                              (ms.ms_branch_pages + ms.ms_leaf_pages +
                               ms.ms_overflow_pages);
        }
        mdb_txn_abort(txn);
    }
    if (mdb_env_info(env, &ei) == 0)
        out->max_bytes = ei.me_mapsize;
    pthread_rwlock_unlock(&env_lock);
    return GR_OK;
}

int
gr_cache_clear(struct gr *g, uint64_t *removed)
{
    struct gr_cache_cfg c;
    MDB_txn *txn;
    MDB_stat ms;
    int rc;

    if (g == NULL)
        return GR_EINVAL;
    if (!gr_cache_settings(g, &c)) {
        gr_seterr(g, "the table has no cache (cache section off or "
                  "missing)");
        return GR_EINVAL;
    }
    if (enter(g, &c) != 0)
        return GR_ECALL;
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0) {
        if (mdb_stat(txn, dbi, &ms) == 0 && removed != NULL)
            *removed = ms.ms_entries;
        rc = mdb_drop(txn, dbi, 0);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc != 0)
        gr_seterr(g, "clearing the cache %s: %s", c.path, mdb_strerror(rc));
    pthread_rwlock_unlock(&env_lock);
    return rc == 0 ? GR_OK : GR_ECALL;
}
