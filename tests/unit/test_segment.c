/*
 * test_segment.c - router/segment.c and the client's attach: who a
 * segment belongs to, and what a router and a client do with one they
 * should not trust (issue 13, "Hardening"):
 * another user's table or one open to others is refused by the router
 * and by clients; a foreign table of another geometry is a refusal, not
 * a crash; a table served from another PID namespace is refused; a
 * scribbled lease time neither settles a live lease nor overflows; keys
 * read from env: leave the environment and come back for a reload.
 *
 * Tests that need a second user take `nobody` (they run as root); they
 * print why and pass when there is none.
 */
#include "clock.h"
#include "config.h"
#include "reserve.h"
#include "router.h"
#include "testinproc.h"
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], shm[64], dev[96];
static uint64_t rng = 7;

/* The config every test uses: 3 projects, 2 models, 8 leases. */
static struct gr_cfg *
cfg_with(const char *router_extra)
{
    return gr_test_cfg_load(dir, "router = { shm = \"%s\"; max_projects = 3; "
        "max_models = 2; max_leases = 8; window_ms = 60000; %s };\n"
        "models = ( { name = \"m\"; rpm = 100; tpm = 1000; } );\n"
        "projects = ( { name = \"a\"; key = \"env:GR_TRUST_KEY\"; },\n"
        "  { name = \"b\"; key = \"SECRET-trust-b-0002\"; } );\n",
        shm, router_extra);
}

static struct gr_cfg *
cfg_of(void)
{
    return cfg_with("");
}

/* A table as a dead router of this geometry would leave it. */
static int
make_table(uint32_t projects, uint32_t models, uint32_t leases)
{
    struct gr_shm t;
    char err[256];

    shm_unlink(shm);
    if (gr_shm_router_create(shm, projects, models, leases,
                             60 * GR_NS_PER_S, 0600, (gid_t)-1, &t, err,
                             sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    gr_shm_detach(&t);
    return 0;
}

/* Does the segment's file hold the bytes of a test key? */
static bool
table_holds_a_key(void)
{
    struct stat st;
    bool found = false;
    int fd = open(dev, O_RDONLY);
    void *p;

    if (fd < 0)
        return false;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            found = memmem(p, (size_t)st.st_size, "SECRET-trust",
                           12) != NULL;
            munmap(p, (size_t)st.st_size);
        }
    }
    close(fd);
    return found;
}

/* nobody's uid and nogroup's gid; false (and why) when a test cannot
 * use a second user here. */
static bool
nobody(uid_t *uid, gid_t *gid, const char *test)
{
    struct passwd *pw = getpwnam("nobody");

    if (geteuid() != 0) {
        printf("\n  %s: skipped: needs root to make a second user's "
               "table\n", test);
        return false;
    }
    if (pw == NULL) {
        printf("\n  %s: skipped: no user 'nobody'\n", test);
        return false;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return true;
}

static int
setup(void)
{
    if (gr_test_names(dir, sizeof(dir), shm, sizeof(shm), "trust") != 0)
        return -1;
    snprintf(dev, sizeof(dev), "/dev/shm%s", shm);
    setenv("GR_TRUST_KEY", "SECRET-trust-a-0001", 1);
    unsetenv("GEMROUTE_SHM_OWNER");
    return 0;
}

static int
teardown(void)
{
    char cmd[128];

    shm_unlink(shm);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Open the segment as the router would; if it is accepted, fill it as
 * the router would (which writes the keys). */
static int
router_opens(struct gr_cfg *cfg, char *err, size_t errlen)
{
    struct gr_rtr r;
    int rc;

    memset(&r, 0, sizeof(r));
    rc = gr_rtr_open_segment(&r, cfg, err, errlen);
    if (rc == 0) {
        gr_rtr_apply(&r, cfg, err, errlen);
        gr_shm_detach(&r.t);
        gr_rtr_mirror_free(&r);
    }
    return rc;
}

static void
test_router_refuses_another_users_table(void)
{
    struct gr_cfg *cfg = cfg_of();
    char err[512] = "";
    struct stat st;
    uid_t uid;
    gid_t gid;

    CU_ASSERT_FATAL(cfg != NULL);
    if (!nobody(&uid, &gid, "item 1 (router)")) {
        gr_cfg_free(cfg);
        return;
    }
    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    CU_ASSERT_FATAL(chown(dev, uid, gid) == 0);
    CU_ASSERT_EQUAL(router_opens(cfg, err, sizeof(err)), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not to the router's user"));
    CU_ASSERT_FALSE(table_holds_a_key());
    /* Left alone: not removed, not taken over. */
    CU_ASSERT(stat(dev, &st) == 0 && st.st_uid == uid);
    shm_unlink(shm);
    gr_cfg_free(cfg);
}

static void
test_router_refuses_a_table_wider_than_its_mode(void)
{
    struct gr_cfg *cfg = cfg_of();
    char err[512] = "";

    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    CU_ASSERT_FATAL(chmod(dev, 0666) == 0);
    CU_ASSERT_EQUAL(router_opens(cfg, err, sizeof(err)), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "has mode 0666"));
    CU_ASSERT_FALSE(table_holds_a_key());
    /* 0660 with no group configured is as wide for the router. */
    CU_ASSERT_FATAL(chmod(dev, 0660) == 0);
    CU_ASSERT_EQUAL(router_opens(cfg, err, sizeof(err)), -EPERM);
    CU_ASSERT_FALSE(table_holds_a_key());
    shm_unlink(shm);
    gr_cfg_free(cfg);
}

static void
test_router_reapplies_its_mode_on_adopt(void)
{
    struct gr_cfg *cfg = cfg_with("mode = \"0660\"; group = \"nogroup\";");
    struct group *g = getgrnam("nogroup");
    char err[512] = "";
    struct stat st;

    if (cfg == NULL || g == NULL) {
        printf("\n  item 1 (mode on adopt): skipped: no group 'nogroup'\n");
        gr_cfg_free(cfg);
        return;
    }
    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    CU_ASSERT_EQUAL(router_opens(cfg, err, sizeof(err)), 0);
    CU_ASSERT_FATAL(stat(dev, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
    CU_ASSERT_EQUAL(st.st_gid, g->gr_gid);
    shm_unlink(shm);
    gr_cfg_free(cfg);
}

static void
test_client_refuses_another_users_table(void)
{
    struct gr_shm t;
    char err[512] = "";
    uid_t uid;
    gid_t gid;

    if (!nobody(&uid, &gid, "item 1 (client)"))
        return;
    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    CU_ASSERT_FATAL(chown(dev, uid, gid) == 0);
    CU_ASSERT_EQUAL(gr_shm_attach(shm, true, &t, err, sizeof(err)), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "belongs to uid"));
    CU_ASSERT_EQUAL(gr_shm_attach(shm, false, &t, err, sizeof(err)), -EPERM);
    /* Named by the operator: trusted. */
    setenv("GEMROUTE_SHM_OWNER", "nobody", 1);
    CU_ASSERT_EQUAL(gr_shm_attach(shm, false, &t, err, sizeof(err)), 0);
    gr_shm_detach(&t);
    setenv("GEMROUTE_SHM_OWNER", "no-such-user-here", 1);
    CU_ASSERT_EQUAL(gr_shm_attach(shm, false, &t, err, sizeof(err)), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "names no user"));
    unsetenv("GEMROUTE_SHM_OWNER");
    shm_unlink(shm);
}

static void
test_client_refuses_a_table_open_to_others(void)
{
    static const unsigned bad[] = {0666, 0644, 0604, 0670, 0700, 04600};
    struct gr_shm t;
    char err[512] = "";
    unsigned i;

    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FATAL(chmod(dev, bad[i]) == 0);
        CU_ASSERT_EQUAL(gr_shm_attach(shm, false, &t, err, sizeof(err)),
                        -EPERM);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "open to others"));
    }
    CU_ASSERT_FATAL(chmod(dev, 0640) == 0);
    CU_ASSERT_EQUAL(gr_shm_attach(shm, false, &t, err, sizeof(err)), 0);
    gr_shm_detach(&t);
    shm_unlink(shm);
}

static void
test_foreign_table_of_another_geometry(void)
{
    struct gr_cfg *cfg = cfg_of();
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int status = 0;

    CU_ASSERT_FATAL(cfg != NULL);
    if (!nobody(&uid, &gid, "item 4")) {
        gr_cfg_free(cfg);
        return;
    }
    /* root's, open to all, of another geometry: a router running as
     * nobody can map it and cannot remove it (/dev/shm is sticky). */
    CU_ASSERT_FATAL(make_table(2, 1, 4) == 0);
    CU_ASSERT_FATAL(chmod(dev, 0666) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct gr_rtr r;
        char err[512] = "";
        int rc;

        if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
            _exit(3);
        memset(&r, 0, sizeof(r));
        rc = gr_rtr_open_segment(&r, cfg, err, sizeof(err));
        _exit(rc != 0 && err[0] != '\0' ? 0 : 1);
    }
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
    shm_unlink(shm);
    gr_cfg_free(cfg);
}

static void
test_client_in_another_pid_namespace(void)
{
    pid_t pid;
    int status = 0;

    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        pid_t inner;
        int st = 0;

        /* Our children are born in a new PID namespace. */
        if (unshare(CLONE_NEWPID) != 0)
            _exit(77);
        inner = fork();
        if (inner == 0) {
            struct gr_shm t;
            char err[512] = "";
            int rc = gr_shm_attach(shm, true, &t, err, sizeof(err));

            _exit(rc == -EXDEV &&
                  strstr(err, "another PID namespace") != NULL ? 0 : 1);
        }
        if (inner < 0 || waitpid(inner, &st, 0) != inner)
            _exit(2);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 2);
    }
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT_FATAL(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        printf("\n  item 5 (client): skipped: cannot make a PID namespace "
               "here (unshare: needs CAP_SYS_ADMIN)\n");
    else
        CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    shm_unlink(shm);
}

static void
test_router_refuses_a_table_of_another_pid_namespace(void)
{
    struct gr_cfg *cfg = cfg_of();
    char err[512] = "";
    struct gr_shm t;

    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_FATAL(make_table(3, 2, 8) == 0);
    CU_ASSERT_FATAL(gr_shm_attach(shm, true, &t, err, sizeof(err)) == 0);
    /* What a dead router of another namespace left. */
    __atomic_store_n(&t.hdr->router_pidns, gr_shm_pidns() + 1,
                     __ATOMIC_RELAXED);
    gr_shm_detach(&t);
    CU_ASSERT_EQUAL(router_opens(cfg, err, sizeof(err)), -EXDEV);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another PID namespace"));
    CU_ASSERT_FALSE(table_holds_a_key());
    shm_unlink(shm);
    gr_cfg_free(cfg);
}

static void
test_scribbled_admitted_ns(void)
{
    static const int64_t scribbles[] = {
        -(INT64_C(1) << 62), INT64_MIN, -1, INT64_MAX,
    };
    struct gr_cfg *cfg = cfg_of();
    struct gr_shm_grant g;
    struct gr_shm_lease *l;
    struct gr_rtr r;
    char err[512];
    int64_t now;
    uint64_t before;
    unsigned i;

    CU_ASSERT_FATAL(cfg != NULL);
    shm_unlink(shm);
    memset(&r, 0, sizeof(r));
    CU_ASSERT_FATAL(gr_rtr_open_segment(&r, cfg, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(gr_rtr_apply(&r, cfg, err, sizeof(err)) == 0);
    {
        struct gr_shm_ask a = {.model = 0, .cost = {1, 10, 0},
                               .now_ns = gr_shm_now_mono(), .today = 1,
                               .pid = (uint32_t)getpid(), .rng = &rng};

        CU_ASSERT_FATAL(gr_shm_reserve(&r.t, &a, &g) == 0);
    }
    l = gr_shm_lease(&r.t, g.lease);
    CU_ASSERT_FATAL(l != NULL);
    now = gr_shm_now_mono();
    for (i = 0; i < sizeof(scribbles) / sizeof(scribbles[0]); i++) {
        l->admitted_ns = scribbles[i];
        before = atomic_load(&r.t.hdr->anomalies);
        r.next_reap_ns = 0;
        gr_rtr_tick(&r, now);
        /* Our own, live lease: kept, and the bad value counted. */
        CU_ASSERT_EQUAL(gr_shm_lease_state(atomic_load(&l->state)),
                        GR_LEASE_ACTIVE);
        CU_ASSERT(atomic_load(&r.t.hdr->anomalies) > before);
    }
    /* The check can tell: a lease truly older than max_call_s goes. */
    l->admitted_ns = now;
    r.next_reap_ns = 0;
    gr_rtr_tick(&r, now + (int64_t)cfg->router.max_call_s * GR_NS_PER_S +
                        GR_NS_PER_S);
    CU_ASSERT_EQUAL(gr_shm_lease_state(atomic_load(&l->state)),
                    GR_LEASE_FREE);
    gr_shm_detach(&r.t);
    gr_rtr_mirror_free(&r);
    shm_unlink(shm);
    gr_cfg_free(cfg);
}

static void
test_env_keys_leave_the_environment(void)
{
    struct gr_cfg *cfg = cfg_of(), *again = NULL;
    struct gr_cfg_errors errs = {0};
    char path[128];
    char *where;

    CU_ASSERT_FATAL(cfg != NULL);
    where = getenv("GR_TRUST_KEY");
    CU_ASSERT_FATAL(where != NULL);
    CU_ASSERT_EQUAL(gr_rtr_env_hide(cfg), 1);
    CU_ASSERT_PTR_NULL(getenv("GR_TRUST_KEY"));
    /* Zeroed where it lived, not only unlinked from environ. */
    CU_ASSERT_EQUAL(where[0], '\0');
    /* A reload reads it again, then it leaves again. */
    gr_rtr_env_restore();
    CU_ASSERT(getenv("GR_TRUST_KEY") != NULL &&
              strcmp(getenv("GR_TRUST_KEY"), "SECRET-trust-a-0001") == 0);
    snprintf(path, sizeof(path), "%s/r.conf", dir);
    CU_ASSERT_EQUAL(gr_cfg_load(path, &again, &errs), 0);
    gr_cfg_errors_free(&errs);
    CU_ASSERT_EQUAL(gr_rtr_env_hide(again), 1);
    CU_ASSERT_PTR_NULL(getenv("GR_TRUST_KEY"));
    gr_rtr_env_restore();
    gr_cfg_free(again);
    gr_cfg_free(cfg);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"item 1: router refuses a segment another user owns",
         test_router_refuses_another_users_table},
        {"item 1: router refuses a segment wider than its mode",
         test_router_refuses_a_table_wider_than_its_mode},
        {"item 1: router re-applies the configured mode on adopt",
         test_router_reapplies_its_mode_on_adopt},
        {"item 1: client refuses a segment another user owns",
         test_client_refuses_another_users_table},
        {"item 1: client refuses a segment open to others",
         test_client_refuses_a_table_open_to_others},
        {"item 4: a foreign segment of another geometry is refused, "
         "not a crash", test_foreign_table_of_another_geometry},
        {"item 5: a client in another PID namespace refuses to attach",
         test_client_in_another_pid_namespace},
        {"item 5: router refuses a segment of another PID namespace",
         test_router_refuses_a_table_of_another_pid_namespace},
        {"item 17: a scribbled admitted_ns neither settles a live lease "
         "nor overflows", test_scribbled_admitted_ns},
        {"item 16: env: keys leave the environment, come back for a "
         "reload", test_env_keys_leave_the_environment},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"segment trust", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_segment", suites, 60);
}
