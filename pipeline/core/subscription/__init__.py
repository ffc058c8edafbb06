"""Subscription files and plans, pure: what the user asked for and how it maps to topics.

Modules:
    spec          load and validate a subscription file (one line per problem, with its path)
    model         the pydantic model of the file
    rules         the checks for single values: ids, names, regions, durations, metrics
    resolution    references (names, queue members) → entity ids, from REST answers
    planner       spec + directory → topics → shards → channels, deterministically
    availability  the analytics queries that check a spec's metrics, and the report
    selection     which mapped records a subscription keeps (its metrics and media types)
"""
