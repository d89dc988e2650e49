/*
 * json_priv.h - the one json-c wrapper of client/ (client/json.c).  Its
 * declarations are in include/gemroute_json.h, shared with the
 * gateway, which parses what it relays with the same depth limit.
 * Private to client/.
 */
#ifndef GR_JSON_PRIV_H
#define GR_JSON_PRIV_H

#include "gemroute_json.h"

#endif
