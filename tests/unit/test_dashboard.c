/*
 * test_dashboard.c - the dashboard's rules (gateway/dashboard.c) without
 * a network: HMAC-SHA256 against RFC 4231, no page without admin
 * tokens, the login form, Bearer, the signed session cookie (a forged,
 * re-signed or expired one is refused), the CSRF token and the Origin
 * checks.  The table is absent, so an authorized api/state answers 503
 * (not 401) and an authorized action is judged by its form alone.
 */
#include "dashboard.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ADMIN "dash-unit-SECRET-admin-0001"
#define OTHER "dash-unit-SECRET-admin-0002"

static struct gw gw;

static int
setup(void)
{
    memset(&gw, 0, sizeof(gw));
    pthread_rwlock_init(&gw.lock, NULL);
    snprintf(gw.shm, sizeof(gw.shm), "/grtest-dash-no-table-%d",
             (int)getpid());
    gw.conf.n_admin_tokens = 2;
    snprintf(gw.conf.admin_tokens[0], GR_CFG_KEY_MAX, "%s", OTHER);
    snprintf(gw.conf.admin_tokens[1], GR_CFG_KEY_MAX, "%s", ADMIN);
    return 0;
}

static int
teardown(void)
{
    pthread_rwlock_destroy(&gw.lock);
    return 0;
}

static void
ask(struct gw_dash_resp *r, const char *method, const char *path,
    const char *auth, const char *cookie, const char *csrf,
    const char *origin, const char *body)
{
    struct gw_dash_req in = {
        .method = method, .path = path, .authorization = auth,
        .cookie = cookie, .csrf = csrf, .origin = origin,
        .host = "127.0.0.1:8787", .body = body,
        .len = body ? strlen(body) : 0,
    };

    gw_dash_handle(&gw, &in, r);
}

static const char *
hdr(const struct gw_dash_resp *r, const char *name)
{
    unsigned i;

    for (i = 0; i < r->n_headers; i++)
        if (strcmp(r->hname[i], name) == 0)
            return r->hvalue[i];
    return NULL;
}

static void
test_hmac_rfc4231(void)
{
    static const char want[] = "5bdcc146bf60754e6a042426089575c7"
                               "5a003f089d2739839dec58b964ec3843";
    unsigned char mac[32];
    char hex[65];
    int i;

    gw_dash_hmac("Jefe", 4, "what do ya want for nothing?", 28, mac);
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    CU_ASSERT_STRING_EQUAL(hex, want);
}

static void
test_no_admin_tokens_no_page(void)
{
    struct gw_dash_resp r;
    unsigned n = gw.conf.n_admin_tokens;

    gw.conf.n_admin_tokens = 0;
    ask(&r, "GET", "/gemroute/", NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    free(r.body);
    ask(&r, "GET", "/gemroute/api/state", "Bearer " ADMIN, NULL, NULL, NULL,
        NULL);
    CU_ASSERT_EQUAL(r.status, 404);
    free(r.body);
    gw.conf.n_admin_tokens = n;
}

static void
test_login_form_and_bearer(void)
{
    struct gw_dash_resp r;
    const char *c;

    ask(&r, "GET", "/gemroute", NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 308);
    free(r.body);
    ask(&r, "GET", "/gemroute/", NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "name=\"token\""));
    CU_ASSERT_PTR_NULL(strstr(r.body, "csrf-token"));
    CU_ASSERT_PTR_NULL(hdr(&r, "Set-Cookie"));
    CU_ASSERT_PTR_NOT_NULL(hdr(&r, "Content-Security-Policy"));
    free(r.body);
    ask(&r, "GET", "/gemroute/api/state", NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    ask(&r, "GET", "/gemroute/api/state", "Bearer " ADMIN "x", NULL, NULL,
        NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    /* The second admin token works as well as the first. */
    ask(&r, "GET", "/gemroute/api/state", "Bearer " ADMIN, NULL, NULL, NULL,
        NULL);
    CU_ASSERT_EQUAL(r.status, 503);     /* allowed; no table here */
    free(r.body);
    /* A page loaded with a Bearer gets a session. */
    ask(&r, "GET", "/gemroute/", "Bearer " ADMIN, NULL, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "name=\"csrf-token\" content=\""));
    c = hdr(&r, "Set-Cookie");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c, "; HttpOnly; SameSite=Strict"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c, "; Path=/gemroute/; Max-Age=43200"));
    CU_ASSERT_PTR_NULL(strstr(r.body, "SECRET"));
    free(r.body);
}

/* Log in with token; the cookie ("gr_session=...") and the page's CSRF
 * token, or "" when refused. */
static int
login(const char *token, const char *origin, char *cookie, char *csrf)
{
    struct gw_dash_resp r, p;
    char body[128];
    const char *c, *m;
    int status;

    snprintf(body, sizeof(body), "token=%s", token);
    ask(&r, "POST", "/gemroute/login", NULL, NULL, NULL, origin, body);
    status = r.status;
    cookie[0] = csrf[0] = '\0';
    c = hdr(&r, "Set-Cookie");
    if (c != NULL) {
        snprintf(cookie, 128, "%.*s", (int)strcspn(c, ";"), c);
        ask(&p, "GET", "/gemroute/", NULL, cookie, NULL, NULL, NULL);
        m = p.body ? strstr(p.body, "name=\"csrf-token\" content=\"")
                   : NULL;
        if (m != NULL && p.status == 200)
            snprintf(csrf, 33, "%s", m + 27);
        free(p.body);
    }
    free(r.body);
    return status;
}

static void
test_session_cookie(void)
{
    char cookie[128], csrf[40], bad[128];
    struct gw_dash_resp r;

    CU_ASSERT_EQUAL(login("wrong-token-0000", NULL, cookie, csrf), 401);
    CU_ASSERT_STRING_EQUAL(cookie, "");
    CU_ASSERT_EQUAL(login(ADMIN, "http://evil.example", cookie, csrf), 403);
    CU_ASSERT_STRING_EQUAL(cookie, "");
    CU_ASSERT_EQUAL(login(ADMIN, "http://127.0.0.1:8787", cookie, csrf), 303);
    CU_ASSERT_EQUAL_FATAL(strlen(cookie), strlen("gr_session=") + 76);
    CU_ASSERT_EQUAL_FATAL(strlen(csrf), 32);
    CU_ASSERT_EQUAL(strspn(csrf, "0123456789abcdef"), 32);
    ask(&r, "GET", "/gemroute/api/state", NULL, cookie, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 503);
    free(r.body);
    /* Any byte changed: refused. */
    snprintf(bad, sizeof(bad), "%s", cookie);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    ask(&r, "GET", "/gemroute/api/state", NULL, bad, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    /* The token changed: every session it signed ends. */
    snprintf(gw.conf.admin_tokens[1], GR_CFG_KEY_MAX, "%s", OTHER "-new");
    ask(&r, "GET", "/gemroute/api/state", NULL, cookie, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    snprintf(gw.conf.admin_tokens[1], GR_CFG_KEY_MAX, "%s", ADMIN);
    ask(&r, "GET", "/gemroute/api/state", NULL, cookie, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 503);
    free(r.body);
}

/* A cookie for token position idx expiring at exp, signed with key. */
static void
forge(const char *key, unsigned idx, uint64_t exp, char *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
                              "stuvwxyz0123456789-_";
    unsigned char raw[57], msg[17 + 25];
    size_t i, o;

    memset(raw, 0x5a, 16);
    for (i = 0; i < 8; i++)
        raw[16 + i] = (unsigned char)(exp >> (56 - 8 * i));
    raw[24] = (unsigned char)idx;
    memcpy(msg, "gemroute-session", 17);
    memcpy(msg + 17, raw, 25);
    gw_dash_hmac(key, strlen(key), msg, sizeof(msg), raw + 25);
    o = (size_t)sprintf(out, "gr_session=");
    for (i = 0; i < 57; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 |
                     raw[i + 2];

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

static void
test_forged_and_expired_cookies(void)
{
    uint64_t now = (uint64_t)time(NULL);
    struct gw_dash_resp r;
    char c[128];

    forge(ADMIN, 1, now + 600, c);          /* as the gateway makes it */
    ask(&r, "GET", "/gemroute/api/state", NULL, c, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 503);
    free(r.body);
    forge(ADMIN, 1, now - 1, c);            /* expired */
    ask(&r, "GET", "/gemroute/api/state", NULL, c, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    forge(ADMIN, 0, now + 600, c);          /* signed by another token */
    ask(&r, "GET", "/gemroute/api/state", NULL, c, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    forge(ADMIN, 5, now + 600, c);          /* no such token */
    ask(&r, "GET", "/gemroute/api/state", NULL, c, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
    forge("guess", 1, now + 600, c);        /* not signed by a token */
    ask(&r, "GET", "/gemroute/api/state", NULL, c, NULL, NULL, NULL);
    CU_ASSERT_EQUAL(r.status, 401);
    free(r.body);
}

static void
test_csrf(void)
{
    const char *form = "action=explode&target=pa";
    const char *self = "http://127.0.0.1:8787";
    char cookie[128], csrf[40], wrong[40];
    struct gw_dash_resp r;

    CU_ASSERT_EQUAL_FATAL(login(ADMIN, NULL, cookie, csrf), 303);
    ask(&r, "POST", "/gemroute/api/action", NULL, cookie, NULL, self, form);
    CU_ASSERT_EQUAL(r.status, 403);
    free(r.body);
    snprintf(wrong, sizeof(wrong), "%s", csrf);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    ask(&r, "POST", "/gemroute/api/action", NULL, cookie, wrong, self, form);
    CU_ASSERT_EQUAL(r.status, 403);
    free(r.body);
    ask(&r, "POST", "/gemroute/api/action", NULL, cookie, csrf,
        "http://evil.example", form);
    CU_ASSERT_EQUAL(r.status, 403);
    free(r.body);
    /* Past the checks: the form itself is judged (and refused). */
    ask(&r, "POST", "/gemroute/api/action", NULL, cookie, csrf, self, form);
    CU_ASSERT_EQUAL(r.status, 400);
    free(r.body);
    ask(&r, "POST", "/gemroute/api/action", NULL, cookie, csrf, self,
        "action=drain&target=pa%0Aenable%20pb");
    CU_ASSERT_EQUAL(r.status, 400);
    free(r.body);
    ask(&r, "POST", "/gemroute/api/action", NULL, cookie, csrf, self,
        "action=drain&target=pa&dim=rpm");
    CU_ASSERT_EQUAL(r.status, 400);     /* dim is for reset only */
    free(r.body);
    /* A Bearer needs no CSRF token: no browser adds it by itself. */
    ask(&r, "POST", "/gemroute/api/action", "Bearer " ADMIN, NULL, NULL,
        NULL, form);
    CU_ASSERT_EQUAL(r.status, 400);
    free(r.body);
    /* Logging out needs the token too. */
    ask(&r, "POST", "/gemroute/logout", NULL, cookie, NULL, self, "");
    CU_ASSERT_EQUAL(r.status, 403);
    free(r.body);
    ask(&r, "POST", "/gemroute/logout", NULL, cookie, csrf, self, "");
    CU_ASSERT_EQUAL(r.status, 303);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hdr(&r, "Set-Cookie"));
    CU_ASSERT_PTR_NOT_NULL(strstr(hdr(&r, "Set-Cookie"), "Max-Age=0"));
    free(r.body);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"HMAC-SHA256: RFC 4231 case 2", test_hmac_rfc4231},
        {"no admin tokens: no page", test_no_admin_tokens_no_page},
        {"login form, Bearer, security headers", test_login_form_and_bearer},
        {"session cookie: login, tampering, token change",
         test_session_cookie},
        {"forged and expired cookies", test_forged_and_expired_cookies},
        {"CSRF token and Origin", test_csrf},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"dashboard", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_dashboard", suites, 30);
}
