"""The consumer workers' logic, pure: records and answers in, reports and decisions out.

Modules:
    latency    per-stage latency windows and percentiles (log-bucketed histograms)
    freshness  metric families, cadences, staleness per key, SLO transitions
    latest     the dashboard worker's coalescing: latest value per key, batches
    offsets    the dashboard worker's offset rule: commit only what the dashboard holds
    push       the dashboard push: HMAC signature, what an answer means for a batch
    breaker    the dashboard push's circuit breaker
"""
