"""Grades forks of the LLMOps production-readiness exam by running them under failure."""

__version__ = "0.1.0"
