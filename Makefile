# uktls build.
#
#   make                 libraries, pkg-config file and the uktls command
#   make check           build the tests with invariants on and run them
#   make check SAN=asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check SAN=tsan  the same under ThreadSanitizer
#   make check-all       all three, as CI runs them
#   make bench           the benchmark programs (build/bench/)
#   make fuzz            the libFuzzer targets (build/fuzz/, needs clang)
#   make fuzz-run        run each fuzz target for FUZZ_SECONDS (default 60)
#
# Test builds define UKTLS_INVARIANTS (KASSERTs and the socket-buffer checker
# after every change) and UKTLS_TEST_HOOKS (fault and race hooks).

CC      ?= cc
AR      ?= ar
PREFIX  ?= /usr/local
VERSION := 0.1.0

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wvla -Wformat=2
BASE    := -std=c11 -D_GNU_SOURCE -pthread -fPIC -Iinclude -Isrc $(WARN)
CRYPTO_LIBS := -lcrypto

# Intel's ipsec-mb is used when its header is installed.
HAVE_IPSECMB := $(shell printf '\#include <intel-ipsec-mb.h>\n' | \
    $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_IPSECMB),1)
  BASE += -DUKTLS_HAVE_IPSECMB
  CRYPTO_LIBS += -lIPSec_MB
endif

LIBS        := $(CRYPTO_LIBS) -pthread
SSL_LIBS    := -lssl -lcrypto
GNUTLS_LIBS := -lgnutls

LIB_SRCS     := $(sort $(wildcard src/*.c))
HANDOFF_SRCS := $(sort $(wildcard handoff/*.c))
TOOL_SRCS    := $(sort $(wildcard tools/*.c))
BENCH_SRCS   := $(sort $(wildcard bench/bench_*.c))
BENCH_SUPPORT:= $(filter-out $(BENCH_SRCS),$(sort $(wildcard bench/*.c)))
FUZZ_SRCS    := $(sort $(wildcard fuzz/fuzz_*.c))
HDRS         := $(wildcard src/*.h) $(wildcard include/*.h) $(wildcard include/uktls/*.h) \
                $(wildcard handoff/*.h)

B := build
REL_OBJS := $(LIB_SRCS:src/%.c=$(B)/obj/%.o)
HANDOFF_LIBS := $(if $(wildcard handoff/openssl.c),$(B)/libuktls-openssl.a) \
                $(if $(wildcard handoff/gnutls.c),$(B)/libuktls-gnutls.a)

all: $(B)/libuktls.a $(B)/libuktls.so $(B)/uktls.pc $(HANDOFF_LIBS) \
     $(if $(TOOL_SRCS),$(B)/uktls)

$(B)/obj/%.o: src/%.c $(HDRS) | $(B)/obj
	$(CC) $(BASE) -O2 -g $(CFLAGS) -c $< -o $@
$(B)/hobj/%.o: handoff/%.c $(HDRS) | $(B)/hobj
	$(CC) $(BASE) -O2 -g $(CFLAGS) -c $< -o $@
$(B)/obj $(B)/hobj $(B)/bench $(B)/fuzz:
	mkdir -p $@

$(B)/libuktls.a: $(REL_OBJS)
	rm -f $@ && $(AR) rcs $@ $^
$(B)/libuktls.so: $(REL_OBJS) src/libuktls.map
	$(CC) -shared -Wl,-soname,libuktls.so.0 \
	  -Wl,--version-script=src/libuktls.map -o $@ $(REL_OBJS) $(LIBS) \
	  $(LDFLAGS)
$(B)/libuktls-openssl.a: $(B)/hobj/openssl.o
	rm -f $@ && $(AR) rcs $@ $^
$(B)/libuktls-gnutls.a: $(B)/hobj/gnutls.o
	rm -f $@ && $(AR) rcs $@ $^

$(B)/uktls.pc: Makefile | $(B)/obj
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: uktls' \
	  'Description: kernel TLS receive offload in userspace' \
	  'Version: $(VERSION)' 'Requires.private: libcrypto' \
	  'Libs: -L$${libdir} -luktls' 'Libs.private: $(LIBS)' \
	  'Cflags: -I$${includedir}' > $@

$(B)/uktls: $(TOOL_SRCS) $(wildcard tools/*.h) $(B)/libuktls.a $(HANDOFF_LIBS)
	$(CC) $(BASE) -Itools -DUKTLS_VERSION='"$(VERSION)"' -O2 -g $(CFLAGS) $(TOOL_SRCS) $(HANDOFF_LIBS) \
	  $(B)/libuktls.a -o $@ $(SSL_LIBS) $(GNUTLS_LIBS) $(LIBS) $(LDFLAGS) -lm

# ---- benchmarks -------------------------------------------------------------
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)
$(B)/bench/%: bench/%.c $(BENCH_SUPPORT) $(wildcard bench/*.h) $(B)/libuktls.a $(HANDOFF_LIBS) | $(B)/bench
	$(CC) $(BASE) -Ibench -O2 -g $(CFLAGS) $< $(BENCH_SUPPORT) $(HANDOFF_LIBS) \
	  $(B)/libuktls.a -o $@ $(SSL_LIBS) $(GNUTLS_LIBS) $(LIBS) $(LDFLAGS) -lm
bench: all $(BENCH_BINS)

# ---- tests ------------------------------------------------------------------
SAN ?=
ifeq ($(SAN),asan)
  T := $(B)/asan
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SAN),tsan)
  T := $(B)/tsan
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  T := $(B)/check
  SANFLAGS :=
endif
TFLAGS := $(BASE) -O1 -g -DUKTLS_INVARIANTS -DUKTLS_TEST_HOOKS $(SANFLAGS)

TEST_SRCS    := $(sort $(wildcard tests/test_*.c))
TEST_SUPPORT := $(filter-out $(TEST_SRCS),$(sort $(wildcard tests/*.c)))
TEST_BINS    := $(TEST_SRCS:tests/%.c=$(T)/%)
TLIB_OBJS    := $(LIB_SRCS:src/%.c=$(T)/obj/%.o)
THOFF_OBJS   := $(HANDOFF_SRCS:handoff/%.c=$(T)/hobj/%.o)
TSUP_OBJS    := $(TEST_SUPPORT:tests/%.c=$(T)/tobj/%.o)

$(T)/obj/%.o: src/%.c $(HDRS) | $(T)/obj
	$(CC) $(TFLAGS) $(CFLAGS) -c $< -o $@
$(T)/hobj/%.o: handoff/%.c $(HDRS) | $(T)/hobj
	$(CC) $(TFLAGS) $(CFLAGS) -c $< -o $@
$(T)/tobj/%.o: tests/%.c $(wildcard tests/*.h) $(HDRS) | $(T)/tobj
	$(CC) $(TFLAGS) $(CFLAGS) -c $< -o $@
$(T)/obj $(T)/hobj $(T)/tobj:
	mkdir -p $@

$(T)/libuktls-test.a: $(TLIB_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(T)/test_%: tests/test_%.c $(T)/libuktls-test.a $(THOFF_OBJS) $(TSUP_OBJS) $(wildcard tests/*.h)
	$(CC) $(TFLAGS) $(CFLAGS) $< $(TSUP_OBJS) $(THOFF_OBJS) $(T)/libuktls-test.a \
	  -o $@ $(SSL_LIBS) $(GNUTLS_LIBS) $(LIBS) $(LDFLAGS) -lm

tests: $(TEST_BINS)

check: all $(TEST_BINS)
	@scripts/run-tests.sh $(T) $(TEST_BINS)

check-all:
	$(MAKE) check
	$(MAKE) check SAN=asan
	$(MAKE) check SAN=tsan

# ---- fuzzing ----------------------------------------------------------------
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60
FFLAGS := $(filter-out -Werror,$(BASE)) -Werror -O1 -g -DUKTLS_INVARIANTS -DUKTLS_TEST_HOOKS \
          -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(B)/fuzz/%)
FLIB_OBJS := $(LIB_SRCS:src/%.c=$(B)/fuzz/obj/%.o)
$(B)/fuzz/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FFLAGS) -c $< -o $@
$(B)/fuzz/%: fuzz/%.c $(FLIB_OBJS) $(wildcard fuzz/*.h) | $(B)/fuzz
	$(FUZZ_CC) $(FFLAGS) -Ifuzz -fsanitize=fuzzer $< $(FLIB_OBJS) -o $@ $(LIBS)
fuzz: $(FUZZ_BINS)
fuzz-run: fuzz
	@scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

clean:
	rm -rf $(B)

.SECONDARY:
.PHONY: all tests check check-all bench fuzz fuzz-run clean
