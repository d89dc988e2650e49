/*
 * testinproc.c - the in-process router of the C tests (testinproc.h).
 */
#include "testinproc.h"
#include "config.h"
#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct gr_cfg *
gr_test_cfg_load(const char *dir, const char *fmt, ...)
{
    char path[128];
    struct gr_cfg *cfg = NULL;
    struct gr_cfg_errors errs = {0};
    va_list ap;
    FILE *f;

    snprintf(path, sizeof(path), "%s/r.conf", dir);
    f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    if (gr_cfg_load(path, &cfg, &errs) != 0) {
        for (unsigned i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        cfg = NULL;
    }
    gr_cfg_errors_free(&errs);
    return cfg;
}

int
gr_test_rtr_open(struct gr_rtr *rtr, const struct gr_cfg *cfg)
{
    char err[512] = "";

    if (cfg == NULL)
        return -1;
    if (gr_rtr_open_segment(rtr, cfg, err, sizeof(err)) != 0 ||
        gr_rtr_apply(rtr, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    return 0;
}

int
gr_test_rtr_end(struct gr_rtr *rtr, const char *dir, const char *shm)
{
    char cmd[128];

    gr_shm_detach(&rtr->t);
    gr_rtr_mirror_free(rtr);
    shm_unlink(shm);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
gr_test_slot_of(const struct gr_rtr *rtr, const char *name)
{
    for (uint32_t i = 0; i < rtr->t.max_projects; i++)
        if (atomic_load(&rtr->t.projects[i].state) != GR_PROJ_FREE &&
            strcmp(rtr->t.projects[i].name, name) == 0)
            return (int)i;
    return -1;
}
