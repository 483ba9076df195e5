# mk/powercut.mk -- power-cut simulation (test/powercut/, issue 4 item 2).
#
#   make powercut         POWERCUT_IMAGES crash images (default 1000)
#   make powercut-short   POWERCUT_SHORT_IMAGES (default 100), for CI
#
# A workload runs under an LD_PRELOAD shim that journals every write, sync,
# create, rename and unlink under its log root; it is SIGKILLed at a random
# moment and crash images are built from the journal (synced bytes only, plus
# a prefix, garbage or a zeroed page in the unsynced tail; directory entries
# never fsynced are gone; heads absent, empty, garbage or stale). Each image
# must recover with nothing acknowledged lost. See test/powercut/driver.c.
#
#   POWERCUT_SEED=N       repeat a run's random choices (kill moments differ)
#   POWERCUT_ARGS=...     more driver options (--per-run K, --max-delay-ms MS,
#                         --keep N, -v)
#
# Runs under nice: the machine is shared. Scratch space under $(SCRATCH);
# the directories of failing runs are kept there (the driver names them).

POWERCUT_IMAGES       ?= 1000
POWERCUT_SHORT_IMAGES ?= 100
POWERCUT_SEED         ?=
POWERCUT_ARGS         ?=
POWERCUT_TIMEOUT      ?= 3600
POWERCUT_NICE         ?= 10

POWERCUT_DIR    := $(BUILD)/powercut
POWERCUT_SHIM   := $(POWERCUT_DIR)/shim.so
POWERCUT_DRIVER := $(POWERCUT_DIR)/driver
POWERCUT_HDRS   := test/powercut/journal.h test/powercut/model.h

# The shim is preloaded into a process that may be sanitized: it is built
# without sanitizers, and without _FORTIFY_SOURCE (it defines open() itself).
$(POWERCUT_SHIM): test/powercut/shim.c test/powercut/journal.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -U_FORTIFY_SOURCE $(WARNINGS) -fPIC -shared \
	    -fvisibility=hidden $(filter-out -fsanitize% -D_FORTIFY_SOURCE%,$(CFLAGS)) \
	    $(LDFLAGS) -o $@ $< -ldl

$(POWERCUT_DRIVER): test/powercut/driver.c test/powercut/model.c $(POWERCUT_HDRS) \
                    $(STATIC_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) $(TEST_CFLAGS) -Itest/powercut $(LDFLAGS) -o $@ \
	    test/powercut/driver.c test/powercut/model.c $(STATIC_LIB) $(LIBS)

.PHONY: powercut powercut-short powercut-build
powercut-build: $(POWERCUT_SHIM) $(POWERCUT_DRIVER)

define run-powercut
	@mkdir -p $(SCRATCH)
	$(Q)TMPDIR=$(abspath $(SCRATCH)) \
	    nice -n $(POWERCUT_NICE) timeout $(POWERCUT_TIMEOUT) $(POWERCUT_DRIVER) \
	    --shim $(POWERCUT_SHIM) --scratch $(abspath $(SCRATCH)) --images $(1) \
	    $(if $(POWERCUT_SEED),--seed $(POWERCUT_SEED)) $(POWERCUT_ARGS)
endef

powercut: powercut-build
	$(call run-powercut,$(POWERCUT_IMAGES))

powercut-short: powercut-build
	$(call run-powercut,$(POWERCUT_SHORT_IMAGES))
