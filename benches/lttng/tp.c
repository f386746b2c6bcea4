/* The tracepoint provider (its probe and the tracepoint's definition) and
 * one call the Rust producer makes per record. Built by benches/build.rs
 * into the lttng-producer binary only, so that no other process of the
 * harness loads LTTng-UST (its constructor starts threads in every process
 * that links it). */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "tp.h"

void logbus_bench_lttng_record(uint8_t severity, const char *target, size_t target_len,
                               const char *message, size_t message_len,
                               const uint8_t *trace_id, const uint8_t *span_id)
{
    lttng_ust_tracepoint(logbus_bench, record, severity, target, target_len, message,
                         message_len, trace_id, span_id);
}
