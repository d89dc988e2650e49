/*
 * gw.h - what the files of gateway/ share: the running state of
 * gemroute-gateway and its metrics.  No third-party type appears here.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include "gateway.h"        /* config/gateway.h: struct gr_cfg_gateway */
#include "gemroute.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw {
    struct gr *g;                   /* the table, attached like a client */
    pthread_rwlock_t lock;          /* guards conf (a reload swaps it) */
    struct gr_cfg_gateway conf;     /* secret: holds the tokens */
    _Atomic int active;             /* calls being served */
    _Atomic int streams;            /* stream threads alive */
    _Atomic int stopping;           /* 1: calls in progress stop */
    _Atomic int parked;             /* calls on a loop, submitted and
                                       not yet done (their connection
                                       may be suspended) */
    void *daemon;                   /* struct MHD_Daemon */
    unsigned port;                  /* the port bound */
    char shm[GR_NAME_MAX];          /* the table's name (router.shm) */
};

/* Start serving conf on its address; 0 or -errno (a sentence on stderr). */
/*
 * The routes of things that live in one project (files.c): the Files
 * API with its resumable upload, cachedContents, batches.  _match() says
 * whether method url is one; _serve() answers it (conn: the
 * MHD_Connection) and returns an enum MHD_Result.
 */
bool gw_files_match(const char *url, const char *method);
int gw_files_serve(struct gw *gw, void *conn, const char *url,
                   const char *method, const char *body, size_t len,
                   double budget_s);

/* The batch submission route (batches.c):
 * POST /{v}/models/{m}:batchGenerateContent through gr_batch_submit(). */
bool gw_batches_match(const char *url, const char *method);
int gw_batches_serve(struct gw *gw, void *conn, const char *url,
                     const char *method, const char *body, size_t len,
                     double budget_s);

int gw_server_start(struct gw *gw);
/* Stop serving; 0, or -EBUSY when a call is still inside the library
 * (then the table must not be closed). */
int gw_server_stop(struct gw *gw);

/* Metrics (metrics.c); every function is thread-safe. */
void gw_metrics_request(const char *route, const char *model,
                        const char *project, int status, int64_t latency_ns,
                        int64_t queued_ns, int n_429);
void gw_metrics_streams(int delta);
/* The Prometheus text exposition, malloc'd; NULL when out of memory. */
char *gw_metrics_text(size_t *len);

/*
 * Answers (server.c), for every route: gw_add_headers() puts the
 * Content-Type, x-gemroute-project (unless turned off) and, when
 * queued_ns >= 0, x-gemroute-queued-ms on response (a struct
 * MHD_Response); gw_send() queues body (copied) with them on conn (a
 * struct MHD_Connection) and returns an enum MHD_Result.
 */
void gw_add_headers(struct gw *gw, void *response, const char *project,
                    int64_t queued_ns, const char *ctype);
int gw_send(struct gw *gw, void *conn, int status, const char *body,
            size_t len, const char *ctype, const char *project,
            int64_t queued_ns);
/*
 * Queue response (a struct MHD_Response, which this takes: the caller
 * does not destroy it) with status on conn; an enum MHD_Result.  Every
 * answer is queued through here: a route that blocks runs on a kept
 * thread while its connection is suspended, and there the answer is
 * held until the connection is resumed (server.c, "Routes that block").
 */
int gw_queue(void *conn, unsigned status, void *response);

/* Log one line to stderr, with the time. */
void gw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * libmicrohttpd 0.9.75 takes a response buffer as void * even when it
 * only copies it (MHD_RESPMEM_MUST_COPY) or only reads it
 * (MHD_RESPMEM_PERSISTENT); later versions add _copy and _static
 * variants with const.  The one place a const buffer is handed to it.
 */
static inline void *
gw_mhd_buffer(const void *p)
{
    union { const void *c; void *v; } u = {.c = p};

    return u.v;
}

#endif
