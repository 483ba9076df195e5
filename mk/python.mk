# mk/python.mk -- the ctypes binding in examples/python/ (issue 5, item 4).
#
#   make check-python     runs examples/python/test_*.py (unittest, Python's
#                         standard library only) against $(BUILD)/libulog.so
#                         through ULOG_LIBRARY; PYTHON=... picks the
#                         interpreter (default python3)
#
# run-check-python is also the recipe block the Makefile's check-all calls.
# The tests make their log roots under $(SCRATCH), like the C tests, and
# leave no __pycache__ in the source tree.
#
# Under SANITIZE=1 the library in build-asan/ needs the ASan runtime loaded
# first, which python3 (not built with ASan) does not do; LD_PRELOAD of
# libasan would work but then reports the interpreter's own leaks. The check
# is skipped there (nothing is built for it): the plain build runs it.

DEB_PACKAGES += $(filter-out $(DEB_PACKAGES),python3)

PYTHON ?= python3

.PHONY: check-python
ifeq ($(SANITIZE),1)
check-python:
	$(run-check-python)

define run-check-python
	@echo "== python binding: skipped under SANITIZE=1 (python3 is not built with ASan)"
endef
else
check-python: $(SHARED_LIB) $(SHARED_LINKS)
	$(run-check-python)

define run-check-python
	@echo "== $(PYTHON) -m unittest in examples/python/, on $(BUILD)/libulog.so"
	@mkdir -p $(SCRATCH)
	$(Q)cd examples/python && \
	    TMPDIR=$(abspath $(SCRATCH)) PYTHONDONTWRITEBYTECODE=1 \
	    ULOG_LIBRARY=$(abspath $(BUILD))/libulog.so \
	    timeout $(TEST_TIMEOUT) $(PYTHON) -m unittest discover -v -s . -p 'test_*.py' \
	    || { echo "FAIL: examples/python/ (exit $$?)" >&2; exit 1; }
endef
endif
