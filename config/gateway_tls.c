/*
 * gateway_tls.c - gateway.tls_cert and gateway.tls_key: the certificate
 * chain and private key gemroute-gateway serves HTTPS with, read when the
 * file is loaded (so that `gemrouted --check` reports a missing or
 * unreadable one as FILE:LINE), each from "file:PATH" (relative to the
 * config's directory) or "env:NAME" holding the PEM text.
 *
 * Only the form is checked here (config/ links no TLS library): a PEM
 * block of the right kind.  The gateway hands both to libmicrohttpd,
 * which parses them with GnuTLS at start and refuses a bad pair there.
 *
 * Invariant protected: the key is a secret like an API key.  No message
 * holds it, nor anything of its spec (a path or a variable's name might
 * be the key pasted there by mistake), and every buffer that held it on
 * the way is wiped.
 */
#include "gateway_priv.h"
#include "settings_priv.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 256

/*
 * Read one spec into out (GR_CFG_GW_PEM_MAX bytes).  0, or -errno with a
 * sentence in why that names neither the content nor the spec.
 */
static int
read_pem(const char *spec, const char *dir, bool key, char *out,
         char *why, size_t whylen)
{
    char p[PATH_MAX];
    const char *v;
    size_t len = 0;
    int rc;

    if (strncmp(spec, "env:", 4) == 0) {
        if ((v = getenv(spec + 4)) == NULL || v[0] == '\0') {
            snprintf(why, whylen, "the environment variable is not set "
                     "or empty");
            return -ENOENT;
        }
        len = strlen(v);
        if (len >= GR_CFG_GW_PEM_MAX) {
            snprintf(why, whylen, "the environment variable holds more "
                     "than %d bytes", GR_CFG_GW_PEM_MAX - 1);
            return -EFBIG;
        }
        memcpy(out, v, len + 1);
    } else if (strncmp(spec, "file:", 5) == 0 && spec[5] != '\0') {
        if ((rc = gr_cfg_path_join(dir, spec + 5, p, sizeof(p))) < 0 ||
            (rc = gr_cfg_read_small_file(p, out, GR_CFG_GW_PEM_MAX - 1,
                                         &len)) < 0) {
            snprintf(why, whylen, "cannot read the file: %s",
                     rc == -EFBIG ? "larger than 16 KiB"
                     : rc == -EINVAL ? "not a regular file"
                                     : strerror(-rc));
            explicit_bzero(out, GR_CFG_GW_PEM_MAX);
            return rc;
        }
        out[len] = '\0';
    } else {
        snprintf(why, whylen, "must be \"file:PATH\" or \"env:NAME\" "
                 "(a PEM is not written in the config itself)");
        return -EINVAL;
    }
    if (strlen(out) != len ||
        strstr(out, key ? "PRIVATE KEY-----" : "-----BEGIN CERTIFICATE-----")
            == NULL) {
        snprintf(why, whylen, "not a PEM %s (no \"-----BEGIN %s-----\" "
                 "line)", key ? "private key" : "certificate",
                 key ? "... PRIVATE KEY" : "CERTIFICATE");
        explicit_bzero(out, GR_CFG_GW_PEM_MAX);
        return -EINVAL;
    }
    return 0;
}

void
gr_cfg_gateway_tls_load(const void *gp, struct gr_cfg_rd *rd,
                        struct gr_cfg_gateway *gw)
{
    const config_setting_t *g = gp;
    const config_setting_t *cert = config_setting_get_member(g, "tls_cert");
    const config_setting_t *key = config_setting_get_member(g, "tls_key");
    const config_setting_t *s;
    const char *spec;
    char why[MSG_MAX];
    bool ok = true;
    int i;

    if (cert == NULL && key == NULL)
        return;
    if (cert == NULL || key == NULL) {
        gr_cfg_err_at(rd, cert != NULL ? cert : key, "gateway.%s: %s",
                      cert != NULL ? "tls_cert" : "tls_key",
                      cert != NULL ? "set without tls_key: HTTPS needs both"
                                   : "set without tls_cert: HTTPS needs both");
        return;
    }
    for (i = 0; i < 2; i++) {
        s = i == 0 ? cert : key;
        spec = config_setting_get_string(s);
        if (spec == NULL) {
            gr_cfg_err_at(rd, s, "gateway.%s: wrong type: expected a "
                          "string", i == 0 ? "tls_cert" : "tls_key");
            ok = false;
            continue;
        }
        if (read_pem(spec, rd->dir, i == 1, i == 0 ? gw->tls_cert : gw->tls_key,
                     why, sizeof(why)) != 0) {
            gr_cfg_err_at(rd, s, "gateway.%s: %s",
                          i == 0 ? "tls_cert" : "tls_key", why);
            ok = false;
        }
    }
    if (!ok) {
        explicit_bzero(gw->tls_cert, sizeof(gw->tls_cert));
        explicit_bzero(gw->tls_key, sizeof(gw->tls_key));
        return;
    }
    gw->tls = true;
}
