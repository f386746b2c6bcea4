/* The LTTng-UST tracepoint that the compare harness puts beside logbus: the
 * benchmark record's fields (severity, target, message, trace and span ids),
 * strings passed with their lengths as logbus's emit takes them. The event
 * header carries the time; the harness adds the vpid and vtid contexts. */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER logbus_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./tp.h"

#if !defined(LOGBUS_BENCH_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define LOGBUS_BENCH_TP_H

#include <lttng/tracepoint.h>
#include <stddef.h>
#include <stdint.h>

LTTNG_UST_TRACEPOINT_EVENT(
    logbus_bench,
    record,
    LTTNG_UST_TP_ARGS(
        uint8_t, severity,
        const char *, target,
        size_t, target_len,
        const char *, message,
        size_t, message_len,
        const uint8_t *, trace_id,
        const uint8_t *, span_id
    ),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint8_t, severity, severity)
        lttng_ust_field_sequence_text(char, target, target, size_t, target_len)
        lttng_ust_field_sequence_text(char, message, message, size_t, message_len)
        lttng_ust_field_array(uint8_t, trace_id, trace_id, 16)
        lttng_ust_field_array(uint8_t, span_id, span_id, 8)
    )
)

#endif /* LOGBUS_BENCH_TP_H */

#include <lttng/tracepoint-event.h>
