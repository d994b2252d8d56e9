"""Local infrastructure: Kafka brokers from Maven Central jars, ClickHouse DDL files.

A leaf: it imports nothing of the project; the command hands it the values it needs
(``infra.kafka_local.LocalKafka``) and reads the migration files' location from it.
"""
