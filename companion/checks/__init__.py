"""The decisive checks, each a short plain-Keras function that runs under any variant and backend, the one remedy
(``decisive.freeze_batch_norm``), the compile and optimizer checks, and the typed values they return (evidence).
"""
