"""SRPO: the adversarial shadow wrapper, the role feature, the exact RQE solver, bifurcation maths (docs/srpo.md)."""
