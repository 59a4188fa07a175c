"""
Fuzz runs of the hub's two ports: the device port (TLS, length-prefixed
JSON envelopes) and the web port (HTTP, the Mesh portal).  A short,
derandomized run is part of the test suite; C{make fuzz} runs the long one
(see C{docs/fuzzing.md}).
"""
