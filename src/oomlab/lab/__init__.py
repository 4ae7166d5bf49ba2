"""The lab: train-time compute in a controlled setting.

A ladder of small transformers (model.py) trained at budgets in FLOPs (ladder.py, train.py) on
generated tasks (oomlab/tasks/lab_*.py) in a direct and a chain-of-thought format, each swept as an
ordinary `torch` backend; exchange.py turns the Store's curves into the exchange rate and the
compute-equivalent gains. Only the modules that train or sample import torch.
"""
