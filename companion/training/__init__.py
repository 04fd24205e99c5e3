"""A recipe under a profile, trained: the runner (phase 1, the ways of fine-tuning, kept checkpoints), the paired
experiment under each Keras variant, and the benchmark of the offline bases.
"""
