"""Local infrastructure for tests and the demo: a Kafka-protocol broker and a schema registry.

Production never uses it: it points at real Kafka and a real Confluent-compatible registry.

Modules:
    stack                   the broker and the registry as one unit (``pipeline local up``)
    broker                  Tansu, a real Kafka-protocol broker, run as a child process
    process                 child processes: start, wait until ready, capture logs, stop
    registry_server         the local schema registry as a server: bind, persist, serve
    registry_routes         its REST routes: requests in, Confluent answers out
    registry_state          its pure state: subjects, versions, global ids, config
    registry_model          its API's values: errors, versions, references, stored schemas
    registry_compatibility  Avro compatibility levels and the reader/writer check
    smoke                   a round trip through the broker and registry
"""
