"""The services: wiring of the core and the shells, one module per process or command.

Modules:
    producer          the producer: validate, verify availability, stream, map, publish
    producer_metrics  the producer's Prometheus metrics
    producer_sink     the producer's sink: stream events → Kafka records or dead letters
    producer_facts    the producer's own audit facts: a bounded queue, summarised overflow
    producer_health   the producer's channel states and degradation (Genesys, Kafka)
    tally             a Prometheus histogram updated once per batch of observations
    freshness_worker  the freshness worker: stage latencies, staleness, SLO audits
    dashboard_worker  the dashboard worker: latest value per key → signed HTTP pushes
    dashboard_metrics the dashboard worker's Prometheus metrics (circuit Enum, degradation)
    ops               /metrics, /healthz (loops alive), /readyz (own start-up) for every service
    planning          ``pipeline plan``: subscription file → channels and shards
    watch             ``pipeline watch``: one shard's channels, printed
    schemas           ``pipeline schemas register|check``: the contract in the registry
    demo              ``pipeline demo``: the whole pipeline on the embedded stack
"""
