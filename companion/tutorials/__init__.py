"""The tutorials' ingredients: each tutorial as a typed value (recipes), the packaged pretrained bases (backbones),
a recipe under a profile (setups) and the typed results of a run (results).
"""
