/*
 * state.c - what the router remembers across a stop: the counts Google
 * has already made (minute windows, the day), cooldowns, learned limits
 * and operator state, in a small text file.
 *
 * Invariant protected: a restored count is never lower than the one
 * saved (a window's saved cost is held until one window after the save,
 * the conservative end), and a file that is not entirely ours and intact
 * is reported and ignored, never half-applied.  Keys are never written.
 * The file is written to a temporary name, fsynced and renamed, mode 0600.
 *
 * The file is trusted only where nobody else can put one: the temporary
 * file is created new (O_EXCL) and never through a symlink (O_NOFOLLOW),
 * the file read back must be a regular file of our own user, and a
 * directory that anyone may write to without the sticky bit is refused
 * for both.  Times read back are untrusted numbers: a file saved in the
 * future (the clock went back) holds its minute counts for a whole
 * window, and nothing read is used in arithmetic that could overflow.
 */
#include "router.h"
#include "sidefile.h"
#include "clock.h"
#include "health.h"
#include "window.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "gemroute-state 1"
#define CELL_PERSIST (GR_CELL_DISABLED_MODEL | GR_CELL_OP_DISABLED | \
                      GR_CELL_OP_DRAINING)
#define PROJ_PERSIST (GR_PROJ_AUTH_FAILED | GR_PROJ_OP_DISABLED | \
                      GR_PROJ_OP_DRAINING)

struct saved_cell {
    char project[GR_SHM_NAME_MAX];
    char model[GR_SHM_NAME_MAX];
    long long used[GR_NWINDOWS];
    long long day, day_used;
    long long tday_used;                /* tokens on `day` (TPD) */
    long long cool_wall[GR_NDIM];
    long long cell_cool_wall;
    long long learned[GR_NDIM];
    unsigned cell_health, proj_health;
};

/* The directory part of path, "." when it has none. */
static void
dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

/*
 * 0 when the directory of path is safe for the state file; -EPERM when
 * anyone may write to it and it lacks the sticky bit (anyone could then
 * replace our file by theirs), with the reason logged once per path.
 */
static int
dir_safe(const char *path)
{
    static char warned[PATH_MAX];
    char dir[PATH_MAX];
    struct stat st;

    dir_of(path, dir, sizeof(dir));
    if (stat(dir, &st) != 0)
        return -errno;
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        if (strcmp(warned, path) != 0)
            gr_rtr_log("state file %s: its directory %s is writable by "
                       "anyone (mode %04o) and not sticky: not used",
                       path, dir, (unsigned)(st.st_mode & 07777));
        snprintf(warned, sizeof(warned), "%s", path);
        return -EPERM;
    }
    warned[0] = '\0';
    return 0;
}

static int
mkdirs(const char *path)
{
    char buf[PATH_MAX];
    char *p;

    snprintf(buf, sizeof(buf), "%s", path);
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

void
gr_rtr_state_path(const struct gr_cfg *cfg, char *out, size_t n)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    const char *name = cfg->router.shm + (cfg->router.shm[0] == '/');

    if (cfg->router.state_file[0] != '\0')
        snprintf(out, n, "%s", cfg->router.state_file);
    else if (xdg != NULL && xdg[0] == '/')
        snprintf(out, n, "%s/gemroute/%s.state", xdg, name);
    else if (geteuid() == 0 || home == NULL)
        snprintf(out, n, "/var/lib/gemroute/%s.state", name);
    else
        snprintf(out, n, "%s/.local/state/gemroute/%s.state", home, name);
}

/* Longest cooldown worth keeping: past a Pacific midnight and then some
 * (anything longer is damage). */
#define MAX_COOL_NS (INT64_C(3) * 86400 * GR_NS_PER_S)

static long long
to_wall(int64_t mono_deadline, int64_t now_mono, int64_t now_wall)
{
    if (mono_deadline <= now_mono)
        return 0;
    if (mono_deadline - now_mono > MAX_COOL_NS)
        mono_deadline = now_mono + MAX_COOL_NS;
    return now_wall + (mono_deadline - now_mono);
}

static bool
save_cell(FILE *f, const struct gr_rtr *r, uint32_t slot, uint32_t m,
          int64_t now_mono, int64_t now_wall, int32_t today)
{
    const struct gr_shm *t = &r->t;
    const struct gr_shm_project *p = &t->projects[slot];
    const struct gr_shm_cell *c = gr_shm_cell(t, slot, m);
    char pname[GR_SHM_NAME_MAX], mname[GR_SHM_NAME_MAX];
    unsigned w, d;

    /* Names from the router's own copy, not from the segment. */
    memcpy(pname, r->m.name[slot], sizeof(pname));
    memcpy(mname, r->m.model[m], sizeof(mname));
    pname[sizeof(pname) - 1] = mname[sizeof(mname) - 1] = '\0';
    if (pname[0] == '\0' || mname[0] == '\0' || strpbrk(pname, " \t\n") ||
        strpbrk(mname, " \t\n"))
        return false;
    fprintf(f, "cell %s %s", pname, mname);
    for (w = 0; w < GR_NWINDOWS; w++)
        fprintf(f, " %lld", (long long)gr_shm_window_used(t, c, w,
                                                          now_mono));
    fprintf(f, " %d %lld", today, (long long)gr_shm_day_used(&c->day, today));
    /* relaxed for all: a snapshot to keep.  The four first dimensions,
     * then (since TPD) the tokens' day, its cooldown and learned limit at
     * the end of the line, where a file of an older router has none. */
    for (d = 0; d < GR_D_TPD; d++)
        fprintf(f, " %lld", to_wall(atomic_load_explicit(
                    &c->cool_until[d], memory_order_relaxed), now_mono,
                    now_wall));
    fprintf(f, " %lld", to_wall(atomic_load_explicit(
                &c->cell_cool_until, memory_order_relaxed), now_mono,
                now_wall));
    for (d = 0; d < GR_D_TPD; d++)
        fprintf(f, " %lld", (long long)atomic_load_explicit(
                    &c->learned[d], memory_order_relaxed));
    fprintf(f, " %u %u",
            atomic_load_explicit(&c->health, memory_order_relaxed) &
                CELL_PERSIST,
            atomic_load_explicit(&p->health, memory_order_relaxed) &
                PROJ_PERSIST);
    fprintf(f, " %lld %lld %lld\n",
            (long long)gr_shm_day_used(&c->tday, today),
            to_wall(atomic_load_explicit(&c->cool_until[GR_D_TPD],
                                         memory_order_relaxed),
                    now_mono, now_wall),
            (long long)atomic_load_explicit(&c->learned[GR_D_TPD],
                                            memory_order_relaxed));
    return true;
}

int
gr_rtr_state_save(struct gr_rtr *r)
{
    const struct gr_shm *t = &r->t;
    int64_t now_mono = gr_shm_now_mono(), now_wall = gr_shm_now_wall();
    int32_t today = gr_shm_pacific_day_in(r->t.hdr, now_wall / GR_NS_PER_S,
                                          NULL, NULL);
    uint32_t n_models = r->m.n_models, slot, m;
    char tmp[PATH_MAX + 8];
    unsigned lines = 0;
    FILE *f;
    int rc;

    if (r->state_path[0] == '\0')
        return 0;
    rc = mkdirs(r->state_path);
    if (rc == 0)
        rc = dir_safe(r->state_path);
    if (rc == -EPERM)
        return rc;                  /* logged once by dir_safe() */
    if (rc != 0) {
        gr_rtr_log("state file %s.tmp: %s", r->state_path, strerror(-rc));
        return rc;
    }
    /* Whoever put a link at tmp must not have us write where it points. */
    f = gr_rtr_file_begin(r->state_path, "state file", tmp, sizeof(tmp),
                          &rc);
    if (f == NULL)
        return rc;
    fprintf(f, "%s\nsaved %lld\nwindow %lld\n", STATE_MAGIC,
            (long long)now_wall, (long long)t->window_ns);
    for (slot = 0; slot < t->max_projects; slot++) {
        uint32_t st = r->m.state[slot];

        if (st != GR_PROJ_ACTIVE && st != GR_PROJ_REMOVING)
            continue;
        for (m = 0; m < n_models; m++)
            lines += save_cell(f, r, slot, m, now_mono, now_wall, today);
    }
    fprintf(f, "end %u\n", lines);
    rc = gr_rtr_file_commit(f, tmp, r->state_path, "state file");
    gr_rtr_res_save(r);     /* beside it: STATE_FILE.res */
    gr_rtr_spend_save(r);   /* and STATE_FILE.spend */
    return rc;
}

/* What parse() reads besides the cells: the header lines. */
struct state_head {
    long long *saved, *window;
};

/* Line 2 "saved NS", line 3 "window NS", or a "cell ..." line. */
static int
state_line(const char *line, unsigned lineno, void *elem, void *arg)
{
    struct state_head *hd = arg;
    struct saved_cell *c = elem;
    int used = 0;

    if (lineno == 2) {
        /* Wall-clock ns: a time before 1970 is damage. */
        if (sscanf(line, "saved %lld%n", hd->saved, &used) != 1 ||
            *hd->saved <= 0)
            return -EINVAL;
    } else if (lineno == 3) {
        if (sscanf(line, "window %lld%n", hd->window, &used) != 1)
            return -EINVAL;
    } else {
        memset(c, 0, sizeof(*c));
        if (sscanf(line, "cell %63s %63s %lld %lld %lld %lld %lld %lld "
                   "%lld %lld %lld %lld %lld %lld %lld %lld %u %u%n",
                   c->project, c->model, &c->used[0], &c->used[1],
                   &c->used[2], &c->day, &c->day_used, &c->cool_wall[0],
                   &c->cool_wall[1], &c->cool_wall[2], &c->cool_wall[3],
                   &c->cell_cool_wall, &c->learned[0], &c->learned[1],
                   &c->learned[2], &c->learned[3], &c->cell_health,
                   &c->proj_health, &used) != 18)
            return -EINVAL;
        /* Tokens per day (ABI 6) at the end of the line; a file written
         * before them has none. */
        c->cool_wall[GR_D_TPD] = 0;
        c->learned[GR_D_TPD] = -1;
        if (line[used] == ' ') {
            int more = 0;

            if (sscanf(line + used, " %lld %lld %lld%n", &c->tday_used,
                       &c->cool_wall[GR_D_TPD], &c->learned[GR_D_TPD],
                       &more) != 3 ||
                c->tday_used < 0 || c->tday_used > UINT32_MAX)
                return -EINVAL;
            used += more;
        }
        for (int k = 0; k < GR_NWINDOWS; k++)
            if (c->used[k] < 0 || c->used[k] > UINT32_MAX)
                return -EINVAL;
        if (c->day_used < 0 || c->day_used > UINT32_MAX)
            return -EINVAL;
    }
    return line[used] == '\n' ? 0 : -EINVAL;
}

/* Parse the whole file into cells; -EINVAL with a reason if anything is
 * off (the caller then ignores the file). */
static int
parse(FILE *f, long long *saved, long long *window, struct saved_cell **out,
      unsigned *n, char *why, size_t whylen)
{
    struct state_head hd = {saved, window};
    void *v;
    int rc;

    rc = gr_rtr_file_records(f, STATE_MAGIC, "state file", 2,
                             sizeof(**out), UINT_MAX / 2, state_line, &hd,
                             &v, n, why, whylen);
    *out = v;
    if (rc == 0 && *window <= 0) {
        snprintf(why, whylen, "truncated (no end line)");
        free(v);
        *out = NULL;
        *n = 0;
        return -EINVAL;
    }
    return rc;
}

/* Raise a day word (requests or tokens) to the count saved today. */
static void
restore_day(_Atomic uint64_t *day, long long saved, int32_t today)
{
    /* acquire: a plain CAS loop raising the count to the saved one */
    uint64_t word = atomic_load_explicit(day, memory_order_acquire);
    uint64_t cur = (word >> 32 & GR_EPOCH_MASK) ==
                           ((uint64_t)today & GR_EPOCH_MASK)
                       ? gr_shm_word_used(word) : 0;

    if (saved <= 0)
        return;
    while (cur < (uint64_t)saved &&
           !atomic_compare_exchange_weak_explicit(
               day, &word,
               gr_shm_word_pack((uint64_t)saved, (uint64_t)today, word),
               memory_order_acq_rel, memory_order_acquire))
        cur = (word >> 32 & GR_EPOCH_MASK) ==
                      ((uint64_t)today & GR_EPOCH_MASK)
                  ? gr_shm_word_used(word) : 0;
}

static void
restore_cell(struct gr_rtr *r, const struct saved_cell *s, long long saved,
             int64_t now_mono, int64_t now_wall, int32_t today)
{
    struct gr_shm *t = &r->t;
    int m = -1, slot = -1;
    struct gr_shm_cell *c;
    int64_t age, hold;
    unsigned w, d;

    for (uint32_t i = 0; i < r->m.n_models && m < 0; i++)
        if (strncmp(r->m.model[i], s->model, GR_SHM_NAME_MAX) == 0)
            m = (int)i;
    for (uint32_t i = 0; i < t->max_projects && slot < 0; i++)
        if (r->m.state[i] == GR_PROJ_ACTIVE &&
            strncmp(r->m.name[i], s->project, GR_SHM_NAME_MAX) == 0)
            slot = (int)i;
    if (m < 0 || slot < 0)
        return;     /* no longer configured */
    c = gr_shm_cell(t, (uint32_t)slot, (uint32_t)m);
    /* saved > 0 and now_wall > 0 (checked by the caller): no overflow */
    age = now_wall - saved;
    if (age < 0)
        age = 0;    /* the clock went back: hold for a whole window */
    hold = age < t->window_ns ? t->window_ns - age : 0;
    for (w = 0; w < GR_NWINDOWS && hold > 0; w++) {
        if (s->used[w] <= 0)
            continue;
        /* Held until one window after the save: the latest any of it
         * could still be in Google's window. */
        gr_shm_window_force(t, c, w, s->used[w]);
        gr_shm_window_release_at(t, c, w, s->used[w], now_mono + hold,
                                 now_mono);
    }
    if (s->day == today) {
        restore_day(&c->day, s->day_used, today);
        restore_day(&c->tday, s->tday_used, today);
    }
    /* relaxed for the rest: advice, restored before clients may choose
     * this project (the choice array is published afterwards) */
    for (d = 0; d < GR_NDIM; d++) {
        if (s->cool_wall[d] > now_wall &&
            s->cool_wall[d] - now_wall <= MAX_COOL_NS)
            atomic_store_explicit(&c->cool_until[d],
                                  now_mono + (s->cool_wall[d] - now_wall),
                                  memory_order_relaxed);
        if (s->learned[d] >= 0)
            gr_shm_set_learned(t, c, d, s->learned[d]);
    }
    if (s->cell_cool_wall > now_wall &&
        s->cell_cool_wall - now_wall <= MAX_COOL_NS)
        atomic_store_explicit(&c->cell_cool_until,
                              now_mono + (s->cell_cool_wall - now_wall),
                              memory_order_relaxed);
    atomic_fetch_or_explicit(&c->health, s->cell_health & CELL_PERSIST,
                             memory_order_relaxed);
    atomic_fetch_or_explicit(&t->projects[slot].health,
                             s->proj_health & PROJ_PERSIST,
                             memory_order_relaxed);
}

int
gr_rtr_state_restore(struct gr_rtr *r)
{
    int64_t now_mono = gr_shm_now_mono(), now_wall = gr_shm_now_wall();
    int32_t today = gr_shm_pacific_day_in(r->t.hdr, now_wall / GR_NS_PER_S,
                                          NULL, NULL);
    struct saved_cell *cells;
    long long saved = 0, window = 0;
    struct stat st;
    unsigned n, i;
    char why[128];
    FILE *f;
    int rc;

    if (r->state_path[0] == '\0')
        return 0;
    if (now_wall <= 0) {
        gr_rtr_log("state file %s: the wall clock reads before 1970; "
                   "ignored", r->state_path);
        return -EINVAL;
    }
    rc = dir_safe(r->state_path);
    if (rc == -EPERM)
        return rc;
    f = gr_rtr_file_open(r->state_path, "state file",
                         "starting with empty counts", &st, &rc);
    if (f == NULL)
        return rc;
    if ((st.st_mode & 077) != 0)
        gr_rtr_log("state file %s is readable by others (mode %03o)",
                   r->state_path, (unsigned)(st.st_mode & 0777));
    rc = parse(f, &saved, &window, &cells, &n, why, sizeof(why));
    fclose(f);
    if (rc != 0) {
        gr_rtr_log("state file %s: %s; ignored", r->state_path, why);
        return rc;
    }
    if (window != r->t.window_ns)
        gr_rtr_log("state file %s: saved with another window; minute "
                   "counts held for the current one", r->state_path);
    for (i = 0; i < n; i++)
        restore_cell(r, &cells[i], saved, now_mono, now_wall, today);
    /* Both > 0: the difference cannot overflow. */
    if (saved > now_wall)
        gr_rtr_log("state file %s: restored %u cells saved %.0f s in the "
                   "future (the clock went back?); minute counts held for "
                   "a whole window", r->state_path, n,
                   (double)(saved - now_wall) / 1e9);
    else
        gr_rtr_log("state file %s: restored %u cells saved %.0f s ago",
                   r->state_path, n, (double)(now_wall - saved) / 1e9);
    free(cells);
    return 0;
}
