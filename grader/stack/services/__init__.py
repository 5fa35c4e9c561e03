"""The exam's dependencies played by the grader: an LLM stand-in, a TEI stand-in and a real
Qdrant, all served by one process per stack (``python -m grader.stack.services``).

Parent side: ``ServicesProcess`` in ``grader.stack.services.process``.
"""
