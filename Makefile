# weft - build, test, install.  See README.md.
#   make                 libweft (static + shared) and every tool into bin/,
#                        one job per CPU (make -j1: one at a time)
#   make test            unit, golden, tool and bad-input tests, WEFT_TEST_JOBS
#                        at a time (default: the number of CPUs)
#   make check-asan      the same suite under AddressSanitizer + UBSan
#   make fuzz            libFuzzer harnesses, FUZZ_SECONDS each (default 60)
#   make fuzz-smoke      each harness 30 s from its seeds (CI), one per CPU at once; fuzz-long: an hour each
#   make bench           benchmarks (tests/bench), figures printed
#   make install PREFIX=/usr/local
.SUFFIXES:

# one job per CPU unless told otherwise (make -j1: one at a time; never
# beside clean, so make clean all stays in order; the top-level make only,
# so a sub-make keeps what it was given)
ifeq ($(filter -j%,$(MAKEFLAGS))$(filter clean,$(MAKECMDGOALS))$(filter-out 0,$(MAKELEVEL)),)
MAKEFLAGS += -j$(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
endif

CC       ?= cc
CLANG    ?= clang
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
PREFIX   ?= /usr/local
BUILD    ?= build
BIN      ?= bin
FUZZ_SECONDS ?= 60

PKGS     := zlib libpcre2-8 jansson libpng libjpeg
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lz -lpcre2-8 -ljansson -lpng16 -ljpeg)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# Layers: tools -> lib -> kernels -> base; nothing includes upwards
# (tests/tools/install.sh checks it).  -MMD -MP: header dependencies per object.
INCLUDES := -Ilib -Ikernels -Ibase
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -fPIC -MMD -MP \
             $(INCLUDES) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS   = $(PKG_LIBS) -lm -lpthread

SOVER    := 0
LIB_SRC  := $(sort $(wildcard base/*.c) $(wildcard lib/*.c) $(wildcard kernels/*.c))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOLS    := $(patsubst tools/%.c,$(BIN)/%,$(TOOL_SRC))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TESTS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCHES  := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
# The installed (public) headers; every other header is internal, and its
# declarations are hidden from libweft.so (tests/check-exports.sh).
HEADERS  := base/util.h base/ggml_types.h kernels/kernels.h \
            $(sort $(filter-out %_int.h,$(wildcard lib/*.h)) $(wildcard lib/*.def))

# ---- CUDA (make CUDA=1; see README, kernels/README.md) -------------------
# kernels/cuda/*.cu compiled by nvcc into libweft (cudart linked
# statically), every C object with -DWEFT_CUDA=1, tests/gpu/test_cuda_ops
# among the unit tests.  The build goes to build-cuda/ (tools to
# build-cuda/bin) unless BUILD / BIN are given, so it never mixes with the
# default build.  nvcc: NVCC, else CUDA_HOME/bin/nvcc, CUDA_HOME being
# scripts/fetch-cuda's tree in the cache when present, else /usr/local/cuda
# (Debian's nvidia-cuda-toolkit: NVCC=/usr/bin/nvcc).  CUDA_ARCH: the GPUs
# compiled for (default Turing .. Hopper, plus PTX for newer ones).  Only
# compile-checked so far: the CUDA code has not run on a GPU
# (tests/gpu/run does that).  Without CUDA=1 only clean-cuda below applies.
.DEFAULT_GOAL := all
ifeq ($(CUDA),1)
CUDA_HOME ?= $(shell d=$$(scripts/cache-dir)/cuda; [ -x "$$d/bin/nvcc" ] && echo "$$d" || echo /usr/local/cuda)
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_86,code=sm_86 -gencode arch=compute_89,code=sm_89 \
             -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS ?= -O2
ifeq ($(filter clean clean-cuda,$(MAKECMDGOALS)),)
ifeq ($(shell command -v $(NVCC) 2>/dev/null),)
$(error CUDA=1: no nvcc at $(NVCC); run scripts/fetch-cuda, or set NVCC or CUDA_HOME)
endif
endif
ifeq ($(origin BUILD),file)
cuda_reloc = $(patsubst $(BUILD)/%,build-cuda/%,$(patsubst $(BIN)/%,build-cuda/bin/%,$(1)))
LIB_OBJ   := $(call cuda_reloc,$(LIB_OBJ))
TOOLS     := $(call cuda_reloc,$(TOOLS))
TESTS     := $(call cuda_reloc,$(TESTS))
BENCHES   := $(call cuda_reloc,$(BENCHES))
BUILD     := build-cuda
BIN       := build-cuda/bin
endif
CUDA_SRC  := $(sort $(wildcard kernels/cuda/*.cu))
CUDA_OBJ  := $(patsubst %.cu,$(BUILD)/%.o,$(CUDA_SRC))
LIB_OBJ   += $(CUDA_OBJ)
TESTS     += $(BUILD)/tests/test_cuda_ops $(BUILD)/tests/test_cuda_forward
ALL_CFLAGS += -DWEFT_CUDA=1
LDLIBS    += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -lcudart_static -ldl -lrt
# the .cu objects are rebuilt when nvcc or its flags change (CUDA_ARCH ...)
cuda_flags := $(NVCC) $(NVCCFLAGS) $(CUDA_ARCH)
$(shell mkdir -p $(BUILD)/kernels/cuda; [ "$$(cat $(BUILD)/kernels/cuda/flags 2>/dev/null)" = '$(cuda_flags)' ] || \
  printf '%s\n' '$(cuda_flags)' >$(BUILD)/kernels/cuda/flags)
$(BUILD)/kernels/cuda/%.o: kernels/cuda/%.cu Makefile $(BUILD)/kernels/cuda/flags
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 $(NVCCFLAGS) $(CUDA_ARCH) -DWEFT_CUDA=1 $(INCLUDES) -Ikernels/cuda \
	  -Xcompiler -fPIC,-fvisibility=hidden,-fno-exceptions,-fno-threadsafe-statics,-Wall \
	  -MMD -MP -c -o $@ $<
$(BUILD)/tests/test_cuda_ops: tests/gpu/test_cuda_ops.c $(BUILD)/libweft.a
	@mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -MF $@.d -Itests/unit -Ikernels/cuda -o $@ $< $(BUILD)/libweft.a $(LDLIBS)
$(BUILD)/tests/test_cuda_forward: tests/gpu/test_cuda_forward.c $(BUILD)/libweft.a
	@mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -MF $@.d -Itests/unit -Ikernels/cuda -o $@ $< $(BUILD)/libweft.a $(LDLIBS)
$(BUILD)/tests/bench_cuda_ops $(BUILD)/tests/bench_cuda_llm: $(BUILD)/tests/%: tests/gpu/%.c $(BUILD)/libweft.a
	@mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -MF $@.d -Ikernels/cuda -o $@ $< $(BUILD)/libweft.a $(LDLIBS)
-include $(BUILD)/tests/bench_cuda_ops.d $(BUILD)/tests/bench_cuda_llm.d
endif
clean: clean-cuda
clean-cuda:
	rm -rf build-cuda
.PHONY: clean-cuda
# ---- end of CUDA -------------------------------------------------------------

all: $(BUILD)/libweft.a $(BUILD)/libweft.so.$(SOVER) $(TOOLS)

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(KFLAGS) -c -o $@ $<

# SIMD kernels are compiled for their instruction set only; kernels/backend.c
# calls them after checking CPUID.
$(BUILD)/kernels/%_avx2.o: KFLAGS = -mavx2 -mfma -mf16c
$(BUILD)/kernels/%_avx512.o: KFLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq \
	-mavx512vnni -mavx512bf16

$(BUILD)/libweft.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BUILD)/libweft.so.$(SOVER): $(LIB_OBJ) lib/libweft.map
	$(CC) -shared -Wl,-soname,libweft.so.$(SOVER) -Wl,--version-script=lib/libweft.map \
	  $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)

$(BIN)/%: tools/%.c $(BUILD)/libweft.a
	@mkdir -p $(BIN) $(BUILD)/dep
	$(CC) $(ALL_CFLAGS) -MF $(BUILD)/dep/$*.d -o $@ $< $(BUILD)/libweft.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libweft.a
	@mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -MF $@.d -Itests/unit -o $@ $< $(BUILD)/libweft.a $(LDLIBS)

# The installed tree the tests check (tests/tools/install.sh: each public
# header compiles alone, a program links with pkg-config's flags,
# libweft.so exports exactly the public headers' functions).
STAGE := $(BUILD)/stage
stage: all
	@rm -rf $(STAGE)
	@$(MAKE) --no-print-directory -s install DESTDIR=$(abspath $(STAGE)) PREFIX=/usr/local >/dev/null

test: all $(TESTS) stage
	WEFT_BIN=$(BIN) WEFT_TESTBIN=$(BUILD)/tests WEFT_STAGE=$(STAGE) \
	  WEFT_SAN_FLAGS="$(filter -fsanitize% -fno-sanitize%,$(CFLAGS))" sh tests/run

ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
check-asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin CFLAGS="$(ASAN_FLAGS)" test

FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZERS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
fuzz-lib:
	@$(MAKE) --no-print-directory BUILD=build-fuzz/lib CC=$(CLANG) \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" build-fuzz/lib/libweft.a
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c fuzz-lib
	$(CLANG) -std=c11 -D_DEFAULT_SOURCE $(INCLUDES) $(PKG_CFLAGS) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) \
	  -o $@ $< build-fuzz/lib/libweft.a $(LDLIBS)
fuzz-build: $(FUZZERS)
fuzz: $(FUZZERS)
	@mkdir -p build-fuzz/artifacts; for f in $(FUZZERS); do \
	  n=$${f#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
	  echo "fuzz $$n: $(FUZZ_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) -artifact_prefix=build-fuzz/artifacts/$$n- \
	     build-fuzz/corpus-$$n tests/fuzz/seeds/$$n 2>build-fuzz/$$n.log || { tail -n 40 build-fuzz/$$n.log; exit 1; }; \
	  grep -aE 'stat::number_of_executed_units|Done' build-fuzz/$$n.log | tail -n 2; \
	done

# CI's smoke run: each harness FUZZ_SMOKE_SECONDS from an empty corpus plus
# the committed seeds; fuzz-long: hours, keeping its corpus (crashers go to
# build-fuzz/artifacts; add them to tests/fuzz/seeds/<harness> as regressions).
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_LONG_SECONDS ?= 3600
FUZZ_FLAGS := -print_final_stats=1 -max_len=65536 -timeout=60 -rss_limit_mb=4096
# one target per harness, so make -jN fuzz-smoke runs N at once
FUZZ_SMOKE := $(patsubst build-fuzz/fuzz_%,fuzz-smoke-%,$(FUZZERS))
fuzz-smoke: $(FUZZ_SMOKE)
$(FUZZ_SMOKE): fuzz-smoke-%: build-fuzz/fuzz_%
	@n=$*; mkdir -p build-fuzz/artifacts; rm -rf build-fuzz/smoke-$$n; mkdir -p build-fuzz/smoke-$$n; \
	  echo "fuzz-smoke $$n: $(FUZZ_SMOKE_SECONDS) s from tests/fuzz/seeds/$$n"; \
	  $< -max_total_time=$(FUZZ_SMOKE_SECONDS) $(FUZZ_FLAGS) -artifact_prefix=build-fuzz/artifacts/$$n- \
	     build-fuzz/smoke-$$n tests/fuzz/seeds/$$n 2>build-fuzz/$$n.smoke.log || { tail -n 40 build-fuzz/$$n.smoke.log; exit 1; }; \
	  echo "fuzz-smoke $$n: $$(grep -a 'stat::number_of_executed_units' build-fuzz/$$n.smoke.log)"
fuzz-long: $(FUZZERS)
	@mkdir -p build-fuzz/artifacts; for f in $(FUZZERS); do \
	  n=$${f#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
	  echo "fuzz-long $$n: $(FUZZ_LONG_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_LONG_SECONDS) $(FUZZ_FLAGS) -artifact_prefix=build-fuzz/artifacts/$$n- \
	     build-fuzz/corpus-$$n tests/fuzz/seeds/$$n 2>build-fuzz/$$n.long.log || { tail -n 40 build-fuzz/$$n.long.log; exit 1; }; \
	  grep -a 'stat::number_of_executed_units' build-fuzz/$$n.long.log; \
	done

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libweft.a
	@mkdir -p $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) -MF $@.d -o $@ $< $(BUILD)/libweft.a $(LDLIBS)

bench: all $(BENCHES)
	WEFT_BIN=$(BIN) WEFT_BENCHBIN=$(BUILD)/bench sh tests/bench/run

install: all
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/weft $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	cp $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	cp $(BUILD)/libweft.a $(BUILD)/libweft.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libweft.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libweft.so
	cp $(HEADERS) $(DESTDIR)$(PREFIX)/include/weft/
	cp man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	cp man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define WEFT_VERSION "\(.*\)"/\1/p' base/util.h)|' \
	  -e 's|@PKGS@|$(PKGS)|' lib/weft.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc

clean:
	rm -rf build build-asan build-fuzz bin

-include $(LIB_OBJ:.o=.d) $(TESTS:=.d) $(BENCHES:=.d) $(patsubst $(BIN)/%,$(BUILD)/dep/%.d,$(TOOLS))

.PHONY: all test stage check-asan fuzz-smoke $(FUZZ_SMOKE) fuzz-long fuzz fuzz-lib fuzz-build bench install clean

# make plot SUMMARIES='run-*.summary.json' PLOT=budget.png: accuracy and
# time to first token against the visual tokens kept, one point per
# eval-interleaved summary (man 1 eval-interleaved; needs gnuplot).
SUMMARIES ?= $(wildcard tests/data/eval/summaries/*.json)
PLOT ?= $(BUILD)/plot.png
plot: $(BIN)/eval-interleaved
	$(BIN)/eval-interleaved plot $(SUMMARIES) -o $(PLOT)

.PHONY: plot

# The accuracy sweeps through eval-interleaved (minutes; run nice'd):
# make kv-accuracy: every kvcompress method at ratios 0.25..0.9 on
# SmolLM2-135M and the short retrieval set (scripts/kv-accuracy, the table
# in man 1 kvcompress ACCURACY); make prune-accuracy: every prune-tokens
# method at 7, 14, 21 of 64 visual tokens on the demo VLM
# (scripts/prune-accuracy, man 1 prune-tokens ACCURACY).  Results in
# build/kv-accuracy, build/prune-accuracy (table.tsv, summaries, PNG).
kv-accuracy: all
	WEFT_BIN=$(BIN) nice -n 10 scripts/kv-accuracy $(BUILD)/kv-accuracy
prune-accuracy: all
	WEFT_BIN=$(BIN) nice -n 10 scripts/prune-accuracy $(BUILD)/prune-accuracy

.PHONY: kv-accuracy prune-accuracy
