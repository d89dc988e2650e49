/*
 * media.h - the tokens of a generate or countTokens body's media, as the
 * mock counts them (media.c; docs/MOCK.md, "Media tokens").
 */
#ifndef GR_MOCK_MEDIA_H
#define GR_MOCK_MEDIA_H

#include <stddef.h>
#include <stdint.h>

/* An inline media part the mock cannot read (an unknown format, a cut
 * header): one small image's worth. */
#define GR_MOCK_MEDIA_UNKNOWN 258

/* A fileData part: the mock keeps no file bytes (files.c keeps a
 * digest), so every file part costs one small image's worth. */
#define GR_MOCK_MEDIA_FILE 258

/*
 * The media tokens of body (a generateContent body, or a countTokens
 * body with contents or generateContentRequest) for model ("gemini-3..."
 * follows Gemini 3's media_resolution table): every part of contents
 * with inlineData or fileData.  0 for a body that is not JSON.
 */
int64_t gr_mock_media_tokens(const char *body, size_t len,
                             const char *model);

#endif
