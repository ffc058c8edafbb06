"""The consumer workers' logic, pure: records and answers in, reports and decisions out.

Modules:
    latency    per-stage latency windows and percentiles (log-bucketed histograms)
    freshness  metric families, cadences, staleness per key, SLO transitions
    coalesce   the dashboard worker: latest value per key, batches, safe offsets, push decisions
"""
