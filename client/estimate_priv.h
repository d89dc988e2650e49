/*
 * estimate_priv.h - what a request body says about its own cost: the
 * bytes of its text parts, its inline images, and the entries of a
 * batch.  Private to client/ (generate.c turns it into a gr_cost; the
 * rule is in docs/CLIENT.md, "The cost estimate").
 */
#ifndef GR_ESTIMATE_PRIV_H
#define GR_ESTIMATE_PRIV_H

#include "media_priv.h"

#include <stddef.h>
#include <stdint.h>

struct gr_est {
    int64_t text_bytes;     /* decoded bytes of the "text" string of every
                               object inside a "parts" array, anywhere */
    int64_t images;         /* such objects whose inlineData (or
                               inline_data) mimeType starts with image/ */
    int64_t requests;       /* entries of a top-level "requests" array;
                               0 = none */
    /* Media (docs/CLIENT.md, "Media tokens"), by kind and by the
     * part's own media_resolution: images (count), PDF pages, audio
     * and video (ms), of the inline parts whose header was read. */
    int64_t qty[GR_MEDIA_NKINDS][GR_NLEVELS];
    int64_t tiles;          /* 258-token tiles of the images counted in
                               qty[IMAGE][UNSET] */
    int64_t unread;         /* inline media parts not read (a format or
                               a header this reader does not know) */
    int64_t files;          /* fileData (file_data) parts */
    int level;              /* generationConfig.mediaResolution of the
                               top object; GR_LEVEL_UNSET when none */
};

/*
 * Read body[0..len).  A body that is not JSON gives zeros.  Uses the
 * scanner, and json-c when the scanner is in doubt; the answer is the
 * same either way.
 */
void gr_est_read(const char *body, size_t len, struct gr_est *e);

/*
 * The input tokens e stands for, for model: ceil(text bytes / 4), plus
 * each media part by gr_media_tokens() at its own level (else the
 * request's, else the model's default), plus 258 per part not read.
 */
int64_t gr_est_tokens(const struct gr_est *e, const char *model);

/* Does e hold anything readable (a text, a media or a file part)? */
int gr_est_any(const struct gr_est *e);

/*
 * The images a generateContent request asks for (IPM: Google counts
 * images generated, only for models that generate images):
 * generationConfig.responseModalities holding "IMAGE" -> candidateCount
 * (1 when absent); parameters.sampleCount of an Imagen :predict body ->
 * that many (4, Imagen's default, when the parameters give none).  0 for
 * any other body.  Parses only a body that names one of those fields.
 */
int64_t gr_est_images_out(const char *body, size_t len);

/* The two ways, for the tests and the fuzzer: json-c's tree (the
 * reference), and the scanner (-1 in doubt, e then meaningless). */
void gr_est_tree(const char *body, size_t len, struct gr_est *e);
int gr_est_scan(const char *body, size_t len, struct gr_est *e);

#endif
