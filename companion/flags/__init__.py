"""What the two flags did: the one layer walker and the remedy applied to a model (models), the modes each layer ran
in (modes), the probes that watch a reader's plain Keras (probes), the one-step model report (report), and the
AutoScaleDropout layer the 2019 tutorial's claim is checked with (layers).
"""
