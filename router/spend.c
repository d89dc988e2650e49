/*
 * spend.c - publish the price table and the spend caps (config/pricing.h)
 * in the table's spend section (shm/layout.h, ABI 6), and say whether
 * reservations count spend at all (header.spend_on: only when some cap
 * is configured, so that a pool without caps pays nothing for them).
 *
 * Invariant protected: a reload changes caps and prices, never the
 * counters of a project that stays (identity is its slot, which the
 * project keeps); a slot given to a new project starts from nothing
 * (gr_rtr_take_slot()).  What the day and the month have counted is
 * kept across a restart in STATE_FILE.spend (beside the state file),
 * restored only for the same Pacific day and month, and only from a
 * file that is ours and whole.
 */
#include "router.h"
#include "sidefile.h"
#include "clock.h"
#include "pricing.h"
#include "spend.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t
u32(int64_t v)
{
    return v < 0 ? 0 : v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void
gr_rtr_publish_spend(struct gr_rtr *r, const struct gr_cfg *cfg,
                     const int *model_idx, const int *slots)
{
    struct gr_shm *t = &r->t;
    const struct gr_cfg_spend *sp = gr_cfg_spend(cfg);
    struct gr_shm_price prices[GR_SHM_MAX_MODELS];
    uint32_t i;
    bool on = sp != NULL && sp->capped;

    if (t->spend == NULL || t->prices == NULL)
        return;
    memset(prices, 0, sizeof(prices));
    for (i = 0; sp != NULL && i < cfg->n_models && i < sp->n_models &&
                i < GR_SHM_MAX_MODELS; i++) {
        const struct gr_cfg_price *p = &sp->prices[i];
        int m = model_idx[i];

        if (!p->set || m < 0 || (uint32_t)m >= t->max_models)
            continue;
        prices[m].input = u32(p->input);
        prices[m].output = u32(p->output);
        prices[m].cached = u32(p->cached);
        prices[m].thinking = u32(p->thinking);
        prices[m].input_long = u32(p->input_long);
        prices[m].output_long = u32(p->output_long);
        prices[m].cached_long = u32(p->cached_long);
        prices[m].thinking_long = u32(p->thinking_long);
        prices[m].long_above = u32(p->long_above);
        prices[m].max_output = u32(p->max_output);
        prices[m].flags = GR_PRICE_SET;
    }
    gr_shm_price_publish(t, prices, t->max_models);
    /* relaxed for the caps: each is one word read on its own, and any
     * value is a valid cap */
    for (i = 0; i < t->max_projects; i++) {
        atomic_store_explicit(&t->spend[i].cap_day, 0, memory_order_relaxed);
        atomic_store_explicit(&t->spend[i].cap_month, 0,
                              memory_order_relaxed);
    }
    for (i = 0; on && i < cfg->n_projects && i < sp->n_projects; i++) {
        if (slots[i] < 0 || (uint32_t)slots[i] >= t->max_projects)
            continue;
        atomic_store_explicit(&t->spend[slots[i]].cap_day,
                              sp->project_day[i], memory_order_relaxed);
        atomic_store_explicit(&t->spend[slots[i]].cap_month,
                              sp->project_month[i], memory_order_relaxed);
    }
    atomic_store_explicit(&t->spend[t->max_projects].cap_day,
                          on ? sp->pool_day : 0, memory_order_relaxed);
    atomic_store_explicit(&t->spend[t->max_projects].cap_month,
                          on ? sp->pool_month : 0, memory_order_relaxed);
    /* relaxed: a setting; the prices it needs were published above
     * under models_seq, and the generation's release follows */
    atomic_store_explicit(&t->hdr->spend_on, on ? 1u : 0u,
                          memory_order_relaxed);
    r->m.spend_on = on ? 1u : 0u;       /* what repair.c restores */
}

/* ---- across restarts: STATE_FILE.spend -------------------------------- */

#define SPEND_MAGIC "gemroute-spend 1"

static void
spend_file(const struct gr_rtr *r, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s.spend", r->state_path) >= n)
        out[0] = '\0';
}

static int32_t
today_of(const struct gr_rtr *r)
{
    return gr_shm_pacific_day_in(r->t.hdr,
                                 gr_shm_now_wall() / GR_NS_PER_S, NULL,
                                 NULL);
}

int
gr_rtr_spend_save(struct gr_rtr *r)
{
    const struct gr_shm *t = &r->t;
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    int32_t today = today_of(r), month = gr_shm_month_of_day(today);
    unsigned lines = 0;
    uint32_t slot;
    FILE *f;
    int rc;

    /* relaxed: a setting; nothing to keep when no spend is counted */
    if (t->spend == NULL || r->state_path[0] == '\0' ||
        atomic_load_explicit(&t->hdr->spend_on, memory_order_relaxed) == 0)
        return 0;
    spend_file(r, path, sizeof(path));
    if (path[0] == '\0')
        return -ENAMETOOLONG;
    f = gr_rtr_file_begin(path, "spend file", tmp, sizeof(tmp), &rc);
    if (f == NULL)
        return rc;
    fprintf(f, "%s\nday %d %d\n", SPEND_MAGIC, today, month);
    for (slot = 0; slot < t->max_projects; slot++) {
        if (r->m.state[slot] != GR_PROJ_ACTIVE &&
            r->m.state[slot] != GR_PROJ_REMOVING)
            continue;
        fprintf(f, "project %s %lld %lld\n", r->m.name[slot],
                (long long)gr_shm_spend_used(&t->spend[slot].day, today),
                (long long)gr_shm_spend_used(&t->spend[slot].month, month));
        lines++;
    }
    fprintf(f, "pool %lld %lld\nend %u\n",
            (long long)gr_shm_spend_used(&t->spend[t->max_projects].day,
                                         today),
            (long long)gr_shm_spend_used(&t->spend[t->max_projects].month,
                                         month), lines);
    return gr_rtr_file_commit(f, tmp, path, "spend file");
}

/* An amount read back: untrusted, in the counters' range. */
static bool
amount_ok(long long v)
{
    return v >= 0 && v <= (long long)GR_SPEND_AMOUNT_MASK;
}

int
gr_rtr_spend_restore(struct gr_rtr *r)
{
    const struct gr_shm *t = &r->t;
    char path[PATH_MAX], line[256], name[GR_SHM_NAME_MAX];
    int32_t today = today_of(r), month = gr_shm_month_of_day(today);
    int saved_day = 0, saved_month = 0, used;
    unsigned lineno = 0, lines = 0, end = UINT_MAX, restored = 0;
    long long d, m;
    struct stat st;
    FILE *f;
    int rc;

    if (t->spend == NULL || r->state_path[0] == '\0')
        return 0;
    spend_file(r, path, sizeof(path));
    if ((f = gr_rtr_file_open(path, "spend file", "ignored", &st,
                              &rc)) == NULL)
        return rc;
    /* First the whole file is checked, then applied: never half. */
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        used = 0;
        if (strchr(line, '\n') == NULL || end != UINT_MAX)
            goto bad;
        if (lineno == 1) {
            if (strcmp(line, SPEND_MAGIC "\n") != 0)
                goto bad;
        } else if (lineno == 2) {
            if (sscanf(line, "day %d %d%n", &saved_day, &saved_month,
                       &used) != 2)
                goto bad;
        } else if (sscanf(line, "project %63s %lld %lld%n", name, &d, &m,
                          &used) == 3) {
            if (!amount_ok(d) || !amount_ok(m))
                goto bad;
            lines++;
        } else if (sscanf(line, "pool %lld %lld%n", &d, &m, &used) == 2) {
            if (!amount_ok(d) || !amount_ok(m))
                goto bad;
        } else if (sscanf(line, "end %u%n", &end, &used) != 1 ||
                   end != lines) {
            goto bad;
        }
        if (used > 0 && line[used] != '\n')
            goto bad;
    }
    if (end == UINT_MAX)
        goto bad;
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        struct gr_shm_spend *s = NULL;
        uint32_t slot;

        if (sscanf(line, "project %63s %lld %lld", name, &d, &m) == 3) {
            for (slot = 0; slot < t->max_projects; slot++)
                if (r->m.state[slot] == GR_PROJ_ACTIVE &&
                    strncmp(r->m.name[slot], name, GR_SHM_NAME_MAX) == 0)
                    s = &t->spend[slot];
        } else if (sscanf(line, "pool %lld %lld", &d, &m) == 2) {
            s = &t->spend[t->max_projects];
        }
        if (s == NULL)
            continue;
        /* Only what still counts: the same Pacific day and month. */
        gr_shm_spend_restore(s, today, saved_day == today ? d : 0,
                             saved_month == month ? m : 0);
        restored++;
    }
    fclose(f);
    gr_rtr_log("spend file %s: restored %u records", path, restored);
    return 0;

bad:
    fclose(f);
    gr_rtr_log("spend file %s: line %u is damaged; ignored", path, lineno);
    return -EINVAL;
}
