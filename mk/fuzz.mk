# mk/fuzz.mk -- fuzzing (test/fuzz/). Included by the Makefile.
#
#   make fuzz              builds every target with clang and libFuzzer
#                          (-fsanitize=fuzzer,address,undefined; the library
#                          too, so its branches guide the search) into
#                          $(BUILD)/fuzz/, then runs each for FUZZ_SECONDS,
#                          one after the other, under nice. New inputs go to
#                          $(BUILD)/fuzz/corpus/<target>/, crashes to
#                          $(BUILD)/fuzz/artifacts/. Installs clang and the
#                          libFuzzer runtime (Debian: $(FUZZ_DEB_PACKAGES))
#                          when missing and root; otherwise says what to do.
#   make fuzz-build        only builds them
#   make fuzz-replay       runs every file of test/fuzz/corpus/<target>/
#                          through its target once, built with $(CC) and
#                          linked with $(BUILD)'s libulog.a: no clang, no
#                          libFuzzer, a few seconds. Under SANITIZE=1 that
#                          is gcc with ASan and UBSan. This is the CI check.
#   make fuzz-corpus       rewrites the seed-* files of test/fuzz/corpus/
#                          with test/fuzz/gen_corpus.c (other files stay)
#
#   FUZZ_TARGETS=batch     a subset of: $(FUZZ_ALL)
#   FUZZ_SECONDS=600       per target (default 60)
#   FUZZ_FLAGS=...         more libFuzzer flags, e.g. -jobs=2 -workers=2
#   FUZZ_CC=clang-14       the clang to use
#
# A crash: the artifact file is the input. Reproduce with
#   $(BUILD)/fuzz/fuzz_<target> <artifact>   or
#   $(BUILD)/fuzz-replay/fuzz_<target> -v <artifact>
# and once fixed, copy it into test/fuzz/corpus/<target>/ under a name that
# says what it caught, so that fuzz-replay keeps checking it.

FUZZ_ALL          := batch recover meta config
FUZZ_TARGETS      ?= $(FUZZ_ALL)
FUZZ_SECONDS      ?= 60
FUZZ_FLAGS        ?=
FUZZ_CC           ?= clang
FUZZ_DEB_PACKAGES := clang libclang-rt-dev

FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CORPUS  := test/fuzz/corpus
FUZZ_HDRS    := test/fuzz/fuzz.h lib/internal.h include/ulog.h
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARNINGS) -pthread -Iinclude -Ilib $(LMDB_CFLAGS) \
                -O1 -g $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(LIB_SRCS:lib/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB     := $(FUZZ_DIR)/libulog-fuzz.a
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_STAMP   := $(FUZZ_DIR)/.flags
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz-replay/fuzz_%)

# Longest input per target: a few batches, a few segments, some entries.
FUZZ_MAX_LEN_batch   := 4096
FUZZ_MAX_LEN_recover := 8192
FUZZ_MAX_LEN_meta    := 4096
FUZZ_MAX_LEN_config  := 1024

FUZZ_ENV = UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

ifneq ($(filter-out $(FUZZ_ALL),$(FUZZ_TARGETS)),)
$(error FUZZ_TARGETS: unknown target(s) $(filter-out $(FUZZ_ALL),$(FUZZ_TARGETS)); known: $(FUZZ_ALL))
endif

.PHONY: fuzz fuzz-build fuzz-replay fuzz-corpus fuzz-toolchain

# clang with the libFuzzer runtime: a program that links with
# -fsanitize=fuzzer. On Debian that is clang plus libclang-rt-dev.
fuzz-toolchain:
	@mkdir -p $(FUZZ_DIR)
	@probe() { printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	    | $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -x c - -o $(FUZZ_DIR)/.probe \
	    >/dev/null 2>&1; }; \
	if probe; then rm -f $(FUZZ_DIR)/.probe; exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make fuzz: $(FUZZ_CC) cannot link a libFuzzer program; installing $(FUZZ_DEB_PACKAGES)"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(FUZZ_DEB_PACKAGES) \
	    || exit 1; \
	    probe && { rm -f $(FUZZ_DIR)/.probe; exit 0; }; \
	fi; \
	echo "make fuzz: '$(FUZZ_CC) -fsanitize=fuzzer' does not work here: install clang and its" \
	     "libFuzzer runtime (Debian: sudo apt-get install $(FUZZ_DEB_PACKAGES))," \
	     "or set FUZZ_CC. 'make fuzz-replay' needs neither." >&2; \
	exit 1

# Rewritten only when the compiler or the flags change.
$(FUZZ_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(FUZZ_CC) | $(FUZZ_CFLAGS) | $(LDFLAGS) | $(LIBS))' > $@.new; \
	if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

# The library with coverage instrumentation, so that libFuzzer sees its
# branches; its own archive, apart from $(BUILD)'s.
$(FUZZ_DIR)/obj/%.o: lib/%.c $(FUZZ_STAMP) | fuzz-toolchain
	@mkdir -p $(@D)
	$(say) FUZZCC $<
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fvisibility=hidden -fsanitize=fuzzer-no-link \
	    -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	$(say) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $(FUZZ_LIB_OBJS)

$(FUZZ_DIR)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_HDRS) $(FUZZ_LIB) $(FUZZ_STAMP) | fuzz-toolchain
	$(say) FUZZLD $@
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(FUZZ_LIB) $(LIBS)

-include $(FUZZ_LIB_OBJS:.o=.d)

fuzz-build: $(FUZZ_BINS)

# Each run's output goes to $(FUZZ_DIR)/<target>.log; shown are its summary
# lines, or its tail when it failed.
fuzz: $(FUZZ_BINS)
	$(Q)for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts || exit 1; \
	    case $$t in batch) len=$(FUZZ_MAX_LEN_batch);; recover) len=$(FUZZ_MAX_LEN_recover);; \
	                meta) len=$(FUZZ_MAX_LEN_meta);; *) len=$(FUZZ_MAX_LEN_config);; esac; \
	    echo "== fuzz $$t for $(FUZZ_SECONDS)s: seeds $(FUZZ_CORPUS)/$$t, finds $(FUZZ_DIR)/corpus/$$t, log $(FUZZ_DIR)/$$t.log"; \
	    $(FUZZ_ENV) nice -n 10 $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -max_len=$$len \
	        -artifact_prefix=$(abspath $(FUZZ_DIR))/artifacts/$$t- $(FUZZ_FLAGS) \
	        $(FUZZ_DIR)/corpus/$$t $(FUZZ_CORPUS)/$$t > $(FUZZ_DIR)/$$t.log 2>&1; \
	    rc=$$?; \
	    if [ $$rc != 0 ]; then \
	        tail -n 60 $(FUZZ_DIR)/$$t.log; \
	        echo "FAIL: fuzz $$t (exit $$rc): the input is in $(FUZZ_DIR)/artifacts/$$t-*" >&2; \
	        exit 1; \
	    fi; \
	    grep -E '^(INFO: seed corpus|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' \
	        $(FUZZ_DIR)/$$t.log | sed 's/^/   /'; \
	    grep -E '^#[0-9]+' $(FUZZ_DIR)/$$t.log | tail -n 1 | sed 's/^/   /'; \
	done
	@echo "make fuzz: no failure in $(FUZZ_TARGETS), $(FUZZ_SECONDS)s each"

# ------------------------------------------------------------------ replay

$(BUILD)/fuzz-replay/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/replay.c $(FUZZ_HDRS) $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(TEST_CFLAGS) $(LMDB_CFLAGS) $(LDFLAGS) -o $@ $< test/fuzz/replay.c \
	    $(STATIC_LIB) $(LIBS)

fuzz-replay: $(FUZZ_REPLAY_BINS)
	$(Q)for t in $(FUZZ_TARGETS); do \
	    echo "== $(BUILD)/fuzz-replay/fuzz_$$t $(FUZZ_CORPUS)/$$t"; \
	    $(FUZZ_ENV) $(BUILD)/fuzz-replay/fuzz_$$t $(FUZZ_CORPUS)/$$t \
	        || { echo "FAIL: fuzz-replay $$t (exit $$?); rerun with -v to see each input" >&2; exit 1; }; \
	done

# ------------------------------------------------------------------ seeds

$(BUILD)/fuzz-replay/gen_corpus: test/fuzz/gen_corpus.c lib/internal.h include/ulog.h $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

fuzz-corpus: $(BUILD)/fuzz-replay/gen_corpus
	$(Q)rm -f $(FUZZ_ALL:%=$(FUZZ_CORPUS)/%/seed-*)
	$(Q)$(BUILD)/fuzz-replay/gen_corpus $(FUZZ_CORPUS)
	@for t in $(FUZZ_ALL); do \
	    printf '  %-8s %3d files, %6d bytes\n' $$t $$(ls $(FUZZ_CORPUS)/$$t | wc -l) \
	        $$(cat $(FUZZ_CORPUS)/$$t/* | wc -c); \
	done
