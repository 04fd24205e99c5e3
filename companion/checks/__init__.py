"""The checks: each a short plain-Keras scenario that runs under any Keras and backend and what it reads, defined once
as an object (check, registry); the ways of fine-tuning (ways); the kinds of model fine-tuned each way (fine_tuning);
one layer's behaviour (layer_checks), calls outside fit (calls), trainable's timing and setter (trainable_checks); the
models they build (models); the typed values they return (evidence).
"""
