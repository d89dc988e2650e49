# gemroute - one Makefile for the whole tree.
#
#   make            build bin/gemrouted, bin/gemroute, bin/gemroute-mock,
#                   bin/gemroute-gateway, lib/libgemroute.a and
#                   lib/libgemroute.so(.1)
#   make test       every unit, integration and stress test
#   make check      the tests again under ASan+UBSan, stress under TSan,
#                   and a 20 s smoke of each fuzzer
#   make lint       the mechanical rules of STYLE.md
#   make fuzz       the libFuzzer harnesses, a few minutes each
#   make soak       64 clients for 10 minutes with faults and kills
#   make bench      micro-benchmarks, written to docs/BENCHMARKS.md
#   make demo       the router in front of the bundled mock Gemini server
#   make install    PREFIX=/usr/local DESTDIR=: programs, libraries, header,
#                   gemroute.pc, man pages, units; make uninstall undoes it
#
# SANITIZE=address,undefined or SANITIZE=thread build into their own folder.

SANITIZE ?=
comma := ,
ifeq ($(SANITIZE),)
BUILD := build/default
BIN := bin
LIB := lib
else
BUILD := build/$(subst $(comma),-,$(SANITIZE))
BIN := $(BUILD)/bin
LIB := $(BUILD)/lib
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -Wcast-qual -Wcast-align \
        -Wwrite-strings -Werror
ALL_CFLAGS = $(WARN) $(CFLAGS) -D_GNU_SOURCE -fPIC -pthread $(SAN_FLAGS) \
             -MMD -MP
LDFLAGS_ALL = -pthread $(SAN_FLAGS) $(LDFLAGS)

pc = $(shell pkg-config --$(1) $(2) 2>/dev/null)
CONFIG_LIBS := $(or $(call pc,libs,libconfig),-lconfig)
JSON_CFLAGS := $(call pc,cflags,json-c)
JSON_LIBS := $(or $(call pc,libs,json-c),-ljson-c)
# libgemroute's HTTP: libcurl, and OpenSSL for the TLS of the gateway
# loops' own client (client/h1.c) and of Redis (router/cluster_redis.c).
SSL_LIBS := $(or $(call pc,libs,openssl),-lssl -lcrypto)
CURL_LIBS := $(or $(call pc,libs,libcurl),-lcurl) $(SSL_LIBS)
LMDB_LIBS := $(or $(call pc,libs,lmdb),-llmdb)
MHD_LIBS := $(or $(call pc,libs,libmicrohttpd),-lmicrohttpd)
CUNIT_LIBS := $(or $(call pc,libs,cunit),-lcunit)

OBJ := $(BUILD)/obj
objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

# Modules.  Each folder sees only the headers STYLE.md allows it.
CONFIG_SRC := $(wildcard config/*.c)
SHM_SRC := $(wildcard shm/*.c)
CLIENT_SRC := $(wildcard client/*.c)
ROUTER_SRC := $(filter-out router/main.c,$(wildcard router/*.c))
CLI_SRC := $(filter-out tools/gemroute/main.c,$(wildcard tools/gemroute/*.c))
MOCK_SRC := $(filter-out tools/mock/main.c,$(wildcard tools/mock/*.c))
GATEWAY_SRC := $(filter-out gateway/main.c,$(wildcard gateway/*.c))

CONFIG_OBJ := $(call objs,$(CONFIG_SRC))
SHM_OBJ := $(call objs,$(SHM_SRC))
CLIENT_OBJ := $(call objs,$(CLIENT_SRC))
ROUTER_OBJ := $(call objs,$(ROUTER_SRC))
CLI_OBJ := $(call objs,$(CLI_SRC))
MOCK_OBJ := $(call objs,$(MOCK_SRC))
GATEWAY_OBJ := $(call objs,$(GATEWAY_SRC))

$(OBJ)/config/%.o: MODFLAGS := -Iconfig
$(OBJ)/shm/%.o: MODFLAGS := -Ishm
$(OBJ)/client/%.o: MODFLAGS := -Iinclude -Iclient -Ishm $(JSON_CFLAGS)
$(OBJ)/router/%.o: MODFLAGS := -Irouter -Iconfig -Ishm
# The probe calls the public client API (gr_probe()), nothing else of it.
$(OBJ)/router/probe.o: MODFLAGS := -Irouter -Iconfig -Ishm -Iinclude
# So does the batch jobs' poll (gr_batch_poll()).
$(OBJ)/router/batchjobs.o: MODFLAGS := -Irouter -Iconfig -Ishm -Iinclude
$(OBJ)/tools/gemroute/%.o: MODFLAGS := -Itools/gemroute -Iinclude
$(OBJ)/tools/mock/%.o: MODFLAGS := -Itools/mock -Ishm $(JSON_CFLAGS)
$(OBJ)/gateway/%.o: MODFLAGS := -Igateway -Iinclude -Iconfig $(JSON_CFLAGS)
$(OBJ)/tools/bench/%.o: MODFLAGS := -Itools/bench -Iinclude -Iclient -Ishm \
                                    -Itests/stress
$(OBJ)/tests/%.o: MODFLAGS := -Itests -Iinclude -Iconfig -Ishm -Iclient \
                              -Irouter -Itools/gemroute -Itools/mock \
                              $(JSON_CFLAGS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(MODFLAGS) -c $< -o $@

# Products.
LIBGR_A := $(LIB)/libgemroute.a
LIBGR_SO := $(LIB)/libgemroute.so
PROGS := $(BIN)/gemrouted $(BIN)/gemroute $(BIN)/gemroute-mock
PROGS += $(BIN)/gemroute-gateway
BENCH_PROGS := $(BIN)/gr-bench-reserve $(BIN)/gr-bench-e2e
BENCH_PROGS += $(BIN)/gr-bench-cache $(BIN)/gr-bench-curl-floor
BENCH_PROGS += $(BIN)/gr-bench-h1-floor

all: $(PROGS) $(LIBGR_A) $(LIBGR_SO)

$(LIBGR_A): $(SHM_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library exports exactly the public API: its objects are
# compiled with hidden visibility (GR_API in include/gemroute.h marks the
# API default) and the version script lists the same functions, like
# Varnish's libvarnishapi.map.  The static library and the programs link
# the same objects; hidden visibility changes nothing for them.
LIBGR_MAP := client/libgemroute.map
LIBGR_SONAME := libgemroute.so.1
LIBGR_SO1 := $(LIB)/$(LIBGR_SONAME)
$(OBJ)/client/%.o $(OBJ)/shm/%.o: ALL_CFLAGS += -fvisibility=hidden

$(LIBGR_SO1): $(SHM_OBJ) $(CLIENT_OBJ) $(LIBGR_MAP)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,$(LIBGR_SONAME) \
	    -Wl,--version-script=$(LIBGR_MAP) -o $@ \
	    $(SHM_OBJ) $(CLIENT_OBJ) $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) -lm

$(LIBGR_SO): $(LIBGR_SO1)
	ln -sf $(LIBGR_SONAME) $@

$(BIN)/gemrouted: $(OBJ)/router/main.o $(ROUTER_OBJ) $(CONFIG_OBJ) \
                  $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CONFIG_LIBS) $(JSON_LIBS) $(CURL_LIBS) \
	    $(LMDB_LIBS) $(HIREDIS_LIBS) $(SSL_LIBS) -lm

$(BIN)/gemroute: $(OBJ)/tools/gemroute/main.o $(CLI_OBJ) $(CLIENT_OBJ) \
                 $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) -lm

$(BIN)/gemroute-mock: $(OBJ)/tools/mock/main.o $(MOCK_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(MHD_LIBS) $(CONFIG_LIBS) $(JSON_LIBS) -lm

# The dashboard's page (gateway/assets/), embedded as bytes.
DASH_ASSETS := $(sort $(wildcard gateway/assets/*))
$(OBJ)/gateway/assets.c: $(DASH_ASSETS) tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh $(DASH_ASSETS) >$@.tmp && mv $@.tmp $@
$(OBJ)/gateway/assets.o: $(OBJ)/gateway/assets.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BIN)/gemroute-gateway: $(OBJ)/gateway/main.o $(GATEWAY_OBJ) $(CONFIG_OBJ) \
                         $(CLIENT_OBJ) $(SHM_OBJ) $(OBJ)/gateway/assets.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(MHD_LIBS) $(CONFIG_LIBS) $(JSON_LIBS) \
	    $(CURL_LIBS) $(LMDB_LIBS) -lm

HIREDIS_LIBS := $(or $(call pc,libs,hiredis),-lhiredis)
BENCH_RESERVE_OBJ := $(call objs,tools/bench/bench_reserve.c \
                       tools/bench/harness.c tools/bench/impl_gemroute.c \
                       tools/bench/mutex_table.c tools/bench/redis_window.c \
                       tests/stress/checker.c)

$(BIN)/gr-bench-reserve: $(BENCH_RESERVE_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(HIREDIS_LIBS) $(JSON_LIBS) \
	    $(CURL_LIBS) $(LMDB_LIBS) -lm

$(BIN)/gr-bench-e2e: $(call objs,tools/bench/bench_e2e.c \
                       tools/bench/e2e_calls.c) $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) -lm

# What a cache hit costs against an upstream call (tools/bench/cache.sh).
$(BIN)/gr-bench-cache: $(call objs,tools/bench/bench_cache.c) \
                       $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) -lm

# libcurl alone, as the gateway's loops drive it (tools/bench/gateway.sh).
$(BIN)/gr-bench-curl-floor: $(call objs,tools/bench/curl_floor.c \
                             tools/bench/floor.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CURL_LIBS)

# The same half through the loops' own client, client/h1.c
# (tools/bench/gateway.sh).
$(BIN)/gr-bench-h1-floor: $(call objs,tools/bench/h1_floor.c \
                           tools/bench/floor.c) $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) -lm

# Tests.  Every tests/unit/test_NAME.c and tests/stress/NAME.c becomes
# $(BUILD)/tests/NAME linked with the objects TEST_DEPS_NAME lists.
TESTLIB_OBJ := $(call objs,tests/testlib.c)
TESTROUTER_OBJ := $(call objs,tests/testrouter.c)
TEST_DEPS_test_clock := $(SHM_OBJ)
TEST_DEPS_test_shm := $(SHM_OBJ)
TEST_DEPS_test_resource := $(SHM_OBJ)
TEST_DEPS_test_batchjob := $(SHM_OBJ)
TEST_DEPS_test_config := $(CONFIG_OBJ)
TEST_DEPS_test_spend := $(SHM_OBJ) $(CONFIG_OBJ)
TEST_DEPS_test_router := $(ROUTER_OBJ) $(CONFIG_OBJ) $(CLIENT_OBJ) \
                         $(SHM_OBJ)
TEST_DEPS_test_client := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_cache := $(CLIENT_OBJ) $(SHM_OBJ)
# test_router fails allocations on purpose (a reload out of memory).
$(BUILD)/tests/test_router: LDFLAGS += -Wl,--wrap=calloc
TEST_DEPS_test_segment := $(ROUTER_OBJ) $(CONFIG_OBJ) $(CLIENT_OBJ) \
                          $(SHM_OBJ)
TEST_DEPS_test_lease := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_batch := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_tzday := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_affinity := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_media := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_history := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_dashboard := $(OBJ)/gateway/dashboard.o \
                            $(OBJ)/gateway/sha256.o $(OBJ)/gateway/metrics.o \
                            $(OBJ)/gateway/assets.o $(CLIENT_OBJ) $(SHM_OBJ)
$(OBJ)/tests/unit/test_dashboard.o: MODFLAGS := -Itests -Igateway -Iinclude \
                                               -Iconfig $(JSON_CFLAGS)
TEST_DEPS_test_reserve := $(ROUTER_OBJ) $(CONFIG_OBJ) \
                          $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_classify := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_blame := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_count := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_json_scan := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_json := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_response := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_estimate := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_h1 := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_repair := $(ROUTER_OBJ) $(CONFIG_OBJ) \
                         $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_generate := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_mock := $(MOCK_OBJ) $(SHM_OBJ)
TEST_DEPS_test_mock_routes := $(MOCK_OBJ) $(SHM_OBJ)
TEST_DEPS_test_mock_batch := $(MOCK_OBJ) $(SHM_OBJ)
TEST_DEPS_stress_hostile := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_stress_admission := $(call objs,tests/stress/checker.c) \
                              $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_status := $(CLI_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_stress_reload := $(call objs,tests/stress/checker.c) \
                           $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_LIBS := $(CONFIG_LIBS) $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) $(MHD_LIBS) \
             $(CUNIT_LIBS) $(HIREDIS_LIBS) $(SSL_LIBS) -lm
TEST_DEPS_test_cluster := $(call objs,router/cluster_math.c) $(CONFIG_OBJ)
TEST_DEPS_test_h1_parse := $(call objs,client/h1_parse.c)
# Tests of the router's code in their own process (tests/testinproc.c).
TESTINPROC_OBJ := $(call objs,tests/testinproc.c)
TEST_DEPS_test_router += $(TESTINPROC_OBJ)
TEST_DEPS_test_reserve += $(TESTINPROC_OBJ)
TEST_DEPS_test_segment += $(TESTINPROC_OBJ)
TEST_DEPS_test_repair += $(TESTINPROC_OBJ)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
STRESS_SRC := $(wildcard tests/stress/stress_*.c)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC)) \
             $(patsubst tests/stress/%.c,$(BUILD)/tests/%,$(STRESS_SRC))

.SECONDEXPANSION:
$(BUILD)/tests/%: $(OBJ)/tests/unit/%.o $(TESTLIB_OBJ) $$(TEST_DEPS_$$*)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(TEST_LIBS)

$(BUILD)/tests/stress_%: $(OBJ)/tests/stress/stress_%.o $(TESTLIB_OBJ) \
                         $$(TEST_DEPS_stress_$$*)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(TEST_LIBS)

tests: all $(TEST_BINS)

# The driver of tests/e2e/run_fallback_cache.sh (fallback chains, cache).
$(BUILD)/tests/fb_cache_driver: $(OBJ)/tests/e2e/fb_cache_driver.o \
                                $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) $(LMDB_LIBS) -lm

tests: $(BUILD)/tests/fb_cache_driver

# The layout of the public structs as C sees them, for the Python
# binding's test (tests/python/run_python.sh).
$(BUILD)/tests/py_layout: tests/python/layout.c include/gemroute.h
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -Iinclude -o $@ tests/python/layout.c

tests: $(BUILD)/tests/py_layout

test: deps
	$(MAKE) tests
	BUILD=$(BUILD) BIN=$(BIN) tests/run.sh

check: deps
	$(MAKE) SANITIZE=address,undefined tests
	GR_SANITIZED=1 BUILD=build/address-undefined BIN=build/address-undefined/bin \
	    tests/run.sh
	$(MAKE) SANITIZE=thread tests
	GR_SANITIZED=1 BUILD=build/thread BIN=build/thread/bin \
	    tests/run.sh --threads-only
	FUZZ_SECONDS=20 tools/fuzz.sh

# Fuzzers: libFuzzer harnesses built by clang with ASan and UBSan, each
# from the sources it exercises (tools/fuzz.sh seeds and runs them).
FUZZ_DIR := build/fuzz
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=all -D_GNU_SOURCE -std=c11
FUZZ_NAMES := classify sse config mock_request json_scan settle media
FUZZERS := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_NAMES))
FUZZ_CLIENT_FLAGS := -Iinclude -Iclient -Ishm $(JSON_CFLAGS)
FUZZ_SRC_classify := client/classify.c client/response.c \
                     client/json_scan.c client/json.c shm/clock.c
FUZZ_FLAGS_classify := $(FUZZ_CLIENT_FLAGS) $(JSON_LIBS)
FUZZ_SRC_sse := client/response.c client/json_scan.c client/json.c
FUZZ_FLAGS_sse := $(FUZZ_CLIENT_FLAGS) $(JSON_LIBS)
FUZZ_SRC_json_scan := client/json_scan.c client/estimate.c client/json.c \
                      client/media.c
FUZZ_FLAGS_json_scan := $(FUZZ_CLIENT_FLAGS) $(JSON_LIBS)
FUZZ_SRC_media := client/media.c tools/mock/media.c
FUZZ_FLAGS_media := -Iclient -Itools/mock $(JSON_CFLAGS) $(JSON_LIBS)
FUZZ_SRC_config := $(CONFIG_SRC)
FUZZ_FLAGS_config := -Iconfig $(CONFIG_LIBS)
FUZZ_SRC_mock_request := tools/mock/request.c tools/mock/jsonw.c
FUZZ_FLAGS_mock_request := -Itools/mock -Ishm $(JSON_CFLAGS) $(JSON_LIBS)
# The router without its main, its log (the harness logs nothing) and its
# probes (HTTP through the client library).
FUZZ_SRC_settle := $(filter-out router/log.c router/probe.c router/batchjobs.c,$(ROUTER_SRC)) \
                   $(CONFIG_SRC) \
                   $(SHM_SRC)
FUZZ_FLAGS_settle := -Irouter -Iconfig -Ishm $(CONFIG_LIBS) -lhiredis -lssl -lcrypto -lm
# The loops' HTTP/1.1 answer reader (client/h1_parse.c), alone.
FUZZ_NAMES += h1_parse
FUZZERS += $(FUZZ_DIR)/fuzz_h1_parse
FUZZ_SRC_h1_parse := client/h1_parse.c
FUZZ_FLAGS_h1_parse := -Iclient

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< $(FUZZ_SRC_$*) $(FUZZ_FLAGS_$*) -o $@

fuzzers: $(FUZZERS)

soak: deps all
	SOAK_SECONDS=$${SOAK_SECONDS:-600} tests/soak/run_soak.sh

fuzz: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-180} tools/fuzz.sh

lint:
	tools/lint.sh

demo: deps all
	tools/demo.sh

# Three hosts sharing one quota through Redis (docs/CLUSTER.md).
demo-cluster: deps all
	tools/demo_cluster.sh

bench: deps bench-deps all $(BENCH_PROGS)
	tools/bench.sh
	$(MAKE) --no-print-directory bench-cluster

# The same sections, fewer configurations, a shorter steady run: about a
# minute (54 to 79 s measured on the shared 2-core machine, under load).
bench-quick: deps bench-deps all $(BENCH_PROGS)
	tools/bench.sh --quick
	$(MAKE) --no-print-directory bench-cluster-quick

.PHONY: bench-quick

# The cluster section (docs/CLUSTER.md): Redis commands per router at 10,
# 1,000 and 10,000 calls/s against a Lua window asking Redis on every
# call, and the reserve cost on a clustered router.  Part of make bench
# (docs/BENCHMARKS.md) and make bench-quick (bench/quick/ only).
bench-cluster: deps bench-deps all $(BENCH_PROGS)
	tools/bench/cluster.sh

bench-cluster-quick: deps bench-deps all $(BENCH_PROGS)
	tools/bench/cluster.sh --quick

.PHONY: bench-cluster bench-cluster-quick

# make install / make uninstall: Debian's layout under PREFIX (default
# /usr/local), staged under DESTDIR.  Daemons go to sbin, the config to
# SYSCONFDIR/gemroute (/etc when PREFIX is /usr), units, the sysusers.d
# entry for the user and group gemroute, man pages, the header, both
# libraries, gemroute.pc and a Grafana dashboard.  The gateway's program
# and unit go with them when bin/gemroute-gateway was built.  An
# existing config is never overwritten; uninstall removes it only when it
# is still the installed example.
VERSION := 1.0.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/gemroute
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL ?= install
D = $(DESTDIR)
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
            -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
            -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'
GW := $(BIN)/gemroute-gateway
MAN_PAGES := man/gemroute.1 man/libgemroute.3 man/gemroute.conf.5 \
             man/gemrouted.8 man/gemroute-gateway.8
CONF_FILES := packaging/gemroute.conf examples/tiers-2025.conf \
              examples/pricing-2025.conf

install: all
	$(INSTALL) -d $(D)$(BINDIR) $(D)$(SBINDIR) $(D)$(LIBDIR) \
	    $(D)$(INCLUDEDIR) $(D)$(PKGCONFIGDIR) $(D)$(MANDIR)/man1 \
	    $(D)$(MANDIR)/man3 $(D)$(MANDIR)/man5 $(D)$(MANDIR)/man8 \
	    $(D)$(DATADIR) $(D)$(SYSCONFDIR)/gemroute $(D)$(UNITDIR) \
	    $(D)$(SYSUSERSDIR)
	$(INSTALL) -m 755 $(BIN)/gemroute $(D)$(BINDIR)/gemroute
	$(INSTALL) -m 755 $(BIN)/gemrouted $(D)$(SBINDIR)/gemrouted
	$(INSTALL) -m 755 $(LIBGR_SO1) $(D)$(LIBDIR)/$(LIBGR_SONAME)
	ln -sf $(LIBGR_SONAME) $(D)$(LIBDIR)/libgemroute.so
	$(INSTALL) -m 644 $(LIBGR_A) $(D)$(LIBDIR)/libgemroute.a
	$(INSTALL) -m 644 include/gemroute.h $(D)$(INCLUDEDIR)/gemroute.h
	$(INSTALL) -m 644 include/gemroute_stat.h \
	    $(D)$(INCLUDEDIR)/gemroute_stat.h
	$(SUBST) packaging/gemroute.pc.in >$(D)$(PKGCONFIGDIR)/gemroute.pc
	for m in $(MAN_PAGES); do \
	    $(INSTALL) -m 644 $$m $(D)$(MANDIR)/man$${m##*.}/ || exit 1; \
	done
	$(INSTALL) -m 644 packaging/grafana-dashboard.json $(D)$(DATADIR)/
	$(SUBST) packaging/gemrouted.service.in \
	    >$(D)$(UNITDIR)/gemrouted.service
	$(INSTALL) -m 644 packaging/gemroute.sysusers \
	    $(D)$(SYSUSERSDIR)/gemroute.conf
	for f in $(CONF_FILES); do \
	    t=$(D)$(SYSCONFDIR)/gemroute/$${f##*/}; \
	    [ -e $$t ] || $(INSTALL) -m 644 $$f $$t || exit 1; \
	done
	if [ -x $(GW) ]; then \
	    $(INSTALL) -m 755 $(GW) $(D)$(SBINDIR)/gemroute-gateway && \
	    $(SUBST) packaging/gemroute-gateway.service.in \
	        >$(D)$(UNITDIR)/gemroute-gateway.service; \
	fi
	chmod 644 $(D)$(PKGCONFIGDIR)/gemroute.pc $(D)$(UNITDIR)/*.service
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	    ldconfig; \
	    echo "then: systemd-sysusers; systemctl daemon-reload;" \
	         "systemctl enable --now gemrouted"; \
	fi

uninstall:
	rm -f $(D)$(BINDIR)/gemroute $(D)$(SBINDIR)/gemrouted \
	    $(D)$(SBINDIR)/gemroute-gateway $(D)$(LIBDIR)/$(LIBGR_SONAME) \
	    $(D)$(LIBDIR)/libgemroute.so $(D)$(LIBDIR)/libgemroute.a \
	    $(D)$(INCLUDEDIR)/gemroute.h $(D)$(INCLUDEDIR)/gemroute_stat.h \
	    $(D)$(PKGCONFIGDIR)/gemroute.pc \
	    $(D)$(DATADIR)/grafana-dashboard.json \
	    $(D)$(UNITDIR)/gemrouted.service \
	    $(D)$(UNITDIR)/gemroute-gateway.service \
	    $(D)$(SYSUSERSDIR)/gemroute.conf
	for m in $(MAN_PAGES); do \
	    rm -f $(D)$(MANDIR)/man$${m##*.}/$${m##*/}; \
	done
	for f in $(CONF_FILES); do \
	    t=$(D)$(SYSCONFDIR)/gemroute/$${f##*/}; \
	    if cmp -s $$f $$t; then rm -f $$t; \
	    elif [ -e $$t ]; then echo "kept $$t: it was changed"; fi; \
	done
	rmdir $(D)$(DATADIR) $(D)$(SYSCONFDIR)/gemroute 2>/dev/null || true

.PHONY: install uninstall

deps:
	@tools/deps.sh
	@tests/sdk_deps.sh

# What the benchmarks link (hiredis) and run (Redis, gnuplot, callgrind,
# wrk and nginx for the gateway's section),
# installed before their programs are built.
bench-deps:
	@tools/deps.sh libhiredis-dev redis-server gnuplot-nox valgrind wrk nginx

clean:
	rm -rf build bin lib

.PHONY: all tests test check fuzz fuzzers soak bench-deps lint demo bench deps clean
.PHONY: demo-cluster
.DELETE_ON_ERROR:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
