"""The analytics query engine over the simulation, pure (docs/genesys-api.md §7).

Modules:
    queries   queue observations, conversation aggregates and user aggregates
    activity  the routing activity query
    request   validation and parsing of query bodies (intervals, granularity, filters)
"""
