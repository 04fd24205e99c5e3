"""The book: what every chapter does first (notebook), a tutorial page (tutorial), the book's home (home), its
chapters as things to run (chapters) and the command line (cli). The claims and their verdicts are
:mod:`companion.audit`, a layer below.
"""
