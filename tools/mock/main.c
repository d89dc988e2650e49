/*
 * main.c - gemroute-mock: a local stand-in for
 * generativelanguage.googleapis.com that enforces per-project, per-model
 * quotas the way Google does.
 *
 *   gemroute-mock -c MOCK.conf [--listen HOST:PORT] [--window-ms N]
 *                 [--clock-offset-s N] [--threads N] [--verbose]
 *                 [--tls-cert FILE --tls-key FILE]
 *
 * Invariants protected: the mock listens on loopback unless told
 * otherwise; the one line "listening on HOST:PORT" reaches stdout only
 * once the socket is bound and serving, so a script can read the port and
 * connect at once; SIGTERM and SIGINT stop it cleanly (exit 0); a bad
 * config or command line exits 2 with a message naming what is wrong,
 * and so does a TLS certificate or key that cannot be served (checked
 * before "listening on"); no message holds anything of the key file, nor
 * its path (a key pasted there by mistake would show), and the key's
 * text is wiped once the server has parsed it.
 */
#include "mock_config.h"
#include "server.h"
#include "state.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:8080"

static void
usage(FILE *f)
{
    fputs(
        "usage: gemroute-mock -c MOCK.conf [--listen HOST:PORT] "
        "[--window-ms N]\n"
        "                     [--clock-offset-s N] [--threads N] "
        "[--verbose]\n"
        "                     [--tls-cert FILE --tls-key FILE]\n"
        "  -c, --config FILE     the mock's projects, keys, limits and faults\n"
        "  -l, --listen H:P      address to serve (default " DEFAULT_LISTEN
        "; port 0 = any free)\n"
        "  -w, --window-ms N     length of the \"60 s\" windows, for tests\n"
        "  -o, --clock-offset-s N  seconds added to the wall clock (RPD day)\n"
        "  -t, --threads N       server threads (default: one per CPU)\n"
        "  -v, --verbose         one log line per request (never the key)\n"
        "      --tls-cert FILE   serve HTTPS with this PEM certificate\n"
        "      --tls-key FILE    and this PEM private key\n",
        f);
}

/* The server takes up to 4000 connections; let it open that many files. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= 8192)
        return;
    rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static int
parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* A certificate chain or key file is read up to this size. */
#define PEM_MAX 16384

/*
 * Read the PEM file path into a new buffer *out (NUL-terminated): 0, or
 * -errno with a sentence in why that names neither the path nor anything
 * read.  A key is checked for "PRIVATE KEY-----", a certificate for
 * "-----BEGIN CERTIFICATE-----"; GnuTLS judges the rest at start.
 */
static int
read_pem(const char *path, int key, char **out, char *why, size_t whylen)
{
    char *buf;
    size_t len = 0;
    FILE *f;
    int rc = 0;

    *out = NULL;
    buf = calloc(1, PEM_MAX + 1);
    if (buf == NULL) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        rc = -errno;
        snprintf(why, whylen, "cannot read the file: %s", strerror(errno));
        goto fail;
    }
    len = fread(buf, 1, PEM_MAX + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        snprintf(why, whylen, "cannot read the file");
    } else if (len > PEM_MAX) {
        rc = -EFBIG;
        snprintf(why, whylen, "larger than %d bytes: not one PEM", PEM_MAX);
    }
    fclose(f);
    if (rc < 0)
        goto fail;
    buf[len] = '\0';
    if (strlen(buf) != len ||
        strstr(buf, key ? "PRIVATE KEY-----" : "-----BEGIN CERTIFICATE-----")
            == NULL) {
        rc = -EINVAL;
        snprintf(why, whylen, "not a PEM %s (no \"-----BEGIN %s-----\" "
                 "line)", key ? "private key" : "certificate",
                 key ? "... PRIVATE KEY" : "CERTIFICATE");
        goto fail;
    }
    *out = buf;
    return 0;

fail:
    explicit_bzero(buf, PEM_MAX + 1);
    free(buf);
    return rc;
}

/* Wipe and free what read_pem() gave. */
static void
pem_free(char *pem)
{
    if (pem == NULL)
        return;
    explicit_bzero(pem, PEM_MAX + 1);
    free(pem);
}

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"window-ms", required_argument, NULL, 'w'},
        {"clock-offset-s", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *path = NULL, *listen_spec = NULL;
    const char *cert_path = NULL, *key_path = NULL;
    char *cert = NULL, *key = NULL;
    long long window_ms = -1, offset_s = LLONG_MIN, threads = -1;
    struct gr_mock_config *cfg = NULL;
    struct gr_mock_state *st = NULL;
    struct gr_mock_server *srv = NULL;
    char err[1024], bound[128];
    sigset_t stop;
    int c, rc, fd, loopback = 0, verbose = 0, sig = 0;
    long ncpu;

    while ((c = getopt_long(argc, argv, "c:l:w:o:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'l':
            listen_spec = optarg;
            break;
        case 'w':
            if (parse_ll(optarg, 1, 86400000, &window_ms) < 0) {
                fprintf(stderr,
                        "gemroute-mock: --window-ms %s: want 1 to "
                        "86400000\n",
                        optarg);
                return 2;
            }
            break;
        case 'o':
            if (parse_ll(optarg, -(1LL << 40), 1LL << 40, &offset_s) < 0) {
                fprintf(stderr,
                        "gemroute-mock: --clock-offset-s %s: want an "
                        "integer number of seconds\n",
                        optarg);
                return 2;
            }
            break;
        case 't':
            if (parse_ll(optarg, 1, 256, &threads) < 0) {
                fprintf(stderr, "gemroute-mock: --threads %s: want 1 to 256\n",
                        optarg);
                return 2;
            }
            break;
        case 'v':
            verbose = 1;
            break;
        case 'C':
            cert_path = optarg;
            break;
        case 'K':
            key_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if ((cert_path == NULL) != (key_path == NULL)) {
        fprintf(stderr, "gemroute-mock: --%s without --%s: HTTPS needs "
                "both\n", cert_path != NULL ? "tls-cert" : "tls-key",
                cert_path != NULL ? "tls-key" : "tls-cert");
        return 2;
    }
    if (cert_path != NULL) {
        if (read_pem(cert_path, 0, &cert, err, sizeof err) < 0) {
            fprintf(stderr, "gemroute-mock: --tls-cert: %s\n", err);
            return 2;
        }
        if (read_pem(key_path, 1, &key, err, sizeof err) < 0) {
            fprintf(stderr, "gemroute-mock: --tls-key: %s\n", err);
            pem_free(cert);
            return 2;
        }
    }

    rc = gr_mock_config_load(path, &cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        pem_free(cert);
        pem_free(key);
        return 2;
    }
    if (window_ms < 0)
        window_ms = cfg->window_ms;
    if (offset_s == LLONG_MIN)
        offset_s = cfg->clock_offset_s;
    if (threads < 0)
        threads = cfg->threads;
    if (threads <= 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? ncpu : 2;
    }
    if (listen_spec == NULL)
        listen_spec = cfg->listen[0] != '\0' ? cfg->listen : DEFAULT_LISTEN;

    /* Block the stop signals in every thread; main waits for them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    fd = gr_mock_server_listen(listen_spec, bound, sizeof bound, &loopback, err,
                               sizeof err);
    if (fd < 0) {
        fprintf(stderr, "gemroute-mock: %s\n", err);
        gr_mock_config_free(cfg);
        pem_free(cert);
        pem_free(key);
        return fd == -EINVAL ? 2 : 1;
    }
    rc = gr_mock_state_new(cfg, window_ms, offset_s, &st);
    if (rc < 0) {
        fprintf(stderr, "gemroute-mock: building state: %s\n", strerror(-rc));
        close(fd);
        pem_free(cert);
        pem_free(key);
        return 1;
    }
    rc = gr_mock_server_start_tls(st, fd, (unsigned)threads, verbose, cert,
                                  key, &srv);
    pem_free(cert);
    pem_free(key);
    if (rc < 0) {
        if (rc == -ENOTSUP)
            fprintf(stderr, "gemroute-mock: --tls-cert is set but this "
                    "libmicrohttpd was built without TLS\n");
        else if (rc == -EINVAL)
            /* What libmicrohttpd said is on stderr above (never the
             * key). */
            fprintf(stderr, "gemroute-mock: cannot serve HTTPS on %s: "
                    "--tls-cert and --tls-key were refused (not a "
                    "certificate and its private key in PEM?)\n", bound);
        else
            fprintf(stderr,
                    "gemroute-mock: starting the HTTP server on %s "
                    "failed\n",
                    bound);
        close(fd);
        gr_mock_state_free(st);
        return rc == -EINVAL ? 2 : 1;
    }
    if (!loopback)
        fprintf(stderr,
                "gemroute-mock: warning: %s is reachable from other "
                "hosts, and so are the /mock/ control endpoints\n",
                bound);
    printf("listening on %s\n", bound);
    fflush(stdout);

    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "gemroute-mock: %s, stopping\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    gr_mock_server_stop(srv);
    gr_mock_state_free(st);
    return 0;
}
