"""What a submission's Dockerfile may name: public images and its own stages, never the
grader's images (by name or by ID), never a URL fetched by the engine. No engine needed."""

from __future__ import annotations

import pytest

from grader.stack.compose.dockerfile import context_sources, copy_arguments, reference_problem

ALLOWED = [
    "FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\n",
    "FROM python:3.11-slim AS Build\nRUN pip wheel -w /w fastapi\nFROM build\nCOPY --from=build /w /w\n"
    "COPY --from=0 /w /x\n",
    "ARG BASE=python:3.11-slim\nFROM ${BASE}\n",
    "FROM --platform=linux/amd64 docker.io/library/python:3.11-slim\nADD app.tar.gz /app/\n",
    "FROM scratch\nCOPY --chown=1:1 [\"a b\", \"/c\"]\n",
]
REFUSED = [
    ("FROM llmops-grader/standins:latest\n", "its Dockerfile names one of the grader's own images "
                                             "(FROM llmops-grader/standins:latest)"),
    ("FROM docker.io/llmops-grader/api:0123abcd\n", "one of the grader's own images"),
    ("FROM index.docker.io/library/llmops-grader/mlflow\n", "one of the grader's own images"),
    ("ARG BASE=llmops-grader/standins\nFROM $BASE\n", "(FROM llmops-grader/standins)"),
    ("FROM python:3.11-slim\nCOPY --from=llmops-grader/standins:latest /opt/grader /g\n",
     "(COPY --from llmops-grader/standins:latest)"),
    ("FROM python:3.11-slim\nONBUILD COPY --from=llmops-grader/standins /opt/grader /g\n",
     "(COPY --from llmops-grader/standins)"),
    # The classic builder resolves a prefix of an image's ID: the stand-ins' would do.
    ("FROM cfd2\n", "names an image by ID (FROM cfd2)"),
    ("FROM sha256:cfd233d7478b\n", "names an image by ID"),
    ("FROM python:3.11-slim\nCOPY --from=5 /x /y\n", "names an image by ID (COPY --from 5)"),
    ("FROM python:3.11-slim\nCOPY --from=$STAGE /x /y\n", "through a variable the grader cannot resolve"),
    ("FROM python:3.11-slim\nADD http://127.0.0.1:8080/secret /s\n",
     "ADDs http://127.0.0.1:8080/secret: the engine would fetch it from the grader's machine"),
    ("FROM python:3.11-slim\nADD --chown=1:1 https://example.com/x.tgz /x\n", "ADDs https://example.com/x.tgz"),
]


@pytest.mark.parametrize("text", ALLOWED)
def test_public_images_and_own_stages_are_allowed(text):
    assert reference_problem(text, {}) is None


@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=[text.splitlines()[-1] for text, _ in REFUSED])
def test_the_graders_images_ids_variables_and_urls_are_refused_in_one_line(text, reason):
    problem = reference_problem(text, {})
    assert problem is not None and reason in problem and "\n" not in problem


def test_build_args_override_arg_defaults_in_from():
    text = "ARG BASE=python:3.11-slim\nFROM ${BASE}\n"
    assert reference_problem(text, {"BASE": "llmops-grader/standins"}) is not None


def test_copy_arguments_read_flags_and_both_forms():
    assert copy_arguments("--from=build --chown=1:1 a b /dest") == ({"from": "build", "chown": "1:1"}, ["a", "b"])
    assert copy_arguments('["a b", "c", "/dest"]') == ({}, ["a b", "c"])
    assert copy_arguments("--link src/api/ .") == ({"link": ""}, ["src/api/"])


def test_context_sources_are_what_copy_and_add_read_from_the_context():
    text = ("FROM python:3.11-slim AS b\nCOPY src/api/requirements.txt .\nADD https://example.com/x /x\n"
            "COPY --from=b /x /y\nADD tests/ ./tests/\n")
    assert context_sources(text, {}) == ["src/api/requirements.txt", "tests/"]
