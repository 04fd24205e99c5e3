"""The one matrix: every check in every column, each column a Keras release or variant on a backend installed in a
folder of its own (install) and computed in a child process (matrix); its views: the advice per kind of model
(advice), the figures (figures); ``companion check`` on the reader's install (check) and ``companion check --model``
on a saved model (model_check); the reproducers to report upstream (upstream).
"""
