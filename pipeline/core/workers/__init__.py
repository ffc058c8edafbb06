"""The consumer workers' logic, pure: records and answers in, reports and decisions out.

Modules:
    family     metric families: how a metric behaves in time, which objective holds it
    latency    per-stage latency windows and percentiles (log-bucketed histograms)
    staleness  which keys are stale and why, from records and the producers' audit records
    slo        the freshness objectives: thresholds, breach and recovery without flapping
    freshness  the freshness worker's façade over latency windows, staleness and SLOs
    latest     the dashboard worker's coalescing: latest value per key, batches
    offsets    the dashboard worker's offset rule: commit only what the dashboard holds
               (memory per partition and key, never per record)
    push       the dashboard push: HMAC signature, what an answer means for a batch
    breaker    the dashboard push's circuit breaker
"""
