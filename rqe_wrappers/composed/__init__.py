"""SRPO's shadow inside minimax-Bayes scenarios: a risk-averse learner against nature's worst-case prior.

``objective``: the composed objective, exact on the IPD (value of a strategy, the optimum, SRPO's
risk-averse best response); ``shadow``: the pieces of the trained version (a shadow partner with a
member as its KL reference, its training seat, the learner's KL bonus); ``training``:
:func:`~rqe_wrappers.composed.training.train_composed`; ``run``: the command
(``python -m rqe_wrappers.composed.run``). Docs: docs/composed.md.
"""
