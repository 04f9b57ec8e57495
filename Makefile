# uktls build.
#
#   make                 build/libuktls.a, build/libuktls.so, build/uktls.pc
#   make check           build the tests with invariants on and run them
#   make check SAN=asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check SAN=tsan  the same under ThreadSanitizer
#   make check-all       all three, as CI runs them
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
LIBS    := $(CRYPTO_LIBS) -pthread

LIB_SRCS := $(sort $(wildcard src/*.c))

B := build
REL_OBJS := $(LIB_SRCS:src/%.c=$(B)/obj/%.o)

all: $(B)/libuktls.a $(B)/libuktls.so $(B)/uktls.pc

$(B)/obj/%.o: src/%.c $(wildcard src/*.h) include/uktls.h | $(B)/obj
	$(CC) $(BASE) -O2 -g $(CFLAGS) -c $< -o $@

$(B)/obj:
	mkdir -p $@

$(B)/libuktls.a: $(REL_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(B)/libuktls.so: $(REL_OBJS)
	$(CC) -shared -Wl,-soname,libuktls.so.0 -o $@ $^ $(LIBS) $(LDFLAGS)

$(B)/uktls.pc: Makefile | $(B)/obj
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: uktls' \
	  'Description: kernel TLS receive offload in userspace' \
	  'Version: $(VERSION)' 'Requires.private: libcrypto' \
	  'Libs: -L$${libdir} -luktls' 'Libs.private: $(LIBS)' \
	  'Cflags: -I$${includedir}' > $@

# ---- tests ----------------------------------------------------------------
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
TSUP_OBJS    := $(TEST_SUPPORT:tests/%.c=$(T)/tobj/%.o)

$(T)/obj/%.o: src/%.c $(wildcard src/*.h) include/uktls.h | $(T)/obj
	$(CC) $(TFLAGS) $(CFLAGS) -c $< -o $@
$(T)/tobj/%.o: tests/%.c $(wildcard tests/*.h) $(wildcard src/*.h) include/uktls.h | $(T)/tobj
	$(CC) $(TFLAGS) $(CFLAGS) -c $< -o $@
$(T)/obj $(T)/tobj:
	mkdir -p $@

$(T)/libuktls-test.a: $(TLIB_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(T)/test_%: tests/test_%.c $(T)/libuktls-test.a $(TSUP_OBJS) $(wildcard tests/*.h)
	$(CC) $(TFLAGS) $(CFLAGS) $< $(TSUP_OBJS) $(T)/libuktls-test.a -o $@ $(LIBS) $(LDFLAGS)

tests: $(TEST_BINS)

check: all $(TEST_BINS)
	@scripts/run-tests.sh $(T) $(TEST_BINS)

check-all:
	$(MAKE) check
	$(MAKE) check SAN=asan
	$(MAKE) check SAN=tsan

clean:
	rm -rf $(B)

.SECONDARY:
.PHONY: all tests check check-all clean
