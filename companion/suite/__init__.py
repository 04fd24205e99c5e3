"""The checks that build the tutorials' models and watch them with the probes: the fact suite (facts) and the
architecture checks (architectures, with the models they build in architectures_models).
"""
