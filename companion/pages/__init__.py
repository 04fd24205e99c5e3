"""The book: what every chapter does first (notebook), a tutorial page (tutorial), the claims and their verdicts
(audit), the book's home (home), its chapters as things to run (chapters) and the command line (cli).
"""
