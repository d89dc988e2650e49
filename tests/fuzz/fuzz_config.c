/*
 * fuzz_config.c - libFuzzer harness for the config loader: any bytes as a
 * config file are either a config or a list of FILE:LINE errors, never a
 * crash, a leak or a hang.  The input is written to a file in a private
 * directory (the loader reads files, and resolves @include and file:
 * keys relative to it).  Built and run by tools/fuzz.sh.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gr_cfg_errors errs = {0};
    struct gr_cfg *cfg = NULL;
    FILE *f;

    if (path[0] == '\0') {
        char dir[] = "/tmp/grfuzzcfg.XXXXXX";

        if (mkdtemp(dir) == NULL)
            abort();
        snprintf(path, sizeof(path), "%s/fuzz.conf", dir);
        setenv("GR_FUZZ_KEY", "fuzz-key-value-0001", 1);
    }
    f = fopen(path, "w");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    if (gr_cfg_load(path, &cfg, &errs) == 0) {
        if (cfg == NULL || cfg->n_projects == 0 || cfg->n_models == 0)
            abort();    /* a config without its essentials was accepted */
        gr_cfg_free(cfg);
    } else if (errs.n == 0) {
        abort();        /* refused without saying why */
    }
    /* The key's value in an error message is a leak, unless the input
     * itself spells it (then it is the input being echoed). */
    if (memmem(data, size, "fuzz-key-value", 14) == NULL)
        for (unsigned i = 0; i < errs.n; i++)
            if (strstr(errs.lines[i], "fuzz-key-value") != NULL)
                abort();
    gr_cfg_errors_free(&errs);
    return 0;
}
