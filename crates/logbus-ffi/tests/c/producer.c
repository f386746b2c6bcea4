/* The C producer the test `tests/c_program.rs` compiles and runs: threads,
 * fork, typed fields, explicit lengths, trace ids and error codes. Prints
 * "parent PID" and "child PID" lines; the test reads the ring with
 * `logbus dump --json`. Exits non-zero (with a message) on any failed check. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logbus.h"

#define THREADS 4
#define PER_THREAD 50

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",        \
                    __FILE__, __LINE__, #cond, logbus_last_error());             \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static logbus_t *lb;

static void *worker(void *arg) {
    long t = (long)arg;
    char msg[64];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(msg, sizeof msg, "thread %ld record %d", t, i);
        CHECK(logbus_log(lb, LOGBUS_INFO, "c::thread", msg) == LOGBUS_OK);
    }
    return NULL;
}

int main(void) {
    lb = logbus_open(NULL); /* $LOGBUS_RING, set by the test */
    CHECK(lb != NULL);
    CHECK(strcmp(logbus_last_error(), "") == 0);
    printf("parent %d\n", (int)getpid());

    /* Threads: each makes its own writer. */
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker, (void *)t) == 0);
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_join(th[t], NULL) == 0);

    /* Trace ids (hex); NULL span id; all-zero ids mean none. */
    CHECK(logbus_log_trace(lb, LOGBUS_WARN, "c::trace", "traced",
                           "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7") == LOGBUS_OK);
    CHECK(logbus_log_trace(lb, LOGBUS_WARN, "c::trace", "trace only",
                           "4BF92F3577B34DA6A3CE929D0E0E4736", NULL) == LOGBUS_OK);
    CHECK(logbus_log_trace(lb, LOGBUS_WARN, "c::trace", "zero ids",
                           "00000000000000000000000000000000", "0000000000000000") == LOGBUS_OK);

    /* Typed fields, a message with a NUL byte, invalid UTF-8 (replaced). */
    static const char nul_msg[] = "before\0after";
    logbus_field_t f[6] = {
        {LOGBUS_LIT("user"), LOGBUS_FIELD_STR, {.str = LOGBUS_LIT("ann")}},
        {LOGBUS_LIT("delta"), LOGBUS_FIELD_I64, {.i64 = -42}},
        {LOGBUS_LIT("bytes"), LOGBUS_FIELD_U64, {.u64 = 18446744073709551615ull}},
        {LOGBUS_LIT("ratio"), LOGBUS_FIELD_F64, {.f64 = 0.25}},
        {LOGBUS_LIT("ok"), LOGBUS_FIELD_BOOL, {.boolean = true}},
        {LOGBUS_LIT("raw"), LOGBUS_FIELD_STR, {.str = {"a\xff" "b", 3}}},
    };
    const uint8_t trace[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                               0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
    const uint8_t span[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
    logbus_record_t r = {
        .severity = LOGBUS_ERROR,
        .target = LOGBUS_LIT("c::fields"),
        .message = {nul_msg, sizeof nul_msg - 1},
        .fields = f,
        .n_fields = 6,
        .trace_id = trace,
        .span_id = span,
        .trace_flags = 1,
    };
    CHECK(logbus_emit(lb, &r) == LOGBUS_OK);

    /* Errors: negative codes and a message, nothing written. */
    CHECK(logbus_log(NULL, LOGBUS_INFO, "c::err", "no handle") == LOGBUS_ENULL);
    CHECK(strstr(logbus_last_error(), "NULL") != NULL);
    CHECK(logbus_log(lb, LOGBUS_INFO, "c::err", NULL) == LOGBUS_ENULL);
    CHECK(logbus_log(lb, 0, "c::err", "severity 0") == LOGBUS_EINVAL);
    CHECK(logbus_log(lb, 25, "c::err", "severity 25") == LOGBUS_EINVAL);
    CHECK(strstr(logbus_last_error(), "severity 25") != NULL);
    CHECK(logbus_log_trace(lb, LOGBUS_INFO, "c::err", "bad id", "xyz", NULL) == LOGBUS_EINVAL);
    CHECK(strstr(logbus_last_error(), "trace id") != NULL);
    CHECK(logbus_emit(lb, NULL) == LOGBUS_ENULL);
    logbus_field_t bad = {LOGBUS_LIT("k"), 99, {.i64 = 0}};
    logbus_record_t rb = {.severity = LOGBUS_INFO, .message = LOGBUS_LIT("bad kind"),
                          .fields = &bad, .n_fields = 1};
    CHECK(logbus_emit(lb, &rb) == LOGBUS_EINVAL);
    logbus_record_t rn = {.severity = LOGBUS_INFO, .message = LOGBUS_LIT("null fields"),
                          .n_fields = 2};
    CHECK(logbus_emit(lb, &rn) == LOGBUS_ENULL);
    CHECK(logbus_open("/nonexistent-dir/ring") == NULL);
    CHECK(strlen(logbus_last_error()) > 0);

    /* fork(): the child logs under its own pid, through the parent's handle. */
    fflush(stdout);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        CHECK(logbus_log(lb, LOGBUS_INFO, "c::fork", "from the child") == LOGBUS_OK);
        _exit(0);
    }
    printf("child %d\n", (int)child);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(logbus_log(lb, LOGBUS_INFO, "c::fork", "from the parent") == LOGBUS_OK);

    logbus_close(lb);
    logbus_close(NULL);
    return 0;
}
