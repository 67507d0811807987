"""Assets by domain: storage (schema, registry), ingestion (topic, fleet, stream), live tables, rollups."""
