"""The services: wiring of the core and the shells, one module per process or command.

Modules:
    producer          the producer: validate, verify availability, stream, map, publish
    producer_metrics  the producer's Prometheus metrics
    producer_sink     the producer's sink: stream events → Kafka records or dead letters
    producer_facts    the producer's own audit facts: a bounded queue, summarised overflow
    freshness_worker  the freshness worker: stage latencies, staleness, SLO audits
    dashboard_worker  the dashboard worker: latest value per key → signed HTTP pushes
    ops               /metrics, /healthz, /readyz for every service
    planning          ``pipeline plan``: subscription file → channels and shards
    watch             ``pipeline watch``: one shard's channels, printed
    schemas           ``pipeline schemas register|check``: the contract in the registry
    demo              ``pipeline demo``: the whole pipeline on the embedded stack
"""
