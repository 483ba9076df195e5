# mk/torture.mk -- the kill torture (test/torture/): writers, readers and a
# group committer on one log directory, SIGKILLed at random times, while
# holding the robust mutexes, and at the K-th call of pwrite64, fdatasync,
# fsync, ftruncate, rename, flock, futex, fcntl, openat, unlinkat (strace's
# syscall injection, K swept); an independent checker decodes the segment
# files itself and prints the table of lost, duplicated, skipped and
# phantom records, which must all be 0, and the torn tails recovery cut,
# which must not.
#
#   make torture          TORTURE_SECONDS (default 270) for the whole run,
#                         final check included (then ~30 s to delete its
#                         ~1 GB); needs >= 1000 kill points
#   make torture-short    the same for CI, TORTURE_SHORT_SECONDS (default 45)
#
# TORTURE_SEED picks the random choices (default: the time; the timing of
# the kills is not reproducible anyway), among them whether the topic's
# values are encrypted (an odd seed); TORTURE_ENCRYPT=0|1 decides instead,
# and torture-short (CI) encrypts unless told otherwise. The output goes to
# $(BUILD)/torture.out too. The run's directory, $(BUILD)/torture-run, is
# deleted after a pass and kept after a failure: ulog/ is the log,
# logs/*.log the workers' acks, polls and commits, logs/stderr-* theirs.
# strace is a Debian package; the torture installs it through `make deps`
# when it is missing (as root), or says how.

TORTURE_SECONDS       ?= 270
TORTURE_SHORT_SECONDS ?= 45
TORTURE_SEED          ?= $(shell date +%s)
TORTURE_DIR           ?= $(BUILD)/torture-run
TORTURE_NICE          ?= nice -n 10
# Kill points required: 1000 for a full run; about 3.5 per second otherwise.
TORTURE_MIN_KILLS     ?= 1000
TORTURE_SHORT_MIN_KILLS ?= $(shell echo $$(( $(TORTURE_SHORT_SECONDS) * 7 / 2 )))
TORTURE_ENCRYPT       ?=
TORTURE_SHORT_ENCRYPT ?= 1

TORTURE_BIN   := $(BUILD)/torture/torture
TORTURE_CHECK := $(BUILD)/torture/check

$(TORTURE_BIN): test/torture/torture.c test/torture/common.h $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

# The checker sees <ulog.h> only: it decodes segments with its own code.
$(TORTURE_CHECK): test/torture/check.c test/torture/common.h $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LIBS)

.PHONY: torture torture-short torture-build torture-deps
torture-build: $(TORTURE_BIN) $(TORTURE_CHECK)

# strace through the project's deps mechanism (installs when root, else
# names the package and stops).
torture-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) strace"
	@command -v strace >/dev/null 2>&1 || { \
	    echo "make torture: strace is missing: sudo apt-get install strace (Debian package strace)" >&2; \
	    exit 1; }

# $(1): seconds, $(2): kill points required. The output is also kept in
# $(BUILD)/torture.out; the run's directory only when it failed.
define run-torture
	@rm -rf $(TORTURE_DIR)
	$(Q){ $(TORTURE_NICE) $(TORTURE_BIN) --dir $(abspath $(TORTURE_DIR)) --seconds $(1) \
	    --seed $(TORTURE_SEED) --min-kills $(2) --checker $(abspath $(TORTURE_CHECK)) \
	    $(if $(3),--encrypt $(3)); \
	    echo $$? > $(BUILD)/torture.rc; } 2>&1 | tee $(BUILD)/torture.out
	$(Q)rc=$$(cat $(BUILD)/torture.rc); rm -f $(BUILD)/torture.rc; \
	if [ "$$rc" = 0 ]; then rm -rf $(TORTURE_DIR); \
	else echo "make torture: FAIL (exit $$rc); the logs and the log directory are in $(TORTURE_DIR)" >&2; fi; \
	exit $$rc
endef

torture:
	@$(MAKE) --no-print-directory torture-deps
	@$(MAKE) --no-print-directory torture-build
	$(call run-torture,$(TORTURE_SECONDS),$(TORTURE_MIN_KILLS),$(TORTURE_ENCRYPT))

torture-short:
	@$(MAKE) --no-print-directory torture-deps
	@$(MAKE) --no-print-directory torture-build
	$(call run-torture,$(TORTURE_SHORT_SECONDS),$(TORTURE_SHORT_MIN_KILLS),$(TORTURE_SHORT_ENCRYPT))
