/*
 * layout.h - the shared table's wire format.
 *
 * This is a wire format, not a public API: every process that maps the
 * segment compiles against this one header.  Changing an asserted size or
 * offset bumps GR_SHM_ABI_MAJOR.
 *
 * The segment, in order (every part starts on a 64-byte line; the keys
 * start on a page so they can be kept out of core dumps):
 *
 *   header     struct gr_shm_header
 *   models     max_models   x struct gr_shm_model
 *   projects   max_projects x struct gr_shm_project
 *   choice     GR_CHOICE_PER_PROJECT * max_projects x uint32 (slot indices)
 *   leases     max_leases   x struct gr_shm_lease
 *   cells      max_projects x max_models x struct gr_shm_cell
 *   rings      max_projects x max_models x GR_RING release rows
 *   keys       GR_SHM_MAX_KEYS x max_projects x GR_SHM_KEY_MAX bytes
 *   extras     (ABI 5, below)
 *   spend      (ABI 6, below): prices per model, spend per project
 *
 * The cells are kept small and dense and the rings apart (a reservation
 * reads two cells and settles into one ring row), and the keys are stored
 * key index first (most projects have one key: the first keys of all
 * projects are side by side), so that a table of 10,000 projects touches
 * few pages per call.
 *
 * Who writes what:
 *   - the router alone writes the header's config part, models, projects,
 *     the choice array, cell limits and keys: the strings (header text,
 *     model names, a project's name and keys) under a seqlock, the
 *     choice array and the limits as single atomic words, published by
 *     a release store of the count or state that exposes them;
 *   - clients and the router write the windows, leases, health and
 *     counters, only with atomic read-modify-write operations.
 * Every reader treats every value as untrusted (range-checks indices).
 */
#ifndef GR_SHM_LAYOUT_H
#define GR_SHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GR_SHM_MAGIC UINT64_C(0x31544f5245474d47) /* "GMGEROT1" */
#define GR_SHM_ABI_MAJOR 6u  /* 6: tokens per day, a fifth dimension: the
                               cell grows to seven lines; the extras end
                               with the model aliases; the spend section
                               (prices, spend caps and counters) follows
                               the extras */
#define GR_SHM_ABI_MINOR 0u  /* (4.0: control_path; 4.1: router_pidns;
                               4.2: key_bad, probe_at_s, tpm_flags;
                               5.0: the extras section (fallback chains,
                               the response cache); 5.1: the Pacific day
                               table, day_seq) */

#define GR_SHM_LINE 64
#define GR_SHM_PAGE 4096
#define GR_SHM_NAME_MAX 64
#define GR_SHM_KEY_MAX 128
#define GR_SHM_MAX_KEYS 8
#define GR_SHM_URL_MAX 256
#define GR_SHM_ERR_MAX 256
#define GR_SHM_QID_MAX 96
#define GR_SHM_SOCK_MAX 128      /* a unix socket path (sun_path is 108) */
#define GR_CHOICE_PER_PROJECT 4     /* weight resolution of the choice array */
#define GR_SHM_DAY_STARTS 6         /* Pacific midnights in the header */

/*
 * Minute windows are cut into GR_TICKS_PER_WINDOW ticks; a settled cost is
 * released at the first tick boundary at least one window after the
 * answer's first byte.  The ring must hold every tick from the oldest one
 * not yet drained to the newest one a release can name: 64 + 1 (rounding
 * up) + 1 (the tick being drained) + slack.
 */
#define GR_TICKS_PER_WINDOW 64
#define GR_RING 72

/* The minute dimensions have windows; the day dimensions have day words. */
enum {
    GR_W_RPM = 0,
    GR_W_TPM = 1,
    GR_W_IPM = 2,
    GR_NWINDOWS = 3,
};

/* Dimension indices, as enum gr_dim in include/gemroute.h. */
enum {
    GR_D_RPM = 0,
    GR_D_TPM = 1,
    GR_D_RPD = 2,
    GR_D_IPM = 3,
    GR_D_TPD = 4,       /* input tokens per Pacific day (ABI 6) */
    GR_NDIM = 5,
};

/*
 * A window word packs what one CAS must change together:
 *   bits  0..31  used: cost admitted and not yet released
 *   bits 32..51  epoch: every tick up to this one has been drained
 *   bits 52..63  version: bumped by every change (ABA guard for audits)
 */
#define GR_WORD_USED_BITS 32
#define GR_WORD_EPOCH_BITS 20
#define GR_EPOCH_MASK ((UINT64_C(1) << GR_WORD_EPOCH_BITS) - 1)

/*
 * A ring slot: cost to release at tick `tag`.
 *   bits  0..39  amount
 *   bits 40..59  tag (tick number, mod 2^20)
 *   bit  60      closed: a drainer has counted it; no more adds
 */
#define GR_SLOT_AMOUNT_BITS 40
#define GR_SLOT_CLOSED (UINT64_C(1) << 60)

/*
 * A day word (RPD: requests; TPD: input tokens):
 *   bits  0..31  requests (tokens) counted on that Pacific day
 *   bits 32..51  day (days since 1970-01-01, mod 2^20)
 *   bits 52..63  version
 */

/* A limit as a cell holds it: a count up to GR_LIMIT_NONE - 1, or
 * GR_LIMIT_NONE for unlimited.  Every value is valid, so a reader of a
 * damaged segment needs no range check. */
#define GR_LIMIT_NONE UINT32_MAX

/* Cell health flags (cell.health). */
#define GR_CELL_DISABLED_MODEL  (1u << 0)   /* 404, or a learned limit of 0 */
#define GR_CELL_OP_DISABLED     (1u << 1)   /* operator: disabled */
#define GR_CELL_OP_DRAINING     (1u << 2)   /* operator: no new leases */
#define GR_CELL_PROBE_TAKEN     (1u << 3)   /* half-open probe under way */
#define GR_CELL_SUSPECT         (1u << 4)   /* a killed client may leak */

/* header.tpm_flags, from router.tpm_counts_cached. */
#define GR_TPM_NO_CACHED (1u << 0)  /* cachedContentTokenCount not charged */

/* Lease bits for what a lease holds (lease.held): one per window, the day
 * counters (requests, tokens), and the in-flight count. */
#define GR_HELD_WINDOW(w) (1u << (w))
#define GR_HELD_DAY (1u << 3)
#define GR_HELD_INFLIGHT (1u << 4)
#define GR_HELD_SPEND (1u << 5)         /* the project's spend counters */
#define GR_HELD_SPEND_POOL (1u << 6)    /* the pool's spend counters */
#define GR_HELD_TDAY (1u << 7)          /* the tokens-per-day counter */

/*
 * One (project, model): limits, health, counters and windows.
 *
 * ABI 6 adds tokens per day (TPD), and five dimensions' limits, the
 * three window words, two day words, five cooldowns, the cell's own
 * cooldown, the circuit, health and the admission count (152 bytes)
 * no longer fit the two lines a reservation touched.  So the lines are
 * cut by who writes them, not by dimension:
 *   line 0  limits and caps of all five dimensions and the window words:
 *           what the comparison of two candidates reads, and what every
 *           admission of a minute cost writes (as before);
 *   line 1  cooldowns, circuit and health: read by every admission on
 *           the cell it chose, written only by reports and operators, so
 *           it stays shared in every core's cache (before ABI 6 the
 *           admission count was here, and made it a written line);
 *   line 2  the two day words, the counters of admissions and
 *           outcomes and the failure state: written by an admission on
 *           the chosen cell (day counts, `admitted`) and by its report.
 * A reservation still writes two lines of the chosen cell (0 and 2, as
 * it wrote 0 and 1), and reads one more that no admission writes; the
 * three are prefetched together with the candidate.  A cell without a
 * TPD limit reads limit[GR_D_TPD] on line 0 and never touches tday.
 */
struct gr_shm_cell {
    /* line 0: what every admission reads and changes.  limit is written
     * by the router alone; cap by clients, rarely (a 429 that states a
     * limit), by the tools (reset) and by the router (a reload that
     * changes the headroom).  A dimension admits up to the smaller. */
    _Atomic uint32_t limit[GR_NDIM];    /* effective config limit (x
                                           headroom) or GR_LIMIT_NONE; per
                                           dim: req/60 s, tok/60 s,
                                           req/day, images/60 s, tok/day */
    _Atomic uint32_t cap[GR_NDIM];      /* learned limit x headroom, or
                                           GR_LIMIT_NONE */
    _Atomic uint64_t word[GR_NWINDOWS]; /* window words, see above */

    /* line 1: health, written by clients' reports, by the tools
     * (operator flags: drain, disable, enable, reset) and the router;
     * read by every admission on the cell it chose.  (Requests in flight
     * are the leases that hold GR_HELD_INFLIGHT: no counter to keep.) */
    _Atomic int64_t cool_until[GR_NDIM];    /* ns CLOCK_MONOTONIC; 0 = none */
    _Atomic int64_t cell_cool_until;        /* ns; whole cell (bare 429) */
    _Atomic int64_t circuit_until;          /* ns; open circuit until */
    _Atomic uint32_t health;                /* GR_CELL_* */
    _Atomic uint32_t probe_at_s;            /* s CLOCK_MONOTONIC of the next
                                               health probe of a disabled
                                               cell; 0 = none (router) */

    /* line 2: the day words and the counters an admission and its
     * report write (a success report reads and clears the failure
     * state here too). */
    _Atomic uint64_t day;               /* RPD day word, see above */
    _Atomic uint64_t tday;              /* TPD day word: input tokens */
    _Atomic uint64_t admitted;
    _Atomic uint64_t rejected;
    _Atomic uint64_t ok;
    _Atomic uint64_t other_err;
    _Atomic uint32_t failures;              /* consecutive 5xx/timeouts */
    _Atomic uint32_t backoff_level;         /* bare-429 backoff exponent */
    _Atomic uint32_t open_count;            /* circuit openings in a row */
    uint32_t pad2;

    /* line 3: learned limits (written by a 429 that states one). */
    _Atomic int64_t learned[GR_NDIM];       /* limit Google stated; -1 none */
    uint8_t pad3[GR_SHM_LINE - GR_NDIM * 8];

    /* line 4: the configured limits and the last error. */
    _Atomic int64_t config_limit[GR_NDIM];  /* before headroom, for status */
    _Atomic uint32_t last_status;           /* HTTP status of last error */
    _Atomic uint32_t qid_seq;               /* try-lock + version of qid */
    uint8_t cool_src[GR_NDIM];              /* enum gr_cool_src, for status */
    uint8_t pad4[GR_SHM_LINE - GR_NDIM * 8 - 2 * 4 - GR_NDIM];

    /* line 5: the last quotaId seen, under qid_seq. */
    char last_qid[GR_SHM_LINE];

    /* line 6: error counters, written by clients. */
    _Atomic uint64_t quota_429[GR_NDIM + 1];    /* per dim, then bare */
    _Atomic uint64_t server_5xx;
    _Atomic uint64_t auth_err;
};

/*
 * The release rings: for every cell and tick (mod GR_RING) the releases
 * of its three windows, GR_NWINDOWS words side by side, in one of two
 * orders.  Up to GR_RING_CELL_FIRST_MAX cells, cell first: each cell's
 * ring is 27 lines of its own, and all the rings stay in cache.  Above,
 * tick first: the releases of one tick for every cell in turn.  In a
 * large table a settle parks its cost one window ahead, in a slot that
 * cell first was last touched a window earlier and so always missed the
 * cache; tick first, the settles and drains of one instant all land in
 * one row, which stays in cache however many cells there are.  (Tick
 * first in a small table shares each line among the few cells every
 * process writes: slower there.)  The order is a function of the
 * geometry (gr_shm_ring_order()), never read from the segment.
 */
#define GR_RING_CELL_FIRST_MAX 1024u

/* Project slot states (project.state). */
enum {
    GR_PROJ_FREE = 0,
    GR_PROJ_ACTIVE = 1,
    GR_PROJ_REMOVING = 2,   /* removed from config; in-flight leases remain */
};

/* Project flags (project.flags), written by the router from config. */
#define GR_PROJ_CFG_DISABLED (1u << 0)  /* enabled = false */

/* Project health (project.health), written by clients and tools. */
#define GR_PROJ_AUTH_FAILED  (1u << 0)  /* key rejected: until config moves */
#define GR_PROJ_OP_DISABLED  (1u << 1)
#define GR_PROJ_OP_DRAINING  (1u << 2)

/*
 * A project slot.  name, weight, priority, n_keys, flags and the keys are
 * router-written under seq (odd while writing).  generation moves when the
 * slot is freed or given to another project; a lease remembers it.
 */
struct gr_shm_project {
    _Atomic uint32_t seq;
    _Atomic uint32_t generation;
    _Atomic uint32_t state;
    _Atomic uint32_t health;            /* GR_PROJ_AUTH_FAILED, ... */
    _Atomic uint32_t key_bad;           /* bit k: key k refused (written
                                           like health: clients set, the
                                           router's probes and reloads
                                           clear); all n_keys bits set ->
                                           GR_PROJ_AUTH_FAILED */
    uint32_t weight;
    int32_t priority;
    uint32_t n_keys;
    uint32_t flags;                     /* GR_PROJ_CFG_* */
    _Atomic uint32_t probe_at_s;        /* s CLOCK_MONOTONIC of the next
                                           key probe; 0 = none (router) */
    _Atomic uint64_t auth_config_gen;   /* config generation when auth failed */
    char name[GR_SHM_NAME_MAX];
    uint8_t pad1[GR_SHM_LINE - 48];
};

/* A model: its name, under the header's models_seq. */
struct gr_shm_model {
    char name[GR_SHM_NAME_MAX];
};

/* Lease states (low 8 bits of lease.state). */
enum {
    GR_LEASE_FREE = 0,
    GR_LEASE_INTENT = 1,    /* being admitted */
    GR_LEASE_ACTIVE = 2,    /* admitted, call in flight */
    GR_LEASE_SETTLING = 3,  /* being settled (by its owner or the router) */
};

/*
 * An in-flight lease.  state packs what a claim must set at once:
 *   bits  0..7   GR_LEASE_*
 *   bits  8..31  sequence, bumped by every claim (the ticket)
 *   bits 32..63  owner pid
 * held says which counters the lease has added to and not yet given
 * back: a bit is set after the counter is raised and cleared before it is
 * released, so a process killed in between leaks (conservative) rather
 * than releasing twice.
 */
struct gr_shm_lease {
    _Atomic uint64_t state;
    _Atomic uint32_t held;              /* GR_HELD_* */
    uint32_t cell;                      /* cell index */
    uint32_t project_gen;               /* project generation at reserve */
    int32_t spend_day;                  /* ABI 6: Pacific day the spend was
                                           reserved on (GR_HELD_SPEND*) */
    int64_t admitted_ns;                /* CLOCK_MONOTONIC */
    int64_t cost[GR_NWINDOWS];          /* requests, tokens, images */
    int64_t spend;                      /* ABI 6: micro-USD reserved
                                           (worst case) */
};

/*
 * The header.  Line 0 is written once when the segment is created; the
 * rest by the router (seqlocked strings, atomics elsewhere).
 */
struct gr_shm_header {
    /* line 0: geometry, immutable after creation (router_pidns: see
     * there) */
    uint64_t magic;
    uint32_t abi_major;
    uint32_t abi_minor;
    uint64_t size;                      /* bytes */
    uint32_t max_projects;
    uint32_t max_models;
    uint32_t max_leases;
    uint32_t pad0;
    int64_t window_ns;                  /* minute window length */
    int64_t tick_ns;                    /* window_ns / GR_TICKS_PER_WINDOW */
    uint64_t router_pidns;              /* inode of the router's PID
                                           namespace (/proc/self/ns/pid),
                                           set at creation or adoption;
                                           0 = unknown (ABI 3.1).  In what
                                           was padding, on the line the
                                           router repairs from its copy */

    /* line 1: the router */
    _Atomic int64_t router_pid;
    _Atomic int64_t router_birth_ns;    /* CLOCK_REALTIME at its start */
    _Atomic int64_t router_beat_ns;     /* CLOCK_MONOTONIC of its last tick */
    _Atomic uint64_t config_generation;
    _Atomic uint32_t wake;              /* futex word: bumped when room may
                                           have come */
    _Atomic uint32_t sleepers;          /* clients waiting on wake */
    _Atomic uint32_t headroom_ppm;      /* headroom x 1e6 */
    _Atomic uint32_t choice_mode;       /* 0 p2c, 1 weighted, 2 priority */
    _Atomic uint64_t anomalies;         /* bad values seen and skipped */
    _Atomic uint32_t spend_on;          /* ABI 6: nonzero when a spend cap
                                           is configured (router); then
                                           reservations count spend */
    uint32_t pad2;

    /* line 2: reloads */
    _Atomic int64_t last_reload_wall_ns;
    _Atomic uint32_t last_reload_ok;
    _Atomic uint32_t reloads_ok;
    _Atomic uint32_t reloads_failed;
    _Atomic uint32_t max_call_s;
    _Atomic uint32_t n_models;          /* models in use (<= max_models) */
    _Atomic uint32_t n_choice;          /* entries in the choice array */
    _Atomic uint64_t reaped;            /* leases settled by the router */
    _Atomic uint64_t audits;            /* leaks repaired by audits */
    _Atomic uint32_t batch_calls;       /* router.batch_calls; 0 (a router
                                           of ABI 3.0) = no batch leases */
    _Atomic uint32_t tpm_flags;         /* GR_TPM_*: how a settle counts
                                           input tokens (ABI 4.1) */
    uint64_t off_spend;                 /* ABI 6: the spend section */

    /* lines 3..: strings under text_seq */
    _Atomic uint32_t text_seq;
    _Atomic uint32_t models_seq;        /* guards models[] and choice[] */
    /* ABI 5.1, in what was padding: the Pacific days as the router read
     * them from the tz database (shm/tzif.c), under day_seq: day_first
     * is the day (since 1970-01-01) that begins at day_start[0], and day
     * day_first + i begins at day_start[i] (unix s).  All 0 = none (a
     * router of ABI 5.0); readers range-check (clock.c) and fall back to
     * the built-in rule. */
    _Atomic uint32_t day_seq;
    _Atomic int32_t day_first;
    _Atomic int64_t day_start[GR_SHM_DAY_STARTS];
    char base_url[GR_SHM_URL_MAX];
    char last_reload_error[GR_SHM_ERR_MAX];
    char config_path[GR_SHM_URL_MAX];
    char proxy[GR_SHM_URL_MAX];         /* router.proxy; "" = environment */
    char control_path[GR_SHM_SOCK_MAX]; /* the router's control socket
                                           (router/control.c); "" = none */

    /* offsets of the parts, from the start of the segment */
    uint64_t off_models;
    uint64_t off_projects;
    uint64_t off_choice;
    uint64_t off_leases;
    uint64_t off_cells;
    uint64_t off_rings;
    uint64_t off_keys;
    uint64_t off_extra;                 /* ABI 5: struct gr_shm_extra,
                                           after the keys; 0 = none */
};

/*
 * ABI 5: the extras, at off_extra, after the keys' pages: model
 * fallback chains and their counters, and the response cache's settings
 * and counters.  off_extra 0 means none (the size ends with the keys);
 * readers then offer no cache and no fallback.
 *
 *   struct gr_shm_extra                         the cache
 *   struct gr_shm_fallback fallback[max_models] one per model index
 *   _Atomic uint64_t pairs[max_models * max_models], whole lines:
 *       pairs[from * max_models + to] counts the calls asked of model
 *       index `from` that model index `to` answered.  Model indices never
 *       change while the router runs (they are only added), so a pair
 *       keeps its meaning across reloads.
 *   struct gr_shm_alias alias[GR_ALIAS_MAX]     (ABI 6) the config's model
 *       aliases, under the header's models_seq: a name callers may use
 *       for model index `model`; the first empty name ends the list.
 */
#define GR_FALLBACK_MAX 4           /* models in one chain */
#define GR_FALLBACK_END 0xffu       /* ends a chain shorter than the max */

#define GR_ALIAS_MAX 64             /* aliases in the table */

/* One model alias, router-written under the header's models_seq. */
struct gr_shm_alias {
    char name[GR_SHM_NAME_MAX];         /* "" = none (ends the list) */
    uint32_t model;                     /* the model index it names */
    uint8_t pad[GR_SHM_LINE - 4];
};

/* fallback.flags */
#define GR_FB_DEFAULT_ALLOW (1u << 0)   /* calls may fall back unless they
                                           say no (model's fallback_allow) */

/* One model's chain, router-written under the header's models_seq. */
struct gr_shm_fallback {
    uint8_t chain[GR_FALLBACK_MAX];     /* model indices, in order */
    uint32_t flags;                     /* GR_FB_* */
    uint8_t pad[GR_SHM_LINE - 8];
};

/* cache.flags */
#define GR_CACHE_ON (1u << 0)           /* the cache is used at all */
#define GR_CACHE_GENERATE (1u << 1)     /* generateContent cached for every
                                           call (else: opt-in or
                                           temperature 0) */

struct gr_shm_extra {
    /* line 0: settings, router-written under seq */
    _Atomic uint32_t seq;
    uint32_t flags;                     /* GR_CACHE_* */
    uint64_t max_bytes;                 /* the store's map size */
    int64_t ttl_s;                      /* an entry lives this long */
    uint8_t pad0[GR_SHM_LINE - 24];
    char cache_path[GR_SHM_URL_MAX];    /* the cache directory; "" = none */

    /* line 5: counters, written by clients (relaxed adds) */
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t cache_misses;      /* looked up, not found or expired */
    _Atomic uint64_t cache_stores;
    _Atomic uint64_t cache_errors;      /* the store failed or was refused */
    _Atomic uint64_t fallbacks;         /* calls answered by a fallback */
    _Atomic uint64_t fallback_denied;   /* calls that could have fallen
                                           back but were not allowed to */
    uint8_t pad1[GR_SHM_LINE - 48];
};

/*
 * ABI 6: the spend section, at off_spend, after the extras: a price per
 * model index, then one spend record per project slot and one more for
 * the pool (index max_projects).
 *
 *   struct gr_shm_price price[max_models]
 *   struct gr_shm_spend spend[max_projects + 1]
 *
 * Prices are router-written under the header's models_seq; a record's
 * caps are single words the router stores; its day and month words are
 * changed by clients and the router with CAS only (shm/spend.c):
 *   bits  0..43  micro-USD counted (reserved and settled), up to $17.5M
 *   bits 44..63  the day (days since 1970-01-01) or the month (months
 *                since 1970-01), mod 2^20: another value reads as 0
 */
#define GR_SPEND_AMOUNT_BITS 44
#define GR_SPEND_NONE INT64_C(0)        /* no cap (a zeroed record has
                                           none; a cap of $0 is written
                                           as 1 micro-USD) */

struct gr_shm_price {
    /* micro-USD per 1M tokens (= USD per token) */
    uint32_t input, output, cached, thinking;
    /* the same above long_above prompt tokens (the long-prompt tier) */
    uint32_t input_long, output_long, cached_long, thinking_long;
    uint32_t long_above;                /* prompt tokens; 0 = one tier */
    uint32_t max_output;                /* output tokens reserved when the
                                           request sets none */
    uint32_t flags;                     /* GR_PRICE_* */
    uint8_t pad[GR_SHM_LINE - 44];
};

#define GR_PRICE_SET (1u << 0)          /* the model has a price */

struct gr_shm_spend {
    _Atomic int64_t cap_day;            /* micro-USD per Pacific day, or
                                           GR_SPEND_NONE (router); any
                                           other value <= 0 is none */
    _Atomic int64_t cap_month;          /* micro-USD per Pacific month */
    _Atomic uint64_t day;               /* day word, see above */
    _Atomic uint64_t month;             /* month word */
    _Atomic uint64_t refused;           /* calls refused by its caps
                                           (GR_ESPEND) */
    uint8_t pad[GR_SHM_LINE - 40];
};

_Static_assert(sizeof(struct gr_shm_price) == 64, "price: one line");
_Static_assert(sizeof(struct gr_shm_spend) == 64, "spend: one line");
_Static_assert(sizeof(struct gr_shm_fallback) == 64, "fallback: one line");
_Static_assert(sizeof(struct gr_shm_alias) == 2 * 64, "alias: two lines");
_Static_assert(offsetof(struct gr_shm_extra, cache_path) == 64, "line 1");
_Static_assert(offsetof(struct gr_shm_extra, cache_hits) == 64 + 256,
               "counters on their own line");
_Static_assert(sizeof(struct gr_shm_extra) == 6 * 64, "extra: six lines");
_Static_assert(sizeof(struct gr_shm_cell) == 7 * 64, "cell: seven lines");
_Static_assert(GR_RING * GR_NWINDOWS * 8 % GR_SHM_LINE == 0,
               "a cell-first ring is whole lines");
_Static_assert(sizeof(struct gr_shm_cell) % GR_SHM_LINE == 0,
               "cells are whole lines");
_Static_assert(offsetof(struct gr_shm_cell, word) == 40 &&
               sizeof(((struct gr_shm_cell *)0)->word) == 24,
               "line 0: limits, caps and windows, one line");
_Static_assert(offsetof(struct gr_shm_cell, cool_until) == 64, "line 1");
_Static_assert(offsetof(struct gr_shm_cell, probe_at_s) == 124, "line 1");
_Static_assert(offsetof(struct gr_shm_cell, day) == 128 &&
               offsetof(struct gr_shm_cell, tday) == 136 &&
               offsetof(struct gr_shm_cell, admitted) == 144 &&
               offsetof(struct gr_shm_cell, open_count) == 184, "line 2");
_Static_assert(offsetof(struct gr_shm_cell, learned) == 192, "line 3");
_Static_assert(offsetof(struct gr_shm_cell, config_limit) == 256, "line 4");
_Static_assert(offsetof(struct gr_shm_cell, last_qid) == 320, "line 5");
_Static_assert(offsetof(struct gr_shm_cell, quota_429) == 384, "line 6");
_Static_assert(sizeof(struct gr_shm_project) == 128, "project: two lines");
_Static_assert(offsetof(struct gr_shm_project, name) == 48, "project name");
_Static_assert(sizeof(struct gr_shm_lease) == 64, "lease: one line");
_Static_assert(sizeof(struct gr_shm_model) == 64, "model: one line");
_Static_assert(offsetof(struct gr_shm_header, router_pid) == 64, "line 1");
_Static_assert(offsetof(struct gr_shm_header, router_pidns) == 56,
               "line 0, in what was padding");
_Static_assert(offsetof(struct gr_shm_header, last_reload_wall_ns) == 128,
               "line 2");
_Static_assert(offsetof(struct gr_shm_header, spend_on) == 120 &&
               offsetof(struct gr_shm_header, off_spend) == 184,
               "ABI 6, in what was padding");
_Static_assert(offsetof(struct gr_shm_lease, spend) == 56, "lease spend");
_Static_assert(offsetof(struct gr_shm_header, text_seq) == 192, "line 3");
_Static_assert(offsetof(struct gr_shm_header, day_start) == 192 + 16 &&
               offsetof(struct gr_shm_header, day_start) +
               GR_SHM_DAY_STARTS * 8 == 256, "line 3, in what was padding");
_Static_assert(offsetof(struct gr_shm_header, base_url) == 256, "strings");
_Static_assert(offsetof(struct gr_shm_header, control_path) == 256 + 4 * 256,
               "control path after the strings");
_Static_assert(offsetof(struct gr_shm_header, off_extra) ==
               256 + 4 * 256 + 128 + 56, "in what was padding");
_Static_assert(sizeof(struct gr_shm_header) == 256 + 4 * 256 + 128 + 64,
               "header size");
_Static_assert(sizeof(struct gr_shm_header) % GR_SHM_LINE == 0, "whole lines");

/* Shared atomics must not hide a lock: a lock is per process. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics are lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");

#endif
