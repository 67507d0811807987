"""What every runtime part stands on: the host (Java, ports, programs), the jars, JDBC, running
processes and stopping on signals, the Kafka users and topics, and the shared setup error.

Below `stack/` (the no-Docker dev stack) and `streaming/` alike, so the production stream never
imports the dev stack.
"""
