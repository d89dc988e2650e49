/*
 * cluster_view.h - the wire format of a clustered router's companion
 * segment, "<shm>.cluster": every node's share and use of every cell,
 * as the router last heard them from Redis (router/cluster.c writes it,
 * alone; the snapshot API reads it, read-only: gr_stat_cluster()).
 *
 * This is a wire format, not a public API.  It lives apart from the
 * table so that the table's layout (and ABI) stays the same with or
 * without a cluster.  Each cell's record is under its own seqlock
 * (shm/seqlock.h); a reader treats every value as untrusted.
 */
#ifndef GR_SHM_CLUSTER_VIEW_H
#define GR_SHM_CLUSTER_VIEW_H

#include "layout.h"

#define GR_CV_MAGIC UINT64_C(0x3156434f52474d47)   /* "GMGROCV1" */
#define GR_CV_VERSION 2u        /* 2: five dimensions (TPD) */
#define GR_CV_NODES 8           /* nodes shown per cell (more are cut) */
#define GR_CV_SUFFIX ".cluster"

struct gr_cv_node {
    char name[GR_SHM_NAME_MAX];
    int64_t share[GR_NDIM];     /* units held, per dimension; -1 = not
                                   shared (unlimited) */
    int64_t used[GR_NDIM];      /* what its table counted (its keep) */
    uint8_t pad[3 * GR_SHM_LINE - GR_SHM_NAME_MAX - 2 * 8 * GR_NDIM];
};

struct gr_cv_cell {
    _Atomic uint32_t seq;       /* odd while the router writes */
    uint32_t n;                 /* nodes below, <= GR_CV_NODES */
    int64_t limit[GR_NDIM];     /* the global limit stated; -1 none */
    uint8_t pad[GR_SHM_LINE - 8 - 8 * GR_NDIM];
    struct gr_cv_node node[GR_CV_NODES];
};

struct gr_cv_header {
    uint64_t magic;
    uint32_t version;
    uint32_t ncells;            /* max_projects x max_models of the table */
    uint32_t max_models;
    uint32_t pad0;
    _Atomic int64_t last_ok_wall_ns;    /* last answer from Redis */
    char node[GR_SHM_NAME_MAX];         /* this router's node name */
    uint64_t instance;                  /* random, kept by a router that
                                           adopts the table: tells Redis
                                           two routers under one name */
    uint8_t pad1[GR_SHM_LINE * 2 - 40 - GR_SHM_NAME_MAX];
};

_Static_assert(sizeof(struct gr_cv_node) == 3 * GR_SHM_LINE,
               "node: three lines");
_Static_assert(sizeof(struct gr_cv_cell) == GR_SHM_LINE +
               GR_CV_NODES * 3 * GR_SHM_LINE, "cell: a line, then its nodes");
_Static_assert(sizeof(struct gr_cv_header) == 2 * GR_SHM_LINE,
               "header: two lines");

#endif
