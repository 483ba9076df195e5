# mk/faults.mk -- the fault-injection tests (test/test_faults.c,
# test/test_alloc.c) link with -Wl,--wrap=<function>: every call the
# library's objects (libulog.a) make to a wrapped function goes to the test's
# __wrap_<function>, which fails the call the test chose and passes the
# others on to __real_<function>. No hook in lib/ is needed for these, and
# nothing else changes: libc, LMDB and Criterion are shared libraries, so
# their own internal calls are not wrapped (the faults hit ulog's code only).
# fdatasync keeps its hook in lib/ (ulog__fdatasync); the tests swap it.
#
# Both programs are ordinary test/test_*.c files, so `make check` builds and
# runs them like every other; these explicit rules replace the pattern rule
# for these two targets only, adding the wrap flags.

FAULTS_WRAP := pwrite pread fsync ftruncate fallocate open openat mkdirat unlinkat mmap \
               malloc calloc realloc strdup free
ALLOC_WRAP  := malloc calloc realloc strdup free pthread_create fdopendir \
               mdb_env_create mdb_txn_begin mdb_cursor_open mdb_put mdb_txn_commit

faults_wrap_flags = $(foreach f,$(1),-Wl,--wrap=$(f))

$(BUILD)/test/test_faults: test/test_faults.c $(TEST_SUPPORT) $(STATIC_LIB) $(FLAGS_STAMP) mk/faults.mk
	@mkdir -p $(@D)
	$(say) CC "$< (--wrap: $(FAULTS_WRAP))"
	$(Q)$(CC) $(TEST_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(TEST_SUPPORT) \
	    $(call faults_wrap_flags,$(FAULTS_WRAP)) $(STATIC_LIB) -lcriterion $(LIBS)

$(BUILD)/test/test_alloc: test/test_alloc.c $(TEST_SUPPORT) $(STATIC_LIB) $(FLAGS_STAMP) mk/faults.mk
	@mkdir -p $(@D)
	$(say) CC "$< (--wrap: $(ALLOC_WRAP))"
	$(Q)$(CC) $(TEST_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(TEST_SUPPORT) \
	    $(call faults_wrap_flags,$(ALLOC_WRAP)) $(STATIC_LIB) -lcriterion $(LIBS)

# Just these two, from the repository root like check-tests does.
.PHONY: check-faults
check-faults: $(BUILD)/test/test_faults $(BUILD)/test/test_alloc
	@mkdir -p $(SCRATCH)
	$(Q)for t in $^; do \
	    echo "== $$t"; \
	    TMPDIR=$(abspath $(SCRATCH)) ASAN_OPTIONS=abort_on_error=1 \
	        timeout $(TEST_TIMEOUT) $$t -j2 \
	        || { echo "FAIL: $$t (exit $$?)" >&2; exit 1; }; \
	done
