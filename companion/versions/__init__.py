"""The checks under each Keras variant and release, and on the reader's own install or model: the version matrix,
the release matrix, its figure and its architecture grid, ``companion check`` and ``companion check --model``, and the
upstream reproducers.
"""
