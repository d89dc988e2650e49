# gemroute - one Makefile for the whole tree.
#
#   make            build bin/gemrouted, bin/gemroute, bin/gemroute-mock,
#                   bin/gemroute-gateway, lib/libgemroute.a and
#                   lib/libgemroute.so
#   make test       every unit, integration and stress test
#   make check      the tests again under ASan+UBSan, stress under TSan,
#                   and a 20 s smoke of each fuzzer
#   make lint       the mechanical rules of STYLE.md
#   make fuzz       the libFuzzer harnesses, a few minutes each
#   make soak       64 clients for 10 minutes with faults and kills
#   make bench      micro-benchmarks, written to docs/BENCHMARKS.md
#   make demo       the router in front of the bundled mock Gemini server
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
        -Wmissing-prototypes -Wvla -Werror
ALL_CFLAGS = $(WARN) $(CFLAGS) -D_GNU_SOURCE -fPIC -pthread $(SAN_FLAGS) \
             -MMD -MP
LDFLAGS_ALL = -pthread $(SAN_FLAGS) $(LDFLAGS)

pc = $(shell pkg-config --$(1) $(2) 2>/dev/null)
CONFIG_LIBS := $(or $(call pc,libs,libconfig),-lconfig)
JSON_CFLAGS := $(call pc,cflags,json-c)
JSON_LIBS := $(or $(call pc,libs,json-c),-ljson-c)
CURL_LIBS := $(or $(call pc,libs,libcurl),-lcurl)
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
$(OBJ)/tools/gemroute/%.o: MODFLAGS := -Itools/gemroute -Iinclude -Iclient \
                                       -Ishm $(JSON_CFLAGS)
$(OBJ)/tools/mock/%.o: MODFLAGS := -Itools/mock -Ishm $(JSON_CFLAGS)
$(OBJ)/gateway/%.o: MODFLAGS := -Igateway -Iinclude -Iconfig $(JSON_CFLAGS)
$(OBJ)/tools/bench/%.o: MODFLAGS := -Itools/bench -Iinclude -Iclient -Ishm
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

all: $(PROGS) $(LIBGR_A) $(LIBGR_SO)

$(LIBGR_A): $(SHM_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBGR_SO): $(SHM_OBJ) $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS)

$(BIN)/gemrouted: $(OBJ)/router/main.o $(ROUTER_OBJ) $(CONFIG_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CONFIG_LIBS) -lm

$(BIN)/gemroute: $(OBJ)/tools/gemroute/main.o $(CLI_OBJ) $(CLIENT_OBJ) \
                 $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) -lm

$(BIN)/gemroute-mock: $(OBJ)/tools/mock/main.o $(MOCK_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(MHD_LIBS) $(CONFIG_LIBS) $(JSON_LIBS) -lm

$(BIN)/gemroute-gateway: $(OBJ)/gateway/main.o $(GATEWAY_OBJ) $(CONFIG_OBJ) \
                         $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(MHD_LIBS) $(CONFIG_LIBS) $(JSON_LIBS) \
	    $(CURL_LIBS) -lm

HIREDIS_LIBS := $(or $(call pc,libs,hiredis),-lhiredis)
BENCH_RESERVE_OBJ := $(call objs,tools/bench/bench_reserve.c \
                       tools/bench/harness.c tools/bench/impl_gemroute.c \
                       tools/bench/mutex_table.c tools/bench/redis_window.c \
                       tests/stress/checker.c)

$(BIN)/gr-bench-reserve: $(BENCH_RESERVE_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(HIREDIS_LIBS) $(JSON_LIBS) \
	    $(CURL_LIBS) -lm

$(BIN)/gr-bench-e2e: $(call objs,tools/bench/bench_e2e.c \
                       tools/bench/e2e_calls.c) $(CLIENT_OBJ) $(SHM_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(JSON_LIBS) $(CURL_LIBS) -lm

# Tests.  Every tests/unit/test_NAME.c and tests/stress/NAME.c becomes
# $(BUILD)/tests/NAME linked with the objects TEST_DEPS_NAME lists.
TESTLIB_OBJ := $(call objs,tests/testlib.c)
TEST_DEPS_test_clock := $(SHM_OBJ)
TEST_DEPS_test_shm := $(SHM_OBJ)
TEST_DEPS_test_config := $(CONFIG_OBJ)
TEST_DEPS_test_router := $(ROUTER_OBJ) $(CONFIG_OBJ) $(CLIENT_OBJ) \
                         $(SHM_OBJ)
TEST_DEPS_test_client := $(CLIENT_OBJ) $(SHM_OBJ)
TESTROUTER_OBJ := $(call objs,tests/testrouter.c)
TEST_DEPS_test_lease := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_batch := $(TESTROUTER_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_classify := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_json_scan := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_mock := $(MOCK_OBJ) $(SHM_OBJ)
TEST_DEPS_stress_hostile := $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_stress_admission := $(call objs,tests/stress/checker.c) \
                              $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_test_status := $(CLI_OBJ) $(CLIENT_OBJ) $(SHM_OBJ)
TEST_DEPS_stress_reload := $(call objs,tests/stress/checker.c) \
                           $(CLIENT_OBJ) $(SHM_OBJ)
TEST_LIBS := $(CONFIG_LIBS) $(JSON_LIBS) $(CURL_LIBS) $(MHD_LIBS) \
             $(CUNIT_LIBS) -lm

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

soak: deps all
	SOAK_SECONDS=$${SOAK_SECONDS:-600} tests/soak/run_soak.sh

fuzz: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-180} tools/fuzz.sh

lint:
	tools/lint.sh

demo: deps all
	tools/demo.sh

bench: deps bench-deps all $(BENCH_PROGS)
	tools/bench.sh

# The same sections, fewer configurations, a shorter steady run: < 60 s.
bench-quick: deps bench-deps all $(BENCH_PROGS)
	tools/bench.sh --quick

.PHONY: bench-quick

deps:
	@tools/deps.sh
	@tests/sdk_deps.sh

# What the benchmarks link (hiredis) and run (Redis, gnuplot, callgrind),
# installed before their programs are built.
bench-deps:
	@tools/deps.sh libhiredis-dev redis-server gnuplot-nox valgrind

clean:
	rm -rf build bin lib

.PHONY: all tests test check fuzz soak bench-deps lint demo bench deps clean
.DELETE_ON_ERROR:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
