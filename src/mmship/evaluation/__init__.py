"""Figures measured on built graphs, shared by the build stages, the server's warm-up and
the benchmarks: example and probe feeds (:mod:`.feeds`), comparisons (:mod:`.compare`),
timings (:mod:`.timing`), and the validate stage's checks (:mod:`.accuracy`).

Graphs run through the inference-runtime registry (:func:`.sessions.load_graph`), never a
hard-coded engine.
"""
