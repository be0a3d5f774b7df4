/* Preloaded before libfaketime for the date-shifted test pass (scripts/check).
 *
 * The pass fakes only the wall clock (FAKETIME_DONT_FAKE_MONOTONIC=1): with a faked monotonic clock, Python's
 * timed lock waits (sem_clockwait on CLOCK_MONOTONIC, which libfaketime 0.9.10 does not translate) never time
 * out. But libfaketime 0.9.10 still rewrites clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ...) as if that
 * clock were faked and hands the kernel a negative time (wolfcw/libfaketime#426): Python 3.11's time.sleep
 * fails with EINVAL. Monotonic sleeps go straight to the kernel here; every other clock goes on to libfaketime.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *request, struct timespec *remain) {
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (clock_id == CLOCK_MONOTONIC) {
        /* clock_nanosleep returns the error number instead of setting errno */
        return syscall(SYS_clock_nanosleep, clock_id, flags, request, remain) == 0 ? 0 : errno;
    }
    if (next == NULL) {
        next = (int (*)(clockid_t, int, const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "clock_nanosleep");
    }
    return next(clock_id, flags, request, remain);
}
