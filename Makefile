# Makefile -- build, test and install ulog. Plain GNU Make, no recursion into
# subdirectories.
#
#   make                  libulog.a and libulog.so in $(BUILD)/
#   make check            installs missing Debian packages (make deps) first,
#                         then builds and runs every check (see "check" below)
#   make SANITIZE=1 check the same under ASan+UBSan, in build-asan/
#   make demo             runs examples/demo.c in a fresh directory
#   make bench            builds and runs bench/*.c (not part of check)
#   make install          PREFIX DESTDIR LIBDIR INCLUDEDIR MANDIR PKGCONFIGDIR
#   make V=1 ...          show full command lines
#
# The version comes from include/ulog.h and nowhere else.

.SUFFIXES:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

# ------------------------------------------------------------------ settings

PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=

SANITIZE     ?= 0
ifeq ($(SANITIZE),1)
BUILD        ?= build-asan
else
BUILD        ?= build
endif

CFLAGS       ?= -O2 -g
PKG_CONFIG   ?= pkg-config
INSTALL      ?= install
# Seconds one test binary may run before it is killed (a hang must not eat CI).
TEST_TIMEOUT ?= 600

# Debian packages that `make deps` installs when missing.
DEB_PACKAGES := liblmdb-dev libsodium-dev libcriterion-dev pkg-config mandoc librdkafka-dev

# ------------------------------------------------------------------ version

# ULOG_VERSION_MAJOR/MINOR/PATCH lines of include/ulog.h.
ulog_version_field = $(shell awk '$$2 == "ULOG_VERSION_$(1)" && $$1 ~ /define$$/ { print $$3; exit }' include/ulog.h)
VERSION_MAJOR := $(call ulog_version_field,MAJOR)
VERSION_MINOR := $(call ulog_version_field,MINOR)
VERSION_PATCH := $(call ulog_version_field,PATCH)
ifeq ($(and $(VERSION_MAJOR),$(VERSION_MINOR),$(VERSION_PATCH)),)
$(error cannot read ULOG_VERSION_MAJOR/MINOR/PATCH from include/ulog.h)
endif
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

# ------------------------------------------------------------------ flags

WARNINGS     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(SANITIZE),1)
SAN_FLAGS    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# gcc links the shared sanitizer runtimes into a -shared link, clang does not;
# --no-undefined is checked by the plain build.
NO_UNDEFINED :=
else
SAN_FLAGS    :=
NO_UNDEFINED := -Wl,--no-undefined
endif

LMDB_CFLAGS  := $(shell $(PKG_CONFIG) --cflags lmdb 2>/dev/null)
LMDB_LIBS    := $(or $(shell $(PKG_CONFIG) --libs lmdb 2>/dev/null),-llmdb)
SODIUM_CFLAGS := $(shell $(PKG_CONFIG) --cflags libsodium 2>/dev/null)
SODIUM_LIBS  := $(or $(shell $(PKG_CONFIG) --libs libsodium 2>/dev/null),-lsodium)
# Everything libulog itself links against (also in Requires.private in
# pkgconfig/ulog.pc.in).
LIBS         := $(LMDB_LIBS) $(SODIUM_LIBS) -pthread

# The library: position-independent objects shared by the .a and the .so.
LIB_CFLAGS   := -std=c11 -D_GNU_SOURCE $(WARNINGS) -fPIC -fvisibility=hidden \
                -pthread -Iinclude -Ilib $(LMDB_CFLAGS) $(SODIUM_CFLAGS) $(CFLAGS) $(SAN_FLAGS)
# Tests and benchmarks may include lib/internal.h; they link libulog.a.
TEST_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARNINGS) -pthread -Iinclude -Ilib \
                $(CFLAGS) $(SAN_FLAGS)
BENCH_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) -pthread -Iinclude -Ilib -O2 -g
# Examples see <ulog.h> only, like a program built against the installed
# library, and plain C11 + POSIX.
EXAMPLE_STD    := -std=c11 -D_POSIX_C_SOURCE=200809L
EXAMPLE_CFLAGS := $(EXAMPLE_STD) $(WARNINGS) -Iinclude $(CFLAGS) $(SAN_FLAGS)
# The public header alone, as strict C99 and as C++11.
HEADER_CFLAGS   := -std=c99 -pedantic -Wall -Wextra -Werror -Wshadow \
                   -Wstrict-prototypes -Wundef -Iinclude
HEADER_CXXFLAGS := -std=c++11 -Wall -Wextra -Werror -Iinclude

# ------------------------------------------------------------------ files

LIB_SRCS     := $(sort $(wildcard lib/*.c))
LIB_OBJS     := $(LIB_SRCS:lib/%.c=$(BUILD)/obj/%.o)
TEST_SRCS    := $(sort $(wildcard test/test_*.c))
TEST_BINS    := $(TEST_SRCS:test/%.c=$(BUILD)/test/%)
# Linked into every test binary (see test/leakcheck.c).
TEST_SUPPORT := $(BUILD)/test/leakcheck.o
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
BENCH_SRCS   := $(sort $(wildcard bench/*.c))
BENCH_BINS   := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
MAN_PAGES    := $(sort $(wildcard man/*.[1-9]))

STATIC_LIB   := $(BUILD)/libulog.a
SONAME       := libulog.so.$(VERSION_MAJOR)
SHARED_LIB   := $(BUILD)/libulog.so.$(VERSION)
SHARED_LINKS := $(BUILD)/$(SONAME) $(BUILD)/libulog.so
HEADER_OK    := $(BUILD)/test/header_alone.ok
FLAGS_STAMP  := $(BUILD)/.flags
SCRATCH      := $(BUILD)/tmp
STAGE        := $(BUILD)/stage

# ------------------------------------------------------------------ output

V ?= 0
ifeq ($(V),1)
Q   :=
say := @:
else
Q   := @
say := @printf '  %-7s %s\n'
endif

# ------------------------------------------------------------------ library

.PHONY: all
all: $(STATIC_LIB) $(SHARED_LIB) $(SHARED_LINKS)

# Rewritten only when the compiler or the flags change, so that switching
# CFLAGS or CC rebuilds everything that depends on them.
FLAGS_TEXT = $(CC) | $(CXX) | $(LIB_CFLAGS) | $(TEST_CFLAGS) | $(EXAMPLE_CFLAGS) | $(BENCH_CFLAGS) | $(LDFLAGS) | $(LIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(FLAGS_TEXT))' > $@.new; \
	if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

$(BUILD)/obj/%.o: lib/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(LIB_CFLAGS) -MMD -MP -c -o $@ $<

$(STATIC_LIB): $(LIB_OBJS)
	$(say) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $(LIB_OBJS)

$(SHARED_LIB): $(LIB_OBJS) lib/ulog.map
	$(say) LD $@
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/ulog.map \
	    $(NO_UNDEFINED) $(SAN_FLAGS) $(LDFLAGS) -o $@ $(LIB_OBJS) $(LIBS)

$(BUILD)/$(SONAME): $(SHARED_LIB)
	$(Q)ln -sf $(notdir $<) $@

$(BUILD)/libulog.so: $(BUILD)/$(SONAME)
	$(Q)ln -sf $(notdir $<) $@

# ------------------------------------------------------------------ programs

$(TEST_SUPPORT): test/leakcheck.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(Q)$(CC) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/test/%: test/%.c $(TEST_SUPPORT) $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(TEST_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(TEST_SUPPORT) $(TEST_EXTRA) $(STATIC_LIB) -lcriterion $(LIBS)

# test_replicate runs the replication example, so that comes with it (also
# in builds that make the tests alone, such as coverage).
$(BUILD)/test/test_replicate: | $(BUILD)/examples/replicate

$(BUILD)/examples/%: examples/%.c $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(EXAMPLE_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(BENCH_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

$(HEADER_OK): test/header_alone.c include/ulog.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) HEADER "$< (C99 -pedantic)"
	$(Q)$(CC) $(HEADER_CFLAGS) -c -o $(@D)/header_alone.o $<
	$(Q)if command -v $(CXX) >/dev/null 2>&1; then \
	    printf '  %-7s %s\n' HEADER "$< (C++11)"; \
	    $(CXX) $(HEADER_CXXFLAGS) -x c++ -fsyntax-only $<; \
	else \
	    echo "  (no $(CXX): the C++ compile of the header is skipped)"; \
	fi
	$(Q)touch $@

-include $(LIB_OBJS:.o=.d) $(TEST_BINS:=.d) $(EXAMPLE_BINS:=.d) $(BENCH_BINS:=.d)

# ------------------------------------------------------------------ deps

# Installs the Debian packages the build and the checks need, only those
# missing; quiet when none is. Not root: says what is missing and fails.
.PHONY: deps
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	    echo "make deps: not a Debian system; make sure these (or their" \
	         "equivalents) are installed: $(DEB_PACKAGES)"; \
	    exit 0; \
	fi; \
	missing=; \
	for p in $(DEB_PACKAGES); do \
	    s=$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null || true); \
	    [ "$$s" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "make deps: missing Debian packages:$$missing" >&2; \
	    echo "make deps: run 'sudo make deps', or: sudo apt-get install$$missing" >&2; \
	    exit 1; \
	fi; \
	echo "make deps: installing$$missing"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

# ------------------------------------------------------------------ check

# deps runs first, in its own make, so that pkg-config and the libraries are
# there when the second make reads this file and compiles anything.
.PHONY: check
check:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory check-all

# Everything is built first (in parallel under -j), then the checks run one
# after the other in a fixed order, stopping at the first failure.
.PHONY: check-all
check-all: all $(TEST_BINS) $(EXAMPLE_BINS) $(HEADER_OK)
	$(run-check-api)
	$(run-check-man)
	$(run-check-tests)
	$(run-check-examples)
	$(run-check-python)
	$(run-check-cli)
	$(run-check-install)
	@echo "make check: all checks passed ($(BUILD), version $(VERSION))"

# The individual checks, for use during development (they do not run deps).
.PHONY: check-api check-header check-man check-tests check-examples check-install
check-api: $(SHARED_LIB) $(HEADER_OK)
	$(run-check-api)
check-header: $(HEADER_OK)
check-man:
	$(run-check-man)
check-tests: $(TEST_BINS)
	$(run-check-tests)
check-examples: $(EXAMPLE_BINS)
	$(run-check-examples)
check-install: all
	$(run-check-install)

# ULOG_API declarations of the header: "ULOG_API <type> ulog_name(" lines.
HEADER_SYMBOLS_CMD = sed -n 's/^[[:space:]]*ULOG_API[[:space:]][^(]*[^A-Za-z0-9_]\(ulog_[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' include/ulog.h | LC_ALL=C sort

# The exported symbols of the shared library must be exactly the committed
# list, and the committed list exactly the ULOG_API declarations; the
# version string must agree with the MAJOR/MINOR/PATCH lines.
define run-check-api
	@echo "== exported symbols of $(SHARED_LIB) vs test/exported-symbols.txt"
	$(Q)nm -D --defined-only $(SHARED_LIB) \
	    | awk '$$2 != "A" { sub(/@.*/, "", $$3); print $$3 }' \
	    | LC_ALL=C sort > $(BUILD)/exported-symbols.actual
	$(Q)diff -u test/exported-symbols.txt $(BUILD)/exported-symbols.actual \
	    || { echo "FAIL: exported symbols differ from test/exported-symbols.txt (- expected, + exported)" >&2; exit 1; }
	@echo "== ULOG_API declarations in include/ulog.h vs test/exported-symbols.txt"
	$(Q)$(HEADER_SYMBOLS_CMD) > $(BUILD)/exported-symbols.header
	$(Q)diff -u test/exported-symbols.txt $(BUILD)/exported-symbols.header \
	    || { echo "FAIL: ULOG_API declarations differ from test/exported-symbols.txt (- listed, + declared);" \
	              "'make exported-symbols' rewrites the list from the header" >&2; exit 1; }
	$(Q)grep -q '^#define ULOG_VERSION_STRING "$(VERSION)"' include/ulog.h \
	    || { echo "FAIL: ULOG_VERSION_STRING in include/ulog.h is not \"$(VERSION)\"" >&2; exit 1; }
	@echo "== header alone: C99 -pedantic and C++11: ok"
endef

# Prints the names a page documents: the .Nm arguments (mdoc) or the text
# before \- (man(7)) in its NAME section, plus the page's own name.
MAN_NAMES_AWK = FNR == 1 { inname = 0; f = FILENAME; sub(/.*\//, "", f); sub(/\.[^.]*$$/, "", f); print f } \
	/^\.S[Hh]([ \t]|$$)/ { inname = ($$2 == "NAME"); next } \
	!inname { next } \
	/^\.Nm([ \t]|$$)/ { for (i = 2; i <= NF; i++) { w = $$i; gsub(/[^A-Za-z0-9_]/, "", w); if (w != "") print w }; next } \
	/^[.\047]/ { next } \
	{ t = $$0; sub(/\\-.*/, "", t); n = split(t, a, /[ \t,]+/); for (i = 1; i <= n; i++) if (a[i] != "") print a[i] }

define run-check-man
	@echo "== mandoc -T lint -W warning man/*"
	$(Q)test -n "$(MAN_PAGES)" || { echo "FAIL: no man pages in man/" >&2; exit 1; }
	$(Q)mandoc -T lint -W warning $(MAN_PAGES)
	@echo "== every exported symbol has a man page"
	@mkdir -p $(BUILD)
	$(Q)awk '$(MAN_NAMES_AWK)' $(MAN_PAGES) | LC_ALL=C sort -u > $(BUILD)/man-names.txt
	$(Q)missing=$$(LC_ALL=C comm -23 test/exported-symbols.txt $(BUILD)/man-names.txt); \
	if [ -n "$$missing" ]; then \
	    echo "FAIL: exported symbols named in no man page's NAME section:" $$missing >&2; exit 1; \
	fi
	@echo "== every section 3 page has NAME, SYNOPSIS, DESCRIPTION, RETURN VALUE, ERRORS, THREAD SAFETY, EXAMPLE, SEE ALSO"
	$(Q)for f in $(filter %.3,$(MAN_PAGES)); do \
	    for s in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" ERRORS "THREAD SAFETY" EXAMPLE "SEE ALSO"; do \
	        grep -qx "\.Sh $$s" $$f || { echo "FAIL: $$f has no $$s section" >&2; exit 1; }; \
	    done; \
	done
endef

# Each test binary in turn, from the repository root, two jobs each; the
# first failing binary stops the run. TMPDIR points into $(BUILD).
define run-check-tests
	@mkdir -p $(SCRATCH)
	$(Q)for t in $(TEST_BINS); do \
	    echo "== $$t"; \
	    TMPDIR=$(abspath $(SCRATCH)) ASAN_OPTIONS=abort_on_error=1 \
	        timeout $(TEST_TIMEOUT) $$t -j2 \
	        || { echo "FAIL: $$t (exit $$?)" >&2; exit 1; }; \
	done
	$(if $(TEST_BINS),,@echo "== no test/test_*.c yet")
endef

# Each example with a fresh empty directory as argv[1]; it must exit 0.
define run-check-examples
	@mkdir -p $(SCRATCH)
	$(Q)for e in $(EXAMPLE_BINS); do \
	    echo "== $$e"; \
	    d=$$(mktemp -d $(abspath $(SCRATCH))/example.XXXXXX) || exit 1; \
	    TMPDIR=$(abspath $(SCRATCH)) $$e "$$d" || { echo "FAIL: $$e $$d (exit $$?)" >&2; exit 1; }; \
	    rm -rf "$$d"; \
	done
	$(if $(EXAMPLE_BINS),,@echo "== no examples/*.c yet")
endef

# Installs into a staging DESTDIR, checks the installed tree and ulog.pc, and
# builds every example from the staged install through pkg-config alone
# (shared and --static) and runs the shared build. Skipped under SANITIZE=1.
ifeq ($(SANITIZE),1)
define run-check-install
	@echo "== install check: skipped under SANITIZE=1"
endef
else
define run-check-install
	@echo "== make install DESTDIR=$(STAGE), then examples through pkg-config"
	$(Q)rm -rf $(STAGE)
	+$(Q)$(MAKE) --no-print-directory -s install DESTDIR=$(abspath $(STAGE)) >/dev/null
	$(Q)for f in $(INCLUDEDIR)/ulog.h $(LIBDIR)/libulog.a $(LIBDIR)/libulog.so.$(VERSION) \
	             $(LIBDIR)/$(SONAME) $(LIBDIR)/libulog.so $(PKGCONFIGDIR)/ulog.pc \
	             $(MANDIR)/man7/ulog.7 $(MANDIR)/man3/ulog_open.3 $(MANDIR)/man3/ulog_close.3 \
	             $(BINDIR)/ulog $(MANDIR)/man1/ulog.1; do \
	    test -e $(STAGE)$$f || { echo "FAIL: install did not create $$f" >&2; exit 1; }; \
	done
	$(Q)export PKG_CONFIG_PATH=$(abspath $(STAGE))$(PKGCONFIGDIR) \
	           PKG_CONFIG_SYSROOT_DIR=$(abspath $(STAGE)); \
	$(PKG_CONFIG) --validate ulog || exit 1; \
	v=$$($(PKG_CONFIG) --modversion ulog); \
	[ "$$v" = "$(VERSION)" ] || { echo "FAIL: pkg-config --modversion ulog: '$$v', not $(VERSION)" >&2; exit 1; }; \
	mkdir -p $(SCRATCH) $(BUILD)/installed; \
	for src in $(EXAMPLE_SRCS); do \
	    n=$$(basename $$src .c); \
	    echo "   $(CC) $$src \$$(pkg-config --cflags --libs ulog)"; \
	    $(CC) $(EXAMPLE_STD) $(WARNINGS) $(CFLAGS) -o $(BUILD)/installed/$$n $$src \
	        $$($(PKG_CONFIG) --cflags --libs ulog) || exit 1; \
	    $(CC) $(EXAMPLE_STD) $(WARNINGS) $(CFLAGS) -o $(BUILD)/installed/$$n-static $$src $$($(PKG_CONFIG) --cflags ulog) \
	        $$($(PKG_CONFIG) --static --libs ulog | sed 's/-lulog\b/-l:libulog.a/') || exit 1; \
	    d=$$(mktemp -d $(abspath $(SCRATCH))/installed.XXXXXX) || exit 1; \
	    LD_LIBRARY_PATH=$(abspath $(STAGE))$(LIBDIR) $(BUILD)/installed/$$n "$$d" >/dev/null \
	        || { echo "FAIL: $$n built from the installed library (exit $$?)" >&2; exit 1; }; \
	    rm -rf "$$d"; \
	done
	$(Q)rm -rf $(STAGE)
endef
endif

# Rewrites test/exported-symbols.txt from the ULOG_API declarations.
.PHONY: exported-symbols
exported-symbols:
	$(HEADER_SYMBOLS_CMD) > test/exported-symbols.txt

# ------------------------------------------------------------------ demo, bench

.PHONY: demo demo-run
demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory demo-run

demo-run: $(BUILD)/examples/demo
	@mkdir -p $(SCRATCH)
	@d=$$(mktemp -d $(abspath $(SCRATCH))/demo.XXXXXX) || exit 1; \
	echo "== $(BUILD)/examples/demo $$d"; \
	$(BUILD)/examples/demo "$$d"; rc=$$?; \
	rm -rf "$$d"; exit $$rc

# Benchmarks: -O2, no sanitizers, data under $(BUILD)/bench-data (the
# repository's filesystem), a fresh directory per program.
ifeq ($(SANITIZE),1)
ifneq ($(filter bench,$(MAKECMDGOALS)),)
$(error make bench measures the plain build: run it without SANITIZE=1)
endif
endif

.PHONY: bench
bench: $(BENCH_BINS)
	$(if $(BENCH_BINS),,@echo "== no bench/*.c yet")
	$(Q)for b in $(BENCH_BINS); do \
	    d=$(abspath $(BUILD))/bench-data/$$(basename $$b); \
	    rm -rf "$$d" && mkdir -p "$$d" || exit 1; \
	    echo "== $$b $$d"; \
	    $$b "$$d" || { echo "FAIL: $$b (exit $$?)" >&2; exit 1; }; \
	    rm -rf "$$d"; \
	done

# ------------------------------------------------------------------ install

.PHONY: install uninstall
install: all
	$(Q)$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(Q)$(INSTALL) -m 644 include/ulog.h $(DESTDIR)$(INCLUDEDIR)/ulog.h
	$(Q)$(INSTALL) -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libulog.a
	$(Q)$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/libulog.so.$(VERSION)
	$(Q)ln -sf libulog.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libulog.so
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	        -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	        pkgconfig/ulog.pc.in > $(BUILD)/ulog.pc
	$(Q)$(INSTALL) -m 644 $(BUILD)/ulog.pc $(DESTDIR)$(PKGCONFIGDIR)/ulog.pc
	@# Each page, plus a one-line stub (.so) for every further name in its NAME
	@# section, so that `man ulog_close` finds ulog_open(3).
	$(Q)for p in $(MAN_PAGES); do \
	    sec=$${p##*.}; dir=$(DESTDIR)$(MANDIR)/man$$sec; page=$$(basename $$p); \
	    $(INSTALL) -d $$dir && $(INSTALL) -m 644 $$p $$dir/$$page || exit 1; \
	    for n in $$(awk '$(MAN_NAMES_AWK)' $$p | sort -u); do \
	        [ "$$n.$$sec" = "$$page" ] && continue; \
	        printf '.so man%s/%s\n' $$sec $$page > $$dir/$$n.$$sec || exit 1; \
	    done; \
	done
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi
	@echo "installed ulog $(VERSION) under $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/ulog.h $(DESTDIR)$(LIBDIR)/libulog.a \
	      $(DESTDIR)$(LIBDIR)/libulog.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libulog.so $(DESTDIR)$(PKGCONFIGDIR)/ulog.pc
	$(Q)for p in $(MAN_PAGES); do \
	    sec=$${p##*.}; \
	    for n in $$(awk '$(MAN_NAMES_AWK)' $$p | sort -u); do \
	        rm -f $(DESTDIR)$(MANDIR)/man$$sec/$$n.$$sec; \
	    done; \
	done

# ------------------------------------------------------------------ more

# Further targets (torture, power cuts, faults, fuzzing, sanitizers,
# coverage) live in mk/*.mk, one concern per file; they may use every
# variable above.
include $(sort $(wildcard mk/*.mk))

# ------------------------------------------------------------------ clean

.PHONY: clean distclean
clean:
	rm -rf $(BUILD)

distclean:
	rm -rf build build-asan build-clang $(BUILD)

.PHONY: FORCE
FORCE:
