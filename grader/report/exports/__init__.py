"""Batch outputs for learning platforms and CI: Gradescope, PrairieLearn, JUnit XML, summary page.

Each renderer reads ``SubmissionRecord`` files only (see ``grader.batch.record``).
"""

from grader.report.exports.gradescope import gradescope_results
from grader.report.exports.junit import render_junit
from grader.report.exports.prairielearn import prairielearn_results, render_prairielearn_csv
from grader.report.exports.summary import render_summary, summarise

__all__ = ["gradescope_results", "prairielearn_results", "render_junit", "render_prairielearn_csv", "render_summary",
           "summarise"]
