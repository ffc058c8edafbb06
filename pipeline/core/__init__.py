"""The pure core: code that decides. Bytes, dicts and ``now`` in; typed values out.

Nothing under ``pipeline.core`` does I/O, reads the clock or imports asyncio, sockets,
websockets, httpx, aiohttp, aiokafka, confluent_kafka, the Genesys SDK or a shell package
(``pipeline.genesys``, ``pipeline.kafka``, ...). Dependencies inside point one way, top to
bottom (both enforced by import-linter contracts in ``pyproject.toml``)::

    workers/  subscription/     the workers' logic; subscription files and plans
         contract/              the Kafka records: what lands in the topics
         genesys/               the Genesys wire: frames, topics, tokens, the channel session
    http_policy                 shared rules: what an HTTP failure means, Retry-After, backoff
    audit                       the audit vocabulary: AuditKind, its detail fields, AuditEvent
    redaction                   masking secrets and URL credentials in text (logs, errors)

Subpackages:
    genesys       the notification protocol, metric catalogue, tokens, rate budget, session
    subscription  the subscription file, name resolution, the planner, availability, selection
    contract      records mirroring ``schemas/*.avsc``, mapping, Avro wire bytes, partitioning
    workers       freshness and latency math; the dashboard worker's latest values and pushes
"""
