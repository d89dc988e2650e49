/*
 * resources.c - the router's part of the resource record (shm/resource.h):
 * make or adopt the companion segment next to the table, free expired
 * records and those of writers that died mid-write, and keep the record
 * in a file beside the state file so that it outlives the segment (a
 * reboot, a table recreated).
 *
 * Invariant protected: a record restored from the file is one the file
 * held whole (a damaged or foreign file is reported and ignored, never
 * half-applied), and the file is written as the state file is (a new
 * temporary file, never through a symlink, fsync, rename, mode 0600).
 * Resource names and project names are not secrets; no key is written.
 */
#include "router.h"
#include "sidefile.h"
#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RES_MAGIC "gemroute-resources 1"
#define SWEEP_EVERY_NS (INT64_C(1000000000))
/* An expired record is kept this long for status to show it gone. */
#define EXPIRED_GRACE_NS (INT64_C(60) * 1000000000)

static void
file_of(const struct gr_rtr *r, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s.res", r->state_path) >= n)
        out[0] = '\0';
}

void
gr_rtr_res_open(struct gr_rtr *r)
{
    gid_t gid = gr_rtr_group(r->cfg);
    bool created = false;
    char err[256];
    int rc;

    if (r->res.base != NULL)
        return;
    rc = gr_shm_res_router_open(r->t.name, GR_RES_DEFAULT_CAP,
                                r->cfg->router.mode, gid, &r->res, &created,
                                err, sizeof(err));
    if (rc != 0) {
        gr_rtr_log("%s: resources are not recorded (requests that name "
                   "a file, cache or batch are not pinned)", err);
        return;
    }
    if (created)
        gr_rtr_res_restore(r);
    else
        gr_rtr_log("%s: adopted, records kept", r->res.name);
}

void
gr_rtr_res_close(struct gr_rtr *r, bool unlink_it)
{
    if (r->res.base == NULL)
        return;
    if (unlink_it)
        shm_unlink(r->res.name);
    gr_shm_res_detach(&r->res);
}

void
gr_rtr_res_tick(struct gr_rtr *r, int64_t now_mono)
{
    unsigned n;

    if (r->res.base == NULL || now_mono < r->next_res_sweep_ns)
        return;
    r->next_res_sweep_ns = now_mono + SWEEP_EVERY_NS;
    n = gr_shm_res_router_sweep(&r->res, gr_shm_now_wall(),
                                EXPIRED_GRACE_NS);
    if (n > 0)
        gr_rtr_log("resources: %u records freed (expired, or their writer "
                   "died mid-write)", n);
}

int
gr_rtr_res_save(struct gr_rtr *r)
{
    struct gr_shm_res_view v;
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    unsigned lines = 0;
    uint32_t i;
    FILE *f;
    int rc;

    if (r->res.base == NULL || r->state_path[0] == '\0')
        return 0;
    file_of(r, path, sizeof(path));
    if (path[0] == '\0')
        return -ENAMETOOLONG;
    f = gr_rtr_file_begin(path, "resource file", tmp, sizeof(tmp), &rc);
    if (f == NULL)
        return rc;
    fprintf(f, "%s\n", RES_MAGIC);
    for (i = 0; i < r->res.cap; i++) {
        if (gr_shm_res_read(&r->res, i, &v) != 0)
            continue;
        fprintf(f, "res %u %s %s %lld\n", v.kind, v.name, v.project,
                (long long)v.expire_ns);
        lines++;
    }
    fprintf(f, "end %u\n", lines);
    return gr_rtr_file_commit(f, tmp, path, "resource file");
}

struct saved_res {
    unsigned kind;
    long long expire;
    char name[GR_RES_NAME_MAX];
    char project[GR_RES_PROJECT_MAX];
};

/* One line "res KIND NAME PROJECT EXPIRE" of the file. */
static int
res_line(const char *line, unsigned lineno, void *elem, void *arg)
{
    struct saved_res *s = elem;
    int used = 0;

    (void)lineno;
    (void)arg;
    if (sscanf(line, "res %u %103s %63s %lld%n", &s->kind, s->name,
               s->project, &s->expire, &used) != 4 ||
        line[used] != '\n' || s->kind == GR_RES_KIND_NONE ||
        s->kind >= GR_RES_NKINDS || s->expire < 0 ||
        !gr_shm_res_name_ok(s->name))
        return -EINVAL;
    return 0;
}

/* The whole file, or -EINVAL with the damaged line in why. */
static int
parse(FILE *f, struct saved_res **out, unsigned *n, char *why, size_t whylen)
{
    void *v;
    int rc;

    rc = gr_rtr_file_records(f, RES_MAGIC, "resource file", 0,
                             sizeof(**out), GR_RES_MAX_CAP, res_line, NULL,
                             &v, n, why, whylen);
    *out = v;
    return rc;
}

int
gr_rtr_res_restore(struct gr_rtr *r)
{
    struct saved_res *v = NULL;
    char path[PATH_MAX], why[128];
    unsigned n = 0, i, put = 0;
    int64_t now = gr_shm_now_wall();
    struct stat st;
    FILE *f;
    int rc;

    if (r->res.base == NULL || r->state_path[0] == '\0')
        return 0;
    file_of(r, path, sizeof(path));
    f = gr_rtr_file_open(path, "resource file", "ignored", &st, &rc);
    if (f == NULL)
        return rc;
    rc = parse(f, &v, &n, why, sizeof(why));
    fclose(f);
    if (rc != 0) {
        gr_rtr_log("resource file %s: %s; ignored", path, why);
        return rc;
    }
    for (i = 0; i < n; i++) {
        if (v[i].expire != 0 && v[i].expire <= now)
            continue;
        if (gr_shm_res_put(&r->res, v[i].kind, v[i].name, v[i].project,
                           v[i].expire, (uint32_t)getpid(), now) == 0)
            put++;
    }
    free(v);
    gr_rtr_log("resource file %s: restored %u records of %u", path, put, n);
    return 0;
}
