/*
 * secrets.c - keep the router's keys out of its environment and of core
 * dumps.
 *
 * Invariant protected: once the config is loaded, no key read from an
 * `env:` variable stays in the router's environment (/proc/PID/environ,
 * what a child would inherit), and the router leaves no core dump (every
 * key has copies on its heap: the config, libconfig's buffers).
 *
 * The variables are found by value: each one whose value is a key of the
 * config is copied into a private stash (anonymous pages kept out of core
 * dumps), its bytes are zeroed where they live and it is unset.  A
 * reload reads `env:` keys again through getenv(): gr_rtr_env_restore()
 * puts the stashed variables back just for the load, and
 * gr_rtr_env_hide() scrubs them again after it.  So a reload sees the
 * environment the router was started with, as it would without the
 * scrub (a running process's environment cannot change from outside).
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

extern char **environ;

#define STASH_MAX 256
#define STASH_NAME_MAX 128

struct stash_entry {
    char name[STASH_NAME_MAX];
    char value[GR_CFG_KEY_MAX];
};

static struct stash_entry *stash;   /* [STASH_MAX], MADV_DONTDUMP pages */
static unsigned n_stash;

int
gr_rtr_no_dumps(void)
{
    /* Not dumpable: no core file, no ptrace by the same user, and
     * /proc/PID/{mem,environ,...} owned by root.  The Varnish and
     * OpenSSH answer for a process that holds secrets in memory. */
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -1;
}

static bool
is_key(const struct gr_cfg *cfg, const char *value)
{
    unsigned i, k;

    for (i = 0; i < cfg->n_projects; i++)
        for (k = 0; k < cfg->projects[i].n_keys; k++)
            if (strcmp(cfg->projects[i].keys[k], value) == 0)
                return true;
    return false;
}

static bool
stashed(const char *name, size_t len)
{
    unsigned i;

    for (i = 0; i < n_stash; i++)
        if (strncmp(stash[i].name, name, len) == 0 &&
            stash[i].name[len] == '\0')
            return true;
    return false;
}

/* Zero the value of the variable name where it lives, then unset it. */
static void
scrub(const char *name)
{
    size_t len = strlen(name);
    char **e;

    for (e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            explicit_bzero(*e + len + 1, strlen(*e + len + 1));
    unsetenv(name);
}

unsigned
gr_rtr_env_hide(const struct gr_cfg *cfg)
{
    unsigned i, hidden = 0;
    char **e;

    if (stash == NULL) {
        void *p = mmap(NULL, STASH_MAX * sizeof(*stash),
                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);

        if (p == MAP_FAILED)
            return 0;
        (void)madvise(p, STASH_MAX * sizeof(*stash), MADV_DONTDUMP);
        stash = p;
    }
    for (e = environ; cfg != NULL && e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        size_t len;

        if (eq == NULL || !is_key(cfg, eq + 1))
            continue;
        len = (size_t)(eq - *e);
        if (stashed(*e, len))
            continue;
        /* A variable the stash cannot hold stays: a reload needs it. */
        if (n_stash == STASH_MAX || len >= STASH_NAME_MAX ||
            strlen(eq + 1) >= GR_CFG_KEY_MAX)
            continue;
        memcpy(stash[n_stash].name, *e, len);
        stash[n_stash].name[len] = '\0';
        snprintf(stash[n_stash].value, GR_CFG_KEY_MAX, "%s", eq + 1);
        n_stash++;
    }
    for (i = 0; i < n_stash; i++)
        if (getenv(stash[i].name) != NULL) {
            scrub(stash[i].name);
            hidden++;
        }
    return hidden;
}

void
gr_rtr_env_restore(void)
{
    unsigned i;

    for (i = 0; i < n_stash; i++)
        setenv(stash[i].name, stash[i].value, 1);
}
