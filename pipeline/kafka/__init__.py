"""The Kafka shell: topics, publishing, consuming and the contract in the schema registry.

Modules:
    schemas          the contract's Avro schemas: where they are, their topics, how they evolve
    registry         the contract in a schema registry: register, check, require it
    registry_client  a schema registry client whose failures are one clear SchemaError
    admin            topic administration (AdminClient)
    outbox           records → Kafka records: topic, key, framed Avro value, CloudEvents headers
    producer         publishing with confluent-kafka: idempotent, bounded, never silently lossy
    delivery         what the publisher hands out: OutRecord, PublishObserver, error-code sets
    consumer         reading the contract's topics (aiokafka group, manual commits, pause and
                     rewind), Avro decoding (registry asked with a timeout)
    reader           one topic of a worker: every record decoded, dead-lettered and moved
                     past, or not read yet while the registry cannot be asked
    worker           the Kafka side of a consumer worker (freshness and dashboard workers)
    security         KafkaSettings → librdkafka config (with MSK IAM's oauth_cb) and aiokafka
                     options (ssl.SSLContext, SASL, OAUTHBEARER token provider)
    oauth            OAUTHBEARER tokens from an OIDC endpoint for aiokafka (client credentials)
    msk              Amazon MSK IAM tokens (the optional msk extra)
    connection       fail fast, on one line, when Kafka refuses the TLS handshake or SASL login
"""
