"""What every runtime part stands on: the host (Java, ports, programs), the jars, the shared errors.

Below `stack/` (the no-Docker dev stack) and `streaming/` alike, so the production stream never
imports the dev stack.
"""
