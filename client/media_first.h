/*
 * media_first.h - countTokens before a call whose media the estimate
 * cannot read, and the per-resource token counts it leaves in the record
 * (media_first.c; docs/CLIENT.md, "Media tokens").  Private to client/.
 */
#ifndef GR_MEDIA_FIRST_H
#define GR_MEDIA_FIRST_H

#include "estimate_priv.h"
#include "resource.h"

#include <stdbool.h>
#include <stdint.h>

struct gr;
struct gr_pin;

/* What a request names that the estimate cannot measure. */
struct gr_media_need {
    int64_t known;          /* tokens recorded for the files and caches
                               it names */
    unsigned unknown;       /* recorded ones with no count yet */
    unsigned unrecorded;    /* named, not in the record at all */
    char name[GR_RES_NAME_MAX]; /* the first unknown one */
    bool cache;             /* that one is a cachedContents/ */
    bool ask;               /* countTokens first */
    bool part_alone;        /* that one file is all that is unknown, in
                               one part: count its part alone */
};

/* Fill nd from the estimate e and the resources pin names. */
void gr_media_need(struct gr *g, const struct gr_est *e,
                   const struct gr_pin *pin, struct gr_media_need *nd);

/*
 * A countTokens body for the fileData part of body that names file
 * ("files/ID"), alone: {"generateContentRequest": {"model": "models/M",
 * "contents": [{"parts": [that part]}]}}; malloc'd, or NULL.
 */
char *gr_media_part_body(const char *body, size_t len, const char *model,
                         const char *file);

/*
 * countTokens answered total (cached: its cachedContentTokenCount, -1
 * when absent) for a request whose local estimate was local: record the
 * one unknown resource's count when it can be told apart.
 */
void gr_media_learn(struct gr *g, const struct gr_media_need *nd,
                    const struct gr_est *e, int64_t local, int64_t total,
                    int64_t cached);

#endif
