/*
 * kafka_mirror.h -- a ulog topic mirrored into Apache Kafka, and a Kafka
 * topic into a ulog topic, through librdkafka. A module of the `ulog` tool
 * (`ulog mirror`), apart from the library: libulog does not depend on
 * librdkafka.
 *
 * To Kafka: a replication hook (ulog_hook_start) whose ship callback
 * produces every record of a batch to the same partition of the Kafka topic
 * with the idempotent producer, keys, values (null ones too), headers and
 * timestamps kept, and acknowledges the batch once Kafka has acknowledged
 * all its records. The hook's position is the consumer group NAME's
 * committed offsets, so after a crash the batches shipped since it was last
 * stored are produced again: at least once; the idempotent producer removes
 * the duplicates of its own retries, not those.
 *
 * From Kafka: a consumer that appends every message of the Kafka topic to
 * the same partition of the ulog topic at the same offset, one at a time
 * (the ulog topic's flush.policy says when each is durable). The
 * position is the ulog partition's end: a restart goes on from there, and a
 * message below it (delivered again) is skipped, so each is stored once.
 * Offsets a Kafka topic skips (compaction, transaction markers, aborted
 * transactions) are skipped here too: the next message goes at the end of
 * one batch that covers them (ulog_append_raw), as ulog's own compaction
 * leaves them; a partition never written starts at its first message
 * (ulog_partition_start_at). A position Kafka no longer has (its retention
 * passed it) stops the mirror with ULOG_EOFFSET: the messages there were
 * never mirrored. So does something else appending to the ulog topic. A
 * record timestamp of 0 goes to Kafka as "now" (librdkafka's meaning of 0).
 */
#ifndef ULOG_KAFKA_MIRROR_H
#define ULOG_KAFKA_MIRROR_H

#include <stddef.h>
#include <stdint.h>
#include <ulog.h>

typedef struct kafka_to kafka_to;

/* Starts mirroring ulog topic `topic` into Kafka topic `ktopic` at
 * `brokers` (bootstrap.servers), as hook `name`. extra: more librdkafka
 * producer settings, "name=value" strings, NULL-terminated (may be NULL).
 * err/errlen: why it failed. Returns 0 or a ULOG_E* code. */
int kafka_to_start(ulog *log, const char *topic, const char *brokers, const char *ktopic,
                   const char *name, const char *const *extra, char *err, size_t errlen,
                   kafka_to **out);
/* Records produced to Kafka and acknowledged so far. */
int64_t kafka_to_count(const kafka_to *m);
/* Stops the hook and the producer; returns ulog_hook_stop()'s result. */
int kafka_to_stop(kafka_to *m);

/* Stores record r (its partition set), Kafka's message at `offset`, in the
 * ulog topic at that offset, as kafka_from_run does with each message:
 * *next is the partition's end as the mirror left it, at most offset, and
 * becomes offset + 1. Offsets skipped between go into r's batch. Returns 0
 * or a ULOG_E* code, with a message in err. */
int kafka_from_store(ulog *log, const char *topic, ulog_record *r, int64_t offset,
                     int64_t *next, char *err, size_t errlen);

/* Mirrors Kafka topic `ktopic` into ulog topic `topic` (which must exist,
 * with at least as many partitions) until *stop becomes non-zero or, with
 * idle_ms >= 0, no message came for that long. *count gets the records
 * appended. Returns 0 or a ULOG_E* code (ULOG_EOFFSET when Kafka no longer
 * has the ulog partition's end), with a message in err. */
int kafka_from_run(ulog *log, const char *topic, const char *brokers, const char *ktopic,
                   const char *const *extra, volatile int *stop, int idle_ms, int64_t *count,
                   char *err, size_t errlen);

#endif
