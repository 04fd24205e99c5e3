"""Measuring what the two flags did to any model, under any Keras and backend: the one layer walker (walk), the one
remedy (remedy), the one recorder of the modes layers ran in (modes), the one snapshot and the probes that watch a
reader's plain Keras (probes), and the one-step model report (report).
"""
