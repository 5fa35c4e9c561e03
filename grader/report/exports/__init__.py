"""Batch outputs for learning platforms and CI: Gradescope, PrairieLearn, JUnit XML.

Each renderer reads ``SubmissionRecord`` files only (see ``grader.records``).
"""

from grader.report.exports.gradescope import gradescope_results
from grader.report.exports.junit import render_junit
from grader.report.exports.prairielearn import prairielearn_results, render_prairielearn_csv

__all__ = ["gradescope_results", "prairielearn_results", "render_junit", "render_prairielearn_csv"]
