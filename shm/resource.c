/*
 * resource.c - the record of files, caches and batch jobs and the project
 * each lives in (resource.h): map the companion segment, put, find, drop,
 * list, and the router's sweep of expired records and dead writers.
 *
 * Invariant protected: a reader never acts on a record that was being
 * written while it copied it (the state word is the same before and after
 * the copy, and LIVE), and never reads outside the segment, whatever a
 * scribbler left in it (indices come from the private geometry, strings
 * are cut at their buffers, kinds are range-checked).
 *
 * Lookups scan every record: only a request that names a resource looks,
 * and a scan of 4096 records is some microseconds, nothing beside an
 * HTTP call.  A put starts at the name's hash, so that records spread.
 */
#include "resource.h"
#include "companion.h"
#include "table.h"
#include "seqlock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CLAIM_TRIES 64      /* CAS attempts on one record before -EAGAIN */

static uint64_t
res_word(uint32_t pid, uint64_t seq, unsigned state)
{
    return (uint64_t)pid << 32 | (seq & 0xffffff) << 8 | state;
}

static unsigned
res_state(uint64_t w)
{
    return (unsigned)(w & 0xff);
}

static uint64_t
res_seq(uint64_t w)
{
    return w >> 8 & 0xffffff;
}

static uint32_t
res_pid(uint64_t w)
{
    return (uint32_t)(w >> 32);
}

static void
anomaly(const struct gr_shm_restab *rt)
{
    if (!rt->writable)
        return;     /* a reader that mapped it read-only writes nothing */
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&rt->hdr->anomalies, 1, memory_order_relaxed);
}

int
gr_shm_res_segname(const char *table, char *out, size_t n)
{
    return gr_shm_comp_name(table, ".res", out, n);
}

size_t
gr_shm_res_size(uint32_t cap)
{
    if (cap == 0 || cap > GR_RES_MAX_CAP)
        return 0;
    return sizeof(struct gr_shm_res_hdr) +
           (size_t)cap * sizeof(struct gr_shm_res);
}

bool
gr_shm_res_name_ok(const char *name)
{
    size_t i;

    if (name == NULL || name[0] == '\0')
        return false;
    for (i = 0; name[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (i + 1 >= GR_RES_NAME_MAX || ch <= 0x20 || ch >= 0x7f ||
            ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

static bool
project_ok(const char *p)
{
    size_t len;

    if (p == NULL)
        return false;
    len = strnlen(p, GR_RES_PROJECT_MAX);
    return len > 0 && len < GR_RES_PROJECT_MAX;
}

int
gr_shm_res_check_mapping(void *base, size_t size, bool writable,
                         struct gr_shm_restab *rt, char *err, size_t errlen)
{
    const struct gr_shm_res_hdr *h = base;

    if (size < sizeof(*h) || h->magic != GR_RES_MAGIC) {
        gr_shm_say(err, errlen, "gemroute: %s is not a gemroute resource "
            "record", rt->name);
        return -EPROTO;
    }
    if (h->abi_major != GR_RES_ABI_MAJOR) {
        gr_shm_say(err, errlen, "gemroute: %s has resource ABI %u.%u; this "
            "process speaks %u.x - rebuild it", rt->name, h->abi_major,
            h->abi_minor, GR_RES_ABI_MAJOR);
        return -EPROTO;
    }
    if (gr_shm_res_size(h->cap) == 0 || h->size != size ||
        gr_shm_res_size(h->cap) != size) {
        gr_shm_say(err, errlen, "gemroute: %s has a damaged header (its size "
            "does not match its records)", rt->name);
        return -EPROTO;
    }
    rt->base = base;
    rt->size = size;
    rt->cap = h->cap;
    rt->writable = writable;
    rt->hdr = base;
    rt->recs = (struct gr_shm_res *)((unsigned char *)base + sizeof(*h));
    return 0;
}

int
gr_shm_res_attach(const char *table, bool writable, struct gr_shm_restab *rt,
                  char *err, size_t errlen)
{
    struct gr_shm_comp c;
    int rc;

    memset(rt, 0, sizeof(*rt));
    if (gr_shm_res_segname(table, rt->name, sizeof(rt->name)) != 0) {
        gr_shm_say(err, errlen, "gemroute: table name too long");
        return -ENAMETOOLONG;
    }
    rc = gr_shm_comp_map(rt->name, writable, sizeof(struct gr_shm_res_hdr),
                         "resource record", &c, err, errlen);
    if (rc != 0)
        return rc;
    rc = gr_shm_res_check_mapping(c.base, c.size, writable, rt, err,
                                  errlen);
    if (rc != 0)
        gr_shm_comp_unmap(&c);
    return rc;
}

void
gr_shm_res_detach(struct gr_shm_restab *rt)
{
    if (rt->base != NULL)
        munmap(rt->base, rt->size);
    rt->base = NULL;
    rt->hdr = NULL;
    rt->recs = NULL;
    rt->cap = 0;
}

int
gr_shm_res_router_open(const char *table, uint32_t cap, unsigned mode,
                       gid_t gid, struct gr_shm_restab *rt, bool *created,
                       char *err, size_t errlen)
{
    size_t size = gr_shm_res_size(cap);
    struct gr_shm_res_hdr *h;
    struct gr_shm_comp c;
    int rc;

    *created = false;
    memset(rt, 0, sizeof(*rt));
    if (size == 0) {
        gr_shm_say(err, errlen, "gemroute: %u resource records is out of range",
            cap);
        return -EINVAL;
    }
    if (gr_shm_res_segname(table, rt->name, sizeof(rt->name)) != 0)
        return -ENAMETOOLONG;
    /* Ours, of this size: adopt it, with its records. */
    rc = gr_shm_comp_adopt(rt->name, size, "resource record", &c, err,
                           errlen);
    if (rc == 0) {
        rc = gr_shm_res_check_mapping(c.base, c.size, true, rt, err,
                                      errlen);
        if (rc == 0 && rt->cap == cap)
            return 0;
        gr_shm_comp_unmap(&c);
        rc = -ESTALE;
    }
    /* Foreign, damaged or of another size: made anew (the router's
     * state file has the records). */
    rc = gr_shm_comp_create(rt->name, size, mode, gid, rc != -ENOENT, &c,
                            err, errlen);
    if (rc != 0)
        return rc;
    h = c.base;
    h->abi_major = GR_RES_ABI_MAJOR;
    h->abi_minor = GR_RES_ABI_MINOR;
    h->size = size;
    h->cap = cap;
    gr_shm_comp_publish(&h->magic, GR_RES_MAGIC);
    rc = gr_shm_res_check_mapping(c.base, size, true, rt, err, errlen);
    if (rc != 0) {
        gr_shm_comp_unmap(&c);
        return rc;
    }
    *created = true;
    return 0;
}

/* FNV-1a of a name: where a put starts looking. */
static uint32_t
hash_name(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/*
 * Copy record r if it is LIVE and nobody wrote it during the copy.
 * 0, -ENOENT (not live), -EAGAIN (written meanwhile, or its values are
 * out of range).
 */
static int
copy_rec(const struct gr_shm_restab *rt, const struct gr_shm_res *r,
         struct gr_shm_res_view *out, uint64_t *word)
{
    uint64_t w1, w2;
    uint32_t kind;

    /* acquire: pairs with the release that published LIVE (publish()) */
    w1 = atomic_load_explicit(&r->state, memory_order_acquire);
    if (res_state(w1) != GR_RES_LIVE)
        return res_state(w1) == GR_RES_FREE ? -ENOENT : -EAGAIN;
    gr_shm_seq_copy_out(&out->expire_ns, &r->expire_ns, 8);
    gr_shm_seq_copy_out(&kind, &r->kind, 4);
    gr_shm_seq_copy_out(&out->tokens, &r->tokens, 4);
    gr_shm_seq_copy_str(out->name, r->name, GR_RES_NAME_MAX);
    gr_shm_seq_copy_str(out->project, r->project, GR_RES_PROJECT_MAX);
    /* acquire: the copies above are acquires too (seqlock.h), so this
     * re-read stays after them */
    w2 = atomic_load_explicit(&r->state, memory_order_acquire);
    if (w1 != w2)
        return -EAGAIN;
    out->kind = kind;
    if (kind == GR_RES_KIND_NONE || kind >= GR_RES_NKINDS ||
        !gr_shm_res_name_ok(out->name) || !project_ok(out->project)) {
        anomaly(rt);
        return -EAGAIN;
    }
    if (word != NULL)
        *word = w1;
    return 0;
}

/* Claim r from the word `seen` (FREE or LIVE) for pid; true when ours. */
static bool
claim(struct gr_shm_res *r, uint64_t seen, uint32_t pid, uint64_t *claimed)
{
    uint64_t w = res_word(pid, res_seq(seen) + 1, GR_RES_WRITING);

    /* acq_rel: acquire orders our writes after the claim; release is
     * not needed by anyone but costs nothing on a CAS */
    if (!atomic_compare_exchange_strong_explicit(&r->state, &seen, w,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed))
        return false;
    *claimed = w;
    return true;
}

/* Write the fields of a claimed record and publish it LIVE. */
static void
publish(struct gr_shm_res *r, uint64_t claimed, uint32_t kind,
        const char *name, const char *project, int64_t expire_ns,
        uint32_t tokens)
{
    char nbuf[GR_RES_NAME_MAX], pbuf[GR_RES_PROJECT_MAX];

    memset(nbuf, 0, sizeof(nbuf));
    memset(pbuf, 0, sizeof(pbuf));
    snprintf(nbuf, sizeof(nbuf), "%s", name);
    snprintf(pbuf, sizeof(pbuf), "%s", project);
    gr_shm_seq_copy_in(&r->expire_ns, &expire_ns, 8);
    gr_shm_seq_copy_in(&r->kind, &kind, 4);
    gr_shm_seq_copy_in(&r->tokens, &tokens, 4);
    gr_shm_seq_copy_in(r->name, nbuf, sizeof(nbuf));
    gr_shm_seq_copy_in(r->project, pbuf, sizeof(pbuf));
    /* release: a reader that sees LIVE sees the fields above */
    atomic_store_explicit(&r->state,
                          res_word(res_pid(claimed), res_seq(claimed),
                                   GR_RES_LIVE),
                          memory_order_release);
}

/* Free a claimed record. */
static void
release_free(struct gr_shm_res *r, uint64_t claimed)
{
    uint32_t zero = 0;

    /* A freed record's count is cleared, so that a 1.0 writer (which
     * never writes the field) that takes the place leaves "not known". */
    gr_shm_seq_copy_in(&r->tokens, &zero, 4);
    /* release: our writes (if any) come before FREE */
    atomic_store_explicit(&r->state,
                          res_word(res_pid(claimed), res_seq(claimed),
                                   GR_RES_FREE),
                          memory_order_release);
}

static bool
expired(const struct gr_shm_res_view *v, int64_t now_ns)
{
    return v->expire_ns != 0 && v->expire_ns <= now_ns;
}

/* Index of the live record of name, or -1; *word its state. */
static int64_t
find(const struct gr_shm_restab *rt, const char *name,
     struct gr_shm_res_view *v, uint64_t *word)
{
    uint32_t i;

    for (i = 0; i < rt->cap; i++) {
        int rc, tries;

        for (tries = 0; tries < CLAIM_TRIES; tries++) {
            rc = copy_rec(rt, &rt->recs[i], v, word);
            if (rc != -EAGAIN)
                break;
        }
        if (rc == 0 && strcmp(v->name, name) == 0)
            return i;
    }
    return -1;
}

int
gr_shm_res_put(const struct gr_shm_restab *rt, uint32_t kind,
               const char *name, const char *project, int64_t expire_ns,
               uint32_t pid, int64_t now_ns)
{
    struct gr_shm_res_view v;
    uint64_t word, claimed;
    uint32_t start, i;
    int64_t at;
    int tries;

    if (rt->base == NULL || !rt->writable)
        return -EBADF;
    if (kind == GR_RES_KIND_NONE || kind >= GR_RES_NKINDS ||
        !gr_shm_res_name_ok(name) || !project_ok(project) ||
        expire_ns < 0)
        return -EINVAL;
    /* Known already: update it in place. */
    for (tries = 0; tries < CLAIM_TRIES; tries++) {
        at = find(rt, name, &v, &word);
        if (at < 0)
            break;
        if (claim(&rt->recs[at], word, pid, &claimed)) {
            publish(&rt->recs[at], claimed, kind, name, project, expire_ns,
                    v.tokens);
            return 0;
        }
    }
    if (tries == CLAIM_TRIES)
        return -EAGAIN;
    /* A free place, or an expired record's, from the name's hash on. */
    start = hash_name(name) % rt->cap;
    for (i = 0; i < rt->cap; i++) {
        struct gr_shm_res *r = &rt->recs[(start + i) % rt->cap];
        /* relaxed: the CAS in claim() checks it again */
        uint64_t w = atomic_load_explicit(&r->state, memory_order_relaxed);

        if (res_state(w) == GR_RES_LIVE) {
            if (copy_rec(rt, r, &v, &w) != 0 || !expired(&v, now_ns))
                continue;
        } else if (res_state(w) != GR_RES_FREE) {
            continue;
        }
        if (claim(r, w, pid, &claimed)) {
            publish(r, claimed, kind, name, project, expire_ns, 0);
            return 0;
        }
    }
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&rt->hdr->refused, 1, memory_order_relaxed);
    return -ENOSPC;
}

/* The live record of name written again, with expire_ns (-1: its own)
 * and tokens (-1: its own): 0, -ENOENT, or -EAGAIN when others kept
 * writing it. */
static int
rewrite(const struct gr_shm_restab *rt, const char *name, uint32_t pid,
        int64_t expire_ns, int64_t tokens)
{
    struct gr_shm_res_view v;
    uint64_t word, claimed;
    int64_t at;
    int tries;

    for (tries = 0; tries < CLAIM_TRIES; tries++) {
        if ((at = find(rt, name, &v, &word)) < 0)
            return -ENOENT;
        if (claim(&rt->recs[at], word, pid, &claimed)) {
            publish(&rt->recs[at], claimed, v.kind, v.name, v.project,
                    expire_ns < 0 ? v.expire_ns : expire_ns,
                    tokens < 0 ? v.tokens : (uint32_t)tokens);
            return 0;
        }
    }
    return -EAGAIN;
}

int
gr_shm_res_set_expiry(const struct gr_shm_restab *rt, const char *name,
                      int64_t expire_ns, uint32_t pid)
{
    if (rt->base == NULL || !rt->writable)
        return -EBADF;
    if (!gr_shm_res_name_ok(name) || expire_ns < 0)
        return -EINVAL;
    return rewrite(rt, name, pid, expire_ns, -1);
}

int
gr_shm_res_set_tokens(const struct gr_shm_restab *rt, const char *name,
                      uint32_t tokens, uint32_t pid)
{
    if (rt->base == NULL || !rt->writable)
        return -EBADF;
    if (!gr_shm_res_name_ok(name))
        return -EINVAL;
    return rewrite(rt, name, pid, -1, tokens);
}

int
gr_shm_res_get(const struct gr_shm_restab *rt, const char *name,
               int64_t now_ns, struct gr_shm_res_view *out)
{
    if (rt->base == NULL || !gr_shm_res_name_ok(name))
        return -ENOENT;
    if (find(rt, name, out, NULL) < 0 || expired(out, now_ns))
        return -ENOENT;
    return 0;
}

int
gr_shm_res_drop(const struct gr_shm_restab *rt, const char *name,
                uint32_t pid)
{
    struct gr_shm_res_view v;
    uint64_t word, claimed;
    int64_t at;
    int tries, dropped = 0;

    if (rt->base == NULL || !rt->writable)
        return -EBADF;
    if (!gr_shm_res_name_ok(name))
        return -EINVAL;
    for (tries = 0; tries < CLAIM_TRIES; tries++) {
        if ((at = find(rt, name, &v, &word)) < 0)
            break;
        if (claim(&rt->recs[at], word, pid, &claimed)) {
            release_free(&rt->recs[at], claimed);
            /* relaxed: a statistic */
            atomic_fetch_add_explicit(&rt->hdr->dropped, 1,
                                      memory_order_relaxed);
            dropped++;
        }
    }
    return dropped > 0 ? 0 : -ENOENT;
}

int
gr_shm_res_read(const struct gr_shm_restab *rt, uint32_t i,
                struct gr_shm_res_view *out)
{
    int rc = -EAGAIN, tries;

    if (rt->base == NULL || i >= rt->cap)
        return -ENOENT;
    for (tries = 0; tries < CLAIM_TRIES && rc == -EAGAIN; tries++)
        rc = copy_rec(rt, &rt->recs[i], out, NULL);
    return rc;
}

void
gr_shm_res_count(const struct gr_shm_restab *rt, int64_t now_ns,
                 uint64_t counts[GR_RES_NKINDS])
{
    struct gr_shm_res_view v;
    uint32_t i;

    memset(counts, 0, GR_RES_NKINDS * sizeof(counts[0]));
    for (i = 0; rt->base != NULL && i < rt->cap; i++) {
        if (gr_shm_res_read(rt, i, &v) != 0 || expired(&v, now_ns))
            continue;
        counts[0]++;
        counts[v.kind]++;
    }
}

unsigned
gr_shm_res_router_sweep(const struct gr_shm_restab *rt, int64_t now_ns,
                        int64_t grace_ns)
{
    struct gr_shm_res_view v;
    unsigned freed = 0;
    uint32_t i;

    for (i = 0; rt->base != NULL && rt->writable && i < rt->cap; i++) {
        struct gr_shm_res *r = &rt->recs[i];
        /* acquire: as a reader (copy_rec()) */
        uint64_t w = atomic_load_explicit(&r->state, memory_order_acquire);
        uint64_t claimed;
        unsigned st = res_state(w);
        bool go = false;

        if (st == GR_RES_WRITING) {
            pid_t pid = (pid_t)res_pid(w);

            /* EPERM means alive; a pid of 0 or out of range is damage */
            go = pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH);
        } else if (st == GR_RES_LIVE) {
            int rc = copy_rec(rt, r, &v, &w);

            go = rc == 0 && v.expire_ns != 0 &&
                 v.expire_ns <= now_ns - grace_ns;
        } else if (st != GR_RES_FREE) {
            anomaly(rt);
            go = true;      /* a state no writer leaves: damage */
        }
        if (go && claim(r, w, (uint32_t)getpid(), &claimed)) {
            release_free(r, claimed);
            /* relaxed: a statistic */
            atomic_fetch_add_explicit(&rt->hdr->dropped, 1,
                                      memory_order_relaxed);
            freed++;
        }
    }
    return freed;
}
