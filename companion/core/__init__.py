"""Core: which Keras this process runs and how to run another (variants), the run profiles, kept results (cache),
tables, figures, the terminal, and the statistics of paired differences. Imports nothing else of the companion.
"""
