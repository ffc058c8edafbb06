"""The Kafka contract, pure: the records the pipeline writes and their bytes.

Modules:
    records    frozen dataclasses mirroring ``schemas/*.avsc`` (metric, audit, DLQ, freshness)
    mapping    topic and backfill events → flat metric records (the hot path)
    activity   the queue activity topic's bodies → flat metric records
    body       readers of body fields (instants, intervals, metric kinds, numbers) and their error
    kpi        the derived KPIs: formulas, and when each is emitted
    identity   a metric record's event id (the recipe)
    table      the changelog table: row keys, upserts and tombstones per subscribed topic
    wire       Confluent wire framing and the compiled, schema-specialised Avro encoder
    decode     the compiled Avro decoder per writer/reader schema pair (mirror of the encoder)
    partition  Kafka's murmur2 partitioner, as the Java client computes it
    dead_letter  a dead letter cut to fit in one Kafka record, saying it was cut
"""
