/*
 * layout.c - prints the layout of every public struct of gemroute.h as the
 * C compiler sees it, for tests/python/test_gemroute.py to compare with the
 * ctypes mirrors of bindings/python/gemroute: one line per struct
 * ("gr_lease 1048 8": size, alignment) and per field ("gr_lease.key 128
 * 128": offset, size).  A mirror that drifts from the header fails there.
 */
#include "gemroute.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>

#define S(t)                                                            \
    printf("%s %zu %zu\n", #t, sizeof(struct t), alignof(struct t))
#define F(t, f)                                                         \
    printf("%s.%s %zu %zu\n", #t, #f, offsetof(struct t, f),           \
           sizeof(((struct t *)0)->f))

int
main(void)
{
    S(gr_cost);
    F(gr_cost, requests);
    F(gr_cost, tokens);
    F(gr_cost, images);

    S(gr_lease);
    F(gr_lease, project);
    F(gr_lease, model);
    F(gr_lease, key);
    F(gr_lease, base_url);
    F(gr_lease, proxy);
    F(gr_lease, retry_at_ns);
    F(gr_lease, slot);
    F(gr_lease, cell);
    F(gr_lease, ticket);
    F(gr_lease, project_gen);
    F(gr_lease, key_index);
    F(gr_lease, admitted_ns);
    F(gr_lease, cost);
    F(gr_lease, batch);
    F(gr_lease, batch_serial);

    S(gr_usage);
    F(gr_usage, tokens);
    F(gr_usage, images);
    F(gr_usage, first_byte_ns);

    S(gr_verdict);
    F(gr_verdict, status);
    F(gr_verdict, cls);
    F(gr_verdict, dims);
    F(gr_verdict, cooldown_s);
    F(gr_verdict, cooldown_src);
    F(gr_verdict, disable);
    F(gr_verdict, retryable);
    F(gr_verdict, learned);
    F(gr_verdict, n_quota_ids);
    F(gr_verdict, quota_ids);
    F(gr_verdict, reason);

    S(gr_call_opts);
    F(gr_call_opts, deadline_ns);
    F(gr_call_opts, queue_deadline_ns);
    F(gr_call_opts, max_attempts);
    F(gr_call_opts, est_tokens);
    F(gr_call_opts, count_tokens_first);
    F(gr_call_opts, backoff_base_ns);
    F(gr_call_opts, backoff_cap_ns);
    F(gr_call_opts, fallback);
    F(gr_call_opts, cache);

    S(gr_tokens);
    F(gr_tokens, prompt);
    F(gr_tokens, candidates);
    F(gr_tokens, thoughts);
    F(gr_tokens, total);

    S(gr_response);
    F(gr_response, status);
    F(gr_response, body);
    F(gr_response, len);
    F(gr_response, project);
    F(gr_response, attempts);
    F(gr_response, n_429);
    F(gr_response, queued_ns);
    F(gr_response, elapsed_ns);
    F(gr_response, retry_at_ns);
    F(gr_response, usage);
    F(gr_response, verdict);
    F(gr_response, error);
    F(gr_response, model);
    F(gr_response, cached);
    return 0;
}
