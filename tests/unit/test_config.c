/*
 * test_config.c - the config loader: a full config read back value by
 * value, defaults, @include, gr_cfg_limit, the shipped examples, and the
 * golden error files of tests/config/ (every bad-*.conf must give exactly
 * the lines of its bad-*.expected).  Also: no key ever shows up in an
 * error line.
 *
 * Run from the repository root (make test does): the golden files name
 * paths relative to it.  GR_GOLDEN_UPDATE=1 rewrites the .expected files
 * instead of comparing; review the diff before committing them.
 */
#include "aliases.h"
#include "config.h"
#include "gateway.h"
#include "testlib.h"

#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/gr-test-config-XXXXXX";

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
suite_init(void)
{
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    /* The environment the golden files expect. */
    unsetenv("GR_TEST_UNSET_VARIABLE");
    setenv("GR_TEST_EMPTY_VARIABLE", "", 1);
    setenv("GR_TEST_SPACE_VARIABLE", "SECRET-env with-space", 1);
    setenv("GR_TEST_SHARED_VARIABLE", "SECRET-shared-1", 1);
    setenv("GR_TEST_LONG_VARIABLE", "SECRET-long-"
           "0123456789012345678901234567890123456789012345678901234567890123"
           "0123456789012345678901234567890123456789012345678901234567890123",
           1);
    return 0;
}

static int
suite_clean(void)
{
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/rel, creating its directories. */
static const char *
tmp_path(const char *rel)
{
    static char path[4][4096];
    static unsigned next;
    char *p = path[next++ % 4], *s;

    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, rel);
    for (s = p + strlen(tmpdir) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    return p;
}

static void
write_file(const char *rel, const char *text)
{
    FILE *f = fopen(tmp_path(rel), "w");

    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void
print_errors(const char *path, const struct gr_cfg_errors *errs)
{
    unsigned i;

    for (i = 0; i < errs->n; i++)
        printf("\n  %s: unexpected error: %s", path, errs->lines[i]);
}

/* Load path, which must be good. */
static struct gr_cfg *
load_good(const char *path)
{
    struct gr_cfg_errors errs;
    struct gr_cfg *cfg = NULL;
    int rc = gr_cfg_load(path, &cfg, &errs);

    if (rc != 0)
        print_errors(path, &errs);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(errs.n, 0);
    CU_ASSERT_EQUAL(rc == 0, cfg != NULL);
    gr_cfg_errors_free(&errs);
    return cfg;
}

static const char full_main[] =
    "# every setting, with values other than the defaults\n"
    "router = {\n"
    "  shm = \"/gr-test\";\n"
    "  mode = \"0660\";\n"
    "  group = \"staff\";\n"
    "  base_url = \"http://127.0.0.1:8089//\";\n"
    "  headroom = 0.9;\n"
    "  max_projects = 10;\n"
    "  max_models = 4;\n"
    "  max_leases = 100;\n"
    "  max_call_s = 30;\n"
    "  batch_calls = 16;\n"
    "  window_ms = 1000;\n"
    "  choice = \"weighted\";\n"
    "  proxy = \"http://proxy.local:3128\";\n"
    "  state_file = \"state/gemroute.state\";\n"
    "};\n"
    "@include \"models.d/tiers.conf\"\n"
    "projects = (\n"
    "  { name = \"env-one\"; key = \"env:GR_TEST_KEY_ONE\"; },\n"
    "  { name = \"file-rel\"; key = \"file:secrets/two.key\"; weight = 3;\n"
    "    priority = -2;\n"
    "    limits = ( { model = \"flash\"; rpm = 150; rpd = 0; },\n"
    "               { model = \"image\"; ipm = 2; tpd = 7000; } ); },\n"
    "  { name = \"lit\"; key = \"literal-key_3.x\"; enabled = false; },\n"
    "  { name = \"multi\"; keys = [\"env:GR_TEST_KEY_FOUR\", \"FILE5\"]; }\n"
    ");\n"
    "aliases = ( { name = \"fast\"; model = \"flash\"; },\n"
    "            { name = \"gemini-flash-latest\"; model = \"flash\"; },\n"
    "            { name = \"img\"; model = \"image\"; } );\n";

static const char full_models[] =
    "models = (\n"
    "  { name = \"flash\"; rpm = 1000; tpm = 1000000; rpd = 10000;"
    " tpd = 50000000; },\n"
    "  { name = \"image\"; rpm = 500; tpm = 500000; rpd = 2000; ipm = 10; },\n"
    "  { name = \"off\"; rpm = 0; },\n"
    "  { name = \"big\"; tpm = 5000000000L; }\n"
    ");\n";

/* The full config, with the absolute key file path put in its place. */
static struct gr_cfg *
load_full(void)
{
    char text[sizeof(full_main) + 4096], *at;
    char spec[4096];

    setenv("GR_TEST_KEY_ONE", "key-one-from-env", 1);
    setenv("GR_TEST_KEY_FOUR", "key-four-from-env", 1);
    write_file("secrets/five.key", "key-five-absolute\n");
    snprintf(spec, sizeof(spec), "file:%s", tmp_path("secrets/five.key"));
    at = strstr(full_main, "FILE5");
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - full_main), full_main,
             spec, at + 5);
    write_file("full/main.conf", text);
    write_file("full/models.d/tiers.conf", full_models);
    write_file("full/secrets/two.key", "  key-two-from-file\r\n\n");
    return load_good(tmp_path("full/main.conf"));
}

static void
test_full_config_values(void)
{
    struct gr_cfg *cfg = load_full();
    const struct gr_cfg_router *r;
    const struct gr_cfg_project *p;
    char want[4096];

    CU_ASSERT_FATAL(cfg != NULL);
    r = &cfg->router;
    CU_ASSERT_STRING_EQUAL(cfg->path, tmp_path("full/main.conf"));
    CU_ASSERT_STRING_EQUAL(r->shm, "/gr-test");
    CU_ASSERT_EQUAL(r->mode, 0660);
    CU_ASSERT_STRING_EQUAL(r->group, "staff");
    CU_ASSERT_STRING_EQUAL(r->base_url, "http://127.0.0.1:8089");
    CU_ASSERT_DOUBLE_EQUAL(r->headroom, 0.9, 1e-12);
    CU_ASSERT_EQUAL(r->max_projects, 10);
    CU_ASSERT_EQUAL(r->max_models, 4);
    CU_ASSERT_EQUAL(r->max_leases, 100);
    CU_ASSERT_EQUAL(r->max_call_s, 30);
    CU_ASSERT_EQUAL(r->batch_calls, 16);
    CU_ASSERT_EQUAL(r->window_ms, 1000);
    CU_ASSERT_STRING_EQUAL(r->choice, "weighted");
    CU_ASSERT_STRING_EQUAL(r->proxy, "http://proxy.local:3128");
    CU_ASSERT_STRING_EQUAL(r->state_file,
                           tmp_path("full/state/gemroute.state"));

    CU_ASSERT_EQUAL_FATAL(cfg->n_models, 4);
    CU_ASSERT_STRING_EQUAL(cfg->models[0].name, "flash");
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_RPM], 1000);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_TPM], 1000000);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_RPD], 10000);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_IPM], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_TPD], 50000000);
    CU_ASSERT_EQUAL(cfg->models[1].limits[GR_CFG_TPD], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->models[0].line, 2);
    CU_ASSERT_EQUAL(cfg->models[1].limits[GR_CFG_IPM], 10);
    CU_ASSERT_STRING_EQUAL(cfg->models[2].name, "off");
    CU_ASSERT_EQUAL(cfg->models[2].limits[GR_CFG_RPM], 0);
    CU_ASSERT_EQUAL(cfg->models[2].limits[GR_CFG_TPM], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->models[3].limits[GR_CFG_TPM], INT64_C(5000000000));

    CU_ASSERT_EQUAL_FATAL(cfg->n_projects, 4);
    p = &cfg->projects[0];
    CU_ASSERT_STRING_EQUAL(p->name, "env-one");
    CU_ASSERT_EQUAL(p->n_keys, 1);
    CU_ASSERT_STRING_EQUAL(p->keys[0], "key-one-from-env");
    CU_ASSERT_EQUAL(p->weight, 1);
    CU_ASSERT_EQUAL(p->priority, 0);
    CU_ASSERT_TRUE(p->enabled);
    CU_ASSERT_EQUAL(p->n_overrides, 0);
    CU_ASSERT_EQUAL(p->line, 20);

    p = &cfg->projects[1];
    CU_ASSERT_STRING_EQUAL(p->name, "file-rel");
    CU_ASSERT_STRING_EQUAL(p->keys[0], "key-two-from-file");
    CU_ASSERT_EQUAL(p->weight, 3);
    CU_ASSERT_EQUAL(p->priority, -2);
    CU_ASSERT_EQUAL_FATAL(p->n_overrides, 2);
    CU_ASSERT_STRING_EQUAL(p->overrides[0].model, "flash");
    CU_ASSERT_EQUAL(p->overrides[0].model_index, 0);
    CU_ASSERT_TRUE(p->overrides[0].set[GR_CFG_RPM]);
    CU_ASSERT_FALSE(p->overrides[0].set[GR_CFG_TPM]);
    CU_ASSERT_TRUE(p->overrides[0].set[GR_CFG_RPD]);
    CU_ASSERT_EQUAL(p->overrides[0].limits[GR_CFG_RPM], 150);
    CU_ASSERT_EQUAL(p->overrides[0].limits[GR_CFG_RPD], 0);
    CU_ASSERT_EQUAL(p->overrides[0].line, 23);
    CU_ASSERT_STRING_EQUAL(p->overrides[1].model, "image");
    CU_ASSERT_EQUAL(p->overrides[1].model_index, 1);
    CU_ASSERT_EQUAL(p->overrides[1].limits[GR_CFG_IPM], 2);
    CU_ASSERT_TRUE(p->overrides[1].set[GR_CFG_TPD]);
    CU_ASSERT_FALSE(p->overrides[0].set[GR_CFG_TPD]);
    CU_ASSERT_EQUAL(p->overrides[1].limits[GR_CFG_TPD], 7000);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, p, 1, GR_CFG_TPD), 7000);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, p, 0, GR_CFG_TPD), 50000000);

    p = &cfg->projects[2];
    CU_ASSERT_STRING_EQUAL(p->keys[0], "literal-key_3.x");
    CU_ASSERT_FALSE(p->enabled);

    p = &cfg->projects[3];
    CU_ASSERT_EQUAL(p->n_keys, 2);
    CU_ASSERT_STRING_EQUAL(p->keys[0], "key-four-from-env");
    CU_ASSERT_STRING_EQUAL(p->keys[1], "key-five-absolute");

    CU_ASSERT_EQUAL_FATAL(gr_cfg_aliases(cfg)->n, 3);
    CU_ASSERT_STRING_EQUAL(gr_cfg_aliases(cfg)->v[0].name, "fast");
    CU_ASSERT_EQUAL(gr_cfg_aliases(cfg)->v[0].model, 0);
    CU_ASSERT_STRING_EQUAL(gr_cfg_aliases(cfg)->v[1].name,
                           "gemini-flash-latest");
    CU_ASSERT_EQUAL(gr_cfg_aliases(cfg)->v[1].model, 0);
    CU_ASSERT_EQUAL(gr_cfg_aliases(cfg)->v[2].model, 1);

    CU_ASSERT_EQUAL_FATAL(cfg->n_files, 2);
    CU_ASSERT_STRING_EQUAL(cfg->files[0], tmp_path("full/main.conf"));
    snprintf(want, sizeof(want), "%s", tmp_path("full/models.d/tiers.conf"));
    CU_ASSERT_STRING_EQUAL(cfg->files[1], want);
    gr_cfg_free(cfg);
}

static void
test_defaults(void)
{
    struct gr_cfg *cfg;
    const struct gr_cfg_router *r;

    write_file("defaults.conf",
               "models = ( { name = \"m\"; } );\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n");
    cfg = load_good(tmp_path("defaults.conf"));
    CU_ASSERT_FATAL(cfg != NULL);
    r = &cfg->router;
    CU_ASSERT_STRING_EQUAL(r->shm, "/gemroute");
    CU_ASSERT_EQUAL(r->mode, 0600);
    CU_ASSERT_STRING_EQUAL(r->group, "");
    CU_ASSERT_STRING_EQUAL(r->base_url,
                           "https://generativelanguage.googleapis.com");
    CU_ASSERT_DOUBLE_EQUAL(r->headroom, 0.95, 1e-12);
    CU_ASSERT_EQUAL(r->max_projects, 64);
    CU_ASSERT_EQUAL(r->max_models, 8);
    CU_ASSERT_EQUAL(r->max_leases, 4096);
    CU_ASSERT_EQUAL(r->max_call_s, 600);
    CU_ASSERT_EQUAL(r->batch_calls, 128);
    CU_ASSERT_EQUAL(r->window_ms, 60000);
    CU_ASSERT_STRING_EQUAL(r->choice, "p2c");
    CU_ASSERT_STRING_EQUAL(r->proxy, "");
    CU_ASSERT_STRING_EQUAL(r->state_file, "");
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_RPM], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_TPM], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_RPD], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_IPM], GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(cfg->n_files, 1);
    gr_cfg_free(cfg);

    /* An integer headroom of 1 is accepted as 1.0. */
    write_file("headroom1.conf",
               "router = { headroom = 1; };\n"
               "models = ( { name = \"m\"; } );\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n");
    cfg = load_good(tmp_path("headroom1.conf"));
    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_DOUBLE_EQUAL(cfg->router.headroom, 1.0, 0.0);
    gr_cfg_free(cfg);
}

/* Relative paths from the repository root, as gemrouted -c would get. */
static void
test_relative_include(void)
{
    struct gr_cfg *cfg = load_good("tests/config/good-include.conf");

    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_DOUBLE_EQUAL(cfg->router.headroom, 0.5, 1e-12);
    CU_ASSERT_EQUAL_FATAL(cfg->n_models, 2);
    CU_ASSERT_STRING_EQUAL(cfg->models[0].name, "small");
    CU_ASSERT_EQUAL(cfg->models[0].limits[GR_CFG_TPM], 1000);
    CU_ASSERT_EQUAL(cfg->models[1].limits[GR_CFG_RPM], 0);
    CU_ASSERT_EQUAL(cfg->models[1].limits[GR_CFG_RPD], 7);
    CU_ASSERT_EQUAL(cfg->models[1].line, 4);
    CU_ASSERT_EQUAL_FATAL(cfg->n_projects, 2);
    /* file: relative to the config file's directory, trimmed. */
    CU_ASSERT_STRING_EQUAL(cfg->projects[0].keys[0], "good-file-key-1");
    CU_ASSERT_STRING_EQUAL(cfg->projects[1].keys[1], "good-literal-3");
    CU_ASSERT_EQUAL(cfg->projects[1].weight, 4);
    CU_ASSERT_EQUAL_FATAL(cfg->n_files, 2);
    CU_ASSERT_STRING_EQUAL(cfg->files[0], "tests/config/good-include.conf");
    CU_ASSERT_STRING_EQUAL(cfg->files[1],
                           "tests/config/inc/good-models.conf");
    gr_cfg_free(cfg);
}

static void
test_limit_override_then_default(void)
{
    struct gr_cfg *cfg = load_full();
    const struct gr_cfg_project *env_one, *file_rel;
    int flash, image, off;

    CU_ASSERT_FATAL(cfg != NULL);
    flash = gr_cfg_model_index(cfg, "flash");
    image = gr_cfg_model_index(cfg, "image");
    off = gr_cfg_model_index(cfg, "off");
    CU_ASSERT_EQUAL(flash, 0);
    CU_ASSERT_EQUAL(image, 1);
    CU_ASSERT_EQUAL(off, 2);
    CU_ASSERT_EQUAL(gr_cfg_model_index(cfg, "flash2"), -1);
    env_one = gr_cfg_project_find(cfg, "env-one");
    file_rel = gr_cfg_project_find(cfg, "file-rel");
    CU_ASSERT_FATAL(env_one != NULL && file_rel != NULL);
    CU_ASSERT_PTR_EQUAL(file_rel, &cfg->projects[1]);
    CU_ASSERT_PTR_NULL(gr_cfg_project_find(cfg, "nobody"));

    /* No override: the model's defaults. */
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, env_one, (unsigned)flash, GR_CFG_RPM),
                    1000);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, env_one, (unsigned)flash, GR_CFG_IPM),
                    GR_CFG_UNLIMITED);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, env_one, (unsigned)off, GR_CFG_RPM), 0);
    /* Overridden dimensions, and only those. */
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, file_rel, (unsigned)flash, GR_CFG_RPM),
                    150);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, file_rel, (unsigned)flash, GR_CFG_RPD),
                    0);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, file_rel, (unsigned)flash, GR_CFG_TPM),
                    1000000);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, file_rel, (unsigned)image, GR_CFG_IPM),
                    2);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, file_rel, (unsigned)image, GR_CFG_RPM),
                    500);
    /* No project: defaults.  Out of range: 0, never unlimited. */
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, NULL, (unsigned)flash, GR_CFG_RPM),
                    1000);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, env_one, 4, GR_CFG_RPM), 0);
    CU_ASSERT_EQUAL(gr_cfg_limit(cfg, env_one, 0, GR_CFG_NDIMS), 0);
    CU_ASSERT_EQUAL(gr_cfg_limit(NULL, env_one, 0, GR_CFG_RPM), 0);
    gr_cfg_free(cfg);
}

static void
test_unreadable_main_file(void)
{
    struct gr_cfg_errors errs;
    struct gr_cfg *cfg = (struct gr_cfg *)&errs;   /* must be reset */
    char want[4200];

    CU_ASSERT_EQUAL(gr_cfg_load("tests/config/no-such.conf", &cfg, &errs),
                    -ENOENT);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.n, 1);
    CU_ASSERT_STRING_EQUAL(errs.lines[0], "tests/config/no-such.conf: "
                           "cannot read: No such file or directory");
    gr_cfg_errors_free(&errs);
    CU_ASSERT_EQUAL(errs.n, 0);

    CU_ASSERT_EQUAL(gr_cfg_load(tmpdir, &cfg, &errs), -EISDIR);
    CU_ASSERT_EQUAL_FATAL(errs.n, 1);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
    CU_ASSERT_STRING_EQUAL(errs.lines[0], want);
    gr_cfg_errors_free(&errs);

    /* errs may be NULL when only the verdict matters. */
    CU_ASSERT_EQUAL(gr_cfg_load("tests/config/bad-shm.conf", &cfg, NULL),
                    -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    cfg = NULL;
    CU_ASSERT_EQUAL(gr_cfg_load("tests/config/good-include.conf", &cfg, NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(cfg);
    gr_cfg_free(cfg);
}

/*
 * Issue 13, item 14: a FIFO as the config or as an @included file is
 * refused at once with "FILE: not a regular file"; before, the load
 * waited for a writer forever (here: until the watchdog).
 */
static void
test_fifo_config_refused(void)
{
    struct gr_cfg_errors errs;
    struct gr_cfg *cfg = NULL;
    char want[4200];

    CU_ASSERT_FATAL(mkfifo(tmp_path("fifo/main.conf"), 0600) == 0);
    CU_ASSERT_EQUAL(gr_cfg_load(tmp_path("fifo/main.conf"), &cfg, &errs),
                    -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.n, 1);
    snprintf(want, sizeof(want), "%s: not a regular file",
             tmp_path("fifo/main.conf"));
    CU_ASSERT_STRING_EQUAL(errs.lines[0], want);
    gr_cfg_errors_free(&errs);

    /* An @included FIFO, one level down. */
    CU_ASSERT_FATAL(mkfifo(tmp_path("fifo/d/models.fifo"), 0600) == 0);
    write_file("fifo/inc.conf", "@include \"d/models.fifo\"\n");
    write_file("fifo/top.conf",
               "router = { headroom = 0.5; };\n"
               "@include \"inc.conf\"\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n");
    CU_ASSERT_EQUAL(gr_cfg_load(tmp_path("fifo/top.conf"), &cfg, &errs),
                    -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL_FATAL(errs.n, 1);
    snprintf(want, sizeof(want), "%s: not a regular file",
             tmp_path("fifo/d/models.fifo"));
    CU_ASSERT_STRING_EQUAL(errs.lines[0], want);
    gr_cfg_errors_free(&errs);
}

/* Each line "FILE:LINE: text" or, for a whole file, "FILE: text". */
static int
line_is_well_formed(const char *line)
{
    const char *c = strstr(line, ": ");
    const char *colon;

    if (strchr(line, '\n') != NULL || c == NULL)
        return 0;
    colon = memchr(line, ':', (size_t)(c - line));
    if (colon == NULL)
        return c > line;
    if (colon == line || colon + 1 == c)
        return 0;
    for (colon++; colon < c; colon++)
        if (*colon < '0' || *colon > '9')
            return 0;
    return 1;
}

static void
golden_one(const char *conf, int update, unsigned *checked)
{
    struct gr_cfg_errors errs;
    struct gr_cfg *cfg = NULL;
    char expected[4096], *want, *line, *save = NULL;
    unsigned i = 0, bad = 0;
    int rc;

    snprintf(expected, sizeof(expected), "%.*s.expected",
             (int)(strlen(conf) - 5), conf);
    rc = gr_cfg_load(conf, &cfg, &errs);
    CU_ASSERT_EQUAL(rc, -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT(errs.n >= 1);
    if (update) {
        FILE *f = fopen(expected, "w");

        CU_ASSERT_FATAL(f != NULL);
        for (i = 0; i < errs.n; i++)
            fprintf(f, "%s\n", errs.lines[i]);
        fclose(f);
    }
    for (i = 0; i < errs.n; i++) {
        if (!line_is_well_formed(errs.lines[i])) {
            printf("\n  %s: malformed line: %s", conf, errs.lines[i]);
            bad++;
        }
        /* Every literal key in tests/config starts with SECRET. */
        if (strstr(errs.lines[i], "SECRET") != NULL) {
            printf("\n  %s: a key leaked: %s", conf, errs.lines[i]);
            bad++;
        }
    }
    want = gr_test_read(expected, NULL);
    if (want == NULL) {
        printf("\n  %s: cannot read %s", conf, expected);
        bad++;
    } else {
        i = 0;
        for (line = strtok_r(want, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save), i++) {
            if (i >= errs.n) {
                printf("\n  %s: missing error: %s", conf, line);
                bad++;
            } else if (strcmp(line, errs.lines[i]) != 0) {
                printf("\n  %s: expected: %s\n  %*s       got: %s", conf,
                       line, (int)strlen(conf), "", errs.lines[i]);
                bad++;
            }
        }
        for (; i < errs.n; i++) {
            printf("\n  %s: extra error: %s", conf, errs.lines[i]);
            bad++;
        }
        free(want);
    }
    if (bad != 0)
        printf("\n");
    CU_ASSERT_EQUAL(bad, 0);
    gr_cfg_errors_free(&errs);
    (*checked)++;
}

static void
test_golden_bad_files(void)
{
    const char *update = getenv("GR_GOLDEN_UPDATE");
    glob_t g;
    unsigned checked = 0;
    size_t i;

    CU_ASSERT_EQUAL_FATAL(glob("tests/config/bad-*.conf", 0, NULL, &g), 0);
    for (i = 0; i < g.gl_pathc; i++)
        golden_one(g.gl_pathv[i], update != NULL && *update == '1',
                   &checked);
    /* At least one file per error class (docs/CONFIG.md lists them). */
    CU_ASSERT(checked >= 30);
    globfree(&g);
}

/* No window of 10 characters of any secret appears in any error line. */
static unsigned
leaks(const struct gr_cfg_errors *errs, const char *const *secrets)
{
    unsigned i, n = 0;

    for (; *secrets != NULL; secrets++) {
        size_t len = strlen(*secrets), off;

        for (off = 0; off + 10 <= len; off++) {
            char win[11];

            memcpy(win, *secrets + off, 10);
            win[10] = '\0';
            for (i = 0; i < errs->n; i++) {
                if (strstr(errs->lines[i], win) != NULL) {
                    printf("\n  leak of \"%s\": %s", win, errs->lines[i]);
                    n++;
                }
            }
        }
    }
    return n;
}

static void
test_keys_never_in_errors(void)
{
    static const char *const secrets[] = {
        "Zq9Xk2LmWv8RtY3pNb7Hc",            /* literal, shared */
        "Jd4Fg6Hs8Kl0Qw2Er4Ty6 spaced",      /* literal with a space */
        "Vb3Nm5Qa7Ws9Ed1Rf3Tg5Yh7Uj9Ik1Ol3Pz5Xc7Vb9Nm1Qa3Ws5Ed7Rf9Tg1Yh3Uj5Ik7"
        "Ol9Pz1Xc3Vb5Nm7Qa9Ws1Ed3Rf5Tg7Yh9Uj1Ik3Ol5Pz7Xc9Vb1Nm3Qa5Ws7Ed9Rf1Tg3"
        "Yh5Uj7",                            /* too long, in a file */
        "Mn8Bv6Cx4Zl2Kj0Hg8Fd6 in-file",     /* space, in a file */
        "Pl1Ok2Ij3Uh4Yg5Tf6Rd7",             /* env, shared with literal */
        "AIzaSECRETKp7Yt5Rw3Qe1Zx9Cv",       /* pasted after env: */
        "AIza-SECRET-Hj2Gf4Ds6Ax8Sz0L",      /* pasted after file: */
        NULL,
    };
    struct gr_cfg_errors errs;
    struct gr_cfg *cfg = NULL;
    char text[4096];

    write_file("leak/long.key", secrets[2]);
    write_file("leak/space.key", secrets[3]);
    setenv("GR_TEST_LEAK_SHARED", "Zq9Xk2LmWv8RtY3pNb7Hc", 1);
    setenv("GR_TEST_LEAK_SPACE", "Pl1Ok2Ij3Uh4Yg5Tf6Rd7 x", 1);
    snprintf(text, sizeof(text),
             "models = ( { name = \"m\"; rpm = -1; } );\n"
             "projects = (\n"
             "  { name = \"a\"; key = \"%s\"; rmp = 1; },\n"
             "  { name = \"b\"; key = \"env:GR_TEST_LEAK_SHARED\"; },\n"
             "  { name = \"c\"; keys = [\"%s\", \"file:long.key\"]; },\n"
             "  { name = \"d\"; keys = [\"file:space.key\", "
             "\"env:GR_TEST_LEAK_SPACE\"]; },\n"
             "  { name = \"a\"; key = \"%s\"; weight = 0; },\n"
             "  { name = \"e\"; key = \"%s\"; kye = \"%s\"; },\n"
             "  { name = \"f\"; keys = [\"env:%s\", \"file:%s\"]; }\n"
             ");\n",
             secrets[0], secrets[1], secrets[0], secrets[4], secrets[4],
             secrets[5], secrets[6]);
    write_file("leak/main.conf", text);
    CU_ASSERT_EQUAL(gr_cfg_load(tmp_path("leak/main.conf"), &cfg, &errs),
                    -EINVAL);
    /* The errors are there, each about a key, and none shows one (nor a
     * key pasted where its source was expected: issue 13, item 3). */
    CU_ASSERT(errs.n >= 10);
    CU_ASSERT_EQUAL(leaks(&errs, secrets), 0);
    gr_cfg_errors_free(&errs);
}

/*
 * The shipped examples load (with their keys provided), and the free
 * tier table kept as a comment in tiers-2025.conf is valid once
 * uncommented.
 */
static void
test_shipped_examples(void)
{
    char *main_text = gr_test_read("examples/gemroute.conf", NULL);
    char *tiers = gr_test_read("examples/tiers-2025.conf", NULL);
    char *free_tier, *p, *q, *o;
    struct gr_cfg *cfg;
    int i;

    CU_ASSERT_FATAL(main_text != NULL && tiers != NULL);
    write_file("ex/gemroute.conf", main_text);
    write_file("ex/tiers-2025.conf", tiers);
    write_file("ex/secrets/prod-2.key", "example-key-prod-2\n");
    setenv("GEMINI_KEY_1", "example-key-prod-1", 1);
    setenv("GEMINI_KEY_3A", "example-key-3a", 1);
    setenv("GEMINI_KEY_3B", "example-key-3b", 1);
    cfg = load_good(tmp_path("ex/gemroute.conf"));
    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_EQUAL(cfg->n_files, 2);
    CU_ASSERT(cfg->n_projects >= 3);
    i = gr_cfg_model_index(cfg, "gemini-2.5-flash");
    CU_ASSERT_FATAL(i >= 0);
    /* Tier 1 figures, as the file gives them. */
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_RPM], 1000);
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_TPM], 1000000);
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_RPD], 10000);
    i = gr_cfg_model_index(cfg, "gemini-2.5-flash-lite");
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_RPD], GR_CFG_UNLIMITED);
    CU_ASSERT(gr_cfg_model_index(cfg, "gemini-2.5-pro") >= 0);
    CU_ASSERT(gr_cfg_model_index(cfg, "gemini-2.0-flash") >= 0);
    CU_ASSERT(gr_cfg_model_index(cfg, "gemini-2.5-flash-image") >= 0);
    CU_ASSERT(gr_cfg_model_index(cfg, "gemini-embedding-001") >= 0);
    CU_ASSERT_STRING_EQUAL(cfg->projects[1].keys[0], "example-key-prod-2");
    gr_cfg_free(cfg);

    /* The free tier block: "#| " lines between the two markers. */
    p = strstr(tiers, "#| BEGIN free tier");
    q = p ? strstr(p, "#| END free tier") : NULL;
    CU_ASSERT_FATAL(p != NULL && q != NULL);
    free_tier = calloc(1, (size_t)(q - p) + 256);
    CU_ASSERT_FATAL(free_tier != NULL);
    o = free_tier;
    for (p = strchr(p, '\n') + 1; p < q; p = strchr(p, '\n') + 1) {
        if (strncmp(p, "#| ", 3) == 0 || strncmp(p, "#|\n", 3) == 0) {
            const char *e = strchr(p, '\n');
            size_t n = (size_t)(e - p) - (p[2] == ' ' ? 3 : 2);

            memcpy(o, p + (p[2] == ' ' ? 3 : 2), n);
            o += n;
            *o++ = '\n';
        }
    }
    strcpy(o, "projects = ( { name = \"free-1\"; key = \"k\"; } );\n");
    write_file("ex/free.conf", free_tier);
    cfg = load_good(tmp_path("ex/free.conf"));
    CU_ASSERT_FATAL(cfg != NULL);
    i = gr_cfg_model_index(cfg, "gemini-2.5-flash");
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_RPM], 10);
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_RPD], 250);
    i = gr_cfg_model_index(cfg, "gemini-2.5-flash-image");
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_EQUAL(cfg->models[i].limits[GR_CFG_RPM], 0);
    gr_cfg_free(cfg);
    free(free_tier);
    free(main_text);
    free(tiers);
}

/*
 * The restart-only settings come from the settings table: a change of
 * the segment's name or geometry is named, one setting at a time; a
 * change a reload may make (headroom, mode, a limit) is not.
 */
static void
test_restart_changes(void)
{
    struct gr_cfg *a, *b;
    char out[160];

    write_file("restart-a.conf",
               "router = { shm = \"/gr-a\"; max_leases = 64; "
               "headroom = 0.5; };\n"
               "models = ( { name = \"m\"; rpm = 1; } );\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n");
    write_file("restart-b.conf",
               "router = { shm = \"/gr-b\"; max_leases = 64; "
               "window_ms = 1000; headroom = 0.9; mode = \"0600\"; };\n"
               "models = ( { name = \"m\"; rpm = 2; } );\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n");
    a = load_good(tmp_path("restart-a.conf"));
    b = load_good(tmp_path("restart-b.conf"));
    CU_ASSERT_FATAL(a != NULL && b != NULL);
    CU_ASSERT_EQUAL(gr_cfg_restart_changes(a, a, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(gr_cfg_restart_changes(a, b, out, sizeof(out)), 2);
    CU_ASSERT_STRING_EQUAL(out, "shm, window_ms");
    b->router.max_projects = 3;
    b->router.max_models = 2;
    CU_ASSERT_EQUAL(gr_cfg_restart_changes(a, b, out, sizeof(out)), 4);
    CU_ASSERT_STRING_EQUAL(out, "shm, max_projects, max_models, window_ms");
    /* cut short, still counted */
    CU_ASSERT_EQUAL(gr_cfg_restart_changes(a, b, out, 8), 4);
    CU_ASSERT_EQUAL(strlen(out), 7);
    CU_ASSERT_EQUAL(gr_cfg_restart_changes(NULL, b, out, sizeof(out)), 0);
    gr_cfg_free(a);
    gr_cfg_free(b);
}

/* The gateway's start-only settings, from its table likewise. */
static void
test_gateway_restart_changes(void)
{
    struct gr_cfg *a, *b;
    char out[160];

    write_file("gw-restart-a.conf",
               "models = ( { name = \"m\"; rpm = 1; } );\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n"
               "gateway = { listen = \"127.0.0.1:8000\"; workers = 8; "
               "queue_s = 1.0; };\n");
    write_file("gw-restart-b.conf",
               "models = ( { name = \"m\"; rpm = 1; } );\n"
               "projects = ( { name = \"p\"; key = \"k\"; } );\n"
               "gateway = { listen = \"127.0.0.1:8001\"; workers = 8; "
               "queue_s = 2.0; timeout_s = 5; };\n");
    a = load_good(tmp_path("gw-restart-a.conf"));
    b = load_good(tmp_path("gw-restart-b.conf"));
    CU_ASSERT_FATAL(a != NULL && b != NULL);
    CU_ASSERT_EQUAL(gr_cfg_gateway_restart_changes(gr_cfg_gateway(a),
                                                   gr_cfg_gateway(a), out,
                                                   sizeof(out)), 0);
    CU_ASSERT_EQUAL(gr_cfg_gateway_restart_changes(gr_cfg_gateway(a),
                                                   gr_cfg_gateway(b), out,
                                                   sizeof(out)), 2);
    CU_ASSERT_STRING_EQUAL(out, "listen, timeout_s");
    gr_cfg_free(a);
    gr_cfg_free(b);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"full config, value by value", test_full_config_values},
        {"defaults", test_defaults},
        {"relative @include and file: keys", test_relative_include},
        {"gr_cfg_limit: override, then default",
         test_limit_override_then_default},
        {"unreadable main file", test_unreadable_main_file},
        {"item 14: a FIFO as config or @include is refused",
         test_fifo_config_refused},
        {"golden bad files", test_golden_bad_files},
        {"restart-only settings named from the table",
         test_restart_changes},
        {"the gateway's start-only settings named from its table",
         test_gateway_restart_changes},
        {"keys never in errors", test_keys_never_in_errors},
        {"shipped examples", test_shipped_examples},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"config", suite_init, suite_clean, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_config", suites, 30);
}
