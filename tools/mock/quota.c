/*
 * quota.c - the mock's quota engine for one (project, model) cell.
 *
 * Invariant protected: for every minute dimension, the cost admitted in
 * any interval (t - W, t] never exceeds the limit (W = the scaled 60 s
 * window), and the requests (input tokens) admitted in one Pacific
 * calendar day never exceed RPD (TPD).  Admission is all-or-nothing
 * across dimensions and a refused request costs nothing.  The window is
 * exact, not bucketed: every admission that can matter is logged with its
 * instant and expires exactly W later, so RetryInfo can say precisely
 * when room appears.
 *
 * The log is a ring of running totals (cum[]), so the sum inside the
 * window is total - base and the instant at which enough expires is a
 * binary search; only admissions with a positive cost on a limited minute
 * dimension are logged, which bounds the ring by the limits themselves.
 */
#include "quota.h"

#include "clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Window-sum index of each minute dimension; RPD and TPD have none. */
static const int dim_slot[GR_MOCK_NDIMS] = {0, 1, -1, 2, -1};

int
gr_mock_cell_init(struct gr_mock_cell *cell, const int64_t limit[GR_MOCK_NDIMS])
{
    int rc;

    memset(cell, 0, sizeof *cell);
    rc = pthread_mutex_init(&cell->lock, NULL);
    if (rc != 0)
        return -rc;
    memcpy(cell->limit, limit, sizeof cell->limit);
    cell->log_minutes = limit[GR_MOCK_RPM] >= 0 || limit[GR_MOCK_TPM] >= 0 ||
                        limit[GR_MOCK_IPM] >= 0;
    return 0;
}

void
gr_mock_cell_destroy(struct gr_mock_cell *cell)
{
    free(cell->ring);
    cell->ring = NULL;
    pthread_mutex_destroy(&cell->lock);
}

static struct gr_mock_win_entry *
entry_at(struct gr_mock_cell *c, size_t i)
{
    return &c->ring[(c->head + i) & (c->cap - 1)];
}

/* Drop admissions that left (now - W, now]: at <= now - W. */
static void
expire(struct gr_mock_cell *c, int64_t now, int64_t window_ns)
{
    while (c->len > 0) {
        struct gr_mock_win_entry *e = &c->ring[c->head];

        if (e->at > now - window_ns)
            break;
        memcpy(c->base, e->cum, sizeof c->base);
        c->head = (c->head + 1) & (c->cap - 1);
        c->len--;
    }
}

static void
roll_day(struct gr_mock_cell *c, int64_t now_wall)
{
    int64_t s = now_wall / GR_NS_PER_S;
    int32_t day;

    if (now_wall < 0 && now_wall % GR_NS_PER_S != 0)
        s--;
    day = gr_shm_pacific_day(s);
    /* A clock shifted to another day, either way, starts that day fresh. */
    if (day != c->day) {
        c->day = day;
        c->day_requests = 0;
        c->day_tokens = 0;
    }
}

/*
 * ns until the window holds room for cost more units of slot k under
 * lim.  Called only when it does not now.  A cost above the limit never
 * fits; the answer is then a whole window, as good a hint as any.
 */
static int64_t
minute_retry(struct gr_mock_cell *c, int k, int64_t cost, int64_t lim,
             int64_t now, int64_t window_ns)
{
    int64_t need = (c->total[k] - c->base[k]) + cost - lim;
    size_t lo = 0, hi;

    if (cost > lim || c->len == 0)
        return window_ns;
    /* cum[] never decreases along the ring: find the first entry whose
     * expiry frees at least need units. */
    hi = c->len - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (entry_at(c, mid)->cum[k] - c->base[k] >= need)
            hi = mid;
        else
            lo = mid + 1;
    }
    return entry_at(c, lo)->at + window_ns - now;
}

static int
grow(struct gr_mock_cell *c)
{
    size_t ncap = c->cap != 0 ? c->cap * 2 : 16, i;
    struct gr_mock_win_entry *n = malloc(ncap * sizeof *n);

    if (n == NULL)
        return -ENOMEM;
    for (i = 0; i < c->len; i++)
        n[i] = *entry_at(c, i);
    free(c->ring);
    c->ring = n;
    c->cap = ncap;
    c->head = 0;
    return 0;
}

static int
admit_locked(struct gr_mock_cell *c, const struct gr_mock_cost *cost,
             int64_t now, int64_t now_wall, int64_t window_ns,
             enum gr_mock_outcome outcome, struct gr_mock_verdict *v)
{
    const int64_t cv[3] = {cost->requests, cost->tokens, cost->images};
    int log_it = 0, d, k;

    /* Keep the log in time order even if a caller's clock read lags. */
    if (now < c->last_at)
        now = c->last_at;
    expire(c, now, window_ns);
    roll_day(c, now_wall);

    v->violated = 0;
    v->retry_ns = 0;
    for (d = 0; d < GR_MOCK_NDIMS; d++) {
        int64_t lim = c->limit[d], wait;

        if (lim < 0)
            continue;
        k = dim_slot[d];
        if (k >= 0) {
            if (cv[k] > 0)
                log_it = 1;
            if (c->total[k] - c->base[k] + cv[k] <= lim)
                continue;
            wait = minute_retry(c, k, cv[k], lim, now, window_ns);
        } else {
            int64_t s = now_wall / GR_NS_PER_S;

            if (d == GR_MOCK_TPD ? c->day_tokens + cost->tokens <= lim
                                 : c->day_requests + cost->requests <= lim)
                continue;
            if (now_wall < 0 && now_wall % GR_NS_PER_S != 0)
                s--;
            wait = gr_shm_next_pacific_midnight(s) * GR_NS_PER_S - now_wall;
        }
        v->violated |= 1u << d;
        if (wait > v->retry_ns)
            v->retry_ns = wait;
    }
    if (v->violated != 0) {
        c->c.refused++;
        for (d = 0; d < GR_MOCK_NDIMS; d++)
            if (v->violated & (1u << d))
                c->c.refused_dim[d]++;
        return -EAGAIN;
    }

    if (log_it) {
        struct gr_mock_win_entry *e;

        if (c->len == c->cap && grow(c) < 0)
            return -ENOMEM;
        e = &c->ring[(c->head + c->len) & (c->cap - 1)];
        for (k = 0; k < 3; k++) {
            c->total[k] += cv[k];
            e->cum[k] = c->total[k];
        }
        e->at = now;
        c->len++;
        c->last_at = now;
    }
    c->day_requests += cost->requests;
    c->day_tokens += cost->tokens;
    c->c.admitted++;
    c->c.tokens += (uint64_t)cost->tokens;
    c->c.images += (uint64_t)cost->images;
    if (outcome == GR_MOCK_FAIL_503)
        c->c.injected_503++;
    else if (outcome == GR_MOCK_FAIL_500)
        c->c.injected_500++;
    else
        c->c.served++;
    return 0;
}

int
gr_mock_cell_admit_at(struct gr_mock_cell *cell,
                      const struct gr_mock_cost *cost, int64_t now_mono,
                      int64_t now_wall, int64_t window_ns,
                      enum gr_mock_outcome outcome, struct gr_mock_verdict *v)
{
    int rc;

    pthread_mutex_lock(&cell->lock);
    rc = admit_locked(cell, cost, now_mono, now_wall, window_ns, outcome, v);
    pthread_mutex_unlock(&cell->lock);
    return rc;
}

int
gr_mock_cell_admit(struct gr_mock_cell *cell, const struct gr_mock_cost *cost,
                   int64_t window_ns, int64_t wall_offset_ns,
                   enum gr_mock_outcome outcome, struct gr_mock_verdict *v)
{
    int rc;

    pthread_mutex_lock(&cell->lock);
    /* Read the clocks under the lock: admissions of one cell then carry
     * nondecreasing instants, which the window log relies on. */
    rc =
        admit_locked(cell, cost, gr_shm_now_mono(),
                     gr_shm_now_wall() + wall_offset_ns, window_ns, outcome, v);
    pthread_mutex_unlock(&cell->lock);
    return rc;
}

void
gr_mock_cell_count_tokens_call(struct gr_mock_cell *cell)
{
    pthread_mutex_lock(&cell->lock);
    cell->c.count_tokens++;
    pthread_mutex_unlock(&cell->lock);
}

void
gr_mock_cell_view(struct gr_mock_cell *cell, int64_t window_ns,
                  int64_t wall_offset_ns, struct gr_mock_cell_view *out)
{
    int64_t now;
    int k;

    pthread_mutex_lock(&cell->lock);
    now = gr_shm_now_mono();
    if (now < cell->last_at)
        now = cell->last_at;
    expire(cell, now, window_ns);
    roll_day(cell, gr_shm_now_wall() + wall_offset_ns);
    memcpy(out->limit, cell->limit, sizeof out->limit);
    for (k = 0; k < 3; k++)
        out->window[k] =
            cell->log_minutes ? cell->total[k] - cell->base[k] : -1;
    out->day_requests = cell->day_requests;
    out->day_tokens = cell->day_tokens;
    out->day = cell->day;
    out->c = cell->c;
    pthread_mutex_unlock(&cell->lock);
}

void
gr_mock_cell_reset(struct gr_mock_cell *cell)
{
    pthread_mutex_lock(&cell->lock);
    free(cell->ring);
    cell->ring = NULL;
    cell->cap = 0;
    cell->head = 0;
    cell->len = 0;
    memset(cell->total, 0, sizeof cell->total);
    memset(cell->base, 0, sizeof cell->base);
    cell->last_at = 0;
    cell->day = 0;
    cell->day_requests = 0;
    cell->day_tokens = 0;
    memset(&cell->c, 0, sizeof cell->c);
    pthread_mutex_unlock(&cell->lock);
}
