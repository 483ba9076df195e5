# mk/cli.mk -- the `ulog` command-line tool in tools/ (issue 5, item 1).
#
#   make cli              $(BUILD)/bin/ulog, from tools/*.c and libulog.a
#   make check-cli        runs test/cli/test_cli.sh on it: every command end
#                         to end in a fresh directory under $(SCRATCH)
#   make install          also installs the tool as $(BINDIR)/ulog (its man
#                         page, man/ulog.1, goes with the other pages)
#
# run-check-cli is also the recipe block the Makefile's check-all calls.
# The tool is built like the tests (TEST_CFLAGS: -Ilib, $(CFLAGS),
# $(SAN_FLAGS)), since `ulog dump` uses the batch decoder of lib/internal.h;
# under SANITIZE=1 the test script runs it under ASan and UBSan.

CLI_SRCS := $(sort $(wildcard tools/*.c))
CLI_OBJS := $(CLI_SRCS:tools/%.c=$(BUILD)/tools/%.o)
CLI_BIN  := $(BUILD)/bin/ulog

.PHONY: cli check-cli install-cli uninstall-cli
cli: $(CLI_BIN)

$(BUILD)/tools/%.o: tools/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(TEST_CFLAGS) -MMD -MP -c -o $@ $<

# `ulog mirror` (tools/kafka_mirror.c) is the tool's, not the library's:
# only the tool links librdkafka.
RDKAFKA_LIBS := $(or $(shell $(PKG_CONFIG) --libs rdkafka 2>/dev/null),-lrdkafka)

$(CLI_BIN): $(CLI_OBJS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(STATIC_LIB) $(RDKAFKA_LIBS) $(LIBS)

# The mirror's test links the module and librdkafka too.
$(BUILD)/test/test_kafka: $(BUILD)/tools/kafka_mirror.o
$(BUILD)/test/test_kafka: TEST_EXTRA = $(BUILD)/tools/kafka_mirror.o $(RDKAFKA_LIBS)

-include $(CLI_OBJS:.o=.d)

# check-all runs $(run-check-cli): the binary must be built with the rest.
check-all: $(CLI_BIN)

check-cli: $(CLI_BIN)
	$(run-check-cli)

define run-check-cli
	@echo "== test/cli/test_cli.sh $(CLI_BIN)"
	@mkdir -p $(SCRATCH)
	$(Q)TMPDIR=$(abspath $(SCRATCH)) ASAN_OPTIONS=abort_on_error=1 \
	    timeout $(TEST_TIMEOUT) sh test/cli/test_cli.sh $(abspath $(CLI_BIN)) \
	    || { echo "FAIL: test/cli/test_cli.sh (exit $$?)" >&2; exit 1; }
endef

install: install-cli
install-cli: $(CLI_BIN)
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(Q)$(INSTALL) -m 755 $(CLI_BIN) $(DESTDIR)$(BINDIR)/ulog

uninstall: uninstall-cli
uninstall-cli:
	rm -f $(DESTDIR)$(BINDIR)/ulog
