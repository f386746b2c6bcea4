/* The C producer of the chaos harness (logbus-chaos; tests/src/chaos/).
 *
 *   producer RING LEDGER NAME THREADS SEED MAX_MSG UNTIL_MS
 *
 * One logbus_open() handle shared by THREADS pthreads, each writing records
 * with logbus_emit() (fields, sometimes trace ids) at a random pace (floods,
 * trickles, idle stretches) until the wall clock passes UNTIL_MS (ms since
 * the Unix epoch). Messages follow tests/src/chaos/token.rs:
 * "chaos:NAME:THREAD:SEQ:LEN:" padded to LEN bytes with 'a' + SEQ % 26.
 * Books go to the mapped LEDGER as tests/src/chaos/ledger.rs describes
 * (started and per-level before each call, done after it), so that they
 * survive SIGKILL. A call that fails (<0) is taken back out of the books and
 * said on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "logbus.h"

#define SLOT_WORDS 16

static const char *ring_path, *name;
static int max_msg;
static uint64_t seed, until_ms;
static volatile uint64_t *ledger;
static logbus_t *lb;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* splitmix64, as tests/src/chaos/rng.rs. */
static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t range(uint64_t *s, uint64_t lo, uint64_t hi) {
    return lo + next(s) % (hi - lo + 1);
}

static const int weights[6] = {15, 20, 30, 15, 15, 5};
static const int severity[6] = {1, 5, 9, 13, 17, 21};

static int pick_level(uint64_t *s) {
    int x = (int)range(s, 0, 99);
    for (int l = 0; l < 6; l++) {
        if (x < weights[l]) return l;
        x -= weights[l];
    }
    return 2;
}

static int pick_len(uint64_t *s) {
    uint64_t r = range(s, 0, 99), n;
    if (r < 80) n = range(s, 30, 200);
    else if (r < 95) n = range(s, 200, 2000);
    else n = range(s, 2000, max_msg > 2000 ? (uint64_t)max_msg : 2000);
    return n > (uint64_t)max_msg ? max_msg : (int)n;
}

static void *thread_main(void *arg) {
    unsigned t = (unsigned)(uintptr_t)arg;
    volatile uint64_t *slot = ledger + t * SLOT_WORDS;
    uint64_t s = seed ^ ((t + 1) * 0xa0761d6478bd642fULL), seq = 0;
    char *msg = malloc((size_t)max_msg + 64);
    next(&s);
    while (now_ms() < until_ms) {
        uint64_t phase = range(&s, 0, 99), count, pause_us = 0;
        if (phase < 25) count = range(&s, 100, 1500);
        else if (phase < 75) { count = range(&s, 10, 300); pause_us = range(&s, 500, 5000); }
        else { usleep((useconds_t)range(&s, 50, 1200) * 1000); continue; }
        for (uint64_t i = 0; i < count; i++) {
            int level = pick_level(&s), len = pick_len(&s);
            int n = snprintf(msg, 64, "chaos:%s:%u:%llu:%d:", name, t,
                             (unsigned long long)seq, len);
            if (n < len) { memset(msg + n, 'a' + (int)(seq % 26), (size_t)(len - n)); n = len; }
            uint8_t trace[16], span[8];
            uint64_t tr = next(&s) | 1, sp = next(&s) | 1;
            memcpy(trace, &tr, 8); memcpy(trace + 8, &seq, 8); memcpy(span, &sp, 8);
            int traced = range(&s, 0, 99) < 30;
            logbus_field_t fields[4] = {
                { LOGBUS_LIT("producer"), LOGBUS_FIELD_STR, { .str = { name, strlen(name) } } },
                { LOGBUS_LIT("thread"), LOGBUS_FIELD_U64, { .u64 = t } },
                { LOGBUS_LIT("seq"), LOGBUS_FIELD_U64, { .u64 = seq } },
                { LOGBUS_LIT("ratio"), LOGBUS_FIELD_F64, { .f64 = (double)seq / 3.0 } },
            };
            logbus_record_t r = {
                .severity = severity[level],
                .target = LOGBUS_LIT("chaos::c"),
                .message = { msg, (size_t)n },
                .fields = fields,
                .n_fields = 4,
                .trace_id = traced ? trace : NULL,
                .span_id = traced ? span : NULL,
                .trace_flags = (uint8_t)traced,
            };
            slot[8] = (uint64_t)level;
            slot[2 + level]++;
            slot[0]++;
            int rc = logbus_emit(lb, &r);
            if (rc < 0) {
                slot[0]--;
                slot[2 + level]--;
                fprintf(stderr, "chaos C producer %s: %s\n", name, logbus_last_error());
                continue; /* the same seq again */
            }
            slot[1]++;
            seq++;
            if (pause_us) usleep((useconds_t)pause_us);
        }
    }
    free(msg);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: producer RING LEDGER NAME THREADS SEED MAX_MSG UNTIL_MS\n");
        return 2;
    }
    ring_path = argv[1];
    name = argv[3];
    int threads = atoi(argv[4]);
    seed = strtoull(argv[5], NULL, 10);
    max_msg = atoi(argv[6]);
    until_ms = strtoull(argv[7], NULL, 10);
    int fd = open(argv[2], O_RDWR | O_CREAT, 0600);
    size_t size = (size_t)threads * SLOT_WORDS * 8;
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        fprintf(stderr, "chaos C producer: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    ledger = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ledger == MAP_FAILED) {
        fprintf(stderr, "chaos C producer: mmap: %s\n", strerror(errno));
        return 1;
    }
    lb = logbus_open(ring_path);
    if (!lb) {
        fprintf(stderr, "chaos C producer: %s\n", logbus_last_error());
        return 1;
    }
    pthread_t tid[64];
    if (threads > 64) threads = 64;
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, thread_main, (void *)(uintptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    logbus_close(lb);
    return 0;
}
